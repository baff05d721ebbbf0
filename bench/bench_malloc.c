/*
 * bench_malloc: nanoseconds per malloc+free pair, the cost a heap profiler adds to every
 * allocation.
 *
 * Each of --threads threads allocates --size bytes and frees them at once, --iters times, after
 * descending --depth extra frames (profilers that unwind pay per frame, so the stack depth is a
 * parameter, not an accident of the harness). The threads start together on a barrier; a run's
 * figure is wall time / iters, i.e. the time one thread takes per pair while all run. The run is
 * repeated --reps times and the median is printed, with min and max, so that a noisy machine
 * (others building on the same two cores) shows up as spread rather than as a wrong number.
 *
 * The same binary measures every allocator: plain glibc, LD_PRELOAD=libheapprof.so, heaptrack,
 * jemalloc or tcmalloc preloaded. bench_malloc_linked is this program linked with the static
 * libheapprof, as leaky and fixed are. Output, one line:
 *   bench_malloc threads=1 size=1024 depth=0 iters=2000000 reps=5 ns_per_pair median=.. min=..
 * max=..
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lc_util.h"

#define BENCH_MAX_THREADS 64
#define BENCH_MAX_REPS    101

struct bench_cfg {
    int threads;
    size_t size;
    int depth;
    long iters;
    int reps;
};

struct bench_run {
    const struct bench_cfg *cfg;
    pthread_barrier_t *start;
};

static int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static __attribute__((noinline)) void bench_loop(size_t size, long iters)
{
    for (long i = 0; i < iters; i++) {
        void *p = malloc(size);
        /* Keep the pair: the compiler may otherwise delete a malloc whose result is unused. */
        __asm__ volatile("" : : "r"(p) : "memory");
        free(p);
    }
}

static __attribute__((noinline)) void bench_descend(int depth, size_t size, long iters)
{
    if (depth > 0)
        bench_descend(depth - 1, size, iters);
    else
        bench_loop(size, iters);
    __asm__ volatile("" ::: "memory"); /* not a tail call: each level keeps its frame */
}

static void *bench_thread(void *arg)
{
    struct bench_run *run = arg;
    bench_descend(0, run->cfg->size, 1000); /* warm the thread cache and the profiler's state */
    pthread_barrier_wait(run->start);
    bench_descend(run->cfg->depth, run->cfg->size, run->cfg->iters);
    return NULL;
}

static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int bench_parse(const char *s, long lo, long hi, long *out)
{
    int64_t v;
    if (lc_parse_i64(s, lo, hi, &v) != 0)
        return -1;
    *out = (long)v;
    return 0;
}

static int bench_usage(void)
{
    fprintf(stderr, "usage: bench_malloc [--threads N] [--size BYTES] [--depth FRAMES] "
                    "[--iters N] [--reps N]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct bench_cfg cfg = {.threads = 1, .size = 1024, .depth = 0, .iters = 2000000, .reps = 5};
    for (int i = 1; i < argc; i++) {
        long v;
        if (i + 1 >= argc)
            return bench_usage();
        if (strcmp(argv[i], "--threads") == 0 &&
            bench_parse(argv[i + 1], 1, BENCH_MAX_THREADS, &v) == 0)
            cfg.threads = (int)v;
        else if (strcmp(argv[i], "--size") == 0 && bench_parse(argv[i + 1], 0, 1L << 30, &v) == 0)
            cfg.size = (size_t)v;
        else if (strcmp(argv[i], "--depth") == 0 && bench_parse(argv[i + 1], 0, 200, &v) == 0)
            cfg.depth = (int)v;
        else if (strcmp(argv[i], "--iters") == 0 && bench_parse(argv[i + 1], 1, 1L << 40, &v) == 0)
            cfg.iters = v;
        else if (strcmp(argv[i], "--reps") == 0 &&
                 bench_parse(argv[i + 1], 1, BENCH_MAX_REPS, &v) == 0)
            cfg.reps = (int)v;
        else
            return bench_usage();
        i++;
    }

    double ns[BENCH_MAX_REPS];
    for (int r = 0; r < cfg.reps; r++) {
        pthread_t tids[BENCH_MAX_THREADS];
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)cfg.threads + 1);
        struct bench_run run = {.cfg = &cfg, .start = &start};
        for (int t = 0; t < cfg.threads; t++) {
            if (pthread_create(&tids[t], NULL, bench_thread, &run) != 0) {
                fprintf(stderr, "bench_malloc: pthread_create failed\n");
                return 1;
            }
        }
        pthread_barrier_wait(&start);
        int64_t t0 = bench_now_ns();
        for (int t = 0; t < cfg.threads; t++)
            pthread_join(tids[t], NULL);
        ns[r] = (double)(bench_now_ns() - t0) / (double)cfg.iters;
        pthread_barrier_destroy(&start);
    }
    qsort(ns, (size_t)cfg.reps, sizeof(ns[0]), bench_cmp);
    printf("bench_malloc threads=%d size=%zu depth=%d iters=%ld reps=%d ns_per_pair median=%.2f "
           "min=%.2f max=%.2f\n",
           cfg.threads, cfg.size, cfg.depth, cfg.iters, cfg.reps, ns[cfg.reps / 2], ns[0],
           ns[cfg.reps - 1]);
    return 0;
}
