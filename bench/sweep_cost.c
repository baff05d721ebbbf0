/*
 * sweep_cost: what a sweep of the fixed store costs, on a fake clock, single-threaded.
 *
 *   sweep_cost [--entry-bytes N] [--reps N] [--max-entries N]
 *
 * For 10k, 100k and 1M expired entries: the sweep's wall time, ns per expired entry, its lock
 * holds and the longest one (the goal is < 1 ms: a /process request never waits longer behind
 * the janitor). Then the two cases that show the sweep is O(expired), not O(entries): 10k expired
 * entries ahead of 1M live ones (should cost what 10k alone cost), and 1M live with none expired
 * (should cost ~nothing). Between filling and sweeping, a 512 MiB buffer is written so the
 * entries are cold in cache, as they are in a server that put them a TTL ago. Each case is run
 * --reps times on a fresh store; medians are printed, the worst hold over all runs, and how
 * often the kernel preempted the sweeping thread (summed over runs): on a shared machine a hold
 * that is preempted lasts a scheduler tick (~4 ms), which is the machine's doing, not the batch's.
 * Built once per batch size (sweep_cost = the shipped STORE_SWEEP_BATCH_ENTRIES,
 * sweep_cost_b64/_b1024/_b4096 for comparison).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "lc_util.h"
#include "store.h"
#include "store_fixed.h"

#define TTL         1000                 /* fake-clock ticks */
#define EVICT_BYTES (512u * 1024 * 1024) /* bytes written between fill and sweep */
#define MAX_REPS    15

static char *evict_buf;
static size_t entry_bytes = 1024;

static void evict_caches(void)
{
    for (size_t i = 0; i < EVICT_BYTES; i += 64)
        evict_buf[i]++;
}

struct result {
    int64_t sweep_ns, max_hold_ns;
    uint64_t expired, holds;
    long preempted; /* involuntary context switches of this thread during the sweep */
};

static long involuntary_switches(void)
{
    struct rusage usage;
    return getrusage(RUSAGE_THREAD, &usage) == 0 ? usage.ru_nivcsw : 0;
}

/* One run: `expired` entries put at 0, then `live` entries put at TTL; sweep at TTL. */
static struct result run(uint64_t expired, uint64_t live)
{
    struct store_options options = {.ttl_ns = TTL};
    struct store *store = store_new(&options);
    char *meta = calloc(1, entry_bytes);
    if (store == NULL || meta == NULL) {
        fprintf(stderr, "sweep_cost: out of memory\n");
        exit(1);
    }
    uint64_t id = 0;
    for (uint64_t i = 0; i < expired; i++)
        store_put(store, ++id, meta, entry_bytes, 0);
    for (uint64_t i = 0; i < live; i++)
        store_put(store, ++id, meta, entry_bytes, TTL);
    evict_caches();

    uint64_t holds = store_sweep_batches(store);
    long switches = involuntary_switches();
    int64_t started = lc_monotonic_ns();
    size_t removed = store_sweep(store, TTL);
    int64_t took = lc_monotonic_ns() - started;
    switches = involuntary_switches() - switches;
    struct store_stats stats;
    store_get_stats(store, &stats);
    struct result r = {.sweep_ns = took,
                       .max_hold_ns = stats.max_lock_hold_ns,
                       .expired = removed,
                       .holds = store_sweep_batches(store) - holds,
                       .preempted = switches};
    if (removed != expired || stats.entries != live) {
        fprintf(stderr, "sweep_cost: removed %zu of %llu, %llu held\n", removed,
                (unsigned long long)expired, (unsigned long long)stats.entries);
        exit(1);
    }
    store_free(store);
    free(meta);
    return r;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void report(const char *name, uint64_t expired, uint64_t live, int reps)
{
    int64_t sweep[MAX_REPS], hold[MAX_REPS], worst = 0;
    uint64_t holds = 0;
    long preempted = 0;
    for (int i = 0; i < reps; i++) {
        struct result r = run(expired, live);
        sweep[i] = r.sweep_ns;
        hold[i] = r.max_hold_ns;
        holds = r.holds;
        preempted += r.preempted;
        if (r.max_hold_ns > worst)
            worst = r.max_hold_ns;
    }
    qsort(sweep, reps, sizeof(sweep[0]), cmp_i64);
    qsort(hold, reps, sizeof(hold[0]), cmp_i64);
    int64_t median = sweep[reps / 2];
    printf("| %-32s | %9llu | %9llu | %10.3f | %11.1f | %6llu | %12.1f | %11.1f | %9ld |\n", name,
           (unsigned long long)expired, (unsigned long long)live, median / 1e6,
           expired ? (double)median / expired : 0.0, (unsigned long long)holds,
           hold[reps / 2] / 1e3, worst / 1e3, preempted);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int reps = 5;
    uint64_t max_entries = 1000000;
    for (int i = 1; i + 1 < argc; i += 2) {
        uint64_t v;
        if (lc_parse_u64(argv[i + 1], 1, 1u << 30, &v) != 0) {
            fprintf(stderr, "sweep_cost: bad value '%s'\n", argv[i + 1]);
            return 2;
        }
        if (strcmp(argv[i], "--entry-bytes") == 0)
            entry_bytes = v;
        else if (strcmp(argv[i], "--reps") == 0 && v <= MAX_REPS)
            reps = (int)v;
        else if (strcmp(argv[i], "--max-entries") == 0)
            max_entries = v;
        else {
            fprintf(stderr,
                    "usage: sweep_cost [--entry-bytes N] [--reps N<=%d] "
                    "[--max-entries N]\n",
                    MAX_REPS);
            return 2;
        }
    }
    evict_buf = mmap(NULL, EVICT_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (evict_buf == MAP_FAILED) {
        perror("sweep_cost: mmap");
        return 1;
    }
    printf("sweep_cost: batch %d entries/hold, entry %zu bytes of metadata, %d reps, medians\n\n",
           STORE_SWEEP_BATCH_ENTRIES, entry_bytes, reps);
    printf("| %-32s | %9s | %9s | %10s | %11s | %6s | %12s | %11s | %9s |\n", "case", "expired",
           "live", "sweep ms", "ns/expired", "holds", "max hold us", "worst us", "preempted");
    printf("|----------------------------------|-----------|-----------|------------|-------------|"
           "--------|--------------|-------------|-----------|\n");
    const uint64_t sizes[] = {10000, 100000, 1000000};
    for (size_t i = 0; i < 3; i++) {
        if (sizes[i] > max_entries)
            continue;
        char name[64];
        snprintf(name, sizeof(name), "expire %lluk", (unsigned long long)sizes[i] / 1000);
        report(name, sizes[i], 0, reps);
    }
    uint64_t live = max_entries < 1000000 ? max_entries : 1000000;
    char name[64];
    snprintf(name, sizeof(name), "10k expired ahead of %lluk live",
             (unsigned long long)live / 1000);
    report(name, 10000, live, reps);
    snprintf(name, sizeof(name), "%lluk live, none expired", (unsigned long long)live / 1000);
    report(name, 0, live, reps);
    munmap(evict_buf, EVICT_BYTES);
    return 0;
}
