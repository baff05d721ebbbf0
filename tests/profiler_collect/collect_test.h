/*
 * collect_test: helpers shared by the collection half's tests.
 *
 * Per-function truth: a test allocates in "marker" functions (noipa: never inlined, cloned or
 * tail-called away) and sums the buckets whose innermost frame falls in a marker. A frame is
 * attributed with dladdr(), so test programs are linked with ENABLE_EXPORTS (-rdynamic) and
 * markers are external. Sums are taken as the difference of two snapshots, so what the test
 * harness itself allocated before does not matter.
 */
#ifndef COLLECT_TEST_H
#define COLLECT_TEST_H

#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hprof_collect.h"

#define CT_MARKER __attribute__((noipa))

struct ct_sums {
    double alloc_objects, alloc_bytes, inuse_objects, inuse_bytes;
    int buckets;
};

static inline int ct_pc_in(const void *fn, uintptr_t pc)
{
    Dl_info info;
    return dladdr((void *)pc, &info) != 0 && info.dli_saddr == fn;
}

/* Sum of the buckets of `s` whose innermost frame is in fn. */
static inline struct ct_sums ct_sum_fn(const struct hprof_snapshot *s, const void *fn)
{
    struct ct_sums sum = {0, 0, 0, 0, 0};
    for (size_t i = 0; i < s->n_buckets; i++) {
        const struct hprof_bucket *b = &s->buckets[i];
        if (b->depth < 1 || !ct_pc_in(fn, b->pcs[0]))
            continue;
        sum.alloc_objects += b->alloc_objects;
        sum.alloc_bytes += b->alloc_bytes;
        sum.inuse_objects += b->inuse_objects;
        sum.inuse_bytes += b->inuse_bytes;
        sum.buckets++;
    }
    return sum;
}

/* after - before, for one function. */
static inline struct ct_sums ct_delta(const struct hprof_snapshot *before,
                                      const struct hprof_snapshot *after, const void *fn)
{
    struct ct_sums a = ct_sum_fn(after, fn), b = ct_sum_fn(before, fn);
    struct ct_sums d = {a.alloc_objects - b.alloc_objects, a.alloc_bytes - b.alloc_bytes,
                        a.inuse_objects - b.inuse_objects, a.inuse_bytes - b.inuse_bytes,
                        a.buckets - b.buckets};
    return d;
}

/* Exact integer truth for one function, as the profile should give it at rate 1. */
struct ct_truth {
    int64_t alloc_objects, alloc_bytes, inuse_objects, inuse_bytes;
};

static inline void ct_truth_alloc(struct ct_truth *t, size_t n)
{
    t->alloc_objects++;
    t->alloc_bytes += (int64_t)n;
    t->inuse_objects++;
    t->inuse_bytes += (int64_t)n;
}

static inline void ct_truth_free(struct ct_truth *t, size_t n)
{
    t->inuse_objects--;
    t->inuse_bytes -= (int64_t)n;
}

#endif
