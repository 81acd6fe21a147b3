/*
 * redis_glue.c: the Redis weight source on the main thread (see redis_glue.h).
 *
 * Precedence, per route:
 *   - Redis over config while {prefix}:route:{route}:weights exists and is valid;
 *   - key deleted: the config's weights come back (source "config");
 *   - key invalid: refused (log + audit once per distinct reason), last good weights stay;
 *   - SIGHUP: the new config's snapshot gets the held Redis override re-applied before it
 *     is published, then Redis is read again.
 * Snapshots are only published from here and from main.c, both on the main thread, so
 * "read the current snapshot, derive, publish" cannot lose an update.
 */
#include "redis_glue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>

#include "../routing/redis_source.h"
#include "../routing/weights.h"
#include "log.h"

#define RG_WBUF 512

/* What the glue remembers about a route across snapshots and reloads. */
struct rg_route {
    char *name;
    int has_override; /* the last read found a valid hash: keep it for reloads */
    size_t n;
    char *f[CONF_MAX_TRACKS], *v[CONF_MAX_TRACKS];
    size_t fl[CONF_MAX_TRACKS], vl[CONF_MAX_TRACKS];
    char *refused; /* reason of the refusal in force (logged once), or NULL */
};

/* The redis block of the conf in use, to notice a reload that changes it. */
struct rg_conf {
    int enabled;
    char *address, *prefix, *username, *password, *instance;
    int db;
    unsigned poll_ms;
    int pubsub;
};

struct redis_glue {
    struct event_base *base;
    struct shared *sh;
    uint64_t *generation;
    struct redisw *src;
    struct event *timer;
    struct event *wait_timer;
    struct redisw_ops ops;
    struct rg_conf rc;
    char *instance; /* rc.instance or "host:pid" */
    struct rg_route *routes;
    size_t n_routes;
    unsigned downs[2]; /* failures since the last success: cmd, sub */
    int waiting;
};

/* ---- helpers ---- */

static int str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static char *xstrdup(const char *s)
{
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL) {
        cut_log(CUT_ERR, "redis: out of memory");
        abort(); /* a few bytes at start-up or reload: nothing sensible to do */
    }
    return d;
}

static void rg_conf_fini(struct rg_conf *rc)
{
    free(rc->address);
    free(rc->prefix);
    free(rc->username);
    free(rc->password);
    free(rc->instance);
    memset(rc, 0, sizeof(*rc));
}

static void rg_conf_set(struct rg_conf *rc, const struct conf_redis *r)
{
    rg_conf_fini(rc);
    rc->enabled = r->enabled;
    rc->address = xstrdup(r->address);
    rc->prefix = xstrdup(r->prefix);
    rc->username = xstrdup(r->username);
    rc->password = xstrdup(r->password);
    rc->instance = xstrdup(r->instance);
    rc->db = r->db;
    rc->poll_ms = r->poll_ms;
    rc->pubsub = r->pubsub;
}

static int rg_conf_differs(const struct rg_conf *rc, const struct conf_redis *r)
{
    return rc->enabled != r->enabled || !str_eq(rc->address, r->address) ||
           !str_eq(rc->prefix, r->prefix) || !str_eq(rc->username, r->username) ||
           !str_eq(rc->password, r->password) || !str_eq(rc->instance, r->instance) ||
           rc->db != r->db || rc->poll_ms != r->poll_ms || rc->pubsub != r->pubsub;
}

static void route_clear_override(struct rg_route *rt)
{
    size_t i;

    for (i = 0; i < rt->n; i++) {
        free(rt->f[i]);
        free(rt->v[i]);
        rt->f[i] = rt->v[i] = NULL;
    }
    rt->n = 0;
    rt->has_override = 0;
}

static void route_fini(struct rg_route *rt)
{
    route_clear_override(rt);
    free(rt->refused);
    free(rt->name);
    memset(rt, 0, sizeof(*rt));
}

static struct rg_route *route_find(struct redis_glue *g, const char *name, int create)
{
    struct rg_route *nr;
    size_t i;

    for (i = 0; i < g->n_routes; i++)
        if (strcmp(g->routes[i].name, name) == 0)
            return &g->routes[i];
    if (!create)
        return NULL;
    nr = realloc(g->routes, (g->n_routes + 1) * sizeof(*nr));
    if (nr == NULL)
        return NULL;
    g->routes = nr;
    nr = &g->routes[g->n_routes];
    memset(nr, 0, sizeof(*nr));
    nr->name = strdup(name);
    if (nr->name == NULL)
        return NULL;
    g->n_routes++;
    return nr;
}

/* Copies a valid Redis hash as the route's override. Returns 0 or -1. */
static int route_set_override(struct rg_route *rt, const struct redisw_hash *h)
{
    size_t i;

    route_clear_override(rt);
    for (i = 0; i < h->n && i < CONF_MAX_TRACKS; i++) {
        rt->f[i] = malloc(h->flen[i] + 1);
        rt->v[i] = malloc(h->vlen[i] + 1);
        rt->n = i + 1;
        if (rt->f[i] == NULL || rt->v[i] == NULL) {
            route_clear_override(rt);
            return -1;
        }
        memcpy(rt->f[i], h->fields[i], h->flen[i]);
        rt->f[i][h->flen[i]] = '\0';
        rt->fl[i] = h->flen[i];
        memcpy(rt->v[i], h->values[i], h->vlen[i]);
        rt->v[i][h->vlen[i]] = '\0';
        rt->vl[i] = h->vlen[i];
    }
    rt->has_override = 1;
    return 0;
}

static void audit(struct redis_glue *g, const char *route, const char *old_w, const char *new_w,
                  const char *source, const char *reason, const char *result)
{
    struct redisw_audit a = {route, old_w, new_w, source, reason, result, NULL, 0};
    int rc;

    if (g->src == NULL)
        return;
    rc = redisw_audit(g->src, &a);
    if (rc == -ENOBUFS)
        cut_log(CUT_WARN, "redis: audit queue full while disconnected; oldest entry dropped");
    else if (rc < 0)
        cut_log(CUT_WARN, "redis: audit entry for route %s lost: %s", route, strerror(-rc));
}

/* Source labels that Redis reads may move between when the numbers stay the same. */
static int relabel_ok(enum weight_src from, enum weight_src to)
{
    return (from == WSRC_CONFIG || from == WSRC_REDIS) && (to == WSRC_CONFIG || to == WSRC_REDIS);
}

/*
 * Publishes the current snapshot with route <route>'s weights set to <w> from
 * <ws>, unless nothing changes. Logs and audits a change of weights;
 * <t0_us> (0: none) dates the trigger for the "in X us after" figure.
 * Returns 0 (also when nothing changed), -ENOENT or -ENOMEM.
 */
static int publish_weights(struct redis_glue *g, const char *route, const uint32_t *w,
                           enum weight_src ws, const char *reason, uint64_t t0_us,
                           const char *after)
{
    struct snap *cur = shared_snap_get(g->sh), *s;
    char was[RG_WBUF], now_w[RG_WBUF];
    const struct snap_route *r;
    enum weight_src old_src;
    int ri = snap_route_index(cur, route), same, rc = 0;
    uint64_t us;

    if (ri < 0 || cur->routes[ri].n_tracks == 0) {
        rc = -ENOENT;
        goto out;
    }
    r = &cur->routes[ri];
    old_src = r->tracks[0].src;
    same = weights_equal(r, w);
    if (same && (old_src == ws || !relabel_ok(old_src, ws)))
        goto out; /* a poll that finds what is in force: nothing to publish */
    s = snap_with_weights(cur, (size_t)ri, w, ws, ++*g->generation, cut_now_ms());
    if (s == NULL) {
        cut_log(CUT_ERR, "weights for route %s not applied: out of memory", route);
        rc = -ENOMEM;
        goto out;
    }
    shared_publish(g->sh, s);
    us = t0_us != 0 ? cut_now_us() - t0_us : 0;
    weights_format(r, NULL, was, sizeof(was));
    weights_format(r, w, now_w, sizeof(now_w));
    if (same) {
        cut_log(CUT_DEBUG, "weights of route %s (%s) now from %s", route, now_w,
                weight_src_name(ws));
        goto out;
    }
    if (t0_us != 0)
        cut_log(CUT_INFO,
                "weights applied route=%s %s (was %s from %s) source=%s reason=\"%s\" in %llu us "
                "after %s",
                route, now_w, was, weight_src_name(old_src), weight_src_name(ws), reason,
                (unsigned long long)us, after);
    else
        cut_log(CUT_INFO, "weights applied route=%s %s (was %s from %s) source=%s reason=\"%s\"",
                route, now_w, was, weight_src_name(old_src), weight_src_name(ws), reason);
    audit(g, route, was, now_w, weight_src_name(ws), reason, "applied");
out:
    snap_unref(cur);
    return rc;
}

/* ---- the source's callbacks ---- */

/* What made a read, for log lines and audit reasons: "event", "poll", "connect", "re-read". */
static const char *cause_text(enum redisw_cause c)
{
    return c == REDISW_CAUSE_ASKED ? "re-read" : redisw_cause_name(c);
}

static uint64_t on_now_us(void *arg)
{
    return cut_now_us();
}

static void rearm(struct redis_glue *g)
{
    uint64_t d, now, delay;
    struct timeval tv;

    if (g->src == NULL || g->timer == NULL)
        return;
    d = redisw_next_deadline(g->src);
    if (d == UINT64_MAX) {
        evtimer_del(g->timer);
        return;
    }
    now = cut_now_ms();
    delay = d > now ? d - now + 1 : 0; /* +1: never wake a hair early and spin */
    tv.tv_sec = (time_t)(delay / 1000u);
    tv.tv_usec = (suseconds_t)(delay % 1000u) * 1000;
    evtimer_add(g->timer, &tv);
}

static void on_wake(void *arg)
{
    rearm(arg);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct redis_glue *g = arg;

    redisw_tick(g->src, cut_now_ms());
    rearm(g);
}

static void on_weights(void *arg, const struct redisw_read *rd, const uint32_t *w,
                       const struct redisw_hash *h)
{
    struct redis_glue *g = arg;
    struct rg_route *rt = route_find(g, rd->route, 1);
    char reason[64];

    if (rt != NULL) {
        if (route_set_override(rt, h) < 0)
            cut_log(CUT_WARN, "redis: out of memory keeping route %s's override for reloads",
                    rd->route);
        if (rt->refused != NULL) {
            cut_log(CUT_INFO, "redis weights of route %s are valid again", rd->route);
            free(rt->refused);
            rt->refused = NULL;
        }
    }
    snprintf(reason, sizeof(reason), "redis %s", cause_text(rd->cause));
    publish_weights(g, rd->route, w, WSRC_REDIS, reason, rd->t0_us, cause_text(rd->cause));
}

static void on_absent(void *arg, const struct redisw_read *rd)
{
    struct redis_glue *g = arg;
    struct rg_route *rt = route_find(g, rd->route, 0);
    uint32_t w[CONF_MAX_TRACKS];
    struct snap *cur;
    int ri;
    size_t i;

    if (rt != NULL) {
        route_clear_override(rt);
        free(rt->refused);
        rt->refused = NULL;
    }
    cur = shared_snap_get(g->sh);
    ri = snap_route_index(cur, rd->route);
    if (ri >= 0 && cur->routes[ri].n_tracks > 0 && cur->routes[ri].tracks[0].src != WSRC_CONFIG) {
        for (i = 0; i < cur->routes[ri].n_tracks; i++)
            w[i] = cur->routes[ri].tracks[i].conf_weight;
        publish_weights(g, rd->route, w, WSRC_CONFIG, "redis key absent: config weights back",
                        rd->t0_us, cause_text(rd->cause));
    }
    snap_unref(cur);
}

static void on_invalid(void *arg, const struct redisw_read *rd, const char *reason,
                       const struct redisw_hash *h)
{
    struct redis_glue *g = arg;
    struct rg_route *rt = route_find(g, rd->route, 1);
    char was[RG_WBUF], raw[RG_WBUF];
    struct snap *cur;
    int ri;

    if (rt != NULL && rt->refused != NULL && strcmp(rt->refused, reason) == 0) {
        cut_log(CUT_DEBUG, "redis weights still refused: %s", reason);
        return; /* the same bad value seen again by a poll: logged and audited already */
    }
    if (rt != NULL) {
        free(rt->refused);
        rt->refused = strdup(reason);
    }
    cur = shared_snap_get(g->sh);
    ri = snap_route_index(cur, rd->route);
    if (ri >= 0) {
        weights_format(&cur->routes[ri], NULL, was, sizeof(was));
        if (h != NULL)
            weights_format_raw(h->fields, h->flen, h->values, h->vlen, h->n, raw, sizeof(raw));
        else
            snprintf(raw, sizeof(raw), "(not a hash)");
        cut_log(CUT_WARN, "redis weights refused: %s; keeping %s from %s", reason, was,
                cur->routes[ri].n_tracks > 0 ? weight_src_name(cur->routes[ri].tracks[0].src)
                                             : "config");
        audit(g, rd->route, was, raw, "redis", reason, "refused");
    }
    snap_unref(cur);
}

static void on_event(void *arg, enum redisw_event ev, const char *detail)
{
    struct redis_glue *g = arg;
    unsigned *downs;

    switch (ev) {
    case REDISW_EV_CMD_UP:
    case REDISW_EV_SUB_UP:
        downs = &g->downs[ev == REDISW_EV_SUB_UP];
        cut_log(CUT_INFO, "%s%s", detail, *downs > 0 ? " (back after failures)" : "");
        *downs = 0;
        break;
    case REDISW_EV_CMD_DOWN:
    case REDISW_EV_SUB_DOWN:
        downs = &g->downs[ev == REDISW_EV_SUB_DOWN];
        ++*downs;
        /* 1st, 2nd, 4th, 8th... failure in a row at warn: clear, not a flood */
        cut_log((*downs & (*downs - 1)) == 0 ? CUT_WARN : CUT_DEBUG, "%s", detail);
        if (ev == REDISW_EV_CMD_DOWN && g->waiting)
            event_base_loopbreak(g->base); /* Redis is down: start with the config */
        break;
    case REDISW_EV_SYNCED:
        cut_log(CUT_DEBUG, "redis: %s", detail);
        if (g->waiting)
            event_base_loopbreak(g->base);
        break;
    case REDISW_EV_WRITE_FAILED:
        cut_log(CUT_WARN, "redis: %s", detail);
        break;
    case REDISW_EV_N:
        break;
    }
}

static int attach_cb(redisAsyncContext *ac, void *loop)
{
    return redisLibeventAttach(ac, loop) == REDIS_OK ? 0 : -1;
}

/* ---- source lifecycle ---- */

static void set_instance(struct redis_glue *g)
{
    char host[256], buf[300];

    free(g->instance);
    if (g->rc.instance != NULL) {
        g->instance = xstrdup(g->rc.instance);
        return;
    }
    if (gethostname(host, sizeof(host)) == -1)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    snprintf(buf, sizeof(buf), "%s:%d", host, (int)getpid());
    g->instance = xstrdup(buf);
}

static void source_stop(struct redis_glue *g)
{
    if (g->timer != NULL)
        evtimer_del(g->timer);
    redisw_free(g->src);
    g->src = NULL;
    g->downs[0] = g->downs[1] = 0;
}

static void source_start(struct redis_glue *g, const struct conf *c, struct snap *s)
{
    struct redisw_conf rc;

    if (!c->redis.enabled)
        return;
    memset(&rc, 0, sizeof(rc));
    rc.host = c->redis.addr.host;
    rc.port = c->redis.addr.port;
    rc.prefix = c->redis.prefix != NULL ? c->redis.prefix : "cutover";
    rc.username = c->redis.username;
    rc.password = c->redis.password;
    rc.db = c->redis.db;
    rc.poll_ms = c->redis.poll_ms;
    rc.pubsub = c->redis.pubsub;
    rc.instance = g->instance;
    rc.seed = cut_now_us() ^ ((uint64_t)getpid() << 32);
    g->src = redisw_new(&rc, &g->ops, g, attach_cb, g->base);
    if (g->src == NULL) {
        cut_log(CUT_ERR, "redis: cannot create the weight source (out of memory)");
        return;
    }
    redisw_set_snap(g->src, s);
    cut_log(CUT_INFO,
            "redis: weight source %s:%u prefix %s db %d, %s, poll every %u ms, "
            "instance %s",
            rc.host, (unsigned)rc.port, rc.prefix, rc.db, rc.pubsub ? "pub/sub" : "no pub/sub",
            rc.poll_ms, g->instance);
    rearm(g); /* deadline 0: connects on the next loop iteration */
}

struct redis_glue *redis_glue_new(struct event_base *base, struct shared *sh, uint64_t *generation,
                                  const struct conf *c)
{
    struct redis_glue *g = calloc(1, sizeof(*g));
    char w[RG_WBUF];
    struct snap *s;
    size_t i;

    if (g == NULL)
        return NULL;
    g->base = base;
    g->sh = sh;
    g->generation = generation;
    g->ops.now_us = on_now_us;
    g->ops.wake = on_wake;
    g->ops.on_weights = on_weights;
    g->ops.on_absent = on_absent;
    g->ops.on_invalid = on_invalid;
    g->ops.on_event = on_event;
    g->timer = evtimer_new(base, timer_cb, g);
    if (g->timer == NULL) {
        free(g);
        return NULL;
    }
    rg_conf_set(&g->rc, &c->redis);
    set_instance(g);
    s = shared_snap_get(sh);
    source_start(g, c, s);
    for (i = 0; i < s->n_routes; i++) {
        weights_format(&s->routes[i], NULL, w, sizeof(w));
        cut_log(CUT_INFO, "weights applied route=%s %s source=config reason=\"config loaded\"",
                s->routes[i].name, w);
        audit(g, s->routes[i].name, "", w, "config", "config loaded", "applied");
    }
    snap_unref(s);
    return g;
}

static void wait_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct redis_glue *g = arg;

    cut_log(CUT_WARN, "redis: no complete read at start-up; serving with the config's weights "
                      "until Redis answers");
    event_base_loopbreak(g->base);
}

void redis_glue_wait_synced(struct redis_glue *g, unsigned timeout_ms)
{
    struct timeval tv = {(time_t)(timeout_ms / 1000u), (suseconds_t)(timeout_ms % 1000u) * 1000};
    struct event *t;

    if (g == NULL || g->src == NULL)
        return;
    t = evtimer_new(g->base, wait_timeout_cb, g);
    if (t == NULL)
        return;
    evtimer_add(t, &tv);
    g->waiting = 1;
    event_base_dispatch(g->base);
    g->waiting = 0;
    event_free(t);
}

/* "blue=90,..." of route <name> in <s> with its source, or "" if absent. */
static void route_desc(const struct snap *s, const char *name, char *buf, size_t len,
                       enum weight_src *src)
{
    int ri = s != NULL ? snap_route_index(s, name) : -1;

    buf[0] = '\0';
    *src = WSRC_CONFIG;
    if (ri < 0)
        return;
    weights_format(&s->routes[ri], NULL, buf, len);
    if (s->routes[ri].n_tracks > 0)
        *src = s->routes[ri].tracks[0].src;
}

struct snap *redis_glue_reload(struct redis_glue *g, const struct conf *c, struct snap *fresh)
{
    char err[512], was[RG_WBUF], now_w[RG_WBUF];
    uint32_t w[CONF_MAX_TRACKS];
    struct snap *s = fresh, *old;
    size_t i, j;

    if (g == NULL || fresh == NULL)
        return fresh;
    if (rg_conf_differs(&g->rc, &c->redis)) {
        cut_log(CUT_INFO, "redis: settings changed by the reload; %s",
                c->redis.enabled ? "reconnecting" : "Redis weights no longer apply");
        source_stop(g);
        rg_conf_set(&g->rc, &c->redis);
        set_instance(g);
        source_start(g, c, fresh);
    } else if (g->src != NULL) {
        redisw_set_snap(g->src, fresh);
    }

    /* Forget routes that are gone, and every override if Redis is off. */
    for (i = 0; i < g->n_routes;) {
        if (!c->redis.enabled || snap_route_index(fresh, g->routes[i].name) < 0) {
            route_fini(&g->routes[i]);
            g->routes[i] = g->routes[--g->n_routes];
        } else {
            i++;
        }
    }

    /* Re-apply the overrides held, validated against the new routes. */
    for (i = 0; i < g->n_routes; i++) {
        struct rg_route *rt = &g->routes[i];
        int ri = snap_route_index(s, rt->name);
        struct snap *s2;

        if (!rt->has_override || ri < 0)
            continue;
        if (weights_from_hash((const char *const *)rt->f, rt->fl, (const char *const *)rt->v,
                              rt->vl, rt->n, &s->routes[ri], w, err, sizeof(err)) < 0) {
            cut_log(CUT_WARN,
                    "reload: redis weights of route %s no longer fit the config (%s); "
                    "config weights apply",
                    rt->name, err);
            route_clear_override(rt);
            continue;
        }
        s2 = snap_with_weights(s, (size_t)ri, w, WSRC_REDIS, ++*g->generation, cut_now_ms());
        if (s2 == NULL) {
            cut_log(CUT_ERR, "reload: out of memory re-applying redis weights of route %s",
                    rt->name);
            continue;
        }
        snap_unref(s);
        s = s2;
    }

    /* Log and audit what changes against the snapshot in force. */
    old = shared_snap_get(g->sh);
    for (i = 0; i < s->n_routes; i++) {
        const struct snap_route *r = &s->routes[i];
        enum weight_src os, ns = r->n_tracks > 0 ? r->tracks[0].src : WSRC_CONFIG;
        const char *reason =
            ns == WSRC_REDIS ? "config reloaded, redis override kept" : "config reloaded";

        route_desc(old, r->name, was, sizeof(was), &os);
        weights_format(r, NULL, now_w, sizeof(now_w));
        if (strcmp(was, now_w) == 0 && os == ns) {
            if (ns == WSRC_REDIS) {
                char cw[RG_WBUF];
                size_t o = 0;

                for (j = 0; j < r->n_tracks && o < sizeof(cw); j++) {
                    int m = snprintf(cw + o, sizeof(cw) - o, "%s%s=%u", j ? "," : "",
                                     r->tracks[j].name, r->tracks[j].conf_weight);
                    o += m > 0 ? (size_t)m : 0;
                }
                cut_log(CUT_INFO, "reload: route %s keeps redis weights %s (config says %s)",
                        r->name, now_w, cw);
            }
            continue;
        }
        cut_log(CUT_INFO, "weights applied route=%s %s (was %s from %s) source=%s reason=\"%s\"",
                r->name, now_w, was[0] ? was : "-", weight_src_name(os), weight_src_name(ns),
                reason);
        audit(g, r->name, was, now_w, weight_src_name(ns), reason, "applied");
    }
    snap_unref(old);
    if (g->src != NULL) {
        redisw_reread(g->src, NULL);
        rearm(g);
    }
    return s;
}

int redis_glue_apply(struct redis_glue *g, const char *route, const uint32_t *w,
                     enum weight_src src, const char *reason, int write_through)
{
    const char *names[CONF_MAX_TRACKS];
    struct snap *cur;
    size_t i, n = 0;
    int ri, rc;

    if (g == NULL || route == NULL || w == NULL)
        return -EINVAL;
    rc = publish_weights(g, route, w, src, reason, 0, NULL);
    if (rc < 0 || !write_through || g->src == NULL)
        return rc;
    cur = shared_snap_get(g->sh);
    ri = snap_route_index(cur, route);
    if (ri >= 0) {
        n = cur->routes[ri].n_tracks;
        for (i = 0; i < n; i++)
            names[i] = cur->routes[ri].tracks[i].name;
        rc = redisw_write_weights(g->src, route, names, w, n, weight_src_name(src), reason);
        if (rc < 0)
            cut_log(CUT_WARN, "weights of route %s applied here but not written to Redis: %s",
                    route, strerror(-rc));
    }
    snap_unref(cur);
    return rc;
}

void redis_glue_free(struct redis_glue *g)
{
    size_t i;

    if (g == NULL)
        return;
    source_stop(g);
    if (g->timer != NULL)
        event_free(g->timer);
    for (i = 0; i < g->n_routes; i++)
        route_fini(&g->routes[i]);
    free(g->routes);
    rg_conf_fini(&g->rc);
    free(g->instance);
    free(g);
}
