/*
 * bench_pprof: what a heap profile costs to produce, and what the output half keeps in memory.
 *
 * Part 1, the encoder on hand-built snapshots (the real library's hprof_pprof_encode): N
 * distinct stacks of 16 frames whose PCs are spread over the code of the loaded objects (libc,
 * libdw, libevent, this program), so symbolizing is real work: a cold profile (symbolizer
 * reset: libdw opens every module, every PC is resolved), a warm one (every PC cached, the
 * common case of a server profiled again and again), and one without symbols (protobuf + gzip
 * alone). Then the symbolizer's memory per cached PC.
 *
 * Part 2, end to end: the real interposer at HEAPPROF_RATE=1 records N distinct stacks (a
 * recursion whose branch at each level is one bit of the stack's number, so every stack is a
 * different path), and /debug/pprof/heap is fetched over HTTP on 127.0.0.1 from an evhttp
 * served by a thread of its own: time to the last byte, first (cold) and median (warm).
 *
 *   bench_pprof [--runs N]      (re-executes itself with HEAPPROF_RATE=1 if needed)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "heapprof.h"
#include "hprof_output.h"
#include "lc_util.h"

#define BENCH_DEPTH       16  /* frames per fake stack */
#define BENCH_MAX_RUNS    100 /* warm runs at most */
#define BENCH_LEVELS      14  /* recursion levels of part 2: 2^14 = 16384 distinct paths */
#define BENCH_BLOCK_BYTES 64  /* bytes per allocation of part 2 */

static int runs = 11;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t median(int64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_i64);
    return v[n / 2];
}

/* ---- part 1 ---- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* n_pcs PCs spread evenly over the code of the file-backed executable mappings. */
static uintptr_t *pc_pool(size_t n_pcs)
{
    struct hprof_maps maps;
    if (hprof_maps_read(&maps) != 0)
        return NULL;
    uint64_t total = 0;
    for (size_t i = 0; i < maps.n; i++)
        if (maps.v[i].path[0] == '/')
            total += maps.v[i].limit - maps.v[i].start;
    uintptr_t *pool = malloc(n_pcs * sizeof(*pool));
    uint64_t step = total / n_pcs, at = step / 2;
    size_t k = 0;
    for (size_t i = 0; i < maps.n && pool != NULL && k < n_pcs; i++) {
        const struct hprof_mapping *m = &maps.v[i];
        if (m->path[0] != '/')
            continue;
        uint64_t len = m->limit - m->start;
        while (at < len && k < n_pcs) {
            pool[k++] = m->start + at;
            at += step;
        }
        at -= len;
    }
    while (pool != NULL && k < n_pcs) /* rounding: repeat the last one */
        pool[k] = pool[k - 1], k++;
    hprof_maps_free(&maps);
    return pool;
}

static void fake_snapshot(struct hprof_snapshot *snap, size_t n_stacks, const uintptr_t *pool,
                          size_t n_pcs)
{
    uint64_t seed = 42;
    snap->time_ns = lc_realtime_ns();
    snap->rate = 524288;
    snap->n_buckets = n_stacks;
    snap->buckets = calloc(n_stacks, sizeof(*snap->buckets));
    for (size_t i = 0; i < n_stacks; i++) {
        struct hprof_bucket *b = &snap->buckets[i];
        b->size = 16 + splitmix(&seed) % 4096;
        b->alloc_objects = 1.0 + (double)(splitmix(&seed) % 1000);
        b->alloc_bytes = b->alloc_objects * (double)b->size;
        b->inuse_objects = b->alloc_objects / 2;
        b->inuse_bytes = b->inuse_objects * (double)b->size;
        b->depth = BENCH_DEPTH;
        b->pcs[0] = pool[i % n_pcs]; /* distinct leaves first, then shared callers */
        for (int j = 1; j < BENCH_DEPTH; j++)
            b->pcs[j] = pool[splitmix(&seed) % n_pcs];
    }
}

static int64_t time_encode(const struct hprof_snapshot *snap, int symbolize, size_t *len)
{
    uint8_t *out = NULL;
    int64_t t0 = lc_monotonic_ns();
    if (hprof_pprof_encode(snap, HPROF_HEAP, NULL, symbolize, &out, len) != 0) {
        perror("hprof_pprof_encode");
        exit(1);
    }
    int64_t t = lc_monotonic_ns() - t0;
    hprof_output_free(out);
    return t;
}

static void part1(size_t n_stacks)
{
    size_t n_pcs = n_stacks * 2;
    uintptr_t *pool = pc_pool(n_pcs);
    if (pool == NULL) {
        perror("pc_pool");
        exit(1);
    }
    struct hprof_snapshot snap;
    fake_snapshot(&snap, n_stacks, pool, n_pcs);
    size_t len = 0;
    int64_t warm[BENCH_MAX_RUNS], bare[BENCH_MAX_RUNS];
    hprof_sym_reset();
    int64_t cold = time_encode(&snap, 1, &len);
    for (int r = 0; r < runs; r++)
        warm[r] = time_encode(&snap, 1, &len);
    size_t bare_len = 0;
    for (int r = 0; r < runs; r++)
        bare[r] = time_encode(&snap, 0, &bare_len);
    struct hprof_sym_stats st;
    hprof_sym_get_stats(&st);
    printf("encode  %6zu stacks x %d frames, %6zu PCs: cold %8.1f ms  warm %7.2f ms  "
           "no-symbols %7.2f ms  size %7zu B (%.0f B/stack)\n",
           n_stacks, BENCH_DEPTH, n_pcs, cold / 1e6, median(warm, runs) / 1e6,
           median(bare, runs) / 1e6, len, (double)len / (double)n_stacks);
    printf("symbols %6llu PCs cached, %6llu frames: %5.1f B per cached PC (table + frames + "
           "strings), strings %llu B\n",
           (unsigned long long)st.entries, (unsigned long long)st.frames,
           st.entries ? (double)st.table_bytes / (double)st.entries : 0.0,
           (unsigned long long)st.string_bytes);
    free(snap.buckets);
    free(pool);
}

/* ---- part 2 ---- */

static void *volatile *blocks;
static size_t n_blocks;

/* Two call sites per level: the path taken spells the stack's number in binary. */
__attribute__((noinline)) static void grow(int level, unsigned bits);

__attribute__((noinline)) static void grow_one(int level, unsigned bits)
{
    grow(level + 1, bits >> 1);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void grow_zero(int level, unsigned bits)
{
    grow(level + 1, bits >> 1);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void grow(int level, unsigned bits)
{
    if (level == BENCH_LEVELS) {
        blocks[n_blocks++] = malloc(BENCH_BLOCK_BYTES);
        return;
    }
    if (bits & 1)
        grow_one(level, bits);
    else
        grow_zero(level, bits);
    __asm__ volatile("" ::: "memory");
}

struct server {
    struct event_base *base;
    struct evhttp *http;
    int port;
    pthread_t thread;
};

static void *serve(void *arg)
{
    struct server *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

/* GET path, read to EOF; returns ns to the last byte, the body length in *len. */
static int64_t fetch(int port, const char *path, size_t *len)
{
    int64_t t0 = lc_monotonic_ns();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (void *)&sin, sizeof(sin)) != 0) {
        perror("connect");
        exit(1);
    }
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        perror("write");
        exit(1);
    }
    static char buf[1 << 16];
    size_t total = 0;
    ssize_t got;
    while ((got = read(fd, buf, sizeof(buf))) > 0)
        total += (size_t)got;
    close(fd);
    *len = total;
    return lc_monotonic_ns() - t0;
}

static void part2(struct server *s, size_t target)
{
    for (unsigned i = (unsigned)n_blocks; n_blocks < target; i++)
        grow(0, i);
    size_t len = 0;
    hprof_sym_reset();
    int64_t cold = fetch(s->port, "/debug/pprof/heap", &len);
    int64_t warm[BENCH_MAX_RUNS];
    for (int r = 0; r < runs; r++)
        warm[r] = fetch(s->port, "/debug/pprof/heap", &len);
    struct hprof_totals t;
    hprof_get_totals(&t);
    struct hprof_sym_stats st;
    hprof_sym_get_stats(&st);
    printf("serve   %6zu stacks (real table, %llu buckets, ~%d frames): GET /debug/pprof/heap "
           "cold %7.1f ms  warm %7.2f ms  %zu B; profiler overhead %llu B, symbols %llu B\n",
           target, (unsigned long long)t.buckets, BENCH_LEVELS * 2 + 4, cold / 1e6,
           median(warm, runs) / 1e6, len, (unsigned long long)t.overhead_bytes,
           (unsigned long long)st.table_bytes);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        uint64_t n;
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc &&
            lc_parse_u64(argv[i + 1], 1, BENCH_MAX_RUNS, &n) == 0) {
            runs = (int)n;
            i++;
        } else {
            fprintf(stderr, "usage: bench_pprof [--runs 1..%d]\n", BENCH_MAX_RUNS);
            return 2;
        }
    }
    if (runs < 1 || runs > BENCH_MAX_RUNS)
        runs = 11;
    struct hprof_totals totals;
    hprof_get_totals(&totals);
    if (totals.rate != 1) {
        /* Part 2 needs every allocation recorded, and the rate is read at the first one. The
         * profiler took its HEAPPROF_* variables out of environ at start (so that children do
         * not inherit them): ask it for the rate in force, not getenv, or this exec loops. */
        if (getenv("BENCH_PPROF_REEXEC") != NULL) {
            fprintf(stderr, "bench_pprof: HEAPPROF_RATE=1 did not take (rate %llu)\n",
                    (unsigned long long)totals.rate);
            return 1;
        }
        setenv("HEAPPROF_RATE", "1", 1);
        setenv("BENCH_PPROF_REEXEC", "1", 1);
        execv("/proc/self/exe", argv);
        perror("execv");
        return 1;
    }
    part1(1000);
    part1(10000);

    blocks = calloc(10000, sizeof(void *));
    struct server s;
    evthread_use_pthreads();
    s.base = event_base_new();
    s.http = evhttp_new(s.base);
    if (s.base == NULL || s.http == NULL || hprof_http_mount(s.http) != 0) {
        fprintf(stderr, "cannot set up the server\n");
        return 1;
    }
    struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(s.http, "127.0.0.1", 0);
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    if (bound == NULL || getsockname(evhttp_bound_socket_get_fd(bound), (void *)&sin, &slen) != 0) {
        perror("bind");
        return 1;
    }
    s.port = ntohs(sin.sin_port);
    pthread_create(&s.thread, NULL, serve, &s);
    part2(&s, 1000);
    part2(&s, 10000);
    event_base_loopbreak(s.base);
    pthread_join(s.thread, NULL);
    return 0;
}
