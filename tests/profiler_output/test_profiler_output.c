/*
 * The profiler's output half against hand-built snapshots (fake_collect.c): the pprof encoding
 * field by field as Go writes heap profiles, mappings and build-ids checked against readelf,
 * in-process symbolization checked against the lines the call sites recorded, atomic files,
 * and the HTTP endpoints over a real socket. The interposer is not linked, so this binary also
 * runs under valgrind and ASan (see CMakeLists.txt).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_collect.h"
#include "hprof_output.h"
#include "hprof_registry.h"
#include "pcodec.h"

static struct fake_stack stack_a, stack_b, stack_c;
static struct hprof_bucket buckets[6];
static struct hprof_snapshot snap;
static char tmpdir[] = "/tmp/hprof-output-XXXXXX";

static int setup(void **state)
{
    (void)state;
    fake_sites_collect(&stack_a, &stack_b, &stack_c);
    fake_sites_snapshot(&snap, buckets, &stack_a, &stack_b, &stack_c);
    fake_collect_set(&snap);
    return 0;
}

static pcodec_profile *encode(const struct hprof_snapshot *s, enum hprof_kind kind)
{
    uint8_t *gz = NULL;
    size_t len = 0;
    assert_int_equal(hprof_pprof_encode(s, kind, NULL, 1, &gz, &len), 0);
    assert_true(len > 2);
    assert_int_equal(gz[0], 0x1f); /* gzip, as pprof expects */
    assert_int_equal(gz[1], 0x8b);
    char err[256];
    pcodec_profile *p = pcodec_decode(gz, len, err, sizeof(err));
    hprof_output_free(gz);
    assert_non_null(p);
    assert_int_equal(fake_collect_depth(), 0); /* enter/exit balanced */
    return p;
}

static const char *str(const pcodec_profile *p, int64_t i)
{
    assert_true(i >= 0 && (size_t)i < p->n_string_table);
    return p->string_table[i];
}

static const Perftools__Profiles__Location *loc(const pcodec_profile *p, uint64_t id)
{
    assert_true(id >= 1 && id <= p->n_location);
    assert_int_equal(p->location[id - 1]->id, id); /* ids are dense, in order */
    return p->location[id - 1];
}

static const Perftools__Profiles__Function *fn(const pcodec_profile *p, uint64_t id)
{
    assert_true(id >= 1 && id <= p->n_function);
    assert_int_equal(p->function[id - 1]->id, id);
    return p->function[id - 1];
}

static const Perftools__Profiles__Mapping *mapping(const pcodec_profile *p, uint64_t id)
{
    assert_true(id >= 1 && id <= p->n_mapping);
    assert_int_equal(p->mapping[id - 1]->id, id);
    return p->mapping[id - 1];
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void self_exe(char *buf, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    assert_true(n > 0);
    buf[n] = '\0';
}

/* ---- mappings ---- */

static void test_maps_parse(void **state)
{
    (void)state;
    const char *text =
        "55d0a0000000-55d0a0001000 r--p 00000000 fd:01 1234 /usr/bin/prog\n"
        "55d0a0001000-55d0a0005000 r-xp 00001000 fd:01 1234 /usr/bin/prog\n"
        "55d0a0005000-55d0a0006000 rw-p 00005000 fd:01 1234 /usr/bin/prog\n"
        "7f0000000000-7f0000200000 r-xp 00000000 00:00 0 \n"
        "7f1000000000-7f1000100000 r-xp 00028000 fd:01 99 /lib/libx.so (deleted)\n"
        "7f2000000000-7f2000010000 r-xp 00000000 fd:01 77 /opt/dir with space/liby.so\n"
        "7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                  [vdso]\n";
    struct hprof_maps maps;
    assert_int_equal(hprof_maps_parse(text, "/usr/bin/prog", &maps), 0);
    assert_int_equal(maps.n, 4); /* r-x only; the unnamed inode-0 fragment dropped */
    assert_int_equal(maps.main, 0);
    assert_int_equal(maps.v[0].start, 0x55d0a0001000);
    assert_int_equal(maps.v[0].limit, 0x55d0a0005000);
    assert_int_equal(maps.v[0].offset, 0x1000);
    assert_string_equal(maps.v[0].path, "/usr/bin/prog");
    assert_string_equal(maps.v[1].path, "/lib/libx.so");
    assert_int_equal(maps.v[1].offset, 0x28000);
    assert_string_equal(maps.v[2].path, "/opt/dir with space/liby.so");
    assert_string_equal(maps.v[3].path, "[vdso]");
    assert_int_equal(hprof_maps_find(&maps, 0x55d0a0001000), 0);
    assert_int_equal(hprof_maps_find(&maps, 0x55d0a0004fff), 0);
    assert_int_equal(hprof_maps_find(&maps, 0x55d0a0005000), -1);
    assert_int_equal(hprof_maps_find(&maps, 0x7ffd00000001), 3);
    assert_int_equal(hprof_maps_find(&maps, 0x10), -1);
    uint64_t sig = maps.signature;
    hprof_maps_free(&maps);

    /* One more mapping (a dlopen) changes the signature. */
    char more[2048];
    snprintf(more, sizeof(more), "%s%s", text,
             "7ffe00000000-7ffe00001000 r-xp 00000000 fd:01 5 /lib/libz.so\n");
    assert_int_equal(hprof_maps_parse(more, NULL, &maps), 0);
    assert_int_equal(maps.n, 5);
    assert_int_equal(maps.main, -1);
    assert_true(maps.signature != sig);
    hprof_maps_free(&maps);

    assert_int_equal(hprof_maps_parse("garbage line\n", NULL, &maps), -1);
    assert_int_equal(hprof_maps_parse("1000-2000 r-xp zz fd:01 5 /x\n", NULL, &maps), -1);
}

/* The build-id as binutils' readelf prints it, computed without our code. */
static int readelf_build_id(const char *path, char *out, size_t len)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "readelf -n '%s' 2>/dev/null", path);
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return -1;
    char line[512];
    int found = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *at = strstr(line, "Build ID: ");
        if (at != NULL && found < 0) {
            at += strlen("Build ID: ");
            at[strcspn(at, " \r\n")] = '\0';
            snprintf(out, len, "%s", at);
            found = 0;
        }
    }
    pclose(f);
    return found;
}

static void test_maps_self_build_id(void **state)
{
    (void)state;
    char exe[4096], want[256];
    self_exe(exe, sizeof(exe));
    assert_int_equal(readelf_build_id(exe, want, sizeof(want)), 0);
    assert_true(strlen(want) >= 16);

    struct hprof_maps maps;
    assert_int_equal(hprof_maps_read(&maps), 0);
    assert_true(maps.main >= 0);
    const struct hprof_mapping *m = &maps.v[maps.main];
    assert_string_equal(m->path, exe);
    assert_string_equal(m->build_id, want); /* from the loaded image's notes */
    char from_file[2 * HPROF_BUILD_ID_MAX + 1];
    assert_int_equal(hprof_build_id_of_file(exe, from_file), 0);
    assert_string_equal(from_file, want); /* and from the file, via libelf */

    /* Every mapping with a file has the build-id readelf sees in it (libc, libdw, ...). */
    for (size_t i = 0; i < maps.n; i++) {
        if (maps.v[i].path[0] != '/')
            continue;
        char lib[256];
        if (readelf_build_id(maps.v[i].path, lib, sizeof(lib)) == 0)
            assert_string_equal(maps.v[i].build_id, lib);
        else
            assert_string_equal(maps.v[i].build_id, "");
    }
    /* Our own code is in the main mapping. */
    assert_int_equal(hprof_maps_find(&maps, stack_a.pc[0]), maps.main);
    assert_int_equal(hprof_build_id_of_file("/nonexistent/file", from_file), -1);
    hprof_maps_free(&maps);
}

/* ---- the encoding ---- */

static void check_header(const pcodec_profile *p, enum hprof_kind kind)
{
    assert_true(p->n_string_table > 0);
    assert_string_equal(p->string_table[0], "");
    static const char *const types[4][2] = {{"alloc_objects", "count"},
                                            {"alloc_space", "bytes"},
                                            {"inuse_objects", "count"},
                                            {"inuse_space", "bytes"}};
    assert_int_equal(p->n_sample_type, 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(str(p, p->sample_type[i]->type), types[i][0]);
        assert_string_equal(str(p, p->sample_type[i]->unit), types[i][1]);
    }
    assert_non_null(p->period_type);
    assert_string_equal(str(p, p->period_type->type), "space");
    assert_string_equal(str(p, p->period_type->unit), "bytes");
    assert_int_equal(p->period, 4096);
    assert_int_equal(p->time_nanos, 1700000000123456789);
    assert_int_equal(p->duration_nanos, 0);
    if (kind == HPROF_ALLOCS)
        assert_string_equal(str(p, p->default_sample_type), "alloc_space");
    else
        assert_int_equal(p->default_sample_type, 0); /* pprof then shows inuse_space */
}

static void test_encode_values(void **state)
{
    (void)state;
    pcodec_profile *p = encode(&snap, HPROF_HEAP);
    check_header(p, HPROF_HEAP);
    assert_int_equal(p->n_sample, 6);
    for (size_t i = 0; i < 6; i++) {
        const Perftools__Profiles__Sample *s = p->sample[i];
        const struct hprof_bucket *bk = &buckets[i];
        assert_int_equal(s->n_value, 4);
        assert_int_equal(s->value[0], llround(bk->alloc_objects));
        assert_int_equal(s->value[1], llround(bk->alloc_bytes));
        assert_int_equal(s->value[2], llround(bk->inuse_objects));
        assert_int_equal(s->value[3], llround(bk->inuse_bytes));
        assert_int_equal(s->n_location_id, (size_t)bk->depth);
        for (size_t j = 0; j < s->n_location_id; j++)
            assert_int_equal(loc(p, s->location_id[j])->address, bk->pcs[j]); /* leaf first */
        if (bk->size == 0) {
            assert_int_equal(s->n_label, 0); /* Go omits bytes=0 */
        } else {
            assert_int_equal(s->n_label, 1);
            assert_string_equal(str(p, s->label[0]->key), "bytes");
            assert_int_equal(s->label[0]->num, bk->size);
            assert_string_equal(str(p, s->label[0]->num_unit), "bytes");
            assert_int_equal(s->label[0]->str, 0);
        }
    }
    /* Rounding to nearest: 10.5 -> 11 objects, 3.4 -> 3. */
    assert_int_equal(p->sample[0]->value[0], 11);
    assert_int_equal(p->sample[0]->value[2], 3);
    assert_int_equal(p->sample[0]->value[3], 3482); /* 3.4 * 1024 = 3481.6 */
    assert_int_equal(pcodec_total(p, "inuse_space"), 3482 + 0 + 0 + 2048 + 64 + 128);

    /* One location per distinct PC: A, B, C share callers; buckets 3..5 reuse A's. */
    uintptr_t distinct[16];
    size_t n_distinct = 0;
    for (size_t i = 0; i < 6; i++)
        for (int j = 0; j < buckets[i].depth; j++) {
            size_t k = 0;
            while (k < n_distinct && distinct[k] != buckets[i].pcs[j])
                k++;
            if (k == n_distinct)
                distinct[n_distinct++] = buckets[i].pcs[j];
        }
    assert_int_equal(p->n_location, n_distinct);
    for (size_t i = 0; i < p->n_location; i++)
        for (size_t j = i + 1; j < p->n_location; j++)
            assert_true(p->location[i]->address != p->location[j]->address);
    /* A's and B's outermost frame is the same PC: the same location. */
    assert_int_equal(p->sample[0]->location_id[2], p->sample[1]->location_id[2]);
    /* Strings and functions are not repeated either. */
    for (size_t i = 0; i < p->n_string_table; i++)
        for (size_t j = i + 1; j < p->n_string_table; j++)
            assert_true(strcmp(p->string_table[i], p->string_table[j]) != 0);
    for (size_t i = 0; i < p->n_function; i++)
        for (size_t j = i + 1; j < p->n_function; j++) {
            const Perftools__Profiles__Function *f = p->function[i], *g = p->function[j];
            assert_false(f->name == g->name && f->filename == g->filename &&
                         f->start_line == g->start_line && f->system_name == g->system_name);
        }
    pcodec_free(p);

    p = encode(&snap, HPROF_ALLOCS);
    check_header(p, HPROF_ALLOCS);
    pcodec_free(p);
}

/* The frames of location id, as "name@line" joined by ";" (innermost first). */
static void frames_of(const pcodec_profile *p, uint64_t id, char *out, size_t len)
{
    const Perftools__Profiles__Location *l = loc(p, id);
    out[0] = '\0';
    for (size_t i = 0; i < l->n_line; i++) {
        const Perftools__Profiles__Function *f = fn(p, l->line[i]->function_id);
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s@%ld", i ? ";" : "", str(p, f->name),
                 (long)l->line[i]->line);
    }
}

static void check_stack(const pcodec_profile *p, const Perftools__Profiles__Sample *s,
                        const struct fake_stack *st)
{
    char got[512], want[512];
    for (int i = 0; i < st->depth; i++) {
        frames_of(p, s->location_id[i], got, sizeof(got));
        if (i == 0 && st->inline_func != NULL)
            snprintf(want, sizeof(want), "%s@%d;%s@%d", st->inline_func, st->inline_line,
                     st->func[0], st->line[0]);
        else
            snprintf(want, sizeof(want), "%s@%d", st->func[i], st->line[i]);
        assert_string_equal(got, want);
        const Perftools__Profiles__Location *l = loc(p, s->location_id[i]);
        for (size_t j = 0; j < l->n_line; j++) {
            const Perftools__Profiles__Function *f = fn(p, l->line[j]->function_id);
            assert_string_equal(base_name(str(p, f->filename)), "fake_sites.c");
            assert_true(str(p, f->filename)[0] == '/'); /* absolute: pprof -list finds it */
            assert_string_equal(str(p, f->system_name), str(p, f->name));
            assert_true(f->start_line > 0 && f->start_line <= l->line[j]->line);
        }
    }
}

static void test_symbols(void **state)
{
    (void)state;
    pcodec_profile *p = encode(&snap, HPROF_HEAP);
    check_stack(p, p->sample[0], &stack_a);
    check_stack(p, p->sample[1], &stack_b);
    check_stack(p, p->sample[2], &stack_c);

    /* Mapping 1 is the main executable, with its build-id; locations point into mappings. */
    char exe[4096], want[256];
    self_exe(exe, sizeof(exe));
    assert_true(p->n_mapping >= 2);
    const Perftools__Profiles__Mapping *main_map = mapping(p, 1);
    assert_string_equal(str(p, main_map->filename), exe);
    assert_int_equal(readelf_build_id(exe, want, sizeof(want)), 0);
    assert_string_equal(str(p, main_map->build_id), want);
    assert_true(main_map->has_functions && main_map->has_filenames && main_map->has_line_numbers &&
                main_map->has_inline_frames);
    for (size_t i = 0; i < p->n_location; i++) {
        const Perftools__Profiles__Location *l = p->location[i];
        if (l->address == 0x1000) {
            assert_int_equal(l->mapping_id, 0); /* in no mapping: no claim, no lines */
            assert_int_equal(l->n_line, 0);
            continue;
        }
        const Perftools__Profiles__Mapping *m = mapping(p, l->mapping_id);
        assert_true(l->address >= m->memory_start && l->address < m->memory_limit);
    }
    /* A mapping claims names/files/lines only if every one of its locations has them. */
    for (size_t i = 0; i < p->n_mapping; i++) {
        const Perftools__Profiles__Mapping *m = p->mapping[i];
        int used = 0, names = 1, files = 1, lines = 1;
        for (size_t j = 0; j < p->n_location; j++) {
            const Perftools__Profiles__Location *l = p->location[j];
            if (l->mapping_id != m->id)
                continue;
            used = 1;
            if (l->n_line == 0)
                names = files = lines = 0;
            for (size_t k = 0; k < l->n_line; k++) {
                const Perftools__Profiles__Function *f = fn(p, l->line[k]->function_id);
                names &= str(p, f->name)[0] != '\0';
                files &= str(p, f->filename)[0] != '\0';
                lines &= l->line[k]->line > 0;
            }
        }
        assert_int_equal(m->has_functions, used && names);
        assert_int_equal(m->has_filenames, used && files);
        assert_int_equal(m->has_line_numbers, used && lines);
        if (!used)
            assert_false(m->has_inline_frames);
    }
    /* libc's getpid: named at least from the symbol table. */
    const Perftools__Profiles__Location *libc = loc(p, p->sample[5]->location_id[0]);
    assert_true(libc->n_line >= 1);
    assert_non_null(
        strstr(str(p, fn(p, libc->line[libc->n_line - 1]->function_id)->name), "getpid"));
    assert_true(mapping(p, libc->mapping_id)->has_functions);
    pcodec_free(p);
}

static void test_deterministic(void **state)
{
    (void)state;
    uint8_t *one = NULL, *two = NULL;
    size_t one_len = 0, two_len = 0;
    assert_int_equal(hprof_pprof_encode(&snap, HPROF_HEAP, NULL, 1, &one, &one_len), 0);
    hprof_sym_reset(); /* a cold symbolizer must give the same answer as a warm one */
    assert_int_equal(hprof_pprof_encode(&snap, HPROF_HEAP, NULL, 1, &two, &two_len), 0);
    assert_int_equal(one_len, two_len);
    assert_memory_equal(one, two, one_len);
    hprof_output_free(one);
    assert_int_equal(hprof_pprof_encode(&snap, HPROF_HEAP, NULL, 1, &one, &one_len), 0);
    assert_int_equal(one_len, two_len);
    assert_memory_equal(one, two, one_len);
    hprof_output_free(one);
    hprof_output_free(two);
}

static void test_empty_and_unsymbolized(void **state)
{
    (void)state;
    struct hprof_snapshot empty = {.time_ns = 1700000000123456789, .rate = 4096};
    pcodec_profile *p = encode(&empty, HPROF_HEAP);
    check_header(p, HPROF_HEAP);
    assert_int_equal(p->n_sample, 0);
    assert_int_equal(p->n_location, 0);
    assert_true(p->n_mapping >= 1); /* the process's mappings are listed all the same */
    for (size_t i = 0; i < p->n_mapping; i++)
        assert_false(p->mapping[i]->has_functions); /* nothing to claim */
    pcodec_free(p);

    /* symbolize = 0: bare locations, and no mapping claims symbols. */
    uint8_t *gz = NULL;
    size_t len = 0;
    assert_int_equal(hprof_pprof_encode(&snap, HPROF_HEAP, NULL, 0, &gz, &len), 0);
    p = pcodec_decode(gz, len, NULL, 0);
    hprof_output_free(gz);
    assert_non_null(p);
    assert_int_equal(p->n_function, 0);
    for (size_t i = 0; i < p->n_location; i++)
        assert_int_equal(p->location[i]->n_line, 0);
    for (size_t i = 0; i < p->n_mapping; i++)
        assert_false(p->mapping[i]->has_functions || p->mapping[i]->has_filenames ||
                     p->mapping[i]->has_line_numbers || p->mapping[i]->has_inline_frames);
    pcodec_free(p);
}

static void test_sym_cache(void **state)
{
    (void)state;
    hprof_sym_reset();
    struct hprof_maps maps;
    assert_int_equal(hprof_maps_read(&maps), 0);
    /* Lookups between begin and end, assertions after end: a failed assertion must not leave
     * the symbolizer's lock held for the tests that follow. */
    int began = hprof_sym_begin(&maps);
    struct hprof_symbol one, two, inl, none;
    hprof_sym_lookup(stack_a.pc[0], &one);
    hprof_sym_lookup(stack_a.pc[0], &two);
    hprof_sym_lookup(stack_c.pc[0], &inl);
    hprof_sym_lookup(0x1000, &none); /* no module: no frames, no flags, no crash */
    char name[64] = "";
    long line = one.n_frames > 0 ? (long)one.frames[0].line : -1;
    if (one.n_frames > 0)
        snprintf(name, sizeof(name), "%s", one.frames[0].name);
    hprof_sym_end();
    assert_int_equal(began, 0);
    assert_int_equal(one.n_frames, 1);
    assert_ptr_equal(one.frames, two.frames); /* the second lookup is the cached entry */
    assert_string_equal(name, "fake_store_put");
    assert_int_equal(line, stack_a.line[0]);
    assert_int_equal(inl.n_frames, 2);
    assert_true(inl.flags & HPROF_SYM_INLINE);
    assert_int_equal(none.n_frames, 0);
    assert_int_equal(none.flags, 0);
    struct hprof_sym_stats stats;
    hprof_sym_get_stats(&stats);
    assert_int_equal(stats.entries, 3);
    assert_int_equal(stats.frames, 3);
    assert_true(stats.string_bytes > 0 && stats.table_bytes > stats.string_bytes);

    /* The mappings changed (a dlopen): the cache starts again. */
    maps.signature++;
    assert_int_equal(hprof_sym_begin(&maps), 0);
    hprof_sym_end();
    hprof_sym_get_stats(&stats);
    assert_int_equal(stats.entries, 0);
    hprof_maps_free(&maps);
}

/* ---- files ---- */

static void path_in_tmp(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", tmpdir, name);
}

/* Names in tmpdir that start with prefix. */
static int count_files(const char *prefix)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "ls -A '%s' | grep -c '^%s' || true", tmpdir, prefix);
    FILE *f = popen(cmd, "r");
    int n = -1;
    if (f != NULL && fscanf(f, "%d", &n) != 1)
        n = -1;
    if (f != NULL)
        pclose(f);
    return n;
}

static void test_write_path(void **state)
{
    (void)state;
    char path[512];
    path_in_tmp(path, sizeof(path), "heap.pb.gz");
    assert_int_equal(hprof_write_profile_path(path, HPROF_ALLOCS), 0);
    char err[512];
    pcodec_profile *p = pcodec_load_file(path, err, sizeof(err));
    assert_non_null(p);
    check_header(p, HPROF_ALLOCS);
    assert_int_equal(p->n_sample, 6);
    pcodec_free(p);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    mode_t mask = umask(0);
    umask(mask);
    assert_int_equal(sb.st_mode & 0777, 0666 & ~mask); /* as a plain creat() would */
    /* Overwriting an existing file is atomic too and leaves no temp file. */
    assert_int_equal(hprof_write_profile_path(path, HPROF_HEAP), 0);
    assert_int_equal(count_files("heap.pb.gz"), 1);
}

static void test_write_errors(void **state)
{
    (void)state;
    char path[512];
    errno = 0;
    assert_int_equal(hprof_write_profile_path("/nonexistent-dir/x/heap.pb.gz", HPROF_HEAP), -1);
    assert_int_equal(errno, ENOENT);
    path_in_tmp(path, sizeof(path), "plainfile");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    path_in_tmp(path, sizeof(path), "plainfile/heap.pb.gz");
    assert_int_equal(hprof_write_profile_path(path, HPROF_HEAP), -1);
    assert_int_equal(errno, ENOTDIR);
    assert_int_equal(hprof_write_profile_path("", HPROF_HEAP), -1);
    assert_int_equal(errno, EINVAL);

    /* A full disk, as the file size limit makes it: -1, errno, and nothing left behind. */
    path_in_tmp(path, sizeof(path), "full.pb.gz");
    struct rlimit old, small = {100, 0};
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    int rc = hprof_write_profile_path(path, HPROF_HEAP);
    int saved = errno;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(rc, -1);
    assert_int_equal(saved, EFBIG);
    assert_int_equal(count_files("full.pb.gz"), 0); /* neither the file nor its temp */

    /* The fd variant on a device that is always full. */
    int fd = open("/dev/full", O_WRONLY);
    if (fd >= 0) {
        assert_int_equal(hprof_write_profile_fd(fd, HPROF_HEAP), -1);
        assert_int_equal(errno, ENOSPC);
        close(fd);
    }
}

/* ---- HTTP ---- */

struct server {
    struct event_base *base;
    struct evhttp *http;
    int port;
    pthread_t thread;
};

static void *serve_main(void *arg)
{
    struct server *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

static void server_start(struct server *s)
{
    s->base = event_base_new();
    assert_non_null(s->base);
    s->http = evhttp_new(s->base);
    assert_non_null(s->http);
    assert_int_equal(hprof_http_mount(s->http), 0);
    assert_int_equal(hprof_http_mount(s->http), -1); /* mounted twice: refused */
    struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
    assert_non_null(bound);
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bound), (void *)&sin, &slen), 0);
    s->port = ntohs(sin.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, serve_main, s), 0);
}

static void server_stop(struct server *s)
{
    event_base_loopbreak(s->base);
    pthread_join(s->thread, NULL);
    evhttp_free(s->http);
    event_base_free(s->base);
}

struct response {
    int status;
    char headers[4096];
    uint8_t *body;
    size_t body_len;
};

static void http_get(int port, const char *target, struct response *r)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (void *)&sin, sizeof(sin)), 0);
    char req[512];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", target);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (len == cap)
            buf = realloc(buf, cap *= 2);
        ssize_t got = read(fd, buf + len, cap - len);
        assert_true(got >= 0);
        if (got == 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    uint8_t *end = memmem(buf, len, "\r\n\r\n", 4);
    assert_non_null(end);
    size_t head = (size_t)(end - buf);
    assert_true(head < sizeof(r->headers));
    memcpy(r->headers, buf, head);
    r->headers[head] = '\0';
    assert_int_equal(sscanf(r->headers, "HTTP/1.%*d %d", &r->status), 1);
    r->body_len = len - head - 4;
    r->body = malloc(r->body_len + 1);
    memcpy(r->body, end + 4, r->body_len);
    r->body[r->body_len] = '\0';
    free(buf);
}

static void test_http(void **state)
{
    (void)state;
    struct server s;
    server_start(&s);
    struct response r;
    unsigned takes = fake_collect_takes();

    http_get(s.port, "/debug/pprof/heap", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Content-Type: application/octet-stream"));
    assert_non_null(strstr(r.headers, "Content-Disposition: attachment; filename=\"heap\""));
    pcodec_profile *p = pcodec_decode(r.body, r.body_len, NULL, 0);
    assert_non_null(p);
    check_header(p, HPROF_HEAP);
    assert_int_equal(p->n_sample, 6);
    pcodec_free(p);
    free(r.body);
    assert_int_equal(fake_collect_takes(), takes + 1); /* one snapshot per request */

    http_get(s.port, "/debug/pprof/allocs?gc=1&unknown=x", &r); /* ignored, as Go does */
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Content-Disposition: attachment; filename=\"allocs\""));
    p = pcodec_decode(r.body, r.body_len, NULL, 0);
    assert_non_null(p);
    check_header(p, HPROF_ALLOCS);
    pcodec_free(p);
    free(r.body);

    /* Bad parameters, as Go's handler refuses them (tests/profiler_http covers the rest). */
    static const char *const bad[] = {
        "/debug/pprof/heap?seconds=abc", "/debug/pprof/heap?seconds=0",
        "/debug/pprof/allocs?x&debug=2&seconds=1", "/debug/pprof/heap?seconds=301"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        http_get(s.port, bad[i], &r);
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.headers, "Content-Type: text/plain"));
        assert_non_null(strstr(r.headers, "X-Go-Pprof: 1"));
        assert_null(strstr(r.headers, "Content-Disposition"));
        assert_true(r.body_len > 10 && r.body[r.body_len - 1] == '\n');
        free(r.body);
    }
    /* debug=N (decoded) is the legacy text, with its memory map. */
    static const char *const text[] = {"/debug/pprof/heap?debug=1",
                                       "/debug/pprof/heap?a=%zz&debug=%31"};
    for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
        http_get(s.port, text[i], &r);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.headers, "Content-Type: text/plain"));
        assert_true(strncmp((char *)r.body, "heap profile: ", 14) == 0);
        assert_non_null(strstr((char *)r.body, "\nMAPPED_LIBRARIES:\n"));
        free(r.body);
    }
    /* debug=0, or a debug Go's Atoi cannot read, is the binary profile, as in Go. */
    static const char *const good[] = {"/debug/pprof/heap?debug=0", "/debug/pprof/heap?debug=x",
                                       "/debug/pprof/heap?debug&seconds=", "/debug/pprof/heap?%zz"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        http_get(s.port, good[i], &r);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.headers, "Content-Type: application/octet-stream"));
        free(r.body);
    }
    server_stop(&s);
}

/* The registry is the one list: every entry is routed, listed on the index with its count
 * link and description, and sorted and unique by name (Go's order); other names are Go's
 * "Unknown profile". */
static void test_registry(void **state)
{
    (void)state;
    struct server s;
    server_start(&s);
    struct response r;
    http_get(s.port, "/debug/pprof/", &r);
    assert_int_equal(r.status, 200);
    char *index = (char *)r.body;
    assert_true(hprof_n_profiles >= 6);
    for (size_t i = 0; i < hprof_n_profiles; i++) {
        const struct hprof_profile *p = &hprof_profiles[i];
        assert_ptr_equal(hprof_profile_lookup(p->name), p);
        if (i > 0)
            assert_true(strcmp(hprof_profiles[i - 1].name, p->name) < 0);
        char want[256];
        snprintf(want, sizeof(want), "<a href='%s?debug=1'>%s</a>", p->name, p->name);
        assert_non_null(strstr(index, want));
        snprintf(want, sizeof(want), "<li><div class=profile-name>%s: </div> ", p->name);
        assert_non_null(strstr(index, want));
        assert_true(p->serve != NULL || p->write_proto != NULL);
        char path[160];
        if (p->serve != NULL) {
            /* An endpoint of its own: routed (a bad seconds is 400 from the CPU profile, the
             * others ignore it), never the unknown-profile 404. */
            snprintf(path, sizeof(path), "/debug/pprof/%s?seconds=abc", p->name);
            http_get(s.port, path, &r);
            assert_int_not_equal(r.status, 404);
            free(r.body);
            continue;
        }
        if (!p->delta) {
            /* Routed to the generic handler, which refuses seconds for it before taking any
             * data (the threads profile's capture is tested in tests/profiler_http, outside
             * valgrind, whose view of libunwind's probes is noisy). */
            snprintf(path, sizeof(path), "/debug/pprof/%s?seconds=1", p->name);
            http_get(s.port, path, &r);
            assert_int_equal(r.status, 400);
            assert_non_null(strstr((char *)r.body, "not supported for this profile type"));
            free(r.body);
            continue;
        }
        snprintf(path, sizeof(path), "/debug/pprof/%s", p->name);
        http_get(s.port, path, &r);
        assert_int_equal(r.status, 200);
        snprintf(want, sizeof(want), "filename=\"%s\"", p->name);
        assert_non_null(strstr(r.headers, want));
        pcodec_profile *decoded = pcodec_decode(r.body, r.body_len, NULL, 0);
        assert_non_null(decoded);
        pcodec_free(decoded);
        free(r.body);
    }
    free(index);
    assert_null(hprof_profile_lookup("nope"));
    http_get(s.port, "/debug/pprof/nope", &r);
    assert_int_equal(r.status, 404);
    assert_string_equal((char *)r.body, "Unknown profile: nope\n");
    free(r.body);
    server_stop(&s);
}

int main(void)
{
    /* The HTTP test stops its server's loop from the test thread: libevent must be told. */
    if (evthread_use_pthreads() != 0)
        return 1;
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maps_parse),    cmocka_unit_test(test_maps_self_build_id),
        cmocka_unit_test(test_encode_values), cmocka_unit_test(test_symbols),
        cmocka_unit_test(test_deterministic), cmocka_unit_test(test_empty_and_unsymbolized),
        cmocka_unit_test(test_sym_cache),     cmocka_unit_test(test_write_path),
        cmocka_unit_test(test_write_errors),  cmocka_unit_test(test_http),
        cmocka_unit_test(test_registry),
    };
    int failed = cmocka_run_group_tests(tests, setup, NULL);
    hprof_sym_reset(); /* leave nothing for valgrind to report */
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (failed == 0 && system(cmd) != 0)
        return 1;
    return failed;
}
