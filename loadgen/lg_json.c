/*
 * lg_json: see lg_json.h. A single pass over the text that tracks whether it is inside a string;
 * at each string that is followed by ':' it compares the raw (escaped) text with the key, which
 * is exact for keys without escapes (all ours).
 */
#include "lg_json.h"

#include <stdbool.h>
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

/* The 4 hex digits at json[i..i+4), or -1. */
static long hex4(const char *json, size_t len, size_t i)
{
    long v = 0;
    if (i + 4 > len)
        return -1;
    for (size_t k = i; k < i + 4; k++) {
        char c = json[k];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The code point of the \uXXXX escape at json[i] == 'u' (a surrogate pair is two escapes;
 * a lone surrogate is U+FFFD, as Go's decoder reads it); *next is the index after it. -1 when
 * the digits are missing. */
static long unicode_escape(const char *json, size_t len, size_t i, size_t *next)
{
    long cp = hex4(json, len, i + 1);
    if (cp < 0)
        return -1;
    *next = i + 5;
    if (cp >= 0xd800 && cp < 0xdc00) {
        long lo =
            i + 6 < len && json[i + 5] == '\\' && json[i + 6] == 'u' ? hex4(json, len, i + 7) : -1;
        if (lo >= 0xdc00 && lo < 0xe000) {
            *next = i + 11;
            return 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        return 0xfffd;
    }
    return cp >= 0xdc00 && cp < 0xe000 ? 0xfffd : cp;
}

/* cp as UTF-8 into buf; returns its length (1..4). */
static size_t utf8(long cp, char *buf)
{
    if (cp < 0x80) {
        buf[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        buf[0] = (char)(0xc0 | cp >> 6);
        buf[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        buf[0] = (char)(0xe0 | cp >> 12);
        buf[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        buf[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    buf[0] = (char)(0xf0 | cp >> 18);
    buf[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    buf[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    buf[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

int lg_json_string(const char *json, size_t len, const char *key, char *out, size_t outlen)
{
    long at = find_value(json, len, key);
    if (at < 0 || (size_t)at >= len || json[at] != '"' || outlen == 0)
        return -1;
    size_t n = 0;
    bool full = false;
    for (size_t i = (size_t)at + 1; i < len; i++) {
        char piece[4];
        size_t piece_len = 1;
        piece[0] = json[i];
        if (json[i] == '"') {
            out[n] = '\0';
            return 0;
        }
        if (json[i] == '\\' && i + 1 < len) {
            char e = json[++i];
            if (e == 'u') {
                size_t next;
                long cp = unicode_escape(json, len, i, &next);
                if (cp <= 0)
                    return -1; /* bad digits, or U+0000, which a C string cannot hold */
                piece_len = utf8(cp, piece);
                i = next - 1;
            } else {
                /* \" \\ \/ and any other escaped character: the character itself */
                piece[0] = e == 'n'   ? '\n'
                           : e == 't' ? '\t'
                           : e == 'r' ? '\r'
                           : e == 'b' ? '\b'
                           : e == 'f' ? '\f'
                                      : e;
            }
        }
        if (!full && n + piece_len < outlen) {
            memcpy(out + n, piece, piece_len);
            n += piece_len;
        } else {
            full = true; /* an escaped character that does not fit whole ends the copy */
        }
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
