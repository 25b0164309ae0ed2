/*
 * test-signal.c - signals as events (weft_signal_wait) on every backend.
 */
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "test.h"

#include "backends.h"

static int backends[3];
#define NB weft_test_backends(backends)

struct sw {
    sigset_t set;
    int64_t deadline;
    int result;
    struct signalfd_siginfo info;
};

static int sig_waiter(void *arg)
{
    struct sw *w = arg;
    w->result = weft_signal_wait(&w->set, w->deadline, &w->info);
    return 0;
}

static int sig_sender(void *arg)
{
    (void)arg;
    ASSERT_OK(weft_yield()); /* the waiter blocks first */
    ASSERT_OK(kill(getpid(), SIGUSR2));
    return 0;
}

static weft_sched *new_sched(int backend, int manual)
{
    struct weft_sched_opts o = {0};
    weft_sched *s;
    o.backend = backend;
    o.clock = manual ? WEFT_CLOCK_MANUAL : WEFT_CLOCK_MONOTONIC;
    ASSERT_OK(weft_sched_new(&o, &s));
    return s;
}

TEST(signal_is_delivered_as_an_event)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        struct sw w = {.deadline = -1};
        sigemptyset(&w.set);
        sigaddset(&w.set, SIGUSR2);
        ASSERT_OK(weft_spawn(s, sig_waiter, &w, NULL, NULL));
        ASSERT_OK(weft_spawn(s, sig_sender, NULL, NULL, NULL));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(w.result, SIGUSR2);
        ASSERT_EQ(w.info.ssi_signo, SIGUSR2);
        ASSERT_EQ(w.info.ssi_pid, (uint32_t)getpid());
        ASSERT_OK(weft_sched_free(s));
    }
}

TEST(pending_signal_returns_at_once)
{
    weft_sched *s = new_sched(WEFT_BACKEND_AUTO, 1);
    struct sw w = {.deadline = WEFT_SEC(1)};
    sigemptyset(&w.set);
    sigaddset(&w.set, SIGUSR1);
    ASSERT_OK(weft_signal_block(&w.set));
    ASSERT_OK(raise(SIGUSR1)); /* blocked: stays pending */
    ASSERT_OK(weft_spawn(s, sig_waiter, &w, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(w.result, SIGUSR1);
    ASSERT_EQ(weft_now(s), 0); /* no waiting happened */
    ASSERT_OK(weft_sched_free(s));
}

TEST(signal_wait_times_out)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 1);
        struct sw w = {.deadline = WEFT_SEC(3)};
        sigemptyset(&w.set);
        sigaddset(&w.set, SIGUSR1);
        ASSERT_OK(weft_spawn(s, sig_waiter, &w, NULL, NULL));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(w.result, -ETIMEDOUT);
        ASSERT_EQ(weft_now(s), WEFT_SEC(3));
        ASSERT_OK(weft_sched_free(s));
    }
}

TEST(one_signal_goes_to_one_of_two_waiters)
{
    weft_sched *s = new_sched(WEFT_BACKEND_AUTO, 0);
    struct sw a = {.deadline = -1}, b = {.deadline = -1};
    weft_coro *ca, *cb;
    sigemptyset(&a.set);
    sigaddset(&a.set, SIGUSR2);
    b.set = a.set;
    ASSERT_OK(weft_spawn(s, sig_waiter, &a, NULL, &ca));
    ASSERT_OK(weft_spawn(s, sig_waiter, &b, NULL, &cb));
    ASSERT_OK(weft_spawn(s, sig_sender, NULL, NULL, NULL));
    for (int i = 0; i < 50 && !a.result && !b.result; i++)
        ASSERT_GE(weft_run_once(s, WEFT_MSEC(100)), 0);
    ASSERT_EQ((a.result == SIGUSR2) + (b.result == SIGUSR2), 1);
    /* The other one still waits; end it. */
    ASSERT_OK(weft_end(a.result ? cb : ca));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(a.result == -ECANCELED || b.result == -ECANCELED, 1);
    ASSERT_OK(weft_reap(ca, NULL));
    ASSERT_OK(weft_reap(cb, NULL));
    ASSERT_OK(weft_sched_free(s));
}

static int bad_signal_args(void *arg)
{
    int *r = arg;
    r[0] = weft_signal_wait(NULL, -1, NULL);
    sigset_t set;
    sigemptyset(&set);
    r[1] = weft_signal_wait(&set, -7, NULL);
    return 0;
}

TEST(signal_bad_input)
{
    sigset_t set;
    sigemptyset(&set);
    int r[2];
    ASSERT_ERR(weft_signal_wait(&set, -1, NULL), -EINVAL); /* no coroutine */
    ASSERT_ERR(weft_signal_block(NULL), -EINVAL);
    weft_sched *s = new_sched(WEFT_BACKEND_AUTO, 0);
    ASSERT_OK(weft_spawn(s, bad_signal_args, r, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(r[0], -EINVAL);
    ASSERT_EQ(r[1], -EINVAL);
    ASSERT_OK(weft_sched_free(s));
}
