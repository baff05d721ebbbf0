/*
 * lg_diff: see lg_diff.h. Each profile is walked once with a sign (+1 for NEW, -1 for BASE) into
 * one table of functions keyed by "name\0file" (uthash). Location and function ids are looked up
 * through per-profile hash tables because pprof ids need not be dense. `stamp` makes cum count
 * a function once per sample even when it recurses.
 */
#include "lg_diff.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

struct id_node {
    uint64_t id;
    const void *item;
    UT_hash_handle hh;
};

struct key_node {
    char *key; /* name, '\0', file, '\0' */
    size_t key_len;
    size_t index;
    UT_hash_handle hh;
};

struct builder {
    struct lg_diff_entry *entries;
    size_t n, cap;
    struct key_node *keys;
    uint64_t serial;
};

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", msg);
}

static void free_ids(struct id_node **table)
{
    struct id_node *node, *tmp;
    HASH_ITER(hh, *table, node, tmp)
    {
        HASH_DEL(*table, node);
        free(node);
    }
}

static int add_id(struct id_node **table, uint64_t id, const void *item)
{
    struct id_node *node;
    HASH_FIND(hh, *table, &id, sizeof(id), node);
    if (node != NULL)
        return 0; /* duplicate id: the first wins, as in pprof's reader */
    node = malloc(sizeof(*node));
    if (node == NULL)
        return -1;
    node->id = id;
    node->item = item;
    HASH_ADD(hh, *table, id, sizeof(node->id), node);
    return 0;
}

static const void *find_id(struct id_node *table, uint64_t id)
{
    struct id_node *node;
    HASH_FIND(hh, table, &id, sizeof(id), node);
    return node ? node->item : NULL;
}

static struct lg_diff_entry *entry_for(struct builder *b, const char *name, const char *file)
{
    size_t nl = strlen(name), fl = strlen(file);
    size_t key_len = nl + 1 + fl + 1;
    char stack_key[512];
    char *key = key_len <= sizeof(stack_key) ? stack_key : malloc(key_len);
    if (key == NULL)
        return NULL;
    memcpy(key, name, nl + 1);
    memcpy(key + nl + 1, file, fl + 1);
    struct key_node *node;
    HASH_FIND(hh, b->keys, key, key_len, node);
    if (node != NULL) {
        if (key != stack_key)
            free(key);
        return &b->entries[node->index];
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct lg_diff_entry *bigger = realloc(b->entries, cap * sizeof(*bigger));
        if (bigger == NULL)
            goto err;
        b->entries = bigger;
        b->cap = cap;
    }
    node = calloc(1, sizeof(*node));
    struct lg_diff_entry *e = &b->entries[b->n];
    memset(e, 0, sizeof(*e));
    e->function = strdup(name);
    e->file = strdup(file);
    if (node == NULL || e->function == NULL || e->file == NULL) {
        free(node);
        free(e->function);
        free(e->file);
        goto err;
    }
    node->key = malloc(key_len);
    if (node->key == NULL) {
        free(node);
        free(e->function);
        free(e->file);
        goto err;
    }
    memcpy(node->key, key, key_len);
    node->key_len = key_len;
    node->index = b->n++;
    HASH_ADD_KEYPTR(hh, b->keys, node->key, node->key_len, node);
    if (key != stack_key)
        free(key);
    return e;
err:
    if (key != stack_key)
        free(key);
    return NULL;
}

/* A location without a function: object+0xOFFSET (file offset), as the profiler names such
 * frames itself, or the bare address when no file is mapped there. */
static void bare_name(const pcodec_profile *p, const Perftools__Profiles__Location *loc, char *buf,
                      size_t size)
{
    for (size_t i = 0; i < p->n_mapping && loc->mapping_id != 0; i++) {
        const Perftools__Profiles__Mapping *m = p->mapping[i];
        const char *path = pcodec_string(p, m->filename);
        if (m->id != loc->mapping_id || path[0] != '/' || loc->address < m->memory_start)
            continue;
        const char *slash = strrchr(path, '/');
        snprintf(buf, size, "%.255s+0x%" PRIx64, slash + 1,
                 loc->address - m->memory_start + m->file_offset);
        return;
    }
    snprintf(buf, size, "0x%" PRIx64, loc->address);
}

/* Credit one frame (function of one line of one location) with a sample's values. */
static int credit(struct builder *b, const pcodec_profile *p, struct id_node *functions,
                  const Perftools__Profiles__Location *loc, const Perftools__Profiles__Line *line,
                  int leaf, int64_t bytes, int64_t objects)
{
    char addr[320];
    const char *name, *file;
    int64_t lineno = 0;
    const Perftools__Profiles__Function *fn = line ? find_id(functions, line->function_id) : NULL;
    if (fn != NULL && pcodec_string(p, fn->name)[0] != '\0') {
        name = pcodec_string(p, fn->name);
        file = pcodec_string(p, fn->filename);
        lineno = line->line;
    } else {
        bare_name(p, loc, addr, sizeof(addr));
        name = addr;
        file = "";
    }
    struct lg_diff_entry *e = entry_for(b, name, file);
    if (e == NULL)
        return -1;
    if (leaf) {
        e->flat_bytes += bytes;
        e->flat_objects += objects;
        int64_t weight = bytes < 0 ? -bytes : bytes;
        if (weight > e->line_weight || e->line == 0) {
            e->line_weight = weight;
            e->line = lineno;
        }
    } else if (e->line == 0) {
        e->line = lineno;
    }
    if (e->stamp != b->serial) {
        e->stamp = b->serial;
        e->cum_bytes += bytes;
        e->cum_objects += objects;
    }
    return 0;
}

static int walk(struct builder *b, const pcodec_profile *p, int sign, char *err, size_t errlen)
{
    int rc = -1;
    struct id_node *locations = NULL, *functions = NULL;
    int si = pcodec_sample_index(p, "inuse_space");
    int oi = pcodec_sample_index(p, "inuse_objects");
    if (si < 0) {
        set_err(err, errlen, "not a heap profile (no inuse_space sample type)");
        return -1;
    }
    for (size_t i = 0; i < p->n_location; i++)
        if (add_id(&locations, p->location[i]->id, p->location[i]) != 0)
            goto oom;
    for (size_t i = 0; i < p->n_function; i++)
        if (add_id(&functions, p->function[i]->id, p->function[i]) != 0)
            goto oom;
    for (size_t i = 0; i < p->n_sample; i++) {
        const Perftools__Profiles__Sample *s = p->sample[i];
        int64_t bytes = (size_t)si < s->n_value ? s->value[si] * sign : 0;
        int64_t objects = oi >= 0 && (size_t)oi < s->n_value ? s->value[oi] * sign : 0;
        if (bytes == 0 && objects == 0)
            continue;
        b->serial++;
        for (size_t j = 0; j < s->n_location_id; j++) {
            const Perftools__Profiles__Location *loc = find_id(locations, s->location_id[j]);
            if (loc == NULL) {
                set_err(err, errlen, "malformed profile: a sample names an unknown location");
                goto out;
            }
            if (loc->n_line == 0) {
                if (credit(b, p, functions, loc, NULL, j == 0, bytes, objects) != 0)
                    goto oom;
            }
            for (size_t k = 0; k < loc->n_line; k++)
                if (credit(b, p, functions, loc, loc->line[k], j == 0 && k == 0, bytes, objects) !=
                    0)
                    goto oom;
        }
    }
    rc = 0;
    goto out;
oom:
    set_err(err, errlen, "out of memory");
out:
    free_ids(&locations);
    free_ids(&functions);
    return rc;
}

static int64_t abs64(int64_t v)
{
    return v < 0 ? -v : v;
}

static int compare_entries(const void *pa, const void *pb)
{
    const struct lg_diff_entry *a = pa, *b = pb;
    if (abs64(a->flat_bytes) != abs64(b->flat_bytes))
        return abs64(a->flat_bytes) > abs64(b->flat_bytes) ? -1 : 1;
    if (abs64(a->cum_bytes) != abs64(b->cum_bytes))
        return abs64(a->cum_bytes) > abs64(b->cum_bytes) ? -1 : 1;
    return strcmp(a->function, b->function);
}

int lg_diff_compute(const pcodec_profile *base, const pcodec_profile *newp, struct lg_diff *out,
                    char *err, size_t errlen)
{
    struct builder b = {0};
    memset(out, 0, sizeof(*out));
    if (walk(&b, newp, 1, err, errlen) != 0)
        goto err;
    if (base != NULL && walk(&b, base, -1, err, errlen) != 0)
        goto err;
    struct key_node *node, *tmp;
    HASH_ITER(hh, b.keys, node, tmp)
    {
        HASH_DEL(b.keys, node);
        free(node->key);
        free(node);
    }
    /* Functions whose values cancel out exactly are not part of the difference. */
    size_t kept = 0;
    for (size_t i = 0; i < b.n; i++) {
        struct lg_diff_entry *e = &b.entries[i];
        if (e->flat_bytes == 0 && e->cum_bytes == 0 && e->flat_objects == 0 &&
            e->cum_objects == 0) {
            free(e->function);
            free(e->file);
            continue;
        }
        b.entries[kept++] = *e;
    }
    if (kept > 1)
        qsort(b.entries, kept, sizeof(b.entries[0]), compare_entries);
    out->entries = b.entries;
    out->n = kept;
    out->total_bytes =
        pcodec_total(newp, "inuse_space") - (base ? pcodec_total(base, "inuse_space") : 0);
    out->total_objects =
        pcodec_total(newp, "inuse_objects") - (base ? pcodec_total(base, "inuse_objects") : 0);
    return 0;
err:
    HASH_ITER(hh, b.keys, node, tmp)
    {
        HASH_DEL(b.keys, node);
        free(node->key);
        free(node);
    }
    out->entries = b.entries;
    out->n = b.n;
    lg_diff_free(out);
    return -1;
}

void lg_diff_free(struct lg_diff *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->entries[i].function);
        free(d->entries[i].file);
    }
    free(d->entries);
    d->entries = NULL;
    d->n = 0;
}

void lg_format_bytes(char *buf, size_t len, double bytes, int with_sign)
{
    const char *sign = bytes < 0 ? "-" : (with_sign ? "+" : "");
    double a = bytes < 0 ? -bytes : bytes;
    if (a >= 1024.0 * 1024 * 1024)
        snprintf(buf, len, "%s%.2f GiB", sign, a / (1024.0 * 1024 * 1024));
    else if (a >= 1024.0 * 1024)
        snprintf(buf, len, "%s%.2f MiB", sign, a / (1024.0 * 1024));
    else if (a >= 1024.0)
        snprintf(buf, len, "%s%.2f KiB", sign, a / 1024.0);
    else
        snprintf(buf, len, "%s%.0f B", sign, a);
}

void lg_diff_print(FILE *f, const struct lg_diff *d, size_t top)
{
    /* Percentages are shares of the whole change: of the sum of |flat| over all functions,
     * which stays meaningful when some functions grow and others shrink. */
    double denom = 0;
    for (size_t i = 0; i < d->n; i++)
        denom += (double)abs64(d->entries[i].flat_bytes);
    size_t shown = top && top < d->n ? top : d->n;
    char total[32], total_objects[32];
    lg_format_bytes(total, sizeof(total), (double)d->total_bytes, 1);
    snprintf(total_objects, sizeof(total_objects), "%+" PRId64, d->total_objects);
    fprintf(f, "inuse_space: total %s, %s objects; showing %zu of %zu functions\n", total,
            total_objects, shown, d->n);
    fprintf(f, "%12s %7s %7s %12s %7s %10s  %s\n", "flat", "flat%", "sum%", "cum", "cum%",
            "objects", "function (file:line)");
    double sum = 0;
    for (size_t i = 0; i < shown; i++) {
        const struct lg_diff_entry *e = &d->entries[i];
        char flat[32], cum[32];
        lg_format_bytes(flat, sizeof(flat), (double)e->flat_bytes, 1);
        lg_format_bytes(cum, sizeof(cum), (double)e->cum_bytes, 1);
        double fp = denom > 0 ? 100.0 * (double)e->flat_bytes / denom : 0;
        double cp = denom > 0 ? 100.0 * (double)e->cum_bytes / denom : 0;
        sum += fp < 0 ? -fp : fp;
        if (e->file[0] != '\0')
            fprintf(f, "%12s %6.2f%% %6.2f%% %12s %6.2f%% %+10" PRId64 "  %s %s:%" PRId64 "\n",
                    flat, fp, sum, cum, cp, e->flat_objects, e->function, e->file, e->line);
        else
            fprintf(f, "%12s %6.2f%% %6.2f%% %12s %6.2f%% %+10" PRId64 "  %s\n", flat, fp, sum, cum,
                    cp, e->flat_objects, e->function);
    }
}
