/*
 * loadgen: steady HTTP load on a service while its heap is profiled, then a verdict; and the
 * subcommands that work on saved runs. This file only dispatches (lg_cmd.h lists them).
 */
#include <string.h>

#include "lg_cmd.h"
#include "lg_plot.h"

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "diff") == 0)
        return lg_cmd_diff(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "plot") == 0)
        return lg_plot_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "verdict") == 0)
        return lg_cmd_verdict(argc - 1, argv + 1);
    return lg_cmd_run(argc, argv);
}
