/*
 * redis_source.c: the Redis weight source (see redis_source.h).
 *
 * Shape. Two struct rw_conn (cmd, sub), each a small state machine:
 *
 *     IDLE --tick at retry_ms--> CONNECTING --connect cb--> HANDSHAKE --last reply--> READY
 *       ^                            |                           |                     |
 *       +------- conn_failed() <-----+---------------------------+---------------------+
 *                (backoff, jitter)   timeout, error, EOF, garbage, AUTH/SELECT refused
 *
 * HANDSHAKE is [AUTH] + SELECT on cmd, [AUTH] then SUBSCRIBE on sub (SUBSCRIBE
 * waits for AUTH's answer, so a refused password is reported as such).
 *
 * Every command we send carries a struct rw_cmd as hiredis privdata, linked
 * on its connection's list of outstanding commands, oldest first (replies come
 * in order on one connection). hiredis calls each callback exactly once, with
 * the reply or with NULL when the context goes away, and the callback unlinks
 * and frees it. The oldest entry gives the command timeout.
 *
 * Freeing a hiredis context from inside one of its callbacks is unsafe in
 * places (the connect callback), so callbacks never free: conn_drop() marks
 * the connection, asks the owner for a tick (ops->wake) and the tick closes
 * it. hiredis frees a context itself after a connect failure or a disconnect;
 * those callbacks only forget the pointer.
 */
#include "redis_source.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "weights.h"

#define RW_KEY_MAX 512 /* bytes of a key name */
#define RW_WHY_MAX 256

enum rw_state { RW_IDLE = 0, RW_CONNECTING, RW_HANDSHAKE, RW_READY, RW_N_STATES };

enum rw_kind {
    RWK_AUTH = 0,
    RWK_SELECT,
    RWK_WEIGHTS,
    RWK_GUARD,
    RWK_AUDIT,
    RWK_TX, /* MULTI and the commands queued in it: answers are "+OK"/"+QUEUED" */
    RWK_EXEC,
    RWK_N
};

struct rw_conn;

struct rw_cmd {
    struct rw_cmd *prev, *next;
    struct rw_conn *conn;
    enum rw_kind kind;
    enum redisw_cause cause;
    uint64_t sent_ms;
    uint64_t t0_us;
    uint64_t round;
    uint64_t tag; /* RWK_EXEC: the owner's tag of the write-through, 0 none */
    char route[]; /* NUL-terminated; empty when not about a route */
};

struct rw_conn {
    struct redisw *src;
    redisAsyncContext *ac; /* NULL while IDLE */
    const char *name;      /* "cmd" or "sub", for messages */
    int is_sub;
    enum rw_state state;
    uint64_t state_ms; /* when <state> was entered */
    uint64_t retry_ms; /* IDLE: when to connect again */
    unsigned fails;    /* consecutive failures, reset once READY */
    int drop;          /* a callback asked to close; the tick does it */
    char why[RW_WHY_MAX];
    struct rw_cmd out; /* list head: outstanding commands, oldest first */
};

/* An audit entry waiting for the command connection. */
struct rw_pending {
    struct rw_pending *next;
    int argc;
    char **argv;
    size_t *argvlen;
};

struct redisw {
    struct redisw_conf conf; /* strings point at the copies below */
    char *host, *prefix, *username, *password, *instance;
    char *events_key, *audit_key;
    char maxlen[24];
    const struct redisw_ops *ops;
    void *arg;
    redisw_attach_fn *attach;
    void *loop;
    struct snap *snap;
    struct rw_conn cmd, sub;
    uint64_t next_poll_ms;
    uint64_t rng;
    uint64_t round;       /* full re-reads started */
    size_t round_pending; /* replies the latest full re-read still waits for */
    struct rw_pending *q_head, *q_tail;
    size_t q_len;
    int closing;
};

static void cmd_cb(redisAsyncContext *ac, void *r, void *priv);

const char *redisw_event_name(enum redisw_event ev)
{
    static const char *const names[REDISW_EV_N] = {
        [REDISW_EV_CMD_UP] = "cmd-up", [REDISW_EV_CMD_DOWN] = "cmd-down",
        [REDISW_EV_SUB_UP] = "sub-up", [REDISW_EV_SUB_DOWN] = "sub-down",
        [REDISW_EV_SYNCED] = "synced", [REDISW_EV_WRITE_FAILED] = "write-failed",
    };

    return (unsigned)ev < REDISW_EV_N ? names[ev] : "unknown";
}

const char *redisw_cause_name(enum redisw_cause c)
{
    static const char *const names[REDISW_CAUSE_N] = {
        [REDISW_CAUSE_EVENT] = "event",
        [REDISW_CAUSE_POLL] = "poll",
        [REDISW_CAUSE_CONNECT] = "connect",
        [REDISW_CAUSE_ASKED] = "asked",
    };

    return (unsigned)c < REDISW_CAUSE_N ? names[c] : "unknown";
}

/* ---- small helpers ---- */

static uint64_t now_ms(const struct redisw *src)
{
    return src->ops->now_us(src->arg) / 1000u;
}

static char *dup_or_null(const char *s, int *failed)
{
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        *failed = 1;
    return d;
}

/* xorshift64*: jitter only, seeded by the owner. */
static uint64_t rw_rand(struct redisw *src)
{
    uint64_t x = src->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    src->rng = x;
    return x * UINT64_C(2685821657736338717);
}

/*
 * Backoff before connection attempt number <fails> + 1: backoff_min_ms
 * doubled per consecutive failure up to backoff_max_ms, then drawn uniformly
 * in [d/2, d] so that a fleet restarted together does not reconnect in step.
 */
static uint64_t backoff_ms(struct redisw *src, unsigned fails)
{
    uint64_t d = src->conf.backoff_min_ms;
    unsigned i;

    for (i = 1; i < fails && d < src->conf.backoff_max_ms; i++)
        d *= 2;
    if (d > src->conf.backoff_max_ms)
        d = src->conf.backoff_max_ms;
    return d / 2 + rw_rand(src) % (d / 2 + 1);
}

/* "{prefix}:route:{route}:{what}" into <buf>. Returns its length or -1. */
static int route_key(const struct redisw *src, const char *route, const char *what, char *buf,
                     size_t len)
{
    int n = snprintf(buf, len, "%s:route:%s:%s", src->prefix, route, what);

    return n < 0 || (size_t)n >= len ? -1 : n;
}

/* ---- connections ---- */

static void conn_init(struct rw_conn *c, struct redisw *src, const char *name, int is_sub)
{
    memset(c, 0, sizeof(*c));
    c->src = src;
    c->name = name;
    c->is_sub = is_sub;
    c->state = RW_IDLE;
    c->retry_ms = 0; /* connect on the first tick */
    c->out.next = c->out.prev = &c->out;
}

static int conn_has_out(const struct rw_conn *c)
{
    return c->out.next != &c->out;
}

static void cmd_unlink(struct rw_cmd *cmd)
{
    if (cmd->next != NULL) {
        cmd->prev->next = cmd->next;
        cmd->next->prev = cmd->prev;
        cmd->next = cmd->prev = NULL;
    }
}

static void report(struct redisw *src, enum redisw_event ev, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(struct redisw *src, enum redisw_event ev, const char *fmt, ...)
{
    char detail[512];
    va_list ap;

    if (src->ops->on_event == NULL || src->closing)
        return;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    src->ops->on_event(src->arg, ev, detail);
}

/* The connection is gone (its context already freed or being freed by
 * hiredis): go IDLE and schedule the next attempt. */
static void conn_failed(struct rw_conn *c, uint64_t now, const char *why)
{
    struct redisw *src = c->src;
    uint64_t delay;

    c->ac = NULL;
    c->drop = 0;
    c->state = RW_IDLE;
    c->state_ms = now;
    c->fails++;
    delay = backoff_ms(src, c->fails);
    c->retry_ms = now + delay;
    if (!c->is_sub)
        src->round_pending = 0; /* the replies of that re-read will not come */
    report(src, c->is_sub ? REDISW_EV_SUB_DOWN : REDISW_EV_CMD_DOWN,
           "redis %s:%u (%s connection): %s; retrying in %llu ms (attempt %u)", src->host,
           (unsigned)src->conf.port, c->name, why, (unsigned long long)delay, c->fails + 1);
    if (!src->closing)
        src->ops->wake(src->arg);
}

/* Closes the connection now. Not from a hiredis callback of its context. */
static void conn_close(struct rw_conn *c, uint64_t now, const char *why)
{
    redisAsyncContext *ac = c->ac;

    c->ac = NULL; /* our disconnect callback ignores contexts we no longer own */
    if (ac != NULL)
        redisAsyncFree(ac); /* runs pending callbacks with NULL replies */
    conn_failed(c, now, why);
}

/* From a callback: asks the next tick to close the connection. */
__attribute__((format(printf, 2, 3))) static void conn_drop(struct rw_conn *c, const char *fmt, ...)
{
    va_list ap;

    if (c->drop)
        return; /* the first reason is the one that matters */
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof(c->why), fmt, ap);
    va_end(ap);
    c->drop = 1;
    if (!c->src->closing)
        c->src->ops->wake(c->src->arg);
}

/*
 * Sends one command on <c> with a struct rw_cmd as privdata. <route> may be
 * NULL. Returns 0, or -1 if nothing was sent (no context, out of memory, or
 * hiredis refuses because the context is going away).
 */
static int conn_send(struct rw_conn *c, enum rw_kind kind, const char *route,
                     enum redisw_cause cause, uint64_t t0_us, int argc, const char **argv,
                     const size_t *argvlen)
{
    size_t rlen = route != NULL ? strlen(route) : 0;
    struct rw_cmd *cmd;

    if (c->ac == NULL)
        return -1;
    cmd = malloc(sizeof(*cmd) + rlen + 1);
    if (cmd == NULL)
        return -1;
    cmd->conn = c;
    cmd->kind = kind;
    cmd->cause = cause;
    cmd->t0_us = t0_us;
    cmd->round = c->src->round;
    cmd->tag = 0;
    cmd->sent_ms = now_ms(c->src);
    if (rlen > 0)
        memcpy(cmd->route, route, rlen);
    cmd->route[rlen] = '\0';
    /* link first: hiredis never calls back from inside redisAsyncCommandArgv */
    cmd->prev = c->out.prev;
    cmd->next = &c->out;
    c->out.prev->next = cmd;
    c->out.prev = cmd;
    if (redisAsyncCommandArgv(c->ac, cmd_cb, cmd, argc, argv, argvlen) != REDIS_OK) {
        cmd_unlink(cmd);
        free(cmd);
        return -1;
    }
    return 0;
}

static void sub_cb(redisAsyncContext *ac, void *r, void *priv);

static int conn_subscribe(struct rw_conn *c)
{
    const char *argv[2] = {"SUBSCRIBE", c->src->events_key};

    if (c->ac == NULL)
        return -1;
    /* not an rw_cmd: hiredis keeps this callback for every message; the
     * handshake timeout covers the confirmation */
    return redisAsyncCommandArgv(c->ac, sub_cb, c, 2, argv, NULL) == REDIS_OK ? 0 : -1;
}

static void on_connect_cb(const redisAsyncContext *ac, int status)
{
    struct rw_conn *c = ac->data;
    char why[RW_WHY_MAX];

    if (c == NULL || c->ac != ac)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context when we return */
        snprintf(why, sizeof(why), "connect failed: %s", ac->errstr);
        conn_failed(c, now_ms(c->src), why);
        return;
    }
    c->state = RW_HANDSHAKE;
    c->state_ms = now_ms(c->src);
}

static void on_disconnect_cb(const redisAsyncContext *ac, int status)
{
    struct rw_conn *c = ac->data;
    char why[RW_WHY_MAX];

    if (c == NULL || c->ac != ac)
        return;
    /* hiredis frees the context when we return */
    if (status == REDIS_OK || ac->errstr[0] == '\0')
        snprintf(why, sizeof(why), "connection closed");
    else
        snprintf(why, sizeof(why), "connection lost: %s", ac->errstr);
    conn_failed(c, now_ms(c->src), why);
}

static void conn_connect(struct rw_conn *c, uint64_t now)
{
    struct redisw *src = c->src;
    redisAsyncContext *ac;
    char why[RW_WHY_MAX];
    int rc = 0;

    ac = redisAsyncConnect(src->host, (int)src->conf.port);
    if (ac == NULL) {
        conn_failed(c, now, "connect: out of memory");
        return;
    }
    if (ac->err) {
        snprintf(why, sizeof(why), "connect failed: %s", ac->errstr);
        redisAsyncFree(ac);
        conn_failed(c, now, why);
        return;
    }
    ac->data = c;
    if (src->attach(ac, src->loop) != 0) {
        redisAsyncFree(ac);
        conn_failed(c, now, "cannot attach to the event loop");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect_cb);
    redisAsyncSetDisconnectCallback(ac, on_disconnect_cb);
    redisEnableKeepAlive(&ac->c); /* a silent peer on the subscriber is noticed */
    c->ac = ac;
    c->state = RW_CONNECTING;
    c->state_ms = now;
    c->drop = 0;

    /* Handshake commands are buffered by hiredis until the socket connects. */
    if (src->password != NULL) {
        const char *argv[3] = {"AUTH", src->username, src->password};

        if (src->username != NULL)
            rc = conn_send(c, RWK_AUTH, NULL, REDISW_CAUSE_CONNECT, 0, 3, argv, NULL);
        else
            rc = conn_send(c, RWK_AUTH, NULL, REDISW_CAUSE_CONNECT, 0, 2,
                           (const char *[]){"AUTH", src->password}, NULL);
    }
    if (rc == 0 && !c->is_sub) {
        char db[16];

        snprintf(db, sizeof(db), "%d", src->conf.db);
        rc = conn_send(c, RWK_SELECT, NULL, REDISW_CAUSE_CONNECT, 0, 2,
                       (const char *[]){"SELECT", db}, NULL);
    } else if (rc == 0 && src->password == NULL) {
        rc = conn_subscribe(c);
    }
    if (rc != 0)
        conn_close(c, now, "cannot queue the handshake");
}

/* ---- reading ---- */

static const struct snap_route *find_route(const struct redisw *src, const char *name, size_t len)
{
    size_t i;

    if (src->snap == NULL)
        return NULL;
    for (i = 0; i < src->snap->n_routes; i++) {
        const struct snap_route *r = &src->snap->routes[i];

        if (strlen(r->name) == len && memcmp(r->name, name, len) == 0)
            return r;
    }
    return NULL;
}

/*
 * HGETALL of the guard (when asked for) and then the weights of <route>. The
 * guard comes first: replies come in order, so a latch read from Redis is in
 * place before the weights of the same read are applied, and a re-arm before
 * the candidate's new weight. Returns 0 if the weights read was sent.
 */
static int read_route(struct redisw *src, const char *route, enum redisw_cause cause,
                      uint64_t t0_us)
{
    char key[RW_KEY_MAX], gkey[RW_KEY_MAX];

    if (src->cmd.state != RW_READY || src->cmd.drop)
        return -1;
    if (route_key(src, route, "weights", key, sizeof(key)) < 0)
        return -1;
    if (src->ops->on_guard != NULL && route_key(src, route, "guard", gkey, sizeof(gkey)) >= 0)
        conn_send(&src->cmd, RWK_GUARD, route, cause, t0_us, 2, (const char *[]){"HGETALL", gkey},
                  NULL);
    return conn_send(&src->cmd, RWK_WEIGHTS, route, cause, t0_us, 2,
                     (const char *[]){"HGETALL", key}, NULL);
}

static void read_all(struct redisw *src, enum redisw_cause cause)
{
    uint64_t t0 = src->ops->now_us(src->arg);
    size_t i, sent = 0;

    if (src->cmd.state != RW_READY || src->cmd.drop || src->snap == NULL)
        return;
    src->round++;
    src->next_poll_ms = t0 / 1000u + src->conf.poll_ms;
    for (i = 0; i < src->snap->n_routes; i++)
        if (read_route(src, src->snap->routes[i].name, cause, t0) == 0)
            sent++;
    src->round_pending = sent;
    if (sent == 0)
        report(src, REDISW_EV_SYNCED, "no routes to read");
}

void redisw_reread(struct redisw *src, const char *route)
{
    if (src == NULL)
        return;
    if (route == NULL)
        read_all(src, REDISW_CAUSE_ASKED);
    else if (find_route(src, route, strlen(route)) != NULL)
        read_route(src, route, REDISW_CAUSE_ASKED, src->ops->now_us(src->arg));
}

/*
 * Checks that <reply> is an array of string pairs, as HGETALL answers.
 * Returns the number of pairs or -1.
 */
static long hash_pairs(const redisReply *reply)
{
    size_t i;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0)
        return -1;
    for (i = 0; i < reply->elements; i++)
        if (reply->element[i] == NULL || reply->element[i]->type != REDIS_REPLY_STRING)
            return -1;
    return (long)(reply->elements / 2);
}

/* Points <h> at the first <n> pairs of <reply> (n <= CONF_MAX_TRACKS). */
struct rw_hash_buf {
    const char *f[CONF_MAX_TRACKS], *v[CONF_MAX_TRACKS];
    size_t fl[CONF_MAX_TRACKS], vl[CONF_MAX_TRACKS];
};

static void hash_view(const redisReply *reply, size_t n, struct rw_hash_buf *b,
                      struct redisw_hash *h)
{
    size_t i;

    for (i = 0; i < n; i++) {
        b->f[i] = reply->element[2 * i]->str;
        b->fl[i] = reply->element[2 * i]->len;
        b->v[i] = reply->element[2 * i + 1]->str;
        b->vl[i] = reply->element[2 * i + 1]->len;
    }
    h->fields = b->f;
    h->flen = b->fl;
    h->values = b->v;
    h->vlen = b->vl;
    h->n = n;
}

static void round_done(struct redisw *src, const struct rw_cmd *cmd)
{
    if (cmd->round != src->round || src->round_pending == 0)
        return;
    if (--src->round_pending == 0)
        report(src, REDISW_EV_SYNCED, "every route read (%s)", redisw_cause_name(cmd->cause));
}

static void on_weights_reply(struct rw_conn *c, const struct rw_cmd *cmd, const redisReply *reply)
{
    struct redisw *src = c->src;
    const struct snap_route *r = find_route(src, cmd->route, strlen(cmd->route));
    struct redisw_read rd = {cmd->route, cmd->cause, cmd->t0_us};
    uint32_t w[CONF_MAX_TRACKS];
    struct rw_hash_buf b;
    struct redisw_hash h;
    char err[512];
    long n;

    if (reply->type == REDIS_REPLY_ERROR) {
        if (!(reply->len >= 9 && memcmp(reply->str, "WRONGTYPE", 9) == 0)) {
            /* NOAUTH, LOADING, ...: nothing about the key; read again once reconnected */
            conn_drop(c, "HGETALL of route %s failed: %.*s", cmd->route, (int)reply->len,
                      reply->str);
            return;
        }
        snprintf(err, sizeof(err), "route %s: %s:route:%s:weights is not a hash", cmd->route,
                 src->prefix, cmd->route);
        if (r != NULL && src->ops->on_invalid != NULL)
            src->ops->on_invalid(src->arg, &rd, err, NULL);
        goto done;
    }
    n = hash_pairs(reply);
    if (n < 0) {
        conn_drop(c, "HGETALL of route %s: unexpected reply (type %d)", cmd->route, reply->type);
        return;
    }
    if (r == NULL)
        goto done; /* the route went away with a reload */
    if (n == 0) {
        if (src->ops->on_absent != NULL)
            src->ops->on_absent(src->arg, &rd);
        goto done;
    }
    if ((size_t)n > CONF_MAX_TRACKS) {
        hash_view(reply, CONF_MAX_TRACKS, &b, &h);
        snprintf(err, sizeof(err), "route %s: %ld fields, a route has at most %d tracks", r->name,
                 n, CONF_MAX_TRACKS);
        if (src->ops->on_invalid != NULL)
            src->ops->on_invalid(src->arg, &rd, err, &h);
        goto done;
    }
    hash_view(reply, (size_t)n, &b, &h);
    if (weights_from_hash(h.fields, h.flen, h.values, h.vlen, h.n, r, w, err, sizeof(err)) < 0) {
        if (src->ops->on_invalid != NULL)
            src->ops->on_invalid(src->arg, &rd, err, &h);
    } else if (src->ops->on_weights != NULL) {
        src->ops->on_weights(src->arg, &rd, w, &h);
    }
done:
    round_done(src, cmd); /* after the result: "synced" means applied */
}

static void on_guard_reply(struct rw_conn *c, const struct rw_cmd *cmd, const redisReply *reply)
{
    struct redisw *src = c->src;
    struct redisw_read rd = {cmd->route, cmd->cause, cmd->t0_us};
    const char *f[REDISW_GUARD_FIELDS_MAX], *v[REDISW_GUARD_FIELDS_MAX];
    size_t fl[REDISW_GUARD_FIELDS_MAX], vl[REDISW_GUARD_FIELDS_MAX], i;
    struct redisw_hash h;
    long n;

    if (reply->type == REDIS_REPLY_ERROR) {
        if (!(reply->len >= 9 && memcmp(reply->str, "WRONGTYPE", 9) == 0))
            conn_drop(c, "HGETALL of route %s guard failed: %.*s", cmd->route, (int)reply->len,
                      reply->str);
        return;
    }
    n = hash_pairs(reply);
    if (n < 0) {
        conn_drop(c, "HGETALL of route %s guard: unexpected reply (type %d)", cmd->route,
                  reply->type);
        return;
    }
    /* The guard hash has a bounded set of known fields. Past the bound, keep
     * "state" wherever it is: HGETALL's order is arbitrary for a hash Redis
     * stores as a table (a long "reason" makes it one), and a state cut off
     * by the bound would leave a follower unlatched. */
    size_t k = 0;
    for (i = 0; i < (size_t)n; i++) {
        const redisReply *fe = reply->element[2 * i];
        int is_state = fe->len == 5 && memcmp(fe->str, "state", 5) == 0;
        if (k == REDISW_GUARD_FIELDS_MAX - 1 && !is_state)
            continue; /* keep the last slot for "state" */
        if (k == REDISW_GUARD_FIELDS_MAX)
            break;
        f[k] = fe->str;
        fl[k] = fe->len;
        v[k] = reply->element[2 * i + 1]->str;
        vl[k] = reply->element[2 * i + 1]->len;
        k++;
    }
    h.fields = f;
    h.flen = fl;
    h.values = v;
    h.vlen = vl;
    h.n = k;
    if (find_route(src, cmd->route, strlen(cmd->route)) != NULL && src->ops->on_guard != NULL)
        src->ops->on_guard(src->arg, &rd, &h);
}

static void flush_queue(struct redisw *src);

static void conn_ready(struct rw_conn *c)
{
    struct redisw *src = c->src;

    struct rw_conn *other = c->is_sub ? &src->cmd : &src->sub;

    c->state = RW_READY;
    c->state_ms = now_ms(src);
    c->fails = 0;
    /* Redis answers again: the other connection need not sit out its backoff */
    if (other->state == RW_IDLE && other->retry_ms != UINT64_MAX && other->retry_ms > c->state_ms) {
        other->retry_ms = c->state_ms;
        other->fails = 0;
    }
    if (c->is_sub) {
        report(src, REDISW_EV_SUB_UP, "redis %s:%u: subscribed to %s", src->host,
               (unsigned)src->conf.port, src->events_key);
    } else {
        report(src, REDISW_EV_CMD_UP, "redis %s:%u: connected (db %d)", src->host,
               (unsigned)src->conf.port, src->conf.db);
        flush_queue(src);
    }
    /* (Re)connected or (re)subscribed: whatever happened meanwhile, read it all. */
    read_all(src, REDISW_CAUSE_CONNECT);
    src->ops->wake(src->arg);
}

static void cmd_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct rw_cmd *cmd = priv;
    struct rw_conn *c = cmd->conn;
    const redisReply *reply = r;
    int err;

    cmd_unlink(cmd);
    if (cmd->kind == RWK_EXEC && !c->src->closing && c->src->ops->on_written != NULL)
        c->src->ops->on_written(c->src->arg, cmd->route, cmd->tag,
                                reply != NULL && c->ac == ac && reply->type == REDIS_REPLY_ARRAY);
    if (reply == NULL || c->src->closing || c->ac != ac)
        goto out;
    err = reply->type == REDIS_REPLY_ERROR;
    switch (cmd->kind) {
    case RWK_AUTH:
        if (err)
            conn_drop(c, "AUTH refused: %.*s (check redis.username and redis.password)",
                      (int)reply->len, reply->str);
        else if (c->is_sub && conn_subscribe(c) != 0)
            conn_drop(c, "cannot send SUBSCRIBE");
        break;
    case RWK_SELECT:
        if (err)
            conn_drop(c, "SELECT %d refused: %.*s", c->src->conf.db, (int)reply->len, reply->str);
        else
            conn_ready(c);
        break;
    case RWK_WEIGHTS:
        on_weights_reply(c, cmd, reply);
        break;
    case RWK_GUARD:
        on_guard_reply(c, cmd, reply);
        break;
    case RWK_AUDIT:
        if (err)
            report(c->src, REDISW_EV_WRITE_FAILED, "XADD %s: %.*s", c->src->audit_key,
                   (int)reply->len, reply->str);
        break;
    case RWK_TX:
        break; /* a refused command inside MULTI makes EXEC fail: reported there */
    case RWK_EXEC:
        if (err || reply->type != REDIS_REPLY_ARRAY)
            report(c->src, REDISW_EV_WRITE_FAILED, "write-through of route %s failed: %.*s",
                   cmd->route, err ? (int)reply->len : 7, err ? reply->str : "aborted");
        break;
    case RWK_N:
        break;
    }
out:
    free(cmd);
}

/* The subscriber's callback: the SUBSCRIBE confirmation, then one call per message. */
static void sub_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct rw_conn *c = priv;
    struct redisw *src = c->src;
    const redisReply *reply = r;
    const redisReply *kind, *payload;
    size_t len;

    if (reply == NULL || src->closing || c->ac != ac)
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
        return;
    kind = reply->element[0];
    payload = reply->element[2];
    if (kind->type != REDIS_REPLY_STRING)
        return;
    if (kind->len == 9 && memcmp(kind->str, "subscribe", 9) == 0) {
        if (c->state != RW_READY)
            conn_ready(c);
        return;
    }
    if (!(kind->len == 7 && memcmp(kind->str, "message", 7) == 0) ||
        payload->type != REDIS_REPLY_STRING)
        return;
    /* the route name, tolerating the newline a shell pipe adds; "*" means every route */
    len = payload->len;
    while (len > 0 && (payload->str[len - 1] == '\n' || payload->str[len - 1] == '\r' ||
                       payload->str[len - 1] == ' '))
        len--;
    if (len == 1 && payload->str[0] == '*') {
        read_all(src, REDISW_CAUSE_EVENT);
    } else {
        const struct snap_route *rt = find_route(src, payload->str, len);

        if (rt != NULL)
            read_route(src, rt->name, REDISW_CAUSE_EVENT, src->ops->now_us(src->arg));
    }
}

/* ---- audit queue ---- */

static void pending_free(struct rw_pending *p)
{
    int i;

    if (p == NULL)
        return;
    if (p->argv != NULL)
        for (i = 0; i < p->argc; i++)
            free(p->argv[i]);
    free(p->argv);
    free(p->argvlen);
    free(p);
}

static struct rw_pending *pending_new(int argc, const char **argv)
{
    struct rw_pending *p = calloc(1, sizeof(*p));
    int i;

    if (p == NULL)
        return NULL;
    p->argc = argc;
    p->argv = calloc((size_t)argc, sizeof(*p->argv));
    p->argvlen = calloc((size_t)argc, sizeof(*p->argvlen));
    if (p->argv == NULL || p->argvlen == NULL)
        goto fail;
    for (i = 0; i < argc; i++) {
        p->argv[i] = strdup(argv[i]);
        if (p->argv[i] == NULL)
            goto fail;
        p->argvlen[i] = strlen(argv[i]);
    }
    return p;
fail:
    pending_free(p);
    return NULL;
}

static void flush_queue(struct redisw *src)
{
    while (src->q_head != NULL && src->cmd.state == RW_READY && !src->cmd.drop) {
        struct rw_pending *p = src->q_head;

        if (conn_send(&src->cmd, RWK_AUDIT, NULL, REDISW_CAUSE_ASKED, 0, p->argc,
                      (const char **)p->argv, p->argvlen) != 0)
            return;
        src->q_head = p->next;
        if (src->q_head == NULL)
            src->q_tail = NULL;
        src->q_len--;
        pending_free(p);
    }
}

int redisw_audit(struct redisw *src, const struct redisw_audit *a)
{
    const char *fixed[] = {
        "XADD",      src->audit_key,
        "MAXLEN",    "~",
        src->maxlen, "*",
        "route",     a->route != NULL ? a->route : "",
        "old",       a->old_w != NULL ? a->old_w : "",
        "new",       a->new_w != NULL ? a->new_w : "",
        "source",    a->source != NULL ? a->source : "",
        "reason",    a->reason != NULL ? a->reason : "",
        "result",    a->result != NULL ? a->result : "",
        "instance",  src->instance,
    };
    const char **argv;
    struct rw_pending *p;
    size_t n_fixed = sizeof(fixed) / sizeof(fixed[0]), n_extra = a->n_extra & ~(size_t)1;
    int argc, rc = 0;

    if (n_extra > 64)
        return -EINVAL;
    argc = (int)(n_fixed + n_extra);
    argv = malloc((size_t)argc * sizeof(*argv));
    if (argv == NULL)
        return -ENOMEM;
    memcpy(argv, fixed, sizeof(fixed));
    if (n_extra > 0)
        memcpy(argv + n_fixed, a->extra, n_extra * sizeof(*argv));

    if (src->q_head == NULL && src->cmd.state == RW_READY && !src->cmd.drop &&
        conn_send(&src->cmd, RWK_AUDIT, NULL, REDISW_CAUSE_ASKED, 0, argc, argv, NULL) == 0)
        goto out;
    /* not connected: keep it for later, bounded */
    p = pending_new(argc, argv);
    if (p == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if (src->q_len >= src->conf.queue_max && src->q_head != NULL) {
        struct rw_pending *old = src->q_head;

        src->q_head = old->next;
        if (src->q_head == NULL)
            src->q_tail = NULL;
        src->q_len--;
        pending_free(old);
        rc = -ENOBUFS;
    }
    if (src->q_tail != NULL)
        src->q_tail->next = p;
    else
        src->q_head = p;
    src->q_tail = p;
    src->q_len++;
out:
    free(argv);
    return rc;
}

/* ---- write-through ---- */

/* One command of a write-through transaction. */
struct rw_txcmd {
    int argc;
    const char **argv;
};

/* MULTI, <cmds> (the change), PUBLISH events route, EXEC tagged <tag>. */
static int write_tx(struct redisw *src, const char *route, const struct rw_txcmd *cmds,
                    size_t n_cmds, uint64_t tag)
{
    struct rw_conn *c = &src->cmd;
    size_t i;

    if (c->state != RW_READY || c->drop)
        return -ENOTCONN;
    if (conn_send(c, RWK_TX, route, REDISW_CAUSE_ASKED, 0, 1, (const char *[]){"MULTI"}, NULL))
        goto fail;
    for (i = 0; i < n_cmds; i++)
        if (cmds[i].argc > 0 &&
            conn_send(c, RWK_TX, route, REDISW_CAUSE_ASKED, 0, cmds[i].argc, cmds[i].argv, NULL))
            goto fail;
    if (conn_send(c, RWK_TX, route, REDISW_CAUSE_ASKED, 0, 3,
                  (const char *[]){"PUBLISH", src->events_key, route}, NULL) ||
        conn_send(c, RWK_EXEC, route, REDISW_CAUSE_ASKED, 0, 1, (const char *[]){"EXEC"}, NULL))
        goto fail;
    c->out.prev->tag = tag; /* the EXEC just linked at the tail */
    return 0;
fail:
    /* a half-sent MULTI must not linger on this connection */
    conn_drop(c, "write-through of route %s could not be sent", route);
    return -ENOMEM;
}

/* Fills <argv> with HSET <key> track w ... and <new_w> with "a=1,b=2". Returns argc or -1. */
static int weights_argv(const char *key, const char *const *track, const uint32_t *w, size_t n,
                        const char **argv, char (*num)[16], char *new_w, size_t new_len)
{
    size_t i, o = 0;

    argv[0] = "HSET";
    argv[1] = key;
    new_w[0] = '\0';
    for (i = 0; i < n; i++) {
        if (track[i] == NULL)
            return -1;
        snprintf(num[i], 16, "%u", (unsigned)w[i]);
        argv[2 + 2 * i] = track[i];
        argv[3 + 2 * i] = num[i];
        if (o < new_len) {
            int m = snprintf(new_w + o, new_len - o, "%s%s=%s", i ? "," : "", track[i], num[i]);
            o += m > 0 ? (size_t)m : 0;
        }
    }
    return (int)(2 + 2 * n);
}

int redisw_write_weights(struct redisw *src, const char *route, const char *const *track,
                         const uint32_t *w, size_t n, const char *source, const char *reason)
{
    char key[RW_KEY_MAX], num[CONF_MAX_TRACKS][16], new_w[512];
    const char *argv[2 + 2 * CONF_MAX_TRACKS];
    struct rw_txcmd tx[2];
    int rc, argc;

    if (route == NULL || n > CONF_MAX_TRACKS || (n > 0 && (track == NULL || w == NULL)) ||
        route_key(src, route, "weights", key, sizeof(key)) < 0)
        return -EINVAL;
    argc = weights_argv(key, track, w, n, argv, num, new_w, sizeof(new_w));
    if (argc < 0)
        return -EINVAL;
    /* DEL first: the hash is the whole split, a track left out must not keep an old value */
    tx[0] = (struct rw_txcmd){2, (const char *[]){"DEL", key}};
    tx[1] = (struct rw_txcmd){n > 0 ? argc : 0, argv};
    rc = write_tx(src, route, tx, 2, 0);
    if (rc == 0) {
        struct redisw_audit a = {route, "", n > 0 ? new_w : "(deleted)", source, reason, "written",
                                 NULL,  0};
        redisw_audit(src, &a);
    }
    return rc;
}

/* argv of HSET {prefix}:route:{route}:guard f v ... into <argv>; argc or -1. */
static int guard_argv(const char *key, const char *const *fields, const char *const *values,
                      size_t n, const char **argv)
{
    size_t i;

    if (n == 0 || n > REDISW_GUARD_FIELDS_MAX || fields == NULL || values == NULL)
        return -1;
    argv[0] = "HSET";
    argv[1] = key;
    for (i = 0; i < n; i++) {
        if (fields[i] == NULL || values[i] == NULL)
            return -1;
        argv[2 + 2 * i] = fields[i];
        argv[3 + 2 * i] = values[i];
    }
    return (int)(2 + 2 * n);
}

int redisw_write_guard(struct redisw *src, const char *route, const char *const *fields,
                       const char *const *values, size_t n, uint64_t tag)
{
    const char *argv[2 + 2 * REDISW_GUARD_FIELDS_MAX];
    struct rw_txcmd tx;
    char key[RW_KEY_MAX];
    int argc;

    if (route == NULL || route_key(src, route, "guard", key, sizeof(key)) < 0)
        return -EINVAL;
    argc = guard_argv(key, fields, values, n, argv);
    if (argc < 0)
        return -EINVAL;
    tx = (struct rw_txcmd){argc, argv};
    return write_tx(src, route, &tx, 1, tag);
}

int redisw_write_trip(struct redisw *src, const char *route, const char *const *track,
                      const uint32_t *w, size_t n, const char *const *fields,
                      const char *const *values, size_t n_fields, const char *reason, uint64_t tag)
{
    char wkey[RW_KEY_MAX], gkey[RW_KEY_MAX], num[CONF_MAX_TRACKS][16], new_w[512];
    const char *wargv[2 + 2 * CONF_MAX_TRACKS], *gargv[2 + 2 * REDISW_GUARD_FIELDS_MAX];
    struct rw_txcmd tx[3];
    int rc, wargc, gargc;

    if (route == NULL || n == 0 || n > CONF_MAX_TRACKS || track == NULL || w == NULL ||
        route_key(src, route, "weights", wkey, sizeof(wkey)) < 0 ||
        route_key(src, route, "guard", gkey, sizeof(gkey)) < 0)
        return -EINVAL;
    wargc = weights_argv(wkey, track, w, n, wargv, num, new_w, sizeof(new_w));
    gargc = guard_argv(gkey, fields, values, n_fields, gargv);
    if (wargc < 0 || gargc < 0)
        return -EINVAL;
    tx[0] = (struct rw_txcmd){2, (const char *[]){"DEL", wkey}};
    tx[1] = (struct rw_txcmd){wargc, wargv};
    tx[2] = (struct rw_txcmd){gargc, gargv};
    rc = write_tx(src, route, tx, 3, tag);
    if (rc == 0) {
        struct redisw_audit a = {route, "", new_w, "guard", reason, "written", NULL, 0};
        redisw_audit(src, &a);
    }
    return rc;
}

/* ---- lifecycle and tick ---- */

struct redisw *redisw_new(const struct redisw_conf *c, const struct redisw_ops *ops, void *arg,
                          redisw_attach_fn *attach, void *loop)
{
    struct redisw *src;
    int failed = 0;
    size_t len;

    if (c == NULL || c->host == NULL || c->prefix == NULL || c->instance == NULL || ops == NULL ||
        ops->now_us == NULL || ops->wake == NULL || attach == NULL)
        return NULL;
    src = calloc(1, sizeof(*src));
    if (src == NULL)
        return NULL;
    src->conf = *c;
    src->host = dup_or_null(c->host, &failed);
    src->prefix = dup_or_null(c->prefix, &failed);
    src->username = dup_or_null(c->username, &failed);
    src->password = dup_or_null(c->password, &failed);
    src->instance = dup_or_null(c->instance, &failed);
    len = strlen(c->prefix) + 16;
    src->events_key = malloc(len);
    src->audit_key = malloc(len);
    if (failed || src->events_key == NULL || src->audit_key == NULL) {
        redisw_free(src);
        return NULL;
    }
    snprintf(src->events_key, len, "%s:events", c->prefix);
    snprintf(src->audit_key, len, "%s:audit", c->prefix);
    src->conf.host = src->host;
    src->conf.prefix = src->prefix;
    src->conf.username = src->username;
    src->conf.password = src->password;
    src->conf.instance = src->instance;
    if (src->conf.poll_ms == 0)
        src->conf.poll_ms = 1000;
    if (src->conf.connect_timeout_ms == 0)
        src->conf.connect_timeout_ms = 1000;
    if (src->conf.command_timeout_ms == 0)
        src->conf.command_timeout_ms = 1000;
    if (src->conf.backoff_min_ms == 0)
        src->conf.backoff_min_ms = 100;
    if (src->conf.backoff_max_ms < src->conf.backoff_min_ms)
        src->conf.backoff_max_ms =
            src->conf.backoff_min_ms > 5000 ? src->conf.backoff_min_ms : 5000;
    if (src->conf.audit_maxlen == 0)
        src->conf.audit_maxlen = 10000;
    if (src->conf.queue_max == 0)
        src->conf.queue_max = 1000;
    snprintf(src->maxlen, sizeof(src->maxlen), "%u", src->conf.audit_maxlen);
    src->rng = c->seed != 0 ? c->seed : UINT64_C(0x9e3779b97f4a7c15);
    src->ops = ops;
    src->arg = arg;
    src->attach = attach;
    src->loop = loop;
    conn_init(&src->cmd, src, "cmd", 0);
    conn_init(&src->sub, src, "sub", 1);
    if (!c->pubsub)
        src->sub.retry_ms = UINT64_MAX; /* never */
    return src;
}

void redisw_free(struct redisw *src)
{
    struct rw_conn *conns[2];
    size_t i;

    if (src == NULL)
        return;
    src->closing = 1;
    conns[0] = &src->sub;
    conns[1] = &src->cmd;
    for (i = 0; i < 2; i++) {
        redisAsyncContext *ac = conns[i]->ac;

        conns[i]->ac = NULL;
        if (ac != NULL)
            redisAsyncFree(ac);
    }
    while (src->q_head != NULL) {
        struct rw_pending *p = src->q_head;

        src->q_head = p->next;
        pending_free(p);
    }
    snap_unref(src->snap);
    free(src->host);
    free(src->prefix);
    free(src->username);
    free(src->password);
    free(src->instance);
    free(src->events_key);
    free(src->audit_key);
    free(src);
}

void redisw_set_snap(struct redisw *src, struct snap *s)
{
    struct snap *old = src->snap;

    src->snap = s != NULL ? snap_ref(s) : NULL;
    snap_unref(old);
}

int redisw_is_up(const struct redisw *src)
{
    return src != NULL && src->cmd.state == RW_READY && !src->cmd.drop;
}

static void conn_tick(struct rw_conn *c, uint64_t now)
{
    const struct redisw_conf *cf = &c->src->conf;
    char why[RW_WHY_MAX];

    if (c->is_sub && !cf->pubsub)
        return;
    if (c->drop) {
        snprintf(why, sizeof(why), "%s", c->why);
        conn_close(c, now, why);
        return;
    }
    switch (c->state) {
    case RW_IDLE:
        if (now >= c->retry_ms)
            conn_connect(c, now);
        break;
    case RW_CONNECTING:
        if (now >= c->state_ms + cf->connect_timeout_ms) {
            snprintf(why, sizeof(why), "connect timed out after %u ms", cf->connect_timeout_ms);
            conn_close(c, now, why);
        }
        break;
    case RW_HANDSHAKE:
        if (now >= c->state_ms + cf->command_timeout_ms) {
            snprintf(why, sizeof(why), "no answer to %s within %u ms",
                     c->is_sub ? "AUTH/SUBSCRIBE" : "AUTH/SELECT", cf->command_timeout_ms);
            conn_close(c, now, why);
        }
        break;
    case RW_READY:
        if (conn_has_out(c) && now >= c->out.next->sent_ms + cf->command_timeout_ms) {
            snprintf(why, sizeof(why), "no reply within %u ms", cf->command_timeout_ms);
            conn_close(c, now, why);
        }
        break;
    case RW_N_STATES:
        break;
    }
}

void redisw_tick(struct redisw *src, uint64_t now)
{
    if (src == NULL)
        return;
    conn_tick(&src->cmd, now);
    conn_tick(&src->sub, now);
    if (src->cmd.state == RW_READY && !src->cmd.drop && now >= src->next_poll_ms) {
        /* a slow Redis still busy with the last full read gets no second one on top; the
         * command timeout deals with one that does not answer at all */
        if (src->round_pending == 0)
            read_all(src, REDISW_CAUSE_POLL);
        else
            src->next_poll_ms = now + src->conf.poll_ms;
    }
}

static uint64_t conn_deadline(const struct rw_conn *c)
{
    const struct redisw_conf *cf = &c->src->conf;

    if (c->is_sub && !cf->pubsub)
        return UINT64_MAX;
    if (c->drop)
        return 0;
    switch (c->state) {
    case RW_IDLE:
        return c->retry_ms;
    case RW_CONNECTING:
        return c->state_ms + cf->connect_timeout_ms;
    case RW_HANDSHAKE:
        return c->state_ms + cf->command_timeout_ms;
    case RW_READY:
        return conn_has_out(c) ? c->out.next->sent_ms + cf->command_timeout_ms : UINT64_MAX;
    case RW_N_STATES:
        break;
    }
    return UINT64_MAX;
}

uint64_t redisw_next_deadline(const struct redisw *src)
{
    uint64_t d, s;

    if (src == NULL)
        return UINT64_MAX;
    d = conn_deadline(&src->cmd);
    s = conn_deadline(&src->sub);
    if (s < d)
        d = s;
    if (src->cmd.state == RW_READY && src->next_poll_ms < d)
        d = src->next_poll_ms;
    return d;
}
