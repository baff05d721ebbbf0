/*
 * hprof_unwind: stacks from a signal handler (collect layer; the CPU and threads engines use it).
 */
#ifndef HPROF_UNWIND_H
#define HPROF_UNWIND_H

#include <stdint.h>

#include "hprof_internal.h"

/* hprof_unwind.c: the stack a signal interrupted, from a handler's ucontext (async-signal-safe;
 * interrupted PCs kept as is, return addresses as return address - 1; at least one frame), and
 * libunwind's one-time initialisation, to run before any handler may unwind. */
int hprof_unwind_signal(void *ucontext, uintptr_t *pcs);
void hprof_unwind_prewarm(void);

/* Runs libunwind without its shared register-state cache, whose lock a handler could wait for
 * while its thread holds the loader's lock (see hprof_unwind.c). Once per process, before the
 * profiler's first walk of any kind: every walk outside a handler calls it first (a load when
 * done), and hprof_unwind_prewarm before any handler may walk. */
void hprof_unwind_init(void);

/* The stack of the caller (leaf first, each frame a return address - 1), up to HPROF_MAX_DEPTH
 * frames, for code outside a handler. Not unw_backtrace: its per-thread trace cache leaves a
 * thread-specific-data destructor that runs, and takes a lock, after a thread's last hook
 * (ThreadSanitizer's runtime crashed on it there). Returns the depth (0 if it cannot unwind). */
int hprof_unwind_here(uintptr_t *pcs);

#endif
