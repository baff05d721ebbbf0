/*
 * hprof_hash: the profiler's one hash, for its hash tables (bucket table, CPU aggregate, delta
 * index, the pprof builder's string/location/function indexes) and the mappings' signature.
 *
 *   hprof_hash_mix64   splitmix64's finalizer (Steele et al.): every input bit flips about half
 *                      of the output bits; also the sampler's PRNG output function;
 *   hprof_hash_bytes   FNV-1a over bytes, chained from HPROF_HASH_INIT (strings, records);
 *   hprof_hash_pcs     a stack (and a seed, e.g. the allocation size), finalized by mix64.
 *
 * Header-only and async-signal-safe (no state, no calls): the malloc path and signal handlers
 * may use it. Hash values are never part of an output: tables list entries in insertion
 * order, so changing the hash changes no profile.
 */
#ifndef HPROF_HASH_H
#define HPROF_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HPROF_HASH_INIT 14695981039346656037ull /* FNV-1a offset basis */

static inline uint64_t hprof_hash_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t hprof_hash_bytes(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull; /* FNV prime */
    return h;
}

static inline uint64_t hprof_hash_str(const char *s)
{
    uint64_t h = HPROF_HASH_INIT;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static inline uint64_t hprof_hash_pcs(uint64_t seed, const uintptr_t *pcs, size_t depth)
{
    uint64_t h = hprof_hash_mix64(seed ^ depth);
    for (size_t i = 0; i < depth; i++) {
        h ^= (uint64_t)pcs[i];
        h *= 0x9e3779b97f4a7c15ull; /* 2^64 / phi */
        h ^= h >> 29;
    }
    return hprof_hash_mix64(h);
}

#endif
