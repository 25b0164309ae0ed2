/*
 * doorbell_sqlite.c - a doorbell loop whose processor examines an SQLite
 * database for work that another process writes, then rings for.
 *
 * This is buildbot's pattern (its schedulers examine the database when
 * the doorbell rings) across two processes:
 *
 *   writer process                      loop process (weft)
 *   --------------                      -------------------
 *   BEGIN; INSERT job; COMMIT;          named doorbell at BELL (a Unix
 *   weft_doorbell_ring_path(BELL);      datagram socket); its processor
 *                                       runs SELECT ... WHERE done = 0
 *                                       and marks each job done
 *
 * Nothing is lost when a ring races the database write, because:
 *   1. the writer commits before it rings, so a ring always comes after
 *      the job is visible to any transaction that begins later;
 *   2. the loop reads the ring (the datagram) before the run that answers
 *      it begins, and a run invokes the processor, which begins a new
 *      read transaction, after that: it sees the job;
 *   3. a ring that arrives while a run is in progress causes exactly one
 *      more run, which begins after it (see docs/doorbell.md).
 * Rings made while the loop is busy coalesce, so there are usually far
 * fewer runs than jobs.
 *
 * Usage:
 *   doorbell_sqlite                     demo and self-test: a temporary
 *                                       database, a writer child process
 *                                       adding jobs, checks, cleanup
 *   doorbell_sqlite serve DB BELL       run the loop until a job "quit"
 *   doorbell_sqlite add DB BELL BODY... add jobs, ringing after each
 *
 * By hand, with the sqlite3 shell and the weft-ring tool as the writer:
 *   doorbell_sqlite serve /tmp/work.db /tmp/work.bell &
 *   sqlite3 /tmp/work.db "INSERT INTO jobs(body) VALUES ('hello')" &&
 *       weft-ring /tmp/work.bell
 *   doorbell_sqlite add /tmp/work.db /tmp/work.bell quit
 *
 * The processor's SQLite calls block the scheduler's thread for the time
 * they take (a busy timeout waits for the writer's lock); that is fine
 * for a loop whose coroutines are all database processors, and is the
 * price of calling a blocking library from a coroutine.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "weft.h"

#define NJOBS 100
#define BUSY_MS 10000

static const char schema[] =
    "PRAGMA journal_mode = WAL;"
    "CREATE TABLE IF NOT EXISTS jobs ("
    "  id INTEGER PRIMARY KEY,"
    "  body TEXT NOT NULL,"
    "  done INTEGER NOT NULL DEFAULT 0);";

static sqlite3 *open_db(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        fprintf(stderr, "sqlite: %s: %s\n", path,
                db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, BUSY_MS);
    if (sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "sqlite: %s: %s\n", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* ----------------------------------------------------------------------
 * The writer: one committed transaction per job, then a ring.
 * ---------------------------------------------------------------------- */

static int add_jobs(const char *dbpath, const char *bell, int n,
                    char **bodies)
{
    sqlite3 *db = open_db(dbpath);
    sqlite3_stmt *ins = NULL;
    unsigned seed = (unsigned)getpid();
    if (!db)
        return 1;
    if (sqlite3_prepare_v2(db, "INSERT INTO jobs(body) VALUES (?)", -1, &ins,
                           NULL) != SQLITE_OK) {
        fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(db));
        sqlite3_close(db);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        /* Autocommit: the INSERT is committed when step returns. */
        sqlite3_bind_text(ins, 1, bodies[i], -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            fprintf(stderr, "sqlite: insert: %s\n", sqlite3_errmsg(db));
            sqlite3_finalize(ins);
            sqlite3_close(db);
            return 1;
        }
        sqlite3_reset(ins);
        /* Committed: now ring. */
        int r = weft_doorbell_ring_path(bell);
        if (r < 0) {
            fprintf(stderr, "add: ring %s: %s\n", bell, weft_strerror(r));
            sqlite3_finalize(ins);
            sqlite3_close(db);
            return 1;
        }
        /* Sometimes pause, so that rings land both between runs and
         * during them. */
        seed = seed * 1103515245u + 12345u;
        if ((seed >> 16) % 4 == 0) {
            struct timespec ts = {0, (long)((seed >> 8) % 2000) * 1000L};
            nanosleep(&ts, NULL);
        }
    }
    sqlite3_finalize(ins);
    sqlite3_close(db);
    return 0;
}

/* ----------------------------------------------------------------------
 * The loop: its processor examines the database.
 * ---------------------------------------------------------------------- */

struct app {
    sqlite3 *db;
    sqlite3_stmt *pick, *mark;
    weft_doorbell *bell;
    weft_timer *watchdog;
    int verbose;
    int processed;     /* jobs marked done by this process */
    int twice;         /* jobs found already done when marking (bug) */
    int calls;         /* processor invocations */
    int quit;          /* saw the "quit" job */
    int timed_out;
};

/* The processor: claim every job not done yet, oldest first.  One
 * transaction, begun IMMEDIATE (it takes the write lock at once, waiting
 * up to the busy timeout for the writer), so that the SELECT and the
 * UPDATEs see one snapshot; in WAL mode a read transaction whose snapshot
 * is older than the writer's last commit could not be upgraded to write
 * (SQLITE_BUSY_SNAPSHOT). */
static int process_jobs(weft_doorbell *bell, void *arg, int64_t *wake_at)
{
    struct app *a = arg;
    int rc, err = 0;
    (void)wake_at; /* this processor never asks for a wake-up */
    a->calls++;
    if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "sqlite: begin: %s\n", sqlite3_errmsg(a->db));
        return -EIO; /* logged by the loop, which goes on */
    }
    while ((rc = sqlite3_step(a->pick)) == SQLITE_ROW) {
        sqlite3_int64 id = sqlite3_column_int64(a->pick, 0);
        const char *body = (const char *)sqlite3_column_text(a->pick, 1);
        if (a->verbose)
            printf("job %lld: %s\n", (long long)id, body ? body : "");
        if (body && strcmp(body, "quit") == 0)
            a->quit = 1;
        sqlite3_bind_int64(a->mark, 1, id);
        rc = sqlite3_step(a->mark);
        sqlite3_reset(a->mark);
        if (rc != SQLITE_DONE)
            break;
        if (sqlite3_changes(a->db) == 1)
            a->processed++;
        else
            a->twice++;
    }
    sqlite3_reset(a->pick);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(a->db));
        err = -EIO;
    }
    if (sqlite3_exec(a->db, err ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL) !=
        SQLITE_OK) {
        fprintf(stderr, "sqlite: commit: %s\n", sqlite3_errmsg(a->db));
        err = -EIO;
    }
    if (err) {
        a->quit = 0;
        return err;
    }
    if (a->verbose)
        fflush(stdout);
    /* "Processing" takes a moment: other coroutines (and rings) get in. */
    (void)weft_sleep_for(WEFT_USEC(200));
    if (a->quit)
        (void)weft_doorbell_stop(bell); /* lets weft_run() return */
    return 0;
}

static void on_quiet_stop_watchdog(weft_doorbell *bell, void *arg)
{
    struct app *a = arg;
    if (!weft_doorbell_started(bell))
        (void)weft_timer_stop(a->watchdog);
}

static void on_watchdog(weft_timer *t, void *arg)
{
    struct app *a = arg;
    (void)t;
    fprintf(stderr, "doorbell_sqlite: timed out\n");
    a->timed_out = 1;
    if (weft_doorbell_started(a->bell) == 1)
        (void)weft_doorbell_stop(a->bell);
}

/* Run the loop on DB with its named doorbell at BELL until "quit".
 * ready_fd >= 0: write one byte to it once the doorbell is bound. */
static int serve(const char *dbpath, const char *bell, struct app *a,
                 int64_t timeout, int ready_fd)
{
    struct weft_doorbell_opts o = {0};
    weft_sched *s = NULL;
    int r, status = 1;

    a->db = open_db(dbpath);
    if (!a->db)
        return 1;
    if (sqlite3_prepare_v2(a->db,
                           "SELECT id, body FROM jobs WHERE done = 0 "
                           "ORDER BY id", -1, &a->pick, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(a->db,
                           "UPDATE jobs SET done = 1 WHERE id = ? AND done = 0",
                           -1, &a->mark, NULL) != SQLITE_OK) {
        fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(a->db));
        goto out;
    }
    o.on_done = on_quiet_stop_watchdog;
    o.hook_arg = a;
    if ((r = weft_sched_new(NULL, &s)) < 0 ||
        (r = weft_doorbell_new(s, &o, &a->bell)) < 0 ||
        (r = weft_doorbell_add(a->bell, process_jobs, a)) < 0 ||
        (r = weft_doorbell_bind(a->bell, bell, 0600)) < 0 ||
        (r = weft_timer_new(s, on_watchdog, a, &a->watchdog)) < 0) {
        fprintf(stderr, "weft: %s: %s\n", bell, weft_strerror(r));
        goto out;
    }
    if (timeout > 0)
        (void)weft_timer_start(a->watchdog, timeout, 0);
    /* The start's full run picks up the jobs written before it. */
    if ((r = weft_doorbell_start(a->bell)) < 0) {
        fprintf(stderr, "weft: start: %s\n", weft_strerror(r));
        goto out;
    }
    if (ready_fd >= 0 && write(ready_fd, "", 1) != 1)
        goto out;
    r = weft_run(s);
    if (r < 0) {
        fprintf(stderr, "weft: run: %s\n", weft_strerror(r));
        goto out;
    }
    status = a->quit && !a->timed_out ? 0 : 1;
out:
    if (a->bell) {
        printf("%d jobs in %lld runs (%d processor calls)\n", a->processed,
               (long long)weft_doorbell_runs(a->bell), a->calls);
        (void)weft_doorbell_free(a->bell); /* removes the path */
    }
    if (a->watchdog)
        (void)weft_timer_free(a->watchdog);
    if (s)
        (void)weft_sched_free(s);
    sqlite3_finalize(a->pick);
    sqlite3_finalize(a->mark);
    sqlite3_close(a->db);
    return status;
}

/* ----------------------------------------------------------------------
 * The demo: a temporary database, a writer child, checks, cleanup.
 * ---------------------------------------------------------------------- */

static int count_rows(const char *dbpath, const char *where)
{
    sqlite3 *db = open_db(dbpath);
    sqlite3_stmt *st = NULL;
    char sql[128];
    int n = -1;
    if (!db)
        return -1;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE %s", where);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static int demo(void)
{
    char dir[64], dbpath[128], bell[128], wal[160], shm[160];
    char self[PATH_MAX];
    char bodybuf[NJOBS][16];
    char *args[NJOBS + 6]; /* doorbell_sqlite add DB BELL jobs... quit */
    struct app a;
    int ready[2], status, failed = 0;
    pid_t writer;
    ssize_t n;
    sqlite3 *db;
    const char *tmp = getenv("TMPDIR");

    if (!tmp || !tmp[0] || strlen(tmp) > 32)
        tmp = "/tmp";
    snprintf(dir, sizeof dir, "%s/weft-sqlite-XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(dbpath, sizeof dbpath, "%s/work.db", dir);
    snprintf(bell, sizeof bell, "%s/bell", dir);
    snprintf(wal, sizeof wal, "%s-wal", dbpath);
    snprintf(shm, sizeof shm, "%s-shm", dbpath);

    /* Work that exists before the loop starts: its first run finds it. */
    db = open_db(dbpath);
    if (!db ||
        sqlite3_exec(db, "INSERT INTO jobs(body) VALUES ('early-1');"
                         "INSERT INTO jobs(body) VALUES ('early-2');",
                     NULL, NULL, NULL) != SQLITE_OK)
        failed = 1;
    sqlite3_close(db); /* no connection may cross the fork */

    args[0] = (char *)"doorbell_sqlite";
    args[1] = (char *)"add";
    args[2] = dbpath;
    args[3] = bell;
    for (int i = 0; i < NJOBS; i++) {
        snprintf(bodybuf[i], sizeof bodybuf[i], "job-%d", i + 1);
        args[4 + i] = bodybuf[i];
    }
    args[4 + NJOBS] = (char *)"quit";
    args[5 + NJOBS] = NULL;
    n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';

    /* The writer is a second process, started once the loop listens. */
    if (pipe(ready) != 0) {
        perror("pipe");
        return 1;
    }
    fflush(stdout);
    writer = fork();
    if (writer < 0) {
        perror("fork");
        return 1;
    }
    if (writer == 0) {
        char c;
        close(ready[1]);
        if (read(ready[0], &c, 1) != 1)
            _exit(1);
        if (self[0])
            execv(self, args); /* a fresh program, as any writer */
        _exit(add_jobs(dbpath, bell, NJOBS + 1, args + 4));
    }
    close(ready[0]);

    memset(&a, 0, sizeof a);
    if (serve(dbpath, bell, &a, WEFT_SEC(20), ready[1]) != 0)
        failed = 1;
    close(ready[1]);
    while (waitpid(writer, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "demo: the writer failed\n");
        failed = 1;
    }

    /* Every job was seen, each exactly once; the doorbell's path is gone
     * (freeing the loop removed it). */
    int left = count_rows(dbpath, "done = 0");
    int total = count_rows(dbpath, "1");
    if (left != 0 || total != NJOBS + 3 || a.processed != NJOBS + 3 ||
        a.twice != 0) {
        fprintf(stderr,
                "demo: %d jobs left, %d in total, %d processed, %d twice\n",
                left, total, a.processed, a.twice);
        failed = 1;
    }
    if (access(bell, F_OK) == 0) {
        fprintf(stderr, "demo: %s still exists\n", bell);
        failed = 1;
    }
    unlink(bell);
    unlink(wal);
    unlink(shm);
    unlink(dbpath);
    if (rmdir(dir) != 0) {
        perror("rmdir");
        failed = 1;
    }
    printf("%s\n", failed ? "demo: FAILED" : "demo: ok, nothing lost");
    return failed;
}

int main(int argc, char **argv)
{
    if (argc == 1)
        return demo();
    if (argc == 4 && strcmp(argv[1], "serve") == 0) {
        struct app a;
        memset(&a, 0, sizeof a);
        a.verbose = 1;
        return serve(argv[2], argv[3], &a, 0, -1);
    }
    if (argc >= 5 && strcmp(argv[1], "add") == 0)
        return add_jobs(argv[2], argv[3], argc - 4, argv + 4);
    fprintf(stderr,
            "usage: %s                      demo and self-test\n"
            "       %s serve DB BELL        run the loop until a job 'quit'\n"
            "       %s add DB BELL BODY...  add jobs, ringing after each\n",
            argv[0], argv[0], argv[0]);
    return 2;
}
