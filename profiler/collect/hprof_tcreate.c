/*
 * hprof_tcreate: the pthread_create interposer (see hprof_tcreate.h for what hooks get).
 *
 * Model. pthread_create here wraps the program's start routine in hprof_thread_start, which
 * runs every on_start hook on the new thread and then the routine itself, so a hook runs
 * before the thread's first instruction of its own. The routine and its argument travel in a
 * small block that the creator allocates and the new thread frees (both inside the guard: it
 * is profiler overhead, never a heap sample). The real pthread_create is found once with
 * dlsym(RTLD_NEXT): glibc exports no __libc_ alias for it as it does for malloc. dlsym may
 * allocate (its error buffer), which is why it runs inside the guard too; it never creates a
 * thread, so it cannot recurse here.
 *
 * Hooks: a fixed array written only under hprof_tcreate_lock by hprof_tcreate_register, which
 * fills an entry and then publishes the new count (release); pthread_create and the new threads
 * read the count (acquire) and the entries below it without a lock. Entries never change once
 * published.
 *
 * The creating stack (for on_create) is walked with unw_backtrace only when some hook has an
 * on_create: a program nobody profiles for threadcreate pays one atomic load per thread.
 */
#include "hprof_env.h"
#include "hprof_tcreate.h"

#include <dlfcn.h>
#include <errno.h>
#include <libunwind.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "hprof_internal.h"

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

static pthread_mutex_t hprof_tcreate_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hprof_tcreate_hooks hprof_tcreate_hooks[HPROF_TCREATE_MAX_HOOKS];
static atomic_int hprof_tcreate_n_hooks;
static atomic_int hprof_tcreate_n_create; /* hooks with an on_create */
static _Atomic uint64_t hprof_tcreate_created;
static _Atomic(pthread_create_fn) hprof_real_pthread_create;

/* What the new thread runs after the hooks. */
struct tcreate_start {
    void *(*routine)(void *);
    void *arg;
};

int hprof_tcreate_register(const struct hprof_tcreate_hooks *hooks)
{
    pthread_mutex_lock(&hprof_tcreate_lock);
    int n = atomic_load_explicit(&hprof_tcreate_n_hooks, memory_order_relaxed);
    if (n == HPROF_TCREATE_MAX_HOOKS) {
        pthread_mutex_unlock(&hprof_tcreate_lock);
        errno = ENOSPC;
        return -1;
    }
    hprof_tcreate_hooks[n] = *hooks;
    if (hooks->on_create != NULL)
        atomic_fetch_add(&hprof_tcreate_n_create, 1);
    atomic_store_explicit(&hprof_tcreate_n_hooks, n + 1, memory_order_release);
    pthread_mutex_unlock(&hprof_tcreate_lock);
    return 0;
}

uint64_t hprof_tcreate_count(void)
{
    return atomic_load_explicit(&hprof_tcreate_created, memory_order_relaxed);
}

static pthread_create_fn real_pthread_create(void)
{
    pthread_create_fn f = atomic_load_explicit(&hprof_real_pthread_create, memory_order_acquire);
    if (f != NULL)
        return f;
    hprof_internal_enter();
    f = (pthread_create_fn)dlsym(RTLD_NEXT, "pthread_create");
    hprof_internal_exit();
    if (f != NULL) /* two threads may both look it up: they find the same function */
        atomic_store_explicit(&hprof_real_pthread_create, f, memory_order_release);
    return f;
}

/* The new thread's first function: the hooks, then the program's routine. noinline: it is the
 * one frame the profiler adds below a thread's own stack, named for what it is. */
__attribute__((noinline)) static void *hprof_thread_start(void *p)
{
    struct tcreate_start start = *(struct tcreate_start *)p;
    hprof_internal_enter();
    free(p);
    int n = atomic_load_explicit(&hprof_tcreate_n_hooks, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (hprof_tcreate_hooks[i].on_start != NULL)
            hprof_tcreate_hooks[i].on_start();
    hprof_internal_exit();
    return start.routine(start.arg);
}

__attribute__((noinline)) static void run_on_create(void)
{
    void *raw[HPROF_MAX_DEPTH + 1];
    uintptr_t pcs[HPROF_MAX_DEPTH];
    /* Frames 0 and 1 are this function and pthread_create: skip them. unw_backtrace is not
     * async-signal-safe (it may allocate a per-thread cache); pthread_create is not either. */
    int n = unw_backtrace(raw, HPROF_MAX_DEPTH + 1), depth = 0;
    for (int i = 2; i < n; i++)
        pcs[depth++] = (uintptr_t)raw[i] - 1; /* return address - 1: inside the call */
    int hooks = atomic_load_explicit(&hprof_tcreate_n_hooks, memory_order_acquire);
    for (int i = 0; i < hooks; i++)
        if (hprof_tcreate_hooks[i].on_create != NULL)
            hprof_tcreate_hooks[i].on_create(pcs, depth);
}

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*routine)(void *),
                   void *arg)
{
    pthread_create_fn real = real_pthread_create();
    if (real == NULL) {
        /* No later pthread_create in the process: nothing this call could do. */
        hprof_log("pthread_create: cannot find glibc's own (dlsym)\n");
        return EAGAIN;
    }
    hprof_internal_enter();
    if (atomic_load_explicit(&hprof_tcreate_n_create, memory_order_relaxed) > 0)
        run_on_create();
    struct tcreate_start *start = malloc(sizeof(*start));
    hprof_internal_exit();
    if (start == NULL)
        return EAGAIN; /* what pthread_create itself says when memory is short */
    start->routine = routine;
    start->arg = arg;
    int rc = real(thread, attr, hprof_thread_start, start);
    if (rc != 0) {
        hprof_internal_enter();
        free(start);
        hprof_internal_exit();
        return rc;
    }
    atomic_fetch_add_explicit(&hprof_tcreate_created, 1, memory_order_relaxed);
    return 0;
}
