/*
 * backends.h - the I/O backends available on this machine, for tests that
 * run each case on every one of them.  io_uring is listed only where the
 * build has it and the kernel allows it (a refused io_uring is a skip, not
 * a failure).
 */
#ifndef WEFT_TEST_BACKENDS_H
#define WEFT_TEST_BACKENDS_H

#include "weft.h"

#if defined(WEFT_HAVE_VALGRIND)
#include <valgrind/valgrind.h>
#endif

/* Fills out[] (room for 3) and returns how many. */
static inline int weft_test_backends(int out[3])
{
    static int uring = -1; /* probed once */
    int n = 0;
    if (uring < 0) {
        struct weft_sched_opts o = {0};
        weft_sched *s;
        o.backend = WEFT_BACKEND_URING;
        uring = weft_sched_new(&o, &s) == 0;
#if defined(WEFT_HAVE_VALGRIND)
        /* Under Valgrind io_uring waits block every thread (see io.c). */
        if (uring && RUNNING_ON_VALGRIND) {
            weft_sched_free(s);
            uring = 0;
        }
#endif
        if (uring)
            weft_sched_free(s);
    }
    if (uring)
        out[n++] = WEFT_BACKEND_URING;
    out[n++] = WEFT_BACKEND_EPOLL;
    out[n++] = WEFT_BACKEND_POLL;
    return n;
}

#endif
