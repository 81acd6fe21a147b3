/*
 * xchg.h: the exchange, which joins one downstream request (an HTTP/1.1
 * request or an HTTP/2 stream) to one upstream HTTP/1.1 request.
 *
 * It is protocol-agnostic: the front end fills a neutral request head, and
 * the exchange talks back to the front only through struct front_ops (as
 * Varnish's struct transport). Routing, upstream pooling, header
 * translation, timeouts, proxy-generated errors and accounting live here,
 * written once for both fronts.
 *
 * Life cycle, owned by the front:
 *   x = xchg_new(w, ops, front_ctx, proto, peer)
 *   fill xchg_req(x) (xchg_add_header or xchg_set_headers, xchg_strdup)
 *   xchg_start(x)                  head complete; routes and connects
 *   xchg_req_body(x, p, n) ...     request body bytes, if any
 *   xchg_req_end(x)                request complete
 *   ... ops->send_head / send_data (end=1) or ops->abort: response side done
 *   xchg_free(x)                   at any time: e.g. stream closed, client gone
 *
 * The exchange may call ops synchronously from xchg_start, xchg_req_body and
 * xchg_req_end (e.g. a 404 needs no upstream). It never calls ops after it has
 * reported the end of the response or an abort, and never frees itself.
 */
#ifndef CUTOVER_XCHG_H
#define CUTOVER_XCHG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct evbuffer;
struct worker;
struct xchg;

struct hdr {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

enum xchg_proto { XCHG_H1 = 1, XCHG_H2 = 2 };

struct req_head {
    const char *method;     /* "GET", ... */
    size_t method_len;
    const char *path;       /* origin-form: "/a/b?q" */
    size_t path_len;
    const char *authority;  /* Host or :authority, may be NULL */
    size_t authority_len;
    int tls;                /* downstream scheme is https */
    struct hdr *hdrs;       /* regular headers, no pseudo-headers, as received */
    size_t n_hdrs;
    int64_t content_length; /* -1 when unknown */
    int has_body;           /* 0: the request has no body at all */
    int http_minor;         /* h1: 0 or 1; h2: 1 */
};

struct front_ops {
    /*
     * The response head. <hdrs> are HTTP/1-style fields (hop-by-hop fields
     * already removed; names in the upstream's case). <content_length> is the
     * body length when known, else -1. <end> = 1: there is no body.
     * Returns 0, or -1 if the front cannot take it (the exchange then stops).
     */
    int (*send_head)(struct xchg *x, int status, const struct hdr *hdrs, size_t n,
                     int64_t content_length, int end);
    /* Moves all bytes of <buf> to the client side. <end> = 1: last data.
     * <buf> may be NULL (no bytes) when only the end is signalled. */
    int (*send_data)(struct xchg *x, struct evbuffer *buf, int end);
    /* Bytes queued by the front for this exchange and not yet written. */
    size_t (*pending)(struct xchg *x);
    /* Stop / resume reading the request body (h1; h2 uses flow control). */
    void (*pause_read)(struct xchg *x);
    void (*resume_read)(struct xchg *x);
    /* <n> request body bytes have left for the upstream (h2: consume window). */
    void (*req_consumed)(struct xchg *x, size_t n);
    /* The response cannot complete after its head was sent: reset the stream
     * (h2) or close the connection once written (h1). */
    void (*abort)(struct xchg *x);
};

/* High and low marks for bytes queued towards one side before pausing the other. */
#define XCHG_BUF_HIGH (256 * 1024)
#define XCHG_BUF_LOW (64 * 1024)
/* Largest single read(2)/writev(2) on a connection (libevent's default: 16 KiB). */
#define XCHG_IO_CHUNK (128 * 1024)

/* Creates an exchange. Returns NULL on allocation failure. */
struct xchg *xchg_new(struct worker *w, const struct front_ops *ops, void *front_ctx,
                      enum xchg_proto proto, const struct sockaddr *peer);

/* The front's context given to xchg_new. */
void *xchg_front_ctx(struct xchg *x);

struct req_head *xchg_req(struct xchg *x);

/* Arena memory freed with the exchange. NULL on failure. */
void *xchg_alloc(struct xchg *x, size_t n);
char *xchg_strdup(struct xchg *x, const char *s, size_t n); /* NUL-terminated copy */

/* Appends a copy of a header to the request head. Returns 0 or -1 (memory). */
int xchg_add_header(struct xchg *x, const char *name, size_t nlen, const char *value, size_t vlen);

/*
 * Makes room in the arena for all <n> regular header fields of the request at
 * once and sets the request head to them (n_hdrs = n), in place of fields
 * added before: the caller fills the <n> entries, pointing at memory that
 * lives as long as the exchange (its own arena copy). Returns the array, or
 * NULL (memory; for n = 0, the head then has no fields).
 */
struct hdr *xchg_set_headers(struct xchg *x, size_t n);

/* The request head is complete: route it, lease an upstream, send. */
void xchg_start(struct xchg *x);

/*
 * Request body bytes (copied). Returns 0, or -1 when the exchange no longer
 * wants the body (its response is done or failed): the front may discard.
 */
int xchg_req_body(struct xchg *x, const void *data, size_t n);

/* The request body is complete (also call it for requests without a body). */
void xchg_req_end(struct xchg *x);

/* The front has written its queued bytes down to XCHG_BUF_LOW or less. */
void xchg_front_drained(struct xchg *x);

/*
 * Sends a proxy-generated response (<status>, short text body) through the
 * ops, if no response head was sent yet, and ends the exchange's response.
 * Counts it. Safe before xchg_start (e.g. 400/431 from a front).
 */
void xchg_reply(struct xchg *x, int status);

/* The standard reason phrase of <status> ("Not Found"), or "Unknown". */
const char *xchg_reason_phrase(int status);

/* 1 once the response side is finished (sent completely or aborted). */
int xchg_response_done(const struct xchg *x);

/* Frees the exchange in any state; closes a still-busy upstream connection. */
void xchg_free(struct xchg *x);

/* Frees <w>'s recycled exchanges (worker exit). */
void xchg_pool_free(struct worker *w);

#endif
