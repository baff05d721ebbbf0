/*
 * fake_collect: see fake_collect.h. Test code only: the library's real definitions come from
 * the collection half.
 */
#include "fake_collect.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heapprof.h"

static const struct hprof_snapshot *fake;
static __thread int depth;
static unsigned takes;

void fake_collect_set(const struct hprof_snapshot *snapshot)
{
    fake = snapshot;
}

int fake_collect_depth(void)
{
    return depth;
}

unsigned fake_collect_takes(void)
{
    return __atomic_load_n(&takes, __ATOMIC_RELAXED);
}

void hprof_internal_enter(void)
{
    depth++;
}

void hprof_internal_exit(void)
{
    if (depth <= 0)
        abort(); /* unbalanced exit: a bug the tests must see */
    depth--;
}

int hprof_snapshot_take(struct hprof_snapshot *out)
{
    __atomic_fetch_add(&takes, 1, __ATOMIC_RELAXED);
    memset(out, 0, sizeof(*out));
    out->rate = 524288;
    if (fake == NULL)
        return 0;
    *out = *fake;
    out->buckets = NULL;
    if (fake->n_buckets == 0)
        return 0;
    hprof_internal_enter();
    out->buckets = malloc(fake->n_buckets * sizeof(*out->buckets));
    hprof_internal_exit();
    if (out->buckets == NULL) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(out->buckets, fake->buckets, fake->n_buckets * sizeof(*out->buckets));
    return 0;
}

void hprof_snapshot_release(struct hprof_snapshot *snapshot)
{
    hprof_internal_enter();
    free(snapshot->buckets);
    hprof_internal_exit();
    snapshot->buckets = NULL;
    snapshot->n_buckets = 0;
}

void hprof_get_totals(struct hprof_totals *out)
{
    memset(out, 0, sizeof(*out));
    if (fake == NULL)
        return;
    out->rate = fake->rate;
    out->buckets = fake->n_buckets;
    for (size_t i = 0; i < fake->n_buckets; i++) {
        out->inuse_bytes += fake->buckets[i].inuse_bytes;
        out->inuse_objects += fake->buckets[i].inuse_objects;
        out->alloc_bytes += fake->buckets[i].alloc_bytes;
        out->alloc_objects += fake->buckets[i].alloc_objects;
    }
    out->peak_inuse_bytes = out->inuse_bytes; /* a fake has no history: its peak is now */
}

/* The contention profiles' collection (hprof_locks.h): empty profiles, no interposed locks. */
#include "hprof_locks.h"

int hprof_locks_snapshot(enum hprof_lock_profile profile, struct hprof_lock_snapshot *out)
{
    memset(out, 0, sizeof(*out));
    out->profile = profile;
    return 0;
}

void hprof_locks_snapshot_release(struct hprof_lock_snapshot *snapshot)
{
    free(snapshot->v);
    snapshot->v = NULL;
    snapshot->n = 0;
}

int hprof_locks_delta(const struct hprof_lock_snapshot *p0, const struct hprof_lock_snapshot *p1,
                      struct hprof_lock_snapshot *out)
{
    (void)p0;
    *out = *p1;
    out->n = 0;
    out->v = NULL;
    return 0;
}

void hprof_locks_window_begin(void)
{
}

void hprof_locks_window_end(void)
{
}

uint64_t hprof_threadcreate_total(void)
{
    return 0;
}
