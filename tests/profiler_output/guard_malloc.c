/*
 * guard_malloc: a malloc of the tests' own, for the guard tests (test_output_guard.c here and
 * tests/profiler_http/test_http_guard.c). It replaces malloc & co, forwarding to glibc's
 * __libc_* entry points as the real interposer does, and counts, on a thread that sets
 * guard_watching, the calls made inside hprof_internal_enter/exit (guard_inside) and outside
 * (guard_outside). Not for sanitizer or valgrind runs: they own malloc.
 */
#include "guard_malloc.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "fake_collect.h"

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *ptr);

__thread int guard_watching;
__thread unsigned long guard_outside, guard_inside;

static void note(void)
{
    if (!guard_watching)
        return;
    if (fake_collect_depth() > 0)
        guard_inside++;
    else
        guard_outside++;
}

void *malloc(size_t size)
{
    note();
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    note();
    return __libc_calloc(n, size);
}

void *realloc(void *ptr, size_t size)
{
    note();
    return __libc_realloc(ptr, size);
}

void *reallocarray(void *ptr, size_t n, size_t size)
{
    if (size != 0 && n > (size_t)-1 / size) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(ptr, n * size);
}

void free(void *ptr)
{
    if (ptr != NULL)
        note();
    __libc_free(ptr);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    note();
    void *p = __libc_memalign(align, size);
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t size)
{
    note();
    return __libc_memalign(align, size);
}

void *memalign(size_t align, size_t size)
{
    note();
    return __libc_memalign(align, size);
}
