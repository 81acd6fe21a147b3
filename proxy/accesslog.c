#include "accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "worker.h"

#define ALOG_FLUSH_AT (PIPE_BUF - 1024) /* leaves room for one more line */
#define ALOG_FLUSH_MS 100

static int alog_fd = -1;
static char *alog_path;
static double alog_sample = 1.0;

int alog_open(const char *path, double sample)
{
    if (path == NULL)
        return 0;
    alog_sample = sample;
    if (strcmp(path, "-") == 0) {
        alog_fd = STDOUT_FILENO;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd == -1)
        return -errno;
    alog_fd = fd;
    alog_path = strdup(path);
    return 0;
}

int alog_enabled(void)
{
    return alog_fd != -1;
}

void alog_reopen(void)
{
    if (alog_path == NULL)
        return;
    int fd = open(alog_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd == -1)
        return;
    dup2(fd, alog_fd);
    close(fd);
}

void alog_close(void)
{
    if (alog_fd > STDERR_FILENO)
        close(alog_fd);
    alog_fd = -1;
    free(alog_path);
    alog_path = NULL;
}

void alog_flush(struct worker *w)
{
    struct alog_buf *b = &w->alog;
    if (b->len == 0 || alog_fd == -1)
        return;
    size_t off = 0;
    while (off < b->len) {
        ssize_t n = write(alog_fd, b->buf + off, b->len - off);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            break; /* a full disk or a closed pipe: drop, never block serving */
        }
        off += (size_t)n;
    }
    b->len = 0;
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    alog_flush(arg);
}

/* Appends <s> as a JSON string body: escapes quotes, backslashes, controls and
 * bytes >= 0x80 (as \u00XX, so the line is valid UTF-8 whatever the path). */
static char *json_str(char *p, const char *end, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n && p + 7 < end; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            memcpy(p, "\\u00", 4);
            p[4] = hex[c >> 4];
            p[5] = hex[c & 15];
            p += 6;
        } else {
            *p++ = (char)c;
        }
    }
    return p;
}

static char *put_field(char *p, const char *end, const char *key, const char *v, size_t n)
{
    size_t k = strlen(key);
    if (p + k + 6 >= end)
        return p;
    *p++ = ',';
    *p++ = '"';
    memcpy(p, key, k);
    p += k;
    memcpy(p, "\":", 2);
    p += 2;
    if (v == NULL) {
        if (p + 4 < end) {
            memcpy(p, "null", 4);
            p += 4;
        }
        return p;
    }
    *p++ = '"';
    p = json_str(p, end - 2, v, n);
    *p++ = '"';
    return p;
}

void alog_write(struct worker *w, const struct alog_entry *e)
{
    if (alog_fd == -1)
        return;
    if (alog_sample < 1.0) {
        w->rng ^= w->rng << 13;
        w->rng ^= w->rng >> 7;
        w->rng ^= w->rng << 17;
        if ((double)(w->rng >> 11) * (1.0 / 9007199254740992.0) >= alog_sample)
            return;
    }
    struct alog_buf *b = &w->alog;
    if (b->len > ALOG_FLUSH_AT)
        alog_flush(w);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (tv.tv_sec != b->stamp_sec) {
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        strftime(b->stamp, sizeof(b->stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        b->stamp_sec = tv.tv_sec;
    }
    char *p = b->buf + b->len, *end = b->buf + sizeof(b->buf) - 2;
    p += snprintf(p, (size_t)(end - p), "{\"time\":\"%s.%03dZ\"", b->stamp,
                  (int)(tv.tv_usec / 1000));
    p = put_field(p, end, "route", e->route, e->route ? strlen(e->route) : 0);
    p = put_field(p, end, "track", e->track, e->track ? strlen(e->track) : 0);
    p = put_field(p, end, "server", e->server, e->server ? strlen(e->server) : 0);
    p = put_field(p, end, "method", e->method, e->method_len);
    /* paths are capped so that one line always fits a pipe write */
    p = put_field(p, end, "path", e->path, e->path_len > 400 ? 400 : e->path_len);
    p = put_field(p, end, "proto", e->proto, strlen(e->proto));
    if (p + 200 < end) {
        p += snprintf(p, (size_t)(end - p),
                      ",\"tls\":%s,\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,"
                      "\"upstream_ms\":",
                      e->tls ? "true" : "false", e->status, (unsigned long long)e->bytes_in,
                      (unsigned long long)e->bytes_out);
        if (e->upstream_us < 0)
            p += snprintf(p, (size_t)(end - p), "null");
        else
            p += snprintf(p, (size_t)(end - p), "%.3f", (double)e->upstream_us / 1000.0);
        p += snprintf(p, (size_t)(end - p), ",\"total_ms\":%.3f,\"forced\":%s",
                      (double)e->total_us / 1000.0, e->forced ? "true" : "false");
    }
    p = put_field(p, end, "reason", e->reason, e->reason ? strlen(e->reason) : 0);
    *p++ = '}';
    *p++ = '\n';
    b->len = (size_t)(p - b->buf);
    if (b->len > ALOG_FLUSH_AT) {
        alog_flush(w);
    } else if (b->timer != NULL && !evtimer_pending(b->timer, NULL)) {
        struct timeval t = {0, ALOG_FLUSH_MS * 1000};
        evtimer_add(b->timer, &t);
    }
}

int alog_worker_init(struct worker *w)
{
    w->alog.timer = evtimer_new(w->base, flush_cb, w);
    return w->alog.timer != NULL ? 0 : -1;
}
