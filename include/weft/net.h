/*
 * weft/net.h - coroutine I/O with timeouts (read, write, send, recv,
 * accept, connect, sendfile and their "all"/"exact" loops) and socket
 * helpers (listen, dial, name resolution).  Included by weft.h; include
 * that instead.  docs/io.md explains the model; this header is the
 * reference for each call.
 *
 * Rules common to every call here (docs/io.md has the details):
 *
 *   - Coroutine only (except where a call says otherwise): outside a
 *     coroutine, or inside a hook, the calls return -EINVAL.  Like every
 *     blocking call of weft they first fail at once with -ECANCELED in an
 *     ended coroutine, or with an error raised into it and still pending,
 *     even when they could complete without waiting.
 *
 *   - Each call tries its system call first and waits (weft_fd_wait) only
 *     when the call would block (EAGAIN); a system call interrupted by a
 *     signal (EINTR) is retried.  A wait interrupted by a signal returns
 *     -EINTR only when the scheduler's eintr option says so.
 *
 *   - Timeouts (cogen's operation timeouts).  @p timeout is a duration in
 *     ns, or WEFT_TIMEOUT_DEFAULT: the scheduler's io_timeout
 *     (weft_sched_io_timeout(); 0 there means none), or WEFT_TIMEOUT_NONE:
 *     no timeout.  Other negative values are -EINVAL.  The deadline is
 *     the call's start plus the timeout; when it passes the call returns
 *     -ETIMEDOUT.  A timeout of 0 still tries the system call once; if it
 *     would block, the call yields one turn and returns -ETIMEDOUT (so a
 *     polling loop cannot starve the others).
 *     The multi-step calls (weft_read_exact, weft_write_all,
 *     weft_writev_all, weft_sendfile_all) take @p flags: WEFT_IO_WEAK
 *     makes the timeout an inactivity timeout (cogen's weak_timeout): the
 *     deadline moves to "now + timeout" whenever the call makes progress,
 *     so a long transfer that keeps moving never times out, while a peer
 *     that stalls for longer than the timeout does.
 *
 *   - Nothing transferred is lost.  A single-step call (weft_read ...)
 *     either transfers data and returns its count at once, or transfers
 *     nothing and fails.  A multi-step call that fails (timeout, end,
 *     closed fd, peer reset ...) stores the bytes already transferred in
 *     *done (when done is not NULL): they are in the buffer (reads) or were
 *     accepted by the kernel (writes).
 *
 *   - Non-blocking mode.  Reads and writes on a socket use MSG_DONTWAIT
 *     and leave the fd's mode alone.  On any other fd (pipe, FIFO, tty,
 *     character device, eventfd ...) weft_read/readv/write/writev and
 *     their multi-step forms set O_NONBLOCK on the fd (and leave it set:
 *     beware of fds shared with other processes, such as a terminal).
 *     weft_accept sets O_NONBLOCK on the listening socket, weft_connect
 *     on the socket, weft_sendfile(_all) on out_fd.  Sockets made by weft
 *     (weft_accept, weft_listen_*, weft_dial_*) are created O_NONBLOCK and
 *     O_CLOEXEC.
 *
 *   - No SIGPIPE.  Writes to a socket use MSG_NOSIGNAL; writes to other
 *     fds and sendfile block SIGPIPE on the calling thread for the
 *     duration of the system call and discard the SIGPIPE it raised.  A
 *     write to a peer that has gone returns -EPIPE (or -ECONNRESET) and the
 *     process lives, whatever SIGPIPE's disposition.
 *
 *   - Several coroutines may use one fd at once (weft_fd_wait wakes each
 *     waiter whose events are ready).  Each system call's data goes to
 *     exactly one caller; nothing is duplicated or lost, but two
 *     coroutines reading (or writing) the same stream at once interleave
 *     at system-call boundaries: serialise them (weft_mutex) if that
 *     matters.  A reader and a writer on one socket are independent.
 *
 *   - Closing: close an fd that coroutines may be waiting on with
 *     weft_fd_close() (or weft_fd_forget() and then close()): every call
 *     waiting on it returns -EBADF (multi-step calls with *done set), and
 *     a new fd that the kernel gives the same number works normally.
 *     Closing it with a bare close() leaves the waiters waiting.
 *
 *   - Ending a waiting coroutine (weft_end) makes its call return
 *     -ECANCELED; raising into it (weft_raise) makes it return the raised
 *     error.  Either way the fd is left as the call found it, except for
 *     the bytes already transferred (reported as above).
 */
#ifndef WEFT_NET_H
#define WEFT_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h> /* socklen_t, struct sockaddr */
#include <sys/types.h>  /* ssize_t */

#include "../weft.h"

#ifdef __cplusplus
extern "C" {
#endif

struct iovec;    /* <sys/uio.h> */
struct addrinfo; /* <netdb.h> */

/** Flag of the multi-step calls: the timeout is an inactivity timeout
 *  that restarts whenever the call makes progress (cogen's weak_timeout). */
#define WEFT_IO_WEAK 0x1u

/* ======================================================================
 * Reading
 * ====================================================================== */

/**
 * Read up to @p len bytes from @p fd into @p buf (read(2) for a
 * coroutine): returns as soon as some data (or end of file) is there.
 * On a socket it is recv(MSG_DONTWAIT); on other fds it sets O_NONBLOCK.
 * @param timeout  ns, WEFT_TIMEOUT_DEFAULT or WEFT_TIMEOUT_NONE.
 * @return The number of bytes read (> 0), or 0 at end of file (or for
 *         len 0).
 * @retval -ETIMEDOUT  nothing came before the deadline.
 * @retval -EBADF      fd not open, or closed with weft_fd_close() while
 *                     the call waited.
 * @retval -ECANCELED  the coroutine was ended; or an error raised into it.
 * @retval -EINTR      a signal interrupted the wait and the scheduler's
 *                     eintr option reports it.
 * @retval -EINVAL     outside a coroutine, fd < 0, buf NULL with len > 0,
 *                     len > SSIZE_MAX, or a bad timeout.
 * @retval other       the read's own error (-ECONNRESET, -EIO ...).
 * @context Coroutine only.
 */
WEFT_API ssize_t weft_read(int fd, void *buf, size_t len, int64_t timeout);

/**
 * As weft_read(), scattering into @p iovcnt buffers (readv(2); recvmsg
 * with MSG_DONTWAIT on a socket).
 * @retval -EINVAL  also for iovcnt < 0 or > IOV_MAX, iov NULL with
 *                  iovcnt > 0, or lengths adding up beyond SSIZE_MAX.
 */
WEFT_API ssize_t weft_readv(int fd, const struct iovec *iov, int iovcnt,
                            int64_t timeout);

/**
 * Receive from a socket (recv(2)): @p flags are recv's (MSG_PEEK,
 * MSG_TRUNC ...); MSG_DONTWAIT is added.  Never changes the fd's mode.  Returns and errors as weft_read(), plus
 * -ENOTSOCK for an fd that is not a socket.
 */
WEFT_API ssize_t weft_recv(int fd, void *buf, size_t len, int flags,
                           int64_t timeout);

/**
 * Read exactly @p len bytes (loops over short reads).
 * @param timeout  For the whole call, or, with WEFT_IO_WEAK in @p flags,
 *                 for each stretch without progress.
 * @param flags    0 or WEFT_IO_WEAK.
 * @param done     If not NULL, receives the number of bytes read, on
 *                 success (len) and on failure (what is in buf).
 * @return len.
 * @retval -EPIPE      end of file before len bytes (*done says how many
 *                     came; 0 means the peer closed before sending any).
 * @retval -ETIMEDOUT  the deadline passed (*done bytes are in buf).
 * @retval other       as weft_read(); -EINVAL also for unknown flags.
 * @context Coroutine only.
 */
WEFT_API ssize_t weft_read_exact(int fd, void *buf, size_t len,
                                 int64_t timeout, unsigned flags,
                                 size_t *done);

/* ======================================================================
 * Writing
 * ====================================================================== */

/**
 * Write up to @p len bytes (write(2) for a coroutine): returns as soon as
 * the kernel took some of them, which may be fewer than len (see
 * weft_write_all()).  Sockets: send(MSG_DONTWAIT | MSG_NOSIGNAL); other
 * fds: O_NONBLOCK is set and SIGPIPE blocked around the write.
 * @return The number of bytes written (> 0; 0 only for len 0).
 * @retval -EPIPE      the reader has gone (no SIGPIPE is raised).
 * @retval -ECONNRESET the peer reset the connection.
 * @retval other       as weft_read().
 * @context Coroutine only.
 */
WEFT_API ssize_t weft_write(int fd, const void *buf, size_t len,
                            int64_t timeout);

/** As weft_write(), gathering from @p iovcnt buffers (writev(2);
 *  sendmsg with MSG_DONTWAIT | MSG_NOSIGNAL on a socket).  -EINVAL as
 *  weft_readv(). */
WEFT_API ssize_t weft_writev(int fd, const struct iovec *iov, int iovcnt,
                             int64_t timeout);

/**
 * Send on a socket (send(2)): @p flags are send's; MSG_DONTWAIT and
 * MSG_NOSIGNAL are added, so a closed peer gives -EPIPE, never SIGPIPE.
 * Never changes the fd's mode.  Returns and errors as weft_write(), plus
 * -ENOTSOCK.
 */
WEFT_API ssize_t weft_send(int fd, const void *buf, size_t len, int flags,
                           int64_t timeout);

/**
 * Write all @p len bytes (loops over partial writes).
 * @param timeout  For the whole call, or, with WEFT_IO_WEAK, for each
 *                 stretch without progress (a slow reader that keeps
 *                 reading never times out; one that stops does).
 * @param flags    0 or WEFT_IO_WEAK.
 * @param done     If not NULL, receives the number of bytes the kernel
 *                 accepted, on success (len) and on failure: buf[0..done)
 *                 was written, the rest was not.
 * @return len.
 * @retval -ETIMEDOUT  the deadline passed (e.g. a peer that never reads).
 * @retval -EPIPE, -ECONNRESET, other  as weft_write().
 * @context Coroutine only.
 */
WEFT_API ssize_t weft_write_all(int fd, const void *buf, size_t len,
                                int64_t timeout, unsigned flags,
                                size_t *done);

/**
 * As weft_write_all(), gathering from @p iovcnt buffers (the iovec array
 * is not modified).  *done counts bytes across the buffers in order.
 * -EINVAL as weft_readv().
 */
WEFT_API ssize_t weft_writev_all(int fd, const struct iovec *iov,
                                 int iovcnt, int64_t timeout, unsigned flags,
                                 size_t *done);

/**
 * Copy up to @p count bytes from the file @p in_fd to @p out_fd
 * (sendfile(2)); returns after the first transfer, which may be short.
 * out_fd is set O_NONBLOCK and is what the call waits on; in_fd must be a
 * regular file (or something else sendfile can read without blocking).
 * @param offset  Where to read in in_fd, advanced by the bytes sent; NULL:
 *                in_fd's file position is used and advanced.
 * @return The number of bytes sent, 0 at the end of in_fd (or count 0).
 * @retval -EPIPE  the reader of out_fd has gone (no SIGPIPE is raised).
 * @retval -EINVAL also for *offset < 0 or count > SSIZE_MAX.
 * @retval other   as weft_write().
 * @context Coroutine only.
 */
WEFT_API ssize_t weft_sendfile(int out_fd, int in_fd, int64_t *offset,
                               size_t count, int64_t timeout);

/**
 * Send @p count bytes of @p in_fd to @p out_fd (loops over weft_sendfile).
 * @param flags  0 or WEFT_IO_WEAK (see weft_write_all()).
 * @param done   If not NULL, receives the bytes sent, on success and on
 *               failure (*offset, when given, has advanced by as much).
 * @return count.
 * @retval -ENODATA    in_fd ended before count bytes (*done were sent).
 * @retval -ETIMEDOUT  the deadline passed.
 * @retval other       as weft_sendfile().
 * @context Coroutine only.
 */
WEFT_API ssize_t weft_sendfile_all(int out_fd, int in_fd, int64_t *offset,
                                   size_t count, int64_t timeout,
                                   unsigned flags, size_t *done);

/* ======================================================================
 * Accepting and connecting
 * ====================================================================== */

/** How long weft_accept() and weft_connect() back off in total, at most,
 *  on a resource shortage before they report it. */
#define WEFT_BACKOFF_MAX WEFT_SEC(1)

/**
 * Accept a connection on the listening socket @p fd (accept4(2) with
 * SOCK_CLOEXEC | SOCK_NONBLOCK).  Sets O_NONBLOCK on fd.
 *
 * Faults of the pending connection that Linux reports through accept
 * (ECONNABORTED, EPROTO, ENETDOWN, EHOSTUNREACH ...) are skipped: the
 * call goes on with the next connection.  When the process or system is
 * out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) the call
 * backs off: it sleeps 1 ms, then 2, 4 ... up to 100 ms between tries,
 * letting the other coroutines run (and close descriptors), for at most
 * WEFT_BACKOFF_MAX in total or until the deadline, and then returns that
 * error.  The pending connection stays queued in the kernel: nothing is
 * dropped, and the caller's accept loop just logs and calls again (see
 * docs/io.md).
 * @param addr, addrlen  As accept(2): receive the peer address; may both
 *                       be NULL.
 * @return The new socket (O_NONBLOCK, O_CLOEXEC; on Linux it inherits
 *         TCP_NODELAY from the listener).
 * @retval -EMFILE, -ENFILE, -ENOBUFS, -ENOMEM  after the back-off above.
 * @retval -ETIMEDOUT  no connection before the deadline.
 * @retval -EBADF      fd not open, or closed with weft_fd_close() while
 *                     waiting.
 * @retval -ECANCELED, -EINTR  as weft_read().
 * @retval -EINVAL     outside a coroutine, fd < 0, addr without addrlen,
 *                     bad timeout, or fd is not listening.
 * @retval other       accept's own error (-ENOTSOCK, -EOPNOTSUPP ...).
 * @context Coroutine only.
 */
WEFT_API int weft_accept(int fd, struct sockaddr *addr, socklen_t *addrlen,
                         int64_t timeout);

/**
 * Connect the socket @p fd to @p addr: a non-blocking connect(2), a wait
 * until fd is writable, then SO_ERROR; on the io_uring backend, a connect
 * operation on the ring instead (except for Unix sockets, whose connect
 * never waits), with the same results.  Sets O_NONBLOCK on fd.  When the
 * kernel says to try again (EAGAIN: a Unix listener's queue is full, or no
 * local port is free) the call backs off as weft_accept() does and then
 * returns -EAGAIN.  After a failure (timeout and cancellation included)
 * the socket's state is unspecified: close it (weft_fd_close()).
 * @return 0 when connected.
 * @retval -ECONNREFUSED, -ENETUNREACH, -ENOENT ...  connect's own error
 *                     (-ETIMEDOUT too when the kernel gives up).
 * @retval -EAGAIN     after the back-off.
 * @retval -ETIMEDOUT  not connected before the deadline.
 * @retval -EBADF, -ECANCELED, -EINTR  as weft_read().
 * @retval -EINVAL     outside a coroutine, fd < 0, addr NULL, addrlen 0,
 *                     or a bad timeout.
 * @context Coroutine only.
 */
WEFT_API int weft_connect(int fd, const struct sockaddr *addr,
                          socklen_t addrlen, int64_t timeout);

/* ======================================================================
 * Socket helpers: listen, dial, resolve
 * ====================================================================== */

/** Flags of the socket helpers. */
#define WEFT_SOCK_NODELAY 0x01u   /**< TCP_NODELAY on the socket (for a
                                       listener: on the sockets it
                                       accepts). */
#define WEFT_SOCK_V6ONLY 0x02u    /**< IPv6 listener: IPV6_V6ONLY (no
                                       IPv4-mapped connections). */
#define WEFT_SOCK_REUSEPORT 0x04u /**< Listener: SO_REUSEPORT too. */
#define WEFT_SOCK_IPV4 0x10u      /**< Use IPv4 addresses only. */
#define WEFT_SOCK_IPV6 0x20u      /**< Use IPv6 addresses only. */

/**
 * Resolve @p host and @p port to TCP addresses (getaddrinfo(3) with
 * SOCK_STREAM) without blocking the scheduler: a numeric address (IPv4,
 * IPv6, with or without [brackets]) is converted at once; a name is
 * looked up on a worker thread while the coroutine waits on an eventfd.
 * If the coroutine stops waiting (timeout, end, raise), the thread
 * finishes on its own and frees what it holds; it never touches the
 * coroutine's memory.
 * A numeric host never blocks, so it works anywhere on the thread and
 * makes none of the checks of blocking calls.  Outside a coroutine, and
 * only outside a run of a scheduler (say in main() before weft_run()), a
 * name is resolved synchronously: no scheduler is blocked there.
 * @param host   A name or numeric address; not NULL, not "".
 * @param port   0 .. 65535.
 * @param flags  WEFT_SOCK_IPV4 or WEFT_SOCK_IPV6 to restrict the family.
 * @param res    Receives the list (free it with freeaddrinfo()).
 * @return 0.
 * @retval -ENXIO       no such name, or no address of the family asked.
 * @retval -EAGAIN      temporary failure of the name service, or no
 *                      thread could be started.
 * @retval -EIO         the name service failed for good.
 * @retval -ENOMEM      no memory.
 * @retval -ETIMEDOUT, -ECANCELED, -EINTR  as weft_read().
 * @retval -EINVAL      host or res NULL, host empty ("" or "[]") or
 *                      longer than 1024 bytes, port out of range, unknown
 *                      flags or both family flags, a bad timeout, or a
 *                      name to look up inside a running loop but outside
 *                      a coroutine (a callback).
 * @context Coroutine; or anywhere on the thread for a numeric host.
 */
WEFT_API int weft_resolve(const char *host, int port, unsigned flags,
                          int64_t timeout, struct addrinfo **res);

/**
 * Listen on TCP @p host : @p port.  The socket has SO_REUSEADDR (a server
 * restarts on its port at once), O_NONBLOCK and O_CLOEXEC.
 * @param host     NULL, "" or "*": every address: an IPv6 dual-stack
 *                 socket on "::" (IPv4 connections arrive IPv4-mapped),
 *                 or 0.0.0.0 when IPv6 is unavailable or WEFT_SOCK_IPV4
 *                 is given.  Otherwise a numeric address or a name,
 *                 resolved as weft_resolve() does; the first address
 *                 that can be bound is used.
 * @param port     0 .. 65535; 0 lets the kernel pick one (weft_sock_port()
 *                 tells which).
 * @param backlog  listen(2)'s backlog; <= 0: SOMAXCONN.
 * @param flags    WEFT_SOCK_NODELAY, WEFT_SOCK_V6ONLY,
 *                 WEFT_SOCK_REUSEPORT, WEFT_SOCK_IPV4, WEFT_SOCK_IPV6.
 * @param timeout  For the name lookup only.
 * @return The listening socket.
 * @retval -EADDRINUSE, -EACCES, -EADDRNOTAVAIL ...  bind/listen errors.
 * @retval -EINVAL  port out of range, unknown flags, both family flags.
 * @retval other    as weft_resolve() for a name.
 * @context Anywhere on the thread for a numeric or empty host; a name
 *          needs a coroutine, or no scheduler running (see
 *          weft_resolve()).
 */
WEFT_API int weft_listen_tcp(const char *host, int port, int backlog,
                             unsigned flags, int64_t timeout);

/**
 * Connect to TCP @p host : @p port: resolve it (weft_resolve()), then try
 * each address in the order returned until one connects.  An address
 * that refuses or cannot be reached is skipped; the first such error is
 * returned if none connects.  One deadline covers the lookup and every
 * attempt.
 * @param flags  WEFT_SOCK_NODELAY, WEFT_SOCK_IPV4, WEFT_SOCK_IPV6.
 * @return The connected socket (O_NONBLOCK, O_CLOEXEC).
 * @retval -ECONNREFUSED, -ENETUNREACH ...  as weft_connect().
 * @retval -ETIMEDOUT  the deadline passed.
 * @retval other       as weft_resolve() and weft_connect().
 * @retval -EINVAL     outside a coroutine, host NULL or "", bad port,
 *                     flags or timeout.
 * @context Coroutine only.
 */
WEFT_API int weft_dial_tcp(const char *host, int port, unsigned flags,
                           int64_t timeout);

/**
 * Listen on the Unix domain stream socket @p path.  A path that starts
 * with '@' names a socket in Linux's abstract namespace (no file).  An
 * existing file at path makes it fail with -EADDRINUSE: remove a stale
 * socket file first.
 * @param backlog  <= 0: SOMAXCONN.
 * @return The listening socket (O_NONBLOCK, O_CLOEXEC).
 * @retval -ENAMETOOLONG  path does not fit in sockaddr_un.
 * @retval -EINVAL        path NULL or "".
 * @retval other          socket/bind/listen errors.
 * @context Anywhere on the thread.
 */
WEFT_API int weft_listen_unix(const char *path, int backlog);

/**
 * Connect to the Unix domain stream socket @p path ('@': abstract).
 * @return The connected socket (O_NONBLOCK, O_CLOEXEC).
 * @retval -ENOENT, -ECONNREFUSED  nobody listens there.
 * @retval -EAGAIN  the listener's queue stayed full (after the back-off
 *                  of weft_connect()).
 * @retval other    as weft_connect() and weft_listen_unix().
 * @context Coroutine only.
 */
WEFT_API int weft_dial_unix(const char *path, int64_t timeout);

/**
 * The local port of the IPv4 or IPv6 socket @p fd (after a listen on
 * port 0, the port the kernel picked).
 * @return The port (0 .. 65535).
 * @retval -EAFNOSUPPORT  not an IPv4/IPv6 socket.
 * @retval -EBADF, -ENOTSOCK ...  getsockname's error.
 * @context Any thread.
 */
WEFT_API int weft_sock_port(int fd);

/**
 * Turn TCP_NODELAY (no Nagle delay for small writes) on or off.
 * @return 0.
 * @retval -EOPNOTSUPP, -ENOPROTOOPT  not a TCP socket.
 * @retval -EBADF, -ENOTSOCK ...     setsockopt's error.
 * @context Any thread.
 */
WEFT_API int weft_sock_nodelay(int fd, int on);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_NET_H */
