/*
 * main.c: command line, start-up, signals (reload, drain, log reopen).
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "../conf/conf.h"
#include "../routing/snap.h"
#include "accesslog.h"
#include "admin.h"
#include "ctl.h"
#include "health.h"
#include "log.h"
#include "mem.h"
#include "stats.h"
#include "redis_glue.h"
#include "tls.h"
#include "worker.h"

#ifndef CUTOVER_VERSION
#define CUTOVER_VERSION "0.1.0"
#endif

struct app {
    struct conf *conf;
    const char *conf_path;
    struct shared shared;
    struct worker *workers;
    unsigned n_workers;
    struct event_base *base;
    uint64_t generation, conf_generation;
    int stopping;
    struct redis_glue *redis; /* Redis weights: source, timer, overrides held */
    struct event *tick;       /* 10 ms: collect worker stats, run the guards */
    struct admin *admin;      /* admin endpoint, NULL when not configured */
};

#define STATS_TICK_MS 10

static void usage(FILE *f)
{
    fprintf(f, "usage: cutover [-c FILE] [-t] [-V]\n"
               "       cutover ctl [-c FILE] [-a ADDR] [-k TOKENFILE] COMMAND (ctl -h: more)\n"
               "  -c FILE  configuration file (default conf/cutover.conf)\n"
               "  -t       check the configuration and exit (0 valid, 1 invalid)\n"
               "  -V       print the version and exit\n");
}

static int listeners_differ(const struct conf *a, const struct conf *b)
{
    if (a->n_listens != b->n_listens || a->workers != b->workers)
        return 1;
    for (size_t i = 0; i < a->n_listens; i++)
        if (strcmp(a->listens[i].address, b->listens[i].address) != 0 ||
            a->listens[i].tls != b->listens[i].tls)
            return 1;
    return 0;
}

static void reload(struct app *app)
{
    char err[1024];
    struct conf *c = conf_load(app->conf_path, err, sizeof(err));
    if (c == NULL) {
        cut_log(CUT_ERR, "reload refused, keeping the running configuration: %s", err);
        admin_on_reload(app->admin, NULL);
        return;
    }
    struct snap *s = snap_from_conf(c, ++app->generation, ++app->conf_generation, cut_now_ms());
    if (s == NULL) {
        cut_log(CUT_ERR, "reload refused: out of memory");
        conf_free(c);
        admin_on_reload(app->admin, NULL);
        return;
    }
    if (listeners_differ(app->conf, c))
        cut_log(CUT_WARN, "reload: listeners and workers changes need a restart; kept as they were");
    /* Redis: re-apply the overrides held before publishing, so a reload never undoes them */
    s = redis_glue_reload(app->redis, c, s);
    stats_configure(s, c, cut_now_ms());
    redis_glue_guards_relatch(app->redis); /* a tripped guard stays tripped across reloads */
    if (health_configure(app->base, c) < 0)
        cut_log(CUT_ERR, "reload: out of memory setting up health checks");
    shared_publish(&app->shared, s);
    /* workers and listeners still use the first conf's listener entries */
    if (app->shared.conf != app->conf)
        conf_free(app->conf);
    app->conf = c;
    admin_on_reload(app->admin, c);
    cut_log(CUT_INFO, "configuration reloaded from %s (generation %llu)", app->conf_path,
            (unsigned long long)app->conf_generation);
}

static void on_guard_trip(void *arg, struct rt_route *r, const struct guard_reason *why)
{
    struct app *app = arg;
    uint64_t t0_us = cut_now_us();
    /* snap back now (candidate 0 in-process), then write through to Redis; the glue logs */
    redis_glue_guard_trip(app->redis, r->name, why, t0_us);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct app *app = arg;
    stats_collect(app->workers, app->n_workers, NULL, cut_now_ms(), on_guard_trip, app);
}

static void worker_exited_cb(evutil_socket_t fd, short what, void *arg)
{
    struct app *app = arg;
    if (atomic_load(&app->shared.n_exited) >= app->n_workers)
        event_base_loopexit(app->base, NULL);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct app *app = arg;
    switch (sig) {
    case SIGHUP:
        reload(app);
        break;
    case SIGUSR1:
        cut_log_reopen();
        alog_reopen();
        cut_log(CUT_INFO, "log files reopened");
        break;
    case SIGTERM:
    case SIGINT:
        if (app->stopping)
            break;
        app->stopping = 1;
        cut_log(CUT_INFO, "signal %d: draining (up to %u ms)", (int)sig,
                app->conf->timeouts.drain_ms);
        atomic_store(&app->shared.draining, 1);
        for (unsigned i = 0; i < app->n_workers; i++)
            worker_request_drain(&app->workers[i]);
        /* the main loop (admin, Redis) runs on until every worker has ended */
        break;
    default:
        break;
    }
}

int main(int argc, char **argv)
{
    struct app app;
    /* First, before any libevent call allocates: evbuffer chains, events and
     * evhttp state come from mem.h's per-thread lists (frees on another thread,
     * as the main loop's, are fine there). Strings libevent hands back for the
     * caller to free (evhttp_uridecode...) must then go to mem_free(). */
    event_set_mem_functions(mem_malloc, mem_realloc, mem_free);
    /* glibc's defaults return freed memory to the kernel eagerly: a worker's
     * heap top above 128 KiB is trimmed (madvise), and the mmap threshold
     * moves with the sizes freed, so 64 KiB and 128 KiB evbuffer chains were
     * mapped and unmapped, or trimmed and faulted back, per response: 26 page
     * faults and +50 us of kernel time per 64 KiB h2 response, depending on
     * what the process had served before. Fixed thresholds: keep up to 32 MiB
     * of free heap top per arena; mmap only blocks of 8 MiB and more. */
    mallopt(M_TRIM_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_MMAP_THRESHOLD, 8 * 1024 * 1024);
    memset(&app, 0, sizeof(app));
    app.conf_path = "conf/cutover.conf";
    if (argc > 1 && strcmp(argv[1], "ctl") == 0)
        return ctl_main(argc - 1, argv + 1); /* the admin client: see ctl.h */
    int check_only = 0, opt;
    while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
        switch (opt) {
        case 'c':
            app.conf_path = optarg;
            break;
        case 't':
            check_only = 1;
            break;
        case 'V':
            printf("cutover %s\n", CUTOVER_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    char err[1024];
    app.conf = conf_load(app.conf_path, err, sizeof(err));
    if (app.conf == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (check_only) {
        printf("%s: configuration ok\n", app.conf_path);
        conf_free(app.conf);
        return 0;
    }
    if (app.conf->admin.enabled) {
        /* first: a busy admin address or a bad token file stops the start before anything */
        app.admin = admin_new(&app.conf->admin, err, sizeof(err));
        if (app.admin == NULL) {
            fprintf(stderr, "%s\n", err);
            conf_free(app.conf);
            return 1;
        }
    }
    if (app.conf->log_level != NULL)
        cut_log_level = cut_log_level_parse(app.conf->log_level);
    if (app.conf->error_log != NULL) {
        int e = cut_log_open(app.conf->error_log);
        if (e < 0) {
            fprintf(stderr, "error_log %s: %s\n", app.conf->error_log, strerror(-e));
            return 1;
        }
    }
    if (app.conf->access_log != NULL) {
        int e = alog_open(app.conf->access_log, app.conf->access_log_sample);
        if (e < 0) {
            fprintf(stderr, "access_log %s: %s\n", app.conf->access_log, strerror(-e));
            return 1;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() == -1) {
        fprintf(stderr, "evthread_use_pthreads failed\n");
        return 1;
    }
#ifdef CUT_DEBUG_BUILD
    event_enable_debug_mode();
#endif

    struct shared *sh = &app.shared;
    pthread_mutex_init(&sh->publish_lock, NULL);
    sh->conf = app.conf;
    sh->ssl_ctx = calloc(app.conf->n_listens, sizeof(*sh->ssl_ctx));
    if (sh->ssl_ctx == NULL)
        return 1;
    for (size_t i = 0; i < app.conf->n_listens; i++) {
        const struct conf_listen *l = &app.conf->listens[i];
        if (!l->tls)
            continue;
        sh->ssl_ctx[i] = tls_ctx_new(l->cert, l->key, err, sizeof(err));
        if (sh->ssl_ctx[i] == NULL) {
            fprintf(stderr, "%s: listen %s: %s\n", app.conf_path, l->address, err);
            return 1;
        }
    }
    struct snap *s = snap_from_conf(app.conf, ++app.generation, ++app.conf_generation,
                                    cut_now_ms());
    if (s == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    atomic_store(&sh->snap, s);
    stats_configure(s, app.conf, cut_now_ms());

    app.base = event_base_new();
    if (app.base == NULL)
        return 1;
    /* Redis weights: the source runs on this (main) thread's base, never on a worker's.
     * The first read (bounded) happens before the listeners open, so the first requests
     * already follow Redis and none waits for it. */
    app.redis = redis_glue_new(app.base, sh, &app.generation, app.conf);
    if (app.redis == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    redis_glue_wait_synced(app.redis, 1000);
    if (health_configure(app.base, app.conf) < 0) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }

    app.n_workers = app.conf->workers ? app.conf->workers : 1;
    app.workers = calloc(app.n_workers, sizeof(*app.workers));
    if (app.workers == NULL)
        return 1;
    for (unsigned i = 0; i < app.n_workers; i++) {
        if (worker_init(&app.workers[i], i, sh, err, sizeof(err)) < 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    int sigs[] = {SIGHUP, SIGTERM, SIGINT, SIGUSR1};
    struct event *sev[4];
    for (int i = 0; i < 4; i++) {
        sev[i] = evsignal_new(app.base, sigs[i], signal_cb, &app);
        if (sev[i] == NULL || evsignal_add(sev[i], NULL) == -1) {
            fprintf(stderr, "cannot install signal handlers\n");
            return 1;
        }
    }
    sh->worker_exited = event_new(app.base, -1, 0, worker_exited_cb, &app);
    if (sh->worker_exited == NULL)
        return 1;
    app.tick = event_new(app.base, -1, EV_PERSIST, tick_cb, &app);
    struct timeval tick_tv = {0, STATS_TICK_MS * 1000};
    if (app.tick == NULL || event_add(app.tick, &tick_tv) == -1) {
        fprintf(stderr, "cannot start the stats timer\n");
        return 1;
    }
    if (app.admin != NULL) {
        struct admin_deps ad = {.base = app.base,
                                .sh = sh,
                                .redis = app.redis,
                                .workers = app.workers,
                                .n_workers = app.n_workers,
                                .conf_path = app.conf_path,
                                .version = CUTOVER_VERSION};
        if (admin_start(app.admin, &ad, err, sizeof(err)) < 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    for (unsigned i = 0; i < app.n_workers; i++) {
        int e = worker_run(&app.workers[i]);
        if (e < 0) {
            fprintf(stderr, "cannot start worker %u: %s\n", i, strerror(-e));
            return 1;
        }
    }
    cut_log(CUT_INFO, "cutover %s started: %u workers, %zu listeners, %zu routes (pid %d)",
            CUTOVER_VERSION, app.n_workers, app.conf->n_listens, app.conf->n_routes,
            (int)getpid());

    event_base_dispatch(app.base);

    for (unsigned i = 0; i < app.n_workers; i++)
        worker_join(&app.workers[i]);
    cut_log(CUT_INFO, "stopped");
    for (int i = 0; i < 4; i++)
        event_free(sev[i]);
    event_free(app.tick);
    event_free(sh->worker_exited);
    admin_free(app.admin);
    stats_free_all();
    health_free_all();
    redis_glue_free(app.redis);
    event_base_free(app.base);
    free(app.workers);
    snap_unref(atomic_load(&sh->snap));
    for (size_t i = 0; i < sh->conf->n_listens; i++)
        if (sh->ssl_ctx[i] != NULL)
            SSL_CTX_free(sh->ssl_ctx[i]);
    free(sh->ssl_ctx);
    if (sh->conf != app.conf)
        conf_free((struct conf *)sh->conf);
    conf_free(app.conf);
    pthread_mutex_destroy(&sh->publish_lock);
    alog_close();
    libevent_global_shutdown();
    return 0;
}
