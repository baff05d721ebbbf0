/*
 * hprof_internal: the seam between the profiler's collect layer and the layers above it.
 *
 *   collect/ (hprof_malloc.c, hprof_sampler.c, hprof_table.c; the CPU and threads engines):
 *   interposes malloc/free, samples allocations as a Poisson process over bytes, records stacks
 *   in a table of buckets, and keeps the set of live sampled blocks so that free/realloc
 *   retire them;
 *
 *   pprof/ (the generic builder and the profiles' writers, symbolizer, mappings, codec) and
 *   web/ (router, registry, endpoints, files): turn a snapshot of that table into a
 *   Go-compatible pprof profile, symbolized in-process, served over HTTP or written to files.
 *
 * The layers above only ever see a snapshot: a copy of the buckets, read without a lock (each
 * bucket's counters are read consistently, see hprof_table.c), so encoding, symbolizing and gzip
 * run without any lock that malloc needs. Tests build snapshots by hand (fake stacks) and feed
 * them to the encoder.
 *
 * Everything the profiler allocates for itself happens between hprof_internal_enter() and
 * hprof_internal_exit(): such allocations are forwarded to glibc without sampling or recursion
 * and are counted as the profiler's overhead, not as the program's heap.
 */
#ifndef HPROF_INTERNAL_H
#define HPROF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#define HPROF_MAX_DEPTH 64 /* frames kept per stack */

/* One bucket: a distinct (stack, allocation size) pair, as Go's memory profile keys them, with
 * its unbiased estimates. Each sampled allocation of `size` bytes was weighted at record time by
 * 1 / (1 - exp(-size / rate)); these are sums of those weights (objects) and weight * size
 * (bytes). At rate 1 every allocation is recorded with weight 1, so the values are exact. */
struct hprof_bucket {
    uint64_t size;                     /* bytes requested by each allocation of this bucket */
    double alloc_objects, alloc_bytes; /* since start: every sampled allocation */
    double inuse_objects, inuse_bytes; /* still live: allocations minus frees */
    int depth;                         /* frames in pcs */
    uintptr_t pcs[HPROF_MAX_DEPTH];    /* call sites, leaf first, each a return address - 1 */
};

struct hprof_snapshot {
    int64_t time_ns;           /* CLOCK_REALTIME when taken */
    uint64_t rate;             /* mean bytes between samples; the profile's period */
    uint64_t peak_inuse_bytes; /* peak of the running in-use estimate since start; 0: unknown */
    size_t n_buckets;
    struct hprof_bucket *buckets; /* owned by the snapshot */
};

/* Copy the bucket table (lock-free). Returns 0 / -1 (out of memory). The copy is made with the
 * profiler's own allocations; release it with hprof_snapshot_release. */
int hprof_snapshot_take(struct hprof_snapshot *out);
void hprof_snapshot_release(struct hprof_snapshot *snapshot);

/* Enter/leave the profiler on the calling thread (nestable). Inside, allocations are neither
 * sampled nor recorded, and are counted as overhead. */
void hprof_internal_enter(void);
void hprof_internal_exit(void);

#endif
