/*
 * internal.h - private declarations shared by the library's sources.
 *
 * Naming: weft__name for non-static internals, short names for statics.
 * Nothing here is part of the API; layouts may change at any time.
 */
#ifndef WEFT_INTERNAL_H
#define WEFT_INTERNAL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "weft.h"
#include "ctx/ctx.h"
#include "list.h"
#include "poll/backend.h"

#if defined(__GNUC__)
#define weft__likely(x) __builtin_expect(!!(x), 1)
#define weft__unlikely(x) __builtin_expect(!!(x), 0)
#else
#define weft__likely(x) (x)
#define weft__unlikely(x) (x)
#endif

/* Sanitizer detection (gcc defines __SANITIZE_*, clang __has_feature). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(WEFT_ASAN)
#define WEFT_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(WEFT_TSAN)
#define WEFT_TSAN 1
#endif

/* ----------------------------------------------------------------------
 * Allocation (every library allocation goes through these, so a test hook
 * can make the Nth one fail).
 * ---------------------------------------------------------------------- */
void *weft__malloc(size_t n);
void *weft__calloc(size_t n, size_t m);
void *weft__realloc(void *p, size_t n);
void weft__free(void *p);

/* ----------------------------------------------------------------------
 * Callback vectors: hooks and handlers.  Removal while the vector is being
 * iterated only marks the slot (fn = NULL); the slot is compacted away when
 * the outermost iteration ends, so callbacks may remove themselves or
 * others safely.
 * ---------------------------------------------------------------------- */
struct weft__cb {
    void (*fn)(void);
    void *arg;
};

struct weft__cbvec {
    struct weft__cb *v;
    uint32_t n, cap;
    uint32_t iterating; /* nesting depth of iterations in progress */
    uint32_t dead;      /* slots marked removed during iteration */
};

int weft__cbvec_add(struct weft__cbvec *cv, void (*fn)(void), void *arg);
int weft__cbvec_remove(struct weft__cbvec *cv, void (*fn)(void), void *arg);
void weft__cbvec_end_iter(struct weft__cbvec *cv);
void weft__cbvec_free(struct weft__cbvec *cv);
static inline uint32_t weft__cbvec_live(const struct weft__cbvec *cv)
{
    return cv->n - cv->dead;
}

/* ----------------------------------------------------------------------
 * Timer heap: a binary min-heap of node pointers ordered by (due, seq);
 * seq is a per-scheduler insertion counter, so equal deadlines fire in
 * insertion order.  Insert and remove are O(log n); the array grows by
 * doubling, so a steady state allocates nothing.
 * ---------------------------------------------------------------------- */
struct weft__tnode;
typedef void (*weft__tfire)(weft_sched *s, struct weft__tnode *n);

#define WEFT__NOT_IN_HEAP UINT32_MAX

struct weft__tnode {
    int64_t due;
    uint64_t seq;
    uint32_t idx; /* position in the heap, WEFT__NOT_IN_HEAP when out */
    weft__tfire fire;
};

/* A heap entry carries a copy of its node's key, so that sifting compares
 * entries of one array instead of chasing a pointer (a cache miss, often
 * on another coroutine's stack page) at every level. */
struct weft__hent {
    int64_t due;
    uint64_t seq;
    struct weft__tnode *t;
};

struct weft__heap {
    struct weft__hent *a;
    uint32_t n, cap;
};

static inline void weft__tnode_init(struct weft__tnode *t, weft__tfire fire)
{
    t->due = 0;
    t->seq = 0;
    t->idx = WEFT__NOT_IN_HEAP;
    t->fire = fire;
}

int weft__heap_reserve(struct weft__heap *h, uint32_t extra);
/* Insert with due; fails only with -ENOMEM when the array cannot grow. */
int weft__timer_add(weft_sched *s, struct weft__tnode *t, int64_t due);
void weft__timer_del(weft_sched *s, struct weft__tnode *t);
void weft__heap_free(struct weft__heap *h);
/* Fire every timer due at or before now; returns how many fired. */
int weft__timers_run(weft_sched *s, int64_t now);

/* ----------------------------------------------------------------------
 * Stacks (stack.c)
 * ---------------------------------------------------------------------- */
#define WEFT__STACK_GUARDED 1u /* a PROT_NONE page lies below lo */
#define WEFT__STACK_SLAB 2u    /* carved from a slab; never unmapped alone */
#define WEFT__STACK_COLD 4u    /* pages were given back (MADV_DONTNEED) */

/* Bytes at the bottom of an unguarded stack that must stay zero. */
#define WEFT__CANARY_BYTES 64

struct weft__stack {
    char *lo;      /* lowest usable byte */
    size_t size;   /* usable bytes, a multiple of the page size */
    unsigned flags;
    unsigned vg_id; /* Valgrind stack id (0 when not registered) */
};

struct weft__stack_class; /* per-size free lists, private to stack.c */

struct weft__stackpool {
    struct weft__stack_class *classes;
    uint32_t nclasses;
    int guard;          /* enum weft_guard */
    size_t cache;       /* warm stacks kept per class */
    struct weft__slab *slabs;
};

void weft__stackpool_init(struct weft__stackpool *p, int guard, size_t cache);
void weft__stackpool_destroy(struct weft__stackpool *p);
/* size must already be validated and page-rounded. */
int weft__stack_alloc(struct weft__stackpool *p, size_t size,
                      struct weft__stack *out);
void weft__stack_free(struct weft__stackpool *p, const struct weft__stack *st);
/* Give back the pages of at most max warm stacks beyond the cache (slab
 * stacks freed since the last trim); returns how many. */
size_t weft__stack_trim(struct weft__stackpool *p, size_t max);
/* How many warm stacks are beyond the cache (what a trim would take). */
size_t weft__stack_surplus(const struct weft__stackpool *p);
size_t weft__page_size(void);
/* The stack sizes a caller may ask for (weft_sched_opts, weft_spawn_opts,
 * the doorbell's run stack): 0 means "the default"; otherwise 16 KiB to
 * 1 GiB, rounded up to whole pages by weft__stack_round(). */
#define WEFT__STACK_MIN ((size_t)16 * 1024)
#define WEFT__STACK_MAX ((size_t)1 << 30)
static inline int weft__stack_size_ok(size_t n)
{
    return n == 0 || (n >= WEFT__STACK_MIN && n <= WEFT__STACK_MAX);
}
static inline size_t weft__stack_round(size_t n)
{
    size_t page = weft__page_size();
    return (n + page - 1) / page * page;
}
/* Abort with a report if an unguarded stack's canary was overwritten. */
void weft__stack_canary_fail(const weft_coro *co);
static inline int weft__stack_canary_ok(const struct weft__stack *st)
{
    const uint64_t *w = (const uint64_t *)(const void *)st->lo;
    uint64_t acc = 0;
    for (int i = 0; i < WEFT__CANARY_BYTES / 8; i++)
        acc |= w[i];
    return acc == 0;
}

/* ----------------------------------------------------------------------
 * Coroutines
 * ---------------------------------------------------------------------- */
enum weft__state {
    WEFT__NEW = 0,  /* spawned, has never run */
    WEFT__READY,    /* in a run queue */
    WEFT__RUNNING,  /* the current coroutine */
    WEFT__WAITING,  /* blocked in weft__block() */
    WEFT__DONE      /* finished; a zombie until joined/reaped/detached */
};

/*
 * What a WAITING coroutine waits on (co->wait_kind), for weft_dump() and
 * tools/weft-gdb.py (which knows these values by name: keep them in sync).
 * Each wait stores its kind once, right before it blocks; weft__block()
 * clears it with wait_obj.  A kind whose slot is "a struct starting with
 * the object pointer" lets the dump name the object without knowing the
 * slot's private layout.
 */
enum weft__wait_kind {
    WEFT__WAIT_NONE = 0,   /* not recorded (a wait that sets no kind) */
    WEFT__WAIT_SLEEP,      /* weft_sleep_*: the deadline is co->timer */
    WEFT__WAIT_FD,         /* weft_fd_wait(): wait_obj is io.c's slot
                              (weft__fdwait_info() reads it) */
    WEFT__WAIT_OP,         /* a proactor operation: struct weft__op *
                              (NULL while a cancelled one completes) */
    WEFT__WAIT_JOIN,       /* weft_join*(): the weft_coro joined */
    WEFT__WAIT_EVENT,      /* the weft_event */
    WEFT__WAIT_MUTEX,      /* slot starting with the weft_mutex * */
    WEFT__WAIT_COND,       /* the weft_cond */
    WEFT__WAIT_SEM,        /* the weft_sem */
    WEFT__WAIT_WG,         /* the weft_wg */
    WEFT__WAIT_FUTURE,     /* slot starting with the weft_future * */
    WEFT__WAIT_CHAN_SEND,  /* slot starting with the weft_chan * */
    WEFT__WAIT_CHAN_RECV,  /* slot starting with the weft_chan * */
    WEFT__WAIT_KINDS
};

#define WEFT__F_DETACHED 0x01u
#define WEFT__F_ENDED 0x02u    /* weft_end() called: blocking calls fail */
#define WEFT__F_STARTED 0x04u  /* has run at least once */
#define WEFT__F_FIRST 0x08u    /* spawn_at with first: jump the queue */

/* Lazily allocated per-coroutine callback lists. */
struct weft__coro_ext {
    struct weft__cbvec in_hooks, out_hooks, err_handlers;
};

/* What the tracer (trace.c) knows of a coroutine; valid only while gen
 * is the generation of the scheduler's running trace (a record is zeroed
 * at spawn, and each weft_trace_start() takes a new generation). */
struct weft__trace_co {
    uint32_t gen;       /* trace generation that knows this coroutine */
    uint32_t name_hash; /* hash of the name last written as thread_name */
    int64_t t0;         /* start of the open span */
    uint64_t obj;       /* what an open wait span waits on (address or id) */
    int32_t fd;         /* fd of an fd or I/O operation wait */
    uint8_t span;       /* open span: none, run, wait, ready (trace.c) */
    uint8_t kind;       /* wait kind, or why it became ready */
    uint8_t detail;     /* fd events or operation kind */
    uint8_t timed;      /* the wait had a deadline (in timer.due) */
};

struct weft_coro {
    weft__ctx ctx;
    weft_sched *sched;
    struct weft__list link;   /* run queue, or the wait list it sleeps on */
    struct weft__tnode timer; /* deadline of the current wait, or start */
    uint8_t state;            /* enum weft__state */
    uint8_t prio;
    uint16_t flags;
    int wake_result;          /* what the current blocking call returns */
    int pending_err;          /* raised while not blocked; 0 if none */
    int status;               /* exit status once DONE */
    weft_fn fn;
    void *arg;
    void *data;
    uint64_t id;
    weft_coro *joiner;
    struct weft__coro_ext *ext;
    struct weft__list raises; /* pending weft_raise_at() timers */
    struct weft__list all;    /* in sched->all while not released */
    /* Called when a wait is interrupted (timeout, raise, end) so the
     * primitive can forget the waiter; NULL for plain list waits. */
    void (*wait_cancel)(weft_coro *co);
    void *wait_obj;           /* what it waits on, for dumps */
    uint8_t wait_kind;        /* enum weft__wait_kind: how to read
                                 wait_obj; meaningful only while WAITING */
    struct weft__trace_co trace; /* tracer's state (trace.c) */
    struct weft__stack stack;
#if defined(WEFT_ASAN)
    void *asan_fake;
#endif
#if defined(WEFT_TSAN)
    void *tsan_fiber;
#endif
    char name[WEFT_NAME_MAX + 1];
};

/* ----------------------------------------------------------------------
 * Scheduler
 * ---------------------------------------------------------------------- */
struct weft__watchdog; /* watchdog.c */

struct weft_sched {
    weft__ctx ctx;            /* the loop's own context (caller's stack) */
    weft_coro *current;       /* running coroutine, NULL in the loop */
    struct weft__watchdog *wd; /* non-NULL while the watchdog runs: every
                                  switch then records who runs (one
                                  predictable branch when NULL) */
    struct weft__list batch;  /* coroutines of the turn in progress */
    struct weft__list runq[WEFT_PRIO_LEVELS]; /* ready for the next turn */
    uint32_t nready;          /* coroutines in batch + runq */
    struct weft__heap heap;
    struct weft__list all;    /* every coroutine not yet released */
    int64_t alive;            /* coroutines not DONE */
    int64_t active_timers;    /* active callback timers */
    struct weft__list timers; /* every weft_timer of this scheduler */
    uint64_t timer_seq;
    int clock;
    int64_t manual_now;
    int64_t unix_base;        /* manual clock: Unix ns at time 0 */
    weft_coro *to_release;    /* finished detached coroutine whose stack
                                 is freed after the switch away from it */
    uint8_t running;          /* inside weft_run/weft_run_once */
    uint8_t stop_req;
    uint8_t inline_ok;        /* weft_run may start turns inline */
    uint32_t inline_turns;    /* turns started inline since the loop ran */
    uint32_t in_hook;         /* hooks/handlers in progress: no blocking */
    struct weft__cbvec hooks;
    struct weft__cbvec err_handlers;
    struct weft__stackpool stacks;
    size_t default_stack;
    struct weft__poller poller;
    struct weft__fdrec *fds;  /* indexed by fd (io.c) */
    struct weft__list ios;    /* every weft_io of this scheduler */
    int nfds;
    uint32_t io_waiters;      /* coroutines in fd waits + active watchers */
    uint8_t eintr;            /* report EINTR to fd waiters */
    int64_t io_timeout;       /* default I/O operation timeout, 0: none */
    int first_failure;        /* first failure status since the dispatch
                                 began (weft_dispatch_once), 0: none */
    const void *owner;        /* identifies the owning thread */
    weft_watchdog_fn wd_fn;   /* watchdog reports (NULL: stderr) */
    void *wd_arg;
    struct weft__trace *trace; /* non-NULL while traced (trace.c) */
    uint32_t trace_gen;       /* generation of the latest trace */
#if defined(WEFT_ASAN)
    const void *asan_main_bottom;
    size_t asan_main_size;
    void *asan_main_fake;
#endif
#if defined(WEFT_TSAN)
    void *tsan_main;
#endif
};

/* Per-thread state. */
struct weft__tls {
    weft_sched *running;      /* the scheduler inside weft_run, if any */
    weft_coro *current;       /* the running coroutine, if any */
    weft_sched *dflt;         /* this thread's default scheduler */
};
extern _Thread_local struct weft__tls weft__tls;

/* Resolve a NULL scheduler argument and check the owner thread.
 * Returns NULL when s belongs to another thread or cannot be created. */
weft_sched *weft__sched_arg(weft_sched *s);
static inline int weft__owned(const weft_sched *s)
{
    return s->owner == (const void *)&weft__tls;
}

int64_t weft__clock_now(weft_sched *s);
int64_t weft__realtime_ns(void);

/* Make co ready (append to its priority's run queue, or at the head of the
 * current turn when first is set).  co must not be queued. */
void weft__ready(weft_sched *s, weft_coro *co, int first);

/*
 * Block the current coroutine until weft__wake() or the deadline (-1:
 * none).  Returns the wake result: 0 (or what the waker passed),
 * -ETIMEDOUT, a raised error or -ECANCELED.  Before blocking it fails at
 * once with -ECANCELED when ended, a pending raised error, or -EINVAL when
 * not in a coroutine or inside a hook.  On any failure co->link has been
 * unlinked (whatever wait list it was on) and wait_cancel called.
 */
int weft__block(weft_sched *s, int64_t deadline);
/* Block the current coroutine until weft__wake(): no deadline, and no
 * check for an end or a pending raise (they still wake it, with their
 * error).  For waits that must complete, such as weft_cond_wait()
 * re-acquiring its mutex.  Returns the wake result. */
int weft__block_nointr(weft_sched *s);
/* Check whether the current coroutine may block; 0 if yes. */
int weft__block_check(weft_sched *s, weft_coro **cur);
/* Wake co if it is WAITING; its blocking call returns result. */
void weft__wake(weft_coro *co, int result);

/* Pick the next coroutine of the turn and switch to it, or to the loop. */
void weft__schedule(weft_sched *s);

/* Free a coroutine record and its stack (never the current one). */
void weft__coro_release(weft_sched *s, weft_coro *co);
/* Run the failure handlers; returns the number called. */
int weft__coro_report(weft_coro *co, int status);
/* Called on the coroutine's own stack when its body returns. */
void weft__coro_exit(weft_coro *co, int status);
/* Create a coroutine record on a fresh stack (not queued).  extra bytes
 * are reserved below the record, returned through *extra if non-NULL. */
int weft__coro_create(weft_sched *s, weft_fn fn, void *arg,
                      const struct weft_spawn_opts *opts, size_t extra,
                      void **extra_out, weft_coro **out);

/* I/O (io.c): backend choice and the loop's poll step. */
int weft__io_init(weft_sched *s, int backend);
void weft__io_fini(weft_sched *s);
/* Poll for up to timeout_ns (0: no waiting; -1: no limit) and wake what
 * is ready; returns the number of fds reported or a negative errno. */
int weft__io_poll(weft_sched *s, int64_t timeout_ns);
/* Whether the backend is a proactor (has submit/cancel). */
int weft__io_proactor(const weft_sched *s);
/* Submit op (fields set by the caller) and block the current coroutine
 * until it completes or the deadline passes (-1: none).  Returns the
 * operation's result (>= 0 or its negative errno), or -ETIMEDOUT, a raised
 * error or -ECANCELED when interrupted before it completed.  An operation
 * that completed despite the interruption reports its result, so no data
 * is lost; a raised error is then kept for the next blocking call. */
int weft__io_op(weft_sched *s, struct weft__op *op, int64_t deadline);
/* The name of an enum weft__op_kind ("recv", "accept" ...), "operation"
 * for anything else: for weft_dump() and the tracer. */
const char *weft__op_name(int kind);

/* What the coroutine I/O calls remember of an fd between calls (fdio.c):
 * WEFT__HINT_* bits, 0 for an fd weft knows nothing of.  Only hints: a
 * wrong one costs a wait, never a result. */
#define WEFT__HINT_DRAINED 1u /* the last read emptied it */
#define WEFT__HINT_STREAM 2u  /* a stream socket (SO_TYPE checked) */
#define WEFT__HINT_OTHER 4u   /* a socket of another type */
unsigned weft__fd_hints(weft_sched *s, int fd);
/* Set the bits of mask to those of value; nothing if out of memory. */
void weft__fd_set_hints(weft_sched *s, int fd, unsigned mask, unsigned value);

/* For weft_dump(): the fd an fd wait's slot (co->wait_obj of a
 * WEFT__WAIT_FD wait) waits on, and its events (io.c). */
int weft__fdwait_info(const void *slot, uint32_t *events);
/* For weft_dump(): the coroutine holding a mutex, or NULL (sync.c). */
weft_coro *weft__mutex_owner(const weft_mutex *m);

/* Watchdog (watchdog.c).  weft__wd_switch() records that `to` (NULL: the
 * loop) runs from now on; called at every switch while s->wd is set. */
void weft__wd_switch(struct weft__watchdog *wd, const weft_coro *to);
int weft__wd_configure(weft_sched *s, int64_t threshold_ns);
void weft__wd_stop(weft_sched *s);

/* Tracer (trace.c).  weft__trace_ready() is called by weft__ready()
 * before co becomes ready, while s->trace is set; weft__trace_free_sched()
 * by weft_sched_free() to finish a trace still running. */
struct weft__trace;
void weft__trace_ready(struct weft__trace *t, weft_coro *co);
void weft__trace_free_sched(weft_sched *s);

/* Stack-overflow reporting (guard.c). */
void weft__guard_thread_init(void);
void weft__guard_install(void);

#endif /* WEFT_INTERNAL_H */
