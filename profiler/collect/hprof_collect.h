/*
 * hprof_collect: the collection half's own seams (sampler, bucket table, malloc layer).
 *
 * The heap collection is three files of collect/, layered so that each can be tested on its own
 * (the layer's other modules have headers of their own: hprof_cpu.h, hprof_threads.h,
 * hprof_unwind.h for the signal engines, hprof_locks.h for the lock profiles, hprof_tcreate.h
 * for pthread_create, hprof_internal.h for the snapshot; and the primitives every layer shares:
 * hprof_env.h (settings, messages), hprof_fork.h (the one fork sequence), hprof_proc.h (/proc),
 * hprof_hash.h (the one hash), hprof_assert.h (invariants in debug and test builds)):
 *
 *   hprof_sampler.c  pure functions: the per-thread PRNG, exponential sample distances, the
 *                    unbiasing weight. No state, no locks. (HEAPPROF_* numbers are read with
 *                    lc_util's lc_parse_u64, which is safe inside malloc too.)
 *   hprof_table.c    the bucket table: (stack, size) -> counters. It never calls malloc on its
 *                    record path (buckets live in mmap'd arenas), so it can be unit-tested from
 *                    many threads under TSan without the interposer (tests/profiler_collect).
 *   hprof_malloc.c   the interposer: malloc & co, the thread-local countdown, the recursion
 *                    guard, the in-band header of tagged blocks, fork and signal safety.
 *
 * A bucket's counters are two integers, samples recorded and samples retired, because every
 * sample of a bucket has the same weight: the weight 1 / (1 - exp(-size / rate)) depends only on
 * the size, which is part of the key, and on the rate, which is fixed for the process. So the
 * sums of weights the profile needs are exact products (count * weight) computed at snapshot
 * time, and the counters can be updated with one atomic add, without any lock: free and realloc
 * of a sampled block never block, even in a signal handler.
 */
#ifndef HPROF_COLLECT_H
#define HPROF_COLLECT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "heapprof.h"
#include "hprof_internal.h"

#define HPROF_DEFAULT_RATE 524288 /* bytes: mean distance between samples, as in Go */

/* ---- sampler (hprof_sampler.c) ---- */

/* Seed a per-thread generator from the process seed and the thread's ordinal (0, 1, 2...), so
 * that with HEAPPROF_SEED a single-threaded run samples the same allocations every time. */
void hprof_rng_seed(uint64_t *state, uint64_t seed, uint64_t ordinal);
uint64_t hprof_rng_next(uint64_t *state);

/* Bytes until the next sample: ceil(D) with D ~ Exp(mean = rate), at least 1. An allocation of
 * n bytes is then sampled iff n >= distance, with probability exactly 1 - exp(-n / rate).
 * rate 1 returns 0 (every allocation, including malloc(0), is sampled); rate 0 never samples. */
size_t hprof_sample_distance(uint64_t *state, uint64_t rate);

/* The unbiasing weight of a sample of `size` bytes: 1 / (1 - exp(-size / rate)); exactly 1 at
 * rate 1 (every allocation is recorded). */
double hprof_sample_weight(uint64_t size, uint64_t rate);

/* ---- bucket table (hprof_table.c) ---- */

struct hprof_tbucket {
    struct hprof_tbucket *next;  /* hash chain; immutable once the bucket is published */
    struct hprof_tbucket *older; /* list of all buckets, newest first; immutable too */
    uint64_t hash;
    uint64_t size;           /* bytes per allocation: part of the key */
    double weight;           /* of each sample of this bucket */
    int64_t wbytes;          /* weight x size, rounded: a sample's share of the running in-use */
    _Atomic uint64_t allocs; /* samples recorded */
    _Atomic uint64_t frees;  /* samples retired (free, realloc); never more than allocs */
    uint32_t depth;
    uintptr_t pcs[]; /* depth frames, leaf first, return address - 1 */
};

/* Prepare the (process-wide) table for samples taken at `rate` (> 0). Returns 0 / -1. Call once,
 * before any other hprof_table_ function. */
int hprof_table_init(uint64_t rate);

/* The bucket of (pcs[0..depth), size), created if needed. Lock-free when it exists; otherwise
 * one mutex, held for the insertion only (no malloc: buckets come from mmap'd arenas). Returns
 * NULL when the table is not initialised or memory is exhausted. */
struct hprof_tbucket *hprof_table_intern(const uintptr_t *pcs, int depth, uint64_t size);

/* The running estimate of in-use bytes and its peak, kept on the sampled paths only (a sampled
 * allocation adds its bucket's unbiased bytes, weight x size, rounded once per bucket; the free
 * of a sampled block subtracts the same), so the unsampled fast path pays nothing. Relaxed: the
 * running sum may be momentarily stale across threads, and the peak is the largest value one
 * thread saw after its own add, an estimate like every other figure of a sampled profile. */
extern _Atomic int64_t hprof_table_inuse_run;
extern _Atomic int64_t hprof_table_inuse_peak;

static inline void hprof_table_count_alloc(struct hprof_tbucket *b)
{
    atomic_fetch_add_explicit(&b->allocs, 1, memory_order_relaxed);
    int64_t now =
        atomic_fetch_add_explicit(&hprof_table_inuse_run, b->wbytes, memory_order_relaxed) +
        b->wbytes;
    int64_t peak = atomic_load_explicit(&hprof_table_inuse_peak, memory_order_relaxed);
    while (now > peak &&
           !atomic_compare_exchange_weak_explicit(&hprof_table_inuse_peak, &peak, now,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* Release: a snapshot that reads `frees` with acquire also sees the matching allocs. */
static inline void hprof_table_count_free(struct hprof_tbucket *b)
{
    atomic_fetch_add_explicit(&b->frees, 1, memory_order_release);
    atomic_fetch_sub_explicit(&hprof_table_inuse_run, b->wbytes, memory_order_relaxed);
}

/* The peak of the running in-use estimate since start (bytes; 0 before any sample). */
static inline int64_t hprof_table_peak_inuse(void)
{
    return atomic_load_explicit(&hprof_table_inuse_peak, memory_order_relaxed);
}

/* Copy the table into `out` (buckets allocated with malloc: callers in the interposed process
 * wrap this in hprof_internal_enter/exit). Lock-free. Returns 0 / -1 (ENOMEM). */
int hprof_table_snapshot(struct hprof_snapshot *out);

/* Fill rate, inuse_*, alloc_*, samples_live and buckets of `out` (not overhead_bytes). */
void hprof_table_totals(struct hprof_totals *out);

/* Bytes the table has mmap'd (hash heads and bucket arenas). */
size_t hprof_table_mapped_bytes(void);

/* fork: held across fork() so that no insertion is half-done in the child. */
void hprof_table_lock(void);
void hprof_table_unlock(void);
void hprof_table_reinit_lock_in_child(void);

/* Test seam: when set, called while the insert lock is held, before a new bucket is published.
 * Tests use it to deliver a signal while the thread is deep inside the profiler. Compiled into
 * builds with tests only (HPROF_TEST_HOOKS, defined when BUILD_TESTING is on). */
#ifdef HPROF_TEST_HOOKS
extern void (*volatile hprof_table_insert_hook)(void);
#endif

/* ---- malloc layer (hprof_malloc.c) ---- */

/* The calling thread's guard depth (> 0 inside the profiler). For tests and assertions. */
int hprof_internal_depth(void);

/* The rate in effect (0 before the first allocation or when off). */
uint64_t hprof_collect_rate(void);

/* 1 if `p` (a live block from malloc & co) carries the profiler's header, 0 if glibc's. */
int hprof_block_is_tagged(const void *p);

#endif
