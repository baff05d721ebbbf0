/*
 * hprof_pages: the small endpoints of Go's net/http/pprof.
 *
 *   /debug/pprof/         Go's index page (HTML): every profile with its count and a link to
 *                         its ?debug=1 text, a description of each, and links to the full
 *                         thread dump (threads?debug=2), /debug/memstats and /metrics. Counts
 *                         as Go's: heap and allocs the records (buckets) of the memory
 *                         profile, threads the threads of the process, 0 for the rest.
 *                         The list, the counts and the descriptions are the registry's
 *                         (hprof_registry.c).
 *   /debug/pprof/cmdline  the program's arguments joined by NUL bytes, as Go's
 *                         strings.Join(os.Args, "\x00") (no trailing NUL): /proc/self/cmdline.
 *   /debug/pprof/symbol   pprof's remote symbolization (Go's Symbol handler): a GET without
 *                         addresses answers "num_symbols: 1" (pprof only asks whether there are
 *                         symbols); a POST body, or a GET query, of addresses joined by '+'
 *                         (each read as Go's ParseUint(word, 0, 64): 0x hex, 0 octal, decimal)
 *                         answers "num_symbols: 1" then "0xADDR name" per address with a name,
 *                         the innermost function at that address (inlined callee first), as
 *                         Go's runtime.FuncForPC names it. Unknown addresses are left out.
 *
 * All allocations are inside hprof_internal_enter/exit; the symbolizer's lock is held only
 * while the symbol answer is written.
 */
#include "hprof_registry.h"
#include "hprof_query.h"
#include "hprof_web.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HPROF_CMDLINE_MAX_BYTES (1u << 21) /* bytes: longest command line returned (ARG_MAX) */

/* Minimal HTML escaping for the fixed strings above and the program's name. */
static void add_escaped(struct evbuffer *out, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '<':
            evbuffer_add(out, "&lt;", 4);
            break;
        case '>':
            evbuffer_add(out, "&gt;", 4);
            break;
        case '&':
            evbuffer_add(out, "&amp;", 5);
            break;
        case '"':
            evbuffer_add(out, "&#34;", 5);
            break;
        case '\'':
            evbuffer_add(out, "&#39;", 5);
            break;
        default:
            evbuffer_add(out, s, 1);
        }
    }
}

static void serve_index(struct evhttp_request *req, void *arg)
{
    (void)arg;
    if (hprof_web_refuse(req))
        return;
    hprof_internal_enter();
    struct evbuffer *body = evbuffer_new();
    if (body == NULL) {
        hprof_web_error(req, HTTP_INTERNAL, "out of memory");
        goto out;
    }
    evbuffer_add_printf(body, "<html>\n<head>\n<title>/debug/pprof/</title>\n<style>\n"
                              ".profile-name{\n\tdisplay:inline-block;\n\twidth:6rem;\n}\n"
                              "</style>\n</head>\n<body>\n/debug/pprof/<br>\n<br>\n"
                              "Types of profiles available:\n<table>\n"
                              "<thead><td>Count</td><td>Profile</td></thead>\n");
    for (size_t i = 0; i < hprof_n_profiles; i++) {
        const char *name = hprof_profiles[i].name;
        unsigned long long count = hprof_profiles[i].count ? hprof_profiles[i].count() : 0;
        evbuffer_add_printf(body, "<tr><td>%llu</td><td><a href='%s?debug=1'>%s</a></td></tr>\n",
                            count, name, name);
    }
    evbuffer_add_printf(body, "</table>\n<a href=\"threads?debug=2\">full thread stack dump</a>\n"
                              "<br>\n<a href=\"/debug/memstats\">/debug/memstats</a> (JSON: the "
                              "profiler's estimate, glibc's count, RSS)\n<br>\n"
                              "<a href=\"/metrics\">/metrics</a> (the same figures for "
                              "Prometheus)\n<br>\n<p>\nProfile Descriptions:\n<ul>\n");
    for (size_t i = 0; i < hprof_n_profiles; i++) {
        evbuffer_add_printf(body, "<li><div class=profile-name>%s: </div> ",
                            hprof_profiles[i].name);
        add_escaped(body, hprof_profiles[i].description);
        evbuffer_add_printf(body, "</li>\n");
    }
    evbuffer_add_printf(body, "</ul>\n</p>\n</body>\n</html>");
    hprof_web_reply(req, "text/html; charset=utf-8", NULL, body);
out:
    if (body != NULL)
        evbuffer_free(body);
    hprof_internal_exit();
}

void hprof_pages_serve_cmdline(struct evhttp_request *req, void *arg)
{
    (void)arg;
    hprof_internal_enter();
    struct evbuffer *body = evbuffer_new();
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (body == NULL || fd < 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "cannot read /proc/self/cmdline: %s", strerror(errno));
        hprof_web_error(req, HTTP_INTERNAL, msg);
        goto out;
    }
    while (evbuffer_get_length(body) < HPROF_CMDLINE_MAX_BYTES) {
        int n = evbuffer_read(body, fd, 64 * 1024);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
    }
    /* The kernel ends every argument with a NUL; Go joins them with one: drop the last. */
    size_t len = evbuffer_get_length(body);
    if (len > 0) {
        char last;
        struct evbuffer_ptr at;
        if (evbuffer_ptr_set(body, &at, len - 1, EVBUFFER_PTR_SET) == 0 &&
            evbuffer_copyout_from(body, &at, &last, 1) == 1 && last == '\0') {
            struct evbuffer *trimmed = evbuffer_new();
            if (trimmed != NULL) {
                evbuffer_remove_buffer(body, trimmed, len - 1);
                evbuffer_free(body);
                body = trimmed;
            }
        }
    }
    hprof_web_reply(req, "text/plain; charset=utf-8", NULL, body);
out:
    if (fd >= 0)
        close(fd);
    if (body != NULL)
        evbuffer_free(body);
    hprof_internal_exit();
}

void hprof_pages_serve_symbol(struct evhttp_request *req, void *arg)
{
    (void)arg;
    hprof_internal_enter();
    struct evbuffer *body = evbuffer_new();
    struct hprof_maps maps;
    memset(&maps, 0, sizeof(maps));
    maps.main = -1;
    if (body == NULL) {
        hprof_web_error(req, HTTP_INTERNAL, "out of memory");
        goto out;
    }
    /* Go writes this first whatever the request: pprof only checks it is not 0. */
    evbuffer_add_printf(body, "num_symbols: 1\n");
    const char *input;
    size_t input_len;
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        input_len = evbuffer_get_length(in);
        input = (const char *)evbuffer_pullup(in, -1);
    } else {
        input = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
        input_len = input != NULL ? strlen(input) : 0;
    }
    if (input != NULL && input_len > 0) {
        (void)hprof_maps_read(&maps);
        (void)hprof_sym_begin(&maps);
        for (size_t at = 0; at < input_len;) {
            const char *plus = memchr(input + at, '+', input_len - at);
            size_t word_len = plus != NULL ? (size_t)(plus - (input + at)) : input_len - at;
            uint64_t pc = hprof_query_address(input + at, word_len);
            if (pc != 0) {
                struct hprof_symbol sym;
                hprof_sym_lookup(pc, &sym);
                if (sym.n_frames > 0 && sym.frames[0].name[0] != '\0')
                    evbuffer_add_printf(body, "%#" PRIx64 " %s\n", pc, sym.frames[0].name);
            }
            at += word_len + 1;
        }
        hprof_sym_end();
    }
    hprof_web_reply(req, "text/plain; charset=utf-8", NULL, body);
out:
    hprof_maps_free(&maps);
    if (body != NULL)
        evbuffer_free(body);
    hprof_internal_exit();
}

int hprof_pages_mount(struct evhttp *http)
{
    hprof_internal_enter();
    int rc = evhttp_set_cb(http, "/debug/pprof/", serve_index, NULL);
    hprof_internal_exit();
    if (rc != 0)
        errno = EEXIST;
    return rc == 0 ? 0 : -1;
}
