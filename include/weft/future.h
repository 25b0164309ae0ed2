/*
 * weft/future.h - futures: one-shot completion values (Twisted's Deferred).
 *
 * Part of the public API; normally reached through "weft.h", which includes
 * it at its end.  Including this file on its own also works: it includes
 * "../weft.h" first (the include guards break the cycle), so the types it
 * relies on (weft_sched, WEFT_API) are always declared before use.
 *
 * A future starts pending and is decided exactly once: resolved with a
 * value (a void *) or failed with a negative errno value.  Coroutines wait
 * on it with a deadline; callbacks attach to it and run, in the order they
 * were added, when it is decided.  See docs/sync.md for the concepts.
 *
 * Ownership (reference counting):
 *   - weft_future_new() and the gather functions return a future holding
 *     one reference, owned by the caller; drop it with
 *     weft_future_release().  weft_future_retain() adds one.
 *   - A coroutine waiting on a future keeps it alive for the duration of
 *     the wait, and a gather future (weft_future_all/any) holds a
 *     reference on each input until the input is decided or the gather
 *     is, so callers may release their references early.
 *   - Whoever will resolve a future must hold a reference to it until it
 *     does: a pending future whose last reference is dropped is freed
 *     without ever being decided, and its callbacks are never called.
 *   - Callbacks hold no reference; a callback may release the future it
 *     is called for (the future stays valid until the callback returns).
 *
 * All functions belong to the thread that owns the future's scheduler;
 * calls from another thread return -EINVAL (weft_future_value(): NULL).
 */
#ifndef WEFT_FUTURE_H
#define WEFT_FUTURE_H

#include <stddef.h>
#include <stdint.h>

#include "../weft.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_future weft_future;

/** States of a future (weft_future_state()). */
enum weft_future_state {
    WEFT_FUTURE_PENDING = 0,  /**< Not decided yet. */
    WEFT_FUTURE_RESOLVED = 1, /**< Resolved with a value. */
    WEFT_FUTURE_FAILED = 2    /**< Failed with an error (cancel included). */
};

/**
 * A callback attached with weft_future_then().  Called once, with the
 * decided future (query it with weft_future_state(), weft_future_value(),
 * weft_future_error()).  It runs on whatever context decided the future
 * (a coroutine, a timer callback, main()), so it must not block: blocking
 * calls made from it fail with -EINVAL outside a coroutine and would
 * suspend the resolver inside one.  It may resolve other futures, attach
 * callbacks (to this future too: they run after the ones already queued),
 * and release references, including the last one to this future.
 */
typedef void (*weft_future_fn)(weft_future *f, void *arg);

/**
 * Create a pending future.
 * @param s    Scheduler whose coroutines may wait on it, or NULL for the
 *             current one.
 * @param out  Receives the future, holding one reference owned by the
 *             caller.
 * @return 0.
 * @retval -EINVAL  out NULL, or s belongs to another thread.
 * @retval -ENOMEM  no memory.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_future_new(weft_sched *s, weft_future **out);

/**
 * Add a reference to @p f.
 * @return 0.
 * @retval -EINVAL     f NULL or owned by another thread.
 * @retval -EOVERFLOW  the reference count is saturated.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_future_retain(weft_future *f);

/**
 * Drop a reference to @p f.  The future is freed when no reference and
 * no waiting coroutine is left (and not before its callbacks, if they are
 * running, have returned).  Freeing a pending future drops its callbacks
 * without calling them.
 * @return 0.
 * @retval -EINVAL  f NULL or owned by another thread.
 * @context The owning thread, anywhere (callbacks included).
 */
WEFT_API int weft_future_release(weft_future *f);

/**
 * Resolve @p f with @p value: every waiting coroutine is woken (its wait
 * returns 0 and the value), then the callbacks run, in the order they were
 * added, before this call returns.
 * @return 0.
 * @retval -EINVAL     f NULL or owned by another thread.
 * @retval -EALREADY   f was already resolved or failed.
 * @retval -ECANCELED  f was cancelled (weft_future_cancel()); the value is
 *                     dropped.  This lets a producer notice that nobody
 *                     wants its result any more.
 * @context The owning thread, anywhere (callbacks included).
 */
WEFT_API int weft_future_resolve(weft_future *f, void *value);

/**
 * Fail @p f with the error @p err: waiting coroutines are woken (their
 * wait returns err), then the callbacks run, as weft_future_resolve().
 * @param err  A negative errno value.
 * @return 0.
 * @retval -EINVAL     f NULL, owned by another thread, or err >= 0.
 * @retval -EALREADY   f was already resolved or failed.
 * @retval -ECANCELED  f was cancelled.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_future_fail(weft_future *f, int err);

/**
 * Cancel @p f (Twisted's Deferred.cancel): if it is still pending it fails
 * with -ECANCELED, exactly as weft_future_fail(f, -ECANCELED), and a
 * later resolve or fail by the producer returns -ECANCELED.  Cancelling
 * the future of weft_future_all()/weft_future_any() also cancels each of
 * its inputs that is still pending.  A producer that wants to stop work
 * when cancelled attaches a callback that looks for -ECANCELED.
 * @return 0.
 * @retval -EINVAL    f NULL or owned by another thread.
 * @retval -EALREADY  f was already decided (resolved, failed or cancelled).
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_future_cancel(weft_future *f);

/**
 * Wait until @p f is decided or @p deadline passes.  Several coroutines
 * may wait on one future; all are woken when it is decided.  The outcome
 * is fixed when the waiter is woken: a waiter woken by the decision gets
 * it even if it is raised into or ended before it runs again (the raise
 * is kept for its next blocking call), and a waiter whose deadline fired
 * first gets -ETIMEDOUT even if the future is decided before it runs.
 * Like every blocking call it first fails at once with -ECANCELED in an
 * ended coroutine (or a raised error), even when f is already decided.
 * @param deadline  Absolute time on the scheduler's clock; -1: none.  A
 *                  deadline already passed times out after one turn of
 *                  the loop (the call still yields).
 * @param value     Receives the value when f resolved (NULL: not wanted);
 *                  untouched otherwise.
 * @return 0 when f resolved.
 * @retval <0          f failed: its error (-ECANCELED if it was cancelled).
 * @retval -ETIMEDOUT  the deadline passed first.
 * @retval -ECANCELED  the calling coroutine was ended.
 * @retval other       an error raised into the caller (weft_raise()).
 * @retval -EINVAL     f NULL or of another thread, deadline < -1, outside
 *                     a coroutine of f's scheduler, or inside a hook.
 * @retval -ENOMEM     the timer heap could not grow for the deadline.
 * @context Coroutine only (of f's scheduler).
 */
WEFT_API int weft_future_wait(weft_future *f, int64_t deadline, void **value);

/**
 * Attach a callback to @p f.  Callbacks run in the order they were added,
 * each once, when f is decided.  If f is already decided the callback runs
 * at once, synchronously, before this call returns (after the callbacks
 * still queued, if f's callbacks are running right now).  A future freed
 * while pending never calls its callbacks.
 * @return 0.
 * @retval -EINVAL  f or fn NULL, or f owned by another thread.
 * @retval -ENOMEM  no memory to queue the callback (it will not be called).
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_future_then(weft_future *f, weft_future_fn fn, void *arg);

/**
 * Take back a callback added with weft_future_then() that has not run yet
 * (the first one added with this fn and arg), for an owner that goes away
 * before the future is decided.
 * @return 0.
 * @retval -ENOENT  no such callback is waiting (never added, or it ran).
 * @retval -EINVAL  f or fn NULL, or f belongs to another thread.
 * @context The future's thread; also from a callback of f.
 */
WEFT_API int weft_future_unthen(weft_future *f, weft_future_fn fn, void *arg);

/**
 * Gather "all of" (Twisted's gatherResults / DeferredList with
 * fireOnOneErrback): a new future that resolves with the value NULL once
 * every input has resolved, or fails with the error of the first input to
 * fail (inputs already failed at the call: the first in array order).
 * Inputs still pending when it is decided are left alone.  It holds its
 * own reference on each input until that input or the gather is decided,
 * so the caller may release the inputs at once.  Cancelling it cancels
 * the inputs still pending.  With n == 0 it is resolved at once.
 * @param s     Scheduler of the new future, or NULL for the current one.
 * @param futs  n futures (the same future may appear twice).
 * @param out   Receives the new future (one reference, the caller's).
 * @return 0.
 * @retval -EINVAL     out NULL, futs NULL with n > 0, an input NULL or
 *                     owned by another thread, or s belongs to another
 *                     thread.
 * @retval -ENOMEM     no memory.
 * @retval -EOVERFLOW  an input's reference count is saturated.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_future_all(weft_sched *s, weft_future *const *futs,
                             size_t n, weft_future **out);

/**
 * Gather "first of" (DeferredList with fireOnOneCallback and
 * fireOnOneErrback): a new future decided like the first input to be
 * decided, resolved with its value or failed with its error (inputs
 * already decided at the call: the first in array order).  The other
 * inputs are left alone.  References and cancellation as
 * weft_future_all().
 * @return 0.
 * @retval -EINVAL     as weft_future_all(), and n == 0 (it could never be
 *                     decided).
 * @retval -ENOMEM     no memory.
 * @retval -EOVERFLOW  as weft_future_all().
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_future_any(weft_sched *s, weft_future *const *futs,
                             size_t n, weft_future **out);

/**
 * The state of @p f.
 * @return WEFT_FUTURE_PENDING, WEFT_FUTURE_RESOLVED or WEFT_FUTURE_FAILED.
 * @retval -EINVAL  f NULL.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_future_state(const weft_future *f);

/**
 * The value of a resolved future.
 * @return The value; NULL when f is NULL, pending or failed.
 * @context The owning thread, anywhere.
 */
WEFT_API void *weft_future_value(const weft_future *f);

/**
 * The error of a failed future.
 * @return The (negative) error; 0 when f is pending or resolved.
 * @retval -EINVAL  f NULL.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_future_error(const weft_future *f);

/**
 * The outcome of @p f without waiting.
 * @param value  Receives the value when resolved (NULL: not wanted).
 * @return 0 when resolved.
 * @retval -EAGAIN  still pending.
 * @retval <0       failed: its error.
 * @retval -EINVAL  f NULL.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_future_result(const weft_future *f, void **value);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_FUTURE_H */
