/*
 * test_sticky.c: sticky track selection (routing/sticky.c).
 */
#include "../../routing/sticky.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tap.h"

#define N_KEYS 100000
#define ALL UINT32_C(0xffffffff)

static uint64_t keys[N_KEYS]; /* hashes of N_KEYS distinct key strings */
static int before[N_KEYS], after[N_KEYS];

static uint64_t xorshift64(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* Cookie-like keys: "u-" and 16 hex digits from a seeded xorshift, hashed. */
static void make_keys(void)
{
    uint64_t st = UINT64_C(0x2545f4914f6cdd1d);
    char buf[32];
    size_t i;
    int len;

    for (i = 0; i < N_KEYS; i++) {
        len = snprintf(buf, sizeof(buf), "u-%016llx", (unsigned long long)xorshift64(&st));
        keys[i] = sticky_hash(buf, (size_t)len);
    }
}

static void pick_all(int *out, const uint32_t *w, size_t n, uint32_t eligible, int cand)
{
    size_t i;

    for (i = 0; i < N_KEYS; i++)
        out[i] = sticky_pick(w, n, eligible, cand, keys[i]);
}

static uint64_t mk(uint32_t hi, uint32_t lo)
{
    return (uint64_t)hi << 32 | lo;
}

static void test_hash(void)
{
    static const char k2[] = {'a', 'b', '\0'};
    uint64_t lo_in = 0, hi_in = 0, both = 0;
    size_t i, dup = 0;

    /* Pinned: every instance of the fleet (and every restart) must agree. */
    ok(sticky_hash("", 0) == UINT64_C(0xefd01f60ba992926), "hash(\"\") pinned");
    ok(sticky_hash("a", 1) == UINT64_C(0x82a2a958a9bece5b), "hash(\"a\") pinned");
    ok(sticky_hash("user-42", 7) == UINT64_C(0xa39532c7ab051e8d), "hash(\"user-42\") pinned");
    ok(sticky_hash("cutover_id=0f3a", 15) == UINT64_C(0xf385c20a85683c8c),
       "hash(\"cutover_id=0f3a\") pinned");
    ok(sticky_hash("ab", 2) != sticky_hash(k2, 3), "the length counts (\"ab\" vs \"ab\\0\")");
    ok(sticky_hash("user-42", 7) == sticky_hash("user-42xyz", 7), "only <len> bytes are read");

    for (i = 1; i < N_KEYS; i++)
        dup += keys[i] == keys[i - 1];
    ok(dup == 0, "consecutive keys hash differently");

    /* The two halves are independent: P(lo in 10%) * P(hi in 50%) = 5%. */
    for (i = 0; i < N_KEYS; i++) {
        int a = (uint32_t)keys[i] % STICKY_POINTS < 1000;
        int b = (uint32_t)(keys[i] >> 32) % STICKY_POINTS < 5000;

        lo_in += a;
        hi_in += b;
        both += a && b;
    }
    ok(fabs(lo_in / (double)N_KEYS - 0.10) < 0.005 && fabs(hi_in / (double)N_KEYS - 0.5) < 0.01,
       "low and high halves are uniform (%.4f, %.4f)", lo_in / (double)N_KEYS,
       hi_in / (double)N_KEYS);
    ok(fabs(both / (double)N_KEYS - 0.05) < 0.004, "low and high halves are independent (%.4f)",
       both / (double)N_KEYS);
}

/* The worked example of sticky.c, point by point. */
static void test_ranges(void)
{
    uint32_t w[3] = {60, 30, 10}; /* blue, green, canary */

    ok(sticky_pick(w, 3, ALL, 2, mk(7000, 4321)) == 1, "p1=4321 p2=7000 -> green");
    ok(sticky_pick(w, 3, ALL, 2, mk(7000, 999)) == 2, "p1=999 -> canary ([0,1000))");
    ok(sticky_pick(w, 3, ALL, 2, mk(7000, 1000)) == 1, "p1=1000 -> level 2");
    ok(sticky_pick(w, 3, ALL, 2, mk(6665, 5000)) == 0, "p2=6665 -> blue ([0,6666))");
    ok(sticky_pick(w, 3, ALL, 2, mk(6666, 5000)) == 1, "p2=6666 -> green");
    ok(sticky_pick(w, 3, ALL, 2, mk(9999, 9999)) == 1,
       "p2=9999 -> green (last range ends at 10000)");
    ok(sticky_pick(w, 3, ALL, 2, mk(10000 + 7000, 10000 + 4321)) == 1,
       "points are taken modulo 10000");
    w[2] = 50;
    ok(sticky_pick(w, 3, ALL, 2, mk(7000, 4321)) == 1, "canary 50: p1=4321 stays on green");
    ok(sticky_pick(w, 3, ALL, 2, mk(7000, 2000)) == 2, "canary 50: p1=2000 moves onto canary");
    ok(sticky_pick(w, 3, ALL, 2, mk(7000, 3570)) == 2, "canary 50: [0,3571) is canary's");
    ok(sticky_pick(w, 3, ALL, 2, mk(7000, 3571)) == 1, "canary 50: 3571 is not");
    w[2] = 10;
    ok(sticky_pick(w, 3, ALL, 2, mk(7000, 2000)) == 1, "canary back to 10: p1=2000 back to green");
}

static void test_stability(void)
{
    static const uint32_t w[3] = {50, 30, 20};
    uint64_t st = UINT64_C(0x2545f4914f6cdd1d); /* make_keys()'s seed: the same key strings */
    size_t i, moved = 0;
    char buf[32];
    int len;

    pick_all(before, w, 3, ALL, 2);
    for (i = 0; i < N_KEYS; i++) {
        len = snprintf(buf, sizeof(buf), "u-%016llx", (unsigned long long)xorshift64(&st));
        moved += sticky_pick(w, 3, ALL, 2, sticky_hash(buf, (size_t)len)) != before[i];
    }
    ok(moved == 0, "same key, same weights: same track (%zu of %d moved)", moved, N_KEYS);
    pick_all(after, w, 3, ALL, 2);
    ok(memcmp(before, after, sizeof(before)) == 0, "a second pass over all keys agrees");
}

static void check_shares(const char *name, const uint32_t *w, size_t n, uint32_t eligible, int cand)
{
    size_t cnt[32] = {0}, i;
    double total = 0, worst = 0;

    for (i = 0; i < n; i++)
        if ((eligible >> i) & 1)
            total += w[i];
    pick_all(before, w, n, eligible, cand);
    for (i = 0; i < N_KEYS; i++)
        if (before[i] >= 0)
            cnt[before[i]]++;
    for (i = 0; i < n; i++) {
        double want = ((eligible >> i) & 1) ? w[i] / total : 0;
        double d = fabs(cnt[i] / (double)N_KEYS - want);

        if (d > worst)
            worst = d;
    }
    /* 100k keys: one standard deviation is at most 0.16 points */
    ok(worst < 0.006, "%s: shares within 0.6 points of the weights (worst %.4f)", name, worst);
}

static void test_distribution(void)
{
    static const uint32_t w9010[] = {90, 10};
    static const uint32_t w3[] = {60, 30, 10};
    static const uint32_t w3b[] = {50, 30, 20};
    static const uint32_t w991[] = {99, 1};
    static const uint32_t w8[] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const uint32_t wmid[] = {40, 20, 40};

    check_shares("90/10, canary last", w9010, 2, ALL, 1);
    check_shares("99/1, canary last", w991, 2, ALL, 1);
    check_shares("60/30/10, canary last", w3, 3, ALL, 2);
    check_shares("50/30/20, no candidate", w3b, 3, ALL, -1);
    check_shares("50/30/20, candidate first", w3b, 3, ALL, 0);
    check_shares("40/20/40, candidate in the middle", wmid, 3, ALL, 1);
    check_shares("1..8, candidate 5", w8, 8, ALL, 5);
    check_shares("1..8, tracks 2 and 6 ineligible", w8, 8, ALL & ~0x44u, 5);
    check_shares("60/30/10, canary ineligible", w3, 3, 0x3, 2);
}

/*
 * Moves the candidate's weight through <steps> and checks, for every key of
 * the sample and every step, that a key which changes track moves onto the
 * candidate when its weight rose and off it when it fell, never between two
 * other tracks.
 */
static void check_sweep(const char *name, uint32_t *w, size_t n, int cand, const uint32_t *steps,
                        size_t n_steps)
{
    size_t s, i, moves = 0, bad = 0;

    w[cand] = steps[0];
    pick_all(before, w, n, ALL, cand);
    for (s = 1; s < n_steps; s++) {
        int up = steps[s] > steps[s - 1];

        w[cand] = steps[s];
        pick_all(after, w, n, ALL, cand);
        for (i = 0; i < N_KEYS; i++) {
            if (before[i] == after[i])
                continue;
            moves++;
            if (up ? after[i] != cand : before[i] != cand)
                bad++;
        }
        memcpy(before, after, sizeof(before));
    }
    ok(bad == 0 && moves > 0, "%s: %zu keys moved, all onto/off the candidate (%zu bad)", name,
       moves, bad);
}

static void check_monotone(const char *name, uint32_t *w, size_t n, int cand)
{
    static const uint32_t up[] = {0, 1, 2, 5, 10, 20, 25, 33, 50, 75, 90, 99, 100, 500, 5000};
    static const uint32_t down[] = {5000, 4000, 300, 99, 60, 42, 17, 7, 3, 1, 0};
    static const uint32_t zigzag[] = {10, 50, 5, 90, 0, 100, 30, 31, 29, 1000, 2};
    char label[128];
    size_t i, bad = 0;

    snprintf(label, sizeof(label), "%s, raising", name);
    check_sweep(label, w, n, cand, up, sizeof(up) / sizeof(up[0]));
    snprintf(label, sizeof(label), "%s, lowering", name);
    check_sweep(label, w, n, cand, down, sizeof(down) / sizeof(down[0]));
    snprintf(label, sizeof(label), "%s, zigzag", name);
    check_sweep(label, w, n, cand, zigzag, sizeof(zigzag) / sizeof(zigzag[0]));

    /* In one jump from 0: every key that is not on the candidate keeps its track. */
    w[cand] = 0;
    pick_all(before, w, n, ALL, cand);
    w[cand] = 37;
    pick_all(after, w, n, ALL, cand);
    for (i = 0; i < N_KEYS; i++)
        bad += after[i] != cand && after[i] != before[i];
    ok(bad == 0, "%s: 0 -> 37: every key off the candidate keeps its track", name);
}

static void test_monotonicity(void)
{
    uint32_t two[2] = {100, 0};         /* blue, canary */
    uint32_t three[3] = {60, 40, 0};    /* blue, green, canary */
    uint32_t mid[3] = {70, 0, 30};      /* blue, canary, green */
    uint32_t four[4] = {0, 10, 20, 30}; /* canary first */

    check_monotone("2 tracks", two, 2, 1);
    check_monotone("3 tracks", three, 3, 2);
    check_monotone("3 tracks, candidate in the middle", mid, 3, 1);
    check_monotone("4 tracks, candidate first", four, 4, 0);
}

static void test_eligibility(void)
{
    uint32_t w[3] = {60, 30, 10};
    uint32_t w0[3] = {60, 30, 0};
    size_t i, hits = 0, differ = 0, moved_other = 0;

    /* green (1) ineligible: nobody lands on it. */
    pick_all(before, w, 3, 0x5, 2);
    for (i = 0; i < N_KEYS; i++)
        hits += before[i] == 1;
    ok(hits == 0, "an ineligible track gets no keys");

    /* canary ineligible = canary at weight 0 = no candidate at all (its weight 0). */
    pick_all(before, w, 3, 0x3, 2);
    pick_all(after, w0, 3, ALL, 2);
    for (i = 0; i < N_KEYS; i++) {
        hits += before[i] == 2;
        differ += before[i] != after[i] || before[i] != sticky_pick(w0, 3, ALL, -1, keys[i]);
    }
    ok(hits == 0, "an ineligible candidate gets no keys");
    ok(differ == 0, "candidate ineligible, weight 0, or absent: the same second level");

    /* Candidate ineligible: keys that were not on it do not move. */
    pick_all(before, w, 3, ALL, 2);
    pick_all(after, w, 3, 0x3, 2);
    for (i = 0; i < N_KEYS; i++)
        moved_other += before[i] != 2 && after[i] != before[i];
    ok(moved_other == 0, "the candidate going unhealthy moves only its own keys");

    /* Out-of-range candidate behaves as none. */
    for (i = 0, differ = 0; i < 1000; i++)
        differ += sticky_pick(w0, 3, ALL, 9, keys[i]) != sticky_pick(w0, 3, ALL, -1, keys[i]);
    ok(differ == 0, "a candidate index beyond n is ignored");
}

static void test_edges(void)
{
    static const uint32_t zeros[3] = {0, 0, 0};
    static const uint32_t only_cand[3] = {0, 0, 5};
    static const uint32_t only_other[3] = {0, 7, 0};
    static const uint32_t w[3] = {60, 30, 10};
    size_t i;
    int bad = 0;

    ok(sticky_pick(zeros, 3, ALL, 2, keys[0]) == -1, "all weights zero: -1");
    ok(sticky_pick(w, 3, 0, 2, keys[0]) == -1, "nothing eligible: -1");
    ok(sticky_pick(w, 3, 0x8, 2, keys[0]) == -1, "only a bit beyond n: -1");
    ok(sticky_pick(w, 0, ALL, -1, keys[0]) == -1, "no tracks: -1");
    for (i = 0; i < 10000; i++)
        bad |= sticky_pick(only_cand, 3, ALL, 2, keys[i]) != 2;
    ok(!bad, "only the candidate has weight: every key on it");
    for (i = 0, bad = 0; i < 10000; i++)
        bad |= sticky_pick(only_other, 3, ALL, 2, keys[i]) != 1;
    ok(!bad, "only one other track has weight: every key on it");
    for (i = 0, bad = 0; i < 10000; i++)
        bad |= sticky_pick(w, 3, 0x4, 2, keys[i]) != 2;
    ok(!bad, "only the candidate eligible: every key on it");
    {
        static const uint32_t big[3] = {1000000, 1000000, 1000000};
        size_t cnt[3] = {0};

        for (i = 0; i < N_KEYS; i++)
            cnt[sticky_pick(big, 3, ALL, 2, keys[i])]++;
        ok(cnt[0] > 32000 && cnt[1] > 32000 && cnt[2] > 32000,
           "weights at CONF_MAX_WEIGHT do not overflow (%zu/%zu/%zu)", cnt[0], cnt[1], cnt[2]);
    }
}

int main(void)
{
    make_keys();
    subtest("hash", test_hash);
    subtest("ranges (worked example)", test_ranges);
    subtest("stability", test_stability);
    subtest("distribution", test_distribution);
    subtest("monotonicity", test_monotonicity);
    subtest("eligibility", test_eligibility);
    subtest("edges", test_edges);
    return done_testing();
}
