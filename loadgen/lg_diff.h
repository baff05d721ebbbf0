/*
 * lg_diff: what `go tool pprof -base BASE NEW -top` shows of heap profiles, for users without Go.
 * NEW - BASE by inuse_space (and inuse_objects), one entry per function, with
 *   flat: the bytes whose allocating frame (the leaf, innermost inlined function) is this one,
 *   cum:  the bytes with this function anywhere on the stack (counted once per sample),
 * and a file:line for the function: the line of its largest flat contribution (or of its first
 * frame when it has none). Functions are keyed by name and file, as pprof's default
 * granularity does; a location with no symbol is named by its address. Sorted by |flat|, then
 * |cum|, then name, as pprof -top sorts. A pure function of two decoded profiles.
 */
#ifndef LG_DIFF_H
#define LG_DIFF_H

#include <stdint.h>
#include <stdio.h>

#include "pcodec.h"

struct lg_diff_entry {
    char *function;
    char *file;
    int64_t line;
    int64_t flat_bytes, flat_objects;
    int64_t cum_bytes, cum_objects;
    /* private to lg_diff.c */
    int64_t line_weight;
    uint64_t stamp;
};

struct lg_diff {
    struct lg_diff_entry *entries; /* sorted, n of them */
    size_t n;
    int64_t total_bytes;   /* inuse_space(NEW) - inuse_space(BASE) */
    int64_t total_objects; /* inuse_objects(NEW) - inuse_objects(BASE) */
};

/* base may be NULL (then this is NEW's own -top). Returns 0, or -1 with a reason in err (e.g.
 * a profile without inuse_space is not a heap profile). */
int lg_diff_compute(const pcodec_profile *base, const pcodec_profile *newp, struct lg_diff *out,
                    char *err, size_t errlen);
void lg_diff_free(struct lg_diff *d);

/* Print the top `top` entries as a table (0 = all). */
void lg_diff_print(FILE *f, const struct lg_diff *d, size_t top);

/* "+9.77 MiB", "-512 B": signed byte counts in binary units. */
void lg_format_bytes(char *buf, size_t len, double bytes, int with_sign);

#endif
