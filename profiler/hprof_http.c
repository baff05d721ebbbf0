/*
 * hprof_http: /debug/pprof/heap and /debug/pprof/allocs on an evhttp the caller owns, answering
 * as Go's net/http/pprof does (same headers, same error shape), so that `go tool pprof URL`,
 * curl and loadgen treat a C service like a Go one.
 *
 * Model: each request takes a snapshot (the bucket table's lock is held only for the copy),
 * then symbolizes and encodes it on the debug listener's own event loop, outside any lock that
 * malloc or the /process loops need: a slow profile delays other debug requests, never
 * /process. The encoded profile is handed to libevent by reference (no copy) and freed by
 * libevent's cleanup callback once sent.
 *
 * Errors: 400/404/500 with Content-Type text/plain, X-Go-Pprof: 1 and a one-line reason, as
 * Go's serveError writes them. Parameters Go knows but we do not serve yet (debug=N text,
 * seconds=N delta) get a 400 that says so, rather than a profile that is not what was asked;
 * parameters Go ignores (gc, and anything unknown or malformed) are ignored. All allocations are
 * inside hprof_internal_enter/exit.
 */
#include "hprof_output.h"
#include "hprof_cpu.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct endpoint {
    const char *path;
    const char *name; /* the profile's name, as in Content-Disposition */
    enum hprof_kind kind;
};

static const struct endpoint endpoints[] = {
    {"/debug/pprof/heap", "heap", HPROF_HEAP},
    {"/debug/pprof/allocs", "allocs", HPROF_ALLOCS},
};

/* Go's serveError: text/plain, X-Go-Pprof: 1, the reason on one line. */
static void serve_error(struct evhttp_request *req, int status, const char *reason,
                        const char *text)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    evhttp_remove_header(headers, "Content-Disposition");
    evhttp_add_header(headers, "Content-Type", "text/plain; charset=utf-8");
    evhttp_add_header(headers, "X-Go-Pprof", "1");
    evhttp_add_header(headers, "X-Content-Type-Options", "nosniff");
    struct evbuffer *body = evbuffer_new();
    if (body != NULL)
        evbuffer_add_printf(body, "%s\n", text);
    evhttp_send_reply(req, status, reason, body);
    if (body != NULL)
        evbuffer_free(body);
}

static void release_profile(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    hprof_output_free((void *)data);
}

/* The first value of parameter name in a query string, decoded, as Go's r.FormValue reads it:
 * "k" alone is k="", a malformed part is skipped rather than failing the whole query. Writes
 * into out (truncated to len); returns 1 if present, 0 if not. */
static int query_param(const char *query, const char *name, char *out, size_t len)
{
    size_t name_len = strlen(name);
    for (const char *p = query; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '&');
        size_t part = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', part);
        size_t key_len = eq != NULL ? (size_t)(eq - p) : part;
        if (key_len == name_len && memcmp(p, name, name_len) == 0) {
            char raw[256];
            size_t value_len = eq != NULL ? part - key_len - 1 : 0;
            snprintf(raw, sizeof(raw), "%.*s", (int)value_len, eq != NULL ? eq + 1 : "");
            char *decoded = evhttp_uridecode(raw, 1, NULL);
            const char *value = decoded != NULL ? decoded : raw;
            size_t n = strnlen(value, len - 1); /* a longer value is cut: never a number */
            memcpy(out, value, n);
            out[n] = '\0';
            free(decoded);
            return 1;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

static void serve_profile(struct evhttp_request *req, void *arg)
{
    const struct endpoint *ep = arg;
    hprof_internal_enter();
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    char msg[256], seconds[64], debug[64];
    if (query_param(q, "seconds", seconds, sizeof(seconds)) && seconds[0] != '\0') {
        snprintf(msg, sizeof(msg),
                 "%s: delta profiles (?seconds=N) are not served yet; fetch two profiles and "
                 "compare them with pprof -base",
                 ep->name);
        serve_error(req, HTTP_BADREQUEST, "Bad Request", msg);
        goto out;
    }
    /* Go reads debug with Atoi and treats anything unparsable as 0. */
    if (query_param(q, "debug", debug, sizeof(debug)) && atoi(debug) != 0) {
        snprintf(msg, sizeof(msg),
                 "%s: the text format (?debug=%d) is not served yet; use the binary profile "
                 "(no debug parameter) with go tool pprof",
                 ep->name, atoi(debug));
        serve_error(req, HTTP_BADREQUEST, "Bad Request", msg);
        goto out;
    }

    uint8_t *profile = NULL;
    size_t len = 0;
    if (hprof_pprof_take(ep->kind, &profile, &len) != 0) {
        snprintf(msg, sizeof(msg), "Could not write %s profile: %s", ep->name, strerror(errno));
        serve_error(req, HTTP_INTERNAL, "Internal Server Error", msg);
        goto out;
    }
    struct evbuffer *body = evbuffer_new();
    if (body == NULL || evbuffer_add_reference(body, profile, len, release_profile, NULL) != 0) {
        hprof_output_free(profile);
        if (body != NULL)
            evbuffer_free(body);
        serve_error(req, HTTP_INTERNAL, "Internal Server Error", "out of memory");
        goto out;
    }
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    char disposition[64];
    snprintf(disposition, sizeof(disposition), "attachment; filename=\"%s\"", ep->name);
    evhttp_add_header(headers, "Content-Type", "application/octet-stream");
    evhttp_add_header(headers, "Content-Disposition", disposition);
    evhttp_add_header(headers, "X-Content-Type-Options", "nosniff");
    evhttp_send_reply(req, HTTP_OK, "OK", body);
    evbuffer_free(body); /* the reply moved its contents; the reference travels with them */
out:
    hprof_internal_exit();
}

int hprof_http_mount(struct evhttp *http)
{
    if (http == NULL) {
        errno = EINVAL;
        return -1;
    }
    int rc = 0;
    hprof_internal_enter();
    for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
        if (evhttp_set_cb(http, endpoints[i].path, serve_profile, (void *)&endpoints[i]) != 0) {
            errno = EEXIST;
            rc = -1;
            break;
        }
    }
    hprof_internal_exit();
    if (rc == 0)
        rc = hprof_cpu_http_mount(http); /* /debug/pprof/profile: hprof_cpu.c */
    return rc;
}
