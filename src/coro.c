/*
 * coro.c - coroutine lifecycle: spawn (now, at, in, recurring), yield and
 * sleep, join/reap/detach, raising errors and ending, failure handlers,
 * per-coroutine hooks and accessors.
 *
 * A coroutine's record lives at the top of its own stack, so spawning
 * costs one stack from the pool and no other allocation.  The record (and
 * so the stack) lives until the coroutine is joined, reaped or detached
 * and finished.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#if defined(WEFT_TSAN)
#include <sanitizer/tsan_interface.h>
#endif


void weft__coro_start_ctx(weft_coro *co, void *lo, size_t size); /* sched.c */

static atomic_uint_fast64_t next_id = 1;

/* A pending weft_raise_at(). */
struct raise_timer {
    struct weft__tnode node;
    struct weft__list link; /* in co->raises */
    weft_coro *co;
    int err;
};

static void cancel_raises(weft_sched *s, weft_coro *co)
{
    while (!weft__list_empty(&co->raises)) {
        struct raise_timer *rt =
            weft__container_of(co->raises.next, struct raise_timer, link);
        weft__list_remove(&rt->link);
        weft__timer_del(s, &rt->node);
        weft__free(rt);
    }
}

static int check_opts(weft_sched *s, const struct weft_spawn_opts *o,
                      size_t *size)
{
    if (!o) {
        *size = s->default_stack;
        return 0;
    }
    if (!weft__stack_size_ok(o->stack_size))
        return -EINVAL;
    if (o->priority < WEFT_PRIO_HIGH || o->priority > WEFT_PRIO_IDLE)
        return -EINVAL;
    *size = o->stack_size ? weft__stack_round(o->stack_size)
                          : s->default_stack;
    return 0;
}

int weft__coro_create(weft_sched *s, weft_fn fn, void *arg,
                      const struct weft_spawn_opts *opts, size_t extra,
                      void **extra_out, weft_coro **out)
{
    size_t size;
    int r = check_opts(s, opts, &size);
    if (r < 0)
        return r;
    struct weft__stack st;
    r = weft__stack_alloc(&s->stacks, size, &st);
    if (r < 0)
        return r;
    uintptr_t top = (uintptr_t)st.lo + st.size;
    uintptr_t rec = (top - sizeof(weft_coro)) & ~(uintptr_t)63;
    weft_coro *co = (weft_coro *)rec;
    memset(co, 0, sizeof *co);
    uintptr_t sp_top = rec;
    if (extra) {
        sp_top = (rec - extra) & ~(uintptr_t)15;
        if (extra_out)
            *extra_out = (void *)sp_top;
    }
    co->stack = st;
    co->sched = s;
    co->fn = fn;
    co->arg = arg;
    co->id = atomic_fetch_add(&next_id, 1);
    co->prio = (uint8_t)((opts ? opts->priority : 0) - WEFT_PRIO_HIGH);
    co->data = opts ? opts->data : NULL;
    if (opts && opts->name)
        weft_coro_set_name(co, opts->name);
    weft__list_init(&co->link);
    weft__list_init(&co->raises);
    weft__tnode_init(&co->timer, NULL);
    co->state = WEFT__NEW;
#if defined(WEFT_TSAN)
    co->tsan_fiber = __tsan_create_fiber(0);
#endif
    weft__coro_start_ctx(co, st.lo, sp_top - (uintptr_t)st.lo);
    weft__list_push_back(&s->all, &co->all);
    s->alive++;
    *out = co;
    return 0;
}

void weft__coro_release(weft_sched *s, weft_coro *co)
{
    weft__list_remove(&co->link);
    weft__timer_del(s, &co->timer);
    cancel_raises(s, co);
    weft__list_remove(&co->all);
    if (co->state != WEFT__DONE)
        s->alive--;
    if (co->ext) {
        weft__cbvec_free(&co->ext->in_hooks);
        weft__cbvec_free(&co->ext->out_hooks);
        weft__cbvec_free(&co->ext->err_handlers);
        weft__free(co->ext);
    }
#if defined(WEFT_TSAN)
    __tsan_destroy_fiber(co->tsan_fiber);
#endif
    struct weft__stack st = co->stack; /* co lives on it */
    weft__stack_free(&s->stacks, &st);
}

/* ----------------------------------------------------------------------
 * Spawning
 * ---------------------------------------------------------------------- */

static void finish_spawn(weft_coro *co, weft_coro **out)
{
    if (out)
        *out = co;
    else
        co->flags |= WEFT__F_DETACHED;
}

int weft_spawn(weft_sched *s, weft_fn fn, void *arg,
               const struct weft_spawn_opts *opts, weft_coro **out)
{
    weft_coro *co;
    s = weft__sched_arg(s);
    if (!s || !fn)
        return -EINVAL;
    int r = weft__coro_create(s, fn, arg, opts, 0, NULL, &co);
    if (r < 0)
        return r;
    weft__ready(s, co, opts && opts->first);
    finish_spawn(co, out);
    return 0;
}

static void start_due(weft_sched *s, struct weft__tnode *t)
{
    weft_coro *co = weft__container_of(t, weft_coro, timer);
    weft__ready(s, co, (co->flags & WEFT__F_FIRST) != 0);
}

static int spawn_at(weft_sched *s, int64_t t, weft_fn fn, void *arg,
                    const struct weft_spawn_opts *opts, size_t extra,
                    void **extra_out, weft_coro **out)
{
    weft_coro *co;
    int r = weft__coro_create(s, fn, arg, opts, extra, extra_out, &co);
    if (r < 0)
        return r;
    if (opts && opts->first)
        co->flags |= WEFT__F_FIRST;
    co->timer.fire = start_due;
    r = weft__timer_add(s, &co->timer, t);
    if (r < 0) {
        weft__coro_release(s, co);
        return r;
    }
    finish_spawn(co, out);
    return 0;
}

int weft_spawn_at(weft_sched *s, int64_t t, weft_fn fn, void *arg,
                  const struct weft_spawn_opts *opts, weft_coro **out)
{
    s = weft__sched_arg(s);
    if (!s || !fn)
        return -EINVAL;
    return spawn_at(s, t, fn, arg, opts, 0, NULL, out);
}

static int64_t add_sat(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

int weft_spawn_in(weft_sched *s, int64_t delay_ns, weft_fn fn, void *arg,
                  const struct weft_spawn_opts *opts, weft_coro **out)
{
    s = weft__sched_arg(s);
    if (!s || !fn || delay_ns < 0)
        return -EINVAL;
    return spawn_at(s, add_sat(weft__clock_now(s), delay_ns), fn, arg, opts,
                    0, NULL, out);
}

struct recurring {
    int64_t interval, maxtimes, next;
    weft_fn fn;
    void *arg;
};

static int recurring_main(void *p)
{
    struct recurring *rc = p;
    weft_coro *self = weft_self();
    int64_t runs = 0;
    for (;;) {
        int64_t now = weft_now(NULL);
        if (rc->next > now) {
            int r = weft_sleep_until(rc->next);
            if (r < 0)
                return r;
        } else if (self->flags & WEFT__F_ENDED) {
            return -ECANCELED;
        }
        int st = rc->fn(rc->arg);
        if (st < 0)
            return st;
        if (rc->maxtimes && ++runs >= rc->maxtimes)
            return 0;
        /* The next grid point after the one just run, skipping any that
         * passed while it ran. */
        now = weft_now(NULL);
        rc->next = add_sat(rc->next, rc->interval);
        if (rc->next < now) {
            int64_t behind = now - rc->next;
            int64_t k = (behind + rc->interval - 1) / rc->interval;
            rc->next = add_sat(rc->next, k * rc->interval);
        }
    }
}

int weft_spawn_recurring(weft_sched *s, int64_t interval_ns, int64_t maxtimes,
                         int64_t starting_at, weft_fn fn, void *arg,
                         const struct weft_spawn_opts *opts, weft_coro **out)
{
    s = weft__sched_arg(s);
    if (!s || !fn || interval_ns <= 0 || maxtimes < 0 || starting_at < -1)
        return -EINVAL;
    int64_t start = starting_at == -1 ? weft__clock_now(s) : starting_at;
    void *mem = NULL;
    weft_coro *co;
    int r = spawn_at(s, start, recurring_main, NULL, opts,
                     sizeof(struct recurring), &mem, &co);
    if (r < 0)
        return r;
    struct recurring *rc = mem;
    rc->interval = interval_ns;
    rc->maxtimes = maxtimes;
    rc->next = start;
    rc->fn = fn;
    rc->arg = arg;
    co->arg = rc;
    if (out)
        *out = co;
    else
        co->flags |= WEFT__F_DETACHED;
    return 0;
}

/* ----------------------------------------------------------------------
 * Yield and sleep
 * ---------------------------------------------------------------------- */

weft_coro *weft_self(void)
{
    return weft__tls.current;
}

int weft_sleep_until(int64_t t)
{
    weft_coro *co = weft__tls.current;
    if (!co)
        return -EINVAL;
    weft_sched *s = co->sched;
    if (t <= weft__clock_now(s))
        return weft_yield();
    co->wait_kind = WEFT__WAIT_SLEEP;
    int r = weft__block(s, t);
    return r == -ETIMEDOUT ? 0 : r;
}

int weft_sleep_for(int64_t ns)
{
    weft_coro *co = weft__tls.current;
    if (!co || ns < 0)
        return -EINVAL;
    if (ns == 0)
        return weft_yield();
    return weft_sleep_until(add_sat(weft__clock_now(co->sched), ns));
}

/* ----------------------------------------------------------------------
 * Join, reap, detach
 * ---------------------------------------------------------------------- */

static int joinable(const weft_coro *co)
{
    return co && weft__owned(co->sched) &&
           !(co->flags & WEFT__F_DETACHED) && !co->joiner;
}

int weft_join_until(weft_coro *co, int64_t deadline, int *status)
{
    weft_coro *self = weft__tls.current;
    if (!self)
        return -EINVAL;
    if (co == self)
        return -EDEADLK;
    if (!joinable(co) || co->sched != self->sched)
        return -EINVAL;
    weft_sched *s = co->sched;
    if (co->state != WEFT__DONE) {
        co->joiner = self;
        self->wait_obj = co;
        self->wait_kind = WEFT__WAIT_JOIN;
        int r = weft__block(s, deadline);
        co->joiner = NULL;
        if (co->state != WEFT__DONE)
            return r < 0 ? r : -EINTR; /* r == 0 cannot happen */
        /* Finished: a raise that lost the race is kept for later. */
        if (r < 0 && r != -ETIMEDOUT && r != -ECANCELED)
            self->pending_err = r;
    }
    if (status)
        *status = co->status;
    weft__coro_release(s, co);
    return 0;
}

int weft_join(weft_coro *co, int *status)
{
    return weft_join_until(co, -1, status);
}

/* Free a finished coroutine.  While its failure handlers or its last
 * outgoing hooks run it is finished but still the current coroutine, on
 * its own stack: then it is freed after its final switch instead. */
static void release_done(weft_coro *co)
{
    weft_sched *s = co->sched;
    if (co == s->current) {
        co->flags |= WEFT__F_DETACHED;
        s->to_release = co;
        return;
    }
    weft__coro_release(s, co);
}

int weft_reap(weft_coro *co, int *status)
{
    if (!joinable(co))
        return -EINVAL;
    if (co->state != WEFT__DONE)
        return -EAGAIN;
    if (status)
        *status = co->status;
    release_done(co);
    return 0;
}

int weft_detach(weft_coro *co)
{
    if (!joinable(co))
        return -EINVAL;
    co->flags |= WEFT__F_DETACHED;
    if (co->state == WEFT__DONE)
        release_done(co);
    return 0;
}

/* ----------------------------------------------------------------------
 * Raise and end
 * ---------------------------------------------------------------------- */

int weft_raise(weft_coro *co, int err)
{
    if (!co || err >= 0 || !weft__owned(co->sched))
        return -EINVAL;
    if (co->state == WEFT__DONE)
        return -ESRCH;
    if (co->state == WEFT__WAITING)
        weft__wake(co, err);
    else
        co->pending_err = err;
    return 0;
}

static void raise_due(weft_sched *s, struct weft__tnode *t)
{
    struct raise_timer *rt = weft__container_of(t, struct raise_timer, node);
    (void)s;
    weft__list_remove(&rt->link);
    (void)weft_raise(rt->co, rt->err);
    weft__free(rt);
}

int weft_raise_at(weft_coro *co, int err, int64_t t)
{
    if (!co || err >= 0 || !weft__owned(co->sched))
        return -EINVAL;
    if (co->state == WEFT__DONE)
        return -ESRCH;
    struct raise_timer *rt = weft__malloc(sizeof *rt);
    if (!rt)
        return -ENOMEM;
    weft__tnode_init(&rt->node, raise_due);
    rt->co = co;
    rt->err = err;
    int r = weft__timer_add(co->sched, &rt->node, t);
    if (r < 0) {
        weft__free(rt);
        return r;
    }
    weft__list_push_back(&co->raises, &rt->link);
    return 0;
}

int weft_raise_in(weft_coro *co, int err, int64_t delay_ns)
{
    if (!co || delay_ns < 0 || !weft__owned(co->sched))
        return -EINVAL;
    return weft_raise_at(co, err,
                         add_sat(weft__clock_now(co->sched), delay_ns));
}

int weft_end(weft_coro *co)
{
    if (!co || !weft__owned(co->sched))
        return -EINVAL;
    if (co->state == WEFT__DONE)
        return 0;
    co->flags |= WEFT__F_ENDED;
    if (co->state == WEFT__NEW && !(co->flags & WEFT__F_STARTED)) {
        /* Never ran: finish it without running.  Neither queued nor
         * waiting for its start time, inside a hook, means a switch hook
         * is ending it while the scheduler switches to it: the switch
         * then skips it and frees it if detached (see do_switch). */
        int entering = co->sched->in_hook && weft__list_empty(&co->link) &&
                       co->timer.idx == WEFT__NOT_IN_HEAP;
        weft__list_remove(&co->link);
        weft__timer_del(co->sched, &co->timer);
        weft__coro_exit(co, -ECANCELED);
        if ((co->flags & WEFT__F_DETACHED) && !entering)
            weft__coro_release(co->sched, co);
        return 0;
    }
    if (co->state == WEFT__WAITING)
        weft__wake(co, -ECANCELED);
    return 0;
}

int weft_coro_ended(const weft_coro *co)
{
    if (!co)
        return -EINVAL;
    return (co->flags & WEFT__F_ENDED) != 0;
}

int weft_coro_done(const weft_coro *co)
{
    if (!co)
        return -EINVAL;
    return co->state == WEFT__DONE;
}

/* ----------------------------------------------------------------------
 * Exit and failure handlers
 * ---------------------------------------------------------------------- */

void weft__coro_exit(weft_coro *co, int status)
{
    weft_sched *s = co->sched;
    co->status = status;
    co->state = WEFT__DONE;
    s->alive--;
    cancel_raises(s, co);
    if (status < 0 && !((co->flags & WEFT__F_ENDED) && status == -ECANCELED)) {
        if (!s->first_failure)
            s->first_failure = status;
        (void)weft__coro_report(co, status);
    }
    if (co->joiner)
        weft__wake(co->joiner, 0);
}

static int run_handlers(struct weft__cbvec *cv, weft_coro *co, int status)
{
    int called = 0;
    uint32_t n = cv->n;
    cv->iterating++;
    for (uint32_t i = 0; i < n; i++) {
        struct weft__cb cb = cv->v[i];
        if (cb.fn) {
            ((weft_error_fn)cb.fn)(co, status, cb.arg);
            called++;
        }
    }
    weft__cbvec_end_iter(cv);
    return called;
}

int weft__coro_report(weft_coro *co, int status)
{
    weft_sched *s = co->sched;
    int called = 0;
    s->in_hook++;
    if (co->ext)
        called += run_handlers(&co->ext->err_handlers, co, status);
    called += run_handlers(&s->err_handlers, co, status);
    s->in_hook--;
    if (!called)
        fprintf(stderr, "weft: coroutine #%llu%s%s%s failed: %s (%s)\n",
                (unsigned long long)co->id, co->name[0] ? " '" : "",
                co->name, co->name[0] ? "'" : "", weft_strerror(status),
                weft_err_name(status));
    return called;
}

int weft_handle_error(weft_coro *co, int status)
{
    if (!co)
        co = weft__tls.current;
    if (!co || status >= 0 || !weft__owned(co->sched))
        return -EINVAL;
    return weft__coro_report(co, status);
}

int weft_on_error_global(weft_sched *s, weft_error_fn fn, void *arg)
{
    s = weft__sched_arg(s);
    if (!s || !fn)
        return -EINVAL;
    return weft__cbvec_add(&s->err_handlers, (void (*)(void))fn, arg);
}

int weft_remove_error_global(weft_sched *s, weft_error_fn fn, void *arg)
{
    s = weft__sched_arg(s);
    if (!s || !fn)
        return -EINVAL;
    return weft__cbvec_remove(&s->err_handlers, (void (*)(void))fn, arg);
}

static struct weft__coro_ext *ext_of(weft_coro *co)
{
    if (!co->ext)
        co->ext = weft__calloc(1, sizeof *co->ext);
    return co->ext;
}

/* Resolve a coroutine argument that may be NULL (the caller). */
static weft_coro *coro_arg(weft_coro *co)
{
    if (!co)
        co = weft__tls.current;
    if (!co || !weft__owned(co->sched))
        return NULL;
    return co;
}

int weft_on_error(weft_coro *co, weft_error_fn fn, void *arg)
{
    co = coro_arg(co);
    if (!co || !fn || co->state == WEFT__DONE)
        return -EINVAL;
    struct weft__coro_ext *e = ext_of(co);
    if (!e)
        return -ENOMEM;
    return weft__cbvec_add(&e->err_handlers, (void (*)(void))fn, arg);
}

int weft_remove_error(weft_coro *co, weft_error_fn fn, void *arg)
{
    co = coro_arg(co);
    if (!co || !fn)
        return -EINVAL;
    if (!co->ext)
        return -ENOENT;
    return weft__cbvec_remove(&co->ext->err_handlers, (void (*)(void))fn, arg);
}

/* ----------------------------------------------------------------------
 * Hooks
 * ---------------------------------------------------------------------- */

int weft_hook_add(weft_sched *s, weft_hook_fn fn, void *arg)
{
    s = weft__sched_arg(s);
    if (!s || !fn)
        return -EINVAL;
    return weft__cbvec_add(&s->hooks, (void (*)(void))fn, arg);
}

int weft_hook_remove(weft_sched *s, weft_hook_fn fn, void *arg)
{
    s = weft__sched_arg(s);
    if (!s || !fn)
        return -EINVAL;
    return weft__cbvec_remove(&s->hooks, (void (*)(void))fn, arg);
}

static struct weft__cbvec *hook_vec(struct weft__coro_ext *e, int dir)
{
    return dir == WEFT_HOOK_IN ? &e->in_hooks : &e->out_hooks;
}

int weft_coro_hook_add(weft_coro *co, int dir, weft_coro_hook_fn fn,
                       void *arg)
{
    co = coro_arg(co);
    if (!co || !fn || (dir != WEFT_HOOK_IN && dir != WEFT_HOOK_OUT) ||
        co->state == WEFT__DONE)
        return -EINVAL;
    struct weft__coro_ext *e = ext_of(co);
    if (!e)
        return -ENOMEM;
    return weft__cbvec_add(hook_vec(e, dir), (void (*)(void))fn, arg);
}

int weft_coro_hook_remove(weft_coro *co, int dir, weft_coro_hook_fn fn,
                          void *arg)
{
    co = coro_arg(co);
    if (!co || !fn || (dir != WEFT_HOOK_IN && dir != WEFT_HOOK_OUT))
        return -EINVAL;
    if (!co->ext)
        return -ENOENT;
    return weft__cbvec_remove(hook_vec(co->ext, dir), (void (*)(void))fn, arg);
}

/* ----------------------------------------------------------------------
 * Accessors
 * ---------------------------------------------------------------------- */

uint64_t weft_coro_id(const weft_coro *co)
{
    return co ? co->id : 0;
}

const char *weft_coro_name(const weft_coro *co)
{
    return co ? co->name : "";
}

int weft_coro_set_name(weft_coro *co, const char *name)
{
    if (!co)
        return -EINVAL;
    size_t n = name ? strlen(name) : 0;
    if (n > WEFT_NAME_MAX)
        n = WEFT_NAME_MAX;
    if (n)
        memmove(co->name, name, n); /* name may be (part of) co->name */
    co->name[n] = 0;
    return 0;
}

void *weft_coro_data(const weft_coro *co)
{
    return co ? co->data : NULL;
}

int weft_coro_set_data(weft_coro *co, void *data)
{
    if (!co)
        return -EINVAL;
    co->data = data;
    return 0;
}

size_t weft_coro_stack_size(const weft_coro *co)
{
    return co ? co->stack.size : 0;
}

weft_sched *weft_coro_sched(const weft_coro *co)
{
    return co ? co->sched : NULL;
}
