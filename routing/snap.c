/*
 * snap.c: building, copying, matching and releasing routing snapshots.
 *
 * A snapshot owns every byte it points to: strings are duplicated from the
 * conf (which may be freed once snap_from_conf returns), and track server
 * lists point into the snapshot's own deduplicated server array, which is
 * sized once and never reallocated. Building allocates; matching does not.
 */
#include "snap.h"

#include <arpa/inet.h> /* inet_pton only: a pure parser, no socket */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *weight_src_name(enum weight_src s)
{
    static const char *const names[WSRC_N] = {
        [WSRC_CONFIG] = "config",
        [WSRC_REDIS] = "redis",
        [WSRC_ADMIN] = "admin",
        [WSRC_GUARD] = "guard",
    };

    if ((unsigned)s >= WSRC_N)
        return "unknown";
    return names[s];
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* <a> (any case, <n> bytes) equals <lower> (already lower case, <n> bytes). */
static int ascii_case_eq(const char *a, const char *lower, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (ascii_lower(a[i]) != lower[i])
            return 0;
    return 1;
}

/* Duplicates the first <n> bytes of <s>, lower-cased when <lower>. */
static char *dup_n(const char *s, size_t n, int lower)
{
    char *d = malloc(n + 1);
    size_t i;

    if (d == NULL)
        return NULL;
    for (i = 0; i < n; i++)
        d[i] = lower ? ascii_lower(s[i]) : s[i];
    d[n] = '\0';
    return d;
}

/* *<dst> = copy of <src>, or NULL for NULL. Returns 0, or -1 out of memory. */
static int dup_opt(char **dst, const char *src, int lower)
{
    *dst = NULL;
    if (src == NULL)
        return 0;
    *dst = dup_n(src, strlen(src), lower);
    return *dst != NULL ? 0 : -1;
}

static void snap_route_fini(struct snap_route *r)
{
    size_t i;

    for (i = 0; i < CONF_MAX_TRACKS; i++) {
        free(r->tracks[i].name);
        free(r->tracks[i].servers);
    }
    free(r->name);
    free(r->host);
    free(r->path_prefix);
    free(r->sticky_cookie);
    free(r->sticky_header);
    free(r->override_header);
    free(r->override_cookie);
    free(r->shield_methods);
}

/* Frees a snapshot, complete or partly built (unset pointers are NULL). */
static void snap_free(struct snap *s)
{
    size_t i;

    if (s->routes != NULL)
        for (i = 0; i < s->n_routes; i++)
            snap_route_fini(&s->routes[i]);
    free(s->routes);
    free(s->servers);
    free(s);
}

/* A zeroed snapshot with room for <n_routes> routes and <max_servers> servers. */
static struct snap *snap_alloc(size_t n_routes, size_t max_servers)
{
    struct snap *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    atomic_init(&s->refs, 1);
    s->n_routes = n_routes;
    s->routes = calloc(n_routes > 0 ? n_routes : 1, sizeof(*s->routes));
    s->servers = calloc(max_servers > 0 ? max_servers : 1, sizeof(*s->servers));
    if (s->routes == NULL || s->servers == NULL) {
        snap_free(s);
        return NULL;
    }
    return s;
}

/*
 * The identity of a server for deduplication: family, port and the binary
 * address when the host is a numeric literal ("::1" and "0:0::1" are one
 * server), else the host name in lower case.
 */
struct srv_key {
    int family;
    uint16_t port;
    int numeric;
    unsigned char bin[16];
    char host[CONF_ADDR_HOSTLEN];
};

static void srv_key_init(struct srv_key *k, const struct conf_addr *a)
{
    size_t i;

    memset(k, 0, sizeof(*k));
    k->family = a->family;
    k->port = a->port;
    for (i = 0; i + 1 < CONF_ADDR_HOSTLEN && a->host[i] != '\0'; i++)
        k->host[i] = ascii_lower(a->host[i]);
    if ((a->family == AF_INET || a->family == AF_INET6) &&
        inet_pton(a->family, k->host, k->bin) == 1) {
        k->numeric = 1;
        memset(k->host, 0, sizeof(k->host));
    }
}

static int srv_key_eq(const struct srv_key *a, const struct srv_key *b)
{
    return a->family == b->family && a->port == b->port && a->numeric == b->numeric &&
           memcmp(a->bin, b->bin, sizeof(a->bin)) == 0 && strcmp(a->host, b->host) == 0;
}

/*
 * Returns the snap->servers entry for <a>, adding it if no server with the
 * same address is there yet. <keys> parallels snap->servers, whose capacity
 * the caller sized for every address of the conf.
 */
static struct snap_server *snap_intern_server(struct snap *s, struct srv_key *keys,
                                              const struct conf_addr *a)
{
    struct snap_server *srv;
    struct srv_key k;
    size_t i;

    srv_key_init(&k, a);
    for (i = 0; i < s->n_servers; i++)
        if (srv_key_eq(&keys[i], &k))
            return &s->servers[i];

    keys[i] = k;
    srv = &s->servers[i];
    srv->addr = *a;
    srv->addr.host[CONF_ADDR_HOSTLEN - 1] = '\0';
    srv->id = (unsigned)i;
    if (strchr(srv->addr.host, ':') != NULL) /* only IPv6 literals contain ':' */
        snprintf(srv->name, sizeof(srv->name), "[%s]:%u", srv->addr.host, srv->addr.port);
    else
        snprintf(srv->name, sizeof(srv->name), "%s:%u", srv->addr.host, srv->addr.port);
    s->n_servers++;
    return srv;
}

/*
 * "*" (or empty) matches any host; "*.example.com" any subdomain of
 * example.com, stored as ".example.com"; anything else exactly. Stored lower
 * case, without a trailing dot.
 */
static int route_set_host(struct snap_route *r, const char *host)
{
    size_t len = strlen(host);

    if (len > 0 && host[len - 1] == '.')
        len--;
    if (len == 0 || (len == 1 && host[0] == '*')) {
        r->host_kind = HOST_ANY;
        host = "*";
        len = 1;
    } else if (len > 2 && host[0] == '*' && host[1] == '.') {
        r->host_kind = HOST_SUFFIX;
        host++;
        len--;
    } else {
        r->host_kind = HOST_EXACT;
    }
    r->host = dup_n(host, len, 1);
    r->host_len = len;
    return r->host != NULL ? 0 : -1;
}

static int conf_track_index(const struct snap_route *r, const char *name)
{
    return name != NULL ? snap_track_index(r, name, strlen(name)) : -1;
}

static int snap_route_from_conf(struct snap *s, struct srv_key *keys, struct snap_route *r,
                                const struct conf_route *cr, uint64_t now_ms)
{
    const char *prefix = cr->path_prefix != NULL ? cr->path_prefix : "/";
    size_t j, k;

    r->name = dup_n(cr->name, strlen(cr->name), 0);
    r->path_prefix = dup_n(prefix, strlen(prefix), 0);
    if (r->name == NULL || r->path_prefix == NULL)
        return -1;
    r->prefix_len = strlen(prefix);
    if (route_set_host(r, cr->host != NULL ? cr->host : "*") < 0)
        return -1;

    r->n_tracks = cr->n_tracks;
    for (j = 0; j < cr->n_tracks; j++) {
        const struct conf_track *ct = &cr->tracks[j];
        struct snap_track *t = &r->tracks[j];

        t->name = dup_n(ct->name, strlen(ct->name), 0);
        t->servers = calloc(ct->n_servers > 0 ? ct->n_servers : 1, sizeof(*t->servers));
        if (t->name == NULL || t->servers == NULL)
            return -1;
        t->weight = ct->weight;
        t->conf_weight = ct->weight;
        t->src = WSRC_CONFIG;
        t->since_ms = now_ms;
        t->n_servers = ct->n_servers;
        for (k = 0; k < ct->n_servers; k++)
            t->servers[k] = snap_intern_server(s, keys, &ct->addrs[k]);
    }

    r->candidate = -1;
    r->baseline = -1;
    if (cr->guard.enabled) {
        r->candidate = conf_track_index(r, cr->guard.candidate);
        r->baseline = conf_track_index(r, cr->guard.baseline);
    }
    if (r->candidate < 0)
        r->candidate = conf_track_index(r, "canary");
    r->outlier = cr->outlier;
    r->shield = cr->guard.enabled && cr->guard.shield && r->baseline >= 0 && r->candidate >= 0;
    r->retry_budget_percent = cr->guard.retry_budget_percent;
    r->retry_budget_min = cr->guard.retry_budget_min;
    if (r->shield && dup_opt(&r->shield_methods, cr->guard.shield_methods, 0) < 0)
        return -1;

    if (dup_opt(&r->sticky_cookie, cr->sticky_cookie, 0) < 0 ||
        dup_opt(&r->sticky_header, cr->sticky_header, 1) < 0 ||
        dup_opt(&r->override_header, cr->override_header, 1) < 0 ||
        dup_opt(&r->override_cookie, cr->override_cookie, 0) < 0)
        return -1;
    return 0;
}

/* Structural checks that keep the build from reading out of bounds. */
static int conf_is_buildable(const struct conf *c, size_t *max_servers)
{
    size_t i, j;

    *max_servers = 0;
    if (c == NULL || (c->n_routes > 0 && c->routes == NULL))
        return 0;
    for (i = 0; i < c->n_routes; i++) {
        const struct conf_route *cr = &c->routes[i];

        if (cr->name == NULL || cr->n_tracks > CONF_MAX_TRACKS)
            return 0;
        for (j = 0; j < cr->n_tracks; j++) {
            const struct conf_track *ct = &cr->tracks[j];

            if (ct->name == NULL || (ct->n_servers > 0 && ct->addrs == NULL))
                return 0;
            *max_servers += ct->n_servers;
        }
    }
    return 1;
}

struct snap *snap_from_conf(const struct conf *c, uint64_t generation, uint64_t conf_generation,
                            uint64_t now_ms)
{
    struct srv_key *keys = NULL;
    struct snap *s = NULL;
    size_t i, max_servers;

    if (!conf_is_buildable(c, &max_servers))
        return NULL;
    s = snap_alloc(c->n_routes, max_servers);
    keys = malloc((max_servers > 0 ? max_servers : 1) * sizeof(*keys));
    if (s == NULL || keys == NULL)
        goto fail;
    s->generation = generation;
    s->conf_generation = conf_generation;
    s->timeouts = c->timeouts;
    s->limits = c->limits;
    for (i = 0; i < c->n_routes; i++)
        if (snap_route_from_conf(s, keys, &s->routes[i], &c->routes[i], now_ms) < 0)
            goto fail;
    free(keys);
    return s;

fail:
    free(keys);
    if (s != NULL)
        snap_free(s);
    return NULL;
}

static int snap_route_copy(struct snap *s, const struct snap *old, struct snap_route *r,
                           const struct snap_route *o)
{
    size_t j, k;

    r->host_len = o->host_len;
    r->host_kind = o->host_kind;
    r->prefix_len = o->prefix_len;
    r->n_tracks = o->n_tracks;
    r->candidate = o->candidate;
    r->baseline = o->baseline;
    r->outlier = o->outlier;
    r->shield = o->shield;
    r->retry_budget_percent = o->retry_budget_percent;
    r->retry_budget_min = o->retry_budget_min;
    if (dup_opt(&r->shield_methods, o->shield_methods, 0) < 0)
        return -1;
    if (dup_opt(&r->name, o->name, 0) < 0 || dup_opt(&r->host, o->host, 0) < 0 ||
        dup_opt(&r->path_prefix, o->path_prefix, 0) < 0 ||
        dup_opt(&r->sticky_cookie, o->sticky_cookie, 0) < 0 ||
        dup_opt(&r->sticky_header, o->sticky_header, 0) < 0 ||
        dup_opt(&r->override_header, o->override_header, 0) < 0 ||
        dup_opt(&r->override_cookie, o->override_cookie, 0) < 0)
        return -1;

    for (j = 0; j < o->n_tracks; j++) {
        const struct snap_track *ot = &o->tracks[j];
        struct snap_track *t = &r->tracks[j];

        t->weight = ot->weight;
        t->conf_weight = ot->conf_weight;
        t->src = ot->src;
        t->since_ms = ot->since_ms;
        t->n_servers = ot->n_servers;
        t->servers = calloc(ot->n_servers > 0 ? ot->n_servers : 1, sizeof(*t->servers));
        if (dup_opt(&t->name, ot->name, 0) < 0 || t->servers == NULL)
            return -1;
        for (k = 0; k < ot->n_servers; k++) /* same slot, new array */
            t->servers[k] = &s->servers[ot->servers[k] - old->servers];
    }
    return 0;
}

struct snap *snap_with_weights(const struct snap *old, size_t route, const uint32_t *w,
                               enum weight_src src, uint64_t generation, uint64_t now_ms)
{
    struct snap_route *r;
    struct snap *s;
    size_t i;

    if (old == NULL || w == NULL || route >= old->n_routes)
        return NULL;
    s = snap_alloc(old->n_routes, old->n_servers);
    if (s == NULL)
        return NULL;
    s->generation = generation;
    s->conf_generation = old->conf_generation;
    s->timeouts = old->timeouts;
    s->limits = old->limits;
    if (old->n_servers > 0)
        memcpy(s->servers, old->servers, old->n_servers * sizeof(*s->servers));
    s->n_servers = old->n_servers;
    for (i = 0; i < old->n_routes; i++) {
        if (snap_route_copy(s, old, &s->routes[i], &old->routes[i]) < 0) {
            snap_free(s);
            return NULL;
        }
    }

    /* The route's weights now come from <src> as a whole; since_ms dates each change. */
    r = &s->routes[route];
    for (i = 0; i < r->n_tracks; i++) {
        if (r->tracks[i].weight != w[i]) {
            r->tracks[i].weight = w[i];
            r->tracks[i].since_ms = now_ms;
        }
        r->tracks[i].src = src;
    }
    return s;
}

int snap_route_index(const struct snap *s, const char *name)
{
    size_t i;

    if (name == NULL)
        return -1;
    for (i = 0; i < s->n_routes; i++)
        if (strcmp(s->routes[i].name, name) == 0)
            return (int)i;
    return -1;
}

int snap_track_index(const struct snap_route *r, const char *name, size_t len)
{
    size_t j;

    if (name == NULL)
        return -1;
    for (j = 0; j < r->n_tracks; j++)
        if (strlen(r->tracks[j].name) == len && memcmp(r->tracks[j].name, name, len) == 0)
            return (int)j;
    return -1;
}

/*
 * How specifically route <r> matches the normalised <host>: 0 for no match,
 * then "*" < any suffix (longer suffixes first, as nginx prefers the longest
 * wildcard) < exact.
 */
static size_t host_rank(const struct snap_route *r, const char *host, size_t len)
{
    switch (r->host_kind) {
    case HOST_ANY:
        return 1;
    case HOST_SUFFIX:
        /* len > host_len: "*.example.com" wants a label before ".example.com" */
        if (len > r->host_len && ascii_case_eq(host + len - r->host_len, r->host, r->host_len))
            return 2 + r->host_len;
        return 0;
    case HOST_EXACT:
        return len == r->host_len && ascii_case_eq(host, r->host, len) ? SIZE_MAX : 0;
    case HOST_N:
        break;
    }
    return 0;
}

/*
 * Path prefixes are plain byte prefixes, case-sensitive, as nginx's prefix
 * locations: "/api" matches "/api", "/api/x", "/api?q" and also "/apix"
 * (write "/api/" to exclude the latter). <path> is matched as received,
 * query string included, without percent-decoding.
 */
int snap_match(const struct snap *s, const char *host, size_t host_len, const char *path,
               size_t path_len)
{
    size_t i, rank, best_len = 0, best_rank = 0;
    const char *end;
    int best = -1;

    /* Normalise the host without copying: drop ":port", keep "[v6]", drop a trailing dot. */
    if (host == NULL)
        host_len = 0;
    if (host_len > 0 && host[0] == '[') {
        end = memchr(host, ']', host_len);
        if (end != NULL)
            host_len = (size_t)(end - host) + 1;
    } else if (host_len > 0) {
        end = memchr(host, ':', host_len);
        if (end != NULL)
            host_len = (size_t)(end - host);
    }
    if (host_len > 0 && host[host_len - 1] == '.')
        host_len--;
    if (path == NULL)
        path_len = 0;

    for (i = 0; i < s->n_routes; i++) {
        const struct snap_route *r = &s->routes[i];

        rank = host_rank(r, host, host_len);
        if (rank == 0 || path_len < r->prefix_len ||
            (r->prefix_len > 0 && memcmp(path, r->path_prefix, r->prefix_len) != 0))
            continue;
        /* Longest prefix, then the more specific host; strict '>' keeps config order. */
        if (best < 0 || r->prefix_len > best_len ||
            (r->prefix_len == best_len && rank > best_rank)) {
            best = (int)i;
            best_len = r->prefix_len;
            best_rank = rank;
        }
    }
    return best;
}

void snap_unref(struct snap *s)
{
    if (s == NULL)
        return;
    /* acq_rel: the freeing thread sees every other holder's reads as done. */
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        snap_free(s);
}
