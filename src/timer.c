/*
 * timer.c - callback timers: one-shot and repeating functions run by the
 * scheduler without a coroutine (libuv-style), on the shared timer heap.
 */
#include <string.h>

#include "internal.h"

struct weft_timer {
    struct weft__tnode node;
    struct weft__list link; /* in sched->timers */
    weft_sched *sched;
    weft_timer_fn cb;
    void *arg;
    int64_t repeat;
};

/* The first point due + k*repeat (k >= 1) after now: grid points already
 * passed are skipped, not fired in a burst.  Saturates at INT64_MAX (and
 * computes in unsigned arithmetic, so no step of it can overflow). */
static int64_t next_grid_point(int64_t due, int64_t repeat, int64_t now)
{
    uint64_t behind = now > due ? (uint64_t)now - (uint64_t)due : 0;
    uint64_t k = behind / (uint64_t)repeat + 1;
    uint64_t room = (uint64_t)INT64_MAX - (uint64_t)due;
    if (k > room / (uint64_t)repeat)
        return INT64_MAX;
    return (int64_t)((uint64_t)due + k * (uint64_t)repeat);
}

static void fire(weft_sched *s, struct weft__tnode *n)
{
    weft_timer *t = weft__container_of(n, weft_timer, node);
    if (t->repeat > 0) {
        int64_t due = next_grid_point(t->node.due, t->repeat,
                                      weft__clock_now(s));
        if (weft__timer_add(s, &t->node, due) < 0) {
            /* The heap cannot grow: the timer stops rather than lying. */
            s->active_timers--;
        }
    } else {
        s->active_timers--;
    }
    /* Rearmed before the call, so the callback may stop or free it. */
    t->cb(t, t->arg);
}

int weft_timer_new(weft_sched *s, weft_timer_fn cb, void *arg,
                   weft_timer **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    s = weft__sched_arg(s);
    if (!s || !cb)
        return -EINVAL;
    weft_timer *t = weft__calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    weft__tnode_init(&t->node, fire);
    t->sched = s;
    t->cb = cb;
    t->arg = arg;
    weft__list_push_back(&s->timers, &t->link);
    *out = t;
    return 0;
}

static int usable(const weft_timer *t)
{
    return t && weft__owned(t->sched);
}

int weft_timer_start_at(weft_timer *t, int64_t t0, int64_t repeat_ns)
{
    if (!usable(t) || repeat_ns < 0)
        return -EINVAL;
    weft_sched *s = t->sched;
    int was_active = t->node.idx != WEFT__NOT_IN_HEAP;
    int r = weft__timer_add(s, &t->node, t0);
    if (r < 0) {
        if (was_active)
            s->active_timers--; /* weft__timer_add removed it first */
        return r;
    }
    t->repeat = repeat_ns;
    if (!was_active)
        s->active_timers++;
    return 0;
}

int weft_timer_start(weft_timer *t, int64_t timeout_ns, int64_t repeat_ns)
{
    if (!usable(t) || timeout_ns < 0 || repeat_ns < 0)
        return -EINVAL;
    int64_t now = weft__clock_now(t->sched);
    int64_t due = now > INT64_MAX - timeout_ns ? INT64_MAX : now + timeout_ns;
    return weft_timer_start_at(t, due, repeat_ns);
}

int weft_timer_stop(weft_timer *t)
{
    if (!usable(t))
        return -EINVAL;
    if (t->node.idx != WEFT__NOT_IN_HEAP) {
        weft__timer_del(t->sched, &t->node);
        t->sched->active_timers--;
    }
    return 0;
}

int weft_timer_again(weft_timer *t)
{
    if (!usable(t) || t->repeat <= 0)
        return -EINVAL;
    return weft_timer_start(t, t->repeat, t->repeat);
}

int weft_timer_active(const weft_timer *t)
{
    return t && t->node.idx != WEFT__NOT_IN_HEAP;
}

int weft_timer_set_repeat(weft_timer *t, int64_t repeat_ns)
{
    if (!usable(t) || repeat_ns < 0)
        return -EINVAL;
    t->repeat = repeat_ns;
    return 0;
}

int64_t weft_timer_due(const weft_timer *t)
{
    if (!t || t->node.idx == WEFT__NOT_IN_HEAP)
        return -1;
    return t->node.due;
}

int weft_timer_free(weft_timer *t)
{
    if (!usable(t))
        return -EINVAL;
    weft_timer_stop(t);
    weft__list_remove(&t->link);
    weft__free(t);
    return 0;
}

void weft__timers_free_all(weft_sched *s);
void weft__timers_free_all(weft_sched *s)
{
    while (!weft__list_empty(&s->timers)) {
        weft_timer *t = weft__container_of(s->timers.next, weft_timer, link);
        weft_timer_free(t);
    }
}
