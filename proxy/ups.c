#include "ups.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "worker.h"

#define UPS_MAGIC 0x0b5c0a11u

static void addr_to_sockaddr(const struct conf_addr *a, struct sockaddr_storage *ss,
                             socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(a->port);
        inet_pton(AF_INET6, a->host, &s6->sin6_addr);
        *len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(a->port);
        inet_pton(AF_INET, a->host, &s4->sin_addr);
        *len = sizeof(*s4);
    }
}

struct ups_pool *ups_pool_get(struct worker *w, const struct conf_addr *a)
{
    struct sockaddr_storage ss;
    socklen_t len;
    addr_to_sockaddr(a, &ss, &len);
    for (struct ups_pool *p = w->pool_list; p != NULL; p = p->next)
        if (p->sslen == len && memcmp(&p->ss, &ss, len) == 0)
            return p;
    struct ups_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->w = w;
    p->ss = ss;
    p->sslen = len;
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
    bufferevent_free(c->bev);
    c->magic = 0;
    free(c);
    p->n_total--;
    wake_waiter(p);
}

/* An idle connection became readable or closed: the server hung up, or sent
 * something unsolicited. Either way it is no longer usable. */
static void idle_read_cb(struct bufferevent *bev, void *arg)
{
    struct ups_conn *c = arg;
    CUT_BUG_ON(c->magic != UPS_MAGIC);
    conn_free(c);
}

static void idle_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct ups_conn *c = arg;
    CUT_BUG_ON(c->magic != UPS_MAGIC);
    conn_free(c);
}

struct ups_conn *ups_lease(struct ups_pool *p, unsigned cap, struct ups_waiter *wt, int *err)
{
    struct ups_conn *c = p->idle;
    *err = 0;
    if (c != NULL) {
        idle_unlink(c);
        c->state = UPS_BUSY;
        bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
        bufferevent_set_timeouts(c->bev, NULL, NULL);
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
    c->bev = bufferevent_socket_new(p->w->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        free(c);
        *err = -ENOMEM;
        return NULL;
    }
    c->magic = UPS_MAGIC;
    c->pool = p;
    c->state = UPS_CONNECTING;
    p->n_total++;
    p->n_connects++;
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&p->ss, (int)p->sslen) == -1) {
        /* immediate failure (e.g. no ports); ECONNREFUSED normally arrives as an event */
        int e = errno ? errno : ECONNREFUSED;
        p->n_connect_failures++;
        c->state = UPS_BUSY;
        conn_free(c);
        *err = -e;
        return NULL;
    }
    int fd = bufferevent_getfd(c->bev);
    if (fd != -1) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
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
    if (!reusable || p->w->draining || evbuffer_get_length(bufferevent_get_input(c->bev)) != 0) {
        conn_free(c);
        return;
    }
    c->n_requests++;
    c->state = UPS_IDLE;
    c->prev = NULL;
    c->next = p->idle;
    if (p->idle != NULL)
        p->idle->prev = c;
    p->idle = c;
    p->n_idle++;
    struct timeval tv = {idle_ms / 1000, (idle_ms % 1000) * 1000};
    bufferevent_setcb(c->bev, idle_read_cb, NULL, idle_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    bufferevent_set_timeouts(c->bev, &tv, NULL);
    bufferevent_enable(c->bev, EV_READ);
    /* a waiter can take this connection right away */
    if (p->waiters.next != &p->waiters)
        wake_waiter(p);
}

void ups_pools_free(struct worker *w)
{
    struct ups_pool *p = w->pool_list;
    while (p != NULL) {
        struct ups_pool *next = p->next;
        while (p->idle != NULL)
            conn_free(p->idle);
        free(p);
        p = next;
    }
    w->pool_list = NULL;
}
