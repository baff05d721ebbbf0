/*
 * The debug surface's pieces without a server: delta profiles (Go's semantics: every value
 * subtracted, zero stacks dropped), the legacy heap text (raw sample counts that pprof's
 * parser unbiases back to our estimates), the figures' registry and its JSON / Prometheus /
 * comment writers, and the threads capture (SIGURG to every thread, blocked threads reported,
 * a program's own SIGURG handler respected). Built against the output half alone
 * (hprof_output_alone: fake snapshots, no interposer).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_collect.h"
#include "heapprof.h"
#include "hprof_web.h"
#include "lc_version.h"
#include "pcodec.h"

/* ---- helpers ---- */

static char *buffer_text(struct evbuffer *b)
{
    size_t len = evbuffer_get_length(b);
    char *s = malloc(len + 1);
    assert_non_null(s);
    evbuffer_copyout(b, s, len);
    s[len] = '\0';
    return s;
}

static struct hprof_bucket bucket(uint64_t size, double allocs, double inuse, uintptr_t pc0,
                                  uintptr_t pc1)
{
    struct hprof_bucket b;
    memset(&b, 0, sizeof(b));
    b.size = size;
    b.alloc_objects = allocs;
    b.alloc_bytes = allocs * (double)size;
    b.inuse_objects = inuse;
    b.inuse_bytes = inuse * (double)size;
    b.depth = 2;
    b.pcs[0] = pc0;
    b.pcs[1] = pc1;
    return b;
}

static const struct hprof_bucket *find(const struct hprof_snapshot *s, uint64_t size, uintptr_t pc0)
{
    for (size_t i = 0; i < s->n_buckets; i++)
        if (s->buckets[i].size == size && s->buckets[i].pcs[0] == pc0)
            return &s->buckets[i];
    return NULL;
}

/* ---- delta ---- */

static void test_delta(void **state)
{
    (void)state;
    struct hprof_bucket b0[] = {
        bucket(64, 10, 4, 0x1000, 0x2000),   /* grows */
        bucket(128, 5, 5, 0x1000, 0x2000),   /* same stack, other size: unchanged */
        bucket(64, 7, 7, 0x3000, 0x2000),    /* frees everything */
        bucket(32, 2.4, 2.4, 0x5000, 0x2000) /* only in p0 (a fake: a table never drops one) */
    };
    struct hprof_bucket b1[] = {
        bucket(64, 7, 0, 0x3000, 0x2000), bucket(64, 25, 9, 0x1000, 0x2000),
        bucket(128, 5, 5, 0x1000, 0x2000), bucket(256, 3, 1, 0x4000, 0x2000), /* new */
    };
    struct hprof_snapshot p0 = {.time_ns = 100, .rate = 512, .n_buckets = 4, .buckets = b0};
    struct hprof_snapshot p1 = {.time_ns = 200, .rate = 512, .n_buckets = 4, .buckets = b1};
    struct hprof_snapshot d;
    assert_int_equal(hprof_snapshot_delta(&p0, &p1, &d), 0);
    assert_int_equal(d.time_ns, 200);
    assert_int_equal(d.rate, 512);
    assert_int_equal(d.n_buckets, 4); /* the unchanged (128, 0x1000) is dropped */
    assert_null(find(&d, 128, 0x1000));
    const struct hprof_bucket *g = find(&d, 64, 0x1000);
    assert_non_null(g);
    assert_true(g->alloc_objects == 15 && g->alloc_bytes == 15 * 64);
    assert_true(g->inuse_objects == 5 && g->inuse_bytes == 5 * 64);
    const struct hprof_bucket *f = find(&d, 64, 0x3000);
    assert_non_null(f);
    assert_true(f->alloc_objects == 0 && f->inuse_objects == -7 && f->inuse_bytes == -7 * 64);
    const struct hprof_bucket *n = find(&d, 256, 0x4000);
    assert_non_null(n);
    assert_true(n->alloc_objects == 3 && n->inuse_bytes == 256);
    const struct hprof_bucket *gone = find(&d, 32, 0x5000);
    assert_non_null(gone);
    /* Rounded as the profile rounds (2.4 -> 2), then negated: 2 objects, 77 bytes (76.8). */
    assert_true(gone->alloc_objects == -2 && gone->inuse_objects == -2);
    assert_true(gone->alloc_bytes == -77);
    hprof_snapshot_release(&d);

    /* Identical snapshots: an empty delta. */
    assert_int_equal(hprof_snapshot_delta(&p1, &p1, &d), 0);
    assert_int_equal(d.n_buckets, 0);
    hprof_snapshot_release(&d);
}

/* ---- heap text ---- */

static void test_text_heap(void **state)
{
    (void)state;
    const uint64_t rate = 4096;
    /* Estimates as the collection half makes them: samples x weight(size). */
    double w1024 = 1.0 / -expm1(-1024.0 / rate), w100 = 1.0 / -expm1(-100.0 / rate);
    struct hprof_bucket b[] = {
        bucket(100, 6 * w100, 1 * w100, 0x1100, 0x2200),    /* 1 live sample of 100 B */
        bucket(1024, 9 * w1024, 5 * w1024, 0x1000, 0x2000), /* 5 live samples of 1024 B */
    };
    struct hprof_snapshot s = {.time_ns = 1, .rate = rate, .n_buckets = 2, .buckets = b};
    struct evbuffer *out = evbuffer_new();
    assert_int_equal(hprof_text_heap(&s, out), 0);
    char *text = buffer_text(out);
    /* Raw counts (pprof unbiases them), heap/2*rate as Go writes, sorted by in-use bytes. */
    assert_true(strncmp(text, "heap profile: 6: 5220 [15: 9816] @ heap/8192\n", 45) == 0);
    const char *first = strstr(text, "\n5: 5120 [9: 9216] @ 0x1001 0x2001\n");
    const char *second = strstr(text, "\n1: 100 [6: 600] @ 0x1101 0x2201\n");
    assert_non_null(first);
    assert_non_null(second);
    assert_true(first < second);
    assert_non_null(strstr(text, "\n#\t0x1000\n")); /* no symbol at a fake PC: the bare form */
    assert_non_null(strstr(text, "\n# inuse_bytes = "));
    const char *maps = strstr(text, "\nMAPPED_LIBRARIES:\n");
    assert_non_null(maps);
    assert_non_null(strstr(maps, "r-xp")); /* /proc/self/maps follows */
    free(text);
    evbuffer_free(out);
}

/* ---- figures ---- */

static void source_a(struct hprof_stat_sink *sink, void *arg)
{
    hprof_stat(sink, "things_total", HPROF_STAT_COUNTER, 42, "Things.\nOn two lines \\ here.");
    hprof_stat(sink, "level_bytes", HPROF_STAT_GAUGE, *(double *)arg, "A level.");
    hprof_stat(sink, "Bad-Name", HPROF_STAT_GAUGE, 1, "skipped");
    hprof_stat(sink, "rss_bytes", HPROF_STAT_GAUGE, 7, "Named like a built-in figure.");
}

static void source_noop(struct hprof_stat_sink *sink, void *arg)
{
    (void)sink;
    (void)arg;
}

static void test_stats(void **state)
{
    (void)state;
    double level = 1.5;
    assert_int_equal(hprof_http_add_stats("test_", source_a, &level), 0);
    struct evbuffer *out = evbuffer_new();

    assert_int_equal(hprof_stats_write(out, HPROF_STATS_JSON), 0);
    char *json = buffer_text(out);
    assert_true(json[0] == '{' && strcmp(json + strlen(json) - 3, "\n}\n") == 0);
    assert_non_null(strstr(json, "\n  \"things_total\": 42"));
    assert_non_null(strstr(json, "\n  \"level_bytes\": 1.5"));
    assert_non_null(strstr(json, "\n  \"rss_bytes\": "));
    assert_non_null(strstr(json, "\n  \"glibc_inuse_bytes\": "));
    /* The peak of the in-use estimate is never below the in-use estimate. */
    const char *inuse_at = strstr(json, "\n  \"inuse_bytes\": ");
    const char *peak_at = strstr(json, "\n  \"peak_inuse_bytes\": ");
    assert_non_null(inuse_at);
    assert_non_null(peak_at);
    assert_true(strtod(peak_at + strlen("\n  \"peak_inuse_bytes\": "), NULL) >=
                strtod(inuse_at + strlen("\n  \"inuse_bytes\": "), NULL));
    assert_null(strstr(json, "Bad-Name"));
    /* A source's figure named like a built-in one keeps its prefix: no duplicate JSON key. */
    assert_non_null(strstr(json, "\n  \"test_rss_bytes\": 7"));
    const char *first = strstr(json, "\n  \"rss_bytes\": ");
    assert_non_null(first);
    assert_null(strstr(first + 1, "\n  \"rss_bytes\": "));
    assert_null(strstr(json, "null")); /* every figure is known on Linux */
    free(json);
    evbuffer_drain(out, evbuffer_get_length(out));

    assert_int_equal(hprof_stats_write(out, HPROF_STATS_PROMETHEUS), 0);
    char *prom = buffer_text(out);
    assert_non_null(strstr(prom, "# HELP test_things_total Things.\\nOn two lines \\\\ here.\n"
                                 "# TYPE test_things_total counter\ntest_things_total 42\n"));
    assert_non_null(strstr(prom, "# TYPE test_level_bytes gauge\ntest_level_bytes 1.5\n"));
    assert_non_null(strstr(prom, "# TYPE heapprof_inuse_bytes gauge\nheapprof_inuse_bytes "));
    assert_non_null(strstr(prom, "# HELP heapprof_peak_inuse_bytes Highest heap bytes in use "));
    assert_non_null(
        strstr(prom, "# TYPE heapprof_peak_inuse_bytes gauge\nheapprof_peak_inuse_bytes "));
    assert_non_null(strstr(prom, "# TYPE heapprof_alloc_bytes_total counter\n"));
    assert_non_null(strstr(prom, "\ntest_rss_bytes 7\n"));
    /* The process figures under the standard names, not under heapprof_ as well. */
    assert_non_null(strstr(prom, "\nprocess_resident_memory_bytes "));
    assert_non_null(strstr(prom, "# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(prom, "\nprocess_start_time_seconds "));
    assert_non_null(strstr(prom, "\nprocess_open_fds "));
    assert_non_null(strstr(prom, "\nprocess_max_fds "));
    assert_non_null(strstr(prom, "\nheapprof_build_info{version=\"" LC_VERSION "\"} 1\n"));
    assert_null(strstr(prom, "\nheapprof_rss_bytes "));
    free(prom);
    evbuffer_drain(out, evbuffer_get_length(out));

    assert_int_equal(hprof_stats_write(out, HPROF_STATS_COMMENTS), 0);
    char *comments = buffer_text(out);
    assert_non_null(strstr(comments, "# things_total = 42\n"));
    free(comments);
    evbuffer_drain(out, evbuffer_get_length(out));

    assert_int_equal(hprof_http_remove_stats(source_a, &level), 0);
    assert_int_equal(hprof_http_remove_stats(source_a, &level), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(hprof_stats_write(out, HPROF_STATS_JSON), 0);
    char *after = buffer_text(out);
    assert_null(strstr(after, "things_total"));
    free(after);
    evbuffer_free(out);

    /* At most 16 sources; bad arguments refused. */
    int n = 0;
    while (hprof_http_add_stats("x_", source_noop, (void *)(intptr_t)(n + 1)) == 0)
        n++;
    assert_int_equal(n, 16);
    assert_int_equal(errno, ENOSPC);
    for (int i = 0; i < n; i++)
        assert_int_equal(hprof_http_remove_stats(source_noop, (void *)(intptr_t)(i + 1)), 0);
    assert_int_equal(hprof_http_add_stats(NULL, source_noop, NULL), -1);
    assert_int_equal(errno, EINVAL);
}

/* ---- threads ---- */

#define PARKED 3

static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cond = PTHREAD_COND_INITIALIZER;
static int parked, released;

/* Where the parked threads wait: their captured stacks must name it. */
__attribute__((noinline)) static void park_here(void)
{
    pthread_mutex_lock(&park_lock);
    parked++;
    pthread_cond_broadcast(&park_cond);
    while (!released)
        pthread_cond_wait(&park_cond, &park_lock); /* EINTR-proof: SIGURG does not wake it */
    pthread_mutex_unlock(&park_lock);
}

static void *parked_main(void *arg)
{
    intptr_t i = (intptr_t)arg;
    char name[16];
    snprintf(name, sizeof(name), "parked-%d", (int)i);
    pthread_setname_np(pthread_self(), name);
    if (i == PARKED) { /* the last one blocks the signal, as the profiler's threads do */
        sigset_t urg;
        sigemptyset(&urg);
        sigaddset(&urg, SIGURG);
        pthread_sigmask(SIG_BLOCK, &urg, NULL);
    }
    park_here();
    return NULL;
}

static int stack_names(const struct hprof_thread_stack *t, const char *name)
{
    struct hprof_maps maps;
    assert_int_equal(hprof_maps_read(&maps), 0);
    (void)hprof_sym_begin(&maps);
    int found = 0;
    for (int i = 0; i < t->depth && !found; i++) {
        struct hprof_symbol sym;
        hprof_sym_lookup(t->pcs[i], &sym);
        for (unsigned f = 0; f < sym.n_frames; f++)
            found |= strcmp(sym.frames[f].name, name) == 0;
    }
    hprof_sym_end();
    hprof_maps_free(&maps);
    return found;
}

static void program_urg(int sig)
{
    (void)sig;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t threads[PARKED + 1];
    for (intptr_t i = 1; i <= PARKED; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, parked_main, (void *)i), 0);
    pthread_mutex_lock(&park_lock);
    while (parked < PARKED)
        pthread_cond_wait(&park_cond, &park_lock);
    pthread_mutex_unlock(&park_lock);

    struct hprof_threads t;
    assert_int_equal(hprof_threads_capture(&t), 0);
    assert_true(t.n >= PARKED + 1 && t.n == t.n_listed);
    assert_int_equal(hprof_threads_count(), t.n);
    int ok = 0, blocked = 0, self = 0;
    for (size_t i = 0; i < t.n; i++) {
        const struct hprof_thread_stack *s = &t.v[i];
        if (i > 0)
            assert_true(s->tid > t.v[i - 1].tid);
        if (strcmp(s->name, "parked-3") == 0) {
            assert_int_equal(s->status, HPROF_THREAD_BLOCKED);
            assert_int_equal(s->depth, 0);
            blocked++;
        } else if (strncmp(s->name, "parked-", 7) == 0) {
            assert_int_equal(s->status, HPROF_THREAD_OK);
            assert_true(stack_names(s, "park_here"));
            assert_true(stack_names(s, "parked_main"));
            ok++;
        } else if (s->tid == gettid()) {
            /* The collecting thread answers too: it was interrupted inside the capture. */
            assert_int_equal(s->status, HPROF_THREAD_OK);
            assert_true(stack_names(s, "hprof_threads_capture"));
            assert_true(stack_names(s, "test_threads"));
            self++;
        }
    }
    assert_int_equal(ok, PARKED - 1);
    assert_int_equal(blocked, 1);
    assert_int_equal(self, 1);

    /* pprof: threads/count, period 1, one sample per (stack, name) labelled thread=NAME; the
     * blocked thread is in the comments. */
    uint8_t *gz = NULL;
    size_t len = 0;
    assert_int_equal(hprof_threads_encode(&t, &gz, &len), 0);
    pcodec_profile *p = pcodec_decode(gz, len, NULL, 0);
    hprof_output_free(gz);
    assert_non_null(p);
    assert_int_equal(p->n_sample_type, 1);
    assert_string_equal(pcodec_string(p, p->sample_type[0]->type), "threads");
    assert_string_equal(pcodec_string(p, p->sample_type[0]->unit), "count");
    assert_string_equal(pcodec_string(p, p->period_type->type), "threads");
    assert_int_equal(p->period, 1);
    assert_int_equal(p->time_nanos, t.time_ns);
    assert_int_equal(pcodec_total(p, "threads"), (int64_t)t.n - 1);
    int labelled = 0;
    for (size_t i = 0; i < p->n_sample; i++) {
        assert_int_equal(p->sample[i]->n_label, 1);
        assert_string_equal(pcodec_string(p, p->sample[i]->label[0]->key), "thread");
        labelled += strncmp(pcodec_string(p, p->sample[i]->label[0]->str), "parked-", 7) == 0;
        assert_true(p->sample[i]->n_location_id > 0);
    }
    assert_int_equal(labelled, PARKED - 1);
    int commented = 0;
    for (size_t i = 0; i < p->n_comment; i++)
        commented += strstr(pcodec_string(p, p->comment[i]), "\"parked-3\": no stack: it blocks "
                                                             "SIGURG") != NULL;
    assert_int_equal(commented, 1);
    pcodec_free(p);

    /* Text: Go's count profile (debug=1) and one traceback per thread (debug=2). */
    struct evbuffer *out = evbuffer_new();
    assert_int_equal(hprof_threads_text(&t, 1, out), 0);
    char *text = buffer_text(out);
    char want[64];
    snprintf(want, sizeof(want), "threads profile: total %zu\n", t.n - 1);
    assert_true(strncmp(text, want, strlen(want)) == 0);
    assert_non_null(strstr(text, "\n# labels: {\"thread\":\"parked-1\"}\n#\t0x"));
    assert_non_null(strstr(text, "\tpark_here+0x"));
    assert_non_null(strstr(text, "\"parked-3\": no stack: it blocks SIGURG\n"));
    assert_non_null(strstr(text, "\n--- Memory map: ---\n"));
    free(text);
    evbuffer_drain(out, evbuffer_get_length(out));
    assert_int_equal(hprof_threads_text(&t, 2, out), 0);
    text = buffer_text(out);
    for (size_t i = 0; i < t.n; i++) {
        snprintf(want, sizeof(want), "thread %d \"%s\" [", (int)t.v[i].tid, t.v[i].name);
        assert_non_null(strstr(text, want));
    }
    assert_non_null(strstr(text, "\npark_here(...)\n\t"));
    assert_non_null(strstr(text, "(no stack: it blocks SIGURG)"));
    free(text);
    evbuffer_free(out);
    hprof_threads_release(&t);

    /* The program's own SIGURG handler is left alone: no thread is asked. */
    struct sigaction sa, saved;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = program_urg;
    assert_int_equal(sigaction(SIGURG, &sa, &saved), 0);
    assert_int_equal(hprof_threads_capture(&t), 0);
    for (size_t i = 0; i < t.n; i++)
        assert_int_equal(t.v[i].status, HPROF_THREAD_NO_SIGNAL);
    hprof_threads_release(&t);
    struct sigaction now;
    assert_int_equal(sigaction(SIGURG, NULL, &now), 0);
    assert_ptr_equal(now.sa_handler, program_urg);
    /* Back to the default: captured again. */
    sa.sa_handler = SIG_DFL;
    assert_int_equal(sigaction(SIGURG, &sa, NULL), 0);
    assert_int_equal(hprof_threads_capture(&t), 0);
    for (size_t i = 0; i < t.n; i++)
        if (t.v[i].tid == gettid())
            assert_int_equal(t.v[i].status, HPROF_THREAD_OK);
    hprof_threads_release(&t);

    pthread_mutex_lock(&park_lock);
    released = 1;
    pthread_cond_broadcast(&park_cond);
    pthread_mutex_unlock(&park_lock);
    for (int i = 1; i <= PARKED; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(fake_collect_depth(), 0); /* every enter has its exit */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delta),
        cmocka_unit_test(test_text_heap),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_threads),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    hprof_sym_reset();
    return failed;
}
