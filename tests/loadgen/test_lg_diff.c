/* Unit tests for lg_diff: two heap profiles built by hand (protobuf-c structs, one of them sent
 * through the real gzip codec and back), diffed as `pprof -base BASE NEW -top` would: flat at the
 * leaf (the innermost inlined frame), cum once per sample, functions that cancel out dropped,
 * unsymbolized locations named by address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg_diff.h"
#include "pcodec.h"

static char *strings[] = {"",
                          "alloc_objects",
                          "count",
                          "alloc_space",
                          "bytes",
                          "inuse_objects",
                          "inuse_space",
                          "store_put",
                          "leaky/store.c",
                          "handle_process",
                          "service/svc.c",
                          "main",
                          "evbuffer_add",
                          "buffer.c",
                          "space",
                          "samples",
                          "cpu",
                          "nanoseconds"};
enum { S_STORE_PUT = 7, S_STORE_C, S_HANDLE, S_SVC_C, S_MAIN, S_EVB, S_BUFFER_C };

/* Everything a hand-built profile points to, kept alive by the test. */
struct built {
    pcodec_profile p;
    Perftools__Profiles__ValueType vt[4], *vtp[4];
    Perftools__Profiles__Function fn[4], *fnp[4];
    Perftools__Profiles__Line lines[7], *linep[7];
    Perftools__Profiles__Location loc[6], *locp[6];
    Perftools__Profiles__Sample samples[8], *samplep[8];
    uint64_t ids[8][4];
    int64_t values[8][4];
};

static void build_common(struct built *b)
{
    perftools__profiles__profile__init(&b->p);
    b->p.string_table = strings;
    b->p.n_string_table = sizeof(strings) / sizeof(strings[0]);
    /* Go's heap order: alloc_objects/count alloc_space/bytes inuse_objects/count
     * inuse_space/bytes (string indices). */
    const int64_t types[4][2] = {{1, 2}, {3, 4}, {5, 2}, {6, 4}};
    for (int i = 0; i < 4; i++) {
        perftools__profiles__value_type__init(&b->vt[i]);
        b->vt[i].type = types[i][0];
        b->vt[i].unit = types[i][1];
        b->vtp[i] = &b->vt[i];
    }
    b->p.sample_type = b->vtp;
    b->p.n_sample_type = 4;
    const int64_t names[4][2] = {
        {S_STORE_PUT, S_STORE_C}, {S_HANDLE, S_SVC_C}, {S_MAIN, S_SVC_C}, {S_EVB, S_BUFFER_C}};
    for (int i = 0; i < 4; i++) {
        perftools__profiles__function__init(&b->fn[i]);
        b->fn[i].id = 10 + (uint64_t)i; /* ids need not be indices */
        b->fn[i].name = names[i][0];
        b->fn[i].system_name = names[i][0];
        b->fn[i].filename = names[i][1];
        b->fnp[i] = &b->fn[i];
    }
    b->p.function = b->fnp;
    b->p.n_function = 4;
    /* Lines: store_put:56, handle_process:120, main:10, evbuffer_add:300, and an inlined pair
     * store_put:60 inside handle_process:130. */
    const uint64_t line_fn[7] = {10, 11, 12, 13, 10, 11};
    const int64_t line_no[7] = {56, 120, 10, 300, 60, 130};
    for (int i = 0; i < 6; i++) {
        perftools__profiles__line__init(&b->lines[i]);
        b->lines[i].function_id = line_fn[i];
        b->lines[i].line = line_no[i];
        b->linep[i] = &b->lines[i];
    }
    for (int i = 0; i < 6; i++) {
        perftools__profiles__location__init(&b->loc[i]);
        b->loc[i].id = 100 + (uint64_t)i;
        b->loc[i].address = 0x1000 + 16 * (uint64_t)i;
        b->locp[i] = &b->loc[i];
    }
    for (int i = 0; i < 4; i++) { /* 100..103: one line each */
        b->loc[i].line = &b->linep[i];
        b->loc[i].n_line = 1;
    }
    b->loc[4].line = &b->linep[4]; /* 104: inlined, innermost first */
    b->loc[4].n_line = 2;
    b->loc[5].address = 0xdeadbeef; /* 105: no symbol */
    b->p.location = b->locp;
    b->p.n_location = 6;
}

static void add_sample(struct built *b, const uint64_t *ids, size_t n, int64_t objects,
                       int64_t bytes)
{
    size_t i = b->p.n_sample;
    perftools__profiles__sample__init(&b->samples[i]);
    memcpy(b->ids[i], ids, n * sizeof(*ids));
    b->values[i][0] = objects; /* alloc = inuse here: only inuse is diffed */
    b->values[i][1] = bytes;
    b->values[i][2] = objects;
    b->values[i][3] = bytes;
    b->samples[i].location_id = b->ids[i];
    b->samples[i].n_location_id = n;
    b->samples[i].value = b->values[i];
    b->samples[i].n_value = 4;
    b->samplep[i] = &b->samples[i];
    b->p.sample = b->samplep;
    b->p.n_sample = i + 1;
}

static void build_new(struct built *b)
{
    build_common(b);
    add_sample(b, (uint64_t[]){100, 101, 102}, 3, 1000, 1024000); /* store_put <- handle <- main */
    add_sample(b, (uint64_t[]){103, 101, 102}, 3, 50, 100000);    /* evbuffer_add */
    add_sample(b, (uint64_t[]){104, 102}, 2, 10, 10000);          /* store_put inlined */
    add_sample(b, (uint64_t[]){105, 102}, 2, 1, 4096);            /* unsymbolized */
    add_sample(b, (uint64_t[]){100, 100, 101, 102}, 4, 5, 5000);  /* recursion: cum once */
}

static void build_base(struct built *b)
{
    build_common(b);
    add_sample(b, (uint64_t[]){100, 101, 102}, 3, 100, 102400);
    add_sample(b, (uint64_t[]){103, 101, 102}, 3, 50, 100000); /* unchanged: cancels */
    add_sample(b, (uint64_t[]){105, 102}, 2, 1, 4096);         /* unchanged: cancels */
}

static const struct lg_diff_entry *find(const struct lg_diff *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->entries[i].function, name) == 0)
            return &d->entries[i];
    return NULL;
}

static void test_diff_new_minus_base(void **state)
{
    (void)state;
    static struct built base, newb;
    build_base(&base);
    build_new(&newb);
    /* NEW goes through the real codec: gzip'd protobuf, as served and saved. */
    uint8_t *gz = NULL;
    size_t gz_len = 0;
    assert_int_equal(pcodec_encode_gzip(&newb.p, &gz, &gz_len), 0);
    char err[256];
    pcodec_profile *decoded = pcodec_decode(gz, gz_len, err, sizeof(err));
    free(gz);
    assert_non_null(decoded);

    struct lg_diff d;
    assert_int_equal(lg_diff_compute(&base.p, decoded, &d, err, sizeof(err)), 0);
    assert_int_equal(d.total_bytes, 936600);
    assert_int_equal(d.total_objects, 915);
    /* store_put leads: +1024000-102400 at its leaf line, +10000 inlined, +5000 recursive. */
    assert_true(d.n == 3);
    assert_string_equal(d.entries[0].function, "store_put");
    assert_string_equal(d.entries[0].file, "leaky/store.c");
    assert_int_equal(d.entries[0].line, 56);
    assert_int_equal(d.entries[0].flat_bytes, 936600);
    assert_int_equal(d.entries[0].flat_objects, 915);
    assert_int_equal(d.entries[0].cum_bytes, 936600); /* recursion counted once */
    /* Callers: no flat, all of it cum (handle_process through the inlined frame too). */
    const struct lg_diff_entry *h = find(&d, "handle_process");
    const struct lg_diff_entry *m = find(&d, "main");
    assert_non_null(h);
    assert_non_null(m);
    assert_int_equal(h->flat_bytes, 0);
    assert_int_equal(h->cum_bytes, 936600);
    assert_int_equal(m->cum_bytes, 936600);
    /* Unchanged functions are not part of the difference. */
    assert_null(find(&d, "evbuffer_add"));
    assert_null(find(&d, "0xdeadbeef"));

    /* The table names the function and its line. */
    char *text = NULL;
    size_t text_len = 0;
    FILE *f = open_memstream(&text, &text_len);
    lg_diff_print(f, &d, 10);
    fclose(f);
    assert_non_null(strstr(text, "store_put leaky/store.c:56"));
    assert_non_null(strstr(text, "+914.65 KiB"));
    free(text);
    lg_diff_free(&d);

    /* Reversed: everything negative, sorted by magnitude. */
    assert_int_equal(lg_diff_compute(decoded, &base.p, &d, err, sizeof(err)), 0);
    assert_string_equal(d.entries[0].function, "store_put");
    assert_int_equal(d.entries[0].flat_bytes, -936600);
    assert_int_equal(d.total_bytes, -936600);
    lg_diff_free(&d);

    /* No base: NEW's own top, the unsymbolized location named by its address. */
    assert_int_equal(lg_diff_compute(NULL, decoded, &d, err, sizeof(err)), 0);
    assert_string_equal(d.entries[0].function, "store_put");
    assert_int_equal(d.entries[0].flat_bytes, 1024000 + 10000 + 5000);
    assert_string_equal(d.entries[1].function, "evbuffer_add");
    assert_int_equal(d.entries[1].flat_bytes, 100000);
    const struct lg_diff_entry *addr = find(&d, "0xdeadbeef");
    assert_non_null(addr);
    assert_int_equal(addr->flat_bytes, 4096);
    lg_diff_free(&d);
    pcodec_free(decoded);
}

/* A location without a function, in a mapped file: named object+0xOFFSET (file offset), as the
 * profiler names such frames. */
static void test_unsymbolized_frame_named_by_object(void **state)
{
    (void)state;
    static struct built b;
    build_new(&b);
    static char *table[sizeof(strings) / sizeof(strings[0]) + 1];
    memcpy(table, strings, sizeof(strings));
    table[sizeof(strings) / sizeof(strings[0])] = "/usr/lib/x86_64-linux-gnu/libevent-2.1.so.7.0.1";
    b.p.string_table = table;
    b.p.n_string_table = sizeof(table) / sizeof(table[0]);
    static Perftools__Profiles__Mapping m, *mp = &m;
    perftools__profiles__mapping__init(&m);
    m.id = 7;
    m.memory_start = 0xde000000;
    m.memory_limit = 0xdf000000;
    m.file_offset = 0x12000;
    m.filename = (int64_t)(sizeof(strings) / sizeof(strings[0]));
    b.p.mapping = &mp;
    b.p.n_mapping = 1;
    b.loc[5].mapping_id = 7;
    struct lg_diff d;
    char err[256];
    assert_int_equal(lg_diff_compute(NULL, &b.p, &d, err, sizeof(err)), 0);
    const struct lg_diff_entry *e = find(&d, "libevent-2.1.so.7.0.1+0xaedeef");
    assert_non_null(e);
    assert_int_equal(e->flat_bytes, 4096);
    assert_null(find(&d, "0xdeadbeef"));
    lg_diff_free(&d);
}

static void test_not_a_heap_profile(void **state)
{
    (void)state;
    static struct built cpu;
    build_new(&cpu);
    cpu.vt[0].type = 15; /* samples/count, cpu/nanoseconds: a CPU profile */
    cpu.vt[1].type = 16;
    cpu.vt[1].unit = 17;
    cpu.p.n_sample_type = 2;
    struct lg_diff d;
    char err[256] = "";
    assert_int_equal(lg_diff_compute(NULL, &cpu.p, &d, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a heap profile"));
}

static void test_unknown_location_is_an_error(void **state)
{
    (void)state;
    static struct built bad;
    build_new(&bad);
    bad.ids[0][1] = 999; /* no such location */
    struct lg_diff d;
    char err[256] = "";
    assert_int_equal(lg_diff_compute(NULL, &bad.p, &d, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown location"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diff_new_minus_base),
        cmocka_unit_test(test_not_a_heap_profile),
        cmocka_unit_test(test_unsymbolized_frame_named_by_object),
        cmocka_unit_test(test_unknown_location_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
