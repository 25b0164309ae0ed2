/*
 * test-net.c - socket helpers and the socket calls of weft/net.h: listen
 * and dial over IPv4, IPv6 and Unix domain sockets, name resolution on a
 * worker thread (and what happens when its coroutine goes away), accept
 * and connect with timeouts, closing and cancelling, the EMFILE back-off,
 * SO_REUSEADDR and TCP_NODELAY.  Loopback only; every case runs on each
 * backend.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#if defined(WEFT_HAVE_VALGRIND)
#include <valgrind/valgrind.h>
#endif

/* Test hooks of src/net.c. */
extern int (*weft__net_gai_hook)(const char *node, const char *service,
                                 const struct addrinfo *hints,
                                 struct addrinfo **res);
extern atomic_int weft__net_resolvers;

#include "backends.h"

/* Every case runs on each backend available here (io_uring included). */
static int backends[3];
#define NB weft_test_backends(backends)

static weft_sched *new_sched(int backend, int manual)
{
    struct weft_sched_opts o = {0};
    weft_sched *s;
    o.backend = backend;
    o.clock = manual ? WEFT_CLOCK_MANUAL : WEFT_CLOCK_MONOTONIC;
    ASSERT_OK(weft_sched_new(&o, &s));
    return s;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void check_fd_flags(int fd)
{
    ASSERT(fcntl(fd, F_GETFL) & O_NONBLOCK);
    ASSERT(fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

static int have_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static int getint(int fd, int level, int opt)
{
    int v = -1;
    socklen_t l = sizeof v;
    ASSERT_OK(getsockopt(fd, level, opt, &v, &l));
    return v;
}

/* Wait (really) until no resolver thread is left, at most 5 s. */
static void wait_resolvers_gone(void)
{
    for (int i = 0; i < 5000; i++) {
        if (atomic_load(&weft__net_resolvers) == 0)
            return;
        usleep(1000);
    }
    FAIL("resolver threads still running: %d",
         atomic_load(&weft__net_resolvers));
}

/* ---------------------------------------------------------------------
 * A getaddrinfo stand-in: numbers resolve as usual, every name to
 * 127.0.0.1 (or fails with `hook_fail`), optionally after blocking on a
 * pipe the test fills.
 * --------------------------------------------------------------------- */

static int hook_block_fd = -1;
static int hook_fail;        /* an EAI_* code to return, 0: succeed */
static int hook_errno;       /* errno for EAI_SYSTEM */
static atomic_int hook_calls;
static pthread_t hook_thread;

static int fake_gai(const char *node, const char *service,
                    const struct addrinfo *hints, struct addrinfo **res)
{
    hook_thread = pthread_self();
    atomic_fetch_add(&hook_calls, 1);
    if (hook_block_fd >= 0) {
        char c;
        (void)!read(hook_block_fd, &c, 1);
    }
    if (hook_fail) {
        if (hook_fail == EAI_SYSTEM)
            errno = hook_errno;
        return hook_fail;
    }
    if (hints->ai_flags & AI_NUMERICHOST)
        return getaddrinfo(node, service, hints, res);
    struct addrinfo h = *hints;
    h.ai_flags |= AI_NUMERICHOST;
    return getaddrinfo("127.0.0.1", service, &h, res);
}

static void hook_install(int block_fd, int fail)
{
    hook_block_fd = block_fd;
    hook_fail = fail;
    atomic_store(&hook_calls, 0);
    weft__net_gai_hook = fake_gai;
}

static void hook_remove(void)
{
    weft__net_gai_hook = NULL;
    hook_block_fd = -1;
    hook_fail = 0;
}

/* ---------------------------------------------------------------------
 * Echo: a server that accepts one connection and echoes n bytes, and a
 * client that dials, sends, and checks the echo.
 * --------------------------------------------------------------------- */

struct server {
    int l;
    int64_t timeout;
    int fd;     /* accepted, or an error */
    int family; /* of the peer */
    size_t n;
};

static int co_echo_server(void *arg)
{
    struct server *sv = arg;
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    sv->fd = weft_accept(sv->l, (struct sockaddr *)&peer, &plen, sv->timeout);
    if (sv->fd < 0)
        return 0;
    check_fd_flags(sv->fd);
    sv->family = peer.ss_family;
    char buf[64];
    ASSERT_LE(sv->n, sizeof buf);
    ASSERT_EQ(weft_read_exact(sv->fd, buf, sv->n, WEFT_SEC(5), 0, NULL),
              (ssize_t)sv->n);
    ASSERT_EQ(weft_write_all(sv->fd, buf, sv->n, WEFT_SEC(5), 0, NULL),
              (ssize_t)sv->n);
    ASSERT_OK(weft_fd_close(sv->fd));
    return 0;
}

struct client {
    const char *host; /* NULL: Unix path */
    const char *path;
    int port;
    unsigned flags;
    int64_t timeout;
    int result; /* 0 when echoed, else the dial's error */
    int nodelay;
};

/* The server of the running echo(): ended if the client's dial fails. */
static weft_coro *echo_server;

static int co_echo_client(void *arg)
{
    struct client *c = arg;
    int fd = c->host ? weft_dial_tcp(c->host, c->port, c->flags, c->timeout)
                     : weft_dial_unix(c->path, c->timeout);
    if (fd < 0) {
        c->result = fd;
        /* Nobody will connect: end the server rather than let its 5 s
         * accept timeout run out. */
        if (echo_server)
            ASSERT_OK(weft_end(echo_server));
        return 0;
    }
    check_fd_flags(fd);
    if (c->host)
        c->nodelay = getint(fd, IPPROTO_TCP, TCP_NODELAY);
    char msg[] = "hello", buf[5];
    ASSERT_EQ(weft_write_all(fd, msg, 5, WEFT_SEC(5), 0, NULL), 5);
    ASSERT_EQ(weft_read_exact(fd, buf, 5, WEFT_SEC(5), 0, NULL), 5);
    ASSERT_EQ(memcmp(buf, "hello", 5), 0);
    ASSERT_OK(weft_fd_close(fd));
    c->result = 0;
    return 0;
}

/* Run one echo exchange over listener l; returns the client's result. */
static int echo(weft_sched *s, int l, struct client *c, struct server *sv)
{
    memset(sv, 0, sizeof *sv);
    sv->l = l;
    sv->timeout = WEFT_SEC(5);
    sv->n = 5;
    sv->fd = 12345;
    c->result = 12345;
    weft_coro *server;
    ASSERT_OK(weft_spawn(s, co_echo_server, sv, NULL, &server));
    ASSERT_OK(weft_spawn(s, co_echo_client, c, NULL, NULL));
    echo_server = server;
    ASSERT_OK(weft_run(s));
    echo_server = NULL;
    ASSERT_OK(weft_reap(server, NULL));
    return c->result;
}

/* ------------------------------------------------------------------ */

TEST(tcp_ipv4_listen_on_port_0_dial_and_echo)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        /* Numeric: fine outside a coroutine. */
        int l = weft_listen_tcp("127.0.0.1", 0, 0, 0, WEFT_TIMEOUT_DEFAULT);
        ASSERT_GE(l, 0);
        check_fd_flags(l);
        ASSERT_EQ(getint(l, SOL_SOCKET, SO_REUSEADDR), 1);
        int port = weft_sock_port(l);
        ASSERT_GT(port, 0);
        struct client c = {"127.0.0.1", NULL, port, 0, WEFT_SEC(5), 0, 0};
        struct server sv;
        ASSERT_OK(echo(s, l, &c, &sv));
        ASSERT_GE(sv.fd, 0);
        ASSERT_EQ(sv.family, AF_INET);
        close(l);
        ASSERT_OK(weft_sched_free(s));
    }
}

TEST(tcp_ipv6_listen_dial_and_echo)
{
    if (!have_ipv6())
        SKIP("no IPv6 loopback (::1) here");
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int l = weft_listen_tcp("::1", 0, 16, 0, WEFT_TIMEOUT_NONE);
        ASSERT_GE(l, 0);
        int port = weft_sock_port(l);
        ASSERT_GT(port, 0);
        struct client c = {"::1", NULL, port, 0, WEFT_SEC(5), 0, 0};
        struct server sv;
        ASSERT_OK(echo(s, l, &c, &sv));
        ASSERT_EQ(sv.family, AF_INET6);
        /* With brackets, and asking for IPv6 only. */
        c.host = "[::1]";
        c.flags = WEFT_SOCK_IPV6;
        ASSERT_OK(echo(s, l, &c, &sv));
        /* An IPv4 address asked for as IPv6: no such address. */
        c.host = "127.0.0.1";
        ASSERT_ERR(echo(s, l, &c, &sv), -ENXIO);
        close(l);
        ASSERT_OK(weft_sched_free(s));
    }
}

TEST(wildcard_listeners)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        struct client c = {"127.0.0.1", NULL, 0, 0, WEFT_SEC(5), 0, 0};
        struct server sv;
        /* Every address (dual-stack where IPv6 is there): IPv4 works. */
        int l = weft_listen_tcp(NULL, 0, 0, 0, WEFT_TIMEOUT_NONE);
        ASSERT_GE(l, 0);
        c.port = weft_sock_port(l);
        ASSERT_OK(echo(s, l, &c, &sv));
        close(l);
        /* IPv4 only. */
        l = weft_listen_tcp("*", 0, 0, WEFT_SOCK_IPV4, WEFT_TIMEOUT_NONE);
        ASSERT_GE(l, 0);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        ASSERT_OK(getsockname(l, (struct sockaddr *)&ss, &sl));
        ASSERT_EQ(ss.ss_family, AF_INET);
        c.port = weft_sock_port(l);
        ASSERT_OK(echo(s, l, &c, &sv));
        close(l);
        if (have_ipv6()) {
            /* IPv6 only, no mapped IPv4: an IPv4 client is refused. */
            l = weft_listen_tcp("", 0, 0, WEFT_SOCK_IPV6 | WEFT_SOCK_V6ONLY,
                                WEFT_TIMEOUT_NONE);
            ASSERT_GE(l, 0);
            ASSERT_EQ(getint(l, IPPROTO_IPV6, IPV6_V6ONLY), 1);
            c.port = weft_sock_port(l);
            c.host = "::1";
            ASSERT_OK(echo(s, l, &c, &sv));
            c.host = "127.0.0.1";
            ASSERT_OK(weft_spawn(s, co_echo_client, &c, NULL, NULL));
            ASSERT_OK(weft_run(s));
            ASSERT_EQ(c.result, -ECONNREFUSED);
            close(l);
        }
        ASSERT_OK(weft_sched_free(s));
    }
}

TEST(unix_sockets_path_and_abstract)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        char dir[] = "/tmp/weft-net-XXXXXX";
        ASSERT_NOT_NULL(mkdtemp(dir));
        char path[128];
        snprintf(path, sizeof path, "%s/sock", dir);
        int l = weft_listen_unix(path, 0);
        ASSERT_GE(l, 0);
        check_fd_flags(l);
        ASSERT_ERR(weft_sock_port(l), -EAFNOSUPPORT);
        struct client c = {NULL, path, 0, 0, WEFT_SEC(5), 0, 0};
        struct server sv;
        ASSERT_OK(echo(s, l, &c, &sv));
        ASSERT_EQ(sv.family, AF_UNIX);
        /* The file exists now: a second listener is refused. */
        ASSERT_ERR(weft_listen_unix(path, 0), -EADDRINUSE);
        close(l);
        /* Nobody listens any more: refused; no file: not found. */
        ASSERT_OK(weft_spawn(s, co_echo_client, &c, NULL, NULL));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(c.result, -ECONNREFUSED);
        ASSERT_OK(unlink(path));
        ASSERT_OK(weft_spawn(s, co_echo_client, &c, NULL, NULL));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(c.result, -ENOENT);
        ASSERT_OK(rmdir(dir));
        /* The abstract namespace. */
        char abs[64];
        snprintf(abs, sizeof abs, "@weft-test-%d-%d", (int)getpid(), b);
        l = weft_listen_unix(abs, 4);
        ASSERT_GE(l, 0);
        c.path = abs;
        ASSERT_OK(echo(s, l, &c, &sv));
        close(l);
        ASSERT_OK(weft_spawn(s, co_echo_client, &c, NULL, NULL));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(c.result, -ECONNREFUSED);
        /* Names that do not fit. */
        char longp[200];
        memset(longp, 'a', sizeof longp - 1);
        longp[sizeof longp - 1] = 0;
        ASSERT_ERR(weft_listen_unix(longp, 0), -ENAMETOOLONG);
        longp[0] = '@';
        ASSERT_ERR(weft_listen_unix(longp, 0), -ENAMETOOLONG);
        ASSERT_ERR(weft_listen_unix("", 0), -EINVAL);
        ASSERT_ERR(weft_listen_unix(NULL, 0), -EINVAL);
        ASSERT_OK(weft_sched_free(s));
    }
}

TEST(dial_refused)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int l = weft_listen_tcp("127.0.0.1", 0, 0, 0, WEFT_TIMEOUT_NONE);
        ASSERT_GE(l, 0);
        int port = weft_sock_port(l);
        close(l); /* nobody listens on port now */
        struct client c = {"127.0.0.1", NULL, port, 0, WEFT_SEC(5), 0, 0};
        ASSERT_OK(weft_spawn(s, co_echo_client, &c, NULL, NULL));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(c.result, -ECONNREFUSED);
        ASSERT_OK(weft_sched_free(s));
    }
}

TEST(listener_port_in_use)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int l = weft_listen_tcp("127.0.0.1", 0, 0, 0, WEFT_TIMEOUT_NONE);
        ASSERT_GE(l, 0);
        ASSERT_ERR(weft_listen_tcp("127.0.0.1", weft_sock_port(l), 0, 0,
                                   WEFT_TIMEOUT_NONE),
                   -EADDRINUSE);
        close(l);
        ASSERT_OK(weft_sched_free(s));
    }
}

/* ------------------------------------------------------ name lookups */

TEST(dial_a_real_name)
{
    struct addrinfo h, *res;
    memset(&h, 0, sizeof h);
    h.ai_socktype = SOCK_STREAM;
    if (getaddrinfo("localhost", "80", &h, &res) != 0)
        SKIP("\"localhost\" does not resolve here");
    freeaddrinfo(res);
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int l = weft_listen_tcp("127.0.0.1", 0, 0, 0, WEFT_TIMEOUT_NONE);
        ASSERT_GE(l, 0);
        /* If localhost means ::1 first, that address is refused and the
         * dial goes on to 127.0.0.1. */
        struct client c = {"localhost", NULL, weft_sock_port(l),
                           WEFT_SOCK_IPV4, WEFT_SEC(5), 0, 0};
        struct server sv;
        ASSERT_OK(echo(s, l, &c, &sv));
        c.flags = 0;
        ASSERT_OK(echo(s, l, &c, &sv));
        ASSERT_EQ(atomic_load(&weft__net_resolvers), 0); /* joined */
        close(l);
        ASSERT_OK(weft_sched_free(s));
    }
}

struct res {
    const char *host;
    int port;
    unsigned flags;
    int64_t timeout;
    int r;
    int family, got_port;
    int64_t at, elapsed;
    int returned;
};

static int co_resolve(void *arg)
{
    struct res *x = arg;
    struct addrinfo *ai = NULL;
    int64_t t0 = mono_ns();
    x->r = weft_resolve(x->host, x->port, x->flags, x->timeout, &ai);
    x->elapsed = mono_ns() - t0;
    x->at = weft_now(NULL);
    if (x->r == 0) {
        ASSERT_NOT_NULL(ai);
        x->family = ai->ai_family;
        if (ai->ai_family == AF_INET)
            x->got_port = ntohs(((struct sockaddr_in *)ai->ai_addr)->sin_port);
        else
            x->got_port =
                ntohs(((struct sockaddr_in6 *)ai->ai_addr)->sin6_port);
        freeaddrinfo(ai);
    } else {
        ASSERT_NULL(ai);
    }
    x->returned = 1;
    return 0;
}

static void res_init(struct res *x, const char *host, int port,
                     unsigned flags, int64_t timeout)
{
    memset(x, 0, sizeof *x);
    x->host = host;
    x->port = port;
    x->flags = flags;
    x->timeout = timeout;
    x->r = 12345;
}

TEST(names_resolve_on_a_worker_thread_numbers_at_once)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        struct res x;
        hook_install(-1, 0);
        /* A name: on another thread, and the thread is joined. */
        res_init(&x, "some.name.test", 8080, 0, WEFT_SEC(5));
        ASSERT_OK(weft_spawn(s, co_resolve, &x, NULL, NULL));
        ASSERT_OK(weft_run(s));
        ASSERT_OK(x.r);
        ASSERT_EQ(x.family, AF_INET);
        ASSERT_EQ(x.got_port, 8080);
        ASSERT_EQ(atomic_load(&hook_calls), 1);
        ASSERT(!pthread_equal(hook_thread, pthread_self()));
        ASSERT_EQ(atomic_load(&weft__net_resolvers), 0);
        /* Numbers: here and now, no thread. */
        const char *nums[] = {"127.0.0.1", "::1", "[::1]", "10.1.2.3"};
        for (int i = 0; i < 4; i++) {
            atomic_store(&hook_calls, 0);
            res_init(&x, nums[i], 1, 0, WEFT_SEC(5));
            ASSERT_OK(weft_spawn(s, co_resolve, &x, NULL, NULL));
            ASSERT_OK(weft_run(s));
            ASSERT_OK(x.r);
            ASSERT_EQ(x.family, i == 1 || i == 2 ? AF_INET6 : AF_INET);
            ASSERT_EQ(atomic_load(&hook_calls), 1);
            ASSERT(pthread_equal(hook_thread, pthread_self()));
        }
        /* A family that does not match the number. */
        res_init(&x, "127.0.0.1", 1, WEFT_SOCK_IPV6, WEFT_SEC(5));
        ASSERT_OK(weft_spawn(s, co_resolve, &x, NULL, NULL));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(x.r, -ENXIO);
        hook_remove();
        ASSERT_OK(weft_sched_free(s));
    }
}

TEST(resolver_errors_are_errno_values)
{
    static const int eai[] = {EAI_NONAME, EAI_AGAIN,  EAI_FAIL,
                              EAI_MEMORY, EAI_FAMILY, EAI_SYSTEM,
                              EAI_NODATA};
    static const int want[] = {-ENXIO,  -EAGAIN,       -EIO,  -ENOMEM,
                               -EAFNOSUPPORT, -EMFILE, -ENXIO};
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        for (int i = 0; i < (int)(sizeof eai / sizeof eai[0]); i++) {
            struct res x;
            hook_install(-1, eai[i]);
            hook_errno = EMFILE;
            res_init(&x, "fails.test", 80, 0, WEFT_SEC(5));
            ASSERT_OK(weft_spawn(s, co_resolve, &x, NULL, NULL));
            ASSERT_OK(weft_run(s));
            ASSERT_EQ(x.r, want[i]);
            /* Synchronously (no scheduler running) too. */
            struct addrinfo *ai = (struct addrinfo *)&x;
            ASSERT_EQ(weft_resolve("fails.test", 80, 0, 0, &ai), want[i]);
            ASSERT_NULL(ai);
        }
        hook_remove();
        ASSERT_OK(weft_sched_free(s));
    }
}

/* Interrupting a lookup: the coroutine returns at once, the thread goes
 * on in the background and cleans up after itself. */
TEST(abandoned_lookups_leave_the_thread_safe)
{
    for (int b = 0; b < NB; b++) {
        for (int how = 0; how < 3; how++) { /* end, timeout, raise */
            weft_sched *s = new_sched(backends[b], how == 1);
            int gate[2];
            ASSERT_OK(pipe2(gate, O_CLOEXEC));
            hook_install(gate[0], 0);
            struct res x;
            res_init(&x, "slow.test", 80, 0,
                     how == 1 ? WEFT_SEC(2) : WEFT_TIMEOUT_NONE);
            weft_coro *c;
            ASSERT_OK(weft_spawn(s, co_resolve, &x, NULL, &c));
            ASSERT_EQ(weft_run_once(s, 0), 1); /* waiting for the thread */
            ASSERT_EQ(x.returned, 0);
            if (how == 0)
                ASSERT_OK(weft_end(c));
            else if (how == 2)
                ASSERT_OK(weft_raise(c, -EIO));
            ASSERT_OK(weft_run(s));
            ASSERT_EQ(x.r, how == 0 ? -ECANCELED
                           : how == 1 ? -ETIMEDOUT
                                      : -EIO);
            if (how == 1)
                ASSERT_EQ(x.at, WEFT_SEC(2));
            ASSERT_LT(x.elapsed, WEFT_SEC(1)); /* did not wait for it */
            ASSERT_EQ(atomic_load(&weft__net_resolvers), 1);
            /* Everything of the coroutine and scheduler goes away before
             * the thread finishes: it must touch none of it. */
            ASSERT_OK(weft_reap(c, NULL));
            ASSERT_OK(weft_sched_free(s));
            ASSERT_EQ(write(gate[1], "g", 1), 1);
            wait_resolvers_gone();
            hook_remove();
            close(gate[0]);
            close(gate[1]);
        }
    }
}

TEST(lookup_abandoned_after_the_thread_finished)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int gate[2];
        ASSERT_OK(pipe2(gate, O_CLOEXEC));
        hook_install(gate[0], 0);
        struct res x;
        res_init(&x, "fast.test", 80, 0, WEFT_TIMEOUT_NONE);
        weft_coro *c;
        ASSERT_OK(weft_spawn(s, co_resolve, &x, NULL, &c));
        ASSERT_EQ(weft_run_once(s, 0), 1);
        ASSERT_EQ(x.returned, 0);
        /* Let the thread finish while the loop does not run: the answer
         * is there, unread, when the coroutine is ended. */
        ASSERT_EQ(write(gate[1], "g", 1), 1);
        wait_resolvers_gone();
        close(gate[0]);
        close(gate[1]);
        ASSERT_OK(weft_end(c));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(x.r, -ECANCELED); /* its result is freed, not leaked */
        ASSERT_OK(weft_reap(c, NULL));
        hook_remove();
        ASSERT_OK(weft_sched_free(s));
    }
}

static int cb_result = 12345, cb_numeric = 12345;

static void resolve_in_callback(weft_timer *t, void *arg)
{
    struct addrinfo *ai;
    (void)t;
    (void)arg;
    cb_result = weft_resolve("name.test", 80, 0, WEFT_TIMEOUT_NONE, &ai);
    cb_numeric = weft_resolve("127.0.0.1", 80, 0, WEFT_TIMEOUT_NONE, &ai);
    if (cb_numeric == 0)
        freeaddrinfo(ai);
}

TEST(lookups_outside_a_coroutine)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        hook_install(-1, 0);
        /* In main(), no scheduler running: synchronous. */
        struct addrinfo *ai = NULL;
        ASSERT_OK(weft_resolve("name.test", 80, 0, WEFT_TIMEOUT_NONE, &ai));
        ASSERT_NOT_NULL(ai);
        freeaddrinfo(ai);
        ASSERT(pthread_equal(hook_thread, pthread_self()));
        int l = weft_listen_tcp("name.test", 0, 0, 0, WEFT_TIMEOUT_NONE);
        ASSERT_GE(l, 0);
        ASSERT_GT(weft_sock_port(l), 0);
        close(l);
        /* In a callback of a running loop: a name would block it. */
        weft_timer *t;
        ASSERT_OK(weft_timer_new(s, resolve_in_callback, NULL, &t));
        ASSERT_OK(weft_timer_start(t, 0, 0));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(cb_result, -EINVAL);
        ASSERT_EQ(cb_numeric, 0);
        ASSERT_OK(weft_timer_free(t));
        ASSERT_EQ(atomic_load(&weft__net_resolvers), 0);
        hook_remove();
        ASSERT_OK(weft_sched_free(s));
    }
}

TEST(dial_timeout_covers_the_lookup)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int gate[2];
        ASSERT_OK(pipe2(gate, O_CLOEXEC));
        hook_install(gate[0], 0);
        struct client c = {"slow.test", NULL, 80, 0, WEFT_MSEC(30), 0, 0};
        int64_t t0 = mono_ns();
        ASSERT_OK(weft_spawn(s, co_echo_client, &c, NULL, NULL));
        ASSERT_OK(weft_run(s));
        int64_t took = mono_ns() - t0;
        ASSERT_EQ(c.result, -ETIMEDOUT);
        ASSERT_GE(took, WEFT_MSEC(25));
        ASSERT_LT(took, WEFT_SEC(2));
        ASSERT_EQ(write(gate[1], "g", 1), 1);
        wait_resolvers_gone();
        hook_remove();
        close(gate[0]);
        close(gate[1]);
        ASSERT_OK(weft_sched_free(s));
    }
}

/* --------------------------------------------------------- TCP_NODELAY */

TEST(tcp_nodelay_option)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int l = weft_listen_tcp("127.0.0.1", 0, 0, WEFT_SOCK_NODELAY,
                                WEFT_TIMEOUT_NONE);
        ASSERT_GE(l, 0);
        struct client c = {"127.0.0.1", NULL, weft_sock_port(l),
                           WEFT_SOCK_NODELAY, WEFT_SEC(5), 0, 0};
        struct server sv;
        ASSERT_OK(echo(s, l, &c, &sv));
        ASSERT_EQ(c.nodelay, 1);
        c.flags = 0;
        ASSERT_OK(echo(s, l, &c, &sv));
        ASSERT_EQ(c.nodelay, 0);
        close(l);
        /* The helper, on a plain socket. */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_GE(fd, 0);
        ASSERT_OK(weft_sock_nodelay(fd, 1));
        ASSERT_EQ(getint(fd, IPPROTO_TCP, TCP_NODELAY), 1);
        ASSERT_OK(weft_sock_nodelay(fd, 0));
        ASSERT_EQ(getint(fd, IPPROTO_TCP, TCP_NODELAY), 0);
        close(fd);
        int sp[2];
        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
        ASSERT_LT(weft_sock_nodelay(sp[0], 1), 0);
        close(sp[0]);
        close(sp[1]);
        ASSERT_LT(weft_sock_nodelay(-1, 1), 0);
        ASSERT_ERR(weft_sock_port(-1), -EBADF);
        ASSERT_OK(weft_sched_free(s));
    }
}

static int co_accept_nodelay(void *arg)
{
    int *a = arg;
    int fd = weft_accept(a[0], NULL, NULL, WEFT_SEC(5));
    ASSERT_GE(fd, 0);
    a[1] = getint(fd, IPPROTO_TCP, TCP_NODELAY);
    ASSERT_OK(weft_fd_close(fd));
    return 0;
}

static int co_dial_only(void *arg)
{
    int *a = arg;
    int fd = weft_dial_tcp("127.0.0.1", a[2], 0, WEFT_SEC(5));
    ASSERT_GE(fd, 0);
    ASSERT_OK(weft_fd_close(fd));
    return 0;
}

TEST(accepted_sockets_inherit_nodelay_from_the_listener)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int l = weft_listen_tcp("127.0.0.1", 0, 0, WEFT_SOCK_NODELAY,
                                WEFT_TIMEOUT_NONE);
        ASSERT_GE(l, 0);
        int a[3] = {l, -1, weft_sock_port(l)};
        ASSERT_OK(weft_spawn(s, co_accept_nodelay, a, NULL, NULL));
        ASSERT_OK(weft_spawn(s, co_dial_only, a, NULL, NULL));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(a[1], 1);
        close(l);
        ASSERT_OK(weft_sched_free(s));
    }
}

/* ------------------------------------------------------------- accept */

struct acc {
    int l;
    int64_t timeout;
    int r;
    int64_t at;
    int returned;
};

static int co_accept(void *arg)
{
    struct acc *a = arg;
    a->r = weft_accept(a->l, NULL, NULL, a->timeout);
    a->at = weft_now(NULL);
    a->returned = 1;
    return 0;
}

static int co_close_fd_later(void *arg)
{
    int fd = *(int *)arg;
    ASSERT_OK(weft_yield());
    ASSERT_OK(weft_fd_close(fd));
    return 0;
}

TEST(accept_timeout_close_and_cancel)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 1);
        int l = weft_listen_tcp("127.0.0.1", 0, 0, 0, WEFT_TIMEOUT_NONE);
        ASSERT_GE(l, 0);
        struct acc a = {l, WEFT_SEC(2), 12345, 0, 0};
        /* Timeout. */
        ASSERT_OK(weft_spawn(s, co_accept, &a, NULL, NULL));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(a.r, -ETIMEDOUT);
        ASSERT_EQ(a.at, WEFT_SEC(2));
        /* Ended while waiting. */
        weft_coro *c;
        a.timeout = WEFT_TIMEOUT_NONE;
        ASSERT_OK(weft_spawn(s, co_accept, &a, NULL, &c));
        ASSERT_EQ(weft_run_once(s, 0), 1);
        ASSERT_OK(weft_end(c));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(a.r, -ECANCELED);
        ASSERT_OK(weft_reap(c, NULL));
        /* Raised into. */
        ASSERT_OK(weft_spawn(s, co_accept, &a, NULL, &c));
        ASSERT_EQ(weft_run_once(s, 0), 1);
        ASSERT_OK(weft_raise(c, -ESHUTDOWN));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(a.r, -ESHUTDOWN);
        ASSERT_OK(weft_reap(c, NULL));
        /* The listener closed under it. */
        ASSERT_OK(weft_spawn(s, co_accept, &a, NULL, NULL));
        ASSERT_OK(weft_spawn(s, co_close_fd_later, &l, NULL, NULL));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(a.r, -EBADF);
        ASSERT_OK(weft_sched_free(s));
    }
}

struct acceptor {
    int l;
    int fd;
    char id;
};

static int co_acceptor(void *arg)
{
    struct acceptor *a = arg;
    a->fd = weft_accept(a->l, NULL, NULL, WEFT_SEC(5));
    ASSERT_GE(a->fd, 0);
    ASSERT_EQ(weft_read_exact(a->fd, &a->id, 1, WEFT_SEC(5), 0, NULL), 1);
    ASSERT_OK(weft_fd_close(a->fd));
    return 0;
}

struct dialer {
    int port;
    char id;
};

static int co_dialer(void *arg)
{
    struct dialer *d = arg;
    ASSERT_OK(weft_sleep_for(WEFT_MSEC(1)));
    int fd = weft_dial_tcp("127.0.0.1", d->port, 0, WEFT_SEC(5));
    ASSERT_GE(fd, 0);
    ASSERT_EQ(weft_write_all(fd, &d->id, 1, WEFT_SEC(5), 0, NULL), 1);
    char c;
    ASSERT_EQ(weft_read(fd, &c, 1, WEFT_SEC(5)), 0); /* the server closes */
    ASSERT_OK(weft_fd_close(fd));
    return 0;
}

TEST(several_acceptors_share_a_listener)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int l = weft_listen_tcp("127.0.0.1", 0, 0, 0, WEFT_TIMEOUT_NONE);
        ASSERT_GE(l, 0);
        struct acceptor a[3];
        struct dialer d[3];
        for (int i = 0; i < 3; i++) {
            a[i].l = l;
            a[i].id = 0;
            d[i].port = weft_sock_port(l);
            d[i].id = (char)('a' + i);
            ASSERT_OK(weft_spawn(s, co_acceptor, &a[i], NULL, NULL));
        }
        for (int i = 0; i < 3; i++)
            ASSERT_OK(weft_spawn(s, co_dialer, &d[i], NULL, NULL));
        ASSERT_OK(weft_run(s));
        int seen = 0;
        for (int i = 0; i < 3; i++) {
            ASSERT(a[i].id >= 'a' && a[i].id <= 'c');
            seen |= 1 << (a[i].id - 'a');
        }
        ASSERT_EQ(seen, 7); /* each connection went to exactly one */
        close(l);
        ASSERT_OK(weft_sched_free(s));
    }
}

/* -------------------------------------------------- EMFILE on accept */

static int blocking_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    ASSERT_OK(connect(fd, (struct sockaddr *)&a, sizeof a));
    return fd;
}

/* Use up every descriptor under a lowered limit. */
struct fill {
    int fds[256];
    int n;
};

static void fill_fds(struct fill *f)
{
    f->n = 0;
    for (;;) {
        int fd = fcntl(0, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) {
            ASSERT_EQ(errno, EMFILE);
            return;
        }
        ASSERT_LT(f->n, 256);
        f->fds[f->n++] = fd;
    }
}

static void free_fds(struct fill *f)
{
    while (f->n)
        close(f->fds[--f->n]);
}

struct emfile {
    struct fill *fill;
    int l;
    int64_t timeout;
    int r;
    int64_t at;
    char got;
};

static int co_accept_read(void *arg)
{
    struct emfile *e = arg;
    e->r = weft_accept(e->l, NULL, NULL, e->timeout);
    e->at = weft_now(NULL);
    if (e->r >= 0) {
        ASSERT_EQ(weft_read(e->r, &e->got, 1, WEFT_SEC(5)), 1);
        ASSERT_OK(weft_fd_close(e->r));
    }
    return 0;
}

static int co_free_one_later(void *arg)
{
    struct emfile *e = arg;
    ASSERT_OK(weft_sleep_for(WEFT_MSEC(30)));
    ASSERT_GT(e->fill->n, 0);
    close(e->fill->fds[--e->fill->n]);
    return 0;
}

TEST(accept_backs_off_on_emfile_and_loses_no_connection)
{
#if defined(WEFT_HAVE_VALGRIND)
    /* Valgrind only pretends to lower RLIMIT_NOFILE: the kernel's accept4
     * takes the connection off the queue, then valgrind closes the new fd
     * and says EMFILE, so the connection is lost before weft sees it. */
    if (RUNNING_ON_VALGRIND)
        SKIP("valgrind emulates RLIMIT_NOFILE after accept4 dequeues");
#endif
    struct rlimit old, low;
    ASSERT_OK(getrlimit(RLIMIT_NOFILE, &old));
    for (int b = 0; b < NB; b++) {
        for (int manual = 0; manual < 2; manual++) {
            weft_sched *s = new_sched(backends[b], manual);
            int l = weft_listen_tcp("127.0.0.1", 0, 0, 0, WEFT_TIMEOUT_NONE);
            ASSERT_GE(l, 0);
            int port = weft_sock_port(l);
            int c1 = blocking_connect(port), c2 = blocking_connect(port);
            ASSERT_EQ(write(c1, "1", 1), 1);
            ASSERT_EQ(write(c2, "2", 1), 1);
            low = old;
            low.rlim_cur = 64;
            ASSERT_OK(setrlimit(RLIMIT_NOFILE, &low));
            struct fill f;
            fill_fds(&f);
            struct emfile e = {&f, l, WEFT_TIMEOUT_NONE, 0, 0, 0};
            if (!manual) {
                /* Another coroutine frees a descriptor 30 ms later: the
                 * back-off retries and gets the connection. */
                int64_t t0 = mono_ns();
                ASSERT_OK(weft_spawn(s, co_accept_read, &e, NULL, NULL));
                ASSERT_OK(weft_spawn(s, co_free_one_later, &e, NULL, NULL));
                ASSERT_OK(weft_run(s));
                ASSERT_EQ(e.got, '1');
                ASSERT_GE(mono_ns() - t0, WEFT_MSEC(25));
            } else {
                /* Nothing frees one: -EMFILE after WEFT_BACKOFF_MAX. */
                ASSERT_OK(weft_spawn(s, co_accept_read, &e, NULL, NULL));
                ASSERT_OK(weft_run(s));
                ASSERT_EQ(e.r, -EMFILE);
                ASSERT_EQ(e.at, WEFT_BACKOFF_MAX);
                /* A deadline cuts the back-off short. */
                e.timeout = WEFT_MSEC(50);
                ASSERT_OK(weft_spawn(s, co_accept_read, &e, NULL, NULL));
                ASSERT_OK(weft_run(s));
                ASSERT_EQ(e.r, -EMFILE);
                ASSERT_EQ(e.at, WEFT_BACKOFF_MAX + WEFT_MSEC(50));
                /* The connection waited in the queue: nothing lost. */
                close(f.fds[--f.n]);
                e.timeout = 0;
                ASSERT_OK(weft_spawn(s, co_accept_read, &e, NULL, NULL));
                ASSERT_OK(weft_run(s));
                ASSERT_EQ(e.got, '1');
            }
            free_fds(&f);
            ASSERT_OK(setrlimit(RLIMIT_NOFILE, &old));
            /* The second connection is still there too. */
            e.timeout = WEFT_SEC(5);
            e.got = 0;
            ASSERT_OK(weft_spawn(s, co_accept_read, &e, NULL, NULL));
            ASSERT_OK(weft_run(s));
            ASSERT_EQ(e.got, '2');
            close(c1);
            close(c2);
            close(l);
            ASSERT_OK(weft_sched_free(s));
        }
    }
}

/* ------------------------------------------------------------ connect */

struct conn {
    struct sockaddr_storage addr;
    socklen_t alen;
    int fd;
    int64_t timeout;
    int r;
    int64_t at;
};

static int co_connect(void *arg)
{
    struct conn *c = arg;
    c->r = weft_connect(c->fd, (struct sockaddr *)&c->addr, c->alen,
                        c->timeout);
    c->at = weft_now(NULL);
    return 0;
}

/* A TCP listener whose queue is full, so that a connect stays pending.
 * Returns 0 if this system does not keep such connects pending. */
static int full_listener(int *l, int *junk, int njunk,
                         struct sockaddr_in *a)
{
    *l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(*l, 0);
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof *a;
    ASSERT_OK(bind(*l, (struct sockaddr *)a, sizeof *a));
    ASSERT_OK(listen(*l, 0));
    ASSERT_OK(getsockname(*l, (struct sockaddr *)a, &al));
    for (int i = 0; i < njunk; i++) {
        junk[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                         0);
        ASSERT_GE(junk[i], 0);
        (void)connect(junk[i], (struct sockaddr *)a, sizeof *a);
    }
    usleep(20000);
    int probe = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE(probe, 0);
    int r = connect(probe, (struct sockaddr *)a, sizeof *a);
    int pending = 0;
    if (r < 0 && errno == EINPROGRESS) {
        struct pollfd pf = {probe, POLLOUT, 0};
        pending = poll(&pf, 1, 100) == 0;
    }
    close(probe);
    return pending;
}

TEST(connect_timeout_cancel_and_close)
{
    int l, junk[8];
    struct sockaddr_in a;
    if (!full_listener(&l, junk, 8, &a)) {
        for (int i = 0; i < 8; i++)
            close(junk[i]);
        close(l);
        SKIP("connects to a full listen queue do not stay pending here");
    }
    for (int b = 0; b < NB; b++) {
        for (int how = 0; how < 4; how++) {
            /* 0: timeout (manual clock), 1: real 30 ms timeout, 2: end,
             * 3: closed under it. */
            weft_sched *s = new_sched(backends[b], how == 0);
            struct conn c;
            memset(&c, 0, sizeof c);
            memcpy(&c.addr, &a, sizeof a);
            c.alen = sizeof a;
            c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            ASSERT_GE(c.fd, 0);
            c.timeout = how == 0   ? WEFT_SEC(3)
                        : how == 1 ? WEFT_MSEC(30)
                                   : WEFT_TIMEOUT_NONE;
            c.r = 12345;
            weft_coro *co;
            ASSERT_OK(weft_spawn(s, co_connect, &c, NULL, &co));
            ASSERT_EQ(weft_run_once(s, 0), 1);
            ASSERT_EQ(c.r, 12345); /* pending */
            ASSERT(fcntl(c.fd, F_GETFL) & O_NONBLOCK);
            /* io_uring: the connect itself is an operation on the ring;
             * the readiness backends wait for the fd to become writable. */
            char want[64], *text = weft_test_dump(s, NULL);
            if (backends[b] == WEFT_BACKEND_URING)
                snprintf(want, sizeof want, "I/O operation connect on fd %d",
                         c.fd);
            else
                snprintf(want, sizeof want, "fd %d for write", c.fd);
            if (!strstr(text, want))
                FAIL("%s: want \"%s\" in:\n%s", weft_backend_name(s), want,
                     text);
            free(text);
            if (how == 2)
                ASSERT_OK(weft_end(co));
            if (how == 3)
                ASSERT_OK(weft_spawn(s, co_close_fd_later, &c.fd, NULL, NULL));
            ASSERT_OK(weft_run(s));
            ASSERT_EQ(c.r, how < 2 ? -ETIMEDOUT : how == 2 ? -ECANCELED
                                                          : -EBADF);
            if (how == 0)
                ASSERT_EQ(c.at, WEFT_SEC(3));
            ASSERT_OK(weft_reap(co, NULL));
            if (how != 3)
                ASSERT_OK(weft_fd_close(c.fd));
            ASSERT_OK(weft_sched_free(s));
        }
    }
    for (int i = 0; i < 8; i++)
        close(junk[i]);
    close(l);
}

static int co_accept_later(void *arg)
{
    int l = *(int *)arg;
    ASSERT_OK(weft_sleep_for(WEFT_MSEC(20)));
    int fd = weft_accept(l, NULL, NULL, 0);
    ASSERT_GE(fd, 0);
    ASSERT_OK(weft_fd_close(fd));
    return 0;
}

TEST(unix_connect_backs_off_while_the_queue_is_full)
{
    for (int b = 0; b < NB; b++) {
        for (int how = 0; how < 3; how++) {
            /* 0: the queue stays full (-EAGAIN after the back-off),
             * 1: with a shorter deadline, 2: a slot frees up. */
            weft_sched *s = new_sched(backends[b], 1);
            char name[64];
            snprintf(name, sizeof name, "@weft-full-%d-%d-%d", (int)getpid(),
                     b, how);
            int l = weft_listen_unix(name, 1);
            ASSERT_GE(l, 0);
            struct conn c;
            memset(&c, 0, sizeof c);
            struct sockaddr_un *ua = (struct sockaddr_un *)&c.addr;
            ua->sun_family = AF_UNIX;
            memcpy(ua->sun_path + 1, name + 1, strlen(name) - 1);
            c.alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
                                 strlen(name));
            int junk[64], nj = 0;
            for (;;) {
                ASSERT_LT(nj, 64);
                junk[nj] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
                ASSERT_GE(junk[nj], 0);
                int r = connect(junk[nj], (struct sockaddr *)&c.addr, c.alen);
                nj++;
                if (r < 0) {
                    ASSERT_EQ(errno, EAGAIN);
                    break;
                }
            }
            c.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            ASSERT_GE(c.fd, 0);
            c.timeout = how == 1 ? WEFT_MSEC(100) : WEFT_TIMEOUT_NONE;
            ASSERT_OK(weft_spawn(s, co_connect, &c, NULL, NULL));
            if (how == 2)
                ASSERT_OK(weft_spawn(s, co_accept_later, &l, NULL, NULL));
            ASSERT_OK(weft_run(s));
            if (how == 0) {
                ASSERT_EQ(c.r, -EAGAIN);
                ASSERT_EQ(c.at, WEFT_BACKOFF_MAX);
            } else if (how == 1) {
                ASSERT_EQ(c.r, -EAGAIN);
                ASSERT_EQ(c.at, WEFT_MSEC(100));
            } else {
                ASSERT_OK(c.r);
                ASSERT_GE(c.at, WEFT_MSEC(20));
            }
            for (int i = 0; i < nj; i++)
                close(junk[i]);
            ASSERT_OK(weft_fd_close(c.fd));
            close(l);
            ASSERT_OK(weft_sched_free(s));
        }
    }
}

/* ------------------------------------------------------- SO_REUSEADDR */

struct restart {
    int l;
    int srv_done;
};

static int co_accept_and_close_first(void *arg)
{
    struct restart *r = arg;
    int fd = weft_accept(r->l, NULL, NULL, WEFT_SEC(5));
    ASSERT_GE(fd, 0);
    ASSERT_OK(weft_fd_close(fd)); /* active close: TIME_WAIT on this side */
    r->srv_done = 1;
    return 0;
}

static int co_dial_wait_eof(void *arg)
{
    int port = *(int *)arg;
    int fd = weft_dial_tcp("127.0.0.1", port, 0, WEFT_SEC(5));
    ASSERT_GE(fd, 0);
    char c;
    ASSERT_EQ(weft_read(fd, &c, 1, WEFT_SEC(5)), 0);
    ASSERT_OK(weft_fd_close(fd));
    return 0;
}

TEST(reuseaddr_lets_a_server_restart_on_its_port)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        struct restart r = {-1, 0};
        r.l = weft_listen_tcp("127.0.0.1", 0, 0, 0, WEFT_TIMEOUT_NONE);
        ASSERT_GE(r.l, 0);
        int port = weft_sock_port(r.l);
        ASSERT_OK(weft_spawn(s, co_accept_and_close_first, &r, NULL, NULL));
        ASSERT_OK(weft_spawn(s, co_dial_wait_eof, &port, NULL, NULL));
        ASSERT_OK(weft_run(s));
        ASSERT(r.srv_done);
        close(r.l);
        /* The old connection lingers in TIME_WAIT on this port. */
        int l2 = weft_listen_tcp("127.0.0.1", port, 0, 0, WEFT_TIMEOUT_NONE);
        ASSERT_GE(l2, 0);
        ASSERT_EQ(weft_sock_port(l2), port);
        close(l2);
        ASSERT_OK(weft_sched_free(s));
    }
}

/* ---------------------------------------- EPIPE on TCP, no SIGPIPE */

static int co_write_until_error(void *arg)
{
    int *a = arg; /* a[0]: port, a[1]: result */
    int fd = weft_dial_tcp("127.0.0.1", a[0], 0, WEFT_SEC(5));
    ASSERT_GE(fd, 0);
    char c;
    ASSERT_EQ(weft_read(fd, &c, 1, WEFT_SEC(5)), 0); /* peer closed */
    char chunk[1024];
    memset(chunk, 'p', sizeof chunk);
    for (int i = 0; i < 1000; i++) {
        ssize_t r = weft_write_all(fd, chunk, sizeof chunk, WEFT_SEC(5), 0,
                                   NULL);
        if (r < 0) {
            a[1] = (int)r;
            break;
        }
        ASSERT_OK(weft_sleep_for(WEFT_MSEC(1)));
    }
    ASSERT_OK(weft_fd_close(fd));
    return 0;
}

TEST(tcp_write_to_a_closed_peer_is_epipe_not_sigpipe)
{
    signal(SIGPIPE, SIG_DFL);
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        struct restart r = {-1, 0};
        r.l = weft_listen_tcp("127.0.0.1", 0, 0, 0, WEFT_TIMEOUT_NONE);
        ASSERT_GE(r.l, 0);
        int a[2] = {weft_sock_port(r.l), 0};
        ASSERT_OK(weft_spawn(s, co_accept_and_close_first, &r, NULL, NULL));
        ASSERT_OK(weft_spawn(s, co_write_until_error, a, NULL, NULL));
        ASSERT_OK(weft_run(s));
        ASSERT(a[1] == -EPIPE || a[1] == -ECONNRESET);
        sigset_t pend;
        ASSERT_OK(sigpending(&pend));
        ASSERT(!sigismember(&pend, SIGPIPE));
        close(r.l);
        ASSERT_OK(weft_sched_free(s));
    }
}

/* ------------------------------------------------------------ bad input */

static int co_net_bad(void *arg)
{
    int *r = arg;
    int i = 0;
    struct addrinfo *ai;
    char longname[1100];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    r[i++] = weft_dial_tcp(NULL, 80, 0, 0);
    r[i++] = weft_dial_tcp("", 80, 0, 0);
    r[i++] = weft_dial_tcp("127.0.0.1", -1, 0, 0);
    r[i++] = weft_dial_tcp("127.0.0.1", 65536, 0, 0);
    r[i++] = weft_dial_tcp("127.0.0.1", 80, WEFT_SOCK_V6ONLY, 0);
    r[i++] = weft_dial_tcp("127.0.0.1", 80,
                           WEFT_SOCK_IPV4 | WEFT_SOCK_IPV6, 0);
    r[i++] = weft_dial_tcp("127.0.0.1", 80, 0, -3);
    r[i++] = weft_resolve(NULL, 80, 0, 0, &ai);
    r[i++] = weft_resolve("x", 80, 0, 0, NULL);
    r[i++] = weft_resolve(longname, 80, 0, 0, &ai);
    r[i++] = weft_resolve("[]", 80, 0, 0, &ai);
    r[i++] = weft_resolve("x", 80, WEFT_SOCK_NODELAY, 0, &ai);
    r[i++] = weft_dial_unix(NULL, 0);
    r[i++] = weft_dial_unix("/x", -5);
    r[i++] = weft_accept(-1, NULL, NULL, 0);
    r[i++] = weft_accept(0, (struct sockaddr *)&ai, NULL, 0);
    r[i++] = weft_connect(-1, (struct sockaddr *)&ai, 4, 0);
    r[i++] = weft_connect(0, NULL, 4, 0);
    r[i++] = weft_connect(0, (struct sockaddr *)&ai, 0, 0);
    r[i++] = weft_accept(0, NULL, NULL, -4);
    r[i] = 999;
    return 0;
}

TEST(socket_helpers_bad_input)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 1);
        ASSERT_ERR(weft_listen_tcp("127.0.0.1", -1, 0, 0, 0), -EINVAL);
        ASSERT_ERR(weft_listen_tcp("127.0.0.1", 70000, 0, 0, 0), -EINVAL);
        ASSERT_ERR(weft_listen_tcp("127.0.0.1", 0, 0, 0x1000, 0), -EINVAL);
        ASSERT_ERR(weft_listen_tcp("127.0.0.1", 0, 0,
                                   WEFT_SOCK_IPV4 | WEFT_SOCK_IPV6, 0),
                   -EINVAL);
        ASSERT_ERR(weft_listen_tcp("127.0.0.1", 0, 0, 0, -9), -EINVAL);
        /* Coroutine only. */
        ASSERT_ERR(weft_dial_tcp("127.0.0.1", 80, 0, 0), -EINVAL);
        ASSERT_ERR(weft_dial_unix("/x", 0), -EINVAL);
        ASSERT_ERR(weft_accept(0, NULL, NULL, 0), -EINVAL);
        int dummy = 0;
        ASSERT_ERR(weft_connect(0, (struct sockaddr *)&dummy, 4, 0), -EINVAL);
        int r[32];
        ASSERT_OK(weft_spawn(s, co_net_bad, r, NULL, NULL));
        ASSERT_OK(weft_run(s));
        int i;
        for (i = 0; r[i] != 999; i++)
            if (r[i] != -EINVAL)
                FAIL("bad input case %d: %d (%s), not -EINVAL", i, r[i],
                     weft_err_name(r[i]));
        ASSERT_EQ(i, 20);
        ASSERT_OK(weft_sched_free(s));
    }
}
