/*
 * epoll.c - the epoll(7) backend: the Linux default, always built.
 *
 * Level-triggered.  Waits use epoll_pwait2() (nanosecond timeouts) where
 * the kernel has it, else epoll_wait() with the timeout rounded up to a
 * whole millisecond, so a deadline is never reported early.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "poll/backend.h"

#define MAX_EVENTS 256

struct epstate {
    int epfd;
    int no_pwait2; /* the kernel said ENOSYS once */
    struct epoll_event ev[MAX_EVENTS];
};

static int ep_init(struct weft__poller *p)
{
    struct epstate *st = weft__calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    st->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (st->epfd < 0) {
        int e = -errno;
        weft__free(st);
        return e;
    }
    p->state = st;
    return 0;
}

static void ep_fini(struct weft__poller *p)
{
    struct epstate *st = p->state;
    if (st) {
        close(st->epfd);
        weft__free(st);
        p->state = NULL;
    }
}

static uint32_t to_epoll(uint32_t ev)
{
    return (ev & WEFT_IO_READ ? EPOLLIN | EPOLLRDHUP : 0u) |
           (ev & WEFT_IO_WRITE ? EPOLLOUT : 0u);
}

static int ep_set(struct weft__poller *p, int fd, uint32_t old_ev,
                  uint32_t new_ev)
{
    struct epstate *st = p->state;
    struct epoll_event e;
    int op;
    memset(&e, 0, sizeof e);
    e.events = to_epoll(new_ev);
    e.data.fd = fd;
    if (!old_ev && !new_ev)
        return 0;
    op = !old_ev ? EPOLL_CTL_ADD : !new_ev ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    if (epoll_ctl(st->epfd, op, fd, &e) == 0)
        return 0;
    if (errno == ENOENT && op == EPOLL_CTL_MOD) {
        /* The fd was closed and reopened behind our back: register anew. */
        if (epoll_ctl(st->epfd, EPOLL_CTL_ADD, fd, &e) == 0)
            return 0;
    }
    if (errno == ENOENT && op == EPOLL_CTL_DEL)
        return 0; /* already gone with its file */
    return -errno;
}

static int ep_wait(struct weft__poller *p, int64_t timeout_ns,
                   weft__ready_fn ready, weft_sched *s)
{
    struct epstate *st = p->state;
    int n = -1;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
    if (!st->no_pwait2) {
        struct timespec ts, *tp = NULL;
        if (timeout_ns >= 0) {
            ts.tv_sec = (time_t)(timeout_ns / 1000000000LL);
            ts.tv_nsec = (long)(timeout_ns % 1000000000LL);
            tp = &ts;
        }
        n = epoll_pwait2(st->epfd, st->ev, MAX_EVENTS, tp, NULL);
        if (n < 0 && errno == ENOSYS)
            st->no_pwait2 = 1;
    }
#else
    st->no_pwait2 = 1;
#endif
    if (st->no_pwait2) {
        int ms = -1;
        if (timeout_ns >= 0) {
            int64_t m = (timeout_ns + 999999) / 1000000;
            ms = m > 0x7fffffff ? 0x7fffffff : (int)m;
        }
        n = epoll_wait(st->epfd, st->ev, MAX_EVENTS, ms);
    }
    if (n < 0)
        return -errno;
    for (int i = 0; i < n; i++) {
        uint32_t e = st->ev[i].events, r = 0;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLPRI))
            r |= WEFT_IO_READ;
        if (e & EPOLLOUT)
            r |= WEFT_IO_WRITE;
        if (e & (EPOLLERR | EPOLLHUP))
            r |= WEFT_IO_ERROR;
        ready(s, st->ev[i].data.fd, r);
    }
    return n;
}

static int ep_fd(struct weft__poller *p)
{
    struct epstate *st = p->state;
    return st->epfd;
}

const struct weft__backend_ops weft__epoll_ops = {
    "epoll", ep_init, ep_fini, ep_set, ep_wait, ep_fd, NULL, NULL,
};
