/*
 * uring.c - the io_uring backend (through liburing): a proactor.
 *
 * Operations (read, write, readv/writev, recv/send, accept, connect) are
 * submitted to the ring and complete there; the coroutine I/O calls use
 * them directly instead of waiting for readiness and retrying a system
 * call.  Readiness (weft_fd_wait, readiness callbacks) is a one-shot
 * IORING_OP_POLL_ADD per fd, re-armed after each completion while someone
 * still wants the fd: since a poll submitted on a ready fd completes at
 * once, that gives the same level-triggered meaning as epoll.
 *
 * Submission is batched: SQEs queue up during an iteration of the loop and
 * go to the kernel together, in one io_uring_enter(), before the wait for
 * completions, whose timeout (the time to the next timer) goes to the ring
 * too (as an extended argument, or a timeout SQE on older kernels).
 *
 * The probe: io_uring_queue_init() fails where the kernel refuses io_uring
 * (seccomp, kernel.io_uring_disabled, old kernels); the scheduler then
 * falls back to epoll without a word.
 */
#include "internal.h"

#if defined(WEFT_HAVE_URING)

#include <liburing.h>
#include <poll.h>
#include <string.h>

#define RING_ENTRIES 256

/* user_data: an operation is its (8-aligned) address; a poll is tagged
 * with bit 0 and carries the fd and a generation; 0 is ignored (the CQEs
 * of our own cancel requests). */
#define UD_POLL 1u

struct upoll {
    uint32_t mask;     /* interest (WEFT_IO_*) */
    uint32_t armed;    /* mask of the poll in flight, 0 if none */
    uint32_t gen;      /* generation of the poll in flight */
    uint8_t removing;  /* a POLL_REMOVE for it is on its way */
    uint8_t later;     /* reported this wait: re-arm at the next one */
};

struct ustate {
    struct io_uring ring;
    struct upoll *fds;
    int nfds;
    int *later;        /* fds to re-arm at the start of the next wait */
    int nlater, caplater;
};

static int u_init(struct weft__poller *p)
{
    struct ustate *st = weft__calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    int r = io_uring_queue_init(RING_ENTRIES, &st->ring, 0);
    if (r < 0) {
        weft__free(st);
        return r;
    }
    p->state = st;
    return 0;
}

static void u_fini(struct weft__poller *p)
{
    struct ustate *st = p->state;
    if (st) {
        io_uring_queue_exit(&st->ring);
        weft__free(st->fds);
        weft__free(st->later);
        weft__free(st);
        p->state = NULL;
    }
}

/* An SQE, flushing the queue to the kernel when it is full. */
static struct io_uring_sqe *sqe_get(struct ustate *st)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&st->ring);
    if (!sqe) {
        (void)io_uring_submit(&st->ring);
        sqe = io_uring_get_sqe(&st->ring);
    }
    return sqe;
}

static uint64_t poll_ud(int fd, uint32_t gen)
{
    return ((uint64_t)gen << 32) | ((uint64_t)(uint32_t)fd << 1) | UD_POLL;
}

static int arm_poll(struct ustate *st, int fd)
{
    struct upoll *u = &st->fds[fd];
    struct io_uring_sqe *sqe = sqe_get(st);
    if (!sqe)
        return -EBUSY;
    unsigned m = (u->mask & WEFT_IO_READ ? POLLIN | POLLRDHUP : 0u) |
                 (u->mask & WEFT_IO_WRITE ? POLLOUT : 0u);
    u->gen++;
    io_uring_prep_poll_add(sqe, fd, m);
    io_uring_sqe_set_data64(sqe, poll_ud(fd, u->gen));
    u->armed = u->mask;
    return 0;
}

static int u_set(struct weft__poller *p, int fd, uint32_t old_ev,
                 uint32_t new_ev)
{
    struct ustate *st = p->state;
    (void)old_ev;
    if (fd < 0)
        return -EBADF;
    if (fd >= st->nfds) {
        if (!new_ev)
            return 0;
        int n = st->nfds ? st->nfds : 64;
        while (n <= fd)
            n *= 2;
        struct upoll *t = weft__realloc(st->fds, (size_t)n * sizeof *t);
        if (!t)
            return -ENOMEM;
        memset(&t[st->nfds], 0, (size_t)(n - st->nfds) * sizeof *t);
        st->fds = t;
        st->nfds = n;
    }
    struct upoll *u = &st->fds[fd];
    u->mask = new_ev;
    if (u->later)
        return 0; /* re-armed, with the mask of then, at the next wait */
    if (!u->armed)
        return new_ev ? arm_poll(st, fd) : 0;
    /* A poll is in flight.  One asking for less is fine (its result is
     * filtered); one missing some bits, or no longer wanted, goes. */
    if ((new_ev & ~u->armed) || !new_ev) {
        if (!u->removing) {
            struct io_uring_sqe *sqe = sqe_get(st);
            if (!sqe)
                return -EBUSY;
            io_uring_prep_poll_remove(sqe, poll_ud(fd, u->gen));
            io_uring_sqe_set_data64(sqe, 0);
            u->removing = 1;
        }
    }
    return 0;
}

static void on_poll(struct ustate *st, uint64_t ud, int res,
                    weft__ready_fn ready, weft_sched *s)
{
    int fd = (int)((ud & 0xffffffffu) >> 1);
    uint32_t gen = (uint32_t)(ud >> 32);
    if (fd >= st->nfds || st->fds[fd].gen != gen || !st->fds[fd].armed)
        return; /* a stale poll */
    struct upoll *u = &st->fds[fd];
    u->armed = 0;
    u->removing = 0;
    if (res != -ECANCELED && u->mask) {
        uint32_t r = 0;
        if (res < 0) {
            r = WEFT_IO_ERROR;
        } else {
            if (res & (POLLIN | POLLRDHUP | POLLPRI))
                r |= WEFT_IO_READ;
            if (res & POLLOUT)
                r |= WEFT_IO_WRITE;
            if (res & (POLLERR | POLLHUP | POLLNVAL))
                r |= WEFT_IO_ERROR;
        }
        r &= u->mask | WEFT_IO_ERROR;
        if (r) {
            ready(s, fd, r); /* may change the mask or re-arm */
            u = &st->fds[fd]; /* ready() may have grown the array */
            /* Level-triggered means once per wait, like epoll: re-arm at
             * the next wait, not now (it would complete again at once). */
            if (u->mask && !u->armed && !u->later) {
                if (st->nlater == st->caplater) {
                    int cap = st->caplater ? st->caplater * 2 : 64;
                    int *l = weft__realloc(st->later, (size_t)cap * sizeof *l);
                    if (!l) {
                        (void)arm_poll(st, fd);
                        return;
                    }
                    st->later = l;
                    st->caplater = cap;
                }
                u->later = 1;
                st->later[st->nlater++] = fd;
            }
            return;
        }
    }
    u = &st->fds[fd];
    if (u->mask && !u->armed && !u->later)
        (void)arm_poll(st, fd);
}

static int u_wait(struct weft__poller *p, int64_t timeout_ns,
                  weft__ready_fn ready, weft_sched *s)
{
    struct ustate *st = p->state;
    struct io_uring_cqe *cqe = NULL;
    int r;
    for (int i = 0; i < st->nlater; i++) {
        int fd = st->later[i];
        struct upoll *u = &st->fds[fd];
        u->later = 0;
        if (u->mask && !u->armed)
            (void)arm_poll(st, fd);
    }
    st->nlater = 0;
    /* Submit first, then wait: io_uring_enter() reports the number of
     * SQEs it submitted rather than an interrupted wait, and the EINTR
     * policy needs to see the interruption.  All SQEs of the iteration
     * still go to the kernel in one call. */
    r = io_uring_sq_ready(&st->ring) ? io_uring_submit(&st->ring) : 0;
    if (r >= 0 && timeout_ns != 0 && !io_uring_cq_ready(&st->ring)) {
        if (timeout_ns < 0) {
            r = io_uring_wait_cqe(&st->ring, &cqe);
        } else {
            struct __kernel_timespec ts;
            ts.tv_sec = timeout_ns / 1000000000LL;
            ts.tv_nsec = timeout_ns % 1000000000LL;
            r = io_uring_wait_cqe_timeout(&st->ring, &cqe, &ts);
            if (r == -ETIME)
                r = 0;
        }
    }
    if (r < 0 && r != -EINTR && r != -EBUSY)
        return r;
    int eintr = r == -EINTR;
    int n = 0;
    /* Callbacks may queue new SQEs but never consume CQEs, so walking the
     * completion queue while they run is safe.  SQEs queued while
     * processing (polls re-armed after a change of interest) are flushed
     * at once, a few rounds at most, so readiness is not a whole loop
     * iteration late. */
    for (int round = 0; round < 4; round++) {
        for (;;) {
            unsigned head;
            unsigned seen = 0;
            io_uring_for_each_cqe(&st->ring, head, cqe)
            {
                uint64_t ud = io_uring_cqe_get_data64(cqe);
                int res = cqe->res;
                seen++;
                if (!ud)
                    continue;
                if (ud & UD_POLL)
                    on_poll(st, ud, res, ready, s);
                else
                    weft__op_done(s, (struct weft__op *)(uintptr_t)ud, res);
                n++;
            }
            if (!seen)
                break;
            io_uring_cq_advance(&st->ring, seen);
        }
        if (!io_uring_sq_ready(&st->ring))
            break;
        (void)io_uring_submit(&st->ring);
    }
    return n ? n : eintr ? -EINTR : 0;
}

static int u_fd(struct weft__poller *p)
{
    struct ustate *st = p->state;
    return st->ring.ring_fd;
}

static int u_submit(struct weft__poller *p, struct weft__op *op)
{
    struct ustate *st = p->state;
    struct io_uring_sqe *sqe = sqe_get(st);
    if (!sqe)
        return -EBUSY;
    uint64_t off = op->off < 0 ? (uint64_t)-1 : (uint64_t)op->off;
    switch (op->kind) {
    case WEFT__OP_READ:
        io_uring_prep_read(sqe, op->fd, op->buf, (unsigned)op->len, off);
        break;
    case WEFT__OP_WRITE:
        io_uring_prep_write(sqe, op->fd, op->buf, (unsigned)op->len, off);
        break;
    case WEFT__OP_READV:
        io_uring_prep_readv(sqe, op->fd, op->buf, (unsigned)op->len, off);
        break;
    case WEFT__OP_WRITEV:
        io_uring_prep_writev(sqe, op->fd, op->buf, (unsigned)op->len, off);
        break;
    case WEFT__OP_RECV:
        io_uring_prep_recv(sqe, op->fd, op->buf, op->len, op->flags);
        break;
    case WEFT__OP_SEND:
        io_uring_prep_send(sqe, op->fd, op->buf, op->len, op->flags);
        break;
    case WEFT__OP_ACCEPT:
        io_uring_prep_accept(sqe, op->fd, op->addr,
                             (socklen_t *)(void *)op->addrlenp, op->flags);
        break;
    case WEFT__OP_CONNECT:
        io_uring_prep_connect(sqe, op->fd, op->addr, op->addrlen);
        break;
    case WEFT__OP_SENDMSG:
        io_uring_prep_sendmsg(sqe, op->fd, op->buf, (unsigned)op->flags);
        break;
    default:
        /* Hand the SQE back as a no-op that nobody waits for. */
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, 0);
        return -EINVAL;
    }
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op);
    return 0;
}

static void u_cancel(struct weft__poller *p, struct weft__op *op)
{
    struct ustate *st = p->state;
    struct io_uring_sqe *sqe = sqe_get(st);
    if (!sqe)
        return; /* the operation will still complete on its own */
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
    io_uring_sqe_set_data64(sqe, 0);
    (void)io_uring_submit(&st->ring);
}

const struct weft__backend_ops weft__uring_ops = {
    "io_uring", u_init, u_fini, u_set, u_wait, u_fd, u_submit, u_cancel, 0,
};

#else
/* ISO C wants at least one declaration per translation unit. */
typedef int weft__uring_unused_tu;
#endif
