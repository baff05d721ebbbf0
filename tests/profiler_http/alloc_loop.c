/*
 * alloc_loop: a plain program for the preload tests (it never links the profiler): it keeps
 * KEEP_BYTES-byte blocks allocated in keep_block() at a steady pace, and frees the short-lived
 * ones of churn_block(), until SIGTERM/SIGINT or the given number of seconds has passed.
 * Then it frees everything and exits 0. The names keep_block and churn_block are what the
 * tests look for in its profiles.
 * usage: alloc_loop SECONDS
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEEP_BYTES 4096        /* bytes per kept block */
#define KEEP_MAX   (64 * 1024) /* blocks kept at most (256 MiB would be too much) */
#define TICK_NS    1000000L    /* nanoseconds between rounds */
#define PER_TICK   16          /* blocks kept per round */

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

__attribute__((noinline)) static void *keep_block(void)
{
    void *p = malloc(KEEP_BYTES);
    if (p != NULL)
        memset(p, 0xab, KEEP_BYTES);
    return p;
}

__attribute__((noinline)) static void churn_block(void)
{
    char *volatile p = malloc(200);
    if (p != NULL)
        p[0] = 1;
    free(p);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 10;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    void **kept = calloc(KEEP_MAX, sizeof(*kept));
    if (kept == NULL)
        return 1;
    size_t n = 0;
    struct timespec start, now, tick = {0, TICK_NS};
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        double elapsed = (double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9;
        if (stop || elapsed >= seconds)
            break;
        for (int i = 0; i < PER_TICK && n < KEEP_MAX; i++)
            kept[n++] = keep_block();
        for (int i = 0; i < PER_TICK; i++)
            churn_block();
        nanosleep(&tick, NULL); /* EINTR (SIGURG, SIGUSR2) only shortens one round */
    }
    for (size_t i = 0; i < n; i++)
        free(kept[i]);
    free(kept);
    printf("alloc_loop: kept %zu blocks\n", n);
    return 0;
}
