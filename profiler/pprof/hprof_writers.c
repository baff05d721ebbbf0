/*
 * hprof_writers: the CPU and threads profiles, each a short writer over the generic pprof
 * builder (hprof_pprof.c), from the data their engines collected (collect/hprof_cpu.c,
 * collect/hprof_threads.c). Nothing is decoded: each profile is encoded and gzip'd once.
 *
 *   CPU      Go's CPU profile (runtime/pprof's profileBuilder): sample types samples/count and
 *            cpu/nanoseconds, period_type cpu/nanoseconds, period = 1e9 / hz, one sample per
 *            distinct stack, time_nanos at start and duration_nanos; dropped samples noted in
 *            a comment.
 *   threads  sample type and period type threads/count, period 1 (Go's goroutine profile uses
 *            goroutine/count), one sample per distinct (stack, name) with a string label
 *            thread=NAME; threads without a stack listed in the comments.
 *
 * All allocations are inside hprof_internal_enter/exit.
 */
#include "hprof_writers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hprof_cpu_encode(const struct hprof_cpu_profile *cpu, const struct hprof_maps *maps,
                     int symbolize, uint8_t **gz, size_t *len)
{
    struct hprof_pb *b = hprof_pb_new(maps, symbolize);
    if (b == NULL)
        return -1;
    /* Go's order: sample types first, then the period type (the same strings). */
    hprof_pb_sample_type(b, "samples", "count");
    hprof_pb_sample_type(b, "cpu", "nanoseconds");
    hprof_pb_period(b, "cpu", "nanoseconds", cpu->period_ns);
    hprof_pb_times(b, cpu->time_ns, cpu->duration_ns);
    if (cpu->dropped > 0) {
        char comment[128];
        snprintf(comment, sizeof(comment), "%llu samples dropped: the sample ring was full",
                 (unsigned long long)cpu->dropped);
        hprof_pb_comment(b, comment);
    }
    for (size_t i = 0; i < cpu->n; i++) {
        const struct hprof_cpu_stack *s = &cpu->stacks[i];
        int64_t values[2] = {(int64_t)s->count, (int64_t)s->count * cpu->period_ns};
        if (hprof_pb_add(b, &cpu->pool[s->off], (int)s->depth, values, NULL, 0) != 0)
            break; /* finish reports it */
    }
    return hprof_pb_finish(b, gz, len);
}

int hprof_cpu_stop(uint8_t **gz, size_t *len)
{
    if (gz == NULL)
        return hprof_cpu_stop_profile(NULL);
    struct hprof_cpu_profile cpu;
    if (hprof_cpu_stop_profile(&cpu) != 0)
        return -1;
    int rc = hprof_cpu_encode(&cpu, NULL, 1, gz, len);
    int saved = errno;
    hprof_cpu_profile_release(&cpu);
    errno = saved;
    return rc;
}

void hprof_cpu_free(uint8_t *gz)
{
    hprof_output_free(gz);
}

int hprof_threads_encode(const struct hprof_threads *t, uint8_t **gz, size_t *len)
{
    return hprof_threads_encode_with(t, NULL, 1, gz, len);
}

int hprof_threads_encode_with(const struct hprof_threads *t, const struct hprof_maps *maps,
                              int symbolize, uint8_t **gz, size_t *len)
{
    hprof_internal_enter();
    size_t n_groups = 0;
    struct hprof_thread_group *groups = hprof_threads_group(t, &n_groups);
    hprof_internal_exit();
    struct hprof_pb *b = groups != NULL ? hprof_pb_new(maps, symbolize) : NULL;
    if (b == NULL) {
        hprof_output_free(groups);
        errno = ENOMEM;
        return -1;
    }
    hprof_pb_sample_type(b, "threads", "count");
    hprof_pb_period(b, "threads", "count", 1);
    hprof_pb_times(b, t->time_ns, 0);
    for (size_t i = 0; i < n_groups; i++) {
        const struct hprof_thread_stack *s = groups[i].first;
        int64_t count = groups[i].count;
        struct hprof_pb_label label = {"thread", s->name, 0, NULL};
        if (hprof_pb_add(b, s->pcs, s->depth, &count, &label, 1) != 0)
            break;
    }
    for (size_t i = 0; i < t->n; i++) {
        if (t->v[i].status == HPROF_THREAD_OK)
            continue;
        char line[160];
        snprintf(line, sizeof(line), "thread %d \"%s\": %s", (int)t->v[i].tid, t->v[i].name,
                 hprof_thread_status_text(t->v[i].status));
        hprof_pb_comment(b, line);
    }
    if (t->n_listed > t->n) {
        char more[96];
        snprintf(more, sizeof(more), "%zu more threads not captured (at most %d)",
                 t->n_listed - t->n, HPROF_THREADS_MAX);
        hprof_pb_comment(b, more);
    }
    int rc = hprof_pb_finish(b, gz, len);
    int saved = errno;
    hprof_output_free(groups);
    errno = saved;
    return rc;
}
