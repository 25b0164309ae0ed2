/*
 * bench-memory.c - the "memory" shape: resident memory per suspended
 * coroutine, with 100k and 1M of them suspended at once, for weft and its
 * peers, in bytes.
 *
 *   bench-memory [COUNT...]     (default 100000 1000000, times BENCH_SCALE)
 *
 * Each measurement runs in a child process of its own (fork): the child
 * reads its resident set, creates COUNT coroutines that each suspend
 * (weft: wait on an event; boost-fcontext and ucontext: switch back to
 * main from inside their function; pth: wait on a condition), reads its
 * resident set again and reports the difference divided by COUNT.  All use
 * 64 KiB stacks (weft's default); the peers get theirs from one private
 * lazily committed mapping (no guard pages), weft from its own stack
 * allocator (guard pages for the first ones, slabs beyond,
 * docs/stacks.md).  Pth is measured at 2k at most: its scheduler scans
 * every waiting thread at each switch, so suspending n threads costs n^2
 * (30k took 5 minutes here); its cost per thread (a malloc'd stack and
 * record) does not depend on the count.
 * The figure hardly varies from run to run (under 1%) and 1M coroutines
 * take about 7 s per impl here, so a value is the median of at most 3 runs
 * below 1M and of one run at 1M and above.
 */
#include <stdint.h>
#include <sys/wait.h>
#include <ucontext.h>

#include "bench.h"
#include "weft.h"

#define STACK (64 * 1024)
#define PTH_MAX 2000

typedef void (*suspend_fn)(long n);

/* ---- weft -------------------------------------------------------------- */

static int waiter(void *arg)
{
    weft_event_wait(arg, -1);
    return 0;
}

static void weft_suspend(long n)
{
    weft_sched *s;
    weft_event *e;
    bench_check(weft_sched_new(NULL, &s) == 0, "weft_sched_new");
    bench_check(weft_event_new(s, &e) == 0, "weft_event_new");
    for (long i = 0; i < n; i++)
        bench_check(weft_spawn(s, waiter, e, NULL, NULL) == 0, "weft_spawn");
    weft_run_once(s, 0); /* every one runs and blocks on the event */
    bench_check(weft_sched_count(s) == n, "suspending every coroutine");
}

/* ---- Boost fcontext ---------------------------------------------------- */

#ifdef BENCH_HAVE_FCONTEXT
static void fctx_body(transfer_t t)
{
    volatile char frame[64];
    frame[0] = 1;
    jump_fcontext(t.fctx, NULL); /* suspended for good */
    frame[1] = frame[0];
}

static void fctx_suspend(long n)
{
    char *stacks = bench_stacks((size_t)n, STACK);
    fcontext_t *ctx = bench_alloc((size_t)n * sizeof *ctx);
    for (long i = 0; i < n; i++) {
        char *top = stacks + (size_t)(i + 1) * STACK;
        ctx[i] = jump_fcontext(make_fcontext(top, STACK, fctx_body), NULL)
                     .fctx;
    }
}
#endif

/* ---- ucontext ---------------------------------------------------------- */

static ucontext_t umain, *ucur;

static void uctx_body(void)
{
    volatile char frame[64];
    frame[0] = 1;
    swapcontext(ucur, &umain); /* suspended for good */
    frame[1] = frame[0];
}

static void uctx_suspend(long n)
{
    char *stacks = bench_stacks((size_t)n, STACK);
    ucontext_t *uc = bench_alloc((size_t)n * sizeof *uc);
    for (long i = 0; i < n; i++) {
        ucur = &uc[i];
        getcontext(ucur);
        ucur->uc_stack.ss_sp = stacks + (size_t)i * STACK;
        ucur->uc_stack.ss_size = STACK;
        ucur->uc_link = NULL;
        makecontext(ucur, uctx_body, 0);
        swapcontext(&umain, ucur);
    }
}

/* ---- Pth --------------------------------------------------------------- */

#ifdef BENCH_HAVE_PTH
static pth_mutex_t pmu;
static pth_cond_t pcond;

static void *pth_waiter(void *arg)
{
    (void)arg;
    pth_mutex_acquire(&pmu, 0, NULL);
    pth_cond_await(&pcond, &pmu, NULL);
    pth_mutex_release(&pmu);
    return NULL;
}

static void pth_suspend_all(long n)
{
    pth_attr_t a = bench_pth_attr(0);
    for (long i = 0; i < n; i++)
        bench_check(pth_spawn(a, pth_waiter, NULL) != NULL, "pth_spawn");
    pth_yield(NULL); /* every one runs and blocks */
    bench_check(pth_ctrl(PTH_CTRL_GETTHREADS_WAITING) >= n,
                "suspending every pth thread");
}

static void pth_prepare(void)
{
    bench_check(pth_init(), "pth_init");
    pth_mutex_init(&pmu);
    pth_cond_init(&pcond);
}
#endif

/* Bytes of resident memory per coroutine for fn(n), measured in a child
 * process; prepare (may be NULL) runs in the child first, not counted. */
static double measure(suspend_fn fn, void (*prepare)(void), long n)
{
    int fd[2];
    bench_check(pipe(fd) == 0, "pipe");
    fflush(stdout);
    pid_t pid = fork();
    bench_check(pid >= 0, "fork");
    if (pid == 0) {
        close(fd[0]);
        if (prepare)
            prepare();
        double before = bench_rss_bytes();
        fn(n);
        double per = (bench_rss_bytes() - before) / (double)n;
        _exit(write(fd[1], &per, sizeof per) == sizeof per ? 0 : 1);
    }
    close(fd[1]);
    double per = -1;
    ssize_t got = read(fd[0], &per, sizeof per);
    close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    bench_check(got == sizeof per && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                "a memory child");
    return per;
}

/* "100k", "1M", or the plain number: the size in a metric name. */
static void size_name(char *buf, size_t len, long n)
{
    if (n >= 1000000 && n % 1000000 == 0)
        snprintf(buf, len, "%ldM", n / 1000000);
    else if (n >= 1000 && n % 1000 == 0)
        snprintf(buf, len, "%ldk", n / 1000);
    else
        snprintf(buf, len, "%ld", n);
}

struct impl {
    const char *name;
    suspend_fn fn;
    void (*prepare)(void);
    long max; /* largest count it is measured at; 0: any */
};

static const struct impl impls[] = {
    {"weft", weft_suspend, NULL, 0},
#ifdef BENCH_HAVE_FCONTEXT
    {"boost-fcontext", fctx_suspend, NULL, 0},
#endif
    {"ucontext", uctx_suspend, NULL, 0},
#ifdef BENCH_HAVE_PTH
    {"pth", pth_suspend_all, pth_prepare, PTH_MAX},
#endif
};
#define NIMPL (sizeof impls / sizeof impls[0])

static void measure_size(long n, int runs)
{
    if (n >= 1000000)
        runs = 1;
    char sz[32], metric[64];
    double v[NIMPL][BENCH_MAX_RUNS];
    long at[NIMPL];
    for (size_t k = 0; k < NIMPL; k++)
        at[k] = impls[k].max && n > impls[k].max ? impls[k].max : n;
    for (int r = 0; r < runs; r++)
        for (size_t k = 0; k < NIMPL; k++)
            v[k][r] = measure(impls[k].fn, impls[k].prepare, at[k]);
    size_name(sz, sizeof sz, n);
    snprintf(metric, sizeof metric, "rss_per_coro_%s", sz);
    bench_comment("memory: %ld coroutines suspended at once, 64 KiB stacks, "
                  "%d runs, median", n, runs);
    for (size_t k = 0; k < NIMPL; k++) {
        if (at[k] != n)
            bench_comment("memory: %s measured at %ld, not %ld",
                          impls[k].name, at[k], n);
        bench_row_median("memory", metric, impls[k].name, v[k], runs,
                         "bytes", "lower");
    }
}

int main(int argc, char **argv)
{
    int runs = bench_runs() < 3 ? bench_runs() : 3;
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            measure_size(atol(argv[i]), runs);
        return 0;
    }
    measure_size(bench_size(100000, 100), runs);
    measure_size(bench_size(1000000, 1000), runs);
    return 0;
}
