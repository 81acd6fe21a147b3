#include "health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"

static pthread_mutex_t hc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hc_target *targets;

static void addr_name(const struct conf_addr *a, char *buf, size_t len)
{
    if (a->family == AF_INET6)
        snprintf(buf, len, "[%s]:%u", a->host, a->port);
    else
        snprintf(buf, len, "%s:%u", a->host, a->port);
}

struct hc_target *health_find(const char *name)
{
    pthread_mutex_lock(&hc_lock);
    struct hc_target *t = targets;
    while (t != NULL && !(t->active && strcmp(t->name, name) == 0))
        t = t->next;
    pthread_mutex_unlock(&hc_lock);
    return t;
}

struct hc_target *health_targets(void)
{
    return targets;
}

static void check_done(struct hc_target *t, int ok, const char *why)
{
    if (t->bev != NULL) {
        bufferevent_free(t->bev);
        t->bev = NULL;
    }
    t->in_flight = 0;
    t->checks++;
    int healthy = atomic_load_explicit(&t->healthy, memory_order_relaxed);
    if (ok) {
        t->ok_run++;
        t->fail_run = 0;
        t->last_error[0] = '\0';
        if (!healthy && t->ok_run >= t->conf.rise) {
            atomic_store_explicit(&t->healthy, 1, memory_order_relaxed);
            t->transitions++;
            cut_log(CUT_WARN, "health: %s is healthy again (%u checks passed)", t->name,
                    t->ok_run);
        }
    } else {
        t->failures++;
        t->fail_run++;
        t->ok_run = 0;
        snprintf(t->last_error, sizeof(t->last_error), "%s", why);
        if (healthy && t->fail_run >= t->conf.fall) {
            atomic_store_explicit(&t->healthy, 0, memory_order_relaxed);
            t->transitions++;
            cut_log(CUT_WARN, "health: %s is unhealthy after %u failed checks: %s", t->name,
                    t->fail_run, why);
        }
    }
}

static void hc_read_cb(struct bufferevent *bev, void *arg)
{
    struct hc_target *t = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t room = sizeof(t->buf) - 1 - t->buf_len;
    size_t n = evbuffer_remove(in, t->buf + t->buf_len, room);
    t->buf_len += n;
    t->buf[t->buf_len] = '\0';
    char *eol = strstr(t->buf, "\r\n");
    if (eol == NULL && t->buf_len < sizeof(t->buf) - 1)
        return;
    int status = 0;
    if (sscanf(t->buf, "HTTP/1.%*d %d", &status) != 1) {
        check_done(t, 0, "bad status line");
        return;
    }
    if (status >= 200 && status < 400) {
        check_done(t, 1, NULL);
    } else {
        char why[32];
        snprintf(why, sizeof(why), "status %d", status);
        check_done(t, 0, why);
    }
}

static void hc_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct hc_target *t = arg;
    if (what & BEV_EVENT_CONNECTED) {
        struct evbuffer *out = bufferevent_get_output(bev);
        evbuffer_add_printf(out,
                            "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: cutover-health\r\n"
                            "Connection: close\r\n\r\n",
                            t->conf.path, t->name);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        check_done(t, 0, "timeout");
    else if (what & BEV_EVENT_EOF)
        check_done(t, 0, "closed without a status line");
    else
        check_done(t, 0, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void hc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct hc_target *t = arg;
    if (t->in_flight)
        check_done(t, 0, "timeout");
    if (!t->active)
        return;
    struct sockaddr_storage ss;
    socklen_t len;
    len = conf_addr_sockaddr(&t->addr, &ss);
    t->bev = bufferevent_socket_new(t->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (t->bev == NULL) {
        check_done(t, 0, "out of memory");
        goto rearm;
    }
    t->in_flight = 1;
    t->buf_len = 0;
    struct timeval to = {t->conf.timeout_ms / 1000, (t->conf.timeout_ms % 1000) * 1000};
    bufferevent_set_timeouts(t->bev, &to, &to);
    bufferevent_setcb(t->bev, hc_read_cb, NULL, hc_event_cb, t);
    bufferevent_enable(t->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(t->bev, (struct sockaddr *)&ss, (int)len) == -1)
        check_done(t, 0, strerror(errno));
rearm:;
    struct timeval iv = {t->conf.interval_ms / 1000, (t->conf.interval_ms % 1000) * 1000};
    evtimer_add(t->timer, &iv);
}

static struct hc_target *target_get(struct event_base *base, const struct conf_addr *a)
{
    char name[CONF_ADDR_HOSTLEN + 16];
    addr_name(a, name, sizeof(name));
    for (struct hc_target *t = targets; t != NULL; t = t->next)
        if (strcmp(t->name, name) == 0)
            return t;
    struct hc_target *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->timer = evtimer_new(base, hc_timer_cb, t);
    if (t->timer == NULL) {
        free(t);
        return NULL;
    }
    memcpy(t->name, name, sizeof(t->name));
    t->addr = *a;
    t->base = base;
    atomic_init(&t->healthy, 1);
    pthread_mutex_lock(&hc_lock);
    t->next = targets;
    targets = t;
    pthread_mutex_unlock(&hc_lock);
    return t;
}

int health_configure(struct event_base *base, const struct conf *c)
{
    pthread_mutex_lock(&hc_lock);
    for (struct hc_target *t = targets; t != NULL; t = t->next)
        t->active = 0;
    pthread_mutex_unlock(&hc_lock);
    for (size_t i = 0; i < c->n_routes; i++) {
        const struct conf_route *r = &c->routes[i];
        if (!r->health.enabled)
            continue;
        for (size_t k = 0; k < r->n_tracks; k++) {
            for (size_t j = 0; j < r->tracks[k].n_servers; j++) {
                struct hc_target *t = target_get(base, &r->tracks[k].addrs[j]);
                if (t == NULL)
                    return -1;
                if (t->active)
                    continue; /* the first route that checks a server sets how */
                char *path = strdup(r->health.path);
                if (path == NULL)
                    return -1;
                free(t->conf.path);
                t->conf = r->health;
                t->conf.path = path;
                pthread_mutex_lock(&hc_lock);
                t->active = 1;
                pthread_mutex_unlock(&hc_lock);
                if (!evtimer_pending(t->timer, NULL)) {
                    struct timeval now = {0, 0};
                    evtimer_add(t->timer, &now);
                }
            }
        }
    }
    /* targets no longer checked: stop, and count as healthy */
    for (struct hc_target *t = targets; t != NULL; t = t->next) {
        if (t->active)
            continue;
        evtimer_del(t->timer);
        if (t->bev != NULL) {
            bufferevent_free(t->bev);
            t->bev = NULL;
        }
        t->in_flight = 0;
        atomic_store(&t->healthy, 1);
    }
    return 0;
}

void health_free_all(void)
{
    while (targets != NULL) {
        struct hc_target *t = targets;
        targets = t->next;
        if (t->bev != NULL)
            bufferevent_free(t->bev);
        event_free(t->timer);
        free(t->conf.path);
        free(t);
    }
}
