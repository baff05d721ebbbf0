/*
 * lg_cmd: loadgen's subcommands, one file each (main.c only dispatches). Each takes the
 * subcommand's own argv (argv[0] is its name, or "loadgen" for run) and returns the exit status.
 *
 *   lg_cmd_run.c      loadgen --url URL ...      load, profiles, report, verdict
 *   lg_cmd_diff.c     loadgen diff BASE NEW      what grew between two profiles
 *   lg_plot.c         loadgen plot -o FILE DIR   in-use bytes over time (lg_plot_main)
 *   lg_cmd_verdict.c  loadgen verdict DIR...     re-judge saved runs
 */
#ifndef LG_CMD_H
#define LG_CMD_H

#include <stdio.h>

int lg_cmd_run(int argc, char **argv);
int lg_cmd_diff(int argc, char **argv);
int lg_cmd_verdict(int argc, char **argv);

/* One run's verdict from an open profiles.csv (csv_name names it in messages; the profiles its
 * `file` column names are read from dir): prints "csv... DIR: verdict" as `loadgen verdict`
 * does and returns 0 BOUNDED, 1 LEAK, 3 UNDECIDED or 2 bad input. lg_cmd_verdict calls it for
 * each DIR; the fuzz target (fuzz/fuzz_verdict_csv.c) feeds it memory. */
int lg_verdict_judge_csv(FILE *csv, const char *csv_name, const char *dir);

#endif
