/*
 * lg_fake_server: a stand-in for leaky/fixed with exactly known heap behaviour, so loadgen's
 * whole pipeline (load, profile download and decoding, memstats, timeline, verdict, diff, plot)
 * is tested without depending on the sampling profiler's noise.
 *
 *   lg_fake_server --mode leak|ttl|notpprof [--ttl-ms N] [--sweep-ms N]
 *
 * GET /process answers 200 and "stores" 1024 bytes. /debug/pprof/heap answers a pprof heap
 * profile built with pcodec: store_put (fake/store.c:42) holds 1024 bytes per stored request
 * (leak: all of them; ttl: those younger than the TTL at the last sweep, a sawtooth), and
 * init_tables (fake/init.c:7) holds a constant 1 MiB. /debug/memstats answers RSS = in-use +
 * 8 MiB. notpprof answers "hello" with 200 on the profile path. Prints the two "listening"
 * lines like the real servers; one event loop, 127.0.0.1 only.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_util.h"
#include "pcodec.h"

#define ENTRY_BYTES 1024
#define BUCKET_NS   (10 * LC_NS_PER_MS) /* request counts are kept per 10 ms */
#define BUCKETS     (60000)             /* 10 minutes of them */

static const char *mode = "leak";
static int64_t ttl_ns = 2 * LC_NS_PER_SEC, sweep_ns = LC_NS_PER_SEC, start_ns;
static uint64_t *buckets;

static void on_process(struct evhttp_request *req, void *arg)
{
    (void)arg;
    int64_t b = (lc_monotonic_ns() - start_ns) / BUCKET_NS;
    if (b >= 0 && b < BUCKETS)
        buckets[b]++;
    struct evbuffer *out = evbuffer_new();
    evbuffer_add_printf(out, "processed\n");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

/* Entries held now: all (leak), or those put after (last sweep - ttl) (ttl). */
static uint64_t held(void)
{
    int64_t now = lc_monotonic_ns() - start_ns;
    int64_t from = 0;
    if (strcmp(mode, "ttl") == 0) {
        int64_t last_sweep = now / sweep_ns * sweep_ns;
        from = last_sweep - ttl_ns;
    }
    uint64_t n = 0;
    for (int64_t b = 0; b < BUCKETS && b * BUCKET_NS <= now; b++)
        if (b * BUCKET_NS >= from)
            n += buckets[b];
    return n;
}

static void on_heap(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *out = evbuffer_new();
    if (strcmp(mode, "notpprof") == 0) {
        evbuffer_add_printf(out, "hello\n");
        evhttp_send_reply(req, 200, "OK", out);
        evbuffer_free(out);
        return;
    }
    char *strings[] = {"",
                       "alloc_objects",
                       "count",
                       "alloc_space",
                       "bytes",
                       "inuse_objects",
                       "inuse_space",
                       "store_put",
                       "fake/store.c",
                       "init_tables",
                       "fake/init.c",
                       "main",
                       "space"};
    Perftools__Profiles__ValueType vt[4], *vtp[4], period_type;
    const int64_t types[4][2] = {{1, 2}, {3, 4}, {5, 2}, {6, 4}};
    for (int i = 0; i < 4; i++) {
        perftools__profiles__value_type__init(&vt[i]);
        vt[i].type = types[i][0];
        vt[i].unit = types[i][1];
        vtp[i] = &vt[i];
    }
    perftools__profiles__value_type__init(&period_type);
    period_type.type = 12;
    period_type.unit = 4;
    Perftools__Profiles__Function fn[3], *fnp[3];
    const int64_t names[3][3] = {{7, 8, 40}, {9, 10, 5}, {11, 10, 1}};
    for (int i = 0; i < 3; i++) {
        perftools__profiles__function__init(&fn[i]);
        fn[i].id = (uint64_t)i + 1;
        fn[i].name = fn[i].system_name = names[i][0];
        fn[i].filename = names[i][1];
        fn[i].start_line = names[i][2];
        fnp[i] = &fn[i];
    }
    Perftools__Profiles__Line line[3], *linep[3];
    Perftools__Profiles__Location loc[3], *locp[3];
    const int64_t lines[3] = {42, 7, 20};
    for (int i = 0; i < 3; i++) {
        perftools__profiles__line__init(&line[i]);
        line[i].function_id = (uint64_t)i + 1;
        line[i].line = lines[i];
        linep[i] = &line[i];
        perftools__profiles__location__init(&loc[i]);
        loc[i].id = (uint64_t)i + 1;
        loc[i].address = 0x401000 + 0x10 * (uint64_t)i;
        loc[i].line = &linep[i];
        loc[i].n_line = 1;
        locp[i] = &loc[i];
    }
    uint64_t n = held();
    uint64_t stack_store[2] = {1, 3}, stack_init[2] = {2, 3};
    int64_t v_store[4] = {(int64_t)n, (int64_t)n * ENTRY_BYTES, (int64_t)n,
                          (int64_t)n * ENTRY_BYTES};
    int64_t v_init[4] = {1, 1 << 20, 1, 1 << 20};
    Perftools__Profiles__Sample s[2], *sp[2];
    for (int i = 0; i < 2; i++) {
        perftools__profiles__sample__init(&s[i]);
        s[i].location_id = i == 0 ? stack_store : stack_init;
        s[i].n_location_id = 2;
        s[i].value = i == 0 ? v_store : v_init;
        s[i].n_value = 4;
        sp[i] = &s[i];
    }
    pcodec_profile p;
    perftools__profiles__profile__init(&p);
    p.sample_type = vtp;
    p.n_sample_type = 4;
    p.sample = sp;
    p.n_sample = 2;
    p.location = locp;
    p.n_location = 3;
    p.function = fnp;
    p.n_function = 3;
    p.string_table = strings;
    p.n_string_table = sizeof(strings) / sizeof(strings[0]);
    p.period_type = &period_type;
    p.period = 1;
    uint8_t *gz;
    size_t len;
    if (pcodec_encode_gzip(&p, &gz, &len) != 0) {
        evhttp_send_error(req, 500, "encode failed");
        evbuffer_free(out);
        return;
    }
    evbuffer_add(out, gz, len);
    free(gz);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/octet-stream");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void on_memstats(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *out = evbuffer_new();
    uint64_t inuse = held() * ENTRY_BYTES + (1 << 20);
    evbuffer_add_printf(out,
                        "{\"profiler\": {\"inuse_bytes\": %llu}, \"glibc\": {\"uordblks\": "
                        "%llu}, \"rss_bytes\": %llu}\n",
                        (unsigned long long)inuse, (unsigned long long)inuse,
                        (unsigned long long)(inuse + (8u << 20)));
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

static int listen_on(struct evhttp *http, const char *what)
{
    struct evhttp_bound_socket *s = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    if (s == NULL)
        return -1;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&ss, &len);
    printf("listening %s http://127.0.0.1:%u\n", what,
           ntohs(((struct sockaddr_in *)&ss)->sin_port));
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--mode") == 0)
            mode = argv[i + 1];
        else if (strcmp(argv[i], "--ttl-ms") == 0)
            ttl_ns = atoll(argv[i + 1]) * LC_NS_PER_MS;
        else if (strcmp(argv[i], "--sweep-ms") == 0)
            sweep_ns = atoll(argv[i + 1]) * LC_NS_PER_MS;
    }
    buckets = calloc(BUCKETS, sizeof(*buckets));
    struct event_base *base = event_base_new();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    if (buckets == NULL || http == NULL)
        return 1;
    start_ns = lc_monotonic_ns();
    evhttp_set_cb(http, "/process", on_process, NULL);
    evhttp_set_cb(http, "/debug/pprof/heap", on_heap, NULL);
    evhttp_set_cb(http, "/debug/memstats", on_memstats, NULL);
    if (listen_on(http, "/process") != 0 || listen_on(http, "/debug") != 0)
        return 1;
    fflush(stdout);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);
    event_base_dispatch(base);
    event_free(sigterm);
    event_free(sigint);
    evhttp_free(http);
    event_base_free(base);
    free(buckets);
    return 0;
}
