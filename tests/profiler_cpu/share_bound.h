/*
 * share_bound.h: how the CPU tests judge which function a profile's samples land in.
 *
 * A thread's samples are deliveries of its CPU timer, each weighted by the periods it stands for
 * (1, or more with overruns on a busy machine), and each lands in one function. When each
 * delivery lands in function A with probability p (A's share of the thread's time), independently,
 * A's share of the samples has variance p (1 - p) / n_eff, with n_eff = samples^2 / sum of
 * squared weights: a delivery of weight 40 is one draw, not forty. The tests accept a share
 * within SHARE_SIGMAS standard deviations of p. test_share_sim measures the false alarms and
 * misses of this criterion on simulated deliveries (BENCHMARKS.md); cpu_pprof.sh applies the
 * same formula in awk to the split `go tool pprof -top` shows.
 */
#ifndef SHARE_BOUND_H
#define SHARE_BOUND_H

#include <math.h>

#define SHARE_SIGMAS 4.0

/* The largest accepted |share seen - p|, for `samples` samples of effective count n_eff (the
 * smaller of the two counts is used: n_eff never exceeds the samples). */
static inline double share_bound(double p, double samples, double n_eff)
{
    return SHARE_SIGMAS * sqrt(p * (1 - p) / fmin(samples, n_eff));
}

#endif
