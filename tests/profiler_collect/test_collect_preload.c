/*
 * LD_PRELOAD=libheapprof.so into a program that knows nothing of the profiler (not linked with
 * it): the preloaded library's malloc serves the program, and its snapshot API, found with
 * dlsym, accounts the program's allocations exactly at HEAPPROF_RATE=1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "collect_test.h"

static int (*ct_take)(struct hprof_snapshot *);
static void (*ct_release)(struct hprof_snapshot *);
static uint64_t (*ct_rate)(void);
static int (*ct_tagged)(const void *);

static void *ct_blocks[20];

CT_MARKER void *m_preload_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++)
        ct_blocks[i] = calloc(1, 64 + (size_t)i);
    return NULL;
}

static void test_preloaded(void **state)
{
    (void)state;
    ct_take = (int (*)(struct hprof_snapshot *))dlsym(RTLD_DEFAULT, "hprof_snapshot_take");
    ct_release = (void (*)(struct hprof_snapshot *))dlsym(RTLD_DEFAULT, "hprof_snapshot_release");
    ct_rate = (uint64_t(*)(void))dlsym(RTLD_DEFAULT, "hprof_collect_rate");
    ct_tagged = (int (*)(const void *))dlsym(RTLD_DEFAULT, "hprof_block_is_tagged");
    assert_non_null(ct_take); /* not preloaded? */
    assert_non_null(ct_release);
    assert_non_null(ct_rate);
    assert_non_null(ct_tagged);
    assert_int_equal(ct_rate(), 1);
    struct hprof_snapshot before, after;
    assert_int_equal(ct_take(&before), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, m_preload_thread, NULL), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(ct_tagged(ct_blocks[0]));
    for (int i = 0; i < 20; i += 2)
        free(ct_blocks[i]);
    assert_int_equal(ct_take(&after), 0);
    struct ct_sums d = ct_delta(&before, &after, (void *)m_preload_thread);
    /* 20 blocks of 64..83 bytes (sum 1470); the even ones (64, 66, ..., 82: sum 730) freed */
    assert_true(d.alloc_objects == 20 && d.alloc_bytes == 1470);
    assert_true(d.inuse_objects == 10 && d.inuse_bytes == 1470 - 730);
    for (int i = 1; i < 20; i += 2)
        free(ct_blocks[i]);
    ct_release(&before);
    ct_release(&after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preloaded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
