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

/* entries: the most a sweep unlinks per hold of the store's lock (the batch is kept on the
 * sweeping thread's stack, 8 bytes an entry). Measured by bench/sweep_cost with cold 1 KiB
 * entries: ~120 ns an unlink, so a hold lasts ~40 us (1024 would be ~130 us, 4096 ~450 us),
 * while the whole sweep costs the same ~150-200 ns per expired entry whatever the batch.
 * Overridable at compile time only so that the benchmark can compare batch sizes. */
#ifndef STORE_SWEEP_BATCH_ENTRIES
#define STORE_SWEEP_BATCH_ENTRIES 256
#endif

/* Remove every entry whose expiry time is <= now_ns, oldest first, stopping at the first live
 * one. Returns the number of entries removed. Thread-safe (puts may run concurrently). */
size_t store_sweep(struct store *store, int64_t now_ns);

/* Lock holds taken by sweeps since start: ceil(expired / STORE_SWEEP_BATCH_ENTRIES) per sweep,
 * at least one. Lets tests see that a big sweep takes several short holds. */
uint64_t store_sweep_batches(struct store *store);

#endif
