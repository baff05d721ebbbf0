/*
 * janitor: a background thread that calls a sweep function every interval and stops promptly.
 *
 * The model is memcached's LRU crawler and redis's activeExpireCycle reduced to their skeleton:
 * one named thread, one period, one callback. The janitor knows nothing about what it sweeps
 * (no HTTP, no hash table); the callback owns its data and its locking.
 *
 * Schedule: the callback runs at start + k * interval (k = 1, 2, ...), on CLOCK_MONOTONIC, so
 * the period does not drift by the callback's own duration. A tick missed because the callback
 * overran is skipped, not made up in a burst.
 *
 * Stop: janitor_stop signals a condition variable that the thread waits on with a timed wait,
 * so it returns within the callback's current run (if one is under way) plus a wake-up, never
 * after a whole interval. It then joins the thread: after janitor_stop returns, the callback is
 * not running and will not run again.
 *
 * Signals: the thread blocks every asynchronous signal, so SIGINT/SIGTERM reach the program's
 * own threads, never the janitor.
 */
#ifndef JANITOR_H
#define JANITOR_H

#include <stdint.h>

#define JANITOR_NAME_MAX 15 /* bytes: Linux thread names (comm) hold 15 characters + NUL */

struct janitor;

typedef void (*janitor_sweep_fn)(void *arg);

/* Start a thread named `name` (cut to JANITOR_NAME_MAX bytes) that calls sweep(arg) every
 * interval_ns. Returns the handle, or NULL with errno set (EINVAL for a non-positive interval
 * or a NULL sweep; otherwise what pthread_create said). */
struct janitor *janitor_start(const char *name, int64_t interval_ns, janitor_sweep_fn sweep,
                              void *arg);

/* Ask the thread to stop, wait for a sweep under way to finish, join, free. NULL is a no-op. */
void janitor_stop(struct janitor *janitor);

#endif
