/*
 * trace.c - the tracer: a scheduler's switches, wake-ups and spawns
 * written as Chrome/Perfetto trace-event JSON (include/weft/trace.h).
 *
 * Where the events come from:
 *   - a global switch hook (on_switch) ends the run span of the coroutine
 *     left and opens what follows it: a wait span (it blocked: its
 *     wait_kind and wait_obj say on what), a ready span (it yielded), or
 *     nothing (it finished); and it opens the run span of the coroutine
 *     entered.  NULL is the loop, which gets its own track (tid 0).
 *   - weft__ready() calls weft__trace_ready() while s->trace is set: a
 *     wait span ends there (the wake-up, with its result) and a ready span
 *     begins; a coroutine first seen there (just spawned) gets its track.
 * The per-coroutine state lives in the record (struct weft__trace_co);
 * a generation number tells a record seen by this trace from one that
 * was not (new, or seen by an earlier trace).  Spans are "X" (complete)
 * events written when they end, so the file holds no unmatched begin;
 * a span still open when a coroutine record is freed (a coroutine ended
 * before it first ran) is simply not written.
 *
 * Output goes through one buffer allocated at start; a write error is
 * kept, later output is dropped, and weft_trace_stop() reports it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_BUFFER ((size_t)64 * 1024)
#define MIN_BUFFER ((size_t)4096)
#define MAX_BUFFER ((size_t)1 << 30)
#define MARK_MAX 63

/* Open span of a coroutine (struct weft__trace_co.span). */
enum { SPAN_NONE = 0, SPAN_RUN, SPAN_WAIT, SPAN_READY };

/* Why a ready span began (struct weft__trace_co.kind while SPAN_READY). */
enum { READY_SPAWN = 1, READY_WAKE, READY_YIELD, READY_START };

struct weft__trace {
    weft_sched *s;
    FILE *f;
    int own;          /* opened by weft_trace_start(): closed at stop */
    int err;          /* first write error (negative errno), 0 if none */
    uint32_t gen;
    int any;          /* an event was written: the next needs a comma */
    int loop_open;    /* the loop's span is open since loop_t0 */
    int64_t loop_t0;
    int64_t pid;
    size_t len, cap;
    char pname[WEFT_NAME_MAX + 1];
    char buf[];
};

/* ----------------------------------------------------------------------
 * Output
 * ---------------------------------------------------------------------- */

static void flush(struct weft__trace *t)
{
    if (t->len && !t->err) {
        errno = 0;
        if (fwrite(t->buf, 1, t->len, t->f) != t->len)
            t->err = errno ? -errno : -EIO;
    }
    t->len = 0;
}

static void put(struct weft__trace *t, const char *p, size_t n)
{
    while (n) {
        if (t->len == t->cap)
            flush(t);
        size_t k = t->cap - t->len < n ? t->cap - t->len : n;
        memcpy(t->buf + t->len, p, k);
        t->len += k;
        p += k;
        n -= k;
    }
}

static void puts_(struct weft__trace *t, const char *p)
{
    put(t, p, strlen(p));
}

static void put_u64(struct weft__trace *t, uint64_t v)
{
    char d[24];
    size_t i = sizeof d;
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(t, d + i, sizeof d - i);
}

static void put_i64(struct weft__trace *t, int64_t v)
{
    if (v < 0) {
        put(t, "-", 1);
        put_u64(t, (uint64_t)0 - (uint64_t)v);
    } else {
        put_u64(t, (uint64_t)v);
    }
}

/* ns as µs with three decimals: 1234567 -> 1234.567 */
static void put_us(struct weft__trace *t, int64_t ns)
{
    uint64_t a = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    char frac[5] = {'.', 0, 0, 0, 0};
    if (ns < 0)
        put(t, "-", 1);
    put_u64(t, a / 1000);
    frac[1] = (char)('0' + a % 1000 / 100);
    frac[2] = (char)('0' + a % 100 / 10);
    frac[3] = (char)('0' + a % 10);
    put(t, frac, 4);
}

/* Length of the valid UTF-8 sequence at p (n bytes available), 0 if
 * the bytes there are not one (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

/* A JSON string: quotes, backslashes and control characters escaped,
 * bytes that are not UTF-8 replaced by U+FFFD. */
static void put_jstr(struct weft__trace *t, const char *str)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)str;
    size_t n = strlen(str);
    put(t, "\"", 1);
    while (n) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(t, e, 2);
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(t, e, 6);
        } else if (c < 0x80) {
            size_t k = 1; /* a run of characters written as they are */
            while (k < n && p[k] >= 0x20 && p[k] < 0x80 && p[k] != '"' &&
                   p[k] != '\\')
                k++;
            put(t, (const char *)p, k);
            p += k;
            n -= k;
            continue;
        } else {
            size_t k = utf8_len(p, n);
            if (k) {
                put(t, (const char *)p, k);
                p += k;
                n -= k;
                continue;
            }
            puts_(t, "\\ufffd");
        }
        p++;
        n--;
    }
    put(t, "\"", 1);
}

/* Start an event: the separator and the fields every event has. */
static void event(struct weft__trace *t, const char *ph, uint64_t tid)
{
    puts_(t, t->any ? ",\n{\"ph\":\"" : "\n{\"ph\":\"");
    t->any = 1;
    puts_(t, ph);
    puts_(t, "\",\"pid\":");
    put_i64(t, t->pid);
    puts_(t, ",\"tid\":");
    put_u64(t, tid);
}

/* A metadata event: {"ph":"M",...,"name":what,"args":{"name":value}}. */
static void meta(struct weft__trace *t, uint64_t tid, const char *what,
                 const char *value)
{
    event(t, "M", tid);
    puts_(t, ",\"name\":\"");
    puts_(t, what);
    puts_(t, "\",\"args\":{\"name\":");
    put_jstr(t, value);
    puts_(t, "}}");
}

static void sort_index(struct weft__trace *t, uint64_t tid, int64_t idx)
{
    event(t, "M", tid);
    puts_(t, ",\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":");
    put_i64(t, idx);
    puts_(t, "}}");
}

/* Begin a complete event; the caller adds args (if any) and "}". */
static void span(struct weft__trace *t, uint64_t tid, const char *name,
                 const char *cat, const char *cname, int64_t t0, int64_t t1)
{
    event(t, "X", tid);
    puts_(t, ",\"name\":");
    put_jstr(t, name);
    puts_(t, ",\"cat\":\"");
    puts_(t, cat);
    puts_(t, "\",\"cname\":\"");
    puts_(t, cname);
    puts_(t, "\",\"ts\":");
    put_us(t, t0);
    puts_(t, ",\"dur\":");
    put_us(t, t1 > t0 ? t1 - t0 : 0);
}

/* ----------------------------------------------------------------------
 * Coroutine tracks
 * ---------------------------------------------------------------------- */

static uint32_t name_hash(const char *p)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    while (*p)
        h = (h ^ (unsigned char)*p++) * 16777619u;
    return h;
}

/* The coroutine's track and run-span name: its name, else "coroutine #id". */
static const char *display_name(const weft_coro *co, char *tmp, size_t n)
{
    static const char prefix[] = "coroutine #";
    char d[24];
    size_t i = sizeof d;
    uint64_t v = co->id;
    if (co->name[0])
        return co->name;
    do { /* not snprintf: this runs at every switch of unnamed coroutines */
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (n < sizeof prefix + (sizeof d - i))
        return "coroutine";
    memcpy(tmp, prefix, sizeof prefix - 1);
    memcpy(tmp + sizeof prefix - 1, d + i, sizeof d - i);
    tmp[sizeof prefix - 1 + sizeof d - i] = 0;
    return tmp;
}

static void thread_name(struct weft__trace *t, weft_coro *co)
{
    char tmp[40];
    co->trace.name_hash = name_hash(co->name);
    meta(t, co->id, "thread_name", display_name(co, tmp, sizeof tmp));
}

/* Make co known to this trace (a track named after it), and write its
 * name again if it changed since. */
static void know(struct weft__trace *t, weft_coro *co)
{
    if (co->trace.gen != t->gen) {
        memset(&co->trace, 0, sizeof co->trace);
        co->trace.gen = t->gen;
        thread_name(t, co);
        sort_index(t, co->id, (int64_t)(co->id & INT64_MAX));
    } else if (co->trace.name_hash != name_hash(co->name)) {
        thread_name(t, co);
    }
}

static void open_span(weft_coro *co, int kind, int what, int64_t now)
{
    co->trace.span = (uint8_t)kind;
    co->trace.kind = (uint8_t)what;
    co->trace.t0 = now;
}

/* The object at the start of a wait slot (see enum weft__wait_kind). */
static const void *slot_object(const void *slot)
{
    return slot ? *(const void *const *)slot : NULL;
}

/* Record what a coroutine that is WAITING waits on, and open its span. */
static void open_wait(weft_coro *co, int64_t now)
{
    struct weft__trace_co *tc = &co->trace;
    const void *obj = co->wait_obj;
    open_span(co, SPAN_WAIT, co->wait_kind, now);
    tc->obj = 0;
    tc->fd = -1;
    tc->detail = 0;
    tc->timed = co->timer.idx != WEFT__NOT_IN_HEAP;
    switch (co->wait_kind) {
    case WEFT__WAIT_FD:
        if (obj) {
            uint32_t ev = 0;
            tc->fd = weft__fdwait_info(obj, &ev);
            tc->detail = (uint8_t)ev;
        }
        break;
    case WEFT__WAIT_OP:
        if (obj) {
            const struct weft__op *op = obj;
            tc->fd = op->fd;
            tc->detail = op->kind;
        }
        break;
    case WEFT__WAIT_JOIN:
        tc->obj = obj ? ((const weft_coro *)obj)->id : 0;
        break;
    case WEFT__WAIT_MUTEX:
    case WEFT__WAIT_FUTURE:
    case WEFT__WAIT_CHAN_SEND:
    case WEFT__WAIT_CHAN_RECV:
        tc->obj = (uintptr_t)slot_object(obj);
        break;
    default:
        tc->obj = (uintptr_t)obj;
        break;
    }
}

/* The name of a wait span, e.g. "fd 5 readable". */
static void wait_label(const weft_coro *co, char *b, size_t n)
{
    const struct weft__trace_co *tc = &co->trace;
    static const char *const plain[WEFT__WAIT_KINDS] = {
        [WEFT__WAIT_NONE] = "wait",        [WEFT__WAIT_SLEEP] = "sleep",
        [WEFT__WAIT_EVENT] = "event",      [WEFT__WAIT_MUTEX] = "mutex",
        [WEFT__WAIT_COND] = "cond",        [WEFT__WAIT_SEM] = "semaphore",
        [WEFT__WAIT_WG] = "wait group",    [WEFT__WAIT_FUTURE] = "future",
        [WEFT__WAIT_CHAN_SEND] = "channel send",
        [WEFT__WAIT_CHAN_RECV] = "channel receive"};
    switch (tc->kind) {
    case WEFT__WAIT_FD: {
        unsigned ev = tc->detail & (WEFT_IO_READ | WEFT_IO_WRITE);
        snprintf(b, n, "fd %d %s", tc->fd,
                 ev == (WEFT_IO_READ | WEFT_IO_WRITE) ? "readable/writable"
                 : ev == WEFT_IO_WRITE               ? "writable"
                                                     : "readable");
        return;
    }
    case WEFT__WAIT_OP:
        if (tc->fd < 0)
            snprintf(b, n, "I/O operation cancelled");
        else
            snprintf(b, n, "%s on fd %d", weft__op_name(tc->detail), tc->fd);
        return;
    case WEFT__WAIT_JOIN:
        snprintf(b, n, "join #%llu", (unsigned long long)tc->obj);
        return;
    default:
        snprintf(b, n, "%s",
                 tc->kind < WEFT__WAIT_KINDS && plain[tc->kind]
                     ? plain[tc->kind]
                     : "wait");
        return;
    }
}

static void close_wait(struct weft__trace *t, weft_coro *co, int64_t now,
                       int woken)
{
    struct weft__trace_co *tc = &co->trace;
    char label[64];
    int sep = 0;
    wait_label(co, label, sizeof label);
    span(t, co->id, label, "wait",
         tc->kind == WEFT__WAIT_FD || tc->kind == WEFT__WAIT_OP
             ? "thread_state_iowait"
             : "thread_state_sleeping",
         tc->t0, now);
    puts_(t, ",\"args\":{");
    if (tc->kind != WEFT__WAIT_FD && tc->kind != WEFT__WAIT_OP &&
        tc->kind != WEFT__WAIT_JOIN && tc->kind != WEFT__WAIT_SLEEP &&
        tc->obj) {
        char a[24];
        snprintf(a, sizeof a, "\"0x%llx\"", (unsigned long long)tc->obj);
        puts_(t, "\"object\":");
        puts_(t, a);
        sep = 1;
    }
    if (tc->timed) {
        puts_(t, sep ? ",\"deadline_us\":" : "\"deadline_us\":");
        put_us(t, co->timer.due);
        sep = 1;
    }
    if (!woken) {
        puts_(t, sep ? ",\"unfinished\":true" : "\"unfinished\":true");
    } else if (co->wake_result < 0 &&
               !(tc->kind == WEFT__WAIT_SLEEP &&
                 co->wake_result == -ETIMEDOUT)) { /* a sleep's normal end */
        puts_(t, sep ? ",\"result\":\"" : "\"result\":\"");
        puts_(t, weft_err_name(co->wake_result));
        puts_(t, "\"");
    }
    puts_(t, "}}");
    tc->span = SPAN_NONE;
}

static void close_ready(struct weft__trace *t, weft_coro *co, int64_t now,
                        int unfinished)
{
    static const char *const after[] = {"?", "spawn", "wait", "yield",
                                        "trace start"};
    struct weft__trace_co *tc = &co->trace;
    span(t, co->id, "ready", "ready", "thread_state_runnable", tc->t0, now);
    puts_(t, ",\"args\":{\"after\":\"");
    puts_(t, after[tc->kind <= READY_START ? tc->kind : 0]);
    puts_(t, unfinished ? "\",\"unfinished\":true}}" : "\"}}");
    tc->span = SPAN_NONE;
}

static void close_run(struct weft__trace *t, weft_coro *co, int64_t now,
                      int unfinished)
{
    char tmp[40];
    span(t, co->id, display_name(co, tmp, sizeof tmp), "run",
         "thread_state_running", co->trace.t0, now);
    if (co->state == WEFT__DONE) {
        puts_(t, ",\"args\":{\"status\":");
        put_i64(t, co->status);
        puts_(t, "}}");
    } else {
        puts_(t, unfinished ? ",\"args\":{\"unfinished\":true}}" : "}");
    }
    co->trace.span = SPAN_NONE;
}

/* End whatever span co has open at now (unfinished: the trace stops). */
static void close_any(struct weft__trace *t, weft_coro *co, int64_t now,
                      int unfinished)
{
    switch (co->trace.span) {
    case SPAN_RUN:
        close_run(t, co, now, unfinished);
        break;
    case SPAN_WAIT:
        close_wait(t, co, now, !unfinished);
        break;
    case SPAN_READY:
        close_ready(t, co, now, unfinished);
        break;
    default:
        break;
    }
}

/* co is being switched away from: what follows its run span. */
static void leave(struct weft__trace *t, weft_coro *co, int64_t now)
{
    know(t, co);
    int want = co->state == WEFT__WAITING ? SPAN_WAIT
               : co->state == WEFT__READY ? SPAN_READY
                                          : SPAN_NONE;
    if (co->trace.span == want)
        return; /* seen already (a switch whose hooks ran twice) */
    close_any(t, co, now, 0);
    if (want == SPAN_WAIT)
        open_wait(co, now);
    else if (want == SPAN_READY)
        open_span(co, SPAN_READY, READY_YIELD, now);
}

static void enter(struct weft__trace *t, weft_coro *co, int64_t now)
{
    know(t, co);
    if (co->trace.span == SPAN_RUN)
        return;
    close_any(t, co, now, 0);
    open_span(co, SPAN_RUN, 0, now);
}

static void close_loop(struct weft__trace *t, int64_t now)
{
    if (!t->loop_open)
        return;
    t->loop_open = 0;
    span(t, 0, "loop", "loop", "generic_work", t->loop_t0, now);
    puts_(t, "}");
}

static void on_switch(weft_coro *from, weft_coro *to, void *arg)
{
    struct weft__trace *t = arg;
    int64_t now = weft__clock_now(t->s);
    if (from)
        leave(t, from, now);
    else
        close_loop(t, now);
    if (to) {
        enter(t, to, now);
    } else if (!t->loop_open) {
        t->loop_open = 1;
        t->loop_t0 = now;
    }
}

void weft__trace_ready(struct weft__trace *t, weft_coro *co)
{
    know(t, co);
    if (co->trace.span == SPAN_RUN || co->trace.span == SPAN_READY)
        return; /* a yield: the switch away opens its ready span */
    int64_t now = weft__clock_now(t->s);
    close_any(t, co, now, 0);
    /* Called before the state changes: WAITING is a wake-up, NEW a
     * spawn (or a spawn_at coming due). */
    open_span(co, SPAN_READY,
              co->state == WEFT__WAITING ? READY_WAKE : READY_SPAWN, now);
}

/* ----------------------------------------------------------------------
 * Start and stop
 * ---------------------------------------------------------------------- */

/* Start tracing s into f, or into a new file at path when f is NULL. */
static int start(weft_sched *s, FILE *f, const char *path,
                 const struct weft_trace_opts *opts)
{
    struct weft_trace_opts o;
    if (opts)
        o = *opts;
    else
        memset(&o, 0, sizeof o);
    size_t cap = o.buffer_size ? o.buffer_size : DEFAULT_BUFFER;
    if (cap < MIN_BUFFER || cap > MAX_BUFFER)
        return -EINVAL;
    if (s->trace)
        return -EBUSY;
    struct weft__trace *t = weft__malloc(sizeof *t + cap);
    if (!t)
        return -ENOMEM;
    memset(t, 0, sizeof *t);
    int r = weft_hook_add(s, on_switch, t);
    if (r < 0) {
        weft__free(t);
        return r;
    }
    if (!f) {
        errno = 0;
        f = fopen(path, "w");
        if (!f) {
            r = errno ? -errno : -EIO;
            (void)weft_hook_remove(s, on_switch, t);
            weft__free(t);
            return r;
        }
        t->own = 1;
    }
    t->s = s;
    t->f = f;
    t->cap = cap;
    t->pid = o.pid ? o.pid : (int64_t)getpid();
    snprintf(t->pname, sizeof t->pname, "%s",
             o.process_name ? o.process_name : "weft scheduler");
    t->gen = ++s->trace_gen;
    if (!t->gen)
        t->gen = ++s->trace_gen; /* 0 is "never seen": skip it */
    s->trace = t;

    int64_t now = weft__clock_now(s);
    puts_(t, "{\"traceEvents\":[");
    event(t, "M", 0);
    puts_(t, ",\"name\":\"process_name\",\"args\":{\"name\":");
    put_jstr(t, t->pname);
    puts_(t, "}}");
    meta(t, 0, "thread_name", "weft loop");
    sort_index(t, 0, -1);
    for (struct weft__list *l = s->all.next; l != &s->all; l = l->next) {
        weft_coro *co = weft__container_of(l, weft_coro, all);
        if (co->state == WEFT__DONE)
            continue;
        know(t, co);
        if (co == s->current)
            open_span(co, SPAN_RUN, 0, now);
        else if (co->state == WEFT__WAITING)
            open_wait(co, now);
        else if (co->state == WEFT__READY ||
                 (co->state == WEFT__NEW &&
                  co->timer.idx == WEFT__NOT_IN_HEAP))
            open_span(co, SPAN_READY, READY_START, now);
    }
    if (s->running && !s->current) {
        t->loop_open = 1;
        t->loop_t0 = now;
    }
    return 0;
}

int weft_trace_start(weft_sched *s, const char *path,
                     const struct weft_trace_opts *opts)
{
    s = weft__sched_arg(s);
    if (!s || !path || !path[0])
        return -EINVAL;
    return start(s, NULL, path, opts);
}

int weft_trace_start_file(weft_sched *s, FILE *f,
                          const struct weft_trace_opts *opts)
{
    s = weft__sched_arg(s);
    if (!s || !f)
        return -EINVAL;
    return start(s, f, NULL, opts);
}

static int stop(weft_sched *s)
{
    struct weft__trace *t = s->trace;
    int64_t now = weft__clock_now(s);
    for (struct weft__list *l = s->all.next; l != &s->all; l = l->next) {
        weft_coro *co = weft__container_of(l, weft_coro, all);
        if (co->trace.gen == t->gen && co->state != WEFT__DONE)
            close_any(t, co, now, 1);
    }
    close_loop(t, now);
    puts_(t, "\n],\"otherData\":{\"generator\":\"weft ");
    puts_(t, weft_version());
    puts_(t, "\",\"clock\":\"");
    puts_(t, s->clock == WEFT_CLOCK_MANUAL ? "manual" : "monotonic");
    puts_(t, "\"}}\n");
    flush(t);
    int err = t->err;
    errno = 0;
    if (fflush(t->f) != 0 && !err)
        err = errno ? -errno : -EIO;
    if (t->own) {
        errno = 0;
        if (fclose(t->f) != 0 && !err)
            err = errno ? -errno : -EIO;
    }
    (void)weft_hook_remove(s, on_switch, t);
    s->trace = NULL;
    weft__free(t);
    return err;
}

int weft_trace_stop(weft_sched *s)
{
    s = weft__sched_arg(s);
    if (!s)
        return -EINVAL;
    if (!s->trace)
        return -ENOENT;
    return stop(s);
}

void weft__trace_free_sched(weft_sched *s)
{
    (void)stop(s);
}

int weft_trace_active(weft_sched *s)
{
    s = weft__sched_arg(s);
    if (!s)
        return -EINVAL;
    return s->trace != NULL;
}

int weft_trace_mark(weft_sched *s, const char *name)
{
    s = weft__sched_arg(s);
    if (!s || !name)
        return -EINVAL;
    struct weft__trace *t = s->trace;
    if (!t)
        return 0;
    char b[MARK_MAX + 1];
    snprintf(b, sizeof b, "%s", name);
    weft_coro *co = s->current;
    if (co)
        know(t, co);
    event(t, "i", co ? co->id : 0);
    puts_(t, ",\"s\":\"t\",\"name\":");
    put_jstr(t, b);
    puts_(t, ",\"cat\":\"mark\",\"ts\":");
    put_us(t, weft__clock_now(s));
    puts_(t, "}");
    return 1;
}
