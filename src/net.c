/*
 * net.c - socket helpers: name resolution on a worker thread, listening
 * and dialling over TCP (IPv4, IPv6) and Unix domain sockets.
 *
 * Resolution.  A numeric address is converted at once (getaddrinfo with
 * AI_NUMERICHOST never blocks).  A name is looked up by a fresh thread
 * running getaddrinfo(); the coroutine waits on an eventfd the thread
 * writes when it is done.  The request is shared and reference counted
 * (one reference for the coroutine, one for the thread): a coroutine
 * that stops waiting (timeout, end, raise) forgets the eventfd on its
 * scheduler, detaches the thread and drops its reference, and the thread
 * later frees the request, its result and the eventfd itself, touching
 * nothing else.  On the normal path the coroutine joins the thread, which
 * by then has nothing left to do but return.  The request is allocated
 * with plain malloc, not weft__malloc: the thread may free it, and the
 * allocation counters of weft__malloc are per thread.
 *
 * Everything built on the coroutine calls of fdio.c (weft_connect,
 * weft_fd_wait), so one deadline covers a lookup and every connect
 * attempt of a dial.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

/* Test hooks (declared by the tests, not in any header): a replacement
 * for getaddrinfo() (run wherever getaddrinfo would be), and the number
 * of worker threads that have not finished yet. */
extern int (*weft__net_gai_hook)(const char *node, const char *service,
                                 const struct addrinfo *hints,
                                 struct addrinfo **res);
extern atomic_int weft__net_resolvers;
int (*weft__net_gai_hook)(const char *node, const char *service,
                          const struct addrinfo *hints,
                          struct addrinfo **res);
atomic_int weft__net_resolvers;

#define HOST_MAX 1024 /* NI_MAXHOST - 1 */

/* ----------------------------------------------------------------------
 * Deadlines (the public clock calls, on the running coroutine's
 * scheduler)
 * ---------------------------------------------------------------------- */

static int timeout_ok(int64_t timeout)
{
    return timeout >= WEFT_TIMEOUT_DEFAULT;
}

/* The absolute deadline of a timeout argument; -1: none. */
static int64_t deadline_of(weft_sched *s, int64_t timeout)
{
    if (timeout == WEFT_TIMEOUT_DEFAULT)
        timeout = s->io_timeout > 0 ? s->io_timeout : WEFT_TIMEOUT_NONE;
    if (timeout < 0)
        return -1;
    int64_t now = weft__clock_now(s);
    return now > INT64_MAX - timeout ? -1 : now + timeout;
}

/* The timeout argument that ends at deadline. */
static int64_t time_left(weft_sched *s, int64_t deadline)
{
    if (deadline < 0)
        return WEFT_TIMEOUT_NONE;
    int64_t left = deadline - weft__clock_now(s);
    return left > 0 ? left : 0;
}

/* ----------------------------------------------------------------------
 * getaddrinfo errors as negative errno values
 * ---------------------------------------------------------------------- */

static int gai_to_errno(int gai, int sys_errno)
{
    switch (gai) {
    case 0:
        return 0;
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return -ENXIO;
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_FAMILY:
        return -EAFNOSUPPORT;
    case EAI_SERVICE:
    case EAI_SOCKTYPE:
    case EAI_BADFLAGS:
        return -EINVAL;
    case EAI_SYSTEM:
        return sys_errno > 0 ? -sys_errno : -EIO;
    default: /* EAI_FAIL and anything unknown */
        return -EIO;
    }
}

static int run_gai(const char *node, const char *service,
                   const struct addrinfo *hints, struct addrinfo **res,
                   int *sys_errno)
{
    int r = weft__net_gai_hook ? weft__net_gai_hook(node, service, hints, res)
                               : getaddrinfo(node, service, hints, res);
    *sys_errno = r == EAI_SYSTEM ? errno : 0;
    return r;
}

/* ----------------------------------------------------------------------
 * Resolution on a worker thread
 * ---------------------------------------------------------------------- */

struct req {
    atomic_int refs;  /* the coroutine's and the thread's */
    atomic_int done;  /* the thread has stored its result */
    int efd;          /* eventfd the thread writes when done */
    int gai, sys_errno;
    struct addrinfo hints;
    struct addrinfo *res;
    char service[8];
    char host[];
};

static void req_unref(struct req *q)
{
    if (atomic_fetch_sub_explicit(&q->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (q->res)
        freeaddrinfo(q->res);
    if (q->efd >= 0)
        close(q->efd);
    free(q);
}

static void *resolver(void *arg)
{
    struct req *q = arg;
    q->gai = run_gai(q->host, q->service, &q->hints, &q->res, &q->sys_errno);
    atomic_store_explicit(&q->done, 1, memory_order_release);
    uint64_t one = 1;
    /* Cannot fail short of a bug: the counter is far from overflowing
     * and the eventfd stays open while we hold a reference. */
    (void)!write(q->efd, &one, sizeof one);
    req_unref(q);
    atomic_fetch_sub_explicit(&weft__net_resolvers, 1, memory_order_release);
    return NULL;
}

/* Look host up on a thread while the current coroutine waits. */
static int resolve_async(weft_sched *s, const char *host, const char *service,
                         const struct addrinfo *hints, int64_t deadline,
                         struct addrinfo **res)
{
    size_t hl = strlen(host);
    struct req *q = malloc(sizeof *q + hl + 1);
    if (!q)
        return -ENOMEM;
    memset(q, 0, sizeof *q);
    memcpy(q->host, host, hl + 1);
    snprintf(q->service, sizeof q->service, "%s", service);
    q->hints = *hints;
    atomic_init(&q->refs, 2);
    atomic_init(&q->done, 0);
    q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (q->efd < 0) {
        int e = errno;
        free(q);
        return -e;
    }
    /* The thread must not take the process's signals (a program that
     * waits for signals with signalfd blocks them in every thread). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t th;
    atomic_fetch_add_explicit(&weft__net_resolvers, 1, memory_order_relaxed);
    int e = pthread_create(&th, NULL, resolver, q);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        atomic_fetch_sub_explicit(&weft__net_resolvers, 1,
                                  memory_order_relaxed);
        close(q->efd);
        free(q);
        return -e; /* -EAGAIN: no thread to be had */
    }
    int r = 0;
    while (!atomic_load_explicit(&q->done, memory_order_acquire)) {
        r = weft_fd_wait(q->efd, WEFT_IO_READ, deadline);
        if (r < 0)
            break;
    }
    /* The eventfd leaves this scheduler before anyone closes it. */
    (void)weft_fd_forget(s, q->efd);
    if (r < 0) {
        /* Abandon the request: the thread frees it when it is done. */
        pthread_detach(th);
        req_unref(q);
        return r;
    }
    pthread_join(th, NULL); /* it only has to return */
    r = gai_to_errno(q->gai, q->sys_errno);
    if (r == 0) {
        *res = q->res;
        q->res = NULL;
    }
    req_unref(q);
    return r;
}

/* ----------------------------------------------------------------------
 * Resolution: the common part of weft_resolve, listen and dial
 * ---------------------------------------------------------------------- */

static int family_of(unsigned flags)
{
    switch (flags & (WEFT_SOCK_IPV4 | WEFT_SOCK_IPV6)) {
    case WEFT_SOCK_IPV4:
        return AF_INET;
    case WEFT_SOCK_IPV6:
        return AF_INET6;
    default:
        return AF_UNSPEC;
    }
}

/* Copy host into buf without [brackets]; -EINVAL if empty or too long. */
static int host_copy(const char *host, char buf[HOST_MAX + 1])
{
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (!n || n > HOST_MAX)
        return -EINVAL;
    memcpy(buf, host, n);
    buf[n] = 0;
    return 0;
}

/* Whether host is an IPv4 or IPv6 literal (an IPv6 scope "%if" aside). */
static int is_numeric(const char *host)
{
    unsigned char a[sizeof(struct in6_addr)];
    char v6[INET6_ADDRSTRLEN + 1];
    if (inet_pton(AF_INET, host, a) == 1)
        return 1;
    size_t n = strcspn(host, "%");
    if (n >= sizeof v6)
        return 0;
    memcpy(v6, host, n);
    v6[n] = 0;
    return inet_pton(AF_INET6, v6, a) == 1;
}

/*
 * Resolve: at once for numeric hosts; on a thread in a coroutine (the
 * deadline starts now); or synchronously outside any scheduler run.
 */
static int resolve(const char *host, int port, unsigned flags, int passive,
                   int64_t timeout, struct addrinfo **res)
{
    char h[HOST_MAX + 1];
    char service[8];
    int r = host_copy(host, h);
    if (r < 0)
        return r;
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = family_of(flags);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    int sys_errno = 0;
    weft_coro *co = weft__tls.current;
    if (is_numeric(h) || !co) {
        if (is_numeric(h))
            hints.ai_flags |= AI_NUMERICHOST;
        else if (weft__tls.running)
            return -EINVAL; /* a callback: it would block the loop */
        r = run_gai(h, service, &hints, res, &sys_errno);
        return gai_to_errno(r, sys_errno);
    }
    weft_sched *s = co->sched;
    r = weft__block_check(s, &co);
    if (r < 0)
        return r;
    return resolve_async(s, h, service, &hints, deadline_of(s, timeout), res);
}

static int flags_ok(unsigned flags, unsigned allowed)
{
    return !(flags & ~allowed) &&
           (flags & (WEFT_SOCK_IPV4 | WEFT_SOCK_IPV6)) !=
               (WEFT_SOCK_IPV4 | WEFT_SOCK_IPV6);
}

int weft_resolve(const char *host, int port, unsigned flags, int64_t timeout,
                 struct addrinfo **res)
{
    if (!res)
        return -EINVAL;
    *res = NULL;
    if (!host || port < 0 || port > 65535 || !timeout_ok(timeout) ||
        !flags_ok(flags, WEFT_SOCK_IPV4 | WEFT_SOCK_IPV6))
        return -EINVAL;
    return resolve(host, port, flags, 0, timeout, res);
}

/* ----------------------------------------------------------------------
 * Listening
 * ---------------------------------------------------------------------- */

static int set_int(int fd, int level, int opt, int v)
{
    return setsockopt(fd, level, opt, &v, sizeof v) == 0 ? 0 : -errno;
}

static int listen_on(const struct sockaddr *sa, socklen_t len, int backlog,
                     unsigned flags)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    if (fd < 0)
        return -errno;
    int r = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (r == 0 && (flags & WEFT_SOCK_REUSEPORT))
        r = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (r == 0 && sa->sa_family == AF_INET6)
        r = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY,
                    (flags & WEFT_SOCK_V6ONLY) != 0);
    if (r == 0 && (flags & WEFT_SOCK_NODELAY))
        r = set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    if (r == 0 && bind(fd, sa, len) < 0)
        r = -errno;
    if (r == 0 && listen(fd, backlog) < 0)
        r = -errno;
    if (r < 0) {
        close(fd); /* never waited on: no scheduler knows it */
        return r;
    }
    return fd;
}

/* Every address: "::" dual-stack, else 0.0.0.0. */
static int listen_any(int port, int backlog, unsigned flags)
{
    if (!(flags & WEFT_SOCK_IPV4)) {
        struct sockaddr_in6 a6;
        memset(&a6, 0, sizeof a6);
        a6.sin6_family = AF_INET6;
        a6.sin6_addr = in6addr_any;
        a6.sin6_port = htons((uint16_t)port);
        int r = listen_on((struct sockaddr *)&a6, sizeof a6, backlog, flags);
        if (r >= 0 || (flags & WEFT_SOCK_IPV6) ||
            (r != -EAFNOSUPPORT && r != -EADDRNOTAVAIL))
            return r;
    }
    struct sockaddr_in a4;
    memset(&a4, 0, sizeof a4);
    a4.sin_family = AF_INET;
    a4.sin_addr.s_addr = htonl(INADDR_ANY);
    a4.sin_port = htons((uint16_t)port);
    return listen_on((struct sockaddr *)&a4, sizeof a4, backlog, flags);
}

int weft_listen_tcp(const char *host, int port, int backlog, unsigned flags,
                    int64_t timeout)
{
    if (port < 0 || port > 65535 || !timeout_ok(timeout) ||
        !flags_ok(flags, WEFT_SOCK_NODELAY | WEFT_SOCK_V6ONLY |
                             WEFT_SOCK_REUSEPORT | WEFT_SOCK_IPV4 |
                             WEFT_SOCK_IPV6))
        return -EINVAL;
    if (backlog <= 0)
        backlog = SOMAXCONN;
    if (!host || !*host || !strcmp(host, "*"))
        return listen_any(port, backlog, flags);
    struct addrinfo *res = NULL;
    int r = resolve(host, port, flags, 1, timeout, &res);
    if (r < 0)
        return r;
    int first = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        r = listen_on(ai->ai_addr, ai->ai_addrlen, backlog, flags);
        if (r >= 0)
            break;
        if (!first)
            first = r;
    }
    freeaddrinfo(res);
    return r >= 0 ? r : first ? first : -ENXIO;
}

/* ----------------------------------------------------------------------
 * Dialling
 * ---------------------------------------------------------------------- */

/* Errors that say "this address does not work": try the next one. */
static int next_address(int e)
{
    switch (e) {
    case -ECONNREFUSED:
    case -ENETUNREACH:
    case -EHOSTUNREACH:
    case -EADDRNOTAVAIL:
    case -EAFNOSUPPORT:
    case -EPROTONOSUPPORT:
    case -ECONNRESET:
    case -ENETDOWN:
    case -EHOSTDOWN:
    case -EACCES:
    case -EPERM:
        return 1;
    default:
        return 0;
    }
}

int weft_dial_tcp(const char *host, int port, unsigned flags,
                  int64_t timeout)
{
    weft_coro *co = weft__tls.current;
    if (!co || !host || port < 0 || port > 65535 || !timeout_ok(timeout) ||
        !flags_ok(flags, WEFT_SOCK_NODELAY | WEFT_SOCK_IPV4 | WEFT_SOCK_IPV6))
        return -EINVAL;
    weft_sched *s = co->sched;
    int64_t deadline = deadline_of(s, timeout);
    struct addrinfo *res = NULL;
    int r = resolve(host, port, flags, 0, time_left(s, deadline), &res);
    if (r < 0)
        return r;
    int first = 0, fd = -1;
    r = -ENXIO;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
        if (fd < 0) {
            r = -errno;
        } else {
            r = weft_connect(fd, ai->ai_addr, ai->ai_addrlen,
                             time_left(s, deadline));
            if (r == 0 && (flags & WEFT_SOCK_NODELAY))
                r = set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
            if (r == 0)
                break;
            (void)weft_fd_close(fd); /* it was waited on */
            fd = -1;
        }
        if (!first)
            first = r;
        if (!next_address(r))
            break; /* timeout, cancellation, a raised error ... */
    }
    freeaddrinfo(res);
    if (fd >= 0)
        return fd;
    return next_address(r) ? first : r;
}

/* ----------------------------------------------------------------------
 * Unix domain sockets
 * ---------------------------------------------------------------------- */

static int unix_addr(const char *path, struct sockaddr_un *a, socklen_t *len)
{
    if (!path || !*path)
        return -EINVAL;
    size_t n = strlen(path);
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (path[0] == '@') {
        /* Abstract: a leading NUL, then the name, no terminator. */
        if (n > sizeof a->sun_path)
            return -ENAMETOOLONG;
        memcpy(a->sun_path + 1, path + 1, n - 1);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        if (n >= sizeof a->sun_path)
            return -ENAMETOOLONG;
        memcpy(a->sun_path, path, n + 1);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    return 0;
}

int weft_listen_unix(const char *path, int backlog)
{
    struct sockaddr_un a;
    socklen_t len;
    int r = unix_addr(path, &a, &len);
    if (r < 0)
        return r;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&a, len) < 0 ||
        listen(fd, backlog <= 0 ? SOMAXCONN : backlog) < 0) {
        r = -errno;
        close(fd);
        return r;
    }
    return fd;
}

int weft_dial_unix(const char *path, int64_t timeout)
{
    struct sockaddr_un a;
    socklen_t len;
    if (!weft__tls.current || !timeout_ok(timeout))
        return -EINVAL;
    int r = unix_addr(path, &a, &len);
    if (r < 0)
        return r;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    r = weft_connect(fd, (struct sockaddr *)&a, len, timeout);
    if (r < 0) {
        (void)weft_fd_close(fd);
        return r;
    }
    return fd;
}

/* ----------------------------------------------------------------------
 * Socket queries and options
 * ---------------------------------------------------------------------- */

int weft_sock_port(int fd)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -EAFNOSUPPORT;
}

int weft_sock_nodelay(int fd, int on)
{
    return set_int(fd, IPPROTO_TCP, TCP_NODELAY, on != 0);
}
