/*
 * fuzz_h1_request.c: libFuzzer target for h1p_parse_request().
 *
 * Per input: the invariants of a result (lengths within bounds, pointers inside
 * the head, fields well-formed, framing consistent); the SIMD and scalar builds
 * agree; every prefix (a sample for long inputs) gives -2 and then the one-shot
 * result (incremental == one-shot); tight limits derived from the input only
 * ever turn a result into an error, never into a different success.
 *
 *   make fuzz                         # all targets, FUZZ_SECONDS each
 *   build/fuzz/fuzz_h1_request -dict=tests/fuzz/http.dict build/fuzz/corpus/fuzz_h1_request \
 *       tests/fuzz/corpus/fuzz_h1_request
 */
#include "fuzz_common.h"

#include <stdint.h>

#define MAXH 48

static const struct h1p_limits wide = {.max_head = 1 << 20, .max_line = 1 << 20, .max_headers = 40};

static void check_request(const char *buf, size_t len, const struct h1p_limits *lim, size_t max,
                          ssize_t ret, const struct h1p_request *r, const struct h1p_header *h)
{
    CHECK(ret == -1 || ret == -2 || (ret > 0 && (size_t)ret <= len));
    if (ret == -1) {
        CHECK(r->error > H1P_OK && r->error < H1P_N_ERRORS && r->reason != NULL);
        return;
    }
    if (ret == -2) {
        CHECK(len <= lim->max_head);
        return;
    }
    size_t n = (size_t)ret;
    CHECK(n <= lim->max_head && n >= 16 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
    CHECK(r->error == H1P_OK);
    CHECK(fz_in(buf, n, r->method, r->method_len) && r->method_len > 0);
    for (size_t i = 0; i < r->method_len; i++)
        CHECK(fz_tchar((unsigned char)r->method[i]));
    CHECK(r->method[r->method_len] == ' ' && r->target == r->method + r->method_len + 1);
    CHECK(fz_in(buf, n, r->target, r->target_len) && r->target_len > 0);
    CHECK(r->target_len <= lim->max_line);
    for (size_t i = 0; i < r->target_len; i++) {
        unsigned char c = (unsigned char)r->target[i];
        CHECK(c > 0x20 && c != 0x7f && c != '#');
    }
    if (r->authority != NULL) {
        CHECK(r->authority > r->target + 3 && r->authority_len > 0);
        CHECK(r->authority + r->authority_len <= r->target + r->target_len);
        CHECK(memcmp(r->authority - 3, "://", 3) == 0);
        for (size_t i = 0; i < r->authority_len; i++)
            CHECK(r->authority[i] != '@' && r->authority[i] != '/' && r->authority[i] != '?');
    }
    CHECK(r->minor == 0 || r->minor == 1);
    CHECK(memcmp(r->target + r->target_len, " HTTP/1.", 8) == 0);
    CHECK(r->target[r->target_len + 8] == '0' + r->minor);
    CHECK(memcmp(r->target + r->target_len + 9, "\r\n", 2) == 0);
    CHECK(r->content_length >= -1 && r->content_length <= H1P_MAX_CONTENT_LENGTH);
    CHECK(r->chunked == 0 || (r->chunked == 1 && r->content_length == -1 && r->minor == 1));
    CHECK(r->keep_alive == 0 || r->keep_alive == 1);
    CHECK(r->n_headers <= max && r->n_headers <= lim->max_headers);
    fz_check_fields(buf, n, h, r->n_headers);
    if (r->host == NULL) {
        CHECK(r->minor == 0);
    } else {
        int found = 0;
        for (size_t i = 0; i < r->n_headers; i++)
            found |= h[i].name_len == 4 && strncasecmp(h[i].name, "host", 4) == 0 &&
                     h[i].value == r->host && h[i].value_len == r->host_len;
        CHECK(found);
    }
}

/* Same result, comparing pointers as offsets from each buffer. */
static int same(const char *ba, ssize_t ra, const struct h1p_request *a,
                const struct h1p_header *ha, const char *bb, ssize_t rb,
                const struct h1p_request *b, const struct h1p_header *hb)
{
#define OFF(base, p) ((p) ? (p) - (base) : -1)
    if (ra != rb)
        return 0;
    if (ra == -1)
        return a->error == b->error && strcmp(a->reason, b->reason) == 0;
    if (ra == -2)
        return 1;
    if (OFF(ba, a->method) != OFF(bb, b->method) || a->method_len != b->method_len ||
        OFF(ba, a->target) != OFF(bb, b->target) || a->target_len != b->target_len ||
        OFF(ba, a->authority) != OFF(bb, b->authority) || a->authority_len != b->authority_len ||
        a->minor != b->minor || a->content_length != b->content_length ||
        a->chunked != b->chunked || a->keep_alive != b->keep_alive ||
        a->expect_continue != b->expect_continue || a->upgrade != b->upgrade ||
        OFF(ba, a->host) != OFF(bb, b->host) || a->host_len != b->host_len ||
        a->n_headers != b->n_headers)
        return 0;
    for (size_t i = 0; i < a->n_headers; i++)
        if (OFF(ba, ha[i].name) != OFF(bb, hb[i].name) || ha[i].name_len != hb[i].name_len ||
            OFF(ba, ha[i].value) != OFF(bb, hb[i].value) || ha[i].value_len != hb[i].value_len)
            return 0;
    return 1;
#undef OFF
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct h1p_header h[MAXH], h2[MAXH];
    struct h1p_request r, r2;
    char *buf = fz_copy(data, size);
    ssize_t ret, ret2;

    ret = h1p_parse_request(buf, size, &wide, &r, h, MAXH);
    check_request(buf, size, &wide, MAXH, ret, &r, h);
    ret2 = scalar_h1p_parse_request(buf, size, &wide, &r2, h2, MAXH);
    CHECK(same(buf, ret, &r, h, buf, ret2, &r2, h2));

    /* incremental == one-shot */
    {
        int failed = 0;
        size_t hot = ret > 0 ? (size_t)ret : 0;
        for (size_t k = 0; k < size; k = fz_next_prefix(k, size, hot)) {
            char *pb = fz_copy(data, k);
            ssize_t pr = h1p_parse_request(pb, k, &wide, &r2, h2, MAXH);
            check_request(pb, k, &wide, MAXH, pr, &r2, h2);
            if (ret > 0 && k < (size_t)ret)
                CHECK(pr == -2);
            else if (ret > 0)
                CHECK(same(buf, ret, &r, h, pb, pr, &r2, h2));
            else if (ret == -2)
                CHECK(pr == -2);
            else {
                CHECK(pr == -2 || (pr == -1 && r2.error == r.error));
                if (failed)
                    CHECK(pr == -1); /* once an error is known it stays */
                failed |= pr == -1;
            }
            free(pb);
        }
    }

    /* tight limits from the input: an error or the same success */
    {
        uint64_t x = 0x9e3779b97f4a7c15ULL ^ size;
        for (size_t i = 0; i < size && i < 64; i++)
            x = (x ^ data[i]) * 0x100000001b3ULL;
        struct h1p_limits tight = {.max_head = 16 + (size_t)(x % (size + 16)),
                                   .max_line = 1 + (size_t)((x >> 20) % 80),
                                   .max_headers = (size_t)((x >> 30) % 12)};
        size_t max = (size_t)((x >> 40) % 14);
        ret2 = h1p_parse_request(buf, size, &tight, &r2, h2, max);
        check_request(buf, size, &tight, max, ret2, &r2, h2);
        if (ret2 > 0)
            CHECK(same(buf, ret, &r, h, buf, ret2, &r2, h2));
        if (ret2 == -2)
            CHECK(ret == -2); /* tighter limits never turn an answer into "more" */
        struct h1p_request r3;
        static struct h1p_header h3[MAXH];
        ssize_t ret3 = scalar_h1p_parse_request(buf, size, &tight, &r3, h3, max);
        CHECK(same(buf, ret2, &r2, h2, buf, ret3, &r3, h3));
    }
    free(buf);
    return 0;
}
