/*
 * ctx.h - the machine-context contract: one switch, one constructor.
 *
 * Implemented once per ABI (x86_64.S, aarch64.S) and once portably
 * (ucontext.c, selected with WEFT_CTX_UCONTEXT).  The assembly versions
 * save exactly the callee-saved state of their ABI on the stack being left
 * and keep only the stack pointer in the context.
 */
#ifndef WEFT_CTX_H
#define WEFT_CTX_H

#include <stddef.h>

#if defined(WEFT_CTX_UCONTEXT)
#include <fenv.h>
#include <setjmp.h>
#include <ucontext.h>
typedef struct weft__ctx {
    sigjmp_buf jb;  /* where a suspended context resumes */
    femode_t fm;    /* its floating-point control modes */
    ucontext_t uc;  /* only to enter a new context the first time */
    int fresh;      /* made, never entered */
} weft__ctx;
#else
typedef struct weft__ctx {
    void *sp; /* saved stack pointer; the rest lives on that stack */
} weft__ctx;
#endif

/*
 * Save the running context into *from and resume *to.  Returns when some
 * later switch resumes *from.  from and to must differ.
 */
void weft__ctx_switch(weft__ctx *from, weft__ctx *to);

/*
 * Prepare *ctx so that the first switch into it calls entry(arg) on the
 * stack [lo, lo + size).  entry must never return (it switches away for
 * good instead).  size must leave room for one small frame.
 */
void weft__ctx_make(weft__ctx *ctx, void *lo, size_t size,
                    void (*entry)(void *), void *arg);

#endif /* WEFT_CTX_H */
