#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int cut_log_level = CUT_INFO;

static const char *const level_names[CUT_N_LEVELS] = {"err", "warn", "info", "debug"};
static char *log_path;
static int log_fd = STDERR_FILENO;

int cut_log_level_parse(const char *s)
{
    for (int i = 0; i < CUT_N_LEVELS; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int cut_log_open(const char *path)
{
    if (path == NULL || strcmp(path, "-") == 0)
        return 0;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd == -1)
        return -errno;
    free(log_path);
    log_path = strdup(path);
    if (log_fd != STDERR_FILENO)
        close(log_fd);
    log_fd = fd;
    return 0;
}

void cut_log_reopen(void)
{
    if (log_path == NULL)
        return;
    int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd == -1)
        return;
    /* dup2 swaps atomically for writers on other threads */
    dup2(fd, log_fd);
    close(fd);
}

void cut_log_write(int level, const char *fmt, ...)
{
    char buf[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(tv.tv_usec / 1000), level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(buf) - 2)
        len = sizeof(buf) - 2;
    buf[len++] = '\n';
    /* one write(2) per line: lines from several threads never interleave */
    ssize_t w = write(log_fd, buf, len);
    (void)w;
}

void cut_bug(const char *file, int line, const char *what)
{
    cut_log_write(CUT_ERR, "BUG at %s:%d: %s", file, line, what);
    abort();
}

_Thread_local uint64_t cut_clock_us = CUT_CLOCK_OFF;

uint64_t cut_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t cut_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
