/*
 * hprof_tcreate: pthread_create, interposed, so that the profiler sees every thread the program
 * creates from the thread's first instruction (gperftools' profile handler registers threads
 * the same way). Profiles register hooks:
 *
 *   on_create  runs on the creating thread, before the new thread exists, with the creator's
 *              stack (leaf first: the caller of pthread_create, each frame a return address - 1,
 *              as heap samples are); for /debug/pprof/threadcreate. The stack is walked only
 *              when some hook asks for it.
 *   on_start   runs on the new thread before its start routine, with the signal mask it
 *              inherited from its creator; for per-thread state such as the CPU profile's
 *              timer.
 *
 * Hooks run inside hprof_internal_enter/exit (their allocations are the profiler's overhead)
 * and must not create threads themselves. They are registered once and never removed (a hook
 * checks whether its profile is running); at most HPROF_TCREATE_MAX_HOOKS.
 *
 * Threads created other than by pthread_create (clone(2) directly, and glibc's thrd_create,
 * which calls glibc's internal entry point) are not seen here: profiles that need every thread
 * also scan /proc/self/task.
 */
#ifndef HPROF_TCREATE_H
#define HPROF_TCREATE_H

#include <stdint.h>

#define HPROF_TCREATE_MAX_HOOKS 4

struct hprof_tcreate_hooks {
    void (*on_create)(const uintptr_t *pcs, int depth); /* may be NULL */
    void (*on_start)(void);                             /* may be NULL */
};

/* Register hooks (copied). 0, or -1 with errno ENOSPC when HPROF_TCREATE_MAX_HOOKS are taken. */
int hprof_tcreate_register(const struct hprof_tcreate_hooks *hooks);

/* Threads created through pthread_create since the process started (successful calls). */
uint64_t hprof_tcreate_count(void);

#endif
