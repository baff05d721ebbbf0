/*
 * hprof_cpu_engine: what the CPU engine's files share (collect layer; private to the engine:
 * nothing outside hprof_cpu*.c includes it). The engine is one model, told at the top of each
 * file for its part:
 *
 *   hprof_cpu.c         start and stop, the drain thread's tick, fork, statistics; the locks;
 *   hprof_cpu_ring.c    the SIGPROF handler and the ring it writes (async-signal-safe);
 *   hprof_cpu_agg.c     the aggregate the drain fills from the ring (distinct stacks, counts);
 *   hprof_cpu_timers.c  the per-thread CPU-time timers, and a thread's charge at its end.
 *
 * Symbols here are hidden: they never leave libheapprof.so.
 */
#ifndef HPROF_CPU_ENGINE_H
#define HPROF_CPU_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <time.h>

#include "hprof_cpu.h"
#include "hprof_internal.h"

#define HPROF_CPU_RING_RECORDS 2048u        /* samples in flight; power of two */
#define NS_PER_S               1000000000LL /* nanoseconds per second */

/* One sample: a stack, leaf first, standing for weight periods (1 + the timer's overruns).
 * seq = ring position + 1 once the record is complete. */
struct cpu_record {
    _Atomic uint64_t seq;
    uint32_t depth, weight;
    uintptr_t pcs[HPROF_MAX_DEPTH];
};

struct cpu_ring {
    _Atomic uint64_t head;           /* next position to claim (handlers) */
    char pad[64 - sizeof(uint64_t)]; /* keep the consumer's line apart from the producers' */
    _Atomic uint64_t tail;           /* next position to read (the one consumer) */
    struct cpu_record rec[HPROF_CPU_RING_RECORDS];
};

/* Distinct stacks and their sample counts, in first-seen order, with an open-addressing index
 * of 1-based entry numbers (0 = empty). Stacks live in one growable pool of PCs. */
struct cpu_agg {
    struct hprof_cpu_stack *v;
    size_t n, cap;
    uint32_t *slots;
    size_t n_slots;
    uintptr_t *pool;
    size_t pool_n, pool_cap;
    uint64_t lost; /* samples (periods) the aggregate had no memory for */
};

/* A thread's CPU-time timer: SIGPROF to that thread every interval of its CPU time. */
struct cpu_timer {
    pid_t tid;
    timer_t id;
    bool seen; /* in the latest scan of /proc/self/task */
};

/* A thread that armed its own timer at birth (see "Exit" in hprof_cpu_timers.c). Written by
 * the thread's own handler and read by the thread itself at its end, after blocking SIGPROF:
 * one thread, no lock. */
struct cpu_self {
    uint64_t epoch;       /* hprof_cpu_epoch when armed: another profile's record charges nothing */
    int64_t armed_cpu_ns; /* the thread's CPU clock when its timer was armed */
    uint64_t periods;     /* periods its signals carried since (recorded or dropped) */
    uint32_t depth;       /* its latest recorded sample's stack */
    uintptr_t pcs[HPROF_MAX_DEPTH];
};

/* Start/stop state, under hprof_cpu_lock; the timers' table under hprof_cpu_timers_lock. */
struct hprof_cpu_state {
    int running, hz;
    uint64_t profiles;
    struct cpu_ring *ring;
    struct cpu_agg agg;
    int64_t start_real_ns, start_mono_ns;
    struct janitor *drain;    /* the drain thread (libjanitor), while a profile runs */
    int64_t interval_ns;      /* CPU time between samples of a thread */
    struct cpu_timer *timers; /* one armed timer per thread (hprof_cpu_timers_lock) */
    size_t n_timers, cap_timers;
};

#pragma GCC visibility push(hidden)

extern struct hprof_cpu_state hprof_cpu_g; /* hprof_cpu.c */
/* Read by the handler (hprof_cpu_ring.c). */
extern struct cpu_ring *_Atomic hprof_cpu_live;
extern atomic_int hprof_cpu_active;
extern atomic_int hprof_cpu_forking;
extern _Atomic uint64_t hprof_cpu_samples, hprof_cpu_dropped, hprof_cpu_weight_sq;
extern __thread struct cpu_self *hprof_cpu_self __attribute__((tls_model("initial-exec")));

/* The timers' table and whether threads should arm themselves (hprof_cpu_timers.c). */
extern pthread_mutex_t hprof_cpu_timers_lock;
extern atomic_bool hprof_cpu_timers_on;
extern uint64_t hprof_cpu_epoch;

/* hprof_cpu_ring.c */
int hprof_cpu_ring_push(struct cpu_ring *ring, uint32_t weight, void *uc, const uintptr_t *pcs,
                        uint32_t depth, struct cpu_self *self);
int hprof_cpu_install_handler(void);

/* hprof_cpu_agg.c (inside hprof_internal_enter/exit) */
void hprof_cpu_agg_free(struct cpu_agg *a);
void hprof_cpu_drain(struct cpu_ring *ring, struct cpu_agg *agg);

/* hprof_cpu_timers.c (hprof_cpu_timers_lock held, inside hprof_internal_enter/exit; the hooks
 * take it themselves) */
int hprof_cpu_scan_threads(void);
void hprof_cpu_delete_timers(void);
void hprof_cpu_on_thread_start(uintptr_t token);
void hprof_cpu_on_thread_exit(uintptr_t token);

#pragma GCC visibility pop

#endif
