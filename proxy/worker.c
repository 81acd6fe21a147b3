/*
 * worker.c: worker threads, their listeners and the protocol sniffing that
 * hands a new connection to the HTTP/1.1 or HTTP/2 front.
 */
#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "accesslog.h"
#include "front.h"
#include "health.h"
#include "log.h"
#include "sock.h"
#include "tls.h"
#include "ups.h"
#include "xchg.h"

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN 24

struct defer {
    struct defer *next;
    void (*fn)(void *);
    void *p;
};

/* One per listener per worker: what the accept callback needs. */
struct lctx {
    struct worker *w;
    SSL_CTX *ssl_ctx;
};

/* A connection whose protocol is not known yet. */
struct sniff {
    struct worker *w;
    int tls;
    struct sockaddr_storage peer;
    socklen_t peerlen;
};

/* ---- snapshots ---- */

struct snap *shared_snap_get(struct shared *sh)
{
    pthread_mutex_lock(&sh->publish_lock);
    struct snap *s = snap_ref(atomic_load_explicit(&sh->snap, memory_order_acquire));
    pthread_mutex_unlock(&sh->publish_lock);
    return s;
}

void shared_publish(struct shared *sh, struct snap *s)
{
    pthread_mutex_lock(&sh->publish_lock);
    struct snap *old = atomic_exchange_explicit(&sh->snap, s, memory_order_acq_rel);
    pthread_mutex_unlock(&sh->publish_lock);
    if (old != NULL)
        snap_unref(old);
}

static int same_tracks(const struct snap_route *a, const struct snap_route *b)
{
    if (a->n_tracks != b->n_tracks)
        return 0;
    for (size_t i = 0; i < a->n_tracks; i++)
        if (strcmp(a->tracks[i].name, b->tracks[i].name) != 0)
            return 0;
    return 1;
}

void worker_refresh(struct worker *w)
{
    /* Fast path: one acquire load. Comparing is safe without the lock since
     * w->snap holds a reference: its address cannot be reused meanwhile. */
    struct snap *cur = atomic_load_explicit(&w->shared->snap, memory_order_acquire);
    if (cur == w->snap)
        return;
    struct snap *s = shared_snap_get(w->shared);
    struct worker_route_state *rs = calloc(s->n_routes ? s->n_routes : 1, sizeof(*rs));
    struct ups_pool **pools = calloc(s->n_servers ? s->n_servers : 1, sizeof(*pools));
    if (rs == NULL || pools == NULL)
        goto fail;
    for (size_t i = 0; i < s->n_servers; i++) {
        pools[i] = ups_pool_get(w, &s->servers[i].addr);
        if (pools[i] == NULL)
            goto fail;
        pools[i]->hc = health_find(pools[i]->name);
    }
    for (size_t i = 0; i < s->n_routes; i++) {
        const struct snap_route *r = &s->routes[i];
        uint32_t wts[CONF_MAX_TRACKS];
        for (size_t t = 0; t < r->n_tracks; t++)
            wts[t] = r->tracks[t].weight;
        int old = w->snap ? snap_route_index(w->snap, r->name) : -1;
        if (old >= 0 && same_tracks(&w->snap->routes[old], r)) {
            /* carry the smooth-WRR state: re-applied weights keep the split exact */
            rs[i] = w->routes[old];
            swrr_set_weights(&rs[i].swrr, wts, r->n_tracks);
        } else {
            swrr_init(&rs[i].swrr, wts, r->n_tracks);
        }
    }
    free(w->routes);
    free(w->pools);
    w->routes = rs;
    w->pools = pools;
    struct snap *old = w->snap;
    w->snap = s;
    if (old != NULL) {
        stats_worker_snap_changed(w, old);
        snap_unref(old);
    }
    return;
fail:
    cut_log(CUT_ERR, "w=%u out of memory applying snapshot %llu; keeping %llu", w->id,
            (unsigned long long)s->generation,
            (unsigned long long)(w->snap ? w->snap->generation : 0));
    free(rs);
    free(pools);
    if (w->snap == NULL)
        abort();
    snap_unref(s);
}

/* ---- connections ---- */

void worker_conn_add(struct worker *w, struct conn_link *l)
{
    l->next = w->conns.next;
    l->prev = &w->conns;
    w->conns.next->prev = l;
    w->conns.next = l;
    w->n_conns++;
    atomic_store_explicit(&w->stats.conns_open, w->n_conns, memory_order_relaxed);
}

void worker_conn_del(struct worker *w, struct conn_link *l)
{
    if (l->next == NULL)
        return;
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->next = l->prev = NULL;
    w->n_conns--;
    atomic_store_explicit(&w->stats.conns_open, w->n_conns, memory_order_relaxed);
    if (w->draining && w->n_conns == 0)
        event_base_loopexit(w->base, NULL);
}

static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    while (w->to_free != NULL) {
        struct defer *d = w->to_free;
        w->to_free = NULL;
        while (d != NULL) {
            struct defer *next = d->next;
            d->fn(d->p);
            free(d);
            d = next;
        }
    }
}

void worker_defer_free(struct worker *w, void (*fn)(void *), void *p)
{
    struct defer *d = malloc(sizeof(*d));
    if (d == NULL) {
        /* still deferred, by a one-shot event of libevent's own */
        if (event_base_once(w->base, -1, EV_TIMEOUT, (event_callback_fn)(void (*)(void))fn, p,
                            NULL) == -1)
            abort();
        return;
    }
    d->fn = fn;
    d->p = p;
    d->next = w->to_free;
    w->to_free = d;
    event_active(w->reaper, EV_TIMEOUT, 0);
}

/* ---- accepting ---- */

static void sniff_done(struct sniff *sn, struct sock *s, int h2)
{
    struct worker *w = sn->w;
    int tls = sn->tls;
    struct sockaddr_storage peer = sn->peer;
    socklen_t peerlen = sn->peerlen;
    free(sn);
    sock_setcb(s, NULL, NULL, NULL, NULL);
    sock_set_timeouts(s, NULL, NULL);
    if (h2)
        h2f_start(w, s, tls, (struct sockaddr *)&peer, peerlen);
    else
        h1f_start(w, s, tls, (struct sockaddr *)&peer, peerlen);
}

static void sniff_read_cb(struct sock *s, void *arg)
{
    struct sniff *sn = arg;
    char buf[H2_PREFACE_LEN];
    ev_ssize_t n = evbuffer_copyout(sock_input(s), buf, sizeof(buf));
    if (n <= 0)
        return;
    if (memcmp(buf, h2_preface, (size_t)n) != 0) {
        sniff_done(sn, s, 0);
        return;
    }
    if (n == H2_PREFACE_LEN)
        sniff_done(sn, s, 1);
    /* a prefix of the preface: wait for more */
}

static void sniff_event_cb(struct sock *s, short what, void *arg)
{
    struct sniff *sn = arg;
    if (what & BEV_EVENT_CONNECTED) {
        /* TLS handshake done: ALPN decides */
        SSL *ssl = sock_ssl(s);
        sniff_done(sn, s, ssl != NULL && tls_is_h2(ssl));
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        unsigned long e;
        while ((e = sock_ssl_error(s)) != 0) {
            char b[256];
            ERR_error_string_n(e, b, sizeof(b));
            cut_log(CUT_DEBUG, "w=%u TLS handshake failed: %s", sn->w->id, b);
        }
    }
    free(sn);
    sock_free(s);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct lctx *lc = arg;
    struct worker *w = lc->w;
    worker_refresh(w);
    if (w->draining || w->n_conns >= w->snap->limits.max_connections) {
        atomic_fetch_add_explicit(&w->stats.conns_refused, 1, memory_order_relaxed);
        evutil_closesocket(fd);
        return;
    }
    atomic_fetch_add_explicit(&w->stats.conns_accepted, 1, memory_order_relaxed);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sniff *sn = calloc(1, sizeof(*sn));
    if (sn == NULL) {
        evutil_closesocket(fd);
        return;
    }
    sn->w = w;
    sn->peerlen = (socklen_t)salen <= sizeof(sn->peer) ? (socklen_t)salen : sizeof(sn->peer);
    memcpy(&sn->peer, sa, sn->peerlen);
    SSL *ssl = NULL;
    if (lc->ssl_ctx != NULL) {
        ssl = SSL_new(lc->ssl_ctx);
        if (ssl == NULL) {
            free(sn);
            evutil_closesocket(fd);
            return;
        }
        sn->tls = 1;
    }
    struct sock *s = sock_new(w->base, fd, ssl);
    if (s == NULL) {
        if (ssl != NULL)
            SSL_free(ssl);
        free(sn);
        evutil_closesocket(fd);
        return;
    }
    unsigned ms = w->snap->timeouts.header_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    sock_set_timeouts(s, &tv, &tv);
    sock_setcb(s, sniff_read_cb, NULL, sniff_event_cb, sn);
    sock_enable(s, EV_READ);
}

static void listener_error_cb(struct evconnlistener *l, void *arg)
{
    struct lctx *lc = arg;
    int e = EVUTIL_SOCKET_ERROR();
    cut_log(CUT_WARN, "w=%u accept failed: %s", lc->w->id, evutil_socket_error_to_string(e));
    /* EMFILE and the like: pause briefly instead of spinning */
    if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        evconnlistener_disable(l);
        struct timeval tv = {0, 100000};
        event_base_once(lc->w->base, -1, EV_TIMEOUT,
                        (event_callback_fn)(void (*)(void))evconnlistener_enable, l, &tv);
    }
}

static void close_listeners(struct worker *w)
{
    for (size_t i = 0; i < w->n_listeners; i++) {
        if (w->listeners[i] == NULL)
            continue;
        evconnlistener_free(w->listeners[i]);
        w->listeners[i] = NULL;
    }
}

/* ---- drain and life cycle ---- */

static void drain_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    cut_log(CUT_WARN, "w=%u drain timeout: closing %u connections", w->id, w->n_conns);
    event_base_loopexit(w->base, NULL);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    uint64_t v;
    if (read(w->wake_fd, &v, sizeof(v)) == -1 && errno != EAGAIN)
        cut_log(CUT_WARN, "w=%u wake read: %s", w->id, strerror(errno));
    if (!atomic_load(&w->want_drain) || w->draining)
        return;
    w->draining = 1;
    close_listeners(w);
    struct conn_link *l = w->conns.next;
    while (l != &w->conns) {
        struct conn_link *next = l->next;
        l->on_drain(l);
        l = next;
    }
    if (w->n_conns == 0) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    unsigned ms = w->snap->timeouts.drain_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(w->drain_timer, &tv);
}

void worker_request_drain(struct worker *w)
{
    atomic_store(&w->want_drain, 1);
    /* the worker's base has no locks (EVENT_BASE_FLAG_NOLOCK): other threads
     * reach it only through this eventfd */
    uint64_t one = 1;
    if (write(w->wake_fd, &one, sizeof(one)) == -1)
        cut_log(CUT_ERR, "w=%u wake write: %s", w->id, strerror(errno));
}

static void libevent_log_cb(int severity, const char *msg)
{
    int level = severity >= EVENT_LOG_ERR ? CUT_ERR : severity >= EVENT_LOG_WARN ? CUT_WARN
                                                                                 : CUT_DEBUG;
    cut_log(level, "libevent: %s", msg);
}

/*
 * Binds <cl>. With <exclusive>, binds without SO_REUSEPORT and closes at
 * once: a probe run before the workers bind, so that a port some other
 * process already holds with SO_REUSEPORT (an old instance, say) is refused
 * with EADDRINUSE instead of silently sharing its traffic.
 */
static int listen_socket(const struct conf_listen *cl, int exclusive, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    len = conf_addr_sockaddr(&cl->addr, &ss);
    int fd = socket(cl->addr.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        goto fail;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (!exclusive && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
        goto fail;
    if (cl->addr.family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) == -1)
        goto fail;
    if (exclusive) {
        close(fd);
        return 0;
    }
    if (listen(fd, 1024) == -1)
        goto fail;
    return fd;
fail:
    snprintf(err, errlen, "listen %s: %s", cl->address, strerror(errno));
    if (fd != -1)
        close(fd);
    return -1;
}

int worker_init(struct worker *w, unsigned id, struct shared *sh, char *err, size_t errlen)
{
    const struct conf *c = sh->conf;
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->shared = sh;
    w->conns.next = w->conns.prev = &w->conns;
    event_set_log_callback(libevent_log_cb);
    /*
     * No epoll changelist (EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST): it defers
     * the epoll_ctl of an event_del to the next dispatch, after the fd is
     * closed, when another thread may already have that fd number (TSan saw a
     * worker's deferred epoll_ctl on the main thread's new admin socket). The
     * socket layer keeps its read event added and asks for writes only when a
     * socket is full, so there were no add/del pairs left for it to fold: 0.00
     * epoll_ctl per request on h2c and HTTP/1.1 with or without it.
     */
    struct event_config *cfg = event_config_new();
    if (cfg != NULL) {
        /* one thread per base: no locks on every event_add/del */
        event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    }
    w->base = cfg != NULL ? event_base_new_with_config(cfg) : NULL;
    if (cfg != NULL)
        event_config_free(cfg);
    if (w->base == NULL) {
        snprintf(err, errlen, "event_base_new failed");
        return -1;
    }
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd == -1) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        return -1;
    }
    w->wake = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, wake_cb, w);
    if (w->wake != NULL)
        event_add(w->wake, NULL);
    w->reaper = event_new(w->base, -1, 0, reaper_cb, w);
    w->drain_timer = evtimer_new(w->base, drain_timer_cb, w);
    if (w->wake == NULL || w->reaper == NULL || w->drain_timer == NULL ||
        alog_worker_init(w) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (RAND_bytes((unsigned char *)&w->rng, sizeof(w->rng)) != 1 || w->rng == 0)
        w->rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)id << 32) ^ (uint64_t)getpid();
    worker_refresh(w);
    if (stats_worker_init(w) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->listeners = calloc(c->n_listens, sizeof(*w->listeners));
    w->listener_ctx = calloc(c->n_listens, sizeof(struct lctx));
    if (w->listeners == NULL || w->listener_ctx == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->n_listeners = c->n_listens;
    for (size_t i = 0; i < c->n_listens; i++) {
        if (id == 0 && listen_socket(&c->listens[i], 1, err, errlen) == -1)
            return -1;
        int fd = listen_socket(&c->listens[i], 0, err, errlen);
        if (fd == -1)
            return -1;
        struct lctx *lc = (struct lctx *)w->listener_ctx + i;
        lc->w = w;
        lc->ssl_ctx = sh->ssl_ctx ? sh->ssl_ctx[i] : NULL;
        w->listeners[i] = evconnlistener_new(w->base, accept_cb, lc, LEV_OPT_CLOSE_ON_FREE, -1,
                                             fd);
        if (w->listeners[i] == NULL) {
            close(fd);
            snprintf(err, errlen, "listen %s: evconnlistener_new failed",
                     c->listens[i].address);
            return -1;
        }
        evconnlistener_set_error_cb(w->listeners[i], listener_error_cb);
    }
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    event_base_dispatch(w->base);
    /* count first: two activations close together run the callback once */
    atomic_fetch_add(&w->shared->n_exited, 1);
    if (w->shared->worker_exited != NULL)
        event_active(w->shared->worker_exited, EV_READ, 0);
    return NULL;
}

int worker_run(struct worker *w)
{
    /*
     * Signals are the main thread's (main.c's reload, drain, log reopen): a
     * worker starts with every asynchronous signal blocked, so none lands on
     * a worker thread (where a sanitizer's runtime may hold it back, and two
     * close together could merge into one).
     */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int e = pthread_create(&w->thread, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return e ? -e : 0;
}

void worker_join(struct worker *w)
{
    pthread_join(w->thread, NULL);
    /* connections left after drain_ms: kill them */
    struct conn_link *l = w->conns.next;
    while (l != NULL && l != &w->conns) {
        struct conn_link *next = l->next;
        if (l->on_kill != NULL)
            l->on_kill(l);
        l = next;
    }
    reaper_cb(-1, 0, w);
    xchg_pool_free(w);
    free(w->h1_fields);
    w->h1_fields = NULL;
    alog_flush(w);
    if (w->alog.timer != NULL)
        event_free(w->alog.timer);
    close_listeners(w);
    free(w->listeners);
    free(w->listener_ctx);
    ups_pools_free(w);
    event_free(w->wake);
    close(w->wake_fd);
    event_free(w->reaper);
    event_free(w->drain_timer);
    event_base_free(w->base);
    free(w->routes);
    free(w->pools);
    stats_worker_fini(w);
    if (w->snap != NULL)
        snap_unref(w->snap);
}
