/*
 * sched.c - the scheduler: lifecycle, the loop, the run queue, and the
 * switch between coroutines (with hooks and sanitizer annotations).
 *
 * The loop (one iteration, weft_run_once):
 *   1. run the turn: every coroutine that was ready when the turn began,
 *      most urgent priority first, FIFO within a priority;
 *   2. fire expired timers;
 *   3. wait for the next deadline (or jump a manual clock to it), unless
 *      something is ready;
 *   4. fire the timers that came due while waiting.
 *
 * Fairness: a coroutine made ready during a turn (by a yield, a wake-up or
 * a spawn) joins the next turn, so every ready coroutine runs once per turn
 * whatever its priority, and nothing starves.  The one exception is
 * spawn's `first` option, which puts the new coroutine at the head of the
 * turn in progress (cogen's first=True).
 *
 * Switches go directly from one coroutine to the next of the turn; only
 * when the turn is over does control return to the loop's own context.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#if defined(WEFT_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(WEFT_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

_Thread_local struct weft__tls weft__tls;

#define DEFAULT_STACK ((size_t)64 * 1024)
#define DEFAULT_CACHE 256

/* ----------------------------------------------------------------------
 * Lifecycle
 * ---------------------------------------------------------------------- */

int weft_sched_new(const struct weft_sched_opts *opts, weft_sched **out)
{
    struct weft_sched_opts o;
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (opts)
        o = *opts;
    else
        memset(&o, 0, sizeof o);
    if (o.clock != WEFT_CLOCK_MONOTONIC && o.clock != WEFT_CLOCK_MANUAL)
        return -EINVAL;
    if (o.guard != WEFT_GUARD_AUTO && o.guard != WEFT_GUARD_PAGES &&
        o.guard != WEFT_GUARD_CANARY)
        return -EINVAL;
    if (!weft__stack_size_ok(o.stack_size))
        return -EINVAL;
    if (o.backend < WEFT_BACKEND_AUTO || o.backend > WEFT_BACKEND_URING ||
        o.io_timeout < 0 || o.watchdog_ns < 0)
        return -EINVAL;

    weft_sched *s = weft__calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    weft__list_init(&s->batch);
    for (int i = 0; i < WEFT_PRIO_LEVELS; i++)
        weft__list_init(&s->runq[i]);
    weft__list_init(&s->all);
    weft__list_init(&s->timers);
    s->clock = o.clock;
    if (s->clock == WEFT_CLOCK_MANUAL)
        s->unix_base = weft__realtime_ns();
    size_t ss = o.stack_size ? o.stack_size : DEFAULT_STACK;
    s->default_stack = weft__stack_round(ss);
    weft__stackpool_init(&s->stacks, o.guard,
                         o.stack_cache ? o.stack_cache : DEFAULT_CACHE);
    s->owner = &weft__tls;
    s->eintr = o.eintr != 0;
    s->io_timeout = o.io_timeout;
    int r = weft__io_init(s, o.backend);
    if (r < 0) {
        weft__stackpool_destroy(&s->stacks);
        weft__free(s);
        return r;
    }
    if (o.watchdog_ns) {
        r = weft__wd_configure(s, o.watchdog_ns);
        if (r < 0) {
            weft__io_fini(s);
            weft__stackpool_destroy(&s->stacks);
            weft__free(s);
            return r;
        }
    }
    if (!o.no_overflow_handler) {
        weft__guard_install();
        weft__guard_thread_init();
    }
    *out = s;
    return 0;
}

void weft__timers_free_all(weft_sched *s); /* timer.c */

int weft_sched_free(weft_sched *s)
{
    if (!s || !weft__owned(s))
        return -EINVAL;
    if (s->running)
        return -EBUSY;
    if (s->trace)
        weft__trace_free_sched(s);
    weft__wd_stop(s);
    while (!weft__list_empty(&s->all)) {
        weft_coro *co = weft__container_of(s->all.next, weft_coro, all);
        weft__coro_release(s, co);
    }
    weft__timers_free_all(s);
    weft__io_fini(s);
    weft__cbvec_free(&s->hooks);
    weft__cbvec_free(&s->err_handlers);
    weft__heap_free(&s->heap);
    weft__stackpool_destroy(&s->stacks);
    if (weft__tls.dflt == s)
        weft__tls.dflt = NULL;
    weft__free(s);
    return 0;
}

static pthread_key_t dflt_key;
static pthread_once_t dflt_once = PTHREAD_ONCE_INIT;

static void dflt_destroy(void *p)
{
    weft_sched *s = p;
    if (weft__tls.dflt == s && !s->running)
        weft_sched_free(s);
}

/* At exit, free the default scheduler of the thread that calls exit(), so
 * leak checkers see a clean process. */
static void dflt_atexit(void)
{
    weft_sched *s = weft__tls.dflt;
    if (s && !s->running)
        weft_sched_free(s);
}

static void dflt_key_make(void)
{
    (void)pthread_key_create(&dflt_key, dflt_destroy);
    (void)atexit(dflt_atexit); /* on failure: freed by nobody at exit */
}

weft_sched *weft_sched_default(void)
{
    if (!weft__tls.dflt) {
        weft_sched *s;
        if (weft_sched_new(NULL, &s) < 0)
            return NULL;
        pthread_once(&dflt_once, dflt_key_make);
        (void)pthread_setspecific(dflt_key, s);
        weft__tls.dflt = s;
    }
    return weft__tls.dflt;
}

weft_sched *weft_sched_current(void)
{
    return weft__tls.running ? weft__tls.running : weft_sched_default();
}

weft_sched *weft__sched_arg(weft_sched *s)
{
    if (!s)
        return weft_sched_current();
    return weft__owned(s) ? s : NULL;
}

int weft_sched_set_io_timeout(weft_sched *s, int64_t timeout_ns)
{
    s = weft__sched_arg(s);
    if (!s || timeout_ns < 0)
        return -EINVAL;
    s->io_timeout = timeout_ns;
    return 0;
}

int64_t weft_sched_io_timeout(weft_sched *s)
{
    s = weft__sched_arg(s);
    return s ? s->io_timeout : -EINVAL;
}

int64_t weft_sched_count(weft_sched *s)
{
    s = weft__sched_arg(s);
    if (!s)
        return -EINVAL;
    return s->alive;
}

/* ----------------------------------------------------------------------
 * Switching
 * ---------------------------------------------------------------------- */

static void run_hooks(weft_sched *s, weft_coro *from, weft_coro *to)
{
    s->in_hook++;
    if (from && from->ext && from->ext->out_hooks.n) {
        struct weft__cbvec *cv = &from->ext->out_hooks;
        uint32_t n = cv->n;
        cv->iterating++;
        for (uint32_t i = 0; i < n; i++) {
            struct weft__cb cb = cv->v[i];
            if (cb.fn)
                ((weft_coro_hook_fn)cb.fn)(WEFT_HOOK_OUT, from, cb.arg);
        }
        weft__cbvec_end_iter(cv);
    }
    if (s->hooks.n) {
        struct weft__cbvec *cv = &s->hooks;
        uint32_t n = cv->n;
        cv->iterating++;
        for (uint32_t i = 0; i < n; i++) {
            struct weft__cb cb = cv->v[i];
            if (cb.fn)
                ((weft_hook_fn)cb.fn)(from, to, cb.arg);
        }
        weft__cbvec_end_iter(cv);
    }
    if (to && to->ext && to->ext->in_hooks.n) {
        struct weft__cbvec *cv = &to->ext->in_hooks;
        uint32_t n = cv->n;
        cv->iterating++;
        for (uint32_t i = 0; i < n; i++) {
            struct weft__cb cb = cv->v[i];
            if (cb.fn)
                ((weft_coro_hook_fn)cb.fn)(WEFT_HOOK_IN, to, cb.arg);
        }
        weft__cbvec_end_iter(cv);
    }
    s->in_hook--;
}

/* Code run by every context right after it is switched to. */
static void after_switch(weft_sched *s)
{
#if defined(WEFT_ASAN)
    {
        weft_coro *cur = s->current;
        const void *ob = NULL;
        size_t os = 0;
        __sanitizer_finish_switch_fiber(cur ? cur->asan_fake
                                            : s->asan_main_fake,
                                        &ob, &os);
        if (!s->asan_main_size && cur && ob) {
            /* The first switch out of the loop tells us the loop's stack. */
            s->asan_main_bottom = ob;
            s->asan_main_size = os;
        }
    }
#endif
    if (s->to_release) {
        weft_coro *dead = s->to_release;
        s->to_release = NULL;
        weft__coro_release(s, dead);
    }
}

/* Switch from `from` (NULL: the loop) to `to` (NULL: the loop). */
static weft_coro *next_of_turn(weft_sched *s);

/* noinline on purpose: this must stay the single call site of
 * weft__ctx_switch, so that the switch's ret is predicted (see the comment
 * at the top of src/ctx/x86_64.S). */
__attribute__((noinline)) static void do_switch(weft_sched *s,
                                                weft_coro *from,
                                                weft_coro *to, int dying)
{
    while (weft__unlikely(s->hooks.n || (from && from->ext) ||
                          (to && to->ext))) {
        run_hooks(s, from, to);
        if (!to || to->state != WEFT__DONE)
            break;
        /* A hook ended `to` before it ever ran: it is finished without
         * running (weft_end() left freeing it to us), so enter the next
         * coroutine of the turn instead. */
        if (to->flags & WEFT__F_DETACHED)
            weft__coro_release(s, to);
        to = next_of_turn(s);
    }
    if (weft__unlikely(from == to))
        return; /* from the loop to the loop: the turn is over */
    if (from && !(from->stack.flags & WEFT__STACK_GUARDED) &&
        weft__unlikely(!weft__stack_canary_ok(&from->stack)))
        weft__stack_canary_fail(from);
    s->current = to;
    weft__tls.current = to;
    if (to)
        to->state = WEFT__RUNNING;
    if (weft__unlikely(s->wd != NULL))
        weft__wd_switch(s->wd, to);
#if defined(WEFT_ASAN)
    __sanitizer_start_switch_fiber(
        dying ? NULL : (from ? &from->asan_fake : &s->asan_main_fake),
        to ? (const void *)to->stack.lo : s->asan_main_bottom,
        to ? to->stack.size : s->asan_main_size);
#else
    (void)dying;
#endif
#if defined(WEFT_TSAN)
    __tsan_switch_to_fiber(to ? to->tsan_fiber : s->tsan_main, 0);
#endif
    weft__ctx_switch(from ? &from->ctx : &s->ctx, to ? &to->ctx : &s->ctx);
    after_switch(s);
}

static weft_coro *next_of_turn(weft_sched *s)
{
    struct weft__list *n = weft__list_pop_front(&s->batch);
    return n ? weft__container_of(n, weft_coro, link) : NULL;
}

/*
 * The turn is over and the loop would have nothing to do but start the
 * next one (no timer, no stop request, inside weft_run rather than
 * weft_run_once): start it here, on the current stack, and save two
 * switches through the loop's context.  At most INLINE_TURNS turns in a
 * row are started this way, so the loop still gets control regularly.
 * When the caller is the only coroutine ready, it continues without any
 * switch.
 */
#define INLINE_TURNS 64

static weft_coro *start_turn_inline(weft_sched *s, const weft_coro *from)
{
    /* With switch hooks the loop keeps its visible place between turns:
     * hooks then see (from, NULL) and (NULL, to) as documented. */
    if (!s->inline_ok || s->stop_req || s->heap.n ||
        s->inline_turns >= INLINE_TURNS || s->hooks.n || from->ext ||
        s->io_waiters)
        return NULL;
    s->inline_turns++;
    for (int i = 0; i < WEFT_PRIO_LEVELS; i++)
        weft__list_splice_back(&s->batch, &s->runq[i]);
    return next_of_turn(s);
}

void weft__schedule(weft_sched *s)
{
    weft_coro *from = s->current;
    weft_coro *to = next_of_turn(s);
    if (!to) {
        to = start_turn_inline(s, from);
        if (to == from && to) {
            /* The only ready coroutine is the caller: no switch at all
             * (but it yielded, which the watchdog must see). */
            from->state = WEFT__RUNNING;
            if (weft__unlikely(s->wd != NULL))
                weft__wd_switch(s->wd, to);
            return;
        }
    }
    do_switch(s, from, to, 0);
}

/* The body of a finished coroutine leaves its stack for the last time. */
static void schedule_dying(weft_sched *s, weft_coro *from)
{
    weft_coro *to = next_of_turn(s);
    do_switch(s, from, to, 1);
    abort(); /* a finished coroutine is never resumed */
}

/* First code of every coroutine, on its own stack. */
static void coro_main(void *p)
{
    weft_coro *co = p;
    weft_sched *s = co->sched;
    after_switch(s);
    co->flags |= WEFT__F_STARTED;
    int status = co->fn(co->arg);
    weft__coro_exit(co, status);
    if (co->flags & WEFT__F_DETACHED)
        s->to_release = co; /* freed by the next context, off this stack */
    schedule_dying(s, co);
}

void weft__coro_start_ctx(weft_coro *co, void *lo, size_t size);
void weft__coro_start_ctx(weft_coro *co, void *lo, size_t size)
{
    weft__ctx_make(&co->ctx, lo, size, coro_main, co);
}

/* ----------------------------------------------------------------------
 * Ready, block, wake
 * ---------------------------------------------------------------------- */

void weft__ready(weft_sched *s, weft_coro *co, int first)
{
    if (weft__unlikely(s->trace != NULL))
        weft__trace_ready(s->trace, co);
    co->state = co->flags & WEFT__F_STARTED ? WEFT__READY : WEFT__NEW;
    if (first)
        weft__list_push_front(&s->batch, &co->link);
    else
        weft__list_push_back(&s->runq[co->prio], &co->link);
}

int weft__block_check(weft_sched *s, weft_coro **cur)
{
    weft_coro *co = weft__tls.current;
    if (!co || co->sched != s || s->in_hook)
        return -EINVAL;
    if (co->flags & WEFT__F_ENDED)
        return -ECANCELED;
    if (co->pending_err) {
        int e = co->pending_err;
        co->pending_err = 0;
        return e;
    }
    *cur = co;
    return 0;
}

static void wait_timeout(weft_sched *s, struct weft__tnode *t)
{
    weft_coro *co = weft__container_of(t, weft_coro, timer);
    (void)s;
    weft__wake(co, -ETIMEDOUT);
}

static void forget_wait(weft_coro *co)
{
    weft__list_remove(&co->link);
    if (co->wait_cancel) {
        void (*cancel)(weft_coro *) = co->wait_cancel;
        co->wait_cancel = NULL;
        cancel(co);
    }
    co->wait_obj = NULL;
    co->wait_kind = WEFT__WAIT_NONE;
}

int weft__block(weft_sched *s, int64_t deadline)
{
    weft_coro *co = NULL;
    int r = weft__block_check(s, &co);
    if (r != 0) { /* 0 is the only result that sets co */
        co = weft__tls.current;
        /* Inside a hook or handler the current coroutine is in the middle
         * of a switch or exit: its link may hold its place in a run queue
         * or a wait list that is not this call's, so leave it alone. */
        if (co && !co->sched->in_hook)
            forget_wait(co);
        return r;
    }
    if (deadline >= 0) {
        co->timer.fire = wait_timeout;
        r = weft__timer_add(s, &co->timer, deadline);
        if (r < 0) {
            forget_wait(co);
            return r;
        }
    }
    co->state = WEFT__WAITING;
    co->wake_result = 0;
    weft__schedule(s);
    co->wait_cancel = NULL;
    co->wait_obj = NULL;
    co->wait_kind = WEFT__WAIT_NONE;
    return co->wake_result;
}

/* weft_yield() lives here, next to the switch, so its fast path inlines. */
int weft_yield(void)
{
    weft_coro *co = weft__tls.current;
    if (!co)
        return -EINVAL;
    weft_sched *s = co->sched;
    int r = weft__block_check(s, &co);
    if (r < 0)
        return r;
    weft__ready(s, co, 0);
    weft__schedule(s);
    return 0;
}

int weft__block_nointr(weft_sched *s)
{
    weft_coro *co = s->current;
    co->wait_cancel = NULL;
    co->wake_result = 0;
    co->state = WEFT__WAITING;
    weft__schedule(s);
    co->wait_obj = NULL;
    co->wait_kind = WEFT__WAIT_NONE;
    return co->wake_result;
}

void weft__wake(weft_coro *co, int result)
{
    if (co->state != WEFT__WAITING)
        return;
    weft_sched *s = co->sched;
    weft__timer_del(s, &co->timer);
    if (result < 0 && co->wait_cancel) {
        /* Interrupted (timeout, raise, end): the primitive forgets us. */
        forget_wait(co);
    } else {
        weft__list_remove(&co->link);
    }
    co->wake_result = result;
    weft__ready(s, co, 0);
}

/* ----------------------------------------------------------------------
 * The loop
 * ---------------------------------------------------------------------- */

static int anything_ready(const weft_sched *s)
{
    if (!weft__list_empty(&s->batch))
        return 1;
    for (int i = 0; i < WEFT_PRIO_LEVELS; i++)
        if (!weft__list_empty(&s->runq[i]))
            return 1;
    return 0;
}

static void run_turn(weft_sched *s)
{
    s->inline_turns = 0;
    for (int i = 0; i < WEFT_PRIO_LEVELS; i++)
        weft__list_splice_back(&s->batch, &s->runq[i]);
    weft_coro *co;
    while ((co = next_of_turn(s)) != NULL)
        do_switch(s, NULL, co, 0);
}

/* The loop is about to wait up to t ns (-1: no limit): give back the pages
 * of stacks freed beyond the cache meanwhile (weft__stack_trim(), about
 * 3 us each here), as many as fit in a tenth of the wait, at most
 * TRIM_MAX, so a deadline is not missed for it. */
#define TRIM_MAX 256
#define TRIM_NS_EACH 30000

static void idle_trim(weft_sched *s, int64_t t)
{
    size_t max = TRIM_MAX;
    if (t >= 0 && t / TRIM_NS_EACH < TRIM_MAX)
        max = (size_t)(t / TRIM_NS_EACH);
    if (max)
        (void)weft__stack_trim(&s->stacks, max);
}

/* Wait for I/O and the next deadline, capped by timeout (-1: no cap).
 * Does not wait when something is ready or a stop is requested, but still
 * polls I/O without waiting, so I/O gets its turn every iteration. */
static void wait_phase(weft_sched *s, int64_t timeout)
{
    int io = s->io_waiters > 0;
    if (anything_ready(s) || s->stop_req) {
        if (io)
            (void)weft__io_poll(s, 0);
        return;
    }
    int64_t now = weft__clock_now(s);
    int64_t t = -1;
    if (s->heap.n) {
        t = s->heap.a[0].due - now;
        if (t < 0)
            t = 0;
    }
    /* Nothing to run and nothing due: idle, even when the caller does not
     * let the loop wait (an embedding's weft_run_once(s, 0)). */
    if (t != 0)
        idle_trim(s, t);
    if (timeout >= 0 && (t < 0 || timeout < t))
        t = timeout;
    if (t == 0 || (t < 0 && !io)) {
        /* No time to wait, or nothing could ever end the wait. */
        if (io)
            (void)weft__io_poll(s, 0);
        return;
    }
    if (s->clock == WEFT_CLOCK_MANUAL) {
        /* Jump the clock instead of sleeping, unless I/O is ready now or
         * only I/O can end the wait. */
        if (io) {
            (void)weft__io_poll(s, t > 0 ? 0 : -1);
            if (anything_ready(s))
                return;
        }
        if (t > 0)
            s->manual_now += t;
        return;
    }
    /* A signal ends the wait early (-EINTR); the loop just goes on. */
    (void)weft__io_poll(s, t);
}

static void iterate(weft_sched *s, int64_t timeout)
{
    run_turn(s);
    if (s->heap.n)
        weft__timers_run(s, weft__clock_now(s));
    wait_phase(s, timeout);
    if (s->heap.n)
        weft__timers_run(s, weft__clock_now(s));
}

static int enter(weft_sched **sp)
{
    weft_sched *s = *sp ? *sp : weft_sched_default();
    if (!s)
        return *sp ? -EINVAL : -ENOMEM;
    if (!weft__owned(s) || weft__tls.running || weft__tls.current)
        return -EINVAL;
    weft__tls.running = s;
    s->running = 1;
    s->inline_ok = 0;
#if defined(WEFT_TSAN)
    s->tsan_main = __tsan_get_current_fiber();
#endif
#if defined(WEFT_ASAN)
    s->asan_main_size = 0; /* learned again: we may run on another stack */
#endif
    *sp = s;
    return 0;
}

static void leave(weft_sched *s)
{
    s->running = 0;
    weft__tls.running = NULL;
}

static int has_work(const weft_sched *s)
{
    /* io_waiters counts active readiness callbacks too (fd waiters are
     * live coroutines anyway). */
    return s->alive > 0 || s->active_timers > 0 || s->io_waiters > 0;
}

int weft_run(weft_sched *s)
{
    int r = enter(&s);
    if (r < 0)
        return r;
    s->inline_ok = 1; /* weft_run_once must end after one turn */
    for (;;) {
        if (!has_work(s)) {
            /* A stop request made before this run is used up by it. */
            s->stop_req = 0;
            r = 0;
            break;
        }
        iterate(s, -1);
        if (s->stop_req) {
            s->stop_req = 0;
            r = has_work(s) ? 1 : 0;
            break;
        }
        if (!anything_ready(s) && s->heap.n == 0 && s->io_waiters == 0 &&
            has_work(s)) {
            /* Every coroutine waits and nothing (timer, I/O) can wake
             * any of them. */
            r = -EDEADLK;
            break;
        }
    }
    leave(s);
    return r;
}

int weft_run_once(weft_sched *s, int64_t timeout_ns)
{
    int r = enter(&s);
    if (r < 0)
        return r;
    iterate(s, timeout_ns < 0 ? -1 : timeout_ns);
    leave(s);
    return has_work(s) ? 1 : 0;
}

int weft_stop(weft_sched *s)
{
    s = weft__sched_arg(s);
    if (!s)
        return -EINVAL;
    s->stop_req = 1;
    return 0;
}

int64_t weft_next_timeout(weft_sched *s)
{
    s = weft__sched_arg(s);
    if (!s)
        return -EINVAL;
    if (anything_ready(s))
        return 0;
    if (!s->heap.n)
        return -1;
    int64_t t = s->heap.a[0].due - weft__clock_now(s);
    return t > 0 ? t : 0;
}
