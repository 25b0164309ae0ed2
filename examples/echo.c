/*
 * echo.c - a TCP echo server: one coroutine per connection, graceful
 * shutdown on SIGINT or SIGTERM.
 *
 *   echo [PORT]            serve on 127.0.0.1:PORT (0 or none: any free
 *                          port; the chosen one is printed) until a signal
 *   echo --self-test       serve, run 8 clients of 100 round trips each
 *                          against it inside the same scheduler, shut down
 *                          and exit 0 if every byte came back
 *
 * weft-example: no-test (it serves until a signal; tests/test-echo.c runs
 * it both ways, with a separate client process and by signal)
 *
 * Shutdown: a coroutine waits for SIGINT/SIGTERM (weft_signal_wait), then
 * closes the listener (the acceptor's wait ends with -EBADF) and ends the
 * connection coroutines; each finishes the reply it is writing only if it
 * can do so within a second, then closes its socket.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weft.h"

#define MAX_CONNS 1024

static int listen_fd = -1;
static weft_coro *conns[MAX_CONNS];
static int nconns, served;

static void forget_conn(weft_coro *self)
{
    for (int i = 0; i < nconns; i++) {
        if (conns[i] == self) {
            conns[i] = conns[--nconns];
            return;
        }
    }
}

/* One connection: echo until end of file, an error or shutdown. */
static int connection(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = weft_read(fd, buf, sizeof buf, WEFT_TIMEOUT_NONE);
        if (n <= 0)
            break; /* 0: the peer closed; < 0: error or shutdown */
        if (weft_write_all(fd, buf, (size_t)n, WEFT_SEC(1), 0, NULL) < 0)
            break;
    }
    weft_fd_close(fd);
    forget_conn(weft_self());
    served++;
    return 0;
}

static int acceptor(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = weft_accept(listen_fd, NULL, NULL, WEFT_TIMEOUT_NONE);
        if (fd == -EBADF || fd == -ECANCELED)
            return 0; /* the listener was closed: shutting down */
        if (fd < 0) {
            /* Out of descriptors even after weft_accept's back-off: say
             * so and keep serving the connections we have. */
            fprintf(stderr, "echo: accept: %s\n", weft_strerror(fd));
            continue;
        }
        if (nconns == MAX_CONNS) {
            weft_fd_close(fd);
            continue;
        }
        struct weft_spawn_opts o = {0};
        o.name = "conn";
        weft_coro *co;
        if (weft_spawn(NULL, connection, (void *)(intptr_t)fd, &o, &co) < 0) {
            weft_fd_close(fd);
            continue;
        }
        weft_detach(co);
        conns[nconns++] = co;
    }
}

static void shutdown_server(void)
{
    if (listen_fd >= 0) {
        weft_fd_close(listen_fd); /* wakes the acceptor with -EBADF */
        listen_fd = -1;
    }
    while (nconns > 0) {
        weft_coro *co = conns[--nconns];
        weft_end(co); /* its read or write returns -ECANCELED */
    }
}

static int signals(void *arg)
{
    sigset_t set;
    (void)arg;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = weft_signal_wait(&set, -1, NULL);
    if (sig > 0)
        printf("echo: %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    shutdown_server();
    return 0;
}

/* --self-test: clients in the same scheduler. */
static int port, clients_ok;

static int client(void *arg)
{
    int id = (int)(intptr_t)arg;
    int fd = weft_dial_tcp("127.0.0.1", port, WEFT_SOCK_NODELAY, WEFT_SEC(5));
    if (fd < 0)
        return fd;
    for (int i = 0; i < 100; i++) {
        char out[64], in[64];
        int len = snprintf(out, sizeof out, "client %d message %d", id, i);
        if (weft_write_all(fd, out, (size_t)len, WEFT_SEC(5), 0, NULL) < 0 ||
            weft_read_exact(fd, in, (size_t)len, WEFT_SEC(5), 0, NULL) < 0 ||
            memcmp(in, out, (size_t)len) != 0) {
            weft_fd_close(fd);
            return -EIO;
        }
    }
    weft_fd_close(fd);
    clients_ok++;
    return 0;
}

static int self_test(void *arg)
{
    weft_coro *c[8];
    int failed = 0;
    (void)arg;
    for (int i = 0; i < 8; i++)
        weft_spawn(NULL, client, (void *)(intptr_t)i, NULL, &c[i]);
    for (int i = 0; i < 8; i++) {
        int st;
        weft_join(c[i], &st);
        failed += st != 0;
    }
    printf("echo: %d of 8 clients got every byte back\n", clients_ok);
    kill(getpid(), SIGTERM); /* the normal shutdown path */
    return failed ? -EIO : 0;
}

/* A port number argument; -1 (which weft_listen_tcp refuses) if not one. */
static int port_arg(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return end != s && !*end && v >= 0 && v <= 65535 ? (int)v : -1;
}

int main(int argc, char **argv)
{
    int test = argc > 1 && !strcmp(argv[1], "--self-test");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    weft_signal_block(&set); /* before anything else: delivered as events */

    listen_fd = weft_listen_tcp("127.0.0.1", test || argc < 2 ? 0 : port_arg(argv[1]),
                                128, WEFT_SOCK_NODELAY, WEFT_SEC(5));
    if (listen_fd < 0) {
        fprintf(stderr, "echo: listen: %s\n", weft_strerror(listen_fd));
        return 1;
    }
    port = weft_sock_port(listen_fd);
    printf("echo: listening on 127.0.0.1:%d\n", port);
    fflush(stdout);

    weft_spawn(NULL, acceptor, NULL, NULL, NULL);
    weft_spawn(NULL, signals, NULL, NULL, NULL);
    weft_coro *t = NULL;
    if (test)
        weft_spawn(NULL, self_test, NULL, NULL, &t);
    int r = weft_run(NULL);
    int st = 0;
    if (t)
        weft_reap(t, &st);
    printf("echo: served %d connections, bye\n", served);
    return r == 0 && st == 0 ? 0 : 1;
}
