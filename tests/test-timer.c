/*
 * test-timer.c - the timer heap (heap.c, through weft__timer_add/_del and
 * weft__timers_run on a real scheduler's heap), callback timers (timer.c)
 * and sleeping coroutines.  Everything that depends on time runs on a
 * manual clock.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "test.h"

/* Fault injection (alloc.c): fail the allocation after the next n. */
void weft__test_fail_alloc(long n, int sticky);
/* Blocks allocated by the library and not yet freed, on this thread. */
long weft__test_live_allocs(void);

static weft_sched *manual_sched(void)
{
    struct weft_sched_opts o;
    weft_sched *s = NULL;
    memset(&o, 0, sizeof o);
    o.clock = WEFT_CLOCK_MANUAL;
    ASSERT_OK(weft_sched_new(&o, &s));
    ASSERT_NOT_NULL(s);
    return s;
}

/* Deterministic PRNG (xorshift64*). */
static uint64_t rng_state;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static uint32_t rng_below(uint32_t n)
{
    return (uint32_t)(rng() % n);
}

/* ----------------------------------------------------------------------
 * The heap, against a model.
 * ---------------------------------------------------------------------- */

#define NODES 300

struct mnode {
    struct weft__tnode n;
    int id;
    int active;      /* per the model */
    int64_t due;     /* per the model */
    uint64_t order;  /* per the model: insertion counter at last add */
};

static struct mnode nodes[NODES];
static int fired_log[NODES * 4];
static int nfired;

static void record_fire(weft_sched *s, struct weft__tnode *n)
{
    struct mnode *m = weft__container_of(n, struct mnode, n);
    (void)s;
    /* Out of the heap before its callback runs. */
    ASSERT_EQ(n->idx, WEFT__NOT_IN_HEAP);
    ASSERT_LT(nfired, (int)(sizeof fired_log / sizeof fired_log[0]));
    fired_log[nfired++] = m->id;
}

static void init_nodes(void)
{
    memset(nodes, 0, sizeof nodes);
    for (int i = 0; i < NODES; i++) {
        weft__tnode_init(&nodes[i].n, record_fire);
        nodes[i].id = i;
    }
    nfired = 0;
}

static int model_before(const struct mnode *a, const struct mnode *b)
{
    return a->due < b->due || (a->due == b->due && a->order < b->order);
}

/* The heap is a valid min-heap, every index is right, and it holds
 * exactly the nodes the model says are active, the least at the root. */
static void check_heap(weft_sched *s)
{
    const struct weft__heap *h = &s->heap;
    uint32_t nactive = 0;
    const struct mnode *min = NULL;
    for (int i = 0; i < NODES; i++) {
        if (nodes[i].active) {
            nactive++;
            ASSERT_NE(nodes[i].n.idx, WEFT__NOT_IN_HEAP);
            ASSERT_EQ(nodes[i].n.due, nodes[i].due);
            if (!min || model_before(&nodes[i], min))
                min = &nodes[i];
        } else {
            ASSERT_EQ(nodes[i].n.idx, WEFT__NOT_IN_HEAP);
        }
    }
    ASSERT_EQ(h->n, nactive);
    ASSERT_LE(h->n, h->cap);
    for (uint32_t i = 0; i < h->n; i++) {
        ASSERT_EQ(h->a[i].t->idx, i);
        /* Each entry carries a copy of its node's key. */
        ASSERT_EQ(h->a[i].due, h->a[i].t->due);
        ASSERT_EQ(h->a[i].seq, h->a[i].t->seq);
        if (i > 0) {
            const struct weft__hent *p = &h->a[(i - 1) / 2], *c = &h->a[i];
            ASSERT(p->due < c->due || (p->due == c->due && p->seq < c->seq));
        }
    }
    if (min)
        ASSERT_PTR_EQ(h->a[0].t, &min->n);
}

static uint64_t model_order;

static void model_add(weft_sched *s, struct mnode *m, int64_t due)
{
    ASSERT_OK(weft__timer_add(s, &m->n, due));
    m->active = 1;
    m->due = due;
    m->order = model_order++;
}

static void model_del(weft_sched *s, struct mnode *m)
{
    weft__timer_del(s, &m->n);
    m->active = 0;
}

static int cmp_mnode_ptr(const void *pa, const void *pb)
{
    const struct mnode *a = *(const struct mnode *const *)pa;
    const struct mnode *b = *(const struct mnode *const *)pb;
    return model_before(a, b) ? -1 : model_before(b, a) ? 1 : 0;
}

/* Fire everything due at now, and check it fired in model order. */
static void model_run(weft_sched *s, int64_t now)
{
    static struct mnode *due[NODES];
    int ndue = 0;
    for (int i = 0; i < NODES; i++)
        if (nodes[i].active && nodes[i].due <= now)
            due[ndue++] = &nodes[i];
    qsort(due, (size_t)ndue, sizeof due[0], cmp_mnode_ptr);
    nfired = 0;
    ASSERT_EQ(weft__timers_run(s, now), ndue);
    ASSERT_EQ(nfired, ndue);
    for (int i = 0; i < ndue; i++) {
        ASSERT_EQ(fired_log[i], due[i]->id);
        due[i]->active = 0;
    }
}

static struct mnode *pick(int want_active)
{
    int start = (int)rng_below(NODES);
    for (int k = 0; k < NODES; k++) {
        struct mnode *m = &nodes[(start + k) % NODES];
        if (m->active == want_active)
            return m;
    }
    return NULL;
}

/* Thousands of random inserts, deletes, re-adds and runs, checked after
 * every step against a sorted model. */
TEST(heap_random_ops_match_model)
{
    weft_sched *s = manual_sched();
    init_nodes();
    rng_state = 0x9E3779B97F4A7C15ull;
    model_order = 0;
    int64_t now = 0;
    int counts[5] = { 0 };
    for (int step = 0; step < 20000; step++) {
        uint32_t op = rng_below(100);
        struct mnode *m;
        if (op < 40) {
            /* Insert; a narrow range of deadlines makes many ties. */
            m = pick(0);
            if (m) {
                model_add(s, m, now + (int64_t)rng_below(64));
                counts[0]++;
            }
        } else if (op < 55) {
            /* Re-add an active node: it moves. */
            m = pick(1);
            if (m) {
                model_add(s, m, now + (int64_t)rng_below(64));
                counts[1]++;
            }
        } else if (op < 80) {
            /* Delete, anywhere in the heap. */
            m = pick(1);
            if (m) {
                model_del(s, m);
                counts[2]++;
            }
        } else if (op < 85) {
            /* Delete a node that is not in the heap: nothing happens. */
            m = pick(0);
            if (m) {
                model_del(s, m);
                counts[3]++;
            }
        } else {
            now += (int64_t)rng_below(12);
            model_run(s, now);
            counts[4]++;
        }
        check_heap(s);
    }
    /* Every kind of step happened, many times. */
    for (int i = 0; i < 5; i++)
        ASSERT_GT(counts[i], 500);
    /* Drain. */
    model_run(s, INT64_MAX);
    check_heap(s);
    ASSERT_EQ(s->heap.n, 0);
    ASSERT_OK(weft_sched_free(s));
}

/* Equal deadlines fire in insertion order, also among other deadlines and
 * past the heap's first growth. */
TEST(heap_equal_deadlines_fifo)
{
    weft_sched *s = manual_sched();
    init_nodes();
    model_order = 0;
    /* Interleave three deadlines; insert in a scrambled id order. */
    for (int k = 0; k < 200; k++) {
        int id = (k * 7) % 200;
        model_add(s, &nodes[id], 100 + (id % 3) * 10);
    }
    check_heap(s);
    nfired = 0;
    ASSERT_EQ(weft__timers_run(s, 1000), 200);
    int pos = 0;
    for (int d = 0; d < 3; d++)
        for (int k = 0; k < 200; k++) {
            int id = (k * 7) % 200;
            if (id % 3 == d)
                ASSERT_EQ(fired_log[pos++], id);
        }
    ASSERT_EQ(pos, 200);
    ASSERT_OK(weft_sched_free(s));
}

/* Deleting from the middle keeps the heap valid and the others in order. */
TEST(heap_delete_from_middle)
{
    weft_sched *s = manual_sched();
    init_nodes();
    model_order = 0;
    for (int i = 0; i < 100; i++)
        model_add(s, &nodes[i], 1000 - i * 10); /* reverse order */
    check_heap(s);
    /* Remove nodes sitting at inner positions of the array. */
    int removed = 0;
    for (uint32_t k = 0; k < 40; k++) {
        uint32_t pos = 1 + (k * 7) % (s->heap.n - 2);
        struct weft__tnode *n = s->heap.a[pos].t;
        struct mnode *m = weft__container_of(n, struct mnode, n);
        ASSERT(pos != 0 && pos != s->heap.n - 1);
        model_del(s, m);
        removed++;
        check_heap(s);
    }
    ASSERT_EQ(removed, 40);
    model_run(s, INT64_MAX);
    ASSERT_EQ(nfired, 60);
    for (int i = 1; i < nfired; i++) {
        /* Increasing deadlines = decreasing ids here. */
        ASSERT_LT(fired_log[i], fired_log[i - 1]);
    }
    ASSERT_OK(weft_sched_free(s));
}

/* Adding a node that is already in the heap moves it (no duplicate), and
 * a re-add with the same deadline puts it behind its equals. */
TEST(heap_readd_moves_node)
{
    weft_sched *s = manual_sched();
    init_nodes();
    model_order = 0;
    model_add(s, &nodes[0], 10);
    model_add(s, &nodes[1], 20);
    model_add(s, &nodes[2], 20);
    check_heap(s);
    ASSERT_PTR_EQ(s->heap.a[0].t, &nodes[0].n);
    model_add(s, &nodes[0], 30); /* later */
    check_heap(s);
    ASSERT_EQ(s->heap.n, 3);
    ASSERT_PTR_EQ(s->heap.a[0].t, &nodes[1].n);
    model_add(s, &nodes[1], 20); /* same deadline: now behind node 2 */
    check_heap(s);
    ASSERT_PTR_EQ(s->heap.a[0].t, &nodes[2].n);
    model_add(s, &nodes[0], 5); /* earlier again */
    check_heap(s);
    ASSERT_EQ(s->heap.n, 3);
    model_run(s, 100);
    ASSERT_EQ(nfired, 3);
    ASSERT_EQ(fired_log[0], 0);
    ASSERT_EQ(fired_log[1], 2);
    ASSERT_EQ(fired_log[2], 1);
    ASSERT_OK(weft_sched_free(s));
}

/* Only what is due fires; a later deadline stays. */
TEST(heap_run_fires_only_due)
{
    weft_sched *s = manual_sched();
    init_nodes();
    model_order = 0;
    model_add(s, &nodes[0], 50);
    model_add(s, &nodes[1], 49);
    model_add(s, &nodes[2], 51);
    model_run(s, 48);
    ASSERT_EQ(nfired, 0);
    model_run(s, 50);
    ASSERT_EQ(nfired, 2);
    ASSERT_EQ(fired_log[0], 1);
    ASSERT_EQ(fired_log[1], 0);
    check_heap(s);
    ASSERT_EQ(s->heap.n, 1);
    model_run(s, 51);
    ASSERT_EQ(nfired, 1);
    ASSERT_EQ(s->heap.n, 0);
    ASSERT_OK(weft_sched_free(s));
}

/* A node (re)added by a callback during weft__timers_run waits for the
 * next run, even when it is already due. */
static int rearm_count;

static void rearm_fire(weft_sched *s, struct weft__tnode *n)
{
    rearm_count++;
    ASSERT_OK(weft__timer_add(s, n, 0)); /* due at once */
}

TEST(heap_rearm_in_callback_waits_for_next_run)
{
    weft_sched *s = manual_sched();
    struct weft__tnode a, b;
    weft__tnode_init(&a, rearm_fire);
    weft__tnode_init(&b, rearm_fire);
    rearm_count = 0;
    ASSERT_OK(weft__timer_add(s, &a, 0));
    ASSERT_OK(weft__timer_add(s, &b, 0));
    ASSERT_EQ(weft__timers_run(s, 100), 2);
    ASSERT_EQ(rearm_count, 2);
    ASSERT_EQ(weft__timers_run(s, 100), 2);
    ASSERT_EQ(rearm_count, 4);
    weft__timer_del(s, &a);
    weft__timer_del(s, &b);
    ASSERT_EQ(s->heap.n, 0);
    ASSERT_OK(weft_sched_free(s));
}

/* Growing the heap can fail (-ENOMEM): the node stays out and the heap
 * stays valid; the next add succeeds. */
TEST(heap_grow_failure)
{
    weft_sched *s = manual_sched();
    init_nodes();
    model_order = 0;
    uint32_t i = 0;
    model_add(s, &nodes[i++], 7);
    uint32_t cap = s->heap.cap;
    ASSERT_GT(cap, 0);
    while (s->heap.n < cap) {
        model_add(s, &nodes[i], (int64_t)(i % 5));
        i++;
    }
    weft__test_fail_alloc(0, 0);
    ASSERT_ERR(weft__timer_add(s, &nodes[i].n, 3), -ENOMEM);
    weft__test_fail_alloc(-1, 0);
    ASSERT_EQ(nodes[i].n.idx, WEFT__NOT_IN_HEAP);
    check_heap(s);
    /* Re-adding a node already in a full heap never needs memory. */
    weft__test_fail_alloc(0, 1);
    model_add(s, &nodes[0], 1);
    weft__test_fail_alloc(-1, 0);
    check_heap(s);
    model_add(s, &nodes[i], 3);
    ASSERT_GT(s->heap.cap, cap);
    check_heap(s);
    model_run(s, INT64_MAX);
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Callback timers.
 * ---------------------------------------------------------------------- */

#define MAXLOG 64

struct tlog {
    weft_sched *s;
    int n;
    int64_t at[MAXLOG];
    int stop_after;     /* stop itself at this count (0: never) */
    int free_after;     /* free itself at this count */
    int sched_stop_after; /* weft_stop() at this count */
    int64_t work;       /* advance the clock by this much per call */
    int restart_zero;   /* restart itself with timeout 0 */
};

static void log_cb(weft_timer *t, void *arg)
{
    struct tlog *l = arg;
    ASSERT_LT(l->n, MAXLOG);
    l->at[l->n++] = weft_now(l->s);
    if (l->work)
        ASSERT_OK(weft_clock_advance(l->s, l->work));
    if (l->restart_zero)
        ASSERT_OK(weft_timer_start(t, 0, 0));
    if (l->stop_after && l->n == l->stop_after) {
        ASSERT_OK(weft_timer_stop(t));
        ASSERT_EQ(weft_timer_active(t), 0);
        ASSERT_EQ(weft_timer_due(t), -1);
    }
    if (l->free_after && l->n == l->free_after)
        ASSERT_OK(weft_timer_free(t));
    if (l->sched_stop_after && l->n == l->sched_stop_after)
        ASSERT_OK(weft_stop(l->s));
}

static struct tlog *new_log(weft_sched *s)
{
    struct tlog *l = calloc(1, sizeof *l);
    ASSERT_NOT_NULL(l);
    l->s = s;
    return l;
}

/* A one-shot timer fires once, at exactly its time, not before. */
TEST(oneshot_fires_once_at_exact_time)
{
    weft_sched *s = manual_sched();
    struct tlog *l = new_log(s);
    weft_timer *t;
    ASSERT_OK(weft_timer_new(s, log_cb, l, &t));
    ASSERT_OK(weft_timer_start(t, 1000, 0));
    ASSERT_EQ(weft_timer_due(t), 1000);
    ASSERT_EQ(weft_next_timeout(s), 1000);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(l->n, 0);
    ASSERT_OK(weft_clock_advance(s, 999));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(l->n, 0);
    ASSERT_EQ(weft_next_timeout(s), 1);
    ASSERT_OK(weft_clock_advance(s, 1));
    ASSERT_EQ(weft_run_once(s, 0), 0); /* fired; nothing left */
    ASSERT_EQ(l->n, 1);
    ASSERT_EQ(l->at[0], 1000);
    ASSERT_EQ(weft_timer_active(t), 0);
    ASSERT_EQ(weft_timer_due(t), -1);
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_OK(weft_clock_advance(s, 10000));
    ASSERT_EQ(weft_run_once(s, 0), 0);
    ASSERT_EQ(l->n, 1);
    /* weft_run jumps the manual clock to the deadline. */
    ASSERT_OK(weft_timer_start(t, 500, 0));
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(l->n, 2);
    ASSERT_EQ(l->at[1], 11500);
    ASSERT_EQ(weft_now(s), 11500);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_sched_free(s));
    free(l);
}

/* start_at: an absolute first deadline; one in the past fires at the
 * next iteration. */
TEST(start_at_absolute)
{
    weft_sched *s = manual_sched();
    struct tlog *l = new_log(s);
    weft_timer *t;
    ASSERT_OK(weft_clock_set(s, 5000));
    ASSERT_OK(weft_timer_new(s, log_cb, l, &t));
    ASSERT_OK(weft_timer_start_at(t, 7000, 0));
    ASSERT_EQ(weft_timer_due(t), 7000);
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(l->n, 1);
    ASSERT_EQ(l->at[0], 7000);
    ASSERT_OK(weft_timer_start_at(t, 100, 0)); /* past */
    ASSERT_EQ(weft_run_once(s, 0), 0);
    ASSERT_EQ(l->n, 2);
    ASSERT_EQ(l->at[1], 7000);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_sched_free(s));
    free(l);
}

/* A repeating timer fires on the grid first + k*repeat, even when each
 * callback runs late (here it "works" 30 ns of a 50 ns period). */
TEST(repeat_fires_on_fixed_grid)
{
    weft_sched *s = manual_sched();
    struct tlog *l = new_log(s);
    weft_timer *t;
    l->work = 30;
    l->stop_after = 6;
    ASSERT_OK(weft_timer_new(s, log_cb, l, &t));
    ASSERT_OK(weft_timer_start(t, 100, 50));
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(l->n, 6);
    for (int i = 0; i < 6; i++)
        ASSERT_EQ(l->at[i], 100 + 50 * i);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_sched_free(s));
    free(l);
}

/* When the clock jumps several periods, the timer fires once, not once per
 * missed period, and its next deadline is the next grid point. */
TEST(repeat_skips_missed_periods)
{
    weft_sched *s = manual_sched();
    struct tlog *l = new_log(s);
    weft_timer *t;
    ASSERT_OK(weft_timer_new(s, log_cb, l, &t));
    ASSERT_OK(weft_timer_start(t, 100, 50));
    ASSERT_OK(weft_clock_set(s, 100));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(l->n, 1);
    ASSERT_EQ(weft_timer_due(t), 150);
    /* 5 periods and a bit later. */
    ASSERT_OK(weft_clock_set(s, 100 + 5 * 50 + 10));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(l->n, 2);
    ASSERT_EQ(l->at[1], 360);
    ASSERT_EQ(weft_timer_due(t), 400);
    ASSERT_EQ(weft_next_timeout(s), 40);
    /* And it carries on from there. */
    ASSERT_EQ(weft_run_once(s, -1), 1);
    ASSERT_EQ(l->n, 3);
    ASSERT_EQ(l->at[2], 400);
    ASSERT_EQ(weft_timer_due(t), 450);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_sched_free(s));
    free(l);
}

/* Stopping a repeating timer from its own callback ends it; weft_run then
 * has nothing left. */
TEST(stop_from_own_callback)
{
    weft_sched *s = manual_sched();
    struct tlog *l = new_log(s);
    weft_timer *t;
    l->stop_after = 3;
    ASSERT_OK(weft_timer_new(s, log_cb, l, &t));
    ASSERT_OK(weft_timer_start(t, 10, 10));
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(l->n, 3);
    ASSERT_EQ(l->at[2], 30);
    ASSERT_EQ(weft_timer_active(t), 0);
    ASSERT_EQ(weft_run_once(s, 0), 0);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_sched_free(s));
    free(l);
}

/* Freeing a timer (one-shot or repeating) from its own callback is safe
 * (ASan/Valgrind check the memory) and leaves nothing behind. */
TEST(free_from_own_callback)
{
    weft_sched *s = manual_sched();
    struct tlog *l1 = new_log(s), *l2 = new_log(s);
    weft_timer *t1, *t2;
    l1->free_after = 1;
    l2->free_after = 4;
    ASSERT_OK(weft_timer_new(s, log_cb, l1, &t1));
    ASSERT_OK(weft_timer_new(s, log_cb, l2, &t2));
    ASSERT_OK(weft_timer_start(t1, 10, 0));
    ASSERT_OK(weft_timer_start(t2, 10, 5));
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(l1->n, 1);
    ASSERT_EQ(l2->n, 4);
    ASSERT_EQ(l2->at[3], 25);
    ASSERT_EQ(s->heap.n, 0);
    ASSERT_EQ(s->active_timers, 0);
    ASSERT(weft__list_empty(&s->timers));
    ASSERT_OK(weft_sched_free(s));
    free(l1);
    free(l2);
}

/* A callback may free another timer, even one due in the same pass. */
static weft_timer *victim;

static void kill_victim_cb(weft_timer *t, void *arg)
{
    (void)arg;
    ASSERT_OK(weft_timer_free(victim));
    victim = NULL;
    ASSERT_OK(weft_timer_free(t));
}

TEST(free_other_timer_from_callback)
{
    weft_sched *s = manual_sched();
    struct tlog *l = new_log(s);
    weft_timer *killer;
    ASSERT_OK(weft_timer_new(s, kill_victim_cb, NULL, &killer));
    ASSERT_OK(weft_timer_new(s, log_cb, l, &victim));
    ASSERT_OK(weft_timer_start(killer, 10, 0));
    ASSERT_OK(weft_timer_start(victim, 10, 0)); /* same time, after */
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(l->n, 0);
    ASSERT_NULL(victim);
    ASSERT_OK(weft_sched_free(s));
    free(l);
}

/* weft_timer_again restarts from now with the repeat period; -EINVAL when
 * the repeat is 0. */
TEST(again_restarts_from_now)
{
    weft_sched *s = manual_sched();
    struct tlog *l = new_log(s);
    weft_timer *t;
    ASSERT_OK(weft_timer_new(s, log_cb, l, &t));
    ASSERT_ERR(weft_timer_again(t), -EINVAL); /* never started */
    ASSERT_OK(weft_timer_start(t, 100, 0));
    ASSERT_ERR(weft_timer_again(t), -EINVAL);
    ASSERT_EQ(weft_timer_due(t), 100); /* unchanged by the failed call */
    ASSERT_OK(weft_timer_set_repeat(t, 70));
    ASSERT_OK(weft_clock_set(s, 20));
    ASSERT_OK(weft_timer_again(t));
    ASSERT_EQ(weft_timer_due(t), 90);
    ASSERT_EQ(weft_timer_active(t), 1);
    ASSERT_OK(weft_clock_set(s, 90));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(l->n, 1);
    ASSERT_EQ(weft_timer_due(t), 160); /* repeating now */
    /* Again on a stopped timer that has a repeat starts it. */
    ASSERT_OK(weft_timer_stop(t));
    ASSERT_EQ(weft_run_once(s, 0), 0);
    ASSERT_OK(weft_clock_set(s, 1000));
    ASSERT_OK(weft_timer_again(t));
    ASSERT_EQ(weft_timer_due(t), 1070);
    ASSERT_OK(weft_timer_set_repeat(t, 0));
    ASSERT_ERR(weft_timer_again(t), -EINVAL);
    ASSERT_OK(weft_timer_stop(t));
    ASSERT_ERR(weft_timer_again(NULL), -EINVAL);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_sched_free(s));
    free(l);
}

/* weft_timer_active / weft_timer_due through a timer's life. */
TEST(active_and_due)
{
    weft_sched *s = manual_sched();
    struct tlog *l = new_log(s);
    weft_timer *t;
    ASSERT_OK(weft_timer_new(s, log_cb, l, &t));
    ASSERT_EQ(weft_timer_active(t), 0);
    ASSERT_EQ(weft_timer_due(t), -1);
    ASSERT_OK(weft_clock_set(s, 40));
    ASSERT_OK(weft_timer_start(t, 60, 0));
    ASSERT_EQ(weft_timer_active(t), 1);
    ASSERT_EQ(weft_timer_due(t), 100);
    ASSERT_OK(weft_timer_start(t, 10, 0)); /* restart */
    ASSERT_EQ(weft_timer_due(t), 50);
    ASSERT_OK(weft_timer_stop(t));
    ASSERT_EQ(weft_timer_active(t), 0);
    ASSERT_EQ(weft_timer_due(t), -1);
    ASSERT_OK(weft_timer_stop(t)); /* no-op */
    ASSERT_EQ(weft_timer_active(NULL), 0);
    ASSERT_EQ(weft_timer_due(NULL), -1);
    /* Huge timeouts saturate instead of overflowing. */
    ASSERT_OK(weft_timer_start(t, INT64_MAX, 0));
    ASSERT_EQ(weft_timer_due(t), INT64_MAX);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_sched_free(s));
    free(l);
}

/* Misuse returns -EINVAL and changes nothing. */
TEST(invalid_arguments)
{
    weft_sched *s = manual_sched();
    struct tlog *l = new_log(s);
    weft_timer *t = (weft_timer *)(uintptr_t)1;
    ASSERT_ERR(weft_timer_new(s, NULL, l, &t), -EINVAL);
    ASSERT_NULL(t);
    ASSERT_ERR(weft_timer_new(s, log_cb, l, NULL), -EINVAL);
    ASSERT_OK(weft_timer_new(s, log_cb, l, &t));
    ASSERT_ERR(weft_timer_start(t, -1, 0), -EINVAL);
    ASSERT_ERR(weft_timer_start(t, 0, -1), -EINVAL);
    ASSERT_ERR(weft_timer_start(t, INT64_MIN, 0), -EINVAL);
    ASSERT_ERR(weft_timer_start_at(t, 100, -5), -EINVAL);
    ASSERT_EQ(weft_timer_active(t), 0);
    ASSERT_ERR(weft_timer_set_repeat(t, -1), -EINVAL);
    ASSERT_ERR(weft_timer_start(NULL, 0, 0), -EINVAL);
    ASSERT_ERR(weft_timer_start_at(NULL, 0, 0), -EINVAL);
    ASSERT_ERR(weft_timer_stop(NULL), -EINVAL);
    ASSERT_ERR(weft_timer_again(NULL), -EINVAL);
    ASSERT_ERR(weft_timer_set_repeat(NULL, 0), -EINVAL);
    ASSERT_ERR(weft_timer_free(NULL), -EINVAL);
    /* Nothing became active: weft_run returns at once. */
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(weft_now(s), 0);
    ASSERT_EQ(l->n, 0);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_sched_free(s));
    free(l);
}

/* An active timer keeps weft_run running; a stopped one does not; weft_stop
 * from a callback makes weft_run return 1 with the timer still active. */
TEST(active_timer_keeps_run_running)
{
    weft_sched *s = manual_sched();
    struct tlog *l = new_log(s);
    weft_timer *t;
    ASSERT_OK(weft_timer_new(s, log_cb, l, &t));
    /* Stopped (never started): nothing to do. */
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(weft_run_once(s, 0), 0);
    /* Started then stopped: still nothing (the count went back down). */
    ASSERT_OK(weft_timer_start(t, WEFT_SEC(5), 0));
    ASSERT_OK(weft_timer_start(t, WEFT_SEC(6), 0)); /* restart: one count */
    ASSERT_OK(weft_timer_stop(t));
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(weft_now(s), 0);
    ASSERT_EQ(l->n, 0);
    /* Active: weft_run waits for it (the manual clock jumps). */
    ASSERT_OK(weft_timer_start(t, WEFT_SEC(5), 0));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(l->n, 1);
    ASSERT_EQ(weft_now(s), WEFT_SEC(5));
    /* Repeating forever: only weft_stop ends the run. */
    l->sched_stop_after = 4;
    ASSERT_OK(weft_timer_start(t, 10, 10));
    ASSERT_EQ(weft_run(s), 1);
    ASSERT_EQ(l->n, 4);
    ASSERT_EQ(weft_timer_active(t), 1);
    ASSERT_OK(weft_timer_stop(t));
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(l->n, 4);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_sched_free(s));
    free(l);
}

/* Timers with equal deadlines fire in the order they were started; a
 * restart moves a timer behind its equals. */
struct order_log {
    int n;
    int ids[16];
};

struct idtimer {
    weft_timer *t;
    int id;
};

static struct order_log *g_order;

static void id_cb(weft_timer *t, void *arg)
{
    struct idtimer *it = arg;
    (void)t;
    ASSERT_LT(g_order->n, 16);
    g_order->ids[g_order->n++] = it->id;
}

TEST(equal_deadlines_fire_in_start_order)
{
    weft_sched *s = manual_sched();
    struct order_log o;
    struct idtimer it[4];
    memset(&o, 0, sizeof o);
    g_order = &o;
    for (int i = 0; i < 4; i++) {
        it[i].id = i;
        ASSERT_OK(weft_timer_new(s, id_cb, &it[i], &it[i].t));
    }
    ASSERT_OK(weft_timer_start(it[2].t, 100, 0));
    ASSERT_OK(weft_timer_start(it[0].t, 100, 0));
    ASSERT_OK(weft_timer_start(it[3].t, 100, 0));
    ASSERT_OK(weft_timer_start(it[1].t, 100, 0));
    ASSERT_OK(weft_timer_start(it[2].t, 100, 0)); /* restart: to the back */
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(o.n, 4);
    ASSERT_EQ(o.ids[0], 0);
    ASSERT_EQ(o.ids[1], 3);
    ASSERT_EQ(o.ids[2], 1);
    ASSERT_EQ(o.ids[3], 2);
    for (int i = 0; i < 4; i++)
        ASSERT_OK(weft_timer_free(it[i].t));
    ASSERT_OK(weft_sched_free(s));
}

/* A callback that restarts its timer with timeout 0 runs a bounded number
 * of times per iteration (the timer phases run before and after the wait),
 * never forever. */
TEST(restart_zero_does_not_spin)
{
    weft_sched *s = manual_sched();
    struct tlog *l = new_log(s);
    weft_timer *t;
    l->restart_zero = 1;
    ASSERT_OK(weft_timer_new(s, log_cb, l, &t));
    ASSERT_OK(weft_timer_start(t, 0, 0));
    int prev = 0;
    for (int i = 0; i < 10; i++) {
        ASSERT_EQ(weft_run_once(s, 0), 1);
        ASSERT_GE(l->n - prev, 1);
        ASSERT_LE(l->n - prev, 2);
        prev = l->n;
        ASSERT_EQ(weft_timer_active(t), 1);
    }
    /* Same from inside weft_run, ended by weft_stop. */
    l->sched_stop_after = l->n + 5;
    ASSERT_EQ(weft_run(s), 1);
    /* The iteration in progress completes (both timer phases). */
    ASSERT_GE(l->n, l->sched_stop_after);
    ASSERT_LE(l->n, l->sched_stop_after + 1);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_sched_free(s));
    free(l);
}

/* Inside a callback: no coroutine, no blocking, no nested run, no free of
 * the running scheduler. */
static int ctx_checked;

static void context_cb(weft_timer *t, void *arg)
{
    weft_sched *s = arg;
    (void)t;
    ASSERT_NULL(weft_self());
    ASSERT_ERR(weft_yield(), -EINVAL);
    ASSERT_ERR(weft_sleep_for(10), -EINVAL);
    ASSERT_ERR(weft_run(s), -EINVAL);
    ASSERT_ERR(weft_run_once(s, 0), -EINVAL);
    ASSERT_ERR(weft_sched_free(s), -EBUSY);
    ASSERT_PTR_EQ(weft_sched_current(), s);
    ctx_checked++;
}

TEST(callback_context)
{
    weft_sched *s = manual_sched();
    weft_timer *t;
    ctx_checked = 0;
    ASSERT_OK(weft_timer_new(s, context_cb, s, &t));
    ASSERT_OK(weft_timer_start(t, 5, 0));
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(ctx_checked, 1);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_sched_free(s));
}

static void make_timers(weft_sched *s, struct tlog *l)
{
    weft_timer *t;
    for (int i = 0; i < 100; i++) {
        ASSERT_OK(weft_timer_new(s, log_cb, l, &t));
        if (i % 3 == 0)
            ASSERT_OK(weft_timer_start(t, 1000 + i, i % 2 ? 10 : 0));
    }
}

/* weft_sched_free frees the timers still there, active or not (counted
 * by the library's allocation hook; ASan and Valgrind check it too). */
TEST(sched_free_frees_timers)
{
    struct tlog *l = new_log(NULL);
    long before = weft__test_live_allocs();
    weft_sched *s = manual_sched();
    l->s = s;
    make_timers(s, l);
    ASSERT_GT(s->active_timers, 0);
    ASSERT_GE(weft__test_live_allocs(), before + 101);
    ASSERT_OK(weft_sched_free(s));
    ASSERT_EQ(weft__test_live_allocs(), before);
    ASSERT_EQ(l->n, 0);
    free(l);
}

/* An allocation failure makes weft_timer_new return -ENOMEM; a start that
 * needs the heap to grow returns -ENOMEM and leaves the timer stopped. */
TEST(timer_new_and_start_enomem)
{
    weft_sched *s = manual_sched();
    struct tlog *l = new_log(s);
    weft_timer *t = (weft_timer *)(uintptr_t)1;
    weft__test_fail_alloc(0, 0);
    ASSERT_ERR(weft_timer_new(s, log_cb, l, &t), -ENOMEM);
    ASSERT_NULL(t);
    ASSERT_OK(weft_timer_new(s, log_cb, l, &t));
    /* The heap of a fresh scheduler has no array yet. */
    ASSERT_EQ(s->heap.cap, 0);
    weft__test_fail_alloc(0, 1);
    ASSERT_ERR(weft_timer_start(t, 10, 0), -ENOMEM);
    ASSERT_ERR(weft_timer_start_at(t, 10, 5), -ENOMEM);
    weft__test_fail_alloc(-1, 0);
    ASSERT_EQ(weft_timer_active(t), 0);
    ASSERT_EQ(weft_run(s), 0); /* not counted as active */
    ASSERT_OK(weft_timer_start(t, 10, 0));
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(l->n, 1);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_sched_free(s));
    free(l);
}

/* ----------------------------------------------------------------------
 * Sleeping coroutines.
 * ---------------------------------------------------------------------- */

#define SLEEPERS 60

struct sleeper {
    int id;
    int64_t dur;
    int64_t woke_at;
    int rank;
    int result;
};

static int wake_rank;

static int sleeper_fn(void *arg)
{
    struct sleeper *sl = arg;
    sl->result = weft_sleep_for(sl->dur);
    sl->woke_at = weft_now(NULL);
    sl->rank = wake_rank++;
    return 0;
}

/* Sleepers wake in deadline order, each at exactly its deadline; equal
 * deadlines in the order they went to sleep. */
TEST(sleepers_wake_in_deadline_order)
{
    weft_sched *s = manual_sched();
    static struct sleeper sl[SLEEPERS];
    wake_rank = 0;
    for (int i = 0; i < SLEEPERS; i++) {
        sl[i].id = i;
        sl[i].dur = (int64_t)((i * 37) % 11 + 1) * 100; /* with ties */
        sl[i].rank = -1;
        ASSERT_OK(weft_spawn(s, sleeper_fn, &sl[i], NULL, NULL));
    }
    ASSERT_EQ(weft_run(s), 0);
    for (int i = 0; i < SLEEPERS; i++) {
        ASSERT_OK(sl[i].result);
        ASSERT_EQ(sl[i].woke_at, sl[i].dur);
    }
    /* Rank order = (deadline, id) order. */
    for (int i = 0; i < SLEEPERS; i++)
        for (int j = 0; j < SLEEPERS; j++) {
            int before = sl[i].dur < sl[j].dur ||
                         (sl[i].dur == sl[j].dur && i < j);
            if (before)
                ASSERT_LT(sl[i].rank, sl[j].rank);
        }
    ASSERT_EQ(weft_now(s), 1100);
    ASSERT_OK(weft_sched_free(s));
}

#define STEADY 100
#define STEADY_ROUNDS 20

struct steady {
    int id;
    int done;
    int errors;
};

static int steady_sleeps;

static int steady_fn(void *arg)
{
    struct steady *st = arg;
    for (int k = 0; k < STEADY_ROUNDS; k++) {
        int64_t before = weft_now(NULL);
        int64_t d = 1 + (st->id * 7 + k) % 13;
        if (weft_sleep_for(d) != 0 || weft_now(NULL) != before + d)
            st->errors++;
        steady_sleeps++;
    }
    st->done = 1;
    return 0;
}

/* Once the timer heap has grown, sleeping allocates nothing: with every
 * allocation failing, sleeps still succeed. */
TEST(sleep_allocates_nothing_in_steady_state)
{
    weft_sched *s = manual_sched();
    static struct steady st[STEADY];
    steady_sleeps = 0;
    for (int i = 0; i < STEADY; i++) {
        st[i].id = i;
        st[i].done = 0;
        st[i].errors = 0;
        ASSERT_OK(weft_spawn(s, steady_fn, &st[i], NULL, NULL));
    }
    /* Warm up: every sleeper has slept twice (the heap grew past 64). */
    while (steady_sleeps < 2 * STEADY)
        ASSERT_EQ(weft_run_once(s, -1), 1);
    ASSERT_GE(s->heap.cap, STEADY);
    weft__test_fail_alloc(0, 1);
    int r = weft_run(s);
    weft__test_fail_alloc(-1, 0);
    ASSERT_EQ(r, 0);
    ASSERT_EQ(steady_sleeps, STEADY * STEADY_ROUNDS);
    for (int i = 0; i < STEADY; i++) {
        ASSERT(st[i].done);
        ASSERT_EQ(st[i].errors, 0);
    }
    ASSERT_OK(weft_sched_free(s));
}

/* The counter-check of the case above: a sleep that does need memory (the
 * first one, on a heap with no array) fails with -ENOMEM under the same
 * hook, so the hook would have caught an allocation. */
static int enomem_result;

static int sleep_once_fn(void *arg)
{
    (void)arg;
    weft__test_fail_alloc(0, 1);
    enomem_result = weft_sleep_for(100);
    weft__test_fail_alloc(-1, 0);
    return 0;
}

TEST(sleep_that_needs_memory_fails_cleanly)
{
    weft_sched *s = manual_sched();
    enomem_result = 1;
    ASSERT_OK(weft_spawn(s, sleep_once_fn, NULL, NULL, NULL));
    ASSERT_EQ(s->heap.cap, 0);
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_ERR(enomem_result, -ENOMEM);
    ASSERT_EQ(weft_now(s), 0);
    ASSERT_OK(weft_sched_free(s));
}

/* Repeats near the end of time saturate at INT64_MAX instead of
 * overflowing (UBSan checks the arithmetic), also for a first deadline far
 * in the past and a period larger than what is left. */
TEST(repeat_near_end_of_time)
{
    weft_sched *s = manual_sched();
    struct tlog *l = new_log(s);
    weft_timer *t;
    ASSERT_OK(weft_timer_new(s, log_cb, l, &t));
    ASSERT_OK(weft_clock_set(s, INT64_MAX - 100));
    ASSERT_OK(weft_timer_start(t, 0, 60));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(l->n, 1);
    ASSERT_EQ(weft_timer_due(t), INT64_MAX - 40);
    ASSERT_EQ(weft_run_once(s, -1), 1);
    ASSERT_EQ(l->n, 2);
    ASSERT_EQ(l->at[1], INT64_MAX - 40);
    ASSERT_EQ(weft_timer_due(t), INT64_MAX); /* +20 past the end */
    ASSERT_EQ(weft_timer_active(t), 1);
    /* A grid that started long ago, with a huge period. */
    ASSERT_OK(weft_timer_start_at(t, INT64_MIN + 5, INT64_MAX / 2));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(l->n, 3);
    ASSERT_EQ(weft_timer_due(t), INT64_MAX);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_sched_free(s));
    free(l);
}

/* weft_timer_set_repeat from a callback (as libuv's uv_timer_set_repeat):
 * the next deadline was already computed with the old period, so the new
 * one applies from the firing after; a one-shot timer has already stopped
 * and does not start repeating. */
static int64_t new_repeat;

static void set_repeat_cb(weft_timer *t, void *arg)
{
    struct tlog *l = arg;
    log_cb(t, arg);
    if (l->n == 1)
        ASSERT_OK(weft_timer_set_repeat(t, new_repeat));
    if (l->n == 4)
        ASSERT_OK(weft_timer_stop(t));
}

TEST(set_repeat_from_callback)
{
    weft_sched *s = manual_sched();
    struct tlog *l = new_log(s);
    weft_timer *t;
    ASSERT_OK(weft_timer_new(s, set_repeat_cb, l, &t));
    new_repeat = 20;
    ASSERT_OK(weft_timer_start(t, 100, 50));
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(l->n, 4);
    ASSERT_EQ(l->at[0], 100);
    ASSERT_EQ(l->at[1], 150); /* scheduled with the old period */
    ASSERT_EQ(l->at[2], 170);
    ASSERT_EQ(l->at[3], 190);
    /* One-shot: set_repeat in its callback does not revive it. */
    l->n = 0;
    ASSERT_OK(weft_timer_start(t, 10, 0));
    ASSERT_EQ(weft_run(s), 0);
    ASSERT_EQ(l->n, 1);
    ASSERT_EQ(weft_timer_active(t), 0);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_sched_free(s));
    free(l);
}

/* A NULL scheduler means the thread's current (here: default) one. */
static int default_fired;

static void default_cb(weft_timer *t, void *arg)
{
    (void)t;
    (void)arg;
    default_fired++;
}

TEST(timer_on_default_scheduler)
{
    weft_timer *t;
    default_fired = 0;
    ASSERT_OK(weft_timer_new(NULL, default_cb, NULL, &t));
    ASSERT_OK(weft_timer_start(t, 0, 0));
    ASSERT_EQ(weft_run(NULL), 0);
    ASSERT_EQ(default_fired, 1);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_sched_free(weft_sched_default()));
}

/* A timer belongs to its scheduler's thread: from another thread every
 * call that changes it returns -EINVAL and changes nothing. */
struct xthread {
    weft_sched *s;
    weft_timer *t;
    int r[8];
};

static void *other_thread(void *p)
{
    struct xthread *x = p;
    weft_timer *t2 = NULL;
    x->r[0] = weft_timer_start(x->t, 10, 0);
    x->r[1] = weft_timer_start_at(x->t, 10, 0);
    x->r[2] = weft_timer_stop(x->t);
    x->r[3] = weft_timer_again(x->t);
    x->r[4] = weft_timer_set_repeat(x->t, 5);
    x->r[5] = weft_timer_free(x->t);
    x->r[6] = weft_timer_new(x->s, default_cb, NULL, &t2);
    x->r[7] = t2 == NULL;
    return NULL;
}

TEST(timer_calls_from_other_thread_einval)
{
    struct xthread x;
    pthread_t th;
    memset(&x, 0, sizeof x);
    x.s = manual_sched();
    ASSERT_OK(weft_timer_new(x.s, default_cb, NULL, &x.t));
    ASSERT_OK(weft_timer_start(x.t, 100, 7));
    ASSERT_EQ(pthread_create(&th, NULL, other_thread, &x), 0);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    for (int i = 0; i < 7; i++)
        ASSERT_ERR(x.r[i], -EINVAL);
    ASSERT_EQ(x.r[7], 1);
    ASSERT_EQ(weft_timer_active(x.t), 1);
    ASSERT_EQ(weft_timer_due(x.t), 100);
    ASSERT_OK(weft_timer_again(x.t)); /* repeat still 7 */
    ASSERT_EQ(weft_timer_due(x.t), 7);
    ASSERT_OK(weft_timer_free(x.t));
    ASSERT_OK(weft_sched_free(x.s));
}
