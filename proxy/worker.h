/*
 * worker.h: one thread, one event_base, its own SO_REUSEPORT listeners, its
 * own upstream pools. Shared routing state reaches it as an immutable
 * snapshot read through an atomic pointer (struct shared).
 */
#ifndef CUTOVER_WORKER_H
#define CUTOVER_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "../conf/conf.h"
#include "../routing/snap.h"
#include "../routing/swrr.h"
#include "stats.h"

struct event_base;
struct event;
struct evconnlistener;
struct ups_pool;
struct xchg;
struct h1p_header;

/* Process-wide state shared by the workers. */
struct shared {
    _Atomic(struct snap *) snap; /* current snapshot; swap with shared_publish() */
    pthread_mutex_t publish_lock; /* serialises writers only; readers never take it */
    SSL_CTX **ssl_ctx;             /* per conf listener: NULL for plain ones */
    struct event *worker_exited;   /* main thread's event, activated by each worker as it ends */
    atomic_int draining;           /* set at SIGTERM: /healthz answers 503 */
    atomic_uint n_exited;          /* workers whose loop has ended */
    const struct conf *conf;       /* the conf loaded at start (listeners, workers) */
};

/*
 * Returns a new reference to the current snapshot. Lock-free: a snapshot is
 * freed only after it has been replaced AND every worker has dropped the
 * references it took (the refcount covers both).
 */
struct snap *shared_snap_get(struct shared *sh);

/* Publishes <s> (takes over the caller's reference) and drops the old one. */
void shared_publish(struct shared *sh, struct snap *s);

/* Intrusive list of front connections, for drain and accounting. */
struct conn_link {
    struct conn_link *prev, *next;
    void (*on_drain)(struct conn_link *l); /* begin graceful close (GOAWAY, close idle h1) */
    void (*on_kill)(struct conn_link *l);  /* optional: free now (worker exit after drain_ms) */
};

struct worker_route_state {
    struct swrr swrr;
    uint32_t rr_server[CONF_MAX_TRACKS]; /* round robin index per track */
};

/* Per-worker access log buffer (accesslog.c). */
struct alog_buf {
    size_t len;
    long stamp_sec;
    char stamp[32];
    struct event *timer;
    char buf[4096 + 2048];
};

struct worker {
    unsigned id;
    pthread_t thread;
    struct event_base *base;
    struct shared *shared;
    struct snap *snap;     /* this worker's reference to the snapshot it routes with */
    struct worker_route_state *routes; /* per route of <snap> */
    struct ups_pool **pools;           /* per server of <snap> */
    struct ups_pool *pool_list;        /* every pool this worker has made */
    struct evconnlistener **listeners;
    size_t n_listeners;
    void *listener_ctx;     /* worker.c's per-listener accept contexts */
    struct conn_link conns; /* list head */
    unsigned n_conns;
    int draining;
    struct event *wake;     /* readable eventfd: drain request from the main thread */
    int wake_fd;
    struct event *drain_timer;
    struct event *reaper;
    struct defer *to_free;
    uint64_t seq;           /* request counter, for ids */
    uint64_t rng;           /* xorshift state (sticky cookie ids) */
    unsigned inflight;      /* exchanges routed and not yet freed */
    struct xchg *xchg_pool; /* recycled exchanges (xchg.c) */
    struct h1p_header *h1_fields; /* scratch for parsing request heads (h1_front.c) */
    size_t h1_fields_cap;
    unsigned n_xchg_pool;
    unsigned retries_inflight; /* of which retried on the baseline by the shield */
    uint64_t fail_open_logged_ms;
    struct worker_stats stats;
    struct alog_buf alog;
    atomic_int want_drain;
};

/*
 * Refreshes w->snap from the shared pointer if it changed, carrying the
 * SWRR state and round-robin positions of routes and tracks that keep their
 * names, and re-mapping upstream pools by server address. Cheap when nothing
 * changed (one atomic load and a compare). Call before routing a request.
 */
void worker_refresh(struct worker *w);

void worker_conn_add(struct worker *w, struct conn_link *l);
void worker_conn_del(struct worker *w, struct conn_link *l);

/*
 * Queues fn(p) to run after the current callback stack has unwound (the
 * "close marks, the reaper frees" rule). Never fails: on allocation failure
 * it runs fn(p) from a zero-timeout event_base_once, or aborts at start-up.
 */
void worker_defer_free(struct worker *w, void (*fn)(void *), void *p);

/* Sets up <w> (event base, listeners bound with SO_REUSEPORT). Returns 0, or
 * -1 with a message in <err>. Runs on the main thread before the threads. */
int worker_init(struct worker *w, unsigned id, struct shared *sh, char *err, size_t errlen);

/* Starts the thread. Returns 0 or -errno. */
int worker_run(struct worker *w);

/* Asks the worker to drain and exit (thread-safe). */
void worker_request_drain(struct worker *w);

/* Joins the thread and frees everything the worker owns. */
void worker_join(struct worker *w);

#endif
