/*
 * fuzz_common.h: helpers shared by the h1parse libFuzzer targets.
 *
 * Inputs are copied into heap buffers of exactly the parsed length, so that ASan
 * reports a read past the end even when the parse covers only a prefix.
 */
#ifndef CUTOVER_FUZZ_COMMON_H
#define CUTOVER_FUZZ_COMMON_H

#include "../../proxy/h1parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The same parser without SIMD (fuzz_scalar.c). */
ssize_t scalar_h1p_parse_request(const char *buf, size_t len, const struct h1p_limits *lim,
                                 struct h1p_request *req, struct h1p_header *hdrs, size_t max);
ssize_t scalar_h1p_parse_response(const char *buf, size_t len, size_t max_head,
                                  struct h1p_response *resp, struct h1p_header *hdrs, size_t max);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* An exact-size heap copy of data[0..n) (one byte for n == 0, never read). */
static inline char *fz_copy(const unsigned char *data, size_t n)
{
    char *b = malloc(n ? n : 1);
    CHECK(b != NULL);
    if (n)
        memcpy(b, data, n);
    return b;
}

static inline int fz_in(const char *buf, size_t len, const char *p, size_t n)
{
    return p >= buf && n <= len && p <= buf + len - n;
}

static inline int fz_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Field invariants: tchar names, values without CTL (but HTAB) or DEL, trimmed. */
static inline void fz_check_fields(const char *buf, size_t len, const struct h1p_header *h,
                                   size_t n)
{
    for (size_t i = 0; i < n; i++) {
        CHECK(fz_in(buf, len, h[i].name, h[i].name_len) && h[i].name_len > 0);
        CHECK(fz_in(buf, len, h[i].value, h[i].value_len));
        CHECK(h[i].name + h[i].name_len < h[i].value || h[i].value_len == 0);
        for (size_t k = 0; k < h[i].name_len; k++)
            CHECK(fz_tchar((unsigned char)h[i].name[k]));
        CHECK(h[i].name[h[i].name_len] == ':');
        for (size_t k = 0; k < h[i].value_len; k++) {
            unsigned char c = (unsigned char)h[i].value[k];
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        if (h[i].value_len) {
            CHECK(h[i].value[0] != ' ' && h[i].value[0] != '\t');
            CHECK(h[i].value[h[i].value_len - 1] != ' ' && h[i].value[h[i].value_len - 1] != '\t');
        }
        if (i > 0)
            CHECK(h[i].name > h[i - 1].value);
    }
}

/* Prefix lengths to try: all of them for short inputs, else about 64 spread
 * evenly plus the neighbourhood of <hot> (the end of the head when there is one). */
static inline size_t fz_next_prefix(size_t k, size_t len, size_t hot)
{
    size_t step;
    if (len <= 256)
        return k + 1;
    if (hot && k + 3 >= hot && k <= hot + 2)
        return k + 1;
    step = len / 64 + 1;
    if (hot > k + 3 && hot < k + step)
        return hot - 3;
    return k + step;
}

#endif
