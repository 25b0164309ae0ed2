/*
 * bench-timers.c - the "timers" shape: 100k sleepers with random delays of
 * 0-100 ms, how late the last one wakes and how much CPU it all costs, for
 * coroutines (weft, pth) and for callback timers (weft_timer, libuv's
 * uv_timer_t).
 *
 *   bench-timers [COUNT]     (default 100k, times BENCH_SCALE)
 *
 * Every impl gets the same delays (a fixed pseudo-random sequence, the
 * longest exactly 100 ms).  Timed from before the first sleeper is created
 * until the loop returns with all of them done (creation included,
 * teardown not):
 *   *_late:          that wall time minus 100 ms (ms);
 *   *_cpu_per_coro,
 *   *_cpu_per_timer: the process's CPU time over it (user + system)
 *                    divided by COUNT (ns; x COUNT / 1e9 = seconds).
 * Coroutines: weft spawns COUNT detached coroutines that each call
 * weft_sleep_for(); pth spawns COUNT threads that each call pth_nap().
 * Pth's scheduler scans every sleeping thread at each switch (quadratic),
 * so it gets COUNT/50 sleepers (said in a comment row).
 * Callback timers: weft_timer_new + weft_timer_start vs uv_timer_init +
 * uv_timer_start (libuv has ms resolution: delays rounded to ms).
 */
#include <stdint.h>

#include "bench.h"
#include "weft.h"
#ifdef BENCH_HAVE_UV
#include <uv.h>
#endif

#define MAX_DELAY WEFT_MSEC(100)

static int64_t *delay; /* ns, one per sleeper */
static long fired;

static void make_delays(long n)
{
    uint64_t x = 88172645463325252ull; /* xorshift64, fixed seed */
    delay = bench_alloc((size_t)n * sizeof *delay);
    for (long i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        delay[i] = (int64_t)(x % (uint64_t)MAX_DELAY);
    }
    delay[n / 2] = MAX_DELAY;
}

struct result {
    double late_ms, cpu_ns_each;
};

static struct result result(double t0, double c0, long n)
{
    struct result r;
    r.late_ms = (bench_now_ns() - t0 - (double)MAX_DELAY) / 1e6;
    r.cpu_ns_each = (bench_cpu_ns() - c0) / (double)n;
    bench_check(fired == n, "every sleeper woke");
    return r;
}

/* ---- weft coroutines --------------------------------------------------- */

static int sleeper(void *arg)
{
    weft_sleep_for(*(int64_t *)arg);
    fired++;
    return 0;
}

static struct result weft_coros(long n)
{
    weft_sched *s;
    fired = 0;
    double t0 = bench_now_ns(), c0 = bench_cpu_ns();
    bench_check(weft_sched_new(NULL, &s) == 0, "weft_sched_new");
    for (long i = 0; i < n; i++)
        bench_check(weft_spawn(s, sleeper, &delay[i], NULL, NULL) == 0,
                    "weft_spawn");
    weft_run(s);
    struct result r = result(t0, c0, n);
    weft_sched_free(s);
    return r;
}

/* ---- weft callback timers ---------------------------------------------- */

static void on_timer(weft_timer *t, void *arg)
{
    (void)t;
    (void)arg;
    fired++;
}

static struct result weft_timers(long n)
{
    weft_sched *s;
    weft_timer **t = bench_alloc((size_t)n * sizeof *t);
    fired = 0;
    double t0 = bench_now_ns(), c0 = bench_cpu_ns();
    bench_check(weft_sched_new(NULL, &s) == 0, "weft_sched_new");
    for (long i = 0; i < n; i++) {
        bench_check(weft_timer_new(s, on_timer, NULL, &t[i]) == 0,
                    "weft_timer_new");
        weft_timer_start(t[i], delay[i], 0);
    }
    weft_run(s);
    struct result r = result(t0, c0, n);
    for (long i = 0; i < n; i++)
        weft_timer_free(t[i]);
    weft_sched_free(s);
    free(t);
    return r;
}

/* ---- Pth --------------------------------------------------------------- */

#ifdef BENCH_HAVE_PTH
static void *pth_sleeper(void *arg)
{
    int64_t ns = *(int64_t *)arg;
    pth_nap(pth_time((long)(ns / 1000000000), (long)(ns % 1000000000 / 1000)));
    fired++;
    return NULL;
}

static struct result pth_coros(long n)
{
    pth_attr_t a = bench_pth_attr(0);
    fired = 0;
    double t0 = bench_now_ns(), c0 = bench_cpu_ns();
    /* the longest delay is at n / 2 of the full sequence: include it */
    delay[0] = MAX_DELAY;
    for (long i = 0; i < n; i++)
        bench_check(pth_spawn(a, pth_sleeper, &delay[i]) != NULL,
                    "pth_spawn");
    while (fired < n)
        pth_nap(pth_time(0, 1000));
    struct result r = result(t0, c0, n);
    pth_attr_destroy(a);
    return r;
}
#endif

/* ---- libuv ------------------------------------------------------------- */

#ifdef BENCH_HAVE_UV
static void on_uv_timer(uv_timer_t *t)
{
    (void)t;
    fired++;
}

static struct result uv_timers(long n)
{
    uv_loop_t loop;
    uv_timer_t *t = bench_alloc((size_t)n * sizeof *t);
    fired = 0;
    double t0 = bench_now_ns(), c0 = bench_cpu_ns();
    bench_check(uv_loop_init(&loop) == 0, "uv_loop_init");
    for (long i = 0; i < n; i++) {
        uv_timer_init(&loop, &t[i]);
        uv_timer_start(&t[i], on_uv_timer,
                       (uint64_t)((delay[i] + 500000) / 1000000), 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    struct result r = result(t0, c0, n);
    for (long i = 0; i < n; i++)
        uv_close((uv_handle_t *)&t[i], NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(t);
    return r;
}
#endif

static void rows(const char *kind, const char *impl, struct result *r,
                 int runs)
{
    double late[BENCH_MAX_RUNS], cpu[BENCH_MAX_RUNS];
    char m1[32], m2[32];
    for (int i = 0; i < runs; i++) {
        late[i] = r[i].late_ms;
        cpu[i] = r[i].cpu_ns_each;
    }
    snprintf(m1, sizeof m1, "%s_late", kind);
    snprintf(m2, sizeof m2, "%s_cpu_per_%s", kind,
             kind[0] == 'c' && kind[1] == 'o' ? "coro" : "timer");
    bench_row_median("timers", m1, impl, late, runs, "ms", "lower");
    bench_row_median("timers", m2, impl, cpu, runs, "ns", "lower");
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : bench_size(100000, 100);
    int runs = bench_runs();
    if (n < 2)
        return 2;
    long pth_n = n / 50 > 2 ? n / 50 : 2;
    make_delays(n);
    struct result wc[BENCH_MAX_RUNS], wt[BENCH_MAX_RUNS];
#ifdef BENCH_HAVE_PTH
    struct result pc[BENCH_MAX_RUNS];
    bench_check(pth_init(), "pth_init");
#endif
#ifdef BENCH_HAVE_UV
    struct result ut[BENCH_MAX_RUNS];
#endif
    for (int i = 0; i < runs; i++) {
        wc[i] = weft_coros(n);
        wt[i] = weft_timers(n);
#ifdef BENCH_HAVE_UV
        ut[i] = uv_timers(n);
#endif
#ifdef BENCH_HAVE_PTH
        pc[i] = pth_coros(pth_n);
        delay[0] = delay[1]; /* back to the common sequence */
#endif
    }
    bench_comment("timers: %ld sleepers of 0-100 ms per run (pth %ld), "
                  "%d runs, median", n, pth_n, runs);
    rows("coro", "weft", wc, runs);
#ifdef BENCH_HAVE_PTH
    rows("coro", "pth", pc, runs);
    pth_kill();
#else
    (void)pth_n;
#endif
    rows("cb", "weft", wt, runs);
#ifdef BENCH_HAVE_UV
    rows("cb", "libuv", ut, runs);
#endif
    return 0;
}
