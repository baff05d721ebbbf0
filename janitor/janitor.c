/*
 * janitor: one thread, one period, one callback (see janitor.h for the contract).
 *
 * Lock: `lock` guards `stopping` and is the mutex of `wake`. The thread holds it only while it
 * decides whether to sweep or wait; the sweep callback runs without it, so janitor_stop never
 * waits for the lock behind a long sweep, only for the join.
 *
 * Clock: `wake` is bound to CLOCK_MONOTONIC (pthread_condattr_setclock), so deadlines are
 * absolute monotonic times and a wall-clock step (NTP, settimeofday) neither delays nor hurries
 * a sweep. Spurious wake-ups are harmless: the loop re-reads the clock and the flag.
 */
#include "janitor.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_SEC 1000000000LL

struct janitor {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* signalled by janitor_stop; waited on with a monotonic deadline */
    bool stopping;       /* guarded by lock */
    int64_t interval_ns;
    janitor_sweep_fn sweep;
    void *arg;
    char name[JANITOR_NAME_MAX + 1];
};

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

/* a + b for non-negative b, saturating at INT64_MAX: an interval of years must not wrap. */
static int64_t add_saturating(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* The first tick strictly after now, on the grid next + k * interval. Skipping missed ticks
 * keeps a slow sweep from being followed by a burst of catch-up sweeps. */
static int64_t next_tick(int64_t next, int64_t interval, int64_t now)
{
    if (next > now)
        return next;
    int64_t missed = (now - next) / interval + 1;
    return missed > (INT64_MAX - next) / interval ? INT64_MAX : next + missed * interval;
}

static void *janitor_main(void *arg)
{
    struct janitor *janitor = arg;
    pthread_setname_np(pthread_self(), janitor->name);

    int64_t next = add_saturating(monotonic_ns(), janitor->interval_ns);
    pthread_mutex_lock(&janitor->lock);
    while (!janitor->stopping) {
        int64_t now = monotonic_ns();
        if (now < next) {
            struct timespec deadline = {.tv_sec = next / NS_PER_SEC, .tv_nsec = next % NS_PER_SEC};
            pthread_cond_timedwait(&janitor->wake, &janitor->lock, &deadline);
            continue; /* stop asked, deadline reached, or spurious: the loop tells which */
        }
        pthread_mutex_unlock(&janitor->lock);
        janitor->sweep(janitor->arg);
        pthread_mutex_lock(&janitor->lock);
        next = next_tick(add_saturating(next, janitor->interval_ns), janitor->interval_ns,
                         monotonic_ns());
    }
    pthread_mutex_unlock(&janitor->lock);
    return NULL;
}

struct janitor *janitor_start(const char *name, int64_t interval_ns, janitor_sweep_fn sweep,
                              void *arg)
{
    if (interval_ns <= 0 || sweep == NULL) {
        errno = EINVAL;
        return NULL;
    }
    struct janitor *janitor = calloc(1, sizeof(*janitor));
    if (janitor == NULL)
        return NULL;
    janitor->interval_ns = interval_ns;
    janitor->sweep = sweep;
    janitor->arg = arg;
    snprintf(janitor->name, sizeof(janitor->name), "%s", name != NULL ? name : "janitor");

    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc == 0) {
        rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        if (rc == 0)
            rc = pthread_cond_init(&janitor->wake, &attr);
        pthread_condattr_destroy(&attr);
    }
    if (rc != 0)
        goto err_free;
    pthread_mutex_init(&janitor->lock, NULL);

    /* The thread inherits a full signal mask: asynchronous signals go to the program's threads.
     * The caller's mask is restored right after. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&janitor->thread, NULL, janitor_main, janitor);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        goto err_destroy;
    return janitor;

err_destroy:
    pthread_mutex_destroy(&janitor->lock);
    pthread_cond_destroy(&janitor->wake);
err_free:
    free(janitor);
    errno = rc;
    return NULL;
}

void janitor_stop(struct janitor *janitor)
{
    if (janitor == NULL)
        return;
    pthread_mutex_lock(&janitor->lock);
    janitor->stopping = true;
    pthread_cond_signal(&janitor->wake);
    pthread_mutex_unlock(&janitor->lock);
    pthread_join(janitor->thread, NULL);
    pthread_mutex_destroy(&janitor->lock);
    pthread_cond_destroy(&janitor->wake);
    free(janitor);
}
