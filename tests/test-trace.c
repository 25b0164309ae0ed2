/*
 * test-trace.c - the tracer (weft_trace_*): the file it writes is parsed
 * back with a small strict JSON parser and its events checked.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "util.h"

void weft__test_fail_alloc(long n, int sticky);
long weft__test_live_allocs(void);

/* ----------------------------------------------------------------------
 * A strict JSON parser (RFC 8259), enough to check the tracer's output:
 * it rejects trailing commas, bad escapes, control characters in
 * strings, invalid UTF-8 and trailing garbage.
 * ---------------------------------------------------------------------- */
enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
    int type;
    int b;
    char *str;         /* J_STR: decoded (UTF-8); J_NUM: the token */
    struct jv **kids;  /* J_ARR, J_OBJ */
    char **keys;       /* J_OBJ */
    size_t n;
};

struct jp {
    const char *p;
    int err;
};

static void jfree(struct jv *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        jfree(v->kids[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->kids);
    free(v->keys);
    free(v->str);
    free(v);
}

static void ws(struct jp *j)
{
    while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
        j->p++;
}

static struct jv *jnew(int type)
{
    struct jv *v = calloc(1, sizeof *v);
    ASSERT_NOT_NULL(v);
    v->type = type;
    return v;
}

static void add_kid(struct jv *v, struct jv *k, char *key)
{
    v->kids = realloc(v->kids, (v->n + 1) * sizeof *v->kids);
    ASSERT_NOT_NULL(v->kids);
    v->kids[v->n] = k;
    if (v->type == J_OBJ) {
        v->keys = realloc(v->keys, (v->n + 1) * sizeof *v->keys);
        ASSERT_NOT_NULL(v->keys);
        v->keys[v->n] = key;
    }
    v->n++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void put_utf8(char **o, unsigned cp)
{
    unsigned char *u = (unsigned char *)*o;
    if (cp < 0x80) {
        *u++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *u++ = (unsigned char)(0xc0 | cp >> 6);
        *u++ = (unsigned char)(0x80 | (cp & 0x3f));
    } else {
        *u++ = (unsigned char)(0xe0 | cp >> 12);
        *u++ = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        *u++ = (unsigned char)(0x80 | (cp & 0x3f));
    }
    *o = (char *)u;
}

/* Valid UTF-8 lead + continuation check (strict, as the tracer's). */
static size_t utf8_ok(const unsigned char *p)
{
    unsigned c = p[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

static char *jstring(struct jp *j)
{
    if (*j->p != '"') {
        j->err = 1;
        return NULL;
    }
    j->p++;
    char *out = malloc(strlen(j->p) * 3 + 1), *o = out;
    ASSERT_NOT_NULL(out);
    for (;;) {
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            j->p++;
            break;
        }
        if (c < 0x20) { /* includes the end of the text */
            j->err = 1;
            break;
        }
        if (c == '\\') {
            char e = j->p[1];
            j->p += 2;
            switch (e) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '/': *o++ = '/'; break;
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'n': *o++ = '\n'; break;
            case 'r': *o++ = '\r'; break;
            case 't': *o++ = '\t'; break;
            case 'u': {
                unsigned cp = 0;
                for (int i = 0; i < 4; i++) {
                    int h = hexval(j->p[i]);
                    if (h < 0) {
                        j->err = 1;
                        *o = 0;
                        return out;
                    }
                    cp = cp << 4 | (unsigned)h;
                }
                j->p += 4;
                if (cp >= 0xd800 && cp <= 0xdfff) { /* no pairs needed here */
                    j->err = 1;
                    *o = 0;
                    return out;
                }
                put_utf8(&o, cp);
                break;
            }
            default:
                j->err = 1;
                *o = 0;
                return out;
            }
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_ok((const unsigned char *)j->p);
            if (!k) {
                j->err = 1;
                break;
            }
            memcpy(o, j->p, k);
            o += k;
            j->p += k;
            continue;
        }
        *o++ = (char)c;
        j->p++;
    }
    *o = 0;
    return out;
}

static struct jv *jvalue(struct jp *j, int depth);

static struct jv *jnumber(struct jp *j)
{
    const char *s = j->p;
    if (*j->p == '-')
        j->p++;
    if (*j->p == '0')
        j->p++;
    else if (*j->p >= '1' && *j->p <= '9')
        while (*j->p >= '0' && *j->p <= '9')
            j->p++;
    else
        j->err = 1;
    if (*j->p == '.') {
        j->p++;
        if (!(*j->p >= '0' && *j->p <= '9'))
            j->err = 1;
        while (*j->p >= '0' && *j->p <= '9')
            j->p++;
    }
    if (*j->p == 'e' || *j->p == 'E') {
        j->p++;
        if (*j->p == '+' || *j->p == '-')
            j->p++;
        if (!(*j->p >= '0' && *j->p <= '9'))
            j->err = 1;
        while (*j->p >= '0' && *j->p <= '9')
            j->p++;
    }
    struct jv *v = jnew(J_NUM);
    v->str = strndup(s, (size_t)(j->p - s));
    return v;
}

static struct jv *jvalue(struct jp *j, int depth)
{
    ws(j);
    if (depth > 64) {
        j->err = 1;
        return NULL;
    }
    char c = *j->p;
    if (c == '{' || c == '[') {
        struct jv *v = jnew(c == '{' ? J_OBJ : J_ARR);
        char close = c == '{' ? '}' : ']';
        j->p++;
        ws(j);
        if (*j->p == close) {
            j->p++;
            return v;
        }
        for (;;) {
            char *key = NULL;
            ws(j);
            if (v->type == J_OBJ) {
                key = jstring(j);
                ws(j);
                if (j->err || *j->p != ':') {
                    j->err = 1;
                    free(key);
                    return v;
                }
                j->p++;
            }
            struct jv *k = jvalue(j, depth + 1);
            if (!k) {
                free(key);
                j->err = 1;
                return v;
            }
            add_kid(v, k, key);
            if (j->err)
                return v;
            ws(j);
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            if (*j->p == close) {
                j->p++;
                return v;
            }
            j->err = 1;
            return v;
        }
    }
    if (c == '"') {
        struct jv *v = jnew(J_STR);
        v->str = jstring(j);
        return v;
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return jnumber(j);
    if (!strncmp(j->p, "true", 4) || !strncmp(j->p, "false", 5)) {
        struct jv *v = jnew(J_BOOL);
        v->b = c == 't';
        j->p += v->b ? 4 : 5;
        return v;
    }
    if (!strncmp(j->p, "null", 4)) {
        j->p += 4;
        return jnew(J_NULL);
    }
    j->err = 1;
    return NULL;
}

/* Parse text; NULL if it is not exactly one valid JSON value. */
static struct jv *jparse(const char *text)
{
    struct jp j = {text, 0};
    struct jv *v = jvalue(&j, 0);
    ws(&j);
    if (j.err || !v || *j.p) {
        jfree(v);
        return NULL;
    }
    return v;
}

static const struct jv *jget(const struct jv *o, const char *key)
{
    if (!o || o->type != J_OBJ)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key))
            return o->kids[i];
    return NULL;
}

static const char *jstr(const struct jv *o, const char *key)
{
    const struct jv *v = jget(o, key);
    return v && v->type == J_STR ? v->str : NULL;
}

/* A number with at most three decimals, times 1000, exactly (µs -> ns). */
static int64_t jmilli(const struct jv *v)
{
    ASSERT_NOT_NULL(v);
    ASSERT_EQ(v->type, J_NUM);
    const char *p = v->str;
    int neg = *p == '-';
    p += neg;
    int64_t r = 0;
    while (*p >= '0' && *p <= '9')
        r = r * 10 + (*p++ - '0');
    int decimals = 0;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++, decimals++)
            r = r * 10 + (*p - '0');
    ASSERT_EQ(*p, 0);
    ASSERT_LE(decimals, 3);
    for (; decimals < 3; decimals++)
        r *= 10;
    return neg ? -r : r;
}

static int64_t jint(const struct jv *o, const char *key)
{
    int64_t m = jmilli(jget(o, key));
    ASSERT_EQ(m % 1000, 0);
    return m / 1000;
}

/* ----------------------------------------------------------------------
 * Reading a trace
 * ---------------------------------------------------------------------- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ASSERT_NOT_NULL(f);
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    ASSERT_NOT_NULL(b);
    size_t k;
    while ((k = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (cap - n - 1 == 0) {
            cap *= 2;
            b = realloc(b, cap);
            ASSERT_NOT_NULL(b);
        }
    }
    fclose(f);
    b[n] = 0;
    return b;
}

struct trace {
    struct jv *root;
    const struct jv *ev; /* the traceEvents array */
};

/* Parse text, check the shape every event must have. */
static void trace_parse(struct trace *t, const char *text)
{
    t->root = jparse(text);
    if (!t->root)
        FAIL("not valid JSON:\n%s", text);
    t->ev = jget(t->root, "traceEvents");
    ASSERT_NOT_NULL(t->ev);
    ASSERT_EQ(t->ev->type, J_ARR);
    for (size_t i = 0; i < t->ev->n; i++) {
        const struct jv *e = t->ev->kids[i];
        const char *ph = jstr(e, "ph");
        ASSERT_NOT_NULL(ph);
        ASSERT_NOT_NULL(jget(e, "pid"));
        ASSERT_NOT_NULL(jget(e, "tid"));
        ASSERT_NOT_NULL(jstr(e, "name"));
        if (!strcmp(ph, "X")) {
            ASSERT_NOT_NULL(jstr(e, "cat"));
            ASSERT_GE(jmilli(jget(e, "dur")), 0);
            ASSERT_GE(jmilli(jget(e, "ts")), 0);
        } else if (!strcmp(ph, "i")) {
            ASSERT_NOT_NULL(jget(e, "ts"));
        } else {
            ASSERT_STR_EQ(ph, "M");
            ASSERT_NOT_NULL(jget(e, "args"));
        }
    }
}

static void trace_load(struct trace *t, const char *path)
{
    char *text = slurp(path);
    trace_parse(t, text);
    free(text);
}

static void trace_free(struct trace *t)
{
    jfree(t->root);
    t->root = NULL;
}

static const struct jv *ev_at(const struct trace *t, size_t i)
{
    return t->ev->kids[i];
}

static int is(const struct jv *e, const char *ph)
{
    return !strcmp(jstr(e, "ph"), ph);
}

/* The thread_name events for tid, and the last name given. */
static int thread_names(const struct trace *t, uint64_t tid,
                        const char **last)
{
    int n = 0;
    for (size_t i = 0; i < t->ev->n; i++) {
        const struct jv *e = ev_at(t, i);
        if (is(e, "M") && !strcmp(jstr(e, "name"), "thread_name") &&
            (uint64_t)jint(e, "tid") == tid) {
            n++;
            if (last)
                *last = jstr(jget(e, "args"), "name");
        }
    }
    return n;
}

/* The index-th X event of tid with category cat (NULL: any), or NULL. */
static const struct jv *span_of(const struct trace *t, uint64_t tid,
                                const char *cat, int index)
{
    for (size_t i = 0; i < t->ev->n; i++) {
        const struct jv *e = ev_at(t, i);
        if (is(e, "X") && (uint64_t)jint(e, "tid") == tid &&
            (!cat || !strcmp(jstr(e, "cat"), cat)) && index-- == 0)
            return e;
    }
    return NULL;
}

static int count_spans(const struct trace *t, uint64_t tid, const char *cat)
{
    int n = 0;
    while (span_of(t, tid, cat, n))
        n++;
    return n;
}

/* Every track's spans follow one another without overlap, in file order. */
static void check_tracks(const struct trace *t)
{
    for (size_t i = 0; i < t->ev->n; i++) {
        const struct jv *e = ev_at(t, i);
        if (!is(e, "X"))
            continue;
        int64_t tid = jint(e, "tid");
        int64_t end = jmilli(jget(e, "ts")) + jmilli(jget(e, "dur"));
        for (size_t k = i + 1; k < t->ev->n; k++) {
            const struct jv *f = ev_at(t, k);
            if (is(f, "X") && jint(f, "tid") == tid) {
                ASSERT_GE(jmilli(jget(f, "ts")), end);
                break;
            }
        }
    }
}

static const char *tmp_path(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "/tmp/weft-test-trace-%d-%s.json", (int)getpid(), tag);
    return buf;
}

/* ----------------------------------------------------------------------
 * Bodies
 * ---------------------------------------------------------------------- */

static int yielder(void *arg)
{
    int n = *(int *)arg;
    for (int i = 0; i < n; i++)
        ASSERT_OK(weft_yield());
    return 0;
}

static int sleeper(void *arg)
{
    return weft_sleep_for(*(int64_t *)arg);
}

static int wait_event_forever(void *arg)
{
    return weft_event_wait(arg, -1);
}

/* ----------------------------------------------------------------------
 * Cases
 * ---------------------------------------------------------------------- */

TEST(tracks_and_run_spans)
{
    char path[128];
    weft_sched *s = new_manual();
    int three = 3, one = 1;
    struct weft_spawn_opts o = {0};
    weft_coro *a, *b;
    struct weft_trace_opts to = {0};
    to.pid = 77;
    to.process_name = "tester";
    ASSERT_OK(weft_trace_start(s, tmp_path(path, sizeof path, "tracks"), &to));
    ASSERT_EQ(weft_trace_active(s), 1);
    o.name = "alpha";
    ASSERT_OK(weft_spawn(s, yielder, &three, &o, &a));
    o.name = "beta";
    ASSERT_OK(weft_spawn(s, yielder, &one, &o, &b));
    ASSERT_OK(weft_run(s));
    uint64_t ia = weft_coro_id(a), ib = weft_coro_id(b);
    reap(a);
    reap(b);
    ASSERT_OK(weft_trace_stop(s));
    ASSERT_EQ(weft_trace_active(s), 0);

    struct trace t;
    trace_load(&t, path);
    const char *name = NULL;
    ASSERT_EQ(thread_names(&t, ia, &name), 1);
    ASSERT_STR_EQ(name, "alpha");
    ASSERT_EQ(thread_names(&t, ib, &name), 1);
    ASSERT_STR_EQ(name, "beta");
    ASSERT_EQ(thread_names(&t, 0, &name), 1);
    ASSERT_STR_EQ(name, "weft loop");
    /* 3 yields: 4 runs, each named after the coroutine; the last one
     * carries the exit status. */
    ASSERT_EQ(count_spans(&t, ia, "run"), 4);
    ASSERT_EQ(count_spans(&t, ib, "run"), 2);
    for (int i = 0; i < 4; i++)
        ASSERT_STR_EQ(jstr(span_of(&t, ia, "run", i), "name"), "alpha");
    ASSERT_EQ(jint(jget(span_of(&t, ia, "run", 3), "args"), "status"), 0);
    /* Ready spans: after the spawn, then after each yield. */
    ASSERT_EQ(count_spans(&t, ia, "ready"), 4);
    ASSERT_STR_EQ(jstr(jget(span_of(&t, ia, "ready", 0), "args"), "after"),
                  "spawn");
    ASSERT_STR_EQ(jstr(jget(span_of(&t, ia, "ready", 1), "args"), "after"),
                  "yield");
    ASSERT_EQ(count_spans(&t, ia, "wait"), 0);
    check_tracks(&t);
    /* Every event carries the pid asked for; the process track is named. */
    int pname = 0;
    for (size_t i = 0; i < t.ev->n; i++) {
        ASSERT_EQ(jint(ev_at(&t, i), "pid"), 77);
        if (!strcmp(jstr(ev_at(&t, i), "name"), "process_name")) {
            pname++;
            ASSERT_STR_EQ(jstr(jget(ev_at(&t, i), "args"), "name"), "tester");
        }
    }
    ASSERT_EQ(pname, 1);
    ASSERT_STR_EQ(jstr(jget(t.root, "otherData"), "clock"), "manual");
    trace_free(&t);
    unlink(path);
    ASSERT_OK(weft_sched_free(s));
}

TEST(sleep_wait_span_has_the_sleep_length)
{
    char path[128];
    weft_sched *s = new_manual();
    int64_t d = WEFT_MSEC(5) + 250; /* 5000.25 µs */
    weft_coro *co;
    ASSERT_OK(weft_clock_set(s, WEFT_USEC(1000)));
    ASSERT_OK(weft_trace_start(s, tmp_path(path, sizeof path, "sleep"), NULL));
    co = go(s, sleeper, &d);
    ASSERT_OK(weft_run(s));
    uint64_t id = weft_coro_id(co);
    reap(co);
    ASSERT_OK(weft_trace_stop(s));

    struct trace t;
    trace_load(&t, path);
    ASSERT_EQ(count_spans(&t, id, "wait"), 1);
    const struct jv *w = span_of(&t, id, "wait", 0);
    ASSERT_STR_EQ(jstr(w, "name"), "sleep");
    ASSERT_EQ(jmilli(jget(w, "ts")), WEFT_USEC(1000));
    ASSERT_EQ(jmilli(jget(w, "dur")), d);
    ASSERT_EQ(jmilli(jget(jget(w, "args"), "deadline_us")), WEFT_USEC(1000) + d);
    /* Woken by its timer, not by an error. */
    ASSERT_NULL(jget(jget(w, "args"), "result"));
    /* Then ready (zero-length on the manual clock) and the last run. */
    const struct jv *r = span_of(&t, id, "ready", 1);
    ASSERT_NOT_NULL(r);
    ASSERT_STR_EQ(jstr(jget(r, "args"), "after"), "wait");
    ASSERT_EQ(jmilli(jget(r, "ts")), WEFT_USEC(1000) + d);
    ASSERT_EQ(jmilli(jget(span_of(&t, id, "run", 1), "ts")), WEFT_USEC(1000) + d);
    check_tracks(&t);
    trace_free(&t);
    unlink(path);
    ASSERT_OK(weft_sched_free(s));
}

struct pipe_pair {
    int fd[2];
};

static int fd_reader(void *arg)
{
    struct pipe_pair *p = arg;
    int r = weft_fd_wait(p->fd[0], WEFT_IO_READ, -1);
    ASSERT_GT(r, 0);
    return 0;
}

static int fd_writer(void *arg)
{
    struct pipe_pair *p = arg;
    ASSERT_OK(weft_sleep_for(WEFT_MSEC(2)));
    ASSERT_EQ(write(p->fd[1], "x", 1), 1);
    return 0;
}

TEST(fd_wait_span)
{
    char path[128];
    weft_sched *s = new_manual();
    struct pipe_pair p;
    ASSERT_OK(pipe(p.fd));
    ASSERT_OK(weft_trace_start(s, tmp_path(path, sizeof path, "fd"), NULL));
    weft_coro *r = go(s, fd_reader, &p);
    weft_coro *w = go(s, fd_writer, &p);
    ASSERT_OK(weft_run(s));
    uint64_t id = weft_coro_id(r), wid = weft_coro_id(w);
    reap(r);
    reap(w);
    ASSERT_OK(weft_trace_stop(s));

    struct trace t;
    trace_load(&t, path);
    char want[32];
    snprintf(want, sizeof want, "fd %d readable", p.fd[0]);
    const struct jv *sp = span_of(&t, id, "wait", 0);
    ASSERT_NOT_NULL(sp);
    ASSERT_STR_EQ(jstr(sp, "name"), want);
    ASSERT_EQ(jmilli(jget(sp, "ts")), 0);
    ASSERT_EQ(jmilli(jget(sp, "dur")), WEFT_MSEC(2));
    ASSERT_STR_EQ(jstr(span_of(&t, wid, "wait", 0), "name"), "sleep");
    check_tracks(&t);
    trace_free(&t);
    unlink(path);
    close(p.fd[0]);
    close(p.fd[1]);
    ASSERT_OK(weft_sched_free(s));
}

static int holder(void *arg)
{
    weft_mutex *m = arg;
    ASSERT_OK(weft_mutex_lock(m, -1));
    ASSERT_OK(weft_sleep_for(WEFT_MSEC(3)));
    ASSERT_OK(weft_mutex_unlock(m));
    return 0;
}

static int contender(void *arg)
{
    weft_mutex *m = arg;
    ASSERT_OK(weft_mutex_lock(m, -1));
    ASSERT_OK(weft_mutex_unlock(m));
    return 0;
}

static int timed_contender(void *arg)
{
    weft_mutex *m = arg;
    weft_sched *s = weft_coro_sched(weft_self());
    ASSERT_ERR(weft_mutex_lock(m, weft_now(s) + WEFT_MSEC(1)), -ETIMEDOUT);
    return 0;
}

TEST(mutex_wait_span)
{
    char path[128];
    weft_sched *s = new_manual();
    weft_mutex *m;
    ASSERT_OK(weft_mutex_new(s, &m));
    ASSERT_OK(weft_trace_start(s, tmp_path(path, sizeof path, "mutex"), NULL));
    weft_coro *h = go(s, holder, m);
    weft_coro *c = go(s, contender, m);
    weft_coro *tc = go(s, timed_contender, m);
    ASSERT_OK(weft_run(s));
    uint64_t id = weft_coro_id(c), tid = weft_coro_id(tc);
    reap(h);
    reap(c);
    reap(tc);
    ASSERT_OK(weft_trace_stop(s));

    struct trace t;
    trace_load(&t, path);
    const struct jv *sp = span_of(&t, id, "wait", 0);
    ASSERT_NOT_NULL(sp);
    ASSERT_STR_EQ(jstr(sp, "name"), "mutex");
    ASSERT_EQ(jmilli(jget(sp, "dur")), WEFT_MSEC(3));
    char addr[32];
    snprintf(addr, sizeof addr, "0x%llx", (unsigned long long)(uintptr_t)m);
    ASSERT_STR_EQ(jstr(jget(sp, "args"), "object"), addr);
    /* The timed-out wait says so. */
    sp = span_of(&t, tid, "wait", 0);
    ASSERT_STR_EQ(jstr(sp, "name"), "mutex");
    ASSERT_EQ(jmilli(jget(sp, "dur")), WEFT_MSEC(1));
    ASSERT_STR_EQ(jstr(jget(sp, "args"), "result"), "ETIMEDOUT");
    ASSERT_EQ(jmilli(jget(jget(sp, "args"), "deadline_us")), WEFT_MSEC(1));
    check_tracks(&t);
    trace_free(&t);
    unlink(path);
    ASSERT_OK(weft_mutex_free(m));
    ASSERT_OK(weft_sched_free(s));
}

static int joiner(void *arg)
{
    int st;
    return weft_join(arg, &st);
}

TEST(join_event_and_names_of_other_waits)
{
    char path[128];
    weft_sched *s = new_manual();
    weft_event *e;
    int64_t d = WEFT_MSEC(1);
    ASSERT_OK(weft_event_new(s, &e));
    ASSERT_OK(weft_trace_start(s, tmp_path(path, sizeof path, "join"), NULL));
    weft_coro *sl, *ev, *j;
    ASSERT_OK(weft_spawn(s, sleeper, &d, NULL, &sl));
    ev = go(s, wait_event_forever, e);
    j = go(s, joiner, sl);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(weft_run_once(s, -1), 1); /* the sleeper finishes */
    ASSERT_EQ(weft_event_set(e), 1); /* wakes one */
    ASSERT_OK(weft_run(s));
    uint64_t sid = weft_coro_id(sl), eid = weft_coro_id(ev),
             jid = weft_coro_id(j);
    reap(ev);
    reap(j);
    ASSERT_OK(weft_trace_stop(s));

    struct trace t;
    trace_load(&t, path);
    char want[32];
    snprintf(want, sizeof want, "join #%llu", (unsigned long long)sid);
    ASSERT_STR_EQ(jstr(span_of(&t, jid, "wait", 0), "name"), want);
    ASSERT_EQ(jmilli(jget(span_of(&t, jid, "wait", 0), "dur")), WEFT_MSEC(1));
    ASSERT_STR_EQ(jstr(span_of(&t, eid, "wait", 0), "name"), "event");
    /* An unnamed coroutine's track and run spans say which it is. */
    const char *name = NULL;
    snprintf(want, sizeof want, "coroutine #%llu", (unsigned long long)eid);
    ASSERT_EQ(thread_names(&t, eid, &name), 1);
    ASSERT_STR_EQ(name, want);
    ASSERT_STR_EQ(jstr(span_of(&t, eid, "run", 0), "name"), want);
    check_tracks(&t);
    trace_free(&t);
    unlink(path);
    ASSERT_OK(weft_event_free(e));
    ASSERT_OK(weft_sched_free(s));
}

static int renamer(void *arg)
{
    (void)arg;
    ASSERT_OK(weft_yield());
    ASSERT_OK(weft_coro_set_name(weft_self(), "renamed"));
    ASSERT_OK(weft_yield());
    return 0;
}

TEST(names_escaped_and_renamed)
{
    char path[128];
    weft_sched *s = new_manual();
    /* Quote, backslash, newline, tab, \x01, \x7f, valid UTF-8 (é, €),
     * a stray continuation byte and a truncated sequence at the end. */
    static int one = 1;
    static const char raw[] = "q\"b\\n\nt\t\x01\x7f\xc3\xa9\xe2\x82\xac\x80z\xe2\x82";
    static const char decoded[] =
        "q\"b\\n\nt\t\x01\x7f\xc3\xa9\xe2\x82\xac\xef\xbf\xbdz"
        "\xef\xbf\xbd\xef\xbf\xbd"; /* one U+FFFD per bad byte */
    struct weft_spawn_opts o = {0};
    weft_coro *a, *b;
    o.name = raw;
    ASSERT_OK(weft_trace_start(s, tmp_path(path, sizeof path, "names"), NULL));
    ASSERT_OK(weft_spawn(s, yielder, &one, &o, &a));
    o.name = "before";
    ASSERT_OK(weft_spawn(s, renamer, NULL, &o, &b));
    ASSERT_EQ(weft_trace_mark(s, "mark \"one\""), 1);
    ASSERT_OK(weft_run(s));
    uint64_t ia = weft_coro_id(a), ib = weft_coro_id(b);
    reap(a);
    reap(b);
    ASSERT_OK(weft_trace_stop(s));

    struct trace t;
    trace_load(&t, path);
    const char *name = NULL;
    ASSERT_EQ(thread_names(&t, ia, &name), 1);
    ASSERT_STR_EQ(name, decoded);
    ASSERT_STR_EQ(jstr(span_of(&t, ia, "run", 0), "name"), decoded);
    /* Renamed while running: a second thread_name, and the spans after
     * the rename carry the new name. */
    ASSERT_EQ(thread_names(&t, ib, &name), 2);
    ASSERT_STR_EQ(name, "renamed");
    ASSERT_STR_EQ(jstr(span_of(&t, ib, "run", 0), "name"), "before");
    ASSERT_STR_EQ(jstr(span_of(&t, ib, "run", 2), "name"), "renamed");
    /* The mark, made outside the scheduler: on the loop's track. */
    int marks = 0;
    for (size_t i = 0; i < t.ev->n; i++)
        if (is(ev_at(&t, i), "i")) {
            marks++;
            ASSERT_STR_EQ(jstr(ev_at(&t, i), "name"), "mark \"one\"");
            ASSERT_EQ(jint(ev_at(&t, i), "tid"), 0);
        }
    ASSERT_EQ(marks, 1);
    trace_free(&t);
    unlink(path);
    ASSERT_OK(weft_sched_free(s));
}

static int start_inside(void *arg)
{
    char *path = arg;
    ASSERT_OK(weft_trace_start(NULL, path, NULL));
    ASSERT_EQ(weft_trace_mark(NULL, "inside"), 1);
    ASSERT_OK(weft_sleep_for(WEFT_MSEC(1)));
    ASSERT_OK(weft_trace_stop(NULL));
    ASSERT_EQ(weft_trace_mark(NULL, "after"), 0);
    return 0;
}

TEST(start_and_stop_inside_a_coroutine)
{
    char path[128];
    weft_sched *s = new_manual();
    tmp_path(path, sizeof path, "inside");
    int64_t d = WEFT_MSEC(10);
    weft_coro *co = go(s, start_inside, path);
    weft_coro *other = go(s, sleeper, &d); /* waiting when the trace starts */
    ASSERT_OK(weft_run(s));
    uint64_t id = weft_coro_id(co), oid = weft_coro_id(other);
    reap(co);
    reap(other);

    struct trace t;
    trace_load(&t, path);
    /* The coroutine that started it: a run span from t=0, its sleep, and
     * an unfinished run span ended by the stop. */
    ASSERT_EQ(count_spans(&t, id, "run"), 2);
    const struct jv *last = span_of(&t, id, "run", 1);
    ASSERT_EQ(jget(jget(last, "args"), "unfinished")->b, 1);
    ASSERT_EQ(jmilli(jget(span_of(&t, id, "wait", 0), "dur")), WEFT_MSEC(1));
    /* The other one existed (ready) before the trace: it has a track,
     * and the sleep it was in when the trace stopped is unfinished. */
    ASSERT_EQ(thread_names(&t, oid, NULL), 1);
    const struct jv *ow = span_of(&t, oid, "wait", 0);
    ASSERT_NOT_NULL(ow);
    ASSERT_EQ(jget(jget(ow, "args"), "unfinished")->b, 1);
    int marks = 0;
    for (size_t i = 0; i < t.ev->n; i++)
        if (is(ev_at(&t, i), "i")) {
            marks++;
            ASSERT_EQ((uint64_t)jint(ev_at(&t, i), "tid"), id);
        }
    ASSERT_EQ(marks, 1);
    check_tracks(&t);
    trace_free(&t);
    unlink(path);
    ASSERT_OK(weft_sched_free(s));
}

TEST(stop_with_live_coroutines_gives_valid_json)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ASSERT_NOT_NULL(f);
    weft_sched *s = new_manual();
    weft_event *e;
    int64_t d = WEFT_SEC(100);
    int many = 1000;
    ASSERT_OK(weft_event_new(s, &e));
    ASSERT_OK(weft_trace_start_file(s, f, NULL));
    weft_coro *w = go(s, wait_event_forever, e);
    weft_coro *sl = go(s, sleeper, &d);
    weft_coro *y = go(s, yielder, &many);
    weft_coro *fresh = go(s, yielder, &many);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(weft_run_once(s, 0), 1);
    /* A coroutine spawned but never run when the trace stops. */
    weft_coro *never;
    ASSERT_OK(weft_spawn(s, yielder, &many, NULL, &never));
    ASSERT_OK(weft_trace_stop(s));
    ASSERT_OK(fclose(f)); /* stop flushed it but left it open */

    struct trace t;
    trace_parse(&t, buf);
    ASSERT_EQ(count_spans(&t, weft_coro_id(w), "wait"), 1);
    ASSERT_EQ(jget(jget(span_of(&t, weft_coro_id(w), "wait", 0), "args"),
                   "unfinished")->b, 1);
    ASSERT_EQ(count_spans(&t, weft_coro_id(sl), "wait"), 1);
    ASSERT_GE(count_spans(&t, weft_coro_id(y), "ready"), 3);
    ASSERT_GE(count_spans(&t, weft_coro_id(fresh), "run"), 2);
    ASSERT_EQ(thread_names(&t, weft_coro_id(never), NULL), 1);
    ASSERT_EQ(count_spans(&t, weft_coro_id(never), "ready"), 1);
    ASSERT_EQ(count_spans(&t, weft_coro_id(never), "run"), 0);
    check_tracks(&t);
    trace_free(&t);
    free(buf);
    /* Freed with its coroutines still alive, after the trace. */
    ASSERT_OK(weft_sched_free(s));
    ASSERT_OK(weft_event_free(e));
}

TEST(sched_free_while_tracing_finishes_the_file)
{
    char path[128];
    weft_sched *s = new_manual();
    weft_event *e;
    ASSERT_OK(weft_event_new(s, &e));
    ASSERT_OK(weft_trace_start(s, tmp_path(path, sizeof path, "free"), NULL));
    weft_coro *w = go(s, wait_event_forever, e);
    ASSERT_EQ(weft_run_once(s, 0), 1);
    uint64_t id = weft_coro_id(w);
    ASSERT_OK(weft_sched_free(s));
    ASSERT_OK(weft_event_free(e));

    struct trace t;
    trace_load(&t, path);
    ASSERT_EQ(count_spans(&t, id, "run"), 1);
    ASSERT_EQ(count_spans(&t, id, "wait"), 1);
    trace_free(&t);
    unlink(path);
}

static int spawn_many(void *arg)
{
    static int one = 1;
    int n = *(int *)arg;
    for (int i = 0; i < n; i++) {
        ASSERT_OK(weft_spawn(NULL, yielder, &one, NULL, NULL));
        if (i % 10 == 0)
            ASSERT_OK(weft_yield());
    }
    return 0;
}

TEST(coroutines_created_and_freed_while_tracing)
{
    char path[128];
    weft_sched *s = new_manual();
    int n = 300;
    struct weft_trace_opts o = {0};
    o.buffer_size = 4096; /* many flushes */
    long base = weft__test_live_allocs();
    ASSERT_OK(weft_trace_start(s, tmp_path(path, sizeof path, "many"), &o));
    ASSERT_EQ(weft__test_live_allocs(), base + 1 + 1); /* buffer + hook vector */
    ASSERT_OK(weft_spawn(s, spawn_many, &n, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_trace_stop(s));

    struct trace t;
    trace_load(&t, path);
    /* One track per coroutine: each of the n detached ones named once,
     * with two runs (one yield) and the exit status on the last. */
    int tracks = 0;
    for (size_t i = 0; i < t.ev->n; i++) {
        const struct jv *e = ev_at(&t, i);
        if (!is(e, "M") || strcmp(jstr(e, "name"), "thread_name"))
            continue;
        uint64_t tid = (uint64_t)jint(e, "tid");
        if (tid == 0)
            continue;
        tracks++;
        ASSERT_EQ(thread_names(&t, tid, NULL), 1);
        ASSERT_GE(count_spans(&t, tid, "run"), 1);
    }
    ASSERT_EQ(tracks, n + 1);
    check_tracks(&t);
    trace_free(&t);
    unlink(path);
    ASSERT_OK(weft_sched_free(s));
}

TEST(restart_gives_every_coroutine_a_track_again)
{
    char p1[128], p2[128];
    weft_sched *s = new_manual();
    int many = 10;
    weft_coro *co = go(s, yielder, &many);
    ASSERT_OK(weft_trace_start(s, tmp_path(p1, sizeof p1, "r1"), NULL));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_trace_stop(s));
    ASSERT_OK(weft_trace_start(s, tmp_path(p2, sizeof p2, "r2"), NULL));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_trace_stop(s));
    ASSERT_OK(weft_run(s));
    uint64_t id = weft_coro_id(co);
    reap(co);
    struct trace t;
    trace_load(&t, p1);
    ASSERT_EQ(thread_names(&t, id, NULL), 1);
    ASSERT_STR_EQ(jstr(jget(span_of(&t, id, "ready", 0), "args"), "after"),
                  "trace start");
    trace_free(&t);
    trace_load(&t, p2);
    ASSERT_EQ(thread_names(&t, id, NULL), 1);
    ASSERT_EQ(count_spans(&t, id, "run"), 1);
    check_tracks(&t);
    trace_free(&t);
    unlink(p1);
    unlink(p2);
    ASSERT_OK(weft_sched_free(s));
}

static void *other_thread(void *arg)
{
    weft_sched *s = arg;
    intptr_t bad = 0;
    bad += weft_trace_start(s, "/tmp/never-written.json", NULL) != -EINVAL;
    bad += weft_trace_stop(s) != -EINVAL;
    bad += weft_trace_active(s) != -EINVAL;
    bad += weft_trace_mark(s, "x") != -EINVAL;
    return (void *)bad;
}

TEST(errors)
{
    char path[128];
    weft_sched *s = new_manual();
    struct weft_trace_opts o = {0};
    tmp_path(path, sizeof path, "errors");
    ASSERT_ERR(weft_trace_start(s, NULL, NULL), -EINVAL);
    ASSERT_ERR(weft_trace_start(s, "", NULL), -EINVAL);
    ASSERT_ERR(weft_trace_start_file(s, NULL, NULL), -EINVAL);
    ASSERT_ERR(weft_trace_mark(s, NULL), -EINVAL);
    o.buffer_size = 100;
    ASSERT_ERR(weft_trace_start(s, path, &o), -EINVAL);
    ASSERT_ERR(access(path, F_OK), -1); /* no file made */
    ASSERT_ERR(weft_trace_stop(s), -ENOENT);
    ASSERT_EQ(weft_trace_mark(s, "nothing"), 0);
    ASSERT_ERR(weft_trace_start(s, "/nonexistent-dir/x/trace.json", NULL),
               -ENOENT);
    ASSERT_EQ(weft_trace_active(s), 0);
    ASSERT_OK(weft_trace_start(s, path, NULL));
    ASSERT_ERR(weft_trace_start(s, path, NULL), -EBUSY);
    ASSERT_ERR(weft_trace_start_file(s, stderr, NULL), -EBUSY);

    pthread_t th;
    void *bad = (void *)1;
    ASSERT_OK(pthread_create(&th, NULL, other_thread, s));
    ASSERT_OK(pthread_join(th, &bad));
    ASSERT_PTR_EQ(bad, NULL);

    ASSERT_OK(weft_trace_stop(s));
    ASSERT_ERR(weft_trace_stop(s), -ENOENT);
    unlink(path);
    ASSERT_OK(weft_sched_free(s));
}

TEST(write_errors_are_reported_by_stop)
{
    if (access("/dev/full", W_OK) != 0)
        SKIP("no /dev/full");
    weft_sched *s = new_manual();
    int many = 50;
    ASSERT_OK(weft_trace_start(s, "/dev/full", NULL));
    go(s, yielder, &many);
    ASSERT_OK(weft_run(s));
    ASSERT_ERR(weft_trace_stop(s), -ENOSPC);
    ASSERT_EQ(weft_trace_active(s), 0);
    /* The error is not sticky: a new trace starts cleanly. */
    ASSERT_OK(weft_trace_start(s, "/dev/null", NULL));
    ASSERT_OK(weft_trace_stop(s));
    ASSERT_OK(weft_sched_free(s));
}

TEST(allocation_failures)
{
    char path[128];
    weft_sched *s = new_manual();
    tmp_path(path, sizeof path, "alloc");
    long base = weft__test_live_allocs();
    /* The buffer. */
    weft__test_fail_alloc(0, 0);
    ASSERT_ERR(weft_trace_start(s, path, NULL), -ENOMEM);
    ASSERT_ERR(access(path, F_OK), -1);
    /* The switch hook's slot (the scheduler has no hook yet). */
    weft__test_fail_alloc(1, 0);
    ASSERT_ERR(weft_trace_start(s, path, NULL), -ENOMEM);
    weft__test_fail_alloc(-1, 0);
    ASSERT_EQ(weft__test_live_allocs(), base);
    ASSERT_EQ(weft_trace_active(s), 0);
    ASSERT_ERR(access(path, F_OK), -1);
    /* Once started, tracing allocates nothing. */
    int many = 20;
    ASSERT_OK(weft_trace_start(s, path, NULL));
    go(s, yielder, &many);
    weft__test_fail_alloc(0, 1);
    ASSERT_OK(weft_run(s));
    ASSERT_OK(weft_trace_stop(s));
    weft__test_fail_alloc(-1, 0);
    struct trace t;
    trace_load(&t, path);
    trace_free(&t);
    unlink(path);
    ASSERT_OK(weft_sched_free(s));
    (void)base;
}
