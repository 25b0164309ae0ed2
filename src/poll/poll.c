/*
 * poll.c - the poll(2) backend: the portable fallback.
 *
 * Keeps a dense pollfd array and an fd -> slot index.  O(n) per wait in
 * the number of watched fds.  It has no pollable fd of its own, so
 * weft_backend_fd() reports -EOPNOTSUPP with it.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "poll/backend.h"

struct pstate {
    struct pollfd *fds;
    int n, cap;
    int *slot;     /* slot[fd] = index in fds, or -1 */
    int nslot;
};

static int p_init(struct weft__poller *p)
{
    struct pstate *st = weft__calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    p->state = st;
    return 0;
}

static void p_fini(struct weft__poller *p)
{
    struct pstate *st = p->state;
    if (st) {
        weft__free(st->fds);
        weft__free(st->slot);
        weft__free(st);
        p->state = NULL;
    }
}

static short to_poll(uint32_t ev)
{
    return (short)((ev & WEFT_IO_READ ? POLLIN : 0) |
                   (ev & WEFT_IO_WRITE ? POLLOUT : 0));
}

static int p_set(struct weft__poller *p, int fd, uint32_t old_ev,
                 uint32_t new_ev)
{
    struct pstate *st = p->state;
    (void)old_ev;
    if (fd < 0)
        return -EBADF;
    if (fd >= st->nslot) {
        if (!new_ev)
            return 0;
        int n = st->nslot ? st->nslot : 64;
        while (n <= fd)
            n *= 2;
        int *sl = weft__realloc(st->slot, (size_t)n * sizeof *sl);
        if (!sl)
            return -ENOMEM;
        for (int i = st->nslot; i < n; i++)
            sl[i] = -1;
        st->slot = sl;
        st->nslot = n;
    }
    int i = st->slot[fd];
    if (!new_ev) {
        if (i >= 0) {
            st->fds[i] = st->fds[--st->n];
            if (i < st->n)
                st->slot[st->fds[i].fd] = i;
            st->slot[fd] = -1;
        }
        return 0;
    }
    if (i < 0) {
        if (st->n == st->cap) {
            int cap = st->cap ? st->cap * 2 : 64;
            struct pollfd *f = weft__realloc(st->fds, (size_t)cap * sizeof *f);
            if (!f)
                return -ENOMEM;
            st->fds = f;
            st->cap = cap;
        }
        i = st->n++;
        st->fds[i].fd = fd;
        st->slot[fd] = i;
    }
    st->fds[i].events = to_poll(new_ev);
    st->fds[i].revents = 0;
    return 0;
}

static int p_wait(struct weft__poller *p, int64_t timeout_ns,
                  weft__ready_fn ready, weft_sched *s)
{
    struct pstate *st = p->state;
    struct timespec ts, *tp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000LL);
        ts.tv_nsec = (long)(timeout_ns % 1000000000LL);
        tp = &ts;
    }
    int n = ppoll(st->fds, (nfds_t)st->n, tp, NULL);
    if (n < 0)
        return -errno;
    int reported = 0;
    /* Callbacks may change the set: walk a snapshot of the ready fds. */
    for (int i = 0; i < st->n && reported < n; i++) {
        short re = st->fds[i].revents;
        if (!re)
            continue;
        st->fds[i].revents = 0;
        uint32_t r = 0;
        if (re & (POLLIN | POLLPRI))
            r |= WEFT_IO_READ;
        if (re & POLLOUT)
            r |= WEFT_IO_WRITE;
        if (re & (POLLERR | POLLHUP | POLLNVAL))
            r |= WEFT_IO_ERROR;
        int fd = st->fds[i].fd;
        reported++;
        ready(s, fd, r);
        /* The callback may have removed fd, moving the last entry (maybe
         * ready, not yet seen) into slot i: look at slot i again. */
        if (i < st->n && st->fds[i].fd != fd)
            i--;
    }
    return reported;
}

static int p_fd(struct weft__poller *p)
{
    (void)p;
    return -EOPNOTSUPP;
}

const struct weft__backend_ops weft__poll_ops = {
    "poll", p_init, p_fini, p_set, p_wait, p_fd, NULL, NULL, 0,
};
