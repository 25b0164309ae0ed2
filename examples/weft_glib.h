/*
 * weft_glib.h - run a weft scheduler inside a GLib main loop: a GSource
 * that polls weft_backend_fd(), sleeps at most weft_next_timeout() and
 * dispatches with weft_run_once(s, 0).  Header-only; used by
 * examples/glib_embed.c and tests/test-glib.c.
 *
 *     GSource *src = weft_glib_source_new(sched);
 *     g_source_attach(src, NULL);    // the default main context
 *     g_source_unref(src);
 *
 * The scheduler must have a pollable backend fd (epoll, the default).
 */
#ifndef WEFT_GLIB_H
#define WEFT_GLIB_H

#include <glib.h>

#include "weft.h"

typedef struct {
    GSource source;
    weft_sched *sched;
    gpointer tag;     /* the backend fd's poll record */
    int work_left;    /* what the last weft_run_once returned */
} WeftGlibSource;

static gboolean weft_glib_prepare(GSource *g, gint *timeout)
{
    WeftGlibSource *w = (WeftGlibSource *)g;
    int64_t t = weft_next_timeout(w->sched);
    if (t == 0) {
        *timeout = 0;
        return TRUE;
    }
    /* Round up: waking early would only spin. */
    *timeout = t < 0 ? -1 : (gint)((t + 999999) / 1000000);
    return FALSE;
}

static gboolean weft_glib_check(GSource *g)
{
    WeftGlibSource *w = (WeftGlibSource *)g;
    return (g_source_query_unix_fd(g, w->tag) & G_IO_IN) ||
           weft_next_timeout(w->sched) == 0;
}

static gboolean weft_glib_dispatch(GSource *g, GSourceFunc cb, gpointer data)
{
    WeftGlibSource *w = (WeftGlibSource *)g;
    w->work_left = weft_run_once(w->sched, 0);
    if (cb)
        return cb(data); /* the callback decides whether to stay */
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs weft_glib_funcs = {
    weft_glib_prepare, weft_glib_check, weft_glib_dispatch, NULL, NULL, NULL,
};

/* A new source for s, or NULL if s has no pollable backend fd. */
static inline GSource *weft_glib_source_new(weft_sched *s)
{
    int fd = weft_backend_fd(s);
    if (fd < 0)
        return NULL;
    GSource *g = g_source_new(&weft_glib_funcs, sizeof(WeftGlibSource));
    WeftGlibSource *w = (WeftGlibSource *)g;
    w->sched = s;
    w->work_left = 1;
    w->tag = g_source_add_unix_fd(g, fd, G_IO_IN);
    g_source_set_name(g, "weft");
    return g;
}

#endif /* WEFT_GLIB_H */
