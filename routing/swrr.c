/*
 * swrr.c: smooth weighted round robin (nginx's ngx_http_upstream_get_peer,
 * without health logic: the caller passes the eligible set).
 *
 * Each item i has a static weight w[i] and a current value cur[i]. One pick:
 *
 *     for each eligible i with w[i] > 0:  cur[i] += w[i];  W += w[i]
 *     best = the eligible i with the largest cur[i] (lowest index on ties)
 *     cur[best] -= W
 *
 * Worked example, weights a=5 b=1 c=1 (W = 7), cur starting at 0:
 *
 *     pick   cur after adding   chosen   cur after subtracting 7
 *       1       5   1   1         a         -2   1   1
 *       2       3   2   2         a         -4   2   2
 *       3       1   3   3         b          1  -4   3
 *       4       6  -3   4         a         -1  -3   4
 *       5       4  -2   5         c          4  -2  -2
 *       6       9  -1  -1         a          2  -1  -1
 *       7       7   0   0         a          0   0   0
 *
 * After W = 7 picks the state is back to zero, a was chosen 5 times and b and
 * c once each, interleaved (a a b a c a a) rather than in a burst (a a a a a
 * b c). The sum of cur over the eligible items is invariant (+W added, -W
 * subtracted per pick) and the winner always holds at least the mean, so from
 * a zero start cur[i] stays above -W and within a small multiple of W below
 * (about 1.4 W at worst, for skewed sets of eight). A skew carried in the
 * state is thus bounded and wears off within a period or so. That is why
 * swrr_set_weights() keeps the state across a change instead of restarting
 * the period, and why re-applying the same weights must not touch it at all.
 *
 * Everything here is O(n) with n <= CONF_MAX_TRACKS, touches no memory but
 * <s>, and never allocates.
 */
#include "swrr.h"

#include <string.h>

static size_t swrr_clamp_n(size_t n)
{
    return n > CONF_MAX_TRACKS ? CONF_MAX_TRACKS : n;
}

void swrr_init(struct swrr *s, const uint32_t *w, size_t n)
{
    memset(s, 0, sizeof(*s));
    s->n = swrr_clamp_n(n);
    if (s->n > 0)
        memcpy(s->weight, w, s->n * sizeof(s->weight[0]));
}

void swrr_set_weights(struct swrr *s, const uint32_t *w, size_t n)
{
    int64_t sum = 0;
    size_t i;

    n = swrr_clamp_n(n);
    if (n != s->n) {
        swrr_init(s, w, n);
        return;
    }
    /* Identical weights (a poll that re-reads Redis): not even the clamp may run. */
    if (n == 0 || memcmp(s->weight, w, n * sizeof(s->weight[0])) == 0)
        return;
    for (i = 0; i < n; i++) {
        s->weight[i] = w[i];
        sum += w[i];
    }
    /*
     * Keep the current values, so a changed split converges from where it
     * stands. An item dropped to weight 0 forgets its state, so it comes back
     * neutral rather than with a debt or credit from long ago.
     */
    for (i = 0; i < n; i++) {
        if (s->weight[i] == 0)
            s->cur[i] = 0;
        else if (s->cur[i] > sum)
            s->cur[i] = sum;
        else if (s->cur[i] < -sum)
            s->cur[i] = -sum;
    }
}

int swrr_pick(struct swrr *s, uint32_t eligible)
{
    int64_t total = 0;
    int best = -1;
    size_t i;

    for (i = 0; i < s->n; i++) {
        if (!(eligible & (UINT32_C(1) << i)) || s->weight[i] == 0)
            continue;
        s->cur[i] += s->weight[i];
        total += s->weight[i];
        if (best < 0 || s->cur[i] > s->cur[best]) /* strict: ties keep the lowest index */
            best = (int)i;
    }
    if (best >= 0)
        s->cur[best] -= total;
    return best;
}
