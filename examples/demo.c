/*
 * demo.c - a tour of weft in one screen of output: coroutines taking
 * turns, sleeping, a recurring job on a fixed grid, a callback timer,
 * joining for an exit status, a deadline, and cancellation.
 *
 * Build and run: make demo
 * With a trace of it all (docs/tracing.md): demo --trace demo.json
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "weft.h"

static int64_t t0;

/* Milliseconds since the demo started, for the log lines. */
static double ms(void)
{
    return (double)(weft_now(NULL) - t0) / 1e6;
}

#define say(...)                                                  \
    do {                                                          \
        printf("%7.1f ms  %-10s ", ms(), weft_coro_name(weft_self())); \
        printf(__VA_ARGS__);                                      \
        putchar('\n');                                            \
    } while (0)

/* Two workers share the thread by yielding to each other. */
static int worker(void *arg)
{
    int steps = *(int *)arg;
    for (int i = 1; i <= steps; i++) {
        say("step %d of %d", i, steps);
        weft_yield();
    }
    return 0;
}

/* Sleeps, then reports a result through its exit status. */
static int fetcher(void *arg)
{
    (void)arg;
    say("fetching (takes 30 ms)...");
    weft_sleep_for(WEFT_MSEC(30));
    say("fetched");
    return 42;
}

/* Runs every 10 ms on a fixed grid: a late run does not shift the rest. */
static int heartbeat(void *arg)
{
    int *beats = arg;
    say("beat %d", ++*beats);
    return 0;
}

/* Would sleep for a minute, but gets ended (cancelled) first. */
static int sleeper(void *arg)
{
    (void)arg;
    say("going to sleep for 60 s");
    int r = weft_sleep_for(WEFT_SEC(60));
    say("woke early: %s", weft_err_name(r));
    r = weft_sleep_for(WEFT_MSEC(1));
    say("and stays cancelled: %s", weft_err_name(r));
    return r; /* -ECANCELED after weft_end(): not reported as a failure */
}

/* A callback timer: no coroutine, runs on the loop. */
static void on_timer(weft_timer *t, void *arg)
{
    (void)arg;
    printf("%7.1f ms  %-10s callback timer fired\n", ms(), "(timer)");
    weft_timer_free(t);
}

static int coordinator(void *arg)
{
    (void)arg;
    struct weft_spawn_opts o = {0};
    weft_coro *fetch, *beat, *sleepy;
    int beats = 0, status;

    o.name = "fetcher";
    weft_spawn(NULL, fetcher, NULL, &o, &fetch);
    o.name = "heartbeat";
    weft_spawn_recurring(NULL, WEFT_MSEC(10), 4, -1, heartbeat, &beats, &o,
                         &beat);
    o.name = "sleeper";
    weft_spawn(NULL, sleeper, NULL, &o, &sleepy);

    /* Wait for the fetcher, but no longer than 10 ms... */
    int r = weft_join_until(fetch, weft_now(NULL) + WEFT_MSEC(10), &status);
    say("join with a 10 ms deadline: %s", weft_err_name(r));
    /* ...then without a deadline. */
    r = weft_join(fetch, &status);
    if (r < 0)
        say("join: %s", weft_err_name(r));
    else
        say("fetcher finished with status %d", status);

    say("ending the sleeper");
    weft_end(sleepy);
    weft_join(sleepy, &status);
    say("sleeper exited with %s", weft_err_name(status));

    weft_join(beat, &status);
    say("heartbeat done after %d beats", beats);
    return 0;
}

int main(int argc, char **argv)
{
    static int steps_a = 3, steps_b = 2;
    struct weft_spawn_opts o = {0};
    weft_timer *t;
    const char *trace = NULL;

    if (argc == 3 && !strcmp(argv[1], "--trace")) {
        trace = argv[2];
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [--trace FILE.json]\n", argv[0]);
        return 2;
    }
    if (trace) {
        int r = weft_trace_start(NULL, trace, NULL);
        if (r < 0) {
            fprintf(stderr, "demo: %s: %s\n", trace, weft_strerror(r));
            return 1;
        }
    }
    t0 = weft_now(NULL);
    printf("weft %s demo\n", weft_version());

    o.name = "worker-a";
    weft_spawn(NULL, worker, &steps_a, &o, NULL);
    o.name = "worker-b";
    weft_spawn(NULL, worker, &steps_b, &o, NULL);
    o.name = "main-coro";
    weft_spawn(NULL, coordinator, NULL, &o, NULL);
    weft_timer_new(NULL, on_timer, NULL, &t);
    weft_timer_start(t, WEFT_MSEC(15), 0);

    int r = weft_run(NULL);
    printf("%7.1f ms  all done (weft_run returned %d)\n", ms(), r);
    if (trace) {
        int e = weft_trace_stop(NULL);
        if (e < 0) {
            fprintf(stderr, "demo: %s: %s\n", trace, weft_strerror(e));
            return 1;
        }
        printf("trace written to %s (open it in ui.perfetto.dev)\n", trace);
    }
    return r == 0 ? 0 : 1;
}
