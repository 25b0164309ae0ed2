/*
 * test-ctx.c - the raw context switch (src/ctx/): weft__ctx_make and
 * weft__ctx_switch on stacks mapped here, without a scheduler.
 *
 * Every case runs with the assembly switches (x86_64.S, aarch64.S) and the
 * ucontext one (WEFT_CTX=ucontext), except those marked asm-only.  Under
 * ASan the switches are annotated the way sched.c does it; under Valgrind
 * the stacks are registered.
 */
#include <fenv.h>
#include <execinfo.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "test.h"

#if defined(WEFT_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(WEFT_HAVE_VALGRIND)
#include <valgrind/valgrind.h>
#endif

/* ----------------------------------------------------------------------
 * A minimal fiber layer over the raw switch.
 * ---------------------------------------------------------------------- */

struct fiber {
    weft__ctx ctx;
    char *map;      /* the whole mapping, guard page included */
    size_t maplen;
    char *lo;       /* lowest usable byte */
    size_t size;    /* usable bytes */
    void (*fn)(struct fiber *self);
    void *arg;
    struct fiber *exit_to;
    int done;
    void *fake;     /* ASan fake stack */
    unsigned vg;    /* Valgrind stack id */
};

/* The context of the test itself (main's stack). */
static struct fiber main_fiber;

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

/* Valgrind does not emulate non-default rounding in its arithmetic (the
 * control registers themselves are kept); arithmetic checks skip there. */
static __attribute__((unused)) int under_valgrind(void)
{
#if defined(WEFT_HAVE_VALGRIND)
    return RUNNING_ON_VALGRIND != 0;
#else
    return 0;
#endif
}

/* First thing on a new stack. */
static void entered(void)
{
#if defined(WEFT_ASAN)
    const void *b = NULL;
    size_t s = 0;
    __sanitizer_finish_switch_fiber(NULL, &b, &s);
    if (!main_fiber.size) {
        /* Every first switch of a test comes from main. */
        main_fiber.lo = (char *)(uintptr_t)b;
        main_fiber.size = s;
    }
#endif
}

static void fiber_switch(struct fiber *from, struct fiber *to)
{
#if defined(WEFT_ASAN)
    __sanitizer_start_switch_fiber(&from->fake, to->lo, to->size);
#endif
    weft__ctx_switch(&from->ctx, &to->ctx);
#if defined(WEFT_ASAN)
    __sanitizer_finish_switch_fiber(from->fake, NULL, NULL);
#endif
}

/* Leave f for good. */
static _Noreturn void fiber_exit(struct fiber *f, struct fiber *to)
{
    f->done = 1;
#if defined(WEFT_ASAN)
    __sanitizer_start_switch_fiber(NULL, to->lo, to->size);
#endif
    weft__ctx_switch(&f->ctx, &to->ctx);
    FAIL("a finished context was resumed");
}

static void fiber_entry(void *p)
{
    struct fiber *f = p;
    entered();
    f->fn(f);
    fiber_exit(f, f->exit_to ? f->exit_to : &main_fiber);
}

/* Map size bytes (a multiple of the page size) of stack with a guard page
 * below, without making a context. */
static struct fiber *fiber_alloc(size_t size)
{
    size_t page = page_size();
    struct fiber *f = calloc(1, sizeof *f);
    ASSERT_NOT_NULL(f);
    ASSERT_EQ(size % page, 0);
    f->maplen = size + page;
    void *m = mmap(NULL, f->maplen, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT(m != MAP_FAILED);
    ASSERT_OK(mprotect(m, page, PROT_NONE));
    f->map = m;
    f->lo = f->map + page;
    f->size = size;
#if defined(WEFT_HAVE_VALGRIND)
    f->vg = VALGRIND_STACK_REGISTER(f->lo, f->lo + f->size);
#endif
    return f;
}

static struct fiber *fiber_new(size_t size, void (*fn)(struct fiber *),
                               void *arg)
{
    struct fiber *f = fiber_alloc(size);
    f->fn = fn;
    f->arg = arg;
    weft__ctx_make(&f->ctx, f->lo, f->size, fiber_entry, f);
    return f;
}

static void fiber_free(struct fiber *f)
{
#if defined(WEFT_HAVE_VALGRIND)
    VALGRIND_STACK_DEREGISTER(f->vg);
#endif
    ASSERT_OK(munmap(f->map, f->maplen));
    free(f);
}

/* ----------------------------------------------------------------------
 * Entry argument.
 * ---------------------------------------------------------------------- */

static void *raw_got;
static int raw_calls;
static weft__ctx raw_ctx;

static void raw_entry(void *arg)
{
    entered();
    raw_got = arg;
    raw_calls++;
    fiber_exit(&(struct fiber){ .ctx = raw_ctx }, &main_fiber);
}

/* The entry gets exactly the pointer given to weft__ctx_make (all 64 bits:
 * the ucontext backend passes it in two halves). */
TEST(entry_receives_argument)
{
    static void *const args[] = {
        (void *)(uintptr_t)0x0123456789abcdefull,
        (void *)(uintptr_t)0xfedcba9876543210ull,
        (void *)(uintptr_t)0x00000000ffffffffull,
        (void *)(uintptr_t)0xffffffff00000000ull,
        NULL,
    };
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++) {
        struct fiber *f = fiber_alloc(64 * 1024);
        raw_got = (void *)(uintptr_t)1;
        raw_calls = 0;
        weft__ctx_make(&f->ctx, f->lo, f->size, raw_entry, args[i]);
        fiber_switch(&main_fiber, f);
        ASSERT_EQ(raw_calls, 1);
        ASSERT_PTR_EQ(raw_got, args[i]);
        fiber_free(f);
    }
}

/* ----------------------------------------------------------------------
 * Ping-pong.
 * ---------------------------------------------------------------------- */

#define PING_ROUNDS 100000

struct pingpong {
    struct fiber *a, *b;
    long counter;
    long a_seen, b_seen;
};

static void ping_fn(struct fiber *self)
{
    struct pingpong *pp = self->arg;
    for (long i = 0; i < PING_ROUNDS; i++) {
        /* a runs on even counts, b on odd ones. */
        ASSERT_EQ(pp->counter, 2 * i);
        pp->counter++;
        pp->a_seen++;
        fiber_switch(pp->a, pp->b);
    }
}

static void pong_fn(struct fiber *self)
{
    struct pingpong *pp = self->arg;
    for (long i = 0; i < PING_ROUNDS; i++) {
        ASSERT_EQ(pp->counter, 2 * i + 1);
        pp->counter++;
        pp->b_seen++;
        if (i + 1 < PING_ROUNDS)
            fiber_switch(pp->b, pp->a);
    }
    /* Falls off: fiber_entry leaves for main. */
}

TEST(ping_pong)
{
    struct pingpong pp;
    memset(&pp, 0, sizeof pp);
    pp.a = fiber_new(64 * 1024, ping_fn, &pp);
    pp.b = fiber_new(64 * 1024, pong_fn, &pp);
    fiber_switch(&main_fiber, pp.a);
    ASSERT_EQ(pp.counter, 2 * PING_ROUNDS);
    ASSERT_EQ(pp.a_seen, PING_ROUNDS);
    ASSERT_EQ(pp.b_seen, PING_ROUNDS);
    ASSERT(pp.b->done);
    ASSERT(!pp.a->done); /* a is still suspended in its last switch */
    fiber_free(pp.a);
    fiber_free(pp.b);
}

/* Many contexts passed around in a ring; each keeps its own state on its
 * own stack. */
#define RING 64
#define RING_LAPS 50

struct ring {
    struct fiber *f[RING];
    int order[RING * RING_LAPS];
    int n;
};

static void ring_fn(struct fiber *self)
{
    struct ring *r = self->arg;
    int me = -1;
    for (int i = 0; i < RING; i++)
        if (r->f[i] == self)
            me = i;
    ASSERT_GE(me, 0);
    int laps = 0; /* lives on this stack, across switches */
    for (;;) {
        r->order[r->n++] = me;
        laps++;
        if (laps == RING_LAPS && me == RING - 1)
            return; /* last one: back to main */
        fiber_switch(self, r->f[(me + 1) % RING]);
        ASSERT_LT(laps, RING_LAPS);
    }
}

TEST(many_contexts_round_robin)
{
    struct ring *r = calloc(1, sizeof *r);
    ASSERT_NOT_NULL(r);
    for (int i = 0; i < RING; i++)
        r->f[i] = fiber_new(32 * 1024, ring_fn, r);
    fiber_switch(&main_fiber, r->f[0]);
    ASSERT_EQ(r->n, RING * RING_LAPS);
    for (int i = 0; i < r->n; i++)
        ASSERT_EQ(r->order[i], i % RING);
    for (int i = 0; i < RING; i++)
        fiber_free(r->f[i]);
    free(r);
}

/* A stack that held a finished context can host a new one (the pool
 * reuses stacks this way). */
static void count_fn(struct fiber *self)
{
    (*(int *)self->arg)++;
}

TEST(remake_on_used_stack)
{
    int runs = 0;
    struct fiber *f = fiber_new(32 * 1024, count_fn, &runs);
    for (int i = 0; i < 100; i++) {
        if (i > 0) {
            /* Dirty the stack to make sure nothing relies on zeroes. */
            memset(f->lo, 0xA5, f->size);
            f->done = 0;
            weft__ctx_make(&f->ctx, f->lo, f->size, fiber_entry, f);
        }
        fiber_switch(&main_fiber, f);
        ASSERT(f->done);
        ASSERT_EQ(runs, i + 1);
    }
    fiber_free(f);
}

/* ----------------------------------------------------------------------
 * Callee-saved registers.
 * ---------------------------------------------------------------------- */

/*
 * weft_test_regs_probe(a, b, fn, seed): loads every callee-saved register
 * of the ABI with a pattern derived from seed, calls fn(a, b), and returns
 * a bit mask of the registers whose value changed (0: all preserved).  It
 * saves and restores them itself, so it is an ordinary function to C.
 */
uint32_t weft_test_regs_probe(void *a, void *b, void (*fn)(void *, void *),
                              uint64_t seed);

#if defined(__x86_64__)
#define PROBE_X86(reg, k, bit)                                               \
    "    movabsq $" #k ", %rdx\n"                                            \
    "    xorq    (%rsp), %rdx\n"                                             \
    "    cmpq    %rdx, %" #reg "\n"                                          \
    "    je      1f\n"                                                       \
    "    orl     $" #bit ", %eax\n"                                          \
    "1:\n"
#define LOAD_X86(reg, k)                                                     \
    "    movabsq $" #k ", %rax\n"                                            \
    "    xorq    %rcx, %rax\n"                                               \
    "    movq    %rax, %" #reg "\n"
__asm__(
    "    .pushsection .text\n"
    "    .globl  weft_test_regs_probe\n"
    "    .hidden weft_test_regs_probe\n"
    "    .type   weft_test_regs_probe, @function\n"
    "    .p2align 4\n"
    "weft_test_regs_probe:\n"
    "    pushq   %rbp\n"
    "    pushq   %rbx\n"
    "    pushq   %r12\n"
    "    pushq   %r13\n"
    "    pushq   %r14\n"
    "    pushq   %r15\n"
    "    pushq   %rcx\n" /* seed at (%rsp); rsp is now 16-aligned */
    LOAD_X86(rbx, 0x1111111111111111)
    LOAD_X86(rbp, 0x2222222222222222)
    LOAD_X86(r12, 0x3333333333333333)
    LOAD_X86(r13, 0x4444444444444444)
    LOAD_X86(r14, 0x5555555555555555)
    LOAD_X86(r15, 0x6666666666666666)
    "    callq   *%rdx\n"
    "    xorl    %eax, %eax\n"
    PROBE_X86(rbx, 0x1111111111111111, 1)
    PROBE_X86(rbp, 0x2222222222222222, 2)
    PROBE_X86(r12, 0x3333333333333333, 4)
    PROBE_X86(r13, 0x4444444444444444, 8)
    PROBE_X86(r14, 0x5555555555555555, 16)
    PROBE_X86(r15, 0x6666666666666666, 32)
    "    popq    %rcx\n"
    "    popq    %r15\n"
    "    popq    %r14\n"
    "    popq    %r13\n"
    "    popq    %r12\n"
    "    popq    %rbx\n"
    "    popq    %rbp\n"
    "    ret\n"
    "    .size   weft_test_regs_probe, .-weft_test_regs_probe\n"
    "    .popsection\n");
#define HAVE_PROBE 1
#elif defined(__aarch64__)
/* xN = seed + (N << 12) for x19..x29; dN holds the bits of
 * seed + ((100 + N) << 12) for d8..d15. */
#define LOAD_A64(reg, n) "    add     " #reg ", x3, #" #n ", lsl #12\n"
#define LOADD_A64(d, n)                                                      \
    "    add     x9, x3, #" #n ", lsl #12\n"                                 \
    "    fmov    " #d ", x9\n"
#define PROBE_A64(reg, n, bit)                                               \
    "    add     x9, x3, #" #n ", lsl #12\n"                                 \
    "    cmp     " #reg ", x9\n"                                             \
    "    b.eq    1f\n"                                                       \
    "    orr     w0, w0, #" #bit "\n"                                        \
    "1:\n"
#define PROBED_A64(d, n, bit)                                                \
    "    fmov    x10, " #d "\n"                                              \
    "    add     x9, x3, #" #n ", lsl #12\n"                                 \
    "    cmp     x10, x9\n"                                                  \
    "    b.eq    1f\n"                                                       \
    "    orr     w0, w0, #" #bit "\n"                                        \
    "1:\n"
__asm__(
    "    .pushsection .text\n"
    "    .globl  weft_test_regs_probe\n"
    "    .hidden weft_test_regs_probe\n"
    "    .type   weft_test_regs_probe, %function\n"
    "    .p2align 4\n"
    "weft_test_regs_probe:\n"
    "    stp     x29, x30, [sp, #-176]!\n"
    "    stp     x19, x20, [sp, #16]\n"
    "    stp     x21, x22, [sp, #32]\n"
    "    stp     x23, x24, [sp, #48]\n"
    "    stp     x25, x26, [sp, #64]\n"
    "    stp     x27, x28, [sp, #80]\n"
    "    stp     d8, d9, [sp, #96]\n"
    "    stp     d10, d11, [sp, #112]\n"
    "    stp     d12, d13, [sp, #128]\n"
    "    stp     d14, d15, [sp, #144]\n"
    "    str     x3, [sp, #160]\n"
    LOAD_A64(x19, 19) LOAD_A64(x20, 20) LOAD_A64(x21, 21)
    LOAD_A64(x22, 22) LOAD_A64(x23, 23) LOAD_A64(x24, 24)
    LOAD_A64(x25, 25) LOAD_A64(x26, 26) LOAD_A64(x27, 27)
    LOAD_A64(x28, 28) LOAD_A64(x29, 29)
    LOADD_A64(d8, 108) LOADD_A64(d9, 109) LOADD_A64(d10, 110)
    LOADD_A64(d11, 111) LOADD_A64(d12, 112) LOADD_A64(d13, 113)
    LOADD_A64(d14, 114) LOADD_A64(d15, 115)
    "    blr     x2\n"
    "    ldr     x3, [sp, #160]\n"
    "    mov     w0, #0\n"
    PROBE_A64(x19, 19, 0x1) PROBE_A64(x20, 20, 0x2)
    PROBE_A64(x21, 21, 0x4) PROBE_A64(x22, 22, 0x8)
    PROBE_A64(x23, 23, 0x10) PROBE_A64(x24, 24, 0x20)
    PROBE_A64(x25, 25, 0x40) PROBE_A64(x26, 26, 0x80)
    PROBE_A64(x27, 27, 0x100) PROBE_A64(x28, 28, 0x200)
    PROBE_A64(x29, 29, 0x400)
    PROBED_A64(d8, 108, 0x10000) PROBED_A64(d9, 109, 0x20000)
    PROBED_A64(d10, 110, 0x40000) PROBED_A64(d11, 111, 0x80000)
    PROBED_A64(d12, 112, 0x100000) PROBED_A64(d13, 113, 0x200000)
    PROBED_A64(d14, 114, 0x400000) PROBED_A64(d15, 115, 0x800000)
    "    ldp     x19, x20, [sp, #16]\n"
    "    ldp     x21, x22, [sp, #32]\n"
    "    ldp     x23, x24, [sp, #48]\n"
    "    ldp     x25, x26, [sp, #64]\n"
    "    ldp     x27, x28, [sp, #80]\n"
    "    ldp     d8, d9, [sp, #96]\n"
    "    ldp     d10, d11, [sp, #112]\n"
    "    ldp     d12, d13, [sp, #128]\n"
    "    ldp     d14, d15, [sp, #144]\n"
    "    ldp     x29, x30, [sp], #176\n"
    "    ret\n"
    "    .size   weft_test_regs_probe, .-weft_test_regs_probe\n"
    "    .popsection\n");
#define HAVE_PROBE 1
#endif

#if defined(HAVE_PROBE)
static void probe_switch(void *a, void *b)
{
    fiber_switch(a, b);
}

#define PROBE_ROUNDS 1000

struct probe_pair {
    struct fiber *a, *b;
    uint32_t bad_a, bad_b;
    int rounds_b;
};

static void probe_a(struct fiber *self)
{
    struct probe_pair *p = self->arg;
    for (uint64_t i = 0; i < PROBE_ROUNDS; i++)
        p->bad_a |= weft_test_regs_probe(p->a, p->b, probe_switch,
                                         0xA5A5000000000000ull + (i << 24));
}

static void probe_b(struct fiber *self)
{
    struct probe_pair *p = self->arg;
    for (uint64_t i = 0;; i++) {
        p->bad_b |= weft_test_regs_probe(p->b, p->a, probe_switch,
                                         0x5A5A000000000000ull + (i << 24));
        p->rounds_b++;
    }
}
#endif

/* Every callee-saved register (x86_64: rbx rbp r12-r15; aarch64: x19-x29,
 * d8-d15) holds its own context's value after a round trip through a
 * context that loaded different values into all of them. */
TEST(callee_saved_registers_exact)
{
#if !defined(HAVE_PROBE)
    SKIP("no register probe for this architecture");
#else
    struct probe_pair p;
    memset(&p, 0, sizeof p);
    p.a = fiber_new(64 * 1024, probe_a, &p);
    p.b = fiber_new(64 * 1024, probe_b, &p);
    uint32_t bad_main = weft_test_regs_probe(&main_fiber, p.a, probe_switch,
                                             0x0F0F0F0F00000000ull);
    ASSERT_EQ(bad_main, 0);
    ASSERT(p.a->done);
    ASSERT_EQ(p.rounds_b, PROBE_ROUNDS - 1);
    if (p.bad_a || p.bad_b)
        FAIL("callee-saved registers clobbered by a switch: mask a=0x%x "
             "b=0x%x", p.bad_a, p.bad_b);
    fiber_free(p.a);
    fiber_free(p.b);
#endif
}

/* The same from C: many values live across switches, which -O2 keeps in
 * callee-saved registers (and spills the rest to the stack). */
#define LIVE_ROUNDS 200

struct live_pair {
    struct fiber *a, *b;
    uint64_t result_a, result_b;
};

static __attribute__((noinline)) uint64_t
many_live(uint64_t seed, struct fiber *self, struct fiber *other)
{
    uint64_t a = seed * 0x9E3779B97F4A7C15ull + 1;
    uint64_t b = (seed ^ 0xD1B54A32D192ED03ull) * 3;
    uint64_t c = a + (b >> 7);
    uint64_t d = (a ^ b) * 0xBF58476D1CE4E5B9ull;
    uint64_t e = (c << 13) ^ d;
    uint64_t f = e + seed * 5;
    uint64_t g = f * 0x94D049BB133111EBull;
    uint64_t h = g ^ (a >> 3);
    uint64_t i = h + b * 7;
    uint64_t j = i ^ (c << 5);
    uint64_t k = j * 11 + d;
    uint64_t l = k ^ (e >> 11);
    for (int r = 0; r < LIVE_ROUNDS; r++) {
        if (other)
            fiber_switch(self, other);
        /* Every value is needed after the switch and changes each round. */
        a += l;
        b ^= a;
        c += b * 3;
        d ^= c >> 5;
        e += d;
        f ^= e << 9;
        g += f;
        h ^= g >> 17;
        i += h * 5;
        j ^= i;
        k += j >> 3;
        l ^= k * 13;
    }
    return a ^ b ^ c ^ d ^ e ^ f ^ g ^ h ^ i ^ j ^ k ^ l;
}

static void live_a(struct fiber *self)
{
    struct live_pair *p = self->arg;
    p->result_a = many_live(0x1234, p->a, p->b);
}

static void live_b(struct fiber *self)
{
    struct live_pair *p = self->arg;
    p->result_b = many_live(0x98765, p->b, p->a);
}

TEST(callee_saved_values_survive)
{
    struct live_pair p;
    memset(&p, 0, sizeof p);
    p.a = fiber_new(64 * 1024, live_a, &p);
    p.b = fiber_new(64 * 1024, live_b, &p);
    p.a->exit_to = p.b; /* a's last switch resumes b, whose last one ends */
    fiber_switch(&main_fiber, p.a);
    ASSERT(p.a->done && p.b->done);
    ASSERT_EQ(p.result_a, many_live(0x1234, NULL, NULL));
    ASSERT_EQ(p.result_b, many_live(0x98765, NULL, NULL));
    ASSERT_NE(p.result_a, p.result_b);
    fiber_free(p.a);
    fiber_free(p.b);
}

/* ----------------------------------------------------------------------
 * Floating point.
 * ---------------------------------------------------------------------- */

struct fp_pair {
    struct fiber *a, *b;
    double result_a, result_b;
};

/* Same function with and without switches, so contraction and rounding
 * are identical: the results must match bit for bit. */
static __attribute__((noinline)) double
many_doubles(double seed, struct fiber *self, struct fiber *other)
{
    double a = seed * 1.5 + 0.25, b = seed / 3.0, c = a * b - 1.0;
    double d = c * c + seed, e = d / (a + 2.0), f = e * 0.75 + b;
    double g = f - a * 0.5, h = g * g + 1.0, i = h / (c * c + 3.0);
    double j = i + d * 0.125, k = j * e, l = k - f * g;
    for (int r = 0; r < LIVE_ROUNDS; r++) {
        if (other)
            fiber_switch(self, other);
        a = a * 0.5 + l * 0.25;
        b = b * 0.5 + a * 0.125;
        c = c * 0.75 - b * 0.0625;
        d = d * 0.5 + c;
        e = e * 0.25 + d * 0.5;
        f = f * 0.5 - e * 0.125;
        g = g * 0.5 + f;
        h = h * 0.25 + g * 0.5;
        i = i * 0.5 + h * 0.25;
        j = j * 0.5 - i;
        k = k * 0.5 + j * 0.5;
        l = l * 0.25 + k * 0.5;
    }
    return a + b + c + d + e + f + g + h + i + j + k + l;
}

static void fp_a(struct fiber *self)
{
    struct fp_pair *p = self->arg;
    p->result_a = many_doubles(1.75, p->a, p->b);
}

static void fp_b(struct fiber *self)
{
    struct fp_pair *p = self->arg;
    p->result_b = many_doubles(-1234.5, p->b, p->a);
}

TEST(fp_values_survive)
{
    struct fp_pair p;
    memset(&p, 0, sizeof p);
    p.a = fiber_new(64 * 1024, fp_a, &p);
    p.b = fiber_new(64 * 1024, fp_b, &p);
    p.a->exit_to = p.b;
    fiber_switch(&main_fiber, p.a);
    ASSERT(p.a->done && p.b->done);
    double ea = many_doubles(1.75, NULL, NULL);
    double eb = many_doubles(-1234.5, NULL, NULL);
    ASSERT(memcmp(&p.result_a, &ea, sizeof ea) == 0);
    ASSERT(memcmp(&p.result_b, &eb, sizeof eb) == 0);
    ASSERT(ea != eb);
    fiber_free(p.a);
    fiber_free(p.b);
}

/* ---- Floating-point environment (rounding mode and friends). ---------- */

#if defined(__x86_64__)
static uint32_t get_mxcsr(void)
{
    uint32_t v;
    __asm__ volatile("stmxcsr %0" : "=m"(v));
    return v;
}

static void set_mxcsr(uint32_t v)
{
    __asm__ volatile("ldmxcsr %0" : : "m"(v));
}

static uint16_t get_x87cw(void)
{
    uint16_t v;
    __asm__ volatile("fnstcw %0" : "=m"(v));
    return v;
}

static void set_x87cw(uint16_t v)
{
    __asm__ volatile("fldcw %0" : : "m"(v));
}

/* Rounding control: MXCSR bits 13-14, x87 CW bits 10-11, same encoding. */
static int mxcsr_round(void)
{
    return (int)((get_mxcsr() >> 13) & 3);
}

static int x87_round(void)
{
    return (get_x87cw() >> 10) & 3;
}
#endif

/*
 * fesetround()/fegetround() live in libm, which the test programs do not
 * link; these do the same with the FE_* values of <fenv.h> on the two
 * architectures with an assembly switch.
 */
#if defined(__x86_64__)
#define HAVE_ROUND 1
static int set_round(int mode)
{
    /* x87 CW bits 10-11 and MXCSR bits 13-14 use the same encoding; the
     * FE_* values are the x87 ones. */
    set_x87cw((uint16_t)((get_x87cw() & ~0x0C00u) | (unsigned)mode));
    set_mxcsr((get_mxcsr() & ~0x6000u) | ((unsigned)mode << 3));
    return 0;
}

static int get_round(void)
{
    return get_x87cw() & 0x0C00;
}
#elif defined(__aarch64__)
#define HAVE_ROUND 1
static uint64_t get_fpcr(void)
{
    uint64_t v;
    __asm__ volatile("mrs %0, fpcr" : "=r"(v));
    return v;
}

static void set_fpcr(uint64_t v)
{
    __asm__ volatile("msr fpcr, %0" : : "r"(v));
}

static int set_round(int mode)
{
    set_fpcr((get_fpcr() & ~(uint64_t)0xC00000) | (uint64_t)mode);
    return 0;
}

static int get_round(void)
{
    return (int)(get_fpcr() & 0xC00000);
}
#else
static int set_round(int mode)
{
    (void)mode;
    return -1;
}

static int get_round(void)
{
    return -1;
}
#endif
#define fesetround set_round
#define fegetround get_round

#if defined(HAVE_ROUND)
/* What the current rounding mode does to 1/3, in double and (on x86_64,
 * where it is computed by the x87 unit) long double. */
static int mode_dir(void)
{
    int m = fegetround();
    return m == FE_UPWARD ? 1 : m == FE_DOWNWARD ? -1 : 0;
}

static int round_dir(void)
{
    /* Upward rounds 1/3 up and -1/3 toward zero, downward the opposite;
     * to nearest gives two values of the same magnitude. */
    volatile double one = 1.0, three = 3.0;
    volatile double third = one / three, neg = -one / three;
    if (under_valgrind())
        return mode_dir();
    if (third == -neg)
        return 0;
    return third > -neg ? 1 : -1; /* upward: +1, downward: -1 */
}

static int round_dir_long(void)
{
    volatile long double one = 1.0L, three = 3.0L;
    volatile long double third = one / three, neg = -one / three;
    if (under_valgrind())
        return mode_dir();
    if (third == -neg)
        return 0;
    return third > -neg ? 1 : -1;
}

struct fenv_state {
    struct fiber *f;
    int step;
    int fail;
    char why[128];
};

#define FENV_CHECK(st, cond)                                                 \
    do {                                                                     \
        if (!(cond) && !(st)->fail) {                                        \
            (st)->fail = __LINE__;                                           \
            snprintf((st)->why, sizeof (st)->why, "%s", #cond);              \
        }                                                                    \
    } while (0)

static void fenv_fn(struct fiber *self)
{
    struct fenv_state *st = self->arg;
    FENV_CHECK(st, fesetround(FE_UPWARD) == 0);
    FENV_CHECK(st, fegetround() == FE_UPWARD);
    st->step = 1;
    fiber_switch(self, &main_fiber);
    /* main changed its own mode to downward meanwhile. */
    FENV_CHECK(st, fegetround() == FE_UPWARD);
    FENV_CHECK(st, round_dir() == 1);
    FENV_CHECK(st, round_dir_long() == 1);
#if defined(__x86_64__)
    FENV_CHECK(st, mxcsr_round() == 2); /* 2 = up */
    FENV_CHECK(st, x87_round() == 2);
    /* Flush-to-zero is per context too. */
    set_mxcsr(get_mxcsr() | 0x8000u);
#endif
    st->step = 2;
    fiber_switch(self, &main_fiber);
    FENV_CHECK(st, fegetround() == FE_UPWARD);
#if defined(__x86_64__)
    FENV_CHECK(st, (get_mxcsr() & 0x8000u) != 0 || under_valgrind());
#endif
    FENV_CHECK(st, fesetround(FE_TONEAREST) == 0);
    st->step = 3;
}

#endif

/* Each context has its own rounding mode (MXCSR and x87 control word on
 * x86_64, FPCR on aarch64): a mode set in one is not seen in another. */
TEST(fp_env_is_per_context)
{
#if !defined(HAVE_ROUND)
    SKIP("no rounding-mode access for this architecture");
#else
    struct fenv_state st;
    memset(&st, 0, sizeof st);
    ASSERT_OK(fesetround(FE_TONEAREST));
    st.f = fiber_new(64 * 1024, fenv_fn, &st);
    fiber_switch(&main_fiber, st.f);
    ASSERT_EQ(st.step, 1);
    ASSERT_EQ(fegetround(), FE_TONEAREST);
    ASSERT_EQ(round_dir(), 0);
    ASSERT_EQ(round_dir_long(), 0);
#if defined(__x86_64__)
    ASSERT_EQ(mxcsr_round(), 0);
    ASSERT_EQ(x87_round(), 0);
#endif
    ASSERT_OK(fesetround(FE_DOWNWARD));
    fiber_switch(&main_fiber, st.f);
    ASSERT_EQ(st.step, 2);
    ASSERT_EQ(fegetround(), FE_DOWNWARD);
    ASSERT_EQ(round_dir(), -1);
    ASSERT_EQ(round_dir_long(), -1);
#if defined(__x86_64__)
    ASSERT_EQ(mxcsr_round(), 1); /* 1 = down */
    ASSERT_EQ(x87_round(), 1);
    ASSERT_EQ(get_mxcsr() & 0x8000u, 0); /* the fiber's FTZ stayed there */
#endif
    fiber_switch(&main_fiber, st.f);
    ASSERT_EQ(st.step, 3);
    ASSERT(st.f->done);
    ASSERT_EQ(fegetround(), FE_DOWNWARD);
    ASSERT_OK(fesetround(FE_TONEAREST));
    if (st.fail)
        FAIL("in the context (line %d): %s", st.fail, st.why);
    fiber_free(st.f);
#endif
}

#if defined(HAVE_ROUND) && !defined(WEFT_CTX_UCONTEXT)
static void fenv_default_fn(struct fiber *self)
{
    struct fenv_state *st = self->arg;
    FENV_CHECK(st, fegetround() == FE_TONEAREST);
    FENV_CHECK(st, round_dir() == 0);
    FENV_CHECK(st, round_dir_long() == 0);
#if defined(__x86_64__)
    /* The ABI's initial values: all exceptions masked, round to nearest,
     * no FTZ/DAZ; x87 extended precision.  (Status flags are not control
     * state: ignore MXCSR bits 0-5.) */
    FENV_CHECK(st, (get_mxcsr() & ~0x3Fu) == 0x1F80u);
    FENV_CHECK(st, get_x87cw() == 0x037F);
#endif
    st->step = 1;
}
#endif

/* A new context starts with the ABI's default floating-point control
 * state, whatever its creator had set (asm backends; makecontext copies
 * the creator's). */
TEST(new_context_has_default_fp_env)
{
#if defined(WEFT_CTX_UCONTEXT)
    SKIP("ucontext: a new context inherits getcontext()'s environment");
#elif !defined(HAVE_ROUND)
    SKIP("no rounding-mode access for this architecture");
#else
    struct fenv_state st;
    memset(&st, 0, sizeof st);
    ASSERT_OK(fesetround(FE_UPWARD));
#if defined(__x86_64__)
    uint32_t mx = get_mxcsr();
    uint16_t cw = get_x87cw();
    set_mxcsr(mx | 0x8040u);                 /* FTZ and DAZ */
    set_x87cw((uint16_t)(get_x87cw() & ~0x0300u)); /* single precision */
#endif
    st.f = fiber_new(64 * 1024, fenv_default_fn, &st);
    fiber_switch(&main_fiber, st.f);
    ASSERT_EQ(st.step, 1);
    ASSERT(st.f->done);
    /* Ours is untouched. */
    ASSERT_EQ(fegetround(), FE_UPWARD);
#if defined(__x86_64__)
    if (!under_valgrind()) { /* it keeps only the rounding bits */
        ASSERT_EQ(get_mxcsr() & 0x8040u, 0x8040u);
        ASSERT_EQ(get_x87cw() & 0x0300u, 0);
    }
    set_mxcsr(mx);
    set_x87cw(cw);
#endif
    ASSERT_OK(fesetround(FE_TONEAREST));
    if (st.fail)
        FAIL("in the context (line %d): %s", st.fail, st.why);
    fiber_free(st.f);
#endif
}

/* ----------------------------------------------------------------------
 * Stack alignment.
 * ---------------------------------------------------------------------- */

struct align_state {
    uintptr_t frame, local, nested_frame, nested_local;
    uintptr_t lo, hi;
};

static __attribute__((noinline)) void align_nested(struct align_state *st)
{
    _Alignas(16) volatile char buf[16];
    buf[0] = 1;
    st->nested_frame = (uintptr_t)__builtin_frame_address(0);
    st->nested_local = (uintptr_t)buf;
}

static void align_entry(void *p)
{
    _Alignas(16) volatile char buf[16];
    struct align_state *st = p;
    entered();
    buf[0] = 1;
    st->frame = (uintptr_t)__builtin_frame_address(0);
    st->local = (uintptr_t)buf;
    align_nested(st);
    fiber_exit(&(struct fiber){ .ctx = raw_ctx }, &main_fiber);
}

/* The entry function (and what it calls) sees the stack aligned as the ABI
 * requires at a call: the frame address and an _Alignas(16) local are
 * 16-aligned, even when the top of the stack given to weft__ctx_make is
 * not. */
TEST(entry_stack_is_aligned)
{
    static const size_t cut[] = { 0, 1, 7, 8, 9, 15, 16, 24, 4095 };
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
        struct align_state st;
        memset(&st, 0, sizeof st);
        struct fiber *f = fiber_alloc(64 * 1024);
        size_t size = f->size - cut[i];
        weft__ctx_make(&f->ctx, f->lo, size, align_entry, &st);
        fiber_switch(&main_fiber, f);
        ASSERT_NE(st.frame, 0);
        ASSERT_EQ(st.frame % 16, 0);
        ASSERT_EQ(st.local % 16, 0);
        ASSERT_EQ(st.nested_frame % 16, 0);
        ASSERT_EQ(st.nested_local % 16, 0);
        /* It ran on the stack it was given, below the top given. */
        ASSERT_GT(st.local, (uintptr_t)f->lo);
        ASSERT_LT(st.local, (uintptr_t)f->lo + size);
        ASSERT_GT(st.nested_local, (uintptr_t)f->lo);
        ASSERT_LT(st.nested_local, (uintptr_t)f->lo + size);
        fiber_free(f);
    }
}

/* ----------------------------------------------------------------------
 * Deep recursion.
 * ---------------------------------------------------------------------- */

struct deep {
    struct fiber *f;
    uintptr_t min_addr;
    int bottom_reached;
    uint64_t result;
};

static __attribute__((noinline)) uint64_t recurse(struct deep *d, int n)
{
    volatile unsigned char buf[1024];
    for (size_t i = 0; i < sizeof buf; i += 128)
        buf[i] = (unsigned char)(n + i);
    if ((uintptr_t)buf < d->min_addr)
        d->min_addr = (uintptr_t)buf;
    uint64_t r;
    if (n == 0) {
        d->bottom_reached = 1;
        /* Switch away at the deepest point and come back. */
        fiber_switch(d->f, &main_fiber);
        r = 1;
    } else {
        r = recurse(d, n - 1);
    }
    /* Not a tail call: the frame is used after the call returns. */
    uint64_t sum = 0;
    for (size_t i = 0; i < sizeof buf; i += 128)
        sum += buf[i];
    return r * 3 + sum;
}

static uint64_t recurse_expected(int n)
{
    uint64_t r = 1;
    for (int k = 0; k <= n; k++) {
        uint64_t sum = 0;
        for (size_t i = 0; i < 1024; i += 128)
            sum += (unsigned char)(k + i);
        r = r * 3 + sum;
    }
    return r;
}

#define DEEP_LEVELS 200

static void deep_fn(struct fiber *self)
{
    struct deep *d = self->arg;
    d->result = recurse(d, DEEP_LEVELS);
}

/* 200 frames of over 1 KiB each on a 256 KiB stack: the stack really is
 * that big, and the values of every frame survive a switch made from the
 * deepest one. */
TEST(deep_recursion_256k)
{
    struct deep d;
    memset(&d, 0, sizeof d);
    d.min_addr = UINTPTR_MAX;
    d.f = fiber_new(256 * 1024, deep_fn, &d);
    fiber_switch(&main_fiber, d.f);
    ASSERT(d.bottom_reached);
    ASSERT(!d.f->done);
    /* Scribble on main's stack while the context is suspended. */
    volatile char noise[4096];
    memset((char *)noise, 0x5A, sizeof noise);
    fiber_switch(&main_fiber, d.f);
    ASSERT(d.f->done);
    ASSERT_EQ(d.result, recurse_expected(DEEP_LEVELS));
    /* It used more than 200 KiB of the stack, all of it inside. */
    uintptr_t top = (uintptr_t)d.f->lo + d.f->size;
    ASSERT_GE(d.min_addr, (uintptr_t)d.f->lo);
    ASSERT_GT(top - d.min_addr, (uintptr_t)DEEP_LEVELS * 1024);
    fiber_free(d.f);
}

/* ----------------------------------------------------------------------
 * Unwinding.
 * ---------------------------------------------------------------------- */

struct bt_state {
    int n;
};

static __attribute__((noinline)) void bt_fn(struct fiber *self)
{
    struct bt_state *st = self->arg;
    void *frames[128];
    st->n = backtrace(frames, 128);
}

/* An unwinder walking up from inside a context stops at its outermost
 * frame (the trampoline's CFI) instead of running off the stack. */
TEST(backtrace_stops_at_context_entry)
{
    void *frames[128];
    if (backtrace(frames, 128) <= 0)
        SKIP("backtrace() does not work in this build");
    struct bt_state st = { 0 };
    struct fiber *f = fiber_new(64 * 1024, bt_fn, &st);
    fiber_switch(&main_fiber, f);
    ASSERT(f->done);
    /* bt_fn, fiber_entry, the trampoline: a few frames, not 128. */
    ASSERT_GE(st.n, 2);
    ASSERT_LT(st.n, 16);
    fiber_free(f);
}

/* ----------------------------------------------------------------------
 * The signal mask belongs to the thread, not to a context.
 * ---------------------------------------------------------------------- */

static int usr1_blocked(void)
{
    sigset_t cur;
    ASSERT_OK(pthread_sigmask(SIG_SETMASK, NULL, &cur));
    return sigismember(&cur, SIGUSR1);
}

static void mask_fn(struct fiber *self)
{
    int *seen = self->arg;
    seen[0] = usr1_blocked(); /* blocked by main before the first entry */
    fiber_switch(self, &main_fiber);
    seen[1] = usr1_blocked(); /* main unblocked it meanwhile */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    ASSERT_OK(pthread_sigmask(SIG_BLOCK, &set, NULL)); /* seen by main */
}

TEST(signal_mask_is_the_threads_not_the_contexts)
{
    int seen[2] = {-1, -1};
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    ASSERT_OK(pthread_sigmask(SIG_BLOCK, &set, &old));
    struct fiber *f = fiber_new(64 * 1024, mask_fn, seen);
    fiber_switch(&main_fiber, f);
    ASSERT_EQ(seen[0], 1);
    ASSERT_OK(pthread_sigmask(SIG_UNBLOCK, &set, NULL));
    fiber_switch(&main_fiber, f);
    ASSERT(f->done);
    ASSERT_EQ(seen[1], 0);
    ASSERT_EQ(usr1_blocked(), 1);
    ASSERT_OK(pthread_sigmask(SIG_SETMASK, &old, NULL));
    fiber_free(f);
}
