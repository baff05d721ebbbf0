/*
 * hprof_delta: /debug/pprof/heap?seconds=N and allocs?seconds=N, Go's delta profiles.
 *
 * Model (Go's serveDeltaProfile): a snapshot p0 when the request arrives, another one p1 after
 * N seconds, and the profile of p1 - p0: every value of every (stack, size) is subtracted (so
 * alloc_* is what was allocated during the window and inuse_* how the live heap changed,
 * negative where it shrank); a stack whose four differences are all zero is dropped, as
 * pprof's Merge drops zero samples. Values are rounded to integers before subtracting, exactly
 * as Go subtracts two integer profiles. time_nanos is p1's and duration_nanos the time between
 * the two snapshots; the file is "<name>-delta".
 *
 * Waiting: hprof_defer.c's deferred reply (an evtimer on the request's event base, never a
 * sleep, and a watch that notices a client that leaves). At most HPROF_DELTA_MAX_PENDING
 * deltas wait at once (each holds a snapshot): more get 503.
 *
 * Invariants: a pending delta is freed by exactly one of the deferred reply's done (which
 * replies) and gone (which discards). All of it runs on the one loop thread; every allocation
 * is inside hprof_internal_enter/exit.
 */
#include "hprof_web.h"

#include "hprof_hash.h"
#include "lc_util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HPROF_DELTA_MAX_PENDING 8 /* delta profiles waiting at once, per process */

/* ---- the difference ---- */

static uint64_t bucket_hash(const struct hprof_bucket *b)
{
    return hprof_hash_pcs(b->size, b->pcs, (size_t)(b->depth > 0 ? b->depth : 0));
}

static int bucket_same_key(const struct hprof_bucket *a, const struct hprof_bucket *b)
{
    return a->size == b->size && a->depth == b->depth &&
           memcmp(a->pcs, b->pcs, (size_t)(a->depth > 0 ? a->depth : 0) * sizeof(a->pcs[0])) == 0;
}

/* The profile's integer for an estimate (hprof_pprof.c rounds the same way). */
static double rounded(double v)
{
    return isfinite(v) ? (double)llround(v) : 0;
}

int hprof_snapshot_delta(const struct hprof_snapshot *p0, const struct hprof_snapshot *p1,
                         struct hprof_snapshot *out)
{
    int rc = -1;
    memset(out, 0, sizeof(*out));
    out->time_ns = p1->time_ns;
    out->rate = p1->rate;
    hprof_internal_enter();
    /* An open-addressing index of p0's buckets (load <= 1/2), a flag per p0 bucket once it is
     * matched; p0 buckets never matched are stacks p1 lacks (a table never loses buckets, but
     * tests and fakes may), subtracted from zero. */
    size_t n_slots = 16;
    while (n_slots < 2 * p0->n_buckets)
        n_slots *= 2;
    size_t *slots = calloc(n_slots, sizeof(*slots)); /* index + 1; 0 = empty */
    unsigned char *matched = calloc(p0->n_buckets ? p0->n_buckets : 1, 1);
    out->buckets = malloc((p0->n_buckets + p1->n_buckets + 1) * sizeof(*out->buckets));
    if (slots == NULL || matched == NULL || out->buckets == NULL)
        goto out;
    for (size_t i = 0; i < p0->n_buckets; i++) {
        size_t j = bucket_hash(&p0->buckets[i]) & (n_slots - 1);
        while (slots[j] != 0)
            j = (j + 1) & (n_slots - 1);
        slots[j] = i + 1;
    }
    for (size_t i = 0; i < p1->n_buckets; i++) {
        const struct hprof_bucket *b1 = &p1->buckets[i];
        const struct hprof_bucket *b0 = NULL;
        for (size_t j = bucket_hash(b1) & (n_slots - 1); slots[j] != 0;
             j = (j + 1) & (n_slots - 1)) {
            const struct hprof_bucket *c = &p0->buckets[slots[j] - 1];
            if (!matched[slots[j] - 1] && bucket_same_key(c, b1)) {
                b0 = c;
                matched[slots[j] - 1] = 1;
                break;
            }
        }
        struct hprof_bucket *d = &out->buckets[out->n_buckets];
        *d = *b1;
        if (b0 != NULL) {
            d->alloc_objects = rounded(b1->alloc_objects) - rounded(b0->alloc_objects);
            d->alloc_bytes = rounded(b1->alloc_bytes) - rounded(b0->alloc_bytes);
            d->inuse_objects = rounded(b1->inuse_objects) - rounded(b0->inuse_objects);
            d->inuse_bytes = rounded(b1->inuse_bytes) - rounded(b0->inuse_bytes);
        }
        if (d->alloc_objects != 0 || d->alloc_bytes != 0 || d->inuse_objects != 0 ||
            d->inuse_bytes != 0)
            out->n_buckets++;
    }
    for (size_t i = 0; i < p0->n_buckets; i++) {
        if (matched[i])
            continue;
        struct hprof_bucket *d = &out->buckets[out->n_buckets];
        *d = p0->buckets[i];
        d->alloc_objects = -rounded(d->alloc_objects);
        d->alloc_bytes = -rounded(d->alloc_bytes);
        d->inuse_objects = -rounded(d->inuse_objects);
        d->inuse_bytes = -rounded(d->inuse_bytes);
        if (d->alloc_objects != 0 || d->alloc_bytes != 0 || d->inuse_objects != 0 ||
            d->inuse_bytes != 0)
            out->n_buckets++;
    }
    rc = 0;
out:
    free(slots);
    free(matched);
    if (rc != 0) {
        free(out->buckets);
        out->buckets = NULL;
        out->n_buckets = 0;
        errno = ENOMEM;
    }
    hprof_internal_exit();
    return rc;
}

/* ---- the request ---- */

struct delta {
    enum hprof_kind kind;
    char name[32];
    struct hprof_snapshot p0;
    int64_t start_ns; /* lc_monotonic_ns() at p0 */
};

static int pending; /* deltas waiting, atomically: two listeners (HEAPPROF_HTTP) may share it */

static void delta_free(struct delta *d)
{
    hprof_internal_enter();
    hprof_snapshot_release(&d->p0);
    free(d);
    hprof_deferred_leave(&pending);
    hprof_internal_exit();
}

/* N seconds have passed: the second snapshot, the difference, the reply. */
static void on_done(struct evhttp_request *req, void *arg)
{
    struct delta *d = arg;
    hprof_internal_enter();
    struct hprof_snapshot p1, diff;
    memset(&p1, 0, sizeof(p1));
    memset(&diff, 0, sizeof(diff));
    uint8_t *buf = NULL;
    size_t len = 0;
    char msg[160];
    int64_t duration = lc_monotonic_ns() - d->start_ns;
    if (hprof_snapshot_take(&p1) != 0 || hprof_snapshot_delta(&d->p0, &p1, &diff) != 0 ||
        hprof_pprof_encode_delta(&diff, d->kind, NULL, 1, duration, &buf, &len) != 0) {
        snprintf(msg, sizeof(msg), "failed to compute delta: %s", strerror(errno ? errno : ENOMEM));
        hprof_output_free(buf);
        hprof_web_error(req, HTTP_INTERNAL, msg);
    } else {
        char name[48];
        snprintf(name, sizeof(name), "%s-delta", d->name);
        hprof_web_reply_profile(req, name, buf, len);
    }
    hprof_snapshot_release(&diff);
    hprof_snapshot_release(&p1);
    delta_free(d);
    hprof_internal_exit();
}

/* The connection closed before the end (the client left, or the server is shutting down):
 * discard. */
static void on_gone(struct evhttp_request *req, void *arg)
{
    (void)req;
    delta_free(arg);
}

void hprof_delta_serve(struct evhttp_request *req, enum hprof_kind kind, const char *name,
                       long seconds)
{
    hprof_internal_enter();
    struct delta *d = NULL;
    struct hprof_deferred *wait = NULL;
    if (hprof_deferred_admit(&pending, HPROF_DELTA_MAX_PENDING, req) != 0)
        goto out; /* answered 503 */
    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        hprof_deferred_leave(&pending);
        hprof_web_error(req, HTTP_INTERNAL, "failed to collect profile: out of memory");
        goto out;
    }
    d->kind = kind;
    snprintf(d->name, sizeof(d->name), "%s", name);
    if ((wait = hprof_deferred_new(req, on_done, on_gone, d)) == NULL) {
        hprof_web_error(req, HTTP_INTERNAL, "failed to collect profile: out of memory");
        goto fail;
    }
    d->start_ns = lc_monotonic_ns();
    if (hprof_snapshot_take(&d->p0) != 0) {
        hprof_web_error(req, HTTP_INTERNAL, "failed to collect profile");
        goto fail;
    }
    if (hprof_deferred_start(wait, seconds) != 0) {
        hprof_web_error(req, HTTP_INTERNAL, "failed to collect profile: cannot arm the timer");
        goto fail;
    }
    goto out;
fail:
    hprof_deferred_free(wait);
    delta_free(d);
out:
    hprof_internal_exit();
}
