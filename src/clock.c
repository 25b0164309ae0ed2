/*
 * clock.c - the scheduler's clock (monotonic or manual) and conversions
 * to and from Unix time.
 */
#include <time.h>

#include "internal.h"

static int64_t read_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t weft__realtime_ns(void)
{
    return read_clock(CLOCK_REALTIME);
}

int64_t weft__clock_now(weft_sched *s)
{
    if (s->clock == WEFT_CLOCK_MANUAL)
        return s->manual_now;
    return read_clock(CLOCK_MONOTONIC);
}

int64_t weft_now(weft_sched *s)
{
    s = weft__sched_arg(s);
    if (!s)
        return -EINVAL;
    return weft__clock_now(s);
}

int weft_clock_advance(weft_sched *s, int64_t delta_ns)
{
    s = weft__sched_arg(s);
    if (!s || s->clock != WEFT_CLOCK_MANUAL || delta_ns < 0)
        return -EINVAL;
    if (s->manual_now > INT64_MAX - delta_ns)
        return -EINVAL;
    s->manual_now += delta_ns;
    return 0;
}

int weft_clock_set(weft_sched *s, int64_t t)
{
    s = weft__sched_arg(s);
    if (!s || s->clock != WEFT_CLOCK_MANUAL || t < s->manual_now)
        return -EINVAL;
    s->manual_now = t;
    return 0;
}

/* Unix time minus scheduler time, now. */
static int64_t unix_offset(weft_sched *s)
{
    if (s->clock == WEFT_CLOCK_MANUAL)
        return s->unix_base;
    return read_clock(CLOCK_REALTIME) - read_clock(CLOCK_MONOTONIC);
}

int64_t weft_from_unix(weft_sched *s, int64_t unix_ns)
{
    s = weft__sched_arg(s);
    if (!s)
        return -EINVAL;
    return unix_ns - unix_offset(s);
}

int64_t weft_to_unix(weft_sched *s, int64_t t)
{
    s = weft__sched_arg(s);
    if (!s)
        return -EINVAL;
    return t + unix_offset(s);
}
