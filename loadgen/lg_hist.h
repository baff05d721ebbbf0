/*
 * lg_hist: a log-linear latency histogram with 3 significant decimal digits (HdrHistogram's
 * layout, written small). Values are nanoseconds. Values below LG_HIST_SUB_COUNT (2048 ns) are
 * counted exactly; above that each power of two is split into LG_HIST_HALF (1024) equal
 * sub-buckets, so a recorded value and the bucket's upper bound differ by less than 1/1024 of
 * the value (< 0.1%, i.e. 3 significant digits). Values above LG_HIST_MAX_NS are clamped into the
 * top bucket (max keeps the exact value).
 *
 * A histogram is plain memory with no lock: one thread records into it; lg_load guards the
 * per-second ones it shares with the main thread. `lo`/`hi` bound the indices ever touched since
 * the last reset so that merging and resetting cost what was used, not the whole array.
 */
#ifndef LG_HIST_H
#define LG_HIST_H

#include <stdint.h>

#define LG_HIST_SUB_BITS  11
#define LG_HIST_SUB_COUNT (1u << LG_HIST_SUB_BITS) /* 2048: exact range, ns */
#define LG_HIST_HALF      (LG_HIST_SUB_COUNT / 2)  /* 1024 sub-buckets per octave */
#define LG_HIST_MAX_BITS  40                       /* 2^40 ns ~ 18 minutes */
#define LG_HIST_MAX_NS    ((UINT64_C(1) << LG_HIST_MAX_BITS) - 1)
#define LG_HIST_COUNTS    (LG_HIST_SUB_COUNT + (LG_HIST_MAX_BITS - LG_HIST_SUB_BITS) * LG_HIST_HALF)

struct lg_hist {
    uint64_t total;  /* values recorded */
    uint64_t min_ns; /* exact smallest value (UINT64_MAX when empty) */
    uint64_t max_ns; /* exact largest value (0 when empty) */
    double sum_ns;   /* for the mean */
    uint32_t lo, hi; /* touched index range [lo, hi], lo > hi when empty */
    uint64_t counts[LG_HIST_COUNTS];
};

struct lg_hist *lg_hist_new(void);
void lg_hist_free(struct lg_hist *h);
void lg_hist_reset(struct lg_hist *h);

/* Bucket index of a value, and the largest value that maps to an index (exposed for tests). */
uint32_t lg_hist_index(uint64_t value_ns);
uint64_t lg_hist_highest_equivalent(uint32_t index);

static inline void lg_hist_record(struct lg_hist *h, uint64_t value_ns)
{
    uint32_t i = lg_hist_index(value_ns);
    h->counts[i]++;
    h->total++;
    h->sum_ns += (double)value_ns;
    if (value_ns < h->min_ns)
        h->min_ns = value_ns;
    if (value_ns > h->max_ns)
        h->max_ns = value_ns;
    if (i < h->lo)
        h->lo = i;
    if (i > h->hi)
        h->hi = i;
}

/* dst += src. */
void lg_hist_merge(struct lg_hist *dst, const struct lg_hist *src);

/* The value at percentile q (0 < q <= 100) by nearest rank: the smallest recorded value v such
 * that at least q% of values are <= v, reported as its bucket's upper bound (capped at max), so
 * it is never below the true value and at most 0.1% above it. 0 when empty. */
uint64_t lg_hist_percentile(const struct lg_hist *h, double q);

double lg_hist_mean(const struct lg_hist *h);

#endif
