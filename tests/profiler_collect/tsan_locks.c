/*
 * The lock interposer's tables under ThreadSanitizer: hprof_locks.c (with hprof_tcreate.c, the
 * sampler's random numbers, the environment and fork modules) compiled with -fsanitize=thread
 * from their sources (see CMakeLists.txt), so every access to the waiter table, the stack table,
 * the rates and the threadcreate records is checked. Under TSan the interposer forwards to
 * TSan's own interceptors (hprof_locks.c, HPROF_UNDER_TSAN), so TSan also sees every lock the
 * program takes through it. The malloc interposer is not here (TSan owns malloc): the guard is
 * this file's thread-local counter, and the unwinder glibc's backtrace(3).
 *
 * For about a second: WORKERS threads contend for a few mutexes (the mutex and block profiles
 * both on at their finest: every contended release, every wait), an rwlock, a condition
 * variable and a semaphore; a switcher turns the profiles off and on and opens and closes
 * ?seconds windows; a reader takes snapshots and deltas; a spawner makes short-lived threads
 * (threadcreate's records). TSan aborts the run (halt_on_error) on any data race or lock-order
 * problem. At the end the counts must add up: every increment made under an interposed lock
 * is there, contention was seen and recorded, and no spawned thread is still counted live.
 */
#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "hprof_collect.h"
#include "hprof_locks.h"
#include "hprof_unwind.h"

#define WORKERS 6
#define MUTEXES 3
#define RUN_NS  (1000 * 1000 * 1000LL) /* how long the threads run */

/* ---- the guard (hprof_malloc.c's, which is not linked here) ---- */

static __thread int guard_depth;

void hprof_internal_enter(void)
{
    guard_depth++;
}

void hprof_internal_exit(void)
{
    if (--guard_depth < 0)
        abort(); /* unbalanced: a bug the test must see */
}

int hprof_internal_depth(void)
{
    return guard_depth;
}

/* ---- the unwinder ----
 * libunwind is not linked: its per-thread cache is freed by a thread-specific-data destructor
 * that takes a lock in the destructors' last round, after TSan's own destructor has finished
 * the thread, and TSan's interceptor then crashes on that lock. glibc's backtrace(3) gives the
 * same return addresses, innermost first, without a per-thread cache. */
int unw_backtrace(void **buffer, int size)
{
    return backtrace(buffer, size);
}

void hprof_unwind_init(void) /* libunwind's caching policy: no libunwind here */
{
}

/* ---- the work ---- */

static pthread_mutex_t mutexes[MUTEXES] = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
                                           PTHREAD_MUTEX_INITIALIZER};
static long counters[MUTEXES]; /* each under its mutex: plain, so TSan checks the locking */
static pthread_rwlock_t rwlock = PTHREAD_RWLOCK_INITIALIZER;
static long rw_value; /* under rwlock */
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cond = PTHREAD_COND_INITIALIZER;
static long queued; /* under queue_lock */
static sem_t sem;
static atomic_bool stop;
static atomic_long increments, spawned;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void spin(int n)
{
    for (volatile int i = 0; i < n; i++)
        ;
}

static void *worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (long i = 0; !atomic_load(&stop); i++) {
        int k = (int)(rand_r(&seed) % MUTEXES);
        pthread_mutex_lock(&mutexes[k]);
        counters[k]++;
        spin(200); /* hold it long enough for others to find it held */
        pthread_mutex_unlock(&mutexes[k]);
        atomic_fetch_add(&increments, 1);
        if (i % 8 == 0) {
            pthread_rwlock_wrlock(&rwlock);
            rw_value++;
            pthread_rwlock_unlock(&rwlock);
        } else {
            pthread_rwlock_rdlock(&rwlock);
            long v = rw_value;
            (void)v;
            pthread_rwlock_unlock(&rwlock);
        }
        if (i % 16 == 0) { /* a producer and a consumer, in turn */
            pthread_mutex_lock(&queue_lock);
            if ((uintptr_t)arg % 2 == 0) {
                queued++;
                pthread_cond_signal(&queue_cond);
            } else {
                struct timespec deadline;
                clock_gettime(CLOCK_REALTIME, &deadline);
                deadline.tv_nsec += 1000 * 1000;
                if (deadline.tv_nsec >= 1000000000) {
                    deadline.tv_sec++;
                    deadline.tv_nsec -= 1000000000;
                }
                while (queued == 0 && !atomic_load(&stop) &&
                       pthread_cond_timedwait(&queue_cond, &queue_lock, &deadline) == 0)
                    ;
                if (queued > 0)
                    queued--;
            }
            pthread_mutex_unlock(&queue_lock);
            sem_post(&sem);
            struct timespec soon;
            clock_gettime(CLOCK_REALTIME, &soon);
            soon.tv_sec++;
            (void)sem_timedwait(&sem, &soon);
        }
    }
    return NULL;
}

/* Profiles off and on, and windows opened and closed, while the workers run. */
static void *switcher(void *arg)
{
    (void)arg;
    for (int i = 0; !atomic_load(&stop); i++) {
        switch (i % 4) {
        case 0:
            hprof_locks_set_rates(0, 0);
            break;
        case 1:
            hprof_locks_window_begin();
            break;
        case 2:
            hprof_locks_window_end();
            break;
        default:
            hprof_locks_set_rates(1, 1);
            break;
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* Snapshots and deltas of every profile while records are being added. */
static void *reader(void *arg)
{
    (void)arg;
    struct hprof_lock_snapshot prev[3] = {{0}};
    while (!atomic_load(&stop)) {
        for (int p = 0; p < 3; p++) {
            struct hprof_lock_snapshot s, d;
            if (hprof_locks_snapshot((enum hprof_lock_profile)p, &s) != 0)
                abort();
            if (hprof_locks_delta(&prev[p], &s, &d) != 0)
                abort();
            hprof_locks_snapshot_release(&d);
            hprof_locks_snapshot_release(&prev[p]);
            prev[p] = s;
        }
        struct hprof_lock_stats st;
        hprof_locks_get_stats(&st);
        (void)hprof_threadcreate_total();
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int p = 0; p < 3; p++)
        hprof_locks_snapshot_release(&prev[p]);
    return NULL;
}

static void *short_lived(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mutexes[0]);
    counters[0]++;
    pthread_mutex_unlock(&mutexes[0]);
    atomic_fetch_add(&increments, 1);
    return NULL;
}

/* Threads that come and go: threadcreate's records counted up and down from many threads. */
static void *spawner(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        pthread_t t[4];
        for (int i = 0; i < 4; i++)
            if (pthread_create(&t[i], NULL, short_lived, NULL) != 0)
                abort();
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
        atomic_fetch_add(&spawned, 4);
    }
    return NULL;
}

int main(void)
{
    if (sem_init(&sem, 0, 0) != 0)
        return 1;
    hprof_locks_set_rates(1, 1); /* every contended release; every wait */
    uint64_t live0 = hprof_threadcreate_total();
    pthread_t workers[WORKERS], helpers[3];
    for (int i = 0; i < WORKERS; i++)
        if (pthread_create(&workers[i], NULL, worker, (void *)(uintptr_t)(i + 1)) != 0)
            return 1;
    if (pthread_create(&helpers[0], NULL, switcher, NULL) != 0 ||
        pthread_create(&helpers[1], NULL, reader, NULL) != 0 ||
        pthread_create(&helpers[2], NULL, spawner, NULL) != 0)
        return 1;
    int64_t end = now_ns() + RUN_NS;
    while (now_ns() < end) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(workers[i], NULL);
    for (int i = 0; i < 3; i++)
        pthread_join(helpers[i], NULL);

    long total = 0;
    for (int k = 0; k < MUTEXES; k++) {
        pthread_mutex_lock(&mutexes[k]);
        total += counters[k];
        pthread_mutex_unlock(&mutexes[k]);
    }
    struct hprof_lock_stats st;
    hprof_locks_get_stats(&st);
    uint64_t live = hprof_threadcreate_total();
    printf("tsan_locks: %ld increments (%ld counted), %ld threads spawned, contended %llu, "
           "mutex samples %llu, block samples %llu, stacks %llu, live threads %llu (%llu before)\n",
           atomic_load(&increments), total, atomic_load(&spawned), (unsigned long long)st.contended,
           (unsigned long long)st.mutex_samples, (unsigned long long)st.block_samples,
           (unsigned long long)st.stacks, (unsigned long long)live, (unsigned long long)live0);
    int fails = 0;
    if (total != atomic_load(&increments)) {
        fprintf(stderr, "FAIL: increments under the interposed locks were lost\n");
        fails++;
    }
    if (st.contended == 0 || st.mutex_samples == 0 || st.block_samples == 0) {
        fprintf(stderr, "FAIL: no contention seen or recorded: the test did not test\n");
        fails++;
    }
    if (atomic_load(&spawned) == 0 || live != live0) {
        fprintf(stderr, "FAIL: threadcreate still counts threads that ended\n");
        fails++;
    }
    sem_destroy(&sem);
    return fails == 0 ? 0 : 1;
}
