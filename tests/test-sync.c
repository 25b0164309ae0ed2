/*
 * test-sync.c - event, mutex, condition variable, counting semaphore and
 * wait group: success and failure paths, deadlines on a manual clock,
 * FIFO order and hand-off (no barging), cancellation while waiting (end,
 * raise, timeout) and the races where a wake-up meets a waiter that gave
 * up or that is interrupted after being woken, bad input, freeing.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "test.h"
#include "util.h"

long weft__test_live_allocs(void);

/* ----------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */

/* new_manual, trace_reset/trace_add, go, reap: tests/util.h */

/* One blocking operation by a coroutine, with what it returned and when. */
enum op_kind { EV_WAIT, MX_LOCK, CV_WAIT, SEM_ACQ, WG_WAIT };

struct op {
    enum op_kind kind;
    void *obj;
    weft_mutex *m;    /* CV_WAIT: the mutex (locked first, unlocked after) */
    int64_t deadline;
    char tag;         /* appended to the trace when the call returns */
    int64_t hold;     /* MX_LOCK/SEM_ACQ success: hold this long, then give
                         back; -1: keep */
    int r;            /* result; 1 until returned */
    int64_t t;        /* time of return */
    int owned;        /* CV_WAIT: the mutex was held on return */
    int after;        /* result of a weft_yield() after the call */
};

static int op_body(void *arg)
{
    struct op *o = arg;
    switch (o->kind) {
    case EV_WAIT:
        o->r = weft_event_wait(o->obj, o->deadline);
        break;
    case MX_LOCK:
        o->r = weft_mutex_lock(o->obj, o->deadline);
        break;
    case CV_WAIT:
        ASSERT_OK(weft_mutex_lock(o->m, -1));
        o->r = weft_cond_wait(o->obj, o->m, o->deadline);
        o->owned = weft_mutex_unlock(o->m) == 0;
        break;
    case SEM_ACQ:
        o->r = weft_sem_acquire(o->obj, o->deadline);
        break;
    case WG_WAIT:
        o->r = weft_wg_wait(o->obj, o->deadline);
        break;
    }
    o->t = weft_now(NULL);
    if (o->tag)
        trace_add(o->tag);
    if (o->r == 0 && o->hold >= 0 && (o->kind == MX_LOCK || o->kind == SEM_ACQ)) {
        if (o->hold > 0)
            (void)weft_sleep_for(o->hold);
        if (o->kind == MX_LOCK)
            ASSERT_OK(weft_mutex_unlock(o->obj));
        else
            ASSERT_OK(weft_sem_release(o->obj));
    }
    o->after = weft_yield();
    return 0;
}

static struct op mkop(enum op_kind kind, void *obj, int64_t deadline, char tag)
{
    struct op o;
    memset(&o, 0, sizeof o);
    o.kind = kind;
    o.obj = obj;
    o.deadline = deadline;
    o.tag = tag;
    o.hold = -1;
    o.r = 1;
    o.after = 1;
    return o;
}

static int count_steps(void *arg)
{
    for (int i = 0; i < 3; i++) {
        (*(int *)arg)++;
        ASSERT_OK(weft_yield());
    }
    return 0;
}

/* ======================================================================
 * Event
 * ====================================================================== */

TEST(event_bad_arguments)
{
    weft_sched *s = new_manual();
    weft_event *e;
    ASSERT_ERR(weft_event_new(s, NULL), -EINVAL);
    ASSERT_ERR(weft_event_free(NULL), -EINVAL);
    ASSERT_ERR(weft_event_set(NULL), -EINVAL);
    ASSERT_ERR(weft_event_clear(NULL), -EINVAL);
    ASSERT_ERR(weft_event_is_set(NULL), -EINVAL);
    ASSERT_ERR(weft_event_wait(NULL, -1), -EINVAL);
    ASSERT_OK(weft_event_new(s, &e));
    ASSERT_ERR(weft_event_wait(e, -1), -EINVAL); /* outside a coroutine */
    ASSERT_OK(weft_event_set(e));
    ASSERT_ERR(weft_event_wait(e, -1), -EINVAL); /* even when set */
    ASSERT_OK(weft_event_free(e));
    ASSERT_OK(weft_sched_free(s));
}

TEST(event_set_wakes_every_waiter_in_order)
{
    weft_sched *s = new_manual();
    weft_event *e;
    trace_reset();
    ASSERT_OK(weft_event_new(s, &e));
    ASSERT_EQ(weft_event_is_set(e), 0);
    struct op o[3] = {mkop(EV_WAIT, e, -1, 'a'),
                      mkop(EV_WAIT, e, WEFT_SEC(1), 'b'),
                      mkop(EV_WAIT, e, -1, 'c')};
    weft_coro *co[3];
    for (int i = 0; i < 3; i++)
        co[i] = go(s, op_body, &o[i]);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(weft_event_set(e), 3);
    ASSERT_EQ(weft_event_is_set(e), 1);
    ASSERT_EQ(weft_event_set(e), 0); /* nobody left */
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "abc");
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(o[i].r);
        reap(co[i]);
    }
    ASSERT_OK(weft_event_free(e));
    ASSERT_OK(weft_sched_free(s));
}

struct ev_arg {
    weft_event *e;
    int *steps;
};

static int wait_set_event(void *arg)
{
    struct ev_arg *a = arg;
    int before = *a->steps;
    ASSERT_OK(weft_event_wait(a->e, -1));
    ASSERT_OK(weft_event_wait(a->e, 0)); /* past deadline: fine when set */
    ASSERT_EQ(*a->steps, before);        /* no yield */
    return 0;
}

TEST(event_wait_on_set_event_returns_at_once)
{
    weft_sched *s = new_manual();
    struct ev_arg a;
    int steps = 0;
    a.steps = &steps;
    ASSERT_OK(weft_event_new(s, &a.e));
    ASSERT_OK(weft_event_set(a.e));
    go(s, count_steps, &steps);
    weft_coro *co = go(s, wait_set_event, &a);
    ASSERT_OK(weft_run(s));
    reap(co);
    ASSERT_OK(weft_event_free(a.e));
    ASSERT_OK(weft_sched_free(s));
}

TEST(event_woken_waiters_succeed_even_if_cleared_before_running)
{
    weft_sched *s = new_manual();
    weft_event *e;
    ASSERT_OK(weft_event_new(s, &e));
    struct op a = mkop(EV_WAIT, e, -1, 0);
    struct op b = mkop(EV_WAIT, e, WEFT_MSEC(50), 0);
    weft_coro *ca = go(s, op_body, &a);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(weft_event_set(e), 1);
    ASSERT_OK(weft_event_clear(e));
    ASSERT_EQ(weft_event_is_set(e), 0);
    weft_coro *cb = go(s, op_body, &b); /* arrives after the clear */
    ASSERT_OK(weft_run(s));
    ASSERT_OK(a.r);
    ASSERT_ERR(b.r, -ETIMEDOUT);
    ASSERT_EQ(b.t, WEFT_MSEC(50));
    reap(ca);
    reap(cb);
    ASSERT_OK(weft_event_free(e));
    ASSERT_OK(weft_sched_free(s));
}

TEST(event_wait_times_out)
{
    weft_sched *s = new_manual();
    weft_event *e;
    ASSERT_OK(weft_event_new(s, &e));
    struct op a = mkop(EV_WAIT, e, WEFT_MSEC(10), 0);
    weft_coro *co = go(s, op_body, &a);
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(a.r, -ETIMEDOUT);
    ASSERT_EQ(a.t, WEFT_MSEC(10));
    ASSERT_EQ(weft_event_set(e), 0); /* the waiter left the list */
    reap(co);
    ASSERT_OK(weft_event_free(e));
    ASSERT_OK(weft_sched_free(s));
}

TEST(event_waiters_ended_or_raised)
{
    weft_sched *s = new_manual();
    weft_event *e;
    ASSERT_OK(weft_event_new(s, &e));
    struct op a = mkop(EV_WAIT, e, -1, 0);
    struct op b = mkop(EV_WAIT, e, -1, 0);
    struct op c = mkop(EV_WAIT, e, -1, 0);
    weft_coro *ca = go(s, op_body, &a);
    weft_coro *cb = go(s, op_body, &b);
    weft_coro *cc = go(s, op_body, &c);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_end(ca));
    ASSERT_OK(weft_raise(cb, -EINTR));
    ASSERT_EQ(weft_event_set(e), 1); /* only c was still waiting */
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(a.r, -ECANCELED);
    ASSERT_ERR(b.r, -EINTR);
    ASSERT_OK(c.r);
    reap(ca);
    reap(cb);
    reap(cc);
    ASSERT_OK(weft_event_free(e));
    ASSERT_OK(weft_sched_free(s));
}

TEST(event_free_with_waiters_is_refused)
{
    weft_sched *s = new_manual();
    weft_event *e;
    ASSERT_OK(weft_event_new(s, &e));
    struct op a = mkop(EV_WAIT, e, -1, 0);
    weft_coro *co = go(s, op_body, &a);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_ERR(weft_event_free(e), -EBUSY);
    ASSERT_EQ(weft_event_set(e), 1);
    ASSERT_OK(weft_run(s));
    reap(co);
    ASSERT_OK(weft_event_free(e));
    ASSERT_OK(weft_sched_free(s));
}

static int ended_event_wait(void *arg)
{
    ASSERT_OK(weft_end(weft_self()));
    ASSERT_ERR(weft_event_wait(arg, -1), -ECANCELED); /* even when set */
    return 0;
}

static int pending_raise_event_wait(void *arg)
{
    ASSERT_OK(weft_raise(weft_self(), -EINTR));
    ASSERT_ERR(weft_event_wait(arg, -1), -EINTR);
    ASSERT_OK(weft_event_wait(arg, -1)); /* delivered once */
    ASSERT_ERR(weft_event_wait(arg, -2), -EINVAL);
    return 0;
}

TEST(event_checks_cancellation_first)
{
    weft_sched *s = new_manual();
    weft_event *e;
    ASSERT_OK(weft_event_new(s, &e));
    ASSERT_OK(weft_event_set(e));
    weft_coro *a = go(s, ended_event_wait, e);
    weft_coro *b = go(s, pending_raise_event_wait, e);
    ASSERT_OK(weft_run(s));
    int st;
    ASSERT_OK(weft_reap(a, &st));
    reap(b);
    ASSERT_OK(weft_event_free(e));
    ASSERT_OK(weft_sched_free(s));
}

/* ======================================================================
 * Mutex
 * ====================================================================== */

TEST(mutex_bad_arguments)
{
    weft_sched *s = new_manual();
    weft_mutex *m;
    ASSERT_ERR(weft_mutex_new(s, NULL), -EINVAL);
    ASSERT_ERR(weft_mutex_free(NULL), -EINVAL);
    ASSERT_ERR(weft_mutex_lock(NULL, -1), -EINVAL);
    ASSERT_ERR(weft_mutex_trylock(NULL), -EINVAL);
    ASSERT_ERR(weft_mutex_unlock(NULL), -EINVAL);
    ASSERT_ERR(weft_mutex_locked(NULL), -EINVAL);
    ASSERT_OK(weft_mutex_new(s, &m));
    /* Outside a coroutine: nobody to own it. */
    ASSERT_ERR(weft_mutex_lock(m, -1), -EINVAL);
    ASSERT_ERR(weft_mutex_trylock(m), -EINVAL);
    ASSERT_ERR(weft_mutex_unlock(m), -EPERM);
    ASSERT_EQ(weft_mutex_locked(m), 0);
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

static int mutex_basics(void *arg)
{
    weft_mutex *m = arg;
    ASSERT_ERR(weft_mutex_unlock(m), -EPERM); /* not locked */
    ASSERT_ERR(weft_mutex_lock(m, -2), -EINVAL);
    ASSERT_OK(weft_mutex_lock(m, -1));
    ASSERT_EQ(weft_mutex_locked(m), 1);
    ASSERT_ERR(weft_mutex_lock(m, -1), -EDEADLK);
    ASSERT_ERR(weft_mutex_trylock(m), -EBUSY);
    ASSERT_OK(weft_mutex_unlock(m));
    ASSERT_EQ(weft_mutex_locked(m), 0);
    ASSERT_ERR(weft_mutex_unlock(m), -EPERM);
    ASSERT_OK(weft_mutex_trylock(m));
    ASSERT_EQ(weft_mutex_locked(m), 1);
    ASSERT_OK(weft_mutex_unlock(m));
    ASSERT_OK(weft_mutex_lock(m, 0)); /* free: a past deadline is fine */
    ASSERT_OK(weft_mutex_unlock(m));
    return 0;
}

TEST(mutex_lock_unlock)
{
    weft_sched *s = new_manual();
    weft_mutex *m;
    ASSERT_OK(weft_mutex_new(s, &m));
    weft_coro *co = go(s, mutex_basics, m);
    ASSERT_OK(weft_run(s));
    reap(co);
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

static int lock_and_keep(void *arg)
{
    ASSERT_OK(weft_mutex_lock(arg, -1));
    return 0;
}

static int unlock_not_mine(void *arg)
{
    ASSERT_ERR(weft_mutex_unlock(arg), -EPERM);
    ASSERT_ERR(weft_mutex_trylock(arg), -EBUSY);
    return 0;
}

TEST(mutex_unlock_by_non_owner_is_refused)
{
    weft_sched *s = new_manual();
    weft_mutex *m;
    ASSERT_OK(weft_mutex_new(s, &m));
    weft_coro *a = go(s, lock_and_keep, m);
    weft_coro *b = go(s, unlock_not_mine, m);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(weft_mutex_locked(m), 1); /* owner finished: stays locked */
    ASSERT_ERR(weft_mutex_unlock(m), -EPERM);
    reap(a);
    reap(b);
    ASSERT_OK(weft_mutex_free(m)); /* locked, nobody waiting: allowed */
    ASSERT_OK(weft_sched_free(s));
}

/* Holds the mutex, then unlocks it and immediately tries to take it back:
 * ownership already went to the first waiter. */
struct holder {
    weft_mutex *m;
    int64_t until;
    int retake; /* trylock result right after unlock */
};

static int hold_then_retake(void *arg)
{
    struct holder *h = arg;
    ASSERT_OK(weft_mutex_lock(h->m, -1));
    trace_add('H');
    ASSERT_OK(weft_sleep_until(h->until));
    ASSERT_OK(weft_mutex_unlock(h->m));
    h->retake = weft_mutex_trylock(h->m);
    return 0;
}

TEST(mutex_fifo_hand_off_without_barging)
{
    weft_sched *s = new_manual();
    weft_mutex *m;
    trace_reset();
    ASSERT_OK(weft_mutex_new(s, &m));
    struct holder h = {m, WEFT_MSEC(10), 0};
    struct op o[3] = {mkop(MX_LOCK, m, -1, 'a'), mkop(MX_LOCK, m, -1, 'b'),
                      mkop(MX_LOCK, m, -1, 'c')};
    for (int i = 0; i < 3; i++)
        o[i].hold = WEFT_MSEC(1);
    weft_coro *ch = go(s, hold_then_retake, &h);
    weft_coro *co[3];
    for (int i = 0; i < 3; i++)
        co[i] = go(s, op_body, &o[i]);
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(h.retake, -EBUSY); /* no barging */
    ASSERT_STR_EQ(trace, "Habc");
    ASSERT_EQ(o[0].t, WEFT_MSEC(10));
    ASSERT_EQ(o[1].t, WEFT_MSEC(11));
    ASSERT_EQ(o[2].t, WEFT_MSEC(12));
    ASSERT_EQ(weft_mutex_locked(m), 0);
    reap(ch);
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(o[i].r);
        reap(co[i]);
    }
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

/* A late arrival calls lock while the next owner is woken but has not run
 * yet: it must queue behind, not take the mutex. */
struct unlock_then_arrive {
    weft_mutex *m;
    weft_sched *s;
    struct op *late;
    weft_coro *late_co;
};

static int unlock_and_spawn(void *arg)
{
    struct unlock_then_arrive *u = arg;
    ASSERT_OK(weft_mutex_lock(u->m, -1));
    trace_add('H');
    ASSERT_OK(weft_yield()); /* let the waiter queue */
    ASSERT_OK(weft_mutex_unlock(u->m));
    struct weft_spawn_opts so;
    memset(&so, 0, sizeof so);
    so.first = 1; /* runs before the woken waiter */
    ASSERT_OK(weft_spawn(u->s, op_body, u->late, &so, &u->late_co));
    return 0;
}

TEST(mutex_late_arrival_queues_behind_woken_waiter)
{
    weft_sched *s = new_manual();
    weft_mutex *m;
    trace_reset();
    ASSERT_OK(weft_mutex_new(s, &m));
    struct op w = mkop(MX_LOCK, m, -1, 'w');
    struct op late = mkop(MX_LOCK, m, -1, 'l');
    w.hold = 0;
    late.hold = 0;
    struct unlock_then_arrive u = {m, s, &late, NULL};
    weft_coro *ch = go(s, unlock_and_spawn, &u);
    weft_coro *cw = go(s, op_body, &w);
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "Hwl");
    ASSERT_OK(w.r);
    ASSERT_OK(late.r);
    reap(ch);
    reap(cw);
    reap(u.late_co);
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

TEST(mutex_lock_times_out)
{
    weft_sched *s = new_manual();
    weft_mutex *m;
    trace_reset();
    ASSERT_OK(weft_mutex_new(s, &m));
    struct holder h = {m, WEFT_MSEC(20), 0};
    struct op a = mkop(MX_LOCK, m, WEFT_MSEC(5), 'a');
    struct op b = mkop(MX_LOCK, m, -1, 'b');
    b.hold = 0;
    weft_coro *ch = go(s, hold_then_retake, &h);
    weft_coro *ca = go(s, op_body, &a);
    weft_coro *cb = go(s, op_body, &b);
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(a.r, -ETIMEDOUT);
    ASSERT_EQ(a.t, WEFT_MSEC(5));
    ASSERT_OK(b.r);
    ASSERT_EQ(b.t, WEFT_MSEC(20));
    ASSERT_STR_EQ(trace, "Hab");
    reap(ch);
    reap(ca);
    reap(cb);
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

/* The holder's unlock and a waiter's deadline fall at the same instant,
 * the deadline first: the hand-off must skip the timed-out waiter. */
TEST(mutex_unlock_racing_a_timed_out_waiter_goes_to_the_next)
{
    weft_sched *s = new_manual();
    weft_mutex *m;
    trace_reset();
    ASSERT_OK(weft_mutex_new(s, &m));
    struct holder h = {m, WEFT_MSEC(10), 0};
    struct op a = mkop(MX_LOCK, m, WEFT_MSEC(10), 'a');
    struct op b = mkop(MX_LOCK, m, -1, 'b');
    b.hold = 0;
    weft_coro *ch = go(s, hold_then_retake, &h); /* its sleep timer: first */
    weft_coro *ca = go(s, op_body, &a);
    weft_coro *cb = go(s, op_body, &b);
    ASSERT_OK(weft_run(s));
    /* At 10 ms the holder's sleep ends, then a's deadline fires; the
     * holder runs next and unlocks: b gets the mutex. */
    ASSERT_ERR(a.r, -ETIMEDOUT);
    ASSERT_OK(b.r);
    ASSERT_EQ(b.t, WEFT_MSEC(10));
    ASSERT_EQ(weft_mutex_locked(m), 0);
    reap(ch);
    reap(ca);
    reap(cb);
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

/* The mutex is handed over before the waiter's deadline: the deadline is
 * disarmed by the hand-off and never fires later. */
TEST(mutex_hand_off_disarms_the_deadline)
{
    weft_sched *s = new_manual();
    weft_mutex *m;
    trace_reset();
    ASSERT_OK(weft_mutex_new(s, &m));
    struct holder h = {m, WEFT_MSEC(9), 0};
    struct op a = mkop(MX_LOCK, m, WEFT_MSEC(10), 'a');
    a.hold = WEFT_MSEC(5); /* holds it past its old deadline */
    weft_coro *ch = go(s, hold_then_retake, &h);
    weft_coro *ca = go(s, op_body, &a);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(a.r);
    ASSERT_EQ(a.t, WEFT_MSEC(9));
    ASSERT_OK(a.after); /* no stray -ETIMEDOUT afterwards */
    ASSERT_EQ(weft_now(s), WEFT_MSEC(14));
    ASSERT_EQ(weft_mutex_locked(m), 0);
    reap(ch);
    reap(ca);
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

TEST(mutex_woken_waiter_ended_before_running_still_owns_it)
{
    weft_sched *s = new_manual();
    weft_mutex *m;
    trace_reset();
    ASSERT_OK(weft_mutex_new(s, &m));
    struct holder h = {m, WEFT_MSEC(10), 0};
    struct op a = mkop(MX_LOCK, m, -1, 'a');
    struct op b = mkop(MX_LOCK, m, -1, 'b');
    a.hold = 0; /* unlock (non-blocking: works when ended) */
    b.hold = 0;
    weft_coro *ch = go(s, hold_then_retake, &h);
    weft_coro *ca = go(s, op_body, &a);
    weft_coro *cb = go(s, op_body, &b);
    ASSERT_EQ(weft_run_once(s, 0), 1);  /* everyone blocks */
    ASSERT_EQ(weft_run_once(s, -1), 1); /* clock to 10 ms: holder ready */
    ASSERT_EQ(weft_now(s), WEFT_MSEC(10));
    ASSERT_EQ(weft_run_once(s, 0), 1); /* the holder runs: hands to a */
    ASSERT_ERR(h.retake, -EBUSY);
    ASSERT_STR_EQ(trace, "H");
    ASSERT_EQ(weft_mutex_locked(m), 1);
    ASSERT_OK(weft_end(ca));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(a.r);            /* the hand-off stands */
    ASSERT_ERR(a.after, -ECANCELED);
    ASSERT_OK(b.r);            /* and a's unlock passed it on */
    ASSERT_STR_EQ(trace, "Hab");
    reap(ch);
    reap(ca);
    reap(cb);
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

TEST(mutex_waiter_ended_or_raised_leaves_the_queue)
{
    weft_sched *s = new_manual();
    weft_mutex *m;
    trace_reset();
    ASSERT_OK(weft_mutex_new(s, &m));
    struct holder h = {m, WEFT_MSEC(10), 0};
    struct op a = mkop(MX_LOCK, m, -1, 'a');
    struct op b = mkop(MX_LOCK, m, -1, 'b');
    struct op c = mkop(MX_LOCK, m, -1, 'c');
    c.hold = 0;
    weft_coro *ch = go(s, hold_then_retake, &h);
    weft_coro *ca = go(s, op_body, &a);
    weft_coro *cb = go(s, op_body, &b);
    weft_coro *cc = go(s, op_body, &c);
    ASSERT_OK(weft_raise_in(ca, -EINTR, WEFT_MSEC(2)));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_end(cb));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(a.r, -EINTR);
    ASSERT_ERR(b.r, -ECANCELED);
    ASSERT_OK(c.r);
    ASSERT_EQ(c.t, WEFT_MSEC(10));
    ASSERT_STR_EQ(trace, "Hbac");
    reap(ch);
    reap(ca);
    reap(cb);
    reap(cc);
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

TEST(mutex_free_with_waiters_is_refused)
{
    weft_sched *s = new_manual();
    weft_mutex *m;
    trace_reset();
    ASSERT_OK(weft_mutex_new(s, &m));
    struct holder h = {m, WEFT_MSEC(1), 0};
    struct op a = mkop(MX_LOCK, m, -1, 0);
    a.hold = 0;
    weft_coro *ch = go(s, hold_then_retake, &h);
    weft_coro *ca = go(s, op_body, &a);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_ERR(weft_mutex_free(m), -EBUSY);
    ASSERT_OK(weft_run(s));
    reap(ch);
    reap(ca);
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

static int ended_lock(void *arg)
{
    weft_mutex *m = arg;
    ASSERT_OK(weft_end(weft_self()));
    ASSERT_ERR(weft_mutex_lock(m, -1), -ECANCELED); /* even when free */
    ASSERT_OK(weft_mutex_trylock(m));               /* cleanup still works */
    ASSERT_OK(weft_mutex_unlock(m));
    return 0;
}

TEST(mutex_ended_coroutine_cannot_lock_but_can_trylock)
{
    weft_sched *s = new_manual();
    weft_mutex *m;
    ASSERT_OK(weft_mutex_new(s, &m));
    weft_coro *co = go(s, ended_lock, m);
    ASSERT_OK(weft_run(s));
    reap(co);
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

/* A lock with a counter: several coroutines increment it with yields in
 * the critical section; the mutex keeps them apart. */
struct counter {
    weft_mutex *m;
    int value;
    int inside;
    int max_inside;
};

static int increment(void *arg)
{
    struct counter *c = arg;
    for (int i = 0; i < 50; i++) {
        ASSERT_OK(weft_mutex_lock(c->m, -1));
        c->inside++;
        if (c->inside > c->max_inside)
            c->max_inside = c->inside;
        int v = c->value;
        ASSERT_OK(weft_yield());
        c->value = v + 1;
        c->inside--;
        ASSERT_OK(weft_mutex_unlock(c->m));
    }
    return 0;
}

TEST(mutex_mutual_exclusion)
{
    weft_sched *s = new_manual();
    struct counter c;
    memset(&c, 0, sizeof c);
    ASSERT_OK(weft_mutex_new(s, &c.m));
    weft_coro *co[4];
    for (int i = 0; i < 4; i++)
        co[i] = go(s, increment, &c);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(c.value, 200);
    ASSERT_EQ(c.max_inside, 1);
    for (int i = 0; i < 4; i++)
        reap(co[i]);
    ASSERT_OK(weft_mutex_free(c.m));
    ASSERT_OK(weft_sched_free(s));
}

/* ======================================================================
 * Condition variable
 * ====================================================================== */

static int lock_and_sleep(void *arg)
{
    ASSERT_OK(weft_mutex_lock(arg, -1));
    ASSERT_OK(weft_sleep_for(WEFT_MSEC(1)));
    ASSERT_OK(weft_mutex_unlock(arg));
    return 0;
}

static int cond_outside_owner(void *arg)
{
    void **p = arg;
    weft_cond *c = p[0];
    weft_mutex *m = p[1];
    ASSERT_ERR(weft_cond_wait(c, m, -1), -EPERM); /* not locked */
    ASSERT_ERR(weft_cond_wait(c, NULL, -1), -EINVAL);
    ASSERT_ERR(weft_cond_wait(NULL, m, -1), -EINVAL);
    ASSERT_OK(weft_yield()); /* now another coroutine holds m */
    ASSERT_ERR(weft_cond_wait(c, m, -1), -EPERM);
    ASSERT_OK(weft_mutex_lock(m, -1));
    ASSERT_ERR(weft_cond_wait(c, m, -2), -EINVAL);
    ASSERT_EQ(weft_mutex_locked(m), 1);
    ASSERT_OK(weft_mutex_unlock(m));
    return 0;
}

TEST(cond_bad_arguments)
{
    weft_sched *s = new_manual();
    weft_cond *c;
    weft_mutex *m;
    ASSERT_ERR(weft_cond_new(s, NULL), -EINVAL);
    ASSERT_ERR(weft_cond_free(NULL), -EINVAL);
    ASSERT_ERR(weft_cond_signal(NULL), -EINVAL);
    ASSERT_ERR(weft_cond_broadcast(NULL), -EINVAL);
    ASSERT_OK(weft_cond_new(s, &c));
    ASSERT_OK(weft_mutex_new(s, &m));
    ASSERT_ERR(weft_cond_wait(c, m, -1), -EINVAL); /* outside a coroutine */
    ASSERT_EQ(weft_cond_signal(c), 0);
    ASSERT_EQ(weft_cond_broadcast(c), 0);
    void *p[2] = {c, m};
    weft_coro *co = go(s, cond_outside_owner, p);
    weft_coro *holder = go(s, lock_and_sleep, m);
    ASSERT_OK(weft_run(s));
    reap(co);
    reap(holder);
    ASSERT_OK(weft_cond_free(c));
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

static int cond_mismatch(void *arg)
{
    void **p = arg;
    /* c of s2, m of s: different schedulers. */
    ASSERT_OK(weft_mutex_lock(p[1], -1));
    ASSERT_ERR(weft_cond_wait(p[0], p[1], -1), -EINVAL);
    ASSERT_OK(weft_mutex_unlock(p[1]));
    return 0;
}

TEST(cond_and_mutex_of_different_schedulers)
{
    weft_sched *s = new_manual(), *s2 = new_manual();
    weft_cond *c2;
    weft_mutex *m;
    ASSERT_OK(weft_cond_new(s2, &c2));
    ASSERT_OK(weft_mutex_new(s, &m));
    void *p[2] = {c2, m};
    weft_coro *co = go(s, cond_mismatch, p);
    ASSERT_OK(weft_run(s));
    reap(co);
    ASSERT_OK(weft_cond_free(c2));
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
    ASSERT_OK(weft_sched_free(s2));
}

TEST(cond_signal_wakes_one_in_fifo_order_broadcast_the_rest)
{
    weft_sched *s = new_manual();
    weft_cond *c;
    weft_mutex *m;
    trace_reset();
    ASSERT_OK(weft_cond_new(s, &c));
    ASSERT_OK(weft_mutex_new(s, &m));
    struct op o[4];
    weft_coro *co[4];
    for (int i = 0; i < 4; i++) {
        o[i] = mkop(CV_WAIT, c, -1, (char)('a' + i));
        o[i].m = m;
        co[i] = go(s, op_body, &o[i]);
    }
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(weft_mutex_locked(m), 0); /* every waiter released it */
    ASSERT_EQ(weft_cond_signal(c), 1);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_STR_EQ(trace, "a");
    ASSERT_EQ(weft_cond_broadcast(c), 3);
    ASSERT_EQ(weft_cond_broadcast(c), 0);
    ASSERT_EQ(weft_cond_signal(c), 0);
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "abcd");
    for (int i = 0; i < 4; i++) {
        ASSERT_OK(o[i].r);
        ASSERT_EQ(o[i].owned, 1);
        reap(co[i]);
    }
    ASSERT_OK(weft_cond_free(c));
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

/* Takes the mutex at `from`, keeps it until `until`, signalling c (if
 * set) just before unlocking. */
struct blocker {
    weft_mutex *m;
    weft_cond *c;
    int64_t from, until;
    int signal;
};

static int block_mutex(void *arg)
{
    struct blocker *b = arg;
    ASSERT_OK(weft_sleep_until(b->from));
    ASSERT_OK(weft_mutex_lock(b->m, -1));
    trace_add('B');
    ASSERT_OK(weft_sleep_until(b->until));
    if (b->signal)
        ASSERT_EQ(weft_cond_signal(b->c), 1);
    ASSERT_OK(weft_mutex_unlock(b->m));
    return 0;
}

TEST(cond_wait_timeout_reacquires_the_mutex)
{
    weft_sched *s = new_manual();
    weft_cond *c;
    weft_mutex *m;
    trace_reset();
    ASSERT_OK(weft_cond_new(s, &c));
    ASSERT_OK(weft_mutex_new(s, &m));
    struct op w = mkop(CV_WAIT, c, WEFT_MSEC(5), 'w');
    w.m = m;
    struct blocker b = {m, c, WEFT_MSEC(1), WEFT_MSEC(20), 0};
    weft_coro *cw = go(s, op_body, &w);
    weft_coro *cb = go(s, block_mutex, &b);
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(w.r, -ETIMEDOUT);
    ASSERT_EQ(w.t, WEFT_MSEC(20)); /* only once the mutex was free */
    ASSERT_EQ(w.owned, 1);
    ASSERT_STR_EQ(trace, "Bw");
    reap(cw);
    reap(cb);
    ASSERT_OK(weft_cond_free(c));
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

TEST(cond_wait_ended_reacquires_the_mutex)
{
    weft_sched *s = new_manual();
    weft_cond *c;
    weft_mutex *m;
    trace_reset();
    ASSERT_OK(weft_cond_new(s, &c));
    ASSERT_OK(weft_mutex_new(s, &m));
    struct op w = mkop(CV_WAIT, c, -1, 'w');
    w.m = m;
    struct blocker b = {m, c, WEFT_MSEC(1), WEFT_MSEC(20), 0};
    weft_coro *cw = go(s, op_body, &w);
    weft_coro *cb = go(s, block_mutex, &b);
    ASSERT_OK(weft_raise_in(cw, -EINTR, WEFT_MSEC(2))); /* into the wait */
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(w.r, -EINTR);
    ASSERT_EQ(w.t, WEFT_MSEC(20));
    ASSERT_EQ(w.owned, 1);
    reap(cw);
    /* Now end it while it waits for the signal. */
    trace_reset();
    struct op w2 = mkop(CV_WAIT, c, -1, 'v');
    w2.m = m;
    struct blocker b2 = {m, c, WEFT_MSEC(21), WEFT_MSEC(30), 0};
    cw = go(s, op_body, &w2);
    weft_coro *cb2 = go(s, block_mutex, &b2);
    while (trace[0] != 'B')
        ASSERT_EQ(weft_run_once(s, -1), 1);
    ASSERT_OK(weft_end(cw));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(w2.r, -ECANCELED);
    ASSERT_EQ(w2.t, WEFT_MSEC(30));
    ASSERT_EQ(w2.owned, 1); /* unlocked by its body despite the end */
    ASSERT_ERR(w2.after, -ECANCELED);
    reap(cw);
    reap(cb);
    reap(cb2);
    ASSERT_OK(weft_cond_free(c));
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

/* Signalled while another holds the mutex, then raised and ended while it
 * re-acquires: it still returns 0, owning the mutex, in its FIFO place
 * ahead of a later locker; the raise is kept for the next call. */
struct late_lock {
    weft_mutex *m;
    int64_t at;
    char tag;
};

static int lock_at(void *arg)
{
    struct late_lock *l = arg;
    if (l->at > 0)
        ASSERT_OK(weft_sleep_until(l->at));
    ASSERT_OK(weft_mutex_lock(l->m, -1));
    trace_add(l->tag);
    ASSERT_OK(weft_mutex_unlock(l->m));
    return 0;
}

TEST(cond_reacquire_is_not_interruptible_and_keeps_its_place)
{
    weft_sched *s = new_manual();
    weft_cond *c;
    weft_mutex *m;
    trace_reset();
    ASSERT_OK(weft_cond_new(s, &c));
    ASSERT_OK(weft_mutex_new(s, &m));
    struct op w = mkop(CV_WAIT, c, -1, 'w');
    w.m = m;
    /* The blocker holds the mutex from 1 ms to 20 ms. */
    struct blocker b = {m, c, WEFT_MSEC(1), WEFT_MSEC(20), 0};
    /* x locks (and queues) after w has queued to re-acquire. */
    struct late_lock x = {m, 0, 'x'};
    weft_coro *cw = go(s, op_body, &w);
    weft_coro *cb = go(s, block_mutex, &b);
    ASSERT_EQ(weft_run_once(s, 0), 1); /* w waits on c; blocker sleeps */
    ASSERT_OK(weft_clock_set(s, WEFT_MSEC(1)));
    while (trace[0] != 'B')
        ASSERT_EQ(weft_run_once(s, 0), 1);
    /* The blocker holds m.  Signal w: it queues for m. */
    ASSERT_EQ(weft_cond_signal(c), 1);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(w.r, 1); /* still re-acquiring */
    weft_coro *cx = go(s, lock_at, &x);
    ASSERT_EQ(weft_run_once(s, 0), 1); /* x queues behind w */
    ASSERT_OK(weft_raise(cw, -EINTR)); /* interrupts the re-acquire */
    ASSERT_EQ(weft_run_once(s, 0), 1); /* w re-queues, in its place */
    ASSERT_OK(weft_raise(cw, -EPIPE)); /* again... */
    ASSERT_OK(weft_raise(cw, -EIO));   /* ...and once more while ready */
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(w.r, 1);
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "Bwx");
    ASSERT_OK(w.r);
    ASSERT_EQ(w.owned, 1);
    ASSERT_ERR(w.after, -EIO); /* the latest raise, kept */
    reap(cw);
    reap(cb);
    reap(cx);
    ASSERT_OK(weft_cond_free(c));
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

/* A waiter times out at the instant of a signal, its deadline first: the
 * signal goes to the next waiter. */
static void signal_cb(weft_timer *t, void *arg)
{
    (void)t;
    ASSERT_EQ(weft_cond_signal(arg), 1);
}

TEST(cond_signal_racing_a_timed_out_waiter_goes_to_the_next)
{
    weft_sched *s = new_manual();
    weft_cond *c;
    weft_mutex *m;
    weft_timer *t;
    trace_reset();
    ASSERT_OK(weft_cond_new(s, &c));
    ASSERT_OK(weft_mutex_new(s, &m));
    struct op a = mkop(CV_WAIT, c, WEFT_MSEC(10), 'a');
    struct op b = mkop(CV_WAIT, c, WEFT_SEC(1), 'b');
    a.m = b.m = m;
    weft_coro *ca = go(s, op_body, &a);
    weft_coro *cb = go(s, op_body, &b);
    ASSERT_EQ(weft_run_once(s, 0), 1); /* both wait; deadlines armed */
    ASSERT_OK(weft_timer_new(s, signal_cb, c, &t));
    ASSERT_OK(weft_timer_start_at(t, WEFT_MSEC(10), 0));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(a.r, -ETIMEDOUT);
    ASSERT_OK(b.r); /* the signal was not swallowed by a */
    ASSERT_EQ(b.t, WEFT_MSEC(10));
    reap(ca);
    reap(cb);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_cond_free(c));
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

static int ended_cond_wait(void *arg)
{
    void **p = arg;
    ASSERT_OK(weft_mutex_lock(p[1], -1));
    ASSERT_OK(weft_end(weft_self()));
    ASSERT_ERR(weft_cond_wait(p[0], p[1], -1), -ECANCELED);
    ASSERT_EQ(weft_mutex_locked(p[1]), 1); /* never released */
    ASSERT_OK(weft_mutex_unlock(p[1]));
    return 0;
}

TEST(cond_wait_in_ended_coroutine_keeps_the_mutex)
{
    weft_sched *s = new_manual();
    weft_cond *c;
    weft_mutex *m;
    ASSERT_OK(weft_cond_new(s, &c));
    ASSERT_OK(weft_mutex_new(s, &m));
    void *p[2] = {c, m};
    weft_coro *co = go(s, ended_cond_wait, p);
    ASSERT_OK(weft_run(s));
    reap(co);
    ASSERT_OK(weft_cond_free(c));
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

TEST(cond_free_with_waiters_is_refused)
{
    weft_sched *s = new_manual();
    weft_cond *c;
    weft_mutex *m;
    ASSERT_OK(weft_cond_new(s, &c));
    ASSERT_OK(weft_mutex_new(s, &m));
    struct op w = mkop(CV_WAIT, c, -1, 0);
    w.m = m;
    weft_coro *co = go(s, op_body, &w);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_ERR(weft_cond_free(c), -EBUSY);
    ASSERT_EQ(weft_cond_signal(c), 1);
    ASSERT_OK(weft_run(s));
    reap(co);
    ASSERT_OK(weft_cond_free(c));
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

/* Producer/consumer on a one-slot box with a predicate loop. */
struct box {
    weft_mutex *m;
    weft_cond *not_empty, *not_full;
    int full, value, sum;
};

static int box_producer(void *arg)
{
    struct box *b = arg;
    for (int i = 1; i <= 20; i++) {
        ASSERT_OK(weft_mutex_lock(b->m, -1));
        while (b->full)
            ASSERT_OK(weft_cond_wait(b->not_full, b->m, -1));
        b->value = i;
        b->full = 1;
        weft_cond_signal(b->not_empty);
        ASSERT_OK(weft_mutex_unlock(b->m));
    }
    return 0;
}

static int box_consumer(void *arg)
{
    struct box *b = arg;
    for (int i = 0; i < 10; i++) {
        ASSERT_OK(weft_mutex_lock(b->m, -1));
        while (!b->full)
            ASSERT_OK(weft_cond_wait(b->not_empty, b->m, -1));
        b->sum += b->value;
        b->full = 0;
        weft_cond_signal(b->not_full);
        ASSERT_OK(weft_mutex_unlock(b->m));
    }
    return 0;
}

TEST(cond_producer_consumer)
{
    weft_sched *s = new_manual();
    struct box b;
    memset(&b, 0, sizeof b);
    ASSERT_OK(weft_mutex_new(s, &b.m));
    ASSERT_OK(weft_cond_new(s, &b.not_empty));
    ASSERT_OK(weft_cond_new(s, &b.not_full));
    weft_coro *c1 = go(s, box_consumer, &b);
    weft_coro *c2 = go(s, box_consumer, &b);
    weft_coro *p = go(s, box_producer, &b);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(b.sum, 210);
    reap(c1);
    reap(c2);
    reap(p);
    ASSERT_OK(weft_cond_free(b.not_empty));
    ASSERT_OK(weft_cond_free(b.not_full));
    ASSERT_OK(weft_mutex_free(b.m));
    ASSERT_OK(weft_sched_free(s));
}

/* ======================================================================
 * Semaphore
 * ====================================================================== */

TEST(sem_bad_arguments)
{
    weft_sched *s = new_manual();
    weft_sem *sem;
    ASSERT_ERR(weft_sem_new(s, 0, NULL), -EINVAL);
    ASSERT_ERR(weft_sem_new(s, -1, &sem), -EINVAL);
    ASSERT_ERR(weft_sem_free(NULL), -EINVAL);
    ASSERT_ERR(weft_sem_acquire(NULL, -1), -EINVAL);
    ASSERT_ERR(weft_sem_try_acquire(NULL), -EINVAL);
    ASSERT_ERR(weft_sem_release(NULL), -EINVAL);
    ASSERT_ERR(weft_sem_value(NULL), -EINVAL);
    ASSERT_OK(weft_sem_new(s, 1, &sem));
    ASSERT_ERR(weft_sem_acquire(sem, -1), -EINVAL); /* outside */
    ASSERT_EQ(weft_sem_value(sem), 1);
    ASSERT_OK(weft_sem_free(sem));
    ASSERT_OK(weft_sched_free(s));
}

TEST(sem_counts)
{
    weft_sched *s = new_manual();
    weft_sem *sem;
    ASSERT_OK(weft_sem_new(s, 2, &sem));
    ASSERT_EQ(weft_sem_value(sem), 2);
    ASSERT_OK(weft_sem_try_acquire(sem));
    ASSERT_OK(weft_sem_try_acquire(sem));
    ASSERT_ERR(weft_sem_try_acquire(sem), -EAGAIN);
    ASSERT_EQ(weft_sem_value(sem), 0);
    ASSERT_OK(weft_sem_release(sem));
    ASSERT_OK(weft_sem_release(sem));
    ASSERT_OK(weft_sem_release(sem)); /* no upper bound but INT64_MAX */
    ASSERT_EQ(weft_sem_value(sem), 3);
    ASSERT_OK(weft_sem_free(sem));
    ASSERT_OK(weft_sem_new(s, INT64_MAX, &sem));
    ASSERT_ERR(weft_sem_release(sem), -EOVERFLOW);
    ASSERT_EQ(weft_sem_value(sem), INT64_MAX);
    ASSERT_OK(weft_sem_free(sem));
    ASSERT_OK(weft_sched_free(s));
}

static int sem_acquire_free(void *arg)
{
    ASSERT_OK(weft_sem_acquire(arg, -1));
    ASSERT_OK(weft_sem_acquire(arg, 0)); /* available: past deadline ok */
    ASSERT_ERR(weft_sem_acquire(arg, -2), -EINVAL);
    return 0;
}

TEST(sem_acquire_available_permits)
{
    weft_sched *s = new_manual();
    weft_sem *sem;
    ASSERT_OK(weft_sem_new(s, 2, &sem));
    weft_coro *co = go(s, sem_acquire_free, sem);
    ASSERT_OK(weft_run(s));
    reap(co);
    ASSERT_EQ(weft_sem_value(sem), 0);
    ASSERT_OK(weft_sem_free(sem));
    ASSERT_OK(weft_sched_free(s));
}

TEST(sem_acquire_with_past_deadline_yields_then_times_out)
{
    weft_sched *s = new_manual();
    weft_sem *sem;
    int steps = 0;
    ASSERT_OK(weft_clock_set(s, WEFT_SEC(2)));
    ASSERT_OK(weft_sem_new(s, 0, &sem));
    struct op a = mkop(SEM_ACQ, sem, WEFT_SEC(1), 0);
    weft_coro *ca = go(s, op_body, &a);
    go(s, count_steps, &steps);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(a.r, 1); /* it yielded; its deadline fired after the turn */
    ASSERT_EQ(steps, 1);
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(a.r, -ETIMEDOUT);
    ASSERT_EQ(a.t, WEFT_SEC(2));
    reap(ca);
    ASSERT_OK(weft_sem_free(sem));
    ASSERT_OK(weft_sched_free(s));
}

TEST(sem_fifo_hand_off_without_barging)
{
    weft_sched *s = new_manual();
    weft_sem *sem;
    trace_reset();
    ASSERT_OK(weft_sem_new(s, 0, &sem));
    struct op o[3];
    weft_coro *co[3];
    for (int i = 0; i < 3; i++) {
        o[i] = mkop(SEM_ACQ, sem, -1, (char)('a' + i));
        co[i] = go(s, op_body, &o[i]);
    }
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_sem_release(sem));
    /* The permit went to a: nothing for a try, the count stays 0. */
    ASSERT_EQ(weft_sem_value(sem), 0);
    ASSERT_ERR(weft_sem_try_acquire(sem), -EAGAIN);
    ASSERT_OK(weft_sem_release(sem));
    ASSERT_OK(weft_sem_release(sem));
    ASSERT_OK(weft_sem_release(sem)); /* nobody waits: counted */
    ASSERT_EQ(weft_sem_value(sem), 1);
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "abc");
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(o[i].r);
        reap(co[i]);
    }
    ASSERT_OK(weft_sem_free(sem));
    ASSERT_OK(weft_sched_free(s));
}

TEST(sem_acquire_times_out)
{
    weft_sched *s = new_manual();
    weft_sem *sem;
    ASSERT_OK(weft_sem_new(s, 0, &sem));
    struct op a = mkop(SEM_ACQ, sem, WEFT_MSEC(3), 0);
    weft_coro *co = go(s, op_body, &a);
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(a.r, -ETIMEDOUT);
    ASSERT_EQ(a.t, WEFT_MSEC(3));
    ASSERT_OK(weft_sem_release(sem));
    ASSERT_EQ(weft_sem_value(sem), 1); /* nobody took it */
    reap(co);
    ASSERT_OK(weft_sem_free(sem));
    ASSERT_OK(weft_sched_free(s));
}

static void release_cb(weft_timer *t, void *arg)
{
    (void)t;
    ASSERT_OK(weft_sem_release(arg));
}

/* The release and a's deadline fall at the same instant, the deadline
 * first: the permit must go to b, not be lost with a. */
TEST(sem_release_racing_a_timed_out_waiter_goes_to_the_next)
{
    weft_sched *s = new_manual();
    weft_sem *sem;
    weft_timer *t;
    ASSERT_OK(weft_sem_new(s, 0, &sem));
    struct op a = mkop(SEM_ACQ, sem, WEFT_MSEC(10), 0);
    struct op b = mkop(SEM_ACQ, sem, -1, 0);
    weft_coro *ca = go(s, op_body, &a);
    weft_coro *cb = go(s, op_body, &b);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_timer_new(s, release_cb, sem, &t));
    ASSERT_OK(weft_timer_start_at(t, WEFT_MSEC(10), 0));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(a.r, -ETIMEDOUT);
    ASSERT_OK(b.r);
    ASSERT_EQ(b.t, WEFT_MSEC(10));
    ASSERT_EQ(weft_sem_value(sem), 0);
    reap(ca);
    reap(cb);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_sem_free(sem));
    ASSERT_OK(weft_sched_free(s));
}

/* Now the release comes first (its timer was started before a waited):
 * a gets the permit although its deadline is due at the same instant. */
TEST(sem_hand_off_beats_a_deadline_due_later_in_the_same_instant)
{
    weft_sched *s = new_manual();
    weft_sem *sem;
    weft_timer *t;
    ASSERT_OK(weft_sem_new(s, 0, &sem));
    ASSERT_OK(weft_timer_new(s, release_cb, sem, &t));
    ASSERT_OK(weft_timer_start_at(t, WEFT_MSEC(10), 0));
    struct op a = mkop(SEM_ACQ, sem, WEFT_MSEC(10), 0);
    weft_coro *ca = go(s, op_body, &a);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(a.r);
    ASSERT_EQ(weft_sem_value(sem), 0);
    reap(ca);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_sem_free(sem));
    ASSERT_OK(weft_sched_free(s));
}

TEST(sem_woken_waiter_raised_before_running_keeps_the_permit)
{
    weft_sched *s = new_manual();
    weft_sem *sem;
    ASSERT_OK(weft_sem_new(s, 0, &sem));
    struct op a = mkop(SEM_ACQ, sem, -1, 0);
    struct op b = mkop(SEM_ACQ, sem, -1, 0);
    weft_coro *ca = go(s, op_body, &a);
    weft_coro *cb = go(s, op_body, &b);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_sem_release(sem)); /* to a */
    ASSERT_OK(weft_raise(ca, -EINTR));
    ASSERT_OK(weft_end(ca));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(a.r);
    ASSERT_EQ(b.r, 1); /* b still waits: the permit was not passed on */
    ASSERT_EQ(weft_sem_value(sem), 0);
    ASSERT_OK(weft_sem_release(sem));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(b.r);
    ASSERT_ERR(a.after, -ECANCELED);
    reap(ca);
    reap(cb);
    ASSERT_OK(weft_sem_free(sem));
    ASSERT_OK(weft_sched_free(s));
}

TEST(sem_waiter_ended_leaves_the_queue)
{
    weft_sched *s = new_manual();
    weft_sem *sem;
    trace_reset();
    ASSERT_OK(weft_sem_new(s, 0, &sem));
    struct op a = mkop(SEM_ACQ, sem, -1, 'a');
    struct op b = mkop(SEM_ACQ, sem, -1, 'b');
    weft_coro *ca = go(s, op_body, &a);
    weft_coro *cb = go(s, op_body, &b);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_end(ca));
    ASSERT_OK(weft_sem_release(sem));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(a.r, -ECANCELED);
    ASSERT_OK(b.r);
    ASSERT_EQ(weft_sem_value(sem), 0);
    reap(ca);
    reap(cb);
    ASSERT_OK(weft_sem_free(sem));
    ASSERT_OK(weft_sched_free(s));
}

TEST(sem_free_with_waiters_is_refused)
{
    weft_sched *s = new_manual();
    weft_sem *sem;
    ASSERT_OK(weft_sem_new(s, 0, &sem));
    struct op a = mkop(SEM_ACQ, sem, -1, 0);
    weft_coro *co = go(s, op_body, &a);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_ERR(weft_sem_free(sem), -EBUSY);
    ASSERT_OK(weft_sem_release(sem));
    ASSERT_OK(weft_run(s));
    reap(co);
    ASSERT_OK(weft_sem_free(sem));
    ASSERT_OK(weft_sched_free(s));
}

/* Limit concurrency: 6 jobs, at most 2 at a time. */
struct job_pool {
    weft_sem *sem;
    int running, max_running, done;
};

static int job(void *arg)
{
    struct job_pool *p = arg;
    ASSERT_OK(weft_sem_acquire(p->sem, -1));
    p->running++;
    if (p->running > p->max_running)
        p->max_running = p->running;
    ASSERT_OK(weft_sleep_for(WEFT_MSEC(10)));
    p->running--;
    p->done++;
    ASSERT_OK(weft_sem_release(p->sem));
    return 0;
}

TEST(sem_limits_concurrency)
{
    weft_sched *s = new_manual();
    struct job_pool p;
    memset(&p, 0, sizeof p);
    ASSERT_OK(weft_sem_new(s, 2, &p.sem));
    for (int i = 0; i < 6; i++)
        ASSERT_OK(weft_spawn(s, job, &p, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(p.done, 6);
    ASSERT_EQ(p.max_running, 2);
    ASSERT_EQ(weft_now(s), WEFT_MSEC(30));
    ASSERT_EQ(weft_sem_value(p.sem), 2);
    ASSERT_OK(weft_sem_free(p.sem));
    ASSERT_OK(weft_sched_free(s));
}

/* ======================================================================
 * Wait group
 * ====================================================================== */

TEST(wg_bad_arguments)
{
    weft_sched *s = new_manual();
    weft_wg *wg;
    ASSERT_ERR(weft_wg_new(s, NULL), -EINVAL);
    ASSERT_ERR(weft_wg_free(NULL), -EINVAL);
    ASSERT_ERR(weft_wg_add(NULL, 1), -EINVAL);
    ASSERT_ERR(weft_wg_done(NULL), -EINVAL);
    ASSERT_ERR(weft_wg_wait(NULL, -1), -EINVAL);
    ASSERT_ERR(weft_wg_count(NULL), -EINVAL);
    ASSERT_OK(weft_wg_new(s, &wg));
    ASSERT_ERR(weft_wg_wait(wg, -1), -EINVAL); /* outside */
    ASSERT_ERR(weft_wg_done(wg), -EINVAL);     /* would be negative */
    ASSERT_ERR(weft_wg_add(wg, -5), -EINVAL);
    ASSERT_EQ(weft_wg_count(wg), 0);
    ASSERT_OK(weft_wg_add(wg, 2));
    ASSERT_ERR(weft_wg_add(wg, -3), -EINVAL);
    ASSERT_ERR(weft_wg_add(wg, INT64_MIN), -EINVAL);
    ASSERT_EQ(weft_wg_count(wg), 2);
    ASSERT_ERR(weft_wg_add(wg, INT64_MAX), -EOVERFLOW);
    ASSERT_EQ(weft_wg_count(wg), 2);
    ASSERT_OK(weft_wg_add(wg, 0));
    ASSERT_OK(weft_wg_add(wg, -2));
    ASSERT_EQ(weft_wg_count(wg), 0);
    ASSERT_OK(weft_wg_free(wg));
    ASSERT_OK(weft_sched_free(s));
}

struct worker {
    weft_wg *wg;
    int64_t delay;
};

static int wg_worker(void *arg)
{
    struct worker *w = arg;
    ASSERT_OK(weft_sleep_for(w->delay));
    ASSERT_OK(weft_wg_done(w->wg));
    return 0;
}

TEST(wg_waits_for_every_worker)
{
    weft_sched *s = new_manual();
    weft_wg *wg;
    trace_reset();
    ASSERT_OK(weft_wg_new(s, &wg));
    struct worker w[3] = {{wg, WEFT_MSEC(3)}, {wg, WEFT_MSEC(9)},
                          {wg, WEFT_MSEC(1)}};
    ASSERT_OK(weft_wg_add(wg, 3));
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_spawn(s, wg_worker, &w[i], NULL, NULL));
    struct op a = mkop(WG_WAIT, wg, -1, 'a');
    struct op b = mkop(WG_WAIT, wg, WEFT_MSEC(5), 'b');
    struct op c = mkop(WG_WAIT, wg, -1, 'c');
    weft_coro *ca = go(s, op_body, &a);
    weft_coro *cb = go(s, op_body, &b);
    weft_coro *cc = go(s, op_body, &c);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(a.r);
    ASSERT_EQ(a.t, WEFT_MSEC(9));
    ASSERT_ERR(b.r, -ETIMEDOUT);
    ASSERT_EQ(b.t, WEFT_MSEC(5));
    ASSERT_OK(c.r);
    ASSERT_STR_EQ(trace, "bac");
    ASSERT_EQ(weft_wg_count(wg), 0);
    reap(ca);
    reap(cb);
    reap(cc);
    ASSERT_OK(weft_wg_free(wg));
    ASSERT_OK(weft_sched_free(s));
}

struct wg_steps {
    weft_wg *wg;
    int *steps;
};

static int wg_wait_zero(void *arg)
{
    struct wg_steps *w = arg;
    int before = *w->steps;
    ASSERT_OK(weft_wg_wait(w->wg, -1));
    ASSERT_OK(weft_wg_wait(w->wg, 0));
    ASSERT_EQ(*w->steps, before);
    ASSERT_ERR(weft_wg_wait(w->wg, -7), -EINVAL);
    return 0;
}

TEST(wg_wait_at_zero_returns_at_once)
{
    weft_sched *s = new_manual();
    struct wg_steps w;
    int steps = 0;
    w.steps = &steps;
    ASSERT_OK(weft_wg_new(s, &w.wg));
    go(s, count_steps, &steps);
    weft_coro *co = go(s, wg_wait_zero, &w);
    ASSERT_OK(weft_run(s));
    reap(co);
    ASSERT_OK(weft_wg_free(w.wg));
    ASSERT_OK(weft_sched_free(s));
}

TEST(wg_woken_waiters_succeed_even_if_the_count_rises_again)
{
    weft_sched *s = new_manual();
    weft_wg *wg;
    ASSERT_OK(weft_wg_new(s, &wg));
    ASSERT_OK(weft_wg_add(wg, 1));
    struct op a = mkop(WG_WAIT, wg, -1, 0);
    weft_coro *ca = go(s, op_body, &a);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_wg_done(wg));
    ASSERT_OK(weft_wg_add(wg, 1));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(a.r);
    reap(ca);
    ASSERT_OK(weft_wg_done(wg));
    ASSERT_OK(weft_wg_free(wg));
    ASSERT_OK(weft_sched_free(s));
}

TEST(wg_free_with_waiters_is_refused)
{
    weft_sched *s = new_manual();
    weft_wg *wg;
    ASSERT_OK(weft_wg_new(s, &wg));
    ASSERT_OK(weft_wg_add(wg, 1));
    struct op a = mkop(WG_WAIT, wg, -1, 0);
    weft_coro *co = go(s, op_body, &a);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_ERR(weft_wg_free(wg), -EBUSY);
    ASSERT_OK(weft_end(co));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(a.r, -ECANCELED);
    reap(co);
    ASSERT_OK(weft_wg_free(wg)); /* count 1, nobody waiting */
    ASSERT_OK(weft_sched_free(s));
}

/* ======================================================================
 * Common
 * ====================================================================== */

struct objs {
    weft_event *e;
    weft_mutex *m;
    weft_cond *c;
    weft_sem *sem;
    weft_wg *wg;
    int r[24];
};

static void *foreign_thread(void *p)
{
    struct objs *o = p;
    int i = 0;
    o->r[i++] = weft_event_set(o->e);
    o->r[i++] = weft_event_clear(o->e);
    o->r[i++] = weft_event_is_set(o->e);
    o->r[i++] = weft_event_free(o->e);
    o->r[i++] = weft_mutex_trylock(o->m);
    o->r[i++] = weft_mutex_unlock(o->m);
    o->r[i++] = weft_mutex_locked(o->m);
    o->r[i++] = weft_mutex_free(o->m);
    o->r[i++] = weft_cond_signal(o->c);
    o->r[i++] = weft_cond_broadcast(o->c);
    o->r[i++] = weft_cond_free(o->c);
    o->r[i++] = weft_sem_release(o->sem);
    o->r[i++] = weft_sem_try_acquire(o->sem);
    o->r[i++] = (int)weft_sem_value(o->sem);
    o->r[i++] = weft_sem_free(o->sem);
    o->r[i++] = weft_wg_add(o->wg, 1);
    o->r[i++] = (int)weft_wg_count(o->wg);
    o->r[i++] = weft_wg_free(o->wg);
    o->r[i++] = weft_event_wait(o->e, -1);
    o->r[i++] = weft_mutex_lock(o->m, -1);
    o->r[i++] = weft_sem_acquire(o->sem, -1);
    o->r[i++] = weft_wg_wait(o->wg, -1);
    o->r[i++] = weft_cond_wait(o->c, o->m, -1);
    o->r[i++] = weft_wg_done(o->wg);
    return NULL;
}

TEST(other_thread_is_refused)
{
    weft_sched *s = new_manual();
    struct objs o;
    pthread_t t;
    ASSERT_OK(weft_event_new(s, &o.e));
    ASSERT_OK(weft_mutex_new(s, &o.m));
    ASSERT_OK(weft_cond_new(s, &o.c));
    ASSERT_OK(weft_sem_new(s, 1, &o.sem));
    ASSERT_OK(weft_wg_new(s, &o.wg));
    ASSERT_OK(pthread_create(&t, NULL, foreign_thread, &o));
    ASSERT_OK(pthread_join(t, NULL));
    for (int i = 0; i < 24; i++)
        ASSERT_ERR(o.r[i], -EINVAL);
    ASSERT_EQ(weft_event_is_set(o.e), 0);
    ASSERT_EQ(weft_sem_value(o.sem), 1);
    ASSERT_EQ(weft_wg_count(o.wg), 0);
    ASSERT_OK(weft_event_free(o.e));
    ASSERT_OK(weft_mutex_free(o.m));
    ASSERT_OK(weft_cond_free(o.c));
    ASSERT_OK(weft_sem_free(o.sem));
    ASSERT_OK(weft_wg_free(o.wg));
    ASSERT_OK(weft_sched_free(s));
}

static int hook_calls;
static int hook_results[4];

static void blocking_hook(weft_coro *from, weft_coro *to, void *arg)
{
    struct objs *o = arg;
    (void)from;
    (void)to;
    if (hook_calls < 1) {
        hook_results[0] = weft_event_wait(o->e, -1);
        hook_results[1] = weft_sem_acquire(o->sem, -1);
        hook_results[2] = weft_wg_wait(o->wg, -1);
        hook_results[3] = weft_mutex_lock(o->m, -1);
    }
    hook_calls++;
}

static int nothing(void *arg)
{
    (void)arg;
    return 0;
}

TEST(blocking_inside_a_hook_is_refused)
{
    weft_sched *s = new_manual();
    struct objs o;
    ASSERT_OK(weft_event_new(s, &o.e));
    ASSERT_OK(weft_sem_new(s, 1, &o.sem));
    ASSERT_OK(weft_wg_new(s, &o.wg));
    ASSERT_OK(weft_mutex_new(s, &o.m));
    ASSERT_OK(weft_event_set(o.e));
    ASSERT_OK(weft_hook_add(s, blocking_hook, &o));
    weft_coro *co = go(s, nothing, NULL);
    ASSERT_OK(weft_run(s));
    reap(co);
    ASSERT_GT(hook_calls, 0);
    for (int i = 0; i < 4; i++)
        ASSERT_ERR(hook_results[i], -EINVAL);
    ASSERT_EQ(weft_sem_value(o.sem), 1);
    ASSERT_OK(weft_hook_remove(s, blocking_hook, &o));
    ASSERT_OK(weft_event_free(o.e));
    ASSERT_OK(weft_sem_free(o.sem));
    ASSERT_OK(weft_wg_free(o.wg));
    ASSERT_OK(weft_mutex_free(o.m));
    ASSERT_OK(weft_sched_free(s));
}

TEST(objects_freed_after_their_scheduler)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_event *e;
    weft_sem *sem;
    weft_mutex *m;
    weft_wg *wg;
    ASSERT_OK(weft_event_new(s, &e));
    ASSERT_OK(weft_sem_new(s, 0, &sem));
    ASSERT_OK(weft_mutex_new(s, &m));
    ASSERT_OK(weft_wg_new(s, &wg));
    ASSERT_OK(weft_wg_add(wg, 1));
    struct op a = mkop(EV_WAIT, e, -1, 0);
    struct op b = mkop(SEM_ACQ, sem, -1, 0);
    struct op c = mkop(WG_WAIT, wg, -1, 0);
    struct holder h = {m, WEFT_SEC(1000), 0};
    struct op d = mkop(MX_LOCK, m, -1, 0);
    go(s, op_body, &a);
    go(s, op_body, &b);
    go(s, op_body, &c);
    trace_reset();
    go(s, hold_then_retake, &h);
    go(s, op_body, &d);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_ERR(weft_event_free(e), -EBUSY);
    /* Freeing the scheduler discards the waiters and unlinks them. */
    ASSERT_OK(weft_sched_free(s));
    ASSERT_OK(weft_event_free(e));
    ASSERT_OK(weft_sem_free(sem));
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_wg_free(wg));
    ASSERT_EQ(weft__test_live_allocs(), base);
}
