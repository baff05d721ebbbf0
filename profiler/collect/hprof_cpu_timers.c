/*
 * hprof_cpu_timers: the CPU engine's per-thread timers (see hprof_cpu_engine.h for the
 * engine's files).
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
 */
#include "hprof_cpu_engine.h"

#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hprof_proc.h"
#include "hprof_unwind.h"

/* The timers' table and whether threads should arm themselves (hprof_cpu_timers_on is also
 * read without the lock, as the new thread's fast "no profile" check). */
pthread_mutex_t hprof_cpu_timers_lock = PTHREAD_MUTEX_INITIALIZER;
atomic_bool hprof_cpu_timers_on;
uint64_t hprof_cpu_epoch; /* profiles started; under hprof_cpu_timers_lock */

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
    struct timespec every = {hprof_cpu_g.interval_ns / NS_PER_S,
                             hprof_cpu_g.interval_ns % NS_PER_S};
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
    if (hprof_cpu_g.n_timers < hprof_cpu_g.cap_timers)
        return 0;
    size_t cap = hprof_cpu_g.cap_timers ? hprof_cpu_g.cap_timers * 2 : 16;
    struct cpu_timer *v = realloc(hprof_cpu_g.timers, cap * sizeof(*v));
    if (v == NULL)
        return -1;
    hprof_cpu_g.timers = v;
    hprof_cpu_g.cap_timers = cap;
    return 0;
}

/* The table index of thread tid's timer, or n_timers. Under hprof_cpu_timers_lock. */
static size_t find_timer(pid_t tid)
{
    size_t i = 0;
    while (i < hprof_cpu_g.n_timers && hprof_cpu_g.timers[i].tid != tid)
        i++;
    return i;
}

/* One thread of the scan: mark its timer seen, or arm one. Under hprof_cpu_timers_lock. */
static void scan_one(pid_t tid, void *arg)
{
    (void)arg;
    size_t i = find_timer(tid);
    if (i < hprof_cpu_g.n_timers) {
        hprof_cpu_g.timers[i].seen = true;
        return;
    }
    if (timers_reserve() != 0)
        return; /* this thread stays unsampled until a later scan */
    timer_t id;
    if (arm_thread(tid, &id) == 0)
        hprof_cpu_g.timers[hprof_cpu_g.n_timers++] = (struct cpu_timer){tid, id, true};
}

/* Arm a timer for every thread not armed yet; delete the timers of threads that are gone.
 * Returns 0, or -1 when /proc/self/task cannot be read. Under hprof_cpu_timers_lock. */
int hprof_cpu_scan_threads(void)
{
    for (size_t i = 0; i < hprof_cpu_g.n_timers; i++)
        hprof_cpu_g.timers[i].seen = false;
    if (hprof_proc_tasks(scan_one, NULL) < 0)
        return -1;
    for (size_t i = 0; i < hprof_cpu_g.n_timers;) {
        if (hprof_cpu_g.timers[i].seen) {
            i++;
            continue;
        }
        timer_delete(hprof_cpu_g.timers[i].id);
        hprof_cpu_g.timers[i] = hprof_cpu_g.timers[--hprof_cpu_g.n_timers];
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
    self->armed_cpu_ns = thread_cpu_ns();
    self->periods = 0;
    self->depth = 0;
    atomic_signal_fence(memory_order_release); /* filled before the handler can see it */
    hprof_cpu_self = self;
}

/* Delete the timer of thread tid, if it has one. Under hprof_cpu_timers_lock. */
static void forget_timer(pid_t tid)
{
    size_t i = find_timer(tid);
    if (i < hprof_cpu_g.n_timers) {
        timer_delete(hprof_cpu_g.timers[i].id);
        hprof_cpu_g.timers[i] = hprof_cpu_g.timers[--hprof_cpu_g.n_timers];
    }
}

/* Record the periods of this thread's CPU time since its timer was armed that no signal
 * carried. A thread never sampled is charged at its own exit stack. Under
 * hprof_cpu_timers_lock, with SIGPROF blocked. */
static void charge_unsignalled(const struct cpu_self *self)
{
    /* The epoch matched: the running profile's period is the one this thread was armed at. */
    int64_t due = (thread_cpu_ns() - self->armed_cpu_ns) / hprof_cpu_g.interval_ns;
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
        (void)hprof_cpu_ring_push(ring, owed, NULL, pcs, depth, NULL);
    atomic_fetch_sub(&hprof_cpu_active, 1);
}

/* hprof_tcreate's on_start hook: a thread created by pthread_create arms its own timer before
 * its start routine runs, so none of its CPU time goes unsampled. A timer already in the table
 * under this tid is either the scan's, armed a moment ago for this very thread, or a dead
 * thread's whose tid the kernel reused before the scan noticed: either way it is replaced. */
void hprof_cpu_on_thread_start(uintptr_t token)
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
        if (timers_reserve() == 0 && arm_thread(tid, &id) == 0)
            hprof_cpu_g.timers[hprof_cpu_g.n_timers++] = (struct cpu_timer){tid, id, true};
        /* else: out of memory; the next scan arms it */
    }
    pthread_mutex_unlock(&hprof_cpu_timers_lock);
}

/* hprof_tcreate's on_exit hook: the thread's end. Its timer goes (the kernel discards a signal
 * still pending with it), and the periods of its CPU time that the kernel never signalled are
 * charged to its latest sampled stack (see "Exit" at the top of this file). */
void hprof_cpu_on_thread_exit(uintptr_t token)
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
void hprof_cpu_delete_timers(void)
{
    atomic_store(&hprof_cpu_timers_on, false);
    for (size_t i = 0; i < hprof_cpu_g.n_timers; i++)
        timer_delete(hprof_cpu_g.timers[i].id);
    free(hprof_cpu_g.timers);
    hprof_cpu_g.timers = NULL;
    hprof_cpu_g.n_timers = hprof_cpu_g.cap_timers = 0;
}
