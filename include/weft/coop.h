/*
 * weft/coop.h - the cooperator: cooperative iterator tasks, time-sliced
 * round robin (Twisted's twisted.internet.task.Cooperator).
 *
 * Part of the public API; normally reached through "weft.h", which includes
 * it at its end.  Including this file on its own also works: it includes
 * "../weft.h" first (the include guards break the cycle).
 *
 * A task is a step function plus its state.  Each call of the step does
 * one unit of work and says what comes next: more work, done, a failure,
 * or a future to wait for.  A cooperator runs the steps of its tasks in
 * ticks: in each tick it calls one step of each runnable task in turn
 * (round robin, the order carried over from tick to tick) until the
 * tick's termination predicate says the tick is over (by default after a
 * 10 ms time slice), then schedules the next tick (by default with a
 * zero-delay callback timer of its scheduler), so that coroutines and
 * I/O run between ticks.  docs/coop.md explains the model and how it maps
 * to Twisted.
 *
 * Ownership:
 *   - weft_coop_new() returns a cooperator owned by the caller, freed with
 *     weft_coop_free().  A cooperator must be freed before its scheduler.
 *   - weft_coop_cooperate() returns a task handle owned by the caller,
 *     dropped with weft_coop_task_release().  Releasing the handle does
 *     not stop the task: it runs on, and its record is freed once it has
 *     ended and the handle is released, whichever comes last.
 *   - The step's state belongs to the caller: the cooperator never frees
 *     it, and never calls the step again once the task has ended, which
 *     it announces through the when-done futures (free the state from a
 *     when-done callback, for instance).
 *   - Futures: when-done futures are returned with one reference owned by
 *     the caller; the cooperator holds its own until it decides them.  A
 *     future a step returns to wait for stays the step's: the cooperator
 *     takes its own hold on it for the wait.
 *
 * Every function belongs to the thread that owns the cooperator's
 * scheduler; calls from another thread return -EINVAL.
 */
#ifndef WEFT_COOP_H
#define WEFT_COOP_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "../weft.h"
#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_coop weft_coop;
typedef struct weft_coop_task weft_coop_task;

/* ----------------------------------------------------------------------
 * Steps
 * ---------------------------------------------------------------------- */

/** Step result: the unit of work is done and more will follow. */
#define WEFT_COOP_CONTINUE 0
/** Step result: the task is finished (Python's StopIteration).  Its
 *  when-done futures resolve with the state pointer as value. */
#define WEFT_COOP_DONE 1
/** Step result: wait for the future stored in *wait (Twisted: the
 *  iterator yielded a Deferred).  The task gets no step until the future
 *  is decided; resolved, the task continues; failed, the task fails with
 *  the future's error.  A future already resolved lets the task continue
 *  at its next turn; one already failed fails it at once. */
#define WEFT_COOP_WAIT 2

/**
 * A task's step: do one unit of work on @p state.
 * @param state  The pointer given to weft_coop_cooperate().
 * @param wait   Points to NULL; with WEFT_COOP_WAIT the step stores the
 *               future to wait for there.  The step keeps its own
 *               references: the cooperator holds the future itself for
 *               as long as it waits.
 * @return WEFT_COOP_CONTINUE, WEFT_COOP_DONE, WEFT_COOP_WAIT, or a
 *         negative errno value: the task fails with it.  Any other value,
 *         or WEFT_COOP_WAIT with no valid future in *wait (NULL, or a
 *         future of another thread), fails the task with -EINVAL.
 *
 * A step must not block.  With the default scheduler function it runs on
 * the loop (the tick is a timer callback, not a coroutine), where
 * blocking calls return -EINVAL; a tick run by hand from a coroutine would
 * hold the whole cooperator while blocked.  To wait, return a future.  A step may use the cooperator and its tasks
 * (pause, stop or resume itself or others, add tasks, stop or even free
 * the cooperator); if its own task ends during the step, the step's
 * return value is ignored.
 */
typedef int (*weft_coop_step_fn)(void *state, weft_future **wait);

/* ----------------------------------------------------------------------
 * How tasks end, and the errors that report it
 * ---------------------------------------------------------------------- */

/**
 * weft_coop_task_resume() of a task that is not paused (Twisted's
 * NotPaused): "Operation already in progress", the task already runs.
 */
#define WEFT_COOP_ENOTPAUSED (-EALREADY)
/**
 * The task's step returned WEFT_COOP_DONE (Twisted's TaskDone): the
 * error of weft_coop_task_pause()/_stop() on it.  Like weft_raise() on a
 * finished coroutine: "No such process".  Its when-done futures resolve
 * (with the state pointer); they do not fail.
 */
#define WEFT_COOP_EDONE (-ESRCH)
/**
 * The task was stopped with weft_coop_task_stop() (Twisted's
 * TaskStopped): the error of pause/stop on it, and the error its
 * when-done futures fail with.
 */
#define WEFT_COOP_ESTOPPED (-ECANCELED)
/**
 * The task failed (Twisted's TaskFailed): its step returned a negative
 * value, or a future it waited for failed.  The error of pause/stop on it.
 * Its when-done futures fail with the failure itself, not with this code.
 */
#define WEFT_COOP_EFAILED (-ENOTRECOVERABLE)
/**
 * The cooperator was stopped or freed before the task ended (Twisted's
 * SchedulerStopped): the error of pause/stop on it, the error its
 * when-done futures fail with, and the error of adding a task to a
 * stopped cooperator.
 */
#define WEFT_COOP_ESCHEDSTOPPED (-ESHUTDOWN)

/** States of a task (weft_coop_task_state()). */
enum weft_coop_task_state {
    WEFT_COOP_TASK_RUNNABLE = 0, /**< Gets one step per round. */
    WEFT_COOP_TASK_PAUSED = 1,   /**< Paused (pause count > 0), whether or
                                      not it also waits for a future. */
    WEFT_COOP_TASK_WAITING = 2,  /**< Waits for a future its step returned
                                      (and is not paused). */
    WEFT_COOP_TASK_DONE = 3,     /**< Ended: the step returned DONE. */
    WEFT_COOP_TASK_STOPPED = 4,  /**< Ended: weft_coop_task_stop(). */
    WEFT_COOP_TASK_FAILED = 5,   /**< Ended: a failure. */
    WEFT_COOP_TASK_SCHEDSTOPPED = 6 /**< Ended: the cooperator was stopped
                                         or freed. */
};

/* ----------------------------------------------------------------------
 * Termination predicate and scheduler function (pluggable)
 * ---------------------------------------------------------------------- */

/** A termination predicate: called after each step of a tick with its
 *  context; non-zero ends the tick. */
typedef int (*weft_coop_pred_fn)(void *ctx);

/** A termination predicate and its context, as a factory makes it. */
struct weft_coop_pred {
    weft_coop_pred_fn fn; /**< NULL: end the tick after every step. */
    void *ctx;
};

/**
 * A termination-predicate factory (Twisted's terminationPredicateFactory):
 * called at the start of every tick with the factory's argument; fills
 * @p out (preset to {NULL, NULL}) with the predicate for this tick.  The
 * predicate is first called after the first step, so every tick runs at
 * least one step.  A predicate that never returns non-zero makes the tick
 * run until no task is runnable.
 */
typedef void (*weft_coop_pred_factory)(weft_coop *c, void *arg,
                                       struct weft_coop_pred *out);

/**
 * A scheduler function (Twisted's scheduler argument): arrange for
 * weft_coop_tick(c) to be called once, later (not before returning).
 * @return 0, or a negative errno value if it cannot (see weft_coop_opts
 *         for what the cooperator then does).
 */
typedef int (*weft_coop_schedule_fn)(weft_coop *c, void *arg);

/**
 * Withdraw the call arranged by the last schedule call (Twisted's
 * IDelayedCall.cancel()): the cooperator no longer needs that tick.  A
 * withdrawn call that arrives anyway is harmless: weft_coop_tick() then
 * does nothing.
 */
typedef void (*weft_coop_cancel_fn)(weft_coop *c, void *arg);

/** Options for weft_coop_new().  Zero-initialise; zero means default. */
struct weft_coop_opts {
    /** Called at the start of each tick; NULL: the time slice below. */
    weft_coop_pred_factory predicate_factory;
    void *predicate_arg;
    /** The default predicate's time slice: a tick ends after the first
     *  step that finishes at or after (tick start + slice_ns) on the
     *  scheduler's clock.  0: 10 ms (Twisted's _Timer.MAX_SLICE).  Unused
     *  with a predicate factory. */
    int64_t slice_ns;
    /** Both or neither.  NULL: each tick is scheduled with a zero-delay
     *  callback timer of the cooperator's scheduler (Twisted: callLater
     *  with a tiny epsilon), so it runs in the loop's timer phase, after
     *  the coroutine turn and around the poll, and keeps weft_run()
     *  running while tasks are runnable. */
    weft_coop_schedule_fn schedule;
    weft_coop_cancel_fn cancel;
    void *schedule_arg;
    /** Non-zero: Twisted's started=False.  Tasks are queued but no tick
     *  is scheduled until weft_coop_start(). */
    int not_started;
};

/* ----------------------------------------------------------------------
 * Cooperators
 * ---------------------------------------------------------------------- */

/**
 * Create a cooperator (Twisted's Cooperator()).
 *
 * Scheduling the next tick (the scheduler function, or the default timer)
 * can fail.  When a call made by the program needed it (cooperate,
 * coiterate, resume, start), that call returns the error.  When nothing
 * waits for an answer (the end of a tick, a waited-for future resolving),
 * every runnable task fails with the error instead of hanging silently.
 *
 * @param s     Scheduler whose clock the default predicate reads and
 *              whose timer schedules the default ticks; NULL: the current
 *              one.
 * @param opts  Options, or NULL for all defaults.
 * @param out   Receives the cooperator (NULL on failure).
 * @return 0.
 * @retval -EINVAL  out NULL, s of another thread, slice_ns < 0, or only
 *                  one of schedule and cancel given.
 * @retval -ENOMEM  no memory (cooperator or its timer).
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_coop_new(weft_sched *s, const struct weft_coop_opts *opts,
                           weft_coop **out);

/**
 * Free @p c: stop it as weft_coop_stop() does (every task that has not
 * ended fails with WEFT_COOP_ESCHEDSTOPPED and its when-done callbacks
 * run), withdraw the pending tick and release the cooperator.  Task
 * handles stay valid until released (pause and stop on them return
 * WEFT_COOP_ESCHEDSTOPPED).  Called from inside the cooperator's own
 * work (a step, a predicate, a when-done callback the cooperator runs, a
 * scheduler function), it does all of this at once and releases the
 * memory when that work returns.  @p c must not be used afterwards.
 * Free the cooperator before its scheduler.  The global cooperator is
 * freed with weft_coop_global_free() (this works too).
 * @return 0.
 * @retval -EINVAL  c NULL, owned by another thread, or already freed
 *                  (inside its own work).
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_coop_free(weft_coop *c);

/**
 * Begin scheduling steps (Twisted's Cooperator.start): for a cooperator
 * made with not_started, or one stopped with weft_coop_stop(), which then
 * accepts tasks again.  Schedules a tick if tasks are runnable.  Starting
 * a running cooperator does nothing.
 * @return 0.
 * @retval -EINVAL      c NULL or owned by another thread.
 * @retval -ESHUTDOWN   c is being freed.
 * @retval <0           the scheduler function's error (the cooperator is
 *                      started; the tick is tried again by the next call
 *                      that schedules one).
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_coop_start(weft_coop *c);

/**
 * Stop scheduling steps (Twisted's Cooperator.stop): every task that has
 * not ended (runnable, paused or waiting) ends with
 * WEFT_COOP_ESCHEDSTOPPED, its when-done futures fail with it, the pending
 * tick is withdrawn, and new tasks are refused with -ESHUTDOWN until
 * weft_coop_start().  Every task is marked ended before the first
 * when-done callback runs.  Stopping a stopped cooperator does nothing.
 * @return 0.
 * @retval -EINVAL  c NULL or owned by another thread.
 * @context The owning thread, anywhere (a step included).
 */
WEFT_API int weft_coop_stop(weft_coop *c);

/**
 * Whether @p c is running (Twisted's Cooperator.running): started and not
 * stopped.
 * @return 1 or 0.
 * @retval -EINVAL  c NULL or owned by another thread.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_coop_running(const weft_coop *c);

/**
 * Run one tick (Twisted's Cooperator._tick), for scheduler functions:
 * call it when the call arranged by the schedule function comes due.  It
 * calls the predicate factory, then steps the runnable tasks round robin
 * from where the last tick stopped until the predicate says stop or none
 * is runnable, then schedules the next tick if tasks are still runnable.
 * With no tick pending (withdrawn, or never scheduled) it does nothing.
 * @return The number of steps run (0 when no tick was pending).
 * @retval -EINVAL  c NULL or owned by another thread.
 * @retval -EBUSY   called from inside a tick of c, or from inside its
 *                  schedule function.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_coop_tick(weft_coop *c);

/**
 * Add a task (Twisted's Cooperator.cooperate): @p step is called with
 * @p state once per round from the next tick on.  New tasks join the end
 * of the round-robin order.
 * @param out  Receives the task handle (NULL on failure); release it with
 *             weft_coop_task_release().
 * @return 0.
 * @retval -EINVAL     c, step or out NULL, or c owned by another thread.
 * @retval -ESHUTDOWN  c is stopped (WEFT_COOP_ESCHEDSTOPPED) or being
 *                     freed; nothing was added.
 * @retval -ENOMEM     no memory; nothing was added.
 * @retval <0          the scheduler function's error; nothing was added.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_coop_cooperate(weft_coop *c, weft_coop_step_fn step,
                                 void *state, weft_coop_task **out);

/**
 * Add a task and get only its completion future (Twisted's
 * Cooperator.coiterate): as weft_coop_cooperate() followed by
 * weft_coop_task_when_done() and weft_coop_task_release().
 * @param done  Receives a new future (one reference, the caller's): it
 *              resolves with @p state when the step returns DONE and fails
 *              with the failure, or with WEFT_COOP_ESCHEDSTOPPED.
 * @return 0.
 * @retval -EINVAL, -ESHUTDOWN, -ENOMEM, <0  as weft_coop_cooperate()
 *              (done NULL is -EINVAL).
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_coop_coiterate(weft_coop *c, weft_coop_step_fn step,
                                 void *state, weft_future **done);

/**
 * As weft_coop_coiterate(), deciding the caller's future @p done
 * (Twisted's doneDeferred argument) instead of a new one.  The cooperator
 * takes its own reference on it; if someone else decides it first, the
 * cooperator's decision is dropped.
 * @return 0.
 * @retval -EINVAL  as weft_coop_coiterate(), or done NULL or of another
 *                  thread.
 * @retval -ESHUTDOWN, -ENOMEM, <0  as weft_coop_cooperate().
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_coop_coiterate_into(weft_coop *c, weft_coop_step_fn step,
                                      void *state, weft_future *done);

/* ----------------------------------------------------------------------
 * Tasks (Twisted's CooperativeTask)
 * ---------------------------------------------------------------------- */

/**
 * Pause @p t: it gets no step until resumed.  Pauses are counted: n
 * pauses need n resumes.  A task that waits for a future can be paused
 * too; it then runs again only once resumed and the future resolved.
 * Pausing the last runnable task withdraws the pending tick.
 * @return 0.
 * @retval -EINVAL               t NULL or owned by another thread.
 * @retval WEFT_COOP_EDONE       the task finished (-ESRCH).
 * @retval WEFT_COOP_ESTOPPED    the task was stopped (-ECANCELED).
 * @retval WEFT_COOP_EFAILED     the task failed (-ENOTRECOVERABLE).
 * @retval WEFT_COOP_ESCHEDSTOPPED  the cooperator was stopped or freed
 *                               (-ESHUTDOWN).
 * @retval -EOVERFLOW            the pause count is saturated.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_coop_task_pause(weft_coop_task *t);

/**
 * Undo one pause of @p t.  When the count reaches zero (and the task
 * neither waits for a future nor has ended) the task joins the end of the
 * round-robin order and a tick is scheduled.  Resuming a task that ended
 * while paused only counts the pause down.
 * @return 0.
 * @retval -EINVAL                t NULL or owned by another thread.
 * @retval WEFT_COOP_ENOTPAUSED   t is not paused (-EALREADY).
 * @retval <0                     the scheduler function's error (the
 *                                resume took effect; the tick is tried
 *                                again by the next call that schedules
 *                                one).
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_coop_task_resume(weft_coop_task *t);

/**
 * Stop @p t (Twisted's CooperativeTask.stop): it gets no more steps, its
 * when-done futures fail with WEFT_COOP_ESTOPPED (-ECANCELED), and a
 * future it waited for is let go (it is not cancelled: others may wait
 * for it).  Works on paused and waiting tasks.  Stopping the last
 * runnable task withdraws the pending tick.
 * @return 0.
 * @retval -EINVAL  t NULL or owned by another thread.
 * @retval WEFT_COOP_EDONE, WEFT_COOP_ESTOPPED, WEFT_COOP_EFAILED,
 *         WEFT_COOP_ESCHEDSTOPPED  the task has already ended, as
 *                  weft_coop_task_pause().
 * @context The owning thread, anywhere (its own step included).
 */
WEFT_API int weft_coop_task_stop(weft_coop_task *t);

/**
 * A new future for the end of @p t (Twisted's whenDone: a new Deferred
 * per call).  It resolves with the state pointer when the step returns
 * DONE; it fails with the failure when the task fails, with
 * WEFT_COOP_ESTOPPED (-ECANCELED) when it is stopped, and with
 * WEFT_COOP_ESCHEDSTOPPED (-ESHUTDOWN) when its cooperator is stopped or
 * freed.  (A step may itself fail with -ECANCELED or -ESHUTDOWN;
 * weft_coop_task_state() tells the cases apart.)  For a task that has
 * already ended it is decided at once.  The when-done futures of a task
 * are decided in the order they were made, after the task has left the
 * cooperator.  Cancelling one affects neither the task nor the others.
 * @param out  Receives the future (one reference, the caller's).
 * @return 0.
 * @retval -EINVAL  t or out NULL, or t owned by another thread.
 * @retval -ENOMEM  no memory.
 * @context The owning thread, anywhere, while the task's scheduler exists.
 */
WEFT_API int weft_coop_task_when_done(weft_coop_task *t, weft_future **out);

/**
 * The state of @p t.
 * @return An enum weft_coop_task_state value.
 * @retval -EINVAL  t NULL or owned by another thread.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_coop_task_state(const weft_coop_task *t);

/**
 * Drop the task handle.  The task is not affected: it runs on until it
 * ends (stop it first to end it now), and its record is freed when it has
 * ended and the handle is released.  The handle must not be used
 * afterwards.
 * @return 0.
 * @retval -EINVAL  t NULL, owned by another thread, or already released.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_coop_task_release(weft_coop_task *t);

/* ----------------------------------------------------------------------
 * The global cooperator (Twisted's module-level cooperate/coiterate)
 * ---------------------------------------------------------------------- */

/**
 * The calling thread's global cooperator, created on first use with
 * default options on the thread's default scheduler (weft_sched_default()),
 * so its ticks run while that scheduler runs.  It is freed automatically at
 * exit() and at thread exit, before the default scheduler.  Before freeing
 * the default scheduler yourself, call weft_coop_global_free(); the next
 * call then creates a new one.
 * @return The cooperator, or NULL if it could not be created.
 * @context Any thread (each thread has its own).
 */
WEFT_API weft_coop *weft_coop_global(void);

/**
 * Free the calling thread's global cooperator, if it exists, as
 * weft_coop_free().
 * @return 0.
 * @context Any thread.
 */
WEFT_API int weft_coop_global_free(void);

/**
 * Add a task to the calling thread's global cooperator (Twisted's
 * task.cooperate): weft_coop_cooperate(weft_coop_global(), ...).
 * @param out  Receives the task handle (NULL on failure).
 * @return 0.
 * @retval -EINVAL     step or out NULL.
 * @retval -ENOMEM     no memory, also when the global cooperator cannot
 *                     be created.
 * @retval -ESHUTDOWN  the global cooperator is stopped.
 * @retval <0          the scheduling error, as weft_coop_cooperate().
 * @context Any thread (each thread has its own global cooperator).
 */
WEFT_API int weft_cooperate(weft_coop_step_fn step, void *state,
                            weft_coop_task **out);

/**
 * Add a task to the calling thread's global cooperator and get its
 * completion future (Twisted's task.coiterate):
 * weft_coop_coiterate(weft_coop_global(), ...).
 * @param done  Receives the future (one reference, the caller's; NULL on
 *              failure).
 * @return 0.
 * @retval -EINVAL     step or done NULL.
 * @retval -ENOMEM     no memory, also when the global cooperator cannot
 *                     be created.
 * @retval -ESHUTDOWN  the global cooperator is stopped.
 * @retval <0          the scheduling error, as weft_coop_cooperate().
 * @context Any thread (each thread has its own global cooperator).
 */
WEFT_API int weft_coiterate(weft_coop_step_fn step, void *state,
                            weft_future **done);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_COOP_H */
