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
 * Main thread only: none of these functions may be called from a worker.
 */
#ifndef CUTOVER_REDIS_GLUE_H
#define CUTOVER_REDIS_GLUE_H

#include <stdint.h>

#include "../conf/conf.h"
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
 * A guard latch that must stop later Redis reads from raising a candidate again
 * belongs in redis_glue.c's publish_weights().
 */
int redis_glue_apply(struct redis_glue *g, const char *route, const uint32_t *w,
                     enum weight_src src, const char *reason, int write_through);

/* Stops the source and frees everything. NULL is fine. Before event_base_free(). */
void redis_glue_free(struct redis_glue *g);

#endif
