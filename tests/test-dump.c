/*
 * test-dump.c - weft_dump(): the list of coroutines with what each waits
 * on (every kind of wait), the deadlock report, and its errors.
 *
 * Every case compares the whole output with the exact expected text,
 * built here from the ids and addresses the case knows.  A manual clock
 * keeps the times exact.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends.h"
#include "internal.h"
#include "test.h"

/* ----------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */

static weft_sched *new_sched(int backend, int manual)
{
    struct weft_sched_opts o;
    memset(&o, 0, sizeof o);
    o.clock = manual ? WEFT_CLOCK_MANUAL : WEFT_CLOCK_MONOTONIC;
    o.backend = backend;
    weft_sched *s = NULL;
    ASSERT_OK(weft_sched_new(&o, &s));
    return s;
}

static weft_sched *new_manual(void)
{
    return new_sched(WEFT_BACKEND_AUTO, 1);
}

/* A growing expected text. */
struct text {
    char buf[8192];
    size_t n;
};

WEFT_TEST_PRINTF_(2, 3)
static void add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->n, sizeof t->buf - t->n, fmt, ap);
    va_end(ap);
    ASSERT_GE(n, 0);
    ASSERT_LT((size_t)n, sizeof t->buf - t->n);
    t->n += (size_t)n;
}

static unsigned long long id_of(const weft_coro *co)
{
    return (unsigned long long)weft_coro_id(co);
}

static void quiet_failure(weft_coro *co, int status, void *arg)
{
    (void)co;
    (void)status;
    (void)arg;
}

/* ----------------------------------------------------------------------
 * Every kind of wait, from inside a coroutine
 * ---------------------------------------------------------------------- */

static struct {
    weft_sched *s;
    weft_coro *sleeper, *yielder, *yielder2, *unnamed;
    weft_event *ev, *ev2;
    weft_mutex *m, *m2;
    weft_cond *c;
    weft_sem *sem;
    weft_wg *wg;
    weft_future *f;
    weft_chan *ch0, *ch1;
    int pipe[2];
    char *out;
    int ret;
    int sleeper_joined; /* the joiner freed its handle */
} K;

static int k_sleeper(void *a)
{
    (void)a;
    return weft_sleep_for(1000);
}

static int k_joiner(void *a)
{
    (void)a;
    int r = weft_join(K.sleeper, NULL);
    K.sleeper_joined = r == 0;
    return r;
}

static int k_event(void *a)
{
    (void)a;
    return weft_event_wait(K.ev, 5000);
}

static int k_holder(void *a)
{
    (void)a;
    ASSERT_OK(weft_mutex_lock(K.m, -1));
    int r = weft_event_wait(K.ev2, -1);
    ASSERT_OK(weft_mutex_unlock(K.m));
    return r;
}

static int k_locker(void *a)
{
    (void)a;
    int r = weft_mutex_lock(K.m, -1);
    if (r == 0)
        ASSERT_OK(weft_mutex_unlock(K.m));
    return r;
}

static int k_cond(void *a)
{
    (void)a;
    ASSERT_OK(weft_mutex_lock(K.m2, -1));
    int r = weft_cond_wait(K.c, K.m2, -1);
    ASSERT_OK(weft_mutex_unlock(K.m2)); /* held again whatever r is */
    return r;
}

static int k_sem(void *a)
{
    (void)a;
    return weft_sem_acquire(K.sem, -1);
}

static int k_wg(void *a)
{
    (void)a;
    return weft_wg_wait(K.wg, -1);
}

static int k_future(void *a)
{
    (void)a;
    return weft_future_wait(K.f, -1, NULL);
}

static int k_sender(void *a)
{
    (void)a;
    return weft_chan_send(K.ch0, &K, -1);
}

static int k_receiver(void *a)
{
    (void)a;
    void *item;
    return weft_chan_recv(K.ch1, &item, -1);
}

static int k_reader(void *a)
{
    (void)a;
    int r = weft_fd_wait(K.pipe[0], WEFT_IO_READ, -1);
    return r < 0 ? r : 0;
}

static int k_yielder(void *a)
{
    (void)a;
    int r = weft_yield();
    /* The dumper raised -EIO or ended it while it was ready. */
    int r2 = weft_yield();
    ASSERT(r2 == -EIO || r2 == -ECANCELED);
    return r;
}

static int k_fails(void *a)
{
    (void)a;
    return -EIO;
}

static int k_nop(void *a)
{
    (void)a;
    return 0;
}

static int k_dumper(void *a)
{
    (void)a;
    struct weft_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.priority = WEFT_PRIO_LOW;
    o.stack_size = 16384;
    ASSERT_OK(weft_spawn(K.s, k_nop, NULL, &o, &K.unnamed));
    ASSERT_OK(weft_raise(K.yielder, -EIO));
    ASSERT_OK(weft_end(K.yielder2));
    K.out = weft_test_dump(NULL, &K.ret);
    return 0;
}

static weft_coro *spawn_named(const char *name, weft_fn fn, int prio)
{
    struct weft_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.name = name;
    o.priority = prio;
    weft_coro *co;
    ASSERT_OK(weft_spawn(K.s, fn, NULL, &o, &co));
    return co;
}

static void timer_nop(weft_timer *t, void *arg)
{
    (void)t;
    (void)arg;
}

TEST(lists_every_kind_of_wait)
{
    memset(&K, 0, sizeof K);
    weft_sched *s = K.s = new_manual();
    ASSERT_OK(weft_on_error_global(s, quiet_failure, NULL));
    ASSERT_OK(weft_event_new(s, &K.ev));
    ASSERT_OK(weft_event_new(s, &K.ev2));
    ASSERT_OK(weft_mutex_new(s, &K.m));
    ASSERT_OK(weft_mutex_new(s, &K.m2));
    ASSERT_OK(weft_cond_new(s, &K.c));
    ASSERT_OK(weft_sem_new(s, 0, &K.sem));
    ASSERT_OK(weft_wg_new(s, &K.wg));
    ASSERT_OK(weft_wg_add(K.wg, 1));
    ASSERT_OK(weft_future_new(s, &K.f));
    ASSERT_OK(weft_chan_new(s, 0, &K.ch0));
    ASSERT_OK(weft_chan_new(s, 4, &K.ch1));
    ASSERT_OK(pipe(K.pipe));
    weft_timer *tm;
    ASSERT_OK(weft_timer_new(s, timer_nop, NULL, &tm));
    ASSERT_OK(weft_timer_start_at(tm, 9000, 0));

    weft_coro *co[16];
    int n = 0;
    co[n++] = K.sleeper = spawn_named("sleeper", k_sleeper, 0);
    co[n++] = spawn_named("joiner", k_joiner, 0);
    co[n++] = spawn_named("event", k_event, 0);
    weft_coro *holder = co[n++] = spawn_named("holder", k_holder, 0);
    co[n++] = spawn_named("locker", k_locker, 0);
    co[n++] = spawn_named("cond", k_cond, 0);
    co[n++] = spawn_named("sem", k_sem, WEFT_PRIO_HIGH);
    co[n++] = spawn_named("wg", k_wg, 0);
    co[n++] = spawn_named("future", k_future, 0);
    co[n++] = spawn_named("sender", k_sender, 0);
    co[n++] = spawn_named("receiver", k_receiver, 0);
    co[n++] = spawn_named("reader", k_reader, 0);
    co[n++] = K.yielder = spawn_named("yielder", k_yielder, 0);
    co[n++] = K.yielder2 = spawn_named("yielder2", k_yielder, 0);
    weft_coro *failed = co[n++] = spawn_named("failed", k_fails, 0);
    weft_coro *later;
    {
        struct weft_spawn_opts o;
        memset(&o, 0, sizeof o);
        o.name = "later";
        ASSERT_OK(weft_spawn_at(s, 7000, k_nop, NULL, &o, &later));
    }
    weft_coro *dumper = spawn_named("dumper", k_dumper, WEFT_PRIO_IDLE);

    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_NOT_NULL(K.out);
    ASSERT_EQ(K.ret, 0); /* the dumper runs: no deadlock */

    struct text t = {.n = 0};
    add(&t,
        "weft: scheduler %p: coroutines 18 (alive 17, ready 3), timers 4 "
        "(callback 1), I/O waiters 1; manual clock, now 0\n",
        (void *)s);
    add(&t, "  #%llu 'sleeper' waiting, prio normal, stack 65536: sleeping "
            "until 1000 (in 1000 ns)\n", id_of(co[0]));
    add(&t, "  #%llu 'joiner' waiting, prio normal, stack 65536: joining "
            "#%llu 'sleeper'\n", id_of(co[1]), id_of(co[0]));
    add(&t, "  #%llu 'event' waiting, prio normal, stack 65536: event %p, "
            "until 5000\n", id_of(co[2]), (void *)K.ev);
    add(&t, "  #%llu 'holder' waiting, prio normal, stack 65536: event %p\n",
        id_of(co[3]), (void *)K.ev2);
    add(&t, "  #%llu 'locker' waiting, prio normal, stack 65536: mutex %p "
            "(held by #%llu 'holder')\n", id_of(co[4]), (void *)K.m,
        id_of(holder));
    add(&t, "  #%llu 'cond' waiting, prio normal, stack 65536: condition "
            "%p\n", id_of(co[5]), (void *)K.c);
    add(&t, "  #%llu 'sem' waiting, prio high, stack 65536: semaphore %p\n",
        id_of(co[6]), (void *)K.sem);
    add(&t, "  #%llu 'wg' waiting, prio normal, stack 65536: wait group %p\n",
        id_of(co[7]), (void *)K.wg);
    add(&t, "  #%llu 'future' waiting, prio normal, stack 65536: future %p\n",
        id_of(co[8]), (void *)K.f);
    add(&t, "  #%llu 'sender' waiting, prio normal, stack 65536: channel %p "
            "(send)\n", id_of(co[9]), (void *)K.ch0);
    add(&t, "  #%llu 'receiver' waiting, prio normal, stack 65536: channel %p "
            "(receive)\n", id_of(co[10]), (void *)K.ch1);
    add(&t, "  #%llu 'reader' waiting, prio normal, stack 65536: fd %d for "
            "read\n", id_of(co[11]), K.pipe[0]);
    add(&t, "  #%llu 'yielder' ready, prio normal, stack 65536 [raised "
            "EIO]\n", id_of(co[12]));
    add(&t, "  #%llu 'yielder2' ready, prio normal, stack 65536 [ended]\n",
        id_of(co[13]));
    add(&t, "  #%llu 'failed' done, prio normal, stack 65536: status -5 "
            "(EIO)\n", id_of(co[14]));
    add(&t, "  #%llu 'later' new, prio normal, stack 65536: starts at 7000\n",
        id_of(later));
    add(&t, "  #%llu 'dumper' running, prio idle, stack 65536\n",
        id_of(dumper));
    add(&t, "  #%llu new, prio low, stack 16384\n", id_of(K.unnamed));
    ASSERT_STR_EQ(K.out, t.buf);
    free(K.out);

    /* Take everything down. */
    for (int i = 0; i < n; i++)
        if (co[i] != failed)
            ASSERT_OK(weft_end(co[i]));
    ASSERT_OK(weft_end(later));
    ASSERT_OK(weft_timer_free(tm));
    ASSERT_OK(weft_run(s));
    for (int i = 0; i < n; i++)
        if (co[i] != K.sleeper || !K.sleeper_joined)
            ASSERT_OK(weft_reap(co[i], NULL));
    ASSERT_OK(weft_reap(later, NULL));
    ASSERT_OK(weft_reap(dumper, NULL));
    ASSERT_OK(weft_reap(K.unnamed, NULL));
    ASSERT_OK(weft_event_free(K.ev));
    ASSERT_OK(weft_event_free(K.ev2));
    ASSERT_OK(weft_mutex_free(K.m));
    ASSERT_OK(weft_mutex_free(K.m2));
    ASSERT_OK(weft_cond_free(K.c));
    ASSERT_OK(weft_sem_free(K.sem));
    ASSERT_OK(weft_wg_free(K.wg));
    ASSERT_OK(weft_future_release(K.f));
    ASSERT_OK(weft_chan_free(K.ch0));
    ASSERT_OK(weft_chan_free(K.ch1));
    close(K.pipe[0]);
    close(K.pipe[1]);
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * The deadlock report
 * ---------------------------------------------------------------------- */

static struct {
    weft_mutex *ma, *mb;
    weft_coro *a;
    int a_status;
} D;

static int d_a(void *arg)
{
    (void)arg;
    ASSERT_OK(weft_mutex_lock(D.ma, -1));
    ASSERT_OK(weft_yield());
    int r = weft_mutex_lock(D.mb, -1);
    if (r == 0)
        ASSERT_OK(weft_mutex_unlock(D.mb));
    ASSERT_OK(weft_mutex_unlock(D.ma));
    return r;
}

static int d_b(void *arg)
{
    (void)arg;
    ASSERT_OK(weft_mutex_lock(D.mb, -1));
    ASSERT_OK(weft_yield());
    int r = weft_mutex_lock(D.ma, -1);
    if (r == 0)
        ASSERT_OK(weft_mutex_unlock(D.ma));
    ASSERT_OK(weft_mutex_unlock(D.mb));
    return r;
}

static int d_c(void *arg)
{
    (void)arg;
    return weft_join(D.a, &D.a_status); /* frees a's handle */
}

TEST(deadlock_report_names_every_blocked_coroutine)
{
    weft_sched *s = new_manual();
    ASSERT_OK(weft_mutex_new(s, &D.ma));
    ASSERT_OK(weft_mutex_new(s, &D.mb));
    weft_coro *a, *b, *c;
    struct weft_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.name = "a";
    ASSERT_OK(weft_spawn(s, d_a, NULL, &o, &a));
    D.a = a;
    o.name = "b";
    ASSERT_OK(weft_spawn(s, d_b, NULL, &o, &b));
    o.name = "c";
    ASSERT_OK(weft_spawn(s, d_c, NULL, &o, &c));
    ASSERT_ERR(weft_run(s), -EDEADLK);

    int r;
    char *out = weft_test_dump(s, &r);
    ASSERT_EQ(r, 3);
    struct text t = {.n = 0};
    add(&t,
        "weft: scheduler %p: coroutines 3 (alive 3, ready 0), timers 0 "
        "(callback 0), I/O waiters 0; manual clock, now 0\n",
        (void *)s);
    add(&t, "  #%llu 'a' waiting, prio normal, stack 65536: mutex %p (held "
            "by #%llu 'b')\n", id_of(a), (void *)D.mb, id_of(b));
    add(&t, "  #%llu 'b' waiting, prio normal, stack 65536: mutex %p (held "
            "by #%llu 'a')\n", id_of(b), (void *)D.ma, id_of(a));
    add(&t, "  #%llu 'c' waiting, prio normal, stack 65536: joining #%llu "
            "'a'\n", id_of(c), id_of(a));
    add(&t, "weft: deadlock: 3 coroutines wait and nothing can wake them (no "
            "coroutine ready, no timer, no I/O)\n");
    add(&t, "  #%llu 'a': mutex %p (held by #%llu 'b')\n", id_of(a),
        (void *)D.mb, id_of(b));
    add(&t, "  #%llu 'b': mutex %p (held by #%llu 'a')\n", id_of(b),
        (void *)D.ma, id_of(a));
    add(&t, "  #%llu 'c': joining #%llu 'a'\n", id_of(c), id_of(a));
    ASSERT_STR_EQ(out, t.buf);
    free(out);

    /* Break it: ending a lets b take ma, and c's join completes. */
    ASSERT_OK(weft_end(a));
    ASSERT_OK(weft_run(s));
    int st;
    ASSERT_EQ(D.a_status, -ECANCELED);
    ASSERT_OK(weft_reap(b, &st));
    ASSERT_EQ(st, 0);
    ASSERT_OK(weft_reap(c, &st));
    ASSERT_EQ(st, 0);
    out = weft_test_dump(s, &r);
    ASSERT_EQ(r, 0);
    t.n = 0;
    add(&t,
        "weft: scheduler %p: coroutines 0 (alive 0, ready 0), timers 0 "
        "(callback 0), I/O waiters 0; manual clock, now 0\n",
        (void *)s);
    ASSERT_STR_EQ(out, t.buf);
    free(out);
    ASSERT_OK(weft_mutex_free(D.ma));
    ASSERT_OK(weft_mutex_free(D.mb));
    ASSERT_OK(weft_sched_free(s));
}

static int wait_event(void *arg)
{
    return weft_event_wait(arg, -1);
}

TEST(deadlock_report_of_one_coroutine)
{
    weft_sched *s = new_manual();
    weft_event *ev;
    ASSERT_OK(weft_event_new(s, &ev));
    weft_coro *co;
    ASSERT_OK(weft_spawn(s, wait_event, ev, NULL, &co));
    ASSERT_ERR(weft_run(s), -EDEADLK);
    int r;
    char *out = weft_test_dump(s, &r);
    ASSERT_EQ(r, 1);
    struct text t = {.n = 0};
    add(&t,
        "weft: scheduler %p: coroutines 1 (alive 1, ready 0), timers 0 "
        "(callback 0), I/O waiters 0; manual clock, now 0\n",
        (void *)s);
    add(&t, "  #%llu waiting, prio normal, stack 65536: event %p\n",
        id_of(co), (void *)ev);
    add(&t, "weft: deadlock: 1 coroutine waits and nothing can wake it (no "
            "coroutine ready, no timer, no I/O)\n");
    add(&t, "  #%llu: event %p\n", id_of(co), (void *)ev);
    ASSERT_STR_EQ(out, t.buf);
    free(out);
    ASSERT_EQ(weft_event_set(ev), 1);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_reap(co, NULL));
    ASSERT_OK(weft_event_free(ev));
    ASSERT_OK(weft_sched_free(s));
}

static void io_nop(weft_io *w, int fd, uint32_t events, void *arg)
{
    (void)w;
    (void)fd;
    (void)events;
    (void)arg;
}

/* Something could still wake the waiters: a timer, an fd, a ready
 * coroutine.  No deadlock report then. */
TEST(no_deadlock_while_a_timer_or_io_can_wake)
{
    weft_sched *s = new_manual();
    weft_event *ev;
    ASSERT_OK(weft_event_new(s, &ev));
    weft_coro *co;
    ASSERT_OK(weft_spawn(s, wait_event, ev, NULL, &co));
    ASSERT_EQ(weft_run_once(s, 0), 1);

    /* A callback timer. */
    weft_timer *tm;
    ASSERT_OK(weft_timer_new(s, timer_nop, NULL, &tm));
    ASSERT_OK(weft_timer_start(tm, 100, 0));
    int r;
    char *out = weft_test_dump(s, &r);
    ASSERT_EQ(r, 0);
    ASSERT(strstr(out, "deadlock") == NULL);
    free(out);
    ASSERT_OK(weft_timer_stop(tm));

    /* A readiness callback waiting for an fd. */
    int p[2];
    ASSERT_OK(pipe(p));
    weft_io *io;
    ASSERT_OK(weft_io_new(s, p[0], WEFT_IO_READ, io_nop, NULL, &io));
    out = weft_test_dump(s, &r);
    ASSERT_EQ(r, 0);
    ASSERT_STR_CONTAINS(out, "I/O waiters 1;");
    ASSERT(strstr(out, "deadlock") == NULL);
    free(out);
    ASSERT_OK(weft_io_free(io));

    /* A ready coroutine. */
    weft_coro *other;
    ASSERT_OK(weft_spawn(s, k_nop, NULL, NULL, &other));
    out = weft_test_dump(s, &r);
    ASSERT_EQ(r, 0);
    ASSERT(strstr(out, "deadlock") == NULL);
    free(out);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_reap(other, NULL));

    /* Nothing any more. */
    out = weft_test_dump(s, &r);
    ASSERT_EQ(r, 1);
    ASSERT_STR_CONTAINS(out, "weft: deadlock: 1 coroutine waits");
    free(out);

    ASSERT_EQ(weft_event_set(ev), 1);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_reap(co, NULL));
    ASSERT_OK(weft_timer_free(tm));
    ASSERT_OK(weft_event_free(ev));
    close(p[0]);
    close(p[1]);
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Kinds that need the internals: an unrecorded wait (which also shows
 * that the kind of an earlier wait does not linger), and a proactor
 * operation.
 * ---------------------------------------------------------------------- */

static int raw_block(void *arg)
{
    weft_event *ev = arg;
    ASSERT_OK(weft_event_wait(ev, -1)); /* a recorded wait first */
    return weft__block(weft_coro_sched(weft_self()), -1);
}

TEST(unrecorded_wait_does_not_reuse_an_old_kind)
{
    weft_sched *s = new_manual();
    weft_event *ev;
    ASSERT_OK(weft_event_new(s, &ev));
    weft_coro *co;
    ASSERT_OK(weft_spawn(s, raw_block, ev, NULL, &co));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(weft_event_set(ev), 1);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    int r;
    char *out = weft_test_dump(s, &r);
    ASSERT_EQ(r, 1);
    struct text t = {.n = 0};
    add(&t, "  #%llu waiting, prio normal, stack 65536: something "
            "unrecorded %p\n", id_of(co), NULL);
    ASSERT_STR_CONTAINS(out, t.buf);
    free(out);
    ASSERT_OK(weft_end(co));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_reap(co, &r));
    ASSERT_EQ(r, -ECANCELED);
    ASSERT_OK(weft_event_free(ev));
    ASSERT_OK(weft_sched_free(s));
}

struct opcase {
    int fd;
    char buf[8];
    int result;
};

static int op_reader(void *arg)
{
    struct opcase *c = arg;
    struct weft__op op;
    memset(&op, 0, sizeof op);
    op.kind = WEFT__OP_READ;
    op.fd = c->fd;
    op.buf = c->buf;
    op.len = sizeof c->buf;
    op.off = -1;
    c->result = weft__io_op(weft_coro_sched(weft_self()), &op, 5000);
    return 0;
}

TEST(lists_a_proactor_operation)
{
    int avail[3];
    if (weft_test_backends(avail) < 3)
        SKIP("io_uring unavailable here");
    weft_sched *s = new_sched(WEFT_BACKEND_URING, 1);
    int p[2];
    ASSERT_OK(pipe(p));
    struct opcase c = {p[0], {0}, 0};
    weft_coro *co;
    ASSERT_OK(weft_spawn(s, op_reader, &c, NULL, &co));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    int r;
    char *out = weft_test_dump(s, &r);
    ASSERT_EQ(r, 0);
    struct text t = {.n = 0};
    add(&t, "  #%llu waiting, prio normal, stack 65536: I/O operation read "
            "on fd %d, until 5000\n", id_of(co), p[0]);
    ASSERT_STR_CONTAINS(out, t.buf);
    ASSERT_STR_CONTAINS(out, "I/O waiters 1;");
    free(out);
    ASSERT_EQ(write(p[1], "hey", 3), 3);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(c.result, 3);
    ASSERT_OK(weft_reap(co, NULL));
    close(p[0]);
    close(p[1]);
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Scheduler variants and errors
 * ---------------------------------------------------------------------- */

TEST(monotonic_clock)
{
    weft_sched *s = new_sched(WEFT_BACKEND_AUTO, 0);
    int r;
    char *out = weft_test_dump(s, &r);
    ASSERT_EQ(r, 0);
    ASSERT_STR_CONTAINS(out, "; monotonic clock, now ");
    free(out);
    ASSERT_OK(weft_sched_free(s));
}

TEST(default_scheduler)
{
    int r;
    char *out = weft_test_dump(NULL, &r);
    ASSERT_EQ(r, 0);
    struct text t = {.n = 0};
    add(&t, "weft: scheduler %p: coroutines 0 (alive 0, ready 0)",
        (void *)weft_sched_default());
    ASSERT_STR_CONTAINS(out, t.buf);
    free(out);
}

static void *dump_from_thread(void *arg)
{
    return (void *)(intptr_t)weft_dump(arg, stderr);
}

TEST(errors)
{
    weft_sched *s = new_manual();
    ASSERT_ERR(weft_dump(s, NULL), -EINVAL);

    /* Another thread's scheduler. */
    pthread_t th;
    void *ret;
    ASSERT_OK(pthread_create(&th, NULL, dump_from_thread, s));
    ASSERT_OK(pthread_join(th, &ret));
    ASSERT_EQ((intptr_t)ret, -EINVAL);

    /* A stream that cannot be written. */
    FILE *f = fopen("/dev/null", "r");
    ASSERT_NOT_NULL(f);
    ASSERT_ERR(weft_dump(s, f), -EIO);
    fclose(f);
    ASSERT_OK(weft_sched_free(s));
}
