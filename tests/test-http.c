/*
 * test-http.c - examples/http against real clients: curl (keep-alive, the
 * static and the file response, errors) and a short wrk load, on loopback,
 * bounded in time; plus the request parser (examples/http_parse.h).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server.h"
#include "test.h"
#include "../examples/http_parse.h"

#ifndef WEFT_HTTP_BIN
#define WEFT_HTTP_BIN ""
#endif

static int have(const char *tool)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

static void start(struct server *sv, const char *file)
{
    if (!WEFT_HTTP_BIN[0])
        SKIP("examples are not built");
    server_start(sv, WEFT_HTTP_BIN, "http", "0", file);
}

static void stop(struct server *sv, char *rest, size_t size)
{
    int st = server_stop(sv, SIGTERM, rest, size);
    ASSERT(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
}

/* Run a shell command, capture its stdout. */
static void run(const char *cmd, char *out, size_t size)
{
    FILE *f = popen(cmd, "r");
    ASSERT_NOT_NULL(f);
    size_t n = fread(out, 1, size - 1, f);
    out[n] = 0;
    ASSERT_EQ(pclose(f), 0);
}

TEST(curl_keep_alive_static_and_file)
{
    if (!have("curl"))
        SKIP("curl is not installed (scripts/deps.sh installs it)");
    struct server sv = {0, NULL, 0};
    char cmd[1024], out[4096], rest[512];
    start(&sv, "/etc/os-release");
    /* Two requests, one connection: the second reuses it (0 new). */
    snprintf(cmd, sizeof cmd,
             "curl -s --max-time 10 -w '[%%{http_code} %%{num_connects}]' "
             "http://127.0.0.1:%d/ http://127.0.0.1:%d/",
             sv.port, sv.port);
    run(cmd, out, sizeof out);
    ASSERT_STR_EQ(out, "hello\n[200 1]hello\n[200 0]");
    /* The file response is the file, byte for byte. */
    snprintf(cmd, sizeof cmd,
             "curl -s --max-time 10 http://127.0.0.1:%d/file | "
             "cmp - /etc/os-release && echo same",
             sv.port);
    run(cmd, out, sizeof out);
    ASSERT_STR_EQ(out, "same\n");
    /* Errors are answered, not dropped. */
    snprintf(cmd, sizeof cmd,
             "curl -s --max-time 10 -o /dev/null -w '%%{http_code} ' "
             "http://127.0.0.1:%d/nope; "
             "curl -s --max-time 10 -o /dev/null -w '%%{http_code} ' "
             "-X POST http://127.0.0.1:%d/",
             sv.port, sv.port);
    run(cmd, out, sizeof out);
    ASSERT_STR_EQ(out, "404 405 ");
    stop(&sv, rest, sizeof rest);
    ASSERT_STR_CONTAINS(rest, "shutting down after 5 requests");
}

TEST(wrk_load_for_one_second)
{
    if (!have("wrk"))
        SKIP("wrk is not installed (scripts/deps.sh installs it)");
    struct server sv = {0, NULL, 0};
    char cmd[1024], out[4096], rest[512];
    start(&sv, NULL);
    snprintf(cmd, sizeof cmd,
             "wrk -t1 -c16 -d1s --timeout 5s http://127.0.0.1:%d/", sv.port);
    run(cmd, out, sizeof out);
    ASSERT_STR_CONTAINS(out, "requests in");
    ASSERT(strstr(out, "Socket errors") == NULL); /* no connect/read/write
                                                     errors or timeouts */
    ASSERT(strstr(out, "Non-2xx") == NULL);
    long reqs = 0;
    const char *p = strstr(out, "requests in");
    while (p > out && p[-1] == ' ')
        p--;
    while (p > out && p[-1] >= '0' && p[-1] <= '9')
        p--;
    reqs = atol(p);
    ASSERT_GT(reqs, 100);
    stop(&sv, rest, sizeof rest);
}

TEST(parser_accepts_and_rejects)
{
    struct http_req r;
    const char *ok = "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nNEXT";
    ASSERT_EQ(http_parse(ok, strlen(ok), &r), (long)strlen(ok) - 4);
    ASSERT_EQ(r.method_len, 3);
    ASSERT_EQ(r.path_len, 2);
    ASSERT_EQ(r.minor, 1);
    ASSERT_EQ(r.keep_alive, 0);
    const char *ka = "GET / HTTP/1.0\r\nconnection:  Keep-Alive \r\n\r\n";
    ASSERT_GT(http_parse(ka, strlen(ka), &r), 0);
    ASSERT_EQ(r.keep_alive, 1);
    const char *part = "GET / HTTP/1.1\r\nHost: x\r\n";
    ASSERT_EQ(http_parse(part, strlen(part), &r), 0); /* needs more */
    const char *bad[] = {
        "GET  / HTTP/1.1\r\n\r\n", "GET / HTTP/2.0\r\n\r\n",
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n", "/ HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n",
        "GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_EQ(http_parse(bad[i], strlen(bad[i]), &r), -1);
    const char *cl = "GET / HTTP/1.1\r\nContent-Length: 42\r\n\r\n";
    ASSERT_GT(http_parse(cl, strlen(cl), &r), 0);
    ASSERT_EQ(r.content_length, 42);
    /* A head that never ends is refused once it is too long. */
    static char big[HTTP_MAX_HEAD + 10];
    memset(big, 'a', sizeof big);
    ASSERT_EQ(http_parse(big, sizeof big, &r), -1);
}
