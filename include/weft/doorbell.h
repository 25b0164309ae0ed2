/*
 * weft/doorbell.h - the one-at-a-time doorbell loop (buildbot's
 * util.loop).  Included by weft.h; include that instead.
 *
 * A doorbell loop owns a set of processors and a doorbell.  Ringing the
 * doorbell (weft_doorbell_trigger(), from any thread or signal handler; or
 * weft_doorbell_ring_path() / the weft-ring tool, from another process)
 * makes the loop run every processor once, one at a time, each inside a
 * coroutine so that it may block.  A processor typically examines a
 * database for work; whoever writes work into the database rings
 * afterwards.  The guarantees (docs/doorbell.md explains them):
 *
 *   - Rings coalesce: rings made before a run begins are answered by that
 *     one run.  Every ring is followed by at least one full run that
 *     begins after it; a ring during a run causes exactly one more run.
 *   - At most one processor is active at any time, across runs of every
 *     kind; the next starts only when the previous one has returned.  The
 *     order within a run is not guaranteed.  A processor added twice is
 *     kept once, so it runs once per run.
 *   - A processor may ask to be called again at a time of its choosing
 *     (*wake_at, absolute, on the scheduler's clock; weft_from_unix()
 *     converts epoch times).  Each answer replaces that processor's
 *     previous one; an outstanding wake-up is cancelled just before the
 *     processor is invoked; a minimum delay (5 s by default) counted from
 *     the invocation is imposed; a time not in the future is reported
 *     through the log function and ignored.
 *   - Errors (a negative return) are reported through the log function
 *     and ignored: the loop goes on.
 *
 * Three forms, as buildbot's Loop, DelegateLoop and MultiServiceLoop:
 * processors added one by one (weft_doorbell_new), returned by a callback
 * at every run (weft_doorbell_new_delegate), or gathered from child
 * services that start and stop with the loop (weft_doorbell_new_services).
 *
 * Threads: a loop belongs to the thread of its scheduler.  The only calls
 * allowed from anywhere else are weft_doorbell_trigger() (any thread,
 * async-signal-safe) and weft_doorbell_ring_path() (any thread or process,
 * async-signal-safe).  Free a loop before its scheduler.
 */
#ifndef WEFT_DOORBELL_H
#define WEFT_DOORBELL_H

#include <stddef.h>
#include <stdint.h>

#include "../weft.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_doorbell weft_doorbell;

/** The default minimum delay of processor wake-ups (buildbot's
 *  OCD_MINIMUM_DELAY): 5 s. */
#define WEFT_DOORBELL_MIN_DELAY WEFT_SEC(5)

/**
 * A processor.  It runs inside a coroutine of the loop's scheduler, so it
 * may block (sleep, wait on fds, futures, channels ...); no other
 * processor of the loop runs until it returns.
 * @param db       The loop.
 * @param arg      The argument it was added with.
 * @param wake_at  Set to -1 (none) before the call.  To be called again at
 *                 or after a time, store that absolute scheduler time
 *                 (weft_now(weft_doorbell_sched(db)) + delay, or
 *                 weft_from_unix() of an epoch time).  The loop then calls
 *                 it at max(*wake_at, invocation time + minimum delay); a
 *                 time not in the future when it returns is logged
 *                 (WEFT_DOORBELL_LOG_PAST) and ignored.
 * @return 0 (or positive) for success; a negative errno value is logged
 *         (WEFT_DOORBELL_LOG_FAILED) and ignored, and so is *wake_at then.
 * A processor may call any weft_doorbell_* function on its own loop except
 * weft_doorbell_free() (-EBUSY).  It must not end or raise into the
 * coroutine it runs in (weft_self()): that coroutine belongs to the loop.
 */
typedef int (*weft_doorbell_fn)(weft_doorbell *db, void *arg,
                                int64_t *wake_at);

/** What a log record reports (struct weft_doorbell_log.kind). */
enum weft_doorbell_log_kind {
    WEFT_DOORBELL_LOG_FAILED = 1,   /**< a processor returned err < 0 */
    WEFT_DOORBELL_LOG_PAST = 2,     /**< a processor asked for a wake-up
                                         time (when) not after now */
    WEFT_DOORBELL_LOG_DELEGATE = 3, /**< the delegate returned err < 0; the
                                         run used what it had offered */
    WEFT_DOORBELL_LOG_RUN = 4,      /**< no memory (err): a run could not
                                         start (retried after 100 ms), or
                                         the wake-up timer could not be
                                         armed (the wake-ups then wait for
                                         the next run) */
    WEFT_DOORBELL_LOG_NAMED = 5,    /**< reading the named doorbell failed
                                         (err) */
    WEFT_DOORBELL_LOG_ENDED = 6     /**< the run's coroutine was ended
                                         (weft_end) by someone: the run was
                                         abandoned after its processor */
};

/** One report, passed to the log function; valid during the call only. */
struct weft_doorbell_log {
    int kind;            /**< enum weft_doorbell_log_kind */
    int err;             /**< negative errno value, or 0 */
    weft_doorbell_fn fn; /**< the processor concerned, or NULL */
    void *arg;           /**< its argument */
    const char *name;    /**< the service's name (services form), else "" */
    int64_t when;        /**< PAST: the time asked for; otherwise -1 */
    int64_t now;         /**< the scheduler time of the report */
    const char *msg;     /**< the report as one line of text (no newline) */
};

/**
 * The log function (buildbot's log.err).  It runs on the loop's thread,
 * from the loop's coroutine or a callback, and must not block.  It may
 * call weft_doorbell_* functions except weft_doorbell_free().  The
 * default writes "weft: doorbell: <msg>" to stderr.
 */
typedef void (*weft_doorbell_log_fn)(weft_doorbell *db,
                                     const struct weft_doorbell_log *rec,
                                     void *arg);

/** A hook without arguments beyond the loop (see weft_doorbell_opts). */
typedef void (*weft_doorbell_hook_fn)(weft_doorbell *db, void *arg);

/** Options for the constructors.  Zero-initialise; zero means default. */
struct weft_doorbell_opts {
    int64_t min_delay;          /**< Minimum delay of wake-ups in ns,
                                     counted from the processor's
                                     invocation; 0: WEFT_DOORBELL_MIN_DELAY.
                                     Negative: -EINVAL. */
    weft_doorbell_log_fn log;   /**< NULL: the default (stderr). */
    void *log_arg;
    size_t stack_size;          /**< Stack of the coroutine processors run
                                     in; 0: the scheduler's default. */
    weft_doorbell_hook_fn on_run; /**< Called at the start of every run,
                                     before the rings it answers are
                                     collected: every ring made before
                                     this call is answered by this run
                                     or an earlier one.  NULL: none. */
    weft_doorbell_hook_fn on_done; /**< Called when a run ends and no
                                     other run follows at once (buildbot's
                                     loop_done): once per busy period.
                                     It may free the loop.  NULL: none. */
    void *hook_arg;             /**< Passed to on_run and on_done. */
};

/* ----------------------------------------------------------------------
 * Creating and freeing
 * ---------------------------------------------------------------------- */

/**
 * Create a loop whose processors are added with weft_doorbell_add()
 * (buildbot's Loop).  The loop starts stopped: call weft_doorbell_start().
 * @param s     Scheduler the processors run on, or NULL for the current
 *              one.
 * @param opts  Options, or NULL for the defaults.
 * @param out   Receives the loop (NULL on failure).
 * @return 0.
 * @retval -EINVAL  out NULL, a bad option, or s belongs to another thread.
 * @retval -ENOMEM  no memory.
 * @retval -EMFILE / -ENFILE  no file descriptor for the eventfd.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_doorbell_new(weft_sched *s,
                               const struct weft_doorbell_opts *opts,
                               weft_doorbell **out);

/**
 * Gives the processors of one run (see weft_doorbell_new_delegate()): it
 * calls weft_doorbell_offer() for each.
 * @return 0, or a negative errno: logged (WEFT_DOORBELL_LOG_DELEGATE) and
 *         the run goes on with the processors offered before it.
 */
typedef int (*weft_doorbell_delegate_fn)(weft_doorbell *db, void *arg);

/**
 * Create a loop that asks @p get for its processors at the start of every
 * run (buildbot's DelegateLoop).  In a full run every processor offered
 * runs; in a run caused by wake-up times only those offered whose time
 * has come run, and the wake-ups of processors no longer offered are
 * dropped.  @p get runs on the loop's coroutine and may block.
 * @return 0.
 * @retval -EINVAL  get NULL, or as weft_doorbell_new().
 * @retval -ENOMEM, -EMFILE, -ENFILE  as weft_doorbell_new().
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_doorbell_new_delegate(weft_sched *s,
                                        const struct weft_doorbell_opts *opts,
                                        weft_doorbell_delegate_fn get,
                                        void *arg, weft_doorbell **out);

/**
 * Create a loop whose processors are the run functions of its child
 * services (buildbot's MultiServiceLoop): see weft_doorbell_service_add().
 * Errors as weft_doorbell_new().
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_doorbell_new_services(weft_sched *s,
                                        const struct weft_doorbell_opts *opts,
                                        weft_doorbell **out);

/**
 * Free a loop: stop it (services get their stop hook), unbind its named
 * doorbell (the path is removed), fail its pending when-quiet futures
 * with -ECANCELED, and release everything.  No other thread may still
 * call weft_doorbell_trigger() on it.  Free a loop before its scheduler.
 * A run that was scheduled but has not begun is dropped.
 * @return 0.
 * @retval -EINVAL  db NULL or of another thread.
 * @retval -EBUSY   a run is in progress (a processor is executing or
 *                  suspended, or the run is between two processors): stop
 *                  the loop and let the scheduler run until the loop is
 *                  quiet.  This includes a call from a processor.
 * @context The owning thread; also from on_done and a when-quiet callback.
 */
WEFT_API int weft_doorbell_free(weft_doorbell *db);

/* ----------------------------------------------------------------------
 * Starting and stopping (Twisted's startService / stopService)
 * ---------------------------------------------------------------------- */

/**
 * Start the loop: it watches its doorbells again, starts its services
 * (in the order they were added) and schedules one full run, which
 * answers the rings made while it was stopped.  A started loop keeps
 * weft_run() running (it can be rung from another thread) until it is
 * stopped.
 * @return 0.
 * @retval -EINVAL    db NULL or of another thread.
 * @retval -EALREADY  already started.
 * @retval other      the backend's error when watching the doorbells again
 *                    (the loop stays stopped).
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_doorbell_start(weft_doorbell *db);

/**
 * Stop the loop: rings and wake-up times are ignored until the next
 * weft_doorbell_start(), a run that was scheduled but has not begun is
 * dropped, a run in progress ends when its current processor returns (no
 * other processor is invoked), and the services get their stop hook (in
 * reverse order).  The loop no longer keeps weft_run() running.
 * @return 0.
 * @retval -EINVAL    db NULL or of another thread.
 * @retval -EALREADY  not started.
 * @context The owning thread, anywhere (processors included).
 */
WEFT_API int weft_doorbell_stop(weft_doorbell *db);

/** Whether the loop is started: 1 or 0; -EINVAL for NULL or another
 *  thread's loop.  @context The owning thread, anywhere. */
WEFT_API int weft_doorbell_started(const weft_doorbell *db);

/* ----------------------------------------------------------------------
 * Processors
 * ---------------------------------------------------------------------- */

/**
 * Add the processor fn(arg) to a loop made by weft_doorbell_new().  A
 * processor is the pair (fn, arg); adding the same pair again keeps one.
 * It first runs at the next full run (the next ring or start).
 * @return 0 when added, 1 when it was already there.
 * @retval -EINVAL  db or fn NULL, db of another thread or of another form.
 * @retval -ENOMEM  no memory.
 * @context The owning thread, anywhere (processors included).
 */
WEFT_API int weft_doorbell_add(weft_doorbell *db, weft_doorbell_fn fn,
                               void *arg);

/**
 * Remove the processor (fn, arg): it is not invoked again (not even later
 * in the run in progress) and its wake-up is dropped.  If it is executing
 * now, it finishes normally and its *wake_at is ignored.
 * @return 0.
 * @retval -ENOENT  not in the loop.
 * @retval -EINVAL  db or fn NULL, db of another thread or of another form.
 * @context The owning thread, anywhere (processors included).
 */
WEFT_API int weft_doorbell_remove(weft_doorbell *db, weft_doorbell_fn fn,
                                  void *arg);

/**
 * Offer the processor (fn, arg) for the run that is starting; only valid
 * inside the delegate of a loop made by weft_doorbell_new_delegate().
 * Offering the same pair twice keeps one.
 * @return 0 when offered, 1 when it was already.
 * @retval -EINVAL  db or fn NULL, or not called from that loop's delegate.
 * @retval -ENOMEM  no memory (the processor is left out of this run).
 * @context The delegate.
 */
WEFT_API int weft_doorbell_offer(weft_doorbell *db, weft_doorbell_fn fn,
                                 void *arg);

/** A child service of a loop made by weft_doorbell_new_services(). */
struct weft_doorbell_service {
    const char *name;           /**< Unique within the loop; copied. */
    weft_doorbell_fn run;       /**< Its processor, called as run(db, arg,
                                     wake_at). */
    weft_doorbell_hook_fn start; /**< Called when the service starts: when
                                     the loop starts, or at once when it is
                                     added to a started loop.  NULL: none. */
    weft_doorbell_hook_fn stop; /**< Called when it stops: when the loop
                                     stops or is freed, or when it is
                                     removed while started.  NULL: none. */
    void *arg;                  /**< Passed to run, start and stop. */
};

/**
 * Add a child service (Twisted's setServiceParent on a MultiServiceLoop).
 * Its processor is (svc->run, svc->arg); two services with the same pair
 * make one processor.  Added to a started loop, it is started at once; it
 * first runs at the next full run.
 * @return 0.
 * @retval -EINVAL  db, svc, svc->name or svc->run NULL, an empty name,
 *                  db of another thread or of another form.
 * @retval -EEXIST  a service of that name is already there.
 * @retval -ENOMEM  no memory.
 * @context The owning thread, anywhere (processors included).
 */
WEFT_API int weft_doorbell_service_add(weft_doorbell *db,
                                       const struct weft_doorbell_service *svc);

/**
 * Remove the child service @p name: it is stopped if started, and its
 * processor is not invoked again (unless another service shares it).
 * @return 0.
 * @retval -ENOENT  no such service.
 * @retval -EINVAL  db or name NULL, db of another thread or form.
 * @context The owning thread, anywhere (processors included).
 */
WEFT_API int weft_doorbell_service_remove(weft_doorbell *db,
                                          const char *name);

/**
 * Whether the child service @p name is started (Twisted's
 * service.running).
 * @return 1 or 0.
 * @retval -ENOENT  no such service.
 * @retval -EINVAL  db or name NULL, db of another thread or form.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_doorbell_service_running(const weft_doorbell *db,
                                           const char *name);

/* ----------------------------------------------------------------------
 * The doorbell
 * ---------------------------------------------------------------------- */

/**
 * Ring the doorbell.  Safe from any thread and from a signal handler
 * (async-signal-safe: an atomic exchange on a pending flag and, only when
 * the flag goes from 0 to 1, one write(2) to the loop's eventfd; errno is
 * preserved).  The loop answers with at least one full run that begins
 * after this call; rings made before that run begins are merged into it,
 * and a ring during a run causes exactly one more run.  While the loop is
 * stopped the ring is held and answered by the full run of the next
 * weft_doorbell_start().  The loop must not be freed while a call may be
 * in progress.
 * @return 1 when this ring woke the loop (the flag went from 0 to 1), 0
 *         when it was merged into a ring not yet answered.
 * @retval -EINVAL  db NULL.
 * @retval <0       the eventfd write failed (the ring stays pending).
 * @context Any thread, signal handlers included.
 */
WEFT_API int weft_doorbell_trigger(weft_doorbell *db);

/**
 * Bind a named doorbell: a Unix datagram socket at the filesystem path
 * @p path, which any process allowed to write to it can ring with
 * weft_doorbell_ring_path() or `weft-ring PATH`.  A datagram counts as a
 * ring (its contents are ignored); the loop drains them before the run
 * that answers them begins, so nothing rung before that is missed.  See
 * docs/doorbell.md for why a datagram socket rather than a FIFO.
 *   - A stale socket left at @p path by a process that died (nothing is
 *     bound to it) is removed and replaced.  A socket something is bound
 *     to gives -EADDRINUSE; a path that is not a socket is never removed
 *     (-EEXIST).
 *   - The socket file gets permissions @p mode (e.g. 0600: only this user
 *     may ring; 0660: the group too), whatever the umask.
 * @param mode  Permission bits (0 .. 0777); 0 means 0600.
 * @return 0.
 * @retval -EINVAL        db or path NULL, path empty, mode > 0777, db of
 *                        another thread.
 * @retval -EALREADY      the loop already has a named doorbell.
 * @retval -ENAMETOOLONG  path does not fit a sockaddr_un.
 * @retval -EADDRINUSE    a live socket is bound to path.
 * @retval -EEXIST        path exists and is not a socket.
 * @retval -ENOMEM        no memory.
 * @retval other          the errno of socket(2), bind(2) or chmod(2),
 *                        negated (-EACCES, -ENOENT for a missing
 *                        directory ...).
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_doorbell_bind(weft_doorbell *db, const char *path,
                                unsigned mode);

/**
 * Close the named doorbell and remove its path (only if the path still
 * names the socket this loop bound).
 * @return 0.
 * @retval -ENOENT  the loop has no named doorbell.
 * @retval -EINVAL  db NULL or of another thread.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_doorbell_unbind(weft_doorbell *db);

/**
 * The path of the loop's named doorbell, or NULL when it has none (or db
 * is NULL or of another thread).  Valid until unbind or free.
 * @context The owning thread, anywhere.
 */
WEFT_API const char *weft_doorbell_path(const weft_doorbell *db);

/**
 * Ring the named doorbell at @p path (bound with weft_doorbell_bind(), in
 * this process or another): send it one datagram.  Needs no scheduler.
 * Rings that the loop has not read yet coalesce; when its queue is full
 * the ring is merged into those (success).  To have work seen, commit it
 * first, then ring.
 * @return 0.
 * @retval -EINVAL        path NULL or empty.
 * @retval -ENAMETOOLONG  path does not fit a sockaddr_un.
 * @retval -ENOENT        no such path.
 * @retval -ECONNREFUSED  nothing is bound there (a stale path: the loop's
 *                        process is gone or has unbound).
 * @retval -EACCES        no write permission on the socket (or a
 *                        directory on the way).
 * @retval other          the errno of socket(2) or sendto(2), negated
 *                        (-EPROTOTYPE: not a datagram socket ...).
 * @context Any thread or process; async-signal-safe (socket, sendto and
 *          close only; errno is preserved).
 */
WEFT_API int weft_doorbell_ring_path(const char *path);

/* ----------------------------------------------------------------------
 * Quiet, queries and settings
 * ---------------------------------------------------------------------- */

/**
 * A future that resolves (value NULL) when a run ends with nothing
 * pending: no ring waiting to be answered and no wake-up time
 * outstanding (or the loop stopped).  As in buildbot it waits for the end
 * of a run even when the loop is idle now: ring after asking, or check
 * weft_doorbell_is_quiet() first.  The loop holds its own reference until
 * it resolves the future (the caller owns the one returned and releases
 * it with weft_future_release()); weft_doorbell_free() fails it with
 * -ECANCELED.  Its callbacks may free the loop.
 * @return 0.
 * @retval -EINVAL  db or out NULL, db of another thread.
 * @retval -ENOMEM  no memory.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_doorbell_when_quiet(weft_doorbell *db, weft_future **out);

/**
 * Whether the loop is quiet now: no run in progress or scheduled, and
 * either stopped or with no ring waiting and no wake-up time outstanding
 * (the state in which a run's end resolves the when-quiet futures).
 * @return 1 or 0; -EINVAL for NULL or another thread's loop.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_doorbell_is_quiet(const weft_doorbell *db);

/** The number of runs begun so far (full and wake-up runs); -EINVAL for
 *  NULL or another thread's loop.  @context The owning thread, anywhere. */
WEFT_API int64_t weft_doorbell_runs(const weft_doorbell *db);

/** The scheduler of the loop (NULL for NULL).  @context Any thread. */
WEFT_API weft_sched *weft_doorbell_sched(const weft_doorbell *db);

/**
 * Change the minimum delay of wake-ups (buildbot's OCD_MINIMUM_DELAY);
 * it applies to the wake-up times returned from now on.
 * @param ns  > 0.
 * @return 0, or -EINVAL (db NULL or of another thread, ns <= 0).
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_doorbell_set_min_delay(weft_doorbell *db, int64_t ns);

/** The minimum delay in ns; -EINVAL for NULL or another thread's loop.
 *  @context The owning thread, anywhere. */
WEFT_API int64_t weft_doorbell_min_delay(const weft_doorbell *db);

/**
 * Change the log function (NULL: back to the default, stderr).
 * @return 0, or -EINVAL (db NULL or of another thread).
 * @context The owning thread, anywhere (the log function included).
 */
WEFT_API int weft_doorbell_set_log(weft_doorbell *db, weft_doorbell_log_fn fn,
                                   void *arg);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_DOORBELL_H */
