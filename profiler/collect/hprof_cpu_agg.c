/*
 * hprof_cpu_agg: the CPU engine's aggregate (see hprof_cpu_engine.h for the engine's files):
 * the drain moves the ring's records into it, one entry per distinct stack with its count of
 * periods. Written by the drain thread while a profile runs and by stop after joining it: one
 * writer at a time, no lock; every allocation is inside hprof_internal_enter/exit.
 */
#include "hprof_cpu_engine.h"

#include <stdlib.h>
#include <string.h>

#include "hprof_hash.h"

#define HPROF_CPU_AGG_MIN 256u /* aggregate index slots at start (power of 2) */

/* ---- the aggregate (drain side; inside hprof_internal_enter/exit) ---- */

static uint64_t stack_hash(const uintptr_t *pcs, uint32_t depth)
{
    return hprof_hash_pcs(0, pcs, depth) | 1; /* never 0 */
}

static int agg_grow_index(struct cpu_agg *a)
{
    size_t n = a->n_slots ? a->n_slots * 2 : HPROF_CPU_AGG_MIN;
    uint32_t *slots = calloc(n, sizeof(*slots));
    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < a->n; i++) {
        size_t j = a->v[i].hash & (n - 1);
        while (slots[j] != 0)
            j = (j + 1) & (n - 1);
        slots[j] = (uint32_t)(i + 1);
    }
    free(a->slots);
    a->slots = slots;
    a->n_slots = n;
    return 0;
}

static int agg_add(struct cpu_agg *a, const uintptr_t *pcs, uint32_t depth, uint32_t weight)
{
    if ((a->n + 1) * 2 > a->n_slots && agg_grow_index(a) != 0)
        return -1;
    uint64_t h = stack_hash(pcs, depth);
    size_t j = h & (a->n_slots - 1);
    for (; a->slots[j] != 0; j = (j + 1) & (a->n_slots - 1)) {
        struct hprof_cpu_stack *e = &a->v[a->slots[j] - 1];
        if (e->hash == h && e->depth == depth &&
            memcmp(&a->pool[e->off], pcs, depth * sizeof(*pcs)) == 0) {
            e->count += weight;
            return 0;
        }
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        struct hprof_cpu_stack *v = realloc(a->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        a->v = v;
        a->cap = cap;
    }
    if (a->pool_n + depth > a->pool_cap) {
        size_t cap = a->pool_cap ? a->pool_cap * 2 : 4096;
        while (cap < a->pool_n + depth)
            cap *= 2;
        uintptr_t *pool = realloc(a->pool, cap * sizeof(*pool));
        if (pool == NULL)
            return -1;
        a->pool = pool;
        a->pool_cap = cap;
    }
    memcpy(&a->pool[a->pool_n], pcs, depth * sizeof(*pcs));
    a->v[a->n] = (struct hprof_cpu_stack){h, weight, depth, (uint32_t)a->pool_n};
    a->pool_n += depth;
    a->slots[j] = (uint32_t)++a->n;
    return 0;
}

void hprof_cpu_agg_free(struct cpu_agg *a)
{
    free(a->v);
    free(a->slots);
    free(a->pool);
    memset(a, 0, sizeof(*a));
}

/* Move every complete record from the ring into the aggregate. */
void hprof_cpu_drain(struct cpu_ring *ring, struct cpu_agg *agg)
{
    uint64_t tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);
    for (;;) {
        struct cpu_record *r = &ring->rec[tail & (HPROF_CPU_RING_RECORDS - 1)];
        if (atomic_load_explicit(&r->seq, memory_order_acquire) != tail + 1)
            break; /* not yet written (or not yet claimed) */
        uint32_t depth = r->depth > HPROF_MAX_DEPTH ? HPROF_MAX_DEPTH : r->depth;
        if (agg_add(agg, r->pcs, depth, r->weight) != 0)
            agg->lost += r->weight;
        tail++;
        atomic_store_explicit(&ring->tail, tail, memory_order_release);
    }
}
