/*
 * xchg.c: one downstream request joined to one upstream HTTP/1.1 request.
 *
 * States, in order (flags below, since request and response sides overlap):
 *   routed -> leasing (waiting for a pool slot or connecting) -> sent
 *   -> response head -> response body -> done
 * The request side (head + body from the front) runs in parallel: bytes
 * arriving before the upstream is connected wait in <pre>; afterwards they
 * go straight to the upstream sock's output.
 */
#include "xchg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "../routing/snap.h"
#include "../routing/sticky.h"
#include "../routing/swrr.h"
#include "accesslog.h"
#include "deadline.h"
#include "h1parse.h"
#include "log.h"
#include "health.h"
#include "sock.h"
#include "stats.h"
#include "ups.h"
#include "worker.h"

#define XCHG_MAGIC 0x0ec4a11eu
#define XCHG_INLINE_ARENA 3072
#define XCHG_MAX_RESP_HEADERS 256
#define XCHG_MAX_RESP_HEAD_BYTES (64 * 1024)

struct arena_chunk {
    struct arena_chunk *next;
    size_t cap, used;
    char data[];
};

enum {
    XF_STARTED = 1u << 0,
    XF_REQ_END = 1u << 1,     /* front delivered the whole request */
    XF_HEAD_SENT = 1u << 2,   /* response head given to the front */
    XF_RESP_DONE = 1u << 3,   /* response side finished (complete or aborted) */
    XF_UP_DONE = 1u << 4,     /* upstream message complete */
    XF_IS_HEAD = 1u << 5,     /* request method HEAD */
    XF_CHUNKED_UP = 1u << 6,  /* request body sent chunked to the upstream */
    XF_UP_PAUSED = 1u << 7,   /* upstream reads paused: front is full */
    XF_FRONT_PAUSED = 1u << 8, /* front reads paused: upstream is full */
    XF_CONNECTED = 1u << 9,   /* <up> is connected and owns the request bytes */
    XF_REUSED = 1u << 10,     /* <up> came from the idle list */
    XF_RETRIED = 1u << 11,    /* one retry already spent */
    XF_GOT_BYTES = 1u << 12,  /* any response byte arrived on <up> */
    XF_FORCED = 1u << 14,     /* track forced by override */
    XF_BODY_SENT = 1u << 15,  /* some request body bytes left <pre> for a connection */
    XF_SHIELDED = 1u << 16,   /* retried once on the baseline by the shield */
    XF_COUNTED = 1u << 18,    /* counted in w->inflight */
    XF_RECORDED = 1u << 17,   /* this attempt's outcome is already in the evidence */
};

struct xchg {
    unsigned magic;
    unsigned flags;
    struct xchg *pool_next; /* worker's free list */
    struct worker *w;
    const struct front_ops *ops;
    void *front_ctx;
    enum xchg_proto proto;
    struct sockaddr_storage peer;
    struct req_head req;
    size_t hdr_cap;

    struct snap *snap;  /* reference, when routed */
    int route, track;
    const struct snap_server *server;
    uint64_t tried;     /* servers of the track already tried (bit per index) */
    struct ups_pool *pool;
    struct ups_conn *up;
    struct ups_waiter waiter;
    struct evbuffer *pre;   /* request bytes waiting for a connection */
    struct evbuffer *rbody; /* response body bytes parsed, for the front */
    char *head;             /* serialized upstream request head */
    size_t head_len;
    size_t unacked;         /* request body bytes not yet reported consumed */

    enum h1p_body body_mode; /* how the response body ends */
    uint64_t body_left;     /* H1P_BODY_LENGTH: bytes still to come */
    struct h1p_chunked chunk; /* H1P_BODY_CHUNKED: decoder state */
    int up_keepalive;       /* the upstream may keep the connection after this response */
    int status;
    const char *set_cookie; /* "Set-Cookie" value to add, or NULL */
    const char *err_reason; /* why the proxy answered itself */
    uint64_t t0_us, t_up_us, t_sent_us;
    uint64_t now_ms;        /* when routed */
    uint64_t sticky_key;    /* hash of the sticky key, 0 when the route is not sticky */
    uint64_t bytes_in, bytes_out;

    struct arena_chunk *chunks;
    size_t inline_used;
    char inline_arena[XCHG_INLINE_ARENA];
    /* Kept across recycling (after the arena: xchg_new does not clear it):
     * the timer may still be pending in the pool, armed for an old deadline. */
    struct deadline dl;
};

/* Reasons, compared by pointer; they feed logs and the status mapping. */
const char xchg_err_no_route[] = "no route";
const char xchg_err_no_track[] = "no track can take the request";
const char xchg_err_connect[] = "upstream connect failed";
const char xchg_err_connect_timeout[] = "upstream connect timed out";
const char xchg_err_timeout[] = "upstream timed out";
const char xchg_err_reset[] = "upstream closed before a complete response";
const char xchg_err_bad_response[] = "upstream sent an invalid response";
const char xchg_err_memory[] = "out of memory";

static void up_read_cb(void *arg);
static void up_write_cb(void *arg);
static void up_event_cb(void *arg, short what);
static const struct ups_owner_ops up_owner_ops = {up_read_cb, up_write_cb, up_event_cb};
static void lease(struct xchg *x);
static void fail(struct xchg *x, int status, const char *why);

/* ---- arena ---- */

void *xchg_alloc(struct xchg *x, size_t n)
{
    n = (n + 15u) & ~(size_t)15u;
    if (x->inline_used + n <= sizeof(x->inline_arena)) {
        void *p = x->inline_arena + x->inline_used;
        x->inline_used += n;
        return p;
    }
    struct arena_chunk *c = x->chunks;
    if (c == NULL || c->used + n > c->cap) {
        size_t cap = n > 8192 ? n : 8192;
        c = malloc(sizeof(*c) + cap);
        if (c == NULL)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = x->chunks;
        x->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

char *xchg_strdup(struct xchg *x, const char *s, size_t n)
{
    char *p = xchg_alloc(x, n + 1);
    if (p == NULL)
        return NULL;
    if (n > 0)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* ---- life cycle ---- */

/*
 * Exchanges are recycled through a small per-worker free list, with their
 * response-body evbuffer and header scratch buffer: a request then costs no
 * malloc of its own (the object is ~5 KiB, beyond malloc's fast bins).
 */
#define XCHG_POOL_MAX 256

static void timer_cb(evutil_socket_t fd, short what, void *arg);
static void disarm(struct xchg *x);

struct xchg *xchg_new(struct worker *w, const struct front_ops *ops, void *front_ctx,
                      enum xchg_proto proto, const struct sockaddr *peer)
{
    struct xchg *x = w->xchg_pool;
    struct evbuffer *rbody = NULL;
    if (x != NULL) {
        w->xchg_pool = x->pool_next;
        w->n_xchg_pool--;
        rbody = x->rbody;
    } else if ((x = malloc(sizeof(*x))) == NULL) {
        return NULL;
    } else {
        deadline_init(&x->dl, w->base, timer_cb, x);
    }
    /* everything before the inline arena starts zeroed */
    memset(x, 0, offsetof(struct xchg, inline_arena));
    x->rbody = rbody;
    x->magic = XCHG_MAGIC;
    x->w = w;
    x->ops = ops;
    x->front_ctx = front_ctx;
    x->proto = proto;
    if (peer != NULL) {
        size_t len = peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                 : sizeof(struct sockaddr_in);
        memcpy(&x->peer, peer, len);
    }
    x->req.content_length = -1;
    x->req.http_minor = 1;
    x->route = x->track = -1;
    x->t0_us = cut_now_cached_us();
    return x;
}

void *xchg_front_ctx(struct xchg *x)
{
    return x->front_ctx;
}

struct req_head *xchg_req(struct xchg *x)
{
    return &x->req;
}

int xchg_response_done(const struct xchg *x)
{
    return (x->flags & XF_RESP_DONE) != 0;
}

static void detach_up(struct xchg *x, int reusable)
{
    struct ups_conn *c = x->up;
    ups_waiter_cancel(&x->waiter);
    if (c == NULL)
        return;
    x->up = NULL;
    if (x->flags & XF_UP_PAUSED)
        reusable = 0; /* stopped mid-body */
    x->flags &= ~(XF_CONNECTED | XF_UP_PAUSED);
    if (c->state == UPS_CONNECTING)
        reusable = 0;
    ups_release(c, reusable, x->snap ? x->snap->timeouts.upstream_idle_ms : 1000);
}

static void access_log(struct xchg *x)
{
    const struct snap_route *r = x->snap && x->route >= 0 ? &x->snap->routes[x->route] : NULL;
    struct alog_entry e = {
        .route = r ? r->name : NULL,
        .track = r && x->track >= 0 ? r->tracks[x->track].name : NULL,
        .server = x->server ? x->server->name : NULL,
        .method = x->req.method,
        .method_len = x->req.method_len,
        .path = x->req.path,
        .path_len = x->req.path_len,
        .status = x->status,
        .bytes_in = x->bytes_in,
        .bytes_out = x->bytes_out,
        .upstream_us = x->t_up_us ? (int64_t)(x->t_up_us - x->t_sent_us) : -1,
        .total_us = cut_now_cached_us() - x->t0_us,
        .proto = x->proto == XCHG_H2 ? "HTTP/2" : x->req.http_minor ? "HTTP/1.1" : "HTTP/1.0",
        .tls = x->req.tls,
        .forced = (x->flags & XF_FORCED) != 0,
        .reason = x->err_reason,
    };
    alog_write(x->w, &e);
}

void xchg_free(struct xchg *x)
{
    CUT_BUG_ON(x->magic != XCHG_MAGIC);
    if ((x->flags & XF_STARTED) || x->status != 0) {
        if (alog_enabled())
            access_log(x);
    }
    if (x->flags & XF_COUNTED) {
        x->w->inflight--;
        atomic_store_explicit(&x->w->stats.streams_open, x->w->inflight, memory_order_relaxed);
    }
    if (x->flags & XF_SHIELDED)
        x->w->retries_inflight--;
    disarm(x);
    detach_up(x, 0);
    if (x->pre != NULL)
        evbuffer_free(x->pre);
    if (x->snap != NULL)
        snap_unref(x->snap);
    struct arena_chunk *c = x->chunks;
    while (c != NULL) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    x->magic = 0;
    struct worker *w = x->w;
    if (w->n_xchg_pool < XCHG_POOL_MAX && !w->draining &&
        (x->rbody == NULL || evbuffer_get_length(x->rbody) == 0)) {
        x->pool_next = w->xchg_pool;
        w->xchg_pool = x;
        w->n_xchg_pool++;
        return;
    }
    deadline_stop(&x->dl);
    if (x->rbody != NULL)
        evbuffer_free(x->rbody);
    free(x);
}

void xchg_pool_free(struct worker *w)
{
    while (w->xchg_pool != NULL) {
        struct xchg *x = w->xchg_pool;
        w->xchg_pool = x->pool_next;
        deadline_stop(&x->dl);
        if (x->rbody != NULL)
            evbuffer_free(x->rbody);
        free(x);
    }
    w->n_xchg_pool = 0;
}

/* ---- request head ---- */

int xchg_add_header(struct xchg *x, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (x->req.n_hdrs == x->hdr_cap) {
        size_t cap = x->hdr_cap ? x->hdr_cap * 2 : 16;
        struct hdr *h = xchg_alloc(x, cap * sizeof(*h));
        if (h == NULL)
            return -1;
        if (x->req.n_hdrs)
            memcpy(h, x->req.hdrs, x->req.n_hdrs * sizeof(*h));
        x->req.hdrs = h;
        x->hdr_cap = cap;
    }
    char *p = xchg_alloc(x, nlen + vlen + 2);
    if (p == NULL)
        return -1;
    if (nlen > 0)
        memcpy(p, name, nlen);
    p[nlen] = '\0';
    if (vlen > 0)
        memcpy(p + nlen + 1, value, vlen);
    p[nlen + 1 + vlen] = '\0';
    struct hdr *h = &x->req.hdrs[x->req.n_hdrs++];
    h->name = p;
    h->name_len = nlen;
    h->value = p + nlen + 1;
    h->value_len = vlen;
    return 0;
}

struct hdr *xchg_set_headers(struct xchg *x, size_t n)
{
    struct hdr *h = n > 0 ? xchg_alloc(x, n * sizeof(*h)) : NULL;
    x->req.hdrs = h;
    x->req.n_hdrs = h != NULL ? n : 0;
    x->hdr_cap = x->req.n_hdrs;
    return h;
}

static int name_is(const char *name, size_t len, const char *lit, size_t litlen)
{
    return len == litlen && strncasecmp(name, lit, len) == 0;
}

/* Is <name> listed as a token in a Connection header value <conn>? */
static int in_connection_list(const char *conn, size_t clen, const char *name, size_t nlen)
{
    size_t i = 0;
    while (i < clen) {
        while (i < clen && (conn[i] == ' ' || conn[i] == '\t' || conn[i] == ','))
            i++;
        size_t s = i;
        while (i < clen && conn[i] != ',' && conn[i] != ' ' && conn[i] != '\t')
            i++;
        if (i - s == nlen && strncasecmp(conn + s, name, nlen) == 0)
            return 1;
    }
    return 0;
}


/*
 * <s>[0..n) equals the lower-case literal <lit> (letters, digits, '-') in any
 * case, for n from 4 to 16, with two overlapping 4- or 8-byte loads (as
 * h1parse.c). OR-ing 0x20 lower-cases letters and maps nothing else onto a
 * letter, a digit or '-' but CTLs, which neither a field name nor a field
 * value can hold (h1parse and nghttp2 refuse them; HTAB maps onto ')').
 */
static inline int lc_eq(const char *s, const char *lit, size_t n)
{
    if (n >= 8)
        return ((h1p_load64(s) | 0x2020202020202020u) == h1p_load64(lit)) &
               ((h1p_load64(s + n - 8) | 0x2020202020202020u) == h1p_load64(lit + n - 8));
    return ((h1p_load32(s) | 0x20202020u) == h1p_load32(lit)) &
           ((h1p_load32(s + n - 4) | 0x20202020u) == h1p_load32(lit + n - 4));
}

/* What the exchange does with a field, by its name (hdr_kind). */
enum hdr_kind {
    HK_OTHER = 0,
    HK_HOP,        /* hop-by-hop (RFC 9110 7.6.1), Connection aside */
    HK_CONNECTION, /* hop-by-hop too, and it may name more */
    HK_CONTENT_LENGTH,
    HK_HOST,
    HK_EXPECT,
    HK_COOKIE,
    HK_XFF, /* X-Forwarded-For */
    HK_XFP, /* X-Forwarded-Proto */
    HK_N_KINDS
};

/* Classifies a field name: by length, then one compare or two. Inlined into
 * the loops over the fields (a call per field otherwise). */
__attribute__((always_inline)) static inline enum hdr_kind hdr_kind(const char *n, size_t len)
{
    switch (len) {
    case 2:
        return ((n[0] | 0x20) == 't' && (n[1] | 0x20) == 'e') ? HK_HOP : HK_OTHER;
    case 4:
        return lc_eq(n, "host", 4) ? HK_HOST : HK_OTHER;
    case 6:
        if (lc_eq(n, "cookie", 6))
            return HK_COOKIE;
        return lc_eq(n, "expect", 6) ? HK_EXPECT : HK_OTHER;
    case 7:
        return lc_eq(n, "trailer", 7) || lc_eq(n, "upgrade", 7) ? HK_HOP : HK_OTHER;
    case 10:
        if (lc_eq(n, "connection", 10))
            return HK_CONNECTION;
        return lc_eq(n, "keep-alive", 10) ? HK_HOP : HK_OTHER;
    case 14:
        return lc_eq(n, "content-length", 14) ? HK_CONTENT_LENGTH : HK_OTHER;
    case 15:
        return lc_eq(n, "x-forwarded-for", 15) ? HK_XFF : HK_OTHER;
    case 16:
        return lc_eq(n, "proxy-connection", 16) ? HK_HOP : HK_OTHER;
    case 17:
        if (lc_eq(n, "transfer-encoding", 16) && (n[16] | 0x20) == 'g')
            return HK_HOP;
        return lc_eq(n, "x-forwarded-prot", 16) && (n[16] | 0x20) == 'o' ? HK_XFP : HK_OTHER;
    default:
        return HK_OTHER;
    }
}

/*
 * The Connection field, when it names fields other than "close" and
 * "keep-alive" (those two name no field anyone sends): only then must every
 * other field be checked against its list.
 */
static const struct hdr *connection_list(const struct hdr *conn)
{
    if (conn == NULL)
        return NULL;
    if ((conn->value_len == 10 && lc_eq(conn->value, "keep-alive", 10)) ||
        (conn->value_len == 5 && lc_eq(conn->value, "close", 5)))
        return NULL;
    return conn;
}

static const struct hdr *find_hdr(const struct hdr *h, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (name_is(h[i].name, h[i].name_len, name, len))
            return &h[i];
    return NULL;
}

/* Finds cookie <name> in the request's Cookie fields; its value in *<v>. */
static int find_cookie(const struct req_head *r, const char *name, const char **v, size_t *vlen)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < r->n_hdrs; i++) {
        const struct hdr *h = &r->hdrs[i];
        if (h->name_len != 6 || !lc_eq(h->name, "cookie", 6))
            continue;
        const char *p = h->value, *end = h->value + h->value_len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *s = p;
            while (p < end && *p != ';')
                p++;
            if ((size_t)(p - s) > nlen && memcmp(s, name, nlen) == 0 && s[nlen] == '=') {
                *v = s + nlen + 1;
                *vlen = (size_t)(p - s) - nlen - 1;
                while (*vlen > 0 && ((*v)[*vlen - 1] == ' '))
                    (*vlen)--;
                return 1;
            }
        }
    }
    return 0;
}

/* The last IPv4 client address peer_ip() formatted on this thread (worker):
 * the requests of one connection, at least, come in a row. */
static _Thread_local struct {
    uint32_t addr;
    unsigned len; /* 0: empty */
    char text[INET_ADDRSTRLEN];
} ip_memo;

/* The client address as text. IPv4 is formatted by hand: inet_ntop goes
 * through sprintf, which costs more than the rest of the request head. */
static size_t peer_ip(const struct xchg *x, char *buf, size_t len)
{
    const struct sockaddr *sa = (const struct sockaddr *)&x->peer;
    if (sa->sa_family == AF_INET && len >= INET_ADDRSTRLEN) {
        uint32_t a = ((const struct sockaddr_in *)sa)->sin_addr.s_addr;
        if (ip_memo.len != 0 && ip_memo.addr == a) {
            memcpy(buf, ip_memo.text, INET_ADDRSTRLEN);
            return ip_memo.len;
        }
        const unsigned char *b = (const unsigned char *)&a;
        char *p = buf;
        for (int i = 0; i < 4; i++) {
            unsigned v = b[i];
            if (v >= 100)
                *p++ = (char)('0' + v / 100);
            if (v >= 10)
                *p++ = (char)('0' + v / 10 % 10);
            *p++ = (char)('0' + v % 10);
            if (i < 3)
                *p++ = '.';
        }
        *p = '\0';
        ip_memo.addr = a;
        ip_memo.len = (unsigned)(p - buf);
        memcpy(ip_memo.text, buf, INET_ADDRSTRLEN);
        return (size_t)(p - buf);
    }
    const char *r = NULL;
    if (sa->sa_family == AF_INET6)
        r = inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
                      (socklen_t)len);
    if (r == NULL) {
        buf[0] = '\0';
        return 0;
    }
    return strlen(buf);
}

#define PUT(p, s, n)                                                                               \
    do {                                                                                           \
        memcpy((p), (s), (n));                                                                     \
        (p) += (n);                                                                                \
    } while (0)
#define PUTS(p, lit) PUT(p, lit, sizeof(lit) - 1)

/* Serializes the upstream request head into the arena (x->head). */
static int build_head(struct xchg *x)
{
    const struct req_head *r = &x->req;
    const struct hdr *conn = NULL;
    char ip[INET6_ADDRSTRLEN];
    size_t iplen = peer_ip(x, ip, sizeof(ip));
    size_t need = r->method_len + r->path_len + r->authority_len + iplen + 256;
    for (size_t i = 0; i < r->n_hdrs; i++) {
        const struct hdr *h = &r->hdrs[i];
        need += h->name_len + h->value_len + 4;
        if (h->name_len == 10 && conn == NULL && lc_eq(h->name, "connection", 10))
            conn = h;
    }
    conn = connection_list(conn);
    char *buf = xchg_alloc(x, need);
    if (buf == NULL)
        return -1;
    char *p = buf;
    PUT(p, r->method, r->method_len);
    *p++ = ' ';
    PUT(p, r->path, r->path_len);
    PUTS(p, " HTTP/1.1\r\n");
    if (r->authority != NULL) {
        PUTS(p, "Host: ");
        PUT(p, r->authority, r->authority_len);
        PUTS(p, "\r\n");
    }
    const struct hdr *xff = NULL;
    size_t n_cookies = 0;
    for (size_t i = 0; i < r->n_hdrs; i++) {
        const struct hdr *h = &r->hdrs[i];
        enum hdr_kind kind = hdr_kind(h->name, h->name_len);
        /* out: hop-by-hop, Host, Content-Length, Expect, X-Forwarded-Proto */
        if (kind != HK_OTHER && kind != HK_XFF && kind != HK_COOKIE)
            continue;
        if (conn != NULL && in_connection_list(conn->value, conn->value_len, h->name, h->name_len))
            continue;
        if (kind == HK_XFF) {
            xff = h; /* several: keep the last, which holds the nearest hops */
            continue;
        }
        if (kind == HK_COOKIE) {
            n_cookies++;
            continue;
        }
        PUT(p, h->name, h->name_len);
        PUTS(p, ": ");
        PUT(p, h->value, h->value_len);
        PUTS(p, "\r\n");
    }
    if (n_cookies > 0) {
        /* RFC 9113 8.2.3: h2 may split cookies; HTTP/1.1 wants one field */
        PUTS(p, "Cookie: ");
        size_t seen = 0;
        for (size_t i = 0; i < r->n_hdrs; i++) {
            const struct hdr *h = &r->hdrs[i];
            if (h->name_len != 6 || !lc_eq(h->name, "cookie", 6))
                continue;
            if (seen++ > 0)
                PUTS(p, "; ");
            PUT(p, h->value, h->value_len);
        }
        PUTS(p, "\r\n");
    }
    PUTS(p, "X-Forwarded-For: ");
    if (xff != NULL) {
        PUT(p, xff->value, xff->value_len);
        PUTS(p, ", ");
    }
    PUT(p, ip, iplen);
    PUTS(p, "\r\n");
    if (r->tls)
        PUTS(p, "X-Forwarded-Proto: https\r\n");
    else
        PUTS(p, "X-Forwarded-Proto: http\r\n");
    if (r->has_body) {
        if (r->content_length >= 0) {
            p += sprintf(p, "Content-Length: %lld\r\n", (long long)r->content_length);
        } else {
            PUTS(p, "Transfer-Encoding: chunked\r\n");
            x->flags |= XF_CHUNKED_UP;
        }
    } else if (r->method_len == 4 && memcmp(r->method, "POST", 4) == 0) {
        PUTS(p, "Content-Length: 0\r\n");
    } else if (r->method_len == 3 && memcmp(r->method, "PUT", 3) == 0) {
        PUTS(p, "Content-Length: 0\r\n");
    }
    PUTS(p, "\r\n");
    x->head = buf;
    x->head_len = (size_t)(p - buf);
    CUT_BUG_ON(x->head_len > need);
    return 0;
}

/* ---- routing ---- */

static uint64_t worker_rand(struct worker *w)
{
    /* xorshift64*, seeded per worker */
    uint64_t s = w->rng;
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    w->rng = s;
    return s * 0x2545F4914F6CDD1Dull;
}

/* A server can take requests: its active check passes and this worker has
 * not ejected it. */
static int server_ok(const struct worker *w, const struct snap_server *s, uint64_t now_ms)
{
    const struct ups_pool *p = w->pools[s->id];
    if (p->hc != NULL && !atomic_load_explicit(&p->hc->healthy, memory_order_relaxed))
        return 0;
    return !outlier_is_ejected(&p->outlier, now_ms);
}

/*
 * Tracks with at least one server that can take requests. When no track has
 * one, fail open: every track with servers, as configured (serving something
 * beats answering 503 to everything), logged at most once a second.
 */
static uint32_t eligible_tracks(struct xchg *x, const struct snap_route *r)
{
    uint32_t m = 0, any = 0;
    for (size_t i = 0; i < r->n_tracks; i++) {
        const struct snap_track *t = &r->tracks[i];
        if (t->n_servers == 0)
            continue;
        any |= 1u << i;
        for (size_t k = 0; k < t->n_servers; k++) {
            if (server_ok(x->w, t->servers[k], x->now_ms)) {
                m |= 1u << i;
                break;
            }
        }
    }
    if (m == 0 && any != 0) {
        if (x->now_ms - x->w->fail_open_logged_ms >= 1000) {
            x->w->fail_open_logged_ms = x->now_ms;
            cut_log(CUT_ERR, "route %s: every track is unhealthy; failing open to the "
                             "configured weights", r->name);
        }
        return any;
    }
    return m;
}

static int pick_track(struct xchg *x, const struct snap_route *r)
{
    struct worker *w = x->w;
    const struct req_head *q = &x->req;
    const char *v = NULL;
    size_t vlen = 0;

    if (r->override_header != NULL) {
        const struct hdr *h = find_hdr(q->hdrs, q->n_hdrs, r->override_header,
                                       strlen(r->override_header));
        if (h != NULL) {
            v = h->value;
            vlen = h->value_len;
        }
    }
    if (v == NULL && r->override_cookie != NULL)
        find_cookie(q, r->override_cookie, &v, &vlen);
    if (v != NULL) {
        int t = snap_track_index(r, v, vlen);
        if (t >= 0 && r->tracks[t].n_servers > 0) {
            x->flags |= XF_FORCED;
            return t;
        }
    }

    uint32_t elig = eligible_tracks(x, r);
    uint32_t wts[CONF_MAX_TRACKS];
    for (size_t i = 0; i < r->n_tracks; i++)
        wts[i] = r->tracks[i].weight;

    if (r->sticky_cookie != NULL || r->sticky_header != NULL) {
        v = NULL;
        if (r->sticky_cookie != NULL) {
            if (!find_cookie(q, r->sticky_cookie, &v, &vlen)) {
                char id[17];
                snprintf(id, sizeof(id), "%016llx", (unsigned long long)worker_rand(w));
                size_t clen = strlen(r->sticky_cookie);
                char *sc = xchg_alloc(x, clen + 64);
                if (sc != NULL) {
                    snprintf(sc, clen + 64, "%s=%s; Path=/; HttpOnly", r->sticky_cookie, id);
                    x->set_cookie = sc;
                    v = sc + clen + 1;
                    vlen = 16;
                }
            }
        } else {
            const struct hdr *h = find_hdr(q->hdrs, q->n_hdrs, r->sticky_header,
                                           strlen(r->sticky_header));
            if (h != NULL) {
                v = h->value;
                vlen = h->value_len;
            }
        }
        char ip[INET6_ADDRSTRLEN];
        if (v == NULL) {
            vlen = peer_ip(x, ip, sizeof(ip));
            v = ip;
        }
        x->sticky_key = sticky_hash(v, vlen) | 1; /* never 0: 0 means "not sticky" */
        return sticky_pick(wts, r->n_tracks, elig, r->candidate, x->sticky_key);
    }
    return swrr_pick(&w->routes[x->route].swrr, elig);
}

/* Next server of the track, round robin, skipping those already tried. */
static const struct snap_server *pick_server(struct xchg *x)
{
    const struct snap_track *t = &x->snap->routes[x->route].tracks[x->track];
    uint32_t *rr = &x->w->routes[x->route].rr_server[x->track];
    /* healthy servers first; if none is left untried, any untried one */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < t->n_servers; k++) {
            size_t i = (*rr + k) % t->n_servers;
            if (i < 64 && (x->tried & (1ull << i)))
                continue;
            if (pass == 0 && !server_ok(x->w, t->servers[i], x->now_ms))
                continue;
            *rr = (uint32_t)(i + 1);
            if (i < 64)
                x->tried |= 1ull << i;
            return t->servers[i];
        }
    }
    return NULL;
}

static int tracks_untried(const struct xchg *x)
{
    const struct snap_track *t = &x->snap->routes[x->route].tracks[x->track];
    for (size_t i = 0; i < t->n_servers && i < 64; i++)
        if (!(x->tried & (1ull << i)))
            return 1;
    return 0;
}

/* ---- proxy-generated responses ---- */

const char *xchg_reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

void xchg_reply(struct xchg *x, int status)
{
    CUT_BUG_ON(x->magic != XCHG_MAGIC);
    if (x->flags & XF_RESP_DONE)
        return;
    disarm(x);
    detach_up(x, 0);
    if (x->flags & XF_HEAD_SENT) {
        x->flags |= XF_RESP_DONE;
        x->ops->abort(x);
        return;
    }
    x->status = status;
    x->flags |= XF_RESP_DONE | XF_HEAD_SENT;
    if (x->req.method_len == 4 && memcmp(x->req.method, "HEAD", 4) == 0)
        x->flags |= XF_IS_HEAD;
    char body[96];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, xchg_reason_phrase(status));
    struct hdr h[2] = {
        {"Content-Type", 12, "text/plain", 10},
        {"Cache-Control", 13, "no-store", 8},
    };
    if (x->flags & XF_IS_HEAD) {
        x->ops->send_head(x, status, h, 2, n, 1);
        return;
    }
    if (x->ops->send_head(x, status, h, 2, n, 0) < 0)
        return;
    if (x->rbody == NULL)
        x->rbody = evbuffer_new();
    if (x->rbody == NULL) {
        x->ops->abort(x);
        return;
    }
    evbuffer_add(x->rbody, body, (size_t)n);
    x->bytes_out += (size_t)n;
    x->ops->send_data(x, x->rbody, 1);
}

static void fail(struct xchg *x, int status, const char *why)
{
    x->err_reason = why;
    atomic_fetch_add_explicit(&x->w->stats.proxy_errors, 1, memory_order_relaxed);
    if (why != xchg_err_no_route)
        cut_log(CUT_DEBUG, "w=%u %s (%d) route=%s server=%s", x->w->id, why, status,
                x->snap && x->route >= 0 ? x->snap->routes[x->route].name : "-",
                x->server ? x->server->name : "-");
    xchg_reply(x, status);
}

/*
 * Passive outlier ejection, per worker (routing/outlier.c decides): a
 * server with <consecutive_failures> failures in a row is ejected for
 * base_ejection_ms * 2^(times ejected before), capped at max_ejection_ms,
 * unless that would eject more than max_ejected_percent of its track's
 * servers or the last one that can still take requests.
 */
static void outlier_update(struct xchg *x, int failed)
{
    struct worker *w = x->w;
    struct ups_pool *p = w->pools[x->server->id];
    const struct snap_route *r = &x->snap->routes[x->route];
    const struct snap_track *t = &r->tracks[x->track];
    uint64_t now = cut_now_cached_ms();
    unsigned ejected = 0, ok = 0;
    if (failed) {
        for (size_t i = 0; i < t->n_servers; i++) {
            const struct ups_pool *q = w->pools[t->servers[i]->id];
            if (q == p)
                continue;
            if (outlier_is_ejected(&q->outlier, now))
                ejected++;
            else
                ok++;
        }
    }
    uint64_t ms = outlier_on_outcome(&p->outlier, &r->outlier, failed, (unsigned)t->n_servers,
                                     ejected, ok, now);
    if (ms == 0)
        return;
    stats_ejected(w, x->server, p->outlier.ejected_until_ms);
    cut_log(CUT_WARN, "w=%u ejected %s from route %s track %s for %llu ms (%u failures in a row)",
            w->id, x->server->name, r->name, t->name, (unsigned long long)ms,
            r->outlier.consecutive_failures);
}

/*
 * Evidence: one finished upstream attempt on x->server. Called once per
 * attempt: at the end of a response, or when the attempt failed.
 */
static void record(struct xchg *x, unsigned status, enum win_fail fail)
{
    uint64_t lat = WIN_NO_LATENCY;
    if (status != 0 && x->t_up_us >= x->t_sent_us && x->t_sent_us != 0)
        lat = x->t_up_us - x->t_sent_us;
    stats_record(x->w, x->route, x->track, x->server, status, fail, lat,
                 (x->flags & XF_FORCED) != 0, x->sticky_key);
    if (x->server != NULL)
        outlier_update(x, stats_is_error(status, fail));
}

/* ---- timers ---- */

/* Timeouts are lazy deadlines (deadline.h): re-arming on every read or write,
 * and recycling an exchange with its timer still pending, cost no libevent
 * call. */
static void arm(struct xchg *x, unsigned ms)
{
    deadline_arm(&x->dl, ms);
}

static void disarm(struct xchg *x)
{
    deadline_cancel(&x->dl);
}

static int shield_try(struct xchg *x);

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct xchg *x = arg;
    if (!deadline_expired(&x->dl))
        return; /* early, disarmed, or an exchange resting in the pool */
    CUT_BUG_ON(x->magic != XCHG_MAGIC);
    if (!(x->flags & XF_CONNECTED)) {
        if (x->up != NULL) {
            x->pool->n_connect_failures++;
            record(x, 0, WIN_FAIL_CONNECT);
            if (shield_try(x))
                return;
        }
        fail(x, 504, xchg_err_connect_timeout);
    } else {
        if (!(x->flags & XF_HEAD_SENT))
            record(x, 0, WIN_FAIL_TIMEOUT);
        else
            record(x, (unsigned)x->status, WIN_FAIL_TIMEOUT);
        fail(x, 504, xchg_err_timeout);
    }
}

/* ---- starting ---- */

void xchg_start(struct xchg *x)
{
    CUT_BUG_ON(x->magic != XCHG_MAGIC);
    struct worker *w = x->w;
    x->flags |= XF_STARTED | XF_COUNTED;
    w->inflight++;
    atomic_store_explicit(&w->stats.streams_open, w->inflight, memory_order_relaxed);
    x->now_ms = x->t0_us / 1000;
    worker_refresh(w);
    x->snap = snap_ref(w->snap);
    if (x->req.method_len == 4 && memcmp(x->req.method, "HEAD", 4) == 0)
        x->flags |= XF_IS_HEAD;

    const char *host = x->req.authority;
    size_t host_len = x->req.authority_len;
    if (host == NULL) {
        host = "";
        host_len = 0;
    }
    x->route = snap_match(x->snap, host, host_len, x->req.path, x->req.path_len);
    if (x->route < 0) {
        fail(x, 404, xchg_err_no_route);
        return;
    }
    const struct snap_route *r = &x->snap->routes[x->route];
    x->track = pick_track(x, r);
    if (x->track < 0) {
        fail(x, 503, xchg_err_no_track);
        return;
    }
    if (build_head(x) < 0) {
        fail(x, 503, xchg_err_memory);
        return;
    }
    x->waiter.ready = NULL;
    lease(x);
}

static int try_server(struct xchg *x);
static void leased(struct xchg *x);

/* A slot freed up in the pool we queued on: try the same server again. */
static void waiter_ready(struct ups_waiter *wt)
{
    struct xchg *x = (struct xchg *)((char *)wt - offsetof(struct xchg, waiter));
    CUT_BUG_ON(x->magic != XCHG_MAGIC);
    disarm(x);
    int r = try_server(x);
    if (r > 0)
        leased(x);
    else if (r < 0)
        lease(x); /* failed at once: the next server, or 502 */
}

/* Moves the head and the buffered body onto the connected upstream. */
static void up_attach_output(struct xchg *x)
{
    struct evbuffer *out = sock_output(x->up->sk);
    size_t done = 0;
    /* a request without a buffered body (most): straight to the socket, no
     * chain, no trip through the event loop */
    if (x->pre == NULL || evbuffer_get_length(x->pre) == 0)
        done = sock_write_direct(x->up->sk, x->head, x->head_len);
    if (done < x->head_len)
        evbuffer_add(out, x->head + done, x->head_len - done);
    if (x->pre != NULL && evbuffer_get_length(x->pre) > 0) {
        evbuffer_add_buffer(out, x->pre);
        x->flags |= XF_BODY_SENT;
    }
    sock_kick(x->up->sk);
}


static void up_ready(struct xchg *x)
{
    x->flags |= XF_CONNECTED;
    x->t_up_us = 0;
    x->t_sent_us = cut_now_cached_us();
    x->flags &= ~(XF_UP_DONE | XF_RECORDED);
    up_attach_output(x); /* watermarks and callbacks were set once, at connect (ups.c) */
    arm(x, x->snap->timeouts.upstream_ms);
}

/*
 * Tries to lease a connection to x->server. Returns 1 when leased, 0 when
 * queued for a pool slot (the connect timeout covers the wait), -1 when the
 * connect failed at once.
 */
static int try_server(struct xchg *x)
{
    int err;
    x->pool = x->w->pools[x->server->id];
    x->waiter.ready = waiter_ready;
    x->up = ups_lease(x->pool, x->snap->limits.max_upstream_conns, &x->waiter, &err);
    if (x->up != NULL)
        return 1;
    if (err == 0) {
        arm(x, x->snap->timeouts.connect_ms);
        return 0;
    }
    cut_log(CUT_DEBUG, "w=%u connect to %s failed: %s", x->w->id, x->server->name,
            strerror(-err));
    record(x, 0, WIN_FAIL_CONNECT);
    return -1;
}

static void leased(struct xchg *x)
{
    ups_set_owner(x->up, x, &up_owner_ops);
    if (x->up->state == UPS_BUSY) {
        x->flags |= XF_REUSED;
        up_ready(x);
    } else {
        x->flags &= ~XF_REUSED;
        arm(x, x->snap->timeouts.connect_ms);
    }
}

static int method_listed(const char *list, const char *m, size_t len)
{
    const char *p = list;
    while (p != NULL && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == len && memcmp(p, m, len) == 0)
            return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

/* Could the shield retry this request on the baseline? (no side effects) */
static int shield_possible(const struct xchg *x)
{
    const struct snap_route *r = &x->snap->routes[x->route];
    return r->shield && x->track == r->candidate && r->baseline >= 0 &&
           !(x->flags & (XF_SHIELDED | XF_FORCED)) && !x->req.has_body &&
           !(x->flags & XF_HEAD_SENT) &&
           method_listed(r->shield_methods, x->req.method, x->req.method_len);
}

/*
 * The retry shield (GUARD.md "Acting" 5): an idempotent request that failed
 * on the candidate before anything reached the client goes once to the
 * baseline, within a budget of max(retry_budget_min, retry_budget_percent of
 * the worker's requests in flight) concurrent retries. The failure was
 * already recorded as the candidate's evidence. Returns 1 when retrying.
 */
static int shield_try(struct xchg *x)
{
    if (!shield_possible(x))
        return 0;
    struct worker *w = x->w;
    const struct snap_route *r = &x->snap->routes[x->route];
    unsigned budget = w->inflight * r->retry_budget_percent / 100;
    if (budget < r->retry_budget_min)
        budget = r->retry_budget_min;
    if (w->retries_inflight >= budget) {
        atomic_fetch_add_explicit(&w->stats.retry_denied, 1, memory_order_relaxed);
        return 0;
    }
    atomic_fetch_add_explicit(&w->stats.retries, 1, memory_order_relaxed);
    w->retries_inflight++;
    disarm(x);
    detach_up(x, 0);
    x->flags |= XF_SHIELDED;
    x->flags &= ~(XF_HEAD_SENT | XF_GOT_BYTES | XF_REUSED | XF_UP_DONE | XF_RECORDED);
    x->status = 0;
    x->t_up_us = x->t_sent_us = 0;
    x->track = r->baseline;
    x->tried = 0;
    lease(x);
    return 1;
}

/* Picks the next untried server of the track and leases a connection to it. */
static void lease(struct xchg *x)
{
    for (;;) {
        x->server = pick_server(x);
        if (x->server == NULL) {
            if (!shield_try(x))
                fail(x, 502, xchg_err_connect);
            return;
        }
        int r = try_server(x);
        if (r == 0)
            return;
        if (r > 0)
            break;
    }
    leased(x);
}

/* ---- request body ---- */

int xchg_req_body(struct xchg *x, const void *data, size_t n)
{
    CUT_BUG_ON(x->magic != XCHG_MAGIC);
    if (x->flags & XF_RESP_DONE)
        return -1;
    struct evbuffer *out;
    if (x->flags & XF_CONNECTED) {
        out = sock_output(x->up->sk);
        x->flags |= XF_BODY_SENT;
    } else {
        if (x->pre == NULL && (x->pre = evbuffer_new()) == NULL) {
            fail(x, 503, xchg_err_memory);
            return -1;
        }
        out = x->pre;
    }
    x->bytes_in += n;
    if (x->flags & XF_CHUNKED_UP) {
        char sz[24];
        int k = snprintf(sz, sizeof(sz), "%zx\r\n", n);
        evbuffer_add(out, sz, (size_t)k);
        evbuffer_add(out, data, n);
        evbuffer_add(out, "\r\n", 2);
    } else {
        evbuffer_add(out, data, n);
    }
    if (x->flags & XF_CONNECTED)
        sock_kick(x->up->sk);
    if (evbuffer_get_length(out) > XCHG_BUF_HIGH) {
        x->unacked += n;
        if (!(x->flags & XF_FRONT_PAUSED)) {
            x->flags |= XF_FRONT_PAUSED;
            x->ops->pause_read(x);
        }
    } else {
        x->ops->req_consumed(x, n);
    }
    return 0;
}

void xchg_req_end(struct xchg *x)
{
    CUT_BUG_ON(x->magic != XCHG_MAGIC);
    if (x->flags & XF_REQ_END)
        return;
    x->flags |= XF_REQ_END;
    if ((x->flags & XF_CHUNKED_UP) && !(x->flags & XF_RESP_DONE)) {
        struct evbuffer *out;
        if (x->flags & XF_CONNECTED) {
            out = sock_output(x->up->sk);
        } else {
            if (x->pre == NULL && (x->pre = evbuffer_new()) == NULL) {
                fail(x, 503, xchg_err_memory);
                return;
            }
            out = x->pre;
        }
        evbuffer_add(out, "0\r\n\r\n", 5);
        if (x->flags & XF_CONNECTED)
            sock_kick(x->up->sk);
    }
}

static void up_write_cb(void *arg)
{
    struct xchg *x = arg;
    CUT_BUG_ON(x->magic != XCHG_MAGIC);
    if (!(x->flags & XF_UP_DONE))
        arm(x, x->snap->timeouts.upstream_ms);
    if (evbuffer_get_length(sock_output(x->up->sk)) > XCHG_BUF_LOW)
        return;
    if (x->unacked) {
        size_t n = x->unacked;
        x->unacked = 0;
        x->ops->req_consumed(x, n);
    }
    if (x->flags & XF_FRONT_PAUSED) {
        x->flags &= ~XF_FRONT_PAUSED;
        x->ops->resume_read(x);
    }
}

/* ---- response ---- */

/*
 * Gives the parsed upstream head to the front: hop-by-hop fields and
 * Content-Length (passed apart) dropped, the sticky Set-Cookie added. The
 * fields point into the upstream input buffer, which is drained only after
 * this returns; the fronts copy what they keep. Returns 0 or -1.
 */
static int deliver_head(struct xchg *x, const struct h1p_response *resp,
                        const struct h1p_header *fields, enum h1p_body body)
{
    const struct hdr *in = (const struct hdr *)fields;
    struct hdr out[XCHG_MAX_RESP_HEADERS + 1];
    const struct hdr *conn = NULL;
    size_t k = 0;
    for (size_t i = 0; i < resp->n_headers; i++) {
        const struct hdr *h = &in[i];
        switch (hdr_kind(h->name, h->name_len)) {
        case HK_CONNECTION:
            if (conn == NULL)
                conn = h;
            continue;
        case HK_HOP:
        case HK_CONTENT_LENGTH:
            continue;
        default:
            out[k++] = *h;
        }
    }
    conn = connection_list(conn);
    if (conn != NULL) { /* it names more hop-by-hop fields: drop them too */
        size_t j = 0;
        for (size_t i = 0; i < k; i++)
            if (!in_connection_list(conn->value, conn->value_len, out[i].name, out[i].name_len))
                out[j++] = out[i];
        k = j;
    }
    if (x->set_cookie != NULL) {
        out[k].name = "Set-Cookie";
        out[k].name_len = 10;
        out[k].value = x->set_cookie;
        out[k].value_len = strlen(x->set_cookie);
        k++;
    }
    int status = resp->status;
    int64_t clen = status == 204 ? -1 : resp->content_length;
    int no_body = body == H1P_BODY_NONE || (body == H1P_BODY_LENGTH && resp->content_length == 0);
    x->flags |= XF_HEAD_SENT;
    if (no_body)
        x->flags |= XF_RESP_DONE;
    if (x->ops->send_head(x, status, out, k, clen, no_body) < 0) {
        x->flags |= XF_RESP_DONE;
        return -1;
    }
    return 0;
}

_Static_assert(sizeof(struct hdr) == sizeof(struct h1p_header) &&
                   offsetof(struct hdr, value_len) == offsetof(struct h1p_header, value_len),
               "struct hdr and struct h1p_header share one layout");

/* The upstream response ended well: hand back the connection. */
static void finish(struct xchg *x)
{
    disarm(x);
    if (!(x->flags & XF_RECORDED))
        record(x, (unsigned)x->status, WIN_FAIL_NONE);
    int reusable = x->up_keepalive && (x->flags & XF_REQ_END) &&
                   evbuffer_get_length(sock_output(x->up->sk)) == 0 &&
                   (x->pre == NULL || evbuffer_get_length(x->pre) == 0);
    detach_up(x, reusable);
}

/* Upstream failed before the response completed. */
static void up_failed(struct xchg *x, const char *why)
{
    if (x->flags & XF_RESP_DONE) {
        detach_up(x, 0);
        return;
    }
    /* a reused keep-alive connection may have been closed by the server just
     * as we sent: retry once on a fresh one when nothing of the body left */
    if ((x->flags & XF_REUSED) && !(x->flags & (XF_GOT_BYTES | XF_RETRIED | XF_BODY_SENT))) {
        x->flags |= XF_RETRIED;
        detach_up(x, 0);
        x->tried = 0;
        lease(x);
        return;
    }
    record(x, (x->flags & XF_HEAD_SENT) ? (unsigned)x->status : 0, WIN_FAIL_RESET);
    if (!(x->flags & XF_HEAD_SENT)) {
        if (!shield_try(x))
            fail(x, 502, why);
        return;
    }
    x->err_reason = why;
    xchg_reply(x, 502); /* head sent: aborts */
}

/*
 * Reads the response head: returns 1 when a final head was handled (body
 * state set), 0 when more bytes are needed, -1 when the exchange moved on
 * (failed, retried or shielded: the caller stops).
 */
static int up_head(struct xchg *x, struct evbuffer *in, int eof)
{
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0) {
            if (eof) {
                up_failed(x, xchg_err_reset);
                return -1;
            }
            return 0;
        }
        x->flags |= XF_GOT_BYTES;
        struct h1p_header fields[XCHG_MAX_RESP_HEADERS];
        struct h1p_response resp;
        struct evbuffer_iovec v;
        evbuffer_peek(in, -1, NULL, &v, 1);
        const char *buf = v.iov_base;
        size_t len = v.iov_len;
        ssize_t n = h1p_parse_response(buf, len, XCHG_MAX_RESP_HEAD_BYTES, &resp, fields,
                                       XCHG_MAX_RESP_HEADERS);
        if (n == -2 && len < avail) {
            /* the head spans chains: make (at most a head's worth) contiguous */
            len = avail < XCHG_MAX_RESP_HEAD_BYTES + 1 ? avail : XCHG_MAX_RESP_HEAD_BYTES + 1;
            buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
            if (buf == NULL) {
                up_failed(x, xchg_err_memory);
                return -1;
            }
            n = h1p_parse_response(buf, len, XCHG_MAX_RESP_HEAD_BYTES, &resp, fields,
                                   XCHG_MAX_RESP_HEADERS);
        }
        if (n == -2) {
            if (eof) {
                up_failed(x, xchg_err_reset);
                return -1;
            }
            return 0;
        }
        /* a transfer coding other than chunked can't be passed on: its field is
         * hop-by-hop and the proxy does not decode it (nginx answers 502 too) */
        if (n < 0 || resp.status == 101 || resp.other_coding) {
            cut_log(CUT_DEBUG, "w=%u bad response from %s: %s", x->w->id, x->server->name,
                    n < 0                ? resp.reason
                    : resp.status == 101 ? "101 without an upgrade"
                                         : "transfer coding other than chunked");
            up_failed(x, xchg_err_bad_response);
            return -1;
        }
        if (resp.status < 200) {
            evbuffer_drain(in, (size_t)n); /* interim response: skip it */
            continue;
        }
        x->t_up_us = cut_now_cached_us();
        x->status = resp.status;
        enum h1p_body body = h1p_response_body(&resp, (x->flags & XF_IS_HEAD) != 0);
        if (resp.status >= 500 && shield_possible(x)) {
            record(x, (unsigned)x->status, WIN_FAIL_NONE);
            if (shield_try(x))
                return -1;
            x->flags |= XF_RECORDED; /* over budget: forwarded after all */
        }
        x->up_keepalive = resp.keep_alive && body != H1P_BODY_CLOSE;
        x->body_mode = body;
        x->body_left = body == H1P_BODY_LENGTH ? (uint64_t)resp.content_length : 0;
        if (body == H1P_BODY_CHUNKED)
            h1p_chunked_init(&x->chunk);
        int rc = deliver_head(x, &resp, fields, body);
        evbuffer_drain(in, (size_t)n);
        if (rc < 0) {
            detach_up(x, 0);
            return -1;
        }
        if (body == H1P_BODY_NONE || (body == H1P_BODY_LENGTH && x->body_left == 0))
            x->flags |= XF_UP_DONE;
        return 1;
    }
}

/*
 * Moves response body bytes from <in> to x->rbody: whole chains without a
 * copy for Content-Length and close-delimited bodies, decoded spans for
 * chunked ones. Returns 0, or -1 on a malformed chunked body.
 */
static int up_body(struct xchg *x, struct evbuffer *in, int eof)
{
    size_t avail = evbuffer_get_length(in);
    if (x->rbody == NULL && (x->rbody = evbuffer_new()) == NULL)
        return -1;
    switch (x->body_mode) {
    case H1P_BODY_LENGTH: {
        size_t n = avail < x->body_left ? avail : (size_t)x->body_left;
        if (n > 0) {
            evbuffer_remove_buffer(in, x->rbody, n);
            x->body_left -= n;
            x->bytes_out += n;
        }
        if (x->body_left == 0)
            x->flags |= XF_UP_DONE;
        return 0;
    }
    case H1P_BODY_CLOSE:
        if (avail > 0) {
            evbuffer_remove_buffer(in, x->rbody, avail);
            x->bytes_out += avail;
        }
        if (eof)
            x->flags |= XF_UP_DONE;
        return 0;
    case H1P_BODY_CHUNKED:
        while (!x->chunk.done && evbuffer_get_length(in) > 0) {
            struct evbuffer_iovec v;
            evbuffer_peek(in, -1, NULL, &v, 1);
            size_t used = 0;
            while (used < v.iov_len && !x->chunk.done) {
                size_t off, dlen;
                ssize_t k = h1p_chunked_feed(&x->chunk, (const char *)v.iov_base + used,
                                             v.iov_len - used, &off, &dlen);
                if (k < 0)
                    return -1;
                if (dlen > 0) {
                    evbuffer_add(x->rbody, (const char *)v.iov_base + used + off, dlen);
                    x->bytes_out += dlen;
                }
                used += (size_t)k;
                if (k == 0)
                    break;
            }
            evbuffer_drain(in, used);
            if (used == 0)
                break;
        }
        if (x->chunk.done)
            x->flags |= XF_UP_DONE;
        return 0;
    default:
        x->flags |= XF_UP_DONE;
        return 0;
    }
}

/* Parses what the upstream sent; forwards the body to the front. */
static void up_process(struct xchg *x, int eof)
{
    struct evbuffer *in = sock_input(x->up->sk);
    if (!(x->flags & XF_HEAD_SENT)) {
        int r = up_head(x, in, eof);
        if (r <= 0)
            return;
    }
    if (!(x->flags & XF_UP_DONE) && !(x->flags & XF_RESP_DONE)) {
        if (up_body(x, in, eof) < 0) {
            up_failed(x, xchg_err_bad_response);
            return;
        }
    }
    int done = (x->flags & XF_UP_DONE) != 0;
    if (x->flags & XF_HEAD_SENT && !(x->flags & XF_RESP_DONE)) {
        if ((x->rbody != NULL && evbuffer_get_length(x->rbody) > 0) || done) {
            if (done)
                x->flags |= XF_RESP_DONE;
            if (x->ops->send_data(x, x->rbody, done) < 0) {
                x->flags |= XF_RESP_DONE;
                detach_up(x, 0);
                return;
            }
        }
    }
    if (done) {
        finish(x);
        return;
    }
    if (eof) {
        up_failed(x, xchg_err_reset);
        return;
    }
    if (x->ops->pending(x) > XCHG_BUF_HIGH) {
        /* the client is slow, not the upstream: the front's own write
         * timeout watches the client meanwhile */
        x->flags |= XF_UP_PAUSED;
        sock_disable(x->up->sk, EV_READ);
        disarm(x);
        return;
    }
    arm(x, x->snap->timeouts.upstream_ms);
}

static void up_read_cb(void *arg)
{
    struct xchg *x = arg;
    CUT_BUG_ON(x->magic != XCHG_MAGIC);
    up_process(x, 0);
}

static void up_event_cb(void *arg, short what)
{
    struct xchg *x = arg;
    CUT_BUG_ON(x->magic != XCHG_MAGIC);
    if (what & BEV_EVENT_CONNECTED) {
        x->up->state = UPS_BUSY;
        up_ready(x);
        return;
    }
    if (!(x->flags & XF_CONNECTED)) {
        /* connect failed: another server of the same track, once each */
        x->pool->n_connect_failures++;
        record(x, 0, WIN_FAIL_CONNECT);
        cut_log(CUT_DEBUG, "w=%u connect to %s failed", x->w->id, x->server->name);
        disarm(x);
        detach_up(x, 0);
        if (tracks_untried(x))
            lease(x);
        else if (!shield_try(x))
            fail(x, 502, xchg_err_connect);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        up_process(x, 1);
        return;
    }
    up_failed(x, xchg_err_reset);
}

void xchg_front_drained(struct xchg *x)
{
    CUT_BUG_ON(x->magic != XCHG_MAGIC);
    if ((x->flags & XF_UP_PAUSED) && x->up != NULL) {
        x->flags &= ~XF_UP_PAUSED;
        sock_enable(x->up->sk, EV_READ);
        arm(x, x->snap->timeouts.upstream_ms);
    }
}
