/*
 * hist.c: log-linear latency histogram (see hist.h for the layout and the
 * error bound).
 *
 * Index of a value v >= 64 with e = floor(log2 v):
 *
 *     shift = e - 5                      (bucket width 2^shift)
 *     sub   = (v >> shift) - 32          (0..31 inside the octave)
 *     idx   = 64 + (e - 6) * 32 + sub
 *
 * and back, for k = idx - 64: e = 6 + k / 32, lo = (32 + k % 32) << (e - 5),
 * hi = lo + 2^(e-5) - 1. Below 64 the index is the value itself, which is the
 * same formula's octave 5 continued with width 1, so the two parts join
 * without a gap: idx(63) = 63, idx(64) = 64 (bucket [64, 65]).
 */
#include "hist.h"

#include <string.h>

_Static_assert(sizeof(struct hist) <= 8192, "a struct hist must stay small (60 per track)");
_Static_assert(HIST_N_BUCKETS == 736, "bucket count as documented");

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned hist_index(uint64_t us)
{
    unsigned e, shift;

    if (us < HIST_LINEAR)
        return (unsigned)us;
    if (us > HIST_MAX_US)
        return HIST_N_BUCKETS - 1;
    e = 63u - (unsigned)__builtin_clzll(us);
    shift = e - HIST_SUB_BITS;
    return HIST_LINEAR + (e - (HIST_SUB_BITS + 1)) * HIST_SUB +
           (unsigned)((us >> shift) - HIST_SUB);
}

uint64_t hist_bucket_lo(unsigned idx)
{
    unsigned k, e;

    if (idx < HIST_LINEAR)
        return idx;
    if (idx >= HIST_N_BUCKETS)
        idx = HIST_N_BUCKETS - 1;
    k = idx - HIST_LINEAR;
    e = HIST_SUB_BITS + 1 + k / HIST_SUB;
    return (uint64_t)(HIST_SUB + k % HIST_SUB) << (e - HIST_SUB_BITS);
}

uint64_t hist_bucket_hi(unsigned idx)
{
    unsigned e;

    if (idx < HIST_LINEAR)
        return idx;
    if (idx >= HIST_N_BUCKETS)
        idx = HIST_N_BUCKETS - 1;
    e = HIST_SUB_BITS + 1 + (idx - HIST_LINEAR) / HIST_SUB;
    return hist_bucket_lo(idx) + (UINT64_C(1) << (e - HIST_SUB_BITS)) - 1;
}

uint64_t hist_lowest_equiv(uint64_t us)
{
    return us > HIST_MAX_US ? us : hist_bucket_lo(hist_index(us));
}

uint64_t hist_highest_equiv(uint64_t us)
{
    return us > HIST_MAX_US ? us : hist_bucket_hi(hist_index(us));
}

static void hist_bump(uint32_t *b, uint32_t n)
{
    *b = *b > UINT32_MAX - n ? UINT32_MAX : *b + n;
}

void hist_record_n(struct hist *h, uint64_t us, uint32_t n)
{
    if (n == 0)
        return;
    hist_bump(&h->bucket[hist_index(us)], n);
    h->count += n;
    h->sum += us * n;
    if (us < h->min)
        h->min = us;
    if (us > h->max)
        h->max = us;
}

void hist_record(struct hist *h, uint64_t us)
{
    hist_record_n(h, us, 1);
}

/* Every non-empty bucket of <h> lies in [hist_index(min), hist_index(max)]:
 * min and max follow every sample and every merge. Loops walk that range
 * only: a window's latencies span a few dozen buckets of the 736, and the
 * stats tick merges every 10 ms. */
void hist_reset(struct hist *h)
{
    if (h->count != 0) {
        unsigned lo = hist_index(h->min), hi = hist_index(h->max);
        memset(&h->bucket[lo], 0, (size_t)(hi - lo + 1) * sizeof(h->bucket[0]));
    }
    h->count = 0;
    h->sum = 0;
    h->min = UINT64_MAX;
    h->max = 0;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    unsigned i, hi;

    if (src->count == 0)
        return; /* the common case for idle tracks */
    hi = hist_index(src->max);
    for (i = hist_index(src->min); i <= hi; i++)
        if (src->bucket[i])
            hist_bump(&dst->bucket[i], src->bucket[i]);
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    uint64_t rank, seen = 0, v;
    double r;
    unsigned i, last;

    if (h->count == 0)
        return 0;
    if (!(q > 0.0))
        return h->min;
    if (q >= 1.0)
        return h->max;
    /* nearest rank: ceil(q * n), with a hair of slack so 0.9 * 10 is 9, not 10 */
    r = q * (double)h->count;
    rank = (uint64_t)r;
    if ((double)rank < r - 1e-9)
        rank++;
    if (rank < 1)
        rank = 1;
    last = hist_index(h->max);
    for (i = hist_index(h->min); i <= last; i++) {
        seen += h->bucket[i];
        if (seen >= rank)
            break;
    }
    if (i > last)
        return h->max; /* only when buckets saturated */
    v = hist_bucket_lo(i) + (hist_bucket_hi(i) - hist_bucket_lo(i)) / 2;
    if (v < h->min)
        v = h->min;
    if (v > h->max)
        v = h->max;
    return v;
}

uint64_t hist_count_le(const struct hist *h, uint64_t us)
{
    uint64_t n = 0;
    unsigned i, last;

    if (h->count == 0)
        return 0;
    if (us >= HIST_MAX_US)
        return h->count;
    last = hist_index(us);
    if (last > hist_index(h->max))
        last = hist_index(h->max);
    for (i = hist_index(h->min); i <= last; i++)
        n += h->bucket[i];
    return n;
}

double hist_mean(const struct hist *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}
