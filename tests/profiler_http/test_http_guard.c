/*
 * Every allocation the debug surface makes on its caller's thread (its own, libevent's
 * evbuffers, libdw's, zlib's, libunwind's, opendir's) is inside hprof_internal_enter/exit, so
 * the collection half never samples the profiler itself: the text heap profile, a delta and
 * its re-encoding, a threads capture with its pprof and text forms, and the figures in all
 * three formats, counted with a malloc of our own (as tests/profiler_output/test_output_guard.c
 * does for the encoder). Not run under sanitizers or valgrind: they own malloc.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_collect.h"
#include "guard_malloc.h"
#include "hprof_web.h"

static struct fake_stack a, b, c;
static struct hprof_bucket buckets[6];
static struct hprof_snapshot snap;

static void test_debug_surface_allocations_are_internal(void **state)
{
    (void)state;
    struct evbuffer *out[6];
    for (int i = 0; i < 6; i++)
        out[i] = evbuffer_new();
    struct hprof_snapshot half = snap, diff;
    half.n_buckets = snap.n_buckets / 2;
    struct hprof_threads threads;
    uint8_t *gz = NULL, *tgz = NULL;
    size_t len = 0, tlen = 0;
    hprof_sym_reset(); /* cold: libdw opens every module */
    guard_outside = guard_inside = 0;
    guard_watching = 1;
    int rc_text = hprof_text_heap(&snap, out[0]);
    int rc_delta = hprof_snapshot_delta(&half, &snap, &diff);
    int rc_encode = hprof_pprof_encode_delta(&diff, HPROF_HEAP, NULL, 1, 1000000000, &gz, &len);
    hprof_output_free(gz);
    hprof_snapshot_release(&diff);
    int rc_capture = hprof_threads_capture(&threads);
    int rc_tencode = hprof_threads_encode(&threads, &tgz, &tlen);
    hprof_output_free(tgz);
    int rc_t1 = hprof_threads_text(&threads, 1, out[1]);
    int rc_t2 = hprof_threads_text(&threads, 2, out[2]);
    hprof_threads_release(&threads);
    size_t count = hprof_threads_count();
    int rc_json = hprof_stats_write(out[3], HPROF_STATS_JSON);
    int rc_prom = hprof_stats_write(out[4], HPROF_STATS_PROMETHEUS);
    int rc_comments = hprof_stats_write(out[5], HPROF_STATS_COMMENTS);
    guard_watching = 0;
    assert_int_equal(rc_text, 0);
    assert_int_equal(rc_delta, 0);
    assert_int_equal(rc_encode, 0);
    assert_int_equal(rc_capture, 0);
    assert_int_equal(rc_tencode, 0);
    assert_int_equal(rc_t1, 0);
    assert_int_equal(rc_t2, 0);
    assert_true(count >= 1);
    assert_int_equal(rc_json, 0);
    assert_int_equal(rc_prom, 0);
    assert_int_equal(rc_comments, 0);
    for (int i = 0; i < 6; i++) {
        assert_true(evbuffer_get_length(out[i]) > 0);
        evbuffer_free(out[i]);
    }
    assert_true(guard_inside > 100); /* the interposition works: libdw alone allocates plenty */
    assert_int_equal(guard_outside, 0);
    assert_int_equal(fake_collect_depth(), 0);
}

int main(void)
{
    fake_sites_collect(&a, &b, &c);
    fake_sites_snapshot(&snap, buckets, &a, &b, &c);
    fake_collect_set(&snap);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_debug_surface_allocations_are_internal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
