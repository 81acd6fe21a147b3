/*
 * test_win.c: 60 x 1 s outcome windows (routing/win.c).
 */
#include "../../routing/win.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

static struct win *win_new(void)
{
    struct win *w = malloc(sizeof(*w));

    if (!w) {
        printf("Bail out! out of memory\n");
        exit(1);
    }
    win_init(w);
    return w;
}

static struct win_stats st, st2;

static void test_one_second(void)
{
    struct win *w = win_new();

    win_add(w, 5000, 200, WIN_FAIL_NONE, 0, 1200);
    win_add(w, 5100, 404, WIN_FAIL_NONE, 0, 900);
    win_add(w, 5200, 503, WIN_FAIL_NONE, 1, 300);
    win_add(w, 5300, 500, WIN_FAIL_NONE, 0, 250); /* a 5xx outside the caller's error set */
    win_add(w, 5400, 0, WIN_FAIL_CONNECT, 1, WIN_NO_LATENCY);
    win_add(w, 5500, 0, WIN_FAIL_TIMEOUT, 1, WIN_NO_LATENCY);
    win_add(w, 5600, 0, WIN_FAIL_RESET, 1, WIN_NO_LATENCY);
    win_add(w, 5700, 429, WIN_FAIL_NONE, 1, 100); /* 429 opted in by the caller */
    win_add_forced(w, 5800, 1);
    win_add_forced(w, 5900, 0);
    win_sum(w, 5999, 1000, &st);
    ok(st.n_sec == 1 && st.c.n == 8 && st.c.n_err == 5,
       "8 outcomes, 5 errors in the second (forced not counted)");
    ok(st.c.n_class[2] == 1 && st.c.n_class[4] == 2 && st.c.n_class[5] == 2 && st.c.n_class[0] == 3,
       "status classes: 1 2xx, 2 4xx, 2 5xx, 3 without a status");
    ok(st.c.n_fail[WIN_FAIL_CONNECT] == 1 && st.c.n_fail[WIN_FAIL_TIMEOUT] == 1 &&
           st.c.n_fail[WIN_FAIL_RESET] == 1 && st.c.n_err_5xx == 1,
       "error kinds: connect, timeout, reset 1 each; one 5xx counted as an error");
    ok(st.c.n_forced == 2 && st.c.n_forced_err == 1, "override-forced counted apart: 2, 1 error");
    ok(st.lat.count == 5 && st.lat.min == 100 && st.lat.max == 1200,
       "latency histogram holds the 5 attempts with a response head");
    ok(st.sec_n[0] == 8 && st.sec_err[0] == 5 && st.sec_n[1] == 0, "per-second breakdown");
    free(w);
}

static void test_rotation(void)
{
    struct win *w = win_new();
    uint64_t t, n, e;
    unsigned i, bad = 0;

    /* one request per second for 100 s, an error every 10th */
    for (t = 0; t < 100; t++)
        win_add(w, t * 1000 + 500, t % 10 == 0 ? 500 : 200, WIN_FAIL_NONE, t % 10 == 0, t + 1);
    win_sum(w, 99999, WIN_SPAN_MS, &st);
    ok(st.c.n == 60 && st.c.n_err == 6 && st.lat.min == 41 && st.lat.max == 100,
       "after 100 s the 60 s window holds seconds 40..99");
    for (i = 0; i < WIN_SLOTS; i++)
        if (st.sec_n[i] != 1 || st.sec_err[i] != ((99 - i) % 10 == 0))
            bad++;
    ok(bad == 0, "per-second breakdown: [0] is second 99, [59] is second 40");
    win_stats_recent(&st, 10000, &n, &e);
    ok(n == 10 && e == 1, "the last 10 s of it: 10 requests, 1 error");
    win_stats_recent(&st, 1, &n, &e);
    ok(n == 1, "a 1 ms span rounds up to the current second");
    win_stats_recent(&st, 3600000, &n, &e);
    ok(n == 60, "a span beyond 60 s is capped");
    win_sum(w, 99999, 10000, &st);
    ok(st.n_sec == 10 && st.c.n == 10 && st.c.n_err == 1 && st.sec_n[10] == 0,
       "win_sum over 10 s sums seconds 90..99 only");
    win_sum(w, 99999, 10001, &st);
    ok(st.n_sec == 11 && st.c.n == 11, "10001 ms rounds up to 11 whole seconds");
    free(w);
}

static void test_boundaries(void)
{
    struct win *w = win_new();

    win_add(w, 0, 200, WIN_FAIL_NONE, 0, 10);    /* second 0 */
    win_add(w, 999, 200, WIN_FAIL_NONE, 0, 10);  /* still second 0 */
    win_add(w, 1000, 200, WIN_FAIL_NONE, 0, 10); /* second 1 */
    win_sum(w, 59999, WIN_SPAN_MS, &st);
    ok(st.c.n == 3, "at 59.999 s a 60 s window still holds second 0");
    win_sum(w, 60000, WIN_SPAN_MS, &st);
    ok(st.c.n == 1, "at 60.000 s second 0 has left (seconds 1..60)");
    win_sum(w, 60999, WIN_SPAN_MS, &st);
    ok(st.c.n == 1, "at 60.999 s second 1 is still in");
    win_sum(w, 61000, WIN_SPAN_MS, &st);
    ok(st.c.n == 0, "at 61.000 s the window is empty");
    win_sum(w, 999, 1000, &st);
    ok(st.c.n == 2, "reading at 0.999 s with a 1 s span: second 0 only");
    win_sum(w, 500, WIN_SPAN_MS, &st);
    ok(st.c.n == 2, "a reader whose clock lags skips slots stamped after its now");

    /* exactly 60 s later the same slot is reused: it must be emptied, not added to */
    win_add(w, 60000, 500, WIN_FAIL_NONE, 1, 20);
    win_sum(w, 60000, 1000, &st);
    ok(st.c.n == 1 && st.c.n_err == 1 && st.lat.count == 1 && st.lat.min == 20,
       "writing second 60 into second 0's slot empties it first");
    win_sum(w, 60000, WIN_SPAN_MS, &st);
    ok(st.c.n == 2, "60 s window at 60.000 s: second 1 and second 60");
    free(w);
}

static void test_gaps(void)
{
    struct win *w = win_new();
    unsigned i;

    for (i = 0; i < 60; i++)
        win_add(w, i * 1000, 200, WIN_FAIL_NONE, 0, 5);
    win_add(w, 200000, 503, WIN_FAIL_NONE, 1, 7); /* 140 s of silence */
    win_sum(w, 200000, WIN_SPAN_MS, &st);
    ok(st.c.n == 1 && st.c.n_err == 1 && st.lat.count == 1,
       "after a 140 s gap only the new second counts");
    win_sum(w, 200000 + 59999, WIN_SPAN_MS, &st);
    ok(st.c.n == 1, "... and it stays for 60 s");
    win_sum(w, 200000 + 60000, WIN_SPAN_MS, &st);
    ok(st.c.n == 0, "... then leaves; stale slots from before the gap never come back");
    win_sum(w, 10ull * 24 * 3600 * 1000, WIN_SPAN_MS, &st);
    ok(st.c.n == 0, "ten days later: empty");

    /* a writer clock that steps back is counted in its newest second */
    win_add(w, 150000, 200, WIN_FAIL_NONE, 0, 5);
    win_sum(w, 200999, 1000, &st);
    ok(st.c.n == 2 && w->last_sec == 200, "now_ms going back is clamped to the newest second");
    free(w);
}

static void test_merge(void)
{
    struct win *w[3];
    const struct win *list[4];
    struct win *all = win_new();
    struct win_tally tally;
    uint64_t xs = 12345, t;
    unsigned i, k;

    for (k = 0; k < 3; k++)
        w[k] = win_new();
    for (i = 0; i < 30000; i++) {
        unsigned status;
        int err;
        uint64_t lat;

        xs ^= xs << 13;
        xs ^= xs >> 7;
        xs ^= xs << 17;
        t = 1000000 + i * 4; /* 120 s of traffic */
        status = xs % 100 < 3 ? 502 : (xs % 100 < 10 ? 404 : 200);
        err = status >= 500;
        lat = 100 + (xs >> 20) % 100000;
        win_add(w[xs % 3], t, status, WIN_FAIL_NONE, err, lat);
        win_add(all, t, status, WIN_FAIL_NONE, err, lat);
    }
    list[0] = w[0];
    list[1] = NULL;
    list[2] = w[1];
    list[3] = w[2];
    win_sum_many(list, 4, 1000000 + 120000, WIN_SPAN_MS, &st);
    win_sum(all, 1000000 + 120000, WIN_SPAN_MS, &st2);
    ok(memcmp(&st, &st2, sizeof(st)) == 0,
       "merging three workers' windows equals one window fed everything (%llu requests)",
       (unsigned long long)st.c.n);
    ok(hist_quantile(&st.lat, 0.99) == hist_quantile(&st2.lat, 0.99),
       "so the merged p99 is the same too");

    /* a tally handed over and added whole is the same as adding one by one */
    for (k = 0; k < 3; k++)
        win_init(w[k]);
    win_tally_init(&tally);
    for (i = 0; i < 100; i++) {
        win_tally_add(&tally, i % 7 ? 200 : 503, WIN_FAIL_NONE, i % 7 == 0, 1000 + i);
        win_add(w[1], 7500, i % 7 ? 200 : 503, WIN_FAIL_NONE, i % 7 == 0, 1000 + i);
    }
    win_tally_add_forced(&tally, 0);
    win_add_forced(w[1], 7500, 0);
    win_add_tally(w[0], 7500, &tally);
    win_sum(w[0], 7999, 1000, &st);
    win_sum(w[1], 7999, 1000, &st2);
    ok(memcmp(&st, &st2, sizeof(st)) == 0, "win_add_tally == the same outcomes via win_add");
    for (k = 0; k < 3; k++)
        free(w[k]);
    free(all);
}

int main(void)
{
    printf("# sizeof(struct win) = %zu bytes, sizeof(struct win_stats) = %zu bytes\n",
           sizeof(struct win), sizeof(struct win_stats));
    subtest("one second: counts, kinds, classes, forced", test_one_second);
    subtest("rotation over 100 s", test_rotation);
    subtest("exact second boundaries", test_boundaries);
    subtest("gaps longer than 60 s, clock stepping back", test_gaps);
    subtest("merging several workers' windows", test_merge);
    return done_testing();
}
