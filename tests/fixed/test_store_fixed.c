/*
 * Unit tests for the fixed store on a fake clock: the store is created with sweep_every_ns = 0
 * (no janitor thread) and the tests call store_sweep(store, now) with the `now` they choose.
 *
 * What they pin down: the expiry rule (live while now < put + TTL, expired from now == put + TTL),
 * that a sweep removes from the oldest end and stops at the first live entry, that a big sweep
 * takes several bounded lock holds, that concurrent puts and sweeps lose nothing, the stats, the
 * --verbose line, that --trim makes RSS fall, and (on the real clock) that the janitor sweeps.
 * The scan sweep (--sweep-mode scan, the tutorial's janitor) removes exactly the expired entries,
 * wherever they sit, in one hold of the lock, and loses nothing under concurrent puts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lc_util.h"
#include "store.h"
#include "store_fixed.h"

#define TTL 100 /* fake-clock ticks (ns) */

static const char meta[100] = "request metadata";

static struct store *new_store_mode(int64_t ttl_ns, enum store_sweep_mode mode)
{
    struct store_options options = {.ttl_ns = ttl_ns, .sweep_mode = mode};
    struct store *store = store_new(&options);
    assert_non_null(store);
    return store;
}

static struct store *new_store(int64_t ttl_ns)
{
    return new_store_mode(ttl_ns, STORE_SWEEP_BATCHED);
}

static void put(struct store *store, uint64_t id, int64_t now)
{
    assert_int_equal(store_put(store, id, meta, sizeof(meta), now), 0);
}

static uint64_t held(struct store *store)
{
    struct store_stats stats;
    store_get_stats(store, &stats);
    return stats.entries;
}

static void test_flavor(void **state)
{
    (void)state;
    assert_string_equal(store_flavor, "fixed");
}

static void test_expires_exactly_at_ttl(void **state)
{
    (void)state;
    struct store *store = new_store(TTL);
    put(store, 1, 1000);
    assert_int_equal(store_sweep(store, 1000), 0);
    assert_int_equal(store_sweep(store, 1000 + TTL - 1), 0); /* one ns before: still live */
    assert_int_equal(held(store), 1);
    assert_int_equal(store_sweep(store, 1000 + TTL), 1); /* at put + TTL: expired */
    assert_int_equal(held(store), 0);
    store_free(store);
}

static void test_sweep_stops_at_first_live(void **state)
{
    (void)state;
    struct store *store = new_store(TTL);
    for (uint64_t id = 1; id <= 10; id++)
        put(store, id, (int64_t)id - 1); /* id k put at k - 1, expires at k - 1 + TTL */
    assert_int_equal(store_sweep(store, 5 + TTL), 6);
    assert_int_equal(held(store), 4);
    /* Exactly ids 1..6 went: their ids are free again, 7 is still held. */
    put(store, 6, 50);
    errno = 0;
    assert_int_equal(store_put(store, 7, meta, sizeof(meta), 50), -1);
    assert_int_equal(errno, EEXIST);
    assert_int_equal(store_sweep(store, 5 + TTL), 0); /* nothing new has expired */
    assert_int_equal(store_sweep(store, 9 + TTL), 4); /* ids 7..10; id 6 (put at 50) lives */
    assert_int_equal(held(store), 1);
    store_free(store);
}

static void test_out_of_order_puts_never_expire_early(void **state)
{
    (void)state;
    /* Two workers read the clock, then race for the lock: the later `now` enters first. The
     * sweep stops at the live head and leaves the expired entry behind it for a later sweep;
     * what it must never do is remove a live entry. */
    struct store *store = new_store(TTL);
    put(store, 1, 50);
    put(store, 2, 10);
    assert_int_equal(store_sweep(store, 10 + TTL), 0);
    assert_int_equal(held(store), 2);
    assert_int_equal(store_sweep(store, 50 + TTL - 1), 0);
    assert_int_equal(store_sweep(store, 50 + TTL), 2);
    assert_int_equal(held(store), 0);
    store_free(store);
}

static void test_bounded_batches(void **state)
{
    (void)state;
    struct store *store = new_store(TTL);
    const uint64_t n = 2 * STORE_SWEEP_BATCH_ENTRIES + 7;
    for (uint64_t id = 1; id <= n; id++)
        put(store, id, 0);
    uint64_t before = store_sweep_batches(store);
    assert_int_equal(store_sweep(store, TTL), n);
    assert_int_equal(store_sweep_batches(store) - before, 3); /* two full batches and 7 */

    /* Exactly one batch's worth, with live entries behind it: one hold, no empty second one. */
    for (uint64_t id = 1; id <= STORE_SWEEP_BATCH_ENTRIES + 5; id++)
        put(store, id, id <= STORE_SWEEP_BATCH_ENTRIES ? 1000 : 2000);
    before = store_sweep_batches(store);
    assert_int_equal(store_sweep(store, 1000 + TTL), STORE_SWEEP_BATCH_ENTRIES);
    assert_int_equal(store_sweep_batches(store) - before, 1);
    assert_int_equal(held(store), 5);

    /* Nothing expired: one hold to look at the head, and nothing removed. */
    before = store_sweep_batches(store);
    assert_int_equal(store_sweep(store, 1000 + TTL), 0);
    assert_int_equal(store_sweep_batches(store) - before, 1);
    store_free(store);
}

static void test_stats(void **state)
{
    (void)state;
    struct store *store = new_store(TTL);
    struct store_stats stats;
    store_get_stats(store, &stats);
    assert_int_equal(stats.entries, 0);
    assert_int_equal(stats.bytes, 0);
    assert_int_equal(stats.sweeps, 0);

    for (uint64_t id = 1; id <= 5; id++)
        put(store, id, (int64_t)id);
    store_get_stats(store, &stats);
    assert_int_equal(stats.entries, 5);
    assert_int_equal(stats.puts, 5);
    uint64_t per_entry = stats.bytes / 5;
    assert_int_equal(stats.bytes, 5 * per_entry);
    assert_true(per_entry > sizeof(meta)); /* metadata plus a header */

    assert_int_equal(store_sweep(store, 3 + TTL), 3);
    store_get_stats(store, &stats);
    assert_int_equal(stats.entries, 2);
    assert_int_equal(stats.bytes, 2 * per_entry);
    assert_int_equal(stats.puts, 5);
    assert_int_equal(stats.expired_total, 3);
    assert_int_equal(stats.sweeps, 1);
    assert_int_equal(stats.last_sweep_expired, 3);
    assert_true(stats.last_sweep_ns > 0);
    assert_true(stats.max_lock_hold_ns > 0);
    assert_true(stats.max_lock_hold_ns <= stats.last_sweep_ns);

    assert_int_equal(store_sweep(store, 3 + TTL), 0);
    store_get_stats(store, &stats);
    assert_int_equal(stats.sweeps, 2);
    assert_int_equal(stats.last_sweep_expired, 0); /* the last sweep's figure, not a total */
    assert_int_equal(stats.expired_total, 3);

    assert_int_equal(store_sweep(store, INT64_MAX), 2);
    store_get_stats(store, &stats);
    assert_int_equal(stats.entries, 0);
    assert_int_equal(stats.bytes, 0);
    assert_int_equal(stats.expired_total, 5);
    store_free(store);
}

static void test_duplicate_then_reuse_after_expiry(void **state)
{
    (void)state;
    struct store *store = new_store(TTL);
    put(store, 42, 0);
    errno = 0;
    assert_int_equal(store_put(store, 42, meta, sizeof(meta), 1), -1);
    assert_int_equal(errno, EEXIST);
    struct store_stats stats;
    store_get_stats(store, &stats);
    assert_int_equal(stats.puts, 1);
    assert_int_equal(stats.entries, 1);
    assert_int_equal(store_sweep(store, TTL), 1);
    put(store, 42, TTL); /* gone, so the id can be stored again */
    assert_int_equal(held(store), 1);
    store_free(store);
}

static void test_ttl_saturates(void **state)
{
    (void)state;
    /* now + TTL beyond INT64_MAX must not wrap into the past and expire at once. */
    struct store *store = new_store(INT64_MAX);
    put(store, 1, 1000);
    assert_int_equal(store_sweep(store, INT64_MAX - 1), 0);
    assert_int_equal(store_sweep(store, INT64_MAX), 1);
    store_free(store);
}

static void test_bad_options(void **state)
{
    (void)state;
    const struct store_options bad[] = {
        {.ttl_ns = 0},
        {.ttl_ns = -1},
        {.ttl_ns = LC_NS_PER_SEC, .sweep_every_ns = -1},
        {.ttl_ns = LC_NS_PER_SEC, .sweep_mode = (enum store_sweep_mode)7},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        assert_null(store_new(&bad[i]));
        assert_int_equal(errno, EINVAL);
    }
    store_free(NULL);
}

/* Concurrent puts and sweeps on a shared fake clock: each put takes the next tick. */
#define PUTTERS         4
#define PUTS_PER_THREAD 50000

struct race {
    struct store *store;
    atomic_llong clock;
    atomic_int putters_left;
    atomic_int failures;
};

static void *putter(void *arg)
{
    struct race *race = arg;
    for (int i = 0; i < PUTS_PER_THREAD; i++) {
        int64_t now = atomic_fetch_add(&race->clock, 1);
        /* ids from the clock are unique: every put must succeed */
        if (store_put(race->store, (uint64_t)now + 1, meta, sizeof(meta), now) != 0)
            atomic_fetch_add(&race->failures, 1);
    }
    atomic_fetch_sub(&race->putters_left, 1);
    return NULL;
}

static void *sweeper(void *arg)
{
    struct race *race = arg;
    while (atomic_load(&race->putters_left) > 0)
        store_sweep(race->store, atomic_load(&race->clock));
    return NULL;
}

static void puts_during_sweeps(enum store_sweep_mode mode)
{
    struct race race = {.store = new_store_mode(1000, mode), .putters_left = PUTTERS};
    pthread_t threads[PUTTERS + 1];
    for (int i = 0; i < PUTTERS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, putter, &race), 0);
    assert_int_equal(pthread_create(&threads[PUTTERS], NULL, sweeper, &race), 0);
    for (int i = 0; i <= PUTTERS; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(atomic_load(&race.failures), 0);

    struct store_stats stats;
    store_get_stats(race.store, &stats);
    const uint64_t total = (uint64_t)PUTTERS * PUTS_PER_THREAD;
    assert_int_equal(stats.puts, total);
    assert_true(stats.sweeps > 0);
    assert_true(stats.expired_total > 0); /* the sweeper did work during the puts */
    assert_int_equal(stats.entries + stats.expired_total, total); /* nothing lost or doubled */
    store_sweep(race.store, INT64_MAX);
    store_get_stats(race.store, &stats);
    assert_int_equal(stats.entries, 0);
    assert_int_equal(stats.bytes, 0);
    assert_int_equal(stats.expired_total, total);
    store_free(race.store);
}

static void test_puts_during_sweeps(void **state)
{
    (void)state;
    puts_during_sweeps(STORE_SWEEP_BATCHED);
}

static void test_puts_during_scan_sweeps(void **state)
{
    (void)state;
    puts_during_sweeps(STORE_SWEEP_SCAN);
}

static void test_scan_removes_exactly_the_expired(void **state)
{
    (void)state;
    struct store *store = new_store_mode(TTL, STORE_SWEEP_SCAN);
    /* A live head with expired entries behind it (out-of-order puts): the batched sweep stops
     * at the head, the scan looks at every entry and takes the expired ones wherever they are. */
    put(store, 1, 50);
    put(store, 2, 10);
    put(store, 3, 60);
    put(store, 4, 20);
    assert_int_equal(store_sweep(store, 20 + TTL - 1), 1); /* id 2 only */
    assert_int_equal(held(store), 3);
    assert_int_equal(store_sweep(store, 20 + TTL), 1); /* id 4, behind two live ones */
    assert_int_equal(store_sweep(store, 50 + TTL), 1);
    assert_int_equal(held(store), 1);
    assert_int_equal(store_sweep(store, 60 + TTL), 1);
    assert_int_equal(held(store), 0);

    struct store_stats stats;
    store_get_stats(store, &stats);
    assert_int_equal(stats.expired_total, 4);
    assert_int_equal(stats.sweeps, 4);
    assert_int_equal(stats.bytes, 0);
    assert_true(stats.max_lock_hold_ns > 0);
    store_free(store);
}

static void test_scan_holds_the_lock_once(void **state)
{
    (void)state;
    /* However many entries expire, the scan takes one hold (that is its flaw: the batched sweep
     * of the same entries takes three, test_bounded_batches), and it visits the live ones too. */
    struct store *store = new_store_mode(TTL, STORE_SWEEP_SCAN);
    const uint64_t n = 2 * STORE_SWEEP_BATCH_ENTRIES + 7;
    for (uint64_t id = 1; id <= n; id++)
        put(store, id, id <= n - 7 ? 0 : 1000);
    uint64_t before = store_sweep_batches(store);
    assert_int_equal(store_sweep(store, TTL), n - 7);
    assert_int_equal(store_sweep_batches(store) - before, 1);
    assert_int_equal(held(store), 7);
    before = store_sweep_batches(store);
    assert_int_equal(store_sweep(store, TTL), 0);
    assert_int_equal(store_sweep_batches(store) - before, 1);
    store_free(store);
}

static void test_scan_and_batched_agree_in_order(void **state)
{
    (void)state;
    /* Puts in time order: both sweeps remove the same entries at every step. */
    struct store *scan = new_store_mode(TTL, STORE_SWEEP_SCAN);
    struct store *batched = new_store(TTL);
    for (uint64_t id = 1; id <= 2000; id++) {
        put(scan, id, (int64_t)id * 3);
        put(batched, id, (int64_t)id * 3);
    }
    for (int64_t now = 0; now <= 6000 + TTL; now += 97)
        assert_int_equal(store_sweep(scan, now), store_sweep(batched, now));
    assert_int_equal(held(scan), held(batched));
    assert_int_equal(store_sweep(scan, 6000 + TTL), store_sweep(batched, 6000 + TTL));
    assert_int_equal(held(scan), 0);
    assert_int_equal(held(batched), 0);
    store_free(scan);
    store_free(batched);
}

static void test_verbose_line(void **state)
{
    (void)state;
    struct store_options options = {.ttl_ns = TTL, .verbose = true};
    struct store *store = store_new(&options);
    assert_non_null(store);
    for (uint64_t id = 1; id <= 4; id++)
        put(store, id, (int64_t)id);

    char path[] = "/tmp/test_store_fixed.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    store_sweep(store, 3 + TTL);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);

    char line[512] = "";
    ssize_t n = pread(fd, line, sizeof(line) - 1, 0);
    close(fd);
    assert_true(n > 0);
    if (strstr(line, "fixed: sweep expired 3 entries in ") != line ||
        strstr(line, "; held 1 entries (") == NULL || strchr(line, '\n') != line + n - 1)
        fail_msg("unexpected --verbose output: '%s'", line);
    store_free(store);
}

/* Resident bytes of this process, from /proc/self/statm. */
static long long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long size = 0, resident = 0;
    if (f != NULL) {
        if (fscanf(f, "%lld %lld", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * sysconf(_SC_PAGESIZE);
}

/* Fill a store with 64 MiB of expired entries under one live entry, sweep, and return how much
 * RSS fell. The live entry sits above the freed ones, so glibc cannot just lower the top of the
 * heap: only malloc_trim's release of whole free pages inside the heap gives memory back. */
static long long rss_drop_after_sweep(bool trim)
{
    enum { ENTRIES = 64 * 1024, BYTES = 1024 };
    struct store_options options = {.ttl_ns = TTL, .trim = trim};
    struct store *store = store_new(&options);
    static char big[BYTES];
    memset(big, 'x', sizeof(big));
    for (uint64_t id = 1; id <= ENTRIES; id++)
        assert_int_equal(store_put(store, id, big, sizeof(big), 0), 0);
    assert_int_equal(store_put(store, ENTRIES + 1, big, sizeof(big), 1000), 0);
    long long before = rss_bytes();
    assert_int_equal(store_sweep(store, TTL), ENTRIES);
    long long after = rss_bytes();
    store_free(store);
    return before - after;
}

static void test_trim_returns_memory(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    skip(); /* a sanitizer's allocator is not glibc's: malloc_trim does nothing there */
#endif
    const long long mib = 1024 * 1024;
    long long kept = rss_drop_after_sweep(false);
    long long trimmed = rss_drop_after_sweep(true);
    /* Without trim glibc keeps nearly all 64 MiB for reuse; with it most of it goes back. */
    if (!(kept < 16 * mib && trimmed > 48 * mib))
        fail_msg("RSS fell by %lld MiB without --trim and %lld MiB with it", kept / mib,
                 trimmed / mib);
}

static void test_janitor_sweeps_on_real_clock(void **state)
{
    (void)state;
    const int64_t ttl = 100 * LC_NS_PER_MS, every = 20 * LC_NS_PER_MS;
    struct store_options options = {.ttl_ns = ttl, .sweep_every_ns = every};
    struct store *store = store_new(&options);
    assert_non_null(store);
    int64_t put_at = lc_monotonic_ns();
    for (uint64_t id = 1; id <= 100; id++)
        assert_int_equal(store_put(store, id, meta, sizeof(meta), put_at), 0);
    int64_t emptied_at = 0;
    while (lc_monotonic_ns() - put_at < 5 * LC_NS_PER_SEC) {
        if (held(store) == 0) {
            emptied_at = lc_monotonic_ns();
            break;
        }
        struct timespec ms = {.tv_nsec = LC_NS_PER_MS};
        nanosleep(&ms, NULL);
    }
    assert_true(emptied_at > 0);
    assert_true(emptied_at - put_at >= ttl); /* never before the TTL */
    struct store_stats stats;
    store_get_stats(store, &stats);
    assert_int_equal(stats.expired_total, 100);
    assert_true(stats.sweeps >= 1);
    store_free(store);
}

static void test_store_free_stops_janitor_promptly(void **state)
{
    (void)state;
    struct store_options options = {.ttl_ns = LC_NS_PER_SEC, .sweep_every_ns = 10 * LC_NS_PER_SEC};
    struct store *store = store_new(&options);
    assert_non_null(store);
    put(store, 1, lc_monotonic_ns());
    struct timespec wait = {.tv_nsec = 20 * LC_NS_PER_MS};
    nanosleep(&wait, NULL);
    int64_t started = lc_monotonic_ns();
    store_free(store);
    assert_true(lc_monotonic_ns() - started < 100 * LC_NS_PER_MS); /* not the 10 s interval */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flavor),
        cmocka_unit_test(test_expires_exactly_at_ttl),
        cmocka_unit_test(test_sweep_stops_at_first_live),
        cmocka_unit_test(test_out_of_order_puts_never_expire_early),
        cmocka_unit_test(test_bounded_batches),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_duplicate_then_reuse_after_expiry),
        cmocka_unit_test(test_ttl_saturates),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_puts_during_sweeps),
        cmocka_unit_test(test_puts_during_scan_sweeps),
        cmocka_unit_test(test_scan_removes_exactly_the_expired),
        cmocka_unit_test(test_scan_holds_the_lock_once),
        cmocka_unit_test(test_scan_and_batched_agree_in_order),
        cmocka_unit_test(test_verbose_line),
        cmocka_unit_test(test_trim_returns_memory),
        cmocka_unit_test(test_janitor_sweeps_on_real_clock),
        cmocka_unit_test(test_store_free_stops_janitor_promptly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
