/*
 * store: where the /process service keeps each request's metadata. The one module that differs
 * between the two builds, so that `diff leaky/store.c fixed/store.c` is the fix:
 *
 *   leaky/store.c  adds every entry to a uthash table and never removes one;
 *   fixed/store.c  gives each entry an expiry time (now + TTL) and runs a janitor thread that
 *                  removes expired entries every sweep interval.
 *
 * Time is a parameter: callers pass `now` (CLOCK_MONOTONIC ns) so tests drive a fake clock.
 * All functions are thread-safe; the store's lock is held only for the table operation itself.
 */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* fixed: how a sweep finds the expired entries. */
enum store_sweep_mode {
    STORE_SWEEP_BATCHED =
        0,            /* pop from the oldest end, in bounded batches, frees outside the lock */
    STORE_SWEEP_SCAN, /* the tutorial's janitor: one pass over the whole table under the
                         lock, freeing inside it (kept as the measured foil) */
};

struct store_options {
    int64_t ttl_ns;         /* fixed: an entry expires this long after its put */
    int64_t sweep_every_ns; /* fixed: janitor period; 0 = no janitor (tests sweep by hand) */
    bool trim;              /* fixed: malloc_trim(0) after a sweep, so RSS falls too */
    bool verbose;           /* fixed: one line on stderr per sweep */
    enum store_sweep_mode sweep_mode; /* fixed: batched (the default) or scan */
};

struct store_stats {
    uint64_t entries;            /* held now */
    uint64_t bytes;              /* held now: entry headers + metadata */
    uint64_t puts;               /* since start */
    uint64_t expired_total;      /* removed by sweeps since start */
    uint64_t sweeps;             /* sweeps run since start */
    uint64_t last_sweep_expired; /* entries the last sweep removed */
    int64_t last_sweep_ns;       /* how long the last sweep took */
    int64_t max_lock_hold_ns;    /* longest single hold of the lock by a sweep */
};

/* "leaky" or "fixed": which store this program was linked with. */
extern const char store_flavor[];

struct store *store_new(const struct store_options *options);

/* Copy `len` bytes of metadata into a new entry keyed by `id`. Returns 0, or -1 with errno
 * EEXIST (the id is already held) or ENOMEM. */
int store_put(struct store *store, uint64_t id, const void *meta, size_t len, int64_t now_ns);

void store_get_stats(struct store *store, struct store_stats *out);

/* Stop background work (if any) and free every entry. */
void store_free(struct store *store);

#endif
