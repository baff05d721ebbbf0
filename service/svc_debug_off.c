/*
 * svc_debug_off: the debug listener of a build without the heap profiler. AddressSanitizer and
 * ThreadSanitizer own malloc themselves, so those builds cannot interpose it (CMake leaves
 * libheapprof out); the debug listener still opens, and says why it has nothing to serve.
 */
#include "svc.h"

#include "lc_http.h"

#include <event2/buffer.h>
#include <event2/http.h>

static void handle_no_profiler(struct evhttp_request *req, void *arg)
{
    (void)arg;
    if (lc_http_refuse(req, LC_HTTP_GET | LC_HTTP_HEAD | LC_HTTP_POST))
        return;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; charset=utf-8");
    evbuffer_add_printf(evhttp_request_get_output_buffer(req),
                        "not found: %s (this is a sanitizer build, without the heap profiler)\n",
                        evhttp_request_get_uri(req));
    lc_http_send(req, 404, "Not Found", NULL);
}

int svc_debug_mount(struct evhttp *debug_http, struct store *store)
{
    (void)store;
    evhttp_set_gencb(debug_http, handle_no_profiler, NULL);
    return 0;
}

void svc_debug_unmount(struct store *store)
{
    (void)store;
}
