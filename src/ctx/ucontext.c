/*
 * ucontext.c - portable context switch: makecontext to create,
 * sigsetjmp/siglongjmp to switch (QEMU's coroutine-ucontext approach).
 *
 * The fallback for ABIs without an assembly switch (build with
 * WEFT_CTX=ucontext).  swapcontext is not used to switch: it saves and
 * restores the signal mask, which costs a system call per switch and, worse,
 * makes the mask a property of each coroutine, so a coroutine that blocks a
 * signal (weft_signal_wait does) would see it unblocked again after the next
 * switch.  sigsetjmp(buf, 0) leaves the mask alone: it stays the thread's.
 * A new context is entered once with setcontext, after copying the thread's
 * current mask into it for the same reason.
 *
 * sigsetjmp does not keep the floating-point control modes (rounding, the
 * x87 control word, MXCSR control bits), which the ABI has callers rely on
 * across a call; fegetmode/fesetmode keep them per context, as the
 * assembly switches do, and a new context starts with the default modes.
 */
#include "ctx/ctx.h"

#if defined(WEFT_CTX_UCONTEXT)

#include <fenv.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void weft__ctx_switch(weft__ctx *from, weft__ctx *to)
{
    (void)fegetmode(&from->fm);
    if (sigsetjmp(from->jb, 0) != 0) {
        (void)fesetmode(&from->fm); /* resumed: our modes back */
        return;
    }
    if (to->fresh) {
        to->fresh = 0;
        (void)pthread_sigmask(SIG_SETMASK, NULL, &to->uc.uc_sigmask);
        setcontext(&to->uc);
        abort(); /* setcontext only returns on failure */
    }
    siglongjmp(to->jb, 1);
}

/* makecontext passes int arguments only: split the pointers in halves. */
static void uc_entry(unsigned int fhi, unsigned int flo, unsigned int ahi,
                     unsigned int alo)
{
    void (*entry)(void *) = (void (*)(void *))(uintptr_t)(
        ((uint64_t)fhi << 32) | (uint64_t)flo);
    void *arg = (void *)(uintptr_t)(((uint64_t)ahi << 32) | (uint64_t)alo);
    (void)fesetmode(FE_DFL_MODE);
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
    ctx->fresh = 1;
}

#else
/* ISO C wants at least one declaration per translation unit. */
typedef int weft__ctx_unused_tu;
#endif
