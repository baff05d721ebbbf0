/*
 * hprof_threads_http: /debug/pprof/threads over the threads engine (collect/hprof_threads.c):
 * the pprof form, Go's count-profile text (debug=1) and the full dump (debug=2). Refused with
 * 503 when the program handles SIGURG itself. Served by the router (hprof_router.c) through
 * its registry entry. All allocations are inside
 * hprof_internal_enter/exit.
 */
#include "hprof_registry.h"
#include "hprof_web.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- text ---- */

/* A label value as Go's labelMap prints it: a JSON-like quoted string. */
static void add_quoted(struct evbuffer *out, const char *s)
{
    evbuffer_add(out, "\"", 1);
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            evbuffer_add_printf(out, "\\%c", ch);
        else if (ch < 0x20)
            evbuffer_add_printf(out, "\\u%04x", ch);
        else
            evbuffer_add(out, s, 1);
    }
    evbuffer_add(out, "\"", 1);
}

int hprof_threads_text(const struct hprof_threads *t, int debug, struct evbuffer *out)
{
    hprof_internal_enter();
    int rc = -1;
    struct hprof_maps maps;
    memset(&maps, 0, sizeof(maps));
    maps.main = -1;
    size_t n_groups = 0, captured = 0;
    struct hprof_thread_group *groups = hprof_threads_group(t, &n_groups);
    if (groups == NULL)
        goto out;
    for (size_t i = 0; i < n_groups; i++)
        captured += (size_t)groups[i].count;
    (void)hprof_maps_read(&maps);
    (void)hprof_sym_begin(&maps);
    bool counts = debug < 2; /* Go: 2 and more is the full dump */
    if (counts) {
        evbuffer_add_printf(out, "threads profile: total %zu\n", captured);
        for (size_t i = 0; i < n_groups; i++) {
            const struct hprof_thread_stack *s = groups[i].first;
            evbuffer_add_printf(out, "%lld @", groups[i].count);
            for (int f = 0; f < s->depth; f++)
                evbuffer_add_printf(out, " %#" PRIxPTR, s->pcs[f] + 1); /* pprof subtracts 1 */
            evbuffer_add_printf(out, "\n# labels: {\"thread\":");
            add_quoted(out, s->name);
            evbuffer_add_printf(out, "}\n");
            hprof_text_stack(out, s->pcs, s->depth);
        }
    } else {
        for (size_t i = 0; i < t->n; i++) {
            const struct hprof_thread_stack *s = &t->v[i];
            evbuffer_add_printf(out, "thread %d ", (int)s->tid);
            add_quoted(out, s->name);
            evbuffer_add_printf(out, " [%s]:\n", s->state);
            if (s->status != HPROF_THREAD_OK)
                evbuffer_add_printf(out, "(%s)\n\n", hprof_thread_status_text(s->status));
            else
                hprof_text_traceback(out, s->pcs, s->depth);
        }
    }
    hprof_sym_end();
    rc = 0;
    if (counts) {
        for (size_t i = 0; i < t->n; i++)
            if (t->v[i].status != HPROF_THREAD_OK)
                evbuffer_add_printf(out, "# thread %d \"%s\": %s\n", (int)t->v[i].tid, t->v[i].name,
                                    hprof_thread_status_text(t->v[i].status));
        if (t->n_listed > t->n)
            evbuffer_add_printf(out, "# %zu more threads not captured (at most %d)\n",
                                t->n_listed - t->n, HPROF_THREADS_MAX);
        rc = hprof_text_maps(out, HPROF_TEXT_MAPS_COUNT);
    }
out:
    hprof_maps_free(&maps);
    free(groups);
    hprof_internal_exit();
    return rc;
}

/* ---- the registry's writers ---- */

/* Capture every thread, or fill err: 500 when the capture fails, 503 when the program handles
 * SIGURG itself (no thread was asked). */
static int capture(struct hprof_threads *t, struct hprof_profile_error *err)
{
    if (hprof_threads_capture(t) != 0) {
        snprintf(err->msg, sizeof(err->msg), "Could not capture the threads: %s", strerror(errno));
        return -1;
    }
    if (t->n > 0 && t->v[0].status == HPROF_THREAD_NO_SIGNAL) {
        err->status = HTTP_SERVUNAVAIL;
        snprintf(err->msg, sizeof(err->msg),
                 "threads profile unavailable: the program handles SIGURG itself");
        return -1;
    }
    return 0;
}

int hprof_threads_write_proto(const struct hprof_profile *p, uint8_t **out, size_t *len,
                              struct hprof_profile_error *err)
{
    (void)p;
    struct hprof_threads t;
    memset(&t, 0, sizeof(t));
    int rc = capture(&t, err);
    if (rc == 0)
        rc = hprof_threads_encode(&t, out, len); /* errno: the generic message */
    int saved = errno;
    hprof_threads_release(&t);
    errno = saved;
    return rc;
}

int hprof_threads_write_text(const struct hprof_profile *p, int debug, struct evbuffer *out,
                             struct hprof_profile_error *err)
{
    (void)p;
    struct hprof_threads t;
    memset(&t, 0, sizeof(t));
    int rc = capture(&t, err);
    if (rc == 0 && (rc = hprof_threads_text(&t, debug, out)) != 0)
        snprintf(err->msg, sizeof(err->msg), "Could not write threads profile");
    hprof_threads_release(&t);
    return rc;
}
