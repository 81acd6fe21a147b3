/*
 * test_conf.c: conf/ unit tests. Runs from the repository root (paths below are relative to it):
 * build/release/tests/test_conf.
 *
 * conf/load.c is included rather than linked so that its allocations go through a counting
 * allocator that can fail the i-th call (failmalloc, as nghttp2 does).
 */
#include <stdlib.h>
#include <string.h>

static long fm_count;        /* allocations so far */
static long fm_fail_at = -1; /* index of the allocation to fail; -1: none */

static void *fm_calloc(size_t n, size_t size)
{
    if (fm_count++ == fm_fail_at)
        return NULL;
    return calloc(n, size);
}

static char *fm_strdup(const char *s)
{
    if (fm_count++ == fm_fail_at)
        return NULL;
    return strdup(s);
}

#define CONF_CALLOC(n, size) fm_calloc((n), (size))
#define CONF_STRDUP(s) fm_strdup(s)
#include "../../conf/load.c"

#include "tap.h"

#define DIR "tests/unit/conf/"

/* ---- bad files: exact "file:line:" and a piece of the message -------------------------------- */

struct bad_case {
    const char *file;
    int line;
    const char *msg;
};

static const struct bad_case bad_cases[] = {
    /* syntax, reported by libconfig */
    {"bad_syntax.conf", 2, "syntax error"},
    {"bad_duplicate_key.conf", 5, "duplicate setting name"},
    /* unknown keys, at every level */
    {"bad_unknown_key_top.conf", 3, "unknown key 'wrokers' in the top level"},
    {"bad_unknown_key_timeouts.conf", 5, "unknown key 'conect_ms' in timeouts"},
    {"bad_unknown_key_track.conf", 8, "unknown key 'weigth' in a track"},
    {"bad_unknown_key_tls.conf", 4, "unknown key 'ca' in tls"},
    {"bad_unknown_key_guard.conf", 10, "unknown key 'max_errors' in guard"},
    {"bad_unknown_key_match.conf", 5, "unknown key 'path' in match"},
    /* wrong types */
    {"bad_type_workers.conf", 2, "wrong type: 'workers' is a string, expected an integer"},
    {"bad_type_float_for_int.conf", 3, "'max_headers' is a float, expected an integer"},
    {"bad_type_listen.conf", 2, "'listen' is a group, expected a list of groups"},
    {"bad_type_listen_elem.conf", 4, "element 1 of 'listen' is a string, expected a group"},
    {"bad_type_bool.conf", 4, "'pubsub' is an integer, expected a boolean"},
    {"bad_type_string.conf", 5, "'host' is an integer, expected a string"},
    {"bad_type_group.conf", 3, "'timeouts' is an integer, expected a group"},
    {"bad_type_server.conf", 5, "element 1 of 'servers' is an integer, expected a string"},
    {"bad_type_rate.conf", 9, "'max_error_rate' is a string, expected a number"},
    /* ranges */
    {"bad_range_connect_ms.conf", 4, "value out of range: 'connect_ms' = 0, expected 1 to 600000"},
    {"bad_range_workers.conf", 2, "'workers' = 5000, expected 0 to 1024"},
    {"bad_range_negative.conf", 3, "'max_connections' = -1"},
    {"bad_range_int32_literal.conf", 4, "5000000000 does not fit in 32 bits"},
    {"bad_range_hex.conf", 3, "0x100000000 does not fit in 32 bits"},
    {"bad_range_int64.conf", 3, "'max_body_size' = 5000000000, expected 0 to 4294967295"},
    {"bad_range_float.conf", 10, "'max_error_rate' = 1.5, expected 0 to 1"},
    {"bad_weight_range.conf", 7, "'weight' = 1000001, expected 0 to 1000000"},
    {"bad_weight_negative.conf", 5, "'weight' = -5"},
    /* required and empty */
    {"bad_missing_key.conf", 6, "missing required key 'weight' in a track"},
    {"bad_tls_no_key.conf", 4, "missing required key 'key' in tls"},
    {"bad_empty_string.conf", 3, "'access_log' must not be empty"},
    /* names and matches */
    {"bad_dup_route.conf", 6, "duplicate route name 'web' (first at line 4)"},
    {"bad_dup_match.conf", 6, "matches the same host and path_prefix as route 'a'"},
    {"bad_dup_track.conf", 8, "duplicate track name 'blue' in route 'web' (first at line 6)"},
    {"bad_track_name.conf", 5, "bad track name \"blue:1\""},
    {"bad_path_prefix.conf", 6, "bad path_prefix \"api\": must start with \"/\""},
    {"bad_host.conf", 5, "bad host \"api.*.example.com\""},
    {"bad_override_header.conf", 6, "bad override header \"x cutover\""},
    /* tracks and servers */
    {"bad_all_zero.conf", 4, "route 'web': all track weights are zero"},
    {"bad_no_tracks.conf", 4, "route 'web' has no tracks"},
    {"bad_no_tracks_absent.conf", 4, "route 'web' has no tracks"},
    {"bad_too_many_tracks.conf", 5, "too many tracks: 9, at most 8"},
    {"bad_no_servers.conf", 7, "track 'green' in route 'web' has no servers"},
    {"bad_no_servers_absent.conf", 6, "track 'blue' in route 'web' has no servers"},
    {"bad_too_many_servers.conf", 6, "too many servers: 65, at most 64"},
    /* addresses */
    {"bad_addr_listen.conf", 4, "bad listen address \"example.com:8081\""},
    {"bad_addr_port0.conf", 2, "bad listen address \"127.0.0.1:0\": port must be"},
    {"bad_addr_admin.conf", 4, "bad admin address \"127.0.0.1\""},
    {"bad_addr_redis.conf", 3, "bad redis address \"::1:6379\": an IPv6 address needs brackets"},
    {"bad_addr_server.conf", 8, "bad server address \"127.0.0.1:90001\""},
    {"bad_dup_listen.conf", 4, "duplicate listen address 127.0.0.1:8080 (first at line 3)"},
    /* TLS files, relative to the working directory */
    {"bad_tls_cert_missing.conf", 4,
     "cannot read tls cert \"conf/tls/missing-cert.pem\": No such file"},
    {"bad_tls_key_missing.conf", 3, "cannot read tls key \"conf/tls/missing-key.pem\""},
    {"bad_tls_key_dir.conf", 3, "cannot read tls key \"conf/tls\": not a regular file"},
    /* guard */
    {"bad_guard_baseline.conf", 9, "guard baseline 'green' is not a track of this route"},
    {"bad_guard_candidate.conf", 9, "guard candidate 'cannary' is not a track"},
    {"bad_guard_same.conf", 9, "guard baseline and candidate are both 'blue'"},
    {"bad_guard_action.conf", 10, "bad guard action \"page-someone\""},
    /* listeners, sticky, log level */
    {"bad_no_listeners.conf", 1, "no listeners"},
    {"bad_no_listeners_empty.conf", 3, "no listeners"},
    {"bad_sticky_both.conf", 6, "sticky takes either cookie or header, not both"},
    {"bad_sticky_empty.conf", 6, "sticky needs cookie"},
    {"bad_log_level.conf", 3, "bad log_level \"verbose\""},
    /* the file itself */
    {"does_not_exist.conf", 1, "cannot open config: No such file or directory"},
};

static void test_bad_files(void)
{
    for (size_t i = 0; i < CONF_ARRAY_SIZE(bad_cases); i++) {
        const struct bad_case *b = &bad_cases[i];
        char path[256], prefix[300], err[512];
        struct conf *c;
        int good;

        snprintf(path, sizeof(path), DIR "%s", b->file);
        snprintf(prefix, sizeof(prefix), "%s:%d: ", path, b->line);
        c = conf_load(path, err, sizeof(err));
        ok(c == NULL, "%s is refused", b->file);
        good = strncmp(err, prefix, strlen(prefix)) == 0 && strstr(err, b->msg) != NULL;
        if (!ok(good, "%s: \"%s...%s\"", b->file, prefix, b->msg))
            printf("#   got: \"%s\"\n", err);
        conf_free(c);
    }
}

/* ---- good files ------------------------------------------------------------------------------ */

static struct conf *load_ok(const char *path)
{
    char err[512];
    struct conf *c = conf_load(path, err, sizeof(err));

    if (!ok(c != NULL, "%s loads", path))
        printf("#   got: \"%s\"\n", err);
    return c;
}

static int streq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static int addr_is(const struct conf_addr *a, int family, const char *host, unsigned port)
{
    return a->family == family && strcmp(a->host, host) == 0 && a->port == port;
}

static void test_good_full(void)
{
    struct conf *c = load_ok(DIR "good_full.conf");
    const struct conf_route *r;

    if (c == NULL)
        return;
    ok(streq(c->path, DIR "good_full.conf"), "path kept");
    ok(c->workers == 3, "workers = 3");
    ok(c->n_listens == 3, "3 listeners");
    ok(addr_is(&c->listens[0].addr, AF_INET, "127.0.0.1", 18080) && !c->listens[0].tls &&
           streq(c->listens[0].address, "127.0.0.1:18080") && c->listens[0].line == 6,
       "listen[0]: 127.0.0.1:18080 plain, line 6");
    ok(addr_is(&c->listens[1].addr, AF_INET6, "::1", 18443) && c->listens[1].tls &&
           streq(c->listens[1].cert, "conf/tls/cert.pem") &&
           streq(c->listens[1].key, "conf/tls/key.pem") && c->listens[1].line == 7,
       "listen[1]: [::1]:18443 tls with cert and key, line 7");
    ok(addr_is(&c->listens[2].addr, AF_INET, "0.0.0.0", 18081) &&
           streq(c->listens[2].address, "*:18081"),
       "listen[2]: *:18081 is 0.0.0.0, written form kept");
    ok(c->admin.enabled && addr_is(&c->admin.addr, AF_INET, "127.0.0.1", 19901) &&
           streq(c->admin.token_file, "tests/unit/conf/admin.token"),
       "admin: localhost:19901 with token_file");
    ok(c->redis.enabled && addr_is(&c->redis.addr, AF_INET, "127.0.0.1", 16379) &&
           streq(c->redis.prefix, "cut-test") && c->redis.poll_ms == 250 &&
           streq(c->redis.username, "user") && streq(c->redis.password, "99999999999 \"quoted\"") &&
           c->redis.db == 3 && c->redis.pubsub == 0 && streq(c->redis.instance, "node-1"),
       "redis: every key");
    ok(c->timeouts.connect_ms == 11 && c->timeouts.header_ms == 12 && c->timeouts.idle_ms == 13 &&
           c->timeouts.upstream_ms == 14 && c->timeouts.drain_ms == 0 &&
           c->timeouts.upstream_idle_ms == 16,
       "timeouts: every key (int64 accepted)");
    ok(c->limits.max_header_size == 2048 && c->limits.max_headers == 22 &&
           c->limits.max_request_line == 1024 && c->limits.max_body_size == 4000000000u &&
           c->limits.max_concurrent_streams == 25 && c->limits.max_connections == 26 &&
           c->limits.max_upstream_conns == 27,
       "limits: every key (max_body_size 4000000000L)");
    ok(c->n_routes == 2, "2 routes");
    r = &c->routes[0];
    ok(streq(r->name, "api") && streq(r->host, "*.example.com") && streq(r->path_prefix, "/api/") &&
           r->line == 36,
       "route api: host, prefix, line 36");
    ok(r->n_tracks == 2 && streq(r->tracks[0].name, "blue") &&
           r->tracks[0].weight == CONF_MAX_WEIGHT && r->tracks[0].line == 39 &&
           streq(r->tracks[1].name, "canary") && r->tracks[1].weight == 0 &&
           r->tracks[1].line == 40,
       "route api: tracks blue 1000000 (line 39), canary 0 (line 40)");
    ok(r->tracks[0].n_servers == 2 && streq(r->tracks[0].servers[0], "127.0.0.1:9001") &&
           addr_is(&r->tracks[0].addrs[0], AF_INET, "127.0.0.1", 9001) &&
           streq(r->tracks[0].servers[1], "[::1]:9002") &&
           addr_is(&r->tracks[0].addrs[1], AF_INET6, "::1", 9002),
       "servers as an array, parsed in order");
    ok(r->tracks[1].n_servers == 1 && addr_is(&r->tracks[1].addrs[0], AF_INET, "127.0.0.1", 9003),
       "server localhost:9003 is 127.0.0.1");
    ok(streq(r->sticky_header, "x-user-id") && r->sticky_cookie == NULL,
       "sticky header, no cookie");
    ok(streq(r->override_header, "x-track") && streq(r->override_cookie, "track"),
       "override header and cookie");
    ok(r->guard.enabled && streq(r->guard.baseline, "blue") &&
           streq(r->guard.candidate, "canary") && r->guard.window_ms == 5000 &&
           r->guard.min_requests == 7 && r->guard.max_error_rate == 0.0 &&
           r->guard.max_p99_ratio == 3.0 && streq(r->guard.action, "snapback") &&
           r->guard.line == 44,
       "guard: every key, ints accepted for floats, line 44");
    r = &c->routes[1];
    ok(streq(r->name, "web") && streq(r->host, "www.example.com") && streq(r->path_prefix, "/"),
       "route web: path_prefix defaults to /");
    ok(streq(r->sticky_cookie, "sid") && r->sticky_header == NULL && r->override_header == NULL &&
           streq(r->override_cookie, "force"),
       "route web: sticky cookie, override cookie only");
    ok(!r->guard.enabled && r->guard.window_ms == 10000 && streq(r->guard.action, "snapback"),
       "route web: no guard (defaults still filled)");
    ok(streq(c->access_log, "-") && streq(c->error_log, "/tmp/cutover-error.log") &&
           streq(c->log_level, "debug"),
       "logs and log_level");
    conf_free(c);
}

static void test_good_defaults(void)
{
    struct conf *c = load_ok(DIR "good_minimal.conf");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    const struct conf_route *r;

    if (c == NULL)
        return;
    ok(c->workers == (unsigned)(cpus < 1 ? 1 : cpus), "workers absent: %ld online CPUs", cpus);
    ok(!c->admin.enabled && c->admin.address == NULL && c->admin.token_file == NULL,
       "no admin block: disabled");
    ok(!c->redis.enabled && streq(c->redis.prefix, "cutover") && c->redis.poll_ms == 1000 &&
           c->redis.db == 0 && c->redis.pubsub == 1 && c->redis.username == NULL &&
           c->redis.password == NULL && c->redis.instance == NULL,
       "no redis block: disabled, defaults prefix cutover, poll 1000, db 0, "
       "pubsub on");
    ok(c->timeouts.connect_ms == 1000 && c->timeouts.header_ms == 10000 &&
           c->timeouts.idle_ms == 60000 && c->timeouts.upstream_ms == 30000 &&
           c->timeouts.drain_ms == 10000 && c->timeouts.upstream_idle_ms == 30000,
       "timeouts defaults");
    ok(c->limits.max_header_size == 16384 && c->limits.max_headers == 100 &&
           c->limits.max_request_line == 8192 && c->limits.max_body_size == 0 &&
           c->limits.max_concurrent_streams == 128 && c->limits.max_connections == 10000 &&
           c->limits.max_upstream_conns == 256,
       "limits defaults");
    ok(c->access_log == NULL && c->error_log == NULL && streq(c->log_level, "info"),
       "logs default: no access log, stderr, info");
    r = &c->routes[0];
    ok(streq(r->host, "*") && streq(r->path_prefix, "/"), "match defaults: host *, prefix /");
    ok(r->sticky_cookie == NULL && r->sticky_header == NULL && r->override_header == NULL &&
           r->override_cookie == NULL,
       "no sticky, no override");
    ok(!r->guard.enabled && r->guard.window_ms == 10000 && r->guard.min_requests == 20 &&
           r->guard.max_error_rate == 0.05 && r->guard.max_p99_ratio == 2.0 &&
           r->guard.baseline == NULL,
       "guard absent: disabled, defaults 10000 ms, 20 requests, 0.05, 2.0");
    conf_free(c);

    c = load_ok(DIR "good_workers_zero.conf");
    if (c == NULL)
        return;
    ok(c->workers == (unsigned)(cpus < 1 ? 1 : cpus), "workers = 0: online CPUs");
    ok(c->n_routes == 0 && c->routes == NULL, "no routes is allowed");
    ok(addr_is(&c->listens[0].addr, AF_INET6, "::", 8080), "[::]:8080");
    conf_free(c);
}

/* The sample `make demo` runs. */
static void test_sample(void)
{
    struct conf *c = load_ok("conf/cutover.conf");
    const struct conf_route *r;

    if (c == NULL)
        return;
    ok(c->workers == 2, "sample: workers = 2");
    ok(c->n_listens == 2 && addr_is(&c->listens[0].addr, AF_INET, "127.0.0.1", 8080) &&
           !c->listens[0].tls && addr_is(&c->listens[1].addr, AF_INET, "127.0.0.1", 8443) &&
           c->listens[1].tls && streq(c->listens[1].cert, "conf/tls/cert.pem") &&
           streq(c->listens[1].key, "conf/tls/key.pem"),
       "sample: 127.0.0.1:8080 plain, 127.0.0.1:8443 tls");
    ok(c->admin.enabled && addr_is(&c->admin.addr, AF_INET, "127.0.0.1", 9901) &&
           c->admin.token_file == NULL,
       "sample: admin 127.0.0.1:9901 without token");
    ok(!c->redis.enabled, "sample: no redis");
    ok(c->n_routes == 1, "sample: one route");
    if (c->n_routes != 1) {
        conf_free(c);
        return;
    }
    r = &c->routes[0];
    ok(streq(r->name, "web") && streq(r->host, "*") && streq(r->path_prefix, "/") &&
           r->n_tracks == 3,
       "sample: route web, host *, prefix /, 3 tracks");
    ok(r->n_tracks == 3 && streq(r->tracks[0].name, "blue") && r->tracks[0].weight == 90 &&
           addr_is(&r->tracks[0].addrs[0], AF_INET, "127.0.0.1", 9001) &&
           streq(r->tracks[1].name, "green") && r->tracks[1].weight == 0 &&
           addr_is(&r->tracks[1].addrs[0], AF_INET, "127.0.0.1", 9002) &&
           streq(r->tracks[2].name, "canary") && r->tracks[2].weight == 10 &&
           addr_is(&r->tracks[2].addrs[0], AF_INET, "127.0.0.1", 9003),
       "sample: blue 90 :9001, green 0 :9002, canary 10 :9003");
    ok(streq(r->override_header, "x-cutover-track") && r->sticky_cookie == NULL &&
           r->sticky_header == NULL,
       "sample: override header x-cutover-track, no sticky");
    ok(r->guard.enabled && streq(r->guard.baseline, "blue") && streq(r->guard.candidate, "canary"),
       "sample: guard blue -> canary");
    conf_free(c);
}

/* ---- conf_parse_addr ------------------------------------------------------------------------- */

struct addr_case {
    const char *in;
    int rc, family;
    const char *host;
    unsigned port;
};

static const struct addr_case addr_cases[] = {
    {"1.2.3.4:80", 0, AF_INET, "1.2.3.4", 80},
    {"127.0.0.1:65535", 0, AF_INET, "127.0.0.1", 65535},
    {"0.0.0.0:1", 0, AF_INET, "0.0.0.0", 1},
    {"*:8080", 0, AF_INET, "0.0.0.0", 8080},
    {"localhost:9901", 0, AF_INET, "127.0.0.1", 9901},
    {"[::1]:80", 0, AF_INET6, "::1", 80},
    {"[::]:443", 0, AF_INET6, "::", 443},
    {"[2001:db8::1:2]:8443", 0, AF_INET6, "2001:db8::1:2", 8443},
    {"1.2.3.4:080", 0, AF_INET, "1.2.3.4", 80},
    {"1.2.3.4", -1, 0, NULL, 0},
    {"1.2.3.4:", -1, 0, NULL, 0},
    {":80", -1, 0, NULL, 0},
    {"1.2.3.4:0", -1, 0, NULL, 0},
    {"1.2.3.4:65536", -1, 0, NULL, 0},
    {"1.2.3.4:123456", -1, 0, NULL, 0},
    {"1.2.3.4:99999999999999999999", -1, 0, NULL, 0},
    {"1.2.3.4:+80", -1, 0, NULL, 0},
    {"1.2.3.4:-1", -1, 0, NULL, 0},
    {"1.2.3.4:8a", -1, 0, NULL, 0},
    {"1.2.3.4: 80", -1, 0, NULL, 0},
    {"1.2.3.256:80", -1, 0, NULL, 0},
    {"1.2.3:80", -1, 0, NULL, 0},
    {"example.com:80", -1, 0, NULL, 0},
    {"::1:80", -1, 0, NULL, 0},
    {"[::1]80", -1, 0, NULL, 0},
    {"[::1]:", -1, 0, NULL, 0},
    {"[::1", -1, 0, NULL, 0},
    {"[]:80", -1, 0, NULL, 0},
    {"[1.2.3.4]:80", -1, 0, NULL, 0},
    {"[fe80::1%eth0]:80", -1, 0, NULL, 0},
    {"[::1]:0", -1, 0, NULL, 0},
    {"", -1, 0, NULL, 0},
    {"*", -1, 0, NULL, 0},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:"
     "80",
     -1, 0, NULL, 0},
};

static void test_parse_addr(void)
{
    struct conf_addr a;

    for (size_t i = 0; i < CONF_ARRAY_SIZE(addr_cases); i++) {
        const struct addr_case *t = &addr_cases[i];
        int rc;

        memset(&a, 0x5a, sizeof(a));
        rc = conf_parse_addr(t->in, &a);
        if (t->rc == 0)
            ok(rc == 0 && addr_is(&a, t->family, t->host, t->port), "\"%s\" -> %s port %u", t->in,
               t->host, t->port);
        else
            ok(rc == -1, "\"%s\" refused", t->in);
    }
    ok(conf_parse_addr(NULL, &a) == -1, "NULL refused");
}

/* ---- conf_validate on hand-built structs ----------------------------------------------------- */

/*
 * A valid conf as a caller might build it: strings on the heap (conf_free releases them), listener
 * addrs left unparsed. Lines: listens 2 and 3, route web 10 (tracks blue 11, canary 12, guard 13),
 * route api 20 (track blue 21).
 */
static void set_str(char **p, const char *s)
{
    free(*p);
    *p = s ? strdup(s) : NULL;
}

static void add_track(struct conf_route *r, const char *name, unsigned weight, const char *server,
                      int line)
{
    struct conf_track *t = &r->tracks[r->n_tracks++];

    set_str(&t->name, name);
    t->weight = weight;
    t->servers = calloc(1, sizeof(*t->servers));
    t->addrs = calloc(1, sizeof(*t->addrs));
    t->n_servers = 1;
    set_str(&t->servers[0], server);
    conf_parse_addr(server, &t->addrs[0]);
    t->line = line;
}

static struct conf *mk(void)
{
    struct conf *c = calloc(1, sizeof(*c));
    struct conf_route *r;

    set_str(&c->path, "hand.conf");
    c->workers = 1;
    c->listens = calloc(2, sizeof(*c->listens));
    c->n_listens = 2;
    set_str(&c->listens[0].address, "127.0.0.1:8080");
    c->listens[0].line = 2;
    set_str(&c->listens[1].address, "127.0.0.1:8443");
    c->listens[1].line = 3;
    set_str(&c->log_level, "info");
    c->routes = calloc(2, sizeof(*c->routes));
    c->n_routes = 2;
    r = &c->routes[0];
    set_str(&r->name, "web");
    set_str(&r->host, "*");
    set_str(&r->path_prefix, "/");
    r->line = 10;
    add_track(r, "blue", 90, "127.0.0.1:9001", 11);
    add_track(r, "canary", 10, "127.0.0.1:9003", 12);
    r->guard.enabled = 1;
    set_str(&r->guard.baseline, "blue");
    set_str(&r->guard.candidate, "canary");
    set_str(&r->guard.action, "snapback");
    r->guard.line = 13;
    r = &c->routes[1];
    set_str(&r->name, "api");
    set_str(&r->host, "*");
    set_str(&r->path_prefix, "/api");
    r->line = 20;
    add_track(r, "blue", 1, "127.0.0.1:9101", 21);
    return c;
}

static void drop_servers(struct conf_track *t)
{
    for (size_t i = 0; i < t->n_servers; i++)
        free(t->servers[i]);
    free(t->servers);
    free(t->addrs);
    t->servers = NULL;
    t->addrs = NULL;
    t->n_servers = 0;
}

static void m_none(struct conf *c)
{
}
static void m_no_listeners(struct conf *c)
{
    free(c->listens[0].address);
    free(c->listens[1].address);
    c->n_listens = 0;
}
static void m_bad_listen(struct conf *c)
{
    set_str(&c->listens[1].address, "127.0.0.1:http");
}
static void m_dup_listen(struct conf *c)
{
    set_str(&c->listens[1].address, "localhost:8080");
}
static void m_tls_cert(struct conf *c)
{
    c->listens[1].tls = 1;
    set_str(&c->listens[1].cert, "conf/tls/nope.pem");
    set_str(&c->listens[1].key, "conf/tls/key.pem");
}
static void m_tls_key(struct conf *c)
{
    c->listens[1].tls = 1;
    set_str(&c->listens[1].cert, "conf/tls/cert.pem");
    set_str(&c->listens[1].key, "conf/tls/nope.pem");
}
static void m_tls_ok(struct conf *c)
{
    c->listens[1].tls = 1;
    set_str(&c->listens[1].cert, "conf/tls/cert.pem");
    set_str(&c->listens[1].key, "conf/tls/key.pem");
}
static void m_admin_addr(struct conf *c)
{
    c->admin.enabled = 1;
    set_str(&c->admin.address, "[::1]");
}
static void m_admin_clash(struct conf *c)
{
    c->admin.enabled = 1;
    set_str(&c->admin.address, "localhost:8443");
}
static void m_admin_token(struct conf *c)
{
    c->admin.enabled = 1;
    set_str(&c->admin.address, "127.0.0.1:9901");
    set_str(&c->admin.token_file, "tests/unit/conf/no.token");
}
static void m_redis_addr(struct conf *c)
{
    c->redis.enabled = 1;
    set_str(&c->redis.address, "redis:6379");
}
static void m_redis_off(struct conf *c)
{
    set_str(&c->redis.address, "redis:6379"); /* not enabled: not checked */
}
static void m_log_level(struct conf *c)
{
    set_str(&c->log_level, "trace");
}
static void m_route_noname(struct conf *c)
{
    set_str(&c->routes[1].name, NULL);
}
static void m_route_badname(struct conf *c)
{
    set_str(&c->routes[1].name, "a/b");
}
static void m_dup_route(struct conf *c)
{
    set_str(&c->routes[1].name, "web");
}
static void m_dup_match(struct conf *c)
{
    set_str(&c->routes[1].path_prefix, "/");
}
static void m_bad_host(struct conf *c)
{
    set_str(&c->routes[0].host, "*.");
}
static void m_bad_prefix(struct conf *c)
{
    set_str(&c->routes[0].path_prefix, "api");
}
static void m_no_tracks(struct conf *c)
{
    struct conf_route *r = &c->routes[1];

    drop_servers(&r->tracks[0]);
    set_str(&r->tracks[0].name, NULL);
    r->n_tracks = 0;
}
static void m_many_tracks(struct conf *c)
{
    c->routes[1].n_tracks = CONF_MAX_TRACKS + 1;
}
static void m_dup_track(struct conf *c)
{
    set_str(&c->routes[0].tracks[1].name, "blue");
}
static void m_track_noname(struct conf *c)
{
    set_str(&c->routes[0].tracks[1].name, NULL);
}
static void m_weight(struct conf *c)
{
    c->routes[0].tracks[0].weight = CONF_MAX_WEIGHT + 1;
}
static void m_weight_max(struct conf *c)
{
    c->routes[0].tracks[0].weight = CONF_MAX_WEIGHT;
}
static void m_all_zero(struct conf *c)
{
    c->routes[0].tracks[0].weight = 0;
    c->routes[0].tracks[1].weight = 0;
}
static void m_no_servers(struct conf *c)
{
    drop_servers(&c->routes[0].tracks[1]);
}
static void m_bad_server(struct conf *c)
{
    set_str(&c->routes[0].tracks[0].servers[0], "127.0.0.1");
}
static void m_sticky_both(struct conf *c)
{
    set_str(&c->routes[0].sticky_cookie, "c");
    set_str(&c->routes[0].sticky_header, "h");
}
static void m_guard_base(struct conf *c)
{
    set_str(&c->routes[0].guard.baseline, "green");
}
static void m_guard_cand(struct conf *c)
{
    set_str(&c->routes[0].guard.candidate, NULL);
}
static void m_guard_same(struct conf *c)
{
    set_str(&c->routes[0].guard.candidate, "blue");
}
static void m_guard_action(struct conf *c)
{
    set_str(&c->routes[0].guard.action, "explode");
}
static void m_guard_off(struct conf *c)
{
    c->routes[0].guard.enabled = 0;
    set_str(&c->routes[0].guard.baseline, "nope"); /* disabled: not checked */
}

struct validate_case {
    const char *name;
    void (*mutate)(struct conf *);
    int line; /* 0: valid */
    const char *msg;
};

static const struct validate_case validate_cases[] = {
    {"valid", m_none, 0, NULL},
    {"tls files readable", m_tls_ok, 0, NULL},
    {"weight at CONF_MAX_WEIGHT", m_weight_max, 0, NULL},
    {"redis disabled is not checked", m_redis_off, 0, NULL},
    {"guard disabled is not checked", m_guard_off, 0, NULL},
    {"no listeners", m_no_listeners, 1, "no listeners"},
    {"bad listen address", m_bad_listen, 3, "bad listen address \"127.0.0.1:http\""},
    {"duplicate listener", m_dup_listen, 3, "duplicate listen address 127.0.0.1:8080"},
    {"tls cert missing", m_tls_cert, 3, "cannot read tls cert \"conf/tls/nope.pem\""},
    {"tls key missing", m_tls_key, 3, "cannot read tls key \"conf/tls/nope.pem\""},
    {"bad admin address", m_admin_addr, 1, "bad admin address \"[::1]\""},
    {"admin on a listener", m_admin_clash, 3, "is also the admin address"},
    {"admin token unreadable", m_admin_token, 1, "cannot read admin token_file"},
    {"bad redis address", m_redis_addr, 1, "bad redis address \"redis:6379\""},
    {"bad log_level", m_log_level, 1, "bad log_level \"trace\""},
    {"route without name", m_route_noname, 20, "route 2 has no name"},
    {"bad route name", m_route_badname, 20, "bad route name \"a/b\""},
    {"duplicate route", m_dup_route, 20, "duplicate route name 'web' (first at line 10)"},
    {"duplicate match", m_dup_match, 20, "same host and path_prefix as route 'web'"},
    {"bad host", m_bad_host, 10, "bad host \"*.\""},
    {"bad path_prefix", m_bad_prefix, 10, "bad path_prefix \"api\""},
    {"no tracks", m_no_tracks, 20, "route 'api' has no tracks"},
    {"too many tracks", m_many_tracks, 20, "too many tracks: 9, at most 8"},
    {"duplicate track", m_dup_track, 12, "duplicate track name 'blue' in route 'web'"},
    {"track without name", m_track_noname, 12, "track 2 has no name"},
    {"weight out of range", m_weight, 11, "weight 1000001 out of range"},
    {"all weights zero", m_all_zero, 10, "all track weights are zero"},
    {"no servers", m_no_servers, 12, "track 'canary' in route 'web' has no servers"},
    {"bad server", m_bad_server, 11, "bad server address \"127.0.0.1\""},
    {"sticky both", m_sticky_both, 10, "sticky takes either cookie or header"},
    {"guard baseline unknown", m_guard_base, 13, "guard baseline 'green' is not a track"},
    {"guard candidate missing", m_guard_cand, 13, "guard has no candidate track"},
    {"guard same track", m_guard_same, 13, "baseline and candidate are both 'blue'"},
    {"guard action", m_guard_action, 13, "bad guard action \"explode\""},
};

static void test_validate(void)
{
    char err[512], prefix[64];

    for (size_t i = 0; i < CONF_ARRAY_SIZE(validate_cases); i++) {
        const struct validate_case *v = &validate_cases[i];
        struct conf *c = mk();
        int rc;

        v->mutate(c);
        rc = conf_validate(c, err, sizeof(err));
        if (v->line == 0) {
            if (!ok(rc == 0 && err[0] == '\0', "validate: %s", v->name))
                printf("#   got: \"%s\"\n", err);
        } else {
            snprintf(prefix, sizeof(prefix), "hand.conf:%d: ", v->line);
            if (!ok(rc == -1 && strncmp(err, prefix, strlen(prefix)) == 0 &&
                        strstr(err, v->msg) != NULL,
                    "validate: %s -> \"%s...%s\"", v->name, prefix, v->msg))
                printf("#   got: \"%s\"\n", err);
        }
        conf_free(c);
    }
}

/* ---- edges of the API ------------------------------------------------------------------------ */

static void test_api_edges(void)
{
    char err[16];
    struct conf *c = mk();

    ok(conf_validate(NULL, err, sizeof(err)) == -1, "conf_validate(NULL) is -1");
    m_all_zero(c);
    ok(conf_validate(c, NULL, 0) == -1, "conf_validate without an err buffer still fails");
    conf_free(c);
    ok(conf_load(NULL, err, sizeof(err)) == NULL, "conf_load(NULL) is NULL");
    ok(conf_load(DIR "bad_syntax.conf", err, sizeof(err)) == NULL && strlen(err) == 15 &&
           strncmp(err, "tests/unit/conf", 15) == 0,
       "a short err buffer gets a truncated, terminated message");
    ok(conf_load(DIR "bad_guard_same.conf", NULL, 0) == NULL, "conf_load without an err buffer");
    {
        char big[128];

        ok(conf_load("/dev/zero", big, sizeof(big)) == NULL &&
               strncmp(big, "/dev/zero:1: config file larger than", 36) == 0,
           "an endless file is refused: %s", big);
    }
    conf_free(NULL);
    ok(1, "conf_free(NULL) is a no-op");
}

/* ---- failmalloc ------------------------------------------------------------------------------ */

/* Fails each allocation of a successful load in turn: every one must give NULL and an "out of
 * memory" message with the file's name, and leak nothing (LSan checks at exit). */
static void failmalloc(const char *path)
{
    char err[512];
    struct conf *c;
    long n, bad = 0;

    fm_fail_at = -1;
    fm_count = 0;
    c = conf_load(path, err, sizeof(err));
    n = fm_count;
    ok(c != NULL && n > 0, "%s: %ld allocations when nothing fails", path, n);
    conf_free(c);
    for (long i = 0; i < n; i++) {
        fm_fail_at = i;
        fm_count = 0;
        c = conf_load(path, err, sizeof(err));
        if (c != NULL || strncmp(err, path, strlen(path)) != 0 ||
            strstr(err, ": out of memory") == NULL) {
            if (bad++ == 0)
                printf("#   allocation %ld: %s \"%s\"\n", i, c ? "loaded" : "failed with", err);
        }
        conf_free(c);
    }
    fm_fail_at = -1;
    ok(bad == 0, "%s: each of %ld allocation failures gives NULL + out of memory", path, n);
}

static void test_failmalloc(void)
{
    failmalloc(DIR "good_full.conf");
    failmalloc("conf/cutover.conf");
}

int main(void)
{
    subtest("bad files: file:line: message", test_bad_files);
    subtest("good file: every key", test_good_full);
    subtest("good files: defaults", test_good_defaults);
    subtest("conf/cutover.conf", test_sample);
    subtest("conf_parse_addr", test_parse_addr);
    subtest("conf_validate on hand-built structs", test_validate);
    subtest("API edges", test_api_edges);
    subtest("failmalloc", test_failmalloc);
    return done_testing();
}
