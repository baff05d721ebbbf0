/*
 * golden: the profiles' bytes pinned across rewrites of the encoder.
 *
 * A fixed snapshot (fixed PCs, sizes and estimates, including a zero size, shared PCs, a PC
 * outside every mapping and estimates that round), fixed mappings (parsed from a fixed maps
 * text, one with a build-id) and no symbolization (symbols depend on the build, the encoding
 * must not): the heap, allocs and delta (duration 3 s) profiles must be byte for byte the
 * files in golden/, which were written by the encoder as it was before the generic pprof
 * builder (issue 12): `golden write DIR` wrote them, `golden check DIR` compares.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hprof_output.h"
#include "hprof_web.h"

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
    else {
        rc = hprof_pprof_encode(&snap, HPROF_HEAP, &maps, 0, out, len);
        if (rc == 0)
            rc = hprof_pprof_set_duration(out, len, 3000000000ll);
    }
    hprof_maps_free(&maps);
    return rc;
}

static const char *const names[] = {"heap", "allocs", "delta"};

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
        }
        hprof_output_free(buf);
    }
    return failed;
}
