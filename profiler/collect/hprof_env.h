/*
 * hprof_env: the profiler's settings (HEAPPROF_* variables), the environment it passes on to
 * the programs this one runs, and the name it signs its messages with.
 *
 * The settings are captured once, at the first hprof_env_get or at load (a constructor),
 * whichever comes first, into static storage: no allocation, so malloc's lazy initialisation
 * may read them. Then the constructor takes the profiler out of the environment that children
 * inherit: the HEAPPROF_* variables are removed and libheapprof.so is dropped from LD_PRELOAD,
 * so by default only this process is profiled. With HEAPPROF_CHILDREN=1 they stay, rewritten so
 * that no two processes collide: HEAPPROF_HTTP=HOST:0 (each child picks a free port) and
 * HEAPPROF_FILE=PREFIX.%p (each child writes PREFIX.PID.NNNN.pb.gz). "%p" in a captured value
 * stands for this process's PID.
 *
 * Every line the profiler prints goes through hprof_log: "heapprof[PID COMM]: ..." on stderr in
 * one write(2), with the PID and name of the process at the time of the call (a fork child names
 * itself). hprof_log neither allocates nor takes a lock: it may run inside malloc.
 */
#ifndef HPROF_ENV_H
#define HPROF_ENV_H

#include <stddef.h>

/* The captured value of a HEAPPROF_* variable, "%p" replaced by the PID, or NULL when it was
 * unset or empty. The string lives as long as the process. */
const char *hprof_env_get(const char *name);

/* "heapprof[PID COMM]" of the calling process into buf (for messages printed by others, e.g. an
 * HTTP server's name). */
void hprof_log_tag(char *buf, size_t len);

/* Print "heapprof[PID COMM]: " + the formatted message (which ends with "\n") on stderr. */
__attribute__((format(printf, 1, 2))) void hprof_log(const char *fmt, ...);

#endif
