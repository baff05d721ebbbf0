/*
 * heapprof: a sampling heap profiler for C programs, with Go-compatible pprof output.
 *
 * Link the static library (libheapprof.a, as leaky and fixed do) or preload the shared one
 * (LD_PRELOAD=build/lib/libheapprof.so) and every malloc/free of the process is seen. A sample is
 * taken on average every HEAPPROF_RATE bytes allocated (default 524288; 1 = every allocation;
 * 0 = off), with its stack; the profiles estimate, per stack, the bytes and objects allocated
 * since start and those still in use.
 *
 * Environment (read once, at the first allocation):
 *   HEAPPROF_RATE=N          mean bytes between samples
 *   HEAPPROF_SEED=N          make the sampling sequence repeatable (tests)
 *   HEAPPROF_FILE=PREFIX     write PREFIX.NNNN.pb.gz at exit (and every HEAPPROF_INTERVAL)
 *   HEAPPROF_INTERVAL=DUR    e.g. 10s
 *   HEAPPROF_HTTP=HOST:PORT  serve /debug/pprof/... from a thread of its own (preloaded programs)
 *
 * Functions return 0 / -1 (errno set); none of them prints.
 */
#ifndef HEAPPROF_H
#define HEAPPROF_H

#include <stddef.h>
#include <stdint.h>

struct evhttp;

enum hprof_kind {
    HPROF_HEAP,   /* default sample type inuse_space */
    HPROF_ALLOCS, /* the same data, default sample type alloc_space */
};

/* Totals of the profile, unbiased estimates (bytes and objects), plus the profiler's own cost. */
struct hprof_totals {
    uint64_t rate;
    double inuse_bytes, inuse_objects;
    double alloc_bytes, alloc_objects;
    uint64_t samples_live;     /* sampled blocks not yet freed */
    uint64_t buckets;          /* distinct (stack, size) pairs */
    uint64_t overhead_bytes;   /* the profiler's own allocations (tables, symbols, encoders) */
};

/* Current totals. */
void hprof_get_totals(struct hprof_totals *out);

/* Write a gzip'd pprof profile to an fd or (atomically: temp file + rename) to a path. */
int hprof_write_profile_fd(int fd, enum hprof_kind kind);
int hprof_write_profile_path(const char *path, enum hprof_kind kind);

/* Serve /debug/pprof/heap and /debug/pprof/allocs (and the rest of the debug surface) on an
 * evhttp the caller owns and runs. */
int hprof_http_mount(struct evhttp *http);

#endif
