/*
 * redis_source.h: live weights from Redis (DESIGN.md "Redis contract").
 *
 * The only file of routing/ that talks to the network, through hiredis'
 * asynchronous API. It has the "tick" shape (STYLE.md): it owns no timer and
 * no event loop. proxy/ hands it an attach hook that binds a hiredis context
 * to its loop (redisLibeventAttach), a clock and a wake hook, and drives it
 * with redisw_tick(src, now_ms) from one timer re-armed at
 * redisw_next_deadline(src). Everything runs on that one loop's thread.
 *
 * Two connections:
 *   - "sub" SUBSCRIBEs to {prefix}:events (not made when pubsub is off); each
 *     message names a route whose weights are re-read at once;
 *   - "cmd" runs AUTH, SELECT, the HGETALLs of {prefix}:route:{route}:weights
 *     (and :guard when asked), audit XADDs and write-throughs.
 * Every route is re-read when "cmd" becomes ready, when "sub" (re)subscribes
 * (messages may have been missed meanwhile) and every poll_ms.
 *
 * Failures: hiredis 0.14 has no timeouts of its own, so connect, handshake
 * and command timeouts are checked by the tick. A connection that fails, is
 * closed, answers garbage, times out or refuses AUTH is dropped and made
 * again after a capped exponential backoff with jitter (backoff_min_ms
 * doubling up to backoff_max_ms, each delay drawn in [d/2, d]). Nothing here
 * blocks; the data path never sees Redis at all (results reach proxy/
 * through the callbacks, which publish snapshots).
 *
 * Results of a weights read, through struct redisw_ops:
 *   on_weights  the key holds a valid split (weights_from_hash);
 *   on_absent   the key does not exist (an empty hash cannot exist in Redis);
 *   on_invalid  the key holds something that is refused (bad value, unknown
 *               track, all zero, not a hash); the reason names route and field.
 * Errors that say nothing about the key (NOAUTH, LOADING, ...) are not
 * results: the connection is dropped and everything is re-read once it is
 * back.
 *
 * Known limit of hiredis 0.14: a server that sends a well-formed reply nobody
 * asked for makes hiredis assert (abort). Redis never does; bytes that are not
 * RESP are a protocol error and are survived like a closed socket.
 */
#ifndef CUTOVER_REDIS_SOURCE_H
#define CUTOVER_REDIS_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "snap.h"

struct redisAsyncContext;
struct redisw;

/* Binds a new hiredis context to the caller's event loop <loop>. 0 or -1. */
typedef int redisw_attach_fn(struct redisAsyncContext *ac, void *loop);

enum redisw_event {
    REDISW_EV_CMD_UP = 0,   /* command connection ready (AUTH and SELECT done) */
    REDISW_EV_CMD_DOWN,     /* command connection lost or failed; detail: why, retry delay */
    REDISW_EV_SUB_UP,       /* subscribed to {prefix}:events */
    REDISW_EV_SUB_DOWN,     /* subscriber lost or failed; detail: why, retry delay */
    REDISW_EV_SYNCED,       /* a re-read of every route has been answered */
    REDISW_EV_WRITE_FAILED, /* a write-through (redisw_write_*) failed; detail: why */
    REDISW_EV_N
};

/* "cmd-up", "cmd-down", ... */
const char *redisw_event_name(enum redisw_event ev);

enum redisw_cause {
    REDISW_CAUSE_EVENT = 0, /* a {prefix}:events message */
    REDISW_CAUSE_POLL,      /* the poll_ms fallback */
    REDISW_CAUSE_CONNECT,   /* (re)connect or (re)subscribe */
    REDISW_CAUSE_ASKED,     /* redisw_reread() */
    REDISW_CAUSE_N
};

/* "event", "poll", "connect", "asked" */
const char *redisw_cause_name(enum redisw_cause c);

/* Why and when a weights read was made. */
struct redisw_read {
    const char *route; /* route name */
    enum redisw_cause cause;
    uint64_t t0_us; /* ops->now_us() when the message arrived or the read began */
};

/* Fields of a guard hash read or written at most (more are ignored / refused). */
#define REDISW_GUARD_FIELDS_MAX 64

/* A hash as Redis returned it. Borrowed: valid during the callback only. */
struct redisw_hash {
    const char *const *fields;
    const size_t *flen;
    const char *const *values;
    const size_t *vlen;
    size_t n;
};

/*
 * What the source needs from its owner. now_us and wake are required; the
 * others may be NULL. Callbacks run on the loop's thread, from hiredis
 * callbacks; they may call redisw_audit(), redisw_write_*() and
 * redisw_reread(), never redisw_free() or redisw_set_snap().
 */
struct redisw_ops {
    uint64_t (*now_us)(void *arg); /* monotonic microseconds */
    /* The next deadline may have moved earlier: re-arm the timer at redisw_next_deadline(). */
    void (*wake)(void *arg);
    /* Valid split for <rd->route>: <w> has one weight per track of the route in the
     * snapshot given to redisw_set_snap(), in track order. <h> is the raw hash. */
    void (*on_weights)(void *arg, const struct redisw_read *rd, const uint32_t *w,
                       const struct redisw_hash *h);
    /* The weights key of <rd->route> does not exist. */
    void (*on_absent)(void *arg, const struct redisw_read *rd);
    /* The key holds something refused; <reason> says what. <h> is the raw hash, or
     * NULL when the key is not a hash. */
    void (*on_invalid)(void *arg, const struct redisw_read *rd, const char *reason,
                       const struct redisw_hash *h);
    /* The guard hash of <rd->route> (n == 0: absent; at most REDISW_GUARD_FIELDS_MAX
     * pairs). When NULL the guard hash is not read. Each read asks for the guard hash
     * before the weights, so this runs before on_weights/on_absent of the same read. */
    void (*on_guard)(void *arg, const struct redisw_read *rd, const struct redisw_hash *h);
    /* The EXEC of a write-through of <route> tagged <tag> (redisw_write_guard(),
     * redisw_write_trip(); 0 for redisw_write_weights()) succeeded (<ok> 1) or did not
     * (0: refused, or the connection went away before the answer). May run while the
     * connection is being torn down: it must not call redisw_write_*() then. */
    void (*on_written)(void *arg, const char *route, uint64_t tag, int ok);
    /* Connection state changes and failures; <detail> is a human-readable line. */
    void (*on_event)(void *arg, enum redisw_event ev, const char *detail);
};

struct redisw_conf {
    const char *host; /* numeric address */
    uint16_t port;
    const char *prefix;          /* key prefix, "cutover" */
    const char *username;        /* NULL: none */
    const char *password;        /* NULL: no AUTH */
    int db;                      /* SELECT index */
    unsigned poll_ms;            /* full re-read interval, > 0 */
    int pubsub;                  /* 0: no subscriber connection, poll only */
    const char *instance;        /* id written in audit entries */
    unsigned connect_timeout_ms; /* 0: 1000 */
    unsigned command_timeout_ms; /* 0: 1000; also bounds AUTH/SELECT/SUBSCRIBE */
    unsigned backoff_min_ms;     /* 0: 100 */
    unsigned backoff_max_ms;     /* 0: 5000 */
    unsigned audit_maxlen;       /* XADD MAXLEN ~, 0: 10000 */
    unsigned queue_max;          /* audit entries kept while disconnected, 0: 1000 */
    uint64_t seed;               /* jitter generator seed */
};

/*
 * Creates a source. Copies every string of <c>; <ops> and <arg> must outlive
 * the source. Nothing connects until the first redisw_tick(). Returns NULL on
 * allocation failure or if <c> lacks host, prefix or instance.
 */
struct redisw *redisw_new(const struct redisw_conf *c, const struct redisw_ops *ops, void *arg,
                          redisw_attach_fn *attach, void *loop);

/*
 * Frees <src>: closes both connections (pending replies are dropped, queued
 * audit entries are lost) and drops its snapshot reference. NULL is fine.
 * Not from a redisw callback.
 */
void redisw_free(struct redisw *src);

/*
 * Sets the routes to read and validate against: <s>'s routes and tracks (the
 * weights in it do not matter). Takes its own reference to <s> and drops the
 * previous one. Call after each config (re)load, then redisw_reread(NULL).
 */
void redisw_set_snap(struct redisw *src, struct snap *s);

/*
 * Does what is due at <now_ms>: connects, retries, enforces the connect,
 * handshake and command timeouts, drops connections marked bad by a callback,
 * starts the poll re-read. Call when redisw_next_deadline() is reached (or
 * earlier: a tick before a deadline does nothing harmful).
 */
void redisw_tick(struct redisw *src, uint64_t now_ms);

/* The time at which redisw_tick() must next run, or UINT64_MAX for never. */
uint64_t redisw_next_deadline(const struct redisw *src);

/*
 * Re-reads the weights (and guard) of <route>, or of every route for NULL, if
 * the command connection is ready (it re-reads everything when it becomes
 * ready anyway).
 */
void redisw_reread(struct redisw *src, const char *route);

/* 1 when the command connection is ready. */
int redisw_is_up(const struct redisw *src);

/* One audit entry: XADD {prefix}:audit MAXLEN ~ N * route .. old .. new .. source ..
 * reason .. result .. instance .. followed by <extra> pairs. */
struct redisw_audit {
    const char *route;
    const char *old_w; /* "blue=90,canary=10", or "" */
    const char *new_w;
    const char *source; /* "config", "redis", "admin", "guard" */
    const char *reason;
    const char *result;       /* "applied", "refused", "written", ... */
    const char *const *extra; /* name, value, name, value... (the guard's evidence) */
    size_t n_extra;           /* number of strings in <extra>, even */
};

/*
 * Appends an audit entry. Strings are copied. While the command connection is
 * down, entries wait in a bounded queue (queue_max; the oldest are dropped
 * beyond it) and are written once it is ready. Returns 0, -ENOBUFS if an
 * older entry had to be dropped, -ENOMEM.
 */
int redisw_audit(struct redisw *src, const struct redisw_audit *a);

/*
 * Writes a route's weights through to Redis and tells the fleet, atomically:
 * MULTI, DEL {prefix}:route:{route}:weights, HSET it <track>[i] <w>[i] for
 * i < <n>, PUBLISH {prefix}:events <route>, EXEC; then an audit entry with
 * result "written", <source> and <reason>. Returns 0 when queued, -ENOTCONN
 * while the command connection is not ready (nothing is queued: a write
 * replayed later could undo a newer one), -EINVAL, -ENOMEM. A failure of the
 * transaction itself is reported as REDISW_EV_WRITE_FAILED.
 */
int redisw_write_weights(struct redisw *src, const char *route, const char *const *track,
                         const uint32_t *w, size_t n, const char *source, const char *reason);

/*
 * Writes <n> (1..REDISW_GUARD_FIELDS_MAX) fields of a route's guard hash
 * ({prefix}:route:{route}:guard) with HSET and PUBLISHes the route, in one
 * MULTI/EXEC whose outcome reaches ops->on_written with <tag>. Same returns
 * as redisw_write_weights().
 */
int redisw_write_guard(struct redisw *src, const char *route, const char *const *fields,
                       const char *const *values, size_t n, uint64_t tag);

/*
 * The guard's snap-back, in one MULTI/EXEC so that no instance can read the
 * new weights without the guard state or the reverse: DEL + HSET of the
 * weights (<n> tracks, as redisw_write_weights()), HSET of <n_fields> guard
 * fields (as redisw_write_guard()), PUBLISH the route, EXEC (outcome to
 * ops->on_written with <tag>); then an audit entry with source "guard",
 * <reason> and result "written". Same returns as redisw_write_weights().
 */
int redisw_write_trip(struct redisw *src, const char *route, const char *const *track,
                      const uint32_t *w, size_t n, const char *const *fields,
                      const char *const *values, size_t n_fields, const char *reason, uint64_t tag);

#endif
