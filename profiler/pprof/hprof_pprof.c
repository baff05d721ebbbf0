/*
 * hprof_pprof: a snapshot of the bucket table -> a gzip'd pprof profile, written exactly as Go's
 * runtime/pprof writes heap profiles (protomem.go), so `go tool pprof` reads it as it reads Go's.
 *
 * Model: one Sample per bucket, with values in the sample types' order
 *   alloc_objects/count, alloc_space/bytes, inuse_objects/count, inuse_space/bytes
 * (the bucket's unbiased estimates, rounded to the nearest integer), period_type space/bytes,
 * period = the sampling rate, and a numeric label bytes = the allocation size (unit "bytes";
 * omitted for size 0, as Go does). default_sample_type is "alloc_space" for the allocs profile
 * and unset for heap, so pprof shows the last type, inuse_space. Locations are one per distinct
 * PC, listed leaf first in each sample, each pointing at its executable mapping; a location's
 * lines are its frames, innermost inlined function first. Functions are one per distinct
 * (name, system name, file, start line). The main executable's mapping is listed first (pprof
 * takes Mapping[0] for the main binary), the others in address order.
 *
 * A mapping says has_functions / has_filenames / has_line_numbers / has_inline_frames only when
 * every location in it got that information: pprof then trusts the profile and does not look
 * for the binary. A mapping with no location in it claims nothing.
 *
 * Invariants: the output is a function of the snapshot, the mappings and the symbols alone:
 * ids and string indices are assigned in first-use order over the buckets in snapshot order,
 * so the same snapshot in the same process encodes to the same bytes. The protobuf messages
 * live in one arena freed at the end; nothing here holds a lock malloc needs (the symbolizer's
 * own mutex is held while its symbols are in use). All allocations are inside
 * hprof_internal_enter/exit.
 */
#include "hprof_output.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
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

struct builder {
    struct arena_chunk *arena;
    pcodec_profile *p;
    const struct hprof_maps *maps;
    bool symbolize;
    size_t *map_id; /* maps index -> mapping id in the profile */
    struct map_flags {
        size_t locations;
        unsigned all; /* AND of the HPROF_SYM_* flags of its locations */
    } * map_flags;
    struct vec strings, samples, locations, functions;
    struct index string_index, location_index, function_index;
};

static void *arena_alloc(struct builder *b, size_t size)
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

static void arena_free(struct builder *b)
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

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
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
 * to insert). eq(ctx, id) says whether id holds the key. */
static uint32_t index_find(struct index *ix, uint64_t h, bool (*eq)(const void *, uint32_t),
                           const void *ctx, size_t *slot)
{
    size_t j = h & (ix->n_slots - 1);
    for (; ix->slots[j] != 0; j = (j + 1) & (ix->n_slots - 1))
        if (ix->hashes[j] == h && eq(ctx, ix->slots[j]))
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
    struct builder *b;
    const char *s;
};

static bool str_eq(const void *ctx, uint32_t id)
{
    const struct str_key *k = ctx;
    return strcmp(k->b->strings.v[id - 1], k->s) == 0;
}

/* The string table index of s, adding it on first use; -1 when out of memory. */
static int64_t str_id(struct builder *b, const char *s)
{
    if (s == NULL)
        s = "";
    if (index_reserve(&b->string_index) != 0)
        return -1;
    uint64_t h = 14695981039346656037ull;
    for (const char *c = s; *c != '\0'; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
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

static pb_value_type *value_type(struct builder *b, const char *type, const char *unit)
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
    struct builder *b;
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
static uint64_t function_id(struct builder *b, const struct hprof_frame *frame)
{
    struct func_key key = {b, str_id(b, frame->name), str_id(b, frame->system_name),
                           str_id(b, frame->file), frame->start_line};
    if (key.name < 0 || key.system_name < 0 || key.filename < 0 ||
        index_reserve(&b->function_index) != 0)
        return 0;
    uint64_t h = mix64((uint64_t)key.name ^ mix64((uint64_t)key.system_name) ^
                       mix64((uint64_t)key.filename << 1) ^ mix64((uint64_t)key.start_line << 2));
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

struct loc_key {
    struct builder *b;
    uint64_t pc;
};

static bool loc_eq(const void *ctx, uint32_t id)
{
    const struct loc_key *k = ctx;
    return ((pb_location *)k->b->locations.v[id - 1])->address == k->pc;
}

/* The id of the location of pc, adding (and symbolizing) it on first use; 0 when out of
 * memory. */
static uint64_t location_id(struct builder *b, uint64_t pc)
{
    if (index_reserve(&b->location_index) != 0)
        return 0;
    uint64_t h = mix64(pc);
    struct loc_key key = {b, pc};
    size_t slot;
    uint32_t id = index_find(&b->location_index, h, loc_eq, &key, &slot);
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
    if (b->symbolize)
        hprof_sym_lookup(pc, &sym);
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

static int64_t round_estimate(double v)
{
    if (!(v > -9.2e18 && v < 9.2e18)) /* NaN or beyond int64: clamp */
        return v > 0 ? INT64_MAX : (v < 0 ? INT64_MIN : 0);
    return llround(v);
}

static int add_sample(struct builder *b, const struct hprof_bucket *bucket)
{
    pb_sample *s = arena_alloc(b, sizeof(*s));
    if (s == NULL || vec_push(&b->samples, s) != 0)
        return -1;
    perftools__profiles__sample__init(s);
    s->value = arena_alloc(b, 4 * sizeof(*s->value));
    if (s->value == NULL)
        return -1;
    s->n_value = 4;
    s->value[0] = round_estimate(bucket->alloc_objects);
    s->value[1] = round_estimate(bucket->alloc_bytes);
    s->value[2] = round_estimate(bucket->inuse_objects);
    s->value[3] = round_estimate(bucket->inuse_bytes);
    int depth = bucket->depth < 0 ? 0 : bucket->depth;
    if (depth > HPROF_MAX_DEPTH)
        depth = HPROF_MAX_DEPTH;
    s->location_id = arena_alloc(b, (size_t)(depth ? depth : 1) * sizeof(*s->location_id));
    if (s->location_id == NULL)
        return -1;
    for (int i = 0; i < depth; i++) {
        s->location_id[i] = location_id(b, bucket->pcs[i]);
        if (s->location_id[i] == 0)
            return -1;
    }
    s->n_location_id = (size_t)depth;
    if (bucket->size > 0) {
        pb_label *label = arena_alloc(b, sizeof(*label));
        s->label = arena_alloc(b, sizeof(*s->label));
        if (label == NULL || s->label == NULL)
            return -1;
        perftools__profiles__label__init(label);
        label->key = str_id(b, "bytes");
        label->num = bucket->size > INT64_MAX ? INT64_MAX : (int64_t)bucket->size;
        label->num_unit = str_id(b, "bytes");
        if (label->key < 0 || label->num_unit < 0)
            return -1;
        s->label[0] = label;
        s->n_label = 1;
    }
    return 0;
}

static int add_mappings(struct builder *b)
{
    const struct hprof_maps *maps = b->maps;
    pcodec_profile *p = b->p;
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

static void set_mapping_flags(struct builder *b)
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

static int build(struct builder *b, const struct hprof_snapshot *snap, enum hprof_kind kind)
{
    pcodec_profile *p = arena_alloc(b, sizeof(*p));
    if (p == NULL)
        return -1;
    perftools__profiles__profile__init(p);
    b->p = p;
    b->map_id = calloc(b->maps->n ? b->maps->n : 1, sizeof(*b->map_id));
    b->map_flags = calloc(b->maps->n ? b->maps->n : 1, sizeof(*b->map_flags));
    if (b->map_id == NULL || b->map_flags == NULL)
        return -1;
    for (size_t i = 0; i < b->maps->n; i++)
        b->map_flags[i].all = ~0u;

    /* The same order as Go's writeHeapProto, so string indices line up with Go's. */
    if (str_id(b, "") != 0)
        return -1;
    p->period_type = value_type(b, "space", "bytes");
    p->period = snap->rate > INT64_MAX ? INT64_MAX : (int64_t)snap->rate;
    static const char *const types[4][2] = {{"alloc_objects", "count"},
                                            {"alloc_space", "bytes"},
                                            {"inuse_objects", "count"},
                                            {"inuse_space", "bytes"}};
    p->sample_type = arena_alloc(b, 4 * sizeof(*p->sample_type));
    if (p->period_type == NULL || p->sample_type == NULL)
        return -1;
    for (int i = 0; i < 4; i++)
        if ((p->sample_type[i] = value_type(b, types[i][0], types[i][1])) == NULL)
            return -1;
    p->n_sample_type = 4;
    if (kind == HPROF_ALLOCS)
        p->default_sample_type = str_id(b, "alloc_space");
    if (p->default_sample_type < 0)
        return -1;
    p->time_nanos = snap->time_ns;

    if (add_mappings(b) != 0)
        return -1;
    for (size_t i = 0; i < snap->n_buckets; i++)
        if (add_sample(b, &snap->buckets[i]) != 0)
            return -1;
    set_mapping_flags(b);

    p->n_sample = b->samples.n;
    p->sample = (pb_sample **)b->samples.v;
    p->n_location = b->locations.n;
    p->location = (pb_location **)b->locations.v;
    p->n_function = b->functions.n;
    p->function = (pb_function **)b->functions.v;
    p->n_string_table = b->strings.n;
    p->string_table = (char **)b->strings.v;
    return 0;
}

int hprof_pprof_encode(const struct hprof_snapshot *snapshot, enum hprof_kind kind,
                       const struct hprof_maps *maps, int symbolize, uint8_t **out, size_t *out_len)
{
    struct hprof_maps own;
    memset(&own, 0, sizeof(own));
    own.main = -1;
    if (maps == NULL) {
        /* Without /proc/self/maps (a sandbox) the profile still has its samples and symbols,
         * with locations outside any mapping, rather than no profile at all. */
        (void)hprof_maps_read(&own); /* on failure own stays empty */
        maps = &own;
    }
    struct builder b;
    memset(&b, 0, sizeof(b));
    b.maps = maps;
    b.symbolize = symbolize != 0;
    /* A symbolizer that cannot start leaves locations bare, and their mappings claim nothing. */
    bool sym_locked = false;
    if (b.symbolize) {
        (void)hprof_sym_begin(maps->signature);
        sym_locked = true;
    }
    hprof_internal_enter();
    int rc = build(&b, snapshot, kind);
    if (sym_locked)
        hprof_sym_end(); /* the profile holds copies of every string it uses */
    if (rc == 0)
        rc = pcodec_encode_gzip(b.p, out, out_len);
    int saved = rc == 0 ? 0 : (errno ? errno : ENOMEM);
    arena_free(&b);
    free(b.map_id);
    free(b.map_flags);
    free(b.strings.v);
    free(b.samples.v);
    free(b.locations.v);
    free(b.functions.v);
    index_free(&b.string_index);
    index_free(&b.location_index);
    index_free(&b.function_index);
    hprof_internal_exit();
    if (maps == &own)
        hprof_maps_free(&own);
    if (rc != 0)
        errno = saved;
    return rc;
}

int64_t hprof_pprof_string_index(char **table, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(table[i], s) == 0)
            return (int64_t)i;
    table[*n] = (char *)s;
    return (int64_t)(*n)++;
}

void hprof_pprof_borrow_symbols(pcodec_profile *dst, const pcodec_profile *src)
{
    dst->n_mapping = src->n_mapping;
    dst->mapping = src->mapping;
    dst->n_location = src->n_location;
    dst->location = src->location;
    dst->n_function = src->n_function;
    dst->function = src->function;
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
