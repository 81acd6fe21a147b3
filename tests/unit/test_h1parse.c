/*
 * test_h1parse.c: the strict HTTP/1.x parser (proxy/h1parse.c).
 *
 * Table-driven valid and invalid requests and responses; each valid case is also
 * parsed at every prefix (bytes arriving one by one) and at every two-read split,
 * with the input ending on a guard page (picohttpparser's trick: a read past the
 * end faults); invalid cases must fail with the same error at every prefix where
 * they fail at all. Chunked bodies are decoded with random splits. A seeded
 * differential test compares random requests, well-formed or with one defect,
 * against a plain char-by-char reference parser written from the RFC grammar.
 */
#include "../../proxy/h1parse.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tap.h"

#define MAXH 64

static const struct h1p_limits LIM = {.max_head = 8192, .max_line = 1024, .max_headers = 32};

/* ---- guard-page input buffers ---- */

static char *guard_base;
static size_t guard_room;

static void guard_init(size_t room)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    room = (room + pg - 1) / pg * pg;
    char *m = mmap(NULL, room + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m + room, pg, PROT_NONE) != 0) {
        printf("Bail out! mmap\n");
        exit(1);
    }
    guard_base = m;
    guard_room = room;
}

/* Copies <s>[0..<n>) so that it ends right before a PROT_NONE page. */
static const char *guarded(const char *s, size_t n)
{
    if (n > guard_room) {
        printf("Bail out! guarded input too long\n");
        exit(1);
    }
    char *p = guard_base + guard_room - n;
    memmove(p, s, n);
    return p;
}

/* ---- summaries: one string per parse result, compared with the tables ---- */

static void put_hdrs(char *out, size_t cap, size_t used, const struct h1p_header *h, size_t n)
{
    for (size_t i = 0; i < n && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, " [%.*s:%.*s]", (int)h[i].name_len,
                                 h[i].name, (int)h[i].value_len, h[i].value);
}

static int req_summary(char *out, size_t cap, const struct h1p_request *r,
                       const struct h1p_header *h)
{
    int k = snprintf(out, cap, "%.*s %.*s 1.%d cl=%" PRId64 " ch=%d ka=%d ex=%d up=%d host=%s%.*s",
                     (int)r->method_len, r->method, (int)r->target_len, r->target, r->minor,
                     r->content_length, r->chunked, r->keep_alive, r->expect_continue, r->upgrade,
                     r->host ? "" : "-", r->host ? (int)r->host_len : 0, r->host ? r->host : "");
    if (r->authority != NULL && (size_t)k < cap)
        k += snprintf(out + k, cap - (size_t)k, " auth=%.*s", (int)r->authority_len, r->authority);
    put_hdrs(out, cap, (size_t)k, h, r->n_headers);
    return 0;
}

static const char *body_name(enum h1p_body b)
{
    static const char *n[] = {"none", "length", "chunked", "close"};
    return n[b];
}

static void resp_summary(char *out, size_t cap, const struct h1p_response *r,
                         const struct h1p_header *h)
{
    int k = snprintf(out, cap, "1.%d %d '%.*s' cl=%" PRId64 " ch=%d ka=%d body=%s", r->minor,
                     r->status, (int)r->reason_phrase_len, r->reason_phrase, r->content_length,
                     r->chunked, r->keep_alive, body_name(h1p_response_body(r, 0)));
    put_hdrs(out, cap, (size_t)k, h, r->n_headers);
}

/* All pointers of a request result point into buf[0..ret). */
static int req_in_bounds(const char *buf, ssize_t ret, const struct h1p_request *r,
                         const struct h1p_header *h)
{
#define IN(p, n) ((p) >= buf && (p) + (n) <= buf + ret)
    if (!IN(r->method, r->method_len) || !IN(r->target, r->target_len))
        return 0;
    if (r->host && !IN(r->host, r->host_len))
        return 0;
    if (r->authority && (!IN(r->authority, r->authority_len) || r->authority <= r->target ||
                         r->authority + r->authority_len > r->target + r->target_len))
        return 0;
    for (size_t i = 0; i < r->n_headers; i++)
        if (!IN(h[i].name, h[i].name_len) || !IN(h[i].value, h[i].value_len))
            return 0;
    return 1;
#undef IN
}

/* ---- request tables ---- */

struct req_ok {
    const char *in;   /* the head */
    const char *tail; /* bytes after the head (body, next request), or NULL */
    const char *want; /* summary */
};

static const struct req_ok req_ok_cases[] = {
    {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
     "GET / 1.1 cl=-1 ch=0 ka=1 ex=0 up=0 host=a [Host:a]"},
    {"GET / HTTP/1.0\r\n\r\n", NULL, "GET / 1.0 cl=-1 ch=0 ka=0 ex=0 up=0 host=-"},
    {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", NULL,
     "GET / 1.0 cl=-1 ch=0 ka=1 ex=0 up=0 host=- [Connection:keep-alive]"},
    {"GET / HTTP/1.0\r\nconnection: Upgrade, Keep-Alive\r\n\r\n", NULL,
     "GET / 1.0 cl=-1 ch=0 ka=1 ex=0 up=0 host=- [connection:Upgrade, Keep-Alive]"},
    {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", NULL,
     "GET / 1.1 cl=-1 ch=0 ka=0 ex=0 up=0 host=a [Host:a] [Connection:close]"},
    {"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: ,CLOSE , \r\n\r\n", NULL,
     "GET / 1.1 cl=-1 ch=0 ka=0 ex=0 up=0 host=a [Host:a] [Connection:keep-alive] "
     "[Connection:,CLOSE ,]"},
    {"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", "hello",
     "POST /p 1.1 cl=5 ch=0 ka=1 ex=0 up=0 host=a [Host:a] [Content-Length:5]"},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", NULL,
     "POST / 1.1 cl=0 ch=0 ka=1 ex=0 up=0 host=a [Host:a] [Content-Length:0]"},
    {"POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 5, 5\r\n\r\n", "hello",
     "POST / 1.1 cl=5 ch=0 ka=1 ex=0 up=0 host=a [Host:a] [content-length:5, 5]"},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5\r\nCONTENT-LENGTH: 005\r\n\r\n", NULL,
     "POST / 1.1 cl=5 ch=0 ka=1 ex=0 up=0 host=a [Host:a] [Content-Length:5,5] "
     "[CONTENT-LENGTH:005]"},
    {"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387904\r\n\r\n", NULL,
     "PUT / 1.1 cl=4611686018427387904 ch=0 ka=1 ex=0 up=0 host=a [Host:a] "
     "[Content-Length:4611686018427387904]"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", "0\r\n\r\n",
     "POST / 1.1 cl=-1 ch=1 ka=1 ex=0 up=0 host=a [Host:a] [Transfer-Encoding:chunked]"},
    {"POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: \t CHUNKED \t\r\n\r\n", NULL,
     "POST / 1.1 cl=-1 ch=1 ka=1 ex=0 up=0 host=a [Host:a] [transfer-encoding:CHUNKED]"},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n", NULL,
     "POST / 1.1 cl=3 ch=0 ka=1 ex=1 up=0 host=a [Host:a] [Content-Length:3] "
     "[Expect:100-Continue]"},
    {"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continuex\r\n\r\n", NULL,
     "GET / 1.1 cl=-1 ch=0 ka=1 ex=0 up=0 host=a [Host:a] [Expect:100-continuex]"},
    {"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", NULL,
     "GET /chat 1.1 cl=-1 ch=0 ka=1 ex=0 up=1 host=a [Host:a] [Upgrade:websocket] "
     "[Connection:Upgrade]"},
    {"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", NULL,
     "CONNECT example.com:443 1.1 cl=-1 ch=0 ka=1 ex=0 up=1 host=example.com:443 "
     "[Host:example.com:443]"},
    {"CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n", NULL,
     "CONNECT [::1]:8443 1.1 cl=-1 ch=0 ka=1 ex=0 up=1 host=[::1]:8443 [Host:[::1]:8443]"},
    {"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
     "OPTIONS * 1.1 cl=-1 ch=0 ka=1 ex=0 up=0 host=a [Host:a]"},
    {"GET http://example.com/x?y=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", NULL,
     "GET http://example.com/x?y=1 1.1 cl=-1 ch=0 ka=1 ex=0 up=0 host=example.com "
     "auth=example.com [Host:example.com]"},
    {"GET https://a:8443 HTTP/1.1\r\nHost: a:8443\r\n\r\n", NULL,
     "GET https://a:8443 1.1 cl=-1 ch=0 ka=1 ex=0 up=0 host=a:8443 auth=a:8443 [Host:a:8443]"},
    {"GET http://other?q HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
     "GET http://other?q 1.1 cl=-1 ch=0 ka=1 ex=0 up=0 host=a auth=other [Host:a]"},
    {"GET h2.x-y://[::1]:80/p HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
     "GET h2.x-y://[::1]:80/p 1.1 cl=-1 ch=0 ka=1 ex=0 up=0 host=a auth=[::1]:80 [Host:a]"},
    {"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
     "GET / 1.1 cl=-1 ch=0 ka=1 ex=0 up=0 host=a [Host:a]"},
    {"GET / HTTP/1.1\r\nHost: a\r\nX-A:   a b \t \r\nX-B:\r\nX-C: \t\r\n\r\n", NULL,
     "GET / 1.1 cl=-1 ch=0 ka=1 ex=0 up=0 host=a [Host:a] [X-A:a b] [X-B:] [X-C:]"},
    {"GET / HTTP/1.1\r\nHost: a\r\nX-Obs: \x80\xff caf\xc3\xa9\tx\r\n\r\n", NULL,
     "GET / 1.1 cl=-1 ch=0 ka=1 ex=0 up=0 host=a [Host:a] [X-Obs:\x80\xff caf\xc3\xa9\tx]"},
    {"GET / HTTP/1.1\r\nHost: a\r\n!#$%&'*+-.^_`|~0aZ: v\r\n\r\n", NULL,
     "GET / 1.1 cl=-1 ch=0 ka=1 ex=0 up=0 host=a [Host:a] [!#$%&'*+-.^_`|~0aZ:v]"},
    {"GET /caf\xc3\xa9?a=b&c=%20;d=[]@!$'()*+,~ HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
     "GET /caf\xc3\xa9?a=b&c=%20;d=[]@!$'()*+,~ 1.1 cl=-1 ch=0 ka=1 ex=0 up=0 host=a [Host:a]"},
    {"M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n", NULL, NULL}, /* asterisk-form: OPTIONS only */
    {"PROPFIND /dav HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
     "PROPFIND /dav 1.1 cl=-1 ch=0 ka=1 ex=0 up=0 host=a [Host:a]"},
    {"GET / HTTP/1.1\r\nHost:\r\n\r\n", NULL, "GET / 1.1 cl=-1 ch=0 ka=1 ex=0 up=0 host= [Host:]"},
    {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
     "GET / 1.1 cl=-1 ch=0 ka=1 ex=0 up=0 host=a [Host:a]"},
    {"GET / HTTP/1.1\r\nHost: a\r\nX-Long: 0123456789abcde\t0123456789abcdef0123456789abcdef\t"
     "0123456789\t\r\n\r\n",
     NULL,
     "GET / 1.1 cl=-1 ch=0 ka=1 ex=0 up=0 host=a [Host:a] [X-Long:0123456789abcde\t"
     "0123456789abcdef0123456789abcdef\t0123456789]"},
    {"GET /0123456789abcdef0123456789abcdef0123456789abcdef HTTP/1.1\r\nHost: a\r\n\r\n", NULL,
     "GET /0123456789abcdef0123456789abcdef0123456789abcdef 1.1 cl=-1 ch=0 ka=1 ex=0 up=0 "
     "host=a [Host:a]"},
};

struct req_bad {
    const char *in;
    enum h1p_error err;
    const char *why; /* a substring of req.reason */
    size_t len;      /* 0: strlen(in) */
};

/* A case with a NUL byte inside: its length from the literal. */
#define WITH_NUL(s, e, w)                                                                          \
    {                                                                                              \
        s, e, w, sizeof(s) - 1                                                                     \
    }

static const struct req_bad req_bad_cases[] = {
    /* line ends */
    {"GET / HTTP/1.1\nHost: a\r\n\r\n", H1P_BAD, "bare LF", 0},
    {"GET / HTTP/1.1\r\nHost: a\n\r\n", H1P_BAD, "bare LF", 0},
    {"GET / HTTP/1.1\r\nHost: a\r\n\n", H1P_BAD, "bare LF", 0},
    {"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "bare LF", 0},
    {"GET /\n HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "bare LF", 0},
    {"GET / HTTP/1.1\rHost: a\r\n\r\n", H1P_BAD, "bare CR", 0},
    {"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", H1P_BAD, "bare CR", 0},
    {"GET / HTTP/1.1\r\nHost: a\r\n\rX", H1P_BAD, "bare CR", 0},
    {"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "bare CR", 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r2\r\n\r\n", H1P_BAD, "bare CR", 0},
    /* request line */
    {"G@T / HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "method", 0},
    {"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "method", 0},
    {" / HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "bad method", 0},
    {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "empty request target", 0},
    {"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "malformed HTTP-version", 0},
    {"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", H1P_BAD, "malformed HTTP-version", 0},
    {"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "malformed HTTP-version", 0},
    {"GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "bad character in request target", 0},
    {"GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "bad character in request target", 0},
    {"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "bad character in request target", 0},
    {"GET /0123456789abcdef\x7f"
     "0123456789abcdef HTTP/1.1\r\nHost: a\r\n\r\n",
     H1P_BAD, "bad character in request target", 0},
    {"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "fragment", 0},
    {"GET * HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "asterisk-form", 0},
    {"M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "asterisk-form", 0},
    {"OPTIONS ** HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "request target", 0},
    {"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "authority-form", 0},
    {"CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "authority-form", 0},
    {"CONNECT :443 HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "authority-form", 0},
    {"CONNECT a:44x HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "authority-form", 0},
    {"CONNECT a: HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "authority-form", 0},
    {"CONNECT u@a:443 HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "authority-form", 0},
    {"GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "absolute-form", 0},
    {"GET http:/x HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "absolute-form", 0},
    {"GET http:// HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "absolute-form", 0},
    {"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "empty authority", 0},
    {"GET http://?x HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "empty authority", 0},
    {"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "bad authority", 0},
    {"GET http://u:p@a/ HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "bad authority", 0},
    {"GET http://a\"b/ HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "bad authority", 0},
    {"GET ?a HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "request target", 0},
    {"GET 1http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "request target", 0},
    {"GET ht_tp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "request target", 0},
    /* versions */
    {"GET / HTTP/1.2\r\nHost: a\r\n\r\n", H1P_BAD_VERSION, "version", 0},
    {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", H1P_BAD_VERSION, "version", 0},
    {"GET / HTTP/0.9\r\nHost: a\r\n\r\n", H1P_BAD_VERSION, "version", 0},
    {"GET / HTTP/1.10\r\nHost: a\r\n\r\n", H1P_BAD, "malformed HTTP-version", 0},
    {"GET / HTTP/11.1\r\nHost: a\r\n\r\n", H1P_BAD, "malformed HTTP-version", 0},
    {"GET / http/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "malformed HTTP-version", 0},
    {"GET / HTTP/1\r\nHost: a\r\n\r\n", H1P_BAD, "malformed HTTP-version", 0},
    {"GET / HTTP/2\r\nHost: a\r\n\r\n", H1P_BAD, "malformed HTTP-version", 0},
    {"GET /\r\n\r\n", H1P_BAD, "bad character in request target", 0},
    /* field names */
    {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", H1P_BAD, "whitespace before colon", 0},
    {"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", H1P_BAD, "whitespace before colon", 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", H1P_BAD, "obs-fold", 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n", H1P_BAD, "obs-fold", 0},
    {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", H1P_BAD, "obs-fold", 0},
    {"GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", H1P_BAD, "empty field name", 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nX(y): v\r\n\r\n", H1P_BAD, "field name", 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nX\x80: v\r\n\r\n", H1P_BAD, "field name", 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nX/y: v\r\n\r\n", H1P_BAD, "field name", 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", H1P_BAD, "field name", 0},
    /* field values */
    {"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01"
     "b\r\n\r\n",
     H1P_BAD, "field value", 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f"
     "b\r\n\r\n",
     H1P_BAD, "field value", 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nX: a\x1b[0m\r\n\r\n", H1P_BAD, "field value", 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nX: 0123456789abcdef0123456789\x1f"
     "abc\r\n\r\n",
     H1P_BAD, "field value", 0},
    WITH_NUL("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", H1P_BAD, "field value"),
    WITH_NUL("GET / HTTP/1.1\r\nHost: a\r\nX\0: ab\r\n\r\n", H1P_BAD, "field name"),
    WITH_NUL("GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", H1P_BAD, "request target"),
    /* Content-Length */
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", H1P_BAD, "not digits", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", H1P_BAD, "not digits", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", H1P_BAD, "not digits", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\n", H1P_BAD, "not digits", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", H1P_BAD, "not digits", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5.0\r\n\r\n", H1P_BAD, "not digits", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", H1P_BAD, "empty Content-Length", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", H1P_BAD, "empty Content-Length",
     0},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ,5\r\n\r\n", H1P_BAD, "empty Content-Length",
     0},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", H1P_BAD, "differing", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", H1P_BAD,
     "differing", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387905\r\n\r\n", H1P_BAD, "2^62",
     0},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999999\r\n\r\n", H1P_BAD,
     "2^62", 0},
    /* Transfer-Encoding */
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
     H1P_BAD, "with Content-Length", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
     H1P_BAD, "with Content-Length", 0},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", H1P_BAD, "HTTP/1.0", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", H1P_BAD,
     "more than once", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: Chunked\r\n"
     "\r\n",
     H1P_BAD, "more than once", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", H1P_NOT_IMPLEMENTED,
     "transfer coding", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", H1P_NOT_IMPLEMENTED,
     "transfer coding", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", H1P_NOT_IMPLEMENTED,
     "transfer coding", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", H1P_NOT_IMPLEMENTED,
     "transfer coding", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"
     "\r\n",
     H1P_NOT_IMPLEMENTED, "transfer coding", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", H1P_NOT_IMPLEMENTED,
     "transfer coding", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", H1P_BAD, "bare token",
     0},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", H1P_BAD, "bare token",
     0},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", H1P_BAD,
     "empty Transfer-Encoding", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n", H1P_BAD,
     "empty Transfer-Encoding", 0},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", H1P_BAD, "empty Transfer-Encoding",
     0},
    /* Host */
    {"GET / HTTP/1.1\r\n\r\n", H1P_BAD, "no Host", 0},
    {"GET / HTTP/1.1\r\nX: a\r\n\r\n", H1P_BAD, "no Host", 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", H1P_BAD, "several Host", 0},
    {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", H1P_BAD, "Host", 0},
    {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", H1P_BAD, "Host", 0},
    {"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", H1P_BAD, "Host", 0},
    {"GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n", H1P_BAD, "Host", 0},
};

static int parse_req(const char *in, size_t n, const struct h1p_limits *lim, struct h1p_request *r,
                     struct h1p_header *h, ssize_t *ret)
{
    const char *b = guarded(in, n);
    *ret = h1p_parse_request(b, n, lim, r, h, MAXH);
    return *ret > 0 ? req_in_bounds(b, *ret, r, h) : 1;
}

static void test_requests_valid(void)
{
    struct h1p_request r;
    struct h1p_header h[MAXH];
    char got[4096], full[4096], again[4096];
    ssize_t ret;

    for (size_t i = 0; i < sizeof(req_ok_cases) / sizeof(req_ok_cases[0]); i++) {
        const struct req_ok *c = &req_ok_cases[i];
        size_t hl = strlen(c->in), n;
        int bounds, incr_ok = 1, split_ok = 1;

        if (c->want == NULL)
            continue; /* listed for contrast with an invalid case */
        n = (size_t)snprintf(full, sizeof(full), "%s%s", c->in, c->tail ? c->tail : "");
        bounds = parse_req(full, n, &LIM, &r, h, &ret);
        req_summary(got, sizeof(got), &r, h);
        if (!ok(ret == (ssize_t)hl && bounds && strcmp(got, c->want) == 0, "valid request %zu: %s",
                i, c->want))
            printf("#   ret %zd (want %zu) error %s (%s)\n#   got  %s\n", ret, hl,
                   h1p_error_str(r.error), r.reason ? r.reason : "", got);
        /* byte by byte: -2 at every shorter prefix, at the guard page */
        for (size_t k = 0; k < hl; k++) {
            bounds = parse_req(full, k, &LIM, &r, h, &ret);
            if (ret != -2) {
                printf("#   prefix %zu: %zd (%s)\n", k, ret, r.reason ? r.reason : "");
                incr_ok = 0;
                break;
            }
        }
        ok(incr_ok, "valid request %zu: -2 at each of %zu prefixes", i, hl);
        /* every split into two reads: the second parse gives the one-shot result */
        for (size_t k = 1; k < n && split_ok; k++) {
            ssize_t r1, r2;
            parse_req(full, k, &LIM, &r, h, &r1);
            bounds = parse_req(full, n, &LIM, &r, h, &r2);
            req_summary(again, sizeof(again), &r, h);
            if ((k < hl ? r1 != -2 : r1 != (ssize_t)hl) || r2 != (ssize_t)hl || !bounds ||
                strcmp(again, got) != 0)
                split_ok = 0;
        }
        ok(split_ok, "valid request %zu: same result at every split", i);
    }
}

static void test_requests_invalid(void)
{
    struct h1p_request r;
    struct h1p_header h[MAXH];
    ssize_t ret;

    for (size_t i = 0; i < sizeof(req_bad_cases) / sizeof(req_bad_cases[0]); i++) {
        const struct req_bad *c = &req_bad_cases[i];
        size_t n = c->len ? c->len : strlen(c->in);
        int mono = 1, failed_at = -1;

        parse_req(c->in, n, &LIM, &r, h, &ret);
        if (!ok(ret == -1 && r.error == c->err && r.reason && strstr(r.reason, c->why),
                "invalid request %zu (%s): %s", i, c->why, h1p_error_str(c->err)))
            printf("#   ret %zd error %s reason %s\n", ret, h1p_error_str(r.error),
                   r.reason ? r.reason : "-");
        /* each prefix is -2 until the error is known, then the same error */
        for (size_t k = 0; k <= n; k++) {
            parse_req(c->in, k, &LIM, &r, h, &ret);
            if (ret == -1 && failed_at < 0)
                failed_at = (int)k;
            if (failed_at >= 0 ? (ret != -1 || r.error != c->err) : ret != -2)
                mono = 0;
        }
        ok(mono, "invalid request %zu: -2 then the same error from byte %d on", i, failed_at);
    }
}

static void test_request_details(void)
{
    struct h1p_request r;
    struct h1p_header h[MAXH];
    ssize_t ret;
    const char *in = "POST /x HTTP/1.1\r\nHost: h\r\nX-A:  v  \r\nContent-Length: 2\r\n\r\nok";
    const char *b = guarded(in, strlen(in));

    ret = h1p_parse_request(b, strlen(in), &LIM, &r, h, MAXH);
    ok(ret == (ssize_t)strlen(in) - 2 && b[ret] == 'o', "head length points at the body");
    ok(r.method == b && r.target == b + 5 && r.host == b + 24 && h[1].value == b + 33 &&
           h[1].value_len == 1 && h[0].name == b + 18,
       "pointers point into the buffer (zero-copy)");

    ok(h1p_error_status(H1P_BAD) == 400 && h1p_error_status(H1P_URI_TOO_LONG) == 414 &&
           h1p_error_status(H1P_HEAD_TOO_LARGE) == 431 &&
           h1p_error_status(H1P_TOO_MANY_HEADERS) == 431 &&
           h1p_error_status(H1P_BAD_VERSION) == 505 &&
           h1p_error_status(H1P_NOT_IMPLEMENTED) == 501 && h1p_error_status(H1P_OK) == 0,
       "error to status mapping");
    {
        struct h1p_response resp;
        ok(h1p_parse_request(NULL, 0, &LIM, &r, h, MAXH) == -2 &&
               h1p_parse_response(NULL, 0, 100, &resp, h, MAXH) == -2,
           "no bytes yet (NULL buffer): -2");
    }
    ok(strcmp(h1p_error_str(H1P_TOO_MANY_HEADERS), "too_many_headers") == 0 &&
           strcmp(h1p_error_str(H1P_N_ERRORS), "unknown") == 0,
       "error names");
}

/* Every byte value in a method, target, field name, field value and Host. */
static int tchar_def(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/*
 * Parses <fmt> with its \x01 byte replaced by <c>; returns whether it is accepted.
 * With <cut>, the input ends right after that byte and "accepted" means -2 (a
 * valid prefix): the byte is then checked by the scalar tail, else by the SIMD
 * path when at least 16 bytes follow it.
 */
static int accepts_with(const char *fmt, int c, int cut)
{
    struct h1p_request r;
    struct h1p_header h[MAXH];
    char in[256];
    size_t n = strlen(fmt);
    char *at;
    ssize_t ret;

    memcpy(in, fmt, n);
    at = memchr(in, 1, n);
    *at = (char)c;
    if (cut)
        n = (size_t)(at - in) + 1;
    parse_req(in, n, &LIM, &r, h, &ret);
    return cut ? ret == -2 : ret > 0;
}

static void test_char_classes(void)
{
    int bad_m = 0, bad_t = 0, bad_n = 0, bad_v = 0, bad_h = 0;

    for (int c = 0; c < 256; c++) {
        int host = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c && strchr("-._~!$&'()*+,;=:[]%", c));
        int target = c > 0x20 && c != 0x7f && c != '#';
        int value = c == '\t' || (c >= 0x20 && c != 0x7f);

        for (int cut = 0; cut < 2; cut++) {
            bad_m += accepts_with("G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n", c, cut) !=
                     (tchar_def(c) || (cut && c == ' '));
            bad_t += accepts_with("GET /\x01x HTTP/1.1\r\nHost: a\r\n\r\n", c, cut) !=
                     (target || (cut && c == ' '));
            /* "X:y: v" is a valid field named X, so ':' is left out here */
            if (c != ':')
                bad_n += accepts_with("GET / HTTP/1.1\r\nHost: a\r\nX\x01y: v\r\n"
                                      "X-Pad: 0123456789abcdef0123456789abcdef\r\n\r\n",
                                      c, cut) != tchar_def(c);
            /* inside the value, so that OWS trimming does not apply; a CR is a
             * valid prefix of the line end when cut */
            bad_v += accepts_with("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01"
                                  "b\r\n"
                                  "X-Pad: 0123456789abcdef0123456789abcdef\r\n\r\n",
                                  c, cut) != (value || (cut && c == '\r'));
            if (!cut)
                bad_h += accepts_with("GET / HTTP/1.1\r\nHost: a\x01"
                                      "b\r\n\r\n",
                                      c, 0) != host;
        }
    }
    ok(bad_m == 0, "method bytes: tchar only (%d mismatches)", bad_m);
    ok(bad_t == 0, "target bytes: VCHAR but '#', and obs-text (%d mismatches)", bad_t);
    ok(bad_n == 0, "field name bytes: tchar only (%d mismatches)", bad_n);
    ok(bad_v == 0, "field value bytes: HTAB, SP, VCHAR, obs-text (%d mismatches)", bad_v);
    ok(bad_h == 0, "Host bytes: authority characters (%d mismatches)", bad_h);
}

/* ---- limits, enforced on prefixes ---- */

static void test_limits(void)
{
    struct h1p_request r;
    struct h1p_header h[MAXH];
    struct h1p_limits lim = {.max_head = 4096, .max_line = 100, .max_headers = 5};
    static char big[1 << 20];
    const char *pre = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ";
    size_t pl = strlen(pre), first_fail = 0;
    ssize_t ret;
    int all_more = 1;

    /* a 1 MB field arriving byte by byte fails as soon as the head passes max_head */
    memset(big, 'x', sizeof(big));
    memcpy(big, pre, pl);
    for (size_t k = 0; k <= lim.max_head + 1; k++) {
        const char *b = guarded(big, k);
        ret = h1p_parse_request(b, k, &lim, &r, h, MAXH);
        if (ret == -1) {
            first_fail = k;
            break;
        }
        all_more &= ret == -2;
    }
    ok(all_more && first_fail == lim.max_head + 1 && r.error == H1P_HEAD_TOO_LARGE,
       "1 MB field byte by byte: -2 up to max_head, H1P_HEAD_TOO_LARGE at max_head + 1 (%zu)",
       first_fail);
    ret = h1p_parse_request(guarded(big, sizeof(big)), sizeof(big), &lim, &r, h, MAXH);
    ok(ret == -1 && r.error == H1P_HEAD_TOO_LARGE, "1 MB in one read: H1P_HEAD_TOO_LARGE");

    /* a head of exactly max_head bytes passes; one more byte does not */
    {
        char head[4096 + 64];
        size_t n = (size_t)snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
        size_t fill = lim.max_head - n - 4;
        memset(head + n, 'v', fill);
        memcpy(head + n + fill, "\r\n\r\n", 4);
        ret = h1p_parse_request(guarded(head, lim.max_head), lim.max_head, &lim, &r, h, MAXH);
        ok(ret == (ssize_t)lim.max_head, "head of exactly max_head bytes is accepted");
        memmove(head + n + 1, head + n, fill + 4);
        ret =
            h1p_parse_request(guarded(head, lim.max_head + 1), lim.max_head + 1, &lim, &r, h, MAXH);
        ok(ret == -1 && r.error == H1P_HEAD_TOO_LARGE, "max_head + 1 bytes: H1P_HEAD_TOO_LARGE");
    }

    /* a target longer than max_line: 414 as soon as max_line + 1 target bytes are in */
    {
        char line[512];
        memset(line, 'a', sizeof(line));
        memcpy(line, "GET /", 5);
        first_fail = 0;
        all_more = 1;
        for (size_t k = 0; k < sizeof(line); k++) {
            ret = h1p_parse_request(guarded(line, k), k, &lim, &r, h, MAXH);
            if (ret == -1) {
                first_fail = k;
                break;
            }
            all_more &= ret == -2;
        }
        ok(all_more && first_fail == 4 + lim.max_line + 1 && r.error == H1P_URI_TOO_LONG,
           "target of max_line + 1 bytes: H1P_URI_TOO_LONG as soon as known (at %zu)", first_fail);
        size_t n = (size_t)snprintf(line, sizeof(line), "GET /%0*d HTTP/1.1\r\nHost: a\r\n\r\n",
                                    (int)lim.max_line - 1, 0);
        ret = h1p_parse_request(guarded(line, n), n, &lim, &r, h, MAXH);
        ok(ret == (ssize_t)n, "target of exactly max_line bytes is accepted");
    }

    /* header count: max_headers fields pass, one more fails when it starts */
    {
        char in[512];
        size_t n = (size_t)snprintf(in, sizeof(in),
                                    "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n"
                                    "\r\n");
        ret = h1p_parse_request(guarded(in, n), n, &lim, &r, h, MAXH);
        ok(ret == (ssize_t)n && r.n_headers == 5, "max_headers fields are accepted");
        n = (size_t)snprintf(in, sizeof(in),
                             "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE");
        ret = h1p_parse_request(guarded(in, n), n, &lim, &r, h, MAXH);
        ok(ret == -1 && r.error == H1P_TOO_MANY_HEADERS,
           "field max_headers + 1: H1P_TOO_MANY_HEADERS at its first byte");
        ret = h1p_parse_request(guarded(in, n - 1), n - 1, &lim, &r, h, MAXH);
        ok(ret == -2, "... and -2 just before it");
        n = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n");
        ret = h1p_parse_request(guarded(in, n), n, &lim, &r, h, 2);
        ok(ret == -1 && r.error == H1P_TOO_MANY_HEADERS,
           "<max> below max_headers is the limit (no spare slot needed)");
        ret = h1p_parse_request(guarded(in, n), n, &lim, &r, h, 3);
        ok(ret == (ssize_t)n && r.n_headers == 3, "<max> == fields: accepted");
    }

    /* an error inside the limit wins over the limit */
    {
        const char *in = "GET / HTTP/1.1\r\nHo st: a\r\n";
        struct h1p_limits tiny = {.max_head = 20, .max_line = 100, .max_headers = 5};
        ret = h1p_parse_request(guarded(in, strlen(in)), strlen(in), &tiny, &r, h, MAXH);
        ok(ret == -1 && r.error == H1P_BAD, "a syntax error before max_head: H1P_BAD");
    }
}

/* ---- responses ---- */

struct resp_ok {
    const char *in;
    const char *want;
};

static const struct resp_ok resp_ok_cases[] = {
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
     "1.1 200 'OK' cl=5 ch=0 ka=1 body=length [Content-Length:5]"},
    {"HTTP/1.1 204 No Content\r\n\r\n", "1.1 204 'No Content' cl=-1 ch=0 ka=1 body=none"},
    {"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
     "1.1 304 'Not Modified' cl=10 ch=0 ka=1 body=none [Content-Length:10]"},
    {"HTTP/1.1 100 Continue\r\n\r\n", "1.1 100 'Continue' cl=-1 ch=0 ka=1 body=none"},
    {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
     "1.1 101 'Switching Protocols' cl=-1 ch=0 ka=1 body=none [Upgrade:websocket] "
     "[Connection:Upgrade]"},
    {"HTTP/1.1 200 \r\n\r\n", "1.1 200 '' cl=-1 ch=0 ka=1 body=close"},
    {"HTTP/1.1 599 x\r\nContent-Length: 0\r\n\r\n",
     "1.1 599 'x' cl=0 ch=0 ka=1 body=length [Content-Length:0]"},
    {"HTTP/1.0 200 OK\r\n\r\n", "1.0 200 'OK' cl=-1 ch=0 ka=0 body=close"},
    {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
     "1.0 200 'OK' cl=0 ch=0 ka=1 body=length [Connection:keep-alive] [Content-Length:0]"},
    {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n",
     "1.1 200 'OK' cl=2 ch=0 ka=0 body=length [Connection:close] [Content-Length:2]"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
     "1.1 200 'OK' cl=-1 ch=1 ka=1 body=chunked [Transfer-Encoding:chunked]"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     "1.1 200 'OK' cl=-1 ch=1 ka=1 body=chunked [Transfer-Encoding:gzip, chunked]"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
     "1.1 200 'OK' cl=-1 ch=0 ka=0 body=close [Transfer-Encoding:gzip]"},
    {"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n",
     "1.1 200 'OK' cl=-1 ch=1 ka=0 body=chunked [Content-Length:7] [Transfer-Encoding:chunked]"},
    {"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 7\r\n\r\n",
     "1.0 200 'OK' cl=-1 ch=0 ka=0 body=close [Transfer-Encoding:chunked] [Content-Length:7]"},
    {"HTTP/1.1 404 Not \tFound \x80\xfe\r\nContent-Length: 5, 5\r\n\r\n",
     "1.1 404 'Not \tFound \x80\xfe' cl=5 ch=0 ka=1 body=length [Content-Length:5, 5]"},
    {"HTTP/1.1 200 OK\r\nX: a b\r\nSet-Cookie: a=b; Path=/\r\n\r\n",
     "1.1 200 'OK' cl=-1 ch=0 ka=1 body=close [X:a b] [Set-Cookie:a=b; Path=/]"},
};

static const struct req_bad resp_bad_cases[] = {
    {"HTTP/1.1 200\r\n\r\n", H1P_BAD, "no SP after the status", 0},
    {"HTTP/1.1 20 OK\r\n\r\n", H1P_BAD, "status code", 0},
    {"HTTP/1.1 2000 OK\r\n\r\n", H1P_BAD, "malformed status", 0},
    {"HTTP/1.1 099 OK\r\n\r\n", H1P_BAD, "status code", 0},
    {"HTTP/1.1 600 OK\r\n\r\n", H1P_BAD, "status code", 0},
    {"HTTP/1.1 2x0 OK\r\n\r\n", H1P_BAD, "status code", 0},
    {"HTTP/1.1  200 OK\r\n\r\n", H1P_BAD, "status code", 0},
    {"HTTP/1.1 -20 OK\r\n\r\n", H1P_BAD, "status code", 0},
    {"HTTP/1.1\t200 OK\r\n\r\n", H1P_BAD, "malformed HTTP-version", 0},
    {"HTTP/2 200 OK\r\n\r\n", H1P_BAD, "malformed HTTP-version", 0},
    {"ICY 200 OK\r\n\r\n", H1P_BAD, "malformed HTTP-version", 0},
    {"HTTP/2.0 200 OK\r\n\r\n", H1P_BAD_VERSION, "version", 0},
    {"HTTP/1.2 200 OK\r\n\r\n", H1P_BAD_VERSION, "version", 0},
    {"HTTP/1.1 200 O\x01K\r\n\r\n", H1P_BAD, "reason phrase", 0},
    {"HTTP/1.1 200 OK\x7f\r\n\r\n", H1P_BAD, "reason phrase", 0},
    {"HTTP/1.1 200 OK\n\r\n", H1P_BAD, "bare LF", 0},
    {"HTTP/1.1 200 OK\rX: y\r\n\r\n", H1P_BAD, "bare CR", 0},
    {"HTTP/1.1 200 OK\r\nX: y\n\r\n", H1P_BAD, "bare LF", 0},
    {"HTTP/1.1 200 OK\r\nX: y\r\n\n", H1P_BAD, "bare LF", 0},
    {"HTTP/1.1 200 OK\r\nX : y\r\n\r\n", H1P_BAD, "whitespace before colon", 0},
    {"HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n", H1P_BAD, "obs-fold", 0},
    {"HTTP/1.1 200 OK\r\n: y\r\n\r\n", H1P_BAD, "empty field name", 0},
    WITH_NUL("HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", H1P_BAD, "field value"),
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", H1P_BAD, "differing", 0},
    {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", H1P_BAD, "not digits", 0},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", H1P_BAD, "more than once",
     0},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n", H1P_BAD, "empty Transfer-Encoding",
     0},
};

static void test_responses(void)
{
    struct h1p_response r;
    struct h1p_header h[MAXH];
    char got[2048], again[2048];
    ssize_t ret;

    for (size_t i = 0; i < sizeof(resp_ok_cases) / sizeof(resp_ok_cases[0]); i++) {
        const struct resp_ok *c = &resp_ok_cases[i];
        size_t n = strlen(c->in);
        const char *b = guarded(c->in, n);
        int incr_ok = 1;

        ret = h1p_parse_response(b, n, 8192, &r, h, MAXH);
        resp_summary(got, sizeof(got), &r, h);
        if (!ok(ret == (ssize_t)n && strcmp(got, c->want) == 0, "valid response %zu: %s", i,
                c->want))
            printf("#   ret %zd error %s (%s)\n#   got  %s\n", ret, h1p_error_str(r.error),
                   r.reason ? r.reason : "", got);
        for (size_t k = 0; k < n; k++) {
            b = guarded(c->in, k);
            if (h1p_parse_response(b, k, 8192, &r, h, MAXH) != -2)
                incr_ok = 0;
        }
        b = guarded(c->in, n);
        ret = h1p_parse_response(b, n, 8192, &r, h, MAXH);
        resp_summary(again, sizeof(again), &r, h);
        ok(incr_ok && ret == (ssize_t)n && strcmp(again, got) == 0,
           "valid response %zu: -2 at each prefix, then the same result", i);
    }
    for (size_t i = 0; i < sizeof(resp_bad_cases) / sizeof(resp_bad_cases[0]); i++) {
        const struct req_bad *c = &resp_bad_cases[i];
        size_t n = c->len ? c->len : strlen(c->in);
        int mono = 1, failed = 0;

        ret = h1p_parse_response(guarded(c->in, n), n, 8192, &r, h, MAXH);
        if (!ok(ret == -1 && r.error == c->err && r.reason && strstr(r.reason, c->why),
                "invalid response %zu (%s): %s", i, c->why, h1p_error_str(c->err)))
            printf("#   ret %zd error %s reason %s\n", ret, h1p_error_str(r.error),
                   r.reason ? r.reason : "-");
        for (size_t k = 0; k <= n; k++) {
            ret = h1p_parse_response(guarded(c->in, k), k, 8192, &r, h, MAXH);
            failed |= ret == -1;
            if (failed ? (ret != -1 || r.error != c->err) : ret != -2)
                mono = 0;
        }
        ok(mono, "invalid response %zu: -2 then the same error", i);
    }

    /* framing helper */
    const char *in = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    ret = h1p_parse_response(guarded(in, strlen(in)), strlen(in), 8192, &r, h, MAXH);
    ok(ret > 0 && h1p_response_body(&r, 1) == H1P_BODY_NONE &&
           h1p_response_body(&r, 0) == H1P_BODY_LENGTH,
       "a response to HEAD has no body whatever its Content-Length");
    ret = h1p_parse_response(guarded(in, strlen(in)), strlen(in), 20, &r, h, MAXH);
    ok(ret == -1 && r.error == H1P_HEAD_TOO_LARGE, "response head over max_head");
    ret = h1p_parse_response(guarded(in, 15), 15, 20, &r, h, MAXH);
    ok(ret == -2, "response prefix within max_head: -2");
    in = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
    ret = h1p_parse_response(guarded(in, strlen(in)), strlen(in), 8192, &r, h, 1);
    ok(ret == -1 && r.error == H1P_TOO_MANY_HEADERS, "response fields over <max>");

    /* other_coding: every Transfer-Encoding but a lone "chunked" in HTTP/1.1 */
    static const struct {
        const char *in;
        int want;
    } codings[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\nContent-Length: 7\r\n\r\n", 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 1},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 1},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 1},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 1},
        {"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1},
    };
    for (size_t i = 0; i < sizeof(codings) / sizeof(codings[0]); i++) {
        in = codings[i].in;
        ret = h1p_parse_response(guarded(in, strlen(in)), strlen(in), 8192, &r, h, MAXH);
        ok(ret > 0 && r.other_coding == codings[i].want, "other_coding case %zu: %d", i,
           codings[i].want);
    }
}

/* ---- chunked ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t xorshift(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static unsigned rnd(unsigned n)
{
    return (unsigned)(xorshift() % n);
}

/* Decodes <in> in pieces of random sizes (max <piece>, 0 = one read); appends the
 * data to <out>. Returns the bytes consumed, or -1 with c->error. */
static ssize_t decode(const char *in, size_t n, size_t piece, struct h1p_chunked *c, char *out,
                      size_t *out_len)
{
    size_t pos = 0;

    h1p_chunked_init(c);
    *out_len = 0;
    while (pos < n && !c->done) {
        size_t avail = piece ? 1 + rnd((unsigned)piece) : n - pos, off = 0;
        if (avail > n - pos)
            avail = n - pos;
        const char *b = guarded(in + pos, avail);
        while (off < avail && !c->done) {
            size_t doff, dlen;
            ssize_t k = h1p_chunked_feed(c, b + off, avail - off, &doff, &dlen);
            if (k < 0)
                return -1;
            if (k == 0 || doff + dlen > (size_t)k)
                return -3; /* no progress, or a span outside the consumed bytes */
            memcpy(out + *out_len, b + off + doff, dlen);
            *out_len += dlen;
            off += (size_t)k;
        }
        pos += off;
    }
    return (ssize_t)pos;
}

struct chunk_ok {
    const char *in;
    const char *body;
    size_t consumed; /* 0: all of in */
};

static const struct chunk_ok chunk_ok_cases[] = {
    {"5\r\nhello\r\n0\r\n\r\n", "hello", 0},
    {"0\r\n\r\n", "", 0},
    {"3\r\nabc\r\nA\r\n0123456789\r\na\r\nABCDEFGHIJ\r\n0\r\n\r\n", "abc0123456789ABCDEFGHIJ", 0},
    {"0005\r\nhello\r\n000\r\n\r\n", "hello", 0},
    {"000000000000005\r\nhello\r\n0\r\n\r\n", "hello", 0},
    {"5;a\r\nhello\r\n0;b=c\r\n\r\n", "hello", 0},
    {"5 ; a = b ; c\t;d=\"x y\\\"z\\\\\"\r\nhello\r\n0\r\n\r\n", "hello", 0},
    {"5;a=\"\"\r\nhello\r\n0;x=\"\x80\t\"\r\n\r\n", "hello", 0},
    {"5\r\nhello\r\n0\r\nX-T: v\r\nY:\r\nZ:  a\tb \r\n\r\n", "hello", 0},
    {"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "hello", 15},
    {"1\r\n\r\r\n1\r\n\n\r\n0\r\n\r\n", "\r\n", 0},
    {"4\r\n\0\xff\r\n\r\n0\r\n\r\n", NULL, 0}, /* binary data: checked apart */
};

struct chunk_bad {
    const char *in;
    enum h1p_error err;
    const char *why;
};

static const struct chunk_bad chunk_bad_cases[] = {
    {"\r\n", H1P_BAD, "hex"},
    {"g\r\n", H1P_BAD, "hex"},
    {"-1\r\n", H1P_BAD, "hex"},
    {" 5\r\n", H1P_BAD, "hex"},
    {"0x5\r\nhello\r\n", H1P_BAD, "chunk-size line"},
    {"0000000000000005\r\nhello\r\n0\r\n\r\n", H1P_BAD, "hex"},
    {"fffffffffffffffff\r\n", H1P_BAD, "hex"},
    {"5\nhello\r\n", H1P_BAD, "chunk-size line"},
    {"5\rhello\r\n", H1P_BAD, "bare CR"},
    {"5 \r\nhello\r\n", H1P_BAD, "chunk-size line"},
    {"5;\r\nhello\r\n", H1P_BAD, "chunk-size line"},
    {"5;a=\r\nhello\r\n", H1P_BAD, "chunk-size line"},
    {"5;a=b \r\nhello\r\n", H1P_BAD, "chunk-size line"},
    {"5;a b\r\nhello\r\n", H1P_BAD, "chunk-size line"},
    {"5;=b\r\nhello\r\n", H1P_BAD, "chunk-size line"},
    {"5;a=\"x\r\nhello\r\n", H1P_BAD, "chunk-size line"},
    {"5;a=\"x\"y\r\nhello\r\n", H1P_BAD, "chunk-size line"},
    {"5;a=b=c\r\nhello\r\n", H1P_BAD, "chunk-size line"},
    {"5;a@\r\nhello\r\n", H1P_BAD, "chunk-size line"},
    {"5;a=\"\x01\"\r\nhello\r\n", H1P_BAD, "chunk-size line"},
    {"5\r\nhelloX\r\n0\r\n\r\n", H1P_BAD, "not followed by CRLF"},
    {"5\r\nhello\n0\r\n\r\n", H1P_BAD, "not followed by CRLF"},
    {"5\r\nhello\r0\r\n\r\n", H1P_BAD, "not followed by CRLF"},
    {"5\r\nhello\n\n0\r\n\r\n", H1P_BAD, "not followed by CRLF"},
    {"5\r\nhelloX\n0\r\n\r\n", H1P_BAD, "not followed by CRLF"},
    {"5\r\nhello0\r\n\r\n", H1P_BAD, "not followed by CRLF"},
    {"5\r\nhello\r\n0\r\nX : v\r\n\r\n", H1P_BAD, "trailer"},
    {"5\r\nhello\r\n0\r\n: v\r\n\r\n", H1P_BAD, "trailer"},
    {"5\r\nhello\r\n0\r\n v\r\n\r\n", H1P_BAD, "trailer"},
    {"5\r\nhello\r\n0\r\nX: v\n\r\n", H1P_BAD, "trailer"},
    {"5\r\nhello\r\n0\r\nX: \x01\r\n\r\n", H1P_BAD, "trailer"},
    {"5\r\nhello\r\n0\r\n\n", H1P_BAD, "trailer"},
    {"5\r\nhello\r\n0\r\n\rX", H1P_BAD, "bare CR"},
    {"5\r\nhello\r\n0\r\nX\r\n\r\n", H1P_BAD, "trailer"},
};

static void test_chunked_tables(void)
{
    struct h1p_chunked c;
    char out[1024];
    size_t out_len;
    ssize_t ret;

    for (size_t i = 0; i < sizeof(chunk_ok_cases) / sizeof(chunk_ok_cases[0]); i++) {
        const struct chunk_ok *k = &chunk_ok_cases[i];
        size_t n = strlen(k->in), want = k->consumed ? k->consumed : n;
        int same = 1;
        if (k->body == NULL)
            continue;
        ret = decode(k->in, n, 0, &c, out, &out_len);
        ok(ret == (ssize_t)want && c.done && out_len == strlen(k->body) &&
               memcmp(out, k->body, out_len) == 0,
           "chunked %zu: body of %zu bytes, %zu consumed", i, strlen(k->body), want);
        for (int rep = 0; rep < 50; rep++) {
            ret = decode(k->in, n, 1 + rep % 7, &c, out, &out_len);
            if (ret != (ssize_t)want || !c.done || out_len != strlen(k->body) ||
                memcmp(out, k->body, out_len) != 0)
                same = 0;
        }
        ok(same, "chunked %zu: same with random splits (byte by byte too)", i);
    }
    {
        static const char bin[] = "4\r\n\0\xff\r\n\r\n0\r\n\r\n";
        ret = decode(bin, sizeof(bin) - 1, 1, &c, out, &out_len);
        ok(ret == (ssize_t)sizeof(bin) - 1 && out_len == 4 && memcmp(out, "\0\xff\r\n", 4) == 0,
           "chunked: binary data with CRLF inside passes through");
    }
    for (size_t i = 0; i < sizeof(chunk_bad_cases) / sizeof(chunk_bad_cases[0]); i++) {
        const struct chunk_bad *k = &chunk_bad_cases[i];
        size_t n = strlen(k->in);
        int same = 1;
        ret = decode(k->in, n, 0, &c, out, &out_len);
        if (!ok(ret == -1 && c.error == k->err && c.reason && strstr(c.reason, k->why),
                "invalid chunked %zu (%s)", i, k->why))
            printf("#   ret %zd error %s reason %s\n", ret, h1p_error_str(c.error),
                   c.reason ? c.reason : "-");
        for (int rep = 0; rep < 20; rep++)
            if (decode(k->in, n, 1 + rep % 5, &c, out, &out_len) != -1 || c.error != k->err)
                same = 0;
        ok(same, "invalid chunked %zu: same error with random splits", i);
    }
    /* bounds */
    {
        static char in[H1P_CHUNK_MAX_TRAILER + 256];
        size_t n = (size_t)snprintf(in, sizeof(in), "1;x=");
        memset(in + n, 'y', H1P_CHUNK_MAX_LINE);
        memcpy(in + n + H1P_CHUNK_MAX_LINE, "\r\na\r\n0\r\n\r\n", 10);
        ret = decode(in, n + H1P_CHUNK_MAX_LINE + 10, 0, &c, out, &out_len);
        ok(ret == -1 && c.error == H1P_BAD && strstr(c.reason, "too long"),
           "chunk extensions over %d bytes", H1P_CHUNK_MAX_LINE);
        n = (size_t)snprintf(in, sizeof(in), "1;x=");
        memset(in + n, 'y', H1P_CHUNK_MAX_LINE - n - 2);
        memcpy(in + H1P_CHUNK_MAX_LINE - 2, "\r\na\r\n0\r\n\r\n", 10);
        ret = decode(in, H1P_CHUNK_MAX_LINE + 8, 0, &c, out, &out_len);
        ok(ret == H1P_CHUNK_MAX_LINE + 8 && c.done && out_len == 1,
           "a chunk-size line of exactly %d bytes", H1P_CHUNK_MAX_LINE);
        /* one byte over: inside a field, then at the final LF */
        n = (size_t)snprintf(in, sizeof(in), "0\r\nX: ");
        memset(in + n, 'v', H1P_CHUNK_MAX_TRAILER);
        ret = decode(in, 3 + H1P_CHUNK_MAX_TRAILER + 1, 0, &c, out, &out_len);
        ok(ret == -1 && c.error == H1P_HEAD_TOO_LARGE &&
               c.trailer_bytes == H1P_CHUNK_MAX_TRAILER + 1,
           "trailers of %d + 1 bytes (in a field)", H1P_CHUNK_MAX_TRAILER);
        memcpy(in + 3 + H1P_CHUNK_MAX_TRAILER - 3, "\r\n\r\n", 4);
        ret = decode(in, 3 + H1P_CHUNK_MAX_TRAILER + 1, 0, &c, out, &out_len);
        ok(ret == -1 && c.error == H1P_HEAD_TOO_LARGE, "trailers of %d + 1 bytes (at the end)",
           H1P_CHUNK_MAX_TRAILER);
        n = (size_t)snprintf(in, sizeof(in), "0\r\nX: ");
        memset(in + n, 'v', H1P_CHUNK_MAX_TRAILER - (n - 3) - 4);
        memcpy(in + 3 + H1P_CHUNK_MAX_TRAILER - 4, "\r\n\r\n", 4);
        ret = decode(in, 3 + H1P_CHUNK_MAX_TRAILER, 0, &c, out, &out_len);
        ok(ret == 3 + H1P_CHUNK_MAX_TRAILER && c.done && c.trailer_bytes == H1P_CHUNK_MAX_TRAILER,
           "trailers of exactly %d bytes", H1P_CHUNK_MAX_TRAILER);
    }
    /* after the end, and after an error */
    {
        size_t doff, dlen;
        h1p_chunked_init(&c);
        ret = h1p_chunked_feed(&c, "0\r\n\r\nXY", 7, &doff, &dlen);
        ok(ret == 5 && c.done, "stops at the end of the message");
        ret = h1p_chunked_feed(&c, "XY", 2, &doff, &dlen);
        ok(ret == 0 && dlen == 0, "returns 0 once done");
        h1p_chunked_init(&c);
        ret = h1p_chunked_feed(&c, "z", 1, &doff, &dlen);
        ok(ret == -1 && h1p_chunked_feed(&c, "0\r\n\r\n", 5, &doff, &dlen) == -1,
           "stays failed after an error");
        h1p_chunked_init(&c);
        ret = h1p_chunked_feed(&c, "", 0, &doff, &dlen);
        ok(ret == 0 && !c.done && dlen == 0, "an empty feed consumes nothing");
        h1p_chunked_init(&c);
        ret = h1p_chunked_feed(&c, "3\r\nabc\r\n4\r\ndefg", 15, &doff, &dlen);
        ok(ret == 6 && doff == 3 && dlen == 3, "one span per call: framing + first span");
        ret = h1p_chunked_feed(&c, "\r\n4\r\ndefg", 9, &doff, &dlen);
        ok(ret == 9 && doff == 5 && dlen == 4 && c.remaining == 0, "then the next span");
    }
}

/* Random bodies, random chunking, extensions, trailers; random splits. */
static void test_chunked_random(void)
{
    static char body[8192], enc[65536], out[8192];
    struct h1p_chunked c;
    int fails = 0, runs = 2000;

    for (int run = 0; run < runs; run++) {
        size_t blen = rnd(run % 10 == 0 ? 8192 : 300), n = 0, pos = 0, out_len;
        for (size_t i = 0; i < blen; i++)
            body[i] = (char)xorshift();
        while (pos < blen) {
            size_t k = 1 + rnd(run % 3 ? 40 : 1500);
            if (k > blen - pos)
                k = blen - pos;
            int pad = (int)rnd(4);
            n += (size_t)snprintf(enc + n, sizeof(enc) - n, rnd(2) ? "%0*zx" : "%0*zX", pad, k);
            if (rnd(4) == 0)
                n += (size_t)snprintf(enc + n, sizeof(enc) - n, "%s",
                                      rnd(2) ? ";ext" : " ; q=\"a\\\"b\" ;z=1");
            memcpy(enc + n, "\r\n", 2);
            n += 2;
            memcpy(enc + n, body + pos, k);
            n += k;
            memcpy(enc + n, "\r\n", 2);
            n += 2;
            pos += k;
        }
        n += (size_t)snprintf(enc + n, sizeof(enc) - n, "%.*s0\r\n%s\r\n", (int)rnd(3), "00",
                              rnd(3) == 0 ? "Trailer-A: x\r\nB:\r\n" : "");
        size_t total = n;
        if (rnd(2))
            n += (size_t)snprintf(enc + n, sizeof(enc) - n, "GET /next HTTP/1.1\r\n");
        ssize_t ret = decode(enc, n, run % 4 == 0 ? 0 : 1 + rnd(64), &c, out, &out_len);
        if (ret != (ssize_t)total || !c.done || out_len != blen || memcmp(out, body, blen) != 0) {
            if (fails++ < 3)
                printf("#   run %d: ret %zd (want %zu) out %zu (want %zu) %s\n", run, ret, total,
                       out_len, blen, c.reason ? c.reason : "");
        }
    }
    ok(fails == 0, "%d random chunked bodies decode exactly with random splits (%d failed)", runs,
       fails);
}

/* ---- differential: a plain reference parser over random requests ---- */

struct ref {
    int ret; /* head length, -1 */
    enum h1p_error err;
    size_t m_off, m_len, t_off, t_len;
    int minor;
    int64_t cl;
    int chunked, ka, ex, up;
    long host_off;
    size_t host_len, n;
    size_t name_off[MAXH], name_len[MAXH], val_off[MAXH], val_len[MAXH];
};

static int r_tchar(unsigned char c)
{
    return c && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 strchr("!#$%&'*+-.^_`|~", c));
}

static int r_vchar_or_obs(unsigned char c)
{
    return c > 0x20 && c != 0x7f;
}

static int r_lc_eq(const char *a, size_t n, const char *lit)
{
    if (n != strlen(lit))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char x = a[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (x != lit[i])
            return 0;
    }
    return 1;
}

/* Splits v on commas; returns the number of elements (trimmed) into e/el; -1 if any is empty. */
static int r_split(const char *v, size_t n, const char **e, size_t *el, int max)
{
    int k = 0;
    size_t s = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || v[i] == ',') {
            size_t a = s, b = i;
            while (a < b && (v[a] == ' ' || v[a] == '\t'))
                a++;
            while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
                b--;
            if (a == b)
                return -1;
            if (k < max) {
                e[k] = v + a;
                el[k] = b - a;
            }
            k++;
            s = i + 1;
        }
    }
    return k;
}

#define RFAIL(e)                                                                                   \
    do {                                                                                           \
        r->ret = -1;                                                                               \
        r->err = (e);                                                                              \
        return;                                                                                    \
    } while (0)

/* The reference: inputs end with CRLF CRLF and fit the limits' max_head. */
static void ref_parse(const char *b, size_t n, const struct h1p_limits *lim, struct ref *r)
{
    size_t i = 0, hmax = lim->max_headers < MAXH ? lim->max_headers : MAXH;
    int n_te = 0, n_ch = 0, last_ch = 0, close = 0, ka = 0, n_host = 0;

    memset(r, 0, sizeof(*r));
    r->cl = -1;
    r->host_off = -1;
    while (i + 1 < n && b[i] == '\r' && b[i + 1] == '\n')
        i += 2;
    r->m_off = i;
    while (i < n && r_tchar((unsigned char)b[i]))
        i++;
    if (i == r->m_off || b[i] != ' ')
        RFAIL(H1P_BAD);
    r->m_len = i - r->m_off;
    r->t_off = ++i;
    for (;; i++) {
        if (i - r->t_off == lim->max_line + 1)
            RFAIL(H1P_URI_TOO_LONG);
        unsigned char c = (unsigned char)b[i];
        if (!(r_vchar_or_obs(c) && c != '#'))
            break;
    }
    if (b[i] != ' ' || i == r->t_off)
        RFAIL(H1P_BAD);
    r->t_len = i - r->t_off;
    {
        const char *t = b + r->t_off, *m = b + r->m_off;
        size_t tl = r->t_len;
        int is_connect = r->m_len == 7 && !memcmp(m, "CONNECT", 7);
        if (is_connect) {
            const char *colon = NULL;
            if (t[0] == '/')
                RFAIL(H1P_BAD);
            for (size_t k = 0; k < tl; k++) {
                if (!strchr("-._~!$&'()*+,;=:[]%", t[k]) && !isalnum((unsigned char)t[k]))
                    RFAIL(H1P_BAD);
                if (t[k] == ':')
                    colon = t + k;
            }
            if (!colon || colon == t || colon == t + tl - 1)
                RFAIL(H1P_BAD);
            for (const char *d = colon + 1; d < t + tl; d++)
                if (!isdigit((unsigned char)*d))
                    RFAIL(H1P_BAD);
        } else if (tl == 1 && t[0] == '*') {
            if (!(r->m_len == 7 && !memcmp(m, "OPTIONS", 7)))
                RFAIL(H1P_BAD);
        } else if (t[0] != '/') {
            size_t k = 0;
            if (!isalpha((unsigned char)t[0]))
                RFAIL(H1P_BAD);
            while (k < tl && (isalnum((unsigned char)t[k]) || strchr("+-.", t[k])))
                k++;
            if (k == tl || t[k] != ':' || tl - k < 4 || t[k + 1] != '/' || t[k + 2] != '/')
                RFAIL(H1P_BAD);
            /* the authority: not empty, authority characters but '@' */
            size_t a = k + 3, e = a;
            for (; e < tl && t[e] != '/' && t[e] != '?'; e++)
                if (!strchr("-._~!$&'()*+,;=:[]%", t[e]) && !isalnum((unsigned char)t[e]))
                    RFAIL(H1P_BAD);
            if (e == a)
                RFAIL(H1P_BAD);
        }
    }
    i++;
    if (n - i < 9 || memcmp(b + i, "HTTP/", 5) != 0 || !isdigit((unsigned char)b[i + 5]) ||
        b[i + 6] != '.' || !isdigit((unsigned char)b[i + 7]) || b[i + 8] != '\r')
        RFAIL(H1P_BAD);
    if (b[i + 5] != '1' || b[i + 7] > '1')
        RFAIL(H1P_BAD_VERSION);
    r->minor = b[i + 7] - '0';
    i += 8;
    if (b[i + 1] != '\n')
        RFAIL(H1P_BAD);
    i += 2;
    for (;;) {
        if (b[i] == '\r') {
            if (b[i + 1] != '\n')
                RFAIL(H1P_BAD);
            i += 2;
            break;
        }
        if (r->n == hmax)
            RFAIL(H1P_TOO_MANY_HEADERS);
        size_t ns = i, ve, vs;
        while (r_tchar((unsigned char)b[i]))
            i++;
        if (i == ns || b[i] != ':')
            RFAIL(H1P_BAD);
        r->name_off[r->n] = ns;
        r->name_len[r->n] = i - ns;
        i++;
        while (b[i] == ' ' || b[i] == '\t')
            i++;
        vs = i;
        while (b[i] == '\t' || r_vchar_or_obs((unsigned char)b[i]) || b[i] == ' ')
            i++;
        if (b[i] != '\r' || b[i + 1] != '\n')
            RFAIL(H1P_BAD);
        ve = i;
        while (ve > vs && (b[ve - 1] == ' ' || b[ve - 1] == '\t'))
            ve--;
        r->val_off[r->n] = vs;
        r->val_len[r->n] = ve - vs;
        i += 2;
        {
            const char *nm = b + ns, *v = b + vs, *e[64];
            size_t nl = r->name_len[r->n], vl = ve - vs, el[64];
            int k;
            r->n++;
            if (r_lc_eq(nm, nl, "host")) {
                if (++n_host > 1)
                    RFAIL(H1P_BAD);
                for (size_t q = 0; q < vl; q++)
                    if (!isalnum((unsigned char)v[q]) && !strchr("-._~!$&'()*+,;=:[]%", v[q]))
                        RFAIL(H1P_BAD);
                r->host_off = (long)vs;
                r->host_len = vl;
            } else if (r_lc_eq(nm, nl, "expect")) {
                if (r_lc_eq(v, vl, "100-continue"))
                    r->ex = 1;
            } else if (r_lc_eq(nm, nl, "upgrade")) {
                r->up = 1;
            } else if (r_lc_eq(nm, nl, "connection")) {
                k = r_split(v, vl, e, el, 64);
                for (int q = 0; q < k && q < 64; q++) {
                    close |= r_lc_eq(e[q], el[q], "close");
                    ka |= r_lc_eq(e[q], el[q], "keep-alive");
                }
                if (k < 0) { /* empty elements are ignored: split again, leniently */
                    const char *s = v;
                    for (size_t q = 0; q <= vl; q++)
                        if (q == vl || v[q] == ',') {
                            const char *a = s, *z = v + q;
                            while (a < z && (*a == ' ' || *a == '\t'))
                                a++;
                            while (z > a && (z[-1] == ' ' || z[-1] == '\t'))
                                z--;
                            close |= r_lc_eq(a, (size_t)(z - a), "close");
                            ka |= r_lc_eq(a, (size_t)(z - a), "keep-alive");
                            s = v + q + 1;
                        }
                }
            } else if (r_lc_eq(nm, nl, "content-length")) {
                k = r_split(v, vl, e, el, 64);
                if (k < 0 || k > 64)
                    RFAIL(H1P_BAD);
                for (int q = 0; q < k; q++) {
                    unsigned long long x = 0;
                    for (size_t d = 0; d < el[q]; d++) {
                        if (!isdigit((unsigned char)e[q][d]))
                            RFAIL(H1P_BAD);
                        if (x > (1ULL << 62) / 10 + 1)
                            RFAIL(H1P_BAD);
                        x = x * 10 + (unsigned)(e[q][d] - '0');
                        if (x > (1ULL << 62))
                            RFAIL(H1P_BAD);
                    }
                    if (r->cl >= 0 && (unsigned long long)r->cl != x)
                        RFAIL(H1P_BAD);
                    r->cl = (int64_t)x;
                }
            } else if (r_lc_eq(nm, nl, "transfer-encoding")) {
                k = r_split(v, vl, e, el, 64);
                if (k < 0 || k > 64)
                    RFAIL(H1P_BAD);
                for (int q = 0; q < k; q++) {
                    for (size_t d = 0; d < el[q]; d++)
                        if (!r_tchar((unsigned char)e[q][d]))
                            RFAIL(H1P_BAD);
                    n_te++;
                    last_ch = r_lc_eq(e[q], el[q], "chunked");
                    n_ch += last_ch;
                }
            }
        }
    }
    if (n_te) {
        if (r->cl >= 0 || r->minor == 0 || n_ch > 1)
            RFAIL(H1P_BAD);
        if (n_te != 1 || !last_ch)
            RFAIL(H1P_NOT_IMPLEMENTED);
    }
    if (r->minor == 1 && n_host == 0)
        RFAIL(H1P_BAD);
    r->chunked = n_ch;
    r->ka = !close && (r->minor == 1 || ka);
    if (r->m_len == 7 && !memcmp(b + r->m_off, "CONNECT", 7))
        r->up = 1;
    r->ret = (int)i;
}

static void gen_token(char *out, size_t *n, unsigned max)
{
    static const char tc[] =
        "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    unsigned k = 1 + rnd(max);
    for (unsigned i = 0; i < k; i++)
        out[(*n)++] = tc[rnd(sizeof(tc) - 1)];
}

static void gen_str(char *out, size_t *n, const char *s)
{
    size_t l = strlen(s);
    memcpy(out + *n, s, l);
    *n += l;
}

static void gen_value(char *out, size_t *n, unsigned max)
{
    unsigned k = rnd(max + 1);
    for (unsigned i = 0; i < k; i++) {
        unsigned x = rnd(20);
        out[(*n)++] = x == 0   ? '\t'
                      : x == 1 ? ' '
                      : x == 2 ? (char)(0x80 + rnd(128))
                               : (char)(0x21 + rnd(0x7e - 0x20));
    }
}

static void gen_ows(char *out, size_t *n)
{
    while (rnd(3) == 0)
        out[(*n)++] = rnd(2) ? ' ' : '\t';
}

/* A random request head, mostly valid; returns its length. */
static size_t gen_request(char *out)
{
    static const char *methods[] = {"GET", "POST", "PUT", "HEAD", "OPTIONS", "CONNECT", "DELETE"};
    static const char *hosts[] = {"a",        "example.com", "example.com:8080", "[::1]:443", "",
                                  "10.0.0.1", "x_y.z"};
    size_t n = 0;
    const char *m;
    int has_host = 0;

    if (rnd(20) == 0)
        gen_str(out, &n, "\r\n");
    if (rnd(10) == 0) {
        gen_token(out, &n, 8);
        m = "";
    } else {
        m = methods[rnd(7)];
        gen_str(out, &n, m);
    }
    out[n++] = ' ';
    if (!strcmp(m, "CONNECT") && rnd(8)) {
        gen_str(out, &n, hosts[2 + rnd(2)]);
    } else if (!strcmp(m, "OPTIONS") && rnd(3) == 0) {
        out[n++] = '*';
    } else {
        if (rnd(8) == 0)
            gen_str(out, &n, rnd(2) ? "http://example.com" : "https://a:1");
        out[n++] = '/';
        unsigned k = rnd(rnd(10) == 0 ? 300 : 40);
        for (unsigned i = 0; i < k; i++) {
            char c = rnd(30) == 0 ? (char)(0x80 + rnd(128)) : (char)(0x21 + rnd(0x7e - 0x20));
            out[n++] = c == '#' ? '%' : c;
        }
    }
    gen_str(out, &n, rnd(6) == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
    unsigned nh = rnd(14);
    for (unsigned h = 0; h < nh; h++) {
        unsigned kind = rnd(12);
        switch (kind) {
        case 0:
            has_host = 1;
            gen_str(out, &n, rnd(2) ? "Host:" : "host:");
            gen_ows(out, &n);
            gen_str(out, &n, hosts[rnd(7)]);
            break;
        case 1: {
            gen_str(out, &n, rnd(2) ? "Content-Length:" : "content-LENGTH:");
            gen_ows(out, &n);
            unsigned v = rnd(3) == 0 ? rnd(100000) : 5;
            n += (size_t)sprintf(out + n, "%u", v);
            if (rnd(5) == 0)
                n += (size_t)sprintf(out + n, ",%s%u", rnd(2) ? " " : "", rnd(4) ? v : v + 1);
            break;
        }
        case 2:
            gen_str(out, &n, "Transfer-Encoding:");
            gen_ows(out, &n);
            gen_str(out, &n, rnd(4) ? "chunked" : rnd(2) ? "gzip, chunked" : "chunked, chunked");
            break;
        case 3:
            gen_str(out, &n, "Connection:");
            gen_ows(out, &n);
            gen_str(out, &n, rnd(3) == 0 ? "close" : rnd(2) ? "keep-alive" : "Upgrade, Keep-Alive");
            break;
        case 4:
            gen_str(out, &n, rnd(3) ? "Expect: 100-continue" : "Upgrade: h2c");
            break;
        default:
            gen_token(out, &n, 20);
            out[n++] = ':';
            gen_ows(out, &n);
            gen_value(out, &n, rnd(8) == 0 ? 200 : 30);
            break;
        }
        gen_ows(out, &n);
        gen_str(out, &n, "\r\n");
    }
    if (rnd(4) && !has_host)
        gen_str(out, &n, "Host: h\r\n");
    gen_str(out, &n, "\r\n");
    return n;
}

static void test_differential(void)
{
    static char in[16384];
    static const char nasty[] = "\r\n\t :#,\x7f\x00\x01\x80;\"";
    struct h1p_request req;
    struct h1p_header h[MAXH];
    struct ref r;
    int runs = 20000, fails = 0, n_valid = 0, n_defect = 0, n_incr = 0, incr_fails = 0;

    for (int run = 0; run < runs; run++) {
        size_t n;
        struct h1p_limits lim = LIM;

        n = gen_request(in);
        if (run % 3 == 0 && n > 4) {
            /* one defect before the final CRLF CRLF: replace, insert or delete a byte */
            size_t at = rnd((unsigned)(n - 4));
            char c = rnd(4) ? nasty[rnd(sizeof(nasty) - 1)] : (char)rnd(256);
            unsigned op = rnd(3);
            if (op == 0)
                in[at] = c;
            else if (op == 1) {
                memmove(in + at + 1, in + at, n - at);
                in[at] = c;
                n++;
            } else {
                memmove(in + at, in + at + 1, n - at - 1);
                n--;
            }
            n_defect++;
        }
        if (run % 7 == 0) {
            lim.max_line = 1 + rnd(60);
            lim.max_headers = rnd(8);
        }
        const char *b = guarded(in, n);
        ssize_t ret = h1p_parse_request(b, n, &lim, &req, h, MAXH);
        ref_parse(b, n, &lim, &r);
        int same = ret == r.ret;
        if (ret < 0 && ret == -1)
            same = same && req.error == r.err;
        if (same && ret > 0) {
            n_valid++;
            same = req.method == b + r.m_off && req.method_len == r.m_len &&
                   req.target == b + r.t_off && req.target_len == r.t_len && req.minor == r.minor &&
                   req.content_length == r.cl && req.chunked == r.chunked &&
                   req.keep_alive == r.ka && req.expect_continue == r.ex && req.upgrade == r.up &&
                   (r.host_off < 0 ? req.host == NULL
                                   : req.host == b + r.host_off && req.host_len == r.host_len) &&
                   req.n_headers == r.n;
            for (size_t k = 0; same && k < r.n; k++)
                same = h[k].name == b + r.name_off[k] && h[k].name_len == r.name_len[k] &&
                       h[k].value == b + r.val_off[k] && h[k].value_len == r.val_len[k];
        }
        if (!same && fails++ < 5) {
            printf("#   run %d: h1p %zd %s (%s), ref %d %s; input:\n#   ", run, ret,
                   h1p_error_str(req.error), req.reason ? req.reason : "", r.ret,
                   h1p_error_str(r.err));
            for (size_t k = 0; k < n; k++)
                printf(isprint((unsigned char)in[k]) ? "%c" : "\\x%02x", (unsigned char)in[k]);
            printf("\n");
        }
        /* incremental == one-shot on a sample: -2, then the final answer */
        if (run % 40 == 0) {
            int good = 1, settled = 0;
            n_incr++;
            for (size_t k = 0; k <= n && good; k++) {
                struct h1p_request q;
                ssize_t rk = h1p_parse_request(guarded(in, k), k, &lim, &q, h, MAXH);
                if (rk == -2 && !settled)
                    continue;
                settled = 1;
                if (ret > 0 ? (k < (size_t)ret ? 1 : rk != ret)
                            : (rk != -1 || q.error != req.error))
                    good = 0;
            }
            incr_fails += !good;
        }
    }
    ok(fails == 0,
       "differential: %d random requests (%d valid, %d with a defect) agree with the "
       "reference (%d differ)",
       runs, n_valid, n_defect, fails);
    ok(n_valid > runs / 4 && n_valid < runs - n_defect / 2,
       "differential: a useful mix of accepted and refused inputs");
    ok(incr_fails == 0,
       "differential: %d sampled inputs give -2 then the one-shot result at every "
       "prefix (%d differ)",
       n_incr, incr_fails);
}

int main(void)
{
    guard_init((size_t)2 << 20);
    subtest("valid requests", test_requests_valid);
    subtest("invalid requests", test_requests_invalid);
    subtest("request details", test_request_details);
    subtest("character classes", test_char_classes);
    subtest("limits", test_limits);
    subtest("responses", test_responses);
    subtest("chunked tables", test_chunked_tables);
    subtest("chunked random", test_chunked_random);
    subtest("differential", test_differential);
    return done_testing();
}
