/*
 * heap.c - the scheduler's timer heap: a binary min-heap of node pointers
 * ordered by (due, seq), each node knowing its own index so that removal
 * is O(log n).  seq breaks ties in insertion order, so timers with equal
 * deadlines fire first-in first-out.
 */
#include <stdlib.h>

#include "internal.h"

static inline int before(const struct weft__hent *a,
                         const struct weft__hent *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static inline void put(struct weft__heap *h, uint32_t i,
                       const struct weft__hent *e)
{
    h->a[i] = *e;
    e->t->idx = i;
}

static void sift_up(struct weft__heap *h, uint32_t i)
{
    struct weft__hent e = h->a[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!before(&e, &h->a[p]))
            break;
        put(h, i, &h->a[p]);
        i = p;
    }
    put(h, i, &e);
}

static void sift_down(struct weft__heap *h, uint32_t i)
{
    struct weft__hent e = h->a[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && before(&h->a[c + 1], &h->a[c]))
            c++;
        if (!before(&h->a[c], &e))
            break;
        put(h, i, &h->a[c]);
        i = c;
    }
    put(h, i, &e);
}

int weft__heap_reserve(struct weft__heap *h, uint32_t extra)
{
    if (h->n + extra <= h->cap)
        return 0;
    uint64_t cap = h->cap ? h->cap : 64;
    while (cap < (uint64_t)h->n + extra)
        cap *= 2;
    if (cap >= WEFT__NOT_IN_HEAP)
        return -ENOMEM;
    struct weft__hent *a = weft__realloc(h->a, (size_t)cap * sizeof *a);
    if (!a)
        return -ENOMEM;
    h->a = a;
    h->cap = (uint32_t)cap;
    return 0;
}

int weft__timer_add(weft_sched *s, struct weft__tnode *t, int64_t due)
{
    struct weft__heap *h = &s->heap;
    if (t->idx != WEFT__NOT_IN_HEAP)
        weft__timer_del(s, t);
    int r = weft__heap_reserve(h, 1);
    if (r < 0)
        return r;
    t->due = due;
    t->seq = s->timer_seq++;
    h->a[h->n].due = due;
    h->a[h->n].seq = t->seq;
    h->a[h->n].t = t;
    t->idx = h->n++;
    sift_up(h, t->idx);
    return 0;
}

void weft__timer_del(weft_sched *s, struct weft__tnode *t)
{
    struct weft__heap *h = &s->heap;
    uint32_t i = t->idx;
    if (i == WEFT__NOT_IN_HEAP)
        return;
    t->idx = WEFT__NOT_IN_HEAP;
    h->n--;
    if (i == h->n)
        return;
    put(h, i, &h->a[h->n]);
    if (i > 0 && before(&h->a[i], &h->a[(i - 1) / 2]))
        sift_up(h, i);
    else
        sift_down(h, i);
}

void weft__heap_free(struct weft__heap *h)
{
    weft__free(h->a);
    h->a = NULL;
    h->n = h->cap = 0;
}

/*
 * The first timer, in (due, seq) order, that is due at `now` and was armed
 * before the phase began (seq < limit), or NULL.  Used when the heap's
 * minimum was armed during the phase with a deadline already passed: the
 * timers due before the phase may then sit anywhere below it.  Those due
 * at `now` form a subtree at the top of the heap (a node's children are
 * never due earlier), so the search visits only them, depth first, with a
 * stack of at most two entries per level.
 */
static struct weft__tnode *first_due_before(const struct weft__heap *h,
                                            int64_t now, uint64_t limit)
{
    uint32_t stack[2 * 33];
    uint32_t sp = 0;
    const struct weft__hent *best = NULL;
    stack[sp++] = 0;
    while (sp > 0) {
        uint32_t i = stack[--sp];
        const struct weft__hent *e = &h->a[i];
        if (e->due > now)
            continue;
        if (e->seq < limit && (!best || before(e, best)))
            best = e;
        for (uint32_t c = 2 * i + 1; c <= 2 * i + 2 && c < h->n; c++)
            stack[sp++] = c;
    }
    return best ? best->t : NULL;
}

int weft__timers_run(weft_sched *s, int64_t now)
{
    struct weft__heap *h = &s->heap;
    /* Timers (re)armed by the callbacks of this phase wait for the next
     * one, so a callback that restarts itself with a zero timeout cannot
     * keep the loop here forever.  Such a timer armed with a deadline
     * already passed becomes the heap's minimum, but the timers that were
     * due before it still fire in this phase (found by first_due_before;
     * fuzz/fuzz-timers.c found them postponed). */
    uint64_t limit = s->timer_seq;
    int fired = 0;
    while (h->n > 0) {
        struct weft__tnode *t = h->a[0].t;
        if (h->a[0].due > now)
            break;
        if (h->a[0].seq >= limit) {
            t = first_due_before(h, now, limit);
            if (!t)
                break;
        }
        weft__timer_del(s, t);
        t->fire(s, t);
        fired++;
    }
    return fired;
}
