/* Passive outlier ejection: timing, backoff, the cap, the last server. */
#include "../../routing/outlier.h"

#include <string.h>

#include "tap.h"

static const struct conf_outlier C = {.consecutive_failures = 5,
                                      .base_ejection_ms = 10000,
                                      .max_ejection_ms = 300000,
                                      .max_ejected_percent = 50};

static uint64_t fail_n(struct outlier_state *s, const struct conf_outlier *c, int n,
                       unsigned n_servers, unsigned n_ejected, unsigned n_ok, uint64_t now)
{
    uint64_t ms = 0;
    for (int i = 0; i < n; i++) {
        uint64_t r = outlier_on_outcome(s, c, 1, n_servers, n_ejected, n_ok, now);
        if (r != 0)
            ms = r;
    }
    return ms;
}

static void test_timing(void)
{
    struct outlier_state s;
    memset(&s, 0, sizeof(s));
    ok(fail_n(&s, &C, 4, 4, 0, 3, 1000) == 0, "4 failures in a row: still in");
    ok(!outlier_is_ejected(&s, 1000), "not ejected after 4");
    ok(outlier_on_outcome(&s, &C, 1, 4, 0, 3, 1000) == 10000, "5th failure ejects for base 10 s");
    ok(outlier_is_ejected(&s, 10999) && !outlier_is_ejected(&s, 11000), "ejected until 11000");
    ok(fail_n(&s, &C, 10, 4, 0, 3, 2000) == 0, "failures while ejected change nothing");
    /* a success in between resets the run */
    memset(&s, 0, sizeof(s));
    fail_n(&s, &C, 4, 4, 0, 3, 0);
    outlier_on_outcome(&s, &C, 0, 4, 0, 3, 0);
    ok(fail_n(&s, &C, 4, 4, 0, 3, 0) == 0, "a success resets the consecutive count");
}

static void test_backoff(void)
{
    struct outlier_state s;
    memset(&s, 0, sizeof(s));
    uint64_t now = 0, want = 10000;
    for (int k = 0; k < 8; k++) {
        uint64_t ms = fail_n(&s, &C, 5, 4, 0, 3, now);
        ok(ms == want, "ejection %d lasts %llu ms (got %llu)", k + 1, (unsigned long long)want,
           (unsigned long long)ms);
        now = s.ejected_until_ms; /* back in, fails again at once */
        want = want * 2 > 300000 ? 300000 : want * 2;
    }
    /* forgiven after max_ejection_ms in good health */
    outlier_on_outcome(&s, &C, 0, 4, 0, 3, now + 300001);
    ok(s.n_ejections == 0, "ejection count forgiven after max_ejection_ms of health");
    ok(fail_n(&s, &C, 5, 4, 0, 3, now + 300002) == 10000, "next ejection is base again");
}

static void test_cap_and_last(void)
{
    struct outlier_state s;
    memset(&s, 0, sizeof(s));
    ok(fail_n(&s, &C, 5, 1, 0, 0, 0) == 0, "a track's only server is never ejected");
    memset(&s, 0, sizeof(s));
    ok(fail_n(&s, &C, 5, 2, 0, 1, 0) == 10000, "1 of 2 at 50 %%: ejected");
    memset(&s, 0, sizeof(s));
    ok(fail_n(&s, &C, 5, 2, 1, 0, 0) == 0, "2 of 2: the other is out, this one stays");
    memset(&s, 0, sizeof(s));
    ok(fail_n(&s, &C, 5, 4, 2, 1, 0) == 0, "3 of 4 would pass 50 %%: stays");
    memset(&s, 0, sizeof(s));
    ok(fail_n(&s, &C, 5, 4, 1, 2, 0) == 10000, "2 of 4 is 50 %%: ejected");
    struct outlier_state t;
    memset(&t, 0, sizeof(t));
    struct conf_outlier off = C;
    off.consecutive_failures = 0;
    ok(fail_n(&t, &off, 100, 4, 0, 3, 0) == 0, "consecutive_failures = 0 disables ejection");
    struct conf_outlier none = C;
    none.max_ejected_percent = 0;
    memset(&t, 0, sizeof(t));
    ok(fail_n(&t, &none, 5, 10, 0, 9, 0) == 0, "max_ejected_percent = 0: never");
}

int main(void)
{
    subtest("timing", test_timing);
    subtest("backoff", test_backoff);
    subtest("cap and last server", test_cap_and_last);
    return done_testing();
}
