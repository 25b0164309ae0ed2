/*
 * echo-weft.c - weft's server in the echo benchmark: one coroutine per
 * connection reading with weft_read() and answering with weft_write_all(),
 * the loop of examples/echo without its shutdown and self-test (the bench
 * build has no examples).
 *
 *     [WEFT_BACKEND=epoll|poll|io_uring] echo-weft [PORT]
 *
 * Serves on 127.0.0.1:PORT (0 or none: any free port); prints "echo-weft:
 * listening on 127.0.0.1:PORT (BACKEND)" and serves until killed.  Run by
 * bench/bench-echo.sh.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "weft.h"

static int conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;
    while ((n = weft_read(fd, buf, sizeof buf, WEFT_TIMEOUT_NONE)) > 0)
        if (weft_write_all(fd, buf, (size_t)n, WEFT_SEC(1), 0, NULL) < 0)
            break;
    weft_fd_close(fd);
    return 0;
}

static int acceptor(void *arg)
{
    int l = (int)(intptr_t)arg;
    for (;;) {
        int fd = weft_accept(l, NULL, NULL, WEFT_TIMEOUT_NONE);
        if (fd == -EBADF || fd == -EINVAL)
            return fd;
        if (fd < 0) {
            fprintf(stderr, "echo-weft: accept: %s\n", weft_strerror(fd));
            continue; /* weft_accept has backed off already */
        }
        if (weft_spawn(NULL, conn, (void *)(intptr_t)fd, NULL, NULL) < 0)
            weft_fd_close(fd);
    }
}

int main(int argc, char **argv)
{
    int l = weft_listen_tcp("127.0.0.1", argc > 1 ? atoi(argv[1]) : 0, 1024,
                            WEFT_SOCK_NODELAY, WEFT_SEC(5));
    weft_sched *s = weft_sched_default();
    if (l < 0 || !s) {
        fprintf(stderr, "echo-weft: listen: %s\n",
                weft_strerror(l < 0 ? l : -ENOMEM));
        return 1;
    }
    printf("echo-weft: listening on 127.0.0.1:%d (%s)\n", weft_sock_port(l),
           weft_backend_name(s));
    fflush(stdout);
    weft_spawn(s, acceptor, (void *)(intptr_t)l, NULL, NULL);
    return weft_run(s) == 0 ? 0 : 1;
}
