/*
 * alloc.c - the library's allocation functions, with a test hook that
 * makes a chosen allocation fail (fault injection).
 */
#include <stdlib.h>

#include "internal.h"

/* Allocations left before the injected failure; negative: never fail.
 * Thread-local so that tests on different threads do not interfere. */
static _Thread_local long fail_countdown = -1;

/*
 * Test hook (declared in tests, not in weft.h): make the allocation after
 * the next n succeed... i.e. n == 0 fails the very next allocation, n == 2
 * lets two succeed and fails the third; n < 0 disables.  The failure is
 * persistent until the hook is called again, so a scenario sees every
 * later allocation fail too when `sticky` is non-zero.
 */
static _Thread_local int fail_sticky;

void weft__test_fail_alloc(long n, int sticky);
void weft__test_fail_alloc(long n, int sticky)
{
    fail_countdown = n;
    fail_sticky = sticky;
}

/* Test hook: blocks obtained through these functions and not yet freed,
 * on this thread (a leak check that works whatever malloc caches). */
static _Thread_local long live_allocs;

long weft__test_live_allocs(void);
long weft__test_live_allocs(void)
{
    return live_allocs;
}

/* Test hook: allocations (and stack mappings) attempted on this thread,
 * failed ones included; a test counts those of a scenario, then walks an
 * injected failure over each of them. */
static _Thread_local long attempts;

long weft__test_alloc_count(void);
long weft__test_alloc_count(void)
{
    return attempts;
}

static int should_fail(void)
{
    attempts++;
    if (weft__likely(fail_countdown < 0))
        return 0;
    if (fail_countdown == 0) {
        if (!fail_sticky)
            fail_countdown = -1;
        return 1;
    }
    fail_countdown--;
    return 0;
}

void *weft__malloc(size_t n)
{
    void *r = should_fail() ? NULL : malloc(n);
    live_allocs += r != NULL;
    return r;
}

void *weft__calloc(size_t n, size_t m)
{
    void *r = should_fail() ? NULL : calloc(n, m);
    live_allocs += r != NULL;
    return r;
}

void *weft__realloc(void *p, size_t n)
{
    void *r = should_fail() ? NULL : realloc(p, n);
    live_allocs += !p && r;
    return r;
}

void weft__free(void *p)
{
    live_allocs -= p != NULL;
    free(p);
}

/* Shared by the stack allocator: 1 when the next mmap should fail. */
int weft__test_should_fail_map(void);
int weft__test_should_fail_map(void)
{
    return should_fail();
}
