/*
 * test_weights.c: live weights from Redis, the pure half: validation of
 * HGETALL replies (routing/weights.c), snapshots with new weights
 * (snap_with_weights) and the smooth-WRR state a worker carries across
 * updates (swrr_set_weights, as worker_refresh() uses it).
 */
#include "../../routing/weights.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../routing/snap.h"
#include "../../routing/swrr.h"
#include "tap.h"

/* ---- a hand-built conf: route "web" with blue, green, canary (+ "empty" with no server) ---- */

static char *xstrdup(const char *s)
{
    char *d = strdup(s);

    if (d == NULL)
        abort();
    return d;
}

static void add_track(struct conf_route *r, const char *name, unsigned weight, unsigned port)
{
    struct conf_track *t = &r->tracks[r->n_tracks++];

    t->name = xstrdup(name);
    t->weight = weight;
    t->n_servers = port != 0 ? 1 : 0;
    t->servers = calloc(1, sizeof(*t->servers));
    t->addrs = calloc(1, sizeof(*t->addrs));
    if (t->servers == NULL || t->addrs == NULL)
        abort();
    if (port != 0) {
        char buf[32];

        snprintf(buf, sizeof(buf), "127.0.0.1:%u", port);
        t->servers[0] = xstrdup(buf);
        snprintf(t->addrs[0].host, sizeof(t->addrs[0].host), "127.0.0.1");
        t->addrs[0].port = (uint16_t)port;
        t->addrs[0].family = AF_INET;
    }
}

static struct conf *make_conf(void)
{
    struct conf *c = calloc(1, sizeof(*c));
    struct conf_route *r;

    if (c == NULL)
        abort();
    c->routes = calloc(2, sizeof(*c->routes));
    if (c->routes == NULL)
        abort();
    c->n_routes = 2;
    r = &c->routes[0];
    r->name = xstrdup("web");
    r->host = xstrdup("*");
    r->path_prefix = xstrdup("/");
    add_track(r, "blue", 90, 9001);
    add_track(r, "green", 0, 9002);
    add_track(r, "canary", 10, 9003);
    r = &c->routes[1];
    r->name = xstrdup("api");
    r->host = xstrdup("*");
    r->path_prefix = xstrdup("/api");
    add_track(r, "main", 1, 9004);
    add_track(r, "empty", 0, 0); /* no server: its weight does not count */
    return c;
}

static struct snap *g_snap;

static const struct snap_route *web(void)
{
    return &g_snap->routes[0];
}

/* Validates a hash given as "field", "value", ..., NULL (binary-safe with explicit lengths
 * for the embedded-NUL case below). */
static int check(const struct snap_route *r, uint32_t *out, char *err, size_t errlen, ...)
{
    const char *f[16], *v[16];
    size_t fl[16], vl[16], n = 0;
    va_list ap;
    const char *s;

    va_start(ap, errlen);
    while ((s = va_arg(ap, const char *)) != NULL && n < 16) {
        f[n] = s;
        fl[n] = strlen(s);
        v[n] = va_arg(ap, const char *);
        vl[n] = strlen(v[n]);
        n++;
    }
    va_end(ap);
    return weights_from_hash(f, fl, v, vl, n, r, out, err, errlen);
}

#define CHECK(out, err, ...) check(web(), out, err, sizeof(err), __VA_ARGS__, (const char *)NULL)

static void test_good(void)
{
    uint32_t w[CONF_MAX_TRACKS];
    char err[256];

    ok(CHECK(w, err, "blue", "50", "canary", "50") == 0 && w[0] == 50 && w[1] == 0 && w[2] == 50,
       "blue 50 canary 50 -> 50/0/50 (green, missing, gets 0)");
    ok(CHECK(w, err, "green", "100") == 0 && w[0] == 0 && w[1] == 100 && w[2] == 0,
       "green 100 alone -> 0/100/0: the hash is the whole split");
    ok(CHECK(w, err, "canary", "1", "blue", "99", "green", "0") == 0 && w[0] == 99 && w[1] == 0 &&
           w[2] == 1,
       "fields in any order land on their track");
    ok(CHECK(w, err, "blue", "007") == 0 && w[0] == 7, "leading zeros: 007 is 7");
    ok(CHECK(w, err, "blue", "1000000") == 0 && w[0] == 1000000, "CONF_MAX_WEIGHT is allowed");
    ok(CHECK(w, err, "blue", "0000000000000000000000001") == 0 && w[0] == 1,
       "many leading zeros are not an overflow");
    ok(err[0] == '\0', "no error text on success");
}

struct bad_case {
    const char *field, *value;
    const char *want; /* substring of the error */
    const char *what;
};

static void test_bad_values(void)
{
    static const struct bad_case cases[] = {
        {"blue", "abc", "not a non-negative decimal integer", "non-integer"},
        {"blue", "-5", "not a non-negative decimal integer", "negative"},
        {"blue", "+5", "not a non-negative decimal integer", "explicit plus sign"},
        {"blue", " 5", "not a non-negative decimal integer", "leading space"},
        {"blue", "5 ", "not a non-negative decimal integer", "trailing space"},
        {"blue", "5\n", "not a non-negative decimal integer", "trailing newline"},
        {"blue", "0x10", "not a non-negative decimal integer", "hex"},
        {"blue", "1e3", "not a non-negative decimal integer", "exponent"},
        {"blue", "1.5", "not a non-negative decimal integer", "fraction"},
        {"blue", "", "not a non-negative decimal integer", "empty value"},
        {"blue", "99999999999999999999999", "is above 1000000", "overflow of 64 bits"},
        {"blue", "4294967296", "is above 1000000", "overflow of 32 bits"},
        {"blue", "1000001", "is above 1000000", "above CONF_MAX_WEIGHT"},
        {"purple", "10", "no such track", "unknown track"},
        {"Blue", "10", "no such track", "track names are case-sensitive"},
        {"", "10", "no such track", "empty field"},
        {"blue ", "10", "no such track", "field with a trailing space"},
    };
    uint32_t w[CONF_MAX_TRACKS];
    char err[256];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct bad_case *c = &cases[i];
        int rc = CHECK(w, err, "canary", "10", c->field, c->value);

        ok(rc == -1 && strstr(err, c->want) != NULL && strstr(err, "route web") != NULL,
           "%s refused: %s", c->what, err);
    }
    /* the message names the field */
    CHECK(w, err, "green", "12x");
    ok(strstr(err, "field \"green\"") != NULL && strstr(err, "\"12x\"") != NULL,
       "message names field and value: %s", err);
}

static void test_bad_shapes(void)
{
    const char *f[3] = {"blue", "blue", "canary"}, *v[3] = {"1", "2", "3"};
    size_t fl[3] = {4, 4, 6}, vl[3] = {1, 1, 1};
    const char nul_v[] = {'5', '\0', '5'}, nul_f[] = {'b', 'l', 'u', 'e', '\0'};
    uint32_t w[CONF_MAX_TRACKS];
    char err[256];
    int rc;

    ok(weights_from_hash(f, fl, v, vl, 0, web(), w, err, sizeof(err)) == -1 &&
           strstr(err, "empty hash") != NULL,
       "empty hash refused: %s", err);
    ok(weights_from_hash(f, fl, v, vl, 2, web(), w, err, sizeof(err)) == -1 &&
           strstr(err, "given twice") != NULL,
       "a field given twice refused: %s", err);
    ok(CHECK(w, err, "blue", "0", "canary", "0") == -1 && strstr(err, "all weights are zero"),
       "all zero refused: %s", err);
    ok(CHECK(w, err, "green", "0") == -1 && strstr(err, "all weights are zero"),
       "all zero through missing tracks refused: %s", err);

    /* binary-safe: an embedded NUL is not the end of the value or the field */
    f[0] = "blue";
    fl[0] = 4;
    v[0] = nul_v;
    vl[0] = sizeof(nul_v);
    rc = weights_from_hash(f, fl, v, vl, 1, web(), w, err, sizeof(err));
    ok(rc == -1 && strstr(err, "\\x00") != NULL, "value \"5\\0 5\" refused, escaped: %s", err);
    f[0] = nul_f;
    fl[0] = sizeof(nul_f);
    v[0] = "5";
    vl[0] = 1;
    rc = weights_from_hash(f, fl, v, vl, 1, web(), w, err, sizeof(err));
    ok(rc == -1 && strstr(err, "no such track") != NULL && strstr(err, "blue\\x00") != NULL,
       "field \"blue\\0\" is not blue: %s", err);

    /* a long value is cut in the message, which still fits */
    {
        char big[300];

        memset(big, '9', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        big[0] = 'x';
        rc = CHECK(w, err, "blue", big);
        ok(rc == -1 && strstr(err, "...") != NULL && strlen(err) < sizeof(err) - 1,
           "long value cut: %s", err);
    }
    /* a tiny buffer is still terminated */
    {
        char tiny[8];

        rc = CHECK(w, tiny, "blue", "nope");
        ok(rc == -1 && strlen(tiny) == sizeof(tiny) - 1, "error cut to a small buffer");
    }
}

static void test_no_server_track(void)
{
    const struct snap_route *api = &g_snap->routes[1];
    const char *f[2] = {"main", "empty"}, *v[2] = {"0", "5"};
    size_t fl[2] = {4, 5}, vl[2] = {1, 1};
    uint32_t w[CONF_MAX_TRACKS];
    char err[256];

    ok(weights_from_hash(f, fl, v, vl, 2, api, w, err, sizeof(err)) == -1 &&
           strstr(err, "route api: all weights are zero") != NULL,
       "weight only on a track without servers is all zero: %s", err);
    v[0] = "3";
    ok(weights_from_hash(f, fl, v, vl, 2, api, w, err, sizeof(err)) == 0 && w[0] == 3 && w[1] == 5,
       "a track without servers may carry a weight next to one that serves");
}

static void test_format(void)
{
    const char *f[2] = {"blue", "x\"y"}, *v[2] = {"5", "\x01"};
    size_t fl[2] = {4, 3}, vl[2] = {1, 1};
    uint32_t w[3] = {1, 2, 3};
    char buf[128], small[10];

    ok(strcmp(weights_format(web(), NULL, buf, sizeof(buf)), "blue=90,green=0,canary=10") == 0,
       "weights_format of the weights in force: %s", buf);
    ok(strcmp(weights_format(web(), w, buf, sizeof(buf)), "blue=1,green=2,canary=3") == 0,
       "weights_format of given weights: %s", buf);
    weights_format(web(), NULL, small, sizeof(small));
    ok(strlen(small) == sizeof(small) - 1, "weights_format cuts to the buffer: %s", small);
    ok(strcmp(weights_format_raw(f, fl, v, vl, 2, buf, sizeof(buf)), "blue=5,x\\x22y=\\x01") == 0,
       "weights_format_raw escapes: %s", buf);
    ok(weights_equal(web(), (const uint32_t[]){90, 0, 10}) == 1 &&
           weights_equal(web(), (const uint32_t[]){90, 1, 10}) == 0,
       "weights_equal");
}

static void test_snap_with_weights(void)
{
    const uint32_t w[3] = {0, 100, 0};
    struct snap *s = snap_with_weights(g_snap, 0, w, WSRC_REDIS, 7, 5000);
    struct snap *s2;
    const struct snap_route *r;

    ok(s != NULL, "snap_with_weights builds a copy");
    if (s == NULL)
        return;
    r = &s->routes[0];
    ok(s->generation == 7 && s->conf_generation == g_snap->conf_generation,
       "new generation, same conf generation");
    ok(r->tracks[0].weight == 0 && r->tracks[1].weight == 100 && r->tracks[2].weight == 0,
       "weights replaced");
    ok(r->tracks[0].conf_weight == 90 && r->tracks[2].conf_weight == 10,
       "config weights kept for when the key goes away");
    ok(r->tracks[0].src == WSRC_REDIS && r->tracks[1].src == WSRC_REDIS, "source is redis");
    ok(r->tracks[0].since_ms == 5000 && r->tracks[1].since_ms == 5000 &&
           r->tracks[2].since_ms == 5000,
       "every changed track is dated");
    ok(web()->tracks[0].weight == 90 && web()->tracks[0].src == WSRC_CONFIG,
       "the old snapshot is untouched");
    ok(s->routes[1].tracks[0].weight == 1 && s->routes[1].tracks[0].src == WSRC_CONFIG,
       "other routes keep their weights and source");
    ok(r->tracks[1].servers[0] >= s->servers && r->tracks[1].servers[0] < s->servers + s->n_servers,
       "server pointers point into the new snapshot");
    ok(strcmp(r->tracks[1].servers[0]->name, "127.0.0.1:9002") == 0, "servers copied");

    /* a second update: unchanged tracks keep their date */
    s2 = snap_with_weights(s, 0, (const uint32_t[]){0, 50, 50}, WSRC_REDIS, 8, 6000);
    ok(s2 != NULL && s2->routes[0].tracks[0].since_ms == 5000 &&
           s2->routes[0].tracks[1].since_ms == 6000 && s2->routes[0].tracks[2].since_ms == 6000,
       "only changed tracks are re-dated");
    snap_unref(s);
    if (s2 != NULL) {
        ok(s2->routes[0].tracks[1].servers[0]->addr.port == 9002, "copy valid after source freed");
        snap_unref(s2);
    }
    ok(snap_with_weights(g_snap, 5, w, WSRC_REDIS, 9, 0) == NULL, "route out of range: NULL");
}

/*
 * The worker's carry (proxy/worker.c worker_refresh): a new snapshot arrives,
 * the route keeps its tracks, so the worker copies its struct swrr and calls
 * swrr_set_weights() with the new weights.
 */
static int count_picks(struct swrr *s, int n, int *seq, int track)
{
    int i, c = 0;

    for (i = 0; i < n; i++) {
        int p = swrr_pick(s, 0xff);

        if (seq != NULL)
            seq[i] = p;
        c += p == track;
    }
    return c;
}

static void test_swrr_carry(void)
{
    const uint32_t w99[2] = {99, 1}, w50[2] = {50, 50}, w9010[2] = {90, 10};
    struct swrr ref, s, carried;
    int seq_ref[1000], seq[1000], i, ones = 0, exact = 1;

    /* 99:1 with an update (same weights) before every single pick: the same sequence */
    swrr_init(&ref, w99, 2);
    count_picks(&ref, 1000, seq_ref, 1);
    swrr_init(&s, w99, 2);
    for (i = 0; i < 1000; i++) {
        carried = s; /* rs[i] = w->routes[old] */
        swrr_set_weights(&carried, w99, 2);
        s = carried;
        seq[i] = swrr_pick(&s, 0xff);
        ones += seq[i] == 1;
    }
    ok(memcmp(seq, seq_ref, sizeof(seq)) == 0, "99:1 re-applied 1000 times: same sequence");
    ok(ones == 10, "99:1 re-applied 1000 times: exactly 10 of 1000 on the 1 (got %d)", ones);
    for (i = 0; i + 100 <= 1000; i++) {
        int j, c = 0;

        for (j = i; j < i + 100; j++)
            c += seq[j] == 1;
        exact &= c == 1;
    }
    ok(exact, "every window of 100 picks holds exactly one pick of the 1");

    /* 99:1 -> 50:50: after the change every full period of 100 is exact */
    swrr_init(&s, w99, 2);
    count_picks(&s, 37, NULL, 1);
    swrr_set_weights(&s, w50, 2);
    count_picks(&s, 100, NULL, 1); /* at most one period to converge */
    ok(count_picks(&s, 100, NULL, 1) == 50 && count_picks(&s, 100, NULL, 1) == 50,
       "99:1 -> 50:50: exact 50/50 per period after the first");

    /* 90:10 -> 50:50 -> 90:10: back and forth keeps each split exact per period */
    swrr_init(&s, w9010, 2);
    count_picks(&s, 55, NULL, 1);
    swrr_set_weights(&s, w50, 2);
    {
        int c = count_picks(&s, 100, NULL, 1);

        ok(c >= 49 && c <= 51, "90:10 -> 50:50: first period within one pick (%d)", c);
    }
    swrr_set_weights(&s, w9010, 2);
    count_picks(&s, 100, NULL, 1);
    ok(count_picks(&s, 100, NULL, 1) == 10, "50:50 -> 90:10: exact again after a period");

    /* a track dropped to 0 is never picked, and comes back neutral */
    swrr_init(&s, w9010, 2);
    count_picks(&s, 13, NULL, 1);
    swrr_set_weights(&s, (const uint32_t[]){100, 0}, 2);
    ok(count_picks(&s, 500, NULL, 1) == 0, "weight 0: never picked");
    swrr_set_weights(&s, w9010, 2);
    ok(count_picks(&s, 100, NULL, 1) == 10, "back to 90:10: exact in the first period");

    /* 100% blue -> 100% green: the very next pick is green */
    swrr_init(&s, (const uint32_t[]){100, 0}, 2);
    count_picks(&s, 7, NULL, 0);
    swrr_set_weights(&s, (const uint32_t[]){0, 100}, 2);
    ok(count_picks(&s, 50, NULL, 1) == 50, "100/0 -> 0/100: every pick after the update");
}

int main(void)
{
    struct conf *c = make_conf();

    g_snap = snap_from_conf(c, 1, 1, 1000);
    ok(g_snap != NULL, "snapshot built from the conf");
    if (g_snap == NULL)
        return done_testing();
    conf_free(c);

    subtest("valid hashes", test_good);
    subtest("bad values", test_bad_values);
    subtest("bad shapes", test_bad_shapes);
    subtest("tracks without servers", test_no_server_track);
    subtest("formatting", test_format);
    subtest("snap_with_weights", test_snap_with_weights);
    subtest("smooth WRR carried across updates", test_swrr_carry);
    snap_unref(g_snap);
    return done_testing();
}
