/*
 * hprof_sampler: when to sample, and how much a sample stands for.
 *
 * Model: the bytes a thread allocates form a line, and sample points fall on it as a Poisson
 * process of mean spacing `rate` bytes (Go's MemProfileRate, tcmalloc's and jemalloc's
 * sampling). An allocation of n bytes is sampled when at least one point falls inside it:
 * probability p(n) = 1 - exp(-n / rate). The malloc layer implements this with a countdown: it
 * draws the distance D to the next point, keeps ceil(D) in thread-local storage, subtracts each
 * allocation's size and samples the allocation that reaches the point. Because the process is
 * memoryless the next distance is drawn afresh from the end of a sampled allocation; and
 * because sizes are whole bytes, n >= ceil(D) <=> n >= D, so p(n) is exact, not approximate.
 *
 * Each sample is unbiased by 1 / p(n) at record time (Horvitz-Thompson): the sum over sampled
 * allocations of 1/p(n) estimates the number of allocations, of n/p(n) their bytes, without
 * bias for any mix of sizes. Averaging sizes per stack and unbiasing later would be biased.
 *
 * Everything here is a pure function of its arguments: no locks, no allocation, safe in a
 * signal handler, and unit-testable. The generator is splitmix64 (Steele et al.): 64 bits of
 * state, one add and three xor-shift-multiplies per draw, good enough for sampling and cheap
 * enough that its cost is invisible next to the unwinding a sample triggers.
 */
#include <math.h>
#include <stdint.h>

#include "hprof_collect.h"
#include "hprof_hash.h"

#define HPROF_GOLDEN 0x9e3779b97f4a7c15ULL /* 2^64 / phi: splitmix64's increment */

#define hprof_mix64 hprof_hash_mix64 /* the output function of splitmix64 */

void hprof_rng_seed(uint64_t *state, uint64_t seed, uint64_t ordinal)
{
    /* Two mixes so that seeds s and s+1, or threads k and k+1, start far apart. */
    *state = hprof_mix64(hprof_mix64(seed) ^ (ordinal * HPROF_GOLDEN + 1));
}

uint64_t hprof_rng_next(uint64_t *state)
{
    *state += HPROF_GOLDEN;
    return hprof_mix64(*state);
}

size_t hprof_sample_distance(uint64_t *state, uint64_t rate)
{
    if (rate == 0)
        return SIZE_MAX;
    if (rate == 1)
        return 0;
    /* u uniform in (0, 1]: the top 53 bits plus one, so log(u) is finite (>= -36.7). */
    double u = (double)((hprof_rng_next(state) >> 11) + 1) * 0x1.0p-53;
    double d = ceil(-log(u) * (double)rate);
    if (d < 1.0)
        return 1;
    if (d >= 0x1.0p63) /* only for absurd rates: never overflow the countdown */
        return (size_t)1 << 63;
    return (size_t)d;
}

double hprof_sample_weight(uint64_t size, uint64_t rate)
{
    if (rate <= 1)
        return 1.0;
    /* -expm1(-x) = 1 - exp(-x) without cancellation for small size/rate. */
    return 1.0 / -expm1(-(double)size / (double)rate);
}
