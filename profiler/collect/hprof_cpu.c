/*
 * hprof_cpu: the CPU profile. SIGPROF samples stacks into a preallocated ring; a drain thread
 * aggregates them per distinct stack; stopping encodes the aggregate as Go's CPU profile.
 *
 * The engine is four files (hprof_cpu_engine.h): this one (start and stop, the drain thread's
 * tick, fork, statistics), hprof_cpu_ring.c (the SIGPROF handler and its ring: "Handler" and
 * "Ring"), hprof_cpu_agg.c (the aggregate) and hprof_cpu_timers.c (the per-thread timers:
 * "Timers", "Overruns", "Exit").
 *
 * Threads and locks: hprof_cpu_lock serialises start and stop (never taken by the handler).
 * The aggregate is written by the drain thread while a profile runs and by stop after joining
 * it: one writer at a time, no lock. Every allocation (ring, aggregate, drain thread, encoder)
 * is inside hprof_internal_enter/exit, so it is profiler overhead, never a heap sample. Fork:
 * the prepare handler makes new signals drop their sample and waits for running handlers to
 * leave libunwind (as the heap sampler's fork gate does for its own unwinding); the child,
 * which has neither the timers (not inherited) nor the drain thread, starts idle. The timers'
 * table (hprof_cpu_g.timers, n_timers, cap_timers) and hprof_cpu_timers_on are guarded by
 * hprof_cpu_timers_lock: start, the drain thread's scan, new threads (arming themselves) and
 * stop all write it. Lock order: hprof_cpu_lock, then the drain janitor's own lock (inside
 * janitor_stop) or hprof_cpu_timers_lock (never both); the handler takes none.
 *
 * Output: stop hands the aggregate (distinct stacks and counts, the period, the times, the
 * dropped samples) to the caller; the pprof layer writes it (pprof/hprof_writers.c), outside
 * hprof_cpu_lock, so encoding never delays the next profile's start.
 */
#include "hprof_cpu_engine.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "hprof_assert.h"
#include "hprof_fork.h"
#include "lc_util.h"
#include "hprof_tcreate.h"
#include "hprof_unwind.h"
#include "janitor.h"

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "hprof_cpu reads the interrupted PC from the x86_64 or aarch64 ucontext"
#endif

#define HPROF_CPU_TICK_NS (20 * 1000000L) /* nanoseconds between drains and thread scans */

/* Start/stop state, under hprof_cpu_lock. */
static pthread_mutex_t hprof_cpu_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t hprof_cpu_once = PTHREAD_ONCE_INIT;
struct hprof_cpu_state hprof_cpu_g;

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
    hprof_cpu_drain(hprof_cpu_g.ring, &hprof_cpu_g.agg);
    pthread_mutex_lock(&hprof_cpu_timers_lock);
    (void)hprof_cpu_scan_threads(); /* threads not created by pthread_create: sampled from now on */
    pthread_mutex_unlock(&hprof_cpu_timers_lock);
    hprof_internal_exit();
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
    memset(&hprof_cpu_g.agg, 0, sizeof(hprof_cpu_g.agg));
    pthread_mutex_init(&hprof_cpu_timers_lock, NULL);
    atomic_store(&hprof_cpu_timers_on, false);
    hprof_cpu_g.timers = NULL; /* POSIX timers are not inherited */
    hprof_cpu_g.n_timers = hprof_cpu_g.cap_timers = 0;
    hprof_cpu_g.ring = NULL;
    hprof_cpu_g.running = 0;
    hprof_cpu_g.drain =
        NULL; /* the parent's drain thread is not in the child (its handle is leaked) */
    atomic_store(&hprof_cpu_forking, 0);
}

static const struct hprof_fork_ops cpu_fork_ops = {atfork_prepare, atfork_parent, atfork_child};

static void init_once(void)
{
    hprof_fork_register(HPROF_FORK_CPU, &cpu_fork_ops);
    /* Without the hook (the table is full) new threads are still found by the rescan. */
    const struct hprof_tcreate_hooks hooks = {.on_start = hprof_cpu_on_thread_start,
                                              .on_exit = hprof_cpu_on_thread_exit};
    (void)hprof_tcreate_register(&hooks);
}

/* ---- start and stop ---- */

static void stop_drain_thread(void)
{
    hprof_internal_enter(); /* janitor_stop frees the handle */
    janitor_stop(hprof_cpu_g.drain);
    hprof_internal_exit();
    hprof_cpu_g.drain = NULL;
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
    if (hprof_cpu_g.running) {
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
    if (hprof_cpu_install_handler() != 0) {
        err = errno;
        goto out;
    }

    hprof_internal_enter();
    hprof_unwind_prewarm(); /* never let libunwind's first use be a handler */
    hprof_cpu_g.ring = calloc(1, sizeof(*hprof_cpu_g.ring));
    hprof_internal_exit();
    if (hprof_cpu_g.ring == NULL) {
        err = ENOMEM;
        goto out;
    }
    memset(&hprof_cpu_g.agg, 0, sizeof(hprof_cpu_g.agg));
    atomic_store(&hprof_cpu_samples, 0);
    atomic_store(&hprof_cpu_dropped, 0);
    atomic_store(&hprof_cpu_weight_sq, 0);
    /* The drain thread (a janitor: one tick every HPROF_CPU_TICK_NS, prompt stop) blocks every
     * signal but SIGPROF (drain_tick): the program's process-directed signals (SIGTERM,
     * SIGCHLD...) keep going to its own threads, while the drain's own CPU time is still
     * sampled and shows in the profile as the profiler's cost. pthread_create allocates the
     * thread's TLS: overhead too. */
    hprof_cpu_g.interval_ns = NS_PER_S / hz;
    hprof_cpu_g.start_real_ns = lc_realtime_ns();
    hprof_cpu_g.start_mono_ns = lc_monotonic_ns();
    atomic_store(&hprof_cpu_live, hprof_cpu_g.ring);
    hprof_internal_enter();
    pthread_mutex_lock(&hprof_cpu_timers_lock);
    /* From here on, new threads arm themselves; the scan arms every thread there is now (one
     * created meanwhile may be armed twice: its own arming replaces the scan's). */
    atomic_store(&hprof_cpu_timers_on, true);
    hprof_cpu_epoch++;
    int scanned = hprof_cpu_scan_threads();
    pthread_mutex_unlock(&hprof_cpu_timers_lock);
    hprof_internal_exit();
    if (scanned != 0) {
        err = errno;
        goto disarm;
    }
    hprof_internal_enter();
    hprof_cpu_g.drain = janitor_start("hprof-cpu", HPROF_CPU_TICK_NS, drain_tick, NULL);
    err = errno;
    hprof_internal_exit();
    if (hprof_cpu_g.drain == NULL)
        goto disarm;
    hprof_cpu_g.hz = hz;
    hprof_cpu_g.running = 1;
    rc = 0;
    goto out;
disarm:
    atomic_store(&hprof_cpu_live, NULL);
    while (atomic_load(&hprof_cpu_active) != 0)
        sched_yield();
    hprof_internal_enter();
    pthread_mutex_lock(&hprof_cpu_timers_lock);
    hprof_cpu_delete_timers();
    pthread_mutex_unlock(&hprof_cpu_timers_lock);
    free(hprof_cpu_g.ring);
    hprof_cpu_g.ring = NULL;
    hprof_cpu_agg_free(&hprof_cpu_g.agg);
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
    if (!hprof_cpu_g.running) {
        pthread_mutex_unlock(&hprof_cpu_lock);
        errno = EINVAL;
        return -1;
    }
    int64_t duration_ns = lc_monotonic_ns() - hprof_cpu_g.start_mono_ns;
    atomic_store(&hprof_cpu_live, NULL); /* signals from now on record nothing */
    while (atomic_load(&hprof_cpu_active) != 0)
        sched_yield(); /* a handler on another core finishing its record */
    stop_drain_thread();

    hprof_internal_enter();
    pthread_mutex_lock(&hprof_cpu_timers_lock);
    hprof_cpu_delete_timers(); /* late signals are no-ops; threads starting from now arm nothing */
    pthread_mutex_unlock(&hprof_cpu_timers_lock);
    hprof_cpu_drain(hprof_cpu_g.ring, &hprof_cpu_g.agg);
    if (out != NULL) {
        /* The aggregate moves to the caller. */
        *out = (struct hprof_cpu_profile){.time_ns = hprof_cpu_g.start_real_ns,
                                          .duration_ns = duration_ns,
                                          .period_ns = NS_PER_S / hprof_cpu_g.hz,
                                          .dropped = atomic_load(&hprof_cpu_dropped) +
                                                     hprof_cpu_g.agg.lost,
                                          .n = hprof_cpu_g.agg.n,
                                          .stacks = hprof_cpu_g.agg.v,
                                          .pool = hprof_cpu_g.agg.pool};
        hprof_cpu_g.agg.v = NULL;
        hprof_cpu_g.agg.pool = NULL;
    }
    free(hprof_cpu_g.ring);
    hprof_cpu_g.ring = NULL;
    hprof_cpu_agg_free(&hprof_cpu_g.agg);
    hprof_internal_exit();
    hprof_cpu_g.running = 0;
    hprof_cpu_g.profiles++;
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
    out->running = hprof_cpu_g.running;
    out->hz = hprof_cpu_g.hz;
    out->profiles = hprof_cpu_g.profiles;
    pthread_mutex_unlock(&hprof_cpu_lock);
    out->samples = atomic_load(&hprof_cpu_samples);
    out->dropped = atomic_load(&hprof_cpu_dropped);
    out->weight_sq = atomic_load(&hprof_cpu_weight_sq);
}
