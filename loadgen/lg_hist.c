/*
 * lg_hist: see lg_hist.h for the layout. Index arithmetic: for v >= 2048 with top bit e
 * (11 <= e < 40), the octave is b = e - 10 >= 1 and the sub-bucket is v >> b, which lies in
 * [1024, 2047]; the index is 2048 + (b - 1) * 1024 + (sub - 1024). Its values span
 * [sub << b, ((sub + 1) << b) - 1], a width of 2^b <= v / 1024.
 */
#include "lg_hist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct lg_hist *lg_hist_new(void)
{
    struct lg_hist *h = malloc(sizeof(*h));
    if (h == NULL)
        return NULL;
    memset(h->counts, 0, sizeof(h->counts));
    h->lo = 1; /* lo > hi: empty; reset below sets the invariant fields */
    h->hi = 0;
    lg_hist_reset(h);
    return h;
}

void lg_hist_free(struct lg_hist *h)
{
    free(h);
}

void lg_hist_reset(struct lg_hist *h)
{
    if (h->lo <= h->hi)
        memset(&h->counts[h->lo], 0, (size_t)(h->hi - h->lo + 1) * sizeof(h->counts[0]));
    h->total = 0;
    h->min_ns = UINT64_MAX;
    h->max_ns = 0;
    h->sum_ns = 0;
    h->lo = LG_HIST_COUNTS;
    h->hi = 0;
}

uint32_t lg_hist_index(uint64_t v)
{
    if (v < LG_HIST_SUB_COUNT)
        return (uint32_t)v;
    if (v > LG_HIST_MAX_NS)
        v = LG_HIST_MAX_NS;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* top bit, >= 11 */
    unsigned b = e - (LG_HIST_SUB_BITS - 1);
    uint64_t sub = v >> b;
    return LG_HIST_SUB_COUNT + (b - 1) * LG_HIST_HALF + (uint32_t)(sub - LG_HIST_HALF);
}

uint64_t lg_hist_highest_equivalent(uint32_t index)
{
    if (index < LG_HIST_SUB_COUNT)
        return index;
    uint32_t rel = index - LG_HIST_SUB_COUNT;
    unsigned b = rel / LG_HIST_HALF + 1;
    uint64_t sub = rel % LG_HIST_HALF + LG_HIST_HALF;
    return ((sub + 1) << b) - 1;
}

void lg_hist_merge(struct lg_hist *dst, const struct lg_hist *src)
{
    if (src->total == 0)
        return;
    for (uint32_t i = src->lo; i <= src->hi; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->sum_ns += src->sum_ns;
    if (src->min_ns < dst->min_ns)
        dst->min_ns = src->min_ns;
    if (src->max_ns > dst->max_ns)
        dst->max_ns = src->max_ns;
    if (src->lo < dst->lo)
        dst->lo = src->lo;
    if (src->hi > dst->hi)
        dst->hi = src->hi;
}

uint64_t lg_hist_percentile(const struct lg_hist *h, double q)
{
    if (h->total == 0)
        return 0;
    if (q >= 100.0)
        return h->max_ns;
    uint64_t rank = (uint64_t)ceil(q / 100.0 * (double)h->total);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (uint32_t i = h->lo; i <= h->hi; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = lg_hist_highest_equivalent(i);
            return v < h->max_ns ? v : h->max_ns;
        }
    }
    return h->max_ns;
}

double lg_hist_mean(const struct lg_hist *h)
{
    return h->total ? h->sum_ns / (double)h->total : 0.0;
}
