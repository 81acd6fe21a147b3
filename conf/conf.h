/*
 * conf.h: the configuration of cutover as plain structs.
 *
 * conf/load.c is the only file that includes <libconfig.h>. It turns a file
 * into a `struct conf` whose every string is heap-allocated and owned by the
 * struct; conf_free() releases it all. routing/ and proxy/ only read these
 * structs.
 */
#ifndef CUTOVER_CONF_H
#define CUTOVER_CONF_H

#include <stddef.h>
#include <stdint.h>

#define CONF_MAX_TRACKS 8          /* tracks per route */
#define CONF_MAX_SERVERS 64        /* servers per track */
#define CONF_MAX_WEIGHT 1000000u   /* a weight above this is refused */
#define CONF_ADDR_HOSTLEN 64

/* A numeric "host:port" address: IPv4 literal, "[v6]:port", or "localhost" /
 * "*" (0.0.0.0) for convenience. Resolved at load time; no DNS. */
struct conf_addr {
    char host[CONF_ADDR_HOSTLEN]; /* numeric, as written (v6 without brackets) */
    uint16_t port;
    int family;                   /* AF_INET or AF_INET6 */
};

struct conf_listen {
    struct conf_addr addr;
    char *address;  /* as written */
    int tls;        /* 1 when a tls block is present */
    char *cert;     /* PEM chain path, tls only */
    char *key;      /* PEM key path, tls only */
    int line;       /* in the file, for messages */
};

struct conf_admin {
    int enabled;        /* 1 when an admin block is present */
    struct conf_addr addr;
    char *address;
    char *token_file;   /* NULL: no token */
};

struct conf_redis {
    int enabled;        /* 1 when a redis block is present */
    struct conf_addr addr;
    char *address;
    char *prefix;       /* default "cutover" */
    char *username;     /* NULL: none (ACL user) */
    char *password;     /* NULL: none */
    int db;             /* default 0 */
    unsigned poll_ms;   /* default 1000 */
    int pubsub;         /* default 1; 0 polls only */
    char *instance;     /* default NULL: host:pid */
};

struct conf_timeouts {
    unsigned connect_ms;  /* upstream connect, default 1000 */
    unsigned header_ms;   /* client request head, default 10000 */
    unsigned idle_ms;     /* idle client connection, default 60000 */
    unsigned upstream_ms; /* upstream response head, and between body reads, default 30000 */
    unsigned drain_ms;    /* graceful stop, default 10000 */
    unsigned upstream_idle_ms; /* idle pooled upstream connection, default 30000 */
};

struct conf_limits {
    unsigned max_header_size;   /* bytes of a request head, default 16384 (431 over) */
    unsigned max_headers;       /* header fields, default 100 (431 over) */
    unsigned max_request_line;  /* bytes of the request line / :path, default 8192 (414 over) */
    unsigned max_body_size;     /* bytes of a request body, 0 = unlimited (default), 413 over */
    unsigned max_concurrent_streams; /* h2, default 128 */
    unsigned max_connections;   /* client connections per worker, default 10000 */
    unsigned max_upstream_conns; /* per server per worker, default 256 */
};

struct conf_track {
    char *name;
    unsigned weight;
    char **servers;          /* as written */
    struct conf_addr *addrs; /* parsed, same order */
    size_t n_servers;
    int line;
};

struct conf_guard {
    int enabled;
    char *baseline;          /* track name */
    char *candidate;         /* track name */
    unsigned window_ms;      /* default 10000 */
    unsigned min_requests;   /* default 20 */
    double max_error_rate;   /* default 0.05 */
    double max_p99_ratio;    /* default 2.0 */
    char *action;            /* "snapback" (default) */
    /* statistics (GUARD.md); defaults shown */
    double h;                /* 13.8: CUSUM trip level (ln 10^6) */
    unsigned fast_failures;  /* 5: consecutive candidate failures that snap back at once; 0 off */
    unsigned warmup_ms;      /* 10000 */
    unsigned warmup_requests; /* 50 */
    /* retry shield: idempotent requests that failed on the candidate go once to the baseline */
    int shield;              /* 1 */
    char *shield_methods;    /* "GET,HEAD,OPTIONS" */
    unsigned retry_budget_percent; /* 20: of requests in flight on the worker */
    unsigned retry_budget_min;     /* 3 */
    int line;
};

/* Active health checks of every server of a route. */
struct conf_health {
    int enabled;             /* 1 when the block is present */
    char *path;              /* "/health" */
    unsigned interval_ms;    /* 2000 */
    unsigned timeout_ms;     /* 1000 */
    unsigned rise;           /* 2: successes to become healthy */
    unsigned fall;           /* 3: failures to become unhealthy */
    int line;
};

/* Passive outlier ejection of servers inside a track (per worker). */
struct conf_outlier {
    unsigned consecutive_failures; /* 5; 0 disables */
    unsigned base_ejection_ms;     /* 10000, doubled per repeated ejection */
    unsigned max_ejection_ms;      /* 300000 */
    unsigned max_ejected_percent;  /* 50: of a track's servers; never the last one */
};

struct conf_route {
    char *name;
    char *host;        /* "*" (default), "example.com" or "*.example.com" */
    char *path_prefix; /* default "/" */
    struct conf_track tracks[CONF_MAX_TRACKS];
    size_t n_tracks;
    char *sticky_cookie;   /* NULL: none */
    char *sticky_header;   /* NULL: none */
    char *override_header; /* NULL: none */
    char *override_cookie; /* NULL: none */
    struct conf_guard guard;
    struct conf_health health;
    struct conf_outlier outlier;
    int line;
};

struct conf {
    char *path;        /* file loaded */
    unsigned workers;  /* 0 in the file means number of CPUs; resolved at load */
    struct conf_listen *listens;
    size_t n_listens;
    struct conf_admin admin;
    struct conf_redis redis;
    struct conf_timeouts timeouts;
    struct conf_limits limits;
    struct conf_route *routes;
    size_t n_routes;
    char *access_log;  /* NULL: off; "-" stdout; else a path */
    double access_log_sample; /* share of exchanges logged, 0..1, default 1 */
    char *error_log;   /* NULL: stderr */
    char *log_level;   /* "err", "warn", "info" (default), "debug" */
};

/*
 * Loads <path>. Returns a new conf (free with conf_free) or NULL with a
 * message "file:line: what is wrong" in <err>. The result is validated
 * (conf_validate) before it is returned.
 *
 * Unknown keys, wrong types and out-of-range values are errors; absent keys
 * take the defaults above. Relative paths in the file (TLS cert/key,
 * token_file, logs) are relative to the process's working directory.
 * libconfig 1.5 truncates integer literals beyond 32 bits, so such literals
 * without an L suffix are refused (5000000000L is accepted). The first
 * error wins.
 */
struct conf *conf_load(const char *path, char *err, size_t errlen);

/*
 * Semantic checks on a parsed conf: unique route and track names, guard
 * tracks exist, weights in range and not all zero, at least one listener,
 * at least one server per track, cert/key readable. Returns 0 or -1 with a
 * message in <err>. Pure but for stat(2)/access(2) on the TLS and token files.
 *
 * Also checks, for structs built by hand: names, host and path_prefix
 * syntax, listener/admin/redis/server address strings (the parsed addr
 * fields may be left zero), duplicate listeners, two routes with the same
 * match, sticky with both cookie and header, log_level, guard action,
 * token_file readable. Messages read "<c->path>:<line>: ..." using the line
 * fields above (1 where the struct has none). Scalar ranges (timeouts,
 * limits, guard numbers) are the loader's job and are not re-checked.
 */
int conf_validate(const struct conf *c, char *err, size_t errlen);

/* Parses "host:port" (see struct conf_addr). Returns 0 or -1. */
int conf_parse_addr(const char *s, struct conf_addr *out);

struct sockaddr_storage;

/* Fills <ss> (zeroed first) from <a>. Returns the address length, or 0 when
 * a->host is not a numeric address of a->family. */
unsigned conf_addr_sockaddr(const struct conf_addr *a, struct sockaddr_storage *ss);

void conf_free(struct conf *c);

#endif
