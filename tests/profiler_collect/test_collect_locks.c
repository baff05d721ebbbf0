/*
 * The lock interposer (hprof_locks.c), linked as the servers link it, with contention made on
 * purpose between threads whose functions live in sections of their own, so that a record's
 * stack can be attributed exactly (its PCs fall in the holder's section or the waiter's).
 *
 * What it pins down: the mutex profile blames the stack that HELD the lock and the block
 * profile the stack that WAITED, each with about the time the waiter waited; a fraction of 1 in
 * 4 gives an unbiased count; short waits sampled at a rate give an unbiased total; off records
 * nothing; the guard keeps the profiler's own locks out; rwlocks and condition variables;
 * a window switches a profile on and back off; a delta holds only what happened in between;
 * threadcreate lists the stacks that created the threads alive now (a thread that returns,
 * calls pthread_exit or is cancelled leaves it), and a fork child only its own thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hprof_locks.h"

#define HOLD_NS (40 * 1000 * 1000) /* how long the holder keeps the lock in the blame tests */

#define HOLDER_TEXT __attribute__((noinline, section("test_holder")))
#define WAITER_TEXT __attribute__((noinline, section("test_waiter")))
extern const char __start_test_holder[], __stop_test_holder[];
extern const char __start_test_waiter[], __stop_test_waiter[];
#define SPAWNER_TEXT __attribute__((noinline, section("test_spawner")))
extern const char __start_test_spawner[], __stop_test_spawner[];

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t rwlock = PTHREAD_RWLOCK_INITIALIZER;
static atomic_int holding;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    nanosleep(&ts, NULL);
}

static bool in_section(const struct hprof_lock_record *r, const char *start, const char *stop)
{
    for (int i = 0; i < r->depth; i++)
        if (r->pcs[i] >= (uintptr_t)start && r->pcs[i] < (uintptr_t)stop)
            return true;
    return false;
}

/* Sum of the records of a profile whose stacks pass through [start, stop). */
static void totals(enum hprof_lock_profile profile, const char *start, const char *stop,
                   double *count, int64_t *delay)
{
    struct hprof_lock_snapshot s;
    assert_int_equal(hprof_locks_snapshot(profile, &s), 0);
    *count = 0;
    *delay = 0;
    for (size_t i = 0; i < s.n; i++)
        if (in_section(&s.v[i], start, stop)) {
            *count += s.v[i].count;
            *delay += s.v[i].delay_ns;
        }
    hprof_locks_snapshot_release(&s);
}

/* ---- one long hold, one waiter ---- */

/* The holder keeps the lock until the waiter is asleep on it (glibc's lock word says 2), then
 * HOLD_NS more: the waiter waits at least HOLD_NS however late the scheduler runs it. `holding`
 * goes 0 -> 1 -> 2 and never back, so a main thread that looks late still sees it set. */
HOLDER_TEXT static void holder_holds_mutex(void)
{
    pthread_mutex_lock(&mutex);
    atomic_store(&holding, 1);
    while (mutex.__data.__lock != 2)
        sched_yield();
    sleep_ns(HOLD_NS);
    pthread_mutex_unlock(&mutex);
    atomic_store(&holding, 2); /* after the unlock: no tail call, this frame stays on the stack */
}

static void *holder_thread(void *arg)
{
    (void)arg;
    holder_holds_mutex();
    return NULL;
}

WAITER_TEXT static void waiter_waits_for_mutex(void)
{
    pthread_mutex_lock(&mutex);
    pthread_mutex_unlock(&mutex);
}

static void contend_once(void)
{
    pthread_t holder;
    atomic_store(&holding, 0);
    assert_int_equal(pthread_create(&holder, NULL, holder_thread, NULL), 0);
    while (!atomic_load(&holding))
        sched_yield();
    waiter_waits_for_mutex();
    pthread_join(holder, NULL);
}

static void test_blame_holder_and_waiter(void **state)
{
    (void)state;
    hprof_locks_set_rates(1, 1);
    double c0, c1, w0, w1;
    int64_t d0, d1, e0, e1;
    totals(HPROF_LOCK_MUTEX, __start_test_holder, __stop_test_holder, &c0, &d0);
    totals(HPROF_LOCK_BLOCK, __start_test_waiter, __stop_test_waiter, &w0, &e0);
    int64_t t0 = now_ns();
    contend_once();
    int64_t took = now_ns() - t0;
    totals(HPROF_LOCK_MUTEX, __start_test_holder, __stop_test_holder, &c1, &d1);
    totals(HPROF_LOCK_BLOCK, __start_test_waiter, __stop_test_waiter, &w1, &e1);
    hprof_locks_set_rates(0, 0);

    /* The holder is blamed in the mutex profile for about the waiter's wait: most of HOLD_NS
     * (the waiter starts waiting a moment after the holder took the lock), never more than the
     * whole run. */
    assert_true(c1 - c0 > 0.99 && c1 - c0 < 1.01);
    if (d1 - d0 < HOLD_NS / 2 || d1 - d0 > took)
        fail_msg("mutex delay %lld ns, expected %d..%lld", (long long)(d1 - d0), HOLD_NS / 2,
                 (long long)took);
    /* The waiter is in the block profile with the same wait. */
    assert_true(w1 - w0 > 0.99 && w1 - w0 < 1.01);
    if (e1 - e0 < HOLD_NS / 2 || e1 - e0 > took)
        fail_msg("block delay %lld ns, expected %d..%lld", (long long)(e1 - e0), HOLD_NS / 2,
                 (long long)took);
    /* And neither the other way round. */
    double x;
    int64_t xd;
    totals(HPROF_LOCK_MUTEX, __start_test_waiter, __stop_test_waiter, &x, &xd);
    assert_true(x == 0 && xd == 0);
    totals(HPROF_LOCK_BLOCK, __start_test_holder, __stop_test_holder, &x, &xd);
    assert_true(x == 0 && xd == 0);
}

/* ---- many short contended hand-overs ---- */

#define HANDOVERS 2000
static atomic_int turn;

/* The holder takes the lock, lets the waiter try, and releases only once the waiter is asleep
 * on it (glibc's lock word says 2): every round is exactly one contended release. */
HOLDER_TEXT static void holder_rounds(void)
{
    for (int i = 0; i < HANDOVERS; i++) {
        pthread_mutex_lock(&mutex);
        atomic_store(&turn, 1);
        while (mutex.__data.__lock != 2)
            sched_yield();
        pthread_mutex_unlock(&mutex);
        while (atomic_load(&turn) != 0)
            sched_yield();
    }
}

static void *rounds_holder_thread(void *arg)
{
    (void)arg;
    holder_rounds();
    return NULL;
}

WAITER_TEXT static void waiter_rounds(void)
{
    for (int i = 0; i < HANDOVERS; i++) {
        while (atomic_load(&turn) != 1)
            sched_yield();
        pthread_mutex_lock(&mutex);
        pthread_mutex_unlock(&mutex);
        atomic_store(&turn, 0);
    }
}

static void test_fraction_is_unbiased(void **state)
{
    (void)state;
    hprof_locks_set_rates(4, 0);
    double c0, c1;
    int64_t d0, d1;
    totals(HPROF_LOCK_MUTEX, __start_test_holder, __stop_test_holder, &c0, &d0);
    atomic_store(&turn, 0);
    pthread_t holder;
    assert_int_equal(pthread_create(&holder, NULL, rounds_holder_thread, NULL), 0);
    waiter_rounds();
    pthread_join(holder, NULL);
    totals(HPROF_LOCK_MUTEX, __start_test_holder, __stop_test_holder, &c1, &d1);
    hprof_locks_set_rates(0, 0);
    /* Samples ~ Binomial(2000, 1/4), each counting 4: mean 2000, sd 4 * sqrt(375) = 77.5. The
     * bound is 5 sd: a correct sampler fails it about once in 1.7 million runs. */
    double count = c1 - c0;
    if (count < HANDOVERS - 390 || count > HANDOVERS + 390)
        fail_msg("estimated %.0f contentions for %d", count, HANDOVERS);
}

/* ---- the block rate on short waits ---- */

#define SHORT_WAITS 400
#define SHORT_NS    (1000 * 1000) /* each wait's timeout */
#define RATE_NS     (4 * 1000 * 1000)

WAITER_TEXT static int64_t waiter_short_waits(void)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    int64_t waited = 0;
    pthread_mutex_lock(&m);
    for (int i = 0; i < SHORT_WAITS; i++) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_nsec += SHORT_NS;
        if (deadline.tv_nsec >= 1000000000) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000;
        }
        int64_t t0 = now_ns();
        assert_int_equal(pthread_cond_timedwait(&c, &m, &deadline), ETIMEDOUT);
        waited += now_ns() - t0;
    }
    pthread_mutex_unlock(&m);
    return waited;
}

static void test_block_rate_is_unbiased(void **state)
{
    (void)state;
    hprof_locks_set_rates(0, RATE_NS);
    double c0, c1;
    int64_t d0, d1;
    totals(HPROF_LOCK_BLOCK, __start_test_waiter, __stop_test_waiter, &c0, &d0);
    int64_t waited = waiter_short_waits();
    totals(HPROF_LOCK_BLOCK, __start_test_waiter, __stop_test_waiter, &c1, &d1);
    hprof_locks_set_rates(0, 0);
    /* Each wait of d < rate is kept with probability d / rate and then counts rate / d waits and
     * rate ns: unbiased for both. With d ~ 1 ms and rate 4 ms, about 100 of 400 are kept; the
     * count's sd is about sqrt(400 * 3) = 35 (9%), the delay's about the same relative; a
     * wait a busy machine stretched beyond the rate is kept whole. Bounds: 35%, about 4 sd. */
    double count = c1 - c0;
    double delay = (double)(d1 - d0);
    if (count < SHORT_WAITS * 0.65 || count > SHORT_WAITS * 1.35)
        fail_msg("estimated %.0f waits for %d", count, SHORT_WAITS);
    if (delay < (double)waited * 0.65 || delay > (double)waited * 1.35)
        fail_msg("estimated %.0f ns of waiting for %lld", delay, (long long)waited);
}

/* ---- off, guard, rwlock, window, delta ---- */

static void test_off_records_nothing(void **state)
{
    (void)state;
    hprof_locks_set_rates(0, 0);
    struct hprof_lock_stats before, after;
    hprof_locks_get_stats(&before);
    contend_once();
    hprof_locks_get_stats(&after);
    assert_int_equal(after.mutex_samples, before.mutex_samples);
    assert_int_equal(after.block_samples, before.block_samples);
    assert_int_equal(after.contended, before.contended);
}

static void *guarded_holder_thread(void *arg)
{
    (void)arg;
    hprof_internal_enter();
    holder_holds_mutex();
    hprof_internal_exit();
    return NULL;
}

static void test_profiler_locks_never_appear(void **state)
{
    (void)state;
    hprof_locks_set_rates(1, 1);
    struct hprof_lock_stats before, after;
    hprof_locks_get_stats(&before);
    pthread_t holder;
    atomic_store(&holding, 0);
    assert_int_equal(pthread_create(&holder, NULL, guarded_holder_thread, NULL), 0);
    while (!atomic_load(&holding))
        sched_yield();
    hprof_internal_enter(); /* the waiter is "inside the profiler" too */
    waiter_waits_for_mutex();
    hprof_internal_exit();
    pthread_join(holder, NULL);
    hprof_locks_get_stats(&after);
    hprof_locks_set_rates(0, 0);
    assert_int_equal(after.mutex_samples, before.mutex_samples);
    assert_int_equal(after.block_samples, before.block_samples);
}

/* As holder_holds_mutex: a reader has registered in glibc's reader count (bits 3 and up of
 * __readers) and waits for the write phase to end before the HOLD_NS start. */
HOLDER_TEXT static void holder_holds_rwlock(void)
{
    pthread_rwlock_wrlock(&rwlock);
    atomic_store(&holding, 1);
    while ((__atomic_load_n(&rwlock.__data.__readers, __ATOMIC_ACQUIRE) >> 3) == 0)
        sched_yield();
    sleep_ns(HOLD_NS);
    pthread_rwlock_unlock(&rwlock);
    atomic_store(&holding, 2);
}

static void *rw_holder_thread(void *arg)
{
    (void)arg;
    holder_holds_rwlock();
    return NULL;
}

WAITER_TEXT static void waiter_reads_rwlock(void)
{
    pthread_rwlock_rdlock(&rwlock);
    pthread_rwlock_unlock(&rwlock);
}

static void test_rwlock(void **state)
{
    (void)state;
    hprof_locks_set_rates(1, 1);
    double c0, c1, w0, w1;
    int64_t d0, d1, e0, e1;
    totals(HPROF_LOCK_MUTEX, __start_test_holder, __stop_test_holder, &c0, &d0);
    totals(HPROF_LOCK_BLOCK, __start_test_waiter, __stop_test_waiter, &w0, &e0);
    pthread_t holder;
    atomic_store(&holding, 0);
    assert_int_equal(pthread_create(&holder, NULL, rw_holder_thread, NULL), 0);
    while (!atomic_load(&holding))
        sched_yield();
    waiter_reads_rwlock();
    pthread_join(holder, NULL);
    totals(HPROF_LOCK_MUTEX, __start_test_holder, __stop_test_holder, &c1, &d1);
    totals(HPROF_LOCK_BLOCK, __start_test_waiter, __stop_test_waiter, &w1, &e1);
    hprof_locks_set_rates(0, 0);
    assert_true(c1 - c0 > 0.99);
    assert_true(d1 - d0 >= HOLD_NS / 2);
    assert_true(w1 - w0 > 0.99);
    assert_true(e1 - e0 >= HOLD_NS / 2);
}

static void test_window(void **state)
{
    (void)state;
    uint64_t fraction, rate;
    hprof_locks_set_rates(0, 0);
    hprof_locks_window_begin();
    hprof_locks_rates(&fraction, &rate);
    assert_int_equal(fraction, HPROF_LOCKS_WINDOW_FRACTION);
    assert_int_equal(rate, HPROF_LOCKS_WINDOW_RATE_NS);
    hprof_locks_window_begin(); /* two requests at once */
    hprof_locks_window_end();
    hprof_locks_rates(&fraction, &rate);
    assert_int_equal(fraction, HPROF_LOCKS_WINDOW_FRACTION);
    hprof_locks_window_end();
    hprof_locks_rates(&fraction, &rate);
    assert_int_equal(fraction, 0);
    assert_int_equal(rate, 0);
    /* A configured rate is kept through a window. */
    hprof_locks_set_rates(7, 0);
    hprof_locks_window_begin();
    hprof_locks_rates(&fraction, &rate);
    assert_int_equal(fraction, 7);
    assert_int_equal(rate, HPROF_LOCKS_WINDOW_RATE_NS);
    hprof_locks_window_end();
    hprof_locks_rates(&fraction, &rate);
    assert_int_equal(fraction, 7);
    assert_int_equal(rate, 0);
    hprof_locks_set_rates(0, 0);
}

static void test_delta(void **state)
{
    (void)state;
    hprof_locks_set_rates(1, 1);
    contend_once();
    struct hprof_lock_snapshot p0, p1, d;
    assert_int_equal(hprof_locks_snapshot(HPROF_LOCK_MUTEX, &p0), 0);
    contend_once();
    assert_int_equal(hprof_locks_snapshot(HPROF_LOCK_MUTEX, &p1), 0);
    hprof_locks_set_rates(0, 0);
    assert_int_equal(hprof_locks_delta(&p0, &p1, &d), 0);
    double count = 0;
    for (size_t i = 0; i < d.n; i++)
        if (in_section(&d.v[i], __start_test_holder, __stop_test_holder))
            count += d.v[i].count;
    assert_true(count > 0.99 && count < 1.01); /* the second round only */
    assert_int_equal(d.period, p1.period);
    hprof_locks_snapshot_release(&p0);
    hprof_locks_snapshot_release(&p1);
    hprof_locks_snapshot_release(&d);
}

static void test_errors_pass_through(void **state)
{
    (void)state;
    /* An error-checking mutex relocked by its owner: glibc's answer, with a profile on or off. */
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_t m;
    pthread_mutex_init(&m, &attr);
    for (int on = 0; on <= 1; on++) {
        hprof_locks_set_rates(on, on);
        assert_int_equal(pthread_mutex_lock(&m), 0);
        assert_int_equal(pthread_mutex_lock(&m), EDEADLK);
        assert_int_equal(pthread_mutex_trylock(&m), EBUSY);
        assert_int_equal(pthread_mutex_unlock(&m), 0);
        assert_int_equal(pthread_mutex_unlock(&m), EPERM);
    }
    hprof_locks_set_rates(0, 0);
    pthread_mutex_destroy(&m);
    pthread_mutexattr_destroy(&attr);
}

/* ---- threadcreate: live threads only ---- */

enum { TC_RETURNS, TC_EXITS, TC_CANCELLED, TC_FORKS, TC_THREADS };
static atomic_int tc_started, tc_release, tc_child_status = -1;
static int tc_pipe[2];

/* Threads counted in threadcreate records whose creating stack passes through the spawner
 * (no cmocka assert: a fork child calls it too). -1 if no snapshot. */
static double tc_spawned_live(void)
{
    struct hprof_lock_snapshot s;
    if (hprof_locks_snapshot(HPROF_THREADCREATE, &s) != 0)
        return -1;
    double n = 0;
    for (size_t i = 0; i < s.n; i++)
        if (in_section(&s.v[i], __start_test_spawner, __stop_test_spawner))
            n += s.v[i].count;
    hprof_locks_snapshot_release(&s);
    return n;
}

/* The child of a fork made on a spawned thread: that thread is the only one it has. */
static int tc_fork_child_sees_itself(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0)
        _exit(tc_spawned_live() == 1 && hprof_threadcreate_total() == 1 ? 0 : 1);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static void *tc_thread(void *arg)
{
    int kind = (int)(intptr_t)arg;
    atomic_fetch_add(&tc_started, 1);
    if (kind == TC_CANCELLED) {
        char c;
        for (;;)
            (void)read(tc_pipe[0], &c, 1); /* nobody writes: a cancellation point to wait in */
    }
    while (atomic_load(&tc_release) <= kind)
        sleep_ns(1000 * 1000);
    if (kind == TC_EXITS)
        pthread_exit(NULL);
    if (kind == TC_FORKS)
        atomic_store(&tc_child_status, tc_fork_child_sees_itself());
    return NULL;
}

SPAWNER_TEXT static void tc_spawn(pthread_t *threads)
{
    for (int i = 0; i < TC_THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, tc_thread, (void *)(intptr_t)i), 0);
    __asm__ volatile("" ::: "memory"); /* no tail call: this frame is on every creating stack */
}

static void test_threadcreate_lists_live_threads(void **state)
{
    (void)state;
    assert_int_equal(pipe(tc_pipe), 0);
    uint64_t others = hprof_threadcreate_total(); /* none, unless a test left one running */
    pthread_t threads[TC_THREADS];
    tc_spawn(threads);
    while (atomic_load(&tc_started) < TC_THREADS)
        sleep_ns(1000 * 1000);
    assert_true(tc_spawned_live() == TC_THREADS);
    assert_int_equal(hprof_threadcreate_total(), others + TC_THREADS);

    /* A child forked from the main thread has none of them (and the main thread is not one). */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(tc_spawned_live() == 0 && hprof_threadcreate_total() == 0 ? 0 : 1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* One returns, one calls pthread_exit, one is cancelled: each leaves the profile. */
    atomic_store(&tc_release, TC_RETURNS + 1);
    assert_int_equal(pthread_join(threads[TC_RETURNS], NULL), 0);
    assert_true(tc_spawned_live() == TC_THREADS - 1);
    atomic_store(&tc_release, TC_EXITS + 1);
    assert_int_equal(pthread_join(threads[TC_EXITS], NULL), 0);
    assert_true(tc_spawned_live() == TC_THREADS - 2);
    assert_int_equal(pthread_cancel(threads[TC_CANCELLED]), 0);
    void *ret;
    assert_int_equal(pthread_join(threads[TC_CANCELLED], &ret), 0);
    assert_ptr_equal(ret, PTHREAD_CANCELED);
    assert_true(tc_spawned_live() == 1);
    assert_int_equal(hprof_threadcreate_total(), others + 1);

    /* The last one forks: its child counts that thread, and only it. */
    atomic_store(&tc_release, TC_FORKS + 1);
    assert_int_equal(pthread_join(threads[TC_FORKS], NULL), 0);
    assert_int_equal(atomic_load(&tc_child_status), 0);
    assert_true(tc_spawned_live() == 0);
    assert_int_equal(hprof_threadcreate_total(), others);
    close(tc_pipe[0]);
    close(tc_pipe[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blame_holder_and_waiter),
        cmocka_unit_test(test_fraction_is_unbiased),
        cmocka_unit_test(test_block_rate_is_unbiased),
        cmocka_unit_test(test_off_records_nothing),
        cmocka_unit_test(test_profiler_locks_never_appear),
        cmocka_unit_test(test_rwlock),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_delta),
        cmocka_unit_test(test_errors_pass_through),
        cmocka_unit_test(test_threadcreate_lists_live_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
