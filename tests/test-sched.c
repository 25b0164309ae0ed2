/*
 * test-sched.c - the scheduler and its loop: creation options, freeing,
 * the per-thread default scheduler, several schedulers in one thread
 * (cogen is multi-state), weft_run / weft_run_once / weft_stop /
 * weft_next_timeout (cogen's run, iter_run, stop, next_timer_delta),
 * deadlock detection, run-queue order (priorities, FIFO, `first`), the
 * fairness rule, the manual clock and the Unix-time helpers.
 *
 * Everything about time uses a WEFT_CLOCK_MANUAL scheduler, so no case
 * sleeps for real.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

/* Test hook of the library (src/alloc.c): blocks allocated by weft on
 * this thread and not yet freed. */
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

static int64_t real_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

/* An event log: each coroutine appends one character per step. */
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

/* Append the character arg, once. */
static int log_once(void *arg)
{
    trace_add((char)(intptr_t)arg);
    return 0;
}

/* A yield loop: struct describes the character and how many steps. */
struct looper {
    char c;
    int steps;
    int ran;
};

static int yield_loop(void *arg)
{
    struct looper *l = arg;
    for (int i = 0; i < l->steps; i++) {
        trace_add(l->c);
        l->ran++;
        ASSERT_OK(weft_yield());
    }
    return 0;
}

static int count_runs(void *arg)
{
    (*(int *)arg)++;
    return 0;
}

/* ----------------------------------------------------------------------
 * weft_sched_new / weft_sched_free
 * ---------------------------------------------------------------------- */

TEST(sched_new_defaults)
{
    weft_sched *s = NULL;
    weft_coro *co;
    int n = 0;
    ASSERT_OK(weft_sched_new(NULL, &s));
    ASSERT_NOT_NULL(s);
    ASSERT_EQ(weft_sched_count(s), 0);
    ASSERT_EQ(weft_next_timeout(s), -1);
    /* Default clock is monotonic: it moves on its own and advance fails. */
    int64_t t0 = weft_now(s);
    ASSERT_GE(t0, 0);
    ASSERT_ERR(weft_clock_advance(s, 1), -EINVAL);
    ASSERT_ERR(weft_clock_set(s, t0 + WEFT_SEC(1)), -EINVAL);
    int64_t t1 = weft_now(s);
    ASSERT_GE(t1, t0);
    /* Default stack size: 64 KiB. */
    ASSERT_OK(weft_spawn(s, count_runs, &n, NULL, &co));
    ASSERT_EQ(weft_coro_stack_size(co), 64 * 1024);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(n, 1);
    ASSERT_OK(weft_reap(co, NULL));
    ASSERT_OK(weft_sched_free(s));
}

TEST(sched_new_rejects_bad_options)
{
    struct weft_sched_opts o;
    weft_sched *s = (weft_sched *)&o;

    ASSERT_ERR(weft_sched_new(NULL, NULL), -EINVAL);

    memset(&o, 0, sizeof o);
    o.clock = 2;
    ASSERT_ERR(weft_sched_new(&o, &s), -EINVAL);
    o.clock = -1;
    ASSERT_ERR(weft_sched_new(&o, &s), -EINVAL);

    memset(&o, 0, sizeof o);
    o.guard = 3;
    ASSERT_ERR(weft_sched_new(&o, &s), -EINVAL);
    o.guard = -1;
    ASSERT_ERR(weft_sched_new(&o, &s), -EINVAL);

    memset(&o, 0, sizeof o);
    o.stack_size = 16 * 1024 - 1;
    ASSERT_ERR(weft_sched_new(&o, &s), -EINVAL);
    o.stack_size = 1;
    ASSERT_ERR(weft_sched_new(&o, &s), -EINVAL);
    o.stack_size = ((size_t)1 << 30) + 1;
    ASSERT_ERR(weft_sched_new(&o, &s), -EINVAL);
    o.stack_size = SIZE_MAX;
    ASSERT_ERR(weft_sched_new(&o, &s), -EINVAL);
    ASSERT_ERR(weft_sched_new(&o, NULL), -EINVAL);

    /* The limits themselves are accepted. */
    o.stack_size = 16 * 1024;
    ASSERT_OK(weft_sched_new(&o, &s));
    ASSERT_OK(weft_sched_free(s));
    o.stack_size = (size_t)1 << 30;
    ASSERT_OK(weft_sched_new(&o, &s));
    ASSERT_OK(weft_sched_free(s));
}

TEST(sched_new_options_apply)
{
    static const int guards[] = {WEFT_GUARD_AUTO, WEFT_GUARD_PAGES,
                                 WEFT_GUARD_CANARY};
    size_t page = page_size();
    for (size_t g = 0; g < sizeof guards / sizeof guards[0]; g++) {
        struct weft_sched_opts o;
        weft_sched *s;
        weft_coro *a, *b;
        int n = 0;
        memset(&o, 0, sizeof o);
        o.guard = guards[g];
        o.stack_size = 20000; /* not a page multiple: rounded up */
        o.stack_cache = 1;
        o.no_overflow_handler = 1;
        ASSERT_OK(weft_sched_new(&o, &s));
        ASSERT_OK(weft_spawn(s, count_runs, &n, NULL, &a));
        ASSERT_OK(weft_spawn(s, count_runs, &n, NULL, &b));
        ASSERT_EQ(weft_coro_stack_size(a), (20000 + page - 1) / page * page);
        ASSERT_EQ(weft_coro_stack_size(b), weft_coro_stack_size(a));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(n, 2);
        ASSERT_OK(weft_reap(a, NULL));
        ASSERT_OK(weft_reap(b, NULL));
        ASSERT_OK(weft_sched_free(s));
    }
}

static int free_own_sched(void *arg)
{
    weft_sched **pair = arg;
    /* The scheduler running this coroutine is busy... */
    ASSERT_ERR(weft_sched_free(pair[0]), -EBUSY);
    ASSERT_ERR(weft_sched_free(weft_coro_sched(weft_self())), -EBUSY);
    /* ...another one of this thread that is not running may be freed. */
    ASSERT_OK(weft_sched_free(pair[1]));
    pair[1] = NULL;
    return 0;
}

TEST(sched_free_busy_inside_coroutine)
{
    weft_sched *pair[2];
    ASSERT_ERR(weft_sched_free(NULL), -EINVAL);
    ASSERT_OK(weft_sched_new(NULL, &pair[0]));
    ASSERT_OK(weft_sched_new(NULL, &pair[1]));
    ASSERT_OK(weft_spawn(pair[0], free_own_sched, pair, NULL, NULL));
    ASSERT_OK(weft_run(pair[0]));
    ASSERT_NULL(pair[1]);
    ASSERT_OK(weft_sched_free(pair[0]));
}

static int foreign_dummy(void *arg)
{
    (void)arg;
    return 0;
}

struct foreign {
    weft_sched *s;
    weft_coro *co;
    int r_free, r_run, r_run_once, r_stop, r_spawn, r_spawn_at, r_advance,
        r_set, r_hook;
    int64_t r_now, r_next, r_count;
    weft_sched *dflt; /* the thread's own default scheduler */
};

static void foreign_hook(weft_coro *from, weft_coro *to, void *arg)
{
    (void)from;
    (void)to;
    (void)arg;
}

static void *foreign_thread(void *p)
{
    struct foreign *f = p;
    weft_coro *co = NULL;
    f->r_free = weft_sched_free(f->s);
    f->r_run = weft_run(f->s);
    f->r_run_once = weft_run_once(f->s, 0);
    f->r_stop = weft_stop(f->s);
    f->r_spawn = weft_spawn(f->s, foreign_dummy, NULL, NULL, &co);
    f->r_spawn_at = weft_spawn_at(f->s, 0, foreign_dummy, NULL, NULL, &co);
    f->r_advance = weft_clock_advance(f->s, 1);
    f->r_set = weft_clock_set(f->s, 100);
    f->r_hook = weft_hook_add(f->s, foreign_hook, NULL);
    f->r_now = weft_now(f->s);
    f->r_next = weft_next_timeout(f->s);
    f->r_count = weft_sched_count(f->s);
    return NULL;
}

TEST(sched_belongs_to_its_thread)
{
    struct foreign f;
    pthread_t th;
    memset(&f, 0, sizeof f);
    f.s = new_manual();
    ASSERT_OK(weft_spawn(f.s, foreign_dummy, NULL, NULL, &f.co));
    ASSERT_OK(pthread_create(&th, NULL, foreign_thread, &f));
    ASSERT_OK(pthread_join(th, NULL));
    ASSERT_ERR(f.r_free, -EINVAL);
    ASSERT_ERR(f.r_run, -EINVAL);
    ASSERT_ERR(f.r_run_once, -EINVAL);
    ASSERT_ERR(f.r_stop, -EINVAL);
    ASSERT_ERR(f.r_spawn, -EINVAL);
    ASSERT_ERR(f.r_spawn_at, -EINVAL);
    ASSERT_ERR(f.r_advance, -EINVAL);
    ASSERT_ERR(f.r_set, -EINVAL);
    ASSERT_ERR(f.r_hook, -EINVAL);
    ASSERT_ERR(f.r_now, -EINVAL);
    ASSERT_ERR(f.r_next, -EINVAL);
    ASSERT_ERR(f.r_count, -EINVAL);
    /* Nothing was changed by the other thread. */
    ASSERT_EQ(weft_now(f.s), 0);
    ASSERT_EQ(weft_sched_count(f.s), 1);
    ASSERT_OK(weft_run(f.s));
    ASSERT_OK(weft_reap(f.co, NULL));
    ASSERT_OK(weft_sched_free(f.s));
}

static int sleep_then_flag(void *arg)
{
    int r = weft_sleep_for(WEFT_SEC(10));
    /* Never reached: the scheduler is freed while it sleeps. */
    (void)r;
    *(int *)arg = 1;
    return 0;
}

static int yield_forever_flag(void *arg)
{
    ASSERT_OK(weft_yield());
    *(int *)arg = 1;
    return 0;
}

static int fail_status(void *arg)
{
    (void)arg;
    return -EIO;
}

static void cb_timer(weft_timer *t, void *arg)
{
    (void)t;
    (*(int *)arg)++;
}

static int join_forever(void *arg)
{
    weft_coro *other = *(weft_coro **)arg;
    (void)weft_join(other, NULL);
    return 0;
}

TEST(sched_free_discards_unfinished)
{
    long live = weft__test_live_allocs();
    weft_sched *s = new_manual();
    int never = 0, woke = 0, yielded = 0, fired = 0;
    weft_coro *sleeper, *zombie, *joiner;
    weft_timer *t;

    /* Never started, joinable and detached. */
    ASSERT_OK(weft_spawn(s, log_once, (void *)(intptr_t)'x', NULL, NULL));
    /* Started and sleeping, with a pending raise_at. */
    ASSERT_OK(weft_spawn(s, sleep_then_flag, &woke, NULL, &sleeper));
    /* Ready (yielded), detached. */
    ASSERT_OK(weft_spawn(s, yield_forever_flag, &yielded, NULL, NULL));
    /* Finished but never joined (a zombie). */
    ASSERT_OK(weft_spawn(s, count_runs, &never, NULL, &zombie));
    /* Blocked in a join, with no deadline. */
    ASSERT_OK(weft_spawn(s, join_forever, &sleeper, NULL, &joiner));
    /* An active callback timer. */
    ASSERT_OK(weft_timer_new(s, cb_timer, &fired, &t));
    ASSERT_OK(weft_timer_start(t, WEFT_SEC(100), WEFT_SEC(1)));
    /* Spawned in the future. */
    ASSERT_OK(weft_spawn_in(s, WEFT_SEC(50), fail_status, NULL, NULL, NULL));

    trace_reset();
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_STR_EQ(trace, "x");
    ASSERT_EQ(never, 1);
    ASSERT_OK(weft_raise_in(sleeper, -EIO, WEFT_SEC(5)));
    ASSERT_EQ(weft_sched_count(s), 4); /* sleeper, yielder, joiner, spawn_in */
    ASSERT_EQ(weft_now(s), 0);
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(woke, 0);
    ASSERT_EQ(yielded, 0);
    ASSERT_EQ(fired, 0);
    ASSERT_EQ(weft__test_live_allocs(), live);
}

/* ----------------------------------------------------------------------
 * The default scheduler
 * ---------------------------------------------------------------------- */

static int dflt_body(void *arg)
{
    weft_sched **seen = arg;
    seen[0] = weft_coro_sched(weft_self());
    seen[1] = weft_sched_current();
    seen[2] = weft_sched_default();
    return 0;
}

TEST(default_sched_needs_no_setup)
{
    weft_sched *seen[3] = {NULL, NULL, NULL};
    weft_coro *co;
    ASSERT_OK(weft_spawn(NULL, dflt_body, seen, NULL, &co));
    weft_sched *d = weft_sched_default();
    ASSERT_NOT_NULL(d);
    ASSERT_PTR_EQ(weft_sched_current(), d);
    ASSERT_PTR_EQ(weft_coro_sched(co), d);
    ASSERT_EQ(weft_sched_count(NULL), 1);
    ASSERT_EQ(weft_next_timeout(NULL), 0);
    ASSERT_OK(weft_run(NULL));
    ASSERT_PTR_EQ(seen[0], d);
    ASSERT_PTR_EQ(seen[1], d);
    ASSERT_PTR_EQ(seen[2], d);
    ASSERT_OK(weft_reap(co, NULL));
    ASSERT_EQ(weft_sched_count(NULL), 0);
    /* Freeing the default is allowed; a new one is made on next use. */
    ASSERT_OK(weft_sched_free(d));
    weft_sched *d2 = weft_sched_default();
    ASSERT_NOT_NULL(d2);
    ASSERT_EQ(weft_sched_count(d2), 0);
    int n = 0;
    ASSERT_OK(weft_spawn(NULL, count_runs, &n, NULL, NULL));
    ASSERT_EQ(weft_run_once(NULL, 0), 0);
    ASSERT_EQ(n, 1);
    ASSERT_OK(weft_sched_free(d2));
}

struct thread_dflt {
    weft_sched *main_dflt;
    weft_sched *mine, *current;
    int ran, run_result, same_as_main;
};

static int thread_body(void *arg)
{
    struct thread_dflt *td = arg;
    td->ran++;
    ASSERT_OK(weft_sleep_for(WEFT_MSEC(1))); /* a real 1 ms sleep */
    td->ran++;
    return 0;
}

static void *dflt_thread(void *p)
{
    struct thread_dflt *td = p;
    td->mine = weft_sched_default();
    td->current = weft_sched_current();
    td->same_as_main = td->mine == td->main_dflt;
    if (weft_spawn(NULL, thread_body, td, NULL, NULL) == 0)
        td->run_result = weft_run(NULL);
    /* The thread's default is freed when the thread exits. */
    return NULL;
}

TEST(default_sched_is_per_thread)
{
    struct thread_dflt td;
    pthread_t th;
    int n = 0;
    memset(&td, 0, sizeof td);
    td.main_dflt = weft_sched_default();
    ASSERT_NOT_NULL(td.main_dflt);
    /* Something pending on the main thread's default... */
    ASSERT_OK(weft_spawn(NULL, count_runs, &n, NULL, NULL));
    td.run_result = -1;
    ASSERT_OK(pthread_create(&th, NULL, dflt_thread, &td));
    ASSERT_OK(pthread_join(th, NULL));
    ASSERT_NOT_NULL(td.mine);
    ASSERT_EQ(td.same_as_main, 0);
    ASSERT_PTR_EQ(td.current, td.mine);
    ASSERT_OK(td.run_result);
    ASSERT_EQ(td.ran, 2);
    /* ...was not run by the other thread's weft_run(NULL). */
    ASSERT_EQ(n, 0);
    ASSERT_EQ(weft_sched_count(NULL), 1);
    ASSERT_OK(weft_run(NULL));
    ASSERT_EQ(n, 1);
    ASSERT_OK(weft_sched_free(weft_sched_default()));
}

static int current_body(void *arg)
{
    weft_sched *s = arg;
    int n = 0;
    weft_coro *co;
    ASSERT_PTR_EQ(weft_sched_current(), s);
    /* NULL means the running scheduler, not the default one. */
    ASSERT_OK(weft_spawn(NULL, count_runs, &n, NULL, &co));
    ASSERT_PTR_EQ(weft_coro_sched(co), s);
    ASSERT_OK(weft_join(co, NULL));
    ASSERT_EQ(n, 1);
    return 0;
}

TEST(sched_current_is_the_running_one)
{
    weft_sched *s = new_manual();
    ASSERT_OK(weft_spawn(s, current_body, s, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Several schedulers in one thread (cogen is multi-state)
 * ---------------------------------------------------------------------- */

struct multi {
    weft_sched *mine, *other;
    char c;
    int steps;
    int64_t woke_at[8];
};

static int multi_body(void *arg)
{
    struct multi *m = arg;
    for (int i = 0; i < m->steps; i++) {
        ASSERT_PTR_EQ(weft_sched_current(), m->mine);
        ASSERT_PTR_EQ(weft_coro_sched(weft_self()), m->mine);
        trace_add(m->c);
        ASSERT_OK(weft_sleep_for(WEFT_SEC(1)));
        m->woke_at[i] = weft_now(NULL);
    }
    return 0;
}

static int spawn_into_other(void *arg)
{
    struct multi *m = arg;
    weft_coro *co;
    /* A coroutine of one scheduler may spawn into another of its thread,
     * but may not run it (runs do not nest). */
    ASSERT_OK(weft_spawn(m->other, log_once, (void *)(intptr_t)'z', NULL, &co));
    ASSERT_PTR_EQ(weft_coro_sched(co), m->other);
    ASSERT_OK(weft_detach(co));
    ASSERT_ERR(weft_run(m->other), -EINVAL);
    ASSERT_ERR(weft_run_once(m->other, 0), -EINVAL);
    return 0;
}

TEST(several_schedulers_in_one_thread)
{
    weft_sched *s1 = new_manual(), *s2 = new_manual();
    struct multi a = {s1, s2, 'a', 3, {0}}, b = {s2, s1, 'b', 3, {0}};
    trace_reset();
    ASSERT_OK(weft_spawn(s1, multi_body, &a, NULL, NULL));
    ASSERT_OK(weft_spawn(s2, multi_body, &b, NULL, NULL));
    ASSERT_EQ(weft_sched_count(s1), 1);
    ASSERT_EQ(weft_sched_count(s2), 1);

    /* Running one leaves the other untouched. */
    ASSERT_EQ(weft_run_once(s1, 0), 1);
    ASSERT_STR_EQ(trace, "a");
    ASSERT_EQ(weft_next_timeout(s1), WEFT_SEC(1));
    ASSERT_EQ(weft_next_timeout(s2), 0);

    /* Their clocks are independent. */
    ASSERT_OK(weft_clock_advance(s1, WEFT_SEC(5)));
    ASSERT_EQ(weft_now(s1), WEFT_SEC(5));
    ASSERT_EQ(weft_now(s2), 0);

    /* Interleave them one iteration at a time. */
    ASSERT_EQ(weft_run_once(s2, 0), 1);
    ASSERT_STR_EQ(trace, "ab");
    ASSERT_EQ(weft_run_once(s1, 0), 1); /* timer fires: a is ready */
    ASSERT_EQ(weft_run_once(s1, 0), 1); /* a runs */
    ASSERT_STR_EQ(trace, "aba");
    ASSERT_EQ(a.woke_at[0], WEFT_SEC(5));
    ASSERT_EQ(weft_now(s2), 0);

    /* Spawning across schedulers from a coroutine. */
    ASSERT_OK(weft_spawn(s1, spawn_into_other, &a, NULL, NULL));
    ASSERT_OK(weft_run(s1));
    ASSERT_STR_EQ(trace, "abaa");
    ASSERT_EQ(a.woke_at[2], WEFT_SEC(7));
    ASSERT_EQ(weft_now(s2), 0);
    ASSERT_EQ(weft_sched_count(s1), 0);
    ASSERT_EQ(weft_sched_count(s2), 2);

    ASSERT_OK(weft_run(s2));
    ASSERT_EQ(b.woke_at[2], WEFT_SEC(3));
    ASSERT_EQ(weft_now(s1), WEFT_SEC(7));
    ASSERT(strchr(trace, 'z') != NULL);
    ASSERT_OK(weft_sched_free(s1));
    ASSERT_OK(weft_sched_free(s2));
}

/* ----------------------------------------------------------------------
 * weft_run, weft_stop
 * ---------------------------------------------------------------------- */

TEST(run_returns_zero_when_all_done)
{
    weft_sched *s = new_manual();
    struct looper a = {'a', 3, 0}, b = {'b', 2, 0};
    /* Nothing to do: returns at once. */
    ASSERT_OK(weft_run(s));
    trace_reset();
    ASSERT_OK(weft_spawn(s, yield_loop, &a, NULL, NULL));
    ASSERT_OK(weft_spawn(s, yield_loop, &b, NULL, NULL));
    ASSERT_EQ(weft_sched_count(s), 2);
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "ababa");
    ASSERT_EQ(weft_sched_count(s), 0);
    ASSERT_EQ(weft_next_timeout(s), -1);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_sched_free(s));
}

struct stopper {
    int steps, stop_at;
    int ran;
};

static int stop_body(void *arg)
{
    struct stopper *st = arg;
    for (int i = 0; i < st->steps; i++) {
        trace_add('s');
        st->ran++;
        if (i == st->stop_at)
            ASSERT_OK(weft_stop(NULL));
        ASSERT_OK(weft_yield());
    }
    return 0;
}

TEST(stop_from_coroutine)
{
    weft_sched *s = new_manual();
    struct stopper st = {5, 1, 0};
    struct looper other = {'o', 5, 0};
    trace_reset();
    ASSERT_OK(weft_spawn(s, stop_body, &st, NULL, NULL));
    ASSERT_OK(weft_spawn(s, yield_loop, &other, NULL, NULL));
    /* Stopped after the iteration in which weft_stop() was called: the
     * rest of that turn still ran. */
    ASSERT_EQ(weft_run(s), 1);
    ASSERT_STR_EQ(trace, "soso");
    ASSERT_EQ(st.ran, 2);
    ASSERT_EQ(weft_sched_count(s), 2);
    /* A later run resumes where it stopped. */
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "sososososo");
    ASSERT_EQ(st.ran, 5);
    ASSERT_EQ(other.ran, 5);
    ASSERT_OK(weft_sched_free(s));
}

static int stop_and_finish(void *arg)
{
    (void)arg;
    ASSERT_OK(weft_stop(NULL));
    return 0;
}

TEST(stop_with_nothing_left_returns_zero)
{
    weft_sched *s = new_manual();
    ASSERT_OK(weft_spawn(s, stop_and_finish, NULL, NULL, NULL));
    ASSERT_OK(weft_run(s)); /* stopped, but nothing is pending */
    ASSERT_OK(weft_sched_free(s));
}

TEST(stop_before_run)
{
    weft_sched *s = new_manual();
    struct looper a = {'a', 3, 0};
    trace_reset();
    ASSERT_OK(weft_spawn(s, yield_loop, &a, NULL, NULL));
    ASSERT_OK(weft_stop(s));
    /* The next run returns after one iteration. */
    ASSERT_EQ(weft_run(s), 1);
    ASSERT_EQ(a.ran, 1);
    /* The request was used up: the run after goes to the end. */
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(a.ran, 3);
    ASSERT_OK(weft_sched_free(s));
}

TEST(stop_request_is_used_by_the_next_run)
{
    weft_sched *s = new_manual();
    struct looper a = {'a', 3, 0};
    ASSERT_OK(weft_stop(s));
    /* The next run has nothing to do and returns 0: the stop request is
     * consumed by it and does not cut a later run short. */
    ASSERT_OK(weft_run(s));
    trace_reset();
    ASSERT_OK(weft_spawn(s, yield_loop, &a, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(a.ran, 3);
    ASSERT_OK(weft_sched_free(s));
}

struct nest {
    weft_sched *s, *other;
    int r_run, r_run_null, r_run_other, r_once, r_once_other;
};

static int nest_body(void *arg)
{
    struct nest *n = arg;
    n->r_run = weft_run(n->s);
    n->r_run_null = weft_run(NULL);
    n->r_run_other = weft_run(n->other);
    n->r_once = weft_run_once(n->s, 0);
    n->r_once_other = weft_run_once(n->other, -1);
    return 0;
}

TEST(run_does_not_nest)
{
    struct nest n;
    int other_ran = 0;
    memset(&n, 0, sizeof n);
    n.s = new_manual();
    n.other = new_manual();
    ASSERT_OK(weft_spawn(n.other, count_runs, &other_ran, NULL, NULL));
    ASSERT_OK(weft_spawn(n.s, nest_body, &n, NULL, NULL));
    ASSERT_OK(weft_run(n.s));
    ASSERT_ERR(n.r_run, -EINVAL);
    ASSERT_ERR(n.r_run_null, -EINVAL);
    ASSERT_ERR(n.r_run_other, -EINVAL);
    ASSERT_ERR(n.r_once, -EINVAL);
    ASSERT_ERR(n.r_once_other, -EINVAL);
    ASSERT_EQ(other_ran, 0);
    ASSERT_OK(weft_run(n.other));
    ASSERT_EQ(other_ran, 1);
    ASSERT_OK(weft_sched_free(n.s));
    ASSERT_OK(weft_sched_free(n.other));
}

/* ----------------------------------------------------------------------
 * weft_run_once, weft_next_timeout, weft_sched_count
 * ---------------------------------------------------------------------- */

TEST(run_once_is_one_iteration)
{
    weft_sched *s = new_manual();
    struct looper a = {'a', 3, 0}, b = {'b', 1, 0};
    ASSERT_EQ(weft_run_once(s, 0), 0); /* nothing at all */
    ASSERT_EQ(weft_run_once(s, -1), 0);
    trace_reset();
    ASSERT_OK(weft_spawn(s, yield_loop, &a, NULL, NULL));
    ASSERT_OK(weft_spawn(s, yield_loop, &b, NULL, NULL));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_STR_EQ(trace, "ab");
    ASSERT_EQ(weft_run_once(s, 0), 1); /* b returns from its yield */
    ASSERT_STR_EQ(trace, "aba");
    ASSERT_EQ(weft_sched_count(s), 1);
    ASSERT_EQ(weft_run_once(s, -1), 1);
    ASSERT_STR_EQ(trace, "abaa");
    ASSERT_EQ(weft_run_once(s, -1), 0); /* a returns: nothing left */
    ASSERT_EQ(weft_sched_count(s), 0);
    ASSERT_EQ(weft_now(s), 0);
    ASSERT_OK(weft_sched_free(s));
}

static int sleep_5s(void *arg)
{
    int64_t *woke = arg;
    ASSERT_OK(weft_sleep_for(WEFT_SEC(5)));
    *woke = weft_now(NULL);
    return 0;
}

TEST(run_once_and_the_manual_clock)
{
    weft_sched *s = new_manual();
    int64_t woke = -1;
    ASSERT_OK(weft_spawn(s, sleep_5s, &woke, NULL, NULL));
    ASSERT_EQ(weft_run_once(s, 0), 1); /* starts, goes to sleep */
    ASSERT_EQ(weft_now(s), 0);
    /* A zero timeout never moves the clock. */
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(weft_now(s), 0);
    ASSERT_EQ(woke, -1);
    /* A bounded wait moves it by at most the timeout. */
    ASSERT_EQ(weft_run_once(s, WEFT_SEC(2)), 1);
    ASSERT_EQ(weft_now(s), WEFT_SEC(2));
    ASSERT_EQ(woke, -1);
    ASSERT_EQ(weft_next_timeout(s), WEFT_SEC(3));
    /* A longer timeout stops at the deadline, and the timer fires in the
     * same iteration. */
    ASSERT_EQ(weft_run_once(s, WEFT_SEC(100)), 1);
    ASSERT_EQ(weft_now(s), WEFT_SEC(5));
    ASSERT_EQ(weft_next_timeout(s), 0);
    ASSERT_EQ(woke, -1);
    ASSERT_EQ(weft_run_once(s, 0), 0);
    ASSERT_EQ(woke, WEFT_SEC(5));

    /* -1 waits as long as needed: the clock jumps to the deadline. */
    woke = -1;
    ASSERT_OK(weft_spawn(s, sleep_5s, &woke, NULL, NULL));
    ASSERT_EQ(weft_run_once(s, -1), 1); /* starts it: it goes to sleep */
    ASSERT_EQ(weft_now(s), WEFT_SEC(10)); /* and the wait reaches 10 s */
    ASSERT_EQ(weft_run_once(s, -1), 0);
    ASSERT_EQ(woke, WEFT_SEC(10));
    /* Nothing scheduled: -1 returns at once instead of waiting forever. */
    ASSERT_EQ(weft_run_once(s, -1), 0);
    ASSERT_EQ(weft_now(s), WEFT_SEC(10));
    ASSERT_OK(weft_sched_free(s));
}

TEST(next_timeout_reports_the_wait)
{
    weft_sched *s = new_manual();
    int64_t woke = -1;
    weft_coro *a, *b;
    ASSERT_EQ(weft_next_timeout(s), -1);
    ASSERT_OK(weft_spawn(s, sleep_5s, &woke, NULL, NULL));
    ASSERT_EQ(weft_next_timeout(s), 0); /* ready */
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(weft_next_timeout(s), WEFT_SEC(5));
    ASSERT_OK(weft_clock_advance(s, WEFT_SEC(2)));
    ASSERT_EQ(weft_next_timeout(s), WEFT_SEC(3));
    ASSERT_OK(weft_clock_advance(s, WEFT_SEC(10)));
    ASSERT_EQ(weft_next_timeout(s), 0); /* overdue */
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(woke, WEFT_SEC(12));
    ASSERT_EQ(weft_next_timeout(s), -1);

    /* Coroutines that wait with no deadline: nothing to wait for. */
    ASSERT_OK(weft_spawn(s, join_forever, &b, NULL, &a));
    ASSERT_OK(weft_spawn(s, join_forever, &a, NULL, &b));
    ASSERT_ERR(weft_run(s), -EDEADLK);
    ASSERT_EQ(weft_next_timeout(s), -1);
    ASSERT_OK(weft_sched_free(s));
}

static int spawn_and_wait(void *arg)
{
    weft_sched *s = arg;
    weft_coro *co;
    int n = 0;
    ASSERT_EQ(weft_sched_count(NULL), 3); /* self + two spawned by main */
    ASSERT_OK(weft_spawn(s, count_runs, &n, NULL, &co));
    ASSERT_EQ(weft_sched_count(s), 4);
    ASSERT_OK(weft_join(co, NULL));
    ASSERT_EQ(n, 1);
    /* By now z has finished and main has ended `later`: only self. */
    ASSERT_EQ(weft_sched_count(s), 1);
    return 0;
}

TEST(sched_count_counts_unfinished)
{
    weft_sched *s = new_manual();
    weft_coro *z, *later;
    int n = 0;
    ASSERT_OK(weft_spawn(s, spawn_and_wait, s, NULL, NULL));
    ASSERT_OK(weft_spawn(s, count_runs, &n, NULL, &z));
    ASSERT_OK(weft_spawn_at(s, WEFT_SEC(3), count_runs, &n, NULL, &later));
    ASSERT_EQ(weft_sched_count(s), 3); /* includes the not-yet-started */
    ASSERT_EQ(weft_run_once(s, 0), 1);
    /* z finished (a zombie until reaped: not counted); the coroutine
     * spawned during the turn has not run yet (counted). */
    ASSERT_EQ(weft_coro_done(z), 1);
    ASSERT_EQ(weft_sched_count(s), 3);
    ASSERT_OK(weft_end(later));
    ASSERT_EQ(weft_sched_count(s), 2);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(weft_sched_count(s), 0);
    ASSERT_EQ(n, 1);
    ASSERT_OK(weft_reap(z, NULL));
    ASSERT_OK(weft_reap(later, NULL));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Deadlock
 * ---------------------------------------------------------------------- */

struct deadlock {
    weft_coro *a, *b;
    int a_join, b_join, b_status;
};

static int dl_a(void *arg)
{
    struct deadlock *d = arg;
    d->a_join = weft_join(d->b, NULL);
    return 7;
}

static int dl_b(void *arg)
{
    struct deadlock *d = arg;
    d->b_join = weft_join(d->a, &d->b_status);
    return 0;
}

TEST(deadlock_is_reported)
{
    weft_sched *s = new_manual();
    struct deadlock d = {NULL, NULL, 1, 1, 0};
    ASSERT_OK(weft_spawn(s, dl_a, &d, NULL, &d.a));
    ASSERT_OK(weft_spawn(s, dl_b, &d, NULL, &d.b));
    /* A waits for B, B waits for A, and nothing can wake either. */
    ASSERT_ERR(weft_run(s), -EDEADLK);
    ASSERT_EQ(weft_sched_count(s), 2);
    ASSERT_EQ(d.a_join, 1);
    ASSERT_EQ(d.b_join, 1);
    ASSERT_ERR(weft_run(s), -EDEADLK); /* still */
    /* Breaking the cycle from outside lets the run finish. */
    ASSERT_OK(weft_raise(d.a, -EINTR));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(d.a_join, -EINTR);
    ASSERT_OK(d.b_join);
    ASSERT_EQ(d.b_status, 7);
    ASSERT_OK(weft_reap(d.b, NULL));
    ASSERT_OK(weft_sched_free(s));
}

TEST(deadlocked_sched_can_be_freed)
{
    long live = weft__test_live_allocs();
    weft_sched *s = new_manual();
    struct deadlock d = {NULL, NULL, 1, 1, 0};
    ASSERT_OK(weft_spawn(s, dl_a, &d, NULL, &d.a));
    ASSERT_OK(weft_spawn(s, dl_b, &d, NULL, &d.b));
    ASSERT_ERR(weft_run(s), -EDEADLK);
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(d.a_join, 1);
    ASSERT_EQ(d.b_join, 1);
    ASSERT_EQ(weft__test_live_allocs(), live);
}

static int sleep_long(void *arg)
{
    (void)arg;
    ASSERT_OK(weft_sleep_for(WEFT_SEC(1000)));
    return 0;
}

TEST(waiting_on_a_timer_is_not_deadlock)
{
    weft_sched *s = new_manual();
    ASSERT_OK(weft_spawn(s, sleep_long, NULL, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(weft_now(s), WEFT_SEC(1000));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Run-queue order and fairness
 * ---------------------------------------------------------------------- */

TEST(runq_is_fifo_within_a_priority)
{
    weft_sched *s = new_manual();
    trace_reset();
    for (char c = 'a'; c <= 'h'; c++)
        ASSERT_OK(weft_spawn(s, log_once, (void *)(intptr_t)c, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "abcdefgh");
    ASSERT_OK(weft_sched_free(s));
}

static void spawn_prio(weft_sched *s, char c, int prio, int first)
{
    struct weft_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.priority = prio;
    o.first = first;
    ASSERT_OK(weft_spawn(s, log_once, (void *)(intptr_t)c, &o, NULL));
}

TEST(runq_runs_most_urgent_first)
{
    weft_sched *s = new_manual();
    trace_reset();
    spawn_prio(s, 'n', WEFT_PRIO_NORMAL, 0);
    spawn_prio(s, 'l', WEFT_PRIO_LOW, 0);
    spawn_prio(s, 'i', WEFT_PRIO_IDLE, 0);
    spawn_prio(s, 'h', WEFT_PRIO_HIGH, 0);
    spawn_prio(s, 'N', WEFT_PRIO_NORMAL, 0);
    spawn_prio(s, 'I', WEFT_PRIO_IDLE, 0);
    spawn_prio(s, 'H', WEFT_PRIO_HIGH, 0);
    spawn_prio(s, 'L', WEFT_PRIO_LOW, 0);
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "hHnNlLiI");
    ASSERT_OK(weft_sched_free(s));
}

static int spawn_first_inside(void *arg)
{
    weft_sched *s = arg;
    trace_add('A');
    spawn_prio(s, 'F', WEFT_PRIO_IDLE, 1); /* first: before B */
    spawn_prio(s, 'n', WEFT_PRIO_HIGH, 0);  /* not first: next turn */
    return 0;
}

TEST(spawn_first_jumps_the_queue)
{
    weft_sched *s = new_manual();
    trace_reset();
    spawn_prio(s, 'a', WEFT_PRIO_HIGH, 0);
    spawn_prio(s, 'b', WEFT_PRIO_NORMAL, 0);
    spawn_prio(s, 'f', WEFT_PRIO_IDLE, 1);
    spawn_prio(s, 'g', WEFT_PRIO_LOW, 1); /* the latest `first` goes first */
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "gfab");

    /* From inside a turn: before the rest of the turn in progress. */
    trace_reset();
    ASSERT_OK(weft_spawn(s, spawn_first_inside, s, NULL, NULL));
    spawn_prio(s, 'B', WEFT_PRIO_NORMAL, 0);
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "AFBn");
    ASSERT_OK(weft_sched_free(s));
}

static int spawn_during_turn(void *arg)
{
    weft_sched *s = arg;
    trace_add('A');
    spawn_prio(s, 'h', WEFT_PRIO_HIGH, 0);
    spawn_prio(s, 'n', WEFT_PRIO_NORMAL, 0);
    return 0;
}

TEST(made_ready_during_a_turn_runs_next_turn)
{
    weft_sched *s = new_manual();
    trace_reset();
    ASSERT_OK(weft_spawn(s, spawn_during_turn, s, NULL, NULL));
    spawn_prio(s, 'B', WEFT_PRIO_IDLE, 0);
    /* h is more urgent than B but B was ready when the turn began. */
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "ABhn");
    ASSERT_OK(weft_sched_free(s));
}

TEST(fairness_yield_loops_interleave)
{
    weft_sched *s = new_manual();
    struct looper a = {'a', 4, 0}, b = {'b', 4, 0}, c = {'c', 4, 0};
    trace_reset();
    ASSERT_OK(weft_spawn(s, yield_loop, &a, NULL, NULL));
    ASSERT_OK(weft_spawn(s, yield_loop, &b, NULL, NULL));
    ASSERT_OK(weft_spawn(s, yield_loop, &c, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "abcabcabcabc");
    ASSERT_OK(weft_sched_free(s));
}

struct greedy {
    int idle_done;
    int high_steps;
    int high_steps_before_idle;
};

static int greedy_high(void *arg)
{
    struct greedy *g = arg;
    /* Would run forever if HIGH starved IDLE. */
    while (!g->idle_done) {
        trace_add('H');
        g->high_steps++;
        ASSERT_OK(weft_yield());
        ASSERT_LT(g->high_steps, 1000);
    }
    return 0;
}

static int idle_steps(void *arg)
{
    struct greedy *g = arg;
    for (int i = 0; i < 3; i++) {
        if (i == 0)
            g->high_steps_before_idle = g->high_steps;
        trace_add('i');
        ASSERT_OK(weft_yield());
    }
    g->idle_done = 1;
    return 0;
}

TEST(fairness_high_does_not_starve_idle)
{
    weft_sched *s = new_manual();
    struct greedy g = {0, 0, 0};
    struct weft_spawn_opts hi, idle;
    memset(&hi, 0, sizeof hi);
    memset(&idle, 0, sizeof idle);
    hi.priority = WEFT_PRIO_HIGH;
    idle.priority = WEFT_PRIO_IDLE;
    trace_reset();
    ASSERT_OK(weft_spawn(s, idle_steps, &g, &idle, NULL));
    ASSERT_OK(weft_spawn(s, greedy_high, &g, &hi, NULL));
    ASSERT_OK(weft_run(s));
    /* Each turn: HIGH first, then IDLE; neither runs twice in a turn. */
    ASSERT_STR_EQ(trace, "HiHiHiH");
    ASSERT_EQ(g.high_steps_before_idle, 1);
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * The manual clock
 * ---------------------------------------------------------------------- */

TEST(manual_clock_advance_and_set)
{
    weft_sched *s = new_manual();
    ASSERT_EQ(weft_now(s), 0);
    ASSERT_OK(weft_clock_advance(s, WEFT_SEC(5)));
    ASSERT_EQ(weft_now(s), WEFT_SEC(5));
    ASSERT_OK(weft_clock_advance(s, 0));
    ASSERT_EQ(weft_now(s), WEFT_SEC(5));
    ASSERT_ERR(weft_clock_advance(s, -1), -EINVAL);
    ASSERT_OK(weft_clock_set(s, WEFT_SEC(10)));
    ASSERT_EQ(weft_now(s), WEFT_SEC(10));
    ASSERT_OK(weft_clock_set(s, WEFT_SEC(10))); /* not backwards: fine */
    ASSERT_ERR(weft_clock_set(s, WEFT_SEC(10) - 1), -EINVAL);
    ASSERT_ERR(weft_clock_set(s, -1), -EINVAL);
    ASSERT_EQ(weft_now(s), WEFT_SEC(10));
    /* The clock does not move by itself. */
    ASSERT_EQ(weft_now(s), WEFT_SEC(10));
    ASSERT_OK(weft_sched_free(s));

    /* Not a manual clock. */
    ASSERT_OK(weft_sched_new(NULL, &s));
    ASSERT_ERR(weft_clock_advance(s, 0), -EINVAL);
    ASSERT_ERR(weft_clock_set(s, weft_now(s) + 1), -EINVAL);
    ASSERT_OK(weft_sched_free(s));
}

static int sleep_an_hour(void *arg)
{
    int64_t *woke = arg;
    ASSERT_OK(weft_sleep_for(WEFT_SEC(3600)));
    *woke = weft_now(NULL);
    return 0;
}

TEST(manual_clock_jumps_to_the_next_deadline)
{
    weft_sched *s = new_manual();
    int64_t woke = -1;
    int64_t t0 = real_ns(CLOCK_MONOTONIC);
    ASSERT_OK(weft_spawn(s, sleep_an_hour, &woke, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(woke, WEFT_SEC(3600));
    ASSERT_EQ(weft_now(s), WEFT_SEC(3600));
    ASSERT_LT(real_ns(CLOCK_MONOTONIC) - t0, WEFT_SEC(2));
    ASSERT_OK(weft_sched_free(s));
}

struct sleeper {
    int64_t dur, woke;
    char c;
};

static int sleep_and_log(void *arg)
{
    struct sleeper *sl = arg;
    ASSERT_OK(weft_sleep_for(sl->dur));
    sl->woke = weft_now(NULL);
    trace_add(sl->c);
    return 0;
}

TEST(manual_clock_wakes_in_deadline_order)
{
    weft_sched *s = new_manual();
    struct sleeper a = {WEFT_SEC(3), -1, 'a'}, b = {WEFT_SEC(1), -1, 'b'},
                   c = {WEFT_SEC(2), -1, 'c'}, d = {WEFT_SEC(2), -1, 'd'};
    trace_reset();
    ASSERT_OK(weft_spawn(s, sleep_and_log, &a, NULL, NULL));
    ASSERT_OK(weft_spawn(s, sleep_and_log, &b, NULL, NULL));
    ASSERT_OK(weft_spawn(s, sleep_and_log, &c, NULL, NULL));
    ASSERT_OK(weft_spawn(s, sleep_and_log, &d, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_STR_EQ(trace, "bcda");
    ASSERT_EQ(b.woke, WEFT_SEC(1));
    ASSERT_EQ(c.woke, WEFT_SEC(2));
    ASSERT_EQ(d.woke, WEFT_SEC(2));
    ASSERT_EQ(a.woke, WEFT_SEC(3));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Unix time
 * ---------------------------------------------------------------------- */

static int64_t abs64(int64_t v)
{
    return v < 0 ? -v : v;
}

TEST(unix_time_monotonic_clock)
{
    weft_sched *s;
    ASSERT_OK(weft_sched_new(NULL, &s));
    int64_t now = weft_now(s);
    int64_t unix_now = real_ns(CLOCK_REALTIME);
    ASSERT_LT(abs64(weft_to_unix(s, now) - unix_now), WEFT_MSEC(100));
    ASSERT_LT(abs64(weft_from_unix(s, unix_now) - now), WEFT_MSEC(100));
    /* Round trip (the offset is read afresh each time: allow a little). */
    int64_t t = now + WEFT_SEC(30);
    ASSERT_LT(abs64(weft_from_unix(s, weft_to_unix(s, t)) - t),
              WEFT_MSEC(10));
    /* Differences are preserved. */
    ASSERT_LT(abs64(weft_to_unix(s, t) - weft_to_unix(s, now) - WEFT_SEC(30)),
              WEFT_MSEC(10));
    ASSERT_OK(weft_sched_free(s));
}

static int record_now(void *arg)
{
    *(int64_t *)arg = weft_now(NULL);
    return 0;
}

TEST(unix_time_manual_clock)
{
    int64_t before = real_ns(CLOCK_REALTIME);
    weft_sched *s = new_manual();
    int64_t after = real_ns(CLOCK_REALTIME);
    int64_t base = weft_to_unix(s, 0);
    /* Time 0 of a manual clock is the real time of its creation. */
    ASSERT_GE(base, before);
    ASSERT_LE(base, after);
    /* It advances with the manual clock, not with real time. */
    ASSERT_EQ(weft_to_unix(s, weft_now(s)), base);
    ASSERT_OK(weft_clock_advance(s, WEFT_SEC(10)));
    ASSERT_EQ(weft_to_unix(s, weft_now(s)), base + WEFT_SEC(10));
    /* Exact round trips. */
    for (int64_t t = -WEFT_SEC(5); t <= WEFT_SEC(100); t += WEFT_SEC(15)) {
        ASSERT_EQ(weft_from_unix(s, weft_to_unix(s, t)), t);
        ASSERT_EQ(weft_to_unix(s, weft_from_unix(s, base + t)), base + t);
    }
    ASSERT_EQ(weft_from_unix(s, base + WEFT_SEC(7)), WEFT_SEC(7));
    /* Far past: negative scheduler time. */
    ASSERT_LT(weft_from_unix(s, base - WEFT_SEC(1)), 0);

    /* An epoch time used with spawn_at (greenhouse schedule_at). */
    int64_t ran_at = -1;
    ASSERT_OK(weft_spawn_at(s, weft_from_unix(s, base + WEFT_SEC(42)),
                            record_now, &ran_at, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(ran_at, WEFT_SEC(42));
    ASSERT_EQ(weft_to_unix(s, ran_at), base + WEFT_SEC(42));
    ASSERT_OK(weft_sched_free(s));
}
