/*
 * util.h - helpers shared by the test programs of the synchronisation
 * modules: a manual-clock scheduler, an event trace, spawn and reap with
 * assertions.  static inline, so a program that uses only some of them
 * compiles cleanly under -Werror.
 */
#ifndef WEFT_TEST_UTIL_H
#define WEFT_TEST_UTIL_H

#include "test.h"

static inline weft_sched *new_manual(void)
{
    struct weft_sched_opts o;
    weft_sched *s = NULL;
    memset(&o, 0, sizeof o);
    o.clock = WEFT_CLOCK_MANUAL;
    ASSERT_OK(weft_sched_new(&o, &s));
    return s;
}

/* A short trace of events, one character each, for checking order. */
static char trace[256];
static size_t ntrace;

static inline void trace_reset(void)
{
    ntrace = 0;
    trace[0] = 0;
}

static inline void trace_add(char c)
{
    ASSERT_LT(ntrace, sizeof trace - 1);
    trace[ntrace++] = c;
    trace[ntrace] = 0;
}

static inline weft_coro *go(weft_sched *s, weft_fn fn, void *arg)
{
    weft_coro *co;
    ASSERT_OK(weft_spawn(s, fn, arg, NULL, &co));
    return co;
}

static inline void reap(weft_coro *co)
{
    int st = 1;
    ASSERT_OK(weft_reap(co, &st));
    ASSERT_OK(st);
}

#endif /* WEFT_TEST_UTIL_H */
