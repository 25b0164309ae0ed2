/*
 * echo-uv.c - the libuv peer of the echo benchmark: a TCP echo server on
 * libuv's callbacks, written the way libuv's own examples do it.
 *
 *     echo-uv [PORT]    serve on 127.0.0.1:PORT (0 or none: any free
 *                       port); prints "echo-uv: listening on
 *                       127.0.0.1:PORT", serves until killed
 *
 * Reads into one buffer shared by all connections (a read callback uses
 * its data at once), replies with uv_try_write() and falls back to a
 * queued uv_write() of a copy for what the kernel does not take.  Built
 * only when libuv is found; run by bench/bench-echo.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define BUF 4096

static uv_loop_t *loop;
static char rbuf[BUF];

struct wreq {
    uv_write_t req;
    char data[];
};

static void die(const char *what, int r)
{
    fprintf(stderr, "echo-uv: %s: %s\n", what, uv_strerror(r));
    exit(1);
}

static void on_close(uv_handle_t *h)
{
    free(h);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h;
    (void)hint;
    *b = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_write(uv_write_t *req, int status)
{
    if (status < 0 && !uv_is_closing((uv_handle_t *)req->handle))
        uv_close((uv_handle_t *)req->handle, on_close);
    free(req);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    if (n < 0) {
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    if (n == 0)
        return;
    uv_buf_t out = uv_buf_init(b->base, (unsigned)n);
    int w = uv_try_write(s, &out, 1);
    if (w == UV_EAGAIN)
        w = 0;
    if (w < 0) {
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    if (w < n) {
        size_t rest = (size_t)n - (size_t)w;
        struct wreq *r = malloc(sizeof *r + rest);
        if (!r)
            die("malloc", UV_ENOMEM);
        memcpy(r->data, b->base + w, rest);
        uv_buf_t wb = uv_buf_init(r->data, (unsigned)rest);
        int e = uv_write(&r->req, s, &wb, 1, on_write);
        if (e < 0) {
            free(r);
            uv_close((uv_handle_t *)s, on_close);
        }
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *c = malloc(sizeof *c);
    if (!c)
        die("malloc", UV_ENOMEM);
    uv_tcp_init(loop, c);
    if (uv_accept(server, (uv_stream_t *)c) < 0) {
        uv_close((uv_handle_t *)c, on_close);
        return;
    }
    uv_tcp_nodelay(c, 1);
    uv_read_start((uv_stream_t *)c, on_alloc, on_read);
}

int main(int argc, char **argv)
{
    uv_tcp_t server;
    struct sockaddr_in a;
    int alen = sizeof a, r;
    loop = uv_default_loop();
    uv_ip4_addr("127.0.0.1", argc > 1 ? atoi(argv[1]) : 0, &a);
    uv_tcp_init(loop, &server);
    if ((r = uv_tcp_bind(&server, (const struct sockaddr *)&a, 0)) < 0)
        die("bind", r);
    if ((r = uv_listen((uv_stream_t *)&server, 1024, on_connection)) < 0)
        die("listen", r);
    if ((r = uv_tcp_getsockname(&server, (struct sockaddr *)&a, &alen)) < 0)
        die("getsockname", r);
    printf("echo-uv: listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
