/*
 * lc_util: see lc_util.h. Pure functions plus two clock reads; no allocation, no global state,
 * so they are safe anywhere, including inside the profiler.
 */
#include "lc_util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int lc_parse_duration_ns(const char *text, int64_t *out_ns)
{
    static const struct {
        const char *suffix;
        double ns;
    } units[] = {
        {"ns", 1.0}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}, {"", 1e9},
    };
    if (text == NULL || *text == '\0' || isspace((unsigned char)*text))
        return -1;
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (end == text || errno != 0 || !isfinite(value))
        return -1;
    /* strtod accepts "inf", "nan" and hex floats; a duration is plain decimal. */
    for (const char *p = text; p < end; p++)
        if (!isdigit((unsigned char)*p) && *p != '.' && *p != '-' && *p != '+')
            return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            double ns = value * units[i].ns;
            if (ns > 9.2e18 || ns < -9.2e18)
                return -1;
            *out_ns = (int64_t)llround(ns);
            return 0;
        }
    }
    return -1;
}

/* The magnitude written in text[0..len): digits only, at least one, at most UINT64_MAX. */
static int parse_digits(const char *text, size_t len, uint64_t *out)
{
    if (len == 0)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        uint64_t digit = (uint64_t)(text[i] - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    *out = v;
    return 0;
}

int lc_parse_u64_n(const char *text, size_t len, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v;
    if (text == NULL || parse_digits(text, len, &v) != 0 || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int lc_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    return text == NULL ? -1 : lc_parse_u64_n(text, strlen(text), min, max, out);
}

int lc_parse_i64(const char *text, int64_t min, int64_t max, int64_t *out)
{
    if (text == NULL)
        return -1;
    bool negative = *text == '-';
    if (*text == '+' || *text == '-')
        text++;
    uint64_t mag;
    if (parse_digits(text, strlen(text), &mag) != 0)
        return -1;
    int64_t v;
    if (negative && mag <= (uint64_t)INT64_MAX + 1)
        v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    else if (!negative && mag <= (uint64_t)INT64_MAX)
        v = (int64_t)mag;
    else
        return -1; /* out of int64's range: an error in Go too */
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int lc_parse_hostport(const char *text, char *host_out, size_t host_len, uint16_t *port_out)
{
    if (text == NULL)
        return -1;
    const char *host = text, *host_end, *colon;
    if (*text == '[') {
        host = text + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL || host_end[1] != ':')
            return -1;
        colon = host_end + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL || memchr(text, ':', (size_t)(colon - text)) != NULL)
            return -1; /* bare IPv6 needs brackets */
        host_end = colon;
    }
    size_t n = (size_t)(host_end - host);
    if (n == 0 || n >= host_len)
        return -1;
    uint64_t port;
    if (lc_parse_u64(colon + 1, 0, 65535, &port) != 0)
        return -1;
    memcpy(host_out, host, n);
    host_out[n] = '\0';
    *port_out = (uint16_t)port;
    return 0;
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * LC_NS_PER_SEC + ts.tv_nsec;
}

int64_t lc_monotonic_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

int64_t lc_realtime_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}
