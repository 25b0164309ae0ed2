/*
 * guard.c - turns a stack overflow into a report naming the coroutine.
 *
 * A process-wide SIGSEGV handler, run on a per-thread alternate signal
 * stack (the faulting stack is the one that overflowed), checks whether
 * the fault address lies in or just below the guard page of the coroutine
 * running on this thread.  If so it writes one line (coroutine id, name,
 * stack size) with async-signal-safe calls, restores the default action
 * and returns: the faulting instruction runs again and the process dies
 * of SIGSEGV as it would have, with a core if enabled.  Any other fault is
 * passed to the handler that was installed before ours.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

/* How far below a stack's lowest byte a fault still counts as overflow:
 * a large frame can step over the guard page itself. */
#define OVERFLOW_REACH_PAGES 16

static struct sigaction old_segv, old_bus;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static _Thread_local void *altstack;

static size_t put_str(char *b, size_t n, size_t cap, const char *s)
{
    while (*s && n < cap)
        b[n++] = *s++;
    return n;
}

static size_t put_u64(char *b, size_t n, size_t cap, uint64_t v)
{
    char tmp[24];
    int k = 0;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k > 0 && n < cap)
        b[n++] = tmp[--k];
    return n;
}

static void chain(struct sigaction *old, int sig, siginfo_t *si, void *uc)
{
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction) {
            old->sa_sigaction(sig, si, uc);
            return;
        }
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    /* Default: reset and let the fault happen again. */
    (void)signal(sig, SIG_DFL);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    weft_coro *co = weft__tls.current;
    uintptr_t a = (uintptr_t)si->si_addr;
    if (co) {
        uintptr_t lo = (uintptr_t)co->stack.lo;
        uintptr_t reach = OVERFLOW_REACH_PAGES * weft__page_size();
        if (a < lo && a + reach >= lo) {
            char b[256];
            size_t n = 0, cap = sizeof b - 1;
            n = put_str(b, n, cap, "weft: stack overflow in coroutine #");
            n = put_u64(b, n, cap, co->id);
            n = put_str(b, n, cap, " '");
            n = put_str(b, n, cap, co->name);
            n = put_str(b, n, cap, "' (stack ");
            n = put_u64(b, n, cap, co->stack.size);
            n = put_str(b, n, cap, " bytes); aborting\n");
            (void)!write(2, b, n);
            (void)signal(sig, SIG_DFL);
            return;
        }
    }
    chain(sig == SIGBUS ? &old_bus : &old_segv, sig, si, uc);
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}

void weft__guard_install(void)
{
    pthread_once(&install_once, install);
}

static pthread_key_t alt_key;
static pthread_once_t alt_key_once = PTHREAD_ONCE_INIT;

static void alt_free(void *p)
{
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
    munmap(p, (size_t)64 * 1024);
}

static void alt_key_make(void)
{
    (void)pthread_key_create(&alt_key, alt_free);
}

void weft__guard_thread_init(void)
{
    stack_t cur;
    if (altstack)
        return;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
        return; /* the program set one up itself: use it */
    size_t len = (size_t)64 * 1024;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return; /* overflow reports degrade to a plain SIGSEGV */
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = m;
    ss.ss_size = len;
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(m, len);
        return;
    }
    altstack = m;
    pthread_once(&alt_key_once, alt_key_make);
    (void)pthread_setspecific(alt_key, m);
}
