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

#endif
