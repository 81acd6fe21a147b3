/*
 * log.h: the error log. cut_log() checks the level before it evaluates its
 * arguments, so a disabled debug line costs one compare.
 */
#ifndef CUTOVER_LOG_H
#define CUTOVER_LOG_H

#include <stdint.h>

enum cut_level { CUT_ERR = 0, CUT_WARN, CUT_INFO, CUT_DEBUG, CUT_N_LEVELS };

extern int cut_log_level;

/* Parses "err", "warn", "info", "debug"; returns the level or -1. */
int cut_log_level_parse(const char *s);

/* Opens <path> (NULL or "-": stderr) for the error log. Returns 0 or -errno. */
int cut_log_open(const char *path);

/* Reopens the error log file (SIGUSR1). */
void cut_log_reopen(void);

__attribute__((format(printf, 2, 3))) void cut_log_write(int level, const char *fmt, ...);

#define cut_log(level, ...)                                                                        \
    do {                                                                                           \
        if ((level) <= cut_log_level)                                                              \
            cut_log_write((level), __VA_ARGS__);                                                   \
    } while (0)

/* Logs file:line and aborts: invariants that must hold even in production. */
#define CUT_BUG_ON(cond)                                                                           \
    do {                                                                                           \
        if (__builtin_expect(!!(cond), 0))                                                         \
            cut_bug(__FILE__, __LINE__, #cond);                                                    \
    } while (0)

__attribute__((noreturn)) void cut_bug(const char *file, int line, const char *what);

/* Monotonic milliseconds. */
uint64_t cut_now_ms(void);
/* Monotonic microseconds. */
uint64_t cut_now_us(void);

#endif
