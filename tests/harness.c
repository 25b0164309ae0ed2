/*
 * harness.c - main() and the assertion back ends for the tests (test.h).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define EXIT_SKIP 77

struct test_case {
    const char *name;
    weft_test_fn fn;
    const char *file;
    int line;
};

static struct test_case *cases;
static size_t ncases, cases_cap;

/* Run state. */
static const char *current = "";
static int many;           /* several cases in this process */
static int skipped_now;    /* the current case called SKIP() */
static int in_child;       /* inside weft_test_fork()'s child */
static unsigned npassed, nfailed, nskipped;

void weft_test_register_(const char *name, weft_test_fn fn, const char *file,
                         int line)
{
    if (ncases == cases_cap) {
        size_t cap = cases_cap ? cases_cap * 2 : 64;
        struct test_case *n = realloc(cases, cap * sizeof *n);
        if (n == NULL) {
            fputs("harness: out of memory registering tests\n", stderr);
            abort();
        }
        cases = n;
        cases_cap = cap;
    }
    cases[ncases].name = name;
    cases[ncases].fn = fn;
    cases[ncases].file = file;
    cases[ncases].line = line;
    ncases++;
}

const char *weft_test_name(void)
{
    return current;
}

/* Source order, whatever order the constructors ran in. */
static int case_cmp(const void *pa, const void *pb)
{
    const struct test_case *a = pa, *b = pb;
    int c = strcmp(a->file, b->file);
    if (c != 0)
        return c;
    return (a->line > b->line) - (a->line < b->line);
}

static const struct test_case *find_case(const char *name)
{
    size_t i;
    for (i = 0; i < ncases; i++)
        if (strcmp(cases[i].name, name) == 0)
            return &cases[i];
    return NULL;
}

/* ---- Failure reporting. ------------------------------------------------ */

static void fail_header(const char *file, int line)
{
    fflush(stdout);
    fprintf(stderr, "%s:%d: test '%s' failed: ", file, line, current);
}

static _Noreturn void fail_end(void)
{
    fflush(stderr);
    abort();
}

void weft_test_fail_(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fail_header(file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fail_end();
}

void weft_test_fail_cmp_(const char *file, int line, const char *macro,
                         const char *ea, const char *op, const char *eb,
                         intmax_t a, intmax_t b)
{
    fail_header(file, line);
    fprintf(stderr,
            "%s(%s, %s)\n"
            "  expected: %s %s %s\n"
            "  %s = %" PRIdMAX " (0x%" PRIxMAX ")\n"
            "  %s = %" PRIdMAX " (0x%" PRIxMAX ")\n",
            macro, ea, eb, ea, op, eb, ea, a, (uintmax_t)a, eb, b,
            (uintmax_t)b);
    fail_end();
}

void weft_test_fail_ptr_(const char *file, int line, const char *macro,
                         const char *ea, const char *eb, const void *a,
                         const void *b)
{
    fail_header(file, line);
    if (strcmp(macro, "ASSERT_NULL") == 0)
        fprintf(stderr, "%s(%s)\n  %s = %p\n", macro, ea, ea, a);
    else
        fprintf(stderr, "%s(%s, %s)\n  %s = %p\n  %s = %p\n", macro, ea, eb,
                ea, a, eb, b);
    fail_end();
}

static void print_str(const char *e, const char *s)
{
    if (s == NULL)
        fprintf(stderr, "  %s = NULL\n", e);
    else
        fprintf(stderr, "  %s = \"%s\"\n", e, s);
}

void weft_test_fail_str_(const char *file, int line, const char *macro,
                         const char *ea, const char *eb, const char *a,
                         const char *b)
{
    fail_header(file, line);
    fprintf(stderr, "%s(%s, %s)\n", macro, ea, eb);
    print_str(ea, a);
    print_str(eb, b);
    fail_end();
}

static void print_err(const char *label, intmax_t v)
{
    if (v < 0 && v >= INT32_MIN)
        fprintf(stderr, "  %s %" PRIdMAX " (%s: %s)\n", label, v,
                weft_err_name((int)v), weft_strerror((int)v));
    else
        fprintf(stderr, "  %s %" PRIdMAX "\n", label, v);
}

void weft_test_fail_err_(const char *file, int line, const char *macro,
                         const char *expr, const char *ecode, intmax_t got,
                         intmax_t want)
{
    fail_header(file, line);
    if (strcmp(macro, "ASSERT_OK") == 0)
        fprintf(stderr, "%s(%s)\n", macro, expr);
    else
        fprintf(stderr, "%s(%s, %s)\n", macro, expr, ecode);
    print_err("got: ", got);
    print_err("want:", want);
    fail_end();
}

/* ---- Skips. ------------------------------------------------------------ */

void weft_test_skip_(const char *why, const char *file, int line)
{
    printf("SKIP %s: %s (%s:%d)\n", current, why ? why : "", file, line);
    fflush(stdout);
    if (!many || in_child) {
        fflush(stderr);
        /* _exit: no atexit leak checks of a case cut short. */
        _exit(EXIT_SKIP);
    }
    skipped_now = 1;
}

/* ---- Child processes. -------------------------------------------------- */

char *weft_test_dump(weft_sched *s, int *ret)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ASSERT_NOT_NULL(f);
    int r = weft_dump(s, f);
    ASSERT_EQ(fclose(f), 0);
    if (ret)
        *ret = r;
    return buf;
}

int weft_test_fork(void (*fn)(void *), void *arg, char *out, size_t size)
{
    int fds[2];
    pid_t pid;
    size_t len = 0;
    int status;

    fflush(stdout);
    fflush(stderr);
    if (pipe(fds) != 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return -e;
    }
    if (pid == 0) {
        in_child = 1;
        signal(SIGABRT, SIG_DFL);
        close(fds[0]);
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[1]);
        fn(arg);
        fflush(stdout);
        fflush(stderr);
        _exit(0);
    }
    close(fds[1]);
    for (;;) {
        char sink[512];
        char *dst = sink;
        size_t room = sizeof sink;
        ssize_t n;
        if (out != NULL && len + 1 < size) {
            dst = out + len;
            room = size - 1 - len;
        }
        n = read(fds[0], dst, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (dst != sink)
            len += (size_t)n;
    }
    close(fds[0]);
    if (out != NULL && size > 0)
        out[len] = '\0';
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    return status;
}

void weft_test_assert_dies_(const char *file, int line, const char *efn,
                            void (*fn)(void *), void *arg, int signo,
                            const char *text)
{
    static char buf[16384];
    int st = weft_test_fork(fn, arg, buf, sizeof buf);

    if (st < 0)
        weft_test_fail_(file, line, "ASSERT_DIES(%s): fork: %s", efn,
                        strerror(-st));
    if (!WIFSIGNALED(st) || WTERMSIG(st) != signo) {
        fail_header(file, line);
        if (WIFSIGNALED(st))
            fprintf(stderr, "ASSERT_DIES(%s): died of signal %d, not %d\n",
                    efn, WTERMSIG(st), signo);
        else
            fprintf(stderr, "ASSERT_DIES(%s): exited with %d, expected "
                    "signal %d\n", efn, WEXITSTATUS(st), signo);
        fprintf(stderr, "  child output:\n%s\n", buf);
        fail_end();
    }
    if (text != NULL && strstr(buf, text) == NULL) {
        fail_header(file, line);
        fprintf(stderr, "ASSERT_DIES(%s): output lacks \"%s\"\n"
                "  child output:\n%s\n", efn, text, buf);
        fail_end();
    }
}

/* ---- Running. ---------------------------------------------------------- */

/* In a multi-case run an abort (failed assertion, assert() in the library)
 * ends the process: say which case and print the tally first. */
static void on_abort(int sig)
{
    char msg[512];
    int n = snprintf(msg, sizeof msg,
                     "FAIL %s (aborted)\n%u passed, %u failed, %u skipped\n",
                     current, npassed, nfailed + 1, nskipped);
    if (n > 0) {
        ssize_t w = write(STDOUT_FILENO, msg,
                          (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
        (void)w;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void run_case(const struct test_case *c)
{
    current = c->name;
    skipped_now = 0;
    if (many) {
        printf("RUN  %s\n", c->name);
        fflush(stdout);
    }
    c->fn();
    if (skipped_now) {
        nskipped++;
    } else {
        npassed++;
        printf("PASS %s\n", c->name);
    }
    fflush(stdout);
    current = "";
}

static int run_forked(void)
{
    size_t i;
    for (i = 0; i < ncases; i++) {
        pid_t pid;
        int st;
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            many = 0;
            run_case(&cases[i]);
            fflush(NULL);
            _exit(0);
        }
        while (waitpid(pid, &st, 0) < 0) {
            if (errno != EINTR) {
                perror("waitpid");
                return 1;
            }
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            npassed++;
        } else if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_SKIP) {
            nskipped++;
        } else {
            nfailed++;
            if (WIFSIGNALED(st))
                printf("FAIL %s (signal %d)\n", cases[i].name, WTERMSIG(st));
            else
                printf("FAIL %s (exit %d)\n", cases[i].name, WEXITSTATUS(st));
        }
    }
    printf("%u passed, %u failed, %u skipped\n", npassed, nfailed, nskipped);
    return nfailed ? 1 : 0;
}

/* --expect a,b,c: the registered cases are exactly these (the build's scan
 * of the source found the same cases the program has). */
static int check_expected(const char *list)
{
    char *copy = strdup(list ? list : "");
    char *tok, *save = NULL;
    size_t i, nexp = 0;
    int bad = 0;

    if (copy == NULL)
        return 1;
    for (tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        nexp++;
        if (find_case(tok) == NULL) {
            fprintf(stderr, "case '%s' found by the build is not registered\n",
                    tok);
            bad = 1;
        }
    }
    free(copy);
    for (i = 0; i < ncases; i++) {
        const char *p = list ? list : "";
        size_t len = strlen(cases[i].name);
        int found = 0;
        while (*p) {
            if (strncmp(p, cases[i].name, len) == 0
                && (p[len] == ',' || p[len] == '\0')) {
                found = 1;
                break;
            }
            p = strchr(p, ',');
            if (p == NULL)
                break;
            p++;
        }
        if (!found) {
            fprintf(stderr,
                    "%s:%d: case '%s' is not seen by the build's scan: write "
                    "TEST(%s) at the start of a line\n",
                    cases[i].file, cases[i].line, cases[i].name,
                    cases[i].name);
            bad = 1;
        }
    }
    if (!bad)
        printf("%zu cases registered, as the build expects\n", nexp);
    return bad;
}

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [CASE...]   run the named cases (default: all, in "
            "this process)\n"
            "       %s --fork      run every case in its own process\n"
            "       %s --list      list the cases\n",
            prog, prog, prog);
}

int main(int argc, char **argv)
{
    size_t i;
    int a;

    if (ncases > 1)
        qsort(cases, ncases, sizeof *cases, case_cmp);
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (argc >= 2 && argv[1][0] == '-') {
        if (strcmp(argv[1], "--list") == 0) {
            for (i = 0; i < ncases; i++)
                printf("%s\n", cases[i].name);
            return 0;
        }
        if (strcmp(argv[1], "--fork") == 0)
            return run_forked();
        if (strcmp(argv[1], "--expect") == 0)
            return check_expected(argc >= 3 ? argv[2] : "");
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
            usage(argv[0]);
            return 0;
        }
        usage(argv[0]);
        return 1;
    }

    if (argc == 2) {
        /* One case: what CTest runs. */
        const struct test_case *c = find_case(argv[1]);
        if (c == NULL) {
            fprintf(stderr, "%s: no case named '%s' (try --list)\n", argv[0],
                    argv[1]);
            return 1;
        }
        run_case(c);
        return 0;
    }

    many = 1;
    signal(SIGABRT, on_abort);
    if (argc > 2) {
        for (a = 1; a < argc; a++) {
            if (find_case(argv[a]) == NULL) {
                fprintf(stderr, "%s: no case named '%s' (try --list)\n",
                        argv[0], argv[a]);
                return 1;
            }
        }
        for (a = 1; a < argc; a++)
            run_case(find_case(argv[a]));
    } else {
        for (i = 0; i < ncases; i++)
            run_case(&cases[i]);
    }
    printf("%u passed, %u failed, %u skipped\n", npassed, nfailed, nskipped);
    return nfailed ? 1 : 0;
}
