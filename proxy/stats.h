/*
 * stats.h: per-track and per-server evidence, from the workers to the main
 * thread, where the windows, the guard and the admin endpoint read it.
 *
 * Workers record each finished upstream attempt into a tally block of their
 * own (struct stats_block: a struct win_tally per route and track, a guard
 * batch per route, counters per server), under a per-worker mutex that only
 * the main thread's 10 ms collection ever contends for. The main thread
 * (stats_collect) merges the blocks into long-lived, name-keyed records
 * (struct rt_route, struct rt_server) that own the 60 s windows, cumulative
 * counters and histograms, and feeds the guard batches in arrival order.
 * So no window is ever read by two threads, and the hot path costs one
 * uncontended lock and a few additions.
 *
 * A block is relative to the snapshot the worker routed with (route and
 * track indexes); when the worker moves to a new snapshot the old block is
 * retired and collected by name like the current one.
 */
#ifndef CUTOVER_STATS_H
#define CUTOVER_STATS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "../routing/guard.h"
#include "../routing/hist.h"
#include "../routing/win.h"

struct snap;
struct snap_server;
struct worker;

#define RT_MAX_TRACKS 16 /* tracks a route record remembers across reloads */

/* Cumulative per-track (or per-server) counters, for /metrics. */
struct rt_counters {
    uint64_t requests;               /* attempts finished (not forced) */
    uint64_t forced;                 /* override-forced requests */
    uint64_t n_class[WIN_N_CLASSES]; /* [0] no status (failure), [1..5] 1xx..5xx */
    uint64_t n_fail[WIN_FAIL_N];     /* connect, timeout, reset */
    uint64_t errors;                 /* as the guard counts them */
    uint64_t ejections;              /* servers: passive ejections (any worker) */
    uint64_t ejected_until_ms;       /* servers: latest ejection end (monotonic ms) */
};

struct rt_track {
    char *name;
    struct win win;          /* last 60 s, main thread only */
    struct rt_counters c;
    struct hist lat;         /* cumulative latency to the response head */
};

/* The main thread's record of one route, kept across reloads by name. */
struct rt_route {
    struct rt_route *next;
    char *name;
    struct rt_track tracks[RT_MAX_TRACKS];
    size_t n_tracks;
    /* guard (main thread), with the config it was built from */
    atomic_int has_guard;      /* read by workers on every request: atomic */
    int base, cand;            /* indexes in tracks[], or -1 */
    struct guard_conf_rt grt;
    struct guard_state g;
    uint64_t thr_at_ms;        /* last guard_update_thresholds */
    /* published to workers (atomics: read on every request) */
    _Atomic uint64_t thr_p50_us, thr_p99_us;
    uint64_t trips;
};

struct rt_server {
    struct rt_server *next;
    char *name;
    struct rt_counters c;
    struct win win;          /* last 60 s: outcomes and latency, main thread only */
};

/* A worker's tallies relative to one snapshot. */
struct stats_block {
    struct stats_block *next; /* retired list */
    struct snap *snap;        /* reference */
    struct win_tally *t;      /* [route * CONF_MAX_TRACKS + track] */
    uint8_t *t_dirty;
    struct guard_batch *batch; /* [route] */
    uint8_t *b_dirty;
    struct rt_counters *srv;  /* [server id] */
    struct win_tally *srv_t;  /* [server id]: outcomes and latency for the server's window */
    uint8_t *s_dirty;
    int dirty;
};

struct worker_stats {
    pthread_mutex_t lock;
    struct stats_block *cur;
    struct stats_block *retired;
    struct rt_route **rt;      /* [route of cur->snap]: for thresholds */
    struct sticky_err_slot *sticky_errs; /* [STATS_STICKY_SLOTS], allocated on first use */
    /* plain counters of the worker's own (read racily by /metrics: monotonic) */
    _Atomic uint64_t conns_accepted, conns_refused, proxy_errors, retries, retry_denied;
    _Atomic uint64_t conns_open, streams_open;
};

/* Worker thread: sets up <w>'s tallies for w->snap. Returns 0 or -1. */
int stats_worker_init(struct worker *w);
/* Worker thread: w->snap changed from <old>; retires the old block. */
void stats_worker_snap_changed(struct worker *w, struct snap *old);
void stats_worker_fini(struct worker *w);

/*
 * Worker thread: one finished upstream attempt (or override-forced request)
 * on <route>/<track>/<srv> of w->snap. <status> 0 when no response head;
 * <fail> how it failed then; <latency_us> time to the response head or
 * WIN_NO_LATENCY.
 */
void stats_record(struct worker *w, int route, int track, const struct snap_server *srv,
                  unsigned status, enum win_fail fail, uint64_t latency_us, int forced,
                  uint64_t sticky_key);

/*
 * GUARD.md: with stickiness, errors cluster by user, so one user's errors are
 * capped as evidence: at most STATS_STICKY_ERR_CAP per key per
 * STATS_STICKY_ERR_MS (per worker; a direct-mapped table, where a collision
 * only ever lets more evidence through). <sticky_key> 0: not sticky.
 */
#define STATS_STICKY_ERR_CAP 3
#define STATS_STICKY_ERR_MS 10000
#define STATS_STICKY_SLOTS 1024

struct sticky_err_slot {
    uint64_t key;
    uint64_t since_ms;
    uint32_t errors;
};

/* Worker thread: <srv> was ejected by this worker until <until_ms>. */
void stats_ejected(struct worker *w, const struct snap_server *srv, uint64_t until_ms);

/* Is this outcome an error for the guard (5xx, connect failure, timeout, reset)? */
static inline int stats_is_error(unsigned status, enum win_fail fail)
{
    return fail != WIN_FAIL_NONE || status >= 500;
}

/*
 * Main thread: merges every worker's tallies into the records and feeds the
 * guards, refreshing guard thresholds every 100 ms. Returns the routes whose
 * guard tripped at this call through <on_trip> (called once per trip).
 */
void stats_collect(struct worker *ws, unsigned n, const struct snap *cur, uint64_t now_ms,
                   void (*on_trip)(void *arg, struct rt_route *r, const struct guard_reason *why),
                   void *arg);

/* Main thread: (re)configures the records from snapshot <s> (guards, tracks). */
void stats_configure(const struct snap *s, const struct conf *c, uint64_t now_ms);

/* Main thread (or a worker at refresh, under the registry lock): the record of <name>. */
struct rt_route *stats_route(const char *name);
struct rt_route *stats_routes(void);   /* list head */
struct rt_server *stats_servers(void); /* list head */
int stats_track_index(struct rt_route *r, const char *name); /* creates; -1 when full */

/* Main thread: re-arms the guard of <route> (operator: admin API or Redis
 * "state armed"). Returns 0, or -1 when the route has no guard. */
int stats_guard_rearm(const char *route, uint64_t now_ms);

/* Main thread: latches the guard of <route> as tripped without evidence of
 * its own (another instance tripped it; its record is in Redis). */
int stats_guard_latch(const char *route, uint64_t now_ms);

/* Main thread, at exit. */
void stats_free_all(void);

#endif
