/*
 * lg_verdict: see lg_verdict.h for the model and the statistic. Everything is in doubles: byte
 * counts up to 2^53 are exact, and a series is a few thousand points at most. Scratch arrays
 * are allocated per call; the function keeps no state.
 */
#include "lg_verdict.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg_diff.h"

const char *lg_verdict_name(enum lg_verdict_kind kind)
{
    switch (kind) {
    case LG_VERDICT_LEAK:
        return "LEAK";
    case LG_VERDICT_BOUNDED:
        return "BOUNDED";
    default:
        return "UNDECIDED";
    }
}

int lg_verdict_exit_status(enum lg_verdict_kind kind)
{
    return kind == LG_VERDICT_BOUNDED ? 0 : kind == LG_VERDICT_LEAK ? 1 : 3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of a[0..k) (reorders a); 0 when k == 0. */
static double median(double *a, size_t k)
{
    if (k == 0)
        return 0;
    qsort(a, k, sizeof(*a), cmp_double);
    return k % 2 ? a[k / 2] : (a[k / 2 - 1] + a[k / 2]) / 2;
}

/* Least-squares slope of ys over xs; 0 with fewer than two distinct xs. */
static double ls_slope(const double *xs, const double *ys, size_t k)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (size_t i = 0; i < k; i++) {
        sx += xs[i];
        sy += ys[i];
    }
    if (k < 2)
        return 0;
    double mx = sx / (double)k, my = sy / (double)k;
    for (size_t i = 0; i < k; i++) {
        sxx += (xs[i] - mx) * (xs[i] - mx);
        sxy += (xs[i] - mx) * (ys[i] - my);
    }
    return sxx > 0 ? sxy / sxx : 0;
}

/* Requests completed by time t, linear between the points' cumulative counts. */
static double requests_at(const struct lg_verdict_point *p, size_t n, double t)
{
    if (t <= p[0].t_s)
        return p[0].requests;
    if (t >= p[n - 1].t_s)
        return p[n - 1].requests;
    size_t lo = 0, hi = n - 1; /* p[lo].t_s <= t < p[hi].t_s */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (p[mid].t_s <= t)
            lo = mid;
        else
            hi = mid;
    }
    double span = p[hi].t_s - p[lo].t_s;
    double f = span > 0 ? (t - p[lo].t_s) / span : 0;
    return p[lo].requests + f * (p[hi].requests - p[lo].requests);
}

/* Round a "run longer" figure up to whole seconds, at least one profile interval. */
static double more_seconds(double s, double dt)
{
    if (!(s > dt))
        s = dt;
    return ceil(s - 1e-9);
}

static void window_stats(const struct lg_verdict_point *p, size_t first, size_t n,
                         struct lg_verdict *v)
{
    v->first = first;
    v->n_window = n - first;
    v->window_s = p[n - 1].t_s - p[first].t_s;
    v->min_bytes = v->max_bytes = p[first].inuse_bytes;
    v->rises = v->falls = 0;
    for (size_t i = first; i < n; i++) {
        v->min_bytes = fmin(v->min_bytes, p[i].inuse_bytes);
        v->max_bytes = fmax(v->max_bytes, p[i].inuse_bytes);
        if (i > first) {
            double d = p[i].inuse_bytes - p[i - 1].inuse_bytes;
            if (d > 0)
                v->rises += d;
            else
                v->falls -= d;
        }
    }
}

static void per_request(const struct lg_verdict_point *p, size_t first, size_t n,
                        struct lg_verdict *v)
{
    double served = p[n - 1].requests - p[first].requests;
    v->bytes_per_request = served > 0 ? v->growth_bytes / served : 0;
    v->slope_bytes_per_s = v->window_s > 0 ? v->growth_bytes / v->window_s : 0;
}

/*
 * Judge the envelope of points [first, n): cut at the indices in cut[0..ncut) (each the first
 * point after a drop; cut[0] == first), or, with ncut == 0, every point its own period (the
 * window is then the second half of the run: a longer run adds half its time to it). scratch
 * holds 6 * n doubles.
 */
static void judge_envelope(const struct lg_verdict_point *p, size_t first, size_t n,
                           const size_t *cut, size_t ncut, double P, double dt, double *scratch,
                           struct lg_verdict *v)
{
    double *tt = scratch, *ty = scratch + n, *pt = scratch + 2 * n, *py = scratch + 3 * n;
    size_t ntr = 0, npk = 0;
    double step = 0;
    window_stats(p, first, n, v);
    if (ncut == 0) {
        for (size_t i = first; i < n; i++) {
            tt[ntr] = pt[npk] = p[i].t_s;
            ty[ntr++] = py[npk++] = p[i].inuse_bytes;
        }
        v->periods = n - first;
        double *steps = scratch + 4 * n;
        size_t ns = 0;
        for (size_t i = first + 1; i < n; i++)
            if (p[i].inuse_bytes > p[i - 1].inuse_bytes)
                steps[ns++] = p[i].inuse_bytes - p[i - 1].inuse_bytes;
        step = median(steps, ns);
    } else {
        /* Whole periods [cut[k], cut[k + 1]): trough and peak; after the last drop: trough. */
        for (size_t k = 0; k < ncut; k++) {
            size_t a = cut[k], b = k + 1 < ncut ? cut[k + 1] : n;
            size_t lo = a, hi = a;
            for (size_t i = a; i < b; i++) {
                if (p[i].inuse_bytes < p[lo].inuse_bytes)
                    lo = i;
                if (p[i].inuse_bytes > p[hi].inuse_bytes)
                    hi = i;
            }
            tt[ntr] = p[lo].t_s;
            ty[ntr++] = p[lo].inuse_bytes;
            if (k + 1 < ncut) {
                pt[npk] = p[hi].t_s;
                py[npk++] = p[hi].inuse_bytes;
            }
        }
        v->periods = ncut - 1;
        /* The phase error: one median rising step inside the whole periods. */
        double *steps = scratch + 4 * n;
        size_t ns = 0;
        for (size_t k = 0; k + 1 < ncut; k++)
            for (size_t i = cut[k] + 1; i < cut[k + 1]; i++)
                if (p[i].inuse_bytes > p[i - 1].inuse_bytes)
                    steps[ns++] = p[i].inuse_bytes - p[i - 1].inuse_bytes;
        step = median(steps, ns);
    }
    double level = 0;
    for (size_t i = 0; i < npk; i++)
        level += py[i];
    level = npk ? level / (double)npk : v->max_bytes;
    v->level_bytes = level;
    double b_tr = ls_slope(tt, ty, ntr);
    double b_pk = npk >= 2 ? ls_slope(pt, py, npk) : b_tr;
    double b = (b_tr + b_pk) / 2;
    double w = v->window_s;
    v->growth_bytes = b * w;
    v->trough_first = v->trough_last = v->peak_first = v->peak_last = 0;
    if (ntr > 0) {
        double mt = 0, my = 0;
        for (size_t i = 0; i < ntr; i++) {
            mt += tt[i];
            my += ty[i];
        }
        mt /= (double)ntr;
        my /= (double)ntr;
        v->trough_first = my + b_tr * (p[first].t_s - mt);
        v->trough_last = my + b_tr * (p[n - 1].t_s - mt);
    }
    if (npk > 0) {
        double mt = 0, my = 0;
        for (size_t i = 0; i < npk; i++) {
            mt += pt[i];
            my += py[i];
        }
        mt /= (double)npk;
        my /= (double)npk;
        v->peak_first = my + b_pk * (p[first].t_s - mt);
        v->peak_last = my + b_pk * (p[n - 1].t_s - mt);
    }
    /* The level error at both ends, and the phase error: up to one rising step per envelope
     * value, drawn afresh each period as the two clocks and their jitter move, so the fitted
     * line carries about step / sqrt(periods) of it. */
    double sigma2 = P * fmax(level, 0);
    double noise2 = 2 * sigma2 + step * step / (double)(ntr ? ntr : 1);
    /* The load. A TTL store holds the requests of its entries' lifetime L (about the fill-up
     * before the first drop), so when the load generator falls behind or catches up the level
     * follows: k * (requests in (t - L, t]) with k = level / their mean. That part of the
     * envelope's slope is taken out, and a quarter of it counts as noise (k is approximate). */
    double load = 0;
    if (ncut > 0) {
        double life = p[cut[0]].t_s - p[0].t_s - (v->period_s > 0 ? v->period_s / 2 : 0);
        double *c = scratch + 4 * n, *cp = scratch + 5 * n, cmean = 0;
        for (size_t i = 0; life >= dt && i < ntr + npk; i++) {
            double t = i < ntr ? tt[i] : pt[i - ntr];
            double got = requests_at(p, n, t) - requests_at(p, n, t - life);
            if (i < ntr)
                c[i] = got;
            else
                cp[i - ntr] = got;
            cmean += got / (double)(ntr + npk);
        }
        if (life >= dt && cmean > 0) {
            double b_c =
                (ls_slope(tt, c, ntr) + (npk >= 2 ? ls_slope(pt, cp, npk) : ls_slope(tt, c, ntr))) /
                2;
            load = level / cmean * b_c * w;
        }
    }
    v->load_bytes = load;
    v->growth_bytes -= load;
    noise2 += pow(LG_VERDICT_LOAD_DOUBT * load, 2);
    double noise = sqrt(noise2);
    v->noise_bytes = fmax(noise, LG_VERDICT_NOISE_FLOOR * fabs(level));
    v->z = v->noise_bytes > 0 ? v->growth_bytes / v->noise_bytes : 0;
    v->reason = LG_VERDICT_ENVELOPE;
    per_request(p, first, n, v);

    bool rel_ok = v->growth_bytes >= LG_VERDICT_MIN_REL_GROWTH * fabs(level);
    if (ncut > 0 && v->periods < LG_VERDICT_MIN_PERIODS) {
        v->kind = LG_VERDICT_UNDECIDED;
        v->reason = LG_VERDICT_FEW_PERIODS;
        /* See LG_VERDICT_MIN_PERIODS + 1 drops: at the period seen, or, with one drop, at
         * least the time since it. */
        double since = p[n - 1].t_s - p[cut[0]].t_s;
        double fill = p[cut[0]].t_s - p[0].t_s;
        double period = v->period_s > 0 ? v->period_s : fmax(fmax(since, fill / 2), dt);
        double need = (double)(LG_VERDICT_MIN_PERIODS + 1 - ncut) * period;
        v->more_s = more_seconds(need - (p[n - 1].t_s - p[cut[ncut - 1]].t_s) + dt, dt);
        return;
    }
    if (v->z >= LG_VERDICT_Z_LEAK && rel_ok) {
        v->kind = LG_VERDICT_LEAK;
        return;
    }
    bool rose = p[n - 1].inuse_bytes > p[0].inuse_bytes;
    if (v->z <= LG_VERDICT_Z_BOUNDED && !(v->never_fell && rose)) {
        v->kind = LG_VERDICT_BOUNDED;
        return;
    }
    v->kind = LG_VERDICT_UNDECIDED;
    v->reason = v->z <= LG_VERDICT_Z_BOUNDED ? LG_VERDICT_NEVER_FELL : LG_VERDICT_IN_BAND;
    /* At the current slope, how long until the growth is LG_VERDICT_Z_LEAK noises (and the
     * relative minimum)? The noise does not shrink with time; the growth of a leak grows. */
    double target = fmax(LG_VERDICT_Z_LEAK * v->noise_bytes, LG_VERDICT_MIN_REL_GROWTH * level);
    double more = dt;
    if (b > 0 && w > 0) {
        double w_need = target / b;
        more = (w_need - w) * (ncut > 0 ? 1 : 2);
    }
    v->more_s = more_seconds(more, dt);
}

enum lg_verdict_kind lg_verdict_compute(const struct lg_verdict_point *p, size_t n,
                                        struct lg_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->kind = LG_VERDICT_UNDECIDED;
    v->reason = LG_VERDICT_FEW_PROFILES;
    v->n = n;
    if (n == 0) {
        v->more_s = LG_VERDICT_MIN_PROFILES;
        return v->kind;
    }
    double *scratch = malloc(6 * n * sizeof(*scratch));
    size_t *cut = malloc(n * sizeof(*cut));
    if (scratch == NULL || cut == NULL) {
        free(scratch);
        free(cut);
        return v->kind; /* too few profiles we could look at; more_s 0 */
    }
    /* The profile interval and the sample period: medians, robust to a skipped fetch. */
    for (size_t i = 1; i < n; i++)
        scratch[i - 1] = p[i].t_s - p[i - 1].t_s;
    double dt = n > 1 ? median(scratch, n - 1) : 1;
    if (!(dt > 0))
        dt = 1;
    for (size_t i = 0; i < n; i++)
        scratch[i] = p[i].sample_period > 0 ? p[i].sample_period : 0;
    double P = median(scratch, n);
    v->sample_period = P;
    v->never_fell = 1;
    for (size_t i = 1; i < n; i++)
        if (p[i].inuse_bytes < p[i - 1].inuse_bytes)
            v->never_fell = 0;

    if (n < LG_VERDICT_MIN_PROFILES) {
        window_stats(p, 0, n, v);
        v->growth_bytes = p[n - 1].inuse_bytes - p[0].inuse_bytes;
        per_request(p, 0, n, v);
        v->more_s = more_seconds((double)(LG_VERDICT_MIN_PROFILES - n) * dt, dt);
        goto out;
    }

    /* 1. Real drops. */
    size_t ncut = 0;
    for (size_t i = 1; i < n; i++) {
        double fall = p[i - 1].inuse_bytes - p[i].inuse_bytes;
        double thr =
            fmax(LG_VERDICT_DROP_SAMPLES * P, LG_VERDICT_DROP_LEVEL * fabs(p[i - 1].inuse_bytes));
        if (fall > thr)
            cut[ncut++] = i;
    }
    v->drops = ncut;
    if (ncut >= 2) {
        for (size_t k = 1; k < ncut; k++)
            scratch[k - 1] = p[cut[k]].t_s - p[cut[k - 1]].t_s;
        v->period_s = median(scratch, ncut - 1);
    }

    /* 2. Drops enough for whole periods: the envelope from the first one on. */
    if (ncut >= LG_VERDICT_MIN_PERIODS + 1) {
        judge_envelope(p, cut[0], n, cut, ncut, P, dt, scratch, v);
        goto out;
    }

    /* 3. No drop, or too few for whole periods: a staircase? */
    window_stats(p, 0, n, v);
    double g = p[n - 1].inuse_bytes - p[0].inuse_bytes;
    double counting = sqrt(P * (v->rises + v->falls));
    bool staircase = g > 0 && v->falls <= LG_VERDICT_MONO_FALLS * v->rises;
    if (staircase) {
        v->growth_bytes = g;
        v->noise_bytes = counting;
        v->z = counting > 0 ? g / counting : INFINITY;
        v->level_bytes = p[n - 1].inuse_bytes;
        per_request(p, 0, n, v);
        if (v->z >= LG_VERDICT_Z_MONOTONE &&
            g >= LG_VERDICT_MIN_REL_GROWTH * fabs(p[n - 1].inuse_bytes)) {
            v->kind = LG_VERDICT_LEAK;
            v->reason = LG_VERDICT_STAIRCASE;
            goto out;
        }
        /* Rising without falling, not yet beyond the noise: the counting noise grows as the
         * square root of the growth, so the window must grow by (Z / z)^2. */
        v->kind = LG_VERDICT_UNDECIDED;
        v->reason = LG_VERDICT_IN_BAND;
        double need = v->window_s;
        if (v->z > 0 && isfinite(v->z))
            need = v->window_s * pow(LG_VERDICT_Z_MONOTONE / v->z, 2);
        double rel = g > 0
                         ? v->window_s * LG_VERDICT_MIN_REL_GROWTH * fabs(p[n - 1].inuse_bytes) / g
                         : v->window_s;
        v->more_s = more_seconds(fmax(need, rel) - v->window_s, dt);
        goto out;
    }
    /* Otherwise every point is its own envelope, over the second half of the run. With a drop
     * or two, that second opinion may say BOUNDED (the falls were the wander of a level whose
     * sweeps are too small to see, or a swing within the noise); anything else means a sawtooth
     * longer than the run can show, and whole periods are missing. */
    double mid = p[0].t_s + (p[n - 1].t_s - p[0].t_s) / 2;
    size_t first = 0;
    while (first < n && p[first].t_s < mid)
        first++;
    if (n - first < LG_VERDICT_MIN_PROFILES / 2 + 1)
        first = n - (LG_VERDICT_MIN_PROFILES / 2 + 1);
    double biggest = 0;
    for (size_t k = 0; k < ncut; k++)
        biggest = fmax(biggest, p[cut[k] - 1].inuse_bytes - p[cut[k]].inuse_bytes);
    bool visible = ncut > 0 && biggest > 2 * sqrt(2 * P * fabs(p[cut[0] - 1].inuse_bytes));
    if (!visible) {
        judge_envelope(p, first, n, cut, 0, P, dt, scratch, v);
        v->by_points = 1;
    }
    if (visible || (ncut > 0 && v->kind != LG_VERDICT_BOUNDED)) {
        judge_envelope(p, cut[0], n, cut, ncut, P, dt, scratch, v); /* -> FEW_PERIODS */
        v->by_points = 0;
    }
out:
    free(scratch);
    free(cut);
    return v->kind;
}

void lg_verdict_reason_text(char *buf, size_t len, const struct lg_verdict *v)
{
    char a[32], b[32], c[32], d[32], g[32], noise[32], slope[32];
    lg_format_bytes(g, sizeof(g), v->growth_bytes, 1);
    lg_format_bytes(noise, sizeof(noise), v->noise_bytes, 0);
    lg_format_bytes(slope, sizeof(slope), v->slope_bytes_per_s, 1);
    char per[64] = "";
    if (v->bytes_per_request != 0)
        snprintf(per, sizeof(per), ", ~%.0f bytes per request", v->bytes_per_request);
    char sweeps[96];
    if (v->drops == 0)
        snprintf(sweeps, sizeof(sweeps), "no drop seen");
    else if (v->period_s > 0)
        snprintf(sweeps, sizeof(sweeps), "%zu drop(s), one every ~%.1f s", v->drops, v->period_s);
    else
        snprintf(sweeps, sizeof(sweeps), "%zu drop", v->drops);

    switch (v->reason) {
    case LG_VERDICT_FEW_PROFILES:
        snprintf(buf, len,
                 "%zu heap profile(s) over %.1f s, too few to judge (need %d); run at least %.0f "
                 "s more",
                 v->n, v->window_s, LG_VERDICT_MIN_PROFILES, v->more_s);
        return;
    case LG_VERDICT_FEW_PERIODS:
        snprintf(buf, len,
                 "%s: only %zu whole period(s) after the first drop, need %d; run at least %.0f "
                 "s more",
                 sweeps, v->periods, LG_VERDICT_MIN_PERIODS, v->more_s);
        return;
    case LG_VERDICT_STAIRCASE:
        snprintf(buf, len,
                 "in-use grows %s/s over %.1f s and never dropped (%s -> %s, %s, %.1fx its "
                 "sampling noise of %s)%s",
                 slope, v->window_s, (lg_format_bytes(a, sizeof(a), v->min_bytes, 0), a),
                 (lg_format_bytes(b, sizeof(b), v->max_bytes, 0), b), g, v->z, noise, per);
        return;
    default:
        break;
    }
    lg_format_bytes(a, sizeof(a), v->trough_first, 0);
    lg_format_bytes(b, sizeof(b), v->trough_last, 0);
    lg_format_bytes(c, sizeof(c), v->peak_first, 0);
    lg_format_bytes(d, sizeof(d), v->peak_last, 0);
    char shape[512];
    if (!v->by_points)
        snprintf(shape, sizeof(shape), "troughs %s -> %s, peaks %s -> %s (%s, %zu whole periods)",
                 a, b, c, d, sweeps, v->periods);
    else if (v->drops > 0)
        snprintf(shape, sizeof(shape),
                 "%s -> %s over the second half of the run (%s, small "
                 "against the noise)",
                 a, b, sweeps);
    else
        snprintf(shape, sizeof(shape), "%s -> %s over the second half of the run (%s)", a, b,
                 sweeps);
    char ge[96]; /* the growth, and what the load explained when that matters */
    snprintf(ge, sizeof(ge), "%s", g);
    if (fabs(v->load_bytes) >= 0.1 * v->noise_bytes) {
        char load[32];
        lg_format_bytes(load, sizeof(load), v->load_bytes, 1);
        snprintf(ge, sizeof(ge), "%s (and %s that followed the load)", g, load);
    }
    char lo[32], hi[32];
    lg_format_bytes(lo, sizeof(lo), v->min_bytes, 0);
    lg_format_bytes(hi, sizeof(hi), v->max_bytes, 0);
    if (v->kind == LG_VERDICT_LEAK)
        snprintf(buf, len, "in-use grows %s/s over %.1f s: %s, %s = %.1fx the noise of %s%s", slope,
                 v->window_s, shape, ge, v->z, noise, per);
    else if (v->kind == LG_VERDICT_BOUNDED)
        snprintf(buf, len,
                 "in-use stayed within %s - %s over %.1f s: %s, %s = %.1fx the noise of %s, "
                 "inside it",
                 lo, hi, v->window_s, shape, ge, v->z, noise);
    else if (v->reason == LG_VERDICT_NEVER_FELL)
        snprintf(buf, len,
                 "in-use never fell and rose %s over %.1f s, inside the noise of %s: run at "
                 "least %.0f s more",
                 g, v->window_s, noise, v->more_s);
    else
        snprintf(buf, len,
                 "in-use moved %s over %.1f s: %s, %.1fx the noise of %s, neither inside it nor "
                 "clearly beyond; run at least %.0f s more",
                 ge, v->window_s, shape, v->z, noise, v->more_s);
}
