/*
 * Every allocation and free the output half makes (its own, libdw's, zlib's, protobuf-c's,
 * libc's on its behalf) happens inside hprof_internal_enter/exit, so the collection half never
 * samples the profiler itself. This program replaces malloc & co (forwarding to glibc's
 * __libc_* entry points, as the real interposer does) and counts, on the test thread while a
 * profile is being produced, the calls made at nesting depth 0. Not run under sanitizers or
 * valgrind: they own malloc.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_collect.h"
#include "guard_malloc.h"
#include "hprof_output.h"

static struct fake_stack a, b, c;
static struct hprof_bucket buckets[6];
static struct hprof_snapshot snap;

static void test_profile_allocations_are_internal(void **state)
{
    (void)state;
    char path[] = "/tmp/hprof-guard-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    hprof_sym_reset(); /* a cold symbolizer: libdw opens and reads every module */
    guard_outside = guard_inside = 0;
    guard_watching = 1;
    int rc_fd = hprof_write_profile_fd(fd, HPROF_HEAP);         /* cold */
    int rc_path = hprof_write_profile_path(path, HPROF_ALLOCS); /* warm */
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc_take = hprof_pprof_take(HPROF_HEAP, &buf, &len);
    hprof_output_free(buf);
    guard_watching = 0;
    close(fd);
    unlink(path);
    assert_int_equal(rc_fd, 0);
    assert_int_equal(rc_path, 0);
    assert_int_equal(rc_take, 0);
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
        cmocka_unit_test(test_profile_allocations_are_internal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
