/*
 * fdio.c - coroutine I/O with timeouts: read, write, readv, writev, send,
 * recv, sendfile, accept and connect, and the multi-step loops (read
 * exactly n, write all, sendfile all).
 *
 * Every call follows one pattern: validate, check that the coroutine may
 * block (an ended coroutine or a pending raise fails at once), try the
 * system call, and only on EAGAIN wait with weft_fd_wait() until the
 * operation's deadline.  The deadline is computed lazily, at the first
 * wait, so a call that completes at once never reads the clock; a weak
 * (inactivity) timeout simply forgets its deadline whenever the call
 * makes progress, and the next wait computes a fresh one.
 *
 * Sockets are read and written with MSG_DONTWAIT (and MSG_NOSIGNAL), so
 * their mode never changes; the first ENOTSOCK switches the call to
 * read()/write() on an fd set O_NONBLOCK, with SIGPIPE blocked around
 * writes.  See docs/io.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

_Static_assert(sizeof(socklen_t) == sizeof(uint32_t), "accept op passes socklen_t * as uint32_t *");

/* ----------------------------------------------------------------------
 * Timeouts
 * ---------------------------------------------------------------------- */

#define DL_NONE (-1) /* no deadline */
#define DL_UNSET (-2) /* to be computed at the next wait */

struct tmo {
    weft_sched *s;
    int64_t span;     /* the timeout in ns; < 0: none */
    int64_t deadline; /* DL_NONE, DL_UNSET or a scheduler time */
    int weak;
};

/* Check the timeout argument; 0 or -EINVAL. */
static int tmo_valid(int64_t timeout, unsigned flags, unsigned allowed)
{
    if (timeout < WEFT_TIMEOUT_DEFAULT || (flags & ~allowed))
        return -EINVAL;
    return 0;
}

/*
 * Start an operation: the caller must be a coroutine that may block (not
 * ended, no pending raise, not in a hook).  Arguments are validated by
 * the caller first, so misuse reports -EINVAL whatever the state.
 */
static int tmo_begin(struct tmo *t, int64_t timeout, unsigned flags)
{
    weft_coro *co = weft__tls.current;
    if (!co)
        return -EINVAL;
    weft_sched *s = co->sched;
    int r = weft__block_check(s, &co);
    if (r < 0)
        return r;
    if (timeout == WEFT_TIMEOUT_DEFAULT)
        timeout = s->io_timeout > 0 ? s->io_timeout : WEFT_TIMEOUT_NONE;
    t->s = s;
    t->span = timeout;
    t->deadline = timeout < 0 ? DL_NONE : DL_UNSET;
    t->weak = (flags & WEFT_IO_WEAK) != 0;
    return 0;
}

static int64_t tmo_deadline(struct tmo *t)
{
    if (t->deadline == DL_UNSET) {
        int64_t now = weft__clock_now(t->s);
        t->deadline = now > INT64_MAX - t->span ? DL_NONE : now + t->span;
    }
    return t->deadline;
}

/* The operation moved data: a weak timeout starts again. */
static void tmo_progress(struct tmo *t)
{
    if (t->weak && t->span >= 0)
        t->deadline = DL_UNSET;
}

/* Wait for fd; 0 when it may be ready, else the wait's error. */
static int tmo_wait(struct tmo *t, int fd, uint32_t ev)
{
    int r = weft_fd_wait(fd, ev, tmo_deadline(t));
    return r < 0 ? r : 0;
}

/*
 * Back off after a resource shortage (err): sleep 1, 2, 4 ... 100 ms
 * between tries, WEFT_BACKOFF_MAX in total at most and never past the
 * deadline.  Returns 0 to try again, err when the back-off is over, or the
 * sleep's error (-ECANCELED, a raised error).
 */
struct backoff {
    int64_t step;
    int64_t spent;
};

#define BACKOFF_FIRST WEFT_MSEC(1)
#define BACKOFF_STEP_MAX WEFT_MSEC(100)

static int backoff(struct tmo *t, struct backoff *b, int err)
{
    if (!b->step)
        b->step = BACKOFF_FIRST;
    int64_t d = b->step;
    if (d > WEFT_BACKOFF_MAX - b->spent)
        d = WEFT_BACKOFF_MAX - b->spent;
    int64_t dl = tmo_deadline(t);
    if (dl != DL_NONE) {
        int64_t left = dl - weft__clock_now(t->s);
        if (d > left)
            d = left;
    }
    if (d <= 0)
        return err;
    int r = weft_sleep_for(d);
    if (r < 0)
        return r;
    b->spent += d;
    b->step = b->step * 2 > BACKOFF_STEP_MAX ? BACKOFF_STEP_MAX : b->step * 2;
    return 0;
}

/* ----------------------------------------------------------------------
 * SIGPIPE: writes to non-sockets and sendfile block it on this thread for
 * the duration of the system call, and discard the one the call raised.
 * (A SIGPIPE from a write is directed at the writing thread, so it is
 * pending here.)  If SIGPIPE was already blocked, the caller's mask is
 * left alone entirely.
 * ---------------------------------------------------------------------- */

struct nosig {
    sigset_t old;
    int blocked; /* we blocked it (it was not blocked before) */
};

static void nosig_begin(struct nosig *n)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    n->blocked = pthread_sigmask(SIG_BLOCK, &set, &n->old) == 0 &&
                 !sigismember(&n->old, SIGPIPE);
}

static void nosig_end(struct nosig *n, int epipe)
{
    if (!n->blocked)
        return;
    if (epipe) {
        sigset_t set, pend;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        if (sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE)) {
            static const struct timespec zero = {0, 0};
            while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
                ;
        }
    }
    pthread_sigmask(SIG_SETMASK, &n->old, NULL);
}

/* ----------------------------------------------------------------------
 * One attempt of a read or write: the bytes moved, or -errno (-EAGAIN
 * when it would block).  EINTR is retried here.
 * ---------------------------------------------------------------------- */

enum kind { K_READ, K_READV, K_RECV, K_WRITE, K_WRITEV, K_SEND };

struct xfer {
    int fd;
    enum kind kind;
    int plain;  /* not a socket: read()/write() on an O_NONBLOCK fd */
    int flags;  /* recv/send flags */
    void *buf;  /* K_READ, K_RECV, K_WRITE, K_SEND */
    size_t len;
    const struct iovec *iov; /* K_READV, K_WRITEV */
    int iovcnt;
};

static int is_write(enum kind k)
{
    return k == K_WRITE || k == K_WRITEV || k == K_SEND;
}

static ssize_t attempt(struct xfer *x)
{
    for (;;) {
        ssize_t n;
        int e = 0;
        if (!x->plain) {
            struct msghdr m;
            switch (x->kind) {
            case K_READ:
            case K_RECV:
                n = recv(x->fd, x->buf, x->len, x->flags | MSG_DONTWAIT);
                break;
            case K_WRITE:
            case K_SEND:
                n = send(x->fd, x->buf, x->len,
                         x->flags | MSG_DONTWAIT | MSG_NOSIGNAL);
                break;
            default:
                memset(&m, 0, sizeof m);
                m.msg_iov = (struct iovec *)(uintptr_t)x->iov;
                m.msg_iovlen = (size_t)x->iovcnt;
                n = x->kind == K_READV
                        ? recvmsg(x->fd, &m, MSG_DONTWAIT)
                        : sendmsg(x->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
                break;
            }
            if (n >= 0)
                return n;
            e = errno;
            if (e == ENOTSOCK && x->kind != K_RECV && x->kind != K_SEND) {
                int r = weft_fd_nonblock(x->fd);
                if (r < 0)
                    return r;
                x->plain = 1;
                continue;
            }
        } else if (is_write(x->kind)) {
            struct nosig ns;
            nosig_begin(&ns);
            n = x->kind == K_WRITE ? write(x->fd, x->buf, x->len)
                                   : writev(x->fd, x->iov, x->iovcnt);
            e = n < 0 ? errno : 0;
            nosig_end(&ns, e == EPIPE);
            if (n >= 0)
                return n;
        } else {
            n = x->kind == K_READ ? read(x->fd, x->buf, x->len)
                                  : readv(x->fd, x->iov, x->iovcnt);
            if (n >= 0)
                return n;
            e = errno;
        }
        if (e == EINTR)
            continue;
        return e == EWOULDBLOCK ? -EAGAIN : -e;
    }
}

/*
 * With a proactor backend (io_uring), an attempt that would block is not
 * followed by a readiness wait and a retry: the operation itself goes to
 * the kernel, which completes it when it can (weft__io_op), and its
 * result is that of the attempt.  Returns the bytes moved or a negative
 * errno, or WOULD_WAIT when the caller should wait for readiness instead:
 * a readiness backend, or a write to something that is not a socket
 * (pipe, FIFO, tty).  Such a write stays off the ring because the kernel
 * raises SIGPIPE in whichever context performs it (the submitting thread
 * or a later task-work run), where weft cannot block and discard the
 * signal as it does around its own write(2).  Socket writes go to the
 * ring as send/sendmsg with MSG_NOSIGNAL and raise nothing.
 */
#define WOULD_WAIT (-EAGAIN)

static ssize_t submit_xfer(struct xfer *x, struct tmo *t)
{
    struct weft__op op;
    struct msghdr m; /* K_WRITEV: lives until weft__io_op() returns */
    if (!weft__io_proactor(t->s))
        return WOULD_WAIT;
    memset(&op, 0, sizeof op);
    op.fd = x->fd;
    op.off = -1;
    op.buf = x->buf;
    op.len = x->len;
    switch (x->kind) {
    case K_READ:
    case K_RECV:
        op.kind = x->plain ? WEFT__OP_READ : WEFT__OP_RECV;
        op.flags = x->plain ? 0 : x->flags;
        break;
    case K_READV:
        op.kind = WEFT__OP_READV;
        op.buf = (void *)(uintptr_t)x->iov;
        op.len = (size_t)x->iovcnt;
        break;
    case K_WRITE:
    case K_SEND:
        if (x->plain)
            return WOULD_WAIT;
        op.kind = WEFT__OP_SEND;
        op.flags = x->flags | MSG_NOSIGNAL;
        break;
    case K_WRITEV:
        if (x->plain)
            return WOULD_WAIT;
        memset(&m, 0, sizeof m);
        m.msg_iov = (struct iovec *)(uintptr_t)x->iov;
        m.msg_iovlen = (size_t)x->iovcnt;
        op.kind = WEFT__OP_SENDMSG;
        op.buf = &m;
        op.flags = MSG_NOSIGNAL;
        break;
    default:
        return WOULD_WAIT;
    }
    ssize_t r = weft__io_op(t->s, &op, tmo_deadline(t));
    return r == -EAGAIN ? -EIO : r; /* never ask to wait after a real op */
}

/*
 * The drained hint: a read that returned less than was asked emptied the
 * fd, so the next read on it (the answer a peer has not sent yet, in a
 * request-reply loop) would fail with EAGAIN.  That next read skips the
 * attempt and waits first, or goes to the ring at once, saving a system
 * call per wait.  If data came meanwhile the wait ends at once: a wrong
 * hint costs a loop iteration, never a result.  Stream sockets only: a
 * datagram socket's read takes one datagram, short or not, and a pipe's
 * first attempt is also what keeps it non-blocking (see attempt()).  Not
 * for a zero timeout (the caller asked to try), nor with recv flags.
 */
/* A plain read or recv (no flags): the calls the hint is for. */
static int hinted(const struct xfer *x)
{
    return (x->kind == K_READ || x->kind == K_RECV) && !x->flags;
}

static int skip_attempt(const struct xfer *x, struct tmo *t)
{
    if (!hinted(x) || !t->span)
        return 0;
    unsigned h = weft__fd_hints(t->s, x->fd);
    return (h & (WEFT__HINT_DRAINED | WEFT__HINT_STREAM)) ==
           (WEFT__HINT_DRAINED | WEFT__HINT_STREAM);
}

static void note_read(struct xfer *x, struct tmo *t, ssize_t n)
{
    if (!hinted(x))
        return;
    weft_sched *s = t->s;
    unsigned h = weft__fd_hints(s, x->fd);
    if (n <= 0 || (size_t)n >= x->len) {
        if (h & WEFT__HINT_DRAINED)
            weft__fd_set_hints(s, x->fd, WEFT__HINT_DRAINED, 0);
        return;
    }
    if (x->plain)
        return;
    if (!(h & (WEFT__HINT_STREAM | WEFT__HINT_OTHER))) {
        /* Once per fd: a stream socket? */
        int type = 0;
        socklen_t len = sizeof type;
        h |= getsockopt(x->fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
                     type == SOCK_STREAM
                 ? WEFT__HINT_STREAM
                 : WEFT__HINT_OTHER;
    }
    if (h & WEFT__HINT_STREAM)
        h |= WEFT__HINT_DRAINED;
    weft__fd_set_hints(s, x->fd, ~0u, h);
}

/* Attempt, and wait (or hand the operation to the kernel) whenever it
 * would block. */
static ssize_t xfer_once(struct xfer *x, struct tmo *t)
{
    uint32_t ev = is_write(x->kind) ? WEFT_IO_WRITE : WEFT_IO_READ;
    int skip = skip_attempt(x, t);
    for (;;) {
        ssize_t n = skip ? -EAGAIN : attempt(x);
        skip = 0;
        if (n != -EAGAIN) {
            note_read(x, t, n);
            return n;
        }
        n = submit_xfer(x, t);
        if (n != WOULD_WAIT) {
            note_read(x, t, n);
            return n;
        }
        int r = tmo_wait(t, x->fd, ev);
        if (r < 0)
            return r;
    }
}

/* ----------------------------------------------------------------------
 * Argument checks
 * ---------------------------------------------------------------------- */

static int buf_ok(int fd, const void *buf, size_t len)
{
    return fd >= 0 && (buf || !len) && len <= SSIZE_MAX;
}

/* 0, or -EINVAL for a bad vector (total length beyond SSIZE_MAX too). */
static int iov_ok(int fd, const struct iovec *iov, int iovcnt)
{
    if (fd < 0 || iovcnt < 0 || iovcnt > IOV_MAX || (!iov && iovcnt))
        return -EINVAL;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (!iov[i].iov_base && iov[i].iov_len)
            return -EINVAL;
        if (iov[i].iov_len > (size_t)SSIZE_MAX - total)
            return -EINVAL;
        total += iov[i].iov_len;
    }
    return 0;
}

/* ----------------------------------------------------------------------
 * Single-step calls
 * ---------------------------------------------------------------------- */

static ssize_t simple(struct xfer *x, int64_t timeout)
{
    struct tmo t;
    int r = tmo_valid(timeout, 0, 0);
    if (r == 0)
        r = tmo_begin(&t, timeout, 0);
    if (r < 0)
        return r;
    return xfer_once(x, &t);
}

ssize_t weft_read(int fd, void *buf, size_t len, int64_t timeout)
{
    if (!buf_ok(fd, buf, len))
        return -EINVAL;
    struct xfer x = {fd, K_READ, 0, 0, buf, len, NULL, 0};
    return simple(&x, timeout);
}

ssize_t weft_recv(int fd, void *buf, size_t len, int flags, int64_t timeout)
{
    if (!buf_ok(fd, buf, len))
        return -EINVAL;
    struct xfer x = {fd, K_RECV, 0, flags, buf, len, NULL, 0};
    return simple(&x, timeout);
}

ssize_t weft_readv(int fd, const struct iovec *iov, int iovcnt,
                   int64_t timeout)
{
    int r = iov_ok(fd, iov, iovcnt);
    if (r < 0)
        return r;
    struct xfer x = {fd, K_READV, 0, 0, NULL, 0, iov, iovcnt};
    return simple(&x, timeout);
}

ssize_t weft_write(int fd, const void *buf, size_t len, int64_t timeout)
{
    if (!buf_ok(fd, buf, len))
        return -EINVAL;
    struct xfer x = {fd, K_WRITE, 0, 0, (void *)(uintptr_t)buf, len, NULL, 0};
    return simple(&x, timeout);
}

ssize_t weft_send(int fd, const void *buf, size_t len, int flags,
                  int64_t timeout)
{
    if (!buf_ok(fd, buf, len))
        return -EINVAL;
    struct xfer x = {fd, K_SEND, 0, flags, (void *)(uintptr_t)buf, len,
                     NULL, 0};
    return simple(&x, timeout);
}

ssize_t weft_writev(int fd, const struct iovec *iov, int iovcnt,
                    int64_t timeout)
{
    int r = iov_ok(fd, iov, iovcnt);
    if (r < 0)
        return r;
    struct xfer x = {fd, K_WRITEV, 0, 0, NULL, 0, iov, iovcnt};
    return simple(&x, timeout);
}

/* ----------------------------------------------------------------------
 * Multi-step calls
 * ---------------------------------------------------------------------- */

static void set_done(size_t *done, size_t n)
{
    if (done)
        *done = n;
}

/* Read or write buf[0..len) completely (K_READ or K_WRITE). */
static ssize_t loop_buf(enum kind k, int fd, char *buf, size_t len,
                        int64_t timeout, unsigned flags, size_t *done)
{
    struct tmo t;
    size_t got = 0;
    set_done(done, 0);
    if (!buf_ok(fd, buf, len))
        return -EINVAL;
    int r = tmo_valid(timeout, flags, WEFT_IO_WEAK);
    if (r == 0)
        r = tmo_begin(&t, timeout, flags);
    if (r < 0)
        return r;
    struct xfer x = {fd, k, 0, 0, NULL, 0, NULL, 0};
    uint32_t ev = k == K_WRITE ? WEFT_IO_WRITE : WEFT_IO_READ;
    while (got < len) {
        x.buf = buf + got;
        x.len = len - got;
        ssize_t n = attempt(&x);
        if (n == -EAGAIN)
            n = submit_xfer(&x, &t);
        if (n > 0) {
            got += (size_t)n;
            set_done(done, got);
            tmo_progress(&t);
            continue;
        }
        if (n == 0 && k == K_READ)
            return -EPIPE; /* end of file before len bytes */
        if (n < 0 && n != WOULD_WAIT)
            return n;
        if (n == WOULD_WAIT) {
            r = tmo_wait(&t, fd, ev);
            if (r < 0)
                return r;
        }
    }
    return (ssize_t)len;
}

ssize_t weft_read_exact(int fd, void *buf, size_t len, int64_t timeout,
                        unsigned flags, size_t *done)
{
    return loop_buf(K_READ, fd, buf, len, timeout, flags, done);
}

ssize_t weft_write_all(int fd, const void *buf, size_t len, int64_t timeout,
                       unsigned flags, size_t *done)
{
    return loop_buf(K_WRITE, fd, (char *)(uintptr_t)buf, len, timeout, flags,
                    done);
}

/* The iovecs handed to one writev: a window on the caller's array. */
#define IOV_WINDOW 64

ssize_t weft_writev_all(int fd, const struct iovec *iov, int iovcnt,
                        int64_t timeout, unsigned flags, size_t *done)
{
    struct tmo t;
    size_t got = 0, total = 0;
    set_done(done, 0);
    int r = iov_ok(fd, iov, iovcnt);
    if (r == 0)
        r = tmo_valid(timeout, flags, WEFT_IO_WEAK);
    if (r == 0)
        r = tmo_begin(&t, timeout, flags);
    if (r != 0) /* t is set up only when every step returned 0 */
        return r;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    struct iovec win[IOV_WINDOW];
    struct xfer x = {fd, K_WRITEV, 0, 0, NULL, 0, win, 0};
    int idx = 0;    /* first buffer not fully written */
    size_t off = 0; /* bytes of iov[idx] already written */
    while (got < total) {
        while (idx < iovcnt && off == iov[idx].iov_len) {
            idx++;
            off = 0;
        }
        int n = 0;
        for (int i = idx; i < iovcnt && n < IOV_WINDOW; i++) {
            if (!iov[i].iov_len)
                continue;
            win[n].iov_base = (char *)iov[i].iov_base + (i == idx ? off : 0);
            win[n].iov_len = iov[i].iov_len - (i == idx ? off : 0);
            n++;
        }
        x.iovcnt = n;
        ssize_t w = attempt(&x);
        if (w > 0) {
            got += (size_t)w;
            set_done(done, got);
            tmo_progress(&t);
            size_t left = (size_t)w;
            while (left) {
                size_t room = iov[idx].iov_len - off;
                if (left < room) {
                    off += left;
                    left = 0;
                } else {
                    left -= room;
                    idx++;
                    off = 0;
                }
            }
            continue;
        }
        if (w < 0 && w != -EAGAIN)
            return w;
        r = tmo_wait(&t, fd, WEFT_IO_WRITE);
        if (r < 0)
            return r;
    }
    return (ssize_t)total;
}

/* ----------------------------------------------------------------------
 * sendfile
 * ---------------------------------------------------------------------- */

static ssize_t sendfile_attempt(int out_fd, int in_fd, int64_t *offset,
                                size_t count)
{
    off_t o = 0, *po = NULL;
    if (offset) {
        o = (off_t)*offset;
        po = &o;
    }
    for (;;) {
        struct nosig ns;
        nosig_begin(&ns);
        ssize_t n = sendfile(out_fd, in_fd, po, count);
        int e = n < 0 ? errno : 0;
        nosig_end(&ns, e == EPIPE);
        if (n >= 0) {
            if (offset)
                *offset = (int64_t)o;
            return n;
        }
        if (e == EINTR)
            continue;
        return e == EWOULDBLOCK ? -EAGAIN : -e;
    }
}

static int sendfile_args(int out_fd, int in_fd, const int64_t *offset,
                         size_t count)
{
    if (out_fd < 0 || in_fd < 0 || count > SSIZE_MAX ||
        (offset && *offset < 0))
        return -EINVAL;
    return 0;
}

ssize_t weft_sendfile(int out_fd, int in_fd, int64_t *offset, size_t count,
                      int64_t timeout)
{
    struct tmo t;
    int r = sendfile_args(out_fd, in_fd, offset, count);
    if (r == 0)
        r = tmo_valid(timeout, 0, 0);
    if (r == 0)
        r = tmo_begin(&t, timeout, 0);
    if (r == 0)
        r = weft_fd_nonblock(out_fd);
    if (r < 0)
        return r;
    for (;;) {
        ssize_t n = sendfile_attempt(out_fd, in_fd, offset, count);
        if (n != -EAGAIN)
            return n;
        r = tmo_wait(&t, out_fd, WEFT_IO_WRITE);
        if (r < 0)
            return r;
    }
}

ssize_t weft_sendfile_all(int out_fd, int in_fd, int64_t *offset,
                          size_t count, int64_t timeout, unsigned flags,
                          size_t *done)
{
    struct tmo t;
    size_t got = 0;
    set_done(done, 0);
    int r = sendfile_args(out_fd, in_fd, offset, count);
    if (r == 0)
        r = tmo_valid(timeout, flags, WEFT_IO_WEAK);
    if (r == 0)
        r = tmo_begin(&t, timeout, flags);
    if (r == 0)
        r = weft_fd_nonblock(out_fd);
    if (r < 0)
        return r;
    while (got < count) {
        ssize_t n = sendfile_attempt(out_fd, in_fd, offset, count - got);
        if (n > 0) {
            got += (size_t)n;
            set_done(done, got);
            tmo_progress(&t);
            continue;
        }
        if (n == 0)
            return -ENODATA; /* in_fd ended early */
        if (n != -EAGAIN)
            return n;
        r = tmo_wait(&t, out_fd, WEFT_IO_WRITE);
        if (r < 0)
            return r;
    }
    return (ssize_t)count;
}

/* ----------------------------------------------------------------------
 * accept and connect
 * ---------------------------------------------------------------------- */

/* Errors of the pending connection that Linux's accept() passes on (see
 * accept(2), "Error handling"): skip that connection and go on. */
static int accept_skippable(int e)
{
    switch (e) {
    case ECONNABORTED:
    case EPROTO:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case ENETUNREACH:
        return 1;
    default:
        return 0;
    }
}

/* Out of descriptors or memory: weft_accept backs off and tries again. */
static int accept_scarce(int e)
{
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

int weft_accept(int fd, struct sockaddr *addr, socklen_t *addrlen,
                int64_t timeout)
{
    struct tmo t;
    struct backoff bo = {0, 0};
    if (fd < 0 || (addr && !addrlen))
        return -EINVAL;
    int r = tmo_valid(timeout, 0, 0);
    if (r == 0)
        r = tmo_begin(&t, timeout, 0);
    if (r == 0)
        r = weft_fd_nonblock(fd);
    if (r < 0)
        return r;
    socklen_t room = addrlen ? *addrlen : 0;
    for (;;) {
        if (addrlen)
            *addrlen = room;
        /* cppcheck-suppress nullPointerRedundantCheck ; cppcheck's gnu.cfg
         * marks accept4()'s addrlen non-null, but NULL (with addr NULL) is
         * allowed */
        int c = accept4(fd, addr, addrlen, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c >= 0)
            return c;
        int e = errno;
        if (addrlen)
            *addrlen = room;
        if (e == EINTR || accept_skippable(e))
            continue;
        if ((e == EAGAIN || e == EWOULDBLOCK) && !weft__io_proactor(t.s)) {
            r = tmo_wait(&t, fd, WEFT_IO_READ);
            if (r < 0)
                return r;
            continue;
        }
        if (e == EAGAIN || e == EWOULDBLOCK) {
            /* Hand the accept to the kernel (io_uring) and take its
             * result as this attempt's. */
            struct weft__op op;
            memset(&op, 0, sizeof op);
            op.kind = WEFT__OP_ACCEPT;
            op.fd = fd;
            op.addr = addr;
            op.addrlenp = (uint32_t *)(void *)addrlen;
            op.flags = SOCK_CLOEXEC | SOCK_NONBLOCK;
            c = weft__io_op(t.s, &op, tmo_deadline(&t));
            if (c >= 0)
                return c;
            e = -c;
            if (e == EAGAIN || accept_skippable(e))
                continue;
            /* Anything else (a deadline, cancellation, a reported EINTR,
             * a shortage) as for accept4() itself. */
        }
        if (!accept_scarce(e))
            return -e;
        r = backoff(&t, &bo, -e);
        if (r < 0)
            return r;
    }
}

/* Connect through the proactor: the kernel attempts the connect and
 * completes the operation when the handshake ends.  A Unix socket never
 * goes there (its connect finishes or fails at once, and a full listen
 * queue must give EAGAIN and the back-off, where the ring would wait).
 * Returns 0, a negative errno, or WOULD_WAIT to use the readiness path. */
static int connect_op(struct tmo *t, int fd, const struct sockaddr *addr,
                      socklen_t addrlen)
{
    struct backoff bo = {0, 0};
    if (!weft__io_proactor(t->s) || addrlen < sizeof addr->sa_family ||
        addr->sa_family == AF_UNIX)
        return WOULD_WAIT;
    for (;;) {
        struct weft__op op;
        memset(&op, 0, sizeof op);
        op.kind = WEFT__OP_CONNECT;
        op.fd = fd;
        op.addr = (void *)(uintptr_t)addr;
        op.addrlen = (uint32_t)addrlen;
        int r = (int)weft__io_op(t->s, &op, tmo_deadline(t));
        if (r != -EAGAIN)
            return r;
        r = backoff(t, &bo, -EAGAIN); /* no local port free */
        if (r < 0)
            return r;
    }
}

int weft_connect(int fd, const struct sockaddr *addr, socklen_t addrlen,
                 int64_t timeout)
{
    struct tmo t;
    struct backoff bo = {0, 0};
    if (fd < 0 || !addr || !addrlen)
        return -EINVAL;
    int r = tmo_valid(timeout, 0, 0);
    if (r == 0)
        r = tmo_begin(&t, timeout, 0);
    if (r == 0)
        r = weft_fd_nonblock(fd);
    if (r < 0)
        return r;
    r = connect_op(&t, fd, addr, addrlen);
    if (r != WOULD_WAIT)
        return r;
    for (;;) {
        if (connect(fd, addr, addrlen) == 0)
            return 0;
        int e = errno;
        if (e == EINPROGRESS || e == EALREADY || e == EINTR)
            break; /* the connection goes on: wait for it */
        if (e != EAGAIN)
            return -e;
        r = backoff(&t, &bo, -EAGAIN);
        if (r < 0)
            return r;
    }
    for (;;) {
        r = tmo_wait(&t, fd, WEFT_IO_WRITE);
        if (r < 0)
            return r;
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            return -errno;
        if (err)
            return -err;
        /* Writable with no error: connected, unless the wake-up was
         * spurious (still in progress: wait again). */
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0)
            return 0;
        if (errno != ENOTCONN)
            return -errno;
    }
}
