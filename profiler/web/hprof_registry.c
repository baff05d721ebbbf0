/*
 * hprof_registry: the table of profiles (see hprof_registry.h) and the heap and allocs
 * profiles' writers. The heap and allocs profiles are one data set (the sampled memory
 * profile) with two default sample types; their count is the profile's records (buckets), as
 * Go's index counts them.
 */
#include "hprof_registry.h"

#include <errno.h>
#include <event2/buffer.h>
#include <string.h>

#include "hprof_locks_http.h"
#include "hprof_web.h"

static uint64_t memory_count(void)
{
    struct hprof_totals totals;
    hprof_get_totals(&totals);
    return totals.buckets;
}

static int memory_proto(const struct hprof_profile *p, uint8_t **out, size_t *len,
                        struct hprof_profile_error *err)
{
    (void)err;
    return hprof_pprof_take(p->delta_kind, out, len);
}

static int memory_text(const struct hprof_profile *p, int debug, struct evbuffer *out,
                       struct hprof_profile_error *err)
{
    (void)p;
    (void)debug; /* Go writes the same legacy text for every debug > 0 */
    (void)err;
    struct hprof_snapshot snap;
    memset(&snap, 0, sizeof(snap));
    int rc = hprof_snapshot_take(&snap) != 0 ? -1 : hprof_text_heap(&snap, out);
    int saved = errno;
    hprof_snapshot_release(&snap);
    errno = saved;
    return rc;
}

static uint64_t threads_count(void)
{
    return hprof_threads_count();
}

/* Sorted by name, as Go lists them. */
const struct hprof_profile hprof_profiles[] = {
    {.name = "allocs",
     .description = "A sampling of all past memory allocations",
     .count = memory_count,
     .write_proto = memory_proto,
     .write_text = memory_text,
     .delta = 1,
     .delta_kind = HPROF_ALLOCS},
    {.name = "block",
     .description = "Stack traces that led to blocking on synchronization primitives (pthread "
                    "mutexes, rwlocks, condition variables, semaphores; HEAPPROF_BLOCK_RATE)",
     .count = hprof_locks_http_count_block,
     .serve = hprof_locks_http_serve},
    {.name = "cmdline",
     .description = "The command line invocation of the current program (its arguments joined "
                    "by NUL bytes)",
     .serve = hprof_pages_serve_cmdline},
    {.name = "heap",
     .description = "A sampling of memory allocations of live objects. You can specify the gc "
                    "GET parameter to run GC before taking the heap sample (ignored: C has no "
                    "GC).",
     .count = memory_count,
     .write_proto = memory_proto,
     .write_text = memory_text,
     .delta = 1,
     .delta_kind = HPROF_HEAP},
    {.name = "mutex",
     .description = "Stack traces of holders of contended mutexes (HEAPPROF_MUTEX_FRACTION)",
     .count = hprof_locks_http_count_mutex,
     .serve = hprof_locks_http_serve},
    {.name = "profile",
     .description = "CPU profile. You can specify the duration in the seconds GET parameter. "
                    "After you get the profile file, use the go tool pprof command to "
                    "investigate the profile.",
     .serve = hprof_cpu_http_serve},
    {.name = "symbol",
     .description = "Maps program counters to function names (pprof's remote symbolization)",
     .serve = hprof_pages_serve_symbol},
    {.name = "threadcreate",
     .description = "Stack traces that led to the creation of the live OS threads "
                    "(pthread_create; threads that ended drop out)",
     .count = hprof_locks_http_count_threadcreate,
     .write_proto = hprof_locks_http_threadcreate_proto,
     .write_text = hprof_locks_http_threadcreate_text},
    {.name = "threads",
     .description = "Stack traces of all current threads (the goroutine profile of a C program)",
     .count = threads_count,
     .write_proto = hprof_threads_write_proto,
     .write_text = hprof_threads_write_text},
};

const size_t hprof_n_profiles = sizeof(hprof_profiles) / sizeof(hprof_profiles[0]);

const struct hprof_profile *hprof_profile_lookup(const char *name)
{
    for (size_t i = 0; i < hprof_n_profiles; i++)
        if (strcmp(hprof_profiles[i].name, name) == 0)
            return &hprof_profiles[i];
    return NULL;
}
