/*
 * lg_cmd_diff: `loadgen diff [--top N] BASE.pb.gz NEW.pb.gz`, NEW - BASE by inuse_space per
 * function, as `go tool pprof -base BASE NEW -top` shows it, for machines without Go. Exit 0,
 * 1 when a file is not a readable profile, 2 usage.
 */
#include <getopt.h>
#include <stdio.h>

#include "lc_util.h"
#include "lg_cmd.h"
#include "lg_diff.h"

int lg_cmd_diff(int argc, char **argv)
{
    static const struct option options[] = {{"top", required_argument, NULL, 'n'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    uint64_t top = 10;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "n:h", options, NULL)) != -1) {
        if (opt == 'n' && lc_parse_u64(optarg, 0, 1000000, &top) == 0)
            continue;
        if (opt == 'h') {
            printf("usage: loadgen diff [--top N] BASE.pb.gz NEW.pb.gz\n"
                   "  NEW - BASE by inuse_space, per function (as go tool pprof -base BASE NEW "
                   "-top); --top 0 shows all\n");
            return 0;
        }
        fprintf(stderr, "usage: loadgen diff [--top N] BASE.pb.gz NEW.pb.gz\n");
        return 2;
    }
    if (argc - optind != 2) {
        fprintf(stderr, "loadgen diff: need two profiles, BASE and NEW\n"
                        "usage: loadgen diff [--top N] BASE.pb.gz NEW.pb.gz\n");
        return 2;
    }
    char err[700];
    int rc = 1;
    struct lg_diff d;
    pcodec_profile *base = pcodec_load_file(argv[optind], err, sizeof(err));
    pcodec_profile *newp = base ? pcodec_load_file(argv[optind + 1], err, sizeof(err)) : NULL;
    if (newp == NULL) {
        fprintf(stderr, "loadgen diff: %s\n", err);
        goto out;
    }
    if (lg_diff_compute(base, newp, &d, err, sizeof(err)) != 0) {
        fprintf(stderr, "loadgen diff: %s\n", err);
        goto out;
    }
    printf("NEW %s - BASE %s\n", argv[optind + 1], argv[optind]);
    lg_diff_print(stdout, &d, (size_t)top);
    lg_diff_free(&d);
    rc = 0;
out:
    pcodec_free(base);
    pcodec_free(newp);
    return rc;
}
