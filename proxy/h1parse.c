/*
 * h1parse.c: strict, zero-copy HTTP/1.x heads and the chunked coding.
 *
 * Refused, each with a case in tests/unit/test_h1parse.c (RFC 9110, RFC 9112):
 *  - line ends other than CRLF: a bare LF or a bare CR anywhere in a head, in a
 *    chunk-size line, after chunk data or in trailers;
 *  - a method or field name that is empty or not a token (tchar); whitespace
 *    between a field name and the colon; a line starting with SP/HTAB (obs-fold,
 *    and whitespace before the first field);
 *  - anything but one SP between the parts of the request line; a request target
 *    with a CTL, SP, DEL or '#' (bytes >= 0x80 pass), or not in the form its method
 *    allows: origin-form ("/..."), absolute-form ("scheme://..."), authority-form
 *    ("host:port") for CONNECT only, asterisk-form for OPTIONS only; an
 *    absolute-form whose authority is empty or has userinfo;
 *  - an HTTP-version other than exactly "HTTP/1.0" or "HTTP/1.1" (H1P_BAD_VERSION
 *    when it is well-formed "HTTP/d.d", else H1P_BAD);
 *  - field values with a CTL other than HTAB (NUL, CR, LF...) or DEL;
 *  - Content-Length that is not 1*DIGIT (or a list of equal ones, "5, 5"), above
 *    2^62, or differing between fields or list elements;
 *  - in requests: Transfer-Encoding with Content-Length, in HTTP/1.0, with
 *    "chunked" twice (H1P_BAD), or other than exactly "chunked"
 *    (H1P_NOT_IMPLEMENTED: the proxy re-frames bodies and cannot carry other
 *    codings); no Host in HTTP/1.1, several Host fields, a Host value with a
 *    character outside an authority;
 *  - in Transfer-Encoding: empty list elements and transfer-parameters;
 *  - in responses: a status other than 3 digits within 100..599, no SP after the
 *    status (the reason phrase may be empty), "chunked" twice;
 *  - in chunked bodies: a size that is not 1..15 hex digits, malformed chunk
 *    extensions, a chunk-size line over H1P_CHUNK_MAX_LINE bytes, data not
 *    followed by CRLF, trailers that are not fields or pass H1P_CHUNK_MAX_TRAILER.
 * Limits apply to prefixes so that a peer trickling a huge head fails as soon as
 * it passes the limit (see the header).
 *
 * Speed: request targets, field names and field values are scanned 16 bytes at
 * a time with SSE2 (baseline on x86-64) wherever 16 bytes remain; the rest, and
 * the punctuation in names, go through a class table. Known field names are
 * matched with 4- and 8-byte loads. Build with -DH1P_NO_SIMD for the scalar path
 * alone (the fuzz targets compare both on every input).
 */
#include "h1parse.h"

#include <string.h>

#if defined(__SSE2__) && !defined(H1P_NO_SIMD)
#include <emmintrin.h>
#define H1P_SIMD 1
#else
#define H1P_SIMD 0
#endif

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Character classes, one bit each (generated; see the comment under the table). */
enum { C_TCHAR = 1, C_VALUE = 2, C_TARGET = 4, C_HOST = 8 };

static const unsigned char cclass[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  2,  0,  0,  0,  0,  0,  0,  /* 0x00 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x10 */
    2,  15, 6,  3,  15, 15, 15, 15, 14, 14, 15, 15, 14, 15, 15, 6,  /* 0x20 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 14, 14, 6,  14, 6,  6,  /* 0x30 */
    6,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x40 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 14, 6,  14, 7,  15, /* 0x50 */
    7,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x60 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  7,  6,  15, 0,  /* 0x70 */
    6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  /* 0x80 */
    6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  /* 0x90 */
    6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  /* 0xa0 */
    6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  /* 0xb0 */
    6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  /* 0xc0 */
    6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  /* 0xd0 */
    6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  /* 0xe0 */
    6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  /* 0xf0 */
};
/*
 * C_TCHAR:  "!#$%&'*+-.^_`|~", DIGIT, ALPHA (RFC 9110 5.6.2)
 * C_VALUE:  HTAB, SP, VCHAR, obs-text (field-value, reason-phrase)
 * C_TARGET: VCHAR but '#', obs-text
 * C_HOST:   unreserved, sub-delims, ':', '[', ']', '%' (RFC 3986 authority sans '@')
 * The unit tests check the table against these definitions.
 */

#define IS(c, cls) (cclass[(unsigned char)(c)] & (cls))

/* The scalar scan: the first byte in [p, end) outside class <cls>, or end
 * (unrolled by four; <cls> is a constant at every call). */
static inline const char *scan_class(const char *p, const char *end, unsigned cls)
{
    while (end - p >= 4) {
        if (!IS(p[0], cls))
            return p;
        if (!IS(p[1], cls))
            return p + 1;
        if (!IS(p[2], cls))
            return p + 2;
        if (!IS(p[3], cls))
            return p + 3;
        p += 4;
    }
    while (p < end && IS(*p, cls))
        p++;
    return p;
}

/* Returns the first byte in [p, end) that is not a tchar, or end. */
static inline const char *scan_token(const char *p, const char *end)
{
    return scan_class(p, end, C_TCHAR);
}

/*
 * Returns the first byte in [p, end) that is not a tchar, or end, like
 * scan_token(). Field names are mostly letters, digits and '-': SIMD finds the
 * first byte outside those, and the table decides from there.
 */
static inline const char *scan_name(const char *p, const char *end)
{
#if H1P_SIMD
    const __m128i lc = _mm_set1_epi8(0x20), dash = _mm_set1_epi8('-');
    /* x in [lo, hi] <=> (int8)(x + 0x80 - lo) < (int8)(0x80 + hi - lo + 1) */
    const __m128i a_off = _mm_set1_epi8(0x80 - 'a'), a_lim = _mm_set1_epi8(-128 + 26);
    const __m128i d_off = _mm_set1_epi8(0x80 - '0'), d_lim = _mm_set1_epi8(-128 + 10);

    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i alpha = _mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128(v, lc), a_off), a_lim);
        __m128i digit = _mm_cmplt_epi8(_mm_add_epi8(v, d_off), d_lim);
        __m128i m = _mm_or_si128(_mm_or_si128(alpha, digit), _mm_cmpeq_epi8(v, dash));
        unsigned stop = ~(unsigned)_mm_movemask_epi8(m) & 0xffffu;

        if (LIKELY(stop != 0)) {
            p += __builtin_ctz(stop);
            return *p == ':' ? p : scan_token(p, end);
        }
        p += 16;
    }
#endif
    return scan_token(p, end);
}

/* Returns the first byte in [p, end) that can't be in a field value (a CTL other
 * than HTAB, or DEL), or end. */
static inline const char *scan_value(const char *p, const char *end)
{
#if H1P_SIMD
    const __m128i c1f = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f);

    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i ctl = _mm_cmpeq_epi8(_mm_max_epu8(v, c1f), c1f); /* v <= 0x1f */
        int bits = _mm_movemask_epi8(_mm_or_si128(ctl, _mm_cmpeq_epi8(v, del)));

        if (LIKELY(bits != 0)) {
            p += __builtin_ctz((unsigned)bits);
            if (*p != '\t')
                return p;
            p++;
            continue;
        }
        p += 16;
    }
#endif
    return scan_class(p, end, C_VALUE);
}

/* Returns the first byte in [p, end) that can't be in a request target (CTL, SP,
 * DEL, '#'), or end. */
static inline const char *scan_target(const char *p, const char *end)
{
#if H1P_SIMD
    const __m128i sp = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f), hash = _mm_set1_epi8('#');

    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i m = _mm_cmpeq_epi8(_mm_max_epu8(v, sp), sp); /* v <= 0x20 */
        int bits;

        m = _mm_or_si128(m, _mm_cmpeq_epi8(v, del));
        m = _mm_or_si128(m, _mm_cmpeq_epi8(v, hash));
        bits = _mm_movemask_epi8(m);
        if (bits != 0)
            return p + __builtin_ctz((unsigned)bits);
        p += 16;
    }
#endif
    while (p < end && IS(*p, C_TARGET))
        p++;
    return p;
}


/*
 * Case-insensitive compares of <s> with a lowercase literal of letters, digits
 * and '-', 4 or 8 bytes at a time (overlapping loads cover the lengths between).
 * OR-ing 0x20 lowercases letters; the only other bytes it maps onto a letter, a
 * digit or '-' are CTLs (CR onto '-'), which neither a field name nor a field
 * value can hold.
 */
#define LC64 UINT64_C(0x2020202020202020)
#define LC32 UINT32_C(0x20202020)
#define EQ8(s, lit) ((h1p_load64(s) | LC64) == h1p_load64(lit))
#define EQ4(s, lit) ((h1p_load32(s) | LC32) == h1p_load32(lit))

/* n in 4..16 */
static inline int lc_eq(const char *s, const char *lit, size_t n)
{
    if (n >= 8)
        return EQ8(s, lit) && EQ8(s + n - 8, lit + n - 8);
    return EQ4(s, lit) && EQ4(s + n - 4, lit + n - 4);
}

/* The same for field values and list elements, which may hold any byte. */
static int value_eq(const char *s, size_t n, const char *lit, size_t litn)
{
    if (n != litn)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c |= 0x20;
        if (c != (unsigned char)lit[i])
            return 0;
    }
    return 1;
}

/* What the fields tell about framing and the connection, while parsing. */
struct fields {
    size_t n;
    int64_t content_length; /* -1: none */
    unsigned n_te_elems, n_chunked;
    int te_last_chunked;
    int conn_close, conn_keep_alive;
    int expect_continue, upgrade;
    unsigned n_host;
    const char *host;
    size_t host_len;
    int st; /* -1 or -2 when a helper returns NULL */
    enum h1p_error error;
    const char *reason;
};

#define FAIL(f, err, why)                                                                          \
    do {                                                                                           \
        (f)->st = -1;                                                                              \
        (f)->error = (err);                                                                        \
        (f)->reason = (why);                                                                       \
        return NULL;                                                                               \
    } while (0)
#define MORE(f)                                                                                    \
    do {                                                                                           \
        (f)->st = -2;                                                                              \
        return NULL;                                                                               \
    } while (0)

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Splits a comma list <v>[0..<n>) (OWS trimmed around elements); calls back on
 * each element. Returns -1 if <fn> does, or on an empty element unless
 * <skip_empty> (RFC 9110 5.6.1.2 lets recipients ignore them). */
static int for_each_elem(const char *v, size_t n, struct fields *f, int skip_empty,
                         int (*fn)(struct fields *, const char *, size_t))
{
    const char *p = v, *end = v + n;

    for (;;) {
        const char *e = memchr(p, ',', (size_t)(end - p));
        const char *s = p, *t = e ? e : end;

        while (s < t && is_ows(*s))
            s++;
        while (t > s && is_ows(t[-1]))
            t--;
        if (s == t) {
            if (!skip_empty)
                return -1;
        } else if (fn(f, s, (size_t)(t - s)) < 0) {
            return -1;
        }
        if (!e)
            return 0;
        p = e + 1;
    }
}

static int on_cl_elem(struct fields *f, const char *s, size_t n)
{
    int64_t v = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9) {
            f->reason = "Content-Length is not digits";
            return -1;
        }
        if (v > (H1P_MAX_CONTENT_LENGTH - (int64_t)d) / 10) {
            f->reason = "Content-Length above 2^62";
            return -1;
        }
        v = v * 10 + (int64_t)d;
    }
    if (f->content_length >= 0 && f->content_length != v) {
        f->reason = "differing Content-Length values";
        return -1;
    }
    f->content_length = v;
    return 0;
}

static int on_te_elem(struct fields *f, const char *s, size_t n)
{
    const char *e = s + n;

    if (scan_token(s, e) != e) {
        f->reason = "transfer coding is not a bare token";
        return -1;
    }
    f->n_te_elems++;
    f->te_last_chunked = n == 7 && lc_eq(s, "chunked", 7);
    f->n_chunked += (unsigned)f->te_last_chunked;
    return 0;
}

static int on_conn_elem(struct fields *f, const char *s, size_t n)
{
    if (value_eq(s, n, "close", 5))
        f->conn_close = 1;
    else if (value_eq(s, n, "keep-alive", 10))
        f->conn_keep_alive = 1;
    return 0;
}

/* Content-Length, with a fast path for plain digits. */
static int on_content_length(struct fields *f, const char *v, size_t vlen)
{
    int64_t x = 0;
    size_t i;

    for (i = 0; i < vlen && i < 18; i++) {
        unsigned d = (unsigned)(unsigned char)v[i] - '0';
        if (d > 9)
            break;
        x = x * 10 + (int64_t)d;
    }
    if (i == 0 || i != vlen) /* a list, a sign, 19+ digits...: the general path */
        return for_each_elem(v, vlen, f, 0, on_cl_elem) < 0 ? -1 : 0;
    if (f->content_length >= 0 && f->content_length != x) {
        f->reason = "differing Content-Length values";
        return -1;
    }
    f->content_length = x;
    return 0;
}

/* Acts on the fields that matter to framing, the connection and routing. */
static int on_field(struct fields *f, const char *name, size_t nlen, const char *v, size_t vlen,
                    int is_req)
{
    switch (nlen) {
    case 4:
        if (is_req && EQ4(name, "host")) {
            if (++f->n_host > 1) {
                f->reason = "several Host fields";
                return -1;
            }
            unsigned all = C_HOST;
            for (size_t i = 0; i < vlen; i++)
                all &= cclass[(unsigned char)v[i]];
            if (!all) {
                f->reason = "bad character in Host";
                return -1;
            }
            f->host = v;
            f->host_len = vlen;
        }
        return 0;
    case 6:
        if (is_req && lc_eq(name, "expect", 6) && vlen == 12 && lc_eq(v, "100-continue", 12))
            f->expect_continue = 1;
        return 0;
    case 7:
        if (lc_eq(name, "upgrade", 7))
            f->upgrade = 1;
        return 0;
    case 10:
        if (lc_eq(name, "connection", 10)) {
            if (vlen == 10 && lc_eq(v, "keep-alive", 10))
                f->conn_keep_alive = 1;
            else if (vlen == 5 && EQ4(v, "clos") && (v[4] | 0x20) == 'e')
                f->conn_close = 1;
            else
                for_each_elem(v, vlen, f, 1, on_conn_elem);
        }
        return 0;
    case 14:
        if (lc_eq(name, "content-length", 14) && on_content_length(f, v, vlen) < 0) {
            if (f->reason == NULL)
                f->reason = "empty Content-Length element";
            return -1;
        }
        return 0;
    case 17:
        if (lc_eq(name, "transfer-encoding", 16) && (name[16] | 0x20) == 'g' &&
            for_each_elem(v, vlen, f, 0, on_te_elem) < 0) {
            if (f->reason == NULL)
                f->reason = "empty Transfer-Encoding element";
            return -1;
        }
        return 0;
    default:
        return 0;
    }
}

/*
 * Parses header fields from <p> through the empty line; returns the byte after
 * it, or NULL with f->st = -1 (error) or -2 (more bytes needed).
 */
static const char *parse_fields(const char *p, const char *end, struct h1p_header *hdrs,
                                size_t hmax, struct fields *f, int is_req)
{
    for (;;) {
        const char *name, *v, *ve;
        size_t nlen;

        if (UNLIKELY(p == end))
            MORE(f);
        if (*p == '\r') {
            if (end - p < 2)
                MORE(f);
            if (p[1] != '\n')
                FAIL(f, H1P_BAD, "bare CR");
            return p + 2;
        }
        if (UNLIKELY(f->n == hmax))
            FAIL(f, H1P_TOO_MANY_HEADERS, "too many header fields");
        name = p;
        p = scan_name(p, end);
        if (UNLIKELY(p == end))
            MORE(f);
        if (UNLIKELY(*p != ':' || p == name)) {
            if (p == name && is_ows(*p))
                FAIL(f, H1P_BAD, "line starts with whitespace (obs-fold)");
            if (*p == ':')
                FAIL(f, H1P_BAD, "empty field name");
            if (is_ows(*p))
                FAIL(f, H1P_BAD, "whitespace before colon");
            if (*p == '\n')
                FAIL(f, H1P_BAD, "bare LF");
            FAIL(f, H1P_BAD, "bad character in field name");
        }
        nlen = (size_t)(p - name);
        v = ++p;
        if (LIKELY(p < end) && *p == ' ')
            v = ++p; /* the usual single SP; more OWS is trimmed below */
        p = scan_value(p, end);
        if (UNLIKELY(p == end))
            MORE(f);
        if (UNLIKELY(*p != '\r'))
            FAIL(f, H1P_BAD, *p == '\n' ? "bare LF" : "bad character in field value");
        if (UNLIKELY(end - p < 2))
            MORE(f);
        if (UNLIKELY(p[1] != '\n'))
            FAIL(f, H1P_BAD, "bare CR");
        /* trim OWS: the only value bytes <= 0x20 are SP and HTAB */
        ve = p;
        if (UNLIKELY(v < ve && (unsigned char)*v <= 0x20))
            while (v < ve && (unsigned char)*v <= 0x20)
                v++;
        if (UNLIKELY(ve > v && (unsigned char)ve[-1] <= 0x20))
            while (ve > v && (unsigned char)ve[-1] <= 0x20)
                ve--;
        hdrs[f->n].name = name;
        hdrs[f->n].name_len = nlen;
        hdrs[f->n].value = v;
        hdrs[f->n].value_len = (size_t)(ve - v);
        f->n++;
        if (nlen >= 4 && nlen <= 17 && on_field(f, name, nlen, v, (size_t)(ve - v), is_req) < 0)
            FAIL(f, H1P_BAD, f->reason);
        p += 2;
    }
}

/*
 * Parses "HTTP/d.d" followed by <term>; returns the byte after the version (the
 * terminator itself is left to the caller), or NULL as parse_fields() does.
 */
static const char *parse_version(const char *p, const char *end, char term, int *minor,
                                 struct fields *f)
{
    static const char want[] = "HTTP/1.1";

    if (LIKELY(end - p >= 9) && p[8] == term) {
        uint64_t w = h1p_load64(p);
        if (w == h1p_load64("HTTP/1.1")) {
            *minor = 1;
            return p + 8;
        }
        if (w == h1p_load64("HTTP/1.0")) {
            *minor = 0;
            return p + 8;
        }
    }
    for (int i = 0; i < 9; i++) {
        if (p + i == end)
            MORE(f);
        char c = p[i];
        int ok = i < 5    ? c == want[i]
                 : i == 6 ? c == '.'
                 : i == 8 ? c == term
                          : (c >= '0' && c <= '9');
        if (!ok)
            FAIL(f, H1P_BAD, c == '\n' ? "bare LF" : "malformed HTTP-version");
    }
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
        FAIL(f, H1P_BAD_VERSION, "HTTP version other than 1.0 and 1.1");
    *minor = p[7] - '0';
    return p + 8;
}

/* Checks the request target's form against the method (RFC 9112 3.2); for the
 * absolute-form, points *<auth> at the authority (else NULL). */
static const char *check_target(const char *m, size_t mlen, const char *t, size_t tlen,
                                const char **auth, size_t *auth_len)
{
    int connect = mlen == 7 && memcmp(m, "CONNECT", 7) == 0;

    if (t[0] == '/')
        return connect ? "CONNECT needs authority-form" : NULL;
    if (tlen == 1 && t[0] == '*')
        return mlen == 7 && memcmp(m, "OPTIONS", 7) == 0 ? NULL : "asterisk-form but not OPTIONS";
    if (connect) {
        /* uri-host ":" port: a non-empty host, digits after the last colon */
        const char *colon = NULL;
        size_t i;
        for (i = 0; i < tlen; i++) {
            if (!IS(t[i], C_HOST))
                return "bad authority-form";
            if (t[i] == ':')
                colon = t + i;
        }
        if (colon == NULL || colon == t || colon + 1 == t + tlen)
            return "bad authority-form";
        for (const char *d = colon + 1; d < t + tlen; d++)
            if (*d < '0' || *d > '9')
                return "bad authority-form";
        return NULL;
    }
    /* absolute-form: scheme "://" ... (scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )) */
    if (!((t[0] | 0x20) >= 'a' && (t[0] | 0x20) <= 'z'))
        return "bad request target";
    for (size_t i = 1; i < tlen; i++) {
        char c = t[i];
        if (c == ':') {
            if (tlen - i <= 3 || t[i + 1] != '/' || t[i + 2] != '/')
                return "bad absolute-form";
            /* authority, up to the path or the query: a host that routes the
             * request (RFC 9112 3.2.2), so no userinfo and not empty */
            const char *a = t + i + 3, *e = a;
            while (e < t + tlen && *e != '/' && *e != '?') {
                if (!IS(*e, C_HOST))
                    return "bad authority in absolute-form";
                e++;
            }
            if (e == a)
                return "empty authority in absolute-form";
            *auth = a;
            *auth_len = (size_t)(e - a);
            return NULL;
        }
        if (!(((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
              c == '-' || c == '.'))
            return "bad request target";
    }
    return "bad request target";
}

static void fields_init(struct fields *f)
{
    f->n = 0;
    f->content_length = -1;
    f->n_te_elems = f->n_chunked = 0;
    f->te_last_chunked = 0;
    f->conn_close = f->conn_keep_alive = 0;
    f->expect_continue = f->upgrade = 0;
    f->n_host = 0;
    f->host = NULL;
    f->host_len = 0;
    f->st = 0;
    f->error = H1P_OK;
    f->reason = NULL;
}

ssize_t h1p_parse_request(const char *buf, size_t len, const struct h1p_limits *lim,
                          struct h1p_request *req, struct h1p_header *hdrs, size_t max)
{
    const char *p = buf, *end;
    const char *m, *t, *tl;
    size_t hmax = max < lim->max_headers ? max : lim->max_headers;
    struct fields f;
    const char *why;
    int minor;

    if (len == 0)
        return -2; /* and no arithmetic on a NULL <buf> */
    end = buf + (len < lim->max_head ? len : lim->max_head);
    fields_init(&f);
    /* request line: skip empty lines first (RFC 9112 2.2) */
    while (p < end && *p == '\r') {
        if (end - p < 2)
            goto more;
        if (p[1] != '\n')
            goto bare_cr;
        p += 2;
    }
    m = p;
    p = scan_token(p, end);
    if (p == end)
        goto more;
    if (*p != ' ' || p == m) {
        f.reason = *p == '\n' ? "bare LF" : p == m ? "bad method" : "method not followed by one SP";
        goto bad;
    }
    p++;
    t = p;
    tl = (size_t)(end - t) > lim->max_line ? t + lim->max_line + 1 : end;
    p = scan_target(t, tl);
    if (p == tl) {
        if ((size_t)(p - t) > lim->max_line) {
            req->error = H1P_URI_TOO_LONG;
            req->reason = "request target longer than the limit";
            return -1;
        }
        goto more;
    }
    if (*p != ' ' || p == t) {
        f.reason = *p == '#'    ? "fragment in request target"
                   : p == t     ? "empty request target"
                   : *p == '\n' ? "bare LF"
                                : "bad character in request target";
        goto bad;
    }
    req->authority = NULL;
    req->authority_len = 0;
    if ((why = check_target(m, (size_t)(t - 1 - m), t, (size_t)(p - t), &req->authority,
                            &req->authority_len)) != NULL) {
        f.reason = why;
        goto bad;
    }
    req->method = m;
    req->method_len = (size_t)(t - 1 - m);
    req->target = t;
    req->target_len = (size_t)(p - t);
    p = parse_version(p + 1, end, '\r', &minor, &f);
    if (p == NULL)
        goto fail;
    if (end - p < 2)
        goto more;
    if (p[1] != '\n')
        goto bare_cr;
    p = parse_fields(p + 2, end, hdrs, hmax, &f, 1);
    if (p == NULL)
        goto fail;

    /* the head is complete: framing and connection */
    if (f.n_te_elems > 0) {
        if (f.content_length >= 0) {
            f.reason = "Transfer-Encoding with Content-Length";
            goto bad;
        }
        if (minor == 0) {
            f.reason = "Transfer-Encoding in HTTP/1.0";
            goto bad;
        }
        if (f.n_chunked > 1) {
            f.reason = "chunked applied more than once";
            goto bad;
        }
        if (f.n_te_elems != 1 || !f.te_last_chunked) {
            req->error = H1P_NOT_IMPLEMENTED;
            req->reason = "transfer coding other than chunked";
            return -1;
        }
    }
    if (minor == 1 && f.n_host == 0) {
        f.reason = "no Host in HTTP/1.1";
        goto bad;
    }
    req->minor = minor;
    req->content_length = f.content_length;
    req->chunked = f.n_chunked != 0;
    req->keep_alive = !f.conn_close && (minor == 1 || f.conn_keep_alive);
    req->expect_continue = f.expect_continue;
    req->upgrade = f.upgrade || (req->method_len == 7 && memcmp(m, "CONNECT", 7) == 0);
    req->host = f.host;
    req->host_len = f.host_len;
    req->n_headers = f.n;
    req->error = H1P_OK;
    req->reason = NULL;
    return p - buf;

more:
    f.st = -2;
fail:
    if (f.st == -2) {
        if (len <= lim->max_head)
            return -2;
        f.error = H1P_HEAD_TOO_LARGE;
        f.reason = "head larger than the limit";
    }
    req->error = f.error;
    req->reason = f.reason;
    return -1;
bare_cr:
    f.reason = "bare CR";
bad:
    req->error = H1P_BAD;
    req->reason = f.reason;
    return -1;
}

ssize_t h1p_parse_response(const char *buf, size_t len, size_t max_head, struct h1p_response *resp,
                           struct h1p_header *hdrs, size_t max)
{
    const char *p = buf, *end;
    const char *r;
    struct fields f;
    int minor, status;

    if (len == 0)
        return -2;
    end = buf + (len < max_head ? len : max_head);
    fields_init(&f);
    p = parse_version(p, end, ' ', &minor, &f);
    if (p == NULL)
        goto fail;
    p++;
    if (end - p < 4)
        goto more_or_check;
    if ((unsigned)(p[0] - '1') > 4 || (unsigned)(p[1] - '0') > 9 || (unsigned)(p[2] - '0') > 9)
        goto bad_status;
    status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    if (p[3] != ' ') {
        f.reason = p[3] == '\r' ? "no SP after the status code" : "malformed status code";
        goto bad;
    }
    r = p + 4;
    p = scan_value(r, end);
    if (p == end)
        goto more;
    if (*p != '\r') {
        f.reason = *p == '\n' ? "bare LF" : "bad character in reason phrase";
        goto bad;
    }
    if (end - p < 2)
        goto more;
    if (p[1] != '\n')
        goto bare_cr;
    resp->reason_phrase = r;
    resp->reason_phrase_len = (size_t)(p - r);
    p = parse_fields(p + 2, end, hdrs, max, &f, 0);
    if (p == NULL)
        goto fail;

    resp->minor = minor;
    resp->status = status;
    resp->content_length = f.content_length;
    resp->chunked = 0;
    resp->keep_alive = !f.conn_close && (minor == 1 || f.conn_keep_alive);
    resp->other_coding = 0;
    if (f.n_te_elems > 0) {
        /* Transfer-Encoding overrides Content-Length (RFC 9112 6.3 3.); suspect
         * framing closes the connection after this response. */
        if (f.n_chunked > 1) {
            f.reason = "chunked applied more than once";
            goto bad;
        }
        if (f.content_length >= 0)
            resp->keep_alive = 0;
        resp->content_length = -1;
        if (minor == 0 || !f.te_last_chunked)
            resp->keep_alive = 0; /* until close */
        else
            resp->chunked = 1;
        resp->other_coding = minor == 0 || f.n_te_elems != 1 || !f.te_last_chunked;
    }
    resp->n_headers = f.n;
    resp->error = H1P_OK;
    resp->reason = NULL;
    return p - buf;

more_or_check:
    /* a prefix of the status: check the digits there are */
    for (const char *d = p; d < end; d++) {
        if (d - p < 3 && ((unsigned)(*d - '0') > 9 || (d == p && (unsigned)(*d - '1') > 4)))
            goto bad_status;
    }
more:
    f.st = -2;
fail:
    if (f.st == -2) {
        if (len <= max_head)
            return -2;
        f.error = H1P_HEAD_TOO_LARGE;
        f.reason = "head larger than the limit";
    }
    resp->error = f.error;
    resp->reason = f.reason;
    return -1;
bad_status:
    f.reason = "status code not 3 digits in 100..599";
    goto bad;
bare_cr:
    f.reason = "bare CR";
bad:
    resp->error = H1P_BAD;
    resp->reason = f.reason;
    return -1;
}

enum h1p_body h1p_response_body(const struct h1p_response *r, int head_request)
{
    if (head_request || r->status < 200 || r->status == 204 || r->status == 304)
        return H1P_BODY_NONE;
    if (r->chunked)
        return H1P_BODY_CHUNKED;
    if (r->content_length >= 0)
        return H1P_BODY_LENGTH;
    return H1P_BODY_CLOSE;
}

/* Chunked decoder states; zero is the start of a chunk-size line. */
enum {
    CS_SIZE = 0,     /* hex digits */
    CS_SIZE_END,     /* after the size or an extension: ';', BWS, CR */
    CS_WS_SEMI,      /* BWS, then ';' */
    CS_EXT_PRE_NAME, /* after ';': BWS, then a token */
    CS_EXT_NAME,     /* in an extension name */
    CS_WS_NAME,      /* BWS after a name: '=' or ';' */
    CS_EXT_PRE_VAL,  /* after '=': BWS, then a token or a quoted-string */
    CS_EXT_VAL,      /* in a token value */
    CS_EXT_QUOTED,   /* in a quoted-string value */
    CS_EXT_QP,       /* after a backslash in a quoted-string */
    CS_SIZE_LF,      /* after the chunk-size line's CR */
    CS_DATA,
    CS_DATA_CR,
    CS_DATA_LF,
    CS_TR_START, /* start of a trailer line, or the final CRLF */
    CS_TR_NAME,
    CS_TR_VAL,
    CS_TR_LF,
    CS_END_LF,
    CS_DONE,
    CS_N_STATES
};

void h1p_chunked_init(struct h1p_chunked *c)
{
    memset(c, 0, sizeof(*c));
}

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

ssize_t h1p_chunked_feed(struct h1p_chunked *c, const char *buf, size_t len, size_t *data_off,
                         size_t *data_len)
{
    size_t i;

    *data_off = 0;
    *data_len = 0;
    if (c->error != H1P_OK)
        return -1;
    if (c->done)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)buf[i];
        int h;

        switch (c->state) {
        case CS_DATA: {
            size_t n = len - i;
            if (n > c->remaining)
                n = (size_t)c->remaining;
            *data_off = i;
            *data_len = n;
            c->remaining -= n;
            if (c->remaining == 0)
                c->state = CS_DATA_CR;
            return (ssize_t)(i + n);
        }
        case CS_SIZE:
            if (c->_n_digits == 0) {
                /* fast path: a whole "1*HEXDIG CRLF" line in the buffer */
                size_t j = i;
                uint64_t v = 0;
                while (j < len && j - i < H1P_CHUNK_MAX_DIGITS &&
                       (h = hexval((unsigned char)buf[j])) >= 0) {
                    v = v << 4 | (unsigned)h;
                    j++;
                }
                if (j > i && len - j >= 2 && buf[j] == '\r' && buf[j + 1] == '\n') {
                    c->remaining = v;
                    c->state = v ? CS_DATA : CS_TR_START;
                    i = j + 1;
                    continue;
                }
            }
            if ((h = hexval(ch)) >= 0) {
                if (++c->_n_digits > H1P_CHUNK_MAX_DIGITS)
                    goto bad_size;
                c->remaining = c->remaining << 4 | (unsigned)h;
                break;
            }
            if (c->_n_digits == 0)
                goto bad_size;
            c->state = CS_SIZE_END;
            __attribute__((fallthrough));
        case CS_SIZE_END:
            if (ch == ';')
                c->state = CS_EXT_PRE_NAME;
            else if (ch == ' ' || ch == '\t')
                c->state = CS_WS_SEMI;
            else if (ch == '\r')
                c->state = CS_SIZE_LF;
            else
                goto bad_line;
            break;
        case CS_WS_SEMI:
            if (ch == ';')
                c->state = CS_EXT_PRE_NAME;
            else if (ch != ' ' && ch != '\t')
                goto bad_line;
            break;
        case CS_EXT_PRE_NAME:
            if (IS(ch, C_TCHAR))
                c->state = CS_EXT_NAME;
            else if (ch != ' ' && ch != '\t')
                goto bad_line;
            break;
        case CS_EXT_NAME:
            if (IS(ch, C_TCHAR))
                break;
            if (ch == '=')
                c->state = CS_EXT_PRE_VAL;
            else if (ch == ' ' || ch == '\t')
                c->state = CS_WS_NAME;
            else if (ch == ';')
                c->state = CS_EXT_PRE_NAME;
            else if (ch == '\r')
                c->state = CS_SIZE_LF;
            else
                goto bad_line;
            break;
        case CS_WS_NAME:
            if (ch == '=')
                c->state = CS_EXT_PRE_VAL;
            else if (ch == ';')
                c->state = CS_EXT_PRE_NAME;
            else if (ch != ' ' && ch != '\t')
                goto bad_line;
            break;
        case CS_EXT_PRE_VAL:
            if (IS(ch, C_TCHAR))
                c->state = CS_EXT_VAL;
            else if (ch == '"')
                c->state = CS_EXT_QUOTED;
            else if (ch != ' ' && ch != '\t')
                goto bad_line;
            break;
        case CS_EXT_VAL:
            if (IS(ch, C_TCHAR))
                break;
            if (ch == ';')
                c->state = CS_EXT_PRE_NAME;
            else if (ch == ' ' || ch == '\t')
                c->state = CS_WS_SEMI;
            else if (ch == '\r')
                c->state = CS_SIZE_LF;
            else
                goto bad_line;
            break;
        case CS_EXT_QUOTED:
            if (ch == '"')
                c->state = CS_SIZE_END;
            else if (ch == '\\')
                c->state = CS_EXT_QP;
            else if (!IS(ch, C_VALUE))
                goto bad_line;
            break;
        case CS_EXT_QP:
            if (!IS(ch, C_VALUE))
                goto bad_line;
            c->state = CS_EXT_QUOTED;
            break;
        case CS_SIZE_LF:
            if (ch != '\n')
                goto bare_cr;
            if (++c->_line_bytes > H1P_CHUNK_MAX_LINE)
                goto line_too_long;
            c->state = c->remaining == 0 ? CS_TR_START : CS_DATA;
            c->_n_digits = 0;
            c->_line_bytes = 0;
            continue;
        case CS_DATA_CR:
            if (ch != '\r')
                goto fail_data_end;
            if (i + 1 < len && buf[i + 1] == '\n') {
                i++;
                c->state = CS_SIZE;
                continue;
            }
            c->state = CS_DATA_LF;
            continue;
        case CS_DATA_LF:
            if (ch != '\n')
                goto fail_data_end;
            c->state = CS_SIZE;
            continue;
        case CS_TR_START:
            if (ch == '\r')
                c->state = CS_END_LF;
            else if (IS(ch, C_TCHAR))
                c->state = CS_TR_NAME;
            else
                goto bad_trailer;
            goto count_trailer;
        case CS_TR_NAME:
            if (ch == ':')
                c->state = CS_TR_VAL;
            else if (!IS(ch, C_TCHAR))
                goto bad_trailer;
            goto count_trailer;
        case CS_TR_VAL:
            if (ch == '\r')
                c->state = CS_TR_LF;
            else if (!IS(ch, C_VALUE))
                goto bad_trailer;
            goto count_trailer;
        case CS_TR_LF:
            if (ch != '\n')
                goto bare_cr;
            c->state = CS_TR_START;
            goto count_trailer;
        case CS_END_LF:
            if (ch != '\n')
                goto bare_cr;
            if (++c->trailer_bytes > H1P_CHUNK_MAX_TRAILER)
                goto trailer_too_large;
            c->state = CS_DONE;
            c->done = 1;
            return (ssize_t)(i + 1);
        default:
            c->error = H1P_BAD;
            c->reason = "bad decoder state";
            return -1;
        }
        /* a chunk-size line byte */
        if (++c->_line_bytes > H1P_CHUNK_MAX_LINE)
            goto line_too_long;
        continue;
    count_trailer:
        if (++c->trailer_bytes > H1P_CHUNK_MAX_TRAILER)
            goto trailer_too_large;
    }
    return (ssize_t)i;

trailer_too_large:
    c->error = H1P_HEAD_TOO_LARGE;
    c->reason = "trailer section too large";
    return -1;
line_too_long:
    c->reason = "chunk-size line too long";
    goto bad;
bad_size:
    c->reason = "chunk size not 1..15 hex digits";
    goto bad;
bad_line:
    c->reason = "malformed chunk-size line";
    goto bad;
bare_cr:
    c->reason = "bare CR";
    goto bad;
fail_data_end:
    c->reason = "chunk data not followed by CRLF";
    goto bad;
bad_trailer:
    c->reason = "malformed trailer field";
bad:
    c->error = H1P_BAD;
    return -1;
}

int h1p_error_status(enum h1p_error e)
{
    switch (e) {
    case H1P_OK:
        return 0;
    case H1P_URI_TOO_LONG:
        return 414;
    case H1P_HEAD_TOO_LARGE:
    case H1P_TOO_MANY_HEADERS:
        return 431;
    case H1P_BAD_VERSION:
        return 505;
    case H1P_NOT_IMPLEMENTED:
        return 501;
    case H1P_BAD:
    case H1P_N_ERRORS:
        break;
    }
    return 400;
}

const char *h1p_error_str(enum h1p_error e)
{
    static const char *const names[H1P_N_ERRORS] = {
        [H1P_OK] = "ok",
        [H1P_BAD] = "bad",
        [H1P_URI_TOO_LONG] = "uri_too_long",
        [H1P_HEAD_TOO_LARGE] = "head_too_large",
        [H1P_TOO_MANY_HEADERS] = "too_many_headers",
        [H1P_BAD_VERSION] = "bad_version",
        [H1P_NOT_IMPLEMENTED] = "not_implemented",
    };
    return (unsigned)e < H1P_N_ERRORS ? names[e] : "unknown";
}
