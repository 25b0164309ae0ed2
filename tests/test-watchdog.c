/*
 * test-watchdog.c - the watchdog: a coroutine that runs longer than the
 * threshold without yielding is reported (by id, name and run time), once
 * per stall, by the callback or on stderr; coroutines that yield, an idle
 * loop and callbacks are not; the option, the setters and their errors.
 *
 * The spinning coroutines spin until the watchdog callback has set a flag
 * (with a fail-safe bound of SPIN_LIMIT), so each case takes a few
 * hundred milliseconds at most.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h" /* WEFT_TSAN */
#include "test.h"

long weft__test_live_allocs(void);
void weft__test_fail_alloc(long n, int sticky);

#define MS WEFT_MSEC(1)
/* Fail-safe: no spin of these tests lasts longer (even under Valgrind). */
#define SPIN_LIMIT WEFT_SEC(10)

static int64_t mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Reports received by the callback.  The callback runs on the watchdog
 * thread: it fills slot n, then publishes n + 1 (release), so the test
 * thread reads a slot only after seeing the count (acquire). */
#define MAX_REPORTS 8
static struct {
    uint64_t id;
    char name[WEFT_NAME_MAX + 1];
    int64_t ran_ns;
    weft_sched *s;
    void *arg;
} reports[MAX_REPORTS];
static atomic_int nreports;

static void on_report(weft_sched *s, uint64_t id, const char *name,
                      int64_t ran_ns, void *arg)
{
    int n = atomic_load_explicit(&nreports, memory_order_relaxed);
    if (n < MAX_REPORTS) {
        reports[n].id = id;
        snprintf(reports[n].name, sizeof reports[n].name, "%s", name);
        reports[n].ran_ns = ran_ns;
        reports[n].s = s;
        reports[n].arg = arg;
    }
    atomic_store_explicit(&nreports, n + 1, memory_order_release);
}

static int count(void)
{
    return atomic_load_explicit(&nreports, memory_order_acquire);
}

static void reset(void)
{
    atomic_store(&nreports, 0);
    memset(reports, 0, sizeof reports);
}

/* Spin (never yielding) until at least n reports arrived; returns how
 * long it spun. */
static int64_t spin_until_reports(int n)
{
    int64_t t0 = mono();
    while (count() < n) {
        if (mono() - t0 > SPIN_LIMIT)
            FAIL("no watchdog report after %lld ms of spinning",
                 (long long)(SPIN_LIMIT / MS));
    }
    return mono() - t0;
}

static void spin_for(int64_t ns)
{
    int64_t t0 = mono();
    while (mono() - t0 < ns) {
    }
}

static weft_sched *new_sched(int64_t watchdog_ns)
{
    struct weft_sched_opts o;
    memset(&o, 0, sizeof o);
    o.watchdog_ns = watchdog_ns;
    weft_sched *s = NULL;
    ASSERT_OK(weft_sched_new(&o, &s));
    return s;
}

static weft_coro *spawn_named(weft_sched *s, const char *name, weft_fn fn,
                              void *arg)
{
    struct weft_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.name = name;
    weft_coro *co;
    ASSERT_OK(weft_spawn(s, fn, arg, &o, &co));
    return co;
}

/* ----------------------------------------------------------------------
 * Detection
 * ---------------------------------------------------------------------- */

static int spinner(void *arg)
{
    (void)arg;
    spin_until_reports(1);
    return 0;
}

TEST(reports_a_spinning_coroutine)
{
    reset();
    long allocs = weft__test_live_allocs();
    weft_sched *s = new_sched(40 * MS);
    int tag;
    ASSERT_OK(weft_sched_set_watchdog_fn(s, on_report, &tag));
    weft_coro *co = spawn_named(s, "spinner", spinner, NULL);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(count(), 1);
    ASSERT_EQ(reports[0].id, weft_coro_id(co));
    ASSERT_STR_EQ(reports[0].name, "spinner");
    ASSERT_GE(reports[0].ran_ns, 40 * MS);
    ASSERT_PTR_EQ(reports[0].s, s);
    ASSERT_PTR_EQ(reports[0].arg, &tag);
    ASSERT_OK(weft_reap(co, NULL));
    ASSERT_OK(weft_sched_free(s)); /* joins the thread */
    ASSERT_EQ(weft__test_live_allocs(), allocs);
}

static int spin_twice(void *arg)
{
    (void)arg;
    spin_until_reports(1);
    /* Still the same stall: three more thresholds bring no new report. */
    spin_for(90 * MS);
    ASSERT_EQ(count(), 1);
    /* A yield ends the stall; the next one is reported again. */
    ASSERT_OK(weft_yield());
    spin_until_reports(2);
    return 0;
}

TEST(reports_once_per_stall)
{
    reset();
    weft_sched *s = new_sched(30 * MS);
    ASSERT_OK(weft_sched_set_watchdog_fn(s, on_report, NULL));
    weft_coro *co = spawn_named(s, "twice", spin_twice, NULL);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(count(), 2);
    ASSERT_EQ(reports[0].id, weft_coro_id(co));
    ASSERT_EQ(reports[1].id, weft_coro_id(co));
    ASSERT_OK(weft_reap(co, NULL));
    ASSERT_OK(weft_sched_free(s));
}

/* Two coroutines: the second stalls after the first has yielded to it. */
static int polite(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        ASSERT_OK(weft_yield());
    return 0;
}

TEST(names_the_coroutine_that_stalls)
{
    reset();
    weft_sched *s = new_sched(30 * MS);
    ASSERT_OK(weft_sched_set_watchdog_fn(s, on_report, NULL));
    weft_coro *a = spawn_named(s, "polite", polite, NULL);
    weft_coro *b = spawn_named(s, "a-rather-long-name-of-31-bytes!", spinner,
                               NULL);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(count(), 1);
    ASSERT_EQ(reports[0].id, weft_coro_id(b));
    ASSERT_STR_EQ(reports[0].name, "a-rather-long-name-of-31-bytes!");
    ASSERT_OK(weft_reap(a, NULL));
    ASSERT_OK(weft_reap(b, NULL));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * What is not reported
 * ---------------------------------------------------------------------- */

/* Yields often, for several thresholds in all. */
static int busy_but_yielding(void *arg)
{
    int64_t t0 = mono();
    (void)arg;
    while (mono() - t0 < 150 * MS) {
        spin_for(1 * MS);
        ASSERT_OK(weft_yield());
    }
    return 0;
}

TEST(a_lone_coroutine_that_yields_is_not_reported)
{
    /* Alone, its yields continue without any context switch. */
    reset();
    weft_sched *s = new_sched(30 * MS);
    ASSERT_OK(weft_sched_set_watchdog_fn(s, on_report, NULL));
    ASSERT_OK(weft_spawn(s, busy_but_yielding, NULL, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(count(), 0);
    ASSERT_OK(weft_sched_free(s));
}

TEST(coroutines_that_yield_are_not_reported)
{
    reset();
    weft_sched *s = new_sched(30 * MS);
    ASSERT_OK(weft_sched_set_watchdog_fn(s, on_report, NULL));
    ASSERT_OK(weft_spawn(s, busy_but_yielding, NULL, NULL, NULL));
    ASSERT_OK(weft_spawn(s, busy_but_yielding, NULL, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(count(), 0);
    ASSERT_OK(weft_sched_free(s));
}

static int sleeper(void *arg)
{
    (void)arg;
    return weft_sleep_for(150 * MS);
}

static void spin_cb(weft_timer *t, void *arg)
{
    (void)t;
    (void)arg;
    spin_for(100 * MS);
}

TEST(the_loop_is_not_reported)
{
    /* Waiting for a deadline, and running a long callback, happen in the
     * loop, not in a coroutine. */
    reset();
    weft_sched *s = new_sched(30 * MS);
    ASSERT_OK(weft_sched_set_watchdog_fn(s, on_report, NULL));
    ASSERT_OK(weft_spawn(s, sleeper, NULL, NULL, NULL));
    weft_timer *t;
    ASSERT_OK(weft_timer_new(s, spin_cb, NULL, &t));
    ASSERT_OK(weft_timer_start(t, 10 * MS, 0));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(count(), 0);
    /* Nor an idle scheduler, outside weft_run(). */
    usleep(100 * 1000);
    ASSERT_EQ(count(), 0);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Turning it on, off, changing it
 * ---------------------------------------------------------------------- */

static int enable_then_spin(void *arg)
{
    (void)arg;
    ASSERT_OK(weft_sched_set_watchdog(NULL, 30 * MS));
    spin_until_reports(1);
    return 0;
}

TEST(turned_on_by_the_spinning_coroutine_itself)
{
    reset();
    weft_sched *s = new_sched(0);
    ASSERT_OK(weft_sched_set_watchdog_fn(s, on_report, NULL));
    weft_coro *co = spawn_named(s, "self", enable_then_spin, NULL);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(count(), 1);
    ASSERT_EQ(reports[0].id, weft_coro_id(co));
    ASSERT_STR_EQ(reports[0].name, "self");
    ASSERT_OK(weft_reap(co, NULL));
    ASSERT_OK(weft_sched_free(s));
}

static int spin_briefly(void *arg)
{
    (void)arg;
    spin_for(120 * MS);
    return 0;
}

TEST(turned_off_and_changed)
{
    reset();
    weft_sched *s = new_sched(30 * MS);
    ASSERT_OK(weft_sched_set_watchdog_fn(s, on_report, NULL));
    /* Off: nothing reported, and nothing left behind. */
    ASSERT_OK(weft_sched_set_watchdog(s, 0));
    ASSERT_OK(weft_sched_set_watchdog(s, 0)); /* already off */
    ASSERT_OK(weft_spawn(s, spin_briefly, NULL, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(count(), 0);
    /* A threshold longer than the stall: nothing either. */
    ASSERT_OK(weft_sched_set_watchdog(s, WEFT_SEC(60)));
    ASSERT_OK(weft_spawn(s, spin_briefly, NULL, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(count(), 0);
    /* Shortened while on: the same thread now reports. */
    ASSERT_OK(weft_sched_set_watchdog(s, 30 * MS));
    ASSERT_OK(weft_spawn(s, spinner, NULL, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(count(), 1);
    ASSERT_OK(weft_sched_free(s));
}

static atomic_int other_reports;

static void on_report_other(weft_sched *s, uint64_t id, const char *name,
                            int64_t ran_ns, void *arg)
{
    atomic_fetch_add(&other_reports, 1);
    on_report(s, id, name, ran_ns, arg);
}

TEST(callback_changed_while_on)
{
    reset();
    atomic_store(&other_reports, 0);
    weft_sched *s = new_sched(30 * MS);
    ASSERT_OK(weft_sched_set_watchdog_fn(s, on_report, NULL));
    ASSERT_OK(weft_spawn(s, spinner, NULL, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(count(), 1);
    ASSERT_EQ(atomic_load(&other_reports), 0);
    reset();
    ASSERT_OK(weft_sched_set_watchdog_fn(s, on_report_other, NULL));
    ASSERT_OK(weft_spawn(s, spinner, NULL, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(count(), 1);
    ASSERT_EQ(atomic_load(&other_reports), 1);
    ASSERT_OK(weft_sched_free(s));
}

/* The default report: one line on stderr.  In a child, to capture it. */
static int spin_for_a_while(void *arg)
{
    (void)arg;
    spin_for(200 * MS);
    return 0;
}

static void stderr_child(void *arg)
{
    (void)arg;
    weft_sched *s = new_sched(30 * MS);
    weft_coro *co = spawn_named(s, "hog", spin_for_a_while, NULL);
    printf("id=%llu\n", (unsigned long long)weft_coro_id(co));
    fflush(stdout);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_reap(co, NULL));
    ASSERT_OK(weft_sched_free(s));
}

TEST(default_report_on_stderr)
{
    char out[1024];
    int st = weft_test_fork(stderr_child, NULL, out, sizeof out);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAIL("child failed (status %#x): %s", (unsigned)st, out);
    unsigned long long id = 0;
    ASSERT_EQ(sscanf(out, "id=%llu", &id), 1);
    char want[128];
    snprintf(want, sizeof want,
             "weft: watchdog: coroutine #%llu 'hog' has run for ", id);
    ASSERT_STR_CONTAINS(out, want);
    ASSERT_STR_CONTAINS(out, " ms without yielding\n");
    /* Once: the stall lasts several thresholds. */
    const char *first = strstr(out, "weft: watchdog:");
    ASSERT(strstr(first + 1, "weft: watchdog:") == NULL);
}

/* fork(): the child has no watchdog thread; turning the watchdog off
 * frees it without joining, and on again starts a new thread. */
static void fork_child(void *arg)
{
    weft_sched *s = arg;
    ASSERT_OK(weft_sched_after_fork(s));
    ASSERT_OK(weft_sched_set_watchdog(s, 0));
    reset();
    ASSERT_OK(weft_sched_set_watchdog(s, 30 * MS));
    ASSERT_OK(weft_spawn(s, spinner, NULL, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(count(), 1);
    ASSERT_OK(weft_sched_free(s));
}

TEST(restarted_after_fork)
{
#if defined(WEFT_TSAN)
    /* TSan refuses to start threads in the child of a threaded process. */
    SKIP("ThreadSanitizer: no new threads after a multi-threaded fork");
#endif
#if defined(WEFT_TEST_EMULATOR)
    /* So does qemu-user (it aborts). */
    SKIP("under an emulator: no new threads after a multi-threaded fork");
#endif
    reset();
    weft_sched *s = new_sched(30 * MS);
    ASSERT_OK(weft_sched_set_watchdog_fn(s, on_report, NULL));
    /* Let the parent's watchdog thread finish starting before the fork:
     * a fork in the middle of a thread's start-up can leave the child
     * with a lock of the C library or a sanitizer runtime held, and its
     * own new thread then never starts (seen under ASan). */
    struct timespec settle = {0, 100 * 1000000L};
    nanosleep(&settle, NULL);
    char out[4096];
    int st = weft_test_fork(fork_child, s, out, sizeof out);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAIL("child failed (status %#x): %s", (unsigned)st, out);
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------- */

static void *from_thread(void *arg)
{
    weft_sched *s = arg;
    int a = weft_sched_set_watchdog(s, 10 * MS);
    int b = weft_sched_set_watchdog_fn(s, on_report, NULL);
    return (void *)(intptr_t)(a == -EINVAL && b == -EINVAL);
}

TEST(errors)
{
    struct weft_sched_opts o;
    memset(&o, 0, sizeof o);
    o.watchdog_ns = -1;
    weft_sched *s = (weft_sched *)&o;
    ASSERT_ERR(weft_sched_new(&o, &s), -EINVAL);
    ASSERT_NULL(s);

    s = new_sched(0);
    ASSERT_ERR(weft_sched_set_watchdog(s, -1), -EINVAL);
    pthread_t th;
    void *ok;
    ASSERT_OK(pthread_create(&th, NULL, from_thread, s));
    ASSERT_OK(pthread_join(th, &ok));
    ASSERT_EQ((intptr_t)ok, 1);
    ASSERT_OK(weft_sched_set_watchdog_fn(s, NULL, NULL));
    ASSERT_OK(weft_sched_free(s));

    /* The default scheduler (NULL) works too. */
    ASSERT_OK(weft_sched_set_watchdog(NULL, WEFT_SEC(1)));
    ASSERT_OK(weft_sched_set_watchdog(NULL, 0));
    ASSERT_OK(weft_sched_set_watchdog_fn(NULL, NULL, NULL));
}

/* Allocation failure: turning the watchdog on fails cleanly. */
TEST(no_memory)
{
    weft_sched *s = new_sched(0);
    long allocs = weft__test_live_allocs();
    weft__test_fail_alloc(0, 0);
    ASSERT_ERR(weft_sched_set_watchdog(s, 10 * MS), -ENOMEM);
    ASSERT_EQ(weft__test_live_allocs(), allocs);
    ASSERT_OK(weft_sched_set_watchdog(s, 10 * MS));
    ASSERT_OK(weft_sched_free(s));

    struct weft_sched_opts o;
    memset(&o, 0, sizeof o);
    o.watchdog_ns = 10 * MS;
    allocs = weft__test_live_allocs();
    /* Every allocation of weft_sched_new() in turn. */
    for (long n = 0;; n++) {
        weft__test_fail_alloc(n, 0);
        int r = weft_sched_new(&o, &s);
        weft__test_fail_alloc(-1, 0);
        if (r == 0) {
            ASSERT_OK(weft_sched_free(s));
            break;
        }
        ASSERT_ERR(r, -ENOMEM);
        ASSERT_EQ(weft__test_live_allocs(), allocs);
    }
}
