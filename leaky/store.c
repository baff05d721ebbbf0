/*
 * The leaky store: a cache that never forgets.
 *
 * Every request's metadata goes into a uthash table keyed by request id, and nothing ever takes
 * it out. Each entry is one malloc of sizeof(struct store_entry) + the metadata (~1 KiB by
 * default), so the heap grows by that much per request for as long as the process lives. Nothing
 * is wrong with any single line; the leak is what is missing: an expiry.
 *
 * Compare with fixed/store.c (`diff leaky/store.c fixed/store.c` is the fix).
 *
 * Lock: `lock` guards `entries` and the counters. It is held for the table insert only; the
 * entry is allocated and filled before the lock is taken.
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* uthash calls this instead of exit() when it cannot grow its bucket array: the add is then
 * undone and store_put reports ENOMEM. A server does not exit on a full heap. */
#define HASH_NONFATAL_OOM          1
#define uthash_nonfatal_oom(entry) (out_of_memory = 1)
#include <uthash.h>

const char store_flavor[] = "leaky";

struct store_entry {
    uint64_t id;
    int64_t created_ns;
    size_t len;
    UT_hash_handle hh; /* uthash keeps insertion order: hh.next is the next younger entry */
    char meta[];       /* len bytes of request metadata */
};

struct store {
    pthread_mutex_t lock;
    struct store_entry *entries; /* uthash head: the oldest entry */
    uint64_t bytes;
    uint64_t puts;
};

struct store *store_new(const struct store_options *options)
{
    (void)options; /* no TTL, no janitor: that is the bug */
    struct store *store = calloc(1, sizeof(*store));
    if (store == NULL)
        return NULL;
    pthread_mutex_init(&store->lock, NULL);
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
    entry->len = len;
    memcpy(entry->meta, meta, len);

    int out_of_memory = 0;
    struct store_entry *existing;
    pthread_mutex_lock(&store->lock);
    HASH_FIND(hh, store->entries, &id, sizeof(id), existing);
    if (existing == NULL) {
        /* The leak: the entry joins the table here and no code path ever removes it. */
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

void store_get_stats(struct store *store, struct store_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&store->lock);
    out->entries = HASH_COUNT(store->entries);
    out->bytes = store->bytes;
    out->puts = store->puts;
    pthread_mutex_unlock(&store->lock);
}

void store_free(struct store *store)
{
    if (store == NULL)
        return;
    struct store_entry *entry, *tmp;
    HASH_ITER(hh, store->entries, entry, tmp)
    {
        HASH_DEL(store->entries, entry);
        free(entry);
    }
    pthread_mutex_destroy(&store->lock);
    free(store);
}
