/*
 * h2_front.c: the HTTP/2 downstream front end (h2 by ALPN, h2c by prior
 * knowledge). One nghttp2 server session per connection; one stream struct
 * per request, which owns that request's exchange (struct xchg).
 *
 * Rules this file lives by (STYLE.md, "nghttp2 session callbacks"):
 *   - nghttp2 is entered (mem_recv, session_send) only from our own
 *     top-level libevent callbacks, never from a callback nor from a
 *     front_ops call made by an exchange. Ops that need bytes on the wire
 *     activate a per-connection "flush" event instead.
 *   - So on_stream_close, which frees the exchange, only ever runs inside
 *     mem_recv / session_send and never under an exchange's own stack.
 *   - h2f_close() is never called from inside nghttp2; callbacks return
 *     NGHTTP2_ERR_CALLBACK_FAILURE and ops set <fatal>; the caller closes.
 *   - Close marks, the reaper frees: h2f_close() stops the I/O, frees the
 *     streams and the session, and queues the conn on worker_defer_free().
 *
 * Flow control follows real progress: request DATA is consumed (window
 * re-opened) when the exchange reports, through ops->req_consumed, that the
 * bytes have left for the upstream; response bytes sit in the stream's
 * evbuffer until nghttp2 pulls them (zero-copy into the sock's output
 * via NGHTTP2_DATA_FLAG_NO_COPY), and the exchange is told to resume its
 * upstream once that buffer is back under XCHG_BUF_LOW.
 */
#include "front.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>

#include "log.h"
#include "sock.h"
#include "mem.h"
#include "worker.h"
#include "xchg.h"

#define H2F_CONN_MAGIC 0x48324643u   /* "H2FC" */
#define H2F_STREAM_MAGIC 0x48324653u /* "H2FS" */

#ifdef CUT_DEBUG_BUILD
#define H2F_CHECK(p, m) CUT_BUG_ON((p) == NULL || (p)->magic != (m))
#else
#define H2F_CHECK(p, m) ((void)(p))
#endif

/* Bytes in the connection's output buffer above which send_callback says
 * WOULDBLOCK and reading stops; the write callback refills below OUT_LOW. */
#define H2F_OUT_HIGH (512 * 1024)
#define H2F_OUT_LOW (128 * 1024)
/* Flow-control windows we advertise for request bodies. */
#define H2F_STREAM_WINDOW (256 * 1024)
#define H2F_CONN_WINDOW (1024 * 1024)
/* iovecs fed to mem_recv per evbuffer_peek round. */
#define H2F_IOV 8

struct h2f_conn;

enum h2f_tmode { H2F_T_NONE = 0, H2F_T_IDLE, H2F_T_HEADER, H2F_T_N_MODES };

struct h2f_stream {
    unsigned magic;
    struct h2f_conn *c;
    struct h2f_stream *prev, *next; /* c->streams */
    struct xchg *x;                 /* owned */
    struct req_head *req;           /* xchg_req(x) */
    struct evbuffer *out;           /* response body not yet pulled by nghttp2 */
    int32_t id;
    int err_status;            /* 400/414/431 to reply at end of headers, or 0 */
    size_t hdr_bytes;          /* request head bytes so far (pseudo-headers included) */
    unsigned n_hdrs;           /* regular header fields (cookie crumbs count once) */
    size_t unconsumed;         /* DATA bytes handed to the exchange, not yet consumed */
    uint64_t body_bytes;       /* DATA bytes received, against max_body_size */
    unsigned started : 1;      /* xchg_start called */
    unsigned req_ended : 1;    /* END_STREAM received from the client */
    unsigned body_refused : 1; /* xchg_req_body said -1: discard the rest */
    unsigned head_sent : 1;    /* response HEADERS submitted */
    unsigned has_prd : 1;      /* ... with a data provider */
    unsigned out_end : 1;      /* the exchange sent its last data */
    unsigned deferred : 1;     /* data provider returned DEFERRED */
    unsigned above_low : 1;    /* <out> went above XCHG_BUF_LOW */
    unsigned drained : 1;      /* ... and came back: tell the exchange */
    unsigned closing : 1;      /* being freed: ops are no-ops */
    unsigned aborted : 1;      /* ops->abort: RST_STREAM queued, no more DATA */
    unsigned seen_cookie : 1;
};

struct h2f_conn {
    unsigned magic;
    struct conn_link link;
    struct worker *w;
    struct sock *sk;
    nghttp2_session *ng;
    struct event *flush_ev; /* runs h2f_send() after the current callback stack */
    struct event *timer;    /* idle_ms without streams, or header_ms inside a header block */
    struct h2f_stream *streams;
    struct h2f_stream *hb_stream; /* receiving its request header block, or NULL */
    unsigned n_streams;
    int32_t last_sid;          /* highest stream id we accepted, for GOAWAY */
    struct conf_limits limits; /* copied at start: a reload applies to new conns */
    struct conf_timeouts timeouts;
    struct sockaddr_storage peer;
    uint64_t id;
    unsigned tls : 1;
    unsigned in_ng : 1;       /* inside nghttp2_session_mem_recv / _send */
    unsigned closed : 1;      /* h2f_close ran; waiting for the reaper */
    unsigned fatal : 1;       /* an op hit a fatal nghttp2 error: close from flush */
    unsigned finishing : 1;   /* session done, flushing the output before close */
    unsigned rd_paused : 1;   /* reading stopped: output above H2F_OUT_HIGH */
    unsigned draining : 1;    /* shutdown notice sent; refuse new streams */
    unsigned goaway : 1;      /* final GOAWAY submitted */
    unsigned any_drained : 1; /* some stream has <drained> set */
    unsigned in_hblock : 1;   /* a HEADERS block awaits its CONTINUATION */
    unsigned greeted : 1;     /* a session_send ran: our SETTINGS are out */
    unsigned tmode : 2;       /* what <timer> is armed for: enum h2f_tmode */
};

static _Thread_local uint64_t h2f_next_id;

static const struct front_ops h2f_ops;
static int h2f_send(struct h2f_conn *c);
static void h2f_close(struct h2f_conn *c);

/* ---- small helpers ---------------------------------------------------- */

static struct h2f_conn *h2f_conn_of_link(struct conn_link *l)
{
    return (struct h2f_conn *)(void *)((char *)l - offsetof(struct h2f_conn, link));
}

/* Asks for an nghttp2_session_send once the current callback stack has
 * unwound. Inside mem_recv/send the caller sends anyway. */
static void h2f_want_send(struct h2f_conn *c)
{
    if (c->in_ng || c->closed)
        return;
    event_active(c->flush_ev, EV_TIMEOUT, 0);
}

/* Records a failed nghttp2 call made outside of our own top-level
 * callbacks (ops): fatal errors kill the connection from the flush event. */
static void h2f_note_rv(struct h2f_conn *c, int rv, const char *what)
{
    if (rv == 0)
        return;
    cut_log(CUT_DEBUG, "h2f: w=%u c=%llu %s: %s", c->w->id, (unsigned long long)c->id, what,
            nghttp2_strerror(rv));
    if (nghttp2_is_fatal(rv)) {
        c->fatal = 1;
        h2f_want_send(c);
    }
}

/*
 * One timer per connection, in one of two modes: idle_ms while no stream is
 * open (then GOAWAY), header_ms while a header block is cut short of its
 * CONTINUATION (nothing else can flow meanwhile, so a client stalling there
 * would hold the connection forever). Re-armed only on mode changes, so a
 * busy connection costs no timer work per request.
 */
static void h2f_timer_update(struct h2f_conn *c)
{
    enum h2f_tmode m = H2F_T_NONE;
    unsigned ms = 0;
    struct timeval tv;

    if (c->in_hblock) {
        m = H2F_T_HEADER;
        ms = c->timeouts.header_ms;
    } else if (c->n_streams == 0) {
        m = H2F_T_IDLE;
        ms = c->timeouts.idle_ms;
    }
    if (ms == 0)
        m = H2F_T_NONE;
    if (m == c->tmode)
        return;
    c->tmode = m;
    if (m == H2F_T_NONE) {
        event_del(c->timer);
        return;
    }
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    event_add(c->timer, &tv);
}

/* Final GOAWAY: names the last stream we accepted, not a refused one. */
static int h2f_goaway(struct h2f_conn *c)
{
    c->goaway = 1;
    return nghttp2_session_terminate_session2(c->ng, c->last_sid, NGHTTP2_NO_ERROR);
}

static void h2f_refuse(nghttp2_session *ng, int32_t id)
{
    (void)nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
}

/* "content-length" value: digits only, no overflow. Returns -1 if invalid. */
static int64_t h2f_parse_clen(const uint8_t *v, size_t n)
{
    int64_t r = 0;
    size_t i;

    if (n == 0 || n > 18)
        return -1;
    for (i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        r = r * 10 + (v[i] - '0');
    }
    return r;
}

static int h2f_name_is(const uint8_t *name, size_t len, const char *lit, size_t litlen)
{
    return len == litlen && memcmp(name, lit, litlen) == 0;
}
#define H2F_NAME_IS(n, l, lit) h2f_name_is((n), (l), (lit), sizeof(lit) - 1)

/*
 * What nghttp2 lets through in a request target that HTTP/1.1 cannot carry
 * (h1parse.c refuses both), checked where h2f_on_header meets those fields: a
 * fragment in :path, which an origin would cut off where the routing did not
 * (HAProxy's CVE-2023-45539), and userinfo in :authority or Host (RFC 9113
 * 8.3.1). nghttp2 has checked every other byte.
 */
#define H2F_PATH_BAD '#'
#define H2F_AUTHORITY_BAD '@'

/* ---- streams ---------------------------------------------------------- */

static struct h2f_stream *h2f_stream_new(struct h2f_conn *c, int32_t id)
{
    struct h2f_stream *s;
    struct req_head *req;

    s = mem_calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->magic = H2F_STREAM_MAGIC;
    s->c = c;
    s->id = id;
    s->x = xchg_new(c->w, &h2f_ops, s, XCHG_H2, (const struct sockaddr *)&c->peer);
    if (s->x == NULL) {
        s->magic = 0;
        mem_free(s);
        return NULL;
    }
    req = s->req = xchg_req(s->x);
    req->tls = c->tls;
    req->http_minor = 1;
    req->content_length = -1;

    if (id > c->last_sid)
        c->last_sid = id;
    s->next = c->streams;
    if (c->streams != NULL)
        c->streams->prev = s;
    c->streams = s;
    c->n_streams++; /* the timer follows at the end of h2f_recv() */
    return s;
}

/* Unlinks and frees <s>; its exchange must be freed already. */
static void h2f_stream_free(struct h2f_stream *s)
{
    struct h2f_conn *c = s->c;

    CUT_BUG_ON(s->x != NULL);
    if (c->hb_stream == s)
        c->hb_stream = NULL;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        c->streams = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    c->n_streams--;
    if (s->out != NULL)
        evbuffer_free(s->out);
    s->magic = 0;
    mem_free(s);
}

/* The request head is complete (END_HEADERS of the request HEADERS). */
static void h2f_stream_begin(struct h2f_stream *s, int end_stream)
{
    struct req_head *req = s->req;
    size_t i;

    req->has_body = !end_stream;
    req->http_minor = 1;
    req->tls = s->c->tls;
    if (end_stream)
        s->req_ended = 1;

    if (s->err_status == 0 && req->method_len == 7 && memcmp(req->method, "CONNECT", 7) == 0)
        s->err_status = 501; /* no tunnels, as over HTTP/1.1 */
    if (s->err_status == 0 && s->c->limits.max_body_size != 0 &&
        req->content_length > (int64_t)s->c->limits.max_body_size)
        s->err_status = 413; /* as over HTTP/1.1: the upstream never sees it */
    if (s->err_status == 0 && (req->method == NULL || req->path == NULL))
        s->err_status = 400; /* a request nghttp2 let through without :path */
    if (req->authority == NULL) {
        for (i = 0; i < req->n_hdrs; i++) {
            if (req->hdrs[i].name_len == 4 && strncasecmp(req->hdrs[i].name, "host", 4) == 0) {
                req->authority = req->hdrs[i].value;
                req->authority_len = req->hdrs[i].value_len;
                break;
            }
        }
    }
    if (s->err_status != 0) {
        /* Never started: a body, if any, is consumed and dropped. */
        xchg_reply(s->x, s->err_status);
        return;
    }
    s->started = 1;
    xchg_start(s->x);
    if (end_stream)
        xchg_req_end(s->x);
}

static void h2f_stream_req_end(struct h2f_stream *s)
{
    if (s->req_ended)
        return;
    s->req_ended = 1;
    if (s->started && !s->body_refused)
        xchg_req_end(s->x);
}

/* ---- front_ops -------------------------------------------------------- */

static struct h2f_stream *h2f_stream_of(struct xchg *x)
{
    struct h2f_stream *s = xchg_front_ctx(x);

    H2F_CHECK(s, H2F_STREAM_MAGIC);
    H2F_CHECK(s->c, H2F_CONN_MAGIC);
    return s;
}

static ssize_t h2f_data_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                             uint32_t *flags, nghttp2_data_source *src, void *user_data)
{
    struct h2f_stream *s = src->ptr;
    size_t avail, n;

    H2F_CHECK(s, H2F_STREAM_MAGIC);
    if (s->aborted)
        return NGHTTP2_ERR_DEFERRED; /* never an EOF: the RST_STREAM is queued */
    avail = evbuffer_get_length(s->out);
    n = avail < length ? avail : length;
    if (n == 0 && !s->out_end) {
        s->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (s->out_end && n == avail)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* The hop-by-hop and connection-specific fields HTTP/2 forbids. */
static int h2f_is_conn_specific(const char *n, size_t l)
{
    switch (l) { /* by length first: most names match none */
    case 2:
        return strncasecmp(n, "te", 2) == 0;
    case 7:
        return strncasecmp(n, "upgrade", 7) == 0;
    case 10:
        return strncasecmp(n, "connection", 10) == 0 || strncasecmp(n, "keep-alive", 10) == 0;
    case 14:
        return strncasecmp(n, "http2-settings", 14) == 0;
    case 16:
        return strncasecmp(n, "proxy-connection", 16) == 0;
    case 17:
        return strncasecmp(n, "transfer-encoding", 17) == 0;
    default:
        return 0;
    }
}

/*
 * Copies the <n> bytes of a field name at <src> to <dst>, lower-cased, eight
 * bytes at a time: it may write up to 7 bytes of garbage past dst + n.
 */
static void h2f_lower_copy(char *dst, const char *src, size_t n)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    size_t j;

    memcpy(dst, src, n);
    for (j = 0; j < n; j += 8) {
        uint64_t w, h, up;

        memcpy(&w, dst + j, 8);
        h = w & ~high; /* below 0x80: no carry between bytes */
        /* 0x80 in each byte from 'A' to 'Z' */
        up = (h + (0x80 - 'A') * ones) & ~(h + (0x80 - 'Z' - 1) * ones) & ~w & high;
        w |= up >> 2;
        memcpy(dst + j, &w, 8);
    }
}

static int h2f_send_head(struct xchg *x, int status, const struct hdr *hdrs, size_t n,
                         int64_t content_length, int end)
{
    struct h2f_stream *s = h2f_stream_of(x);
    struct h2f_conn *c = s->c;
    nghttp2_data_provider prd;
    nghttp2_nv *nv;
    char *p;
    size_t i, j, k = 0, need = 3 + 20;
    int has_cl = 0, rv;

    if (c->closed || s->closing || s->aborted || s->head_sent)
        return -1;
    if (status < 100 || status > 999)
        return -1;
    /*
     * One arena block: the nv array, then every name (lower-cased, as h2
     * wants) and value. nghttp2 keeps pointers to them (NO_COPY_*) until it
     * serialises the HEADERS frame; the arena lives until xchg_free, which
     * runs only once the stream is closed (on_stream_close: nghttp2 then
     * drops a HEADERS frame still queued without reading it) or the session
     * is deleted (h2f_close). <hdrs> itself may point into the upstream's
     * input buffer, drained when this returns.
     */
    for (i = 0; i < n; i++)
        need += hdrs[i].name_len + hdrs[i].value_len;
    nv = xchg_alloc(x, (n + 2) * sizeof(*nv) + need + 8); /* + h2f_lower_copy's slack */
    if (nv == NULL)
        return -1;
    p = (char *)(nv + n + 2);
    p[0] = (char)('0' + status / 100);
    p[1] = (char)('0' + status / 10 % 10);
    p[2] = (char)('0' + status % 10);
    nv[k++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)p, 7, 3,
                           NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
    p += 3;

    for (i = 0; i < n; i++) {
        const char *name = hdrs[i].name;
        size_t nl = hdrs[i].name_len, vl = hdrs[i].value_len;
        char *low = p;

        if (nl == 0 || name[0] == ':' || h2f_is_conn_specific(name, nl))
            continue;
        h2f_lower_copy(low, name, nl); /* h2 field names are lower case */
        p += nl;
        if (nl == 14 && memcmp(low, "content-length", 14) == 0)
            has_cl = 1;
        if (vl > 0)
            memcpy(p, hdrs[i].value, vl);
        nv[k++] = (nghttp2_nv){(uint8_t *)low, (uint8_t *)p, nl, vl,
                               NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
        p += vl;
    }
    if (!has_cl && content_length >= 0 && status >= 200 && status != 204 && status != 304) {
        char tmp[20];
        size_t len = 0;
        uint64_t cl = (uint64_t)content_length;

        do {
            tmp[len++] = (char)('0' + cl % 10);
            cl /= 10;
        } while (cl > 0);
        for (j = 0; j < len; j++)
            p[j] = tmp[len - 1 - j];
        nv[k++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)p, 14, len,
                               NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
    }

    if (!end && s->out == NULL) {
        s->out = evbuffer_new();
        if (s->out == NULL)
            return -1;
    }
    prd.source.ptr = s;
    prd.read_callback = h2f_data_read;
    rv = nghttp2_submit_response(c->ng, s->id, nv, k, end ? NULL : &prd);
    if (rv != 0) {
        h2f_note_rv(c, rv, "submit_response");
        return -1;
    }
    s->head_sent = 1;
    s->has_prd = !end;
    if (end)
        s->out_end = 1;
    h2f_want_send(c);
    return 0;
}

static int h2f_send_data(struct xchg *x, struct evbuffer *buf, int end)
{
    struct h2f_stream *s = h2f_stream_of(x);
    struct h2f_conn *c = s->c;

    /* <buf> may be NULL for an empty last chunk (end = 1). */
    if (c->closed || s->closing || s->aborted || !s->has_prd || s->out_end) {
        if (buf != NULL)
            evbuffer_drain(buf, evbuffer_get_length(buf));
        return -1;
    }
    if (buf != NULL && evbuffer_add_buffer(s->out, buf) != 0) {
        evbuffer_drain(buf, evbuffer_get_length(buf));
        return -1;
    }
    if (end)
        s->out_end = 1;
    if (evbuffer_get_length(s->out) > XCHG_BUF_LOW)
        s->above_low = 1;
    if (s->deferred) {
        s->deferred = 0;
        h2f_note_rv(c, nghttp2_session_resume_data(c->ng, s->id), "resume_data");
    }
    h2f_want_send(c);
    return 0;
}

static size_t h2f_pending(struct xchg *x)
{
    struct h2f_stream *s = h2f_stream_of(x);

    return s->out != NULL ? evbuffer_get_length(s->out) : 0;
}

static void h2f_pause_read(struct xchg *x)
{
    (void)x; /* h2: the stream window does it */
}

static void h2f_resume_read(struct xchg *x)
{
    (void)x;
}

static void h2f_req_consumed(struct xchg *x, size_t n)
{
    struct h2f_stream *s = h2f_stream_of(x);
    struct h2f_conn *c = s->c;

    if (c->closed || s->closing)
        return;
    if (n > s->unconsumed)
        n = s->unconsumed; /* never hand back bytes twice */
    if (n == 0)
        return;
    s->unconsumed -= n;
    h2f_note_rv(c, nghttp2_session_consume(c->ng, s->id, n), "consume");
    h2f_want_send(c);
}

static void h2f_abort(struct xchg *x)
{
    struct h2f_stream *s = h2f_stream_of(x);
    struct h2f_conn *c = s->c;

    if (c->closed || s->closing || s->aborted)
        return;
    /* Leave <out> alone: a DATA frame already packed (NO_COPY, waiting on
     * WOULDBLOCK) still moves its bytes out of it before the RST goes. */
    s->aborted = 1;
    h2f_note_rv(c,
                nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR),
                "rst_stream");
    h2f_want_send(c);
}

static const struct front_ops h2f_ops = {
    .send_head = h2f_send_head,
    .send_data = h2f_send_data,
    .pending = h2f_pending,
    .pause_read = h2f_pause_read,
    .resume_read = h2f_resume_read,
    .req_consumed = h2f_req_consumed,
    .abort = h2f_abort,
};

/* ---- nghttp2 callbacks ------------------------------------------------ */

static ssize_t h2f_on_send(nghttp2_session *ng, const uint8_t *data, size_t len, int flags,
                           void *user_data)
{
    struct h2f_conn *c = user_data;
    struct evbuffer *out;

    H2F_CHECK(c, H2F_CONN_MAGIC);
    out = sock_output(c->sk);
    if (evbuffer_get_length(out) >= H2F_OUT_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (evbuffer_add(out, data, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)len;
}

/* Zero-copy DATA: frame header, then the body chains moved from the
 * stream's buffer into the sock's output. */
/* DATA payloads up to this size are copied into the output on TLS connections. */
#define H2F_TLS_COPY_MAX 16384

static int h2f_on_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                            size_t length, nghttp2_data_source *src, void *user_data)
{
    static const uint8_t zeros[256];
    struct h2f_conn *c = user_data;
    struct h2f_stream *s = src->ptr;
    struct evbuffer *out;
    size_t padlen = frame->data.padlen;

    H2F_CHECK(c, H2F_CONN_MAGIC);
    H2F_CHECK(s, H2F_STREAM_MAGIC);
    out = sock_output(c->sk);
    if (evbuffer_get_length(out) >= H2F_OUT_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (evbuffer_add(out, framehd, 9) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (padlen > 0) {
        uint8_t pl = (uint8_t)(padlen - 1);

        if (evbuffer_add(out, &pl, 1) != 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (length > 0 && c->tls && length <= H2F_TLS_COPY_MAX) {
        /* TLS: sock.c pulls up to 16 KiB into one record, so chains would be
         * copied anyway; copying a small payload next to its frame header now
         * is cheaper than moving a chain of its own into the output. */
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(out, (ev_ssize_t)length, &v, 1) != 1 ||
            evbuffer_copyout(s->out, v.iov_base, length) != (ev_ssize_t)length)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        v.iov_len = length;
        if (evbuffer_commit_space(out, &v, 1) != 0 || evbuffer_drain(s->out, length) != 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    } else if (length > 0 && evbuffer_remove_buffer(s->out, out, length) != (int)length) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (padlen > 1 && evbuffer_add(out, zeros, padlen - 1) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (s->above_low && evbuffer_get_length(s->out) <= XCHG_BUF_LOW) {
        s->above_low = 0;
        s->drained = 1;
        c->any_drained = 1;
    }
    return 0;
}

/*
 * Tracks header blocks split over CONTINUATION frames (for header_ms).
 * nghttp2 does not report the CONTINUATIONs of a block it ignores itself
 * (after GOAWAY, or a stream over the unacknowledged stream limit), so any
 * other frame also ends the block: a frame can only follow a complete one.
 */
static int h2f_on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *user_data)
{
    struct h2f_conn *c = user_data;

    H2F_CHECK(c, H2F_CONN_MAGIC);
    if (hd->type == NGHTTP2_HEADERS || hd->type == NGHTTP2_CONTINUATION)
        c->in_hblock = !(hd->flags & NGHTTP2_FLAG_END_HEADERS);
    else
        c->in_hblock = 0;
    return 0;
}

static int h2f_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    struct h2f_conn *c = user_data;
    int32_t id = frame->hd.stream_id;

    H2F_CHECK(c, H2F_CONN_MAGIC);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (c->draining || c->n_streams >= c->limits.max_concurrent_streams) {
        h2f_refuse(ng, id);
        return 0;
    }
    struct h2f_stream *s = h2f_stream_new(c, id);
    if (s == NULL) {
        cut_log(CUT_WARN, "h2f: w=%u c=%llu s=%d: out of memory, stream refused", c->w->id,
                (unsigned long long)c->id, id);
        h2f_refuse(ng, id);
        return 0;
    }
    if (nghttp2_session_set_stream_user_data(ng, id, s) != 0) {
        xchg_free(s->x);
        s->x = NULL;
        h2f_stream_free(s);
        h2f_refuse(ng, id);
        return 0;
    }
    c->hb_stream = s;
    return 0;
}

/*
 * The stream of <id>, as nghttp2_session_get_stream_user_data() finds it, but
 * without its map lookup for the stream whose request header block is coming
 * in (a callback per field). Holds because that user data is set only once,
 * in h2f_on_begin_headers(), and cleared only right before h2f_stream_free(),
 * which forgets c->hb_stream.
 */
static struct h2f_stream *h2f_stream_get(struct h2f_conn *c, nghttp2_session *ng, int32_t id)
{
    struct h2f_stream *s = c->hb_stream;

    if (s != NULL && s->id == id)
        return s;
    return nghttp2_session_get_stream_user_data(ng, id);
}

static int h2f_on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                         size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                         void *user_data)
{
    struct h2f_conn *c = user_data;
    struct h2f_stream *s;
    struct req_head *req;
    int is_cookie;

    H2F_CHECK(c, H2F_CONN_MAGIC);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* request trailers are not forwarded: the exchange has no API for them */
    s = h2f_stream_get(c, ng, frame->hd.stream_id);
    if (s == NULL || s->err_status != 0)
        return 0;
    H2F_CHECK(s, H2F_STREAM_MAGIC);
    req = s->req;

    /* A long :path is a 414 even when it also overflows the head size. */
    if (H2F_NAME_IS(name, namelen, ":path") && valuelen > c->limits.max_request_line) {
        s->err_status = 414;
        return 0;
    }
    s->hdr_bytes += namelen + valuelen + 4; /* as "name: value\r\n" */
    if (s->hdr_bytes > c->limits.max_header_size) {
        s->err_status = 431;
        return 0;
    }
    if (namelen > 0 && name[0] == ':') {
        const char **dst = NULL;
        size_t *dlen = NULL;
        int bad = 0;

        if (H2F_NAME_IS(name, namelen, ":method")) {
            dst = &req->method;
            dlen = &req->method_len;
        } else if (H2F_NAME_IS(name, namelen, ":path")) {
            dst = &req->path;
            dlen = &req->path_len;
            bad = H2F_PATH_BAD;
        } else if (H2F_NAME_IS(name, namelen, ":authority")) {
            dst = &req->authority;
            dlen = &req->authority_len;
            bad = H2F_AUTHORITY_BAD;
        } /* :scheme: the connection says whether it is TLS; :protocol is not enabled */
        if (bad != 0 && memchr(value, bad, valuelen) != NULL) {
            s->err_status = 400;
            return 0;
        }
        if (dst != NULL) {
            char *v = xchg_strdup(s->x, (const char *)value, valuelen);

            if (v == NULL)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            *dst = v;
            *dlen = valuelen;
        }
        return 0;
    }

    if (H2F_NAME_IS(name, namelen, "host") && memchr(value, H2F_AUTHORITY_BAD, valuelen) != NULL) {
        s->err_status = 400;
        return 0;
    }
    /* Browsers split cookies into crumbs; they become one field upstream. */
    is_cookie = H2F_NAME_IS(name, namelen, "cookie");
    if (!is_cookie || !s->seen_cookie)
        s->n_hdrs++;
    if (is_cookie)
        s->seen_cookie = 1;
    if (s->n_hdrs > c->limits.max_headers) {
        s->err_status = 431;
        return 0;
    }
    if (H2F_NAME_IS(name, namelen, "content-length")) {
        req->content_length = h2f_parse_clen(value, valuelen);
        if (req->content_length < 0) {
            s->err_status = 400;
            return 0;
        }
    }
    if (xchg_add_header(s->x, (const char *)name, namelen, (const char *)value, valuelen) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int h2f_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    struct h2f_conn *c = user_data;
    struct h2f_stream *s;
    int es = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    H2F_CHECK(c, H2F_CONN_MAGIC);
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    s = h2f_stream_get(c, ng, frame->hd.stream_id);
    if (s == NULL)
        return 0;
    H2F_CHECK(s, H2F_STREAM_MAGIC);
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        if (frame->hd.flags & NGHTTP2_FLAG_END_HEADERS)
            h2f_stream_begin(s, es);
    } else if (es) {
        h2f_stream_req_end(s); /* DATA or trailers with END_STREAM */
    }
    return 0;
}

static int h2f_on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                             size_t len, void *user_data)
{
    struct h2f_conn *c = user_data;
    struct h2f_stream *s;

    H2F_CHECK(c, H2F_CONN_MAGIC);
    s = nghttp2_session_get_stream_user_data(ng, id);
    if (s == NULL || !s->started || s->body_refused) {
        /* Refused stream, proxy-generated reply, or a body nobody wants. */
        if (nghttp2_is_fatal(nghttp2_session_consume(ng, id, len)))
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        return 0;
    }
    H2F_CHECK(s, H2F_STREAM_MAGIC);
    s->body_bytes += len;
    if (s->c->limits.max_body_size != 0 && s->body_bytes > s->c->limits.max_body_size) {
        /* a body past the limit that no content-length announced: as over
         * HTTP/1.1, 413 while no response has started, else the response is
         * cut; the upstream request is cut either way, the rest dropped */
        s->body_refused = 1;
        len += s->unconsumed;
        s->unconsumed = 0;
        if (nghttp2_is_fatal(nghttp2_session_consume(ng, id, len)))
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        xchg_reply(s->x, 413);
        return 0;
    }
    s->unconsumed += len; /* before: the exchange may report consumption at once */
    if (xchg_req_body(s->x, data, len) < 0) {
        s->body_refused = 1;
        len = s->unconsumed;
        s->unconsumed = 0;
        if (nghttp2_is_fatal(nghttp2_session_consume(ng, id, len)))
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int h2f_on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    struct h2f_conn *c = user_data;
    struct h2f_stream *s;

    H2F_CHECK(c, H2F_CONN_MAGIC);
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    s = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (s == NULL || s->req_ended)
        return 0;
    /* Complete response while the client is still sending: tell it to stop
     * (RFC 9113 8.1), instead of reading and discarding the rest. */
    (void)nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    return 0;
}

static int h2f_on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code,
                               void *user_data)
{
    struct h2f_conn *c = user_data;
    struct h2f_stream *s;

    H2F_CHECK(c, H2F_CONN_MAGIC);
    s = nghttp2_session_get_stream_user_data(ng, id);
    if (s == NULL)
        return 0;
    H2F_CHECK(s, H2F_STREAM_MAGIC);
    s->closing = 1;
    (void)nghttp2_session_set_stream_user_data(ng, id, NULL);
    /* Bytes the exchange still held count against the connection window. */
    if (s->unconsumed > 0 &&
        nghttp2_is_fatal(nghttp2_session_consume_connection(ng, s->unconsumed)))
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    s->unconsumed = 0;
    xchg_free(s->x);
    s->x = NULL;
    h2f_stream_free(s);

    if (c->n_streams == 0 && c->draining && !c->goaway) {
        if (nghttp2_is_fatal(h2f_goaway(c)))
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    h2f_timer_update(c);
    return 0;
}

static int h2f_on_error(nghttp2_session *ng, int code, const char *msg, size_t len, void *user_data)
{
    struct h2f_conn *c = user_data;

    H2F_CHECK(c, H2F_CONN_MAGIC);
    cut_log(CUT_DEBUG, "h2f: w=%u c=%llu nghttp2: %.*s", c->w->id, (unsigned long long)c->id,
            (int)len, msg);
    return 0;
}

/* ---- connection I/O --------------------------------------------------- */

/*
 * nghttp2 ends a session without a GOAWAY when a header block runs past its
 * CONTINUATION limit (CVE-2024-27316 class): say why before closing (RFC 9113
 * 5.4.1), best effort: plain TCP writes it at once, TLS loses it with the
 * close. The output holds whole frames only (h2f_on_send takes all or none).
 * A flood in the first read fails before our SETTINGS went out: an empty
 * one goes first then, as the server preface must.
 */
static void h2f_goaway_calm(struct h2f_conn *c)
{
    uint8_t f[9 + 17] = {0, 0, 0, NGHTTP2_SETTINGS, 0, 0, 0, 0, 0, 0, 0, 8, NGHTTP2_GOAWAY, 0};
    uint32_t last = (uint32_t)c->last_sid;
    size_t off = c->greeted ? 9 : 0;
    int i;

    for (i = 0; i < 4; i++)
        f[18 + i] = (uint8_t)(last >> (24 - 8 * i));
    f[25] = NGHTTP2_ENHANCE_YOUR_CALM;
    if (evbuffer_add(sock_output(c->sk), f + off, sizeof(f) - off) == 0)
        sock_flush_direct(c->sk);
}

/* Feeds the sock's input to nghttp2. Returns 0, or -1 if <c> was
 * closed (the caller stops). */
static int h2f_recv(struct h2f_conn *c)
{
    struct evbuffer *in = sock_input(c->sk);

    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v[H2F_IOV];
        size_t done = 0;
        int i, n;

        if (c->finishing) {
            evbuffer_drain(in, evbuffer_get_length(in));
            break;
        }
        n = evbuffer_peek(in, -1, NULL, v, H2F_IOV);
        if (n > H2F_IOV)
            n = H2F_IOV;
        for (i = 0; i < n; i++) {
            ssize_t r;

            c->in_ng = 1;
            r = nghttp2_session_mem_recv(c->ng, v[i].iov_base, v[i].iov_len);
            c->in_ng = 0;
            if (r < 0) {
                cut_log(CUT_DEBUG, "h2f: w=%u c=%llu recv: %s", c->w->id, (unsigned long long)c->id,
                        nghttp2_strerror((int)r));
                if (r == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
                    h2f_goaway_calm(c);
                h2f_close(c);
                return -1;
            }
            done += (size_t)r;
        }
        evbuffer_drain(in, done);
    }
    h2f_timer_update(c);
    return 0;
}

static void h2f_notify_drained(struct h2f_conn *c)
{
    struct h2f_stream *s, *next;

    c->any_drained = 0;
    for (s = c->streams; s != NULL; s = next) {
        next = s->next;
        if (s->drained) {
            s->drained = 0;
            if (!s->closing && s->x != NULL)
                xchg_front_drained(s->x); /* may call ops; they only submit */
        }
    }
}

/* Runs nghttp2_session_send, then what must follow it from outside
 * nghttp2: exchange wake-ups and the end-of-session check. Returns 0, or
 * -1 if <c> was closed. */
static int h2f_send(struct h2f_conn *c)
{
    struct evbuffer *out;
    int rv;

    if (c->closed)
        return -1;
    if (c->fatal) {
        h2f_close(c);
        return -1;
    }
    c->in_ng = 1;
    rv = nghttp2_session_send(c->ng);
    c->in_ng = 0;
    sock_kick(c->sk);
    if (rv != 0) {
        cut_log(CUT_DEBUG, "h2f: w=%u c=%llu send: %s", c->w->id, (unsigned long long)c->id,
                nghttp2_strerror(rv));
        h2f_close(c);
        return -1;
    }
    c->greeted = 1;
    if (c->any_drained)
        h2f_notify_drained(c);
    if (c->fatal) {
        h2f_close(c);
        return -1;
    }
    if (nghttp2_session_want_read(c->ng) || nghttp2_session_want_write(c->ng))
        return 0;
    /* Session over: close once the output is written ("free on write
     * callback at zero length"; sock_free does not flush). */
    out = sock_output(c->sk);
    if (evbuffer_get_length(out) == 0) {
        h2f_close(c);
        return -1;
    }
    if (!c->finishing) {
        c->finishing = 1;
        sock_disable(c->sk, EV_READ);
        sock_setwatermark(c->sk, EV_WRITE, 0, 0);
    }
    return 0;
}

static void h2f_read_cb(struct sock *sk, void *arg)
{
    struct h2f_conn *c = arg;

    H2F_CHECK(c, H2F_CONN_MAGIC);
    if (h2f_recv(c) < 0)
        return;
    if (h2f_send(c) < 0)
        return;
    /* Backpressure: a peer that does not read our output stops being read. */
    if (!c->finishing && evbuffer_get_length(sock_output(sk)) >= H2F_OUT_HIGH) {
        c->rd_paused = 1;
        sock_disable(sk, EV_READ);
    }
}

static void h2f_write_cb(struct sock *sk, void *arg)
{
    struct h2f_conn *c = arg;

    H2F_CHECK(c, H2F_CONN_MAGIC);
    if (c->finishing) {
        if (evbuffer_get_length(sock_output(sk)) == 0)
            h2f_close(c);
        return;
    }
    if (c->rd_paused && evbuffer_get_length(sock_output(sk)) < H2F_OUT_HIGH) {
        c->rd_paused = 0;
        sock_enable(sk, EV_READ);
    }
    (void)h2f_send(c);
}

static void h2f_event_cb(struct sock *sk, short what, void *arg)
{
    struct h2f_conn *c = arg;
    unsigned long e;

    H2F_CHECK(c, H2F_CONN_MAGIC);
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
        return;
    while ((e = sock_ssl_error(sk)) != 0) {
        char buf[256];

        ERR_error_string_n(e, buf, sizeof(buf));
        cut_log(CUT_DEBUG, "h2f: w=%u c=%llu tls: %s", c->w->id, (unsigned long long)c->id, buf);
    }
    cut_log(CUT_DEBUG, "h2f: w=%u c=%llu closed by %s (%u streams)", c->w->id,
            (unsigned long long)c->id,
            (what & BEV_EVENT_EOF)       ? "peer"
            : (what & BEV_EVENT_TIMEOUT) ? "write timeout"
                                         : "error",
            c->n_streams);
    h2f_close(c);
}

static void h2f_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct h2f_conn *c = arg;

    H2F_CHECK(c, H2F_CONN_MAGIC);
    (void)h2f_send(c);
}

static void h2f_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct h2f_conn *c = arg;
    enum h2f_tmode m;

    H2F_CHECK(c, H2F_CONN_MAGIC);
    m = c->tmode;
    c->tmode = H2F_T_NONE;
    if (c->closed || m == H2F_T_NONE || (m == H2F_T_IDLE && c->n_streams > 0))
        return;
    cut_log(CUT_DEBUG, "h2f: w=%u c=%llu %s", c->w->id, (unsigned long long)c->id,
            m == H2F_T_IDLE ? "idle" : "header block timed out");
    if (h2f_goaway(c) != 0) {
        h2f_close(c);
        return;
    }
    (void)h2f_send(c);
}

/* Worker drain (SIGTERM): announce GOAWAY now, refuse new streams, and
 * send the final GOAWAY once the streams in flight are done. Called from
 * the worker's list walk: must not close <c> synchronously. */
static void h2f_on_drain(struct conn_link *l)
{
    struct h2f_conn *c = h2f_conn_of_link(l);
    int rv;

    H2F_CHECK(c, H2F_CONN_MAGIC);
    if (c->closed || c->draining)
        return;
    c->draining = 1;
    if (c->n_streams == 0) {
        rv = h2f_goaway(c);
    } else {
        rv = nghttp2_submit_shutdown_notice(c->ng);
    }
    h2f_note_rv(c, rv, "drain");
    h2f_want_send(c);
}

/* Worker exit after drain_ms: free now, whatever is in flight. */
static void h2f_on_kill(struct conn_link *l)
{
    struct h2f_conn *c = h2f_conn_of_link(l);

    H2F_CHECK(c, H2F_CONN_MAGIC);
    h2f_close(c);
}

static void h2f_conn_free(void *p)
{
    struct h2f_conn *c = p;

    H2F_CHECK(c, H2F_CONN_MAGIC);
    CUT_BUG_ON(!c->closed);
    c->magic = 0;
    free(c);
}

/* Marks <c> closed: stops its I/O, frees its streams (and their exchanges)
 * and its session, and queues the struct itself for the reaper. Never call
 * it from inside nghttp2 or from an op. */
static void h2f_close(struct h2f_conn *c)
{
    CUT_BUG_ON(c->in_ng);
    if (c->closed)
        return;
    c->closed = 1;
    worker_conn_del(c->w, &c->link);
    while (c->streams != NULL) {
        struct h2f_stream *s = c->streams;

        s->closing = 1;
        xchg_free(s->x);
        s->x = NULL;
        h2f_stream_free(s);
    }
    if (c->ng != NULL) {
        nghttp2_session_del(c->ng);
        c->ng = NULL;
    }
    sock_free(c->sk);
    c->sk = NULL;
    event_free(c->flush_ev);
    c->flush_ev = NULL;
    event_free(c->timer);
    c->timer = NULL;
    worker_defer_free(c->w, h2f_conn_free, c);
}

/* nghttp2's streams, rcbufs, items and frame buffers come and go per request:
 * per-thread free lists (mem.h) instead of glibc's 7-block tcache. A session
 * lives on one worker, but mem.h allows frees on any thread anyway. */
static nghttp2_mem h2f_mem = {NULL, mem_malloc_ud, mem_free_ud, mem_calloc_ud, mem_realloc_ud};

static int h2f_session_new(struct h2f_conn *c)
{
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    nghttp2_settings_entry iv[2];
    int rv = -1;

    if (nghttp2_session_callbacks_new(&cbs) != 0)
        goto out;
    if (nghttp2_option_new(&opt) != 0)
        goto out;
    nghttp2_session_callbacks_set_send_callback(cbs, h2f_on_send);
    nghttp2_session_callbacks_set_send_data_callback(cbs, h2f_on_send_data);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, h2f_on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, h2f_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, h2f_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2f_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2f_on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, h2f_on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2f_on_stream_close);
    nghttp2_session_callbacks_set_error_callback2(cbs, h2f_on_error);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    /* no retained closed streams (kept for the priority tree, which we do
     * not use): a session no longer grows a closed-stream list per request */
    nghttp2_option_set_no_closed_streams(opt, 1);
    if (nghttp2_session_server_new3(&c->ng, cbs, c, opt, &h2f_mem) != 0) {
        c->ng = NULL;
        goto out;
    }
    iv[0] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
                                     c->limits.max_concurrent_streams};
    iv[1] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2F_STREAM_WINDOW};
    if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, 2) != 0)
        goto out;
    if (nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, H2F_CONN_WINDOW) != 0)
        goto out;
    rv = 0;
out:
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    return rv;
}

int h2f_start(struct worker *w, struct sock *sk, int tls, const struct sockaddr *peer,
              socklen_t peerlen)
{
    struct h2f_conn *c;
    struct event_base *base = sock_base(sk);
    struct timeval wto;

    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto fail;
    c->magic = H2F_CONN_MAGIC;
    c->w = w;
    c->sk = sk;
    c->tls = tls != 0;
    c->id = ++h2f_next_id;
    if (peer != NULL && peerlen > 0)
        memcpy(&c->peer, peer,
               (size_t)peerlen < sizeof(c->peer) ? (size_t)peerlen : sizeof(c->peer));
    worker_refresh(w);
    c->limits = w->snap->limits;
    c->timeouts = w->snap->timeouts;
    if (c->limits.max_concurrent_streams == 0)
        c->limits.max_concurrent_streams = 128;

    c->flush_ev = event_new(base, -1, 0, h2f_flush_cb, c);
    c->timer = evtimer_new(base, h2f_timer_cb, c);
    if (c->flush_ev == NULL || c->timer == NULL || h2f_session_new(c) != 0)
        goto fail;

    sock_setcb(sk, h2f_read_cb, h2f_write_cb, h2f_event_cb, c);
    sock_setwatermark(sk, EV_READ, 0, 0);
    sock_setwatermark(sk, EV_WRITE, H2F_OUT_LOW, 0);
    /* A client that stops reading our output is dropped after idle_ms. */
    wto.tv_sec = (c->timeouts.idle_ms ? c->timeouts.idle_ms : 60000) / 1000;
    wto.tv_usec = (suseconds_t)((c->timeouts.idle_ms ? c->timeouts.idle_ms : 60000) % 1000) * 1000;
    sock_set_timeouts(sk, NULL, &wto);
    if (sock_enable(sk, EV_READ | EV_WRITE) != 0)
        goto fail;
    h2f_timer_update(c);

    c->link.on_drain = h2f_on_drain;
    c->link.on_kill = h2f_on_kill;
    worker_conn_add(w, &c->link);
    cut_log(CUT_DEBUG, "h2f: w=%u c=%llu start%s", w->id, (unsigned long long)c->id,
            c->tls ? " tls" : "");

    /* The client preface (and maybe more) is already in the input buffer:
     * the listener read it to pick the protocol. Our SETTINGS go out too. */
    if (h2f_recv(c) < 0)
        return 0;
    (void)h2f_send(c);
    if (w->draining && !c->closed)
        h2f_on_drain(&c->link);
    return 0;

fail:
    cut_log(CUT_WARN, "h2f: w=%u: cannot start an HTTP/2 connection: out of memory", w->id);
    if (c != NULL) {
        if (c->ng != NULL)
            nghttp2_session_del(c->ng);
        if (c->flush_ev != NULL)
            event_free(c->flush_ev);
        if (c->timer != NULL)
            event_free(c->timer);
        c->magic = 0;
        free(c);
    }
    sock_free(sk);
    return -1;
}
