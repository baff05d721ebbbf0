/*
 * The interposed functions' contracts, at whatever HEAPPROF_RATE the test runs with (ctest runs
 * it at 1, where every block is sampled and carries our header; at 0, where none does; at the
 * default; and at 64 bytes, where blocks of both kinds mix and realloc moves blocks between
 * them). Each function must behave as glibc's does: return values, errno, alignment, contents
 * kept by realloc, zeroed calloc memory, usable sizes that really are usable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collect_test.h"
#include "hprof_env.h"

/* Hide values from the compiler: the test passes absurd sizes and reads blocks after a
 * failed realloc on purpose, which GCC would otherwise reject or optimise on. */
static size_t ct_opaque(size_t n)
{
    __asm__ volatile("" : "+r"(n));
    return n;
}

static void *ct_launder(void *p)
{
    __asm__ volatile("" : "+r"(p));
    return p;
}

static uint64_t ct_rate;

static int ct_setup(void **state)
{
    (void)state;
    free(malloc(1));
    ct_rate = hprof_collect_rate();
    /* The profiler takes HEAPPROF_* out of the environment at load: ask it what it read. */
    const char *env = hprof_env_get("HEAPPROF_RATE");
    uint64_t want = env ? strtoull(env, NULL, 10) : HPROF_DEFAULT_RATE;
    if (ct_rate != want) {
        print_error("rate in effect %llu, HEAPPROF_RATE asks %llu\n", (unsigned long long)ct_rate,
                    (unsigned long long)want);
        return -1;
    }
    return 0;
}

/* The header, where there is one, must agree with the rate. */
static void ct_check_tag(const void *p)
{
    if (ct_rate == 1)
        assert_true(hprof_block_is_tagged(p));
    else if (ct_rate == 0)
        assert_false(hprof_block_is_tagged(p));
}

static void ct_fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 31 + seed);
}

static void ct_check_fill(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 31 + seed))
            fail_msg("byte %zu of %zu differs", i, n);
}

static void test_malloc_free(void **state)
{
    (void)state;
    errno = 1234;
    free(NULL);
    assert_int_equal(errno, 1234);
    void *z1 = malloc(0), *z2 = malloc(0);
    assert_non_null(z1);
    assert_non_null(z2);
    assert_ptr_not_equal(z1, z2);
    ct_check_tag(z1);
    free(z1);
    free(z2);
    assert_int_equal(malloc_usable_size(NULL), 0);
    /* Every size class, arena and mmap'd: usable sizes are writable, content survives. */
    static const size_t sizes[] = {1,   7,    8,    15,    16,     17,     24,
                                   100, 1000, 4096, 65536, 200000, 1 << 21};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *p = malloc(sizes[i]);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        ct_check_tag(p);
        size_t usable = malloc_usable_size(p);
        assert_true(usable >= sizes[i]);
        assert_true(usable < sizes[i] + 4096 + 64);
        ct_fill(p, usable, 3);
        ct_check_fill(p, usable, 3);
        errno = 77;
        free(p);
        assert_int_equal(errno, 77);
    }
    errno = 0;
    assert_null(malloc(ct_opaque(SIZE_MAX)));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(malloc(ct_opaque((size_t)PTRDIFF_MAX + 1)));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(malloc(ct_opaque(SIZE_MAX - 8))); /* n + header would overflow */
    assert_int_equal(errno, ENOMEM);
}

static void test_calloc_contract(void **state)
{
    (void)state;
    errno = 0;
    assert_null(calloc(ct_opaque(SIZE_MAX / 2), 3));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(calloc(3, ct_opaque(SIZE_MAX / 2)));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(calloc(1, ct_opaque(SIZE_MAX)));
    assert_int_equal(errno, ENOMEM);
    void *z = calloc(0, 10);
    assert_non_null(z);
    free(z);
    /* Zeroed even when the block reuses dirty memory. */
    static const size_t sizes[] = {8, 100, 1000, 5000, 300000};
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            unsigned char *d = malloc(sizes[i]);
            assert_non_null(d);
            memset(d, 0xa5, malloc_usable_size(d));
            free(d);
            unsigned char *p = calloc(1, sizes[i]);
            assert_non_null(p);
            ct_check_tag(p);
            for (size_t j = 0; j < sizes[i]; j++)
                assert_int_equal(p[j], 0);
            free(p);
        }
    }
}

static void test_realloc_contract(void **state)
{
    (void)state;
    /* realloc(NULL, n) is malloc(n). */
    unsigned char *p = realloc(NULL, 40);
    assert_non_null(p);
    ct_check_tag(p);
    ct_fill(p, 40, 1);
    /* Grow through arena and mmap'd sizes and shrink back: content always kept. */
    static const size_t steps[] = {41, 100, 1000, 70000, 300000, 2000000, 500, 17, 3000};
    size_t have = 40;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        size_t keep = have < steps[i] ? have : steps[i];
        unsigned char *q = realloc(ct_launder(p), steps[i]);
        assert_non_null(q);
        ct_check_fill(q, keep, 1);
        assert_true(malloc_usable_size(q) >= steps[i]);
        ct_fill(q, steps[i], 1);
        p = q;
        have = steps[i];
    }
    /* A failed realloc leaves the block alone. */
    errno = 0;
    assert_null(realloc(ct_launder(p), ct_opaque(SIZE_MAX - 4)));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(realloc(ct_launder(p), ct_opaque((size_t)PTRDIFF_MAX + 1)));
    assert_int_equal(errno, ENOMEM);
    ct_check_fill(p, have, 1);
    /* realloc(p, 0) frees p and returns NULL, as glibc does. */
    assert_null(realloc(ct_launder(p), 0));
    /* reallocarray: overflow is ENOMEM and leaves the block; otherwise realloc. */
    unsigned char *a = reallocarray(NULL, 10, 10);
    assert_non_null(a);
    ct_fill(a, 100, 9);
    errno = 0;
    assert_null(reallocarray(ct_launder(a), ct_opaque(SIZE_MAX / 4), 8));
    assert_int_equal(errno, ENOMEM);
    ct_check_fill(a, 100, 9);
    unsigned char *b = reallocarray(ct_launder(a), 50, 20);
    assert_non_null(b);
    ct_check_fill(b, 100, 9);
    free(b);
}

static void test_posix_memalign(void **state)
{
    (void)state;
    void *out = (void *)0x1234;
    static const size_t bad[] = {0, 1, 2, 4, 12, 24, 48, 100, 4097};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 99;
        assert_int_equal(posix_memalign(&out, bad[i], 64), EINVAL);
        assert_ptr_equal(out, (void *)0x1234); /* untouched */
        assert_int_equal(errno, 99);
    }
    errno = 99;
    assert_int_equal(posix_memalign(&out, 64, ct_opaque(SIZE_MAX - 100)), ENOMEM);
    assert_ptr_equal(out, (void *)0x1234);
    assert_int_equal(errno, 99);
    static const size_t good[] = {8, 16, 32, 64, 128, 4096, 65536, 1 << 20};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        for (size_t n = 0; n < 3000; n += 1499) {
            void *p = NULL;
            assert_int_equal(posix_memalign(&p, good[i], n), 0);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % good[i], 0);
            ct_check_tag(p);
            size_t usable = malloc_usable_size(p);
            assert_true(usable >= n);
            ct_fill(p, usable, 5);
            /* realloc of an aligned block keeps the content (not the alignment, as glibc) */
            unsigned char *q = realloc(ct_launder(p), n + 5000);
            assert_non_null(q);
            ct_check_fill(q, n, 5);
            free(q);
        }
    }
}

static void test_aligned_alloc_memalign(void **state)
{
    (void)state;
    static const size_t bad[] = {0, 3, 24, 100};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        assert_null(aligned_alloc(bad[i], 64));
        assert_int_equal(errno, EINVAL);
    }
    /* C17: the size need not be a multiple of the alignment. */
    static const size_t good[] = {1, 2, 8, 16, 64, 256, 4096};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        void *p = aligned_alloc(good[i], 100);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % good[i], 0);
        assert_true(malloc_usable_size(p) >= 100);
        free(p);
    }
    errno = 0;
    assert_null(aligned_alloc(64, ct_opaque(SIZE_MAX - 10)));
    assert_int_equal(errno, ENOMEM);
    /* memalign: glibc rounds a non-power-of-two up; absurd alignments are EINVAL. */
    void *m = memalign(24, 100);
    assert_non_null(m);
    assert_int_equal((uintptr_t)m % 32, 0);
    free(m);
    m = memalign(1, 10);
    assert_non_null(m);
    free(m);
    errno = 0;
    assert_null(memalign(SIZE_MAX, 10));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(memalign((size_t)1 << 63 | 1, 10));
    assert_int_equal(errno, EINVAL);
}

static void test_valloc_pvalloc(void **state)
{
    (void)state;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *v = valloc(100);
    assert_non_null(v);
    assert_int_equal((uintptr_t)v % page, 0);
    assert_true(malloc_usable_size(v) >= 100);
    free(v);
    void *pv = pvalloc(100);
    assert_non_null(pv);
    assert_int_equal((uintptr_t)pv % page, 0);
    assert_true(malloc_usable_size(pv) >= page); /* a whole page */
    memset(pv, 1, page);
    free(pv);
    errno = 0;
    assert_null(pvalloc(ct_opaque(SIZE_MAX - 10)));
    assert_int_equal(errno, ENOMEM);
}

/* Memory libc allocates for us (through the interposer) is freed by us, and vice versa. */
static void test_libc_internal(void **state)
{
    (void)state;
    char *s = strdup("hello");
    assert_string_equal(s, "hello");
    ct_check_tag(s);
    free(s);
    char *a = NULL;
    assert_true(asprintf(&a, "%d-%s", 42, "x") > 0);
    assert_string_equal(a, "42-x");
    free(a);
    char *line = NULL;
    size_t cap = 0;
    FILE *f = fmemopen("0123456789abcdef\n", 17, "r");
    assert_non_null(f);
    assert_int_equal(getline(&line, &cap, f), 17);
    fclose(f);
    free(line);
    char *path = realpath(".", NULL);
    assert_non_null(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malloc_free),
        cmocka_unit_test(test_calloc_contract),
        cmocka_unit_test(test_realloc_contract),
        cmocka_unit_test(test_posix_memalign),
        cmocka_unit_test(test_aligned_alloc_memalign),
        cmocka_unit_test(test_valloc_pvalloc),
        cmocka_unit_test(test_libc_internal),
    };
    return cmocka_run_group_tests(tests, ct_setup, NULL);
}
