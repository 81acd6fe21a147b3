/*
 * guard.c: the guard's statistics (GUARD.md; the API and its interpretation
 * are in guard.h).
 *
 * Error allocation (E1, E2)
 * -------------------------
 * Look only at errors of the two tracks. If the candidate is no worse, an
 * error lands on it with probability q0, its share of requests. If its error
 * rate is r times the baseline's, the odds are r times larger:
 *
 *     q1 = r q0 / (r q0 + 1 - q0) = r q0 / (1 + (r - 1) q0)
 *
 * The log-likelihood ratio of one error is then
 *
 *     candidate error:  a = ln(q1 / q0)             = ln r - ln(1 + (r - 1) q0)
 *     baseline error:   d = ln((1 - q1) / (1 - q0)) =      - ln(1 + (r - 1) q0)
 *
 * (the right-hand forms stay finite at q0 = 0 and q0 = 1), and the CUSUM is
 * S = max(0, S + a or d), tripping at S >= h. Worked numbers, q0 = 0.05:
 *
 *     E1, r = 3:   1 + 2 * 0.05 = 1.1    a = ln(3 / 1.1) = 1.0033   d = -0.0953
 *     E2, r = 20:  1 + 19 * 0.05 = 1.95  a = ln(20 / 1.95) = 2.3279 d = -0.6678
 *
 * so E2 crosses h = 13.8 after ceil(13.8 / 2.3279) = 6 candidate errors with
 * no baseline error in between; at q0 = 0.25, a = ln(20 / 5.75) = 1.2465 and
 * it takes 12 ("a broken candidate trips after about 5-12 of its errors").
 * Under no regression the expected step is q0 a + (1 - q0) d < 0 (it is minus
 * a Kullback-Leibler divergence), so S hugs 0; a shared outage adds errors in
 * the proportion q0 : 1 - q0 and drives S down, not up.
 *
 * Latency exceedance (L1, L2)
 * ---------------------------
 * Each candidate request with a response head is x = 1 if its latency is
 * above the baseline's p99 (L1) or p50 (L2), else 0: Bernoulli with p0 when
 * healthy, p1 when regressed.
 *
 *     x = 1:  ln(p1 / p0)              L1: ln 3 = 1.0986     L2: ln 1.2 = 0.1823
 *     x = 0:  ln((1 - p1) / (1 - p0))  L1: -0.0204           L2: ln 0.8 = -0.2231
 *
 * At p = p1 the mean step is L1: 0.03 * 1.0986 - 0.97 * 0.0204 = 0.0132 and
 * L2: 0.6 * 0.1823 - 0.4 * 0.2231 = 0.0201, so 13.8 is reached after about
 * 1000 and 690 candidate requests (fewer at the median). The step is zero at
 * p = 1.82 % (L1) and 55.0 % (L2): estimation noise in the thresholds below
 * those leaves S pinned near 0.
 *
 * Ceiling (Clopper-Pearson)
 * -------------------------
 * The exact one-sided lower bound L at confidence 1 - alpha for k errors in n
 * solves P(X >= k | n, L) = alpha, and P(X >= k | n, p) = I_p(k, n - k + 1),
 * the regularized incomplete beta function. Since that tail grows with p,
 * "L > c" is the same as "P(X >= k | n, c) < alpha": one incomplete beta, no
 * root finding, for the decision; L itself is found by bisection only to
 * report it. Worked: n = 20, c = 0.05, alpha = 0.001: P(X >= 5) = 0.0026,
 * P(X >= 6) = 0.0003, so 6 errors in 20 are needed, where a raw "> 5 %" check
 * fires at 2 (probability 1.7 % per window for a healthy canary at 1 %).
 */
#include "guard.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define GUARD_EMPTY UINT64_MAX

_Static_assert(GUARD_NO_LATENCY == WIN_NO_LATENCY, "one 'no latency' value for both APIs");
_Static_assert(GUARD_T_N <= 32, "guard_reason.fired is a 32-bit mask");

static const char *const guard_verdict_names[GUARD_N_VERDICTS] = {
    [GUARD_OK] = "ok",
    [GUARD_HOLD] = "hold",
    [GUARD_TRIP] = "trip",
    [GUARD_TRIPPED] = "tripped",
};

static const char *const guard_test_names[GUARD_T_N] = {
    [GUARD_T_NONE] = "none",       [GUARD_T_F] = "F",   [GUARD_T_E2] = "E2",
    [GUARD_T_CEILING] = "ceiling", [GUARD_T_E1] = "E1", [GUARD_T_P99_RATIO] = "p99_ratio",
    [GUARD_T_L1] = "L1",           [GUARD_T_L2] = "L2",
};

const char *guard_verdict_name(enum guard_verdict v)
{
    return (unsigned)v < GUARD_N_VERDICTS ? guard_verdict_names[v] : "?";
}

const char *guard_test_name(enum guard_test t)
{
    return (unsigned)t < GUARD_T_N ? guard_test_names[t] : "?";
}

void guard_conf_defaults(struct guard_conf_rt *c)
{
    memset(c, 0, sizeof(*c));
    c->window_ms = 10000;
    c->min_requests = 20;
    c->max_error_rate = 0.05;
    c->max_p99_ratio = 2.0;
    c->h = 13.8;
    c->hold = 6.9;
    c->e1_ratio = 3.0;
    c->e2_ratio = 20.0;
    c->l1_p0 = 0.01;
    c->l1_p1 = 0.03;
    c->l2_p0 = 0.50;
    c->l2_p1 = 0.60;
    c->fast_failures = 5;
    c->fast_baseline_ok = 20;
    c->warmup_ms = 10000;
    c->warmup_requests = 50;
    c->material_error_pp = 0.001;
    c->material_error_ratio = 2.0;
    c->material_latency_ratio = 1.2;
    c->material_latency_us = 5000;
    c->ceiling_confidence = 0.999;
    c->p99_min_samples = 1000;
    c->baseline_span_ms = 30000;
    c->lat_min_baseline = 1000;
    c->share_min = 100;
}

void guard_conf_from(struct guard_conf_rt *c, const struct conf_guard *cg)
{
    guard_conf_defaults(c);
    if (cg->window_ms)
        c->window_ms = cg->window_ms;
    if (cg->min_requests)
        c->min_requests = cg->min_requests;
    c->max_error_rate = cg->max_error_rate;
    if (cg->max_p99_ratio > 0)
        c->max_p99_ratio = cg->max_p99_ratio;
    if (cg->h > 0) {
        c->h = cg->h;
        c->hold = cg->h / 2;
    }
    /* zero means "off" for F, and "no warm-up" for the other two */
    c->fast_failures = cg->fast_failures;
    c->warmup_ms = cg->warmup_ms;
    c->warmup_requests = cg->warmup_requests;
}

/* ---- batches (worker side) ------------------------------------------------------------ */

void guard_batch_init(struct guard_batch *b)
{
    memset(b, 0, sizeof(*b));
}

void guard_batch_add_n(struct guard_batch *b, enum guard_role role, uint64_t n, int is_error,
                       uint64_t latency_us, const struct guard_thresholds *thr)
{
    if (n == 0)
        return;
    if (role == GUARD_ROLE_BASELINE) {
        b->n_base += n;
        if (is_error) {
            b->err_base += n;
            b->base_tail_ok = 0;
        } else {
            b->base_tail_ok += n;
        }
        return;
    }
    if (role != GUARD_ROLE_CANDIDATE)
        return;
    if (is_error) {
        if (b->cand_head_fail == b->n_cand) /* no success yet in this batch */
            b->cand_head_fail += n;
        b->err_cand += n;
        b->cand_tail_fail += n;
        if (b->cand_tail_fail > b->cand_max_fail)
            b->cand_max_fail = b->cand_tail_fail;
    } else {
        b->cand_tail_fail = 0;
    }
    b->n_cand += n;
    if (latency_us == GUARD_NO_LATENCY || thr == NULL)
        return;
    if (thr->p99_us) {
        b->l1_n += n;
        if (latency_us > thr->p99_us)
            b->l1_x += n;
    }
    if (thr->p50_us) {
        b->l2_n += n;
        if (latency_us > thr->p50_us)
            b->l2_x += n;
    }
}

void guard_batch_add(struct guard_batch *b, enum guard_role role, int is_error, uint64_t latency_us,
                     const struct guard_thresholds *thr)
{
    guard_batch_add_n(b, role, 1, is_error, latency_us, thr);
}

/* ---- state ---------------------------------------------------------------------------- */

static void guard_clear_evidence(struct guard_state *g, uint64_t now_ms)
{
    unsigned i;

    for (i = 0; i < GUARD_N_CUSUMS; i++) {
        g->s[i] = 0.0;
        g->_peak[i] = 0.0;
    }
    g->cand_fail_run = 0;
    g->base_ok_run = 0;
    g->cand_seen = 0;
    g->cand_first_ms = GUARD_EMPTY;
    g->armed_ms = now_ms;
    g->tripped = 0;
    memset(&g->trip, 0, sizeof(g->trip));
    g->_f_peak_run = 0;
}

void guard_init(struct guard_state *g, uint64_t now_ms)
{
    unsigned i;

    memset(g, 0, sizeof(*g));
    guard_clear_evidence(g, now_ms);
    g->q0 = -1.0;
    g->_last_ms = now_ms;
    g->_q0_id = GUARD_EMPTY;
    for (i = 0; i < GUARD_SHARE_SLOTS; i++)
        g->_share[i].id = GUARD_EMPTY;
}

void guard_rearm(struct guard_state *g, uint64_t now_ms)
{
    if (now_ms < g->_last_ms)
        now_ms = g->_last_ms;
    guard_clear_evidence(g, now_ms);
}

static int guard_in_warmup(const struct guard_state *g, const struct guard_conf_rt *c,
                           uint64_t now_ms)
{
    if (g->cand_first_ms == GUARD_EMPTY || g->cand_seen < c->warmup_requests)
        return 1;
    return now_ms - g->cand_first_ms < c->warmup_ms;
}

/*
 * q0 for share slot <id>: the candidate's share over the ten slots before
 * <id> (the last complete second), widened slot by slot up to 10 s while
 * fewer than share_min outcomes are in it. -1 when there are none at all.
 */
static double guard_share_q0(const struct guard_state *g, const struct guard_conf_rt *c,
                             uint64_t id)
{
    uint64_t cand = 0, all = 0, want;
    const struct guard_share_slot *s;
    unsigned age;

    for (age = 1; age < GUARD_SHARE_SLOTS && age <= id; age++) {
        s = &g->_share[(id - age) % GUARD_SHARE_SLOTS];
        if (s->id == id - age) {
            cand += s->n_cand;
            all += s->n_cand + s->n_base;
        }
        want = age >= 1000 / GUARD_SHARE_SLOT_MS && all >= c->share_min;
        if (want)
            break;
    }
    return all ? (double)cand / (double)all : -1.0;
}

static void guard_share_add(struct guard_state *g, const struct guard_conf_rt *c,
                            const struct guard_batch *b, uint64_t now_ms)
{
    uint64_t id = now_ms / GUARD_SHARE_SLOT_MS;
    struct guard_share_slot *s = &g->_share[id % GUARD_SHARE_SLOTS];

    if (g->_q0_id != id) {
        g->_q0_id = id;
        g->q0 = guard_share_q0(g, c, id);
    }
    if (s->id != id) {
        s->id = id;
        s->n_cand = 0;
        s->n_base = 0;
    }
    s->n_cand += b->n_cand;
    s->n_base += b->n_base;
}

void guard_e_incr(double r, double q0, double *on_cand, double *on_base)
{
    double l = log1p((r - 1.0) * q0);

    *on_cand = log(r) - l;
    *on_base = -l;
}

/*
 * Applies <c> up-steps of <u> and <b> down-steps of <d> to the CUSUM <s>,
 * evenly interleaved (see guard.h), keeping the highest value in <peak>.
 */
static void guard_cusum(double *s, double *peak, uint64_t c, double u, uint64_t b, double d)
{
    uint64_t n = c + b, acc = n / 2, i;
    double v = *s;

    if (c == 0) {
        v += (double)b * d;
        *s = v > 0.0 ? v : 0.0;
        return;
    }
    if (b == 0) {
        v += (double)c * u;
    } else {
        for (i = 0; i < n; i++) {
            acc += c;
            if (acc >= n) {
                acc -= n;
                v += u;
                if (v > *peak)
                    *peak = v;
            } else {
                v += d;
                if (v < 0.0)
                    v = 0.0;
            }
        }
    }
    *s = v;
    if (v > *peak)
        *peak = v;
}

void guard_on_batch(struct guard_state *g, const struct guard_conf_rt *c,
                    const struct guard_batch *b, uint64_t now_ms)
{
    double a, d;
    uint64_t run;
    int warm;

    if (now_ms < g->_last_ms)
        now_ms = g->_last_ms;
    g->_last_ms = now_ms;
    guard_share_add(g, c, b, now_ms);

    warm = guard_in_warmup(g, c, now_ms); /* judged before this batch's requests count */
    if (b->n_cand) {
        if (g->cand_first_ms == GUARD_EMPTY)
            g->cand_first_ms = now_ms;
        g->cand_seen += b->n_cand;
    }

    if ((b->err_cand || b->err_base) && g->q0 >= 0.0) {
        guard_e_incr(c->e2_ratio, g->q0, &a, &d);
        guard_cusum(&g->s[GUARD_E2], &g->_peak[GUARD_E2], b->err_cand, a, b->err_base, d);
        if (!warm) {
            guard_e_incr(c->e1_ratio, g->q0, &a, &d);
            guard_cusum(&g->s[GUARD_E1], &g->_peak[GUARD_E1], b->err_cand, a, b->err_base, d);
        }
    }
    if (!warm && b->l1_n)
        guard_cusum(&g->s[GUARD_L1], &g->_peak[GUARD_L1], b->l1_x, log(c->l1_p1 / c->l1_p0),
                    b->l1_n - b->l1_x, log((1.0 - c->l1_p1) / (1.0 - c->l1_p0)));
    if (!warm && b->l2_n)
        guard_cusum(&g->s[GUARD_L2], &g->_peak[GUARD_L2], b->l2_x, log(c->l2_p1 / c->l2_p0),
                    b->l2_n - b->l2_x, log((1.0 - c->l2_p1) / (1.0 - c->l2_p0)));

    /* F: join this batch's candidate runs to the carried one, in order */
    if (b->cand_head_fail == b->n_cand) { /* all failures (or none at all) */
        g->cand_fail_run += b->n_cand;
        run = g->cand_fail_run;
    } else {
        run = g->cand_fail_run + b->cand_head_fail;
        if (b->cand_max_fail > run)
            run = b->cand_max_fail;
        g->cand_fail_run = b->cand_tail_fail;
    }
    g->base_ok_run = b->err_base ? b->base_tail_ok : g->base_ok_run + b->n_base;
    if (c->fast_failures && run >= c->fast_failures && g->base_ok_run >= c->fast_baseline_ok &&
        run > g->_f_peak_run)
        g->_f_peak_run = run;
}

void guard_on_outcome(struct guard_state *g, const struct guard_conf_rt *c, enum guard_role role,
                      int is_error, uint64_t latency_us, uint64_t now_ms)
{
    struct guard_batch b;

    if (role != GUARD_ROLE_BASELINE && role != GUARD_ROLE_CANDIDATE)
        return;
    guard_batch_init(&b);
    guard_batch_add(&b, role, is_error, latency_us, &g->thr);
    guard_on_batch(g, c, &b, now_ms);
}

const struct guard_thresholds *guard_update_thresholds(struct guard_state *g,
                                                       const struct guard_conf_rt *c,
                                                       const struct win_stats *base_recent)
{
    const struct hist *h = &base_recent->lat;

    if (h->count >= c->lat_min_baseline && h->count > 0) {
        g->thr.p99_us = hist_highest_equiv(hist_quantile(h, 0.99));
        g->thr.p50_us = hist_highest_equiv(hist_quantile(h, 0.50));
    } else {
        g->thr.p99_us = 0;
        g->thr.p50_us = 0;
    }
    return &g->thr;
}

/* ---- binomial tail and Clopper-Pearson ------------------------------------------------ */

/* Continued fraction of the incomplete beta function (modified Lentz). */
static double guard_betacf(double a, double b, double x)
{
    const double tiny = 1e-300, eps = 1e-13;
    double qab = a + b, qap = a + 1.0, qam = a - 1.0, cc = 1.0, dd, h, aa, del;
    int m, m2;

    dd = 1.0 - qab * x / qap;
    if (fabs(dd) < tiny)
        dd = tiny;
    dd = 1.0 / dd;
    h = dd;
    for (m = 1; m <= 200000; m++) {
        m2 = 2 * m;
        aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        dd = 1.0 + aa * dd;
        if (fabs(dd) < tiny)
            dd = tiny;
        cc = 1.0 + aa / cc;
        if (fabs(cc) < tiny)
            cc = tiny;
        dd = 1.0 / dd;
        h *= dd * cc;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        dd = 1.0 + aa * dd;
        if (fabs(dd) < tiny)
            dd = tiny;
        cc = 1.0 + aa / cc;
        if (fabs(cc) < tiny)
            cc = tiny;
        dd = 1.0 / dd;
        del = dd * cc;
        h *= del;
        if (fabs(del - 1.0) < eps)
            break;
    }
    return h;
}

static double guard_lgamma(double x)
{
    int sign;

    return lgamma_r(x, &sign); /* lgamma() writes the global signgam */
}

/* Regularized incomplete beta I_x(a, b). */
static double guard_betai(double a, double b, double x)
{
    double lbt;

    if (x <= 0.0)
        return 0.0;
    if (x >= 1.0)
        return 1.0;
    lbt = guard_lgamma(a + b) - guard_lgamma(a) - guard_lgamma(b) + a * log(x) + b * log1p(-x);
    if (x < (a + 1.0) / (a + b + 2.0))
        return exp(lbt) * guard_betacf(a, b, x) / a;
    return 1.0 - exp(lbt) * guard_betacf(b, a, 1.0 - x) / b;
}

double guard_binom_tail(uint64_t k, uint64_t n, double p)
{
    if (k == 0)
        return 1.0;
    if (k > n)
        return 0.0;
    return guard_betai((double)k, (double)(n - k + 1), p);
}

double guard_cp_lower(uint64_t k, uint64_t n, double confidence)
{
    double alpha = 1.0 - confidence, lo = 0.0, hi, mid;
    int i;

    if (k == 0 || n == 0)
        return 0.0;
    if (k > n)
        k = n;
    hi = (double)k / (double)n;
    for (i = 0; i < 60; i++) {
        mid = 0.5 * (lo + hi);
        if (guard_binom_tail(k, n, mid) < alpha)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* ---- evaluation ----------------------------------------------------------------------- */

static double guard_rate(uint64_t err, uint64_t n)
{
    return n ? (double)err / (double)n : 0.0;
}

static int guard_lat_material(const struct guard_conf_rt *c, uint64_t base_us, uint64_t cand_us)
{
    return base_us > 0 && (double)cand_us >= c->material_latency_ratio * (double)base_us &&
           cand_us >= base_us + c->material_latency_us;
}

static void guard_format(const struct guard_conf_rt *c, struct guard_reason *r)
{
    char *t = r->text;
    size_t sz = sizeof(r->text);
    int n = 0;

    switch (r->test) {
    case GUARD_T_F:
        n = snprintf(t, sz,
                     "F: %llu consecutive candidate failures while the baseline's last %llu "
                     "succeeded",
                     (unsigned long long)r->cand_fail_run, (unsigned long long)r->base_ok_run);
        break;
    case GUARD_T_E2:
    case GUARD_T_E1:
        n = snprintf(t, sz,
                     "%s: errors fall on the candidate too often, S=%.2f >= h=%.2f (r=%g, "
                     "q0=%.4f)",
                     guard_test_name(r->test), r->s[r->test == GUARD_T_E1 ? GUARD_E1 : GUARD_E2],
                     r->h, r->test == GUARD_T_E1 ? c->e1_ratio : c->e2_ratio, r->q0);
        break;
    case GUARD_T_CEILING:
        n = snprintf(t, sz,
                     "ceiling: candidate error rate >= %.2f%% (%.1f%% lower bound, %llu/%llu in "
                     "%.0f s) above max_error_rate %.2f%% and the baseline's %.3f%%",
                     100.0 * r->ceil_lb, 100.0 * c->ceiling_confidence,
                     (unsigned long long)r->win_cand_err, (unsigned long long)r->win_cand_n,
                     c->window_ms / 1000.0, 100.0 * r->max_error_rate,
                     100.0 * guard_rate(r->win_base_err, r->win_base_n));
        break;
    case GUARD_T_P99_RATIO:
        n = snprintf(t, sz,
                     "p99_ratio: candidate p99 %.1f ms is %.2fx the baseline's %.1f ms (max "
                     "%.2f, %llu samples)",
                     r->cand_p99_us / 1000.0, r->p99_ratio, r->base_p99_us / 1000.0,
                     r->max_p99_ratio, (unsigned long long)r->cand_lat_n);
        break;
    case GUARD_T_L1:
    case GUARD_T_L2:
        n = snprintf(t, sz,
                     "%s: candidate latency above the baseline's %s (%.1f ms) too often, S=%.2f "
                     ">= h=%.2f",
                     guard_test_name(r->test), r->test == GUARD_T_L1 ? "p99" : "p50",
                     (r->test == GUARD_T_L1 ? r->thr.p99_us : r->thr.p50_us) / 1000.0,
                     r->s[r->test == GUARD_T_L1 ? GUARD_L1 : GUARD_L2], r->h);
        break;
    default:
        n = snprintf(t, sz, "%s%s%s: S E1=%.2f E2=%.2f L1=%.2f L2=%.2f (h=%.2f), q0=%.4f",
                     guard_verdict_name(r->verdict), r->warmup ? ", warm-up" : "",
                     r->enough ? "" : ", below min_requests", r->s[GUARD_E1], r->s[GUARD_E2],
                     r->s[GUARD_L1], r->s[GUARD_L2], r->h, r->q0);
        break;
    }
    if (n < 0 || (size_t)n >= sz)
        return;
    n += snprintf(t + n, sz - (size_t)n,
                  "; 60 s: candidate %llu/%llu errors (%.3f%%) p99 %.1f ms, baseline %llu/%llu "
                  "(%.3f%%) p99 %.1f ms",
                  (unsigned long long)r->cand_err, (unsigned long long)r->cand_n,
                  100.0 * r->cand_rate, r->cand_p99_us / 1000.0, (unsigned long long)r->base_err,
                  (unsigned long long)r->base_n, 100.0 * r->base_rate, r->base_p99_us / 1000.0);
    (void)n;
}

enum guard_verdict guard_eval(const struct guard_conf_rt *c, struct guard_state *g,
                              const struct win_stats *base, const struct win_stats *cand,
                              uint64_t now_ms, struct guard_reason *why)
{
    struct guard_reason r;
    uint64_t wcn, wce, wbn, wbe;
    double bar, rate_w;
    int hold = 0, t;
    unsigned i;

    if (g->tripped) {
        if (why)
            *why = g->trip;
        return GUARD_TRIPPED;
    }
    if (now_ms < g->_last_ms)
        now_ms = g->_last_ms;

    memset(&r, 0, offsetof(struct guard_reason, text));
    r.text[0] = '\0';
    r.at_ms = now_ms;
    r.h = c->h;
    r.q0 = g->q0;
    r.thr = g->thr;
    r.min_requests = c->min_requests;
    r.max_error_rate = c->max_error_rate;
    r.max_p99_ratio = c->max_p99_ratio;
    r.ceil_lb = -1.0;
    r.warmup = guard_in_warmup(g, c, now_ms);

    win_stats_recent(cand, c->window_ms, &wcn, &wce);
    win_stats_recent(base, c->window_ms, &wbn, &wbe);
    r.win_cand_n = wcn;
    r.win_cand_err = wce;
    r.win_base_n = wbn;
    r.win_base_err = wbe;
    r.enough = wcn >= c->min_requests;

    r.base_n = base->c.n;
    r.base_err = base->c.n_err;
    r.cand_n = cand->c.n;
    r.cand_err = cand->c.n_err;
    r.base_rate = guard_rate(r.base_err, r.base_n);
    r.cand_rate = guard_rate(r.cand_err, r.cand_n);
    r.material_err = r.base_n > 0 && r.cand_n > 0 && r.cand_rate > r.base_rate &&
                     (r.cand_rate - r.base_rate >= c->material_error_pp ||
                      r.cand_rate >= c->material_error_ratio * r.base_rate);

    r.base_lat_n = base->lat.count;
    r.cand_lat_n = cand->lat.count;
    if (r.base_lat_n && r.cand_lat_n) {
        r.base_p50_us = hist_quantile(&base->lat, 0.50);
        r.base_p99_us = hist_quantile(&base->lat, 0.99);
        r.cand_p50_us = hist_quantile(&cand->lat, 0.50);
        r.cand_p99_us = hist_quantile(&cand->lat, 0.99);
        r.material_l1 = guard_lat_material(c, r.base_p99_us, r.cand_p99_us);
        r.material_l2 = guard_lat_material(c, r.base_p50_us, r.cand_p50_us);
    }

    if (g->_f_peak_run)
        r.fired |= 1u << GUARD_T_F;
    if (g->_peak[GUARD_E2] >= c->h)
        r.fired |= 1u << GUARD_T_E2;
    if (!r.warmup) {
        if (g->_peak[GUARD_E1] >= c->h && r.material_err)
            r.fired |= 1u << GUARD_T_E1;
        if (g->_peak[GUARD_L1] >= c->h && r.material_l1)
            r.fired |= 1u << GUARD_T_L1;
        if (g->_peak[GUARD_L2] >= c->h && r.material_l2)
            r.fired |= 1u << GUARD_T_L2;
        rate_w = guard_rate(wce, wcn);
        bar = guard_rate(wbe, wbn);
        if (bar < c->max_error_rate)
            bar = c->max_error_rate;
        if (wcn && rate_w > c->max_error_rate)
            r.ceil_lb = guard_cp_lower(wce, wcn, c->ceiling_confidence);
        /* lower bound > max(ceiling, baseline rate)  <=>  P(X >= k | n, bar) < alpha */
        if (wcn && rate_w > bar && bar < 1.0 &&
            guard_binom_tail(wce, wcn, bar) < 1.0 - c->ceiling_confidence)
            r.fired |= 1u << GUARD_T_CEILING;
        if (r.cand_lat_n >= c->p99_min_samples && r.base_lat_n >= c->p99_min_samples &&
            r.base_p99_us > 0) {
            r.p99_ratio = (double)r.cand_p99_us / (double)r.base_p99_us;
            /* a ratio of sub-millisecond tails is noise: the gap must also be
             * material in absolute terms (material_latency_us, 5 ms) */
            if (r.p99_ratio > c->max_p99_ratio &&
                r.cand_p99_us >= r.base_p99_us + c->material_latency_us)
                r.fired |= 1u << GUARD_T_P99_RATIO;
        }
    }
    if (!r.enough)
        r.fired = 0;

    for (i = 0; i < GUARD_N_CUSUMS; i++) {
        r.s[i] = r.fired ? g->_peak[i] : g->s[i];
        if (g->s[i] >= c->hold)
            hold = 1;
    }
    r.cand_fail_run = r.fired & (1u << GUARD_T_F) ? g->_f_peak_run : g->cand_fail_run;
    r.base_ok_run = g->base_ok_run;
    for (i = 0; i < GUARD_N_CUSUMS; i++)
        g->_peak[i] = g->s[i];
    g->_f_peak_run = 0;

    if (r.fired) {
        for (t = GUARD_T_F; t < GUARD_T_N; t++)
            if (r.fired & (1u << t))
                break;
        r.test = (enum guard_test)t;
        r.verdict = GUARD_TRIP;
        guard_format(c, &r);
        g->tripped = 1;
        g->trip = r;
        if (why)
            *why = r;
        return GUARD_TRIP;
    }
    r.verdict = hold || r.warmup || !r.enough ? GUARD_HOLD : GUARD_OK;
    if (why) {
        guard_format(c, &r);
        *why = r;
    }
    return r.verdict;
}
