/*
 * bench_h1parse.c: h1parse against Debian's http-parser 2.9 on the same heads.
 *
 * Not a fuzz target; it lives here with the other h1parse tooling. Build and run:
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -g -I. -o build/fuzz/bench_h1parse \
 *       tests/fuzz/bench_h1parse.c proxy/h1parse.c -lhttp_parser
 *   build/fuzz/bench_h1parse            # ns per head, wall clock
 *   valgrind --tool=callgrind --collect-atstart=no --toggle-collect='run_*' \
 *       build/fuzz/bench_h1parse 1000   # instructions: see callgrind_annotate
 * With an argument N, each run parses each head N times (default 200000); with a
 * second argument K only case K runs (0..3 heads, 4 and 5 chunked), so that a
 * callgrind run's instruction count per run_* function divided by N gives the
 * instructions per head (tests/fuzz/bench_h1parse.sh does that).
 *
 * http-parser gets the callbacks a caller needs to see the same things (url,
 * field and value spans recorded in an array, as h1_front.c does); h1parse fills
 * its header array itself.
 */
#include "../../proxy/h1parse.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char req_small[] = "GET /bench HTTP/1.1\r\nHost: bench\r\n\r\n";

static const char req_curl[] = "GET /index.html HTTP/1.1\r\n"
                               "Host: example.com\r\n"
                               "User-Agent: curl/7.88.1\r\n"
                               "Accept: */*\r\n\r\n";

/* picohttpparser's bench.c request */
static const char req_browser[] =
    "GET /wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg HTTP/1.1\r\n"
    "Host: www.kittyhell.com\r\n"
    "User-Agent: Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10.6; ja-JP-mac; rv:1.9.2.3) "
    "Gecko/20100401 Firefox/3.6.3 Pathtraq/0.9\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: ja,en-us;q=0.7,en;q=0.3\r\n"
    "Accept-Encoding: gzip,deflate\r\n"
    "Accept-Charset: Shift_JIS,utf-8;q=0.7,*;q=0.7\r\n"
    "Keep-Alive: 115\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: wp_ozh_wsa_visits=2; wp_ozh_wsa_visit_lasttime=xxxxxxxxxx; "
    "__utma=xxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.x; "
    "__utmz=xxxxxxxxx.xxxxxxxxxx.x.x.utmccn=(referral)|utmcsr=reader.livedoor.com|utmcct=/"
    "reader/|utmcmd=referral\r\n\r\n";

static const char resp_typical[] = "HTTP/1.1 200 OK\r\n"
                                   "Date: Thu, 27 Nov 2025 16:25:00 GMT\r\n"
                                   "Content-Type: text/html; charset=utf-8\r\n"
                                   "Content-Length: 1234\r\n"
                                   "Connection: keep-alive\r\n"
                                   "Cache-Control: max-age=0, no-cache\r\n"
                                   "Server: origin/1.0\r\n"
                                   "X-Request-Id: 3f2a9c1e-8d4b-4e2f-9a7c-1b2d3e4f5a6b\r\n\r\n";

/* ---- http-parser with recording callbacks ---- */

struct hp_ctx {
    const char *url;
    size_t url_len;
    struct h1p_header h[64];
    size_t n;
    int in_value;
    int done;
};

static int hp_url(http_parser *p, const char *at, size_t len)
{
    struct hp_ctx *c = p->data;
    if (c->url == NULL)
        c->url = at;
    c->url_len += len;
    return 0;
}

static int hp_field(http_parser *p, const char *at, size_t len)
{
    struct hp_ctx *c = p->data;
    if (c->in_value || c->n == 0) {
        if (c->n == 64)
            return -1;
        c->h[c->n].name = at;
        c->h[c->n].name_len = 0;
        c->h[c->n].value = NULL;
        c->h[c->n].value_len = 0;
        c->n++;
        c->in_value = 0;
    }
    c->h[c->n - 1].name_len += len;
    return 0;
}

static int hp_value(http_parser *p, const char *at, size_t len)
{
    struct hp_ctx *c = p->data;
    if (!c->in_value) {
        c->h[c->n - 1].value = at;
        c->in_value = 1;
    }
    c->h[c->n - 1].value_len += len;
    return 0;
}

static int hp_headers_complete(http_parser *p)
{
    struct hp_ctx *c = p->data;
    c->done = 1;
    return 1; /* skip the body: we measure heads */
}

static const http_parser_settings hp_settings = {
    .on_url = hp_url,
    .on_header_field = hp_field,
    .on_header_value = hp_value,
    .on_headers_complete = hp_headers_complete,
};

static volatile size_t sink;

__attribute__((noinline)) static void run_http_parser(const char *buf, size_t len, int resp, long n)
{
    for (long i = 0; i < n; i++) {
        http_parser p;
        struct hp_ctx c;
        c.url = NULL;
        c.url_len = 0;
        c.n = 0;
        c.in_value = 0;
        c.done = 0;
        http_parser_init(&p, resp ? HTTP_RESPONSE : HTTP_REQUEST);
        p.data = &c;
        size_t k = http_parser_execute(&p, &hp_settings, buf, len);
        if (!c.done) {
            fprintf(stderr, "http-parser failed: %s\n", http_errno_name(HTTP_PARSER_ERRNO(&p)));
            exit(1);
        }
        sink += k + c.n + http_should_keep_alive(&p);
    }
}

__attribute__((noinline)) static void run_h1parse(const char *buf, size_t len, int resp, long n)
{
    static const struct h1p_limits lim = {.max_head = 16384, .max_line = 8192, .max_headers = 100};
    struct h1p_header h[64];

    for (long i = 0; i < n; i++) {
        ssize_t k;
        if (resp) {
            struct h1p_response r;
            k = h1p_parse_response(buf, len, 16384, &r, h, 64);
            sink += r.n_headers + (size_t)r.keep_alive;
        } else {
            struct h1p_request r;
            k = h1p_parse_request(buf, len, &lim, &r, h, 64);
            sink += r.n_headers + (size_t)r.keep_alive;
        }
        if (k != (ssize_t)len) {
            fprintf(stderr, "h1parse failed: %zd\n", k);
            exit(1);
        }
    }
}

/* ---- chunked bodies: 64 KiB in 16-byte and in 4 KiB chunks ---- */

static char chunked16[200000], chunked4k[70000];
static size_t chunked16_len, chunked4k_len;

static size_t make_chunked(char *out, size_t cap, size_t body, size_t chunk)
{
    size_t n = 0;
    for (size_t done = 0; done < body; done += chunk) {
        n += (size_t)snprintf(out + n, cap - n, "%zx\r\n", chunk);
        memset(out + n, 'b', chunk);
        n += chunk;
        memcpy(out + n, "\r\n", 2);
        n += 2;
    }
    n += (size_t)snprintf(out + n, cap - n, "0\r\n\r\n");
    return n;
}

static int hpc_body(http_parser *p, const char *at, size_t len)
{
    sink += len;
    return 0;
}

static int hpc_complete(http_parser *p)
{
    *(int *)p->data = 1;
    return 0;
}

__attribute__((noinline)) static void run_http_parser_chunked(const char *buf, size_t len, long n)
{
    static const char head[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    http_parser_settings s = {.on_body = hpc_body, .on_message_complete = hpc_complete};
    for (long i = 0; i < n; i++) {
        http_parser p;
        int done = 0;
        http_parser_init(&p, HTTP_REQUEST);
        p.data = &done;
        /* the head is parsed outside the measured span's share: subtract a head run */
        http_parser_execute(&p, &s, head, sizeof(head) - 1);
        http_parser_execute(&p, &s, buf, len);
        if (!done) {
            fprintf(stderr, "http-parser chunked failed\n");
            exit(1);
        }
    }
}

__attribute__((noinline)) static void run_h1parse_chunked(const char *buf, size_t len, long n)
{
    for (long i = 0; i < n; i++) {
        struct h1p_chunked c;
        size_t off = 0;
        h1p_chunked_init(&c);
        while (off < len && !c.done) {
            size_t doff, dlen;
            ssize_t k = h1p_chunked_feed(&c, buf + off, len - off, &doff, &dlen);
            if (k < 0)
                exit(1);
            sink += dlen;
            off += (size_t)k;
        }
        if (!c.done)
            exit(1);
    }
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        const char *buf;
        size_t len;
        int resp;
    } cases[] = {
        {"request small", req_small, sizeof(req_small) - 1, 0},
        {"request curl", req_curl, sizeof(req_curl) - 1, 0},
        {"request browser", req_browser, sizeof(req_browser) - 1, 0},
        {"response typical", resp_typical, sizeof(resp_typical) - 1, 1},
    };
    long n = argc > 1 ? atol(argv[1]) : 200000;
    int only = argc > 2 ? atoi(argv[2]) : -1;

    chunked16_len = make_chunked(chunked16, sizeof(chunked16), 65536, 16);
    chunked4k_len = make_chunked(chunked4k, sizeof(chunked4k), 65536, 4096);
    if (only >= 0) {
        /* one case for callgrind: heads 0..3, then chunked 16 B (4) and 4 KiB (5) */
        if (only < 4) {
            run_h1parse(cases[only].buf, cases[only].len, cases[only].resp, n);
            run_http_parser(cases[only].buf, cases[only].len, cases[only].resp, n);
            printf("%s %zu\n", cases[only].name, cases[only].len);
        } else {
            const char *b = only == 4 ? chunked16 : chunked4k;
            size_t l = only == 4 ? chunked16_len : chunked4k_len;
            run_h1parse_chunked(b, l, n);
            run_http_parser_chunked(b, l, n);
            printf("%s %zu\n", only == 4 ? "chunked 16 B" : "chunked 4 KiB", l);
        }
        return 0;
    }
    printf("%-18s %6s %14s %14s %8s\n", "head", "bytes", "h1parse ns", "http-parser ns", "ratio");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double t0 = now_ns();
        run_h1parse(cases[i].buf, cases[i].len, cases[i].resp, n);
        double t1 = now_ns();
        run_http_parser(cases[i].buf, cases[i].len, cases[i].resp, n);
        double t2 = now_ns();
        printf("%-18s %6zu %14.1f %14.1f %8.2f\n", cases[i].name, cases[i].len, (t1 - t0) / n,
               (t2 - t1) / n, (t2 - t1) / (t1 - t0));
    }
    long nc = n / 200 + 1;
    double t0 = now_ns();
    run_h1parse_chunked(chunked16, chunked16_len, nc);
    double t1 = now_ns();
    run_http_parser_chunked(chunked16, chunked16_len, nc);
    double t2 = now_ns();
    run_h1parse_chunked(chunked4k, chunked4k_len, nc);
    double t3 = now_ns();
    run_http_parser_chunked(chunked4k, chunked4k_len, nc);
    double t4 = now_ns();
    printf("%-18s %6zu %14.1f %14.1f %8.2f\n", "chunked 16 B", chunked16_len, (t1 - t0) / nc,
           (t2 - t1) / nc, (t2 - t1) / (t1 - t0));
    printf("%-18s %6zu %14.1f %14.1f %8.2f\n", "chunked 4 KiB", chunked4k_len, (t3 - t2) / nc,
           (t4 - t3) / nc, (t4 - t3) / (t3 - t2));
    return sink == 42 ? 1 : 0;
}
