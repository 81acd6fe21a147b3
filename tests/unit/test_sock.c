/*
 * test_sock.c: the socket layer (proxy/sock.c) on socket pairs and loopback
 * TCP, driven by a real libevent base: reads and EOF, the read high
 * watermark (suspend and resume), writes in order with the write callback at
 * the low watermark, the write timeout, sock_free from inside a callback,
 * connect success and refusal (reported from the loop, never from the call),
 * direct writes, the clock batch around each callback. TLS is covered end to end (tests/e2e/test_26_sock.py).
 */
#include "../../proxy/sock.h"
#include "../../proxy/log.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "tap.h"

struct rec {
    int reads, writes, events;
    short last_what;
    size_t seen;      /* bytes taken out of the input by the read callback */
    int drain;        /* the read callback drains the input */
    int free_in_read; /* the read callback frees the sock */
    struct sock *s;
};

static void on_rd(struct sock *s, void *arg)
{
    struct rec *r = arg;
    struct evbuffer *in = sock_input(s);
    r->reads++;
    if (r->drain) {
        r->seen += evbuffer_get_length(in);
        evbuffer_drain(in, evbuffer_get_length(in));
    }
    if (r->free_in_read) {
        sock_free(s);
        r->s = NULL;
    }
}

static void on_wr(struct sock *s, void *arg)
{
    (void)s;
    ((struct rec *)arg)->writes++;
}

static void on_ev(struct sock *s, short what, void *arg)
{
    struct rec *r = arg;
    (void)s;
    r->events++;
    r->last_what = what;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs <base> until *flag becomes non-zero or <secs> pass (bounded). */
static void run_until(struct event_base *base, const int *flag, double secs)
{
    double end = now_s() + secs;
    while (!*flag && now_s() < end) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
}

static void run_for(struct event_base *base, double secs)
{
    int never = 0;
    run_until(base, &never, secs);
}

static void nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static size_t drain_fd(int fd, unsigned char *check, size_t *pos)
{
    unsigned char buf[65536];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            if (check != NULL && buf[i] != (unsigned char)((*pos + (size_t)i) * 7u))
                check[0] = 1;
        *pos += (size_t)n;
        got += (size_t)n;
    }
    return got;
}

static void test_read_and_eof(void)
{
    struct event_base *base = event_base_new();
    int sv[2];
    struct rec r = {0};
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    nonblock(sv[0]);
    struct sock *s = sock_new(base, sv[0], NULL);
    sock_setcb(s, on_rd, on_wr, on_ev, &r);
    sock_enable(s, EV_READ);
    ok(write(sv[1], "hello", 5) == 5, "peer wrote");
    run_until(base, &r.reads, 2.0);
    ok(r.reads == 1 && evbuffer_get_length(sock_input(s)) == 5, "read callback with 5 bytes");
    ok(memcmp(evbuffer_pullup(sock_input(s), 5), "hello", 5) == 0, "bytes as sent");
    ok(write(sv[1], "bye", 3) == 3, "more");
    close(sv[1]);
    run_until(base, &r.events, 2.0);
    ok(r.events == 1 && (r.last_what & BEV_EVENT_EOF) && (r.last_what & BEV_EVENT_READING),
       "EOF reported (what=0x%x)", r.last_what);
    ok(evbuffer_get_length(sock_input(s)) == 8, "the last bytes were delivered before the EOF");
    sock_free(s);
    event_base_free(base);
}

static void test_read_watermark(void)
{
    struct event_base *base = event_base_new();
    int sv[2];
    struct rec r = {0};
    unsigned char big[20000];
    memset(big, 'x', sizeof(big));
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    nonblock(sv[0]);
    nonblock(sv[1]);
    struct sock *s = sock_new(base, sv[0], NULL);
    sock_setcb(s, on_rd, NULL, on_ev, &r);
    sock_setwatermark(s, EV_READ, 0, 1000);
    sock_enable(s, EV_READ);
    ok(write(sv[1], big, sizeof(big)) == (ssize_t)sizeof(big), "peer wrote 20000");
    run_for(base, 0.2);
    ok(evbuffer_get_length(sock_input(s)) == 1000, "input stops at the high watermark (%zu)",
       evbuffer_get_length(sock_input(s)));
    /* draining below the mark resumes reading */
    r.drain = 1;
    evbuffer_drain(sock_input(s), 1000);
    r.seen = 1000;
    run_for(base, 0.3);
    ok(r.seen == sizeof(big), "all 20000 bytes arrive once the reader drains (%zu)", r.seen);
    ok(r.events == 0, "no event meanwhile");
    sock_free(s);
    close(sv[1]);
    event_base_free(base);
}

static void test_write_order_and_low_watermark(void)
{
    struct event_base *base = event_base_new();
    int sv[2];
    struct rec r = {0};
    size_t n = 3 * 1024 * 1024, pos = 0;
    unsigned char bad = 0;
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    nonblock(sv[0]);
    nonblock(sv[1]);
    struct sock *s = sock_new(base, sv[0], NULL);
    sock_setcb(s, NULL, on_wr, on_ev, &r);
    sock_setwatermark(s, EV_WRITE, 64 * 1024, 0);
    unsigned char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(i * 7u);
    evbuffer_add(sock_output(s), data, n);
    sock_kick(s);
    ok(pos == 0 && read(sv[1], data, 1) == -1 && errno == EAGAIN,
       "nothing written from the sock_kick() call itself");
    double end = now_s() + 10.0;
    while (pos < n && now_s() < end) {
        run_for(base, 0.01);
        drain_fd(sv[1], &bad, &pos);
    }
    ok(pos == n && !bad, "3 MiB arrive in order (%zu bytes)", pos);
    ok(r.writes >= 1, "write callback at the low watermark (%d calls)", r.writes);
    ok(evbuffer_get_length(sock_output(s)) == 0 && r.events == 0, "output empty, no event");
    free(data);
    sock_free(s);
    close(sv[1]);
    event_base_free(base);
}

static void test_write_timeout(void)
{
    struct event_base *base = event_base_new();
    int sv[2];
    struct rec r = {0};
    static unsigned char junk[1 << 20];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    nonblock(sv[0]);
    struct sock *s = sock_new(base, sv[0], NULL);
    struct timeval wt = {0, 200000};
    sock_setcb(s, NULL, NULL, on_ev, &r);
    sock_set_timeouts(s, NULL, &wt);
    for (int i = 0; i < 8; i++)
        evbuffer_add(sock_output(s), junk, sizeof(junk));
    sock_kick(s);
    run_until(base, &r.events, 5.0); /* the peer never reads */
    ok(r.events == 1 && (r.last_what & BEV_EVENT_TIMEOUT) && (r.last_what & BEV_EVENT_WRITING),
       "write timeout reported (what=0x%x)", r.last_what);
    ok(evbuffer_get_length(sock_output(s)) > 0, "with output still pending");
    sock_free(s);
    close(sv[1]);
    event_base_free(base);
}

static void test_free_inside_callback(void)
{
    struct event_base *base = event_base_new();
    int sv[2];
    struct rec r = {0};
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    nonblock(sv[0]);
    r.free_in_read = 1;
    r.s = sock_new(base, sv[0], NULL);
    sock_setcb(r.s, on_rd, NULL, on_ev, &r);
    sock_enable(r.s, EV_READ);
    evbuffer_add(sock_output(r.s), "queued", 6);
    sock_kick(r.s);
    ok(write(sv[1], "x", 1) == 1, "peer wrote");
    shutdown(sv[1], SHUT_WR); /* data and EOF together: the EOF must not reach a freed sock */
    run_for(base, 0.2);
    ok(r.reads == 1 && r.s == NULL && r.events == 0,
       "freed in the read callback; nothing after (reads %d, events %d)", r.reads, r.events);
    close(sv[1]);
    event_base_free(base);
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_connect(void)
{
    struct event_base *base = event_base_new();
    struct rec r = {0}, r2 = {0};
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    bind(lfd, (struct sockaddr *)&a, sizeof(a));
    listen(lfd, 4);
    getsockname(lfd, (struct sockaddr *)&a, &len);

    struct sock *s = sock_new(base, -1, NULL);
    sock_setcb(s, on_rd, NULL, on_ev, &r);
    ok(sock_connect(s, (struct sockaddr *)&a, sizeof(a)) == 0, "connect started");
    sock_enable(s, EV_READ | EV_WRITE);
    evbuffer_add(sock_output(s), "GET", 3); /* queued while connecting */
    sock_kick(s);
    ok(r.events == 0, "nothing reported from the calls themselves");
    run_until(base, &r.events, 2.0);
    ok(r.events == 1 && (r.last_what & BEV_EVENT_CONNECTED), "CONNECTED (what=0x%x)",
       r.last_what);
    int cfd = accept(lfd, NULL, NULL);
    char buf[8] = {0};
    run_for(base, 0.05);
    ok(read(cfd, buf, sizeof(buf)) == 3 && memcmp(buf, "GET", 3) == 0,
       "bytes queued during the connect went out after it");
    /* direct write: goes out at once when nothing is queued */
    ok(sock_write_direct(s, "abc", 3) == 3, "direct write of 3 bytes");
    ok(read(cfd, buf, sizeof(buf)) == 3 && memcmp(buf, "abc", 3) == 0, "arrived");
    evbuffer_add(sock_output(s), "q", 1);
    ok(sock_write_direct(s, "zz", 2) == 0, "no direct write while output is queued");
    sock_flush_direct(s);
    ok(evbuffer_get_length(sock_output(s)) == 0 && read(cfd, buf, sizeof(buf)) == 1,
       "sock_flush_direct writes at once");
    close(cfd);
    sock_free(s);
    close(lfd);

    a.sin_port = htons((uint16_t)closed_port());
    s = sock_new(base, -1, NULL);
    sock_setcb(s, NULL, NULL, on_ev, &r2);
    ok(sock_connect(s, (struct sockaddr *)&a, sizeof(a)) == 0, "refused connect: no error at the call");
    ok(r2.events == 0, "nothing reported from the call");
    run_until(base, &r2.events, 2.0);
    ok(r2.events == 1 && (r2.last_what & BEV_EVENT_ERROR), "refusal reported from the loop (0x%x)",
       r2.last_what);
    sock_free(s);
    event_base_free(base);
}

/* The read callback stamps twice with a sleep between: one batch, one time. */
struct clk {
    int reads;
    uint64_t a, b, inner;
};

static void on_rd_clock(struct sock *s, void *arg)
{
    struct clk *c = arg;
    struct evbuffer *in = sock_input(s);
    evbuffer_drain(in, evbuffer_get_length(in));
    c->a = cut_now_cached_us();
    usleep(3000);
    c->b = cut_now_cached_us();
    uint64_t saved = cut_clock_enter(); /* a nested batch reads the clock anew */
    c->inner = cut_now_cached_us();
    cut_clock_leave(saved);
    c->reads++;
}

static void test_clock_batch(void)
{
    struct event_base *base = event_base_new();
    int sv[2];
    struct clk c = {0};
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    nonblock(sv[0]);
    struct sock *s = sock_new(base, sv[0], NULL);
    sock_setcb(s, on_rd_clock, NULL, NULL, &c);
    sock_enable(s, EV_READ);
    uint64_t t0 = cut_now_cached_us();
    usleep(2000);
    ok(cut_now_cached_us() >= t0 + 2000, "outside a callback the clock is read every time");
    ok(write(sv[1], "x", 1) == 1, "peer wrote");
    run_until(base, &c.reads, 2.0);
    ok(c.reads == 1, "read callback ran");
    ok(c.a == c.b && c.a >= t0 + 2000, "one clock read per callback (%llu, %llu)",
       (unsigned long long)c.a, (unsigned long long)c.b);
    ok(c.inner >= c.a + 3000, "a nested batch reads the clock again");
    uint64_t after = cut_now_cached_us();
    usleep(2000);
    ok(after >= c.b && cut_now_cached_us() >= after + 2000, "after the callback: no batch");
    ok(cut_clock_us == CUT_CLOCK_OFF, "the batch is closed (%llu)",
       (unsigned long long)cut_clock_us);
    sock_free(s);
    close(sv[1]);
    event_base_free(base);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    subtest("read and EOF", test_read_and_eof);
    subtest("read high watermark", test_read_watermark);
    subtest("write order, low watermark", test_write_order_and_low_watermark);
    subtest("write timeout", test_write_timeout);
    subtest("sock_free inside a callback", test_free_inside_callback);
    subtest("connect, direct writes", test_connect);
    subtest("one clock read per callback", test_clock_batch);
    return done_testing();
}
