/*
 * bench-switch.c - the "switch" shape: the cost of one context switch, raw
 * and through a scheduler's yield, for weft and its peers, in ns.
 *
 *   bench-switch [SWITCHES]     (default 10M, times BENCH_SCALE)
 *
 * switch,raw:   two contexts ping-pong, SWITCHES switches in all:
 *               weft (weft__ctx_switch, both sides switching from the same
 *               call site, as every switch inside weft does),
 *               boost-fcontext (jump_fcontext), ucontext (swapcontext).
 * switch,yield: two coroutines or threads yield to each other through
 *               their scheduler, SWITCHES yields in all: weft (weft_yield),
 *               pth (pth_yield).
 * ucontext and Pth are 30-500 times slower, so they do fewer switches
 * (said in a comment row); each impl's figure is per switch.
 */
#include <stdint.h>
#include <ucontext.h>

#include "bench.h"
#include "internal.h"

#define STACK (64 * 1024)

static long iters; /* round trips of the raw ping-pong in this run */
static volatile long sink;

/* ---- weft raw ---------------------------------------------------------- */

static weft__ctx c0, c1;

__attribute__((noinline)) static void pingpong(weft__ctx *self,
                                               weft__ctx *other, long n)
{
    for (long i = 0; i < n; i++) {
        weft__ctx_switch(self, other);
        sink++;
    }
}

static void weft_peer(void *arg)
{
    (void)arg;
    pingpong(&c1, &c0, iters);
    for (;;)
        weft__ctx_switch(&c1, &c0);
}

static double weft_raw(char *stack)
{
    weft__ctx_make(&c1, stack, STACK, weft_peer, NULL);
    double t = bench_now_ns();
    pingpong(&c0, &c1, iters);
    return (bench_now_ns() - t) / (2.0 * (double)iters);
}

/* ---- weft yield -------------------------------------------------------- */

static int yielder(void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++)
        weft_yield();
    return 0;
}

static double weft_yield_ns(long yields)
{
    weft_sched *s;
    long half = yields / 2;
    bench_check(weft_sched_new(NULL, &s) == 0, "weft_sched_new");
    weft_spawn(s, yielder, &half, NULL, NULL);
    weft_spawn(s, yielder, &half, NULL, NULL);
    double t = bench_now_ns();
    weft_run(s);
    double r = (bench_now_ns() - t) / (double)(2 * half);
    weft_sched_free(s);
    return r;
}

/* ---- Boost fcontext raw ------------------------------------------------ */

#ifdef BENCH_HAVE_FCONTEXT
static void fctx_peer(transfer_t t)
{
    for (;;) {
        t = jump_fcontext(t.fctx, NULL);
        sink++;
    }
}

static double fctx_raw(char *stack)
{
    fcontext_t f = make_fcontext(stack + STACK, STACK, fctx_peer);
    double t = bench_now_ns();
    for (long i = 0; i < iters; i++) {
        f = jump_fcontext(f, NULL).fctx;
        sink++;
    }
    return (bench_now_ns() - t) / (2.0 * (double)iters);
}
#endif

/* ---- ucontext raw ------------------------------------------------------ */

static ucontext_t u0, u1;
static long uiters;

static void uctx_peer(void)
{
    for (;;) {
        swapcontext(&u1, &u0);
        sink++;
    }
}

static double uctx_raw(char *stack)
{
    getcontext(&u1);
    u1.uc_stack.ss_sp = stack;
    u1.uc_stack.ss_size = STACK;
    u1.uc_link = NULL;
    makecontext(&u1, uctx_peer, 0);
    double t = bench_now_ns();
    for (long i = 0; i < uiters; i++) {
        swapcontext(&u0, &u1);
        sink++;
    }
    return (bench_now_ns() - t) / (2.0 * (double)uiters);
}

/* ---- Pth yield --------------------------------------------------------- */

#ifdef BENCH_HAVE_PTH
static void *pth_yielder(void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++)
        pth_yield(NULL);
    return NULL;
}

static double pth_yield_ns(long yields)
{
    long half = yields / 2;
    pth_attr_t a = bench_pth_attr(1);
    double t = bench_now_ns();
    pth_t t1 = pth_spawn(a, pth_yielder, &half);
    pth_t t2 = pth_spawn(a, pth_yielder, &half);
    bench_check(t1 && t2, "pth_spawn");
    pth_join(t1, NULL);
    pth_join(t2, NULL);
    double r = (bench_now_ns() - t) / (double)(2 * half);
    pth_attr_destroy(a);
    return r;
}
#endif

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : bench_size(10000000, 1000);
    int runs = bench_runs();
    if (n < 2)
        return 2;
    iters = n / 2;
    uiters = iters / 20 > 1 ? iters / 20 : 1;
    long pth_n = n / 500 > 2 ? n / 500 : 2;
    char *stack = bench_stacks(2, STACK);
    double wr[BENCH_MAX_RUNS], wy[BENCH_MAX_RUNS], ur[BENCH_MAX_RUNS];
#ifdef BENCH_HAVE_FCONTEXT
    double fr[BENCH_MAX_RUNS];
#endif
#ifdef BENCH_HAVE_PTH
    double py[BENCH_MAX_RUNS];
    bench_check(pth_init(), "pth_init");
#endif
    for (int i = 0; i < runs; i++) { /* interleaved: all see the same noise */
        wr[i] = weft_raw(stack);
#ifdef BENCH_HAVE_FCONTEXT
        fr[i] = fctx_raw(stack + STACK);
#endif
        ur[i] = uctx_raw(stack + STACK);
        wy[i] = weft_yield_ns(n);
#ifdef BENCH_HAVE_PTH
        py[i] = pth_yield_ns(pth_n);
#endif
    }
    bench_comment("switch: %ld switches per run (ucontext %ld, pth %ld), "
                  "%d runs, median", n, 2 * uiters, pth_n, runs);
    bench_row_median("switch", "raw", "weft", wr, runs, "ns", "lower");
#ifdef BENCH_HAVE_FCONTEXT
    bench_row_median("switch", "raw", "boost-fcontext", fr, runs, "ns",
                     "lower");
#endif
    bench_row_median("switch", "raw", "ucontext", ur, runs, "ns", "lower");
    bench_row_median("switch", "yield", "weft", wy, runs, "ns", "lower");
#ifdef BENCH_HAVE_PTH
    bench_row_median("switch", "yield", "pth", py, runs, "ns", "lower");
    pth_kill();
#else
    (void)pth_n;
#endif
    return 0;
}
