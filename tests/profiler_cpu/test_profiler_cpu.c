/*
 * The CPU profiler against busy code whose CPU split is known, in a program linked with the
 * static profiler as the servers are (the interposer runs too).
 *
 *   api:        EINVAL/EBUSY contract, refusal when the program owns ITIMER_PROF or SIGPROF,
 *               and the drain thread blocks the program's signals (SIGTERM...) but not SIGPROF.
 *   busy:       a worker thread interleaves cpu_hot_two (2 units) and cpu_hot_one (1 unit) for
 *               BUSY_CPU_S of its CPU time. The profile decodes; sample types, period,
 *               duration and time are Go's; every value pair is (n, n * period); the sample
 *               count is within COUNT_TOLERANCE of hz * the process's CPU seconds; the share
 *               of cpu_hot_two among the hot samples is within 4 binomial sigmas of 2/3; the
 *               hot frames' caller is busy_worker (callers are symbolized as calls); neither
 *               the handler nor the signal trampoline appears in any stack.
 *   threads:    two threads started after the profile, each spinning in its own function for
 *               the same thread CPU time, concurrently: both are picked up and sampled, each
 *               about half (4 sigmas), and the count is within COUNT_TOLERANCE as for one.
 *   fork:       a child forked while the parent profiles starts idle and can profile itself.
 *   restart:    profiles can be taken one after another; no sample is dropped.
 *
 * `test_profiler_cpu --write PATH` only takes the busy profile and writes it (cpu_pprof.sh
 * reads it with go tool pprof).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hprof_cpu.h"
#include "pcodec.h"

#define BUSY_CPU_S      1.5      /* CPU seconds the busy worker burns */
#define UNIT_ITERATIONS 40000    /* LCG steps per unit of work (~50 us) */
#define COUNT_TOLERANCE 0.15     /* |samples - hz * CPU s| / (hz * CPU s) allowed */
#define PERIOD_NS       10000000 /* 1e9 / 100 Hz */
#define NS_PER_S        1000000000LL

static volatile uint64_t sink;

/* The same loop body in every hot function, so that a unit costs the same in each. The empty
 * asm keeps the compiler from folding or vectorising the dependency chain. */
#define SPIN(units)                                                                                \
    do {                                                                                           \
        uint64_t x = sink;                                                                         \
        for (long i = 0; i < (long)(units)*UNIT_ITERATIONS; i++) {                                 \
            x = x * 6364136223846793005ull + 1442695040888963407ull;                               \
            __asm__ volatile("" : "+r"(x));                                                        \
        }                                                                                          \
        sink = x;                                                                                  \
    } while (0)

__attribute__((noinline)) void cpu_hot_two(void)
{
    SPIN(2);
}

__attribute__((noinline)) void cpu_hot_one(void)
{
    SPIN(1);
}

__attribute__((noinline)) void cpu_spin_left(void)
{
    SPIN(1);
}

__attribute__((noinline)) void cpu_spin_right(void)
{
    SPIN(1);
}

static int64_t clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

struct worker {
    double cpu_s;
    void (*a)(void), (*b)(void); /* b may be NULL */
};

__attribute__((noinline)) static void *busy_worker(void *arg)
{
    const struct worker *w = arg;
    int64_t end = clock_ns(CLOCK_THREAD_CPUTIME_ID) + (int64_t)(w->cpu_s * NS_PER_S);
    while (clock_ns(CLOCK_THREAD_CPUTIME_ID) < end) {
        w->a();
        if (w->b != NULL)
            w->b();
    }
    return NULL;
}

struct busy_run {
    pcodec_profile *p;
    uint8_t *gz;
    size_t len;
    double cpu_s;       /* process CPU seconds between start and stop */
    int64_t wall_ns;    /* between start and stop */
    int64_t start_real; /* CLOCK_REALTIME just before start */
    struct hprof_cpu_stats stats;
};

/* Profile the given workers (each on a thread of its own) at 100 Hz. */
static void profile_workers(struct worker *workers, int n, struct busy_run *run)
{
    memset(run, 0, sizeof(*run));
    pthread_t threads[4];
    run->start_real = clock_ns(CLOCK_REALTIME);
    int64_t wall0 = clock_ns(CLOCK_MONOTONIC);
    assert_int_equal(hprof_cpu_start(HPROF_CPU_DEFAULT_HZ), 0);
    int64_t cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, busy_worker, &workers[i]), 0);
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    int64_t cpu1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    hprof_cpu_get_stats(&run->stats);
    assert_int_equal(hprof_cpu_stop(&run->gz, &run->len), 0);
    run->wall_ns = clock_ns(CLOCK_MONOTONIC) - wall0;
    run->cpu_s = (double)(cpu1 - cpu0) / NS_PER_S;
    assert_true(run->len > 2);
    assert_int_equal(run->gz[0], 0x1f);
    assert_int_equal(run->gz[1], 0x8b);
    char err[256];
    run->p = pcodec_decode(run->gz, run->len, err, sizeof(err));
    if (run->p == NULL)
        fail_msg("profile does not decode: %s", err);
}

static void busy_run_free(struct busy_run *run)
{
    pcodec_free(run->p);
    hprof_cpu_free(run->gz);
}

/* The name of the innermost function at frame i of sample s ("" when unknown). */
static const char *frame_name(const pcodec_profile *p, const Perftools__Profiles__Sample *s,
                              size_t i)
{
    if (i >= s->n_location_id)
        return "";
    uint64_t id = s->location_id[i];
    assert_true(id >= 1 && id <= p->n_location);
    const Perftools__Profiles__Location *loc = p->location[id - 1];
    assert_int_equal(loc->id, id);
    if (loc->n_line == 0)
        return "";
    uint64_t fid = loc->line[0]->function_id;
    assert_true(fid >= 1 && fid <= p->n_function);
    return pcodec_string(p, p->function[fid - 1]->name);
}

/* Samples whose leaf is the function named name. */
static int64_t leaf_samples(const pcodec_profile *p, const char *name)
{
    int64_t n = 0;
    for (size_t i = 0; i < p->n_sample; i++)
        if (strcmp(frame_name(p, p->sample[i], 0), name) == 0)
            n += p->sample[i]->value[0];
    return n;
}

static void check_header(const pcodec_profile *p)
{
    assert_string_equal(pcodec_string(p, 0), "");
    assert_int_equal(p->n_sample_type, 2);
    assert_string_equal(pcodec_string(p, p->sample_type[0]->type), "samples");
    assert_string_equal(pcodec_string(p, p->sample_type[0]->unit), "count");
    assert_string_equal(pcodec_string(p, p->sample_type[1]->type), "cpu");
    assert_string_equal(pcodec_string(p, p->sample_type[1]->unit), "nanoseconds");
    assert_non_null(p->period_type);
    assert_string_equal(pcodec_string(p, p->period_type->type), "cpu");
    assert_string_equal(pcodec_string(p, p->period_type->unit), "nanoseconds");
    assert_int_equal(p->period, PERIOD_NS);
    assert_true(p->n_mapping > 0);
    for (size_t i = 0; i < p->n_sample; i++) {
        const Perftools__Profiles__Sample *s = p->sample[i];
        assert_int_equal(s->n_value, 2);
        assert_true(s->value[0] >= 1);
        assert_int_equal(s->value[1], s->value[0] * PERIOD_NS);
        assert_true(s->n_location_id >= 1);
        for (size_t j = 0; j < s->n_location_id; j++) {
            const char *name = frame_name(p, s, j);
            if (strcmp(name, "on_sigprof") == 0 || strcmp(name, "__restore_rt") == 0)
                fail_msg("sample %zu frame %zu is the signal machinery (%s)", i, j, name);
        }
    }
}

/* |count - expected| within the stated tolerance. */
static void check_count(int64_t count, double cpu_s)
{
    double expected = cpu_s * HPROF_CPU_DEFAULT_HZ;
    print_message("samples %lld, expected %.1f (%.3f CPU s at %d Hz)\n", (long long)count, expected,
                  cpu_s, HPROF_CPU_DEFAULT_HZ);
    if (fabs((double)count - expected) > COUNT_TOLERANCE * expected)
        fail_msg("%lld samples for %.3f CPU s: outside %.0f%% of %.1f", (long long)count, cpu_s,
                 COUNT_TOLERANCE * 100, expected);
}

/* a / (a + b) within 4 binomial standard deviations of share. */
static void check_share(int64_t a, int64_t b, double share, const char *what)
{
    double n = (double)(a + b);
    assert_true(n > 0);
    double sigma = sqrt(share * (1 - share) / n);
    print_message("%s: %lld vs %lld, share %.3f (want %.3f +- %.3f)\n", what, (long long)a,
                  (long long)b, a / n, share, 4 * sigma);
    if (fabs(a / n - share) > 4 * sigma)
        fail_msg("%s: share %.3f, want %.3f +- %.3f", what, a / n, share, 4 * sigma);
}

/* SigBlk of the thread named comm, or -1 if there is none. */
static long long thread_sigblk(const char *want)
{
    DIR *dir = opendir("/proc/self/task");
    assert_non_null(dir);
    long long found = -1;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        char path[300], line[256], comm[64] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        unsigned long long blocked = 0;
        while (fgets(line, sizeof(line), f) != NULL) {
            sscanf(line, "Name: %63s", comm);
            sscanf(line, "SigBlk: %llx", &blocked);
        }
        fclose(f);
        if (strcmp(comm, want) == 0) {
            assert_int_equal(found, -1); /* one such thread */
            found = (long long)blocked;
        }
    }
    closedir(dir);
    return found;
}

/* The drain thread ("hprof-cpu") blocks the program's signals but not SIGPROF. While it runs
 * our handler the kernel blocks SIGPROF too, so that bit must be clear in one of a few reads. */
static void check_drain_mask(void)
{
    int prof_open = 0;
    for (int i = 0; i < 50 && !prof_open; i++) {
        long long blocked = thread_sigblk("hprof-cpu");
        if (blocked == -1) { /* named just after it starts */
            usleep(1000);
            continue;
        }
        assert_true(blocked & (1ll << (SIGTERM - 1)));
        assert_true(blocked & (1ll << (SIGINT - 1)));
        prof_open = !(blocked & (1ll << (SIGPROF - 1)));
        if (!prof_open)
            usleep(1000);
    }
    assert_true(prof_open);
}

static void own_sigprof(int sig)
{
    (void)sig;
}

static void test_api(void **state)
{
    (void)state;
    uint8_t *gz = NULL;
    size_t len = 0;
    errno = 0;
    assert_int_equal(hprof_cpu_stop(&gz, &len), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(hprof_cpu_start(0), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(hprof_cpu_start(HPROF_CPU_MAX_HZ + 1), -1);
    assert_int_equal(errno, EINVAL);

    assert_int_equal(hprof_cpu_start(HPROF_CPU_DEFAULT_HZ), 0);
    struct hprof_cpu_stats st;
    hprof_cpu_get_stats(&st);
    assert_int_equal(st.running, 1);
    assert_int_equal(st.hz, HPROF_CPU_DEFAULT_HZ);
    check_drain_mask();
    errno = 0;
    assert_int_equal(hprof_cpu_start(HPROF_CPU_DEFAULT_HZ), -1);
    assert_int_equal(errno, EBUSY);
    assert_int_equal(hprof_cpu_stop(NULL, NULL), 0); /* discard */
    hprof_cpu_get_stats(&st);
    assert_int_equal(st.running, 0);
    errno = 0;
    assert_int_equal(hprof_cpu_stop(NULL, NULL), -1);
    assert_int_equal(errno, EINVAL);

    /* The program's own ITIMER_PROF (armed far in the future): refused, left alone. */
    struct itimerval mine = {{0, 0}, {100, 0}}, now;
    assert_int_equal(setitimer(ITIMER_PROF, &mine, NULL), 0);
    errno = 0;
    assert_int_equal(hprof_cpu_start(HPROF_CPU_DEFAULT_HZ), -1);
    assert_int_equal(errno, EBUSY);
    assert_int_equal(getitimer(ITIMER_PROF, &now), 0);
    assert_true(now.it_value.tv_sec > 90);
    struct itimerval off = {{0, 0}, {0, 0}};
    assert_int_equal(setitimer(ITIMER_PROF, &off, NULL), 0);

    /* The program's own SIGPROF handler: refused, left in place. */
    struct sigaction own, saved, after;
    memset(&own, 0, sizeof(own));
    own.sa_handler = own_sigprof;
    assert_int_equal(sigaction(SIGPROF, NULL, &saved), 0);
    assert_int_equal(sigaction(SIGPROF, &own, NULL), 0);
    errno = 0;
    assert_int_equal(hprof_cpu_start(HPROF_CPU_DEFAULT_HZ), -1);
    assert_int_equal(errno, EBUSY);
    assert_int_equal(sigaction(SIGPROF, NULL, &after), 0);
    assert_ptr_equal(after.sa_handler, own.sa_handler);
    assert_int_equal(sigaction(SIGPROF, &saved, NULL), 0);
    assert_int_equal(hprof_cpu_start(HPROF_CPU_DEFAULT_HZ), 0);
    assert_int_equal(hprof_cpu_stop(NULL, NULL), 0);
}

static void take_busy(struct busy_run *run)
{
    struct worker w = {BUSY_CPU_S, cpu_hot_two, cpu_hot_one};
    profile_workers(&w, 1, run);
}

static void test_busy(void **state)
{
    (void)state;
    struct busy_run run;
    take_busy(&run);
    const pcodec_profile *p = run.p;
    check_header(p);

    /* Started just after start_real; lasted about as long as we watched it. */
    assert_true(p->time_nanos >= run.start_real && p->time_nanos < run.start_real + NS_PER_S);
    assert_true(p->duration_nanos > 0 && p->duration_nanos <= run.wall_ns);
    assert_true(p->duration_nanos >= run.wall_ns - NS_PER_S / 2);

    int64_t total = pcodec_total(p, "samples");
    assert_int_equal(pcodec_total(p, "cpu"), total * PERIOD_NS);
    assert_int_equal((uint64_t)total, run.stats.samples); /* every recorded sample is there */
    assert_int_equal(run.stats.dropped, 0);
    assert_int_equal(p->n_comment, 0);
    check_count(total, run.cpu_s);

    int64_t two = leaf_samples(p, "cpu_hot_two"), one = leaf_samples(p, "cpu_hot_one");
    /* The worker is nearly all of the process's CPU. */
    assert_true((double)(two + one) >= 0.8 * (double)total);
    check_share(two, one, 2.0 / 3.0, "cpu_hot_two vs cpu_hot_one");

    /* Callers: each hot leaf was called from busy_worker. */
    for (size_t i = 0; i < p->n_sample; i++) {
        const Perftools__Profiles__Sample *s = p->sample[i];
        const char *leaf = frame_name(p, s, 0);
        if (strcmp(leaf, "cpu_hot_two") == 0 || strcmp(leaf, "cpu_hot_one") == 0)
            assert_string_equal(frame_name(p, s, 1), "busy_worker");
    }
    busy_run_free(&run);
}

static void test_threads(void **state)
{
    (void)state;
    struct worker w[2] = {{0.6, cpu_spin_left, NULL}, {0.6, cpu_spin_right, NULL}};
    struct busy_run run;
    profile_workers(w, 2, &run);
    check_header(run.p);
    int64_t total = pcodec_total(run.p, "samples");
    int64_t left = leaf_samples(run.p, "cpu_spin_left");
    int64_t right = leaf_samples(run.p, "cpu_spin_right");
    /* Per-thread timers: two threads on two cores at once lose nothing (a process-wide
     * ITIMER_PROF lost ~40% here), so the same tolerance holds as for one thread. */
    check_count(total, run.cpu_s);
    check_share(left, right, 0.5, "cpu_spin_left vs cpu_spin_right (two threads)");
    busy_run_free(&run);
}

static void test_fork(void **state)
{
    (void)state;
    assert_int_equal(hprof_cpu_start(HPROF_CPU_DEFAULT_HZ), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child has neither the parent's timer nor its drain thread: it starts idle. */
        struct hprof_cpu_stats st;
        hprof_cpu_get_stats(&st);
        if (st.running)
            _exit(2);
        if (hprof_cpu_start(HPROF_CPU_DEFAULT_HZ) != 0)
            _exit(3);
        struct worker w = {0.3, cpu_spin_left, NULL};
        busy_worker(&w);
        uint8_t *gz = NULL;
        size_t len = 0;
        if (hprof_cpu_stop(&gz, &len) != 0)
            _exit(4);
        pcodec_profile *p = pcodec_decode(gz, len, NULL, 0);
        if (p == NULL)
            _exit(5);
        _exit(leaf_samples(p, "cpu_spin_left") > 0 ? 0 : 6);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(hprof_cpu_stop(NULL, NULL), 0);
}

static void test_restart(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        struct worker w = {0.3, cpu_spin_right, NULL};
        struct busy_run run;
        profile_workers(&w, 1, &run);
        check_header(run.p);
        assert_true(leaf_samples(run.p, "cpu_spin_right") > 0);
        assert_int_equal(run.stats.dropped, 0);
        busy_run_free(&run);
    }
    struct hprof_cpu_stats st;
    hprof_cpu_get_stats(&st);
    assert_int_equal(st.running, 0);
    assert_true(st.profiles >= 3);
}

static int write_profile(const char *path)
{
    struct worker w = {BUSY_CPU_S, cpu_hot_two, cpu_hot_one};
    if (hprof_cpu_start(HPROF_CPU_DEFAULT_HZ) != 0) {
        perror("hprof_cpu_start");
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, busy_worker, &w);
    pthread_join(t, NULL);
    uint8_t *gz = NULL;
    size_t len = 0;
    if (hprof_cpu_stop(&gz, &len) != 0) {
        perror("hprof_cpu_stop");
        return 1;
    }
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(gz, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        return 1;
    }
    hprof_cpu_free(gz);
    return 0;
}

/* A test that failed half-way may leave a profile running: the next one starts clean. */
static int stop_leftover(void **state)
{
    (void)state;
    (void)hprof_cpu_stop(NULL, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write") == 0)
        return write_profile(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_api, stop_leftover),
        cmocka_unit_test_teardown(test_busy, stop_leftover),
        cmocka_unit_test_teardown(test_threads, stop_leftover),
        cmocka_unit_test_teardown(test_fork, stop_leftover),
        cmocka_unit_test_teardown(test_restart, stop_leftover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
