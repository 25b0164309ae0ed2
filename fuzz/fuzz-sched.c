/*
 * fuzz-sched.c - random sequences of scheduler operations against a model.
 *
 * One byte stream drives everything.  The driver (outside the scheduler)
 * reads operations from it: spawn (now, at, in, first, detached, any
 * priority), raise (now or later), end, detach, reap, advance the manual
 * clock, run one iteration, start/stop/free callback timers, add/remove
 * global and per-coroutine switch hooks.  Each coroutine's body reads its
 * own next step from the same stream when it runs: yield, sleep, join
 * (with or without a deadline), spawn, raise, end (others or itself),
 * detach, reap, or return a status.  Timer callbacks raise into or end
 * coroutines.  Execution is deterministic, so each input replays exactly.
 *
 * The model (struct rec per coroutine) checks, as it goes:
 *   - every coroutine starts at most once, never before its start time,
 *     never after being ended first, and finishes exactly once;
 *   - a blocking call returns 0, -ECANCELED only once the coroutine was
 *     ended (and always once ended before the call), -ETIMEDOUT only for
 *     a deadline that has passed, or an error that was raised into it and
 *     not yet delivered (never more deliveries than raises);
 *   - sleeps last at least what was asked; joins return the status the
 *     body returned, and a failed join leaves an unfinished target;
 *   - reap/detach/join/raise/end return what the coroutine's state says;
 *   - weft_sched_count(), weft_coro_done() and weft_coro_ended() agree;
 *   - the failure handler runs once per failing coroutine;
 *   - global hooks see a chain of switches (each one leaves where the last
 *     one arrived) and never enter a finished coroutine; per-coroutine
 *     hooks alternate in/out and end with out;
 *   - callback timers fire at or after their deadline, on the grid;
 * and at the end, after ending everything, that nothing is alive and the
 * library holds no allocation.
 */
#include "fuzz.h"

#define MAXC 48
#define NTIMERS 4
#define NERR 4

static const int errs[NERR] = {-EIO, -EPIPE, -ENOENT, -EBADMSG};

struct rec {
    weft_coro *h;      /* the handle while the model may use it */
    uint64_t id;
    int used;
    int detached;      /* handle given up (freed when it finishes) */
    int started, finished, never_ran;
    int ret;           /* the status: body's return, or -ECANCELED */
    int ended;         /* weft_end() called before it finished */
    int joiner;        /* index + 1 of the coroutine joining it */
    int64_t start_at;  /* earliest start time */
    int raised[NERR], delivered[NERR];
    int failures;      /* failure handler calls */
    int hooked;        /* per-coroutine in/out hooks installed */
    int inside;        /* per-coroutine hooks: 1 between in and out */
};

struct tmr {
    weft_timer *t;
    int64_t due;    /* model: next deadline, -1 stopped */
    int64_t repeat;
    uint8_t action; /* 0 nothing, 1 raise, 2 end */
    uint8_t target, err;
    int fires;
};

static weft_sched *S;
static struct fz_in IN;
static struct rec R[MAXC];
static int nrec;
static struct tmr T[NTIMERS];
static int ghook_on, ghook_chain;
static weft_coro *ghook_last;

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

static int rec_of(weft_coro *co)
{
    intptr_t d = (intptr_t)weft_coro_data(co);
    CHECK(d >= 1 && d <= nrec);
    return (int)d - 1;
}

static int alive_model(void)
{
    int n = 0;
    for (int i = 0; i < nrec; i++)
        n += !R[i].finished;
    return n;
}

static void check_global(void)
{
    CHECK_EQ(weft_sched_count(S), alive_model());
    for (int i = 0; i < nrec; i++) {
        if (!R[i].h)
            continue;
        CHECK_EQ(weft_coro_done(R[i].h), R[i].finished);
        CHECK_EQ(weft_coro_ended(R[i].h), R[i].ended);
        CHECK_EQ(weft_coro_id(R[i].h), R[i].id);
    }
}

/* The result of a blocking call made by coroutine `me`.  ended0: it was
 * ended when the call began. */
static void check_blocking(int me, int r, int ended0)
{
    struct rec *c = &R[me];
    if (ended0)
        CHECK_EQ(r, -ECANCELED);
    if (r == 0)
        return;
    if (r == -ECANCELED) {
        CHECK(c->ended);
        return;
    }
    int e = err_index(r);
    CHECK(e >= 0);
    CHECK(c->delivered[e] < c->raised[e]);
    c->delivered[e]++;
}

/* ----------------------------------------------------------------------
 * Operations on a coroutine, from the driver, a body or a callback
 * ---------------------------------------------------------------------- */

static int body(void *arg);
void fz_coro_hook(int dir, weft_coro *co, void *arg);

static void spawn(struct fz_in *in)
{
    if (nrec == MAXC) {
        (void)fz_u8(in);
        return;
    }
    unsigned mode = fz_u8(in);
    int i = nrec;
    struct rec *c = &R[i];
    memset(c, 0, sizeof *c);
    struct weft_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.priority = (int)(mode & 3) - 1;
    o.first = (mode >> 2) & 1;
    o.data = (void *)(intptr_t)(i + 1);
    o.name = (mode >> 3) & 1 ? "fz" : NULL;
    int detached = (mode >> 4) & 1;
    weft_coro *co = NULL;
    int r;
    c->start_at = INT64_MIN;
    nrec++; /* rec_of() must accept it if it runs at once */
    c->used = 1;
    switch (mode >> 5) {
    case 0:
    case 1:
    case 2:
    case 3:
        r = weft_spawn(S, body, (void *)(intptr_t)i, &o, detached ? NULL : &co);
        break;
    case 4:
    case 5: {
        int64_t d = (int64_t)fz_u8(in);
        c->start_at = now() + d;
        r = weft_spawn_in(S, d, body, (void *)(intptr_t)i, &o,
                          detached ? NULL : &co);
        break;
    }
    default: {
        int64_t t = now() + (int64_t)fz_u8(in) - 64;
        c->start_at = t;
        r = weft_spawn_at(S, t, body, (void *)(intptr_t)i, &o,
                          detached ? NULL : &co);
        break;
    }
    }
    CHECK_EQ(r, 0);
    c->h = co;
    c->detached = detached;
    /* The id, for detached ones too: ids are sequential. */
    c->id = co ? weft_coro_id(co) : 0;
}

/* The handle of a coroutine the model may still use, or -1. */
static int pick_handle(struct fz_in *in)
{
    if (!nrec)
        return -1;
    int i = (int)fz_pick(in, (unsigned)nrec);
    return R[i].h ? i : -1;
}

static void do_raise(int i, int e)
{
    int r = weft_raise(R[i].h, errs[e]);
    if (R[i].finished) {
        CHECK_EQ(r, -ESRCH);
    } else {
        CHECK_EQ(r, 0);
        R[i].raised[e]++;
    }
}

static void do_end(int i)
{
    struct rec *c = &R[i];
    CHECK_EQ(weft_end(c->h), 0);
    if (c->finished)
        return;
    c->ended = 1;
    if (!c->started) {
        /* Never ran: finished now, without running. */
        c->finished = 1;
        c->never_ran = 1;
        c->ret = -ECANCELED;
    }
}

static void do_detach(int i)
{
    struct rec *c = &R[i];
    int r = weft_detach(c->h);
    if (c->joiner) {
        CHECK_EQ(r, -EINVAL);
        return;
    }
    CHECK_EQ(r, 0);
    c->h = NULL;
    c->detached = 1;
}

static void do_reap(int i)
{
    struct rec *c = &R[i];
    int st = 12345;
    int r = weft_reap(c->h, &st);
    if (c->joiner) {
        CHECK_EQ(r, -EINVAL);
    } else if (!c->finished) {
        CHECK_EQ(r, -EAGAIN);
    } else {
        CHECK_EQ(r, 0);
        CHECK_EQ(st, c->ret);
        c->h = NULL;
    }
}

/* Join from coroutine me. */
static void do_join(int me, struct fz_in *in)
{
    int j = pick_handle(in);
    unsigned how = fz_u8(in);
    if (j < 0)
        return;
    struct rec *t = &R[j];
    int64_t deadline = how & 1 ? now() + (int64_t)(how >> 1) : -1;
    int ended0 = R[me].ended;
    int st = 12345;
    if (j == me) {
        CHECK_EQ(weft_join_until(t->h, deadline, &st), -EDEADLK);
        return;
    }
    if (t->joiner) {
        CHECK_EQ(weft_join_until(t->h, deadline, &st), -EINVAL);
        return;
    }
    int done0 = t->finished;
    weft_coro *h = t->h;
    t->joiner = me + 1;
    int r = weft_join_until(h, deadline, &st);
    t->joiner = 0;
    if (r == 0) {
        CHECK(t->finished);
        CHECK_EQ(st, t->ret);
        t->h = NULL; /* freed by the join */
        return;
    }
    CHECK(!done0);
    CHECK(!t->finished);
    CHECK(t->h == h);
    if (r == -ETIMEDOUT) {
        CHECK(deadline >= 0 && now() >= deadline);
        CHECK(!ended0);
        return;
    }
    check_blocking(me, r, ended0);
}

/* ----------------------------------------------------------------------
 * Bodies
 * ---------------------------------------------------------------------- */

static int finish(int me, int status)
{
    struct rec *c = &R[me];
    CHECK(!c->finished);
    c->finished = 1;
    c->ret = status;
    return status;
}

static int body(void *arg)
{
    int me = (int)(intptr_t)arg;
    struct rec *c = &R[me];
    weft_coro *self = weft_self();
    CHECK(self != NULL);
    CHECK_EQ(rec_of(self), me);
    CHECK(!c->started && !c->finished && !c->never_ran);
    CHECK(now() >= c->start_at);
    c->started = 1;
    if (!c->id)
        c->id = weft_coro_id(self);
    CHECK_EQ(weft_coro_id(self), c->id);
    for (;;) {
        check_global();
        if (!fz_more(&IN))
            return finish(me, 0);
        unsigned op = fz_u8(&IN);
        int ended0 = c->ended;
        switch (op % 16) {
        case 0:
        case 1:
        case 2:
            check_blocking(me, weft_yield(), ended0);
            break;
        case 3:
        case 4: {
            int64_t d = (int64_t)fz_u8(&IN);
            int64_t t0 = now();
            int r = weft_sleep_for(d);
            check_blocking(me, r, ended0);
            if (r == 0)
                CHECK(now() >= t0 + d);
            break;
        }
        case 5: {
            int64_t t = now() + (int64_t)fz_u8(&IN) - 32;
            int r = weft_sleep_until(t);
            check_blocking(me, r, ended0);
            if (r == 0)
                CHECK(now() >= t);
            break;
        }
        case 6:
        case 7:
            do_join(me, &IN);
            break;
        case 8:
            spawn(&IN);
            break;
        case 9: {
            int i = pick_handle(&IN);
            int e = (int)fz_pick(&IN, NERR);
            if (i >= 0)
                do_raise(i, e);
            break;
        }
        case 10: {
            int i = pick_handle(&IN);
            if (i >= 0)
                do_end(i);
            break;
        }
        case 11:
            CHECK_EQ(weft_end(self), 0);
            c->ended = 1;
            break;
        case 12: {
            int i = pick_handle(&IN);
            if (i >= 0)
                do_detach(i);
            break;
        }
        case 13: {
            int i = pick_handle(&IN);
            if (i >= 0)
                do_reap(i);
            break;
        }
        case 14: {
            /* Hooks on itself: added while running, so `out` comes next. */
            if (!c->hooked) {
                CHECK_EQ(weft_coro_hook_add(NULL, WEFT_HOOK_IN, fz_coro_hook, NULL), 0);
                CHECK_EQ(weft_coro_hook_add(NULL, WEFT_HOOK_OUT, fz_coro_hook, NULL), 0);
                c->hooked = 1;
                c->inside = 1;
            }
            break;
        }
        default: {
            unsigned st = fz_u8(&IN);
            int status = st < 128 ? (int)st : errs[st % NERR];
            if (st == 255)
                status = -ECANCELED;
            return finish(me, status);
        }
        }
    }
}

/* ----------------------------------------------------------------------
 * Hooks, failure handler, timers
 * ---------------------------------------------------------------------- */

void fz_coro_hook(int dir, weft_coro *co, void *arg)
{
    (void)arg;
    struct rec *c = &R[rec_of(co)];
    CHECK(c->hooked);
    if (dir == WEFT_HOOK_IN) {
        CHECK_EQ(c->inside, 0);
        CHECK(!c->finished);
        c->inside = 1;
    } else {
        CHECK_EQ(dir, WEFT_HOOK_OUT);
        CHECK_EQ(c->inside, 1);
        c->inside = 0;
    }
}

static void global_hook(weft_coro *from, weft_coro *to, void *arg)
{
    (void)arg;
    CHECK(from != to);
    if (ghook_chain)
        CHECK(from == ghook_last);
    ghook_chain = 1;
    ghook_last = to;
    if (to)
        CHECK(!R[rec_of(to)].finished);
    if (from)
        (void)rec_of(from);
}

static void on_failure(weft_coro *co, int status, void *arg)
{
    (void)arg;
    struct rec *c = &R[rec_of(co)];
    CHECK(c->finished);
    CHECK_EQ(status, c->ret);
    CHECK(status < 0);
    CHECK(!(c->ended && status == -ECANCELED));
    c->failures++;
}

static int64_t grid_next(int64_t due, int64_t repeat, int64_t t)
{
    int64_t k = t > due ? (t - due) / repeat + 1 : 1;
    return due + k * repeat;
}

static void on_timer(weft_timer *t, void *arg)
{
    struct tmr *m = arg;
    CHECK(m->t == t);
    CHECK(m->due >= 0);
    CHECK(now() >= m->due);
    m->fires++;
    if (m->repeat > 0) {
        m->due = grid_next(m->due, m->repeat, now());
        CHECK_EQ(weft_timer_due(t), m->due);
    } else {
        m->due = -1;
        CHECK(!weft_timer_active(t));
    }
    if (m->action && m->target < nrec && R[m->target].h) {
        if (m->action == 1)
            do_raise(m->target, m->err % NERR);
        else
            do_end(m->target);
    }
}

static void timer_op(struct fz_in *in)
{
    struct tmr *m = &T[fz_pick(in, NTIMERS)];
    unsigned what = fz_u8(in);
    if (!m->t) {
        CHECK_EQ(weft_timer_new(S, on_timer, m, &m->t), 0);
        m->due = -1;
    }
    switch (what % 4) {
    case 0:
    case 1: {
        int64_t timeout = (int64_t)fz_u8(in);
        int64_t repeat = what & 4 ? (int64_t)fz_u8(in) % 64 + 1 : 0;
        m->action = (uint8_t)((what >> 3) % 3);
        m->target = (uint8_t)fz_u8(in);
        m->err = (uint8_t)(what >> 5);
        CHECK_EQ(weft_timer_start(m->t, timeout, repeat), 0);
        m->due = now() + timeout;
        m->repeat = repeat;
        CHECK_EQ(weft_timer_due(m->t), m->due);
        break;
    }
    case 2:
        CHECK_EQ(weft_timer_stop(m->t), 0);
        m->due = -1;
        break;
    default:
        CHECK_EQ(weft_timer_free(m->t), 0);
        m->t = NULL;
        m->due = -1;
        break;
    }
}

/* ----------------------------------------------------------------------
 * The driver
 * ---------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long base = weft__test_live_allocs();
    IN.p = data;
    IN.n = size;
    memset(R, 0, sizeof R);
    memset(T, 0, sizeof T);
    nrec = 0;
    ghook_on = ghook_chain = 0;
    ghook_last = NULL;
    S = fz_sched();
    CHECK_EQ(weft_on_error_global(S, on_failure, NULL), 0);

    while (fz_more(&IN)) {
        unsigned op = fz_u8(&IN);
        switch (op % 16) {
        case 0:
        case 1:
        case 2:
            spawn(&IN);
            break;
        case 3: {
            int i = pick_handle(&IN);
            int e = (int)fz_pick(&IN, NERR);
            if (i >= 0)
                do_raise(i, e);
            break;
        }
        case 4: {
            int i = pick_handle(&IN);
            int e = (int)fz_pick(&IN, NERR);
            int64_t d = (int64_t)fz_u8(&IN);
            if (i < 0)
                break;
            int r = weft_raise_in(R[i].h, errs[e], d);
            if (R[i].finished) {
                CHECK_EQ(r, -ESRCH);
            } else {
                CHECK_EQ(r, 0);
                /* Delivered later, or dropped if it finishes first. */
                R[i].raised[e]++;
            }
            break;
        }
        case 5: {
            int i = pick_handle(&IN);
            if (i >= 0)
                do_end(i);
            break;
        }
        case 6: {
            int i = pick_handle(&IN);
            if (i >= 0)
                do_detach(i);
            break;
        }
        case 7: {
            int i = pick_handle(&IN);
            if (i >= 0)
                do_reap(i);
            break;
        }
        case 8:
            CHECK_EQ(weft_clock_advance(S, (int64_t)fz_u8(&IN)), 0);
            break;
        case 9:
        case 10:
        case 11: {
            int r = weft_run_once(S, op & 1 ? 0 : -1);
            CHECK(r == 0 || r == 1);
            break;
        }
        case 12:
            timer_op(&IN);
            break;
        case 13:
            if (ghook_on) {
                CHECK_EQ(weft_hook_remove(S, global_hook, NULL), 0);
                ghook_on = 0;
            } else {
                CHECK_EQ(weft_hook_add(S, global_hook, NULL), 0);
                ghook_on = 1;
                ghook_chain = 0;
            }
            break;
        case 14: {
            int i = pick_handle(&IN);
            if (i < 0 || R[i].finished || R[i].hooked)
                break;
            /* Added from outside: the coroutine is not running, so
             * `in` comes next. */
            CHECK_EQ(weft_coro_hook_add(R[i].h, WEFT_HOOK_IN, fz_coro_hook,
                                        NULL), 0);
            CHECK_EQ(weft_coro_hook_add(R[i].h, WEFT_HOOK_OUT, fz_coro_hook,
                                        NULL), 0);
            R[i].hooked = 1;
            break;
        }
        default: {
            /* A repeating timer would keep weft_run() going for ever. */
            int repeating = 0;
            for (int k = 0; k < NTIMERS; k++)
                repeating |= T[k].t && T[k].due >= 0 && T[k].repeat > 0;
            if (repeating)
                break;
            int r = weft_run(S);
            CHECK(r == 0 || r == -EDEADLK);
            if (r == 0)
                CHECK_EQ(alive_model(), 0);
            break;
        }
        }
        check_global();
    }

    /* Wind down: no more timers; end what can be ended until all are
     * done (bodies return at once now that the input is used up). */
    for (int k = 0; k < NTIMERS; k++) {
        if (T[k].t)
            CHECK_EQ(weft_timer_free(T[k].t), 0);
        T[k].t = NULL;
    }
    for (int round = 0; weft_sched_count(S) > 0; round++) {
        CHECK(round < 100);
        for (int i = 0; i < nrec; i++)
            if (R[i].h && !R[i].finished)
                do_end(i);
        int r = weft_run(S);
        CHECK(r == 0 || r == -EDEADLK);
    }
    check_global();
    for (int i = 0; i < nrec; i++) {
        struct rec *c = &R[i];
        CHECK(c->finished);
        CHECK(c->started != c->never_ran);
        CHECK_EQ(c->failures,
                 c->ret < 0 && !(c->ended && c->ret == -ECANCELED) ? 1 : 0);
        if (c->hooked)
            CHECK_EQ(c->inside, 0);
        if (c->h)
            do_reap(i);
        CHECK(c->h == NULL);
    }
    if (ghook_on)
        CHECK_EQ(weft_hook_remove(S, global_hook, NULL), 0);
    CHECK_EQ(weft_remove_error_global(S, on_failure, NULL), 0);
    CHECK_EQ(weft_sched_free(S), 0);
    CHECK_EQ(weft__test_live_allocs(), base);
    return 0;
}
