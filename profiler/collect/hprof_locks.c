/*
 * hprof_locks: pthread locks, interposed, for the mutex and block profiles (see hprof_locks.h
 * for what the profiles mean).
 *
 * Forwarding. The mutex and rwlock functions forward to glibc's own entry points under their
 * internal names (__pthread_mutex_lock and friends, exported by libc.so.6 as compat symbols of
 * the base version and bound here with .symver): no dlsym, so they work from the first lock the
 * dynamic loader or a constructor takes, before anything here is initialised. The functions
 * without such a name (condition variables, semaphores, the timed variants) are found with
 * dlsym(RTLD_NEXT) in our constructor, inside the guard (dlsym may allocate), or at their first
 * call if that comes earlier.
 *
 * Cost. pthread_mutex_lock and unlock look at the mutex's own lock word first (glibc's
 * __data.__lock, public in <bits/struct_mutex.h>: 0 free, 1 held, 2 held with waiters; robust
 * and PI mutexes keep the owner's TID), on the cache line glibc is about to take anyway: a free
 * mutex is locked at once, a release with nobody waiting unlocks at once, a compare and a
 * not-taken branch before the jump to glibc's own function, whether the profiles are on or off.
 * Only a lock word that says "held" (or "waiters", at unlock) reads the profiles' flag, and only
 * with a profile on does an acquisition that finds the mutex held (and is about to sleep in the
 * kernel) read the clock, register as a waiter and, once it has the lock, maybe record a block
 * sample. So an uncontended pair costs the same with the profiles on as off: one jump more than
 * glibc's (the interposer's unavoidable price; BENCHMARKS.md measures it). An earlier version
 * jumped through a function pointer (glibc's own function while off, a profiling path while
 * on): as cheap while off, but two indirect jumps per call while on, which cost 10% more time
 * per pair than this (bench_locks in one process against glibc's own functions, whose ratio is
 * what the instruction count did not show). The rwlock functions still jump through such a
 * pointer: their profiling path tries the lock first, and glibc's rwlock word is no public
 * contract. Condition variables and semaphores test a global byte; their waits are system
 * calls.

 * Blame (the mutex profile): waiters register in a small table keyed by lock address, with the
 * time they started waiting. A release that finds waiters for its lock takes the waiting they
 * accumulated since they started (or since the previous release, whichever is later), resets
 * their clocks to now, releases the lock, and then, sampled 1 in fraction, records that delay
 * against its own stack: the stack that held the lock while they waited, as Go records at
 * unlock. A waiter that leaves the table takes its own entry with it. Waiting that no release
 * saw (the holder released the lock inside pthread_cond_wait, which glibc does internally, not
 * through these functions) is not blamed on anyone; the waiter's block sample still counts it.
 *
 * The profiler's own locks never appear: every path checks the thread's guard depth
 * (hprof_internal_depth, the malloc layer's) and forwards at once inside the profiler, and the
 * tables here take no pthread lock at all (spinlocks held for a few dozen instructions, mmap'd
 * memory, no malloc), so recording never re-enters. Unwinding runs inside the guard, where
 * libunwind's own allocations and locks are the profiler's.
 *
 * Invariants and locks.
 *   - hprof_locks_on is written only under hprof_rates_lock, from the configured rates and the
 *     window count; readers load it relaxed (a stale read only delays a switch by a call).
 *   - A stripe spinlock guards its waiter slots; it is held for a search of 16 slots and never
 *     around another lock, a call that can block, or an unwind.
 *   - Stack records are published (release) after their key is written and never removed;
 *     their counters are atomics. hprof_stacks_lock serialises insertions only.
 *   - fork (the locks stage of hprof_fork.c's sequence): the child is single-threaded; its
 *     waiter table and spinlocks are reset (nobody in the child is waiting).
 */
#include "hprof_locks.h"

#include <dlfcn.h>
#include <errno.h>
#include <libunwind.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "hprof_collect.h"
#include "hprof_env.h"
#include "hprof_fork.h"
#include "hprof_hash.h"
#include "hprof_tcreate.h"
#include "hprof_unwind.h"
#include "lc_util.h"

#if defined(__x86_64__)
#define HPROF_GLIBC_BASE "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define HPROF_GLIBC_BASE "GLIBC_2.17"
#else
#error "hprof_locks binds glibc's internal pthread names of x86_64 or aarch64"
#endif

#if defined(__SANITIZE_THREAD__)
#define HPROF_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HPROF_UNDER_TSAN 1
#endif
#endif

#ifndef HPROF_UNDER_TSAN
/* glibc's own functions under their internal names. */
#define HPROF_REAL(ret, name, sym, public_name, type)                                              \
    extern ret name(type) __attribute__((noplt));                                                  \
    __asm__(".symver " #name ", " sym "@" HPROF_GLIBC_BASE)
#else
/* Compiled with ThreadSanitizer (the interposer's TSan test, tests/profiler_collect/tsan_locks.c):
 * the next definition of the public name, which is TSan's interceptor, so that TSan sees every
 * lock and unlock the program makes through us (glibc's own function would hide them from it
 * and every section they protect would look like a race). Looked up at the first call. */
#define HPROF_REAL(ret, name, sym, public_name, type)                                              \
    static ret name(type arg)                                                                      \
    {                                                                                              \
        static ret (*_Atomic fn)(type);                                                            \
        ret (*f)(type) = atomic_load_explicit(&fn, memory_order_acquire);                          \
        if (f == NULL) {                                                                           \
            f = (ret(*)(type))dlsym(RTLD_NEXT, public_name);                                       \
            if (f == NULL)                                                                         \
                abort();                                                                           \
            atomic_store_explicit(&fn, f, memory_order_release);                                   \
        }                                                                                          \
        return f(arg);                                                                             \
    }
#endif
HPROF_REAL(int, hprof_real_mutex_lock, "__pthread_mutex_lock", "pthread_mutex_lock",
           pthread_mutex_t *);
HPROF_REAL(int, hprof_real_mutex_trylock, "__pthread_mutex_trylock", "pthread_mutex_trylock",
           pthread_mutex_t *);
HPROF_REAL(int, hprof_real_mutex_unlock, "__pthread_mutex_unlock", "pthread_mutex_unlock",
           pthread_mutex_t *);
HPROF_REAL(int, hprof_real_rwlock_rdlock, "__pthread_rwlock_rdlock", "pthread_rwlock_rdlock",
           pthread_rwlock_t *);
HPROF_REAL(int, hprof_real_rwlock_wrlock, "__pthread_rwlock_wrlock", "pthread_rwlock_wrlock",
           pthread_rwlock_t *);
HPROF_REAL(int, hprof_real_rwlock_tryrdlock, "__pthread_rwlock_tryrdlock",
           "pthread_rwlock_tryrdlock", pthread_rwlock_t *);
HPROF_REAL(int, hprof_real_rwlock_trywrlock, "__pthread_rwlock_trywrlock",
           "pthread_rwlock_trywrlock", pthread_rwlock_t *);
HPROF_REAL(int, hprof_real_rwlock_unlock, "__pthread_rwlock_unlock", "pthread_rwlock_unlock",
           pthread_rwlock_t *);

/* The profiler's code section (see hprof_malloc.c): unwinding skips every frame in it. */
#define HPROF_TEXT __attribute__((section("hprof_text")))
extern const char __start_hprof_text[] __attribute__((visibility("hidden")));
extern const char __stop_hprof_text[] __attribute__((visibility("hidden")));

#define ON_MUTEX 1u
#define ON_BLOCK 2u

#define WAIT_STRIPES      64         /* spinlocked groups of waiter slots (one cache line lock) */
#define WAIT_SLOTS        16         /* locks with waiters per stripe */
#define STACK_HEADS       4096u      /* hash chains of the stack table (power of two) */
#define STACK_ARENA_BYTES (1u << 18) /* bytes mmap'd at a time for stack records */
#define COUNT_SCALE       1000       /* counts are kept in thousandths of an event */
#define SKIP_SLACK        8          /* frames: room for our own frames above the 64 kept */

/* ---- rates ---- */

/* The rwlock functions jump through these: glibc's own while the profiles are off (one indirect
 * jump is all the interposer adds), the profiling paths while they are on. */
typedef int (*rwlock_fn)(pthread_rwlock_t *);
static _Atomic(rwlock_fn) target_rwlock_rdlock = hprof_real_rwlock_rdlock;
static _Atomic(rwlock_fn) target_rwlock_wrlock = hprof_real_rwlock_wrlock;
static _Atomic(rwlock_fn) target_rwlock_unlock = hprof_real_rwlock_unlock;

static _Atomic unsigned char hprof_locks_on; /* ON_MUTEX | ON_BLOCK: the fast paths' flag */
static _Atomic uint64_t hprof_fraction;      /* in effect: 1 in N contended releases; 0 off */
static _Atomic uint64_t hprof_rate_ns;       /* in effect: ns of waiting per sample; 0 off */
static uint64_t hprof_cfg_fraction, hprof_cfg_rate_ns; /* configured; under hprof_rates_lock */
static int hprof_windows;                              /* open windows; under hprof_rates_lock */
static atomic_flag hprof_rates_lock = ATOMIC_FLAG_INIT;

/* ---- statistics ---- */

static _Atomic uint64_t st_contended, st_waits, st_mutex_samples, st_block_samples, st_dropped;
static _Atomic uint64_t st_stacks, st_mapped;

/* ---- the other real functions, found by dlsym ---- */

typedef int (*cond_wait_fn)(pthread_cond_t *, pthread_mutex_t *);
typedef int (*cond_timedwait_fn)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
typedef int (*cond_clockwait_fn)(pthread_cond_t *, pthread_mutex_t *, clockid_t,
                                 const struct timespec *);
typedef int (*mutex_timedlock_fn)(pthread_mutex_t *, const struct timespec *);
typedef int (*rwlock_timed_fn)(pthread_rwlock_t *, const struct timespec *);
typedef int (*sem_wait_fn)(sem_t *);
typedef int (*sem_timedwait_fn)(sem_t *, const struct timespec *);

enum real_fn {
    REAL_COND_WAIT,
    REAL_COND_TIMEDWAIT,
    REAL_COND_CLOCKWAIT,
    REAL_MUTEX_TIMEDLOCK,
    REAL_RWLOCK_TIMEDRDLOCK,
    REAL_RWLOCK_TIMEDWRLOCK,
    REAL_SEM_WAIT,
    REAL_SEM_TIMEDWAIT,
    REAL_SEM_TRYWAIT,
    REAL_N
};
static const char *const real_names[REAL_N] = {
    "pthread_cond_wait",
    "pthread_cond_timedwait",
    "pthread_cond_clockwait",
    "pthread_mutex_timedlock",
    "pthread_rwlock_timedrdlock",
    "pthread_rwlock_timedwrlock",
    "sem_wait",
    "sem_timedwait",
    "sem_trywait",
};
static void *_Atomic real_fns[REAL_N];

static void *real_fn(enum real_fn which)
{
    void *f = atomic_load_explicit(&real_fns[which], memory_order_acquire);
    if (__builtin_expect(f != NULL, 1))
        return f;
    hprof_internal_enter();
    f = dlsym(RTLD_NEXT, real_names[which]);
    hprof_internal_exit();
    if (f == NULL) {
        hprof_log("cannot find glibc's %s (dlsym)\n", real_names[which]);
        abort(); /* a lock function with nothing to forward to cannot do its job */
    }
    atomic_store_explicit(&real_fns[which], f, memory_order_release);
    return f;
}

/* ---- per-thread state ---- */

struct lock_thread {
    uint64_t rng; /* splitmix64; 0 until first used */
};
static __thread struct lock_thread lt __attribute__((tls_model("initial-exec")));

static HPROF_TEXT uint64_t next_random(void)
{
    if (lt.rng == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        hprof_rng_seed(&lt.rng, (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)&lt,
                       (uint64_t)gettid());
    }
    return hprof_rng_next(&lt.rng);
}

static inline int64_t now_ns(void)
{
    return lc_monotonic_ns();
}

static void spin_lock(atomic_flag *f)
{
    for (unsigned spins = 0; atomic_flag_test_and_set_explicit(f, memory_order_acquire); spins++)
        if (spins > 64)
            sched_yield();
}

static void spin_unlock(atomic_flag *f)
{
    atomic_flag_clear_explicit(f, memory_order_release);
}

/* ---- the stack table ---- */

struct lock_stack {
    struct lock_stack *next;  /* hash chain; immutable once published */
    struct lock_stack *older; /* every record, newest first; immutable once published */
    uint64_t hash, id;
    int profile, depth;
    _Atomic int64_t count;    /* thousandths of an event */
    _Atomic int64_t delay_ns; /* estimated total wait */
    uintptr_t pcs[];
};

static struct lock_stack *_Atomic stack_heads[STACK_HEADS];
static struct lock_stack *_Atomic stack_all;
static atomic_flag stack_lock = ATOMIC_FLAG_INIT;
static char *arena_cur, *arena_end; /* under stack_lock */
static uint64_t next_id = 1;        /* under stack_lock */

static HPROF_TEXT uint64_t stack_hash(int profile, const uintptr_t *pcs, int depth)
{
    return hprof_hash_pcs((uint64_t)profile, pcs, (size_t)depth);
}

static HPROF_TEXT struct lock_stack *stack_find(struct lock_stack *s, uint64_t hash, int profile,
                                                const uintptr_t *pcs, int depth)
{
    for (; s != NULL; s = atomic_load_explicit(&s->next, memory_order_acquire))
        if (s->hash == hash && s->profile == profile && s->depth == depth &&
            memcmp(s->pcs, pcs, (size_t)depth * sizeof(*pcs)) == 0)
            return s;
    return NULL;
}

static HPROF_TEXT struct lock_stack *stack_intern(int profile, const uintptr_t *pcs, int depth)
{
    uint64_t hash = stack_hash(profile, pcs, depth);
    _Atomic(struct lock_stack *) *head = &stack_heads[hash & (STACK_HEADS - 1)];
    struct lock_stack *s =
        stack_find(atomic_load_explicit(head, memory_order_acquire), hash, profile, pcs, depth);
    if (s != NULL)
        return s;
    spin_lock(&stack_lock);
    s = stack_find(atomic_load_explicit(head, memory_order_acquire), hash, profile, pcs, depth);
    if (s == NULL) {
        size_t bytes = (sizeof(*s) + (size_t)depth * sizeof(*pcs) + 63) & ~(size_t)63;
        if (arena_cur == NULL || (size_t)(arena_end - arena_cur) < bytes) {
            void *p = mmap(NULL, STACK_ARENA_BYTES, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) {
                spin_unlock(&stack_lock);
                return NULL;
            }
            atomic_fetch_add_explicit(&st_mapped, STACK_ARENA_BYTES, memory_order_relaxed);
            arena_cur = p;
            arena_end = arena_cur + STACK_ARENA_BYTES;
        }
        s = (struct lock_stack *)arena_cur;
        arena_cur += bytes;
        s->hash = hash;
        s->id = next_id++;
        s->profile = profile;
        s->depth = depth;
        memcpy(s->pcs, pcs, (size_t)depth * sizeof(*pcs));
        s->next = atomic_load_explicit(head, memory_order_relaxed);
        s->older = atomic_load_explicit(&stack_all, memory_order_relaxed);
        atomic_store_explicit(head, s, memory_order_release);
        atomic_store_explicit(&stack_all, s, memory_order_release);
        atomic_fetch_add_explicit(&st_stacks, 1, memory_order_relaxed);
    }
    spin_unlock(&stack_lock);
    return s;
}

/* The caller's stack, our own frames skipped (those up to and including the last one in
 * hprof_text), each frame a return address - 1. */
static HPROF_TEXT __attribute__((noinline)) int capture(uintptr_t *pcs)
{
    void *raw[HPROF_MAX_DEPTH + SKIP_SLACK];
    hprof_unwind_init();
    int n = unw_backtrace(raw, (int)(sizeof(raw) / sizeof(raw[0])));
    int i = 0;
    while (i < n && !((const char *)raw[i] >= __start_hprof_text &&
                      (const char *)raw[i] < __stop_hprof_text))
        i++;
    if (i == n)
        i = 0;
    while (i < n && (const char *)raw[i] >= __start_hprof_text &&
           (const char *)raw[i] < __stop_hprof_text)
        i++;
    int depth = 0;
    for (; i < n && depth < HPROF_MAX_DEPTH; i++)
        pcs[depth++] = (uintptr_t)raw[i] - 1;
    return depth;
}

static HPROF_TEXT __attribute__((noinline)) void record(int profile, int64_t count_milli,
                                                        int64_t delay_ns)
{
    int saved_errno = errno;
    if (hprof_fork_loader_enter(0) != 0) { /* a fork is being prepared: no unwinding */
        atomic_fetch_add_explicit(&st_dropped, 1, memory_order_relaxed);
        errno = saved_errno;
        return;
    }
    hprof_internal_enter();
    uintptr_t pcs[HPROF_MAX_DEPTH];
    int depth = capture(pcs);
    hprof_fork_loader_leave();
    struct lock_stack *s = stack_intern(profile, pcs, depth);
    if (s != NULL) {
        atomic_fetch_add_explicit(&s->count, count_milli, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->delay_ns, delay_ns, memory_order_relaxed);
        atomic_fetch_add_explicit(profile == HPROF_LOCK_MUTEX ? &st_mutex_samples
                                                              : &st_block_samples,
                                  1, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&st_dropped, 1, memory_order_relaxed);
    }
    hprof_internal_exit();
    errno = saved_errno;
}

/* A release that ended `delay` ns of waiting: sampled 1 in fraction, weighted by fraction. */
static HPROF_TEXT void mutex_event(int64_t delay)
{
    uint64_t fraction = atomic_load_explicit(&hprof_fraction, memory_order_relaxed);
    if (fraction == 0 || delay <= 0)
        return;
    if (fraction > 1 && next_random() % fraction != 0)
        return;
    record(HPROF_LOCK_MUTEX, (int64_t)fraction * COUNT_SCALE, (int64_t)fraction * delay);
}

/* A wait of `delay` ns: kept always from rate on, else with probability delay / rate and then
 * weighted rate / delay (Go's blocksampled and saveblockevent). */
static HPROF_TEXT void block_event(int64_t delay)
{
    uint64_t rate = atomic_load_explicit(&hprof_rate_ns, memory_order_relaxed);
    if (rate == 0)
        return;
    if (delay < 1)
        delay = 1;
    if ((uint64_t)delay >= rate) {
        record(HPROF_LOCK_BLOCK, COUNT_SCALE, delay);
        return;
    }
    if (next_random() % rate > (uint64_t)delay)
        return;
    record(HPROF_LOCK_BLOCK, (int64_t)((double)rate / (double)delay * COUNT_SCALE), (int64_t)rate);
}

/* ---- the waiter table ---- */

struct wait_slot {
    const void *addr; /* the lock; NULL when the slot is free */
    int64_t n;        /* waiters registered */
    int64_t sum;      /* sum of their effective start times (ns) */
    int64_t reset;    /* last release that took their waiting (ns) */
};

static struct {
    _Alignas(64) atomic_flag lock;
    struct wait_slot slot[WAIT_SLOTS];
} waiters[WAIT_STRIPES];
static _Atomic int64_t rw_waiters; /* rwlock waiters registered (rwlock releases look if > 0) */

static inline unsigned stripe_of(const void *addr)
{
    return (unsigned)(hprof_hash_mix64((uint64_t)(uintptr_t)addr) >> 58); /* WAIT_STRIPES: 64 */
}

/* A thread about to wait for the lock at addr. Returns 1 if registered (then wait_leave). */
static HPROF_TEXT int wait_enter(const void *addr, int64_t t0)
{
    unsigned st = stripe_of(addr);
    spin_lock(&waiters[st].lock);
    struct wait_slot *free_slot = NULL, *slot = NULL;
    for (int i = 0; i < WAIT_SLOTS; i++) {
        struct wait_slot *s = &waiters[st].slot[i];
        if (s->addr == addr) {
            slot = s;
            break;
        }
        if (s->addr == NULL && free_slot == NULL)
            free_slot = s;
    }
    if (slot == NULL && free_slot != NULL) {
        slot = free_slot;
        slot->addr = addr;
        slot->n = 0;
        slot->sum = 0;
        slot->reset = t0;
    }
    if (slot != NULL) {
        slot->n++;
        slot->sum += t0;
    }
    spin_unlock(&waiters[st].lock);
    if (slot == NULL)
        atomic_fetch_add_explicit(&st_dropped, 1, memory_order_relaxed);
    return slot != NULL;
}

static HPROF_TEXT void wait_leave(const void *addr, int64_t t0)
{
    unsigned st = stripe_of(addr);
    spin_lock(&waiters[st].lock);
    for (int i = 0; i < WAIT_SLOTS; i++) {
        struct wait_slot *s = &waiters[st].slot[i];
        if (s->addr == addr) {
            s->sum -= t0 > s->reset ? t0 : s->reset;
            if (--s->n == 0)
                s->addr = NULL;
            break;
        }
    }
    spin_unlock(&waiters[st].lock);
}

/* A release of the lock at addr: the waiting its waiters did since they started or since the
 * previous release, whichever is later; their clocks restart now. -1 when nobody waits. */
static HPROF_TEXT int64_t wait_take(const void *addr, int64_t now)
{
    unsigned st = stripe_of(addr);
    int64_t delay = -1;
    spin_lock(&waiters[st].lock);
    for (int i = 0; i < WAIT_SLOTS; i++) {
        struct wait_slot *s = &waiters[st].slot[i];
        if (s->addr == addr) {
            delay = s->n * now - s->sum;
            s->sum = s->n * now;
            s->reset = now;
            break;
        }
    }
    spin_unlock(&waiters[st].lock);
    return delay;
}

/* ---- the slow paths ---- */

struct wait {
    const void *addr;
    int64_t t0;
    int registered;
    int rw;
};

static HPROF_TEXT void wait_begin(struct wait *w, const void *addr, int rw)
{
    atomic_fetch_add_explicit(&st_contended, 1, memory_order_relaxed);
    w->addr = addr;
    w->rw = rw;
    w->t0 = now_ns();
    w->registered = 0;
    if (atomic_load_explicit(&hprof_fraction, memory_order_relaxed) != 0) {
        if (rw)
            atomic_fetch_add(&rw_waiters, 1);
        w->registered = wait_enter(addr, w->t0);
        if (!w->registered && rw)
            atomic_fetch_sub(&rw_waiters, 1);
    }
}

static HPROF_TEXT void wait_end(struct wait *w)
{
    int64_t t1 = now_ns();
    if (w->registered) {
        wait_leave(w->addr, w->t0);
        if (w->rw)
            atomic_fetch_sub(&rw_waiters, 1);
    }
    block_event(t1 - w->t0);
}

static inline int inside_profiler(void)
{
    return hprof_internal_depth() > 0;
}

/* glibc's lock word (__data.__lock, public in <bits/struct_mutex.h>): 0 when the mutex is free,
 * 1 held, 2 held with waiters; robust and PI mutexes keep the owner's TID (and a waiters bit). */
static inline int mutex_word(pthread_mutex_t *m)
{
    /* A plain read, not an atomic one, so that the compiler folds it into the compare
     * (cmpl $0, (%rdi)): it is a hint that glibc's own atomic operation then acts on, and a
     * stale value only sends one call down the other path. */
    return m->__data.__lock;
}

static HPROF_TEXT __attribute__((noinline)) int mutex_lock_contended(pthread_mutex_t *m)
{
    int rc = hprof_real_mutex_trylock(m);
    if (rc != EBUSY || inside_profiler())
        return rc != EBUSY ? rc : hprof_real_mutex_lock(m);
    struct wait w;
    wait_begin(&w, m, 0);
    rc = hprof_real_mutex_lock(m);
    wait_end(&w);
    return rc;
}

static HPROF_TEXT __attribute__((noinline)) int mutex_unlock_contended(pthread_mutex_t *m)
{
    if (inside_profiler())
        return hprof_real_mutex_unlock(m);
    int64_t delay = wait_take(m, now_ns());
    int rc = hprof_real_mutex_unlock(m);
    if (rc == 0 && delay > 0)
        mutex_event(delay);
    return rc;
}

static HPROF_TEXT __attribute__((noinline)) int rwlock_lock_slow(pthread_rwlock_t *rw, int write)
{
    if (inside_profiler())
        return write ? hprof_real_rwlock_wrlock(rw) : hprof_real_rwlock_rdlock(rw);
    int rc = write ? hprof_real_rwlock_trywrlock(rw) : hprof_real_rwlock_tryrdlock(rw);
    if (rc != EBUSY)
        return rc;
    struct wait w;
    wait_begin(&w, rw, 1);
    rc = write ? hprof_real_rwlock_wrlock(rw) : hprof_real_rwlock_rdlock(rw);
    wait_end(&w);
    return rc;
}

static HPROF_TEXT int rwlock_rdlock_on(pthread_rwlock_t *rw)
{
    return rwlock_lock_slow(rw, 0);
}

static HPROF_TEXT int rwlock_wrlock_on(pthread_rwlock_t *rw)
{
    return rwlock_lock_slow(rw, 1);
}

static HPROF_TEXT __attribute__((noinline)) int rwlock_unlock_on(pthread_rwlock_t *rw)
{
    if (atomic_load_explicit(&rw_waiters, memory_order_relaxed) <= 0 || inside_profiler())
        return hprof_real_rwlock_unlock(rw);
    int64_t delay = wait_take(rw, now_ns());
    int rc = hprof_real_rwlock_unlock(rw);
    if (rc == 0 && delay > 0)
        mutex_event(delay);
    return rc;
}

static inline int block_on(void)
{
    return (atomic_load_explicit(&hprof_locks_on, memory_order_relaxed) & ON_BLOCK) != 0 &&
           !inside_profiler();
}

/* ---- the interposed functions ---- */

/* The one test on the fast paths: a global byte, predicted off. */
#define PROFILING_ON()                                                                             \
    __builtin_expect(atomic_load_explicit(&hprof_locks_on, memory_order_relaxed) != 0, 0)

/* A mutex that looks free is locked as glibc would, whatever the profiles; one that is held goes
 * to the contended path if a profile is on, which tries it once more and otherwise waits,
 * timed. A mutex taken by another thread between the look and glibc's own attempt waits
 * untimed: a miss of a few nanoseconds' window, the price of an uncontended lock that costs
 * three instructions. */
HPROF_TEXT int pthread_mutex_lock(pthread_mutex_t *m)
{
    if (__builtin_expect(mutex_word(m) != 0, 0) &&
        atomic_load_explicit(&hprof_locks_on, memory_order_relaxed) != 0)
        return mutex_lock_contended(m);
    return hprof_real_mutex_lock(m);
}

HPROF_TEXT int pthread_mutex_trylock(pthread_mutex_t *m)
{
    return hprof_real_mutex_trylock(m); /* never waits: nothing to profile */
}

/* A lock word of 0 or 1 means nobody waits (for the mutex kinds that use 2 for waiters; the
 * others keep a TID there, and always look in the waiter table while the mutex profile is on). */
HPROF_TEXT int pthread_mutex_unlock(pthread_mutex_t *m)
{
    if (__builtin_expect((unsigned)mutex_word(m) > 1, 0) &&
        (atomic_load_explicit(&hprof_locks_on, memory_order_relaxed) & ON_MUTEX) != 0)
        return mutex_unlock_contended(m);
    return hprof_real_mutex_unlock(m);
}

HPROF_TEXT int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abstime)
{
    mutex_timedlock_fn real = (mutex_timedlock_fn)real_fn(REAL_MUTEX_TIMEDLOCK);
    if (!PROFILING_ON() || inside_profiler())
        return real(m, abstime);
    int rc = hprof_real_mutex_trylock(m);
    if (rc != EBUSY)
        return rc;
    struct wait w;
    wait_begin(&w, m, 0);
    rc = real(m, abstime);
    wait_end(&w);
    return rc;
}

HPROF_TEXT int pthread_rwlock_rdlock(pthread_rwlock_t *rw)
{
    return atomic_load_explicit(&target_rwlock_rdlock, memory_order_relaxed)(rw);
}

HPROF_TEXT int pthread_rwlock_wrlock(pthread_rwlock_t *rw)
{
    return atomic_load_explicit(&target_rwlock_wrlock, memory_order_relaxed)(rw);
}

HPROF_TEXT int pthread_rwlock_tryrdlock(pthread_rwlock_t *rw)
{
    return hprof_real_rwlock_tryrdlock(rw);
}

HPROF_TEXT int pthread_rwlock_trywrlock(pthread_rwlock_t *rw)
{
    return hprof_real_rwlock_trywrlock(rw);
}

static HPROF_TEXT int rwlock_timed(pthread_rwlock_t *rw, const struct timespec *abstime, int write)
{
    rwlock_timed_fn real =
        (rwlock_timed_fn)real_fn(write ? REAL_RWLOCK_TIMEDWRLOCK : REAL_RWLOCK_TIMEDRDLOCK);
    if (!PROFILING_ON() || inside_profiler())
        return real(rw, abstime);
    int rc = write ? hprof_real_rwlock_trywrlock(rw) : hprof_real_rwlock_tryrdlock(rw);
    if (rc != EBUSY)
        return rc;
    struct wait w;
    wait_begin(&w, rw, 1);
    rc = real(rw, abstime);
    wait_end(&w);
    return rc;
}

HPROF_TEXT int pthread_rwlock_timedrdlock(pthread_rwlock_t *rw, const struct timespec *abstime)
{
    return rwlock_timed(rw, abstime, 0);
}

HPROF_TEXT int pthread_rwlock_timedwrlock(pthread_rwlock_t *rw, const struct timespec *abstime)
{
    return rwlock_timed(rw, abstime, 1);
}

HPROF_TEXT int pthread_rwlock_unlock(pthread_rwlock_t *rw)
{
    return atomic_load_explicit(&target_rwlock_unlock, memory_order_relaxed)(rw);
}

/* A wait on a condition variable or semaphore: its whole length is blocking (block profile). */
#define TIMED_WAIT(call)                                                                           \
    do {                                                                                           \
        if (!block_on())                                                                           \
            return call;                                                                           \
        atomic_fetch_add_explicit(&st_waits, 1, memory_order_relaxed);                             \
        int64_t t0 = now_ns();                                                                     \
        int rc_ = call;                                                                            \
        int saved_errno_ = errno;                                                                  \
        block_event(now_ns() - t0);                                                                \
        errno = saved_errno_;                                                                      \
        return rc_;                                                                                \
    } while (0)

HPROF_TEXT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    cond_wait_fn real = (cond_wait_fn)real_fn(REAL_COND_WAIT);
    TIMED_WAIT(real(c, m));
}

HPROF_TEXT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                      const struct timespec *abstime)
{
    cond_timedwait_fn real = (cond_timedwait_fn)real_fn(REAL_COND_TIMEDWAIT);
    TIMED_WAIT(real(c, m, abstime));
}

HPROF_TEXT int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock,
                                      const struct timespec *abstime)
{
    cond_clockwait_fn real = (cond_clockwait_fn)real_fn(REAL_COND_CLOCKWAIT);
    TIMED_WAIT(real(c, m, clock, abstime));
}

HPROF_TEXT int sem_wait(sem_t *s)
{
    sem_wait_fn real = (sem_wait_fn)real_fn(REAL_SEM_WAIT);
    if (!block_on())
        return real(s);
    /* Only a wait that sleeps is blocking: a semaphore with a token is taken at once. */
    sem_wait_fn try = (sem_wait_fn)real_fn(REAL_SEM_TRYWAIT);
    int saved_errno = errno;
    if (try(s) == 0)
        return 0;
    if (errno != EAGAIN)
        return -1;
    errno = saved_errno;
    TIMED_WAIT(real(s));
}

HPROF_TEXT int sem_timedwait(sem_t *s, const struct timespec *abstime)
{
    sem_timedwait_fn real = (sem_timedwait_fn)real_fn(REAL_SEM_TIMEDWAIT);
    if (!block_on())
        return real(s, abstime);
    sem_wait_fn try = (sem_wait_fn)real_fn(REAL_SEM_TRYWAIT);
    int saved_errno = errno;
    if (try(s) == 0)
        return 0;
    if (errno != EAGAIN)
        return -1;
    errno = saved_errno;
    TIMED_WAIT(real(s, abstime));
}

/* ---- rates, windows, snapshots ---- */

/* Under hprof_rates_lock: publish the rates in effect and the fast paths' flag. */
static void rates_apply(void)
{
    uint64_t fraction = hprof_cfg_fraction, rate = hprof_cfg_rate_ns;
    if (hprof_windows > 0) {
        if (fraction == 0)
            fraction = HPROF_LOCKS_WINDOW_FRACTION;
        if (rate == 0)
            rate = HPROF_LOCKS_WINDOW_RATE_NS;
    }
    atomic_store(&hprof_fraction, fraction);
    atomic_store(&hprof_rate_ns, rate);
    atomic_store(&hprof_locks_on,
                 (unsigned char)((fraction ? ON_MUTEX : 0) | (rate ? ON_BLOCK : 0)));
    /* Acquisitions are watched when either profile is on (a wait is a block sample, and the
     * mutex profile needs its waiters registered); releases only for the mutex profile. */
    bool any = fraction != 0 || rate != 0;
    atomic_store(&target_rwlock_rdlock, any ? rwlock_rdlock_on : hprof_real_rwlock_rdlock);
    atomic_store(&target_rwlock_wrlock, any ? rwlock_wrlock_on : hprof_real_rwlock_wrlock);
    atomic_store(&target_rwlock_unlock, fraction ? rwlock_unlock_on : hprof_real_rwlock_unlock);
}

void hprof_locks_set_rates(uint64_t fraction, uint64_t rate_ns)
{
    spin_lock(&hprof_rates_lock);
    hprof_cfg_fraction = fraction;
    hprof_cfg_rate_ns = rate_ns;
    rates_apply();
    spin_unlock(&hprof_rates_lock);
}

void hprof_locks_rates(uint64_t *fraction, uint64_t *rate_ns)
{
    *fraction = atomic_load(&hprof_fraction);
    *rate_ns = atomic_load(&hprof_rate_ns);
}

void hprof_locks_window_begin(void)
{
    spin_lock(&hprof_rates_lock);
    hprof_windows++;
    rates_apply();
    spin_unlock(&hprof_rates_lock);
}

void hprof_locks_window_end(void)
{
    spin_lock(&hprof_rates_lock);
    if (hprof_windows > 0)
        hprof_windows--;
    rates_apply();
    spin_unlock(&hprof_rates_lock);
}

static int by_delay(const void *a, const void *b)
{
    const struct hprof_lock_record *x = a, *y = b;
    if (x->delay_ns != y->delay_ns)
        return x->delay_ns > y->delay_ns ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int hprof_locks_snapshot(enum hprof_lock_profile profile, struct hprof_lock_snapshot *out)
{
    memset(out, 0, sizeof(*out));
    out->profile = profile;
    out->time_ns = lc_realtime_ns();
    out->period = profile == HPROF_LOCK_MUTEX   ? atomic_load(&hprof_fraction)
                  : profile == HPROF_LOCK_BLOCK ? atomic_load(&hprof_rate_ns)
                                                : 1;
    size_t cap = 0;
    for (struct lock_stack *s = atomic_load_explicit(&stack_all, memory_order_acquire); s != NULL;
         s = s->older)
        cap += s->profile == (int)profile;
    hprof_internal_enter();
    out->v = calloc(cap ? cap : 1, sizeof(*out->v));
    hprof_internal_exit();
    if (out->v == NULL) {
        errno = ENOMEM;
        return -1;
    }
    /* Records published after the count above are left for the next snapshot. */
    size_t n = 0;
    for (struct lock_stack *s = atomic_load_explicit(&stack_all, memory_order_acquire);
         s != NULL && n < cap; s = s->older) {
        if (s->profile != (int)profile)
            continue;
        struct hprof_lock_record *r = &out->v[n];
        int64_t count = atomic_load_explicit(&s->count, memory_order_relaxed);
        r->delay_ns = atomic_load_explicit(&s->delay_ns, memory_order_relaxed);
        if (count <= 0)
            continue; /* interned, not yet counted; threadcreate: none of its threads alive */
        r->id = s->id;
        r->count = (double)count / COUNT_SCALE;
        r->depth = s->depth;
        memcpy(r->pcs, s->pcs, (size_t)s->depth * sizeof(uintptr_t));
        n++;
    }
    out->n = n;
    qsort(out->v, n, sizeof(*out->v), by_delay);
    return 0;
}

void hprof_locks_snapshot_release(struct hprof_lock_snapshot *snapshot)
{
    hprof_internal_enter();
    free(snapshot->v);
    hprof_internal_exit();
    snapshot->v = NULL;
    snapshot->n = 0;
}

int hprof_locks_delta(const struct hprof_lock_snapshot *p0, const struct hprof_lock_snapshot *p1,
                      struct hprof_lock_snapshot *out)
{
    *out = *p1;
    out->n = 0;
    uint64_t max_id = 0;
    for (size_t i = 0; i < p0->n; i++)
        if (p0->v[i].id > max_id)
            max_id = p0->v[i].id;
    hprof_internal_enter();
    out->v = calloc(p1->n ? p1->n : 1, sizeof(*out->v));
    size_t *at = calloc(max_id + 1, sizeof(*at)); /* id -> index in p0 + 1 */
    hprof_internal_exit();
    if (out->v == NULL || at == NULL) {
        hprof_internal_enter();
        free(out->v);
        free(at);
        hprof_internal_exit();
        out->v = NULL;
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < p0->n; i++)
        at[p0->v[i].id] = i + 1;
    for (size_t i = 0; i < p1->n; i++) {
        struct hprof_lock_record r = p1->v[i];
        if (r.id <= max_id && at[r.id] != 0) {
            const struct hprof_lock_record *old = &p0->v[at[r.id] - 1];
            r.count -= old->count;
            r.delay_ns -= old->delay_ns;
        }
        if (r.delay_ns == 0 && r.count < 0.5 / COUNT_SCALE)
            continue;
        out->v[out->n++] = r;
    }
    qsort(out->v, out->n, sizeof(*out->v), by_delay);
    hprof_internal_enter();
    free(at);
    hprof_internal_exit();
    return 0;
}

void hprof_locks_get_stats(struct hprof_lock_stats *out)
{
    out->contended = atomic_load(&st_contended);
    out->waits = atomic_load(&st_waits);
    out->mutex_samples = atomic_load(&st_mutex_samples);
    out->block_samples = atomic_load(&st_block_samples);
    out->dropped = atomic_load(&st_dropped);
    out->stacks = atomic_load(&st_stacks);
    out->mapped_bytes = atomic_load(&st_mapped);
}

/* ---- start and fork ---- */

static void threadcreate_atfork_child(void);

/* The locks stage of the fork sequence (hprof_fork.c): nothing is held across fork. */
static void locks_atfork_child(void)
{
    /* The child has one thread, which is not waiting: no waiters, no lock held. */
    memset(waiters, 0, sizeof(waiters));
    atomic_store(&rw_waiters, 0);
    atomic_flag_clear(&stack_lock);
    atomic_flag_clear(&hprof_rates_lock);
    threadcreate_atfork_child();
}

/* ---- threadcreate: the stacks that created the live threads ----
 *
 * pthread_create's hooks (hprof_tcreate.h). on_create (the creating thread, inside the guard)
 * interns the creator's stack and hands the record to the new thread as its token; the thread
 * counts itself in on_start and out in on_exit, so a record's count is the number of its
 * threads that are running now, and a stack whose threads have all ended drops out of the
 * profile (a count of 0 is skipped by the snapshot). Go's threadcreate walks the runtime's list
 * of threads (allm), which loses a thread only when it exits, and Go's rarely do: in practice
 * it counts every thread ever made. A C program's threads come and go, and what its user asks
 * is where the threads it has now came from (hprof_tcreate_count keeps the total ever made).
 * A thread made between on_create and its on_start is not counted yet: a window of one
 * scheduling delay. tc_self is the calling thread's record, for the fork child: it has one
 * thread, so every record is reset and that thread, if it was made by pthread_create, counted
 * back. */
static _Atomic int64_t tc_live; /* threads counted in some record */
static __thread struct lock_stack *tc_self __attribute__((tls_model("initial-exec")));

static uintptr_t threadcreate_on_create(const uintptr_t *pcs, int depth)
{
    struct lock_stack *s = stack_intern(HPROF_THREADCREATE, pcs, depth);
    if (s == NULL)
        atomic_fetch_add_explicit(&st_dropped, 1, memory_order_relaxed);
    return (uintptr_t)s;
}

static void threadcreate_on_start(uintptr_t token)
{
    struct lock_stack *s = (struct lock_stack *)token;
    if (s == NULL)
        return; /* no room for its stack, or made before the hook was registered */
    tc_self = s;
    atomic_fetch_add_explicit(&s->count, COUNT_SCALE, memory_order_relaxed);
    atomic_fetch_add_explicit(&tc_live, 1, memory_order_relaxed);
}

static void threadcreate_on_exit(uintptr_t token)
{
    struct lock_stack *s = (struct lock_stack *)token;
    if (s == NULL || tc_self != s)
        return;
    tc_self = NULL;
    atomic_fetch_sub_explicit(&s->count, COUNT_SCALE, memory_order_relaxed);
    atomic_fetch_sub_explicit(&tc_live, 1, memory_order_relaxed);
}

/* The fork child's one thread: the parent's other threads are not in it. */
static void threadcreate_atfork_child(void)
{
    for (struct lock_stack *s = atomic_load_explicit(&stack_all, memory_order_acquire); s != NULL;
         s = s->older)
        if (s->profile == HPROF_THREADCREATE)
            atomic_store_explicit(&s->count, 0, memory_order_relaxed);
    atomic_store(&tc_live, 0);
    if (tc_self != NULL) {
        atomic_store_explicit(&tc_self->count, COUNT_SCALE, memory_order_relaxed);
        atomic_store(&tc_live, 1);
    }
}

uint64_t hprof_threadcreate_total(void)
{
    int64_t n = atomic_load_explicit(&tc_live, memory_order_relaxed);
    return n > 0 ? (uint64_t)n : 0;
}

static uint64_t env_rate(const char *name)
{
    const char *s = hprof_env_get(name);
    uint64_t v;
    if (s == NULL || *s == '\0')
        return 0;
    if (lc_parse_u64(s, 0, UINT64_MAX, &v) != 0) {
        hprof_log("ignoring %s=%s: not a non-negative integer\n", name, s);
        return 0;
    }
    return v;
}

__attribute__((constructor(101))) static void hprof_locks_init(void)
{
    for (int i = 0; i < REAL_N; i++)
        real_fn((enum real_fn)i);
    static const struct hprof_fork_ops fork_ops = {NULL, NULL, locks_atfork_child};
    hprof_fork_register(HPROF_FORK_LOCKS, &fork_ops);
    struct hprof_tcreate_hooks hooks = {.on_create = threadcreate_on_create,
                                        .on_start = threadcreate_on_start,
                                        .on_exit = threadcreate_on_exit};
    if (hprof_tcreate_register(&hooks) != 0)
        hprof_log("threadcreate profile unavailable: %s\n", strerror(errno));
    hprof_locks_set_rates(env_rate("HEAPPROF_MUTEX_FRACTION"), env_rate("HEAPPROF_BLOCK_RATE"));
}
