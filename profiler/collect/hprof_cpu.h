/*
 * hprof_cpu: a CPU profiler for the whole process, with Go-compatible pprof output (the
 * profile that Go's runtime/pprof.StartCPUProfile writes and /debug/pprof/profile serves).
 *
 * While a profile runs, every thread of the process gets SIGPROF after each 1/hz of its own CPU
 * time (threads started meanwhile through pthread_create from their first instruction, others
 * within 20 ms); each signal records the stack of the thread it interrupted, weighted by the
 * periods it stands for (timer overruns on a busy machine). Stopping hands over the stacks
 * aggregated with their counts; the pprof layer encodes them (pprof/hprof_writers.c) and web/
 * serves them.
 *
 * One profile at a time per process. Functions return 0 / -1 (errno set); none of them prints.
 */
#ifndef HPROF_CPU_H
#define HPROF_CPU_H

#include <stddef.h>
#include <stdint.h>

#define HPROF_CPU_DEFAULT_HZ 100 /* samples per CPU second, as Go's runtime/pprof */
/* Highest hz. CPU-time timers expire at most once per kernel tick (CONFIG_HZ: 250 on Debian's
 * kernels); asking for more would get the tick's rate while the profile's period claimed hz,
 * understating cpu/nanoseconds. */
#define HPROF_CPU_MAX_HZ 250
/* /debug/pprof/profile without ?seconds, as Go; the longest accepted is the debug surface's
 * HPROF_HTTP_MAX_SECONDS (hprof_web.h). */
#define HPROF_CPU_DEFAULT_SECONDS 30

struct hprof_cpu_stats {
    int running;      /* a profile is being taken */
    int hz;           /* its rate (0 when none ran yet) */
    uint64_t samples; /* signals recorded in the current (or last) profile */
    uint64_t dropped; /* signals lost because the sample ring was full */
    /* Sum over recorded samples of weight^2 (a sample's weight is the periods it stands for):
     * samples^2 / weight_sq is the effective number of independent samples, which the error
     * of a function's share of the profile depends on (fewer when signals carry overruns). */
    uint64_t weight_sq;
    uint64_t profiles; /* profiles completed since the process started */
};

/* Start profiling at hz samples per CPU second (1..HPROF_CPU_MAX_HZ). -1 with errno EINVAL for
 * a bad hz, EBUSY when a profile is already running or the program uses SIGPROF / ITIMER_PROF
 * itself, or the error of a failed system call. */
int hprof_cpu_start(int hz);

/* A stopped profile's data: distinct stacks in first-seen order, each with its sample count;
 * its PCs are pool[off .. off + depth), leaf first. */
struct hprof_cpu_stack {
    uint64_t hash, count;
    uint32_t depth, off;
};
struct hprof_cpu_profile {
    int64_t time_ns;     /* CLOCK_REALTIME at start */
    int64_t duration_ns; /* CLOCK_MONOTONIC from start to stop */
    int64_t period_ns;   /* 1e9 / hz */
    uint64_t dropped;    /* samples lost (ring full, or no memory to aggregate them) */
    size_t n;
    struct hprof_cpu_stack *stacks;
    uintptr_t *pool;
};

/* Stop the running profile; with out != NULL, hand its data over (release it with
 * hprof_cpu_profile_release), with NULL discard it. -1 with errno EINVAL when no profile runs
 * (profiling is stopped either way). Encoding is the pprof layer's (pprof/hprof_writers.h:
 * hprof_cpu_stop stops and encodes). */
int hprof_cpu_stop_profile(struct hprof_cpu_profile *out);
void hprof_cpu_profile_release(struct hprof_cpu_profile *profile);

void hprof_cpu_get_stats(struct hprof_cpu_stats *out);

#endif
