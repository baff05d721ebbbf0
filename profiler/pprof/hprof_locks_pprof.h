/*
 * hprof_locks_pprof: the contention profiles as pprof (pprof layer; see hprof_locks_pprof.c).
 */
#ifndef HPROF_LOCKS_PPROF_H
#define HPROF_LOCKS_PPROF_H

#include <stddef.h>
#include <stdint.h>

#include "hprof_locks.h"

/* A mutex or block snapshot as Go writes it (printCountCycleProfile): sample types
 * contentions/count and delay/nanoseconds, period_type contentions/count, period 1, largest
 * delay first; duration_ns 0 leaves duration unset. Into a new buffer (hprof_output_free).
 * Returns 0 / -1 (errno). */
int hprof_locks_encode(const struct hprof_lock_snapshot *s, int64_t duration_ns, uint8_t **gz,
                       size_t *len);

/* The threadcreate snapshot as Go writes count profiles: threadcreate/count, period 1. */
int hprof_threadcreate_encode(const struct hprof_lock_snapshot *s, uint8_t **gz, size_t *len);

#endif
