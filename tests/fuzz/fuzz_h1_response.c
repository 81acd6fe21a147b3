/*
 * fuzz_h1_response.c: libFuzzer target for h1p_parse_response() and
 * h1p_response_body(): result invariants, SIMD == scalar, incremental ==
 * one-shot, and the body framing rules.
 */
#include "fuzz_common.h"

#include <stdint.h>

#define MAXH 48

static void check_response(const char *buf, size_t len, size_t max_head, size_t max, ssize_t ret,
                           const struct h1p_response *r, const struct h1p_header *h)
{
    CHECK(ret == -1 || ret == -2 || (ret > 0 && (size_t)ret <= len));
    if (ret == -1) {
        CHECK(r->error > H1P_OK && r->error < H1P_N_ERRORS && r->reason != NULL);
        CHECK(r->error != H1P_URI_TOO_LONG && r->error != H1P_NOT_IMPLEMENTED);
        return;
    }
    if (ret == -2) {
        CHECK(len <= max_head);
        return;
    }
    size_t n = (size_t)ret;
    CHECK(n <= max_head && n >= 16 && memcmp(buf + n - 2, "\r\n", 2) == 0);
    CHECK(memcmp(buf, "HTTP/1.", 7) == 0 && buf[8] == ' ');
    CHECK(r->minor == buf[7] - '0' && (r->minor == 0 || r->minor == 1));
    CHECK(r->status >= 100 && r->status <= 599 && buf[12] == ' ');
    CHECK(r->status == (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0'));
    CHECK(memcmp(r->reason_phrase + r->reason_phrase_len, "\r\n", 2) == 0);
    CHECK(fz_in(buf, n, r->reason_phrase, r->reason_phrase_len) && r->reason_phrase == buf + 13);
    CHECK(r->content_length >= -1 && r->content_length <= H1P_MAX_CONTENT_LENGTH);
    CHECK(r->chunked == 0 || (r->chunked == 1 && r->content_length == -1 && r->minor == 1));
    CHECK(r->keep_alive == 0 || r->keep_alive == 1);
    CHECK(r->n_headers <= max);
    fz_check_fields(buf, n, h, r->n_headers);

    enum h1p_body b = h1p_response_body(r, 0);
    CHECK(h1p_response_body(r, 1) == H1P_BODY_NONE);
    if (r->status < 200 || r->status == 204 || r->status == 304)
        CHECK(b == H1P_BODY_NONE);
    else if (r->chunked)
        CHECK(b == H1P_BODY_CHUNKED);
    else if (r->content_length >= 0)
        CHECK(b == H1P_BODY_LENGTH);
    else
        CHECK(b == H1P_BODY_CLOSE);
}

static int same(const char *ba, ssize_t ra, const struct h1p_response *a,
                const struct h1p_header *ha, const char *bb, ssize_t rb,
                const struct h1p_response *b, const struct h1p_header *hb)
{
    if (ra != rb)
        return 0;
    if (ra == -1)
        return a->error == b->error && strcmp(a->reason, b->reason) == 0;
    if (ra == -2)
        return 1;
    if (a->minor != b->minor || a->status != b->status ||
        a->reason_phrase - ba != b->reason_phrase - bb ||
        a->reason_phrase_len != b->reason_phrase_len || a->content_length != b->content_length ||
        a->chunked != b->chunked || a->keep_alive != b->keep_alive ||
        a->other_coding != b->other_coding || a->n_headers != b->n_headers)
        return 0;
    for (size_t i = 0; i < a->n_headers; i++)
        if (ha[i].name - ba != hb[i].name - bb || ha[i].name_len != hb[i].name_len ||
            ha[i].value - ba != hb[i].value - bb || ha[i].value_len != hb[i].value_len)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct h1p_header h[MAXH], h2[MAXH];
    struct h1p_response r, r2;
    const size_t wide = 1 << 20;
    char *buf = fz_copy(data, size);
    ssize_t ret, ret2;

    ret = h1p_parse_response(buf, size, wide, &r, h, MAXH);
    check_response(buf, size, wide, MAXH, ret, &r, h);
    ret2 = scalar_h1p_parse_response(buf, size, wide, &r2, h2, MAXH);
    CHECK(same(buf, ret, &r, h, buf, ret2, &r2, h2));

    int failed = 0;
    size_t hot = ret > 0 ? (size_t)ret : 0;
    for (size_t k = 0; k < size; k = fz_next_prefix(k, size, hot)) {
        char *pb = fz_copy(data, k);
        ssize_t pr = h1p_parse_response(pb, k, wide, &r2, h2, MAXH);
        check_response(pb, k, wide, MAXH, pr, &r2, h2);
        if (ret > 0 && k < (size_t)ret)
            CHECK(pr == -2);
        else if (ret > 0)
            CHECK(same(buf, ret, &r, h, pb, pr, &r2, h2));
        else if (ret == -2)
            CHECK(pr == -2);
        else {
            CHECK(pr == -2 || (pr == -1 && r2.error == r.error));
            if (failed)
                CHECK(pr == -1);
            failed |= pr == -1;
        }
        free(pb);
    }

    /* a tight max_head and field count: an error or the same success */
    size_t max_head = 16 + (size ? (size_t)data[size / 2] * 3 : 0);
    size_t max = size ? data[0] % 10 : 0;
    ret2 = h1p_parse_response(buf, size, max_head, &r2, h2, max);
    check_response(buf, size, max_head, max, ret2, &r2, h2);
    if (ret2 > 0)
        CHECK(same(buf, ret, &r, h, buf, ret2, &r2, h2));
    free(buf);
    return 0;
}
