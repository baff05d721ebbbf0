/*
 * fake_sites: real call sites whose PCs, names and lines the symbolizer must recover.
 *
 * Each site records what a stack walk would: its own PC at a known line (MARK: here() returns
 * its return address - 1, which lies in the call at that line), and each caller's return
 * address - 1 (a PC inside the CALL line of the caller). The macros keep the recorded __LINE__
 * and the call on one source line, whatever clang-format does to the rest. BARRIER after each
 * call keeps it out of tail position, so the return address is really in the caller.
 */
#include <dlfcn.h>
#include <string.h>

#include "fake_collect.h"

#define NOINLINE      __attribute__((noinline))
#define RET_PC()      ((uintptr_t)__builtin_return_address(0) - 1)
#define MARK(s, i, f) ((s)->line[i] = __LINE__, (s)->func[i] = (f), (s)->pc[i] = here())
#define CALL(s, i, f, call)                                                                        \
    do {                                                                                           \
        (s)->line[i] = __LINE__;                                                                   \
        (s)->func[i] = (f);                                                                        \
        call;                                                                                      \
        __asm__ volatile("" ::: "memory");                                                         \
    } while (0)
/* clang-format off */

static NOINLINE uintptr_t here(void)
{
    uintptr_t pc = RET_PC();
    __asm__ volatile("" ::: "memory");
    return pc;
}

NOINLINE void fake_store_put(struct fake_stack *s)
{
    s->pc[1] = RET_PC();
    MARK(s, 0, "fake_store_put");
    __asm__ volatile("" ::: "memory");
}

NOINLINE void fake_cache_fill(struct fake_stack *s)
{
    s->pc[1] = RET_PC();
    MARK(s, 0, "fake_cache_fill");
    __asm__ volatile("" ::: "memory");
}

NOINLINE void fake_handle_request(struct fake_stack *a, struct fake_stack *b)
{
    a->pc[2] = b->pc[2] = RET_PC();
    CALL(a, 1, "fake_handle_request", fake_store_put(a));
    CALL(b, 1, "fake_handle_request", fake_cache_fill(b));
}

NOINLINE void fake_main_loop(struct fake_stack *a, struct fake_stack *b)
{
    CALL(a, 2, "fake_main_loop", fake_handle_request(a, b));
    b->line[2] = a->line[2];
    b->func[2] = a->func[2];
}

static inline __attribute__((always_inline)) void fake_inline_alloc(struct fake_stack *s)
{
    s->inline_func = "fake_inline_alloc"; s->inline_line = __LINE__; s->pc[0] = here();
    __asm__ volatile("" ::: "memory");
}

NOINLINE void fake_inline_caller(struct fake_stack *s)
{
    s->pc[1] = RET_PC();
    CALL(s, 0, "fake_inline_caller", fake_inline_alloc(s));
}

NOINLINE void fake_inline_root(struct fake_stack *s)
{
    CALL(s, 1, "fake_inline_root", fake_inline_caller(s));
}
/* clang-format on */

void fake_sites_collect(struct fake_stack *a, struct fake_stack *b, struct fake_stack *c)
{
    memset(a, 0, sizeof(*a));
    memset(b, 0, sizeof(*b));
    memset(c, 0, sizeof(*c));
    fake_main_loop(a, b);
    a->depth = b->depth = 3;
    fake_inline_root(c);
    c->depth = 2;
}

static void fill(struct hprof_bucket *bk, const struct fake_stack *s, uint64_t size,
                 double alloc_objects, double inuse_objects)
{
    memset(bk, 0, sizeof(*bk));
    bk->size = size;
    bk->alloc_objects = alloc_objects;
    bk->alloc_bytes = alloc_objects * (double)size;
    bk->inuse_objects = inuse_objects;
    bk->inuse_bytes = inuse_objects * (double)size;
    bk->depth = s->depth;
    memcpy(bk->pcs, s->pc, sizeof(uintptr_t) * (size_t)s->depth);
}

/* Buckets, in order:
 *   0  A, 1024 B, 10.5 allocated (rounds to 11), 3.4 live (rounds to 3)
 *   1  B, 0 B (malloc(0): no bytes label), 2 allocated, 2 live
 *   2  C, 48 B, 7 allocated, 0 live
 *   3  A again with another size (2048 B): same locations, another sample
 *   4  an address in no mapping (0x1000) under A's callers: a location without mapping/lines
 *   5  a libc PC (getpid) as leaf: symbolized from libc's symbol table at least */
void fake_sites_snapshot(struct hprof_snapshot *out, struct hprof_bucket buckets[6],
                         const struct fake_stack *a, const struct fake_stack *b,
                         const struct fake_stack *c)
{
    fill(&buckets[0], a, 1024, 10.5, 3.4);
    fill(&buckets[1], b, 0, 2, 2);
    fill(&buckets[2], c, 48, 7, 0);
    fill(&buckets[3], a, 2048, 1, 1);
    fill(&buckets[4], a, 64, 1, 1);
    buckets[4].pcs[0] = 0x1000;
    fill(&buckets[5], a, 128, 1, 1);
    buckets[5].pcs[0] = (uintptr_t)dlsym(RTLD_DEFAULT, "getpid") + 4;
    memset(out, 0, sizeof(*out));
    out->time_ns = 1700000000123456789;
    out->rate = 4096;
    out->n_buckets = 6;
    out->buckets = buckets;
}
