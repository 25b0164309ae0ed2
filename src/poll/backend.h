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

#include "weft.h"

struct weft__poller;

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
};

struct weft__poller {
    const struct weft__backend_ops *ops;
    void *state;
};

extern const struct weft__backend_ops weft__epoll_ops;
extern const struct weft__backend_ops weft__poll_ops;

#endif /* WEFT_POLL_BACKEND_H */
