/*
 * outside: a program from outside the tree, built against an installed heapprof with
 * pkg-config (shared or static). It keeps 4096 blocks of 1 KiB from keep(), asks the profiler
 * for its totals through heapprof.h and writes a heap profile to the path given.
 * Prints "inuse_bytes N" and exits 0, or says what failed and exits 1.
 * usage: outside PROFILE_PATH
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <heapprof.h>

#define BLOCKS      4096
#define BLOCK_BYTES 1024

__attribute__((noinline)) static void *keep(void)
{
    void *p = malloc(BLOCK_BYTES);
    if (p != NULL)
        memset(p, 1, BLOCK_BYTES);
    return p;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: outside PROFILE_PATH\n");
        return 1;
    }
    static void *kept[BLOCKS];
    for (int i = 0; i < BLOCKS; i++)
        if ((kept[i] = keep()) == NULL)
            return 1;
    struct hprof_totals t;
    hprof_get_totals(&t);
    if (hprof_write_profile_path(argv[1], HPROF_HEAP) != 0) {
        perror("outside: hprof_write_profile_path");
        return 1;
    }
    printf("inuse_bytes %.0f\n", t.inuse_bytes);
    for (int i = 0; i < BLOCKS; i++)
        free(kept[i]);
    return 0;
}
