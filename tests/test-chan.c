/*
 * test-chan.c - channels: buffered and unbuffered (rendezvous) send and
 * receive, try variants, deadlines on a manual clock, FIFO order of items,
 * senders and receivers, close (drain, then -EPIPE), cancellation while
 * waiting and the races where an item meets a waiter that gave up or was
 * interrupted after being woken, bad input, freeing.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "test.h"
#include "util.h"

void weft__test_fail_alloc(long n, int sticky);
long weft__test_live_allocs(void);

/* ----------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */

/* new_manual, trace_reset/trace_add, go, reap: tests/util.h */

#define ITEM(n) ((void *)(intptr_t)(n))
#define NUM(p) ((int)(intptr_t)(p))

/* One send or receive by a coroutine, after an optional sleep. */
struct op {
    weft_chan *ch;
    int send;         /* 1: send item; 0: receive into item */
    void *item;
    int64_t start;    /* sleep until this time first (0: don't) */
    int64_t deadline;
    char tag;         /* traced when the call returns */
    int r;            /* 1 until returned */
    int64_t t;        /* time of return */
    int after;        /* result of a weft_yield() after the call */
};

static int op_body(void *arg)
{
    struct op *o = arg;
    if (o->start > 0)
        ASSERT_OK(weft_sleep_until(o->start));
    if (o->send)
        o->r = weft_chan_send(o->ch, o->item, o->deadline);
    else
        o->r = weft_chan_recv(o->ch, &o->item, o->deadline);
    o->t = weft_now(NULL);
    if (o->tag)
        trace_add(o->tag);
    o->after = weft_yield();
    return 0;
}

static struct op snd(weft_chan *ch, int n, int64_t deadline, char tag)
{
    struct op o;
    memset(&o, 0, sizeof o);
    o.ch = ch;
    o.send = 1;
    o.item = ITEM(n);
    o.deadline = deadline;
    o.tag = tag;
    o.r = 1;
    o.after = 1;
    return o;
}

static struct op rcv(weft_chan *ch, int64_t deadline, char tag)
{
    struct op o = snd(ch, 0, deadline, tag);
    o.send = 0;
    o.item = ITEM(-1);
    return o;
}

/* ----------------------------------------------------------------------
 * Basics
 * ---------------------------------------------------------------------- */

TEST(bad_arguments)
{
    weft_sched *s = new_manual();
    weft_chan *ch;
    void *it;
    ASSERT_ERR(weft_chan_new(s, 0, NULL), -EINVAL);
    ASSERT_ERR(weft_chan_new(s, SIZE_MAX, &ch), -EINVAL);
    ASSERT_ERR(weft_chan_new(s, SIZE_MAX / sizeof(void *) + 1, &ch), -EINVAL);
    ASSERT_ERR(weft_chan_free(NULL), -EINVAL);
    ASSERT_ERR(weft_chan_send(NULL, NULL, -1), -EINVAL);
    ASSERT_ERR(weft_chan_recv(NULL, &it, -1), -EINVAL);
    ASSERT_ERR(weft_chan_try_send(NULL, NULL), -EINVAL);
    ASSERT_ERR(weft_chan_try_recv(NULL, &it), -EINVAL);
    ASSERT_ERR(weft_chan_close(NULL), -EINVAL);
    ASSERT_ERR(weft_chan_len(NULL), -EINVAL);
    ASSERT_ERR(weft_chan_cap(NULL), -EINVAL);
    ASSERT_ERR(weft_chan_closed(NULL), -EINVAL);
    ASSERT_OK(weft_chan_new(s, 4, &ch));
    /* Blocking calls outside a coroutine, even when they need not wait. */
    ASSERT_ERR(weft_chan_send(ch, NULL, -1), -EINVAL);
    ASSERT_ERR(weft_chan_recv(ch, &it, -1), -EINVAL);
    ASSERT_EQ(weft_chan_len(ch), 0);
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}

TEST(queries)
{
    weft_sched *s = new_manual();
    weft_chan *a, *b;
    ASSERT_OK(weft_chan_new(s, 0, &a));
    ASSERT_OK(weft_chan_new(s, 3, &b));
    ASSERT_EQ(weft_chan_cap(a), 0);
    ASSERT_EQ(weft_chan_cap(b), 3);
    ASSERT_EQ(weft_chan_len(b), 0);
    ASSERT_EQ(weft_chan_closed(b), 0);
    ASSERT_OK(weft_chan_try_send(b, ITEM(1)));
    ASSERT_EQ(weft_chan_len(b), 1);
    ASSERT_OK(weft_chan_close(b));
    ASSERT_EQ(weft_chan_closed(b), 1);
    ASSERT_EQ(weft_chan_len(b), 1);
    ASSERT_OK(weft_chan_free(a));
    ASSERT_OK(weft_chan_free(b)); /* with an item buffered: dropped */
    ASSERT_OK(weft_sched_free(s));
}

TEST(buffered_try_variants_are_fifo)
{
    weft_sched *s = new_manual();
    weft_chan *ch;
    void *it = NULL;
    ASSERT_OK(weft_chan_new(s, 3, &ch));
    ASSERT_ERR(weft_chan_try_recv(ch, &it), -EAGAIN);
    /* Wrap around the ring a few times. */
    int next_in = 1, next_out = 1;
    for (int round = 0; round < 5; round++) {
        while (weft_chan_try_send(ch, ITEM(next_in)) == 0)
            next_in++;
        ASSERT_EQ(weft_chan_len(ch), 3);
        ASSERT_ERR(weft_chan_try_send(ch, ITEM(99)), -EAGAIN);
        ASSERT_OK(weft_chan_try_recv(ch, &it));
        ASSERT_EQ(NUM(it), next_out++);
        ASSERT_OK(weft_chan_try_recv(ch, &it));
        ASSERT_EQ(NUM(it), next_out++);
    }
    while (weft_chan_try_recv(ch, &it) == 0)
        ASSERT_EQ(NUM(it), next_out++);
    ASSERT_EQ(next_out, next_in);
    ASSERT_OK(weft_chan_try_send(ch, ITEM(7)));
    ASSERT_OK(weft_chan_try_recv(ch, NULL)); /* discarded */
    ASSERT_EQ(weft_chan_len(ch), 0);
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}

TEST(unbuffered_try_variants_need_a_partner)
{
    weft_sched *s = new_manual();
    weft_chan *ch;
    void *it;
    ASSERT_OK(weft_chan_new(s, 0, &ch));
    ASSERT_ERR(weft_chan_try_send(ch, ITEM(1)), -EAGAIN);
    ASSERT_ERR(weft_chan_try_recv(ch, &it), -EAGAIN);
    /* With a receiver waiting, try_send hands over. */
    struct op r = rcv(ch, -1, 0);
    weft_coro *co = go(s, op_body, &r);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_chan_try_send(ch, ITEM(5)));
    ASSERT_ERR(weft_chan_try_send(ch, ITEM(6)), -EAGAIN);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(r.r);
    ASSERT_EQ(NUM(r.item), 5);
    reap(co);
    /* With a sender waiting, try_recv takes its item. */
    struct op w = snd(ch, 8, -1, 0);
    co = go(s, op_body, &w);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_chan_try_recv(ch, &it));
    ASSERT_EQ(NUM(it), 8);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(w.r);
    reap(co);
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Blocking send and receive
 * ---------------------------------------------------------------------- */

TEST(unbuffered_send_completes_only_when_received)
{
    weft_sched *s = new_manual();
    weft_chan *ch;
    trace_reset();
    ASSERT_OK(weft_chan_new(s, 0, &ch));
    struct op w = snd(ch, 42, -1, 's');
    struct op r = rcv(ch, -1, 'r');
    r.start = WEFT_MSEC(5);
    weft_coro *cw = go(s, op_body, &w);
    weft_coro *cr = go(s, op_body, &r);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(w.r);
    ASSERT_OK(r.r);
    ASSERT_EQ(NUM(r.item), 42);
    ASSERT_EQ(w.t, WEFT_MSEC(5)); /* not before the receiver took it */
    ASSERT_EQ(r.t, WEFT_MSEC(5));
    ASSERT_STR_EQ(trace, "rs"); /* receiver returns first, sender woken */
    reap(cw);
    reap(cr);
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}

TEST(unbuffered_receive_waits_for_a_sender)
{
    weft_sched *s = new_manual();
    weft_chan *ch;
    trace_reset();
    ASSERT_OK(weft_chan_new(s, 0, &ch));
    struct op r = rcv(ch, -1, 'r');
    struct op w = snd(ch, 9, -1, 's');
    w.start = WEFT_MSEC(3);
    weft_coro *cr = go(s, op_body, &r);
    weft_coro *cw = go(s, op_body, &w);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(r.r);
    ASSERT_EQ(NUM(r.item), 9);
    ASSERT_EQ(r.t, WEFT_MSEC(3));
    ASSERT_OK(w.r);
    ASSERT_STR_EQ(trace, "sr"); /* the sender completes at once */
    reap(cw);
    reap(cr);
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}

/* Sends n items, one per call, recording when each send returned. */
struct producer {
    weft_chan *ch;
    int n;
    int64_t t[8];
    int close_after;
};

static int produce(void *arg)
{
    struct producer *p = arg;
    for (int i = 1; i <= p->n; i++) {
        ASSERT_OK(weft_chan_send(p->ch, ITEM(i), -1));
        p->t[i - 1] = weft_now(NULL);
    }
    if (p->close_after)
        ASSERT_OK(weft_chan_close(p->ch));
    return 0;
}

/* Receives every `every` ns until the channel is closed and drained. */
struct consumer {
    weft_chan *ch;
    int64_t every;
    int got[16];
    int n;
    int end;
};

static int consume(void *arg)
{
    struct consumer *c = arg;
    for (;;) {
        void *it;
        if (c->every)
            ASSERT_OK(weft_sleep_for(c->every));
        int r = weft_chan_recv(c->ch, &it, -1);
        if (r < 0) {
            c->end = r;
            return 0;
        }
        ASSERT_LT(c->n, 16);
        c->got[c->n++] = NUM(it);
    }
}

TEST(buffered_sender_waits_while_full)
{
    weft_sched *s = new_manual();
    weft_chan *ch;
    ASSERT_OK(weft_chan_new(s, 2, &ch));
    struct producer p;
    memset(&p, 0, sizeof p);
    p.ch = ch;
    p.n = 5;
    p.close_after = 1;
    struct consumer c;
    memset(&c, 0, sizeof c);
    c.ch = ch;
    c.every = WEFT_MSEC(10);
    weft_coro *cp = go(s, produce, &p);
    weft_coro *cc = go(s, consume, &c);
    ASSERT_OK(weft_run(s));
    /* Two sends fit at once; each later one waits for a free place. */
    ASSERT_EQ(p.t[0], 0);
    ASSERT_EQ(p.t[1], 0);
    ASSERT_EQ(p.t[2], WEFT_MSEC(10));
    ASSERT_EQ(p.t[3], WEFT_MSEC(20));
    ASSERT_EQ(p.t[4], WEFT_MSEC(30));
    ASSERT_EQ(c.n, 5);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(c.got[i], i + 1);
    ASSERT_ERR(c.end, -EPIPE);
    reap(cp);
    reap(cc);
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}

TEST(receive_moves_a_waiting_senders_item_into_the_buffer)
{
    weft_sched *s = new_manual();
    weft_chan *ch;
    void *it;
    ASSERT_OK(weft_chan_new(s, 2, &ch));
    ASSERT_OK(weft_chan_try_send(ch, ITEM(1)));
    ASSERT_OK(weft_chan_try_send(ch, ITEM(2)));
    struct op w = snd(ch, 3, -1, 0);
    weft_coro *cw = go(s, op_body, &w);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(w.r, 1);
    ASSERT_OK(weft_chan_try_recv(ch, &it));
    ASSERT_EQ(NUM(it), 1);
    ASSERT_EQ(weft_chan_len(ch), 2); /* 2 and 3 */
    ASSERT_OK(weft_run(s));
    ASSERT_OK(w.r); /* its item is in the buffer: the send is done */
    ASSERT_OK(weft_chan_try_recv(ch, &it));
    ASSERT_EQ(NUM(it), 2);
    ASSERT_OK(weft_chan_try_recv(ch, &it));
    ASSERT_EQ(NUM(it), 3);
    reap(cw);
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}

TEST(senders_are_served_in_fifo_order)
{
    for (size_t cap = 0; cap <= 1; cap++) {
        weft_sched *s = new_manual();
        weft_chan *ch;
        trace_reset();
        ASSERT_OK(weft_chan_new(s, cap, &ch));
        if (cap)
            ASSERT_OK(weft_chan_try_send(ch, ITEM(0)));
        struct op w[3] = {snd(ch, 1, -1, 'a'), snd(ch, 2, WEFT_SEC(1), 'b'),
                          snd(ch, 3, -1, 'c')};
        weft_coro *co[3];
        for (int i = 0; i < 3; i++)
            co[i] = go(s, op_body, &w[i]);
        struct consumer c;
        memset(&c, 0, sizeof c);
        c.ch = ch;
        c.every = WEFT_MSEC(1);
        weft_coro *cc = go(s, consume, &c);
        ASSERT_EQ(weft_run(s), -EDEADLK); /* the consumer waits forever */
        ASSERT_EQ(c.n, 3 + (int)cap);
        for (int i = 0; i < c.n; i++)
            ASSERT_EQ(c.got[i], i + 1 - (int)cap);
        ASSERT_STR_EQ(trace, "abc");
        for (int i = 0; i < 3; i++) {
            ASSERT_OK(w[i].r);
            reap(co[i]);
        }
        ASSERT_OK(weft_chan_close(ch));
        ASSERT_OK(weft_run(s));
        ASSERT_ERR(c.end, -EPIPE);
        reap(cc);
        ASSERT_OK(weft_chan_free(ch));
        ASSERT_OK(weft_sched_free(s));
    }
}

TEST(receivers_are_served_in_fifo_order)
{
    for (size_t cap = 0; cap <= 2; cap += 2) {
        weft_sched *s = new_manual();
        weft_chan *ch;
        trace_reset();
        ASSERT_OK(weft_chan_new(s, cap, &ch));
        struct op r[3] = {rcv(ch, -1, 'a'), rcv(ch, WEFT_SEC(1), 'b'),
                          rcv(ch, -1, 'c')};
        weft_coro *co[3];
        for (int i = 0; i < 3; i++)
            co[i] = go(s, op_body, &r[i]);
        ASSERT_EQ(weft_run_once(s, 0), 1);
        for (int i = 1; i <= 3; i++)
            ASSERT_OK(weft_chan_try_send(ch, ITEM(i)));
        ASSERT_EQ(weft_chan_len(ch), 0); /* handed over, not buffered */
        ASSERT_OK(weft_run(s));
        ASSERT_STR_EQ(trace, "abc");
        for (int i = 0; i < 3; i++) {
            ASSERT_OK(r[i].r);
            ASSERT_EQ(NUM(r[i].item), i + 1);
            reap(co[i]);
        }
        ASSERT_OK(weft_chan_free(ch));
        ASSERT_OK(weft_sched_free(s));
    }
}

static int send_recv_available(void *arg)
{
    weft_chan *ch = arg;
    void *it;
    ASSERT_OK(weft_chan_send(ch, ITEM(1), -1));
    ASSERT_OK(weft_chan_send(ch, ITEM(2), 0)); /* room: past deadline ok */
    ASSERT_OK(weft_chan_recv(ch, &it, 0));
    ASSERT_EQ(NUM(it), 1);
    ASSERT_OK(weft_chan_recv(ch, NULL, -1)); /* discard */
    ASSERT_ERR(weft_chan_send(ch, ITEM(3), -2), -EINVAL);
    ASSERT_ERR(weft_chan_recv(ch, &it, -2), -EINVAL);
    return 0;
}

TEST(send_and_receive_without_waiting)
{
    weft_sched *s = new_manual();
    weft_chan *ch;
    ASSERT_OK(weft_chan_new(s, 2, &ch));
    weft_coro *co = go(s, send_recv_available, ch);
    ASSERT_OK(weft_run(s));
    reap(co);
    ASSERT_EQ(weft_chan_len(ch), 0);
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Deadlines
 * ---------------------------------------------------------------------- */

TEST(send_times_out_and_the_item_is_not_sent)
{
    weft_sched *s = new_manual();
    weft_chan *ch;
    void *it;
    ASSERT_OK(weft_chan_new(s, 0, &ch));
    struct op w = snd(ch, 1, WEFT_MSEC(4), 0);
    weft_coro *co = go(s, op_body, &w);
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(w.r, -ETIMEDOUT);
    ASSERT_EQ(w.t, WEFT_MSEC(4));
    ASSERT_ERR(weft_chan_try_recv(ch, &it), -EAGAIN);
    reap(co);
    /* Buffered and full: the same. */
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_chan_new(s, 1, &ch));
    ASSERT_OK(weft_chan_try_send(ch, ITEM(7)));
    w = snd(ch, 8, WEFT_MSEC(10), 0);
    co = go(s, op_body, &w);
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(w.r, -ETIMEDOUT);
    ASSERT_EQ(w.t, WEFT_MSEC(10));
    ASSERT_OK(weft_chan_try_recv(ch, &it));
    ASSERT_EQ(NUM(it), 7);
    ASSERT_ERR(weft_chan_try_recv(ch, &it), -EAGAIN);
    reap(co);
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}

TEST(receive_times_out)
{
    weft_sched *s = new_manual();
    weft_chan *ch;
    ASSERT_OK(weft_chan_new(s, 3, &ch));
    struct op r = rcv(ch, WEFT_MSEC(6), 0);
    weft_coro *co = go(s, op_body, &r);
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(r.r, -ETIMEDOUT);
    ASSERT_EQ(r.t, WEFT_MSEC(6));
    ASSERT_EQ(NUM(r.item), -1); /* untouched */
    ASSERT_OK(weft_chan_try_send(ch, ITEM(1)));
    ASSERT_EQ(weft_chan_len(ch), 1); /* nobody took it */
    reap(co);
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}

static void try_send_cb(weft_timer *t, void *arg)
{
    (void)t;
    ASSERT_OK(weft_chan_try_send(arg, ITEM(77)));
}

/* An item arrives at the instant a's deadline fires (the deadline
 * first): it goes to b, not lost with a. */
TEST(item_racing_a_timed_out_receiver_goes_to_the_next)
{
    weft_sched *s = new_manual();
    weft_chan *ch;
    weft_timer *t;
    ASSERT_OK(weft_chan_new(s, 0, &ch));
    struct op a = rcv(ch, WEFT_MSEC(10), 0);
    struct op b = rcv(ch, -1, 0);
    weft_coro *ca = go(s, op_body, &a);
    weft_coro *cb = go(s, op_body, &b);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_timer_new(s, try_send_cb, ch, &t));
    ASSERT_OK(weft_timer_start_at(t, WEFT_MSEC(10), 0));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(a.r, -ETIMEDOUT);
    ASSERT_EQ(NUM(a.item), -1);
    ASSERT_OK(b.r);
    ASSERT_EQ(NUM(b.item), 77);
    reap(ca);
    reap(cb);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}

static void try_recv_cb(weft_timer *t, void *arg)
{
    void **p = arg;
    (void)t;
    ASSERT_OK(weft_chan_try_recv(p[0], &p[1]));
}

TEST(receive_racing_a_timed_out_sender_takes_the_next_item)
{
    weft_sched *s = new_manual();
    weft_chan *ch;
    weft_timer *t;
    ASSERT_OK(weft_chan_new(s, 0, &ch));
    struct op a = snd(ch, 1, WEFT_MSEC(10), 0);
    struct op b = snd(ch, 2, -1, 0);
    weft_coro *ca = go(s, op_body, &a);
    weft_coro *cb = go(s, op_body, &b);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    void *p[2] = {ch, NULL};
    ASSERT_OK(weft_timer_new(s, try_recv_cb, p, &t));
    ASSERT_OK(weft_timer_start_at(t, WEFT_MSEC(10), 0));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(a.r, -ETIMEDOUT);
    ASSERT_OK(b.r);
    ASSERT_EQ(NUM(p[1]), 2);
    reap(ca);
    reap(cb);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Cancellation
 * ---------------------------------------------------------------------- */

TEST(woken_receiver_ended_before_running_keeps_the_item)
{
    weft_sched *s = new_manual();
    weft_chan *ch;
    void *it;
    ASSERT_OK(weft_chan_new(s, 0, &ch));
    struct op a = rcv(ch, -1, 0);
    struct op b = rcv(ch, -1, 0);
    weft_coro *ca = go(s, op_body, &a);
    weft_coro *cb = go(s, op_body, &b);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_chan_try_send(ch, ITEM(5)));
    ASSERT_OK(weft_end(ca));
    ASSERT_OK(weft_raise(ca, -EINTR));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(a.r);
    ASSERT_EQ(NUM(a.item), 5);
    ASSERT_ERR(a.after, -ECANCELED);
    ASSERT_EQ(b.r, 1); /* still waiting: the item was a's */
    ASSERT_ERR(weft_chan_try_recv(ch, &it), -EAGAIN);
    ASSERT_OK(weft_chan_try_send(ch, ITEM(6)));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(NUM(b.item), 6);
    reap(ca);
    reap(cb);
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}

TEST(woken_sender_raised_before_running_has_sent)
{
    weft_sched *s = new_manual();
    weft_chan *ch;
    void *it;
    ASSERT_OK(weft_chan_new(s, 0, &ch));
    struct op a = snd(ch, 3, -1, 0);
    weft_coro *ca = go(s, op_body, &a);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_chan_try_recv(ch, &it));
    ASSERT_EQ(NUM(it), 3);
    ASSERT_OK(weft_raise(ca, -EINTR));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(a.r); /* the item was taken: the send succeeded */
    ASSERT_ERR(a.after, -EINTR);
    reap(ca);
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}

TEST(waiters_ended_or_raised_leave_the_queues)
{
    weft_sched *s = new_manual();
    weft_chan *ch;
    void *it;
    ASSERT_OK(weft_chan_new(s, 0, &ch));
    struct op a = snd(ch, 1, -1, 0);
    struct op b = snd(ch, 2, -1, 0);
    struct op c = snd(ch, 3, -1, 0);
    weft_coro *ca = go(s, op_body, &a);
    weft_coro *cb = go(s, op_body, &b);
    weft_coro *cc = go(s, op_body, &c);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_end(ca));
    ASSERT_OK(weft_raise(cb, -EINTR));
    ASSERT_OK(weft_chan_try_recv(ch, &it));
    ASSERT_EQ(NUM(it), 3);
    ASSERT_ERR(weft_chan_try_recv(ch, &it), -EAGAIN);
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(a.r, -ECANCELED);
    ASSERT_ERR(b.r, -EINTR);
    ASSERT_OK(c.r);
    reap(ca);
    reap(cb);
    reap(cc);
    /* The same for receivers. */
    struct op r1 = rcv(ch, -1, 0);
    struct op r2 = rcv(ch, -1, 0);
    ca = go(s, op_body, &r1);
    cb = go(s, op_body, &r2);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_end(ca));
    ASSERT_OK(weft_chan_try_send(ch, ITEM(9)));
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(r1.r, -ECANCELED);
    ASSERT_OK(r2.r);
    ASSERT_EQ(NUM(r2.item), 9);
    reap(ca);
    reap(cb);
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}

static int ended_ops(void *arg)
{
    weft_chan *ch = arg;
    void *it;
    ASSERT_OK(weft_end(weft_self()));
    /* Both could complete at once, but the caller is ended. */
    ASSERT_ERR(weft_chan_send(ch, ITEM(1), -1), -ECANCELED);
    ASSERT_ERR(weft_chan_recv(ch, &it, -1), -ECANCELED);
    /* The try variants do not block and still work. */
    ASSERT_OK(weft_chan_try_recv(ch, &it));
    ASSERT_EQ(NUM(it), 4);
    ASSERT_OK(weft_chan_try_send(ch, ITEM(5)));
    return 0;
}

TEST(ended_coroutine_cannot_send_or_receive)
{
    weft_sched *s = new_manual();
    weft_chan *ch;
    ASSERT_OK(weft_chan_new(s, 2, &ch));
    ASSERT_OK(weft_chan_try_send(ch, ITEM(4)));
    weft_coro *co = go(s, ended_ops, ch);
    ASSERT_OK(weft_run(s));
    reap(co);
    ASSERT_EQ(weft_chan_len(ch), 1);
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Close
 * ---------------------------------------------------------------------- */

static int closed_ops(void *arg)
{
    weft_chan *ch = arg;
    void *it;
    ASSERT_ERR(weft_chan_send(ch, ITEM(1), -1), -EPIPE);
    ASSERT_OK(weft_chan_recv(ch, &it, -1)); /* drains first */
    ASSERT_EQ(NUM(it), 10);
    ASSERT_OK(weft_chan_recv(ch, &it, 0));
    ASSERT_EQ(NUM(it), 11);
    ASSERT_ERR(weft_chan_recv(ch, &it, -1), -EPIPE);
    ASSERT_ERR(weft_chan_recv(ch, &it, -1), -EPIPE);
    return 0;
}

TEST(close_drains_then_epipe)
{
    weft_sched *s = new_manual();
    weft_chan *ch;
    void *it;
    ASSERT_OK(weft_chan_new(s, 4, &ch));
    ASSERT_OK(weft_chan_try_send(ch, ITEM(10)));
    ASSERT_OK(weft_chan_try_send(ch, ITEM(11)));
    ASSERT_OK(weft_chan_close(ch));
    ASSERT_ERR(weft_chan_close(ch), -EPIPE);
    ASSERT_ERR(weft_chan_try_send(ch, ITEM(1)), -EPIPE);
    weft_coro *co = go(s, closed_ops, ch);
    ASSERT_OK(weft_run(s));
    reap(co);
    ASSERT_ERR(weft_chan_try_recv(ch, &it), -EPIPE);
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}

TEST(close_wakes_waiting_receivers_and_senders)
{
    for (size_t cap = 0; cap <= 1; cap++) {
        weft_sched *s = new_manual();
        weft_chan *ch;
        void *it;
        ASSERT_OK(weft_chan_new(s, cap, &ch));
        struct op r[2] = {rcv(ch, -1, 0), rcv(ch, WEFT_SEC(1), 0)};
        weft_coro *cr[2];
        for (int i = 0; i < 2; i++)
            cr[i] = go(s, op_body, &r[i]);
        ASSERT_EQ(weft_run_once(s, 0), 1);
        ASSERT_OK(weft_chan_close(ch));
        ASSERT_OK(weft_run(s));
        for (int i = 0; i < 2; i++) {
            ASSERT_ERR(r[i].r, -EPIPE);
            ASSERT_EQ(r[i].t, 0);
            reap(cr[i]);
        }
        ASSERT_OK(weft_chan_free(ch));

        /* Senders waiting on a full (or unbuffered) channel. */
        ASSERT_OK(weft_chan_new(s, cap, &ch));
        if (cap)
            ASSERT_OK(weft_chan_try_send(ch, ITEM(1)));
        struct op w[2] = {snd(ch, 2, -1, 0), snd(ch, 3, WEFT_SEC(1), 0)};
        weft_coro *cw[2];
        for (int i = 0; i < 2; i++)
            cw[i] = go(s, op_body, &w[i]);
        ASSERT_EQ(weft_run_once(s, 0), 1);
        ASSERT_OK(weft_chan_close(ch));
        ASSERT_OK(weft_run(s));
        for (int i = 0; i < 2; i++) {
            ASSERT_ERR(w[i].r, -EPIPE); /* their items were not sent */
            reap(cw[i]);
        }
        if (cap) {
            ASSERT_OK(weft_chan_try_recv(ch, &it));
            ASSERT_EQ(NUM(it), 1);
        }
        ASSERT_ERR(weft_chan_try_recv(ch, &it), -EPIPE);
        ASSERT_OK(weft_chan_free(ch));
        ASSERT_OK(weft_sched_free(s));
    }
}

TEST(pipeline_with_close)
{
    weft_sched *s = new_manual();
    weft_chan *ch;
    ASSERT_OK(weft_chan_new(s, 0, &ch));
    struct producer p;
    memset(&p, 0, sizeof p);
    p.ch = ch;
    p.n = 8;
    p.close_after = 1;
    struct consumer c1, c2;
    memset(&c1, 0, sizeof c1);
    memset(&c2, 0, sizeof c2);
    c1.ch = c2.ch = ch;
    weft_coro *cp = go(s, produce, &p);
    weft_coro *k1 = go(s, consume, &c1);
    weft_coro *k2 = go(s, consume, &c2);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(c1.n + c2.n, 8);
    int sum = 0;
    for (int i = 0; i < c1.n; i++)
        sum += c1.got[i];
    for (int i = 0; i < c2.n; i++)
        sum += c2.got[i];
    ASSERT_EQ(sum, 36);
    /* Each consumer saw increasing items. */
    for (int i = 1; i < c1.n; i++)
        ASSERT_LT(c1.got[i - 1], c1.got[i]);
    for (int i = 1; i < c2.n; i++)
        ASSERT_LT(c2.got[i - 1], c2.got[i]);
    ASSERT_ERR(c1.end, -EPIPE);
    ASSERT_ERR(c2.end, -EPIPE);
    reap(cp);
    reap(k1);
    reap(k2);
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * Freeing, threads
 * ---------------------------------------------------------------------- */

TEST(free_with_waiters_is_refused)
{
    weft_sched *s = new_manual();
    weft_chan *ch;
    ASSERT_OK(weft_chan_new(s, 0, &ch));
    struct op r = rcv(ch, -1, 0);
    weft_coro *co = go(s, op_body, &r);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_ERR(weft_chan_free(ch), -EBUSY);
    ASSERT_OK(weft_chan_try_send(ch, ITEM(1)));
    ASSERT_OK(weft_run(s));
    reap(co);
    struct op w = snd(ch, 1, -1, 0);
    co = go(s, op_body, &w);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_ERR(weft_chan_free(ch), -EBUSY);
    ASSERT_OK(weft_chan_close(ch));
    ASSERT_OK(weft_run(s));
    reap(co);
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}

TEST(freed_after_its_scheduler)
{
    long base = weft__test_live_allocs();
    weft_sched *s = new_manual();
    weft_chan *a, *b;
    ASSERT_OK(weft_chan_new(s, 0, &a));
    ASSERT_OK(weft_chan_new(s, 2, &b));
    struct op r = rcv(a, -1, 0);
    struct op w = snd(b, 1, -1, 0);
    ASSERT_OK(weft_chan_try_send(b, ITEM(1)));
    ASSERT_OK(weft_chan_try_send(b, ITEM(2)));
    go(s, op_body, &r);
    go(s, op_body, &w);
    ASSERT_EQ(weft_run(s), -EDEADLK);
    ASSERT_OK(weft_sched_free(s));
    ASSERT_OK(weft_chan_free(a));
    ASSERT_OK(weft_chan_free(b));
    ASSERT_EQ(weft__test_live_allocs(), base);
}

struct thread_arg {
    weft_chan *ch;
    int r[10];
};

static void *other_thread(void *p)
{
    struct thread_arg *ta = p;
    void *it;
    ta->r[0] = weft_chan_try_send(ta->ch, ITEM(1));
    ta->r[1] = weft_chan_try_recv(ta->ch, &it);
    ta->r[2] = weft_chan_send(ta->ch, ITEM(1), -1);
    ta->r[3] = weft_chan_recv(ta->ch, &it, -1);
    ta->r[4] = weft_chan_close(ta->ch);
    ta->r[5] = (int)weft_chan_len(ta->ch);
    ta->r[6] = (int)weft_chan_cap(ta->ch);
    ta->r[7] = weft_chan_closed(ta->ch);
    ta->r[8] = weft_chan_free(ta->ch);
    ta->r[9] = weft_chan_new(NULL, 0, NULL);
    return NULL;
}

TEST(other_thread_is_refused)
{
    weft_sched *s = new_manual();
    struct thread_arg ta;
    pthread_t t;
    ASSERT_OK(weft_chan_new(s, 2, &ta.ch));
    ASSERT_OK(weft_chan_try_send(ta.ch, ITEM(3)));
    ASSERT_OK(pthread_create(&t, NULL, other_thread, &ta));
    ASSERT_OK(pthread_join(t, NULL));
    for (int i = 0; i < 10; i++)
        ASSERT_ERR(ta.r[i], -EINVAL);
    ASSERT_EQ(weft_chan_len(ta.ch), 1);
    ASSERT_EQ(weft_chan_closed(ta.ch), 0);
    ASSERT_OK(weft_chan_free(ta.ch));
    ASSERT_OK(weft_sched_free(s));
}

TEST(out_of_memory)
{
    weft_sched *s = new_manual();
    weft_chan *ch = (weft_chan *)&ch;
    weft__test_fail_alloc(0, 0);
    ASSERT_ERR(weft_chan_new(s, 4, &ch), -ENOMEM); /* the record */
    ASSERT_NULL(ch);
    weft__test_fail_alloc(1, 0);
    ASSERT_ERR(weft_chan_new(s, 4, &ch), -ENOMEM); /* the buffer */
    weft__test_fail_alloc(-1, 0);
    ASSERT_OK(weft_chan_new(s, 4, &ch));
    ASSERT_OK(weft_chan_free(ch));
    ASSERT_OK(weft_sched_free(s));
}
