/*
 * weft.h - the one header of weft, a cooperative multitasking runtime for C.
 *
 * Stackful coroutines on a single-threaded scheduler, with timers,
 * deadlines, cancellation and switch hooks, and a tracer built on them
 * (weft/trace.h).  See docs/design.md for the concepts; this header is
 * the reference for each call.
 *
 * Conventions (they hold for every function below):
 *   - Functions return 0, or a non-negative count, on success and a
 *     negative errno value on failure.  weft_strerror() names it.
 *   - Time is int64_t nanoseconds on the scheduler's clock (weft_now()).
 *     Where a deadline is taken, -1 means "no deadline".
 *   - A weft_sched argument may be NULL: it then means the calling
 *     thread's current scheduler (the one running on this thread, else the
 *     thread's default scheduler, created on first use).
 *   - "Coroutine only" calls return -EINVAL when called outside a
 *     coroutine (for instance from main() or from a timer callback).
 *   - Nothing is thread-safe unless it says so: a scheduler belongs to the
 *     thread that created it.
 */
#ifndef WEFT_H
#define WEFT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(WEFT_STATIC)
#define WEFT_API
#elif defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0

/** The version of the library at run time, as "MAJOR.MINOR.PATCH". */
WEFT_API const char *weft_version(void);

/* ======================================================================
 * Errors
 * ====================================================================== */

/**
 * Describe an error code.
 * @param err  A negative errno value as returned by weft (a positive value
 *             is accepted too).
 * @return A static string; never NULL.
 * @context Any thread.
 */
WEFT_API const char *weft_strerror(int err);

/**
 * The symbolic name of an error code, e.g. "ETIMEDOUT" for -ETIMEDOUT.
 * @return A static string; "UNKNOWN" for codes weft does not know.
 * @context Any thread.
 */
WEFT_API const char *weft_err_name(int err);

/* ======================================================================
 * Opaque types
 * ====================================================================== */

typedef struct weft_sched weft_sched;
typedef struct weft_coro weft_coro;
typedef struct weft_timer weft_timer;

/** A coroutine body.  Its return value is the exit status: 0 or a
 *  non-negative value for success, a negative errno value for failure. */
typedef int (*weft_fn)(void *arg);

/* ======================================================================
 * Schedulers
 * ====================================================================== */

/** Clock sources for a scheduler. */
enum weft_clock {
    WEFT_CLOCK_MONOTONIC = 0, /**< CLOCK_MONOTONIC (the default). */
    WEFT_CLOCK_MANUAL = 1     /**< Starts at 0 and moves only by
                                   weft_clock_advance()/weft_clock_set(), or
                                   when the scheduler would sleep: it then
                                   jumps to the next deadline instead. */
};

/** Stack guard policy (see docs/stacks.md for the trade-off). */
enum weft_guard {
    WEFT_GUARD_AUTO = 0,  /**< Guard pages while the process has mappings to
                               spare (a budget derived from vm.max_map_count),
                               canary checks beyond it, and also when the
                               kernel refuses a guard-page mapping.  The
                               default. */
    WEFT_GUARD_PAGES = 1, /**< Always a guard page; spawning fails with
                               -ENOMEM when the kernel refuses the mapping. */
    WEFT_GUARD_CANARY = 2 /**< Never a guard page: stacks are carved from
                               large slabs and checked by canary on every
                               switch away from them. */
};

/** Options for weft_sched_new().  Zero-initialise; zero means default. */
struct weft_sched_opts {
    int clock;                  /**< enum weft_clock. */
    size_t stack_size;          /**< Default coroutine stack size in bytes
                                     (rounded up to pages). 0: 64 KiB. */
    int guard;                  /**< enum weft_guard. */
    size_t stack_cache;         /**< Free stacks kept warm for reuse, per
                                     stack size.  0: 256.  Slab stacks
                                     freed beyond it stay warm until the
                                     loop is next idle, then give their
                                     pages back (docs/stacks.md). */
    int no_overflow_handler;    /**< Non-zero: do not install the SIGSEGV
                                     handler that names overflowing
                                     coroutines. */
    int backend;                /**< enum weft_backend (weft/io.h);
                                     0: automatic. */
    int eintr;                  /**< Non-zero: a signal that interrupts
                                     the scheduler's wait makes every
                                     coroutine blocked in weft_fd_wait()
                                     return -EINTR.  Zero (the default):
                                     waits restart (greenhouse
                                     set_ignore_interrupts(True)). */
    int64_t io_timeout;         /**< Default timeout in ns of the coroutine
                                     I/O operations that take a timeout
                                     argument of WEFT_TIMEOUT_DEFAULT
                                     (cogen's default_timeout).  0: none. */
    int64_t watchdog_ns;        /**< Report a coroutine that runs longer
                                     than this (ns of real time) without
                                     yielding; 0: no watchdog.  See
                                     weft_sched_set_watchdog(). */
};

/** Timeout arguments of I/O operations: use the scheduler's io_timeout. */
#define WEFT_TIMEOUT_DEFAULT (-2)
/** Timeout arguments of I/O operations: no timeout, whatever the default. */
#define WEFT_TIMEOUT_NONE (-1)

/**
 * Create a scheduler.
 * @param opts  Options, or NULL for all defaults.
 * @param out   Receives the new scheduler (set to NULL on failure).
 * @return 0.
 * @retval -EINVAL  out is NULL, or an option is out of range (unknown clock,
 *                  guard policy or backend, stack size below 16 KiB or
 *                  above 1 GiB, negative io_timeout or watchdog_ns), or
 *                  WEFT_BACKEND names an unknown backend.
 * @retval -ENOSYS  the backend asked for is not available here.
 * @retval -ENOMEM  no memory.
 * @retval -EAGAIN  the watchdog thread (watchdog_ns) could not be started.
 * @context Any thread; the scheduler then belongs to the calling thread.
 */
WEFT_API int weft_sched_new(const struct weft_sched_opts *opts,
                            weft_sched **out);

/**
 * Change the EINTR policy of @p s at run time (greenhouse
 * set_ignore_interrupts()): @p report non-zero makes interrupted fd waits
 * return -EINTR, zero makes them restart.  See weft_sched_opts.eintr.
 * @return 0, or -EINVAL for another thread's scheduler.
 */
WEFT_API int weft_sched_set_eintr(weft_sched *s, int report);

/**
 * Change the scheduler's default I/O timeout (see weft_sched_opts.
 * io_timeout); 0 means none.
 * @return 0, or -EINVAL for a negative value or another thread's scheduler.
 */
WEFT_API int weft_sched_set_io_timeout(weft_sched *s, int64_t timeout_ns);

/** The scheduler's default I/O timeout in ns (0: none), or -EINVAL. */
WEFT_API int64_t weft_sched_io_timeout(weft_sched *s);

/**
 * Free a scheduler and everything it still holds.  Coroutines that have
 * not finished are discarded without running further (their stacks are
 * released; resources their bodies hold are not).  Callback timers are
 * freed.  Freeing the thread's default scheduler is allowed; a new one is
 * created on next use.
 * @return 0.
 * @retval -EINVAL  s is NULL or belongs to another thread.
 * @retval -EBUSY   s is running (called from inside weft_run() or a
 *                  coroutine of s).
 * @context The owning thread, outside the scheduler.
 */
WEFT_API int weft_sched_free(weft_sched *s);

/**
 * The calling thread's default scheduler, created on first use with
 * default options.
 * @return The scheduler, or NULL if it could not be allocated.
 * @context Any thread (each thread has its own).
 */
WEFT_API weft_sched *weft_sched_default(void);

/**
 * The scheduler currently running on this thread, else the default one.
 * @return As weft_sched_default().
 */
WEFT_API weft_sched *weft_sched_current(void);

/**
 * Run the scheduler until no coroutine, no active callback timer and no
 * active readiness callback (weft_io_new()) is left, or until weft_stop()
 * is called.
 * @return 0 when nothing is left, 1 when stopped by weft_stop() with work
 *         still pending.
 * @retval -EDEADLK coroutines remain but every one of them waits with
 *                  nothing that could ever wake it (no timer, no I/O).
 *                  weft_dump() then lists them and what each waits on.
 * @retval -EINVAL  s belongs to another thread, or this thread is already
 *                  inside a run of a scheduler (runs do not nest).
 * @retval -ENOMEM  the scheduler could not be created (s NULL).
 * @context The owning thread, outside any coroutine.
 */
WEFT_API int weft_run(weft_sched *s);

/**
 * One iteration of the loop (cogen's iter_run): run every coroutine that
 * was ready when the iteration began, fire expired timers, and wait for
 * the next event at most @p timeout_ns (0: do not wait; -1: wait as long
 * as needed).  With a manual clock, waiting jumps the clock instead.
 * It does not detect deadlocks (see weft_run()) and does not clear a
 * weft_stop() request; while one is pending it does not wait.
 * @return 1 if work remains (live coroutines or active timers), 0 if none.
 * @retval -EINVAL  as weft_run().
 * @context The owning thread, outside any coroutine.
 */
WEFT_API int weft_run_once(weft_sched *s, int64_t timeout_ns);

/**
 * Ask a running scheduler to stop: weft_run() returns after the current
 * iteration.  Coroutines are not affected and a later weft_run() resumes
 * them.  Calling it on a scheduler that is not running makes the next
 * weft_run() return after one iteration.
 * @return 0.
 * @retval -EINVAL  s belongs to another thread.
 * @context The owning thread (coroutine, callback or outside).
 */
WEFT_API int weft_stop(weft_sched *s);

/**
 * How long the scheduler may sleep before it next needs to run (cogen's
 * next_timer_delta): 0 when a coroutine is ready, the time to the next
 * deadline when timers are pending, -1 when nothing is scheduled.
 * @return The delay in ns (>= 0) or -1.
 * @retval -EINVAL  s belongs to another thread.
 */
WEFT_API int64_t weft_next_timeout(weft_sched *s);

/**
 * Number of coroutines of @p s that have not finished (including those
 * not started yet).
 * @return The count, or -EINVAL.
 */
WEFT_API int64_t weft_sched_count(weft_sched *s);

/* ======================================================================
 * Clock
 * ====================================================================== */

/**
 * The scheduler's time in ns.  For a monotonic clock this is
 * CLOCK_MONOTONIC, read afresh; for a manual clock, its current value.
 * @return The time, or -EINVAL if s belongs to another thread.
 */
WEFT_API int64_t weft_now(weft_sched *s);

/**
 * Move a manual clock forward by @p delta_ns.  Timers that come due fire
 * at the next iteration.
 * @return 0.
 * @retval -EINVAL  not a manual clock, or delta_ns < 0.
 */
WEFT_API int weft_clock_advance(weft_sched *s, int64_t delta_ns);

/**
 * Set a manual clock to @p t.
 * @return 0.
 * @retval -EINVAL  not a manual clock, or t is earlier than weft_now().
 */
WEFT_API int weft_clock_set(weft_sched *s, int64_t t);

/**
 * Convert Unix time (ns since the epoch, CLOCK_REALTIME) to the
 * scheduler's clock, for the *_at functions whose ancestors take epoch
 * seconds.  For a manual clock, Unix time is taken to advance with it from
 * the moment the scheduler was created.
 * @return The scheduler time (may be negative for times long past).
 */
WEFT_API int64_t weft_from_unix(weft_sched *s, int64_t unix_ns);

/** The inverse of weft_from_unix(). */
WEFT_API int64_t weft_to_unix(weft_sched *s, int64_t t);

/** Helpers: seconds / milliseconds / microseconds to ns. */
#define WEFT_SEC(x) ((int64_t)(x) * 1000000000LL)
#define WEFT_MSEC(x) ((int64_t)(x) * 1000000LL)
#define WEFT_USEC(x) ((int64_t)(x) * 1000LL)

/* ======================================================================
 * Coroutines
 * ====================================================================== */

/** Priority levels (WEFT_PRIO_LEVELS of them), most urgent first.  Zero
 *  is the default, so a zeroed option struct means NORMAL. */
#define WEFT_PRIO_HIGH (-1)
#define WEFT_PRIO_NORMAL 0
#define WEFT_PRIO_LOW 1
#define WEFT_PRIO_IDLE 2
#define WEFT_PRIO_LEVELS 4

/** Longest coroutine name kept (longer names are truncated). */
#define WEFT_NAME_MAX 31

/** Options for the spawn functions.  Zero-initialise; zero is default. */
struct weft_spawn_opts {
    size_t stack_size;  /**< Bytes; 0: the scheduler's default.  Rounded up
                             to pages; 16 KiB .. 1 GiB. */
    const char *name;   /**< Copied (WEFT_NAME_MAX bytes kept); NULL: none. */
    int priority;       /**< WEFT_PRIO_HIGH .. WEFT_PRIO_IDLE; within a
                             turn, ready coroutines run most urgent first
                             (see "Fairness" in docs/design.md). */
    int first;          /**< Non-zero: run before every other ready
                             coroutine (cogen's first=True). */
    void *data;         /**< Initial user data (weft_coro_data()). */
};

/**
 * Spawn a coroutine running fn(arg) (greenhouse schedule()).  It becomes
 * ready at once and first runs when the scheduler next runs ready
 * coroutines.
 * @param s     Scheduler, or NULL for the current one.
 * @param opts  Options, or NULL.
 * @param out   Receives the handle, which stays valid until weft_join(),
 *              weft_reap() or weft_detach().  NULL: the coroutine is
 *              detached (freed when it finishes).
 * @return 0.
 * @retval -EINVAL  fn NULL, bad option, or s belongs to another thread.
 * @retval -ENOMEM  no memory for the stack or record.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_spawn(weft_sched *s, weft_fn fn, void *arg,
                        const struct weft_spawn_opts *opts, weft_coro **out);

/**
 * Spawn a coroutine that first runs at scheduler time @p t (greenhouse
 * schedule_at(); use weft_from_unix() for epoch times).  A time in the past
 * means "as soon as possible".  Errors as weft_spawn().
 */
WEFT_API int weft_spawn_at(weft_sched *s, int64_t t, weft_fn fn, void *arg,
                           const struct weft_spawn_opts *opts,
                           weft_coro **out);

/**
 * Spawn a coroutine that first runs @p delay_ns from now (greenhouse
 * schedule_in()).  Errors as weft_spawn(), and -EINVAL for delay_ns < 0.
 */
WEFT_API int weft_spawn_in(weft_sched *s, int64_t delay_ns, weft_fn fn,
                           void *arg, const struct weft_spawn_opts *opts,
                           weft_coro **out);

/**
 * Run fn(arg) regularly (greenhouse schedule_recurring()): at starting_at,
 * starting_at + interval, starting_at + 2*interval, ...  The times are a
 * fixed grid, so a late run does not delay the next ones; a run that
 * overruns one or more grid points skips them (it does not run them in a
 * burst) and the next run is at the first grid point not yet passed.
 * All runs happen in one coroutine, whose handle is returned.  The
 * recurrence ends after @p maxtimes runs (0: never), when fn returns a
 * negative value (which becomes the exit status), or when the coroutine is
 * ended with weft_end().
 * @param interval_ns  > 0.
 * @param maxtimes     >= 0; 0 means unlimited.
 * @param starting_at  First run time (>= 0; a time in the past means now);
 *                     -1 means now.
 * @return 0.
 * @retval -EINVAL  interval_ns <= 0, maxtimes < 0, starting_at < -1, or as
 *                  weft_spawn().
 * @retval -ENOMEM  as weft_spawn().
 */
WEFT_API int weft_spawn_recurring(weft_sched *s, int64_t interval_ns,
                                  int64_t maxtimes, int64_t starting_at,
                                  weft_fn fn, void *arg,
                                  const struct weft_spawn_opts *opts,
                                  weft_coro **out);

/**
 * The running coroutine.
 * @return The handle, or NULL outside a coroutine.
 * @context Any.
 */
WEFT_API weft_coro *weft_self(void);

/**
 * Let every other ready coroutine run, then continue (greenhouse pause()).
 * A raise or end that arrives while the coroutine is yielded (ready) is
 * delivered to its next blocking call; this one then returns 0.
 * @return 0, or the error raised into this coroutine before the call
 *         (weft_raise()), -ECANCELED once it was ended.
 * @retval -EINVAL  outside a coroutine.
 * @context Coroutine only.
 */
WEFT_API int weft_yield(void);

/**
 * Sleep for @p ns nanoseconds (greenhouse pause_for()).  0 behaves as
 * weft_yield().
 * @return 0 when the time has passed.
 * @retval -EINVAL     outside a coroutine, or ns < 0.
 * @retval -ECANCELED  the coroutine was ended.
 * @retval other       an error raised into it with weft_raise().
 * @context Coroutine only.
 */
WEFT_API int weft_sleep_for(int64_t ns);

/**
 * Sleep until scheduler time @p t (greenhouse pause_until(); use
 * weft_from_unix() for epoch times).  A time not in the future yields.
 * Errors as weft_sleep_for() (no -EINVAL for the time).
 */
WEFT_API int weft_sleep_until(int64_t t);

/**
 * Wait for @p co to finish and free its handle.
 * @param status  Receives its exit status (NULL: not wanted).  A coroutine
 *                freed by weft_end() before it ever ran reports -ECANCELED.
 * @return 0 when joined.
 * @retval -EINVAL    co NULL or detached, or another coroutine is already
 *                    joining it, or outside a coroutine, or co belongs to
 *                    another scheduler.
 * @retval -EDEADLK   co is the calling coroutine.
 * @retval -ECANCELED the caller was ended while waiting (co is not freed).
 * @retval other      an error raised into the caller (co is not freed).
 * If co finishes in the same turn as the caller is ended or raised, the
 * join succeeds (returns 0, co freed) and the error is kept for the
 * caller's next blocking call.
 * @context Coroutine only.
 */
WEFT_API int weft_join(weft_coro *co, int *status);

/**
 * As weft_join() with a deadline.
 * @retval -ETIMEDOUT  the deadline passed first (co is not freed).
 */
WEFT_API int weft_join_until(weft_coro *co, int64_t deadline, int *status);

/**
 * Non-blocking join, callable from anywhere on the owning thread (for
 * instance from main() after weft_run()).
 * @return 0 and frees the handle if co has finished.
 * @retval -EAGAIN  co has not finished yet.
 * @retval -EINVAL  co NULL, detached, or being joined.
 */
WEFT_API int weft_reap(weft_coro *co, int *status);

/**
 * Detach @p co: its handle is freed as soon as it finishes (at once if it
 * already has).  The caller must not use the handle afterwards.
 * @return 0.
 * @retval -EINVAL  co NULL, already detached, or being joined.
 */
WEFT_API int weft_detach(weft_coro *co);

/**
 * Raise an error in @p co (greenhouse schedule_exception()): its current
 * blocking call, or its next one if it is ready or running, returns @p err.
 * Only the most recent raise is kept until delivered: a raise into a
 * waiting coroutine wakes it with that error at once, so a second raise
 * before it runs is kept for its next blocking call.
 * @param err  A negative errno value.
 * @return 0.
 * @retval -EINVAL  co NULL, or err >= 0.
 * @retval -ESRCH   co has finished.
 */
WEFT_API int weft_raise(weft_coro *co, int err);

/**
 * Raise @p err in @p co at scheduler time @p t (greenhouse
 * schedule_exception_at()).  If co finishes first, nothing happens.
 * @return 0.
 * @retval -EINVAL  as weft_raise().
 * @retval -ESRCH   co has finished.
 * @retval -ENOMEM  no memory for the timer.
 */
WEFT_API int weft_raise_at(weft_coro *co, int err, int64_t t);

/** As weft_raise_at(), @p delay_ns from now (-EINVAL if negative). */
WEFT_API int weft_raise_in(weft_coro *co, int err, int64_t delay_ns);

/**
 * End @p co (greenhouse end()): deliver -ECANCELED to its current blocking
 * call, and make every later blocking call it makes fail with -ECANCELED
 * at once, until its body returns.  A coroutine that never ran is freed
 * without running (its status is -ECANCELED).  Ending a finished
 * coroutine does nothing.  A body that returns -ECANCELED after being
 * ended is not reported as a failure.  A coroutine may end itself; its
 * next blocking call then fails.
 * @return 0.
 * @retval -EINVAL  co NULL.
 */
WEFT_API int weft_end(weft_coro *co);

/**
 * Whether @p co has been ended (weft_end()).
 * @return 1 or 0; -EINVAL for NULL.
 */
WEFT_API int weft_coro_ended(const weft_coro *co);

/**
 * Whether @p co has finished (its body returned, or it was ended before it
 * ran).
 * @return 1 or 0; -EINVAL for NULL.
 */
WEFT_API int weft_coro_done(const weft_coro *co);

/** A unique id (per process, never reused), or 0 for NULL. */
WEFT_API uint64_t weft_coro_id(const weft_coro *co);

/** The coroutine's name ("" if none; never NULL, even for NULL co). */
WEFT_API const char *weft_coro_name(const weft_coro *co);

/**
 * Set the name (copied; truncated to WEFT_NAME_MAX bytes).  The name
 * appears in stack-overflow reports and failure lines.
 * @return 0, or -EINVAL for NULL co.
 */
WEFT_API int weft_coro_set_name(weft_coro *co, const char *name);

/** The user data pointer (NULL for NULL co). */
WEFT_API void *weft_coro_data(const weft_coro *co);

/** Set the user data pointer.  @return 0, or -EINVAL for NULL co. */
WEFT_API int weft_coro_set_data(weft_coro *co, void *data);

/** The coroutine's stack size in bytes (0 for NULL). */
WEFT_API size_t weft_coro_stack_size(const weft_coro *co);

/** The scheduler a coroutine belongs to (NULL for NULL). */
WEFT_API weft_sched *weft_coro_sched(const weft_coro *co);

/* ======================================================================
 * Exception (failure) handlers
 * ====================================================================== */

/**
 * Called when a coroutine finishes with a negative status (or by
 * weft_handle_error()).  @p co is still valid during the call.  Handlers
 * must not block.
 */
typedef void (*weft_error_fn)(weft_coro *co, int status, void *arg);

/**
 * Add a scheduler-wide failure handler (greenhouse
 * global_exception_handler()).  Handlers run in the order added, after
 * the failing coroutine's local handlers.  When a coroutine fails and no
 * handler (local or global) is registered, one line naming the coroutine
 * and the error is written to stderr.  Either way the scheduler continues.
 * @return 0.
 * @retval -EINVAL  fn NULL.
 * @retval -EEXIST  the same (fn, arg) is already registered.
 * @retval -ENOMEM  no memory.
 */
WEFT_API int weft_on_error_global(weft_sched *s, weft_error_fn fn, void *arg);

/**
 * Remove a global handler added with the same (fn, arg).
 * @return 0.
 * @retval -ENOENT  not registered.
 */
WEFT_API int weft_remove_error_global(weft_sched *s, weft_error_fn fn,
                                      void *arg);

/**
 * Add a handler for failures of @p co only (greenhouse
 * local_exception_handler()); co NULL means the calling coroutine.
 * @return 0.
 * @retval -EINVAL  fn NULL, or co NULL outside a coroutine, or co done.
 * @retval -EEXIST  already registered.
 * @retval -ENOMEM  no memory.
 */
WEFT_API int weft_on_error(weft_coro *co, weft_error_fn fn, void *arg);

/** Remove a local handler.  @return 0, -ENOENT, or -EINVAL. */
WEFT_API int weft_remove_error(weft_coro *co, weft_error_fn fn, void *arg);

/**
 * Run the handlers for @p co as if it had failed with @p status
 * (greenhouse handle_exception()): its local handlers, then the global
 * ones, else the stderr line.  co NULL means the calling coroutine.
 * @return The number of handlers called.
 * @retval -EINVAL  co NULL outside a coroutine, or status >= 0.
 */
WEFT_API int weft_handle_error(weft_coro *co, int status);

/* ======================================================================
 * Switch hooks
 * ====================================================================== */

/**
 * Hooks run in this order at each switch: the departing coroutine's
 * outgoing hooks, the global hooks, the arriving coroutine's incoming
 * hooks.  A hook added during a switch first runs at the next one.  Hooks
 * and failure handlers may end, raise, reap or detach coroutines.
 *
 * Global switch hook: called on every switch, just before it, with the
 * coroutine being left and the one being entered.  NULL stands for the
 * scheduler itself (the loop between coroutines).  Hooks must not block
 * (blocking calls return -EINVAL inside a hook) and may add or remove
 * hooks, including themselves.
 */
typedef void (*weft_hook_fn)(weft_coro *from, weft_coro *to, void *arg);

/** Direction passed to a per-coroutine hook (greenhouse's 1 and 2). */
#define WEFT_HOOK_IN 1
#define WEFT_HOOK_OUT 2

/**
 * Per-coroutine hook: @p dir is WEFT_HOOK_IN when @p co is about to be
 * switched to, WEFT_HOOK_OUT when it is being switched away from
 * (including the last time, when it finishes).
 */
typedef void (*weft_coro_hook_fn)(int dir, weft_coro *co, void *arg);

/**
 * Add a global hook (greenhouse global_hook()).
 * @return 0; -EINVAL (fn NULL), -EEXIST, -ENOMEM.
 */
WEFT_API int weft_hook_add(weft_sched *s, weft_hook_fn fn, void *arg);

/** Remove a global hook.  @return 0 or -ENOENT. */
WEFT_API int weft_hook_remove(weft_sched *s, weft_hook_fn fn, void *arg);

/**
 * Add an incoming (dir WEFT_HOOK_IN) or outgoing (WEFT_HOOK_OUT) hook to
 * @p co (NULL: the calling coroutine).
 * @return 0; -EINVAL (bad dir, fn NULL, no coroutine, co done), -EEXIST,
 *         -ENOMEM.
 */
WEFT_API int weft_coro_hook_add(weft_coro *co, int dir, weft_coro_hook_fn fn,
                                void *arg);

/** Remove a per-coroutine hook.  @return 0, -ENOENT or -EINVAL. */
WEFT_API int weft_coro_hook_remove(weft_coro *co, int dir,
                                   weft_coro_hook_fn fn, void *arg);

/* ======================================================================
 * Callback timers (no coroutine involved)
 * ====================================================================== */

/** A timer callback; runs on the scheduler, must not block. */
typedef void (*weft_timer_fn)(weft_timer *t, void *arg);

/**
 * Create a stopped timer on @p s.
 * @return 0; -EINVAL (cb or out NULL), -ENOMEM.
 */
WEFT_API int weft_timer_new(weft_sched *s, weft_timer_fn cb, void *arg,
                            weft_timer **out);

/**
 * Start (or restart) @p t: fire after @p timeout_ns, then every
 * @p repeat_ns if repeat_ns > 0.  Repeats are on a fixed grid from the
 * first deadline; if the loop falls behind by whole periods they are
 * skipped, not fired in a burst.  Timers with equal deadlines fire in the
 * order they were started.  An active timer keeps weft_run() running.
 * @return 0.
 * @retval -EINVAL  t NULL, timeout_ns < 0 or repeat_ns < 0.
 * @retval -ENOMEM  the timer heap could not grow.
 */
WEFT_API int weft_timer_start(weft_timer *t, int64_t timeout_ns,
                              int64_t repeat_ns);

/** As weft_timer_start(), first firing at absolute time @p t0. */
WEFT_API int weft_timer_start_at(weft_timer *t, int64_t t0,
                                 int64_t repeat_ns);

/**
 * Stop @p t (no-op if not active).  Safe from the timer's own callback.
 * @return 0 or -EINVAL.
 */
WEFT_API int weft_timer_stop(weft_timer *t);

/**
 * Restart a repeating timer from now with its repeat period as timeout
 * (libuv's uv_timer_again).
 * @return 0.
 * @retval -EINVAL  t NULL or its repeat is 0.
 */
WEFT_API int weft_timer_again(weft_timer *t);

/** Whether @p t is active: 1 or 0 (0 for NULL). */
WEFT_API int weft_timer_active(const weft_timer *t);

/** Set the repeat period (libuv's uv_timer_set_repeat): it takes effect
 *  when the next deadline is computed, i.e. after the next firing, or at
 *  weft_timer_again().  Called from the timer's own callback, the deadline
 *  that follows was already computed with the old period; and a one-shot
 *  timer does not start repeating until it is started again.
 *  @return 0 or -EINVAL (NULL, negative). */
WEFT_API int weft_timer_set_repeat(weft_timer *t, int64_t repeat_ns);

/** The next deadline of an active timer, -1 if stopped. */
WEFT_API int64_t weft_timer_due(const weft_timer *t);

/**
 * Stop and free @p t.  Safe from the timer's own callback.
 * @return 0 or -EINVAL.
 */
WEFT_API int weft_timer_free(weft_timer *t);

/* ======================================================================
 * Debugging
 * ====================================================================== */

/**
 * Write a human-readable report on @p s to @p out: one header line (the
 * coroutine, ready, timer and I/O-waiter counts and the clock), then one
 * line per coroutine not yet released, in spawn order, with its id, name,
 * state (new, ready, running, waiting, done), priority, stack size and
 * what it waits on: a deadline ("sleeping until T"), an fd ("fd N for
 * read"), a coroutine ("joining #id"), or a synchronisation object,
 * future or channel (its kind and address).  When every remaining
 * coroutine waits for something nothing can wake (no coroutine ready, no
 * timer, no I/O waiter, no active readiness callback: the condition under
 * which weft_run() returns -EDEADLK) it ends with a deadlock report
 * naming each of them.  The format is for people (docs/reliability.md
 * shows it) and may gain detail; programs should not parse it.
 * @param s    Scheduler, or NULL for the current one.
 * @param out  Where to write (e.g. stderr).
 * @return The number of coroutines named in the deadlock report, 0 when
 *         there is no deadlock.
 * @retval -EINVAL  out is NULL, or s belongs to another thread.
 * @retval -EIO     writing to out failed (ferror(out) is set).
 * @context The owning thread, anywhere: outside the scheduler, in a
 *          coroutine, a callback, a hook or a failure handler.  It does
 *          not block and does not change the scheduler.
 */
WEFT_API int weft_dump(weft_sched *s, FILE *out);

/**
 * A watchdog report: coroutine @p id, named @p name ("" if unnamed), has
 * run for at least @p ran_ns ns of real time without yielding.  Called on
 * the scheduler's watchdog thread, while that coroutine is still running
 * on the scheduler's own thread: it must not call weft functions on @p s
 * or touch the coroutine; it may log, set an atomic flag, or abort().
 */
typedef void (*weft_watchdog_fn)(weft_sched *s, uint64_t id, const char *name,
                                 int64_t ran_ns, void *arg);

/**
 * Turn the watchdog of @p s on, change its threshold, or turn it off
 * (weft_sched_opts.watchdog_ns sets it at creation).  While on, a thread
 * of the scheduler's own samples, several times per threshold, a counter
 * the scheduler bumps at every switch; a coroutine seen running for more
 * than @p threshold_ns without a switch (an infinite loop, a blocking
 * system call, a long computation) is reported once per stall, by the
 * function set with weft_sched_set_watchdog_fn(), else by one line on
 * stderr:
 *
 *     weft: watchdog: coroutine #7 'parser' has run for 212 ms without yielding
 *
 * Detection does not need the coroutine's cooperation.  It is precise to
 * about a quarter of the threshold.  Time spent in the loop itself
 * (callbacks, waiting for I/O) is never reported.  Off, the cost is one
 * predictable branch per switch; on, a few stores per switch and a thread
 * that wakes 4 times per threshold.  The thread is started when the
 * watchdog is turned on and joined when it is turned off or the scheduler
 * is freed.  It does not survive fork(): in a child, turn the watchdog off
 * (which then only frees it) and on again.
 * @param threshold_ns  > 0 to turn on or change; 0 to turn off.
 * @return 0.
 * @retval -EINVAL  threshold_ns < 0, or s belongs to another thread.
 * @retval -EAGAIN  the thread could not be started.
 * @retval -ENOMEM  no memory.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_sched_set_watchdog(weft_sched *s, int64_t threshold_ns);

/**
 * Set the function that receives watchdog reports (NULL: the default
 * line on stderr).  It takes effect for the next report, whether the
 * watchdog is on yet or not (a report already under way on the watchdog
 * thread may still reach the previous function).
 * @return 0.
 * @retval -EINVAL  s belongs to another thread.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_sched_set_watchdog_fn(weft_sched *s, weft_watchdog_fn fn,
                                        void *arg);

/* Futures and synchronisation primitives (each header documents its part). */
#include "weft/future.h"
#include "weft/sync.h"
#include "weft/coop.h"
#include "weft/io.h"
#include "weft/doorbell.h"
#include "weft/net.h"
#include "weft/dispatch.h"
#include "weft/trace.h"

#ifdef __cplusplus
}
#endif

#endif /* WEFT_H */
