/*
 * fuzz.h: what the fuzz targets share. Each fuzz_*.c defines LLVMFuzzerTestOneInput for one
 * parser a hostile peer (a client of the debug port, a profile server, a saved run directory,
 * an environment) reaches. Built two ways (fuzz/CMakeLists.txt):
 *   LEAKCASE_FUZZ=ON (CC=clang): libFuzzer with AddressSanitizer and UBSan, to search;
 *   every other build: with replay_main.c, a plain program that runs each committed input once,
 *   so ctest replays the seed corpora and the regression inputs in every build (sanitizer
 *   builds included).
 * A target checks properties the callers rely on, not only "no crash": a failed check calls
 * FUZZ_CHECK, which prints the broken property and aborts (libFuzzer then saves the input).
 */
#ifndef LC_FUZZ_H
#define LC_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property broken: %s\n", __FILE__, __LINE__, #cond);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The input as a NUL-terminated string (a copy; the caller frees it). Bytes after an embedded
 * NUL are what a C caller never sees, as for an environment value or a query string. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
