/*
 * coop.c - the cooperator (Twisted's task.Cooperator): iterator tasks
 * stepped round robin in time-sliced ticks.
 *
 * Lists.  A task that has not ended is on exactly one list of its
 * cooperator: `runq` while runnable (no pause, no future awaited), in
 * round-robin order, or `parked` otherwise.  `cursor` is the runq node
 * whose task steps next; the head itself means the round is over and the
 * next step starts a new one at the front.  Removing the node under the
 * cursor moves the cursor on, so the order survives pauses, stops and
 * ends in the middle of a round, and is carried over from tick to tick.
 *
 * Ticks.  At most one tick is pending (`tick_pending`).  It is scheduled
 * when a task becomes runnable while the cooperator is started and no
 * tick is pending, and at the end of a tick that leaves tasks runnable;
 * it is withdrawn when the runq empties (Twisted's _removeTask).  While a
 * tick runs, nothing else schedules one: the end of the tick does.
 *
 * Ending a task has two phases: `finish` takes it off its list, lets go
 * of the future it waits for and records how it ended; `notify` then
 * decides its when-done futures, which runs callbacks (user code).
 * weft_coop_stop() finishes every task before notifying any, so the
 * callbacks see a consistent cooperator (Twisted's _completeWith does the
 * same for the same reason).
 *
 * Re-entrancy.  User code (steps, predicates, scheduler functions,
 * when-done callbacks) may call anything here.  Every entry point that
 * can run user code holds `busy`; weft_coop_free() during such a call
 * stops everything at once and leaves the memory to the outermost call
 * (leave()).  Tasks are reference counted: the handle, the cooperator
 * (while the task has not ended), and temporaries held across user code.
 *
 * Waiting for a future.  The task does not attach its callback to the
 * step's future directly: futures have no call to detach a callback, and
 * a task that is stopped while waiting must let go of the future without
 * leaving a callback behind that points to a freed task.  So it waits on
 * a private "first of" gather over that future (weft_future_any), which
 * holds its own reference to the input; releasing the gather while it is
 * pending frees it, drops its callback and detaches it from the input.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "wait.h"
#include "weft/coop.h"

#define DEFAULT_SLICE WEFT_MSEC(10)

enum where { W_NONE = 0, W_RUNQ, W_PARKED };

struct weft_coop_task {
    weft_coop *coop;          /* NULL once ended */
    weft_sched *sched;        /* for when-done futures */
    const void *owner;        /* the owning thread's token */
    weft_coop_step_fn step;
    void *state;
    struct weft__list link;   /* runq or parked (or a local end list) */
    uint32_t refs;            /* handle + cooperator + temporaries */
    uint32_t pauses;
    uint8_t where;            /* enum where */
    uint8_t waiting;          /* waits for a future (wait_g) */
    uint8_t released;         /* the handle was released */
    uint8_t end;              /* enum weft_coop_task_state once ended */
    int err;                  /* the failure, once FAILED */
    weft_future *wait_g;      /* private gather over the awaited future */
    weft_future **done;       /* when-done futures, our references */
    uint32_t ndone, capdone;
};

struct weft_coop {
    weft_sched *sched;
    const void *owner;
    struct weft__list runq;   /* runnable tasks, round-robin order */
    struct weft__list parked; /* paused or waiting tasks */
    struct weft__list *cursor; /* next in runq; &runq: round over */
    weft_coop_pred_factory factory;
    void *factory_arg;
    int64_t slice;
    int64_t slice_end;        /* default predicate: end of this tick */
    weft_coop_schedule_fn schedule;
    weft_coop_cancel_fn cancel;
    void *schedule_arg;
    weft_timer *timer;        /* the default scheduler's timer */
    uint32_t busy;            /* entry points running user code */
    uint8_t started;
    uint8_t stopped;
    uint8_t tick_pending;
    uint8_t in_tick;
    uint8_t in_schedule;
    uint8_t dying;            /* weft_coop_free() called */
    uint8_t sched_gone;       /* its scheduler was freed (global only) */
};

static int coop_mine(const weft_coop *c)
{
    return c && weft__obj_mine(c->owner);
}

static int task_mine(const weft_coop_task *t)
{
    return t && weft__obj_mine(t->owner);
}

static weft_coop_task *task_of(struct weft__list *n)
{
    return weft__container_of(n, weft_coop_task, link);
}

/* The error pause/stop return for a task that ended as `end`. */
static int end_error(int end)
{
    switch (end) {
    case WEFT_COOP_TASK_DONE:
        return WEFT_COOP_EDONE;
    case WEFT_COOP_TASK_STOPPED:
        return WEFT_COOP_ESTOPPED;
    case WEFT_COOP_TASK_FAILED:
        return WEFT_COOP_EFAILED;
    default:
        return WEFT_COOP_ESCHEDSTOPPED;
    }
}

static void task_unref(weft_coop_task *t)
{
    if (--t->refs == 0) {
        weft__free(t->done);
        weft__free(t);
    }
}

/* ----------------------------------------------------------------------
 * Lifetime of the cooperator
 * ---------------------------------------------------------------------- */

static void coop_release(weft_coop *c);

static void enter(weft_coop *c)
{
    c->busy++;
}

static void leave(weft_coop *c)
{
    if (--c->busy == 0 && c->dying)
        coop_release(c);
}

/* ----------------------------------------------------------------------
 * Ticks: scheduling and withdrawing
 * ---------------------------------------------------------------------- */

static void timer_cb(weft_timer *tm, void *arg);

static void cancel_tick(weft_coop *c)
{
    if (!c->tick_pending)
        return;
    c->tick_pending = 0;
    if (c->cancel)
        c->cancel(c, c->schedule_arg);
    else if (!c->sched_gone)
        (void)weft_timer_stop(c->timer);
}

/* Schedule a tick if one is needed and none is pending. */
static int schedule_tick(weft_coop *c)
{
    if (!c->started || c->stopped || c->dying || c->tick_pending ||
        c->in_tick || weft__list_empty(&c->runq))
        return 0;
    int r;
    c->tick_pending = 1;
    if (c->schedule) {
        c->in_schedule = 1;
        r = c->schedule(c, c->schedule_arg);
        c->in_schedule = 0;
    } else {
        r = weft_timer_start(c->timer, 0, 0);
    }
    if (r < 0) {
        c->tick_pending = 0;
        return r;
    }
    return 0;
}

/* ----------------------------------------------------------------------
 * Lists
 * ---------------------------------------------------------------------- */

/* Take t off whatever list of c it is on; withdraw the tick when the last
 * runnable task goes. */
static void unlink_task(weft_coop *c, weft_coop_task *t)
{
    if (t->where == W_RUNQ) {
        if (c->cursor == &t->link)
            c->cursor = t->link.next;
        weft__list_remove(&t->link);
        t->where = W_NONE;
        if (weft__list_empty(&c->runq)) {
            c->cursor = &c->runq;
            cancel_tick(c);
        }
    } else if (t->where == W_PARKED) {
        weft__list_remove(&t->link);
        t->where = W_NONE;
    }
}

static void park(weft_coop *c, weft_coop_task *t)
{
    if (t->where == W_PARKED)
        return;
    unlink_task(c, t);
    weft__list_push_back(&c->parked, &t->link);
    t->where = W_PARKED;
}

/* Make t runnable again, at the end of the round-robin order. */
static void unpark(weft_coop *c, weft_coop_task *t)
{
    if (t->where == W_RUNQ)
        return;
    unlink_task(c, t);
    weft__list_push_back(&c->runq, &t->link);
    t->where = W_RUNQ;
}

/* ----------------------------------------------------------------------
 * Ending tasks
 * ---------------------------------------------------------------------- */

/* Phase 1: t leaves the cooperator.  The cooperator's reference is kept
 * for notify(), which drops it. */
static void finish(weft_coop *c, weft_coop_task *t, int end, int err)
{
    unlink_task(c, t);
    if (t->wait_g) {
        weft_future *g = t->wait_g;
        t->wait_g = NULL;
        /* Pending: freed, callback dropped, input let go.  No user code
         * runs. */
        (void)weft_future_release(g);
    }
    t->waiting = 0;
    t->end = (uint8_t)end;
    t->err = err;
    t->coop = NULL;
}

/* Decide one when-done future of an ended task. */
static void decide(weft_future *f, const weft_coop_task *t)
{
    switch (t->end) {
    case WEFT_COOP_TASK_DONE:
        (void)weft_future_resolve(f, t->state);
        break;
    case WEFT_COOP_TASK_FAILED:
        (void)weft_future_fail(f, t->err);
        break;
    default:
        (void)weft_future_fail(f, end_error(t->end));
        break;
    }
}

/* Phase 2: decide the when-done futures (user callbacks run), then drop
 * the cooperator's reference. */
static void notify(weft_coop_task *t)
{
    weft_future **d = t->done;
    uint32_t n = t->ndone;
    t->done = NULL;
    t->ndone = t->capdone = 0;
    for (uint32_t i = 0; i < n; i++) {
        decide(d[i], t);
        (void)weft_future_release(d[i]);
    }
    weft__free(d);
    task_unref(t);
}

static void task_end(weft_coop *c, weft_coop_task *t, int end, int err)
{
    finish(c, t, end, err);
    notify(t);
}

/* End every task of `from` (and of `also`, if not NULL): all are finished
 * before the first is notified. */
static void end_all(weft_coop *c, struct weft__list *from,
                    struct weft__list *also, int end, int err)
{
    struct weft__list ended;
    weft__list_init(&ended);
    struct weft__list *lists[2] = {from, also};
    for (int i = 0; i < 2; i++) {
        if (!lists[i])
            continue;
        while (!weft__list_empty(lists[i])) {
            weft_coop_task *t = task_of(lists[i]->next);
            finish(c, t, end, err);
            weft__list_push_back(&ended, &t->link);
        }
    }
    struct weft__list *n;
    while ((n = weft__list_pop_front(&ended)) != NULL)
        notify(task_of(n));
}

/* Scheduling failed where nobody can be told: the runnable tasks fail
 * with the error rather than wait for a tick that will not come. */
static void fail_runnable(weft_coop *c, int err)
{
    end_all(c, &c->runq, NULL, WEFT_COOP_TASK_FAILED, err);
}

/* ----------------------------------------------------------------------
 * Waiting for a future
 * ---------------------------------------------------------------------- */

/* The gather over the awaited future was decided. */
static void wait_cb(weft_future *g, void *arg)
{
    weft_coop_task *t = arg;
    weft_coop *c = t->coop; /* not ended: finish() would have dropped us */
    int err = weft_future_error(g);
    t->wait_g = NULL;
    t->waiting = 0;
    (void)weft_future_release(g); /* valid until we return */
    enter(c);
    t->refs++;
    if (err < 0) {
        task_end(c, t, WEFT_COOP_TASK_FAILED, err);
    } else if (t->pauses == 0) {
        unpark(c, t);
        int r = schedule_tick(c);
        if (r < 0)
            fail_runnable(c, r);
    }
    task_unref(t);
    leave(c);
}

/* The step of t returned WEFT_COOP_WAIT with w. */
static void start_wait(weft_coop *c, weft_coop_task *t, weft_future *w)
{
    int st = w ? weft_future_state(w) : -EINVAL;
    if (st < 0) {
        task_end(c, t, WEFT_COOP_TASK_FAILED, -EINVAL);
        return;
    }
    if (st == WEFT_FUTURE_RESOLVED)
        return; /* nothing to wait for: the task continues */
    if (st == WEFT_FUTURE_FAILED) {
        task_end(c, t, WEFT_COOP_TASK_FAILED, weft_future_error(w));
        return;
    }
    weft_future *g;
    int r = weft_future_any(c->sched, &w, 1, &g);
    if (r < 0) {
        task_end(c, t, WEFT_COOP_TASK_FAILED, r);
        return;
    }
    r = weft_future_then(g, wait_cb, t); /* pending: not called now */
    if (r < 0) {
        (void)weft_future_release(g);
        task_end(c, t, WEFT_COOP_TASK_FAILED, r);
        return;
    }
    t->wait_g = g;
    t->waiting = 1;
    park(c, t);
}

/* ----------------------------------------------------------------------
 * The tick
 * ---------------------------------------------------------------------- */

static int slice_over(void *ctx)
{
    weft_coop *c = ctx;
    return weft_now(c->sched) >= c->slice_end;
}

static void one_step(weft_coop *c, weft_coop_task *t)
{
    weft_future *w = NULL;
    t->refs++;
    int r = t->step(t->state, &w);
    if (!t->end) {
        if (r == WEFT_COOP_CONTINUE)
            ; /* stays where it is in the order */
        else if (r == WEFT_COOP_DONE)
            task_end(c, t, WEFT_COOP_TASK_DONE, 0);
        else if (r == WEFT_COOP_WAIT)
            start_wait(c, t, w);
        else
            task_end(c, t, WEFT_COOP_TASK_FAILED, r < 0 ? r : -EINVAL);
    }
    task_unref(t);
}

/* The body of a tick; the caller holds busy. */
static int run_tick(weft_coop *c)
{
    c->tick_pending = 0;
    if (!c->schedule && !c->sched_gone)
        (void)weft_timer_stop(c->timer); /* when called directly */
    c->in_tick = 1;
    struct weft_coop_pred p = {NULL, NULL};
    if (c->factory) {
        c->factory(c, c->factory_arg, &p);
    } else {
        int64_t now = weft_now(c->sched);
        c->slice_end = now > INT64_MAX - c->slice ? INT64_MAX
                                                  : now + c->slice;
        p.fn = slice_over;
        p.ctx = c;
    }
    int steps = 0;
    while (!weft__list_empty(&c->runq)) {
        if (c->cursor == &c->runq)
            c->cursor = c->runq.next; /* a new round */
        weft_coop_task *t = task_of(c->cursor);
        c->cursor = c->cursor->next;
        one_step(c, t);
        if (steps < INT32_MAX)
            steps++;
        if (!p.fn || p.fn(p.ctx))
            break;
    }
    c->in_tick = 0;
    int r = schedule_tick(c);
    if (r < 0)
        fail_runnable(c, r);
    return steps;
}

int weft_coop_tick(weft_coop *c)
{
    if (!coop_mine(c))
        return -EINVAL;
    if (c->in_tick || c->in_schedule)
        return -EBUSY;
    if (!c->tick_pending)
        return 0;
    enter(c);
    int r = run_tick(c);
    leave(c);
    return r;
}

static void timer_cb(weft_timer *tm, void *arg)
{
    weft_coop *c = arg;
    (void)tm;
    if (!c->tick_pending || c->in_tick)
        return;
    enter(c);
    (void)run_tick(c);
    leave(c);
}

/* ----------------------------------------------------------------------
 * Cooperators
 * ---------------------------------------------------------------------- */

int weft_coop_new(weft_sched *s, const struct weft_coop_opts *opts,
                  weft_coop **out)
{
    struct weft_coop_opts o;
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (opts)
        o = *opts;
    else
        memset(&o, 0, sizeof o);
    s = weft__sched_arg(s);
    if (!s || o.slice_ns < 0 || !o.schedule != !o.cancel)
        return -EINVAL;
    weft_coop *c = weft__calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->sched = s;
    c->owner = s->owner;
    weft__list_init(&c->runq);
    weft__list_init(&c->parked);
    c->cursor = &c->runq;
    c->factory = o.predicate_factory;
    c->factory_arg = o.predicate_arg;
    c->slice = o.slice_ns ? o.slice_ns : DEFAULT_SLICE;
    c->schedule = o.schedule;
    c->cancel = o.cancel;
    c->schedule_arg = o.schedule_arg;
    c->started = !o.not_started;
    if (!c->schedule) {
        int r = weft_timer_new(s, timer_cb, c, &c->timer);
        if (r < 0) {
            weft__free(c);
            return r;
        }
    }
    *out = c;
    return 0;
}

/* Release the memory (every task has ended). */
static void coop_release(weft_coop *c)
{
    cancel_tick(c);
    if (c->timer && !c->sched_gone)
        (void)weft_timer_free(c->timer);
    weft__free(c);
}

static void global_forget(const weft_coop *c);

int weft_coop_free(weft_coop *c)
{
    if (!coop_mine(c) || c->dying)
        return -EINVAL;
    global_forget(c);
    enter(c);
    c->dying = 1;
    c->stopped = 1;
    cancel_tick(c);
    end_all(c, &c->runq, &c->parked, WEFT_COOP_TASK_SCHEDSTOPPED, 0);
    leave(c); /* releases it, unless called from inside its own work */
    return 0;
}

int weft_coop_start(weft_coop *c)
{
    if (!coop_mine(c))
        return -EINVAL;
    if (c->dying)
        return -ESHUTDOWN;
    enter(c);
    c->started = 1;
    c->stopped = 0;
    int r = schedule_tick(c);
    leave(c);
    return r;
}

int weft_coop_stop(weft_coop *c)
{
    if (!coop_mine(c))
        return -EINVAL;
    enter(c);
    c->stopped = 1;
    cancel_tick(c);
    end_all(c, &c->runq, &c->parked, WEFT_COOP_TASK_SCHEDSTOPPED, 0);
    leave(c);
    return 0;
}

int weft_coop_running(const weft_coop *c)
{
    if (!coop_mine(c))
        return -EINVAL;
    return c->started && !c->stopped;
}

/* ----------------------------------------------------------------------
 * Adding tasks
 * ---------------------------------------------------------------------- */

/* Append a when-done future (taking a reference) to a live task. */
static int done_push(weft_coop_task *t, weft_future *f)
{
    if (t->ndone == t->capdone) {
        uint32_t cap = t->capdone ? t->capdone * 2 : 1;
        if (cap <= t->capdone)
            return -ENOMEM;
        weft_future **v = weft__realloc(t->done, cap * sizeof(weft_future *));
        if (!v)
            return -ENOMEM;
        t->done = v;
        t->capdone = cap;
    }
    int r = weft_future_retain(f);
    if (r < 0)
        return r;
    t->done[t->ndone++] = f;
    return 0;
}

/*
 * Create a task on c and queue it.  `done` (if not NULL) becomes its
 * first when-done future.  `handle` says whether the caller keeps a
 * handle (then *out receives it).
 */
static int add_task(weft_coop *c, weft_coop_step_fn step, void *state,
                    weft_future *done, int handle, weft_coop_task **out)
{
    if (!coop_mine(c) || !step)
        return -EINVAL;
    if (c->stopped || c->dying)
        return WEFT_COOP_ESCHEDSTOPPED;
    weft_coop_task *t = weft__calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->coop = c;
    t->sched = c->sched;
    t->owner = c->owner;
    t->step = step;
    t->state = state;
    t->refs = 1u + (handle ? 1u : 0u);
    t->released = (uint8_t)!handle;
    weft__list_init(&t->link);
    if (done) {
        int r = done_push(t, done);
        if (r < 0) {
            weft__free(t->done);
            weft__free(t);
            return r;
        }
    }
    enter(c);
    weft__list_push_back(&c->runq, &t->link);
    t->where = W_RUNQ;
    t->refs++; /* the schedule function may end the task */
    int r = schedule_tick(c);
    if (r < 0 && !t->end) {
        /* Undo: the task never existed (its when-done future is freed
         * undecided unless others hold it). */
        unlink_task(c, t);
        for (uint32_t i = 0; i < t->ndone; i++)
            (void)weft_future_release(t->done[i]);
        weft__free(t->done);
        weft__free(t);
        leave(c);
        return r;
    }
    if (r < 0 && handle)
        task_unref(t); /* ended by the schedule function: no handle */
    else if (out)
        *out = t;
    task_unref(t);
    leave(c);
    return r;
}

int weft_coop_cooperate(weft_coop *c, weft_coop_step_fn step, void *state,
                        weft_coop_task **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    return add_task(c, step, state, NULL, 1, out);
}

int weft_coop_coiterate(weft_coop *c, weft_coop_step_fn step, void *state,
                        weft_future **done)
{
    if (!done)
        return -EINVAL;
    *done = NULL;
    if (!coop_mine(c) || !step)
        return -EINVAL;
    if (c->stopped || c->dying)
        return WEFT_COOP_ESCHEDSTOPPED;
    weft_future *f;
    int r = weft_future_new(c->sched, &f);
    if (r < 0)
        return r;
    r = add_task(c, step, state, f, 0, NULL);
    if (r < 0) {
        (void)weft_future_release(f);
        return r;
    }
    *done = f;
    return 0;
}

int weft_coop_coiterate_into(weft_coop *c, weft_coop_step_fn step,
                             void *state, weft_future *done)
{
    if (!done || weft_future_state(done) < 0)
        return -EINVAL;
    return add_task(c, step, state, done, 0, NULL);
}

/* ----------------------------------------------------------------------
 * Tasks
 * ---------------------------------------------------------------------- */

int weft_coop_task_pause(weft_coop_task *t)
{
    if (!task_mine(t))
        return -EINVAL;
    if (t->end)
        return end_error(t->end);
    if (t->pauses == UINT32_MAX)
        return -EOVERFLOW;
    if (t->pauses++ == 0) {
        weft_coop *c = t->coop;
        enter(c); /* withdrawing the tick runs the cancel function */
        park(c, t);
        leave(c);
    }
    return 0;
}

int weft_coop_task_resume(weft_coop_task *t)
{
    if (!task_mine(t))
        return -EINVAL;
    if (t->pauses == 0)
        return WEFT_COOP_ENOTPAUSED;
    if (--t->pauses || t->end || t->waiting)
        return 0;
    weft_coop *c = t->coop;
    enter(c);
    unpark(c, t);
    int r = schedule_tick(c);
    leave(c);
    return r;
}

int weft_coop_task_stop(weft_coop_task *t)
{
    if (!task_mine(t))
        return -EINVAL;
    if (t->end)
        return end_error(t->end);
    weft_coop *c = t->coop;
    enter(c);
    task_end(c, t, WEFT_COOP_TASK_STOPPED, 0);
    leave(c);
    return 0;
}

int weft_coop_task_when_done(weft_coop_task *t, weft_future **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!task_mine(t))
        return -EINVAL;
    weft_future *f;
    int r = weft_future_new(t->sched, &f);
    if (r < 0)
        return r;
    if (t->end) {
        decide(f, t); /* a new future: no callback runs */
    } else {
        r = done_push(t, f);
        if (r < 0) {
            (void)weft_future_release(f);
            return r;
        }
    }
    *out = f;
    return 0;
}

int weft_coop_task_state(const weft_coop_task *t)
{
    if (!task_mine(t))
        return -EINVAL;
    if (t->end)
        return t->end;
    if (t->pauses)
        return WEFT_COOP_TASK_PAUSED;
    if (t->waiting)
        return WEFT_COOP_TASK_WAITING;
    return WEFT_COOP_TASK_RUNNABLE;
}

int weft_coop_task_release(weft_coop_task *t)
{
    if (!task_mine(t) || t->released)
        return -EINVAL;
    t->released = 1;
    task_unref(t);
    return 0;
}

/* ----------------------------------------------------------------------
 * The global cooperator
 *
 * One per thread, on the thread's default scheduler.  It is freed at
 * exit() (an atexit handler registered after the default scheduler's, so
 * it runs first) and at thread exit (a key destructor).  The scheduler's
 * own key destructor may run first there: the default scheduler is then
 * gone (weft__tls.dflt no longer points to it), and the cooperator is
 * freed without touching it (its timer went with the scheduler).
 * ---------------------------------------------------------------------- */

static _Thread_local weft_coop *global_coop;
static pthread_key_t global_key;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_key_ok;

static void global_free_now(void)
{
    weft_coop *c = global_coop;
    if (c && !c->busy)
        (void)weft_coop_free(c);
}

static void global_key_destroy(void *p)
{
    (void)p;
    global_free_now();
}

static void global_init(void)
{
    global_key_ok = pthread_key_create(&global_key, global_key_destroy) == 0;
    (void)atexit(global_free_now); /* on failure: freed by nobody at exit */
}

/* The global cooperator if its scheduler is still the default one. */
static weft_coop *global_coop_get(void)
{
    weft_coop *c = global_coop;
    if (c && weft__tls.dflt != c->sched) {
        /* The default scheduler was freed under it. */
        c->sched_gone = 1;
        if (!c->busy)
            (void)weft_coop_free(c);
        return NULL;
    }
    return c;
}

/* c is being freed: if it is the global cooperator, forget it. */
static void global_forget(const weft_coop *c)
{
    if (c != global_coop)
        return;
    if (weft__tls.dflt != c->sched)
        global_coop->sched_gone = 1;
    global_coop = NULL;
    if (global_key_ok)
        (void)pthread_setspecific(global_key, NULL);
}

weft_coop *weft_coop_global(void)
{
    weft_coop *c = global_coop_get();
    if (c)
        return c;
    weft_sched *s = weft_sched_default();
    if (!s)
        return NULL;
    if (weft_coop_new(s, NULL, &c) < 0)
        return NULL;
    pthread_once(&global_once, global_init);
    global_coop = c;
    if (global_key_ok)
        (void)pthread_setspecific(global_key, c);
    return c;
}

int weft_coop_global_free(void)
{
    weft_coop *c = global_coop;
    if (c && !c->dying)
        (void)weft_coop_free(c);
    return 0;
}

int weft_cooperate(weft_coop_step_fn step, void *state, weft_coop_task **out)
{
    if (!out || !step) {
        if (out)
            *out = NULL;
        return -EINVAL;
    }
    weft_coop *c = weft_coop_global();
    if (!c) {
        *out = NULL;
        return -ENOMEM;
    }
    return weft_coop_cooperate(c, step, state, out);
}

int weft_coiterate(weft_coop_step_fn step, void *state, weft_future **done)
{
    if (!done || !step) {
        if (done)
            *done = NULL;
        return -EINVAL;
    }
    weft_coop *c = weft_coop_global();
    if (!c) {
        *done = NULL;
        return -ENOMEM;
    }
    return weft_coop_coiterate(c, step, state, done);
}
