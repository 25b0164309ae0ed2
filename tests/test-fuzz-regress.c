/*
 * test-fuzz-regress.c - regression tests for what the libFuzzer harnesses
 * of fuzz/ found.  Each case names the harness and says what was wrong.
 * The input that found it is kept in fuzz/corpus/<harness>/ too, so the
 * harness replays it on every run.
 */
#include <string.h>

#include "test.h"

#include "../examples/http_parse.h"

static weft_sched *new_manual(void)
{
    struct weft_sched_opts o;
    memset(&o, 0, sizeof o);
    o.clock = WEFT_CLOCK_MANUAL;
    weft_sched *s = NULL;
    ASSERT_OK(weft_sched_new(&o, &s));
    return s;
}

/* ----------------------------------------------------------------------
 * fuzz-timers (fuzz/corpus/fuzz-timers/regress-past-deadline): a timer
 * armed by a callback with a deadline already passed became the heap's
 * minimum, and since it belongs to the next phase the phase stopped
 * there, postponing the timers that were due before it.
 * ---------------------------------------------------------------------- */

static char order[16];
static size_t norder;
static char name_a = 'a', name_b = 'b', name_c = 'c';
static weft_timer *late;

static void mark(weft_timer *t, void *arg)
{
    (void)t;
    order[norder++] = *(const char *)arg;
    order[norder] = 0;
}

static void arm_in_the_past(weft_timer *t, void *arg)
{
    mark(t, arg);
    ASSERT_OK(weft_timer_start_at(late, 0, 0));
}

TEST(timers_due_before_a_phase_fire_in_it)
{
    weft_sched *s = new_manual();
    weft_timer *a, *b;
    norder = 0;
    ASSERT_OK(weft_timer_new(s, arm_in_the_past, &name_b, &b));
    ASSERT_OK(weft_timer_new(s, mark, &name_a, &a));
    ASSERT_OK(weft_timer_new(s, mark, &name_c, &late));
    ASSERT_OK(weft_timer_start_at(b, 3, 0));
    ASSERT_OK(weft_timer_start_at(a, 5, 0));
    ASSERT_OK(weft_clock_advance(s, 10));
    /* One iteration has two timer phases (before and after the wait):
     * b and a, both due, fire in the first; c, armed by b, in the next. */
    ASSERT_EQ(weft_run_once(s, 0), 0);
    ASSERT_STR_EQ(order, "bac");
    ASSERT_OK(weft_timer_free(a));
    ASSERT_OK(weft_timer_free(b));
    ASSERT_OK(weft_timer_free(late));
    ASSERT_OK(weft_sched_free(s));
}

/* The same with coroutines: a callback spawning a coroutine for a time in
 * the past must not postpone a sleeper whose deadline has come. */
static int sleeper_woke;

static int sleeper(void *arg)
{
    (void)arg;
    ASSERT_OK(weft_sleep_until(5));
    sleeper_woke = 1;
    return 0;
}

static int late_body(void *arg)
{
    (void)arg;
    /* The sleeper, due before this one was spawned, ran first. */
    ASSERT_EQ(sleeper_woke, 1);
    return 0;
}

static void spawn_in_the_past(weft_timer *t, void *arg)
{
    (void)t;
    ASSERT_OK(weft_spawn_at(arg, 0, late_body, NULL, NULL, NULL));
}

TEST(past_spawn_does_not_postpone_a_due_sleeper)
{
    weft_sched *s = new_manual();
    sleeper_woke = 0;
    ASSERT_OK(weft_spawn(s, sleeper, NULL, NULL, NULL));
    ASSERT_EQ(weft_run_once(s, 0), 1); /* it sleeps until 5 */
    weft_timer *t;
    ASSERT_OK(weft_timer_new(s, spawn_in_the_past, s, &t));
    ASSERT_OK(weft_timer_start_at(t, 3, 0));
    ASSERT_OK(weft_clock_advance(s, 10));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(sleeper_woke, 1);
    ASSERT_OK(weft_timer_free(t));
    ASSERT_OK(weft_sched_free(s));
}

/* ----------------------------------------------------------------------
 * fuzz-http (fuzz/corpus/fuzz-http/regress-cl-inner-space and
 * regress-cl-conflict): the request parser took "Content-Length: 0 5" as
 * 0 (it stopped at the first space and ignored the rest) and let a
 * second Content-Length field override the first.  Either frames the
 * body differently from a proxy that reads the other value (request
 * smuggling).  Now the value must be digits between optional whitespace
 * (tabs included), and repeated fields must agree.
 * ---------------------------------------------------------------------- */

static long parse_str(const char *req, struct http_req *r)
{
    return http_parse(req, strlen(req), r);
}

TEST(http_content_length_is_digits_and_agrees)
{
    struct http_req r;
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\nContent-Length: 0000000000000000 001\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 0 5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 2\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: \t \r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_EQ(parse_str(bad[i], &r), -1);
    /* Optional whitespace around the digits, spaces or tabs; repeated
     * fields with one value. */
    const char *ok = "POST / HTTP/1.1\r\nContent-Length:\t7 \r\n"
                     "Content-Length: 7\r\n\r\n";
    ASSERT_EQ(parse_str(ok, &r), (long)strlen(ok));
    ASSERT_EQ(r.content_length, 7);
}
