/*
 * bench.h - what every bench/bench-*.c program shares: clocks, the run
 * count and size scale taken from the environment, medians, resident
 * memory, and the CSV rows of bench/run.sh's contract.
 *
 * Output contract (bench/run.sh collects it; bench/bench-echo.sh follows
 * it too): one row per measured value on stdout, no header,
 *     shape,metric,impl,value,unit,better
 * where value is already the median of several runs made in one process,
 * interleaved across the implementations, and better is "lower" or
 * "higher".  Impl names starting with "weft" are ours; every other impl is
 * a peer.  Lines starting with '#' are free-text comments.
 *
 * Environment (read by every program):
 *   BENCH_RUNS   runs per measurement, median taken (default 5, 1..99)
 *   BENCH_SCALE  multiplies every iteration count and population
 *                (default 1: the sizes of the "Benchmarks" issue;
 *                0.1 for a quick look)
 */
#ifndef WEFT_BENCH_H
#define WEFT_BENCH_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_RUNS 99

static inline double bench_clock_ns(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* Wall-clock time (CLOCK_MONOTONIC) in ns. */
static inline double bench_now_ns(void)
{
    return bench_clock_ns(CLOCK_MONOTONIC);
}

/* CPU time of the whole process (user + system, every thread) in ns. */
static inline double bench_cpu_ns(void)
{
    return bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

static inline double bench_env(const char *name, double dflt)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end;
    double v = strtod(s, &end);
    if (*end || !(v > 0)) {
        fprintf(stderr, "bench: ignoring %s=%s\n", name, s);
        return dflt;
    }
    return v;
}

/* BENCH_RUNS, clamped to 1..BENCH_MAX_RUNS. */
static inline int bench_runs(void)
{
    double r = bench_env("BENCH_RUNS", 5);
    return r < 1 ? 1 : r > BENCH_MAX_RUNS ? BENCH_MAX_RUNS : (int)r;
}

/* @p full scaled by BENCH_SCALE, at least @p min. */
static inline long bench_size(long full, long min)
{
    double v = (double)full * bench_env("BENCH_SCALE", 1);
    return v < (double)min ? min : (long)v;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n) (sorts v in place). */
static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One CSV row: shape,metric,impl,value,unit,better. */
static inline void bench_row(const char *shape, const char *metric,
                             const char *impl, double value,
                             const char *unit, const char *better)
{
    int prec = value >= 1000 ? 0 : value >= 100 ? 1 : value >= 10 ? 2 : 3;
    printf("%s,%s,%s,%.*f,%s,%s\n", shape, metric, impl, prec, value, unit,
           better);
    fflush(stdout);
}

/* The median of the runs v[0..n), as one row. */
static inline void bench_row_median(const char *shape, const char *metric,
                                    const char *impl, double *v, int n,
                                    const char *unit, const char *better)
{
    bench_row(shape, metric, impl, bench_median(v, n), unit, better);
}

/* A '#' comment line (printf format, no newline needed). */
__attribute__((format(printf, 1, 2))) static inline void
bench_comment(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("# ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
}

/* Resident memory of this process in bytes (/proc/self/statm), 0 if
 * unknown. */
static inline double bench_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

/* Exit with a message when a setup call fails (benchmarks do not
 * recover). */
static inline void bench_check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "bench: %s failed\n", what);
        exit(1);
    }
}

/* malloc(@p size), exiting on failure. */
static inline void *bench_alloc(size_t size)
{
    void *p = malloc(size);
    bench_check(p != NULL, "malloc");
    return p;
}

/* @p n stacks of @p size bytes each for the peers' contexts: one private,
 * lazily committed mapping (MAP_NORESERVE, no guard pages), as a program
 * using a bare context library would make them. */
static inline char *bench_stacks(size_t n, size_t size)
{
    void *p = mmap(NULL, n * size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    bench_check(p != MAP_FAILED, "mmap of the peer stacks");
    return p;
}

/*
 * Peers.  bench/CMakeLists.txt defines BENCH_HAVE_FCONTEXT, BENCH_HAVE_PTH
 * and BENCH_HAVE_UV when it finds the library (Debian: libboost-context-dev,
 * libpth-dev, libuv1-dev); a program measures a peer only when it is there.
 *
 * Boost.Context's fcontext is C++ by header but C by ABI: libboost_context
 * exports these two functions (boost/context/detail/fcontext.hpp).
 */
#ifdef BENCH_HAVE_FCONTEXT
typedef void *fcontext_t;
typedef struct {
    fcontext_t fctx; /* the context that switched to us */
    void *data;      /* what it passed */
} transfer_t;
transfer_t jump_fcontext(fcontext_t to, void *data);
fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));
#endif

#ifdef BENCH_HAVE_PTH
#include <pth.h>
/* Attributes of a Pth thread with a 64 KiB stack (weft's default),
 * joinable or not; pth_attr_destroy() them. */
static inline pth_attr_t bench_pth_attr(int joinable)
{
    pth_attr_t a = pth_attr_new();
    bench_check(a != NULL, "pth_attr_new");
    pth_attr_set(a, PTH_ATTR_STACK_SIZE, (unsigned)(64 * 1024));
    pth_attr_set(a, PTH_ATTR_JOINABLE, joinable);
    return a;
}
#endif

#endif /* WEFT_BENCH_H */
