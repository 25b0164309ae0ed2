/*
 * weft/io.h - file descriptors: coroutine waits, readiness callbacks, and
 * the backend that polls them.  Included by weft.h; include that instead.
 *
 * Rules for every fd given to weft: it stays owned by the caller, except
 * that weft_fd_close() closes it.  Close an fd that weft knows through
 * weft_fd_close() (or call weft_fd_forget() before closing it yourself):
 * that wakes coroutines waiting on it with -EBADF instead of leaving them
 * waiting on a number the kernel may give to a new file.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <signal.h>
#include <sys/signalfd.h>

#include "../weft.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Readiness bits. */
#define WEFT_IO_READ 0x1u  /**< readable (or end of file / peer closed) */
#define WEFT_IO_WRITE 0x2u /**< writable */
#define WEFT_IO_ERROR 0x4u /**< error or hang-up (reported, never asked) */

/** Backends for weft_sched_opts.backend (0: automatic). */
enum weft_backend {
    WEFT_BACKEND_AUTO = 0,  /**< WEFT_BACKEND env var ("io_uring", "epoll"
                                 or "poll") if set, else the best available:
                                 io_uring where the kernel allows it (and
                                 weft was built with liburing, and the
                                 program is not running under Valgrind,
                                 which stalls other threads during io_uring
                                 waits), else epoll, else poll. */
    WEFT_BACKEND_EPOLL = 1,
    WEFT_BACKEND_POLL = 2,
    WEFT_BACKEND_URING = 3  /**< a proactor: the coroutine I/O calls submit
                                 their operations to the ring */
};

/**
 * Wait until @p fd is ready for @p events (WEFT_IO_READ, WEFT_IO_WRITE or
 * both) or until @p deadline (scheduler time; -1: none).  Any number of
 * coroutines may wait on one fd; each is woken when its events are ready.
 * A regular file (which epoll cannot watch) is always ready.
 * @return The ready events (> 0, may include WEFT_IO_ERROR).
 * @retval -ETIMEDOUT  the deadline passed.
 * @retval -EBADF      fd is not open, or was closed with weft_fd_close() /
 *                     weft_fd_forget() while waiting.
 * @retval -EINTR      a signal interrupted the wait and the scheduler's
 *                     eintr option says to report it.
 * @retval -ECANCELED  the coroutine was ended; or a raised error.
 * @retval -EINVAL     outside a coroutine, fd < 0, or events has no
 *                     READ/WRITE bit.
 * @retval -ENOMEM     the fd table could not grow.
 * @context Coroutine only.
 */
WEFT_API int weft_fd_wait(int fd, uint32_t events, int64_t deadline);

/**
 * Forget @p fd on @p s: every coroutine waiting on it gets -EBADF, its
 * readiness callbacks are stopped (not freed) and the backend drops it.
 * Call it before closing an fd yourself.  Forgetting an fd weft does not
 * know is a no-op.
 * @return 0; -EINVAL for fd < 0 or a scheduler of another thread.
 */
WEFT_API int weft_fd_forget(weft_sched *s, int fd);

/**
 * weft_fd_forget() on the current scheduler, then close(fd).
 * @return 0, or the negative errno of close().
 */
WEFT_API int weft_fd_close(int fd);

/**
 * Put @p fd in non-blocking mode (what the coroutine I/O calls need).
 * @return 0 or a negative errno (-EBADF ...).
 */
WEFT_API int weft_fd_nonblock(int fd);

/**
 * The name of the backend @p s uses: "io_uring", "epoll" or "poll".
 * @return A static string, or NULL for a scheduler of another thread.
 */
WEFT_API const char *weft_backend_name(weft_sched *s);

/**
 * A file descriptor that becomes readable when @p s has I/O to process,
 * for embedding weft in a foreign main loop: poll it for reading, wait at
 * most weft_next_timeout(s), then call weft_run_once(s, 0).  Valid at all
 * times (not only inside weft_run) and for the scheduler's lifetime; do
 * not close it.
 * @return The fd.
 * (For io_uring it is the ring's fd, readable when completions wait.)
 * @retval -EOPNOTSUPP  the backend has none (poll).
 * @retval -EINVAL      a scheduler of another thread.
 */
WEFT_API int weft_backend_fd(weft_sched *s);

/**
 * Give @p s a fresh backend in a child process after fork() (greenhouse
 * reset_poller()).  Call it in the child before using the scheduler: the
 * child shares the parent's epoll instance until then, and changing it
 * would change the parent's.  The old backend object is closed (in the
 * child only) and every fd weft was watching is registered with a new
 * one.  What survives in the child: coroutines (suspended where they
 * were), callback timers and deadlines (the monotonic clock continues),
 * fd waits and readiness callbacks.  What does not: threads (the child has
 * only the one that called fork), so pending name resolutions fail.
 * @return 0, or the negative errno of creating the new backend.
 * @retval -EBUSY   called while s is running.
 * @retval -EINVAL  another thread's scheduler.
 */
WEFT_API int weft_sched_after_fork(weft_sched *s);

/* ----------------------------------------------------------------------
 * Signals as events
 * ---------------------------------------------------------------------- */

/**
 * Block the signals of @p set in the calling thread, so they are
 * delivered only through weft_signal_wait().  Call it early, before
 * creating threads (they inherit the mask), or the kernel may deliver a
 * process-wide signal to another thread.
 * @return 0 or a negative errno.
 */
WEFT_API int weft_signal_block(const sigset_t *set);

/**
 * Wait for one of the signals of @p set (signalfd), with a deadline.  The
 * signals are blocked in the calling thread first (weft_signal_block());
 * one already pending is returned at once.  Several coroutines may wait on
 * overlapping sets: each signal is delivered to one of them.
 * @param info  Receives details (sender pid, value ...); may be NULL.
 * @return The signal number.
 * @retval -ETIMEDOUT  the deadline passed.
 * @retval -EINVAL     set NULL, outside a coroutine, or deadline < -1.
 * @retval -ECANCELED  ended; or a raised error; or -EMFILE etc. from
 *                     signalfd().
 * @context Coroutine only.
 */
WEFT_API int weft_signal_wait(const sigset_t *set, int64_t deadline,
                              struct signalfd_siginfo *info);

/* ----------------------------------------------------------------------
 * Readiness callbacks (asycamore's dispatch targets): no coroutine.
 * ---------------------------------------------------------------------- */

typedef struct weft_io weft_io;

/** Called on the loop when the fd is ready; must not block. */
typedef void (*weft_io_fn)(weft_io *w, int fd, uint32_t revents, void *arg);

/**
 * Create a watcher that calls @p cb whenever @p fd is ready for
 * @p events (level-triggered: again at every iteration while it stays
 * ready).  It starts active.  One watcher per fd and scheduler.
 * @return 0.
 * @retval -EINVAL  cb or out NULL, fd < 0, no READ/WRITE bit, or another
 *                  thread's scheduler.
 * @retval -EEXIST  fd already has a watcher on s.
 * @retval -EBADF / -EPERM  the backend refused fd.
 * @retval -ENOMEM  no memory.
 */
WEFT_API int weft_io_new(weft_sched *s, int fd, uint32_t events,
                         weft_io_fn cb, void *arg, weft_io **out);

/**
 * Change the events watched (0 pauses the watcher; it stays allocated).
 * Safe from the watcher's own callback.
 * @return 0, -EINVAL, or the backend's error.
 */
WEFT_API int weft_io_modify(weft_io *w, uint32_t events);

/** Stop watching (same as weft_io_modify(w, 0)).  @return 0 or -EINVAL. */
WEFT_API int weft_io_stop(weft_io *w);

/**
 * Stop and free @p w.  Safe from its own callback.
 * @return 0 or -EINVAL.
 */
WEFT_API int weft_io_free(weft_io *w);

/** The fd of @p w, or -EINVAL for NULL. */
WEFT_API int weft_io_fd(const weft_io *w);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_IO_H */
