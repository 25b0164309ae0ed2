/*
 * watchdog.c - report a coroutine that runs too long without yielding.
 *
 * A coroutine stuck in a loop never gives control back, so nothing on the
 * scheduler's thread can notice: a thread of the scheduler's own does.  At
 * every switch the scheduler publishes who runs from now on (the
 * coroutine's id and name, id 0 for the loop) under a sequence lock whose
 * counter doubles as the switch count.  The watchdog thread samples it
 * four times per threshold; a counter that has not moved for a whole
 * threshold while a coroutine (not the loop) runs is a stall, reported
 * once.  The run time reported is measured from the first sample that saw
 * the stalled value, so it is a lower bound, short by at most one period.
 *
 * Everything the two threads share is atomic (the snapshot words are
 * written with release stores and read with acquire loads inside the
 * seqlock), so the exchange has no data race in the C11 sense and is
 * clean under TSan.  The switch path pays a handful of plain stores on
 * x86-64 while the watchdog is on, and one predictable branch on s->wd
 * while it is off.
 *
 * The time base is CLOCK_MONOTONIC whatever the scheduler's clock: a
 * manual clock does not move while a coroutine spins.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define NAME_WORDS ((WEFT_NAME_MAX + 1) / 8)
_Static_assert((WEFT_NAME_MAX + 1) % 8 == 0, "names are copied by words");

/* Sampling period: a quarter of the threshold, at least this. */
#define MIN_PERIOD_NS 100000LL

struct weft__watchdog {
    /* Written by the scheduler's thread at every switch. */
    _Atomic uint64_t seq; /* odd while the snapshot changes */
    _Atomic uint64_t id;  /* the running coroutine, 0: the loop */
    _Atomic uint64_t name[NAME_WORDS];
    /* Set by the owning thread under mu, read by the watchdog. */
    _Atomic int64_t threshold;
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* on CLOCK_MONOTONIC */
    int stop;            /* under mu */
    weft_watchdog_fn fn; /* under mu */
    void *arg;           /* under mu */
    weft_sched *sched;   /* passed to fn, never dereferenced there */
    pthread_t thread;
    pid_t pid;           /* the process whose thread this is */
};

void weft__wd_switch(struct weft__watchdog *wd, const weft_coro *to)
{
    /* Release stores keep each store after the ones before it, so a
     * reader that sees any new datum also sees seq odd or advanced.  (No
     * standalone fences: GCC's TSan does not support them.)  On x86-64
     * these are plain moves. */
    uint64_t q = atomic_load_explicit(&wd->seq, memory_order_relaxed);
    atomic_store_explicit(&wd->seq, q + 1, memory_order_relaxed);
    atomic_store_explicit(&wd->id, to ? to->id : 0, memory_order_release);
    if (to) {
        uint64_t w[NAME_WORDS];
        memcpy(w, to->name, sizeof w);
        for (int i = 0; i < NAME_WORDS; i++)
            atomic_store_explicit(&wd->name[i], w[i], memory_order_release);
    }
    atomic_store_explicit(&wd->seq, q + 2, memory_order_release);
}

/* Read a consistent snapshot; 0 when a switch was under way. */
static int snapshot(struct weft__watchdog *wd, uint64_t *seq, uint64_t *id,
                    char name[WEFT_NAME_MAX + 1])
{
    /* Acquire loads keep the second read of seq after the data. */
    uint64_t s1 = atomic_load_explicit(&wd->seq, memory_order_acquire);
    uint64_t w[NAME_WORDS];
    *id = atomic_load_explicit(&wd->id, memory_order_acquire);
    for (int i = 0; i < NAME_WORDS; i++)
        w[i] = atomic_load_explicit(&wd->name[i], memory_order_acquire);
    uint64_t s2 = atomic_load_explicit(&wd->seq, memory_order_relaxed);
    *seq = s2;
    if (s1 != s2 || (s1 & 1))
        return 0;
    memcpy(name, w, sizeof w);
    name[WEFT_NAME_MAX] = 0;
    return 1;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void report_stderr(uint64_t id, const char *name, int64_t ran_ns)
{
    char line[160];
    int n = snprintf(line, sizeof line,
                     "weft: watchdog: coroutine #%llu%s%s%s has run for %lld "
                     "ms without yielding\n",
                     (unsigned long long)id, name[0] ? " '" : "", name,
                     name[0] ? "'" : "", (long long)(ran_ns / 1000000));
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1;
    /* One write, so that the line is not interleaved with others. */
    if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0) {
        /* nowhere to report that */
    }
}

static void *wd_main(void *p)
{
    struct weft__watchdog *wd = p;
    uint64_t last = 0, reported = 1; /* seq is always even when stable */
    int64_t seen = mono_ns();
    char name[WEFT_NAME_MAX + 1];
    pthread_mutex_lock(&wd->mu);
    while (!wd->stop) {
        int64_t th = atomic_load_explicit(&wd->threshold, memory_order_relaxed);
        int64_t period = th / 4 > MIN_PERIOD_NS ? th / 4 : MIN_PERIOD_NS;
        int64_t until = mono_ns() + period;
        struct timespec ts = {(time_t)(until / 1000000000LL),
                              (long)(until % 1000000000LL)};
        (void)pthread_cond_timedwait(&wd->cv, &wd->mu, &ts);
        if (wd->stop)
            break;
        uint64_t seq, id;
        int ok = snapshot(wd, &seq, &id, name);
        int64_t now = mono_ns();
        if (!ok || seq != last) {
            last = seq; /* it switched: progress */
            seen = now;
            continue;
        }
        if (id == 0 || reported == seq || now - seen < th)
            continue;
        reported = seq;
        weft_watchdog_fn fn = wd->fn;
        void *arg = wd->arg;
        pthread_mutex_unlock(&wd->mu);
        if (fn)
            fn(wd->sched, id, name, now - seen, arg);
        else
            report_stderr(id, name, now - seen);
        pthread_mutex_lock(&wd->mu);
    }
    pthread_mutex_unlock(&wd->mu);
    return NULL;
}

static void wd_free(struct weft__watchdog *wd, int destroy)
{
    if (destroy) {
        pthread_cond_destroy(&wd->cv);
        pthread_mutex_destroy(&wd->mu);
    }
    weft__free(wd);
}

void weft__wd_stop(weft_sched *s)
{
    struct weft__watchdog *wd = s->wd;
    if (!wd)
        return;
    s->wd = NULL;
    /* In a child of fork() the thread does not exist (and may have held
     * the mutex when the parent forked): only the memory is freed. */
    int mine = wd->pid == getpid();
    if (mine) {
        pthread_mutex_lock(&wd->mu);
        wd->stop = 1;
        pthread_cond_signal(&wd->cv);
        pthread_mutex_unlock(&wd->mu);
        pthread_join(wd->thread, NULL);
    }
    wd_free(wd, mine);
}

int weft__wd_configure(weft_sched *s, int64_t threshold_ns)
{
    struct weft__watchdog *wd = s->wd;
    if (threshold_ns == 0) {
        weft__wd_stop(s);
        return 0;
    }
    if (wd && wd->pid == getpid()) {
        pthread_mutex_lock(&wd->mu);
        atomic_store_explicit(&wd->threshold, threshold_ns,
                              memory_order_relaxed);
        pthread_cond_signal(&wd->cv); /* sample at the new pace */
        pthread_mutex_unlock(&wd->mu);
        return 0;
    }
    weft__wd_stop(s); /* one inherited through fork(), if any */
    wd = weft__calloc(1, sizeof *wd);
    if (!wd)
        return -ENOMEM;
    atomic_init(&wd->seq, 0);
    atomic_init(&wd->id, 0);
    for (int i = 0; i < NAME_WORDS; i++)
        atomic_init(&wd->name[i], 0);
    atomic_init(&wd->threshold, threshold_ns);
    pthread_condattr_t ca;
    int r = pthread_condattr_init(&ca);
    if (r == 0) {
        r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (r == 0)
            r = pthread_cond_init(&wd->cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (r != 0) {
        weft__free(wd);
        return -r;
    }
    pthread_mutex_init(&wd->mu, NULL);
    wd->fn = s->wd_fn;
    wd->arg = s->wd_arg;
    wd->sched = s;
    wd->pid = getpid();
    /* Who runs now: the caller, if it is a coroutine of s. */
    weft__wd_switch(wd, s->current);
    /* The thread takes no signals: a process-directed signal must go to
     * the program's threads (weft_signal_wait() relies on that). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&wd->thread, NULL, wd_main, wd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        wd_free(wd, 1);
        return r == EAGAIN || r == EPERM ? -EAGAIN : -r;
    }
#if defined(__GLIBC__)
    (void)pthread_setname_np(wd->thread, "weft-watchdog");
#endif
    s->wd = wd;
    return 0;
}

int weft_sched_set_watchdog(weft_sched *s, int64_t threshold_ns)
{
    s = weft__sched_arg(s);
    if (!s || threshold_ns < 0)
        return -EINVAL;
    return weft__wd_configure(s, threshold_ns);
}

int weft_sched_set_watchdog_fn(weft_sched *s, weft_watchdog_fn fn, void *arg)
{
    s = weft__sched_arg(s);
    if (!s)
        return -EINVAL;
    s->wd_fn = fn;
    s->wd_arg = arg;
    if (s->wd) {
        pthread_mutex_lock(&s->wd->mu);
        s->wd->fn = fn;
        s->wd->arg = arg;
        pthread_mutex_unlock(&s->wd->mu);
    }
    return 0;
}
