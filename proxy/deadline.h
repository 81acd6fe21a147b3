/*
 * deadline.h: a lazy timeout on one libevent timer, for waits that are
 * re-armed on every request or every read (the exchange's upstream waits, the
 * HTTP/1.1 front's header and idle timeouts).
 *
 * deadline_arm() records when the wait times out and touches libevent only
 * when no timer is pending or the pending one would fire too late; a timer
 * that fires early re-arms itself for the rest (deadline_expired()), and
 * deadline_cancel() just forgets the deadline. A keep-alive request then
 * costs no event_add/event_del at all. One thread (a worker's base).
 */
#ifndef CUTOVER_DEADLINE_H
#define CUTOVER_DEADLINE_H

#include <stdint.h>
#include <sys/time.h>

#include <event2/event.h>
#include <event2/event_struct.h>

struct deadline {
    struct event ev;
    uint64_t due_ms; /* when the current wait times out; 0: no wait */
    uint64_t at_ms;  /* expiry of the pending timer; 0: not pending */
};

/* Sets up <d> with <cb>(fd, what, arg) run at expiry (see deadline_expired()). */
void deadline_init(struct deadline *d, struct event_base *base, event_callback_fn cb, void *arg);

/* The wait times out <ms> from now. (The timer is added rarely, so a plain
 * timeout does: libevent's common timeouts, which made frequent re-adds
 * cheap, no longer pay for themselves.) */
void deadline_arm(struct deadline *d, unsigned ms);

/* No wait any more; a pending timer fires later for nothing. */
static inline void deadline_cancel(struct deadline *d)
{
    d->due_ms = 0;
}

/* Removes a pending timer for good (before <d> is freed or re-initialised). */
void deadline_stop(struct deadline *d);

/* Call first in the timer callback: 1 if the wait has timed out (the
 * deadline is then cleared), 0 if nothing was due or the timer fired early
 * and was re-armed for the rest. */
int deadline_expired(struct deadline *d);

#endif
