#include "outlier.h"

uint64_t outlier_on_outcome(struct outlier_state *s, const struct conf_outlier *c, int failed,
                            unsigned n_servers, unsigned n_ejected, unsigned n_ok,
                            uint64_t now_ms)
{
    if (!failed) {
        s->consecutive_failures = 0;
        if (s->n_ejections > 0 && now_ms > s->ejected_until_ms + c->max_ejection_ms)
            s->n_ejections = 0;
        return 0;
    }
    if (c->consecutive_failures == 0 || outlier_is_ejected(s, now_ms))
        return 0;
    if (++s->consecutive_failures < c->consecutive_failures)
        return 0;
    s->consecutive_failures = 0;
    /* never the last server that can take requests, never over the share */
    if (n_ok == 0 || (uint64_t)(n_ejected + 1) * 100 > (uint64_t)c->max_ejected_percent * n_servers)
        return 0;
    uint64_t ms = c->base_ejection_ms;
    for (unsigned i = 0; i < s->n_ejections && ms < c->max_ejection_ms; i++)
        ms *= 2;
    if (ms > c->max_ejection_ms)
        ms = c->max_ejection_ms;
    s->ejected_until_ms = now_ms + ms;
    s->n_ejections++;
    return ms;
}
