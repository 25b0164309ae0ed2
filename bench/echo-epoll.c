/*
 * echo-epoll.c - the lower bound of the echo benchmark: a hand-written TCP
 * echo server on plain level-triggered epoll, no runtime, one thread.
 *
 *     echo-epoll [PORT]    serve on 127.0.0.1:PORT (0 or none: any free
 *                          port); prints "echo-epoll: listening on
 *                          127.0.0.1:PORT", serves until killed
 *
 * Per request in the steady state: a share of one epoll_wait, one recv and
 * one send, which is as little as a readiness-based server can do.  A
 * reply the kernel does not take at once is kept, the connection stops
 * reading and waits for EPOLLOUT until it is flushed.  Run by
 * bench/bench-echo.sh (not a bench-*.c program: it does not end).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 4096

/* A reply the kernel did not take at once. */
struct pending {
    size_t off, len;
    char data[BUF];
};

static struct pending **pend; /* by fd */
static int npend;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void drop(int ep, int fd)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    if (fd < npend && pend[fd]) {
        free(pend[fd]);
        pend[fd] = NULL;
    }
}

static void watch(int ep, int op, int fd, uint32_t events)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.fd = fd;
    if (epoll_ctl(ep, op, fd, &ev) < 0)
        die("epoll_ctl");
}

/* Keep buf[0..len) for later; stop reading until it is sent. */
static void keep(int ep, int fd, const char *buf, size_t len)
{
    if (fd >= npend) {
        int n = fd + 1024;
        pend = realloc(pend, (size_t)n * sizeof *pend);
        if (!pend)
            die("realloc");
        memset(pend + npend, 0, (size_t)(n - npend) * sizeof *pend);
        npend = n;
    }
    struct pending *p = malloc(sizeof *p);
    if (!p)
        die("malloc");
    memcpy(p->data, buf, len);
    p->off = 0;
    p->len = len;
    pend[fd] = p;
    watch(ep, EPOLL_CTL_MOD, fd, EPOLLOUT);
}

static void flush(int ep, int fd)
{
    struct pending *p = pend[fd];
    ssize_t w = send(fd, p->data + p->off, p->len - p->off, MSG_NOSIGNAL);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR)
            drop(ep, fd);
        return;
    }
    p->off += (size_t)w;
    if (p->off == p->len) {
        free(p);
        pend[fd] = NULL;
        watch(ep, EPOLL_CTL_MOD, fd, EPOLLIN);
    }
}

static void echo(int ep, int fd)
{
    char buf[BUF];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            drop(ep, fd);
        return;
    }
    ssize_t w = send(fd, buf, (size_t)n, MSG_NOSIGNAL);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            drop(ep, fd);
            return;
        }
        w = 0;
    }
    if (w < n)
        keep(ep, fd, buf + w, (size_t)(n - w));
}

int main(int argc, char **argv)
{
    int one = 1;
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)(argc > 1 ? atoi(argv[1]) : 0));
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l < 0)
        die("socket");
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(l, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1024) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &alen) < 0)
        die("listen");
    printf("echo-epoll: listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    watch(ep, EPOLL_CTL_ADD, l, EPOLLIN);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == l) {
                int c;
                /* Linux: accepted sockets inherit TCP_NODELAY. */
                while ((c = accept4(l, NULL, NULL,
                                    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
                    watch(ep, EPOLL_CTL_ADD, c, EPOLLIN);
            } else if (fd < npend && pend[fd]) {
                flush(ep, fd);
            } else {
                echo(ep, fd);
            }
        }
    }
}
