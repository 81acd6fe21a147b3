/*
 * sticky.c: sticky track selection by key hash.
 *
 * Two levels, so that the candidate's weight never moves keys between the
 * other tracks. With weights blue=60 green=30 canary=10, canary the candidate,
 * all eligible (W = 100):
 *
 *   level 1, point p1 = lo32(hash) % 10000:
 *       [0, 10000 * 10 / 100) = [0, 1000)  -> canary
 *       [1000, 10000)                      -> go to level 2
 *   level 2, point p2 = hi32(hash) % 10000, the other tracks in config order,
 *   over their own sum R = 90:
 *       blue  [0, 10000 * 60 / 90) = [0, 6666)
 *       green [6666, 10000 * 90 / 90) = [6666, 10000)
 *
 * A key with p1 = 4321, p2 = 7000 is on green. Raise canary to 50 (W = 140):
 * level 1 becomes [0, 3571); the key still has p1 = 4321 >= 3571, and level 2
 * does not depend on canary's weight, so it stays on green. A key with
 * p1 = 2000 moves from level 2 onto canary, and nothing else moves. Lower
 * canary back and exactly the keys with p1 in [1000, 3571) leave it, each for
 * the level-2 track its p2 already named. Shares come out as asked: canary
 * gets w_c / W, and a level-2 track j gets (1 - w_c / W) * w_j / R = w_j / W.
 *
 * The two levels read independent halves of one well-mixed 64-bit hash, so a
 * key's level-2 point is unrelated to whether it lands on the candidate.
 * Resolution is 1/10000 of the traffic per level: a candidate weight below
 * W / 10000 gets no keys.
 */
#include "sticky.h"

#define FNV64_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV64_PRIME UINT64_C(0x100000001b3)

uint64_t sticky_hash(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = FNV64_OFFSET;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= FNV64_PRIME;
    }
    /* murmur3 fmix64: FNV alone mixes its last bytes poorly into the high half. */
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

static int sticky_is_live(const uint32_t *w, uint32_t eligible, size_t i)
{
    return (eligible & (UINT32_C(1) << i)) && w[i] > 0;
}

int sticky_pick(const uint32_t *w, size_t n, uint32_t eligible, int candidate, uint64_t key_hash)
{
    uint64_t total = 0, rest = 0, acc = 0, p;
    size_t i;
    int last = -1;

    if (n > 32)
        n = 32; /* the eligible mask has 32 bits */
    if (candidate >= 0 && ((size_t)candidate >= n || !sticky_is_live(w, eligible, candidate)))
        candidate = -1; /* an absent candidate sends everything to level 2 */

    for (i = 0; i < n; i++) {
        if (!sticky_is_live(w, eligible, i))
            continue;
        total += w[i];
        if ((int)i != candidate)
            rest += w[i];
    }
    if (total == 0)
        return -1;

    if (candidate >= 0) {
        p = (uint32_t)key_hash % STICKY_POINTS;
        if (p < (uint64_t)STICKY_POINTS * w[candidate] / total)
            return candidate;
        if (rest == 0)
            return candidate; /* unreachable: the candidate then owns all points */
    }

    p = (uint32_t)(key_hash >> 32) % STICKY_POINTS;
    for (i = 0; i < n; i++) {
        if ((int)i == candidate || !sticky_is_live(w, eligible, i))
            continue;
        acc += w[i];
        last = (int)i;
        if (p < (uint64_t)STICKY_POINTS * acc / rest)
            return last;
    }
    return last; /* unreachable: the last range ends at STICKY_POINTS */
}
