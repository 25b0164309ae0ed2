/*
 * chan.c - channels: FIFO queues of void * items between coroutines,
 * unbuffered (capacity 0, a rendezvous) or buffered (a ring of capacity
 * items).
 *
 * Each waiter has a slot (struct cwait, on its stack, reached through
 * co->wait_obj): a waiting sender's slot holds the item it sends, a
 * waiting receiver's slot receives one.  Items move at wake time (see
 * wait.h), so a woken coroutine has completed its operation even if it is
 * raised into or ended before it runs, and a coroutine that gave up is no
 * longer queued, so no item is handed to it.
 *
 * Invariants (they follow from "wait only when you must"):
 *   - receivers wait  =>  the buffer is empty and no sender waits;
 *   - senders wait    =>  the buffer is full (len == cap; for an
 *                         unbuffered channel always) and no receiver waits;
 *   - closed          =>  nobody waits.
 */
#include <stdint.h>

#include "wait.h"

struct weft_chan {
    weft_sched *sched;
    const void *owner;
    struct weft__list sendq;
    struct weft__list recvq;
    void **buf;    /* cap slots; NULL when cap == 0 */
    size_t cap;
    size_t head;   /* index of the oldest buffered item */
    size_t len;    /* buffered items */
    int closed;
};

struct cwait {
    weft_chan *ch; /* first: weft_dump() reads it (WEFT__WAIT_CHAN_*) */
    void *item;
};

static int mine(const weft_chan *ch)
{
    return ch && weft__obj_mine(ch->owner);
}

int weft_chan_new(weft_sched *s, size_t capacity, weft_chan **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (capacity > SIZE_MAX / sizeof(void *) || capacity > INT64_MAX)
        return -EINVAL;
    s = weft__sched_arg(s);
    if (!s)
        return -EINVAL;
    weft_chan *ch = weft__calloc(1, sizeof *ch);
    if (!ch)
        return -ENOMEM;
    if (capacity) {
        ch->buf = weft__malloc(capacity * sizeof(void *));
        if (!ch->buf) {
            weft__free(ch);
            return -ENOMEM;
        }
    }
    ch->sched = s;
    ch->owner = s->owner;
    ch->cap = capacity;
    weft__list_init(&ch->sendq);
    weft__list_init(&ch->recvq);
    *out = ch;
    return 0;
}

int weft_chan_free(weft_chan *ch)
{
    if (!mine(ch))
        return -EINVAL;
    if (!weft__list_empty(&ch->sendq) || !weft__list_empty(&ch->recvq))
        return -EBUSY;
    weft__free(ch->buf);
    weft__free(ch);
    return 0;
}

static void buf_push(weft_chan *ch, void *item)
{
    size_t tail = ch->head + ch->len;
    if (tail >= ch->cap)
        tail -= ch->cap;
    ch->buf[tail] = item;
    ch->len++;
}

static void *buf_pop(weft_chan *ch)
{
    void *item = ch->buf[ch->head];
    if (++ch->head == ch->cap)
        ch->head = 0;
    ch->len--;
    return item;
}

/* Send without waiting: to the first waiting receiver, else into the
 * buffer.  -EAGAIN when the sender would have to wait. */
static int send_now(weft_chan *ch, void *item)
{
    weft_coro *rx = weft__waitq_pop(&ch->recvq);
    if (rx) {
        ((struct cwait *)rx->wait_obj)->item = item;
        weft__wake(rx, 0);
        return 0;
    }
    if (ch->len < ch->cap) {
        buf_push(ch, item);
        return 0;
    }
    return -EAGAIN;
}

/* Receive without waiting: the oldest buffered item (the first waiting
 * sender's item takes the freed place), else the first waiting sender's
 * item (unbuffered).  -EAGAIN when the receiver would have to wait. */
static int recv_now(weft_chan *ch, void **item)
{
    void *it;
    weft_coro *tx;
    if (ch->len) {
        it = buf_pop(ch);
        tx = weft__waitq_pop(&ch->sendq);
        if (tx) {
            buf_push(ch, ((struct cwait *)tx->wait_obj)->item);
            weft__wake(tx, 0);
        }
    } else if ((tx = weft__waitq_pop(&ch->sendq)) != NULL) {
        it = ((struct cwait *)tx->wait_obj)->item;
        weft__wake(tx, 0);
    } else {
        return -EAGAIN;
    }
    if (item)
        *item = it;
    return 0;
}

int weft_chan_send(weft_chan *ch, void *item, int64_t deadline)
{
    if (!mine(ch))
        return -EINVAL;
    weft_coro *co;
    int r = weft__wait_check(ch->sched, deadline, &co);
    if (r < 0)
        return r;
    if (ch->closed)
        return -EPIPE;
    if (send_now(ch, item) == 0)
        return 0;
    struct cwait w = {ch, item};
    /* 0: a receiver took the item, or moved it into the buffer. */
    co->wait_kind = WEFT__WAIT_CHAN_SEND;
    return weft__wait_on(ch->sched, co, &ch->sendq, &w, deadline);
}

int weft_chan_recv(weft_chan *ch, void **item, int64_t deadline)
{
    if (!mine(ch))
        return -EINVAL;
    weft_coro *co;
    int r = weft__wait_check(ch->sched, deadline, &co);
    if (r < 0)
        return r;
    if (recv_now(ch, item) == 0)
        return 0;
    if (ch->closed)
        return -EPIPE;
    struct cwait w = {ch, NULL};
    co->wait_kind = WEFT__WAIT_CHAN_RECV;
    r = weft__wait_on(ch->sched, co, &ch->recvq, &w, deadline);
    if (r == 0 && item)
        *item = w.item; /* put in the slot by send_now() */
    return r;
}

int weft_chan_try_send(weft_chan *ch, void *item)
{
    if (!mine(ch))
        return -EINVAL;
    if (ch->closed)
        return -EPIPE;
    return send_now(ch, item);
}

int weft_chan_try_recv(weft_chan *ch, void **item)
{
    if (!mine(ch))
        return -EINVAL;
    if (recv_now(ch, item) == 0)
        return 0;
    return ch->closed ? -EPIPE : -EAGAIN;
}

int weft_chan_close(weft_chan *ch)
{
    if (!mine(ch))
        return -EINVAL;
    if (ch->closed)
        return -EPIPE;
    ch->closed = 1;
    (void)weft__waitq_wake_all(&ch->recvq, -EPIPE);
    (void)weft__waitq_wake_all(&ch->sendq, -EPIPE);
    return 0;
}

int64_t weft_chan_len(const weft_chan *ch)
{
    if (!mine(ch))
        return -EINVAL;
    return (int64_t)ch->len;
}

int64_t weft_chan_cap(const weft_chan *ch)
{
    if (!mine(ch))
        return -EINVAL;
    return (int64_t)ch->cap;
}

int weft_chan_closed(const weft_chan *ch)
{
    if (!mine(ch))
        return -EINVAL;
    return ch->closed;
}
