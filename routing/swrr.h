/*
 * swrr.h: smooth weighted round robin (nginx's ngx_http_upstream_get_peer
 * step, without health logic).
 *
 * Each pick adds every eligible item's weight to its current value, chooses
 * the largest current value (first index on ties), and subtracts the total
 * eligible weight from the winner. With fixed weights and a fixed eligible
 * set the sequence is periodic with period sum(w) and each item i is chosen
 * exactly w[i] times per period, spread as evenly as possible.
 */
#ifndef CUTOVER_SWRR_H
#define CUTOVER_SWRR_H

#include <stddef.h>
#include <stdint.h>

#include "../conf/conf.h"

struct swrr {
    size_t n;
    uint32_t weight[CONF_MAX_TRACKS];
    int64_t cur[CONF_MAX_TRACKS];
};

/* Sets <n> weights and zeroes the state. */
void swrr_init(struct swrr *s, const uint32_t *w, size_t n);

/*
 * Replaces the weights, keeping the current values of the items, so that
 * re-applying the same weights does not skew the split (a 99:1 split stays
 * 99:1 however often it is re-applied). If <n> differs from the old count the
 * state is reset. Current values are clamped to +-sum(w) so a big drop in a
 * weight does not starve other items for long.
 */
void swrr_set_weights(struct swrr *s, const uint32_t *w, size_t n);

/*
 * Picks an item among those whose bit is set in <eligible> and whose weight is
 * > 0. Returns its index, or -1 if there is none. O(n).
 */
int swrr_pick(struct swrr *s, uint32_t eligible);

#endif
