/*
 * test-selftest.c - tests of the test harness itself (test.h, harness.c).
 *
 * Every case here passes; failing assertions are exercised in forked
 * children, which must die of SIGABRT with a useful message.
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "test.h"

static int evaluations;

static int count_eval(int v)
{
    evaluations++;
    return v;
}

TEST(true_assertions_pass)
{
    int x = 3;
    const char *s = "weft";
    char buf[8];
    long long big = INT64_MAX;
    unsigned short us = 65535;

    ASSERT(x == 3);
    ASSERT_EQ(x, 3);
    ASSERT_NE(x, 4);
    ASSERT_LT(x, 4);
    ASSERT_LE(x, 3);
    ASSERT_GT(x, 2);
    ASSERT_GE(x, 3);
    ASSERT_EQ(big, INT64_MAX);
    ASSERT_LT(-1, 0);
    ASSERT_EQ(us, 65535);
    ASSERT_EQ((size_t)7, 7);
    ASSERT_PTR_EQ(s, s);
    ASSERT_PTR_NE(s, buf);
    ASSERT_NULL(NULL);
    ASSERT_NOT_NULL(s);
    strcpy(buf, "weft");
    ASSERT_STR_EQ(buf, s);
    ASSERT_STR_EQ(NULL, NULL);
    ASSERT_STR_CONTAINS("cooperative", "rat");
    ASSERT_OK(0);
    ASSERT_ERR(-EINVAL, -EINVAL);
    ASSERT_STR_EQ(weft_test_name(), "true_assertions_pass");
}

TEST(operands_evaluated_once)
{
    evaluations = 0;
    ASSERT_EQ(count_eval(1), count_eval(1));
    ASSERT_LT(count_eval(1), count_eval(2));
    ASSERT_OK(count_eval(0));
    ASSERT_ERR(count_eval(-ENOMEM), -ENOMEM);
    ASSERT(count_eval(1));
    ASSERT_EQ(evaluations, 7);
}

TEST(library_links)
{
    /* The test programs link the static library. */
    ASSERT_NOT_NULL(weft_version());
    ASSERT_NOT_NULL(weft_strerror(-EINVAL));
    ASSERT_NOT_NULL(weft_strerror(0));
}

/* ---- Failing assertions, each in a child. ------------------------------ */

static void fail_eq(void *arg)
{
    int two = 1 + 1;
    (void)arg;
    ASSERT_EQ(two, 3);
}

static void fail_str(void *arg)
{
    (void)arg;
    ASSERT_STR_EQ("alpha", (const char *)arg ? "beta" : "gamma");
}

static void fail_null(void *arg)
{
    ASSERT_NULL(arg);
}

static void fail_err(void *arg)
{
    (void)arg;
    ASSERT_ERR(0, -ETIMEDOUT);
}

static void fail_ok(void *arg)
{
    (void)arg;
    ASSERT_OK(-EINVAL);
}

static void fail_plain(void *arg)
{
    (void)arg;
    ASSERT(1 > 2);
}

static void skips(void *arg)
{
    (void)arg;
    SKIP("not today");
    FAIL("SKIP returned in a child");
}

static void exits_cleanly(void *arg)
{
    (void)arg;
    printf("hello from the child\n");
}

TEST(failed_assert_eq_aborts_with_values)
{
    char out[4096];
    int st = weft_test_fork(fail_eq, NULL, out, sizeof out);

    ASSERT_GE(st, 0);
    ASSERT(WIFSIGNALED(st));
    ASSERT_EQ(WTERMSIG(st), SIGABRT);
    ASSERT_STR_CONTAINS(out, "ASSERT_EQ(two, 3)");
    ASSERT_STR_CONTAINS(out, "two = 2");
    ASSERT_STR_CONTAINS(out, "3 = 3");
    ASSERT_STR_CONTAINS(out, "test-selftest.c:");
    ASSERT_STR_CONTAINS(out, "failed_assert_eq_aborts_with_values");
}

TEST(failed_assertions_of_each_kind_abort)
{
    ASSERT_DIES(fail_plain, NULL, SIGABRT, "ASSERT(1 > 2)");
    static char x[] = "x";

    ASSERT_DIES(fail_str, x, SIGABRT, "\"beta\"");
    ASSERT_DIES(fail_null, x, SIGABRT, "ASSERT_NULL(arg)");
    ASSERT_DIES(fail_err, NULL, SIGABRT, "ASSERT_ERR(0, -ETIMEDOUT)");
    ASSERT_DIES(fail_ok, NULL, SIGABRT, "ASSERT_OK(-EINVAL)");
}

TEST(fork_captures_output_and_status)
{
    char out[256];
    int st = weft_test_fork(exits_cleanly, NULL, out, sizeof out);

    ASSERT_GE(st, 0);
    ASSERT(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
    ASSERT_STR_EQ(out, "hello from the child\n");
}

TEST(skip_exits_77)
{
    char out[256];
    int st = weft_test_fork(skips, NULL, out, sizeof out);

    ASSERT_GE(st, 0);
    ASSERT(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 77);
    ASSERT_STR_CONTAINS(out, "not today");
}
