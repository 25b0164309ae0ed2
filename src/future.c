/*
 * future.c - one-shot futures (Twisted's Deferred), their callbacks and
 * the gather futures weft_future_all() / weft_future_any().
 *
 * Lifetime.  A future is freed when its reference count is 0 and no
 * coroutine waits on it: waiters count as references without touching
 * `refs` (see wait_cancelled()), because a waiter's wait may end without
 * its own code running again (its scheduler freed: weft__coro_release()
 * unlinks it from `waiters` and nothing else), and an explicit reference
 * would then leak.  Code that runs callbacks holds a temporary reference,
 * so a callback may drop the last user reference.
 *
 * Waiters never touch the future after they are woken: the decision
 * copies the outcome into each waiter's slot (struct fwait, on its stack,
 * reached through co->wait_obj) and wakes it with 0.
 *
 * Gathers.  A gather (struct gather) links n inputs to one output future:
 *   - it holds a counted reference on every input it is attached to, and
 *     an entry in that input's callback list (gather_cb, its slot);
 *   - the output points to it (out->gather); it points back to the output
 *     without a reference, so dropping every user reference to the output
 *     frees it, which detaches the gather from its inputs and frees it.
 * The counted references thus form no cycle: user -> output, gather ->
 * inputs.  Whenever the output is decided (by the gather, or by a user
 * resolving or cancelling it) or freed, gather_finish() detaches from the
 * inputs still attached and frees the gather.
 */
#include <stdlib.h>
#include <string.h>

#include "wait.h"

struct fcb {
    weft_future_fn fn; /* NULL: removed while the list was being run */
    void *arg;
};

struct gather;

struct weft_future {
    weft_sched *sched;
    const void *owner;        /* the owning thread's token */
    uint32_t refs;            /* counted references (waiters excluded) */
    uint8_t state;            /* enum weft_future_state */
    uint8_t cancelled;        /* decided by weft_future_cancel() */
    uint8_t dispatching;      /* callbacks are running */
    int err;                  /* the error once FAILED */
    void *value;              /* the value once RESOLVED */
    struct weft__list waiters; /* coroutines in weft_future_wait() */
    /* Callbacks in the order added; cbs[cbnext..ncb) are still to run.
     * cbnext is 0 except while the list runs; the array is freed once
     * the future is decided and the list has run. */
    struct fcb *cbs;
    uint32_t ncb, capcb, cbnext;
    struct gather *gather;    /* the gather that decides this future */
};

/* A waiter's slot, on the waiter's stack. */
struct fwait {
    weft_future *f; /* first: weft_dump() reads it (WEFT__WAIT_FUTURE) */
    void *value;
    int err;
};

struct gslot {
    struct gather *g;
    weft_future *in; /* NULL once detached (reference dropped) */
};

struct gather {
    weft_future *out; /* not counted: out->gather points back */
    int any;          /* "first of" rather than "all of" */
    int decided;      /* finishing: callbacks that arrive now do nothing */
    size_t remaining; /* "all of": attached inputs not yet resolved */
    size_t n;         /* slots in use */
    struct gslot slot[];
};

#define MAX_REFS (UINT32_MAX / 2)

static void gather_finish(struct gather *g, int cancel_inputs);
static void gather_cb(weft_future *in, void *arg);

static int mine(const weft_future *f)
{
    return f && weft__obj_mine(f->owner);
}

/* ----------------------------------------------------------------------
 * Lifetime
 * ---------------------------------------------------------------------- */

static void future_free(weft_future *f)
{
    if (f->gather) {
        struct gather *g = f->gather;
        f->gather = NULL;
        gather_finish(g, 0);
    }
    weft__free(f->cbs);
    weft__free(f);
}

static void maybe_free(weft_future *f)
{
    if (f->refs == 0 && weft__list_empty(&f->waiters))
        future_free(f);
}

static void unref(weft_future *f)
{
    f->refs--;
    maybe_free(f);
}

int weft_future_new(weft_sched *s, weft_future **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    s = weft__sched_arg(s);
    if (!s)
        return -EINVAL;
    weft_future *f = weft__calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->sched = s;
    f->owner = s->owner;
    f->refs = 1;
    f->state = WEFT_FUTURE_PENDING;
    weft__list_init(&f->waiters);
    *out = f;
    return 0;
}

int weft_future_retain(weft_future *f)
{
    if (!mine(f))
        return -EINVAL;
    if (f->refs >= MAX_REFS)
        return -EOVERFLOW;
    f->refs++;
    return 0;
}

int weft_future_release(weft_future *f)
{
    if (!mine(f) || f->refs == 0)
        return -EINVAL;
    unref(f);
    return 0;
}

/* ----------------------------------------------------------------------
 * Callbacks
 * ---------------------------------------------------------------------- */

static int cb_push(weft_future *f, weft_future_fn fn, void *arg)
{
    if (f->ncb == f->capcb) {
        uint32_t cap = f->capcb ? f->capcb * 2 : 4;
        if (cap <= f->capcb)
            return -ENOMEM;
        struct fcb *v = weft__realloc(f->cbs, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        f->cbs = v;
        f->capcb = cap;
    }
    f->cbs[f->ncb].fn = fn;
    f->cbs[f->ncb].arg = arg;
    f->ncb++;
    return 0;
}

/* Forget a callback that has not run yet (a gather detaching). */
static void cb_remove(weft_future *f, weft_future_fn fn, void *arg)
{
    for (uint32_t i = f->cbnext; i < f->ncb; i++) {
        if (f->cbs[i].fn != fn || f->cbs[i].arg != arg)
            continue;
        if (f->dispatching) {
            f->cbs[i].fn = NULL; /* the running loop skips it */
        } else {
            memmove(&f->cbs[i], &f->cbs[i + 1],
                    (f->ncb - i - 1) * sizeof *f->cbs);
            f->ncb--;
        }
        return;
    }
}

/*
 * Run the callbacks of a decided future in order: `first` (if not NULL),
 * then every queued one, including those queued while the loop runs
 * (weft_future_then() on a dispatching future appends).  Holds a
 * reference, so callbacks may release the future.
 */
static void dispatch(weft_future *f, weft_future_fn first, void *first_arg)
{
    f->refs++;
    f->dispatching = 1;
    if (first)
        first(f, first_arg);
    while (f->cbnext < f->ncb) {
        struct fcb cb = f->cbs[f->cbnext++]; /* copy: cbs may move */
        if (cb.fn)
            cb.fn(f, cb.arg);
    }
    f->dispatching = 0;
    weft__free(f->cbs);
    f->cbs = NULL;
    f->ncb = f->capcb = f->cbnext = 0;
    unref(f);
}

int weft_future_then(weft_future *f, weft_future_fn fn, void *arg)
{
    if (!mine(f) || !fn)
        return -EINVAL;
    if (f->state == WEFT_FUTURE_PENDING || f->dispatching)
        return cb_push(f, fn, arg);
    dispatch(f, fn, arg); /* decided: run it now */
    return 0;
}

int weft_future_unthen(weft_future *f, weft_future_fn fn, void *arg)
{
    if (!mine(f) || !fn)
        return -EINVAL;
    /* Only callbacks that have not run yet can be taken back; the slot is
     * blanked, not removed, so a dispatch in progress is not disturbed. */
    for (uint32_t i = f->cbnext; i < f->ncb; i++) {
        if (f->cbs[i].fn == fn && f->cbs[i].arg == arg) {
            f->cbs[i].fn = NULL;
            return 0;
        }
    }
    return -ENOENT;
}

/* ----------------------------------------------------------------------
 * Deciding
 * ---------------------------------------------------------------------- */

static void settle(weft_future *f, int state, void *value, int err)
{
    f->refs++; /* across the gather and callbacks below */
    f->state = (uint8_t)state;
    f->value = state == WEFT_FUTURE_RESOLVED ? value : NULL;
    f->err = state == WEFT_FUTURE_FAILED ? err : 0;
    /* Waiters first: they only become ready, and get their outcome now. */
    weft_coro *co;
    while ((co = weft__waitq_pop(&f->waiters)) != NULL) {
        struct fwait *w = co->wait_obj;
        w->value = f->value;
        w->err = f->err;
        weft__wake(co, 0);
    }
    if (f->gather) {
        struct gather *g = f->gather;
        f->gather = NULL;
        gather_finish(g, f->cancelled);
    }
    dispatch(f, NULL, NULL);
    unref(f);
}

static int decide_check(const weft_future *f)
{
    if (!mine(f))
        return -EINVAL;
    if (f->state != WEFT_FUTURE_PENDING)
        return f->cancelled ? -ECANCELED : -EALREADY;
    return 0;
}

int weft_future_resolve(weft_future *f, void *value)
{
    int r = decide_check(f);
    if (r < 0)
        return r;
    settle(f, WEFT_FUTURE_RESOLVED, value, 0);
    return 0;
}

int weft_future_fail(weft_future *f, int err)
{
    if (err >= 0)
        return -EINVAL;
    int r = decide_check(f);
    if (r < 0)
        return r;
    settle(f, WEFT_FUTURE_FAILED, NULL, err);
    return 0;
}

int weft_future_cancel(weft_future *f)
{
    if (!mine(f))
        return -EINVAL;
    if (f->state != WEFT_FUTURE_PENDING)
        return -EALREADY;
    f->cancelled = 1;
    settle(f, WEFT_FUTURE_FAILED, NULL, -ECANCELED);
    return 0;
}

/* ----------------------------------------------------------------------
 * Waiting
 * ---------------------------------------------------------------------- */

/* The wait ended without a decision (timeout, raise, end, or no memory
 * for the deadline); the core has already unlinked the waiter.  It was
 * holding the future alive. */
static void wait_cancelled(weft_coro *co)
{
    struct fwait *w = co->wait_obj;
    maybe_free(w->f);
}

int weft_future_wait(weft_future *f, int64_t deadline, void **value)
{
    if (!mine(f))
        return -EINVAL;
    weft_coro *co;
    int r = weft__wait_check(f->sched, deadline, &co);
    if (r < 0)
        return r;
    if (f->state != WEFT_FUTURE_PENDING) {
        if (f->state == WEFT_FUTURE_FAILED)
            return f->err;
        if (value)
            *value = f->value;
        return 0;
    }
    struct fwait w = {f, NULL, 0};
    co->wait_cancel = wait_cancelled;
    co->wait_kind = WEFT__WAIT_FUTURE;
    r = weft__wait_on(f->sched, co, &f->waiters, &w, deadline);
    /* f may be gone now: only the slot is read. */
    if (r < 0)
        return r;
    if (w.err < 0)
        return w.err;
    if (value)
        *value = w.value;
    return 0;
}

/* ----------------------------------------------------------------------
 * Queries
 * ---------------------------------------------------------------------- */

int weft_future_state(const weft_future *f)
{
    if (!mine(f))
        return -EINVAL;
    return f->state;
}

void *weft_future_value(const weft_future *f)
{
    if (!mine(f) || f->state != WEFT_FUTURE_RESOLVED)
        return NULL;
    return f->value;
}

int weft_future_error(const weft_future *f)
{
    if (!mine(f))
        return -EINVAL;
    return f->state == WEFT_FUTURE_FAILED ? f->err : 0;
}

int weft_future_result(const weft_future *f, void **value)
{
    if (!mine(f))
        return -EINVAL;
    switch (f->state) {
    case WEFT_FUTURE_PENDING:
        return -EAGAIN;
    case WEFT_FUTURE_FAILED:
        return f->err;
    default:
        if (value)
            *value = f->value;
        return 0;
    }
}

/* ----------------------------------------------------------------------
 * Gathers
 * ---------------------------------------------------------------------- */

/* The output is decided or freed: optionally cancel the inputs still
 * pending (the output was cancelled), then drop every input still
 * attached, and free the gather.  Callbacks running meanwhile (the
 * cancellations run the inputs' callbacks) find g->decided and do
 * nothing. */
static void gather_finish(struct gather *g, int cancel_inputs)
{
    g->decided = 1;
    if (cancel_inputs) {
        for (size_t i = 0; i < g->n; i++) {
            weft_future *in = g->slot[i].in;
            if (in && in->state == WEFT_FUTURE_PENDING)
                (void)weft_future_cancel(in);
        }
    }
    for (size_t i = 0; i < g->n; i++) {
        weft_future *in = g->slot[i].in;
        if (!in)
            continue;
        g->slot[i].in = NULL;
        cb_remove(in, gather_cb, &g->slot[i]);
        unref(in);
    }
    weft__free(g);
}

/* An input was decided. */
static void gather_cb(weft_future *in, void *arg)
{
    struct gslot *sl = arg;
    struct gather *g = sl->g;
    if (g->decided)
        return; /* gather_finish() in progress detaches this slot */
    int state = in->state;
    void *value = in->value;
    int err = in->err;
    sl->in = NULL;
    unref(in); /* cannot free it: its dispatch holds a reference */
    weft_future *out = g->out;
    /* Deciding the output runs gather_finish(), which frees g and sl:
     * touch neither afterwards. */
    if (g->any)
        settle(out, state, value, err);
    else if (state == WEFT_FUTURE_FAILED)
        settle(out, WEFT_FUTURE_FAILED, NULL, err);
    else if (--g->remaining == 0)
        settle(out, WEFT_FUTURE_RESOLVED, NULL, 0);
}

static int gather_new(weft_sched *s, weft_future *const *futs, size_t n,
                      int any, weft_future **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    s = weft__sched_arg(s);
    if (!s || (n && !futs) || (any && n == 0))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!mine(futs[i]))
            return -EINVAL;

    /* Decided by what is already known?  ("all of": the first failed
     * input in array order, or every input resolved; "first of": the
     * first decided input in array order.) */
    size_t pending = 0;
    const weft_future *decider = NULL;
    for (size_t i = 0; i < n; i++) {
        const weft_future *in = futs[i];
        if (in->state == WEFT_FUTURE_PENDING)
            pending++;
        else if (!decider && (any || in->state == WEFT_FUTURE_FAILED))
            decider = in;
    }
    if (pending > (SIZE_MAX - sizeof(struct gather)) / sizeof(struct gslot))
        return -ENOMEM;

    weft_future *f;
    int r = weft_future_new(s, &f);
    if (r < 0)
        return r;
    if (decider) {
        settle(f, decider->state, decider->value, decider->err);
        *out = f;
        return 0;
    }
    if (pending == 0) {
        settle(f, WEFT_FUTURE_RESOLVED, NULL, 0);
        *out = f;
        return 0;
    }

    struct gather *g =
        weft__malloc(sizeof *g + pending * sizeof(struct gslot));
    if (!g) {
        unref(f);
        return -ENOMEM;
    }
    g->out = f;
    g->any = any;
    g->decided = 0;
    g->remaining = pending;
    g->n = 0;
    /* Every input attached here is pending, so no callback runs yet. */
    for (size_t i = 0; i < n; i++) {
        weft_future *in = futs[i];
        if (in->state != WEFT_FUTURE_PENDING)
            continue;
        struct gslot *sl = &g->slot[g->n];
        sl->g = g;
        sl->in = in;
        r = in->refs >= MAX_REFS ? -EOVERFLOW : cb_push(in, gather_cb, sl);
        if (r < 0) {
            g->decided = 1;
            for (size_t j = 0; j < g->n; j++) {
                cb_remove(g->slot[j].in, gather_cb, &g->slot[j]);
                unref(g->slot[j].in);
            }
            weft__free(g);
            unref(f);
            return r;
        }
        in->refs++;
        g->n++;
    }
    f->gather = g;
    *out = f;
    return 0;
}

int weft_future_all(weft_sched *s, weft_future *const *futs, size_t n,
                    weft_future **out)
{
    return gather_new(s, futs, n, 0, out);
}

int weft_future_any(weft_sched *s, weft_future *const *futs, size_t n,
                    weft_future **out)
{
    return gather_new(s, futs, n, 1, out);
}
