/*
 * hprof_unwind: the stack of code a signal interrupted, for the handlers of the CPU profile
 * (SIGPROF) and of the threads profile (SIGURG).
 *
 * The walk starts from the handler's ucontext (unw_init_local2 with UNW_INIT_SIGNAL_FRAME), so
 * neither the handler nor the signal trampoline appears in a stack. The first frame, and any
 * frame just above a nested signal trampoline, is an interrupted PC and is kept as is; every
 * other frame is a return address, kept as return address - 1 (inside the call). libunwind's
 * local unwinding with unw_init_local2/unw_step is async-signal-safe once libunwind has
 * initialised itself, which hprof_unwind_prewarm does outside any handler. unw_backtrace is
 * not used here: its per-thread cache may calloc on a thread's first use.
 *
 * The walk runs inside the profiler's guard (hprof_internal_enter, whose per-thread depth a
 * handler may raise and restore at any point of the interrupted code). libunwind takes its own
 * pthread mutexes, with signals blocked, and those calls land in the lock interposer: outside
 * the guard, one that found the lock held by another thread's walk was profiled as a block
 * event, and recording it unwound again with unw_backtrace, which took the same libunwind lock
 * its own thread already held: a deadlock as soon as the block profile was on while a CPU
 * profile or a threads capture ran. Inside the guard the interposer forwards them untouched.
 *
 * No register-state cache (hprof_unwind_init). libunwind's cache of unwound frames is global by
 * default, behind a lock that a walk holds while it looks a frame up in the loader's list
 * (dl_iterate_phdr, under the loader's own lock). A handler that interrupted a thread inside
 * dl_iterate_phdr (our hprof_maps, libgcc looking up a C++ exception's tables, dlopen) then
 * waited for the cache lock, while a handler on another thread held it and waited for the
 * loader's lock: a deadlock of both, for good (test_collect_fork hung 3 runs in 84 under load;
 * test_loader_lock hung every time). libunwind's per-thread cache would avoid
 * the lock, but Debian builds libunwind without it (a per-thread request falls back to the
 * shared cache unlocked), so the policy is UNW_CACHE_NONE: every step looks its frame up
 * afresh, taking only the loader's lock, whose other holders wait for nothing a handler holds.
 * It is set once, before the first walk: changing it while another thread walks would leave
 * that walk's lock, and its blocked signals, held. The heap sampler's unw_backtrace keeps its
 * per-thread trace of frame shapes, which does not depend on this cache; the cost per walk is
 * in BENCHMARKS.md. (hprof_loader.c alone would break that cycle for every holder that goes
 * through dl_iterate_phdr; without the cache, dlopen's own short holds cannot close it either.)
 *
 * No walk on a thread inside dl_iterate_phdr (hprof_loader_busy): the loader's lock is
 * recursive, but its acquire and release are not safe to interrupt (hprof_loader.c). Such a
 * sample keeps the interrupted PC alone.
 */
#include "hprof_unwind.h"

#include "hprof_loader.h"

#define UNW_LOCAL_ONLY /* this process's own stacks: the fast local unwinder */
#include <libunwind.h>
#include <pthread.h>
#include <ucontext.h>

static void set_caching_policy(void)
{
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_NONE);
}

void hprof_unwind_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, set_caching_policy);
}

static uintptr_t interrupted_pc(const ucontext_t *uc)
{
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#else
    return (uintptr_t)uc->uc_mcontext.pc;
#endif
}

/* Walk from an initialised cursor. exact: the cursor's first IP is an interrupted PC. */
static int walk(unw_cursor_t *cursor, int exact, uintptr_t *pcs)
{
    int depth = 0;
    do {
        unw_word_t ip;
        if (unw_get_reg(cursor, UNW_REG_IP, &ip) < 0 || ip == 0)
            break;
        if (unw_is_signal_frame(cursor) > 0) {
            exact = 1; /* a trampoline: the frame above it was interrupted, not calling */
            continue;
        }
        pcs[depth++] = exact ? (uintptr_t)ip : (uintptr_t)ip - 1;
        exact = 0;
    } while (depth < HPROF_MAX_DEPTH && unw_step(cursor) > 0);
    return depth;
}

int hprof_unwind_signal(void *ucontext, uintptr_t *pcs)
{
    unw_cursor_t cursor;
    int depth = 0;
    if (hprof_loader_busy()) { /* a walk would take the loader's lock: see hprof_loader.c */
        pcs[0] = interrupted_pc(ucontext);
        return 1;
    }
    hprof_internal_enter();
    if (unw_init_local2(&cursor, (unw_context_t *)ucontext, UNW_INIT_SIGNAL_FRAME) == 0)
        depth = walk(&cursor, 1, pcs);
    hprof_internal_exit();
    if (depth == 0) { /* no unwind information at all: keep at least where it was */
        pcs[0] = interrupted_pc(ucontext);
        depth = 1;
    }
    return depth;
}

__attribute__((noinline)) int hprof_unwind_here(uintptr_t *pcs)
{
    unw_context_t uc;
    unw_cursor_t cursor;
    hprof_unwind_init();
    if (unw_getcontext(&uc) != 0 || unw_init_local(&cursor, &uc) != 0 || unw_step(&cursor) <= 0)
        return 0;
    return walk(&cursor, 0, pcs); /* from the caller's frame: return addresses */
}

void hprof_unwind_prewarm(void)
{
    hprof_loader_init();
    hprof_unwind_init();
    unw_context_t uc;
    unw_cursor_t cursor;
    uintptr_t pcs[HPROF_MAX_DEPTH];
    if (unw_getcontext(&uc) == 0 && unw_init_local(&cursor, &uc) == 0)
        (void)walk(&cursor, 0, pcs);
}
