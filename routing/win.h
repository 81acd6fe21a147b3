/*
 * win.h: per-track sliding windows of outcomes, a ring of 60 one-second slots.
 *
 * A slot is stamped with the absolute second it holds (now_ms / 1000). A write
 * at second t goes to slot t % 60; when that slot still holds an older second
 * it is emptied first, so a gap of any length (including more than 60 s) just
 * leaves stale slots behind that readers skip by their stamp. Nothing runs on
 * a timer: rotation is driven by the now_ms each call passes in.
 *
 *     write t = 125.4 s  -> slot 5, stamp 125 (was 65: emptied first)
 *     read  now = 130.0 s, span 10 s -> the stamps 121..130, i.e. the current
 *           (partial) second and the 9 before it; a span is rounded up to
 *           whole seconds and capped at 60.
 *
 * Threads: a struct win is plain integers with one writer (one worker, no
 * atomics). Readers merge several windows (one per worker) into a struct
 * win_stats with win_sum_many(); getting a worker's window to the reader
 * safely (copy, hand-off of finished tallies, a lock) is the caller's job.
 * A worker may also keep a struct win_tally per tick and hand it to another
 * thread, which adds it to a window of its own with win_add_tally(): the
 * guard does that, so it never reads a worker's memory.
 *
 * Memory: sizeof(struct win) is about 60 * 3 KiB = 180 KiB (one latency
 * histogram per second, see hist.h); allocate it once, at configuration time.
 */
#ifndef CUTOVER_WIN_H
#define CUTOVER_WIN_H

#include <stddef.h>
#include <stdint.h>

#include "hist.h"

#define WIN_SLOTS 60
#define WIN_SLOT_MS 1000u
#define WIN_SPAN_MS (WIN_SLOTS * WIN_SLOT_MS) /* 60000 */
#define WIN_NO_LATENCY UINT64_MAX             /* no response head: not a latency sample */

/* How an attempt failed without a usable response. */
enum win_fail {
    WIN_FAIL_NONE = 0, /* got a response head (see its status) */
    WIN_FAIL_CONNECT,  /* upstream connect failure */
    WIN_FAIL_TIMEOUT,  /* upstream timeout */
    WIN_FAIL_RESET,    /* upstream reset/closed before a complete response */
    WIN_FAIL_N
};

/* Status classes: [1]..[5] = 1xx..5xx, [0] = no status (a failure). */
#define WIN_N_CLASSES 6

/* One slot's worth (or one tick's worth) of outcomes for one track. */
struct win_tally {
    uint32_t n;                      /* outcomes: requests actually sent and finished */
    uint32_t n_err;                  /* of which errors (as classified by the caller) */
    uint32_t n_class[WIN_N_CLASSES]; /* by status class */
    uint32_t n_fail[WIN_FAIL_N];     /* by failure kind ([0] unused) */
    uint32_t n_err_5xx;              /* errors that were 5xx responses */
    uint32_t n_forced;               /* override-forced requests, counted apart (not in n) */
    uint32_t n_forced_err;
    struct hist lat; /* time to upstream response headers, us */
};

struct win_slot {
    uint64_t sec; /* absolute second held, UINT64_MAX when never written */
    struct win_tally t;
};

struct win {
    uint64_t last_sec; /* newest second written: now_ms never goes back past it */
    struct win_slot slot[WIN_SLOTS];
};

struct win_counts {
    uint64_t n, n_err;
    uint64_t n_class[WIN_N_CLASSES];
    uint64_t n_fail[WIN_FAIL_N];
    uint64_t n_err_5xx;
    uint64_t n_forced, n_forced_err;
};

/* The sum of one or more windows over the last span, as of now_ms. */
struct win_stats {
    uint64_t now_ms;
    unsigned n_sec;              /* whole seconds summed: ceil(span_ms / 1000), 1..60 */
    struct win_counts c;         /* totals over the span */
    uint64_t sec_n[WIN_SLOTS];   /* per second: [0] the second holding now_ms, [1] the one */
    uint64_t sec_err[WIN_SLOTS]; /*   before, ... up to [n_sec - 1]; zero beyond */
    struct hist lat;             /* latency over the span */
};

/* Empties a window. Call once before use (a zeroed struct is not enough). */
void win_init(struct win *w);

/* Empties a tally. */
void win_tally_init(struct win_tally *t);

/* Empties a tally that win_tally_init() set up once (cheaper: see hist_reset()). */
void win_tally_reset(struct win_tally *t);

/*
 * Counts one finished attempt in <t>: <status> is the upstream status (0 when
 * none), <fail> how it failed when there was no response head, <is_error>
 * the caller's verdict (5xx in the configured set, connect failure, timeout,
 * reset; 4xx is not an error unless configured), <latency_us> the time to the
 * response head or WIN_NO_LATENCY.
 */
void win_tally_add(struct win_tally *t, unsigned status, enum win_fail fail, int is_error,
                   uint64_t latency_us);

/* Counts an override-forced request: apart, never in n, errors or latency. */
void win_tally_add_forced(struct win_tally *t, int is_error);

/* Adds <t> into <dst>. */
void win_tally_merge(struct win_tally *dst, const struct win_tally *t);

/* win_tally_add() into the slot of <now_ms>. O(1). */
void win_add(struct win *w, uint64_t now_ms, unsigned status, enum win_fail fail, int is_error,
             uint64_t latency_us);

/* win_tally_add_forced() into the slot of <now_ms>. */
void win_add_forced(struct win *w, uint64_t now_ms, int is_error);

/* Adds a whole tally (e.g. a worker's last tick) into the slot of <now_ms>. */
void win_add_tally(struct win *w, uint64_t now_ms, const struct win_tally *t);

/*
 * Starts an empty sum over the last <span_ms> (rounded up to whole seconds,
 * at least 1, at most 60) as of <now_ms>.
 */
void win_stats_init(struct win_stats *st, uint64_t now_ms, unsigned span_ms);

/* Adds the slots of <w> that fall in <st>'s span. Slots stamped after now_ms are skipped. */
void win_accumulate(struct win_stats *st, const struct win *w);

/* win_stats_init() + win_accumulate(): the stats of one window. */
void win_sum(const struct win *w, uint64_t now_ms, unsigned span_ms, struct win_stats *out);

/* The merged stats of <n> windows (one per worker, say). */
void win_sum_many(const struct win *const *ws, size_t n, uint64_t now_ms, unsigned span_ms,
                  struct win_stats *out);

/*
 * Outcomes and errors over the most recent <span_ms> of an already summed
 * <st> (rounded up to whole seconds and capped at st->n_sec), from its
 * per-second breakdown.
 */
void win_stats_recent(const struct win_stats *st, unsigned span_ms, uint64_t *n, uint64_t *err);

#endif
