/*
 * ctl.c: `cutover ctl`, a blocking HTTP/1.1 client of the admin endpoint
 * (see ctl.h). One request per run, "Connection: close", every socket wait
 * bounded by one overall deadline.
 */
#include "ctl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../conf/conf.h"
#include "log.h"

#define CTL_DEFAULT_ADDR "127.0.0.1:9901"
#define CTL_MAX_RESPONSE (64u << 20) /* bytes: /metrics of a large fleet fits easily */
#define CTL_TOKEN_MAX 4096
#define CTL_EXIT_HTTP 1
#define CTL_EXIT_USAGE 2

/* A growable byte buffer (bounded by its users). */
struct ctl_buf {
    char *p;
    size_t len, cap;
};

static int buf_add(struct ctl_buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (q == NULL)
            return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int buf_str(struct ctl_buf *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

static void ctl_usage(FILE *f)
{
    fprintf(f, "usage: cutover ctl [-c CONF] [-a ADDR] [-k TOKENFILE] [-T SECONDS] COMMAND\n"
               "  status                     show routes, weights, guards, Redis (JSON)\n"
               "  metrics                    print the Prometheus metrics\n"
               "  healthz                    ok (exit 0) or draining (exit 1)\n"
               "  weights ROUTE TRACK=N ...  set the weights of ROUTE (tracks not named get 0)\n"
               "  arm ROUTE                  re-arm the guard of ROUTE\n"
               "  -a ADDR       admin address host:port (default: the admin block of -c CONF,\n"
               "                else " CTL_DEFAULT_ADDR ")\n"
               "  -c CONF       read the admin address and token_file from this config\n"
               "  -k TOKENFILE  file holding the bearer token (default: the config's token_file,\n"
               "                else $CUTOVER_ADMIN_TOKEN)\n"
               "  -T SECONDS    give up after this long (default 10)\n"
               "exit status: 0 ok, 1 HTTP error, 2 usage or connection error\n");
}

/* Reads a token file and trims surrounding whitespace into <out>. 0 or -1 (message printed). */
static int read_token(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "re");
    size_t n, s = 0;

    if (f == NULL) {
        fprintf(stderr, "cutover ctl: token file %s: %s\n", path, strerror(errno));
        return -1;
    }
    n = fread(out, 1, len - 1, f);
    fclose(f);
    out[n] = '\0';
    while (n > 0 && strchr(" \t\r\n\v\f", out[n - 1]) != NULL)
        out[--n] = '\0';
    while (out[s] != '\0' && strchr(" \t\r\n\v\f", out[s]) != NULL)
        s++;
    memmove(out, out + s, n - s + 1);
    if (out[0] == '\0') {
        fprintf(stderr, "cutover ctl: token file %s is empty\n", path);
        return -1;
    }
    for (const char *c = out; *c; c++) {
        if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
            fprintf(stderr, "cutover ctl: token file %s: not one printable word\n", path);
            return -1;
        }
    }
    return 0;
}

/* Appends <s> percent-encoded (RFC 3986 unreserved characters kept). */
static int add_pct(struct ctl_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            if (buf_add(b, s, 1) < 0)
                return -1;
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            if (buf_add(b, e, 3) < 0)
                return -1;
        }
    }
    return 0;
}

/* Appends <s> as a JSON string. */
static int add_json_str(struct ctl_buf *b, const char *s)
{
    if (buf_add(b, "\"", 1) < 0)
        return -1;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char e[8];
        if (c == '"' || c == '\\') {
            e[0] = '\\';
            e[1] = (char)c;
            if (buf_add(b, e, 2) < 0)
                return -1;
        } else if (c < 0x20) {
            snprintf(e, sizeof(e), "\\u%04x", c);
            if (buf_add(b, e, 6) < 0)
                return -1;
        } else if (buf_add(b, s, 1) < 0) {
            return -1;
        }
    }
    return buf_add(b, "\"", 1);
}

/* 1 when <s> is a JSON number token (then it is sent as is and the server judges it). */
static int is_json_number(const char *s)
{
    if (*s == '-')
        s++;
    if (*s < '0' || *s > '9')
        return 0;
    while (*s >= '0' && *s <= '9')
        s++;
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (*s < '0' || *s > '9')
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

static int ms_left(uint64_t deadline)
{
    uint64_t now = cut_now_ms();
    return now >= deadline ? 0 : (int)(deadline - now);
}

/* Waits for <events> on <fd> until <deadline>. 0 ready, -ETIMEDOUT, -errno. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        int left = ms_left(deadline), r;
        if (left == 0)
            return -ETIMEDOUT;
        r = poll(&p, 1, left);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1)
            return -errno;
        if (r == 0)
            return -ETIMEDOUT;
        return 0;
    }
}

static int ctl_connect(const struct conf_addr *a, uint64_t deadline)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, e;

    sl = conf_addr_sockaddr(a, &ss);
    if (sl == 0)
        return -EINVAL;
    fd = socket(a->family == AF_INET6 ? AF_INET6 : AF_INET,
                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -errno;
    if (connect(fd, (struct sockaddr *)&ss, sl) == -1) {
        if (errno != EINPROGRESS) {
            e = -errno;
            close(fd);
            return e;
        }
        e = wait_fd(fd, POLLOUT, deadline);
        if (e == 0) {
            int so = 0;
            socklen_t l = sizeof(so);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &l) == -1)
                e = -errno;
            else
                e = -so;
        }
        if (e != 0) {
            close(fd);
            return e;
        }
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n, uint64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) { /* == EWOULDBLOCK on Linux */
                int e = wait_fd(fd, POLLOUT, deadline);
                if (e < 0)
                    return e;
                continue;
            }
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads until EOF (Connection: close) into <b>. */
static int recv_all(int fd, struct ctl_buf *b, uint64_t deadline)
{
    char tmp[16384];

    for (;;) {
        ssize_t r = recv(fd, tmp, sizeof(tmp), 0);
        if (r == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) { /* == EWOULDBLOCK on Linux */
                int e = wait_fd(fd, POLLIN, deadline);
                if (e < 0)
                    return e;
                continue;
            }
            return -errno;
        }
        if (r == 0)
            return 0;
        if (b->len + (size_t)r > CTL_MAX_RESPONSE)
            return -EFBIG;
        if (buf_add(b, tmp, (size_t)r) < 0)
            return -ENOMEM;
    }
}

/* Decodes a chunked body in place. Returns its length or -1. */
static long dechunk(char *p, size_t n)
{
    size_t in = 0, out = 0;

    for (;;) {
        char *end;
        unsigned long sz = strtoul(p + in, &end, 16);
        char *eol = memmem(p + in, n - in, "\r\n", 2);
        if (eol == NULL || end == p + in || end > eol)
            return -1;
        in = (size_t)(eol - p) + 2;
        if (sz == 0)
            return (long)out;
        if (sz > n - in || n - in - sz < 2)
            return -1;
        memmove(p + out, p + in, sz);
        out += sz;
        in += sz + 2;
    }
}

/*
 * Sends one request and parses the response. Returns the HTTP status (the
 * body in <body>, NUL-terminated), or a negative errno.
 */
static int ctl_http(const struct conf_addr *a, const char *addr_text, const char *method,
                    const char *path, const char *token, const char *json, uint64_t deadline,
                    struct ctl_buf *body)
{
    struct ctl_buf req = {0}, resp = {0};
    int fd, e, status = -EPROTO;
    char line[64];

    fd = ctl_connect(a, deadline);
    if (fd < 0)
        return fd;
    snprintf(line, sizeof(line), "%s ", method);
    if (buf_str(&req, line) < 0 || buf_str(&req, path) < 0 ||
        buf_str(&req, " HTTP/1.1\r\nHost: ") < 0 || buf_str(&req, addr_text) < 0 ||
        buf_str(&req, "\r\nUser-Agent: cutover-ctl\r\nAccept: */*\r\nConnection: close\r\n") < 0)
        goto nomem;
    if (token != NULL && (buf_str(&req, "Authorization: Bearer ") < 0 || buf_str(&req, token) < 0 ||
                          buf_str(&req, "\r\n") < 0))
        goto nomem;
    if (json != NULL) {
        snprintf(line, sizeof(line), "Content-Length: %zu\r\n", strlen(json));
        if (buf_str(&req, "Content-Type: application/json\r\n") < 0 || buf_str(&req, line) < 0)
            goto nomem;
    } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        if (buf_str(&req, "Content-Length: 0\r\n") < 0)
            goto nomem;
    }
    if (buf_str(&req, "\r\n") < 0 || (json != NULL && buf_str(&req, json) < 0))
        goto nomem;
    e = send_all(fd, req.p, req.len, deadline);
    if (e == 0)
        e = recv_all(fd, &resp, deadline);
    if (e < 0) {
        status = e;
        goto out;
    }
    /* status line and head */
    char *eoh = resp.p != NULL ? memmem(resp.p, resp.len, "\r\n\r\n", 4) : NULL;
    int code = 0;
    if (eoh == NULL || sscanf(resp.p, "HTTP/1.%*1[01] %3d", &code) != 1 || code < 100 || code > 599)
        goto out; /* -EPROTO */
    *eoh = '\0';
    char *bp = eoh + 4;
    size_t bl = resp.len - (size_t)(bp - resp.p);
    int chunked = 0;
    long clen = -1;
    for (char *h = strstr(resp.p, "\r\n"); h != NULL; h = strstr(h + 2, "\r\n")) {
        char *v = h + 2;
        if (strncasecmp(v, "Transfer-Encoding:", 18) == 0 && strcasestr(v + 18, "chunked") != NULL)
            chunked = 1;
        else if (strncasecmp(v, "Content-Length:", 15) == 0)
            clen = strtol(v + 15, NULL, 10);
    }
    if (chunked) {
        long n = dechunk(bp, bl);
        if (n < 0)
            goto out;
        bl = (size_t)n;
    } else if (clen >= 0) {
        if ((size_t)clen > bl)
            goto out; /* cut short */
        bl = (size_t)clen;
    }
    if (buf_add(body, bp, bl) < 0)
        goto nomem;
    status = code;
    goto out;
nomem:
    status = -ENOMEM;
out:
    close(fd);
    free(req.p);
    free(resp.p);
    return status;
}

int ctl_main(int argc, char **argv)
{
    const char *conf_path = NULL, *addr_opt = NULL, *token_path = NULL;
    char token_buf[CTL_TOKEN_MAX + 1], err[1024];
    const char *token = NULL;
    char *addr_text = NULL;
    struct conf *c = NULL;
    struct conf_addr addr;
    struct ctl_buf path = {0}, json = {0}, body = {0};
    const char *method = "GET";
    unsigned timeout_s = 10;
    int opt, rc = CTL_EXIT_USAGE;

    optind = 1;
    while ((opt = getopt(argc, argv, "+c:a:k:T:h")) != -1) {
        switch (opt) {
        case 'c':
            conf_path = optarg;
            break;
        case 'a':
            addr_opt = optarg;
            break;
        case 'k':
            token_path = optarg;
            break;
        case 'T': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end != '\0' || v == 0 || v > 3600) {
                fprintf(stderr, "cutover ctl: -T wants 1..3600 seconds\n");
                return CTL_EXIT_USAGE;
            }
            timeout_s = (unsigned)v;
            break;
        }
        case 'h':
            ctl_usage(stdout);
            return 0;
        default:
            ctl_usage(stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        ctl_usage(stderr);
        return CTL_EXIT_USAGE;
    }
    const char *cmd = argv[optind++];
    int nargs = argc - optind;
    char **args = argv + optind;

    if (conf_path != NULL) {
        c = conf_load(conf_path, err, sizeof(err));
        if (c == NULL) {
            fprintf(stderr, "cutover ctl: %s\n", err);
            return CTL_EXIT_USAGE;
        }
        if (!c->admin.enabled && addr_opt == NULL) {
            fprintf(stderr, "cutover ctl: %s has no admin block; give -a ADDR\n", conf_path);
            goto out;
        }
    }
    if (addr_opt != NULL)
        addr_text = strdup(addr_opt);
    else if (c != NULL)
        addr_text = strdup(c->admin.address);
    else
        addr_text = strdup(CTL_DEFAULT_ADDR);
    if (addr_text == NULL || conf_parse_addr(addr_text, &addr) < 0) {
        fprintf(stderr, "cutover ctl: bad admin address \"%s\"\n",
                addr_text != NULL ? addr_text : "?");
        goto out;
    }
    if (token_path == NULL && c != NULL && c->admin.token_file != NULL)
        token_path = c->admin.token_file;
    if (token_path != NULL) {
        if (read_token(token_path, token_buf, sizeof(token_buf)) < 0)
            goto out;
        token = token_buf;
    } else if (getenv("CUTOVER_ADMIN_TOKEN") != NULL && getenv("CUTOVER_ADMIN_TOKEN")[0]) {
        token = getenv("CUTOVER_ADMIN_TOKEN");
    }

    if ((strcmp(cmd, "status") == 0 || strcmp(cmd, "metrics") == 0 ||
         strcmp(cmd, "healthz") == 0) &&
        nargs == 0) {
        if (buf_str(&path, "/") < 0 || buf_str(&path, cmd) < 0)
            goto nomem;
    } else if (strcmp(cmd, "arm") == 0 && nargs == 1) {
        method = "POST";
        if (buf_str(&path, "/routes/") < 0 || add_pct(&path, args[0]) < 0 ||
            buf_str(&path, "/guard/arm") < 0)
            goto nomem;
    } else if (strcmp(cmd, "weights") == 0 && nargs >= 2) {
        method = "PUT";
        if (buf_str(&path, "/routes/") < 0 || add_pct(&path, args[0]) < 0 ||
            buf_str(&path, "/weights") < 0 || buf_str(&json, "{") < 0)
            goto nomem;
        for (int i = 1; i < nargs; i++) {
            char *eq = strchr(args[i], '=');
            if (eq == NULL || eq == args[i] || eq[1] == '\0') {
                fprintf(stderr, "cutover ctl: \"%s\": expected TRACK=WEIGHT\n", args[i]);
                goto out;
            }
            *eq = '\0';
            if ((i > 1 && buf_str(&json, ",") < 0) || add_json_str(&json, args[i]) < 0 ||
                buf_str(&json, ":") < 0)
                goto nomem;
            if (is_json_number(eq + 1) ? buf_str(&json, eq + 1) < 0
                                       : add_json_str(&json, eq + 1) < 0)
                goto nomem;
            *eq = '=';
        }
        if (buf_str(&json, "}") < 0)
            goto nomem;
    } else {
        ctl_usage(stderr);
        goto out;
    }

    int status = ctl_http(&addr, addr_text, method, path.p, token, json.p,
                          cut_now_ms() + (uint64_t)timeout_s * 1000u, &body);
    if (status < 0) {
        fprintf(stderr, "cutover ctl: %s %s on %s: %s\n", method, path.p, addr_text,
                status == -EPROTO ? "not an HTTP/1.1 answer" : strerror(-status));
        goto out;
    }
    if (status >= 200 && status < 300) {
        fwrite(body.p != NULL ? body.p : "", 1, body.len, stdout);
        rc = 0;
    } else {
        fprintf(stderr, "cutover ctl: HTTP %d\n", status);
        fwrite(body.p != NULL ? body.p : "", 1, body.len, stderr);
        rc = CTL_EXIT_HTTP;
    }
    goto out;
nomem:
    fprintf(stderr, "cutover ctl: out of memory\n");
    rc = CTL_EXIT_USAGE;
out:
    if (token == token_buf)
        memset(token_buf, 0, sizeof(token_buf));
    free(path.p);
    free(json.p);
    free(body.p);
    free(addr_text);
    conf_free(c);
    return rc;
}
