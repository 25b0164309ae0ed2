/*
 * sync.c - event, mutex, condition variable, counting semaphore and wait
 * group, on the wait queues of wait.h.
 *
 * Every wake-up is a hand-off (see wait.h): the waker completes the
 * waiter's operation (sets the mutex owner, spends the permit) before
 * waking it with 0, and a waiter that gave up (timeout, raise, end) is off
 * the queue before anyone can pick it.  Hence the invariants that make
 * the primitives FIFO without barging:
 *   - mutex: owner == NULL  =>  no waiter;
 *   - semaphore: count > 0  =>  no waiter;
 *   - event: set  =>  no waiter;  wait group: count == 0  =>  no waiter.
 */
#include <stdint.h>

#include "wait.h"

/* Resolve the scheduler argument of a constructor. */
static weft_sched *sched_of(weft_sched *s)
{
    return weft__sched_arg(s);
}

/* ======================================================================
 * Event
 * ====================================================================== */

struct weft_event {
    weft_sched *sched;
    const void *owner;
    struct weft__list waiters;
    int set;
};

int weft_event_new(weft_sched *s, weft_event **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    s = sched_of(s);
    if (!s)
        return -EINVAL;
    weft_event *e = weft__calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->sched = s;
    e->owner = s->owner;
    weft__list_init(&e->waiters);
    *out = e;
    return 0;
}

int weft_event_free(weft_event *e)
{
    if (!e || !weft__obj_mine(e->owner))
        return -EINVAL;
    if (!weft__list_empty(&e->waiters))
        return -EBUSY;
    weft__free(e);
    return 0;
}

int weft_event_set(weft_event *e)
{
    if (!e || !weft__obj_mine(e->owner))
        return -EINVAL;
    e->set = 1;
    return weft__waitq_wake_all(&e->waiters, 0);
}

int weft_event_clear(weft_event *e)
{
    if (!e || !weft__obj_mine(e->owner))
        return -EINVAL;
    e->set = 0;
    return 0;
}

int weft_event_is_set(const weft_event *e)
{
    if (!e || !weft__obj_mine(e->owner))
        return -EINVAL;
    return e->set;
}

int weft_event_wait(weft_event *e, int64_t deadline)
{
    if (!e || !weft__obj_mine(e->owner))
        return -EINVAL;
    weft_coro *co;
    int r = weft__wait_check(e->sched, deadline, &co);
    if (r < 0)
        return r;
    if (e->set)
        return 0;
    co->wait_kind = WEFT__WAIT_EVENT;
    return weft__wait_on(e->sched, co, &e->waiters, e, deadline);
}

/* ======================================================================
 * Mutex
 * ====================================================================== */

struct weft_mutex {
    weft_sched *sched;
    const void *owner_thread;
    weft_coro *owner;          /* NULL when unlocked */
    struct weft__list waiters; /* in ticket order */
    uint64_t next_ticket;
};

/* A mutex waiter's slot (co->wait_obj).  Tickets keep the queue in
 * arrival order when a coroutine re-acquiring for weft_cond_wait() is
 * interrupted and has to queue again (mutex_lock_nointr()). */
struct mwait {
    /* cppcheck-suppress unusedStructMember ; read through wait_obj by
     * weft_dump() (dump.c) */
    weft_mutex *m; /* first: weft_dump() reads it (WEFT__WAIT_MUTEX) */
    uint64_t ticket;
};

int weft_mutex_new(weft_sched *s, weft_mutex **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    s = sched_of(s);
    if (!s)
        return -EINVAL;
    weft_mutex *m = weft__calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->sched = s;
    m->owner_thread = s->owner;
    weft__list_init(&m->waiters);
    *out = m;
    return 0;
}

int weft_mutex_free(weft_mutex *m)
{
    if (!m || !weft__obj_mine(m->owner_thread))
        return -EINVAL;
    if (!weft__list_empty(&m->waiters))
        return -EBUSY;
    weft__free(m);
    return 0;
}

/* Queue co in ticket order.  Searched from the tail: a fresh ticket is
 * the largest, so this is O(1) except for a re-queued waiter. */
static void mutex_enqueue(weft_mutex *m, weft_coro *co, struct mwait *w)
{
    struct weft__list *pos = &m->waiters;
    while (pos->prev != &m->waiters) {
        const weft_coro *o = weft__container_of(pos->prev, weft_coro, link);
        const struct mwait *ow = o->wait_obj;
        if (ow->ticket < w->ticket)
            break;
        pos = pos->prev;
    }
    weft__list_insert_before(pos, &co->link);
    co->wait_obj = w;
    co->wait_kind = WEFT__WAIT_MUTEX;
}

/* Give m to the first waiter (woken owning it), or unlock it. */
static void mutex_pass(weft_mutex *m)
{
    weft_coro *next = weft__waitq_pop(&m->waiters);
    m->owner = next;
    if (next)
        weft__wake(next, 0);
}

int weft_mutex_lock(weft_mutex *m, int64_t deadline)
{
    if (!m || !weft__obj_mine(m->owner_thread))
        return -EINVAL;
    weft_coro *co;
    int r = weft__wait_check(m->sched, deadline, &co);
    if (r < 0)
        return r;
    if (m->owner == co)
        return -EDEADLK;
    if (!m->owner) {
        m->owner = co;
        return 0;
    }
    struct mwait w = {m, m->next_ticket++};
    mutex_enqueue(m, co, &w);
    r = weft__block(m->sched, deadline);
    /* 0 only by mutex_pass(), which made us the owner. */
    return r;
}

int weft_mutex_trylock(weft_mutex *m)
{
    if (!m || !weft__obj_mine(m->owner_thread))
        return -EINVAL;
    weft_coro *co = weft__tls.current;
    if (!co || co->sched != m->sched)
        return -EINVAL;
    if (m->owner)
        return -EBUSY;
    m->owner = co;
    return 0;
}

int weft_mutex_unlock(weft_mutex *m)
{
    if (!m || !weft__obj_mine(m->owner_thread))
        return -EINVAL;
    weft_coro *co = weft__tls.current;
    if (!co || m->owner != co)
        return -EPERM;
    mutex_pass(m);
    return 0;
}

weft_coro *weft__mutex_owner(const weft_mutex *m)
{
    return m->owner;
}

int weft_mutex_locked(const weft_mutex *m)
{
    if (!m || !weft__obj_mine(m->owner_thread))
        return -EINVAL;
    return m->owner != NULL;
}

/*
 * Lock m for co, not interruptible: weft_cond_wait() must return owning
 * the mutex whatever happens, and weft__block() refuses to block an ended
 * coroutine, so this blocks by hand (WAITING, no deadline, no
 * wait_cancel).  A raise or an end still wakes it (weft__wake() unlinks
 * it from the queue): it queues again in its place (by ticket) and goes
 * on waiting.  Raised errors are kept for the next blocking call, the
 * most recent one winning, as for a raise into a running coroutine (an
 * end needs nothing: it is sticky).
 */
static void mutex_lock_nointr(weft_mutex *m, weft_coro *co)
{
    if (!m->owner) {
        m->owner = co;
        return;
    }
    /* Raised while ready to run, so newer than any wake-up error below. */
    int latest = co->pending_err;
    co->pending_err = 0;
    struct mwait w = {m, m->next_ticket++};
    for (;;) {
        mutex_enqueue(m, co, &w);
        (void)weft__block_nointr(m->sched);
        if (co->wake_result < 0 && co->wake_result != -ECANCELED)
            latest = co->wake_result; /* interrupted by a raise */
        if (co->pending_err) {        /* raised after that, while ready */
            latest = co->pending_err;
            co->pending_err = 0;
        }
        if (m->owner == co)
            break;
        if (!m->owner) { /* unlocked meanwhile: nobody queues */
            m->owner = co;
            break;
        }
    }
    if (latest)
        co->pending_err = latest;
}

/* ======================================================================
 * Condition variable
 * ====================================================================== */

struct weft_cond {
    weft_sched *sched;
    const void *owner;
    struct weft__list waiters;
};

int weft_cond_new(weft_sched *s, weft_cond **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    s = sched_of(s);
    if (!s)
        return -EINVAL;
    weft_cond *c = weft__calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->sched = s;
    c->owner = s->owner;
    weft__list_init(&c->waiters);
    *out = c;
    return 0;
}

int weft_cond_free(weft_cond *c)
{
    if (!c || !weft__obj_mine(c->owner))
        return -EINVAL;
    if (!weft__list_empty(&c->waiters))
        return -EBUSY;
    weft__free(c);
    return 0;
}

int weft_cond_wait(weft_cond *c, weft_mutex *m, int64_t deadline)
{
    if (!c || !m || !weft__obj_mine(c->owner) ||
        !weft__obj_mine(m->owner_thread) || c->sched != m->sched)
        return -EINVAL;
    weft_coro *co;
    int r = weft__wait_check(c->sched, deadline, &co);
    if (r < 0)
        return r; /* m still held: nothing happened */
    if (m->owner != co)
        return -EPERM;
    /* Queue on c before giving m away: nothing runs in between (giving
     * m only makes its next owner ready), so no signal can be missed. */
    weft__list_push_back(&c->waiters, &co->link);
    co->wait_obj = c;
    co->wait_kind = WEFT__WAIT_COND;
    mutex_pass(m);
    r = weft__block(c->sched, deadline);
    mutex_lock_nointr(m, co);
    return r;
}

int weft_cond_signal(weft_cond *c)
{
    if (!c || !weft__obj_mine(c->owner))
        return -EINVAL;
    weft_coro *co = weft__waitq_pop(&c->waiters);
    if (!co)
        return 0;
    weft__wake(co, 0);
    return 1;
}

int weft_cond_broadcast(weft_cond *c)
{
    if (!c || !weft__obj_mine(c->owner))
        return -EINVAL;
    return weft__waitq_wake_all(&c->waiters, 0);
}

/* ======================================================================
 * Counting semaphore
 * ====================================================================== */

struct weft_sem {
    weft_sched *sched;
    const void *owner;
    struct weft__list waiters;
    int64_t count;
};

int weft_sem_new(weft_sched *s, int64_t value, weft_sem **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (value < 0)
        return -EINVAL;
    s = sched_of(s);
    if (!s)
        return -EINVAL;
    weft_sem *sem = weft__calloc(1, sizeof *sem);
    if (!sem)
        return -ENOMEM;
    sem->sched = s;
    sem->owner = s->owner;
    sem->count = value;
    weft__list_init(&sem->waiters);
    *out = sem;
    return 0;
}

int weft_sem_free(weft_sem *sem)
{
    if (!sem || !weft__obj_mine(sem->owner))
        return -EINVAL;
    if (!weft__list_empty(&sem->waiters))
        return -EBUSY;
    weft__free(sem);
    return 0;
}

int weft_sem_acquire(weft_sem *sem, int64_t deadline)
{
    if (!sem || !weft__obj_mine(sem->owner))
        return -EINVAL;
    weft_coro *co;
    int r = weft__wait_check(sem->sched, deadline, &co);
    if (r < 0)
        return r;
    if (sem->count > 0) {
        sem->count--;
        return 0;
    }
    /* 0 only by weft_sem_release(), which handed us its permit. */
    co->wait_kind = WEFT__WAIT_SEM;
    return weft__wait_on(sem->sched, co, &sem->waiters, sem, deadline);
}

int weft_sem_try_acquire(weft_sem *sem)
{
    if (!sem || !weft__obj_mine(sem->owner))
        return -EINVAL;
    if (sem->count == 0)
        return -EAGAIN;
    sem->count--;
    return 0;
}

int weft_sem_release(weft_sem *sem)
{
    if (!sem || !weft__obj_mine(sem->owner))
        return -EINVAL;
    weft_coro *co = weft__waitq_pop(&sem->waiters);
    if (co) {
        weft__wake(co, 0);
        return 0;
    }
    if (sem->count == INT64_MAX)
        return -EOVERFLOW;
    sem->count++;
    return 0;
}

int64_t weft_sem_value(const weft_sem *sem)
{
    if (!sem || !weft__obj_mine(sem->owner))
        return -EINVAL;
    return sem->count;
}

/* ======================================================================
 * Wait group
 * ====================================================================== */

struct weft_wg {
    weft_sched *sched;
    const void *owner;
    struct weft__list waiters;
    int64_t count;
};

int weft_wg_new(weft_sched *s, weft_wg **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    s = sched_of(s);
    if (!s)
        return -EINVAL;
    weft_wg *wg = weft__calloc(1, sizeof *wg);
    if (!wg)
        return -ENOMEM;
    wg->sched = s;
    wg->owner = s->owner;
    weft__list_init(&wg->waiters);
    *out = wg;
    return 0;
}

int weft_wg_free(weft_wg *wg)
{
    if (!wg || !weft__obj_mine(wg->owner))
        return -EINVAL;
    if (!weft__list_empty(&wg->waiters))
        return -EBUSY;
    weft__free(wg);
    return 0;
}

int weft_wg_add(weft_wg *wg, int64_t delta)
{
    if (!wg || !weft__obj_mine(wg->owner))
        return -EINVAL;
    if (delta > 0 && wg->count > INT64_MAX - delta)
        return -EOVERFLOW;
    if (delta < 0 && wg->count + delta < 0) /* count >= 0: no overflow */
        return -EINVAL;
    wg->count += delta;
    if (wg->count == 0)
        (void)weft__waitq_wake_all(&wg->waiters, 0);
    return 0;
}

int weft_wg_done(weft_wg *wg)
{
    return weft_wg_add(wg, -1);
}

int weft_wg_wait(weft_wg *wg, int64_t deadline)
{
    if (!wg || !weft__obj_mine(wg->owner))
        return -EINVAL;
    weft_coro *co;
    int r = weft__wait_check(wg->sched, deadline, &co);
    if (r < 0)
        return r;
    if (wg->count == 0)
        return 0;
    co->wait_kind = WEFT__WAIT_WG;
    return weft__wait_on(wg->sched, co, &wg->waiters, wg, deadline);
}

int64_t weft_wg_count(const weft_wg *wg)
{
    if (!wg || !weft__obj_mine(wg->owner))
        return -EINVAL;
    return wg->count;
}
