/*
 * hprof_fork: the profiler's one fork sequence (jemalloc's prof_prefork0 / prof_postfork_parent
 * / prof_postfork_child). One pthread_atfork registration for the whole profiler; each module
 * that has state to protect or reset across fork() fills its stage with prepare, parent and child
 * functions instead of registering handlers of its own, so the order in which they run is the
 * order written below and in hprof_fork.c, whatever order the modules started in.
 *
 * prepare runs the stages first to last (outermost lock first); parent and child run them last
 * to first. The whole sequence runs inside the profiler's guard (hprof_internal_enter): what a
 * stage allocates is overhead, and the lock interposer forwards its locks without recording.
 * A stage's functions are called only once it is registered, and any of them may be NULL.
 */
#ifndef HPROF_FORK_H
#define HPROF_FORK_H

/* The stages, in lock order (see hprof_fork.c for what each takes or resets, and why). */
enum hprof_fork_stage {
    HPROF_FORK_STATS,     /* web/hprof_stats.c: the stats registry (reset in the child) */
    HPROF_FORK_SYMBOLIZE, /* pprof/hprof_symbolize.c: the symbolizer (reset in the child) */
    HPROF_FORK_THREADS,   /* collect/hprof_threads.c: the threads capture (reset in the child) */
    HPROF_FORK_CPU,       /* collect/hprof_cpu.c: SIGPROF handlers quiesced; idle child */
    HPROF_FORK_LOCKS,     /* collect/hprof_locks.c: waiters and spinlocks (reset in the child) */
    HPROF_FORK_MALLOC,    /* collect/hprof_malloc.c: the fork gate, then the bucket table lock */
    HPROF_FORK_STAGES
};

struct hprof_fork_ops {
    void (*prepare)(void); /* in the parent, before fork(); may wait, must not fail */
    void (*parent)(void);  /* in the parent, after fork() */
    void (*child)(void);   /* in the child (one thread: the one that called fork) */
};

/* Fill `stage` with `ops` (static storage; a stage is filled once, or again with the same ops)
 * and make sure the sequence is registered with pthread_atfork. Safe from any thread, from a
 * constructor, and from malloc's own initialisation (the registration runs inside the guard).
 * A fork() between two registrations runs the stages registered so far. */
void hprof_fork_register(enum hprof_fork_stage stage, const struct hprof_fork_ops *ops);

/* The loader gate. libunwind's lookups and hprof_maps walk the loaded objects with
 * dl_iterate_phdr, which holds the loader's lock; glibc 2.36 does not reset that lock in a fork
 * child, so a child forked while another thread held it hangs at its first walk (seen: a
 * profiler_collect_fork child, under load). Code that walks enters the gate; the sequence's
 * prepare closes it and waits until no other thread is inside, and opens it after. enter(0) does
 * not wait: -1 while a fork is being prepared (the caller drops its sample; async-signal-safe,
 * for handlers); enter(1) waits for the fork to finish, and always returns 0. A thread's own
 * entries never hold up its own fork (a signal handler that forks). */
int hprof_fork_loader_enter(int wait);
void hprof_fork_loader_leave(void);

/* Forks this process has gone through, as the parent (for tests and statistics). */
unsigned long hprof_fork_count(void);

#endif
