/*
 * lg_cmd_verdict: `loadgen verdict DIR...` re-judges saved runs offline. For each DIR it reads
 * DIR/profiles.csv (columns found by header name: elapsed_s and inuse_bytes are required;
 * requests, sample_period and file are used when present), runs the same statistic as a live
 * run, and prints "DIR: " and the same verdict line. When the profiles named in the `file`
 * column are in DIR, the line names the function that grew most between the first and the last;
 * when they are absent, the line simply omits it. A file from before the `sample_period` column
 * takes the period from its first profile file; without either the noise cannot be known and
 * the file is bad input.
 *
 * Exit status: 2 if any DIR was bad input (a message names the file and the line); else 1 if any
 * was LEAK, 3 if any was UNDECIDED, 0 when all were BOUNDED.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg_cmd.h"
#include "lg_diff.h"
#include "lg_report.h"
#include "lg_verdict.h"

#define LG_CSV_MAX_COLUMNS 64

enum { COL_T, COL_INUSE, COL_REQ, COL_PERIOD, COL_FILE, NCOLS };
static const char *const col_names[NCOLS] = {"elapsed_s", "inuse_bytes", "requests",
                                             "sample_period", "file"};

struct saved_run {
    struct lg_verdict_point *pts;
    char **files; /* per point, NULL without a file column */
    size_t n, cap;
    bool have_period;
};

static void saved_run_free(struct saved_run *r)
{
    for (size_t i = 0; r->files && i < r->n; i++)
        free(r->files[i]);
    free(r->files);
    free(r->pts);
}

/* Split line in place at commas (no quoting: loadgen never writes a comma inside a field). */
static size_t split(char *line, char **fields, size_t max)
{
    size_t k = 0;
    line[strcspn(line, "\r\n")] = '\0';
    for (char *p = line;;) {
        char *comma = strchr(p, ',');
        if (k < max)
            fields[k] = p;
        k++;
        if (comma == NULL)
            return k;
        *comma = '\0';
        p = comma + 1;
    }
}

static int parse_number(const char *text, double *out)
{
    char *end;
    errno = 0;
    if (text[0] == '\0')
        return -1;
    double v = strtod(text, &end);
    if (*end != '\0' || errno != 0 || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* Read profiles.csv from f (named path in messages) into r. 0, or -1 with a message on stderr
 * naming file and line. */
static int read_profiles(FILE *f, const char *path, struct saved_run *r)
{
    char *line = NULL, *fields[LG_CSV_MAX_COLUMNS];
    size_t cap = 0, lineno = 0, ncols = 0;
    int col[NCOLS];
    int rc = -1;
    if (getline(&line, &cap, f) < 0) {
        fprintf(stderr, "loadgen verdict: %s:1: empty file (expected a header row: %s,%s,...)\n",
                path, col_names[COL_T], col_names[COL_INUSE]);
        goto out;
    }
    lineno = 1;
    ncols = split(line, fields, LG_CSV_MAX_COLUMNS);
    if (ncols > LG_CSV_MAX_COLUMNS) {
        fprintf(stderr, "loadgen verdict: %s:1: more than %d columns\n", path, LG_CSV_MAX_COLUMNS);
        goto out;
    }
    for (int c = 0; c < NCOLS; c++) {
        col[c] = -1;
        for (size_t k = 0; k < ncols; k++)
            if (strcmp(fields[k], col_names[c]) == 0)
                col[c] = (int)k;
    }
    for (int c = COL_T; c <= COL_INUSE; c++)
        if (col[c] < 0) {
            fprintf(stderr, "loadgen verdict: %s:1: no \"%s\" column in the header\n", path,
                    col_names[c]);
            goto out;
        }
    r->have_period = col[COL_PERIOD] >= 0;
    for (ssize_t len; (len = getline(&line, &cap, f)) >= 0;) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue; /* a blank line, e.g. at the end */
        size_t k = split(line, fields, LG_CSV_MAX_COLUMNS);
        if (k != ncols) {
            fprintf(stderr, "loadgen verdict: %s:%zu: %zu fields, the header has %zu\n", path,
                    lineno, k, ncols);
            goto out;
        }
        if (r->n == r->cap) {
            size_t bigger = r->cap ? r->cap * 2 : 64;
            struct lg_verdict_point *p = realloc(r->pts, bigger * sizeof(*p));
            if (p != NULL)
                r->pts = p;
            char **files = realloc(r->files, bigger * sizeof(*files));
            if (files != NULL)
                r->files = files;
            if (p == NULL || files == NULL) {
                fprintf(stderr, "loadgen verdict: %s: out of memory\n", path);
                goto out;
            }
            r->cap = bigger;
        }
        struct lg_verdict_point *pt = &r->pts[r->n];
        double *dest[NCOLS] = {&pt->t_s, &pt->inuse_bytes, &pt->requests, &pt->sample_period, NULL};
        *pt = (struct lg_verdict_point){0, 0, 0, 0};
        r->files[r->n] = NULL;
        for (int c = COL_T; c <= COL_PERIOD; c++) {
            if (col[c] < 0)
                continue;
            if (parse_number(fields[col[c]], dest[c]) != 0 || (c != COL_T && *dest[c] < 0)) {
                fprintf(stderr, "loadgen verdict: %s:%zu: %s \"%s\" is not a %snumber\n", path,
                        lineno, col_names[c], fields[col[c]], c == COL_T ? "" : "non-negative ");
                goto out;
            }
        }
        if (r->n > 0 && pt->t_s < r->pts[r->n - 1].t_s) {
            fprintf(stderr, "loadgen verdict: %s:%zu: elapsed_s %s goes back in time\n", path,
                    lineno, fields[col[COL_T]]);
            goto out;
        }
        if (col[COL_FILE] >= 0 && fields[col[COL_FILE]][0] != '\0' &&
            (r->files[r->n] = strdup(fields[col[COL_FILE]])) == NULL) {
            fprintf(stderr, "loadgen verdict: %s: out of memory\n", path);
            goto out;
        }
        r->n++;
    }
    if (ferror(f)) {
        fprintf(stderr, "loadgen verdict: %s:%zu: read error: %s\n", path, lineno + 1,
                strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(line);
    return rc;
}

/* The profile named on row i, loaded; NULL when absent or unreadable. */
static pcodec_profile *load_row_profile(const char *dir, const struct saved_run *r, size_t i)
{
    if (r->files == NULL || i >= r->n || r->files[i] == NULL || strchr(r->files[i], '/') != NULL)
        return NULL; /* only files inside DIR, as loadgen writes them */
    char path[4096], err[256];
    snprintf(path, sizeof(path), "%s/%s", dir, r->files[i]);
    return pcodec_load_file(path, err, sizeof(err));
}

int lg_verdict_judge_csv(FILE *csv, const char *path, const char *dir)
{
    struct saved_run r = {0};
    int status = 2;
    pcodec_profile *first = NULL, *last = NULL;
    if (read_profiles(csv, path, &r) != 0)
        goto out;
    if (r.n > 0)
        first = load_row_profile(dir, &r, 0);
    if (!r.have_period) {
        if (first == NULL) {
            fprintf(stderr,
                    "loadgen verdict: %s:1: no sample_period column, and the first profile "
                    "file is not in %s: the sampling noise cannot be known\n",
                    path, dir);
            goto out;
        }
        double period = first->period > 1 ? (double)first->period : 0;
        for (size_t i = 0; i < r.n; i++)
            r.pts[i].sample_period = period;
    }
    struct lg_verdict v;
    lg_verdict_compute(r.pts, r.n, &v);
    struct lg_diff growth;
    bool have_growth = false;
    if (r.n >= 2 && first != NULL && (last = load_row_profile(dir, &r, r.n - 1)) != NULL) {
        char err[256];
        have_growth = lg_diff_compute(first, last, &growth, err, sizeof(err)) == 0;
    }
    char line[LG_VERDICT_LINE_MAX];
    lg_verdict_format(line, sizeof(line), &v, have_growth ? &growth : NULL);
    printf("%s: %s\n", dir, line);
    if (have_growth)
        lg_diff_free(&growth);
    status = lg_verdict_exit_status(v.kind);
out:
    pcodec_free(first);
    pcodec_free(last);
    saved_run_free(&r);
    return status;
}

/* Judge one DIR; returns the verdict's exit status, or 2 on bad input. */
static int judge_dir(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/profiles.csv", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "loadgen verdict: cannot read %s: %s\n", path, strerror(errno));
        return 2;
    }
    int status = lg_verdict_judge_csv(f, path, dir);
    fclose(f);
    return status;
}

int lg_cmd_verdict(int argc, char **argv)
{
    static const char usage[] =
        "usage: loadgen verdict DIR...\n"
        "  re-judges runs saved by loadgen --out DIR from DIR/profiles.csv: one verdict line\n"
        "  per DIR. Exit 0 all BOUNDED, 1 a LEAK, 3 an UNDECIDED (and no LEAK), 2 bad input.\n";
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "loadgen verdict: need at least one run directory\n%s", usage);
        return 2;
    }
    bool bad = false, leak = false, undecided = false;
    for (int i = 1; i < argc; i++) {
        int st = judge_dir(argv[i]);
        bad |= st == 2;
        leak |= st == 1;
        undecided |= st == 3;
    }
    fflush(stdout);
    return bad ? 2 : leak ? 1 : undecided ? 3 : 0;
}
