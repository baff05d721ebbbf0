/* Unit tests for lg_verdict on synthetic timelines: linear growth and a profiler's staircase are
 * LEAK; sawtooths (at many periods and phases, with a warm-up) and noisy flat lines are BOUNDED;
 * slow leaks, in noise or as a few steps on a large heap, are LEAK. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>

#include "lg_verdict.h"

#define KIB    1024.0
#define MIB    (1024.0 * 1024.0)
#define MAXPTS 512

static uint64_t rng;
static void seed(uint64_t s)
{
    rng = s * 0x9e3779b97f4a7c15ull + 1;
}
static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) / (double)(1ull << 53);
}
static double gaussian(void)
{
    return sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());
}

static struct lg_verdict_point pts[MAXPTS];

/* Points at t = 0, step, 2 step, ... up to span; requests at 1000/s. */
static size_t grid(double span, double step, double offset)
{
    size_t n = 0;
    for (double t = offset; t <= span + 1e-9 && n < MAXPTS; t += step, n++) {
        pts[n].t_s = t;
        pts[n].requests = 1000 * t;
    }
    return n;
}

static enum lg_verdict_kind judge(size_t n, struct lg_verdict *v)
{
    return lg_verdict_compute(pts, n, v);
}

static void test_linear_growth_is_leak(void **state)
{
    (void)state;
    struct lg_verdict v;
    seed(1);
    size_t n = grid(60, 1, 0);
    for (size_t i = 0; i < n; i++)
        pts[i].inuse_bytes = 10 * MIB + 100 * KIB * pts[i].t_s + (uniform() - 0.5) * 40 * KIB;
    assert_int_equal(judge(n, &v), LG_VERDICT_LEAK);
    assert_true(fabs(v.slope_bytes_per_s - 100 * KIB) < 5 * KIB);
    assert_true(fabs(v.bytes_per_request - 102.4) < 5);
    assert_true(v.first > 0); /* only the second half was judged */
}

static void test_profiler_staircase_is_leak(void **state)
{
    (void)state;
    /* What a sampling profiler shows of leaky: +512 KiB each time a new sample lands (a Poisson
     * process, ~2 per second), plus a sampled transient buffer now and then that comes and
     * goes. Ten seconds, a profile a second: the integration test's shape. */
    struct lg_verdict v;
    for (uint64_t s = 1; s <= 50; s++) {
        seed(s);
        size_t n = grid(10, 1, 0.01);
        double next = -log(uniform()) / 2.0, level = 2 * MIB;
        for (size_t i = 0; i < n; i++) {
            while (next <= pts[i].t_s) {
                level += 512 * KIB;
                next += -log(uniform()) / 2.0;
            }
            pts[i].inuse_bytes = level + (uniform() < 0.1 ? 512 * KIB : 0);
        }
        enum lg_verdict_kind k = judge(n, &v);
        if (k != LG_VERDICT_LEAK)
            fprintf(stderr, "seed %llu: n %zu t %.2f crit %.2f falls/rises %.2f growth %.0f\n",
                    (unsigned long long)s, v.n, v.t_stat, v.t_crit, v.falls / v.rises,
                    v.growth_bytes);
        assert_int_equal(k, LG_VERDICT_LEAK);
    }
}

static void test_sawtooth_is_bounded(void **state)
{
    (void)state;
    /* A TTL cache: grows for a period, the sweep drops it back; 120 s sampled each second, at
     * periods from 2.5 to 17 samples and every phase, with a warm-up ramp and a little noise. */
    struct lg_verdict v;
    seed(7);
    const double periods[] = {2.5, 3, 4.5, 7, 10, 13, 17};
    for (size_t p = 0; p < sizeof(periods) / sizeof(periods[0]); p++) {
        double period = periods[p];
        for (double phase = 0; phase < period; phase += 0.25) {
            size_t n = grid(120, 1, 0);
            for (size_t i = 0; i < n; i++) {
                double t = pts[i].t_s;
                double saw = 4 * MIB * fmod(t + phase, period) / period;
                double warm = t < 20 ? t / 20 : 1;
                pts[i].inuse_bytes = warm * (8 * MIB + saw) + gaussian() * 50 * KIB;
            }
            enum lg_verdict_kind k = judge(n, &v);
            if (k != LG_VERDICT_BOUNDED)
                fprintf(stderr, "period %.1f phase %.2f: t %.2f crit %.2f falls/rises %.2f\n",
                        period, phase, v.t_stat, v.t_crit, v.falls / v.rises);
            assert_int_equal(k, LG_VERDICT_BOUNDED);
            assert_true(v.min_bytes >= 7 * MIB && v.max_bytes <= 13 * MIB);
        }
    }
}

static void test_ttl_store_short_run_is_bounded(void **state)
{
    (void)state;
    /* fixed --ttl 2s --sweep-every 1s for 10 s at 1000 req/s of ~1 KiB, profiled every 0.5 s at
     * any phase against the sweeps: fills for 2 s, then 2..3 s worth of entries. */
    struct lg_verdict v;
    for (uint64_t s = 1; s <= 20; s++) {
        seed(s);
        for (double phase = 0.05; phase < 1; phase += 0.1) {
            /* Every 0.5 s, and every 1 s (the sweep period: aliased, nearly constant). */
            size_t n = phase < 0.5 ? grid(10, 0.5, phase) : grid(10, 1, phase - 0.5);
            for (size_t i = 0; i < n; i++) {
                double t = pts[i].t_s;
                double alive_s = t < 2 ? t : 2 + fmod(t, 1.0);
                pts[i].inuse_bytes = 300 * KIB + alive_s * 1000 * KIB + gaussian() * 256 * KIB;
            }
            enum lg_verdict_kind k = judge(n, &v);
            if (k != LG_VERDICT_BOUNDED)
                fprintf(stderr, "seed %llu phase %.2f: n %zu t %.2f crit %.2f f/r %.2f\n",
                        (unsigned long long)s, phase, v.n, v.t_stat, v.t_crit, v.falls / v.rises);
            assert_int_equal(k, LG_VERDICT_BOUNDED);
        }
    }
}

static void test_noisy_flat_is_bounded(void **state)
{
    (void)state;
    struct lg_verdict v;
    for (uint64_t s = 1; s <= 300; s++) {
        seed(s);
        size_t n = grid(s % 2 ? 60 : 10, 1, 0);
        for (size_t i = 0; i < n; i++)
            pts[i].inuse_bytes = 50 * MIB + gaussian() * 1 * MIB;
        enum lg_verdict_kind k = judge(n, &v);
        if (k != LG_VERDICT_BOUNDED)
            fprintf(stderr, "seed %llu: t %.2f crit %.2f falls/rises %.2f\n", (unsigned long long)s,
                    v.t_stat, v.t_crit, v.falls / v.rises);
        assert_int_equal(k, LG_VERDICT_BOUNDED);
    }
    /* Perfectly flat. */
    size_t n = grid(30, 1, 0);
    for (size_t i = 0; i < n; i++)
        pts[i].inuse_bytes = 1 * MIB;
    assert_int_equal(judge(n, &v), LG_VERDICT_BOUNDED);
}

static void test_slow_leak_is_leak(void **state)
{
    (void)state;
    struct lg_verdict v;
    /* 16 KiB/s on 50 MiB, in noise with an SD of 256 KiB: over the judged minute the leak adds
     * less than the noise's own range, yet every seed finds it. */
    for (uint64_t s = 1; s <= 30; s++) {
        seed(s);
        size_t n = grid(120, 1, 0);
        for (size_t i = 0; i < n; i++)
            pts[i].inuse_bytes = 50 * MIB + 16 * KIB * pts[i].t_s + gaussian() * 256 * KIB;
        assert_int_equal(judge(n, &v), LG_VERDICT_LEAK);
        assert_true(v.growth_bytes < v.max_bytes - v.min_bytes);
    }
    /* A few 512 KiB steps on a 100 MiB heap, nothing ever freed: 1.5% growth in the window. */
    size_t n = grid(120, 1, 0);
    for (size_t i = 0; i < n; i++)
        pts[i].inuse_bytes = 100 * MIB + 512 * KIB * floor(pts[i].t_s / 20);
    assert_int_equal(judge(n, &v), LG_VERDICT_LEAK);
    assert_true(v.test_b);
}

static void test_too_few_points(void **state)
{
    (void)state;
    struct lg_verdict v;
    size_t n = grid(2, 1, 0);
    for (size_t i = 0; i < n; i++)
        pts[i].inuse_bytes = (double)i * MIB;
    assert_int_equal(judge(n, &v), LG_VERDICT_UNKNOWN);
    assert_int_equal(lg_verdict_compute(pts, 0, &v), LG_VERDICT_UNKNOWN);
}

static void test_t_table(void **state)
{
    (void)state;
    assert_true(fabs(lg_verdict_t_crit(1) - 318.31) < 0.01);
    assert_true(fabs(lg_verdict_t_crit(10) - 4.144) < 0.001);
    assert_true(lg_verdict_t_crit(11) < 4.144 && lg_verdict_t_crit(11) > 3.930);
    assert_true(lg_verdict_t_crit(1e6) > 3.08 && lg_verdict_t_crit(1e6) < 3.1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_growth_is_leak),
        cmocka_unit_test(test_profiler_staircase_is_leak),
        cmocka_unit_test(test_sawtooth_is_bounded),
        cmocka_unit_test(test_ttl_store_short_run_is_bounded),
        cmocka_unit_test(test_noisy_flat_is_bounded),
        cmocka_unit_test(test_slow_leak_is_leak),
        cmocka_unit_test(test_too_few_points),
        cmocka_unit_test(test_t_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
