/*
 * lg_json: JSON for two small documents whose shape loadgen does not own: the server's
 * /debug/memstats (its field names may nest) and our own report.json (for plot labels), read
 * with Jansson (Debian libjansson). A reader finds the first member named `key` at any depth (in
 * document order) and reads its number or string value; a document that is not valid JSON (or
 * holds a NUL in a string) has no members, and callers accept "absent" gracefully.
 */
#ifndef LG_JSON_H
#define LG_JSON_H

#include <stddef.h>
#include <stdio.h>

/* 0 and *out on success (integers as doubles, whatever their size); -1 when there is no such
 * member, its value is not a number, or the document is not valid. */
int lg_json_number(const char *json, size_t len, const char *key, double *out);

/* 0 on success, the value unescaped (UTF-8) and cut to at most outlen - 1 bytes, never inside a
 * character; -1 otherwise (absent, not a string, or not a valid document). */
int lg_json_string(const char *json, size_t len, const char *key, char *out, size_t outlen);

/* Write s as a JSON string literal (with quotes) to f; invalid UTF-8 in s is written as U+FFFD. */
void lg_json_write_string(FILE *f, const char *s);

#endif
