/*
 * snap.h: the immutable routing snapshot.
 *
 * A snapshot holds everything a worker needs to route a request: routes,
 * their match rules, tracks, servers and the weights in force with their
 * source. It is built from a conf (snap_from_conf) and replaced whole when
 * weights or the config change (snap_with_weights, or a new snap_from_conf).
 * Workers read the current one through an atomic pointer and hold a reference
 * (snap_ref/snap_unref) for as long as an exchange routed with it lives.
 * Nothing in a snapshot changes after it is published.
 */
#ifndef CUTOVER_SNAP_H
#define CUTOVER_SNAP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../conf/conf.h"

enum weight_src {
    WSRC_CONFIG = 0,
    WSRC_REDIS,
    WSRC_ADMIN,
    WSRC_GUARD,
    WSRC_N
};

/* "config", "redis", "admin", "guard" */
const char *weight_src_name(enum weight_src s);

struct snap_server {
    struct conf_addr addr;
    char name[CONF_ADDR_HOSTLEN + 16]; /* "host:port" ("[v6]:port") */
    unsigned id;  /* index in snap->servers; stable for one snapshot only */
};

enum host_match {
    HOST_ANY = 0,    /* "*" */
    HOST_EXACT,      /* "example.com" */
    HOST_SUFFIX,     /* "*.example.com": any subdomain, not the apex */
    HOST_N
};

struct snap_track {
    char *name;
    uint32_t weight;       /* in force */
    uint32_t conf_weight;  /* from the config file */
    enum weight_src src;
    uint64_t since_ms;     /* when the weight in force was set */
    struct snap_server **servers; /* point into snap->servers */
    size_t n_servers;
};

struct snap_route {
    char *name;
    char *host;          /* lower case; for HOST_SUFFIX the part after "*" (".example.com") */
    size_t host_len;
    enum host_match host_kind;
    char *path_prefix;
    size_t prefix_len;
    struct snap_track tracks[CONF_MAX_TRACKS];
    size_t n_tracks;
    int candidate;       /* sticky first-level track, or -1 */
    int baseline;        /* guard baseline track, or -1 */
    char *sticky_cookie; /* NULL if none */
    char *sticky_header; /* lower case, NULL if none */
    char *override_header; /* lower case, NULL if none */
    char *override_cookie; /* NULL if none */
    struct conf_outlier outlier; /* passive ejection settings */
    int shield;            /* retry shield on (needs a guard: baseline and candidate) */
    char *shield_methods;  /* "GET,HEAD,OPTIONS", NULL when off */
    unsigned retry_budget_percent, retry_budget_min;
};

struct snap {
    atomic_uint refs;
    uint64_t generation; /* grows with every published snapshot */
    uint64_t conf_generation; /* grows with every config (re)load */
    struct snap_route *routes;
    size_t n_routes;
    struct snap_server *servers; /* all servers of all tracks, deduplicated by address */
    size_t n_servers;
    struct conf_timeouts timeouts; /* copied from the conf: reloads apply to new requests */
    struct conf_limits limits;
};

/*
 * Builds a snapshot from <c> with the config's weights, refcount 1. The
 * candidate of a route is its guard candidate, else a track named "canary",
 * else -1. Returns NULL on allocation failure, or when <c> cannot be
 * represented (a NULL name, more than CONF_MAX_TRACKS tracks).
 */
struct snap *snap_from_conf(const struct conf *c, uint64_t generation, uint64_t conf_generation,
                            uint64_t now_ms);

/*
 * Returns a copy of <old> (refcount 1, generation <generation>) where route
 * <route> has weights <w> (one per track, in track order) from source <src>.
 * Tracks whose weight changed get since_ms = <now_ms>. Returns NULL on
 * allocation failure. <old> is not modified.
 * Every track of <route> gets src = <src> (the vector came from there as a
 * whole); other routes keep theirs. NULL too if <route> is out of range.
 */
struct snap *snap_with_weights(const struct snap *old, size_t route, const uint32_t *w,
                               enum weight_src src, uint64_t generation, uint64_t now_ms);

/* Index of the route <name> or -1. */
int snap_route_index(const struct snap *s, const char *name);

/* Index of the track <name> (<len> bytes) in <r> or -1. */
int snap_track_index(const struct snap_route *r, const char *name, size_t len);

/*
 * Chooses the route for a request: routes whose host rule matches <host>
 * (compared case-insensitively, any ":port" suffix ignored), then the longest
 * path prefix matching <path>; on a tie an exact host beats a suffix which
 * beats "*", then config order. Returns the route index or -1 (404).
 * Refinements: a trailing dot on <host> is ignored; between two suffix rules
 * the longer suffix wins (nginx); prefixes are plain case-sensitive byte
 * prefixes, so "/api" matches "/api", "/api/x", "/api?q" and also "/apix"
 * (nginx prefix locations; write "/api/" to exclude it). Does not allocate.
 */
int snap_match(const struct snap *s, const char *host, size_t host_len, const char *path,
               size_t path_len);

static inline struct snap *snap_ref(struct snap *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

/* Drops a reference; frees the snapshot when it was the last. */
void snap_unref(struct snap *s);

#endif
