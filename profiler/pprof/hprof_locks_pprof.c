/*
 * hprof_locks_pprof: a mutex or block snapshot (hprof_locks.h) -> a gzip'd pprof profile over
 * the generic builder (hprof_pb_*), symbolized in-process like every other profile. Counts are
 * estimates (fractional for block samples of short waits) and are rounded to the nearest
 * integer, as Go rounds its scaled counts; delays are nanoseconds already (our clock's unit,
 * where Go converts cycles). A comment records the sampling in effect.
 */
#include "hprof_locks_pprof.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "hprof_output.h"

int hprof_locks_encode(const struct hprof_lock_snapshot *s, int64_t duration_ns, uint8_t **gz,
                       size_t *len)
{
    struct hprof_pb *b = hprof_pb_new(NULL, 1);
    if (b == NULL)
        return -1;
    /* Go's order: sample types first, then the period type (the same strings). */
    hprof_pb_sample_type(b, "contentions", "count");
    hprof_pb_sample_type(b, "delay", "nanoseconds");
    hprof_pb_period(b, "contentions", "count", 1);
    hprof_pb_times(b, s->time_ns, duration_ns);
    char comment[96];
    if (s->profile == HPROF_LOCK_MUTEX)
        snprintf(comment, sizeof(comment), "mutex profile fraction 1/%" PRIu64 "%s", s->period,
                 s->period ? "" : " (off)");
    else
        snprintf(comment, sizeof(comment), "block profile rate %" PRIu64 " ns%s", s->period,
                 s->period ? "" : " (off)");
    hprof_pb_comment(b, comment);
    for (size_t i = 0; i < s->n; i++) {
        const struct hprof_lock_record *r = &s->v[i];
        int64_t values[2] = {isfinite(r->count) ? (int64_t)llround(r->count) : 0, r->delay_ns};
        if (hprof_pb_add(b, r->pcs, r->depth, values, NULL, 0) != 0)
            break; /* finish reports it */
    }
    return hprof_pb_finish(b, gz, len);
}

int hprof_threadcreate_encode(const struct hprof_lock_snapshot *s, uint8_t **gz, size_t *len)
{
    struct hprof_pb *b = hprof_pb_new(NULL, 1);
    if (b == NULL)
        return -1;
    hprof_pb_sample_type(b, "threadcreate", "count");
    hprof_pb_period(b, "threadcreate", "count", 1);
    hprof_pb_times(b, s->time_ns, 0);
    for (size_t i = 0; i < s->n; i++) {
        const struct hprof_lock_record *r = &s->v[i];
        int64_t count = isfinite(r->count) ? (int64_t)llround(r->count) : 0;
        if (hprof_pb_add(b, r->pcs, r->depth, &count, NULL, 0) != 0)
            break;
    }
    return hprof_pb_finish(b, gz, len);
}
