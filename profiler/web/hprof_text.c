/*
 * hprof_text: the legacy text profiles (?debug=1), as Go's runtime/pprof writes them and as
 * pprof's legacy parser (github.com/google/pprof profile/legacy_profile.go) reads them.
 *
 * Heap (Go's writeHeapInternal):
 *     heap profile: INUSE_N: INUSE_B [ALLOC_N: ALLOC_B] @ heap/2*RATE
 *     INUSE_N: INUSE_B [ALLOC_N: ALLOC_B] @ 0xRET 0xRET ...
 *     #	0xPC	function+0xOFF	file:line
 *     (empty line)
 *     ...
 *     # figures of /debug/memstats, as Go appends runtime.MemStats
 *     MAPPED_LIBRARIES:
 *     (the text of /proc/self/maps)
 * The counts are raw: samples taken, not estimates. pprof's parser unbiases each record itself
 * with 1 / (1 - exp(-(bytes/count) / rate)), reading rate as half the number after "heap/"
 * (Go writes 2 * MemProfileRate: "early versions of the C++ heap profiler reported
 * 2*MemProfileRate, so that's what pprof has come to expect"). So a bucket's raw count is its
 * estimate divided by the same weight the collection half multiplied it by, and pprof gets back
 * the estimates the binary profile carries. Records are sorted by in-use bytes, largest first.
 * Addresses on "@" lines are return addresses (our PCs + 1): pprof subtracts 1 from each, as
 * Go's stacks are return addresses. "#" lines are comments to pprof and the reading for people:
 * one per frame, inlined functions first, at the PC itself; +0xOFF is from the start of the
 * function's unwind entry (libunwind's FDE lookup), omitted when there is none.
 *
 * The symbolizer's lock is held while "#" lines are written; nothing here takes a lock malloc
 * needs. All allocations are inside hprof_internal_enter/exit.
 */
#include "hprof_web.h"

#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#define HPROF_TEXT_MAPS_MAX_BYTES (16u << 20) /* bytes: /proc/self/maps copied at most */

/* The start of the function containing pc (its FDE), or 0 when unknown. */
static uint64_t function_entry(uint64_t pc)
{
    unw_proc_info_t pi;
    memset(&pi, 0, sizeof(pi));
    if (unw_get_proc_info_by_ip(unw_local_addr_space, (unw_word_t)pc, &pi, NULL) != 0 ||
        pi.start_ip == 0 || pi.start_ip > pc)
        return 0;
    return (uint64_t)pi.start_ip;
}

void hprof_text_stack(struct evbuffer *out, const uintptr_t *pcs, int depth)
{
    hprof_internal_enter();
    for (int i = 0; i < depth; i++) {
        struct hprof_symbol sym;
        hprof_sym_lookup(pcs[i], &sym);
        /* A frame named object+0xOFFSET has no function to be an offset into. */
        uint64_t entry =
            sym.n_frames > 0 && !(sym.flags & HPROF_SYM_BARE) ? function_entry(pcs[i]) : 0;
        if (sym.n_frames == 0 || sym.frames[0].name[0] == '\0')
            evbuffer_add_printf(out, "#\t%#" PRIxPTR "\n", pcs[i]);
        for (unsigned f = 0; f < sym.n_frames && sym.frames[0].name[0] != '\0'; f++) {
            const struct hprof_frame *fr = &sym.frames[f];
            evbuffer_add_printf(out, "#\t%#" PRIxPTR "\t%s", pcs[i], fr->name);
            if (entry != 0)
                evbuffer_add_printf(out, "+%#" PRIx64, (uint64_t)pcs[i] - entry);
            evbuffer_add_printf(out, "\t%s:%" PRId64 "\n", fr->file[0] ? fr->file : "?", fr->line);
        }
    }
    evbuffer_add(out, "\n", 1);
    hprof_internal_exit();
}

void hprof_text_traceback(struct evbuffer *out, const uintptr_t *pcs, int depth)
{
    hprof_internal_enter();
    for (int i = 0; i < depth; i++) {
        struct hprof_symbol sym;
        hprof_sym_lookup(pcs[i], &sym);
        uint64_t entry =
            sym.n_frames > 0 && !(sym.flags & HPROF_SYM_BARE) ? function_entry(pcs[i]) : 0;
        if (sym.n_frames == 0 || sym.frames[0].name[0] == '\0') {
            evbuffer_add_printf(out, "?(...)\n\t?:0 pc=%#" PRIxPTR "\n", pcs[i]);
            continue;
        }
        for (unsigned f = 0; f < sym.n_frames; f++) {
            const struct hprof_frame *fr = &sym.frames[f];
            evbuffer_add_printf(out, "%s(...)\n\t%s:%" PRId64, fr->name,
                                fr->file[0] ? fr->file : "?", fr->line);
            if (f + 1 == sym.n_frames && entry != 0) /* the physical frame carries the offset */
                evbuffer_add_printf(out, " +%#" PRIx64, (uint64_t)pcs[i] - entry);
            evbuffer_add(out, "\n", 1);
        }
    }
    evbuffer_add(out, "\n", 1);
    hprof_internal_exit();
}

int hprof_text_maps(struct evbuffer *out, const char *sentinel)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    hprof_internal_enter();
    int rc = evbuffer_add_printf(out, "\n%s\n", sentinel) < 0 ? -1 : 0;
    /* Read it whole before adding it: a maps file read in pieces can tear between reads, but
     * each read returns whole lines. */
    size_t total = 0;
    while (rc == 0 && total < HPROF_TEXT_MAPS_MAX_BYTES) {
        int n = evbuffer_read(out, fd, 64 * 1024);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = -1;
        if (n <= 0)
            break;
        total += (size_t)n;
    }
    int saved = errno;
    close(fd);
    hprof_internal_exit();
    errno = saved;
    return rc;
}

struct record {
    size_t index;
    long long inuse_n, inuse_b, alloc_n, alloc_b;
};

static int by_inuse_bytes(const void *a, const void *b)
{
    const struct record *x = a, *y = b;
    if (x->inuse_b != y->inuse_b)
        return x->inuse_b > y->inuse_b ? -1 : 1;
    if (x->alloc_b != y->alloc_b)
        return x->alloc_b > y->alloc_b ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* The number of samples behind an estimate: estimate / weight, the weight the collection half
 * gave each sample of this size (1 at rate 1). */
static long long raw_count(double estimate, uint64_t size, uint64_t rate)
{
    double weight = rate <= 1 ? 1.0 : 1.0 / -expm1(-(double)size / (double)rate);
    if (!isfinite(estimate) || !isfinite(weight) || weight <= 0)
        return 0;
    return llround(estimate / weight);
}

int hprof_text_heap(const struct hprof_snapshot *snap, struct evbuffer *out)
{
    int rc = -1;
    hprof_internal_enter();
    struct record *recs = calloc(snap->n_buckets ? snap->n_buckets : 1, sizeof(*recs));
    struct hprof_maps maps;
    memset(&maps, 0, sizeof(maps));
    maps.main = -1;
    if (recs == NULL)
        goto out;
    long long t_inuse_n = 0, t_inuse_b = 0, t_alloc_n = 0, t_alloc_b = 0;
    for (size_t i = 0; i < snap->n_buckets; i++) {
        const struct hprof_bucket *b = &snap->buckets[i];
        struct record *r = &recs[i];
        r->index = i;
        r->alloc_n = raw_count(b->alloc_objects, b->size, snap->rate);
        r->inuse_n = raw_count(b->inuse_objects, b->size, snap->rate);
        r->alloc_b = r->alloc_n * (long long)b->size;
        r->inuse_b = r->inuse_n * (long long)b->size;
        t_inuse_n += r->inuse_n;
        t_inuse_b += r->inuse_b;
        t_alloc_n += r->alloc_n;
        t_alloc_b += r->alloc_b;
    }
    qsort(recs, snap->n_buckets, sizeof(*recs), by_inuse_bytes);
    evbuffer_add_printf(out, "heap profile: %lld: %lld [%lld: %lld] @ heap/%" PRIu64 "\n",
                        t_inuse_n, t_inuse_b, t_alloc_n, t_alloc_b, 2 * snap->rate);

    (void)hprof_maps_read(&maps); /* for the symbolizer's view; empty if unreadable */
    (void)hprof_sym_begin(&maps);
    for (size_t i = 0; i < snap->n_buckets; i++) {
        const struct record *r = &recs[i];
        const struct hprof_bucket *b = &snap->buckets[r->index];
        evbuffer_add_printf(out, "%lld: %lld [%lld: %lld] @", r->inuse_n, r->inuse_b, r->alloc_n,
                            r->alloc_b);
        int depth = b->depth < 0 ? 0 : b->depth > HPROF_MAX_DEPTH ? HPROF_MAX_DEPTH : b->depth;
        for (int f = 0; f < depth; f++)
            evbuffer_add_printf(out, " %#" PRIxPTR, b->pcs[f] + 1);
        evbuffer_add(out, "\n", 1);
        hprof_text_stack(out, b->pcs, depth);
    }
    hprof_sym_end();

    evbuffer_add_printf(out, "\n# heapprof memstats (as /debug/memstats; estimates, not raw)\n");
    if (hprof_stats_write(out, HPROF_STATS_COMMENTS) != 0 ||
        hprof_text_maps(out, HPROF_TEXT_MAPS_HEAP) != 0)
        goto out;
    rc = 0;
out:
    free(recs);
    hprof_maps_free(&maps);
    hprof_internal_exit();
    if (rc != 0 && errno == 0)
        errno = ENOMEM;
    return rc;
}
