/*
 * fuzz-sync.c - a channel, a counting semaphore and a mutex, used by
 * coroutines in random sequences, against a model.
 *
 * The first bytes choose the channel's capacity (0: unbuffered) and the
 * semaphore's initial value.  Then the driver reads operations (spawn a
 * coroutine, raise into one, end one, advance the manual clock, run one
 * iteration, close the channel, try-send/try-receive/release from
 * outside) and each coroutine reads its own steps when it runs (send,
 * receive, try-send, try-receive, with or without a deadline; acquire,
 * try-acquire, release; lock, try-lock, unlock; yield; sleep; close;
 * return).  Checked as it goes and at the end:
 *   channel:   every item received was sent, exactly once; a receiver
 *              gets each sender's items in the order they were sent; a
 *              send that failed never delivers its item, one that
 *              succeeded delivers it or leaves it buffered (counted when
 *              draining at the end); len <= cap; after close, sends fail
 *              with -EPIPE and receives drain then fail with -EPIPE;
 *   semaphore: try-acquire fails exactly when the value is 0; at the end
 *              value == initial + releases - acquisitions;
 *   mutex:     at most one holder (a lock that succeeds finds nobody else
 *              holding it); unlock by a non-holder is -EPERM; relocking
 *              is -EDEADLK;
 *   all:       -ETIMEDOUT only after the deadline, -ECANCELED only once
 *              ended, other errors only as raised; nothing leaks.
 */
#include "fuzz.h"

#define MAXC 16
#define NERR 2
#define MAXITEMS (MAXC * 256)

static const int errs[NERR] = {-EIO, -ENOENT};

struct rec {
    weft_coro *h;
    int ended;
    int raised[NERR], delivered[NERR];
    int holds;          /* holds the mutex */
    unsigned next_seq;  /* next item it sends */
    int last_from[MAXC + 1]; /* last seq received from each sender, -1 */
};

static weft_sched *S;
static struct fz_in IN;
static struct rec R[MAXC];
static int nrec;
static weft_chan *CH;
static weft_sem *SEM;
static weft_mutex *MU;
static int64_t sem_initial, sem_released, sem_acquired;
static int holder = -1; /* model: who holds the mutex */
static int closed;
/* Item states: 0 never sent, 1 send in progress, 2 sent ok, 3 send
 * failed, plus a received flag. */
static uint8_t item_state[MAXITEMS];
static uint8_t item_received[MAXITEMS];

/* An item: the sender (0 = the driver, i + 1 = coroutine i) and its
 * sequence number, coded as a pointer-sized integer. */
static void *item_of(int sender, unsigned seq)
{
    return (void *)(uintptr_t)(((unsigned)sender << 8 | (seq & 255)) + 1);
}

static int item_index(void *it)
{
    uintptr_t v = (uintptr_t)it;
    CHECK(v >= 1 && v - 1 < MAXITEMS);
    return (int)(v - 1);
}

static int64_t now(void)
{
    return weft_now(S);
}

static int err_index(int e)
{
    for (int i = 0; i < NERR; i++)
        if (errs[i] == e)
            return i;
    return -1;
}

/* An interruption of a blocking call by me (-1: the driver never blocks). */
static void check_interrupt(int me, int r, int ended0, int64_t deadline)
{
    if (me < 0) {
        CHECK(0);
        return;
    }
    if (ended0)
        CHECK_EQ(r, -ECANCELED);
    if (r == -ECANCELED) {
        CHECK(R[me].ended);
        return;
    }
    if (r == -ETIMEDOUT) {
        CHECK(deadline >= 0 && now() >= deadline);
        return;
    }
    int e = err_index(r);
    CHECK(e >= 0);
    CHECK(R[me].delivered[e] < R[me].raised[e]);
    R[me].delivered[e]++;
}

static void received(int me, void *it)
{
    int k = item_index(it);
    CHECK(item_state[k] == 1 || item_state[k] == 2);
    CHECK(!item_received[k]);
    item_received[k] = 1;
    if (me >= 0) {
        int sender = k >> 8, seq = k & 255;
        CHECK(R[me].last_from[sender] < seq);
        R[me].last_from[sender] = seq;
    }
}

static void check_chan(void)
{
    int64_t len = weft_chan_len(CH);
    CHECK(len >= 0 && len <= weft_chan_cap(CH));
    CHECK_EQ(weft_chan_closed(CH), closed);
}

/* ----------------------------------------------------------------------
 * Operations (me: coroutine index, -1 for the driver)
 * ---------------------------------------------------------------------- */

static int64_t take_deadline(struct fz_in *in, int *try_only)
{
    unsigned b = fz_u8(in);
    *try_only = (b & 3) == 0;
    if ((b & 3) == 1)
        return -1;
    return now() + (int64_t)(b >> 2);
}

static void op_send(int me, struct fz_in *in)
{
    int try_only;
    int64_t deadline = take_deadline(in, &try_only);
    int sender = me + 1;
    unsigned seq = me >= 0 ? R[me].next_seq : R[MAXC - 1].next_seq;
    if (seq > 255)
        return; /* this sender's items are used up */
    void *it = item_of(sender, seq);
    int k = item_index(it);
    if (me >= 0)
        R[me].next_seq++;
    else
        R[MAXC - 1].next_seq++; /* the driver's counter lives there */
    int ended0 = me >= 0 && R[me].ended;
    int closed0 = closed;
    item_state[k] = 1;
    int r = try_only || me < 0 ? weft_chan_try_send(CH, it)
                               : weft_chan_send(CH, it, deadline);
    item_state[k] = r == 0 ? 2 : 3;
    CHECK(!(r != 0 && item_received[k]));
    if (r == 0) {
        CHECK(!closed0);
        CHECK(!ended0 || try_only || me < 0);
        return;
    }
    if (r == -EPIPE) {
        CHECK(closed);
        return;
    }
    if (r == -EAGAIN) {
        CHECK(try_only || me < 0);
        return;
    }
    check_interrupt(me, r, ended0, deadline);
}

static void op_recv(int me, struct fz_in *in)
{
    int try_only;
    int64_t deadline = take_deadline(in, &try_only);
    int ended0 = me >= 0 && R[me].ended;
    void *it = NULL;
    int r = try_only || me < 0 ? weft_chan_try_recv(CH, &it)
                               : weft_chan_recv(CH, &it, deadline);
    if (r == 0) {
        CHECK(!ended0 || try_only || me < 0);
        received(me, it);
        return;
    }
    if (r == -EPIPE) {
        CHECK(closed);
        CHECK_EQ(weft_chan_len(CH), 0);
        return;
    }
    if (r == -EAGAIN) {
        CHECK(try_only || me < 0);
        return;
    }
    check_interrupt(me, r, ended0, deadline);
}

static void op_close(void)
{
    int r = weft_chan_close(CH);
    CHECK_EQ(r, closed ? -EPIPE : 0);
    closed = 1;
}

static void op_acquire(int me, struct fz_in *in)
{
    int try_only;
    int64_t deadline = take_deadline(in, &try_only);
    int64_t v = weft_sem_value(SEM);
    CHECK(v >= 0);
    if (try_only || me < 0) {
        int r = weft_sem_try_acquire(SEM);
        CHECK_EQ(r, v > 0 ? 0 : -EAGAIN);
        if (r == 0)
            sem_acquired++;
        return;
    }
    int ended0 = R[me].ended;
    int r = weft_sem_acquire(SEM, deadline);
    if (r == 0) {
        CHECK(!ended0);
        sem_acquired++;
        return;
    }
    check_interrupt(me, r, ended0, deadline);
}

static void op_release(void)
{
    CHECK_EQ(weft_sem_release(SEM), 0);
    sem_released++;
}

static void op_lock(int me, struct fz_in *in)
{
    int try_only;
    int64_t deadline = take_deadline(in, &try_only);
    if (try_only) {
        int r = weft_mutex_trylock(MU);
        if (r == 0) {
            CHECK_EQ(holder, -1);
            holder = me;
            R[me].holds = 1;
        } else {
            CHECK_EQ(r, -EBUSY);
        }
        return;
    }
    int ended0 = R[me].ended;
    int r = weft_mutex_lock(MU, deadline);
    if (r == 0) {
        CHECK(!ended0);
        CHECK_EQ(holder, -1);
        holder = me;
        R[me].holds = 1;
        return;
    }
    if (r == -EDEADLK) {
        CHECK_EQ(holder, me);
        return;
    }
    check_interrupt(me, r, ended0, deadline);
}

static void op_unlock(int me)
{
    int r = weft_mutex_unlock(MU);
    if (holder == me) {
        CHECK_EQ(r, 0);
        holder = -1;
        R[me].holds = 0;
    } else {
        CHECK_EQ(r, -EPERM);
    }
}

/* ----------------------------------------------------------------------
 * Bodies and the driver
 * ---------------------------------------------------------------------- */

static int body(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (;;) {
        check_chan();
        if (!fz_more(&IN))
            break;
        unsigned op = fz_u8(&IN);
        switch (op % 12) {
        case 0:
        case 1:
            op_send(me, &IN);
            break;
        case 2:
        case 3:
            op_recv(me, &IN);
            break;
        case 4:
            op_acquire(me, &IN);
            break;
        case 5:
            op_release();
            break;
        case 6:
            op_lock(me, &IN);
            break;
        case 7:
            op_unlock(me);
            break;
        case 8: {
            int ended0 = R[me].ended;
            int r = weft_yield();
            if (r)
                check_interrupt(me, r, ended0, -1);
            break;
        }
        case 9: {
            int ended0 = R[me].ended;
            int64_t d = (int64_t)fz_u8(&IN) + 1;
            int64_t t0 = now();
            int r = weft_sleep_for(d);
            if (r == 0)
                CHECK(now() >= t0 + d);
            else
                check_interrupt(me, r, ended0, -1);
            break;
        }
        case 10:
            op_close();
            break;
        default:
            goto out;
        }
    }
out:
    if (R[me].holds)
        op_unlock(me);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long base = weft__test_live_allocs();
    IN.p = data;
    IN.n = size;
    memset(R, 0, sizeof R);
    for (int i = 0; i < MAXC; i++)
        memset(R[i].last_from, 0xff, sizeof R[i].last_from);
    memset(item_state, 0, sizeof item_state);
    memset(item_received, 0, sizeof item_received);
    nrec = 0;
    holder = -1;
    closed = 0;
    sem_released = sem_acquired = 0;
    S = fz_sched();
    size_t cap = fz_pick(&IN, 5);
    sem_initial = fz_pick(&IN, 4);
    CHECK_EQ(weft_chan_new(S, cap, &CH), 0);
    CHECK_EQ(weft_sem_new(S, sem_initial, &SEM), 0);
    CHECK_EQ(weft_mutex_new(S, &MU), 0);

    while (fz_more(&IN)) {
        unsigned op = fz_u8(&IN);
        switch (op % 12) {
        case 0:
        case 1:
            if (nrec < MAXC - 1) {
                int i = nrec++;
                CHECK_EQ(weft_spawn(S, body, (void *)(intptr_t)i, NULL,
                                    &R[i].h), 0);
            }
            break;
        case 2: {
            int i = (int)fz_pick(&IN, MAXC);
            int e = (int)fz_pick(&IN, NERR);
            if (i >= nrec)
                break;
            int r = weft_raise(R[i].h, errs[e]);
            if (weft_coro_done(R[i].h)) {
                CHECK_EQ(r, -ESRCH);
            } else {
                CHECK_EQ(r, 0);
                R[i].raised[e]++;
            }
            break;
        }
        case 3: {
            int i = (int)fz_pick(&IN, MAXC);
            if (i >= nrec)
                break;
            CHECK_EQ(weft_end(R[i].h), 0);
            if (!weft_coro_done(R[i].h))
                R[i].ended = 1;
            break;
        }
        case 4:
            CHECK_EQ(weft_clock_advance(S, (int64_t)fz_u8(&IN)), 0);
            break;
        case 5:
        case 6:
        case 7: {
            int r = weft_run_once(S, op & 1 ? 0 : -1);
            CHECK(r == 0 || r == 1);
            break;
        }
        case 8:
            op_close();
            break;
        case 9:
            op_send(-1, &IN);
            break;
        case 10:
            op_recv(-1, &IN);
            break;
        default:
            op_release();
            break;
        }
        check_chan();
    }

    /* Wind down: end everything still running, until all are done. */
    for (int round = 0; weft_sched_count(S) > 0; round++) {
        CHECK(round < 100);
        for (int i = 0; i < nrec; i++)
            if (!weft_coro_done(R[i].h)) {
                CHECK_EQ(weft_end(R[i].h), 0);
                R[i].ended = 1;
            }
        int r = weft_run(S);
        CHECK(r == 0 || r == -EDEADLK);
    }
    for (int i = 0; i < nrec; i++) {
        int st = 1;
        CHECK_EQ(weft_reap(R[i].h, &st), 0);
        CHECK(st == 0 || st == -ECANCELED); /* never started: -ECANCELED */
        CHECK(!R[i].holds);
    }
    CHECK_EQ(holder, -1);
    CHECK_EQ(weft_mutex_locked(MU), 0);
    /* Every successful send was received or is still buffered. */
    void *it;
    while (weft_chan_try_recv(CH, &it) == 0)
        received(-1, it);
    for (int k = 0; k < MAXITEMS; k++) {
        CHECK(item_state[k] != 1);
        CHECK_EQ(item_received[k], item_state[k] == 2);
    }
    CHECK_EQ(weft_sem_value(SEM), sem_initial + sem_released - sem_acquired);
    CHECK_EQ(weft_chan_free(CH), 0);
    CHECK_EQ(weft_sem_free(SEM), 0);
    CHECK_EQ(weft_mutex_free(MU), 0);
    CHECK_EQ(weft_sched_free(S), 0);
    CHECK_EQ(weft__test_live_allocs(), base);
    return 0;
}
