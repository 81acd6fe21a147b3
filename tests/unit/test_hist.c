/*
 * test_hist.c: log-linear latency histogram (routing/hist.c).
 */
#include "../../routing/hist.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

static uint64_t xs_state;

static uint64_t xorshift64(void)
{
    return tap_xorshift64(&xs_state);
}

static double urand(void)
{
    return (double)(xorshift64() >> 11) * (1.0 / 9007199254740992.0);
}

static double gauss(void)
{
    double u = urand(), v = urand();

    if (u < 1e-300)
        u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank quantile of sorted samples, with the same rank rule as hist_quantile(). */
static uint64_t exact_quantile(const uint64_t *v, size_t n, double q)
{
    double r = q * (double)n;
    uint64_t rank = (uint64_t)r;

    if ((double)rank < r - 1e-9)
        rank++;
    if (rank < 1)
        rank = 1;
    return v[rank - 1];
}

static void test_layout(void)
{
    unsigned i, bad_join = 0, bad_width = 0, bad_round = 0;
    uint64_t v, worst_ppm = 0;

    ok(HIST_N_BUCKETS == 736 && hist_index(HIST_MAX_US) == HIST_N_BUCKETS - 1,
       "736 buckets, the last one ends at HIST_MAX_US (%llu us = 134 s)",
       (unsigned long long)HIST_MAX_US);
    ok(sizeof(struct hist) <= 8192, "sizeof(struct hist) = %zu bytes (<= 8 KiB)",
       sizeof(struct hist));
    for (i = 0; i < HIST_N_BUCKETS; i++) {
        if (i + 1 < HIST_N_BUCKETS && hist_bucket_hi(i) + 1 != hist_bucket_lo(i + 1))
            bad_join++;
        if (hist_index(hist_bucket_lo(i)) != i || hist_index(hist_bucket_hi(i)) != i)
            bad_round++;
        if (hist_bucket_lo(i) >= HIST_LINEAR) {
            uint64_t w = hist_bucket_hi(i) - hist_bucket_lo(i) + 1;
            uint64_t ppm = w * 1000000 / hist_bucket_lo(i);
            if (ppm > worst_ppm)
                worst_ppm = ppm;
            if (w * 32 > hist_bucket_lo(i))
                bad_width++;
        } else if (hist_bucket_hi(i) != hist_bucket_lo(i)) {
            bad_width++;
        }
    }
    ok(bad_join == 0, "buckets tile 0..HIST_MAX_US without gaps or overlaps");
    ok(bad_round == 0, "index(lo(i)) == index(hi(i)) == i for every bucket");
    ok(bad_width == 0 && worst_ppm <= 31250,
       "0..63 us exact, then width / lowest value <= 1/32 (worst %.3f%%)", worst_ppm / 1e4);
    ok(hist_index(63) == 63 && hist_index(64) == 64 && hist_bucket_hi(64) == 65,
       "linear part joins the first octave: 63 -> 63, 64 -> [64, 65]");
    ok(hist_index(1000) == 64 + 3 * 32 + 30 && hist_lowest_equiv(1000) == 992 &&
           hist_highest_equiv(1000) == 1007,
       "worked example of hist.h: 1000 us is in bucket [992, 1007]");
    ok(hist_index(UINT64_MAX) == HIST_N_BUCKETS - 1 &&
           hist_index(HIST_MAX_US + 1) == HIST_N_BUCKETS - 1,
       "values above the range land in the top bucket");
    for (v = 1, i = 0; v < HIST_MAX_US; v = v * 3 / 2 + 1)
        if (hist_index(v) < hist_index(v - 1))
            i++;
    ok(i == 0, "hist_index is monotone");
}

static void test_basic(void)
{
    struct hist h, a, b;
    unsigned i;

    hist_init(&h);
    ok(h.count == 0 && hist_quantile(&h, 0.5) == 0 && hist_count_le(&h, 1000) == 0 &&
           hist_mean(&h) == 0.0,
       "empty: count 0, quantiles 0, count_le 0");
    hist_record(&h, 5);
    ok(hist_quantile(&h, 0.0) == 5 && hist_quantile(&h, 0.5) == 5 && hist_quantile(&h, 1.0) == 5,
       "one sample of 5 us: every quantile is 5");
    hist_record(&h, 1000);
    hist_record(&h, 200000000);
    ok(h.count == 3 && h.sum == 200001005 && h.min == 5 && h.max == 200000000,
       "count, sum, min, max are exact (200 s beyond the range included)");
    ok(hist_quantile(&h, 1.0) == 200000000 && hist_quantile(&h, 0.5) == 999,
       "q=1 is max; the median 1000 us reads as 999 (its bucket's midpoint)");

    hist_init(&a);
    hist_init(&b);
    hist_init(&h);
    xs_state = 42;
    for (i = 0; i < 20000; i++) {
        uint64_t v = 1 + xorshift64() % 5000000;
        hist_record(i & 1 ? &a : &b, v);
        hist_record(&h, v);
    }
    hist_merge(&a, &b);
    ok(memcmp(&a, &h, sizeof(h)) == 0, "merge(a, b) equals recording everything in one");
    hist_init(&b);
    hist_merge(&a, &b);
    ok(memcmp(&a, &h, sizeof(h)) == 0, "merging an empty histogram changes nothing");

    hist_init(&a);
    hist_record_n(&a, 777, 10);
    hist_init(&b);
    for (i = 0; i < 10; i++)
        hist_record(&b, 777);
    ok(memcmp(&a, &b, sizeof(a)) == 0, "record_n(v, 10) == 10 x record(v)");

    hist_init(&a);
    a.bucket[100] = UINT32_MAX - 1;
    a.count = UINT32_MAX - 1;
    hist_init(&b);
    hist_record_n(&b, hist_bucket_lo(100), 5);
    hist_merge(&a, &b);
    ok(a.bucket[100] == UINT32_MAX && a.count == (uint64_t)UINT32_MAX + 4,
       "merge saturates a bucket at UINT32_MAX, count keeps counting");
}

static void test_count_le(void)
{
    struct hist h;
    uint64_t v[5000], n_le, le;
    unsigned i, j, bad_exact = 0, bad_mono = 0, bad_bound = 0;
    uint64_t prev = 0;

    hist_init(&h);
    xs_state = 7;
    for (i = 0; i < 5000; i++) {
        v[i] = (uint64_t)exp(log(50.0) + urand() * log(2e6)); /* 50 us .. 100 s, log-uniform */
        hist_record(&h, v[i]);
    }
    for (i = 0; i < HIST_N_BUCKETS; i += 7) {
        le = hist_bucket_hi(i);
        for (n_le = 0, j = 0; j < 5000; j++)
            n_le += v[j] <= le;
        if (hist_count_le(&h, le) != n_le)
            bad_exact++;
    }
    ok(bad_exact == 0, "count_le at a bucket's highest value is the exact count of samples <= it");
    for (le = 1; le < 200000000; le = le * 11 / 10 + 1) {
        uint64_t c = hist_count_le(&h, le), lo = 0, hi = 0;
        if (c < prev)
            bad_mono++;
        prev = c;
        for (j = 0; j < 5000; j++) {
            lo += v[j] <= le;
            hi += v[j] <= hist_highest_equiv(le);
        }
        if (c < lo || c > hi)
            bad_bound++;
    }
    ok(bad_mono == 0, "count_le is monotone");
    ok(bad_bound == 0, "exact count <= count_le(us) <= exact count at us's bucket top");
    ok(hist_count_le(&h, HIST_MAX_US) == 5000 && hist_count_le(&h, 0) == 0,
       "count_le(HIST_MAX_US) = count, count_le(0) = 0 here");
}

struct dist {
    const char *name;
    int kind;
};

static uint64_t draw(int kind)
{
    double x;

    switch (kind) {
    case 0: /* log-normal, median 2 ms, sigma 1 */
        x = exp(log(2000.0) + gauss());
        break;
    case 1: /* log-normal, median 40 us, sigma 0.5: mostly in the exact and first octaves */
        x = exp(log(40.0) + 0.5 * gauss());
        break;
    case 2: /* bimodal: 90 % around 1 ms, 10 % around 300 ms */
        x = urand() < 0.9 ? exp(log(1000.0) + 0.3 * gauss()) : exp(log(300000.0) + 0.4 * gauss());
        break;
    default: /* log-uniform 1 us .. 100 s */
        x = exp(urand() * log(1e8));
        break;
    }
    if (x < 1.0)
        x = 1.0;
    if (x > 1e8)
        x = 1e8;
    return (uint64_t)x;
}

static void test_accuracy(void)
{
    static const struct dist dists[] = {
        {"log-normal median 2 ms sigma 1", 0},
        {"log-normal median 40 us sigma 0.5", 1},
        {"bimodal 1 ms / 300 ms", 2},
        {"log-uniform 1 us .. 100 s", 3},
    };
    static const double qs[] = {0.5, 0.9, 0.99, 0.999};
    enum { N = 200000 };
    static uint64_t v[N];
    struct hist h;
    unsigned d, i, k;

    for (d = 0; d < sizeof(dists) / sizeof(dists[0]); d++) {
        double worst = 0.0;
        xs_state = 0x9e3779b97f4a7c15ull + d;
        hist_init(&h);
        for (i = 0; i < N; i++) {
            v[i] = draw(dists[d].kind);
            hist_record(&h, v[i]);
        }
        qsort(v, N, sizeof(v[0]), cmp_u64);
        for (k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
            uint64_t ex = exact_quantile(v, N, qs[k]), est = hist_quantile(&h, qs[k]);
            double err = fabs((double)est - (double)ex) / (double)ex;
            if (err > worst)
                worst = err;
            ok(err <= 0.02, "%s: p%g exact %llu us, histogram %llu us (%.2f%%)", dists[d].name,
               qs[k] * 100, (unsigned long long)ex, (unsigned long long)est, err * 100);
        }
        ok(worst <= 1.0 / 64 + 1e-9, "%s: worst relative error %.3f%% <= 1/64", dists[d].name,
           worst * 100);
    }
}

/* hist_merge/quantile/count_le walk only [index(min), index(max)] and hist_reset
 * clears only that range: check them against a whole-array reference after
 * random records, merges and resets, including the extreme buckets. */
static void test_range_walks(void)
{
    struct hist a, b, ref;
    unsigned round, i, bad_reset = 0, bad_merge = 0, bad_q = 0;
    static const uint64_t edge[] = {0, 1, 63, 64, 65, HIST_MAX_US, HIST_MAX_US + 1,
                                    UINT64_C(1) << 40};

    xs_state = 11;
    hist_init(&a);
    hist_init(&b);
    for (round = 0; round < 200; round++) {
        unsigned n = 1 + (unsigned)(xorshift64() % 50);
        hist_reset(&b);
        for (i = 0; i < HIST_N_BUCKETS; i++)
            bad_reset += b.bucket[i] != 0;
        bad_reset += b.count != 0 || b.min != UINT64_MAX || b.max != 0;
        for (i = 0; i < n; i++) {
            uint64_t v = round % 10 == 0 ? edge[xorshift64() % 8]
                                         : (uint64_t)exp(urand() * log(2e8));
            hist_record(&b, v);
        }
        ref = a;
        for (i = 0; i < HIST_N_BUCKETS; i++)
            ref.bucket[i] += b.bucket[i];
        hist_merge(&a, &b);
        for (i = 0; i < HIST_N_BUCKETS; i++)
            bad_merge += a.bucket[i] != ref.bucket[i];
        {
            uint64_t seen = 0, rank = (a.count + 1) / 2, want = 0;
            for (i = 0; i < HIST_N_BUCKETS; i++) {
                seen += a.bucket[i];
                if (seen >= rank)
                    break;
            }
            want = hist_bucket_lo(i) + (hist_bucket_hi(i) - hist_bucket_lo(i)) / 2;
            if (want < a.min)
                want = a.min;
            if (want > a.max)
                want = a.max;
            bad_q += hist_quantile(&a, 0.5) != want && a.count % 2 == 1;
        }
        if (round % 37 == 36) {
            hist_reset(&a);
            for (i = 0; i < HIST_N_BUCKETS; i++)
                bad_reset += a.bucket[i] != 0;
        }
    }
    ok(bad_reset == 0, "hist_reset leaves every bucket empty (%u bad)", bad_reset);
    ok(bad_merge == 0, "range-limited hist_merge equals a whole-array sum (%u bad)", bad_merge);
    ok(bad_q == 0, "range-limited hist_quantile equals a whole-array walk (%u bad)", bad_q);
}

int main(void)
{
    subtest("range-limited walks and reset", test_range_walks);
    subtest("layout", test_layout);
    subtest("record, merge, saturation", test_basic);
    subtest("count_le (Prometheus buckets)", test_count_le);
    subtest("accuracy against exact quantiles", test_accuracy);
    return done_testing();
}
