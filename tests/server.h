/*
 * server.h - run a server program (examples/echo, examples/http) as a
 * separate process for a test: start it, read its port from its first
 * line "NAME: listening on 127.0.0.1:PORT", stop it with a signal.
 * static inline, so a program that uses only some of it compiles cleanly
 * under -Werror.
 */
#ifndef WEFT_TEST_SERVER_H
#define WEFT_TEST_SERVER_H

#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

struct server {
    pid_t pid;
    FILE *out; /* the server's stdout */
    int port;
};

/* Start @p bin as @p name with up to two arguments (NULL ends them). */
static inline void server_start(struct server *sv, const char *bin,
                                const char *name, const char *arg1,
                                const char *arg2)
{
    int p[2];
    char line[256], fmt[96];
    ASSERT_OK(pipe(p));
    sv->pid = fork();
    ASSERT_GE(sv->pid, 0);
    if (sv->pid == 0) {
        /* A failed assertion aborts the test: take the server along. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl(bin, name, arg1, arg2, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    sv->out = fdopen(p[0], "r");
    ASSERT_NOT_NULL(sv->out);
    ASSERT_NOT_NULL(fgets(line, sizeof line, sv->out));
    snprintf(fmt, sizeof fmt, "%s: listening on 127.0.0.1:%%d", name);
    ASSERT_EQ(sscanf(line, fmt, &sv->port), 1);
    ASSERT_GT(sv->port, 0);
}

/* Send @p sig, read the rest of the server's output into @p rest
 * (NUL-terminated), wait for it.  @return its wait status. */
static inline int server_stop(struct server *sv, int sig, char *rest,
                              size_t size)
{
    int st;
    ASSERT_OK(kill(sv->pid, sig));
    size_t n = fread(rest, 1, size - 1, sv->out);
    rest[n] = 0;
    while (fgetc(sv->out) != EOF) {
    } /* more than fits: drain it so the server can exit */
    fclose(sv->out);
    ASSERT_EQ(waitpid(sv->pid, &st, 0), sv->pid);
    return st;
}

#endif /* WEFT_TEST_SERVER_H */
