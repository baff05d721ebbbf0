/*
 * Allocation in constructors, before main() and possibly before the profiler's first look at
 * its environment, and allocation from a shared library, in a program linked with the static
 * libheapprof at HEAPPROF_RATE=1: all of it is accounted exactly, and freeable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "collect_test.h"

#define CT_PROBE_BLOCKS 7
extern void *ct_probe_blocks[CT_PROBE_BLOCKS];
void ct_probe_ctor_alloc(void);
void *ct_probe_lib_alloc(size_t n);

static void *ct_early_blocks[3];

CT_MARKER void m_early_alloc(void)
{
    for (int i = 0; i < 3; i++)
        ct_early_blocks[i] = malloc(50);
}

/* Priority 101: among the first constructors of the program. */
__attribute__((constructor(101))) static void ct_early(void)
{
    m_early_alloc();
}

static void ct_assert_sums(const char *what, struct ct_sums s, double ao, double ab, double io,
                           double ib)
{
    if (s.alloc_objects != ao || s.alloc_bytes != ab || s.inuse_objects != io ||
        s.inuse_bytes != ib)
        fail_msg("%s: alloc %.0f/%.0f inuse %.0f/%.0f, want %.0f/%.0f %.0f/%.0f", what,
                 s.alloc_objects, s.alloc_bytes, s.inuse_objects, s.inuse_bytes, ao, ab, io, ib);
}

static void test_constructors_and_library(void **state)
{
    (void)state;
    assert_int_equal(hprof_collect_rate(), 1);
    struct hprof_snapshot s;
    assert_int_equal(hprof_snapshot_take(&s), 0);
    ct_assert_sums("library constructor", ct_sum_fn(&s, (void *)ct_probe_ctor_alloc), 7, 700, 7,
                   700);
    ct_assert_sums("program constructor", ct_sum_fn(&s, (void *)m_early_alloc), 3, 150, 3, 150);
    void *p = ct_probe_lib_alloc(123);
    assert_true(hprof_block_is_tagged(p));
    for (int i = 0; i < CT_PROBE_BLOCKS; i++)
        free(ct_probe_blocks[i]);
    for (int i = 0; i < 3; i++)
        free(ct_early_blocks[i]);
    struct hprof_snapshot t;
    assert_int_equal(hprof_snapshot_take(&t), 0);
    ct_assert_sums("library function", ct_sum_fn(&t, (void *)ct_probe_lib_alloc), 1, 123, 1, 123);
    ct_assert_sums("library constructor, freed", ct_sum_fn(&t, (void *)ct_probe_ctor_alloc), 7, 700,
                   0, 0);
    ct_assert_sums("program constructor, freed", ct_sum_fn(&t, (void *)m_early_alloc), 3, 150, 0,
                   0);
    free(p);
    hprof_snapshot_release(&s);
    hprof_snapshot_release(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constructors_and_library),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
