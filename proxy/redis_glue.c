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
 *
 * The guard latch, per route (struct rg_route):
 *   - latched: set by a local trip or by reading `state tripped`; every weights
 *     vector published while it is set goes through hold_candidate() (candidate 0);
 *   - owe: a guard write Redis has not confirmed (a trip or an arm made here). While
 *     it is owed, guard reads are ignored (they predate it or echo it); it is sent at
 *     once, again when the command connection is back (before the re-read that
 *     follows), and on the next guard read after a refused EXEC;
 *   - guard_us: when the latch last changed here; a guard read begun before it is
 *     stale and cannot undo it.
 */
#include "redis_glue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>

#include "../routing/redis_source.h"
#include "../routing/weights.h"
#include "log.h"
#include "stats.h"

#define RG_WBUF 512
#define RG_GFIELDS REDISW_GUARD_FIELDS_MAX /* guard hash fields a trip writes, at most */

/* A guard write that Redis has not confirmed yet. */
enum rg_owe { RG_OWE_NONE = 0, RG_OWE_TRIP, RG_OWE_ARM, RG_OWE_N };

/* What the glue remembers about a route across snapshots and reloads. */
struct rg_route {
    char *name;
    int has_override; /* the last read found a valid hash: keep it for reloads */
    size_t n;
    char *f[CONF_MAX_TRACKS], *v[CONF_MAX_TRACKS];
    size_t fl[CONF_MAX_TRACKS], vl[CONF_MAX_TRACKS];
    char *refused; /* reason of the refusal in force (logged once), or NULL */
    /* the guard latch (see the top of this file) */
    int latched;       /* tripped here or in Redis: no source raises the candidate */
    int held_logged;   /* "candidate held at 0" said once for this latch */
    uint64_t guard_us; /* last local change of the latch */
    enum rg_owe owe;   /* guard write owed to Redis */
    uint64_t owe_tag;  /* tag of that write while in flight, 0 none */
    uint64_t trip_us;  /* when the trip being written was seen (for the log) */
    size_t n_gf;
    char *gf[RG_GFIELDS], *gv[RG_GFIELDS]; /* the guard fields of the owed write */
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
    unsigned downs[2];     /* failures since the last success: cmd, sub */
    uint64_t n_cmd_up;     /* admin: command connection became ready (count) */
    int64_t last_apply_us; /* admin: latest Redis read to publish, -1 none */
    int waiting;
    uint64_t tags; /* last write-through tag handed out */
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

static void route_clear_owe(struct rg_route *rt)
{
    size_t i;

    for (i = 0; i < rt->n_gf; i++) {
        free(rt->gf[i]);
        free(rt->gv[i]);
        rt->gf[i] = rt->gv[i] = NULL;
    }
    rt->n_gf = 0;
    rt->owe = RG_OWE_NONE;
    rt->owe_tag = 0;
}

static void route_fini(struct rg_route *rt)
{
    route_clear_owe(rt);
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

static void audit_ex(struct redis_glue *g, const char *route, const char *old_w, const char *new_w,
                     const char *source, const char *reason, const char *result,
                     const char *const *extra, size_t n_extra)
{
    struct redisw_audit a = {route, old_w, new_w, source, reason, result, extra, n_extra};
    int rc;

    if (g->src == NULL)
        return;
    rc = redisw_audit(g->src, &a);
    if (rc == -ENOBUFS)
        cut_log(CUT_WARN, "redis: audit queue full while disconnected; oldest entry dropped");
    else if (rc < 0)
        cut_log(CUT_WARN, "redis: audit entry for route %s lost: %s", route, strerror(-rc));
}

static void audit(struct redis_glue *g, const char *route, const char *old_w, const char *new_w,
                  const char *source, const char *reason, const char *result)
{
    audit_ex(g, route, old_w, new_w, source, reason, result, NULL, 0);
}

/* Source labels that Redis reads may move between when the numbers stay the same. */
static int relabel_ok(enum weight_src from, enum weight_src to)
{
    return (from == WSRC_CONFIG || from == WSRC_REDIS) && (to == WSRC_CONFIG || to == WSRC_REDIS);
}

/*
 * The latch's rule on a weights vector <w> for route <r>: the candidate gets 0
 * and the other tracks keep theirs; if no other track has weight left, the
 * baseline (else the first other track) takes the candidate's so that the
 * route keeps serving. Returns 1 when <w> changed, 0 when it already held.
 */
static int hold_candidate(const struct snap_route *r, uint32_t *w)
{
    int c = r->candidate, b = r->baseline;
    uint64_t others = 0;
    uint32_t wc;
    size_t i;

    if (c < 0 || (size_t)c >= r->n_tracks || w[c] == 0)
        return 0;
    wc = w[c];
    w[c] = 0;
    for (i = 0; i < r->n_tracks; i++)
        others += w[i];
    if (others == 0) {
        if (b < 0 || b == c || (size_t)b >= r->n_tracks)
            b = c == 0 && r->n_tracks > 1 ? 1 : 0;
        w[b] = wc;
    }
    return 1;
}

/* Evidence for the audit entry of a publish: extra pairs, always audited (a trip). */
struct rg_evidence {
    const char *const *extra;
    size_t n_extra;
    const char *result;
};

/*
 * Publishes the current snapshot with route <route>'s weights set to <w_in> from
 * <ws>, unless nothing changes. While the route is latched the candidate is held
 * at 0 (hold_candidate; the label becomes "guard", said once per latch). Logs and
 * audits a change of weights; <t0_us> (0: none) dates the trigger for the "in X
 * us after" figure. With <ev>, the audit entry carries its evidence and is
 * written even when the weights stay the same. Returns 0 (also when nothing
 * changed), -ENOENT or -ENOMEM.
 */
static int publish_weights(struct redis_glue *g, const char *route, const uint32_t *w_in,
                           enum weight_src ws, const char *reason, uint64_t t0_us,
                           const char *after, const struct rg_evidence *ev)
{
    struct snap *cur = shared_snap_get(g->sh), *s;
    char was[RG_WBUF], now_w[RG_WBUF], held_reason[300];
    uint32_t w[CONF_MAX_TRACKS];
    const struct snap_route *r;
    struct rg_route *rt;
    enum weight_src old_src;
    int ri = snap_route_index(cur, route), same, relabel, rc = 0;
    uint64_t us;

    if (ri < 0 || cur->routes[ri].n_tracks == 0) {
        rc = -ENOENT;
        goto out;
    }
    r = &cur->routes[ri];
    memcpy(w, w_in, r->n_tracks * sizeof(*w));
    rt = route_find(g, route, 0);
    if (rt != NULL && rt->latched && hold_candidate(r, w)) {
        if (!rt->held_logged)
            cut_log(CUT_WARN,
                    "route %s: guard tripped, candidate %s held at 0 (%s asked for %u); "
                    "re-arm the guard to raise it",
                    route, r->tracks[r->candidate].name, weight_src_name(ws),
                    (unsigned)w_in[r->candidate]);
        rt->held_logged = 1;
        snprintf(held_reason, sizeof(held_reason), "%s; candidate held at 0 (guard tripped)",
                 reason);
        reason = held_reason;
        ws = WSRC_GUARD;
    }
    old_src = r->tracks[0].src;
    weights_format(r, NULL, was, sizeof(was));
    weights_format(r, w, now_w, sizeof(now_w));
    same = weights_equal(r, w);
    /* after a re-arm, the numbers the guard left may be what the source says too */
    relabel = relabel_ok(old_src, ws) ||
              (old_src == WSRC_GUARD && ws != WSRC_GUARD && (rt == NULL || !rt->latched));
    if (same && (old_src == ws || !relabel)) {
        if (ev != NULL)
            audit_ex(g, route, was, now_w, weight_src_name(ws), reason, ev->result, ev->extra,
                     ev->n_extra);
        goto out; /* a poll that finds what is in force: nothing to publish */
    }
    s = snap_with_weights(cur, (size_t)ri, w, ws, ++*g->generation, cut_now_ms());
    if (s == NULL) {
        cut_log(CUT_ERR, "weights for route %s not applied: out of memory", route);
        rc = -ENOMEM;
        goto out;
    }
    shared_publish(g->sh, s);
    us = t0_us != 0 ? cut_now_us() - t0_us : 0;
    if (t0_us != 0)
        g->last_apply_us = (int64_t)us; /* admin: last-apply latency */
    if (same) {
        cut_log(CUT_DEBUG, "weights of route %s (%s) now from %s", route, now_w,
                weight_src_name(ws));
        if (ev != NULL)
            audit_ex(g, route, was, now_w, weight_src_name(ws), reason, ev->result, ev->extra,
                     ev->n_extra);
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
    if (ev != NULL)
        audit_ex(g, route, was, now_w, weight_src_name(ws), reason, ev->result, ev->extra,
                 ev->n_extra);
    else
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
    publish_weights(g, rd->route, w, WSRC_REDIS, reason, rd->t0_us, cause_text(rd->cause), NULL);
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
                        rd->t0_us, cause_text(rd->cause), NULL);
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

/* ---- the guard: trip, latch, re-arm ---- */

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Value of field <name> in <h> as a NUL-terminated copy in <buf> (cut), or NULL if absent. */
static const char *hash_get(const struct redisw_hash *h, const char *name, char *buf, size_t len)
{
    size_t i, nl = strlen(name), n;

    for (i = 0; i < h->n; i++) {
        if (h->flen[i] != nl || memcmp(h->fields[i], name, nl) != 0)
            continue;
        n = h->vlen[i] < len - 1 ? h->vlen[i] : len - 1;
        memcpy(buf, h->values[i], n);
        buf[n] = '\0';
        return buf;
    }
    return NULL;
}

/* Remembers the guard fields of an owed write (copies). Returns 0 or -1 (out of memory). */
static int owe_set(struct rg_route *rt, enum rg_owe what, const char *const *f,
                   const char *const *v, size_t n)
{
    size_t i;

    route_clear_owe(rt);
    if (n > RG_GFIELDS)
        n = RG_GFIELDS;
    for (i = 0; i < n; i++) {
        rt->gf[i] = strdup(f[i]);
        rt->gv[i] = strdup(v[i]);
        rt->n_gf = i + 1;
        if (rt->gf[i] == NULL || rt->gv[i] == NULL) {
            route_clear_owe(rt);
            return -1;
        }
    }
    rt->owe = what;
    return 0;
}

/*
 * Sends the guard write owed for <rt> unless one is in flight or Redis is not
 * ready: a trip writes the weights in force with the guard fields, an arm the
 * guard fields only. Returns 0 (sent, in flight, or nothing owed) or -errno.
 */
static int owe_flush(struct redis_glue *g, struct rg_route *rt)
{
    const char *names[CONF_MAX_TRACKS];
    uint32_t w[CONF_MAX_TRACKS];
    struct snap *cur;
    uint64_t tag;
    size_t i, n;
    int ri, rc;

    if (rt->owe == RG_OWE_NONE || rt->owe_tag != 0 || g->src == NULL)
        return 0;
    if (!redisw_is_up(g->src))
        return -ENOTCONN;
    tag = ++g->tags;
    if (rt->owe == RG_OWE_ARM) {
        rc = redisw_write_guard(g->src, rt->name, (const char *const *)rt->gf,
                                (const char *const *)rt->gv, rt->n_gf, tag);
    } else {
        cur = shared_snap_get(g->sh);
        ri = snap_route_index(cur, rt->name);
        if (ri < 0) {
            snap_unref(cur);
            route_clear_owe(rt); /* the route went away with a reload */
            return -ENOENT;
        }
        n = cur->routes[ri].n_tracks;
        for (i = 0; i < n; i++) {
            names[i] = cur->routes[ri].tracks[i].name;
            w[i] = cur->routes[ri].tracks[i].weight;
        }
        rc = redisw_write_trip(g->src, rt->name, names, w, n, (const char *const *)rt->gf,
                               (const char *const *)rt->gv, rt->n_gf, "guard tripped", tag);
        snap_unref(cur);
    }
    if (rc == 0)
        rt->owe_tag = tag;
    else if (rc != -ENOTCONN)
        cut_log(CUT_WARN, "guard of route %s: write-through to Redis not sent: %s", rt->name,
                strerror(-rc));
    return rc;
}

static void on_written(void *arg, const char *route, uint64_t tag, int ok)
{
    struct redis_glue *g = arg;
    struct rg_route *rt = route_find(g, route, 0);

    if (rt == NULL || tag == 0 || tag != rt->owe_tag)
        return;
    rt->owe_tag = 0;
    if (!ok) {
        cut_log(CUT_WARN,
                "guard of route %s: write-through to Redis failed; sent again once Redis "
                "answers",
                route);
        return; /* still owed: the next connect (or guard read) sends it again */
    }
    if (rt->owe == RG_OWE_TRIP)
        cut_log(CUT_INFO,
                "guard of route %s: trip written through to Redis (weights, guard hash, "
                "publish) %llu us after the trip",
                route, (unsigned long long)(cut_now_us() - rt->trip_us));
    else
        cut_log(CUT_INFO, "guard of route %s: state armed written through to Redis", route);
    route_clear_owe(rt);
}

/* The weights the candidate gets back at a re-arm: the Redis hash held, else the config's. */
static enum weight_src rearm_weights(const struct snap_route *r, const struct rg_route *rt,
                                     uint32_t *w)
{
    char err[256];
    size_t i;

    if (rt != NULL && rt->has_override &&
        weights_from_hash((const char *const *)rt->f, rt->fl, (const char *const *)rt->v, rt->vl,
                          rt->n, r, w, err, sizeof(err)) == 0)
        return WSRC_REDIS;
    for (i = 0; i < r->n_tracks; i++)
        w[i] = r->tracks[i].conf_weight;
    return WSRC_CONFIG;
}

/*
 * Clears the latch of <route> (an operator re-armed it: <source> "redis" or
 * "admin", <by> who when known, else NULL) and brings the candidate's weight
 * back. Returns 0, -ENOENT or -ENOMEM.
 */
static int guard_rearm_route(struct redis_glue *g, const char *route, const char *source,
                             const char *by, uint64_t t0_us, const char *after)
{
    struct rg_route *rt = route_find(g, route, 1);
    char reason[200], was[RG_WBUF], now_w[RG_WBUF];
    uint32_t w[CONF_MAX_TRACKS];
    struct rt_route *sr;
    struct snap *cur;
    enum weight_src ws;
    int ri, was_latched;

    if (rt == NULL)
        return -ENOMEM;
    cur = shared_snap_get(g->sh);
    ri = snap_route_index(cur, route);
    if (ri < 0) {
        snap_unref(cur);
        return -ENOENT;
    }
    was_latched = rt->latched;
    rt->latched = 0;
    rt->held_logged = 0;
    rt->guard_us = cut_now_us();
    sr = stats_route(route);
    if (sr != NULL && sr->has_guard && sr->g.tripped)
        stats_guard_rearm(route, cut_now_ms());
    weights_format(&cur->routes[ri], NULL, was, sizeof(was));
    ws = rearm_weights(&cur->routes[ri], rt, w);
    weights_format(&cur->routes[ri], w, now_w, sizeof(now_w));
    snprintf(reason, sizeof(reason), "guard re-armed (%s%s%s)", source, by != NULL ? " by " : "",
             by != NULL ? by : "");
    cut_log(CUT_INFO, "guard of route %s re-armed (%s%s%s)%s; weights from %s: %s", route, source,
            by != NULL ? " by " : "", by != NULL ? by : "",
            was_latched ? "" : " while not tripped here", weight_src_name(ws), now_w);
    audit(g, route, was, now_w, source, reason, "armed");
    snap_unref(cur);
    return publish_weights(g, route, w, ws, reason, t0_us, after, NULL);
}

/* Another instance (or an operator) tripped <rd->route>: latch here and hold the candidate. */
static void guard_follow(struct redis_glue *g, const struct redisw_read *rd,
                         const struct redisw_hash *h)
{
    struct rg_route *rt = route_find(g, rd->route, 1);
    char by[128], at[32], why[GUARD_REASON_TEXT], reason[200];
    uint32_t w[CONF_MAX_TRACKS];
    struct rt_route *sr;
    struct snap *cur;
    size_t i;
    int ri;

    if (rt == NULL)
        return;
    rt->latched = 1;
    rt->held_logged = 0;
    rt->guard_us = cut_now_us();
    if (hash_get(h, "by", by, sizeof(by)) == NULL)
        snprintf(by, sizeof(by), "?");
    if (hash_get(h, "at_ms", at, sizeof(at)) == NULL)
        snprintf(at, sizeof(at), "?");
    if (hash_get(h, "reason", why, sizeof(why)) == NULL)
        snprintf(why, sizeof(why), "(no reason given)");
    if (stats_guard_latch(rd->route, cut_now_ms()) == 0 && (sr = stats_route(rd->route)) != NULL) {
        int m = snprintf(sr->g.trip.text, sizeof(sr->g.trip.text), "tripped by %s (redis): ", by);

        if (m > 0 && (size_t)m < sizeof(sr->g.trip.text))
            memccpy(sr->g.trip.text + m, why, '\0', sizeof(sr->g.trip.text) - (size_t)m - 1);
        sr->g.trip.text[sizeof(sr->g.trip.text) - 1] = '\0';
    }
    cut_log(CUT_WARN,
            "guard of route %s tripped by %s at_ms=%s (read from Redis on %s, %llu us after "
            "the read began): %s; candidate held at 0 here too",
            rd->route, by, at, cause_text(rd->cause),
            (unsigned long long)(cut_now_us() - rd->t0_us), why);
    cur = shared_snap_get(g->sh);
    ri = snap_route_index(cur, rd->route);
    if (ri >= 0 && cur->routes[ri].n_tracks > 0) {
        for (i = 0; i < cur->routes[ri].n_tracks; i++)
            w[i] = cur->routes[ri].tracks[i].weight;
        snprintf(reason, sizeof(reason), "guard tripped by %.100s (redis)", by);
        rt->held_logged = 1; /* holding what is in force is the latch itself, not a refusal */
        publish_weights(g, rd->route, w, cur->routes[ri].tracks[0].src, reason, rd->t0_us,
                        cause_text(rd->cause), NULL);
        rt = route_find(g, rd->route, 0);
        if (rt != NULL)
            rt->held_logged = 0;
    }
    snap_unref(cur);
}

static void on_guard(void *arg, const struct redisw_read *rd, const struct redisw_hash *h)
{
    struct redis_glue *g = arg;
    struct rg_route *rt = route_find(g, rd->route, 0);
    char state[32], by[128];
    const char *st;

    if (rt != NULL && rt->owe != RG_OWE_NONE) {
        owe_flush(g, rt); /* ours goes first; this read predates or echoes it */
        return;
    }
    if (rt != NULL && rd->t0_us < rt->guard_us)
        return; /* begun before our own latch change: stale */
    st = hash_get(h, "state", state, sizeof(state));
    if (st == NULL)
        return; /* no guard hash (or no state): nothing said, the latch stays as it is */
    if (strcmp(st, "tripped") == 0) {
        if (rt == NULL || !rt->latched)
            guard_follow(g, rd, h);
    } else if (strcmp(st, "armed") == 0) {
        if (rt != NULL && rt->latched)
            guard_rearm_route(g, rd->route, "redis", hash_get(h, "armed_by", by, sizeof(by)),
                              rd->t0_us, cause_text(rd->cause));
    } else {
        cut_log(CUT_DEBUG, "redis: guard of route %s: unknown state \"%s\" ignored", rd->route, st);
    }
}

int redis_glue_guard_is_tripped(const struct redis_glue *g, const char *route)
{
    size_t i;

    if (g == NULL || route == NULL)
        return 0;
    for (i = 0; i < g->n_routes; i++)
        if (strcmp(g->routes[i].name, route) == 0)
            return g->routes[i].latched;
    return 0;
}

void redis_glue_guards_relatch(struct redis_glue *g)
{
    struct rt_route *sr;
    size_t i;

    if (g == NULL)
        return;
    for (i = 0; i < g->n_routes; i++) {
        if (!g->routes[i].latched)
            continue;
        sr = stats_route(g->routes[i].name);
        if (sr != NULL && sr->has_guard && !sr->g.tripped)
            stats_guard_latch(g->routes[i].name, cut_now_ms());
    }
}

#define RG_NUM 32  /* bytes of one formatted number */
#define RG_N_EV 28 /* evidence fields */

/* Writes route <r>'s weights <w> as the Redis weights held by <rt> (what Redis will say). */
static void hold_as_override(struct rg_route *rt, const struct snap_route *r, const uint32_t *w)
{
    const char *tf[CONF_MAX_TRACKS], *tvp[CONF_MAX_TRACKS];
    size_t tfl[CONF_MAX_TRACKS], tvl[CONF_MAX_TRACKS], i;
    char tv[CONF_MAX_TRACKS][16];
    struct redisw_hash hh;

    for (i = 0; i < r->n_tracks; i++) {
        tf[i] = r->tracks[i].name;
        tfl[i] = strlen(tf[i]);
        snprintf(tv[i], sizeof(tv[i]), "%u", (unsigned)w[i]);
        tvp[i] = tv[i];
        tvl[i] = strlen(tv[i]);
    }
    hh = (struct redisw_hash){tf, tfl, tvp, tvl, r->n_tracks};
    if (route_set_override(rt, &hh) < 0)
        cut_log(CUT_WARN, "guard of route %s: out of memory updating the weights held", rt->name);
}

int redis_glue_guard_trip(struct redis_glue *g, const char *route, const struct guard_reason *why,
                          uint64_t t0_us)
{
    char was[RG_WBUF], now_w[RG_WBUF], reason[GUARD_REASON_TEXT + 64];
    char num[RG_N_EV][RG_NUM], swap[RG_NUM];
    const char *ef[RG_N_EV], *ev_[2 * RG_N_EV], *gf[RG_GFIELDS], *gv[RG_GFIELDS];
    uint32_t w[CONF_MAX_TRACKS], wc;
    struct rg_evidence ev;
    const struct snap_route *r;
    struct rg_route *rt;
    struct snap *cur;
    size_t i, ne = 0, ng = 0;
    uint64_t at = wall_ms(), us;
    int ri, rc;

    if (g == NULL || route == NULL || why == NULL)
        return -EINVAL;
    cur = shared_snap_get(g->sh);
    ri = snap_route_index(cur, route);
    if (ri < 0 || cur->routes[ri].candidate < 0) {
        snap_unref(cur);
        cut_log(CUT_ERR, "guard tripped route=%s but it has no candidate to snap back: %s", route,
                why->text);
        return -ENOENT;
    }
    r = &cur->routes[ri];
    rt = route_find(g, route, 1);
    if (rt == NULL) {
        snap_unref(cur);
        cut_log(CUT_ERR, "guard tripped route=%s: out of memory", route);
        return -ENOMEM;
    }
    rt->latched = 1;
    rt->held_logged = 0; /* said at the first source that asks for more */
    rt->guard_us = cut_now_us();
    rt->trip_us = t0_us;
    for (i = 0; i < r->n_tracks; i++)
        w[i] = r->tracks[i].weight;
    wc = w[r->candidate];
    hold_candidate(r, w);
    weights_format(r, NULL, was, sizeof(was));
    weights_format(r, w, now_w, sizeof(now_w));

    /* the evidence, for the audit entry and the guard hash */
#define EV(name, ...)                                                                              \
    do {                                                                                           \
        snprintf(num[ne], RG_NUM, __VA_ARGS__);                                                    \
        ef[ne] = name;                                                                             \
        ev_[2 * ne] = name;                                                                        \
        ev_[2 * ne + 1] = num[ne];                                                                 \
        ne++;                                                                                      \
    } while (0)
    EV("test", "%s", guard_test_name(why->test));
    EV("at_ms", "%llu", (unsigned long long)at);
    EV("s_e1", "%.3f", why->s[GUARD_E1]);
    EV("s_e2", "%.3f", why->s[GUARD_E2]);
    EV("s_l1", "%.3f", why->s[GUARD_L1]);
    EV("s_l2", "%.3f", why->s[GUARD_L2]);
    EV("h", "%.3f", why->h);
    EV("q0", "%.4f", why->q0);
    EV("cand_fail_run", "%llu", (unsigned long long)why->cand_fail_run);
    EV("cand_requests", "%llu", (unsigned long long)why->cand_n);
    EV("cand_errors", "%llu", (unsigned long long)why->cand_err);
    EV("base_requests", "%llu", (unsigned long long)why->base_n);
    EV("base_errors", "%llu", (unsigned long long)why->base_err);
    EV("win_cand_requests", "%llu", (unsigned long long)why->win_cand_n);
    EV("win_cand_errors", "%llu", (unsigned long long)why->win_cand_err);
    EV("win_base_requests", "%llu", (unsigned long long)why->win_base_n);
    EV("win_base_errors", "%llu", (unsigned long long)why->win_base_err);
    EV("min_requests", "%u", why->min_requests);
    EV("ceil_lb", "%.5f", why->ceil_lb);
    EV("max_error_rate", "%.5f", why->max_error_rate);
    EV("cand_p50_us", "%llu", (unsigned long long)why->cand_p50_us);
    EV("cand_p99_us", "%llu", (unsigned long long)why->cand_p99_us);
    EV("base_p50_us", "%llu", (unsigned long long)why->base_p50_us);
    EV("base_p99_us", "%llu", (unsigned long long)why->base_p99_us);
    EV("thr_p50_us", "%llu", (unsigned long long)why->thr.p50_us);
    EV("thr_p99_us", "%llu", (unsigned long long)why->thr.p99_us);
    EV("p99_ratio", "%.3f", why->p99_ratio);
    EV("max_p99_ratio", "%.3f", why->max_p99_ratio);
#undef EV
    ev.extra = ev_;
    ev.n_extra = 2 * ne;
    ev.result = "tripped";
    snprintf(reason, sizeof(reason), "guard tripped (%s): %s", guard_test_name(why->test),
             why->text);

    /* 1. at once, in-process: new streams go to the other tracks, in-flight ones finish */
    rc = publish_weights(g, route, w, WSRC_GUARD, reason, 0, NULL, &ev);
    us = cut_now_us() - t0_us;
    snprintf(swap, sizeof(swap), "%llu", (unsigned long long)us);
    if (rc < 0) {
        snap_unref(cur);
        cut_log(CUT_ERR, "guard tripped route=%s but the snap-back failed: %s; %s", route,
                strerror(-rc), why->text);
        return rc;
    }
    cut_log(CUT_WARN,
            "guard tripped route=%s test=%s: %s; snapped back in-process in %llu us after the "
            "trip: candidate %s %u -> 0 (%s, was %s)",
            route, guard_test_name(why->test), why->text, (unsigned long long)us,
            r->tracks[r->candidate].name, (unsigned)wc, now_w, was);

    /* 2. write through: weights + guard hash + PUBLISH in one transaction */
    gf[ng] = "state", gv[ng++] = "tripped";
    gf[ng] = "reason", gv[ng++] = why->text;
    gf[ng] = "by", gv[ng++] = g->instance;
    gf[ng] = "weights_before", gv[ng++] = was;
    gf[ng] = "weights_after", gv[ng++] = now_w;
    gf[ng] = "swap_us", gv[ng++] = swap;
    for (i = 0; i < ne && ng < RG_GFIELDS; i++) {
        if (strncmp(ef[i], "win_", 4) == 0 || strncmp(ef[i], "thr_", 4) == 0 ||
            strncmp(ef[i], "max_", 4) == 0 || strcmp(ef[i], "min_requests") == 0 ||
            strstr(ef[i], "_p50_") != NULL)
            continue; /* in the audit entry; the hash keeps the essentials */
        gf[ng] = ef[i];
        gv[ng++] = ev_[2 * i + 1];
    }
    if (rt->has_override)
        hold_as_override(rt, r, w); /* a local re-arm before Redis answers keeps candidate 0 */
    if (g->src == NULL) {
        snap_unref(cur);
        return 0; /* no Redis: the snap-back is all there is to do */
    }
    rc = owe_set(rt, RG_OWE_TRIP, gf, gv, ng);
    snap_unref(cur);
    if (rc < 0) {
        cut_log(CUT_ERR, "guard of route %s: out of memory; the trip is not written to Redis",
                route);
        return -ENOMEM;
    }
    rc = owe_flush(g, rt);
    if (rc == -ENOTCONN)
        cut_log(CUT_WARN,
                "guard of route %s: Redis is down; snapped back here only, the trip is written "
                "through once Redis is back",
                route);
    return rc;
}

int redis_glue_guard_arm(struct redis_glue *g, const char *route)
{
    const char *f[3] = {"state", "armed_at_ms", "armed_by"}, *v[3];
    struct rt_route *sr;
    struct rg_route *rt;
    struct snap *cur;
    char at[32];
    int ri, rc;

    if (g == NULL || route == NULL)
        return -EINVAL;
    cur = shared_snap_get(g->sh);
    ri = snap_route_index(cur, route);
    snap_unref(cur);
    sr = stats_route(route);
    if (ri < 0 || ((sr == NULL || !sr->has_guard) && !redis_glue_guard_is_tripped(g, route)))
        return -ENOENT; /* (a latch left by a guard that a reload removed can still be lifted) */
    rc = guard_rearm_route(g, route, "admin", g->instance, 0, NULL);
    if (rc < 0)
        return rc;
    rt = route_find(g, route, 0);
    if (g->src == NULL || rt == NULL)
        return 0;
    snprintf(at, sizeof(at), "%llu", (unsigned long long)wall_ms());
    v[0] = "armed";
    v[1] = at;
    v[2] = g->instance;
    if (owe_set(rt, RG_OWE_ARM, f, v, 3) < 0)
        return -ENOMEM;
    return owe_flush(g, rt);
}

static void on_event(void *arg, enum redisw_event ev, const char *detail)
{
    struct redis_glue *g = arg;
    unsigned *downs;

    switch (ev) {
    case REDISW_EV_CMD_UP:
    case REDISW_EV_SUB_UP:
        downs = &g->downs[ev == REDISW_EV_SUB_UP];
        g->n_cmd_up += ev == REDISW_EV_CMD_UP; /* admin: reconnects */
        cut_log(CUT_INFO, "%s%s", detail, *downs > 0 ? " (back after failures)" : "");
        *downs = 0;
        if (ev == REDISW_EV_CMD_UP) {
            size_t i;

            /* guard writes owed (Redis was down at a trip or an arm) go before the re-read
             * that follows, so Redis's older weights and state are never taken for newer */
            for (i = 0; i < g->n_routes; i++)
                owe_flush(g, &g->routes[i]);
        }
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
    for (size_t i = 0; i < g->n_routes; i++)
        g->routes[i].owe_tag = 0; /* its answer will never come: sent again to the next source */
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
    g->last_apply_us = -1;
    g->ops.now_us = on_now_us;
    g->ops.wake = on_wake;
    g->ops.on_weights = on_weights;
    g->ops.on_absent = on_absent;
    g->ops.on_invalid = on_invalid;
    g->ops.on_guard = on_guard;
    g->ops.on_written = on_written;
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

    /* Forget routes that are gone, and every override if Redis is off (a guard latch
     * stays: only an operator re-arms). */
    for (i = 0; i < g->n_routes;) {
        struct rg_route *rt = &g->routes[i];

        if (snap_route_index(fresh, rt->name) < 0 || (!c->redis.enabled && !rt->latched)) {
            route_fini(rt);
            g->routes[i] = g->routes[--g->n_routes];
            continue;
        }
        if (!c->redis.enabled) {
            route_clear_override(rt);
            route_clear_owe(rt);
            free(rt->refused);
            rt->refused = NULL;
        }
        i++;
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

    /* A tripped guard holds its candidate at 0 whatever the new config or Redis say. */
    for (i = 0; i < g->n_routes; i++) {
        struct rg_route *rt = &g->routes[i];
        int ri = snap_route_index(s, rt->name);
        struct snap *s2;
        size_t k;

        if (!rt->latched || ri < 0)
            continue;
        for (k = 0; k < s->routes[ri].n_tracks; k++)
            w[k] = s->routes[ri].tracks[k].weight;
        if (!hold_candidate(&s->routes[ri], w))
            continue;
        if (!rt->held_logged)
            cut_log(CUT_WARN,
                    "reload: route %s: guard tripped, candidate %s held at 0 (%s says %u); "
                    "re-arm the guard to raise it",
                    rt->name, s->routes[ri].tracks[s->routes[ri].candidate].name,
                    weight_src_name(s->routes[ri].tracks[0].src),
                    (unsigned)s->routes[ri].tracks[s->routes[ri].candidate].weight);
        rt->held_logged = 1;
        s2 = snap_with_weights(s, (size_t)ri, w, WSRC_GUARD, ++*g->generation, cut_now_ms());
        if (s2 == NULL) {
            cut_log(CUT_ERR, "reload: out of memory holding route %s's candidate at 0", rt->name);
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
        const char *reason = ns == WSRC_REDIS ? "config reloaded, redis override kept"
                             : ns == WSRC_GUARD
                                 ? "config reloaded; candidate held at 0 (guard tripped)"
                                 : "config reloaded";

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
    rc = publish_weights(g, route, w, src, reason, 0, NULL, NULL);
    if (rc < 0 || !write_through || g->src == NULL)
        return rc;
    cur = shared_snap_get(g->sh);
    ri = snap_route_index(cur, route);
    if (ri >= 0) {
        uint32_t wf[CONF_MAX_TRACKS]; /* in force: the candidate held at 0 while tripped */

        n = cur->routes[ri].n_tracks;
        for (i = 0; i < n; i++) {
            names[i] = cur->routes[ri].tracks[i].name;
            wf[i] = cur->routes[ri].tracks[i].weight;
        }
        rc = redisw_write_weights(g->src, route, names, wf, n, weight_src_name(src), reason);
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

/* ---- admin (additive: read-only state for /status and /metrics) ---- */

void redis_glue_get_info(const struct redis_glue *g, struct redis_glue_info *out)
{
    memset(out, 0, sizeof(*out));
    out->last_apply_us = -1;
    if (g == NULL || !g->rc.enabled)
        return;
    out->enabled = 1;
    out->connected = g->src != NULL && redisw_is_up(g->src);
    out->address = g->rc.address;
    out->prefix = g->rc.prefix != NULL ? g->rc.prefix : "cutover";
    out->instance = g->instance;
    out->connects = g->n_cmd_up;
    out->failures = g->downs[0];
    out->last_apply_us = g->last_apply_us;
}
