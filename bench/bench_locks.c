/*
 * bench_locks: nanoseconds per uncontended pthread_mutex_lock + pthread_mutex_unlock pair, the
 * cost the lock interposer adds to every threaded program that preloads libheapprof.so.
 *
 *   bench_locks [--iters N] [--reps N] [--batches N] [--batch N]
 *
 * One thread locks and unlocks one default mutex --iters times; a run's figure is wall time /
 * iters. The run is repeated --reps times and the median, min and max are printed, so that a
 * busy machine shows as spread. The same binary is run plain (glibc's own functions), with
 * LD_PRELOAD=libheapprof.so (profiles off: the interposer's fast path), and preloaded with
 * HEAPPROF_MUTEX_FRACTION / HEAPPROF_BLOCK_RATE set (profiles on). scripts/bench.sh contention
 * alternates them and reports ratios; under valgrind --tool=callgrind the instruction counts per
 * pair are the figure that does not depend on the machine's load.
 *
 * On a machine shared with other work, wall time across processes drifts by more than the
 * effect (other processes, frequency). So a second figure compares in one process: glibc's own
 * functions (looked up in libc.so.6 itself, past any interposer) and the program's
 * pthread_mutex_lock/unlock (the interposer's when preloaded), in --batches alternating batches
 * of --batch pairs each. Adjacent batches see the same machine; the median of their ratios, and
 * the ratio of the two fastest-decile batch times (the batches nobody preempted), are the
 * interposer's cost. Run plain, both sides are glibc's: the ratio is the method's own error. A
 * third side, a function here that only jumps on to glibc's, is the floor of any interposer
 * that forwards (forwarder_ratio).
 *
 * The calls go through a volatile function pointer loaded once per iteration, so the compiler
 * cannot merge or elide them, exactly as a program calling through the PLT would bind them.
 * Output, two lines:
 *   bench_locks iters=N reps=N ns_per_pair median=.. min=.. max=..
 *   bench_locks_vs_libc threads=T batches=N batch=N libc_ns=.. ns=.. ratio_median=..
 *       ratio_fast=.. forwarder_ratio=..
 * once single-threaded (T=1) and once with a second, idle thread (T=2: glibc's multi-threaded
 * paths, every threaded program's). libc_ns and ns: the median batch's ns per pair;
 * ratio_fast: fastest-decile ns / glibc's.
 */
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lc_util.h"

#define MAX_REPS    101
#define MAX_BATCHES 100000

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

typedef int (*mutex_fn)(pthread_mutex_t *);
static mutex_fn volatile lock_fn = pthread_mutex_lock;
static mutex_fn volatile unlock_fn = pthread_mutex_unlock;
static mutex_fn volatile libc_lock_fn, libc_unlock_fn;

/* ns per pair of `iters` pairs through the two pointers. noinline: both sides run the very same
 * loop code. */
__attribute__((noinline)) static double pairs(mutex_fn volatile *lock, mutex_fn volatile *unlock,
                                              long iters)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    int64_t t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        (*lock)(&m);
        (*unlock)(&m);
    }
    return (double)(now_ns() - t0) / (double)iters;
}

static double run(long iters)
{
    return pairs(&lock_fn, &unlock_fn, iters);
}

/* glibc's own pthread_mutex_lock/unlock: libc.so.6's definitions, not the first in the search
 * order (which is the interposer's when it is preloaded). */
static int find_libc(void)
{
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (libc == NULL)
        return -1;
    libc_lock_fn = (mutex_fn)dlsym(libc, "pthread_mutex_lock");
    libc_unlock_fn = (mutex_fn)dlsym(libc, "pthread_mutex_unlock");
    return libc_lock_fn != NULL && libc_unlock_fn != NULL ? 0 : -1;
}

static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;
static int idle_stop; /* under idle_lock */

static void *idle_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&idle_lock);
    while (!idle_stop)
        pthread_cond_wait(&idle_cond, &idle_lock);
    pthread_mutex_unlock(&idle_lock);
    return NULL;
}

static double percentile(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
    return v[(int)(q * (n - 1))];
}

/* The least any interposer that forwards can cost: a function of its own that jumps on to
 * glibc's through a pointer (what a preloaded pthread_mutex_lock that only forwards is). */
__attribute__((noinline)) static int forward_lock(pthread_mutex_t *m)
{
    return libc_lock_fn(m);
}

__attribute__((noinline)) static int forward_unlock(pthread_mutex_t *m)
{
    return libc_unlock_fn(m);
}

static mutex_fn volatile fwd_lock_fn = forward_lock, fwd_unlock_fn = forward_unlock;

static void vs_libc(int batches, long batch, int threads)
{
    static double ours[MAX_BATCHES], libc[MAX_BATCHES], fwd[MAX_BATCHES], ratio[MAX_BATCHES],
        ratio_fwd[MAX_BATCHES];
    for (int b = 0; b < batches; b++) {
        /* rotate which side goes first, so none always follows another */
        for (int k = 0; k < 3; k++)
            switch ((b + k) % 3) {
            case 0:
                libc[b] = pairs(&libc_lock_fn, &libc_unlock_fn, batch);
                break;
            case 1:
                ours[b] = pairs(&lock_fn, &unlock_fn, batch);
                break;
            default:
                fwd[b] = pairs(&fwd_lock_fn, &fwd_unlock_fn, batch);
                break;
            }
        ratio[b] = ours[b] / libc[b];
        ratio_fwd[b] = fwd[b] / libc[b];
    }
    double ratio_median = percentile(ratio, batches, 0.5);
    double fwd_median = percentile(ratio_fwd, batches, 0.5);
    double libc_fast = percentile(libc, batches, 0.1), ours_fast = percentile(ours, batches, 0.1);
    double libc_median = percentile(libc, batches, 0.5),
           ours_median = percentile(ours, batches, 0.5);
    printf("bench_locks_vs_libc threads=%d batches=%d batch=%ld libc_ns=%.2f ns=%.2f "
           "ratio_median=%.4f ratio_fast=%.4f forwarder_ratio=%.4f\n",
           threads, batches, batch, libc_median, ours_median, ratio_median, ours_fast / libc_fast,
           fwd_median);
}

int main(int argc, char **argv)
{
    int64_t iters = 20000000, reps = 7, batches = 2000, batch = 2000;
    for (int i = 1; i < argc; i++) {
        int64_t *v = strcmp(argv[i], "--iters") == 0     ? &iters
                     : strcmp(argv[i], "--reps") == 0    ? &reps
                     : strcmp(argv[i], "--batches") == 0 ? &batches
                     : strcmp(argv[i], "--batch") == 0   ? &batch
                                                         : NULL;
        int64_t lo = v == &batches ? 0 : 1;
        int64_t hi = v == &reps ? MAX_REPS : v == &batches ? MAX_BATCHES : INT64_C(1) << 40;
        if (v == NULL || i + 1 >= argc || lc_parse_i64(argv[++i], lo, hi, v) != 0) {
            fprintf(stderr,
                    "usage: bench_locks [--iters N] [--reps 1..%d] [--batches 0..%d] "
                    "[--batch N]\n",
                    MAX_REPS, MAX_BATCHES);
            return 2;
        }
    }
    if (batches > 0 && find_libc() != 0) {
        fprintf(stderr, "bench_locks: cannot find libc.so.6's pthread_mutex_lock (dlsym)\n");
        return 1;
    }
    double ns[MAX_REPS];
    for (int r = 0; r < reps; r++)
        ns[r] = run((long)iters);
    qsort(ns, (size_t)reps, sizeof(ns[0]), cmp_double);
    printf("bench_locks iters=%" PRId64 " reps=%" PRId64 " ns_per_pair median=%.2f min=%.2f "
           "max=%.2f\n",
           iters, reps, ns[reps / 2], ns[0], ns[reps - 1]);
    if (batches > 0) {
        vs_libc((int)batches, (long)batch, 1);
        /* A second thread, idle: from now on glibc takes its multi-threaded paths (a process
         * that has ever had two threads uses atomic instructions; a single-threaded one may
         * lock a private mutex with a plain store), which is every threaded program's case. */
        pthread_t idle;
        if (pthread_create(&idle, NULL, idle_thread, NULL) != 0) {
            fprintf(stderr, "bench_locks: pthread_create failed\n");
            return 1;
        }
        vs_libc((int)batches, (long)batch, 2);
        pthread_mutex_lock(&idle_lock);
        idle_stop = 1;
        pthread_cond_signal(&idle_cond);
        pthread_mutex_unlock(&idle_lock);
        pthread_join(idle, NULL);
    }
    return 0;
}
