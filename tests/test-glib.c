/*
 * test-glib.c - weft driven by a real GLib main loop (examples/weft_glib.h).
 *
 * weft-needs: glib-2.0
 */
#include <fcntl.h>
#include <unistd.h>

#include "test.h"
#include "../examples/weft_glib.h"

struct world {
    int pipefd[2];
    int glib_ticks;
    int ticks_at_read;     /* GLib ticks seen when the reader woke */
    int sleeps;
    char got;
    GMainLoop *loop;
};

static gboolean tick(gpointer data)
{
    struct world *w = data;
    if (++w->glib_ticks == 3)
        ASSERT_EQ(write(w->pipefd[1], "g", 1), 1);
    return G_SOURCE_CONTINUE;
}

static int reader(void *arg)
{
    struct world *w = arg;
    ASSERT_EQ(weft_fd_wait(w->pipefd[0], WEFT_IO_READ, -1), (int)WEFT_IO_READ);
    ASSERT_EQ(read(w->pipefd[0], &w->got, 1), 1);
    w->ticks_at_read = w->glib_ticks;
    return 0;
}

static int sleeper(void *arg)
{
    struct world *w = arg;
    for (int i = 0; i < 4; i++) {
        ASSERT_OK(weft_sleep_for(WEFT_MSEC(5)));
        w->sleeps++;
    }
    return 0;
}

static struct world *the_world;

static gboolean quit_when_done(gpointer data)
{
    WeftGlibSource *src = data;
    if (!src->work_left)
        g_main_loop_quit(the_world->loop);
    return G_SOURCE_CONTINUE;
}

static gboolean watchdog(gpointer data)
{
    (void)data;
    FAIL("the GLib loop did not finish in time");
    return G_SOURCE_REMOVE;
}

TEST(weft_runs_inside_a_glib_main_loop)
{
    struct world w = {{-1, -1}, 0, 0, 0, 0, NULL};
    weft_sched *s;
    the_world = &w;
    ASSERT_OK(weft_sched_new(NULL, &s));
    ASSERT_OK(pipe2(w.pipefd, O_CLOEXEC | O_NONBLOCK));
    ASSERT_OK(weft_spawn(s, reader, &w, NULL, NULL));
    ASSERT_OK(weft_spawn(s, sleeper, &w, NULL, NULL));

    GMainContext *ctx = g_main_context_new();
    w.loop = g_main_loop_new(ctx, FALSE);
    GSource *src = weft_glib_source_new(s);
    ASSERT_NOT_NULL(src);
    g_source_set_callback(src, quit_when_done, src, NULL);
    g_source_attach(src, ctx);
    GSource *t = g_timeout_source_new(2);
    g_source_set_callback(t, tick, &w, NULL);
    g_source_attach(t, ctx);
    GSource *dog = g_timeout_source_new(10000);
    g_source_set_callback(dog, watchdog, NULL, NULL);
    g_source_attach(dog, ctx);

    g_main_loop_run(w.loop);

    ASSERT_EQ(w.got, 'g');
    ASSERT_GE(w.ticks_at_read, 3); /* woken by the fd, after tick 3 */
    ASSERT_EQ(w.sleeps, 4);
    ASSERT_GE(w.glib_ticks, 3);    /* GLib's own sources kept running */
    ASSERT_EQ(weft_sched_count(s), 0);

    g_source_destroy(src);
    g_source_unref(src);
    g_source_destroy(t);
    g_source_unref(t);
    g_source_destroy(dog);
    g_source_unref(dog);
    g_main_loop_unref(w.loop);
    g_main_context_unref(ctx);
    close(w.pipefd[0]);
    close(w.pipefd[1]);
    ASSERT_OK(weft_sched_free(s));
}
