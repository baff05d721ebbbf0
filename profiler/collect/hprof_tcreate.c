/*
 * hprof_tcreate: the pthread_create interposer (see hprof_tcreate.h for what hooks get).
 *
 * Model. pthread_create here wraps the program's start routine in hprof_thread_start, which
 * runs every on_start hook on the new thread, then the routine itself, then every on_exit hook,
 * so a hook runs before the thread's first instruction of its own and after its last. The
 * routine, its argument and the on_create tokens travel in a small block that the creator
 * allocates and the new thread frees (both inside the guard: it is profiler overhead, never a
 * heap sample). The real pthread_create is found once with dlsym(RTLD_NEXT): glibc exports no
 * __libc_ alias for it as it does for malloc. dlsym may allocate (its error buffer), which is
 * why it runs inside the guard too; it never creates a thread, so it cannot recurse here.
 *
 * The end of a thread. A routine that returns comes back to hprof_thread_start; one that calls
 * pthread_exit, or is cancelled, does not: glibc unwinds its stack (a forced unwind) up to
 * start_thread, running the cleanup handlers it passes. hprof_thread_start pushes one
 * (pthread_cleanup_push) around the routine and pops it with execute on return, so on_exit
 * runs on both paths, on the thread, in hprof_thread_start's frame (where the tokens are).
 * A pthread_key destructor would have seen both paths too, but later (after the C++
 * thread_local destructors, in an order among other keys that nobody chooses), only for a
 * non-NULL value, and at the cost of one of the process's 1024 keys; the cleanup handler runs
 * first of all the exit work that glibc does, right after the program's own handlers.
 * Cancellation is disabled while hooks run (it already is during a cancellation's unwind), so
 * a hook that reaches a cancellation point (a write in a log line) is not cut short.
 *
 * Hooks: a fixed array written only under hprof_tcreate_lock by hprof_tcreate_register, which
 * fills an entry and then publishes the new count (release); pthread_create and the new threads
 * read the count (acquire) and the entries below it without a lock. Entries never change once
 * published. A thread runs on_start and on_exit for the hooks published when it started.
 *
 * The creating stack (for on_create) is walked with unw_backtrace only when some hook has an
 * on_create: a program nobody profiles for threadcreate pays one atomic load per thread.
 */
#include "hprof_env.h"
#include "hprof_fork.h"
#include "hprof_tcreate.h"
#include "hprof_unwind.h"

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

/* What the new thread runs after the hooks, and what the hooks' on_create returned. */
struct tcreate_start {
    void *(*routine)(void *);
    void *arg;
    int n_created; /* hooks whose token is below: those published when on_create ran */
    uintptr_t token[HPROF_TCREATE_MAX_HOOKS];
};

/* A running thread's hooks (those published when it started) and their tokens, in
 * hprof_thread_start's frame: it outlives the routine, and the exit hooks run in it. */
struct tcreate_thread {
    int n_hooks;
    uintptr_t token[HPROF_TCREATE_MAX_HOOKS];
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

/* The cleanup handler of hprof_thread_start: every on_exit, last registered first. */
static void run_on_exit(void *p)
{
    const struct tcreate_thread *t = p;
    int saved_errno = errno, state;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);
    hprof_internal_enter();
    for (int i = t->n_hooks - 1; i >= 0; i--)
        if (hprof_tcreate_hooks[i].on_exit != NULL)
            hprof_tcreate_hooks[i].on_exit(t->token[i]);
    hprof_internal_exit();
    pthread_setcancelstate(state, NULL);
    errno = saved_errno;
}

/* The new thread's first function: the start hooks, the program's routine, the exit hooks.
 * noinline: it is the one frame the profiler adds below a thread's own stack, named for what it
 * is. */
__attribute__((noinline)) static void *hprof_thread_start(void *p)
{
    struct tcreate_start start = *(struct tcreate_start *)p;
    struct tcreate_thread t;
    int saved_errno = errno, state;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);
    hprof_internal_enter();
    free(p);
    t.n_hooks = atomic_load_explicit(&hprof_tcreate_n_hooks, memory_order_acquire);
    for (int i = 0; i < t.n_hooks; i++) {
        t.token[i] = i < start.n_created ? start.token[i] : 0;
        if (hprof_tcreate_hooks[i].on_start != NULL)
            hprof_tcreate_hooks[i].on_start(t.token[i]);
    }
    hprof_internal_exit();
    errno = saved_errno;
    void *ret;
    /* From here every way out of the routine runs the exit hooks once: a return through the
     * pop, pthread_exit and cancellation through the handler, as glibc unwinds past this
     * frame. The state is restored inside, so a cancellation already pending is seen by the
     * routine's first cancellation point, with the handler in place. */
    pthread_cleanup_push(run_on_exit, &t);
    pthread_setcancelstate(state, NULL);
    ret = start.routine(start.arg);
    pthread_cleanup_pop(1);
    return ret;
}

/* The hooks' on_create, with the creating stack; their tokens go into start. */
__attribute__((noinline)) static void run_on_create(struct tcreate_start *start)
{
    void *raw[HPROF_MAX_DEPTH + 1];
    uintptr_t pcs[HPROF_MAX_DEPTH];
    /* Frames 0 and 1 are this function and pthread_create: skip them. unw_backtrace is not
     * async-signal-safe (it may allocate a per-thread cache); pthread_create is not either. */
    hprof_unwind_init();
    (void)hprof_fork_loader_enter(1); /* a fork must not copy the loader's lock held */
    int n = unw_backtrace(raw, HPROF_MAX_DEPTH + 1), depth = 0;
    hprof_fork_loader_leave();
    for (int i = 2; i < n; i++)
        pcs[depth++] = (uintptr_t)raw[i] - 1; /* return address - 1: inside the call */
    int hooks = atomic_load_explicit(&hprof_tcreate_n_hooks, memory_order_acquire);
    for (int i = 0; i < hooks; i++)
        start->token[i] = hprof_tcreate_hooks[i].on_create != NULL
                              ? hprof_tcreate_hooks[i].on_create(pcs, depth)
                              : 0;
    start->n_created = hooks;
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
    struct tcreate_start *start = malloc(sizeof(*start));
    if (start != NULL) {
        start->n_created = 0;
        if (atomic_load_explicit(&hprof_tcreate_n_create, memory_order_relaxed) > 0)
            run_on_create(start);
    }
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
