/*
 * bench-switch.c - the cost of a raw context switch and of a yield through
 * the scheduler, in ns, median of several runs.
 *
 *   bench-switch [ITERATIONS] [RUNS]     (defaults: 10000000 5)
 *
 * raw:   two contexts ping-pong with weft__ctx_switch, both switching from
 *        the same call site (as every switch inside weft does).
 * yield: two coroutines call weft_yield() in a loop on one scheduler.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

static weft__ctx c0, c1;
static long iters;
static volatile long sink;

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

__attribute__((noinline)) static void pingpong(weft__ctx *self,
                                               weft__ctx *other, long n)
{
    for (long i = 0; i < n; i++) {
        weft__ctx_switch(self, other);
        sink++;
    }
}

static void peer(void *arg)
{
    (void)arg;
    pingpong(&c1, &c0, iters);
    for (;;)
        weft__ctx_switch(&c1, &c0);
}

static double raw_once(void)
{
    static char stack[64 * 1024];
    weft__ctx_make(&c1, stack, sizeof stack, peer, NULL);
    double t = now_ns();
    pingpong(&c0, &c1, iters);
    return (now_ns() - t) / (2.0 * (double)iters);
}

static int yielder(void *arg)
{
    (void)arg;
    for (long i = 0; i < iters / 2; i++)
        weft_yield();
    return 0;
}

static double yield_once(void)
{
    weft_sched *s;
    if (weft_sched_new(NULL, &s) < 0)
        exit(1);
    weft_spawn(s, yielder, NULL, NULL, NULL);
    weft_spawn(s, yielder, NULL, NULL, NULL);
    double t = now_ns();
    weft_run(s);
    double r = (now_ns() - t) / (double)iters;
    weft_sched_free(s);
    return r;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    iters = argc > 1 ? atol(argv[1]) : 10000000;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (iters < 2 || runs < 1 || runs > 99)
        return 2;
    double raw[99], yld[99];
    for (int i = 0; i < runs; i++) { /* interleaved, so both see the same noise */
        raw[i] = raw_once();
        yld[i] = yield_once();
    }
    qsort(raw, (size_t)runs, sizeof raw[0], cmp);
    qsort(yld, (size_t)runs, sizeof yld[0], cmp);
    printf("shape,median_ns,min_ns,max_ns\n");
    printf("raw_switch,%.2f,%.2f,%.2f\n", raw[runs / 2], raw[0], raw[runs - 1]);
    printf("yield,%.2f,%.2f,%.2f\n", yld[runs / 2], yld[0], yld[runs - 1]);
    return 0;
}
