/*
 * lg_verdict: does in-use memory keep growing, or does it stay in a range? A pure function of the
 * profile time series, so tests feed it synthetic timelines.
 *
 * The statistics (also in README-level words in the report):
 *
 *  1. Window. Only the second half of the run (by time) is judged: the first half holds the
 *     warm-up (caches filling, a TTL store filling up to its steady state). If the second half
 *     has fewer than LG_VERDICT_MIN_MONOTONE points, the last LG_VERDICT_MIN_MONOTONE points
 *     are used (all of them when there are fewer); with fewer than LG_VERDICT_MIN_WINDOW points
 *     in all, the verdict is UNKNOWN.
 *
 *  2. Trend. A least-squares line through the window gives the slope b (bytes/s) and residuals
 *     e_i. Growth G = b * (window span).
 *
 *  3. Test A, "significant trend": t = b / SE(b), where SE(b) is the OLS standard error inflated
 *     for autocorrelated residuals. A sawtooth's residuals are strongly correlated with their
 *     neighbours, which makes plain OLS overconfident; with the lag-1 autocorrelation rho of the
 *     residuals (clamped to [0, 0.9]) the effective number of points is
 *     n_eff = n (1 - rho) / (1 + rho) (at least 3), SE is scaled by sqrt(n / n_eff), and t is
 *     compared with Student's one-sided 99.9% quantile for n_eff - 2 degrees of freedom. This is
 *     what catches a slow leak hidden in independent noise: many points average the noise out.
 *
 *  4. Test B, "monotone growth": with at least LG_VERDICT_MIN_MONOTONE points, the sum of the
 *     falls between successive points is at most LG_VERDICT_MAX_FALL_RATIO of the sum of the
 *     rises, and G is at least LG_VERDICT_MIN_GROWTH_RATIO of the mean level. This catches what a
 *     sampling heap profiler shows of a real leak: a staircase (each new sample adds one period's
 *     worth of bytes), whose residuals are correlated too, so test A alone would be too shy. A
 *     sawtooth fails it as soon as the window holds one drop (falls ~ rises), and so does noise.
 *
 *  LEAK when b > 0 and (A or B); else BOUNDED, with the window's range. Limits: a sawtooth whose
 *  period is longer than half the run looks like growth (the data cannot tell), and profiles
 *  taken at exactly the sweep period alias the sawtooth into a near-constant (sample at a period
 *  that is not a multiple of the sweep's).
 */
#ifndef LG_VERDICT_H
#define LG_VERDICT_H

#include <stddef.h>

#define LG_VERDICT_MIN_WINDOW       4    /* points: fewer and the verdict is UNKNOWN */
#define LG_VERDICT_MIN_MONOTONE     8    /* points needed for test B */
#define LG_VERDICT_MAX_FALL_RATIO   0.15 /* test B: sum of falls / sum of rises at most this */
#define LG_VERDICT_MIN_GROWTH_RATIO 0.01 /* test B: growth over the window / mean level */
#define LG_VERDICT_MAX_RHO          0.9

struct lg_verdict_point {
    double t_s;         /* elapsed seconds when the profile was taken */
    double inuse_bytes; /* total inuse_space of the profile */
    double requests;    /* requests completed by then (for bytes per request) */
};

enum lg_verdict_kind { LG_VERDICT_UNKNOWN, LG_VERDICT_BOUNDED, LG_VERDICT_LEAK };

struct lg_verdict {
    enum lg_verdict_kind kind;
    size_t first, n;          /* the window: points [first, first + n) */
    double window_s;          /* time span of the window */
    double slope_bytes_per_s; /* b */
    double growth_bytes;      /* b * window_s */
    double t_stat, t_crit;    /* test A */
    double rho, n_eff;        /* residual lag-1 autocorrelation and effective points */
    double rises, falls;      /* test B: sums over successive points */
    double mean_bytes, min_bytes, max_bytes; /* of the window */
    double bytes_per_request; /* growth / requests served in the window (0 if none) */
    int test_a, test_b;       /* which test said LEAK */
};

/* Judge n points in time order. Always fills *out; returns out->kind. */
enum lg_verdict_kind lg_verdict_compute(const struct lg_verdict_point *pts, size_t n,
                                        struct lg_verdict *out);

const char *lg_verdict_name(enum lg_verdict_kind kind);

/* Student's t one-sided 99.9% quantile for dof degrees of freedom (dof >= 1). */
double lg_verdict_t_crit(double dof);

#endif
