/*
 * bench_locks: nanoseconds per uncontended pthread_mutex_lock + pthread_mutex_unlock pair, the
 * cost the lock interposer adds to every threaded program that preloads libheapprof.so.
 *
 *   bench_locks [--iters N] [--reps N]
 *
 * One thread locks and unlocks one default mutex --iters times; a run's figure is wall time /
 * iters. The run is repeated --reps times and the median, min and max are printed, so that a
 * busy machine shows as spread. The same binary is run plain (glibc's own functions), with
 * LD_PRELOAD=libheapprof.so (profiles off: the interposer's fast path), and preloaded with
 * HEAPPROF_MUTEX_FRACTION / HEAPPROF_BLOCK_RATE set (profiles on). scripts/bench.sh contention
 * alternates them and reports ratios; under valgrind --tool=callgrind the instruction counts per
 * pair are the figure that does not depend on the machine's load.
 *
 * The calls go through a volatile function pointer loaded once per iteration, so the compiler
 * cannot merge or elide them, exactly as a program calling through the PLT would bind them.
 * Output, one line:
 *   bench_locks iters=N reps=N ns_per_pair median=.. min=.. max=..
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_REPS 101

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int (*volatile lock_fn)(pthread_mutex_t *) = pthread_mutex_lock;
static int (*volatile unlock_fn)(pthread_mutex_t *) = pthread_mutex_unlock;

static double run(long iters)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    int64_t t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        lock_fn(&m);
        unlock_fn(&m);
    }
    return (double)(now_ns() - t0) / (double)iters;
}

int main(int argc, char **argv)
{
    long iters = 20000000;
    int reps = 7;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            iters = atol(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_locks [--iters N] [--reps N]\n");
            return 2;
        }
    }
    if (iters < 1 || reps < 1 || reps > MAX_REPS) {
        fprintf(stderr, "bench_locks: --iters >= 1, --reps 1..%d\n", MAX_REPS);
        return 2;
    }
    double ns[MAX_REPS];
    for (int r = 0; r < reps; r++)
        ns[r] = run(iters);
    qsort(ns, (size_t)reps, sizeof(ns[0]), cmp_double);
    printf("bench_locks iters=%ld reps=%d ns_per_pair median=%.2f min=%.2f max=%.2f\n", iters, reps,
           ns[reps / 2], ns[0], ns[reps - 1]);
    return 0;
}
