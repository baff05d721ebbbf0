/*
 * profile_helper: a small program around the output half and fake snapshots (fake_collect.c),
 * driven by the shell tests:
 *
 *   profile_helper write PATH heap|allocs   write the fake sites' profile to PATH
 *   profile_helper sleep MS                 live MS milliseconds (or until SIGTERM), then
 *                                           exit(0): with HEAPPROF_FILE set, the constructor
 *                                           and the exit handler write PREFIX.NNNN.pb.gz files
 *   profile_helper fork-exit                fork a child that exits through exit(); the child
 *                                           must not write files (only the parent does)
 *   profile_helper check N FILE...          each FILE decodes, string_table[0] == "" and it
 *                                           has N samples; exit 1 otherwise
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fake_collect.h"
#include "heapprof.h"
#include "pcodec.h"

static struct fake_stack a, b, c;
static struct hprof_bucket buckets[6];
static struct hprof_snapshot snap;

static volatile sig_atomic_t term_requested;

static void on_term(int sig)
{
    (void)sig;
    term_requested = 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: profile_helper write PATH heap|allocs | sleep MS | fork-exit | "
                    "check N FILE...\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    fake_sites_collect(&a, &b, &c);
    fake_sites_snapshot(&snap, buckets, &a, &b, &c);
    fake_collect_set(&snap);
    if (strcmp(argv[1], "write") == 0 && argc == 4) {
        enum hprof_kind kind = strcmp(argv[3], "allocs") == 0 ? HPROF_ALLOCS : HPROF_HEAP;
        if (hprof_write_profile_path(argv[2], kind) != 0) {
            perror(argv[2]);
            return 1;
        }
        return 0;
    }
    if (strcmp(argv[1], "sleep") == 0 && argc == 3) {
        long ms = atol(argv[2]);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        /* SIGTERM ends the sleep early through exit(), so the exit dump is still written. */
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_term;
        sigaction(SIGTERM, &sa, NULL);
        while (nanosleep(&ts, &ts) != 0 && !term_requested)
            ;
        exit(0);
    }
    if (strcmp(argv[1], "fork-exit") == 0 && argc == 2) {
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0)
            exit(0); /* runs the atexit handlers: they must see they are a child */
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return 1;
        exit(0);
    }
    if (strcmp(argv[1], "check") == 0 && argc >= 4) {
        size_t want = (size_t)atol(argv[2]);
        for (int i = 3; i < argc; i++) {
            char err[512];
            pcodec_profile *p = pcodec_load_file(argv[i], err, sizeof(err));
            if (p == NULL) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
            int ok = p->n_sample == want && p->n_sample_type == 4;
            pcodec_free(p);
            if (!ok) {
                fprintf(stderr, "%s: not the expected profile\n", argv[i]);
                return 1;
            }
        }
        return 0;
    }
    return usage();
}
