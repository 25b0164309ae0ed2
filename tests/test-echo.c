/*
 * test-echo.c - examples/echo as a real server process: a separate client
 * process (plain blocking sockets, no weft) talks to it over loopback, and
 * SIGTERM / SIGINT shut it down gracefully.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server.h"
#include "test.h"

#ifndef WEFT_ECHO_BIN
#define WEFT_ECHO_BIN ""
#endif

static void start(struct server *sv, const char *arg)
{
    if (!WEFT_ECHO_BIN[0])
        SKIP("examples are not built");
    server_start(sv, WEFT_ECHO_BIN, "echo", arg, NULL);
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_GE(fd, 0);
    ASSERT_OK(connect(fd, (struct sockaddr *)&a, sizeof a));
    struct timeval tv = {5, 0};
    ASSERT_OK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    return fd;
}

static void round_trip(int fd, const char *msg)
{
    size_t len = strlen(msg), got = 0;
    char buf[256];
    ASSERT_EQ(write(fd, msg, len), (ssize_t)len);
    while (got < len) {
        ssize_t n = read(fd, buf + got, sizeof buf - got);
        ASSERT_GT(n, 0);
        got += (size_t)n;
    }
    ASSERT_EQ(got, len);
    ASSERT(memcmp(buf, msg, len) == 0);
}

TEST(echo_serves_a_separate_client_and_stops_on_sigterm)
{
    struct server sv = {0, NULL, 0};
    char rest[1024];
    start(&sv, "0");
    int a = dial(sv.port), b = dial(sv.port);
    for (int i = 0; i < 50; i++) {
        round_trip(a, "hello from a");
        round_trip(b, "and from b, interleaved");
    }
    close(a);
    /* b stays connected: shutdown must end its coroutine too. */
    int st = server_stop(&sv, SIGTERM, rest, sizeof rest);
    ASSERT(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
    ASSERT_STR_CONTAINS(rest, "SIGTERM, shutting down");
    ASSERT_STR_CONTAINS(rest, "served 2 connections");
    char c;
    ASSERT_EQ(read(b, &c, 1), 0); /* the server closed it */
    close(b);
}

TEST(echo_stops_on_sigint)
{
    struct server sv = {0, NULL, 0};
    char rest[1024];
    start(&sv, "0");
    int a = dial(sv.port);
    round_trip(a, "ping");
    int st = server_stop(&sv, SIGINT, rest, sizeof rest);
    ASSERT(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
    ASSERT_STR_CONTAINS(rest, "SIGINT, shutting down");
    close(a);
}

TEST(echo_self_test)
{
    if (!WEFT_ECHO_BIN[0])
        SKIP("examples are not built");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s --self-test >/dev/null", WEFT_ECHO_BIN);
    ASSERT_EQ(system(cmd), 0);
}
