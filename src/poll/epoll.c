/*
 * epoll.c - the epoll(7) backend: the Linux default, always built.
 *
 * One-shot: an fd is registered with EPOLLONESHOT, so the kernel disables
 * it when it reports an event, and stays registered afterwards.  The next
 * wait on the fd re-enables it with one EPOLL_CTL_MOD, where dropping the
 * interest after each event and adding it again would cost a DEL and an
 * ADD: a wait-read-reply loop on a socket costs one epoll_ctl per wait
 * instead of two.  An fd closed behind weft's back leaves the kernel's
 * list with its file, and the MOD that finds it gone (ENOENT) adds it
 * anew.  After each event io.c re-arms whatever interest remains (its
 * on_ready()).
 *
 * Waits use epoll_pwait2() (nanosecond timeouts) where the kernel has it,
 * else epoll_wait() with the timeout rounded up to a whole millisecond, so
 * a deadline is never reported early.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "poll/backend.h"

#define MAX_EVENTS 256

/* What the kernel holds for an fd. */
enum { REG_NONE, REG_ON, REG_OFF /* registered, disabled by an event */ };

struct epstate {
    int epfd;
    int no_pwait2; /* the kernel said ENOSYS once */
    uint8_t *reg;  /* REG_* per fd */
    int nreg;
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
        weft__free(st->reg);
        weft__free(st);
        p->state = NULL;
    }
}

static uint32_t to_epoll(uint32_t ev)
{
    return (ev & WEFT_IO_READ ? EPOLLIN | EPOLLRDHUP : 0u) |
           (ev & WEFT_IO_WRITE ? EPOLLOUT : 0u);
}

/* Room for fd in st->reg; 0 or -ENOMEM. */
static int reg_room(struct epstate *st, int fd)
{
    if (fd < st->nreg)
        return 0;
    int n = st->nreg ? st->nreg : 64;
    while (n <= fd) {
        if (n > 0x3fffffff)
            return -ENOMEM;
        n *= 2;
    }
    uint8_t *r = weft__realloc(st->reg, (size_t)n);
    if (!r)
        return -ENOMEM;
    memset(r + st->nreg, REG_NONE, (size_t)(n - st->nreg));
    st->reg = r;
    st->nreg = n;
    return 0;
}

static int ctl(struct epstate *st, int op, int fd, uint32_t ev)
{
    struct epoll_event e;
    memset(&e, 0, sizeof e);
    e.events = ev ? to_epoll(ev) | EPOLLONESHOT : 0;
    e.data.fd = fd;
    return epoll_ctl(st->epfd, op, fd, &e) == 0 ? 0 : -errno;
}

static int ep_set(struct weft__poller *p, int fd, uint32_t old_ev,
                  uint32_t new_ev)
{
    struct epstate *st = p->state;
    if (fd < 0)
        return -EBADF;
    int r = reg_room(st, fd);
    if (r < 0)
        return r;
    uint8_t *reg = &st->reg[fd];
    if (!new_ev) {
        /* Disable, but stay registered: the next wait is a MOD. */
        if (*reg == REG_ON) {
            r = ctl(st, EPOLL_CTL_MOD, fd, 0);
            *reg = r == 0 ? REG_OFF : REG_NONE; /* ENOENT: gone with it */
        }
        return 0;
    }
    if (*reg == REG_ON && old_ev == new_ev)
        return 0;
    if (*reg != REG_NONE) {
        r = ctl(st, EPOLL_CTL_MOD, fd, new_ev);
        if (r != -ENOENT) {
            *reg = r == 0 ? REG_ON : REG_NONE;
            return r;
        }
        /* The fd was closed and reopened behind our back: add it anew. */
        *reg = REG_NONE;
    }
    r = ctl(st, EPOLL_CTL_ADD, fd, new_ev);
    if (r == -EEXIST) /* registered behind our back (a fork's copy) */
        r = ctl(st, EPOLL_CTL_MOD, fd, new_ev);
    if (r == 0)
        *reg = REG_ON;
    return r;
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
        int fd = st->ev[i].data.fd;
        if (fd >= 0 && fd < st->nreg)
            st->reg[fd] = REG_OFF; /* EPOLLONESHOT disabled it */
        ready(s, fd, r);
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
    WEFT__BK_ONESHOT | WEFT__BK_CHECKS_FD,
};
