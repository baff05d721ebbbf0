/* Unit tests for lg_hist (percentiles against a sorted reference, 3 significant digits) and
 * lg_sched (the open-loop schedule's due times at a rate, split over workers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>

#include "lg_hist.h"
#include "lg_sched.h"

static uint64_t rng_state = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of a sorted array, the definition lg_hist documents. */
static uint64_t reference(const uint64_t *sorted, size_t n, double q)
{
    size_t rank = (size_t)ceil(q / 100.0 * (double)n);
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

static void test_percentiles_match_sorted_reference(void **state)
{
    (void)state;
    const size_t n = 200000;
    uint64_t *values = malloc(n * sizeof(*values));
    struct lg_hist *h = lg_hist_new();
    assert_non_null(values);
    assert_non_null(h);
    for (size_t i = 0; i < n; i++) {
        /* Log-uniform from 100 ns to ~100 s: every octave of the layout gets values. */
        double u = (double)(next_rand() >> 11) / (double)(1ull << 53);
        values[i] = (uint64_t)(100.0 * pow(1e9, u));
        lg_hist_record(h, values[i]);
    }
    qsort(values, n, sizeof(*values), cmp_u64);
    const double qs[] = {0.1, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        uint64_t want = reference(values, n, qs[i]);
        uint64_t got = lg_hist_percentile(h, qs[i]);
        /* Never below the true value, and within 3 significant digits above it. */
        assert_true(got >= want);
        assert_true((got - want) * 1000 <= want);
    }
    assert_int_equal(lg_hist_percentile(h, 100), values[n - 1]);
    assert_int_equal(h->max_ns, values[n - 1]);
    assert_int_equal(h->min_ns, values[0]);
    assert_int_equal(h->total, n);
    free(values);
    lg_hist_free(h);
}

static void test_small_values_are_exact(void **state)
{
    (void)state;
    struct lg_hist *h = lg_hist_new();
    for (uint64_t v = 1; v <= 100; v++)
        lg_hist_record(h, v);
    assert_int_equal(lg_hist_percentile(h, 50), 50);
    assert_int_equal(lg_hist_percentile(h, 99), 99);
    assert_int_equal(lg_hist_percentile(h, 1), 1);
    assert_int_equal(lg_hist_percentile(h, 100), 100);
    lg_hist_free(h);
}

static void test_index_bounds(void **state)
{
    (void)state;
    /* Every value lies within its bucket and the bucket is narrower than value / 1000. */
    for (int i = 0; i < 100000; i++) {
        uint64_t v = next_rand() >> (24 + next_rand() % 40);
        if (v > LG_HIST_MAX_NS)
            continue;
        uint32_t idx = lg_hist_index(v);
        assert_true(idx < LG_HIST_COUNTS);
        uint64_t hi = lg_hist_highest_equivalent(idx);
        assert_true(hi >= v);
        assert_true((hi - v) * 1000 <= v || v < LG_HIST_SUB_COUNT);
        if (idx > 0)
            assert_true(lg_hist_highest_equivalent(idx - 1) < v);
    }
    assert_int_equal(lg_hist_index(LG_HIST_MAX_NS), LG_HIST_COUNTS - 1);
    assert_int_equal(lg_hist_index(UINT64_MAX), LG_HIST_COUNTS - 1); /* clamped */
}

static void test_merge_and_reset(void **state)
{
    (void)state;
    struct lg_hist *a = lg_hist_new(), *b = lg_hist_new(), *both = lg_hist_new();
    for (uint64_t v = 1000; v < 1000000; v += 997) {
        lg_hist_record(v % 2 ? a : b, v);
        lg_hist_record(both, v);
    }
    lg_hist_merge(a, b);
    assert_int_equal(a->total, both->total);
    assert_int_equal(a->max_ns, both->max_ns);
    assert_int_equal(a->min_ns, both->min_ns);
    for (double q = 1; q <= 100; q += 7)
        assert_int_equal(lg_hist_percentile(a, q), lg_hist_percentile(both, q));
    lg_hist_reset(a);
    assert_int_equal(a->total, 0);
    assert_int_equal(lg_hist_percentile(a, 50), 0);
    for (uint32_t i = 0; i < LG_HIST_COUNTS; i++)
        assert_int_equal(a->counts[i], 0);
    lg_hist_record(a, 5000);
    assert_int_equal(lg_hist_percentile(a, 50), 5000);
    lg_hist_free(a);
    lg_hist_free(b);
    lg_hist_free(both);
}

static void test_schedule_due_times(void **state)
{
    (void)state;
    const int64_t start = 123456789;
    /* 1000/s: one per millisecond, exactly. */
    for (uint64_t k = 0; k < 5000; k++)
        assert_int_equal(lg_sched_due_ns(start, 1000, k), start + (int64_t)k * 1000000);
    /* 3/s: thirds of a second, floored, and no drift after a million requests. */
    assert_int_equal(lg_sched_due_ns(start, 3, 1), start + 333333333);
    assert_int_equal(lg_sched_due_ns(start, 3, 2), start + 666666666);
    assert_int_equal(lg_sched_due_ns(start, 3, 3), start + 1000000000);
    assert_int_equal(lg_sched_due_ns(start, 3, 3000000), start + 1000000LL * 1000000000);
    /* A huge k does not overflow: 10^10 requests at 10^6/s are due at 10^4 s. */
    assert_int_equal(lg_sched_due_ns(0, 1000000, 10000000000ull), 10000LL * 1000000000);
}

static void test_schedule_count_due(void **state)
{
    (void)state;
    const int64_t start = 1000;
    assert_int_equal(lg_sched_count_due(start, 1000, start - 1), 0);
    assert_int_equal(lg_sched_count_due(start, 1000, start), 1); /* k = 0 is due at start */
    assert_int_equal(lg_sched_count_due(start, 1000, start + 999999), 1);
    assert_int_equal(lg_sched_count_due(start, 1000, start + 1000000), 2);
    const uint64_t rates[] = {1, 3, 7, 1000, 29999, 30000, 1000000};
    for (size_t r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
        for (int i = 0; i < 2000; i++) {
            int64_t now = start + (int64_t)(next_rand() % (20 * 1000000000ull));
            uint64_t c = lg_sched_count_due(start, rates[r], now);
            /* c requests are due: the c-1th at or before now, the cth after it. */
            assert_true(c >= 1);
            assert_true(lg_sched_due_ns(start, rates[r], c - 1) <= now);
            assert_true(lg_sched_due_ns(start, rates[r], c) > now);
        }
    }
}

static void test_schedule_share(void **state)
{
    (void)state;
    /* Worker i of T owns k = i, i+T, ...: the shares add up to the total, and differ by one. */
    for (unsigned t = 1; t <= 7; t++) {
        for (uint64_t total = 0; total < 50; total++) {
            uint64_t sum = 0, lo = UINT64_MAX, hi = 0;
            for (unsigned i = 0; i < t; i++) {
                uint64_t s = lg_sched_share(total, i, t);
                uint64_t manual = 0;
                for (uint64_t k = i; k < total; k += t)
                    manual++;
                assert_int_equal(s, manual);
                sum += s;
                lo = s < lo ? s : lo;
                hi = s > hi ? s : hi;
            }
            assert_int_equal(sum, total);
            assert_true(hi - lo <= 1);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentiles_match_sorted_reference),
        cmocka_unit_test(test_small_values_are_exact),
        cmocka_unit_test(test_index_bounds),
        cmocka_unit_test(test_merge_and_reset),
        cmocka_unit_test(test_schedule_due_times),
        cmocka_unit_test(test_schedule_count_due),
        cmocka_unit_test(test_schedule_share),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
