/*
 * hprof_cpu: the CPU profile. SIGPROF samples stacks into a preallocated ring; a drain thread
 * aggregates them per distinct stack; stopping encodes the aggregate as Go's CPU profile.
 *
 * Timers: one POSIX timer per thread on that thread's CPU-time clock, delivering SIGPROF to
 * that thread (timer_create with SIGEV_THREAD_ID), as Go has done since 1.18. We first used
 * setitimer(ITIMER_PROF), as gperftools and older Go do: one process-wide timer, simpler, and it
 * covers new threads by itself. Measured here, it lost 40% of the samples as soon as two
 * threads ran at once on two cores (expirations checked on both CPUs' ticks coalesce into one
 * pending process signal), and leaky runs a loop per core, so we pay for enumeration instead:
 * start arms a timer for every thread in /proc/self/task. A thread created later through
 * pthread_create arms its own timer before its first instruction (hprof_tcreate's on_start
 * hook), so its CPU time is sampled from its birth; the drain thread still rescans every
 * HPROF_CPU_TICK_NS for threads created otherwise (clone, thrd_create: their first tick goes
 * unsampled) and deletes the timers of threads that are gone. Per-thread signals never
 * coalesce across threads, and each thread's samples are exactly its own CPU time.
 * Overruns: the kernel checks CPU timers at its tick and a signal is delivered only when the
 * thread next returns to user space; on a busy machine a thread's CPU time can pass several
 * periods between two deliveries (a period is 10 ms, a preempted thread's slice can be longer
 * than that), and the kernel counts the periods that found their signal still pending as
 * overruns instead of queueing more signals. The handler weights its sample with 1 +
 * si_overrun (the count timer_getoverrun would return for that delivery): dropping them lost
 * a quarter of the samples when both cores were busy. Exit: the kernel notices an expiry only
 * at a tick that finds the thread running, and on a busy machine (this 2-core VM under
 * stress-ng) a thread can run 100-240 ms of CPU between two such ticks: a thread's last periods
 * before it ends may never be signalled at all (measured: 78 of 100 periods signalled for a
 * thread of 1 CPU s). A thread born during the profile therefore keeps a record (struct
 * cpu_self: its CPU clock when armed, the periods its signals carried, its latest stack), and
 * at its end (hprof_tcreate's on_exit) charges the periods its own CPU clock says elapsed and no
 * signal carried to that latest stack, as an overrun is charged to the stack of the delivery
 * that carries it. Threads alive when the profile stops are not reconciled: their unsignalled
 * tail is at most the gap above, small against a profile of seconds. A thread that blocks SIGPROF
 * gets no samples while it runs (under ITIMER_PROF its time would have been charged to another
 * thread); born during the profile, its CPU time is charged at its end. The kernel
 * checks CPU timers at its tick, which caps hz (HPROF_CPU_MAX_HZ). The program cannot use
 * ITIMER_PROF or a SIGPROF handler of its own at the same time: start refuses with EBUSY.
 *
 * Handler (async-signal-safe): it never allocates, never takes a lock, and touches only the
 * ring, atomics and libunwind's local unwinder. The stack is walked from the ucontext the
 * kernel hands the handler (unw_init_local2 with UNW_INIT_SIGNAL_FRAME), so the first frame is
 * the interrupted instruction and neither the handler nor the signal trampoline is ever seen.
 * The leaf is stored as the interrupted PC itself; callers as return address - 1 (inside the
 * call); a frame above a sigreturn trampoline (a nested signal handler's victim) is again an
 * interrupted PC. libunwind documents unw_init_local* and unw_step as signal-safe for local
 * unwinding: its caches are global (the default policy) behind locks it takes with all signals
 * blocked, so the handler cannot interrupt its own thread inside them; it maps memory with mmap,
 * not malloc. The first use initialises libunwind, which start does beforehand (pre-warm). We
 * never use unw_backtrace here: its per-thread trace cache calls pthread_setspecific, which may
 * calloc on a thread's first use. libunwind finds unwind tables with dl_iterate_phdr, whose
 * loader lock is recursive: a signal during dlopen on the same thread does not deadlock.
 *
 * Ring: HPROF_CPU_RING_RECORDS fixed records, many producers (handlers on any thread, at once on
 * several cores), one consumer. A handler claims position head by CAS (only if head - tail <
 * capacity, else it counts a drop), writes the record, then publishes it by storing seq =
 * position + 1 (release). The consumer reads records in order while seq matches (acquire) and
 * releases each slot by advancing tail. hprof_cpu_live (the ring, or NULL) and
 * hprof_cpu_active (handlers between loading it and their last write) form a Dekker pair with
 * sequentially consistent operations: once stop has stored NULL and seen active == 0, no
 * handler can touch the ring again, so it is drained completely and freed. The handler stays
 * installed after stop (a SIGPROF still pending then would otherwise kill the process), and
 * does nothing without a ring. errno is preserved.
 *
 * Threads and locks: hprof_cpu_lock serialises start and stop (never taken by the handler).
 * The aggregate is written by the drain thread while a profile runs and by stop after joining
 * it: one writer at a time, no lock. Every allocation (ring, aggregate, drain thread, encoder)
 * is inside hprof_internal_enter/exit, so it is profiler overhead, never a heap sample. Fork:
 * the prepare handler makes new signals drop their sample and waits for running handlers to
 * leave libunwind (as the heap sampler's fork gate does for its own unwinding); the child,
 * which has neither the timers (not inherited) nor the drain thread, starts idle. The timers'
 * table (g.timers, n_timers, cap_timers) and hprof_cpu_timers_on are guarded by
 * hprof_cpu_timers_lock: start, the drain thread's scan, new threads (arming themselves) and
 * stop all write it. Lock order: hprof_cpu_lock, then the drain janitor's own lock (inside
 * janitor_stop) or hprof_cpu_timers_lock (never both); the handler takes none.
 *
 * Output: stop hands the aggregate (distinct stacks and counts, the period, the times, the
 * dropped samples) to the caller; the pprof layer writes it (pprof/hprof_writers.c), outside
 * hprof_cpu_lock, so encoding never delays the next profile's start.
 */
#include "hprof_cpu.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "hprof_assert.h"
#include "hprof_fork.h"
#include "hprof_hash.h"
#include "hprof_proc.h"
#include "lc_util.h"
#include "hprof_tcreate.h"
#include "hprof_unwind.h"
#include "janitor.h"

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "hprof_cpu reads the interrupted PC from the x86_64 or aarch64 ucontext"
#endif

#define HPROF_CPU_RING_RECORDS 2048u           /* samples in flight; power of two */
#define HPROF_CPU_TICK_NS      (20 * 1000000L) /* nanoseconds between drains and thread scans */
#define HPROF_CPU_AGG_MIN      256u            /* aggregate index slots at start (power of 2) */
#define NS_PER_S               1000000000LL    /* nanoseconds per second */

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

/* Read by the handler. */
static struct cpu_ring *_Atomic hprof_cpu_live;
static atomic_int hprof_cpu_active;
static atomic_int hprof_cpu_forking;
static _Atomic uint64_t hprof_cpu_samples, hprof_cpu_dropped, hprof_cpu_weight_sq;

/* A thread that armed its own timer at birth (see "Exit" at the top of this file). Written by
 * the thread's own handler and read by the thread itself at its end, after blocking SIGPROF:
 * one thread, no lock. */
struct cpu_self {
    uint64_t epoch;       /* hprof_cpu_epoch when armed: another profile's record charges nothing */
    int64_t armed_cpu_ns; /* the thread's CPU clock when its timer was armed */
    int64_t interval_ns;  /* the timer's period */
    uint64_t periods;     /* periods its signals carried since (recorded or dropped) */
    uint32_t depth;       /* its latest recorded sample's stack */
    uintptr_t pcs[HPROF_MAX_DEPTH];
};
static __thread struct cpu_self *hprof_cpu_self __attribute__((tls_model("initial-exec")));

/* Start/stop state, under hprof_cpu_lock. */
static pthread_mutex_t hprof_cpu_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t hprof_cpu_once = PTHREAD_ONCE_INIT;
static struct {
    int running, hz;
    uint64_t profiles;
    struct cpu_ring *ring;
    struct cpu_agg agg;
    int64_t start_real_ns, start_mono_ns;
    struct janitor *drain;    /* the drain thread (libjanitor), while a profile runs */
    int64_t interval_ns;      /* CPU time between samples of a thread */
    struct cpu_timer *timers; /* one armed timer per thread (hprof_cpu_timers_lock) */
    size_t n_timers, cap_timers;
} g;

/* The timers' table and whether threads should arm themselves (hprof_cpu_timers_on is also
 * read without the lock, as the new thread's fast "no profile" check). */
static pthread_mutex_t hprof_cpu_timers_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool hprof_cpu_timers_on;
static uint64_t hprof_cpu_epoch; /* profiles started; under hprof_cpu_timers_lock */

/* ---- the signal handler ---- */

/* Claim a ring slot and publish a record of weight periods, its stack unwound from the signal
 * context uc or (uc NULL) copied from pcs; the stack is also kept as self's latest (self may be
 * NULL), before the record is published and the slot may be reused. Only with hprof_cpu_active
 * held and ring live. 0, or -1 when the ring was full (the periods are counted as dropped). */
static int ring_push(struct cpu_ring *ring, uint32_t weight, void *uc, const uintptr_t *pcs,
                     uint32_t depth, struct cpu_self *self)
{
    uint64_t pos = atomic_load_explicit(&ring->head, memory_order_relaxed);
    do {
        if (pos - atomic_load_explicit(&ring->tail, memory_order_acquire) >=
            HPROF_CPU_RING_RECORDS) {
            atomic_fetch_add_explicit(&hprof_cpu_dropped, weight, memory_order_relaxed);
            return -1;
        }
    } while (!atomic_compare_exchange_weak_explicit(&ring->head, &pos, pos + 1,
                                                    memory_order_relaxed, memory_order_relaxed));
    struct cpu_record *r = &ring->rec[pos & (HPROF_CPU_RING_RECORDS - 1)];
    if (uc != NULL) {
        r->depth = (uint32_t)hprof_unwind_signal(uc, r->pcs);
    } else {
        memcpy(r->pcs, pcs, depth * sizeof(*pcs));
        r->depth = depth;
    }
    r->weight = weight;
    if (self != NULL) {
        memcpy(self->pcs, r->pcs, r->depth * sizeof(*r->pcs));
        self->depth = r->depth;
    }
    atomic_store_explicit(&r->seq, pos + 1, memory_order_release);
    atomic_fetch_add_explicit(&hprof_cpu_samples, weight, memory_order_relaxed);
    atomic_fetch_add_explicit(&hprof_cpu_weight_sq, (uint64_t)weight * weight,
                              memory_order_relaxed);
    return 0;
}

static void on_sigprof(int sig, siginfo_t *info, void *uc)
{
    (void)sig;
    int saved_errno = errno;
    /* A timer signal stands for 1 + si_overrun periods: those that expired while it was
     * pending (see the top of this file). */
    uint32_t weight = 1;
    if (info != NULL && info->si_code == SI_TIMER && info->si_overrun > 0)
        weight += (uint32_t)info->si_overrun;
    atomic_fetch_add(&hprof_cpu_active, 1);
    struct cpu_ring *ring = atomic_load(&hprof_cpu_live);
    if (ring == NULL)
        goto out;
    struct cpu_self *self = hprof_cpu_self;
    if (self != NULL)
        self->periods += weight; /* delivered, whether recorded or dropped */
    if (atomic_load(&hprof_cpu_forking)) {
        atomic_fetch_add_explicit(&hprof_cpu_dropped, weight, memory_order_relaxed);
        goto out;
    }
    (void)ring_push(ring, weight, uc, NULL, 0, self);
out:
    atomic_fetch_sub(&hprof_cpu_active, 1);
    errno = saved_errno;
}

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

static void agg_free(struct cpu_agg *a)
{
    free(a->v);
    free(a->slots);
    free(a->pool);
    memset(a, 0, sizeof(*a));
}

/* Move every complete record from the ring into the aggregate. */
static void drain(struct cpu_ring *ring, struct cpu_agg *agg)
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

static int scan_threads(void);

/* The drain thread's tick (libjanitor runs it every HPROF_CPU_TICK_NS; janitor_stop wakes the
 * thread at once, so stop does not wait a tick). */
static void drain_tick(void *arg)
{
    (void)arg;
    /* The janitor starts its thread with every signal blocked; the drain takes SIGPROF back, so
     * its own CPU time is sampled and shows in the profile as the profiler's cost. */
    static __thread bool prof_unblocked;
    if (!prof_unblocked) {
        sigset_t prof;
        sigemptyset(&prof);
        sigaddset(&prof, SIGPROF);
        pthread_sigmask(SIG_UNBLOCK, &prof, NULL);
        prof_unblocked = true;
    }
    hprof_internal_enter();
    drain(g.ring, &g.agg);
    pthread_mutex_lock(&hprof_cpu_timers_lock);
    (void)scan_threads(); /* threads not created by pthread_create: sampled from now on */
    pthread_mutex_unlock(&hprof_cpu_timers_lock);
    hprof_internal_exit();
}

/* ---- per-thread timers (start, and the drain thread; inside hprof_internal_enter/exit) ---- */

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/* The CPU-time clock of any thread of the process, by tid: the kernel's encoding, which glibc's
 * pthread_getcpuclockid uses too: ~tid << 3 | CPUCLOCK_PERTHREAD (4) | CPUCLOCK_SCHED (2). */
static clockid_t thread_cpu_clock(pid_t tid)
{
    return (clockid_t)((~(unsigned)tid << 3) | 6u);
}

static int arm_thread(pid_t tid, timer_t *out)
{
    struct sigevent sev;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGPROF;
    sev.sigev_notify_thread_id = tid;
    if (timer_create(thread_cpu_clock(tid), &sev, out) != 0)
        return -1; /* typically: the thread has just exited */
    struct timespec every = {g.interval_ns / NS_PER_S, g.interval_ns % NS_PER_S};
    struct itimerspec its = {every, every};
    if (timer_settime(*out, 0, &its, NULL) != 0) {
        timer_delete(*out);
        return -1;
    }
    return 0;
}

/* Room for one more timer in the table. 0, or -1 (out of memory). Under hprof_cpu_timers_lock. */
static int timers_reserve(void)
{
    if (g.n_timers < g.cap_timers)
        return 0;
    size_t cap = g.cap_timers ? g.cap_timers * 2 : 16;
    struct cpu_timer *v = realloc(g.timers, cap * sizeof(*v));
    if (v == NULL)
        return -1;
    g.timers = v;
    g.cap_timers = cap;
    return 0;
}

/* One thread of the scan: mark its timer seen, or arm one. Under hprof_cpu_timers_lock. */
static void scan_one(pid_t tid, void *arg)
{
    (void)arg;
    size_t i = 0;
    while (i < g.n_timers && g.timers[i].tid != tid)
        i++;
    if (i < g.n_timers) {
        g.timers[i].seen = true;
        return;
    }
    if (timers_reserve() != 0)
        return; /* this thread stays unsampled until a later scan */
    timer_t id;
    if (arm_thread(tid, &id) == 0)
        g.timers[g.n_timers++] = (struct cpu_timer){tid, id, true};
}

/* Arm a timer for every thread not armed yet; delete the timers of threads that are gone.
 * Returns 0, or -1 when /proc/self/task cannot be read. Under hprof_cpu_timers_lock. */
static int scan_threads(void)
{
    for (size_t i = 0; i < g.n_timers; i++)
        g.timers[i].seen = false;
    if (hprof_proc_tasks(scan_one, NULL) < 0)
        return -1;
    for (size_t i = 0; i < g.n_timers;) {
        if (g.timers[i].seen) {
            i++;
            continue;
        }
        timer_delete(g.timers[i].id);
        g.timers[i] = g.timers[--g.n_timers];
    }
    return 0;
}

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* The new thread's record for the running profile. Published before its timer is armed, so
 * every signal of that timer counts in periods. Under
 * hprof_cpu_timers_lock, inside hprof_internal_enter/exit. */
static void track_self(void)
{
    struct cpu_self *self = malloc(sizeof(*self));
    if (self == NULL)
        return; /* out of memory: this thread's end charges nothing */
    self->epoch = hprof_cpu_epoch;
    self->interval_ns = g.interval_ns;
    self->armed_cpu_ns = thread_cpu_ns();
    self->periods = 0;
    self->depth = 0;
    atomic_signal_fence(memory_order_release); /* filled before the handler can see it */
    hprof_cpu_self = self;
}

/* Delete the timer of thread tid, if it has one. Under hprof_cpu_timers_lock. */
static void forget_timer(pid_t tid)
{
    for (size_t i = 0; i < g.n_timers; i++)
        if (g.timers[i].tid == tid) {
            timer_delete(g.timers[i].id);
            g.timers[i] = g.timers[--g.n_timers];
            return;
        }
}

/* Record the periods of this thread's CPU time since its timer was armed that no signal
 * carried. A thread never sampled is charged at its own exit stack. Under
 * hprof_cpu_timers_lock, with SIGPROF blocked. */
static void charge_unsignalled(const struct cpu_self *self)
{
    int64_t due = (thread_cpu_ns() - self->armed_cpu_ns) / self->interval_ns;
    if (due <= (int64_t)self->periods)
        return;
    uint32_t owed = (uint32_t)(due - (int64_t)self->periods);
    const uintptr_t *pcs = self->pcs;
    uint32_t depth = self->depth;
    uintptr_t here[HPROF_MAX_DEPTH];
    if (depth == 0) { /* the exit path itself: these frames say where the charge came from */
        depth = (uint32_t)hprof_unwind_here(here);
        pcs = here;
    }
    atomic_fetch_add(&hprof_cpu_active, 1);
    struct cpu_ring *ring = atomic_load(&hprof_cpu_live);
    if (ring != NULL && !atomic_load(&hprof_cpu_forking) && depth > 0)
        (void)ring_push(ring, owed, NULL, pcs, depth, NULL);
    atomic_fetch_sub(&hprof_cpu_active, 1);
}

/* hprof_tcreate's on_start hook: a thread created by pthread_create arms its own timer before
 * its start routine runs, so none of its CPU time goes unsampled. A timer already in the table
 * under this tid is either the scan's, armed a moment ago for this very thread, or a dead
 * thread's whose tid the kernel reused before the scan noticed: either way it is replaced. */
static void cpu_on_thread_start(uintptr_t token)
{
    (void)token;
    if (!atomic_load_explicit(&hprof_cpu_timers_on, memory_order_acquire))
        return; /* no profile: one load */
    pid_t tid = (pid_t)syscall(SYS_gettid);
    pthread_mutex_lock(&hprof_cpu_timers_lock);
    if (atomic_load_explicit(&hprof_cpu_timers_on, memory_order_relaxed)) {
        forget_timer(tid);
        track_self();
        timer_t id;
        if (timers_reserve() == 0 && arm_thread(tid, &id) == 0) {
            g.timers[g.n_timers++] = (struct cpu_timer){tid, id, true};
            if (hprof_cpu_self != NULL)
                hprof_cpu_self->armed_cpu_ns = thread_cpu_ns();
        }
        /* else: out of memory; the next scan arms it */
    }
    pthread_mutex_unlock(&hprof_cpu_timers_lock);
}

/* hprof_tcreate's on_exit hook: the thread's end. Its timer goes (the kernel discards a signal
 * still pending with it), and the periods of its CPU time that the kernel never signalled are
 * charged to its latest sampled stack (see "Exit" at the top of this file). */
static void cpu_on_thread_exit(uintptr_t token)
{
    (void)token;
    struct cpu_self *self = hprof_cpu_self;
    if (self == NULL)
        return;
    sigset_t prof, saved;
    sigemptyset(&prof);
    sigaddset(&prof, SIGPROF);
    pthread_sigmask(SIG_BLOCK, &prof, &saved);
    hprof_cpu_self = NULL;
    pid_t tid = (pid_t)syscall(SYS_gettid);
    pthread_mutex_lock(&hprof_cpu_timers_lock);
    forget_timer(tid);
    /* Under the lock, a matching epoch means the live ring (or NULL, stopping) is this
     * profile's: start and stop change the epoch and hprof_cpu_timers_on only under it. */
    if (atomic_load(&hprof_cpu_timers_on) && self->epoch == hprof_cpu_epoch)
        charge_unsignalled(self);
    pthread_mutex_unlock(&hprof_cpu_timers_lock);
    free(self);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

/* Stop arming and delete every timer. Under hprof_cpu_timers_lock. */
static void delete_timers(void)
{
    atomic_store(&hprof_cpu_timers_on, false);
    for (size_t i = 0; i < g.n_timers; i++)
        timer_delete(g.timers[i].id);
    free(g.timers);
    g.timers = NULL;
    g.n_timers = g.cap_timers = 0;
}

/* ---- fork ---- */

/* The CPU stage of the fork sequence (hprof_fork.c, which calls these in its written order). */
static void atfork_prepare(void)
{
    atomic_store(&hprof_cpu_forking, 1);
    /* Handlers on other threads finish; one on this thread already returned. */
    while (atomic_load(&hprof_cpu_active) != 0)
        sched_yield();
}

static void atfork_parent(void)
{
    HPROF_ASSERT(atomic_load(&hprof_cpu_forking)); /* prepare quiesced the handlers */
    atomic_store(&hprof_cpu_forking, 0);
}

static void atfork_child(void)
{
    HPROF_ASSERT(atomic_load(&hprof_cpu_forking)); /* prepare quiesced the handlers */
    /* One thread, no timer, no drain thread: start over idle. The ring and the aggregate are
     * leaked rather than freed in a state another thread might have been changing. */
    atomic_store(&hprof_cpu_live, NULL);
    atomic_store(&hprof_cpu_active, 0);
    pthread_mutex_init(&hprof_cpu_lock, NULL);
    memset(&g.agg, 0, sizeof(g.agg));
    pthread_mutex_init(&hprof_cpu_timers_lock, NULL);
    atomic_store(&hprof_cpu_timers_on, false);
    g.timers = NULL; /* POSIX timers are not inherited */
    g.n_timers = g.cap_timers = 0;
    g.ring = NULL;
    g.running = 0;
    g.drain = NULL; /* the parent's drain thread is not in the child (its handle is leaked) */
    atomic_store(&hprof_cpu_forking, 0);
}

static const struct hprof_fork_ops cpu_fork_ops = {atfork_prepare, atfork_parent, atfork_child};

static void init_once(void)
{
    hprof_fork_register(HPROF_FORK_CPU, &cpu_fork_ops);
    /* Without the hook (the table is full) new threads are still found by the rescan. */
    const struct hprof_tcreate_hooks hooks = {.on_start = cpu_on_thread_start,
                                              .on_exit = cpu_on_thread_exit};
    (void)hprof_tcreate_register(&hooks);
}

/* ---- start and stop ---- */

/* Install our SIGPROF handler, unless the program has one of its own. */
static int install_handler(void)
{
    struct sigaction old;
    if (sigaction(SIGPROF, NULL, &old) != 0)
        return -1;
    if ((old.sa_flags & SA_SIGINFO) && old.sa_sigaction == on_sigprof)
        return 0;
    if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
        errno = EBUSY;
        return -1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigprof;
    sigemptyset(&sa.sa_mask);
    /* SA_RESTART: a sample must not make the program's read() or write() fail with EINTR. */
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    return sigaction(SIGPROF, &sa, NULL);
}

static void stop_drain_thread(void)
{
    hprof_internal_enter(); /* janitor_stop frees the handle */
    janitor_stop(g.drain);
    hprof_internal_exit();
    g.drain = NULL;
}

int hprof_cpu_start(int hz)
{
    if (hz < 1 || hz > HPROF_CPU_MAX_HZ) {
        errno = EINVAL;
        return -1;
    }
    pthread_once(&hprof_cpu_once, init_once);
    pthread_mutex_lock(&hprof_cpu_lock);
    int rc = -1, err = 0;
    if (g.running) {
        err = EBUSY;
        goto out;
    }
    struct itimerval cur;
    if (getitimer(ITIMER_PROF, &cur) != 0) {
        err = errno;
        goto out;
    }
    if (cur.it_value.tv_sec != 0 || cur.it_value.tv_usec != 0) {
        err = EBUSY; /* the program's own ITIMER_PROF */
        goto out;
    }
    if (install_handler() != 0) {
        err = errno;
        goto out;
    }

    hprof_internal_enter();
    hprof_unwind_prewarm(); /* never let libunwind's first use be a handler */
    g.ring = calloc(1, sizeof(*g.ring));
    hprof_internal_exit();
    if (g.ring == NULL) {
        err = ENOMEM;
        goto out;
    }
    memset(&g.agg, 0, sizeof(g.agg));
    atomic_store(&hprof_cpu_samples, 0);
    atomic_store(&hprof_cpu_dropped, 0);
    atomic_store(&hprof_cpu_weight_sq, 0);
    /* The drain thread (a janitor: one tick every HPROF_CPU_TICK_NS, prompt stop) blocks every
     * signal but SIGPROF (drain_tick): the program's process-directed signals (SIGTERM,
     * SIGCHLD...) keep going to its own threads, while the drain's own CPU time is still
     * sampled and shows in the profile as the profiler's cost. pthread_create allocates the
     * thread's TLS: overhead too. */
    g.interval_ns = NS_PER_S / hz;
    g.start_real_ns = lc_realtime_ns();
    g.start_mono_ns = lc_monotonic_ns();
    atomic_store(&hprof_cpu_live, g.ring);
    hprof_internal_enter();
    pthread_mutex_lock(&hprof_cpu_timers_lock);
    /* From here on, new threads arm themselves; the scan arms every thread there is now (one
     * created meanwhile may be armed twice: its own arming replaces the scan's). */
    atomic_store(&hprof_cpu_timers_on, true);
    hprof_cpu_epoch++;
    int scanned = scan_threads();
    pthread_mutex_unlock(&hprof_cpu_timers_lock);
    hprof_internal_exit();
    if (scanned != 0) {
        err = errno;
        goto disarm;
    }
    hprof_internal_enter();
    g.drain = janitor_start("hprof-cpu", HPROF_CPU_TICK_NS, drain_tick, NULL);
    err = errno;
    hprof_internal_exit();
    if (g.drain == NULL)
        goto disarm;
    g.hz = hz;
    g.running = 1;
    rc = 0;
    goto out;
disarm:
    atomic_store(&hprof_cpu_live, NULL);
    while (atomic_load(&hprof_cpu_active) != 0)
        sched_yield();
    hprof_internal_enter();
    pthread_mutex_lock(&hprof_cpu_timers_lock);
    delete_timers();
    pthread_mutex_unlock(&hprof_cpu_timers_lock);
    free(g.ring);
    g.ring = NULL;
    agg_free(&g.agg);
    hprof_internal_exit();
out:
    pthread_mutex_unlock(&hprof_cpu_lock);
    if (rc != 0)
        errno = err;
    return rc;
}

int hprof_cpu_stop_profile(struct hprof_cpu_profile *out)
{
    pthread_mutex_lock(&hprof_cpu_lock);
    if (!g.running) {
        pthread_mutex_unlock(&hprof_cpu_lock);
        errno = EINVAL;
        return -1;
    }
    int64_t duration_ns = lc_monotonic_ns() - g.start_mono_ns;
    atomic_store(&hprof_cpu_live, NULL); /* signals from now on record nothing */
    while (atomic_load(&hprof_cpu_active) != 0)
        sched_yield(); /* a handler on another core finishing its record */
    stop_drain_thread();

    hprof_internal_enter();
    pthread_mutex_lock(&hprof_cpu_timers_lock);
    delete_timers(); /* late signals are no-ops; threads starting from now arm nothing */
    pthread_mutex_unlock(&hprof_cpu_timers_lock);
    drain(g.ring, &g.agg);
    if (out != NULL) {
        /* The aggregate moves to the caller. */
        *out = (struct hprof_cpu_profile){.time_ns = g.start_real_ns,
                                          .duration_ns = duration_ns,
                                          .period_ns = NS_PER_S / g.hz,
                                          .dropped = atomic_load(&hprof_cpu_dropped) + g.agg.lost,
                                          .n = g.agg.n,
                                          .stacks = g.agg.v,
                                          .pool = g.agg.pool};
        g.agg.v = NULL;
        g.agg.pool = NULL;
    }
    free(g.ring);
    g.ring = NULL;
    agg_free(&g.agg);
    hprof_internal_exit();
    g.running = 0;
    g.profiles++;
    pthread_mutex_unlock(&hprof_cpu_lock);
    return 0;
}

void hprof_cpu_profile_release(struct hprof_cpu_profile *profile)
{
    hprof_internal_enter();
    free(profile->stacks);
    free(profile->pool);
    hprof_internal_exit();
    memset(profile, 0, sizeof(*profile));
}

void hprof_cpu_get_stats(struct hprof_cpu_stats *out)
{
    pthread_mutex_lock(&hprof_cpu_lock);
    out->running = g.running;
    out->hz = g.hz;
    out->profiles = g.profiles;
    pthread_mutex_unlock(&hprof_cpu_lock);
    out->samples = atomic_load(&hprof_cpu_samples);
    out->dropped = atomic_load(&hprof_cpu_dropped);
    out->weight_sq = atomic_load(&hprof_cpu_weight_sq);
}
