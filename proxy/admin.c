/*
 * admin.c: the admin endpoint (see admin.h): evhttp on the main thread.
 *
 * Layout: small writers (JSON with indentation, Prometheus label escaping),
 * the strict weights body parser, then one handler per endpoint and the
 * dispatcher. Handlers read the published snapshot for what is configured
 * and in force, stats.h's records for what happened, health.h's targets for
 * active checks and the glue for Redis; they never touch a worker's memory
 * except its monotonic atomic counters.
 */
#include "admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "../routing/guard.h"
#include "../routing/hist.h"
#include "../routing/snap.h"
#include "../routing/weights.h"
#include "../routing/win.h"
#include "health.h"
#include "log.h"
#include "mem.h"
#include "redis_glue.h"
#include "stats.h"
#include "worker.h"

#define ADMIN_MAX_HEADERS 8192 /* bytes of a request head */
#define ADMIN_MAX_BODY 4096    /* bytes of a request body (weights are a few dozen) */
#define ADMIN_TIMEOUT_S 10     /* per read/write on an admin connection */
#define ADMIN_TOKEN_MAX 4096   /* bytes of a token file */
#define ADMIN_MAX_PAIRS 32     /* fields in a weights body */
#define ADMIN_KEY_MAX 256      /* bytes of one decoded field name */
#define ADMIN_NUM_MAX 64       /* bytes of one number token */
#define ADMIN_ROUTE_MAX 256    /* bytes of a decoded route name in a path */
#define ADMIN_TRIP_CACHE 64    /* routes whose last trip is remembered across re-arms */
#define JW_MAX_DEPTH 16

/* The last trip of a route, kept after a re-arm clears guard_state.trip. */
struct admin_trip {
    char route[ADMIN_ROUTE_MAX];
    struct guard_reason why;
};

struct admin {
    struct admin_deps d;
    struct evhttp *http;
    int fd; /* the bound socket until evhttp takes it over, else -1 */
    char address[CONF_ADDR_HOSTLEN + 16];
    unsigned char token_sha[32];
    int has_token;
    uint64_t started_mono_ms, started_wall_ms;
    uint64_t loaded_mono_ms; /* the config in force was loaded */
    uint64_t reloads, reload_failures;
    struct admin_trip trip[ADMIN_TRIP_CACHE];
    size_t n_trip;
};

/* ---- clocks ---- */

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* "2026-11-27T16:19:33.123Z" */
static const char *iso8601(uint64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000u);
    struct tm tm;
    char s[32];

    gmtime_r(&t, &tm);
    strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03uZ", s, (unsigned)(ms % 1000u));
    return buf;
}

/* Wall-clock time of monotonic instant <mono> (ms). */
static uint64_t mono_to_wall(uint64_t mono, uint64_t now_mono, uint64_t now_wall)
{
    uint64_t ago = now_mono > mono ? now_mono - mono : 0;
    return now_wall > ago ? now_wall - ago : 0;
}

/* ---- JSON writer (indented, two spaces) ---- */

struct jw {
    struct evbuffer *b;
    int depth;
    unsigned char has[JW_MAX_DEPTH + 1];
};

/* Length of the valid UTF-8 sequence at <s> (<n> bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len, i;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* Appends <s> (<n> bytes) as a JSON string: quotes, backslashes and controls
 * escaped; valid UTF-8 kept; any other byte as \u00XX (so the output is
 * always valid JSON, whatever the input). */
static void json_string(struct evbuffer *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0;

    evbuffer_add(b, "\"", 1);
    while (i < n) {
        unsigned char c = u[i];
        size_t l = c >= 0x20 && c != '"' && c != '\\' ? utf8_len(u + i, n - i) : 0;

        if (l > 0) {
            i += l;
            run += l;
            continue;
        }
        if (run > 0)
            evbuffer_add(b, s + i - run, run);
        run = 0;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            evbuffer_add(b, e, 2);
        } else if (c == '\n') {
            evbuffer_add(b, "\\n", 2);
        } else if (c == '\t') {
            evbuffer_add(b, "\\t", 2);
        } else if (c == '\r') {
            evbuffer_add(b, "\\r", 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            evbuffer_add(b, e, 6);
        }
        i++;
    }
    if (run > 0)
        evbuffer_add(b, s + i - run, run);
    evbuffer_add(b, "\"", 1);
}

static void jw_sep(struct jw *j, const char *key)
{
    if (j->has[j->depth])
        evbuffer_add(j->b, ",", 1);
    if (j->depth > 0) {
        evbuffer_add(j->b, "\n", 1);
        for (int i = 0; i < j->depth; i++)
            evbuffer_add(j->b, "  ", 2);
    }
    if (key != NULL) {
        json_string(j->b, key, strlen(key));
        evbuffer_add(j->b, ": ", 2);
    }
    j->has[j->depth] = 1;
}

static void jw_open(struct jw *j, const char *key, char brace)
{
    jw_sep(j, key);
    evbuffer_add(j->b, &brace, 1);
    CUT_BUG_ON(j->depth >= JW_MAX_DEPTH);
    j->has[++j->depth] = 0;
}

static void jw_close(struct jw *j, char brace)
{
    int had = j->has[j->depth];

    CUT_BUG_ON(j->depth == 0);
    j->depth--;
    if (had) {
        evbuffer_add(j->b, "\n", 1);
        for (int i = 0; i < j->depth; i++)
            evbuffer_add(j->b, "  ", 2);
    }
    evbuffer_add(j->b, &brace, 1);
}

static void jw_str(struct jw *j, const char *key, const char *v)
{
    jw_sep(j, key);
    if (v == NULL)
        evbuffer_add(j->b, "null", 4);
    else
        json_string(j->b, v, strlen(v));
}

static void jw_u64(struct jw *j, const char *key, uint64_t v)
{
    jw_sep(j, key);
    evbuffer_add_printf(j->b, "%llu", (unsigned long long)v);
}

static void jw_i64(struct jw *j, const char *key, int64_t v)
{
    jw_sep(j, key);
    evbuffer_add_printf(j->b, "%lld", (long long)v);
}

/* A number; NaN and infinities (not JSON) as null. */
static void jw_num(struct jw *j, const char *key, double v)
{
    jw_sep(j, key);
    if (isfinite(v))
        evbuffer_add_printf(j->b, "%.6g", v);
    else
        evbuffer_add(j->b, "null", 4);
}

static void jw_bool(struct jw *j, const char *key, int v)
{
    jw_sep(j, key);
    if (v)
        evbuffer_add(j->b, "true", 4);
    else
        evbuffer_add(j->b, "false", 5);
}

static void jw_null(struct jw *j, const char *key)
{
    jw_sep(j, key);
    evbuffer_add(j->b, "null", 4);
}

/* ---- replies ---- */

static void reply(struct evhttp_request *req, int code, const char *ctype, struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        /* evhttp 2.1 would write the body after a HEAD's head (and no length): send
         * the length the GET would have, and no body */
        char len[24];
        snprintf(len, sizeof(len), "%zu", evbuffer_get_length(body));
        evhttp_add_header(h, "Content-Length", len);
        evbuffer_drain(body, evbuffer_get_length(body));
    }
    evhttp_send_reply(req, code, NULL, body);
}

static void reply_json(struct evhttp_request *req, int code, struct evbuffer *body)
{
    evbuffer_add(body, "\n", 1);
    reply(req, code, "application/json", body);
}

/* {"error": "<message>", "code": "<code>"} with status <status>. */
__attribute__((format(printf, 4, 5))) static void
reply_error(struct evhttp_request *req, int status, const char *code, const char *fmt, ...)
{
    struct evbuffer *b = evbuffer_new();
    struct jw j = {.b = b};
    char msg[768];
    va_list ap;

    if (b == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    jw_open(&j, NULL, '{');
    jw_str(&j, "error", msg);
    jw_str(&j, "code", code);
    jw_close(&j, '}');
    reply_json(req, status, b);
    evbuffer_free(b);
}

static void reply_method(struct evhttp_request *req, const char *allow)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    reply_error(req, 405, "method_not_allowed", "method not allowed here; allowed: %s", allow);
}

/* ---- the token ---- */

static int sha256(const void *p, size_t n, unsigned char out[32])
{
    unsigned int len = 0;

    return EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32 ? 0 : -1;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static int token_load(struct admin *a, const char *path, char *err, size_t errlen)
{
    char buf[ADMIN_TOKEN_MAX + 1];
    size_t n = 0, s = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;

    if (fd == -1) {
        snprintf(err, errlen, "admin token_file %s: %s", path, strerror(errno));
        return -1;
    }
    while (n < sizeof(buf)) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - n);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            snprintf(err, errlen, "admin token_file %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > ADMIN_TOKEN_MAX) {
        snprintf(err, errlen, "admin token_file %s: longer than %d bytes", path, ADMIN_TOKEN_MAX);
        goto out;
    }
    while (n > 0 && is_space(buf[n - 1]))
        n--;
    while (s < n && is_space(buf[s]))
        s++;
    if (s == n) {
        snprintf(err, errlen, "admin token_file %s: empty (a token is required when it is set)",
                 path);
        goto out;
    }
    for (size_t i = s; i < n; i++) {
        if ((unsigned char)buf[i] <= 0x20 || buf[i] == 0x7f) {
            snprintf(err, errlen,
                     "admin token_file %s: the token must be one word of printable "
                     "characters",
                     path);
            goto out;
        }
    }
    if (sha256(buf + s, n - s, a->token_sha) < 0) {
        snprintf(err, errlen, "admin token_file %s: SHA-256 unavailable", path);
        goto out;
    }
    a->has_token = 1;
    rc = 0;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    close(fd);
    return rc;
}

/*
 * 0 when the request may mutate; otherwise replies 401 or 403 and returns -1.
 * Both sides are hashed first, so the comparison takes the same time whatever
 * the length or content of the guess.
 */
static int authorize(struct admin *a, struct evhttp_request *req)
{
    const char *h;
    unsigned char got[32];
    size_t n;

    if (!a->has_token)
        return 0;
    h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"cutover admin\"");
        reply_error(req, 401, "unauthorized", "this needs an Authorization: Bearer <token> header");
        return -1;
    }
    h += 7;
    while (*h == ' ' || *h == '\t')
        h++;
    n = strlen(h);
    while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    if (sha256(h, n, got) < 0 || CRYPTO_memcmp(got, a->token_sha, sizeof(got)) != 0) {
        reply_error(req, 403, "forbidden", "wrong admin token");
        return -1;
    }
    return 0;
}

/* ---- the weights body: a strict parser for {"name": integer, ...} ---- */

struct wpair {
    char key[ADMIN_KEY_MAX];
    size_t klen;
    char num[ADMIN_NUM_MAX];
    size_t nlen;
};

struct jp {
    const char *s;
    size_t n, i;
    char *err;
    size_t errlen;
    const char *code; /* "bad_json", "not_integer", "negative", ... */
};

__attribute__((format(printf, 3, 4))) static int jp_fail(struct jp *p, const char *code,
                                                         const char *fmt, ...)
{
    va_list ap;

    p->code = code;
    va_start(ap, fmt);
    vsnprintf(p->err, p->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static void jp_ws(struct jp *p)
{
    while (p->i < p->n &&
           (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static int hex4(const char *s, uint32_t *out)
{
    uint32_t v = 0;

    for (int k = 0; k < 4; k++) {
        char c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static int put_utf8(char *out, size_t cap, size_t *len, uint32_t cp)
{
    char u[4];
    size_t l;

    if (cp < 0x80) {
        u[0] = (char)cp;
        l = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        l = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        l = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        l = 4;
    }
    if (*len + l > cap)
        return -1;
    memcpy(out + *len, u, l);
    *len += l;
    return 0;
}

/* A JSON string at p->i (the opening quote), decoded into <out>. */
static int jp_string(struct jp *p, char *out, size_t cap, size_t *len)
{
    *len = 0;
    p->i++; /* the quote */
    while (p->i < p->n) {
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') {
            p->i++;
            return 0;
        }
        if (c < 0x20)
            return jp_fail(p, "bad_json", "invalid JSON: control character in a string at byte %zu",
                           p->i);
        if (c == '\\') {
            char e;
            uint32_t cp, lo;

            if (p->i + 1 >= p->n)
                break;
            e = p->s[p->i + 1];
            p->i += 2;
            switch (e) {
            case '"':
            case '\\':
            case '/':
                cp = (uint32_t)e;
                break;
            case 'b':
                cp = '\b';
                break;
            case 'f':
                cp = '\f';
                break;
            case 'n':
                cp = '\n';
                break;
            case 'r':
                cp = '\r';
                break;
            case 't':
                cp = '\t';
                break;
            case 'u':
                if (p->i + 4 > p->n || hex4(p->s + p->i, &cp) < 0)
                    return jp_fail(p, "bad_json", "invalid JSON: bad \\u escape at byte %zu", p->i);
                p->i += 4;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (p->i + 6 > p->n || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u' ||
                        hex4(p->s + p->i + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                        return jp_fail(p, "bad_json",
                                       "invalid JSON: unpaired surrogate at byte %zu", p->i);
                    p->i += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                    return jp_fail(p, "bad_json", "invalid JSON: unpaired surrogate at byte %zu",
                                   p->i);
                } else if (cp == 0) {
                    return jp_fail(p, "bad_json", "invalid JSON: \\u0000 in a name");
                }
                break;
            default:
                return jp_fail(p, "bad_json", "invalid JSON: bad escape \\%c at byte %zu",
                               e >= 0x20 && e < 0x7f ? e : '?', p->i - 1);
            }
            if (put_utf8(out, cap, len, cp) < 0)
                return jp_fail(p, "bad_json", "a field name is longer than %d bytes",
                               ADMIN_KEY_MAX);
            continue;
        }
        if (*len + 1 > cap)
            return jp_fail(p, "bad_json", "a field name is longer than %d bytes", ADMIN_KEY_MAX);
        out[(*len)++] = (char)c;
        p->i++;
    }
    return jp_fail(p, "bad_json", "invalid JSON: unterminated string");
}

/* Printable copy of a decoded key for messages. */
static const char *key_text(const struct wpair *w, char *buf, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < w->klen && o + 5 < len; i++) {
        unsigned char c = (unsigned char)w->key[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
    }
    buf[o] = '\0';
    return buf;
}

/*
 * A JSON number at p->i: grammar -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?.
 * Only plain non-negative integers are weights: a minus sign, a fraction or
 * an exponent is refused with its own reason. The digits go to <w->num> for
 * weights_from_hash(), which applies the range and the track rules.
 */
static int jp_number(struct jp *p, struct wpair *w)
{
    size_t st = p->i, d0;
    int neg = 0, frac = 0, exp = 0;
    char kb[ADMIN_KEY_MAX * 4 + 1];

    if (p->s[p->i] == '-') {
        neg = 1;
        p->i++;
    }
    d0 = p->i;
    if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
        return jp_fail(p, "bad_json", "invalid JSON: bad number at byte %zu", st);
    if (p->s[p->i] == '0') {
        p->i++;
        if (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            return jp_fail(p, "bad_json", "invalid JSON: leading zero in a number at byte %zu", st);
    } else {
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
    }
    size_t dn = p->i - d0;
    if (p->i < p->n && p->s[p->i] == '.') {
        frac = 1;
        p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
            return jp_fail(p, "bad_json", "invalid JSON: bad number at byte %zu", st);
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        exp = 1;
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
            p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
            return jp_fail(p, "bad_json", "invalid JSON: bad number at byte %zu", st);
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
    }
    if (neg)
        return jp_fail(p, "negative", "field \"%s\": %.*s is negative; weights are integers >= 0",
                       key_text(w, kb, sizeof(kb)), (int)(p->i - st), p->s + st);
    if (frac || exp)
        return jp_fail(p, "not_integer", "field \"%s\": %.*s is not an integer",
                       key_text(w, kb, sizeof(kb)), (int)(p->i - st), p->s + st);
    if (dn >= sizeof(w->num))
        return jp_fail(p, "too_large", "field \"%s\": the value is above %u",
                       key_text(w, kb, sizeof(kb)), (unsigned)CONF_MAX_WEIGHT);
    memcpy(w->num, p->s + d0, dn);
    w->nlen = dn;
    return 0;
}

/* Parses the whole body: one flat object of name -> integer. Returns the number of pairs or -1. */
static int parse_weights_body(struct jp *p, struct wpair *pairs, size_t max)
{
    size_t n = 0;
    char kb[ADMIN_KEY_MAX * 4 + 1];

    for (size_t i = 0; i < p->n; i++)
        if (p->s[i] == '\0')
            return jp_fail(p, "bad_json", "invalid JSON: NUL byte at %zu", i);
    for (size_t i = 0; i < p->n;) {
        size_t l = utf8_len((const unsigned char *)p->s + i, p->n - i);
        if (l == 0)
            return jp_fail(p, "bad_json", "invalid JSON: not UTF-8 at byte %zu", i);
        i += l;
    }
    jp_ws(p);
    if (p->i >= p->n)
        return jp_fail(p, "bad_json", "invalid JSON: empty body; send {\"track\": weight, ...}");
    if (p->s[p->i] != '{')
        return jp_fail(p, "bad_json", "invalid JSON: expected an object {\"track\": weight, ...}");
    p->i++;
    jp_ws(p);
    if (p->i < p->n && p->s[p->i] == '}') {
        p->i++;
    } else {
        for (;;) {
            struct wpair *w;

            jp_ws(p);
            if (p->i >= p->n || p->s[p->i] != '"')
                return jp_fail(p, "bad_json", "invalid JSON: expected a quoted name at byte %zu",
                               p->i);
            if (n == max)
                return jp_fail(p, "bad_json", "too many fields (more than %zu)", max);
            w = &pairs[n];
            if (jp_string(p, w->key, sizeof(w->key), &w->klen) < 0)
                return -1;
            jp_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':')
                return jp_fail(p, "bad_json", "invalid JSON: expected ':' at byte %zu", p->i);
            p->i++;
            jp_ws(p);
            if (p->i >= p->n)
                return jp_fail(p, "bad_json", "invalid JSON: value missing at the end");
            char c = p->s[p->i];
            if (c == '-' || (c >= '0' && c <= '9')) {
                if (jp_number(p, w) < 0)
                    return -1;
            } else if (c == '"' || c == '{' || c == '[' || c == 't' || c == 'f' || c == 'n') {
                return jp_fail(p, "not_integer",
                               "field \"%s\": the value must be a JSON integer (not a string, "
                               "boolean, null, object or array)",
                               key_text(w, kb, sizeof(kb)));
            } else {
                return jp_fail(p, "bad_json", "invalid JSON: unexpected '%c' at byte %zu",
                               c >= 0x20 && c < 0x7f ? c : '?', p->i);
            }
            n++;
            jp_ws(p);
            if (p->i < p->n && p->s[p->i] == ',') {
                p->i++;
                continue;
            }
            if (p->i < p->n && p->s[p->i] == '}') {
                p->i++;
                break;
            }
            return jp_fail(p, "bad_json", "invalid JSON: expected ',' or '}' at byte %zu", p->i);
        }
    }
    jp_ws(p);
    if (p->i != p->n)
        return jp_fail(p, "bad_json", "invalid JSON: trailing bytes after the object at byte %zu",
                       p->i);
    if (n == 0)
        return jp_fail(p, "empty", "no weights given; send {\"track\": weight, ...}");
    return (int)n;
}

/* Maps a weights_from_hash() message to a code for clients. */
static const char *weights_err_code(const char *msg)
{
    if (strstr(msg, "no such track") != NULL)
        return "unknown_track";
    if (strstr(msg, "all weights are zero") != NULL)
        return "all_zero";
    if (strstr(msg, "is above") != NULL)
        return "too_large";
    if (strstr(msg, "given twice") != NULL)
        return "duplicate";
    if (strstr(msg, "not a non-negative") != NULL)
        return "not_integer";
    return "invalid_weights";
}

/* ---- helpers over the records ---- */

static struct rt_track *rt_track_find(struct rt_route *r, const char *name)
{
    for (size_t i = 0; r != NULL && i < r->n_tracks; i++)
        if (strcmp(r->tracks[i].name, name) == 0)
            return &r->tracks[i];
    return NULL;
}

static struct rt_server *rt_server_find(const char *name)
{
    for (struct rt_server *s = stats_servers(); s != NULL; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

/* The cached copy of <route>'s last trip, creating it when <create>. */
static struct admin_trip *trip_slot(struct admin *a, const char *route, int create)
{
    for (size_t i = 0; i < a->n_trip; i++)
        if (strcmp(a->trip[i].route, route) == 0)
            return &a->trip[i];
    if (!create || a->n_trip == ADMIN_TRIP_CACHE || strlen(route) >= ADMIN_ROUTE_MAX)
        return NULL;
    struct admin_trip *t = &a->trip[a->n_trip++];
    memset(t, 0, sizeof(*t));
    snprintf(t->route, sizeof(t->route), "%s", route);
    return t;
}

/* Remembers a tripped guard's evidence, so that it outlives a re-arm. */
static void trip_note(struct admin *a, const struct rt_route *r)
{
    if (r == NULL || !r->has_guard || !r->g.tripped)
        return;
    struct admin_trip *t = trip_slot(a, r->name, 1);
    if (t != NULL) {
        t->why = r->g.trip;
    }
}

static void trip_note_all(struct admin *a)
{
    for (struct rt_route *r = stats_routes(); r != NULL; r = r->next)
        trip_note(a, r);
}

static uint64_t workers_sum(const struct admin *a, size_t off)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < a->d.n_workers; i++) {
        const _Atomic uint64_t *p =
            (const _Atomic uint64_t *)(const void *)((const char *)&a->d.workers[i].stats + off);
        v += atomic_load_explicit(p, memory_order_relaxed);
    }
    return v;
}

#define WSUM(a, field) workers_sum((a), offsetof(struct worker_stats, field))

/* Sum of the requests (not forced) of every track of route <r> over <st>[]. */
static uint64_t route_total(const struct win_stats *st, size_t n)
{
    uint64_t t = 0;

    for (size_t i = 0; i < n; i++)
        t += st[i].c.n;
    return t;
}

static const char *class_names[WIN_N_CLASSES] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
static const char *fail_names[WIN_FAIL_N] = {"none", "connect", "timeout", "reset"};
static const char *cusum_names[GUARD_N_CUSUMS] = {"E1", "E2", "L1", "L2"};

/* ---- GET /status ---- */

struct track_view {
    const struct snap_track *st;
    struct rt_track *rt;
    struct win_stats w10, w60;
};

static void status_window(struct jw *j, const char *key, const struct win_stats *w)
{
    jw_open(j, key, '{');
    jw_u64(j, "requests", w->c.n);
    jw_u64(j, "errors", w->c.n_err);
    if (w->c.n > 0)
        jw_num(j, "error_rate", (double)w->c.n_err / (double)w->c.n);
    else
        jw_null(j, "error_rate");
    if (w->lat.count > 0) {
        jw_num(j, "p50_ms", (double)hist_quantile(&w->lat, 0.5) / 1000.0);
        jw_num(j, "p99_ms", (double)hist_quantile(&w->lat, 0.99) / 1000.0);
    } else {
        jw_null(j, "p50_ms");
        jw_null(j, "p99_ms");
    }
    jw_u64(j, "forced", w->c.n_forced);
    jw_close(j, '}');
}

static void status_server(struct jw *j, const struct snap_server *sv, uint64_t now)
{
    struct hc_target *hc = health_find(sv->name);
    struct rt_server *rs = rt_server_find(sv->name);

    jw_open(j, NULL, '{');
    jw_str(j, "address", sv->name);
    jw_open(j, "health", '{');
    jw_bool(j, "checked", hc != NULL);
    jw_bool(j, "healthy", hc == NULL || atomic_load(&hc->healthy));
    if (hc != NULL) {
        jw_u64(j, "checks", hc->checks);
        jw_u64(j, "failures", hc->failures);
        jw_u64(j, "transitions", hc->transitions);
        jw_str(j, "last_error", hc->last_error[0] ? hc->last_error : NULL);
    }
    jw_close(j, '}');
    jw_open(j, "ejection", '{');
    if (rs != NULL) {
        jw_bool(j, "ejected", rs->c.ejected_until_ms > now);
        jw_u64(j, "ejections", rs->c.ejections);
        if (rs->c.ejected_until_ms > now)
            jw_u64(j, "ms_left", rs->c.ejected_until_ms - now);
    } else {
        jw_bool(j, "ejected", 0);
        jw_u64(j, "ejections", 0);
    }
    jw_close(j, '}');
    jw_u64(j, "requests", rs != NULL ? rs->c.requests : 0);
    jw_u64(j, "errors", rs != NULL ? rs->c.errors : 0);
    if (rs != NULL) {
        /* the server's own 10 s and 60 s windows: outcomes and latency */
        struct win_stats *ws = malloc(sizeof(*ws));
        if (ws != NULL) {
            win_sum(&rs->win, now, 10000, ws);
            status_window(j, "window_10s", ws);
            win_sum(&rs->win, now, 60000, ws);
            status_window(j, "window_60s", ws);
            free(ws);
        }
    }
    jw_close(j, '}');
}

static void status_guard_reason(struct jw *j, const char *key, const struct guard_reason *w,
                                uint64_t now, uint64_t now_wall)
{
    char ts[40];

    jw_open(j, key, '{');
    jw_str(j, "test", guard_test_name(w->test));
    jw_str(j, "at", iso8601(mono_to_wall(w->at_ms, now, now_wall), ts, sizeof(ts)));
    jw_u64(j, "ms_ago", now > w->at_ms ? now - w->at_ms : 0);
    jw_str(j, "text", w->text);
    jw_open(j, "cusum", '{');
    for (int k = 0; k < GUARD_N_CUSUMS; k++)
        jw_num(j, cusum_names[k], w->s[k]);
    jw_close(j, '}');
    jw_u64(j, "baseline_requests", w->base_n);
    jw_u64(j, "baseline_errors", w->base_err);
    jw_u64(j, "candidate_requests", w->cand_n);
    jw_u64(j, "candidate_errors", w->cand_err);
    jw_u64(j, "candidate_failure_run", w->cand_fail_run);
    jw_close(j, '}');
}

static void status_guard(struct admin *a, struct jw *j, struct rt_route *r, uint64_t now,
                         uint64_t now_wall)
{
    if (r == NULL || !r->has_guard) {
        jw_null(j, "guard");
        return;
    }
    trip_note(a, r);
    const struct guard_state *g = &r->g;
    jw_open(j, "guard", '{');
    jw_str(j, "baseline", r->tracks[r->base].name);
    jw_str(j, "candidate", r->tracks[r->cand].name);
    jw_str(j, "state", g->tripped ? "tripped" : "armed");
    jw_u64(j, "armed_ms_ago", now > g->armed_ms ? now - g->armed_ms : 0);
    jw_u64(j, "candidate_outcomes_since_armed", g->cand_seen);
    jw_open(j, "cusum", '{');
    for (int k = 0; k < GUARD_N_CUSUMS; k++)
        jw_num(j, cusum_names[k], g->s[k]);
    jw_close(j, '}');
    jw_num(j, "h", r->grt.h);
    jw_u64(j, "candidate_failure_run", g->cand_fail_run);
    jw_u64(j, "baseline_success_run", g->base_ok_run);
    jw_u64(j, "min_requests", r->grt.min_requests);
    jw_u64(j, "trips", r->trips);
    struct admin_trip *t = trip_slot(a, r->name, 0);
    if (g->tripped)
        status_guard_reason(j, "last_trip", &g->trip, now, now_wall);
    else if (t != NULL)
        status_guard_reason(j, "last_trip", &t->why, now, now_wall);
    else
        jw_null(j, "last_trip");
    jw_close(j, '}');
}

static void status_route(struct admin *a, struct jw *j, const struct snap_route *sr, uint64_t now,
                         uint64_t now_wall)
{
    struct rt_route *r = stats_route(sr->name);
    struct track_view *tv = calloc(sr->n_tracks ? sr->n_tracks : 1, sizeof(*tv));
    struct win_stats *w10 = calloc(sr->n_tracks ? sr->n_tracks : 1, sizeof(*w10));
    struct win_stats *w60 = calloc(sr->n_tracks ? sr->n_tracks : 1, sizeof(*w60));
    uint64_t wsum = 0, tot10, tot60;
    char ts[40];

    jw_open(j, NULL, '{');
    jw_str(j, "name", sr->name);
    if (tv == NULL || w10 == NULL || w60 == NULL) {
        jw_str(j, "error", "out of memory");
        goto out;
    }
    for (size_t k = 0; k < sr->n_tracks; k++) {
        tv[k].st = &sr->tracks[k];
        tv[k].rt = rt_track_find(r, sr->tracks[k].name);
        if (tv[k].rt != NULL) {
            win_sum(&tv[k].rt->win, now, 10000, &w10[k]);
            win_sum(&tv[k].rt->win, now, WIN_SPAN_MS, &w60[k]);
        } else {
            win_stats_init(&w10[k], now, 10000);
            win_stats_init(&w60[k], now, WIN_SPAN_MS);
        }
        wsum += sr->tracks[k].weight;
    }
    tot10 = route_total(w10, sr->n_tracks);
    tot60 = route_total(w60, sr->n_tracks);
    if (sr->host_kind == HOST_SUFFIX) {
        char h[300];
        snprintf(h, sizeof(h), "*%s", sr->host);
        jw_str(j, "host", h);
    } else {
        jw_str(j, "host", sr->host_kind == HOST_ANY ? "*" : sr->host);
    }
    jw_str(j, "path_prefix", sr->path_prefix);
    jw_u64(j, "weights_sum", wsum);
    jw_u64(j, "requests_10s", tot10);
    jw_u64(j, "requests_60s", tot60);
    jw_open(j, "tracks", '[');
    for (size_t k = 0; k < sr->n_tracks; k++) {
        const struct snap_track *st = tv[k].st;
        jw_open(j, NULL, '{');
        jw_str(j, "name", st->name);
        jw_u64(j, "weight", st->weight);
        jw_u64(j, "conf_weight", st->conf_weight);
        jw_str(j, "source", weight_src_name(st->src));
        jw_str(j, "since", iso8601(mono_to_wall(st->since_ms, now, now_wall), ts, sizeof(ts)));
        jw_u64(j, "since_ms_ago", now > st->since_ms ? now - st->since_ms : 0);
        jw_num(j, "weight_share", wsum ? (double)st->weight / (double)wsum : 0.0);
        if (tot10)
            jw_num(j, "share_10s", (double)w10[k].c.n / (double)tot10);
        else
            jw_null(j, "share_10s");
        if (tot60)
            jw_num(j, "share_60s", (double)w60[k].c.n / (double)tot60);
        else
            jw_null(j, "share_60s");
        status_window(j, "window_10s", &w10[k]);
        status_window(j, "window_60s", &w60[k]);
        jw_open(j, "totals", '{');
        if (tv[k].rt != NULL) {
            const struct rt_counters *c = &tv[k].rt->c;
            jw_u64(j, "requests", c->requests);
            jw_u64(j, "forced", c->forced);
            jw_u64(j, "errors", c->errors);
            jw_open(j, "status", '{');
            for (int i = 0; i < WIN_N_CLASSES; i++)
                jw_u64(j, class_names[i], c->n_class[i]);
            jw_close(j, '}');
        }
        jw_close(j, '}');
        jw_open(j, "servers", '[');
        for (size_t s = 0; s < st->n_servers; s++)
            status_server(j, st->servers[s], now);
        jw_close(j, ']');
        jw_close(j, '}');
    }
    jw_close(j, ']');
    status_guard(a, j, r, now, now_wall);
out:
    jw_close(j, '}');
    free(tv);
    free(w10);
    free(w60);
}

static void status_redis(struct admin *a, struct jw *j)
{
    struct redis_glue_info ri;

    redis_glue_get_info(a->d.redis, &ri);
    jw_open(j, "redis", '{');
    jw_bool(j, "enabled", ri.enabled);
    if (ri.enabled) {
        jw_bool(j, "connected", ri.connected);
        jw_str(j, "address", ri.address);
        jw_str(j, "prefix", ri.prefix);
        jw_str(j, "instance", ri.instance);
        jw_u64(j, "connects", ri.connects);
        jw_u64(j, "failures_in_a_row", ri.failures);
        if (ri.last_apply_us >= 0)
            jw_num(j, "last_apply_ms", (double)ri.last_apply_us / 1000.0);
        else
            jw_null(j, "last_apply_ms");
    }
    jw_close(j, '}');
}

static void handle_status(struct admin *a, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    struct snap *s = shared_snap_get(a->d.sh);
    uint64_t now = cut_now_ms(), now_wall = wall_ms();
    struct jw j = {.b = b};
    char ts[40];

    if (b == NULL) {
        snap_unref(s);
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    jw_open(&j, NULL, '{');
    jw_str(&j, "version", a->d.version);
    jw_i64(&j, "pid", (int64_t)getpid());
    jw_str(&j, "time", iso8601(now_wall, ts, sizeof(ts)));
    jw_str(&j, "started", iso8601(a->started_wall_ms, ts, sizeof(ts)));
    jw_num(&j, "uptime_s", (double)(now - a->started_mono_ms) / 1000.0);
    jw_bool(&j, "draining", atomic_load(&a->d.sh->draining));
    jw_open(&j, "config", '{');
    jw_str(&j, "path", a->d.conf_path);
    jw_u64(&j, "generation", s->conf_generation);
    jw_str(&j, "loaded_at",
           iso8601(mono_to_wall(a->loaded_mono_ms, now, now_wall), ts, sizeof(ts)));
    jw_u64(&j, "loaded_ms_ago", now - a->loaded_mono_ms);
    jw_u64(&j, "reloads", a->reloads);
    jw_u64(&j, "reload_failures", a->reload_failures);
    jw_close(&j, '}');
    jw_u64(&j, "snapshot_generation", s->generation);
    jw_u64(&j, "workers", a->d.n_workers);
    jw_u64(&j, "connections_open", WSUM(a, conns_open));
    jw_u64(&j, "streams_open", WSUM(a, streams_open));
    status_redis(a, &j);
    jw_open(&j, "routes", '[');
    for (size_t i = 0; i < s->n_routes; i++)
        status_route(a, &j, &s->routes[i], now, now_wall);
    jw_close(&j, ']');
    jw_close(&j, '}');
    snap_unref(s);
    reply_json(req, HTTP_OK, b);
    evbuffer_free(b);
}

/* ---- GET /metrics ---- */

/* Appends a label value escaped as the text format wants: \\, \" and \n. */
static void prom_label(struct evbuffer *b, const char *s)
{
    const char *run = s;

    for (; *s; s++) {
        const char *e = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        if (e == NULL)
            continue;
        evbuffer_add(b, run, (size_t)(s - run));
        evbuffer_add(b, e, 2);
        run = s + 1;
    }
    evbuffer_add(b, run, (size_t)(s - run));
}

static void prom_head(struct evbuffer *b, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{k1="v1",k2="v2"...} value: <labels> is NULL-terminated pairs. */
static void prom_sample(struct evbuffer *b, const char *name, const char *const *labels,
                        const char *value)
{
    evbuffer_add_printf(b, "%s", name);
    if (labels != NULL && labels[0] != NULL) {
        evbuffer_add(b, "{", 1);
        for (size_t i = 0; labels[i] != NULL; i += 2) {
            evbuffer_add_printf(b, "%s%s=\"", i ? "," : "", labels[i]);
            prom_label(b, labels[i + 1]);
            evbuffer_add(b, "\"", 1);
        }
        evbuffer_add(b, "}", 1);
    }
    evbuffer_add_printf(b, " %s\n", value);
}

static void prom_u64(struct evbuffer *b, const char *name, const char *const *labels, uint64_t v)
{
    char s[32];

    snprintf(s, sizeof(s), "%llu", (unsigned long long)v);
    prom_sample(b, name, labels, s);
}

static void prom_f64(struct evbuffer *b, const char *name, const char *const *labels, double v)
{
    char s[40];

    if (isnan(v))
        snprintf(s, sizeof(s), "NaN");
    else if (isinf(v))
        snprintf(s, sizeof(s), v > 0 ? "+Inf" : "-Inf");
    else if (snprintf(s, sizeof(s), "%.15g", v) > 0 && strtod(s, NULL) != v)
        snprintf(s, sizeof(s), "%.17g", v); /* the shortest of the two that reads back exactly */
    prom_sample(b, name, labels, s);
}

/* Upper bounds of the latency histogram buckets, in microseconds (1 ms .. 30 s). */
static const uint64_t lat_bounds_us[] = {1000,    2500,    5000,     10000,    25000,
                                         50000,   100000,  250000,   500000,   1000000,
                                         2500000, 5000000, 10000000, 20000000, 30000000};
#define N_LAT_BOUNDS (sizeof(lat_bounds_us) / sizeof(lat_bounds_us[0]))

/* For each route of <s> and each of its tracks with a record: fn(b, route, track, rt). */
typedef void track_metric_fn(struct evbuffer *b, const struct snap_route *sr,
                             const struct snap_track *st, struct rt_track *rt, void *arg);

static void for_tracks(struct evbuffer *b, const struct snap *s, track_metric_fn *fn, void *arg)
{
    for (size_t i = 0; i < s->n_routes; i++) {
        struct rt_route *r = stats_route(s->routes[i].name);
        for (size_t k = 0; k < s->routes[i].n_tracks; k++)
            fn(b, &s->routes[i], &s->routes[i].tracks[k],
               rt_track_find(r, s->routes[i].tracks[k].name), arg);
    }
}

static void m_requests(struct evbuffer *b, const struct snap_route *sr, const struct snap_track *st,
                       struct rt_track *rt, void *arg)
{
    for (int c = 0; c < WIN_N_CLASSES; c++) {
        const char *l[] = {"route", sr->name, "track", st->name, "class", class_names[c], NULL};
        prom_u64(b, "cutover_requests_total", l, rt != NULL ? rt->c.n_class[c] : 0);
    }
}

static void m_forced(struct evbuffer *b, const struct snap_route *sr, const struct snap_track *st,
                     struct rt_track *rt, void *arg)
{
    const char *l[] = {"route", sr->name, "track", st->name, NULL};
    prom_u64(b, "cutover_forced_requests_total", l, rt != NULL ? rt->c.forced : 0);
}

static void m_upstream_errors(struct evbuffer *b, const struct snap_route *sr,
                              const struct snap_track *st, struct rt_track *rt, void *arg)
{
    for (int f = 1; f < WIN_FAIL_N; f++) {
        const char *l[] = {"route", sr->name, "track", st->name, "kind", fail_names[f], NULL};
        prom_u64(b, "cutover_upstream_errors_total", l, rt != NULL ? rt->c.n_fail[f] : 0);
    }
    const char *l[] = {"route", sr->name, "track", st->name, "kind", "status_5xx", NULL};
    prom_u64(b, "cutover_upstream_errors_total", l, rt != NULL ? rt->c.n_class[5] : 0);
}

static void m_latency(struct evbuffer *b, const struct snap_route *sr, const struct snap_track *st,
                      struct rt_track *rt, void *arg)
{
    char le[24];
    const char *l[] = {"route", sr->name, "track", st->name, "le", le, NULL};
    const char *l2[] = {"route", sr->name, "track", st->name, NULL};
    uint64_t count = rt != NULL ? rt->lat.count : 0;

    for (size_t i = 0; i < N_LAT_BOUNDS; i++) {
        snprintf(le, sizeof(le), "%g", (double)lat_bounds_us[i] / 1e6);
        prom_u64(b, "cutover_upstream_latency_seconds_bucket", l,
                 rt != NULL ? hist_count_le(&rt->lat, lat_bounds_us[i]) : 0);
    }
    snprintf(le, sizeof(le), "+Inf");
    prom_u64(b, "cutover_upstream_latency_seconds_bucket", l, count);
    prom_f64(b, "cutover_upstream_latency_seconds_sum", l2,
             rt != NULL ? (double)rt->lat.sum / 1e6 : 0.0);
    prom_u64(b, "cutover_upstream_latency_seconds_count", l2, count);
}

static void m_weight(struct evbuffer *b, const struct snap_route *sr, const struct snap_track *st,
                     struct rt_track *rt, void *arg)
{
    const char *l[] = {"route", sr->name, "track", st->name, "source", weight_src_name(st->src),
                       NULL};
    prom_u64(b, "cutover_weight", l, st->weight);
}

static void m_conf_weight(struct evbuffer *b, const struct snap_route *sr,
                          const struct snap_track *st, struct rt_track *rt, void *arg)
{
    const char *l[] = {"route", sr->name, "track", st->name, NULL};
    prom_u64(b, "cutover_config_weight", l, st->conf_weight);
}

struct share_arg {
    uint64_t now;
};

/*
 * Outcomes in <w> over the last <span_ms> as of <now_ms>: win_sum()'s slot
 * selection (the current second and the ones before it, stale or future
 * stamps skipped) without merging histograms, for the share gauges.
 */
static uint64_t win_count(const struct win *w, uint64_t now_ms, unsigned span_ms)
{
    uint64_t now_sec = now_ms / WIN_SLOT_MS, n = 0;
    uint64_t n_sec = (span_ms + WIN_SLOT_MS - 1) / WIN_SLOT_MS;

    if (n_sec == 0)
        n_sec = 1;
    if (n_sec > WIN_SLOTS)
        n_sec = WIN_SLOTS;
    for (unsigned i = 0; i < WIN_SLOTS; i++) {
        uint64_t sec = w->slot[i].sec;
        if (sec != UINT64_MAX && sec <= now_sec && sec + n_sec > now_sec)
            n += w->slot[i].t.n;
    }
    return n;
}

static void m_share(struct evbuffer *b, const struct snap_route *sr, const struct snap_track *st,
                    struct rt_track *rt, void *arg)
{
    const struct share_arg *sa = arg;
    static const unsigned spans[2] = {10000, WIN_SPAN_MS};
    static const char *const span_names[2] = {"10s", "60s"};
    struct rt_route *r = stats_route(sr->name);

    for (int k = 0; k < 2; k++) {
        uint64_t mine = 0, all = 0;
        for (size_t i = 0; r != NULL && i < sr->n_tracks; i++) {
            struct rt_track *t = rt_track_find(r, sr->tracks[i].name);
            if (t == NULL)
                continue;
            uint64_t n = win_count(&t->win, sa->now, spans[k]);
            all += n;
            if (t == rt)
                mine = n;
        }
        const char *l[] = {"route", sr->name, "track", st->name, "window", span_names[k], NULL};
        prom_f64(b, "cutover_realised_share", l, all ? (double)mine / (double)all : 0.0);
    }
}

static void metrics_servers(struct evbuffer *b, uint64_t now)
{
    prom_head(b, "cutover_server_requests_total", "counter",
              "Upstream attempts finished per server, by status class (none: no response head).");
    for (struct rt_server *s = stats_servers(); s != NULL; s = s->next)
        for (int c = 0; c < WIN_N_CLASSES; c++) {
            const char *l[] = {"server", s->name, "class", class_names[c], NULL};
            prom_u64(b, "cutover_server_requests_total", l, s->c.n_class[c]);
        }
    prom_head(b, "cutover_server_upstream_errors_total", "counter",
              "Upstream failures per server by kind (connect, timeout, reset, status_5xx).");
    for (struct rt_server *s = stats_servers(); s != NULL; s = s->next) {
        for (int f = 1; f < WIN_FAIL_N; f++) {
            const char *l[] = {"server", s->name, "kind", fail_names[f], NULL};
            prom_u64(b, "cutover_server_upstream_errors_total", l, s->c.n_fail[f]);
        }
        const char *l[] = {"server", s->name, "kind", "status_5xx", NULL};
        prom_u64(b, "cutover_server_upstream_errors_total", l, s->c.n_class[5]);
    }
    prom_head(b, "cutover_server_ejections_total", "counter",
              "Passive outlier ejections of a server (summed over workers).");
    for (struct rt_server *s = stats_servers(); s != NULL; s = s->next) {
        const char *l[] = {"server", s->name, NULL};
        prom_u64(b, "cutover_server_ejections_total", l, s->c.ejections);
    }
    prom_head(b, "cutover_server_ejected", "gauge",
              "1 while a server is ejected by at least one worker (latest ejection not over).");
    for (struct rt_server *s = stats_servers(); s != NULL; s = s->next) {
        const char *l[] = {"server", s->name, NULL};
        prom_u64(b, "cutover_server_ejected", l, s->c.ejected_until_ms > now);
    }
    prom_head(b, "cutover_server_healthy", "gauge",
              "Active health check verdict (1 healthy; servers without checks count as healthy).");
    for (struct hc_target *t = health_targets(); t != NULL; t = t->next) {
        if (!t->active)
            continue;
        const char *l[] = {"server", t->name, NULL};
        prom_u64(b, "cutover_server_healthy", l, (uint64_t)atomic_load(&t->healthy));
    }
    prom_head(b, "cutover_health_checks_total", "counter", "Active health checks run.");
    for (struct hc_target *t = health_targets(); t != NULL; t = t->next) {
        if (!t->active)
            continue;
        const char *l[] = {"server", t->name, NULL};
        prom_u64(b, "cutover_health_checks_total", l, t->checks);
    }
    prom_head(b, "cutover_health_check_failures_total", "counter", "Active health checks failed.");
    for (struct hc_target *t = health_targets(); t != NULL; t = t->next) {
        if (!t->active)
            continue;
        const char *l[] = {"server", t->name, NULL};
        prom_u64(b, "cutover_health_check_failures_total", l, t->failures);
    }
}

static void metrics_guards(struct evbuffer *b, const struct snap *s)
{
    prom_head(b, "cutover_guard_tripped", "gauge",
              "1 while the route's guard is tripped (latched until re-armed), 0 while armed.");
    for (size_t i = 0; i < s->n_routes; i++) {
        struct rt_route *r = stats_route(s->routes[i].name);
        if (r == NULL || !r->has_guard)
            continue;
        const char *l[] = {"route", r->name, NULL};
        prom_u64(b, "cutover_guard_tripped", l, (uint64_t)(r->g.tripped != 0));
    }
    prom_head(b, "cutover_guard_trips_total", "counter", "Guard trips detected by this instance.");
    for (size_t i = 0; i < s->n_routes; i++) {
        struct rt_route *r = stats_route(s->routes[i].name);
        if (r == NULL || !r->has_guard)
            continue;
        const char *l[] = {"route", r->name, NULL};
        prom_u64(b, "cutover_guard_trips_total", l, r->trips);
    }
    prom_head(b, "cutover_guard_cusum", "gauge",
              "The guard's CUSUM statistics (E1, E2: errors; L1, L2: latency); trips at h.");
    for (size_t i = 0; i < s->n_routes; i++) {
        struct rt_route *r = stats_route(s->routes[i].name);
        if (r == NULL || !r->has_guard)
            continue;
        for (int k = 0; k < GUARD_N_CUSUMS; k++) {
            const char *l[] = {"route", r->name, "test", cusum_names[k], NULL};
            prom_f64(b, "cutover_guard_cusum", l, r->g.s[k]);
        }
    }
}

static void metrics_redis(struct admin *a, struct evbuffer *b)
{
    struct redis_glue_info ri;

    redis_glue_get_info(a->d.redis, &ri);
    prom_head(b, "cutover_redis_enabled", "gauge", "1 when a Redis weight source is configured.");
    prom_u64(b, "cutover_redis_enabled", NULL, (uint64_t)ri.enabled);
    prom_head(b, "cutover_redis_connected", "gauge",
              "1 while the Redis command connection is ready.");
    prom_u64(b, "cutover_redis_connected", NULL, (uint64_t)ri.connected);
    prom_head(b, "cutover_redis_reconnects_total", "counter",
              "Times the Redis command connection became ready again after the first time.");
    prom_u64(b, "cutover_redis_reconnects_total", NULL, ri.connects > 0 ? ri.connects - 1 : 0);
    prom_head(b, "cutover_redis_last_apply_seconds", "gauge",
              "Latest Redis change: event or poll read to new weights published (NaN: none yet).");
    prom_f64(b, "cutover_redis_last_apply_seconds", NULL,
             ri.last_apply_us >= 0 ? (double)ri.last_apply_us / 1e6 : NAN);
}

static void handle_metrics(struct admin *a, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    struct snap *s = shared_snap_get(a->d.sh);
    uint64_t now = cut_now_ms();
    struct share_arg sa = {now};

    if (b == NULL) {
        snap_unref(s);
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    trip_note_all(a);
    prom_head(b, "cutover_build_info", "gauge", "Build version (always 1).");
    const char *lv[] = {"version", a->d.version, NULL};
    prom_u64(b, "cutover_build_info", lv, 1);
    prom_head(b, "cutover_config_info", "gauge", "Configuration file in use (always 1).");
    const char *lp[] = {"path", a->d.conf_path, NULL};
    prom_u64(b, "cutover_config_info", lp, 1);
    prom_head(b, "cutover_config_generation", "gauge",
              "Configuration generation: 1 at start, +1 per successful reload.");
    prom_u64(b, "cutover_config_generation", NULL, s->conf_generation);
    prom_head(b, "cutover_config_reloads_total", "counter", "Configuration reloads by result.");
    const char *lok[] = {"result", "ok", NULL}, *lfail[] = {"result", "failed", NULL};
    prom_u64(b, "cutover_config_reloads_total", lok, a->reloads);
    prom_u64(b, "cutover_config_reloads_total", lfail, a->reload_failures);
    prom_head(b, "cutover_config_load_timestamp_seconds", "gauge",
              "Unix time the configuration in force was loaded.");
    prom_f64(b, "cutover_config_load_timestamp_seconds", NULL,
             (double)mono_to_wall(a->loaded_mono_ms, now, wall_ms()) / 1000.0);
    prom_head(b, "cutover_draining", "gauge", "1 after SIGTERM/SIGINT, while draining.");
    prom_u64(b, "cutover_draining", NULL, (uint64_t)atomic_load(&a->d.sh->draining));

    prom_head(b, "cutover_requests_total", "counter",
              "Upstream attempts finished per route and track, by status class "
              "(none: no response head); override-forced requests are counted apart.");
    for_tracks(b, s, m_requests, NULL);
    prom_head(b, "cutover_forced_requests_total", "counter",
              "Requests forced onto a track by the override header or cookie.");
    for_tracks(b, s, m_forced, NULL);
    prom_head(b, "cutover_upstream_errors_total", "counter",
              "Upstream failures per route and track by kind (connect, timeout, reset, "
              "status_5xx).");
    for_tracks(b, s, m_upstream_errors, NULL);
    prom_head(b, "cutover_upstream_latency_seconds", "histogram",
              "Time from sending a request upstream to its response head.");
    for_tracks(b, s, m_latency, NULL);
    prom_head(b, "cutover_weight", "gauge", "Weight in force per track, labelled with its source.");
    for_tracks(b, s, m_weight, NULL);
    prom_head(b, "cutover_config_weight", "gauge", "Weight per track in the configuration file.");
    for_tracks(b, s, m_conf_weight, NULL);
    prom_head(b, "cutover_realised_share", "gauge",
              "Share of the route's upstream attempts that went to the track over the window.");
    for_tracks(b, s, m_share, &sa);
    metrics_servers(b, now);
    metrics_guards(b, s);
    metrics_redis(a, b);

    prom_head(b, "cutover_connections_open", "gauge", "Client connections open.");
    prom_u64(b, "cutover_connections_open", NULL, WSUM(a, conns_open));
    prom_head(b, "cutover_streams_open", "gauge", "Client requests (h1 or h2 streams) in flight.");
    prom_u64(b, "cutover_streams_open", NULL, WSUM(a, streams_open));
    prom_head(b, "cutover_connections_accepted_total", "counter", "Client connections accepted.");
    prom_u64(b, "cutover_connections_accepted_total", NULL, WSUM(a, conns_accepted));
    prom_head(b, "cutover_connections_refused_total", "counter",
              "Client connections refused (max_connections).");
    prom_u64(b, "cutover_connections_refused_total", NULL, WSUM(a, conns_refused));
    prom_head(b, "cutover_proxy_errors_total", "counter",
              "Responses generated by the proxy itself (4xx/5xx with a short body).");
    prom_u64(b, "cutover_proxy_errors_total", NULL, WSUM(a, proxy_errors));
    prom_head(b, "cutover_retries_total", "counter",
              "Requests retried on the baseline by the retry shield.");
    prom_u64(b, "cutover_retries_total", NULL, WSUM(a, retries));
    prom_head(b, "cutover_retries_denied_total", "counter", "Retries the shield's budget refused.");
    prom_u64(b, "cutover_retries_denied_total", NULL, WSUM(a, retry_denied));
    snap_unref(s);
    reply(req, HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b);
    evbuffer_free(b);
}

/* ---- GET /healthz ---- */

static void handle_healthz(struct admin *a, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    int draining = atomic_load(&a->d.sh->draining);

    if (b == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evbuffer_add_printf(b, "%s\n", draining ? "draining" : "ok");
    reply(req, draining ? 503 : HTTP_OK, "text/plain; charset=utf-8", b);
    evbuffer_free(b);
}

/* ---- mutations ---- */

/* "written", "not configured" or "not connected" for the write-through of <rc>. */
static const char *redis_outcome(struct admin *a, int rc)
{
    struct redis_glue_info ri;

    redis_glue_get_info(a->d.redis, &ri);
    if (!ri.enabled)
        return "not configured";
    return rc == -ENOTCONN ? "not connected" : "written";
}

static void peer_text(struct evhttp_request *req, char *buf, size_t len)
{
    char *host = NULL;
    ev_uint16_t port = 0;
    struct evhttp_connection *c = evhttp_request_get_connection(req);

    if (c != NULL)
        evhttp_connection_get_peer(c, &host, &port);
    snprintf(buf, len, "%s:%u", host != NULL ? host : "?", (unsigned)port);
}

static void handle_weights(struct admin *a, struct evhttp_request *req, const char *route)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    char body[ADMIN_MAX_BODY + 1], err[512], reason[128], peer[80], was[512];
    struct wpair *pairs = NULL;
    const char *fields[ADMIN_MAX_PAIRS], *values[ADMIN_MAX_PAIRS];
    size_t flen[ADMIN_MAX_PAIRS], vlen[ADMIN_MAX_PAIRS];
    uint32_t w[CONF_MAX_TRACKS];
    struct snap *s = shared_snap_get(a->d.sh);
    size_t n_body = evbuffer_get_length(in);
    int ri = snap_route_index(s, route), n, rc;

    if (ri < 0) {
        reply_error(req, 404, "unknown_route", "no route named \"%s\"", route);
        goto out;
    }
    if (n_body > ADMIN_MAX_BODY) {
        reply_error(req, 413, "too_large", "body above %d bytes", ADMIN_MAX_BODY);
        goto out;
    }
    pairs = calloc(ADMIN_MAX_PAIRS, sizeof(*pairs));
    if (pairs == NULL) {
        reply_error(req, 500, "internal", "out of memory");
        goto out;
    }
    evbuffer_copyout(in, body, n_body);
    body[n_body] = '\0';
    struct jp p = {body, n_body, 0, err, sizeof(err), NULL};
    n = parse_weights_body(&p, pairs, ADMIN_MAX_PAIRS);
    if (n < 0) {
        reply_error(req, 400, p.code, "route %s: %s", route, err);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        fields[i] = pairs[i].key;
        flen[i] = pairs[i].klen;
        values[i] = pairs[i].num;
        vlen[i] = pairs[i].nlen;
    }
    const struct snap_route *sr = &s->routes[ri];
    if (weights_from_hash(fields, flen, values, vlen, (size_t)n, sr, w, err, sizeof(err)) < 0) {
        reply_error(req, 400, weights_err_code(err), "%s", err);
        goto out;
    }
    weights_format(sr, NULL, was, sizeof(was));
    peer_text(req, peer, sizeof(peer));
    snprintf(reason, sizeof(reason), "admin API from %s", peer);
    rc = redis_glue_apply(a->d.redis, route, w, WSRC_ADMIN, reason, 1);
    if (rc == -ENOENT) {
        reply_error(req, 404, "unknown_route", "no route named \"%s\"", route);
        goto out;
    }
    if (rc < 0 && rc != -ENOTCONN) {
        reply_error(req, 500, "internal", "weights not applied: %s", strerror(-rc));
        goto out;
    }
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        goto out;
    }
    /* what is in force now: a tripped guard holds its candidate at 0 whatever was asked */
    struct snap *now_s = shared_snap_get(a->d.sh);
    int nri = snap_route_index(now_s, route);
    const struct snap_route *nr = nri >= 0 ? &now_s->routes[nri] : sr;
    int held = 0;
    struct jw j = {.b = b};
    jw_open(&j, NULL, '{');
    jw_str(&j, "route", route);
    jw_open(&j, "weights", '{');
    for (size_t k = 0; k < nr->n_tracks; k++)
        jw_u64(&j, nr->tracks[k].name, nr->tracks[k].weight);
    jw_close(&j, '}');
    jw_open(&j, "requested", '{');
    for (size_t k = 0; k < sr->n_tracks; k++) {
        jw_u64(&j, sr->tracks[k].name, w[k]);
        held |= k >= nr->n_tracks || nr->tracks[k].weight != w[k];
    }
    jw_close(&j, '}');
    jw_open(&j, "previous", '{');
    for (size_t k = 0; k < sr->n_tracks; k++)
        jw_u64(&j, sr->tracks[k].name, sr->tracks[k].weight);
    jw_close(&j, '}');
    jw_str(&j, "source", nr->n_tracks > 0 ? weight_src_name(nr->tracks[0].src) : "admin");
    jw_bool(&j, "guard_held", held && redis_glue_guard_is_tripped(a->d.redis, route));
    jw_str(&j, "redis", redis_outcome(a, rc));
    jw_close(&j, '}');
    snap_unref(now_s);
    reply_json(req, HTTP_OK, b);
    evbuffer_free(b);
    cut_log(CUT_INFO, "admin: weights of route %s set by %s (were %s); redis: %s", route, peer, was,
            redis_outcome(a, rc));
out:
    free(pairs);
    snap_unref(s);
}

static void handle_arm(struct admin *a, struct evhttp_request *req, const char *route)
{
    struct snap *s = shared_snap_get(a->d.sh);
    struct rt_route *r;
    char peer[80];
    int rc, was_tripped;

    if (snap_route_index(s, route) < 0) {
        reply_error(req, 404, "unknown_route", "no route named \"%s\"", route);
        goto out;
    }
    r = stats_route(route);
    if (r == NULL || !r->has_guard) {
        reply_error(req, 409, "no_guard", "route %s has no guard to arm", route);
        goto out;
    }
    trip_note(a, r);
    was_tripped = r->g.tripped;
    rc = redis_glue_guard_arm(a->d.redis, route);
    if (rc < 0 && rc != -ENOTCONN) {
        reply_error(req, rc == -ENOENT ? 404 : 500, rc == -ENOENT ? "unknown_route" : "internal",
                    "guard of route %s not armed: %s", route, strerror(-rc));
        goto out;
    }
    peer_text(req, peer, sizeof(peer));
    cut_log(CUT_INFO, "admin: guard of route %s armed by %s (was %s); redis: %s", route, peer,
            was_tripped ? "tripped" : "armed", redis_outcome(a, rc));
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        goto out;
    }
    struct jw j = {.b = b};
    jw_open(&j, NULL, '{');
    jw_str(&j, "route", route);
    jw_str(&j, "guard", r->g.tripped ? "tripped" : "armed");
    jw_bool(&j, "was_tripped", was_tripped);
    jw_str(&j, "redis", redis_outcome(a, rc));
    jw_close(&j, '}');
    reply_json(req, HTTP_OK, b);
    evbuffer_free(b);
out:
    snap_unref(s);
}

/* ---- dispatch ---- */

/*
 * Matches "/routes/<name>/<tail>" and decodes <name> into <route>.
 * Returns 1 on a match, 0 otherwise, -1 for a name that decodes badly.
 */
static int match_route_path(const char *path, const char *tail, char *route, size_t len)
{
    static const char pre[] = "/routes/";
    const char *name = path + sizeof(pre) - 1, *slash;
    size_t tl = strlen(tail), nl, dl = 0;
    char *dec;

    if (strncmp(path, pre, sizeof(pre) - 1) != 0)
        return 0;
    slash = strchr(name, '/');
    if (slash == NULL || slash == name || strcmp(slash + 1, tail) != 0 || tl == 0)
        return 0;
    nl = (size_t)(slash - name);
    char raw[ADMIN_ROUTE_MAX];
    if (nl >= sizeof(raw))
        return -1;
    memcpy(raw, name, nl);
    raw[nl] = '\0';
    dec = evhttp_uridecode(raw, 0, &dl); /* libevent's allocator: mem.h (main.c) */
    if (dec == NULL)
        return -1;
    if (dl == 0 || dl >= len || memchr(dec, '\0', dl) != NULL) {
        mem_free(dec);
        return -1;
    }
    memcpy(route, dec, dl + 1);
    mem_free(dec);
    return 1;
}

static void request_cb(struct evhttp_request *req, void *arg)
{
    struct admin *a = arg;
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u != NULL ? evhttp_uri_get_path(u) : NULL;
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    int is_get = m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD;
    char route[ADMIN_ROUTE_MAX];
    int k;

    if (path == NULL || path[0] == '\0')
        path = "/";
    if (strcmp(path, "/status") == 0 || strcmp(path, "/metrics") == 0 ||
        strcmp(path, "/healthz") == 0) {
        if (!is_get)
            reply_method(req, "GET, HEAD");
        else if (path[1] == 's')
            handle_status(a, req);
        else if (path[1] == 'm')
            handle_metrics(a, req);
        else
            handle_healthz(a, req);
    } else if ((k = match_route_path(path, "weights", route, sizeof(route))) != 0) {
        if (m != EVHTTP_REQ_PUT)
            reply_method(req, "PUT");
        else if (authorize(a, req) < 0)
            return;
        else if (k < 0)
            reply_error(req, 404, "unknown_route", "bad route name in the path");
        else
            handle_weights(a, req, route);
    } else if ((k = match_route_path(path, "guard/arm", route, sizeof(route))) != 0) {
        if (m != EVHTTP_REQ_POST)
            reply_method(req, "POST");
        else if (authorize(a, req) < 0)
            return;
        else if (k < 0)
            reply_error(req, 404, "unknown_route", "bad route name in the path");
        else
            handle_arm(a, req, route);
    } else {
        reply_error(req, 404, "not_found",
                    "no such endpoint; try GET /status, /metrics, /healthz, "
                    "PUT /routes/{route}/weights, POST /routes/{route}/guard/arm");
    }
}

/* ---- life cycle ---- */

/* A listening TCP socket on <c->addr> (no SO_REUSEPORT: a second process on the
 * same admin address fails here). Returns the fd or -errno. */
static int admin_listen(const struct conf_addr *ad)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, one = 1, e;

    sl = conf_addr_sockaddr(ad, &ss);
    if (sl == 0)
        return -EINVAL;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        bind(fd, (struct sockaddr *)&ss, sl) == -1 || listen(fd, 64) == -1) {
        e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

struct admin *admin_new(const struct conf_admin *c, char *err, size_t errlen)
{
    struct admin *a = calloc(1, sizeof(*a));

    if (a == NULL) {
        snprintf(err, errlen, "admin: out of memory");
        return NULL;
    }
    a->fd = -1;
    snprintf(a->address, sizeof(a->address), "%s%s%s:%u", c->addr.family == AF_INET6 ? "[" : "",
             c->addr.host, c->addr.family == AF_INET6 ? "]" : "", (unsigned)c->addr.port);
    if (c->token_file != NULL && token_load(a, c->token_file, err, errlen) < 0)
        goto fail;
    a->fd = admin_listen(&c->addr);
    if (a->fd < 0) {
        snprintf(err, errlen, "admin: cannot listen on %s: %s", c->address, strerror(-a->fd));
        goto fail;
    }
    return a;
fail:
    admin_free(a);
    return NULL;
}

int admin_start(struct admin *a, const struct admin_deps *d, char *err, size_t errlen)
{
    a->d = *d;
    a->started_mono_ms = a->loaded_mono_ms = cut_now_ms();
    a->started_wall_ms = wall_ms();
    a->http = evhttp_new(d->base);
    if (a->http == NULL) {
        snprintf(err, errlen, "admin: out of memory");
        return -1;
    }
    evhttp_set_max_headers_size(a->http, ADMIN_MAX_HEADERS);
    evhttp_set_max_body_size(a->http, ADMIN_MAX_BODY);
    evhttp_set_timeout(a->http, ADMIN_TIMEOUT_S);
    /* every method reaches request_cb, which answers 405 with an Allow header itself */
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(a->http, request_cb, a);
    if (evhttp_accept_socket_with_handle(a->http, a->fd) == NULL) {
        snprintf(err, errlen, "admin: cannot accept on %s", a->address);
        return -1;
    }
    a->fd = -1; /* evhttp's listener owns and closes it */
    cut_log(CUT_INFO, "admin endpoint on http://%s/ (mutations %s)", a->address,
            a->has_token ? "need the bearer token" : "are open: no token_file");
    return 0;
}

void admin_on_reload(struct admin *a, const struct conf *c)
{
    if (a == NULL)
        return;
    if (c == NULL) {
        a->reload_failures++;
        return;
    }
    a->reloads++;
    a->loaded_mono_ms = cut_now_ms();
}

void admin_free(struct admin *a)
{
    if (a == NULL)
        return;
    if (a->http != NULL)
        evhttp_free(a->http);
    if (a->fd != -1)
        close(a->fd);
    OPENSSL_cleanse(a->token_sha, sizeof(a->token_sha));
    free(a);
}
