/*
 * weft-bench - a load generator for TCP echo and HTTP servers, built on
 * weft: one coroutine per connection, a fixed duration or request count,
 * and a report of throughput, errors by kind and latency percentiles.
 *
 *     weft-bench [-c N] [-d SECS | -n REQUESTS] [--echo | --http[=PATH]]
 *                [-s BYTES] [-t SECS] [--csv] [-q] [--backend NAME] TARGET
 *
 * `weft-bench --help` lists the options; docs/weft-bench.md is the manual.
 * Latencies go into an HDR-style histogram (tools/hdr.h).  Exit status: 0
 * when every request succeeded, 1 on errors, 2 on a usage error.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hdr.h"
#include "weft.h"

enum mode { MODE_ECHO, MODE_HTTP };

/* Errors by kind; the order is the CSV's. */
enum kind { E_CONNECT, E_RESET, E_TIMEOUT, E_SHORT, E_INVALID, E_STATUS,
            E_OTHER, E_KINDS };
static const char *const kind_name[E_KINDS] = {
    "connect", "reset", "timeout", "short", "invalid", "status", "other"};

/* A request's failure of a given kind, as a return value that no negative
 * errno can be. */
#define FAIL(kind) (-100000 - (int)(kind))
#define IS_FAIL(r) ((r) <= -100000)

#define MAX_SIZE 65536     /* echo message (client and server buffers) */
#define RBUF_SIZE 16384    /* HTTP reply head and chunk lines */
#define MAX_CONNS 100000

static const char csv_fields[] =
    "mode,backend,connections,seconds,requests,errors,req_per_s,mb_per_s,"
    "min_us,mean_us,p50_us,p90_us,p99_us,p999_us,max_us,err_connect,"
    "err_reset,err_timeout,err_short,err_invalid,err_status,err_other";

static struct {
    enum mode mode;
    long conns;
    double seconds;          /* 0: until the request count */
    long long requests;      /* 0: until the duration */
    size_t size;
    int64_t timeout;         /* ns */
    int csv, quiet;
    int backend;             /* enum weft_backend */
    char host[256];
    int port;
    char path[1024];
} cfg = {MODE_ECHO, 10, 0, 0, 64, WEFT_SEC(5), 0, 0, 0, "", 0, "/"};

static struct {
    struct addrinfo *addrs;
    char request[2048];      /* the HTTP request */
    size_t request_len;
    long long tickets;       /* requests left to start, with -n */
    int stopping;
    int64_t start, end;
    uint64_t done, bytes;
    uint64_t errors[E_KINDS];
    struct hdr lat;          /* ns */
} g;

/* A buffered reader over a socket (HTTP replies). */
struct rbuf {
    char data[RBUF_SIZE];
    size_t off, len;         /* unread bytes: data[off .. len) */
};

struct conn {
    weft_coro *co;
    int fd;
    uint64_t seq;
    char *out, *in;          /* echo: the message and its reply */
    struct rbuf rb;          /* http */
};

/* ---------------------------------------------------------------------
 * Usage and arguments
 * --------------------------------------------------------------------- */

static void usage(FILE *to)
{
    fprintf(to,
        "usage: weft-bench [options] TARGET\n"
        "Load a TCP echo or HTTP/1.1 server with concurrent connections (one\n"
        "weft coroutine each); report throughput, errors and latency.\n"
        "\n"
        "TARGET: HOST:PORT, [IPV6]:PORT, PORT (on 127.0.0.1), or\n"
        "        http://HOST[:PORT][/PATH] (implies --http)\n"
        "\n"
        "  --echo               send --size bytes, read them back, check them,\n"
        "                       repeat (the default mode)\n"
        "  --http[=PATH]        GET PATH (default: the URL's, else /) over\n"
        "                       keep-alive; replies framed by Content-Length,\n"
        "                       chunked encoding, or the end of the connection\n"
        "  -c, --connections N  concurrent connections (default 10)\n"
        "  -d, --duration SECS  run this long (decimals allowed); the default\n"
        "                       is 10 unless -n is given\n"
        "  -n, --requests N     stop after N requests in all, successful or\n"
        "                       failed (with -d: whichever comes first)\n"
        "  -s, --size BYTES     echo message size, 1..%d (default 64)\n"
        "  -t, --timeout SECS   limit per request and per connect (default 5)\n"
        "  --csv                print only one CSV line with the fields\n"
        "                       %s\n"
        "  -q, --quiet          no progress line (shown only on a terminal)\n"
        "  --backend NAME       weft backend: epoll, poll or io_uring\n"
        "                       (default: $WEFT_BACKEND, else the best)\n"
        "  -h, --help           show this help\n"
        "  --version            show the version\n"
        "Latencies in microseconds.  Errors by kind: connect, reset, timeout,\n"
        "short (closed mid-reply), invalid (wrong echo or bad HTTP), status\n"
        "(HTTP status not 2xx), other.  A connection that fails is closed and\n"
        "opened again.\n"
        "Exit status: 0 every request succeeded, 1 errors (or none done),\n"
        "2 usage error.\n",
        MAX_SIZE, csv_fields);
}

static _Noreturn void bad_usage(const char *fmt, const char *what)
{
    fputs("weft-bench: ", stderr);
    fprintf(stderr, fmt, what);
    fputc('\n', stderr);
    usage(stderr);
    exit(2);
}

static long long parse_int(const char *opt, const char *s, long long lo,
                           long long hi)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        bad_usage("bad value for %s", opt);
    return v;
}

static double parse_secs(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 1e7)
        bad_usage("bad value for %s (seconds > 0)", opt);
    return v;
}

static void parse_port(const char *s)
{
    cfg.port = (int)parse_int("the port", s, 1, 65535);
}

static void set_host(const char *s, size_t n)
{
    if (n == 0 || n >= sizeof cfg.host)
        bad_usage("bad host in target%s", "");
    memcpy(cfg.host, s, n);
    cfg.host[n] = 0;
}

/* HOST:PORT, [V6]:PORT, PORT, or http://HOST[:PORT][/PATH]. */
static void parse_target(const char *t, int path_given)
{
    const char *hp = t;
    size_t hn;
    int url = strncmp(t, "http://", 7) == 0;
    if (url) {
        hp = t + 7;
        cfg.mode = MODE_HTTP;
        cfg.port = 80;
    }
    hn = strcspn(hp, "/");
    if (url && hp[hn] && !path_given) {
        if (strlen(hp + hn) >= sizeof cfg.path)
            bad_usage("path too long%s", "");
        snprintf(cfg.path, sizeof cfg.path, "%s", hp + hn); /* fits */
    } else if (hp[hn]) {
        bad_usage("bad target '%s'", t);
    }
    char hostport[300];
    if (hn == 0 || hn >= sizeof hostport)
        bad_usage("bad target '%s'", t);
    memcpy(hostport, hp, hn);
    hostport[hn] = 0;
    if (hostport[0] == '[') {
        char *close = strchr(hostport, ']');
        if (!close)
            bad_usage("bad target '%s'", t);
        set_host(hostport + 1, (size_t)(close - hostport - 1));
        if (close[1] == ':')
            parse_port(close + 2);
        else if (close[1] || !url)
            bad_usage("no port in target '%s'", t);
        return;
    }
    char *colon = strrchr(hostport, ':');
    if (colon) {
        set_host(hostport, (size_t)(colon - hostport));
        parse_port(colon + 1);
    } else if (url) {
        set_host(hostport, hn);
    } else {
        strcpy(cfg.host, "127.0.0.1");
        parse_port(hostport);
    }
}

/* The value of option @p a (argv[*i]): "--opt=V", "-oV" or the next
 * argument.  NULL if @p a is not that option. */
static const char *opt_value(int argc, char **argv, int *i, const char *s,
                             const char *l)
{
    const char *a = argv[*i];
    size_t ln = strlen(l);
    if (!a)
        return NULL; /* past the end: argv[argc] */
    if (strncmp(a, l, ln) == 0 && a[ln] == '=')
        return a + ln + 1;
    if (s && strncmp(a, s, 2) == 0 && a[2])
        return a + 2;
    if (!strcmp(a, l) || (s && !strcmp(a, s))) {
        if (*i + 1 >= argc)
            bad_usage("%s needs a value", l);
        return argv[++*i];
    }
    return NULL;
}

static void parse_args(int argc, char **argv)
{
    const char *target = NULL, *v;
    int mode_given = 0, path_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--version")) {
            printf("weft-bench (weft %s)\n", weft_version());
            exit(0);
        } else if (!strcmp(a, "--echo")) {
            if (mode_given == MODE_HTTP + 1)
                bad_usage("--echo and --http%s both given", "");
            mode_given = MODE_ECHO + 1;
        } else if (!strcmp(a, "--http") || !strncmp(a, "--http=", 7)) {
            if (mode_given == MODE_ECHO + 1)
                bad_usage("--echo and --http%s both given", "");
            mode_given = MODE_HTTP + 1;
            if (a[6] == '=') {
                if (a[7] != '/' || strlen(a + 7) >= sizeof cfg.path)
                    bad_usage("bad path '%s' (it starts with /)", a + 7);
                snprintf(cfg.path, sizeof cfg.path, "%s", a + 7); /* fits */
                path_given = 1;
            }
        } else if ((v = opt_value(argc, argv, &i, "-c", "--connections"))) {
            cfg.conns = (long)parse_int("-c", v, 1, MAX_CONNS);
        } else if ((v = opt_value(argc, argv, &i, "-d", "--duration"))) {
            cfg.seconds = parse_secs("-d", v);
        } else if ((v = opt_value(argc, argv, &i, "-n", "--requests"))) {
            cfg.requests = parse_int("-n", v, 1, (long long)1 << 50);
        } else if ((v = opt_value(argc, argv, &i, "-s", "--size"))) {
            cfg.size = (size_t)parse_int("-s", v, 1, MAX_SIZE);
        } else if ((v = opt_value(argc, argv, &i, "-t", "--timeout"))) {
            cfg.timeout = (int64_t)(parse_secs("-t", v) * 1e9);
        } else if ((v = opt_value(argc, argv, &i, NULL, "--backend"))) {
            if (!strcmp(v, "epoll"))
                cfg.backend = WEFT_BACKEND_EPOLL;
            else if (!strcmp(v, "poll"))
                cfg.backend = WEFT_BACKEND_POLL;
            else if (!strcmp(v, "io_uring"))
                cfg.backend = WEFT_BACKEND_URING;
            else
                bad_usage("unknown backend '%s'", v);
        } else if (!strcmp(a, "--csv")) {
            cfg.csv = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            cfg.quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            bad_usage("unknown option '%s'", a);
        } else if (target) {
            bad_usage("more than one target ('%s')", a);
        } else {
            target = a;
        }
    }
    if (!target)
        bad_usage("no target%s", "");
    parse_target(target, path_given);
    if (mode_given == MODE_ECHO + 1 && cfg.mode == MODE_HTTP)
        bad_usage("--echo with an http:// target%s", "");
    if (mode_given)
        cfg.mode = (enum mode)(mode_given - 1);
    if (cfg.seconds == 0 && cfg.requests == 0)
        cfg.seconds = 10;
}

/* ---------------------------------------------------------------------
 * Connections
 * --------------------------------------------------------------------- */

static int kind_of(int r)
{
    if (IS_FAIL(r))
        return -100000 - r;
    if (r == -ETIMEDOUT)
        return E_TIMEOUT;
    if (r == -ECONNRESET || r == -EPIPE)
        return E_RESET;
    return E_OTHER;
}

/* Remaining time to @p deadline, as a timeout (0 once it has passed). */
static int64_t left(int64_t deadline)
{
    int64_t l = deadline - weft_now(NULL);
    return l > 0 ? l : 0;
}

/* Connect to the first address that accepts.  @return fd or -errno. */
static int open_conn(void)
{
    int first = -ENXIO;
    for (struct addrinfo *ai = g.addrs; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        0);
        int r = fd < 0 ? -errno : weft_connect(fd, ai->ai_addr, ai->ai_addrlen,
                                               cfg.timeout);
        if (r == 0) {
            weft_sock_nodelay(fd, 1);
            return fd;
        }
        if (fd >= 0)
            weft_fd_close(fd);
        if (r == -ECANCELED)
            return r;
        if (first == -ENXIO)
            first = r;
    }
    return first;
}

/* One echo round trip: write the message, read it back, compare. */
static int echo_once(struct conn *c, int64_t t0)
{
    size_t n = cfg.size, got = 0;
    uint64_t seq = ++c->seq;
    memcpy(c->out, &seq, n < sizeof seq ? n : sizeof seq);
    ssize_t r = weft_write_all(c->fd, c->out, n, cfg.timeout, 0, NULL);
    if (r < 0)
        return (int)r;
    int64_t timeout = cfg.timeout;
    while (got < n) {
        r = weft_read(c->fd, c->in + got, n - got, timeout);
        if (r < 0)
            return (int)r;
        if (r == 0)
            return FAIL(E_SHORT);
        got += (size_t)r;
        timeout = left(t0 + cfg.timeout);
    }
    g.bytes += got;
    return memcmp(c->in, c->out, n) ? FAIL(E_INVALID) : 0;
}

/* Read more into @p b.  @return > 0, FAIL(E_SHORT) at end of file,
 * FAIL(E_INVALID) when the buffer is full, or -errno. */
static int rb_fill(struct conn *c, int64_t deadline)
{
    struct rbuf *b = &c->rb;
    if (b->off == b->len) {
        b->off = b->len = 0;
    } else if (b->len == sizeof b->data) {
        if (b->off == 0)
            return FAIL(E_INVALID); /* a line longer than the buffer */
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    ssize_t n = weft_read(c->fd, b->data + b->len, sizeof b->data - b->len,
                          left(deadline));
    if (n < 0)
        return (int)n;
    if (n == 0)
        return FAIL(E_SHORT);
    b->len += (size_t)n;
    g.bytes += (uint64_t)n;
    return (int)n;
}

/* The next line, without its CRLF, NUL-terminated in place. */
static int rb_line(struct conn *c, int64_t deadline, char **line)
{
    struct rbuf *b = &c->rb;
    for (;;) {
        char *s = b->data + b->off;
        char *e = memchr(s, '\n', b->len - b->off);
        if (e) {
            b->off += (size_t)(e - s) + 1;
            if (e > s && e[-1] == '\r')
                e--;
            *e = 0;
            *line = s;
            return 0;
        }
        int r = rb_fill(c, deadline);
        if (r < 0)
            return r;
    }
}

/* Consume @p n bytes of body. */
static int rb_skip(struct conn *c, uint64_t n, int64_t deadline)
{
    struct rbuf *b = &c->rb;
    while (n > 0) {
        if (b->off == b->len) {
            int r = rb_fill(c, deadline);
            if (r < 0)
                return r;
        }
        size_t take = b->len - b->off;
        if (take > n)
            take = (size_t)n;
        b->off += take;
        n -= take;
    }
    return 0;
}

static int parse_u64(const char *s, int base, uint64_t *out)
{
    char *end;
    while (*s == ' ' || *s == '\t')
        s++;
    errno = 0;
    unsigned long long v = strtoull(s, &end, base);
    if (errno || end == s || *s == '-')
        return -1;
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end && !(base == 16 && *end == ';')) /* chunk extensions */
        return -1;
    *out = v;
    return 0;
}

/* A chunked body, trailers included. */
static int read_chunked(struct conn *c, int64_t deadline)
{
    char *line;
    for (;;) {
        uint64_t size;
        int r = rb_line(c, deadline, &line);
        if (r < 0)
            return r;
        if (parse_u64(line, 16, &size) < 0)
            return FAIL(E_INVALID);
        if (size == 0)
            break;
        if ((r = rb_skip(c, size, deadline)) < 0 ||
            (r = rb_line(c, deadline, &line)) < 0)
            return r;
        if (*line)
            return FAIL(E_INVALID); /* data longer than the chunk size */
    }
    do { /* trailers, up to the empty line */
        int r = rb_line(c, deadline, &line);
        if (r < 0)
            return r;
    } while (*line);
    return 0;
}

/* One HTTP request and its reply.  @return 0, 1 when the server closes
 * the connection after the reply, or an error. */
static int http_once(struct conn *c, int64_t t0)
{
    int64_t deadline = t0 + cfg.timeout;
    ssize_t w = weft_write_all(c->fd, g.request, g.request_len, cfg.timeout,
                               0, NULL);
    if (w < 0)
        return (int)w;
    char *line;
    int status, r;
    do { /* skip 1xx interim replies */
        int minor;
        if ((r = rb_line(c, deadline, &line)) < 0)
            return r;
        /* The widths bound both numbers: no overflow on a bad reply.
         * NOLINTNEXTLINE(cert-err34-c) */
        if (sscanf(line, "HTTP/1.%1d %3d", &minor, &status) != 2 ||
            status < 100 || status > 999)
            return FAIL(E_INVALID);
        int chunked = 0, close_after = minor == 0, have_len = 0;
        uint64_t len = 0;
        for (;;) {
            if ((r = rb_line(c, deadline, &line)) < 0)
                return r;
            if (!*line)
                break;
            char *colon = strchr(line, ':');
            if (!colon)
                return FAIL(E_INVALID);
            *colon = 0;
            const char *val = colon + 1;
            if (!strcasecmp(line, "content-length")) {
                if (parse_u64(val, 10, &len) < 0)
                    return FAIL(E_INVALID);
                have_len = 1;
            } else if (!strcasecmp(line, "transfer-encoding")) {
                chunked = strcasestr(val, "chunked") != NULL;
            } else if (!strcasecmp(line, "connection")) {
                if (strcasestr(val, "close"))
                    close_after = 1;
                else if (strcasestr(val, "keep-alive"))
                    close_after = 0;
            }
        }
        if (status < 200 || status == 204 || status == 304)
            r = 0; /* no body */
        else if (chunked)
            r = read_chunked(c, deadline);
        else if (have_len)
            r = rb_skip(c, len, deadline);
        else { /* the body runs to the end of the connection */
            while ((r = rb_fill(c, deadline)) > 0)
                c->rb.off = c->rb.len;
            r = r == FAIL(E_SHORT) ? 0 : r;
            close_after = 1;
        }
        if (r < 0)
            return r;
        if (status >= 200 && close_after)
            r = 1;
    } while (status < 200);
    /* cppcheck-suppress uninitvar ; every pass of the loop sets r */
    return status >= 300 ? FAIL(E_STATUS) : r;
}

static int take_ticket(void)
{
    if (g.stopping)
        return 0;
    if (cfg.requests) {
        if (g.tickets == 0)
            return 0;
        g.tickets--;
    }
    return 1;
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        weft_fd_close(c->fd);
    c->fd = -1;
    c->rb.off = c->rb.len = 0;
}

static int conn_main(void *arg)
{
    struct conn *c = arg;
    while (take_ticket()) {
        if (c->fd < 0) {
            int fd = open_conn();
            if (fd == -ECANCELED)
                break;
            if (fd < 0) {
                g.errors[E_CONNECT]++;
                if (weft_sleep_for(WEFT_MSEC(10)) < 0)
                    break; /* ended: the run is over */
                continue;
            }
            c->fd = fd;
        }
        int64_t t0 = weft_now(NULL);
        int r = cfg.mode == MODE_ECHO ? echo_once(c, t0) : http_once(c, t0);
        if (r == -ECANCELED)
            break;
        if (r >= 0) {
            hdr_record(&g.lat, (uint64_t)(weft_now(NULL) - t0));
            g.done++;
        } else {
            g.errors[kind_of(r)]++;
        }
        if (r != 0)
            conn_close(c); /* an error, or the server closes it */
    }
    conn_close(c);
    return 0;
}

/* ---------------------------------------------------------------------
 * The run
 * --------------------------------------------------------------------- */

static uint64_t total_errors(void)
{
    uint64_t n = 0;
    for (int k = 0; k < E_KINDS; k++)
        n += g.errors[k];
    return n;
}

/* Once a second, on stderr: the last second's rate and the totals. */
static int progress(void *arg)
{
    uint64_t last = 0;
    (void)arg;
    for (int sec = 1;; sec++) {
        if (weft_sleep_until(g.start + WEFT_SEC(sec)) < 0)
            return 0;
        fprintf(stderr, "\r\033[K[%4ds] %10llu req/s  %12llu requests  %llu errors",
                sec, (unsigned long long)(g.done - last),
                (unsigned long long)g.done,
                (unsigned long long)total_errors());
        last = g.done;
    }
}

static int controller(void *arg)
{
    struct conn *conns = arg;
    weft_coro *prog = NULL;
    long i, n = cfg.conns;
    g.start = weft_now(NULL);
    int64_t deadline = cfg.seconds > 0 ? g.start + (int64_t)(cfg.seconds * 1e9)
                                       : -1;
    for (i = 0; i < n; i++) {
        struct weft_spawn_opts o = {0};
        o.name = "conn";
        int r = weft_spawn(NULL, conn_main, &conns[i], &o, &conns[i].co);
        if (r < 0) {
            fprintf(stderr, "weft-bench: spawn: %s\n", weft_strerror(r));
            g.stopping = 1;
            n = i;
            break;
        }
    }
    if (!cfg.quiet && !cfg.csv && isatty(2))
        weft_spawn(NULL, progress, NULL, NULL, &prog);
    for (i = 0; i < n; i++)
        if (weft_join_until(conns[i].co, deadline, NULL) == -ETIMEDOUT)
            break;
    g.end = i < n ? deadline : weft_now(NULL);
    g.stopping = 1;
    for (long j = i; j < n; j++)
        weft_end(conns[j].co); /* a request in flight is not counted */
    for (long j = i; j < n; j++)
        weft_join(conns[j].co, NULL);
    if (prog) {
        weft_end(prog);
        weft_join(prog, NULL);
        fputs("\r\033[K", stderr);
    }
    return 0;
}

static double us(uint64_t ns)
{
    return (double)ns / 1e3;
}

static void report(const char *backend)
{
    double secs = (double)(g.end - g.start) / 1e9;
    double rate = secs > 0 ? (double)g.done / secs : 0;
    double mbs = secs > 0 ? (double)g.bytes / secs / 1e6 : 0;
    const char *mode = cfg.mode == MODE_ECHO ? "echo" : "http";
    uint64_t p50 = hdr_percentile(&g.lat, 50), p90 = hdr_percentile(&g.lat, 90),
             p99 = hdr_percentile(&g.lat, 99), p999 = hdr_percentile(&g.lat, 99.9),
             mn = g.lat.count ? g.lat.min : 0;
    if (cfg.csv) {
        printf("%s,%s,%ld,%.3f,%llu,%llu,%.1f,%.3f,%.1f,%.1f,%.1f,%.1f,%.1f,"
               "%.1f,%.1f",
               mode, backend, cfg.conns, secs, (unsigned long long)g.done,
               (unsigned long long)total_errors(), rate, mbs, us(mn),
               hdr_mean(&g.lat) / 1e3, us(p50), us(p90), us(p99), us(p999),
               us(g.lat.max));
        for (int k = 0; k < E_KINDS; k++)
            printf(",%llu", (unsigned long long)g.errors[k]);
        putchar('\n');
        return;
    }
    printf("weft-bench: %s %s:%d%s, %ld connections", mode, cfg.host, cfg.port,
           cfg.mode == MODE_HTTP ? cfg.path : "", cfg.conns);
    if (cfg.mode == MODE_ECHO)
        printf(", %zu-byte messages", cfg.size);
    printf(", backend %s\n", backend);
    printf("  requests  %llu in %.2f s: %.1f req/s, %.2f MB/s received\n",
           (unsigned long long)g.done, secs, rate, mbs);
    printf("  errors    %llu", (unsigned long long)total_errors());
    const char *sep = " (";
    for (int k = 0; k < E_KINDS; k++)
        if (g.errors[k]) {
            printf("%s%s %llu", sep, kind_name[k],
                   (unsigned long long)g.errors[k]);
            sep = ", ";
        }
    printf("%s\n", total_errors() ? ")" : "");
    printf("  latency   min %.1f  mean %.1f  max %.1f us\n", us(mn),
           hdr_mean(&g.lat) / 1e3, us(g.lat.max));
    printf("  percentiles  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f us\n",
           us(p50), us(p90), us(p99), us(p999));
}

/* Room for every connection's socket. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)cfg.conns + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    raise_fd_limit();

    struct weft_sched_opts o = {0};
    weft_sched *s;
    o.backend = cfg.backend;
    int r = weft_sched_new(&o, &s);
    if (r < 0) {
        fprintf(stderr, "weft-bench: scheduler: %s\n", weft_strerror(r));
        return 1;
    }
    r = weft_resolve(cfg.host, cfg.port, 0, cfg.timeout, &g.addrs);
    if (r < 0) {
        fprintf(stderr, "weft-bench: %s: %s\n", cfg.host, weft_strerror(r));
        return 1;
    }
    if (cfg.mode == MODE_HTTP) {
        int n = snprintf(g.request, sizeof g.request,
                         strchr(cfg.host, ':')
                             ? "GET %s HTTP/1.1\r\nHost: [%s]:%d\r\n"
                               "User-Agent: weft-bench\r\n\r\n"
                             : "GET %s HTTP/1.1\r\nHost: %s:%d\r\n"
                               "User-Agent: weft-bench\r\n\r\n",
                         cfg.path, cfg.host, cfg.port);
        if (n < 0 || (size_t)n >= sizeof g.request) {
            fprintf(stderr, "weft-bench: request too long\n");
            return 2;
        }
        g.request_len = (size_t)n;
    }
    g.tickets = cfg.requests;
    hdr_init(&g.lat);

    struct conn *conns = calloc((size_t)cfg.conns, sizeof *conns);
    if (!conns) {
        fprintf(stderr, "weft-bench: out of memory\n");
        return 1;
    }
    for (long i = 0; i < cfg.conns; i++) {
        conns[i].fd = -1;
        if (cfg.mode == MODE_ECHO) {
            conns[i].out = malloc(cfg.size);
            conns[i].in = malloc(cfg.size);
            if (!conns[i].out || !conns[i].in) {
                fprintf(stderr, "weft-bench: out of memory\n");
                for (long j = 0; j <= i; j++) {
                    free(conns[j].out);
                    free(conns[j].in);
                }
                free(conns);
                return 1;
            }
            for (size_t b = 0; b < cfg.size; b++)
                conns[i].out[b] = (char)('a' + (b + (size_t)i) % 26);
        }
    }
    const char *backend = weft_backend_name(s);
    weft_spawn(s, controller, conns, NULL, NULL);
    r = weft_run(s);
    if (r < 0) {
        fprintf(stderr, "weft-bench: run: %s\n", weft_strerror(r));
        return 1;
    }
    report(backend);
    for (long i = 0; i < cfg.conns; i++) {
        free(conns[i].out);
        free(conns[i].in);
    }
    free(conns);
    freeaddrinfo(g.addrs);
    weft_sched_free(s);
    return total_errors() == 0 && g.done > 0 ? 0 : 1;
}
