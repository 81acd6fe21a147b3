/*
 * tap.h: a tiny TAP harness (picotest-style). One binary per module; each
 * prints TAP ("ok N - name" / "not ok N - name") and a plan, and exits 1 if
 * any check failed. tests/run_unit.sh runs them all and prints the summary.
 *
 *   ok(cond, "fmt", ...)    one check
 *   subtest("name", fn)     groups checks under a comment line
 *   return done_testing();  at the end of main()
 */
#ifndef CUTOVER_TAP_H
#define CUTOVER_TAP_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

static int tap_n, tap_failed;

__attribute__((format(printf, 4, 5))) static inline int tap_ok(int cond, const char *file,
                                                               int line, const char *fmt, ...)
{
    va_list ap;
    tap_n++;
    printf("%sok %d - ", cond ? "" : "not ", tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!cond) {
        tap_failed++;
        printf("#   failed at %s:%d\n", file, line);
    }
    fflush(stdout);
    return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* Seeded, repeatable randomness for the tests (xorshift64 on <*state>, never 0). */
static inline uint64_t tap_xorshift64(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

static inline void subtest(const char *name, void (*fn)(void))
{
    printf("# %s\n", name);
    fn();
}

static inline int done_testing(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif
