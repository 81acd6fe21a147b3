/*
 * guard.h: judging a candidate track against its baseline (../shared/GUARD.md).
 *
 * Pure: every function here is a function of its arguments (counters, window
 * stats and a now_ms passed in). No clock, no I/O, no logging, no allocation.
 * The caller owns every struct and decides what to do with a verdict.
 *
 * What the proxy does
 * -------------------
 * At configuration time, per guarded route: guard_conf_from(&conf_rt,
 * &route->guard), guard_init(&state, now_ms), and (recommended) a struct win
 * for the baseline and one for the candidate, owned by the guard thread.
 *
 * Worker thread, for each finished upstream attempt of a guarded route:
 *
 *   - Override-forced requests are NOT evidence: never pass them here (count
 *     them with win_add_forced()). A retried request is charged once, to the
 *     track that failed first. With stickiness, cap the errors one sticky key
 *     may contribute (a few per 10 s) before calling in.
 *   - guard_batch_add(&batch, role, is_error, latency_us, &thr), where role is
 *     the attempt's track's role on the route, <is_error> the error verdict
 *     (5xx in the configured set, connect failure, timeout, reset before a
 *     complete response), <latency_us> the time to the response head or
 *     GUARD_NO_LATENCY, and <thr> the baseline quantiles the guard last
 *     published (guard_update_thresholds()).
 *   - win_tally_add() into a per-track tally for the same tick, if the guard
 *     keeps its own windows (recommended; see win.h).
 *   - Every ~10 ms: hand batch (and tallies) to the guard thread, then
 *     guard_batch_init(&batch).
 *
 * Guard thread, every ~10 ms tick, per guarded route:
 *
 *   1. For each batch received, in arrival order:
 *        guard_on_batch(g, conf, &batch, now_ms);
 *        win_add_tally(&base_win, now_ms, &base_tally);   (and the candidate's)
 *   2. win_sum(&base_win, now_ms, conf->baseline_span_ms, &st);
 *      guard_update_thresholds(g, conf, &st);  then publish g->thr to the workers
 *      (it changes slowly; once every 100 ms .. 1 s is plenty).
 *   3. win_sum(&base_win, now_ms, WIN_SPAN_MS, &base); same for cand; then
 *        v = guard_eval(conf, g, &base, &cand, now_ms, &why);
 *      GUARD_TRIP: snap back now (candidate weight 0), write through, log
 *      why.text. GUARD_TRIPPED: already acted. GUARD_HOLD / GUARD_OK: nothing.
 *   4. guard_rearm(g, now_ms) when an operator re-arms the route (and when the
 *      candidate's weight rises from 0, so that it gets a fresh warm-up).
 *
 * Batches and the order of events
 * -------------------------------
 * GUARD.md updates the CUSUMs per request. Requests finish on several worker
 * threads, so the guard sees them as per-tick batches from each worker,
 * applied in arrival order. Inside a batch the order of a candidate's and a
 * baseline's outcomes is lost; the guard replays a batch's c candidate errors
 * and b baseline errors evenly interleaved (Bresenham: with c = 2, b = 4 the
 * order is B C B B C B), which is what random arrival gives on average. How
 * much can the order matter? With per-event increments x_i, a CUSUM is
 * S_n = max(S_0 + sum(x), max over k of the suffix sum x_(k+1) + .. + x_n)
 * (Lindley). Candidate errors add a > 0, baseline errors add d < 0, so over a
 * batch T = c*a + b*d is fixed and only the suffix term depends on the order:
 *
 *     smallest end value (all C first, then all B):  max(0, S_0 + T)
 *     largest  end value (all B first, then all C):  max(S_0 + T, c * a)
 *
 * The order matters only when the batch's baseline errors outweigh S_0, and
 * then by at most c * a. At 1000 req/s a 10 ms batch almost never holds more
 * than one error, and with c <= 1 the spread is at most one increment
 * (a <= ln r). The same holds for the latency CUSUMs with exceedances in the
 * role of candidate errors. Counts are therefore exact; only the position of
 * a crossing inside a tick is approximate, which a 10 ms tick cannot see
 * anyway. F's consecutive-failure runs keep their order within a worker's
 * batch (head, longest and tail run) and join across batches in arrival
 * order; the baseline's success run is read at the end of each batch.
 *
 * Interpretations of GUARD.md, stated once
 * ----------------------------------------
 *   - q0 (E1, E2) is the candidate's share of baseline+candidate outcomes over
 *     the last complete second (ten 100 ms slots before the current one),
 *     widened up to 10 s while fewer than share_min outcomes are in it. Slots
 *     before the current one only: within a 100 ms slot q0 is constant, and a
 *     candidate error never inflates its own q0. No outcome in 10 s: no E
 *     evidence.
 *   - Warm-up lasts while the candidate has had fewer than warmup_requests
 *     outcomes OR less than warmup_ms has passed since its first one (both
 *     must be over). During warm-up E1, L1 and L2 are held at 0 (cold-start
 *     effects are not evidence), and the ceiling and p99 ratio are off.
 *   - min_requests (candidate outcomes in the last window_ms) gates every
 *     test, F and E2 included.
 *   - Materiality, last 60 s. Errors: the candidate's rate is above the
 *     baseline's and at least material_error_pp above it OR at least
 *     material_error_ratio times it (so the bar is min(base + 0.1 pp,
 *     2 * base)). Latency: L1 compares p99s, L2 compares p50s, each needing
 *     candidate >= 1.2 x baseline AND >= baseline + 5 ms.
 *   - Ceiling: Clopper-Pearson (exact, conservative). Trip when the one-sided
 *     99.9 % lower bound of the candidate's error rate over window_ms exceeds
 *     the ceiling and also exceeds the baseline's rate over the same span
 *     ("worse than the baseline" judged on the bound, not on the raw rates,
 *     so a shared outage where both tracks fail alike does not trip it).
 *   - max_p99_ratio: candidate p99 > ratio x baseline p99 over the last 60 s,
 *     judged only with >= p99_min_samples latency samples on both tracks.
 *   - L1 / L2 count a candidate request as exceeding when its latency is
 *     above the highest value of the histogram bucket holding the baseline's
 *     p99 / p50 (trailing baseline_span_ms, at least lat_min_baseline
 *     samples). Rounding the threshold up to the bucket's top keeps the
 *     exceedance under H0 at or below p0. Requests without a response head
 *     are judged by E1/E2/F only.
 *   - F: at least fast_failures consecutive candidate failures, while the
 *     baseline's last fast_baseline_ok outcomes all succeeded.
 */
#ifndef CUTOVER_GUARD_H
#define CUTOVER_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "../conf/conf.h"
#include "win.h"

#define GUARD_NO_LATENCY UINT64_MAX /* same value as WIN_NO_LATENCY */
#define GUARD_SHARE_SLOT_MS 100u
#define GUARD_SHARE_SLOTS 100 /* 10 s of 100 ms slots for q0 */
#define GUARD_REASON_TEXT 480

enum guard_role {
    GUARD_ROLE_OTHER = 0, /* a track that is neither: ignored */
    GUARD_ROLE_BASELINE,
    GUARD_ROLE_CANDIDATE,
    GUARD_ROLE_N
};

enum guard_verdict {
    GUARD_OK = 0,  /* armed, nothing to say */
    GUARD_HOLD,    /* armed, no trip, but not a clean pass: warm-up, too few requests, or some
                    * S at or above conf->hold (a ramp must not advance) */
    GUARD_TRIP,    /* tripped at this evaluation: snap back now (returned once) */
    GUARD_TRIPPED, /* latched from an earlier trip, until guard_rearm() */
    GUARD_N_VERDICTS
};

/* The tests, in priority order: when several fire at once the first names the trip. */
enum guard_test {
    GUARD_T_NONE = 0,
    GUARD_T_F,         /* fast path: consecutive candidate failures */
    GUARD_T_E2,        /* error allocation CUSUM, r = 20 */
    GUARD_T_CEILING,   /* max_error_rate on a 99.9 % lower bound */
    GUARD_T_E1,        /* error allocation CUSUM, r = 3 */
    GUARD_T_P99_RATIO, /* max_p99_ratio */
    GUARD_T_L1,        /* p99 exceedance CUSUM */
    GUARD_T_L2,        /* p50 exceedance CUSUM */
    GUARD_T_N
};

/* Index of each CUSUM in guard_state.s[]. */
enum guard_cusum { GUARD_E1 = 0, GUARD_E2, GUARD_L1, GUARD_L2, GUARD_N_CUSUMS };

/*
 * A route's guard settings at run time. guard_conf_defaults() fills GUARD.md's
 * defaults; guard_conf_from() then copies what the route's guard block sets.
 */
struct guard_conf_rt {
    /* from struct conf_guard */
    unsigned window_ms;    /* 10000: span of min_requests and the ceiling (capped at 60 s) */
    unsigned min_requests; /* 20: candidate outcomes in window_ms before anything trips */
    double max_error_rate; /* 0.05: ceiling on the lower bound (>= 1 never trips) */
    double max_p99_ratio;  /* 2.0 */
    /* new knobs */
    double h;                      /* 13.8 = ln 10^6: trip level of E1, E2, L1, L2 */
    double hold;                   /* 6.9 = h / 2: GUARD_HOLD at or above this */
    double e1_ratio;               /* 3: E1's regression factor r */
    double e2_ratio;               /* 20: E2's r */
    double l1_p0, l1_p1;           /* 0.01, 0.03: p99 exceedance, healthy vs regressed */
    double l2_p0, l2_p1;           /* 0.50, 0.60: p50 exceedance */
    unsigned fast_failures;        /* 5: F's consecutive candidate failures (0: F off) */
    unsigned fast_baseline_ok;     /* 20: the baseline's last outcomes that must all be fine */
    unsigned warmup_ms;            /* 10000 */
    unsigned warmup_requests;      /* 50 */
    double material_error_pp;      /* 0.001: 0.1 percentage point */
    double material_error_ratio;   /* 2.0 */
    double material_latency_ratio; /* 1.2 */
    unsigned material_latency_us;  /* 5000 */
    double ceiling_confidence;     /* 0.999 */
    unsigned p99_min_samples;      /* 1000 */
    unsigned baseline_span_ms;     /* 30000: span of the baseline quantiles for L1/L2 */
    unsigned lat_min_baseline;     /* 1000: baseline samples needed in that span for L1/L2 */
    unsigned share_min;            /* 100: outcomes needed to estimate q0 from 1 s */
};

/* GUARD.md's defaults, and DESIGN.md's for the four conf_guard fields. */
void guard_conf_defaults(struct guard_conf_rt *c);

/* Defaults, then window_ms, min_requests, max_error_rate, max_p99_ratio from <cg>. */
void guard_conf_from(struct guard_conf_rt *c, const struct conf_guard *cg);

/* Baseline latency thresholds published to workers; 0 means unknown (that test idles). */
struct guard_thresholds {
    uint64_t p50_us; /* exceed when latency > p50_us (L2) */
    uint64_t p99_us; /* exceed when latency > p99_us (L1) */
};

/* One worker's outcomes for one route over one tick. Plain integers, one writer. */
struct guard_batch {
    uint64_t n_base, err_base; /* baseline outcomes, errors */
    uint64_t n_cand, err_cand; /* candidate outcomes, errors */
    uint64_t l1_n, l1_x;       /* candidate samples judged against p99, and above it */
    uint64_t l2_n, l2_x;       /* the same against p50 */
    uint64_t cand_head_fail;   /* candidate failures before its first success in the batch */
    uint64_t cand_max_fail;    /* longest run of candidate failures in the batch */
    uint64_t cand_tail_fail;   /* candidate failures since its last success in the batch */
    uint64_t base_tail_ok;     /* baseline successes since its last failure in the batch */
};

/* Empties a batch. */
void guard_batch_init(struct guard_batch *b);

/*
 * Adds one outcome (see the top of this file for the arguments). <thr> may be
 * NULL (no latency judgement). GUARD_ROLE_OTHER is ignored. O(1).
 */
void guard_batch_add(struct guard_batch *b, enum guard_role role, int is_error, uint64_t latency_us,
                     const struct guard_thresholds *thr);

/* Adds <n> identical outcomes in a row (bulk import, tests). O(1). */
void guard_batch_add_n(struct guard_batch *b, enum guard_role role, uint64_t n, int is_error,
                       uint64_t latency_us, const struct guard_thresholds *thr);

/* Why the guard said what it said: numbers for the audit, and a line of text. */
struct guard_reason {
    enum guard_verdict verdict;
    enum guard_test test; /* the test that tripped, GUARD_T_NONE if none */
    unsigned fired;       /* (1u << test) for every test that fired at the trip */
    uint64_t at_ms;
    double s[GUARD_N_CUSUMS]; /* S values (at a trip: the peak that crossed) */
    double h;
    double q0;              /* candidate share used by E1/E2 (-1: unknown) */
    uint64_t cand_fail_run; /* F: candidate failure run (at a trip: its peak) */
    uint64_t base_ok_run;   /* F: baseline success run */
    int warmup, enough;     /* in warm-up; min_requests met */
    /* last 60 s */
    uint64_t base_n, base_err, cand_n, cand_err;
    double base_rate, cand_rate;
    uint64_t base_lat_n, cand_lat_n;
    uint64_t base_p50_us, base_p99_us, cand_p50_us, cand_p99_us;
    int material_err, material_l1, material_l2;
    /* last window_ms */
    uint64_t win_base_n, win_base_err, win_cand_n, win_cand_err;
    unsigned min_requests;
    double ceil_lb; /* lower bound of the candidate's rate over window_ms; -1 when
                     * not computed (its raw rate is at or under the ceiling) */
    double max_error_rate;
    double p99_ratio; /* candidate p99 / baseline p99 over 60 s, 0 if not judged */
    double max_p99_ratio;
    struct guard_thresholds thr;
    char text[GUARD_REASON_TEXT];
};

struct guard_share_slot {
    uint64_t id; /* now_ms / GUARD_SHARE_SLOT_MS, UINT64_MAX when empty */
    uint64_t n_cand, n_base;
};

/*
 * One route's guard. Callers read the fields without a leading underscore
 * (for /status and metrics) and never write any of them.
 */
struct guard_state {
    double s[GUARD_N_CUSUMS]; /* S_E1, S_E2, S_L1, S_L2 */
    double q0;                /* share used by the latest batch, -1 unknown */
    uint64_t cand_fail_run;   /* consecutive candidate failures, now */
    uint64_t base_ok_run;     /* consecutive baseline successes, now */
    uint64_t cand_seen;       /* candidate outcomes since (re-)arming */
    uint64_t cand_first_ms;   /* first of them, UINT64_MAX none yet */
    uint64_t armed_ms;
    struct guard_thresholds thr; /* set by guard_update_thresholds(); publish to workers */
    int tripped;                 /* latched */
    struct guard_reason trip;    /* why, when tripped */
    /* private */
    double _peak[GUARD_N_CUSUMS]; /* highest S since the last guard_eval() */
    uint64_t _f_peak_run;         /* F fired since the last guard_eval() (its run), else 0 */
    uint64_t _last_ms;            /* newest now_ms seen: time never goes back */
    uint64_t _q0_id;              /* share slot whose q0 is cached in q0 */
    struct guard_share_slot _share[GUARD_SHARE_SLOTS];
};

/* Arms a guard at <now_ms>: all S zero, no warm-up done, nothing latched. */
void guard_init(struct guard_state *g, uint64_t now_ms);

/*
 * Re-arms after a trip (or for a new candidate): clears S, runs, warm-up and
 * the latch; keeps the share history and the thresholds.
 */
void guard_rearm(struct guard_state *g, uint64_t now_ms);

/*
 * Consumes one worker's batch, in arrival order: updates the share ring, the
 * warm-up counters, E1, E2, L1, L2 (per event, interleaved as described
 * above) and F's runs. Crossings are remembered until the next guard_eval().
 * Cost O(errors + latency samples in the batch).
 */
void guard_on_batch(struct guard_state *g, const struct guard_conf_rt *c,
                    const struct guard_batch *b, uint64_t now_ms);

/*
 * One outcome, applied at once: guard_on_batch() of a one-event batch judged
 * against g->thr. For single-threaded callers and tests.
 */
void guard_on_outcome(struct guard_state *g, const struct guard_conf_rt *c, enum guard_role role,
                      int is_error, uint64_t latency_us, uint64_t now_ms);

/*
 * Sets g->thr from the baseline's stats over the trailing c->baseline_span_ms
 * (<base_recent>, as from win_sum()). A quantile with fewer than
 * c->lat_min_baseline samples is 0 (unknown). Returns &g->thr.
 */
const struct guard_thresholds *guard_update_thresholds(struct guard_state *g,
                                                       const struct guard_conf_rt *c,
                                                       const struct win_stats *base_recent);

/*
 * Judges the candidate. <base> and <cand> are the tracks' stats over the last
 * 60 s (win_sum(..., WIN_SPAN_MS, ...)); they may be refreshed less often than
 * the tick (the CUSUMs, which carry the evidence, are per event). Returns:
 *   GUARD_TRIP    a test fired: the guard latches and records why in g->trip;
 *   GUARD_TRIPPED it had already tripped (g->trip unchanged);
 *   GUARD_HOLD / GUARD_OK otherwise (see enum guard_verdict).
 * <why> may be NULL; when given it is filled in full (text included), for a
 * latched guard with a copy of g->trip. Resets the remembered crossings.
 */
enum guard_verdict guard_eval(const struct guard_conf_rt *c, struct guard_state *g,
                              const struct win_stats *base, const struct win_stats *cand,
                              uint64_t now_ms, struct guard_reason *why);

/* "ok", "hold", "trip", "tripped" */
const char *guard_verdict_name(enum guard_verdict v);

/* "none", "F", "E2", "ceiling", "E1", "p99_ratio", "L1", "L2" */
const char *guard_test_name(enum guard_test t);

/*
 * E1/E2 increments for regression factor <r> at candidate share <q0> (0..1):
 * <on_cand> = ln(q1/q0) for a candidate error, <on_base> = ln((1-q1)/(1-q0))
 * for a baseline error, q1 = r q0 / (r q0 + 1 - q0).
 */
void guard_e_incr(double r, double q0, double *on_cand, double *on_base);

/* P(X >= k) for X ~ Binomial(n, p). */
double guard_binom_tail(uint64_t k, uint64_t n, double p);

/* One-sided Clopper-Pearson lower bound at <confidence> for k successes in n (0 if k = 0). */
double guard_cp_lower(uint64_t k, uint64_t n, double confidence);

#endif
