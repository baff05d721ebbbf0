/*
 * ct_probe_lib: a shared library for test_collect_ctor. Its constructor allocates before the
 * program's main() (and possibly before the profiler has read its environment); its exported
 * function allocates from a shared object, whose malloc calls must reach the interposer that
 * the program linked statically.
 */
#include <stddef.h>
#include <stdlib.h>

#define CT_PROBE_BLOCKS 7
#define CT_MARKER       __attribute__((noipa))

void *ct_probe_blocks[CT_PROBE_BLOCKS];

CT_MARKER void ct_probe_ctor_alloc(void)
{
    for (int i = 0; i < CT_PROBE_BLOCKS; i++)
        ct_probe_blocks[i] = malloc(100);
}

__attribute__((constructor)) static void ct_probe_ctor(void)
{
    ct_probe_ctor_alloc();
}

CT_MARKER void *ct_probe_lib_alloc(size_t n)
{
    void *p = malloc(n);
    __asm__ volatile("" : : "r"(p) : "memory"); /* not a tail call: keep this frame */
    return p;
}
