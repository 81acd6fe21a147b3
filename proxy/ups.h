/*
 * ups.h: upstream HTTP/1.1 keep-alive connection pools, one per server
 * address per worker. A pool owns its idle connections; a leased connection
 * is owned by the exchange that leased it until ups_release().
 */
#ifndef CUTOVER_UPS_H
#define CUTOVER_UPS_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "../conf/conf.h"
#include "../routing/outlier.h"

struct sock;
struct event;
struct worker;
struct ups_pool;
struct hc_target;

enum ups_state { UPS_CONNECTING = 0, UPS_IDLE, UPS_BUSY, UPS_N_STATES };

/* What a leased connection reports to its owner (the exchange). */
struct ups_owner_ops {
    void (*on_read)(void *owner);
    void (*on_write)(void *owner);          /* output fell to the low mark */
    void (*on_event)(void *owner, short what); /* BEV_EVENT_* */
};

/*
 * The sock's callbacks are set once, at connect, and dispatch to the
 * owner while leased, so a lease or a release costs no libevent call: the
 * watermarks stay put, reading stays enabled, and idle connections are timed
 * out by one sweep per pool rather than a timer each.
 */
struct ups_conn {
    unsigned magic;
    struct ups_pool *pool;
    struct sock *sk;
    struct ups_conn *prev, *next; /* idle list */
    enum ups_state state;
    unsigned n_requests;           /* requests completed on this connection */
    uint64_t idle_since_ms;
    void *owner;                   /* leased: the exchange */
    const struct ups_owner_ops *ops;
};

/* A request waiting for a connection slot when the pool is at its cap. */
struct ups_waiter {
    struct ups_waiter *prev, *next;
    void (*ready)(struct ups_waiter *wt); /* a slot is free: call ups_lease again */
};

struct ups_pool {
    struct ups_pool *next;  /* worker's list */
    struct event *sweep;    /* closes idle connections past their idle timeout */
    unsigned idle_ms;
    struct worker *w;
    struct sockaddr_storage ss;
    socklen_t sslen;
    char name[CONF_ADDR_HOSTLEN + 16];
    struct ups_conn *idle;  /* most recently used first */
    unsigned n_idle, n_total;
    struct ups_waiter waiters; /* list head */
    uint64_t n_connects, n_connect_failures;
    /* health: the active check's verdict (shared, NULL when not checked) and
     * this worker's passive ejection state */
    struct hc_target *hc;
    struct outlier_state outlier;
};

/* Finds or creates the pool for <a> in <w>. NULL on allocation failure. */
struct ups_pool *ups_pool_get(struct worker *w, const struct conf_addr *a);

/*
 * Leases a connection: an idle one (state UPS_BUSY) or a new one still
 * connecting (UPS_CONNECTING; the caller's event callback sees
 * BEV_EVENT_CONNECTED or an error). The caller sets the owner
 * (ups_set_owner). Returns NULL when the pool is at <cap> connections (then, if
 * <wt> is given, it is queued and wt->ready runs when a slot frees) or on
 * failure (<*err> = -errno).
 */
struct ups_conn *ups_lease(struct ups_pool *p, unsigned cap, struct ups_waiter *wt, int *err);

/* Makes <owner> receive <c>'s events through <ops> until ups_release. */
static inline void ups_set_owner(struct ups_conn *c, void *owner, const struct ups_owner_ops *ops)
{
    c->owner = owner;
    c->ops = ops;
}

/* Removes <wt> from its pool's wait list if it is queued. */
void ups_waiter_cancel(struct ups_waiter *wt);

/*
 * Gives back a leased connection: to the idle list when <reusable> (the
 * response was complete, keep-alive, and the request fully sent), else closes
 * it. <idle_ms> is the idle timeout.
 */
void ups_release(struct ups_conn *c, int reusable, unsigned idle_ms);

/* Closes every idle connection and frees all pools of <w> (worker exit). */
void ups_pools_free(struct worker *w);

#endif
