/*
 * symtarget: the object the symbolizer's tests resolve, built four ways (see CMakeLists.txt): with
 * its symbol table and DWARF, stripped, and with its debug info in a separate file (with and
 * without an exported function). run() calls back the test through an inlined function, so a
 * stack taken in the callback holds an inline frame, a static function (absent from .dynsym) and
 * an entry point. Each call records the line it is on (CALL_AT), so the test knows the lines the
 * symbolizer must answer without hard-coding them.
 */
#include "symtarget.h"

#ifdef SYMTARGET_HIDE_ENTRY
#define ENTRY_VISIBILITY __attribute__((visibility("hidden")))
#else
#define ENTRY_VISIBILITY __attribute__((visibility("default")))
#endif

/* The call and the record of its line are one expression on one line. */
#define CALL_AT(slot, call) ((lines)[slot] = __LINE__, call)

static inline __attribute__((always_inline)) void symtarget_inlined(symtarget_cb cb, void *ctx,
                                                                    int *lines)
{
    CALL_AT(SYMTARGET_LINE_CALLBACK, cb(ctx));
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void symtarget_static(symtarget_cb cb, void *ctx, int *lines)
{
    CALL_AT(SYMTARGET_LINE_INLINED, symtarget_inlined(cb, ctx, lines));
    __asm__ volatile("" ::: "memory");
}

ENTRY_VISIBILITY __attribute__((noinline)) void symtarget_entry(symtarget_cb cb, void *ctx,
                                                                int *lines)
{
    CALL_AT(SYMTARGET_LINE_STATIC, symtarget_static(cb, ctx, lines));
    __asm__ volatile("" ::: "memory");
}

__attribute__((visibility("default"))) const struct symtarget_api symtarget_api = {symtarget_entry};
