/*
 * The profiler's one fork sequence (hprof_fork.c) under fire: fork() many times, from two
 * threads at once, while every engine is running in the parent:
 *   - heap sampling at rate 1 (HEAPPROF_RATE=1 in the test's environment), from three threads
 *     that allocate and free without pause;
 *   - a CPU profile (per-thread SIGPROF timers and the drain thread);
 *   - the mutex and block profiles (HEAPPROF_MUTEX_FRACTION=1, HEAPPROF_BLOCK_RATE=1), which
 *     the allocating threads feed by contending for one mutex;
 *   - the symbolizer, warmed by a first heap profile and kept busy by a thread that writes heap
 *     profiles and captures the threads profile in a loop.
 * Every child must allocate (and see its allocations in the heap totals), write a symbolized
 * heap profile, capture its threads (exactly one), run a CPU profile of its own, and exit 0.
 * A child that deadlocks is killed by its own alarm() (the parent sees SIGALRM and fails); the
 * whole test is bounded by the parent's alarm() and ctest's TIMEOUT. Debug and test builds also
 * check the sequence's invariants (HPROF_ASSERT: prepare ran before parent/child, every stage
 * completed), so a broken order aborts a child or the parent here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heapprof.h"
#include "hprof_cpu.h"
#include "hprof_fork.h"
#include "hprof_threads.h"
#include "hprof_writers.h"

#define ALLOCATORS    3   /* threads allocating and contending in the parent */
#define FORKERS       2   /* threads calling fork() at once */
#define ROUNDS        25  /* forks per forking thread, at most */
#define MIN_ROUNDS    5   /* forks per forking thread, at least, whatever the machine's load */
#define FORK_BUDGET_S 45  /* seconds: no new round starts after this (once MIN_ROUNDS are done) */
#define TEST_ALARM_S  200 /* seconds: the whole test (ctest's TIMEOUT, 300, is above it) */
#define CHILD_ALARM_S 20  /* seconds: one child, from fork to exit */
#define CHILD_ALLOCS  2000
#define CHILD_CPU_NS  (30 * 1000 * 1000) /* nanoseconds of busy work under the child's profile */
#define CPU_HZ        200

static atomic_int stop_flag;
static pthread_mutex_t contended = PTHREAD_MUTEX_INITIALIZER;
static volatile uint64_t sink;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *allocator(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    void *keep[32] = {0};
    while (!atomic_load(&stop_flag)) {
        unsigned i = (seed = seed * 1103515245u + 12345u) >> 16;
        free(keep[i % 32]);
        keep[i % 32] = malloc(16 + i % 4000);
        if (i % 8 == 0) {
            pthread_mutex_lock(&contended);
            for (int k = 0; k < 200; k++)
                sink += (uint64_t)k * i;
            pthread_mutex_unlock(&contended);
        }
    }
    for (int k = 0; k < 32; k++)
        free(keep[k]);
    return NULL;
}

static int write_heap_profile(void)
{
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = hprof_write_profile_fd(fd, HPROF_HEAP);
    close(fd);
    return rc;
}

/* The symbolizer and the threads engine, busy in the parent while others fork. */
static void *profiler_load(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_flag)) {
        if (write_heap_profile() != 0)
            fprintf(stderr, "parent heap profile failed: %s\n", strerror(errno));
        struct hprof_threads t;
        if (hprof_threads_capture(&t) == 0)
            hprof_threads_release(&t);
    }
    return NULL;
}

/* In the child: each failure has its own exit code, so the parent's message says which. */
static int child_main(void)
{
    alarm(CHILD_ALARM_S);
    struct hprof_totals before, after;
    hprof_get_totals(&before);
    void *blocks[64] = {0};
    for (int i = 0; i < CHILD_ALLOCS; i++) {
        free(blocks[i % 64]);
        blocks[i % 64] = malloc(32 + (size_t)i % 512);
        if (blocks[i % 64] == NULL)
            return 10;
    }
    for (int i = 0; i < 64; i++)
        free(blocks[i]);
    hprof_get_totals(&after);
    if (after.alloc_objects < before.alloc_objects + CHILD_ALLOCS)
        return 11; /* rate 1: every allocation of the child is sampled */
    if (write_heap_profile() != 0)
        return 12;
    /* Before the child's CPU profile: its drain thread, once joined, may still be listed in
     * /proc/self/task until the kernel has reaped it (seen under load: 2 threads listed). */
    struct hprof_threads t;
    if (hprof_threads_capture(&t) != 0)
        return 15;
    int one = t.n == 1;
    hprof_threads_release(&t);
    if (!one)
        return 16; /* the child has exactly the thread that forked */

    if (hprof_cpu_start(CPU_HZ) != 0) /* the parent's profile does not follow the child */
        return 13;
    int64_t until = now_ns() + CHILD_CPU_NS;
    while (now_ns() < until)
        sink++;
    uint8_t *gz = NULL;
    size_t len = 0;
    if (hprof_cpu_stop(&gz, &len) != 0 || len == 0)
        return 14;
    hprof_cpu_free(gz);
    pthread_mutex_t own = PTHREAD_MUTEX_INITIALIZER; /* the lock interposer, in the child */
    if (pthread_mutex_lock(&own) != 0 || pthread_mutex_unlock(&own) != 0)
        return 17;
    return 0;
}

static atomic_int failures;

/* Wait for the child, at most CHILD_ALARM_S + 10 s: a child that hangs before its own alarm()
 * (inside fork's child handlers) would otherwise hang the test, and once the test's alarm has
 * killed the parent it would hold ctest's output pipe, which then reports only a timeout. A
 * hung child's stacks are printed (gdb, when installed) and it is killed. Returns the pid, or
 * 0 for a hung child. */
static pid_t wait_child(pid_t pid, int *status)
{
    int64_t deadline = now_ns() + (int64_t)(CHILD_ALARM_S + 10) * 1000000000;
    for (;;) {
        pid_t w = waitpid(pid, status, WNOHANG);
        if (w != 0 && !(w < 0 && errno == EINTR))
            return w;
        if (now_ns() > deadline)
            break;
        usleep(10 * 1000);
    }
    fprintf(stderr, "child %d hung (no exit in %d s); its stacks:\n", (int)pid, CHILD_ALARM_S + 10);
    char cmd[160];
    snprintf(cmd, sizeof(cmd),
             "timeout 60 gdb -q -batch -p %d -ex 'thread apply all bt 30' 2>&1 | grep -E "
             "'^#|^Thread' >&2",
             (int)pid);
    if (system(cmd) != 0)
        fprintf(stderr, "(no stacks: gdb failed or is not installed)\n");
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
    return 0;
}

/* Rounds run until ROUNDS, or until FORK_BUDGET_S have passed once MIN_ROUNDS are done: 50
 * forks take 5-24 s on an idle 2-core machine and came within the 100 s alarm under load
 * (average 12, with this test's own four busy threads). A deadlock is still caught: a child by
 * its own alarm, a parent stuck in the fork sequence by the test's. */
static int64_t fork_budget_end;

static void *forker(void *arg)
{
    (void)arg;
    for (int round = 0; round < ROUNDS; round++) {
        if (round >= MIN_ROUNDS && now_ns() > fork_budget_end)
            break;
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "fork: %s\n", strerror(errno));
            atomic_fetch_add(&failures, 1);
            return NULL;
        }
        if (pid == 0)
            _exit(child_main());
        int status = 0;
        pid_t w = wait_child(pid, &status);
        if (w == 0) {
            atomic_fetch_add(&failures, 1);
            continue; /* hung: reported and killed */
        }
        if (w != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "child %d: %s %d\n", (int)pid,
                    WIFSIGNALED(status) ? "killed by signal" : "exit status",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            atomic_fetch_add(&failures, 1);
        }
    }
    return NULL;
}

static void test_fork_with_every_engine_running(void **state)
{
    (void)state;
    alarm(TEST_ALARM_S);
    fork_budget_end = now_ns() + (int64_t)FORK_BUDGET_S * 1000000000;
    assert_int_equal(write_heap_profile(), 0); /* the symbolizer, warm */
    assert_int_equal(hprof_cpu_start(CPU_HZ), 0);
    unsigned long forks_before = hprof_fork_count();

    pthread_t alloc[ALLOCATORS], load, fork_threads[FORKERS];
    for (int i = 0; i < ALLOCATORS; i++)
        assert_int_equal(pthread_create(&alloc[i], NULL, allocator, (void *)(uintptr_t)(i + 1)), 0);
    assert_int_equal(pthread_create(&load, NULL, profiler_load, NULL), 0);
    for (int i = 0; i < FORKERS; i++)
        assert_int_equal(pthread_create(&fork_threads[i], NULL, forker, NULL), 0);
    for (int i = 0; i < FORKERS; i++)
        assert_int_equal(pthread_join(fork_threads[i], NULL), 0);
    atomic_store(&stop_flag, 1);
    assert_int_equal(pthread_join(load, NULL), 0);
    for (int i = 0; i < ALLOCATORS; i++)
        assert_int_equal(pthread_join(alloc[i], NULL), 0);

    assert_int_equal(atomic_load(&failures), 0);
    /* Every fork went through the one sequence, as the parent. */
    unsigned long forks = hprof_fork_count() - forks_before;
    print_message("%lu forks (at least %d, at most %d)\n", forks, FORKERS * MIN_ROUNDS,
                  FORKERS * ROUNDS);
    assert_true(forks >= (unsigned long)(FORKERS * MIN_ROUNDS));
    /* The parent's engines carry on: its CPU profile, and the heap after all those forks. */
    uint8_t *gz = NULL;
    size_t len = 0;
    assert_int_equal(hprof_cpu_stop(&gz, &len), 0);
    assert_true(len > 0);
    hprof_cpu_free(gz);
    assert_int_equal(write_heap_profile(), 0);
    alarm(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fork_with_every_engine_running),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
