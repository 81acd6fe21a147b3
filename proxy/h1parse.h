/*
 * h1parse.h: a strict, zero-copy HTTP/1.x parser (picohttpparser's shape).
 *
 * Heads are parsed statelessly over one contiguous buffer: call again from the
 * start of the head when more bytes arrive (the cost is linear in the bytes, and
 * bounded by the head limit). Nothing is copied or allocated: names, values,
 * method, target and Host point into the caller's buffer, which must outlive
 * their use. Bodies in the chunked coding go through an incremental decoder
 * that reports the data in place.
 *
 * The parser is strict on purpose (request smuggling, response splitting): see
 * the list in h1parse.c's opening comment. It neither logs nor allocates, and is
 * safe to call from any thread on distinct structs.
 *
 * Return convention (STYLE.md, picohttpparser): byte consumers return ssize_t,
 * > 0 (or >= 0) bytes, -1 error with the reason in the struct, -2 incomplete.
 */
#ifndef CUTOVER_H1PARSE_H
#define CUTOVER_H1PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#define H1P_INCOMPLETE (-2)
#define H1P_ERROR (-1)

/* Content-Length values above this are refused (H1P_BAD). */
#define H1P_MAX_CONTENT_LENGTH (INT64_C(1) << 62)
/* Chunked coding bounds: hex digits of a chunk size (leading zeros count), bytes
 * of one chunk-size line (extensions and CRLF included), and bytes of the trailer
 * section (its final CRLF included). */
#define H1P_CHUNK_MAX_DIGITS 15
#define H1P_CHUNK_MAX_LINE 4096
#define H1P_CHUNK_MAX_TRAILER 8192

struct h1p_header {
    const char *name;
    size_t name_len;
    const char *value; /* without leading or trailing SP/HTAB */
    size_t value_len;
};

struct h1p_limits {
    size_t max_head;    /* bytes of the whole head, request line and final CRLF included */
    size_t max_line;    /* bytes of the request target */
    size_t max_headers; /* header fields */
};

enum h1p_error {
    H1P_OK = 0,
    H1P_BAD,              /* 400 (502 for a response): malformed or ambiguous */
    H1P_URI_TOO_LONG,     /* 414: request target longer than max_line */
    H1P_HEAD_TOO_LARGE,   /* 431: head longer than max_head (or chunked trailers too long) */
    H1P_TOO_MANY_HEADERS, /* 431: more than max_headers fields */
    H1P_BAD_VERSION,      /* 505: well-formed "HTTP/d.d" other than 1.0 and 1.1 */
    H1P_NOT_IMPLEMENTED,  /* 501: a request transfer coding other than just "chunked" */
    H1P_N_ERRORS
};

struct h1p_request {
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    int minor;              /* 0 or 1 */
    int64_t content_length; /* -1: no Content-Length */
    int chunked;            /* Transfer-Encoding: chunked */
    int keep_alive;         /* per version and Connection tokens (close, keep-alive) */
    int expect_continue;    /* Expect: 100-continue (any version; the caller checks minor) */
    int upgrade;            /* an Upgrade field is present, or the method is CONNECT */
    const char *host;       /* the Host field's value, NULL when absent (HTTP/1.0 only) */
    size_t host_len;
    const char *authority; /* absolute-form: the target's authority (non-empty, no
                            * userinfo; the path and query follow it), else NULL */
    size_t authority_len;
    size_t n_headers;     /* fields filled in the caller's array */
    enum h1p_error error; /* why, when the return is -1 */
    const char *reason;   /* a static string with detail for logs and tests, when -1 */
};

struct h1p_response {
    int minor;
    int status;                /* 100..599 */
    const char *reason_phrase; /* may be empty */
    size_t reason_phrase_len;
    int64_t content_length; /* -1: none, or overridden by Transfer-Encoding */
    int chunked;            /* final transfer coding is chunked */
    int keep_alive;         /* per version and Connection tokens; 0 after suspect framing */
    int other_coding;       /* Transfer-Encoding other than just "chunked" in HTTP/1.1 */
    size_t n_headers;
    enum h1p_error error;
    const char *reason;
};

/*
 * Parses the request head at <buf>[0..<len>) (<buf> may be NULL when <len> is 0)
 * under the limits <lim>, filling <req> and up to <max> fields of <hdrs> (the
 * effective field limit is the smaller of
 * <max> and <lim>->max_headers; exceeding it is H1P_TOO_MANY_HEADERS, so no
 * spare slot is needed). Empty lines (CRLF) before the request line are skipped
 * and count toward the head (RFC 9112 2.2).
 *
 * Returns the head's length (> 0, through the empty line's CRLF) when complete;
 * the body, if any, starts at buf + that. Returns -2 when the bytes so far are a
 * valid prefix within the limits and more are needed, and -1 on error with
 * <req>->error and <req>->reason set. Limits are enforced on prefixes: a target
 * longer than max_line fails as soon as max_line + 1 target bytes are seen, and
 * a head not complete within max_head bytes fails once <len> exceeds max_head.
 * <req> and <hdrs> are meaningful only after a positive return (error and
 * reason after -1). Pointers point into <buf>.
 *
 * After a positive return: content_length >= 0 and chunked are never both set;
 * no Content-Length and not chunked means no body. Host is checked (one field,
 * mandatory in HTTP/1.1, authority characters only); for an absolute-form
 * target <req>->authority is set, and the caller should prefer it to Host and
 * forward the rest of the target (RFC 9112 3.2.2).
 */
ssize_t h1p_parse_request(const char *buf, size_t len, const struct h1p_limits *lim,
                          struct h1p_request *req, struct h1p_header *hdrs, size_t max);

/*
 * Parses a response head at <buf>[0..<len>), at most <max_head> bytes long, filling
 * <resp> and at most <max> fields of <hdrs>. Same returns as h1p_parse_request().
 * 1xx heads are complete heads without a body: the caller skips them and parses
 * again after them. Transfer-Encoding overrides Content-Length (and keep_alive is
 * cleared, RFC 9112 6.3); a final coding other than chunked, or Transfer-Encoding
 * in HTTP/1.0, means the body runs until close. <resp>->other_coding flags every
 * Transfer-Encoding but a lone "chunked" in HTTP/1.1: the body then carries a
 * coding that undoing the chunked framing does not remove (or faulty framing,
 * RFC 9112 6.1), which a proxy can't pass on once it drops the hop-by-hop field.
 */
ssize_t h1p_parse_response(const char *buf, size_t len, size_t max_head, struct h1p_response *resp,
                           struct h1p_header *hdrs, size_t max);

enum h1p_body {
    H1P_BODY_NONE = 0,
    H1P_BODY_LENGTH,
    H1P_BODY_CHUNKED,
    H1P_BODY_CLOSE,
    H1P_BODY_N_KINDS
};

/*
 * How the body of the parsed response <r> is delimited (RFC 9112 6.3): none for
 * a response to HEAD (<head_request> non-zero), 1xx, 204 and 304; then chunked,
 * Content-Length (which may be 0), or until close. A connection can be reused
 * only when r->keep_alive and the result is not H1P_BODY_CLOSE.
 */
enum h1p_body h1p_response_body(const struct h1p_response *r, int head_request);

/*
 * Incremental decoder for the chunked coding. Zero the struct to start (or call
 * h1p_chunked_init()); fields starting with '_' are private.
 */
struct h1p_chunked {
    int state;            /* private (named as in the first API draft) */
    uint64_t remaining;   /* data bytes left in the current chunk */
    size_t trailer_bytes; /* bytes of the trailer section so far */
    int done;             /* the last chunk and the trailer section are consumed */
    enum h1p_error error;
    const char *reason;
    unsigned _n_digits;
    size_t _line_bytes;
};

void h1p_chunked_init(struct h1p_chunked *c);

/*
 * Feeds <buf>[0..<len>) to <c>. Returns the bytes consumed (>= 0), or -1 on
 * malformed input (<c>->error, <c>->reason). When the consumed bytes include
 * chunk data, it stops after one span and sets <*data_off>/<*data_len> to it
 * (offsets into <buf>, within the consumed bytes), else *data_len = 0. It
 * consumes at least one byte whenever <len> > 0 and the message is not done,
 * and never a byte past the end of the message: once c->done is set it returns
 * 0, and the bytes after the returned count belong to the next message.
 * Trailer fields are validated, bounded by H1P_CHUNK_MAX_TRAILER (then
 * H1P_HEAD_TOO_LARGE) and discarded; chunk extensions are validated, bounded and
 * skipped.
 */
ssize_t h1p_chunked_feed(struct h1p_chunked *c, const char *buf, size_t len, size_t *data_off,
                         size_t *data_len);

/* The HTTP status a server answers for <e> (400, 414, 431, 505, 501; 0 for H1P_OK). */
int h1p_error_status(enum h1p_error e);

/* A static name for <e> ("bad", "uri_too_long", ...), for logs and metric labels. */
const char *h1p_error_str(enum h1p_error e);

/* Unaligned native-endian loads, for 8- and 4-byte compares of field names
 * (the parser's and the exchange's). */
static inline uint64_t h1p_load64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint32_t h1p_load32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

#endif
