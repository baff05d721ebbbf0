/*
 * hprof_cpu_ring: the CPU engine's SIGPROF handler and the ring it writes (see
 * hprof_cpu_engine.h for the engine's files).
 *
 * Handler (async-signal-safe): it never allocates, never takes a lock, and touches only the
 * ring, atomics and libunwind's local unwinder. The stack is walked from the ucontext the
 * kernel hands the handler (unw_init_local2 with UNW_INIT_SIGNAL_FRAME), so the first frame is
 * the interrupted instruction and neither the handler nor the signal trampoline is ever seen.
 * The leaf is stored as the interrupted PC itself; callers as return address - 1 (inside the
 * call); a frame above a sigreturn trampoline (a nested signal handler's victim) is again an
 * interrupted PC. libunwind documents unw_init_local* and unw_step as signal-safe for local
 * unwinding: the locks it takes are taken with all signals blocked, so the handler cannot
 * interrupt its own thread inside them; it maps memory with mmap, not malloc. The first use
 * initialises libunwind, which start does beforehand (pre-warm). We never use unw_backtrace
 * here: its per-thread trace cache calls pthread_setspecific, which may calloc on a thread's
 * first use. libunwind finds unwind tables with dl_iterate_phdr, whose loader lock is
 * recursive: a signal on a thread inside dl_iterate_phdr or dlopen does not deadlock on it. Its
 * shared register-state cache is off (hprof_unwind.c says why: with it, such a handler waited
 * for the cache's lock while another thread's walk held it and waited for the loader lock).
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
 */
#include "hprof_cpu_engine.h"

#include <errno.h>
#include <string.h>

#include "hprof_unwind.h"

/* Read by the handler. */
struct cpu_ring *_Atomic hprof_cpu_live;
atomic_int hprof_cpu_active;
atomic_int hprof_cpu_forking;
_Atomic uint64_t hprof_cpu_samples, hprof_cpu_dropped, hprof_cpu_weight_sq;

__thread struct cpu_self *hprof_cpu_self __attribute__((tls_model("initial-exec")));

/* ---- the signal handler ---- */

/* Claim a ring slot and publish a record of weight periods, its stack unwound from the signal
 * context uc or (uc NULL) copied from pcs; the stack is also kept as self's latest (self may be
 * NULL), before the record is published and the slot may be reused. Only with hprof_cpu_active
 * held and ring live. 0, or -1 when the ring was full (the periods are counted as dropped). */
int hprof_cpu_ring_push(struct cpu_ring *ring, uint32_t weight, void *uc, const uintptr_t *pcs,
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
     * pending (see "Overruns" at the top of hprof_cpu_timers.c). */
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
    (void)hprof_cpu_ring_push(ring, weight, uc, NULL, 0, self);
out:
    atomic_fetch_sub(&hprof_cpu_active, 1);
    errno = saved_errno;
}

/* Install our SIGPROF handler, unless the program has one of its own. */
int hprof_cpu_install_handler(void)
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
