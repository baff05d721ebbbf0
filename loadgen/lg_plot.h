/*
 * lg_plot: `loadgen plot -o FILE.png|FILE.svg DIR...`. For each run directory: in-use MiB over
 * elapsed seconds from DIR/profiles.csv (one point per heap profile) as a solid line, and RSS
 * from DIR/timeline.csv (when the server had /debug/memstats) as a dashed line of the same
 * colour; the label is report.json's "label", else the directory's name. gnuplot draws it: the
 * data go inline as datablocks, so gnuplot never parses our CSV. pngcairo when gnuplot has it,
 * else libgd's png; svg for .svg.
 */
#ifndef LG_PLOT_H
#define LG_PLOT_H

/* The `plot` subcommand; argv[0] is "plot". Returns the exit status (0, 1 runtime, 2 usage). */
int lg_plot_main(int argc, char **argv);

/* Read one numeric column pair (by header name) of a CSV file, skipping rows where either is
 * empty. Returns the number of rows (>= 0) with *xs and *ys malloc'd, or -1 when the file cannot be
 * read or lacks a column. Exposed for tests. */
long lg_csv_columns(const char *path, const char *xname, const char *yname, double **xs,
                    double **ys);

#endif
