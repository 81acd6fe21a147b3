/*
 * h1_front.c: the HTTP/1.x downstream front end.
 *
 * One request at a time per connection: requests are parsed with
 * http-parser straight from the bufferevent's input chains, and after a
 * request's message is complete the parser is paused, so pipelined requests
 * wait unparsed in the input buffer until the response before them is done.
 *
 * Timers: one per connection. While waiting for a request head it is an
 * absolute deadline of header_ms from the first byte (a client dribbling its
 * head byte by byte is cut off); between requests idle_ms; while a request
 * body is arriving idle_ms between reads. Writes use the bufferevent's write
 * timeout (idle_ms) so a client that never reads is eventually closed; the
 * exchange's backpressure keeps memory bounded meanwhile.
 */
#include "front.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <http_parser.h>

#include "log.h"
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
    struct bufferevent *bev;
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
    int reject;          /* status to answer once the head is parsed, or 0 */
    size_t head_bytes;
    size_t n_headers;
    http_parser parser;
    struct xchg *x;
    struct sockaddr_storage peer;
    struct event timer;
    struct event kick;   /* deferred work: next request, resume reading */
    /* header token being accumulated across input chains */
    char *tok;
    size_t tok_len, tok_cap, tok_name_len;
    int tok_state;       /* 0 none, 1 url, 2 field, 3 value */
};

static void h1c_close(struct h1c *c);
static void h1c_advance(struct h1c *c);

/* ---- timers ---- */

static void arm_ms(struct h1c *c, unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(&c->timer, &tv);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct h1c *c = arg;
    CUT_BUG_ON(c->magic != H1C_MAGIC);
    if (c->state == H1_HEAD && c->x != NULL && !c->resp_started) {
        /* slow head: 408 then close */
        c->close_after = 1;
        xchg_reply(c->x, 408);
        return;
    }
    cut_log(CUT_DEBUG, "w=%u h1 connection timed out in state %d", c->w->id, c->state);
    h1c_close(c);
}

/* ---- parser callbacks ---- */

static int tok_push(struct h1c *c, const char *at, size_t len)
{
    if (c->tok_len + len > c->tok_cap) {
        size_t cap = c->tok_cap ? c->tok_cap : 256;
        while (cap < c->tok_len + len)
            cap *= 2;
        char *p = realloc(c->tok, cap);
        if (p == NULL)
            return -1;
        c->tok = p;
        c->tok_cap = cap;
    }
    memcpy(c->tok + c->tok_len, at, len);
    c->tok_len += len;
    return 0;
}

/* RFC 9110 5.6.2: field names are tokens. http-parser, as Debian builds it
 * (not HTTP_PARSER_STRICT), lets some non-token bytes through. */
static int is_token(const char *p, size_t n)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch != 0 && strchr(tchar, ch) != NULL)))
            return 0;
    }
    return 1;
}

static int tok_flush(struct h1c *c)
{
    const struct snap *s = c->w->snap;
    if (c->tok_state == 3 && !c->reject && !is_token(c->tok, c->tok_name_len))
        c->reject = 400;
    if (c->tok_state == 3) {
        if (++c->n_headers > s->limits.max_headers) {
            if (!c->reject)
                c->reject = 431;
        } else if (!c->reject &&
                   xchg_add_header(c->x, c->tok, c->tok_name_len, c->tok + c->tok_name_len,
                                   c->tok_len - c->tok_name_len) < 0) {
            return -1;
        }
    } else if (c->tok_state == 1) {
        struct req_head *r = xchg_req(c->x);
        r->path = xchg_strdup(c->x, c->tok, c->tok_len);
        if (r->path == NULL)
            return -1;
        r->path_len = c->tok_len;
    }
    c->tok_state = 0;
    c->tok_len = 0;
    return 0;
}

static int count_head(struct h1c *c, size_t len)
{
    c->head_bytes += len;
    if (c->head_bytes > c->w->snap->limits.max_header_size && !c->reject)
        c->reject = 431;
    return 0;
}

static int on_message_begin(http_parser *p)
{
    struct h1c *c = p->data;
    return c->x == NULL ? -1 : 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct h1c *c = p->data;
    c->tok_state = 1;
    if (c->tok_len + len > c->w->snap->limits.max_request_line) {
        if (!c->reject)
            c->reject = 414;
        return 0;
    }
    return tok_push(c, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct h1c *c = p->data;
    count_head(c, len);
    if (c->tok_state != 2) {
        if (tok_flush(c) < 0)
            return -1;
        c->tok_state = 2;
    }
    if (c->reject)
        return 0;
    return tok_push(c, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct h1c *c = p->data;
    count_head(c, len);
    if (c->tok_state != 3) {
        c->tok_name_len = c->tok_len;
        c->tok_state = 3;
    }
    if (c->reject)
        return 0;
    return tok_push(c, at, len);
}

static int on_headers_complete(http_parser *p)
{
    struct h1c *c = p->data;
    if (tok_flush(c) < 0)
        return -1;
    struct xchg *x = c->x;
    struct req_head *r = xchg_req(x);
    const char *m = http_method_str((enum http_method)p->method);
    r->method = m;
    r->method_len = strlen(m);
    r->http_minor = p->http_minor;
    r->tls = c->tls;
    c->keep_alive = http_should_keep_alive(p);
    if (p->flags & F_CHUNKED) {
        r->has_body = 1;
        r->content_length = -1;
    } else if (p->flags & F_CONTENTLENGTH) {
        r->content_length = (int64_t)p->content_length;
        r->has_body = p->content_length > 0;
    }
    int expect_continue = 0;
    for (size_t i = 0; i < r->n_hdrs; i++) {
        const struct hdr *h = &r->hdrs[i];
        if (h->name_len == 4 && strncasecmp(h->name, "host", 4) == 0) {
            r->authority = h->value;
            r->authority_len = h->value_len;
        } else if (h->name_len == 6 && strncasecmp(h->name, "expect", 6) == 0 &&
                   h->value_len == 12 && strncasecmp(h->value, "100-continue", 12) == 0) {
            expect_continue = 1;
        }
    }
    evtimer_del(&c->timer);
    c->state = H1_BODY;
    if (p->upgrade || p->method == HTTP_CONNECT) {
        /* no tunnels through this proxy */
        if (!c->reject)
            c->reject = 501;
    }
    unsigned max_body = c->w->snap->limits.max_body_size;
    if (!c->reject && max_body && r->content_length > (int64_t)max_body)
        c->reject = 413;
    if (c->reject) {
        c->keep_alive = 0;
        c->close_after = 1;
        xchg_reply(x, c->reject);
        return 1; /* skip any body: we close after the answer */
    }
    if (expect_continue && p->http_minor >= 1 && r->has_body)
        bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    if (r->has_body)
        arm_ms(c, c->w->snap->timeouts.idle_ms);
    xchg_start(x);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct h1c *c = p->data;
    if (c->x == NULL || c->reject)
        return 0;
    if (xchg_req_body(c->x, at, len) < 0) {
        /* the response is done or failed: we'll close after it */
        c->close_after = 1;
    }
    if (c->read_paused)
        http_parser_pause(p, 1);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct h1c *c = p->data;
    c->req_done = 1;
    if (c->x != NULL && !c->reject)
        xchg_req_end(c->x);
    if (c->state == H1_BODY)
        c->state = H1_WAIT;
    evtimer_del(&c->timer);
    /* stop here: pipelined requests wait until this response is done */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings req_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- front ops, called by the exchange ---- */

static struct h1c *ctx_of(struct xchg *x)
{
    struct h1c *c = xchg_front_ctx(x);
    CUT_BUG_ON(c->magic != H1C_MAGIC);
    return c;
}

static void resp_finished(struct h1c *c)
{
    c->resp_done = 1;
    event_active(&c->kick, EV_WRITE, 0);
}

/* "HTTP/1.x NNN Reason\r\n" without printf (this runs once per response). */
static int append_status(char *p, size_t cap, int minor, int status)
{
    const char *reason = http_status_str((enum http_status)status);
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

static int op_send_head(struct xchg *x, int status, const struct hdr *hdrs, size_t n,
                        int64_t clen, int end)
{
    struct h1c *c = ctx_of(x);
    if (c->closed)
        return -1;
    const struct req_head *r = xchg_req(x);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char line[128];
    c->resp_started = 1;
    int minor = r->http_minor;
    int k = append_status(line, sizeof(line), minor, status);
    evbuffer_add(out, line, (size_t)k);
    for (size_t i = 0; i < n; i++) {
        struct evbuffer_iovec v;
        size_t need = hdrs[i].name_len + hdrs[i].value_len + 4;
        if (evbuffer_reserve_space(out, (ev_ssize_t)need, &v, 1) < 1)
            return -1;
        char *p = v.iov_base;
        memcpy(p, hdrs[i].name, hdrs[i].name_len);
        p += hdrs[i].name_len;
        *p++ = ':';
        *p++ = ' ';
        memcpy(p, hdrs[i].value, hdrs[i].value_len);
        p += hdrs[i].value_len;
        *p++ = '\r';
        *p++ = '\n';
        v.iov_len = need;
        evbuffer_commit_space(out, &v, 1);
    }
    int no_body_status = status == 204 || status == 304 || status < 200;
    c->resp_chunked = 0;
    if (clen >= 0) {
        if (status != 204) {
            char cl[40] = "Content-Length: ";
            size_t cn = 16 + fmt_u64(cl + 16, (uint64_t)clen);
            cl[cn++] = '\r';
            cl[cn++] = '\n';
            evbuffer_add(out, cl, cn);
        }
    } else if (end) {
        if (!no_body_status && !(r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0))
            evbuffer_add(out, "Content-Length: 0\r\n", 19);
    } else if (minor >= 1) {
        evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28);
        c->resp_chunked = 1;
    } else {
        c->close_after = 1; /* HTTP/1.0: the body ends with the connection */
    }
    if (!c->keep_alive || c->close_after || c->w->draining) {
        c->close_after = 1;
        evbuffer_add(out, "Connection: close\r\n\r\n", 21);
    } else if (minor == 0) {
        evbuffer_add(out, "Connection: keep-alive\r\n\r\n", 26);
    } else {
        evbuffer_add(out, "\r\n", 2);
    }
    if (end)
        resp_finished(c);
    return 0;
}

static int op_send_data(struct xchg *x, struct evbuffer *buf, int end)
{
    struct h1c *c = ctx_of(x);
    if (c->closed)
        return -1;
    struct evbuffer *out = bufferevent_get_output(c->bev);
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
    } else if (len > 0) {
        evbuffer_add_buffer(out, buf);
    }
    if (end)
        resp_finished(c);
    return 0;
}

static size_t op_pending(struct xchg *x)
{
    struct h1c *c = ctx_of(x);
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

static void op_pause_read(struct xchg *x)
{
    struct h1c *c = ctx_of(x);
    c->read_paused = 1;
    http_parser_pause(&c->parser, 1);
    bufferevent_disable(c->bev, EV_READ);
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
    bufferevent_free(c->bev);
    free(c->tok);
    c->magic = 0;
    free(c);
}

static void h1c_close(struct h1c *c)
{
    if (c->closed)
        return;
    c->closed = 1;
    evtimer_del(&c->timer);
    event_del(&c->kick);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
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
    c->reject = 0;
    c->head_bytes = 0;
    c->n_headers = 0;
    c->tok_state = 0;
    c->tok_len = 0;
    arm_ms(c, c->w->snap->timeouts.header_ms);
    return 0;
}

/* Feeds the input buffer to the parser until it pauses or runs dry. */
static void parse_input(struct h1c *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
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
        http_parser_pause(&c->parser, 0);
        struct evbuffer_iovec v[4];
        int n = evbuffer_peek(in, -1, NULL, v, 4);
        if (n > 4)
            n = 4;
        size_t used = 0;
        enum http_errno e = HPE_OK;
        for (int i = 0; i < n; i++) {
            size_t k = http_parser_execute(&c->parser, &req_settings, v[i].iov_base,
                                           v[i].iov_len);
            used += k;
            e = HTTP_PARSER_ERRNO(&c->parser);
            if (e != HPE_OK || k < v[i].iov_len)
                break;
        }
        evbuffer_drain(in, used);
        if (c->closed)
            return;
        if (e == HPE_PAUSED) {
            if (c->reject || c->close_after) {
                /* answering and closing: ignore the rest */
                evbuffer_drain(in, evbuffer_get_length(in));
                bufferevent_disable(c->bev, EV_READ);
                return;
            }
            continue;
        }
        if (e != HPE_OK) {
            cut_log(CUT_DEBUG, "w=%u bad request: %s", c->w->id, http_errno_description(e));
            c->close_after = 1;
            c->keep_alive = 0;
            evbuffer_drain(in, evbuffer_get_length(in));
            bufferevent_disable(c->bev, EV_READ);
            if (c->x != NULL && !c->resp_started)
                xchg_reply(c->x, e == HPE_HEADER_OVERFLOW ? 431 : 400);
            else
                h1c_close(c);
            return;
        }
        if (c->reject && c->state == H1_HEAD) {
            /* a limit was hit while the head is still coming: answer now */
            c->close_after = 1;
            c->keep_alive = 0;
            evbuffer_drain(in, evbuffer_get_length(in));
            bufferevent_disable(c->bev, EV_READ);
            xchg_reply(c->x, c->reject);
            return;
        }
        if (used == 0)
            return;
    }
}

/* The exchange finished its response: reset for the next request. */
static void h1c_advance(struct h1c *c)
{
    if (c->closed)
        return;
    if (c->resp_done && c->x != NULL) {
        struct evbuffer *out = bufferevent_get_output(c->bev);
        if (!c->req_done)
            c->close_after = 1; /* unread body: don't try to resync */
        if (c->close_after) {
            c->state = H1_CLOSING;
            bufferevent_disable(c->bev, EV_READ);
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
        bufferevent_enable(c->bev, EV_READ);
        parse_input(c);
    }
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct h1c *c = arg;
    CUT_BUG_ON(c->magic != H1C_MAGIC);
    h1c_advance(c);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct h1c *c = arg;
    CUT_BUG_ON(c->magic != H1C_MAGIC);
    if (c->state == H1_BODY)
        arm_ms(c, c->w->snap->timeouts.idle_ms);
    parse_input(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct h1c *c = arg;
    CUT_BUG_ON(c->magic != H1C_MAGIC);
    size_t left = evbuffer_get_length(bufferevent_get_output(bev));
    if (c->state == H1_CLOSING && left == 0) {
        h1c_close(c);
        return;
    }
    if (c->x != NULL && left <= XCHG_BUF_LOW)
        xchg_front_drained(c->x);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct h1c *c = arg;
    CUT_BUG_ON(c->magic != H1C_MAGIC);
    if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) && c->x != NULL &&
        c->req_done && !c->resp_done) {
        /* half-close after a complete request: let the response finish */
        c->close_after = 1;
        bufferevent_disable(bev, EV_READ);
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

int h1f_start(struct worker *w, struct bufferevent *bev, int tls, const struct sockaddr *peer,
              socklen_t peerlen)
{
    struct h1c *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        bufferevent_free(bev);
        return -1;
    }
    c->magic = H1C_MAGIC;
    c->w = w;
    c->bev = bev;
    c->tls = tls;
    if (peerlen > sizeof(c->peer))
        peerlen = sizeof(c->peer);
    memcpy(&c->peer, peer, peerlen);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    evtimer_assign(&c->timer, w->base, timer_cb, c);
    event_assign(&c->kick, w->base, -1, 0, kick_cb, c);
    c->link.on_drain = on_drain;
    c->link.on_kill = on_kill;
    worker_conn_add(w, &c->link);
    worker_refresh(w);
    struct timeval wt = {w->snap->timeouts.idle_ms / 1000, (w->snap->timeouts.idle_ms % 1000) * 1000};
    bufferevent_set_timeouts(bev, NULL, &wt);
    bufferevent_setcb(bev, read_cb, write_cb, event_cb, c);
    bufferevent_setwatermark(bev, EV_WRITE, XCHG_BUF_LOW, 0);
    bufferevent_setwatermark(bev, EV_READ, 0, XCHG_BUF_HIGH);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    c->state = H1_IDLE;
    arm_ms(c, w->snap->timeouts.header_ms);
    if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
        parse_input(c);
    return 0;
}
