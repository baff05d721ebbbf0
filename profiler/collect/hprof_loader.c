/*
 * hprof_loader: the dl_iterate_phdr interposer (see hprof_loader.h).
 *
 * Model. glibc's dl_iterate_phdr holds the loader's list lock, a recursive mutex, while it calls
 * back. Walking a stack with libunwind calls dl_iterate_phdr for every frame it looks up, so a
 * SIGPROF or SIGURG handler that walks takes that lock too. Recursive or not, it is not safe
 * from a handler on a thread that is itself inside dl_iterate_phdr: between taking the lock word
 * and recording itself as the owner (and between clearing the owner and releasing the word on
 * the way out) the thread holds the lock without being its owner, so the handler's acquire
 * waits for its own thread, for good, and every other thread after it (test_loader_lock in
 * tests/profiler_cpu caught it 2 runs in 25). Callers of dl_iterate_phdr are many: libgcc
 * finding unwind tables, libunwind (the heap sampler's walks), our hprof_maps, any library.
 *
 * So dl_iterate_phdr here counts, per thread, the calls in progress, and calls glibc's. A
 * handler that finds its thread inside (hprof_loader_busy) records the interrupted PC alone
 * instead of walking. The count goes up before glibc's function is entered and down after it
 * returned, so both windows are inside. Calls from the handlers' own walks (libunwind's, which
 * run with every signal blocked) count too and change nothing.
 *
 * Not covered: glibc's own code that takes the same lock without calling dl_iterate_phdr
 * through its exported symbol (dlopen and dlclose, while they link or unlink an object: a few
 * stores under the lock, with no callback). dlopen is not interposed: glibc resolves a relative
 * name against the caller's RUNPATH, found from its return address, which a wrapper would
 * change. Interposing dl_iterate_phdr changes one thing of that kind: glibc reports the objects
 * of the namespace of its caller, which is now this library's (the base namespace); only a
 * program that calls it from an object loaded with dlmopen would see the difference.
 */
#include "hprof_loader.h"

#include <dlfcn.h>
#include <link.h>
#include <stdatomic.h>

#include "hprof_internal.h"

typedef int (*iterate_fn)(int (*)(struct dl_phdr_info *, size_t, void *), void *);

static _Atomic(iterate_fn) real_iterate;
static __thread int loader_depth __attribute__((tls_model("initial-exec")));

int hprof_loader_busy(void)
{
    return loader_depth > 0;
}

void hprof_loader_init(void)
{
    if (atomic_load_explicit(&real_iterate, memory_order_acquire) != NULL)
        return;
    hprof_internal_enter(); /* dlsym may allocate (its error buffer): profiler overhead */
    iterate_fn f = (iterate_fn)dlsym(RTLD_NEXT, "dl_iterate_phdr");
    hprof_internal_exit();
    if (f != NULL) /* two threads may both look it up: they find the same function */
        atomic_store_explicit(&real_iterate, f, memory_order_release);
}

int dl_iterate_phdr(int (*callback)(struct dl_phdr_info *, size_t, void *), void *data)
{
    hprof_loader_init();
    iterate_fn real = atomic_load_explicit(&real_iterate, memory_order_acquire);
    if (real == NULL)
        return 0; /* no glibc function to call: as if no object were loaded */
    loader_depth++;
    atomic_signal_fence(memory_order_seq_cst); /* counted before the lock is touched */
    int rc = real(callback, data);
    atomic_signal_fence(memory_order_seq_cst); /* ... and until it is released */
    loader_depth--;
    return rc;
}

__attribute__((constructor(101))) static void hprof_loader_ctor(void)
{
    hprof_loader_init();
}
