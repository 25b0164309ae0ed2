/*
 * test-dispatch.c - asycamore's dispatch loop: weft_iterate and
 * weft_dispatch_once, one case per rule of the seed.
 */
#include "test.h"

static weft_sched *manual(void)
{
    struct weft_sched_opts o = {0};
    weft_sched *s;
    o.clock = WEFT_CLOCK_MANUAL;
    ASSERT_OK(weft_sched_new(&o, &s));
    return s;
}

/* A coroutine that sleeps 1 s forever: the loop never runs out of work. */
static int ticker(void *arg)
{
    int *ticks = arg;
    for (;;) {
        int r = weft_sleep_for(WEFT_SEC(1));
        if (r < 0)
            return r;
        ++*ticks;
    }
}

struct log {
    int before, after;
    int stop_at;        /* before returns STOP on this call (0: never) */
    int set_count_at;   /* after sets count = 2 on this call */
    int clear_at;       /* before clears the after callback on this call */
    int err_at;         /* after returns -EIO on this call */
};

static int on_before(weft_sched *s, struct weft_dispatch_vars *v)
{
    struct log *l = v->user;
    (void)s;
    l->before++;
    if (l->stop_at && l->before == l->stop_at)
        return WEFT_DISPATCH_STOP;
    if (l->clear_at && l->before == l->clear_at)
        v->after = NULL;
    return 0;
}

static int on_after(weft_sched *s, struct weft_dispatch_vars *v)
{
    struct log *l = v->user;
    (void)s;
    l->after++;
    if (l->set_count_at && l->after == l->set_count_at)
        v->count = 2;
    if (l->err_at && l->after == l->err_at)
        return -EIO;
    return 0;
}

static weft_coro *start_ticker(weft_sched *s, int *ticks)
{
    weft_coro *c;
    ASSERT_OK(weft_spawn(s, ticker, ticks, NULL, &c));
    return c;
}

static void finish(weft_sched *s, weft_coro *c)
{
    ASSERT_OK(weft_end(c));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_reap(c, NULL));
    ASSERT_OK(weft_sched_free(s));
}

TEST(count_limits_the_dispatches)
{
    weft_sched *s = manual();
    int ticks = 0;
    weft_coro *c = start_ticker(s, &ticks);
    struct log l = {0};
    struct weft_dispatch_vars v = {5, -1, 0, on_before, on_after, &l};
    ASSERT_OK(weft_iterate(s, &v));
    ASSERT_EQ(l.before, 5);
    ASSERT_EQ(l.after, 5);
    ASSERT_EQ(v.count, 0);
    finish(s, c);
}

TEST(a_callback_setting_count_ends_after_n_more)
{
    weft_sched *s = manual();
    int ticks = 0;
    weft_coro *c = start_ticker(s, &ticks);
    struct log l = {0};
    l.set_count_at = 3;
    struct weft_dispatch_vars v = {-1, -1, 0, on_before, on_after, &l};
    ASSERT_OK(weft_iterate(s, &v));
    /* 3 dispatches, then count = 2 in the third after(): 2 more. */
    ASSERT_EQ(l.before, 5);
    ASSERT_EQ(l.after, 5);
    finish(s, c);
}

TEST(stop_from_a_callback_ends_at_once)
{
    weft_sched *s = manual();
    int ticks = 0;
    weft_coro *c = start_ticker(s, &ticks);
    struct log l = {0};
    l.stop_at = 4;
    struct weft_dispatch_vars v = {-1, -1, 0, on_before, on_after, &l};
    ASSERT_EQ(weft_iterate(s, &v), WEFT_DISPATCH_STOP);
    ASSERT_EQ(l.before, 4);
    ASSERT_EQ(l.after, 3); /* no dispatch after the stop */
    finish(s, c);
}

TEST(clearing_a_callback_disables_it)
{
    weft_sched *s = manual();
    int ticks = 0;
    weft_coro *c = start_ticker(s, &ticks);
    struct log l = {0};
    l.clear_at = 3;
    struct weft_dispatch_vars v = {6, -1, 0, on_before, on_after, &l};
    ASSERT_OK(weft_iterate(s, &v));
    ASSERT_EQ(l.before, 6);
    ASSERT_EQ(l.after, 2);
    ASSERT(v.after == NULL);
    finish(s, c);
}

TEST(a_callback_error_ends_the_loop_with_it)
{
    weft_sched *s = manual();
    int ticks = 0;
    weft_coro *c = start_ticker(s, &ticks);
    struct log l = {0};
    l.err_at = 2;
    struct weft_dispatch_vars v = {-1, -1, 0, on_before, on_after, &l};
    ASSERT_ERR(weft_iterate(s, &v), -EIO);
    ASSERT_EQ(l.after, 2);
    finish(s, c);
}

TEST(timeout_is_forwarded_to_each_dispatch)
{
    weft_sched *s = manual();
    int ticks = 0;
    weft_coro *c = start_ticker(s, &ticks);
    struct weft_dispatch_vars v = {3, WEFT_MSEC(300), 0, NULL, NULL, NULL};
    ASSERT_OK(weft_iterate(s, &v));
    /* The first dispatch starts the ticker (which sleeps until 1 s); each
     * dispatch then waits (jumps the manual clock) at most 300 ms. */
    ASSERT_EQ(weft_now(s), WEFT_MSEC(900));
    ASSERT_EQ(ticks, 0);
    v.count = 1;
    ASSERT_OK(weft_iterate(s, &v));
    ASSERT_EQ(weft_now(s), WEFT_MSEC(1000)); /* capped by the deadline */
    ASSERT_EQ(ticks, 0);                     /* woken, runs next time */
    v.count = 1;
    ASSERT_OK(weft_iterate(s, &v));
    ASSERT_EQ(ticks, 1);
    ASSERT_EQ(weft_now(s), WEFT_MSEC(1300));
    finish(s, c);
}

TEST(loop_ends_when_the_scheduler_has_no_work)
{
    weft_sched *s = manual();
    struct log l = {0};
    struct weft_dispatch_vars v = {-1, -1, 0, on_before, on_after, &l};
    ASSERT_OK(weft_iterate(s, &v));
    ASSERT_EQ(l.before, 1);
    ASSERT_EQ(l.after, 1);
    ASSERT_OK(weft_sched_free(s));
}

static int failing(void *arg)
{
    (void)arg;
    return -ENOSPC;
}

static void quiet(weft_coro *co, int status, void *arg)
{
    (void)co;
    ++*(int *)arg;
    (void)status;
}

TEST(error_in_handler_policy)
{
    weft_sched *s = manual();
    int ticks = 0, reported = 0;
    weft_coro *c = start_ticker(s, &ticks);
    ASSERT_OK(weft_on_error_global(s, quiet, &reported));
    ASSERT_OK(weft_spawn(s, failing, NULL, NULL, NULL));
    /* Continue: reported, and the loop goes on to its count. */
    struct weft_dispatch_vars v = {3, 0, WEFT_DISPATCH_ERR_CONTINUE, NULL,
                                   NULL, NULL};
    ASSERT_OK(weft_iterate(s, &v));
    ASSERT_EQ(reported, 1);
    ASSERT_EQ(v.count, 0);
    /* Stop: the failing dispatch ends the loop with its status. */
    ASSERT_OK(weft_spawn(s, failing, NULL, NULL, NULL));
    v.count = 3;
    v.error_in_handler = WEFT_DISPATCH_ERR_STOP;
    ASSERT_ERR(weft_iterate(s, &v), -ENOSPC);
    ASSERT_EQ(reported, 2);
    ASSERT_EQ(v.count, 3);
    /* A later clean dispatch does not see the old failure. */
    ASSERT_EQ(weft_dispatch_once(s, 0, WEFT_DISPATCH_ERR_STOP), 1);
    finish(s, c);
}

TEST(dispatch_bad_input)
{
    weft_sched *s = manual();
    ASSERT_ERR(weft_iterate(s, NULL), -EINVAL);
    ASSERT_ERR(weft_dispatch_once(s, 0, 7), -EINVAL);
    ASSERT_OK(weft_sched_free(s));
}
