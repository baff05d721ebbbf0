/*
 * lg_verdict: does in-use memory keep growing, or does it stay in a range, or can these profiles
 * not tell yet? A pure function of the profile time series, so tests feed it simulated ones.
 *
 * The model. Each point is the total inuse_space of a heap profile taken at time t. A sampling
 * profiler (ours, Go's, tcmalloc's) keeps an allocation with probability ~size/P (P = the
 * profile's sample period, the `period` field: mean bytes between samples) and weighs it by
 * ~P, so a profile of Y bytes in use is off by about sigma = sqrt(P * Y) (1 MiB at P = 64 KiB
 * and 16 MiB in use; 2.8 MiB at the 512 KiB default). That error is NOT independent from point
 * to point: an entry is sampled once, when it is allocated, and the sample stays in every
 * profile for as long as the entry lives. So successive profiles share their error, which
 * wanders only as entries come and go; two profiles further apart than an entry's lifetime have
 * independent errors of sigma each. The error is a *level* error, and averaging many points of
 * one level does not shrink it. P = 0 means an exact figure (sigma = 0).
 *
 * The shapes. A leak is a rising line; through a sampling profiler a staircase (each new sample
 * adds ~P), never falling except for a sampled short-lived buffer that comes and goes. A TTL
 * store is a sawtooth: it fills for one TTL, then each sweep drops the expired entries. Its
 * troughs (just after a sweep) and peaks (just before one) hold a constant level; a leak under
 * it raises both. Go's heap profile is refreshed only at each GC, so it moves as flat steps.
 * Profiles are taken on their own clock: each trough or peak is seen up to one profile
 * interval's rise away from the true one, and as the two clocks drift this "phase" error drifts
 * too, so it is a level error of up to one rising step.
 *
 * The statistic:
 *  1. Real drops: a fall between successive profiles of more than LG_VERDICT_DROP_SAMPLES
 *     sample periods (a sweep frees that many sampled entries at once; a sampled transient
 *     buffer is one) and more than LG_VERDICT_DROP_LEVEL of the level (exact figures). The
 *     median spacing of drops is the sweep period.
 *  2. With at least one drop, the judged window starts at the first drop (before it the store
 *     was filling up) and is cut into periods at the drops. Per whole period, the trough (the
 *     minimum) and the peak (the maximum); the trough after the last drop too. Growth G is the
 *     least-squares slope of the troughs and of the peaks, averaged, times the window's span.
 *     A store holds the requests of its entries' lifetime (about the fill-up before the first
 *     drop): the part of G that follows the load (requests per lifetime at each trough and
 *     peak, from the `requests` column, times the level per request) is taken out of G, and
 *     LG_VERDICT_LOAD_DOUBT of it is added to the noise. A load generator that falls behind and
 *     catches up on a starved machine moves the level that way.
 *     Its noise N combines the level error at each end of the window, sqrt(2) * sqrt(P * peak
 *     level), the phase error, one median rising step divided by the square root of the number
 *     of troughs, and a floor of LG_VERDICT_NOISE_FLOOR of the level (allocator jitter, exact
 *     figures). z = G / N.
 *     LEAK when z >= LG_VERDICT_Z_LEAK and G >= LG_VERDICT_MIN_REL_GROWTH of the level;
 *     BOUNDED when z <= LG_VERDICT_Z_BOUNDED; UNDECIDED in between, or with fewer than
 *     LG_VERDICT_MIN_PERIODS whole periods in the window.
 *  3. Without any drop, the series is judged as a whole: if it hardly ever fell (falls at most
 *     LG_VERDICT_MONO_FALLS of the rises) and rose beyond its noise, it is a leak (a staircase's
 *     growth G is a count of new samples, so its noise is sqrt(P * (rises + falls)): LEAK when
 *     G / that >= LG_VERDICT_Z_MONOTONE and G >= LG_VERDICT_MIN_REL_GROWTH of the last level).
 *     Otherwise each point is its own envelope and the second half of the run is judged as in 2;
 *     with one or two drops, only if they are small against the level noise (the wander of a
 *     store whose sweeps are too small to see), else whole periods are missing: UNDECIDED.
 *     A TTL store still filling up (a run shorter than TTL + sweep) looks exactly like a leak:
 *     the verdict line says that no drop was seen.
 *  4. Fewer than LG_VERDICT_MIN_PROFILES profiles: UNDECIDED. Never BOUNDED on a series that
 *     never fell and ended higher than it began: UNDECIDED instead.
 *  UNDECIDED says how much longer a run would decide: for a growth inside the band, the time for
 *  the growth at its current slope to reach LEAK's threshold (the noise stays, the growth of a
 *  real leak grows with the window); for too few profiles, the missing ones; for too few
 *  periods, the missing drops at the period seen (with a single drop: at least the time since
 *  it, or half the fill-up before it, as sweeps rarely come slower than a TTL).
 *
 * Error rates of this statistic, measured by simulation (tests/loadgen/test_lg_verdict_sim.c,
 * table in BENCHMARKS.md): false LEAK <= 0.1% and UNDECIDED <= 2% on bounded 60-120 s runs.
 */
#ifndef LG_VERDICT_H
#define LG_VERDICT_H

#include <stddef.h>

#define LG_VERDICT_MIN_PROFILES   6     /* fewer: UNDECIDED */
#define LG_VERDICT_MIN_PERIODS    2     /* whole sweep periods in the window */
#define LG_VERDICT_DROP_SAMPLES   9.0   /* a real drop frees more than this many sample periods */
#define LG_VERDICT_DROP_LEVEL     0.01  /* ... and more than this fraction of the level */
#define LG_VERDICT_NOISE_FLOOR    0.005 /* of the level: the noise of an exact figure */
#define LG_VERDICT_Z_LEAK         3.3   /* growth / noise at or above: LEAK */
#define LG_VERDICT_Z_BOUNDED      2.2   /* growth / noise at or below: BOUNDED */
#define LG_VERDICT_Z_MONOTONE     3.0   /* a staircase's growth / its counting noise: LEAK */
#define LG_VERDICT_MONO_FALLS     0.1   /* a staircase's falls add up to at most this of rises */
#define LG_VERDICT_MIN_REL_GROWTH 0.01  /* LEAK needs growth of at least this of the level */
#define LG_VERDICT_LOAD_DOUBT     0.25  /* of the load's share of the growth: its noise */

struct lg_verdict_point {
    double t_s;           /* elapsed seconds when the profile was taken */
    double inuse_bytes;   /* total inuse_space of the profile */
    double requests;      /* requests completed by then (for bytes per request) */
    double sample_period; /* the profile's period in bytes; 0 when the figure is exact */
};

enum lg_verdict_kind { LG_VERDICT_UNDECIDED, LG_VERDICT_BOUNDED, LG_VERDICT_LEAK };

/* Why: one per line of the verdict. */
enum lg_verdict_reason {
    LG_VERDICT_FEW_PROFILES, /* UNDECIDED: fewer than LG_VERDICT_MIN_PROFILES */
    LG_VERDICT_FEW_PERIODS,  /* UNDECIDED: drops seen, too few whole periods after the first */
    LG_VERDICT_IN_BAND,      /* UNDECIDED: growth neither inside nor clearly outside the noise */
    LG_VERDICT_NEVER_FELL,   /* UNDECIDED: inside the noise, but it never fell and ended higher */
    LG_VERDICT_STAIRCASE,    /* LEAK: no drop, hardly a fall, rose beyond the noise */
    LG_VERDICT_ENVELOPE,     /* LEAK or BOUNDED: troughs and peaks judged against the noise */
};

struct lg_verdict {
    enum lg_verdict_kind kind;
    enum lg_verdict_reason reason;
    size_t n;                         /* profiles */
    size_t first, n_window;           /* the judged window: points [first, first + n_window) */
    double window_s;                  /* its time span */
    size_t drops;                     /* real drops in the whole series */
    size_t periods;                   /* whole periods in the window (drop mode) */
    double period_s;                  /* median spacing of drops; 0 without two drops */
    double trough_first, trough_last; /* the troughs' fitted line at the window's ends */
    double peak_first, peak_last;     /* the peaks' fitted line at the window's ends */
    double min_bytes, max_bytes;      /* of the window */
    double level_bytes;               /* mean of the peaks (the level the noise is taken at) */
    double sample_period;             /* median over the window */
    double noise_bytes;               /* N */
    double growth_bytes;              /* G over the window, less the load's share */
    double load_bytes;        /* the load's share: the level follows the requests per lifetime */
    double z;                 /* G / N (staircase: G / its counting noise) */
    double slope_bytes_per_s; /* G / window_s */
    double bytes_per_request; /* G / requests served in the window (0 if none) */
    double rises, falls;      /* sums over successive points of the window */
    double more_s;            /* UNDECIDED: run at least this many seconds more */
    int never_fell;           /* no point below its predecessor in the whole series */
    int by_points;            /* the envelope was every point of the run's second half */
};

/* Judge n points in time order. Always fills *out; returns out->kind. */
enum lg_verdict_kind lg_verdict_compute(const struct lg_verdict_point *pts, size_t n,
                                        struct lg_verdict *out);

const char *lg_verdict_name(enum lg_verdict_kind kind);

/* The exit status scripts and CI act on: 0 BOUNDED, 1 LEAK, 3 UNDECIDED. */
int lg_verdict_exit_status(enum lg_verdict_kind kind);

/* The reason in words, without the kind and without the "grew most" list: e.g. "in-use grows
 * +1.97 MiB/s over 50.0 s ...". */
void lg_verdict_reason_text(char *buf, size_t len, const struct lg_verdict *v);

#endif
