/*
 * hprof_locks_http: /debug/pprof/mutex and /debug/pprof/block, as Go's net/http/pprof serves
 * them (runtime/pprof writeMutex / writeBlock).
 *
 *   ?debug=0   a gzip'd protobuf: sample types contentions/count and delay/nanoseconds,
 *              period_type contentions/count, period 1 (Go's printCountCycleProfile);
 *   ?debug=N   Go's text: "--- mutex:" (or "--- contention:" for block), cycles/second (ours
 *              is 1000000000: a cycle is a nanosecond, our clock's unit), for mutex "sampling
 *              period=N", then "DELAY COUNT @ 0xRET ..." per stack with symbolized "#" lines,
 *              largest delay first, and the memory map;
 *   ?seconds=N the delta over N seconds (Go's serveDeltaProfile), named "<name>-delta". A
 *              profile that is off (HEAPPROF_MUTEX_FRACTION / HEAPPROF_BLOCK_RATE unset) is
 *              switched on for those N seconds (hprof_locks_window_begin/end) at the window's
 *              rates, so a running server can be asked without a restart.
 *
 * /debug/pprof/threadcreate: the stacks that called pthread_create, with how many of the threads
 * each created are alive now (Go's lists the runtime's threads, which rarely end; a C program's
 * come and go, see hprof_locks.c): threadcreate/count, and at ?debug=1
 * Go's count text "threadcreate profile: total N", N the live threads listed.
 *
 * The wait is hprof_defer's (an evtimer on the debug listener's loop, never a sleep, and a watch
 * on the client's socket): a client that leaves closes the window at once, not when the reply
 * would have failed N seconds later (libevent does not read a connection whose request waits
 * for its reply). Each pending request owns its window and its first snapshot; exactly one of
 * on_done and on_gone frees them. All allocations are inside hprof_internal_enter/exit.
 */
#include "hprof_registry.h"
#include "hprof_web.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hprof_locks.h"
#include "hprof_locks_pprof.h"
#include "lc_util.h"

#define LOCKS_MAX_PENDING 8 /* delta requests waiting at once, per process */

static enum hprof_lock_profile profile_of(const struct hprof_profile *p)
{
    return strcmp(p->name, "mutex") == 0 ? HPROF_LOCK_MUTEX : HPROF_LOCK_BLOCK;
}

static int64_t rounded(double v)
{
    return isfinite(v) ? (int64_t)llround(v) : 0;
}

/* Go's text (writeProfileInternal with debug > 0). */
static int text(const struct hprof_lock_snapshot *s, struct evbuffer *out)
{
    hprof_internal_enter();
    struct hprof_maps maps;
    memset(&maps, 0, sizeof(maps));
    maps.main = -1;
    (void)hprof_maps_read(&maps);
    (void)hprof_sym_begin(&maps);
    evbuffer_add_printf(out, "--- %s:\n", s->profile == HPROF_LOCK_MUTEX ? "mutex" : "contention");
    evbuffer_add_printf(out, "cycles/second=1000000000\n");
    if (s->profile == HPROF_LOCK_MUTEX)
        evbuffer_add_printf(out, "sampling period=%" PRIu64 "\n", s->period);
    for (size_t i = 0; i < s->n; i++) {
        const struct hprof_lock_record *r = &s->v[i];
        evbuffer_add_printf(out, "%" PRId64 " %" PRId64 " @", r->delay_ns, rounded(r->count));
        for (int f = 0; f < r->depth; f++)
            evbuffer_add_printf(out, " %#" PRIxPTR, r->pcs[f] + 1); /* pprof subtracts 1 */
        evbuffer_add_printf(out, "\n");
        hprof_text_stack(out, r->pcs, r->depth);
    }
    hprof_sym_end();
    int rc = hprof_text_maps(out, HPROF_TEXT_MAPS_COUNT);
    hprof_maps_free(&maps);
    hprof_internal_exit();
    return rc;
}

static uint64_t count_of(enum hprof_lock_profile profile)
{
    struct hprof_lock_snapshot s;
    if (hprof_locks_snapshot(profile, &s) != 0)
        return 0;
    uint64_t n = s.n;
    hprof_locks_snapshot_release(&s);
    return n;
}

uint64_t hprof_locks_http_count_mutex(void)
{
    return count_of(HPROF_LOCK_MUTEX);
}

uint64_t hprof_locks_http_count_block(void)
{
    return count_of(HPROF_LOCK_BLOCK);
}

/* ---- ?seconds=N ---- */

/* A delta waiting for its time (hprof_defer.c): the window it opened and its first snapshot. */
struct pending {
    const struct hprof_profile *p;
    struct hprof_lock_snapshot p0;
    int64_t start_ns; /* lc_monotonic_ns() at p0 */
    bool window;      /* hprof_locks_window_begin ran: pending_free ends it */
};

static int n_pending; /* atomically: two listeners may share it */

static void pending_free(struct pending *d)
{
    hprof_internal_enter();
    if (d->window)
        hprof_locks_window_end();
    hprof_locks_snapshot_release(&d->p0);
    free(d);
    hprof_deferred_leave(&n_pending);
    hprof_internal_exit();
}

/* The time has passed: reply with p1 - p0. */
static void on_done(struct evhttp_request *req, void *arg)
{
    struct pending *d = arg;
    hprof_internal_enter();
    int64_t duration = lc_monotonic_ns() - d->start_ns;
    struct hprof_lock_snapshot p1, diff;
    memset(&p1, 0, sizeof(p1));
    memset(&diff, 0, sizeof(diff));
    uint8_t *buf = NULL;
    size_t len = 0;
    if (hprof_locks_snapshot(profile_of(d->p), &p1) != 0 ||
        hprof_locks_delta(&d->p0, &p1, &diff) != 0 ||
        hprof_locks_encode(&diff, duration, &buf, &len) != 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "failed to compute delta: %s", strerror(errno ? errno : ENOMEM));
        hprof_web_error(req, HTTP_INTERNAL, msg);
    } else {
        char name[48];
        snprintf(name, sizeof(name), "%s-delta", d->p->name);
        hprof_web_reply_profile(req, name, buf, len);
    }
    hprof_locks_snapshot_release(&diff);
    hprof_locks_snapshot_release(&p1);
    pending_free(d);
    hprof_internal_exit();
}

/* The client left first (hprof_defer watches its socket): close the window now, not N seconds
 * later, and free the slot. */
static void on_gone(struct evhttp_request *req, void *arg)
{
    (void)req;
    pending_free(arg);
}

static void serve_delta(struct evhttp_request *req, const struct hprof_profile *p, long seconds)
{
    if (hprof_deferred_admit(&n_pending, LOCKS_MAX_PENDING, req) != 0)
        return; /* answered 503 */
    struct hprof_deferred *wait = NULL;
    struct pending *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        hprof_deferred_leave(&n_pending);
        hprof_web_error(req, HTTP_INTERNAL, "failed to collect profile: out of memory");
        return;
    }
    d->p = p;
    if ((wait = hprof_deferred_new(req, on_done, on_gone, d)) == NULL) {
        hprof_web_error(req, HTTP_INTERNAL, "failed to collect profile: out of memory");
        goto fail;
    }
    hprof_locks_window_begin();
    d->window = true;
    d->start_ns = lc_monotonic_ns();
    if (hprof_locks_snapshot(profile_of(p), &d->p0) != 0) {
        hprof_web_error(req, HTTP_INTERNAL, "failed to collect profile: out of memory");
        goto fail;
    }
    if (hprof_deferred_start(wait, seconds) != 0) {
        hprof_web_error(req, HTTP_INTERNAL, "failed to collect profile: cannot arm the timer");
        goto fail;
    }
    return;
fail:
    hprof_deferred_free(wait);
    pending_free(d);
}

void hprof_locks_http_serve(struct evhttp_request *req, void *arg)
{
    const struct hprof_profile *p = arg;
    hprof_internal_enter();
    long seconds;
    struct evbuffer *body = NULL;
    struct hprof_lock_snapshot s;
    memset(&s, 0, sizeof(s));
    if (hprof_web_seconds(req, &seconds) != 0)
        goto out; /* answered 400 */
    int debug = hprof_web_debug(req);
    if (seconds > 0) {
        if (debug != 0)
            hprof_web_error(req, HTTP_BADREQUEST, "seconds and debug params are incompatible");
        else
            serve_delta(req, p, seconds);
        goto out;
    }
    char msg[160];
    if (hprof_locks_snapshot(profile_of(p), &s) != 0) {
        snprintf(msg, sizeof(msg), "Could not write %s profile: %s", p->name, strerror(errno));
        hprof_web_error(req, HTTP_INTERNAL, msg);
        goto out;
    }
    if (debug != 0) {
        body = evbuffer_new();
        if (body == NULL || text(&s, body) != 0) {
            snprintf(msg, sizeof(msg), "Could not write %s profile: %s", p->name,
                     strerror(errno ? errno : ENOMEM));
            hprof_web_error(req, HTTP_INTERNAL, msg);
        } else {
            hprof_web_reply(req, "text/plain; charset=utf-8", NULL, body);
        }
        goto out;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (hprof_locks_encode(&s, 0, &buf, &len) != 0) {
        snprintf(msg, sizeof(msg), "Could not write %s profile: %s", p->name, strerror(errno));
        hprof_web_error(req, HTTP_INTERNAL, msg);
        goto out;
    }
    hprof_web_reply_profile(req, p->name, buf, len);
out:
    if (body != NULL)
        evbuffer_free(body);
    hprof_locks_snapshot_release(&s);
    hprof_internal_exit();
}

/* ---- threadcreate (the registry's generic writers) ---- */

uint64_t hprof_locks_http_count_threadcreate(void)
{
    return hprof_threadcreate_total();
}

int hprof_locks_http_threadcreate_proto(const struct hprof_profile *p, uint8_t **out, size_t *len,
                                        struct hprof_profile_error *err)
{
    (void)p;
    (void)err;
    struct hprof_lock_snapshot s;
    if (hprof_locks_snapshot(HPROF_THREADCREATE, &s) != 0)
        return -1;
    int rc = hprof_threadcreate_encode(&s, out, len);
    int saved = errno;
    hprof_locks_snapshot_release(&s);
    errno = saved;
    return rc;
}

int hprof_locks_http_threadcreate_text(const struct hprof_profile *p, int debug,
                                       struct evbuffer *out, struct hprof_profile_error *err)
{
    (void)p;
    (void)debug;
    (void)err;
    struct hprof_lock_snapshot s;
    if (hprof_locks_snapshot(HPROF_THREADCREATE, &s) != 0)
        return -1;
    hprof_internal_enter();
    int64_t total = 0;
    for (size_t i = 0; i < s.n; i++)
        total += rounded(s.v[i].count);
    struct hprof_maps maps;
    memset(&maps, 0, sizeof(maps));
    maps.main = -1;
    (void)hprof_maps_read(&maps);
    (void)hprof_sym_begin(&maps);
    evbuffer_add_printf(out, "threadcreate profile: total %" PRId64 "\n", total);
    for (size_t i = 0; i < s.n; i++) {
        const struct hprof_lock_record *r = &s.v[i];
        evbuffer_add_printf(out, "%" PRId64 " @", rounded(r->count));
        for (int f = 0; f < r->depth; f++)
            evbuffer_add_printf(out, " %#" PRIxPTR, r->pcs[f] + 1); /* pprof subtracts 1 */
        evbuffer_add_printf(out, "\n");
        hprof_text_stack(out, r->pcs, r->depth);
    }
    hprof_sym_end();
    int rc = hprof_text_maps(out, HPROF_TEXT_MAPS_COUNT);
    int saved = errno;
    hprof_maps_free(&maps);
    hprof_locks_snapshot_release(&s);
    hprof_internal_exit();
    errno = saved;
    return rc;
}
