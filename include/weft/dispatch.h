/*
 * weft/dispatch.h - asycamore's reference main loop: weft_iterate() calls
 * weft_dispatch_once() repeatedly, with before/after callbacks that may
 * change the loop's own variables.  Included by weft.h; include that.
 *
 * weft_iterate() is also the reference for driving weft from a foreign
 * main loop: each dispatch is one weft_run_once().
 */
#ifndef WEFT_DISPATCH_H
#define WEFT_DISPATCH_H

#include "../weft.h"

#ifdef __cplusplus
extern "C" {
#endif

/** error_in_handler policies. */
#define WEFT_DISPATCH_ERR_CONTINUE 0 /**< a coroutine that fails during a
                                          dispatch is reported (handlers or
                                          stderr) and the loop goes on */
#define WEFT_DISPATCH_ERR_STOP 1     /**< the dispatch returns the failure
                                          status, which ends weft_iterate */

/** What a before/after callback returns to end weft_iterate at once. */
#define WEFT_DISPATCH_STOP 1

struct weft_dispatch_vars;

/**
 * A before/after callback.  It may change any field of @p v (the count,
 * the timeout, the policy, the callbacks themselves) and weft_iterate
 * honours the change from then on.
 * @return 0 to go on, WEFT_DISPATCH_STOP to end the loop at once
 *         (asycamore's StopIteration), or a negative errno to end it with
 *         that error.
 */
typedef int (*weft_dispatch_fn)(weft_sched *s, struct weft_dispatch_vars *v);

/** The loop's variables (asycamore's dispatchvars), owned by the caller. */
struct weft_dispatch_vars {
    int64_t count;           /**< dispatches left; < 0: no limit.  Set it
                                  to N in a callback to end after N more
                                  dispatches. */
    int64_t timeout;         /**< passed to weft_dispatch_once (ns; -1:
                                  wait as long as needed) */
    int error_in_handler;    /**< WEFT_DISPATCH_ERR_*, passed on too */
    weft_dispatch_fn before; /**< called before each dispatch; may be NULL */
    weft_dispatch_fn after;  /**< called after each dispatch; may be NULL */
    void *user;              /**< the caller's own variables */
};

/**
 * One dispatch: one iteration of @p s (weft_run_once(s, timeout_ns)).
 * @param error_in_handler  WEFT_DISPATCH_ERR_CONTINUE or _STOP.
 * @return 1 if work remains, 0 if none.
 * @retval <0        with WEFT_DISPATCH_ERR_STOP: the exit status of the
 *                   first coroutine that failed during this dispatch.
 * @retval -EINVAL   bad policy, or as weft_run_once().
 * @context The owning thread, outside any coroutine.
 */
WEFT_API int weft_dispatch_once(weft_sched *s, int64_t timeout_ns,
                                int error_in_handler);

/**
 * The reference main loop: until v->count reaches 0, a callback returns
 * WEFT_DISPATCH_STOP or an error, a dispatch fails (policy _STOP), or the
 * scheduler has nothing left to do:
 *
 *     before(s, v); weft_dispatch_once(s, v->timeout, v->error_in_handler);
 *     if (v->count > 0) v->count--; after(s, v);
 *
 * The fields of @p v are re-read at every step, so callbacks may change
 * them (clear a callback to disable it).
 * @return 0 when the scheduler ran out of work or count reached 0,
 *         WEFT_DISPATCH_STOP when a callback stopped it.
 * @retval <0  a callback's error, or a dispatch's (see above).
 * @retval -EINVAL  v NULL, or as weft_run_once().
 * @context The owning thread, outside any coroutine.
 */
WEFT_API int weft_iterate(weft_sched *s, struct weft_dispatch_vars *v);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_DISPATCH_H */
