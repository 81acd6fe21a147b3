/*
 * hist.h: a fixed-size log-linear latency histogram (HdrHistogram's layout).
 *
 * Values are microseconds. 0..63 us get one bucket each (exact); above that
 * every power of two [2^e, 2^(e+1)) is cut into 32 equal sub-buckets of width
 * 2^(e-5). With 5 sub-bucket bits:
 *
 *     bucket width / lowest value in it  <=  2^(e-5) / 2^e  =  1/32  (3.1 %)
 *     |reported midpoint - true value| / true value  <=  1/64  (1.6 %)
 *
 * Worked example: 1000 us lies in [512, 1024) (e = 9), width 2^4 = 16 us,
 * sub-bucket (1000 >> 4) - 32 = 30, bucket [992, 1007], reported as 999 us.
 * The top octave is [2^26, 2^27) = [67.1 s, 134.2 s), so the range is 0 us ..
 * 134 s in 64 + 21 * 32 = 736 buckets. Larger values are counted in the top
 * bucket (and still update max and sum exactly).
 *
 * Size trade-off: 736 uint32_t counts = 2944 bytes, plus 32 bytes of count,
 * sum, min and max: 2976 bytes. A struct win keeps one per 1 s slot, so 60 of
 * them per track per worker cost 175 KiB. 64 sub-buckets would halve the
 * error (0.8 %) but double that (1408 buckets, 5.5 KiB each); uint64_t counts
 * would double it too, for a per-second bucket that never holds 2^32 samples.
 * Counts are therefore 32-bit: hist_record() and hist_merge() saturate a
 * bucket at UINT32_MAX rather than wrap (use a struct hist for windows, not
 * for lifetime totals: for Prometheus, add hist_count_le() of each finished
 * second into your own 64-bit cumulative counters).
 *
 * No allocation, no clock, no globals: a struct hist is plain data that one
 * thread writes and any number of readers may merge once it is handed over.
 */
#ifndef CUTOVER_HIST_H
#define CUTOVER_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)                        /* sub-buckets per octave: 32 */
#define HIST_LINEAR (2u * HIST_SUB)                           /* 0..63 us: one bucket per value */
#define HIST_TOP_EXP 26                                       /* the last octave is [2^26, 2^27) */
#define HIST_MAX_US ((UINT64_C(1) << (HIST_TOP_EXP + 1)) - 1) /* 134217727 us, 134 s */
/* 64 + 21 * 32 = 736 */
#define HIST_N_BUCKETS (HIST_LINEAR + (HIST_TOP_EXP + 1 - (HIST_SUB_BITS + 1)) * HIST_SUB)

struct hist {
    uint64_t count; /* samples recorded (never saturates) */
    uint64_t sum;   /* sum of the recorded values, us */
    uint64_t min;   /* smallest value recorded (UINT64_MAX when empty) */
    uint64_t max;   /* largest value recorded (0 when empty) */
    uint32_t bucket[HIST_N_BUCKETS];
};

/* Empties <h>. A zeroed struct hist is not empty-initialised (min); call this. */
void hist_init(struct hist *h);

/* Empties a histogram that hist_init() set up once: clears only the buckets
 * between its min and max (the only ones that can be non-zero). */
void hist_reset(struct hist *h);

/* Records one sample of <us> microseconds (values above HIST_MAX_US land in the top bucket). */
void hist_record(struct hist *h, uint64_t us);

/* Records <n> samples of the same value (tests and batch imports). */
void hist_record_n(struct hist *h, uint64_t us, uint32_t n);

/* Adds every sample of <src> to <dst> (saturating per bucket). <src> is not changed. */
void hist_merge(struct hist *dst, const struct hist *src);

/*
 * The value at quantile <q> (0..1): the bucket holding the sample of rank
 * ceil(q * count) (1-based, the "nearest rank" definition), reported as its
 * midpoint and clamped to [min, max]. Within 1/64 of the exact nearest-rank
 * quantile of the recorded samples. q <= 0 gives min, q >= 1 gives max, an
 * empty histogram gives 0. O(HIST_N_BUCKETS).
 */
uint64_t hist_quantile(const struct hist *h, double q);

/*
 * Samples in buckets at or below the bucket of <us>: the Prometheus "le"
 * count, exact when <us> is a bucket's highest value (hist_highest_equiv()),
 * otherwise it also counts the samples of <us>'s own bucket that exceed <us>
 * (at most 1/32 above it). Monotone in <us>; hist_count_le(h, HIST_MAX_US)
 * is h->count.
 */
uint64_t hist_count_le(const struct hist *h, uint64_t us);

/* Mean in us (0 when empty). */
double hist_mean(const struct hist *h);

/* Bucket index of <us> (0 .. HIST_N_BUCKETS - 1). */
unsigned hist_index(uint64_t us);

/* Lowest and highest value that land in bucket <idx>. */
uint64_t hist_bucket_lo(unsigned idx);
uint64_t hist_bucket_hi(unsigned idx);

/* Lowest / highest value that shares <us>'s bucket ("equivalent" in HdrHistogram's words). */
uint64_t hist_lowest_equiv(uint64_t us);
uint64_t hist_highest_equiv(uint64_t us);

#endif
