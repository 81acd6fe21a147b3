#include "ups.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "log.h"
#include "sock.h"
#include "worker.h"
#include "xchg.h"

#define UPS_MAGIC 0x0b5c0a11u
#define UPS_SWEEP_MS 1000

static void conn_free(struct ups_conn *c);

/* Closes idle connections older than the idle timeout; the idle list is most
 * recently used first, so the stale ones are at its end. */
static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ups_pool *p = arg;
    uint64_t now = cut_now_ms();
    struct ups_conn *c = p->idle, *last = NULL;
    while (c != NULL) {
        last = c;
        c = c->next;
    }
    while (last != NULL && now - last->idle_since_ms >= p->idle_ms) {
        struct ups_conn *prev = last->prev;
        conn_free(last);
        last = prev;
    }
    if (p->idle != NULL) {
        struct timeval tv = {UPS_SWEEP_MS / 1000, (UPS_SWEEP_MS % 1000) * 1000};
        evtimer_add(p->sweep, &tv);
    }
}

struct ups_pool *ups_pool_get(struct worker *w, const struct conf_addr *a)
{
    struct sockaddr_storage ss;
    socklen_t len;
    len = conf_addr_sockaddr(a, &ss);
    for (struct ups_pool *p = w->pool_list; p != NULL; p = p->next)
        if (p->sslen == len && memcmp(&p->ss, &ss, len) == 0)
            return p;
    struct ups_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->sweep = evtimer_new(w->base, sweep_cb, p);
    if (p->sweep == NULL) {
        free(p);
        return NULL;
    }
    p->w = w;
    p->ss = ss;
    p->sslen = len;
    p->idle_ms = 30000;
    if (a->family == AF_INET6)
        snprintf(p->name, sizeof(p->name), "[%s]:%u", a->host, a->port);
    else
        snprintf(p->name, sizeof(p->name), "%s:%u", a->host, a->port);
    p->waiters.next = p->waiters.prev = &p->waiters;
    p->next = w->pool_list;
    w->pool_list = p;
    return p;
}

static void idle_unlink(struct ups_conn *c)
{
    struct ups_pool *p = c->pool;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        p->idle = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    p->n_idle--;
}

static void wake_waiter(struct ups_pool *p)
{
    struct ups_waiter *wt = p->waiters.next;
    if (wt == &p->waiters)
        return;
    ups_waiter_cancel(wt);
    wt->ready(wt);
}

static void conn_free(struct ups_conn *c)
{
    struct ups_pool *p = c->pool;
    if (c->state == UPS_IDLE)
        idle_unlink(c);
    sock_free(c->sk);
    c->magic = 0;
    free(c);
    p->n_total--;
    wake_waiter(p);
}

/* The one set of callbacks of every upstream sock. */
static void conn_read_cb(struct sock *sk, void *arg)
{
    struct ups_conn *c = arg;
    CUT_BUG_ON(c->magic != UPS_MAGIC);
    if (c->state == UPS_BUSY && c->ops != NULL) {
        c->ops->on_read(c->owner);
        return;
    }
    /* idle: the server hung up or sent something unsolicited; unusable */
    if (c->state == UPS_IDLE)
        conn_free(c);
}

static void conn_write_cb(struct sock *sk, void *arg)
{
    struct ups_conn *c = arg;
    CUT_BUG_ON(c->magic != UPS_MAGIC);
    if (c->state == UPS_BUSY && c->ops != NULL)
        c->ops->on_write(c->owner);
}

static void conn_event_cb(struct sock *sk, short what, void *arg)
{
    struct ups_conn *c = arg;
    CUT_BUG_ON(c->magic != UPS_MAGIC);
    if (c->state == UPS_IDLE) {
        conn_free(c);
        return;
    }
    if (c->ops != NULL)
        c->ops->on_event(c->owner, what);
}

struct ups_conn *ups_lease(struct ups_pool *p, unsigned cap, struct ups_waiter *wt, int *err)
{
    struct ups_conn *c = p->idle;
    *err = 0;
    if (c != NULL) {
        idle_unlink(c);
        c->state = UPS_BUSY;
        c->owner = NULL;
        c->ops = NULL;
        return c;
    }
    if (cap != 0 && p->n_total >= cap) {
        if (wt != NULL) {
            wt->prev = p->waiters.prev;
            wt->next = &p->waiters;
            p->waiters.prev->next = wt;
            p->waiters.prev = wt;
        }
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    c->sk = sock_new(p->w->base, -1, NULL);
    if (c->sk == NULL) {
        free(c);
        *err = -ENOMEM;
        return NULL;
    }
    c->magic = UPS_MAGIC;
    c->pool = p;
    c->state = UPS_CONNECTING;
    p->n_total++;
    p->n_connects++;
    sock_setcb(c->sk, conn_read_cb, conn_write_cb, conn_event_cb, c);
    sock_setwatermark(c->sk, EV_WRITE, XCHG_BUF_LOW, 0);
    sock_setwatermark(c->sk, EV_READ, 0, XCHG_BUF_HIGH);
    if (sock_connect(c->sk, (struct sockaddr *)&p->ss, p->sslen) == -1) {
        /* immediate failure (e.g. no ports); ECONNREFUSED normally arrives as an event */
        int e = errno ? errno : ECONNREFUSED;
        p->n_connect_failures++;
        c->state = UPS_BUSY;
        conn_free(c);
        *err = -e;
        return NULL;
    }
    int fd = sock_fd(c->sk);
    if (fd != -1) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    sock_enable(c->sk, EV_READ | EV_WRITE);
    return c;
}

void ups_waiter_cancel(struct ups_waiter *wt)
{
    if (wt->next == NULL)
        return;
    wt->prev->next = wt->next;
    wt->next->prev = wt->prev;
    wt->next = wt->prev = NULL;
}

void ups_release(struct ups_conn *c, int reusable, unsigned idle_ms)
{
    CUT_BUG_ON(c->magic != UPS_MAGIC);
    struct ups_pool *p = c->pool;
    c->owner = NULL;
    c->ops = NULL;
    if (!reusable || p->w->draining || evbuffer_get_length(sock_input(c->sk)) != 0) {
        conn_free(c);
        return;
    }
    c->n_requests++;
    c->state = UPS_IDLE;
    c->idle_since_ms = cut_now_cached_ms();
    c->prev = NULL;
    c->next = p->idle;
    if (p->idle != NULL)
        p->idle->prev = c;
    p->idle = c;
    p->n_idle++;
    p->idle_ms = idle_ms;
    if (!evtimer_pending(p->sweep, NULL)) {
        struct timeval tv = {UPS_SWEEP_MS / 1000, (UPS_SWEEP_MS % 1000) * 1000};
        evtimer_add(p->sweep, &tv);
    }
    /* a waiter can take this connection right away */
    if (p->waiters.next != &p->waiters)
        wake_waiter(p);
}

void ups_pools_free(struct worker *w)
{
    struct ups_pool *p = w->pool_list;
    while (p != NULL) {
        struct ups_pool *next = p->next;
        p->waiters.next = p->waiters.prev = &p->waiters; /* no wake-ups at exit */
        while (p->idle != NULL)
            conn_free(p->idle);
        event_free(p->sweep);
        free(p);
        p = next;
    }
    w->pool_list = NULL;
}
