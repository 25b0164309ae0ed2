/*
 * doorbell.c - the one-at-a-time doorbell loop (buildbot's util.loop).
 *
 * Pieces:
 *   - pending: an atomic flag, the doorbell proper.  weft_doorbell_trigger()
 *     sets it and, only on its 0 -> 1 edge, writes the eventfd `efd`; a
 *     readiness callback on efd (on_bell) drains it and kicks the loop.
 *   - procs: the processor records (fn, arg, wake-up time), with a
 *     `member` flag (in the loop's set now) and a `selected` flag (to be
 *     invoked in the run in progress).
 *   - runner: the coroutine of the run in progress.  It is spawned when
 *     there is work (a ring, or a wake-up time that has come) and none
 *     exists, performs runs back to back while work remains, and ends.
 *     Every processor is called on it, one after the other, with a yield
 *     in between so that other coroutines get their turn.
 *   - wake: one callback timer, armed at the earliest wake-up time.
 *
 * A run begins (begin_run) by consuming the pending flag with an atomic
 * exchange: everything that rang before that exchange is answered by this
 * run, everything after it sets the flag again (and writes efd, the flag
 * having gone 0 -> 1) and is answered by the next.  The named doorbell (a
 * Unix datagram socket) is drained before it sets the flag, so a datagram
 * is always read before the run that answers it begins.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

/* weft_doorbell_trigger() runs in signal handlers: the flag's atomic
 * operations must not take a lock. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2,
               "the doorbell needs a lock-free atomic int");

/* When a run cannot start (no memory for its coroutine), try again after
 * this long. */
#define RETRY_DELAY WEFT_MSEC(100)
/* Datagrams drained from the named doorbell per callback at most (a flood
 * cannot hold the loop; the watcher is level-triggered). */
#define DRAIN_MAX 256

enum form { FORM_PLAIN, FORM_DELEGATE, FORM_SERVICES };

struct proc {
    weft_doorbell_fn fn;
    void *arg;
    int64_t due;      /* wake-up time; -1: none */
    uint8_t member;   /* in the loop's set */
    uint8_t selected; /* still to be invoked in the run in progress */
};

struct svc {
    char *name;
    weft_doorbell_fn run;
    weft_doorbell_hook_fn start, stop;
    void *arg;
    uint8_t started;
};

struct weft_doorbell {
    atomic_int pending;         /* a ring not yet answered */
    int efd;                    /* eventfd, written on pending's 0 -> 1 */
    weft_sched *sched;
    int form;                   /* enum form */
    weft_io *bell;              /* watcher on efd */
    weft_timer *wake;           /* armed at the earliest wake-up */

    struct proc *procs;
    size_t nprocs, capprocs;
    struct svc *svcs;
    size_t nsvcs, capsvcs;
    weft_doorbell_delegate_fn delegate;
    void *delegate_arg;

    weft_coro *runner;          /* the run's coroutine, or NULL */
    uint8_t runner_began;       /* it has begun executing */
    uint8_t offering;           /* inside the delegate */
    uint8_t started;

    weft_future **quiet;        /* when-quiet futures (one reference each) */
    size_t nquiet, capquiet;

    int64_t min_delay;
    weft_doorbell_log_fn log;
    void *log_arg;
    weft_doorbell_hook_fn on_run, on_done;
    void *hook_arg;
    size_t stack_size;
    int64_t runs;

    /* The named doorbell. */
    int nfd;                    /* -1: none */
    weft_io *named;
    char *path;
    dev_t dev;                  /* identity of the socket file we bound */
    ino_t ino;
};

static int owned(const weft_doorbell *db)
{
    return db && weft__owned(db->sched);
}

static int64_t now_of(weft_doorbell *db)
{
    return weft__clock_now(db->sched);
}

/* ----------------------------------------------------------------------
 * Logging
 * ---------------------------------------------------------------------- */

static const char *name_of(const weft_doorbell *db, weft_doorbell_fn fn,
                           void *arg)
{
    for (size_t i = 0; i < db->nsvcs; i++)
        if (db->svcs[i].run == fn && db->svcs[i].arg == arg)
            return db->svcs[i].name;
    return "";
}

/* A printable address for a function pointer (ISO C has no conversion of
 * function pointers to void *). */
static uintmax_t fn_addr(weft_doorbell_fn fn)
{
    uintmax_t u = 0;
    _Static_assert(sizeof fn <= sizeof u, "function pointers fit uintmax_t");
    memcpy(&u, &fn, sizeof fn);
    return u;
}

#if defined(__GNUC__)
__attribute__((format(printf, 8, 9)))
#endif
static void report(weft_doorbell *db, int kind, int err, weft_doorbell_fn fn,
                   void *arg, int64_t when, int64_t now, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct weft_doorbell_log rec;
    rec.kind = kind;
    rec.err = err;
    rec.fn = fn;
    rec.arg = arg;
    rec.name = fn ? name_of(db, fn, arg) : "";
    rec.when = when;
    rec.now = now;
    rec.msg = msg;
    if (db->log)
        db->log(db, &rec, db->log_arg);
    else
        fprintf(stderr, "weft: doorbell: %s\n", msg);
}

/* "processor 0x...(0x...)" or "service 'name'", for messages. */
static void describe(const weft_doorbell *db, weft_doorbell_fn fn, void *arg,
                     char *buf, size_t size)
{
    const char *name = name_of(db, fn, arg);
    if (name[0])
        (void)snprintf(buf, size, "service '%s'", name);
    else
        (void)snprintf(buf, size, "processor %#jx(%p)", fn_addr(fn), arg);
}

/* ----------------------------------------------------------------------
 * Processor records
 * ---------------------------------------------------------------------- */

static struct proc *find_proc(weft_doorbell *db, weft_doorbell_fn fn,
                              void *arg)
{
    for (size_t i = 0; i < db->nprocs; i++)
        if (db->procs[i].fn == fn && db->procs[i].arg == arg)
            return &db->procs[i];
    return NULL;
}

static int reserve_procs(weft_doorbell *db, size_t n)
{
    if (n <= db->capprocs)
        return 0;
    size_t cap = db->capprocs ? db->capprocs * 2 : 8;
    while (cap < n)
        cap *= 2;
    struct proc *p = weft__realloc(db->procs, cap * sizeof *p);
    if (!p)
        return -ENOMEM;
    db->procs = p;
    db->capprocs = cap;
    return 0;
}

/* Make (fn, arg) a member; 0 when it was not, 1 when it already was. */
static int put_member(weft_doorbell *db, weft_doorbell_fn fn, void *arg)
{
    struct proc *p = find_proc(db, fn, arg);
    if (p) {
        int was = p->member;
        p->member = 1;
        return was;
    }
    int r = reserve_procs(db, db->nprocs + 1);
    if (r < 0)
        return r;
    p = &db->procs[db->nprocs++];
    p->fn = fn;
    p->arg = arg;
    p->due = -1;
    p->member = 1;
    p->selected = 0;
    return 0;
}

/* Order does not matter (a run's order is not guaranteed), so a record
 * leaves by swapping with the last one. */
static void drop_proc(weft_doorbell *db, struct proc *p)
{
    *p = db->procs[--db->nprocs];
}

static int64_t earliest_due(const weft_doorbell *db)
{
    int64_t t = -1;
    for (size_t i = 0; i < db->nprocs; i++) {
        int64_t d = db->procs[i].due;
        if (d >= 0 && (t < 0 || d < t))
            t = d;
    }
    return t;
}

static void clear_dues(weft_doorbell *db)
{
    for (size_t i = 0; i < db->nprocs; i++)
        db->procs[i].due = -1;
}

/* ----------------------------------------------------------------------
 * Scheduling runs
 * ---------------------------------------------------------------------- */

static int run_main(void *arg);

static void arm_at(weft_doorbell *db, int64_t t)
{
    int r = weft_timer_start_at(db->wake, t, 0);
    if (r < 0)
        report(db, WEFT_DOORBELL_LOG_RUN, r, NULL, NULL, -1, now_of(db),
               "cannot arm the wake-up timer: %s", weft_strerror(r));
}

/* Arm the wake-up timer at the earliest wake-up time (or stop it). */
static void arm_wake(weft_doorbell *db)
{
    int64_t t = db->started ? earliest_due(db) : -1;
    if (t < 0)
        (void)weft_timer_stop(db->wake);
    else
        arm_at(db, t);
}

/* Work for a run: a ring not yet answered, or a wake-up time that came. */
static int has_work(weft_doorbell *db)
{
    if (atomic_load_explicit(&db->pending, memory_order_acquire))
        return 1;
    int64_t t = earliest_due(db);
    return t >= 0 && t <= now_of(db);
}

/* Start a run if the loop is started, idle and has work. */
static void kick(weft_doorbell *db)
{
    if (!db->started || db->runner || !has_work(db))
        return;
    struct weft_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.stack_size = db->stack_size;
    o.name = "doorbell";
    weft_coro *co;
    int r = weft_spawn(db->sched, run_main, db, &o, &co);
    if (r < 0) {
        int64_t now = now_of(db);
        report(db, WEFT_DOORBELL_LOG_RUN, r, NULL, NULL, -1, now,
               "cannot start a run: %s; retrying", weft_strerror(r));
        int64_t t = earliest_due(db);
        if (t < 0 || t > now + RETRY_DELAY)
            t = now + RETRY_DELAY;
        arm_at(db, t);
        return;
    }
    (void)weft_detach(co); /* the handle stays valid until it finishes */
    db->runner = co;
    db->runner_began = 0;
}

static void drain_bell(int fd)
{
    uint64_t v;
    while (read(fd, &v, sizeof v) < 0 && errno == EINTR)
        ;
}

static void on_bell(weft_io *w, int fd, uint32_t revents, void *arg)
{
    (void)w;
    (void)revents;
    /* Drain first, then look at the flag: a ring whose write comes after
     * this read makes efd readable again. */
    drain_bell(fd);
    kick(arg);
}

static int drain_named(weft_doorbell *db);

static void on_wake(weft_timer *t, void *arg)
{
    (void)t;
    kick(arg);
}

/* ----------------------------------------------------------------------
 * A run
 * ---------------------------------------------------------------------- */

/* Delegate and services forms: rebuild the set of processors. */
static void gather(weft_doorbell *db)
{
    if (db->form == FORM_PLAIN)
        return;
    for (size_t i = 0; i < db->nprocs; i++)
        db->procs[i].member = 0;
    if (db->form == FORM_DELEGATE) {
        db->offering = 1;
        int r = db->delegate(db, db->delegate_arg);
        db->offering = 0;
        if (r < 0)
            report(db, WEFT_DOORBELL_LOG_DELEGATE, r, NULL, NULL, -1,
                   now_of(db), "the delegate failed: %s (%s)",
                   weft_strerror(r), weft_err_name(r));
    } else {
        /* Room for every service was reserved when it was added. */
        for (size_t i = 0; i < db->nsvcs; i++) {
            int r = put_member(db, db->svcs[i].run, db->svcs[i].arg);
            if (r < 0)
                report(db, WEFT_DOORBELL_LOG_RUN, r, db->svcs[i].run,
                       db->svcs[i].arg, -1, now_of(db),
                       "service '%s' left out of a run: %s",
                       db->svcs[i].name, weft_strerror(r));
        }
    }
    /* Processors no longer in the set go, with their wake-ups. */
    for (size_t i = 0; i < db->nprocs;) {
        if (!db->procs[i].member)
            drop_proc(db, &db->procs[i]);
        else
            i++;
    }
}

static void begin_run(weft_doorbell *db)
{
    if (db->on_run)
        db->on_run(db, db->hook_arg);
    /* The run begins here: the rings made before this exchange are its. */
    int everything =
        atomic_exchange_explicit(&db->pending, 0, memory_order_acq_rel);
    db->runs++;
    gather(db);
    int64_t now = now_of(db);
    for (size_t i = 0; i < db->nprocs; i++) {
        struct proc *p = &db->procs[i];
        if (everything || (p->due >= 0 && p->due <= now)) {
            /* Selected: every processor when everything runs (the
             * wake-ups are then redundant), else those now due. */
            p->selected = p->member;
            p->due = -1;
        } else {
            p->selected = 0;
        }
    }
}

static struct proc *next_selected(weft_doorbell *db)
{
    for (size_t i = 0; i < db->nprocs; i++)
        if (db->procs[i].selected)
            return &db->procs[i];
    return NULL;
}

static void invoke(weft_doorbell *db, struct proc *p)
{
    weft_doorbell_fn fn = p->fn;
    void *arg = p->arg;
    char who[96];
    p->selected = 0;
    p->due = -1; /* an outstanding wake-up is cancelled just before */
    int64_t wake = -1;
    int64_t t0 = now_of(db);
    int r = fn(db, arg, &wake);
    int64_t t1 = now_of(db);
    if (r < 0) {
        describe(db, fn, arg, who, sizeof who);
        report(db, WEFT_DOORBELL_LOG_FAILED, r, fn, arg, -1, t1,
               "%s failed: %s (%s)", who, weft_strerror(r), weft_err_name(r));
        return;
    }
    if (wake == -1)
        return;
    if (wake <= t1) {
        describe(db, fn, arg, who, sizeof who);
        report(db, WEFT_DOORBELL_LOG_PAST, 0, fn, arg, wake, t1,
               "%s asked for a wake-up time not in the future "
               "(%lld <= now %lld); ignored",
               who, (long long)wake, (long long)t1);
        return;
    }
    p = find_proc(db, fn, arg); /* the array may have moved meanwhile */
    if (!p || !p->member)
        return; /* removed while it ran */
    int64_t floor =
        t0 > INT64_MAX - db->min_delay ? INT64_MAX : t0 + db->min_delay;
    p->due = wake > floor ? wake : floor;
}

/* Between two processors: let the other coroutines run.  Returns 1 when
 * the run must end (the loop was stopped, or the coroutine ended). */
static int pause_between(weft_doorbell *db)
{
    (void)weft_yield(); /* a raised error, if any, is consumed here */
    if (weft_coro_ended(weft_self()) == 1) {
        report(db, WEFT_DOORBELL_LOG_ENDED, -ECANCELED, NULL, NULL, -1,
               now_of(db), "the run's coroutine was ended; run abandoned");
        return 1;
    }
    return !db->started;
}

static int more_work(weft_doorbell *db)
{
    return db->started && has_work(db);
}

/* The run is over and no other follows at once. */
static void finish(weft_doorbell *db)
{
    db->runner = NULL;
    db->runner_began = 0;
    for (size_t i = 0; i < db->nprocs; i++)
        db->procs[i].selected = 0;
    arm_wake(db);
    int quiet = !db->started ||
                (earliest_due(db) < 0 &&
                 !atomic_load_explicit(&db->pending, memory_order_acquire));
    weft_doorbell_hook_fn done = db->on_done;
    void *hook_arg = db->hook_arg;
    weft_future **q = NULL;
    size_t nq = 0;
    if (quiet) {
        q = db->quiet;
        nq = db->nquiet;
        db->quiet = NULL;
        db->nquiet = db->capquiet = 0;
    }
    /* From here on the loop may be freed (by on_done or a future's
     * callback): only locals are used. */
    if (done)
        done(db, hook_arg);
    for (size_t i = 0; i < nq; i++) {
        (void)weft_future_resolve(q[i], NULL);
        (void)weft_future_release(q[i]);
    }
    weft__free(q);
}

static int run_main(void *arg)
{
    weft_doorbell *db = arg;
    int need_pause = 0;
    db->runner_began = 1;
    for (;;) {
        if (need_pause && pause_between(db))
            break;
        if (!db->started)
            break;
        begin_run(db);
        need_pause = 0;
        for (;;) {
            if (need_pause && pause_between(db))
                goto out;
            struct proc *p = next_selected(db);
            if (!p || !db->started)
                break;
            invoke(db, p);
            need_pause = 1;
        }
        if (!more_work(db))
            break;
        need_pause = 1;
    }
out:
    finish(db);
    return 0;
}

/* ----------------------------------------------------------------------
 * Creating and freeing
 * ---------------------------------------------------------------------- */

static int create(weft_sched *s, const struct weft_doorbell_opts *opts,
                  int form, weft_doorbell **out)
{
    struct weft_doorbell_opts o;
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (opts)
        o = *opts;
    else
        memset(&o, 0, sizeof o);
    if (o.min_delay < 0)
        return -EINVAL;
    if (!weft__stack_size_ok(o.stack_size))
        return -EINVAL;
    weft_sched *rs = weft__sched_arg(s);
    if (!rs)
        return s ? -EINVAL : -ENOMEM;

    weft_doorbell *db = weft__calloc(1, sizeof *db);
    if (!db)
        return -ENOMEM;
    atomic_init(&db->pending, 0);
    db->sched = rs;
    db->form = form;
    db->nfd = -1;
    db->min_delay = o.min_delay ? o.min_delay : WEFT_DOORBELL_MIN_DELAY;
    db->log = o.log;
    db->log_arg = o.log_arg;
    db->on_run = o.on_run;
    db->on_done = o.on_done;
    db->hook_arg = o.hook_arg;
    db->stack_size = o.stack_size;

    int r;
    db->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (db->efd < 0) {
        r = -errno;
        goto fail;
    }
    r = weft_timer_new(rs, on_wake, db, &db->wake);
    if (r < 0)
        goto fail;
    r = weft_io_new(rs, db->efd, WEFT_IO_READ, on_bell, db, &db->bell);
    if (r < 0)
        goto fail;
    (void)weft_io_stop(db->bell); /* created stopped */
    *out = db;
    return 0;

fail:
    if (db->wake)
        (void)weft_timer_free(db->wake);
    if (db->efd >= 0)
        close(db->efd);
    weft__free(db);
    return r;
}

int weft_doorbell_new(weft_sched *s, const struct weft_doorbell_opts *opts,
                      weft_doorbell **out)
{
    return create(s, opts, FORM_PLAIN, out);
}

int weft_doorbell_new_delegate(weft_sched *s,
                               const struct weft_doorbell_opts *opts,
                               weft_doorbell_delegate_fn get, void *arg,
                               weft_doorbell **out)
{
    if (!get) {
        if (out)
            *out = NULL;
        return -EINVAL;
    }
    int r = create(s, opts, FORM_DELEGATE, out);
    if (r == 0) {
        /* create() returns 0 only with *out set (the analyzer assumes a
         * failing eventfd() may leave errno 0).
         * NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
        (*out)->delegate = get;
        (*out)->delegate_arg = arg;
    }
    return r;
}

int weft_doorbell_new_services(weft_sched *s,
                               const struct weft_doorbell_opts *opts,
                               weft_doorbell **out)
{
    return create(s, opts, FORM_SERVICES, out);
}

static void stop_services(weft_doorbell *db)
{
    for (size_t i = db->nsvcs; i-- > 0;) {
        if (i >= db->nsvcs || !db->svcs[i].started)
            continue; /* a hook removed services */
        db->svcs[i].started = 0;
        if (db->svcs[i].stop)
            db->svcs[i].stop(db, db->svcs[i].arg);
    }
}

static void close_named(weft_doorbell *db)
{
    struct stat st;
    (void)weft_io_free(db->named);
    db->named = NULL;
    close(db->nfd);
    db->nfd = -1;
    /* Remove the path only if it is still the socket we bound. */
    if (lstat(db->path, &st) == 0 && st.st_dev == db->dev &&
        st.st_ino == db->ino)
        (void)unlink(db->path);
    weft__free(db->path);
    db->path = NULL;
}

int weft_doorbell_free(weft_doorbell *db)
{
    if (!owned(db))
        return -EINVAL;
    if (db->runner && db->runner_began)
        return -EBUSY;
    if (db->runner) {
        /* Scheduled, never ran: finished (and freed) without running. */
        (void)weft_end(db->runner);
        db->runner = NULL;
    }
    if (db->started) {
        db->started = 0;
        stop_services(db);
    }
    if (db->path)
        close_named(db);
    (void)weft_io_free(db->bell);
    close(db->efd);
    (void)weft_timer_free(db->wake);
    for (size_t i = 0; i < db->nsvcs; i++)
        weft__free(db->svcs[i].name);
    weft__free(db->svcs);
    weft__free(db->procs);
    weft_future **q = db->quiet;
    size_t nq = db->nquiet;
    weft__free(db);
    /* Their callbacks run with the loop gone. */
    for (size_t i = 0; i < nq; i++) {
        (void)weft_future_fail(q[i], -ECANCELED);
        (void)weft_future_release(q[i]);
    }
    weft__free(q);
    return 0;
}

/* ----------------------------------------------------------------------
 * Starting and stopping
 * ---------------------------------------------------------------------- */

int weft_doorbell_start(weft_doorbell *db)
{
    if (!owned(db))
        return -EINVAL;
    if (db->started)
        return -EALREADY;
    int r = weft_io_modify(db->bell, WEFT_IO_READ);
    if (r < 0)
        return r;
    if (db->named) {
        r = weft_io_modify(db->named, WEFT_IO_READ);
        if (r < 0) {
            (void)weft_io_stop(db->bell);
            return r;
        }
    }
    db->started = 1;
    for (size_t i = 0; i < db->nsvcs; i++) {
        if (db->svcs[i].started)
            continue;
        db->svcs[i].started = 1;
        if (db->svcs[i].start)
            db->svcs[i].start(db, db->svcs[i].arg);
        if (!db->started)
            return 0; /* a start hook stopped the loop */
    }
    /* One full run, which also answers the rings made while stopped:
     * they are read now, before it begins. */
    drain_bell(db->efd);
    if (db->named)
        (void)drain_named(db);
    atomic_store_explicit(&db->pending, 1, memory_order_release);
    kick(db);
    return 0;
}

int weft_doorbell_stop(weft_doorbell *db)
{
    if (!owned(db))
        return -EINVAL;
    if (!db->started)
        return -EALREADY;
    db->started = 0;
    (void)weft_io_stop(db->bell);
    if (db->named)
        (void)weft_io_stop(db->named);
    (void)weft_timer_stop(db->wake);
    clear_dues(db);
    if (db->runner && !db->runner_began) {
        (void)weft_end(db->runner); /* never ran: dropped */
        db->runner = NULL;
    }
    stop_services(db);
    return 0;
}

int weft_doorbell_started(const weft_doorbell *db)
{
    if (!owned(db))
        return -EINVAL;
    return db->started;
}

/* ----------------------------------------------------------------------
 * Processors
 * ---------------------------------------------------------------------- */

int weft_doorbell_add(weft_doorbell *db, weft_doorbell_fn fn, void *arg)
{
    if (!owned(db) || !fn || db->form != FORM_PLAIN)
        return -EINVAL;
    return put_member(db, fn, arg);
}

int weft_doorbell_remove(weft_doorbell *db, weft_doorbell_fn fn, void *arg)
{
    if (!owned(db) || !fn || db->form != FORM_PLAIN)
        return -EINVAL;
    struct proc *p = find_proc(db, fn, arg);
    if (!p)
        return -ENOENT;
    drop_proc(db, p);
    return 0;
}

int weft_doorbell_offer(weft_doorbell *db, weft_doorbell_fn fn, void *arg)
{
    if (!owned(db) || !fn || db->form != FORM_DELEGATE || !db->offering ||
        weft_self() != db->runner)
        return -EINVAL;
    return put_member(db, fn, arg);
}

static struct svc *find_svc(const weft_doorbell *db, const char *name)
{
    for (size_t i = 0; i < db->nsvcs; i++)
        if (strcmp(db->svcs[i].name, name) == 0)
            return &db->svcs[i];
    return NULL;
}

int weft_doorbell_service_add(weft_doorbell *db,
                              const struct weft_doorbell_service *svc)
{
    if (!owned(db) || db->form != FORM_SERVICES || !svc || !svc->name ||
        !svc->name[0] || !svc->run)
        return -EINVAL;
    if (find_svc(db, svc->name))
        return -EEXIST;
    if (db->nsvcs == db->capsvcs) {
        size_t cap = db->capsvcs ? db->capsvcs * 2 : 4;
        struct svc *v = weft__realloc(db->svcs, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        db->svcs = v;
        db->capsvcs = cap;
    }
    /* A run gathers one record per service: reserve them now, so that
     * gathering never needs memory. */
    if (reserve_procs(db, db->nsvcs + 1) < 0)
        return -ENOMEM;
    size_t len = strlen(svc->name);
    char *name = weft__malloc(len + 1);
    if (!name)
        return -ENOMEM;
    memcpy(name, svc->name, len + 1);
    struct svc *e = &db->svcs[db->nsvcs++];
    e->name = name;
    e->run = svc->run;
    e->start = svc->start;
    e->stop = svc->stop;
    e->arg = svc->arg;
    e->started = 0;
    if (db->started) {
        e->started = 1;
        if (svc->start)
            svc->start(db, svc->arg);
    }
    return 0;
}

int weft_doorbell_service_remove(weft_doorbell *db, const char *name)
{
    if (!owned(db) || db->form != FORM_SERVICES || !name)
        return -EINVAL;
    struct svc *e = find_svc(db, name);
    if (!e)
        return -ENOENT;
    struct svc gone = *e;
    size_t i = (size_t)(e - db->svcs);
    memmove(e, e + 1, (db->nsvcs - i - 1) * sizeof *e); /* keep the order */
    db->nsvcs--;
    int shared = 0;
    for (size_t j = 0; j < db->nsvcs; j++)
        if (db->svcs[j].run == gone.run && db->svcs[j].arg == gone.arg)
            shared = 1;
    if (!shared) {
        struct proc *p = find_proc(db, gone.run, gone.arg);
        if (p)
            drop_proc(db, p);
    }
    if (gone.started && gone.stop)
        gone.stop(db, gone.arg);
    weft__free(gone.name);
    return 0;
}

int weft_doorbell_service_running(const weft_doorbell *db, const char *name)
{
    if (!owned(db) || db->form != FORM_SERVICES || !name)
        return -EINVAL;
    const struct svc *e = find_svc(db, name);
    return e ? e->started : -ENOENT;
}

/* ----------------------------------------------------------------------
 * The doorbell
 * ---------------------------------------------------------------------- */

int weft_doorbell_trigger(weft_doorbell *db)
{
    if (!db)
        return -EINVAL;
    if (atomic_exchange_explicit(&db->pending, 1, memory_order_acq_rel))
        return 0; /* merged into a ring not yet answered */
    int saved = errno;
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(db->efd, &one, sizeof one);
    while (n < 0 && errno == EINTR);
    /* EAGAIN: the counter is saturated, so efd is readable anyway. */
    int r = n >= 0 || errno == EAGAIN ? 1 : -errno;
    errno = saved;
    return r;
}

static int make_addr(const char *path, struct sockaddr_un *a,
                     socklen_t *len)
{
    if (!path || !path[0])
        return -EINVAL;
    size_t n = strlen(path);
    if (n >= sizeof a->sun_path)
        return -ENAMETOOLONG;
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    memcpy(a->sun_path, path, n + 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

/* Read the datagrams waiting on the named doorbell (at most DRAIN_MAX);
 * returns whether there was any. */
static int drain_named(weft_doorbell *db)
{
    char buf[64];
    int got = 0;
    for (int i = 0; i < DRAIN_MAX; i++) {
        ssize_t n = recv(db->nfd, buf, sizeof buf, MSG_DONTWAIT);
        if (n >= 0) {
            got = 1;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            int e = errno;
            report(db, WEFT_DOORBELL_LOG_NAMED, -e, NULL, NULL, -1,
                   now_of(db), "reading the named doorbell %s: %s",
                   db->path, weft_strerror(-e));
        }
        break;
    }
    return got;
}

static void on_named(weft_io *w, int fd, uint32_t revents, void *arg)
{
    weft_doorbell *db = arg;
    (void)w;
    (void)fd;
    (void)revents;
    /* Read the rings first: the run that answers them begins after. */
    if (drain_named(db)) {
        atomic_store_explicit(&db->pending, 1, memory_order_release);
        kick(db);
    }
}

/* bind(), replacing a stale socket file (one nothing is bound to). */
static int bind_path(int fd, const struct sockaddr_un *a, socklen_t len,
                     const char *path)
{
    if (bind(fd, (const struct sockaddr *)a, len) == 0)
        return 0;
    if (errno != EADDRINUSE)
        return -errno;
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno != ENOENT)
            return -errno;
    } else {
        if (!S_ISSOCK(st.st_mode))
            return -EEXIST; /* never remove what is not a socket */
        int probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (probe < 0)
            return -errno;
        int c = connect(probe, (const struct sockaddr *)a, len);
        int e = errno;
        close(probe);
        if (c == 0 || e == EPROTOTYPE)
            return -EADDRINUSE; /* something lives there */
        if (e != ECONNREFUSED)
            return -e;
        /* Stale: its owner is gone. */
        if (unlink(path) < 0 && errno != ENOENT)
            return -errno;
    }
    if (bind(fd, (const struct sockaddr *)a, len) == 0)
        return 0;
    return -errno;
}

int weft_doorbell_bind(weft_doorbell *db, const char *path, unsigned mode)
{
    if (!owned(db) || !path || mode > 0777)
        return -EINVAL;
    if (db->path)
        return -EALREADY;
    struct sockaddr_un a;
    socklen_t len;
    int r = make_addr(path, &a, &len);
    if (r < 0)
        return r;
    if (mode == 0)
        mode = 0600;
    size_t n = strlen(path);
    char *copy = weft__malloc(n + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, path, n + 1);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        r = -errno;
        weft__free(copy);
        return r;
    }
    r = bind_path(fd, &a, len, path);
    if (r < 0)
        goto fail_fd;
    struct stat st;
    if (chmod(path, (mode_t)mode) < 0 || lstat(path, &st) < 0) {
        r = -errno;
        (void)unlink(path);
        goto fail_fd;
    }
    r = weft_io_new(db->sched, fd, WEFT_IO_READ, on_named, db, &db->named);
    if (r < 0) {
        (void)unlink(path);
        goto fail_fd;
    }
    if (!db->started)
        (void)weft_io_stop(db->named);
    db->nfd = fd;
    db->path = copy;
    db->dev = st.st_dev;
    db->ino = st.st_ino;
    return 0;

fail_fd:
    close(fd);
    weft__free(copy);
    return r;
}

int weft_doorbell_unbind(weft_doorbell *db)
{
    if (!owned(db))
        return -EINVAL;
    if (!db->path)
        return -ENOENT;
    close_named(db);
    return 0;
}

const char *weft_doorbell_path(const weft_doorbell *db)
{
    return owned(db) ? db->path : NULL;
}

int weft_doorbell_ring_path(const char *path)
{
    struct sockaddr_un a;
    socklen_t len;
    int r = make_addr(path, &a, &len);
    if (r < 0)
        return r;
    int saved = errno;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        r = -errno;
        errno = saved;
        return r;
    }
    static const char ring = 1;
    ssize_t n;
    do
        n = sendto(fd, &ring, 1, MSG_DONTWAIT | MSG_NOSIGNAL,
                   (const struct sockaddr *)&a, len);
    while (n < 0 && errno == EINTR);
    /* EAGAIN: its queue is full of rings it has not read yet; they are
     * read before the run that answers them begins, so this one is
     * answered too. */
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        r = -errno;
    close(fd);
    errno = saved;
    return r;
}

/* ----------------------------------------------------------------------
 * Quiet, queries and settings
 * ---------------------------------------------------------------------- */

int weft_doorbell_when_quiet(weft_doorbell *db, weft_future **out)
{
    if (out)
        *out = NULL;
    if (!owned(db) || !out)
        return -EINVAL;
    if (db->nquiet == db->capquiet) {
        size_t cap = db->capquiet ? db->capquiet * 2 : 4;
        weft_future **q = weft__realloc(db->quiet, cap * sizeof(weft_future *));
        if (!q)
            return -ENOMEM;
        db->quiet = q;
        db->capquiet = cap;
    }
    weft_future *f;
    int r = weft_future_new(db->sched, &f);
    if (r < 0)
        return r;
    r = weft_future_retain(f); /* the loop's own reference */
    if (r < 0) {
        (void)weft_future_release(f);
        return r;
    }
    db->quiet[db->nquiet++] = f;
    *out = f;
    return 0;
}

int weft_doorbell_is_quiet(const weft_doorbell *db)
{
    if (!owned(db))
        return -EINVAL;
    if (db->runner)
        return 0;
    if (!db->started)
        return 1;
    return earliest_due(db) < 0 &&
           !atomic_load_explicit(&((weft_doorbell *)db)->pending,
                                 memory_order_acquire);
}

int64_t weft_doorbell_runs(const weft_doorbell *db)
{
    return owned(db) ? db->runs : -EINVAL;
}

weft_sched *weft_doorbell_sched(const weft_doorbell *db)
{
    return db ? db->sched : NULL;
}

int weft_doorbell_set_min_delay(weft_doorbell *db, int64_t ns)
{
    if (!owned(db) || ns <= 0)
        return -EINVAL;
    db->min_delay = ns;
    return 0;
}

int64_t weft_doorbell_min_delay(const weft_doorbell *db)
{
    return owned(db) ? db->min_delay : -EINVAL;
}

int weft_doorbell_set_log(weft_doorbell *db, weft_doorbell_log_fn fn,
                          void *arg)
{
    if (!owned(db))
        return -EINVAL;
    db->log = fn;
    db->log_arg = arg;
    return 0;
}
