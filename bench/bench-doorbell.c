/*
 * bench-doorbell.c - the "doorbell" shape: a ring from another thread
 * until the loop's processor runs, weft's doorbell against libuv's
 * uv_async_send.
 *
 *   bench-doorbell [SAMPLES]     (default 200, times BENCH_SCALE)
 *
 * The loop thread runs weft_run() with one doorbell loop and one processor
 * (or uv_run() with one uv_async_t and its callback).  A ringer thread:
 *   idle_cpu:    reads the loop thread's CPU clock, sleeps 200 ms with no
 *                ring, reads it again: CPU µs per idle second (must be 0);
 *   latency:     SAMPLES times: sleep 300 µs (the loop goes back to
 *                waiting), take the time, ring, wait for the processor to
 *                record when it ran; median of the differences (µs, a
 *                wake from idle across threads);
 *   rings_per_s: rings in a tight loop for 100 ms; rings made per second
 *                (they coalesce: the processor runs far fewer times).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "bench.h"
#include "weft.h"
#ifdef BENCH_HAVE_UV
#include <uv.h>
#endif

#define FLOOD_NS 100e6
#define IDLE_NS 200e6

/* What one impl offers the ringer. */
struct impl {
    void (*ring)(void);
    void (*start)(void); /* runs the loop until quit */
    void (*quit)(void);  /* from the processor: stop the loop */
};

static atomic_long runs;       /* processor invocations */
static atomic_long ran_at;     /* CLOCK_MONOTONIC ns of the latest one */
static atomic_int stopping;
static atomic_int ready;       /* the loop exists: rings are allowed */
static pthread_t loop_thread;
static const struct impl *cur;
static long samples;

struct result {
    double idle_us_per_s, latency_us, rings_per_s;
};

static void processor_ran(void)
{
    atomic_store(&ran_at, (long)bench_now_ns());
    atomic_fetch_add(&runs, 1);
    if (atomic_load(&stopping))
        cur->quit();
}

static void wait_runs(long n)
{
    while (atomic_load(&runs) < n)
        sched_yield();
}

static void pause_ns(long ns)
{
    struct timespec t = {ns / 1000000000, ns % 1000000000};
    nanosleep(&t, NULL);
}

static void *ringer(void *arg)
{
    struct result *r = arg;
    clockid_t cpu;
    bench_check(pthread_getcpuclockid(loop_thread, &cpu) == 0,
                "pthread_getcpuclockid");
    while (!atomic_load(&ready))
        sched_yield();
    cur->ring(); /* the loop is up once this ring is answered */
    wait_runs(1);
    pause_ns(10000000);

    double c0 = bench_clock_ns(cpu), t0 = bench_now_ns();
    pause_ns((long)IDLE_NS);
    r->idle_us_per_s = (bench_clock_ns(cpu) - c0) / 1e3 /
                       ((bench_now_ns() - t0) / 1e9);

    double *lat = bench_alloc((size_t)samples * sizeof *lat);
    for (long i = 0; i < samples; i++) {
        long before = atomic_load(&runs);
        pause_ns(300000);
        double t = bench_now_ns();
        cur->ring();
        wait_runs(before + 1);
        lat[i] = ((double)atomic_load(&ran_at) - t) / 1e3;
    }
    r->latency_us = bench_median(lat, (int)samples);
    free(lat);

    long rings = 0;
    t0 = bench_now_ns();
    double t;
    do {
        for (int i = 0; i < 100; i++)
            cur->ring();
        rings += 100;
    } while ((t = bench_now_ns()) - t0 < FLOOD_NS);
    r->rings_per_s = (double)rings / ((t - t0) / 1e9);

    atomic_store(&stopping, 1);
    cur->ring();
    return NULL;
}

static struct result run(const struct impl *impl)
{
    struct result r;
    pthread_t th;
    cur = impl;
    atomic_store(&runs, 0);
    atomic_store(&stopping, 0);
    atomic_store(&ready, 0);
    loop_thread = pthread_self();
    bench_check(pthread_create(&th, NULL, ringer, &r) == 0,
                "pthread_create");
    impl->start();
    pthread_join(th, NULL);
    return r;
}

/* ---- weft -------------------------------------------------------------- */

static weft_doorbell *db;

static int processor(weft_doorbell *d, void *arg, int64_t *wake_at)
{
    (void)d;
    (void)arg;
    (void)wake_at;
    processor_ran();
    return 0;
}

static void weft_ring(void)
{
    weft_doorbell_trigger(db);
}

static void weft_quit(void)
{
    weft_doorbell_stop(db);
}

static void weft_start(void)
{
    weft_sched *s;
    bench_check(weft_sched_new(NULL, &s) == 0, "weft_sched_new");
    bench_check(weft_doorbell_new(s, NULL, &db) == 0, "weft_doorbell_new");
    weft_doorbell_add(db, processor, NULL);
    /* start's own full run counts as the first answer */
    bench_check(weft_doorbell_start(db) == 0, "weft_doorbell_start");
    atomic_store(&ready, 1);
    weft_run(s);
    weft_doorbell_free(db);
    weft_sched_free(s);
}

static const struct impl weft_impl = {weft_ring, weft_start, weft_quit};

/* ---- libuv ------------------------------------------------------------- */

#ifdef BENCH_HAVE_UV
static uv_async_t async;

static void on_async(uv_async_t *a)
{
    (void)a;
    processor_ran();
}

static void uv_ring(void)
{
    uv_async_send(&async);
}

static void uv_quit(void)
{
    uv_close((uv_handle_t *)&async, NULL);
}

static void uv_start(void)
{
    uv_loop_t loop;
    bench_check(uv_loop_init(&loop) == 0, "uv_loop_init");
    bench_check(uv_async_init(&loop, &async, on_async) == 0,
                "uv_async_init");
    atomic_store(&ready, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

static const struct impl uv_impl = {uv_ring, uv_start, uv_quit};
#endif

static void rows(const char *impl, struct result *r, int n)
{
    double idle[BENCH_MAX_RUNS], lat[BENCH_MAX_RUNS], fl[BENCH_MAX_RUNS];
    for (int i = 0; i < n; i++) {
        idle[i] = r[i].idle_us_per_s;
        lat[i] = r[i].latency_us;
        fl[i] = r[i].rings_per_s;
    }
    bench_row_median("doorbell", "latency", impl, lat, n, "us", "lower");
    bench_row_median("doorbell", "rings_per_s", impl, fl, n, "rings/s",
                     "higher");
    bench_row_median("doorbell", "idle_cpu", impl, idle, n, "us/s",
                     "lower");
}

int main(int argc, char **argv)
{
    samples = argc > 1 ? atol(argv[1]) : bench_size(200, 5);
    int n = bench_runs();
    if (samples < 1)
        return 2;
    struct result w[BENCH_MAX_RUNS];
#ifdef BENCH_HAVE_UV
    struct result u[BENCH_MAX_RUNS];
#endif
    for (int i = 0; i < n; i++) {
        w[i] = run(&weft_impl);
#ifdef BENCH_HAVE_UV
        u[i] = run(&uv_impl);
#endif
    }
    bench_comment("doorbell: %ld latency samples, %.0f ms of rings, "
                  "%.0f ms idle per run, %d runs, median",
                  samples, FLOOD_NS / 1e6, IDLE_NS / 1e6, n);
    rows("weft", w, n);
#ifdef BENCH_HAVE_UV
    rows("libuv", u, n);
#endif
    return 0;
}
