/*
 * test_snap.c: routing snapshots (routing/snap.c): building from a
 * hand-built conf, server deduplication, copies with new weights,
 * refcounting, and the route matching table.
 */
#include "../../routing/snap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tap.h"

/* ---- a hand-built conf, every string on the heap as conf/load.c makes it ---- */

static char *xstrdup(const char *s)
{
    char *d = s != NULL ? strdup(s) : NULL;

    if (s != NULL && d == NULL)
        abort();
    return d;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n > 0 ? n : 1, size);

    if (p == NULL)
        abort();
    return p;
}

/* "host:port" or "[v6]:port", trusted input. */
static void parse_addr(const char *s, struct conf_addr *a)
{
    const char *colon = strrchr(s, ':');
    size_t hlen;

    memset(a, 0, sizeof(*a));
    if (s[0] == '[') {
        hlen = (size_t)(colon - s - 2);
        memcpy(a->host, s + 1, hlen);
        a->family = AF_INET6;
    } else {
        hlen = (size_t)(colon - s);
        memcpy(a->host, s, hlen);
        a->family = AF_INET;
    }
    a->port = (uint16_t)atoi(colon + 1);
}

static struct conf_route *add_route(struct conf *c, const char *name, const char *host,
                                    const char *prefix)
{
    struct conf_route *r = &c->routes[c->n_routes++];

    r->name = xstrdup(name);
    r->host = xstrdup(host);
    r->path_prefix = xstrdup(prefix);
    return r;
}

/* <servers>: a NULL-terminated list */
static void add_track(struct conf_route *r, const char *name, unsigned weight,
                      const char *const *servers)
{
    struct conf_track *t = &r->tracks[r->n_tracks++];
    size_t n = 0, i;

    while (servers[n] != NULL)
        n++;
    t->name = xstrdup(name);
    t->weight = weight;
    t->n_servers = n;
    t->servers = xcalloc(n, sizeof(*t->servers));
    t->addrs = xcalloc(n, sizeof(*t->addrs));
    for (i = 0; i < n; i++) {
        t->servers[i] = xstrdup(servers[i]);
        parse_addr(servers[i], &t->addrs[i]);
    }
}

static struct conf *new_conf(size_t max_routes)
{
    struct conf *c = xcalloc(1, sizeof(*c));

    c->routes = xcalloc(max_routes, sizeof(*c->routes));
    return c;
}

/*
 * web  "*"              "/"     blue 90 [9001, 9002]  green 0 [9002]  canary 10 [9003, [::1]:9001]
 *                               sticky cookie, override header, guard blue -> canary
 * api  "*.Example.COM"  "/api"  stable 1 [9001]  next 1 [[0:0:0:0:0:0:0:1]:9001, 9004]
 *                               sticky header, no guard, no "canary"
 * beta "Beta.Example.com."  NULL  blue 5 [9005]  canary 5 [9005]  green 1 [9006]
 *                               guard enabled, candidate green (beats the "canary" name)
 * dflt NULL host        "/x"    canary 1 [localhost-ish 127.0.0.1:9001]
 */
static struct conf *sample_conf(void)
{
    static const char *const s12[] = {"127.0.0.1:9001", "127.0.0.1:9002", NULL};
    static const char *const s2[] = {"127.0.0.1:9002", NULL};
    static const char *const s3v6[] = {"127.0.0.1:9003", "[::1]:9001", NULL};
    static const char *const s1[] = {"127.0.0.1:9001", NULL};
    static const char *const sv6long[] = {"[0:0:0:0:0:0:0:1]:9001", "127.0.0.1:9004", NULL};
    static const char *const s5[] = {"127.0.0.1:9005", NULL};
    static const char *const s6[] = {"127.0.0.1:9006", NULL};
    struct conf *c = new_conf(4);
    struct conf_route *r;

    r = add_route(c, "web", "*", "/");
    add_track(r, "blue", 90, s12);
    add_track(r, "green", 0, s2);
    add_track(r, "canary", 10, s3v6);
    r->sticky_cookie = xstrdup("Cutover_ID");
    r->override_header = xstrdup("X-Cutover-Track");
    r->guard.enabled = 1;
    r->guard.baseline = xstrdup("blue");
    r->guard.candidate = xstrdup("canary");
    r->guard.action = xstrdup("snapback");

    r = add_route(c, "api", "*.Example.COM", "/api");
    add_track(r, "stable", 1, s1);
    add_track(r, "next", 1, sv6long);
    r->sticky_header = xstrdup("X-User-Id");
    r->override_cookie = xstrdup("Track");

    r = add_route(c, "beta", "Beta.Example.com.", NULL);
    add_track(r, "blue", 5, s5);
    add_track(r, "canary", 5, s5);
    add_track(r, "green", 1, s6);
    r->guard.enabled = 1;
    r->guard.baseline = xstrdup("blue");
    r->guard.candidate = xstrdup("green");

    r = add_route(c, "dflt", NULL, "/x");
    add_track(r, "canary", 1, s1);

    c->timeouts.connect_ms = 1111;
    c->timeouts.upstream_idle_ms = 2222;
    c->limits.max_headers = 77;
    c->limits.max_upstream_conns = 9;
    return c;
}

static int points_into(const struct snap *s, const struct snap_server *p)
{
    return p >= s->servers && p < s->servers + s->n_servers && p == &s->servers[p->id];
}

static int all_servers_inside(const struct snap *s)
{
    size_t i, j, k;

    for (i = 0; i < s->n_routes; i++)
        for (j = 0; j < s->routes[i].n_tracks; j++)
            for (k = 0; k < s->routes[i].tracks[j].n_servers; k++)
                if (!points_into(s, s->routes[i].tracks[j].servers[k]))
                    return 0;
    return 1;
}

static void test_from_conf(void)
{
    struct conf *c = sample_conf();
    struct snap *s = snap_from_conf(c, 5, 3, 1000);
    const struct snap_route *web, *api, *beta, *dflt;
    size_t i, j;
    int ids = 1, src = 1;

    conf_free(c); /* the snapshot must not point into the conf */
    ok(s != NULL, "snap_from_conf builds the sample conf");
    if (s == NULL)
        return;
    ok(atomic_load(&s->refs) == 1 && s->generation == 5 && s->conf_generation == 3,
       "refcount 1, generations as given");
    ok(s->n_routes == 4, "4 routes");
    web = &s->routes[0];
    api = &s->routes[1];
    beta = &s->routes[2];
    dflt = &s->routes[3];
    ok(strcmp(web->name, "web") == 0 && strcmp(api->name, "api") == 0 &&
           strcmp(beta->name, "beta") == 0 && strcmp(dflt->name, "dflt") == 0,
       "route names in config order");

    ok(web->host_kind == HOST_ANY && strcmp(web->host, "*") == 0, "\"*\" is HOST_ANY");
    ok(api->host_kind == HOST_SUFFIX && strcmp(api->host, ".example.com") == 0 &&
           api->host_len == 12,
       "\"*.Example.COM\" is HOST_SUFFIX \".example.com\", lower case");
    ok(beta->host_kind == HOST_EXACT && strcmp(beta->host, "beta.example.com") == 0 &&
           beta->host_len == 16,
       "\"Beta.Example.com.\" is HOST_EXACT, lower case, without the trailing dot");
    ok(dflt->host_kind == HOST_ANY, "no host is HOST_ANY");
    ok(strcmp(web->path_prefix, "/") == 0 && web->prefix_len == 1 &&
           strcmp(api->path_prefix, "/api") == 0 && api->prefix_len == 4,
       "path prefixes and lengths");
    ok(strcmp(beta->path_prefix, "/") == 0 && beta->prefix_len == 1, "no path prefix is \"/\"");

    ok(web->n_tracks == 3 && strcmp(web->tracks[0].name, "blue") == 0 &&
           strcmp(web->tracks[1].name, "green") == 0 && strcmp(web->tracks[2].name, "canary") == 0,
       "tracks in config order");
    ok(web->tracks[0].weight == 90 && web->tracks[1].weight == 0 && web->tracks[2].weight == 10 &&
           web->tracks[0].conf_weight == 90 && web->tracks[2].conf_weight == 10,
       "weights and conf weights from the config");
    for (i = 0; i < s->n_routes; i++)
        for (j = 0; j < s->routes[i].n_tracks; j++)
            src &= s->routes[i].tracks[j].src == WSRC_CONFIG &&
                   s->routes[i].tracks[j].since_ms == 1000;
    ok(src, "every track: source config, since now_ms");

    ok(web->candidate == 2 && web->baseline == 0, "web: guard candidate canary, baseline blue");
    ok(api->candidate == -1 && api->baseline == -1, "api: no guard, no canary: -1, -1");
    ok(beta->candidate == 2 && beta->baseline == 0,
       "beta: the guard's candidate (green) beats the track named canary");
    ok(dflt->candidate == 0 && dflt->baseline == -1, "dflt: no guard: the track named canary");

    ok(web->sticky_cookie != NULL && strcmp(web->sticky_cookie, "Cutover_ID") == 0 &&
           web->sticky_header == NULL,
       "sticky cookie copied as is (cookie names are case-sensitive)");
    ok(web->override_header != NULL && strcmp(web->override_header, "x-cutover-track") == 0 &&
           web->override_cookie == NULL,
       "override header lower-cased");
    ok(api->sticky_header != NULL && strcmp(api->sticky_header, "x-user-id") == 0 &&
           api->sticky_cookie == NULL,
       "sticky header lower-cased");
    ok(api->override_cookie != NULL && strcmp(api->override_cookie, "Track") == 0,
       "override cookie copied as is");

    /* 9001, 9002, 9003, [::1]:9001 (= [0:0:0:0:0:0:0:1]:9001), 9004, 9005, 9006 */
    ok(s->n_servers == 7, "servers deduplicated by address: 7 (got %zu)", s->n_servers);
    for (i = 0; i < s->n_servers; i++)
        ids &= s->servers[i].id == i;
    ok(ids, "server ids are their indices");
    ok(all_servers_inside(s), "every track server points into snap->servers");
    ok(s->n_servers >= 7 && strcmp(s->servers[0].name, "127.0.0.1:9001") == 0 &&
           strcmp(s->servers[1].name, "127.0.0.1:9002") == 0 &&
           strcmp(s->servers[2].name, "127.0.0.1:9003") == 0 &&
           strcmp(s->servers[3].name, "[::1]:9001") == 0 &&
           strcmp(s->servers[4].name, "127.0.0.1:9004") == 0,
       "server names \"host:port\" and \"[v6]:port\", in first-seen order");
    ok(web->tracks[0].n_servers == 2 && web->tracks[0].servers[1] == web->tracks[1].servers[0],
       "the same address in two tracks is one server");
    ok(web->tracks[0].servers[0] == api->tracks[0].servers[0] &&
           web->tracks[0].servers[0] == dflt->tracks[0].servers[0],
       "the same address in two routes is one server");
    ok(api->tracks[1].servers[0] == web->tracks[2].servers[1],
       "[0:0:0:0:0:0:0:1]:9001 and [::1]:9001 are one server");
    ok(web->tracks[0].servers[0] != web->tracks[2].servers[1],
       "127.0.0.1:9001 and [::1]:9001 are two servers");
    ok(beta->tracks[0].servers[0] == beta->tracks[1].servers[0] &&
           beta->tracks[2].servers[0] != beta->tracks[0].servers[0],
       "two tracks of one route may share a server");
    ok(web->tracks[2].servers[1]->addr.port == 9001 &&
           strcmp(web->tracks[2].servers[1]->addr.host, "::1") == 0,
       "server address copied");

    ok(s->timeouts.connect_ms == 1111 && s->timeouts.upstream_idle_ms == 2222 &&
           s->limits.max_headers == 77 && s->limits.max_upstream_conns == 9,
       "timeouts and limits copied");
    snap_unref(s);
}

static void test_from_conf_invalid(void)
{
    static const char *const s1[] = {"127.0.0.1:9001", NULL};
    struct conf *c = new_conf(1);
    struct conf_route *r = add_route(c, "r", "*", "/");
    struct snap *s;

    ok(snap_from_conf(NULL, 1, 1, 0) == NULL, "NULL conf: NULL");
    add_track(r, "a", 1, s1);
    r->n_tracks = CONF_MAX_TRACKS + 1;
    ok(snap_from_conf(c, 1, 1, 0) == NULL, "more than CONF_MAX_TRACKS tracks: NULL");
    r->n_tracks = 1;
    free(r->name);
    r->name = NULL;
    ok(snap_from_conf(c, 1, 1, 0) == NULL, "a route without a name: NULL");
    r->name = xstrdup("r");

    /* No routes at all is a valid, empty snapshot. */
    c->n_routes = 0;
    s = snap_from_conf(c, 1, 1, 0);
    ok(s != NULL && s->n_routes == 0 && s->n_servers == 0, "no routes: an empty snapshot");
    ok(s != NULL && snap_match(s, "a", 1, "/", 1) == -1, "an empty snapshot matches nothing");
    snap_unref(s);
    c->n_routes = 1;
    conf_free(c);
}

static void test_with_weights(void)
{
    struct conf *c = sample_conf();
    struct snap *old = snap_from_conf(c, 5, 3, 1000), *s, *s2;
    static const uint32_t w[3] = {50, 0, 50};
    static const uint32_t w2[3] = {50, 0, 0};
    const struct snap_route *r, *o;
    size_t i, j;
    int same_other = 1, fresh_strings = 1;

    conf_free(c);
    if (old == NULL) {
        ok(0, "snap_from_conf");
        return;
    }
    s = snap_with_weights(old, 0, w, WSRC_REDIS, 6, 2000);
    ok(s != NULL && s != old, "snap_with_weights returns a new snapshot");
    if (s == NULL)
        return;
    r = &s->routes[0];
    o = &old->routes[0];
    ok(atomic_load(&s->refs) == 1 && s->generation == 6 && s->conf_generation == 3,
       "new: refcount 1, generation 6, conf_generation kept");
    ok(r->tracks[0].weight == 50 && r->tracks[1].weight == 0 && r->tracks[2].weight == 50,
       "new: weights 50/0/50");
    ok(r->tracks[0].conf_weight == 90 && r->tracks[2].conf_weight == 10, "new: conf weights kept");
    ok(r->tracks[0].src == WSRC_REDIS && r->tracks[1].src == WSRC_REDIS &&
           r->tracks[2].src == WSRC_REDIS,
       "new: the route's weights all come from redis");
    ok(r->tracks[0].since_ms == 2000 && r->tracks[2].since_ms == 2000,
       "new: changed tracks since now_ms");
    ok(r->tracks[1].since_ms == 1000, "new: an unchanged track keeps its since_ms");

    ok(old->generation == 5 && atomic_load(&old->refs) == 1, "old: generation and refs untouched");
    ok(o->tracks[0].weight == 90 && o->tracks[1].weight == 0 && o->tracks[2].weight == 10,
       "old: weights untouched");
    ok(o->tracks[0].src == WSRC_CONFIG && o->tracks[0].since_ms == 1000 &&
           o->tracks[2].src == WSRC_CONFIG && o->tracks[2].since_ms == 1000,
       "old: sources and since_ms untouched");

    for (i = 1; i < s->n_routes; i++)
        for (j = 0; j < s->routes[i].n_tracks; j++)
            same_other &= s->routes[i].tracks[j].weight == old->routes[i].tracks[j].weight &&
                          s->routes[i].tracks[j].src == WSRC_CONFIG &&
                          s->routes[i].tracks[j].since_ms == 1000;
    ok(same_other, "other routes keep their weights and sources");
    ok(s->n_servers == old->n_servers && s->servers != old->servers && all_servers_inside(s),
       "new: its own server array, and track servers point into it");
    ok(r->tracks[2].servers[1]->id == o->tracks[2].servers[1]->id &&
           strcmp(r->tracks[2].servers[1]->name, "[::1]:9001") == 0,
       "new: the same servers in the same slots");
    for (i = 0; i < s->n_routes; i++) {
        fresh_strings &= s->routes[i].name != old->routes[i].name &&
                         s->routes[i].host != old->routes[i].host &&
                         s->routes[i].path_prefix != old->routes[i].path_prefix;
        for (j = 0; j < s->routes[i].n_tracks; j++)
            fresh_strings &= s->routes[i].tracks[j].name != old->routes[i].tracks[j].name &&
                             s->routes[i].tracks[j].servers != old->routes[i].tracks[j].servers;
    }
    ok(fresh_strings, "new: a deep copy (no string or array shared with old)");
    ok(s->routes[1].host_kind == HOST_SUFFIX && strcmp(s->routes[1].host, ".example.com") == 0 &&
           strcmp(s->routes[0].override_header, "x-cutover-track") == 0 &&
           strcmp(s->routes[1].sticky_header, "x-user-id") == 0 && s->routes[0].candidate == 2 &&
           s->routes[0].baseline == 0 && s->timeouts.connect_ms == 1111 &&
           s->limits.max_headers == 77,
       "new: match rules, headers, guard tracks, timeouts and limits copied");

    /* Drop the old one first: the new one must stand alone (ASan checks the reads). */
    snap_unref(old);
    ok(snap_match(s, "x.example.com", 13, "/api/v1", 7) == 1 && snap_route_index(s, "beta") == 2 &&
           snap_track_index(&s->routes[0], "canary", 6) == 2,
       "new: usable after the old one is freed");

    s2 = snap_with_weights(s, 0, w2, WSRC_GUARD, 7, 3000);
    ok(s2 != NULL && s2->routes[0].tracks[2].weight == 0 &&
           s2->routes[0].tracks[2].src == WSRC_GUARD && s2->routes[0].tracks[2].since_ms == 3000 &&
           s2->routes[0].tracks[0].since_ms == 2000 && s->routes[0].tracks[2].weight == 50,
       "a copy of a copy: the guard zeroes canary, blue keeps since 2000");
    snap_unref(s2);

    ok(snap_with_weights(s, 4, w, WSRC_ADMIN, 8, 0) == NULL, "route out of range: NULL");
    ok(snap_with_weights(s, 0, NULL, WSRC_ADMIN, 8, 0) == NULL, "no weights: NULL");
    snap_unref(s);
}

static void test_refcount(void)
{
    struct conf *c = sample_conf();
    struct snap *s = snap_from_conf(c, 1, 1, 0);

    conf_free(c);
    if (s == NULL) {
        ok(0, "snap_from_conf");
        return;
    }
    ok(atomic_load(&s->refs) == 1, "a new snapshot has one reference");
    ok(snap_ref(s) == s && atomic_load(&s->refs) == 2, "snap_ref returns it and counts");
    snap_ref(s);
    snap_unref(s);
    ok(atomic_load(&s->refs) == 2, "unref counts down");
    snap_unref(s);
    ok(atomic_load(&s->refs) == 1 && strcmp(s->routes[0].name, "web") == 0,
       "still alive with one reference");
    snap_unref(s); /* the last: freed (ASan's leak check fails the run otherwise) */
    snap_unref(NULL);
    ok(1, "the last unref frees it; snap_unref(NULL) is a no-op");
}

static void test_indices(void)
{
    struct conf *c = sample_conf();
    struct snap *s = snap_from_conf(c, 1, 1, 0);
    static const char name[] = "canaryXYZ";

    conf_free(c);
    if (s == NULL) {
        ok(0, "snap_from_conf");
        return;
    }
    ok(snap_route_index(s, "web") == 0 && snap_route_index(s, "dflt") == 3,
       "snap_route_index finds routes");
    ok(snap_route_index(s, "WEB") == -1 && snap_route_index(s, "nope") == -1 &&
           snap_route_index(s, NULL) == -1,
       "snap_route_index: exact names only, else -1");
    ok(snap_track_index(&s->routes[0], name, 6) == 2, "snap_track_index reads <len> bytes");
    ok(snap_track_index(&s->routes[0], "canar", 5) == -1 &&
           snap_track_index(&s->routes[0], name, 7) == -1 &&
           snap_track_index(&s->routes[0], "Blue", 4) == -1 &&
           snap_track_index(&s->routes[0], NULL, 0) == -1,
       "snap_track_index: no prefix, no longer, case-sensitive, NULL: -1");
    ok(snap_track_index(&s->routes[0], "blue", 4) == 0 &&
           snap_track_index(&s->routes[2], "green", 5) == 2,
       "snap_track_index per route");
    snap_unref(s);
}

static void test_src_names(void)
{
    ok(strcmp(weight_src_name(WSRC_CONFIG), "config") == 0 &&
           strcmp(weight_src_name(WSRC_REDIS), "redis") == 0 &&
           strcmp(weight_src_name(WSRC_ADMIN), "admin") == 0 &&
           strcmp(weight_src_name(WSRC_GUARD), "guard") == 0,
       "weight_src_name: config, redis, admin, guard");
    ok(strcmp(weight_src_name(WSRC_N), "unknown") == 0 &&
           strcmp(weight_src_name((enum weight_src)99), "unknown") == 0,
       "weight_src_name out of range: \"unknown\"");
}

/* ---- route matching ---- */

static struct snap *match_snap(void)
{
    static const char *const s1[] = {"127.0.0.1:9001", NULL};
    static const struct {
        const char *name, *host, *prefix;
    } routes[] = {
        {"any-root", "*", "/"},                     /* 0 */
        {"any-api", "*", "/api"},                   /* 1 */
        {"exact-api", "Example.COM", "/api"},       /* 2 */
        {"suffix-api", "*.example.com", "/api"},    /* 3 */
        {"exact-root", "example.com", "/"},         /* 4 */
        {"deep-suffix", "*.b.example.com", "/api"}, /* 5 */
        {"dup-any-api", "*", "/api"},               /* 6: loses to 1 on config order */
        {"static", "other.org", "/static/"},        /* 7 */
        {"any-api-v2", "*", "/api/v2"},             /* 8 */
        {"suffix-root", "*.example.com", "/"},      /* 9 */
        {"dup-exact-api", "example.com", "/api"},   /* 10: loses to 2 on config order */
    };
    struct conf *c = new_conf(sizeof(routes) / sizeof(routes[0]));
    struct snap *s;
    size_t i;

    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        add_track(add_route(c, routes[i].name, routes[i].host, routes[i].prefix), "blue", 1, s1);
    s = snap_from_conf(c, 1, 1, 0);
    conf_free(c);
    return s;
}

static void test_match(void)
{
    static const struct {
        const char *host, *path;
        int want;
        const char *why;
    } cases[] = {
        {"example.com", "/api/x", 2, "exact beats suffix beats * at equal prefix"},
        {"EXAMPLE.com", "/api", 2, "host case-insensitive"},
        {"example.com:8080", "/api", 2, "\":port\" ignored"},
        {"example.com.", "/api", 2, "trailing dot ignored"},
        {"example.com.:443", "/api", 2, "trailing dot and port"},
        {"a.example.com", "/api/v1", 3, "suffix rule for a subdomain"},
        {"A.Example.Com:1", "/api", 3, "suffix rule, mixed case and port"},
        {"x.b.example.com", "/api", 5, "the longer suffix wins"},
        {"b.example.com", "/api", 3, "*.b.example.com does not match its apex"},
        {"example.com", "/", 4, "exact host at \"/\""},
        {"example.com", "/other", 4, "\"/\" matches everything"},
        {"a.example.com", "/other", 9, "suffix at \"/\" beats * at \"/\""},
        {"badexample.com", "/other", 0,
         "a suffix needs the dot: badexample.com is not *.example.com"},
        {"foo.org", "/api?x=1", 1, "prefix before a query string"},
        {"foo.org", "/apix", 1, "plain byte prefix: /api matches /apix (nginx)"},
        {"foo.org", "/API", 0, "paths are case-sensitive"},
        {"foo.org", "/ap", 0, "shorter than the prefix: falls back to \"/\""},
        {"foo.org", "/", 0, "catch-all"},
        {"example.com", "/api/v2/x", 8, "the longest prefix beats a more specific host"},
        {"foo.org", "/api/v2", 8, "prefix equal to the path"},
        {"other.org", "/static", 0, "\"/static/\" does not match \"/static\""},
        {"other.org", "/static/a.css", 7, "\"/static/\" matches below it"},
        {"", "/api", 1, "no host: only \"*\" rules"},
        {"[::1]:8080", "/api", 1, "IPv6 literal host with port"},
        {"example.com", "", -1, "empty path matches no prefix"},
    };
    struct snap *s = match_snap();
    static const char buf[] = "example.comXYZ/apiZZZ";
    size_t i;

    if (s == NULL) {
        ok(0, "snap_from_conf");
        return;
    }
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = snap_match(s, cases[i].host, strlen(cases[i].host), cases[i].path,
                             strlen(cases[i].path));

        ok(got == cases[i].want, "%s %s -> %d (got %d): %s", cases[i].host, cases[i].path,
           cases[i].want, got, cases[i].why);
    }
    ok(snap_match(s, buf, 11, buf + 14, 4) == 2, "host and path bounded by their lengths");
    ok(snap_match(s, NULL, 0, "/api", 4) == 1, "NULL host is no host");
    ok(snap_match(s, "example.com", 11, NULL, 0) == -1, "NULL path matches nothing");
    snap_unref(s);

    /* Without a catch-all, unmatched requests get -1 (404). */
    {
        static const char *const s1[] = {"127.0.0.1:9001", NULL};
        struct conf *c = new_conf(2);

        add_track(add_route(c, "only", "api.example.com", "/v1/"), "blue", 1, s1);
        add_track(add_route(c, "wild", "*.example.net", "/"), "blue", 1, s1);
        s = snap_from_conf(c, 1, 1, 0);
        conf_free(c);
        ok(s != NULL && snap_match(s, "api.example.com", 15, "/v1/x", 5) == 0, "exact match");
        ok(s != NULL && snap_match(s, "api.example.com", 15, "/v2/x", 5) == -1,
           "host matches, prefix does not: -1");
        ok(s != NULL && snap_match(s, "www.example.com", 15, "/v1/x", 5) == -1,
           "prefix matches, host does not: -1");
        ok(s != NULL && snap_match(s, "example.net", 11, "/", 1) == -1,
           "apex of a suffix rule: -1");
        ok(s != NULL && snap_match(s, ".example.net", 12, "/", 1) == -1,
           "an empty label is not a subdomain: -1");
        ok(s != NULL && snap_match(s, "a.example.net", 13, "/", 1) == 1, "subdomain: 1");
        snap_unref(s);
    }
}

int main(void)
{
    subtest("snap_from_conf", test_from_conf);
    subtest("snap_from_conf on malformed confs", test_from_conf_invalid);
    subtest("snap_with_weights", test_with_weights);
    subtest("refcounting", test_refcount);
    subtest("route and track indices", test_indices);
    subtest("weight source names", test_src_names);
    subtest("route matching", test_match);
    return done_testing();
}
