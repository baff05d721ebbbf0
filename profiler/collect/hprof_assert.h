/*
 * hprof_assert: the profiler's invariants, checked in debug and test builds only (jemalloc's
 * assert(), which its --enable-debug turns on).
 *
 * HPROF_ASSERT(cond) is compiled in when HPROF_DEBUG is defined: the build defines it for a
 * Debug build and whenever the tests are built (BUILD_TESTING), so every ctest run checks the
 * invariants; a release build without tests (-DBUILD_TESTING=OFF, what a package would ship)
 * compiles them out entirely. The condition is then not evaluated, so it must have no side
 * effect.
 *
 * A failed assertion is a profiler bug: it prints "heapprof[PID COMM]: assertion failed: ..."
 * through hprof_log (one write(2), no allocation, no lock: safe inside malloc and fork handlers)
 * and aborts, so the core shows where. This is the one place the profiler may abort inside
 * malloc: only in a build made to find its bugs.
 */
#ifndef HPROF_ASSERT_H
#define HPROF_ASSERT_H

__attribute__((noreturn)) void hprof_assert_fail(const char *cond, const char *file, int line,
                                                 const char *func);

#ifdef HPROF_DEBUG
#define HPROF_ASSERT(cond)                                                                         \
    ((cond) ? (void)0 : hprof_assert_fail(#cond, __FILE__, __LINE__, __func__))
#else
#define HPROF_ASSERT(cond) ((void)sizeof(!(cond))) /* not evaluated; names stay "used" */
#endif

#endif
