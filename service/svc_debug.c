/*
 * svc_debug: what the debug listener serves in a build with the heap profiler (every build but
 * the ASan and TSan ones, see svc_debug_off.c): the profiler's endpoints (/debug/pprof/...,
 * /debug/memstats, /metrics), plus the store's figures next to the profiler's, so a user can
 * hold the in-use estimate against what the store says it holds.
 */
#include "svc.h"

#include "heapprof.h"

/* The store's figures at /debug/memstats and /metrics (leakcase_store_*), next to the
 * profiler's: entries and bytes held are what the in-use estimate should track. */
static void store_stats_source(struct hprof_stat_sink *sink, void *arg)
{
    struct store_stats st;
    store_get_stats(arg, &st);
    const enum hprof_stat_type G = HPROF_STAT_GAUGE, C = HPROF_STAT_COUNTER;
    hprof_stat(sink, "store_entries", G, (double)st.entries, "Entries the store holds.");
    hprof_stat(sink, "store_bytes", G, (double)st.bytes,
               "Bytes the store holds (entry headers and metadata).");
    hprof_stat(sink, "store_puts_total", C, (double)st.puts, "Entries stored since start.");
    hprof_stat(sink, "store_expired_total", C, (double)st.expired_total,
               "Entries removed by sweeps since start (fixed only).");
    hprof_stat(sink, "store_sweeps_total", C, (double)st.sweeps, "Sweeps run since start.");
    hprof_stat(sink, "store_last_sweep_expired", G, (double)st.last_sweep_expired,
               "Entries the last sweep removed.");
    hprof_stat(sink, "store_last_sweep_seconds", G, (double)st.last_sweep_ns / 1e9,
               "How long the last sweep took.");
    hprof_stat(sink, "store_max_lock_hold_seconds", G, (double)st.max_lock_hold_ns / 1e9,
               "Longest single hold of the store's lock by a sweep.");
}

int svc_debug_mount(struct evhttp *debug_http, struct store *store)
{
    if (hprof_http_mount(debug_http) != 0)
        return -1;
    return hprof_http_add_stats("leakcase_", store_stats_source, store);
}

void svc_debug_unmount(struct store *store)
{
    (void)hprof_http_remove_stats(store_stats_source, store); /* ENOENT if never added */
}
