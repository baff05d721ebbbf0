/*
 * loadgen: steady HTTP load on a service while its heap is profiled, then a verdict; and the
 * subcommands that work on saved runs. This file only dispatches (lg_cmd.h lists them).
 */
#include <stdio.h>
#include <string.h>

#include "lg_cmd.h"
#include "lg_plot.h"
#include "lc_version.h"

int main(int argc, char **argv)
{
    /* getopt words its errors "argv[0]: ...": make that the command the user typed, not the
     * path it was run by, like every other message of ours. */
    static char loadgen_name[] = "loadgen", diff_name[] = "loadgen diff",
                plot_name[] = "loadgen plot", verdict_name[] = "loadgen verdict";
    argv[0] = loadgen_name;
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf(LC_VERSION_LINE_FMT, "loadgen");
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "diff") == 0)
        argv[1] = diff_name;
    else if (argc >= 2 && strcmp(argv[1], "plot") == 0)
        argv[1] = plot_name;
    else if (argc >= 2 && strcmp(argv[1], "verdict") == 0)
        argv[1] = verdict_name;
    if (argv[1] == diff_name)
        return lg_cmd_diff(argc - 1, argv + 1);
    if (argv[1] == plot_name)
        return lg_plot_main(argc - 1, argv + 1);
    if (argv[1] == verdict_name)
        return lg_cmd_verdict(argc - 1, argv + 1);
    return lg_cmd_run(argc, argv);
}
