/*
 * pcodec: the pprof profile codec, shared by the profiler (which writes profiles) and loadgen
 * (which reads them). It is protobuf-c code generated from profile.proto plus gzip by zlib, and
 * nothing else: it never pulls in the malloc interposer, so a reader stays a plain program.
 *
 * Ownership: a Profile returned by pcodec_decode/pcodec_load_file is freed with pcodec_free.
 * Buffers returned by pcodec_encode_gzip are freed with free(). Functions return 0 / -1; on -1
 * a one-line reason is in err (when err is not NULL).
 */
#ifndef PCODEC_H
#define PCODEC_H

#include <stddef.h>
#include <stdint.h>

#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile pcodec_profile;

/* Decode a profile from memory: gzip'd (as served and written) or raw protobuf. */
pcodec_profile *pcodec_decode(const void *data, size_t len, char *err, size_t errlen);

/* Read and decode a profile file (".pb.gz" or raw). */
pcodec_profile *pcodec_load_file(const char *path, char *err, size_t errlen);

void pcodec_free(pcodec_profile *profile);

/* Serialize and gzip a profile into a new malloc'd buffer. */
int pcodec_encode_gzip(const pcodec_profile *profile, uint8_t **out, size_t *out_len);

/* The string at index i of the string table, or "" when out of range. */
const char *pcodec_string(const pcodec_profile *profile, int64_t i);

/* Index of the sample type named type_name (e.g. "inuse_space"), or -1. */
int pcodec_sample_index(const pcodec_profile *profile, const char *type_name);

/* Sum of one sample value over all samples (e.g. total inuse_space); 0 if the type is absent;
 * saturates at INT64_MIN/INT64_MAX on a crafted profile rather than overflow. */
int64_t pcodec_total(const pcodec_profile *profile, const char *type_name);

#endif
