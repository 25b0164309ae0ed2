/*
 * http.c - a small HTTP/1.1 server: one coroutine per connection,
 * keep-alive, a static response and a file response (sendfile), graceful
 * shutdown on SIGINT/SIGTERM.  Real clients (curl, wrk) can load it.
 *
 *   http [PORT [FILE]]   serve on 127.0.0.1:PORT (0: any free port; the
 *                        chosen one is printed).  GET / answers "hello",
 *                        GET /file sends FILE (default: this program).
 *
 * weft-example: no-test (it serves until a signal; tests/test-http.c
 * loads it with curl and wrk)
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http_parse.h"
#include "weft.h"

#define MAX_CONNS 4096

static int listen_fd = -1;
static const char *file_path;
static weft_coro *conns[MAX_CONNS];
static int nconns;
static long requests;

static void forget_conn(weft_coro *self)
{
    for (int i = 0; i < nconns; i++)
        if (conns[i] == self) {
            conns[i] = conns[--nconns];
            return;
        }
}

static int reply(int fd, int status, const char *reason, const char *body,
                 size_t body_len, int keep)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n"
                     "Content-Type: text/plain\r\nConnection: %s\r\n\r\n",
                     status, reason, body_len, keep ? "keep-alive" : "close");
    if (weft_write_all(fd, head, (size_t)n, WEFT_SEC(10), WEFT_IO_WEAK,
                       NULL) < 0)
        return -1;
    if (body_len &&
        weft_write_all(fd, body, body_len, WEFT_SEC(10), WEFT_IO_WEAK, NULL) < 0)
        return -1;
    return 0;
}

static int send_file(int fd, int keep)
{
    int in = open(file_path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (in < 0 || fstat(in, &st) < 0) {
        if (in >= 0)
            close(in);
        return reply(fd, 404, "Not Found", "no such file\n", 13, keep);
    }
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Length: %lld\r\n"
                     "Content-Type: application/octet-stream\r\n"
                     "Connection: %s\r\n\r\n",
                     (long long)st.st_size, keep ? "keep-alive" : "close");
    int64_t off = 0;
    int r = -1;
    if (weft_write_all(fd, head, (size_t)n, WEFT_SEC(10), WEFT_IO_WEAK,
                       NULL) >= 0 &&
        weft_sendfile_all(fd, in, &off, (size_t)st.st_size, WEFT_SEC(10),
                          WEFT_IO_WEAK, NULL) >= 0)
        r = 0;
    close(in);
    return r;
}

static int connection(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[HTTP_MAX_HEAD];
    size_t have = 0;
    for (;;) {
        struct http_req req;
        long head = http_parse(buf, have, &req);
        if (head < 0) {
            reply(fd, 400, "Bad Request", "bad request\n", 12, 0);
            break;
        }
        if (head == 0) {
            /* Need more: an idle keep-alive connection waits 30 s. */
            ssize_t n = weft_read(fd, buf + have, sizeof buf - have,
                                  WEFT_SEC(30));
            if (n <= 0)
                break;
            have += (size_t)n;
            continue;
        }
        if (req.content_length > 0) {
            /* Bodies are not used here; refuse them rather than misparse. */
            reply(fd, 413, "Payload Too Large", "no bodies\n", 10, 0);
            break;
        }
        requests++;
        int keep = req.keep_alive;
        int r;
        if (req.method_len != 3 || memcmp(req.method, "GET", 3) != 0)
            r = reply(fd, 405, "Method Not Allowed", "GET only\n", 9, keep);
        else if (req.path_len == 1 && req.path[0] == '/')
            r = reply(fd, 200, "OK", "hello\n", 6, keep);
        else if (req.path_len == 5 && !memcmp(req.path, "/file", 5))
            r = send_file(fd, keep);
        else
            r = reply(fd, 404, "Not Found", "not found\n", 10, keep);
        if (r < 0 || !keep)
            break;
        /* Keep what follows the head: a pipelined next request. */
        memmove(buf, buf + head, have - (size_t)head);
        have -= (size_t)head;
    }
    weft_fd_close(fd);
    forget_conn(weft_self());
    return 0;
}

static int acceptor(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = weft_accept(listen_fd, NULL, NULL, WEFT_TIMEOUT_NONE);
        if (fd == -EBADF || fd == -ECANCELED)
            return 0;
        if (fd < 0) {
            fprintf(stderr, "http: accept: %s\n", weft_strerror(fd));
            continue; /* weft_accept already backed off */
        }
        weft_coro *co;
        if (nconns == MAX_CONNS ||
            weft_spawn(NULL, connection, (void *)(intptr_t)fd, NULL, &co) < 0) {
            weft_fd_close(fd);
            continue;
        }
        weft_detach(co);
        conns[nconns++] = co;
    }
}

static int signals(void *arg)
{
    sigset_t set;
    (void)arg;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (weft_signal_wait(&set, -1, NULL) > 0)
        printf("http: shutting down after %ld requests\n", requests);
    weft_fd_close(listen_fd);
    while (nconns > 0)
        weft_end(conns[--nconns]);
    return 0;
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
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    weft_signal_block(&set);
    file_path = argc > 2 ? argv[2] : "/proc/self/exe";
    listen_fd = weft_listen_tcp("127.0.0.1", argc > 1 ? port_arg(argv[1]) : 0,
                                1024, WEFT_SOCK_NODELAY, WEFT_SEC(5));
    if (listen_fd < 0) {
        fprintf(stderr, "http: listen: %s\n", weft_strerror(listen_fd));
        return 1;
    }
    printf("http: listening on 127.0.0.1:%d\n", weft_sock_port(listen_fd));
    fflush(stdout);
    weft_spawn(NULL, acceptor, NULL, NULL, NULL);
    weft_spawn(NULL, signals, NULL, NULL, NULL);
    int r = weft_run(NULL);
    printf("http: bye\n");
    return r == 0 ? 0 : 1;
}
