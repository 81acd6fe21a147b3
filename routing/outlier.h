/*
 * outlier.h: passive outlier ejection of a server inside a track (Envoy's
 * consecutive-failure detector), as a pure function of the server's state,
 * its track's counts and a clock passed in.
 *
 * A server with c->consecutive_failures failures in a row is ejected for
 * base_ejection_ms * 2^(times ejected before), capped at max_ejection_ms,
 * unless that would leave more than max_ejected_percent of its track's
 * servers ejected, or eject the last server of the track that can still take
 * requests. A success resets the run; once a server has stayed in for
 * max_ejection_ms after its last ejection ended, its ejection count is
 * forgiven.
 *
 *   consecutive_failures = 5, base 10 s, max 300 s:
 *   1st ejection 10 s, 2nd 20 s, 3rd 40 s, ... 6th onwards 300 s
 */
#ifndef CUTOVER_OUTLIER_H
#define CUTOVER_OUTLIER_H

#include <stdint.h>

#include "../conf/conf.h"

struct outlier_state {
    unsigned consecutive_failures;
    unsigned n_ejections;
    uint64_t ejected_until_ms; /* 0 or in the past: not ejected */
};

/* 1 while <s> is ejected at <now_ms>. */
static inline int outlier_is_ejected(const struct outlier_state *s, uint64_t now_ms)
{
    return s->ejected_until_ms > now_ms;
}

/*
 * Counts one outcome (<failed> 0 or 1) of the server <s>. <n_servers> is the
 * number of servers of its track, <n_ejected> how many of the OTHER servers
 * are ejected now, <n_ok> how many of the other servers can take requests.
 * Returns the ejection time in ms when the server is ejected by this outcome
 * (s->ejected_until_ms is then set), else 0.
 */
uint64_t outlier_on_outcome(struct outlier_state *s, const struct conf_outlier *c, int failed,
                            unsigned n_servers, unsigned n_ejected, unsigned n_ok,
                            uint64_t now_ms);

#endif
