/*
 * The fixed store: a cache that forgets after a TTL.
 *
 * Every request's metadata goes into a uthash table keyed by request id, with an expiry time of
 * now + TTL, and a janitor thread (janitor.h) takes it out again: every sweep interval it calls
 * store_sweep, which removes the entries whose time has come. Each entry is one malloc of
 * sizeof(struct store_entry) + the metadata (~1 KiB by default), so the heap holds about
 * rate × (TTL + interval) entries' worth: a sawtooth that rises between sweeps and drops at each,
 * bounded by the request rate, not by the requests since start.
 *
 * Compare with leaky/store.c (`diff leaky/store.c fixed/store.c` is the fix).
 *
 * Expiry rule: an entry put at `now` is live while now' < now + TTL and expired from
 * now' >= now + TTL: it lives exactly TTL, not a nanosecond less.
 *
 * Order: uthash keeps insertion order and every entry has the same TTL, so the table is also in
 * expiry order and its head (`entries`) expires first. A sweep pops from the head and stops at
 * the first live entry: O(expired), never a scan of the live ones. Workers read `now` before they
 * take the lock, so two puts a moment apart can enter in the other order (microseconds; a worker
 * preempted in between makes it a scheduler tick). The sweep may then stop at a live entry with
 * an expired one just behind it, which goes at the next sweep instead. That is harmless: nothing
 * is ever removed early (only expires_ns <= now goes, whatever the order), and the only cost is
 * that those few out-of-order entries live one interval longer than the bound says.
 *
 * --sweep-mode scan is the foil: the janitor most tutorials write, taken literally. It locks the
 * store, walks the whole table, deletes and frees every expired entry it meets, and unlocks: one
 * hold of the lock that lasts O(entries held), live ones included, with free() inside it. Every
 * put that arrives meanwhile waits for the whole pass. It removes the same entries as the batched
 * sweep (and catches the out-of-order stragglers at once), and exists so that the benchmark and
 * the mutex profile can show what the batched sweep buys (scripts/bench.sh contention).
 *
 * After a sweep, --verbose prints one line of its figures on stderr, and --trim calls
 * malloc_trim(0) if the sweep freed anything, so that RSS falls along with the in-use bytes.
 *
 * Lock: `lock` guards `entries` and the counters. It is held for the table insert only; the
 * entry is allocated and filled before the lock is taken. A batched sweep holds it for at most
 * STORE_SWEEP_BATCH_ENTRIES unlinks at a time and drops it between batches, so a put never waits
 * behind the janitor for more than one batch; the batch is freed outside the lock. `options` and
 * `janitor` are set by store_new and read-only until store_free, which stops the janitor before
 * freeing anything.
 */
#include "store.h"
#include "store_fixed.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "janitor.h"
#include "lc_util.h"

/* uthash calls this instead of exit() when it cannot grow its bucket array: the add is then
 * undone and store_put reports ENOMEM. A server does not exit on a full heap. */
#define HASH_NONFATAL_OOM          1
#define uthash_nonfatal_oom(entry) (out_of_memory = 1)
#include <uthash.h>

const char store_flavor[] = "fixed";

struct store_entry {
    uint64_t id;
    int64_t created_ns;
    int64_t expires_ns; /* created_ns + TTL: the sweep at or after this time removes the entry */
    size_t len;
    UT_hash_handle hh; /* uthash keeps insertion order: hh.next is the next younger entry */
    char meta[];       /* len bytes of request metadata */
};

struct store {
    pthread_mutex_t lock;
    struct store_entry *entries; /* uthash head: the oldest entry, the first to expire */
    uint64_t bytes;
    uint64_t puts;
    uint64_t expired_total;
    uint64_t sweeps;
    uint64_t sweep_batches; /* lock holds taken by sweeps */
    uint64_t last_sweep_expired;
    int64_t last_sweep_ns;
    int64_t max_lock_hold_ns;
    struct store_options options;
    struct janitor *janitor; /* NULL when sweep_every_ns is 0: the caller sweeps */
};

/* The expiry rule, in one place: an entry put at t is live for now < t + TTL. */
static bool is_expired(const struct store_entry *entry, int64_t now_ns)
{
    return entry->expires_ns <= now_ns;
}

/* The janitor's callback: a sweep on the real clock. */
static void sweep_now(void *store)
{
    store_sweep(store, lc_monotonic_ns());
}

struct store *store_new(const struct store_options *options)
{
    if (options->ttl_ns <= 0 || options->sweep_every_ns < 0 ||
        (options->sweep_mode != STORE_SWEEP_BATCHED && options->sweep_mode != STORE_SWEEP_SCAN)) {
        errno = EINVAL;
        return NULL;
    }
    struct store *store = calloc(1, sizeof(*store));
    if (store == NULL)
        return NULL;
    store->options = *options;
    pthread_mutex_init(&store->lock, NULL);
    if (options->sweep_every_ns > 0) {
        store->janitor = janitor_start("store-janitor", options->sweep_every_ns, sweep_now, store);
        if (store->janitor == NULL) {
            int saved_errno = errno;
            pthread_mutex_destroy(&store->lock);
            free(store);
            errno = saved_errno;
            return NULL;
        }
    }
    return store;
}

int store_put(struct store *store, uint64_t id, const void *meta, size_t len, int64_t now_ns)
{
    struct store_entry *entry = malloc(sizeof(*entry) + len);
    if (entry == NULL) {
        errno = ENOMEM;
        return -1;
    }
    entry->id = id;
    entry->created_ns = now_ns;
    /* Saturate: a TTL of centuries must not wrap into the past and expire at once. */
    entry->expires_ns =
        now_ns > INT64_MAX - store->options.ttl_ns ? INT64_MAX : now_ns + store->options.ttl_ns;
    entry->len = len;
    memcpy(entry->meta, meta, len);

    int out_of_memory = 0;
    struct store_entry *existing;
    pthread_mutex_lock(&store->lock);
    HASH_FIND(hh, store->entries, &id, sizeof(id), existing);
    if (existing == NULL) {
        /* The entry joins the table at its tail (the youngest end); store_sweep takes it out. */
        HASH_ADD(hh, store->entries, id, sizeof(entry->id), entry);
        if (!out_of_memory) {
            store->bytes += sizeof(*entry) + len;
            store->puts++;
        }
    }
    pthread_mutex_unlock(&store->lock);

    if (existing != NULL || out_of_memory) {
        free(entry);
        errno = existing != NULL ? EEXIST : ENOMEM;
        return -1;
    }
    return 0;
}

/* The default sweep: from the oldest end, at most one batch per hold, frees outside the lock.
 * noinline (here and below) so that profiles name the sweep that held the lock. */
__attribute__((noinline)) static uint64_t sweep_batched(struct store *store, int64_t now_ns,
                                                        int64_t *longest_hold, uint64_t *holds)
{
    struct store_entry *batch[STORE_SWEEP_BATCH_ENTRIES];
    uint64_t expired = 0;
    bool more;
    do {
        /* Under the lock: unlink up to one batch from the oldest end, stop at a live entry. */
        size_t n = 0;
        pthread_mutex_lock(&store->lock);
        int64_t locked = lc_monotonic_ns();
        struct store_entry *oldest;
        while (n < STORE_SWEEP_BATCH_ENTRIES && (oldest = store->entries) != NULL &&
               is_expired(oldest, now_ns)) {
            HASH_DELETE(hh, store->entries, oldest);
            store->bytes -= sizeof(*oldest) + oldest->len;
            batch[n++] = oldest;
        }
        more = store->entries != NULL && is_expired(store->entries, now_ns);
        store->expired_total += n;
        store->sweep_batches++;
        int64_t hold = lc_monotonic_ns() - locked;
        if (hold > store->max_lock_hold_ns)
            store->max_lock_hold_ns = hold;
        pthread_mutex_unlock(&store->lock);

        /* Outside it: free the batch, so puts run while free() coalesces chunks. */
        for (size_t i = 0; i < n; i++)
            free(batch[i]);
        expired += n;
        (*holds)++;
        if (hold > *longest_hold)
            *longest_hold = hold;
    } while (more);
    return expired;
}

/* The foil (--sweep-mode scan): the tutorial's janitor, one pass over everything under the lock,
 * `if now > expiration { delete }` for each entry, free() included. */
__attribute__((noinline)) static uint64_t sweep_scan(struct store *store, int64_t now_ns,
                                                     int64_t *longest_hold, uint64_t *holds)
{
    uint64_t expired = 0;
    pthread_mutex_lock(&store->lock);
    int64_t locked = lc_monotonic_ns();
    struct store_entry *entry, *tmp;
    HASH_ITER(hh, store->entries, entry, tmp)
    {
        if (is_expired(entry, now_ns)) {
            HASH_DELETE(hh, store->entries, entry);
            store->bytes -= sizeof(*entry) + entry->len;
            free(entry);
            expired++;
        }
    }
    store->expired_total += expired;
    store->sweep_batches++;
    int64_t hold = lc_monotonic_ns() - locked;
    if (hold > store->max_lock_hold_ns)
        store->max_lock_hold_ns = hold;
    pthread_mutex_unlock(&store->lock);
    *holds = 1;
    *longest_hold = hold;
    return expired;
}

size_t store_sweep(struct store *store, int64_t now_ns)
{
    int64_t started = lc_monotonic_ns();
    int64_t longest_hold = 0;
    uint64_t batches = 0;
    uint64_t expired = store->options.sweep_mode == STORE_SWEEP_SCAN
                           ? sweep_scan(store, now_ns, &longest_hold, &batches)
                           : sweep_batched(store, now_ns, &longest_hold, &batches);
    int64_t took = lc_monotonic_ns() - started;

    pthread_mutex_lock(&store->lock);
    store->sweeps++;
    store->last_sweep_expired = expired;
    store->last_sweep_ns = took;
    pthread_mutex_unlock(&store->lock);

    int64_t trim_ns = -1;
    if (store->options.trim && expired > 0) {
        /* Hand the freed pages back to the kernel too, so RSS falls with in-use bytes. */
        int64_t trim_started = lc_monotonic_ns();
        malloc_trim(0);
        trim_ns = lc_monotonic_ns() - trim_started;
    }
    if (store->options.verbose) {
        struct store_stats stats;
        store_get_stats(store, &stats);
        char trimmed[64] = "";
        if (trim_ns >= 0)
            snprintf(trimmed, sizeof(trimmed), "; malloc_trim took %lld us",
                     (long long)(trim_ns / LC_NS_PER_USEC));
        fprintf(stderr,
                "%s: sweep expired %llu entries in %lld us (%llu batches, longest lock hold "
                "%lld us)%s; held %llu entries (%llu bytes)\n",
                store_flavor, (unsigned long long)expired, (long long)(took / LC_NS_PER_USEC),
                (unsigned long long)batches, (long long)(longest_hold / LC_NS_PER_USEC), trimmed,
                (unsigned long long)stats.entries, (unsigned long long)stats.bytes);
    }
    return expired;
}

uint64_t store_sweep_batches(struct store *store)
{
    pthread_mutex_lock(&store->lock);
    uint64_t batches = store->sweep_batches;
    pthread_mutex_unlock(&store->lock);
    return batches;
}

void store_get_stats(struct store *store, struct store_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&store->lock);
    out->entries = HASH_COUNT(store->entries);
    out->bytes = store->bytes;
    out->puts = store->puts;
    out->expired_total = store->expired_total;
    out->sweeps = store->sweeps;
    out->last_sweep_expired = store->last_sweep_expired;
    out->last_sweep_ns = store->last_sweep_ns;
    out->max_lock_hold_ns = store->max_lock_hold_ns;
    pthread_mutex_unlock(&store->lock);
}

void store_free(struct store *store)
{
    if (store == NULL)
        return;
    janitor_stop(store->janitor); /* joined: no sweep runs from here on */
    struct store_entry *entry, *tmp;
    HASH_ITER(hh, store->entries, entry, tmp)
    {
        HASH_DEL(store->entries, entry);
        free(entry);
    }
    pthread_mutex_destroy(&store->lock);
    free(store);
}
