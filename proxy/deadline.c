#include "deadline.h"

#include "log.h"

void deadline_init(struct deadline *d, struct event_base *base, event_callback_fn cb, void *arg)
{
    evtimer_assign(&d->ev, base, cb, arg);
    d->due_ms = d->at_ms = 0;
}

static void add_ms(struct deadline *d, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(&d->ev, &tv);
}

void deadline_arm(struct deadline *d, unsigned ms)
{
    d->due_ms = cut_now_cached_ms() + ms;
    if (d->at_ms != 0 && d->at_ms <= d->due_ms)
        return; /* fires first, then re-arms for the rest */
    add_ms(d, ms);
    d->at_ms = d->due_ms;
}

void deadline_stop(struct deadline *d)
{
    if (d->at_ms != 0)
        event_del(&d->ev);
    d->due_ms = d->at_ms = 0;
}

int deadline_expired(struct deadline *d)
{
    d->at_ms = 0;
    if (d->due_ms == 0)
        return 0;
    uint64_t now = cut_now_ms();
    if (now < d->due_ms) {
        add_ms(d, d->due_ms - now);
        d->at_ms = d->due_ms;
        return 0;
    }
    d->due_ms = 0;
    return 1;
}
