/*
 * fuzz_verdict_csv: `loadgen verdict DIR` on a hostile DIR/profiles.csv (columns found by header
 * name; numbers, blank lines, ragged rows, a `file` column naming profiles). The profiles the
 * `file` column names are read from fuzz/data (two real heap profiles, heap-0000.pb.gz and
 * heap-0001.pb.gz), so the "grew most" path runs too. The verdict line goes to stdout, which
 * the target sends to /dev/null; messages for bad input go to stderr (run libFuzzer with
 * -close_fd_mask=2 to keep its own output readable).
 */
#include <stdio.h>
#include <unistd.h>

#include "fuzz.h"
#include "lg_cmd.h"

#ifndef FUZZ_DATA_DIR
#error "FUZZ_DATA_DIR: the folder of the profiles a fuzzed profiles.csv may name"
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (freopen("/dev/null", "w", stdout) == NULL)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; /* fmemopen needs a byte; an empty file is a unit test's case */
    char *copy = malloc(size);
    if (copy == NULL)
        abort();
    memcpy(copy, data, size);
    FILE *f = fmemopen(copy, size, "r");
    if (f == NULL)
        abort();
    int status = lg_verdict_judge_csv(f, "profiles.csv", FUZZ_DATA_DIR);
    FUZZ_CHECK(status == 0 || status == 1 || status == 2 || status == 3);
    fclose(f);
    free(copy);
    return 0;
}
