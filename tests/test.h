/*
 * test.h - the test harness of weft.
 *
 * A test program is one file tests/test-<module>.c made of cases:
 *
 *     #include "test.h"
 *
 *     TEST(spawn_runs_once)
 *     {
 *         weft_sched *s;
 *         ASSERT_OK(weft_sched_new(NULL, &s));
 *         ...
 *         ASSERT_EQ(count, 1);
 *         ASSERT_OK(weft_sched_free(s));
 *     }
 *
 * The build links it with tests/harness.c (which has main()) and the static
 * library, and registers each case as the CTest test
 * `test-<module>.<case>`.  Cases are found by scanning the source for lines
 * that start with `TEST(name)` (leading blanks allowed), so write each
 * TEST(...) at the start of its own line and not inside a macro or #if.
 *
 * Running a program by hand:
 *     test-foo name        run one case (what CTest does)
 *     test-foo a b ...     run the named cases in this process, in order
 *     test-foo             run every case in this process, one by one,
 *                          then print "N passed, N failed, N skipped"
 *     test-foo --fork      run every case in its own child process
 *     test-foo --list      list the case names
 * Exit status: 0 pass, 1 fail, 77 skip.  A failed assertion aborts the
 * process (SIGABRT), which CTest reports as a failure.
 *
 * Assertions print the expression, the values and file:line to stderr and
 * call abort().  They never longjmp, so they are safe inside coroutine
 * bodies, hooks and callbacks on any stack.
 */
#ifndef WEFT_TEST_H
#define WEFT_TEST_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "weft.h"

#if defined(__GNUC__) || defined(__clang__)
#define WEFT_TEST_PRINTF_(f, a) __attribute__((format(printf, f, a)))
#else
#define WEFT_TEST_PRINTF_(f, a)
#endif

typedef void (*weft_test_fn)(void);

/* ---- Internal: used by the macros below, defined in harness.c. -------- */
void weft_test_register_(const char *name, weft_test_fn fn, const char *file,
                         int line);
void weft_test_skip_(const char *why, const char *file, int line);
_Noreturn void weft_test_fail_(const char *file, int line, const char *fmt,
                               ...) WEFT_TEST_PRINTF_(3, 4);
_Noreturn void weft_test_fail_cmp_(const char *file, int line,
                                   const char *macro, const char *ea,
                                   const char *op, const char *eb, intmax_t a,
                                   intmax_t b);
_Noreturn void weft_test_fail_ptr_(const char *file, int line,
                                   const char *macro, const char *ea,
                                   const char *eb, const void *a,
                                   const void *b);
_Noreturn void weft_test_fail_str_(const char *file, int line,
                                   const char *macro, const char *ea,
                                   const char *eb, const char *a,
                                   const char *b);
_Noreturn void weft_test_fail_err_(const char *file, int line,
                                   const char *macro, const char *expr,
                                   const char *ecode, intmax_t got,
                                   intmax_t want);

/* ---- Public helpers. -------------------------------------------------- */

/** The name of the case being run ("" outside one). */
const char *weft_test_name(void);

/**
 * Run fn(arg) in a forked child and wait for it.  The child's stdout and
 * stderr are captured into @p out (NUL-terminated, truncated to @p size;
 * out may be NULL).  The child exits 0 if fn returns.
 * @return The wait status (use WIFSIGNALED/WTERMSIG/WEXITSTATUS from
 *         <sys/wait.h>), or a negative errno if fork/pipe failed.
 */
int weft_test_fork(void (*fn)(void *), void *arg, char *out, size_t size);

/**
 * What weft_dump(@p s) prints, as a malloc'd string (free it); @p ret (may
 * be NULL) gets weft_dump's return value.  Fails the test if the string
 * cannot be made.
 */
char *weft_test_dump(weft_sched *s, int *ret);

/**
 * Assert that fn(arg), run in a child, dies of signal @p signo and that its
 * output contains @p text (NULL: any output).
 */
void weft_test_assert_dies_(const char *file, int line, const char *efn,
                            void (*fn)(void *), void *arg, int signo,
                            const char *text);
#define ASSERT_DIES(fn, arg, signo, text)                                    \
    weft_test_assert_dies_(__FILE__, __LINE__, #fn, (fn), (arg), (signo),   \
                           (text))

/* ---- Defining cases. -------------------------------------------------- */

/**
 * TEST(name) { body } defines the case `name`: a static function
 * test_name(void) plus a constructor that registers it before main().
 * Names are C identifiers, unique within the program.
 */
#define TEST(name)                                                           \
    static void test_##name(void);                                           \
    __attribute__((constructor)) static void weft_test_reg_##name(void)      \
    {                                                                        \
        weft_test_register_(#name, test_##name, __FILE__, __LINE__);         \
    }                                                                        \
    static void test_##name(void)

/**
 * SKIP("why"): the case is skipped (exit status 77 under CTest).  When one
 * case runs (CTest), the process exits at once.  When several run in one
 * process it records the skip and *returns from the enclosing function*, so
 * use it in the TEST body itself (typically first thing, before any
 * scheduler exists), not in a coroutine body or helper.
 */
#define SKIP(why)                                                            \
    do {                                                                     \
        weft_test_skip_((why), __FILE__, __LINE__);                          \
        return;                                                              \
    } while (0)

/* ---- Assertions (abort on failure). ----------------------------------- */

/** Fail unconditionally with a printf-style message. */
#define FAIL(...) weft_test_fail_(__FILE__, __LINE__, __VA_ARGS__)

#define ASSERT(cond)                                                         \
    do {                                                                     \
        if (!(cond))                                                         \
            weft_test_fail_(__FILE__, __LINE__, "ASSERT(%s)", #cond);        \
    } while (0)

/* Integers of any type, compared as intmax_t; each operand is evaluated
 * once.  (Unsigned values above INTMAX_MAX compare wrongly for order.) */
#define WEFT_TEST_CMP_(macro, a, op, b)                                      \
    do {                                                                     \
        intmax_t weft_test_a_ = (intmax_t)(a);                               \
        intmax_t weft_test_b_ = (intmax_t)(b);                               \
        if (!(weft_test_a_ op weft_test_b_))                                 \
            weft_test_fail_cmp_(__FILE__, __LINE__, macro, #a, #op, #b,      \
                                weft_test_a_, weft_test_b_);                 \
    } while (0)

#define ASSERT_EQ(a, b) WEFT_TEST_CMP_("ASSERT_EQ", a, ==, b)
#define ASSERT_NE(a, b) WEFT_TEST_CMP_("ASSERT_NE", a, !=, b)
#define ASSERT_LT(a, b) WEFT_TEST_CMP_("ASSERT_LT", a, <, b)
#define ASSERT_LE(a, b) WEFT_TEST_CMP_("ASSERT_LE", a, <=, b)
#define ASSERT_GT(a, b) WEFT_TEST_CMP_("ASSERT_GT", a, >, b)
#define ASSERT_GE(a, b) WEFT_TEST_CMP_("ASSERT_GE", a, >=, b)

#define ASSERT_PTR_EQ(a, b)                                                  \
    do {                                                                     \
        const void *weft_test_pa_ = (const void *)(a);                       \
        const void *weft_test_pb_ = (const void *)(b);                       \
        if (weft_test_pa_ != weft_test_pb_)                                  \
            weft_test_fail_ptr_(__FILE__, __LINE__, "ASSERT_PTR_EQ", #a, #b, \
                                weft_test_pa_, weft_test_pb_);               \
    } while (0)

#define ASSERT_PTR_NE(a, b)                                                  \
    do {                                                                     \
        const void *weft_test_pa_ = (const void *)(a);                       \
        const void *weft_test_pb_ = (const void *)(b);                       \
        if (weft_test_pa_ == weft_test_pb_)                                  \
            weft_test_fail_ptr_(__FILE__, __LINE__, "ASSERT_PTR_NE", #a, #b, \
                                weft_test_pa_, weft_test_pb_);               \
    } while (0)

#define ASSERT_NULL(p)                                                       \
    do {                                                                     \
        const void *weft_test_pa_ = (const void *)(p);                       \
        if (weft_test_pa_ != NULL)                                           \
            weft_test_fail_ptr_(__FILE__, __LINE__, "ASSERT_NULL", #p,       \
                                "NULL", weft_test_pa_, NULL);                \
    } while (0)

#define ASSERT_NOT_NULL(p)                                                   \
    do {                                                                     \
        if ((const void *)(p) == NULL)                                       \
            weft_test_fail_(__FILE__, __LINE__, "ASSERT_NOT_NULL(%s): is NULL", \
                            #p);                                             \
    } while (0)

/* Strings; NULL is allowed and equal only to NULL. */
#define ASSERT_STR_EQ(a, b)                                                  \
    do {                                                                     \
        const char *weft_test_sa_ = (a);                                     \
        const char *weft_test_sb_ = (b);                                     \
        if (weft_test_sa_ == NULL || weft_test_sb_ == NULL                   \
                ? weft_test_sa_ != weft_test_sb_                             \
                : strcmp(weft_test_sa_, weft_test_sb_) != 0)                 \
            weft_test_fail_str_(__FILE__, __LINE__, "ASSERT_STR_EQ", #a, #b, \
                                weft_test_sa_, weft_test_sb_);               \
    } while (0)

/* @p hay contains @p needle. */
#define ASSERT_STR_CONTAINS(hay, needle)                                     \
    do {                                                                     \
        const char *weft_test_sa_ = (hay);                                   \
        const char *weft_test_sb_ = (needle);                                \
        if (weft_test_sa_ == NULL || weft_test_sb_ == NULL                   \
                || strstr(weft_test_sa_, weft_test_sb_) == NULL)             \
            weft_test_fail_str_(__FILE__, __LINE__, "ASSERT_STR_CONTAINS",   \
                                #hay, #needle, weft_test_sa_, weft_test_sb_); \
    } while (0)

/* expr == 0; a failure also names the error (weft_strerror). */
#define ASSERT_OK(expr)                                                      \
    do {                                                                     \
        intmax_t weft_test_r_ = (intmax_t)(expr);                            \
        if (weft_test_r_ != 0)                                               \
            weft_test_fail_err_(__FILE__, __LINE__, "ASSERT_OK", #expr, "0", \
                                weft_test_r_, 0);                            \
    } while (0)

/* expr == code, e.g. ASSERT_ERR(weft_yield(), -EINVAL). */
#define ASSERT_ERR(expr, code)                                               \
    do {                                                                     \
        intmax_t weft_test_r_ = (intmax_t)(expr);                            \
        intmax_t weft_test_c_ = (intmax_t)(code);                            \
        if (weft_test_r_ != weft_test_c_)                                    \
            weft_test_fail_err_(__FILE__, __LINE__, "ASSERT_ERR", #expr,     \
                                #code, weft_test_r_, weft_test_c_);          \
    } while (0)

#endif /* WEFT_TEST_H */
