/*
 * hprof_stats: the figures that /debug/memstats (JSON) and /metrics (Prometheus) serve, and that
 * the heap text profile appends as comments: one list of (name, type, value, help), written by
 * one sink into the three formats, so they can never disagree.
 *
 * Sources, in order:
 *   heapprof  the profiler's sampled estimate (hprof_get_totals: in-use and allocated bytes and
 *             objects, samples live, buckets, the rate) and its own cost (overhead bytes, the
 *             symbol cache), the CPU profiler's state;
 *   glibc     mallinfo2(): glibc's own count, summed over its arenas. glibc_inuse_bytes is every
 *             byte glibc has handed out: uordblks (in chunks of the arenas, chunk headers
 *             included) + hblkhd (in mmap'd chunks). It is what the estimate is compared with;
 *             it also holds the profiler's overhead and the 16-byte header of sampled blocks.
 *             mallinfo2 locks each arena in turn for a walk of its free lists: microseconds
 *             with the servers' heaps, never for long enough to matter to /process;
 *   process   RSS and peak RSS (VmRSS, VmHWM of /proc/self/status), virtual size, threads,
 *             CPU time (getrusage), open and maximum file descriptors, and the start: the
 *             time this file's constructor ran, i.e. when the program started (the profiler is
 *             linked in or preloaded). Not /proc/self/stat's start time: in a container with a
 *             time namespace it does not match CLOCK_BOOTTIME. Uptime is measured on
 *             CLOCK_MONOTONIC, the start time is CLOCK_REALTIME then;
 *   sources   registered by the program (hprof_http_add_stats), e.g. the store of leaky/fixed.
 *
 * Names: the JSON key is the name (flat: rss_bytes, glibc_inuse_bytes, inuse_bytes...), or
 * prefix + name for a source's figure whose name is already a key (never a duplicate key); the
 * Prometheus metric is prefix + name, "heapprof_" for the profiler's figures and the prefix
 * given at registration for the others, except the process figures, which /metrics gives under
 * the names every Prometheus client library uses (process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_start_time_seconds, process_cpu_seconds_total,
 * process_open_fds, process_max_fds), so that fleet dashboards and rules work unchanged; and
 * heapprof_build_info{version="..."} 1, the version as a label (Prometheus only). Units end the
 * name (_bytes, _seconds), counters end in _total. Numbers are written exactly when integral (below
 * 2^53), else with 17 digits.
 *
 * Locks: stats_lock guards the registry and is held while the registered sources run, so that
 * hprof_http_remove_stats returns only once its source has finished. Sources must not call
 * hprof_http_add_stats or remove_stats. All allocations are inside hprof_internal_enter/exit.
 */
#include "hprof_web.h"
#include "hprof_cpu.h"
#include "hprof_fork.h"
#include "hprof_proc.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <dirent.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "lc_util.h"
#include "lc_version.h"

#define HPROF_STATS_MAX_SOURCES 16
#define HPROF_PREFIX            "heapprof_"

struct hprof_stat_sink {
    struct evbuffer *out;
    enum hprof_stat_format format;
    const char *prefix;
    size_t written;
};

struct source {
    const char *prefix;
    hprof_stats_fn fn;
    void *arg;
};

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct source sources[HPROF_STATS_MAX_SOURCES];
static size_t n_sources;
static int64_t loaded_ns;     /* lc_monotonic_ns() when the program started (0: not yet) */
static int64_t started_at_ns; /* lc_realtime_ns() then */

/* A fork child's only thread cannot be inside a source: give it a fresh lock. The stats stage of
 * the fork sequence (hprof_fork.c): stats_lock is not held across fork, since the sources it is
 * held around take the program's own locks. */
static void atfork_child(void)
{
    pthread_mutex_init(&stats_lock, NULL);
}

static const struct hprof_fork_ops stats_fork_ops = {NULL, NULL, atfork_child};

__attribute__((constructor)) static void hprof_stats_init(void)
{
    loaded_ns = lc_monotonic_ns();
    started_at_ns = lc_realtime_ns();
    hprof_fork_register(HPROF_FORK_STATS, &stats_fork_ops);
}

static bool valid_name(const char *name)
{
    if (name == NULL || !((*name >= 'a' && *name <= 'z') || *name == '_'))
        return false;
    for (const char *c = name; *c != '\0'; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    return true;
}

static void add_number(struct evbuffer *out, double v, bool json)
{
    if (isnan(v))
        evbuffer_add_printf(out, json ? "null" : "NaN");
    else if (isinf(v))
        evbuffer_add_printf(out, json ? "null" : (v > 0 ? "+Inf" : "-Inf"));
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        evbuffer_add_printf(out, "%.0f", v);
    else
        evbuffer_add_printf(out, "%.17g", v);
}

void hprof_stat(struct hprof_stat_sink *sink, const char *name, enum hprof_stat_type type,
                double value, const char *help)
{
    if (sink == NULL || !valid_name(name))
        return;
    hprof_internal_enter();
    struct evbuffer *out = sink->out;
    switch (sink->format) {
    case HPROF_STATS_JSON: {
        /* A source's figure whose name is already a key (a built-in figure's, or another
         * source's) is written under its prefixed name, as /metrics names it: a JSON object
         * never has the same key twice. */
        bool taken = false;
        if (strcmp(sink->prefix, HPROF_PREFIX) != 0) {
            char key[160];
            int n = snprintf(key, sizeof(key), "\n  \"%s\": ", name);
            taken = n > 0 && (size_t)n < sizeof(key) &&
                    evbuffer_search(out, key, (size_t)n, NULL).pos != -1;
        }
        evbuffer_add_printf(out, "%s\n  \"%s%s\": ", sink->written ? "," : "",
                            taken ? sink->prefix : "", name);
        add_number(out, value, true);
        break;
    }
    case HPROF_STATS_PROMETHEUS:
        evbuffer_add_printf(out, "# HELP %s%s ", sink->prefix, name);
        for (const char *c = help != NULL ? help : ""; *c != '\0'; c++) {
            if (*c == '\\')
                evbuffer_add(out, "\\\\", 2);
            else if (*c == '\n')
                evbuffer_add(out, "\\n", 2);
            else
                evbuffer_add(out, c, 1);
        }
        evbuffer_add_printf(out, "\n# TYPE %s%s %s\n%s%s ", sink->prefix, name,
                            type == HPROF_STAT_COUNTER ? "counter" : "gauge", sink->prefix, name);
        add_number(out, value, false);
        evbuffer_add(out, "\n", 1);
        break;
    case HPROF_STATS_COMMENTS:
        evbuffer_add_printf(out, "# %s = ", name);
        add_number(out, value, false);
        evbuffer_add(out, "\n", 1);
        break;
    }
    sink->written++;
    hprof_internal_exit();
}

int hprof_http_add_stats(const char *prefix, hprof_stats_fn fn, void *arg)
{
    if (fn == NULL || prefix == NULL) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&stats_lock);
    int rc = -1;
    if (n_sources == HPROF_STATS_MAX_SOURCES) {
        errno = ENOSPC;
    } else {
        sources[n_sources++] = (struct source){prefix, fn, arg};
        rc = 0;
    }
    pthread_mutex_unlock(&stats_lock);
    return rc;
}

int hprof_http_remove_stats(hprof_stats_fn fn, void *arg)
{
    pthread_mutex_lock(&stats_lock);
    int rc = -1;
    for (size_t i = 0; i < n_sources; i++) {
        if (sources[i].fn == fn && sources[i].arg == arg) {
            memmove(&sources[i], &sources[i + 1], (n_sources - i - 1) * sizeof(sources[0]));
            n_sources--;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&stats_lock);
    if (rc != 0)
        errno = ENOENT;
    return rc;
}

/* ---- the process ---- */

struct proc_figures {
    double rss, rss_peak, vsize, threads, uptime;
    double start_time, cpu_seconds, open_fds, max_fds;
};

/* The value of "Key:" in /proc/self/status text (kB lines are converted to bytes), or NAN. */
static double status_value(const char *text, const char *key)
{
    const char *at = strstr(text, key);
    if (at == NULL)
        return NAN;
    char *end;
    double v = strtod(at + strlen(key), &end);
    if (end == at + strlen(key))
        return NAN;
    while (*end == ' ' || *end == '\t')
        end++;
    return strncmp(end, "kB", 2) == 0 ? v * 1024 : v;
}

static void read_process(struct proc_figures *p)
{
    char buf[4096];
    p->rss = p->rss_peak = p->vsize = p->threads = p->uptime = NAN;
    p->start_time = p->cpu_seconds = p->open_fds = p->max_fds = NAN;
    if (hprof_proc_read("/proc/self/status", buf, sizeof(buf)) > 0) {
        p->rss = status_value(buf, "\nVmRSS:");
        p->rss_peak = status_value(buf, "\nVmHWM:");
        p->vsize = status_value(buf, "\nVmSize:");
        p->threads = status_value(buf, "\nThreads:");
    }
    if (loaded_ns != 0) {
        p->uptime = (double)(lc_monotonic_ns() - loaded_ns) / 1e9;
        p->start_time = (double)started_at_ns / 1e9;
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        p->cpu_seconds = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                         (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        p->max_fds = rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur;
    DIR *fds = opendir("/proc/self/fd"); /* allocates: callers are inside hprof_internal_enter */
    if (fds != NULL) {
        double n = 0;
        struct dirent *e;
        while ((e = readdir(fds)) != NULL)
            n += e->d_name[0] != '.';
        closedir(fds);
        p->open_fds = n - 1; /* not the descriptor opendir itself holds */
    }
}

/* A figure under a name of its own, without the source's prefix (process_*). */
static void emit_bare(struct hprof_stat_sink *s, const char *name, enum hprof_stat_type type,
                      double value, const char *help)
{
    const char *prefix = s->prefix;
    s->prefix = "";
    hprof_stat(s, name, type, value, help);
    s->prefix = prefix;
}

/* ---- all the figures ---- */

static void emit_own(struct hprof_stat_sink *s)
{
    struct hprof_totals t;
    hprof_get_totals(&t);
    struct hprof_sym_stats sym;
    hprof_sym_get_stats(&sym);
    struct hprof_cpu_stats cpu;
    hprof_cpu_get_stats(&cpu);
    struct mallinfo2 mi = mallinfo2();
    struct proc_figures proc;
    read_process(&proc);

    const enum hprof_stat_type G = HPROF_STAT_GAUGE, C = HPROF_STAT_COUNTER;
    hprof_stat(s, "sample_rate_bytes", G, (double)t.rate,
               "Mean bytes allocated between heap samples (HEAPPROF_RATE; 0 = off).");
    hprof_stat(s, "inuse_bytes", G, t.inuse_bytes,
               "Heap bytes in use, estimated from the samples (the heap profile's inuse_space).");
    hprof_stat(s, "inuse_objects", G, t.inuse_objects,
               "Heap objects in use, estimated from the samples.");
    hprof_stat(s, "peak_inuse_bytes", G, t.peak_inuse_bytes,
               "Highest heap bytes in use since start, estimated from the samples.");
    hprof_stat(s, "alloc_bytes_total", C, t.alloc_bytes,
               "Heap bytes allocated since start, estimated from the samples.");
    hprof_stat(s, "alloc_objects_total", C, t.alloc_objects,
               "Heap objects allocated since start, estimated from the samples.");
    hprof_stat(s, "samples_live", G, (double)t.samples_live, "Sampled blocks not yet freed.");
    hprof_stat(s, "buckets", G, (double)t.buckets,
               "Distinct (stack, size) records of the heap profile.");
    hprof_stat(s, "overhead_bytes", G, (double)t.overhead_bytes,
               "The profiler's own memory: its heap allocations and mapped tables.");
    hprof_stat(s, "symbol_cache_bytes", G, (double)sym.table_bytes,
               "The symbolizer's cache (part of overhead_bytes).");
    hprof_stat(s, "symbol_cache_entries", G, (double)sym.entries, "Program counters symbolized.");
    hprof_stat(s, "symbol_cache_limit_bytes", G, (double)sym.limit_bytes,
               "The symbolizer cache's budget (HEAPPROF_SYMBOL_CACHE).");
    hprof_stat(s, "symbol_cache_hits_total", C, (double)sym.hits,
               "Program counters answered from the symbolizer's cache.");
    hprof_stat(s, "symbol_cache_misses_total", C, (double)sym.misses,
               "Program counters resolved from symbol tables and DWARF.");
    hprof_stat(s, "symbol_cache_evictions_total", C, (double)sym.evictions,
               "Cached program counters dropped to keep the cache within its budget.");
    hprof_stat(s, "cpu_profile_running", G, cpu.running ? 1 : 0,
               "1 while a CPU profile is being taken.");
    hprof_stat(s, "cpu_profiles_total", C, (double)cpu.profiles, "CPU profiles completed.");
    hprof_stat(s, "glibc_inuse_bytes", G, (double)(mi.uordblks + mi.hblkhd),
               "Bytes glibc's malloc has handed out (mallinfo2 uordblks + hblkhd).");
    hprof_stat(s, "glibc_arena_bytes", G, (double)mi.arena,
               "Bytes of glibc's arenas obtained from the system (mallinfo2 arena).");
    hprof_stat(s, "glibc_arena_inuse_bytes", G, (double)mi.uordblks,
               "Bytes in use in glibc's arenas (mallinfo2 uordblks).");
    hprof_stat(s, "glibc_free_bytes", G, (double)mi.fordblks,
               "Free bytes kept in glibc's arenas (mallinfo2 fordblks).");
    hprof_stat(s, "glibc_free_chunks", G, (double)mi.ordblks,
               "Free chunks in glibc's arenas (mallinfo2 ordblks).");
    hprof_stat(s, "glibc_mmap_bytes", G, (double)mi.hblkhd,
               "Bytes in chunks glibc mapped on their own (mallinfo2 hblkhd).");
    hprof_stat(s, "glibc_mmap_chunks", G, (double)mi.hblks,
               "Chunks glibc mapped on their own (mallinfo2 hblks).");
    hprof_stat(s, "glibc_releasable_bytes", G, (double)mi.keepcost,
               "Free bytes at the top of the main arena that malloc_trim could return.");
    hprof_stat(s, "rss_peak_bytes", G, proc.rss_peak, "Peak resident set size (VmHWM).");
    hprof_stat(s, "threads", G, proc.threads, "Threads of the process.");
    if (s->format != HPROF_STATS_PROMETHEUS) {
        hprof_stat(s, "rss_bytes", G, proc.rss, "Resident set size (VmRSS).");
        hprof_stat(s, "virtual_bytes", G, proc.vsize, "Virtual memory size (VmSize).");
        hprof_stat(s, "uptime_seconds", G, proc.uptime, "Seconds since the process started.");
        return;
    }
    /* Prometheus: the process collector's standard names, and the build. */
    emit_bare(s, "process_resident_memory_bytes", G, proc.rss, "Resident memory size in bytes.");
    emit_bare(s, "process_virtual_memory_bytes", G, proc.vsize, "Virtual memory size in bytes.");
    emit_bare(s, "process_start_time_seconds", G, proc.start_time,
              "Start time of the process since unix epoch in seconds.");
    emit_bare(s, "process_cpu_seconds_total", C, proc.cpu_seconds,
              "Total user and system CPU time spent in seconds.");
    emit_bare(s, "process_open_fds", G, proc.open_fds, "Number of open file descriptors.");
    emit_bare(s, "process_max_fds", G, proc.max_fds, "Maximum number of open file descriptors.");
    evbuffer_add_printf(s->out,
                        "# HELP heapprof_build_info The profiler's version (leakcase), as a label; "
                        "the value is 1.\n# TYPE heapprof_build_info gauge\n"
                        "heapprof_build_info{version=\"%s\"} 1\n",
                        LC_VERSION);
    s->written++;
}

int hprof_stats_write(struct evbuffer *out, enum hprof_stat_format format)
{
    hprof_internal_enter();
    struct hprof_stat_sink sink = {out, format, HPROF_PREFIX, 0};
    if (format == HPROF_STATS_JSON)
        evbuffer_add(out, "{", 1);
    emit_own(&sink);
    pthread_mutex_lock(&stats_lock);
    for (size_t i = 0; i < n_sources; i++) {
        sink.prefix = sources[i].prefix;
        sources[i].fn(&sink, sources[i].arg);
    }
    pthread_mutex_unlock(&stats_lock);
    if (format == HPROF_STATS_JSON)
        evbuffer_add(out, "\n}\n", 3);
    hprof_internal_exit();
    return 0;
}

static void serve_stats(struct evhttp_request *req, void *arg)
{
    enum hprof_stat_format format = (enum hprof_stat_format)(intptr_t)arg;
    if (hprof_web_refuse(req))
        return;
    hprof_internal_enter();
    struct evbuffer *body = evbuffer_new();
    if (body == NULL || hprof_stats_write(body, format) != 0)
        hprof_web_error(req, HTTP_INTERNAL, "out of memory");
    else
        hprof_web_reply(req,
                        format == HPROF_STATS_JSON ? "application/json"
                                                   : "text/plain; version=0.0.4; charset=utf-8",
                        NULL, body);
    if (body != NULL)
        evbuffer_free(body);
    hprof_internal_exit();
}

int hprof_stats_mount(struct evhttp *http)
{
    hprof_internal_enter();
    int rc =
        evhttp_set_cb(http, "/debug/memstats", serve_stats, (void *)(intptr_t)HPROF_STATS_JSON);
    if (rc == 0)
        rc = evhttp_set_cb(http, "/metrics", serve_stats, (void *)(intptr_t)HPROF_STATS_PROMETHEUS);
    hprof_internal_exit();
    if (rc != 0)
        errno = EEXIST;
    return rc == 0 ? 0 : -1;
}
