/*
 * keep_at_exit: a plain program for the launcher tests (it never links the profiler). It
 * allocates BLOCKS blocks of BLOCK_BYTES in hold_block() and exits with the given status
 * without freeing them, so the profile written at exit holds BLOCKS * BLOCK_BYTES in use, all
 * under hold_block: what the launcher's summary must report. With TRANSIENT, it then allocates
 * TRANSIENT more blocks in pass_block() on top of those and frees them all before exiting, so
 * the heap's peak is (BLOCKS + TRANSIENT) * BLOCK_BYTES while its in-use at exit stays
 * BLOCKS * BLOCK_BYTES.
 * usage: keep_at_exit BLOCKS EXIT_STATUS [TRANSIENT]
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

__attribute__((noinline)) static void *pass_block(void)
{
    void *p = malloc(BLOCK_BYTES);
    if (p != NULL)
        memset(p, 0xa5, BLOCK_BYTES);
    return p;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: keep_at_exit BLOCKS EXIT_STATUS [TRANSIENT]\n");
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
    void *volatile passing = NULL;
    for (long i = 0, n = argc == 4 ? atol(argv[3]) : 0; i < n; i++) {
        void **p = pass_block();
        if (p == NULL)
            return 1;
        *p = passing;
        passing = p;
    }
    while (passing != NULL) {
        void *next = *(void **)passing;
        free(passing);
        passing = next;
    }
    return atoi(argv[2]);
}
