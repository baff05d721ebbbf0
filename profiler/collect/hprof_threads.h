/*
 * hprof_threads: the threads engine (collect layer): every thread's stack, caught by a signal
 * (see hprof_threads.c), and the grouping the profile and its text share. The endpoint is
 * web/hprof_threads_http.c.
 */
#ifndef HPROF_THREADS_H
#define HPROF_THREADS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hprof_internal.h"

#define HPROF_THREADS_MAX 4096 /* threads captured at most per profile */

enum hprof_thread_status {
    HPROF_THREAD_OK,        /* its stack was captured */
    HPROF_THREAD_BLOCKED,   /* it blocks the signal: not asked */
    HPROF_THREAD_TIMEOUT,   /* it did not answer in time (stopped, in D state, or exited) */
    HPROF_THREAD_GONE,      /* it exited before it could be asked */
    HPROF_THREAD_NO_SIGNAL, /* the signal is the program's: no thread was asked */
};

struct hprof_thread_stack {
    pid_t tid;
    char name[16];  /* /proc/self/task/TID/comm */
    char state[24]; /* from /proc/self/task/TID/status: "sleeping", "running"... */
    enum hprof_thread_status status;
    int depth;
    uintptr_t pcs[HPROF_MAX_DEPTH]; /* leaf first: the interrupted PC, then return address - 1 */
};

struct hprof_threads {
    int64_t time_ns; /* CLOCK_REALTIME when captured */
    size_t n;
    size_t n_listed;              /* threads in /proc/self/task (n is at most HPROF_THREADS_MAX) */
    struct hprof_thread_stack *v; /* sorted by tid */
};

/* Capture every thread's stack (one collection at a time per process). Returns 0 / -1. */
int hprof_threads_capture(struct hprof_threads *out);
void hprof_threads_release(struct hprof_threads *threads);

/* Threads of the process now (entries of /proc/self/task), or 0 when unknown. */
size_t hprof_threads_count(void);

/* Why a thread has no stack, in words ("ok" when it has one). */
const char *hprof_thread_status_text(enum hprof_thread_status status);

/* One entry per distinct (stack, name) among the threads that have a stack, most threads
 * first; *n_out of them. NULL when out of memory (free with free(), inside
 * hprof_internal_enter/exit). */
struct hprof_thread_group {
    const struct hprof_thread_stack *first; /* the stack and name */
    long long count;
};
struct hprof_thread_group *hprof_threads_group(const struct hprof_threads *t, size_t *n_out);

#endif
