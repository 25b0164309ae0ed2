/*
 * bench-spawn.c - the "spawn" shape: create, run to completion and free a
 * trivial coroutine, in ns each, for weft and its peers.
 *
 *   bench-spawn [COUNT]     (default 1M, times BENCH_SCALE)
 *
 * weft:           a driver coroutine spawns batches of 100 detached
 *                 coroutines and yields; they run and finish before it
 *                 runs again, so their stacks come back warm from the
 *                 scheduler's pool (the "warm pool" of the target).
 * boost-fcontext: make_fcontext on one reused stack, jump in, jump out
 *                 for good (nothing to free: the bare lower bound).
 * ucontext:       getcontext + makecontext on one reused stack, swapcontext
 *                 in; it returns through uc_link.
 * pth:            pth_spawn (joinable) + pth_join, one at a time.
 * ucontext and Pth are 40-500 times slower and create fewer (said in a
 * comment row).
 */
#include <ucontext.h>

#include "bench.h"
#include "weft.h"

#define STACK (64 * 1024)
#define BATCH 100

static volatile long sink;

/* ---- weft -------------------------------------------------------------- */

static int trivial(void *arg)
{
    (void)arg;
    sink++;
    return 0;
}

static int driver(void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i += BATCH) {
        for (int j = 0; j < BATCH; j++)
            bench_check(weft_spawn(NULL, trivial, NULL, NULL, NULL) == 0,
                        "weft_spawn");
        weft_yield();
    }
    return 0;
}

static double weft_spawn_ns(long n)
{
    weft_sched *s;
    long warm = BATCH;
    bench_check(weft_sched_new(NULL, &s) == 0, "weft_sched_new");
    weft_spawn(s, driver, &warm, NULL, NULL); /* fill the pool */
    weft_run(s);
    weft_spawn(s, driver, &n, NULL, NULL);
    double t = bench_now_ns();
    weft_run(s);
    double r = (bench_now_ns() - t) / (double)(n / BATCH * BATCH);
    weft_sched_free(s);
    return r;
}

/* ---- Boost fcontext ---------------------------------------------------- */

#ifdef BENCH_HAVE_FCONTEXT
static void fctx_trivial(transfer_t t)
{
    sink++;
    jump_fcontext(t.fctx, NULL); /* never resumed */
}

static double fctx_spawn_ns(char *stack, long n)
{
    double t = bench_now_ns();
    for (long i = 0; i < n; i++)
        jump_fcontext(make_fcontext(stack + STACK, STACK, fctx_trivial),
                      NULL);
    return (bench_now_ns() - t) / (double)n;
}
#endif

/* ---- ucontext ---------------------------------------------------------- */

static void uctx_trivial(void)
{
    sink++;
}

static double uctx_spawn_ns(char *stack, long n)
{
    ucontext_t self, co;
    double t = bench_now_ns();
    for (long i = 0; i < n; i++) {
        getcontext(&co);
        co.uc_stack.ss_sp = stack;
        co.uc_stack.ss_size = STACK;
        co.uc_link = &self;
        makecontext(&co, uctx_trivial, 0);
        swapcontext(&self, &co);
    }
    return (bench_now_ns() - t) / (double)n;
}

/* ---- Pth --------------------------------------------------------------- */

#ifdef BENCH_HAVE_PTH
static void *pth_trivial(void *arg)
{
    (void)arg;
    sink++;
    return NULL;
}

static double pth_spawn_ns(long n)
{
    pth_attr_t a = bench_pth_attr(1);
    double t = bench_now_ns();
    for (long i = 0; i < n; i++) {
        pth_t th = pth_spawn(a, pth_trivial, NULL);
        bench_check(th != NULL, "pth_spawn");
        pth_join(th, NULL);
    }
    double r = (bench_now_ns() - t) / (double)n;
    pth_attr_destroy(a);
    return r;
}
#endif

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : bench_size(1000000, BATCH);
    int runs = bench_runs();
    if (n < BATCH)
        return 2;
    long slow_n = n / 10, pth_n = n / 100 > 10 ? n / 100 : 10;
    char *stack = bench_stacks(1, STACK);
    double w[BENCH_MAX_RUNS], u[BENCH_MAX_RUNS];
#ifdef BENCH_HAVE_FCONTEXT
    double f[BENCH_MAX_RUNS];
#endif
#ifdef BENCH_HAVE_PTH
    double p[BENCH_MAX_RUNS];
    bench_check(pth_init(), "pth_init");
#endif
    for (int i = 0; i < runs; i++) {
        w[i] = weft_spawn_ns(n);
#ifdef BENCH_HAVE_FCONTEXT
        f[i] = fctx_spawn_ns(stack, n);
#endif
        u[i] = uctx_spawn_ns(stack, slow_n);
#ifdef BENCH_HAVE_PTH
        p[i] = pth_spawn_ns(pth_n);
#endif
    }
    bench_comment("spawn: %ld coroutines per run (ucontext %ld, pth %ld), "
                  "%d runs, median; weft in batches of %d from a warm pool",
                  n, slow_n, pth_n, runs, BATCH);
    bench_row_median("spawn", "create_run_free", "weft", w, runs, "ns",
                     "lower");
#ifdef BENCH_HAVE_FCONTEXT
    bench_row_median("spawn", "create_run_free", "boost-fcontext", f, runs,
                     "ns", "lower");
#endif
    bench_row_median("spawn", "create_run_free", "ucontext", u, runs, "ns",
                     "lower");
#ifdef BENCH_HAVE_PTH
    bench_row_median("spawn", "create_run_free", "pth", p, runs, "ns",
                     "lower");
    pth_kill();
#else
    (void)pth_n;
#endif
    return 0;
}
