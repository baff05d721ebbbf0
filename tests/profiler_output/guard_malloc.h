/* guard_malloc: counts of the allocations a thread makes inside and outside the profiler's
 * guard (see guard_malloc.c). Set guard_watching on the thread to count. */
#ifndef GUARD_MALLOC_H
#define GUARD_MALLOC_H

extern __thread int guard_watching;
extern __thread unsigned long guard_outside, guard_inside;

#endif
