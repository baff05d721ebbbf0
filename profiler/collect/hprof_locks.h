/*
 * hprof_locks: the contention profiles' collection (collect layer). pthread mutexes, rwlocks,
 * condition variables and semaphores are interposed as malloc is; two profiles come out, with
 * Go's semantics (runtime/mprof.go):
 *
 *   mutex  a sampled fraction (1 in HEAPPROF_MUTEX_FRACTION) of the contended releases of a
 *          mutex or rwlock, each blamed on the stack that HELD the lock (recorded at unlock)
 *          with the time its waiters spent waiting for it; each sample counts `fraction`
 *          events and `fraction` times its delay, so the totals are unbiased estimates.
 *   block  the waits themselves, blamed on the stack that WAITED: contended mutex and rwlock
 *          acquisitions, pthread_cond_*wait, sem_*wait that had to sleep. Sampled by duration
 *          with HEAPPROF_BLOCK_RATE nanoseconds: a wait of d >= rate is always kept (1 event,
 *          d ns); a shorter one with probability d / rate, counting rate / d events and rate ns
 *          (unbiased, as Go's heap and block samples are).
 *
 * Both are off by default (Go's defaults); the variables switch them on at start, and
 * hprof_locks_window_begin/end switch them on for the length of a ?seconds=N request.
 */
#ifndef HPROF_LOCKS_H
#define HPROF_LOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "hprof_internal.h"

/* The profiles kept in this module's stack table. THREADCREATE is not about locks: it counts the
 * live threads created through pthread_create (hprof_tcreate.h; started, not yet ended) by the
 * stack that created them, and shares the table (count only, delay 0). */
enum hprof_lock_profile { HPROF_LOCK_MUTEX = 0, HPROF_LOCK_BLOCK = 1, HPROF_THREADCREATE = 2 };

/* The rates a ?seconds=N window turns on when the profile is off: every contended release
 * (Go's SetMutexProfileFraction(1)), and waits sampled at one per 10 us spent waiting. */
#define HPROF_LOCKS_WINDOW_FRACTION 1
#define HPROF_LOCKS_WINDOW_RATE_NS  10000

/* One stack of one profile: count is an estimate of events (a fraction for block samples of
 * short waits), delay_ns the estimated total time waited. */
struct hprof_lock_record {
    uint64_t id; /* stable for the life of the process: deltas match records by it */
    double count;
    int64_t delay_ns;
    int depth;
    uintptr_t pcs[HPROF_MAX_DEPTH]; /* leaf first, return address - 1 */
};

struct hprof_lock_snapshot {
    enum hprof_lock_profile profile;
    int64_t time_ns; /* CLOCK_REALTIME when taken */
    uint64_t period; /* the fraction (mutex) or the rate in ns (block) in effect; 0 = off */
    size_t n;
    struct hprof_lock_record *v; /* sorted by delay, largest first */
};

/* Copy a profile (lock-free; allocated inside the guard). Returns 0 / -1 (ENOMEM). */
int hprof_locks_snapshot(enum hprof_lock_profile profile, struct hprof_lock_snapshot *out);
void hprof_locks_snapshot_release(struct hprof_lock_snapshot *snapshot);

/* p1 - p0 by record id, records with nothing new dropped (Go's delta profiles). out has p1's
 * time and period. Returns 0 / -1 (ENOMEM). */
int hprof_locks_delta(const struct hprof_lock_snapshot *p0, const struct hprof_lock_snapshot *p1,
                      struct hprof_lock_snapshot *out);

/* The rates in effect now: mutex fraction (0 = off), block rate in ns (0 = off). */
void hprof_locks_rates(uint64_t *fraction, uint64_t *rate_ns);

/* Set the configured rates (what HEAPPROF_MUTEX_FRACTION / HEAPPROF_BLOCK_RATE set at start);
 * an open window keeps its own until it closes. */
void hprof_locks_set_rates(uint64_t fraction, uint64_t rate_ns);

/* A ?seconds=N request: while at least one window is open, a profile that is configured off
 * runs at the HPROF_LOCKS_WINDOW_* rate. Windows nest (a counter); end restores the configured
 * rates when the last one closes. */
void hprof_locks_window_begin(void);
void hprof_locks_window_end(void);

/* Live threads created through pthread_create (the index's count; the main thread, and threads
 * made before the profiler was loaded, are not among them). */
uint64_t hprof_threadcreate_total(void);

struct hprof_lock_stats {
    uint64_t contended; /* lock acquisitions that had to wait, seen while a profile was on */
    uint64_t waits;     /* condition-variable and semaphore waits seen while block was on */
    uint64_t mutex_samples, block_samples; /* stacks recorded */
    uint64_t dropped; /* samples lost: the waiter table or the stack table was full */
    uint64_t stacks;  /* distinct (profile, stack) records */
    uint64_t mapped_bytes;
};
void hprof_locks_get_stats(struct hprof_lock_stats *out);

#endif
