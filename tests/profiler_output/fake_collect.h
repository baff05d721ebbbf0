/*
 * fake_collect: test-only stand-ins for the collection half (hprof_internal.h), so that the
 * output half is built and tested alone against hand-built snapshots (DESIGN: "seams for
 * tests"). Never linked into the library.
 *
 *   hprof_snapshot_take    copies the snapshot last given to fake_collect_set (empty at first)
 *   hprof_internal_enter   counts a per-thread nesting depth that tests can read
 *   hprof_get_totals       sums the fake snapshot
 *
 * fake_sites_*: real call sites in this directory's code, with the PCs a stack walk would
 * record (return address - 1) and the function names and lines a symbolizer must find there.
 */
#ifndef FAKE_COLLECT_H
#define FAKE_COLLECT_H

#include <stdint.h>

#include "hprof_internal.h"

/* The snapshot hprof_snapshot_take will copy (not owned; NULL: empty). */
void fake_collect_set(const struct hprof_snapshot *snapshot);
/* hprof_internal_enter nesting on the calling thread. */
int fake_collect_depth(void);
/* Calls of hprof_snapshot_take so far. */
unsigned fake_collect_takes(void);

#define FAKE_MAX_FRAMES 4

struct fake_stack {
    int depth;
    uintptr_t pc[FAKE_MAX_FRAMES];
    const char *func[FAKE_MAX_FRAMES]; /* the outermost function at each PC */
    int line[FAKE_MAX_FRAMES];         /* the line executing in it */
    /* For an inlined leaf: the inlined function and its line (pc[0] then has two frames). */
    const char *inline_func;
    int inline_line;
};

/* A: fake_store_put <- fake_handle_request <- fake_main_loop.
 * B: fake_cache_fill <- fake_handle_request (another call) <- fake_main_loop (same PC as A).
 * C: fake_inline_alloc inlined into fake_inline_caller <- fake_inline_root. */
void fake_sites_collect(struct fake_stack *a, struct fake_stack *b, struct fake_stack *c);

/* A snapshot of the three stacks plus variants (bucket order fixed): see fake_sites.c. */
void fake_sites_snapshot(struct hprof_snapshot *out, struct hprof_bucket buckets[6],
                         const struct fake_stack *a, const struct fake_stack *b,
                         const struct fake_stack *c);

#endif
