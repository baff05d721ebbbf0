/*
 * hprof_pprof: the generic pprof builder (in the spirit of Go's runtime/pprof profileBuilder),
 * and the heap and allocs profiles written over it.
 *
 * Builder model: a writer declares the period type and period, the sample types, the default
 * sample type, times and comments, then adds samples as (PCs, values, labels); finish encodes
 * the profile with protobuf-c and gzips it, once. The builder interns strings (string_table[0]
 * == "", a growing table: callers never size it), and dedups locations (one per distinct PC),
 * functions (one per distinct name, system name, file, start line) and mappings (all of the
 * process's executable mappings, the main executable's first, as pprof takes Mapping[0] for the
 * main binary; a location points at the mapping that contains its PC). Locations are
 * symbolized through a callback (the in-process symbolizer by default, a fake in tests, none
 * for bare profiles); a location's lines are its frames, innermost inlined function first.
 *
 * A mapping says has_functions / has_filenames / has_line_numbers / has_inline_frames only when
 * every location in it got that information: pprof then trusts the profile and does not look
 * for the binary. A mapping with no location in it claims nothing.
 *
 * Invariants: the output is a function of the calls, the mappings and the symbols alone: ids
 * and string indices are assigned in first-use order (the mappings' strings when the first
 * sample is added, or at finish), so the same calls in the same process encode to the same
 * bytes. The protobuf messages live in one arena freed at the end; nothing here holds a lock
 * malloc needs (the symbolizer's own mutex is held from new to finish). All allocations are
 * inside hprof_internal_enter/exit.
 *
 * Heap and allocs (as Go's protomem.go writes them): one sample per bucket, values
 *   alloc_objects/count, alloc_space/bytes, inuse_objects/count, inuse_space/bytes
 * (the bucket's unbiased estimates, rounded to the nearest integer), period_type space/bytes,
 * period = the sampling rate, and a numeric label bytes = the allocation size (unit "bytes";
 * omitted for size 0, as Go does). default_sample_type is "alloc_space" for the allocs profile
 * and unset for heap, so pprof shows the last type, inuse_space.
 */
#include "hprof_output.h"

#include "hprof_assert.h"
#include "hprof_hash.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pcodec.h"

#define ARENA_CHUNK_BYTES (256u << 10) /* bytes per arena chunk */
#define INDEX_MIN_SLOTS   256          /* hash index slots (power of two), load kept <= 1/2 */

typedef Perftools__Profiles__ValueType pb_value_type;
typedef Perftools__Profiles__Sample pb_sample;
typedef Perftools__Profiles__Label pb_label;
typedef Perftools__Profiles__Mapping pb_mapping;
typedef Perftools__Profiles__Location pb_location;
typedef Perftools__Profiles__Line pb_line;
typedef Perftools__Profiles__Function pb_function;

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    max_align_t data[];
};

/* An open-addressing index of ids (1-based; 0 = empty) into an array owned by the caller, which
 * supplies the hash and the comparison. */
struct index {
    uint32_t *slots;
    uint64_t *hashes;
    size_t n_slots, n;
};

/* A growable array of pointers (the repeated fields of the profile). */
struct vec {
    void **v;
    size_t n, cap;
};

struct hprof_pb {
    struct arena_chunk *arena;
    pcodec_profile *p;
    const struct hprof_maps *maps;
    struct hprof_maps own_maps;      /* read at new when the caller gave none */
    hprof_pb_symbolize_fn symbolize; /* NULL: bare locations */
    void *symbolize_arg;
    bool sym_locked;     /* the in-process symbolizer's session is open */
    bool mappings_added; /* the mappings' strings are interned after the header's */
    bool failed;         /* a call ran out of memory: finish fails */
    struct vec sample_types, comments;
    size_t *map_id; /* maps index -> mapping id in the profile */
    struct map_flags {
        size_t locations;
        unsigned all; /* AND of the HPROF_SYM_* flags of its locations */
    } * map_flags;
    struct vec strings, samples, locations, functions;
    struct index string_index, location_index, function_index;
};

static void *arena_alloc(struct hprof_pb *b, size_t size)
{
    size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    if (b->arena == NULL || b->arena->cap - b->arena->used < size) {
        size_t cap = size > ARENA_CHUNK_BYTES ? size : ARENA_CHUNK_BYTES;
        struct arena_chunk *c = malloc(sizeof(*c) + cap);
        if (c == NULL)
            return NULL;
        c->next = b->arena;
        c->used = 0;
        c->cap = cap;
        b->arena = c;
    }
    void *p = (char *)b->arena->data + b->arena->used;
    b->arena->used += size;
    memset(p, 0, size);
    return p;
}

static void arena_free(struct hprof_pb *b)
{
    while (b->arena != NULL) {
        struct arena_chunk *next = b->arena->next;
        free(b->arena);
        b->arena = next;
    }
}

static int vec_push(struct vec *v, void *item)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        void **bigger = realloc(v->v, cap * sizeof(*bigger));
        if (bigger == NULL)
            return -1;
        v->v = bigger;
        v->cap = cap;
    }
    v->v[v->n++] = item;
    return 0;
}

static int index_grow(struct index *ix)
{
    size_t n = ix->n_slots ? ix->n_slots * 2 : INDEX_MIN_SLOTS;
    uint32_t *slots = calloc(n, sizeof(*slots));
    uint64_t *hashes = calloc(n, sizeof(*hashes));
    if (slots == NULL || hashes == NULL) {
        free(slots);
        free(hashes);
        return -1;
    }
    for (size_t i = 0; i < ix->n_slots; i++) {
        if (ix->slots[i] == 0)
            continue;
        size_t j = ix->hashes[i] & (n - 1);
        while (slots[j] != 0)
            j = (j + 1) & (n - 1);
        slots[j] = ix->slots[i];
        hashes[j] = ix->hashes[i];
    }
    free(ix->slots);
    free(ix->hashes);
    ix->slots = slots;
    ix->hashes = hashes;
    ix->n_slots = n;
    return 0;
}

/* Find the slot for hash h: returns the id there (0 if the key is absent; *slot is then where
 * to insert). eq(ctx, id) says whether id holds the key; NULL when the hash is a bijection of
 * the key, so equal hashes are equal keys. */
static uint32_t index_find(struct index *ix, uint64_t h, bool (*eq)(const void *, uint32_t),
                           const void *ctx, size_t *slot)
{
    size_t j = h & (ix->n_slots - 1);
    for (; ix->slots[j] != 0; j = (j + 1) & (ix->n_slots - 1))
        if (ix->hashes[j] == h && (eq == NULL || eq(ctx, ix->slots[j])))
            return ix->slots[j];
    *slot = j;
    return 0;
}

static int index_reserve(struct index *ix)
{
    return (ix->n + 1) * 2 > ix->n_slots ? index_grow(ix) : 0;
}

static void index_free(struct index *ix)
{
    free(ix->slots);
    free(ix->hashes);
}

/* ---- strings ---- */

struct str_key {
    struct hprof_pb *b;
    const char *s;
};

static bool str_eq(const void *ctx, uint32_t id)
{
    const struct str_key *k = ctx;
    return strcmp(k->b->strings.v[id - 1], k->s) == 0;
}

/* The string table index of s, adding it on first use; -1 when out of memory. */
static int64_t str_id(struct hprof_pb *b, const char *s)
{
    if (s == NULL)
        s = "";
    if (index_reserve(&b->string_index) != 0)
        return -1;
    uint64_t h = hprof_hash_str(s);
    struct str_key key = {b, s};
    size_t slot;
    uint32_t id = index_find(&b->string_index, h, str_eq, &key, &slot);
    if (id != 0)
        return id - 1;
    size_t len = strlen(s) + 1;
    char *copy = arena_alloc(b, len);
    if (copy == NULL || vec_push(&b->strings, copy) != 0)
        return -1;
    memcpy(copy, s, len);
    b->string_index.slots[slot] = (uint32_t)b->strings.n;
    b->string_index.hashes[slot] = h;
    b->string_index.n++;
    return (int64_t)b->strings.n - 1;
}

static pb_value_type *value_type(struct hprof_pb *b, const char *type, const char *unit)
{
    pb_value_type *vt = arena_alloc(b, sizeof(*vt));
    if (vt == NULL)
        return NULL;
    perftools__profiles__value_type__init(vt);
    vt->type = str_id(b, type);
    vt->unit = str_id(b, unit);
    if (vt->type < 0 || vt->unit < 0)
        return NULL;
    return vt;
}

/* ---- functions ---- */

struct func_key {
    struct hprof_pb *b;
    int64_t name, system_name, filename, start_line;
};

static bool func_eq(const void *ctx, uint32_t id)
{
    const struct func_key *k = ctx;
    const pb_function *f = k->b->functions.v[id - 1];
    return f->name == k->name && f->system_name == k->system_name && f->filename == k->filename &&
           f->start_line == k->start_line;
}

/* The id of the function of a frame, adding it on first use; 0 when out of memory. */
static uint64_t function_id(struct hprof_pb *b, const struct hprof_frame *frame)
{
    struct func_key key = {b, str_id(b, frame->name), str_id(b, frame->system_name),
                           str_id(b, frame->file), frame->start_line};
    if (key.name < 0 || key.system_name < 0 || key.filename < 0 ||
        index_reserve(&b->function_index) != 0)
        return 0;
    uint64_t h = hprof_hash_mix64((uint64_t)key.name ^ hprof_hash_mix64((uint64_t)key.system_name) ^
                                  hprof_hash_mix64((uint64_t)key.filename << 1) ^
                                  hprof_hash_mix64((uint64_t)key.start_line << 2));
    size_t slot;
    uint32_t id = index_find(&b->function_index, h, func_eq, &key, &slot);
    if (id != 0)
        return id;
    pb_function *f = arena_alloc(b, sizeof(*f));
    if (f == NULL || vec_push(&b->functions, f) != 0)
        return 0;
    perftools__profiles__function__init(f);
    f->id = b->functions.n;
    f->name = key.name;
    f->system_name = key.system_name;
    f->filename = key.filename;
    f->start_line = key.start_line;
    b->function_index.slots[slot] = (uint32_t)f->id;
    b->function_index.hashes[slot] = h;
    b->function_index.n++;
    return f->id;
}

/* ---- locations ---- */

/* The id of the location of pc, adding (and symbolizing) it on first use; 0 when out of
 * memory. */
static uint64_t location_id(struct hprof_pb *b, uint64_t pc)
{
    if (index_reserve(&b->location_index) != 0)
        return 0;
    /* mix64 is a bijection: equal hashes are equal PCs, so a lookup never reads a location
     * (a cache miss per frame: perf put most of the lookups' samples on that load). */
    uint64_t h = hprof_hash_mix64(pc);
    size_t slot;
    uint32_t id = index_find(&b->location_index, h, NULL, NULL, &slot);
    if (id != 0)
        return id;
    pb_location *loc = arena_alloc(b, sizeof(*loc));
    if (loc == NULL || vec_push(&b->locations, loc) != 0)
        return 0;
    perftools__profiles__location__init(loc);
    loc->id = b->locations.n;
    loc->address = pc;
    ssize_t m = hprof_maps_find(b->maps, pc);
    if (m >= 0)
        loc->mapping_id = b->map_id[m];

    struct hprof_symbol sym = {0, 0, NULL};
    if (b->symbolize != NULL)
        b->symbolize(b->symbolize_arg, pc, &sym);
    if (sym.n_frames > 0) {
        loc->line = arena_alloc(b, sym.n_frames * sizeof(*loc->line));
        if (loc->line == NULL)
            return 0;
        for (unsigned i = 0; i < sym.n_frames; i++) {
            pb_line *line = arena_alloc(b, sizeof(*line));
            if (line == NULL)
                return 0;
            perftools__profiles__line__init(line);
            line->function_id = function_id(b, &sym.frames[i]);
            if (line->function_id == 0)
                return 0;
            line->line = sym.frames[i].line;
            loc->line[i] = line;
        }
        loc->n_line = sym.n_frames;
    }
    if (m >= 0) {
        b->map_flags[m].locations++;
        b->map_flags[m].all &= sym.flags;
    }
    b->location_index.slots[slot] = (uint32_t)loc->id;
    b->location_index.hashes[slot] = h;
    b->location_index.n++;
    return loc->id;
}

/* ---- the profile ---- */

static int add_mappings(struct hprof_pb *b)
{
    const struct hprof_maps *maps = b->maps;
    pcodec_profile *p = b->p;
    b->mappings_added = true;
    if (maps->n == 0)
        return 0;
    p->mapping = arena_alloc(b, maps->n * sizeof(*p->mapping));
    if (p->mapping == NULL)
        return -1;
    size_t next = 0;
    for (size_t pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < maps->n; i++) {
            bool is_main = (ssize_t)i == maps->main;
            if ((pass == 0) != is_main)
                continue;
            const struct hprof_mapping *m = &maps->v[i];
            pb_mapping *pm = arena_alloc(b, sizeof(*pm));
            if (pm == NULL)
                return -1;
            perftools__profiles__mapping__init(pm);
            pm->id = next + 1;
            pm->memory_start = m->start;
            pm->memory_limit = m->limit;
            pm->file_offset = m->offset;
            pm->filename = str_id(b, m->path);
            pm->build_id = str_id(b, m->build_id);
            if (pm->filename < 0 || pm->build_id < 0)
                return -1;
            b->map_id[i] = pm->id;
            p->mapping[next++] = pm;
        }
    }
    p->n_mapping = next;
    return 0;
}

static void set_mapping_flags(struct hprof_pb *b)
{
    for (size_t i = 0; i < b->maps->n; i++) {
        const struct map_flags *f = &b->map_flags[i];
        if (f->locations == 0)
            continue;
        pb_mapping *pm = b->p->mapping[b->map_id[i] - 1];
        pm->has_functions = (f->all & HPROF_SYM_FUNCTION) != 0;
        pm->has_filenames = (f->all & HPROF_SYM_FILE) != 0;
        pm->has_line_numbers = (f->all & HPROF_SYM_LINE) != 0;
        pm->has_inline_frames = (f->all & HPROF_SYM_INLINE) != 0;
    }
}

/* ---- the builder's interface ---- */

static void sym_in_process(void *arg, uint64_t pc, struct hprof_symbol *out)
{
    (void)arg;
    hprof_sym_lookup(pc, out);
}

/* Record a failure: the builder refuses everything after it and finish returns -1. */
static int fail(struct hprof_pb *b)
{
    b->failed = true;
    return -1;
}

struct hprof_pb *hprof_pb_new(const struct hprof_maps *maps, int symbolize)
{
    hprof_internal_enter();
    struct hprof_pb *b = calloc(1, sizeof(*b));
    if (b == NULL)
        goto fail;
    b->own_maps.main = -1;
    if (maps == NULL) {
        /* Without /proc/self/maps (a sandbox) the profile still has its samples and symbols,
         * with locations outside any mapping, rather than no profile at all: a failed read
         * leaves the mappings empty (hprof_maps_read frees what it had and says so in errno,
         * which must not leak into the profile's outcome). */
        int saved = errno;
        if (hprof_maps_read(&b->own_maps) != 0) {
            memset(&b->own_maps, 0, sizeof(b->own_maps));
            b->own_maps.main = -1;
        }
        errno = saved;
        maps = &b->own_maps;
    }
    b->maps = maps;
    b->p = arena_alloc(b, sizeof(*b->p));
    b->map_id = calloc(maps->n ? maps->n : 1, sizeof(*b->map_id));
    b->map_flags = calloc(maps->n ? maps->n : 1, sizeof(*b->map_flags));
    if (b->p == NULL || b->map_id == NULL || b->map_flags == NULL)
        goto fail;
    perftools__profiles__profile__init(b->p);
    for (size_t i = 0; i < maps->n; i++)
        b->map_flags[i].all = ~0u;
    if (str_id(b, "") != 0)
        goto fail;
    hprof_internal_exit();
    if (symbolize) {
        /* A symbolizer that cannot start leaves locations bare, and their mappings claim
         * nothing. Its mutex is held until finish (or free). */
        (void)hprof_sym_begin(maps);
        b->sym_locked = true;
        b->symbolize = sym_in_process;
    }
    return b;
fail:
    hprof_internal_exit();
    hprof_pb_free(b);
    errno = ENOMEM;
    return NULL;
}

void hprof_pb_set_symbolizer(struct hprof_pb *b, hprof_pb_symbolize_fn fn, void *arg)
{
    b->symbolize = fn;
    b->symbolize_arg = arg;
}

int hprof_pb_period(struct hprof_pb *b, const char *type, const char *unit, int64_t period)
{
    HPROF_ASSERT(!b->mappings_added); /* declarations come before the samples */
    if (b->failed)
        return -1;
    hprof_internal_enter();
    b->p->period_type = value_type(b, type, unit);
    b->p->period = period;
    hprof_internal_exit();
    return b->p->period_type != NULL ? 0 : fail(b);
}

int hprof_pb_sample_type(struct hprof_pb *b, const char *type, const char *unit)
{
    HPROF_ASSERT(!b->mappings_added);
    if (b->failed)
        return -1;
    hprof_internal_enter();
    pb_value_type *vt = value_type(b, type, unit);
    int rc = vt != NULL && vec_push(&b->sample_types, vt) == 0 ? 0 : -1;
    hprof_internal_exit();
    return rc == 0 ? 0 : fail(b);
}

int hprof_pb_default_type(struct hprof_pb *b, const char *type)
{
    HPROF_ASSERT(!b->mappings_added);
    if (b->failed)
        return -1;
    hprof_internal_enter();
    b->p->default_sample_type = str_id(b, type);
    hprof_internal_exit();
    return b->p->default_sample_type >= 0 ? 0 : fail(b);
}

void hprof_pb_times(struct hprof_pb *b, int64_t time_ns, int64_t duration_ns)
{
    b->p->time_nanos = time_ns;
    b->p->duration_nanos = duration_ns;
}

int hprof_pb_comment(struct hprof_pb *b, const char *text)
{
    if (b->failed)
        return -1;
    hprof_internal_enter();
    int64_t id = str_id(b, text);
    int rc = id >= 0 && vec_push(&b->comments, (void *)(intptr_t)id) == 0 ? 0 : -1;
    hprof_internal_exit();
    return rc == 0 ? 0 : fail(b);
}

int hprof_pb_add(struct hprof_pb *b, const uintptr_t *pcs, int depth, const int64_t *values,
                 const struct hprof_pb_label *labels, size_t n_labels)
{
    if (b->failed)
        return -1;
    HPROF_ASSERT(b->sample_types.n > 0); /* values are per sample type: declare them first */
    hprof_internal_enter();
    int rc = -1;
    if (!b->mappings_added && add_mappings(b) != 0)
        goto out;
    size_t n_values = b->sample_types.n;
    pb_sample *s = arena_alloc(b, sizeof(*s));
    if (s == NULL || vec_push(&b->samples, s) != 0)
        goto out;
    perftools__profiles__sample__init(s);
    s->value = arena_alloc(b, n_values * sizeof(*s->value));
    if (s->value == NULL)
        goto out;
    s->n_value = n_values;
    memcpy(s->value, values, n_values * sizeof(*s->value));
    if (depth < 0)
        depth = 0;
    if (depth > HPROF_MAX_DEPTH)
        depth = HPROF_MAX_DEPTH;
    s->location_id = arena_alloc(b, (size_t)(depth ? depth : 1) * sizeof(*s->location_id));
    if (s->location_id == NULL)
        goto out;
    for (int i = 0; i < depth; i++) {
        s->location_id[i] = location_id(b, pcs[i]);
        if (s->location_id[i] == 0)
            goto out;
    }
    s->n_location_id = (size_t)depth;
    if (n_labels > 0) {
        s->label = arena_alloc(b, n_labels * sizeof(*s->label));
        if (s->label == NULL)
            goto out;
        for (size_t i = 0; i < n_labels; i++) {
            pb_label *label = arena_alloc(b, sizeof(*label));
            if (label == NULL)
                goto out;
            perftools__profiles__label__init(label);
            label->key = str_id(b, labels[i].key);
            if (labels[i].str != NULL)
                label->str = str_id(b, labels[i].str);
            label->num = labels[i].num;
            if (labels[i].num_unit != NULL)
                label->num_unit = str_id(b, labels[i].num_unit);
            if (label->key < 0 || label->str < 0 || label->num_unit < 0)
                goto out;
            s->label[i] = label;
        }
        s->n_label = n_labels;
    }
    rc = 0;
out:
    hprof_internal_exit();
    return rc == 0 ? 0 : fail(b);
}

void hprof_pb_free(struct hprof_pb *b)
{
    if (b == NULL)
        return;
    if (b->sym_locked)
        hprof_sym_end();
    hprof_internal_enter();
    arena_free(b);
    free(b->map_id);
    free(b->map_flags);
    free(b->strings.v);
    free(b->samples.v);
    free(b->locations.v);
    free(b->functions.v);
    free(b->sample_types.v);
    free(b->comments.v);
    index_free(&b->string_index);
    index_free(&b->location_index);
    index_free(&b->function_index);
    hprof_maps_free(&b->own_maps);
    free(b);
    hprof_internal_exit();
}

int hprof_pb_finish(struct hprof_pb *b, uint8_t **out, size_t *out_len)
{
    int rc = b->failed ? -1 : 0;
    if (b->sym_locked) {
        hprof_sym_end(); /* the profile holds copies of every string it uses */
        b->sym_locked = false;
    }
    hprof_internal_enter();
    pcodec_profile *p = b->p;
    int64_t *comments = NULL;
    if (rc == 0 && !b->mappings_added && add_mappings(b) != 0)
        rc = -1;
    if (rc == 0 && b->comments.n > 0) {
        comments = arena_alloc(b, b->comments.n * sizeof(*comments));
        if (comments == NULL)
            rc = -1;
        for (size_t i = 0; comments != NULL && i < b->comments.n; i++)
            comments[i] = (int64_t)(intptr_t)b->comments.v[i];
    }
    if (rc == 0) {
        set_mapping_flags(b);
        p->n_sample_type = b->sample_types.n;
        p->sample_type = (pb_value_type **)b->sample_types.v;
        p->n_comment = b->comments.n;
        p->comment = comments;
        p->n_sample = b->samples.n;
        p->sample = (pb_sample **)b->samples.v;
        p->n_location = b->locations.n;
        p->location = (pb_location **)b->locations.v;
        p->n_function = b->functions.n;
        p->function = (pb_function **)b->functions.v;
        p->n_string_table = b->strings.n;
        p->string_table = (char **)b->strings.v;
        rc = pcodec_encode_gzip(p, out, out_len);
    }
    int saved = rc == 0 ? 0 : (errno ? errno : ENOMEM);
    hprof_internal_exit();
    hprof_pb_free(b);
    if (rc != 0)
        errno = saved;
    return rc;
}

/* ---- heap and allocs ---- */

static int64_t round_estimate(double v)
{
    if (!(v > -9.2e18 && v < 9.2e18)) /* NaN or beyond int64: clamp */
        return v > 0 ? INT64_MAX : (v < 0 ? INT64_MIN : 0);
    return llround(v);
}

int hprof_pprof_encode_delta(const struct hprof_snapshot *snap, enum hprof_kind kind,
                             const struct hprof_maps *maps, int symbolize, int64_t duration_ns,
                             uint8_t **out, size_t *out_len)
{
    struct hprof_pb *b = hprof_pb_new(maps, symbolize);
    if (b == NULL)
        return -1;
    /* The same order as Go's writeHeapProto, so string indices line up with Go's. */
    hprof_pb_period(b, "space", "bytes", snap->rate > INT64_MAX ? INT64_MAX : (int64_t)snap->rate);
    hprof_pb_sample_type(b, "alloc_objects", "count");
    hprof_pb_sample_type(b, "alloc_space", "bytes");
    hprof_pb_sample_type(b, "inuse_objects", "count");
    hprof_pb_sample_type(b, "inuse_space", "bytes");
    if (kind == HPROF_ALLOCS)
        hprof_pb_default_type(b, "alloc_space");
    hprof_pb_times(b, snap->time_ns, duration_ns);
    /* The peak since start, for readers such as the heapprof launcher's summary; a delta
     * profile covers a window, which the peak since start does not describe. */
    if (snap->peak_inuse_bytes > 0 && duration_ns == 0) {
        char peak[48];
        snprintf(peak, sizeof(peak), "peak_inuse_bytes=%" PRIu64, snap->peak_inuse_bytes);
        hprof_pb_comment(b, peak);
    }
    for (size_t i = 0; i < snap->n_buckets; i++) {
        const struct hprof_bucket *bucket = &snap->buckets[i];
        int64_t values[4] = {
            round_estimate(bucket->alloc_objects), round_estimate(bucket->alloc_bytes),
            round_estimate(bucket->inuse_objects), round_estimate(bucket->inuse_bytes)};
        struct hprof_pb_label size = {
            "bytes", NULL, bucket->size > INT64_MAX ? INT64_MAX : (int64_t)bucket->size, "bytes"};
        if (hprof_pb_add(b, bucket->pcs, bucket->depth, values, &size, bucket->size > 0) != 0)
            break; /* finish reports it */
    }
    return hprof_pb_finish(b, out, out_len);
}

int hprof_pprof_encode(const struct hprof_snapshot *snapshot, enum hprof_kind kind,
                       const struct hprof_maps *maps, int symbolize, uint8_t **out, size_t *out_len)
{
    return hprof_pprof_encode_delta(snapshot, kind, maps, symbolize, 0, out, out_len);
}

int hprof_pprof_take(enum hprof_kind kind, uint8_t **out, size_t *out_len)
{
    struct hprof_snapshot snap;
    memset(&snap, 0, sizeof(snap));
    if (hprof_snapshot_take(&snap) != 0) {
        if (errno == 0)
            errno = ENOMEM;
        return -1;
    }
    int rc = hprof_pprof_encode(&snap, kind, NULL, 1, out, out_len);
    int saved = errno;
    hprof_snapshot_release(&snap);
    errno = saved;
    return rc;
}

void hprof_output_free(void *ptr)
{
    hprof_internal_enter();
    free(ptr);
    hprof_internal_exit();
}
