/*
 * load.c: libconfig file -> struct conf, then conf_validate().
 *
 * The scalar keys of every block are described by declarative tables (struct conf_field: name,
 * type, target offset, bounds, default), in the style of nginx's command tables and Redis'
 * standardConfig. One loop, parse_group(), walks the members of a group: it refuses keys that are
 * not in the table, checks types and ranges, stores the values, and then applies the defaults of
 * the keys that were absent. Lists (listen, routes, tracks, servers) have small hand-written
 * parsers that call parse_group() on each element.
 *
 * The first error wins and reads "file:line: message". Every string is strdup'd, so the result
 * outlives the config_t, and conf_free() releases partial results on error paths.
 */
#include "conf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libconfig.h>

/* tests/unit/test_conf.c includes this file with failing allocators (failmalloc). */
#ifndef CONF_CALLOC
#define CONF_CALLOC(n, size) calloc((n), (size))
#endif
#ifndef CONF_STRDUP
#define CONF_STRDUP(s) strdup(s)
#endif

#define CONF_MAX_WORKERS 1024
#define CONF_MAX_NAME 64
#define CONF_MAX_FILE (16 * 1024 * 1024)
#define CONF_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The loader's state: where errors go and which file they name. */
struct ld {
    const char *path;
    char *err;
    size_t errlen;
};

enum conf_ftype {
    CONF_UINT = 0, /* unsigned; int or int64 in the file */
    CONF_MS,       /* unsigned milliseconds; int or int64 in the file */
    CONF_INT,      /* int; int or int64 in the file */
    CONF_DOUBLE,   /* double; float, int or int64 in the file */
    CONF_BOOL,     /* int 0/1; true or false in the file */
    CONF_STR,      /* char *, strdup'd, never empty */
    CONF_ADDR,     /* char * as written + struct conf_addr at <aux> */
    CONF_GROUP,    /* { ... } parsed with <sub> into the member at <offset>, then <hook> */
    CONF_LIST,     /* ( ... ) parsed by <hook>, which receives the enclosing struct */
    CONF_N_TYPES
};

#define CONF_REQUIRED 0x1u

struct conf_table;

/* Returns NULL when <s> is acceptable, else why it is not. */
typedef const char *conf_check_fn(const char *s);
/* Returns 0, or -1 with the error written through <ld>. */
typedef int conf_hook_fn(struct ld *ld, const config_setting_t *s, void *target);

struct conf_field {
    const char *name;
    const char *desc; /* for messages when <name> alone is vague, or NULL */
    enum conf_ftype type;
    size_t offset;                /* of the target in the struct the table describes */
    double min, max;              /* numbers: accepted range, inclusive */
    double def;                   /* numbers: value when absent */
    const char *sdef;             /* strings: value when absent (strdup'd), or NULL */
    unsigned flags;               /* CONF_REQUIRED */
    conf_check_fn *check;         /* strings: syntax check */
    size_t aux;                   /* CONF_ADDR: offset of the struct conf_addr */
    const struct conf_table *sub; /* CONF_GROUP: the group's own table */
    conf_hook_fn *hook;           /* CONF_GROUP: runs after the group; CONF_LIST: the parser */
};

struct conf_table {
    const char *what; /* for messages: "unknown key 'x' in <what>" */
    const struct conf_field *fields;
    size_t n;
};

#define NUM(S, F, T, LO, HI, DEF)                                                                  \
    {                                                                                              \
        .name = #F, .type = T, .offset = offsetof(struct S, F), .min = LO, .max = HI, .def = DEF   \
    }
#define NUM_REQ(S, F, T, LO, HI)                                                                   \
    {                                                                                              \
        .name = #F, .type = T, .offset = offsetof(struct S, F), .min = LO, .max = HI,              \
        .flags = CONF_REQUIRED                                                                     \
    }
#define STR_AS(NAME, DESC, S, F, DEF, CHECK, FLAGS)                                                \
    {                                                                                              \
        .name = NAME, .desc = DESC, .type = CONF_STR, .offset = offsetof(struct S, F),             \
        .sdef = DEF, .check = CHECK, .flags = FLAGS                                                \
    }
#define STR(S, F, DEF, CHECK, FLAGS) STR_AS(#F, NULL, S, F, DEF, CHECK, FLAGS)
#define ADDR(S, F, A, DESC)                                                                        \
    {                                                                                              \
        .name = #F, .desc = DESC, .type = CONF_ADDR, .offset = offsetof(struct S, F),              \
        .aux = offsetof(struct S, A), .flags = CONF_REQUIRED                                       \
    }
#define GROUP(NAME, OFF, SUB, HOOK)                                                                \
    {                                                                                              \
        .name = NAME, .type = CONF_GROUP, .offset = OFF, .sub = SUB, .hook = HOOK                  \
    }
#define LIST(NAME, HOOK)                                                                           \
    {                                                                                              \
        .name = NAME, .type = CONF_LIST, .hook = HOOK                                              \
    }
#define TABLE(WHAT, FIELDS)                                                                        \
    {                                                                                              \
        WHAT, FIELDS, CONF_ARRAY_SIZE(FIELDS)                                                      \
    }

/* ---- errors ---------------------------------------------------------------------------------- */

/* Writes "file:line: message" into <err>; a <line> below 1 (no line known) prints as 1. */
__attribute__((format(printf, 5, 0))) static int verrf(char *err, size_t errlen, const char *file,
                                                       int line, const char *fmt, va_list ap)
{
    int n;

    if (err == NULL || errlen == 0)
        return -1;
    n = snprintf(err, errlen, "%s:%d: ", file ? file : "(config)", line > 0 ? line : 1);
    if (n >= 0 && (size_t)n < errlen)
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    return -1;
}

__attribute__((format(printf, 5, 6))) static int errf(char *err, size_t errlen, const char *file,
                                                      int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verrf(err, errlen, file, line, fmt, ap);
    va_end(ap);
    return -1;
}

/* Error about setting <s> (NULL: the file as a whole). Always returns -1. */
__attribute__((format(printf, 3, 4))) static int ld_err(struct ld *ld, const config_setting_t *s,
                                                        const char *fmt, ...)
{
    const char *file = ld->path;
    int line = 1;
    va_list ap;

    if (s != NULL) {
        if (config_setting_source_file(s) != NULL)
            file = config_setting_source_file(s);
        line = (int)config_setting_source_line(s);
    }
    va_start(ap, fmt);
    verrf(ld->err, ld->errlen, file, line, fmt, ap);
    va_end(ap);
    return -1;
}

static int ld_oom(struct ld *ld, const config_setting_t *s)
{
    return ld_err(ld, s, "out of memory");
}

static const char *type_name(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_GROUP:
        return "a group";
    case CONFIG_TYPE_INT:
        return "an integer";
    case CONFIG_TYPE_INT64:
        return "a 64-bit integer";
    case CONFIG_TYPE_FLOAT:
        return "a float";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_ARRAY:
        return "an array";
    case CONFIG_TYPE_LIST:
        return "a list";
    default:
        return "nothing";
    }
}

/* "'name'" for a named setting, "element N of 'parent'" for a list element. */
static const char *setting_label(const config_setting_t *s, char *buf, size_t len)
{
    const config_setting_t *p = config_setting_parent(s);

    if (config_setting_name(s) != NULL)
        snprintf(buf, len, "'%s'", config_setting_name(s));
    else if (p != NULL && config_setting_name(p) != NULL)
        snprintf(buf, len, "element %d of '%s'", config_setting_index(s) + 1,
                 config_setting_name(p));
    else
        snprintf(buf, len, "element %d", config_setting_index(s) + 1);
    return buf;
}

static int type_err(struct ld *ld, const config_setting_t *s, const char *expected)
{
    char label[96];

    return ld_err(ld, s, "wrong type: %s is %s, expected %s",
                  setting_label(s, label, sizeof(label)), type_name(s), expected);
}

static int is_int(const config_setting_t *s)
{
    return config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64;
}

/* ---- syntax checks shared by the loader and conf_validate() ---------------------------------- */

static const char *check_name(const char *s)
{
    size_t n = strlen(s);

    if (n > CONF_MAX_NAME)
        return "longer than 64 characters";
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
            return "use only letters, digits, '_', '-' and '.'";
    return NULL;
}

/* RFC 9110 token: header field and cookie names. */
static const char *check_token(const char *s)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
            return "not a valid header or cookie name (RFC 9110 token)";
    return NULL;
}

/* No whitespace or control characters: Redis key prefix, instance id. */
static const char *check_word(const char *s)
{
    for (; *s; s++)
        if (!isgraph((unsigned char)*s))
            return "must not contain spaces or control characters";
    return NULL;
}

/* "*", "name.example" or "*.example": labels of letters, digits, '-' and '_'. */
static const char *check_host(const char *s)
{
    static const char why[] = "expected \"*\", an exact host name or \"*.suffix\"";
    size_t label = 0;

    if (strcmp(s, "*") == 0)
        return NULL;
    if (strncmp(s, "*.", 2) == 0)
        s += 2;
    if (strlen(s) > 253)
        return "host name longer than 253 characters";
    for (; *s; s++) {
        if (*s == '.') {
            if (label == 0)
                return why;
            label = 0;
        } else if (isalnum((unsigned char)*s) || *s == '-' || *s == '_') {
            if (++label > 63)
                return "host label longer than 63 characters";
        } else {
            return why;
        }
    }
    return label == 0 ? why : NULL;
}

static const char *check_path_prefix(const char *s)
{
    if (s[0] != '/')
        return "must start with \"/\"";
    for (; *s; s++)
        if (!isgraph((unsigned char)*s))
            return "must not contain spaces or control characters";
    return NULL;
}

static const char *check_log_level(const char *s)
{
    static const char *const levels[] = {"err", "warn", "info", "debug"};

    for (size_t i = 0; i < CONF_ARRAY_SIZE(levels); i++)
        if (strcmp(s, levels[i]) == 0)
            return NULL;
    return "expected \"err\", \"warn\", \"info\" or \"debug\"";
}

static const char *check_action(const char *s)
{
    return strcmp(s, "snapback") == 0 ? NULL : "expected \"snapback\"";
}

/* ---- addresses ------------------------------------------------------------------------------- */

/* conf_parse_addr() with a reason for the caller's message. */
static int parse_addr(const char *s, struct conf_addr *out, const char **why)
{
    struct conf_addr a;
    const char *colon, *port;
    size_t hlen;
    unsigned long p = 0;
    unsigned char buf[sizeof(struct in6_addr)];

    memset(&a, 0, sizeof(a));
    *why = "expected \"ip:port\", \"[ipv6]:port\", \"localhost:port\" or \"*:port\"";
    if (s == NULL)
        return -1;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');

        if (close == NULL || close[1] != ':')
            return -1;
        hlen = (size_t)(close - s - 1);
        if (hlen == 0 || hlen >= sizeof(a.host))
            return -1;
        memcpy(a.host, s + 1, hlen);
        if (inet_pton(AF_INET6, a.host, buf) != 1) {
            *why = "not a numeric IPv6 address";
            return -1;
        }
        a.family = AF_INET6;
        port = close + 2;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || colon == s)
            return -1;
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen) != NULL) {
            *why = "an IPv6 address needs brackets: \"[::1]:80\"";
            return -1;
        }
        if (hlen >= sizeof(a.host)) {
            *why = "host is not a numeric IPv4 address (no DNS)";
            return -1;
        }
        memcpy(a.host, s, hlen);
        if (strcmp(a.host, "localhost") == 0)
            strcpy(a.host, "127.0.0.1");
        else if (strcmp(a.host, "*") == 0)
            strcpy(a.host, "0.0.0.0");
        if (inet_pton(AF_INET, a.host, buf) != 1) {
            *why = "host is not a numeric IPv4 address, localhost or * (no DNS)";
            return -1;
        }
        a.family = AF_INET;
        port = colon + 1;
    }
    if (*port == '\0') {
        *why = "missing port";
        return -1;
    }
    for (const char *d = port; *d; d++) {
        if (!isdigit((unsigned char)*d) || d - port >= 5) {
            *why = "port must be a number from 1 to 65535";
            return -1;
        }
        p = p * 10 + (unsigned long)(*d - '0');
    }
    if (p < 1 || p > 65535) {
        *why = "port must be a number from 1 to 65535";
        return -1;
    }
    a.port = (uint16_t)p;
    *out = a;
    return 0;
}

int conf_parse_addr(const char *s, struct conf_addr *out)
{
    const char *why;

    return parse_addr(s, out, &why);
}

/* ---- the generic group walker ---------------------------------------------------------------- */

static void *at(void *base, size_t off)
{
    return (char *)base + off;
}

static int parse_group(struct ld *ld, const config_setting_t *g, const struct conf_table *t,
                       void *base);

static void known_keys(const struct conf_table *t, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < t->n && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", t->fields[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static int parse_field(struct ld *ld, const config_setting_t *s, const struct conf_field *f,
                       void *base)
{
    char label[96];
    const char *str, *why;

    switch (f->type) {
    case CONF_UINT:
    case CONF_MS:
    case CONF_INT: {
        long long v;

        if (!is_int(s))
            return type_err(ld, s, "an integer");
        v = config_setting_get_int64(s);
        if ((double)v < f->min || (double)v > f->max)
            return ld_err(ld, s, "value out of range: '%s' = %lld, expected %.0f to %.0f", f->name,
                          v, f->min, f->max);
        if (f->type == CONF_INT)
            *(int *)at(base, f->offset) = (int)v;
        else
            *(unsigned *)at(base, f->offset) = (unsigned)v;
        return 0;
    }
    case CONF_DOUBLE: {
        double v;

        if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
            v = config_setting_get_float(s);
        else if (is_int(s))
            v = (double)config_setting_get_int64(s);
        else
            return type_err(ld, s, "a number");
        if (!isfinite(v) || v < f->min || v > f->max)
            return ld_err(ld, s, "value out of range: '%s' = %g, expected %g to %g", f->name, v,
                          f->min, f->max);
        *(double *)at(base, f->offset) = v;
        return 0;
    }
    case CONF_BOOL:
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
            return type_err(ld, s, "a boolean (true or false)");
        *(int *)at(base, f->offset) = config_setting_get_bool(s) ? 1 : 0;
        return 0;
    case CONF_STR:
    case CONF_ADDR: {
        char *copy;

        if (config_setting_type(s) != CONFIG_TYPE_STRING)
            return type_err(ld, s, "a string");
        str = config_setting_get_string(s);
        if (str[0] == '\0')
            return ld_err(ld, s, "'%s' must not be empty", f->name);
        if (f->check != NULL && (why = f->check(str)) != NULL)
            return ld_err(ld, s, "bad %s \"%s\": %s", f->desc ? f->desc : f->name, str, why);
        if (f->type == CONF_ADDR && parse_addr(str, at(base, f->aux), &why) == -1)
            return ld_err(ld, s, "bad %s \"%s\": %s", f->desc ? f->desc : f->name, str, why);
        if ((copy = CONF_STRDUP(str)) == NULL)
            return ld_oom(ld, s);
        *(char **)at(base, f->offset) = copy;
        return 0;
    }
    case CONF_GROUP:
        if (!config_setting_is_group(s)) {
            snprintf(label, sizeof(label), "a group: %s = { ... }", f->name);
            return type_err(ld, s, label);
        }
        if (parse_group(ld, s, f->sub, at(base, f->offset)) == -1)
            return -1;
        return f->hook ? f->hook(ld, s, at(base, f->offset)) : 0;
    case CONF_LIST:
        return f->hook(ld, s, base);
    case CONF_N_TYPES:
        break;
    }
    return ld_err(ld, s, "internal error: bad field type for '%s'", f->name);
}

/* Defaults of the keys not in <seen> (all keys when <seen> is NULL). Returns 0 or -1. */
static int apply_defaults(struct ld *ld, const config_setting_t *g, const struct conf_table *t,
                          const unsigned char *seen, void *base)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct conf_field *f = &t->fields[i];

        if (seen != NULL && seen[i])
            continue;
        if (seen != NULL && (f->flags & CONF_REQUIRED))
            return ld_err(ld, g, "missing required key '%s' in %s", f->name, t->what);
        switch (f->type) {
        case CONF_UINT:
        case CONF_MS:
            *(unsigned *)at(base, f->offset) = (unsigned)f->def;
            break;
        case CONF_INT:
        case CONF_BOOL:
            *(int *)at(base, f->offset) = (int)f->def;
            break;
        case CONF_DOUBLE:
            *(double *)at(base, f->offset) = f->def;
            break;
        case CONF_STR:
            if (f->sdef != NULL && (*(char **)at(base, f->offset) = CONF_STRDUP(f->sdef)) == NULL)
                return ld_oom(ld, g);
            break;
        case CONF_GROUP:
            if (apply_defaults(ld, g, f->sub, NULL, at(base, f->offset)) == -1)
                return -1;
            break;
        case CONF_ADDR:
        case CONF_LIST:
        case CONF_N_TYPES:
            break;
        }
    }
    return 0;
}

/*
 * The one loop: every member of group <g> must name a field of <t>; its value is type-checked,
 * range-checked and stored into <base>. Absent keys get their defaults, or an error when required.
 */
static int parse_group(struct ld *ld, const config_setting_t *g, const struct conf_table *t,
                       void *base)
{
    unsigned char seen[32] = {0};
    int n = config_setting_length(g);

    if (t->n > sizeof(seen))
        return ld_err(ld, g, "internal error: table %s too large", t->what);
    for (int i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(m);
        size_t k;

        for (k = 0; k < t->n; k++)
            if (name != NULL && strcmp(name, t->fields[k].name) == 0)
                break;
        if (k == t->n) {
            char known[256];

            known_keys(t, known, sizeof(known));
            return ld_err(ld, m, "unknown key '%s' in %s (known keys: %s)", name ? name : "?",
                          t->what, known);
        }
        if (parse_field(ld, m, &t->fields[k], base) == -1)
            return -1;
        seen[k] = 1;
    }
    return apply_defaults(ld, g, t, seen, base);
}

/* ---- the tables ------------------------------------------------------------------------------ */

static int tls_hook(struct ld *ld, const config_setting_t *s, void *target)
{
    ((struct conf_listen *)target)->tls = 1;
    return 0;
}

static int enable_admin(struct ld *ld, const config_setting_t *s, void *target)
{
    ((struct conf_admin *)target)->enabled = 1;
    return 0;
}

static int enable_redis(struct ld *ld, const config_setting_t *s, void *target)
{
    ((struct conf_redis *)target)->enabled = 1;
    return 0;
}

static int enable_guard(struct ld *ld, const config_setting_t *s, void *target)
{
    struct conf_guard *g = target;

    g->enabled = 1;
    g->line = (int)config_setting_source_line(s);
    return 0;
}

static int enable_health(struct ld *ld, const config_setting_t *s, void *target)
{
    struct conf_health *h = target;

    h->enabled = 1;
    h->line = (int)config_setting_source_line(s);
    return 0;
}

/* "GET,HEAD": comma-separated upper-case method names. */
static const char *check_methods(const char *s)
{
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || *p == ','))
            return "must be a comma-separated list of upper-case method names";
    return NULL;
}

static int sticky_hook(struct ld *ld, const config_setting_t *s, void *target)
{
    const struct conf_route *r = target;

    if (r->sticky_cookie != NULL && r->sticky_header != NULL)
        return ld_err(ld, s, "sticky takes either cookie or header, not both");
    if (r->sticky_cookie == NULL && r->sticky_header == NULL)
        return ld_err(ld, s, "sticky needs cookie = \"name\"; or header = \"name\";");
    return 0;
}

static int override_hook(struct ld *ld, const config_setting_t *s, void *target)
{
    const struct conf_route *r = target;

    if (r->override_cookie == NULL && r->override_header == NULL)
        return ld_err(ld, s, "override needs header = \"name\"; and/or cookie = \"name\";");
    return 0;
}

static const struct conf_field tls_fields[] = {
    STR(conf_listen, cert, NULL, NULL, CONF_REQUIRED),
    STR(conf_listen, key, NULL, NULL, CONF_REQUIRED),
};
static const struct conf_table tls_table = TABLE("tls", tls_fields);

static const struct conf_field listen_fields[] = {
    ADDR(conf_listen, address, addr, "listen address"),
    GROUP("tls", 0, &tls_table, tls_hook),
};
static const struct conf_table listen_table = TABLE("a listen entry", listen_fields);

static const struct conf_field admin_fields[] = {
    ADDR(conf_admin, address, addr, "admin address"),
    STR(conf_admin, token_file, NULL, NULL, 0),
};
static const struct conf_table admin_table = TABLE("admin", admin_fields);

static const struct conf_field redis_fields[] = {
    ADDR(conf_redis, address, addr, "redis address"),
    STR(conf_redis, prefix, "cutover", check_word, 0),
    NUM(conf_redis, poll_ms, CONF_MS, 10, 3600000, 1000),
    STR(conf_redis, username, NULL, NULL, 0),
    STR(conf_redis, password, NULL, NULL, 0),
    NUM(conf_redis, db, CONF_INT, 0, 65535, 0),
    NUM(conf_redis, pubsub, CONF_BOOL, 0, 1, 1),
    STR(conf_redis, instance, NULL, check_word, 0),
};
static const struct conf_table redis_table = TABLE("redis", redis_fields);

static const struct conf_field timeouts_fields[] = {
    NUM(conf_timeouts, connect_ms, CONF_MS, 1, 600000, 1000),
    NUM(conf_timeouts, header_ms, CONF_MS, 1, 3600000, 10000),
    NUM(conf_timeouts, idle_ms, CONF_MS, 1, 86400000, 60000),
    NUM(conf_timeouts, upstream_ms, CONF_MS, 1, 86400000, 30000),
    NUM(conf_timeouts, drain_ms, CONF_MS, 0, 3600000, 10000),
    NUM(conf_timeouts, upstream_idle_ms, CONF_MS, 1, 86400000, 30000),
};
static const struct conf_table timeouts_table = TABLE("timeouts", timeouts_fields);

static const struct conf_field limits_fields[] = {
    NUM(conf_limits, max_header_size, CONF_UINT, 1024, 1048576, 16384),
    NUM(conf_limits, max_headers, CONF_UINT, 1, 10000, 100),
    NUM(conf_limits, max_request_line, CONF_UINT, 256, 1048576, 8192),
    NUM(conf_limits, max_body_size, CONF_UINT, 0, UINT_MAX, 0),
    NUM(conf_limits, max_concurrent_streams, CONF_UINT, 1, 1000000, 128),
    NUM(conf_limits, max_connections, CONF_UINT, 1, 10000000, 10000),
    NUM(conf_limits, max_upstream_conns, CONF_UINT, 1, 1000000, 256),
};
static const struct conf_table limits_table = TABLE("limits", limits_fields);

static const struct conf_field match_fields[] = {
    STR(conf_route, host, "*", check_host, 0),
    STR(conf_route, path_prefix, "/", check_path_prefix, 0),
};
static const struct conf_table match_table = TABLE("match", match_fields);

static const struct conf_field sticky_fields[] = {
    STR_AS("cookie", "sticky cookie", conf_route, sticky_cookie, NULL, check_token, 0),
    STR_AS("header", "sticky header", conf_route, sticky_header, NULL, check_token, 0),
};
static const struct conf_table sticky_table = TABLE("sticky", sticky_fields);

static const struct conf_field override_fields[] = {
    STR_AS("header", "override header", conf_route, override_header, NULL, check_token, 0),
    STR_AS("cookie", "override cookie", conf_route, override_cookie, NULL, check_token, 0),
};
static const struct conf_table override_table = TABLE("override", override_fields);

static const struct conf_field guard_fields[] = {
    STR_AS("baseline", "guard baseline", conf_guard, baseline, NULL, check_name, CONF_REQUIRED),
    STR_AS("candidate", "guard candidate", conf_guard, candidate, NULL, check_name, CONF_REQUIRED),
    NUM(conf_guard, window_ms, CONF_MS, 100, 3600000, 10000),
    NUM(conf_guard, min_requests, CONF_UINT, 1, 10000000, 20),
    NUM(conf_guard, max_error_rate, CONF_DOUBLE, 0, 1, 0.05),
    NUM(conf_guard, max_p99_ratio, CONF_DOUBLE, 1, 1000, 2.0),
    STR_AS("action", "guard action", conf_guard, action, "snapback", check_action, 0),
    NUM(conf_guard, h, CONF_DOUBLE, 1, 100, 13.8),
    NUM(conf_guard, fast_failures, CONF_UINT, 0, 1000, 5),
    NUM(conf_guard, warmup_ms, CONF_MS, 0, 3600000, 10000),
    NUM(conf_guard, warmup_requests, CONF_UINT, 0, 10000000, 50),
    NUM(conf_guard, shield, CONF_BOOL, 0, 1, 1),
    STR(conf_guard, shield_methods, "GET,HEAD,OPTIONS", check_methods, 0),
    NUM(conf_guard, retry_budget_percent, CONF_UINT, 0, 100, 20),
    NUM(conf_guard, retry_budget_min, CONF_UINT, 0, 1000000, 3),
};
static const struct conf_table guard_table = TABLE("guard", guard_fields);

static const struct conf_field health_fields[] = {
    STR(conf_health, path, "/health", check_path_prefix, 0),
    NUM(conf_health, interval_ms, CONF_MS, 10, 3600000, 2000),
    NUM(conf_health, timeout_ms, CONF_MS, 1, 600000, 1000),
    NUM(conf_health, rise, CONF_UINT, 1, 100, 2),
    NUM(conf_health, fall, CONF_UINT, 1, 100, 3),
};
static const struct conf_table health_table = TABLE("health", health_fields);

static const struct conf_field outlier_fields[] = {
    NUM(conf_outlier, consecutive_failures, CONF_UINT, 0, 100000, 5),
    NUM(conf_outlier, base_ejection_ms, CONF_MS, 1, 86400000, 10000),
    NUM(conf_outlier, max_ejection_ms, CONF_MS, 1, 86400000, 300000),
    NUM(conf_outlier, max_ejected_percent, CONF_UINT, 0, 100, 50),
};
static const struct conf_table outlier_table = TABLE("outlier", outlier_fields);

static int parse_servers(struct ld *ld, const config_setting_t *s, void *base);
static int parse_tracks(struct ld *ld, const config_setting_t *s, void *base);
static int parse_listens(struct ld *ld, const config_setting_t *s, void *base);
static int parse_routes(struct ld *ld, const config_setting_t *s, void *base);

static const struct conf_field track_fields[] = {
    STR_AS("name", "track name", conf_track, name, NULL, check_name, CONF_REQUIRED),
    NUM_REQ(conf_track, weight, CONF_UINT, 0, CONF_MAX_WEIGHT),
    LIST("servers", parse_servers),
};
static const struct conf_table track_table = TABLE("a track", track_fields);

static const struct conf_field route_fields[] = {
    STR_AS("name", "route name", conf_route, name, NULL, check_name, CONF_REQUIRED),
    GROUP("match", 0, &match_table, NULL),
    LIST("tracks", parse_tracks),
    GROUP("sticky", 0, &sticky_table, sticky_hook),
    GROUP("override", 0, &override_table, override_hook),
    GROUP("guard", offsetof(struct conf_route, guard), &guard_table, enable_guard),
    GROUP("health", offsetof(struct conf_route, health), &health_table, enable_health),
    GROUP("outlier", offsetof(struct conf_route, outlier), &outlier_table, NULL),
};
static const struct conf_table route_table = TABLE("a route", route_fields);

static const struct conf_field top_fields[] = {
    NUM(conf, workers, CONF_UINT, 0, CONF_MAX_WORKERS, 0),
    LIST("listen", parse_listens),
    GROUP("admin", offsetof(struct conf, admin), &admin_table, enable_admin),
    GROUP("redis", offsetof(struct conf, redis), &redis_table, enable_redis),
    GROUP("timeouts", offsetof(struct conf, timeouts), &timeouts_table, NULL),
    GROUP("limits", offsetof(struct conf, limits), &limits_table, NULL),
    LIST("routes", parse_routes),
    STR(conf, access_log, NULL, NULL, 0),
    NUM(conf, access_log_sample, CONF_DOUBLE, 0, 1, 1.0),
    STR(conf, error_log, NULL, NULL, 0),
    STR(conf, log_level, "info", check_log_level, 0),
};
static const struct conf_table top_table = TABLE("the top level", top_fields);

/* ---- lists ----------------------------------------------------------------------------------- */

/* Each element of list <s> must be a group; returns the count or -1. */
static int group_list(struct ld *ld, const config_setting_t *s, const char *shape)
{
    char label[96];
    int n;

    if (!config_setting_is_list(s))
        return type_err(ld, s, shape);
    n = config_setting_length(s);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

        if (!config_setting_is_group(e))
            return ld_err(ld, e, "wrong type: %s is %s, expected a group { ... }",
                          setting_label(e, label, sizeof(label)), type_name(e));
    }
    return n;
}

static int parse_listens(struct ld *ld, const config_setting_t *s, void *base)
{
    struct conf *c = base;
    int n = group_list(ld, s, "a list of groups: listen = ( { address = \"ip:port\"; } )");

    if (n == -1)
        return -1;
    if (n == 0)
        return ld_err(ld, s, "no listeners: listen = ( { address = \"ip:port\"; } ); is empty");
    if ((c->listens = CONF_CALLOC((size_t)n, sizeof(*c->listens))) == NULL)
        return ld_oom(ld, s);
    c->n_listens = (size_t)n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

        c->listens[i].line = (int)config_setting_source_line(e);
        if (parse_group(ld, e, &listen_table, &c->listens[i]) == -1)
            return -1;
    }
    return 0;
}

static int parse_routes(struct ld *ld, const config_setting_t *s, void *base)
{
    struct conf *c = base;
    int n = group_list(ld, s, "a list of groups: routes = ( { name = \"web\"; ... } )");

    if (n <= 0)
        return n;
    if ((c->routes = CONF_CALLOC((size_t)n, sizeof(*c->routes))) == NULL)
        return ld_oom(ld, s);
    c->n_routes = (size_t)n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

        c->routes[i].line = (int)config_setting_source_line(e);
        if (parse_group(ld, e, &route_table, &c->routes[i]) == -1)
            return -1;
    }
    return 0;
}

static int parse_tracks(struct ld *ld, const config_setting_t *s, void *base)
{
    struct conf_route *r = base;
    int n = group_list(ld, s, "a list of groups: tracks = ( { name = \"blue\"; ... } )");

    if (n == -1)
        return -1;
    if (n > CONF_MAX_TRACKS)
        return ld_err(ld, s, "too many tracks: %d, at most %d per route", n, CONF_MAX_TRACKS);
    r->n_tracks = (size_t)n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

        r->tracks[i].line = (int)config_setting_source_line(e);
        if (parse_group(ld, e, &track_table, &r->tracks[i]) == -1)
            return -1;
    }
    return 0;
}

/* servers = ( "ip:port", ... ) or [ "ip:port", ... ]; an empty one is left to validate. */
static int parse_servers(struct ld *ld, const config_setting_t *s, void *base)
{
    struct conf_track *t = base;
    char label[96];
    int n;

    if (!config_setting_is_list(s) && !config_setting_is_array(s))
        return type_err(ld, s, "a list of strings: servers = ( \"ip:port\", ... )");
    n = config_setting_length(s);
    if (n > CONF_MAX_SERVERS)
        return ld_err(ld, s, "too many servers: %d, at most %d per track", n, CONF_MAX_SERVERS);
    if (n == 0)
        return 0;
    if ((t->servers = CONF_CALLOC((size_t)n, sizeof(*t->servers))) == NULL)
        return ld_oom(ld, s);
    if ((t->addrs = CONF_CALLOC((size_t)n, sizeof(*t->addrs))) == NULL)
        return ld_oom(ld, s);
    t->n_servers = (size_t)n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *str, *why;

        if (config_setting_type(e) != CONFIG_TYPE_STRING)
            return ld_err(ld, e, "wrong type: %s is %s, expected a string \"ip:port\"",
                          setting_label(e, label, sizeof(label)), type_name(e));
        str = config_setting_get_string(e);
        if (parse_addr(str, &t->addrs[i], &why) == -1)
            return ld_err(ld, e, "bad server address \"%s\": %s", str, why);
        if ((t->servers[i] = CONF_STRDUP(str)) == NULL)
            return ld_oom(ld, e);
    }
    return 0;
}

/* ---- 32-bit integer literals ----------------------------------------------------------------- */

/*
 * libconfig 1.5 reads an integer literal without an L suffix with atoi(), so 5000000000 silently
 * becomes 705032704 and would pass our range checks. Scan the file's text for decimal literals
 * outside the int range, and hex literals wider than 32 bits, and refuse them. Strings and comments
 * are skipped; names may contain digits (max_p99_ratio). @include'd files are not scanned.
 */
static int scan_int_literals(struct ld *ld, const char *s)
{
    int line = 1;

    while (*s) {
        if (*s == '\n') {
            line++;
            s++;
        } else if (*s == '#' || (s[0] == '/' && s[1] == '/')) {
            while (*s && *s != '\n')
                s++;
        } else if (s[0] == '/' && s[1] == '*') {
            for (s += 2; *s && !(s[0] == '*' && s[1] == '/'); s++)
                line += *s == '\n';
            s += *s ? 2 : 0;
        } else if (*s == '"') {
            for (s++; *s && *s != '"'; s++) {
                if (*s == '\\' && s[1])
                    s++;
                line += *s == '\n';
            }
            s += *s ? 1 : 0;
        } else if (isalpha((unsigned char)*s) || *s == '*' || *s == '_') {
            while (isalnum((unsigned char)*s) || *s == '_' || *s == '-' || *s == '*')
                s++;
        } else if (*s == '.' && isdigit((unsigned char)s[1])) {
            while (*s && strchr("0123456789.eE+-", *s) != NULL)
                s++;
        } else if (isdigit((unsigned char)*s) ||
                   ((*s == '-' || *s == '+') && isdigit((unsigned char)s[1]))) {
            const char *start = s;
            int neg = *s == '-', wide = 0;
            unsigned long long v = 0;

            s += (*s == '-' || *s == '+');
            if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
                int digits = 0;

                for (s += 2; isxdigit((unsigned char)*s); s++)
                    if (digits > 0 || *s != '0')
                        digits++;
                wide = digits > 8;
            } else {
                for (; isdigit((unsigned char)*s); s++) {
                    v = v * 10 + (unsigned long long)(*s - '0');
                    if (v > 1ull << 40)
                        v = 1ull << 40; /* saturate: only "> INT_MAX" matters */
                }
                if (*s == '.' || *s == 'e' || *s == 'E') {
                    while (*s && strchr("0123456789.eE+-", *s) != NULL)
                        s++;
                    continue; /* a float */
                }
                wide = neg ? v > (unsigned long long)INT_MAX + 1 : v > INT_MAX;
            }
            if (*s == 'L')
                continue; /* int64: libconfig reads it exactly */
            if (wide)
                return errf(ld->err, ld->errlen, ld->path, line,
                            "value out of range: %.*s does not fit in 32 bits; "
                            "write %.*sL for a 64-bit integer",
                            (int)(s - start), start, (int)(s - start), start);
        } else {
            s++;
        }
    }
    return 0;
}

/* Reads <path> whole (NUL-terminated) into *<out>. Returns 0 or -1 with the error set. */
static int read_text(struct ld *ld, char **out)
{
    FILE *f = fopen(ld->path, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0;

    *out = NULL;
    if (f == NULL)
        return ld_err(ld, NULL, "cannot open config: %s", strerror(errno));
    for (;;) {
        if (cap - len < 2) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nbuf = ncap <= CONF_MAX_FILE ? CONF_CALLOC(1, ncap) : NULL;

            if (ncap > CONF_MAX_FILE) {
                free(buf);
                fclose(f);
                return ld_err(ld, NULL, "config file larger than %d bytes", CONF_MAX_FILE);
            }
            if (nbuf == NULL) {
                free(buf);
                fclose(f);
                return ld_oom(ld, NULL);
            }
            if (len > 0)
                memcpy(nbuf, buf, len);
            free(buf);
            buf = nbuf;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        int e = errno;

        free(buf);
        fclose(f);
        return ld_err(ld, NULL, "cannot read config: %s", strerror(e));
    }
    fclose(f);
    buf[len] = '\0';
    *out = buf;
    return 0;
}

/* ---- entry points ---------------------------------------------------------------------------- */

struct conf *conf_load(const char *path, char *err, size_t errlen)
{
    struct ld ld = {.path = path, .err = err, .errlen = errlen};
    struct conf *c = NULL;
    char *text = NULL;
    config_t cfg;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (path == NULL) {
        ld.path = "(config)";
        ld_err(&ld, NULL, "no config file given");
        return NULL;
    }
    if (read_text(&ld, &text) == -1)
        return NULL;
    config_init(&cfg);
    if (config_read_file(&cfg, path) == CONFIG_FALSE) {
        const char *file = config_error_file(&cfg) ? config_error_file(&cfg) : path;

        if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
            errf(err, errlen, file, 1, "cannot read config: %s", config_error_text(&cfg));
        else
            errf(err, errlen, file, config_error_line(&cfg), "%s", config_error_text(&cfg));
        goto fail;
    }
    if (scan_int_literals(&ld, text) == -1)
        goto fail;
    if ((c = CONF_CALLOC(1, sizeof(*c))) == NULL || (c->path = CONF_STRDUP(path)) == NULL) {
        ld_oom(&ld, NULL);
        goto fail;
    }
    if (parse_group(&ld, config_root_setting(&cfg), &top_table, c) == -1)
        goto fail;
    if (c->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);

        c->workers = n < 1 ? 1 : n > CONF_MAX_WORKERS ? CONF_MAX_WORKERS : (unsigned)n;
    }
    if (conf_validate(c, err, errlen) == -1)
        goto fail;
    config_destroy(&cfg);
    free(text);
    return c;

fail:
    conf_free(c);
    config_destroy(&cfg);
    free(text);
    return NULL;
}

/* ---- semantic checks ------------------------------------------------------------------------- */

/* 0 when <path> names a readable regular file, else -1 with the reason in <why>. */
static int check_file(const char *path, const char **why)
{
    struct stat st;

    if (path == NULL || path[0] == '\0') {
        *why = "no file given";
        return -1;
    }
    if (stat(path, &st) == -1 || access(path, R_OK) == -1) {
        *why = strerror(errno);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        *why = "not a regular file";
        return -1;
    }
    return 0;
}

static int same_addr(const struct conf_addr *a, const struct conf_addr *b)
{
    return a->family == b->family && a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* The address as written when there is one: a hand-built struct may leave <addr> empty. */
static struct conf_addr addr_of(const char *address, const struct conf_addr *parsed)
{
    struct conf_addr a;
    const char *why;

    if (address == NULL || parse_addr(address, &a, &why) == -1)
        return *parsed;
    return a;
}

static int validate_track(const struct conf *c, const struct conf_route *r, size_t i, char *err,
                          size_t errlen)
{
    const struct conf_track *t = &r->tracks[i];
    const char *why;
    struct conf_addr a;

    if (t->name == NULL || t->name[0] == '\0')
        return errf(err, errlen, c->path, t->line, "route '%s': track %zu has no name", r->name,
                    i + 1);
    if ((why = check_name(t->name)) != NULL)
        return errf(err, errlen, c->path, t->line, "bad track name \"%s\": %s", t->name, why);
    for (size_t j = 0; j < i; j++)
        if (r->tracks[j].name != NULL && strcmp(r->tracks[j].name, t->name) == 0)
            return errf(err, errlen, c->path, t->line,
                        "duplicate track name '%s' in route '%s' (first at line %d)", t->name,
                        r->name, r->tracks[j].line);
    if (t->weight > CONF_MAX_WEIGHT)
        return errf(err, errlen, c->path, t->line,
                    "track '%s': weight %u out of range, expected 0 to %u", t->name, t->weight,
                    CONF_MAX_WEIGHT);
    if (t->n_servers == 0)
        return errf(err, errlen, c->path, t->line,
                    "track '%s' in route '%s' has no servers: servers = ( \"ip:port\" );", t->name,
                    r->name);
    if (t->n_servers > CONF_MAX_SERVERS)
        return errf(err, errlen, c->path, t->line,
                    "track '%s': too many servers: %zu, at most %d per track", t->name,
                    t->n_servers, CONF_MAX_SERVERS);
    for (size_t k = 0; k < t->n_servers; k++)
        if (parse_addr(t->servers[k], &a, &why) == -1)
            return errf(err, errlen, c->path, t->line, "track '%s': bad server address \"%s\": %s",
                        t->name, t->servers[k] ? t->servers[k] : "(null)", why);
    return 0;
}

static int has_track(const struct conf_route *r, const char *name)
{
    for (size_t i = 0; i < r->n_tracks; i++)
        if (strcmp(r->tracks[i].name, name) == 0)
            return 1;
    return 0;
}

static int validate_guard(const struct conf *c, const struct conf_route *r, char *err,
                          size_t errlen)
{
    const struct conf_guard *g = &r->guard;
    const char *roles[2] = {"baseline", "candidate"};
    const char *names[2] = {g->baseline, g->candidate};

    for (int k = 0; k < 2; k++) {
        if (names[k] == NULL)
            return errf(err, errlen, c->path, g->line, "route '%s': guard has no %s track", r->name,
                        roles[k]);
        if (!has_track(r, names[k]))
            return errf(err, errlen, c->path, g->line,
                        "route '%s': guard %s '%s' is not a track of this route", r->name, roles[k],
                        names[k]);
    }
    if (strcmp(g->baseline, g->candidate) == 0)
        return errf(err, errlen, c->path, g->line,
                    "route '%s': guard baseline and candidate are both '%s'", r->name, g->baseline);
    if (g->action != NULL && check_action(g->action) != NULL)
        return errf(err, errlen, c->path, g->line, "route '%s': bad guard action \"%s\": %s",
                    r->name, g->action, check_action(g->action));
    return 0;
}

static int validate_route(const struct conf *c, size_t i, char *err, size_t errlen)
{
    const struct conf_route *r = &c->routes[i];
    const char *why;
    unsigned long long sum = 0;

    if (r->name == NULL || r->name[0] == '\0')
        return errf(err, errlen, c->path, r->line, "route %zu has no name", i + 1);
    if ((why = check_name(r->name)) != NULL)
        return errf(err, errlen, c->path, r->line, "bad route name \"%s\": %s", r->name, why);
    if (r->host != NULL && (why = check_host(r->host)) != NULL)
        return errf(err, errlen, c->path, r->line, "route '%s': bad host \"%s\": %s", r->name,
                    r->host, why);
    if (r->path_prefix != NULL && (why = check_path_prefix(r->path_prefix)) != NULL)
        return errf(err, errlen, c->path, r->line, "route '%s': bad path_prefix \"%s\": %s",
                    r->name, r->path_prefix, why);
    for (size_t j = 0; j < i; j++) {
        const struct conf_route *o = &c->routes[j];

        if (o->name != NULL && strcmp(o->name, r->name) == 0)
            return errf(err, errlen, c->path, r->line,
                        "duplicate route name '%s' (first at line %d)", r->name, o->line);
        if (o->host != NULL && r->host != NULL && o->path_prefix != NULL &&
            r->path_prefix != NULL && strcmp(o->host, r->host) == 0 &&
            strcmp(o->path_prefix, r->path_prefix) == 0)
            return errf(err, errlen, c->path, r->line,
                        "route '%s' matches the same host and path_prefix as route '%s' "
                        "(line %d)",
                        r->name, o->name, o->line);
    }
    if (r->n_tracks == 0)
        return errf(err, errlen, c->path, r->line,
                    "route '%s' has no tracks: tracks = ( { name = ...; weight = ...; "
                    "servers = ( ... ); } );",
                    r->name);
    if (r->n_tracks > CONF_MAX_TRACKS)
        return errf(err, errlen, c->path, r->line,
                    "route '%s': too many tracks: %zu, at most %d per route", r->name, r->n_tracks,
                    CONF_MAX_TRACKS);
    for (size_t k = 0; k < r->n_tracks; k++) {
        if (validate_track(c, r, k, err, errlen) == -1)
            return -1;
        sum += r->tracks[k].weight;
    }
    if (sum == 0)
        return errf(err, errlen, c->path, r->line,
                    "route '%s': all track weights are zero, nothing could be served", r->name);
    if (r->sticky_cookie != NULL && r->sticky_header != NULL)
        return errf(err, errlen, c->path, r->line,
                    "route '%s': sticky takes either cookie or header, not both", r->name);
    if (r->guard.enabled && validate_guard(c, r, err, errlen) == -1)
        return -1;
    return 0;
}

int conf_validate(const struct conf *c, char *err, size_t errlen)
{
    struct conf_addr a;
    const char *why;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (c == NULL)
        return errf(err, errlen, NULL, 1, "no config");
    if (c->n_listens == 0 || c->listens == NULL)
        return errf(err, errlen, c->path, 1,
                    "no listeners: add listen = ( { address = \"ip:port\"; } );");
    for (size_t i = 0; i < c->n_listens; i++) {
        const struct conf_listen *l = &c->listens[i];

        if (l->address != NULL && parse_addr(l->address, &a, &why) == -1)
            return errf(err, errlen, c->path, l->line, "bad listen address \"%s\": %s", l->address,
                        why);
        a = addr_of(l->address, &l->addr);
        for (size_t j = 0; j < i; j++) {
            struct conf_addr b = addr_of(c->listens[j].address, &c->listens[j].addr);

            if (same_addr(&a, &b))
                return errf(err, errlen, c->path, l->line,
                            "duplicate listen address %s:%u (first at line %d)", a.host,
                            (unsigned)a.port, c->listens[j].line);
        }
        if (c->admin.enabled) {
            struct conf_addr b = addr_of(c->admin.address, &c->admin.addr);

            if (same_addr(&a, &b))
                return errf(err, errlen, c->path, l->line,
                            "listen address %s:%u is also the admin address", a.host,
                            (unsigned)a.port);
        }
        if (!l->tls)
            continue;
        if (check_file(l->cert, &why) == -1)
            return errf(err, errlen, c->path, l->line, "cannot read tls cert \"%s\": %s",
                        l->cert ? l->cert : "", why);
        if (check_file(l->key, &why) == -1)
            return errf(err, errlen, c->path, l->line, "cannot read tls key \"%s\": %s",
                        l->key ? l->key : "", why);
    }
    if (c->admin.enabled) {
        if (c->admin.address != NULL && parse_addr(c->admin.address, &a, &why) == -1)
            return errf(err, errlen, c->path, 1, "bad admin address \"%s\": %s", c->admin.address,
                        why);
        if (c->admin.token_file != NULL && check_file(c->admin.token_file, &why) == -1)
            return errf(err, errlen, c->path, 1, "cannot read admin token_file \"%s\": %s",
                        c->admin.token_file, why);
    }
    if (c->redis.enabled && c->redis.address != NULL &&
        parse_addr(c->redis.address, &a, &why) == -1)
        return errf(err, errlen, c->path, 1, "bad redis address \"%s\": %s", c->redis.address, why);
    if (c->log_level != NULL && (why = check_log_level(c->log_level)) != NULL)
        return errf(err, errlen, c->path, 1, "bad log_level \"%s\": %s", c->log_level, why);
    for (size_t i = 0; i < c->n_routes; i++)
        if (validate_route(c, i, err, errlen) == -1)
            return -1;
    return 0;
}

void conf_free(struct conf *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_listens; i++) {
        free(c->listens[i].address);
        free(c->listens[i].cert);
        free(c->listens[i].key);
    }
    free(c->listens);
    free(c->admin.address);
    free(c->admin.token_file);
    free(c->redis.address);
    free(c->redis.prefix);
    free(c->redis.username);
    free(c->redis.password);
    free(c->redis.instance);
    for (size_t i = 0; i < c->n_routes; i++) {
        struct conf_route *r = &c->routes[i];

        free(r->name);
        free(r->host);
        free(r->path_prefix);
        for (size_t k = 0; k < r->n_tracks && k < CONF_MAX_TRACKS; k++) {
            struct conf_track *t = &r->tracks[k];

            free(t->name);
            for (size_t j = 0; j < t->n_servers; j++)
                free(t->servers[j]);
            free(t->servers);
            free(t->addrs);
        }
        free(r->sticky_cookie);
        free(r->sticky_header);
        free(r->override_header);
        free(r->override_cookie);
        free(r->guard.baseline);
        free(r->guard.candidate);
        free(r->guard.action);
        free(r->guard.shield_methods);
        free(r->health.path);
    }
    free(c->routes);
    free(c->access_log);
    free(c->error_log);
    free(c->log_level);
    free(c->path);
    free(c);
}

unsigned conf_addr_sockaddr(const struct conf_addr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(a->port);
        return inet_pton(AF_INET6, a->host, &s6->sin6_addr) == 1 ? sizeof(*s6) : 0;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(a->port);
    return inet_pton(AF_INET, a->host, &s4->sin_addr) == 1 ? sizeof(*s4) : 0;
}
