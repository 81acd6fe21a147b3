/*
 * redis_glue.h: wires the Redis weight source (routing/redis_source.h) into
 * the proxy's main thread.
 *
 * The glue owns the source, the one timer that ticks it on the main event
 * base, and the Redis overrides in force. It turns the source's results into
 * snapshots: valid weights become snap_with_weights(..., WSRC_REDIS) and are
 * published with shared_publish() when they differ from the weights in force;
 * a deleted key brings the config's weights back; refused values are logged
 * and audited and the last good weights stay. Every applied change (config
 * load, reload, Redis) is logged and appended to {prefix}:audit.
 *
 *
 * The guard (GUARD.md "Acting"). A trip (redis_glue_guard_trip) swaps the
 * route to candidate weight 0 in-process at once, then writes weights, guard
 * hash, PUBLISH and an audit entry with the evidence through to Redis; other
 * instances follow when they read `state tripped` from the guard hash. While
 * a route is latched (tripped here or in Redis) no source raises its
 * candidate above 0: Redis reads, reloads and the admin API apply the other
 * tracks' weights and hold the candidate at 0 (logged once per trip). An
 * operator re-arms with `state armed` in the guard hash (or the admin API,
 * redis_glue_guard_arm); the candidate's weight then comes from Redis or the
 * config again. Redis down at the trip: the snap-back is local, and the trip
 * is written through as soon as Redis is back, before its weights are read.
 *
 * Main thread only: none of these functions may be called from a worker.
 */
#ifndef CUTOVER_REDIS_GLUE_H
#define CUTOVER_REDIS_GLUE_H

#include <stdint.h>

#include "../conf/conf.h"
#include "../routing/guard.h"
#include "../routing/snap.h"
#include "worker.h"

struct event_base;
struct redis_glue;

/*
 * Creates the glue for the snapshot already published in <sh> (built from
 * <c>): logs and audits the config's weights of every route and, when
 * <c->redis.enabled>, starts the source on <base>. <generation> is the
 * counter that numbers published snapshots (shared with main.c); the glue
 * increments it for each snapshot it builds. Returns NULL on allocation
 * failure (start-up: the caller exits).
 */
struct redis_glue *redis_glue_new(struct event_base *base, struct shared *sh, uint64_t *generation,
                                  const struct conf *c);

/*
 * Start-up only, before the workers run: runs <base> until every route has
 * been read from Redis once, Redis is found down, or <timeout_ms> passed, so
 * that the first requests already follow the weights in Redis. Returns at
 * once when Redis is not configured.
 */
void redis_glue_wait_synced(struct redis_glue *g, unsigned timeout_ms);

/*
 * Config reload (SIGHUP). <fresh> is the snapshot built from the new conf <c>
 * (the glue takes over the reference); returns the snapshot to publish in its
 * place: <fresh> with the Redis overrides held re-applied, so a reload never
 * undoes an operator's Redis weights. Restarts the source if the redis block
 * changed, logs and audits the routes whose weights in force change, and
 * re-reads Redis. Never fails: on allocation failure it returns <fresh> as is.
 */
struct snap *redis_glue_reload(struct redis_glue *g, const struct conf *c, struct snap *fresh);

/*
 * For the admin API and the guard: applies <w> (one weight per track of
 * <route>, in track order, already validated) from <src> (WSRC_ADMIN,
 * WSRC_GUARD): publishes a snapshot if they differ from the weights in force,
 * logs and audits the change; with <write_through> and Redis configured, also
 * writes them to {prefix}:route:{route}:weights and PUBLISHes the route so the
 * fleet follows (redisw_write_weights). Returns 0, -ENOENT (no such route),
 * -ENOMEM, or -ENOTCONN when applied here but Redis is not connected.
 * While the route's guard is tripped the candidate is held at 0: that is what
 * is applied and written through (see redis_glue_guard_is_tripped()).
 */
int redis_glue_apply(struct redis_glue *g, const char *route, const uint32_t *w,
                     enum weight_src src, const char *reason, int write_through);

/*
 * The guard of <route> tripped (<why> from guard_eval(); <t0_us> = cut_now_us()
 * when the trip was seen): publishes the route with the candidate at 0 at once
 * (the others keep their weights; with no other weight left the baseline takes
 * the candidate's), latches it, logs at warn with the reason and the time from
 * <t0_us> to the swap, audits the evidence, and writes the trip through to
 * Redis (weights, guard hash: state tripped, reason, at_ms, by and the
 * evidence; PUBLISH) in one transaction. <why> is only read. Returns 0,
 * -ENOENT (no such route, or it has no candidate), -ENOMEM (not swapped), or
 * -ENOTCONN when swapped here while Redis is down (written through once
 * Redis is back).
 */
int redis_glue_guard_trip(struct redis_glue *g, const char *route, const struct guard_reason *why,
                          uint64_t t0_us);

/*
 * Re-arms the guard of <route> (admin API: POST /routes/{route}/guard/arm):
 * clears the latch here (stats_guard_rearm when it was tripped), brings the
 * candidate's weight back from the Redis weights held or the config, audits
 * ("admin", "guard re-armed"), and writes `state armed`, armed_at_ms and
 * armed_by to the guard hash with a PUBLISH so the fleet re-arms too. Arming
 * an armed route is harmless (it writes `state armed` again). Returns 0,
 * -ENOENT (no such route, or the route has no guard and is not tripped here),
 * -ENOMEM, or -ENOTCONN when re-armed here while Redis is down (written once
 * Redis is back).
 */
int redis_glue_guard_arm(struct redis_glue *g, const char *route);

/* 1 when <route>'s guard is latched here (tripped locally or per Redis's guard hash), else 0. */
int redis_glue_guard_is_tripped(const struct redis_glue *g, const char *route);

/*
 * After stats_configure() on a reload: a guard whose settings changed starts
 * afresh there; latches it again for every route the glue holds tripped.
 */
void redis_glue_guards_relatch(struct redis_glue *g);

/* Redis state for the admin endpoint (/status, /metrics). Strings point into the glue. */
struct redis_glue_info {
    int enabled;           /* a redis block is configured */
    int connected;         /* the command connection is ready */
    const char *address;   /* as configured */
    const char *prefix;
    const char *instance;  /* this instance's id in audit entries and guard state */
    uint64_t connects;     /* times the command connection became ready */
    uint64_t failures;     /* command connection failures since it was last ready */
    int64_t last_apply_us; /* latest change read from Redis: trigger to publish; -1 none */
};

/* Fills <out> (all zero but last_apply_us = -1 when <g> is NULL or Redis is off). */
void redis_glue_get_info(const struct redis_glue *g, struct redis_glue_info *out);

/* Stops the source and frees everything. NULL is fine. Before event_base_free(). */
void redis_glue_free(struct redis_glue *g);

#endif
