/*
 * keep_at_exit: a plain program for the launcher tests (it never links the profiler). It
 * allocates BLOCKS blocks of BLOCK_BYTES in hold_block() and exits with the given status
 * without freeing them, so the profile written at exit holds BLOCKS * BLOCK_BYTES in use, all
 * under hold_block: what the launcher's summary must report.
 * usage: keep_at_exit BLOCKS EXIT_STATUS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_BYTES 1024 /* bytes per block */

__attribute__((noinline)) static void *hold_block(void)
{
    void *p = malloc(BLOCK_BYTES);
    if (p != NULL)
        memset(p, 0x5a, BLOCK_BYTES);
    return p;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: keep_at_exit BLOCKS EXIT_STATUS\n");
        return 2;
    }
    long blocks = atol(argv[1]);
    void *volatile last = NULL;
    for (long i = 0; i < blocks; i++) {
        void **p = hold_block();
        if (p == NULL)
            return 1;
        *p = last; /* a chain, so every block stays reachable */
        last = p;
    }
    return atoi(argv[2]);
}
