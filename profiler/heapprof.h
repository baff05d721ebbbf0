/*
 * heapprof: a sampling heap profiler for C programs, with Go-compatible pprof output.
 *
 * Link the static library (libheapprof.a, as leaky and fixed do) or preload the shared one
 * (LD_PRELOAD=build/lib/libheapprof.so) and every malloc/free of the process is seen. A sample is
 * taken on average every HEAPPROF_RATE bytes allocated (default 524288; 1 = every allocation;
 * 0 = off), with its stack; the profiles estimate, per stack, the bytes and objects allocated
 * since start and those still in use.
 *
 * Environment (read once, at load or at the first allocation, whichever is first):
 *   HEAPPROF_RATE=N          mean bytes between samples
 *   HEAPPROF_SEED=N          make the sampling sequence repeatable (tests)
 *   HEAPPROF_FILE=PREFIX     write PREFIX.NNNN.pb.gz at exit (and every HEAPPROF_INTERVAL)
 *   HEAPPROF_INTERVAL=DUR    e.g. 10s; at least HEAPPROF_INTERVAL_MIN_NS (1s): a shorter one
 *                            is raised to it, with a message
 *   HEAPPROF_HTTP=HOST:PORT  serve /debug/pprof/... from a thread of its own (preloaded programs;
 *                            port 0 picks one: "heapprof[PID COMM]: listening /debug
 *                            http://HOST:PORT" is printed on stderr)
 *   HEAPPROF_CHILDREN=1      leave the profiler in the environment of the programs this one
 *                            runs (each gets HOST:0 and PREFIX.PID); by default the HEAPPROF_*
 *                            variables and libheapprof.so in LD_PRELOAD are taken out of it
 *
 * Signals: with HEAPPROF_FILE, SIGUSR2 writes the next PREFIX.NNNN.pb.gz at once (unless the
 * program has a SIGUSR2 handler of its own). /debug/pprof/threads interrupts every thread with
 * SIGURG (as Go's runtime does to preempt), unless the program handles SIGURG itself.
 *
 * Functions return 0 / -1 (errno set); none of them prints.
 */
#ifndef HEAPPROF_H
#define HEAPPROF_H

#include <stddef.h>
#include <stdint.h>

/* The shortest HEAPPROF_INTERVAL (nanoseconds): each dump encodes, writes and fsyncs a whole
 * profile, so a millisecond interval meant hundreds of files a second. Profiles closer than a
 * second apart are what /debug/pprof/heap?seconds=N is for. */
#define HEAPPROF_INTERVAL_MIN_NS 1000000000LL

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
    double peak_inuse_bytes; /* highest in-use estimate since start (sampled paths' running sum) */
    uint64_t samples_live;   /* sampled blocks not yet freed */
    uint64_t buckets;        /* distinct (stack, size) pairs */
    uint64_t overhead_bytes; /* the profiler's own allocations (tables, symbols, encoders) */
};

/* Current totals. */
void hprof_get_totals(struct hprof_totals *out);

/* Write a gzip'd pprof profile to an fd or (atomically: temp file + rename) to a path. */
int hprof_write_profile_fd(int fd, enum hprof_kind kind);
int hprof_write_profile_path(const char *path, enum hprof_kind kind);

/* Serve the debug surface on an evhttp the caller owns and runs: /debug/pprof/ (index), heap,
 * allocs, threads, profile, symbol, cmdline, and /debug/memstats and /metrics. The evhttp's
 * generic callback is replaced: an unknown /debug/pprof/NAME gets Go's 404, other paths a
 * plain 404. Returns 0, or -1 (errno EEXIST) when one of the paths is already taken. */
int hprof_http_mount(struct evhttp *http);

/* Figures of the program's own, shown next to the profiler's at /debug/memstats (JSON, key =
 * name) and /metrics (Prometheus, metric = prefix + name). */
enum hprof_stat_type {
    HPROF_STAT_GAUGE,   /* a level that goes up and down */
    HPROF_STAT_COUNTER, /* a count since start that only goes up: name ends in _total */
};
struct hprof_stat_sink;

/* Emit one figure into a sink. name: lowercase letters, digits and '_', ending with its unit
 * (_bytes, _seconds; _total for counters); an invalid name is skipped. help: one line. */
void hprof_stat(struct hprof_stat_sink *sink, const char *name, enum hprof_stat_type type,
                double value, const char *help);

/* A source of figures: called on the debug listener's thread for every /debug/memstats and
 * /metrics request; it emits its figures with hprof_stat and must not block for long. */
typedef void (*hprof_stats_fn)(struct hprof_stat_sink *sink, void *arg);

/* Register a source (at most 16); prefix (e.g. "leakcase_") is kept by reference and must
 * outlive the registration. Returns 0 / -1 (ENOSPC, EINVAL). */
int hprof_http_add_stats(const char *prefix, hprof_stats_fn fn, void *arg);

/* Unregister a source (before freeing what arg points to). Returns 0, or -1 (ENOENT). After it
 * returns, fn is not running and will not be called again. */
int hprof_http_remove_stats(hprof_stats_fn fn, void *arg);

#endif
