/*
 * hprof_loader: dl_iterate_phdr, interposed so that a signal handler knows when its thread is
 * inside it (collect layer; hprof_unwind.c asks before every walk from a handler).
 */
#ifndef HPROF_LOADER_H
#define HPROF_LOADER_H

/* Nonzero while this thread is inside dl_iterate_phdr (or about to enter or just leaving it).
 * Async-signal-safe: a thread-local load. */
int hprof_loader_busy(void);

/* Finds glibc's dl_iterate_phdr (dlsym, which is not async-signal-safe): before any handler may
 * walk. The first call of the interposer does it too. */
void hprof_loader_init(void);

#endif
