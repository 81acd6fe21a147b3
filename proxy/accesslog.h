/*
 * accesslog.h: one JSON line per finished exchange.
 *
 * Each worker formats into its own buffer and writes whole lines with one
 * write(2) when the buffer passes a few KiB or 100 ms after its first line,
 * so the hot path makes no syscall per request. Writes stay under PIPE_BUF,
 * so lines from several workers never interleave, even on a pipe. SIGUSR1
 * reopens the file (alog_reopen), atomically for the writers (dup2).
 */
#ifndef CUTOVER_ACCESSLOG_H
#define CUTOVER_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

struct worker;

struct alog_entry {
    const char *route, *track, *server; /* NULL: "-" */
    const char *method;
    size_t method_len;
    const char *path;
    size_t path_len;
    int status;                         /* 0: none sent */
    uint64_t bytes_in, bytes_out;       /* request and response body bytes */
    int64_t upstream_us;                /* -1: no upstream response */
    uint64_t total_us;
    const char *proto;                  /* "HTTP/1.1", "HTTP/2" */
    int tls;
    int forced;                         /* routed by the override */
    const char *reason;                 /* proxy error reason or NULL */
};

/* Opens <path> ("-": stdout) with sampling share <sample> (0..1). Main thread,
 * before the workers start. Returns 0 or -errno. */
int alog_open(const char *path, double sample);

/* 1 when an access log is configured. */
int alog_enabled(void);

/* Reopens the file after rotation (SIGUSR1). Any thread. */
void alog_reopen(void);

/* Formats <e> into <w>'s buffer (sampled). Worker thread. */
void alog_write(struct worker *w, const struct alog_entry *e);

/* Writes out <w>'s buffer. Worker thread (timer, exit). */
void alog_flush(struct worker *w);

void alog_close(void);

/* Sets up <w>'s flush timer. Returns 0 or -1. */
int alog_worker_init(struct worker *w);

#endif
