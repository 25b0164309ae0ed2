/*
 * ucontext.c - portable context switch on makecontext/swapcontext.
 *
 * The fallback for ABIs without an assembly switch (build with
 * WEFT_CTX=ucontext).  swapcontext saves and restores the signal mask, a
 * system call per switch, so it is one to two orders of magnitude slower
 * than the assembly versions; it is kept for portability and tested in CI.
 */
#include "ctx/ctx.h"

#if defined(WEFT_CTX_UCONTEXT)

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void weft__ctx_switch(weft__ctx *from, weft__ctx *to)
{
    if (swapcontext(&from->uc, &to->uc) != 0)
        abort(); /* only fails for invalid contexts: state is corrupt */
}

/* makecontext passes int arguments only: split the pointers in halves. */
static void uc_entry(unsigned int fhi, unsigned int flo, unsigned int ahi,
                     unsigned int alo)
{
    void (*entry)(void *) = (void (*)(void *))(uintptr_t)(
        ((uint64_t)fhi << 32) | (uint64_t)flo);
    void *arg = (void *)(uintptr_t)(((uint64_t)ahi << 32) | (uint64_t)alo);
    entry(arg);
    abort(); /* entry must not return */
}

void weft__ctx_make(weft__ctx *ctx, void *lo, size_t size,
                    void (*entry)(void *), void *arg)
{
    uint64_t f = (uint64_t)(uintptr_t)entry, a = (uint64_t)(uintptr_t)arg;
    memset(ctx, 0, sizeof *ctx);
    if (getcontext(&ctx->uc) != 0)
        abort();
    ctx->uc.uc_stack.ss_sp = lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = NULL;
    makecontext(&ctx->uc, (void (*)(void))uc_entry, 4,
                (unsigned int)(f >> 32), (unsigned int)f,
                (unsigned int)(a >> 32), (unsigned int)a);
}

#else
/* ISO C wants at least one declaration per translation unit. */
typedef int weft__ctx_unused_tu;
#endif
