/*
 * hprof_output: the pprof layer's interfaces (see hprof_internal.h for the seam with collect/;
 * web/ is the only layer above).
 *
 *   hprof_maps.c       the process's executable mappings, from /proc/self/maps, each with its
 *                      GNU build-id (read from the loaded image's notes, else from the file);
 *   hprof_symbolize.c  PC -> frames (function, file, line, inlined callers) by elfutils libdwfl,
 *                      cached per PC, behind one mutex that malloc never takes;
 *   hprof_pprof.c      the generic pprof builder, and the heap, allocs and delta profiles;
 *   hprof_writers.c    the CPU and threads profiles (hprof_writers.h);
 *   pcodec.c           protobuf-c and gzip (loadgen links it too).
 *
 * Every function here allocates only between hprof_internal_enter() and hprof_internal_exit()
 * (it enters itself), so none of the output half's memory is ever sampled. None of them is
 * called from inside malloc, and none holds a lock that malloc needs.
 */
#ifndef HPROF_OUTPUT_H
#define HPROF_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "heapprof.h"
#include "hprof_internal.h"
#include "hprof_unwind.h"
#include "pcodec.h"

#define HPROF_BUILD_ID_MAX 64 /* bytes: longest GNU build-id we keep (SHA-1 is 20) */

/* One executable mapping of the process, as /proc/self/maps lists it. */
struct hprof_mapping {
    uint64_t start, limit; /* [start, limit) in the address space */
    uint64_t offset;       /* file offset of start */
    uint64_t inode;
    char *path;                                /* "" for anonymous, "[vdso]" etc. kept as is */
    char build_id[2 * HPROF_BUILD_ID_MAX + 1]; /* lowercase hex, "" when unknown */
};

/* The executable mappings, sorted by start. main is the index of the main executable's mapping
 * (the profile lists it first, as pprof takes the first mapping for the main binary), or -1. */
struct hprof_maps {
    size_t n;
    struct hprof_mapping *v;
    ssize_t main;
    uint64_t signature; /* hash of every (start, limit, offset, inode, path): changes on dlopen */
};

/* Parse the text of a maps file (tests feed their own). Keeps executable mappings only, drops
 * " (deleted)" from paths and the inode-0 unnamed fragments that huge-page text leaves. main is
 * the mapping of main_path (may be NULL). Build-ids are not filled. Returns 0 / -1. */
int hprof_maps_parse(const char *text, const char *main_path, struct hprof_maps *out);

/* Read /proc/self/maps and fill build-ids. Returns 0 / -1 (errno set). */
int hprof_maps_read(struct hprof_maps *out);

void hprof_maps_free(struct hprof_maps *maps);

/* Index of the mapping containing addr, or -1. */
ssize_t hprof_maps_find(const struct hprof_maps *maps, uint64_t addr);

/* The GNU build-id of an ELF file as lowercase hex into hex (2 * HPROF_BUILD_ID_MAX + 1 bytes).
 * Returns 0, or -1 when the file cannot be read or has no build-id note. */
int hprof_build_id_of_file(const char *path, char *hex);

/* One frame of a symbolized PC. Strings live in the symbolizer's pool; never NULL ("" when
 * unknown). line is the line executing in this frame (for an outer frame of an inlined call,
 * the line of the call); start_line is the function's declaration line. */
struct hprof_frame {
    const char *name;        /* as users read it */
    const char *system_name; /* as the linker knows it (the ELF symbol, or DW_AT_linkage_name) */
    const char *file;        /* the function's source file */
    int64_t line, start_line;
};

enum {
    HPROF_SYM_FUNCTION = 1 << 0, /* every frame has a name */
    HPROF_SYM_FILE = 1 << 1,     /* every frame has a file */
    HPROF_SYM_LINE = 1 << 2,     /* every frame has a line */
    HPROF_SYM_INLINE = 1 << 3,   /* DWARF scopes were read: inlined callers are all listed */
    HPROF_SYM_BARE = 1 << 4,     /* no symbol: the outermost frame is named object+0xOFFSET */
};

/* A symbolized PC: frames innermost first (inlined callees before their callers). */
struct hprof_symbol {
    unsigned flags;
    unsigned n_frames;
    const struct hprof_frame *frames;
};

/* Symbolizing happens between begin and end, which hold the symbolizer's mutex (never taken by
 * malloc). begin takes the process's mappings (maps->signature tells when they changed: dlopen,
 * dlclose; then the per-PC cache is dropped). Symbols returned by lookup stay valid until end;
 * end releases every file and parsed DWARF opened for the profile and trims the cache to its
 * budget (HEAPPROF_SYMBOL_CACHE). begin returns 0, or -1 out of memory (lookups then return no
 * frames). */
int hprof_sym_begin(const struct hprof_maps *maps);
void hprof_sym_lookup(uint64_t pc, struct hprof_symbol *out);
void hprof_sym_end(void);

/* The symbolizer's own memory, for the figures and /debug/memstats. */
struct hprof_sym_stats {
    uint64_t entries;      /* cached PCs */
    uint64_t frames;       /* frames across them */
    uint64_t string_bytes; /* interned names and paths */
    uint64_t table_bytes;  /* cache table, entries, frames, string pool chunks */
    uint64_t limit_bytes;  /* the cache's budget (HEAPPROF_SYMBOL_CACHE) */
    uint64_t hits, misses; /* lookups answered from the cache / resolved */
    uint64_t evictions;    /* entries dropped to keep the cache within its budget */
};
void hprof_sym_get_stats(struct hprof_sym_stats *out);

/* Drop the cache and libdwfl's state (tests, and a fork child that must not share them). */
void hprof_sym_reset(void);

/* ---- the generic pprof builder (hprof_pprof.c) ---- */

/* A profile being built. Declare (period, sample types, default type, times, comments), then
 * add samples; finish encodes and gzips once and frees the builder (free alone discards).
 * Strings are interned (no capacities to compute), locations, functions and mappings deduped.
 * A failed call (ENOMEM) makes every later one and finish fail: writers may check only finish.
 * Every call enters the profiler itself (its allocations are overhead). */
struct hprof_pb;

/* PC -> frames for a location (the symbolizer's hprof_sym_lookup by default). */
typedef void (*hprof_pb_symbolize_fn)(void *arg, uint64_t pc, struct hprof_symbol *out);

/* maps NULL: read /proc/self/maps now (no mappings if it cannot be read). symbolize != 0: the
 * in-process symbolizer, whose session stays open until finish or free; 0: bare locations.
 * NULL when out of memory. */
struct hprof_pb *hprof_pb_new(const struct hprof_maps *maps, int symbolize);
/* Replace the symbolizer (tests' fakes). */
void hprof_pb_set_symbolizer(struct hprof_pb *b, hprof_pb_symbolize_fn fn, void *arg);
int hprof_pb_period(struct hprof_pb *b, const char *type, const char *unit, int64_t period);
int hprof_pb_sample_type(struct hprof_pb *b, const char *type, const char *unit);
int hprof_pb_default_type(struct hprof_pb *b, const char *type);
void hprof_pb_times(struct hprof_pb *b, int64_t time_ns, int64_t duration_ns);
int hprof_pb_comment(struct hprof_pb *b, const char *text);

/* A sample's label: key = str (str not NULL), or key = num in num_unit (num_unit may be NULL). */
struct hprof_pb_label {
    const char *key, *str;
    int64_t num;
    const char *num_unit;
};
/* One sample: pcs leaf first (at most HPROF_MAX_DEPTH kept), one value per sample type. */
int hprof_pb_add(struct hprof_pb *b, const uintptr_t *pcs, int depth, const int64_t *values,
                 const struct hprof_pb_label *labels, size_t n_labels);
/* Encode and gzip into a new buffer (hprof_output_free), and free the builder. 0 / -1. */
int hprof_pb_finish(struct hprof_pb *b, uint8_t **out, size_t *out_len);
void hprof_pb_free(struct hprof_pb *b);

/* ---- the profiles' writers ---- */

/* Encode a snapshot as a gzip'd pprof profile of the given kind into a new buffer (free it with
 * hprof_output_free). maps may be NULL (read now); symbolize = 0 leaves locations bare (tests,
 * benchmarks). Returns 0 / -1 (errno set). */
int hprof_pprof_encode(const struct hprof_snapshot *snapshot, enum hprof_kind kind,
                       const struct hprof_maps *maps, int symbolize, uint8_t **out,
                       size_t *out_len);

/* Encode a snapshot as hprof_pprof_encode does, with duration_nanos set (delta profiles). */
int hprof_pprof_encode_delta(const struct hprof_snapshot *snapshot, enum hprof_kind kind,
                             const struct hprof_maps *maps, int symbolize, int64_t duration_ns,
                             uint8_t **out, size_t *out_len);

/* Take a snapshot and encode it (what the endpoints and files serve). */
int hprof_pprof_take(enum hprof_kind kind, uint8_t **out, size_t *out_len);

/* Free a buffer of the output half (inside hprof_internal_enter/exit, as it was allocated). */
void hprof_output_free(void *ptr);

#endif
