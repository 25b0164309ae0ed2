/*
 * backend.h - the contract between the scheduler and an I/O poller.
 *
 * A backend keeps, per fd, an interest mask (WEFT_IO_READ | WEFT_IO_WRITE)
 * and reports readiness.  It is one file behind this small table (epoll.c,
 * poll.c; io_uring later), chosen when the scheduler is created.  Masks
 * are level-triggered: an fd that stays ready is reported again at every
 * wait until its interest is cleared.
 */
#ifndef WEFT_POLL_BACKEND_H
#define WEFT_POLL_BACKEND_H

#include <stdint.h>

#include "list.h"
#include "weft.h"

struct weft__poller;

/*
 * A completion-based operation (proactor backends only).  The caller owns
 * it and its buffers until weft__op_done() has been called for it: even a
 * cancelled operation completes (with -ECANCELED, or with its result if it
 * finished first).
 */
enum weft__op_kind {
    WEFT__OP_READ = 1, /* read(fd, buf, len) at off (-1: file position) */
    WEFT__OP_WRITE,
    WEFT__OP_READV,    /* buf is a struct iovec *, len the count */
    WEFT__OP_WRITEV,
    WEFT__OP_RECV,     /* recv(fd, buf, len, flags) */
    WEFT__OP_SEND,
    WEFT__OP_ACCEPT,   /* accept4(fd, addr, addrlenp, flags) */
    WEFT__OP_CONNECT,  /* connect(fd, addr, addrlen) */
    WEFT__OP_SENDMSG   /* sendmsg(fd, buf as struct msghdr *, flags) */
};

struct weft__op {
    uint8_t kind;
    uint8_t done;          /* set by weft__op_done() */
    int fd;
    int flags;
    void *buf;
    size_t len;
    int64_t off;
    void *addr;            /* struct sockaddr * */
    uint32_t addrlen;      /* connect */
    uint32_t *addrlenp;    /* accept (socklen_t *) */
    int res;               /* the result: >= 0 or a negative errno */
    void *co;              /* the waiting coroutine */
    int reason;            /* why weft cancelled it (-EBADF, -EINTR), 0 */
    struct weft__list link; /* in its fd's list of operations in flight */
};

/* Called by a proactor backend's wait() for each completed operation. */
void weft__op_done(weft_sched *s, struct weft__op *op, int res);

/* Called by wait() once per ready fd, with WEFT_IO_* bits (ERR and HUP
 * are reported as WEFT_IO_ERROR). */
typedef void (*weft__ready_fn)(weft_sched *s, int fd, uint32_t revents);

struct weft__backend_ops {
    const char *name;
    /* Set up p->state; 0 or a negative errno (then the next is tried). */
    int (*init)(struct weft__poller *p);
    void (*fini)(struct weft__poller *p);
    /* Change fd's interest from old_ev to new_ev (0 means none: add,
     * modify and delete are all this).  0 or a negative errno; -EPERM
     * means the fd cannot be polled (a regular file: always ready). */
    int (*set)(struct weft__poller *p, int fd, uint32_t old_ev,
               uint32_t new_ev);
    /* Wait up to timeout_ns (0: poll; -1: forever) and report ready fds.
     * Returns how many were reported, or -EINTR if a signal interrupted
     * the wait, or another negative errno. */
    int (*wait)(struct weft__poller *p, int64_t timeout_ns,
                weft__ready_fn ready, weft_sched *s);
    /* A file descriptor that polls readable when wait() would report
     * something, or a negative errno when the backend has none. */
    int (*fd)(struct weft__poller *p);
    /* Proactor backends only (NULL otherwise): start op, completed later
     * through weft__op_done(); 0 or a negative errno (then it will not
     * complete).  cancel asks for an early completion of a started op. */
    int (*submit)(struct weft__poller *p, struct weft__op *op);
    void (*cancel)(struct weft__poller *p, struct weft__op *op);
    unsigned caps; /* WEFT__BK_*: what io.c may rely on */
};

/* An event disables the fd until set() enables it again (io.c re-arms
 * what is still wanted after each event). */
#define WEFT__BK_ONESHOT 1u
/* set() that adds interest fails with -EBADF for a closed fd (io.c then
 * need not check the fd first). */
#define WEFT__BK_CHECKS_FD 2u

struct weft__poller {
    const struct weft__backend_ops *ops;
    void *state;
};

extern const struct weft__backend_ops weft__epoll_ops;
extern const struct weft__backend_ops weft__poll_ops;
#if defined(WEFT_HAVE_URING)
extern const struct weft__backend_ops weft__uring_ops;
#endif

#endif /* WEFT_POLL_BACKEND_H */
