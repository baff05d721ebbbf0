/* symtarget.h: the interface of the symbolizer tests' target object (symtarget.c). */
#ifndef SYMTARGET_H
#define SYMTARGET_H

typedef void (*symtarget_cb)(void *ctx);

enum {
    SYMTARGET_LINE_CALLBACK, /* in symtarget_inlined: the call of cb */
    SYMTARGET_LINE_INLINED,  /* in symtarget_static: the inlined call of symtarget_inlined */
    SYMTARGET_LINE_STATIC,   /* in symtarget_entry: the call of symtarget_static */
    SYMTARGET_LINES
};

/* The one exported symbol every build has (data, not a function): the entry point. */
struct symtarget_api {
    void (*run)(symtarget_cb cb, void *ctx, int *lines);
};

#endif
