/*
 * hprof_table: the bucket table, one bucket per distinct (stack, allocation size), as Go keys
 * its memory profile.
 *
 * Model: a fixed array of hash heads, each the start of a singly linked chain of buckets, and a
 * second list through all buckets (newest first) for snapshots. Buckets are never removed (the
 * alloc_* counts are "since start"), so a bucket's address is stable for the life of the
 * process: the malloc layer stores it in the header of each sampled block, and free retires a
 * sample with one atomic add on that bucket, without a lookup or a lock.
 *
 * Invariants and locks:
 *   - A bucket's key (hash, size, depth, pcs, weight) and its links (next, older) are written
 *     before it is published with a release store into its head and into hprof_all, and never
 *     written again. Readers (lookups, snapshots) walk chains without a lock, with acquire loads.
 *   - hprof_insert_lock serialises insertions (re-check, arena bump, publish). It is the only
 *     lock here; it is held for a few hundred instructions and never around malloc, unwinding or
 *     any call that could take another lock (mmap is a system call, not a lock we can invert).
 *   - allocs and frees are atomic counters; frees is incremented with release after the
 *     block's allocs increment happened-before it, so a snapshot that loads frees (acquire) then
 *     allocs never sees frees > allocs.
 *   - No malloc on the record path: buckets live in mmap'd arenas of HPROF_ARENA_BYTES. This
 *     keeps the table usable from inside malloc, in a signal handler (lookups only take no lock)
 *     and in a TSan unit test without the interposer.
 *
 * Memory: each bucket costs sizeof(struct hprof_tbucket) + 8 bytes per frame, rounded up to a
 * cache line so that the counters of two hot buckets never share one (false sharing at rate 1
 * with many threads). The heads are HPROF_TABLE_HEADS pointers; chains stay short up to a few
 * hundred thousand buckets, beyond which lookups slow down gracefully (the table never fails
 * to insert because of its head count).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "hprof_collect.h"
#include "hprof_hash.h"
#include "lc_util.h"

#define HPROF_TABLE_HEADS  (1u << 15) /* hash chains (power of two): 256 KiB of heads */
#define HPROF_ARENA_BYTES  (1u << 20) /* bytes mmap'd at a time for buckets */
#define HPROF_BUCKET_ALIGN 64u        /* bytes: one cache line per bucket at least */

typedef struct hprof_tbucket *hprof_tbucket_ptr;

typedef _Atomic hprof_tbucket_ptr hprof_head;
static _Atomic(hprof_head *) hprof_heads;   /* HPROF_TABLE_HEADS chains; NULL until init */
static _Atomic hprof_tbucket_ptr hprof_all; /* every bucket, newest first */
static _Atomic size_t hprof_mapped;         /* bytes mmap'd by the table */
static uint64_t hprof_table_rate;           /* set once by hprof_table_init */
_Atomic int64_t hprof_table_inuse_run;      /* see hprof_collect.h */
_Atomic int64_t hprof_table_inuse_peak;

static pthread_mutex_t hprof_insert_lock = PTHREAD_MUTEX_INITIALIZER;
static char *hprof_arena_cur, *hprof_arena_end; /* guarded by hprof_insert_lock */

#ifdef HPROF_TEST_HOOKS
void (*volatile hprof_table_insert_hook)(void);
#endif

static void *hprof_map(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    atomic_fetch_add_explicit(&hprof_mapped, bytes, memory_order_relaxed);
    return p;
}

int hprof_table_init(uint64_t rate)
{
    if (rate == 0) {
        errno = EINVAL;
        return -1;
    }
    void *heads = hprof_map(HPROF_TABLE_HEADS * sizeof(hprof_head));
    if (heads == NULL)
        return -1;
    hprof_table_rate = rate;
    /* mmap'd memory is zero: every head starts empty. */
    atomic_store_explicit(&hprof_heads, (hprof_head *)heads, memory_order_release);
    return 0;
}

static uint64_t hprof_hash_stack(const uintptr_t *pcs, int depth, uint64_t size)
{
    return hprof_hash_pcs(size, pcs, (size_t)depth);
}

static int hprof_bucket_matches(const struct hprof_tbucket *b, uint64_t hash, const uintptr_t *pcs,
                                int depth, uint64_t size)
{
    return b->hash == hash && b->size == size && b->depth == (uint32_t)depth &&
           memcmp(b->pcs, pcs, (size_t)depth * sizeof(uintptr_t)) == 0;
}

static struct hprof_tbucket *hprof_chain_find(struct hprof_tbucket *b, uint64_t hash,
                                              const uintptr_t *pcs, int depth, uint64_t size)
{
    for (; b != NULL; b = b->next)
        if (hprof_bucket_matches(b, hash, pcs, depth, size))
            return b;
    return NULL;
}

/* A zeroed, aligned bucket of `bytes` from the arena. Called with hprof_insert_lock held. */
static void *hprof_arena_alloc(size_t bytes)
{
    bytes = (bytes + HPROF_BUCKET_ALIGN - 1) & ~(size_t)(HPROF_BUCKET_ALIGN - 1);
    if (hprof_arena_cur == NULL || (size_t)(hprof_arena_end - hprof_arena_cur) < bytes) {
        char *chunk = hprof_map(HPROF_ARENA_BYTES);
        if (chunk == NULL)
            return NULL;
        /* The tail of the previous chunk is abandoned: at most one bucket's worth. */
        hprof_arena_cur = chunk;
        hprof_arena_end = chunk + HPROF_ARENA_BYTES;
    }
    void *p = hprof_arena_cur;
    hprof_arena_cur += bytes;
    return p;
}

struct hprof_tbucket *hprof_table_intern(const uintptr_t *pcs, int depth, uint64_t size)
{
    hprof_head *heads = atomic_load_explicit(&hprof_heads, memory_order_acquire);
    if (heads == NULL || depth < 0 || depth > HPROF_MAX_DEPTH)
        return NULL;
    uint64_t hash = hprof_hash_stack(pcs, depth, size);
    hprof_head *head = &heads[hash & (HPROF_TABLE_HEADS - 1)];

    struct hprof_tbucket *b =
        hprof_chain_find(atomic_load_explicit(head, memory_order_acquire), hash, pcs, depth, size);
    if (b != NULL)
        return b;

    pthread_mutex_lock(&hprof_insert_lock);
    /* Another thread may have inserted it since our lock-free look. */
    struct hprof_tbucket *first = atomic_load_explicit(head, memory_order_relaxed);
    b = hprof_chain_find(first, hash, pcs, depth, size);
    if (b != NULL)
        goto out;
#ifdef HPROF_TEST_HOOKS
    if (hprof_table_insert_hook != NULL)
        hprof_table_insert_hook();
#endif
    b = hprof_arena_alloc(sizeof(*b) + (size_t)depth * sizeof(uintptr_t));
    if (b == NULL)
        goto out;
    b->next = first;
    b->older = atomic_load_explicit(&hprof_all, memory_order_relaxed);
    b->hash = hash;
    b->size = size;
    b->weight = hprof_sample_weight(size, hprof_table_rate);
    double wbytes = b->weight * (double)size; /* clamped: no single malloc gets near 2^62 */
    b->wbytes = wbytes < 4.6e18 ? (int64_t)(wbytes + 0.5) : INT64_C(4600000000000000000);
    atomic_init(&b->allocs, 0);
    atomic_init(&b->frees, 0);
    b->depth = (uint32_t)depth;
    memcpy(b->pcs, pcs, (size_t)depth * sizeof(uintptr_t));
    atomic_store_explicit(head, b, memory_order_release);
    atomic_store_explicit(&hprof_all, b, memory_order_release);
out:
    pthread_mutex_unlock(&hprof_insert_lock);
    return b;
}

/* One bucket's counters, read so that frees <= allocs (see the model above). */
static void hprof_read_counts(struct hprof_tbucket *b, uint64_t *allocs, uint64_t *live)
{
    uint64_t f = atomic_load_explicit(&b->frees, memory_order_acquire);
    uint64_t a = atomic_load_explicit(&b->allocs, memory_order_relaxed);
    *allocs = a;
    *live = a >= f ? a - f : 0; /* a double free by the program, never by us */
}

int hprof_table_snapshot(struct hprof_snapshot *out)
{
    out->time_ns = lc_realtime_ns();
    out->rate = hprof_table_rate;
    out->peak_inuse_bytes = (uint64_t)hprof_table_peak_inuse();
    out->n_buckets = 0;
    out->buckets = NULL;

    /* The list from one head is immutable: count it, allocate, copy it. Buckets inserted
     * meanwhile are newer than `all` and belong to the next snapshot. */
    struct hprof_tbucket *all = atomic_load_explicit(&hprof_all, memory_order_acquire);
    size_t n = 0;
    for (struct hprof_tbucket *b = all; b != NULL; b = b->older)
        n++;
    if (n == 0)
        return 0;
    struct hprof_bucket *copy = calloc(n, sizeof(*copy));
    if (copy == NULL)
        return -1;
    size_t i = 0;
    double inuse = 0;
    for (struct hprof_tbucket *b = all; b != NULL && i < n; b = b->older, i++) {
        uint64_t allocs, live;
        hprof_read_counts(b, &allocs, &live);
        struct hprof_bucket *c = &copy[n - 1 - i]; /* oldest first: stable profile order */
        c->size = b->size;
        c->alloc_objects = (double)allocs * b->weight;
        c->alloc_bytes = c->alloc_objects * (double)b->size;
        c->inuse_objects = (double)live * b->weight;
        c->inuse_bytes = c->inuse_objects * (double)b->size;
        c->depth = (int)b->depth;
        memcpy(c->pcs, b->pcs, b->depth * sizeof(uintptr_t));
        inuse += c->inuse_bytes;
    }
    /* As in hprof_table_totals: never a peak below what the snapshot has in use. */
    if ((double)out->peak_inuse_bytes < inuse && inuse < 1.8e19)
        out->peak_inuse_bytes = (uint64_t)(inuse + 0.5);
    out->n_buckets = n;
    out->buckets = copy;
    return 0;
}

void hprof_table_totals(struct hprof_totals *out)
{
    out->rate = hprof_table_rate;
    out->inuse_bytes = out->inuse_objects = out->alloc_bytes = out->alloc_objects = 0;
    out->samples_live = 0;
    out->buckets = 0;
    for (struct hprof_tbucket *b = atomic_load_explicit(&hprof_all, memory_order_acquire);
         b != NULL; b = b->older) {
        uint64_t allocs, live;
        hprof_read_counts(b, &allocs, &live);
        out->alloc_objects += (double)allocs * b->weight;
        out->alloc_bytes += (double)allocs * b->weight * (double)b->size;
        out->inuse_objects += (double)live * b->weight;
        out->inuse_bytes += (double)live * b->weight * (double)b->size;
        out->samples_live += live;
        out->buckets++;
    }
    /* The running sum and the snapshot's sum round differently and are read at different
     * moments: the peak is never reported below what is in use now. */
    out->peak_inuse_bytes = (double)hprof_table_peak_inuse();
    if (out->peak_inuse_bytes < out->inuse_bytes)
        out->peak_inuse_bytes = out->inuse_bytes;
}

size_t hprof_table_mapped_bytes(void)
{
    return atomic_load_explicit(&hprof_mapped, memory_order_relaxed);
}

void hprof_table_lock(void)
{
    pthread_mutex_lock(&hprof_insert_lock);
}

void hprof_table_unlock(void)
{
    pthread_mutex_unlock(&hprof_insert_lock);
}

void hprof_table_reinit_lock_in_child(void)
{
    /* The child has one thread; the lock was taken by the parent's forking thread, whose copy
     * is now ours, but re-initialising is the documented-safe way to reset it. */
    pthread_mutex_init(&hprof_insert_lock, NULL);
}
