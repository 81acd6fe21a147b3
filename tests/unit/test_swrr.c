/*
 * test_swrr.c: smooth weighted round robin (routing/swrr.c).
 */
#include "../../routing/swrr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

#define ALL UINT32_C(0xffffffff)

struct wset {
    const char *name;
    size_t n;
    uint32_t w[CONF_MAX_TRACKS];
};

static const struct wset sets[] = {
    {"90/10", 2, {90, 10}},
    {"99/1", 2, {99, 1}},
    {"50/50", 2, {50, 50}},
    {"1/2", 2, {1, 2}},
    {"7/3", 2, {7, 3}},
    {"1/1/1", 3, {1, 1, 1}},
    {"5/1/1", 3, {5, 1, 1}},
    {"90/0/10", 3, {90, 0, 10}},
    {"0/5/0/3", 4, {0, 5, 0, 3}},
    {"0/0/1", 3, {0, 0, 1}},
    {"single 4", 1, {4}},
    {"primes 2..17", 7, {2, 3, 5, 7, 11, 13, 17}},
    {"primes reversed", 7, {17, 13, 11, 7, 5, 3, 2}},
    {"3/3/1x6 (8 tracks)", 8, {3, 3, 1, 1, 1, 1, 1, 1}},
    {"1000/1/1", 3, {1000, 1, 1}},
    {"1000000/1", 2, {1000000, 1}},
};
#define N_SETS (sizeof(sets) / sizeof(sets[0]))

static uint64_t xs_state;

static uint64_t xorshift64(void)
{
    return tap_xorshift64(&xs_state);
}

static uint64_t wsum(const uint32_t *w, size_t n)
{
    uint64_t s = 0;
    size_t i;

    for (i = 0; i < n; i++)
        s += w[i];
    return s;
}

static int state_is_zero(const struct swrr *s)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        if (s->cur[i] != 0)
            return 0;
    return 1;
}

/* Every full cycle of W picks gives each item exactly w[i], and the state returns to zero. */
static void test_exact_cycles(void)
{
    size_t k, i;

    for (k = 0; k < N_SETS; k++) {
        const struct wset *ws = &sets[k];
        uint64_t W = wsum(ws->w, ws->n), cycles = W >= 100000 ? 3 : 200000 / W, c, t;
        uint64_t total[CONF_MAX_TRACKS] = {0};
        int cycle_exact = 1, zero_after_cycle = 1, in_range = 1;
        struct swrr s;

        swrr_init(&s, ws->w, ws->n);
        for (c = 0; c < cycles; c++) {
            uint64_t cnt[CONF_MAX_TRACKS] = {0};

            for (t = 0; t < W; t++) {
                int p = swrr_pick(&s, ALL);

                if (p < 0 || (size_t)p >= ws->n) {
                    in_range = 0;
                    continue;
                }
                cnt[p]++;
                total[p]++;
            }
            for (i = 0; i < ws->n; i++)
                if (cnt[i] != ws->w[i])
                    cycle_exact = 0;
            if (!state_is_zero(&s))
                zero_after_cycle = 0;
        }
        ok(in_range, "%s: every pick is a valid index", ws->name);
        ok(cycle_exact, "%s: each of %llu cycles of %llu picks is exact", ws->name,
           (unsigned long long)cycles, (unsigned long long)W);
        ok(zero_after_cycle, "%s: the state is back to zero after each cycle", ws->name);
        for (i = 0; i < ws->n; i++)
            if (total[i] != cycles * ws->w[i])
                break;
        ok(i == ws->n, "%s: totals over %llu picks are exactly proportional", ws->name,
           (unsigned long long)(cycles * W));
    }
}

/*
 * Smoothness: the running count of each item never strays a whole pick from
 * its ideal share t * w[i] / W, and for two items the heavy one never runs
 * longer than ceil(w_heavy / w_light) picks in a row (90/10: 9 blue, 1 canary).
 */
static void test_smoothness(void)
{
    size_t k, i;

    for (k = 0; k < N_SETS; k++) {
        const struct wset *ws = &sets[k];
        uint64_t W = wsum(ws->w, ws->n), t, cnt[CONF_MAX_TRACKS] = {0};
        int64_t worst = 0;
        struct swrr s;

        if (W > 100000)
            continue;
        swrr_init(&s, ws->w, ws->n);
        for (t = 1; t <= 2 * W; t++) {
            cnt[swrr_pick(&s, ALL)]++;
            for (i = 0; i < ws->n; i++) {
                /* W * (count - t * w / W), in integers */
                int64_t d = (int64_t)(cnt[i] * W) - (int64_t)(t * ws->w[i]);

                if (llabs(d) > worst)
                    worst = llabs(d);
            }
        }
        ok(worst < (int64_t)W, "%s: every prefix is within one pick of the ideal (worst %.3f)",
           ws->name, (double)worst / (double)W);
    }

    for (k = 0; k < N_SETS; k++) {
        const struct wset *ws = &sets[k];
        uint32_t hi, lo;
        size_t heavy;
        uint64_t t, W = wsum(ws->w, ws->n);
        unsigned run = 0, max_run = 0, light_run = 0, max_light_run = 0, bound;
        struct swrr s;

        if (ws->n != 2 || ws->w[0] == 0 || ws->w[1] == 0)
            continue;
        heavy = ws->w[0] >= ws->w[1] ? 0 : 1;
        hi = ws->w[heavy];
        lo = ws->w[1 - heavy];
        bound = (hi + lo - 1) / lo;
        swrr_init(&s, ws->w, ws->n);
        for (t = 0; t < 3 * W; t++) {
            if ((size_t)swrr_pick(&s, ALL) == heavy) {
                run++;
                light_run = 0;
            } else {
                run = 0;
                light_run++;
            }
            if (run > max_run)
                max_run = run;
            if (light_run > max_light_run)
                max_light_run = light_run;
        }
        ok(max_run <= bound, "%s: longest run of the heavy item %u <= %u", ws->name, max_run,
           bound);
        ok(hi == lo || max_light_run == 1, "%s: the light item never runs twice", ws->name);
    }
}

static void test_eligible(void)
{
    static const uint32_t primes[] = {2, 3, 5, 7, 11, 13, 17};
    static const uint32_t three[] = {50, 30, 20};
    static const uint32_t zeros[] = {0, 0, 0};
    uint64_t cnt[CONF_MAX_TRACKS] = {0}, t;
    int64_t max_cur = 0;
    int bad = 0, exact = 1;
    struct swrr s;
    size_t i, c;

    /* Without item 6 (17): exact over cycles of 41 = sum of the eligible weights. */
    swrr_init(&s, primes, 7);
    for (c = 0; c < 1000; c++) {
        uint64_t per[CONF_MAX_TRACKS] = {0};

        for (t = 0; t < 41; t++)
            per[swrr_pick(&s, 0x3f)]++;
        for (i = 0; i < 6; i++)
            exact &= per[i] == primes[i];
        exact &= per[6] == 0;
    }
    ok(exact, "mask without the heaviest item: exact over every 41 picks, item 6 never picked");

    /* Only item 1 and 2 of 50/30/20: 30:20 exactly. */
    swrr_init(&s, three, 3);
    memset(cnt, 0, sizeof(cnt));
    for (t = 0; t < 50000; t++)
        cnt[swrr_pick(&s, 0x6)]++;
    ok(cnt[0] == 0 && cnt[1] == 30000 && cnt[2] == 20000, "mask 0b110 on 50/30/20: 30:20 exactly");

    swrr_init(&s, three, 3);
    ok(swrr_pick(&s, 0) == -1, "empty mask: -1");
    ok(swrr_pick(&s, 0x8) == -1, "mask with only a bit beyond n: -1");
    swrr_init(&s, zeros, 3);
    ok(swrr_pick(&s, ALL) == -1, "all weights zero: -1");
    swrr_init(&s, sets[7].w, 3); /* 90/0/10 */
    ok(swrr_pick(&s, 0x2) == -1, "mask with only a zero-weight item: -1");
    swrr_init(&s, NULL, 0);
    ok(swrr_pick(&s, ALL) == -1, "no items: -1");

    /* Single eligible item: always it. */
    swrr_init(&s, three, 3);
    for (t = 0, bad = 0; t < 1000; t++)
        bad |= swrr_pick(&s, 0x4) != 2;
    ok(!bad, "a single eligible item is always picked");

    /*
     * Health flapping: a random mask every pick. Each pick must be an eligible
     * item with weight > 0 (or -1 when there is none), and the state must stay
     * bounded however the mask moves.
     */
    xs_state = 0x9e3779b97f4a7c15u;
    swrr_init(&s, primes, 7);
    bad = 0;
    for (t = 0; t < 1000000; t++) {
        uint32_t mask = (uint32_t)xorshift64() & 0x7f;
        int p = swrr_pick(&s, mask);

        if (mask == 0 ? p != -1 : (p < 0 || !(mask & (1u << p))))
            bad = 1;
        for (i = 0; i < 7; i++)
            if (llabs(s.cur[i]) > max_cur)
                max_cur = llabs(s.cur[i]);
    }
    ok(!bad, "random masks: every pick is eligible, -1 only for an empty mask");
    ok(max_cur <= 2 * 58, "random masks: |cur| stays bounded (max %lld, W = 58)",
       (long long)max_cur);

    /* An item out for a while and back: the split over the others stays exact meanwhile. */
    swrr_init(&s, three, 3);
    memset(cnt, 0, sizeof(cnt));
    for (t = 0; t < 100; t++)
        cnt[swrr_pick(&s, ALL)]++;
    for (t = 0; t < 70000; t++)
        cnt[swrr_pick(&s, 0x5)]++;
    ok(cnt[0] == 50 + 50000 && cnt[1] == 30 && cnt[2] == 20 + 20000,
       "item 1 out for 70000 picks: 50:20 exactly meanwhile");
    memset(cnt, 0, sizeof(cnt));
    for (t = 0; t < 100000; t++)
        cnt[swrr_pick(&s, ALL)]++;
    ok(llabs((long long)cnt[1] - 30000) <= 1, "item 1 back: 30%% again (%llu of 100000)",
       (unsigned long long)cnt[1]);
}

/*
 * Re-applying the same weights must not disturb anything: a proxy polling
 * Redis applies 99:1 again and again, and a reset on every poll would hand
 * the first pick of each period to the heavy item forever (0% canary).
 */
static void test_reapply_same(void)
{
    static const uint32_t w99[] = {99, 1};
    static const uint32_t primes[] = {2, 3, 5, 7, 11, 13, 17};
    struct swrr s, ref;
    uint64_t cnt[2] = {0}, t;
    int same = 1;

    swrr_init(&s, w99, 2);
    swrr_init(&ref, w99, 2);
    for (t = 0; t < 100000; t++) {
        int p;

        if (t % 7 == 0)
            swrr_set_weights(&s, w99, 2);
        p = swrr_pick(&s, ALL);
        cnt[p]++;
        same &= p == swrr_pick(&ref, ALL);
    }
    ok(cnt[1] == 1000 && cnt[0] == 99000, "99:1 re-applied every 7 picks: exactly 1%% (%llu)",
       (unsigned long long)cnt[1]);
    ok(same, "99:1 re-applied every 7 picks: the same sequence as never re-applied");

    for (t = 1, same = 1; t < 50; t++) {
        uint64_t i;

        swrr_init(&s, primes, 7);
        swrr_init(&ref, primes, 7);
        for (i = 0; i < 5800; i++) {
            if (i % t == 0)
                swrr_set_weights(&s, primes, 7);
            same &= swrr_pick(&s, ALL) == swrr_pick(&ref, ALL);
        }
    }
    ok(same, "primes re-applied every k picks, k = 1..49: the same sequence as never re-applied");

    /* Same weights while some items are ineligible: still untouched. */
    swrr_init(&s, primes, 7);
    swrr_init(&ref, primes, 7);
    for (t = 0, same = 1; t < 10000; t++) {
        uint32_t mask = t % 3 ? 0x7f : 0x3c;

        swrr_set_weights(&s, primes, 7);
        same &= swrr_pick(&s, mask) == swrr_pick(&ref, mask);
    }
    ok(same, "re-applied every pick under a changing mask: the same sequence");
}

/*
 * Changing weights mid-run: after a short transient each period of the new
 * weights is exact again, and the counts since the change stay within a few
 * picks of the new split (no lasting skew from the old state).
 */
static void test_change(void)
{
    static const struct {
        const char *name;
        size_t n;
        uint32_t from[CONF_MAX_TRACKS], to[CONF_MAX_TRACKS];
        unsigned warm; /* picks with the old weights, not a whole period */
    } cases[] = {
        {"90/10 -> 50/50", 2, {90, 10}, {50, 50}, 37},
        {"99/1 -> 1/99", 2, {99, 1}, {1, 99}, 150},
        {"50/50 -> 100/0", 2, {50, 50}, {100, 0}, 33},
        {"100/0 -> 90/10", 2, {100, 0}, {90, 10}, 77},
        {"50/30/20 -> 20/30/50", 3, {50, 30, 20}, {20, 30, 50}, 61},
        {"90/0/10 -> 0/90/10", 3, {90, 0, 10}, {0, 90, 10}, 45},
        {"primes -> reversed", 7, {2, 3, 5, 7, 11, 13, 17}, {17, 13, 11, 7, 5, 3, 2}, 29},
        {"1000000/1 -> 1/1000", 2, {1000000, 1}, {1, 1000}, 500001},
        {"1/1000000 -> 1000/1", 2, {1, 1000000}, {1000, 1}, 999},
    };
    size_t k, i;

    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        uint64_t W = wsum(cases[k].to, cases[k].n), total[CONF_MAX_TRACKS] = {0}, t, c;
        uint64_t cycles = 100000 / W + 3;
        int exact_late = 1, bounded = 1;
        struct swrr s;

        swrr_init(&s, cases[k].from, cases[k].n);
        for (t = 0; t < cases[k].warm; t++)
            swrr_pick(&s, ALL);
        swrr_set_weights(&s, cases[k].to, cases[k].n);
        for (c = 0; c < cycles; c++) {
            uint64_t per[CONF_MAX_TRACKS] = {0};

            for (t = 0; t < W; t++) {
                int p = swrr_pick(&s, ALL);

                per[p]++;
                total[p]++;
            }
            for (i = 0; i < cases[k].n; i++) {
                /* a transient worth at most n picks, then exact periods */
                if (c >= 2 && per[i] != cases[k].to[i])
                    exact_late = 0;
                if (llabs((long long)total[i] - (long long)((c + 1) * cases[k].to[i])) >
                    (long long)cases[k].n)
                    bounded = 0;
            }
        }
        ok(exact_late, "%s: every period from the third on is exact", cases[k].name);
        ok(bounded, "%s: counts since the change stay within %zu picks of the new split",
           cases[k].name, cases[k].n);
    }

    /* An item dropped to 0 is never picked and forgets its state. */
    {
        static const uint32_t a[] = {60, 40}, b[] = {60, 0};
        struct swrr s;
        int bad = 0;
        uint64_t t;

        swrr_init(&s, a, 2);
        for (t = 0; t < 7; t++)
            swrr_pick(&s, ALL);
        swrr_set_weights(&s, b, 2);
        ok(s.cur[1] == 0, "a weight set to 0 clears its current value");
        for (t = 0; t < 1000; t++)
            bad |= swrr_pick(&s, ALL) != 0;
        ok(!bad, "a weight set to 0 is never picked");
    }

    /* A different count resets the state. */
    {
        static const uint32_t a[] = {3, 1}, b[] = {1, 1, 1};
        struct swrr s;

        swrr_init(&s, a, 2);
        swrr_pick(&s, ALL);
        swrr_set_weights(&s, b, 3);
        ok(s.n == 3 && state_is_zero(&s) && s.weight[2] == 1,
           "a different number of items resets the state");
        ok(swrr_pick(&s, ALL) == 0 && swrr_pick(&s, ALL) == 1 && swrr_pick(&s, ALL) == 2,
           "after a reset 1/1/1 starts at index 0 (ties go to the lowest index)");
    }

    /* The clamp bounds a stale credit: after 1000000/1 -> 1/1, item 0 cannot hog. */
    {
        static const uint32_t a[] = {1000000, 1}, b[] = {1, 1};
        uint64_t cnt[2] = {0}, t;
        struct swrr s;

        swrr_init(&s, a, 2);
        for (t = 0; t < 500000; t++)
            swrr_pick(&s, ALL);
        swrr_set_weights(&s, b, 2);
        ok(llabs(s.cur[0]) <= 2 && llabs(s.cur[1]) <= 2, "current values clamped to +-sum(w)");
        for (t = 0; t < 10; t++)
            cnt[swrr_pick(&s, ALL)]++;
        /* item 1 was owed its one pick of the period (+500000): it keeps one pick of credit */
        ok(llabs((long long)cnt[0] - (long long)cnt[1]) <= 2,
           "after the clamp 1/1 is within one pick of even over 10 picks (%llu/%llu)",
           (unsigned long long)cnt[0], (unsigned long long)cnt[1]);
    }
}

static void test_tie_order(void)
{
    static const uint32_t w[] = {1, 1, 1, 1};
    struct swrr s;
    int i, bad = 0;

    swrr_init(&s, w, 4);
    for (i = 0; i < 40; i++)
        bad |= swrr_pick(&s, ALL) != i % 4;
    ok(!bad, "equal weights: strict rotation 0,1,2,3 from the lowest index");

    swrr_init(&s, sets[6].w, 3); /* 5/1/1 */
    {
        static const int want[] = {0, 0, 1, 0, 2, 0, 0}; /* the worked example in swrr.c */

        for (i = 0, bad = 0; i < 7; i++)
            bad |= swrr_pick(&s, ALL) != want[i];
        ok(!bad, "5/1/1 gives a a b a c a a, as in the worked example");
    }
}

int main(void)
{
    subtest("exact proportions over full cycles", test_exact_cycles);
    subtest("smoothness within a cycle", test_smoothness);
    subtest("eligible masks", test_eligible);
    subtest("re-applying the same weights", test_reapply_same);
    subtest("changing weights mid-run", test_change);
    subtest("tie order", test_tie_order);
    return done_testing();
}
