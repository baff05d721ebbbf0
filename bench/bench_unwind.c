/*
 * bench_unwind: nanoseconds per stack walk of the CPU and threads profiles' unwinder
 * (unw_init_local + unw_step, as hprof_unwind_signal walks from a handler), with libunwind's
 * shared register-state cache off (the profiler's policy, hprof_unwind_init) and on (libunwind's
 * default, which deadlocked a handler against the loader's lock: see hprof_unwind.c).
 *
 *   bench_unwind [--depth N] [--walks N] [--rounds N]
 *
 * The walk starts --depth frames down a recursion of this program's own functions and goes up
 * to main and libc: every frame is looked up in the loader's list when uncached. Each round
 * times --walks walks under each policy, alternating (the policy is switched between rounds,
 * single-threaded, where nothing else walks). Prints per policy the median ns per walk over the
 * rounds, and the median of the per-round ratios none / global.
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hprof_unwind.h"
#include "lc_util.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static volatile int frames_seen;

/* ns per walk of `walks` walks from `depth` frames down. */
__attribute__((noinline)) static double walk_from(int depth, long walks)
{
    if (depth > 0) {
        double ns = walk_from(depth - 1, walks);
        __asm__ volatile("" ::: "memory"); /* not a tail call: the frame stays */
        return ns;
    }
    uintptr_t pcs[HPROF_MAX_DEPTH];
    int64_t start = lc_monotonic_ns();
    for (long i = 0; i < walks; i++)
        frames_seen = hprof_unwind_here(pcs);
    return (double)(lc_monotonic_ns() - start) / (double)walks;
}

int main(int argc, char **argv)
{
    int depth = 16, rounds = 11;
    long walks = 20000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--depth") == 0)
            depth = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--walks") == 0)
            walks = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--rounds") == 0)
            rounds = atoi(argv[i + 1]);
        else
            break;
    }
    if (depth < 0 || depth > 1000 || walks < 1 || rounds < 1 || rounds > 1000 || argc % 2 == 0) {
        fprintf(stderr, "usage: bench_unwind [--depth N] [--walks N] [--rounds N]\n");
        return 2;
    }
    hprof_unwind_init(); /* the profiler's policy is set once; this bench switches it after */
    double none[1000], global[1000], ratio[1000];
    for (int r = 0; r < rounds; r++) {
        unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_GLOBAL);
        global[r] = walk_from(depth, walks);
        unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_NONE);
        none[r] = walk_from(depth, walks);
        ratio[r] = none[r] / global[r];
    }
    printf("bench_unwind depth=%d frames=%d walks=%ld rounds=%d ns_per_walk cache_none=%.0f "
           "cache_global=%.0f ratio_none_vs_global=%.2f\n",
           depth, frames_seen, walks, rounds, median(none, rounds), median(global, rounds),
           median(ratio, rounds));
    return 0;
}
