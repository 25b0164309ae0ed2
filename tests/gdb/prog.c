/*
 * prog.c - the program tests/gdb/run.sh debugs to test tools/weft-gdb.py.
 *
 * It suspends named coroutines in known functions, each in a different
 * state, and stops twice where gdb puts breakpoints:
 *   weft_gdb_stop_here()  called by the running coroutine 'inspector'
 *                         while 'sleeper' sleeps, 'waiter' waits for an
 *                         event, 'joiner' joins 'sleeper', 'yielder' is
 *                         ready and 'unstarted' waits for its start time;
 *   weft_gdb_stop_main()  called by main() between two runs (no scheduler
 *                         running: gdb names it with the global gdb_sched).
 * Then it ends them all and exits 0, which run.sh checks too (the
 * registers `weft bt` borrowed were given back).
 *
 * The bodies do work after their blocking call, so that the compiler
 * cannot turn the call into a tail jump and lose their frames.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "weft.h"

weft_sched *gdb_sched;
uint64_t sleeper_id, waiter_id, unstarted_id;
volatile int gdb_sink;

static weft_event *ev;
static weft_coro *sleeper;

__attribute__((noinline)) void weft_gdb_stop_here(void);
__attribute__((noinline)) void weft_gdb_stop_here(void)
{
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void weft_gdb_stop_main(void);
__attribute__((noinline)) void weft_gdb_stop_main(void)
{
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static int gdb_sleeper(void *arg)
{
    (void)arg;
    int r = weft_sleep_for(WEFT_SEC(3600));
    gdb_sink += r;
    return 0;
}

__attribute__((noinline)) static int gdb_waiter(void *arg)
{
    (void)arg;
    int r = weft_event_wait(ev, -1);
    gdb_sink += r;
    return 0;
}

__attribute__((noinline)) static int gdb_joiner(void *arg)
{
    (void)arg;
    int r = weft_join(sleeper, NULL);
    gdb_sink += r;
    return 0;
}

__attribute__((noinline)) static int gdb_yielder(void *arg)
{
    (void)arg;
    int r = weft_yield();
    gdb_sink += r;
    return 0;
}

__attribute__((noinline)) static int gdb_inspector(void *arg)
{
    (void)arg;
    weft_gdb_stop_here();
    gdb_sink++;
    return 0;
}

static weft_coro *spawn(const char *name, weft_fn fn, int prio)
{
    struct weft_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.name = name;
    o.priority = prio;
    weft_coro *co = NULL;
    if (weft_spawn(gdb_sched, fn, NULL, &o, &co) < 0) {
        fprintf(stderr, "prog: spawn failed\n");
        return NULL;
    }
    return co;
}

int main(void)
{
    struct weft_sched_opts so;
    memset(&so, 0, sizeof so);
    so.clock = WEFT_CLOCK_MANUAL;
    if (weft_sched_new(&so, &gdb_sched) < 0 ||
        weft_event_new(gdb_sched, &ev) < 0)
        return 1;
    weft_coro *co[6];
    co[0] = sleeper = spawn("sleeper", gdb_sleeper, WEFT_PRIO_NORMAL);
    co[1] = spawn("waiter", gdb_waiter, WEFT_PRIO_NORMAL);
    co[2] = spawn("joiner", gdb_joiner, WEFT_PRIO_NORMAL);
    co[3] = spawn("yielder", gdb_yielder, WEFT_PRIO_NORMAL);
    co[4] = spawn("inspector", gdb_inspector, WEFT_PRIO_IDLE);
    struct weft_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.name = "unstarted";
    if (weft_spawn_at(gdb_sched, WEFT_SEC(7200), gdb_yielder, NULL, &o,
                      &co[5]) < 0)
        return 1;
    for (int i = 0; i < 6; i++)
        if (!co[i])
            return 1;
    sleeper_id = weft_coro_id(co[0]);
    waiter_id = weft_coro_id(co[1]);
    unstarted_id = weft_coro_id(co[5]);

    if (weft_run_once(gdb_sched, 0) != 1)
        return 1;
    weft_gdb_stop_main();

    /* The sleeper's handle is left to weft_sched_free(): the joiner may
     * free it when its join succeeds. */
    for (int i = 1; i < 6; i++)
        weft_end(co[i]);
    weft_end(co[0]);
    if (weft_run(gdb_sched) != 0)
        return 1;
    for (int i = 1; i < 6; i++)
        weft_reap(co[i], NULL);
    weft_event_free(ev);
    weft_sched_free(gdb_sched);
    puts("prog: done");
    return 0;
}
