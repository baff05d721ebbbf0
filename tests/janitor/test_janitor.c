/*
 * Unit tests for the janitor: it calls the sweep every interval (not more, not much less), stops
 * within one tick however long the interval, survives many start/stop cycles, names its thread,
 * and refuses nonsense. Timing bounds are generous (the machine may be shared) but each one
 * still fails if the behaviour is wrong: a busy loop, a sleep-based stop, a missing wake-up.
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
#include <string.h>
#include <time.h>

#include "janitor.h"
#include "lc_util.h"

struct probe {
    atomic_int calls;
    atomic_bool in_sweep;
    int64_t sweep_ns; /* how long each call lasts */
    char name[32];    /* the thread name the sweep saw */
    int64_t last_end; /* when the previous call returned (only the janitor thread writes) */
    int64_t min_gap;  /* shortest time from one call's return to the next call */
};

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / LC_NS_PER_SEC, .tv_nsec = ns % LC_NS_PER_SEC};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void probe_sweep(void *arg)
{
    struct probe *probe = arg;
    atomic_store(&probe->in_sweep, true);
    int64_t now = lc_monotonic_ns();
    if (probe->last_end > 0 && (probe->min_gap == 0 || now - probe->last_end < probe->min_gap))
        probe->min_gap = now - probe->last_end;
    if (atomic_fetch_add(&probe->calls, 1) == 0)
        pthread_getname_np(pthread_self(), probe->name, sizeof(probe->name));
    if (probe->sweep_ns > 0)
        sleep_ns(probe->sweep_ns);
    probe->last_end = lc_monotonic_ns();
    atomic_store(&probe->in_sweep, false);
}

static void test_calls_every_interval(void **state)
{
    (void)state;
    struct probe probe = {0};
    const int64_t interval = 20 * LC_NS_PER_MS, period = 600 * LC_NS_PER_MS;
    struct janitor *janitor = janitor_start("test-janitor", interval, probe_sweep, &probe);
    assert_non_null(janitor);
    sleep_ns(period);
    janitor_stop(janitor);
    int calls = atomic_load(&probe.calls);
    /* 30 ticks are due. Fewer than a third means ticks are lost; more than due + 1 means the
     * janitor does not wait a whole interval between sweeps. */
    assert_in_range(calls, 10, 31);
}

static void test_first_call_after_one_interval(void **state)
{
    (void)state;
    struct probe probe = {0};
    struct janitor *janitor =
        janitor_start("test-janitor", 300 * LC_NS_PER_MS, probe_sweep, &probe);
    assert_non_null(janitor);
    sleep_ns(100 * LC_NS_PER_MS);
    assert_int_equal(atomic_load(&probe.calls), 0); /* not at start: one interval later */
    sleep_ns(500 * LC_NS_PER_MS);
    assert_true(atomic_load(&probe.calls) >= 1);
    janitor_stop(janitor);
}

static void test_stop_is_prompt(void **state)
{
    (void)state;
    struct probe probe = {0};
    struct janitor *janitor =
        janitor_start("test-janitor", 10 * LC_NS_PER_SEC, probe_sweep, &probe);
    assert_non_null(janitor);
    sleep_ns(50 * LC_NS_PER_MS); /* the thread is now waiting for a tick 10 s away */
    int64_t started = lc_monotonic_ns();
    janitor_stop(janitor);
    int64_t took = lc_monotonic_ns() - started;
    assert_true(took < 100 * LC_NS_PER_MS); /* a sleep-based janitor would take 10 s */
    assert_int_equal(atomic_load(&probe.calls), 0);
}

static void test_stop_waits_for_a_running_sweep(void **state)
{
    (void)state;
    struct probe probe = {.sweep_ns = 200 * LC_NS_PER_MS};
    struct janitor *janitor = janitor_start("test-janitor", 10 * LC_NS_PER_MS, probe_sweep, &probe);
    assert_non_null(janitor);
    while (!atomic_load(&probe.in_sweep))
        sleep_ns(LC_NS_PER_MS);
    janitor_stop(janitor);
    /* Joined: the sweep under way has finished and no other one starts. */
    assert_false(atomic_load(&probe.in_sweep));
    int calls = atomic_load(&probe.calls);
    sleep_ns(50 * LC_NS_PER_MS);
    assert_int_equal(atomic_load(&probe.calls), calls);
}

static void test_slow_sweep_skips_ticks(void **state)
{
    (void)state;
    /* Each sweep lasts 220 ms, over one 200 ms interval. The next sweep must wait for the next
     * tick on the grid (about 180 ms after the slow one returns), not run at once to catch up on
     * the tick it missed; a catch-up janitor leaves no gap. The gap must stay wide against a
     * loaded machine stretching the sweep's sleep: at a 100 ms interval and 130 ms sweeps the
     * gap was 70 ms, and under load (average 12) a stretch closed it below 20 ms once. */
    struct probe probe = {.sweep_ns = 220 * LC_NS_PER_MS};
    struct janitor *janitor =
        janitor_start("test-janitor", 200 * LC_NS_PER_MS, probe_sweep, &probe);
    assert_non_null(janitor);
    /* Ticks at 200, 600, 1000 ms...: three sweeps take about 1.1 s, longer when the machine is
     * busy, so wait for them (10 s at most: a janitor that never sweeps fails) rather than for a
     * fixed time. */
    int64_t deadline = lc_monotonic_ns() + 10 * LC_NS_PER_SEC;
    while (atomic_load(&probe.calls) < 3 && lc_monotonic_ns() < deadline)
        sleep_ns(10 * LC_NS_PER_MS);
    janitor_stop(janitor);
    assert_true(atomic_load(&probe.calls) >= 3);
    assert_true(probe.min_gap >= 20 * LC_NS_PER_MS);
}

static void test_start_stop_repeatedly(void **state)
{
    (void)state;
    struct probe probe = {0};
    int64_t started = lc_monotonic_ns();
    for (int i = 0; i < 200; i++) {
        struct janitor *janitor =
            janitor_start("test-janitor", (i % 2 ? 1 : 1000) * LC_NS_PER_MS, probe_sweep, &probe);
        assert_non_null(janitor);
        if (i % 10 == 1) /* a 1 ms janitor: let it sweep before the stop */
            sleep_ns(3 * LC_NS_PER_MS);
        janitor_stop(janitor);
    }
    assert_true(atomic_load(&probe.calls) >= 1);
    /* 200 cycles, none waiting out its interval (100 of them have 1 s). */
    assert_true(lc_monotonic_ns() - started < 5 * LC_NS_PER_SEC);
}

static void test_thread_name(void **state)
{
    (void)state;
    struct probe probe = {0};
    struct janitor *janitor = janitor_start("store-janitor", LC_NS_PER_MS, probe_sweep, &probe);
    assert_non_null(janitor);
    while (atomic_load(&probe.calls) == 0)
        sleep_ns(LC_NS_PER_MS);
    janitor_stop(janitor);
    assert_string_equal(probe.name, "store-janitor");

    /* Linux keeps 15 characters: a longer name is cut, not refused. */
    struct probe long_probe = {0};
    janitor = janitor_start("a-janitor-with-a-long-name", LC_NS_PER_MS, probe_sweep, &long_probe);
    assert_non_null(janitor);
    while (atomic_load(&long_probe.calls) == 0)
        sleep_ns(LC_NS_PER_MS);
    janitor_stop(janitor);
    assert_string_equal(long_probe.name, "a-janitor-with-");
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct probe probe = {0};
    errno = 0;
    assert_null(janitor_start("j", 0, probe_sweep, &probe));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(janitor_start("j", -LC_NS_PER_SEC, probe_sweep, &probe));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(janitor_start("j", LC_NS_PER_SEC, NULL, &probe));
    assert_int_equal(errno, EINVAL);
    janitor_stop(NULL); /* a no-op, like free(NULL) */
}

static void test_huge_interval(void **state)
{
    (void)state;
    /* An interval of ~292 years saturates instead of wrapping into the past. */
    struct probe probe = {0};
    struct janitor *janitor = janitor_start("test-janitor", INT64_MAX, probe_sweep, &probe);
    assert_non_null(janitor);
    sleep_ns(50 * LC_NS_PER_MS);
    int64_t started = lc_monotonic_ns();
    janitor_stop(janitor);
    assert_true(lc_monotonic_ns() - started < 100 * LC_NS_PER_MS);
    assert_int_equal(atomic_load(&probe.calls), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calls_every_interval),
        cmocka_unit_test(test_first_call_after_one_interval),
        cmocka_unit_test(test_stop_is_prompt),
        cmocka_unit_test(test_stop_waits_for_a_running_sweep),
        cmocka_unit_test(test_slow_sweep_skips_ticks),
        cmocka_unit_test(test_start_stop_repeatedly),
        cmocka_unit_test(test_thread_name),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_huge_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
