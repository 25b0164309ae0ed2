/*
 * stack.c - coroutine stacks: private anonymous mappings, lazily committed,
 * pooled per size for reuse, with a guard page while the process can
 * afford one and a zero canary beyond that.
 *
 * Why two kinds: a guard page splits a mapping, so a guarded stack costs
 * two kernel VMAs, and vm.max_map_count (65530 by default) would cap a
 * process near 32,000 coroutines.  weft gives guard pages to the first
 * stacks, up to a process-wide budget of a quarter of max_map_count (half
 * the limit's VMAs), and carves the rest from slabs: one mapping holding
 * many stacks, one VMA for all of them.  A slab stack has no guard page; its
 * lowest WEFT__CANARY_BYTES must stay zero (the kernel hands them out
 * zeroed and a stack that deep is treated as overflowed), and the scheduler
 * checks them each time it switches away from the coroutine, aborting with
 * a report that names it.  A canary catches an overflow late (at the next
 * switch) and can miss a frame that jumps over it entirely; a guard page
 * catches it at the faulting instruction.  See docs/stacks.md.
 *
 * Pooling: freed stacks are kept warm (pages still resident) up to the
 * pool's cache size per size class, so spawn-heavy code reuses hot memory
 * without system calls.  Beyond that a guarded stack is unmapped at once
 * (it holds two of the process's scarce VMAs), while a slab stack stays
 * warm until the scheduler is next idle: weft__stack_trim(), called just
 * before the loop waits, gives its pages back with MADV_DONTNEED and keeps
 * it as a cold stack, reusable without a new mapping.  A burst of
 * coroutines that all end while the loop is busy thus costs no system
 * call per stack (one madvise each, about 3 us here, was most of the cost
 * of 100k coroutines sleeping and ending), and its stacks serve the next
 * burst warm; the memory goes back when there is time for it.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#if defined(WEFT_HAVE_VALGRIND)
#include <valgrind/valgrind.h>
#define VG_REGISTER(lo, hi) VALGRIND_STACK_REGISTER(lo, hi)
#define VG_DEREGISTER(id) VALGRIND_STACK_DEREGISTER(id)
#else
#define VG_REGISTER(lo, hi) ((void)(lo), (void)(hi), 0u)
#define VG_DEREGISTER(id) ((void)(id))
#endif

#ifndef MAP_STACK
#define MAP_STACK 0
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif

int weft__test_should_fail_map(void);

/* A free warm stack keeps this record in its own top bytes. */
struct freenode {
    struct freenode *next;
    struct weft__stack st;
};

struct weft__stack_class {
    size_t size;
    struct freenode *warm;
    size_t nwarm;
    struct weft__stack *cold; /* array: cold stacks (no resident pages) */
    size_t ncold, capcold;
    char *slab_next;          /* bump pointer into the newest slab */
    size_t slab_left;         /* stacks left to carve from it */
};

struct weft__slab {
    struct weft__slab *next;
    void *base;
    size_t len;
};

/* Bytes per slab (a whole number of stacks, at least one). */
#define SLAB_BYTES ((size_t)4 << 20)

static atomic_long guarded_live;
static long guard_budget = -1;

size_t weft__page_size(void)
{
    static size_t page;
    if (!page) {
        long p = sysconf(_SC_PAGESIZE);
        page = p > 0 ? (size_t)p : 4096;
    }
    return page;
}

static long read_guard_budget(void)
{
    long max = 65530;
    int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[32];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0) {
            buf[n] = 0;
            long v = strtol(buf, NULL, 10);
            if (v > 0)
                max = v;
        }
    }
    /* Two VMAs per guarded stack, and half the limit left to the rest of
     * the program. */
    return max / 4;
}

static long budget(void)
{
    if (guard_budget < 0)
        guard_budget = read_guard_budget(); /* idempotent if it races */
    return guard_budget;
}

void weft__stackpool_init(struct weft__stackpool *p, int guard, size_t cache)
{
    memset(p, 0, sizeof *p);
    p->guard = guard;
    p->cache = cache;
}

static struct weft__stack_class *find_class(struct weft__stackpool *p,
                                            size_t size, int add)
{
    for (uint32_t i = 0; i < p->nclasses; i++)
        if (p->classes[i].size == size)
            return &p->classes[i];
    if (!add)
        return NULL;
    struct weft__stack_class *c =
        weft__realloc(p->classes, (p->nclasses + 1) * sizeof *c);
    if (!c)
        return NULL;
    p->classes = c;
    c = &p->classes[p->nclasses++];
    memset(c, 0, sizeof *c);
    c->size = size;
    return c;
}

static void *map_anon(size_t len)
{
    if (weft__test_should_fail_map())
        return NULL;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                   -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    return m;
}

static int alloc_guarded(size_t size, struct weft__stack *out)
{
    size_t page = weft__page_size();
    char *m = map_anon(size + page);
    if (!m)
        return -ENOMEM;
    if (weft__test_should_fail_map() || mprotect(m, page, PROT_NONE) != 0) {
        munmap(m, size + page);
        return -ENOMEM;
    }
    out->lo = m + page;
    out->size = size;
    out->flags = WEFT__STACK_GUARDED;
    atomic_fetch_add(&guarded_live, 1);
    return 0;
}

static int alloc_slab(struct weft__stackpool *p, struct weft__stack_class *c,
                      struct weft__stack *out)
{
    if (c->slab_left == 0) {
        size_t per = SLAB_BYTES / c->size;
        if (per < 1)
            per = 1;
        struct weft__slab *sl = weft__malloc(sizeof *sl);
        if (!sl)
            return -ENOMEM;
        size_t len = per * c->size;
        void *m = map_anon(len);
        if (!m) {
            weft__free(sl);
            return -ENOMEM;
        }
#if defined(MADV_NOHUGEPAGE)
        /* A huge page would make each touched stack cost 2 MiB. */
        (void)madvise(m, len, MADV_NOHUGEPAGE);
#endif
        sl->base = m;
        sl->len = len;
        sl->next = p->slabs;
        p->slabs = sl;
        c->slab_next = m;
        c->slab_left = per;
    }
    out->lo = c->slab_next;
    out->size = c->size;
    out->flags = WEFT__STACK_SLAB;
    c->slab_next += c->size;
    c->slab_left--;
    return 0;
}

int weft__stack_alloc(struct weft__stackpool *p, size_t size,
                      struct weft__stack *out)
{
    struct weft__stack_class *c = find_class(p, size, 1);
    if (!c)
        return -ENOMEM;
    if (c->warm) {
        struct freenode *f = c->warm;
        c->warm = f->next;
        c->nwarm--;
        *out = f->st;
        return 0;
    }
    if (c->ncold) {
        *out = c->cold[--c->ncold];
        out->flags &= ~WEFT__STACK_COLD;
        return 0;
    }
    int r = -ENOMEM;
    int want_guard = p->guard == WEFT_GUARD_PAGES ||
                     (p->guard == WEFT_GUARD_AUTO &&
                      atomic_load(&guarded_live) < budget());
    if (want_guard) {
        r = alloc_guarded(size, out);
        if (r < 0 && p->guard == WEFT_GUARD_PAGES)
            return r;
    }
    if (r < 0)
        r = alloc_slab(p, c, out);
    if (r < 0)
        return r;
    out->vg_id = VG_REGISTER(out->lo, out->lo + out->size);
    return 0;
}

static void unmap_guarded(const struct weft__stack *st)
{
    size_t page = weft__page_size();
    VG_DEREGISTER(st->vg_id);
    munmap(st->lo - page, st->size + page);
    atomic_fetch_sub(&guarded_live, 1);
}

static int push_cold(struct weft__stack_class *c, const struct weft__stack *st)
{
    if (c->ncold == c->capcold) {
        size_t cap = c->capcold ? c->capcold * 2 : 64;
        struct weft__stack *a = weft__realloc(c->cold, cap * sizeof *a);
        if (!a)
            return -ENOMEM;
        c->cold = a;
        c->capcold = cap;
    }
    c->cold[c->ncold] = *st;
    c->cold[c->ncold].flags |= WEFT__STACK_COLD;
    c->ncold++;
    return 0;
}

static void push_warm(struct weft__stack_class *c, const struct weft__stack *st)
{
    uintptr_t top = ((uintptr_t)st->lo + st->size - sizeof(struct freenode)) &
                    ~(uintptr_t)15;
    struct freenode *f = (struct freenode *)top;
    f->st = *st;
    f->next = c->warm;
    c->warm = f;
    c->nwarm++;
}

static void release_stack(const struct weft__stack *st)
{
    if (st->flags & WEFT__STACK_GUARDED)
        unmap_guarded(st);
    else
        VG_DEREGISTER(st->vg_id);
}

void weft__stack_free(struct weft__stackpool *p, const struct weft__stack *st)
{
    struct weft__stack_class *c = find_class(p, st->size, 0);
    if (!(st->flags & WEFT__STACK_GUARDED) && !weft__stack_canary_ok(st)) {
        /* Keep the canary valid for the next user: a stack handed back
         * after a clean run has it intact; this only matters if an
         * overflow was missed.  Written only when needed: the bottom page
         * of a stack that never went deep is the shared zero page (the
         * canary checks only read it), and a write would give every
         * stack a private page there. */
        memset(st->lo, 0, WEFT__CANARY_BYTES);
    }
    if (!c) {
        release_stack(st); /* not ours: cannot happen for pooled stacks */
        return;
    }
    if (c->nwarm >= p->cache && (st->flags & WEFT__STACK_GUARDED)) {
        unmap_guarded(st);
        return;
    }
    push_warm(c, st); /* a slab stack beyond the cache: until the trim */
}

/* Make the warm stack st cold: a slab stack cannot be unmapped alone, so
 * its pages are given back and it waits on the cold list. */
static void make_cold(struct weft__stack_class *c, const struct weft__stack *st)
{
    if (st->flags & WEFT__STACK_GUARDED) {
        unmap_guarded(st);
        return;
    }
    (void)madvise(st->lo, st->size, MADV_DONTNEED);
    if (push_cold(c, st) < 0)
        push_warm(c, st); /* no memory for the cold list: keep it warm */
}

size_t weft__stack_trim(struct weft__stackpool *p, size_t max)
{
    size_t done = 0;
    for (uint32_t i = 0; i < p->nclasses && done < max; i++) {
        struct weft__stack_class *c = &p->classes[i];
        while (c->nwarm > p->cache && done < max) {
            struct freenode *f = c->warm;
            struct weft__stack st = f->st; /* f lives on the stack */
            c->warm = f->next;
            c->nwarm--;
            make_cold(c, &st);
            done++;
        }
    }
    return done;
}

size_t weft__stack_surplus(const struct weft__stackpool *p)
{
    size_t n = 0;
    for (uint32_t i = 0; i < p->nclasses; i++) {
        const struct weft__stack_class *c = &p->classes[i];
        n += c->nwarm > p->cache ? c->nwarm - p->cache : 0;
    }
    return n;
}

void weft__stackpool_destroy(struct weft__stackpool *p)
{
    for (uint32_t i = 0; i < p->nclasses; i++) {
        struct weft__stack_class *c = &p->classes[i];
        while (c->warm) {
            struct freenode *f = c->warm;
            struct weft__stack st = f->st;
            c->warm = f->next;
            release_stack(&st);
        }
        for (size_t j = 0; j < c->ncold; j++)
            release_stack(&c->cold[j]);
        weft__free(c->cold);
    }
    weft__free(p->classes);
    while (p->slabs) {
        struct weft__slab *sl = p->slabs;
        p->slabs = sl->next;
        munmap(sl->base, sl->len);
        weft__free(sl);
    }
    memset(p, 0, sizeof *p);
}

void weft__stack_canary_fail(const weft_coro *co)
{
    char msg[192];
    int n = snprintf(msg, sizeof msg,
                     "weft: stack overflow in coroutine #%llu '%s' "
                     "(stack %zu bytes, canary overwritten); aborting\n",
                     (unsigned long long)co->id, co->name, co->stack.size);
    if (n > 0)
        (void)!write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    abort();
}
