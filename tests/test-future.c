/*
 * test-future.c - futures (Twisted's Deferred): resolve/fail exactly once,
 * cancel, queries, callbacks (order, after resolution, added while
 * running, releasing the future), waiting from coroutines (deadlines,
 * several waiters, end/raise, the outcome fixed at wake-up), reference
 * counting, and the gathers weft_future_all / weft_future_any.
 *
 * Time uses a WEFT_CLOCK_MANUAL scheduler: nothing sleeps for real.  Leaks
 * are checked with the allocation counter of src/alloc.c.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "test.h"

void weft__test_fail_alloc(long n, int sticky);
long weft__test_live_allocs(void);

/* ----------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */

static weft_sched *new_manual(void)
{
    struct weft_sched_opts o;
    weft_sched *s = NULL;
    memset(&o, 0, sizeof o);
    o.clock = WEFT_CLOCK_MANUAL;
    ASSERT_OK(weft_sched_new(&o, &s));
    return s;
}

static char trace[256];
static size_t ntrace;

static void trace_add(char c)
{
    ASSERT_LT(ntrace, sizeof trace - 1);
    trace[ntrace++] = c;
    trace[ntrace] = 0;
}

static void go(weft_sched *s, weft_fn fn, void *arg)
{
    ASSERT_OK(weft_spawn(s, fn, arg, NULL, NULL));
}

/* A callback that appends its argument (a char) to the trace. */
static void cb_trace(weft_future *f, void *arg)
{
    ASSERT_NE(weft_future_state(f), WEFT_FUTURE_PENDING);
    trace_add((char)(intptr_t)arg);
}

static int V1, V2, V3; /* addresses used as values */

/* ----------------------------------------------------------------------
 * Create, resolve, fail, cancel, queries
 * ---------------------------------------------------------------------- */

TEST(new_and_queries_pending)
{
    weft_sched *s = new_manual();
    weft_future *f = NULL;
    void *v = &V3;
    ASSERT_OK(weft_future_new(s, &f));
    ASSERT_NOT_NULL(f);
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_PENDING);
    ASSERT_NULL(weft_future_value(f));
    ASSERT_EQ(weft_future_error(f), 0);
    ASSERT_ERR(weft_future_result(f, &v), -EAGAIN);
    ASSERT_PTR_EQ(v, &V3); /* untouched */
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

TEST(new_with_null_sched_uses_current)
{
    weft_future *f;
    ASSERT_OK(weft_future_new(NULL, &f));
    ASSERT_OK(weft_future_resolve(f, &V1));
    ASSERT_OK(weft_future_release(f));
}

TEST(bad_arguments)
{
    weft_sched *s = new_manual();
    weft_future *f;
    ASSERT_ERR(weft_future_new(s, NULL), -EINVAL);
    ASSERT_ERR(weft_future_retain(NULL), -EINVAL);
    ASSERT_ERR(weft_future_release(NULL), -EINVAL);
    ASSERT_ERR(weft_future_resolve(NULL, &V1), -EINVAL);
    ASSERT_ERR(weft_future_fail(NULL, -EIO), -EINVAL);
    ASSERT_ERR(weft_future_cancel(NULL), -EINVAL);
    ASSERT_ERR(weft_future_wait(NULL, -1, NULL), -EINVAL);
    ASSERT_ERR(weft_future_then(NULL, cb_trace, NULL), -EINVAL);
    ASSERT_ERR(weft_future_state(NULL), -EINVAL);
    ASSERT_NULL(weft_future_value(NULL));
    ASSERT_ERR(weft_future_error(NULL), -EINVAL);
    ASSERT_ERR(weft_future_result(NULL, NULL), -EINVAL);
    ASSERT_OK(weft_future_new(s, &f));
    ASSERT_ERR(weft_future_then(f, NULL, NULL), -EINVAL);
    ASSERT_ERR(weft_future_fail(f, 0), -EINVAL);
    ASSERT_ERR(weft_future_fail(f, 5), -EINVAL);
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_PENDING);
    /* Waiting from outside a coroutine. */
    ASSERT_ERR(weft_future_wait(f, -1, NULL), -EINVAL);
    ASSERT_ERR(weft_future_wait(f, 0, NULL), -EINVAL);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

TEST(resolve_exactly_once)
{
    weft_sched *s = new_manual();
    weft_future *f;
    void *v = NULL;
    ASSERT_OK(weft_future_new(s, &f));
    ASSERT_OK(weft_future_resolve(f, &V1));
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_RESOLVED);
    ASSERT_PTR_EQ(weft_future_value(f), &V1);
    ASSERT_EQ(weft_future_error(f), 0);
    ASSERT_OK(weft_future_result(f, &v));
    ASSERT_PTR_EQ(v, &V1);
    ASSERT_OK(weft_future_result(f, NULL));
    /* A second decision of any kind is refused and changes nothing. */
    ASSERT_ERR(weft_future_resolve(f, &V2), -EALREADY);
    ASSERT_ERR(weft_future_fail(f, -EIO), -EALREADY);
    ASSERT_ERR(weft_future_cancel(f), -EALREADY);
    ASSERT_PTR_EQ(weft_future_value(f), &V1);
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_RESOLVED);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

TEST(resolve_with_null_value)
{
    weft_sched *s = new_manual();
    weft_future *f;
    void *v = &V1;
    ASSERT_OK(weft_future_new(s, &f));
    ASSERT_OK(weft_future_resolve(f, NULL));
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_RESOLVED);
    ASSERT_OK(weft_future_result(f, &v));
    ASSERT_NULL(v);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

TEST(fail_exactly_once)
{
    weft_sched *s = new_manual();
    weft_future *f;
    void *v = &V3;
    ASSERT_OK(weft_future_new(s, &f));
    ASSERT_OK(weft_future_fail(f, -EIO));
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_FAILED);
    ASSERT_EQ(weft_future_error(f), -EIO);
    ASSERT_NULL(weft_future_value(f));
    ASSERT_ERR(weft_future_result(f, &v), -EIO);
    ASSERT_PTR_EQ(v, &V3);
    ASSERT_ERR(weft_future_fail(f, -EPIPE), -EALREADY);
    ASSERT_ERR(weft_future_resolve(f, &V1), -EALREADY);
    ASSERT_ERR(weft_future_cancel(f), -EALREADY);
    ASSERT_EQ(weft_future_error(f), -EIO);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

TEST(cancel_pending)
{
    weft_sched *s = new_manual();
    weft_future *f;
    ASSERT_OK(weft_future_new(s, &f));
    ASSERT_OK(weft_future_cancel(f));
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_FAILED);
    ASSERT_EQ(weft_future_error(f), -ECANCELED);
    /* The producer learns its result is no longer wanted. */
    ASSERT_ERR(weft_future_resolve(f, &V1), -ECANCELED);
    ASSERT_ERR(weft_future_fail(f, -EIO), -ECANCELED);
    ASSERT_ERR(weft_future_cancel(f), -EALREADY);
    ASSERT_EQ(weft_future_error(f), -ECANCELED);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

TEST(fail_with_ecanceled_is_not_a_cancel)
{
    weft_sched *s = new_manual();
    weft_future *f;
    ASSERT_OK(weft_future_new(s, &f));
    ASSERT_OK(weft_future_fail(f, -ECANCELED));
    ASSERT_ERR(weft_future_resolve(f, &V1), -EALREADY);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Callbacks
 * ---------------------------------------------------------------------- */

TEST(callbacks_run_in_order_at_resolution)
{
    weft_sched *s = new_manual();
    weft_future *f;
    ntrace = 0;
    ASSERT_OK(weft_future_new(s, &f));
    ASSERT_OK(weft_future_then(f, cb_trace, (void *)'1'));
    ASSERT_OK(weft_future_then(f, cb_trace, (void *)'2'));
    ASSERT_OK(weft_future_then(f, cb_trace, (void *)'3'));
    ASSERT_OK(weft_future_then(f, cb_trace, (void *)'1')); /* again: runs twice */
    ASSERT_EQ(ntrace, 0);
    ASSERT_OK(weft_future_resolve(f, &V1));
    ASSERT_STR_EQ(trace, "1231");
    /* Each ran once: a later decision attempt runs nothing. */
    ASSERT_ERR(weft_future_resolve(f, &V1), -EALREADY);
    ASSERT_STR_EQ(trace, "1231");
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

static void cb_check_value(weft_future *f, void *arg)
{
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_RESOLVED);
    ASSERT_PTR_EQ(weft_future_value(f), arg);
    trace_add('v');
}

static void cb_check_error(weft_future *f, void *arg)
{
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_FAILED);
    ASSERT_EQ(weft_future_error(f), (int)(intptr_t)arg);
    trace_add('e');
}

TEST(callbacks_see_the_outcome)
{
    weft_sched *s = new_manual();
    weft_future *a, *b, *c;
    ntrace = 0;
    ASSERT_OK(weft_future_new(s, &a));
    ASSERT_OK(weft_future_new(s, &b));
    ASSERT_OK(weft_future_new(s, &c));
    ASSERT_OK(weft_future_then(a, cb_check_value, &V2));
    ASSERT_OK(weft_future_then(b, cb_check_error, (void *)(intptr_t)-EIO));
    ASSERT_OK(weft_future_then(c, cb_check_error,
                               (void *)(intptr_t)-ECANCELED));
    ASSERT_OK(weft_future_resolve(a, &V2));
    ASSERT_OK(weft_future_fail(b, -EIO));
    ASSERT_OK(weft_future_cancel(c));
    ASSERT_STR_EQ(trace, "vee");
    ASSERT_OK(weft_future_release(a));
    ASSERT_OK(weft_future_release(b));
    ASSERT_OK(weft_future_release(c));
    ASSERT_OK(weft_sched_free(s));
}

TEST(callback_added_after_resolution_runs_at_once)
{
    weft_sched *s = new_manual();
    weft_future *f;
    ntrace = 0;
    ASSERT_OK(weft_future_new(s, &f));
    ASSERT_OK(weft_future_fail(f, -EIO));
    ASSERT_OK(weft_future_then(f, cb_trace, (void *)'a'));
    ASSERT_STR_EQ(trace, "a"); /* synchronously, during the call */
    ASSERT_OK(weft_future_then(f, cb_trace, (void *)'b'));
    ASSERT_STR_EQ(trace, "ab");
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

/* Adds callback 'x' to its own future while the list runs. */
static void cb_add_more(weft_future *f, void *arg)
{
    (void)arg;
    trace_add('1');
    ASSERT_OK(weft_future_then(f, cb_trace, (void *)'x'));
    /* Queued behind '2', not run now. */
    ASSERT_STR_EQ(trace, "1");
}

TEST(callback_added_while_running_runs_after_queued_ones)
{
    weft_sched *s = new_manual();
    weft_future *f;
    ntrace = 0;
    ASSERT_OK(weft_future_new(s, &f));
    ASSERT_OK(weft_future_then(f, cb_add_more, NULL));
    ASSERT_OK(weft_future_then(f, cb_trace, (void *)'2'));
    ASSERT_OK(weft_future_resolve(f, NULL));
    ASSERT_STR_EQ(trace, "12x");
    /* The same, when the first callback is added after resolution. */
    ntrace = 0;
    trace[0] = 0;
    ASSERT_OK(weft_future_then(f, cb_add_more, NULL));
    ASSERT_STR_EQ(trace, "1x");
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

static void cb_release(weft_future *f, void *arg)
{
    (void)arg;
    trace_add('r');
    ASSERT_OK(weft_future_release(f));
}

TEST(callback_may_release_the_last_reference)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_future *f;
    ntrace = 0;
    ASSERT_OK(weft_future_new(s, &f));
    ASSERT_OK(weft_future_then(f, cb_release, NULL));
    ASSERT_OK(weft_future_then(f, cb_trace, (void *)'z'));
    ASSERT_OK(weft_future_resolve(f, NULL)); /* f freed when it returns */
    ASSERT_STR_EQ(trace, "rz");
    /* After resolution, synchronously. */
    ASSERT_OK(weft_future_new(s, &f));
    ASSERT_OK(weft_future_resolve(f, NULL));
    ASSERT_OK(weft_future_then(f, cb_release, NULL));
    ASSERT_STR_EQ(trace, "rzr");
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), base);
}

TEST(pending_future_freed_never_calls_callbacks)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_future *f;
    ntrace = 0;
    ASSERT_OK(weft_future_new(s, &f));
    ASSERT_OK(weft_future_then(f, cb_trace, (void *)'a'));
    ASSERT_OK(weft_future_then(f, cb_trace, (void *)'b'));
    ASSERT_OK(weft_future_release(f));
    ASSERT_EQ(ntrace, 0);
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), base);
}

TEST(then_out_of_memory_never_calls)
{
    weft_sched *s = new_manual();
    weft_future *f;
    ntrace = 0;
    ASSERT_OK(weft_future_new(s, &f));
    weft__test_fail_alloc(0, 0);
    ASSERT_ERR(weft_future_then(f, cb_trace, (void *)'a'), -ENOMEM);
    weft__test_fail_alloc(-1, 0);
    ASSERT_OK(weft_future_then(f, cb_trace, (void *)'b'));
    ASSERT_OK(weft_future_resolve(f, NULL));
    ASSERT_STR_EQ(trace, "b");
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

TEST(many_callbacks_grow_the_list)
{
    weft_sched *s = new_manual();
    weft_future *f;
    ntrace = 0;
    ASSERT_OK(weft_future_new(s, &f));
    for (int i = 0; i < 40; i++)
        ASSERT_OK(weft_future_then(f, cb_trace, (void *)(intptr_t)('A' + i)));
    ASSERT_OK(weft_future_resolve(f, NULL));
    ASSERT_EQ(ntrace, 40);
    for (int i = 0; i < 40; i++)
        ASSERT_EQ(trace[i], 'A' + i);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

/* A callback that resolves another future (chaining). */
static void cb_chain(weft_future *f, void *arg)
{
    ASSERT_OK(weft_future_resolve(arg, weft_future_value(f)));
}

TEST(callbacks_can_chain_futures)
{
    weft_sched *s = new_manual();
    weft_future *a, *b;
    ASSERT_OK(weft_future_new(s, &a));
    ASSERT_OK(weft_future_new(s, &b));
    ASSERT_OK(weft_future_then(a, cb_chain, b));
    ASSERT_OK(weft_future_resolve(a, &V2));
    ASSERT_EQ(weft_future_state(b), WEFT_FUTURE_RESOLVED);
    ASSERT_PTR_EQ(weft_future_value(b), &V2);
    ASSERT_OK(weft_future_release(a));
    ASSERT_OK(weft_future_release(b));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * References
 * ---------------------------------------------------------------------- */

TEST(retain_release)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_future *f;
    ASSERT_OK(weft_future_new(s, &f));
    ASSERT_OK(weft_future_retain(f));
    ASSERT_OK(weft_future_retain(f));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_future_resolve(f, NULL)); /* still alive: one left */
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), base);
}

struct thread_arg {
    weft_future *f;
    int r[8];
};

static void *other_thread(void *p)
{
    struct thread_arg *ta = p;
    void *v;
    ta->r[0] = weft_future_resolve(ta->f, NULL);
    ta->r[1] = weft_future_fail(ta->f, -EIO);
    ta->r[2] = weft_future_cancel(ta->f);
    ta->r[3] = weft_future_retain(ta->f);
    ta->r[4] = weft_future_release(ta->f);
    ta->r[5] = weft_future_then(ta->f, cb_trace, NULL);
    ta->r[6] = weft_future_state(ta->f);
    ta->r[7] = weft_future_result(ta->f, &v);
    return NULL;
}

TEST(other_thread_is_refused)
{
    weft_sched *s = new_manual();
    struct thread_arg ta;
    pthread_t t;
    ASSERT_OK(weft_future_new(s, &ta.f));
    ASSERT_OK(pthread_create(&t, NULL, other_thread, &ta));
    ASSERT_OK(pthread_join(t, NULL));
    for (int i = 0; i < 8; i++)
        ASSERT_ERR(ta.r[i], -EINVAL);
    ASSERT_EQ(weft_future_state(ta.f), WEFT_FUTURE_PENDING);
    ASSERT_OK(weft_future_release(ta.f));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Waiting
 * ---------------------------------------------------------------------- */

struct waiter {
    weft_future *f;
    int64_t deadline;
    char tag;
    int r;
    void *v;
    int64_t t; /* when the wait returned */
    int after; /* result of a blocking call made after the wait */
};

static int wait_body(void *arg)
{
    struct waiter *w = arg;
    w->v = NULL;
    w->r = weft_future_wait(w->f, w->deadline, &w->v);
    w->t = weft_now(NULL);
    if (w->tag)
        trace_add(w->tag);
    return 0;
}

struct resolver {
    weft_future *f;
    int64_t delay;
    void *value;
    int err; /* 0: resolve with value */
};

static int resolve_later(void *arg)
{
    struct resolver *rs = arg;
    ASSERT_OK(weft_sleep_for(rs->delay));
    if (rs->err)
        ASSERT_OK(weft_future_fail(rs->f, rs->err));
    else
        ASSERT_OK(weft_future_resolve(rs->f, rs->value));
    return 0;
}

TEST(wait_until_resolved)
{
    weft_sched *s = new_manual();
    weft_future *f;
    ASSERT_OK(weft_future_new(s, &f));
    struct waiter w = {f, -1, 0, 1, NULL, 0, 0};
    struct resolver rs = {f, WEFT_MSEC(5), &V1, 0};
    go(s, wait_body, &w);
    go(s, resolve_later, &rs);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(w.r);
    ASSERT_PTR_EQ(w.v, &V1);
    ASSERT_EQ(w.t, WEFT_MSEC(5));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

TEST(wait_until_failed)
{
    weft_sched *s = new_manual();
    weft_future *f;
    ASSERT_OK(weft_future_new(s, &f));
    struct waiter w = {f, WEFT_MSEC(100), 0, 1, &V3, 0, 0};
    struct resolver rs = {f, WEFT_MSEC(5), NULL, -EIO};
    go(s, wait_body, &w);
    go(s, resolve_later, &rs);
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(w.r, -EIO);
    ASSERT_NULL(w.v); /* untouched by a failure (the body cleared it) */
    ASSERT_EQ(w.t, WEFT_MSEC(5));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

static int count_steps(void *arg)
{
    for (int i = 0; i < 3; i++) {
        (*(int *)arg)++;
        ASSERT_OK(weft_yield());
    }
    return 0;
}

struct decided_arg {
    weft_future *ok, *bad;
    int *steps;
};

static int wait_decided(void *arg)
{
    struct decided_arg *d = arg;
    void *v = NULL;
    int before = *d->steps;
    ASSERT_OK(weft_future_wait(d->ok, -1, &v));
    ASSERT_PTR_EQ(v, &V2);
    ASSERT_OK(weft_future_wait(d->ok, 0, NULL)); /* past deadline: fine */
    ASSERT_ERR(weft_future_wait(d->bad, -1, &v), -EPIPE);
    ASSERT_EQ(*d->steps, before); /* returned at once, no yield */
    return 0;
}

TEST(wait_on_decided_future_returns_at_once)
{
    weft_sched *s = new_manual();
    struct decided_arg d;
    int steps = 0;
    ASSERT_OK(weft_future_new(s, &d.ok));
    ASSERT_OK(weft_future_new(s, &d.bad));
    ASSERT_OK(weft_future_resolve(d.ok, &V2));
    ASSERT_OK(weft_future_fail(d.bad, -EPIPE));
    d.steps = &steps;
    go(s, count_steps, &steps);
    go(s, wait_decided, &d);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_future_release(d.ok));
    ASSERT_OK(weft_future_release(d.bad));
    ASSERT_OK(weft_sched_free(s));
}

TEST(wait_times_out)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_future *f;
    ASSERT_OK(weft_future_new(s, &f));
    struct waiter w = {f, WEFT_MSEC(10), 0, 1, NULL, 0, 0};
    go(s, wait_body, &w);
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(w.r, -ETIMEDOUT);
    ASSERT_EQ(w.t, WEFT_MSEC(10));
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_PENDING);
    /* The waiter is gone: resolving wakes nobody, and f is freed. */
    ASSERT_OK(weft_future_resolve(f, NULL));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), base);
}

TEST(wait_with_past_deadline_times_out_after_a_turn)
{
    weft_sched *s = new_manual();
    weft_future *f;
    int steps = 0;
    ASSERT_OK(weft_clock_set(s, WEFT_SEC(1)));
    ASSERT_OK(weft_future_new(s, &f));
    struct waiter w = {f, WEFT_MSEC(1), 0, 1, NULL, 0, 0};
    go(s, wait_body, &w);
    go(s, count_steps, &steps);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(w.r, 1); /* still waiting: it yielded */
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(w.r, -ETIMEDOUT);
    ASSERT_EQ(w.t, WEFT_SEC(1));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

static int wait_bad_deadline(void *arg)
{
    ASSERT_ERR(weft_future_wait(arg, -2, NULL), -EINVAL);
    ASSERT_ERR(weft_future_wait(arg, INT64_MIN, NULL), -EINVAL);
    return 0;
}

TEST(wait_rejects_bad_deadline)
{
    weft_sched *s = new_manual();
    weft_future *f;
    ASSERT_OK(weft_future_new(s, &f));
    go(s, wait_bad_deadline, f);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

static int wait_other_sched(void *arg)
{
    ASSERT_ERR(weft_future_wait(arg, -1, NULL), -EINVAL);
    return 0;
}

TEST(wait_from_coroutine_of_another_scheduler_is_refused)
{
    weft_sched *s = new_manual(), *s2 = new_manual();
    weft_future *f;
    ASSERT_OK(weft_future_new(s, &f));
    go(s2, wait_other_sched, f);
    ASSERT_OK(weft_run(s2));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
    ASSERT_OK(weft_sched_free(s2));
}

TEST(several_waiters_all_woken_in_order)
{
    weft_sched *s = new_manual();
    weft_future *f;
    ntrace = 0;
    trace[0] = 0;
    ASSERT_OK(weft_future_new(s, &f));
    struct waiter w[3] = {{f, -1, 'a', 1, NULL, 0, 0},
                          {f, WEFT_SEC(1), 'b', 1, NULL, 0, 0},
                          {f, -1, 'c', 1, NULL, 0, 0}};
    struct resolver rs = {f, WEFT_MSEC(7), &V3, 0};
    for (int i = 0; i < 3; i++)
        go(s, wait_body, &w[i]);
    go(s, resolve_later, &rs);
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "abc");
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(w[i].r);
        ASSERT_PTR_EQ(w[i].v, &V3);
        ASSERT_EQ(w[i].t, WEFT_MSEC(7));
    }
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

TEST(cancel_wakes_waiters_with_ecanceled)
{
    weft_sched *s = new_manual();
    weft_future *f;
    ASSERT_OK(weft_future_new(s, &f));
    struct waiter w1 = {f, -1, 0, 1, NULL, 0, 0};
    struct waiter w2 = {f, -1, 0, 1, NULL, 0, 0};
    go(s, wait_body, &w1);
    go(s, wait_body, &w2);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_future_cancel(f));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(w1.r, -ECANCELED);
    ASSERT_ERR(w2.r, -ECANCELED);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

TEST(ending_a_waiter_leaves_the_future_alone)
{
    weft_sched *s = new_manual();
    weft_future *f;
    weft_coro *co;
    ASSERT_OK(weft_future_new(s, &f));
    struct waiter w1 = {f, -1, 0, 1, NULL, 0, 0};
    struct waiter w2 = {f, -1, 0, 1, NULL, 0, 0};
    ASSERT_OK(weft_spawn(s, wait_body, &w1, NULL, &co));
    go(s, wait_body, &w2);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_end(co));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_ERR(w1.r, -ECANCELED);
    ASSERT_EQ(w2.r, 1); /* still waiting */
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_PENDING);
    ASSERT_OK(weft_future_resolve(f, &V1));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(w2.r);
    ASSERT_PTR_EQ(w2.v, &V1);
    ASSERT_OK(weft_reap(co, NULL));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

TEST(raising_into_a_waiter)
{
    weft_sched *s = new_manual();
    weft_future *f;
    weft_coro *co;
    ASSERT_OK(weft_future_new(s, &f));
    struct waiter w = {f, -1, 0, 1, NULL, 0, 0};
    ASSERT_OK(weft_spawn(s, wait_body, &w, NULL, &co));
    ASSERT_OK(weft_raise_in(co, -EINTR, WEFT_MSEC(3)));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(w.r, -EINTR);
    ASSERT_EQ(w.t, WEFT_MSEC(3));
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_PENDING);
    ASSERT_OK(weft_reap(co, NULL));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

static int wait_then_yield(void *arg)
{
    struct waiter *w = arg;
    w->r = weft_future_wait(w->f, w->deadline, &w->v);
    w->after = weft_yield();
    return 0;
}

TEST(woken_waiter_keeps_the_outcome_when_raised_before_running)
{
    weft_sched *s = new_manual();
    weft_future *f;
    weft_coro *co;
    ASSERT_OK(weft_future_new(s, &f));
    struct waiter w = {f, -1, 0, 1, NULL, 0, 1};
    ASSERT_OK(weft_spawn(s, wait_then_yield, &w, NULL, &co));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    /* Resolve, then raise before the waiter runs again. */
    ASSERT_OK(weft_future_resolve(f, &V2));
    ASSERT_OK(weft_raise(co, -EINTR));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(w.r);
    ASSERT_PTR_EQ(w.v, &V2);
    ASSERT_ERR(w.after, -EINTR); /* kept for the next blocking call */
    ASSERT_OK(weft_reap(co, NULL));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

TEST(woken_waiter_keeps_the_outcome_when_ended_before_running)
{
    weft_sched *s = new_manual();
    weft_future *f;
    weft_coro *co;
    ASSERT_OK(weft_future_new(s, &f));
    struct waiter w = {f, -1, 0, 1, NULL, 0, 1};
    ASSERT_OK(weft_spawn(s, wait_then_yield, &w, NULL, &co));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_future_fail(f, -EIO));
    ASSERT_OK(weft_end(co));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(w.r, -EIO);
    ASSERT_ERR(w.after, -ECANCELED);
    ASSERT_OK(weft_reap(co, NULL));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

/* Times out at 10 ms; the future is resolved by a callback timer at the
 * same instant but after the deadline fired (timer FIFO order). */
static void resolve_cb(weft_timer *t, void *arg)
{
    (void)t;
    ASSERT_OK(weft_future_resolve(arg, &V1));
}

TEST(timed_out_waiter_keeps_etimedout_when_resolved_before_running)
{
    weft_sched *s = new_manual();
    weft_future *f;
    weft_timer *t;
    ASSERT_OK(weft_future_new(s, &f));
    struct waiter w = {f, WEFT_MSEC(10), 0, 1, NULL, 0, 0};
    go(s, wait_body, &w);
    ASSERT_EQ(weft_run_once(s, 0), 1); /* the waiter's deadline is armed */
    ASSERT_OK(weft_timer_new(s, resolve_cb, f, &t));
    ASSERT_OK(weft_timer_start_at(t, WEFT_MSEC(10), 0));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(w.r, -ETIMEDOUT);
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_RESOLVED);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

static int ended_wait(void *arg)
{
    weft_future *f = arg;
    ASSERT_OK(weft_end(weft_self()));
    /* Already resolved, but the caller is ended: it fails. */
    ASSERT_ERR(weft_future_wait(f, -1, NULL), -ECANCELED);
    return 0;
}

TEST(ended_coroutine_cannot_wait)
{
    weft_sched *s = new_manual();
    weft_future *f;
    ASSERT_OK(weft_future_new(s, &f));
    ASSERT_OK(weft_future_resolve(f, NULL));
    go(s, ended_wait, f);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

/* The only reference is dropped while a coroutine waits: the waiter keeps
 * the future alive until its wait ends. */
static int drop_ref(void *arg)
{
    ASSERT_OK(weft_future_release(arg));
    return 0;
}

TEST(waiter_keeps_the_future_alive)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_future *f;
    ASSERT_OK(weft_future_new(s, &f));
    struct waiter w = {f, WEFT_MSEC(4), 0, 1, NULL, 0, 0};
    go(s, wait_body, &w);
    go(s, drop_ref, f);
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(w.r, -ETIMEDOUT);
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), base); /* freed after the wait */
}

TEST(waiter_keeps_the_future_alive_until_resolved)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_future *f;
    ASSERT_OK(weft_future_new(s, &f));
    ASSERT_OK(weft_future_retain(f)); /* the resolver's reference */
    struct waiter w = {f, -1, 0, 1, NULL, 0, 0};
    go(s, wait_body, &w);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_future_release(f)); /* the user's */
    ASSERT_OK(weft_future_resolve(f, &V1));
    ASSERT_OK(weft_future_release(f)); /* the resolver's: freed */
    ASSERT_OK(weft_run(s));
    ASSERT_OK(w.r);
    ASSERT_PTR_EQ(w.v, &V1);
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), base);
}

TEST(scheduler_freed_with_a_waiter)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_future *f;
    ASSERT_OK(weft_future_new(s, &f));
    struct waiter w = {f, -1, 0, 1, NULL, 0, 0};
    go(s, wait_body, &w);
    ASSERT_ERR(weft_run(s), -EDEADLK);
    ASSERT_OK(weft_sched_free(s)); /* the waiter is discarded */
    ASSERT_OK(weft_future_release(f));
    ASSERT_EQ(weft__test_live_allocs(), base);
}

/* ----------------------------------------------------------------------
 * Gathers
 * ---------------------------------------------------------------------- */

TEST(all_resolves_when_every_input_resolved)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_future *in[3], *g;
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_future_new(s, &in[i]));
    ASSERT_OK(weft_future_resolve(in[1], &V1)); /* one already resolved */
    ASSERT_OK(weft_future_all(s, in, 3, &g));
    ASSERT_EQ(weft_future_state(g), WEFT_FUTURE_PENDING);
    ASSERT_OK(weft_future_resolve(in[2], &V2));
    ASSERT_EQ(weft_future_state(g), WEFT_FUTURE_PENDING);
    ASSERT_OK(weft_future_resolve(in[0], &V3));
    ASSERT_EQ(weft_future_state(g), WEFT_FUTURE_RESOLVED);
    ASSERT_NULL(weft_future_value(g));
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_future_release(in[i]));
    ASSERT_OK(weft_future_release(g));
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), base);
}

TEST(all_fails_with_the_first_failure)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_future *in[3], *g;
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_future_new(s, &in[i]));
    ASSERT_OK(weft_future_all(s, in, 3, &g));
    ASSERT_OK(weft_future_resolve(in[0], NULL));
    ASSERT_OK(weft_future_fail(in[2], -EIO));
    ASSERT_EQ(weft_future_state(g), WEFT_FUTURE_FAILED);
    ASSERT_EQ(weft_future_error(g), -EIO);
    /* Later failures change nothing; the pending input is left alone. */
    ASSERT_EQ(weft_future_state(in[1]), WEFT_FUTURE_PENDING);
    ASSERT_OK(weft_future_fail(in[1], -EPIPE));
    ASSERT_EQ(weft_future_error(g), -EIO);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_future_release(in[i]));
    ASSERT_OK(weft_future_release(g));
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), base);
}

TEST(all_of_nothing_resolves_at_once)
{
    weft_sched *s = new_manual();
    weft_future *g;
    ASSERT_OK(weft_future_all(s, NULL, 0, &g));
    ASSERT_EQ(weft_future_state(g), WEFT_FUTURE_RESOLVED);
    ASSERT_OK(weft_future_release(g));
    ASSERT_OK(weft_sched_free(s));
}

TEST(all_of_decided_inputs)
{
    weft_sched *s = new_manual();
    weft_future *in[3], *g;
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_future_new(s, &in[i]));
    ASSERT_OK(weft_future_resolve(in[0], NULL));
    ASSERT_OK(weft_future_fail(in[1], -EPIPE));
    ASSERT_OK(weft_future_fail(in[2], -EIO));
    ASSERT_OK(weft_future_all(s, in, 3, &g));
    ASSERT_EQ(weft_future_error(g), -EPIPE); /* first in array order */
    ASSERT_OK(weft_future_release(g));
    /* A failed input decides even while others are pending. */
    weft_future *p;
    ASSERT_OK(weft_future_new(s, &p));
    weft_future *in2[2] = {p, in[2]};
    ASSERT_OK(weft_future_all(s, in2, 2, &g));
    ASSERT_EQ(weft_future_error(g), -EIO);
    ASSERT_OK(weft_future_release(g));
    /* Every input resolved. */
    weft_future *in3[2] = {in[0], in[0]};
    ASSERT_OK(weft_future_all(s, in3, 2, &g));
    ASSERT_EQ(weft_future_state(g), WEFT_FUTURE_RESOLVED);
    ASSERT_OK(weft_future_release(g));
    ASSERT_OK(weft_future_release(p));
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_future_release(in[i]));
    ASSERT_OK(weft_sched_free(s));
}

TEST(any_takes_the_first_decision)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_future *in[3], *g, *h;
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_future_new(s, &in[i]));
    ASSERT_OK(weft_future_any(s, in, 3, &g));
    ASSERT_OK(weft_future_any(s, in, 3, &h));
    ASSERT_EQ(weft_future_state(g), WEFT_FUTURE_PENDING);
    ASSERT_OK(weft_future_resolve(in[1], &V2));
    ASSERT_EQ(weft_future_state(g), WEFT_FUTURE_RESOLVED);
    ASSERT_PTR_EQ(weft_future_value(g), &V2);
    ASSERT_PTR_EQ(weft_future_value(h), &V2);
    ASSERT_OK(weft_future_fail(in[0], -EIO));
    ASSERT_PTR_EQ(weft_future_value(g), &V2);
    ASSERT_EQ(weft_future_state(in[2]), WEFT_FUTURE_PENDING); /* left alone */
    ASSERT_OK(weft_future_release(g));
    ASSERT_OK(weft_future_release(h));
    /* A failure first decides too. */
    ASSERT_OK(weft_future_any(s, &in[2], 1, &g));
    ASSERT_OK(weft_future_fail(in[2], -EPIPE));
    ASSERT_EQ(weft_future_error(g), -EPIPE);
    ASSERT_OK(weft_future_release(g));
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_future_release(in[i]));
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), base);
}

TEST(any_of_decided_inputs_takes_the_first_in_order)
{
    weft_sched *s = new_manual();
    weft_future *in[3], *g;
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_future_new(s, &in[i]));
    ASSERT_OK(weft_future_fail(in[1], -EIO));
    ASSERT_OK(weft_future_resolve(in[2], &V1));
    ASSERT_OK(weft_future_any(s, in, 3, &g));
    ASSERT_EQ(weft_future_error(g), -EIO);
    ASSERT_OK(weft_future_release(g));
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_future_release(in[i]));
    ASSERT_OK(weft_sched_free(s));
}

TEST(gather_bad_arguments)
{
    weft_sched *s = new_manual();
    weft_future *f, *g = (weft_future *)&V1;
    ASSERT_OK(weft_future_new(s, &f));
    weft_future *with_null[2] = {f, NULL};
    ASSERT_ERR(weft_future_all(s, &f, 1, NULL), -EINVAL);
    ASSERT_ERR(weft_future_any(s, &f, 1, NULL), -EINVAL);
    ASSERT_ERR(weft_future_all(s, NULL, 1, &g), -EINVAL);
    ASSERT_NULL(g);
    ASSERT_ERR(weft_future_any(s, NULL, 0, &g), -EINVAL); /* never decided */
    ASSERT_ERR(weft_future_any(s, &f, 0, &g), -EINVAL);
    ASSERT_ERR(weft_future_all(s, with_null, 2, &g), -EINVAL);
    ASSERT_ERR(weft_future_any(s, with_null, 2, &g), -EINVAL);
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

TEST(gather_inputs_may_be_released_early)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_future *in[2], *g;
    ASSERT_OK(weft_future_new(s, &in[0]));
    ASSERT_OK(weft_future_new(s, &in[1]));
    ASSERT_OK(weft_future_all(s, in, 2, &g));
    /* The gather holds its own references: cancelling g through them
     * still reaches the inputs after the caller dropped its own. */
    ntrace = 0;
    trace[0] = 0;
    ASSERT_OK(weft_future_then(in[0], cb_trace, (void *)'0'));
    ASSERT_OK(weft_future_then(in[1], cb_trace, (void *)'1'));
    ASSERT_OK(weft_future_release(in[0]));
    ASSERT_OK(weft_future_release(in[1]));
    ASSERT_OK(weft_future_cancel(g));
    ASSERT_STR_EQ(trace, "01");
    ASSERT_EQ(weft_future_error(g), -ECANCELED);
    ASSERT_OK(weft_future_release(g));
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), base);
}

TEST(dropping_a_pending_gather_detaches_it)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_future *in[2], *g;
    ASSERT_OK(weft_future_new(s, &in[0]));
    ASSERT_OK(weft_future_new(s, &in[1]));
    ASSERT_OK(weft_future_any(s, in, 2, &g));
    ASSERT_OK(weft_future_release(g)); /* nobody wants it: freed */
    ASSERT_OK(weft_future_resolve(in[0], NULL)); /* no callback left */
    ASSERT_OK(weft_future_release(in[0]));
    ASSERT_OK(weft_future_release(in[1])); /* pending, but freed */
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), base);
}

TEST(gather_with_abandoned_inputs_does_not_leak)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_future *in[3], *g;
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_future_new(s, &in[i]));
    ASSERT_OK(weft_future_any(s, in, 3, &g));
    ASSERT_OK(weft_future_resolve(in[0], &V1)); /* decides g: detaches */
    /* in[1], in[2] never decided: releasing them frees them. */
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_future_release(in[i]));
    ASSERT_PTR_EQ(weft_future_value(g), &V1);
    ASSERT_OK(weft_future_release(g));
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), base);
}

TEST(cancelling_a_gather_cancels_pending_inputs)
{
    weft_sched *s = new_manual();
    weft_future *in[3], *g;
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_future_new(s, &in[i]));
    ASSERT_OK(weft_future_resolve(in[0], &V1));
    ASSERT_OK(weft_future_all(s, in, 3, &g));
    ASSERT_OK(weft_future_cancel(g));
    ASSERT_EQ(weft_future_error(g), -ECANCELED);
    ASSERT_EQ(weft_future_state(in[0]), WEFT_FUTURE_RESOLVED);
    ASSERT_EQ(weft_future_error(in[1]), -ECANCELED);
    ASSERT_EQ(weft_future_error(in[2]), -ECANCELED);
    ASSERT_ERR(weft_future_resolve(in[1], NULL), -ECANCELED);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_future_release(in[i]));
    ASSERT_OK(weft_future_release(g));
    ASSERT_OK(weft_sched_free(s));
}

TEST(deciding_a_gather_directly_leaves_inputs_alone)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_future *in[2], *g;
    ASSERT_OK(weft_future_new(s, &in[0]));
    ASSERT_OK(weft_future_new(s, &in[1]));
    ASSERT_OK(weft_future_all(s, in, 2, &g));
    ASSERT_OK(weft_future_resolve(g, &V3));
    ASSERT_EQ(weft_future_state(in[0]), WEFT_FUTURE_PENDING);
    ASSERT_OK(weft_future_fail(in[0], -EIO)); /* g unaffected */
    ASSERT_PTR_EQ(weft_future_value(g), &V3);
    ASSERT_OK(weft_future_release(in[0]));
    ASSERT_OK(weft_future_release(in[1]));
    ASSERT_OK(weft_future_release(g));
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), base);
}

TEST(gather_of_the_same_future_twice)
{
    weft_sched *s = new_manual();
    weft_future *f, *g;
    ASSERT_OK(weft_future_new(s, &f));
    weft_future *in[2] = {f, f};
    ASSERT_OK(weft_future_all(s, in, 2, &g));
    ASSERT_OK(weft_future_resolve(f, NULL));
    ASSERT_EQ(weft_future_state(g), WEFT_FUTURE_RESOLVED);
    ASSERT_OK(weft_future_release(g));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_sched_free(s));
}

TEST(gathers_nest)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_future *a, *b, *c, *any_ab, *all;
    ASSERT_OK(weft_future_new(s, &a));
    ASSERT_OK(weft_future_new(s, &b));
    ASSERT_OK(weft_future_new(s, &c));
    weft_future *ab[2] = {a, b};
    ASSERT_OK(weft_future_any(s, ab, 2, &any_ab));
    weft_future *top[2] = {any_ab, c};
    ASSERT_OK(weft_future_all(s, top, 2, &all));
    ASSERT_OK(weft_future_release(any_ab)); /* held by `all` */
    ASSERT_OK(weft_future_resolve(c, NULL));
    ASSERT_EQ(weft_future_state(all), WEFT_FUTURE_PENDING);
    ASSERT_OK(weft_future_resolve(b, NULL));
    ASSERT_EQ(weft_future_state(all), WEFT_FUTURE_RESOLVED);
    ASSERT_OK(weft_future_release(a));
    ASSERT_OK(weft_future_release(b));
    ASSERT_OK(weft_future_release(c));
    ASSERT_OK(weft_future_release(all));
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), base);
}

/* An input's earlier callback drops the last reference to the gather
 * while that input's callbacks run: the gather detaches from the input
 * in the middle of its list. */
static void cb_drop_gather(weft_future *f, void *arg)
{
    (void)f;
    trace_add('d');
    ASSERT_OK(weft_future_release(*(weft_future **)arg));
}

TEST(gather_dropped_from_an_input_callback)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_future *in[2], *g;
    ntrace = 0;
    trace[0] = 0;
    ASSERT_OK(weft_future_new(s, &in[0]));
    ASSERT_OK(weft_future_new(s, &in[1]));
    ASSERT_OK(weft_future_then(in[0], cb_drop_gather, &g));
    ASSERT_OK(weft_future_all(s, in, 2, &g));
    ASSERT_OK(weft_future_then(in[0], cb_trace, (void *)'t'));
    ASSERT_OK(weft_future_resolve(in[0], NULL));
    ASSERT_STR_EQ(trace, "dt");
    ASSERT_OK(weft_future_release(in[0]));
    ASSERT_OK(weft_future_release(in[1]));
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), base);
}

static void cb_release_arg(weft_future *f, void *arg)
{
    (void)f;
    trace_add('g');
    ASSERT_OK(weft_future_release(arg));
}

TEST(gather_callback_releases_the_gather)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_future *in[2], *g;
    ntrace = 0;
    trace[0] = 0;
    ASSERT_OK(weft_future_new(s, &in[0]));
    ASSERT_OK(weft_future_new(s, &in[1]));
    ASSERT_OK(weft_future_any(s, in, 2, &g));
    ASSERT_OK(weft_future_then(g, cb_release_arg, g));
    ASSERT_OK(weft_future_fail(in[1], -EIO));
    ASSERT_STR_EQ(trace, "g");
    ASSERT_OK(weft_future_release(in[0]));
    ASSERT_OK(weft_future_release(in[1]));
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), base);
}

struct gwait {
    weft_future *g;
    int r;
    int64_t t;
};

static int wait_gather(void *arg)
{
    struct gwait *gw = arg;
    gw->r = weft_future_wait(gw->g, -1, NULL);
    gw->t = weft_now(NULL);
    return 0;
}

TEST(wait_on_a_gather)
{
    weft_sched *s = new_manual();
    weft_future *in[2], *g;
    ASSERT_OK(weft_future_new(s, &in[0]));
    ASSERT_OK(weft_future_new(s, &in[1]));
    ASSERT_OK(weft_future_all(s, in, 2, &g));
    struct gwait gw = {g, 1, 0};
    struct resolver r0 = {in[0], WEFT_MSEC(2), NULL, 0};
    struct resolver r1 = {in[1], WEFT_MSEC(6), NULL, 0};
    go(s, wait_gather, &gw);
    go(s, resolve_later, &r0);
    go(s, resolve_later, &r1);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(gw.r);
    ASSERT_EQ(gw.t, WEFT_MSEC(6));
    ASSERT_OK(weft_future_release(in[0]));
    ASSERT_OK(weft_future_release(in[1]));
    ASSERT_OK(weft_future_release(g));
    ASSERT_OK(weft_sched_free(s));
}

TEST(gather_out_of_memory)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_future *in[3], *g = NULL;
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_future_new(s, &in[i]));
    /* Fail each allocation of the call in turn: the output future, the
     * gather record, the callback lists of the inputs. */
    int failures = 0;
    for (long n = 0; n < 10; n++) {
        weft__test_fail_alloc(n, 0);
        int r = weft_future_all(s, in, 3, &g);
        weft__test_fail_alloc(-1, 0);
        if (r == 0) {
            ASSERT_OK(weft_future_release(g));
            break;
        }
        ASSERT_ERR(r, -ENOMEM);
        ASSERT_NULL(g);
        failures++;
    }
    ASSERT_GE(failures, 3);
    /* Nothing stayed attached: resolving runs no gather callback. */
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(weft_future_resolve(in[i], NULL));
        ASSERT_OK(weft_future_release(in[i]));
    }
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), base);
}

static void unthen_cb(weft_future *f, void *arg)
{
    (void)f;
    ++*(int *)arg;
}

static void unthen_other(weft_future *f, void *arg)
{
    /* Runs first and takes back the callback queued after it. */
    (void)arg;
    ASSERT_OK(weft_future_unthen(f, unthen_cb, arg));
}

TEST(unthen_takes_back_a_pending_callback)
{
    weft_sched *s;
    weft_future *f;
    int a = 0, b = 0;
    ASSERT_OK(weft_sched_new(NULL, &s));
    ASSERT_OK(weft_future_new(s, &f));
    ASSERT_OK(weft_future_then(f, unthen_cb, &a));
    ASSERT_OK(weft_future_then(f, unthen_cb, &b));
    ASSERT_OK(weft_future_unthen(f, unthen_cb, &a));
    ASSERT_ERR(weft_future_unthen(f, unthen_cb, &a), -ENOENT);
    ASSERT_ERR(weft_future_unthen(f, NULL, &a), -EINVAL);
    ASSERT_ERR(weft_future_unthen(NULL, unthen_cb, &a), -EINVAL);
    ASSERT_OK(weft_future_resolve(f, NULL));
    ASSERT_EQ(a, 0);
    ASSERT_EQ(b, 1);
    ASSERT_ERR(weft_future_unthen(f, unthen_cb, &b), -ENOENT); /* ran */
    weft_future_release(f);
    /* From a callback of the same future, during dispatch. */
    int c = 0;
    ASSERT_OK(weft_future_new(s, &f));
    ASSERT_OK(weft_future_then(f, unthen_other, &c));
    ASSERT_OK(weft_future_then(f, unthen_cb, &c));
    ASSERT_OK(weft_future_resolve(f, NULL));
    ASSERT_EQ(c, 0);
    weft_future_release(f);
    ASSERT_OK(weft_sched_free(s));
}
