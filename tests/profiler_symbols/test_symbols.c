/*
 * The symbolizer (profiler/pprof/hprof_symbolize.c) on objects built for it (symtarget.c, four
 * ways: with symbols and DWARF, stripped, and with separate debug info with and without an
 * exported function) and against the libdwfl symbolizer it replaced (sym_reference.c), which is
 * what profiles answered before: where an object carries its own DWARF, the two must agree on
 * every frame (functions, files, lines, inline chains), for the target's stacks and for 8,000
 * PCs spread over every object of this process (the shape of bench_pprof's 10,000-stack
 * profile) and 8,000 more over the objects with DWARF; elsewhere (symbol tables only, or libc
 * whose DWARF is in libc6-dbg) they must name the same function, and a frame is left bare only
 * where the reference had no function either. The cache's budget and counters are checked in a run
 * of their own.
 *
 *   test_symbols DIR [default|debuginfo|cache]   DIR holds the libsymtarget_*.so builds
 *   debuginfo: run with HEAPPROF_SYMBOL_DEBUGINFO=1; cache: with HEAPPROF_SYMBOL_CACHE=65536
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dlfcn.h>
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hprof_output.h"
#include "symtarget.h"

/* The reference: today's symbolizer before issue 15, prefixed ref_sym_ (sym_reference.c). */
int ref_sym_begin(uint64_t maps_signature);
void ref_sym_lookup(uint64_t pc, struct hprof_symbol *out);
void ref_sym_end(void);
void ref_sym_reset(void);

#define N_SPREAD_PCS 8000 /* PCs over every object; as many again over those with DWARF */

static const char *lib_dir;
static const char *mode = "default";

/* A symbol copied out of the symbolizer (its strings live until end). */
struct sym_copy {
    unsigned flags, n;
    struct {
        char name[256], system_name[256], file[512];
        int64_t line, start_line;
    } f[8];
};

static void copy_symbol(const struct hprof_symbol *s, struct sym_copy *c)
{
    memset(c, 0, sizeof(*c));
    c->flags = s->flags;
    c->n = s->n_frames < 8 ? s->n_frames : 8;
    for (unsigned i = 0; i < c->n; i++) {
        snprintf(c->f[i].name, sizeof(c->f[i].name), "%s", s->frames[i].name);
        snprintf(c->f[i].system_name, sizeof(c->f[i].system_name), "%s", s->frames[i].system_name);
        snprintf(c->f[i].file, sizeof(c->f[i].file), "%s", s->frames[i].file);
        c->f[i].line = s->frames[i].line;
        c->f[i].start_line = s->frames[i].start_line;
    }
}

/* Resolve pcs with the new symbolizer and, when ref != NULL, with the reference. */
static void resolve_all(const uint64_t *pcs, size_t n, struct sym_copy *out, struct sym_copy *ref)
{
    struct hprof_maps maps;
    assert_int_equal(hprof_maps_read(&maps), 0);
    int began = hprof_sym_begin(&maps);
    for (size_t i = 0; i < n; i++) {
        struct hprof_symbol s;
        hprof_sym_lookup(pcs[i], &s);
        copy_symbol(&s, &out[i]);
    }
    hprof_sym_end();
    if (ref != NULL) {
        ref_sym_reset();
        int ref_began = ref_sym_begin(maps.signature);
        for (size_t i = 0; i < n; i++) {
            struct hprof_symbol s;
            ref_sym_lookup(pcs[i], &s);
            copy_symbol(&s, &ref[i]);
        }
        ref_sym_end();
        ref_sym_reset();
        assert_int_equal(ref_began, 0);
    }
    hprof_maps_free(&maps);
    assert_int_equal(began, 0);
}

/* a (new) and b (reference) agree. The one change allowed: where the reference had no symbol
 * (no frame, or one named after its section: "<.text>", "<.plt>"), a is named object+0xOFFSET. */
/* libasan, libubsan, libtsan: present in sanitizer builds only. */
static bool sanitizer_runtime(const char *path)
{
    return strstr(path, "san.so") != NULL;
}

/* The C runtime's start-up and tear-down code (crtstuff.c, crt1.o) is linked into every
 * program without line tables: a file and line for it can only be a neighbouring compilation
 * unit's, which the old symbolizer sometimes reported (an instrumented build moves the CUs).
 * The same name without a file agrees. */
static bool crt_frame(const struct sym_copy *got, const struct sym_copy *ref)
{
    static const char *const crt[] = {"deregister_tm_clones", "register_tm_clones",
                                      "__do_global_dtors_aux", "frame_dummy", "_start"};
    if (got->n != 1 || ref->n < 1 || got->f[0].file[0] != '\0' ||
        strcmp(got->f[0].name, ref->f[0].name) != 0)
        return false;
    for (size_t i = 0; i < sizeof(crt) / sizeof(crt[0]); i++)
        if (strcmp(got->f[0].name, crt[i]) == 0)
            return true;
    return false;
}

static bool same_symbol(const struct sym_copy *a, const struct sym_copy *b)
{
    if (b->n == 0) /* past the last section: no name at all before, object+0xOFFSET now */
        return a->n == 1 && (a->flags & HPROF_SYM_BARE) && a->f[0].file[0] == '\0';
    if (a->n != b->n || (a->flags & ~(unsigned)HPROF_SYM_BARE) != b->flags)
        return false;
    for (unsigned i = 0; i < a->n; i++) {
        bool renamed = (a->flags & HPROF_SYM_BARE) && i + 1 == a->n && b->f[i].name[0] == '<';
        if (renamed && strcmp(a->f[i].file, b->f[i].file) == 0 && a->f[i].line == b->f[i].line &&
            a->f[i].start_line == b->f[i].start_line)
            continue;
        if (strcmp(a->f[i].name, b->f[i].name) != 0 ||
            strcmp(a->f[i].system_name, b->f[i].system_name) != 0 ||
            strcmp(a->f[i].file, b->f[i].file) != 0 || a->f[i].line != b->f[i].line ||
            a->f[i].start_line != b->f[i].start_line)
            return false;
    }
    return true;
}

static void print_symbol(const char *who, uint64_t pc, const struct sym_copy *c)
{
    fprintf(stderr, "  %s %#llx flags %#x:", who, (unsigned long long)pc, c->flags);
    for (unsigned i = 0; i < c->n; i++)
        fprintf(stderr, " [%s/%s %s:%lld@%lld]", c->f[i].name, c->f[i].system_name, c->f[i].file,
                (long long)c->f[i].line, (long long)c->f[i].start_line);
    fprintf(stderr, "\n");
}

/* ---- the target's stacks ---- */

struct capture {
    uint64_t pcs[32];
    int n;
};

static void capture_stack(void *ctx)
{
    struct capture *c = ctx;
    void *ips[32];
    c->n = unw_backtrace(ips, 32);
    for (int i = 0; i < c->n; i++) /* callers: return address - 1, as the profiler records */
        c->pcs[i] = (uint64_t)(uintptr_t)ips[i] - (i > 0 ? 1 : 0);
}

struct target {
    void *handle;
    char path[4096];
    uint64_t static_pc, entry_pc;  /* in symtarget_static (inlined body), in symtarget_entry */
    uint64_t start, limit, offset; /* the executable mapping */
    int lines[SYMTARGET_LINES];
};

/* dlopen lib_dir/libsymtarget_NAME.so, run it, keep the two PCs of its frames. */
static void load_target(const char *name, struct target *t)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->path, sizeof(t->path), "%s/libsymtarget_%s.so", lib_dir, name);
    t->handle = dlopen(t->path, RTLD_NOW | RTLD_LOCAL);
    if (t->handle == NULL)
        fail_msg("dlopen %s: %s", t->path, dlerror());
    const struct symtarget_api *api = dlsym(t->handle, "symtarget_api");
    assert_non_null(api);
    struct capture c;
    api->run(capture_stack, &c, t->lines);
    struct hprof_maps maps;
    assert_int_equal(hprof_maps_read(&maps), 0);
    int found = 0;
    for (int i = 0; i < c.n && found < 2; i++) {
        ssize_t m = hprof_maps_find(&maps, c.pcs[i]);
        if (m < 0 || strstr(maps.v[m].path, name) == NULL)
            continue;
        *(found == 0 ? &t->static_pc : &t->entry_pc) = c.pcs[i];
        t->start = maps.v[m].start;
        t->limit = maps.v[m].limit;
        t->offset = maps.v[m].offset;
        found++;
    }
    hprof_maps_free(&maps);
    assert_int_equal(found, 2);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* What an object with DWARF answers: the inline chain, files and lines the calls recorded. */
static void assert_full(const struct target *t, const struct sym_copy *inl,
                        const struct sym_copy *entry)
{
    assert_int_equal(inl->n, 2);
    assert_string_equal(inl->f[0].name, "symtarget_inlined");
    assert_true(ends_with(inl->f[0].file, "/symtarget.c"));
    assert_int_equal(inl->f[0].line, t->lines[SYMTARGET_LINE_CALLBACK]);
    assert_string_equal(inl->f[1].name, "symtarget_static");
    assert_true(ends_with(inl->f[1].file, "/symtarget.c"));
    assert_int_equal(inl->f[1].line, t->lines[SYMTARGET_LINE_INLINED]);
    assert_true(inl->f[1].start_line > 0 && inl->f[1].start_line < inl->f[1].line);
    const unsigned all = HPROF_SYM_FUNCTION | HPROF_SYM_FILE | HPROF_SYM_LINE | HPROF_SYM_INLINE;
    assert_int_equal(inl->flags, all);
    assert_int_equal(entry->n, 1);
    assert_string_equal(entry->f[0].name, "symtarget_entry");
    assert_int_equal(entry->f[0].line, t->lines[SYMTARGET_LINE_STATIC]);
    assert_int_equal(entry->flags, all);
}

/* The target resolved by both symbolizers; they must agree, and answer what assert_full says. */
static void check_full(const char *name)
{
    struct target t;
    load_target(name, &t);
    uint64_t pcs[2] = {t.static_pc, t.entry_pc};
    struct sym_copy got[2], ref[2];
    resolve_all(pcs, 2, got, ref);
    for (int i = 0; i < 2; i++) {
        if (!same_symbol(&got[i], &ref[i])) {
            print_symbol("new", pcs[i], &got[i]);
            print_symbol("ref", pcs[i], &ref[i]);
            fail_msg("%s: the symbolizer and its reference differ", name);
        }
    }
    assert_full(&t, &got[0], &got[1]);
    dlclose(t.handle);
}

static void test_full(void **state)
{
    (void)state;
    check_full("full");
}

/* Only its debug file names its functions (nothing in .dynsym): it is read, DWARF included. */
static void test_split(void **state)
{
    (void)state;
    check_full("split");
}

/* A bare name: object+0xOFFSET, offset in the file. */
static void assert_bare(const struct target *t, uint64_t pc, const struct sym_copy *s)
{
    char want[512];
    const char *base = strrchr(t->path, '/') + 1;
    snprintf(want, sizeof(want), "%s+0x%llx", base,
             (unsigned long long)(pc - t->start + t->offset));
    assert_int_equal(s->n, 1);
    assert_string_equal(s->f[0].name, want);
    assert_string_equal(s->f[0].system_name, want);
    assert_string_equal(s->f[0].file, "");
    assert_true(s->flags & HPROF_SYM_BARE);
    assert_true(s->flags & HPROF_SYM_FUNCTION);
    assert_false(s->flags & (HPROF_SYM_FILE | HPROF_SYM_LINE | HPROF_SYM_INLINE));
}

/* Stripped, no debug file: .dynsym names the exported entry; the static function has no name
 * left, so its frame is the object and the offset. */
static void test_stripped(void **state)
{
    (void)state;
    struct target t;
    load_target("stripped", &t);
    uint64_t pcs[2] = {t.static_pc, t.entry_pc};
    struct sym_copy got[2];
    resolve_all(pcs, 2, got, NULL);
    assert_bare(&t, t.static_pc, &got[0]);
    assert_int_equal(got[1].n, 1);
    assert_string_equal(got[1].f[0].name, "symtarget_entry");
    assert_string_equal(got[1].f[0].file, "");
    assert_int_equal(got[1].flags, HPROF_SYM_FUNCTION);
    dlclose(t.handle);
}

/* Stripped with a debug file (libc with libc6-dbg): .dynsym names the entry, the debug file's
 * symbol table the static function; its compressed DWARF is read only when
 * HEAPPROF_SYMBOL_DEBUGINFO=1 asks for it. */
static void test_dbglink(void **state)
{
    (void)state;
    struct target t;
    load_target("dbglink", &t);
    uint64_t pcs[2] = {t.static_pc, t.entry_pc};
    struct sym_copy got[2], ref[2];
    resolve_all(pcs, 2, got, ref);
    if (strcmp(mode, "debuginfo") == 0) {
        assert_true(same_symbol(&got[0], &ref[0]) && same_symbol(&got[1], &ref[1]));
        assert_full(&t, &got[0], &got[1]);
    } else {
        assert_int_equal(got[0].n, 1);
        assert_string_equal(got[0].f[0].name, "symtarget_static");
        assert_string_equal(got[0].f[0].file, "");
        assert_int_equal(got[0].flags, HPROF_SYM_FUNCTION);
        assert_int_equal(got[1].n, 1);
        assert_string_equal(got[1].f[0].name, "symtarget_entry");
        assert_int_equal(got[1].flags, HPROF_SYM_FUNCTION);
        /* The reference read the debug file's DWARF: the same functions, outermost first. */
        assert_string_equal(ref[0].f[ref[0].n - 1].name, got[0].f[0].name);
        assert_string_equal(ref[1].f[0].name, got[1].f[0].name);
    }
    dlclose(t.handle);
}

/* ---- PCs spread over every object, against the reference ---- */

/* n PCs spread evenly over the file-backed executable mappings (as bench_pprof's), or over those
 * marked in only (when not NULL), into pcs. */
static void spread_into(const struct hprof_maps *maps, const bool *only, uint64_t *pcs, size_t n)
{
    uint64_t total = 0;
    for (size_t i = 0; i < maps->n; i++)
        if (maps->v[i].path[0] == '/' && (only == NULL || only[i]))
            total += maps->v[i].limit - maps->v[i].start;
    uint64_t step = total / n, at = step / 2;
    size_t k = 0;
    for (size_t i = 0; i < maps->n && k < n; i++) {
        const struct hprof_mapping *m = &maps->v[i];
        if (m->path[0] != '/' || (only != NULL && !only[i]))
            continue;
        for (; at < m->limit - m->start && k < n; at += step)
            pcs[k++] = m->start + at;
        at -= m->limit - m->start;
    }
    while (k < n)
        pcs[k] = pcs[k - 1], k++;
}

static uint64_t *spread_pcs(const struct hprof_maps *maps, size_t n)
{
    uint64_t *pcs = calloc(n, sizeof(*pcs));
    assert_non_null(pcs);
    spread_into(maps, NULL, pcs, n);
    return pcs;
}

/* Does path have DWARF of its own (a .debug_info section)? Asked of readelf, independently of
 * the code under test. */
static bool has_own_dwarf(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "readelf -SW '%s' 2>/dev/null | grep -q '\\.debug_info'", path);
    return system(cmd) == 0;
}

/* Function symbols of an ELF file as readelf lists them (independent of the code under test):
 * name (version stripped) and value. A few files are kept. */
struct value_table {
    char path[4096];
    size_t n;
    struct {
        char name[128];
        unsigned long long value, size;
    } * v;
};

static struct value_table tables[8];

static const struct value_table *values_of(const char *path)
{
    for (size_t i = 0; i < 8; i++)
        if (strcmp(tables[i].path, path) == 0)
            return &tables[i];
    static size_t next;
    struct value_table *t = &tables[next++ % 8];
    free(t->v);
    memset(t, 0, sizeof(*t));
    snprintf(t->path, sizeof(t->path), "%s", path);
    char cmd[4200], line[1024];
    snprintf(cmd, sizeof(cmd), "readelf -sW '%s' 2>/dev/null", path);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t cap = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long long value;
        char size[32], type[32], name[128];
        if (sscanf(line, " %*[0-9]: %llx %31s %31s %*s %*s %*s %127s", &value, size, type, name) !=
                4 ||
            (strcmp(type, "FUNC") != 0 && strcmp(type, "IFUNC") != 0) || value == 0)
            continue;
        if (t->n == cap) {
            cap = cap ? cap * 2 : 1024;
            t->v = realloc(t->v, cap * sizeof(*t->v));
            assert_non_null(t->v);
        }
        char *at = strchr(name, '@');
        if (at != NULL)
            *at = '\0';
        snprintf(t->v[t->n].name, sizeof(t->v[t->n].name), "%s", name);
        t->v[t->n].size = strtoull(size, NULL, 0);
        t->v[t->n++].value = value;
    }
    pclose(f);
    return t;
}

/* Do a and b name one address in t? (A versioned name may be at several: glob64@GLIBC_2.2.5 and
 * glob64@@GLIBC_2.27.) */
static bool same_value(const struct value_table *t, const char *a, const char *b)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->v[i].name, a) != 0)
            continue;
        for (size_t j = 0; j < t->n; j++)
            if (t->v[j].value == t->v[i].value && strcmp(t->v[j].name, b) == 0)
                return true;
    }
    return false;
}

/* Is name a function symbol without a size in the object or its debug file (which libdwfl
 * stretched over whatever followed it: section padding, the .plt after _init)? */
static bool unsized(const struct hprof_mapping *m, const char *name)
{
    char debug[4200] = "";
    if (strlen(m->build_id) > 2)
        snprintf(debug, sizeof(debug), "/usr/lib/debug/.build-id/%.2s/%s.debug", m->build_id,
                 m->build_id + 2);
    const char *files[2] = {m->path, debug};
    for (int i = 0; i < 2; i++) {
        if (files[i][0] == '\0')
            continue;
        const struct value_table *t = values_of(files[i]);
        for (size_t j = 0; j < t->n; j++)
            if (strcmp(t->v[j].name, name) == 0 && t->v[j].size == 0)
                return true;
    }
    return false;
}

/* Two names of one function: readelf finds both at one address in the object or in its debug
 * file. */
static bool aliases(const struct hprof_mapping *m, const char *a, const char *b)
{
    char debug[4200] = "";
    if (strlen(m->build_id) > 2)
        snprintf(debug, sizeof(debug), "/usr/lib/debug/.build-id/%.2s/%s.debug", m->build_id,
                 m->build_id + 2);
    const char *files[2] = {m->path, debug};
    for (int i = 0; i < 2; i++) {
        if (files[i][0] == '\0')
            continue;
        if (same_value(values_of(files[i]), a, b))
            return true;
    }
    return false;
}

/* name without GCC's clone suffixes (.part.0, .constprop.0, .isra.0, .cold) or a symbol version
 * (@GLIBC_2.2.5) into buf. */
static const char *unclone(const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s", name);
    char *cut = strpbrk(buf + (buf[0] != '\0'), ".@");
    if (cut != NULL)
        *cut = '\0';
    return buf;
}

/* The function the reference found pc in (its outermost frame: it read libc6-dbg's DWARF where
 * we read symbol tables) is the function got names: the same name or linkage name, but for a
 * GCC clone suffix, or an alias (one address, says readelf). */
static bool same_function(const struct hprof_mapping *m, const struct sym_copy *got,
                          const struct sym_copy *ref)
{
    if (ref->n == 0) /* the reference had no name at all: ours is object+0xOFFSET */
        return (got->flags & HPROF_SYM_BARE) != 0;
    char a[256], b[256], c[256];
    const char *name = unclone(got->f[0].name, a, sizeof(a));
    const char *ref_name = ref->f[ref->n - 1].name, *ref_sys = ref->f[ref->n - 1].system_name;
    return strcmp(name, unclone(ref_name, b, sizeof(b))) == 0 ||
           strcmp(name, unclone(ref_sys, c, sizeof(c))) == 0 ||
           aliases(m, got->f[0].name, ref_name) || aliases(m, got->f[0].name, ref_sys);
}

/* The reference had no function for the PC: no frame, a section's name ("<.plt>"), the name of
 * a symbol that is not a function (__ehdr_start, the ELF header), or of a function without a
 * size and without a line there (_init, stretched past the end of .init). */
static bool no_function(const struct hprof_mapping *m, const struct sym_copy *ref)
{
    return ref->n == 0 || ref->f[0].name[0] == '<' || !aliases(m, ref->f[0].name, ref->f[0].name) ||
           (ref->n == 1 && ref->f[0].line == 0 && unsized(m, ref->f[0].name));
}

static void test_matches_reference(void **state)
{
    (void)state;
    struct target full;
    load_target("full", &full); /* one more object with DWARF among the spread */
    struct hprof_maps maps;
    assert_int_equal(hprof_maps_read(&maps), 0);
    bool *dwarf = calloc(maps.n, sizeof(*dwarf));
    assert_non_null(dwarf);
    for (size_t i = 0; i < maps.n; i++)
        dwarf[i] = maps.v[i].path[0] == '/' && has_own_dwarf(maps.v[i].path) &&
                   !sanitizer_runtime(maps.v[i].path);
    /* Spread over every object, then as many again over the objects with DWARF only (this
     * program and symtarget), where the two must agree frame for frame. */
    const size_t n = 2 * N_SPREAD_PCS;
    uint64_t *pcs = calloc(n, sizeof(*pcs));
    struct sym_copy *got = calloc(n, sizeof(*got));
    struct sym_copy *ref = calloc(n, sizeof(*ref));
    assert_true(pcs != NULL && got != NULL && ref != NULL);
    spread_into(&maps, NULL, pcs, N_SPREAD_PCS);
    spread_into(&maps, dwarf, pcs + N_SPREAD_PCS, N_SPREAD_PCS);
    resolve_all(pcs, n, got, ref);

    size_t with_dwarf = 0, named = 0, bare = 0, differ = 0;
    for (size_t i = 0; i < n; i++) {
        ssize_t m = hprof_maps_find(&maps, pcs[i]);
        assert_true(m >= 0);
        /* A sanitizer's runtime (libubsan in a UBSan build) carries DWARF built in gcc's tree,
         * where one header is reached through two compilation directories, which the two
         * symbolizers spell differently. It is in no profile a user reads: not compared. */
        if (sanitizer_runtime(maps.v[m].path))
            continue;
        /* Every PC in a file gets a name: a symbol's, or object+0xOFFSET. */
        assert_true(got[i].n >= 1 && got[i].f[got[i].n - 1].name[0] != '\0');
        if (got[i].flags & HPROF_SYM_BARE) {
            bare++;
            char want[512];
            const char *slash = strrchr(maps.v[m].path, '/');
            snprintf(want, sizeof(want), "%s+0x%llx", slash + 1,
                     (unsigned long long)(pcs[i] - maps.v[m].start + maps.v[m].offset));
            assert_string_equal(got[i].f[got[i].n - 1].name, want);
        }
        if (dwarf[m]) {
            /* Its own DWARF: exactly what the reference answered. */
            with_dwarf++;
            bool renamed = (got[i].flags & HPROF_SYM_BARE) && no_function(&maps.v[m], &ref[i]);
            if (!renamed && !same_symbol(&got[i], &ref[i]) && !crt_frame(&got[i], &ref[i])) {
                print_symbol("new", pcs[i], &got[i]);
                print_symbol("ref", pcs[i], &ref[i]);
                differ++;
            }
        } else {
            /* Names from symbol tables: the function the reference named; and no name lost (a
             * bare frame where the reference had none, or only its section's). */
            named += !(got[i].flags & HPROF_SYM_BARE);
            bool ok = got[i].flags & HPROF_SYM_BARE ? no_function(&maps.v[m], &ref[i])
                                                    : same_function(&maps.v[m], &got[i], &ref[i]);
            if (!ok) {
                print_symbol("new", pcs[i], &got[i]);
                print_symbol("ref", pcs[i], &ref[i]);
                differ++;
            }
        }
    }
    fprintf(stderr,
            "%zu PCs: %zu in objects with DWARF, %zu named by symbol tables, %zu bare, "
            "%zu differ\n",
            n, with_dwarf, named, bare, differ);
    assert_true(with_dwarf > N_SPREAD_PCS);
    assert_int_equal(differ, 0);
    for (size_t i = 0; i < 8; i++)
        free(tables[i].v);
    free(dwarf);
    free(got);
    free(ref);
    free(pcs);
    hprof_maps_free(&maps);
    dlclose(full.handle);
}

/* ---- the cache ---- */

/* HEAPPROF_SYMBOL_CACHE=65536: a profile of 8,000 PCs may exceed it while it runs, and leaves
 * the cache within it; a profile that repeats PCs is answered from the cache. */
static void test_cache_budget(void **state)
{
    (void)state;
    hprof_sym_reset();
    struct hprof_maps maps;
    assert_int_equal(hprof_maps_read(&maps), 0);
    uint64_t *pcs = spread_pcs(&maps, N_SPREAD_PCS);
    struct hprof_sym_stats before, after, again;
    hprof_sym_get_stats(&before);
    assert_int_equal(before.limit_bytes, 65536);
    assert_int_equal(hprof_sym_begin(&maps), 0);
    for (size_t i = 0; i < N_SPREAD_PCS; i++) {
        struct hprof_symbol s;
        hprof_sym_lookup(pcs[i], &s);
    }
    hprof_sym_end();
    hprof_sym_get_stats(&after);
    assert_int_equal(after.misses - before.misses, N_SPREAD_PCS);
    assert_true(after.table_bytes <= after.limit_bytes);
    assert_true(after.entries > 0 && after.entries < N_SPREAD_PCS);
    assert_int_equal(after.evictions - before.evictions, N_SPREAD_PCS - after.entries);
    /* A small profile twice: the second time, every PC is a hit. */
    for (int round = 0; round < 2; round++) {
        hprof_sym_get_stats(&before);
        assert_int_equal(hprof_sym_begin(&maps), 0);
        for (size_t i = 0; i < 100; i++) {
            struct hprof_symbol s;
            hprof_sym_lookup(pcs[i * 7], &s);
        }
        hprof_sym_end();
        hprof_sym_get_stats(&again);
        if (round == 1) {
            assert_int_equal(again.hits - before.hits, 100);
            assert_int_equal(again.misses, before.misses);
        }
    }
    free(pcs);
    hprof_maps_free(&maps);
    hprof_sym_reset();
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_symbols DIR [default|debuginfo|cache]\n");
        return 2;
    }
    lib_dir = argv[1];
    if (argc > 2)
        mode = argv[2];
    if (strcmp(mode, "cache") == 0) {
        const struct CMUnitTest tests[] = {cmocka_unit_test(test_cache_budget)};
        return cmocka_run_group_tests(tests, NULL, NULL);
    }
    if (strcmp(mode, "debuginfo") == 0) {
        const struct CMUnitTest tests[] = {cmocka_unit_test(test_dbglink)};
        return cmocka_run_group_tests(tests, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_stripped),
        cmocka_unit_test(test_dbglink),
        cmocka_unit_test(test_matches_reference),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    hprof_sym_reset();
    return failed;
}
