/*
 * wait.h - helpers shared by the blocking primitives (future.c, sync.c,
 * chan.c): wait queues of coroutines on top of weft__block/weft__wake.
 *
 * A wait queue is a struct weft__list of coroutines linked through
 * co->link.  Invariant: a coroutine is on a wait queue only while it is
 * WAITING.  weft__block() and weft__wake() keep it: a waiter that times
 * out, is raised into or is ended is unlinked by the core before it
 * becomes ready, and a waker pops the waiter before waking it.  So the
 * first element of a queue is always someone who can take a wake-up, and
 * a wake-up is never given to a waiter that already gave up.
 *
 * Hand-off: a waker completes the waiter's operation before waking it
 * (gives it the mutex, the permit, the item in a slot it reaches through
 * co->wait_obj) and wakes it with result 0.  From then on the waiter is
 * READY, not WAITING: a raise or an end no longer interrupts that call
 * (weft_raise() keeps the error pending for the next blocking call), so
 * the waiter's call returns 0 and nothing is lost.
 *
 * Objects record the owning thread's token (the scheduler's `owner`) so
 * that the thread check never dereferences the scheduler: an object may
 * be freed after its scheduler (its waiters were released with the
 * scheduler and unlinked from its queue by weft__coro_release()).
 */
#ifndef WEFT_WAIT_H
#define WEFT_WAIT_H

#include "internal.h"

/* Whether the calling thread owns an object that recorded `owner`. */
static inline int weft__obj_mine(const void *owner)
{
    return owner == (const void *)&weft__tls;
}

/* Validate a deadline and check that the caller may block on s; on
 * success *co is the calling coroutine.  Consumes a pending raise. */
static inline int weft__wait_check(weft_sched *s, int64_t deadline,
                                   weft_coro **co)
{
    if (deadline < -1)
        return -EINVAL;
    return weft__block_check(s, co);
}

/* Queue co (the caller) at the tail of q and block until woken or the
 * deadline.  Returns the wake result; on failure co is off q. */
static inline int weft__wait_on(weft_sched *s, weft_coro *co,
                                struct weft__list *q, void *slot,
                                int64_t deadline)
{
    weft__list_push_back(q, &co->link);
    co->wait_obj = slot;
    return weft__block(s, deadline);
}

static inline weft_coro *weft__waitq_first(const struct weft__list *q)
{
    return weft__list_empty(q) ? NULL
                               : weft__container_of(q->next, weft_coro, link);
}

static inline weft_coro *weft__waitq_pop(struct weft__list *q)
{
    struct weft__list *n = weft__list_pop_front(q);
    return n ? weft__container_of(n, weft_coro, link) : NULL;
}

/* Wake every waiter of q with result; returns how many. */
static inline int weft__waitq_wake_all(struct weft__list *q, int result)
{
    int n = 0;
    weft_coro *co;
    while ((co = weft__waitq_pop(q)) != NULL) {
        weft__wake(co, result);
        n++;
    }
    return n;
}

#endif /* WEFT_WAIT_H */
