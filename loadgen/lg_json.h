/*
 * lg_json: just enough JSON reading for two small documents whose shape loadgen does not own:
 * the server's /debug/memstats (a later issue; its field names may nest) and our own
 * report.json (for plot labels). It finds the first member named `key` at any depth and reads
 * its number or string value. Strings are scanned with their escapes so that a key-like text
 * inside a string value never matches. Not a validator: callers accept "absent" gracefully.
 */
#ifndef LG_JSON_H
#define LG_JSON_H

#include <stddef.h>
#include <stdio.h>

/* 0 and *out on success; -1 when there is no such member or its value is not a number. */
int lg_json_number(const char *json, size_t len, const char *key, double *out);

/* 0 on success, the value unescaped (JSON's escapes; \uXXXX, surrogate pairs too, as UTF-8) and
 * cut to at most outlen - 1 bytes (an escaped character is never split); -1 otherwise (absent, not
 * a string, a bad or NUL \u escape, unterminated). */
int lg_json_string(const char *json, size_t len, const char *key, char *out, size_t outlen);

/* Write s as a JSON string literal (with quotes) to f. */
void lg_json_write_string(FILE *f, const char *s);

#endif
