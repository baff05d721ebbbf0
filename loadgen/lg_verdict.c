/*
 * lg_verdict: see lg_verdict.h for the statistics and why. Everything is in doubles: byte counts
 * up to 2^53 are exact and the quantities are sums of a few thousand points at most.
 */
#include "lg_verdict.h"

#include <math.h>
#include <string.h>

const char *lg_verdict_name(enum lg_verdict_kind kind)
{
    switch (kind) {
    case LG_VERDICT_LEAK:
        return "LEAK";
    case LG_VERDICT_BOUNDED:
        return "BOUNDED";
    default:
        return "UNKNOWN";
    }
}

double lg_verdict_t_crit(double dof)
{
    /* One-sided 0.999 quantiles of Student's t; linear in 1/dof between table rows, which is
     * how the tail behaves for large dof. */
    static const struct {
        double dof, t;
    } table[] = {{1, 318.31}, {2, 22.327}, {3, 10.215}, {4, 7.173},  {5, 5.893},  {6, 5.208},
                 {7, 4.785},  {8, 4.501},  {9, 4.297},  {10, 4.144}, {12, 3.930}, {15, 3.733},
                 {20, 3.552}, {25, 3.450}, {30, 3.385}, {40, 3.307}, {60, 3.232}, {120, 3.160}};
    const size_t rows = sizeof(table) / sizeof(table[0]);
    if (dof <= 1)
        return table[0].t;
    for (size_t i = 1; i < rows; i++) {
        if (dof <= table[i].dof) {
            double x0 = 1 / table[i - 1].dof, x1 = 1 / table[i].dof, x = 1 / dof;
            return table[i - 1].t + (table[i].t - table[i - 1].t) * (x - x0) / (x1 - x0);
        }
    }
    double x0 = 1 / table[rows - 1].dof, x = 1 / dof; /* towards the normal's 3.090 at x = 0 */
    return 3.090 + (table[rows - 1].t - 3.090) * x / x0;
}

enum lg_verdict_kind lg_verdict_compute(const struct lg_verdict_point *pts, size_t n,
                                        struct lg_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->kind = LG_VERDICT_UNKNOWN;
    if (n < LG_VERDICT_MIN_WINDOW)
        return v->kind;

    /* 1. The window: the second half by time, or the last few points. */
    double mid = pts[0].t_s + (pts[n - 1].t_s - pts[0].t_s) / 2;
    size_t first = 0;
    while (first < n && pts[first].t_s < mid)
        first++;
    size_t least = n < LG_VERDICT_MIN_MONOTONE ? n : LG_VERDICT_MIN_MONOTONE;
    if (n - first < least)
        first = n - least;
    const struct lg_verdict_point *w = pts + first;
    size_t m = n - first;
    v->first = first;
    v->n = m;
    v->window_s = w[m - 1].t_s - w[0].t_s;

    /* 2. Least squares. */
    double st = 0, sy = 0;
    v->min_bytes = w[0].inuse_bytes;
    v->max_bytes = w[0].inuse_bytes;
    for (size_t i = 0; i < m; i++) {
        st += w[i].t_s;
        sy += w[i].inuse_bytes;
        v->min_bytes = fmin(v->min_bytes, w[i].inuse_bytes);
        v->max_bytes = fmax(v->max_bytes, w[i].inuse_bytes);
    }
    double tm = st / (double)m, ym = sy / (double)m;
    v->mean_bytes = ym;
    double sxx = 0, sxy = 0;
    for (size_t i = 0; i < m; i++) {
        sxx += (w[i].t_s - tm) * (w[i].t_s - tm);
        sxy += (w[i].t_s - tm) * (w[i].inuse_bytes - ym);
    }
    if (sxx <= 0) { /* all points at one instant: no time to grow in */
        v->kind = LG_VERDICT_BOUNDED;
        return v->kind;
    }
    double b = sxy / sxx;
    v->slope_bytes_per_s = b;
    v->growth_bytes = b * v->window_s;
    double served = w[m - 1].requests - w[0].requests;
    v->bytes_per_request = served > 0 ? v->growth_bytes / served : 0;

    /* 3. Test A: t with an autocorrelation-adjusted standard error. */
    double see = 0, lag = 0, prev = 0;
    for (size_t i = 0; i < m; i++) {
        double e = w[i].inuse_bytes - (ym + b * (w[i].t_s - tm));
        see += e * e;
        if (i > 0)
            lag += e * prev;
        prev = e;
    }
    double rho = see > 0 ? lag / see : 0;
    rho = fmin(fmax(rho, 0.0), LG_VERDICT_MAX_RHO);
    v->rho = rho;
    v->n_eff = fmax((double)m * (1 - rho) / (1 + rho), 3.0);
    v->n_eff = fmin(v->n_eff, (double)m);
    v->t_crit = lg_verdict_t_crit(v->n_eff - 2);
    if (see > 0) {
        double se = sqrt(see / (double)(m - 2) / sxx) * sqrt((double)m / v->n_eff);
        v->t_stat = b / se;
        v->test_a = b > 0 && v->t_stat >= v->t_crit;
    } else {
        v->t_stat = b > 0 ? INFINITY : 0; /* a perfect line */
        v->test_a = b > 0;
    }

    /* 4. Test B: growth made of rises, hardly any falls. */
    for (size_t i = 1; i < m; i++) {
        double d = w[i].inuse_bytes - w[i - 1].inuse_bytes;
        if (d > 0)
            v->rises += d;
        else
            v->falls -= d;
    }
    v->test_b = m >= LG_VERDICT_MIN_MONOTONE && b > 0 && v->rises > 0 &&
                v->falls <= LG_VERDICT_MAX_FALL_RATIO * v->rises &&
                v->growth_bytes >= LG_VERDICT_MIN_GROWTH_RATIO * fabs(ym);

    v->kind = (v->test_a || v->test_b) ? LG_VERDICT_LEAK : LG_VERDICT_BOUNDED;
    return v->kind;
}
