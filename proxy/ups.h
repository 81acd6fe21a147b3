/*
 * ups.h: upstream HTTP/1.1 keep-alive connection pools, one per server
 * address per worker. A pool owns its idle connections; a leased connection
 * is owned by the exchange that leased it until ups_release().
 */
#ifndef CUTOVER_UPS_H
#define CUTOVER_UPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../conf/conf.h"

struct bufferevent;
struct worker;
struct ups_pool;
struct hc_target;

enum ups_state { UPS_CONNECTING = 0, UPS_IDLE, UPS_BUSY, UPS_N_STATES };

struct ups_conn {
    unsigned magic;
    struct ups_pool *pool;
    struct bufferevent *bev;
    struct ups_conn *prev, *next; /* idle list */
    enum ups_state state;
    unsigned n_requests;           /* requests completed on this connection */
};

/* A request waiting for a connection slot when the pool is at its cap. */
struct ups_waiter {
    struct ups_waiter *prev, *next;
    void (*ready)(struct ups_waiter *wt); /* a slot is free: call ups_lease again */
};

struct ups_pool {
    struct ups_pool *next;  /* worker's list */
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
    unsigned consecutive_failures;
    unsigned n_ejections;
    uint64_t ejected_until_ms;
};

/* Finds or creates the pool for <a> in <w>. NULL on allocation failure. */
struct ups_pool *ups_pool_get(struct worker *w, const struct conf_addr *a);

/*
 * Leases a connection: an idle one (state UPS_BUSY) or a new one still
 * connecting (UPS_CONNECTING; the caller's event callback sees
 * BEV_EVENT_CONNECTED or an error). The caller sets the bufferevent's
 * callbacks. Returns NULL when the pool is at <cap> connections (then, if
 * <wt> is given, it is queued and wt->ready runs when a slot frees) or on
 * failure (<*err> = -errno).
 */
struct ups_conn *ups_lease(struct ups_pool *p, unsigned cap, struct ups_waiter *wt, int *err);

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
