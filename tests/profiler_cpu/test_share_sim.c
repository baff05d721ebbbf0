/*
 * test_share_sim: the false alarms and misses of the CPU tests' share check (share_bound.h),
 * measured on simulated profiles with a fixed seed, and asserted. `test_share_sim --table`
 * prints them as the Markdown table kept in BENCHMARKS.md.
 *
 * The model, after what the kernel does with a thread's CPU timer: the thread runs PERIODS
 * periods of its own CPU time; at the end of each, the expiry is noticed (a tick finds the thread
 * running) with probability q, and the delivery carries every period since the last one as its
 * weight (overruns); the periods after the last delivery are charged at the thread's exit, to
 * neither hot function. Each delivery lands in function A with probability p, independently (the
 * busy worker picks its function at random every ~100 us, far shorter than a period). q runs
 * log-uniformly from 0.02 to 1: 1 is a quiet machine (150 deliveries of weight 1), the low end a
 * busy one with context-switch churn, where the busy worker was measured at 9-44 effective
 * samples of 150 (stress-ng --cpu 2 --switch 2), and down to 4 once.
 *
 * A false alarm is a profile of a correct profiler (A's true share p, 0.75-0.85, as cpu_hot_two's
 * is) that fails the check; a miss is a profile of a wrong one that passes: a profiler that
 * swaps the two functions (share 1 - p) or that attributes at random (share 1/2).
 * Goals: false alarms <= 0.1% overall; on a quiet machine (>= 100 effective samples) both wrong
 * profilers caught in >= 99% of cases. At few effective samples the check cannot tell (a
 * profile of 5 draws says little); the table states where that starts.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "share_bound.h"

#define PERIODS 150 /* the busy profile: 1.5 CPU s at 100 Hz */
#define CASES   200000
#define NBANDS  5

/* ---- a small, fixed-seed generator (xorshift64*) */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double uniform(void) /* [0, 1) */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545f4914f6cdd1dull) >> 11) / (double)(1ull << 53);
}

/* One simulated profile of a thread whose deliveries land in A with probability land_a:
 * fills the hot samples in A and B and the effective count of the hot part, as the tests
 * compute it (the profile's samples^2 / weight_sq, scaled to the hot part). */
struct profile {
    double a, b, n_eff;
};
static struct profile simulate(double q, double land_a)
{
    double a = 0, b = 0, weight_sq = 0;
    int pending = 0;
    for (int i = 0; i < PERIODS; i++) {
        pending++;
        if (uniform() < q) {
            if (uniform() < land_a)
                a += pending;
            else
                b += pending;
            weight_sq += (double)pending * pending;
            pending = 0;
        }
    }
    weight_sq += (double)pending * pending; /* the exit charge: one delivery of the rest */
    double total = a + b + pending;
    return (struct profile){a, b, total * total / weight_sq * (a + b) / total};
}

static bool passes(struct profile pr, double p)
{
    double n = pr.a + pr.b;
    return n > 0 && fabs(pr.a / n - p) <= share_bound(p, n, pr.n_eff);
}

static const double band_low[NBANDS] = {100, 30, 10, 5, 0};
static int band_of(double n_eff)
{
    int k = 0;
    while (n_eff < band_low[k])
        k++;
    return k;
}

int main(int argc, char **argv)
{
    bool table = argc == 2 && strcmp(argv[1], "--table") == 0;
    long cases[NBANDS] = {0}, alarms[NBANDS] = {0}, missed_swap[NBANDS] = {0},
         missed_random[NBANDS] = {0};
    for (long c = 0; c < CASES; c++) {
        double q = exp(log(0.02) * uniform()); /* log-uniform in (0.02, 1] */
        double p = 0.75 + 0.1 * uniform();
        struct profile right = simulate(q, p);
        if (right.a + right.b == 0)
            continue; /* no delivery at all: the tests fail that case on its own */
        int k = band_of(right.n_eff);
        cases[k]++;
        alarms[k] += !passes(right, p);
        missed_swap[k] += passes(simulate(q, 1 - p), p);
        missed_random[k] += passes(simulate(q, 0.5), p);
    }

    long all = 0, all_alarms = 0;
    if (table) {
        printf("| effective samples | cases | false alarms | misses: split swapped | misses: "
               "split at random |\n|---|---|---|---|---|\n");
    }
    for (int k = 0; k < NBANDS; k++) {
        all += cases[k];
        all_alarms += alarms[k];
        if (cases[k] == 0)
            continue;
        double n = (double)cases[k];
        char band[32];
        if (k == 0)
            snprintf(band, sizeof(band), ">= %.0f", band_low[k]);
        else
            snprintf(band, sizeof(band), "%.0f-%.0f", band_low[k], band_low[k - 1]);
        printf(table ? "| %s | %ld | %.3f%% | %.2f%% | %.2f%% |\n"
                     : "n_eff %s: %ld cases, false alarms %.3f%%, misses swapped %.2f%%, "
                       "random %.2f%%\n",
               band, cases[k], 100 * alarms[k] / n, 100 * missed_swap[k] / n,
               100 * missed_random[k] / n);
    }
    printf(table ? "| all | %ld | %.3f%% | | |\n" : "all: %ld cases, false alarms %.3f%%\n", all,
           100.0 * all_alarms / (double)all);
    if (table)
        return 0;

    int failed = 0;
    if (all_alarms > all / 1000) {
        printf("FAIL: false alarms %.3f%% > 0.1%%\n", 100.0 * all_alarms / (double)all);
        failed = 1;
    }
    if (missed_swap[0] > cases[0] / 100 || missed_random[0] > cases[0] / 100) {
        printf("FAIL: on a quiet machine a wrong profiler passes in more than 1%% of cases\n");
        failed = 1;
    }
    if (cases[0] < 1000) {
        printf("FAIL: too few quiet cases (%ld) to judge\n", cases[0]);
        failed = 1;
    }
    return failed;
}
