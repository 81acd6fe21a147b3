/*
 * weights.c: validation of live weights (see weights.h for the rules).
 */
#include "weights.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ESC_MAX 40 /* bytes of a field or value quoted in a message */

/*
 * Copies <len> bytes of <s> into <buf> as printable ASCII: '"', '\\' and bytes
 * outside 0x20..0x7e become \xNN; more than ESC_MAX input bytes end in "...".
 */
static const char *esc(const char *s, size_t len, char *buf, size_t buflen)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, o = 0;

    if (buflen == 0)
        return buf;
    for (i = 0; i < len && i < ESC_MAX; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            if (o + 1 >= buflen)
                break;
            buf[o++] = (char)c;
        } else {
            if (o + 4 >= buflen)
                break;
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    if (i < len && o + 3 < buflen) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    va_list ap;

    if (errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/*
 * Parses a plain decimal weight: one or more ASCII digits and nothing else.
 * Returns 0 with *<out> set, -1 if not a plain integer, -2 if above
 * CONF_MAX_WEIGHT (checked digit by digit, so no length overflows).
 */
static int parse_weight(const char *s, size_t len, uint32_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (len == 0)
        return -1;
    for (i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return -1;
    for (i = 0; i < len; i++) {
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > CONF_MAX_WEIGHT)
            return -2;
    }
    *out = (uint32_t)v;
    return 0;
}

int weights_from_hash(const char *const *fields, const size_t *flen, const char *const *values,
                      const size_t *vlen, size_t n, const struct snap_route *r, uint32_t *out,
                      char *err, size_t errlen)
{
    char f[ESC_MAX * 4 + 8], v[ESC_MAX * 4 + 8];
    int seen[CONF_MAX_TRACKS] = {0};
    uint64_t sum = 0;
    size_t i;

    if (errlen > 0)
        err[0] = '\0';
    if (r == NULL || out == NULL)
        return fail(err, errlen, "no route");
    if (n == 0)
        return fail(err, errlen, "route %s: empty hash", r->name);
    if (fields == NULL || flen == NULL || values == NULL || vlen == NULL)
        return fail(err, errlen, "route %s: no fields", r->name);
    for (i = 0; i < r->n_tracks; i++)
        out[i] = 0; /* missing from the hash: 0 (the hash is the whole split) */

    for (i = 0; i < n; i++) {
        int t = snap_track_index(r, fields[i], flen[i]);
        uint32_t w;
        int rc;

        if (t < 0)
            return fail(err, errlen, "route %s: field \"%s\": no such track", r->name,
                        esc(fields[i], flen[i], f, sizeof(f)));
        if (seen[t])
            return fail(err, errlen, "route %s: field \"%s\": given twice", r->name,
                        r->tracks[t].name);
        seen[t] = 1;
        rc = parse_weight(values[i], vlen[i], &w);
        if (rc == -1)
            return fail(err, errlen,
                        "route %s: field \"%s\": value \"%s\" is not a non-negative decimal "
                        "integer",
                        r->name, r->tracks[t].name, esc(values[i], vlen[i], v, sizeof(v)));
        if (rc == -2)
            return fail(err, errlen, "route %s: field \"%s\": value \"%s\" is above %u", r->name,
                        r->tracks[t].name, esc(values[i], vlen[i], v, sizeof(v)),
                        (unsigned)CONF_MAX_WEIGHT);
        out[t] = w;
    }

    /* A track without servers cannot serve: its weight does not count. */
    for (i = 0; i < r->n_tracks; i++)
        if (r->tracks[i].n_servers > 0)
            sum += out[i];
    if (sum == 0)
        return fail(err, errlen, "route %s: all weights are zero", r->name);
    return 0;
}

char *weights_format(const struct snap_route *r, const uint32_t *w, char *buf, size_t len)
{
    size_t i, o = 0;

    if (len == 0)
        return buf;
    buf[0] = '\0';
    for (i = 0; i < r->n_tracks && o < len; i++) {
        int m = snprintf(buf + o, len - o, "%s%s=%u", i ? "," : "", r->tracks[i].name,
                         (unsigned)(w != NULL ? w[i] : r->tracks[i].weight));
        if (m < 0)
            break;
        o += (size_t)m;
    }
    return buf;
}

char *weights_format_raw(const char *const *fields, const size_t *flen, const char *const *values,
                         const size_t *vlen, size_t n, char *buf, size_t len)
{
    char f[ESC_MAX * 4 + 8], v[ESC_MAX * 4 + 8];
    size_t i, o = 0;

    if (len == 0)
        return buf;
    buf[0] = '\0';
    for (i = 0; i < n && o < len; i++) {
        int m =
            snprintf(buf + o, len - o, "%s%s=%s", i ? "," : "",
                     esc(fields[i], flen[i], f, sizeof(f)), esc(values[i], vlen[i], v, sizeof(v)));
        if (m < 0)
            break;
        o += (size_t)m;
    }
    return buf;
}

int weights_equal(const struct snap_route *r, const uint32_t *w)
{
    size_t i;

    for (i = 0; i < r->n_tracks; i++)
        if (r->tracks[i].weight != w[i])
            return 0;
    return 1;
}
