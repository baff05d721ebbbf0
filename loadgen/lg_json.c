/*
 * lg_json: see lg_json.h. Reading is Jansson's (Debian libjansson): the document is parsed
 * whole (so an invalid or truncated one has no members at all), integers as doubles (a counter
 * past 2^63 must not make the document unreadable), no NUL inside strings (a C string cannot
 * hold one), nesting bounded by Jansson's depth limit. The member is searched depth first, each
 * object's members in document order, a member's own name before what its value holds: the
 * first in document order wins, at any depth.
 *
 * Writing goes through Jansson too, after invalid UTF-8 (a directory name, a URL as the user
 * typed it) has been replaced by U+FFFD, as Go's encoding/json does: report.json is always
 * valid JSON, and a valid UTF-8 string reads back unchanged.
 */
#include "lg_json.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The first member named key at any depth of v, or NULL. */
static json_t *find(json_t *v, const char *key)
{
    if (json_is_object(v)) {
        const char *name;
        json_t *value;
        json_object_foreach(v, name, value)
        {
            if (strcmp(name, key) == 0)
                return value;
            json_t *inner = find(value, key);
            if (inner != NULL)
                return inner;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *value;
        json_array_foreach(v, i, value)
        {
            json_t *inner = find(value, key);
            if (inner != NULL)
                return inner;
        }
    }
    return NULL;
}

static json_t *load(const char *json, size_t len)
{
    json_error_t error;
    return json_loadb(json, len, JSON_DECODE_INT_AS_REAL, &error);
}

int lg_json_number(const char *json, size_t len, const char *key, double *out)
{
    json_t *root = load(json, len);
    json_t *v = root != NULL ? find(root, key) : NULL;
    int rc = -1;
    if (json_is_number(v)) {
        *out = json_number_value(v);
        rc = 0;
    }
    json_decref(root);
    return rc;
}

int lg_json_string(const char *json, size_t len, const char *key, char *out, size_t outlen)
{
    json_t *root = load(json, len);
    json_t *v = root != NULL ? find(root, key) : NULL;
    int rc = -1;
    if (json_is_string(v) && outlen > 0) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (n >= outlen) {
            n = outlen - 1;
            while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
                n--; /* never split a character: back to the start of the one cut */
        }
        memcpy(out, s, n);
        out[n] = '\0';
        rc = 0;
    }
    json_decref(root);
    return rc;
}

/* The length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one (RFC 3629: no
 * overlong forms, no surrogates, nothing past U+10FFFF). */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = s[0] >= 0xc2 && s[0] <= 0xdf   ? 2
               : s[0] >= 0xe0 && s[0] <= 0xef ? 3
               : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                              : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
        (n == 4 && s[0] == 0xf0 && s[1] < 0x90) || (n == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

void lg_json_write_string(FILE *f, const char *s)
{
    size_t len = strlen(s);
    char *clean = malloc(len * 3 + 1); /* each bad byte becomes U+FFFD, 3 bytes */
    json_t *v = NULL;
    if (clean != NULL) {
        size_t o = 0;
        for (const unsigned char *p = (const unsigned char *)s; *p != '\0';) {
            size_t n = utf8_len(p);
            if (n == 0) {
                memcpy(clean + o, "\xef\xbf\xbd", 3);
                o += 3;
                p++;
            } else {
                memcpy(clean + o, p, n);
                o += n;
                p += n;
            }
        }
        v = json_stringn(clean, o);
    }
    if (v == NULL || json_dumpf(v, f, JSON_ENCODE_ANY) != 0)
        fputs("\"\"", f); /* out of memory: an empty string keeps the document valid */
    json_decref(v);
    free(clean);
}
