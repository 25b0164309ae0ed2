/*
 * weft/sync.h - coroutine synchronisation: event, mutex, condition
 * variable, counting semaphore, wait group and channel (bounded queue).
 *
 * Part of the public API; normally reached through "weft.h", which includes
 * it at its end.  Including this file on its own also works: it includes
 * "../weft.h" first (the include guards break the cycle), so the types it
 * relies on (weft_sched, WEFT_API) are always declared before use.
 *
 * Rules common to every primitive (docs/sync.md explains them):
 *   - Handles are opaque, created with a scheduler (NULL: the current one)
 *     and freed explicitly by their creator with the matching _free(),
 *     which returns -EBUSY while coroutines wait on the object.
 *   - Blocking calls (wait, lock, acquire, send, recv) are coroutine only:
 *     they return -EINVAL outside a coroutine of the object's scheduler or
 *     inside a hook.  Like every blocking call they first fail at once with
 *     -ECANCELED in an ended coroutine, or with a pending raised error,
 *     even when they could complete without waiting.
 *   - Every blocking call takes an absolute deadline on the scheduler's
 *     clock (-1: none; < -1: -EINVAL).  A call that cannot complete at once
 *     waits; when the deadline passes it returns -ETIMEDOUT.  A deadline
 *     already passed times out after one turn of the loop (the call still
 *     yields, so a polling loop cannot starve the others).
 *   - Waiters are served first come, first served (FIFO), and wake-ups
 *     are hand-offs: whatever a wake-up carries (the mutex, a permit, a
 *     channel item, a signal) is given to the waiter when it is woken, so
 *     a woken waiter that is raised into or ended before it runs still
 *     completes (the raise is kept for its next blocking call), and a
 *     waiter that timed out, was raised into or was ended is off the list
 *     before anything else happens, so it never swallows a wake-up meant
 *     for the next one.
 *   - Non-blocking calls (set, unlock, signal, release, try variants, close,
 *     queries) work anywhere on the owning thread: coroutines, callbacks,
 *     main().  Calls from another thread return -EINVAL.
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "../weft.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_event weft_event;
typedef struct weft_mutex weft_mutex;
typedef struct weft_cond weft_cond;
typedef struct weft_sem weft_sem;
typedef struct weft_wg weft_wg;
typedef struct weft_chan weft_chan;

/* ======================================================================
 * Event (cogen's Signal, threading.Event): a flag coroutines wait for.
 * ====================================================================== */

/**
 * Create an event, initially clear.
 * @param s    Scheduler, or NULL for the current one.
 * @param out  Receives the handle.
 * @return 0.
 * @retval -EINVAL  out NULL, or s belongs to another thread.
 * @retval -ENOMEM  no memory.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_event_new(weft_sched *s, weft_event **out);

/**
 * Free @p e.
 * @return 0.
 * @retval -EINVAL  e NULL or owned by another thread.
 * @retval -EBUSY   coroutines are waiting on it (nothing is freed).
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_event_free(weft_event *e);

/**
 * Set @p e and wake every coroutine waiting on it; their waits return 0
 * even if the event is cleared again before they run.  Setting a set event
 * does nothing more.
 * @return The number of coroutines woken (>= 0).
 * @retval -EINVAL  e NULL or owned by another thread.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_event_set(weft_event *e);

/**
 * Clear @p e: later waits block until the next weft_event_set().
 * @return 0.
 * @retval -EINVAL  e NULL or owned by another thread.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_event_clear(weft_event *e);

/**
 * Whether @p e is set.
 * @return 1 or 0.
 * @retval -EINVAL  e NULL or owned by another thread.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_event_is_set(const weft_event *e);

/**
 * Wait until @p e is set (returns at once if it is).
 * @param deadline  Absolute time; -1: none.
 * @return 0.
 * @retval -ETIMEDOUT  the deadline passed first.
 * @retval -ECANCELED  the caller was ended.
 * @retval other       an error raised into the caller.
 * @retval -EINVAL     e NULL, deadline < -1, or not called from a
 *                     coroutine of e's scheduler (or inside a hook).
 * @retval -ENOMEM     the timer heap could not grow for the deadline.
 * @context Coroutine only.
 */
WEFT_API int weft_event_wait(weft_event *e, int64_t deadline);

/* ======================================================================
 * Mutex: owned by one coroutine at a time, FIFO hand-off.
 * ====================================================================== */

/**
 * Create an unlocked mutex.
 * @return 0.
 * @retval -EINVAL  out NULL, or s belongs to another thread.
 * @retval -ENOMEM  no memory.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_mutex_new(weft_sched *s, weft_mutex **out);

/**
 * Free @p m.  Freeing a locked mutex nobody waits for is allowed (its
 * owner must not touch it afterwards); so is freeing it after its
 * scheduler.  Do not free a mutex that a coroutine blocked in
 * weft_cond_wait() will re-acquire.
 * @return 0.
 * @retval -EINVAL  m NULL or owned by another thread.
 * @retval -EBUSY   coroutines are waiting on it (including in
 *                  weft_cond_wait() re-acquiring it).
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_mutex_free(weft_mutex *m);

/**
 * Lock @p m, waiting while another coroutine owns it.  There is no
 * barging: weft_mutex_unlock() hands the mutex to the first waiter, so a
 * coroutine that calls lock after others started waiting queues behind
 * them.  Not recursive.  A coroutine that finishes while owning a mutex
 * leaves it locked.
 * @param deadline  Absolute time; -1: none.
 * @return 0: the caller owns m.
 * @retval -EDEADLK    the caller already owns m.
 * @retval -ETIMEDOUT  the deadline passed first.
 * @retval -ECANCELED  the caller was ended.
 * @retval other       an error raised into the caller.
 * @retval -EINVAL     m NULL, deadline < -1, not in a coroutine of m's
 *                     scheduler, or inside a hook.
 * @retval -ENOMEM     the timer heap could not grow for the deadline.
 * @context Coroutine only.
 */
WEFT_API int weft_mutex_lock(weft_mutex *m, int64_t deadline);

/**
 * Lock @p m if it is free, without waiting.  It never checks for a
 * pending raise or an ended caller (it does not block), so an ended
 * coroutine may still use it to clean up.
 * @return 0: the caller owns m.
 * @retval -EBUSY   m is locked (by the caller or another coroutine).
 * @retval -EINVAL  m NULL or owned by another thread, or not called from
 *                  a coroutine of m's scheduler (a mutex is owned by a
 *                  coroutine).
 * @context Coroutine only (does not block).
 */
WEFT_API int weft_mutex_trylock(weft_mutex *m);

/**
 * Unlock @p m.  If coroutines wait, ownership passes at once to the first
 * of them (it is woken owning m).
 * @return 0.
 * @retval -EPERM   the caller does not own m (including: not a coroutine,
 *                  or m is unlocked).
 * @retval -EINVAL  m NULL or owned by another thread.
 * @context The owning coroutine.
 */
WEFT_API int weft_mutex_unlock(weft_mutex *m);

/**
 * Whether @p m is locked.
 * @return 1 or 0.
 * @retval -EINVAL  m NULL or owned by another thread.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_mutex_locked(const weft_mutex *m);

/* ======================================================================
 * Condition variable
 * ====================================================================== */

/**
 * Create a condition variable.
 * @return 0.
 * @retval -EINVAL  out NULL, or s belongs to another thread.
 * @retval -ENOMEM  no memory.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_cond_new(weft_sched *s, weft_cond **out);

/**
 * Free @p c.
 * @return 0.
 * @retval -EINVAL  c NULL or owned by another thread.
 * @retval -EBUSY   coroutines are waiting on it.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_cond_free(weft_cond *c);

/**
 * Unlock @p m, wait for a signal on @p c, then lock @p m again.  The
 * mutex is held again when the call returns, whatever it returns (timeout,
 * raise, end included): re-acquiring it is not interruptible, and an error
 * raised into the caller while it re-acquires is kept for its next
 * blocking call.  Waiters are signalled in FIFO order; as with pthreads,
 * callers re-check their predicate in a loop.
 * @param m         A mutex of the same scheduler, owned by the caller.
 * @param deadline  Absolute time for the wait for a signal; -1: none.
 * @return 0: signalled (and m re-acquired).
 * @retval -ETIMEDOUT  the deadline passed first (m re-acquired).
 * @retval -ECANCELED  the caller was ended (m re-acquired).
 * @retval other       an error raised into the caller (m re-acquired).
 * @retval -EPERM      the caller does not own m (nothing happens).
 * @retval -EINVAL     c or m NULL, of another thread or of different
 *                     schedulers, deadline < -1, not in a coroutine of
 *                     their scheduler, or inside a hook.
 * @retval -ENOMEM     the timer heap could not grow (m still held).
 * @context Coroutine only.  Before waiting, the checks for an ended caller
 *          or a pending raise fail the call without releasing m.
 */
WEFT_API int weft_cond_wait(weft_cond *c, weft_mutex *m, int64_t deadline);

/**
 * Wake the first coroutine waiting on @p c (if any).  The caller need not
 * hold the mutex.
 * @return The number woken: 0 or 1.
 * @retval -EINVAL  c NULL or owned by another thread.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_cond_signal(weft_cond *c);

/**
 * Wake every coroutine waiting on @p c; they re-acquire the mutex one by
 * one, in the order they waited.
 * @return The number woken.
 * @retval -EINVAL  c NULL or owned by another thread.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_cond_broadcast(weft_cond *c);

/* ======================================================================
 * Counting semaphore
 * ====================================================================== */

/**
 * Create a semaphore holding @p value permits.
 * @param value  >= 0.
 * @return 0.
 * @retval -EINVAL  out NULL, value < 0, or s belongs to another thread.
 * @retval -ENOMEM  no memory.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_sem_new(weft_sched *s, int64_t value, weft_sem **out);

/**
 * Free @p sem.
 * @return 0.
 * @retval -EINVAL  sem NULL or owned by another thread.
 * @retval -EBUSY   coroutines are waiting on it.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_sem_free(weft_sem *sem);

/**
 * Take one permit, waiting while there is none.  Permits go to waiters in
 * FIFO order: while coroutines wait, the count stays 0 and each
 * weft_sem_release() hands its permit straight to the first waiter.
 * @param deadline  Absolute time; -1: none.
 * @return 0: the caller holds a permit.
 * @retval -ETIMEDOUT  the deadline passed first (no permit taken).
 * @retval -ECANCELED  the caller was ended (no permit taken).
 * @retval other       an error raised into the caller (no permit taken).
 * @retval -EINVAL     sem NULL, deadline < -1, not in a coroutine of its
 *                     scheduler, or inside a hook.
 * @retval -ENOMEM     the timer heap could not grow for the deadline.
 * @context Coroutine only.
 */
WEFT_API int weft_sem_acquire(weft_sem *sem, int64_t deadline);

/**
 * Take one permit if one is available, without waiting.
 * @return 0.
 * @retval -EAGAIN  no permit.
 * @retval -EINVAL  sem NULL or owned by another thread.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_sem_try_acquire(weft_sem *sem);

/**
 * Give back one permit: to the first waiter if any (it is woken holding
 * it), else to the count.
 * @return 0.
 * @retval -EOVERFLOW  the count is at INT64_MAX.
 * @retval -EINVAL     sem NULL or owned by another thread.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_sem_release(weft_sem *sem);

/**
 * The number of permits available now (0 while coroutines wait).
 * @return The count (>= 0).
 * @retval -EINVAL  sem NULL or owned by another thread.
 * @context The owning thread, anywhere.
 */
WEFT_API int64_t weft_sem_value(const weft_sem *sem);

/* ======================================================================
 * Wait group (Go's sync.WaitGroup): wait for a counter to reach zero.
 * ====================================================================== */

/**
 * Create a wait group with a counter of 0.
 * @return 0.
 * @retval -EINVAL  out NULL, or s belongs to another thread.
 * @retval -ENOMEM  no memory.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_wg_new(weft_sched *s, weft_wg **out);

/**
 * Free @p wg.
 * @return 0.
 * @retval -EINVAL  wg NULL or owned by another thread.
 * @retval -EBUSY   coroutines are waiting on it.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_wg_free(weft_wg *wg);

/**
 * Add @p delta (which may be negative) to the counter.  When it reaches
 * 0, every waiter is woken (their waits return 0 even if the counter
 * rises again before they run).
 * @return 0.
 * @retval -EINVAL     wg NULL or of another thread, or the counter would
 *                     become negative (it is left unchanged).
 * @retval -EOVERFLOW  the counter would exceed INT64_MAX (unchanged).
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_wg_add(weft_wg *wg, int64_t delta);

/** weft_wg_add(wg, -1). */
WEFT_API int weft_wg_done(weft_wg *wg);

/**
 * Wait until the counter is 0 (returns at once if it is).
 * @param deadline  Absolute time; -1: none.
 * @return 0.
 * @retval -ETIMEDOUT  the deadline passed first.
 * @retval -ECANCELED  the caller was ended.
 * @retval other       an error raised into the caller.
 * @retval -EINVAL     wg NULL, deadline < -1, not in a coroutine of its
 *                     scheduler, or inside a hook.
 * @retval -ENOMEM     the timer heap could not grow for the deadline.
 * @context Coroutine only.
 */
WEFT_API int weft_wg_wait(weft_wg *wg, int64_t deadline);

/**
 * The counter.
 * @return The counter (>= 0).
 * @retval -EINVAL  wg NULL or owned by another thread.
 * @context The owning thread, anywhere.
 */
WEFT_API int64_t weft_wg_count(const weft_wg *wg);

/* ======================================================================
 * Channel: a FIFO queue of void * items between coroutines (cogen's
 * Queue, Go's chan).  Capacity 0 is an unbuffered rendezvous: a send
 * completes only when a receiver takes the item.  Capacity N buffers up
 * to N items: a send completes when the item is in the buffer (or handed
 * to a waiting receiver).
 * ====================================================================== */

/**
 * Create a channel.
 * @param capacity  Items buffered; 0: unbuffered.
 * @return 0.
 * @retval -EINVAL  out NULL, capacity absurdly large (more than
 *                  SIZE_MAX / sizeof(void *)), or s of another thread.
 * @retval -ENOMEM  no memory for the buffer.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_chan_new(weft_sched *s, size_t capacity, weft_chan **out);

/**
 * Free @p ch.  Items still buffered are dropped (weft does not own what
 * they point to).
 * @return 0.
 * @retval -EINVAL  ch NULL or owned by another thread.
 * @retval -EBUSY   coroutines are waiting to send or receive.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_chan_free(weft_chan *ch);

/**
 * Send @p item: hand it to the first waiting receiver, else put it in the
 * buffer, else wait (senders queue FIFO) until a receiver takes it
 * (unbuffered) or it gets a place in the buffer (buffered).  When the call
 * fails the item was not sent; the caller still owns it.
 * @param deadline  Absolute time; -1: none.
 * @return 0: the item was delivered or buffered.
 * @retval -EPIPE      the channel is closed (or was closed while waiting).
 * @retval -ETIMEDOUT  the deadline passed first.
 * @retval -ECANCELED  the caller was ended.
 * @retval other       an error raised into the caller.
 * @retval -EINVAL     ch NULL, deadline < -1, not in a coroutine of its
 *                     scheduler, or inside a hook.
 * @retval -ENOMEM     the timer heap could not grow for the deadline.
 * @context Coroutine only.
 */
WEFT_API int weft_chan_send(weft_chan *ch, void *item, int64_t deadline);

/**
 * Receive an item: the oldest buffered one (its place then goes to the
 * first waiting sender), else one from a waiting sender (unbuffered),
 * else wait (receivers queue FIFO).  A closed channel still yields its
 * buffered items; once they are drained, -EPIPE.
 * @param item      Receives the item (NULL: discard it).
 * @param deadline  Absolute time; -1: none.
 * @return 0.
 * @retval -EPIPE      closed and drained.
 * @retval -ETIMEDOUT  the deadline passed first (nothing received).
 * @retval -ECANCELED  the caller was ended (nothing received).
 * @retval other       an error raised into the caller (nothing received).
 * @retval -EINVAL     ch NULL, deadline < -1, not in a coroutine of its
 *                     scheduler, or inside a hook.
 * @retval -ENOMEM     the timer heap could not grow for the deadline.
 * @context Coroutine only.
 */
WEFT_API int weft_chan_recv(weft_chan *ch, void **item, int64_t deadline);

/**
 * Send without waiting: succeeds only if a receiver is waiting or the
 * buffer has room.
 * @return 0.
 * @retval -EAGAIN  it would have to wait (not sent).
 * @retval -EPIPE   closed.
 * @retval -EINVAL  ch NULL or owned by another thread.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_chan_try_send(weft_chan *ch, void *item);

/**
 * Receive without waiting: succeeds only if an item is buffered or a
 * sender is waiting.
 * @param item  Receives the item (NULL: discard it).
 * @return 0.
 * @retval -EAGAIN  nothing to receive now.
 * @retval -EPIPE   closed and drained.
 * @retval -EINVAL  ch NULL or owned by another thread.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_chan_try_recv(weft_chan *ch, void **item);

/**
 * Close @p ch: later sends fail with -EPIPE, and so do the sends waiting
 * now (their items were not sent); receivers drain the buffered items and
 * then get -EPIPE, as do the receivers waiting now (the buffer is empty
 * whenever receivers wait).
 * @return 0.
 * @retval -EPIPE   already closed.
 * @retval -EINVAL  ch NULL or owned by another thread.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_chan_close(weft_chan *ch);

/**
 * The number of buffered items (never counts waiting senders, so always
 * 0 for an unbuffered channel).
 * @return The count, or -EINVAL (NULL or another thread).
 * @context The owning thread, anywhere.
 */
WEFT_API int64_t weft_chan_len(const weft_chan *ch);

/**
 * The capacity given at creation.
 * @return The capacity, or -EINVAL (NULL or another thread).
 * @context The owning thread, anywhere.
 */
WEFT_API int64_t weft_chan_cap(const weft_chan *ch);

/**
 * Whether @p ch is closed.
 * @return 1 or 0, or -EINVAL (NULL or another thread).
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_chan_closed(const weft_chan *ch);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SYNC_H */
