/*
 * lg_sched: the open-loop schedule. Request k (k = 0, 1, ...) of a run at `rate` requests per
 * second is due at start + k * 1e9 / rate nanoseconds, whatever happened to earlier requests:
 * a stalled server makes requests late (their latency counts from the due time), it never makes
 * them fewer. Computed from k each time rather than accumulated, so there is no drift, and in
 * 128-bit arithmetic so k * 1e9 cannot overflow.
 *
 * With T worker threads, worker i owns the requests k = i, i + T, i + 2T, ...: together they
 * follow the one global schedule.
 */
#ifndef LG_SCHED_H
#define LG_SCHED_H

#include <stdint.h>

/* When request k is due (ns, same clock as start_ns). rate_per_s > 0. */
static inline int64_t lg_sched_due_ns(int64_t start_ns, uint64_t rate_per_s, uint64_t k)
{
    return start_ns + (int64_t)(((unsigned __int128)k * 1000000000u) / rate_per_s);
}

/* How many requests are due at or before now_ns: the k with due(k) <= now. */
static inline uint64_t lg_sched_count_due(int64_t start_ns, uint64_t rate_per_s, int64_t now_ns)
{
    if (now_ns < start_ns)
        return 0;
    /* With d = now - start: floor(k * 1e9 / rate) <= d  <=>  k * 1e9 < (d + 1) * rate, so the
     * largest such k is floor(((d + 1) * rate - 1) / 1e9), and k counts from 0. */
    unsigned __int128 d = (unsigned __int128)(now_ns - start_ns);
    return (uint64_t)(((d + 1) * rate_per_s - 1) / 1000000000u) + 1;
}

/* Of the first `due_total` global requests, how many belong to worker `index` of `workers`. */
static inline uint64_t lg_sched_share(uint64_t due_total, unsigned index, unsigned workers)
{
    return due_total > index ? (due_total - index + workers - 1) / workers : 0;
}

#endif
