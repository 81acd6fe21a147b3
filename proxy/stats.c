#include "stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../routing/snap.h"
#include "log.h"
#include "worker.h"

#define GUARD_THR_EVERY_MS 100

/* Records live until exit; the list only grows, under reg_lock. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rt_route *routes;
static struct rt_server *servers;

/* ---- records ---- */

static struct rt_route *route_find(const char *name)
{
    for (struct rt_route *r = routes; r != NULL; r = r->next)
        if (strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

struct rt_route *stats_route(const char *name)
{
    pthread_mutex_lock(&reg_lock);
    struct rt_route *r = route_find(name);
    pthread_mutex_unlock(&reg_lock);
    return r;
}

struct rt_route *stats_routes(void)
{
    return routes;
}

struct rt_server *stats_servers(void)
{
    return servers;
}

int stats_track_index(struct rt_route *r, const char *name)
{
    for (size_t i = 0; i < r->n_tracks; i++)
        if (strcmp(r->tracks[i].name, name) == 0)
            return (int)i;
    if (r->n_tracks == RT_MAX_TRACKS)
        return -1;
    struct rt_track *t = &r->tracks[r->n_tracks];
    t->name = strdup(name);
    if (t->name == NULL)
        return -1;
    win_init(&t->win);
    hist_init(&t->lat);
    memset(&t->c, 0, sizeof(t->c));
    return (int)r->n_tracks++;
}

static struct rt_server *server_get(const char *name)
{
    for (struct rt_server *s = servers; s != NULL; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    struct rt_server *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->name = strdup(name)) == NULL) {
        free(s);
        return NULL;
    }
    win_init(&s->win);
    pthread_mutex_lock(&reg_lock);
    s->next = servers;
    servers = s;
    pthread_mutex_unlock(&reg_lock);
    return s;
}

void stats_configure(const struct snap *s, const struct conf *c, uint64_t now_ms)
{
    for (size_t i = 0; i < s->n_routes; i++) {
        const struct snap_route *sr = &s->routes[i];
        struct rt_route *r = route_find(sr->name);
        if (r == NULL) {
            r = calloc(1, sizeof(*r));
            if (r == NULL || (r->name = strdup(sr->name)) == NULL) {
                cut_log(CUT_ERR, "stats: out of memory for route %s", sr->name);
                free(r);
                continue;
            }
            r->base = r->cand = -1;
            pthread_mutex_lock(&reg_lock);
            r->next = routes;
            routes = r;
            pthread_mutex_unlock(&reg_lock);
        }
        for (size_t t = 0; t < sr->n_tracks; t++)
            stats_track_index(r, sr->tracks[t].name);
        for (size_t k = 0; k < sr->n_tracks; k++)
            for (size_t j = 0; j < sr->tracks[k].n_servers; j++)
                server_get(sr->tracks[k].servers[j]->name);
        /* the guard: from the conf route of the same name */
        const struct conf_guard *cg = NULL;
        for (size_t k = 0; c != NULL && k < c->n_routes; k++)
            if (strcmp(c->routes[k].name, sr->name) == 0 && c->routes[k].guard.enabled)
                cg = &c->routes[k].guard;
        if (c == NULL)
            continue; /* weights only: keep the guard as it is */
        if (cg == NULL) {
            r->has_guard = 0;
            r->base = r->cand = -1;
            continue;
        }
        int base = stats_track_index(r, cg->baseline);
        int cand = stats_track_index(r, cg->candidate);
        int same = r->has_guard && r->base == base && r->cand == cand;
        guard_conf_from(&r->grt, cg);
        r->base = base;
        r->cand = cand;
        if (!same) {
            guard_init(&r->g, now_ms);
            atomic_store(&r->thr_p50_us, UINT64_MAX);
            atomic_store(&r->thr_p99_us, UINT64_MAX);
        }
        r->has_guard = base >= 0 && cand >= 0;
    }
}

int stats_guard_rearm(const char *route, uint64_t now_ms)
{
    struct rt_route *r = route_find(route);
    if (r == NULL || !r->has_guard)
        return -1;
    guard_rearm(&r->g, now_ms);
    return 0;
}

int stats_guard_latch(const char *route, uint64_t now_ms)
{
    struct rt_route *r = route_find(route);
    if (r == NULL || !r->has_guard)
        return -1;
    if (!r->g.tripped) {
        r->g.tripped = 1;
        memset(&r->g.trip, 0, sizeof(r->g.trip));
        r->g.trip.verdict = GUARD_TRIPPED;
        r->g.trip.at_ms = now_ms;
        snprintf(r->g.trip.text, sizeof(r->g.trip.text), "tripped by another instance");
    }
    return 0;
}

void stats_free_all(void)
{
    while (routes != NULL) {
        struct rt_route *r = routes;
        routes = r->next;
        for (size_t i = 0; i < r->n_tracks; i++)
            free(r->tracks[i].name);
        free(r->name);
        free(r);
    }
    while (servers != NULL) {
        struct rt_server *s = servers;
        servers = s->next;
        free(s->name);
        free(s);
    }
}

/* ---- worker side ---- */

static void block_free(struct stats_block *b)
{
    if (b == NULL)
        return;
    snap_unref(b->snap);
    free(b->t);
    free(b->t_dirty);
    free(b->batch);
    free(b->b_dirty);
    free(b->srv);
    free(b->srv_t);
    free(b->s_dirty);
    free(b);
}

static struct stats_block *block_new(struct snap *s)
{
    struct stats_block *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    size_t nr = s->n_routes ? s->n_routes : 1, ns = s->n_servers ? s->n_servers : 1;
    b->t = malloc(nr * CONF_MAX_TRACKS * sizeof(*b->t));
    b->t_dirty = calloc(nr * CONF_MAX_TRACKS, 1);
    b->batch = malloc(nr * sizeof(*b->batch));
    b->b_dirty = calloc(nr, 1);
    b->srv = calloc(ns, sizeof(*b->srv));
    b->srv_t = malloc(ns * sizeof(*b->srv_t));
    b->s_dirty = calloc(ns, 1);
    if (b->t == NULL || b->t_dirty == NULL || b->batch == NULL || b->b_dirty == NULL ||
        b->srv == NULL || b->srv_t == NULL || b->s_dirty == NULL) {
        b->snap = snap_ref(s);
        block_free(b);
        return NULL;
    }
    for (size_t i = 0; i < nr * CONF_MAX_TRACKS; i++)
        win_tally_init(&b->t[i]);
    for (size_t i = 0; i < nr; i++)
        guard_batch_init(&b->batch[i]);
    for (size_t i = 0; i < ns; i++)
        win_tally_init(&b->srv_t[i]);
    b->snap = snap_ref(s);
    return b;
}

static int map_routes(struct worker *w)
{
    struct snap *s = w->snap;
    struct rt_route **rt = calloc(s->n_routes ? s->n_routes : 1, sizeof(*rt));
    if (rt == NULL)
        return -1;
    for (size_t i = 0; i < s->n_routes; i++)
        rt[i] = stats_route(s->routes[i].name);
    free(w->stats.rt);
    w->stats.rt = rt;
    return 0;
}

int stats_worker_init(struct worker *w)
{
    pthread_mutex_init(&w->stats.lock, NULL);
    w->stats.cur = block_new(w->snap);
    if (w->stats.cur == NULL)
        return -1;
    return map_routes(w);
}

void stats_worker_snap_changed(struct worker *w, struct snap *old)
{
    struct stats_block *nb = block_new(w->snap);
    pthread_mutex_lock(&w->stats.lock);
    struct stats_block *ob = w->stats.cur;
    if (nb != NULL) {
        if (ob != NULL && ob->dirty) {
            ob->next = w->stats.retired;
            w->stats.retired = ob;
        } else {
            block_free(ob);
        }
        w->stats.cur = nb;
    } else {
        /* out of memory: stop recording rather than mis-index */
        block_free(ob);
        w->stats.cur = NULL;
    }
    pthread_mutex_unlock(&w->stats.lock);
    if (map_routes(w) < 0) {
        free(w->stats.rt);
        w->stats.rt = NULL;
    }
}

void stats_worker_fini(struct worker *w)
{
    block_free(w->stats.cur);
    while (w->stats.retired != NULL) {
        struct stats_block *b = w->stats.retired;
        w->stats.retired = b->next;
        block_free(b);
    }
    free(w->stats.rt);
    free(w->stats.sticky_errs);
    w->stats.sticky_errs = NULL;
    w->stats.cur = NULL;
    w->stats.rt = NULL;
    pthread_mutex_destroy(&w->stats.lock);
}

/* Is this error of sticky key <key> still evidence (under the per-key cap)? */
static int sticky_error_counts(struct worker *w, uint64_t key)
{
    if (w->stats.sticky_errs == NULL) {
        w->stats.sticky_errs = calloc(STATS_STICKY_SLOTS, sizeof(*w->stats.sticky_errs));
        if (w->stats.sticky_errs == NULL)
            return 1;
    }
    uint64_t now = cut_now_ms();
    struct sticky_err_slot *e = &w->stats.sticky_errs[(key >> 7) % STATS_STICKY_SLOTS];
    if (e->key != key || now - e->since_ms >= STATS_STICKY_ERR_MS) {
        e->key = key;
        e->since_ms = now;
        e->errors = 0;
    }
    return ++e->errors <= STATS_STICKY_ERR_CAP;
}

void stats_record(struct worker *w, int route, int track, const struct snap_server *srv,
                  unsigned status, enum win_fail fail, uint64_t latency_us, int forced,
                  uint64_t sticky_key)
{
    struct stats_block *b = w->stats.cur;
    if (b == NULL || route < 0 || track < 0)
        return;
    int err = stats_is_error(status, fail);
    const struct snap_route *sr = &w->snap->routes[route];
    enum guard_role role = GUARD_ROLE_OTHER;
    struct guard_thresholds thr = {UINT64_MAX, UINT64_MAX};
    struct rt_route *rt = w->stats.rt ? w->stats.rt[route] : NULL;
    /* one sticky user's errors beyond the cap are counted apart, like
     * override-forced requests: not evidence for the windows or the guard */
    int guarded = rt != NULL && atomic_load_explicit(&rt->has_guard, memory_order_relaxed);
    int apart = forced || (err && sticky_key != 0 && guarded && !sticky_error_counts(w, sticky_key));
    if (!apart && guarded) {
        if (track == sr->baseline)
            role = GUARD_ROLE_BASELINE;
        else if (track == sr->candidate)
            role = GUARD_ROLE_CANDIDATE;
        thr.p50_us = atomic_load_explicit(&rt->thr_p50_us, memory_order_relaxed);
        thr.p99_us = atomic_load_explicit(&rt->thr_p99_us, memory_order_relaxed);
    }
    size_t ti = (size_t)route * CONF_MAX_TRACKS + (size_t)track;
    pthread_mutex_lock(&w->stats.lock);
    b = w->stats.cur; /* unchanged: only this thread replaces it */
    if (apart)
        win_tally_add_forced(&b->t[ti], err);
    else
        win_tally_add(&b->t[ti], status, fail, err, latency_us);
    b->t_dirty[ti] = 1;
    if (role != GUARD_ROLE_OTHER) {
        guard_batch_add(&b->batch[route], role, err, latency_us, &thr);
        b->b_dirty[route] = 1;
    }
    if (srv != NULL) {
        struct rt_counters *c = &b->srv[srv->id];
        if (forced) {
            c->forced++;
        } else {
            c->requests++;
            c->errors += (uint64_t)err;
        }
        c->n_class[status >= 100 && status < 600 ? status / 100 : 0]++;
        c->n_fail[fail]++;
        if (forced)
            win_tally_add_forced(&b->srv_t[srv->id], err);
        else
            win_tally_add(&b->srv_t[srv->id], status, fail, err, latency_us);
        b->s_dirty[srv->id] = 1;
    }
    b->dirty = 1;
    pthread_mutex_unlock(&w->stats.lock);
}

void stats_ejected(struct worker *w, const struct snap_server *srv, uint64_t until_ms)
{
    pthread_mutex_lock(&w->stats.lock);
    struct stats_block *b = w->stats.cur;
    if (b != NULL) {
        struct rt_counters *c = &b->srv[srv->id];
        c->ejections++;
        if (until_ms > c->ejected_until_ms)
            c->ejected_until_ms = until_ms;
        b->s_dirty[srv->id] = 1;
        b->dirty = 1;
    }
    pthread_mutex_unlock(&w->stats.lock);
}

/* ---- main thread: collection ---- */

static void counters_add_tally(struct rt_counters *c, const struct win_tally *t)
{
    c->requests += t->n;
    c->forced += t->n_forced;
    c->errors += t->n_err;
    for (int i = 0; i < WIN_N_CLASSES; i++)
        c->n_class[i] += t->n_class[i];
    for (int i = 0; i < WIN_FAIL_N; i++)
        c->n_fail[i] += t->n_fail[i];
}

static void counters_add(struct rt_counters *d, const struct rt_counters *s)
{
    d->ejections += s->ejections;
    if (s->ejected_until_ms > d->ejected_until_ms)
        d->ejected_until_ms = s->ejected_until_ms;
    d->requests += s->requests;
    d->forced += s->forced;
    d->errors += s->errors;
    for (int i = 0; i < WIN_N_CLASSES; i++)
        d->n_class[i] += s->n_class[i];
    for (int i = 0; i < WIN_FAIL_N; i++)
        d->n_fail[i] += s->n_fail[i];
}

/* Merges block <b> into the records and empties it. Caller holds the worker's lock. */
static void collect_block(struct stats_block *b, uint64_t now_ms)
{
    const struct snap *s = b->snap;
    for (size_t i = 0; i < s->n_routes; i++) {
        const struct snap_route *sr = &s->routes[i];
        struct rt_route *r = route_find(sr->name);
        for (size_t k = 0; k < sr->n_tracks; k++) {
            size_t ti = i * CONF_MAX_TRACKS + k;
            if (!b->t_dirty[ti])
                continue;
            int rk = r != NULL ? stats_track_index(r, sr->tracks[k].name) : -1;
            if (rk >= 0) {
                struct rt_track *t = &r->tracks[rk];
                win_add_tally(&t->win, now_ms, &b->t[ti]);
                counters_add_tally(&t->c, &b->t[ti]);
                hist_merge(&t->lat, &b->t[ti].lat);
            }
            win_tally_reset(&b->t[ti]);
            b->t_dirty[ti] = 0;
        }
        if (b->b_dirty[i]) {
            if (r != NULL && r->has_guard)
                guard_on_batch(&r->g, &r->grt, &b->batch[i], now_ms);
            guard_batch_init(&b->batch[i]);
            b->b_dirty[i] = 0;
        }
    }
    for (size_t i = 0; i < s->n_servers; i++) {
        if (!b->s_dirty[i])
            continue;
        struct rt_server *sv = server_get(s->servers[i].name);
        if (sv != NULL) {
            counters_add(&sv->c, &b->srv[i]);
            win_add_tally(&sv->win, now_ms, &b->srv_t[i]);
        }
        memset(&b->srv[i], 0, sizeof(b->srv[i]));
        win_tally_reset(&b->srv_t[i]);
        b->s_dirty[i] = 0;
    }
    b->dirty = 0;
}

void stats_collect(struct worker *ws, unsigned n, const struct snap *cur, uint64_t now_ms,
                   void (*on_trip)(void *arg, struct rt_route *r, const struct guard_reason *why),
                   void *arg)
{
    for (unsigned i = 0; i < n; i++) {
        struct worker_stats *st = &ws[i].stats;
        struct stats_block *retired;
        pthread_mutex_lock(&st->lock);
        if (st->cur != NULL && st->cur->dirty)
            collect_block(st->cur, now_ms);
        retired = st->retired;
        st->retired = NULL;
        for (struct stats_block *b = retired; b != NULL; b = b->next)
            collect_block(b, now_ms);
        pthread_mutex_unlock(&st->lock);
        while (retired != NULL) {
            struct stats_block *b = retired;
            retired = b->next;
            block_free(b);
        }
    }
    for (struct rt_route *r = routes; r != NULL; r = r->next) {
        if (!r->has_guard)
            continue;
        struct win_stats base, cand;
        if (now_ms - r->thr_at_ms >= GUARD_THR_EVERY_MS) {
            r->thr_at_ms = now_ms;
            win_sum(&r->tracks[r->base].win, now_ms, r->grt.baseline_span_ms, &base);
            const struct guard_thresholds *thr = guard_update_thresholds(&r->g, &r->grt, &base);
            atomic_store_explicit(&r->thr_p50_us, thr->p50_us, memory_order_relaxed);
            atomic_store_explicit(&r->thr_p99_us, thr->p99_us, memory_order_relaxed);
        }
        if (r->g.tripped)
            continue;
        win_sum(&r->tracks[r->base].win, now_ms, WIN_SPAN_MS, &base);
        win_sum(&r->tracks[r->cand].win, now_ms, WIN_SPAN_MS, &cand);
        /* no reason asked for: its text is formatted only at a trip (g.trip) */
        if (guard_eval(&r->grt, &r->g, &base, &cand, now_ms, NULL) == GUARD_TRIP) {
            r->trips++;
            if (on_trip != NULL)
                on_trip(arg, r, &r->g.trip);
        }
    }
    (void)cur;
}
