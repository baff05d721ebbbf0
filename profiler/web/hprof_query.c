/*
 * hprof_query: see hprof_query.h. Everything works on the caller's buffers: a query string is
 * scanned in place and a value is decoded straight into out, so a hostile query of any length
 * costs one pass and no memory.
 */
#include "hprof_query.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "heapprof.h"
#include "lc_util.h"

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode s[0..n) into out (at most len - 1 bytes, then NUL). A decoded NUL ends the value. */
static void decode(const char *s, size_t n, char *out, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < len; i++) {
        char c = s[i];
        int hi, lo;
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < n && (hi = hex_digit(s[i + 1])) >= 0 &&
                   (lo = hex_digit(s[i + 2])) >= 0) {
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        out[o++] = c;
    }
    out[o] = '\0';
}

int hprof_query_param(const char *query, const char *name, char *out, size_t len)
{
    size_t name_len = strlen(name);
    if (len > 0)
        out[0] = '\0';
    for (const char *p = query; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '&');
        size_t part = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', part);
        size_t key_len = eq != NULL ? (size_t)(eq - p) : part;
        if (key_len == name_len && memcmp(p, name, name_len) == 0) {
            if (len > 0 && eq != NULL)
                decode(eq + 1, part - key_len - 1, out, len);
            return 1;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

int hprof_query_debug(const char *query)
{
    char value[64];
    int64_t debug;
    if (!hprof_query_param(query, "debug", value, sizeof(value)) ||
        lc_parse_i64(value, INT_MIN, INT_MAX, &debug) != 0)
        return 0; /* Go: debug, _ := strconv.Atoi(...) */
    return (int)debug;
}

int hprof_query_seconds(const char *query, long max, long *seconds)
{
    char value[64];
    int64_t v;
    *seconds = 0;
    if (!hprof_query_param(query, "seconds", value, sizeof(value)) || value[0] == '\0')
        return 0;
    if (lc_parse_i64(value, INT64_MIN, INT64_MAX, &v) != 0 || v <= 0)
        return -1;
    if (v > max)
        return -2;
    *seconds = (long)v;
    return 0;
}

uint64_t hprof_query_address(const char *word, size_t len)
{
    char buf[HPROF_QUERY_ADDRESS_MAX + 1];
    if (len == 0 || len > HPROF_QUERY_ADDRESS_MAX || word[0] < '0' || word[0] > '9' ||
        memchr(word, '\0', len) != NULL)
        return 0; /* no sign, no space, no NUL (a POST body may hold one): Go takes none */
    memcpy(buf, word, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 0);
    if (*end != '\0' || errno != 0)
        return 0;
    return (uint64_t)v;
}

int hprof_query_interval(const char *text, int64_t *ns)
{
    int64_t v;
    if (lc_parse_duration_ns(text, &v) != 0 || v <= 0)
        return -1;
    if (v < HEAPPROF_INTERVAL_MIN_NS) {
        *ns = HEAPPROF_INTERVAL_MIN_NS;
        return 1;
    }
    *ns = v;
    return 0;
}
