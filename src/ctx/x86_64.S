/*
 * x86_64.S - context switch for the System V AMD64 ABI.
 *
 * Saves the callee-saved registers (rbx, rbp, r12-r15), the MXCSR control
 * bits and the x87 control word on the stack being left, stores rsp in
 * from->sp, loads to->sp and restores the same frame from there, then
 * returns with ret.
 *
 * Why ret and not pop+jmp: every switch in weft goes through one call site
 * (do_switch() in sched.c), so the return address that the call pushed on
 * the return-stack buffer is the one the other context resumes at, and
 * ret is predicted.  A jmp leaves that RSB entry unconsumed, and every
 * later ret in the resumed coroutine then mispredicts.  Measured here
 * (2 coroutines yielding through the scheduler, 10M yields, 5 runs side
 * by side): 15-28 ns per yield with ret against 38-46 ns with jmp.  The
 * jmp wins only in micro-benchmarks whose two sides call the switch from
 * different places (shared/PERF-NOTES.md), which weft never does.
 *
 * Saved frame, from the saved sp upwards:
 *   0: mxcsr (4 bytes)  4: x87 cw (2 bytes)  8: r15  16: r14  24: r13
 *   32: r12  40: rbx  48: rbp  56: return address
 * Every suspended context has this layout, so the CFI below stays true on
 * whichever stack is current and debuggers can unwind through a switch.
 */
    .text

/* void weft__ctx_switch(weft__ctx *from [rdi], weft__ctx *to [rsi]) */
    .globl  weft__ctx_switch
    .hidden weft__ctx_switch
    .type   weft__ctx_switch, @function
    .p2align 4
weft__ctx_switch:
    .cfi_startproc
    pushq   %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r14, 0
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r15, 0
    subq    $8, %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw  4(%rsp)

    movq    %rsp, (%rdi)
    movq    (%rsi), %rsp

    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq    %r15
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r15
    popq    %r14
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r14
    popq    %r13
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r13
    popq    %r12
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r12
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    popq    %rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbp
    ret
    .cfi_endproc
    .size   weft__ctx_switch, .-weft__ctx_switch

/*
 * First code a new context runs: r12 holds entry, r13 its argument (both
 * placed in the initial frame by weft__ctx_make).  rip is marked undefined
 * so unwinders stop here: this is the outermost frame of a coroutine.
 */
    .globl  weft__ctx_trampoline
    .hidden weft__ctx_trampoline
    .type   weft__ctx_trampoline, @function
    .p2align 4
weft__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined %rip
    movq    %r13, %rdi
    callq   *%r12
    ud2
    .cfi_endproc
    .size   weft__ctx_trampoline, .-weft__ctx_trampoline

    .section .note.GNU-stack, "", @progbits
