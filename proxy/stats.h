/*
 * stats.h: per-worker counters, plain integers written only by their worker
 * and summed when read (admin endpoint, later). Per-track windows and the
 * guard's evidence build on stats_done().
 */
#ifndef CUTOVER_STATS_H
#define CUTOVER_STATS_H

#include <stdint.h>

struct snap;
struct snap_server;
struct worker;

enum stats_class { ST_1XX = 0, ST_2XX, ST_3XX, ST_4XX, ST_5XX, ST_NONE, ST_N_CLASSES };

struct worker_stats {
    uint64_t requests;
    uint64_t forced;                  /* routed by the override header */
    uint64_t by_class[ST_N_CLASSES];  /* by status class; ST_NONE: no status sent */
    uint64_t proxy_errors;            /* responses the proxy generated itself */
    uint64_t conns_accepted, conns_refused;
};

/*
 * Accounts one finished exchange. <route>/<track> are -1 when not routed.
 * <status> is 0 when no status was sent. <reason> is a proxy error reason
 * or NULL. <up_us> is the time to the upstream response head (0: none).
 */
void stats_done(struct worker *w, const struct snap *s, int route, int track,
                const struct snap_server *srv, int status, const char *reason, int forced,
                int completed, uint64_t up_us);

#endif
