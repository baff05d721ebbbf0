/*
 * hprof_proc: the profiler's one reader of /proc/self (collect layer; every layer uses it).
 *
 *   hprof_proc_read    a small file (comm, status) into the caller's buffer: no allocation, no
 *                      lock, so hprof_log may call it from inside malloc;
 *   hprof_proc_tasks   the threads of the process, from /proc/self/task: the CPU engine arms a
 *                      timer for each, the threads engine asks each for its stack. opendir
 *                      allocates: callers are inside hprof_internal_enter/exit.
 *
 * Large files (maps, cmdline) are read whole where they are used, into growing buffers
 * (pprof/hprof_maps.c, web/): a fixed buffer would cut them.
 */
#ifndef HPROF_PROC_H
#define HPROF_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* Read path into buf (at most len - 1 bytes, then NUL; len > 0). Returns the bytes read, or -1
 * (errno) when the file cannot be opened. */
ssize_t hprof_proc_read(const char *path, char *buf, size_t len);

/* "/proc/self/task/TID/<file>" into buf. */
ssize_t hprof_proc_read_task(pid_t tid, const char *file, char *buf, size_t len);

/* Call fn(tid, arg) for every thread of the process (the entries of /proc/self/task, in the
 * kernel's order). Returns how many there were, or -1 (errno) when the list cannot be read. */
typedef void (*hprof_proc_task_fn)(pid_t tid, void *arg);
ssize_t hprof_proc_tasks(hprof_proc_task_fn fn, void *arg);

#endif
