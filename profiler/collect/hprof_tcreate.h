/*
 * hprof_tcreate: pthread_create, interposed, so that the profiler sees every thread the program
 * creates from the thread's first instruction to its last (gperftools' profile handler
 * registers threads the same way). Profiles register hooks:
 *
 *   on_create  runs on the creating thread, before the new thread exists, with the creator's
 *              stack (leaf first: the caller of pthread_create, each frame a return address - 1,
 *              as heap samples are); for /debug/pprof/threadcreate. The stack is walked only
 *              when some hook asks for it. It returns a token, which this hook's on_start and
 *              on_exit receive for that thread (the id of a record it made, say), so a module
 *              can match a created thread to its exit. If pthread_create then fails, the token
 *              is dropped without a call: on_create must keep nothing that only on_exit would
 *              release (count a live thread in on_start, not here).
 *   on_start   runs on the new thread before its start routine, with the signal mask it
 *              inherited from its creator; for per-thread state such as the CPU profile's
 *              timer. Its token is 0 when the hook has no on_create, or was registered after
 *              the thread was created.
 *   on_exit    runs on the thread itself as it ends, exactly once for every on_start that ran
 *              (the hooks registered when the thread started, in reverse order): after its
 *              routine returns, or when it calls pthread_exit or is cancelled, after the
 *              cleanup handlers of its own frames and before its thread-specific data
 *              destructors (pthread_key_create) and C++ thread_local destructors, which may
 *              still run code (and take locks) afterwards. Its TLS and stack are intact.
 *
 * Hooks run inside hprof_internal_enter/exit (their allocations are the profiler's overhead)
 * with cancellation disabled, errno preserved, and must not create threads themselves. They are
 * registered once and never removed (a hook checks whether its profile is running); at most
 * HPROF_TCREATE_MAX_HOOKS.
 *
 * Not seen: threads created other than by pthread_create (clone(2) directly, and glibc's
 * thrd_create, which calls glibc's internal entry point): profiles that need every thread also
 * scan /proc/self/task. Not called: on_exit when the whole process ends (exit(3) from any
 * thread, a fatal signal, exec), and, in a child of fork(2), for the parent's other threads,
 * which the child never had (a module that keeps live threads resets them in its atfork child
 * handler).
 */
#ifndef HPROF_TCREATE_H
#define HPROF_TCREATE_H

#include <stdint.h>

#define HPROF_TCREATE_MAX_HOOKS 4

struct hprof_tcreate_hooks {
    uintptr_t (*on_create)(const uintptr_t *pcs, int depth); /* may be NULL */
    void (*on_start)(uintptr_t token);                       /* may be NULL */
    void (*on_exit)(uintptr_t token);                        /* may be NULL */
};

/* Register hooks (copied). 0, or -1 with errno ENOSPC when HPROF_TCREATE_MAX_HOOKS are taken. */
int hprof_tcreate_register(const struct hprof_tcreate_hooks *hooks);

/* Threads created through pthread_create since the process started (successful calls). */
uint64_t hprof_tcreate_count(void);

#endif
