/*
 * test-coro.c - coroutines: spawning (now, at, in, recurring: greenhouse
 * schedule / schedule_at / schedule_in / schedule_recurring), yield and
 * sleep (pause / pause_for / pause_until), join, reap and detach, raising
 * errors (schedule_exception / _at / _in), ending (end), failure handlers
 * (global_exception_handler, local_exception_handler, handle_exception),
 * switch hooks (global_hook, local_incoming_hook, local_outgoing_hook),
 * and the accessors.
 *
 * Everything about time uses a WEFT_CLOCK_MANUAL scheduler: assertions on
 * times are exact and no case sleeps for real.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

/* Fault injection hook of the library (src/alloc.c); not in weft.h. */
void weft__test_fail_alloc(long n, int sticky);
/* Blocks allocated by weft on this thread and not yet freed (alloc.c). */
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
    ASSERT_NOT_NULL(s);
    return s;
}

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

static char trace[1024];
static size_t ntrace;

static void trace_reset(void)
{
    ntrace = 0;
    trace[0] = 0;
}

static void trace_add(char c)
{
    ASSERT_LT(ntrace, sizeof trace - 1);
    trace[ntrace++] = c;
    trace[ntrace] = 0;
}

static int log_once(void *arg)
{
    trace_add((char)(intptr_t)arg);
    return 0;
}

#define CH(c) ((void *)(intptr_t)(c))

static int return_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

static int count_runs(void *arg)
{
    (*(int *)arg)++;
    return 0;
}

static int record_now(void *arg)
{
    *(int64_t *)arg = weft_now(NULL);
    return 0;
}

/* Sleep for the number of seconds in arg, then return 0. */
static int sleep_secs(void *arg)
{
    ASSERT_OK(weft_sleep_for(WEFT_SEC((intptr_t)arg)));
    return 0;
}

/* A failure handler that records its calls. */
struct hcall {
    weft_coro *co;
    int status;
    void *arg;
};
static struct hcall hcalls[64];
static int nhcalls;

static void hcalls_reset(void)
{
    nhcalls = 0;
    memset(hcalls, 0, sizeof hcalls);
}

static void rec_handler(weft_coro *co, int status, void *arg)
{
    ASSERT_LT(nhcalls, 64);
    hcalls[nhcalls].co = co;
    hcalls[nhcalls].status = status;
    hcalls[nhcalls].arg = arg;
    nhcalls++;
    if (arg)
        trace_add(*(const char *)arg);
}

/* ----------------------------------------------------------------------
 * Spawning
 * ---------------------------------------------------------------------- */

struct once {
    int runs;
    void *arg_seen;
    weft_coro *self_seen;
};

static int once_body(void *arg)
{
    struct once *o = arg;
    o->runs++;
    o->arg_seen = arg;
    o->self_seen = weft_self();
    return 0;
}

TEST(spawn_runs_once_with_its_arg)
{
    weft_sched *s = new_manual();
    struct once o = {0, NULL, NULL};
    weft_coro *co = NULL;
    ASSERT_OK(weft_spawn(s, once_body, &o, NULL, &co));
    ASSERT_NOT_NULL(co);
    ASSERT_EQ(o.runs, 0); /* not before the scheduler runs */
    ASSERT_EQ(weft_coro_done(co), 0);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(o.runs, 1);
    ASSERT_PTR_EQ(o.arg_seen, &o);
    ASSERT_PTR_EQ(o.self_seen, co);
    ASSERT_EQ(weft_coro_done(co), 1);
    int st = -1;
    ASSERT_OK(weft_reap(co, &st));
    ASSERT_EQ(st, 0);
    /* Exit statuses, including non-negative ones, come back unchanged. */
    ASSERT_OK(weft_spawn(s, return_arg, (void *)(intptr_t)12345, NULL, &co));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_reap(co, &st));
    ASSERT_EQ(st, 12345);
    ASSERT_OK(weft_sched_free(s));
}

TEST(spawn_rejects_bad_arguments)
{
    weft_sched *s = new_manual();
    struct weft_spawn_opts o;
    weft_coro *co = NULL;

    ASSERT_ERR(weft_spawn(s, NULL, NULL, NULL, &co), -EINVAL);
    ASSERT_ERR(weft_spawn_at(s, 0, NULL, NULL, NULL, &co), -EINVAL);
    ASSERT_ERR(weft_spawn_in(s, 0, NULL, NULL, NULL, &co), -EINVAL);
    ASSERT_ERR(weft_spawn_in(s, -1, return_arg, NULL, NULL, &co), -EINVAL);
    ASSERT_ERR(weft_spawn_recurring(s, 1, 0, -1, NULL, NULL, NULL, &co),
               -EINVAL);

    memset(&o, 0, sizeof o);
    o.priority = WEFT_PRIO_HIGH - 1;
    ASSERT_ERR(weft_spawn(s, return_arg, NULL, &o, &co), -EINVAL);
    o.priority = WEFT_PRIO_IDLE + 1;
    ASSERT_ERR(weft_spawn(s, return_arg, NULL, &o, &co), -EINVAL);
    ASSERT_ERR(weft_spawn_at(s, 5, return_arg, NULL, &o, &co), -EINVAL);
    ASSERT_ERR(weft_spawn_in(s, 5, return_arg, NULL, &o, &co), -EINVAL);
    ASSERT_ERR(weft_spawn_recurring(s, 1, 0, -1, return_arg, NULL, &o, &co),
               -EINVAL);

    memset(&o, 0, sizeof o);
    o.stack_size = 16 * 1024 - 1;
    ASSERT_ERR(weft_spawn(s, return_arg, NULL, &o, &co), -EINVAL);
    o.stack_size = ((size_t)1 << 30) + 1;
    ASSERT_ERR(weft_spawn(s, return_arg, NULL, &o, &co), -EINVAL);
    ASSERT_ERR(weft_spawn_at(s, 0, return_arg, NULL, &o, &co), -EINVAL);

    /* Nothing was created by the failed calls. */
    ASSERT_EQ(weft_sched_count(s), 0);
    ASSERT_EQ(weft_next_timeout(s), -1);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_sched_free(s));
}

static int spawn_detached_inside(void *arg)
{
    int *n = arg;
    ASSERT_OK(weft_spawn(NULL, count_runs, n, NULL, NULL));
    ASSERT_OK(weft_spawn_in(NULL, WEFT_SEC(1), count_runs, n, NULL, NULL));
    return 0;
}

static int try_join_detached(void *arg)
{
    weft_coro *self = weft_self();
    int *n = arg;
    /* A detached coroutine's handle is usable while it runs... */
    ASSERT_PTR_EQ(weft_coro_data(self), n);
    /* ...but it cannot be joined, reaped or detached again. */
    ASSERT_ERR(weft_reap(self, NULL), -EINVAL);
    ASSERT_ERR(weft_detach(self), -EINVAL);
    (*n)++;
    return 0;
}

TEST(spawn_without_out_is_detached)
{
    weft_sched *s = new_manual();
    struct weft_spawn_opts o;
    int n = 0;
    ASSERT_OK(weft_spawn(s, count_runs, &n, NULL, NULL));
    ASSERT_OK(weft_spawn_at(s, WEFT_SEC(2), count_runs, &n, NULL, NULL));
    ASSERT_OK(weft_spawn(s, spawn_detached_inside, &n, NULL, NULL));
    memset(&o, 0, sizeof o);
    o.data = &n;
    ASSERT_OK(weft_spawn(s, try_join_detached, &n, &o, NULL));
    ASSERT_EQ(weft_sched_count(s), 4);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(n, 5);
    ASSERT_EQ(weft_sched_count(s), 0);
    /* Detached coroutines were freed as they finished (checked by the
     * leak checkers under ASan and Valgrind). */
    ASSERT_OK(weft_sched_free(s));
}

static int check_own_opts(void *arg)
{
    weft_coro *self = weft_self();
    ASSERT_STR_EQ(weft_coro_name(self), "worker");
    ASSERT_PTR_EQ(weft_coro_data(self), arg);
    /* The stack is really there: use half of it. */
    volatile char big[64 * 1024];
    memset((char *)big, 0x5a, sizeof big);
    ASSERT_EQ(big[sizeof big - 1], 0x5a);
    return 0;
}

TEST(spawn_options_apply)
{
    weft_sched *s = new_manual();
    struct weft_spawn_opts o;
    weft_coro *co;
    int data = 0;
    size_t page = page_size();
    memset(&o, 0, sizeof o);
    o.name = "worker";
    o.data = &data;
    o.stack_size = 128 * 1024 + 1;
    o.priority = WEFT_PRIO_LOW;
    ASSERT_OK(weft_spawn(s, check_own_opts, &data, &o, &co));
    ASSERT_STR_EQ(weft_coro_name(co), "worker");
    ASSERT_PTR_EQ(weft_coro_data(co), &data);
    ASSERT_EQ(weft_coro_stack_size(co), (128 * 1024 + 1 + page - 1) / page * page);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_reap(co, NULL));
    ASSERT_OK(weft_sched_free(s));
}

TEST(spawn_at_runs_at_exactly_t)
{
    weft_sched *s = new_manual();
    int64_t a = -1, b = -1;
    weft_coro *ca;
    ASSERT_OK(weft_spawn_at(s, WEFT_SEC(7), record_now, &a, NULL, &ca));
    ASSERT_OK(weft_spawn_at(s, WEFT_MSEC(2500), record_now, &b, NULL, NULL));
    ASSERT_EQ(weft_sched_count(s), 2);
    ASSERT_EQ(weft_coro_done(ca), 0);
    ASSERT_EQ(weft_next_timeout(s), WEFT_MSEC(2500));
    /* Nothing runs before its time. */
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(a, -1);
    ASSERT_EQ(b, -1);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(b, WEFT_MSEC(2500));
    ASSERT_EQ(a, WEFT_SEC(7));
    ASSERT_EQ(weft_now(s), WEFT_SEC(7));
    ASSERT_OK(weft_reap(ca, NULL));
    ASSERT_OK(weft_sched_free(s));
}

TEST(spawn_at_in_the_past_runs_asap)
{
    weft_sched *s = new_manual();
    int64_t a = -1, b = -1;
    ASSERT_OK(weft_clock_set(s, WEFT_SEC(10)));
    ASSERT_OK(weft_spawn_at(s, WEFT_SEC(3), record_now, &a, NULL, NULL));
    ASSERT_OK(weft_spawn_at(s, -WEFT_SEC(3), record_now, &b, NULL, NULL));
    ASSERT_EQ(weft_next_timeout(s), 0);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(a, WEFT_SEC(10));
    ASSERT_EQ(b, WEFT_SEC(10));
    ASSERT_EQ(weft_now(s), WEFT_SEC(10));
    ASSERT_OK(weft_sched_free(s));
}

static int spawn_in_from_inside(void *arg)
{
    int64_t *t = arg;
    ASSERT_OK(weft_sleep_for(WEFT_SEC(1)));
    ASSERT_OK(weft_spawn_in(NULL, WEFT_SEC(2), record_now, t, NULL, NULL));
    return 0;
}

TEST(spawn_in_runs_after_the_delay)
{
    weft_sched *s = new_manual();
    int64_t a = -1, b = -1, c = -1;
    ASSERT_OK(weft_clock_set(s, WEFT_SEC(2)));
    ASSERT_OK(weft_spawn_in(s, WEFT_SEC(3), record_now, &a, NULL, NULL));
    ASSERT_OK(weft_spawn_in(s, 0, record_now, &b, NULL, NULL));
    ASSERT_OK(weft_spawn(s, spawn_in_from_inside, &c, NULL, NULL));
    ASSERT_ERR(weft_spawn_in(s, -1, record_now, &a, NULL, NULL), -EINVAL);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(b, WEFT_SEC(2));
    ASSERT_EQ(a, WEFT_SEC(5));
    ASSERT_EQ(c, WEFT_SEC(5));
    ASSERT_OK(weft_sched_free(s));
}

TEST(spawn_at_equal_times_run_in_spawn_order)
{
    weft_sched *s = new_manual();
    trace_reset();
    ASSERT_OK(weft_spawn_at(s, WEFT_SEC(2), log_once, CH('c'), NULL, NULL));
    ASSERT_OK(weft_spawn_at(s, WEFT_SEC(1), log_once, CH('a'), NULL, NULL));
    ASSERT_OK(weft_spawn_at(s, WEFT_SEC(2), log_once, CH('d'), NULL, NULL));
    ASSERT_OK(weft_spawn_at(s, WEFT_SEC(1), log_once, CH('b'), NULL, NULL));
    ASSERT_OK(weft_spawn_at(s, WEFT_SEC(2), log_once, CH('e'), NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "abcde");
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Recurring
 * ---------------------------------------------------------------------- */

struct rec {
    int64_t times[32];
    int n;
    int fail_on;            /* run index that returns fail_status, or -1 */
    int fail_status;
    int advance_on;         /* run index that advances the clock, or -1 */
    int64_t advance_by;
    int end_self_on;        /* run index that ends its own coroutine, or -1 */
    weft_coro *self[32];
};

static void rec_init(struct rec *r)
{
    memset(r, 0, sizeof *r);
    r->fail_on = r->advance_on = r->end_self_on = -1;
}

static int rec_fn(void *arg)
{
    struct rec *r = arg;
    int i = r->n;
    ASSERT_LT(i, 32);
    r->times[i] = weft_now(NULL);
    r->self[i] = weft_self();
    r->n++;
    if (i == r->advance_on)
        ASSERT_OK(weft_clock_advance(NULL, r->advance_by));
    if (i == r->end_self_on)
        ASSERT_OK(weft_end(weft_self()));
    if (i == r->fail_on)
        return r->fail_status;
    return 0;
}

TEST(recurring_runs_on_a_grid)
{
    weft_sched *s = new_manual();
    struct rec r;
    weft_coro *co;
    int st = -1;
    rec_init(&r);
    ASSERT_OK(weft_clock_set(s, WEFT_SEC(5)));
    ASSERT_OK(weft_spawn_recurring(s, WEFT_SEC(1), 4, -1, rec_fn, &r, NULL,
                                   &co));
    ASSERT_EQ(weft_sched_count(s), 1);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(r.n, 4);
    ASSERT_EQ(r.times[0], WEFT_SEC(5));
    ASSERT_EQ(r.times[1], WEFT_SEC(6));
    ASSERT_EQ(r.times[2], WEFT_SEC(7));
    ASSERT_EQ(r.times[3], WEFT_SEC(8));
    /* Every run happens in the one coroutine whose handle was returned. */
    for (int i = 0; i < 4; i++)
        ASSERT_PTR_EQ(r.self[i], co);
    ASSERT_EQ(weft_now(s), WEFT_SEC(8));
    ASSERT_OK(weft_reap(co, &st));
    ASSERT_EQ(st, 0);
    ASSERT_OK(weft_sched_free(s));
}

TEST(recurring_starting_at_a_future_time)
{
    weft_sched *s = new_manual();
    struct rec r;
    rec_init(&r);
    ASSERT_OK(weft_spawn_recurring(s, WEFT_SEC(2), 3, WEFT_SEC(10), rec_fn,
                                   &r, NULL, NULL));
    ASSERT_EQ(weft_next_timeout(s), WEFT_SEC(10));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(r.n, 3);
    ASSERT_EQ(r.times[0], WEFT_SEC(10));
    ASSERT_EQ(r.times[1], WEFT_SEC(12));
    ASSERT_EQ(r.times[2], WEFT_SEC(14));
    ASSERT_EQ(weft_sched_count(s), 0); /* detached: freed */
    ASSERT_OK(weft_sched_free(s));
}

TEST(recurring_starting_in_the_past_keeps_its_grid)
{
    weft_sched *s = new_manual();
    struct rec r;
    rec_init(&r);
    ASSERT_OK(weft_clock_set(s, WEFT_SEC(100)));
    ASSERT_OK(weft_spawn_recurring(s, WEFT_SEC(10), 3, WEFT_SEC(75), rec_fn,
                                   &r, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(r.n, 3);
    ASSERT_EQ(r.times[0], WEFT_SEC(100)); /* as soon as possible */
    /* Then on the grid 75 + 10k: 85 and 95 have passed, not burst. */
    ASSERT_EQ(r.times[1], WEFT_SEC(105));
    ASSERT_EQ(r.times[2], WEFT_SEC(115));
    ASSERT_OK(weft_sched_free(s));
}

TEST(recurring_late_run_does_not_shift_the_grid)
{
    weft_sched *s = new_manual();
    struct rec r;
    rec_init(&r);
    r.advance_on = 0;
    r.advance_by = WEFT_SEC(4); /* the first run takes 4 s of 10 */
    ASSERT_OK(weft_spawn_recurring(s, WEFT_SEC(10), 3, -1, rec_fn, &r, NULL,
                                   NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(r.n, 3);
    ASSERT_EQ(r.times[0], 0);
    ASSERT_EQ(r.times[1], WEFT_SEC(10));
    ASSERT_EQ(r.times[2], WEFT_SEC(20));
    ASSERT_OK(weft_sched_free(s));
}

TEST(recurring_overrun_skips_grid_points)
{
    weft_sched *s = new_manual();
    struct rec r;
    rec_init(&r);
    r.advance_on = 1;
    r.advance_by = WEFT_SEC(25); /* run at 10 s ends at 35 s */
    ASSERT_OK(weft_spawn_recurring(s, WEFT_SEC(10), 4, -1, rec_fn, &r, NULL,
                                   NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(r.n, 4);
    ASSERT_EQ(r.times[0], 0);
    ASSERT_EQ(r.times[1], WEFT_SEC(10));
    /* 20 s and 30 s were passed while it ran: skipped, not burst. */
    ASSERT_EQ(r.times[2], WEFT_SEC(40));
    ASSERT_EQ(r.times[3], WEFT_SEC(50));
    ASSERT_OK(weft_sched_free(s));
}

TEST(recurring_negative_return_ends_it)
{
    weft_sched *s = new_manual();
    struct rec r;
    weft_coro *co;
    int st = 0;
    char tag = 'g';
    rec_init(&r);
    r.fail_on = 2;
    r.fail_status = -EPIPE;
    hcalls_reset();
    trace_reset();
    ASSERT_OK(weft_on_error_global(s, rec_handler, &tag));
    ASSERT_OK(weft_spawn_recurring(s, WEFT_SEC(1), 0, -1, rec_fn, &r, NULL,
                                   &co));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(r.n, 3);
    ASSERT_EQ(weft_now(s), WEFT_SEC(2));
    ASSERT_OK(weft_reap(co, &st));
    ASSERT_ERR(st, -EPIPE);
    /* It is a failure like any other. */
    ASSERT_EQ(nhcalls, 1);
    ASSERT_ERR(hcalls[0].status, -EPIPE);
    ASSERT_PTR_EQ(hcalls[0].co, co);
    ASSERT_OK(weft_sched_free(s));
}

struct ender {
    weft_coro *target;
    int64_t at;
};

static int end_later(void *arg)
{
    struct ender *e = arg;
    ASSERT_OK(weft_sleep_until(e->at));
    ASSERT_OK(weft_end(e->target));
    return 0;
}

TEST(recurring_end_stops_it)
{
    weft_sched *s = new_manual();
    struct rec r, r2;
    struct ender e;
    weft_coro *co, *co2;
    int st = 0;
    rec_init(&r);
    rec_init(&r2);
    r2.end_self_on = 1;
    hcalls_reset();
    ASSERT_OK(weft_on_error_global(s, rec_handler, NULL));
    ASSERT_OK(weft_spawn_recurring(s, WEFT_SEC(1), 0, -1, rec_fn, &r, NULL,
                                   &co));
    /* A second one ends itself from its own function. */
    ASSERT_OK(weft_spawn_recurring(s, WEFT_SEC(1), 0, -1, rec_fn, &r2, NULL,
                                   &co2));
    e.target = co;
    e.at = WEFT_MSEC(3500);
    ASSERT_OK(weft_spawn(s, end_later, &e, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(r.n, 4); /* 0, 1, 2, 3 s */
    ASSERT_EQ(r.times[3], WEFT_SEC(3));
    ASSERT_EQ(weft_now(s), WEFT_MSEC(3500)); /* its 4 s wake-up is gone */
    ASSERT_OK(weft_reap(co, &st));
    ASSERT_ERR(st, -ECANCELED);
    ASSERT_EQ(r2.n, 2);
    ASSERT_OK(weft_reap(co2, &st));
    ASSERT_ERR(st, -ECANCELED);
    /* Ending is not a failure. */
    ASSERT_EQ(nhcalls, 0);
    ASSERT_OK(weft_sched_free(s));
}

TEST(recurring_ended_before_its_first_run)
{
    weft_sched *s = new_manual();
    struct rec r;
    weft_coro *co;
    int st = 0;
    rec_init(&r);
    ASSERT_OK(weft_spawn_recurring(s, WEFT_SEC(1), 0, WEFT_SEC(10), rec_fn,
                                   &r, NULL, &co));
    ASSERT_OK(weft_end(co));
    ASSERT_EQ(weft_coro_done(co), 1);
    ASSERT_EQ(weft_sched_count(s), 0);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(r.n, 0);
    ASSERT_EQ(weft_now(s), 0);
    ASSERT_OK(weft_reap(co, &st));
    ASSERT_ERR(st, -ECANCELED);
    ASSERT_OK(weft_sched_free(s));
}

TEST(recurring_rejects_bad_arguments)
{
    weft_sched *s = new_manual();
    struct rec r;
    weft_coro *co;
    rec_init(&r);
    ASSERT_ERR(weft_spawn_recurring(s, 0, 0, -1, rec_fn, &r, NULL, &co),
               -EINVAL);
    ASSERT_ERR(weft_spawn_recurring(s, -WEFT_SEC(1), 0, -1, rec_fn, &r, NULL,
                                    &co), -EINVAL);
    ASSERT_ERR(weft_spawn_recurring(s, WEFT_SEC(1), -1, -1, rec_fn, &r, NULL,
                                    &co), -EINVAL);
    ASSERT_ERR(weft_spawn_recurring(s, WEFT_SEC(1), 0, -1, NULL, &r, NULL,
                                    &co), -EINVAL);
    ASSERT_EQ(weft_sched_count(s), 0);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(r.n, 0);
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Yield and sleep
 * ---------------------------------------------------------------------- */

static int yield_twice(void *arg)
{
    char c = (char)(intptr_t)arg;
    trace_add(c);
    ASSERT_OK(weft_yield());
    trace_add(c);
    ASSERT_OK(weft_yield());
    trace_add(c);
    return 0;
}

TEST(yield_lets_others_run)
{
    weft_sched *s = new_manual();
    trace_reset();
    ASSERT_OK(weft_spawn(s, yield_twice, CH('a'), NULL, NULL));
    ASSERT_OK(weft_spawn(s, log_once, CH('b'), NULL, NULL));
    ASSERT_OK(weft_spawn(s, yield_twice, CH('c'), NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "abcacac");
    ASSERT_EQ(weft_now(s), 0);
    ASSERT_OK(weft_sched_free(s));
}

struct sleeps {
    int64_t t[8];
    int r[8];
};

static int sleep_sequence(void *arg)
{
    struct sleeps *sl = arg;
    sl->r[0] = weft_sleep_for(WEFT_MSEC(1500));
    sl->t[0] = weft_now(NULL);
    sl->r[1] = weft_sleep_for(1);
    sl->t[1] = weft_now(NULL);
    sl->r[2] = weft_sleep_until(WEFT_SEC(7));
    sl->t[2] = weft_now(NULL);
    sl->r[3] = weft_sleep_for(-1);
    sl->r[4] = weft_sleep_for(INT64_MAX / 2 + 1); /* no overflow: huge */
    sl->t[4] = weft_now(NULL);
    return 0;
}

static int raise_after(void *arg)
{
    weft_coro *target = arg;
    ASSERT_OK(weft_sleep_for(WEFT_SEC(100)));
    ASSERT_OK(weft_raise(target, -EINTR));
    return 0;
}

TEST(sleep_for_and_sleep_until_are_exact)
{
    weft_sched *s = new_manual();
    struct sleeps sl;
    weft_coro *co;
    memset(&sl, 0, sizeof sl);
    ASSERT_OK(weft_spawn(s, sleep_sequence, &sl, NULL, &co));
    ASSERT_OK(weft_spawn(s, raise_after, co, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(sl.r[0]);
    ASSERT_EQ(sl.t[0], WEFT_MSEC(1500));
    ASSERT_OK(sl.r[1]);
    ASSERT_EQ(sl.t[1], WEFT_MSEC(1500) + 1);
    ASSERT_OK(sl.r[2]);
    ASSERT_EQ(sl.t[2], WEFT_SEC(7));
    ASSERT_ERR(sl.r[3], -EINVAL);
    /* The huge sleep was cut short by the raise at 100 s. */
    ASSERT_ERR(sl.r[4], -EINTR);
    ASSERT_EQ(sl.t[4], WEFT_SEC(100));
    ASSERT_OK(weft_reap(co, NULL));
    ASSERT_OK(weft_sched_free(s));
}

static int sleep_zero_and_past(void *arg)
{
    (void)arg;
    trace_add('a');
    ASSERT_OK(weft_sleep_for(0));
    trace_add('a');
    ASSERT_OK(weft_sleep_until(weft_now(NULL) - WEFT_SEC(1)));
    trace_add('a');
    ASSERT_OK(weft_sleep_until(weft_now(NULL)));
    trace_add('a');
    return 0;
}

static int yield_loop_b(void *arg)
{
    int n = (int)(intptr_t)arg;
    for (int i = 0; i < n; i++) {
        trace_add('b');
        ASSERT_OK(weft_yield());
    }
    return 0;
}

TEST(sleep_zero_or_in_the_past_yields)
{
    weft_sched *s = new_manual();
    trace_reset();
    ASSERT_OK(weft_clock_set(s, WEFT_SEC(10)));
    ASSERT_OK(weft_spawn(s, sleep_zero_and_past, NULL, NULL, NULL));
    ASSERT_OK(weft_spawn(s, yield_loop_b, (void *)(intptr_t)4, NULL, NULL));
    ASSERT_OK(weft_run(s));
    /* Each of those calls let b run once: they yielded. */
    ASSERT_STR_EQ(trace, "abababab");
    ASSERT_EQ(weft_now(s), WEFT_SEC(10));
    ASSERT_OK(weft_sched_free(s));
}

TEST(blocking_calls_outside_a_coroutine)
{
    weft_sched *s = new_manual();
    weft_coro *co;
    int st = 99;
    ASSERT_NULL(weft_self());
    ASSERT_OK(weft_spawn(s, return_arg, NULL, NULL, &co));
    ASSERT_ERR(weft_yield(), -EINVAL);
    ASSERT_ERR(weft_sleep_for(0), -EINVAL);
    ASSERT_ERR(weft_sleep_for(WEFT_SEC(1)), -EINVAL);
    ASSERT_ERR(weft_sleep_for(-1), -EINVAL);
    ASSERT_ERR(weft_sleep_until(0), -EINVAL);
    ASSERT_ERR(weft_sleep_until(WEFT_SEC(1)), -EINVAL);
    ASSERT_ERR(weft_join(co, &st), -EINVAL);
    ASSERT_ERR(weft_join_until(co, WEFT_SEC(1), &st), -EINVAL);
    ASSERT_EQ(st, 99);
    /* The clock did not move and the coroutine is intact. */
    ASSERT_EQ(weft_now(s), 0);
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(weft_join(co, NULL), -EINVAL);
    ASSERT_OK(weft_reap(co, &st));
    ASSERT_EQ(st, 0);
    ASSERT_NULL(weft_self());
    ASSERT_OK(weft_sched_free(s));
}

static int record_self(void *arg)
{
    *(weft_coro **)arg = weft_self();
    ASSERT_OK(weft_yield());
    ASSERT_PTR_EQ(*(weft_coro **)arg, weft_self());
    return 0;
}

TEST(self_is_the_running_coroutine)
{
    weft_sched *s = new_manual();
    weft_coro *a, *b, *seen_a = NULL, *seen_b = NULL;
    ASSERT_NULL(weft_self());
    ASSERT_OK(weft_spawn(s, record_self, &seen_a, NULL, &a));
    ASSERT_OK(weft_spawn(s, record_self, &seen_b, NULL, &b));
    ASSERT_OK(weft_run(s));
    ASSERT_PTR_EQ(seen_a, a);
    ASSERT_PTR_EQ(seen_b, b);
    ASSERT_PTR_NE(a, b);
    ASSERT_NULL(weft_self());
    ASSERT_OK(weft_reap(a, NULL));
    ASSERT_OK(weft_reap(b, NULL));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Join, reap, detach
 * ---------------------------------------------------------------------- */

struct joiner {
    weft_coro *target;
    int r, status;
    int64_t at;
    int64_t deadline;
};

static int join_body(void *arg)
{
    struct joiner *j = arg;
    j->status = 12345;
    j->r = weft_join(j->target, &j->status);
    j->at = weft_now(NULL);
    return 0;
}

static int sleep_then_return(void *arg)
{
    ASSERT_OK(weft_sleep_for(WEFT_SEC(2)));
    return (int)(intptr_t)arg;
}

TEST(join_returns_the_exit_status)
{
    weft_sched *s = new_manual();
    struct joiner j1, j2;
    weft_coro *t1, *t2;
    memset(&j1, 0, sizeof j1);
    memset(&j2, 0, sizeof j2);
    hcalls_reset();
    ASSERT_OK(weft_on_error_global(s, rec_handler, NULL));
    ASSERT_OK(weft_spawn(s, sleep_then_return, (void *)(intptr_t)42, NULL,
                         &t1));
    ASSERT_OK(weft_spawn(s, sleep_then_return, (void *)(intptr_t)-EIO, NULL,
                         &t2));
    j1.target = t1;
    j2.target = t2;
    ASSERT_OK(weft_spawn(s, join_body, &j1, NULL, NULL));
    ASSERT_OK(weft_spawn(s, join_body, &j2, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(j1.r);
    ASSERT_EQ(j1.status, 42);
    ASSERT_EQ(j1.at, WEFT_SEC(2));
    ASSERT_OK(j2.r);
    ASSERT_ERR(j2.status, -EIO);
    ASSERT_EQ(nhcalls, 1); /* t2 failed */
    ASSERT_EQ(weft_sched_count(s), 0);
    ASSERT_OK(weft_sched_free(s));
}

static int join_finished(void *arg)
{
    weft_coro *t = arg;
    trace_add('j');
    ASSERT_OK(weft_yield()); /* t runs and finishes meanwhile */
    ASSERT_EQ(weft_coro_done(t), 1);
    trace_add('j');
    ASSERT_OK(weft_join(t, NULL)); /* status not wanted */
    trace_add('J');
    return 0;
}

TEST(join_of_a_finished_coroutine_does_not_block)
{
    weft_sched *s = new_manual();
    weft_coro *t;
    trace_reset();
    ASSERT_OK(weft_spawn(s, log_once, CH('t'), NULL, &t));
    ASSERT_OK(weft_spawn(s, join_finished, t, NULL, NULL));
    ASSERT_OK(weft_spawn(s, yield_loop_b, (void *)(intptr_t)3, NULL, NULL));
    ASSERT_OK(weft_run(s));
    /* No switch between the second 'j' and 'J'. */
    ASSERT_STR_EQ(trace, "tjbjJbb");
    ASSERT_OK(weft_sched_free(s));
}

struct join_errs {
    weft_coro *sleeper, *detached, *foreign, *joined_by_other;
    int self_r, self_until_r, null_r, detached_r, foreign_r, second_r;
};

static int join_errors_body(void *arg)
{
    struct join_errs *je = arg;
    je->self_r = weft_join(weft_self(), NULL);
    je->self_until_r = weft_join_until(weft_self(), WEFT_SEC(1), NULL);
    je->null_r = weft_join(NULL, NULL);
    je->detached_r = weft_join(je->detached, NULL);
    je->foreign_r = weft_join(je->foreign, NULL);
    /* joined_by_other is being joined by first_joiner by now. */
    je->second_r = weft_join(je->joined_by_other, NULL);
    return 0;
}

static int first_joiner(void *arg)
{
    struct join_errs *je = arg;
    int st = 0;
    ASSERT_OK(weft_join(je->joined_by_other, &st));
    ASSERT_EQ(st, 0);
    return 0;
}

TEST(join_errors)
{
    weft_sched *s = new_manual(), *other = new_manual();
    struct join_errs je;
    memset(&je, 0, sizeof je);
    ASSERT_OK(weft_spawn(s, sleep_secs, (void *)(intptr_t)5, NULL,
                         &je.detached));
    ASSERT_OK(weft_detach(je.detached));
    ASSERT_OK(weft_spawn(other, return_arg, NULL, NULL, &je.foreign));
    ASSERT_OK(weft_spawn(s, sleep_secs, (void *)(intptr_t)1, NULL,
                         &je.joined_by_other));
    ASSERT_OK(weft_spawn(s, first_joiner, &je, NULL, NULL));
    ASSERT_OK(weft_spawn(s, join_errors_body, &je, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(je.self_r, -EDEADLK);
    ASSERT_ERR(je.self_until_r, -EDEADLK);
    ASSERT_ERR(je.null_r, -EINVAL);
    ASSERT_ERR(je.detached_r, -EINVAL);
    ASSERT_ERR(je.foreign_r, -EINVAL);
    ASSERT_ERR(je.second_r, -EINVAL);
    /* None of the failed joins took anything away. */
    ASSERT_EQ(weft_now(s), WEFT_SEC(5));
    ASSERT_OK(weft_run(other));
    ASSERT_OK(weft_reap(je.foreign, NULL));
    ASSERT_OK(weft_sched_free(s));
    ASSERT_OK(weft_sched_free(other));
}

static int join_until_body(void *arg)
{
    struct joiner *j = arg;
    j->r = weft_join_until(j->target, j->deadline, &j->status);
    j->at = weft_now(NULL);
    ASSERT_EQ(weft_coro_done(j->target), 0);
    /* Still joinable: a second join succeeds. */
    ASSERT_OK(weft_join(j->target, &j->status));
    return 0;
}

TEST(join_until_times_out_and_target_stays_joinable)
{
    weft_sched *s = new_manual();
    struct joiner j;
    weft_coro *jc;
    memset(&j, 0, sizeof j);
    j.status = 77;
    ASSERT_OK(weft_spawn(s, sleep_then_return, (void *)(intptr_t)9, NULL,
                         &j.target));
    j.deadline = WEFT_SEC(1);
    ASSERT_OK(weft_spawn(s, join_until_body, &j, NULL, &jc));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(j.r, -ETIMEDOUT);
    ASSERT_EQ(j.at, WEFT_SEC(1));
    ASSERT_EQ(j.status, 9); /* from the second join */
    ASSERT_EQ(weft_now(s), WEFT_SEC(2));
    ASSERT_OK(weft_reap(jc, NULL));

    /* A deadline already passed times out at once, without the clock
     * moving. */
    memset(&j, 0, sizeof j);
    ASSERT_OK(weft_spawn(s, sleep_then_return, (void *)(intptr_t)3, NULL,
                         &j.target));
    j.deadline = weft_now(s);
    ASSERT_OK(weft_spawn(s, join_until_body, &j, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(j.r, -ETIMEDOUT);
    ASSERT_EQ(j.at, WEFT_SEC(2));
    ASSERT_EQ(j.status, 3);
    ASSERT_OK(weft_sched_free(s));
}

static int join_until_done(void *arg)
{
    struct joiner *j = arg;
    ASSERT_OK(weft_yield()); /* target finishes */
    j->r = weft_join_until(j->target, 0, &j->status); /* deadline passed */
    return 0;
}

TEST(join_until_of_a_finished_coroutine_ignores_the_deadline)
{
    weft_sched *s = new_manual();
    struct joiner j;
    memset(&j, 0, sizeof j);
    ASSERT_OK(weft_clock_set(s, WEFT_SEC(1)));
    ASSERT_OK(weft_spawn(s, return_arg, (void *)(intptr_t)5, NULL, &j.target));
    ASSERT_OK(weft_spawn(s, join_until_done, &j, NULL, NULL));
    j.r = 1;
    ASSERT_OK(weft_run(s));
    ASSERT_OK(j.r);
    ASSERT_EQ(j.status, 5);
    ASSERT_OK(weft_sched_free(s));
}

static int join_twice(void *arg)
{
    struct joiner *j = arg;
    j->r = weft_join(j->target, &j->status);
    j->at = weft_now(NULL);
    /* The target was not freed by the interrupted join. */
    ASSERT_EQ(weft_coro_done(j->target), 0);
    ASSERT_ERR(weft_reap(j->target, NULL), -EAGAIN);
    ASSERT_OK(weft_join(j->target, &j->status));
    return 0;
}

TEST(join_interrupted_by_raise_keeps_the_target)
{
    weft_sched *s = new_manual();
    struct joiner j;
    weft_coro *jc;
    memset(&j, 0, sizeof j);
    ASSERT_OK(weft_spawn(s, sleep_secs, (void *)(intptr_t)10, NULL, &j.target));
    ASSERT_OK(weft_spawn(s, join_twice, &j, NULL, &jc));
    ASSERT_OK(weft_raise_at(jc, -EINTR, WEFT_SEC(4)));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(j.r, -EINTR);
    ASSERT_EQ(j.at, WEFT_SEC(4));
    ASSERT_EQ(j.status, 0);
    ASSERT_EQ(weft_now(s), WEFT_SEC(10));
    ASSERT_OK(weft_reap(jc, NULL));
    ASSERT_OK(weft_sched_free(s));
}

struct reaper {
    weft_coro *target;
    int early, late, status;
};

static int reap_body(void *arg)
{
    struct reaper *rp = arg;
    rp->early = weft_reap(rp->target, &rp->status);
    ASSERT_OK(weft_sleep_for(WEFT_SEC(3)));
    rp->late = weft_reap(rp->target, &rp->status);
    return 0;
}

TEST(reap_is_a_non_blocking_join)
{
    weft_sched *s = new_manual();
    struct reaper rp = {NULL, 1, 1, 0};
    weft_coro *t;
    int st = 0;
    ASSERT_OK(weft_spawn(s, sleep_then_return, (void *)(intptr_t)21, NULL,
                         &rp.target));
    ASSERT_OK(weft_spawn(s, reap_body, &rp, NULL, NULL));
    /* From main, before it finished. */
    ASSERT_ERR(weft_reap(rp.target, &st), -EAGAIN);
    ASSERT_EQ(st, 0);
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(rp.early, -EAGAIN);
    ASSERT_OK(rp.late);
    ASSERT_EQ(rp.status, 21);

    /* From main after weft_run(). */
    ASSERT_OK(weft_spawn(s, return_arg, (void *)(intptr_t)-ENOENT, NULL, &t));
    ASSERT_OK(weft_on_error_global(s, rec_handler, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_reap(t, &st));
    ASSERT_ERR(st, -ENOENT);
    ASSERT_OK(weft_sched_free(s));
}

TEST(reap_errors)
{
    weft_sched *s = new_manual();
    struct joiner j;
    weft_coro *d;
    memset(&j, 0, sizeof j);
    ASSERT_ERR(weft_reap(NULL, NULL), -EINVAL);
    ASSERT_OK(weft_spawn(s, sleep_secs, (void *)(intptr_t)1, NULL, &d));
    ASSERT_OK(weft_detach(d));
    ASSERT_ERR(weft_reap(d, NULL), -EINVAL); /* detached (still alive) */
    ASSERT_OK(weft_spawn(s, sleep_secs, (void *)(intptr_t)2, NULL, &j.target));
    ASSERT_OK(weft_spawn(s, join_body, &j, NULL, NULL));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_ERR(weft_reap(j.target, NULL), -EINVAL); /* being joined */
    ASSERT_ERR(weft_detach(j.target), -EINVAL);     /* likewise */
    ASSERT_OK(weft_run(s));
    ASSERT_OK(j.r);
    ASSERT_OK(weft_sched_free(s));
}

TEST(detach_before_it_finishes)
{
    weft_sched *s = new_manual();
    weft_coro *t;
    int n = 0;
    ASSERT_OK(weft_spawn(s, count_runs, &n, NULL, &t));
    ASSERT_OK(weft_detach(t));
    ASSERT_ERR(weft_detach(t), -EINVAL); /* still alive: handle valid */
    ASSERT_EQ(weft_sched_count(s), 1);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(weft_sched_count(s), 0);
    ASSERT_OK(weft_sched_free(s));
}

TEST(detach_after_it_finished)
{
    weft_sched *s = new_manual();
    weft_coro *t;
    int n = 0;
    ASSERT_OK(weft_spawn(s, count_runs, &n, NULL, &t));
    long live = weft__test_live_allocs();
    ASSERT_OK(weft_on_error(t, rec_handler, NULL)); /* allocates */
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(weft_coro_done(t), 1);
    ASSERT_GT(weft__test_live_allocs(), live);
    ASSERT_OK(weft_detach(t)); /* freed at once */
    ASSERT_EQ(weft__test_live_allocs(), live);
    ASSERT_EQ(n, 1);
    ASSERT_ERR(weft_detach(NULL), -EINVAL);
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Raise
 * ---------------------------------------------------------------------- */

struct victim {
    int r[6];
    int64_t t[6];
};

static int victim_sleeps(void *arg)
{
    struct victim *v = arg;
    v->r[0] = weft_sleep_for(WEFT_SEC(10));
    v->t[0] = weft_now(NULL);
    v->r[1] = weft_sleep_for(WEFT_SEC(1));
    v->t[1] = weft_now(NULL);
    return 0;
}

struct raiser {
    weft_coro *target;
    int err;
    int64_t at;
    int r;
};

static int raise_at_time(void *arg)
{
    struct raiser *ra = arg;
    ASSERT_OK(weft_sleep_until(ra->at));
    ra->r = weft_raise(ra->target, ra->err);
    return 0;
}

TEST(raise_wakes_a_sleeping_coroutine)
{
    weft_sched *s = new_manual();
    struct victim v;
    struct raiser ra;
    weft_coro *t;
    memset(&v, 0, sizeof v);
    ASSERT_OK(weft_spawn(s, victim_sleeps, &v, NULL, &t));
    ra.target = t;
    ra.err = -EIO;
    ra.at = WEFT_SEC(2);
    ra.r = 1;
    ASSERT_OK(weft_spawn(s, raise_at_time, &ra, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(ra.r);
    ASSERT_ERR(v.r[0], -EIO);
    ASSERT_EQ(v.t[0], WEFT_SEC(2));
    /* Delivered once: the next call is unaffected. */
    ASSERT_OK(v.r[1]);
    ASSERT_EQ(v.t[1], WEFT_SEC(3));
    ASSERT_OK(weft_reap(t, NULL));

    /* From main, between iterations. */
    memset(&v, 0, sizeof v);
    ASSERT_OK(weft_spawn(s, victim_sleeps, &v, NULL, &t));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_raise(t, -ENOTCONN));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(v.r[0], -ENOTCONN);
    ASSERT_EQ(v.t[0], WEFT_SEC(3));
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_sched_free(s));
}

static int victim_yields(void *arg)
{
    struct victim *v = arg;
    v->r[0] = weft_yield();
    v->r[1] = weft_sleep_for(WEFT_SEC(1));
    v->t[1] = weft_now(NULL);
    v->r[2] = weft_sleep_for(WEFT_SEC(1));
    v->t[2] = weft_now(NULL);
    return 0;
}

static int raise_now(void *arg)
{
    struct raiser *ra = arg;
    ra->r = weft_raise(ra->target, ra->err);
    return 0;
}

TEST(raise_into_a_ready_coroutine_hits_its_next_blocking_call)
{
    weft_sched *s = new_manual();
    struct victim v;
    struct raiser ra;
    weft_coro *t;
    memset(&v, 0, sizeof v);
    ASSERT_OK(weft_spawn(s, victim_yields, &v, NULL, &t));
    ra.target = t;
    ra.err = -EPIPE;
    ra.r = 1;
    /* Runs after t has yielded (t is ready, not blocked). */
    ASSERT_OK(weft_spawn(s, raise_now, &ra, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(ra.r);
    ASSERT_OK(v.r[0]);
    ASSERT_ERR(v.r[1], -EPIPE);
    ASSERT_EQ(v.t[1], 0); /* failed at once */
    ASSERT_OK(v.r[2]);
    ASSERT_EQ(v.t[2], WEFT_SEC(1));
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_sched_free(s));
}

TEST(raise_into_a_coroutine_that_never_ran)
{
    weft_sched *s = new_manual();
    struct victim v;
    weft_coro *t;
    memset(&v, 0, sizeof v);
    ASSERT_OK(weft_spawn(s, victim_yields, &v, NULL, &t));
    ASSERT_OK(weft_raise(t, -EAGAIN));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(v.r[0], -EAGAIN); /* its first blocking call */
    ASSERT_OK(v.r[1]);
    ASSERT_OK(v.r[2]);
    ASSERT_EQ(v.t[2], WEFT_SEC(2));
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_sched_free(s));
}

static int raise_self_body(void *arg)
{
    struct victim *v = arg;
    v->r[0] = weft_raise(weft_self(), -EIO);
    v->r[1] = weft_yield();
    v->r[2] = weft_yield();
    return 0;
}

TEST(raise_into_self)
{
    weft_sched *s = new_manual();
    struct victim v;
    memset(&v, 0, sizeof v);
    ASSERT_OK(weft_spawn(s, raise_self_body, &v, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(v.r[0]);
    ASSERT_ERR(v.r[1], -EIO);
    ASSERT_OK(v.r[2]);
    ASSERT_OK(weft_sched_free(s));
}

static int raise_twice(void *arg)
{
    struct raiser *ra = arg;
    ASSERT_OK(weft_raise(ra->target, -EIO));
    ASSERT_OK(weft_raise(ra->target, -EPIPE));
    return 0;
}

TEST(raise_keeps_only_the_latest)
{
    weft_sched *s = new_manual();
    struct victim v;
    struct raiser ra;
    weft_coro *t;
    memset(&v, 0, sizeof v);
    memset(&ra, 0, sizeof ra);
    ASSERT_OK(weft_spawn(s, victim_yields, &v, NULL, &t));
    ra.target = t;
    ASSERT_OK(weft_spawn(s, raise_twice, &ra, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(v.r[0]);
    ASSERT_ERR(v.r[1], -EPIPE);
    ASSERT_OK(v.r[2]); /* -EIO was replaced, not queued */
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_sched_free(s));
}

TEST(raise_errors)
{
    weft_sched *s = new_manual();
    weft_coro *t;
    ASSERT_OK(weft_spawn(s, sleep_secs, (void *)(intptr_t)1, NULL, &t));
    ASSERT_ERR(weft_raise(NULL, -EIO), -EINVAL);
    ASSERT_ERR(weft_raise(t, 0), -EINVAL);
    ASSERT_ERR(weft_raise(t, EIO), -EINVAL);
    ASSERT_OK(weft_run(s));
    /* Finished (not yet reaped): nothing to raise into. */
    ASSERT_ERR(weft_raise(t, -EIO), -ESRCH);
    ASSERT_ERR(weft_raise_at(t, -EIO, WEFT_SEC(5)), -ESRCH);
    ASSERT_ERR(weft_raise_in(t, -EIO, WEFT_SEC(5)), -ESRCH);
    int st = 1;
    ASSERT_OK(weft_reap(t, &st));
    ASSERT_EQ(st, 0);
    ASSERT_OK(weft_sched_free(s));
}

TEST(raise_at_is_delivered_at_its_time)
{
    weft_sched *s = new_manual();
    struct victim v;
    weft_coro *t;
    memset(&v, 0, sizeof v);
    ASSERT_OK(weft_spawn(s, victim_sleeps, &v, NULL, &t));
    ASSERT_OK(weft_raise_at(t, -ETIME, WEFT_SEC(3)));
    ASSERT_EQ(weft_next_timeout(s), 0);
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(v.r[0], -ETIME);
    ASSERT_EQ(v.t[0], WEFT_SEC(3));
    ASSERT_OK(v.r[1]);
    ASSERT_EQ(v.t[1], WEFT_SEC(4));
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_sched_free(s));
}

struct raise_in_ctx {
    weft_coro *target;
    int r_neg, r_pos, r_zero_err;
};

static int raise_in_body(void *arg)
{
    struct raise_in_ctx *c = arg;
    ASSERT_OK(weft_sleep_for(WEFT_SEC(1)));
    c->r_neg = weft_raise_in(c->target, -EIO, -1);
    c->r_zero_err = weft_raise_in(c->target, 0, WEFT_SEC(1));
    c->r_pos = weft_raise_in(c->target, -EBUSY, WEFT_SEC(2));
    return 0;
}

TEST(raise_in_is_delivered_after_the_delay)
{
    weft_sched *s = new_manual();
    struct victim v;
    struct raise_in_ctx c;
    weft_coro *t;
    memset(&v, 0, sizeof v);
    memset(&c, 0, sizeof c);
    ASSERT_OK(weft_spawn(s, victim_sleeps, &v, NULL, &t));
    c.target = t;
    ASSERT_OK(weft_spawn(s, raise_in_body, &c, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(c.r_neg, -EINVAL);
    ASSERT_ERR(c.r_zero_err, -EINVAL);
    ASSERT_OK(c.r_pos);
    ASSERT_ERR(v.r[0], -EBUSY);
    ASSERT_EQ(v.t[0], WEFT_SEC(3));
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_ERR(weft_raise_in(NULL, -EIO, 0), -EINVAL);
    ASSERT_OK(weft_sched_free(s));
}

static void noop_timer(weft_timer *t, void *arg)
{
    (void)t;
    (void)arg;
}

TEST(raise_at_does_nothing_if_the_target_finishes_first)
{
    weft_sched *s = new_manual();
    weft_coro *t, *d;
    int st = 1;
    hcalls_reset();
    ASSERT_OK(weft_on_error_global(s, rec_handler, NULL));
    ASSERT_OK(weft_spawn(s, sleep_secs, (void *)(intptr_t)1, NULL, &t));
    ASSERT_OK(weft_spawn(s, sleep_secs, (void *)(intptr_t)1, NULL, &d));
    /* The timer heap's array is allocated by its first timer: make it
     * exist before counting. */
    weft_timer *warm;
    ASSERT_OK(weft_timer_new(s, noop_timer, NULL, &warm));
    ASSERT_OK(weft_timer_start(warm, 0, 0));
    ASSERT_OK(weft_timer_free(warm));
    long live = weft__test_live_allocs();
    ASSERT_OK(weft_raise_at(t, -EIO, WEFT_SEC(5)));
    ASSERT_OK(weft_raise_in(t, -EPIPE, WEFT_SEC(6)));
    ASSERT_OK(weft_raise_at(d, -EIO, WEFT_SEC(5)));
    ASSERT_GT(weft__test_live_allocs(), live);
    ASSERT_OK(weft_detach(d));
    ASSERT_OK(weft_run(s));
    /* ...and their records were freed (t is not even reaped yet). */
    ASSERT_EQ(weft__test_live_allocs(), live);
    /* The pending raises went with the coroutines: the loop did not wait
     * for them. */
    ASSERT_EQ(weft_now(s), WEFT_SEC(1));
    ASSERT_EQ(weft_next_timeout(s), -1);
    ASSERT_EQ(nhcalls, 0);
    ASSERT_OK(weft_reap(t, &st));
    ASSERT_EQ(st, 0);
    ASSERT_OK(weft_sched_free(s));
}

TEST(raise_at_errors)
{
    weft_sched *s = new_manual();
    weft_coro *t;
    ASSERT_OK(weft_spawn(s, sleep_secs, (void *)(intptr_t)1, NULL, &t));
    ASSERT_ERR(weft_raise_at(NULL, -EIO, 0), -EINVAL);
    ASSERT_ERR(weft_raise_at(t, 0, 0), -EINVAL);
    ASSERT_ERR(weft_raise_at(t, 1, 0), -EINVAL);
    ASSERT_ERR(weft_raise_in(t, -EIO, -5), -EINVAL);
    /* Out of memory for the timer record. */
    weft__test_fail_alloc(0, 0);
    ASSERT_ERR(weft_raise_at(t, -EIO, WEFT_SEC(5)), -ENOMEM);
    weft__test_fail_alloc(-1, 0);
    ASSERT_EQ(weft_next_timeout(s), 0);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(weft_now(s), WEFT_SEC(1));
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * End
 * ---------------------------------------------------------------------- */

struct endee {
    weft_coro *other;
    int r[8];
    int64_t t0;
};

static int endee_body(void *arg)
{
    struct endee *e = arg;
    e->r[0] = weft_sleep_for(WEFT_SEC(10));
    e->t0 = weft_now(NULL);
    /* Every later blocking call fails at once. */
    e->r[1] = weft_yield();
    e->r[2] = weft_sleep_for(WEFT_SEC(1));
    e->r[3] = weft_sleep_until(0);
    e->r[4] = weft_join(e->other, NULL);
    e->r[5] = weft_join_until(e->other, WEFT_SEC(100), NULL);
    e->r[6] = weft_sleep_for(0);
    ASSERT_EQ(weft_coro_ended(weft_self()), 1);
    return e->r[0];
}

TEST(end_a_sleeping_coroutine)
{
    weft_sched *s = new_manual();
    struct endee e;
    struct ender en;
    weft_coro *t;
    int st = 0;
    memset(&e, 0, sizeof e);
    hcalls_reset();
    ASSERT_OK(weft_on_error_global(s, rec_handler, NULL));
    ASSERT_OK(weft_spawn(s, sleep_secs, (void *)(intptr_t)5, NULL, &e.other));
    ASSERT_OK(weft_spawn(s, endee_body, &e, NULL, &t));
    en.target = t;
    en.at = WEFT_SEC(2);
    ASSERT_OK(weft_spawn(s, end_later, &en, NULL, NULL));
    ASSERT_EQ(weft_coro_ended(t), 0);
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(e.r[0], -ECANCELED);
    ASSERT_EQ(e.t0, WEFT_SEC(2));
    for (int i = 1; i <= 6; i++)
        ASSERT_ERR(e.r[i], -ECANCELED);
    ASSERT_EQ(weft_coro_ended(t), 1);
    ASSERT_EQ(weft_coro_done(t), 1);
    ASSERT_OK(weft_reap(t, &st));
    ASSERT_ERR(st, -ECANCELED);
    /* Returning -ECANCELED after being ended is not a failure. */
    ASSERT_EQ(nhcalls, 0);
    /* The failed joins left `other` alone. */
    ASSERT_EQ(weft_now(s), WEFT_SEC(5));
    ASSERT_OK(weft_reap(e.other, &st));
    ASSERT_EQ(st, 0);
    ASSERT_OK(weft_sched_free(s));
}

static int must_not_run(void *arg)
{
    (void)arg;
    FAIL("an ended coroutine that never ran was run");
}

struct end_join {
    weft_coro *t;
    int r, status;
};

static int join_ended(void *arg)
{
    struct end_join *ej = arg;
    ej->r = weft_join(ej->t, &ej->status);
    return 0;
}

static int end_it(void *arg)
{
    struct end_join *ej = arg;
    ASSERT_OK(weft_end(ej->t));
    ASSERT_EQ(weft_coro_done(ej->t), 1);
    return 0;
}

TEST(end_a_coroutine_that_never_ran)
{
    weft_sched *s = new_manual();
    weft_coro *t, *d;
    int st = 0;
    hcalls_reset();
    ASSERT_OK(weft_on_error_global(s, rec_handler, NULL));
    ASSERT_OK(weft_spawn(s, must_not_run, NULL, NULL, &t));
    ASSERT_OK(weft_spawn(s, must_not_run, NULL, NULL, &d));
    ASSERT_OK(weft_detach(d));
    ASSERT_EQ(weft_sched_count(s), 2);
    ASSERT_OK(weft_end(t));
    ASSERT_OK(weft_end(d)); /* detached: freed now */
    ASSERT_EQ(weft_coro_done(t), 1);
    ASSERT_EQ(weft_coro_ended(t), 1);
    ASSERT_EQ(weft_sched_count(s), 0);
    ASSERT_EQ(weft_next_timeout(s), -1);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_reap(t, &st));
    ASSERT_ERR(st, -ECANCELED);

    /* Ended during a turn, before its own turn came: a joiner already
     * waiting on it gets -ECANCELED as its status. */
    struct end_join ej = {NULL, 1, 0};
    ASSERT_OK(weft_spawn(s, join_ended, &ej, NULL, NULL));
    ASSERT_OK(weft_spawn(s, end_it, &ej, NULL, NULL));
    ASSERT_OK(weft_spawn(s, must_not_run, NULL, NULL, &ej.t));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(ej.r);
    ASSERT_ERR(ej.status, -ECANCELED);
    ASSERT_EQ(nhcalls, 0);
    ASSERT_OK(weft_sched_free(s));
}

TEST(end_a_coroutine_not_started_yet)
{
    weft_sched *s = new_manual();
    weft_coro *t;
    int st = 0;
    ASSERT_OK(weft_spawn_at(s, WEFT_SEC(10), must_not_run, NULL, NULL, &t));
    ASSERT_OK(weft_spawn_in(s, WEFT_SEC(1), log_once, CH('x'), NULL, NULL));
    ASSERT_OK(weft_end(t));
    trace_reset();
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "x");
    ASSERT_EQ(weft_now(s), WEFT_SEC(1)); /* its start timer is gone */
    ASSERT_OK(weft_reap(t, &st));
    ASSERT_ERR(st, -ECANCELED);
    ASSERT_OK(weft_sched_free(s));
}

TEST(end_a_finished_coroutine_does_nothing)
{
    weft_sched *s = new_manual();
    weft_coro *t;
    int st = 0;
    ASSERT_OK(weft_spawn(s, return_arg, (void *)(intptr_t)3, NULL, &t));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_end(t));
    ASSERT_EQ(weft_coro_ended(t), 0);
    ASSERT_EQ(weft_coro_done(t), 1);
    ASSERT_OK(weft_reap(t, &st));
    ASSERT_EQ(st, 3);
    ASSERT_ERR(weft_end(NULL), -EINVAL);
    ASSERT_OK(weft_sched_free(s));
}

static int end_self_body(void *arg)
{
    struct victim *v = arg;
    v->r[0] = weft_end(weft_self());
    v->r[1] = weft_coro_ended(weft_self());
    v->r[2] = weft_yield();
    v->r[3] = weft_sleep_for(WEFT_SEC(1));
    return v->r[2];
}

TEST(end_self)
{
    weft_sched *s = new_manual();
    struct victim v;
    weft_coro *t;
    int st = 0;
    memset(&v, 0, sizeof v);
    hcalls_reset();
    ASSERT_OK(weft_on_error_global(s, rec_handler, NULL));
    ASSERT_OK(weft_spawn(s, end_self_body, &v, NULL, &t));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(v.r[0]);
    ASSERT_EQ(v.r[1], 1);
    ASSERT_ERR(v.r[2], -ECANCELED);
    ASSERT_ERR(v.r[3], -ECANCELED);
    ASSERT_EQ(weft_now(s), 0);
    ASSERT_OK(weft_reap(t, &st));
    ASSERT_ERR(st, -ECANCELED);
    ASSERT_EQ(nhcalls, 0);
    ASSERT_OK(weft_sched_free(s));
}

static int ended_then_fails(void *arg)
{
    (void)arg;
    ASSERT_ERR(weft_sleep_for(WEFT_SEC(10)), -ECANCELED);
    return -EIO; /* a different failure: reported */
}

TEST(ended_coroutine_failing_otherwise_is_reported)
{
    weft_sched *s = new_manual();
    weft_coro *t;
    struct ender en;
    hcalls_reset();
    ASSERT_OK(weft_on_error_global(s, rec_handler, NULL));
    ASSERT_OK(weft_spawn(s, ended_then_fails, NULL, NULL, &t));
    en.target = t;
    en.at = WEFT_SEC(1);
    ASSERT_OK(weft_spawn(s, end_later, &en, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(nhcalls, 1);
    ASSERT_PTR_EQ(hcalls[0].co, t);
    ASSERT_ERR(hcalls[0].status, -EIO);
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_sched_free(s));
}

static int end_now(void *arg)
{
    ASSERT_OK(weft_end((weft_coro *)arg));
    return 0;
}

TEST(end_a_ready_coroutine)
{
    weft_sched *s = new_manual();
    struct victim v;
    weft_coro *t;
    memset(&v, 0, sizeof v);
    ASSERT_OK(weft_spawn(s, victim_yields, &v, NULL, &t));
    /* Runs while t is ready (it yielded). */
    ASSERT_OK(weft_spawn(s, end_now, t, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(v.r[1], -ECANCELED);
    ASSERT_ERR(v.r[2], -ECANCELED);
    ASSERT_EQ(v.t[2], 0);
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_sched_free(s));
}

TEST(end_a_joiner_while_it_waits)
{
    weft_sched *s = new_manual();
    struct joiner j;
    struct ender en;
    weft_coro *jc;
    int st = 1;
    memset(&j, 0, sizeof j);
    ASSERT_OK(weft_spawn(s, sleep_then_return, (void *)(intptr_t)8, NULL,
                         &j.target));
    ASSERT_OK(weft_spawn(s, join_body, &j, NULL, &jc));
    en.target = jc;
    en.at = WEFT_SEC(1);
    ASSERT_OK(weft_spawn(s, end_later, &en, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(j.r, -ECANCELED);
    ASSERT_EQ(j.at, WEFT_SEC(1));
    /* The target was not freed: it can still be reaped. */
    ASSERT_OK(weft_reap(j.target, &st));
    ASSERT_EQ(st, 8);
    ASSERT_OK(weft_reap(jc, NULL));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Failure handlers
 * ---------------------------------------------------------------------- */

static char tag_l1 = '1', tag_l2 = '2', tag_g1 = 'A', tag_g2 = 'B';

static int add_locals_and_fail(void *arg)
{
    ASSERT_OK(weft_on_error(NULL, rec_handler, &tag_l1));
    ASSERT_OK(weft_on_error(weft_self(), rec_handler, &tag_l2));
    return (int)(intptr_t)arg;
}

TEST(handlers_local_then_global_in_order_added)
{
    weft_sched *s = new_manual();
    weft_coro *t, *u;
    hcalls_reset();
    trace_reset();
    ASSERT_OK(weft_on_error_global(s, rec_handler, &tag_g1));
    ASSERT_OK(weft_on_error_global(s, rec_handler, &tag_g2));
    ASSERT_OK(weft_spawn(s, add_locals_and_fail, (void *)(intptr_t)-EIO, NULL,
                         &t));
    ASSERT_OK(weft_spawn(s, return_arg, (void *)(intptr_t)-EPIPE, NULL, &u));
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "12ABAB");
    ASSERT_EQ(nhcalls, 6);
    for (int i = 0; i < 4; i++) {
        ASSERT_PTR_EQ(hcalls[i].co, t);
        ASSERT_ERR(hcalls[i].status, -EIO);
    }
    ASSERT_PTR_EQ(hcalls[0].arg, &tag_l1);
    ASSERT_PTR_EQ(hcalls[1].arg, &tag_l2);
    ASSERT_PTR_EQ(hcalls[2].arg, &tag_g1);
    ASSERT_PTR_EQ(hcalls[3].arg, &tag_g2);
    /* u has no local handlers. */
    ASSERT_PTR_EQ(hcalls[4].co, u);
    ASSERT_ERR(hcalls[4].status, -EPIPE);
    ASSERT_PTR_EQ(hcalls[5].co, u);
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_reap(u, NULL));
    ASSERT_OK(weft_sched_free(s));
}

TEST(handlers_added_from_outside_the_coroutine)
{
    weft_sched *s = new_manual();
    weft_coro *t;
    hcalls_reset();
    trace_reset();
    ASSERT_OK(weft_spawn(s, return_arg, (void *)(intptr_t)-EACCES, NULL, &t));
    ASSERT_OK(weft_on_error(t, rec_handler, &tag_l1));
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "1");
    ASSERT_ERR(hcalls[0].status, -EACCES);
    /* Done: no more handlers can be added. */
    ASSERT_ERR(weft_on_error(t, rec_handler, &tag_l2), -EINVAL);
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_sched_free(s));
}

static void other_handler(weft_coro *co, int status, void *arg)
{
    (void)co;
    (void)status;
    (void)arg;
    trace_add('o');
}

TEST(handler_registration_errors)
{
    weft_sched *s = new_manual();
    weft_coro *t;
    hcalls_reset();
    trace_reset();
    /* Global. */
    ASSERT_ERR(weft_on_error_global(s, NULL, NULL), -EINVAL);
    ASSERT_OK(weft_on_error_global(s, rec_handler, &tag_g1));
    ASSERT_ERR(weft_on_error_global(s, rec_handler, &tag_g1), -EEXIST);
    ASSERT_OK(weft_on_error_global(s, rec_handler, &tag_g2)); /* other arg */
    ASSERT_OK(weft_on_error_global(s, other_handler, &tag_g1)); /* other fn */
    ASSERT_OK(weft_remove_error_global(s, rec_handler, &tag_g1));
    ASSERT_ERR(weft_remove_error_global(s, rec_handler, &tag_g1), -ENOENT);
    ASSERT_ERR(weft_remove_error_global(s, rec_handler, &tag_l1), -ENOENT);
    ASSERT_ERR(weft_remove_error_global(s, NULL, NULL), -EINVAL);
    /* Local. */
    ASSERT_ERR(weft_on_error(NULL, rec_handler, NULL), -EINVAL); /* outside */
    ASSERT_ERR(weft_remove_error(NULL, rec_handler, NULL), -EINVAL);
    ASSERT_OK(weft_spawn(s, return_arg, (void *)(intptr_t)-EIO, NULL, &t));
    ASSERT_ERR(weft_remove_error(t, rec_handler, &tag_l1), -ENOENT);
    ASSERT_ERR(weft_on_error(t, NULL, NULL), -EINVAL);
    ASSERT_OK(weft_on_error(t, rec_handler, &tag_l1));
    ASSERT_ERR(weft_on_error(t, rec_handler, &tag_l1), -EEXIST);
    ASSERT_OK(weft_on_error(t, rec_handler, &tag_l2));
    ASSERT_OK(weft_remove_error(t, rec_handler, &tag_l1));
    ASSERT_ERR(weft_remove_error(t, rec_handler, &tag_l1), -ENOENT);
    ASSERT_ERR(weft_remove_error(t, NULL, &tag_l1), -EINVAL);
    ASSERT_OK(weft_run(s));
    /* Only what is still registered ran: l2, then g2 and other. */
    ASSERT_STR_EQ(trace, "2Bo");
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_sched_free(s));
}

static void fail_unhandled_child(void *arg)
{
    weft_sched *s;
    struct weft_spawn_opts o;
    weft_coro *co;
    int n = 0;
    (void)arg;
    ASSERT_OK(weft_sched_new(NULL, &s));
    memset(&o, 0, sizeof o);
    o.name = "worker-7";
    ASSERT_OK(weft_spawn(s, return_arg, (void *)(intptr_t)-EIO, &o, &co));
    ASSERT_OK(weft_spawn(s, count_runs, &n, NULL, NULL));
    printf("id=%llu\n", (unsigned long long)weft_coro_id(co));
    fflush(stdout);
    ASSERT_OK(weft_run(s));
    /* The scheduler went on after the failure. */
    ASSERT_EQ(n, 1);
    printf("after\n");
    ASSERT_OK(weft_reap(co, NULL));
    ASSERT_OK(weft_sched_free(s));
}

TEST(unhandled_failure_prints_a_line_naming_the_coroutine)
{
    char out[4096];
    unsigned long long id = 0;
    int st = weft_test_fork(fail_unhandled_child, NULL, out, sizeof out);
    ASSERT_GE(st, 0);
    ASSERT(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
    const char *p = strstr(out, "id=");
    ASSERT_NOT_NULL(p);
    ASSERT_EQ(sscanf(p, "id=%llu", &id), 1);
    char want[64];
    snprintf(want, sizeof want, "#%llu", id);
    ASSERT_STR_CONTAINS(out, want);
    ASSERT_STR_CONTAINS(out, "worker-7");
    ASSERT_STR_CONTAINS(out, "EIO");
    ASSERT_STR_CONTAINS(out, "after");
    /* Exactly one report line. */
    p = strstr(out, "worker-7");
    ASSERT_NULL(strstr(p + 1, "worker-7"));
}

static void quiet_child(void *arg)
{
    weft_sched *s = new_manual();
    weft_coro *t;
    struct ender en;
    struct endee e;
    (void)arg;
    memset(&e, 0, sizeof e);
    /* Ended and returning -ECANCELED: no report.  Success: no report. */
    ASSERT_OK(weft_spawn(s, endee_body, &e, NULL, &t));
    en.target = t;
    en.at = WEFT_SEC(1);
    ASSERT_OK(weft_spawn(s, end_later, &en, NULL, NULL));
    ASSERT_OK(weft_spawn(s, return_arg, (void *)(intptr_t)5, NULL, NULL));
    ASSERT_OK(weft_spawn(s, must_not_run, NULL, NULL, &t));
    ASSERT_OK(weft_end(t));
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_sched_free(s));
}

TEST(success_and_end_are_not_reported)
{
    char out[4096];
    int st = weft_test_fork(quiet_child, NULL, out, sizeof out);
    ASSERT_GE(st, 0);
    ASSERT(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
    ASSERT_STR_EQ(out, "");
}

static int handle_from_inside(void *arg)
{
    int *counts = arg;
    ASSERT_OK(weft_on_error(NULL, rec_handler, &tag_l1));
    counts[0] = weft_handle_error(NULL, -ENOSPC);
    counts[1] = weft_handle_error(NULL, 0);
    counts[2] = weft_handle_error(weft_self(), 1);
    return 0; /* not a failure: no further handler calls */
}

TEST(handle_error_runs_the_handlers)
{
    weft_sched *s = new_manual();
    weft_coro *t, *u;
    int counts[3] = {9, 9, 9};
    hcalls_reset();
    trace_reset();
    ASSERT_ERR(weft_handle_error(NULL, -EIO), -EINVAL); /* outside */
    ASSERT_OK(weft_on_error_global(s, rec_handler, &tag_g1));
    ASSERT_OK(weft_on_error_global(s, rec_handler, &tag_g2));
    ASSERT_OK(weft_spawn(s, handle_from_inside, counts, NULL, &t));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(counts[0], 3);
    ASSERT_ERR(counts[1], -EINVAL);
    ASSERT_ERR(counts[2], -EINVAL);
    ASSERT_STR_EQ(trace, "1AB");
    ASSERT_PTR_EQ(hcalls[0].co, t);
    ASSERT_ERR(hcalls[0].status, -ENOSPC);

    /* From main, naming a coroutine (finished or not). */
    ASSERT_OK(weft_spawn(s, return_arg, NULL, NULL, &u));
    ASSERT_OK(weft_on_error(u, rec_handler, &tag_l2));
    ASSERT_EQ(weft_handle_error(u, -ETIMEDOUT), 3);
    ASSERT_EQ(weft_handle_error(t, -EIO), 3);
    ASSERT_STR_EQ(trace, "1AB2AB1AB");
    ASSERT_PTR_EQ(hcalls[3].co, u);
    ASSERT_ERR(hcalls[3].status, -ETIMEDOUT);
    ASSERT_ERR(weft_handle_error(u, 0), -EINVAL);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_reap(u, NULL));
    ASSERT_OK(weft_sched_free(s));
}

static void handle_unhandled_child(void *arg)
{
    weft_sched *s = new_manual();
    struct weft_spawn_opts o;
    weft_coro *t;
    (void)arg;
    memset(&o, 0, sizeof o);
    o.name = "lonely";
    ASSERT_OK(weft_spawn(s, return_arg, NULL, &o, &t));
    printf("count=%d\n", weft_handle_error(t, -ECONNRESET));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_sched_free(s));
}

TEST(handle_error_without_handlers_prints_the_line)
{
    char out[4096];
    int st = weft_test_fork(handle_unhandled_child, NULL, out, sizeof out);
    ASSERT_GE(st, 0);
    ASSERT(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
    ASSERT_STR_CONTAINS(out, "count=0");
    ASSERT_STR_CONTAINS(out, "lonely");
    ASSERT_STR_CONTAINS(out, "ECONNRESET");
}

TEST(scheduler_continues_after_a_failure)
{
    weft_sched *s = new_manual();
    int n = 0;
    int64_t late = -1;
    hcalls_reset();
    trace_reset();
    ASSERT_OK(weft_on_error_global(s, rec_handler, NULL));
    ASSERT_OK(weft_spawn(s, return_arg, (void *)(intptr_t)-EIO, NULL, NULL));
    ASSERT_OK(weft_spawn(s, count_runs, &n, NULL, NULL));
    ASSERT_OK(weft_spawn(s, return_arg, (void *)(intptr_t)-EPIPE, NULL, NULL));
    ASSERT_OK(weft_spawn_in(s, WEFT_SEC(1), record_now, &late, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(nhcalls, 2);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(late, WEFT_SEC(1));
    ASSERT_OK(weft_sched_free(s));
}

static int blocked_results[8];
static weft_sched *handler_sched;

static void blocking_handler(weft_coro *co, int status, void *arg)
{
    (void)co;
    (void)status;
    (void)arg;
    blocked_results[0] = weft_yield();
    blocked_results[1] = weft_sleep_for(WEFT_SEC(1));
    blocked_results[2] = weft_sleep_for(0);
    blocked_results[3] = weft_sched_free(handler_sched);
    blocked_results[4] = weft_run(handler_sched);
}

TEST(handlers_must_not_block)
{
    weft_sched *s = new_manual();
    int n = 0;
    memset(blocked_results, 0, sizeof blocked_results);
    handler_sched = s;
    ASSERT_OK(weft_on_error_global(s, blocking_handler, NULL));
    ASSERT_OK(weft_spawn(s, return_arg, (void *)(intptr_t)-EIO, NULL, NULL));
    ASSERT_OK(weft_spawn(s, count_runs, &n, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(blocked_results[0], -EINVAL);
    ASSERT_ERR(blocked_results[1], -EINVAL);
    ASSERT_ERR(blocked_results[2], -EINVAL);
    ASSERT_ERR(blocked_results[3], -EBUSY);
    ASSERT_ERR(blocked_results[4], -EINVAL);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(weft_now(s), 0);
    ASSERT_OK(weft_sched_free(s));
}

static weft_sched *remove_sched;

static void self_removing_handler(weft_coro *co, int status, void *arg)
{
    (void)co;
    (void)status;
    trace_add(*(const char *)arg);
    /* Remove itself and the handler after it. */
    ASSERT_OK(weft_remove_error_global(remove_sched, self_removing_handler,
                                       arg));
    ASSERT_OK(weft_remove_error_global(remove_sched, rec_handler, &tag_g2));
    ASSERT_ERR(weft_remove_error_global(remove_sched, self_removing_handler,
                                        arg), -ENOENT);
}

TEST(handlers_may_remove_themselves_and_others)
{
    weft_sched *s = new_manual();
    static char tag_x = 'x';
    remove_sched = s;
    hcalls_reset();
    trace_reset();
    ASSERT_OK(weft_on_error_global(s, rec_handler, &tag_g1));
    ASSERT_OK(weft_on_error_global(s, self_removing_handler, &tag_x));
    ASSERT_OK(weft_on_error_global(s, rec_handler, &tag_g2));
    ASSERT_OK(weft_spawn(s, return_arg, (void *)(intptr_t)-EIO, NULL, NULL));
    ASSERT_OK(weft_spawn(s, return_arg, (void *)(intptr_t)-EIO, NULL, NULL));
    ASSERT_OK(weft_run(s));
    /* First failure: A, x (which removes x and B); second: A only. */
    ASSERT_STR_EQ(trace, "AxA");
    /* Removed slots are really gone: adding them again works. */
    ASSERT_OK(weft_on_error_global(s, rec_handler, &tag_g2));
    ASSERT_OK(weft_on_error_global(s, self_removing_handler, &tag_x));
    ASSERT_OK(weft_sched_free(s));
}

struct reap_in_handler {
    int r_reap, r_detach, status;
};

static void reaping_handler(weft_coro *co, int status, void *arg)
{
    struct reap_in_handler *rh = arg;
    (void)status;
    /* The failing coroutine is finished: reaping it from its own handler
     * is legal, but its stack is still in use until it switches away. */
    rh->r_reap = weft_reap(co, &rh->status);
}

static void detaching_handler(weft_coro *co, int status, void *arg)
{
    struct reap_in_handler *rh = arg;
    (void)status;
    rh->r_detach = weft_detach(co);
}

static weft_sched *new_unmapping(void);

TEST(handler_may_reap_or_detach_the_failed_coroutine)
{
    long live = weft__test_live_allocs();
    weft_sched *s = new_unmapping();
    struct reap_in_handler rh = {1, 1, 0};
    weft_coro *t, *u, *filler;
    int n = 0;
    /* Fill the stack cache so that a stack freed too early is unmapped. */
    ASSERT_OK(weft_spawn(s, return_arg, NULL, NULL, &filler));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_reap(filler, NULL));
    ASSERT_OK(weft_spawn(s, count_runs, &n, NULL, &filler));
    ASSERT_OK(weft_spawn(s, return_arg, (void *)(intptr_t)-EIO, NULL, &t));
    ASSERT_OK(weft_on_error(t, reaping_handler, &rh));
    ASSERT_OK(weft_spawn(s, return_arg, (void *)(intptr_t)-EPIPE, NULL, &u));
    ASSERT_OK(weft_on_error(u, detaching_handler, &rh));
    ASSERT_OK(weft_spawn(s, count_runs, &n, NULL, NULL));
    ASSERT_OK(weft_spawn_in(s, WEFT_SEC(1), count_runs, &n, NULL, NULL));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_reap(filler, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(rh.r_reap);
    ASSERT_ERR(rh.status, -EIO);
    ASSERT_OK(rh.r_detach);
    /* The scheduler is intact: the others ran, nothing is left. */
    ASSERT_EQ(n, 3);
    ASSERT_EQ(weft_sched_count(s), 0);
    ASSERT_EQ(weft_now(s), WEFT_SEC(1));
    /* A second round reuses the freed stacks. */
    ASSERT_OK(weft_spawn(s, count_runs, &n, NULL, &t));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_EQ(n, 4);
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), live);
}

/* ----------------------------------------------------------------------
 * Switch hooks
 * ---------------------------------------------------------------------- */

struct sw {
    weft_coro *from, *to;
    void *arg;
};
static struct sw sws[128];
static int nsws;

static void rec_hook(weft_coro *from, weft_coro *to, void *arg)
{
    ASSERT_LT(nsws, 128);
    sws[nsws].from = from;
    sws[nsws].to = to;
    sws[nsws].arg = arg;
    nsws++;
}

static int yield_once(void *arg)
{
    (void)arg;
    ASSERT_OK(weft_yield());
    return 0;
}

TEST(global_hook_sees_every_switch)
{
    weft_sched *s = new_manual();
    weft_coro *a, *b;
    int arg;
    nsws = 0;
    ASSERT_OK(weft_hook_add(s, rec_hook, &arg));
    ASSERT_OK(weft_spawn(s, yield_once, NULL, NULL, &a));
    ASSERT_OK(weft_spawn(s, return_arg, NULL, NULL, &b));
    ASSERT_OK(weft_run(s));
    /* loop->a, a->b (a yields), b->loop (b ends), loop->a, a->loop. */
    ASSERT_EQ(nsws, 5);
    ASSERT_NULL(sws[0].from);
    ASSERT_PTR_EQ(sws[0].to, a);
    ASSERT_PTR_EQ(sws[1].from, a);
    ASSERT_PTR_EQ(sws[1].to, b);
    ASSERT_PTR_EQ(sws[2].from, b);
    ASSERT_NULL(sws[2].to);
    ASSERT_NULL(sws[3].from);
    ASSERT_PTR_EQ(sws[3].to, a);
    ASSERT_PTR_EQ(sws[4].from, a);
    ASSERT_NULL(sws[4].to);
    for (int i = 0; i < nsws; i++)
        ASSERT_PTR_EQ(sws[i].arg, &arg);
    /* Removed: no more calls. */
    ASSERT_OK(weft_hook_remove(s, rec_hook, &arg));
    ASSERT_OK(weft_reap(a, NULL));
    ASSERT_OK(weft_reap(b, NULL));
    ASSERT_OK(weft_spawn(s, yield_once, NULL, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(nsws, 5);
    ASSERT_OK(weft_sched_free(s));
}

struct chook {
    int dir;
    weft_coro *co;
    void *arg;
};
static struct chook chooks[64];
static int nchooks;

static void rec_coro_hook(int dir, weft_coro *co, void *arg)
{
    ASSERT_LT(nchooks, 64);
    chooks[nchooks].dir = dir;
    chooks[nchooks].co = co;
    chooks[nchooks].arg = arg;
    nchooks++;
    trace_add(dir == WEFT_HOOK_IN ? 'I' : dir == WEFT_HOOK_OUT ? 'O' : '?');
}

static int hooked_body(void *arg)
{
    (void)arg;
    trace_add('b');
    ASSERT_OK(weft_yield());
    ASSERT_OK(weft_sleep_for(WEFT_SEC(1)));
    trace_add('E');
    return 0;
}

TEST(coro_hooks_fire_in_and_out)
{
    weft_sched *s = new_manual();
    weft_coro *t, *other;
    int in_arg, out_arg;
    nchooks = 0;
    trace_reset();
    ASSERT_OK(weft_spawn(s, hooked_body, NULL, NULL, &t));
    ASSERT_OK(weft_spawn(s, yield_once, NULL, NULL, &other));
    ASSERT_OK(weft_coro_hook_add(t, WEFT_HOOK_IN, rec_coro_hook, &in_arg));
    ASSERT_OK(weft_coro_hook_add(t, WEFT_HOOK_OUT, rec_coro_hook, &out_arg));
    ASSERT_OK(weft_run(s));
    /* In before each entry, out after each exit, the last one when the
     * body has returned.  other's switches do not call t's hooks. */
    ASSERT_STR_EQ(trace, "IbOIOIEO");
    for (int i = 0; i < nchooks; i++) {
        ASSERT_PTR_EQ(chooks[i].co, t);
        if (chooks[i].dir == WEFT_HOOK_IN)
            ASSERT_PTR_EQ(chooks[i].arg, &in_arg);
        else
            ASSERT_PTR_EQ(chooks[i].arg, &out_arg);
    }
    ASSERT_ERR(weft_coro_hook_add(t, WEFT_HOOK_IN, rec_coro_hook, NULL),
               -EINVAL); /* done */
    ASSERT_OK(weft_coro_hook_remove(t, WEFT_HOOK_IN, rec_coro_hook, &in_arg));
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_reap(other, NULL));
    ASSERT_OK(weft_sched_free(s));
}

static int add_own_hook(void *arg)
{
    (void)arg;
    /* NULL: the calling coroutine.  Fires from the next switch on. */
    ASSERT_OK(weft_coro_hook_add(NULL, WEFT_HOOK_OUT, rec_coro_hook, NULL));
    ASSERT_ERR(weft_coro_hook_add(NULL, WEFT_HOOK_OUT, rec_coro_hook, NULL),
               -EEXIST);
    trace_add('a');
    ASSERT_OK(weft_yield());
    trace_add('a');
    ASSERT_OK(weft_coro_hook_remove(NULL, WEFT_HOOK_OUT, rec_coro_hook, NULL));
    ASSERT_ERR(weft_coro_hook_remove(NULL, WEFT_HOOK_OUT, rec_coro_hook, NULL),
               -ENOENT);
    ASSERT_OK(weft_yield());
    trace_add('a');
    return 0;
}

TEST(coro_hook_on_self)
{
    weft_sched *s = new_manual();
    weft_coro *t;
    nchooks = 0;
    trace_reset();
    ASSERT_OK(weft_spawn(s, add_own_hook, NULL, NULL, &t));
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "aOaa");
    ASSERT_PTR_EQ(chooks[0].co, t);
    ASSERT_EQ(chooks[0].dir, WEFT_HOOK_OUT);
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_sched_free(s));
}

/* Hooks that remove hooks while the hook list is being walked. */
static weft_sched *hook_sched;
static int hook_calls[4];
static int hook_args[4];

static void counting_hook(weft_coro *from, weft_coro *to, void *arg)
{
    (void)from;
    (void)to;
    hook_calls[(int *)arg - hook_args]++;
}

static void remover_hook(weft_coro *from, weft_coro *to, void *arg)
{
    (void)from;
    (void)to;
    hook_calls[(int *)arg - hook_args]++;
    /* Itself, the one before it (already called) and the one after it
     * (not yet called: it must not be). */
    ASSERT_OK(weft_hook_remove(hook_sched, remover_hook, arg));
    ASSERT_OK(weft_hook_remove(hook_sched, counting_hook, &hook_args[0]));
    ASSERT_OK(weft_hook_remove(hook_sched, counting_hook, &hook_args[2]));
    ASSERT_ERR(weft_hook_remove(hook_sched, counting_hook, &hook_args[2]),
               -ENOENT);
}

TEST(hooks_may_remove_themselves_and_others)
{
    weft_sched *s = new_manual();
    weft_coro *t;
    hook_sched = s;
    memset(hook_calls, 0, sizeof hook_calls);
    ASSERT_OK(weft_hook_add(s, counting_hook, &hook_args[0]));
    ASSERT_OK(weft_hook_add(s, remover_hook, &hook_args[1]));
    ASSERT_OK(weft_hook_add(s, counting_hook, &hook_args[2]));
    ASSERT_OK(weft_hook_add(s, counting_hook, &hook_args[3]));
    ASSERT_OK(weft_spawn(s, yield_once, NULL, NULL, &t));
    ASSERT_OK(weft_run(s));
    /* 4 switches; hooks 0 and 1 ran on the first only, 2 never, 3 on
     * all. */
    ASSERT_EQ(hook_calls[0], 1);
    ASSERT_EQ(hook_calls[1], 1);
    ASSERT_EQ(hook_calls[2], 0);
    ASSERT_EQ(hook_calls[3], 4);
    ASSERT_ERR(weft_hook_remove(s, remover_hook, &hook_args[1]), -ENOENT);
    ASSERT_OK(weft_hook_remove(s, counting_hook, &hook_args[3]));
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_sched_free(s));
}

static int added_in_hook[16];
static int adder_done;

static void late_hook(weft_coro *from, weft_coro *to, void *arg)
{
    (void)from;
    (void)to;
    (*(int *)arg)++;
}

static void adder_hook(weft_coro *from, weft_coro *to, void *arg)
{
    (void)from;
    (void)to;
    (void)arg;
    if (adder_done)
        return;
    adder_done = 1;
    /* Enough to make the hook array grow while it is walked. */
    for (int i = 0; i < 16; i++)
        ASSERT_OK(weft_hook_add(hook_sched, late_hook, &added_in_hook[i]));
    ASSERT_ERR(weft_hook_add(hook_sched, late_hook, &added_in_hook[0]),
               -EEXIST);
}

static void self_removing_coro_hook(int dir, weft_coro *co, void *arg)
{
    (*(int *)arg)++;
    ASSERT_OK(weft_coro_hook_remove(co, dir, self_removing_coro_hook, arg));
}

TEST(hooks_may_add_hooks)
{
    weft_sched *s = new_manual();
    weft_coro *t;
    int once = 0;
    hook_sched = s;
    adder_done = 0;
    memset(added_in_hook, 0, sizeof added_in_hook);
    ASSERT_OK(weft_hook_add(s, adder_hook, NULL));
    ASSERT_OK(weft_spawn(s, yield_once, NULL, NULL, &t));
    ASSERT_OK(weft_coro_hook_add(t, WEFT_HOOK_IN, self_removing_coro_hook,
                                 &once));
    ASSERT_OK(weft_run(s));
    /* 4 switches: the hooks added during the first were called on the
     * later ones at least. */
    for (int i = 0; i < 16; i++) {
        ASSERT_GE(added_in_hook[i], 3);
        ASSERT_LE(added_in_hook[i], 4);
    }
    /* A per-coroutine hook that removed itself ran once. */
    ASSERT_EQ(once, 1);
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_sched_free(s));
}

struct in_hook_results {
    weft_coro *sleeper;
    int tried;
    int r[6];
};
static struct in_hook_results ihr;

static void blocking_hook(weft_coro *from, weft_coro *to, void *arg)
{
    (void)to;
    (void)arg;
    if (!from || ihr.tried)
        return; /* only while a coroutine is the current one */
    ihr.tried = 1;
    ihr.r[0] = weft_yield();
    ihr.r[1] = weft_sleep_for(WEFT_SEC(1));
    ihr.r[2] = weft_sleep_until(WEFT_SEC(1000));
    ihr.r[3] = weft_join(ihr.sleeper, NULL);
    ihr.r[4] = weft_join_until(ihr.sleeper, WEFT_SEC(3), NULL);
    ihr.r[5] = weft_sched_free(hook_sched);
}

static int yield_steps(void *arg)
{
    int *steps = arg;
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(weft_yield());
        (*steps)++;
    }
    return 0;
}

TEST(blocking_inside_a_hook_fails)
{
    weft_sched *s = new_manual();
    weft_coro *y;
    int steps = 0, st = 1;
    memset(&ihr, 0, sizeof ihr);
    hook_sched = s;
    /* y first: the first switch away from a coroutine is y's yield, so
     * y is in the run queue while the hook runs. */
    ASSERT_OK(weft_spawn(s, yield_steps, &steps, NULL, &y));
    ASSERT_OK(weft_spawn(s, sleep_then_return, (void *)(intptr_t)4, NULL,
                         &ihr.sleeper));
    ASSERT_OK(weft_hook_add(s, blocking_hook, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(ihr.tried, 1);
    for (int i = 0; i < 5; i++)
        ASSERT_ERR(ihr.r[i], -EINVAL);
    ASSERT_ERR(ihr.r[5], -EBUSY);
    /* The coroutines being switched were not disturbed. */
    ASSERT_EQ(steps, 3);
    ASSERT_EQ(weft_now(s), WEFT_SEC(2));
    ASSERT_OK(weft_reap(ihr.sleeper, &st));
    ASSERT_EQ(st, 4);
    ASSERT_OK(weft_reap(y, NULL));
    ASSERT_OK(weft_sched_free(s));
}

/* The same, with the hook firing while the coroutine switching away is
 * itself waiting on a timer (sleep) rather than ready (yield). */
static void sleeping_switch_hook(weft_coro *from, weft_coro *to, void *arg)
{
    (void)to;
    int *r = arg;
    if (from && r[0] == 1)
        r[0] = weft_sleep_for(WEFT_SEC(50));
}

TEST(blocking_inside_a_hook_during_a_sleep)
{
    weft_sched *s = new_manual();
    int r[1] = {1};
    int64_t woke = -1;
    ASSERT_OK(weft_spawn(s, sleep_secs, (void *)(intptr_t)2, NULL, NULL));
    ASSERT_OK(weft_spawn_in(s, WEFT_SEC(2), record_now, &woke, NULL, NULL));
    ASSERT_OK(weft_hook_add(s, sleeping_switch_hook, r));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(r[0], -EINVAL);
    ASSERT_EQ(woke, WEFT_SEC(2));
    ASSERT_EQ(weft_now(s), WEFT_SEC(2));
    ASSERT_EQ(weft_sched_count(s), 0);
    ASSERT_OK(weft_sched_free(s));
}

/* A hook that ends the coroutine it is about to enter, before that one
 * ever ran: it must be freed without running, like any never-run
 * coroutine that is ended. */
static weft_coro *end_on_entry[2];
static int end_on_entry_r[2];

static void ending_hook(weft_coro *from, weft_coro *to, void *arg)
{
    (void)from;
    (void)arg;
    for (int i = 0; i < 2; i++) {
        if (to && to == end_on_entry[i]) {
            end_on_entry[i] = NULL;
            end_on_entry_r[i] = weft_end(to);
        }
    }
}

TEST(hook_may_end_the_coroutine_it_enters)
{
    long live = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_coro *t, *d;
    int n = 0, st = 0;
    end_on_entry_r[0] = end_on_entry_r[1] = 1;
    trace_reset();
    ASSERT_OK(weft_hook_add(s, ending_hook, NULL));
    ASSERT_OK(weft_spawn(s, must_not_run, NULL, NULL, &t));
    ASSERT_OK(weft_spawn(s, log_once, CH('a'), NULL, NULL));
    ASSERT_OK(weft_spawn(s, must_not_run, NULL, NULL, &d));
    ASSERT_OK(weft_on_error(d, rec_handler, NULL)); /* its lists: freed */
    ASSERT_OK(weft_detach(d));
    ASSERT_OK(weft_spawn(s, count_runs, &n, NULL, NULL));
    end_on_entry[0] = t;
    end_on_entry[1] = d;
    ASSERT_OK(weft_run(s));
    ASSERT_OK(end_on_entry_r[0]);
    ASSERT_OK(end_on_entry_r[1]);
    ASSERT_STR_EQ(trace, "a");
    ASSERT_EQ(n, 1);
    ASSERT_EQ(weft_sched_count(s), 0);
    ASSERT_EQ(weft_coro_done(t), 1);
    ASSERT_OK(weft_reap(t, &st));
    ASSERT_ERR(st, -ECANCELED);

    /* The last of a turn (the switch then goes back to the loop). */
    ASSERT_OK(weft_spawn(s, must_not_run, NULL, NULL, &t));
    end_on_entry[0] = t;
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(weft_sched_count(s), 0);
    ASSERT_OK(weft_reap(t, &st));
    ASSERT_ERR(st, -ECANCELED);
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), live);
}

static weft_coro *reap_on_exit;
static int reap_on_exit_r, reap_on_exit_status;

static void reaping_hook(weft_coro *from, weft_coro *to, void *arg)
{
    (void)to;
    (void)arg;
    /* Its last switch away: it is finished but still on its stack. */
    if (from && from == reap_on_exit && weft_coro_done(from) == 1) {
        reap_on_exit = NULL;
        reap_on_exit_r = weft_reap(from, &reap_on_exit_status);
    }
}

/* A scheduler whose freed stacks are unmapped as soon as one is already
 * cached: freeing a stack still in use then faults at once. */
static weft_sched *new_unmapping(void)
{
    struct weft_sched_opts o;
    weft_sched *s = NULL;
    memset(&o, 0, sizeof o);
    o.clock = WEFT_CLOCK_MANUAL;
    o.guard = WEFT_GUARD_PAGES;
    o.stack_cache = 1;
    ASSERT_OK(weft_sched_new(&o, &s));
    return s;
}

TEST(hook_may_reap_the_coroutine_it_leaves)
{
    weft_sched *s = new_unmapping();
    weft_coro *t, *filler;
    int n = 0;
    reap_on_exit_r = 1;
    reap_on_exit_status = 0;
    ASSERT_OK(weft_spawn(s, sleep_then_return, (void *)(intptr_t)6, NULL, &t));
    ASSERT_OK(weft_spawn(s, count_runs, &n, NULL, &filler));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_reap(filler, NULL)); /* the one cached stack */
    ASSERT_OK(weft_hook_add(s, reaping_hook, NULL));
    reap_on_exit = t;
    ASSERT_OK(weft_run(s));
    ASSERT_OK(reap_on_exit_r);
    ASSERT_EQ(reap_on_exit_status, 6);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(weft_sched_count(s), 0);
    ASSERT_OK(weft_spawn(s, count_runs, &n, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(n, 2);
    ASSERT_OK(weft_sched_free(s));
}

TEST(hook_registration_errors)
{
    weft_sched *s = new_manual();
    weft_coro *t;
    ASSERT_ERR(weft_hook_add(s, NULL, NULL), -EINVAL);
    ASSERT_OK(weft_hook_add(s, rec_hook, NULL));
    ASSERT_ERR(weft_hook_add(s, rec_hook, NULL), -EEXIST);
    ASSERT_OK(weft_hook_add(s, rec_hook, &t)); /* other arg */
    ASSERT_ERR(weft_hook_remove(s, NULL, NULL), -EINVAL);
    ASSERT_ERR(weft_hook_remove(s, counting_hook, NULL), -ENOENT);
    ASSERT_OK(weft_hook_remove(s, rec_hook, NULL));
    ASSERT_ERR(weft_hook_remove(s, rec_hook, NULL), -ENOENT);
    ASSERT_OK(weft_hook_remove(s, rec_hook, &t));

    ASSERT_ERR(weft_coro_hook_add(NULL, WEFT_HOOK_IN, rec_coro_hook, NULL),
               -EINVAL); /* no coroutine */
    ASSERT_ERR(weft_coro_hook_remove(NULL, WEFT_HOOK_IN, rec_coro_hook, NULL),
               -EINVAL);
    ASSERT_OK(weft_spawn(s, return_arg, NULL, NULL, &t));
    ASSERT_ERR(weft_coro_hook_remove(t, WEFT_HOOK_IN, rec_coro_hook, NULL),
               -ENOENT);
    ASSERT_ERR(weft_coro_hook_add(t, 0, rec_coro_hook, NULL), -EINVAL);
    ASSERT_ERR(weft_coro_hook_add(t, 3, rec_coro_hook, NULL), -EINVAL);
    ASSERT_ERR(weft_coro_hook_add(t, WEFT_HOOK_IN, NULL, NULL), -EINVAL);
    ASSERT_OK(weft_coro_hook_add(t, WEFT_HOOK_IN, rec_coro_hook, NULL));
    ASSERT_ERR(weft_coro_hook_add(t, WEFT_HOOK_IN, rec_coro_hook, NULL),
               -EEXIST);
    /* IN and OUT are separate lists. */
    ASSERT_OK(weft_coro_hook_add(t, WEFT_HOOK_OUT, rec_coro_hook, NULL));
    ASSERT_ERR(weft_coro_hook_remove(t, 0, rec_coro_hook, NULL), -EINVAL);
    ASSERT_ERR(weft_coro_hook_remove(t, WEFT_HOOK_IN, NULL, NULL), -EINVAL);
    ASSERT_OK(weft_coro_hook_remove(t, WEFT_HOOK_OUT, rec_coro_hook, NULL));
    ASSERT_ERR(weft_coro_hook_remove(t, WEFT_HOOK_OUT, rec_coro_hook, NULL),
               -ENOENT);
    nchooks = 0;
    trace_reset();
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "I");
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Accessors and bad input
 * ---------------------------------------------------------------------- */

static int name_self(void *arg)
{
    (void)arg;
    ASSERT_OK(weft_coro_set_name(weft_self(), "renamed"));
    ASSERT_STR_EQ(weft_coro_name(weft_self()), "renamed");
    return 0;
}

TEST(coroutine_names)
{
    weft_sched *s = new_manual();
    struct weft_spawn_opts o;
    weft_coro *t, *u;
    char longname[64];
    memset(&o, 0, sizeof o);
    ASSERT_OK(weft_spawn(s, name_self, NULL, NULL, &t));
    ASSERT_STR_EQ(weft_coro_name(t), "");
    o.name = "first";
    ASSERT_OK(weft_spawn(s, return_arg, NULL, &o, &u));
    ASSERT_STR_EQ(weft_coro_name(u), "first");
    ASSERT_OK(weft_coro_set_name(u, "second"));
    ASSERT_STR_EQ(weft_coro_name(u), "second");
    /* Truncated to WEFT_NAME_MAX bytes. */
    memset(longname, 0, sizeof longname);
    for (int i = 0; i < 40; i++)
        longname[i] = (char)('a' + i % 26);
    ASSERT_OK(weft_coro_set_name(u, longname));
    ASSERT_EQ(strlen(weft_coro_name(u)), WEFT_NAME_MAX);
    ASSERT_EQ(strncmp(weft_coro_name(u), longname, WEFT_NAME_MAX), 0);
    o.name = longname;
    weft_coro *v;
    ASSERT_OK(weft_spawn(s, return_arg, NULL, &o, &v));
    ASSERT_EQ(strlen(weft_coro_name(v)), WEFT_NAME_MAX);
    /* Its own name (or a part of it) as the new name. */
    ASSERT_OK(weft_coro_set_name(u, weft_coro_name(u)));
    ASSERT_EQ(strncmp(weft_coro_name(u), longname, WEFT_NAME_MAX), 0);
    ASSERT_OK(weft_coro_set_name(u, weft_coro_name(u) + 2));
    ASSERT_EQ(strlen(weft_coro_name(u)), WEFT_NAME_MAX - 2);
    ASSERT_EQ(strncmp(weft_coro_name(u), longname + 2, WEFT_NAME_MAX - 2), 0);
    /* NULL and "" clear it. */
    ASSERT_OK(weft_coro_set_name(u, NULL));
    ASSERT_STR_EQ(weft_coro_name(u), "");
    ASSERT_OK(weft_coro_set_name(v, ""));
    ASSERT_STR_EQ(weft_coro_name(v), "");
    ASSERT_STR_EQ(weft_coro_name(NULL), "");
    ASSERT_ERR(weft_coro_set_name(NULL, "x"), -EINVAL);
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(weft_coro_name(t), "renamed");
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_reap(u, NULL));
    ASSERT_OK(weft_reap(v, NULL));
    ASSERT_OK(weft_sched_free(s));
}

static int data_body(void *arg)
{
    int *x = arg;
    ASSERT_PTR_EQ(weft_coro_data(weft_self()), x);
    ASSERT_OK(weft_coro_set_data(weft_self(), x + 1));
    return 0;
}

TEST(coroutine_data)
{
    weft_sched *s = new_manual();
    struct weft_spawn_opts o;
    weft_coro *t;
    int x[2];
    memset(&o, 0, sizeof o);
    o.data = &x[0];
    ASSERT_OK(weft_spawn(s, data_body, &x[0], &o, &t));
    ASSERT_PTR_EQ(weft_coro_data(t), &x[0]);
    ASSERT_OK(weft_run(s));
    ASSERT_PTR_EQ(weft_coro_data(t), &x[1]);
    ASSERT_OK(weft_coro_set_data(t, NULL));
    ASSERT_NULL(weft_coro_data(t));
    ASSERT_NULL(weft_coro_data(NULL));
    ASSERT_ERR(weft_coro_set_data(NULL, &x[0]), -EINVAL);
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_sched_free(s));
}

TEST(coroutine_ids_are_unique)
{
    weft_sched *s = new_manual(), *s2 = new_manual();
    weft_coro *cs[64];
    uint64_t ids[128];
    int nids = 0;
    ASSERT_EQ(weft_coro_id(NULL), 0);
    for (int round = 0; round < 2; round++) {
        /* The second round reuses the first round's stacks and records. */
        for (int i = 0; i < 64; i++)
            ASSERT_OK(weft_spawn(i % 2 ? s : s2, return_arg, NULL, NULL,
                                 &cs[i]));
        for (int i = 0; i < 64; i++) {
            ids[nids] = weft_coro_id(cs[i]);
            ASSERT_NE(ids[nids], 0);
            for (int k = 0; k < nids; k++)
                ASSERT_NE(ids[k], ids[nids]);
            nids++;
        }
        ASSERT_OK(weft_run(s));
        ASSERT_OK(weft_run(s2));
        for (int i = 0; i < 64; i++)
            ASSERT_OK(weft_reap(cs[i], NULL));
    }
    ASSERT_OK(weft_sched_free(s));
    ASSERT_OK(weft_sched_free(s2));
}

TEST(coroutine_stack_size_and_sched)
{
    struct weft_sched_opts so;
    struct weft_spawn_opts o;
    weft_sched *s;
    weft_coro *a, *b;
    size_t page = page_size();
    memset(&so, 0, sizeof so);
    so.clock = WEFT_CLOCK_MANUAL;
    so.stack_size = 32 * 1024;
    ASSERT_OK(weft_sched_new(&so, &s));
    memset(&o, 0, sizeof o);
    ASSERT_OK(weft_spawn(s, return_arg, NULL, &o, &a)); /* sched default */
    o.stack_size = 100000;
    ASSERT_OK(weft_spawn(s, return_arg, NULL, &o, &b));
    ASSERT_EQ(weft_coro_stack_size(a), 32 * 1024);
    ASSERT_EQ(weft_coro_stack_size(b), (100000 + page - 1) / page * page);
    ASSERT_EQ(weft_coro_stack_size(NULL), 0);
    ASSERT_PTR_EQ(weft_coro_sched(a), s);
    ASSERT_PTR_EQ(weft_coro_sched(b), s);
    ASSERT_NULL(weft_coro_sched(NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_reap(a, NULL));
    ASSERT_OK(weft_reap(b, NULL));
    ASSERT_OK(weft_sched_free(s));
}

static int check_running_flags(void *arg)
{
    (void)arg;
    ASSERT_EQ(weft_coro_done(weft_self()), 0);
    ASSERT_EQ(weft_coro_ended(weft_self()), 0);
    ASSERT_OK(weft_sleep_for(WEFT_SEC(1)));
    return 0;
}

TEST(done_and_ended_flags)
{
    weft_sched *s = new_manual();
    weft_coro *t;
    ASSERT_OK(weft_spawn(s, check_running_flags, NULL, NULL, &t));
    ASSERT_EQ(weft_coro_done(t), 0);
    ASSERT_EQ(weft_coro_ended(t), 0);
    ASSERT_EQ(weft_run_once(s, 0), 1); /* now sleeping */
    ASSERT_EQ(weft_coro_done(t), 0);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(weft_coro_done(t), 1);
    ASSERT_EQ(weft_coro_ended(t), 0);
    ASSERT_ERR(weft_coro_done(NULL), -EINVAL);
    ASSERT_ERR(weft_coro_ended(NULL), -EINVAL);
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_sched_free(s));
}

TEST(null_handles_are_rejected)
{
    weft_sched *s = new_manual();
    ASSERT_ERR(weft_join(NULL, NULL), -EINVAL);
    ASSERT_ERR(weft_join_until(NULL, -1, NULL), -EINVAL);
    ASSERT_ERR(weft_reap(NULL, NULL), -EINVAL);
    ASSERT_ERR(weft_detach(NULL), -EINVAL);
    ASSERT_ERR(weft_raise(NULL, -EIO), -EINVAL);
    ASSERT_ERR(weft_raise_at(NULL, -EIO, 0), -EINVAL);
    ASSERT_ERR(weft_raise_in(NULL, -EIO, 0), -EINVAL);
    ASSERT_ERR(weft_end(NULL), -EINVAL);
    ASSERT_ERR(weft_coro_ended(NULL), -EINVAL);
    ASSERT_ERR(weft_coro_done(NULL), -EINVAL);
    ASSERT_EQ(weft_coro_id(NULL), 0);
    ASSERT_STR_EQ(weft_coro_name(NULL), "");
    ASSERT_ERR(weft_coro_set_name(NULL, "x"), -EINVAL);
    ASSERT_NULL(weft_coro_data(NULL));
    ASSERT_ERR(weft_coro_set_data(NULL, NULL), -EINVAL);
    ASSERT_EQ(weft_coro_stack_size(NULL), 0);
    ASSERT_NULL(weft_coro_sched(NULL));
    ASSERT_ERR(weft_on_error(NULL, rec_handler, NULL), -EINVAL);
    ASSERT_ERR(weft_remove_error(NULL, rec_handler, NULL), -EINVAL);
    ASSERT_ERR(weft_handle_error(NULL, -EIO), -EINVAL);
    ASSERT_ERR(weft_coro_hook_add(NULL, WEFT_HOOK_IN, rec_coro_hook, NULL),
               -EINVAL);
    ASSERT_ERR(weft_coro_hook_remove(NULL, WEFT_HOOK_OUT, rec_coro_hook,
                                     NULL), -EINVAL);
    ASSERT_ERR(weft_hook_add(s, NULL, NULL), -EINVAL);
    ASSERT_ERR(weft_on_error_global(s, NULL, NULL), -EINVAL);
    ASSERT_ERR(weft_spawn(s, NULL, NULL, NULL, NULL), -EINVAL);
    ASSERT_ERR(weft_sched_free(NULL), -EINVAL);
    ASSERT_NULL(weft_self());
    ASSERT_EQ(weft_sched_count(s), 0);
    ASSERT_OK(weft_sched_free(s));
}

TEST(allocation_failures_are_reported)
{
    long live = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_coro *t;
    int n = 0;
    /* A coroutine's first handler or hook allocates its lists. */
    ASSERT_OK(weft_spawn(s, count_runs, &n, NULL, &t));
    weft__test_fail_alloc(0, 0);
    ASSERT_ERR(weft_on_error(t, rec_handler, NULL), -ENOMEM);
    weft__test_fail_alloc(0, 0);
    ASSERT_ERR(weft_coro_hook_add(t, WEFT_HOOK_IN, rec_coro_hook, NULL),
               -ENOMEM);
    weft__test_fail_alloc(0, 0);
    ASSERT_ERR(weft_on_error_global(s, rec_handler, NULL), -ENOMEM);
    weft__test_fail_alloc(0, 0);
    ASSERT_ERR(weft_hook_add(s, rec_hook, NULL), -ENOMEM);
    /* Every allocation failing: spawning in a new size class fails. */
    struct weft_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.stack_size = 48 * 1024;
    weft__test_fail_alloc(0, 1);
    ASSERT_ERR(weft_spawn(s, count_runs, &n, &o, NULL), -ENOMEM);
    ASSERT_ERR(weft_spawn_in(s, 5, count_runs, &n, &o, NULL), -ENOMEM);
    ASSERT_ERR(weft_spawn_recurring(s, 5, 1, -1, count_runs, &n, &o, NULL),
               -ENOMEM);
    weft__test_fail_alloc(-1, 0);
    ASSERT_EQ(weft_sched_count(s), 1);
    /* Nothing was half-registered: it all works now. */
    nchooks = 0;
    trace_reset();
    ASSERT_OK(weft_coro_hook_add(t, WEFT_HOOK_IN, rec_coro_hook, NULL));
    ASSERT_OK(weft_spawn(s, count_runs, &n, &o, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(n, 2);
    ASSERT_STR_EQ(trace, "I");
    ASSERT_OK(weft_reap(t, NULL));
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), live);
}
