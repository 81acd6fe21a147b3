/*
 * weights.h: validating live weights read from Redis (a hash track -> integer)
 * against a route of the snapshot, and formatting weights for logs and the
 * audit stream.
 *
 * Pure: no I/O, no allocation, no clock. The Redis weight source
 * (redis_source.c), the admin API and the fuzz target all go through
 * weights_from_hash(), so one function decides what a valid split is.
 *
 * Rules (DESIGN.md "Redis contract"):
 *   - every field names a track of the route (exact, case-sensitive);
 *   - every value is a plain decimal integer 0..CONF_MAX_WEIGHT: digits only,
 *     no sign, no spaces, no hex, not empty, leading zeros allowed ("007");
 *   - no field twice (Redis cannot produce it; other callers might);
 *   - the hash is not empty (an absent key is a separate outcome, not an
 *     error: the caller tests n == 0 first);
 *   - tracks missing from the hash get weight 0: operators write the whole
 *     split, so a split is never half Redis and half config file;
 *   - the sum over tracks that have servers is above zero.
 */
#ifndef CUTOVER_WEIGHTS_H
#define CUTOVER_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "snap.h"

/*
 * Validates an HGETALL reply for route <r>: <n> pairs, field i is
 * <fields>[i] (<flen>[i] bytes, not NUL-terminated, may hold any byte) and
 * value i is <values>[i] (<vlen>[i] bytes). On success fills <out> with one
 * weight per track of <r>, in track order, and returns 0. On failure returns
 * -1, leaves <out> unspecified and writes a one-line reason naming the route,
 * the field and what is wrong into <err> (always NUL-terminated when
 * <errlen> > 0; bytes that are not printable ASCII are escaped as \xNN and
 * long strings are cut). The arrays are only read.
 */
int weights_from_hash(const char *const *fields, const size_t *flen, const char *const *values,
                      const size_t *vlen, size_t n, const struct snap_route *r, uint32_t *out,
                      char *err, size_t errlen);

/*
 * Writes "blue=90,green=0,canary=10" for the <r->n_tracks> weights <w> of
 * <r> into <buf> (NUL-terminated, cut if too small). <w> NULL writes the
 * weights in force in <r>. Returns <buf>.
 */
char *weights_format(const struct snap_route *r, const uint32_t *w, char *buf, size_t len);

/*
 * Writes the raw pairs of a hash as "field=value,..." with the escaping of
 * weights_from_hash's messages (for audit entries of refused values).
 * Returns <buf>.
 */
char *weights_format_raw(const char *const *fields, const size_t *flen, const char *const *values,
                         const size_t *vlen, size_t n, char *buf, size_t len);

/* 1 if <r>'s weights in force equal <w> (n_tracks entries), else 0. */
int weights_equal(const struct snap_route *r, const uint32_t *w);

#endif
