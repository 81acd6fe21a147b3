/*
 * win.c: 60 x 1 s ring of outcome tallies (see win.h).
 */
#include "win.h"

#include <stddef.h>
#include <string.h>

#define WIN_EMPTY UINT64_MAX

static unsigned win_span_secs(unsigned span_ms)
{
    unsigned n = span_ms / WIN_SLOT_MS + (span_ms % WIN_SLOT_MS != 0);

    if (n < 1)
        n = 1;
    if (n > WIN_SLOTS)
        n = WIN_SLOTS;
    return n;
}

void win_tally_init(struct win_tally *t)
{
    memset(t, 0, offsetof(struct win_tally, lat));
    hist_init(&t->lat);
}

void win_tally_reset(struct win_tally *t)
{
    memset(t, 0, offsetof(struct win_tally, lat));
    hist_reset(&t->lat);
}

void win_init(struct win *w)
{
    unsigned i;

    w->last_sec = 0;
    for (i = 0; i < WIN_SLOTS; i++) {
        w->slot[i].sec = WIN_EMPTY;
        win_tally_init(&w->slot[i].t);
    }
}

static void win_bump(uint32_t *c, uint32_t n)
{
    *c = *c > UINT32_MAX - n ? UINT32_MAX : *c + n;
}

void win_tally_add(struct win_tally *t, unsigned status, enum win_fail fail, int is_error,
                   uint64_t latency_us)
{
    unsigned cls = status >= 100 && status < 600 ? status / 100 : 0;

    win_bump(&t->n, 1);
    win_bump(&t->n_class[cls], 1);
    if ((unsigned)fail < WIN_FAIL_N && fail != WIN_FAIL_NONE)
        win_bump(&t->n_fail[fail], 1);
    if (is_error) {
        win_bump(&t->n_err, 1);
        if (cls == 5)
            win_bump(&t->n_err_5xx, 1);
    }
    if (latency_us != WIN_NO_LATENCY)
        hist_record(&t->lat, latency_us);
}

void win_tally_add_forced(struct win_tally *t, int is_error)
{
    win_bump(&t->n_forced, 1);
    if (is_error)
        win_bump(&t->n_forced_err, 1);
}

void win_tally_merge(struct win_tally *dst, const struct win_tally *t)
{
    unsigned i;

    win_bump(&dst->n, t->n);
    win_bump(&dst->n_err, t->n_err);
    for (i = 0; i < WIN_N_CLASSES; i++)
        win_bump(&dst->n_class[i], t->n_class[i]);
    for (i = 0; i < WIN_FAIL_N; i++)
        win_bump(&dst->n_fail[i], t->n_fail[i]);
    win_bump(&dst->n_err_5xx, t->n_err_5xx);
    win_bump(&dst->n_forced, t->n_forced);
    win_bump(&dst->n_forced_err, t->n_forced_err);
    hist_merge(&dst->lat, &t->lat);
}

/* The tally for <now_ms>, emptied first if it held an older second. */
static struct win_tally *win_slot_for(struct win *w, uint64_t now_ms)
{
    uint64_t sec = now_ms / WIN_SLOT_MS;
    struct win_slot *s;

    if (sec < w->last_sec)
        sec = w->last_sec; /* a clock that steps back: count in the newest second */
    w->last_sec = sec;
    s = &w->slot[sec % WIN_SLOTS];
    if (s->sec != sec) {
        s->sec = sec;
        win_tally_reset(&s->t);
    }
    return &s->t;
}

void win_add(struct win *w, uint64_t now_ms, unsigned status, enum win_fail fail, int is_error,
             uint64_t latency_us)
{
    win_tally_add(win_slot_for(w, now_ms), status, fail, is_error, latency_us);
}

void win_add_forced(struct win *w, uint64_t now_ms, int is_error)
{
    win_tally_add_forced(win_slot_for(w, now_ms), is_error);
}

void win_add_tally(struct win *w, uint64_t now_ms, const struct win_tally *t)
{
    win_tally_merge(win_slot_for(w, now_ms), t);
}

void win_stats_init(struct win_stats *st, uint64_t now_ms, unsigned span_ms)
{
    memset(st, 0, offsetof(struct win_stats, lat));
    st->now_ms = now_ms;
    st->n_sec = win_span_secs(span_ms);
    hist_init(&st->lat);
}

void win_accumulate(struct win_stats *st, const struct win *w)
{
    uint64_t now_sec = st->now_ms / WIN_SLOT_MS, age;
    const struct win_tally *t;
    unsigned i, k;

    for (i = 0; i < WIN_SLOTS; i++) {
        if (w->slot[i].sec == WIN_EMPTY || w->slot[i].sec > now_sec)
            continue;
        age = now_sec - w->slot[i].sec;
        if (age >= st->n_sec)
            continue;
        t = &w->slot[i].t;
        st->c.n += t->n;
        st->c.n_err += t->n_err;
        for (k = 0; k < WIN_N_CLASSES; k++)
            st->c.n_class[k] += t->n_class[k];
        for (k = 0; k < WIN_FAIL_N; k++)
            st->c.n_fail[k] += t->n_fail[k];
        st->c.n_err_5xx += t->n_err_5xx;
        st->c.n_forced += t->n_forced;
        st->c.n_forced_err += t->n_forced_err;
        st->sec_n[age] += t->n;
        st->sec_err[age] += t->n_err;
        hist_merge(&st->lat, &t->lat);
    }
}

void win_sum(const struct win *w, uint64_t now_ms, unsigned span_ms, struct win_stats *out)
{
    win_stats_init(out, now_ms, span_ms);
    win_accumulate(out, w);
}

void win_sum_many(const struct win *const *ws, size_t n, uint64_t now_ms, unsigned span_ms,
                  struct win_stats *out)
{
    size_t i;

    win_stats_init(out, now_ms, span_ms);
    for (i = 0; i < n; i++)
        if (ws[i])
            win_accumulate(out, ws[i]);
}

void win_stats_recent(const struct win_stats *st, unsigned span_ms, uint64_t *n, uint64_t *err)
{
    unsigned i, k = win_span_secs(span_ms);

    if (k > st->n_sec)
        k = st->n_sec;
    *n = 0;
    *err = 0;
    for (i = 0; i < k; i++) {
        *n += st->sec_n[i];
        *err += st->sec_err[i];
    }
}
