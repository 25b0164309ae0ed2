/*
 * test-faults.c - fault injection: a walk that fails each allocation of a
 * scenario touching every module in turn, and the faults a real system
 * brings to I/O (a signal storm over every wait, short reads and writes,
 * a peer that resets the connection mid-stream), each on every backend.
 * Stack mapping failures and EMFILE on accept have their cases in
 * test-stack.c and test-net.c.
 */
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "backends.h"
#include "test.h"
#include "util.h"

/* Test hooks of src/alloc.c. */
void weft__test_fail_alloc(long n, int sticky);
long weft__test_live_allocs(void);
long weft__test_alloc_count(void);

/* Every case runs on each backend available here (io_uring included). */
static int backends[3];
#define NB weft_test_backends(backends)

/* A scheduler on @p backend (monotonic clock), reporting EINTR or not. */
static weft_sched *sched_on(int backend, int eintr)
{
    struct weft_sched_opts o = {0};
    weft_sched *s;
    o.backend = backend;
    o.eintr = eintr;
    ASSERT_OK(weft_sched_new(&o, &s));
    return s;
}

/* ======================================================================
 * The allocation-failure walk
 *
 * One scenario uses the scheduler (spawn now, later, recurring; sleep,
 * raise, end, join; hooks and failure handlers), a callback timer,
 * futures (then, all), every synchronisation object, a channel, fd waits,
 * multi-step reads and writes, an I/O watcher, a cooperator and a
 * doorbell loop.  Every call either does its job or returns -ENOMEM; the
 * scenario copes with each -ENOMEM (skipping what depended on it) and
 * gives every wait a deadline, so a wake-up lost to a failure shows up as
 * -ETIMEDOUT, which is accepted only once a failure has happened.  The
 * walk counts the allocations of one clean run, then fails the first,
 * the second ... (once, then from there on), and checks each time that
 * the run ends (no deadlock, no crash), the scheduler still works, and
 * the library holds nothing afterwards.
 * ====================================================================== */

/* -ENOMEM results (and logged -ENOMEM) seen in the current run. */
static int nomem;

static void check_fail(int line, const char *expr, intmax_t r,
                       const char *want)
{
    weft_test_fail_(__FILE__, line, "%s returned %jd (%s); want %s", expr, r,
                    weft_err_name((int)r), want);
}

/* expr returns want (true) or -ENOMEM (false, counted); nothing else. */
#define OKM(expr, want) okm_((intmax_t)(expr), (intmax_t)(want), #expr, __LINE__)
static int okm_(intmax_t r, intmax_t want, const char *expr, int line)
{
    if (r == want)
        return 1;
    if (r == -ENOMEM) {
        nomem++;
        return 0;
    }
    check_fail(line, expr, r, "the result or -ENOMEM");
    return 0;
}

/* A wait with a deadline: 0 (true); -ENOMEM (its deadline could not be
 * armed); -ETIMEDOUT only if an earlier failure may have cost it its
 * wake-up. */
#define WAITED(expr) waited_((intmax_t)(expr), #expr, __LINE__)
static int waited_(intmax_t r, const char *expr, int line)
{
    if (r == 0)
        return 1;
    if (r == -ENOMEM) {
        nomem++;
        return 0;
    }
    if (r == -ETIMEDOUT && nomem)
        return 0;
    check_fail(line, expr, r, "0, -ENOMEM, or -ETIMEDOUT after a failure");
    return 0;
}

#define NKIDS 16
#define RW_BYTES (64 * 1024)

struct scn {
    weft_sched *s;
    int64_t dl; /* deadline of every wait */
    weft_future *f1, *f2;
    weft_event *ev;
    weft_mutex *mu;
    weft_cond *cv;
    weft_sem *sem;
    weft_wg *wg;
    weft_chan *ch;
    int flag; /* under mu, announced on cv */
    int pipe[2], wpipe[2], sv[2];
    char *wbuf, *rbuf;
    weft_coro *kids[NKIDS];
    int nkids;
    /* what happened */
    int timer_fired, then_ran, watch_fired, proc_runs, recur_runs;
    int delayed_ran, sent, recvd, hooks, boss_done;
};

static void on_err(weft_coro *co, int status, void *arg)
{
    (void)co;
    (void)arg;
    FAIL("a coroutine failed: %s", weft_err_name(status));
}

static void hook(weft_coro *from, weft_coro *to, void *arg)
{
    (void)from;
    (void)to;
    ++((struct scn *)arg)->hooks;
}

static void timer_cb(weft_timer *t, void *arg)
{
    struct scn *sc = arg;
    (void)t;
    sc->timer_fired++;
    if (sc->f1)
        OKM(weft_future_resolve(sc->f1, sc), 0);
}

static void then_cb(weft_future *f, void *arg)
{
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_RESOLVED);
    ++((struct scn *)arg)->then_ran;
}

static void watch_cb(weft_io *w, int fd, uint32_t revents, void *arg)
{
    char c;
    ASSERT(revents & WEFT_IO_READ);
    ASSERT_EQ(read(fd, &c, 1), 1);
    ++((struct scn *)arg)->watch_fired;
    ASSERT_OK(weft_io_stop(w));
}

static int kid_waiter(void *arg)
{
    struct scn *sc = arg;
    if (WAITED(weft_event_wait(sc->ev, sc->dl)) && sc->mu && sc->cv &&
        WAITED(weft_mutex_lock(sc->mu, sc->dl))) {
        while (!sc->flag && WAITED(weft_cond_wait(sc->cv, sc->mu, sc->dl)))
            ;
        ASSERT_OK(weft_mutex_unlock(sc->mu));
    }
    ASSERT_OK(weft_wg_done(sc->wg));
    return 0;
}

static int kid_producer(void *arg)
{
    struct scn *sc = arg;
    static int items[5];
    for (int i = 0; i < 5; i++) {
        if (!WAITED(weft_chan_send(sc->ch, &items[i], sc->dl)))
            break;
        sc->sent++;
    }
    ASSERT_OK(weft_chan_close(sc->ch));
    return 0;
}

static int kid_consumer(void *arg)
{
    struct scn *sc = arg;
    for (;;) {
        void *item;
        int r = weft_chan_recv(sc->ch, &item, sc->dl);
        if (r == -EPIPE)
            break;
        if (!WAITED(r))
            break;
        sc->recvd++;
    }
    return 0;
}

static int kid_sem(void *arg)
{
    struct scn *sc = arg;
    WAITED(weft_sem_acquire(sc->sem, sc->dl));
    return 0;
}

/* Ended by the boss while it sleeps. */
static int kid_ended(void *arg)
{
    (void)arg;
    int r = weft_sleep_for(WEFT_SEC(100));
    if (r != -ENOMEM)
        ASSERT_ERR(r, -ECANCELED);
    return 0;
}

/* The boss raises -EIO into it a little later (if it can). */
static int kid_raised(void *arg)
{
    (void)arg;
    int r = weft_sleep_for(WEFT_SEC(2));
    if (r != 0 || !nomem) /* 0: the raise could not be armed */
        OKM(r, -EIO);
    return 0;
}

static int kid_fd(void *arg)
{
    struct scn *sc = arg;
    int r = weft_fd_wait(sc->pipe[0], WEFT_IO_READ, sc->dl);
    if (r > 0)
        ASSERT(r & WEFT_IO_READ);
    else
        WAITED(r);
    return 0;
}

static int kid_writer(void *arg)
{
    struct scn *sc = arg;
    size_t done = 0;
    ssize_t r = weft_write_all(sc->sv[0], sc->wbuf, RW_BYTES, WEFT_SEC(10),
                               0, &done);
    if (r != RW_BYTES)
        WAITED(r);
    ASSERT_OK(shutdown(sc->sv[0], SHUT_WR));
    return 0;
}

static int kid_reader(void *arg)
{
    struct scn *sc = arg;
    size_t done = 0;
    ssize_t r = weft_read_exact(sc->sv[1], sc->rbuf, RW_BYTES, WEFT_SEC(10),
                                0, &done);
    if (r == RW_BYTES)
        ASSERT_EQ(memcmp(sc->rbuf, sc->wbuf, RW_BYTES), 0);
    else if (r != -EPIPE || !nomem) /* the writer gave up: end of file */
        WAITED(r);
    return 0;
}

static int kid_delayed(void *arg)
{
    ++((struct scn *)arg)->delayed_ran;
    return 0;
}

static int kid_recur(void *arg)
{
    ++((struct scn *)arg)->recur_runs;
    return 0;
}

static weft_coro *kid(struct scn *sc, weft_fn fn)
{
    weft_coro *co = NULL;
    if (!OKM(weft_spawn(sc->s, fn, sc, NULL, &co), 0))
        return NULL;
    ASSERT_LT(sc->nkids, NKIDS);
    sc->kids[sc->nkids++] = co;
    return co;
}

static int coop_step(void *state, weft_future **wait)
{
    int *n = state;
    (void)wait;
    return ++*n >= 3 ? WEFT_COOP_DONE : WEFT_COOP_CONTINUE;
}

static int db_proc(weft_doorbell *db, void *arg, int64_t *wake_at)
{
    (void)db;
    (void)wake_at;
    ++((struct scn *)arg)->proc_runs;
    return 0;
}

static void db_log(weft_doorbell *db, const struct weft_doorbell_log *rec,
                   void *arg)
{
    (void)db;
    (void)arg;
    /* The only thing that may go wrong here is memory. */
    if (rec->err != -ENOMEM)
        FAIL("doorbell log: %s", rec->msg);
    nomem++;
}

/* Sleep in steps of 1 ms until *flag or the deadline. */
static void await_flag(struct scn *sc, const int *flag)
{
    while (!*flag && weft_now(NULL) < sc->dl)
        if (!OKM(weft_sleep_for(WEFT_MSEC(1)), 0))
            return;
}

static void boss_coop(struct scn *sc)
{
    weft_coop *c;
    int steps = 0;
    if (!OKM(weft_coop_new(sc->s, NULL, &c), 0))
        return;
    weft_future *done;
    if (OKM(weft_coop_coiterate(c, coop_step, &steps, &done), 0)) {
        int r = weft_future_wait(done, sc->dl, NULL);
        if (WAITED(r))
            ASSERT_EQ(steps, 3);
        ASSERT_OK(weft_future_release(done));
    }
    ASSERT_OK(weft_coop_free(c));
}

static void boss_doorbell(struct scn *sc)
{
    struct weft_doorbell_opts o = {0};
    weft_doorbell *db;
    o.log = db_log;
    if (!OKM(weft_doorbell_new(sc->s, &o, &db), 0))
        return;
    if (OKM(weft_doorbell_add(db, db_proc, sc), 0) &&
        OKM(weft_doorbell_start(db), 0)) {
        int r = weft_doorbell_trigger(db);
        ASSERT(r == 0 || r == 1);
        await_flag(sc, &sc->proc_runs);
        ASSERT(sc->proc_runs || nomem);
        ASSERT_OK(weft_doorbell_stop(db));
        while (weft_doorbell_is_quiet(db) != 1) {
            int sr = weft_sleep_for(WEFT_MSEC(1));
            if (sr != 0) {
                OKM(sr, 0);
                ASSERT_OK(weft_yield());
            }
        }
    }
    ASSERT_OK(weft_doorbell_free(db));
}

static void boss_futures(struct scn *sc, weft_timer *tm)
{
    weft_future *all = NULL;
    if (!OKM(weft_future_new(sc->s, &sc->f1), 0) ||
        !OKM(weft_future_new(sc->s, &sc->f2), 0))
        goto out;
    OKM(weft_future_then(sc->f1, then_cb, sc), 0);
    weft_future *in[2] = {sc->f1, sc->f2};
    if (!OKM(weft_future_all(sc->s, in, 2, &all), 0))
        goto out;
    ASSERT_OK(weft_future_resolve(sc->f2, NULL));
    if (tm && OKM(weft_timer_start(tm, WEFT_MSEC(3), 0), 0)) {
        if (WAITED(weft_future_wait(all, sc->dl, NULL)))
            ASSERT(sc->then_ran == 1 || nomem);
    }
out:
    if (all)
        ASSERT_OK(weft_future_release(all));
    if (sc->f1)
        ASSERT_OK(weft_future_release(sc->f1));
    if (sc->f2)
        ASSERT_OK(weft_future_release(sc->f2));
    sc->f1 = sc->f2 = NULL;
}

static int boss(void *arg)
{
    struct scn *sc = arg;
    weft_sched *s = sc->s;
    weft_timer *tm = NULL;
    weft_io *watch = NULL;
    int hooked = OKM(weft_hook_add(s, hook, sc), 0);
    OKM(weft_on_error_global(s, on_err, NULL), 0);
    OKM(weft_coro_set_name(weft_self(), "boss"), 0);
    OKM(weft_timer_new(s, timer_cb, sc, &tm), 0);

    /* Synchronisation objects; a kid needs the ones it uses. */
    if (OKM(weft_wg_new(s, &sc->wg), 0) && OKM(weft_event_new(s, &sc->ev), 0)) {
        OKM(weft_mutex_new(s, &sc->mu), 0);
        OKM(weft_cond_new(s, &sc->cv), 0);
        ASSERT_OK(weft_wg_add(sc->wg, 1));
        if (!kid(sc, kid_waiter))
            ASSERT_OK(weft_wg_done(sc->wg));
    }
    if (OKM(weft_chan_new(s, 1, &sc->ch), 0)) {
        if (!kid(sc, kid_producer))
            ASSERT_OK(weft_chan_close(sc->ch));
        kid(sc, kid_consumer);
    }
    if (OKM(weft_sem_new(s, 0, &sc->sem), 0) && kid(sc, kid_sem))
        ASSERT_OK(weft_sem_release(sc->sem));
    weft_coro *ended = kid(sc, kid_ended);
    weft_coro *raised = kid(sc, kid_raised);
    kid(sc, kid_fd);
    kid(sc, kid_writer);
    kid(sc, kid_reader);
    weft_coro *co;
    if (OKM(weft_spawn_in(s, WEFT_MSEC(2), kid_delayed, sc, NULL, &co), 0))
        sc->kids[sc->nkids++] = co;
    if (OKM(weft_spawn_recurring(s, WEFT_MSEC(1), 3, -1, kid_recur, sc, NULL,
                                 &co), 0))
        sc->kids[sc->nkids++] = co;
    if (OKM(weft_io_new(s, sc->wpipe[0], WEFT_IO_READ, watch_cb, sc, &watch),
            0))
        ASSERT_EQ(write(sc->wpipe[1], "w", 1), 1);

    /* Let every kid start and block. */
    OKM(weft_sleep_for(WEFT_MSEC(1)), 0);
    if (ended)
        ASSERT_OK(weft_end(ended));
    if (raised) {
        int r = weft_raise_in(raised, -EIO, WEFT_MSEC(1));
        if (r == -ESRCH) /* it finished: its sleep failed */
            ASSERT(nomem);
        else
            OKM(r, 0);
    }
    ASSERT_EQ(write(sc->pipe[1], "p", 1), 1);
    if (sc->ev)
        ASSERT_GE(weft_event_set(sc->ev), 0);
    if (sc->mu && WAITED(weft_mutex_lock(sc->mu, sc->dl))) {
        sc->flag = 1;
        if (sc->cv)
            ASSERT_GE(weft_cond_broadcast(sc->cv), 0);
        ASSERT_OK(weft_mutex_unlock(sc->mu));
    }
    boss_futures(sc, tm);
    if (watch) {
        await_flag(sc, &sc->watch_fired);
        ASSERT(sc->watch_fired || nomem);
    }
    boss_coop(sc);
    boss_doorbell(sc);
    if (sc->wg)
        WAITED(weft_wg_wait(sc->wg, sc->dl));

    for (int i = 0; i < sc->nkids; i++) {
        int st = 1;
        ASSERT_OK(weft_join(sc->kids[i], &st));
        /* One that never ran (the first sleep failed) and was ended. */
        if (!(sc->kids[i] == ended && st == -ECANCELED && nomem))
            ASSERT_OK(st);
    }
    if (sc->ch) /* each item sent was received, or is still buffered */
        ASSERT_EQ(sc->recvd + weft_chan_len(sc->ch), sc->sent);
    if (watch)
        ASSERT_OK(weft_io_free(watch));
    if (tm)
        ASSERT_OK(weft_timer_free(tm));
    if (hooked)
        ASSERT_OK(weft_hook_remove(s, hook, sc));
    if (sc->wg)
        ASSERT_OK(weft_wg_free(sc->wg));
    if (sc->ev)
        ASSERT_OK(weft_event_free(sc->ev));
    if (sc->cv)
        ASSERT_OK(weft_cond_free(sc->cv));
    if (sc->mu)
        ASSERT_OK(weft_mutex_free(sc->mu));
    if (sc->sem)
        ASSERT_OK(weft_sem_free(sc->sem));
    if (sc->ch)
        ASSERT_OK(weft_chan_free(sc->ch));
    sc->boss_done = 1;
    return 0;
}

static int noop_ran;

static int noop(void *arg)
{
    (void)arg;
    noop_ran++;
    return 0;
}

static const char *backend_name(int backend)
{
    return backend == WEFT_BACKEND_URING   ? "io_uring"
           : backend == WEFT_BACKEND_EPOLL ? "epoll"
                                           : "poll";
}

/*
 * One run of the scenario on @p backend with the allocation number
 * @p fail_at (0: the first) failing, and every later one too when
 * @p sticky; -1: none fails.  Returns the allocations it attempted.
 */
static long scenario(int backend, int guard, long fail_at, int sticky)
{
    struct scn sc;
    memset(&sc, 0, sizeof sc);
    ASSERT_OK(pipe2(sc.pipe, O_CLOEXEC));
    ASSERT_OK(pipe2(sc.wpipe, O_CLOEXEC));
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sc.sv));
    static char wbuf[RW_BYTES], rbuf[RW_BYTES];
    for (size_t i = 0; i < sizeof wbuf; i++)
        wbuf[i] = (char)(i * 7 + i / 256);
    sc.wbuf = wbuf;
    sc.rbuf = rbuf;
    nomem = 0;
    long live = weft__test_live_allocs();
    long start = weft__test_alloc_count();

    struct weft_sched_opts o = {0};
    o.clock = WEFT_CLOCK_MANUAL;
    o.backend = backend;
    o.guard = guard;
    weft__test_fail_alloc(fail_at, sticky);
    int r = weft_sched_new(&o, &sc.s);
    if (OKM(r, 0)) {
        sc.dl = WEFT_SEC(10);
        if (OKM(weft_spawn(sc.s, boss, &sc, NULL, NULL), 0)) {
            ASSERT_EQ(weft_run(sc.s), 0); /* never -EDEADLK */
            ASSERT(sc.boss_done);
        }
    }
    weft__test_fail_alloc(-1, 0);
    long used = weft__test_alloc_count() - start;
    if (fail_at < 0) {
        /* The clean run: everything happened. */
        ASSERT_EQ(nomem, 0);
        ASSERT_EQ(sc.timer_fired, 1);
        ASSERT_EQ(sc.then_ran, 1);
        ASSERT_EQ(sc.watch_fired, 1);
        ASSERT_EQ(sc.proc_runs, 1); /* the start's run took the ring */
        ASSERT_EQ(sc.recur_runs, 3);
        ASSERT_EQ(sc.delayed_ran, 1);
        ASSERT_EQ(sc.sent, 5);
        ASSERT_EQ(sc.nkids, 11);
        ASSERT_GT(sc.hooks, 20);
    } else {
        ASSERT_GT(used, fail_at); /* the failure did happen */
        /* Someone was told, except where the default guard policy
         * falls back to a canary stack when a guarded one fails. */
        if (nomem == 0 && guard != WEFT_GUARD_AUTO)
            FAIL("%s, guard %d: allocation #%ld failed and no call said "
                 "-ENOMEM", backend_name(backend), guard, fail_at);
    }
    if (sc.s) {
        /* The scheduler still works. */
        noop_ran = 0;
        ASSERT_OK(weft_spawn(sc.s, noop, NULL, NULL, NULL));
        ASSERT_EQ(weft_run(sc.s), 0);
        ASSERT_EQ(noop_ran, 1);
        ASSERT_EQ(weft_sched_count(sc.s), 0);
        ASSERT_OK(weft_sched_free(sc.s));
    }
    ASSERT_EQ(weft__test_live_allocs(), live);
    for (int i = 0; i < 2; i++) {
        close(sc.pipe[i]);
        close(sc.wpipe[i]);
        close(sc.sv[i]);
    }
    return used;
}

/* On every backend, with the stack policy @p guard (the mappings count as
 * allocations: guarded stacks, canary slabs, and under the default policy
 * the fallback from one to the other); each failure alone, then each with
 * every later allocation failing too. */
static void walk(int guard)
{
    for (int b = 0; b < NB; b++) {
        /* A first run warms up per-thread state. */
        (void)scenario(backends[b], guard, -1, 0);
        long n = scenario(backends[b], guard, -1, 0);
        ASSERT_GT(n, 30);
        for (int sticky = 0; sticky < 2; sticky++)
            for (long i = 0; i < n; i++)
                (void)scenario(backends[b], guard, i, sticky);
        if (getenv("WEFT_TEST_VERBOSE"))
            printf("%s, guard %d: %ld allocations, each failed in turn\n",
                   backend_name(backends[b]), guard, n);
    }
}

TEST(each_allocation_fails_in_turn_guard_auto)
{
    walk(WEFT_GUARD_AUTO);
}

TEST(each_allocation_fails_in_turn_guard_pages)
{
    walk(WEFT_GUARD_PAGES);
}

TEST(each_allocation_fails_in_turn_guard_canary)
{
    walk(WEFT_GUARD_CANARY);
}

/* ======================================================================
 * EINTR on every wait: a thread signals this one every 100 us while its
 * coroutines sleep, wait on fds and read and write byte by byte.  With
 * the default policy nothing shows; with eintr reporting, fd waits may
 * return -EINTR (and the multi-step calls say what they moved), the
 * others never do, and retrying loses and duplicates nothing.
 * ====================================================================== */

static atomic_long sigs;
static atomic_int storm_stop;

static void on_usr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&sigs, 1);
}

static void *storm(void *arg)
{
    pthread_t target = *(pthread_t *)arg;
    struct timespec gap = {0, 100000};
    while (!atomic_load(&storm_stop)) {
        pthread_kill(target, SIGUSR1);
        nanosleep(&gap, NULL);
    }
    return NULL;
}

#define STORM_BYTES 200

struct stormy {
    int report;
    int sv[2], p[2];
    char in[STORM_BYTES];
    long eintr; /* -EINTR results seen */
    int done;   /* coroutines finished */
};

/* -EINTR is allowed only when reported. */
static int interrupted(struct stormy *st, intmax_t r)
{
    if (r != -EINTR)
        return 0;
    ASSERT(st->report);
    st->eintr++;
    return 1;
}

static int storm_sleeper(void *arg)
{
    struct stormy *st = arg;
    /* Sleeps are not fd waits: never interrupted.  Keep going until
     * plenty of signals have landed. */
    int64_t end = weft_now(NULL) + WEFT_SEC(20);
    while (atomic_load(&sigs) < 200 && weft_now(NULL) < end)
        ASSERT_OK(weft_sleep_for(WEFT_USEC(500)));
    ASSERT_GE(atomic_load(&sigs), 200);
    st->done++;
    return 0;
}

static int storm_dribbler(void *arg)
{
    struct stormy *st = arg;
    for (int i = 0; i < STORM_BYTES; i++) {
        char c = (char)(i * 13);
        ssize_t r;
        while (interrupted(st, r = weft_write(st->sv[1], &c, 1, WEFT_SEC(20))))
            ;
        ASSERT_EQ(r, 1);
        if (i % 8 == 7)
            ASSERT_OK(weft_sleep_for(WEFT_USEC(200)));
    }
    ASSERT_EQ(write(st->p[1], "x", 1), 1);
    st->done++;
    return 0;
}

static int storm_reader(void *arg)
{
    struct stormy *st = arg;
    size_t got = 0;
    while (got < STORM_BYTES) {
        size_t done = 0;
        ssize_t r = weft_read_exact(st->sv[0], st->in + got,
                                    STORM_BYTES - got, WEFT_SEC(20), 0, &done);
        got += done;
        if (!interrupted(st, r))
            ASSERT_EQ(r, (ssize_t)(STORM_BYTES - (got - done)));
    }
    ASSERT_EQ(got, STORM_BYTES);
    for (int i = 0; i < STORM_BYTES; i++)
        ASSERT_EQ(st->in[i], (char)(i * 13));
    st->done++;
    return 0;
}

static int storm_waiter(void *arg)
{
    struct stormy *st = arg;
    int r;
    while (interrupted(st, r = weft_fd_wait(st->p[0], WEFT_IO_READ, -1)))
        ;
    ASSERT(r & WEFT_IO_READ);
    st->done++;
    return 0;
}

TEST(eintr_on_every_wait_under_a_signal_storm)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART: every wait sees EINTR */
    sigemptyset(&sa.sa_mask);
    ASSERT_OK(sigaction(SIGUSR1, &sa, &old));
    for (int b = 0; b < NB; b++) {
        for (int report = 0; report < 2; report++) {
            weft_sched *s = sched_on(backends[b], report);
            struct stormy st;
            memset(&st, 0, sizeof st);
            st.report = report;
            ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, st.sv));
            ASSERT_OK(pipe2(st.p, O_CLOEXEC));
            atomic_store(&sigs, 0);
            atomic_store(&storm_stop, 0);
            pthread_t self = pthread_self(), th;
            ASSERT_OK(pthread_create(&th, NULL, storm, &self));
            go(s, storm_sleeper, &st);
            go(s, storm_waiter, &st);
            go(s, storm_reader, &st);
            go(s, storm_dribbler, &st);
            ASSERT_EQ(weft_run(s), 0);
            atomic_store(&storm_stop, 1);
            ASSERT_OK(pthread_join(th, NULL));
            ASSERT_EQ(st.done, 4);
            if (!report)
                ASSERT_EQ(st.eintr, 0);
            if (getenv("WEFT_TEST_VERBOSE"))
                printf("%s, report %d: %ld signals, %ld EINTR\n",
                       weft_backend_name(s), report, atomic_load(&sigs),
                       st.eintr);
            for (int i = 0; i < 2; i++) {
                close(st.sv[i]);
                close(st.p[i]);
            }
            ASSERT_OK(weft_sched_free(s));
        }
    }
    ASSERT_OK(sigaction(SIGUSR1, &old, NULL));
}

/* ======================================================================
 * TCP loopback pairs
 * ====================================================================== */

/* A connected TCP pair on 127.0.0.1: *a from connect, *b from accept. */
static void tcp_pair(int *a, int *b)
{
    int l = weft_listen_tcp("127.0.0.1", 0, 4, 0, -1);
    ASSERT_GE(l, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)weft_sock_port(l));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(*a, 0);
    ASSERT_OK(connect(*a, (struct sockaddr *)&sa, sizeof sa));
    do
        *b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    while (*b < 0 && errno == EAGAIN); /* the listener is non-blocking */
    ASSERT_GE(*b, 0);
    ASSERT_OK(fcntl(*b, F_SETFL, 0)); /* the peer threads block */
    close(l);
}

/* Fixed socket buffers of @p bytes (the kernel's minimum for 1). */
static void set_buffers(int fd, int v)
{
    ASSERT_OK(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
    ASSERT_OK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v));
}

static char pat(size_t i)
{
    return (char)((i * 31 + i / 977) & 0xff);
}

/* ======================================================================
 * Short reads and writes: tiny socket buffers, and a peer (a thread)
 * that reads and writes one byte per system call.  weft_write_all,
 * weft_writev_all and weft_read_exact still move every byte, in order.
 * ====================================================================== */

#define SHORT_OUT (16 * 1024)
#define SHORT_IN (4 * 1024)

struct bytewise {
    int fd;
    char got[SHORT_OUT];
    size_t ngot;
};

static void *byte_reader(void *arg)
{
    struct bytewise *p = arg;
    while (p->ngot < SHORT_OUT) {
        ssize_t n = read(p->fd, p->got + p->ngot, 1);
        if (n <= 0)
            break;
        p->ngot++;
    }
    return NULL;
}

static void *byte_writer(void *arg)
{
    struct bytewise *p = arg;
    for (size_t i = 0; i < SHORT_IN; i++) {
        char c = pat(i + 5);
        if (write(p->fd, &c, 1) != 1)
            break;
    }
    return NULL;
}

struct shorty {
    int fd;
    ssize_t w, wv, r;
    size_t wdone, wvdone, rdone;
    char in[SHORT_IN];
};

static int co_short_write(void *arg)
{
    struct shorty *sh = arg;
    static char out[SHORT_OUT];
    for (size_t i = 0; i < SHORT_OUT; i++)
        out[i] = pat(i);
    /* Half with write_all, half with writev_all over 1 to 63 byte pieces. */
    sh->w = weft_write_all(sh->fd, out, SHORT_OUT / 2, WEFT_SEC(30), 0,
                           &sh->wdone);
    static struct iovec iov[IOV_MAX]; /* too big for the stack */
    int n = 0;
    size_t off = SHORT_OUT / 2;
    while (off < SHORT_OUT) {
        ASSERT_LT(n, IOV_MAX);
        size_t len = 1 + (size_t)n % 63;
        if (len > SHORT_OUT - off)
            len = SHORT_OUT - off;
        iov[n].iov_base = out + off;
        iov[n].iov_len = len;
        off += len;
        n++;
    }
    sh->wv = weft_writev_all(sh->fd, iov, n, WEFT_SEC(30), 0, &sh->wvdone);
    return 0;
}

static int co_short_read(void *arg)
{
    struct shorty *sh = arg;
    sh->r = weft_read_exact(sh->fd, sh->in, SHORT_IN, WEFT_SEC(30), 0,
                            &sh->rdone);
    return 0;
}

TEST(short_reads_and_writes_move_every_byte)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = sched_on(backends[b], 0);
        int a, p;
        tcp_pair(&a, &p);
        set_buffers(a, 1);
        set_buffers(p, 1);
        /* One-byte segments without Nagle's 40 ms waits for an ACK. */
        ASSERT_OK(weft_sock_nodelay(a, 1));
        ASSERT_OK(weft_sock_nodelay(p, 1));
        struct bytewise *peer = calloc(1, sizeof *peer);
        ASSERT_NOT_NULL(peer);
        peer->fd = p;
        pthread_t tr, tw;
        ASSERT_OK(pthread_create(&tr, NULL, byte_reader, peer));
        ASSERT_OK(pthread_create(&tw, NULL, byte_writer, peer));
        struct shorty sh;
        memset(&sh, 0, sizeof sh);
        sh.fd = a;
        go(s, co_short_write, &sh);
        go(s, co_short_read, &sh);
        ASSERT_EQ(weft_run(s), 0);
        ASSERT_OK(shutdown(a, SHUT_WR)); /* the reader stops, whatever */
        ASSERT_OK(pthread_join(tw, NULL));
        ASSERT_OK(pthread_join(tr, NULL));
        ASSERT_EQ(sh.w, SHORT_OUT / 2);
        ASSERT_EQ(sh.wdone, SHORT_OUT / 2);
        ASSERT_EQ(sh.wv, SHORT_OUT / 2);
        ASSERT_EQ(sh.wvdone, SHORT_OUT / 2);
        ASSERT_EQ(sh.r, SHORT_IN);
        ASSERT_EQ(sh.rdone, SHORT_IN);
        for (size_t i = 0; i < SHORT_IN; i++)
            ASSERT_EQ(sh.in[i], pat(i + 5));
        ASSERT_EQ(peer->ngot, SHORT_OUT);
        for (size_t i = 0; i < SHORT_OUT; i++)
            ASSERT_EQ(peer->got[i], pat(i));
        free(peer);
        close(a);
        close(p);
        ASSERT_OK(weft_sched_free(s));
    }
}

/* ======================================================================
 * ECONNRESET mid-stream: the peer closes with SO_LINGER {1, 0} (a RST)
 * while a multi-step call has moved part of its data.  The call fails
 * with -ECONNRESET (or -EPIPE for a write), reports what it moved, and
 * no SIGPIPE is raised (it is left at SIG_DFL: one would kill the test).
 * ====================================================================== */

static void reset_close(int fd)
{
    struct linger lg = {1, 0};
    ASSERT_OK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    ASSERT_OK(close(fd));
}

struct midreset {
    int fd, peer;
    ssize_t r;
    size_t done, peer_got;
};

#define RESET_OUT (4 * 1024 * 1024)
#define RESET_IN 1000

static int co_reset_writer(void *arg)
{
    struct midreset *m = arg;
    char *out = calloc(1, RESET_OUT);
    ASSERT_NOT_NULL(out);
    m->r = weft_write_all(m->fd, out, RESET_OUT, WEFT_SEC(30), 0, &m->done);
    free(out);
    return 0;
}

/* Reads (without blocking) until it has some of the writer's data, then
 * resets the connection. */
static int co_reset_after_some(void *arg)
{
    struct midreset *m = arg;
    char buf[4096];
    while (m->peer_got < 64 * 1024) {
        ssize_t n = recv(m->peer, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0)
            m->peer_got += (size_t)n;
        else
            ASSERT_OK(weft_sleep_for(WEFT_USEC(200)));
    }
    reset_close(m->peer);
    return 0;
}

static int co_reset_reader(void *arg)
{
    struct midreset *m = arg;
    char *in = malloc(RESET_OUT);
    ASSERT_NOT_NULL(in);
    m->r = weft_read_exact(m->fd, in, RESET_OUT, WEFT_SEC(30), 0, &m->done);
    for (size_t i = 0; i < m->done; i++)
        ASSERT_EQ(in[i], pat(i));
    free(in);
    return 0;
}

/* Writes RESET_IN bytes, waits until the reader has taken them all (its
 * receive queue is empty), then resets the connection. */
static int co_write_some_then_reset(void *arg)
{
    struct midreset *m = arg;
    char out[RESET_IN];
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = pat(i);
    ASSERT_EQ(write(m->peer, out, sizeof out), (ssize_t)sizeof out);
    /* Acknowledged by the reader's kernel (nothing left in our send
     * queue), then gone from its receive queue. */
    int64_t end = weft_now(NULL) + WEFT_SEC(20);
    int unacked, queued;
    do {
        ASSERT_OK(weft_sleep_for(WEFT_USEC(200)));
        ASSERT_OK(ioctl(m->peer, TIOCOUTQ, &unacked));
        ASSERT_OK(ioctl(m->fd, FIONREAD, &queued));
    } while ((unacked > 0 || queued > 0) && weft_now(NULL) < end);
    ASSERT_EQ(unacked, 0);
    ASSERT_EQ(queued, 0);
    reset_close(m->peer);
    return 0;
}

static void expect_no_sigpipe(void)
{
    sigset_t pend;
    ASSERT_OK(sigpending(&pend));
    ASSERT(!sigismember(&pend, SIGPIPE));
}

TEST(connection_reset_mid_write_reports_the_bytes_sent)
{
    signal(SIGPIPE, SIG_DFL);
    for (int b = 0; b < NB; b++) {
        weft_sched *s = sched_on(backends[b], 0);
        struct midreset m;
        memset(&m, 0, sizeof m);
        tcp_pair(&m.fd, &m.peer);
        /* Too small for the 4 MiB (and no autotuning), big enough to keep
         * TCP out of its zero-window probes. */
        set_buffers(m.fd, 64 * 1024);
        set_buffers(m.peer, 64 * 1024);
        go(s, co_reset_writer, &m);
        go(s, co_reset_after_some, &m);
        ASSERT_EQ(weft_run(s), 0);
        ASSERT(m.r == -ECONNRESET || m.r == -EPIPE);
        ASSERT_GE(m.done, m.peer_got); /* what the peer read was sent */
        ASSERT_LT(m.done, RESET_OUT);
        expect_no_sigpipe();
        close(m.fd);
        ASSERT_OK(weft_sched_free(s));
    }
}

TEST(connection_reset_mid_read_reports_the_bytes_read)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = sched_on(backends[b], 0);
        struct midreset m;
        memset(&m, 0, sizeof m);
        tcp_pair(&m.fd, &m.peer);
        go(s, co_reset_reader, &m);
        go(s, co_write_some_then_reset, &m);
        ASSERT_EQ(weft_run(s), 0);
        ASSERT_ERR(m.r, -ECONNRESET);
        ASSERT_EQ(m.done, RESET_IN);
        close(m.fd);
        ASSERT_OK(weft_sched_free(s));
    }
}
