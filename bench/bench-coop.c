/*
 * bench-coop.c - the "cooperator" shape: the cost per step of weft's
 * Twisted-style cooperator with 1, 100 and 10k tasks, in ns.
 *
 *   bench-coop [STEPS]     (default 2M steps per run, times BENCH_SCALE)
 *
 * Every task's step counts down and returns WEFT_COOP_DONE after its share
 * of STEPS.  weft: weft_coop_cooperate() of every task on a default
 * cooperator (10 ms time slices, ticks scheduled by a zero-delay timer),
 * then weft_run() until all are done; task creation included.  No Debian
 * package offers a C cooperator, so the peer is the lower bound
 * "plain-loop": the same steps called round robin through a function
 * pointer from an array, dropping the finished ones.
 */
#include "bench.h"
#include "weft.h"

struct task {
    long left;
};

static int step(void *state, weft_future **wait)
{
    (void)wait;
    struct task *t = state;
    return --t->left > 0 ? WEFT_COOP_CONTINUE : WEFT_COOP_DONE;
}

static struct task *make_tasks(long ntasks, long steps)
{
    struct task *t = bench_alloc((size_t)ntasks * sizeof *t);
    for (long i = 0; i < ntasks; i++)
        t[i].left = steps / ntasks;
    return t;
}

static double weft_coop_ns(long ntasks, long steps)
{
    weft_sched *s;
    weft_coop *c;
    struct task *t = make_tasks(ntasks, steps);
    bench_check(weft_sched_new(NULL, &s) == 0, "weft_sched_new");
    double t0 = bench_now_ns();
    bench_check(weft_coop_new(s, NULL, &c) == 0, "weft_coop_new");
    for (long i = 0; i < ntasks; i++) {
        weft_coop_task *h;
        bench_check(weft_coop_cooperate(c, step, &t[i], &h) == 0,
                    "weft_coop_cooperate");
        weft_coop_task_release(h);
    }
    weft_run(s);
    double r = (bench_now_ns() - t0) / (double)(steps / ntasks * ntasks);
    for (long i = 0; i < ntasks; i++)
        bench_check(t[i].left == 0, "every task done");
    weft_coop_free(c);
    weft_sched_free(s);
    free(t);
    return r;
}

/* The lower bound: round robin over an array of (step, state). */
struct slot {
    weft_coop_step_fn fn;
    void *state;
};

__attribute__((noinline)) static void plain_rounds(struct slot *v, long n)
{
    while (n > 0) {
        for (long i = 0; i < n;) {
            weft_future *w = NULL;
            if (v[i].fn(v[i].state, &w) == WEFT_COOP_DONE)
                v[i] = v[--n];
            else
                i++;
        }
    }
}

static double plain_ns(long ntasks, long steps)
{
    struct task *t = make_tasks(ntasks, steps);
    struct slot *v = bench_alloc((size_t)ntasks * sizeof *v);
    double t0 = bench_now_ns();
    for (long i = 0; i < ntasks; i++) {
        v[i].fn = step;
        v[i].state = &t[i];
    }
    plain_rounds(v, ntasks);
    double r = (bench_now_ns() - t0) / (double)(steps / ntasks * ntasks);
    free(v);
    free(t);
    return r;
}

int main(int argc, char **argv)
{
    static const long counts[] = {1, 100, 10000};
    long steps = argc > 1 ? atol(argv[1]) : bench_size(2000000, 20000);
    int runs = bench_runs();
    if (steps < 20000)
        return 2;
    bench_comment("cooperator: %ld steps per run, %d runs, median", steps,
                  runs);
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        double w[BENCH_MAX_RUNS], p[BENCH_MAX_RUNS];
        char metric[32];
        for (int i = 0; i < runs; i++) {
            w[i] = weft_coop_ns(counts[k], steps);
            p[i] = plain_ns(counts[k], steps);
        }
        snprintf(metric, sizeof metric, "step_%ld_tasks", counts[k]);
        bench_row_median("cooperator", metric, "weft", w, runs, "ns",
                         "lower");
        bench_row_median("cooperator", metric, "plain-loop", p, runs, "ns",
                         "lower");
    }
    return 0;
}
