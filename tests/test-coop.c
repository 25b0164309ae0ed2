/*
 * test-coop.c - the cooperator (Twisted's task.Cooperator): steps and
 * their results, waiting for futures, pause/resume/stop/when-done and the
 * errors that say how a task ended, round robin with the order carried
 * over between ticks, termination predicates (pluggable, and the default
 * 10 ms slice on a manual clock), scheduler functions (pluggable, and the
 * default timer), start/stop/running, removing the last task withdrawing
 * the tick, the global cooperator, lifetime (freeing with tasks, from
 * inside), re-entrancy, allocation failure, and the seed's three use
 * cases: a CPU-heavy loop that does not starve I/O coroutines, k jobs at
 * a time over a larger set, and a sequence of asynchronous steps.
 *
 * Most tests drive ticks by hand through a scheduler function that only
 * records the call ("the test is the reactor"), with a manual clock, so
 * every rule is checked exactly and nothing sleeps.  Leaks are checked
 * with the allocation counter of src/alloc.c.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "test.h"

void weft__test_fail_alloc(long n, int sticky);
long weft__test_live_allocs(void);

/* ----------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */

static char trace[4096];
static size_t ntrace;

static void trace_add(char c)
{
    ASSERT_LT(ntrace, sizeof trace - 1);
    trace[ntrace++] = c;
    trace[ntrace] = 0;
}

static void trace_reset(void)
{
    ntrace = 0;
    trace[0] = 0;
}

static weft_sched *new_manual(void)
{
    struct weft_sched_opts o;
    weft_sched *s = NULL;
    memset(&o, 0, sizeof o);
    o.clock = WEFT_CLOCK_MANUAL;
    ASSERT_OK(weft_sched_new(&o, &s));
    trace_reset(); /* each case starts a new trace */
    return s;
}

/* A callback that appends its argument (a char) to the trace. */
static void cb_trace(weft_future *f, void *arg)
{
    ASSERT_NE(weft_future_state(f), WEFT_FUTURE_PENDING);
    trace_add((char)(intptr_t)arg);
}

/* The outcome of a decided future: 0 (resolved) or its error. */
static int outcome(weft_future *f, void **value)
{
    int r = weft_future_result(f, value);
    ASSERT_NE(r, -EAGAIN);
    return r;
}

/* Make the scheduler's timer heap allocate its array now, so that leak
 * checks by allocation count are not confused by it later. */
static void never_fires(weft_timer *t, void *arg)
{
    (void)t;
    (void)arg;
    FAIL("the warm-up timer fired");
}

static void warm_heap(weft_sched *s)
{
    weft_timer *t;
    ASSERT_OK(weft_timer_new(s, never_fires, NULL, &t));
    ASSERT_OK(weft_timer_start(t, WEFT_SEC(1), 0));
    ASSERT_OK(weft_timer_free(t));
}

/* A scheduler function that only records the call: the test plays the
 * reactor and fires it with ms_fire(). */
struct msched {
    weft_coop *c;
    int scheduled; /* schedule calls that succeeded */
    int cancelled; /* cancel calls */
    int pending;   /* a call is arranged */
    int fail;      /* < 0: schedule fails with it */
    int tick_in_schedule; /* result of weft_coop_tick() from inside */
    int try_tick;  /* call weft_coop_tick() from inside schedule */
};

static int ms_schedule(weft_coop *c, void *arg)
{
    struct msched *m = arg;
    ASSERT_PTR_EQ(c, m->c);
    ASSERT(!m->pending);
    if (m->try_tick)
        m->tick_in_schedule = weft_coop_tick(c);
    if (m->fail < 0)
        return m->fail;
    m->scheduled++;
    m->pending = 1;
    return 0;
}

static void ms_cancel(weft_coop *c, void *arg)
{
    struct msched *m = arg;
    ASSERT_PTR_EQ(c, m->c);
    ASSERT(m->pending);
    m->cancelled++;
    m->pending = 0;
}

/* Fire the arranged call: the number of steps of the tick, -1 if none. */
static int ms_fire(struct msched *m)
{
    if (!m->pending)
        return -1;
    m->pending = 0;
    int r = weft_coop_tick(m->c);
    ASSERT_GE(r, 0);
    return r;
}

/* A predicate factory whose predicates end the tick after k steps. */
struct kpred {
    int k;
    int n;
    int factory_calls;
    int pred_calls;
};

static int kpred_fn(void *ctx)
{
    struct kpred *p = ctx;
    p->pred_calls++;
    return ++p->n >= p->k;
}

static void kpred_factory(weft_coop *c, void *arg, struct weft_coop_pred *out)
{
    struct kpred *p = arg;
    (void)c;
    ASSERT(out->fn == NULL);
    ASSERT_NULL(out->ctx);
    p->factory_calls++;
    p->n = 0;
    out->fn = kpred_fn;
    out->ctx = p;
}

/* A cooperator on s driven by m; kp (optional) is its predicate. */
static weft_coop *new_coop(weft_sched *s, struct msched *m, struct kpred *kp,
                           int not_started)
{
    struct weft_coop_opts o;
    weft_coop *c = NULL;
    memset(&o, 0, sizeof o);
    if (m) {
        memset(m, 0, sizeof *m);
        o.schedule = ms_schedule;
        o.cancel = ms_cancel;
        o.schedule_arg = m;
    }
    if (kp) {
        o.predicate_factory = kpred_factory;
        o.predicate_arg = kp;
    }
    o.not_started = not_started;
    ASSERT_OK(weft_coop_new(s, &o, &c));
    ASSERT_NOT_NULL(c);
    if (m)
        m->c = c;
    return c;
}

/* A programmable task. */
#define HOOK_PASS (-100000)
struct tstate {
    char name;       /* traced at each step (0: not traced) */
    int steps;       /* steps taken */
    int limit;       /* DONE at this step (0: never) */
    int fail_at;     /* return fail_err at this step (0: never) */
    int fail_err;
    int64_t advance; /* advance the manual clock by this much per step */
    weft_sched *s;
    /* Called at each step after the above; its result is returned
     * unless it is HOOK_PASS. */
    int (*hook)(struct tstate *ts, weft_future **wait);
    void *user;
    weft_coop_task *task;
    weft_coop *coop;
    int r1, r2;      /* results saved by hooks */
};

static int tstep(void *state, weft_future **wait)
{
    struct tstate *ts = state;
    ASSERT_NOT_NULL(wait);
    ASSERT_NULL(*wait);
    ts->steps++;
    if (ts->name)
        trace_add(ts->name);
    if (ts->advance)
        ASSERT_OK(weft_clock_advance(ts->s, ts->advance));
    if (ts->hook) {
        int r = ts->hook(ts, wait);
        if (r != HOOK_PASS)
            return r;
    }
    if (ts->fail_at && ts->steps == ts->fail_at)
        return ts->fail_err;
    if (ts->limit && ts->steps >= ts->limit)
        return WEFT_COOP_DONE;
    return WEFT_COOP_CONTINUE;
}

static void ts_init(struct tstate *ts, char name, int limit)
{
    memset(ts, 0, sizeof *ts);
    ts->name = name;
    ts->limit = limit;
}

/* ----------------------------------------------------------------------
 * Creation, arguments
 * ---------------------------------------------------------------------- */

TEST(new_free_defaults)
{
    weft_sched *s = new_manual();
    long live = weft__test_live_allocs();
    weft_coop *c = NULL;
    ASSERT_OK(weft_coop_new(s, NULL, &c));
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(weft_coop_running(c), 1);
    ASSERT_EQ(weft_coop_tick(c), 0); /* nothing pending */
    ASSERT_OK(weft_coop_free(c));
    ASSERT_EQ(weft__test_live_allocs(), live);
    ASSERT_OK(weft_sched_free(s));
}

TEST(new_rejects_bad_options)
{
    weft_sched *s = new_manual();
    struct weft_coop_opts o;
    weft_coop *c = (weft_coop *)&o;
    ASSERT_ERR(weft_coop_new(s, NULL, NULL), -EINVAL);
    memset(&o, 0, sizeof o);
    o.slice_ns = -1;
    ASSERT_ERR(weft_coop_new(s, &o, &c), -EINVAL);
    ASSERT_NULL(c);
    memset(&o, 0, sizeof o);
    o.schedule = ms_schedule;
    ASSERT_ERR(weft_coop_new(s, &o, &c), -EINVAL);
    memset(&o, 0, sizeof o);
    o.cancel = ms_cancel;
    ASSERT_ERR(weft_coop_new(s, &o, &c), -EINVAL);
    ASSERT_OK(weft_sched_free(s));
}

TEST(new_with_null_sched_uses_current)
{
    weft_coop *c = NULL;
    ASSERT_OK(weft_coop_new(NULL, NULL, &c));
    weft_future *f = NULL;
    struct tstate ts;
    ts_init(&ts, 0, 2);
    ASSERT_OK(weft_coop_coiterate(c, tstep, &ts, &f));
    ASSERT_EQ(weft_run(NULL), 0); /* the default scheduler's timer */
    ASSERT_EQ(ts.steps, 2);
    ASSERT_EQ(outcome(f, NULL), 0);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(weft_sched_default()));
}

TEST(null_arguments_einval)
{
    weft_sched *s = new_manual();
    weft_coop *c = new_coop(s, NULL, NULL, 0);
    weft_coop_task *t = (weft_coop_task *)&c;
    weft_future *f = (weft_future *)&c;
    struct tstate ts;
    ts_init(&ts, 0, 1);

    ASSERT_ERR(weft_coop_free(NULL), -EINVAL);
    ASSERT_ERR(weft_coop_start(NULL), -EINVAL);
    ASSERT_ERR(weft_coop_stop(NULL), -EINVAL);
    ASSERT_ERR(weft_coop_running(NULL), -EINVAL);
    ASSERT_ERR(weft_coop_tick(NULL), -EINVAL);

    ASSERT_ERR(weft_coop_cooperate(NULL, tstep, &ts, &t), -EINVAL);
    ASSERT_NULL(t);
    t = (weft_coop_task *)&c;
    ASSERT_ERR(weft_coop_cooperate(c, NULL, &ts, &t), -EINVAL);
    ASSERT_NULL(t);
    ASSERT_ERR(weft_coop_cooperate(c, tstep, &ts, NULL), -EINVAL);

    ASSERT_ERR(weft_coop_coiterate(NULL, tstep, &ts, &f), -EINVAL);
    ASSERT_NULL(f);
    f = (weft_future *)&c;
    ASSERT_ERR(weft_coop_coiterate(c, NULL, &ts, &f), -EINVAL);
    ASSERT_NULL(f);
    ASSERT_ERR(weft_coop_coiterate(c, tstep, &ts, NULL), -EINVAL);

    ASSERT_OK(weft_future_new(s, &f));
    ASSERT_ERR(weft_coop_coiterate_into(c, tstep, &ts, NULL), -EINVAL);
    ASSERT_ERR(weft_coop_coiterate_into(NULL, tstep, &ts, f), -EINVAL);
    ASSERT_ERR(weft_coop_coiterate_into(c, NULL, &ts, f), -EINVAL);
    ASSERT_OK(weft_future_release(f));

    ASSERT_ERR(weft_coop_task_pause(NULL), -EINVAL);
    ASSERT_ERR(weft_coop_task_resume(NULL), -EINVAL);
    ASSERT_ERR(weft_coop_task_stop(NULL), -EINVAL);
    ASSERT_ERR(weft_coop_task_state(NULL), -EINVAL);
    ASSERT_ERR(weft_coop_task_release(NULL), -EINVAL);
    f = (weft_future *)&c;
    ASSERT_ERR(weft_coop_task_when_done(NULL, &f), -EINVAL);
    ASSERT_NULL(f);

    ASSERT_OK(weft_coop_cooperate(c, tstep, &ts, &t));
    ASSERT_ERR(weft_coop_task_when_done(t, NULL), -EINVAL);
    ASSERT_OK(weft_coop_task_release(t));

    f = (weft_future *)&c;
    ASSERT_ERR(weft_cooperate(NULL, &ts, &t), -EINVAL);
    ASSERT_NULL(t);
    ASSERT_ERR(weft_cooperate(tstep, &ts, NULL), -EINVAL);
    ASSERT_ERR(weft_coiterate(NULL, &ts, &f), -EINVAL);
    ASSERT_NULL(f);
    ASSERT_ERR(weft_coiterate(tstep, &ts, NULL), -EINVAL);

    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

struct other_thread {
    weft_coop *c;
    weft_coop_task *t;
    int r[12];
};

static void *other_thread_main(void *arg)
{
    struct other_thread *o = arg;
    weft_future *f = NULL;
    struct tstate ts;
    ts_init(&ts, 0, 1);
    o->r[0] = weft_coop_free(o->c);
    o->r[1] = weft_coop_start(o->c);
    o->r[2] = weft_coop_stop(o->c);
    o->r[3] = weft_coop_running(o->c);
    o->r[4] = weft_coop_tick(o->c);
    o->r[5] = weft_coop_cooperate(o->c, tstep, &ts, &o->t);
    o->r[6] = weft_coop_coiterate(o->c, tstep, &ts, &f);
    o->r[7] = weft_coop_task_pause(o->t);
    o->r[8] = weft_coop_task_stop(o->t);
    o->r[9] = weft_coop_task_when_done(o->t, &f);
    o->r[10] = weft_coop_task_state(o->t);
    o->r[11] = weft_coop_task_release(o->t);
    return NULL;
}

TEST(other_thread_einval)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate ts;
    ts_init(&ts, 0, 0);
    weft_coop_task *t;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &ts, &t));
    ASSERT_OK(weft_coop_task_pause(t));
    struct other_thread o;
    memset(&o, 0, sizeof o);
    o.c = c;
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, other_thread_main, &o));
    /* o.t is overwritten (with NULL) by the failing cooperate; use t. */
    ASSERT_OK(pthread_join(th, NULL));
    for (int i = 0; i < 7; i++)
        ASSERT_ERR(o.r[i], -EINVAL);
    ASSERT_OK(weft_coop_task_resume(t)); /* still ours, still paused */
    ASSERT_EQ(weft_coop_running(c), 1);
    ASSERT_OK(weft_coop_task_release(t));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

static void *other_thread_task(void *arg)
{
    struct other_thread *o = arg;
    weft_future *f = NULL;
    o->r[0] = weft_coop_task_pause(o->t);
    o->r[1] = weft_coop_task_resume(o->t);
    o->r[2] = weft_coop_task_stop(o->t);
    o->r[3] = weft_coop_task_when_done(o->t, &f);
    o->r[4] = weft_coop_task_state(o->t);
    o->r[5] = weft_coop_task_release(o->t);
    return NULL;
}

TEST(task_from_other_thread_einval)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate ts;
    ts_init(&ts, 0, 0);
    struct other_thread o;
    memset(&o, 0, sizeof o);
    ASSERT_OK(weft_coop_cooperate(c, tstep, &ts, &o.t));
    ASSERT_OK(weft_coop_task_pause(o.t));
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, other_thread_task, &o));
    ASSERT_OK(pthread_join(th, NULL));
    for (int i = 0; i < 6; i++)
        ASSERT_ERR(o.r[i], -EINVAL);
    ASSERT_EQ(weft_coop_task_state(o.t), WEFT_COOP_TASK_PAUSED);
    ASSERT_OK(weft_coop_task_release(o.t));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Step results
 * ---------------------------------------------------------------------- */

TEST(step_done_resolves_when_done_with_state)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate ts;
    ts_init(&ts, 0, 3);
    weft_coop_task *t;
    weft_future *f;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &ts, &t));
    ASSERT_OK(weft_coop_task_when_done(t, &f));
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_RUNNABLE);
    ASSERT_EQ(ts.steps, 0); /* nothing runs before the tick */
    ASSERT_EQ(ms_fire(&m), 3); /* the default slice: no time passes */
    ASSERT_EQ(ts.steps, 3);
    void *v = NULL;
    ASSERT_EQ(outcome(f, &v), 0);
    ASSERT_PTR_EQ(v, &ts); /* Twisted: whenDone fires with the iterator */
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_DONE);
    ASSERT_EQ(m.pending, 0); /* nothing left: no next tick */
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_task_release(t));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(step_failure_fails_task)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate ts;
    ts_init(&ts, 0, 0);
    ts.fail_at = 2;
    ts.fail_err = -EPROTO;
    weft_coop_task *t;
    weft_future *f;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &ts, &t));
    ASSERT_OK(weft_coop_task_when_done(t, &f));
    ASSERT_EQ(ms_fire(&m), 2);
    ASSERT_EQ(ts.steps, 2); /* never called again */
    ASSERT_ERR(outcome(f, NULL), -EPROTO);
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_FAILED);
    ASSERT_EQ(ms_fire(&m), -1);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_task_release(t));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

static int hook_bad_return(struct tstate *ts, weft_future **wait)
{
    (void)wait;
    return ts->r1;
}

TEST(step_bad_result_fails_with_einval)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate a, b;
    ts_init(&a, 0, 0);
    a.hook = hook_bad_return;
    a.r1 = 7; /* not a step result */
    ts_init(&b, 0, 0);
    b.hook = hook_bad_return;
    b.r1 = WEFT_COOP_WAIT; /* with no future */
    weft_future *fa, *fb;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &fa));
    ASSERT_OK(weft_coop_coiterate(c, tstep, &b, &fb));
    ASSERT_EQ(ms_fire(&m), 2);
    ASSERT_ERR(outcome(fa, NULL), -EINVAL);
    ASSERT_ERR(outcome(fb, NULL), -EINVAL);
    ASSERT_OK(weft_future_release(fa));
    ASSERT_OK(weft_future_release(fb));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Waiting for futures
 * ---------------------------------------------------------------------- */

/* At step r1, wait for the future in ts->user. */
static int hook_wait_user(struct tstate *ts, weft_future **wait)
{
    if (ts->steps == ts->r1) {
        *wait = ts->user;
        return WEFT_COOP_WAIT;
    }
    return HOOK_PASS;
}

TEST(wait_future_pauses_until_resolved)
{
    weft_sched *s = new_manual();
    struct msched m;
    struct kpred kp = {1, 0, 0, 0}; /* one step per tick */
    weft_coop *c = new_coop(s, &m, &kp, 0);
    weft_future *w;
    ASSERT_OK(weft_future_new(s, &w));
    struct tstate a, b;
    ts_init(&a, 'a', 3);
    a.hook = hook_wait_user;
    a.user = w;
    a.r1 = 1;
    ts_init(&b, 'b', 4);
    weft_coop_task *t;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &t));
    weft_future *fb;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &b, &fb));
    ASSERT_EQ(ms_fire(&m), 1);
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_WAITING);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(ms_fire(&m), 1);
    ASSERT_STR_EQ(trace, "abbb"); /* a got no step while waiting */
    ASSERT_EQ(m.pending, 1);
    ASSERT_EQ(ms_fire(&m), 1);     /* b's last step */
    ASSERT_EQ(m.pending, 0);       /* a waits: no tick */
    ASSERT_OK(weft_future_resolve(w, NULL));
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_RUNNABLE);
    ASSERT_EQ(m.pending, 1);       /* resolving scheduled a tick */
    ASSERT_EQ(ms_fire(&m), 1);
    ASSERT_EQ(ms_fire(&m), 1);
    ASSERT_STR_EQ(trace, "abbbbaa");
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_DONE);
    ASSERT_OK(weft_future_release(w));
    ASSERT_OK(weft_future_release(fb));
    ASSERT_OK(weft_coop_task_release(t));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(wait_future_failure_fails_task)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    weft_future *w;
    ASSERT_OK(weft_future_new(s, &w));
    struct tstate a;
    ts_init(&a, 'a', 0);
    a.hook = hook_wait_user;
    a.user = w;
    a.r1 = 2;
    weft_coop_task *t;
    weft_future *f;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &t));
    ASSERT_OK(weft_coop_task_when_done(t, &f));
    ASSERT_EQ(ms_fire(&m), 2);
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_PENDING);
    ASSERT_OK(weft_future_fail(w, -EIO));
    ASSERT_ERR(outcome(f, NULL), -EIO);
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_FAILED);
    ASSERT_ERR(weft_coop_task_pause(t), WEFT_COOP_EFAILED);
    ASSERT_EQ(a.steps, 2);
    ASSERT_EQ(m.pending, 0);
    ASSERT_OK(weft_future_release(w));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_task_release(t));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(wait_future_cancelled_fails_task_not_stopped)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    weft_future *w;
    ASSERT_OK(weft_future_new(s, &w));
    struct tstate a;
    ts_init(&a, 0, 0);
    a.hook = hook_wait_user;
    a.user = w;
    a.r1 = 1;
    weft_coop_task *t;
    weft_future *f;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &t));
    ASSERT_OK(weft_coop_task_when_done(t, &f));
    ASSERT_EQ(ms_fire(&m), 1);
    ASSERT_OK(weft_future_cancel(w));
    ASSERT_ERR(outcome(f, NULL), -ECANCELED);
    /* Same error as a stop, but the state tells them apart. */
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_FAILED);
    ASSERT_OK(weft_future_release(w));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_task_release(t));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(wait_future_already_decided)
{
    weft_sched *s = new_manual();
    struct msched m;
    struct kpred kp = {100, 0, 0, 0};
    weft_coop *c = new_coop(s, &m, &kp, 0);
    weft_future *ok, *bad;
    ASSERT_OK(weft_future_new(s, &ok));
    ASSERT_OK(weft_future_new(s, &bad));
    ASSERT_OK(weft_future_resolve(ok, NULL));
    ASSERT_OK(weft_future_fail(bad, -ENOSPC));
    struct tstate a, b;
    ts_init(&a, 'a', 3);
    a.hook = hook_wait_user;
    a.user = ok;
    a.r1 = 1;
    ts_init(&b, 'b', 3);
    b.hook = hook_wait_user;
    b.user = bad;
    b.r1 = 2;
    weft_future *fa, *fb;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &fa));
    ASSERT_OK(weft_coop_coiterate(c, tstep, &b, &fb));
    ASSERT_EQ(ms_fire(&m), 5);
    /* a went on at once; b failed at its second step. */
    ASSERT_STR_EQ(trace, "ababa");
    ASSERT_EQ(outcome(fa, NULL), 0);
    ASSERT_ERR(outcome(fb, NULL), -ENOSPC);
    ASSERT_OK(weft_future_release(ok));
    ASSERT_OK(weft_future_release(bad));
    ASSERT_OK(weft_future_release(fa));
    ASSERT_OK(weft_future_release(fb));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

/* A thread that owns a future until told to let it go. */
struct other_future {
    weft_future *f;
    pthread_barrier_t made, used;
};

static void *other_future_thread(void *arg)
{
    struct other_future *o = arg;
    weft_sched *s;
    ASSERT_OK(weft_sched_new(NULL, &s));
    ASSERT_OK(weft_future_new(s, &o->f));
    pthread_barrier_wait(&o->made);
    pthread_barrier_wait(&o->used);
    ASSERT_OK(weft_future_release(o->f));
    ASSERT_OK(weft_sched_free(s));
    return NULL;
}

TEST(wait_future_of_other_thread_einval)
{
    struct other_future o;
    memset(&o, 0, sizeof o);
    ASSERT_OK(pthread_barrier_init(&o.made, NULL, 2));
    ASSERT_OK(pthread_barrier_init(&o.used, NULL, 2));
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, other_future_thread, &o));
    pthread_barrier_wait(&o.made);
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate a;
    ts_init(&a, 0, 0);
    a.hook = hook_wait_user;
    a.user = o.f;
    a.r1 = 1;
    weft_future *f;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &f));
    ASSERT_EQ(ms_fire(&m), 1);
    ASSERT_ERR(outcome(f, NULL), -EINVAL);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
    pthread_barrier_wait(&o.used);
    ASSERT_OK(pthread_join(th, NULL));
    pthread_barrier_destroy(&o.made);
    pthread_barrier_destroy(&o.used);
}

/* The step makes a future, hands the creation reference to a "producer"
 * (ts->user) and returns it: the cooperator holds it on its own. */
static int hook_wait_new(struct tstate *ts, weft_future **wait)
{
    if (ts->steps == ts->r1) {
        weft_future *f;
        ASSERT_OK(weft_future_new(ts->s, &f));
        ts->user = f;
        *wait = f;
        return WEFT_COOP_WAIT;
    }
    return HOOK_PASS;
}

TEST(wait_cooperator_holds_its_own_reference)
{
    weft_sched *s = new_manual();
    long live = weft__test_live_allocs();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate a;
    ts_init(&a, 0, 2);
    a.s = s;
    a.hook = hook_wait_new;
    a.r1 = 1;
    weft_future *f;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &f));
    ASSERT_EQ(ms_fire(&m), 1);
    weft_future *w = a.user;
    /* The producer holds one reference; take another to observe. */
    ASSERT_OK(weft_future_retain(w));
    ASSERT_OK(weft_future_resolve(w, NULL));
    ASSERT_OK(weft_future_release(w));
    ASSERT_OK(weft_future_release(w)); /* the producer's: freed now */
    ASSERT_EQ(ms_fire(&m), 1);
    ASSERT_EQ(outcome(f, NULL), 0);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_EQ(weft__test_live_allocs(), live);
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Pause, resume, stop, when-done
 * ---------------------------------------------------------------------- */

TEST(pauses_are_counted)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate a;
    ts_init(&a, 'a', 0);
    weft_coop_task *t;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &t));
    ASSERT_OK(weft_coop_task_pause(t));
    ASSERT_OK(weft_coop_task_pause(t));
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_PAUSED);
    ASSERT_EQ(m.pending, 0); /* the only task paused: tick withdrawn */
    ASSERT_OK(weft_coop_task_resume(t));
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_PAUSED);
    ASSERT_EQ(m.pending, 0);
    ASSERT_EQ(weft_coop_tick(c), 0);
    ASSERT_EQ(a.steps, 0);
    ASSERT_OK(weft_coop_task_resume(t));
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_RUNNABLE);
    ASSERT_EQ(m.pending, 1);
    ASSERT_ERR(weft_coop_task_resume(t), WEFT_COOP_ENOTPAUSED);
    ASSERT_EQ(WEFT_COOP_ENOTPAUSED, -EALREADY);
    ASSERT_OK(weft_coop_task_stop(t));
    ASSERT_OK(weft_coop_task_release(t));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(resume_of_waiting_task_is_not_paused)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    weft_future *w;
    ASSERT_OK(weft_future_new(s, &w));
    struct tstate a;
    ts_init(&a, 0, 0);
    a.hook = hook_wait_user;
    a.user = w;
    a.r1 = 1;
    weft_coop_task *t;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &t));
    ASSERT_EQ(ms_fire(&m), 1);
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_WAITING);
    /* Unlike Twisted, waiting is not a pause the program can undo. */
    ASSERT_ERR(weft_coop_task_resume(t), WEFT_COOP_ENOTPAUSED);
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_WAITING);
    ASSERT_OK(weft_coop_task_stop(t));
    ASSERT_OK(weft_future_release(w));
    ASSERT_OK(weft_coop_task_release(t));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(pause_while_waiting_needs_both)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    weft_future *w;
    ASSERT_OK(weft_future_new(s, &w));
    struct tstate a;
    ts_init(&a, 'a', 3);
    a.hook = hook_wait_user;
    a.user = w;
    a.r1 = 1;
    weft_coop_task *t;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &t));
    ASSERT_EQ(ms_fire(&m), 1);
    ASSERT_OK(weft_coop_task_pause(t));
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_PAUSED);
    ASSERT_OK(weft_future_resolve(w, NULL));
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_PAUSED);
    ASSERT_EQ(m.pending, 0);
    ASSERT_OK(weft_coop_task_resume(t));
    ASSERT_EQ(m.pending, 1);
    ASSERT_EQ(ms_fire(&m), 2);
    ASSERT_STR_EQ(trace, "aaa");
    ASSERT_OK(weft_future_release(w));
    ASSERT_OK(weft_coop_task_release(t));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(finished_task_errors_say_how_it_ended)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate d, st, fl, ss;
    ts_init(&d, 0, 1);
    ts_init(&st, 0, 0);
    ts_init(&fl, 0, 0);
    fl.fail_at = 1;
    fl.fail_err = -EBADMSG;
    weft_coop_task *td, *tst, *tfl, *tss;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &d, &td));
    ASSERT_OK(weft_coop_cooperate(c, tstep, &st, &tst));
    ASSERT_OK(weft_coop_cooperate(c, tstep, &fl, &tfl));
    ASSERT_OK(weft_coop_task_stop(tst));
    ASSERT_EQ(ms_fire(&m), 2);

    ASSERT_EQ(weft_coop_task_state(td), WEFT_COOP_TASK_DONE);
    ASSERT_ERR(weft_coop_task_pause(td), WEFT_COOP_EDONE);
    ASSERT_ERR(weft_coop_task_stop(td), WEFT_COOP_EDONE);
    ASSERT_EQ(WEFT_COOP_EDONE, -ESRCH);

    ASSERT_EQ(weft_coop_task_state(tst), WEFT_COOP_TASK_STOPPED);
    ASSERT_ERR(weft_coop_task_pause(tst), WEFT_COOP_ESTOPPED);
    ASSERT_ERR(weft_coop_task_stop(tst), WEFT_COOP_ESTOPPED);
    ASSERT_EQ(WEFT_COOP_ESTOPPED, -ECANCELED);

    ASSERT_EQ(weft_coop_task_state(tfl), WEFT_COOP_TASK_FAILED);
    ASSERT_ERR(weft_coop_task_pause(tfl), WEFT_COOP_EFAILED);
    ASSERT_ERR(weft_coop_task_stop(tfl), WEFT_COOP_EFAILED);
    ASSERT_EQ(WEFT_COOP_EFAILED, -ENOTRECOVERABLE);

    ts_init(&ss, 0, 0);
    ASSERT_OK(weft_coop_cooperate(c, tstep, &ss, &tss));
    ASSERT_OK(weft_coop_stop(c));
    ASSERT_EQ(weft_coop_task_state(tss), WEFT_COOP_TASK_SCHEDSTOPPED);
    ASSERT_ERR(weft_coop_task_pause(tss), WEFT_COOP_ESCHEDSTOPPED);
    ASSERT_ERR(weft_coop_task_stop(tss), WEFT_COOP_ESCHEDSTOPPED);
    ASSERT_EQ(WEFT_COOP_ESCHEDSTOPPED, -ESHUTDOWN);

    /* Four distinct errors. */
    ASSERT_NE(WEFT_COOP_EDONE, WEFT_COOP_ESTOPPED);
    ASSERT_NE(WEFT_COOP_EDONE, WEFT_COOP_EFAILED);
    ASSERT_NE(WEFT_COOP_EDONE, WEFT_COOP_ESCHEDSTOPPED);
    ASSERT_NE(WEFT_COOP_ESTOPPED, WEFT_COOP_EFAILED);
    ASSERT_NE(WEFT_COOP_ESTOPPED, WEFT_COOP_ESCHEDSTOPPED);
    ASSERT_NE(WEFT_COOP_EFAILED, WEFT_COOP_ESCHEDSTOPPED);

    /* Resuming ended tasks that are not paused: NotPaused. */
    ASSERT_ERR(weft_coop_task_resume(td), WEFT_COOP_ENOTPAUSED);
    ASSERT_ERR(weft_coop_task_resume(tss), WEFT_COOP_ENOTPAUSED);

    /* A when-done asked for after the end is decided at once. */
    weft_future *f;
    void *v = NULL;
    ASSERT_OK(weft_coop_task_when_done(td, &f));
    ASSERT_EQ(outcome(f, &v), 0);
    ASSERT_PTR_EQ(v, &d);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_task_when_done(tst, &f));
    ASSERT_ERR(outcome(f, NULL), -ECANCELED);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_task_when_done(tfl, &f));
    ASSERT_ERR(outcome(f, NULL), -EBADMSG);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_task_when_done(tss, &f));
    ASSERT_ERR(outcome(f, NULL), -ESHUTDOWN);
    ASSERT_OK(weft_future_release(f));

    ASSERT_OK(weft_coop_task_release(td));
    ASSERT_OK(weft_coop_task_release(tst));
    ASSERT_OK(weft_coop_task_release(tfl));
    ASSERT_OK(weft_coop_task_release(tss));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(resume_counts_down_after_end)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate a;
    ts_init(&a, 0, 0);
    weft_coop_task *t;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &t));
    ASSERT_OK(weft_coop_task_pause(t));
    ASSERT_OK(weft_coop_task_pause(t));
    ASSERT_OK(weft_coop_task_stop(t));
    ASSERT_OK(weft_coop_task_resume(t));
    ASSERT_OK(weft_coop_task_resume(t));
    ASSERT_ERR(weft_coop_task_resume(t), WEFT_COOP_ENOTPAUSED);
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_STOPPED);
    ASSERT_EQ(m.pending, 0); /* it did not come back */
    ASSERT_EQ(a.steps, 0);
    ASSERT_OK(weft_coop_task_release(t));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(stop_paused_task)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate a;
    ts_init(&a, 0, 0);
    weft_coop_task *t;
    weft_future *f;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &t));
    ASSERT_OK(weft_coop_task_when_done(t, &f));
    ASSERT_OK(weft_coop_task_pause(t));
    ASSERT_OK(weft_coop_task_stop(t));
    ASSERT_ERR(outcome(f, NULL), WEFT_COOP_ESTOPPED);
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_STOPPED);
    ASSERT_EQ(a.steps, 0);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_task_release(t));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(stop_waiting_task_lets_the_future_go)
{
    weft_sched *s = new_manual();
    long live = weft__test_live_allocs();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    weft_future *w;
    ASSERT_OK(weft_future_new(s, &w));
    ASSERT_OK(weft_future_then(w, cb_trace, (void *)(intptr_t)'W'));
    struct tstate a;
    ts_init(&a, 'a', 0);
    a.hook = hook_wait_user;
    a.user = w;
    a.r1 = 1;
    weft_coop_task *t;
    weft_future *f;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &t));
    ASSERT_OK(weft_coop_task_when_done(t, &f));
    ASSERT_OK(weft_future_then(f, cb_trace, (void *)(intptr_t)'D'));
    ASSERT_EQ(ms_fire(&m), 1);
    ASSERT_OK(weft_coop_task_stop(t));
    ASSERT_STR_EQ(trace, "aD");
    ASSERT_ERR(outcome(f, NULL), -ECANCELED);
    ASSERT_OK(weft_coop_task_release(t)); /* the record is gone now */
    /* The future is not cancelled: its other users still get it. */
    ASSERT_EQ(weft_future_state(w), WEFT_FUTURE_PENDING);
    ASSERT_OK(weft_future_resolve(w, NULL));
    ASSERT_STR_EQ(trace, "aDW");
    ASSERT_EQ(m.pending, 0);
    ASSERT_EQ(a.steps, 1);
    ASSERT_OK(weft_future_release(w));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_EQ(weft__test_live_allocs(), live);
    ASSERT_OK(weft_sched_free(s));
}

TEST(stop_waiting_task_then_drop_future_leaks_nothing)
{
    weft_sched *s = new_manual();
    long live = weft__test_live_allocs();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate a;
    ts_init(&a, 0, 0);
    a.s = s;
    a.hook = hook_wait_new;
    a.r1 = 1;
    weft_coop_task *t;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &t));
    ASSERT_EQ(ms_fire(&m), 1);
    ASSERT_OK(weft_coop_task_stop(t));
    ASSERT_OK(weft_coop_task_release(t));
    /* The producer gives up without deciding: everything is freed. */
    ASSERT_OK(weft_future_release(a.user));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_EQ(weft__test_live_allocs(), live);
    ASSERT_OK(weft_sched_free(s));
}

TEST(when_done_new_future_per_call_in_order)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate a;
    ts_init(&a, 0, 2);
    weft_coop_task *t;
    weft_future *f1, *f2, *f3;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &t));
    ASSERT_OK(weft_coop_task_when_done(t, &f1));
    ASSERT_OK(weft_coop_task_when_done(t, &f2));
    ASSERT_OK(weft_coop_task_when_done(t, &f3));
    ASSERT_PTR_NE(f1, f2);
    ASSERT_PTR_NE(f2, f3);
    ASSERT_OK(weft_future_then(f3, cb_trace, (void *)(intptr_t)'3'));
    ASSERT_OK(weft_future_then(f1, cb_trace, (void *)(intptr_t)'1'));
    ASSERT_OK(weft_future_then(f2, cb_trace, (void *)(intptr_t)'2'));
    /* Cancelling one affects neither the task nor the others. */
    ASSERT_OK(weft_future_cancel(f2));
    ASSERT_STR_EQ(trace, "2");
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_RUNNABLE);
    ASSERT_EQ(ms_fire(&m), 2);
    ASSERT_STR_EQ(trace, "213");
    ASSERT_EQ(outcome(f1, NULL), 0);
    ASSERT_ERR(outcome(f2, NULL), -ECANCELED);
    ASSERT_EQ(outcome(f3, NULL), 0);
    ASSERT_OK(weft_future_release(f1));
    ASSERT_OK(weft_future_release(f2));
    ASSERT_OK(weft_future_release(f3));
    ASSERT_OK(weft_coop_task_release(t));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

/* When-done callback that checks the task has left the cooperator. */
struct left_check {
    weft_coop_task *t;
    int state;
    int pause;
};

static void cb_left(weft_future *f, void *arg)
{
    struct left_check *lc = arg;
    (void)f;
    lc->state = weft_coop_task_state(lc->t);
    lc->pause = weft_coop_task_pause(lc->t);
}

TEST(when_done_runs_after_task_left)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate a;
    ts_init(&a, 0, 1);
    struct left_check lc = {NULL, -1, 0};
    weft_future *f;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &lc.t));
    ASSERT_OK(weft_coop_task_when_done(lc.t, &f));
    ASSERT_OK(weft_future_then(f, cb_left, &lc));
    ASSERT_EQ(ms_fire(&m), 1);
    ASSERT_EQ(lc.state, WEFT_COOP_TASK_DONE);
    ASSERT_ERR(lc.pause, WEFT_COOP_EDONE);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_task_release(lc.t));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(release_handle_task_runs_on)
{
    weft_sched *s = new_manual();
    long live = weft__test_live_allocs();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate a;
    ts_init(&a, 0, 5);
    weft_coop_task *t;
    weft_future *f;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &t));
    ASSERT_OK(weft_coop_task_when_done(t, &f));
    ASSERT_OK(weft_coop_task_release(t));
    ASSERT_EQ(ms_fire(&m), 5);
    ASSERT_EQ(outcome(f, NULL), 0);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_EQ(weft__test_live_allocs(), live);
    ASSERT_OK(weft_sched_free(s));
}

TEST(release_twice_einval)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate a;
    ts_init(&a, 0, 0);
    weft_coop_task *t;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &t));
    ASSERT_OK(weft_coop_task_release(t));
    /* Still alive (the cooperator holds it): a second release is caught. */
    ASSERT_ERR(weft_coop_task_release(t), -EINVAL);
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(coiterate_and_coiterate_into)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate a, b;
    ts_init(&a, 0, 2);
    ts_init(&b, 0, 3);
    weft_future *fa, *mine;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &fa));
    ASSERT_OK(weft_future_new(s, &mine));
    ASSERT_OK(weft_coop_coiterate_into(c, tstep, &b, mine));
    ASSERT_EQ(ms_fire(&m), 5);
    void *v = NULL;
    ASSERT_EQ(outcome(fa, &v), 0);
    ASSERT_PTR_EQ(v, &a);
    ASSERT_EQ(outcome(mine, &v), 0);
    ASSERT_PTR_EQ(v, &b);
    ASSERT_OK(weft_future_release(fa));
    ASSERT_OK(weft_future_release(mine));

    /* A done future decided by someone else first: the cooperator's
     * decision is dropped quietly. */
    struct tstate d;
    ts_init(&d, 0, 1);
    ASSERT_OK(weft_future_new(s, &mine));
    ASSERT_OK(weft_coop_coiterate_into(c, tstep, &d, mine));
    ASSERT_OK(weft_future_fail(mine, -EIO));
    ASSERT_EQ(ms_fire(&m), 1);
    ASSERT_ERR(outcome(mine, NULL), -EIO);
    ASSERT_OK(weft_future_release(mine));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Round robin and ticks
 * ---------------------------------------------------------------------- */

TEST(round_robin_one_step_per_task_per_round)
{
    weft_sched *s = new_manual();
    struct msched m;
    struct kpred kp = {1000, 0, 0, 0};
    weft_coop *c = new_coop(s, &m, &kp, 0);
    struct tstate a, b, d;
    ts_init(&a, 'a', 1);
    ts_init(&b, 'b', 3);
    ts_init(&d, 'c', 2);
    weft_future *f[3];
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &f[0]));
    ASSERT_OK(weft_coop_coiterate(c, tstep, &b, &f[1]));
    ASSERT_OK(weft_coop_coiterate(c, tstep, &d, &f[2]));
    ASSERT_EQ(m.scheduled, 1); /* one tick for all three */
    ASSERT_EQ(ms_fire(&m), 6);
    ASSERT_STR_EQ(trace, "abcbcb");
    ASSERT_EQ(m.pending, 0);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_future_release(f[i]));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(turn_order_carried_over_between_ticks)
{
    weft_sched *s = new_manual();
    struct msched m;
    struct kpred kp = {2, 0, 0, 0};
    weft_coop *c = new_coop(s, &m, &kp, 0);
    struct tstate a, b, d;
    ts_init(&a, 'a', 0);
    ts_init(&b, 'b', 0);
    ts_init(&d, 'c', 0);
    weft_coop_task *t[3];
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &t[0]));
    ASSERT_OK(weft_coop_cooperate(c, tstep, &b, &t[1]));
    ASSERT_OK(weft_coop_cooperate(c, tstep, &d, &t[2]));
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(ms_fire(&m), 2);
        trace_add('|');
    }
    ASSERT_STR_EQ(trace, "ab|ca|bc|ab|");
    ASSERT_EQ(m.scheduled, 5);
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(weft_coop_task_stop(t[i]));
        ASSERT_OK(weft_coop_task_release(t[i]));
    }
    ASSERT_EQ(m.cancelled, 1);
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(order_survives_pause_and_resume_mid_round)
{
    weft_sched *s = new_manual();
    struct msched m;
    struct kpred kp = {2, 0, 0, 0};
    weft_coop *c = new_coop(s, &m, &kp, 0);
    struct tstate ts[4];
    weft_coop_task *t[4];
    for (int i = 0; i < 4; i++) {
        ts_init(&ts[i], (char)('a' + i), 0);
        ASSERT_OK(weft_coop_cooperate(c, tstep, &ts[i], &t[i]));
    }
    ASSERT_EQ(ms_fire(&m), 2);       /* ab; c is next */
    ASSERT_OK(weft_coop_task_pause(t[2]));
    ASSERT_EQ(ms_fire(&m), 2);       /* da */
    ASSERT_OK(weft_coop_task_resume(t[2])); /* c rejoins at the end */
    ASSERT_EQ(ms_fire(&m), 2);       /* bd */
    ASSERT_EQ(ms_fire(&m), 2);       /* ca */
    ASSERT_STR_EQ(trace, "abdabdca");
    for (int i = 0; i < 4; i++) {
        ASSERT_OK(weft_coop_task_stop(t[i]));
        ASSERT_OK(weft_coop_task_release(t[i]));
    }
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

/* b stops c (the next in the round) during its step. */
static int hook_stop_other(struct tstate *ts, weft_future **wait)
{
    (void)wait;
    if (ts->steps == 1)
        ts->r1 = weft_coop_task_stop(ts->user);
    return HOOK_PASS;
}

TEST(task_removed_under_the_cursor_is_skipped)
{
    weft_sched *s = new_manual();
    struct msched m;
    struct kpred kp = {4, 0, 0, 0};
    weft_coop *c = new_coop(s, &m, &kp, 0);
    struct tstate a, b, d;
    weft_coop_task *ta, *tb, *td;
    ts_init(&a, 'a', 0);
    ts_init(&b, 'b', 0);
    ts_init(&d, 'c', 0);
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &ta));
    ASSERT_OK(weft_coop_cooperate(c, tstep, &b, &tb));
    ASSERT_OK(weft_coop_cooperate(c, tstep, &d, &td));
    b.hook = hook_stop_other;
    b.user = td;
    ASSERT_EQ(ms_fire(&m), 4);
    ASSERT_OK(b.r1);
    ASSERT_STR_EQ(trace, "abab");
    ASSERT_OK(weft_coop_task_stop(ta));
    ASSERT_OK(weft_coop_task_stop(tb));
    ASSERT_OK(weft_coop_task_release(ta));
    ASSERT_OK(weft_coop_task_release(tb));
    ASSERT_OK(weft_coop_task_release(td));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(factory_each_tick_predicate_after_each_step)
{
    weft_sched *s = new_manual();
    struct msched m;
    struct kpred kp = {3, 0, 0, 0};
    weft_coop *c = new_coop(s, &m, &kp, 0);
    struct tstate a;
    ts_init(&a, 0, 7);
    weft_future *f;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &f));
    ASSERT_EQ(kp.factory_calls, 0);
    ASSERT_EQ(ms_fire(&m), 3);
    ASSERT_EQ(kp.factory_calls, 1);
    ASSERT_EQ(kp.pred_calls, 3);
    ASSERT_EQ(ms_fire(&m), 3);
    ASSERT_EQ(ms_fire(&m), 1); /* the task ends after one step */
    ASSERT_EQ(kp.factory_calls, 3);
    ASSERT_EQ(kp.pred_calls, 7);
    ASSERT_EQ(ms_fire(&m), -1);
    ASSERT_EQ(outcome(f, NULL), 0);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

static void null_factory(weft_coop *c, void *arg, struct weft_coop_pred *out)
{
    (void)c;
    (*(int *)arg)++;
    (void)out; /* leaves fn NULL */
}

TEST(null_predicate_ends_tick_after_each_step)
{
    weft_sched *s = new_manual();
    struct msched m;
    memset(&m, 0, sizeof m);
    int calls = 0;
    struct weft_coop_opts o;
    memset(&o, 0, sizeof o);
    o.predicate_factory = null_factory;
    o.predicate_arg = &calls;
    o.schedule = ms_schedule;
    o.cancel = ms_cancel;
    o.schedule_arg = &m;
    weft_coop *c;
    ASSERT_OK(weft_coop_new(s, &o, &c));
    m.c = c;
    struct tstate a, b;
    ts_init(&a, 'a', 2);
    ts_init(&b, 'b', 2);
    weft_future *fa, *fb;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &fa));
    ASSERT_OK(weft_coop_coiterate(c, tstep, &b, &fb));
    while (ms_fire(&m) >= 0)
        trace_add('|');
    ASSERT_STR_EQ(trace, "a|b|a|b|");
    ASSERT_EQ(calls, 4);
    ASSERT_OK(weft_future_release(fa));
    ASSERT_OK(weft_future_release(fb));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(default_slice_is_10ms_of_scheduler_time)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0); /* default predicate */
    struct tstate a, b;
    ts_init(&a, 'a', 0);
    a.s = s;
    a.advance = WEFT_MSEC(3);
    ts_init(&b, 'b', 0);
    b.s = s;
    b.advance = WEFT_MSEC(3);
    weft_coop_task *ta, *tb;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &ta));
    ASSERT_OK(weft_coop_cooperate(c, tstep, &b, &tb));
    /* Steps end at 3, 6, 9, 12 ms: the fourth reaches the slice. */
    ASSERT_EQ(ms_fire(&m), 4);
    ASSERT_EQ(weft_now(s), WEFT_MSEC(12));
    ASSERT_EQ(ms_fire(&m), 4);
    ASSERT_STR_EQ(trace, "abababab");
    /* Exactly 10 ms: a step that ends on the slice's end ends the tick. */
    a.advance = b.advance = WEFT_MSEC(5);
    ASSERT_EQ(ms_fire(&m), 2);
    /* A step that takes longer than the slice: still one step per tick. */
    a.advance = b.advance = WEFT_MSEC(50);
    ASSERT_EQ(ms_fire(&m), 1);
    ASSERT_EQ(ms_fire(&m), 1);
    /* No time passing: the tick runs until no task is runnable. */
    a.advance = b.advance = 0;
    a.limit = a.steps + 10;
    b.limit = b.steps + 10;
    ASSERT_EQ(ms_fire(&m), 20);
    ASSERT_OK(weft_coop_task_release(ta));
    ASSERT_OK(weft_coop_task_release(tb));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(slice_option)
{
    weft_sched *s = new_manual();
    struct msched m;
    memset(&m, 0, sizeof m);
    struct weft_coop_opts o;
    memset(&o, 0, sizeof o);
    o.slice_ns = WEFT_MSEC(2);
    o.schedule = ms_schedule;
    o.cancel = ms_cancel;
    o.schedule_arg = &m;
    weft_coop *c;
    ASSERT_OK(weft_coop_new(s, &o, &c));
    m.c = c;
    struct tstate a;
    ts_init(&a, 0, 0);
    a.s = s;
    a.advance = WEFT_USEC(500);
    weft_coop_task *t;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &t));
    ASSERT_EQ(ms_fire(&m), 4);
    ASSERT_EQ(ms_fire(&m), 4);
    ASSERT_OK(weft_coop_task_stop(t));
    ASSERT_OK(weft_coop_task_release(t));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(default_slice_under_weft_run)
{
    /* Default everything on a manual clock: steps advance the clock by
     * 1 ms, so each tick (a zero-delay timer) runs 10 steps. */
    weft_sched *s = new_manual();
    weft_coop *c;
    ASSERT_OK(weft_coop_new(s, NULL, &c));
    struct tstate a;
    ts_init(&a, 0, 35);
    a.s = s;
    a.advance = WEFT_MSEC(1);
    weft_future *f;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &f));
    ASSERT_EQ(weft_next_timeout(s), 0); /* the tick is due */
    ASSERT_EQ(weft_run_once(s, 0), 1);
    /* An iteration fires timers before and after its wait: two ticks. */
    ASSERT_EQ(a.steps, 20);
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(a.steps, 35);
    ASSERT_EQ(outcome(f, NULL), 0);
    ASSERT_EQ(weft_next_timeout(s), -1); /* no tick left behind */
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(tick_with_nothing_pending_does_nothing)
{
    weft_sched *s = new_manual();
    struct msched m;
    struct kpred kp = {1, 0, 0, 0}; /* the tasks never end */
    weft_coop *c = new_coop(s, &m, &kp, 0);
    struct tstate a;
    ts_init(&a, 0, 0);
    weft_coop_task *t;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &t));
    ASSERT_EQ(ms_fire(&m), 1);
    ASSERT_EQ(ms_fire(&m), 1); /* rescheduled at the end of the first */
    ASSERT_OK(weft_coop_task_pause(t)); /* withdrawn */
    ASSERT_EQ(weft_coop_tick(c), 0); /* a stale call is harmless */
    ASSERT_EQ(a.steps, 2);
    ASSERT_OK(weft_coop_task_stop(t));
    ASSERT_OK(weft_coop_task_release(t));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

static int hook_tick(struct tstate *ts, weft_future **wait)
{
    (void)wait;
    ts->r1 = weft_coop_tick(ts->coop);
    return HOOK_PASS;
}

TEST(tick_inside_tick_or_schedule_is_ebusy)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate a;
    ts_init(&a, 0, 1);
    a.hook = hook_tick;
    a.coop = c;
    weft_future *f;
    m.try_tick = 1;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &f));
    ASSERT_ERR(m.tick_in_schedule, -EBUSY);
    ASSERT_EQ(ms_fire(&m), 1);
    ASSERT_ERR(a.r1, -EBUSY);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Scheduling, start, stop, running
 * ---------------------------------------------------------------------- */

TEST(schedule_called_only_when_a_tick_is_needed)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    ASSERT_EQ(m.scheduled, 0);
    struct tstate a, b;
    ts_init(&a, 0, 1);
    ts_init(&b, 0, 1);
    weft_future *fa, *fb;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &fa));
    ASSERT_OK(weft_coop_coiterate(c, tstep, &b, &fb));
    ASSERT_EQ(m.scheduled, 1);
    ASSERT_EQ(ms_fire(&m), 2);
    ASSERT_EQ(m.scheduled, 1); /* nothing left: no next tick */
    ASSERT_EQ(m.cancelled, 0);
    ASSERT_OK(weft_future_release(fa));
    ASSERT_OK(weft_future_release(fb));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(not_started_holds_tasks_until_start)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 1);
    ASSERT_EQ(weft_coop_running(c), 0);
    struct tstate a;
    ts_init(&a, 0, 2);
    weft_future *f;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &f));
    ASSERT_EQ(m.scheduled, 0);
    ASSERT_EQ(weft_coop_tick(c), 0);
    ASSERT_EQ(a.steps, 0);
    ASSERT_OK(weft_coop_start(c));
    ASSERT_EQ(weft_coop_running(c), 1);
    ASSERT_EQ(m.scheduled, 1);
    ASSERT_OK(weft_coop_start(c)); /* again: nothing more */
    ASSERT_EQ(m.scheduled, 1);
    ASSERT_EQ(ms_fire(&m), 2);
    ASSERT_EQ(outcome(f, NULL), 0);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(not_started_with_default_scheduler)
{
    weft_sched *s = new_manual();
    struct weft_coop_opts o;
    memset(&o, 0, sizeof o);
    o.not_started = 1;
    weft_coop *c;
    ASSERT_OK(weft_coop_new(s, &o, &c));
    struct tstate a;
    ts_init(&a, 0, 3);
    weft_future *f;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &f));
    ASSERT_EQ(weft_run(s), 0); /* no tick: nothing keeps it running */
    ASSERT_EQ(a.steps, 0);
    ASSERT_OK(weft_coop_start(c));
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(a.steps, 3);
    ASSERT_EQ(outcome(f, NULL), 0);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(stop_fails_every_task_and_refuses_new_ones)
{
    weft_sched *s = new_manual();
    struct msched m;
    struct kpred kp = {4, 0, 0, 0}; /* the tasks never end */
    weft_coop *c = new_coop(s, &m, &kp, 0);
    weft_future *w;
    ASSERT_OK(weft_future_new(s, &w));
    struct tstate run, paused, waiting, co;
    ts_init(&run, 0, 0);
    ts_init(&paused, 0, 0);
    ts_init(&waiting, 0, 0);
    waiting.hook = hook_wait_user;
    waiting.user = w;
    waiting.r1 = 1;
    ts_init(&co, 0, 0);
    weft_coop_task *tr, *tp, *tw;
    weft_future *fr, *fp, *fw, *fc;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &run, &tr));
    ASSERT_OK(weft_coop_cooperate(c, tstep, &paused, &tp));
    ASSERT_OK(weft_coop_cooperate(c, tstep, &waiting, &tw));
    ASSERT_OK(weft_coop_coiterate(c, tstep, &co, &fc));
    ASSERT_OK(weft_coop_task_when_done(tr, &fr));
    ASSERT_OK(weft_coop_task_when_done(tp, &fp));
    ASSERT_OK(weft_coop_task_when_done(tw, &fw));
    ASSERT_EQ(ms_fire(&m), 4);
    ASSERT_OK(weft_coop_task_pause(tp));
    ASSERT_EQ(weft_coop_task_state(tw), WEFT_COOP_TASK_WAITING);
    ASSERT_EQ(m.pending, 1);

    ASSERT_OK(weft_coop_stop(c));
    ASSERT_EQ(m.pending, 0); /* the pending tick was withdrawn */
    ASSERT_EQ(m.cancelled, 1);
    ASSERT_EQ(weft_coop_running(c), 0);
    ASSERT_ERR(outcome(fr, NULL), WEFT_COOP_ESCHEDSTOPPED);
    ASSERT_ERR(outcome(fp, NULL), WEFT_COOP_ESCHEDSTOPPED);
    ASSERT_ERR(outcome(fw, NULL), WEFT_COOP_ESCHEDSTOPPED);
    ASSERT_ERR(outcome(fc, NULL), WEFT_COOP_ESCHEDSTOPPED);
    ASSERT_EQ(weft_coop_task_state(tr), WEFT_COOP_TASK_SCHEDSTOPPED);
    ASSERT_EQ(weft_coop_task_state(tp), WEFT_COOP_TASK_SCHEDSTOPPED);
    ASSERT_EQ(weft_coop_task_state(tw), WEFT_COOP_TASK_SCHEDSTOPPED);
    ASSERT_OK(weft_coop_stop(c)); /* again: nothing more */

    /* New tasks are refused, and nothing is created for them. */
    long live = weft__test_live_allocs();
    struct tstate late;
    ts_init(&late, 0, 1);
    weft_coop_task *tl = (weft_coop_task *)&late;
    weft_future *fl = (weft_future *)&late;
    ASSERT_ERR(weft_coop_cooperate(c, tstep, &late, &tl), -ESHUTDOWN);
    ASSERT_NULL(tl);
    ASSERT_ERR(weft_coop_coiterate(c, tstep, &late, &fl), -ESHUTDOWN);
    ASSERT_NULL(fl);
    ASSERT_EQ(weft__test_live_allocs(), live);
    ASSERT_EQ(weft_coop_tick(c), 0);

    /* The waited-for future resolving later does nothing. */
    ASSERT_OK(weft_future_resolve(w, NULL));
    ASSERT_EQ(waiting.steps, 1);

    /* start() accepts tasks again (Twisted clears _stopped). */
    ASSERT_OK(weft_coop_start(c));
    ASSERT_EQ(weft_coop_running(c), 1);
    ASSERT_OK(weft_coop_coiterate(c, tstep, &late, &fl));
    ASSERT_EQ(ms_fire(&m), 1);
    ASSERT_EQ(outcome(fl, NULL), 0);

    weft_future *all[] = {fr, fp, fw, fc, fl, w};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        ASSERT_OK(weft_future_release(all[i]));
    ASSERT_OK(weft_coop_task_release(tr));
    ASSERT_OK(weft_coop_task_release(tp));
    ASSERT_OK(weft_coop_task_release(tw));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

/* A when-done callback that records the state of every task in arg. */
struct seen {
    weft_coop_task *t[3];
    int states[3][3];
    int calls;
};

static void cb_seen(weft_future *f, void *arg)
{
    struct seen *sn = arg;
    (void)f;
    for (int i = 0; i < 3; i++)
        sn->states[sn->calls][i] = weft_coop_task_state(sn->t[i]);
    sn->calls++;
}

TEST(stop_ends_all_tasks_before_any_callback)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate ts[3];
    struct seen sn;
    memset(&sn, 0, sizeof sn);
    weft_future *f[3];
    for (int i = 0; i < 3; i++) {
        ts_init(&ts[i], 0, 0);
        ASSERT_OK(weft_coop_cooperate(c, tstep, &ts[i], &sn.t[i]));
        ASSERT_OK(weft_coop_task_when_done(sn.t[i], &f[i]));
        ASSERT_OK(weft_future_then(f[i], cb_seen, &sn));
    }
    ASSERT_OK(weft_coop_task_pause(sn.t[1]));
    ASSERT_OK(weft_coop_stop(c));
    ASSERT_EQ(sn.calls, 3);
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 3; i++)
            ASSERT_EQ(sn.states[k][i], WEFT_COOP_TASK_SCHEDSTOPPED);
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(weft_future_release(f[i]));
        ASSERT_OK(weft_coop_task_release(sn.t[i]));
    }
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(removing_last_task_withdraws_tick)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate a, b;
    ts_init(&a, 0, 0);
    ts_init(&b, 0, 0);
    weft_coop_task *ta, *tb;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &ta));
    ASSERT_OK(weft_coop_cooperate(c, tstep, &b, &tb));
    ASSERT_EQ(m.pending, 1);
    ASSERT_OK(weft_coop_task_pause(ta));
    ASSERT_EQ(m.pending, 1); /* b is still runnable */
    ASSERT_EQ(m.cancelled, 0);
    ASSERT_OK(weft_coop_task_stop(tb)); /* the last one */
    ASSERT_EQ(m.pending, 0);
    ASSERT_EQ(m.cancelled, 1);
    ASSERT_OK(weft_coop_task_resume(ta));
    ASSERT_EQ(m.pending, 1);
    ASSERT_EQ(m.scheduled, 2);
    ASSERT_OK(weft_coop_task_pause(ta));
    ASSERT_EQ(m.cancelled, 2);
    ASSERT_OK(weft_coop_task_stop(ta));
    ASSERT_EQ(m.cancelled, 2); /* nothing was pending */
    ASSERT_OK(weft_coop_task_release(ta));
    ASSERT_OK(weft_coop_task_release(tb));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(removing_last_task_stops_the_default_timer)
{
    weft_sched *s = new_manual();
    weft_coop *c;
    ASSERT_OK(weft_coop_new(s, NULL, &c));
    struct tstate a;
    ts_init(&a, 0, 0);
    weft_coop_task *t;
    ASSERT_EQ(weft_next_timeout(s), -1);
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &t));
    ASSERT_EQ(weft_next_timeout(s), 0);
    ASSERT_OK(weft_coop_task_pause(t));
    ASSERT_EQ(weft_next_timeout(s), -1);
    ASSERT_EQ(weft_run(s), 0); /* nothing keeps the loop running */
    ASSERT_EQ(a.steps, 0);
    ASSERT_OK(weft_coop_task_resume(t));
    ASSERT_EQ(weft_next_timeout(s), 0);
    ASSERT_OK(weft_coop_task_stop(t));
    ASSERT_EQ(weft_next_timeout(s), -1);
    ASSERT_OK(weft_coop_task_release(t));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(schedule_failure_in_cooperate_adds_nothing)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    long live = weft__test_live_allocs();
    struct tstate a;
    ts_init(&a, 0, 1);
    weft_coop_task *t = (weft_coop_task *)&a;
    weft_future *f = (weft_future *)&a;
    m.fail = -EAGAIN;
    ASSERT_ERR(weft_coop_cooperate(c, tstep, &a, &t), -EAGAIN);
    ASSERT_NULL(t);
    ASSERT_ERR(weft_coop_coiterate(c, tstep, &a, &f), -EAGAIN);
    ASSERT_NULL(f);
    weft_future *mine;
    ASSERT_OK(weft_future_new(s, &mine));
    ASSERT_ERR(weft_coop_coiterate_into(c, tstep, &a, mine), -EAGAIN);
    ASSERT_EQ(weft_future_state(mine), WEFT_FUTURE_PENDING);
    ASSERT_OK(weft_future_release(mine));
    ASSERT_EQ(weft__test_live_allocs(), live);
    m.fail = 0;
    struct tstate b;
    ts_init(&b, 0, 1);
    ASSERT_OK(weft_coop_coiterate(c, tstep, &b, &f));
    ASSERT_EQ(ms_fire(&m), 1); /* only b: nothing of a was left */
    ASSERT_EQ(a.steps, 0);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

/* The step makes the scheduler function fail from now on. */
static int hook_break_scheduler(struct tstate *ts, weft_future **wait)
{
    (void)wait;
    if (ts->steps == ts->r1)
        ((struct msched *)ts->user)->fail = -ENOBUFS;
    return HOOK_PASS;
}

TEST(schedule_failure_at_end_of_tick_fails_runnable_tasks)
{
    weft_sched *s = new_manual();
    struct msched m;
    struct kpred kp = {2, 0, 0, 0};
    weft_coop *c = new_coop(s, &m, &kp, 0);
    struct tstate a, b, p;
    ts_init(&a, 0, 0);
    a.hook = hook_break_scheduler;
    a.user = &m;
    a.r1 = 1;
    ts_init(&b, 0, 0);
    ts_init(&p, 0, 0);
    weft_coop_task *ta, *tb, *tp;
    weft_future *fa, *fb;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &ta));
    ASSERT_OK(weft_coop_cooperate(c, tstep, &b, &tb));
    ASSERT_OK(weft_coop_cooperate(c, tstep, &p, &tp));
    ASSERT_OK(weft_coop_task_pause(tp));
    ASSERT_OK(weft_coop_task_when_done(ta, &fa));
    ASSERT_OK(weft_coop_task_when_done(tb, &fb));
    ASSERT_EQ(ms_fire(&m), 2);
    /* No tick could be scheduled: rather than hang, they failed. */
    ASSERT_ERR(outcome(fa, NULL), -ENOBUFS);
    ASSERT_ERR(outcome(fb, NULL), -ENOBUFS);
    ASSERT_EQ(weft_coop_task_state(ta), WEFT_COOP_TASK_FAILED);
    ASSERT_EQ(weft_coop_task_state(tp), WEFT_COOP_TASK_PAUSED);
    /* A resume that cannot schedule says so; the task stays runnable and
     * the tick is tried again by the next call that schedules one. */
    ASSERT_ERR(weft_coop_task_resume(tp), -ENOBUFS);
    ASSERT_EQ(weft_coop_task_state(tp), WEFT_COOP_TASK_RUNNABLE);
    ASSERT_EQ(m.pending, 0);
    m.fail = 0;
    ASSERT_OK(weft_coop_start(c)); /* running already: it retries */
    ASSERT_EQ(m.pending, 1);
    ASSERT_EQ(ms_fire(&m), 2);
    ASSERT_EQ(p.steps, 2);
    ASSERT_OK(weft_coop_task_stop(tp));
    ASSERT_OK(weft_future_release(fa));
    ASSERT_OK(weft_future_release(fb));
    ASSERT_OK(weft_coop_task_release(ta));
    ASSERT_OK(weft_coop_task_release(tb));
    ASSERT_OK(weft_coop_task_release(tp));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(schedule_failure_when_future_resolves_fails_task)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    weft_future *w;
    ASSERT_OK(weft_future_new(s, &w));
    struct tstate a;
    ts_init(&a, 0, 0);
    a.hook = hook_wait_user;
    a.user = w;
    a.r1 = 1;
    weft_future *f;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &f));
    ASSERT_EQ(ms_fire(&m), 1);
    m.fail = -EMFILE;
    ASSERT_OK(weft_future_resolve(w, NULL));
    ASSERT_ERR(outcome(f, NULL), -EMFILE);
    ASSERT_OK(weft_future_release(w));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(start_reports_schedule_failure)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 1);
    struct tstate a;
    ts_init(&a, 0, 1);
    weft_future *f;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &f));
    m.fail = -EAGAIN;
    ASSERT_ERR(weft_coop_start(c), -EAGAIN);
    ASSERT_EQ(weft_coop_running(c), 1); /* started all the same */
    m.fail = 0;
    ASSERT_OK(weft_coop_start(c));
    ASSERT_EQ(ms_fire(&m), 1);
    ASSERT_EQ(outcome(f, NULL), 0);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Re-entrancy: steps and callbacks using the cooperator
 * ---------------------------------------------------------------------- */

static int hook_self(struct tstate *ts, weft_future **wait)
{
    (void)wait;
    if (ts->steps != ts->r1)
        return HOOK_PASS;
    switch (ts->r2) {
    case 0: /* stop itself, then claim it is done: ignored */
        ASSERT_OK(weft_coop_task_stop(ts->task));
        return WEFT_COOP_DONE;
    case 1: /* pause itself */
        ASSERT_OK(weft_coop_task_pause(ts->task));
        return WEFT_COOP_CONTINUE;
    case 2: /* stop the cooperator */
        ASSERT_OK(weft_coop_stop(ts->coop));
        return WEFT_COOP_CONTINUE;
    case 3: /* free the cooperator */
        ASSERT_OK(weft_coop_free(ts->coop));
        ASSERT_ERR(weft_coop_free(ts->coop), -EINVAL); /* not yet gone */
        return -EIO; /* ignored: the task has ended */
    default: /* stop itself, then wait for a future: ignored */
        ASSERT_OK(weft_coop_task_stop(ts->task));
        *wait = ts->user;
        return WEFT_COOP_WAIT;
    }
}

TEST(step_stops_itself)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    for (int variant = 0; variant < 2; variant++) {
        weft_future *w;
        ASSERT_OK(weft_future_new(s, &w));
        struct tstate a;
        ts_init(&a, 0, 0);
        a.hook = hook_self;
        a.r1 = 2;
        a.r2 = variant ? 4 : 0;
        a.user = w;
        weft_future *f;
        ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &a.task));
        ASSERT_OK(weft_coop_task_when_done(a.task, &f));
        ASSERT_EQ(ms_fire(&m), 2);
        ASSERT_ERR(outcome(f, NULL), WEFT_COOP_ESTOPPED);
        ASSERT_EQ(weft_coop_task_state(a.task), WEFT_COOP_TASK_STOPPED);
        ASSERT_EQ(m.pending, 0);
        ASSERT_OK(weft_future_release(f));
        ASSERT_OK(weft_coop_task_release(a.task));
        ASSERT_OK(weft_future_release(w));
    }
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(step_pauses_itself)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate a, b;
    ts_init(&a, 'a', 3);
    a.hook = hook_self;
    a.r1 = 1;
    a.r2 = 1;
    ts_init(&b, 'b', 3);
    weft_future *fb;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &a.task));
    ASSERT_OK(weft_coop_coiterate(c, tstep, &b, &fb));
    ASSERT_EQ(ms_fire(&m), 4);
    ASSERT_STR_EQ(trace, "abbb");
    ASSERT_EQ(weft_coop_task_state(a.task), WEFT_COOP_TASK_PAUSED);
    ASSERT_OK(weft_coop_task_resume(a.task));
    ASSERT_EQ(ms_fire(&m), 2);
    ASSERT_STR_EQ(trace, "abbbaa");
    ASSERT_OK(weft_future_release(fb));
    ASSERT_OK(weft_coop_task_release(a.task));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(step_stops_the_cooperator)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate a, b;
    ts_init(&a, 'a', 0);
    a.hook = hook_self;
    a.r1 = 2;
    a.r2 = 2;
    a.coop = c;
    ts_init(&b, 'b', 0);
    weft_future *fa, *fb;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &fa));
    ASSERT_OK(weft_coop_coiterate(c, tstep, &b, &fb));
    ASSERT_EQ(ms_fire(&m), 3); /* a b a(stop) */
    ASSERT_STR_EQ(trace, "aba");
    ASSERT_ERR(outcome(fa, NULL), -ESHUTDOWN);
    ASSERT_ERR(outcome(fb, NULL), -ESHUTDOWN);
    ASSERT_EQ(m.pending, 0);
    ASSERT_EQ(weft_coop_running(c), 0);
    ASSERT_OK(weft_future_release(fa));
    ASSERT_OK(weft_future_release(fb));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(step_frees_the_cooperator)
{
    weft_sched *s = new_manual();
    warm_heap(s);
    long live = weft__test_live_allocs();
    weft_coop *c;
    ASSERT_OK(weft_coop_new(s, NULL, &c)); /* default timer */
    struct tstate a, b;
    ts_init(&a, 'a', 0);
    a.hook = hook_self;
    a.r1 = 2;
    a.r2 = 3;
    a.coop = c;
    ts_init(&b, 'b', 0);
    weft_future *fa, *fb;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &fa));
    ASSERT_OK(weft_coop_coiterate(c, tstep, &b, &fb));
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_STR_EQ(trace, "aba");
    ASSERT_ERR(outcome(fa, NULL), -ESHUTDOWN);
    ASSERT_ERR(outcome(fb, NULL), -ESHUTDOWN);
    ASSERT_OK(weft_future_release(fa));
    ASSERT_OK(weft_future_release(fb));
    ASSERT_EQ(weft__test_live_allocs(), live); /* the cooperator too */
    ASSERT_OK(weft_sched_free(s));
}

/* When-done callbacks that use the cooperator. */
struct cb_ctx {
    weft_coop *c;
    struct tstate ts;
    weft_future *f;
    int r;
};

static void cb_add_task(weft_future *f, void *arg)
{
    struct cb_ctx *x = arg;
    (void)f;
    x->r = weft_coop_coiterate(x->c, tstep, &x->ts, &x->f);
}

static void cb_free_coop(weft_future *f, void *arg)
{
    struct cb_ctx *x = arg;
    (void)f;
    x->r = weft_coop_free(x->c);
}

TEST(when_done_callback_adds_task_in_same_tick)
{
    weft_sched *s = new_manual();
    struct msched m;
    struct kpred kp = {100, 0, 0, 0};
    weft_coop *c = new_coop(s, &m, &kp, 0);
    struct tstate a;
    ts_init(&a, 'a', 2);
    struct cb_ctx x;
    memset(&x, 0, sizeof x);
    x.c = c;
    ts_init(&x.ts, 'x', 2);
    weft_future *fa;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &fa));
    ASSERT_OK(weft_future_then(fa, cb_add_task, &x));
    ASSERT_EQ(ms_fire(&m), 4);
    ASSERT_OK(x.r);
    ASSERT_STR_EQ(trace, "aaxx");
    ASSERT_EQ(outcome(x.f, NULL), 0);
    ASSERT_EQ(m.scheduled, 1); /* the tick scheduled nothing in between */
    ASSERT_OK(weft_future_release(fa));
    ASSERT_OK(weft_future_release(x.f));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(when_done_callback_frees_cooperator)
{
    weft_sched *s = new_manual();
    long live = weft__test_live_allocs();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate a, b;
    ts_init(&a, 0, 0);
    ts_init(&b, 0, 0);
    struct cb_ctx x;
    memset(&x, 0, sizeof x);
    x.c = c;
    weft_future *fa, *fb;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &fa));
    ASSERT_OK(weft_coop_coiterate(c, tstep, &b, &fb));
    ASSERT_OK(weft_future_then(fa, cb_free_coop, &x));
    weft_coop_task *t;
    struct tstate p;
    ts_init(&p, 0, 0);
    ASSERT_OK(weft_coop_cooperate(c, tstep, &p, &t));
    ASSERT_OK(weft_coop_stop(c)); /* a's callback frees it mid-stop */
    ASSERT_OK(x.r);
    ASSERT_ERR(outcome(fb, NULL), -ESHUTDOWN);
    ASSERT_EQ(m.pending, 0);
    /* The handle outlives the cooperator. */
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_SCHEDSTOPPED);
    ASSERT_ERR(weft_coop_task_pause(t), WEFT_COOP_ESCHEDSTOPPED);
    ASSERT_OK(weft_coop_task_release(t));
    ASSERT_OK(weft_future_release(fa));
    ASSERT_OK(weft_future_release(fb));
    ASSERT_EQ(weft__test_live_allocs(), live);
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Lifetime
 * ---------------------------------------------------------------------- */

TEST(free_with_tasks_fails_them_and_keeps_handles)
{
    weft_sched *s = new_manual();
    long live = weft__test_live_allocs();
    struct msched m;
    struct kpred kp = {2, 0, 0, 0}; /* the tasks never end */
    weft_coop *c = new_coop(s, &m, &kp, 0);
    weft_future *w;
    ASSERT_OK(weft_future_new(s, &w));
    struct tstate run, paused, waiting;
    ts_init(&run, 0, 0);
    ts_init(&paused, 0, 0);
    ts_init(&waiting, 0, 0);
    waiting.hook = hook_wait_user;
    waiting.user = w;
    waiting.r1 = 1;
    weft_coop_task *tr, *tp, *tw;
    weft_future *fr, *fw;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &run, &tr));
    ASSERT_OK(weft_coop_cooperate(c, tstep, &paused, &tp));
    ASSERT_OK(weft_coop_cooperate(c, tstep, &waiting, &tw));
    ASSERT_OK(weft_coop_task_pause(tp));
    ASSERT_OK(weft_coop_task_when_done(tr, &fr));
    ASSERT_OK(weft_coop_task_when_done(tw, &fw));
    ASSERT_EQ(ms_fire(&m), 2);
    ASSERT_OK(weft_coop_free(c));
    ASSERT_EQ(m.pending, 0);
    ASSERT_EQ(m.cancelled, 1);
    ASSERT_ERR(outcome(fr, NULL), WEFT_COOP_ESCHEDSTOPPED);
    ASSERT_ERR(outcome(fw, NULL), WEFT_COOP_ESCHEDSTOPPED);
    weft_coop_task *all[] = {tr, tp, tw};
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(weft_coop_task_state(all[i]), WEFT_COOP_TASK_SCHEDSTOPPED);
        ASSERT_ERR(weft_coop_task_pause(all[i]), WEFT_COOP_ESCHEDSTOPPED);
        ASSERT_ERR(weft_coop_task_stop(all[i]), WEFT_COOP_ESCHEDSTOPPED);
    }
    ASSERT_OK(weft_coop_task_resume(tp)); /* counts its pause down */
    weft_future *late;
    ASSERT_OK(weft_coop_task_when_done(tp, &late));
    ASSERT_ERR(outcome(late, NULL), -ESHUTDOWN);
    ASSERT_OK(weft_future_release(late));
    /* The future it waited for is on its own now. */
    ASSERT_OK(weft_future_resolve(w, NULL));
    ASSERT_EQ(waiting.steps, 1);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_coop_task_release(all[i]));
    ASSERT_OK(weft_future_release(w));
    ASSERT_OK(weft_future_release(fr));
    ASSERT_OK(weft_future_release(fw));
    ASSERT_EQ(weft__test_live_allocs(), live);
    ASSERT_OK(weft_sched_free(s));
}

TEST(free_with_default_timer_pending)
{
    weft_sched *s = new_manual();
    weft_coop *c;
    ASSERT_OK(weft_coop_new(s, NULL, &c));
    struct tstate a;
    ts_init(&a, 0, 0);
    weft_future *f;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &f));
    ASSERT_EQ(weft_next_timeout(s), 0);
    ASSERT_OK(weft_coop_free(c));
    ASSERT_EQ(weft_next_timeout(s), -1); /* the timer went with it */
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(a.steps, 0);
    ASSERT_ERR(outcome(f, NULL), -ESHUTDOWN);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * The global cooperator
 * ---------------------------------------------------------------------- */

TEST(global_cooperator_on_default_scheduler)
{
    trace_reset();
    weft_coop *g = weft_coop_global();
    ASSERT_NOT_NULL(g);
    ASSERT_PTR_EQ(weft_coop_global(), g);
    ASSERT_EQ(weft_coop_running(g), 1);
    struct tstate a, b;
    ts_init(&a, 'a', 2);
    ts_init(&b, 'b', 2);
    weft_future *fa;
    weft_coop_task *tb;
    ASSERT_OK(weft_coiterate(tstep, &a, &fa));
    ASSERT_OK(weft_cooperate(tstep, &b, &tb));
    ASSERT_EQ(weft_run(NULL), 0); /* the default scheduler runs them */
    ASSERT_STR_EQ(trace, "abab");
    ASSERT_EQ(outcome(fa, NULL), 0);
    ASSERT_EQ(weft_coop_task_state(tb), WEFT_COOP_TASK_DONE);
    ASSERT_OK(weft_future_release(fa));
    ASSERT_OK(weft_coop_task_release(tb));

    /* Freed on demand; the next use makes a new one. */
    struct tstate p;
    ts_init(&p, 0, 0);
    weft_future *fp;
    ASSERT_OK(weft_coiterate(tstep, &p, &fp));
    ASSERT_OK(weft_coop_global_free());
    ASSERT_ERR(outcome(fp, NULL), -ESHUTDOWN);
    ASSERT_OK(weft_future_release(fp));
    ASSERT_OK(weft_coop_global_free()); /* none: fine */
    ASSERT_NOT_NULL(weft_coop_global());
    ASSERT_OK(weft_coop_global_free());
    ASSERT_OK(weft_sched_free(weft_sched_default()));
}

TEST(global_cooperator_per_thread)
{
    weft_coop *g = weft_coop_global();
    ASSERT_NOT_NULL(g);
    struct other_thread o;
    memset(&o, 0, sizeof o);
    o.c = g;
    pthread_t th;
    /* Another thread cannot use ours... */
    ASSERT_OK(pthread_create(&th, NULL, other_thread_main, &o));
    ASSERT_OK(pthread_join(th, NULL));
    ASSERT_ERR(o.r[0], -EINVAL);
    ASSERT_OK(weft_coop_global_free());
    ASSERT_OK(weft_sched_free(weft_sched_default()));
}

struct thread_global {
    weft_coop *g;
    int steps;
    int r;
    int left_ended; /* how the task left behind ended */
};

static void cb_store_error(weft_future *f, void *arg)
{
    *(int *)arg = weft_future_error(f);
}

static void *thread_global_main(void *arg)
{
    struct thread_global *tg = arg;
    tg->g = weft_coop_global();
    struct tstate a;
    ts_init(&a, 0, 3);
    weft_future *f;
    tg->r = weft_coiterate(tstep, &a, &f);
    if (tg->r == 0) {
        (void)weft_run(NULL);
        tg->steps = a.steps;
        (void)weft_future_release(f);
    }
    /* A task left behind: it ends, and everything is freed, with the
     * thread (valgrind checks the freeing). */
    static struct tstate left;
    ts_init(&left, 0, 0);
    weft_coop_task *t;
    ASSERT_OK(weft_cooperate(tstep, &left, &t));
    ASSERT_OK(weft_coop_task_when_done(t, &f));
    ASSERT_OK(weft_future_then(f, cb_store_error, &tg->left_ended));
    ASSERT_OK(weft_future_release(f)); /* the cooperator holds its own */
    ASSERT_OK(weft_coop_task_release(t));
    return NULL;
}

TEST(global_cooperator_of_a_thread_freed_at_thread_exit)
{
    weft_coop *mine = weft_coop_global();
    struct thread_global tg;
    memset(&tg, 0, sizeof tg);
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, thread_global_main, &tg));
    ASSERT_OK(pthread_join(th, NULL));
    ASSERT_NOT_NULL(tg.g);
    ASSERT_PTR_NE(tg.g, mine);
    ASSERT_OK(tg.r);
    ASSERT_EQ(tg.steps, 3);
    ASSERT_ERR(tg.left_ended, WEFT_COOP_ESCHEDSTOPPED);
    ASSERT_OK(weft_coop_global_free());
    ASSERT_OK(weft_sched_free(weft_sched_default()));
}

static void cb_print_error(weft_future *f, void *arg)
{
    (void)arg;
    printf("task ended: %s\n", weft_err_name(weft_future_error(f)));
}

static void exit_with_global_task(void *arg)
{
    static struct tstate left;
    (void)arg;
    ts_init(&left, 0, 0);
    weft_future *f;
    ASSERT_OK(weft_coiterate(tstep, &left, &f));
    ASSERT_OK(weft_future_then(f, cb_print_error, NULL));
    ASSERT_OK(weft_future_release(f));
    exit(0); /* the global cooperator goes first, then the scheduler */
}

TEST(global_cooperator_freed_at_exit)
{
    char out[256];
    int st = weft_test_fork(exit_with_global_task, NULL, out, sizeof out);
    ASSERT(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
    ASSERT_STR_CONTAINS(out, "task ended: ESHUTDOWN");
}

TEST(global_cooperator_after_default_scheduler_freed)
{
    weft_coop *g = weft_coop_global();
    ASSERT_NOT_NULL(g);
    /* Freed the documented way... */
    ASSERT_OK(weft_coop_global_free());
    ASSERT_OK(weft_sched_free(weft_sched_default()));
    g = weft_coop_global();
    ASSERT_NOT_NULL(g);
    /* ...and not: the default scheduler freed under an idle global
     * cooperator.  The next use notices and starts afresh without
     * touching what went with the scheduler (valgrind/ASan check). */
    ASSERT_OK(weft_sched_free(weft_sched_default()));
    struct tstate a;
    ts_init(&a, 0, 1);
    weft_future *f;
    ASSERT_OK(weft_coiterate(tstep, &a, &f));
    ASSERT_EQ(weft_run(NULL), 0);
    ASSERT_EQ(outcome(f, NULL), 0);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_global_free());
    ASSERT_OK(weft_sched_free(weft_sched_default()));
}

/* ----------------------------------------------------------------------
 * Allocation failure
 * ---------------------------------------------------------------------- */

TEST(alloc_failure_new)
{
    weft_sched *s = new_manual();
    long live = weft__test_live_allocs();
    int failures = 0;
    for (long n = 0;; n++) {
        weft_coop *c = (weft_coop *)&n;
        weft__test_fail_alloc(n, 1);
        int r = weft_coop_new(s, NULL, &c);
        weft__test_fail_alloc(-1, 0);
        if (r == 0) {
            ASSERT_OK(weft_coop_free(c));
            break;
        }
        ASSERT_ERR(r, -ENOMEM);
        ASSERT_NULL(c);
        ASSERT_EQ(weft__test_live_allocs(), live);
        failures++;
    }
    ASSERT_EQ(failures, 2); /* the cooperator, its timer */
    ASSERT_EQ(weft__test_live_allocs(), live);
    ASSERT_OK(weft_sched_free(s));
}

TEST(alloc_failure_cooperate_and_coiterate)
{
    /* A fresh scheduler: the first tick's timer also grows its heap. */
    weft_sched *s = new_manual();
    weft_coop *c;
    ASSERT_OK(weft_coop_new(s, NULL, &c));
    long live = weft__test_live_allocs();
    struct tstate a;
    ts_init(&a, 0, 1);
    int failures = 0;
    for (long n = 0;; n++) {
        weft_coop_task *t = (weft_coop_task *)&n;
        weft__test_fail_alloc(n, 1);
        int r = weft_coop_cooperate(c, tstep, &a, &t);
        weft__test_fail_alloc(-1, 0);
        if (r == 0) {
            ASSERT_OK(weft_coop_task_stop(t));
            ASSERT_OK(weft_coop_task_release(t));
            break;
        }
        ASSERT_ERR(r, -ENOMEM);
        ASSERT_NULL(t);
        ASSERT_EQ(weft__test_live_allocs(), live);
        ASSERT_EQ(weft_next_timeout(s), -1);
        failures++;
    }
    ASSERT_GE(failures, 2); /* the task, the timer heap */
    live = weft__test_live_allocs(); /* the heap keeps its array */
    failures = 0;
    for (long n = 0;; n++) {
        weft_future *f = (weft_future *)&n;
        weft__test_fail_alloc(n, 1);
        int r = weft_coop_coiterate(c, tstep, &a, &f);
        weft__test_fail_alloc(-1, 0);
        if (r == 0) {
            ASSERT_EQ(weft_run(s), 0);
            ASSERT_EQ(outcome(f, NULL), 0);
            ASSERT_OK(weft_future_release(f));
            break;
        }
        ASSERT_ERR(r, -ENOMEM);
        ASSERT_NULL(f);
        ASSERT_EQ(weft__test_live_allocs(), live);
        failures++;
    }
    ASSERT_GE(failures, 3); /* future, task, done list */
    ASSERT_EQ(weft__test_live_allocs(), live);
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(alloc_failure_when_done)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    struct tstate a;
    ts_init(&a, 0, 1);
    weft_coop_task *t;
    ASSERT_OK(weft_coop_cooperate(c, tstep, &a, &t));
    long live = weft__test_live_allocs();
    int failures = 0;
    weft_future *f = NULL;
    for (long n = 0;; n++) {
        f = (weft_future *)&n;
        weft__test_fail_alloc(n, 1);
        int r = weft_coop_task_when_done(t, &f);
        weft__test_fail_alloc(-1, 0);
        if (r == 0)
            break;
        ASSERT_ERR(r, -ENOMEM);
        ASSERT_NULL(f);
        ASSERT_EQ(weft__test_live_allocs(), live);
        failures++;
    }
    ASSERT_EQ(failures, 2); /* the future, the done list */
    ASSERT_EQ(ms_fire(&m), 1);
    ASSERT_EQ(outcome(f, NULL), 0);
    ASSERT_OK(weft_future_release(f));
    /* After the end: only the future is allocated. */
    weft__test_fail_alloc(0, 0);
    ASSERT_ERR(weft_coop_task_when_done(t, &f), -ENOMEM);
    weft__test_fail_alloc(-1, 0);
    ASSERT_OK(weft_coop_task_release(t));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

/* Make allocations fail just before returning a pending future. */
static int hook_wait_nomem(struct tstate *ts, weft_future **wait)
{
    if (ts->steps == 1) {
        *wait = ts->user;
        weft__test_fail_alloc(ts->r1, 1);
        return WEFT_COOP_WAIT;
    }
    return HOOK_PASS;
}

TEST(alloc_failure_setting_up_a_wait_fails_task)
{
    weft_sched *s = new_manual();
    struct msched m;
    weft_coop *c = new_coop(s, &m, NULL, 0);
    long live = weft__test_live_allocs();
    /* The gather's future, its record, its entry in the awaited future's
     * callbacks, the task's callback on the gather. */
    for (int n = 0; n < 4; n++) {
        weft_future *w;
        ASSERT_OK(weft_future_new(s, &w));
        struct tstate a;
        ts_init(&a, 0, 0);
        a.hook = hook_wait_nomem;
        a.user = w;
        a.r1 = n;
        weft_future *f;
        ASSERT_OK(weft_coop_coiterate(c, tstep, &a, &f));
        ASSERT_EQ(ms_fire(&m), 1);
        weft__test_fail_alloc(-1, 0);
        ASSERT_ERR(outcome(f, NULL), -ENOMEM);
        ASSERT_OK(weft_future_release(f));
        ASSERT_OK(weft_future_resolve(w, NULL)); /* nothing attached */
        ASSERT_OK(weft_future_release(w));
        ASSERT_EQ(weft__test_live_allocs(), live);
    }
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(alloc_failure_global)
{
    ASSERT_OK(weft_coop_global_free());
    (void)weft_sched_default(); /* exists already: only the coop fails */
    struct tstate a;
    ts_init(&a, 0, 1);
    weft__test_fail_alloc(0, 1);
    ASSERT_NULL(weft_coop_global());
    weft_future *f = (weft_future *)&a;
    weft_coop_task *t = (weft_coop_task *)&a;
    ASSERT_ERR(weft_coiterate(tstep, &a, &f), -ENOMEM);
    ASSERT_NULL(f);
    ASSERT_ERR(weft_cooperate(tstep, &a, &t), -ENOMEM);
    ASSERT_NULL(t);
    weft__test_fail_alloc(-1, 0);
    ASSERT_NOT_NULL(weft_coop_global());
    ASSERT_OK(weft_coop_global_free());
    ASSERT_OK(weft_sched_free(weft_sched_default()));
}

/* ----------------------------------------------------------------------
 * Use case 1: a CPU-heavy loop that does not starve I/O coroutines
 * ---------------------------------------------------------------------- */

struct cpu_io {
    weft_sched *s;
    struct tstate cpu;   /* the heavy task: 1 ms of "work" per step */
    int done;            /* the heavy task finished */
    int yields;          /* runs of the yielding coroutine */
    int max_gap;         /* most steps seen between two of its runs */
    int sleeps;          /* wake-ups of the sleeping coroutine */
    int64_t max_late;    /* latest wake-up after its due time */
};

static int io_yielder(void *arg)
{
    struct cpu_io *x = arg;
    int last = x->cpu.steps;
    while (!x->done) {
        x->yields++;
        if (x->cpu.steps - last > x->max_gap)
            x->max_gap = x->cpu.steps - last;
        last = x->cpu.steps;
        ASSERT_OK(weft_yield());
    }
    return 0;
}

static int io_sleeper(void *arg)
{
    struct cpu_io *x = arg;
    while (!x->done) {
        int64_t due = weft_now(x->s) + WEFT_MSEC(5);
        ASSERT_OK(weft_sleep_until(due));
        int64_t late = weft_now(x->s) - due;
        if (late > x->max_late)
            x->max_late = late;
        x->sleeps++;
    }
    return 0;
}

static void cb_cpu_done(weft_future *f, void *arg)
{
    struct cpu_io *x = arg;
    ASSERT_EQ(outcome(f, NULL), 0);
    x->done = 1;
}

TEST(use_cpu_heavy_task_does_not_starve_io)
{
    weft_sched *s = new_manual();
    weft_coop *c;
    ASSERT_OK(weft_coop_new(s, NULL, &c)); /* all defaults */
    struct cpu_io x;
    memset(&x, 0, sizeof x);
    x.s = s;
    ts_init(&x.cpu, 0, 2000);
    x.cpu.s = s;
    x.cpu.advance = WEFT_MSEC(1);
    weft_future *f;
    ASSERT_OK(weft_coop_coiterate(c, tstep, &x.cpu, &f));
    ASSERT_OK(weft_future_then(f, cb_cpu_done, &x));
    ASSERT_OK(weft_spawn(s, io_yielder, &x, NULL, NULL));
    ASSERT_OK(weft_spawn(s, io_sleeper, &x, NULL, NULL));
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(x.cpu.steps, 2000);
    /* The yielding coroutine ran between ticks all along: never more than
     * two 10 ms slices (one loop iteration fires timers twice) between
     * two of its runs, instead of the whole 2000-step job. */
    ASSERT_LE(x.max_gap, 20);
    ASSERT_GE(x.yields, 2000 / 20 - 2);
    /* The sleeper woke roughly on time all along: at most two slices
     * late, so at least every 25 ms of the 2 s. */
    ASSERT_LE(x.max_late, WEFT_MSEC(20));
    ASSERT_GE(x.sleeps, 2000 / 25);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Use case 2: at most k jobs at a time over a larger set (Twisted's
 * idiom: k coiterate calls over one shared generator)
 * ---------------------------------------------------------------------- */

struct jobs {
    weft_sched *s;
    int next;       /* the shared generator's position */
    int total;
    int in_flight;
    int max_in_flight;
    int finished;
    int order[32];  /* job numbers in the order they finished */
};

struct job {
    struct jobs *js;
    int n;
    weft_future *f;
};

static void job_timer(weft_timer *tm, void *arg)
{
    struct job *j = arg;
    j->js->in_flight--;
    j->js->order[j->js->finished++] = j->n;
    ASSERT_OK(weft_future_resolve(j->f, NULL));
    ASSERT_OK(weft_future_release(j->f));
    ASSERT_OK(weft_timer_free(tm));
    free(j);
}

/* Each worker's step takes the next job from the shared generator and
 * waits for it; the generator running dry ends the worker. */
static int worker_step(void *state, weft_future **wait)
{
    struct jobs *js = state;
    if (js->next == js->total)
        return WEFT_COOP_DONE;
    struct job *j = malloc(sizeof *j);
    ASSERT_NOT_NULL(j);
    j->js = js;
    j->n = js->next++;
    ASSERT_OK(weft_future_new(js->s, &j->f));
    weft_timer *tm;
    ASSERT_OK(weft_timer_new(js->s, job_timer, j, &tm));
    /* Job n takes (n % 4 + 1) ms. */
    ASSERT_OK(weft_timer_start(tm, WEFT_MSEC(j->n % 4 + 1), 0));
    if (++js->in_flight > js->max_in_flight)
        js->max_in_flight = js->in_flight;
    *wait = j->f;
    return WEFT_COOP_WAIT;
}

TEST(use_limit_concurrency_k_of_n)
{
    weft_sched *s = new_manual();
    weft_coop *c;
    ASSERT_OK(weft_coop_new(s, NULL, &c));
    struct jobs js;
    memset(&js, 0, sizeof js);
    js.s = s;
    js.total = 10;
    weft_future *w[3], *all;
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_coop_coiterate(c, worker_step, &js, &w[i]));
    ASSERT_OK(weft_future_all(s, w, 3, &all));
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(weft_future_state(all), WEFT_FUTURE_RESOLVED);
    ASSERT_EQ(js.finished, 10);
    ASSERT_EQ(js.max_in_flight, 3);
    ASSERT_EQ(js.in_flight, 0);
    /* Each job ran exactly once. */
    int seen = 0;
    for (int i = 0; i < 10; i++)
        seen |= 1 << js.order[i];
    ASSERT_EQ(seen, (1 << 10) - 1);
    /* Three at a time, each 1-4 ms: far less than the 23 ms in series,
     * at least the 23/3 ms of perfect packing. */
    ASSERT_LT(weft_now(s), WEFT_MSEC(23));
    ASSERT_GE(weft_now(s), WEFT_MSEC(23) / 3);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_future_release(w[i]));
    ASSERT_OK(weft_future_release(all));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Use case 3: a sequence of asynchronous steps
 * ---------------------------------------------------------------------- */

struct seq {
    weft_sched *s;
    int step;
    int64_t at[4];       /* when each step ran */
    weft_future *pending; /* what the coroutine resolves */
    int fail_second;     /* the second wait fails */
};

static void seq_timer(weft_timer *tm, void *arg)
{
    weft_future *f = arg;
    ASSERT_OK(weft_future_resolve(f, NULL));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_timer_free(tm));
}

static int seq_resolver(void *arg)
{
    struct seq *q = arg;
    ASSERT_OK(weft_sleep_for(WEFT_MSEC(3)));
    weft_future *f = q->pending;
    q->pending = NULL;
    if (q->fail_second)
        ASSERT_OK(weft_future_fail(f, -ECONNRESET));
    else
        ASSERT_OK(weft_future_resolve(f, NULL));
    ASSERT_OK(weft_future_release(f));
    return 0;
}

static int seq_step(void *state, weft_future **wait)
{
    struct seq *q = state;
    q->at[q->step] = weft_now(q->s);
    weft_future *f;
    switch (q->step++) {
    case 0: { /* a request answered by a timer in 5 ms */
        ASSERT_OK(weft_future_new(q->s, &f));
        weft_timer *tm;
        ASSERT_OK(weft_timer_new(q->s, seq_timer, f, &tm));
        ASSERT_OK(weft_timer_start(tm, WEFT_MSEC(5), 0));
        *wait = f;
        return WEFT_COOP_WAIT;
    }
    case 1: /* one answered by a coroutine after 3 ms */
        ASSERT_OK(weft_future_new(q->s, &f));
        q->pending = f;
        ASSERT_OK(weft_spawn(q->s, seq_resolver, q, NULL, NULL));
        *wait = f;
        return WEFT_COOP_WAIT;
    case 2: /* some plain work */
        return WEFT_COOP_CONTINUE;
    default:
        return WEFT_COOP_DONE;
    }
}

TEST(use_sequence_of_async_steps)
{
    weft_sched *s = new_manual();
    weft_coop *c;
    ASSERT_OK(weft_coop_new(s, NULL, &c));
    struct seq q;
    memset(&q, 0, sizeof q);
    q.s = s;
    weft_future *f;
    ASSERT_OK(weft_coop_coiterate(c, seq_step, &q, &f));
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(q.step, 4);
    ASSERT_EQ(outcome(f, NULL), 0);
    /* Each step ran only once the previous one's answer came. */
    ASSERT_EQ(q.at[0], 0);
    ASSERT_EQ(q.at[1], WEFT_MSEC(5));
    ASSERT_EQ(q.at[2], WEFT_MSEC(8));
    ASSERT_EQ(q.at[3], WEFT_MSEC(8));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(use_sequence_stops_at_a_failed_step)
{
    weft_sched *s = new_manual();
    weft_coop *c;
    ASSERT_OK(weft_coop_new(s, NULL, &c));
    struct seq q;
    memset(&q, 0, sizeof q);
    q.s = s;
    q.fail_second = 1;
    weft_coop_task *t;
    weft_future *f;
    ASSERT_OK(weft_coop_cooperate(c, seq_step, &q, &t));
    ASSERT_OK(weft_coop_task_when_done(t, &f));
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(q.step, 2); /* the third step never ran */
    ASSERT_ERR(outcome(f, NULL), -ECONNRESET);
    ASSERT_EQ(weft_coop_task_state(t), WEFT_COOP_TASK_FAILED);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_coop_task_release(t));
    ASSERT_OK(weft_coop_free(c));
    ASSERT_OK(weft_sched_free(s));
}
