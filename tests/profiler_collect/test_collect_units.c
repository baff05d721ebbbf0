/*
 * The sampler's pure functions, without the interposer: the unbiasing weight, the distribution of
 * sample distances, and the per-thread generator's determinism.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "hprof_collect.h"

static void test_weight(void **state)
{
    (void)state;
    /* Rate 1: every allocation is recorded, weight exactly 1, whatever the size. */
    assert_true(hprof_sample_weight(0, 1) == 1.0);
    assert_true(hprof_sample_weight(1, 1) == 1.0);
    assert_true(hprof_sample_weight(1 << 20, 1) == 1.0);
    /* 1 / (1 - exp(-s/R)) */
    assert_float_equal(hprof_sample_weight(16384, 16384), 1.0 / (1.0 - exp(-1.0)), 1e-12);
    assert_float_equal(hprof_sample_weight(1, 524288), 524288.5, 1e-3); /* 1/x + 1/2 + O(x) */
    assert_float_equal(hprof_sample_weight(100 << 20, 524288), 1.0, 1e-12);
    assert_true(hprof_sample_weight(1024, 524288) > hprof_sample_weight(2048, 524288));
}

static void test_distance_special_rates(void **state)
{
    (void)state;
    uint64_t rng;
    hprof_rng_seed(&rng, 1, 0);
    assert_true(hprof_sample_distance(&rng, 0) == SIZE_MAX); /* off: never */
    assert_int_equal(hprof_sample_distance(&rng, 1), 0);     /* every allocation, even 0 bytes */
    for (int i = 0; i < 1000; i++)
        assert_true(hprof_sample_distance(&rng, 2) >= 1);
}

/* Distances are exponential: mean R (sigma of the mean of n draws: R / sqrt(n)), and the
 * fraction of distances <= x is 1 - exp(-x/R) (binomial sigma sqrt(q(1-q)/n)). 4 sigma. */
static void test_distance_distribution(void **state)
{
    (void)state;
    const uint64_t rate = 524288;
    const int n = 200000;
    const double xs[] = {0.1, 0.5, 1.0, 2.0, 4.0}; /* multiples of R */
    int below[5] = {0};
    double sum = 0;
    uint64_t rng;
    hprof_rng_seed(&rng, 12345, 3);
    for (int i = 0; i < n; i++) {
        size_t d = hprof_sample_distance(&rng, rate);
        assert_true(d >= 1);
        sum += (double)d;
        for (int k = 0; k < 5; k++)
            below[k] += (double)d <= xs[k] * (double)rate;
    }
    double mean = sum / n;
    assert_true(fabs(mean - (double)rate) < 4 * (double)rate / sqrt(n));
    for (int k = 0; k < 5; k++) {
        double q = 1 - exp(-xs[k]), got = (double)below[k] / n;
        assert_true(fabs(got - q) < 4 * sqrt(q * (1 - q) / n));
    }
}

static void test_rng_determinism(void **state)
{
    (void)state;
    uint64_t a, b, c, d;
    hprof_rng_seed(&a, 42, 0);
    hprof_rng_seed(&b, 42, 0);
    hprof_rng_seed(&c, 42, 1);
    hprof_rng_seed(&d, 43, 0);
    int same_c = 0, same_d = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = hprof_rng_next(&a);
        assert_true(x == hprof_rng_next(&b));
        same_c += x == hprof_rng_next(&c);
        same_d += x == hprof_rng_next(&d);
    }
    assert_int_equal(same_c, 0);
    assert_int_equal(same_d, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weight),
        cmocka_unit_test(test_distance_special_rates),
        cmocka_unit_test(test_distance_distribution),
        cmocka_unit_test(test_rng_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
