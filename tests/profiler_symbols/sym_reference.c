/*
 * sym_reference: the libdwfl symbolizer as it was before issue 15 (profiler/hprof_symbolize.c
 * at commit 2a629a9), kept verbatim but for its prefix (ref_sym_), as the reference the new
 * symbolizer is compared with in test_symbols.c. It is test code: never linked into the library.
 *
 * Its original description:
 * hprof_symbolize: PC -> frames, in-process, with elfutils libdwfl, so that a profile carries
 * its own function names, files and lines and reads the same on a machine without the binary.
 *
 * Model: one libdwfl session (Dwfl) reports the modules of /proc/self/maps; a PC is resolved
 * by its module's DWARF when there is some: the scopes containing the PC (dwarf_getscopes) give
 * the inlined subroutines from the innermost out to the real function, each inlined callee's
 * DW_AT_call_file/call_line giving the line executing in its caller; the innermost line comes
 * from the line table. Without DWARF (a stripped library without a debuginfo package), the
 * ELF symbol table still gives the function name. Results are cached per PC: a server is
 * profiled again and again and its PCs recur, so after the first profile symbolizing is a
 * hash lookup. Names and paths are interned in a pool, so each distinct string is kept once.
 *
 * Invariants and locks: all state is guarded by sym_lock, held from ref_sym_begin to
 * ref_sym_end; malloc never takes it, and it is never taken inside malloc. Frames and
 * strings live in chunked pools that are only freed together (reset), so the pointers handed
 * out by lookup stay valid until end. When the set of mappings changes (dlopen, dlclose), the
 * session is re-reported and the whole cache dropped: an address may now belong to another
 * object. A fork child abandons its copy of the state (another thread may have been inside
 * libdw at the fork) and starts afresh. All allocations happen inside hprof_internal_enter.
 * Separate debuginfo is looked up locally (/usr/lib/debug). libdwfl's standard search would
 * also ask debuginfod servers when DEBUGINFOD_URLS is set; then it is skipped, because a
 * profile request must never wait on the network.
 */
#include "hprof_output.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SYM_MAX_FRAMES    32          /* inlined frames kept per PC; deeper is cut (flag cleared) */
#define SYM_CHUNK_BYTES   (64u << 10) /* bytes per pool chunk */
#define SYM_INITIAL_SLOTS 1024        /* cache slots (power of two); load factor kept <= 1/2 */

struct pool_chunk {
    struct pool_chunk *next;
    size_t used, cap;
    max_align_t data[];
};

struct sym_entry {
    uint64_t pc; /* 0: empty slot */
    uint32_t flags, n_frames;
    struct hprof_frame *frames;
};

struct str_slot {
    uint64_t hash;
    const char *str; /* NULL: empty */
};

static pthread_mutex_t sym_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t sym_once = PTHREAD_ONCE_INIT;

static struct {
    Dwfl *dwfl;
    pid_t pid;               /* whose modules dwfl reports */
    uint64_t signature;      /* of the mappings last reported */
    struct sym_entry *slots; /* cache, open addressing by pc */
    size_t n_slots, n_entries, n_frames;
    struct str_slot *strs; /* interned strings, open addressing */
    size_t n_str_slots, n_strs, str_bytes;
    struct pool_chunk *pool;
    size_t pool_bytes;
} st;

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t str_hash(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void *pool_alloc(size_t size)
{
    size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    if (st.pool == NULL || st.pool->cap - st.pool->used < size) {
        size_t cap = size > SYM_CHUNK_BYTES ? size : SYM_CHUNK_BYTES;
        struct pool_chunk *c = malloc(sizeof(*c) + cap);
        if (c == NULL)
            return NULL;
        c->next = st.pool;
        c->used = 0;
        c->cap = cap;
        st.pool = c;
        st.pool_bytes += sizeof(*c) + cap;
    }
    void *p = (char *)st.pool->data + st.pool->used;
    st.pool->used += size;
    return p;
}

/* Intern s; returns the pooled copy, or "" when out of memory (a name lost, never a crash). */
static const char *intern(const char *s)
{
    if (s == NULL || *s == '\0')
        return "";
    if (st.n_strs * 2 >= st.n_str_slots) {
        size_t n = st.n_str_slots ? st.n_str_slots * 2 : SYM_INITIAL_SLOTS;
        struct str_slot *bigger = calloc(n, sizeof(*bigger));
        if (bigger == NULL)
            return "";
        for (size_t i = 0; i < st.n_str_slots; i++) {
            if (st.strs[i].str == NULL)
                continue;
            size_t j = st.strs[i].hash & (n - 1);
            while (bigger[j].str != NULL)
                j = (j + 1) & (n - 1);
            bigger[j] = st.strs[i];
        }
        free(st.strs);
        st.strs = bigger;
        st.n_str_slots = n;
    }
    uint64_t h = str_hash(s);
    size_t j = h & (st.n_str_slots - 1);
    for (; st.strs[j].str != NULL; j = (j + 1) & (st.n_str_slots - 1))
        if (st.strs[j].hash == h && strcmp(st.strs[j].str, s) == 0)
            return st.strs[j].str;
    size_t len = strlen(s) + 1;
    char *copy = pool_alloc(len);
    if (copy == NULL)
        return "";
    memcpy(copy, s, len);
    st.strs[j].hash = h;
    st.strs[j].str = copy;
    st.n_strs++;
    st.str_bytes += len;
    return copy;
}

/* Free the cache, the string pool and libdwfl's session. */
static void drop_state(void)
{
    if (st.dwfl != NULL)
        dwfl_end(st.dwfl);
    free(st.slots);
    free(st.strs);
    while (st.pool != NULL) {
        struct pool_chunk *next = st.pool->next;
        free(st.pool);
        st.pool = next;
    }
    memset(&st, 0, sizeof(st));
}

static void drop_cache(void)
{
    Dwfl *dwfl = st.dwfl;
    pid_t pid = st.pid;
    uint64_t signature = st.signature;
    st.dwfl = NULL;
    drop_state();
    st.dwfl = dwfl;
    st.pid = pid;
    st.signature = signature;
}

/* In a fork child, another thread may have held sym_lock or been inside libdw: the copy of the
 * state is abandoned (not freed: it may be inconsistent) and the lock made anew. */
static void atfork_child(void)
{
    memset(&st, 0, sizeof(st));
    pthread_mutex_init(&sym_lock, NULL);
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, atfork_child);
}

/* Separate debuginfo: by build-id under /usr/lib/debug first; then libdwfl's standard search
 * (debuglink in the usual directories) unless that search would go to debuginfod servers. */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, GElf_Addr base,
                          const char *file_name, const char *debuglink_file,
                          GElf_Word debuglink_crc, char **debuginfo_file_name)
{
    int fd = dwfl_build_id_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
                                          debuglink_crc, debuginfo_file_name);
    if (fd >= 0)
        return fd;
    const char *urls = getenv("DEBUGINFOD_URLS");
    if (urls != NULL && *urls != '\0')
        return -1;
    return dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
                                        debuglink_crc, debuginfo_file_name);
}

static char *debuginfo_path; /* NULL: libdwfl's default search path */

static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

static int report(void)
{
    if (st.dwfl == NULL) {
        st.dwfl = dwfl_begin(&callbacks);
        if (st.dwfl == NULL)
            return -1;
    }
    dwfl_report_begin(st.dwfl);
    int rc = dwfl_linux_proc_report(st.dwfl, st.pid);
    if (dwfl_report_end(st.dwfl, NULL, NULL) != 0 || rc != 0)
        return -1;
    return 0;
}

int ref_sym_begin(uint64_t maps_signature)
{
    pthread_once(&sym_once, register_atfork);
    pthread_mutex_lock(&sym_lock);
    hprof_internal_enter();
    pid_t pid = getpid();
    if (st.pid != pid) {
        drop_state();
        st.pid = pid;
    }
    int rc = 0;
    if (st.dwfl == NULL || st.signature != maps_signature) {
        drop_cache();
        rc = report();
        st.signature = rc == 0 ? maps_signature : 0;
    }
    hprof_internal_exit();
    return rc;
}

void ref_sym_end(void)
{
    pthread_mutex_unlock(&sym_lock);
}

/* The file of a DW_AT_decl_file/call_file index, absolute when the CU gives a comp_dir. */
static const char *resolve_file(Dwarf_Die *cu, const char *file)
{
    if (file == NULL || *file == '\0')
        return "";
    if (file[0] == '/')
        return intern(file);
    Dwarf_Attribute attr;
    const char *dir = dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &attr));
    if (dir == NULL)
        return intern(file);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    return intern(path);
}

static const char *call_file(Dwarf_Die *cu, Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    Dwarf_Word index;
    Dwarf_Files *files;
    size_t n_files;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &attr), &index) != 0 ||
        dwarf_getsrcfiles(cu, &files, &n_files) != 0 || index >= n_files)
        return "";
    return resolve_file(cu, dwarf_filesrc(files, index, NULL, NULL));
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

/* The ELF symbol containing pc. Only asked when DWARF has no answer: libdwfl searches the
 * symbol table linearly, which made it most of a cold profile's cost. */
static const char *elf_symbol(Dwfl_Module *mod, uint64_t pc)
{
    GElf_Off offset;
    GElf_Sym sym;
    return dwfl_module_addrinfo(mod, pc, &offset, &sym, NULL, NULL, NULL);
}

/* A name for a PC that no symbol covers: the section it lies in, e.g. "<.plt>" for a CPU
 * sample that interrupted a PLT stub. Without it such a location would have no function, the
 * mapping could not claim has_functions, and pprof would then re-symbolize the whole mapping
 * itself (with fewer inline frames and no start lines) instead of reading our names. */
static const char *section_label(Dwfl_Module *mod, uint64_t pc)
{
    Dwarf_Addr address = pc, bias = 0;
    Elf_Scn *scn = dwfl_module_address_section(mod, &address, &bias);
    Elf *elf = dwfl_module_getelf(mod, &bias);
    size_t shstrndx;
    GElf_Shdr shdr;
    if (scn == NULL || elf == NULL || elf_getshdrstrndx(elf, &shstrndx) != 0 ||
        gelf_getshdr(scn, &shdr) == NULL)
        return NULL;
    const char *section = elf_strptr(elf, shstrndx, shdr.sh_name);
    if (section == NULL || *section == '\0')
        return NULL;
    static char label[64];
    snprintf(label, sizeof(label), "<%s>", section);
    return label;
}

/* Resolve pc into frames (innermost first); returns the number of frames and sets *flags. */
static unsigned resolve(uint64_t pc, struct hprof_frame *frames, uint32_t *flags)
{
    *flags = 0;
    Dwfl_Module *mod = st.dwfl != NULL ? dwfl_addrmodule(st.dwfl, pc) : NULL;
    if (mod == NULL)
        return 0;

    /* The line executing at pc: of the innermost inlined function, if any. */
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = dwfl_module_addrdie(mod, pc, &bias);
    const char *file = "";
    int64_t line = 0;
    Dwfl_Line *dl = dwfl_module_getsrc(mod, pc);
    if (dl != NULL) {
        int lineno = 0;
        const char *src = dwfl_lineinfo(dl, NULL, &lineno, NULL, NULL, NULL);
        file = cu != NULL ? resolve_file(cu, src) : intern(src);
        line = lineno;
    }

    unsigned n = 0;
    bool complete = false;
    Dwarf_Die *scopes = NULL;
    int n_scopes = cu != NULL ? dwarf_getscopes(cu, pc - bias, &scopes) : 0;
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
        if (name == NULL && tag != DW_TAG_inlined_subroutine)
            name = elf_symbol(mod, pc);
        struct hprof_frame *f = &frames[n++];
        f->name = intern(name);
        f->system_name = sys != NULL ? intern(sys) : f->name;
        const char *decl = dwarf_decl_file(s);
        f->file = decl != NULL ? resolve_file(cu, decl) : file;
        int decl_line = 0;
        f->start_line = dwarf_decl_line(s, &decl_line) == 0 ? decl_line : 0;
        f->line = line;
        if (tag != DW_TAG_inlined_subroutine) {
            complete = true;
            break;
        }
        /* The caller of an inlined body is executing the line of the call. */
        file = call_file(cu, s);
        line = call_line(s);
    }
    free(scopes);

    const char *elf_name = n == 0 ? elf_symbol(mod, pc) : NULL;
    if (n == 0 && elf_name == NULL)
        elf_name = section_label(mod, pc);
    if (elf_name != NULL) {
        /* No DWARF for this PC: the ELF symbol, and the line table if it has one. */
        struct hprof_frame *f = &frames[n++];
        f->name = f->system_name = intern(elf_name);
        f->file = file;
        f->line = line;
        f->start_line = 0;
    }
    if (n == 0)
        return 0;
    uint32_t fl = HPROF_SYM_FUNCTION | HPROF_SYM_FILE | HPROF_SYM_LINE;
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

static int grow_cache(void)
{
    size_t n = st.n_slots ? st.n_slots * 2 : SYM_INITIAL_SLOTS;
    struct sym_entry *bigger = calloc(n, sizeof(*bigger));
    if (bigger == NULL)
        return -1;
    for (size_t i = 0; i < st.n_slots; i++) {
        if (st.slots[i].pc == 0)
            continue;
        size_t j = mix64(st.slots[i].pc) & (n - 1);
        while (bigger[j].pc != 0)
            j = (j + 1) & (n - 1);
        bigger[j] = st.slots[i];
    }
    free(st.slots);
    st.slots = bigger;
    st.n_slots = n;
    return 0;
}

void ref_sym_lookup(uint64_t pc, struct hprof_symbol *out)
{
    memset(out, 0, sizeof(*out));
    if (pc == 0)
        return;
    hprof_internal_enter();
    /* Out of memory to grow the cache: still answer, caching only while a slot is free. */
    bool can_cache = true;
    if (st.n_entries * 2 >= st.n_slots && grow_cache() != 0)
        can_cache = st.n_entries + 1 < st.n_slots;
    size_t j = 0;
    if (can_cache) {
        for (j = mix64(pc) & (st.n_slots - 1); st.slots[j].pc != 0;
             j = (j + 1) & (st.n_slots - 1)) {
            if (st.slots[j].pc == pc) {
                out->flags = st.slots[j].flags;
                out->n_frames = st.slots[j].n_frames;
                out->frames = st.slots[j].frames;
                goto out;
            }
        }
    }
    struct hprof_frame frames[SYM_MAX_FRAMES];
    uint32_t flags;
    unsigned n = resolve(pc, frames, &flags);
    struct hprof_frame *kept = NULL;
    if (n > 0) {
        kept = pool_alloc(n * sizeof(*kept));
        if (kept == NULL)
            goto out; /* answer "unknown" this time; a later profile retries */
        memcpy(kept, frames, n * sizeof(*kept));
    }
    if (can_cache) {
        st.slots[j].pc = pc;
        st.slots[j].flags = flags;
        st.slots[j].n_frames = n;
        st.slots[j].frames = kept;
        st.n_entries++;
        st.n_frames += n;
    }
    out->flags = flags;
    out->n_frames = n;
    out->frames = kept;
out:
    hprof_internal_exit();
}

void ref_sym_reset(void)
{
    pthread_mutex_lock(&sym_lock);
    hprof_internal_enter();
    drop_state();
    hprof_internal_exit();
    pthread_mutex_unlock(&sym_lock);
}
