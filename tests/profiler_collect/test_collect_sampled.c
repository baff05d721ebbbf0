/*
 * Sampled estimates at HEAPPROF_RATE=16384 with a fixed HEAPPROF_SEED: within a bound derived
 * from the sampling process, and repeatable.
 *
 * The bound. Sample points fall on each thread's allocated bytes as a Poisson process of mean
 * spacing R = 16384, so allocation i (size s_i) is sampled independently of the others (its
 * bytes are a disjoint interval) with probability p_i = 1 - exp(-s_i / R), and is then counted
 * with weight 1 / p_i. With X_i ~ Bernoulli(p_i) independent:
 *     objects estimate  O = sum X_i / p_i          E[O] = N        Var O = sum (1 - p_i) / p_i
 *     bytes estimate    B = sum X_i s_i / p_i      E[B] = sum s_i  Var B = sum s_i^2 (1 - p_i) /
 * p_i and the same over the subset still live for the in-use values. The test computes these
 * variances from the sizes it actually allocated and requires |estimate - truth| <= 4 sigma for
 * each of alloc/inuse objects/bytes (a random seed would fail this with probability ~6e-5 per
 * value; the fixed seed makes the run deterministic). It also requires that the bound is tight
 * enough to mean something (sigma < 5% of the truth for bytes, 15-25% for object counts), that
 * sampling really happened (fewer samples than allocations), and that the estimator without
 * unbiasing (raw sampled bytes) falls far outside the bound: the test can tell a right weighting
 * from a wrong one.
 *
 * Repeatability: the program re-runs itself (--workload) twice with the same seed and once
 * with another; the same seed must give byte-identical estimates, another seed different ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collect_test.h"

#define CT_RATE  16384
#define CT_N     24000
#define CT_KEEP  5 /* every 5th block stays live: all six sizes (gcd(5, 6) = 1) */
#define CT_SIGMA 4.0

static const size_t ct_sizes[] = {16, 64, 256, 1024, 4096, 16384};

static void *ct_slots[CT_N];

CT_MARKER void m_mix(void)
{
    for (int i = 0; i < CT_N; i++)
        ct_slots[i] = malloc(ct_sizes[i % 6]);
}

/* Runs the workload; returns the snapshot delta for m_mix and the raw sample count. */
static struct ct_sums ct_workload(double *raw_bytes, double *samples)
{
    struct hprof_snapshot before, after;
    if (hprof_snapshot_take(&before) != 0)
        abort();
    m_mix();
    for (int i = 0; i < CT_N; i++)
        if (i % CT_KEEP != 0) {
            free(ct_slots[i]);
            ct_slots[i] = NULL;
        }
    if (hprof_snapshot_take(&after) != 0)
        abort();
    struct ct_sums d = ct_delta(&before, &after, (void *)m_mix);
    /* Undo the weights bucket by bucket: samples = objects * p(size). */
    *raw_bytes = *samples = 0;
    for (size_t i = 0; i < after.n_buckets; i++) {
        const struct hprof_bucket *b = &after.buckets[i];
        if (b->depth < 1 || !ct_pc_in((void *)m_mix, b->pcs[0]))
            continue;
        double p = -expm1(-(double)b->size / CT_RATE);
        *samples += b->alloc_objects * p;
        *raw_bytes += b->alloc_objects * p * (double)b->size;
    }
    hprof_snapshot_release(&before);
    hprof_snapshot_release(&after);
    for (int i = 0; i < CT_N; i += CT_KEEP)
        free(ct_slots[i]);
    return d;
}

/* max_rel: how tight the bound must be to be worth testing. Object counts are dominated by
 * the 16-byte blocks (sampled with p = 0.001), so their sigma is wider than the bytes'. */
static void ct_check(const char *what, double est, double truth, double var, double max_rel)
{
    double sigma = sqrt(var);
    print_message("%-14s truth %12.0f  estimate %14.1f  sigma %10.1f  (%+.2f sigma)\n", what, truth,
                  est, sigma, (est - truth) / sigma);
    assert_true(sigma < max_rel * truth);
    if (fabs(est - truth) > CT_SIGMA * sigma)
        fail_msg("%s: estimate %.1f is %.2f sigma from the truth %.0f", what, est,
                 (est - truth) / sigma, truth);
}

static void test_estimates_within_bound(void **state)
{
    (void)state;
    assert_int_equal(hprof_collect_rate(), CT_RATE);
    double n_all = 0, b_all = 0, vo_all = 0, vb_all = 0;
    double n_live = 0, b_live = 0, vo_live = 0, vb_live = 0;
    for (int i = 0; i < CT_N; i++) {
        double s = (double)ct_sizes[i % 6], p = -expm1(-s / CT_RATE);
        double vo = (1 - p) / p, vb = s * s * (1 - p) / p;
        n_all += 1;
        b_all += s;
        vo_all += vo;
        vb_all += vb;
        if (i % CT_KEEP == 0) {
            n_live += 1;
            b_live += s;
            vo_live += vo;
            vb_live += vb;
        }
    }
    double raw_bytes, samples;
    struct ct_sums d = ct_workload(&raw_bytes, &samples);
    ct_check("alloc_objects", d.alloc_objects, n_all, vo_all, 0.15);
    ct_check("alloc_bytes", d.alloc_bytes, b_all, vb_all, 0.05);
    ct_check("inuse_objects", d.inuse_objects, n_live, vo_live, 0.25);
    ct_check("inuse_bytes", d.inuse_bytes, b_live, vb_live, 0.05);
    print_message("samples %.0f of %d allocations; unweighted bytes %.0f\n", samples, CT_N,
                  raw_bytes);
    assert_true(samples > 100 && samples < CT_N / 2);
    /* The same samples without unbiasing are far outside the bound. */
    assert_true(fabs(raw_bytes - b_all) > 10 * CT_SIGMA * sqrt(vb_all));
    assert_true(fabs(samples - n_all) > CT_SIGMA * sqrt(vo_all));
}

static int ct_run_self(const char *seed, char *out, size_t cap)
{
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "HEAPPROF_SEED=%s /proc/%d/exe --workload", seed, (int)getpid());
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    return pclose(p) == 0 && n > 0 ? 0 : -1;
}

static void test_repeatable(void **state)
{
    (void)state;
    char a[512], b[512], c[512];
    assert_int_equal(ct_run_self("42", a, sizeof(a)), 0);
    assert_int_equal(ct_run_self("42", b, sizeof(b)), 0);
    assert_int_equal(ct_run_self("43", c, sizeof(c)), 0);
    print_message("seed 42: %sseed 42: %sseed 43: %s", a, b, c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--workload") == 0) {
        double raw, samples;
        struct ct_sums d = ct_workload(&raw, &samples);
        printf("samples=%.0f alloc=%.17g/%.17g inuse=%.17g/%.17g\n", samples, d.alloc_objects,
               d.alloc_bytes, d.inuse_objects, d.inuse_bytes);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_estimates_within_bound),
        cmocka_unit_test(test_repeatable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
