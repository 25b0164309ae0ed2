/*
 * test-weft-bench.c - tools/weft-bench: its histogram's percentile
 * arithmetic (tools/hdr.h), and the built program run against loopback
 * servers in separate processes: examples/echo, examples/http, and canned
 * servers forked here (chunked and close-delimited HTTP replies, wrong
 * echoes, silence), a refused port, and bad arguments.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server.h"
#include "test.h"
#include "../tools/hdr.h"

#ifndef WEFT_BENCH_BIN
#define WEFT_BENCH_BIN ""
#endif
#ifndef WEFT_ECHO_BIN
#define WEFT_ECHO_BIN ""
#endif
#ifndef WEFT_HTTP_BIN
#define WEFT_HTTP_BIN ""
#endif

/* ---- The histogram ---------------------------------------------------- */

TEST(hdr_buckets_tile_the_range_with_bounded_error)
{
    /* Buckets are contiguous, in order, and each is at most 1/HDR_SUB of
     * its lowest value wide (2 significant digits and better). */
    ASSERT_EQ(hdr_lowest(0), 0);
    for (unsigned i = 0; i + 1 < HDR_BUCKETS; i++) {
        uint64_t lo = hdr_lowest(i), hi = hdr_highest(i);
        ASSERT_LE(lo, hi);
        ASSERT_EQ(hdr_lowest(i + 1), hi + 1);
        ASSERT_EQ(hdr_index(lo), i);
        ASSERT_EQ(hdr_index(hi), i);
        if (lo >= 2 * HDR_SUB)
            ASSERT_LE((hi - lo + 1) * HDR_SUB, lo);
    }
    ASSERT(hdr_highest(HDR_BUCKETS - 1) == UINT64_MAX);
    ASSERT_EQ(hdr_index(UINT64_MAX), HDR_BUCKETS - 1);
    for (uint64_t v = 0; v < 2 * HDR_SUB; v++) /* exact at the bottom */
        ASSERT(hdr_lowest(hdr_index(v)) == v && hdr_highest(hdr_index(v)) == v);
}

TEST(hdr_empty_and_single_value)
{
    static struct hdr h;
    hdr_init(&h);
    ASSERT_EQ(hdr_percentile(&h, 50), 0);
    ASSERT(hdr_mean(&h) == 0);
    hdr_record(&h, 123457);
    /* Every percentile is the one value, exactly (clamped to min/max). */
    ASSERT_EQ(hdr_percentile(&h, 0), 123457);
    ASSERT_EQ(hdr_percentile(&h, 50), 123457);
    ASSERT_EQ(hdr_percentile(&h, 99.9), 123457);
    ASSERT_EQ(hdr_percentile(&h, 100), 123457);
    ASSERT(hdr_mean(&h) == 123457.0);
}

TEST(hdr_exact_below_256)
{
    static struct hdr h;
    hdr_init(&h);
    for (uint64_t v = 1; v <= 200; v++)
        hdr_record(&h, v);
    /* rank ceil(p% of 200) */
    ASSERT_EQ(hdr_percentile(&h, 50), 100);
    ASSERT_EQ(hdr_percentile(&h, 90), 180);
    ASSERT_EQ(hdr_percentile(&h, 99), 198);
    ASSERT_EQ(hdr_percentile(&h, 99.9), 200);
    ASSERT_EQ(hdr_percentile(&h, 0.1), 1);
    ASSERT_EQ(h.count, 200);
    ASSERT(hdr_mean(&h) == 100.5);
}

static void assert_near(uint64_t got, uint64_t want)
{
    /* within one bucket: 1/128 relative */
    uint64_t d = got > want ? got - want : want - got;
    if (d * HDR_SUB > want)
        FAIL("got %llu, want %llu within 1/%u", (unsigned long long)got,
             (unsigned long long)want, HDR_SUB);
}

TEST(hdr_percentiles_of_a_uniform_spread)
{
    static struct hdr h;
    hdr_init(&h);
    /* 1..100000 us in ns, shuffled order does not matter: record backwards */
    for (uint64_t v = 100000; v >= 1; v--)
        hdr_record(&h, v * 1000);
    assert_near(hdr_percentile(&h, 50), 50000 * 1000ull);
    assert_near(hdr_percentile(&h, 90), 90000 * 1000ull);
    assert_near(hdr_percentile(&h, 99), 99000 * 1000ull);
    assert_near(hdr_percentile(&h, 99.9), 99900 * 1000ull);
    ASSERT_EQ(hdr_percentile(&h, 100), 100000 * 1000ull);
    ASSERT_EQ(hdr_percentile(&h, 0), 1000);
    /* never below the true value: the bucket's highest equivalent value */
    ASSERT_GE(hdr_percentile(&h, 50), 50000 * 1000ull);
    uint64_t prev = 0;
    for (double p = 0; p <= 100; p += 0.5) {
        uint64_t v = hdr_percentile(&h, p);
        ASSERT_GE(v, prev);
        prev = v;
    }
    assert_near((uint64_t)hdr_mean(&h), 50000500);
}

TEST(hdr_percentiles_of_a_long_tail)
{
    static struct hdr h;
    hdr_init(&h);
    for (int i = 0; i < 990; i++)
        hdr_record(&h, 100);
    for (int i = 0; i < 9; i++)
        hdr_record(&h, 5000000);
    hdr_record(&h, 80000000000ull); /* one 80 s outlier */
    ASSERT_EQ(hdr_percentile(&h, 50), 100);
    ASSERT_EQ(hdr_percentile(&h, 99), 100);      /* rank 990 */
    assert_near(hdr_percentile(&h, 99.1), 5000000); /* rank 991 */
    assert_near(hdr_percentile(&h, 99.9), 5000000); /* rank 999 */
    ASSERT_EQ(hdr_percentile(&h, 99.95), 80000000000ull);
    ASSERT_EQ(h.max, 80000000000ull);
}

/* ---- Running the program ---------------------------------------------- */

/* Start examples/echo or examples/http on a free port. */
static int start(struct server *sv, const char *bin, const char *name)
{
    if (!bin[0] || !WEFT_BENCH_BIN[0])
        return -1;
    server_start(sv, bin, name, "0", NULL);
    return 0;
}

static void stop(struct server *sv)
{
    char rest[512];
    int st = server_stop(sv, SIGTERM, rest, sizeof rest);
    ASSERT(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
}

/* Run weft-bench with @p args (bounded by timeout(1) so a hang fails the
 * test instead of stalling it); capture stdout (and stderr if @p err).
 * @return its exit status. */
static int bench(const char *args, int err, char *out, size_t size)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "timeout -s KILL 60 %s %s %s", WEFT_BENCH_BIN,
             args, err ? "2>&1" : "2>/dev/null");
    FILE *f = popen(cmd, "r");
    ASSERT_NOT_NULL(f);
    size_t n = fread(out, 1, size - 1, f);
    out[n] = 0;
    int st = pclose(f);
    ASSERT(WIFEXITED(st));
    ASSERT(WEXITSTATUS(st) != 137); /* killed by timeout(1): it hung */
    return WEXITSTATUS(st);
}

enum { F_MODE, F_BACKEND, F_CONNS, F_SECS, F_REQS, F_ERRS, F_RATE, F_MBS,
       F_MIN, F_MEAN, F_P50, F_P90, F_P99, F_P999, F_MAX, F_ECONNECT,
       F_ERESET, F_ETIMEOUT, F_ESHORT, F_EINVALID, F_ESTATUS, F_EOTHER,
       F_COUNT };

struct csv {
    char text[1024];
    char *f[F_COUNT];
};

/* Split the one line of --csv output, check its shape. */
static void parse_csv(const char *out, struct csv *c)
{
    ASSERT_LT(strlen(out), sizeof c->text);
    strcpy(c->text, out);
    char *nl = strchr(c->text, '\n');
    ASSERT_NOT_NULL(nl);
    ASSERT_EQ(nl[1], 0); /* exactly one line */
    *nl = 0;
    char *p = c->text;
    int n = 0;
    for (;;) {
        ASSERT_LT(n, F_COUNT);
        c->f[n++] = p;
        p = strchr(p, ',');
        if (!p)
            break;
        *p++ = 0;
    }
    ASSERT_EQ(n, F_COUNT);
    for (int i = F_CONNS; i < F_COUNT; i++) {
        char *end;
        strtod(c->f[i], &end);
        if (end == c->f[i] || *end)
            FAIL("field %d of the CSV line is '%s'", i, c->f[i]);
    }
    /* percentiles in order */
    for (int i = F_MIN; i < F_MAX; i++)
        if (i != F_MEAN && i + 1 != F_MEAN)
            ASSERT(strtod(c->f[i], NULL) <= strtod(c->f[i + 1], NULL));
    ASSERT(strtod(c->f[F_P90], NULL) <= strtod(c->f[F_P99], NULL));
    /* errors add up */
    long long sum = 0;
    for (int i = F_ECONNECT; i <= F_EOTHER; i++)
        sum += atoll(c->f[i]);
    ASSERT_EQ(sum, atoll(c->f[F_ERRS]));
}

static long long num(const struct csv *c, int field)
{
    return atoll(c->f[field]);
}

/* Run weft-bench --csv with printf-style arguments, expect exit status
 * @p want and parse its line into @p c. */
static void run_csv(struct csv *c, int want, const char *fmt, ...)
    WEFT_TEST_PRINTF_(3, 4);
static void run_csv(struct csv *c, int want, const char *fmt, ...)
{
    char args[512], out[2048];
    va_list ap;
    strcpy(args, "--csv ");
    va_start(ap, fmt);
    vsnprintf(args + 6, sizeof args - 6, fmt, ap);
    va_end(ap);
    ASSERT_EQ(bench(args, 0, out, sizeof out), want);
    parse_csv(out, c);
}

TEST(echo_exact_request_count_on_each_backend)
{
    static const char *const backends[] = {"epoll", "poll", "io_uring"};
    static const int ids[] = {WEFT_BACKEND_EPOLL, WEFT_BACKEND_POLL,
                              WEFT_BACKEND_URING};
    struct server sv;
    struct csv c;
    if (start(&sv, WEFT_ECHO_BIN, "echo") < 0)
        SKIP("no weft-bench or server to run (not built, or cross-built)");
    for (int b = 0; b < 3; b++) {
        struct weft_sched_opts o = {0};
        weft_sched *s;
        o.backend = ids[b];
        if (weft_sched_new(&o, &s) < 0)
            continue; /* not here (io_uring refused or not built) */
        ASSERT_OK(weft_sched_free(s));
        run_csv(&c, 0, "-c 8 -n 2000 -s 100 --backend %s %d", backends[b],
                sv.port);
        ASSERT_STR_EQ(c.f[F_MODE], "echo");
        ASSERT_STR_EQ(c.f[F_BACKEND], backends[b]);
        ASSERT_EQ(num(&c, F_CONNS), 8);
        ASSERT_EQ(num(&c, F_REQS), 2000);
        ASSERT_EQ(num(&c, F_ERRS), 0);
        ASSERT_GT(strtod(c.f[F_RATE], NULL), 0);
        ASSERT_GT(strtod(c.f[F_P50], NULL), 0);
    }
    stop(&sv);
}

TEST(echo_human_report_and_duration)
{
    struct server sv;
    char args[256], out[4096];
    struct csv c;
    if (start(&sv, WEFT_ECHO_BIN, "echo") < 0)
        SKIP("no weft-bench or server to run (not built, or cross-built)");
    snprintf(args, sizeof args, "-c 3 -n 300 127.0.0.1:%d", sv.port);
    ASSERT_EQ(bench(args, 0, out, sizeof out), 0);
    ASSERT_STR_CONTAINS(out, "echo 127.0.0.1:");
    ASSERT_STR_CONTAINS(out, "3 connections, 64-byte messages");
    ASSERT_STR_CONTAINS(out, "requests  300 in ");
    ASSERT_STR_CONTAINS(out, "errors    0\n");
    double p[5];
    const char *pp = strstr(out, "percentiles");
    ASSERT_NOT_NULL(pp);
    ASSERT_EQ(sscanf(pp, "percentiles p50 %lf p90 %lf p99 %lf p99.9 %lf us",
                     &p[0], &p[1], &p[2], &p[3]), 4);
    const char *mx = strstr(out, "max ");
    ASSERT_NOT_NULL(mx);
    ASSERT_EQ(sscanf(mx, "max %lf", &p[4]), 1);
    for (int i = 0; i < 4; i++)
        ASSERT(p[i] <= p[i + 1]);
    /* A fixed duration: the report covers exactly that time. */
    run_csv(&c, 0, "-c 4 -d 0.3 %d", sv.port);
    ASSERT_STR_EQ(c.f[F_SECS], "0.300");
    ASSERT_GT(num(&c, F_REQS), 10);
    ASSERT_EQ(num(&c, F_ERRS), 0);
    stop(&sv);
}

TEST(http_request_count_and_status_errors)
{
    struct server sv;
    struct csv c;
    if (start(&sv, WEFT_HTTP_BIN, "http") < 0)
        SKIP("no weft-bench or server to run (not built, or cross-built)");
    run_csv(&c, 0, "--http -c 4 -n 500 %d", sv.port);
    ASSERT_STR_EQ(c.f[F_MODE], "http");
    ASSERT_EQ(num(&c, F_REQS), 500);
    ASSERT_EQ(num(&c, F_ERRS), 0);
    /* The URL form; /file is a larger body (the server's own program). */
    run_csv(&c, 0, "-c 2 -n 20 http://127.0.0.1:%d/file", sv.port);
    ASSERT_EQ(num(&c, F_REQS), 20);
    ASSERT_GT(strtod(c.f[F_MBS], NULL), 0);
    /* A 404 is an error of kind "status", per request. */
    run_csv(&c, 1, "--http=/nope -c 2 -n 10 %d", sv.port);
    ASSERT_EQ(num(&c, F_REQS), 0);
    ASSERT_EQ(num(&c, F_ESTATUS), 10);
    ASSERT_EQ(num(&c, F_ERRS), 10);
    stop(&sv);
}

/* A TCP socket bound to a free port of 127.0.0.1. */
static int bound_socket(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_GE(fd, 0);
    ASSERT_OK(bind(fd, (struct sockaddr *)&a, sizeof a));
    ASSERT_OK(getsockname(fd, (struct sockaddr *)&a, &alen));
    *port = ntohs(a.sin_port);
    return fd;
}

/* A canned server: a forked child that answers every read of a request
 * with @p reply (NULL: never answers), closing after it if @p close_after.
 * Plain blocking sockets, no weft. */
static pid_t canned(const char *reply, int close_after, int *port)
{
    int l = bound_socket(port);
    ASSERT_OK(listen(l, 16));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) {
            int c = accept(l, NULL, NULL);
            char buf[4096];
            if (c < 0)
                _exit(1);
            while (read(c, buf, sizeof buf) > 0) {
                if (reply && write(c, reply, strlen(reply)) < 0)
                    break;
                if (close_after)
                    break;
            }
            close(c);
        }
    }
    close(l);
    return pid;
}

static void kill_canned(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

TEST(http_chunked_and_close_delimited_replies)
{
    struct csv c;
    int port;
    if (!WEFT_BENCH_BIN[0])
        SKIP("no weft-bench to run (not built, or cross-built)");
    pid_t pid = canned("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                       "X-Other: 1\r\n\r\n"
                       "5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                       "0\r\nTrailer: yes\r\n\r\n",
                       0, &port);
    run_csv(&c, 0, "--http -c 1 -n 50 %d", port);
    ASSERT_EQ(num(&c, F_REQS), 50);
    ASSERT_EQ(num(&c, F_ERRS), 0);
    kill_canned(pid);

    /* No length: the body runs to the close; each request reconnects. */
    pid = canned("HTTP/1.0 200 OK\r\n\r\nbody until close", 1, &port);
    run_csv(&c, 0, "--http -c 2 -n 20 %d", port);
    ASSERT_EQ(num(&c, F_REQS), 20);
    ASSERT_EQ(num(&c, F_ERRS), 0);
    kill_canned(pid);

    /* A reply cut short: Content-Length says more than comes. */
    pid = canned("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", 1,
                 &port);
    run_csv(&c, 1, "--http -c 1 -n 5 %d", port);
    ASSERT_EQ(num(&c, F_ESHORT), 5);
    kill_canned(pid);

    /* Not HTTP at all. */
    pid = canned("SSH-2.0-nope\r\n", 0, &port);
    run_csv(&c, 1, "--http -c 1 -n 5 %d", port);
    ASSERT_EQ(num(&c, F_EINVALID), 5);
    kill_canned(pid);
}

TEST(echo_wrong_reply_and_timeout_are_counted)
{
    struct csv c;
    int port;
    if (!WEFT_BENCH_BIN[0])
        SKIP("no weft-bench to run (not built, or cross-built)");
    static char junk[65];
    memset(junk, 'x', 64);
    pid_t pid = canned(junk, 0, &port);
    run_csv(&c, 1, "-c 1 -n 4 %d", port);
    ASSERT_EQ(num(&c, F_EINVALID), 4);
    ASSERT_EQ(num(&c, F_REQS), 0);
    kill_canned(pid);

    pid = canned(NULL, 0, &port); /* silence */
    run_csv(&c, 1, "-c 2 -n 4 -t 0.1 %d", port);
    ASSERT_EQ(num(&c, F_ETIMEOUT), 4);
    kill_canned(pid);
}

/* A port nobody listens on (bound then closed; not listening). */
static int dead_port(void)
{
    int port;
    close(bound_socket(&port));
    return port;
}

TEST(refused_port_gives_errors_not_a_hang)
{
    char args[256], out[2048];
    struct csv c;
    if (!WEFT_BENCH_BIN[0])
        SKIP("no weft-bench to run (not built, or cross-built)");
    int port = dead_port();
    run_csv(&c, 1, "-c 3 -d 0.3 127.0.0.1:%d", port);
    ASSERT_EQ(num(&c, F_REQS), 0);
    ASSERT_GT(num(&c, F_ECONNECT), 0);
    ASSERT_EQ(num(&c, F_ERRS), num(&c, F_ECONNECT));
    /* With a request count, each failed connect uses one request up. */
    run_csv(&c, 1, "-c 2 -n 7 %d", port);
    ASSERT_EQ(num(&c, F_ECONNECT), 7);
    /* The human report names the kind. */
    snprintf(args, sizeof args, "-c 1 -n 2 %d", port);
    ASSERT_EQ(bench(args, 0, out, sizeof out), 1);
    ASSERT_STR_CONTAINS(out, "errors    2 (connect 2)");
}

TEST(bad_arguments_exit_2_with_usage)
{
    static const char *const bad[] = {
        "",                       /* no target */
        "-c 0 1234",              "-c abc 1234",    "-c",
        "--size 0 1234",          "-s 65537 1234",  "--bogus 1234",
        "-d -1 1234",             "-d 0 1234",      "-n 0 1234",
        "-t x 1234",              "--backend nope 1234",
        "--echo --http 1234",     "--echo http://127.0.0.1:1/",
        "--http=nopath 1234",     "127.0.0.1:",     "127.0.0.1:70000",
        "[::1:80",                "1234 5678",      "host:12/path",
    };
    char out[8192];
    if (!WEFT_BENCH_BIN[0])
        SKIP("no weft-bench to run (not built, or cross-built)");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st = bench(bad[i], 1, out, sizeof out);
        if (st != 2)
            FAIL("'weft-bench %s' exited %d, not 2", bad[i], st);
        ASSERT_STR_CONTAINS(out, "usage: weft-bench");
    }
    ASSERT_EQ(bench("--help", 0, out, sizeof out), 0);
    ASSERT_STR_CONTAINS(out, "--connections");
    ASSERT_STR_CONTAINS(out, "Exit status");
    ASSERT_EQ(bench("--version", 0, out, sizeof out), 0);
    ASSERT_STR_CONTAINS(out, "weft-bench (weft ");
}
