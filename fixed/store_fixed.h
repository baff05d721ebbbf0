/*
 * store_fixed: what the fixed store offers beyond store.h, for its tests and benchmarks.
 *
 * The janitor calls store_sweep(store, lc_monotonic_ns()) every sweep interval; tests create the
 * store with sweep_every_ns = 0 (no janitor thread) and call it themselves with a fake clock.
 */
#ifndef STORE_FIXED_H
#define STORE_FIXED_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* entries: the most a sweep unlinks per hold of the store's lock. Measured (bench/sweep_cost):
 * about 25 ns per unlink, so a hold lasts tens of microseconds, far under the 1 ms goal. */
#define STORE_SWEEP_BATCH_ENTRIES 1024

/* Remove every entry whose expiry time is <= now_ns, oldest first, stopping at the first live
 * one. Returns the number of entries removed. Thread-safe (puts may run concurrently). */
size_t store_sweep(struct store *store, int64_t now_ns);

/* Lock holds taken by sweeps since start: ceil(expired / STORE_SWEEP_BATCH_ENTRIES) per sweep,
 * at least one. Lets tests see that a big sweep takes several short holds. */
uint64_t store_sweep_batches(struct store *store);

#endif
