/*
 * sticky.h: sticky track selection by key hash.
 *
 * A key (cookie value, header value, or client address) hashes to 64 bits.
 * The low 32 bits place the key at a point in [0, 10000) on the candidate
 * level: the candidate track owns [0, 10000 * w_c / W) where W is the sum of
 * eligible weights. Keys outside it are placed by the high 32 bits on a second
 * level where the other tracks own contiguous ranges, in config order,
 * proportional to their own weights. So raising the candidate's weight only
 * moves keys onto the candidate (the second level does not depend on w_c), and
 * a key's track never changes while weights and eligibility stay the same.
 */
#ifndef CUTOVER_STICKY_H
#define CUTOVER_STICKY_H

#include <stddef.h>
#include <stdint.h>

#define STICKY_POINTS 10000u

/* 64-bit hash of a key (FNV-1a 64 followed by a murmur3 finaliser). */
uint64_t sticky_hash(const void *key, size_t len);

/*
 * Picks a track for <key_hash> among tracks with their bit set in <eligible>
 * and weight > 0. <candidate> is the index of the candidate track (first level)
 * or -1 when there is none (then only the second level is used, over all).
 * Returns the track index or -1 if no track is eligible.
 */
int sticky_pick(const uint32_t *w, size_t n, uint32_t eligible, int candidate, uint64_t key_hash);

#endif
