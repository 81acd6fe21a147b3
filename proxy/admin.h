/*
 * admin.h: the admin HTTP/1.1 endpoint (DESIGN.md "Admin endpoint").
 *
 *   GET  /status                     JSON: routes, tracks, weights and their source,
 *                                    window stats, servers and health, guard, Redis,
 *                                    config generation, build, draining
 *   GET  /metrics                    Prometheus text format 0.0.4, names cutover_*
 *   GET  /healthz                    200 "ok" while serving, 503 while draining
 *   PUT  /routes/{route}/weights     {"blue":90,"canary":10}: validated like Redis values,
 *                                    applied at once, written through to Redis, audited
 *                                    with source "admin"
 *   POST /routes/{route}/guard/arm   re-arms a tripped guard (and writes "state armed"
 *                                    through to Redis)
 *
 * It runs on the main thread's event base with libevent's evhttp (a low-rate,
 * loopback port: evhttp's buffering of whole requests is fine here, with
 * small header and body limits and timeouts). It reads only main-thread
 * records (stats.h, health.h, the published snapshot) and the workers'
 * monotonic atomics, so the data path never waits for it.
 *
 * Mutations need "Authorization: Bearer <token>" when conf_admin.token_file
 * is set: 401 without a bearer token, 403 with a wrong one. The token is read
 * once at start (surrounding whitespace trimmed) and compared through SHA-256
 * digests with CRYPTO_memcmp, so neither its bytes nor its length leak
 * through timing. Reads are open on the admin address.
 *
 * Main thread only: none of these functions may be called from a worker or
 * from a libevent callback of another base.
 */
#ifndef CUTOVER_ADMIN_H
#define CUTOVER_ADMIN_H

#include <stddef.h>

#include "../conf/conf.h"

struct event_base;
struct redis_glue;
struct shared;
struct worker;

/* What the admin endpoint reads and steers; every pointer is borrowed and
 * must outlive the admin (admin_free() first). */
struct admin_deps {
    struct event_base *base;  /* the main thread's base */
    struct shared *sh;        /* snapshot, draining flag */
    struct redis_glue *redis; /* weights and guard write-through */
    struct worker *workers;   /* per-worker counters (read only) */
    unsigned n_workers;
    const char *conf_path; /* for /status and cutover_config_info */
    const char *version;   /* build version */
};

struct admin;

/*
 * Start-up, before anything else is set up: reads the token file if one is
 * configured and binds the listening socket of <c> (c->enabled must be
 * set), so that a busy address or a bad token file stops the start at once.
 * Returns the admin, or NULL with a message in <err> (address in use,
 * unreadable or empty token file, out of memory): the caller exits.
 */
struct admin *admin_new(const struct conf_admin *c, char *err, size_t errlen);

/*
 * Starts serving on <d->base> (requests are answered once that base
 * dispatches). <d> is copied; its pointers are borrowed. Returns 0, or -1 with
 * a message in <err> (out of memory at start-up: the caller exits).
 */
int admin_start(struct admin *a, const struct admin_deps *d, char *err, size_t errlen);

/*
 * Config (re)load outcome, for /status and cutover_config_reloads_total:
 * <c> is the configuration now in force, or NULL when a reload was refused.
 * The admin address and token stay those of the start (a restart changes
 * them). NULL <a> is fine.
 */
void admin_on_reload(struct admin *a, const struct conf *c);

/* Closes the listener and every admin connection. NULL is fine. Before event_base_free(). */
void admin_free(struct admin *a);

#endif
