/*
 * weft/trace.h - an opt-in tracer: what every coroutine of a scheduler
 * does over time (runs, waits on what, waits for its turn), written as
 * Chrome/Perfetto trace-event JSON.  Included by weft.h; include that.
 *
 * Open the file in Perfetto's UI (ui.perfetto.dev, "Open trace file"),
 * in chrome://tracing, or in speedscope.  docs/tracing.md describes the
 * events, shows a trace of examples/demo.c, and gives the costs.
 *
 * One track per coroutine (tid = weft_coro_id(), named after the
 * coroutine) and one for the loop (tid 0), all under one process track
 * (pid = weft_trace_opts.pid).  On a coroutine's track, consecutive
 * spans ("X" events, times in µs of the scheduler's clock):
 *   - a run span, named after the coroutine, while it runs;
 *   - a wait span while it is blocked, named after what it waits on:
 *     "sleep", "fd 5 readable", "fd 5 writable", "recv on fd 5" (an
 *     io_uring operation), "join #7", "mutex", "cond", "semaphore",
 *     "event", "wait group", "future", "channel send", "channel receive";
 *   - a "ready" span from the moment it can run (spawned, woken, or
 *     yielded) until it does.
 */
#ifndef WEFT_TRACE_H
#define WEFT_TRACE_H

#include "../weft.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Options for weft_trace_start().  Zero-initialise; zero is default. */
struct weft_trace_opts {
    int64_t pid;              /**< "pid" of every event: the process
                                   track the coroutines appear under.
                                   0: the process id.  Give each traced
                                   scheduler its own to merge their files
                                   into one view. */
    const char *process_name; /**< Name of that track (copied, at most
                                   WEFT_NAME_MAX bytes kept); NULL:
                                   "weft scheduler". */
    size_t buffer_size;       /**< Bytes of JSON buffered between writes
                                   to the file: the tracer's whole memory.
                                   0: 64 KiB; otherwise at least 4096. */
};

/**
 * Start tracing @p s into a new file at @p path (created or truncated).
 * From now on every switch, wake-up and spawn on @p s adds events; the
 * coroutines that already exist get their track at once, with a span for
 * what they are doing.  Tracing uses a global switch hook (see
 * weft_hook_add()), so it costs nothing while off; on, a few hundred ns
 * per switch and per wake-up, and no allocation after this call.
 * The file is valid JSON only once weft_trace_stop() (or
 * weft_sched_free()) has finished it.
 * @param s     Scheduler, or NULL for the current one.
 * @param path  File to write.
 * @param opts  Options, or NULL for the defaults.
 * @return 0.
 * @retval -EINVAL  path NULL or empty, a bad option, or s belongs to
 *                  another thread.
 * @retval -EBUSY   s is already being traced.
 * @retval -ENOMEM  no memory for the buffer.
 * @retval other    the negative errno of opening @p path (-ENOENT,
 *                  -EACCES ...).
 * @context The owning thread, anywhere (outside the scheduler, in a
 *          coroutine, a callback or a hook).
 */
WEFT_API int weft_trace_start(weft_sched *s, const char *path,
                              const struct weft_trace_opts *opts);

/**
 * As weft_trace_start(), writing to the open stream @p f instead (a pipe,
 * stdout, an open_memstream()).  weft_trace_stop() flushes @p f but does
 * not close it; the caller must keep it open until then.
 * @retval -EINVAL  f NULL, or as weft_trace_start().
 * @retval -EBUSY, -ENOMEM  as weft_trace_start().
 */
WEFT_API int weft_trace_start_file(weft_sched *s, FILE *f,
                                   const struct weft_trace_opts *opts);

/**
 * Stop tracing @p s: end the spans still open at the current time (a
 * coroutine running, waiting or ready now gets a span that ends here),
 * finish the JSON, flush it, and close the file weft_trace_start()
 * opened.  Freeing a traced scheduler does the same, but cannot report
 * an error: stop first to see one.
 * @param s  Scheduler, or NULL for the current one.
 * @return 0.
 * @retval -EINVAL  s belongs to another thread.
 * @retval -ENOENT  s is not being traced.
 * @retval other    the first write, flush or close error (e.g. -ENOSPC,
 *                  -EIO); tracing is stopped all the same and the file
 *                  is incomplete.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_trace_stop(weft_sched *s);

/**
 * Whether @p s is being traced.
 * @return 1 or 0; -EINVAL if s belongs to another thread.
 */
WEFT_API int weft_trace_active(weft_sched *s);

/**
 * Add an instant event named @p name (copied, at most 63 bytes kept) at
 * the current time on the track of the running coroutine, or of the loop
 * outside one: a mark to find a moment in the trace ("request 12 done").
 * Nothing happens when @p s is not being traced.
 * @return 1 if a mark was written, 0 if s is not being traced.
 * @retval -EINVAL  name NULL, or s belongs to another thread.
 * @context The owning thread, anywhere.
 */
WEFT_API int weft_trace_mark(weft_sched *s, const char *name);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_TRACE_H */
