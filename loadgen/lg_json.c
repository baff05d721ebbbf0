/*
 * lg_json: see lg_json.h. A single pass over the text that tracks whether it is inside a string;
 * at each string that is followed by ':' it compares the raw (escaped) text with the key, which
 * is exact for keys without escapes (all ours).
 */
#include "lg_json.h"

#include <stdlib.h>
#include <string.h>

/* Index just past the closing quote of the string starting at json[i] == '"', or len. */
static size_t skip_string(const char *json, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (json[i] == '\\')
            i++;
        else if (json[i] == '"')
            return i + 1;
    }
    return len;
}

static size_t skip_ws(const char *json, size_t len, size_t i)
{
    while (i < len && (json[i] == ' ' || json[i] == '\t' || json[i] == '\n' || json[i] == '\r'))
        i++;
    return i;
}

/* Position of the value of member `key`, or -1. */
static long find_value(const char *json, size_t len, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < len;) {
        if (json[i] != '"') {
            i++;
            continue;
        }
        size_t end = skip_string(json, len, i);
        size_t after = skip_ws(json, len, end);
        if (after < len && json[after] == ':' && end - i - 2 == klen &&
            memcmp(json + i + 1, key, klen) == 0)
            return (long)skip_ws(json, len, after + 1);
        i = end;
    }
    return -1;
}

int lg_json_number(const char *json, size_t len, const char *key, double *out)
{
    long at = find_value(json, len, key);
    if (at < 0)
        return -1;
    char buf[64];
    size_t n = 0;
    for (size_t i = (size_t)at; i < len && n < sizeof(buf) - 1; i++) {
        char c = json[i];
        if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'))
            break;
        buf[n++] = c;
    }
    buf[n] = '\0';
    if (n == 0)
        return -1;
    char *end;
    double v = strtod(buf, &end);
    if (*end != '\0')
        return -1;
    *out = v;
    return 0;
}

int lg_json_string(const char *json, size_t len, const char *key, char *out, size_t outlen)
{
    long at = find_value(json, len, key);
    if (at < 0 || (size_t)at >= len || json[at] != '"' || outlen == 0)
        return -1;
    size_t n = 0;
    for (size_t i = (size_t)at + 1; i < len; i++) {
        char c = json[i];
        if (c == '"') {
            out[n] = '\0';
            return 0;
        }
        if (c == '\\' && i + 1 < len) {
            char e = json[++i];
            c = e == 'n' ? '\n' : e == 't' ? '\t' : e; /* \" \\ \/ and the rest: the char */
        }
        if (n + 1 < outlen)
            out[n++] = c;
    }
    return -1;
}

void lg_json_write_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}
