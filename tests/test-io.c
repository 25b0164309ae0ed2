/*
 * test-io.c - fd waits, readiness callbacks, forgetting fds, backends,
 * the EINTR policy and embedding, each case run on every backend.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"

#include "backends.h"

static int backends[3];
#define NB weft_test_backends(backends)

static weft_sched *new_sched(int backend, int manual)
{
    struct weft_sched_opts o = {0};
    weft_sched *s;
    o.backend = backend;
    o.clock = manual ? WEFT_CLOCK_MANUAL : WEFT_CLOCK_MONOTONIC;
    ASSERT_OK(weft_sched_new(&o, &s));
    return s;
}

static void make_pipe(int p[2])
{
    ASSERT_OK(pipe2(p, O_CLOEXEC | O_NONBLOCK));
}

/* ---------------------------------------------------------------- waits */

struct rw {
    int fd;
    int result;
    int64_t deadline;
    char got;
};

static int reader(void *arg)
{
    struct rw *a = arg;
    a->result = weft_fd_wait(a->fd, WEFT_IO_READ, a->deadline);
    if (a->result > 0)
        ASSERT_EQ(read(a->fd, &a->got, 1), 1);
    return 0;
}

static int writer(void *arg)
{
    struct rw *a = arg;
    ASSERT_OK(weft_yield()); /* let the reader block first */
    ASSERT_EQ(write(a->fd, "x", 1), 1);
    return 0;
}

TEST(wait_wakes_on_data)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int p[2];
        make_pipe(p);
        struct rw r = {p[0], 0, -1, 0}, w = {p[1], 0, -1, 0};
        ASSERT_OK(weft_spawn(s, reader, &r, NULL, NULL));
        ASSERT_OK(weft_spawn(s, writer, &w, NULL, NULL));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(r.result, (int)WEFT_IO_READ);
        ASSERT_EQ(r.got, 'x');
        close(p[0]);
        close(p[1]);
        ASSERT_OK(weft_sched_free(s));
    }
}

TEST(wait_deadline_times_out_on_manual_clock)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 1);
        int p[2];
        make_pipe(p);
        struct rw r = {p[0], 0, WEFT_SEC(5), 0};
        ASSERT_OK(weft_spawn(s, reader, &r, NULL, NULL));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(r.result, -ETIMEDOUT);
        ASSERT_EQ(weft_now(s), WEFT_SEC(5));
        /* The timed-out waiter is gone: data arriving later is harmless. */
        ASSERT_EQ(write(p[1], "y", 1), 1);
        ASSERT_EQ(weft_run_once(s, 0), 0);
        close(p[0]);
        close(p[1]);
        ASSERT_OK(weft_sched_free(s));
    }
}

TEST(several_waiters_on_one_fd)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int sv[2];
        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv));
        /* Two readers and nothing to read yet; one writer-waiter that is
         * ready at once on the same fd. */
        struct rw r1 = {sv[0], 0, -1, 0}, r2 = {sv[0], 0, -1, 0};
        weft_coro *c1, *c2;
        ASSERT_OK(weft_spawn(s, reader, &r1, NULL, &c1));
        ASSERT_OK(weft_spawn(s, reader, &r2, NULL, &c2));
        ASSERT_EQ(weft_run_once(s, 0), 1); /* both block */
        ASSERT_EQ(r1.result, 0);
        ASSERT_EQ(write(sv[1], "ab", 2), 2);
        ASSERT_EQ(weft_run_once(s, -1), 1); /* the poll wakes both */
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(r1.result, (int)WEFT_IO_READ);
        ASSERT_EQ(r2.result, (int)WEFT_IO_READ);
        ASSERT_EQ(r1.got + r2.got, 'a' + 'b');
        ASSERT_OK(weft_reap(c1, NULL));
        ASSERT_OK(weft_reap(c2, NULL));
        close(sv[0]);
        close(sv[1]);
        ASSERT_OK(weft_sched_free(s));
    }
}

struct both {
    int fd;
    int rd, wr;
};

static int wait_write(void *arg)
{
    struct both *a = arg;
    a->wr = weft_fd_wait(a->fd, WEFT_IO_WRITE, -1);
    return 0;
}

static int wait_read(void *arg)
{
    struct both *a = arg;
    a->rd = weft_fd_wait(a->fd, WEFT_IO_READ, -1);
    return 0;
}

TEST(reader_and_writer_wait_on_one_fd)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int sv[2];
        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv));
        struct both a = {sv[0], 0, 0};
        ASSERT_OK(weft_spawn(s, wait_read, &a, NULL, NULL));
        ASSERT_OK(weft_spawn(s, wait_write, &a, NULL, NULL));
        ASSERT_EQ(weft_run_once(s, 0), 1);
        ASSERT_EQ(weft_run_once(s, 0), 1);
        /* Writable at once; not readable. */
        ASSERT_EQ(a.wr, (int)WEFT_IO_WRITE);
        ASSERT_EQ(a.rd, 0);
        ASSERT_EQ(write(sv[1], "z", 1), 1);
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(a.rd, (int)WEFT_IO_READ);
        close(sv[0]);
        close(sv[1]);
        ASSERT_OK(weft_sched_free(s));
    }
}

static int closer(void *arg)
{
    int fd = *(int *)arg;
    ASSERT_OK(weft_yield());
    ASSERT_OK(weft_fd_close(fd));
    return 0;
}

TEST(closing_an_fd_wakes_its_waiters_with_ebadf)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int p[2];
        make_pipe(p);
        struct rw r1 = {p[0], 0, -1, 0}, r2 = {p[0], 0, -1, 0};
        ASSERT_OK(weft_spawn(s, reader, &r1, NULL, NULL));
        ASSERT_OK(weft_spawn(s, reader, &r2, NULL, NULL));
        ASSERT_OK(weft_spawn(s, closer, &p[0], NULL, NULL));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(r1.result, -EBADF);
        ASSERT_EQ(r2.result, -EBADF);
        close(p[1]);
        ASSERT_OK(weft_sched_free(s));
    }
}

TEST(ending_a_waiter_removes_it)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int p[2];
        make_pipe(p);
        struct rw r = {p[0], 0, -1, 0};
        weft_coro *c;
        ASSERT_OK(weft_spawn(s, reader, &r, NULL, &c));
        ASSERT_EQ(weft_run_once(s, 0), 1);
        ASSERT_OK(weft_end(c));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(r.result, -ECANCELED);
        ASSERT_OK(weft_reap(c, NULL));
        /* Nobody waits now: data must not touch the freed coroutine. */
        ASSERT_EQ(write(p[1], "q", 1), 1);
        ASSERT_EQ(weft_run_once(s, 0), 0);
        close(p[0]);
        close(p[1]);
        ASSERT_OK(weft_sched_free(s));
    }
}

static int raise_target(void *arg)
{
    struct rw *a = arg;
    a->result = weft_fd_wait(a->fd, WEFT_IO_READ, -1);
    return 0;
}

TEST(raise_into_an_fd_waiter)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int p[2];
        make_pipe(p);
        struct rw r = {p[0], 0, -1, 0};
        weft_coro *c;
        ASSERT_OK(weft_spawn(s, raise_target, &r, NULL, &c));
        ASSERT_EQ(weft_run_once(s, 0), 1);
        ASSERT_OK(weft_raise(c, -ECONNRESET));
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(r.result, -ECONNRESET);
        ASSERT_OK(weft_reap(c, NULL));
        close(p[0]);
        close(p[1]);
        ASSERT_OK(weft_sched_free(s));
    }
}

static int wait_file(void *arg)
{
    int *fd = arg;
    *fd = weft_fd_wait(*fd, WEFT_IO_READ | WEFT_IO_WRITE, -1);
    return 0;
}

TEST(regular_files_are_always_ready)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        char path[] = "/tmp/weft-io-XXXXXX";
        int fd = mkstemp(path);
        ASSERT_GE(fd, 0);
        unlink(path);
        int v = fd;
        ASSERT_OK(weft_spawn(s, wait_file, &v, NULL, NULL));
        ASSERT_OK(weft_run(s));
        if (backends[b] == WEFT_BACKEND_EPOLL)
            ASSERT_EQ(v, (int)(WEFT_IO_READ | WEFT_IO_WRITE));
        else
            ASSERT_GT(v, 0); /* poll reports files ready too */
        close(fd);
        ASSERT_OK(weft_sched_free(s));
    }
}

struct bad {
    int r[5];
};

static int bad_args(void *arg)
{
    struct bad *b = arg;
    b->r[0] = weft_fd_wait(-1, WEFT_IO_READ, -1);
    b->r[1] = weft_fd_wait(0, 0, -1);
    b->r[2] = weft_fd_wait(0, WEFT_IO_ERROR, -1);
    b->r[3] = weft_fd_wait(0, WEFT_IO_READ, -2);
    b->r[4] = weft_fd_wait(987, WEFT_IO_READ, -1); /* not open */
    return 0;
}

TEST(fd_wait_bad_input)
{
    /* A closed fd is -EBADF on each backend (epoll learns it from
     * epoll_ctl, the others check first). */
    for (int i = 0; i < NB; i++) {
        weft_sched *sb = new_sched(backends[i], 0);
        struct bad bb;
        ASSERT_OK(weft_spawn(sb, bad_args, &bb, NULL, NULL));
        ASSERT_OK(weft_run(sb));
        ASSERT_EQ(bb.r[4], -EBADF);
        ASSERT_OK(weft_sched_free(sb));
    }
    weft_sched *s = new_sched(WEFT_BACKEND_AUTO, 0);
    struct bad b;
    ASSERT_ERR(weft_fd_wait(0, WEFT_IO_READ, -1), -EINVAL); /* no coroutine */
    ASSERT_OK(weft_spawn(s, bad_args, &b, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(b.r[0], -EINVAL);
    ASSERT_EQ(b.r[1], -EINVAL);
    ASSERT_EQ(b.r[2], -EINVAL);
    ASSERT_EQ(b.r[3], -EINVAL);
    ASSERT_EQ(b.r[4], -EBADF);
    ASSERT_ERR(weft_fd_forget(s, -1), -EINVAL);
    ASSERT_OK(weft_fd_forget(s, 555)); /* unknown fd: no-op */
    ASSERT_ERR(weft_fd_close(-1), -EINVAL);
    ASSERT_ERR(weft_fd_nonblock(-1), -EBADF);
    ASSERT_OK(weft_sched_free(s));
}

TEST(table_growth_keeps_waiters)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int p[2], q[2];
        make_pipe(p);
        make_pipe(q);
        /* A waiter on a low fd, then a wait on a high fd that grows the
         * table under it. */
        int high = fcntl(q[0], F_DUPFD_CLOEXEC, 300);
        ASSERT_GE(high, 300);
        struct rw r1 = {p[0], 0, -1, 0}, r2 = {high, 0, -1, 0};
        ASSERT_OK(weft_spawn(s, reader, &r1, NULL, NULL));
        ASSERT_EQ(weft_run_once(s, 0), 1);
        ASSERT_OK(weft_spawn(s, reader, &r2, NULL, NULL));
        ASSERT_EQ(weft_run_once(s, 0), 1);
        ASSERT_EQ(write(p[1], "1", 1), 1);
        ASSERT_EQ(write(q[1], "2", 1), 1);
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(r1.got, '1');
        ASSERT_EQ(r2.got, '2');
        close(p[0]);
        close(p[1]);
        close(q[0]);
        close(q[1]);
        close(high);
        ASSERT_OK(weft_sched_free(s));
    }
}

/* --------------------------------------------------------- watchers */

struct wstate {
    int calls;
    uint32_t last;
    int free_in_cb;
    int stop_after;
    weft_io *w;
};

static void on_io(weft_io *w, int fd, uint32_t revents, void *arg)
{
    struct wstate *st = arg;
    char c;
    st->calls++;
    st->last = revents;
    if (revents & WEFT_IO_READ)
        (void)!read(fd, &c, 1);
    if (st->free_in_cb)
        ASSERT_OK(weft_io_free(w));
    else if (st->stop_after && st->calls >= st->stop_after)
        ASSERT_OK(weft_io_stop(w));
}

TEST(watcher_fires_level_triggered_and_stops)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int p[2];
        make_pipe(p);
        struct wstate st = {0, 0, 0, 2, NULL};
        weft_io *w, *w2;
        ASSERT_OK(weft_io_new(s, p[0], WEFT_IO_READ, on_io, &st, &w));
        ASSERT_EQ(weft_io_fd(w), p[0]);
        ASSERT_ERR(weft_io_new(s, p[0], WEFT_IO_READ, on_io, &st, &w2),
                   -EEXIST);
        ASSERT_NULL(w2);
        ASSERT_EQ(write(p[1], "abc", 3), 3);
        ASSERT_EQ(weft_run_once(s, 0), 1); /* an active watcher is work */
        ASSERT_EQ(st.calls, 1); /* one byte read per call */
        ASSERT_EQ(st.last, WEFT_IO_READ);
        ASSERT_EQ(weft_run_once(s, 0), 0); /* it stopped itself */
        ASSERT_EQ(st.calls, 2); /* still readable: called again */
        ASSERT_OK(weft_run_once(s, 0));
        ASSERT_EQ(st.calls, 2); /* stopped */
        ASSERT_OK(weft_io_modify(w, WEFT_IO_READ));
        st.stop_after = 0;
        ASSERT_EQ(weft_run_once(s, 0), 1); /* an active watcher is work */
        ASSERT_EQ(st.calls, 3);
        ASSERT_OK(weft_io_free(w));
        ASSERT_EQ(weft_run_once(s, 0), 0);
        close(p[0]);
        close(p[1]);
        ASSERT_OK(weft_sched_free(s));
    }
}

TEST(watcher_free_in_callback_and_forget)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int p[2];
        make_pipe(p);
        struct wstate st = {0, 0, 1, 0, NULL};
        weft_io *w;
        ASSERT_OK(weft_io_new(s, p[0], WEFT_IO_READ, on_io, &st, &w));
        ASSERT_EQ(write(p[1], "ab", 2), 2);
        ASSERT_OK(weft_run_once(s, 0));
        ASSERT_EQ(st.calls, 1);
        ASSERT_OK(weft_run_once(s, 0));
        ASSERT_EQ(st.calls, 1); /* freed */
        /* Forgetting the fd stops a watcher; modify then says -EBADF. */
        struct wstate st2 = {0, 0, 0, 0, NULL};
        ASSERT_OK(weft_io_new(s, p[0], WEFT_IO_READ, on_io, &st2, &w));
        ASSERT_OK(weft_fd_forget(s, p[0]));
        ASSERT_ERR(weft_io_modify(w, WEFT_IO_READ), -EBADF);
        ASSERT_OK(weft_run_once(s, 0));
        ASSERT_EQ(st2.calls, 0);
        ASSERT_OK(weft_io_free(w));
        close(p[0]);
        close(p[1]);
        ASSERT_OK(weft_sched_free(s));
    }
}

TEST(watcher_bad_input_and_sched_free_frees_watchers)
{
    weft_sched *s = new_sched(WEFT_BACKEND_AUTO, 0);
    weft_io *w;
    int p[2];
    make_pipe(p);
    ASSERT_ERR(weft_io_new(s, p[0], WEFT_IO_READ, on_io, NULL, NULL), -EINVAL);
    ASSERT_ERR(weft_io_new(s, p[0], WEFT_IO_READ, NULL, NULL, &w), -EINVAL);
    ASSERT_NULL(w);
    ASSERT_ERR(weft_io_new(s, -1, WEFT_IO_READ, on_io, NULL, &w), -EINVAL);
    ASSERT_ERR(weft_io_new(s, p[0], 0, on_io, NULL, &w), -EINVAL);
    ASSERT_ERR(weft_io_new(s, 999, WEFT_IO_READ, on_io, NULL, &w), -EBADF);
    ASSERT_ERR(weft_io_modify(NULL, 0), -EINVAL);
    ASSERT_ERR(weft_io_stop(NULL), -EINVAL);
    ASSERT_ERR(weft_io_free(NULL), -EINVAL);
    ASSERT_ERR(weft_io_fd(NULL), -EINVAL);
    ASSERT_OK(weft_io_new(s, p[0], WEFT_IO_READ, on_io, NULL, &w));
    ASSERT_OK(weft_sched_free(s)); /* frees w: valgrind/ASan check it */
    close(p[0]);
    close(p[1]);
}

/* --------------------------------------------------------- backends */

TEST(backend_choice)
{
    weft_sched *s;
    struct weft_sched_opts o = {0};
    s = new_sched(WEFT_BACKEND_EPOLL, 0);
    ASSERT_STR_EQ(weft_backend_name(s), "epoll");
    ASSERT_GE(weft_backend_fd(s), 0);
    ASSERT_OK(weft_sched_free(s));
    s = new_sched(WEFT_BACKEND_POLL, 0);
    ASSERT_STR_EQ(weft_backend_name(s), "poll");
    ASSERT_ERR(weft_backend_fd(s), -EOPNOTSUPP);
    ASSERT_OK(weft_sched_free(s));
    if (weft_test_backends(backends) == 3) {
        s = new_sched(WEFT_BACKEND_URING, 0);
        ASSERT_STR_EQ(weft_backend_name(s), "io_uring");
        ASSERT_GE(weft_backend_fd(s), 0);
        ASSERT_OK(weft_sched_free(s));
        ASSERT_OK(setenv("WEFT_BACKEND", "io_uring", 1));
        s = new_sched(WEFT_BACKEND_AUTO, 0);
        ASSERT_STR_EQ(weft_backend_name(s), "io_uring");
        ASSERT_OK(weft_sched_free(s));
    }
    o.backend = 99;
    ASSERT_ERR(weft_sched_new(&o, &s), -EINVAL);
    /* The environment picks the backend when the option says auto. */
    ASSERT_OK(setenv("WEFT_BACKEND", "poll", 1));
    s = new_sched(WEFT_BACKEND_AUTO, 0);
    ASSERT_STR_EQ(weft_backend_name(s), "poll");
    ASSERT_OK(weft_sched_free(s));
    ASSERT_OK(setenv("WEFT_BACKEND", "nosuch", 1));
    o.backend = 0;
    ASSERT_ERR(weft_sched_new(&o, &s), -EINVAL);
    ASSERT_OK(unsetenv("WEFT_BACKEND"));
    s = new_sched(WEFT_BACKEND_AUTO, 0);
    int avail[3];
    /* Automatic: io_uring where available, else epoll. */
    ASSERT_STR_EQ(weft_backend_name(s), weft_test_backends(avail) == 3
                                            ? "io_uring" : "epoll");
    ASSERT_OK(weft_sched_free(s));
}

/* The embedding protocol: poll the backend fd, wait at most
 * weft_next_timeout, then run one iteration without waiting. */
static int embed_reader(void *arg)
{
    struct rw *a = arg;
    a->result = weft_fd_wait(a->fd, WEFT_IO_READ, -1);
    return 0;
}

static void *late_writer(void *arg)
{
    int fd = *(int *)arg;
    usleep(20000);
    (void)!write(fd, "e", 1);
    return NULL;
}

TEST(embedding_in_a_plain_poll_loop)
{
    weft_sched *s = new_sched(WEFT_BACKEND_EPOLL, 0);
    int p[2];
    make_pipe(p);
    struct rw r = {p[0], 0, -1, 0};
    pthread_t th;
    ASSERT_OK(weft_spawn(s, embed_reader, &r, NULL, NULL));
    ASSERT_OK(pthread_create(&th, NULL, late_writer, &p[1]));
    int rounds = 0, more = 1;
    while (more && rounds < 1000) {
        struct pollfd pf = {weft_backend_fd(s), POLLIN, 0};
        int64_t t = weft_next_timeout(s);
        int ms = t < 0 ? 5000 : (int)((t + 999999) / 1000000);
        ASSERT_GE(poll(&pf, 1, ms), 0);
        more = weft_run_once(s, 0);
        ASSERT_GE(more, 0);
        rounds++;
    }
    ASSERT_OK(pthread_join(th, NULL));
    ASSERT_EQ(r.result, (int)WEFT_IO_READ);
    ASSERT_LT(rounds, 10); /* woke by the fd, not by spinning */
    close(p[0]);
    close(p[1]);
    ASSERT_OK(weft_sched_free(s));
}

TEST(waiting_on_io_is_not_a_deadlock)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int p[2];
        make_pipe(p);
        struct rw r = {p[0], 0, -1, 0};
        pthread_t th;
        ASSERT_OK(weft_spawn(s, reader, &r, NULL, NULL));
        ASSERT_OK(pthread_create(&th, NULL, late_writer, &p[1]));
        ASSERT_OK(weft_run(s)); /* not -EDEADLK: I/O can end the wait */
        ASSERT_OK(pthread_join(th, NULL));
        ASSERT_EQ(r.got, 'e');
        close(p[0]);
        close(p[1]);
        ASSERT_OK(weft_sched_free(s));
    }
}

/* --------------------------------------------------------- EINTR */

static void on_usr1(int sig)
{
    (void)sig;
}

struct kicker {
    pthread_t target;
    int wfd;
};

static void *kick(void *arg)
{
    struct kicker *k = arg;
    usleep(20000);
    pthread_kill(k->target, SIGUSR1);
    usleep(20000);
    (void)!write(k->wfd, "k", 1);
    return NULL;
}

static void eintr_case(int backend, int report, int expect)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART: waits see EINTR */
    sigemptyset(&sa.sa_mask);
    ASSERT_OK(sigaction(SIGUSR1, &sa, NULL));
    struct weft_sched_opts o = {0};
    weft_sched *s;
    o.backend = backend;
    o.eintr = report;
    ASSERT_OK(weft_sched_new(&o, &s));
    int p[2];
    make_pipe(p);
    struct rw r = {p[0], 0, -1, 0};
    struct kicker k = {pthread_self(), p[1]};
    pthread_t th;
    ASSERT_OK(weft_spawn(s, reader, &r, NULL, NULL));
    ASSERT_OK(pthread_create(&th, NULL, kick, &k));
    ASSERT_OK(weft_run(s));
    ASSERT_OK(pthread_join(th, NULL));
    ASSERT_EQ(r.result, expect);
    close(p[0]);
    close(p[1]);
    ASSERT_OK(weft_sched_free(s));
}

TEST(eintr_policy_restart_by_default)
{
    for (int b = 0; b < NB; b++)
        eintr_case(backends[b], 0, (int)WEFT_IO_READ);
}

TEST(eintr_policy_report)
{
    for (int b = 0; b < NB; b++)
        eintr_case(backends[b], 1, -EINTR);
    /* The run-time switch does the same. */
    weft_sched *s = new_sched(WEFT_BACKEND_AUTO, 0);
    ASSERT_OK(weft_sched_set_eintr(s, 1));
    ASSERT_OK(weft_sched_set_eintr(s, 0));
    ASSERT_OK(weft_sched_free(s));
}

TEST(nonblock_helper)
{
    int p[2];
    ASSERT_OK(pipe(p));
    ASSERT_EQ(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
    ASSERT_OK(weft_fd_nonblock(p[0]));
    ASSERT_NE(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
    ASSERT_OK(weft_fd_nonblock(p[0])); /* idempotent */
    close(p[0]);
    close(p[1]);
}

TEST(default_io_timeout_option)
{
    struct weft_sched_opts o = {0};
    weft_sched *s;
    o.io_timeout = -5;
    ASSERT_ERR(weft_sched_new(&o, &s), -EINVAL);
    o.io_timeout = WEFT_MSEC(250);
    ASSERT_OK(weft_sched_new(&o, &s));
    ASSERT_EQ(weft_sched_io_timeout(s), WEFT_MSEC(250));
    ASSERT_OK(weft_sched_set_io_timeout(s, 0));
    ASSERT_EQ(weft_sched_io_timeout(s), 0);
    ASSERT_ERR(weft_sched_set_io_timeout(s, -1), -EINVAL);
    ASSERT_OK(weft_sched_free(s));
}

/* --------------------------------------------------------- fork */

#include <sys/wait.h>

static int fork_child_reader(void *arg)
{
    struct rw *a = arg;
    a->result = weft_fd_wait(a->fd, WEFT_IO_READ, -1);
    if (a->result > 0)
        ASSERT_EQ(read(a->fd, &a->got, 1), 1);
    return 0;
}

TEST(after_fork_gives_the_child_a_working_scheduler)
{
    for (int b = 0; b < NB; b++) {
        weft_sched *s = new_sched(backends[b], 0);
        int p[2], q[2];
        make_pipe(p);
        make_pipe(q);
        /* The parent watches p[0] with a coroutine suspended in a wait. */
        struct rw r = {p[0], 0, -1, 0};
        ASSERT_OK(weft_spawn(s, fork_child_reader, &r, NULL, NULL));
        ASSERT_EQ(weft_run_once(s, 0), 1);
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            /* Child: the suspended waiter survives; a new wait works; the
             * parent's registration is not disturbed. */
            if (weft_sched_after_fork(s) != 0)
                _exit(10);
            struct rw r2 = {q[0], 0, -1, 0};
            if (weft_spawn(s, fork_child_reader, &r2, NULL, NULL) != 0)
                _exit(11);
            if (write(q[1], "c", 1) != 1 || write(p[1], "d", 1) != 1)
                _exit(12);
            if (weft_run(s) != 0)
                _exit(13);
            if (r2.got != 'c' || r.got != 'd')
                _exit(14);
            _exit(0);
        }
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        ASSERT(WIFEXITED(st));
        ASSERT_EQ(WEXITSTATUS(st), 0);
        /* The child consumed 'd'; the parent's waiter still works. */
        ASSERT_EQ(r.result, 0);
        ASSERT_EQ(write(p[1], "e", 1), 1);
        ASSERT_OK(weft_run(s));
        ASSERT_EQ(r.got, 'e');
        close(p[0]);
        close(p[1]);
        close(q[0]);
        close(q[1]);
        ASSERT_OK(weft_sched_free(s));
    }
}

static int fork_in_coro(void *arg)
{
    int *r = arg;
    *r = weft_sched_after_fork(NULL);
    return 0;
}

TEST(after_fork_refuses_a_running_scheduler)
{
    weft_sched *s = new_sched(WEFT_BACKEND_AUTO, 0);
    int r = 0;
    ASSERT_OK(weft_spawn(s, fork_in_coro, &r, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(r, -EBUSY);
    ASSERT_OK(weft_sched_free(s));
}

/* --------------------------------------------------------- proactor */

#include "internal.h"

struct opcase {
    int fd;
    int64_t deadline;
    char buf[8];
    int result;
};

static int op_reader(void *arg)
{
    struct opcase *c = arg;
    struct weft__op op;
    memset(&op, 0, sizeof op);
    op.kind = WEFT__OP_READ;
    op.fd = c->fd;
    op.buf = c->buf;
    op.len = sizeof c->buf;
    op.off = -1;
    c->result = weft__io_op(weft_coro_sched(weft_self()), &op, c->deadline);
    return 0;
}

static weft_sched *uring_or_skip(int manual)
{
    int avail[3];
    if (weft_test_backends(avail) < 3)
        return NULL;
    return new_sched(WEFT_BACKEND_URING, manual);
}

TEST(proactor_read_completes)
{
    weft_sched *s = uring_or_skip(0);
    if (!s)
        SKIP("io_uring unavailable here");
    ASSERT(weft__io_proactor(s));
    int p[2];
    make_pipe(p);
    struct opcase c = {p[0], -1, {0}, 0};
    ASSERT_OK(weft_spawn(s, op_reader, &c, NULL, NULL));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_EQ(write(p[1], "hey", 3), 3);
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(c.result, 3);
    ASSERT_STR_EQ(c.buf, "hey");
    close(p[0]);
    close(p[1]);
    ASSERT_OK(weft_sched_free(s));
}

TEST(proactor_deadline_cancels_the_operation)
{
    weft_sched *s = uring_or_skip(1);
    if (!s)
        SKIP("io_uring unavailable here");
    int p[2];
    make_pipe(p);
    struct opcase c = {p[0], WEFT_SEC(2), {0}, 0};
    ASSERT_OK(weft_spawn(s, op_reader, &c, NULL, NULL));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(c.result, -ETIMEDOUT);
    ASSERT_EQ(weft_now(s), WEFT_SEC(2));
    /* The cancelled read is gone: this byte stays in the pipe. */
    ASSERT_EQ(write(p[1], "z", 1), 1);
    ASSERT_EQ(weft_run_once(s, 0), 0);
    char ch;
    ASSERT_EQ(read(p[0], &ch, 1), 1);
    ASSERT_EQ(ch, 'z');
    close(p[0]);
    close(p[1]);
    ASSERT_OK(weft_sched_free(s));
}

TEST(proactor_end_cancels_the_operation)
{
    weft_sched *s = uring_or_skip(0);
    if (!s)
        SKIP("io_uring unavailable here");
    int p[2];
    make_pipe(p);
    struct opcase c = {p[0], -1, {0}, 0};
    weft_coro *co;
    ASSERT_OK(weft_spawn(s, op_reader, &c, NULL, &co));
    ASSERT_EQ(weft_run_once(s, 0), 1);
    ASSERT_OK(weft_end(co));
    ASSERT_OK(weft_run(s));
    ASSERT_EQ(c.result, -ECANCELED);
    ASSERT_OK(weft_reap(co, NULL));
    close(p[0]);
    close(p[1]);
    ASSERT_OK(weft_sched_free(s));
}
