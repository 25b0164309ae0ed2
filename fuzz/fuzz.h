/*
 * fuzz.h - what the libFuzzer harnesses of fuzz/ share: reading the
 * input as a stream of small numbers, checks that abort with a message
 * (libFuzzer then saves the input as crash-*), and a scheduler with a
 * manual clock.
 *
 * Harnesses run in-process, once per input, thousands of times a second:
 * each one creates everything it uses and frees it before returning, and
 * checks with weft__test_live_allocs() that the library kept nothing.
 */
#ifndef WEFT_FUZZ_H
#define WEFT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Test hooks of src/alloc.c. */
long weft__test_live_allocs(void);
void weft__test_fail_alloc(long n, int sticky);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            abort();                                                         \
        }                                                                    \
    } while (0)

#define CHECK_EQ(a, b)                                                       \
    do {                                                                     \
        long long fz_a_ = (long long)(a), fz_b_ = (long long)(b);            \
        if (fz_a_ != fz_b_) {                                                \
            fprintf(stderr, "%s:%d: check failed: %s == %s (%lld != %lld)\n", \
                    __FILE__, __LINE__, #a, #b, fz_a_, fz_b_);               \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* The input, consumed front to back.  Past the end every read is 0 and
 * fz_more() is false. */
struct fz_in {
    const uint8_t *p;
    size_t n;
};

static inline int fz_more(const struct fz_in *in)
{
    return in->n > 0;
}

static inline unsigned fz_u8(struct fz_in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

/* 0 .. n-1 */
static inline unsigned fz_pick(struct fz_in *in, unsigned n)
{
    return n ? fz_u8(in) % n : 0;
}

static inline weft_sched *fz_sched(void)
{
    struct weft_sched_opts o;
    memset(&o, 0, sizeof o);
    o.clock = WEFT_CLOCK_MANUAL;
    o.backend = WEFT_BACKEND_POLL;  /* no kernel object to set up */
    o.guard = WEFT_GUARD_CANARY;    /* slabs: few mappings per input */
    o.no_overflow_handler = 1;      /* leave SIGSEGV to the sanitizers */
    weft_sched *s = NULL;
    if (weft_sched_new(&o, &s) < 0) {
        fprintf(stderr, "fuzz: weft_sched_new failed\n");
        abort();
    }
    return s;
}

#endif
