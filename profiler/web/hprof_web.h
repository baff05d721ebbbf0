/*
 * hprof_web: the interfaces between the files of the debug surface (the HTTP endpoints that
 * Go's net/http/pprof serves, and /debug/memstats and /metrics).
 *
 *   hprof_router.c   hprof_http_mount: one route per entry of the profile registry
 *                    (hprof_registry.h), the index, Go's redirect and "Unknown profile";
 *   hprof_registry.c the table of profiles, and the heap and allocs writers;
 *   hprof_http.c     the reply and parameter helpers every endpoint uses (Go's error shape);
 *   hprof_delta.c    ?seconds=N: two snapshots N seconds apart on an event-loop timer, diffed;
 *   hprof_text.c     the legacy text formats pprof reads (heap profile: ..., and count profiles
 *                    such as threads profile: ...), with symbolized "#" lines and the
 *                    MAPPED_LIBRARIES: section;
 *   hprof_threads_http.c  the threads profile's writers (the engine is collect/);
 *   hprof_cpu_http.c /debug/pprof/profile over the CPU engine (collect/hprof_cpu.c);
 *   hprof_pages.c    /debug/pprof/, /debug/pprof/symbol and /debug/pprof/cmdline;
 *   hprof_stats.c    the figures (profiler, glibc, process, registered sources) as
 *                    /debug/memstats JSON and /metrics in Prometheus' text format;
 *   hprof_serve.c    HEAPPROF_HTTP (a debug listener on a thread of its own, for preloaded
 *                    programs) and SIGUSR2 (dump a HEAPPROF_FILE profile now).
 *
 * Every handler runs on the event loop of the evhttp it was mounted on (the debug listener's:
 * the main thread of leaky and fixed, or the HEAPPROF_HTTP thread), never on a /process loop.
 * Handlers allocate only between hprof_internal_enter() and hprof_internal_exit(), take the
 * profiler's data as snapshots (short locks) and do the heavy work (symbolizing, encoding)
 * outside any lock that malloc or /process needs.
 */
#ifndef HPROF_WEB_H
#define HPROF_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hprof_output.h"
#include "hprof_threads.h"
#include "hprof_writers.h"

struct evbuffer;
struct evhttp;
struct evhttp_request;

#define HPROF_HTTP_MAX_SECONDS 300 /* longest ?seconds=N of a delta profile, as the CPU profile */

/* ---- hprof_http.c: replies and parameters ---- */

/* First thing in every debug handler: answers and returns true when the request must not reach
 * it: bad framing (400), a method other than GET, HEAD and POST (405), or less than
 * HPROF_WEB_HEADROOM_BYTES of address space left (503, rather than libdw's abort). */
#define HPROF_WEB_HEADROOM_BYTES (32u << 20) /* bytes */
bool hprof_web_refuse(struct evhttp_request *req);

/* Go's serveError: status, Content-Type text/plain, X-Go-Pprof: 1, the text on one line. */
void hprof_web_error(struct evhttp_request *req, int status, const char *text);

/* 200 with body (its contents are moved into the reply), the given Content-Type, and when name
 * is not NULL Go's Content-Disposition: attachment; filename="name". */
void hprof_web_reply(struct evhttp_request *req, const char *content_type, const char *name,
                     struct evbuffer *body);

/* 200 with a buffer of the output half (freed with hprof_output_free once sent), as a binary
 * profile named name. On failure replies 500 and frees buf. */
void hprof_web_reply_profile(struct evhttp_request *req, const char *name, uint8_t *buf,
                             size_t len);

/* debug=N as Go reads it: strconv.Atoi, anything unparsable is 0. */
int hprof_web_debug(struct evhttp_request *req);

/* Go's check of ?seconds=: a positive integer no larger than HPROF_HTTP_MAX_SECONDS. Returns 0
 * with *seconds set, 0 with *seconds = 0 when absent or empty, or -1 after replying 400. */
int hprof_web_seconds(struct evhttp_request *req, long *seconds);

/* ---- hprof_defer.c: a reply that waits ---- */

/* done: the time has passed, reply to req; gone: the client left first (req is NULL: libevent
 * frees it), discard. Exactly one runs, once started. */
typedef void (*hprof_deferred_fn)(struct evhttp_request *req, void *arg);
struct hprof_deferred;
/* NULL (ENOMEM) when it cannot be set up; nothing is armed until start. */
struct hprof_deferred *hprof_deferred_new(struct evhttp_request *req, hprof_deferred_fn done,
                                          hprof_deferred_fn gone, void *arg);
/* Arm the timer (seconds) and the watch on the client. 0, or -1 (then free it). */
int hprof_deferred_start(struct hprof_deferred *d, long seconds);
/* Only for one that was not started, or whose start failed. */
void hprof_deferred_free(struct hprof_deferred *d);
/* Admission of the delta profiles: at most max of one kind waiting at once, counted in *waiting
 * (atomically: two listeners may share it). 0 with a place taken (give it back with
 * hprof_deferred_leave), or -1 after answering 503 "too many delta profiles in progress". */
int hprof_deferred_admit(int *waiting, int max, struct evhttp_request *req);
void hprof_deferred_leave(int *waiting);

/* ---- hprof_delta.c ---- */

/* p1 - p0 per (stack, size), as Go's delta profiles: each of the four values rounded as the
 * profile rounds it, then subtracted; buckets whose four differences are all 0 are dropped.
 * out has p1's time and rate; its buckets are new (release with hprof_snapshot_release).
 * Returns 0 / -1 (ENOMEM). */
int hprof_snapshot_delta(const struct hprof_snapshot *p0, const struct hprof_snapshot *p1,
                         struct hprof_snapshot *out);

/* Answer kind?seconds=N: a snapshot now, another one N seconds later (an evtimer on the
 * request's event base), the difference as a profile named "<name>-delta". A client that
 * goes away cancels. */
void hprof_delta_serve(struct evhttp_request *req, enum hprof_kind kind, const char *name,
                       long seconds);

/* ---- hprof_text.c ---- */

/* Go's legacy heap text (runtime/pprof writeHeapInternal, debug=1): the header, one record per
 * bucket (sorted by in-use bytes), symbolized "#" lines, the figures of /debug/memstats as
 * comments, and MAPPED_LIBRARIES:. Counts are raw sample counts, as pprof's parser expects
 * (it unbiases them itself from heap/2*rate). Returns 0 / -1. */
int hprof_text_heap(const struct hprof_snapshot *snapshot, struct evbuffer *out);

/* The symbolized lines of one stack ("#\t0xPC\tname+0xOFF\tfile:line", a bare "#\t0xPC" when
 * unknown), then an empty line. Call between hprof_sym_begin and hprof_sym_end. */
void hprof_text_stack(struct evbuffer *out, const uintptr_t *pcs, int depth);

/* One stack as Go's goroutine debug=2 traceback: "name(...)\n\tfile:line +0xOFF\n" per frame.
 * Call between hprof_sym_begin and hprof_sym_end. */
void hprof_text_traceback(struct evbuffer *out, const uintptr_t *pcs, int depth);

/* An empty line, the sentinel line and the text of /proc/self/maps. pprof's legacy parser
 * knows two sentinels: "MAPPED_LIBRARIES:" (heap profiles) and "--- Memory map: ---" (count
 * profiles, whose parser stops at the first line starting with "---"). Returns 0 / -1. */
#define HPROF_TEXT_MAPS_HEAP  "MAPPED_LIBRARIES:"
#define HPROF_TEXT_MAPS_COUNT "--- Memory map: ---"
int hprof_text_maps(struct evbuffer *out, const char *sentinel);

/* ---- hprof_threads.c ---- */

/* The text forms: debug < 2 Go's count profile ("threads profile: total N", then the memory
 * map), debug >= 2 one traceback per thread (goroutine?debug=2). Returns 0 / -1. */
int hprof_threads_text(const struct hprof_threads *threads, int debug, struct evbuffer *out);

/* ---- endpoints and writers of registry entries (hprof_registry.c) ---- */

struct hprof_profile;
struct hprof_profile_error;
/* /debug/pprof/profile?seconds=N (hprof_cpu_http.c). */
void hprof_cpu_http_serve(struct evhttp_request *req, void *arg);
/* /debug/pprof/cmdline and /debug/pprof/symbol (hprof_pages.c). */
void hprof_pages_serve_cmdline(struct evhttp_request *req, void *arg);
void hprof_pages_serve_symbol(struct evhttp_request *req, void *arg);
/* The threads profile (hprof_threads_http.c). */
int hprof_threads_write_proto(const struct hprof_profile *p, uint8_t **out, size_t *len,
                              struct hprof_profile_error *err);
int hprof_threads_write_text(const struct hprof_profile *p, int debug, struct evbuffer *out,
                             struct hprof_profile_error *err);

/* ---- hprof_stats.c ---- */

enum hprof_stat_format { HPROF_STATS_JSON, HPROF_STATS_PROMETHEUS, HPROF_STATS_COMMENTS };

/* Every figure (profiler, glibc, process, registered sources) in one of the formats: a JSON
 * object, Prometheus' text exposition format 0.0.4, or "# name = value" comment lines (the
 * heap text profile's trailer). Returns 0 / -1. */
int hprof_stats_write(struct evbuffer *out, enum hprof_stat_format format);

/* ---- hprof_file.c ---- */

/* Write the next HEAPPROF_FILE profile now (SIGUSR2). Returns 0, or -1 (ENOENT without
 * HEAPPROF_FILE, or the error of the write). */
int hprof_file_dump_now(void);

/* ---- mounting (each file its own endpoints) ---- */

int hprof_pages_mount(struct evhttp *http); /* the index */
int hprof_stats_mount(struct evhttp *http);

#endif
