/*
 * h1_front.c: the HTTP/1.x downstream front end.
 *
 * One request at a time per connection: requests are parsed with
 * our strict parser (h1parse) straight from the sock's input, and after a
 * request's message is complete the parser is paused, so pipelined requests
 * wait unparsed in the input buffer until the response before them is done.
 *
 * Timers: one per connection. While waiting for a request head it is an
 * absolute deadline of header_ms from the first byte (a client dribbling its
 * head byte by byte is cut off); between requests idle_ms; while a request
 * body is arriving idle_ms between reads. Writes use the sock's write
 * timeout (idle_ms) so a client that never reads is eventually closed; the
 * exchange's backpressure keeps memory bounded meanwhile.
 */
#include "front.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "deadline.h"
#include "h1parse.h"
#include "log.h"
#include "sock.h"
#include "worker.h"
#include "xchg.h"

#define H1C_MAGIC 0x0c0111e1u

enum h1_state {
    H1_IDLE = 0,  /* between requests */
    H1_HEAD,      /* reading a request head */
    H1_BODY,      /* head done, reading the body */
    H1_WAIT,      /* request read; response still going */
    H1_CLOSING,   /* flushing the output, then close */
    H1_N_STATES
};

struct h1c {
    unsigned magic;
    struct worker *w;
    struct sock *sk;
    struct conn_link link;
    enum h1_state state;
    int tls;
    int closed;          /* freed soon by the reaper */
    int keep_alive;      /* the current request allows another one after it */
    int resp_chunked;    /* current response is sent chunked */
    int resp_done;       /* exchange finished its response */
    int req_done;        /* parser saw the end of the current request */
    int read_paused;
    int close_after;     /* close once the current response is written */
    int resp_started;    /* a response head was written for the current request */
    int body_chunked;    /* request body framing: chunked, else body_left bytes */
    uint64_t body_left;
    uint64_t body_room;  /* chunked: data bytes max_body_size still allows */
    struct h1p_chunked chunk;
    struct xchg *x;
    struct sockaddr_storage peer;
    struct deadline dl; /* header_ms / idle_ms */
    struct event kick;   /* deferred work: next request, resume reading */
};

static void h1c_close(struct h1c *c);
static void h1c_advance(struct h1c *c);

/* ---- timers ---- */

/* The connection's one timer is a lazy deadline (deadline.h): a keep-alive
 * connection costs no timer work per request. */
static void arm_ms(struct h1c *c, unsigned ms)
{
    deadline_arm(&c->dl, ms);
}

static void disarm(struct h1c *c)
{
    deadline_cancel(&c->dl);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct h1c *c = arg;
    CUT_BUG_ON(c->magic != H1C_MAGIC);
    if (!deadline_expired(&c->dl) || c->closed)
        return;
    if (c->state == H1_HEAD && c->x != NULL && !c->resp_started) {
        /* slow head: 408 then close */
        c->close_after = 1;
        xchg_reply(c->x, 408);
        return;
    }
    cut_log(CUT_DEBUG, "w=%u h1 connection timed out in state %d", c->w->id, c->state);
    h1c_close(c);
}

/* ---- front ops, called by the exchange ---- */

static struct h1c *ctx_of(struct xchg *x)
{
    struct h1c *c = xchg_front_ctx(x);
    CUT_BUG_ON(c->magic != H1C_MAGIC);
    return c;
}

static void resp_finished(struct h1c *c)
{
    /* the whole response is queued: write it now, from here, rather than
     * from one more trip through the event loop */
    sock_flush_direct(c->sk);
    c->resp_done = 1;
    event_active(&c->kick, EV_WRITE, 0);
}

/* "HTTP/1.x NNN Reason\r\n" without printf (this runs once per response). */
static int append_status(char *p, size_t cap, int minor, int status)
{
    const char *reason = xchg_reason_phrase(status);
    size_t rl = strlen(reason);
    if (rl + 16 > cap || status < 100 || status > 999)
        return snprintf(p, cap, "HTTP/1.%d %d %s\r\n", minor ? 1 : 0, status, reason);
    memcpy(p, minor ? "HTTP/1.1 " : "HTTP/1.0 ", 9);
    p[9] = (char)('0' + status / 100);
    p[10] = (char)('0' + status / 10 % 10);
    p[11] = (char)('0' + status % 10);
    p[12] = ' ';
    memcpy(p + 13, reason, rl);
    p[13 + rl] = '\r';
    p[14 + rl] = '\n';
    return (int)(15 + rl);
}

/* Decimal digits of <v> into <buf> (room for 20); returns the length. */
static size_t fmt_u64(char *buf, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

static int op_send_head(struct xchg *x, int status, const struct hdr *hdrs, size_t n,
                        int64_t clen, int end)
{
    struct h1c *c = ctx_of(x);
    if (c->closed)
        return -1;
    const struct req_head *r = xchg_req(x);
    struct evbuffer *out = sock_output(c->sk);
    struct evbuffer_iovec v;
    c->resp_started = 1;
    int minor = r->http_minor;
    /* The whole head in one reservation and one commit: the status line (at
     * most 128 bytes), the fields, then at most 80 bytes of framing and
     * connection lines. */
    size_t need = 128 + 80;
    for (size_t i = 0; i < n; i++)
        need += hdrs[i].name_len + hdrs[i].value_len + 4;
    if (evbuffer_reserve_space(out, (ev_ssize_t)need, &v, 1) < 1)
        return -1;
    char *p = v.iov_base;
    int k = append_status(p, 128, minor, status);
    p += k < 128 ? k : 127; /* (snprintf's count when it truncated) */
    for (size_t i = 0; i < n; i++) {
        memcpy(p, hdrs[i].name, hdrs[i].name_len);
        p += hdrs[i].name_len;
        *p++ = ':';
        *p++ = ' ';
        memcpy(p, hdrs[i].value, hdrs[i].value_len);
        p += hdrs[i].value_len;
        *p++ = '\r';
        *p++ = '\n';
    }
    int no_body_status = status == 204 || status == 304 || status < 200;
    c->resp_chunked = 0;
    if (clen >= 0) {
        if (status != 204) {
            p = put(p, "Content-Length: ", 16);
            p += fmt_u64(p, (uint64_t)clen);
            *p++ = '\r';
            *p++ = '\n';
        }
    } else if (end) {
        if (!no_body_status && !(r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0))
            p = put(p, "Content-Length: 0\r\n", 19);
    } else if (minor >= 1) {
        p = put(p, "Transfer-Encoding: chunked\r\n", 28);
        c->resp_chunked = 1;
    } else {
        c->close_after = 1; /* HTTP/1.0: the body ends with the connection */
    }
    if (!c->keep_alive || c->close_after || c->w->draining) {
        c->close_after = 1;
        p = put(p, "Connection: close\r\n\r\n", 21);
    } else if (minor == 0) {
        p = put(p, "Connection: keep-alive\r\n\r\n", 26);
    } else {
        p = put(p, "\r\n", 2);
    }
    v.iov_len = (size_t)(p - (char *)v.iov_base);
    evbuffer_commit_space(out, &v, 1);
    if (end)
        resp_finished(c); /* writes the response out */
    else
        sock_kick(c->sk);
    return 0;
}

static int op_send_data(struct xchg *x, struct evbuffer *buf, int end)
{
    struct h1c *c = ctx_of(x);
    if (c->closed)
        return -1;
    struct evbuffer *out = sock_output(c->sk);
    size_t len = buf ? evbuffer_get_length(buf) : 0;
    if (c->resp_chunked) {
        if (len > 0) {
            char sz[24];
            int k = snprintf(sz, sizeof(sz), "%zx\r\n", len);
            evbuffer_add(out, sz, (size_t)k);
            evbuffer_add_buffer(out, buf);
            evbuffer_add(out, "\r\n", 2);
        }
        if (end)
            evbuffer_add(out, "0\r\n\r\n", 5);
    } else if (len > 0 && c->tls && len <= 16384) {
        /* TLS: copy small bodies next to their head (sock.c pulls a record's
         * worth together anyway) instead of moving their chains in */
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(out, (ev_ssize_t)len, &v, 1) == 1) {
            evbuffer_remove(buf, v.iov_base, len);
            v.iov_len = len;
            evbuffer_commit_space(out, &v, 1);
        } else {
            evbuffer_add_buffer(out, buf);
        }
    } else if (len > 0) {
        evbuffer_add_buffer(out, buf);
    }
    if (end)
        resp_finished(c); /* writes the response out */
    else
        sock_kick(c->sk);
    return 0;
}

static size_t op_pending(struct xchg *x)
{
    struct h1c *c = ctx_of(x);
    return evbuffer_get_length(sock_output(c->sk));
}

static void op_pause_read(struct xchg *x)
{
    struct h1c *c = ctx_of(x);
    c->read_paused = 1;
    sock_disable(c->sk, EV_READ);
}

static void op_resume_read(struct xchg *x)
{
    struct h1c *c = ctx_of(x);
    if (!c->read_paused || c->closed)
        return;
    c->read_paused = 0;
    /* continue from the event loop, not from inside the exchange */
    event_active(&c->kick, EV_READ, 0);
}

static void op_req_consumed(struct xchg *x, size_t n)
{
}

static void op_abort(struct xchg *x)
{
    struct h1c *c = ctx_of(x);
    /* the client sees a truncated response: never reuse this connection */
    c->close_after = 1;
    c->keep_alive = 0;
    resp_finished(c);
}

static const struct front_ops h1_ops = {
    .send_head = op_send_head,
    .send_data = op_send_data,
    .pending = op_pending,
    .pause_read = op_pause_read,
    .resume_read = op_resume_read,
    .req_consumed = op_req_consumed,
    .abort = op_abort,
};

/* ---- connection ---- */

static void h1c_free(void *arg)
{
    struct h1c *c = arg;
    CUT_BUG_ON(c->magic != H1C_MAGIC);
    if (c->x != NULL)
        xchg_free(c->x);
    sock_free(c->sk);
    c->magic = 0;
    free(c);
}

static void h1c_close(struct h1c *c)
{
    if (c->closed)
        return;
    c->closed = 1;
    deadline_stop(&c->dl);
    event_del(&c->kick);
    sock_disable(c->sk, EV_READ | EV_WRITE);
    sock_setcb(c->sk, NULL, NULL, NULL, NULL);
    worker_conn_del(c->w, &c->link);
    worker_defer_free(c->w, h1c_free, c);
}

/* Starts a new request object for the next message. */
static int begin_request(struct h1c *c)
{
    c->x = xchg_new(c->w, &h1_ops, c, XCHG_H1, (struct sockaddr *)&c->peer);
    if (c->x == NULL)
        return -1;
    c->state = H1_HEAD;
    c->resp_done = c->req_done = c->resp_started = 0;
    arm_ms(c, c->w->snap->timeouts.header_ms);
    return 0;
}

/* Answers <status> to a request we cannot serve, then closes. */
static void reject(struct h1c *c, int status)
{
    struct evbuffer *in = sock_input(c->sk);
    c->close_after = 1;
    c->keep_alive = 0;
    c->req_done = 1;
    evbuffer_drain(in, evbuffer_get_length(in));
    sock_disable(c->sk, EV_READ);
    if (c->x != NULL && !c->resp_started)
        xchg_reply(c->x, status);
    else
        h1c_close(c);
}

/*
 * The head (<buf>, <len> bytes) is copied once, whole, into the exchange's
 * arena, and the request's method, target, fields and Host point into the
 * copy (not NUL-terminated): the input buffer is drained next.
 */
static int fill_request(struct h1c *c, const char *buf, size_t len, const struct h1p_request *pr,
                        const struct h1p_header *h)
{
    struct xchg *x = c->x;
    struct req_head *r = xchg_req(x);
    char *copy = xchg_alloc(x, len);
    struct hdr *f = xchg_set_headers(x, pr->n_headers);
    if (copy == NULL || (f == NULL && pr->n_headers > 0))
        return -1;
    memcpy(copy, buf, len);
#define IN_COPY(ptr) (copy + ((ptr) - buf))
    r->method = IN_COPY(pr->method);
    r->path = IN_COPY(pr->target);
    r->method_len = pr->method_len;
    r->path_len = pr->target_len;
    r->http_minor = pr->minor;
    r->tls = c->tls;
    for (size_t i = 0; i < pr->n_headers; i++) {
        f[i].name = IN_COPY(h[i].name);
        f[i].name_len = h[i].name_len;
        f[i].value = IN_COPY(h[i].value);
        f[i].value_len = h[i].value_len;
    }
    if (pr->authority != NULL) {
        /* absolute-form: its authority is the host, for routing and for the
         * upstream Host field; origin-form goes upstream (RFC 9112 3.2.2) */
        const char *rest = pr->authority + pr->authority_len;
        size_t rest_len = pr->target_len - (size_t)(rest - pr->target);
        r->authority = IN_COPY(pr->authority);
        r->authority_len = pr->authority_len;
        if (rest_len > 0 && rest[0] == '/') {
            r->path = IN_COPY(rest);
            r->path_len = rest_len;
        } else { /* "" or "?query": the path is "/" */
            char *path = xchg_alloc(x, rest_len + 1);
            if (path == NULL)
                return -1;
            path[0] = '/';
            memcpy(path + 1, rest, rest_len);
            r->path = path;
            r->path_len = rest_len + 1;
        }
    } else if (pr->host != NULL) { /* the value of the (one) Host field */
        r->authority = IN_COPY(pr->host);
        r->authority_len = pr->host_len;
    }
#undef IN_COPY
    r->content_length = pr->content_length;
    r->has_body = pr->chunked || pr->content_length > 0;
    if (pr->chunked)
        r->content_length = -1;
    return 0;
}

/*
 * Parses one request head from the input. Returns 1 when a request started,
 * 0 when more bytes are needed, -1 when the connection is answering an error
 * or closing.
 */
static int parse_head(struct h1c *c, struct evbuffer *in)
{
    struct worker *w = c->w;
    const struct conf_limits *lim = &w->snap->limits;
    struct h1p_limits pl = {lim->max_header_size, lim->max_request_line, lim->max_headers};
    if (w->h1_fields_cap < lim->max_headers) {
        struct h1p_header *f = realloc(w->h1_fields, lim->max_headers * sizeof(*f));
        if (f == NULL) {
            reject(c, 503);
            return -1;
        }
        w->h1_fields = f;
        w->h1_fields_cap = lim->max_headers;
    }
    size_t avail = evbuffer_get_length(in);
    struct evbuffer_iovec v;
    evbuffer_peek(in, -1, NULL, &v, 1);
    const char *buf = v.iov_base;
    size_t len = v.iov_len;
    struct h1p_request pr;
    ssize_t n = h1p_parse_request(buf, len, &pl, &pr, w->h1_fields, w->h1_fields_cap);
    if (n == -2 && len < avail) {
        /* the head spans chains: make at most a head's worth contiguous */
        len = avail < pl.max_head + 1 ? avail : pl.max_head + 1;
        buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
        if (buf == NULL) {
            reject(c, 503);
            return -1;
        }
        n = h1p_parse_request(buf, len, &pl, &pr, w->h1_fields, w->h1_fields_cap);
    }
    if (n == -2)
        return 0;
    if (n < 0) {
        cut_log(CUT_DEBUG, "w=%u bad request: %s", w->id, pr.reason ? pr.reason : "?");
        reject(c, h1p_error_status(pr.error));
        return -1;
    }
    disarm(c);
    c->keep_alive = pr.keep_alive;
    if (fill_request(c, buf, (size_t)n, &pr, w->h1_fields) < 0) {
        reject(c, 503);
        return -1;
    }
    int expect_continue = pr.expect_continue && pr.minor >= 1 &&
                          (pr.chunked || pr.content_length > 0);
    int status = 0;
    if (pr.upgrade)
        status = 501; /* no tunnels through this proxy */
    else if (lim->max_body_size && pr.content_length > (int64_t)lim->max_body_size)
        status = 413;
    evbuffer_drain(in, (size_t)n);
    if (status != 0) {
        reject(c, status);
        return -1;
    }
    c->body_chunked = pr.chunked;
    c->body_left = pr.content_length > 0 ? (uint64_t)pr.content_length : 0;
    if (pr.chunked) {
        h1p_chunked_init(&c->chunk);
        c->body_room = lim->max_body_size ? lim->max_body_size : UINT64_MAX;
    }
    if (expect_continue) {
        evbuffer_add(sock_output(c->sk), "HTTP/1.1 100 Continue\r\n\r\n", 25);
        sock_kick(c->sk);
    }
    c->state = H1_BODY;
    xchg_start(c->x);
    if (c->closed || c->x == NULL)
        return -1;
    if (!pr.chunked && c->body_left == 0) {
        c->req_done = 1;
        c->state = H1_WAIT;
        xchg_req_end(c->x);
    } else {
        arm_ms(c, w->snap->timeouts.idle_ms);
    }
    return 1;
}

/* The request body end: tell the exchange, wait for the response. */
static void body_done(struct h1c *c)
{
    c->req_done = 1;
    c->state = H1_WAIT;
    disarm(c);
    if (c->x != NULL)
        xchg_req_end(c->x);
}

/* A chunked request body is malformed or too large: answer <status> unless a
 * response has started, and close either way (the framing is lost). */
static void body_failed(struct h1c *c, struct evbuffer *in, int status)
{
    /* the exchange may have answered already; either way, close */
    c->close_after = 1;
    c->keep_alive = 0;
    if (!c->resp_started && c->x != NULL)
        xchg_reply(c->x, status);
    else if (c->x != NULL && !xchg_response_done(c->x))
        xchg_reply(c->x, 502); /* aborts the response in flight */
    evbuffer_drain(in, evbuffer_get_length(in));
    sock_disable(c->sk, EV_READ);
    c->req_done = 1;
}

/* Hands request body bytes to the exchange. Returns 0, or -1 when closing. */
static int parse_body(struct h1c *c, struct evbuffer *in)
{
    while (!c->closed && !c->read_paused && !c->req_done && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        evbuffer_peek(in, -1, NULL, &v, 1);
        if (!c->body_chunked) {
            size_t n = v.iov_len < c->body_left ? v.iov_len : (size_t)c->body_left;
            if (xchg_req_body(c->x, v.iov_base, n) < 0)
                c->close_after = 1; /* the response is done or failed */
            evbuffer_drain(in, n);
            c->body_left -= n;
            if (c->body_left == 0)
                body_done(c);
            continue;
        }
        size_t off, dlen;
        ssize_t k = h1p_chunked_feed(&c->chunk, v.iov_base, v.iov_len, &off, &dlen);
        if (k < 0) {
            cut_log(CUT_DEBUG, "w=%u bad chunked request body: %s", c->w->id,
                    c->chunk.reason ? c->chunk.reason : "?");
            body_failed(c, in, h1p_error_status(c->chunk.error)); /* 400, 431 */
            return -1;
        }
        if (dlen > c->body_room) {
            body_failed(c, in, 413); /* what a Content-Length would have had */
            return -1;
        }
        c->body_room -= dlen;
        if (dlen > 0 && xchg_req_body(c->x, (const char *)v.iov_base + off, dlen) < 0)
            c->close_after = 1;
        evbuffer_drain(in, (size_t)k);
        if (c->chunk.done)
            body_done(c);
        else if (k == 0)
            break;
    }
    return c->closed ? -1 : 0;
}

/* Feeds the input buffer to the parser until it has to wait or runs dry. */
static void parse_input(struct h1c *c)
{
    struct evbuffer *in = sock_input(c->sk);
    while (!c->closed && !c->read_paused && evbuffer_get_length(in) > 0) {
        if (c->x == NULL) {
            if (c->state == H1_CLOSING || c->w->draining) {
                evbuffer_drain(in, evbuffer_get_length(in));
                return;
            }
            worker_refresh(c->w);
            if (begin_request(c) < 0) {
                h1c_close(c);
                return;
            }
        }
        if (c->req_done)
            return; /* waiting for the response before the next request */
        if (c->state == H1_HEAD) {
            int r = parse_head(c, in);
            if (r <= 0)
                return;
            continue;
        }
        if (parse_body(c, in) < 0)
            return;
        if (c->close_after && c->req_done && c->resp_done)
            return;
    }
}

/* The exchange finished its response: reset for the next request. */
static void h1c_advance(struct h1c *c)
{
    if (c->closed)
        return;
    if (c->resp_done && c->x != NULL) {
        struct evbuffer *out = sock_output(c->sk);
        if (!c->req_done)
            c->close_after = 1; /* unread body: don't try to resync */
        if (c->close_after) {
            c->state = H1_CLOSING;
            sock_disable(c->sk, EV_READ);
            if (evbuffer_get_length(out) == 0) {
                h1c_close(c);
                return;
            }
            /* the write callback closes at zero length */
            xchg_free(c->x);
            c->x = NULL;
            return;
        }
        xchg_free(c->x);
        c->x = NULL;
        c->state = H1_IDLE;
        c->req_done = 0;
        arm_ms(c, c->w->snap->timeouts.idle_ms);
    }
    if (c->state != H1_CLOSING && !c->read_paused) {
        sock_enable(c->sk, EV_READ);
        parse_input(c);
    }
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct h1c *c = arg;
    CUT_BUG_ON(c->magic != H1C_MAGIC);
    h1c_advance(c);
}

static void read_cb(struct sock *sk, void *arg)
{
    struct h1c *c = arg;
    CUT_BUG_ON(c->magic != H1C_MAGIC);
    if (c->state == H1_BODY) {
        arm_ms(c, c->w->snap->timeouts.idle_ms);
    }
    parse_input(c);
}

static void write_cb(struct sock *sk, void *arg)
{
    struct h1c *c = arg;
    CUT_BUG_ON(c->magic != H1C_MAGIC);
    size_t left = evbuffer_get_length(sock_output(sk));
    if (c->state == H1_CLOSING && left == 0) {
        h1c_close(c);
        return;
    }
    if (c->x != NULL && left <= XCHG_BUF_LOW)
        xchg_front_drained(c->x);
}

static void event_cb(struct sock *sk, short what, void *arg)
{
    struct h1c *c = arg;
    CUT_BUG_ON(c->magic != H1C_MAGIC);
    if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) && c->x != NULL &&
        c->req_done && !c->resp_done) {
        /* half-close after a complete request: let the response finish */
        c->close_after = 1;
        sock_disable(sk, EV_READ);
        return;
    }
    h1c_close(c);
}

static void on_drain(struct conn_link *l)
{
    struct h1c *c = (struct h1c *)((char *)l - offsetof(struct h1c, link));
    CUT_BUG_ON(c->magic != H1C_MAGIC);
    if (c->x == NULL) {
        h1c_close(c);
        return;
    }
    c->close_after = 1;
}

static void on_kill(struct conn_link *l)
{
    struct h1c *c = (struct h1c *)((char *)l - offsetof(struct h1c, link));
    CUT_BUG_ON(c->magic != H1C_MAGIC);
    h1c_close(c);
}

int h1f_start(struct worker *w, struct sock *sk, int tls, const struct sockaddr *peer,
              socklen_t peerlen)
{
    struct h1c *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        sock_free(sk);
        return -1;
    }
    c->magic = H1C_MAGIC;
    c->w = w;
    c->sk = sk;
    c->tls = tls;
    if (peerlen > sizeof(c->peer))
        peerlen = sizeof(c->peer);
    memcpy(&c->peer, peer, peerlen);
    deadline_init(&c->dl, w->base, timer_cb, c);
    event_assign(&c->kick, w->base, -1, 0, kick_cb, c);
    c->link.on_drain = on_drain;
    c->link.on_kill = on_kill;
    worker_conn_add(w, &c->link);
    worker_refresh(w);
    struct timeval wt = {w->snap->timeouts.idle_ms / 1000, (w->snap->timeouts.idle_ms % 1000) * 1000};
    sock_set_timeouts(sk, NULL, &wt);
    sock_setcb(sk, read_cb, write_cb, event_cb, c);
    sock_setwatermark(sk, EV_WRITE, XCHG_BUF_LOW, 0);
    sock_setwatermark(sk, EV_READ, 0, XCHG_BUF_HIGH);
    sock_enable(sk, EV_READ | EV_WRITE);
    c->state = H1_IDLE;
    arm_ms(c, w->snap->timeouts.header_ms);
    if (evbuffer_get_length(sock_input(sk)) > 0)
        parse_input(c);
    return 0;
}
