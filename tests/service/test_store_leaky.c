/* Unit tests for the leaky store: what it holds after puts (count, bytes, unique keys), that it
 * holds it forever, and that concurrent puts lose nothing. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "store.h"

static const struct store_options no_options;

static void test_flavor(void **state)
{
    (void)state;
    assert_string_equal(store_flavor, "leaky");
}

static void test_put_count_bytes(void **state)
{
    (void)state;
    struct store *store = store_new(&no_options);
    assert_non_null(store);
    char meta[1024];
    memset(meta, 'm', sizeof(meta));
    struct store_stats stats;
    store_get_stats(store, &stats);
    assert_int_equal(stats.entries, 0);
    assert_int_equal(stats.bytes, 0);

    for (uint64_t id = 1; id <= 1000; id++)
        assert_int_equal(store_put(store, id, meta, sizeof(meta), (int64_t)id), 0);
    store_get_stats(store, &stats);
    assert_int_equal(stats.entries, 1000);
    assert_int_equal(stats.puts, 1000);
    /* Each entry holds at least its metadata, plus a small header (id, time, hash handle). */
    assert_true(stats.bytes >= 1000 * sizeof(meta));
    assert_true(stats.bytes <= 1000 * (sizeof(meta) + 128));
    store_free(store);
}

static void test_keys_unique(void **state)
{
    (void)state;
    struct store *store = store_new(&no_options);
    assert_int_equal(store_put(store, 42, "a", 1, 0), 0);
    errno = 0;
    assert_int_equal(store_put(store, 42, "b", 1, 0), -1);
    assert_int_equal(errno, EEXIST);
    assert_int_equal(store_put(store, 43, "c", 1, 0), 0);
    struct store_stats stats;
    store_get_stats(store, &stats);
    assert_int_equal(stats.entries, 2);
    assert_int_equal(stats.puts, 2);
    store_free(store);
}

static void test_never_forgets(void **state)
{
    (void)state;
    struct store *store = store_new(&(struct store_options){.ttl_ns = 1, .sweep_every_ns = 0});
    assert_int_equal(store_put(store, 1, "x", 1, 0), 0);
    /* However much time passes, the leaky store still holds everything. */
    assert_int_equal(store_put(store, 2, "y", 1, INT64_MAX / 2), 0);
    struct store_stats stats;
    store_get_stats(store, &stats);
    assert_int_equal(stats.entries, 2);
    assert_int_equal(stats.expired_total, 0);
    store_free(store);
}

#define THREADS         4
#define PUTS_PER_THREAD 5000

struct putter {
    struct store *store;
    uint64_t first_id;
    int failures;
};

static void *put_many(void *arg)
{
    struct putter *p = arg;
    for (uint64_t i = 0; i < PUTS_PER_THREAD; i++)
        if (store_put(p->store, p->first_id + i, "meta", 4, 0) != 0)
            p->failures++;
    return NULL;
}

static void test_concurrent_puts(void **state)
{
    (void)state;
    struct store *store = store_new(&no_options);
    pthread_t threads[THREADS];
    struct putter putters[THREADS];
    for (int i = 0; i < THREADS; i++) {
        putters[i] = (struct putter){store, (uint64_t)i * PUTS_PER_THREAD + 1, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, put_many, &putters[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(putters[i].failures, 0);
    }
    struct store_stats stats;
    store_get_stats(store, &stats);
    assert_int_equal(stats.entries, THREADS * PUTS_PER_THREAD);
    store_free(store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flavor),          cmocka_unit_test(test_put_count_bytes),
        cmocka_unit_test(test_keys_unique),     cmocka_unit_test(test_never_forgets),
        cmocka_unit_test(test_concurrent_puts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
