/*
 * lc_util: the small parsers and clocks that every leakcase program shares.
 *
 * Durations are written as users write them on a command line ("500ms", "10s", "2m", "1h", or
 * plain seconds, fractions allowed) and held as nanoseconds in an int64_t. Addresses are
 * "HOST:PORT" with an optional [IPv6] host; port 0 means "pick a free port". Parsers never print:
 * they return 0 or -1 and the caller, at the edge, says what was wrong.
 */
#ifndef LC_UTIL_H
#define LC_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define LC_NS_PER_SEC  1000000000LL
#define LC_NS_PER_MS   1000000LL
#define LC_NS_PER_USEC 1000LL

/* Parse a duration ("500ms", "1.5s", "2m", "1h", "250us", "30"). Returns 0 and stores
 * nanoseconds (may be 0 or negative if written so; callers decide what they accept), or -1. */
int lc_parse_duration_ns(const char *text, int64_t *out_ns);

/* The integer parsers read decimal digits themselves: no locale, no errno, no allocation, so
 * malloc's own initialisation may call them (HEAPPROF_RATE). 0 with *out set, or -1 (*out
 * untouched). */

/* A non-negative integer in [min, max]: decimal digits only (no sign, no blank, no trailing
 * garbage), overflow refused. */
int lc_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out);

/* The same over exactly len bytes of text (a field inside a longer string: "0042" of
 * "PREFIX.0042.pb.gz"); text need not be NUL-terminated. */
int lc_parse_u64_n(const char *text, size_t len, uint64_t min, uint64_t max, uint64_t *out);

/* A signed integer in [min, max], as Go's strconv.ParseInt(s, 10, 64) reads it (the debug
 * endpoints' ?seconds= and ?debug=): an optional '+' or '-', then decimal digits only. */
int lc_parse_i64(const char *text, int64_t min, int64_t max, int64_t *out);

/* Split "HOST:PORT" or "[V6]:PORT". host_out gets the host without brackets. */
int lc_parse_hostport(const char *text, char *host_out, size_t host_len, uint16_t *port_out);

/* Clocks, in nanoseconds. Monotonic for intervals and TTLs, realtime for timestamps. */
int64_t lc_monotonic_ns(void);
int64_t lc_realtime_ns(void);

#endif
