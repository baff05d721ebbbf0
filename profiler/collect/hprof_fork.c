/*
 * hprof_fork: the profiler's one fork sequence (see hprof_fork.h for the interface).
 *
 * Model. fork() copies the calling thread alone: any lock another thread held is held forever
 * in the child, and any structure it was changing stays half-changed. A profiler module either
 * keeps such a lock out of fork's way (prepare takes it, parent and child release it), so the
 * child inherits a consistent structure, or gives the child a fresh lock and abandons (or
 * resets) what the lock guarded. Before this file each module registered its own
 * pthread_atfork handlers, which glibc runs in the reverse order of registration: the order
 * depended on which module happened to start first. Now there is one registration, and the
 * order is the one written here.
 *
 * The lock order (prepare takes top to bottom; parent and child undo bottom to top):
 *
 *   0. hprof_fork_lock (this file): serialises the profiler's half of concurrent fork() calls
 *      from different threads. Without it, the parent handler of one fork reopened the heap
 *      sampler's gate while another thread's fork was still between its own prepare and the
 *      copy. A fork from a signal handler that interrupted its own thread inside this sequence
 *      does not wait for itself (hprof_fork_t.depth).
 *   1. HPROF_FORK_STATS, stats_lock: NOT taken. It is held while the program's registered stats
 *      sources run, and they take the program's own locks, which the forking thread may hold:
 *      taking it here could deadlock. The child gets a fresh lock (the registry is a small
 *      array, written only under the lock: an interrupted add or remove loses at most that one
 *      source).
 *   2. HPROF_FORK_SYMBOLIZE, sym_lock: NOT taken. It is held for a whole profile's
 *      symbolization inside libdw (up to seconds with a cold cache): a fork must not wait for
 *      that. The child abandons the symbolizer's state (not freed: it may be inconsistent) and
 *      gets a fresh lock; its first profile starts over.
 *   3. HPROF_FORK_THREADS, capture_lock: NOT taken. A collection holds it while it waits (up to
 *      200 ms) for threads to answer a signal. The child has no collection and a fresh lock.
 *   4. HPROF_FORK_CPU: no lock. prepare makes SIGPROF handlers drop their sample and waits until
 *      none is inside libunwind (whose locks the child needs); parent lets them record again. The
 *      child has neither the timers nor the drain thread: it starts idle, with fresh locks.
 *      hprof_cpu_lock is not taken (stop joins the drain thread while holding it).
 *   5. HPROF_FORK_LOCKS: no lock taken. The child is waiting for no lock, so the waiter table is
 *      cleared; its spinlocks (stack insertion, rates) are reset, and the threadcreate counts
 *      keep only the child's one thread. Stack records are published
 *      only once complete, so an insertion cut short leaves an unlinked record, never a
 *      broken one.
 *   6. HPROF_FORK_MALLOC, innermost: the fork gate, then the bucket table's insert lock. prepare
 *      closes the gate and waits until no sampler is unwinding or inserting, then takes the
 *      table lock; the child therefore has a consistent table and libunwind with no lock held.
 *      It comes last because samplers are admitted by the gate from anywhere in the program,
 *      including from threads that hold the locks above (a stats source, say): a thread
 *      inside the gate takes no lock of the stages above it.
 *
 * The loader gate (hprof_fork.h) comes before every stage, just after hprof_fork_lock: prepare
 * closes it and waits until no other thread is inside dl_iterate_phdr (libunwind's lookups in
 * the mutex/block recorders and the threads handlers, hprof_maps), so the child's loader lock
 * is free. The heap sampler's unwinding has its own gate (stage 6) and SIGPROF handlers theirs
 * (stage 4).
 *
 * Every stage runs inside the profiler's guard (hprof_internal_enter here, before stage 1): an
 * allocation by a stage or by libc on its behalf is served as overhead and never waits on the
 * gate, and the lock interposer forwards the stages' own pthread locks without profiling them.
 *
 * Invariants (HPROF_ASSERT, checked in debug and test builds): parent and child run only on the
 * thread whose prepare ran, after it completed every stage; the child runs in a new process,
 * parent in the old one; a stage is filled once (or again with the same functions).
 */
#include "hprof_fork.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "hprof_assert.h"
#include "hprof_env.h"
#include "hprof_internal.h"

static const struct hprof_fork_ops *_Atomic stages[HPROF_FORK_STAGES];
static _Atomic int registered; /* pthread_atfork called (or being called) */
static pthread_mutex_t hprof_fork_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic unsigned long forks;

/* The forking thread's place in the sequence. */
struct fork_thread {
    int depth;  /* sequences begun and not ended on this thread (> 1: a signal handler forked) */
    int stages; /* stages prepared by the outermost sequence (HPROF_FORK_STAGES once complete) */
    pid_t pid;  /* the process that prepared */
    int locked; /* this thread holds hprof_fork_lock */
};
static __thread struct fork_thread hprof_fork_t __attribute__((tls_model("initial-exec")));

/* The loader gate: threads inside (all, and this thread's own), and whether a fork closed it.
 * Sequentially consistent, a Dekker pair as the other gates. */
static _Atomic int loader_inside, loader_closed;
static __thread int loader_mine __attribute__((tls_model("initial-exec")));

int hprof_fork_loader_enter(int wait)
{
    for (;;) {
        atomic_fetch_add(&loader_inside, 1);
        if (!atomic_load(&loader_closed)) {
            loader_mine++;
            return 0;
        }
        atomic_fetch_sub(&loader_inside, 1);
        if (!wait)
            return -1;
        while (atomic_load(&loader_closed))
            sched_yield();
    }
}

void hprof_fork_loader_leave(void)
{
    loader_mine--;
    atomic_fetch_sub(&loader_inside, 1);
}

static void fork_prepare(void)
{
    struct fork_thread *t = &hprof_fork_t;
    hprof_internal_enter();
    if (t->depth++ == 0) {
        pthread_mutex_lock(&hprof_fork_lock);
        t->locked = 1;
        t->pid = getpid();
        t->stages = 0;
        atomic_store(&loader_closed, 1);
        while (atomic_load(&loader_inside) != loader_mine)
            sched_yield(); /* another thread is walking the loaded objects */
    }
    for (int i = 0; i < HPROF_FORK_STAGES; i++) {
        const struct hprof_fork_ops *ops = atomic_load(&stages[i]);
        if (ops != NULL && ops->prepare != NULL)
            ops->prepare();
        if (t->depth == 1)
            t->stages = i + 1;
    }
}

/* Undo the stages in reverse; `child` picks the child's functions. */
static void fork_finish(int child)
{
    struct fork_thread *t = &hprof_fork_t;
    HPROF_ASSERT(t->depth > 0); /* prepare ran on this thread */
    if (t->depth == 1) {        /* (a nested fork may have cut the outer prepare short) */
        HPROF_ASSERT(t->stages == HPROF_FORK_STAGES);       /* ... and completed every stage */
        HPROF_ASSERT((getpid() != t->pid) == (child != 0)); /* the child is a new process */
    }
    for (int i = HPROF_FORK_STAGES - 1; i >= 0; i--) {
        const struct hprof_fork_ops *ops = atomic_load(&stages[i]);
        void (*fn)(void) = ops == NULL ? NULL : child ? ops->child : ops->parent;
        if (fn != NULL)
            fn();
    }
    if (--t->depth == 0 && t->locked) {
        t->locked = 0;
        if (child)
            atomic_store(&loader_inside, loader_mine); /* the other threads are not here */
        atomic_store(&loader_closed, 0);
        if (child)
            pthread_mutex_init(&hprof_fork_lock, NULL); /* the child's one thread: a fresh lock */
        else
            pthread_mutex_unlock(&hprof_fork_lock);
    }
    hprof_internal_exit();
}

static void fork_parent(void)
{
    atomic_fetch_add_explicit(&forks, 1, memory_order_relaxed);
    fork_finish(0);
}

static void fork_child(void)
{
    atomic_store_explicit(&forks, 0, memory_order_relaxed); /* the child has not forked yet */
    fork_finish(1);
}

void hprof_fork_register(enum hprof_fork_stage stage, const struct hprof_fork_ops *ops)
{
    if ((unsigned)stage >= HPROF_FORK_STAGES || ops == NULL)
        return;
    const struct hprof_fork_ops *old = NULL;
    if (!atomic_compare_exchange_strong(&stages[stage], &old, ops))
        HPROF_ASSERT(old == ops); /* one set of functions per stage */
    int expected = 0;
    if (!atomic_compare_exchange_strong(&registered, &expected, 1))
        return; /* registered, or being registered by a caller further up this very stack */
    /* pthread_atfork allocates (glibc keeps the handlers in a growable array): inside the guard,
     * so that malloc's first call, which registers its stage from here, does not recurse. */
    hprof_internal_enter();
    int rc = pthread_atfork(fork_prepare, fork_parent, fork_child);
    hprof_internal_exit();
    if (rc != 0)
        hprof_log("pthread_atfork: %s: fork() in this process is not made safe for the "
                  "profiler\n",
                  strerror(rc));
}

unsigned long hprof_fork_count(void)
{
    return atomic_load_explicit(&forks, memory_order_relaxed);
}
