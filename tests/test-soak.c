/*
 * test-soak.c - bounded soak tests: thousands of coroutines churning
 * through spawn, sleep, end, raise and join; loopback connections opening,
 * echoing and closing (cleanly or with a reset); many threads ringing one
 * doorbell.  Each runs in rounds for WEFT_SOAK_SECONDS (default 3; `make
 * soak` sets 60) and checks after every round that no wake-up was lost
 * and that the library's allocations, the open descriptors and the
 * resident memory come back to where they were after the warm-up rounds,
 * and at the end to where they were before the scheduler existed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "util.h"

#if defined(WEFT_HAVE_VALGRIND)
#include <valgrind/valgrind.h>
#endif

/* Test hook of src/alloc.c. */
long weft__test_live_allocs(void);

/* ----------------------------------------------------------------------
 * Budget and resource counts
 * ---------------------------------------------------------------------- */

/* How long each case keeps going, in ns of real time. */
static int64_t soak_ns(void)
{
    const char *e = getenv("WEFT_SOAK_SECONDS");
    double secs = e && *e ? strtod(e, NULL) : 3.0;
    if (secs < 0.1)
        secs = 0.1;
    return (int64_t)(secs * 1e9);
}

static int64_t real_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    ASSERT_NOT_NULL(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n; /* ".", ".." and the directory's own fd included: constant */
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

/* Under a sanitizer or Valgrind: memory is theirs to manage, and
 * everything is many times slower. */
static int instrumented(void)
{
#if defined(SANITIZED)
    return 1;
#else
#if defined(WEFT_HAVE_VALGRIND)
    if (RUNNING_ON_VALGRIND)
        return 1;
#endif
    return 0;
#endif
}

/* Resident set in KiB, or -1 where it means nothing (sanitizers keep
 * freed memory in quarantine, Valgrind has its own, and under qemu-user
 * it is mostly the emulator's translation cache). */
static long rss_kib(void)
{
#if defined(WEFT_TEST_EMULATOR)
    return -1;
#endif
    if (instrumented())
        return -1;
    long pages = -1, resident = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    ASSERT_NOT_NULL(f);
    ASSERT_EQ(fscanf(f, "%ld %ld", &pages, &resident), 2);
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* What a round must come back to. */
struct level {
    long allocs;
    int fds;
    long rss;
};

static struct level level_now(void)
{
    struct level l = {weft__test_live_allocs(), open_fds(), rss_kib()};
    return l;
}

/* Rounds after the warm-up ones hold no more than the warm-up left: no
 * allocation kept (beyond a little growth of arrays sized by the peak),
 * no descriptor, no more than 16 MiB of memory (one round that leaked its
 * stacks would keep 100 MiB and more). */
static void check_level(const struct level *warm, int round)
{
    struct level l = level_now();
    if (l.allocs > warm->allocs + 16)
        FAIL("round %d: %ld library allocations live, %ld after warm-up",
             round, l.allocs, warm->allocs);
    if (l.fds != warm->fds)
        FAIL("round %d: %d fds open, %d after warm-up", round, l.fds,
             warm->fds);
    if (l.rss >= 0 && warm->rss >= 0 && l.rss > warm->rss + 16 * 1024)
        FAIL("round %d: resident %ld KiB, %ld KiB after warm-up", round,
             l.rss, warm->rss);
}

#define WARM_ROUNDS 2

/* A scheduler for a case, and the level before it existed. */
static weft_sched *soak_start(struct level *base)
{
    weft_sched *s;
    *base = level_now();
    ASSERT_OK(weft_sched_new(NULL, &s));
    return s;
}

/* Free it: everything is back to that level. */
static void soak_finish(weft_sched *s, const struct level *base)
{
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), base->allocs);
    ASSERT_EQ(open_fds(), base->fds);
}

/* ======================================================================
 * Coroutine churn
 * ====================================================================== */

/* Per round; a multiple of the 6 kinds.  A quarter of that under a
 * sanitizer or Valgrind, where each spawn costs far more. */
#define WORKERS 2400
#define FAR WEFT_SEC(10) /* a wait this long means a lost wake-up */

struct churn {
    weft_sem *tokens;   /* released by posters, taken by waiters */
    unsigned seed;
    long started, finished, sleeps, tokens_taken, children;
};

static unsigned rnd(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 16) & 0x7fff;
}

enum { K_SLEEPER, K_PARENT, K_ENDED, K_RAISED, K_WAITER, K_POSTER, K_KINDS };

struct worker {
    struct churn *c;
    int kind;
    unsigned delay_us;
};

static int sleep_checked(struct churn *c, int64_t ns)
{
    int64_t due = weft_now(NULL) + ns;
    int r = weft_sleep_for(ns);
    if (r == 0) {
        ASSERT_GE(weft_now(NULL), due); /* never early */
        c->sleeps++;
    }
    return r;
}

static int child_fn(void *arg)
{
    struct worker *w = arg;
    ASSERT_OK(sleep_checked(w->c, (int64_t)w->delay_us * 1000));
    w->c->children++;
    return 7;
}

static int worker_fn(void *arg)
{
    struct worker *w = arg;
    struct churn *c = w->c;
    int64_t delay = (int64_t)w->delay_us * 1000;
    weft_coro *co;
    int st;
    c->started++;
    switch (w->kind) {
    case K_SLEEPER:
        ASSERT_OK(sleep_checked(c, delay));
        ASSERT_OK(weft_yield());
        break;
    case K_PARENT:
        ASSERT_OK(weft_spawn(NULL, child_fn, w, NULL, &co));
        ASSERT_OK(weft_join(co, &st));
        ASSERT_EQ(st, 7);
        break;
    case K_ENDED:
        ASSERT_ERR(sleep_checked(c, FAR), -ECANCELED);
        ASSERT_ERR(weft_yield(), -ECANCELED); /* and stays ended */
        break;
    case K_RAISED:
        ASSERT_ERR(sleep_checked(c, FAR), -EIO);
        ASSERT_OK(sleep_checked(c, delay)); /* delivered once */
        break;
    case K_WAITER:
        ASSERT_OK(weft_sem_acquire(c->tokens, weft_now(NULL) + FAR));
        c->tokens_taken++;
        break;
    case K_POSTER:
        ASSERT_OK(sleep_checked(c, delay));
        ASSERT_OK(weft_sem_release(c->tokens));
        break;
    }
    c->finished++;
    return 0;
}

/* One round: n coroutines at once, ended and raised into while they
 * sleep (some ended before they ever ran), all joined. */
static void churn_round(struct churn *c, int n, struct worker *w,
                        weft_coro **co)
{
    long started = c->started, finished = c->finished;
    long taken = c->tokens_taken, children = c->children;
    int never_ran = 0;
    for (int i = 0; i < n; i++) {
        w[i].c = c;
        w[i].kind = i % K_KINDS;
        w[i].delay_us = rnd(&c->seed) % 2000;
        ASSERT_OK(weft_spawn(NULL, worker_fn, &w[i], NULL, &co[i]));
        /* Every 97th victim is ended before it runs. */
        if (w[i].kind == K_ENDED && i % 97 == K_ENDED) {
            ASSERT_OK(weft_end(co[i]));
            never_ran++;
        }
    }
    ASSERT_OK(weft_sleep_for(WEFT_USEC(100))); /* the rest start */
    for (int i = 0; i < n; i++) {
        if (w[i].kind == K_ENDED)
            ASSERT_OK(weft_end(co[i]));
        else if (w[i].kind == K_RAISED)
            ASSERT_OK(weft_raise(co[i], -EIO));
    }
    for (int i = 0; i < n; i++) {
        int st = 1;
        ASSERT_OK(weft_join(co[i], &st));
        if (w[i].kind == K_ENDED && i % 97 == K_ENDED)
            ASSERT_ERR(st, -ECANCELED);
        else
            ASSERT_OK(st);
    }
    ASSERT_EQ(c->started - started, n - never_ran);
    ASSERT_EQ(c->finished - finished, n - never_ran);
    ASSERT_EQ(c->tokens_taken - taken, n / K_KINDS);
    ASSERT_EQ(c->children - children, n / K_KINDS);
    ASSERT_EQ(weft_sem_value(c->tokens), 0);
}

static int churn_driver(void *arg)
{
    struct churn *c = arg;
    static struct worker w[WORKERS];
    static weft_coro *co[WORKERS];
    struct level warm = {0, 0, 0};
    int64_t end = real_now() + soak_ns();
    int round = 0;
    while (round < WARM_ROUNDS + 1 || real_now() < end) {
        churn_round(c, instrumented() ? WORKERS / 4 : WORKERS, w, co);
        if (++round == WARM_ROUNDS)
            warm = level_now();
        else if (round > WARM_ROUNDS)
            check_level(&warm, round);
    }
    if (getenv("WEFT_TEST_VERBOSE"))
        printf("churn: %d rounds, %ld coroutines, %ld sleeps\n", round,
               c->started + c->children, c->sleeps);
    return 0;
}

TEST(thousands_of_coroutines_churn_without_leaks_or_lost_wakeups)
{
    struct level base;
    weft_sched *s = soak_start(&base);
    struct churn c;
    memset(&c, 0, sizeof c);
    c.seed = 12345;
    ASSERT_OK(weft_sem_new(s, 0, &c.tokens));
    weft_coro *d = go(s, churn_driver, &c);
    ASSERT_EQ(weft_run(s), 0);
    reap(d);
    ASSERT_OK(weft_sem_free(c.tokens));
    soak_finish(s, &base);
}

/* ======================================================================
 * Connection churn on loopback
 * ====================================================================== */

#define CLIENTS 48       /* at once */
#define CONNS_PER 4      /* each, one after the other, per round */
#define MSG_MAX 8192

struct net {
    int listener, port;
    long accepted, served, echoed, resets, handlers;
    unsigned seed;
};

static int handler_fn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    struct net *n = weft_coro_data(weft_self());
    char buf[4096];
    for (;;) {
        ssize_t r = weft_read(fd, buf, sizeof buf, FAR);
        if (r == 0 || r == -ECONNRESET)
            break; /* the client went, cleanly or not */
        ASSERT_GT(r, 0);
        ssize_t w = weft_write_all(fd, buf, (size_t)r, FAR, 0, NULL);
        if (w == -EPIPE || w == -ECONNRESET)
            break;
        ASSERT_EQ(w, r);
    }
    ASSERT_OK(weft_fd_close(fd));
    n->served++;
    n->handlers--;
    return 0;
}

static int acceptor_fn(void *arg)
{
    struct net *n = arg;
    for (;;) {
        int fd = weft_accept(n->listener, NULL, NULL, WEFT_TIMEOUT_NONE);
        if (fd == -EBADF)
            return 0; /* the listener was closed: done */
        ASSERT_GE(fd, 0);
        n->accepted++;
        n->handlers++;
        struct weft_spawn_opts o = {0};
        o.data = n;
        ASSERT_OK(weft_spawn(NULL, handler_fn, (void *)(intptr_t)fd, &o,
                             NULL));
    }
}

enum { C_CLEAN, C_RESET, C_NO_READ, C_MODES };

static int client_fn(void *arg)
{
    struct net *n = arg;
    static char out[MSG_MAX];
    char in[MSG_MAX];
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = (char)(i * 11 + 3);
    for (int k = 0; k < CONNS_PER; k++) {
        size_t len = 1 + rnd(&n->seed) % MSG_MAX;
        int mode = (int)(rnd(&n->seed) % C_MODES);
        int fd = weft_dial_tcp("127.0.0.1", n->port, 0, FAR);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(weft_write_all(fd, out, len, FAR, 0, NULL), (ssize_t)len);
        if (mode != C_NO_READ) {
            ASSERT_EQ(weft_read_exact(fd, in, len, FAR, 0, NULL),
                      (ssize_t)len);
            ASSERT_EQ(memcmp(in, out, len), 0);
            n->echoed++;
        }
        if (mode == C_RESET) {
            struct linger lg = {1, 0};
            ASSERT_OK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
            n->resets++;
        }
        ASSERT_OK(weft_fd_close(fd));
    }
    return 0;
}

static int net_driver(void *arg)
{
    struct net *n = arg;
    static weft_coro *cl[CLIENTS];
    struct level warm = {0, 0, 0};
    int64_t end = real_now() + soak_ns();
    int round = 0;
    weft_coro *acc = go(NULL, acceptor_fn, n);
    while (round < WARM_ROUNDS + 1 || real_now() < end) {
        long served = n->served;
        for (int i = 0; i < CLIENTS; i++)
            cl[i] = go(NULL, client_fn, n);
        for (int i = 0; i < CLIENTS; i++)
            ASSERT_OK(weft_join(cl[i], NULL));
        /* Every connection's handler sees its end and closes: a handler
         * still waiting after FAR lost its wake-up. */
        int64_t until = weft_now(NULL) + FAR;
        while (n->served - served < CLIENTS * CONNS_PER &&
               weft_now(NULL) < until)
            ASSERT_OK(weft_sleep_for(WEFT_USEC(500)));
        ASSERT_EQ(n->served - served, CLIENTS * CONNS_PER);
        ASSERT_EQ(n->handlers, 0);
        if (++round == WARM_ROUNDS)
            warm = level_now();
        else if (round > WARM_ROUNDS)
            check_level(&warm, round);
    }
    ASSERT_EQ(n->accepted, (long)round * CLIENTS * CONNS_PER);
    ASSERT_OK(weft_fd_close(n->listener)); /* the acceptor gets -EBADF */
    ASSERT_OK(weft_join(acc, NULL));
    if (getenv("WEFT_TEST_VERBOSE"))
        printf("net: %d rounds, %ld connections, %ld echoed, %ld resets\n",
               round, n->accepted, n->echoed, n->resets);
    return 0;
}

TEST(loopback_connections_open_and_close_without_leaks)
{
    struct level base;
    weft_sched *s = soak_start(&base);
    struct net n;
    memset(&n, 0, sizeof n);
    n.seed = 777;
    n.listener = weft_listen_tcp("127.0.0.1", 0, 128, 0, -1);
    ASSERT_GE(n.listener, 0);
    n.port = weft_sock_port(n.listener);
    ASSERT_GT(n.port, 0);
    weft_coro *d = go(s, net_driver, &n);
    ASSERT_EQ(weft_run(s), 0);
    reap(d);
    soak_finish(s, &base);
}

/* ======================================================================
 * Doorbell stress: threads ring while the loop runs.  Each ring takes a
 * ticket just before weft_doorbell_trigger(); each run takes one when its
 * processor starts, which is after the run collected the rings it
 * answers, and publishes it when the processor returns.  So a ring is
 * answered either by a run whose processor starts after it, or (rung
 * after the collection) by the next run, which must follow: a thread that
 * rang waits until a completed run holds a later ticket than its ring's,
 * and one that never comes (a lost ring) fails the case after FAR.  (A
 * run that starts between a ring's ticket and its trigger also counts:
 * the check cannot tell that window apart.)  The on_run hook cannot
 * take the run's ticket: rings made between it and the collection are
 * answered by that run.  The threads ring in step, so that the last ring
 * of a step has nobody's next ring to hide its loss; half the rings are
 * bursts that are not waited for, to be merged.
 * ====================================================================== */

#define RINGERS 8

static atomic_long ticket;          /* the sequence of rings and runs */
static atomic_long run_ticket;      /* ticket of the run in progress
                                       (written and read on the loop) */
static atomic_long done_ticket;     /* ticket of the last completed run */
static atomic_long rings, ringers_left;
static atomic_int ring_error;
static int64_t ring_end;
static pthread_barrier_t ring_step;
/* Written by one thread between two waits on ring_step: */
static int ring_stop;   /* the last step is done */
static long ring_base;  /* processor starts before this step's kick */
static atomic_long proc_starts; /* processor calls begun */
static atomic_int slow_runs;    /* processors take 200 us */

/* Ring once; returns the ring's ticket. */
static long ring(weft_doorbell *db)
{
    long mine = atomic_fetch_add(&ticket, 1) + 1;
    if (weft_doorbell_trigger(db) < 0)
        atomic_store(&ring_error, 1);
    atomic_fetch_add(&rings, 1);
    return mine;
}

static void *ringer(void *arg)
{
    weft_doorbell *db = arg;
    struct timespec nap = {0, 20000};
    for (long n = 0;; n++) {
        /* In step: the threads ring together, then all wait, so a ring
         * lost is not rescued by another thread's next one. */
        int serial = pthread_barrier_wait(&ring_step) ==
                     PTHREAD_BARRIER_SERIAL_THREAD;
        if (serial) {
            ring_stop = (n >= 100 && real_now() >= ring_end) ||
                        atomic_load(&ring_error) != 0;
            ring_base = atomic_load(&proc_starts);
            atomic_store(&slow_runs, n % 2);
        }
        pthread_barrier_wait(&ring_step);
        if (ring_stop)
            break;
        if (n % 2) {
            /* Every other step rings during a run: one thread starts a
             * (slow) run, the others ring once its processor is on. */
            if (serial)
                (void)ring(db);
            int64_t give_up = real_now() + FAR;
            while (atomic_load(&proc_starts) <= ring_base &&
                   real_now() < give_up)
                sched_yield();
        }
        (void)ring(db); /* a burst: the next ring follows at once */
        long mine = ring(db);
        int64_t give_up = real_now() + FAR;
        while (atomic_load(&done_ticket) <= mine) {
            if (real_now() > give_up) {
                atomic_store(&ring_error, 2); /* lost */
                break;
            }
            nanosleep(&nap, NULL);
        }
    }
    atomic_fetch_sub(&ringers_left, 1);
    return NULL;
}

static int stress_proc(weft_doorbell *db, void *arg, int64_t *wake_at)
{
    long *calls = arg;
    (void)db;
    (void)wake_at;
    atomic_store(&run_ticket, atomic_fetch_add(&ticket, 1) + 1);
    atomic_fetch_add(&proc_starts, 1);
    ++*calls;
    if (atomic_load(&slow_runs))
        ASSERT_OK(weft_sleep_for(WEFT_USEC(200))); /* rings land now */
    else if (*calls % 2)
        ASSERT_OK(weft_yield());
    atomic_store(&done_ticket, atomic_load(&run_ticket));
    return 0;
}

static int stress_watch(void *arg)
{
    weft_doorbell *db = arg;
    while (atomic_load(&ringers_left) > 0 && atomic_load(&ring_error) == 0)
        ASSERT_OK(weft_sleep_for(WEFT_MSEC(1)));
    ASSERT_OK(weft_doorbell_stop(db));
    return 0;
}

TEST(many_threads_ring_a_doorbell_and_every_ring_is_answered)
{
    struct level base;
    weft_sched *s = soak_start(&base);
    struct weft_doorbell_opts o = {0};
    weft_doorbell *db;
    long calls = 0;
    ASSERT_OK(weft_doorbell_new(s, &o, &db));
    ASSERT_OK(weft_doorbell_add(db, stress_proc, &calls));
    atomic_store(&ticket, 0);
    atomic_store(&run_ticket, 0);
    atomic_store(&done_ticket, 0);
    atomic_store(&rings, 0);
    atomic_store(&ring_error, 0);
    atomic_store(&proc_starts, 0);
    atomic_store(&slow_runs, 0);
    atomic_store(&ringers_left, RINGERS);
    ring_end = real_now() + soak_ns();
    ASSERT_OK(pthread_barrier_init(&ring_step, NULL, RINGERS));
    ASSERT_OK(weft_doorbell_start(db));
    weft_coro *w = go(s, stress_watch, db);
    pthread_t th[RINGERS];
    for (int i = 0; i < RINGERS; i++)
        ASSERT_OK(pthread_create(&th[i], NULL, ringer, db));
    ASSERT_EQ(weft_run(s), 0);
    for (int i = 0; i < RINGERS; i++)
        ASSERT_OK(pthread_join(th[i], NULL));
    ASSERT_OK(pthread_barrier_destroy(&ring_step));
    reap(w);
    int err = atomic_load(&ring_error);
    if (err)
        FAIL(err == 2 ? "a ring was not answered by a run within 10 s"
                      : "weft_doorbell_trigger() failed");
    ASSERT_EQ(calls, weft_doorbell_runs(db));
    ASSERT_GE(atomic_load(&rings), RINGERS * 200);
    ASSERT_LE(calls, atomic_load(&rings) + 1); /* + the start's run */
    if (getenv("WEFT_TEST_VERBOSE"))
        printf("doorbell: %ld rings, %ld runs\n", atomic_load(&rings), calls);
    ASSERT_OK(weft_doorbell_free(db));
    soak_finish(s, &base);
}
