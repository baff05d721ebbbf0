/*
 * hprof_writers: the CPU and threads profiles as pprof (see hprof_writers.c). The heap,
 * allocs and delta writers are hprof_pprof_encode / hprof_pprof_encode_delta (hprof_output.h).
 */
#ifndef HPROF_WRITERS_H
#define HPROF_WRITERS_H

#include <stddef.h>
#include <stdint.h>

#include "hprof_cpu.h"
#include "hprof_output.h"
#include "hprof_threads.h"

/* The CPU profile of a stopped engine's data into a new buffer (hprof_output_free). maps and
 * symbolize as for hprof_pb_new (NULL, 1: this process's). 0 / -1. */
int hprof_cpu_encode(const struct hprof_cpu_profile *cpu, const struct hprof_maps *maps,
                     int symbolize, uint8_t **gz, size_t *len);

/* Stop the running CPU profile. With gz != NULL, encode it: *gz is a new gzip'd pprof profile
 * of *len bytes (free it with hprof_cpu_free); with gz == NULL, discard it. -1 with errno
 * EINVAL when no profile runs, or ENOMEM (profiling is stopped either way). */
int hprof_cpu_stop(uint8_t **gz, size_t *len);
void hprof_cpu_free(uint8_t *gz);

/* The pprof profile of a capture (threads/count, a label thread=NAME per sample; threads
 * without a stack in the comments) into a new buffer (free it with hprof_output_free). */
int hprof_threads_encode(const struct hprof_threads *threads, uint8_t **gz, size_t *len);
/* The same with given mappings and symbolizing (tests pin its bytes). */
int hprof_threads_encode_with(const struct hprof_threads *threads, const struct hprof_maps *maps,
                              int symbolize, uint8_t **gz, size_t *len);

#endif
