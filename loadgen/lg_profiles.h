/*
 * lg_profiles: heap profiles and memstats over time, fetched by the main thread on a connection
 * of their own (never one of the load connections, so they neither steal load slots nor wait
 * behind them). Each profile is saved as DIR/heap-NNNN.pb.gz (when there is a DIR) and decoded
 * with the shared codec (pcodec) for its total inuse_space and inuse_objects. The first and the
 * latest decoded profiles stay in memory, for the verdict's "grew most" list.
 *
 * /debug/memstats is optional: its JSON is read for "rss_bytes" and glibc's in-use count (the
 * first of LG_MEMSTATS_GLIBC_KEYS present, at any depth); a 404 turns further fetches off.
 *
 * Failure policy: a profile URL that does not answer pprof (the first fetch fails in any way, or
 * any answer is 200 but not a profile) is fatal: lg_profiles_fatal() says why and the caller
 * ends the run keeping what it has. Later transport failures or non-200 answers (a stalled
 * server, a timeout) are counted and warned about, not fatal. One fetch at a time per kind; a
 * tick that finds the previous one still running is skipped and counted.
 */
#ifndef LG_PROFILES_H
#define LG_PROFILES_H

#include <stdbool.h>
#include <stdint.h>

#include "pcodec.h"

struct event_base;

#define LG_MEMSTATS_GLIBC_KEYS                                                                     \
    {                                                                                              \
        "glibc_inuse_bytes", "glibc_bytes", "mallinfo2_uordblks", "uordblks",                      \
            "glibc_allocated_bytes"                                                                \
    }

struct lg_profile_point {
    unsigned seq;          /* NNNN of heap-NNNN.pb.gz */
    double t_s;            /* elapsed seconds when the fetch was sent */
    uint64_t requests;     /* requests completed by then */
    int64_t inuse_bytes;   /* total inuse_space */
    int64_t inuse_objects; /* total inuse_objects */
    int64_t sample_period; /* the profile's period (bytes between samples); 0: exact */
};

struct lg_memstats {
    bool have_rss, have_glibc;
    double rss_bytes, glibc_bytes;
    bool missing; /* the endpoint answered 404: not asked again */
};

struct lg_profiles_config {
    const char *host;
    uint16_t port;
    const char *profile_path;  /* path and query of the profile URL */
    const char *memstats_path; /* NULL: do not fetch memstats */
    const char *out_dir;       /* NULL: keep profiles in memory only */
    int64_t timeout_ns;
};

typedef void (*lg_profiles_done_cb)(void *arg);

struct lg_profiles;

struct lg_profiles *lg_profiles_new(struct event_base *base, const struct lg_profiles_config *cfg,
                                    lg_profiles_done_cb done, void *done_arg);
void lg_profiles_free(struct lg_profiles *p);

/* Start fetching a profile. Returns 0, or -1 when one is still in flight (the tick is skipped). */
int lg_profiles_fetch(struct lg_profiles *p, double t_s, uint64_t requests);
/* Start fetching memstats (no-op when missing, disabled or in flight). */
void lg_profiles_fetch_memstats(struct lg_profiles *p);

bool lg_profiles_busy(const struct lg_profiles *p); /* a profile fetch is in flight */
const struct lg_profile_point *lg_profiles_points(const struct lg_profiles *p, size_t *n);
const struct lg_memstats *lg_profiles_memstats(const struct lg_profiles *p);
const char *lg_profiles_fatal(const struct lg_profiles *p); /* NULL unless fatal */
unsigned lg_profiles_failures(const struct lg_profiles *p);
unsigned lg_profiles_skipped(const struct lg_profiles *p);
const pcodec_profile *lg_profiles_first(const struct lg_profiles *p);
const pcodec_profile *lg_profiles_last(const struct lg_profiles *p);

#endif
