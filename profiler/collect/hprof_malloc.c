/*
 * hprof_malloc: the interposer. Every malloc-family call of the process lands here and is
 * forwarded to glibc's own entry points (__libc_malloc, __libc_free, ...), which are plain
 * exported symbols: no dlsym, so no bootstrap allocator is needed for the first calls.
 *
 * Model.
 *   Sampling: each thread counts down the bytes left until its next sample (hprof_t.left, in
 *   initial-exec TLS). An allocation of n bytes with n < left subtracts n and goes straight to
 *   glibc: one TLS load, a compare, a subtract and a tail call; no lock, no syscall, no
 *   division. Otherwise the slow path (hprof_route) decides what to do; a left of 0 forces it,
 *   which is how new threads (TLS starts at zero), the guard and rate 1 get there.
 *
 *   Tagged blocks: a sampled allocation, and every allocation the profiler makes for itself,
 *   is served by glibc with HPROF_HDR_BYTES more and carries a header just before the pointer
 *   the caller gets:
 *       user - 16: word: the bucket (sampled), or the bytes counted as overhead
 *       user -  8: tag:  magic << 48 | offset to glibc's pointer << 8 | kind << 4 | 0x8
 *   In a block glibc returned, the 8 bytes before the pointer are its chunk's size field:
 *   a multiple of MALLOC_ALIGNMENT (16) plus three flag bits, so bit 3 is always clear. Our
 *   tag always has bit 3 set. free() therefore knows "was this sampled?" by testing one bit of
 *   a word glibc's free is about to read anyway (same cache line): the unsampled free costs a
 *   load, a test and a branch. No hash set to look up, no lock, no false positives; the magic
 *   is checked on the (rare) tagged path so that a stray bit from a corrupted heap goes to
 *   glibc's own checks rather than ours. hprof_glibc_layout_ok() verifies the property at
 *   start and turns sampling off if a future glibc ever broke it.
 *   The bucket pointer in the header means retiring a sample is one atomic add on the bucket
 *   (hprof_table_count_free): free never takes a lock, even in a signal handler.
 *
 *   Guard: hprof_internal_enter/exit keep a per-thread depth. Entering sets left to 0 (saved,
 *   restored at exit), so every allocation inside goes to the slow path, which sees depth > 0
 *   and serves it as an overhead block (tagged, counted in hprof_overhead, never sampled,
 *   never unwound): the profiler's own allocations (libunwind, snapshots, and the output
 *   half's libdw, zlib, protobuf-c, libevent work) never recurse and are reported as overhead
 *   exactly, whichever thread or context later frees them.
 *
 * Invariants and locks.
 *   - hprof_state goes UNINIT -> INITING -> READY once; the thread that wins the CAS reads the
 *     environment and sets up the table inside the guard; other threads' allocations meanwhile
 *     are plain (unsampled) rather than waiting. hprof_rate and hprof_seed are written before
 *     READY is published (release) and never again.
 *   - The fork gate (hprof_gate_*, a writer-preferring reader/writer gate) is entered around
 *     unwinding and bucket insertion; the fork prepare handler (the innermost stage of
 *     hprof_fork.c's sequence) closes it, so no thread is inside libunwind or the table's
 *     insert lock when fork() copies the process. The fork handlers
 *     run inside the guard, so an atfork handler of another library (or a signal handler)
 *     that allocates meanwhile is served as overhead and never waits on the gate.
 *   - A signal handler that allocates while its thread is inside the profiler (depth > 0)
 *     gets overhead blocks: it never unwinds, never takes the gate or the table lock, so it
 *     cannot deadlock on its own thread. Retiring a sampled block is lock-free everywhere.
 *     (Calling malloc from a signal handler that interrupted glibc's malloc is unsafe with or
 *     without a profiler; we add no new hazard.)
 *   - The slow paths preserve errno on success (libunwind may clobber it).
 */
#include <dlfcn.h>
#include <errno.h>
#include <libunwind.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

#include "hprof_assert.h"
#include "hprof_collect.h"
#include "hprof_env.h"
#include "hprof_fork.h"
#include "hprof_unwind.h"
#include "lc_util.h"

#if !defined(__GLIBC__) || !(defined(__x86_64__) || defined(__aarch64__))
#error "hprof_malloc forwards to glibc's __libc_* allocator and relies on its 64-bit chunk layout"
#endif

/* glibc's allocator under its own names (exported by libc.so.6 since 2.2.5). noplt: the fast
 * paths tail-call them through the GOT, one indirect jump, instead of a jump to a PLT stub. */
#define HPROF_LIBC extern __attribute__((noplt))
HPROF_LIBC void *__libc_malloc(size_t n);
HPROF_LIBC void __libc_free(void *p);
HPROF_LIBC void *__libc_calloc(size_t nmemb, size_t size);
HPROF_LIBC void *__libc_realloc(void *p, size_t n);
HPROF_LIBC void *__libc_memalign(size_t align, size_t n);
HPROF_LIBC void *__libc_valloc(size_t n);
HPROF_LIBC void *__libc_pvalloc(size_t n);

#define HPROF_HDR_BYTES   16u            /* header of a tagged block; keeps 16-byte alignment */
#define HPROF_TAG_BIT     ((uintptr_t)8) /* never set in a glibc chunk size field */
#define HPROF_TAG_MAGIC   ((uintptr_t)0x4850)        /* "HP", bits 48..63 of the tag */
#define HPROF_TAG_MAX_OFF (((uintptr_t)1 << 40) - 1) /* bytes: offset field of the tag */
#define HPROF_MAX_ALIGN   ((size_t)1 << 30)          /* bytes: larger alignments are never tagged */
#define HPROF_SKIP_SLACK  8 /* frames: room for the profiler's own frames above the 64 kept */

enum hprof_block_kind {
    HPROF_KIND_SAMPLED = 1,   /* word: struct hprof_tbucket * */
    HPROF_KIND_OVERHEAD = 2,  /* word: bytes counted in hprof_overhead */
    HPROF_KIND_UNTRACKED = 3, /* word: 0 (a tagged block that is not counted anywhere) */
};

enum hprof_route { HPROF_ROUTE_PLAIN, HPROF_ROUTE_OVERHEAD, HPROF_ROUTE_SAMPLE };

enum hprof_state { HPROF_UNINIT, HPROF_INITING, HPROF_READY };

/* Everything the profiler's code lives in, so that the unwinder can skip our frames however
 * the compiler inlined them. The linker defines the bounds (per module: hidden). */
#define HPROF_TEXT __attribute__((section("hprof_text")))
extern const char __start_hprof_text[] __attribute__((visibility("hidden")));
extern const char __stop_hprof_text[] __attribute__((visibility("hidden")));

struct hprof_thread {
    size_t left;       /* bytes until the next sample; 0 sends every call to the slow path */
    size_t saved_left; /* left, while inside the guard */
    int depth;         /* guard depth: > 0 inside the profiler */
    int ready;         /* rng seeded and first distance drawn */
    int in_gate;       /* inside the fork gate (a fork from a signal handler must not wait) */
    uint64_t rng;      /* splitmix64 state */
    unsigned stripe;   /* this thread's fork-gate counter (ordinal % HPROF_GATE_STRIPES) */
};
static __thread struct hprof_thread hprof_t __attribute__((tls_model("initial-exec")));

static _Atomic int hprof_state;
static uint64_t hprof_rate;             /* bytes; written once before READY */
static uint64_t hprof_seed;             /* written once before READY */
static size_t hprof_page;               /* bytes; written once before READY */
static _Atomic uint64_t hprof_ordinals; /* threads that have drawn a first distance */
static _Atomic int64_t hprof_overhead;  /* bytes in live overhead blocks */
static _Atomic uint64_t hprof_dropped;  /* samples the table had no memory for */
/* Threads unwinding or inserting (the fork gate), striped so that samplers on different
 * threads do not bounce one cache line at rate 1. */
#define HPROF_GATE_STRIPES 64 /* counters, one cache line each */
static struct {
    _Alignas(64) _Atomic int inside;
} hprof_gate_inside[HPROF_GATE_STRIPES];
static _Atomic int hprof_gate_closed; /* 1 while fork() is being prepared */
static size_t (*_Atomic hprof_real_usable)(void *);

/* ---- headers ---- */

static inline uintptr_t hprof_make_tag(size_t off, unsigned kind)
{
    return HPROF_TAG_MAGIC << 48 | (uintptr_t)off << 8 | (uintptr_t)kind << 4 | HPROF_TAG_BIT;
}

static inline size_t hprof_tag_off(uintptr_t tag)
{
    return (size_t)((tag >> 8) & HPROF_TAG_MAX_OFF);
}

static inline unsigned hprof_tag_kind(uintptr_t tag)
{
    return (unsigned)(tag >> 4) & 0xf;
}

static inline int hprof_tag_valid(uintptr_t tag)
{
    size_t off = hprof_tag_off(tag);
    unsigned kind = hprof_tag_kind(tag);
    return (tag & HPROF_TAG_BIT) && (tag >> 48) == HPROF_TAG_MAGIC && kind >= 1 && kind <= 3 &&
           off >= HPROF_HDR_BYTES && off % HPROF_HDR_BYTES == 0;
}

static inline uintptr_t hprof_word_before(const void *user)
{
    return ((const uintptr_t *)user)[-1];
}

static inline void hprof_set_hdr(void *user, size_t off, unsigned kind, uintptr_t word)
{
    uintptr_t *h = (uintptr_t *)user - 2;
    h[0] = word;
    h[1] = hprof_make_tag(off, kind);
}

/* ---- small helpers ---- */

static int hprof_is_own_pc(const void *pc)
{
    return (const char *)pc >= __start_hprof_text && (const char *)pc < __stop_hprof_text;
}

/* Round a memalign alignment the way glibc does (<= 16: none; else the next power of two).
 * Returns 0, or -1 for alignments we do not tag (the caller serves those untagged). */
static int hprof_norm_align(size_t *align)
{
    if (*align <= HPROF_HDR_BYTES) {
        *align = 0;
        return 0;
    }
    if (*align > HPROF_MAX_ALIGN)
        return -1;
    size_t a = 2 * HPROF_HDR_BYTES;
    while (a < *align)
        a <<= 1;
    *align = a;
    return 0;
}

/* The allocation glibc would have made: align > 0 means memalign. */
static HPROF_TEXT void *hprof_plain_alloc(size_t n, size_t align, int zero)
{
    if (align > 0)
        return __libc_memalign(align, n);
    return zero ? __libc_calloc(1, n) : __libc_malloc(n);
}

/* ---- guard ---- */

static inline void hprof_guard_enter(void)
{
    struct hprof_thread *t = &hprof_t;
    if (t->depth++ == 0) {
        atomic_signal_fence(memory_order_seq_cst); /* depth before left, for a signal handler */
        t->saved_left = t->left;
        t->left = 0;
    }
    atomic_signal_fence(memory_order_seq_cst);
}

static inline void hprof_guard_exit(void)
{
    struct hprof_thread *t = &hprof_t;
    atomic_signal_fence(memory_order_seq_cst);
    if (t->depth <= 0)
        return; /* unbalanced exit: ignore rather than corrupt the countdown */
    if (t->depth == 1) {
        t->left = t->saved_left;
        atomic_signal_fence(memory_order_seq_cst);
    }
    t->depth--;
}

/* The exported names, for the output half; the interposer calls the inline ones (no PLT). */
void hprof_internal_enter(void)
{
    hprof_guard_enter();
}

void hprof_internal_exit(void)
{
    hprof_guard_exit();
}

int hprof_internal_depth(void)
{
    return hprof_t.depth;
}

/* ---- initialisation and fork ---- */

/* The fork gate: a writer-preferring reader/writer gate made of two atomics, cheaper than a
 * pthread rwlock on the sampled path (one atomic add to enter, one to leave). Samplers announce
 * themselves in their stripe of hprof_gate_inside, then check hprof_gate_closed; fork's prepare
 * handler closes the gate, then waits for every stripe to drain. Both sides use sequentially
 * consistent operations, so at least one of them sees the other (Dekker): no sampler is ever inside
 * libunwind or the table's insert lock when fork() copies the process. Samplers never nest
 * (the guard), so the prepare handler cannot wait for its own thread. */
static HPROF_TEXT void hprof_gate_enter(void)
{
    HPROF_ASSERT(!hprof_t.in_gate); /* samplers never nest (the guard) */
    for (;;) {
        atomic_fetch_add(&hprof_gate_inside[hprof_t.stripe].inside, 1);
        if (!atomic_load(&hprof_gate_closed)) {
            hprof_t.in_gate = 1;
            return;
        }
        atomic_fetch_sub(&hprof_gate_inside[hprof_t.stripe].inside, 1);
        while (atomic_load(&hprof_gate_closed))
            sched_yield();
    }
}

static HPROF_TEXT void hprof_gate_leave(void)
{
    hprof_t.in_gate = 0;
    atomic_fetch_sub_explicit(&hprof_gate_inside[hprof_t.stripe].inside, 1, memory_order_release);
}

/* The malloc stage of the fork sequence (hprof_fork.c: the innermost). */
static void hprof_atfork_prepare(void)
{
    hprof_guard_enter();
    atomic_store(&hprof_gate_closed, 1);
    /* A signal handler on a sampling thread may fork: then that sampler is us, and stays. */
    for (unsigned i = 0; i < HPROF_GATE_STRIPES; i++) {
        int mine = i == hprof_t.stripe ? hprof_t.in_gate : 0;
        while (atomic_load(&hprof_gate_inside[i].inside) != mine)
            sched_yield();
    }
    hprof_table_lock();
}

static void hprof_atfork_parent(void)
{
    HPROF_ASSERT(atomic_load(&hprof_gate_closed)); /* prepare closed it */
    hprof_table_unlock();
    atomic_store(&hprof_gate_closed, 0);
    hprof_guard_exit();
}

static void hprof_atfork_child(void)
{
    HPROF_ASSERT(atomic_load(&hprof_gate_closed)); /* prepare closed it */
    /* Our thread is the only one: re-initialise the lock instead of unlocking it. */
    hprof_table_reinit_lock_in_child();
    for (unsigned i = 0; i < HPROF_GATE_STRIPES; i++)
        atomic_store(&hprof_gate_inside[i].inside, i == hprof_t.stripe ? hprof_t.in_gate : 0);
    atomic_store(&hprof_gate_closed, 0);
    hprof_guard_exit();
}

static const struct hprof_fork_ops hprof_fork_ops = {hprof_atfork_prepare, hprof_atfork_parent,
                                                     hprof_atfork_child};

/* Does glibc still never set bit 3 of a chunk's size field? Checked on a small, an aligned and
 * an mmap'd block (the three chunk shapes). */
static int hprof_glibc_layout_ok(void)
{
    static const size_t sizes[] = {24, 1000, 256 * 1024};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        void *p = __libc_malloc(sizes[i]);
        void *q = __libc_memalign(64, sizes[i]);
        int ok = (p == NULL || !(hprof_word_before(p) & HPROF_TAG_BIT)) &&
                 (q == NULL || !(hprof_word_before(q) & HPROF_TAG_BIT));
        __libc_free(p);
        __libc_free(q);
        if (!ok)
            return 0;
    }
    return 1;
}

static uint64_t hprof_env_u64(const char *name, uint64_t dflt, int *given)
{
    const char *s = hprof_env_get(name); /* captured without allocating */
    uint64_t v;
    *given = 0;
    if (s == NULL || *s == '\0')
        return dflt;
    if (lc_parse_u64(s, 0, UINT64_MAX, &v) != 0) {
        hprof_log("ignoring %s=%s: not a non-negative integer\n", name, s);
        return dflt;
    }
    *given = 1;
    return v;
}

static void hprof_init(void)
{
    int expected = HPROF_UNINIT;
    if (!atomic_compare_exchange_strong(&hprof_state, &expected, HPROF_INITING))
        return;
    int saved_errno = errno;
    hprof_guard_enter();

    int given;
    uint64_t rate = hprof_env_u64("HEAPPROF_RATE", HPROF_DEFAULT_RATE, &given);
    uint64_t seed = hprof_env_u64("HEAPPROF_SEED", 0, &given);
    if (!given) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)getpid() << 17;
    }
    size_t page = (size_t)getauxval(AT_PAGESZ);
    hprof_page = page ? page : 4096;
    if (rate != 0 && !hprof_glibc_layout_ok()) {
        hprof_log("glibc chunk layout not as expected; sampling is off\n");
        rate = 0;
    }
    if (rate != 0 && hprof_table_init(rate) != 0) {
        hprof_log("cannot map the bucket table; sampling is off\n");
        rate = 0;
    }
    hprof_fork_register(HPROF_FORK_MALLOC, &hprof_fork_ops);
    hprof_rate = rate;
    hprof_seed = seed;

    hprof_guard_exit();
    errno = saved_errno;
    atomic_store_explicit(&hprof_state, HPROF_READY, memory_order_release);
}

static int hprof_ready(void)
{
    if (atomic_load_explicit(&hprof_state, memory_order_acquire) == HPROF_READY)
        return 1;
    hprof_init();
    return atomic_load_explicit(&hprof_state, memory_order_acquire) == HPROF_READY;
}

/* ---- the slow path ---- */

/* Decide how to serve an allocation of n bytes that failed the fast-path test. */
static HPROF_TEXT enum hprof_route hprof_route(size_t n)
{
    struct hprof_thread *t = &hprof_t;
    if (t->depth > 0)
        return HPROF_ROUTE_OVERHEAD;
    if (!hprof_ready())
        return HPROF_ROUTE_PLAIN; /* another thread is initialising: do not wait for it */
    if (!t->ready) {
        uint64_t ordinal = atomic_fetch_add(&hprof_ordinals, 1);
        hprof_rng_seed(&t->rng, hprof_seed, ordinal);
        t->stripe = (unsigned)(ordinal % HPROF_GATE_STRIPES);
        t->left = hprof_sample_distance(&t->rng, hprof_rate);
        t->ready = 1;
    }
    if (n < t->left) {
        t->left -= n;
        return HPROF_ROUTE_PLAIN;
    }
    if (hprof_rate == 0) {
        t->left = SIZE_MAX;
        return HPROF_ROUTE_PLAIN;
    }
    t->left = hprof_sample_distance(&t->rng, hprof_rate);
    return HPROF_ROUTE_SAMPLE;
}

/* glibc block with room for the header; align is 0 or a power of two > 16. */
static HPROF_TEXT void *hprof_tagged_alloc(size_t n, size_t align, int zero, unsigned kind,
                                           uintptr_t word)
{
    size_t off = align > HPROF_HDR_BYTES ? align : HPROF_HDR_BYTES;
    if (n > SIZE_MAX - off) {
        errno = ENOMEM;
        return NULL;
    }
    char *raw = hprof_plain_alloc(n + off, align, zero);
    if (raw == NULL)
        return NULL;
    hprof_set_hdr(raw + off, off, kind, word);
    return raw + off;
}

static HPROF_TEXT void *hprof_overhead_alloc(size_t n, size_t align, int zero)
{
    size_t off = align > HPROF_HDR_BYTES ? align : HPROF_HDR_BYTES;
    void *user = hprof_tagged_alloc(n, align, zero, HPROF_KIND_OVERHEAD, n + off);
    if (user != NULL)
        atomic_fetch_add_explicit(&hprof_overhead, (int64_t)(n + off), memory_order_relaxed);
    return user;
}

/* Unwind the caller's stack, skipping our own frames: the first frames (libunwind's and ours)
 * up to and including the last one in hprof_text. Stores return address - 1 (the call). */
static HPROF_TEXT __attribute__((noinline)) int hprof_capture(uintptr_t *pcs)
{
    void *raw[HPROF_MAX_DEPTH + HPROF_SKIP_SLACK];
    hprof_unwind_init();
    int n = unw_backtrace(raw, (int)(sizeof(raw) / sizeof(raw[0])));
    int i = 0;
    while (i < n && !hprof_is_own_pc(raw[i]))
        i++;
    if (i == n)
        i = 0; /* no frame of ours seen: keep the whole stack rather than none */
    while (i < n && hprof_is_own_pc(raw[i]))
        i++;
    int depth = 0;
    for (; i < n && depth < HPROF_MAX_DEPTH; i++)
        pcs[depth++] = (uintptr_t)raw[i] - 1;
    return depth;
}

/* Attach a sample of n bytes to the tagged block `user` (header already written as
 * UNTRACKED). Called inside the guard. */
static HPROF_TEXT void hprof_record(void *user, size_t n)
{
    uintptr_t pcs[HPROF_MAX_DEPTH];
    hprof_gate_enter();
    int depth = hprof_capture(pcs);
    struct hprof_tbucket *b = hprof_table_intern(pcs, depth, n);
    if (b != NULL) {
        hprof_table_count_alloc(b);
        hprof_set_hdr(user, hprof_tag_off(hprof_word_before(user)), HPROF_KIND_SAMPLED,
                      (uintptr_t)b);
    } else {
        atomic_fetch_add_explicit(&hprof_dropped, 1, memory_order_relaxed);
    }
    hprof_gate_leave();
}

static HPROF_TEXT void *hprof_sampled_alloc(size_t n, size_t align, int zero)
{
    int saved_errno = errno;
    hprof_guard_enter();
    void *user = hprof_tagged_alloc(n, align, zero, HPROF_KIND_UNTRACKED, 0);
    if (user != NULL)
        hprof_record(user, n);
    hprof_guard_exit();
    if (user != NULL)
        errno = saved_errno;
    return user;
}

/* align: 0 for malloc/calloc, or the caller's memalign alignment (already checked to be
 * <= SIZE_MAX / 2 + 1). */
static HPROF_TEXT __attribute__((noinline)) void *hprof_alloc_slow(size_t n, size_t align, int zero)
{
    enum hprof_route route = hprof_route(n);
    size_t tag_align = align;
    if (route == HPROF_ROUTE_PLAIN || hprof_norm_align(&tag_align) != 0)
        return hprof_plain_alloc(n, align, zero);
    if (route == HPROF_ROUTE_OVERHEAD)
        return hprof_overhead_alloc(n, tag_align, zero);
    return hprof_sampled_alloc(n, tag_align, zero);
}

/* Undo the accounting of a tagged block that is being freed or reallocated. */
static HPROF_TEXT void hprof_retire(uintptr_t word, uintptr_t tag)
{
    switch (hprof_tag_kind(tag)) {
    case HPROF_KIND_SAMPLED:
        hprof_table_count_free((struct hprof_tbucket *)word);
        break;
    case HPROF_KIND_OVERHEAD:
        atomic_fetch_sub_explicit(&hprof_overhead, (int64_t)word, memory_order_relaxed);
        break;
    default:
        break;
    }
}

static HPROF_TEXT __attribute__((noinline)) void hprof_free_tagged(void *p, uintptr_t tag)
{
    if (!hprof_tag_valid(tag)) {
        __libc_free(p); /* not ours: let glibc judge it */
        return;
    }
    hprof_retire(((uintptr_t *)p)[-2], tag);
    __libc_free((char *)p - hprof_tag_off(tag));
}

/* realloc of a tagged block, or of any block when the new size is to be sampled or the guard
 * is up. Accounting: a free of the old block plus an allocation of the new one. The result is
 * tagged whenever the old block was (the header stays in front; an untracked tag costs
 * nothing but the 16 bytes), so glibc's realloc can grow it in place. */
static HPROF_TEXT __attribute__((noinline)) void *hprof_realloc_slow(void *p, size_t n,
                                                                     uintptr_t tag)
{
    int tagged = (tag & HPROF_TAG_BIT) && hprof_tag_valid(tag);
    enum hprof_route route = hprof_route(n);
    if (!tagged && route == HPROF_ROUTE_PLAIN)
        return __libc_realloc(p, n);

    size_t off = tagged ? hprof_tag_off(tag) : 0;
    uintptr_t old_word = tagged ? ((uintptr_t *)p)[-2] : 0;
    size_t room = off > HPROF_HDR_BYTES ? off : HPROF_HDR_BYTES;
    if (n > SIZE_MAX - room) {
        errno = ENOMEM;
        return NULL;
    }
    int saved_errno = errno;
    if (route == HPROF_ROUTE_SAMPLE)
        hprof_guard_enter();
    char *raw = __libc_realloc((char *)p - off, n + room);
    if (raw == NULL) {
        if (route == HPROF_ROUTE_SAMPLE)
            hprof_guard_exit();
        return NULL; /* the old block and its accounting are untouched */
    }
    /* The data sits at raw + off; move it to raw + 16. Moving n bytes stays inside the new
     * block (n + room bytes) whether the block grew or shrank. */
    if (off != HPROF_HDR_BYTES)
        memmove(raw + HPROF_HDR_BYTES, raw + off, n);
    char *user = raw + HPROF_HDR_BYTES;
    if (tagged)
        hprof_retire(old_word, tag);
    switch (route) {
    case HPROF_ROUTE_OVERHEAD:
        hprof_set_hdr(user, HPROF_HDR_BYTES, HPROF_KIND_OVERHEAD, n + HPROF_HDR_BYTES);
        atomic_fetch_add_explicit(&hprof_overhead, (int64_t)(n + HPROF_HDR_BYTES),
                                  memory_order_relaxed);
        break;
    case HPROF_ROUTE_SAMPLE:
        hprof_set_hdr(user, HPROF_HDR_BYTES, HPROF_KIND_UNTRACKED, 0);
        hprof_record(user, n);
        hprof_guard_exit();
        break;
    default:
        hprof_set_hdr(user, HPROF_HDR_BYTES, HPROF_KIND_UNTRACKED, 0);
        break;
    }
    errno = saved_errno;
    return user;
}

static inline __attribute__((always_inline)) void *hprof_malloc_inline(size_t n)
{
    struct hprof_thread *t = &hprof_t;
    if (__builtin_expect(n < t->left, 1)) {
        t->left -= n;
        return __libc_malloc(n);
    }
    return hprof_alloc_slow(n, 0, 0);
}

static inline __attribute__((always_inline)) void hprof_free_inline(void *p)
{
    if (__builtin_expect(p != NULL, 1)) {
        uintptr_t tag = hprof_word_before(p);
        if (__builtin_expect((tag & HPROF_TAG_BIT) != 0, 0)) {
            hprof_free_tagged(p, tag);
            return;
        }
    }
    __libc_free(p);
}

static HPROF_TEXT void *hprof_memalign_impl(size_t align, size_t n)
{
    if (align > SIZE_MAX / 2 + 1) { /* glibc's own limit */
        errno = EINVAL;
        return NULL;
    }
    struct hprof_thread *t = &hprof_t;
    if (__builtin_expect(n < t->left, 1)) {
        t->left -= n;
        return __libc_memalign(align, n);
    }
    return hprof_alloc_slow(n, align, 0);
}

static size_t hprof_chunk_usable(void *p)
{
    /* glibc's musable() for an in-use chunk: its size less the header (mmap'd: 16 bytes; in an
     * arena: 8, the next chunk's prev_size field being usable). Used only if dlsym fails. */
    uintptr_t size = hprof_word_before(p);
    return (size_t)(size & ~(uintptr_t)7) - ((size & 2) ? 16 : 8);
}

static size_t hprof_glibc_usable(void *p)
{
    size_t (*f)(void *) = atomic_load_explicit(&hprof_real_usable, memory_order_acquire);
    if (f == NULL) {
        hprof_guard_enter();
        f = (size_t(*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
        hprof_guard_exit();
        if (f == NULL || f == malloc_usable_size)
            f = hprof_chunk_usable;
        atomic_store_explicit(&hprof_real_usable, f, memory_order_release);
    }
    return f(p);
}

/* ---- the interposed functions ---- */

HPROF_TEXT void *malloc(size_t n)
{
    return hprof_malloc_inline(n);
}

HPROF_TEXT void free(void *p)
{
    hprof_free_inline(p);
}

/* Removed from glibc's API in 2.26 but still bound by old binaries. */
void cfree(void *p);
HPROF_TEXT void cfree(void *p)
{
    hprof_free_inline(p);
}

HPROF_TEXT void *calloc(size_t nmemb, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(nmemb, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    struct hprof_thread *t = &hprof_t;
    if (__builtin_expect(n < t->left, 1)) {
        t->left -= n;
        return __libc_calloc(nmemb, size);
    }
    return hprof_alloc_slow(n, 0, 1);
}

HPROF_TEXT void *realloc(void *p, size_t n)
{
    if (p == NULL)
        return hprof_malloc_inline(n);
    if (n == 0) { /* glibc: realloc(p, 0) frees p and returns NULL */
        hprof_free_inline(p);
        return NULL;
    }
    uintptr_t tag = hprof_word_before(p);
    struct hprof_thread *t = &hprof_t;
    if (__builtin_expect(!(tag & HPROF_TAG_BIT) && n < t->left, 1)) {
        t->left -= n;
        return __libc_realloc(p, n);
    }
    return hprof_realloc_slow(p, n, tag);
}

HPROF_TEXT void *reallocarray(void *p, size_t nmemb, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(nmemb, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n);
}

HPROF_TEXT void *memalign(size_t align, size_t n)
{
    return hprof_memalign_impl(align, n);
}

HPROF_TEXT int posix_memalign(void **out, size_t align, size_t n)
{
    /* POSIX: a power of two multiple of sizeof(void *); *out untouched on failure. */
    if (align == 0 || align % sizeof(void *) != 0 || (align & (align - 1)) != 0)
        return EINVAL;
    int saved_errno = errno;
    void *p = hprof_memalign_impl(align, n);
    errno = saved_errno;
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

HPROF_TEXT void *aligned_alloc(size_t align, size_t n)
{
    /* C17 (DR 460) and glibc >= 2.38: any power of two; the size need not be a multiple. */
    if (align == 0 || (align & (align - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    return hprof_memalign_impl(align, n);
}

HPROF_TEXT void *valloc(size_t n)
{
    struct hprof_thread *t = &hprof_t;
    if (__builtin_expect(n < t->left, 1)) {
        t->left -= n;
        return __libc_valloc(n);
    }
    return hprof_alloc_slow(n, (size_t)getauxval(AT_PAGESZ), 0);
}

HPROF_TEXT void *pvalloc(size_t n)
{
    size_t page = hprof_page ? hprof_page : (size_t)getauxval(AT_PAGESZ);
    if (n > SIZE_MAX - 2 * page - 32) { /* glibc's limit */
        errno = ENOMEM;
        return NULL;
    }
    size_t rounded = (n + page - 1) & ~(page - 1);
    struct hprof_thread *t = &hprof_t;
    if (__builtin_expect(rounded < t->left, 1)) {
        t->left -= rounded;
        return __libc_pvalloc(n);
    }
    return hprof_alloc_slow(rounded, page, 0);
}

HPROF_TEXT size_t malloc_usable_size(void *p)
{
    if (p == NULL)
        return 0;
    uintptr_t tag = hprof_word_before(p);
    if ((tag & HPROF_TAG_BIT) && hprof_tag_valid(tag)) {
        size_t off = hprof_tag_off(tag);
        return hprof_glibc_usable((char *)p - off) - off;
    }
    return hprof_glibc_usable(p);
}

/* ---- the API of the collection half ---- */

int hprof_snapshot_take(struct hprof_snapshot *out)
{
    hprof_guard_enter();
    hprof_ready();
    int rc = hprof_table_snapshot(out);
    out->rate = hprof_rate;
    hprof_guard_exit();
    return rc;
}

void hprof_snapshot_release(struct hprof_snapshot *snapshot)
{
    hprof_guard_enter();
    free(snapshot->buckets);
    hprof_guard_exit();
    snapshot->buckets = NULL;
    snapshot->n_buckets = 0;
}

void hprof_get_totals(struct hprof_totals *out)
{
    hprof_guard_enter();
    hprof_ready();
    hprof_table_totals(out);
    out->rate = hprof_rate;
    int64_t heap = atomic_load_explicit(&hprof_overhead, memory_order_relaxed);
    out->overhead_bytes = (uint64_t)(heap > 0 ? heap : 0) + hprof_table_mapped_bytes();
    hprof_guard_exit();
}

uint64_t hprof_collect_rate(void)
{
    return atomic_load_explicit(&hprof_state, memory_order_acquire) == HPROF_READY ? hprof_rate : 0;
}

int hprof_block_is_tagged(const void *p)
{
    uintptr_t tag = hprof_word_before(p);
    return (tag & HPROF_TAG_BIT) && hprof_tag_valid(tag);
}
