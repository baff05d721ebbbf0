/*
 * The janitor and the fixed store under ThreadSanitizer: built with -fsanitize=thread from the
 * sources themselves (see CMakeLists.txt), so every access in janitor.c and store.c is checked.
 *
 * For about a second, on the real clock: putter threads store entries with a 2 ms TTL, the
 * store's own janitor sweeps every millisecond, a second thread sweeps by hand at the same time
 * (two sweepers must not race either), a reader polls the stats, and another thread starts and
 * stops janitors of its own. TSan aborts the run (halt_on_error) on any data race or lock-order
 * problem; the counts at the end must also add up. `tsan_store scan` runs the same with
 * --sweep-mode scan (the janitor's full pass under the lock).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "janitor.h"
#include "lc_util.h"
#include "store.h"
#include "store_fixed.h"

#define PUTTERS   4
#define RUN_NS    (1 * LC_NS_PER_SEC) /* how long the threads run */
#define TTL_NS    (2 * LC_NS_PER_MS)
#define SWEEP_NS  (1 * LC_NS_PER_MS)
#define META_SIZE 256 /* bytes per entry: small, TSan makes every access slow */

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "tsan_store: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static struct store *store;
static atomic_bool stop;
static atomic_ullong next_id;
static atomic_ullong put_failures;
static atomic_ullong counted_sweeps;

static void *putter(void *arg)
{
    (void)arg;
    char meta[META_SIZE] = "tsan";
    while (!atomic_load(&stop)) {
        uint64_t id = atomic_fetch_add(&next_id, 1) + 1;
        if (store_put(store, id, meta, sizeof(meta), lc_monotonic_ns()) != 0)
            atomic_fetch_add(&put_failures, 1);
    }
    return NULL;
}

static void *hand_sweeper(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        store_sweep(store, lc_monotonic_ns());
        struct timespec pause = {.tv_nsec = 300 * LC_NS_PER_USEC};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    uint64_t last_expired = 0;
    while (!atomic_load(&stop)) {
        struct store_stats stats;
        store_get_stats(store, &stats);
        CHECK(stats.expired_total >= last_expired); /* counters only grow */
        last_expired = stats.expired_total;
        CHECK(stats.max_lock_hold_ns >= 0);
    }
    return NULL;
}

static void count_sweep(void *arg)
{
    atomic_fetch_add((atomic_ullong *)arg, 1);
}

static void *janitor_cycler(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        struct janitor *janitor =
            janitor_start("tsan-janitor", 100 * LC_NS_PER_USEC, count_sweep, &counted_sweeps);
        CHECK(janitor != NULL);
        struct timespec pause = {.tv_nsec = LC_NS_PER_MS};
        nanosleep(&pause, NULL);
        janitor_stop(janitor);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct store_options options = {.ttl_ns = TTL_NS, .sweep_every_ns = SWEEP_NS};
    if (argc > 1 && strcmp(argv[1], "scan") == 0)
        options.sweep_mode = STORE_SWEEP_SCAN;
    store = store_new(&options);
    CHECK(store != NULL);

    pthread_t threads[PUTTERS + 3];
    int n = 0;
    for (int i = 0; i < PUTTERS; i++)
        CHECK(pthread_create(&threads[n++], NULL, putter, NULL) == 0);
    CHECK(pthread_create(&threads[n++], NULL, hand_sweeper, NULL) == 0);
    CHECK(pthread_create(&threads[n++], NULL, reader, NULL) == 0);
    CHECK(pthread_create(&threads[n++], NULL, janitor_cycler, NULL) == 0);
    struct timespec run = {.tv_sec = RUN_NS / LC_NS_PER_SEC, .tv_nsec = RUN_NS % LC_NS_PER_SEC};
    nanosleep(&run, NULL);
    atomic_store(&stop, true);
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);

    struct store_stats stats;
    store_get_stats(store, &stats);
    CHECK(atomic_load(&put_failures) == 0);
    CHECK(stats.puts == atomic_load(&next_id));
    CHECK(stats.entries + stats.expired_total == stats.puts);
    CHECK(stats.sweeps > 0 && stats.expired_total > 0);
    CHECK(atomic_load(&counted_sweeps) > 0);
    store_sweep(store, INT64_MAX);
    store_get_stats(store, &stats);
    CHECK(stats.entries == 0 && stats.bytes == 0);
    printf("tsan_store (%s): %llu puts, %llu expired by %llu sweeps, clean\n",
           options.sweep_mode == STORE_SWEEP_SCAN ? "scan" : "batched",
           (unsigned long long)stats.puts, (unsigned long long)stats.expired_total,
           (unsigned long long)stats.sweeps);
    store_free(store);
    return 0;
}
