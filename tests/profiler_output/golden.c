/*
 * golden: the profiles' bytes pinned across rewrites of the encoder.
 *
 * A fixed snapshot (fixed PCs, sizes and estimates, including a zero size, shared PCs, a PC
 * outside every mapping and estimates that round), fixed mappings (parsed from a fixed maps
 * text, one with a build-id) and no symbolization (symbols depend on the build, the encoding
 * must not): the heap, allocs and delta (duration 3 s) profiles must be byte for byte the
 * files in golden/, which were written by the encoder as it was before the generic pprof
 * builder (issue 12): `golden write DIR` wrote them, `golden check DIR` compares.
 *
 * The CPU and threads profiles cannot be byte for byte the old ones, and this says why: the old
 * code encoded them as heap profiles, decoded them and encoded them again, so their string
 * tables kept the heap profile's unused strings ("space", "alloc_objects", "inuse_space"...)
 * and their indices were shifted by them. Their fixtures (cpu.pb.gz, threads.pb.gz) were
 * written by the new writers from fixed engine data; check_content below verifies, decoded,
 * what the old output also carried (types, period, times, values, labels, comments, every
 * sample's addresses), and that no string is unused.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hprof_output.h"
#include "hprof_web.h"
#include "hprof_writers.h"
#include "pcodec.h"

static const char maps_text[] =
    "55d0a0000000-55d0a0001000 r--p 00000000 fd:01 1234 /usr/bin/prog\n"
    "55d0a0001000-55d0a0005000 r-xp 00001000 fd:01 1234 /usr/bin/prog\n"
    "7f1000000000-7f1000100000 r-xp 00028000 fd:01 99 /lib/libx.so\n"
    "7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                  [vdso]\n";

#define MAIN_PC(x) (0x55d0a0001000ull + (x))
#define LIB_PC(x)  (0x7f1000000000ull + (x))

static const struct {
    uint64_t size;
    double ao, ab, io, ib;
    int depth;
    uintptr_t pcs[4];
} fixture[] = {
    {1024, 3.4, 3481.6, 2.5, 2560.0, 3, {MAIN_PC(0x10), MAIN_PC(0x200), LIB_PC(0x30)}},
    {0, 7, 0, 7, 0, 2, {MAIN_PC(0x10), LIB_PC(0x44)}},
    {4096, 1.0000001, 4096.4, 0, 0, 4, {LIB_PC(0x99), MAIN_PC(0x200), 0x1234, LIB_PC(0x30)}},
    {64, 8193.5, 524384.2, 12.49, 799.5, 1, {MAIN_PC(0x3000)}},
    {1 << 20, 1, 1048576, 1, 1048576, 0, {0}},
};
#define N_FIXTURE (sizeof(fixture) / sizeof(fixture[0]))

static int make(struct hprof_maps *maps, struct hprof_snapshot *snap, struct hprof_bucket *b)
{
    if (hprof_maps_parse(maps_text, "/usr/bin/prog", maps) != 0)
        return -1;
    snprintf(maps->v[1].build_id, sizeof(maps->v[1].build_id), "%s",
             "0123456789abcdef0123456789abcdef01234567");
    memset(snap, 0, sizeof(*snap));
    snap->time_ns = 1764547200123456789ll;
    snap->rate = 524288;
    snap->n_buckets = N_FIXTURE;
    snap->buckets = b;
    for (size_t i = 0; i < N_FIXTURE; i++) {
        memset(&b[i], 0, sizeof(b[i]));
        b[i].size = fixture[i].size;
        b[i].alloc_objects = fixture[i].ao;
        b[i].alloc_bytes = fixture[i].ab;
        b[i].inuse_objects = fixture[i].io;
        b[i].inuse_bytes = fixture[i].ib;
        b[i].depth = fixture[i].depth;
        memcpy(b[i].pcs, fixture[i].pcs, sizeof(fixture[i].pcs));
    }
    return 0;
}

static uintptr_t cpu_pool[] = {MAIN_PC(0x10), MAIN_PC(0x200), LIB_PC(0x30), LIB_PC(0x99),
                               MAIN_PC(0x200)};
static struct hprof_cpu_stack cpu_stacks[] = {{0, 12, 3, 0}, {0, 5, 2, 3}, {0, 1, 1, 1}};
static const struct hprof_cpu_profile cpu_fixture = {
    1764547200000000000ll, 2000000000ll, 10000000ll, 3, 3, cpu_stacks, cpu_pool};

static struct hprof_thread_stack thread_fixture[] = {
    {101, "main", "sleeping", HPROF_THREAD_OK, 2, {MAIN_PC(0x10), LIB_PC(0x30)}},
    {102, "worker", "running", HPROF_THREAD_OK, 3, {LIB_PC(0x99), MAIN_PC(0x200), LIB_PC(0x30)}},
    {103, "worker", "running", HPROF_THREAD_OK, 3, {LIB_PC(0x99), MAIN_PC(0x200), LIB_PC(0x30)}},
    {104, "quiet", "sleeping", HPROF_THREAD_BLOCKED, 0, {0}},
};

/* The profile named name of the fixture, into a new buffer. */
static int profile(const char *name, uint8_t **out, size_t *len)
{
    struct hprof_maps maps;
    struct hprof_snapshot snap;
    struct hprof_bucket b[N_FIXTURE];
    if (make(&maps, &snap, b) != 0)
        return -1;
    int rc;
    if (strcmp(name, "heap") == 0)
        rc = hprof_pprof_encode(&snap, HPROF_HEAP, &maps, 0, out, len);
    else if (strcmp(name, "allocs") == 0)
        rc = hprof_pprof_encode(&snap, HPROF_ALLOCS, &maps, 0, out, len);
    else if (strcmp(name, "delta") == 0)
        rc = hprof_pprof_encode_delta(&snap, HPROF_HEAP, &maps, 0, 3000000000ll, out, len);
    else if (strcmp(name, "cpu") == 0)
        rc = hprof_cpu_encode(&cpu_fixture, &maps, 0, out, len);
    else {
        struct hprof_threads t = {1764547200000000001ll, 4, 5, thread_fixture};
        rc = hprof_threads_encode_with(&t, &maps, 0, out, len);
    }
    hprof_maps_free(&maps);
    return rc;
}

static const char *const names[] = {"heap", "allocs", "delta", "cpu", "threads"};

static int fail(const char *name, const char *what)
{
    fprintf(stderr, "golden: %s: %s\n", name, what);
    return 1;
}

/* The decoded content of the CPU and threads profiles, and no unused string. */
static int check_content(const char *name, const uint8_t *buf, size_t len)
{
    pcodec_profile *p = pcodec_decode(buf, len, NULL, 0);
    if (p == NULL)
        return fail(name, "does not decode");
    int bad = 0;
    unsigned char *used = calloc(p->n_string_table + 1, 1);
#define STR(i)                                                                                     \
    ((i) >= 0 && (size_t)(i) < p->n_string_table ? (used[i] = 1, p->string_table[i]) : "?")
    used[0] = 1;
    bool cpu = strcmp(name, "cpu") == 0;
    size_t want_types = cpu ? 2 : 1;
    if (p->n_sample_type != want_types)
        bad |= fail(name, "sample types");
    if (cpu) {
        bad |= strcmp(STR(p->sample_type[0]->type), "samples") ||
               strcmp(STR(p->sample_type[0]->unit), "count") ||
               strcmp(STR(p->sample_type[1]->type), "cpu") ||
               strcmp(STR(p->sample_type[1]->unit), "nanoseconds") ||
               strcmp(STR(p->period_type->type), "cpu") || p->period != 10000000 ||
               p->duration_nanos != 2000000000ll || p->time_nanos != 1764547200000000000ll ||
               p->n_comment != 1 || strstr(STR(p->comment[0]), "3 samples dropped") == NULL ||
               p->n_sample != 3;
        for (size_t i = 0; !bad && i < p->n_sample; i++) {
            const Perftools__Profiles__Sample *s = p->sample[i];
            bad |= s->n_value != 2 || s->value[0] != (int64_t)cpu_stacks[i].count ||
                   s->value[1] != (int64_t)cpu_stacks[i].count * 10000000 ||
                   s->n_location_id != cpu_stacks[i].depth;
            for (size_t j = 0; !bad && j < s->n_location_id; j++)
                bad |=
                    p->location[s->location_id[j] - 1]->address != cpu_pool[cpu_stacks[i].off + j];
        }
    } else {
        bad |= strcmp(STR(p->sample_type[0]->type), "threads") ||
               strcmp(STR(p->period_type->unit), "count") || p->period != 1 ||
               p->time_nanos != 1764547200000000001ll || p->n_sample != 2 || p->n_comment != 2 ||
               strstr(STR(p->comment[0]), "thread 104 \"quiet\"") == NULL ||
               strstr(STR(p->comment[1]), "1 more threads not captured") == NULL;
        /* Most threads first: the two workers, then main. */
        bad |= !bad && (p->sample[0]->value[0] != 2 || p->sample[1]->value[0] != 1 ||
                        strcmp(STR(p->sample[0]->label[0]->key), "thread") ||
                        strcmp(STR(p->sample[0]->label[0]->str), "worker") ||
                        strcmp(STR(p->sample[1]->label[0]->str), "main") ||
                        p->location[p->sample[0]->location_id[0] - 1]->address != LIB_PC(0x99));
    }
    for (size_t i = 0; i < p->n_mapping; i++) {
        (void)STR(p->mapping[i]->filename);
        (void)STR(p->mapping[i]->build_id);
    }
    (void)STR(p->period_type->type);
    (void)STR(p->period_type->unit);
    for (size_t i = 0; i < p->n_string_table; i++)
        if (!used[i]) {
            fprintf(stderr, "golden: %s: string %zu \"%s\" is unused\n", name, i,
                    p->string_table[i]);
            bad = 1;
        }
#undef STR
    if (bad)
        fail(name, "decoded content differs from its input");
    free(used);
    pcodec_free(p);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "write") != 0 && strcmp(argv[1], "check") != 0)) {
        fprintf(stderr, "usage: golden write|check DIR\n");
        return 2;
    }
    int failed = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s.pb.gz", argv[2], names[i]);
        uint8_t *buf = NULL;
        size_t len = 0;
        if (profile(names[i], &buf, &len) != 0) {
            fprintf(stderr, "golden: cannot encode %s: %s\n", names[i], strerror(errno));
            return 1;
        }
        if (strcmp(argv[1], "write") == 0) {
            FILE *f = fopen(path, "wb");
            if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
                fprintf(stderr, "golden: cannot write %s\n", path);
                return 1;
            }
        } else {
            FILE *f = fopen(path, "rb");
            uint8_t *want = malloc(len + 1);
            size_t n = (f != NULL && want != NULL) ? fread(want, 1, len + 1, f) : 0;
            if (f != NULL)
                fclose(f);
            if (n != len || memcmp(want, buf, len) != 0) {
                fprintf(stderr, "golden: %s differs from %s (%zu bytes, expected %zu)\n", names[i],
                        path, len, n);
                failed = 1;
            } else {
                printf("golden: %s: %zu bytes, identical\n", names[i], len);
            }
            free(want);
            if (i >= 3)
                failed |= check_content(names[i], buf, len);
        }
        hprof_output_free(buf);
    }
    return failed;
}
