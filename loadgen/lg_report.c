/*
 * lg_report: see lg_report.h. Latencies are stored in ns and shown in ms with three decimals
 * (microsecond resolution, which is what a loopback run needs).
 */
#include "lg_report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lg_json.h"

struct lg_timeline {
    FILE *timeline, *profiles;
    bool failed;
};

static FILE *open_in(const char *dir, const char *name, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return f;
}

struct lg_timeline *lg_timeline_open(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create --out %s: %s", dir, strerror(errno));
        return NULL;
    }
    struct lg_timeline *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->timeline = open_in(dir, "timeline.csv", err, errlen);
    if (t->timeline == NULL)
        goto err;
    t->profiles = open_in(dir, "profiles.csv", err, errlen);
    if (t->profiles == NULL)
        goto err;
    fprintf(t->timeline, "elapsed_s,requests,errors,rps,p50_ms,p90_ms,p99_ms,max_ms,backlog,"
                         "inuse_bytes,inuse_objects,rss_bytes,glibc_inuse_bytes\n");
    fprintf(t->profiles, "seq,elapsed_s,requests,inuse_bytes,inuse_objects,sample_period,file\n");
    if (fflush(t->timeline) != 0 || fflush(t->profiles) != 0) {
        snprintf(err, errlen, "cannot write to --out %s: %s", dir, strerror(errno));
        goto err;
    }
    return t;
err:
    if (t->timeline)
        fclose(t->timeline);
    if (t->profiles)
        fclose(t->profiles);
    free(t);
    return NULL;
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

int lg_timeline_row(struct lg_timeline *t, const struct lg_timeline_row *r)
{
    FILE *f = t->timeline;
    fprintf(f, "%.3f,%" PRIu64 ",%" PRIu64 ",%.1f,", r->elapsed_s, r->requests, r->errors, r->rps);
    if (r->interval && r->interval->total)
        fprintf(f, "%.3f,%.3f,%.3f,%.3f,", ms(lg_hist_percentile(r->interval, 50)),
                ms(lg_hist_percentile(r->interval, 90)), ms(lg_hist_percentile(r->interval, 99)),
                ms(r->interval->max_ns));
    else
        fputs(",,,,", f);
    fprintf(f, "%" PRIu64 ",", r->backlog);
    if (r->have_inuse)
        fprintf(f, "%" PRId64 ",%" PRId64 ",", r->inuse_bytes, r->inuse_objects);
    else
        fputs(",,", f);
    if (r->memstats && r->memstats->have_rss)
        fprintf(f, "%.0f", r->memstats->rss_bytes);
    fputc(',', f);
    if (r->memstats && r->memstats->have_glibc)
        fprintf(f, "%.0f", r->memstats->glibc_bytes);
    fputc('\n', f);
    if (fflush(f) != 0 || ferror(f))
        t->failed = true;
    return t->failed ? -1 : 0;
}

int lg_timeline_profile(struct lg_timeline *t, const struct lg_profile_point *pt)
{
    fprintf(t->profiles,
            "%u,%.3f,%" PRIu64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",heap-%04u.pb.gz\n", pt->seq,
            pt->t_s, pt->requests, pt->inuse_bytes, pt->inuse_objects, pt->sample_period, pt->seq);
    if (fflush(t->profiles) != 0 || ferror(t->profiles))
        t->failed = true;
    return t->failed ? -1 : 0;
}

int lg_timeline_close(struct lg_timeline *t)
{
    if (t == NULL)
        return 0;
    bool failed = t->failed;
    failed |= fclose(t->timeline) != 0;
    failed |= fclose(t->profiles) != 0;
    free(t);
    return failed ? -1 : 0;
}

static double throughput(const struct lg_summary *s)
{
    return s->duration_s > 0 ? (double)s->counts.requests / s->duration_s : 0;
}

/* Up to LG_SUMMARY_TOP_GROWING functions that grew, "name (file:line) +X MiB, ...". */
static void top_growing(char *buf, size_t len, const struct lg_diff *d)
{
    size_t used = 0, named = 0;
    buf[0] = '\0';
    for (size_t i = 0; d != NULL && i < d->n && named < LG_SUMMARY_TOP_GROWING; i++) {
        const struct lg_diff_entry *e = &d->entries[i];
        if (e->flat_bytes <= 0)
            continue;
        char bytes[32];
        lg_format_bytes(bytes, sizeof(bytes), (double)e->flat_bytes, 1);
        int n;
        if (e->file[0])
            n = snprintf(buf + used, len - used, "%s%s (%s:%" PRId64 ") %s", named ? ", " : "",
                         e->function, e->file, e->line, bytes);
        else
            n = snprintf(buf + used, len - used, "%s%s %s", named ? ", " : "", e->function, bytes);
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
        named++;
    }
}

void lg_verdict_format(char *buf, size_t len, const struct lg_verdict *v,
                       const struct lg_diff *growth)
{
    char why[768], grew[512];
    lg_verdict_reason_text(why, sizeof(why), v);
    top_growing(grew, sizeof(grew), growth);
    if (v->kind == LG_VERDICT_LEAK && growth != NULL)
        snprintf(buf, len, "verdict: LEAK %s; grew most: %s", why,
                 grew[0] ? grew : "(no function grew between the first and last profile)");
    else
        snprintf(buf, len, "verdict: %s %s", lg_verdict_name(v->kind), why);
}

void lg_verdict_line(char *buf, size_t len, const struct lg_summary *s)
{
    if (!s->profiling) {
        snprintf(buf, len,
                 "verdict: UNDECIDED no heap profiles to judge (give --profile-url); run again "
                 "with profiles");
        return;
    }
    lg_verdict_format(buf, len, s->verdict, s->growth);
}

void lg_summary_print(FILE *f, const struct lg_summary *s)
{
    const struct lg_hist *h = s->latency;
    fprintf(f, "loadgen: %s %s  label %s\n", s->method, s->url, s->label);
    if (s->rate_per_s)
        fprintf(f, "  %.2f s, %u connections, %u threads, rate %" PRIu64 " req/s (open loop)\n",
                s->duration_s, s->connections, s->threads, s->rate_per_s);
    else
        fprintf(f, "  %.2f s, %u connections, %u threads, rate max (closed loop)\n", s->duration_s,
                s->connections, s->threads);
    if (s->stopped_by)
        fprintf(f, "  stopped early: %s\n", s->stopped_by);
    fprintf(f, "  requests %" PRIu64 " (%.1f req/s", s->counts.requests, throughput(s));
    if (s->rate_per_s)
        fprintf(f, ", %.1f%% of the rate asked", 100.0 * throughput(s) / (double)s->rate_per_s);
    fprintf(f, "), errors %" PRIu64 "\n", s->counts.errors);
    fprintf(f, "  latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (mean %.3f)\n",
            ms(lg_hist_percentile(h, 50)), ms(lg_hist_percentile(h, 90)),
            ms(lg_hist_percentile(h, 99)), ms(lg_hist_percentile(h, 99.9)), ms(h->max_ns),
            lg_hist_mean(h) / 1e6);
    fprintf(f, "  errors:");
    for (int k = 0; k < LG_ERR_KINDS; k++)
        fprintf(f, " %s %" PRIu64, lg_err_names[k], s->counts.error[k]);
    fprintf(f, "; reconnects %" PRIu64 ", unfinished %" PRIu64 ", unsent %" PRIu64 "\n",
            s->counts.reconnects, s->counts.unfinished, s->counts.unsent);
    if (s->profiling) {
        fprintf(f, "  heap profiles: %zu", s->npoints);
        if (s->npoints > 0) {
            char a[32], b[32];
            lg_format_bytes(a, sizeof(a), (double)s->points[0].inuse_bytes, 0);
            lg_format_bytes(b, sizeof(b), (double)s->points[s->npoints - 1].inuse_bytes, 0);
            fprintf(f, ", in-use %s -> %s", a, b);
            if (s->out_dir)
                fprintf(f, ", saved in %s/heap-NNNN.pb.gz", s->out_dir);
        }
        if (s->profile_failures || s->profile_skipped)
            fprintf(f, " (%u failed, %u skipped)", s->profile_failures, s->profile_skipped);
        fputc('\n', f);
    }
    if (s->memstats && s->memstats->have_rss) {
        char rss[32];
        lg_format_bytes(rss, sizeof(rss), s->memstats->rss_bytes, 0);
        fprintf(f, "  rss %s", rss);
        if (s->memstats->have_glibc) {
            char g[32];
            lg_format_bytes(g, sizeof(g), s->memstats->glibc_bytes, 0);
            fprintf(f, ", glibc in use %s", g);
        }
        fputc('\n', f);
    }
    if (s->verdict && s->verdict->kind == LG_VERDICT_LEAK && s->growth && s->growth->n > 0) {
        fprintf(f, "  grew most between the first and the last profile (loadgen diff):\n");
        lg_diff_print(f, s->growth, 5);
    }
    char line[LG_VERDICT_LINE_MAX];
    lg_verdict_line(line, sizeof(line), s);
    fprintf(f, "%s\n", line);
}

static void json_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.6g", v);
    else
        fputs("null", f);
}

static const char *reason_name(enum lg_verdict_reason r)
{
    switch (r) {
    case LG_VERDICT_FEW_PROFILES:
        return "few_profiles";
    case LG_VERDICT_FEW_PERIODS:
        return "few_periods";
    case LG_VERDICT_IN_BAND:
        return "in_band";
    case LG_VERDICT_NEVER_FELL:
        return "never_fell";
    case LG_VERDICT_STAIRCASE:
        return "staircase";
    default:
        return "envelope";
    }
}

void lg_verdict_write_json_fields(FILE *f, const struct lg_verdict *v)
{
    if (v == NULL || v->reason == LG_VERDICT_FEW_PROFILES) {
        fputs(",\n  \"inuse_slope_bytes_per_s\": null,\n  \"inuse_bytes_per_request\": null", f);
        fputs(",\n  \"run_more_s\": ", f);
        json_number(f, v ? v->more_s : NAN);
        if (v != NULL)
            fprintf(f, ",\n  \"verdict_stats\": {\"reason\": \"%s\", \"profiles\": %zu}",
                    reason_name(v->reason), v->n);
        return;
    }
    fputs(",\n  \"inuse_slope_bytes_per_s\": ", f);
    json_number(f, v->slope_bytes_per_s);
    fputs(",\n  \"inuse_bytes_per_request\": ", f);
    json_number(f, v->bytes_per_request);
    fputs(",\n  \"run_more_s\": ", f);
    json_number(f, v->kind == LG_VERDICT_UNDECIDED ? v->more_s : 0);
    fprintf(f, ",\n  \"verdict_stats\": {\"reason\": \"%s\", \"profiles\": %zu",
            reason_name(v->reason), v->n);
    fprintf(f, ", \"envelope\": \"%s\"",
            v->reason == LG_VERDICT_STAIRCASE ? "staircase"
            : v->by_points                    ? "points"
                                              : "periods");
    fprintf(f, ", \"window_points\": %zu, \"window_s\": ", v->n_window);
    json_number(f, v->window_s);
    fprintf(f, ", \"drops\": %zu, \"periods\": %zu, \"period_s\": ", v->drops, v->periods);
    json_number(f, v->period_s);
    fputs(", \"sample_period\": ", f);
    json_number(f, v->sample_period);
    fputs(", \"growth_bytes\": ", f);
    json_number(f, v->growth_bytes);
    fputs(", \"load_bytes\": ", f);
    json_number(f, v->load_bytes);
    fputs(", \"noise_bytes\": ", f);
    json_number(f, v->noise_bytes);
    fputs(", \"z\": ", f);
    json_number(f, v->z);
    fputs(", \"z_leak\": ", f);
    json_number(f, v->reason == LG_VERDICT_STAIRCASE ? LG_VERDICT_Z_MONOTONE : LG_VERDICT_Z_LEAK);
    fputs(", \"z_bounded\": ", f);
    json_number(f, LG_VERDICT_Z_BOUNDED);
    fputs(", \"troughs\": [", f);
    json_number(f, v->trough_first);
    fputs(", ", f);
    json_number(f, v->trough_last);
    fputs("], \"peaks\": [", f);
    json_number(f, v->peak_first);
    fputs(", ", f);
    json_number(f, v->peak_last);
    fprintf(f, "], \"min_bytes\": %.0f, \"max_bytes\": %.0f, \"never_fell\": %s}", v->min_bytes,
            v->max_bytes, v->never_fell ? "true" : "false");
}

int lg_summary_write_json(const char *path, const struct lg_summary *s)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    const struct lg_hist *h = s->latency;
    const struct lg_verdict *v = s->verdict;
    fputs("{\n  \"label\": ", f);
    lg_json_write_string(f, s->label);
    fputs(",\n  \"url\": ", f);
    lg_json_write_string(f, s->url);
    fputs(",\n  \"method\": ", f);
    lg_json_write_string(f, s->method);
    fputs(",\n  \"rate\": ", f);
    if (s->rate_per_s)
        fprintf(f, "%" PRIu64, s->rate_per_s);
    else
        fputs("\"max\"", f);
    fprintf(f, ",\n  \"connections\": %u,\n  \"threads\": %u", s->connections, s->threads);
    fprintf(f, ",\n  \"duration_s\": %.3f", s->duration_s);
    fprintf(f, ",\n  \"requests\": %" PRIu64 ",\n  \"errors\": %" PRIu64, s->counts.requests,
            s->counts.errors);
    fputs(",\n  \"errors_by_kind\": {", f);
    for (int k = 0; k < LG_ERR_KINDS; k++)
        fprintf(f, "%s\"%s\": %" PRIu64, k ? ", " : "", lg_err_names[k], s->counts.error[k]);
    fprintf(f,
            "},\n  \"reconnects\": %" PRIu64 ",\n  \"unfinished\": %" PRIu64
            ",\n  \"unsent\": %" PRIu64,
            s->counts.reconnects, s->counts.unfinished, s->counts.unsent);
    fprintf(f, ",\n  \"throughput_rps\": %.1f", throughput(s));
    fprintf(f,
            ",\n  \"latency_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"p999\": %.3f, "
            "\"max\": %.3f, \"mean\": %.3f}",
            ms(lg_hist_percentile(h, 50)), ms(lg_hist_percentile(h, 90)),
            ms(lg_hist_percentile(h, 99)), ms(lg_hist_percentile(h, 99.9)), ms(h->max_ns),
            lg_hist_mean(h) / 1e6);
    fprintf(f, ",\n  \"profiles\": %zu", s->npoints);
    fputs(",\n  \"verdict\": ", f);
    lg_json_write_string(f, lg_verdict_name(s->profiling ? v->kind : LG_VERDICT_UNDECIDED));
    char line[LG_VERDICT_LINE_MAX];
    lg_verdict_line(line, sizeof(line), s);
    fputs(",\n  \"verdict_line\": ", f);
    lg_json_write_string(f, line);
    lg_verdict_write_json_fields(f, s->profiling ? v : NULL);
    fputs(",\n  \"top_growing\": [", f);
    size_t named = 0;
    for (size_t i = 0; s->growth && i < s->growth->n && named < 10; i++) {
        const struct lg_diff_entry *e = &s->growth->entries[i];
        if (e->flat_bytes <= 0)
            continue;
        fputs(named++ ? ",\n    {\"function\": " : "\n    {\"function\": ", f);
        lg_json_write_string(f, e->function);
        fputs(", \"file\": ", f);
        lg_json_write_string(f, e->file);
        fprintf(f, ", \"line\": %" PRId64 ", \"bytes\": %" PRId64 ", \"objects\": %" PRId64 "}",
                e->line, e->flat_bytes, e->flat_objects);
    }
    fputs(named ? "\n  ]" : "]", f);
    if (s->stopped_by) {
        fputs(",\n  \"stopped_by\": ", f);
        lg_json_write_string(f, s->stopped_by);
    }
    fputs("\n}\n", f);
    bool failed = ferror(f) != 0;
    failed |= fclose(f) != 0;
    return failed ? -1 : 0;
}
