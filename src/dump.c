/*
 * dump.c - weft_dump(): the state of a scheduler in words, for people.
 *
 * Read-only: it walks the list of coroutine records (s->all, in spawn
 * order) and reads what each blocking primitive recorded when it started
 * to wait (co->wait_kind and co->wait_obj; see enum weft__wait_kind in
 * internal.h).  tools/weft-gdb.py prints the same lines from outside the
 * process; keep the two in step.
 *
 * Example (docs/reliability.md documents each detail):
 *
 *   weft: scheduler 0x5581..: coroutines 3 (alive 3, ready 0), timers 0 (callback 0), I/O waiters 0; manual clock, now 0
 *     #4 'a' waiting, prio normal, stack 65536: mutex 0x5581.. (held by #5 'b')
 *     #5 'b' waiting, prio normal, stack 65536: mutex 0x5581.. (held by #4 'a')
 *     #6 'c' waiting, prio normal, stack 65536: joining #4 'a'
 *   weft: deadlock: 3 coroutines wait and nothing can wake them (no coroutine ready, no timer, no I/O)
 *     #4 'a': mutex 0x5581.. (held by #5 'b')
 *     ...
 */
#include <stdio.h>

#include "internal.h"

static const char *const state_names[] = {"new", "ready", "running",
                                          "waiting", "done"};
static const char *const prio_names[] = {"high", "normal", "low", "idle"};

static const char *state_name(const weft_coro *co)
{
    return co->state <= WEFT__DONE ? state_names[co->state] : "?";
}

/* " 'name'" or "" */
static void put_name(FILE *out, const weft_coro *co)
{
    if (co->name[0])
        fprintf(out, " '%s'", co->name);
}

static const char *events_name(uint32_t ev)
{
    ev &= WEFT_IO_READ | WEFT_IO_WRITE;
    if (ev == (WEFT_IO_READ | WEFT_IO_WRITE))
        return "read+write";
    return ev == WEFT_IO_WRITE ? "write" : "read";
}

const char *weft__op_name(int kind)
{
    switch (kind) {
    case WEFT__OP_READ: return "read";
    case WEFT__OP_WRITE: return "write";
    case WEFT__OP_READV: return "readv";
    case WEFT__OP_WRITEV: return "writev";
    case WEFT__OP_RECV: return "recv";
    case WEFT__OP_SEND: return "send";
    case WEFT__OP_ACCEPT: return "accept";
    case WEFT__OP_CONNECT: return "connect";
    case WEFT__OP_SENDMSG: return "sendmsg";
    default: return "operation";
    }
}

/* The object at the start of a wait slot (see enum weft__wait_kind). */
static const void *slot_object(const void *slot)
{
    return slot ? *(const void *const *)slot : NULL;
}

/* What a WAITING coroutine waits on, e.g. "fd 7 for read". */
static void put_wait(FILE *out, weft_sched *s, const weft_coro *co)
{
    enum weft__wait_kind kind = (enum weft__wait_kind)co->wait_kind;
    const void *obj = co->wait_obj;
    int timed = co->timer.idx != WEFT__NOT_IN_HEAP;
    switch (kind) {
    case WEFT__WAIT_SLEEP:
        if (timed) {
            int64_t left = co->timer.due - weft__clock_now(s);
            fprintf(out, "sleeping until %lld (in %lld ns)",
                    (long long)co->timer.due, (long long)(left > 0 ? left : 0));
        } else {
            fputs("sleeping", out);
        }
        return; /* the deadline is the sleep itself */
    case WEFT__WAIT_FD: {
        uint32_t ev = 0;
        int fd = obj ? weft__fdwait_info(obj, &ev) : -1;
        fprintf(out, "fd %d for %s", fd, events_name(ev));
        break;
    }
    case WEFT__WAIT_OP: {
        const struct weft__op *op = obj;
        if (op)
            fprintf(out, "I/O operation %s on fd %d",
                    weft__op_name(op->kind), op->fd);
        else
            fputs("completion of a cancelled I/O operation", out);
        break;
    }
    case WEFT__WAIT_JOIN: {
        const weft_coro *t = obj;
        fprintf(out, "joining #%llu", (unsigned long long)(t ? t->id : 0));
        if (t)
            put_name(out, t);
        break;
    }
    case WEFT__WAIT_EVENT:
        fprintf(out, "event %p", obj);
        break;
    case WEFT__WAIT_MUTEX: {
        const weft_mutex *m = slot_object(obj);
        const weft_coro *owner = m ? weft__mutex_owner(m) : NULL;
        fprintf(out, "mutex %p", (const void *)m);
        if (owner) {
            fprintf(out, " (held by #%llu", (unsigned long long)owner->id);
            put_name(out, owner);
            fputc(')', out);
        }
        break;
    }
    case WEFT__WAIT_COND:
        fprintf(out, "condition %p", obj);
        break;
    case WEFT__WAIT_SEM:
        fprintf(out, "semaphore %p", obj);
        break;
    case WEFT__WAIT_WG:
        fprintf(out, "wait group %p", obj);
        break;
    case WEFT__WAIT_FUTURE:
        fprintf(out, "future %p", slot_object(obj));
        break;
    case WEFT__WAIT_CHAN_SEND:
        fprintf(out, "channel %p (send)", slot_object(obj));
        break;
    case WEFT__WAIT_CHAN_RECV:
        fprintf(out, "channel %p (receive)", slot_object(obj));
        break;
    case WEFT__WAIT_NONE:
    case WEFT__WAIT_KINDS:
    default:
        fprintf(out, "something unrecorded %p", obj);
        break;
    }
    if (timed)
        fprintf(out, ", until %lld", (long long)co->timer.due);
}

/* The detail after "state, prio, stack": what it waits on, when it
 * starts, its status. */
static void put_detail(FILE *out, weft_sched *s, const weft_coro *co)
{
    switch (co->state) {
    case WEFT__NEW:
        if (co->timer.idx != WEFT__NOT_IN_HEAP)
            fprintf(out, ": starts at %lld", (long long)co->timer.due);
        break;
    case WEFT__WAITING:
        fputs(": ", out);
        put_wait(out, s, co);
        break;
    case WEFT__DONE:
        fprintf(out, ": status %d", co->status);
        if (co->status < 0)
            fprintf(out, " (%s)", weft_err_name(co->status));
        break;
    default:
        break;
    }
    if (co->state != WEFT__DONE) {
        if (co->flags & WEFT__F_ENDED)
            fputs(" [ended]", out);
        if (co->pending_err)
            fprintf(out, " [raised %s]", weft_err_name(co->pending_err));
    }
}

static int anything_ready(const weft_sched *s)
{
    if (!weft__list_empty(&s->batch))
        return 1;
    for (int i = 0; i < WEFT_PRIO_LEVELS; i++)
        if (!weft__list_empty(&s->runq[i]))
            return 1;
    return 0;
}

int weft_dump(weft_sched *s, FILE *out)
{
    s = weft__sched_arg(s);
    if (!s || !out)
        return -EINVAL;
    int64_t records = 0;
    uint32_t ready = 0;
    for (const struct weft__list *l = s->all.next; l != &s->all; l = l->next) {
        const weft_coro *co = weft__container_of(l, weft_coro, all);
        records++;
        ready += co->state == WEFT__READY ||
                 (co->state == WEFT__NEW && co->timer.idx == WEFT__NOT_IN_HEAP);
    }
    fprintf(out,
            "weft: scheduler %p: coroutines %lld (alive %lld, ready %u), "
            "timers %u (callback %lld), I/O waiters %u; %s clock, now %lld\n",
            (void *)s, (long long)records, (long long)s->alive, ready,
            s->heap.n, (long long)s->active_timers, s->io_waiters,
            s->clock == WEFT_CLOCK_MANUAL ? "manual" : "monotonic",
            (long long)weft__clock_now(s));
    for (const struct weft__list *l = s->all.next; l != &s->all; l = l->next) {
        const weft_coro *co = weft__container_of(l, weft_coro, all);
        fprintf(out, "  #%llu", (unsigned long long)co->id);
        put_name(out, co);
        fprintf(out, " %s, prio %s, stack %zu", state_name(co),
                co->prio < WEFT_PRIO_LEVELS ? prio_names[co->prio] : "?",
                co->stack.size);
        put_detail(out, s, co);
        fputc('\n', out);
    }
    /* The condition under which weft_run() returns -EDEADLK. */
    int deadlocked = 0;
    if (s->alive > 0 && !s->current && !anything_ready(s) && s->heap.n == 0 &&
        s->io_waiters == 0) {
        fprintf(out,
                "weft: deadlock: %lld coroutine%s and nothing can wake %s "
                "(no coroutine ready, no timer, no I/O)\n",
                (long long)s->alive, s->alive == 1 ? " waits" : "s wait",
                s->alive == 1 ? "it" : "them");
        for (const struct weft__list *l = s->all.next; l != &s->all;
             l = l->next) {
            const weft_coro *co = weft__container_of(l, weft_coro, all);
            if (co->state != WEFT__WAITING)
                continue;
            deadlocked++;
            fprintf(out, "  #%llu", (unsigned long long)co->id);
            put_name(out, co);
            fputs(": ", out);
            put_wait(out, s, co);
            fputc('\n', out);
        }
    }
    if (ferror(out))
        return -EIO;
    return deadlocked;
}
