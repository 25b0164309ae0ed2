/*
 * test-doorbell.c - the doorbell loop (buildbot's util.loop): rings,
 * runs, wake-up times, errors, when-quiet, the three forms, the named
 * doorbell across processes, and allocation failures.
 *
 * Every rule about time runs on a manual clock (no real sleeping): the
 * helpers settle() (run what is ready without moving the clock) and
 * run_until() (move the clock, firing what comes due) drive the loop.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

void weft__test_fail_alloc(long n, int sticky);

/* ----------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */

static weft_sched *new_sched(int manual)
{
    struct weft_sched_opts o = {0};
    weft_sched *s;
    o.clock = manual ? WEFT_CLOCK_MANUAL : WEFT_CLOCK_MONOTONIC;
    ASSERT_OK(weft_sched_new(&o, &s));
    return s;
}

/* Run what is ready now, I/O included, without moving the clock. */
static void settle(weft_sched *s)
{
    int idle = 0;
    for (int i = 0; i < 1000000 && idle < 2; i++) {
        ASSERT_GE(weft_run_once(s, 0), 0);
        idle = weft_next_timeout(s) == 0 ? 0 : idle + 1;
    }
    ASSERT_EQ(idle, 2);
}

/* Move a manual clock to t, running everything that comes due. */
static void run_until(weft_sched *s, int64_t t)
{
    settle(s);
    while (weft_now(s) < t) {
        ASSERT_GE(weft_run_once(s, t - weft_now(s)), 0);
        settle(s);
    }
    ASSERT_EQ(weft_now(s), t);
}

/* At most one processor active at a time, across every loop. */
static int active, max_active;

static void enter(void)
{
    active++;
    if (active > max_active)
        max_active = active;
}

static void leave(void)
{
    active--;
}

#define MAXCALLS 64

/* A processor driven by its fields. */
struct P {
    int calls;
    int64_t at[MAXCALLS]; /* scheduler time of each call */
    int64_t wake_rel;     /* != 0: ask for now + wake_rel (entry time) */
    int wake_calls;       /* ... in the first wake_calls calls (0: all) */
    int64_t wake_abs;     /* != 0: ask for this absolute time instead */
    int64_t sleep;        /* block this long in each call */
    int yields;           /* yield this many times in each call */
    int ret;              /* the return value */
    int ring_on;          /* ring the loop in this call (1-based) */
    int stop_on;          /* stop the loop in this call */
    int free_r;           /* what weft_doorbell_free() returned inside */
    int try_free;         /* call weft_doorbell_free() inside */
};

static int pfn(weft_doorbell *db, void *arg, int64_t *wake_at)
{
    struct P *p = arg;
    int64_t now = weft_now(weft_doorbell_sched(db));
    int k;
    enter();
    ASSERT_EQ(*wake_at, -1);
    k = ++p->calls;
    if (k <= MAXCALLS)
        p->at[k - 1] = now;
    if (p->ring_on == k)
        ASSERT_GE(weft_doorbell_trigger(db), 0);
    if (p->stop_on == k)
        ASSERT_OK(weft_doorbell_stop(db));
    if (p->try_free)
        p->free_r = weft_doorbell_free(db);
    for (int i = 0; i < p->yields; i++)
        ASSERT_OK(weft_yield());
    if (p->sleep)
        ASSERT_OK(weft_sleep_for(p->sleep));
    if (p->wake_abs)
        *wake_at = p->wake_abs;
    else if (p->wake_rel && (!p->wake_calls || k <= p->wake_calls))
        *wake_at = now + p->wake_rel;
    leave();
    return p->ret;
}

/* A second function, so that (fn, arg) pairs can differ by fn. */
static int pfn2(weft_doorbell *db, void *arg, int64_t *wake_at)
{
    return pfn(db, arg, wake_at);
}

/* Log collector. */
#define MAXLOG 32
struct logbook {
    int n;
    struct weft_doorbell_log rec[MAXLOG];
    char msg[MAXLOG][320];
    char name[MAXLOG][64];
};

static void log_fn(weft_doorbell *db, const struct weft_doorbell_log *rec,
                   void *arg)
{
    struct logbook *lb = arg;
    ASSERT_NOT_NULL(db);
    ASSERT_NOT_NULL(rec->msg);
    ASSERT_NOT_NULL(rec->name);
    if (lb->n < MAXLOG) {
        lb->rec[lb->n] = *rec;
        snprintf(lb->msg[lb->n], sizeof lb->msg[0], "%s", rec->msg);
        snprintf(lb->name[lb->n], sizeof lb->name[0], "%s", rec->name);
        lb->rec[lb->n].msg = lb->msg[lb->n];
        lb->rec[lb->n].name = lb->name[lb->n];
    }
    lb->n++;
}

static weft_doorbell *new_loop(weft_sched *s, struct logbook *lb)
{
    struct weft_doorbell_opts o = {0};
    weft_doorbell *db;
    if (lb) {
        o.log = log_fn;
        o.log_arg = lb;
    }
    ASSERT_OK(weft_doorbell_new(s, &o, &db));
    return db;
}

/* Temporary directory for named doorbells. */
struct tmp {
    char dir[128];
    char path[192]; /* dir/bell */
};

static void tmp_make(struct tmp *t)
{
    const char *base = getenv("TMPDIR");
    if (!base || !base[0] || strlen(base) > 60)
        base = "/tmp";
    snprintf(t->dir, sizeof t->dir, "%s/weft-db-XXXXXX", base);
    ASSERT_NOT_NULL(mkdtemp(t->dir));
    ASSERT_OK(chmod(t->dir, 0755)); /* others may traverse (permissions) */
    snprintf(t->path, sizeof t->path, "%s/bell", t->dir);
}

static void tmp_clean(struct tmp *t, const char *extra)
{
    char p[256];
    (void)unlink(t->path);
    if (extra) {
        snprintf(p, sizeof p, "%s/%s", t->dir, extra);
        (void)unlink(p);
    }
    ASSERT_OK(rmdir(t->dir));
}

static void fill_addr(struct sockaddr_un *a, const char *path)
{
    size_t n = strlen(path);
    ASSERT_LT(n, sizeof a->sun_path);
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    memcpy(a->sun_path, path, n + 1);
}

/* A socket file that nothing is bound to any more: a stale path. */
static void make_stale(const char *path)
{
    struct sockaddr_un a;
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    ASSERT_GE(fd, 0);
    fill_addr(&a, path);
    ASSERT_OK(bind(fd, (struct sockaddr *)&a, sizeof a));
    ASSERT_OK(close(fd));
}

/* ----------------------------------------------------------------------
 * Bad input
 * ---------------------------------------------------------------------- */

static int dummy_delegate(weft_doorbell *db, void *arg)
{
    (void)db;
    (void)arg;
    return 0;
}

struct other {
    weft_doorbell *db;
    weft_sched *s;
    int add, start, stop, free_, quiet, runs, trig, newr, bind, min, log;
};

static void *other_thread(void *arg)
{
    struct other *o = arg;
    struct P p = {0};
    weft_doorbell *db2 = (weft_doorbell *)(void *)o; /* set to NULL */
    o->add = weft_doorbell_add(o->db, pfn, &p);
    o->start = weft_doorbell_start(o->db);
    o->stop = weft_doorbell_stop(o->db);
    o->free_ = weft_doorbell_free(o->db);
    o->quiet = weft_doorbell_is_quiet(o->db);
    o->runs = (int)weft_doorbell_runs(o->db);
    o->bind = weft_doorbell_bind(o->db, "/nonexistent/x", 0);
    o->min = (int)weft_doorbell_min_delay(o->db);
    o->log = weft_doorbell_set_log(o->db, NULL, NULL);
    o->trig = weft_doorbell_trigger(o->db); /* the one call allowed */
    o->newr = weft_doorbell_new(o->s, NULL, &db2);
    if (db2 != NULL)
        o->newr = 12345; /* out must be set to NULL */
    return NULL;
}

TEST(bad_input_is_rejected)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db, *dd, *ds, *out = (weft_doorbell *)&s;
    struct weft_doorbell_opts o = {0};
    struct P p = {0};
    weft_future *f;
    char longpath[200];

    ASSERT_ERR(weft_doorbell_new(s, NULL, NULL), -EINVAL);
    o.min_delay = -1;
    ASSERT_ERR(weft_doorbell_new(s, &o, &out), -EINVAL);
    ASSERT_NULL(out);
    o.min_delay = 0;
    o.stack_size = 100;
    ASSERT_ERR(weft_doorbell_new(s, &o, &out), -EINVAL);
    o.stack_size = 0;
    ASSERT_ERR(weft_doorbell_new_delegate(s, NULL, NULL, NULL, &out),
               -EINVAL);
    ASSERT_ERR(weft_doorbell_new_services(s, NULL, NULL), -EINVAL);

    /* NULL loop. */
    ASSERT_ERR(weft_doorbell_free(NULL), -EINVAL);
    ASSERT_ERR(weft_doorbell_start(NULL), -EINVAL);
    ASSERT_ERR(weft_doorbell_stop(NULL), -EINVAL);
    ASSERT_ERR(weft_doorbell_started(NULL), -EINVAL);
    ASSERT_ERR(weft_doorbell_add(NULL, pfn, &p), -EINVAL);
    ASSERT_ERR(weft_doorbell_remove(NULL, pfn, &p), -EINVAL);
    ASSERT_ERR(weft_doorbell_offer(NULL, pfn, &p), -EINVAL);
    ASSERT_ERR(weft_doorbell_service_add(NULL, NULL), -EINVAL);
    ASSERT_ERR(weft_doorbell_service_remove(NULL, "x"), -EINVAL);
    ASSERT_ERR(weft_doorbell_service_running(NULL, "x"), -EINVAL);
    ASSERT_ERR(weft_doorbell_trigger(NULL), -EINVAL);
    ASSERT_ERR(weft_doorbell_bind(NULL, "/tmp/x", 0), -EINVAL);
    ASSERT_ERR(weft_doorbell_unbind(NULL), -EINVAL);
    ASSERT_NULL(weft_doorbell_path(NULL));
    ASSERT_ERR(weft_doorbell_when_quiet(NULL, &f), -EINVAL);
    ASSERT_NULL(f);
    ASSERT_ERR(weft_doorbell_is_quiet(NULL), -EINVAL);
    ASSERT_ERR(weft_doorbell_runs(NULL), -EINVAL);
    ASSERT_NULL(weft_doorbell_sched(NULL));
    ASSERT_ERR(weft_doorbell_set_min_delay(NULL, 1), -EINVAL);
    ASSERT_ERR(weft_doorbell_min_delay(NULL), -EINVAL);
    ASSERT_ERR(weft_doorbell_set_log(NULL, NULL, NULL), -EINVAL);

    /* Bad arguments on a good loop. */
    db = new_loop(s, NULL);
    ASSERT_PTR_EQ(weft_doorbell_sched(db), s);
    ASSERT_ERR(weft_doorbell_add(db, NULL, &p), -EINVAL);
    ASSERT_ERR(weft_doorbell_remove(db, NULL, &p), -EINVAL);
    ASSERT_ERR(weft_doorbell_remove(db, pfn, &p), -ENOENT);
    ASSERT_ERR(weft_doorbell_offer(db, pfn, &p), -EINVAL); /* wrong form */
    ASSERT_ERR(weft_doorbell_set_min_delay(db, 0), -EINVAL);
    ASSERT_ERR(weft_doorbell_set_min_delay(db, -5), -EINVAL);
    ASSERT_EQ(weft_doorbell_min_delay(db), WEFT_SEC(5));
    ASSERT_ERR(weft_doorbell_when_quiet(db, NULL), -EINVAL);
    ASSERT_ERR(weft_doorbell_stop(db), -EALREADY);
    ASSERT_EQ(weft_doorbell_started(db), 0);
    ASSERT_OK(weft_doorbell_start(db));
    ASSERT_EQ(weft_doorbell_started(db), 1);
    ASSERT_ERR(weft_doorbell_start(db), -EALREADY);
    ASSERT_ERR(weft_doorbell_bind(db, NULL, 0), -EINVAL);
    ASSERT_ERR(weft_doorbell_bind(db, "", 0), -EINVAL);
    ASSERT_ERR(weft_doorbell_bind(db, "/tmp/x", 01000), -EINVAL);
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    ASSERT_ERR(weft_doorbell_bind(db, longpath, 0), -ENAMETOOLONG);
    ASSERT_ERR(weft_doorbell_unbind(db), -ENOENT);
    ASSERT_NULL(weft_doorbell_path(db));
    ASSERT_ERR(weft_doorbell_ring_path(NULL), -EINVAL);
    ASSERT_ERR(weft_doorbell_ring_path(""), -EINVAL);
    ASSERT_ERR(weft_doorbell_ring_path(longpath), -ENAMETOOLONG);
    ASSERT_ERR(weft_doorbell_service_add(db, NULL), -EINVAL); /* form */
    ASSERT_ERR(weft_doorbell_service_running(db, "x"), -EINVAL);
    ASSERT_ERR(weft_doorbell_service_remove(db, "x"), -EINVAL);

    /* The delegate and services forms refuse what is not theirs. */
    ASSERT_OK(weft_doorbell_new_delegate(s, NULL, dummy_delegate, NULL, &dd));
    ASSERT_ERR(weft_doorbell_add(dd, pfn, &p), -EINVAL);
    ASSERT_ERR(weft_doorbell_remove(dd, pfn, &p), -EINVAL);
    ASSERT_ERR(weft_doorbell_offer(dd, pfn, &p), -EINVAL); /* not inside */
    ASSERT_OK(weft_doorbell_new_services(s, NULL, &ds));
    ASSERT_ERR(weft_doorbell_add(ds, pfn, &p), -EINVAL);
    ASSERT_ERR(weft_doorbell_offer(ds, pfn, &p), -EINVAL);
    {
        struct weft_doorbell_service sv = {0};
        ASSERT_ERR(weft_doorbell_service_add(ds, NULL), -EINVAL);
        ASSERT_ERR(weft_doorbell_service_add(ds, &sv), -EINVAL);
        sv.name = "";
        sv.run = pfn;
        ASSERT_ERR(weft_doorbell_service_add(ds, &sv), -EINVAL);
        sv.name = "a";
        sv.run = NULL;
        ASSERT_ERR(weft_doorbell_service_add(ds, &sv), -EINVAL);
        sv.run = pfn;
        ASSERT_OK(weft_doorbell_service_add(ds, &sv));
        ASSERT_ERR(weft_doorbell_service_add(ds, &sv), -EEXIST);
        ASSERT_ERR(weft_doorbell_service_remove(ds, "b"), -ENOENT);
        ASSERT_ERR(weft_doorbell_service_running(ds, "b"), -ENOENT);
        ASSERT_ERR(weft_doorbell_service_running(ds, NULL), -EINVAL);
        ASSERT_ERR(weft_doorbell_service_remove(ds, NULL), -EINVAL);
    }

    /* Another thread: everything but the trigger is refused. */
    {
        struct other ot;
        pthread_t th;
        memset(&ot, 0, sizeof ot);
        ot.db = db;
        ot.s = s;
        ASSERT_OK(pthread_create(&th, NULL, other_thread, &ot));
        ASSERT_OK(pthread_join(th, NULL));
        ASSERT_EQ(ot.add, -EINVAL);
        ASSERT_EQ(ot.start, -EINVAL);
        ASSERT_EQ(ot.stop, -EINVAL);
        ASSERT_EQ(ot.free_, -EINVAL);
        ASSERT_EQ(ot.quiet, -EINVAL);
        ASSERT_EQ(ot.runs, -EINVAL);
        ASSERT_EQ(ot.bind, -EINVAL);
        ASSERT_EQ(ot.min, -EINVAL);
        ASSERT_EQ(ot.log, -EINVAL);
        ASSERT_EQ(ot.newr, -EINVAL);
        ASSERT_GE(ot.trig, 0);
    }

    ASSERT_OK(weft_doorbell_free(ds));
    ASSERT_OK(weft_doorbell_free(dd));
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Runs and rings
 * ---------------------------------------------------------------------- */

TEST(start_runs_every_processor_once)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct P a = {0}, b = {0}, c = {0};
    ASSERT_OK(weft_doorbell_add(db, pfn, &a));
    ASSERT_OK(weft_doorbell_add(db, pfn, &b));
    ASSERT_OK(weft_doorbell_add(db, pfn, &c));
    settle(s);
    ASSERT_EQ(a.calls, 0); /* a new loop is stopped */
    ASSERT_EQ(weft_doorbell_runs(db), 0);
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(a.calls, 1);
    ASSERT_EQ(b.calls, 1);
    ASSERT_EQ(c.calls, 1);
    ASSERT_EQ(weft_doorbell_runs(db), 1);
    /* Nothing rings: nothing runs, however long we wait. */
    run_until(s, WEFT_SEC(3600));
    ASSERT_EQ(a.calls, 1);
    ASSERT_EQ(weft_doorbell_runs(db), 1);
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    settle(s);
    ASSERT_EQ(a.calls, 2);
    ASSERT_EQ(b.calls, 2);
    ASSERT_EQ(c.calls, 2);
    ASSERT_EQ(weft_doorbell_runs(db), 2);
    ASSERT_EQ(weft_doorbell_is_quiet(db), 1);
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

TEST(rings_before_a_run_coalesce)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct P a = {0};
    ASSERT_OK(weft_doorbell_add(db, pfn, &a));
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(a.calls, 1);
    /* Five rings before the loop runs: one run.  Only the first writes
     * the eventfd (returns 1); the others find the flag set. */
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(weft_doorbell_trigger(db), 0);
    ASSERT_EQ(weft_doorbell_is_quiet(db), 0);
    settle(s);
    ASSERT_EQ(a.calls, 2);
    ASSERT_EQ(weft_doorbell_runs(db), 2);
    /* The flag was consumed: the next ring writes the eventfd again. */
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    settle(s);
    ASSERT_EQ(a.calls, 3);

    /* Rings while stopped are held and merged into the start's run. */
    ASSERT_OK(weft_doorbell_stop(db));
    for (int i = 0; i < 5; i++)
        ASSERT_GE(weft_doorbell_trigger(db), 0);
    settle(s);
    ASSERT_EQ(a.calls, 3);
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(a.calls, 4);
    ASSERT_EQ(weft_doorbell_runs(db), 4);
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

/* Sequence numbers shared by rings and run starts. */
static int seq;
static int run_seq[16];
static int nrun_seq;

static void on_run_stamp(weft_doorbell *db, void *arg)
{
    (void)db;
    (void)arg;
    if (nrun_seq < 16)
        run_seq[nrun_seq] = ++seq;
    nrun_seq++;
}

struct ringer {
    weft_doorbell *db;
    int64_t delay;
    int times;
    int ring_seq;
};

static int ringer_main(void *arg)
{
    struct ringer *r = arg;
    ASSERT_OK(weft_sleep_for(r->delay));
    for (int i = 0; i < r->times; i++)
        ASSERT_GE(weft_doorbell_trigger(r->db), 0);
    r->ring_seq = ++seq;
    return 0;
}

TEST(ring_during_a_run_causes_exactly_one_more_run)
{
    weft_sched *s = new_sched(1);
    struct weft_doorbell_opts o = {0};
    weft_doorbell *db;
    struct P a = {0}, b = {0};
    struct ringer r = {0};
    active = max_active = 0;
    seq = 0;
    nrun_seq = 0;
    o.on_run = on_run_stamp;
    ASSERT_OK(weft_doorbell_new(s, &o, &db));
    a.sleep = WEFT_SEC(1); /* each run lasts 1 s */
    ASSERT_OK(weft_doorbell_add(db, pfn, &a));
    ASSERT_OK(weft_doorbell_add(db, pfn2, &b));
    /* Three rings half-way through the first run. */
    r.db = db;
    r.delay = WEFT_MSEC(500);
    r.times = 3;
    ASSERT_OK(weft_spawn(s, ringer_main, &r, NULL, NULL));
    ASSERT_OK(weft_doorbell_start(db));
    run_until(s, WEFT_SEC(10));
    ASSERT_EQ(nrun_seq, 2);
    ASSERT_EQ(weft_doorbell_runs(db), 2);
    ASSERT_EQ(a.calls, 2);
    ASSERT_EQ(b.calls, 2);
    /* The second run began after the rings. */
    ASSERT_LT(run_seq[0], r.ring_seq);
    ASSERT_GT(run_seq[1], r.ring_seq);
    ASSERT_EQ(a.at[1], WEFT_SEC(1));

    /* A processor that rings its own loop (buildbot's SoonAndAgain). */
    a.sleep = 0;
    a.calls = b.calls = 0;
    a.ring_on = 1;
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    run_until(s, WEFT_SEC(20));
    ASSERT_EQ(a.calls, 2);
    ASSERT_EQ(b.calls, 2);
    ASSERT_EQ(weft_doorbell_runs(db), 4);
    ASSERT_EQ(max_active, 1);
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Other threads, signal handlers
 * ---------------------------------------------------------------------- */

struct xthread {
    weft_doorbell *db;
    int data;       /* written before the ring, read by the processor */
    int seen;
    int calls;
    int r;
};

static int xproc(weft_doorbell *db, void *arg, int64_t *wake_at)
{
    struct xthread *x = arg;
    (void)wake_at;
    x->calls++;
    if (x->calls == 2) {
        x->seen = x->data;
        ASSERT_OK(weft_doorbell_stop(db)); /* lets weft_run return */
    }
    return 0;
}

static void *xthread_main(void *arg)
{
    struct xthread *x = arg;
    x->data = 42;
    x->r = weft_doorbell_trigger(x->db);
    return NULL;
}

TEST(trigger_from_another_thread)
{
    weft_sched *s = new_sched(0);
    weft_doorbell *db = new_loop(s, NULL);
    struct xthread x = {0};
    pthread_t th;
    x.db = db;
    ASSERT_OK(weft_doorbell_add(db, xproc, &x));
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(x.calls, 1);
    ASSERT_OK(pthread_create(&th, NULL, xthread_main, &x));
    /* The loop keeps weft_run going until the processor stops it. */
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_OK(pthread_join(th, NULL));
    ASSERT_EQ(x.r, 1);
    ASSERT_EQ(x.calls, 2);
    ASSERT_EQ(x.seen, 42);
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

static weft_doorbell *sig_db;
static volatile sig_atomic_t sig_r = -100, sig_errno_kept;

static void on_usr1(int sig)
{
    (void)sig;
    errno = 777;
    sig_r = weft_doorbell_trigger(sig_db);
    sig_errno_kept = errno == 777;
}

static int sig_proc(weft_doorbell *db, void *arg, int64_t *wake_at)
{
    int *calls = arg;
    (void)db;
    (void)wake_at;
    if (++*calls == 2)
        ASSERT_OK(raise(SIGUSR1)); /* a ring during a run, from a handler */
    return 0;
}

TEST(trigger_from_a_signal_handler)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct sigaction sa, old;
    int calls = 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    ASSERT_OK(sigaction(SIGUSR1, &sa, &old));
    sig_db = db;
    ASSERT_OK(weft_doorbell_add(db, sig_proc, &calls));
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(calls, 1);
    ASSERT_OK(raise(SIGUSR1));
    settle(s);
    ASSERT_EQ(sig_r, 1);
    ASSERT_EQ(sig_errno_kept, 1);
    /* Call 2 raised again during its run: exactly one more run. */
    ASSERT_EQ(calls, 3);
    ASSERT_EQ(weft_doorbell_runs(db), 3);
    ASSERT_OK(sigaction(SIGUSR1, &old, NULL));
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * One at a time
 * ---------------------------------------------------------------------- */

struct blocker {
    int kind; /* 0 sleep, 1 yields, 2 fd wait, 3 future */
    int calls;
    int64_t entry;
    int64_t at_last;
    int pipefd[2];
    weft_sched *s;
};

static int poke_pipe(void *arg)
{
    struct blocker *b = arg;
    ASSERT_OK(weft_sleep_for(WEFT_MSEC(300)));
    ASSERT_EQ(write(b->pipefd[1], "x", 1), 1);
    return 0;
}

static void resolve_cb(weft_timer *t, void *arg)
{
    ASSERT_OK(weft_future_resolve(arg, NULL));
    ASSERT_OK(weft_timer_free(t));
}

static int blocking_proc(weft_doorbell *db, void *arg, int64_t *wake_at)
{
    struct blocker *b = arg;
    char c;
    (void)db;
    enter();
    b->calls++;
    b->entry = weft_now(b->s);
    b->at_last = b->entry;
    switch (b->kind) {
    case 0:
        ASSERT_OK(weft_sleep_for(WEFT_MSEC(200)));
        break;
    case 1:
        for (int i = 0; i < 5; i++)
            ASSERT_OK(weft_yield());
        break;
    case 2:
        ASSERT_OK(weft_spawn(b->s, poke_pipe, b, NULL, NULL));
        ASSERT_EQ(weft_fd_wait(b->pipefd[0], WEFT_IO_READ, -1), WEFT_IO_READ);
        ASSERT_EQ(read(b->pipefd[0], &c, 1), 1);
        break;
    default: {
        weft_future *f;
        weft_timer *t;
        ASSERT_OK(weft_future_new(b->s, &f));
        ASSERT_OK(weft_timer_new(b->s, resolve_cb, f, &t));
        ASSERT_OK(weft_timer_start(t, WEFT_MSEC(100), 0));
        ASSERT_OK(weft_future_wait(f, -1, NULL));
        ASSERT_OK(weft_future_release(f));
        break;
    }
    }
    /* Wake-up runs too: calls that begin before 4 s ask for one. */
    if (b->entry < WEFT_SEC(4))
        *wake_at = b->entry + WEFT_SEC(6);
    leave();
    return 0;
}

static int ring_every(void *arg)
{
    weft_doorbell *db = arg;
    for (int i = 0; i < 20; i++) {
        ASSERT_OK(weft_sleep_for(WEFT_MSEC(130)));
        ASSERT_GE(weft_doorbell_trigger(db), 0);
    }
    return 0;
}

TEST(processors_run_one_at_a_time_even_when_they_block)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct blocker b[4];
    active = max_active = 0;
    memset(b, 0, sizeof b);
    for (int i = 0; i < 4; i++) {
        b[i].kind = i;
        b[i].s = s;
        ASSERT_OK(pipe(b[i].pipefd));
        ASSERT_OK(weft_doorbell_add(db, blocking_proc, &b[i]));
    }
    ASSERT_OK(weft_spawn(s, ring_every, db, NULL, NULL));
    ASSERT_OK(weft_doorbell_start(db));
    run_until(s, WEFT_SEC(30));
    ASSERT_EQ(max_active, 1);
    ASSERT_EQ(active, 0);
    /* Rings came every 130 ms for 2.6 s while a full run takes 600 ms:
     * several full runs, far fewer than the 21 rings (start included);
     * then the wake-ups asked for by the last full run, each in a
     * wake-up run (some together). */
    int64_t runs = weft_doorbell_runs(db);
    ASSERT_GE(runs, 5);
    ASSERT_LT(runs, 21);
    for (int i = 0; i < 4; i++) {
        /* Every full run ran every processor, and so did a wake-up. */
        ASSERT_EQ(b[i].calls, b[0].calls);
        close(b[i].pipefd[0]);
        close(b[i].pipefd[1]);
    }
    ASSERT_GT(runs, b[0].calls - 1); /* at least one wake-up run */
    ASSERT_GE(b[0].at_last, WEFT_SEC(8));
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

TEST(a_processor_added_twice_runs_once_per_run)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct P a = {0}, b = {0};
    ASSERT_EQ(weft_doorbell_add(db, pfn, &a), 0);
    ASSERT_EQ(weft_doorbell_add(db, pfn, &a), 1); /* kept once */
    ASSERT_EQ(weft_doorbell_add(db, pfn, &b), 0); /* another argument */
    ASSERT_EQ(weft_doorbell_add(db, pfn2, &b), 0); /* another function */
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(a.calls, 1);
    ASSERT_EQ(b.calls, 2);
    ASSERT_OK(weft_doorbell_remove(db, pfn, &a));
    ASSERT_ERR(weft_doorbell_remove(db, pfn, &a), -ENOENT);
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    settle(s);
    ASSERT_EQ(a.calls, 1);
    ASSERT_EQ(b.calls, 4);
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

/* Each removes the other: whichever runs first, the other does not run
 * later in the same run. */
struct pair {
    weft_doorbell *db;
    int calls[2];
    int added_calls;
};

static int added_late(weft_doorbell *db, void *arg, int64_t *wake_at)
{
    struct pair *pr = arg;
    (void)db;
    (void)wake_at;
    pr->added_calls++;
    return 0;
}

static int remover0(weft_doorbell *db, void *arg, int64_t *wake_at);
static int remover1(weft_doorbell *db, void *arg, int64_t *wake_at)
{
    struct pair *pr = arg;
    (void)wake_at;
    pr->calls[1]++;
    (void)weft_doorbell_remove(db, remover0, pr);
    ASSERT_GE(weft_doorbell_add(db, added_late, pr), 0);
    return 0;
}

static int remover0(weft_doorbell *db, void *arg, int64_t *wake_at)
{
    struct pair *pr = arg;
    (void)wake_at;
    pr->calls[0]++;
    (void)weft_doorbell_remove(db, remover1, pr);
    ASSERT_GE(weft_doorbell_add(db, added_late, pr), 0);
    return 0;
}

TEST(a_removed_processor_is_not_invoked_again)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct pair pr = {0};
    struct P w = {0};
    ASSERT_OK(weft_doorbell_add(db, remover0, &pr));
    ASSERT_OK(weft_doorbell_add(db, remover1, &pr));
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(pr.calls[0] + pr.calls[1], 1);
    /* Added during the run: not part of it; part of the next one. */
    ASSERT_EQ(pr.added_calls, 0);
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    settle(s);
    ASSERT_EQ(pr.added_calls, 1);

    /* A removed processor's wake-up is dropped with it. */
    w.wake_rel = WEFT_SEC(10);
    ASSERT_OK(weft_doorbell_add(db, pfn, &w));
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    settle(s);
    ASSERT_EQ(w.calls, 1);
    ASSERT_OK(weft_doorbell_remove(db, pfn, &w));
    run_until(s, WEFT_SEC(60));
    ASSERT_EQ(w.calls, 1);
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------- */

TEST(errors_are_logged_and_ignored)
{
    weft_sched *s = new_sched(1);
    struct logbook lb = {0};
    weft_doorbell *db = new_loop(s, &lb);
    struct P bad = {0}, good = {0};
    bad.ret = -EIO;
    bad.wake_rel = WEFT_SEC(10); /* ignored: the call failed */
    ASSERT_OK(weft_doorbell_add(db, pfn, &bad));
    ASSERT_OK(weft_doorbell_add(db, pfn2, &good));
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(bad.calls, 1);
    ASSERT_EQ(good.calls, 1);
    ASSERT_EQ(lb.n, 1);
    ASSERT_EQ(lb.rec[0].kind, WEFT_DOORBELL_LOG_FAILED);
    ASSERT_EQ(lb.rec[0].err, -EIO);
    ASSERT(lb.rec[0].fn == pfn);
    ASSERT_PTR_EQ(lb.rec[0].arg, &bad);
    ASSERT_EQ(lb.rec[0].when, -1);
    ASSERT_EQ(lb.rec[0].now, 0);
    ASSERT_STR_EQ(lb.rec[0].name, "");
    ASSERT_STR_CONTAINS(lb.rec[0].msg, "failed");
    ASSERT_STR_CONTAINS(lb.rec[0].msg, "EIO");
    /* The loop goes on. */
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    settle(s);
    ASSERT_EQ(bad.calls, 2);
    ASSERT_EQ(good.calls, 2);
    ASSERT_EQ(lb.n, 2);
    run_until(s, WEFT_SEC(60));
    ASSERT_EQ(bad.calls, 2); /* its wake-up was ignored */
    ASSERT_EQ(weft_doorbell_is_quiet(db), 1);
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

static void default_log_child(void *arg)
{
    weft_sched *s = new_sched(1);
    struct logbook lb = {0};
    weft_doorbell *db = new_loop(s, &lb);
    struct P bad = {0};
    (void)arg;
    bad.ret = -ENOSPC;
    ASSERT_OK(weft_doorbell_add(db, pfn, &bad));
    ASSERT_OK(weft_doorbell_set_log(db, NULL, NULL)); /* back to stderr */
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(bad.calls, 1);
    ASSERT_EQ(lb.n, 0);
    ASSERT_OK(weft_doorbell_set_log(db, log_fn, &lb));
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    settle(s);
    ASSERT_EQ(lb.n, 1);
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

TEST(default_log_writes_one_line_to_stderr)
{
    char out[1024];
    int st = weft_test_fork(default_log_child, NULL, out, sizeof out);
    ASSERT(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
    ASSERT_STR_CONTAINS(out, "weft: doorbell: processor");
    ASSERT_STR_CONTAINS(out, "failed: ");
    ASSERT_STR_CONTAINS(out, "ENOSPC");
    ASSERT_EQ(strchr(out, '\n') - out + 1, (long)strlen(out)); /* one line */
}

/* ----------------------------------------------------------------------
 * Wake-up times
 * ---------------------------------------------------------------------- */

TEST(a_wake_up_time_calls_the_processor_again_then)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct P p = {0}, q = {0};
    p.wake_rel = WEFT_SEC(10);
    p.wake_calls = 1;
    ASSERT_OK(weft_doorbell_add(db, pfn, &p));
    ASSERT_OK(weft_doorbell_add(db, pfn2, &q));
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(p.calls, 1);
    ASSERT_EQ(weft_doorbell_is_quiet(db), 0); /* a wake-up is outstanding */
    run_until(s, WEFT_SEC(10) - 1);
    ASSERT_EQ(p.calls, 1);
    run_until(s, WEFT_SEC(10));
    ASSERT_EQ(p.calls, 2);
    ASSERT_EQ(p.at[1], WEFT_SEC(10));
    /* A wake-up run calls only the processors whose time came. */
    ASSERT_EQ(q.calls, 1);
    ASSERT_EQ(weft_doorbell_runs(db), 2);
    run_until(s, WEFT_SEC(100));
    ASSERT_EQ(p.calls, 2);
    ASSERT_EQ(weft_doorbell_is_quiet(db), 1);
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

/* Returns the times of wake[], one per call, then none. */
struct plan {
    int calls;
    int64_t at[MAXCALLS];
    int64_t wake[8];
    int nwake;
};

static int plan_proc(weft_doorbell *db, void *arg, int64_t *wake_at)
{
    struct plan *pl = arg;
    int k = pl->calls++;
    pl->at[k] = weft_now(weft_doorbell_sched(db));
    if (k < pl->nwake)
        *wake_at = pl->wake[k];
    return 0;
}

TEST(each_wake_up_replaces_the_previous_one)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct plan pl = {0};
    pl.wake[0] = WEFT_SEC(100); /* call 1 (t=0): wake at 100 s */
    pl.wake[1] = WEFT_SEC(50);  /* call 2 (t=10, rung): at 50 s instead */
    pl.nwake = 2;
    ASSERT_OK(weft_doorbell_add(db, plan_proc, &pl));
    ASSERT_OK(weft_doorbell_start(db));
    run_until(s, WEFT_SEC(10));
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    run_until(s, WEFT_SEC(200));
    ASSERT_EQ(pl.calls, 3);
    ASSERT_EQ(pl.at[1], WEFT_SEC(10));
    ASSERT_EQ(pl.at[2], WEFT_SEC(50)); /* not 100 s: replaced */
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

TEST(an_outstanding_wake_up_is_cancelled_when_the_processor_runs)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct plan pl = {0};
    pl.wake[0] = WEFT_SEC(100);
    pl.nwake = 1; /* call 2 asks for nothing */
    ASSERT_OK(weft_doorbell_add(db, plan_proc, &pl));
    ASSERT_OK(weft_doorbell_start(db));
    run_until(s, WEFT_SEC(10));
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    run_until(s, WEFT_SEC(200));
    ASSERT_EQ(pl.calls, 2); /* the 100 s wake-up was cancelled */
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

TEST(a_minimum_delay_is_imposed)
{
    weft_sched *s = new_sched(1);
    struct weft_doorbell_opts o = {0};
    weft_doorbell *db = new_loop(s, NULL);
    struct P p = {0};
    ASSERT_EQ(weft_doorbell_min_delay(db), WEFT_DOORBELL_MIN_DELAY);
    p.wake_rel = WEFT_SEC(1); /* asks for 1 s, gets the 5 s default */
    p.wake_calls = 1;
    ASSERT_OK(weft_doorbell_add(db, pfn, &p));
    ASSERT_OK(weft_doorbell_start(db));
    run_until(s, WEFT_SEC(5) - 1);
    ASSERT_EQ(p.calls, 1);
    run_until(s, WEFT_SEC(20));
    ASSERT_EQ(p.calls, 2);
    ASSERT_EQ(p.at[1], WEFT_SEC(5));

    /* Configurable at run time. */
    ASSERT_OK(weft_doorbell_set_min_delay(db, WEFT_SEC(2)));
    ASSERT_EQ(weft_doorbell_min_delay(db), WEFT_SEC(2));
    p.wake_calls = 3;
    ASSERT_EQ(weft_doorbell_trigger(db), 1); /* call 3 at 20 s */
    run_until(s, WEFT_SEC(40));
    ASSERT_EQ(p.calls, 4);
    ASSERT_EQ(p.at[2], WEFT_SEC(20));
    ASSERT_EQ(p.at[3], WEFT_SEC(22));
    ASSERT_OK(weft_doorbell_free(db));

    /* ... and through the options; counted from the invocation, so a
     * processor that blocked longer than the minimum is not delayed. */
    o.min_delay = WEFT_SEC(3);
    ASSERT_OK(weft_doorbell_new(s, &o, &db));
    memset(&p, 0, sizeof p);
    p.sleep = WEFT_SEC(2);
    p.wake_rel = WEFT_SEC(2) + 1; /* asks for entry + 2 s: gets entry + 3 */
    p.wake_calls = 1;
    ASSERT_OK(weft_doorbell_add(db, pfn, &p));
    ASSERT_OK(weft_doorbell_start(db)); /* call 1 at 40 s */
    run_until(s, WEFT_SEC(60));
    ASSERT_EQ(p.calls, 2);
    ASSERT_EQ(p.at[0], WEFT_SEC(40));
    ASSERT_EQ(p.at[1], WEFT_SEC(43));
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

TEST(a_minimum_delay_counts_from_the_invocation)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct P p = {0};
    p.sleep = WEFT_SEC(6);          /* blocks past the minimum delay */
    p.wake_rel = WEFT_SEC(7);       /* entry + 7 s, in the future */
    p.wake_calls = 1;
    ASSERT_OK(weft_doorbell_add(db, pfn, &p));
    ASSERT_OK(weft_doorbell_start(db));
    run_until(s, WEFT_SEC(30));
    ASSERT_EQ(p.calls, 2);
    ASSERT_EQ(p.at[1], WEFT_SEC(7)); /* not 6 + 5 */
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

TEST(a_wake_up_time_not_in_the_future_is_reported_and_ignored)
{
    weft_sched *s = new_sched(1);
    struct logbook lb = {0};
    weft_doorbell *db = new_loop(s, &lb);
    struct P now = {0}, before = {0}, stale = {0};
    now.wake_rel = 0;
    now.wake_abs = 0;
    ASSERT_OK(weft_doorbell_add(db, pfn, &now));
    ASSERT_OK(weft_doorbell_start(db));
    settle(s); /* t = 0 */
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_EQ(lb.n, 0); /* -1 (none) is not reported */

    run_until(s, WEFT_SEC(100));
    db = new_loop(s, &lb);
    memset(&now, 0, sizeof now);
    now.wake_abs = WEFT_SEC(100);     /* exactly now */
    before.wake_abs = WEFT_SEC(99);   /* in the past */
    stale.sleep = WEFT_SEC(2);        /* future at entry, past at return */
    stale.wake_abs = WEFT_SEC(101);
    ASSERT_OK(weft_doorbell_add(db, pfn, &now));
    ASSERT_OK(weft_doorbell_add(db, pfn2, &before));
    ASSERT_OK(weft_doorbell_add(db, pfn, &stale));
    ASSERT_OK(weft_doorbell_start(db));
    run_until(s, WEFT_SEC(1000));
    ASSERT_EQ(now.calls, 1);
    ASSERT_EQ(before.calls, 1);
    ASSERT_EQ(stale.calls, 1);
    ASSERT_EQ(lb.n, 3);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(lb.rec[i].kind, WEFT_DOORBELL_LOG_PAST);
        ASSERT_EQ(lb.rec[i].err, 0);
        ASSERT_LE(lb.rec[i].when, lb.rec[i].now);
        ASSERT_STR_CONTAINS(lb.rec[i].msg, "not in the future");
        if (lb.rec[i].arg == &now) {
            ASSERT_EQ(lb.rec[i].when, WEFT_SEC(100));
        } else if (lb.rec[i].arg == &before) {
            ASSERT(lb.rec[i].fn == pfn2);
            ASSERT_EQ(lb.rec[i].when, WEFT_SEC(99));
        } else {
            ASSERT_PTR_EQ(lb.rec[i].arg, &stale);
            ASSERT_EQ(lb.rec[i].when, WEFT_SEC(101));
            ASSERT_GE(lb.rec[i].now, WEFT_SEC(102));
        }
    }
    ASSERT_EQ(weft_doorbell_is_quiet(db), 1);
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

static int unix_proc(weft_doorbell *db, void *arg, int64_t *wake_at)
{
    struct plan *pl = arg;
    weft_sched *s = weft_doorbell_sched(db);
    int64_t now = weft_now(s);
    pl->at[pl->calls++] = now;
    if (pl->calls == 1) /* "20 seconds from now", as an epoch time */
        *wake_at = weft_from_unix(s, weft_to_unix(s, now) + WEFT_SEC(20));
    return 0;
}

TEST(wake_up_times_from_unix_time)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct plan pl = {0};
    ASSERT_OK(weft_doorbell_add(db, unix_proc, &pl));
    ASSERT_OK(weft_doorbell_start(db));
    run_until(s, WEFT_SEC(60));
    ASSERT_EQ(pl.calls, 2);
    ASSERT_EQ(pl.at[1], WEFT_SEC(20));
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

TEST(wake_up_runs_are_one_at_a_time)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct P a = {0}, b = {0}, c = {0};
    active = max_active = 0;
    a.wake_abs = b.wake_abs = WEFT_SEC(10);
    a.sleep = b.sleep = WEFT_MSEC(1);
    ASSERT_OK(weft_doorbell_add(db, pfn, &a));
    ASSERT_OK(weft_doorbell_add(db, pfn, &b));
    ASSERT_OK(weft_doorbell_add(db, pfn, &c));
    ASSERT_OK(weft_doorbell_start(db));
    run_until(s, WEFT_SEC(9));
    a.wake_abs = b.wake_abs = 0;
    a.sleep = b.sleep = WEFT_SEC(1);
    run_until(s, WEFT_SEC(30));
    ASSERT_EQ(a.calls, 2);
    ASSERT_EQ(b.calls, 2);
    ASSERT_EQ(c.calls, 1); /* no wake-up asked: not in the wake-up run */
    ASSERT_EQ(max_active, 1);
    /* Both came due at 10 s; the second started when the first ended. */
    int64_t first = a.at[1] < b.at[1] ? a.at[1] : b.at[1];
    int64_t second = a.at[1] < b.at[1] ? b.at[1] : a.at[1];
    ASSERT_EQ(first, WEFT_SEC(10));
    ASSERT_EQ(second, WEFT_SEC(11));
    ASSERT_EQ(weft_doorbell_runs(db), 2);
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

/* buildbot's test_loop.Sleep.test_create: Soon, Later(1.0), SoonAndAgain,
 * Now, with a 1 s minimum delay: Later runs three times, the others
 * twice. */
struct later {
    int calls;
    int64_t wakeup; /* -1 until the first call */
    int64_t delay;
};

static int later_proc(weft_doorbell *db, void *arg, int64_t *wake_at)
{
    struct later *l = arg;
    int64_t now = weft_now(weft_doorbell_sched(db));
    enter();
    if (l->wakeup < 0)
        l->wakeup = now + l->delay;
    ASSERT_OK(weft_yield()); /* returns a Deferred fired "soon" */
    if (weft_now(weft_doorbell_sched(db)) < l->wakeup)
        *wake_at = l->wakeup + WEFT_MSEC(100); /* EPSILON */
    l->calls++;
    leave();
    return 0;
}

static void stop_when_quiet(weft_future *f, void *arg)
{
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_RESOLVED);
    ASSERT_OK(weft_doorbell_stop(arg));
}

TEST(buildbot_sleep_scenario)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct P soon = {0}, again = {0}, now = {0};
    struct later later = {0, -1, WEFT_SEC(1)};
    weft_future *f;
    active = max_active = 0;
    ASSERT_OK(weft_doorbell_set_min_delay(db, WEFT_SEC(1)));
    soon.yields = 1;
    again.yields = 1;
    again.ring_on = 1;
    ASSERT_OK(weft_doorbell_add(db, pfn, &soon));
    ASSERT_OK(weft_doorbell_add(db, later_proc, &later));
    ASSERT_OK(weft_doorbell_add(db, pfn, &again));
    ASSERT_OK(weft_doorbell_add(db, pfn2, &now));
    ASSERT_OK(weft_doorbell_when_quiet(db, &f));
    ASSERT_OK(weft_future_then(f, stop_when_quiet, db));
    ASSERT_OK(weft_doorbell_start(db));
    ASSERT_EQ(weft_run(s), 0); /* until when-quiet stops the loop */
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_RESOLVED);
    ASSERT_EQ(later.calls, 3);
    ASSERT_EQ(soon.calls, 2);
    ASSERT_EQ(again.calls, 2);
    ASSERT_EQ(now.calls, 2);
    ASSERT_EQ(max_active, 1);
    ASSERT_GE(weft_now(s), WEFT_SEC(1) + WEFT_MSEC(100));
    ASSERT_OK(weft_future_release(f));
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * when-quiet, hooks, stop/start, free
 * ---------------------------------------------------------------------- */

struct quiet_probe {
    weft_doorbell *db;
    int64_t runs_at_resolve;
    int64_t time_at_resolve;
    int resolved;
};

static void quiet_cb(weft_future *f, void *arg)
{
    struct quiet_probe *q = arg;
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_RESOLVED);
    ASSERT_NULL(weft_future_value(f));
    q->resolved++;
    q->runs_at_resolve = weft_doorbell_runs(q->db);
    q->time_at_resolve = weft_now(weft_doorbell_sched(q->db));
    ASSERT_EQ(weft_doorbell_is_quiet(q->db), 1);
}

struct quiet_waiter {
    weft_doorbell *db;
    int r;
    int done;
};

static int quiet_waiter_main(void *arg)
{
    struct quiet_waiter *w = arg;
    weft_future *f;
    ASSERT_OK(weft_doorbell_when_quiet(w->db, &f));
    ASSERT_GE(weft_doorbell_trigger(w->db), 0);
    w->r = weft_future_wait(f, -1, NULL);
    w->done = 1;
    ASSERT_OK(weft_future_release(f));
    return 0;
}

TEST(when_quiet_resolves_when_a_run_ends_with_nothing_pending)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct P p = {0};
    struct quiet_probe q = {0};
    struct quiet_waiter w = {0};
    weft_future *f, *g;
    q.db = db;
    p.ring_on = 1;             /* run 1 ends with a ring pending */
    p.wake_rel = WEFT_SEC(10); /* run 2 ends with a wake-up outstanding */
    p.wake_calls = 2;
    ASSERT_OK(weft_doorbell_add(db, pfn, &p));

    ASSERT_OK(weft_doorbell_when_quiet(db, &f));
    ASSERT_OK(weft_future_then(f, quiet_cb, &q));
    settle(s);
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_PENDING);
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(weft_doorbell_runs(db), 2);
    ASSERT_EQ(q.resolved, 0);
    ASSERT_EQ(weft_doorbell_is_quiet(db), 0);
    run_until(s, WEFT_SEC(100));
    ASSERT_EQ(q.resolved, 1);
    ASSERT_EQ(q.runs_at_resolve, 3); /* the wake-up run, at 10 s */
    ASSERT_EQ(q.time_at_resolve, WEFT_SEC(10));
    ASSERT_EQ(p.calls, 3);
    ASSERT_OK(weft_future_release(f));

    /* On an idle loop it waits for the next run (buildbot). */
    ASSERT_EQ(weft_doorbell_is_quiet(db), 1);
    ASSERT_OK(weft_doorbell_when_quiet(db, &g));
    run_until(s, WEFT_SEC(200));
    ASSERT_EQ(weft_future_state(g), WEFT_FUTURE_PENDING);
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    settle(s);
    ASSERT_EQ(weft_future_state(g), WEFT_FUTURE_RESOLVED);
    ASSERT_OK(weft_future_release(g));

    /* A coroutine waits on it. */
    w.db = db;
    ASSERT_OK(weft_spawn(s, quiet_waiter_main, &w, NULL, NULL));
    settle(s);
    ASSERT_EQ(w.done, 1);
    ASSERT_EQ(w.r, 0);

    /* Freeing the loop fails the futures still pending. */
    ASSERT_OK(weft_doorbell_when_quiet(db, &g));
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_EQ(weft_future_state(g), WEFT_FUTURE_FAILED);
    ASSERT_EQ(weft_future_error(g), -ECANCELED);
    ASSERT_OK(weft_future_release(g));
    ASSERT_OK(weft_sched_free(s));
}

static void free_in_cb(weft_future *f, void *arg)
{
    weft_doorbell **pdb = arg;
    (void)f;
    ASSERT_OK(weft_doorbell_free(*pdb));
    *pdb = NULL;
}

TEST(a_when_quiet_callback_may_free_the_loop)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct P p = {0};
    weft_future *f;
    ASSERT_OK(weft_doorbell_add(db, pfn, &p));
    ASSERT_OK(weft_doorbell_when_quiet(db, &f));
    ASSERT_OK(weft_future_then(f, free_in_cb, &db));
    ASSERT_OK(weft_future_release(f)); /* the loop holds its own */
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_NULL(db);
    ASSERT_EQ(p.calls, 1);
    ASSERT_EQ(weft_sched_count(s), 0);
    ASSERT_OK(weft_sched_free(s));
}

struct hooks {
    int runs, dones;
    weft_doorbell *free_me;
};

static void count_run(weft_doorbell *db, void *arg)
{
    struct hooks *h = arg;
    (void)db;
    h->runs++;
}

static void count_done(weft_doorbell *db, void *arg)
{
    struct hooks *h = arg;
    h->dones++;
    if (h->free_me == db)
        ASSERT_OK(weft_doorbell_free(db));
}

TEST(on_run_and_on_done_hooks)
{
    weft_sched *s = new_sched(1);
    struct weft_doorbell_opts o = {0};
    struct hooks h = {0};
    weft_doorbell *db;
    struct P soon = {0}, again = {0}, now = {0};
    o.on_run = count_run;
    o.on_done = count_done;
    o.hook_arg = &h;
    ASSERT_OK(weft_doorbell_new(s, &o, &db));
    soon.yields = 1;
    again.yields = 1;
    again.ring_on = 1;
    ASSERT_OK(weft_doorbell_add(db, pfn, &soon));
    ASSERT_OK(weft_doorbell_add(db, pfn, &again));
    ASSERT_OK(weft_doorbell_add(db, pfn2, &now));
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    /* buildbot's test_done: two runs, loop_done once. */
    ASSERT_EQ(h.runs, 2);
    ASSERT_EQ(h.dones, 1);
    ASSERT_EQ(soon.calls, 2);
    ASSERT_EQ(now.calls, 2);
    /* on_done may free the loop. */
    h.free_me = db;
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    settle(s);
    ASSERT_EQ(h.dones, 2);
    ASSERT_EQ(soon.calls, 3);
    ASSERT_EQ(weft_sched_count(s), 0);
    ASSERT_OK(weft_sched_free(s));
}

TEST(stop_and_start)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct P a = {0}, b = {0};
    /* Each stops the loop: whichever runs first, the other does not. */
    a.stop_on = 1;
    b.stop_on = 1;
    ASSERT_OK(weft_doorbell_add(db, pfn, &a));
    ASSERT_OK(weft_doorbell_add(db, pfn2, &b));
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(a.calls + b.calls, 1);
    ASSERT_EQ(weft_doorbell_started(db), 0);
    ASSERT_EQ(weft_doorbell_is_quiet(db), 1);

    /* Stopped: rings and wake-ups are ignored until start. */
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.wake_rel = WEFT_SEC(10);
    a.wake_calls = 1;
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(a.calls, 1);
    ASSERT_EQ(b.calls, 1);
    ASSERT_OK(weft_doorbell_stop(db));
    ASSERT_GE(weft_doorbell_trigger(db), 0);
    run_until(s, WEFT_SEC(60));
    ASSERT_EQ(a.calls, 1);
    ASSERT_EQ(b.calls, 1);
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(a.calls, 2);
    ASSERT_EQ(b.calls, 2);

    /* A run scheduled but not begun is dropped by stop. */
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    ASSERT_GE(weft_run_once(s, 0), 0); /* reads the ring, spawns the run */
    ASSERT_EQ(weft_sched_count(s), 1);
    ASSERT_OK(weft_doorbell_stop(db));
    ASSERT_EQ(weft_sched_count(s), 0);
    settle(s);
    ASSERT_EQ(a.calls, 2);

    /* A stopped loop does not keep weft_run going. */
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

TEST(free_is_refused_while_a_run_is_in_progress)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct P p = {0}, q = {0};
    p.try_free = 1;
    ASSERT_OK(weft_doorbell_add(db, pfn, &p));
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(p.free_r, -EBUSY); /* from its own processor */
    ASSERT_OK(weft_doorbell_remove(db, pfn, &p));

    q.sleep = WEFT_SEC(1);
    ASSERT_OK(weft_doorbell_add(db, pfn, &q));
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    settle(s); /* q is asleep in the run */
    ASSERT_EQ(q.calls, 1);
    ASSERT_EQ(weft_doorbell_is_quiet(db), 0);
    ASSERT_ERR(weft_doorbell_free(db), -EBUSY);
    ASSERT_OK(weft_doorbell_stop(db));
    ASSERT_ERR(weft_doorbell_free(db), -EBUSY);
    run_until(s, WEFT_SEC(2));
    ASSERT_EQ(weft_doorbell_is_quiet(db), 1);
    ASSERT_OK(weft_doorbell_free(db));

    /* A run scheduled but not begun does not hold the free. */
    db = new_loop(s, NULL);
    ASSERT_OK(weft_doorbell_add(db, pfn, &q));
    ASSERT_OK(weft_doorbell_start(db)); /* spawns the run */
    ASSERT_EQ(weft_sched_count(s), 1);
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_EQ(weft_sched_count(s), 0);
    ASSERT_EQ(q.calls, 1);
    settle(s);
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Delegate and services forms
 * ---------------------------------------------------------------------- */

struct deleg {
    struct P *ps;
    int n;
    int calls;
    int dup_r;
    int fail;
    int skip; /* leave ps[skip] out (-1: none) */
};

static int delegate_fn(weft_doorbell *db, void *arg)
{
    struct deleg *d = arg;
    d->calls++;
    for (int i = 0; i < d->n; i++) {
        if (i == d->skip)
            continue;
        ASSERT_GE(weft_doorbell_offer(db, pfn, &d->ps[i]), 0);
        if (d->fail && i == 0)
            return -EIO; /* the rest is left out */
    }
    if (d->n > 0)
        d->dup_r = weft_doorbell_offer(db, pfn, &d->ps[0]); /* again */
    return 0;
}

TEST(delegate_form)
{
    weft_sched *s = new_sched(1);
    struct weft_doorbell_opts o = {0};
    struct logbook lb = {0};
    struct P ps[4];
    struct deleg d = {0};
    weft_doorbell *db;
    weft_future *f;
    memset(ps, 0, sizeof ps);
    active = max_active = 0;
    /* buildbot's test_delegate: Soon, Soon, SoonAndAgain, Now. */
    ps[0].yields = ps[1].yields = ps[2].yields = 1;
    ps[2].ring_on = 1;
    d.ps = ps;
    d.n = 4;
    d.skip = -1;
    o.log = log_fn;
    o.log_arg = &lb;
    ASSERT_OK(weft_doorbell_new_delegate(s, &o, delegate_fn, &d, &db));
    ASSERT_OK(weft_doorbell_when_quiet(db, &f));
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_RESOLVED);
    ASSERT_OK(weft_future_release(f));
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(ps[i].calls, 2);
    ASSERT_EQ(d.calls, 2); /* asked at every run */
    ASSERT_EQ(d.dup_r, 1); /* offered twice, kept once */
    ASSERT_EQ(max_active, 1);
    ASSERT_ERR(weft_doorbell_offer(db, pfn, &ps[0]), -EINVAL);

    /* The set is asked for again at each run: left out, not run; its
     * wake-up is dropped too. */
    ps[3].wake_rel = WEFT_SEC(10);
    ps[3].wake_calls = 3;
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    settle(s);
    ASSERT_EQ(ps[3].calls, 3);
    d.skip = 3;
    run_until(s, WEFT_SEC(60));
    ASSERT_EQ(d.calls, 4); /* the wake-up run asked the delegate */
    ASSERT_EQ(ps[3].calls, 3);
    ASSERT_EQ(ps[0].calls, 3); /* a wake-up run: only the due ones */

    /* A failing delegate is logged; the run uses what it offered. */
    d.fail = 1;
    d.skip = -1;
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    settle(s);
    ASSERT_EQ(ps[0].calls, 4);
    ASSERT_EQ(ps[1].calls, 3);
    ASSERT_EQ(lb.n, 1);
    ASSERT_EQ(lb.rec[0].kind, WEFT_DOORBELL_LOG_DELEGATE);
    ASSERT_EQ(lb.rec[0].err, -EIO);
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

struct svcstate {
    int starts, stops;
    int order; /* stamp of the last start/stop */
};
static int svc_clock;

/* A service: its processor state (first, so that pfn sees a struct P)
 * and its start/stop counts. */
struct child {
    struct P p;
    struct svcstate st;
};

static void svc_start(weft_doorbell *db, void *arg)
{
    struct child *c = arg;
    (void)db;
    c->st.starts++;
    c->st.order = ++svc_clock;
}

static void svc_stop(weft_doorbell *db, void *arg)
{
    struct child *c = arg;
    (void)db;
    c->st.stops++;
    c->st.order = ++svc_clock;
}

TEST(services_form)
{
    weft_sched *s = new_sched(1);
    struct logbook lb = {0};
    struct weft_doorbell_opts o = {0};
    struct child c[5];
    const char *names[5] = {"soon1", "soon2", "again", "now", "late"};
    struct weft_doorbell_service sv;
    weft_doorbell *db;
    weft_future *f;
    memset(c, 0, sizeof c);
    svc_clock = 0;
    active = max_active = 0;
    o.log = log_fn;
    o.log_arg = &lb;
    ASSERT_OK(weft_doorbell_new_services(s, &o, &db));
    c[0].p.yields = c[1].p.yields = c[2].p.yields = 1;
    c[2].p.ring_on = 1;
    for (int i = 0; i < 4; i++) {
        memset(&sv, 0, sizeof sv);
        sv.name = names[i];
        sv.run = pfn;
        sv.start = svc_start;
        sv.stop = svc_stop;
        sv.arg = &c[i];
        ASSERT_OK(weft_doorbell_service_add(db, &sv));
        ASSERT_EQ(weft_doorbell_service_running(db, names[i]), 0);
    }
    /* buildbot's Service.test_create. */
    ASSERT_OK(weft_doorbell_when_quiet(db, &f));
    ASSERT_OK(weft_doorbell_start(db));
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(weft_doorbell_service_running(db, names[i]), 1);
        ASSERT_EQ(c[i].st.starts, 1);
        ASSERT_EQ(c[i].st.order, i + 1); /* started in order */
    }
    ASSERT_EQ(weft_doorbell_trigger(db), 0); /* merged with the start */
    settle(s);
    ASSERT_EQ(weft_future_state(f), WEFT_FUTURE_RESOLVED);
    ASSERT_OK(weft_future_release(f));
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(c[i].p.calls, 2);
    ASSERT_EQ(max_active, 1);

    /* Added to a started loop: started at once, runs from the next run. */
    memset(&sv, 0, sizeof sv);
    sv.name = names[4];
    sv.run = pfn2;
    sv.start = svc_start;
    sv.stop = svc_stop;
    sv.arg = &c[4];
    ASSERT_OK(weft_doorbell_service_add(db, &sv));
    ASSERT_EQ(c[4].st.starts, 1);
    ASSERT_EQ(weft_doorbell_service_running(db, "late"), 1);
    ASSERT_EQ(c[4].p.calls, 0);
    c[2].p.ring_on = 0;
    c[4].p.ret = -EPERM;
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    settle(s);
    ASSERT_EQ(c[4].p.calls, 1);
    ASSERT_EQ(c[0].p.calls, 3);
    /* Its failure names the service. */
    ASSERT_EQ(lb.n, 1);
    ASSERT_STR_EQ(lb.rec[0].name, "late");
    ASSERT_STR_CONTAINS(lb.rec[0].msg, "service 'late' failed");

    /* Removed: stopped at once, not run again. */
    ASSERT_OK(weft_doorbell_service_remove(db, "soon2"));
    ASSERT_EQ(c[1].st.stops, 1);
    ASSERT_ERR(weft_doorbell_service_running(db, "soon2"), -ENOENT);
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    settle(s);
    ASSERT_EQ(c[1].p.calls, 3);
    ASSERT_EQ(c[0].p.calls, 4);

    /* The loop stops its services in reverse order. */
    svc_clock = 0;
    ASSERT_OK(weft_doorbell_stop(db));
    ASSERT_EQ(c[4].st.order, 1);
    ASSERT_EQ(c[3].st.order, 2);
    ASSERT_EQ(c[2].st.order, 3);
    ASSERT_EQ(c[0].st.order, 4);
    ASSERT_EQ(weft_doorbell_service_running(db, "soon1"), 0);
    /* Started again: the hooks again, and a full run. */
    ASSERT_OK(weft_doorbell_start(db));
    ASSERT_EQ(c[0].st.starts, 2);
    settle(s);
    ASSERT_EQ(c[0].p.calls, 5);
    /* Freeing a started loop stops its services. */
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_EQ(c[0].st.stops, 2);
    ASSERT_EQ(c[4].st.stops, 2);
    ASSERT_EQ(c[1].st.stops, 1);
    ASSERT_OK(weft_sched_free(s));
}

TEST(services_sharing_a_processor_make_one)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db;
    struct P p = {0};
    struct weft_doorbell_service sv = {0};
    ASSERT_OK(weft_doorbell_new_services(s, NULL, &db));
    sv.run = pfn;
    sv.arg = &p;
    sv.name = "one";
    ASSERT_OK(weft_doorbell_service_add(db, &sv));
    sv.name = "two";
    ASSERT_OK(weft_doorbell_service_add(db, &sv));
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(p.calls, 1);
    ASSERT_OK(weft_doorbell_service_remove(db, "one"));
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    settle(s);
    ASSERT_EQ(p.calls, 2); /* still "two"'s */
    ASSERT_OK(weft_doorbell_service_remove(db, "two"));
    ASSERT_EQ(weft_doorbell_trigger(db), 1);
    settle(s);
    ASSERT_EQ(p.calls, 2);
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * The named doorbell
 * ---------------------------------------------------------------------- */

static void ring_child(void *arg)
{
    const char *path = arg;
    for (int i = 0; i < 3; i++) {
        int r = weft_doorbell_ring_path(path);
        if (r != 0)
            _exit(-r);
    }
}

TEST(named_doorbell_rung_from_another_process)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct P p = {0};
    struct tmp t;
    struct stat st;
    tmp_make(&t);
    ASSERT_OK(weft_doorbell_add(db, pfn, &p));
    ASSERT_OK(weft_doorbell_bind(db, t.path, 0));
    ASSERT_STR_EQ(weft_doorbell_path(db), t.path);
    ASSERT_OK(lstat(t.path, &st));
    ASSERT(S_ISSOCK(st.st_mode));
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(p.calls, 1);
    /* A child process rings three times before the loop looks: one run. */
    int wst = weft_test_fork(ring_child, t.path, NULL, 0);
    ASSERT(WIFEXITED(wst));
    ASSERT_EQ(WEXITSTATUS(wst), 0);
    settle(s);
    ASSERT_EQ(p.calls, 2);
    ASSERT_EQ(weft_doorbell_runs(db), 2);
    /* Rung while stopped: held until start (whose full run answers it). */
    ASSERT_OK(weft_doorbell_stop(db));
    ASSERT_OK(weft_doorbell_ring_path(t.path));
    settle(s);
    ASSERT_EQ(p.calls, 2);
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(p.calls, 3);
    settle(s);
    ASSERT_EQ(p.calls, 3);
    /* Freeing the loop removes the path. */
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_ERR(lstat(t.path, &st), -1);
    ASSERT_EQ(errno, ENOENT);
    tmp_clean(&t, NULL);
    ASSERT_OK(weft_sched_free(s));
}

#ifdef WEFT_RING_TOOL
struct tool_args {
    const char *a1, *a2;
};

static void tool_child(void *arg)
{
    struct tool_args *ta = arg;
    char *argv[4];
    argv[0] = (char *)"weft-ring";
    argv[1] = (char *)ta->a1;
    argv[2] = (char *)ta->a2;
    argv[3] = NULL;
    execv(WEFT_RING_TOOL, argv);
    _exit(errno == ENOEXEC ? 126 : 127);
}

static int run_tool(const char *a1, const char *a2, char *out, size_t size)
{
    struct tool_args ta = {a1, a2};
    int st = weft_test_fork(tool_child, &ta, out, size);
    ASSERT(WIFEXITED(st));
    return WEXITSTATUS(st);
}
#endif

TEST(the_weft_ring_tool_rings_a_named_doorbell)
{
#ifndef WEFT_RING_TOOL
    SKIP("WEFT_RING_TOOL not defined (built without CMake?)");
#else
    char out[1024], stale[256];
    /* Cross-built tests under qemu-user cannot exec a foreign binary. */
    if (run_tool("--version", NULL, out, sizeof out) == 126)
        SKIP("cannot execute the weft-ring program here");
    ASSERT_STR_CONTAINS(out, "weft-ring (weft ");
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct P p = {0};
    struct tmp t;
    tmp_make(&t);
    ASSERT_OK(weft_doorbell_add(db, pfn, &p));
    ASSERT_OK(weft_doorbell_bind(db, t.path, 0600));
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(p.calls, 1);
    ASSERT_EQ(run_tool(t.path, NULL, out, sizeof out), 0);
    ASSERT_STR_EQ(out, "");
    settle(s);
    ASSERT_EQ(p.calls, 2);
    /* Errors: exit 1 with a message; usage: exit 2. */
    snprintf(stale, sizeof stale, "%s/stale", t.dir);
    make_stale(stale);
    ASSERT_EQ(run_tool(stale, NULL, out, sizeof out), 1);
    ASSERT_STR_CONTAINS(out, "stale");
    ASSERT_STR_CONTAINS(out, "refused");
    ASSERT_EQ(run_tool("-q", stale, out, sizeof out), 1);
    ASSERT_STR_EQ(out, "");
    ASSERT_EQ(run_tool("/nonexistent/weft/bell", NULL, out, sizeof out), 1);
    ASSERT_STR_CONTAINS(out, "No such file");
    ASSERT_EQ(run_tool(NULL, NULL, out, sizeof out), 2);
    ASSERT_STR_CONTAINS(out, "usage");
    ASSERT_EQ(run_tool("-x", t.path, out, sizeof out), 2);
    ASSERT_EQ(run_tool("--help", NULL, out, sizeof out), 0);
    ASSERT_STR_CONTAINS(out, "usage");
    settle(s);
    ASSERT_EQ(p.calls, 2); /* none of those rang */
    ASSERT_OK(weft_doorbell_free(db));
    tmp_clean(&t, "stale");
    ASSERT_OK(weft_sched_free(s));
#endif
}

TEST(named_doorbell_replaces_a_stale_path_and_guards_live_ones)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL), *db2 = new_loop(s, NULL);
    struct P p = {0};
    struct tmp t;
    struct stat st;
    char file[256], missing[256];
    int fd;
    tmp_make(&t);
    ASSERT_OK(weft_doorbell_add(db, pfn, &p));
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);

    /* A socket file left by a process that died. */
    make_stale(t.path);
    ASSERT_ERR(weft_doorbell_ring_path(t.path), -ECONNREFUSED);
    ASSERT_OK(weft_doorbell_bind(db, t.path, 0));
    ASSERT_OK(weft_doorbell_ring_path(t.path));
    settle(s);
    ASSERT_EQ(p.calls, 2);
    ASSERT_ERR(weft_doorbell_bind(db, t.path, 0), -EALREADY);

    /* A live doorbell is not taken over. */
    ASSERT_ERR(weft_doorbell_bind(db2, t.path, 0), -EADDRINUSE);
    ASSERT_OK(weft_doorbell_ring_path(t.path));
    settle(s);
    ASSERT_EQ(p.calls, 3);

    /* What is not a socket is never removed. */
    snprintf(file, sizeof file, "%s/file", t.dir);
    fd = open(file, O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_OK(close(fd));
    ASSERT_ERR(weft_doorbell_bind(db2, file, 0), -EEXIST);
    ASSERT_OK(lstat(file, &st));
    ASSERT(S_ISREG(st.st_mode));
    ASSERT_ERR(weft_doorbell_ring_path(file), -ECONNREFUSED);
    snprintf(missing, sizeof missing, "%s/no/such/dir", t.dir);
    ASSERT_ERR(weft_doorbell_bind(db2, missing, 0), -ENOENT);
    ASSERT_ERR(weft_doorbell_ring_path(missing), -ENOENT);

    /* Unbind removes the path; rebinding works. */
    ASSERT_OK(weft_doorbell_unbind(db));
    ASSERT_NULL(weft_doorbell_path(db));
    ASSERT_ERR(weft_doorbell_ring_path(t.path), -ENOENT);
    ASSERT_ERR(weft_doorbell_unbind(db), -ENOENT);
    ASSERT_OK(weft_doorbell_bind(db, t.path, 0));
    /* ... but only if the path is still ours. */
    ASSERT_OK(unlink(t.path));
    ASSERT_OK(rename(file, t.path));
    ASSERT_OK(weft_doorbell_unbind(db));
    ASSERT_OK(lstat(t.path, &st));
    ASSERT(S_ISREG(st.st_mode));
    ASSERT_OK(unlink(t.path));

    /* The second loop may bind once the path is free. */
    ASSERT_OK(weft_doorbell_bind(db2, t.path, 0));
    ASSERT_OK(weft_doorbell_free(db2));
    ASSERT_OK(weft_doorbell_free(db));
    tmp_clean(&t, NULL);
    ASSERT_OK(weft_sched_free(s));
}

static void ring_as_nobody(void *arg)
{
    const char *path = arg;
    if (setgid(65534) != 0 || setuid(65534) != 0)
        _exit(100);
    _exit(-weft_doorbell_ring_path(path));
}

TEST(named_doorbell_permissions)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = new_loop(s, NULL);
    struct tmp t;
    struct stat st;
    mode_t old = umask(077);
    tmp_make(&t);
    /* Default 0600, whatever the umask. */
    ASSERT_OK(weft_doorbell_bind(db, t.path, 0));
    ASSERT_OK(lstat(t.path, &st));
    ASSERT_EQ(st.st_mode & 0777, 0600);
    ASSERT_OK(weft_doorbell_unbind(db));
    umask(0);
    ASSERT_OK(weft_doorbell_bind(db, t.path, 0640));
    ASSERT_OK(lstat(t.path, &st));
    ASSERT_EQ(st.st_mode & 0777, 0640);
    ASSERT_OK(weft_doorbell_unbind(db));
    umask(022);
    ASSERT_OK(weft_doorbell_bind(db, t.path, 0666));
    ASSERT_OK(lstat(t.path, &st));
    ASSERT_EQ(st.st_mode & 0777, 0666);
    umask(old);
    if (geteuid() == 0) {
        /* Root bypasses the check: ring as "nobody" from a child. */
        int r = weft_test_fork(ring_as_nobody, t.path, NULL, 0);
        ASSERT(WIFEXITED(r));
        if (WEXITSTATUS(r) != 100) /* 100: could not become nobody */
            ASSERT_EQ(WEXITSTATUS(r), 0); /* 0666: anyone may ring */
        ASSERT_OK(weft_doorbell_unbind(db));
        ASSERT_OK(weft_doorbell_bind(db, t.path, 0600));
        r = weft_test_fork(ring_as_nobody, t.path, NULL, 0);
        ASSERT(WIFEXITED(r));
        if (WEXITSTATUS(r) != 100) /* 100: could not become nobody */
            ASSERT_EQ(WEXITSTATUS(r), EACCES);
    } else {
        ASSERT_OK(weft_doorbell_unbind(db));
        ASSERT_OK(weft_doorbell_bind(db, t.path, 0400)); /* no write */
        ASSERT_ERR(weft_doorbell_ring_path(t.path), -EACCES);
    }
    ASSERT_OK(weft_doorbell_free(db));
    tmp_clean(&t, NULL);
    ASSERT_OK(weft_sched_free(s));
}

TEST(ring_path_errors_keep_errno)
{
    struct tmp t;
    struct sockaddr_un a;
    int fd;
    tmp_make(&t);
    /* A stream socket at the path: not a doorbell. */
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    fill_addr(&a, t.path);
    ASSERT_OK(bind(fd, (struct sockaddr *)&a, sizeof a));
    ASSERT_OK(listen(fd, 1));
    errno = 1234;
    ASSERT_ERR(weft_doorbell_ring_path(t.path), -EPROTOTYPE);
    ASSERT_EQ(errno, 1234);
    {
        weft_sched *s = new_sched(1);
        weft_doorbell *db = new_loop(s, NULL);
        ASSERT_ERR(weft_doorbell_bind(db, t.path, 0), -EADDRINUSE);
        ASSERT_OK(weft_doorbell_free(db));
        ASSERT_OK(weft_sched_free(s));
    }
    ASSERT_OK(close(fd));
    errno = 4321;
    ASSERT_ERR(weft_doorbell_ring_path(t.path), -ECONNREFUSED);
    ASSERT_EQ(errno, 4321);
    tmp_clean(&t, NULL);
}

/* ----------------------------------------------------------------------
 * Allocation failures
 * ---------------------------------------------------------------------- */

TEST(allocation_failures)
{
    weft_sched *s = new_sched(1);
    weft_doorbell *db = NULL;
    struct P ps[9];
    weft_future *f;
    struct tmp t;
    struct stat st;
    long n;
    int r;
    memset(ps, 0, sizeof ps);
    settle(s);

    /* Every allocation of each constructor fails in turn. */
    for (n = 0;; n++) {
        weft__test_fail_alloc(n, 0);
        r = weft_doorbell_new(s, NULL, &db);
        weft__test_fail_alloc(-1, 0);
        if (r == 0)
            break;
        ASSERT_ERR(r, -ENOMEM);
        ASSERT_NULL(db);
    }
    ASSERT_GE(n, 2);
    ASSERT_OK(weft_doorbell_free(db));
    for (n = 0;; n++) {
        weft__test_fail_alloc(n, 0);
        r = weft_doorbell_new_delegate(s, NULL, dummy_delegate, NULL, &db);
        weft__test_fail_alloc(-1, 0);
        if (r == 0)
            break;
        ASSERT_ERR(r, -ENOMEM);
    }
    ASSERT_OK(weft_doorbell_free(db));
    for (n = 0;; n++) {
        weft__test_fail_alloc(n, 0);
        r = weft_doorbell_new_services(s, NULL, &db);
        weft__test_fail_alloc(-1, 0);
        if (r == 0)
            break;
        ASSERT_ERR(r, -ENOMEM);
    }
    /* service_add: each of its allocations. */
    for (n = 0;; n++) {
        struct weft_doorbell_service sv = {0};
        sv.name = "svc";
        sv.run = pfn;
        sv.arg = &ps[0];
        weft__test_fail_alloc(n, 0);
        r = weft_doorbell_service_add(db, &sv);
        weft__test_fail_alloc(-1, 0);
        if (r == 0)
            break;
        ASSERT_ERR(r, -ENOMEM);
        ASSERT_ERR(weft_doorbell_service_running(db, "svc"), -ENOENT);
    }
    ASSERT_OK(weft_doorbell_start(db));
    settle(s);
    ASSERT_EQ(ps[0].calls, 1);
    ASSERT_OK(weft_doorbell_free(db));

    /* add: the processor table cannot grow. */
    db = new_loop(s, NULL);
    weft__test_fail_alloc(0, 0);
    ASSERT_ERR(weft_doorbell_add(db, pfn, &ps[0]), -ENOMEM);
    ASSERT_ERR(weft_doorbell_remove(db, pfn, &ps[0]), -ENOENT);
    for (int i = 0; i < 8; i++)
        ASSERT_OK(weft_doorbell_add(db, pfn, &ps[i]));
    weft__test_fail_alloc(0, 0);
    ASSERT_ERR(weft_doorbell_add(db, pfn, &ps[8]), -ENOMEM);
    ASSERT_OK(weft_doorbell_add(db, pfn, &ps[8]));

    /* when_quiet. */
    for (n = 0;; n++) {
        weft__test_fail_alloc(n, 0);
        r = weft_doorbell_when_quiet(db, &f);
        weft__test_fail_alloc(-1, 0);
        if (r == 0)
            break;
        ASSERT_ERR(r, -ENOMEM);
        ASSERT_NULL(f);
    }
    ASSERT_OK(weft_future_release(f));

    /* bind: nothing is left at the path after a failure. */
    tmp_make(&t);
    for (n = 0;; n++) {
        weft__test_fail_alloc(n, 0);
        r = weft_doorbell_bind(db, t.path, 0);
        weft__test_fail_alloc(-1, 0);
        if (r == 0)
            break;
        ASSERT_ERR(r, -ENOMEM);
        ASSERT_ERR(lstat(t.path, &st), -1);
    }
    ASSERT_OK(weft_doorbell_free(db)); /* fails f with -ECANCELED */
    tmp_clean(&t, NULL);
    ASSERT_OK(weft_sched_free(s));
}

static void noop_timer(weft_timer *t, void *arg)
{
    (void)t;
    (void)arg;
}

TEST(a_run_that_cannot_start_is_retried)
{
    struct weft_sched_opts so = {0};
    struct logbook lb = {0};
    weft_sched *s;
    weft_doorbell *db;
    weft_timer *warm;
    struct P p = {0};
    so.clock = WEFT_CLOCK_MANUAL;
    so.backend = WEFT_BACKEND_EPOLL;
    ASSERT_OK(weft_sched_new(&so, &s));
    db = new_loop(s, &lb);
    ASSERT_OK(weft_doorbell_add(db, pfn, &p));
    /* Give the timer heap room first, so that only the spawn fails. */
    ASSERT_OK(weft_timer_new(s, noop_timer, NULL, &warm));
    ASSERT_OK(weft_timer_start(warm, WEFT_SEC(1000), 0));
    ASSERT_OK(weft_timer_stop(warm));
    ASSERT_OK(weft_timer_free(warm));
    /* No memory for the run's coroutine (its stack is the first one of
     * this scheduler, so it must be mapped). */
    weft__test_fail_alloc(0, 1);
    ASSERT_OK(weft_doorbell_start(db));
    weft__test_fail_alloc(-1, 0);
    ASSERT_EQ(p.calls, 0);
    ASSERT_EQ(lb.n, 1);
    ASSERT_EQ(lb.rec[0].kind, WEFT_DOORBELL_LOG_RUN);
    ASSERT_EQ(lb.rec[0].err, -ENOMEM);
    ASSERT_EQ(weft_doorbell_is_quiet(db), 0);
    run_until(s, WEFT_MSEC(100));
    ASSERT_EQ(p.calls, 1);
    ASSERT_EQ(weft_doorbell_is_quiet(db), 1);
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Stress: four threads ring 10,000 times each while the loop runs.
 * ---------------------------------------------------------------------- */

#define NTHREADS 4
#define NRINGS 10000

static atomic_int stress_seq;
static atomic_int stress_finished;
static atomic_int stress_go; /* the loop has begun its first run */
static int stress_last_ring[NTHREADS];
static int stress_last_run; /* loop thread only */
static int stress_runs_seen;

struct stress_thread {
    weft_doorbell *db;
    int idx;
    int bad;
};

static void *stress_ringer(void *arg)
{
    struct stress_thread *st = arg;
    struct timespec pause = {0, 20000};
    while (!atomic_load(&stress_go))
        sched_yield();
    for (int i = 0; i < NRINGS; i++) {
        /* Stamped before the ring: a processor that stamps later ran
         * after the ring was made (when a run collects the ring before
         * this thread could stamp it after the trigger, an after-stamp
         * would wrongly look unanswered). */
        stress_last_ring[st->idx] = atomic_fetch_add(&stress_seq, 1) + 1;
        if (weft_doorbell_trigger(st->db) < 0)
            st->bad++;
        if (i % 64 == 63)
            nanosleep(&pause, NULL); /* spread the rings over many runs */
    }
    atomic_fetch_add(&stress_finished, 1);
    return NULL;
}

static void stress_on_run(weft_doorbell *db, void *arg)
{
    (void)db;
    (void)arg;
    stress_runs_seen++;
    atomic_store(&stress_go, 1);
}

static int stress_proc(weft_doorbell *db, void *arg, int64_t *wake_at)
{
    int *calls = arg;
    (void)db;
    (void)wake_at;
    /* Stamped once the run has collected its rings. */
    stress_last_run = atomic_fetch_add(&stress_seq, 1) + 1;
    ++*calls;
    ASSERT_OK(weft_yield()); /* let rings land during runs */
    ASSERT_OK(weft_sleep_for(WEFT_USEC(20)));
    return 0;
}

static int stress_watch(void *arg)
{
    weft_doorbell *db = arg;
    while (atomic_load(&stress_finished) < NTHREADS)
        ASSERT_OK(weft_sleep_for(WEFT_MSEC(1)));
    /* Every ring is made; wait for a run that ends with none pending. */
    while (weft_doorbell_is_quiet(db) != 1) {
        weft_future *f;
        ASSERT_OK(weft_doorbell_when_quiet(db, &f));
        ASSERT_OK(weft_future_wait(f, weft_now(NULL) + WEFT_SEC(20), NULL));
        ASSERT_OK(weft_future_release(f));
    }
    ASSERT_OK(weft_doorbell_stop(db));
    return 0;
}

TEST(stress_four_threads_ring_while_the_loop_runs)
{
    weft_sched *s = new_sched(0);
    struct weft_doorbell_opts o = {0};
    struct stress_thread st[NTHREADS];
    pthread_t th[NTHREADS];
    weft_doorbell *db;
    int calls = 0;
    atomic_store(&stress_seq, 0);
    atomic_store(&stress_finished, 0);
    atomic_store(&stress_go, 0);
    stress_last_run = 0;
    stress_runs_seen = 0;
    o.on_run = stress_on_run;
    ASSERT_OK(weft_doorbell_new(s, &o, &db));
    ASSERT_OK(weft_doorbell_add(db, stress_proc, &calls));
    ASSERT_OK(weft_doorbell_start(db));
    ASSERT_OK(weft_spawn(s, stress_watch, db, NULL, NULL));
    for (int i = 0; i < NTHREADS; i++) {
        st[i].db = db;
        st[i].idx = i;
        st[i].bad = 0;
        ASSERT_OK(pthread_create(&th[i], NULL, stress_ringer, &st[i]));
    }
    ASSERT_EQ(weft_run(s), 0);
    for (int i = 0; i < NTHREADS; i++) {
        ASSERT_OK(pthread_join(th[i], NULL));
        ASSERT_EQ(st[i].bad, 0);
        /* The last ring of every thread was followed by a run whose
         * processor ran after it. */
        ASSERT_GT(stress_last_run, stress_last_ring[i]);
    }
    ASSERT_EQ(calls, weft_doorbell_runs(db));
    ASSERT_EQ(stress_runs_seen, weft_doorbell_runs(db));
    ASSERT_GE(calls, 2);
    ASSERT_LT(calls, NTHREADS * NRINGS); /* rings coalesced */
    if (getenv("WEFT_TEST_VERBOSE"))
        printf("stress: %d runs for %d rings\n", calls, NTHREADS * NRINGS);
    ASSERT_OK(weft_doorbell_free(db));
    ASSERT_OK(weft_sched_free(s));
}
