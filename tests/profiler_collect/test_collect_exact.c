/*
 * Exact accounting at HEAPPROF_RATE=1, through the snapshot API, in a program linked with the
 * static libheapprof (as the servers are).
 *
 * At rate 1 every allocation is a sample of weight exactly 1, so per function the profile's
 * alloc/inuse objects and bytes must equal the truth the test keeps, to the last byte: any lost
 * or double count, any realloc accounted wrongly, any frame misattributed shows up as a
 * difference. Also here: many threads (8) allocating and freeing, each other's blocks too;
 * a signal handler that allocates and frees while its thread is inside the profiler (holding
 * the table's insert lock); fork() while other threads sample; memory glibc handed out
 * before the profiler saw it; and that the interposer catches libc's own internal calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "collect_test.h"

extern void *__libc_malloc(size_t n);
extern void __libc_free(void *p);

static struct hprof_snapshot ct_take(void)
{
    struct hprof_snapshot s;
    assert_int_equal(hprof_snapshot_take(&s), 0);
    return s;
}

/* Every value exactly equal (weights are 1.0, so the doubles are exact integers). */
static void ct_assert_exact(const char *what, struct ct_sums d, struct ct_truth t)
{
    if (d.alloc_objects != (double)t.alloc_objects || d.alloc_bytes != (double)t.alloc_bytes ||
        d.inuse_objects != (double)t.inuse_objects || d.inuse_bytes != (double)t.inuse_bytes) {
        print_error("%s: profile alloc %.1f objs %.1f B, inuse %.1f objs %.1f B; truth alloc "
                    "%lld objs %lld B, inuse %lld objs %lld B\n",
                    what, d.alloc_objects, d.alloc_bytes, d.inuse_objects, d.inuse_bytes,
                    (long long)t.alloc_objects, (long long)t.alloc_bytes,
                    (long long)t.inuse_objects, (long long)t.inuse_bytes);
        fail();
    }
}

static int ct_setup(void **state)
{
    (void)state;
    void *warm = malloc(1); /* make sure the profiler has read its environment */
    free(warm);
    if (hprof_collect_rate() != 1) {
        print_error("this test needs HEAPPROF_RATE=1 (rate in effect: %llu)\n",
                    (unsigned long long)hprof_collect_rate());
        return -1;
    }
    return 0;
}

/* ---- per-function accounting ---- */

#define CT_N 64

CT_MARKER void m_malloc(void **slots, struct ct_truth *t)
{
    for (int i = 0; i < CT_N; i++) {
        size_t n = 8 * (size_t)(i + 1);
        slots[i] = malloc(n);
        ct_truth_alloc(t, n);
    }
}

CT_MARKER void m_calloc(void **slots, struct ct_truth *t)
{
    for (int i = 0; i < CT_N; i++) {
        slots[i] = calloc((size_t)i + 1, 24);
        ct_truth_alloc(t, ((size_t)i + 1) * 24);
    }
}

/* realloc growth: each call is a free of the old block and an allocation of the new one. */
CT_MARKER void *m_realloc(struct ct_truth *t)
{
    void *p = NULL;
    for (size_t k = 1; k <= 40; k++) {
        void *q = realloc(p, 100 * k);
        assert_non_null(q);
        if (p != NULL)
            ct_truth_free(t, 100 * (k - 1));
        ct_truth_alloc(t, 100 * k);
        p = q;
    }
    return p;
}

CT_MARKER void m_posix_memalign(void **slots, struct ct_truth *t)
{
    static const size_t aligns[] = {8, 16, 64, 256, 4096};
    for (int i = 0; i < CT_N; i++) {
        size_t a = aligns[i % 5], n = 100 + (size_t)i;
        assert_int_equal(posix_memalign(&slots[i], a, n), 0);
        assert_int_equal((uintptr_t)slots[i] % a, 0);
        ct_truth_alloc(t, n);
    }
}

CT_MARKER void m_aligned_alloc(void **slots, struct ct_truth *t)
{
    for (int i = 0; i < CT_N; i++) {
        size_t a = (size_t)32 << (i % 6), n = 3 * (size_t)i + 1;
        slots[i] = aligned_alloc(a, n);
        assert_non_null(slots[i]);
        assert_int_equal((uintptr_t)slots[i] % a, 0);
        ct_truth_alloc(t, n);
    }
}

CT_MARKER void m_memalign_family(void **slots, struct ct_truth *t)
{
    long page = sysconf(_SC_PAGESIZE);
    slots[0] = memalign(128, 1000);
    ct_truth_alloc(t, 1000);
    slots[1] = valloc(500);
    ct_truth_alloc(t, 500);
    slots[2] = pvalloc(500); /* accounted as what it allocates: a whole page */
    ct_truth_alloc(t, (size_t)page);
    slots[3] = reallocarray(NULL, 10, 30);
    ct_truth_alloc(t, 300);
    for (int i = 0; i < 4; i++)
        assert_non_null(slots[i]);
    assert_int_equal((uintptr_t)slots[0] % 128, 0);
    assert_int_equal((uintptr_t)slots[1] % (uintptr_t)page, 0);
    assert_int_equal((uintptr_t)slots[2] % (uintptr_t)page, 0);
}

struct ct_thread_arg {
    void *slots[1000];
    struct ct_truth truth;
};

CT_MARKER void *m_thread(void *arg)
{
    struct ct_thread_arg *a = arg;
    for (int i = 0; i < 1000; i++) {
        a->slots[i] = malloc(48);
        ct_truth_alloc(&a->truth, 48);
    }
    for (int i = 1; i < 1000; i += 2) {
        free(a->slots[i]);
        a->slots[i] = NULL;
        ct_truth_free(&a->truth, 48);
    }
    return NULL;
}

CT_MARKER void m_churn(struct ct_truth *t)
{
    for (int i = 0; i < 20000; i++) {
        size_t n = 1 + (size_t)(i % 300);
        void *p = malloc(n);
        ct_truth_alloc(t, n);
        __asm__ volatile("" : : "r"(p) : "memory");
        free(p);
        ct_truth_free(t, n);
    }
}

static void ct_free_all(void **slots, int n)
{
    for (int i = 0; i < n; i++) {
        free(slots[i]);
        slots[i] = NULL;
    }
}

static void test_exact_per_function(void **state)
{
    (void)state;
    static void *s_malloc[CT_N], *s_calloc[CT_N], *s_pm[CT_N], *s_aa[CT_N], *s_mf[4];
    static struct ct_thread_arg targ[2];
    struct ct_truth t_malloc = {0}, t_calloc = {0}, t_realloc = {0}, t_pm = {0}, t_aa = {0},
                    t_mf = {0}, t_churn = {0};

    struct hprof_snapshot before = ct_take();
    m_malloc(s_malloc, &t_malloc);
    for (int i = 0; i < CT_N; i += 2) { /* free every other one */
        free(s_malloc[i]);
        s_malloc[i] = NULL;
        ct_truth_free(&t_malloc, 8 * (size_t)(i + 1));
    }
    m_calloc(s_calloc, &t_calloc);
    for (int i = 0; i < CT_N; i++)
        for (size_t j = 0; j < ((size_t)i + 1) * 24; j++)
            assert_int_equal(((unsigned char *)s_calloc[i])[j], 0);
    void *grown = m_realloc(&t_realloc);
    m_posix_memalign(s_pm, &t_pm);
    m_aligned_alloc(s_aa, &t_aa);
    for (int i = 0; i < CT_N / 2; i++) {
        free(s_aa[i]);
        s_aa[i] = NULL;
        ct_truth_free(&t_aa, 3 * (size_t)i + 1);
    }
    m_memalign_family(s_mf, &t_mf);
    memset(&targ, 0, sizeof(targ));
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, m_thread, &targ[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    struct ct_truth t_thread = targ[0].truth;
    t_thread.alloc_objects += targ[1].truth.alloc_objects;
    t_thread.alloc_bytes += targ[1].truth.alloc_bytes;
    t_thread.inuse_objects += targ[1].truth.inuse_objects;
    t_thread.inuse_bytes += targ[1].truth.inuse_bytes;
    m_churn(&t_churn);
    struct hprof_snapshot after = ct_take();

    ct_assert_exact("malloc", ct_delta(&before, &after, (void *)m_malloc), t_malloc);
    ct_assert_exact("calloc", ct_delta(&before, &after, (void *)m_calloc), t_calloc);
    ct_assert_exact("realloc", ct_delta(&before, &after, (void *)m_realloc), t_realloc);
    ct_assert_exact("posix_memalign", ct_delta(&before, &after, (void *)m_posix_memalign), t_pm);
    ct_assert_exact("aligned_alloc", ct_delta(&before, &after, (void *)m_aligned_alloc), t_aa);
    ct_assert_exact("memalign family", ct_delta(&before, &after, (void *)m_memalign_family), t_mf);
    ct_assert_exact("two threads", ct_delta(&before, &after, (void *)m_thread), t_thread);
    ct_assert_exact("churn", ct_delta(&before, &after, (void *)m_churn), t_churn);
    /* (stack, size) keys: m_malloc made 64 distinct sizes from one call site. */
    assert_int_equal(ct_delta(&before, &after, (void *)m_malloc).buckets, CT_N);

    /* Free everything: in-use returns to where it was, alloc_* stays. */
    ct_free_all(s_malloc, CT_N);
    ct_free_all(s_calloc, CT_N);
    ct_free_all(s_pm, CT_N);
    ct_free_all(s_aa, CT_N);
    ct_free_all(s_mf, 4);
    free(grown);
    for (int i = 0; i < 2; i++)
        ct_free_all(targ[i].slots, 1000);
    struct hprof_snapshot released = ct_take();
    void *fns[] = {(void *)m_malloc,         (void *)m_calloc,        (void *)m_realloc,
                   (void *)m_posix_memalign, (void *)m_aligned_alloc, (void *)m_memalign_family,
                   (void *)m_thread,         (void *)m_churn};
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        struct ct_sums d = ct_delta(&before, &released, fns[i]);
        struct ct_sums a = ct_delta(&before, &after, fns[i]);
        assert_true(d.inuse_objects == 0 && d.inuse_bytes == 0);
        assert_true(d.alloc_objects == a.alloc_objects && d.alloc_bytes == a.alloc_bytes);
    }

    /* Totals agree with the sum of the buckets. */
    struct hprof_totals tot;
    hprof_get_totals(&tot);
    assert_int_equal(tot.rate, 1);
    assert_true(tot.buckets >= released.n_buckets);
    assert_true(tot.overhead_bytes > 0);
    hprof_snapshot_release(&before);
    hprof_snapshot_release(&after);
    hprof_snapshot_release(&released);
}

/* ---- 8 threads, cross-thread frees ---- */

#define HAMMER_THREADS 8
#define HAMMER_ITERS   20000
#define HAMMER_RING    64

struct ct_hammer {
    int id;
    void *ring[HAMMER_RING];
    size_t ring_size[HAMMER_RING];
    struct ct_truth truth;
    struct ct_hammer *victim; /* phase 2: whose ring this thread frees */
};

CT_MARKER void *m_hammer(void *arg)
{
    struct ct_hammer *h = arg;
    for (int i = 0; i < HAMMER_ITERS; i++) {
        int slot = i % HAMMER_RING;
        if (h->ring[slot] != NULL) {
            free(h->ring[slot]);
            ct_truth_free(&h->truth, h->ring_size[slot]);
        }
        size_t n = 16 + (size_t)((i * 37 + h->id * 11) % 2000);
        h->ring[slot] = (i & 1) ? malloc(n) : calloc(1, n);
        h->ring_size[slot] = n;
        ct_truth_alloc(&h->truth, n);
        if (i % 7 == 0) { /* realloc in place or moved: a free plus an allocation */
            size_t m = n + 100;
            h->ring[slot] = realloc(h->ring[slot], m);
            ct_truth_free(&h->truth, n);
            ct_truth_alloc(&h->truth, m);
            h->ring_size[slot] = m;
        }
    }
    return NULL;
}

/* Frees another thread's blocks (accounting goes to the allocating stack) while allocating. */
CT_MARKER void *m_hammer_free_other(void *arg)
{
    struct ct_hammer *h = arg;
    for (int i = 0; i < HAMMER_RING; i++) {
        free(h->victim->ring[i]);
        h->victim->ring[i] = NULL;
        void *p = malloc(32);
        __asm__ volatile("" : : "r"(p) : "memory"); /* or the compiler drops the pair */
        free(p);
    }
    return NULL;
}

static void test_threads_exact(void **state)
{
    (void)state;
    static struct ct_hammer hs[HAMMER_THREADS];
    memset(hs, 0, sizeof(hs));
    pthread_t th[HAMMER_THREADS];
    struct hprof_snapshot before = ct_take();
    for (int i = 0; i < HAMMER_THREADS; i++) {
        hs[i].id = i;
        hs[i].victim = &hs[(i + 1) % HAMMER_THREADS];
        assert_int_equal(pthread_create(&th[i], NULL, m_hammer, &hs[i]), 0);
    }
    for (int i = 0; i < HAMMER_THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    struct hprof_snapshot mid = ct_take();
    struct ct_truth truth = {0};
    for (int i = 0; i < HAMMER_THREADS; i++) {
        truth.alloc_objects += hs[i].truth.alloc_objects;
        truth.alloc_bytes += hs[i].truth.alloc_bytes;
        truth.inuse_objects += hs[i].truth.inuse_objects;
        truth.inuse_bytes += hs[i].truth.inuse_bytes;
    }
    ct_assert_exact("8 threads", ct_delta(&before, &mid, (void *)m_hammer), truth);

    for (int i = 0; i < HAMMER_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, m_hammer_free_other, &hs[i]), 0);
    for (int i = 0; i < HAMMER_THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    struct hprof_snapshot end = ct_take();
    truth.inuse_objects = truth.inuse_bytes = 0;
    ct_assert_exact("8 threads, all freed by others", ct_delta(&before, &end, (void *)m_hammer),
                    truth);
    struct ct_sums fo = ct_delta(&before, &end, (void *)m_hammer_free_other);
    assert_true(fo.alloc_objects == HAMMER_THREADS * HAMMER_RING && fo.inuse_objects == 0);
    hprof_snapshot_release(&before);
    hprof_snapshot_release(&mid);
    hprof_snapshot_release(&end);
}

/* ---- a signal handler allocating while its thread holds the table's insert lock ---- */

static volatile sig_atomic_t sig_ran, sig_depth, sig_tagged;
static void *volatile sig_pre_block;
static void *volatile sig_main_block;

CT_MARKER void m_sig_pre(void)
{
    sig_pre_block = malloc(333);
}

CT_MARKER void m_sig_handler_alloc(void)
{
    void *a = malloc(100);
    if (a != NULL)
        memset(a, 1, 100);
    sig_tagged = a != NULL && hprof_block_is_tagged(a);
    void *b = calloc(3, 50);
    a = realloc(a, 5000);
    void *c = NULL;
    if (posix_memalign(&c, 64, 200) != 0)
        c = NULL;
    free(a);
    free(b);
    free(c);
    free(sig_pre_block); /* a sampled block: retired without any lock */
    sig_pre_block = NULL;
}

static void ct_on_sigusr1(int sig)
{
    (void)sig;
    sig_depth = hprof_internal_depth();
    m_sig_handler_alloc();
    sig_ran = 1;
}

static void ct_raise_hook(void)
{
    hprof_table_insert_hook = NULL;
    raise(SIGUSR1);
}

CT_MARKER void m_sig_main(void)
{
    sig_main_block = malloc(777);
}

static void test_signal_in_slow_path(void **state)
{
    (void)state;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = ct_on_sigusr1;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
    m_sig_pre();
    struct hprof_snapshot before = ct_take();
    alarm(20); /* a deadlock ends the test with SIGALRM */
    hprof_table_insert_hook = ct_raise_hook;
    m_sig_main(); /* a new stack: insertion under the lock, where the hook raises */
    alarm(0);
    struct hprof_snapshot after = ct_take();
    assert_int_equal(sig_ran, 1);
    assert_true(sig_depth > 0);      /* the handler ran inside the profiler... */
    assert_int_equal(sig_tagged, 1); /* ...so its blocks were overhead blocks, */
    assert_int_equal(ct_delta(&before, &after, (void *)m_sig_handler_alloc).buckets,
                     0); /* unsampled */
    struct ct_truth t_pre = {0, 0, -1, -333}, t_main = {1, 777, 1, 777};
    ct_assert_exact("freed in the handler", ct_delta(&before, &after, (void *)m_sig_pre), t_pre);
    ct_assert_exact("interrupted", ct_delta(&before, &after, (void *)m_sig_main), t_main);
    free(sig_main_block);
    signal(SIGUSR1, SIG_DFL);
    hprof_snapshot_release(&before);
    hprof_snapshot_release(&after);
}

/* ---- fork while other threads sample ---- */

#define FORK_ROUNDS 20

static atomic_int fork_noise_stop;

CT_MARKER void *m_fork_noise(void *arg)
{
    (void)arg;
    while (!atomic_load(&fork_noise_stop)) {
        void *p = malloc(200);
        __asm__ volatile("" : : "r"(p) : "memory");
        free(p);
    }
    return NULL;
}

CT_MARKER void m_fork_parent(void **slots)
{
    for (int i = 0; i < 10; i++)
        slots[i] = malloc(111);
}

CT_MARKER void m_fork_child(void **slots)
{
    for (int i = 0; i < 5; i++)
        slots[i] = malloc(222);
}

/* In the child: no cmocka (its jump buffers belong to the parent); an exit code instead. */
static int ct_fork_child_checks(int round)
{
    void *slots[5];
    alarm(20);
    m_fork_child(slots);
    struct hprof_snapshot s;
    if (hprof_snapshot_take(&s) != 0)
        return 10;
    struct ct_sums c = ct_sum_fn(&s, (void *)m_fork_child);
    struct ct_sums p = ct_sum_fn(&s, (void *)m_fork_parent);
    int rc = 0;
    if (c.alloc_objects != 5 || c.inuse_bytes != 5 * 222)
        rc = 11;
    else if (p.inuse_objects != 10.0 * (round + 1))
        rc = 12;
    for (int i = 0; i < 5; i++)
        free(slots[i]);
    hprof_snapshot_release(&s);
    return rc;
}

static void test_fork(void **state)
{
    (void)state;
    static void *parent_slots[FORK_ROUNDS + 1][10];
    pthread_t noise[2];
    atomic_store(&fork_noise_stop, 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&noise[i], NULL, m_fork_noise, NULL), 0);
    struct hprof_snapshot before = ct_take();
    for (int round = 0; round < FORK_ROUNDS; round++) {
        m_fork_parent(parent_slots[round]);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            _exit(ct_fork_child_checks(round));
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            print_error("round %d: child status %#x\n", round, status);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    m_fork_parent(parent_slots[FORK_ROUNDS]);
    atomic_store(&fork_noise_stop, 1);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(noise[i], NULL), 0);
    struct hprof_snapshot after = ct_take();
    struct ct_truth t = {10 * (FORK_ROUNDS + 1), 1110 * (FORK_ROUNDS + 1), 10 * (FORK_ROUNDS + 1),
                         1110 * (FORK_ROUNDS + 1)};
    ct_assert_exact("parent across forks", ct_delta(&before, &after, (void *)m_fork_parent), t);
    assert_int_equal(ct_sum_fn(&after, (void *)m_fork_child).buckets, 0); /* only in children */
    for (int r = 0; r <= FORK_ROUNDS; r++)
        ct_free_all(parent_slots[r], 10);
    hprof_snapshot_release(&before);
    hprof_snapshot_release(&after);
}

/* ---- memory glibc handed out before the profiler saw it ---- */

CT_MARKER void *m_adopt(void *p)
{
    void *q = realloc(p, 5000);
    __asm__ volatile("" : : "r"(q) : "memory"); /* not a tail call: keep this frame */
    return q;
}

static void test_memory_from_before(void **state)
{
    (void)state;
    unsigned char *p = __libc_malloc(100);
    assert_non_null(p);
    assert_false(hprof_block_is_tagged(p));
    assert_true(malloc_usable_size(p) >= 100);
    for (int i = 0; i < 100; i++)
        p[i] = (unsigned char)i;
    struct hprof_snapshot before = ct_take();
    unsigned char *q = m_adopt(p); /* a glibc block becomes a sampled one */
    assert_non_null(q);
    assert_true(hprof_block_is_tagged(q));
    for (int i = 0; i < 100; i++)
        assert_int_equal(q[i], i);
    assert_true(malloc_usable_size(q) >= 5000);
    struct hprof_snapshot mid = ct_take();
    struct ct_truth t = {1, 5000, 1, 5000};
    ct_assert_exact("adopted", ct_delta(&before, &mid, (void *)m_adopt), t);
    free(q);
    struct hprof_snapshot after = ct_take();
    t.inuse_objects = t.inuse_bytes = 0;
    ct_assert_exact("adopted, freed", ct_delta(&before, &after, (void *)m_adopt), t);
    free(__libc_malloc(64)); /* a glibc block freed through the interposer */
    hprof_snapshot_release(&before);
    hprof_snapshot_release(&mid);
    hprof_snapshot_release(&after);
}

/* ---- the interposer is the process's malloc, for libc's own calls too ---- */

static void test_interposed(void **state)
{
    (void)state;
    void *(*global_malloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "malloc");
    void (*global_free)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "free");
    assert_ptr_equal(global_malloc, malloc);
    assert_ptr_equal(global_free, free);
    char *s = strdup("libc calls malloc through the PLT");
    assert_non_null(s);
    assert_true(hprof_block_is_tagged(s)); /* sampled at rate 1: it went through us */
    free(s);
    char *line = NULL;
    size_t cap = 0;
    FILE *f = fmemopen("a line\n", 7, "r");
    assert_non_null(f);
    assert_true(getline(&line, &cap, f) > 0);
    assert_true(hprof_block_is_tagged(line));
    free(line);
    fclose(f);
}

/* ---- the guard: the profiler's own allocations are overhead, counted exactly ---- */

CT_MARKER void *m_guarded(size_t n)
{
    hprof_internal_enter();
    void *p = malloc(n);
    p = realloc(p, 2 * n); /* an overhead block stays one when it grows */
    hprof_internal_exit();
    return p;
}

static void test_guard_overhead(void **state)
{
    (void)state;
    struct hprof_totals t0, t1, t2;
    struct hprof_snapshot before = ct_take();
    hprof_get_totals(&t0);
    void *p = m_guarded(1000);
    hprof_get_totals(&t1);
    assert_true(hprof_block_is_tagged(p));
    /* 2000 bytes and the 16-byte header; the table itself did not grow (no sample taken) */
    assert_int_equal(t1.overhead_bytes - t0.overhead_bytes, 2000 + 16);
    assert_true(t1.alloc_objects == t0.alloc_objects);
    free(p); /* freed outside the guard: still retired from the overhead */
    hprof_get_totals(&t2);
    assert_int_equal(t2.overhead_bytes, t0.overhead_bytes);
    struct hprof_snapshot after = ct_take();
    assert_int_equal(ct_delta(&before, &after, (void *)m_guarded).buckets, 0);
    hprof_internal_exit(); /* unbalanced: ignored, sampling goes on */
    assert_int_equal(hprof_internal_depth(), 0);
    void *q = malloc(10);
    assert_true(hprof_block_is_tagged(q));
    free(q);
    hprof_snapshot_release(&before);
    hprof_snapshot_release(&after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interposed),     cmocka_unit_test(test_exact_per_function),
        cmocka_unit_test(test_threads_exact),  cmocka_unit_test(test_signal_in_slow_path),
        cmocka_unit_test(test_fork),           cmocka_unit_test(test_memory_from_before),
        cmocka_unit_test(test_guard_overhead),
    };
    return cmocka_run_group_tests(tests, ct_setup, NULL);
}
