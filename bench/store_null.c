/*
 * The null store: accepts every put and keeps nothing. Linked with the shared service it makes
 * bare_server, the baseline for benchmarks: the same evhttp loops, threads, parsing and
 * metadata formatting as leaky, minus the store, so "leaky vs bare" measures the store's cost.
 */
#include "store.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

const char store_flavor[] = "bare_server"; /* the program: its messages and usage */

struct store {
    atomic_uint_fast64_t puts;
};

struct store *store_new(const struct store_options *options)
{
    (void)options;
    return calloc(1, sizeof(struct store));
}

int store_put(struct store *store, uint64_t id, const void *meta, size_t len, int64_t now_ns)
{
    (void)id;
    (void)meta;
    (void)len;
    (void)now_ns;
    atomic_fetch_add_explicit(&store->puts, 1, memory_order_relaxed);
    return 0;
}

void store_get_stats(struct store *store, struct store_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->puts = atomic_load(&store->puts);
}

void store_free(struct store *store)
{
    free(store);
}
