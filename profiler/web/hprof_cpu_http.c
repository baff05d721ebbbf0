/*
 * hprof_cpu_http: /debug/pprof/profile?seconds=N, Go's CPU profile endpoint, over the CPU engine
 * (collect/hprof_cpu.c): start, an evtimer on the request's event base, stop and encode, reply.
 * One profile at a time (the engine refuses a second with EBUSY, answered with Go's words). The
 * wait is hprof_defer.c's: a client that goes away stops the profile early and discards it. All
 * allocations are inside hprof_internal_enter/exit.
 */
#include "hprof_cpu.h"
#include "hprof_web.h"

#include <errno.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- /debug/pprof/profile ---- */

/* The duration has passed: stop, encode, reply. */
static void on_profile_done(struct evhttp_request *req, void *arg)
{
    (void)arg;
    uint8_t *profile = NULL;
    size_t len = 0;
    if (hprof_cpu_stop(&profile, &len) != 0) {
        char msg[256];
        snprintf(msg, sizeof(msg), "Could not write CPU profile: %s", strerror(errno));
        hprof_web_error(req, HTTP_INTERNAL, msg);
    } else {
        hprof_web_reply_profile(req, "profile", profile, len); /* frees profile */
    }
}

/* The connection is closing before the end (the client left, or the server is shutting
 * down): stop and discard. */
static void on_client_gone(struct evhttp_request *req, void *arg)
{
    (void)req;
    (void)arg;
    (void)hprof_cpu_stop(NULL, NULL);
}

void hprof_cpu_http_serve(struct evhttp_request *req, void *arg)
{
    (void)arg;
    long seconds;
    if (hprof_web_seconds(req, &seconds) != 0)
        return; /* answered 400 */
    if (seconds == 0)
        seconds = HPROF_CPU_DEFAULT_SECONDS;
    hprof_internal_enter();
    struct hprof_deferred *d = hprof_deferred_new(req, on_profile_done, on_client_gone, NULL);
    if (d == NULL) {
        hprof_web_error(req, HTTP_INTERNAL, "out of memory");
        goto out;
    }
    if (hprof_cpu_start(HPROF_CPU_DEFAULT_HZ) != 0) {
        /* Go's words for a profile already running, so tools that parse them still do. */
        char msg[256];
        snprintf(msg, sizeof(msg), "Could not enable CPU profiling: %s",
                 errno == EBUSY ? "cpu profiling already in use" : strerror(errno));
        hprof_web_error(req, HTTP_INTERNAL, msg);
        hprof_deferred_free(d);
        goto out;
    }
    if (hprof_deferred_start(d, seconds) != 0) {
        (void)hprof_cpu_stop(NULL, NULL);
        hprof_web_error(req, HTTP_INTERNAL, "cannot arm the profile timer");
        hprof_deferred_free(d);
    }
out:
    hprof_internal_exit();
}
