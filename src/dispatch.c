/*
 * dispatch.c - asycamore's dispatch loop: weft_dispatch_once() (one
 * iteration with an error policy) and weft_iterate() (the reference main
 * loop with before/after callbacks that may change its variables).
 */
#include "internal.h"

int weft_dispatch_once(weft_sched *s, int64_t timeout_ns, int error_in_handler)
{
    if (error_in_handler != WEFT_DISPATCH_ERR_CONTINUE &&
        error_in_handler != WEFT_DISPATCH_ERR_STOP)
        return -EINVAL;
    weft_sched *rs = weft__sched_arg(s);
    if (!rs)
        return -EINVAL;
    rs->first_failure = 0;
    int r = weft_run_once(rs, timeout_ns);
    if (r >= 0 && error_in_handler == WEFT_DISPATCH_ERR_STOP &&
        rs->first_failure < 0)
        r = rs->first_failure;
    rs->first_failure = 0;
    return r;
}

/* Run a callback; returns 0 to go on or what ends the loop. */
static int call(weft_dispatch_fn fn, weft_sched *s,
                struct weft_dispatch_vars *v)
{
    if (!fn)
        return 0;
    int r = fn(s, v);
    return r == WEFT_DISPATCH_STOP || r < 0 ? r : 0;
}

int weft_iterate(weft_sched *s, struct weft_dispatch_vars *v)
{
    if (!v)
        return -EINVAL;
    for (;;) {
        if (v->count == 0)
            return 0;
        int r = call(v->before, s, v);
        if (r)
            return r;
        if (v->count == 0)
            return 0; /* the callback asked for no more dispatches */
        int more = weft_dispatch_once(s, v->timeout, v->error_in_handler);
        if (more < 0)
            return more;
        if (v->count > 0)
            v->count--;
        r = call(v->after, s, v);
        if (r)
            return r;
        if (!more)
            return 0;
    }
}
