/*
 * The bucket table driven directly from threads, without the interposer (the seam TSan needs:
 * it owns malloc, so the interposer cannot run under it). Built twice: test_collect_table and
 * test_collect_table_tsan (-fsanitize=thread), which turns any data race on the lock-free
 * lookups, the publication of new buckets or the counters into a failure.
 *
 * Fake stacks stand in for unwinding. Worker threads intern (stack, size) keys that overlap
 * between threads, count allocations and frees (some frees of samples another thread took)
 * while a reader thread keeps taking snapshots and totals; at the end every bucket's counts
 * must equal what the workers did, with exactly one bucket per distinct key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hprof_collect.h"

#define TT_RATE    1000 /* bytes: any rate > 1 gives non-trivial weights */
#define TT_STACKS  40
#define TT_SIZES   5
#define TT_WORKERS 4
#define TT_ITERS   20000
#define TT_RING    16

static int tt_depth(int k)
{
    return 1 + k % HPROF_MAX_DEPTH; /* 1..40 frames, so depth is part of the key too */
}

static void tt_stack(int k, uintptr_t *pcs)
{
    for (int i = 0; i < tt_depth(k); i++)
        pcs[i] = 0x400000 + (uintptr_t)k * 0x1000 + (uintptr_t)i * 8;
}

static uint64_t tt_size(int s)
{
    return 32 * (uint64_t)(s + 1);
}

static atomic_int tt_inserts;
/* cmocka's asserts may only fail on the test's own thread: other threads count failures. */
static atomic_int tt_failures;
#define TT_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond))                                                                               \
            atomic_fetch_add(&tt_failures, 1);                                                     \
    } while (0)

static void tt_count_insert(void)
{
    atomic_fetch_add(&tt_inserts, 1);
}

static int tt_setup(void **state)
{
    (void)state;
    hprof_table_insert_hook = tt_count_insert;
    return hprof_table_init(TT_RATE);
}

static void test_keys(void **state)
{
    (void)state;
    uintptr_t pcs[HPROF_MAX_DEPTH + 1];
    tt_stack(1000, pcs);
    struct hprof_tbucket *a = hprof_table_intern(pcs, 5, 64);
    assert_non_null(a);
    assert_ptr_equal(hprof_table_intern(pcs, 5, 64), a);     /* same key, same bucket */
    assert_ptr_not_equal(hprof_table_intern(pcs, 5, 65), a); /* size is part of the key */
    assert_ptr_not_equal(hprof_table_intern(pcs, 4, 64), a); /* and depth */
    pcs[2]++;
    assert_ptr_not_equal(hprof_table_intern(pcs, 5, 64), a); /* and every frame */
    assert_non_null(hprof_table_intern(pcs, 0, 64));         /* an empty stack is a key */
    assert_null(hprof_table_intern(pcs, HPROF_MAX_DEPTH + 1, 64));
    assert_null(hprof_table_intern(pcs, -1, 64));
    assert_true(a->weight == hprof_sample_weight(64, TT_RATE));
    assert_true(hprof_table_mapped_bytes() > 0);
}

/* Per worker: counts per (stack, size), and blocks handed to the next worker to free. */
struct tt_worker {
    int id;
    uint64_t allocs[TT_STACKS][TT_SIZES];
    uint64_t frees[TT_STACKS][TT_SIZES];
};

static struct tt_worker tt_workers[TT_WORKERS];
static atomic_int tt_stop;

static void *tt_work(void *arg)
{
    struct tt_worker *w = arg;
    struct {
        struct hprof_tbucket *b;
        int k, s;
    } ring[TT_RING];
    memset(ring, 0, sizeof(ring));
    uintptr_t pcs[HPROF_MAX_DEPTH];
    for (int i = 0; i < TT_ITERS; i++) {
        int k = (i * 7 + w->id * 3) % TT_STACKS, s = (i / 3 + w->id) % TT_SIZES;
        tt_stack(k, pcs);
        struct hprof_tbucket *b = hprof_table_intern(pcs, tt_depth(k), tt_size(s));
        TT_CHECK(b != NULL);
        if (b == NULL)
            continue;
        hprof_table_count_alloc(b);
        w->allocs[k][s]++;
        int slot = i % TT_RING;
        if (ring[slot].b != NULL) {
            hprof_table_count_free(ring[slot].b);
            w->frees[ring[slot].k][ring[slot].s]++;
        }
        ring[slot].b = b;
        ring[slot].k = k;
        ring[slot].s = s;
    }
    return NULL;
}

static void *tt_read(void *arg)
{
    (void)arg;
    while (!atomic_load(&tt_stop)) {
        struct hprof_snapshot snap;
        TT_CHECK(hprof_table_snapshot(&snap) == 0);
        for (size_t i = 0; i < snap.n_buckets; i++) {
            TT_CHECK(snap.buckets[i].inuse_objects >= 0);
            TT_CHECK(snap.buckets[i].inuse_objects <= snap.buckets[i].alloc_objects);
        }
        free(snap.buckets);
        struct hprof_totals tot;
        hprof_table_totals(&tot);
        TT_CHECK(tot.inuse_bytes <= tot.alloc_bytes);
    }
    return NULL;
}

static const struct hprof_bucket *tt_find(const struct hprof_snapshot *snap, int k, int s)
{
    uintptr_t pcs[HPROF_MAX_DEPTH];
    tt_stack(k, pcs);
    const struct hprof_bucket *found = NULL;
    for (size_t i = 0; i < snap->n_buckets; i++) {
        const struct hprof_bucket *b = &snap->buckets[i];
        if (b->size == tt_size(s) && b->depth == tt_depth(k) &&
            memcmp(b->pcs, pcs, (size_t)b->depth * sizeof(uintptr_t)) == 0) {
            assert_null(found); /* exactly one bucket per key */
            found = b;
        }
    }
    return found;
}

static void test_threads(void **state)
{
    (void)state;
    int inserts_before = atomic_load(&tt_inserts);
    pthread_t workers[TT_WORKERS], reader;
    atomic_store(&tt_stop, 0);
    assert_int_equal(pthread_create(&reader, NULL, tt_read, NULL), 0);
    for (int i = 0; i < TT_WORKERS; i++) {
        tt_workers[i].id = i;
        assert_int_equal(pthread_create(&workers[i], NULL, tt_work, &tt_workers[i]), 0);
    }
    for (int i = 0; i < TT_WORKERS; i++)
        assert_int_equal(pthread_join(workers[i], NULL), 0);
    atomic_store(&tt_stop, 1);
    assert_int_equal(pthread_join(reader, NULL), 0);
    assert_int_equal(atomic_load(&tt_failures), 0);

    struct hprof_snapshot snap;
    assert_int_equal(hprof_table_snapshot(&snap), 0);
    assert_int_equal(snap.rate, TT_RATE);
    int keys = 0;
    double total_allocs = 0;
    for (int k = 0; k < TT_STACKS; k++) {
        for (int s = 0; s < TT_SIZES; s++) {
            uint64_t a = 0, f = 0;
            for (int w = 0; w < TT_WORKERS; w++) {
                a += tt_workers[w].allocs[k][s];
                f += tt_workers[w].frees[k][s];
            }
            const struct hprof_bucket *b = tt_find(&snap, k, s);
            if (a == 0) {
                assert_null(b);
                continue;
            }
            keys++;
            assert_non_null(b);
            double wgt = hprof_sample_weight(tt_size(s), TT_RATE);
            assert_float_equal(b->alloc_objects, (double)a * wgt, 1e-6 * (double)a * wgt);
            assert_float_equal(b->inuse_objects, (double)(a - f) * wgt, 1e-6 * (double)a * wgt);
            assert_float_equal(b->alloc_bytes, b->alloc_objects * (double)tt_size(s), 1e-3);
            assert_float_equal(b->inuse_bytes, b->inuse_objects * (double)tt_size(s), 1e-3);
            total_allocs += (double)a;
        }
    }
    assert_true(keys > TT_STACKS);                                     /* several sizes per stack */
    assert_int_equal(atomic_load(&tt_inserts) - inserts_before, keys); /* no duplicate inserts */
    assert_true(total_allocs == (double)TT_WORKERS * TT_ITERS);
    free(snap.buckets);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, tt_setup, NULL);
}
