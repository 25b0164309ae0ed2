/*
 * glib_embed.c - weft coroutines inside a GLib main loop: GLib owns the
 * loop (its own timeout keeps ticking), weft runs through a GSource.
 * A coroutine waits on a pipe that a GLib timeout writes to, another
 * sleeps; the program quits when the weft side has nothing left.
 *
 * weft-needs: glib-2.0
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "weft_glib.h"

static int pipefd[2];
static GMainLoop *loop;

static gboolean glib_tick(gpointer data)
{
    int *ticks = data;
    printf("glib: tick %d\n", ++*ticks);
    if (*ticks == 3) {
        printf("glib: writing to the pipe\n");
        (void)!write(pipefd[1], "!", 1);
    }
    return *ticks < 5 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static int reader(void *arg)
{
    char c;
    (void)arg;
    printf("weft: reader waits on the pipe\n");
    int r = weft_fd_wait(pipefd[0], WEFT_IO_READ, -1);
    if (r < 0 || read(pipefd[0], &c, 1) != 1)
        return -EIO;
    printf("weft: reader got '%c'\n", c);
    return 0;
}

static int sleeper(void *arg)
{
    (void)arg;
    for (int i = 1; i <= 3; i++) {
        weft_sleep_for(WEFT_MSEC(15));
        printf("weft: sleeper woke %d\n", i);
    }
    return 0;
}

/* Called after each weft dispatch: stop GLib when weft is done. */
static gboolean after_dispatch(gpointer data)
{
    WeftGlibSource *w = data;
    if (!w->work_left) {
        g_main_loop_quit(loop);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

int main(void)
{
    int ticks = 0;
    weft_sched *s = weft_sched_default();
    if (!s || pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) != 0)
        return 1;
    weft_spawn(s, reader, NULL, NULL, NULL);
    weft_spawn(s, sleeper, NULL, NULL, NULL);

    loop = g_main_loop_new(NULL, FALSE);
    GSource *src = weft_glib_source_new(s);
    g_source_set_callback(src, after_dispatch, src, NULL);
    g_source_attach(src, NULL);
    g_timeout_add(10, glib_tick, &ticks);
    g_main_loop_run(loop);
    g_source_unref(src);
    g_main_loop_unref(loop);
    printf("done: weft finished inside GLib's loop\n");
    close(pipefd[0]);
    close(pipefd[1]);
    return 0;
}
