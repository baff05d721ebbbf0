/*
 * hprof_symbolize: PC -> frames, in-process, so that a profile carries its own function names,
 * files and lines and reads the same on a machine without the binary. Lazy and bounded: a
 * profile pays for the PCs it holds, not for every byte of debug information of the process.
 *
 * Model. begin takes the process's executable mappings and groups them by object (file). A PC is
 * resolved, on a cache miss, in its object in three steps, each opened only when first needed
 * and each reading only what the PC needs:
 *   1. names from the ELF symbol table: .symtab, or .dynsym when the object is stripped (the file
 *      is mapped read-only by libelf; a sorted array of its function symbols is built once per
 *      profile and searched by address);
 *   2. file, line and inline frames from the object's own DWARF, when it has some: libdw finds
 *      the compilation unit holding the PC by address (.debug_aranges), and only that CU's DIEs
 *      and line table are read (dwarf_getscopes, dwarf_getsrc_die);
 *   3. separate debug info (/usr/lib/debug/.build-id/xx/yyyy.debug, then .gnu_debuglink) is read
 *      only when the object's own tables do not name the PC: its symbol table then (libc's
 *      internal functions, absent from .dynsym, are named from libc6-dbg's .symtab). Its DWARF
 *      is read when the object has no symbol table at all, or when HEAPPROF_SYMBOL_DEBUGINFO=1
 *      asks for it: Debian compresses those sections, and libdw inflates each one whole (about
 *      20 MB and 100 ms for libc), which is what made the first profile expensive.
 * A PC that no symbol covers is named object+0xOFFSET (the file offset, as pprof and loadgen
 * print it: pc - mapping start + mapping offset), e.g. libevent-2.1.so.7.0.1+0x1f3a0; a PC in an
 * anonymous mapping gets no frame.
 *
 * Memory. Everything opened for a profile (ELF maps, symbol arrays, libdw's parsed DWARF) is
 * released by hprof_sym_end: between profiles only the cache stays. The cache maps PC -> frames,
 * with names and paths interned in a chunked pool; its budget is HEAPPROF_SYMBOL_CACHE bytes
 * (default SYM_CACHE_DEFAULT_BYTES). Within a profile the cache grows with the distinct PCs of
 * that profile (their frames must stay valid until end); at end, when it is over budget, it is
 * rebuilt with the entries this profile used, up to three quarters of the budget, so a server
 * profiled again and again stays warm and an idle one never holds more than the budget.
 *
 * Invariants and locks: all state is guarded by sym_lock, held from hprof_sym_begin to
 * hprof_sym_end; malloc never takes it, and it is never taken inside malloc. All allocations
 * (ours, libelf's, libdw's) happen inside hprof_internal_enter, so they count as overhead. When
 * the set of mappings changes (dlopen, dlclose) the cache is dropped: an address may now belong to
 * another object. A fork child abandons its copy of the state (another thread may have been
 * inside libdw at the fork) and starts afresh. Nothing here touches the network (no debuginfod).
 */
#include "hprof_output.h"

#include "hprof_env.h"
#include "hprof_fork.h"
#include "hprof_hash.h"
#include "lc_util.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYM_MAX_FRAMES          32          /* inlined frames kept per PC; deeper is cut */
#define SYM_CHUNK_BYTES         (16u << 10) /* bytes per pool chunk */
#define SYM_INITIAL_SLOTS       256         /* cache slots (power of two); load factor <= 1/2 */
#define SYM_CACHE_DEFAULT_BYTES (8u << 20)  /* bytes: HEAPPROF_SYMBOL_CACHE when unset */
#define SYM_CACHE_MIN_BYTES     (64u << 10) /* bytes: smaller budgets are raised to this */
#define SYM_DEBUG_DIR           "/usr/lib/debug"

struct pool_chunk {
    struct pool_chunk *next;
    size_t used, cap;
    max_align_t data[];
};

struct sym_entry {
    uint64_t pc;    /* 0: empty slot */
    uint32_t gen;   /* the profile (begin count) that last used it */
    uint16_t flags; /* HPROF_SYM_* */
    uint16_t n_frames;
    struct hprof_frame *frames;
};

struct str_slot {
    uint64_t hash;
    const char *str; /* NULL: empty */
};

/* The cache: table, interned strings and the pool both live in. */
struct sym_cache {
    struct sym_entry *slots; /* open addressing by pc */
    size_t n_slots, n_entries, n_frames;
    struct str_slot *strs; /* interned strings, open addressing */
    size_t n_str_slots, n_strs, str_bytes;
    struct pool_chunk *pool;
    size_t pool_bytes;
};

/* A function symbol of an ELF symbol table; name points into the mapped file. The top bit of
 * size marks a weak or local name: among aliases at one address a global name wins. */
#define SYM_NOT_GLOBAL (1ull << 63)
struct elf_sym {
    uint64_t addr, size;
    const char *name;
};

/* One ELF file opened for a profile, with its function symbols sorted by address. */
struct elf_file {
    int fd;
    Elf *elf;
    struct elf_sym *syms;
    size_t n_syms;
    bool full_symtab; /* .symtab (not only .dynsym) */
    bool has_dwarf;   /* a .debug_info section of its own */
    Dwarf *dwarf;     /* opened on the first PC that needs a line */
    int dwarf_state;  /* 0 not tried, 1 open, -1 none */
};

/* An object: the mappings of one file. */
struct sym_object {
    char *path;
    const char *base; /* basename of path, for object+0xOFFSET */
    char build_id[2 * HPROF_BUILD_ID_MAX + 1];
    uint64_t map_start, map_offset; /* one executable mapping, to find the load bias */
    /* Per profile (released at end): */
    int state;     /* 0 not opened, 1 open, -1 unreadable */
    uint64_t bias; /* pc - bias = ELF virtual address */
    struct elf_file own;
    int debug_state; /* 0 not looked for, 1 open, -1 none */
    struct elf_file debug;
};

struct sym_module {
    uint64_t start, limit, offset;
    size_t object; /* index into st.objects */
};

static pthread_mutex_t sym_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t sym_once = PTHREAD_ONCE_INIT;

static struct {
    pid_t pid;          /* whose mappings these are */
    uint64_t signature; /* of the mappings last seen */
    bool have_maps;
    struct sym_module *modules; /* sorted by start */
    size_t n_modules;
    struct sym_object *objects;
    size_t n_objects;
    struct sym_cache cache;
    uint32_t gen;
    uint64_t hits, misses, evictions;
    size_t budget;
    bool debuginfo_dwarf; /* HEAPPROF_SYMBOL_DEBUGINFO=1 */
    bool configured;
} st;

/* ---- the cache ---- */

static void *pool_alloc(struct sym_cache *c, size_t size)
{
    size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    if (c->pool == NULL || c->pool->cap - c->pool->used < size) {
        size_t cap = size > SYM_CHUNK_BYTES ? size : SYM_CHUNK_BYTES;
        struct pool_chunk *chunk = malloc(sizeof(*chunk) + cap);
        if (chunk == NULL)
            return NULL;
        chunk->next = c->pool;
        chunk->used = 0;
        chunk->cap = cap;
        c->pool = chunk;
        c->pool_bytes += sizeof(*chunk) + cap;
    }
    void *p = (char *)c->pool->data + c->pool->used;
    c->pool->used += size;
    return p;
}

/* Intern s; returns the pooled copy, or "" when out of memory (a name lost, never a crash). */
static const char *intern(struct sym_cache *c, const char *s)
{
    if (s == NULL || *s == '\0')
        return "";
    if (c->n_strs * 2 >= c->n_str_slots) {
        size_t n = c->n_str_slots ? c->n_str_slots * 2 : SYM_INITIAL_SLOTS;
        struct str_slot *bigger = calloc(n, sizeof(*bigger));
        if (bigger == NULL)
            return "";
        for (size_t i = 0; i < c->n_str_slots; i++) {
            if (c->strs[i].str == NULL)
                continue;
            size_t j = c->strs[i].hash & (n - 1);
            while (bigger[j].str != NULL)
                j = (j + 1) & (n - 1);
            bigger[j] = c->strs[i];
        }
        free(c->strs);
        c->strs = bigger;
        c->n_str_slots = n;
    }
    uint64_t h = hprof_hash_str(s);
    size_t j = h & (c->n_str_slots - 1);
    for (; c->strs[j].str != NULL; j = (j + 1) & (c->n_str_slots - 1))
        if (c->strs[j].hash == h && strcmp(c->strs[j].str, s) == 0)
            return c->strs[j].str;
    size_t len = strlen(s) + 1;
    char *copy = pool_alloc(c, len);
    if (copy == NULL)
        return "";
    memcpy(copy, s, len);
    c->strs[j].hash = h;
    c->strs[j].str = copy;
    c->n_strs++;
    c->str_bytes += len;
    return copy;
}

static size_t cache_bytes(const struct sym_cache *c)
{
    return c->n_slots * sizeof(struct sym_entry) + c->n_str_slots * sizeof(struct str_slot) +
           c->pool_bytes;
}

static void cache_free(struct sym_cache *c)
{
    free(c->slots);
    free(c->strs);
    while (c->pool != NULL) {
        struct pool_chunk *next = c->pool->next;
        free(c->pool);
        c->pool = next;
    }
    memset(c, 0, sizeof(*c));
}

static int cache_grow(struct sym_cache *c)
{
    size_t n = c->n_slots ? c->n_slots * 2 : SYM_INITIAL_SLOTS;
    struct sym_entry *bigger = calloc(n, sizeof(*bigger));
    if (bigger == NULL)
        return -1;
    for (size_t i = 0; i < c->n_slots; i++) {
        if (c->slots[i].pc == 0)
            continue;
        size_t j = hprof_hash_mix64(c->slots[i].pc) & (n - 1);
        while (bigger[j].pc != 0)
            j = (j + 1) & (n - 1);
        bigger[j] = c->slots[i];
    }
    free(c->slots);
    c->slots = bigger;
    c->n_slots = n;
    return 0;
}

/* The slot of pc (found, or the empty slot where it goes), or NULL when the table is full and
 * cannot grow. */
static struct sym_entry *cache_slot(struct sym_cache *c, uint64_t pc)
{
    if (c->n_entries * 2 >= c->n_slots && cache_grow(c) != 0 && c->n_entries + 1 >= c->n_slots)
        return NULL;
    size_t j = hprof_hash_mix64(pc) & (c->n_slots - 1);
    while (c->slots[j].pc != 0 && c->slots[j].pc != pc)
        j = (j + 1) & (c->n_slots - 1);
    return &c->slots[j];
}

/* Copy n frames into c (strings interned there); NULL when out of memory. */
static struct hprof_frame *cache_frames(struct sym_cache *c, const struct hprof_frame *frames,
                                        unsigned n)
{
    struct hprof_frame *kept = pool_alloc(c, n * sizeof(*kept));
    if (kept == NULL)
        return NULL;
    for (unsigned i = 0; i < n; i++) {
        kept[i].name = intern(c, frames[i].name);
        kept[i].system_name = frames[i].system_name == frames[i].name
                                  ? kept[i].name
                                  : intern(c, frames[i].system_name);
        kept[i].file = intern(c, frames[i].file);
        kept[i].line = frames[i].line;
        kept[i].start_line = frames[i].start_line;
    }
    return kept;
}

/* At the end of a profile: over budget, keep only what this profile used, up to 3/4 of the
 * budget (the rest is resolved again if it recurs). */
static void cache_trim(void)
{
    if (cache_bytes(&st.cache) <= st.budget)
        return;
    struct sym_cache kept;
    memset(&kept, 0, sizeof(kept));
    size_t target = st.budget / 4 * 3;
    for (size_t i = 0; i < st.cache.n_slots; i++) {
        const struct sym_entry *e = &st.cache.slots[i];
        if (e->pc == 0)
            continue;
        if (e->gen != st.gen || cache_bytes(&kept) >= target) {
            st.evictions++;
            continue;
        }
        struct sym_entry *slot = cache_slot(&kept, e->pc);
        struct hprof_frame *frames =
            e->n_frames ? cache_frames(&kept, e->frames, e->n_frames) : NULL;
        if (slot == NULL || (e->n_frames && frames == NULL)) {
            st.evictions++;
            continue;
        }
        *slot = *e;
        slot->frames = frames;
        kept.n_entries++;
        kept.n_frames += e->n_frames;
    }
    cache_free(&st.cache);
    st.cache = kept;
}

/* ---- ELF files and objects ---- */

static int cmp_sym(const void *a, const void *b)
{
    const struct elf_sym *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    /* At one address, a sized symbol first, then by name for a stable choice. */
    if ((x->size == 0) != (y->size == 0))
        return x->size == 0 ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* The function symbols of the table of type `type` (SHT_SYMTAB or SHT_DYNSYM); 0 when it has
 * some, -1 when the file has no such table (or no memory). Aliases at one address are kept:
 * the lookup prefers global names (see sym_at). */
static int load_syms(struct elf_file *f, Elf64_Word type)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(f->elf, scn)) != NULL) {
        GElf_Shdr shdr;
        if (gelf_getshdr(scn, &shdr) == NULL || shdr.sh_type != type || shdr.sh_entsize == 0)
            continue;
        Elf_Data *data = elf_getdata(scn, NULL);
        if (data == NULL)
            return -1;
        size_t n = shdr.sh_size / shdr.sh_entsize, k = 0;
        struct elf_sym *syms = malloc((n ? n : 1) * sizeof(*syms));
        if (syms == NULL)
            return -1;
        for (size_t i = 0; i < n; i++) {
            GElf_Sym sym;
            if (gelf_getsym(data, (int)i, &sym) == NULL)
                continue;
            int t = GELF_ST_TYPE(sym.st_info);
            /* Functions only: untyped symbols mark boundaries (_etext, __ehdr_start) far more
             * often than code (a few assembly labels such as _dl_start_user). */
            GElf_Shdr home;
            if ((t != STT_FUNC && t != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF ||
                sym.st_shndx >= SHN_LORESERVE || sym.st_value == 0 ||
                gelf_getshdr(elf_getscn(f->elf, sym.st_shndx), &home) == NULL)
                continue;
            const char *name = elf_strptr(f->elf, shdr.sh_link, sym.st_name);
            if (name == NULL || *name == '\0')
                continue;
            syms[k].addr = sym.st_value;
            syms[k].size = sym.st_size;
            /* A symbol without a size (_init, assembly) covers at most the rest of its section:
             * never the .plt after _init, nor the padding after _fini. */
            if (sym.st_size == 0 && home.sh_addr + home.sh_size > sym.st_value)
                syms[k].size = home.sh_addr + home.sh_size - sym.st_value;
            syms[k].name = name;
            if (GELF_ST_BIND(sym.st_info) != STB_GLOBAL)
                syms[k].size |= SYM_NOT_GLOBAL;
            k++;
        }
        qsort(syms, k, sizeof(*syms), cmp_sym);
        f->syms = syms;
        f->n_syms = k;
        f->full_symtab = type == SHT_SYMTAB;
        return 0;
    }
    return -1;
}

/* The symbol covering vaddr in f, or NULL. Among aliases, a global name wins. A symbol without
 * a size (and no section to bound it) covers up to the next symbol's address. */
static const char *sym_at(const struct elf_file *f, uint64_t vaddr)
{
    size_t lo = 0, hi = f->n_syms;
    while (lo < hi) { /* first symbol with addr > vaddr */
        size_t mid = lo + (hi - lo) / 2;
        if (f->syms[mid].addr <= vaddr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    uint64_t addr = f->syms[lo - 1].addr;
    const char *best = NULL;
    for (size_t i = lo; i-- > 0 && f->syms[i].addr == addr;) {
        uint64_t size = f->syms[i].size & ~SYM_NOT_GLOBAL;
        bool covers = size != 0 ? vaddr < addr + size : true;
        if (!covers)
            continue;
        if (best == NULL || !(f->syms[i].size & SYM_NOT_GLOBAL))
            best = f->syms[i].name;
        if (!(f->syms[i].size & SYM_NOT_GLOBAL))
            break;
    }
    return best;
}

static int file_open(struct elf_file *f, const char *path)
{
    memset(f, 0, sizeof(*f));
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0)
        return -1;
    f->elf = elf_begin(f->fd, ELF_C_READ_MMAP, NULL);
    if (f->elf == NULL || elf_kind(f->elf) != ELF_K_ELF) {
        if (f->elf != NULL)
            elf_end(f->elf);
        close(f->fd);
        memset(f, 0, sizeof(*f));
        return -1;
    }
    if (load_syms(f, SHT_SYMTAB) != 0)
        (void)load_syms(f, SHT_DYNSYM);
    size_t shstrndx;
    Elf_Scn *scn = NULL;
    if (elf_getshdrstrndx(f->elf, &shstrndx) == 0) {
        while ((scn = elf_nextscn(f->elf, scn)) != NULL) {
            GElf_Shdr shdr;
            const char *name =
                gelf_getshdr(scn, &shdr) ? elf_strptr(f->elf, shstrndx, shdr.sh_name) : NULL;
            if (name != NULL && shdr.sh_type != SHT_NOBITS && strcmp(name, ".debug_info") == 0)
                f->has_dwarf = true;
        }
    }
    return 0;
}

static void file_close(struct elf_file *f)
{
    if (f->dwarf != NULL)
        dwarf_end(f->dwarf);
    free(f->syms);
    if (f->elf != NULL)
        elf_end(f->elf);
    if (f->fd > 0)
        close(f->fd);
    memset(f, 0, sizeof(*f));
}

static Dwarf *file_dwarf(struct elf_file *f)
{
    if (f->dwarf_state == 0) {
        f->dwarf = f->has_dwarf ? dwarf_begin_elf(f->elf, DWARF_C_READ, NULL) : NULL;
        f->dwarf_state = f->dwarf != NULL ? 1 : -1;
    }
    return f->dwarf;
}

/* The load bias of an object: the PT_LOAD segment that the mapping maps gives vaddr <-> address. */
static uint64_t load_bias(Elf *elf, uint64_t map_start, uint64_t map_offset)
{
    size_t n;
    if (elf_getphdrnum(elf, &n) != 0)
        return map_start - map_offset;
    long page = sysconf(_SC_PAGESIZE);
    uint64_t mask = ~(uint64_t)(page > 0 ? page - 1 : 4095);
    for (size_t i = 0; i < n; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf, (int)i, &ph) == NULL || ph.p_type != PT_LOAD)
            continue;
        if ((ph.p_offset & mask) <= map_offset && map_offset < ph.p_offset + ph.p_filesz)
            return map_start - ((ph.p_vaddr & mask) + (map_offset - (ph.p_offset & mask)));
    }
    return map_start - map_offset;
}

static int object_open(struct sym_object *o)
{
    if (o->state == 0) {
        o->state = file_open(&o->own, o->path) == 0 ? 1 : -1;
        if (o->state == 1)
            o->bias = load_bias(o->own.elf, o->map_start, o->map_offset);
    }
    return o->state == 1 ? 0 : -1;
}

/* The .gnu_debuglink file name of elf, or NULL. */
static const char *debuglink(Elf *elf)
{
    size_t shstrndx;
    Elf_Scn *scn = NULL;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr shdr;
        const char *name =
            gelf_getshdr(scn, &shdr) ? elf_strptr(elf, shstrndx, shdr.sh_name) : NULL;
        if (name == NULL || strcmp(name, ".gnu_debuglink") != 0)
            continue;
        Elf_Data *data = elf_getdata(scn, NULL);
        if (data == NULL || data->d_size < 2 || memchr(data->d_buf, '\0', data->d_size) == NULL)
            return NULL;
        return data->d_buf;
    }
    return NULL;
}

/* Separate debug info, looked for locally only: by build-id, then by debuglink next to the object,
 * in its .debug/ folder, and under /usr/lib/debug. */
static struct elf_file *object_debug(struct sym_object *o)
{
    if (o->debug_state != 0)
        return o->debug_state == 1 ? &o->debug : NULL;
    o->debug_state = -1;
    char path[PATH_MAX];
    if (strlen(o->build_id) > 2) {
        snprintf(path, sizeof(path), SYM_DEBUG_DIR "/.build-id/%.2s/%s.debug", o->build_id,
                 o->build_id + 2);
        if (file_open(&o->debug, path) == 0)
            o->debug_state = 1;
    }
    const char *link = o->debug_state != 1 && o->state == 1 ? debuglink(o->own.elf) : NULL;
    if (link != NULL && strchr(link, '/') == NULL) {
        const char *slash = strrchr(o->path, '/');
        int dir = slash != NULL ? (int)(slash - o->path) : 0;
        const char *formats[] = {"%.*s/%s", "%.*s/.debug/%s", SYM_DEBUG_DIR "%.*s/%s"};
        for (size_t i = 0; i < 3 && o->debug_state != 1; i++) {
            snprintf(path, sizeof(path), formats[i], dir, o->path, link);
            if (strcmp(path, o->path) != 0 && file_open(&o->debug, path) == 0)
                o->debug_state = 1;
        }
    }
    return o->debug_state == 1 ? &o->debug : NULL;
}

static void object_close(struct sym_object *o)
{
    if (o->state == 1)
        file_close(&o->own);
    if (o->debug_state == 1)
        file_close(&o->debug);
    o->state = o->debug_state = 0;
}

static void release_objects(void)
{
    for (size_t i = 0; i < st.n_objects; i++)
        object_close(&st.objects[i]);
}

static void drop_maps(void)
{
    release_objects();
    for (size_t i = 0; i < st.n_objects; i++)
        free(st.objects[i].path);
    free(st.objects);
    free(st.modules);
    st.objects = NULL;
    st.modules = NULL;
    st.n_objects = st.n_modules = 0;
    st.have_maps = false;
}

/* Take the file-backed executable mappings of maps, grouped by path. */
static int set_maps(const struct hprof_maps *maps)
{
    st.modules = calloc(maps->n ? maps->n : 1, sizeof(*st.modules));
    st.objects = calloc(maps->n ? maps->n : 1, sizeof(*st.objects));
    if (st.modules == NULL || st.objects == NULL)
        return -1;
    for (size_t i = 0; i < maps->n; i++) {
        const struct hprof_mapping *m = &maps->v[i];
        if (m->path[0] != '/')
            continue; /* anonymous, [vdso], [heap]: no file to read */
        size_t o = 0;
        while (o < st.n_objects && strcmp(st.objects[o].path, m->path) != 0)
            o++;
        if (o == st.n_objects) {
            struct sym_object *obj = &st.objects[o];
            obj->path = strdup(m->path);
            if (obj->path == NULL)
                return -1;
            const char *slash = strrchr(obj->path, '/');
            obj->base = slash != NULL ? slash + 1 : obj->path;
            memcpy(obj->build_id, m->build_id, sizeof(obj->build_id));
            obj->map_start = m->start;
            obj->map_offset = m->offset;
            st.n_objects++;
        }
        st.modules[st.n_modules++] = (struct sym_module){m->start, m->limit, m->offset, o};
    }
    st.have_maps = true;
    return 0;
}

static const struct sym_module *module_of(uint64_t pc)
{
    size_t lo = 0, hi = st.n_modules;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (st.modules[mid].limit <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < st.n_modules && st.modules[lo].start <= pc ? &st.modules[lo] : NULL;
}

/* ---- DWARF ---- */

/* The file of a DW_AT_decl_file/call_file index, absolute when the CU gives a comp_dir; into
 * buf (or the string itself when already absolute). */
static const char *resolve_file(Dwarf_Die *cu, const char *file, char *buf, size_t size)
{
    if (file == NULL || *file == '\0')
        return "";
    if (file[0] == '/')
        return file;
    Dwarf_Attribute attr;
    const char *dir = dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &attr));
    if (dir == NULL)
        return file;
    snprintf(buf, size, "%s/%s", dir, file);
    return buf;
}

static const char *call_file(Dwarf_Die *cu, Dwarf_Die *die, char *buf, size_t size)
{
    Dwarf_Attribute attr;
    Dwarf_Word index;
    Dwarf_Files *files;
    size_t n_files;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &attr), &index) != 0 ||
        dwarf_getsrcfiles(cu, &files, &n_files) != 0 || index >= n_files)
        return "";
    return resolve_file(cu, dwarf_filesrc(files, index, NULL, NULL), buf, size);
}

static int64_t call_line(Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    Dwarf_Word line;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &attr), &line) != 0)
        return 0;
    return (int64_t)line;
}

static const char *linkage_name(Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
    if (name == NULL)
        name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
    return name;
}

/* The CU holding vaddr: by .debug_aranges; without them (some producers omit them), by the CUs'
 * own ranges, which reads each CU's first DIE only. */
static int cu_of(Dwarf *dw, uint64_t vaddr, Dwarf_Die *cu)
{
    if (dwarf_addrdie(dw, vaddr, cu) != NULL)
        return 0;
    Dwarf_Off off = 0, next;
    size_t header;
    while (dwarf_nextcu(dw, off, &next, &header, NULL, NULL, NULL) == 0) {
        if (dwarf_offdie(dw, off + header, cu) != NULL && dwarf_haspc(cu, vaddr) == 1)
            return 0;
        off = next;
    }
    return -1;
}

/* Strings handed out by resolve live in scratch until they are interned. */
struct scratch {
    char paths[SYM_MAX_FRAMES + 1][PATH_MAX];
    unsigned used;
};

static char *scratch_buf(struct scratch *s)
{
    return s->paths[s->used < SYM_MAX_FRAMES ? s->used++ : SYM_MAX_FRAMES];
}

/* Frames of vaddr from dw (innermost first); 0 when the DWARF has no CU for it. *complete is
 * set when the scopes were read up to the real function. */
static unsigned dwarf_frames(Dwarf *dw, uint64_t vaddr, struct elf_file *names,
                             struct hprof_frame *frames, bool *complete, struct scratch *sc)
{
    Dwarf_Die cu;
    *complete = false;
    if (cu_of(dw, vaddr, &cu) != 0)
        return 0;
    /* The line executing at vaddr: of the innermost inlined function, if any. */
    const char *file = "";
    int64_t line = 0;
    Dwarf_Line *dl = dwarf_getsrc_die(&cu, vaddr);
    if (dl != NULL) {
        int lineno = 0;
        file = resolve_file(&cu, dwarf_linesrc(dl, NULL, NULL), scratch_buf(sc), PATH_MAX);
        if (dwarf_lineno(dl, &lineno) == 0)
            line = lineno;
    }
    unsigned n = 0;
    Dwarf_Die *scopes = NULL;
    int n_scopes = dwarf_getscopes(&cu, vaddr, &scopes);
    /* dwarf_getscopes continues past an inlined subroutine into its abstract definition's
     * parents; the callers are the concrete DIE's parents: restart from the innermost function
     * scope with dwarf_getscopes_die, which walks the DIE tree as nested in this CU. */
    for (int i = 0; i < n_scopes; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag == DW_TAG_inlined_subroutine || tag == DW_TAG_subprogram ||
            tag == DW_TAG_entry_point) {
            Dwarf_Die innermost = scopes[i];
            free(scopes);
            scopes = NULL;
            n_scopes = dwarf_getscopes_die(&innermost, &scopes);
            break;
        }
    }
    for (int i = 0; i < n_scopes; i++) {
        Dwarf_Die *s = &scopes[i];
        int tag = dwarf_tag(s);
        if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram &&
            tag != DW_TAG_entry_point)
            continue;
        if (n == SYM_MAX_FRAMES)
            break; /* deeper than we keep: not complete */
        const char *name = dwarf_diename(s);
        const char *sys = linkage_name(s);
        if (name == NULL)
            name = sys;
        if (name == NULL && tag != DW_TAG_inlined_subroutine && names != NULL)
            name = sym_at(names, vaddr);
        struct hprof_frame *f = &frames[n++];
        f->name = name != NULL ? name : "";
        f->system_name = sys != NULL ? sys : f->name;
        const char *decl = dwarf_decl_file(s);
        f->file = decl != NULL ? resolve_file(&cu, decl, scratch_buf(sc), PATH_MAX) : file;
        int decl_line = 0;
        f->start_line = dwarf_decl_line(s, &decl_line) == 0 ? decl_line : 0;
        f->line = line;
        if (tag != DW_TAG_inlined_subroutine) {
            *complete = true;
            break;
        }
        /* The caller of an inlined body is executing the line of the call. */
        file = call_file(&cu, s, scratch_buf(sc), PATH_MAX);
        line = call_line(s);
    }
    free(scopes);
    if (n == 0 && dl != NULL) {
        /* A line but no function scope (assembly): the line, named below by the symbol table. */
        frames[0] = (struct hprof_frame){"", "", file, line, 0};
        return 1;
    }
    return n;
}

/* ---- resolving a PC ---- */

/* Resolve pc into frames (innermost first) with strings valid until the next call; returns the
 * number of frames and sets *flags. */
static unsigned resolve(uint64_t pc, struct hprof_frame *frames, uint32_t *flags,
                        struct scratch *sc)
{
    *flags = 0;
    const struct sym_module *m = module_of(pc);
    if (m == NULL)
        return 0;
    struct sym_object *o = &st.objects[m->object];
    unsigned n = 0;
    bool complete = false;
    if (object_open(o) == 0) {
        uint64_t vaddr = pc - o->bias;
        const char *name = sym_at(&o->own, vaddr);
        struct elf_file *names = &o->own;
        struct elf_file *debug = NULL;
        if (name == NULL && !o->own.full_symtab && (debug = object_debug(o)) != NULL) {
            names = debug; /* an internal function of a stripped object: libc6-dbg's .symtab */
            name = sym_at(debug, vaddr);
        }
        Dwarf *dw = file_dwarf(&o->own);
        if (dw == NULL && (st.debuginfo_dwarf || o->own.n_syms == 0) &&
            (debug = object_debug(o)) != NULL)
            dw = file_dwarf(debug);
        if (dw != NULL)
            n = dwarf_frames(dw, vaddr, names, frames, &complete, sc);
        if (n > 0 && frames[n - 1].name[0] == '\0' && name != NULL) {
            frames[n - 1].name = frames[n - 1].system_name = name; /* a line without a scope */
        } else if (n == 0 && name != NULL) {
            frames[0] = (struct hprof_frame){name, name, "", 0, 0};
            n = 1;
        }
    }
    uint32_t fl = HPROF_SYM_FUNCTION | HPROF_SYM_FILE | HPROF_SYM_LINE;
    if (n == 0 || frames[n - 1].name[0] == '\0') {
        /* No symbol covers pc: the object and the offset, the one name such frames have. */
        char *label = scratch_buf(sc);
        snprintf(label, PATH_MAX, "%s+0x%" PRIx64, st.objects[m->object].base,
                 pc - m->start + m->offset);
        if (n == 0)
            n = 1, frames[0] = (struct hprof_frame){"", "", "", 0, 0};
        frames[n - 1].name = frames[n - 1].system_name = label;
        fl |= HPROF_SYM_BARE;
    }
    for (unsigned i = 0; i < n; i++) {
        if (frames[i].name[0] == '\0')
            fl &= ~(uint32_t)HPROF_SYM_FUNCTION;
        if (frames[i].file[0] == '\0')
            fl &= ~(uint32_t)HPROF_SYM_FILE;
        if (frames[i].line <= 0)
            fl &= ~(uint32_t)HPROF_SYM_LINE;
    }
    if (complete)
        fl |= HPROF_SYM_INLINE;
    *flags = fl;
    return n;
}

/* ---- the interface ---- */

/* In a fork child, another thread may have held sym_lock or been inside libdw: the copy of the
 * state is abandoned (not freed: it may be inconsistent) and the lock made anew. */
static void atfork_child(void)
{
    memset(&st, 0, sizeof(st));
    pthread_mutex_init(&sym_lock, NULL);
}

/* The symbolizer's stage of the fork sequence (hprof_fork.c): sym_lock is not held across fork
 * (a profile's symbolization can take seconds). */
static void register_fork_stage(void)
{
    static const struct hprof_fork_ops ops = {NULL, NULL, atfork_child};
    hprof_fork_register(HPROF_FORK_SYMBOLIZE, &ops);
}

/* HEAPPROF_SYMBOL_CACHE (bytes) and HEAPPROF_SYMBOL_DEBUGINFO, read once. A malformed budget
 * keeps the default (the profiler must not stop a program over it) and says so on stderr. */
static void configure(void)
{
    if (st.configured)
        return;
    st.configured = true;
    st.budget = SYM_CACHE_DEFAULT_BYTES;
    /* Captured at load by hprof_env (the variables are then taken out of the environment). */
    const char *v = hprof_env_get("HEAPPROF_SYMBOL_CACHE");
    if (v != NULL && *v != '\0') {
        uint64_t n;
        if (lc_parse_u64(v, 0, UINT64_MAX, &n) != 0)
            hprof_log("HEAPPROF_SYMBOL_CACHE=%s is not a byte count; using %u\n", v,
                      SYM_CACHE_DEFAULT_BYTES);
        else
            st.budget = n < SYM_CACHE_MIN_BYTES ? SYM_CACHE_MIN_BYTES
                        : n > SIZE_MAX / 2      ? SIZE_MAX / 2
                                                : (size_t)n;
    }
    v = hprof_env_get("HEAPPROF_SYMBOL_DEBUGINFO");
    st.debuginfo_dwarf = v != NULL && strcmp(v, "1") == 0;
}

int hprof_sym_begin(const struct hprof_maps *maps)
{
    pthread_once(&sym_once, register_fork_stage);
    pthread_mutex_lock(&sym_lock);
    hprof_internal_enter();
    configure();
    elf_version(EV_CURRENT);
    pid_t pid = getpid();
    if (st.pid != pid) { /* the first begin (a fork child has st cleared) */
        drop_maps();
        cache_free(&st.cache);
        st.pid = pid;
    }
    int rc = 0;
    if (!st.have_maps || st.signature != maps->signature) {
        drop_maps();
        cache_free(&st.cache);
        rc = set_maps(maps);
        st.signature = rc == 0 ? maps->signature : 0;
        if (rc != 0)
            drop_maps();
    }
    st.gen++;
    hprof_internal_exit();
    return rc;
}

void hprof_sym_end(void)
{
    hprof_internal_enter();
    release_objects(); /* parsed DWARF, symbol arrays and file maps: only the cache stays */
    cache_trim();
    hprof_internal_exit();
    pthread_mutex_unlock(&sym_lock);
}

void hprof_sym_lookup(uint64_t pc, struct hprof_symbol *out)
{
    memset(out, 0, sizeof(*out));
    if (pc == 0)
        return;
    hprof_internal_enter();
    struct sym_entry *slot = cache_slot(&st.cache, pc);
    if (slot != NULL && slot->pc == pc) {
        st.hits++;
        slot->gen = st.gen;
        out->flags = slot->flags;
        out->n_frames = slot->n_frames;
        out->frames = slot->frames;
        goto out;
    }
    st.misses++;
    struct hprof_frame frames[SYM_MAX_FRAMES];
    static struct scratch sc; /* PATH_MAX strings: too big for the stack; under sym_lock */
    sc.used = 0;
    uint32_t flags;
    unsigned n = st.have_maps ? resolve(pc, frames, &flags, &sc) : 0;
    struct hprof_frame *kept = n > 0 ? cache_frames(&st.cache, frames, n) : NULL;
    if (n > 0 && kept == NULL)
        goto out; /* answer "unknown" this time; a later profile retries */
    if (n == 0)
        flags = 0;
    /* slot is still valid: interning grows the string table and the pool, never the slots. */
    if (slot != NULL) {
        slot->pc = pc;
        slot->gen = st.gen;
        slot->flags = (uint16_t)flags;
        slot->n_frames = (uint16_t)n;
        slot->frames = kept;
        st.cache.n_entries++;
        st.cache.n_frames += n;
    }
    out->flags = flags;
    out->n_frames = n;
    out->frames = kept;
out:
    hprof_internal_exit();
}

void hprof_sym_get_stats(struct hprof_sym_stats *out)
{
    pthread_mutex_lock(&sym_lock);
    out->entries = st.cache.n_entries;
    out->frames = st.cache.n_frames;
    out->string_bytes = st.cache.str_bytes;
    out->table_bytes = cache_bytes(&st.cache);
    configure();
    out->limit_bytes = st.budget;
    out->hits = st.hits;
    out->misses = st.misses;
    out->evictions = st.evictions;
    pthread_mutex_unlock(&sym_lock);
}

void hprof_sym_reset(void)
{
    pthread_mutex_lock(&sym_lock);
    hprof_internal_enter();
    drop_maps();
    cache_free(&st.cache);
    st.signature = 0;
    hprof_internal_exit();
    pthread_mutex_unlock(&sym_lock);
}
