/*
 * hprof_router: mounts the debug surface on an evhttp the caller owns (hprof_http_mount, the
 * public entry point): one callback per entry of the profile registry (hprof_registry.h), the
 * index, /debug/memstats and /metrics, Go's redirect of /debug/pprof, and the "Unknown
 * profile" answer for every other path under /debug/pprof/.
 *
 * Model of a registered profile's request (Go's handler.ServeHTTP): seconds=N (checked as Go
 * does) asks for a delta, served by hprof_delta.c when the profile has one, refused with
 * debug, or refused (400) for a profile without deltas; debug=N != 0 asks for the text form;
 * otherwise the gzip'd protobuf, named after the profile. Each request takes its data as a
 * snapshot (short locks) and encodes it on the debug listener's own event loop, outside any
 * lock that malloc or the /process loops need: a slow profile delays other debug requests,
 * never /process. All allocations are inside hprof_internal_enter/exit.
 */
#include "hprof_registry.h"
#include "hprof_web.h"

#include <errno.h>
#include "lc_http.h"
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PPROF_PREFIX "/debug/pprof/"

static void serve_failed(struct evhttp_request *req, const struct hprof_profile *p,
                         const struct hprof_profile_error *err, int saved_errno)
{
    char msg[320];
    if (err->msg[0] != '\0')
        snprintf(msg, sizeof(msg), "%s", err->msg);
    else
        snprintf(msg, sizeof(msg), "Could not write %s profile: %s", p->name,
                 strerror(saved_errno ? saved_errno : ENOMEM));
    hprof_web_error(req, err->status ? err->status : HTTP_INTERNAL, msg);
}

static void serve_profile(struct evhttp_request *req, void *arg)
{
    const struct hprof_profile *p = arg;
    hprof_internal_enter();
    struct hprof_profile_error err = {0, ""};
    struct evbuffer *body = NULL;
    long seconds;
    if (hprof_web_seconds(req, &seconds) != 0)
        goto out; /* answered 400 */
    int debug = hprof_web_debug(req);
    if (seconds > 0) {
        if (!p->delta)
            hprof_web_error(req, HTTP_BADREQUEST,
                            "\"seconds\" parameter is not supported for this profile type");
        else if (debug != 0)
            hprof_web_error(req, HTTP_BADREQUEST, "seconds and debug params are incompatible");
        else
            hprof_delta_serve(req, p->delta_kind, p->name, seconds);
        goto out;
    }
    errno = 0;
    if (debug != 0 && p->write_text != NULL) {
        body = evbuffer_new();
        if (body == NULL) {
            errno = ENOMEM;
            serve_failed(req, p, &err, errno);
        } else if (p->write_text(p, debug, body, &err) != 0) {
            serve_failed(req, p, &err, errno);
        } else {
            hprof_web_reply(req, "text/plain; charset=utf-8", NULL, body);
        }
        goto out;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (p->write_proto(p, &buf, &len, &err) != 0) {
        serve_failed(req, p, &err, errno);
        goto out;
    }
    hprof_web_reply_profile(req, p->name, buf, len); /* frees buf */
out:
    if (body != NULL)
        evbuffer_free(body);
    hprof_internal_exit();
}

/* Every path without a callback of its own: Go's "Unknown profile" under /debug/pprof/, a plain
 * 404 elsewhere. */
static void serve_unknown(struct evhttp_request *req, void *arg)
{
    (void)arg;
    if (lc_http_refuse(req, LC_HTTP_ANY)) /* framing only: an unknown path is 404 */
        return;
    hprof_internal_enter();
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (path == NULL)
        path = "";
    char msg[256];
    if (strncmp(path, PPROF_PREFIX, strlen(PPROF_PREFIX)) == 0) {
        const char *name = path + strlen(PPROF_PREFIX);
        /* Go's goroutine (and threadcreate, until registered) profiles: a C program has
         * threads, and the registry has a profile of them. */
        if ((strcmp(name, "goroutine") == 0 || strcmp(name, "threadcreate") == 0) &&
            hprof_profile_lookup(name) == NULL && hprof_profile_lookup("threads") != NULL)
            snprintf(msg, sizeof(msg),
                     "Unknown profile: %s (a C program has threads: see %sthreads)", name,
                     PPROF_PREFIX);
        else
            snprintf(msg, sizeof(msg), "Unknown profile: %.128s", name);
        hprof_web_error(req, HTTP_NOTFOUND, msg);
    } else {
        struct evbuffer *body = evbuffer_new();
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "text/plain; charset=utf-8");
        if (body != NULL)
            evbuffer_add_printf(body, "not found: %.200s\n", path);
        lc_http_send(req, HTTP_NOTFOUND, "Not Found", body);
        if (body != NULL)
            evbuffer_free(body);
    }
    hprof_internal_exit();
}

/* /debug/pprof without the slash: Go's ServeMux redirects to the index. */
static void serve_redirect(struct evhttp_request *req, void *arg)
{
    (void)arg;
    if (hprof_web_refuse(req))
        return;
    hprof_internal_enter();
    evhttp_add_header(evhttp_request_get_output_headers(req), "Location", PPROF_PREFIX);
    lc_http_send(req, HTTP_MOVEPERM, "Moved Permanently", NULL);
    hprof_internal_exit();
}

/* Every registered profile's entry: the gate (framing, method, memory headroom), then its own
 * serve function or the generic one. */
static void serve_entry(struct evhttp_request *req, void *arg)
{
    const struct hprof_profile *p = arg;
    if (hprof_web_refuse(req))
        return;
    if (p->serve != NULL)
        p->serve(req, arg);
    else
        serve_profile(req, arg);
}

int hprof_http_mount(struct evhttp *http)
{
    if (http == NULL) {
        errno = EINVAL;
        return -1;
    }
    int rc = 0;
    hprof_internal_enter();
    for (size_t i = 0; i < hprof_n_profiles && rc == 0; i++) {
        const struct hprof_profile *p = &hprof_profiles[i];
        char path[128];
        snprintf(path, sizeof(path), "%s%s", PPROF_PREFIX, p->name);
        rc = evhttp_set_cb(http, path, serve_entry, (void *)p);
    }
    if (rc == 0)
        rc = evhttp_set_cb(http, "/debug/pprof", serve_redirect, NULL);
    if (rc == 0)
        evhttp_set_gencb(http, serve_unknown, NULL);
    hprof_internal_exit();
    if (rc != 0) {
        errno = EEXIST;
        return -1;
    }
    if (hprof_pages_mount(http) != 0 || hprof_stats_mount(http) != 0)
        return -1;
    return 0;
}
