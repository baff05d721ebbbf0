/*
 * lg_plot: see lg_plot.h. The CSV reader understands what lg_report writes (a header row, no
 * quoting, empty fields for unknown values) and nothing more.
 */
#include "lg_plot.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lg_json.h"

#define LG_PLOT_MIB (1024.0 * 1024.0)

static int column_index(char *header, const char *name)
{
    int i = 0;
    for (char *save = NULL, *tok = strtok_r(header, ",\r\n", &save); tok;
         tok = strtok_r(NULL, ",\r\n", &save), i++)
        if (strcmp(tok, name) == 0)
            return i;
    return -1;
}

/* The field'th comma-separated field of line as a number; -1 when empty or not a number. */
static int field_number(const char *line, int field, double *out)
{
    const char *p = line;
    for (int i = 0; i < field; i++) {
        p = strchr(p, ',');
        if (p == NULL)
            return -1;
        p++;
    }
    if (*p == ',' || *p == '\n' || *p == '\r' || *p == '\0')
        return -1;
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno != 0 || (*end != ',' && *end != '\n' && *end != '\r' && *end != '\0'))
        return -1;
    *out = v;
    return 0;
}

long lg_csv_columns(const char *path, const char *xname, const char *yname, double **xs,
                    double **ys)
{
    *xs = *ys = NULL;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    long n = -1;
    size_t room = 0;
    if (getline(&line, &cap, f) < 0)
        goto out;
    char *h1 = strdup(line), *h2 = strdup(line);
    int xi = h1 ? column_index(h1, xname) : -1;
    int yi = h2 ? column_index(h2, yname) : -1;
    free(h1);
    free(h2);
    if (xi < 0 || yi < 0)
        goto out;
    n = 0;
    while (getline(&line, &cap, f) >= 0) {
        double x, y;
        if (field_number(line, xi, &x) != 0 || field_number(line, yi, &y) != 0)
            continue;
        if ((size_t)n == room) {
            room = room ? room * 2 : 256;
            double *bx = realloc(*xs, room * sizeof(double));
            if (bx != NULL)
                *xs = bx;
            double *by = realloc(*ys, room * sizeof(double));
            if (by != NULL)
                *ys = by;
            if (bx == NULL || by == NULL) {
                n = -1;
                break;
            }
        }
        (*xs)[n] = x;
        (*ys)[n] = y;
        n++;
    }
out:
    if (n < 0) {
        free(*xs);
        free(*ys);
        *xs = *ys = NULL;
    }
    free(line);
    fclose(f);
    return n;
}

static int find_in_path(const char *prog, char *out, size_t len)
{
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t dl = colon ? (size_t)(colon - path) : strlen(path);
        snprintf(out, len, "%.*s/%s", (int)dl, dl ? path : ".", prog);
        if (access(out, X_OK) == 0)
            return 0;
        path += dl + (colon != NULL);
    }
    return -1;
}

/* A gnuplot single-quoted string: ' doubles. */
static void gp_string(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', f);
        if (*s != '\n')
            fputc(*s, f);
    }
    fputc('\'', f);
}

struct run {
    char label[256];
    double *t, *inuse, *rt, *rss;
    long n_inuse, n_rss;
};

static void run_label(const char *dir, char *out, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/report.json", dir);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        char buf[1 << 16];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        if (lg_json_string(buf, n, "label", out, len) == 0 && out[0] != '\0')
            return;
    }
    char *copy = strdup(dir);
    if (copy != NULL) {
        /* basename of "runs/leaky/" is "leaky": trailing slashes are not names. */
        size_t l = strlen(copy);
        while (l > 1 && copy[l - 1] == '/')
            copy[--l] = '\0';
        snprintf(out, len, "%s", basename(copy));
        free(copy);
    } else {
        snprintf(out, len, "%s", dir);
    }
}

/* Run gnuplot with its stdin a pipe (returned as *gp) and its stdout out_fd; its stderr is ours,
 * so its messages reach the user. 0, or -1 with errno. */
static int spawn_gnuplot(const char *gnuplot, int out_fd, FILE **gp, pid_t *pid)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    pid_t child = fork();
    if (child < 0) {
        int saved = errno;
        close(fds[0]);
        close(fds[1]);
        errno = saved;
        return -1;
    }
    if (child == 0) {
        /* dup2 clears close-on-exec on the copies; the originals close at exec. */
        if (dup2(fds[0], STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0)
            _exit(127);
        execlp(gnuplot, gnuplot, (char *)NULL);
        fprintf(stderr, "loadgen plot: cannot run %s: %s\n", gnuplot, strerror(errno));
        _exit(127);
    }
    close(fds[0]);
    *gp = fdopen(fds[1], "w");
    if (*gp == NULL) {
        int saved = errno;
        close(fds[1]);
        kill(child, SIGTERM);
        waitpid(child, NULL, 0);
        errno = saved;
        return -1;
    }
    *pid = child;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: loadgen plot -o FILE.png|FILE.svg [--title TEXT] DIR...\n"
               "  draws in-use MiB (from each DIR/profiles.csv) and RSS (dashed, from\n"
               "  DIR/timeline.csv) over elapsed seconds, one line per run, with gnuplot\n");
}

int lg_plot_main(int argc, char **argv)
{
    static const struct option options[] = {{"output", required_argument, NULL, 'o'},
                                            {"title", required_argument, NULL, 't'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *output = NULL, *title = "Heap in use over time";
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "o:t:h", options, NULL)) != -1) {
        switch (opt) {
        case 'o':
            output = optarg;
            break;
        case 't':
            title = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (output == NULL || optind >= argc) {
        fprintf(stderr, "loadgen plot: %s\n",
                output == NULL ? "-o FILE.png|FILE.svg is required" : "no run DIR given");
        usage(stderr);
        return 2;
    }
    size_t olen = strlen(output);
    int svg = olen > 4 && strcmp(output + olen - 4, ".svg") == 0;
    int png = olen > 4 && strcmp(output + olen - 4, ".png") == 0;
    if (!svg && !png) {
        fprintf(stderr, "loadgen plot: -o %s: the file name must end in .png or .svg\n", output);
        return 2;
    }
    char gnuplot[4096];
    const char *env = getenv("GNUPLOT");
    if (env != NULL && env[0] != '\0')
        snprintf(gnuplot, sizeof(gnuplot), "%s", env);
    else if (find_in_path("gnuplot", gnuplot, sizeof(gnuplot)) != 0) {
        fprintf(stderr, "loadgen plot: gnuplot is not installed (or not on PATH); install it, "
                        "e.g. apt-get install gnuplot-nox\n");
        return 1;
    }

    int nruns = argc - optind, rc = 1, drawn = 0, out_fd = -1;
    bool created = false;
    pid_t gp_pid = -1;
    struct run *runs = calloc((size_t)nruns, sizeof(*runs));
    if (runs == NULL) {
        fprintf(stderr, "loadgen plot: out of memory\n");
        return 1;
    }
    for (int i = 0; i < nruns; i++) {
        const char *dir = argv[optind + i];
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "loadgen plot: %s: not a run directory\n", dir);
            goto out;
        }
        char path[4096];
        run_label(dir, runs[i].label, sizeof(runs[i].label));
        snprintf(path, sizeof(path), "%s/profiles.csv", dir);
        runs[i].n_inuse =
            lg_csv_columns(path, "elapsed_s", "inuse_bytes", &runs[i].t, &runs[i].inuse);
        snprintf(path, sizeof(path), "%s/timeline.csv", dir);
        runs[i].n_rss = lg_csv_columns(path, "elapsed_s", "rss_bytes", &runs[i].rt, &runs[i].rss);
        if (runs[i].n_inuse <= 0 && runs[i].n_rss <= 0)
            fprintf(stderr, "loadgen plot: %s: no in-use or RSS data (was --profile-url given?)\n",
                    dir);
        else
            drawn++;
    }
    if (drawn == 0) {
        fprintf(stderr, "loadgen plot: nothing to draw\n");
        goto out;
    }

    /* The output is opened here, as a shell's redirection would open it, and becomes gnuplot's
     * stdout: an unwritable FILE is refused with its reason before gnuplot runs, and the plot
     * can never reach loadgen's own stdout (gnuplot keeps drawing to its stdout when its `set
     * output` fails: the PNG bytes used to land on the terminal). */
    out_fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (out_fd < 0) {
        fprintf(stderr, "loadgen plot: cannot write %s: %s\n", output, strerror(errno));
        goto out;
    }
    created = true;
    FILE *gp = NULL;
    signal(SIGPIPE, SIG_IGN); /* a gnuplot that dies early: a failed write, not our death */
    if (spawn_gnuplot(gnuplot, out_fd, &gp, &gp_pid) != 0) {
        fprintf(stderr, "loadgen plot: cannot run %s: %s\n", gnuplot, strerror(errno));
        goto out;
    }
    if (svg) {
        fputs("set terminal svg size 1000,600 dynamic enhanced font 'sans,12'\n", gp);
    } else {
        fputs("if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
              "  set terminal pngcairo size 1000,600 enhanced font 'sans,11'\n"
              "} else {\n"
              "  set terminal png size 1000,600\n"
              "}\n",
              gp);
    }
    fputs("set title ", gp);
    gp_string(gp, title);
    fputs("\nset xlabel 'elapsed (s)'\nset ylabel 'memory (MiB)'\n"
          "set key top left box opaque\nset grid\nset yrange [0:*]\nset xrange [0:*]\n",
          gp);
    for (int i = 0; i < nruns; i++) {
        fprintf(gp, "$inuse%d << EOD\n", i);
        for (long j = 0; j < runs[i].n_inuse; j++)
            fprintf(gp, "%.3f %.6f\n", runs[i].t[j], runs[i].inuse[j] / LG_PLOT_MIB);
        fprintf(gp, "EOD\n$rss%d << EOD\n", i);
        for (long j = 0; j < runs[i].n_rss; j++)
            fprintf(gp, "%.3f %.6f\n", runs[i].rt[j], runs[i].rss[j] / LG_PLOT_MIB);
        fputs("EOD\n", gp);
    }
    fputs("plot ", gp);
    int terms = 0;
    for (int i = 0; i < nruns; i++) {
        char title_buf[300];
        if (runs[i].n_inuse > 0) {
            fprintf(gp, "%s$inuse%d using 1:2 with linespoints lw 2 pt 7 ps 0.5 lc %d dt 1 title ",
                    terms++ ? ", " : "", i, i + 1);
            snprintf(title_buf, sizeof(title_buf), "%s in-use", runs[i].label);
            gp_string(gp, title_buf);
        }
        if (runs[i].n_rss > 0) {
            fprintf(gp, "%s$rss%d using 1:2 with lines lw 1.5 lc %d dt 2 title ",
                    terms++ ? ", " : "", i, i + 1);
            snprintf(title_buf, sizeof(title_buf), "%s RSS", runs[i].label);
            gp_string(gp, title_buf);
        }
    }
    fputs("\nunset output\n", gp);
    int status = -1, write_failed = fclose(gp) != 0;
    while (waitpid(gp_pid, &status, 0) < 0 && errno == EINTR)
        ;
    gp_pid = -1;
    struct stat st;
    if (write_failed || status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "loadgen plot: gnuplot failed (status %d)\n",
                status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        goto out;
    }
    if (fstat(out_fd, &st) != 0 || st.st_size == 0) {
        fprintf(stderr, "loadgen plot: gnuplot wrote no %s\n", output);
        goto out;
    }
    if (close(out_fd) != 0) {
        out_fd = -1;
        fprintf(stderr, "loadgen plot: cannot write %s: %s\n", output, strerror(errno));
        goto out;
    }
    out_fd = -1;
    created = false; /* complete: keep it */
    printf("loadgen plot: wrote %s (%d run%s)\n", output, drawn, drawn == 1 ? "" : "s");
    rc = 0;
out:
    if (gp_pid > 0) { /* gnuplot could not be fed: stop it */
        kill(gp_pid, SIGTERM);
        while (waitpid(gp_pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (out_fd >= 0)
        close(out_fd);
    if (created)
        (void)unlink(output); /* no half-drawn or empty plot under the name asked for */
    for (int i = 0; i < nruns; i++) {
        free(runs[i].t);
        free(runs[i].inuse);
        free(runs[i].rt);
        free(runs[i].rss);
    }
    free(runs);
    return rc;
}
