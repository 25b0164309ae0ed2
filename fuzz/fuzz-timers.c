/*
 * fuzz-timers.c - the timer heap (src/heap.c) against a model.
 *
 * The input is a sequence of operations on NNODES timer nodes: add (or
 * re-add) with a deadline, delete, run the timers due at some time, and
 * make the next allocation fail.  The model is a plain array searched
 * linearly for the smallest (due, seq).  Every fire is checked against
 * the model's choice, including the rule that timers (re)armed by the
 * callbacks of a run wait for the next run, and fired callbacks may
 * themselves add, re-add and delete nodes.  After every operation the
 * heap's shape is checked: the size, each node's index, the heap order,
 * and the minimum against the model.
 */
#include "fuzz.h"

#define NNODES 160 /* above the heap's first capacity (64): it grows */

struct node {
    struct weft__tnode t;
    /* What the callback does when it fires: */
    uint8_t action; /* 0 nothing, 1 re-add self, 2 delete other, 3 add other */
    uint8_t other;
    int64_t delta;
};

struct model {
    int in;
    int64_t due;
    uint64_t seq;
};

static weft_sched *S;
static struct node N[NNODES];
static struct model M[NNODES];
static uint64_t mseq;      /* the model's insertion counter */
static int64_t run_now;    /* `now` of the run in progress */
static uint64_t run_limit; /* seq limit of the run in progress */
static int fired;

static int before(const struct model *a, const struct model *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

/* The model's minimum, or -1. */
static int model_min(void)
{
    int best = -1;
    for (int i = 0; i < NNODES; i++)
        if (M[i].in && (best < 0 || before(&M[i], &M[best])))
            best = i;
    return best;
}

static void model_del(int i)
{
    M[i].in = 0;
}

/* weft__timer_add() on node i, and the same on the model. */
static void do_add(int i, int64_t due)
{
    int r = weft__timer_add(S, &N[i].t, due);
    model_del(i); /* removed first, even when the add then fails */
    if (r == 0) {
        M[i].in = 1;
        M[i].due = due;
        M[i].seq = mseq++;
        CHECK_EQ(N[i].t.seq, M[i].seq);
    } else {
        CHECK_EQ(r, -ENOMEM);
        CHECK_EQ(N[i].t.idx, WEFT__NOT_IN_HEAP);
    }
}

static void do_del(int i)
{
    weft__timer_del(S, &N[i].t);
    model_del(i);
}

static int64_t sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

static void on_fire(weft_sched *s, struct weft__tnode *t)
{
    struct node *n = (struct node *)(void *)t;
    int i = (int)(n - N);
    CHECK(s == S);
    CHECK(i >= 0 && i < NNODES);
    CHECK_EQ(t->idx, WEFT__NOT_IN_HEAP); /* removed before the call */
    /* The model's next timer of this run: the first due at run_now among
     * those armed before the run began (later ones wait for the next
     * run, even with an earlier deadline). */
    int want = -1;
    for (int k = 0; k < NNODES; k++)
        if (M[k].in && M[k].due <= run_now && M[k].seq < run_limit &&
            (want < 0 || before(&M[k], &M[want])))
            want = k;
    CHECK(want >= 0);
    CHECK_EQ(i, want);
    model_del(i);
    fired++;
    switch (n->action) {
    case 1:
        do_add(i, sat_add(M[i].due, n->delta));
        break;
    case 2:
        do_del(n->other);
        break;
    case 3:
        do_add(n->other, sat_add(run_now, n->delta));
        break;
    default:
        break;
    }
}

static void check_heap(void)
{
    const struct weft__heap *h = &S->heap;
    uint32_t count = 0;
    for (int i = 0; i < NNODES; i++) {
        if (M[i].in) {
            count++;
            CHECK(N[i].t.idx < h->n);
            CHECK(h->a[N[i].t.idx].t == &N[i].t);
            CHECK_EQ(h->a[N[i].t.idx].due, M[i].due); /* the entry's key */
            CHECK_EQ(h->a[N[i].t.idx].seq, M[i].seq);
            CHECK_EQ(N[i].t.due, M[i].due);
            CHECK_EQ(N[i].t.seq, M[i].seq);
        } else {
            CHECK_EQ(N[i].t.idx, WEFT__NOT_IN_HEAP);
        }
    }
    CHECK_EQ(h->n, count);
    CHECK(h->n <= h->cap);
    for (uint32_t k = 1; k < h->n; k++) {
        const struct weft__hent *c = &h->a[k], *p = &h->a[(k - 1) / 2];
        CHECK(p->due < c->due || (p->due == c->due && p->seq < c->seq));
    }
    int m = model_min();
    if (m >= 0)
        CHECK(h->a[0].t == &N[m].t);
    CHECK_EQ(S->timer_seq, mseq);
}

/* Deadlines: mostly small (many ties), sometimes extreme. */
static int64_t take_time(struct fz_in *in)
{
    unsigned b = fz_u8(in);
    switch (b >> 6) {
    case 0:
    case 1:
        return (int64_t)(b & 15);
    case 2:
        return (int64_t)fz_u8(in) * 1000;
    default:
        switch (b & 3) {
        case 0: return INT64_MAX;
        case 1: return INT64_MAX - (int64_t)fz_u8(in);
        case 2: return -(int64_t)fz_u8(in);
        default: return INT64_MIN + (int64_t)fz_u8(in);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    long base = weft__test_live_allocs();
    S = fz_sched();
    memset(N, 0, sizeof N);
    memset(M, 0, sizeof M);
    for (int i = 0; i < NNODES; i++)
        weft__tnode_init(&N[i].t, on_fire);
    mseq = S->timer_seq;

    while (fz_more(&in)) {
        unsigned op = fz_u8(&in);
        int i = (int)fz_pick(&in, NNODES);
        switch (op % 8) {
        case 0:
        case 1:
        case 2: /* add, with what the callback will do */
            N[i].action = (uint8_t)fz_pick(&in, 4);
            N[i].other = (uint8_t)fz_pick(&in, NNODES);
            N[i].delta = take_time(&in);
            do_add(i, take_time(&in));
            break;
        case 3:
        case 4:
            do_del(i);
            break;
        case 5:
        case 6: { /* run the timers due at `now` */
            run_now = take_time(&in);
            run_limit = S->timer_seq;
            fired = 0;
            int n = weft__timers_run(S, run_now);
            CHECK_EQ(n, fired);
            /* Nothing due is left behind, except what this run armed. */
            for (int k = 0; k < NNODES; k++)
                CHECK(!M[k].in || M[k].due > run_now || M[k].seq >= run_limit);
            break;
        }
        default: /* the next allocation (a heap growth) fails */
            weft__test_fail_alloc((long)fz_pick(&in, 3), 0);
            break;
        }
        check_heap();
    }
    weft__test_fail_alloc(-1, 0);
    for (int i = 0; i < NNODES; i++)
        do_del(i);
    check_heap();
    CHECK_EQ(weft_sched_free(S), 0);
    CHECK_EQ(weft__test_live_allocs(), base);
    return 0;
}
