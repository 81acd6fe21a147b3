/*
 * fuzz_h1_chunked.c: libFuzzer target for h1p_chunked_feed().
 *
 * The input is decoded in one read, byte by byte, and in pieces of sizes drawn
 * from a generator seeded by the input; the outcome (bytes consumed, done or
 * error, the body) must be the same each time, every call must make progress
 * and report its data span inside the bytes it consumed. A decoded body is
 * encoded again with other chunk sizes and must decode to itself.
 */
#include "fuzz_common.h"

#include <stdint.h>

struct outcome {
    ssize_t consumed; /* -1: error */
    int done;
    enum h1p_error error;
    const char *reason;
    size_t body_len;
};

/* Decodes data[0..size) in pieces: piece == 0 one read, else sizes from *seed. */
static void decode(const uint8_t *data, size_t size, size_t piece, uint64_t seed, char *body,
                   struct outcome *o)
{
    struct h1p_chunked c;
    size_t pos = 0;

    h1p_chunked_init(&c);
    memset(o, 0, sizeof(*o));
    while (pos < size && !c.done) {
        size_t avail = size - pos;
        if (piece) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            size_t want = piece == 1 ? 1 : 1 + (size_t)(seed % piece);
            if (want < avail)
                avail = want;
        }
        char *b = fz_copy(data + pos, avail);
        size_t off = 0;
        while (off < avail && !c.done) {
            size_t doff = 99, dlen = 99;
            ssize_t k = h1p_chunked_feed(&c, b + off, avail - off, &doff, &dlen);
            if (k < 0) {
                CHECK(k == -1 && c.error != H1P_OK && c.reason != NULL);
                o->consumed = -1;
                o->error = c.error;
                o->reason = c.reason;
                free(b);
                return;
            }
            CHECK(k > 0 && (size_t)k <= avail - off); /* progress, within the input */
            CHECK(doff + dlen <= (size_t)k && (dlen == 0 || doff < (size_t)k));
            memcpy(body + o->body_len, b + off + doff, dlen);
            o->body_len += dlen;
            off += (size_t)k;
        }
        pos += off;
        free(b);
    }
    o->consumed = (ssize_t)pos;
    o->done = c.done;
    CHECK(c.trailer_bytes <= H1P_CHUNK_MAX_TRAILER);
    CHECK(o->body_len <= pos);
    if (c.done) {
        size_t doff, dlen;
        CHECK(h1p_chunked_feed(&c, "0\r\n", 3, &doff, &dlen) == 0 && dlen == 0);
    } else {
        CHECK(pos == size);
    }
}

static void same(const struct outcome *a, const char *ba, const struct outcome *b, const char *bb)
{
    CHECK(a->consumed == b->consumed && a->done == b->done && a->error == b->error);
    if (a->consumed < 0) {
        CHECK(strcmp(a->reason, b->reason) == 0);
        return;
    }
    CHECK(a->body_len == b->body_len && memcmp(ba, bb, a->body_len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *b1 = malloc(size + 1), *b2 = malloc(size + 1);
    struct outcome o1, o2;
    uint64_t seed = 0x2545f4914f6cdd1dULL ^ size;

    CHECK(b1 && b2);
    for (size_t i = 0; i < size && i < 32; i++)
        seed = (seed ^ data[i]) * 0x100000001b3ULL;
    decode(data, size, 0, seed, b1, &o1);
    decode(data, size, 1, seed, b2, &o2);
    same(&o1, b1, &o2, b2);
    decode(data, size, 7, seed, b2, &o2);
    same(&o1, b1, &o2, b2);
    decode(data, size, 300, seed, b2, &o2);
    same(&o1, b1, &o2, b2);

    if (o1.done) {
        /* re-encode with chunk sizes from the seed, with an extension and a trailer */
        size_t cap = o1.body_len * 8 + 64, n = 0, pos = 0;
        char *enc = malloc(cap), *b3 = malloc(o1.body_len + 1);
        CHECK(enc && b3);
        while (pos < o1.body_len) {
            size_t k = 1 + (size_t)(seed % 37);
            seed = seed * 6364136223846793005ULL + 1;
            if (k > o1.body_len - pos)
                k = o1.body_len - pos;
            n += (size_t)snprintf(enc + n, cap - n,
                                  (seed >> 33) & 1 ? "%zx;e=\"v\"\r\n" : "%zX\r\n", k);
            memcpy(enc + n, b1 + pos, k);
            n += k;
            memcpy(enc + n, "\r\n", 2);
            n += 2;
            pos += k;
        }
        n += (size_t)snprintf(enc + n, cap - n, "0\r\nT: x\r\n\r\n");
        struct outcome o3;
        decode((const uint8_t *)enc, n, 5, seed, b3, &o3);
        CHECK(o3.done && o3.consumed == (ssize_t)n && o3.body_len == o1.body_len);
        CHECK(memcmp(b3, b1, o1.body_len) == 0);
        free(enc);
        free(b3);
    }
    free(b1);
    free(b2);
    return 0;
}
