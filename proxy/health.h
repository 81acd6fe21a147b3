/*
 * health.h: active health checks, run by the main thread.
 *
 * One target per server address (shared by every route that checks it):
 * every interval_ms, a fresh connection sends "GET <path>" and reads the
 * status line; 2xx/3xx within timeout_ms is a success. <rise> successes in a
 * row make an unhealthy target healthy, <fall> failures the reverse. Targets
 * start healthy. Workers read the verdict with one relaxed atomic load.
 */
#ifndef CUTOVER_HEALTH_H
#define CUTOVER_HEALTH_H

#include <stdatomic.h>
#include <stdint.h>

#include "../conf/conf.h"

struct event_base;

struct hc_target {
    struct hc_target *next;
    char name[CONF_ADDR_HOSTLEN + 16];
    atomic_int healthy;        /* read by workers */
    /* main thread only */
    struct conf_addr addr;
    struct conf_health conf;   /* path is owned */
    int active;                /* checked by the current config */
    unsigned ok_run, fail_run;
    uint64_t checks, failures, transitions;
    uint64_t last_ms;
    char last_error[96];
    struct bufferevent *bev;
    struct event *timer;
    struct event_base *base;
    int in_flight;
    char buf[64];
    size_t buf_len;
};

/* Main thread: (re)configures the targets from <c>; starts/stops checks. */
int health_configure(struct event_base *base, const struct conf *c);

/* Any thread: the target for server "host:port", or NULL when not checked. */
struct hc_target *health_find(const char *name);

/* Main thread: the list of targets (for /status and /metrics). */
struct hc_target *health_targets(void);

/* Main thread, at exit. */
void health_free_all(void);

#endif
