/*
 * io.c - file descriptors on the scheduler: the per-fd table, coroutine
 * waits (weft_fd_wait), readiness callbacks (weft_io_*), forgetting and
 * closing fds, backend selection and the loop's poll step.
 *
 * Each fd weft knows has a record with the coroutines waiting on it (any
 * number, each for its own events), at most one callback watcher, and the
 * interest mask registered with the backend ("armed").  Interest grows at
 * once when a waiter needs more, and shrinks lazily: when the backend
 * reports an event nobody wants any more, or when the fd is forgotten.
 * Most waits on a busy socket thus cost no epoll_ctl at all.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#if defined(WEFT_HAVE_VALGRIND)
#include <valgrind/valgrind.h>
#define UNDER_VALGRIND() RUNNING_ON_VALGRIND
#else
#define UNDER_VALGRIND() 0
#endif

struct weft__fdrec {
    struct weft__list waiters; /* struct fdwait, in arrival order */
    struct weft__list ops;     /* proactor operations in flight */
    weft_io *watch;
    uint32_t armed;            /* interest registered with the backend */
    uint8_t always;            /* the backend refused it: always ready */
    uint8_t init;
    uint8_t hints;             /* WEFT__HINT_* (fdio.c) */
};

/* A coroutine waiting in weft_fd_wait(); lives on its stack. */
struct fdwait {
    struct weft__list link;
    weft_coro *co;
    uint32_t events;
    int fd;                    /* for weft_dump() and tools/weft-gdb.py */
};

int weft__fdwait_info(const void *slot, uint32_t *events)
{
    const struct fdwait *w = slot;
    *events = w->events;
    return w->fd;
}

struct weft_io {
    weft_sched *sched;
    struct weft__list link;    /* in sched->ios */
    int fd;
    uint32_t events;
    weft_io_fn cb;
    void *arg;
    uint8_t in_cb;
    uint8_t freed;             /* weft_io_free() from its own callback */
    uint8_t detached;          /* its fd was forgotten */
};

/* ----------------------------------------------------------------------
 * Backend choice
 * ---------------------------------------------------------------------- */

static const struct weft__backend_ops *backend_by_name(const char *n)
{
#if defined(WEFT_HAVE_URING)
    if (!strcmp(n, "io_uring") || !strcmp(n, "uring"))
        return &weft__uring_ops;
#endif
    if (!strcmp(n, "epoll"))
        return &weft__epoll_ops;
    if (!strcmp(n, "poll"))
        return &weft__poll_ops;
    return NULL;
}

int weft__io_init(weft_sched *s, int backend)
{
    static const struct weft__backend_ops *const order[] = {
#if defined(WEFT_HAVE_URING)
        &weft__uring_ops,
#endif
        &weft__epoll_ops, &weft__poll_ops,
    };
    const struct weft__backend_ops *want = NULL;
    weft__list_init(&s->ios);
    if (backend == WEFT_BACKEND_EPOLL)
        want = &weft__epoll_ops;
    else if (backend == WEFT_BACKEND_POLL)
        want = &weft__poll_ops;
    else if (backend == WEFT_BACKEND_URING) {
#if defined(WEFT_HAVE_URING)
        want = &weft__uring_ops;
#else
        return -ENOSYS; /* built without liburing */
#endif
    } else if (backend != WEFT_BACKEND_AUTO)
        return -EINVAL;
    if (!want) {
        const char *env = getenv("WEFT_BACKEND");
        if (env && *env) {
            want = backend_by_name(env);
            if (!want)
                return strcmp(env, "io_uring") ? -EINVAL : -ENOSYS;
        }
    }
    if (want) {
        s->poller.ops = want;
        int r = want->init(&s->poller);
        if (r < 0) {
            s->poller.ops = NULL;
            return r == -ENOMEM ? r : -ENOSYS;
        }
        return 0;
    }
    int r = -ENOSYS;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
#if defined(WEFT_HAVE_URING)
        /* Valgrind does not let other threads run while one blocks in
         * io_uring_enter(), so a cross-thread wake-up would never come:
         * the automatic choice skips io_uring under it. */
        if (order[i] == &weft__uring_ops && UNDER_VALGRIND())
            continue;
#endif
        s->poller.ops = order[i];
        r = order[i]->init(&s->poller);
        if (r == 0)
            return 0;
        if (r == -ENOMEM)
            break;
    }
    s->poller.ops = NULL;
    return r;
}

void weft__io_fini(weft_sched *s)
{
    while (!weft__list_empty(&s->ios)) {
        weft_io *w = weft__container_of(s->ios.next, weft_io, link);
        weft__list_remove(&w->link);
        weft__free(w);
    }
    if (s->poller.ops)
        s->poller.ops->fini(&s->poller);
    s->poller.ops = NULL;
    weft__free(s->fds);
    s->fds = NULL;
    s->nfds = 0;
}

const char *weft_backend_name(weft_sched *s)
{
    s = weft__sched_arg(s);
    return s && s->poller.ops ? s->poller.ops->name : NULL;
}

int weft_backend_fd(weft_sched *s)
{
    s = weft__sched_arg(s);
    if (!s)
        return -EINVAL;
    return s->poller.ops->fd(&s->poller);
}

int weft_sched_set_eintr(weft_sched *s, int report)
{
    s = weft__sched_arg(s);
    if (!s)
        return -EINVAL;
    s->eintr = report != 0;
    return 0;
}

/* ----------------------------------------------------------------------
 * The fd table
 * ---------------------------------------------------------------------- */

static struct weft__fdrec *rec_of(weft_sched *s, int fd, int grow)
{
    if (fd < s->nfds) {
        struct weft__fdrec *r = &s->fds[fd];
        if (!r->init) {
            if (!grow)
                return NULL;
            weft__list_init(&r->waiters);
            weft__list_init(&r->ops);
            r->init = 1;
        }
        return r;
    }
    if (!grow)
        return NULL;
    int n = s->nfds ? s->nfds : 64;
    while (n <= fd)
        n *= 2;
    /* The waiter and op lists are circular through their heads, which
     * move with the array: note the empty ones now, re-point the others
     * after.  Bit 1 of init: waiters empty; bit 2: ops empty. */
    for (int i = 0; i < s->nfds; i++)
        if (s->fds[i].init)
            s->fds[i].init = (uint8_t)(1 |
                (weft__list_empty(&s->fds[i].waiters) ? 2 : 0) |
                (weft__list_empty(&s->fds[i].ops) ? 4 : 0));
    struct weft__fdrec *t = weft__realloc(s->fds, (size_t)n * sizeof *t);
    if (!t) {
        for (int i = 0; i < s->nfds; i++)
            if (s->fds[i].init)
                s->fds[i].init = 1;
        return NULL;
    }
    for (int i = 0; i < s->nfds; i++) {
        if (!t[i].init)
            continue;
        struct weft__list *h = &t[i].waiters;
        if (t[i].init & 2) {
            weft__list_init(h);
        } else {
            h->next->prev = h;
            h->prev->next = h;
        }
        h = &t[i].ops;
        if (t[i].init & 4) {
            weft__list_init(h);
        } else {
            h->next->prev = h;
            h->prev->next = h;
        }
        t[i].init = 1;
    }
    memset(&t[s->nfds], 0, (size_t)(n - s->nfds) * sizeof *t);
    s->fds = t;
    s->nfds = n;
    return rec_of(s, fd, 1);
}

static uint32_t wanted(const struct weft__fdrec *r)
{
    uint32_t w = r->watch ? r->watch->events : 0;
    for (const struct weft__list *l = r->waiters.next; l != &r->waiters;
         l = l->next)
        w |= weft__container_of(l, struct fdwait, link)->events;
    return w & (WEFT_IO_READ | WEFT_IO_WRITE);
}

/* Make the backend watch at least `need` on fd (never shrinks). */
static int arm(weft_sched *s, int fd, struct weft__fdrec *r, uint32_t need)
{
    if (r->always || !(need & ~r->armed))
        return 0;
    uint32_t to = r->armed | need;
    int e = s->poller.ops->set(&s->poller, fd, r->armed, to);
    if (e == -EPERM) {
        r->always = 1; /* a regular file: epoll cannot watch it */
        return 0;
    }
    if (e < 0)
        return e;
    r->armed = to;
    return 0;
}

/* Drop interest nobody has any more. */
static void shrink(weft_sched *s, int fd, struct weft__fdrec *r)
{
    uint32_t w = wanted(r);
    if (r->armed & ~w) {
        if (s->poller.ops->set(&s->poller, fd, r->armed, w) == 0 || !w)
            r->armed = w;
    }
}

/* ----------------------------------------------------------------------
 * Coroutine waits
 * ---------------------------------------------------------------------- */

static void fdwait_cancel(weft_coro *co)
{
    struct fdwait *w = co->wait_obj;
    if (w)
        weft__list_remove(&w->link);
}

int weft_fd_wait(int fd, uint32_t events, int64_t deadline)
{
    weft_coro *co = weft__tls.current;
    if (!co || fd < 0 || !(events & (WEFT_IO_READ | WEFT_IO_WRITE)) ||
        deadline < -1)
        return -EINVAL;
    weft_sched *s = co->sched;
    int r = weft__block_check(s, &co);
    if (r < 0)
        return r;
    events &= WEFT_IO_READ | WEFT_IO_WRITE;
    struct weft__fdrec *rec = rec_of(s, fd, 1);
    if (!rec)
        return -ENOMEM;
    /* A closed fd fails with -EBADF.  A backend that checks the fd when
     * interest is added (epoll_ctl) says so itself when the wait must
     * register (the common case): only the other waits pay for a system
     * call to check. */
    int checked = (s->poller.ops->caps & WEFT__BK_CHECKS_FD) &&
                  !rec->always && (events & ~rec->armed);
    if (!checked && fcntl(fd, F_GETFD) < 0)
        return -EBADF;
    r = arm(s, fd, rec, events);
    if (r < 0)
        return r;
    if (rec->always)
        return (int)events;
    struct fdwait w;
    w.co = co;
    w.events = events;
    w.fd = fd;
    weft__list_push_back(&rec->waiters, &w.link);
    co->wait_obj = &w;
    co->wait_kind = WEFT__WAIT_FD;
    co->wait_cancel = fdwait_cancel;
    s->io_waiters++;
    r = weft__block(s, deadline);
    s->io_waiters--;
    weft__list_remove(&w.link); /* already off the list unless timed out */
    return r;
}

/* Wake every waiter of rec with result (negative) and empty the list. */
static void fail_waiters(struct weft__fdrec *rec, int err)
{
    while (!weft__list_empty(&rec->waiters)) {
        struct fdwait *w =
            weft__container_of(rec->waiters.next, struct fdwait, link);
        weft__list_remove(&w->link);
        w->co->wait_cancel = NULL;
        weft__wake(w->co, err);
    }
}

/* Ask the kernel to end every operation in flight on rec early; their
 * waiters get `reason` unless the operation completed first. */
static void cancel_ops(weft_sched *s, struct weft__fdrec *rec, int reason)
{
    for (struct weft__list *l = rec->ops.next; l != &rec->ops; l = l->next) {
        struct weft__op *op = weft__container_of(l, struct weft__op, link);
        if (!op->reason) {
            op->reason = reason;
            s->poller.ops->cancel(&s->poller, op);
        }
    }
}

int weft_fd_forget(weft_sched *s, int fd)
{
    s = weft__sched_arg(s);
    if (!s || fd < 0)
        return -EINVAL;
    struct weft__fdrec *rec = rec_of(s, fd, 0);
    if (!rec)
        return 0;
    fail_waiters(rec, -EBADF);
    cancel_ops(s, rec, -EBADF);
    if (rec->watch) {
        if (rec->watch->events)
            s->io_waiters--;
        rec->watch->events = 0;
        rec->watch->detached = 1;
        rec->watch = NULL;
    }
    if (rec->armed)
        (void)s->poller.ops->set(&s->poller, fd, rec->armed, 0);
    rec->armed = 0;
    rec->always = 0;
    rec->hints = 0;
    return 0;
}

int weft_fd_close(int fd)
{
    if (fd < 0)
        return -EINVAL;
    weft_sched *s = weft__tls.running ? weft__tls.running : weft__tls.dflt;
    if (s)
        (void)weft_fd_forget(s, fd);
    return close(fd) == 0 ? 0 : -errno;
}

int weft_fd_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

int weft_sched_after_fork(weft_sched *s)
{
    s = weft__sched_arg(s);
    if (!s)
        return -EINVAL;
    if (s->running)
        return -EBUSY;
    /* fini closes the inherited epoll fd without any epoll_ctl, so the
     * parent's registrations are untouched. */
    s->poller.ops->fini(&s->poller);
    int r = s->poller.ops->init(&s->poller);
    if (r < 0)
        return r;
    for (int fd = 0; fd < s->nfds; fd++) {
        struct weft__fdrec *rec = &s->fds[fd];
        if (!rec->init || !rec->armed)
            continue;
        if (s->poller.ops->set(&s->poller, fd, 0, rec->armed) < 0) {
            /* Gone in the child: waiters learn it now. */
            rec->armed = 0;
            fail_waiters(rec, -EBADF);
        }
    }
    return 0;
}

/* ----------------------------------------------------------------------
 * Readiness callbacks
 * ---------------------------------------------------------------------- */

int weft_io_new(weft_sched *s, int fd, uint32_t events, weft_io_fn cb,
                void *arg, weft_io **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    s = weft__sched_arg(s);
    if (!s || !cb || fd < 0 || !(events & (WEFT_IO_READ | WEFT_IO_WRITE)))
        return -EINVAL;
    struct weft__fdrec *rec = rec_of(s, fd, 1);
    if (!rec)
        return -ENOMEM;
    if (rec->watch)
        return -EEXIST;
    if (fcntl(fd, F_GETFD) < 0)
        return -EBADF;
    weft_io *w = weft__calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->sched = s;
    w->fd = fd;
    w->cb = cb;
    w->arg = arg;
    w->events = events & (WEFT_IO_READ | WEFT_IO_WRITE);
    int r = arm(s, fd, rec, w->events);
    if (r < 0) {
        weft__free(w);
        return r;
    }
    rec->watch = w;
    weft__list_push_back(&s->ios, &w->link);
    s->io_waiters++;
    *out = w;
    return 0;
}

int weft_io_modify(weft_io *w, uint32_t events)
{
    if (!w || !weft__owned(w->sched) || w->freed)
        return -EINVAL;
    if (w->detached)
        return -EBADF;
    weft_sched *s = w->sched;
    events &= WEFT_IO_READ | WEFT_IO_WRITE;
    struct weft__fdrec *rec = rec_of(s, w->fd, 0);
    if (!w->events && events)
        s->io_waiters++;
    else if (w->events && !events)
        s->io_waiters--;
    w->events = events;
    if (events) {
        int r = arm(s, w->fd, rec, events);
        if (r < 0) {
            w->events = 0;
            s->io_waiters--;
            return r;
        }
    }
    /* Shrinking is lazy (the next event nobody wants), as for waits. */
    return 0;
}

int weft_io_stop(weft_io *w)
{
    return weft_io_modify(w, 0);
}

int weft_io_free(weft_io *w)
{
    if (!w || !weft__owned(w->sched) || w->freed)
        return -EINVAL;
    weft_sched *s = w->sched;
    if (w->events)
        s->io_waiters--;
    w->events = 0;
    if (!w->detached) {
        struct weft__fdrec *rec = rec_of(s, w->fd, 0);
        if (rec && rec->watch == w) {
            rec->watch = NULL;
            shrink(s, w->fd, rec);
        }
    }
    weft__list_remove(&w->link);
    if (w->in_cb) {
        w->freed = 1; /* freed when its callback returns */
        return 0;
    }
    weft__free(w);
    return 0;
}

int weft_io_fd(const weft_io *w)
{
    return w ? w->fd : -EINVAL;
}

unsigned weft__fd_hints(weft_sched *s, int fd)
{
    struct weft__fdrec *rec = fd >= 0 ? rec_of(s, fd, 0) : NULL;
    return rec ? rec->hints : 0;
}

void weft__fd_set_hints(weft_sched *s, int fd, unsigned mask, unsigned value)
{
    struct weft__fdrec *rec = fd >= 0 ? rec_of(s, fd, 1) : NULL;
    if (rec)
        rec->hints = (uint8_t)((rec->hints & ~mask) | (value & mask));
}

/* ----------------------------------------------------------------------
 * Proactor operations
 * ---------------------------------------------------------------------- */

void weft__op_done(weft_sched *s, struct weft__op *op, int res)
{
    (void)s;
    op->res = res;
    op->done = 1;
    weft__wake(op->co, 0);
}

int weft__io_proactor(const weft_sched *s)
{
    return s->poller.ops->submit != NULL;
}

int weft__io_op(weft_sched *s, struct weft__op *op, int64_t deadline)
{
    weft_coro *co;
    int r = weft__block_check(s, &co);
    if (r < 0)
        return r;
    struct weft__fdrec *rec = rec_of(s, op->fd, 1);
    if (!rec)
        return -ENOMEM;
    op->done = 0;
    op->co = co;
    op->reason = 0;
    r = s->poller.ops->submit(&s->poller, op);
    if (r < 0)
        return r;
    weft__list_push_back(&rec->ops, &op->link);
    s->io_waiters++;
    co->wait_obj = op;
    co->wait_kind = WEFT__WAIT_OP;
    r = weft__block(s, deadline);
    if (!op->done) {
        /* Interrupted (deadline, raise, end): the kernel may still be
         * using the buffers, so cancel and wait for the completion, which
         * comes either as -ECANCELED or as the operation's real result. */
        int late = 0;
        s->poller.ops->cancel(&s->poller, op);
        while (!op->done) {
            co->wait_kind = WEFT__WAIT_OP; /* wait_obj NULL: cancelling */
            int w = weft__block_nointr(s);
            /* cppcheck-suppress knownConditionTrueFalse ; the completion
             * sets op->done while this coroutine is blocked */
            if (w < 0 && !op->done)
                late = w; /* raised meanwhile: keep it for later */
        }
        if (late && late != -ECANCELED)
            co->pending_err = late;
        if (op->res != -ECANCELED) {
            /* It completed after all: its result stands (no data lost);
             * a raised error waits for the next blocking call. */
            if (r != -ETIMEDOUT && r != -ECANCELED)
                co->pending_err = r;
            r = op->res;
        }
    } else {
        r = op->res;
    }
    if (r == -ECANCELED && op->reason)
        r = op->reason; /* weft_fd_forget/close or a reported EINTR */
    weft__list_remove(&op->link);
    s->io_waiters--;
    return r;
}

/* ----------------------------------------------------------------------
 * The poll step
 * ---------------------------------------------------------------------- */

/* After an event on a one-shot backend (WEFT__BK_ONESHOT: epoll), which
 * disabled the fd: enable what is still wanted (nothing, usually: the
 * waiters just woke), or fail the waiters that could not be re-armed. */
static void rearm(weft_sched *s, int fd, struct weft__fdrec *r)
{
    uint32_t w = r->always ? 0 : wanted(r);
    int e = s->poller.ops->set(&s->poller, fd, r->armed, w);
    r->armed = e == 0 ? w : 0;
    if (e < 0)
        fail_waiters(r, e);
}

static void on_ready(weft_sched *s, int fd, uint32_t revents)
{
    struct weft__fdrec *rec = rec_of(s, fd, 0);
    if (!rec)
        return;
    struct weft__list *l = rec->waiters.next;
    while (l != &rec->waiters) {
        struct fdwait *w = weft__container_of(l, struct fdwait, link);
        l = l->next;
        uint32_t got = revents & (w->events | WEFT_IO_ERROR);
        if (got) {
            weft__list_remove(&w->link);
            w->co->wait_cancel = NULL;
            weft__wake(w->co, (int)got);
        }
    }
    weft_io *io = rec->watch;
    if (io && (revents & (io->events | WEFT_IO_ERROR)) && io->events) {
        io->in_cb = 1;
        io->cb(io, fd, revents & (io->events | WEFT_IO_ERROR), io->arg);
        io->in_cb = 0;
        if (io->freed)
            weft__free(io);
        rec = rec_of(s, fd, 0); /* the callback may have grown the table */
        if (!rec)
            return;
    }
    if (s->poller.ops->caps & WEFT__BK_ONESHOT)
        rearm(s, fd, rec);
    else
        shrink(s, fd, rec);
}

int weft__io_poll(weft_sched *s, int64_t timeout_ns)
{
    int r = s->poller.ops->wait(&s->poller, timeout_ns, on_ready, s);
    if (r == -EINTR && s->eintr) {
        for (int fd = 0; fd < s->nfds; fd++) {
            if (s->fds[fd].init) {
                fail_waiters(&s->fds[fd], -EINTR);
                cancel_ops(s, &s->fds[fd], -EINTR);
            }
        }
    }
    return r;
}
