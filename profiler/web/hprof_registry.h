/*
 * hprof_registry: the profiles the debug surface serves, in one table (Go's pprof.Lookup and
 * net/http/pprof's index): name, description, count, how to write it as a gzip'd protobuf and
 * as text (?debug=N), and whether ?seconds=N gives a delta. The router (hprof_router.c), the
 * index page (hprof_pages.c), the "Unknown profile" error and the delta endpoint all iterate
 * this table: adding a profile is adding one entry to hprof_profiles[] in hprof_registry.c.
 *
 * An entry with serve set is an endpoint of its own that the index lists (the CPU profile,
 * symbol, cmdline): the router mounts serve instead of the generic profile handler.
 *
 * Writers run on the debug listener's event loop, inside hprof_internal_enter/exit. They
 * return 0, or -1 with errno set; they may fill err (status and message for the client),
 * otherwise the client gets 500 "Could not write NAME profile: <strerror(errno)>".
 */
#ifndef HPROF_REGISTRY_H
#define HPROF_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "heapprof.h"

struct evbuffer;
struct evhttp_request;

struct hprof_profile_error {
    int status;    /* HTTP status; 0: 500 */
    char msg[256]; /* "": the generic message */
};

struct hprof_profile {
    const char *name;        /* under /debug/pprof/; the table is sorted by it, as Go lists */
    const char *description; /* the index page's, Go's words where Go has the profile */
    /* The index page's count (records of the profile); NULL: 0. */
    uint64_t (*count)(void);
    /* ?debug=0 (or absent): the gzip'd protobuf into a new buffer (hprof_output_free). */
    int (*write_proto)(const struct hprof_profile *p, uint8_t **out, size_t *len,
                       struct hprof_profile_error *err);
    /* ?debug=N, N != 0: the text form. NULL: the protobuf is served whatever debug says. */
    int (*write_text)(const struct hprof_profile *p, int debug, struct evbuffer *out,
                      struct hprof_profile_error *err);
    /* ?seconds=N: 1 for a delta profile of delta_kind (hprof_delta.c); 0: 400, as Go answers
     * profiles without deltas. */
    int delta;
    enum hprof_kind delta_kind;
    /* An endpoint of its own (then the fields above but name, description and count are
     * unused). */
    void (*serve)(struct evhttp_request *req, void *arg);
};

extern const struct hprof_profile hprof_profiles[];
extern const size_t hprof_n_profiles;

/* The entry of name, or NULL. */
const struct hprof_profile *hprof_profile_lookup(const char *name);

#endif
