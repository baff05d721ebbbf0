/*
 * lg_report: what a run leaves behind. DIR/timeline.csv gets one row per second as the run goes
 * (flushed each time, so an interrupted run keeps its rows); DIR/profiles.csv one row per heap
 * profile; DIR/report.json and the stdout summary at the end. The summary's last line is always
 * the verdict: "verdict: LEAK ...", "verdict: BOUNDED ..." or "verdict: UNDECIDED ...", each
 * with its reason on the same line (lg_verdict.h).
 *
 * profiles.csv columns: seq, elapsed_s, requests, inuse_bytes, inuse_objects, sample_period (the
 * profile's period in bytes, 0 where the figure is exact), file (heap-NNNN.pb.gz, in DIR).
 * `loadgen verdict` reads them back by header name.
 *
 * timeline.csv columns: elapsed_s, requests (cumulative complete responses), errors
 * (cumulative), rps (this second), p50_ms, p90_ms, p99_ms, max_ms (latency of this second's
 * responses), backlog (due but unsent), inuse_bytes, inuse_objects (the latest heap profile),
 * rss_bytes, glibc_inuse_bytes (the latest memstats); unknown values are empty.
 */
#ifndef LG_REPORT_H
#define LG_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lg_diff.h"
#include "lg_hist.h"
#include "lg_load.h"
#include "lg_profiles.h"
#include "lg_verdict.h"

struct lg_timeline;

/* Create DIR (one level) if needed and open DIR/timeline.csv and DIR/profiles.csv for writing.
 * NULL with err set when DIR is not writable. */
struct lg_timeline *lg_timeline_open(const char *dir, char *err, size_t errlen);

struct lg_timeline_row {
    double elapsed_s;
    uint64_t requests, errors, backlog;
    double rps;
    const struct lg_hist *interval; /* latencies of this row's second */
    bool have_inuse;
    int64_t inuse_bytes, inuse_objects;
    const struct lg_memstats *memstats; /* may be NULL */
};

int lg_timeline_row(struct lg_timeline *t, const struct lg_timeline_row *row);
int lg_timeline_profile(struct lg_timeline *t, const struct lg_profile_point *pt);
int lg_timeline_close(struct lg_timeline *t); /* -1 when a write failed at any point */

struct lg_summary {
    const char *url, *label, *method, *out_dir;
    uint64_t rate_per_s; /* 0: max */
    unsigned connections, threads;
    double duration_s; /* measured: from time zero to the end of the load */
    struct lg_load_counts counts;
    const struct lg_hist *latency;
    const struct lg_profile_point *points;
    size_t npoints;
    unsigned profile_failures, profile_skipped;
    const struct lg_memstats *memstats; /* may be NULL */
    bool profiling;                     /* --profile-url was given */
    const struct lg_verdict *verdict;
    const struct lg_diff *growth; /* first -> last profile; NULL when fewer than two */
    const char *stopped_by;       /* NULL: ran its duration; else why it ended early */
};

#define LG_SUMMARY_TOP_GROWING 3 /* functions named on the verdict line */

void lg_summary_print(FILE *f, const struct lg_summary *s);
int lg_summary_write_json(const char *path, const struct lg_summary *s);

#define LG_VERDICT_LINE_MAX 2048

/* The verdict line (without newline) into buf. */
void lg_verdict_line(char *buf, size_t len, const struct lg_summary *s);

/* The same line from a verdict and the first -> last profile diff (NULL: no "grew most"). */
void lg_verdict_format(char *buf, size_t len, const struct lg_verdict *v,
                       const struct lg_diff *growth);

/* report.json's verdict fields (each preceded by ",\n  "); v NULL: no profiles. */
void lg_verdict_write_json_fields(FILE *f, const struct lg_verdict *v);

#endif
