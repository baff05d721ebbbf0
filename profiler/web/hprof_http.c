/*
 * hprof_http: the reply and parameter helpers of the debug surface, answering as Go's
 * net/http/pprof does (same headers and error shape, parameters read as Go reads them), so that
 * `go tool pprof URL`, curl, Prometheus and loadgen treat a C service like a Go one. Every
 * endpoint calls into these; none of them calls an endpoint (the router is hprof_router.c).
 *
 * Profiles are handed to libevent by reference (no copy) and freed by libevent's cleanup
 * callback once sent. Parameters (read by hprof_query.c): debug=N with Atoi (unparsable is 0);
 * seconds=N with ParseInt, 1..HPROF_HTTP_MAX_SECONDS. Errors: Content-Type text/plain, X-Go-Pprof:
 * 1 and a one-line reason, as Go's serveError writes them. All allocations are inside
 * hprof_internal_enter/exit.
 */
#include "hprof_web.h"
#include "hprof_query.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <sys/mman.h>

#include "lc_http.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool hprof_web_refuse(struct evhttp_request *req)
{
    if (lc_http_refuse(req, LC_HTTP_GET | LC_HTTP_HEAD | LC_HTTP_POST))
        return true;
    /* Out of memory, libdw asserts rather than fail (elfutils' concurrent hash), and encoding
     * a profile needs some room: ask the kernel for the headroom first (mmap, not malloc: the
     * probe is neither sampled nor kept), and answer 503 without it. */
    void *probe = mmap(NULL, HPROF_WEB_HEADROOM_BYTES, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (probe == MAP_FAILED) {
        hprof_web_error(req, HTTP_SERVUNAVAIL, "out of memory: try again later");
        return true;
    }
    munmap(probe, HPROF_WEB_HEADROOM_BYTES);
    return false;
}

void hprof_web_error(struct evhttp_request *req, int status, const char *text)
{
    hprof_internal_enter();
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    evhttp_remove_header(headers, "Content-Disposition");
    evhttp_remove_header(headers, "Content-Type");
    evhttp_add_header(headers, "Content-Type", "text/plain; charset=utf-8");
    evhttp_add_header(headers, "X-Go-Pprof", "1");
    evhttp_add_header(headers, "X-Content-Type-Options", "nosniff");
    struct evbuffer *body = evbuffer_new();
    if (body != NULL)
        evbuffer_add_printf(body, "%s\n", text);
    lc_http_send(req, status, NULL, body); /* NULL: libevent's reason phrase for status */
    if (body != NULL)
        evbuffer_free(body);
    hprof_internal_exit();
}

void hprof_web_reply(struct evhttp_request *req, const char *content_type, const char *name,
                     struct evbuffer *body)
{
    hprof_internal_enter();
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type", content_type);
    if (name != NULL) {
        char disposition[96];
        snprintf(disposition, sizeof(disposition), "attachment; filename=\"%s\"", name);
        evhttp_add_header(headers, "Content-Disposition", disposition);
    }
    evhttp_add_header(headers, "X-Content-Type-Options", "nosniff");
    lc_http_send(req, HTTP_OK, "OK", body); /* HEAD: the length, no body */
    hprof_internal_exit();
}

static void release_profile(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    hprof_output_free((void *)data);
}

void hprof_web_reply_profile(struct evhttp_request *req, const char *name, uint8_t *buf, size_t len)
{
    hprof_internal_enter();
    struct evbuffer *body = evbuffer_new();
    if (body == NULL || evbuffer_add_reference(body, buf, len, release_profile, NULL) != 0) {
        hprof_output_free(buf);
        hprof_web_error(req, HTTP_INTERNAL, "out of memory");
    } else {
        hprof_web_reply(req, "application/octet-stream", name, body);
    }
    if (body != NULL)
        evbuffer_free(body); /* the reply moved its contents; the reference travels with them */
    hprof_internal_exit();
}

static const char *request_query(struct evhttp_request *req)
{
    return evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
}

int hprof_web_debug(struct evhttp_request *req)
{
    return hprof_query_debug(request_query(req));
}

int hprof_web_seconds(struct evhttp_request *req, long *seconds)
{
    int rc = hprof_query_seconds(request_query(req), HPROF_HTTP_MAX_SECONDS, seconds);
    if (rc == -1) {
        hprof_web_error(req, HTTP_BADREQUEST,
                        "invalid value for \"seconds\" - must be a positive integer");
    } else if (rc == -2) {
        char msg[128];
        snprintf(msg, sizeof(msg), "profile duration exceeds the server's limit of %d seconds",
                 HPROF_HTTP_MAX_SECONDS);
        hprof_web_error(req, HTTP_BADREQUEST, msg);
    }
    return rc == 0 ? 0 : -1;
}
