/*
 * make.c - builds the first frame of a new context for the assembly
 * switches (x86_64.S, aarch64.S); the ucontext backend has its own.
 */
#include "ctx/ctx.h"

#if !defined(WEFT_CTX_UCONTEXT)

#include <stdint.h>
#include <string.h>

void weft__ctx_trampoline(void);

void weft__ctx_make(weft__ctx *ctx, void *lo, size_t size,
                    void (*entry)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* The trampoline is entered by jmp with rsp == top - 16 (16-aligned,
     * as a call site needs); [top-16, top) stays zero: a null return
     * address for unwinders. */
    uint64_t *f = (uint64_t *)(top - 16 - 64);
    memset(f, 0, 64 + 16);
    f[0] = 0x1F80u | ((uint64_t)0x037Fu << 32); /* mxcsr, x87 cw: ABI defaults */
    f[3] = (uint64_t)(uintptr_t)arg;            /* r13 */
    f[4] = (uint64_t)(uintptr_t)entry;          /* r12 */
    f[7] = (uint64_t)(uintptr_t)weft__ctx_trampoline;
    ctx->sp = f;
#elif defined(__aarch64__)
    uint64_t *f = (uint64_t *)(top - 16 - 176);
    memset(f, 0, 176 + 16);
    f[0] = (uint64_t)(uintptr_t)entry;          /* x19 */
    f[1] = (uint64_t)(uintptr_t)arg;            /* x20 */
    f[11] = (uint64_t)(uintptr_t)weft__ctx_trampoline; /* x30 */
    f[20] = 0;                                  /* fpcr: default modes */
    ctx->sp = f;
#else
#error "no assembly context switch for this architecture; build with WEFT_CTX=ucontext"
#endif
}

#else
/* ISO C wants at least one declaration per translation unit. */
typedef int weft__ctx_unused_tu;
#endif
