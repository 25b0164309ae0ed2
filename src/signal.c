/*
 * signal.c - signals as events: a coroutine waits for a set of signals
 * through a signalfd, with a deadline.
 *
 * Each wait opens its own signalfd for its set, so coroutines waiting on
 * overlapping sets need no shared state: the kernel hands each pending
 * signal to exactly one read, and the other waiters (woken too, as the fd
 * was readable for all) find nothing and wait again.
 */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "internal.h"

int weft_signal_block(const sigset_t *set)
{
    if (!set)
        return -EINVAL;
    return -pthread_sigmask(SIG_BLOCK, set, NULL);
}

int weft_signal_wait(const sigset_t *set, int64_t deadline,
                     struct signalfd_siginfo *info)
{
    weft_coro *co = weft__tls.current;
    if (!set || !co || deadline < -1)
        return -EINVAL;
    int r = weft__block_check(co->sched, &co);
    if (r < 0)
        return r;
    r = weft_signal_block(set);
    if (r < 0)
        return r;
    int fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct signalfd_siginfo si;
    for (;;) {
        ssize_t n = read(fd, &si, sizeof si);
        if (n == (ssize_t)sizeof si) {
            r = (int)si.ssi_signo;
            if (info)
                *info = si;
            break;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN) {
            r = -errno;
            break;
        }
        r = weft_fd_wait(fd, WEFT_IO_READ, deadline);
        if (r < 0)
            break;
    }
    (void)weft_fd_close(fd);
    return r;
}
