#include "stats.h"

#include <stddef.h>

#include "worker.h"

void stats_done(struct worker *w, const struct snap *s, int route, int track,
                const struct snap_server *srv, int status, const char *reason, int forced,
                int completed, uint64_t up_us)
{
    struct worker_stats *st = &w->stats;
    st->requests++;
    if (forced)
        st->forced++;
    int cls = status >= 100 && status < 600 ? status / 100 - 1 : ST_NONE;
    st->by_class[cls]++;
    if (reason != NULL)
        st->proxy_errors++;
}
