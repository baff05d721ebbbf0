/*
 * hprof_query: values the profiler reads from outside: the debug endpoints' parameters, read
 * from the bytes a client sent as Go's net/http/pprof reads them, and HEAPPROF_INTERVAL. Pure
 * functions of their arguments: no allocation, no libevent, no
 * profiler state, so they are safe inside the profiler and a fuzz target reaches them alone
 * (fuzz/fuzz_http_params.c). hprof_http.c and hprof_pages.c call them with the request's query
 * string or body.
 */
#ifndef HPROF_QUERY_H
#define HPROF_QUERY_H

#include <stddef.h>
#include <stdint.h>

#define HPROF_QUERY_ADDRESS_MAX 64 /* characters of one /symbol address ("0x" + 16 digits) */

/* The first value of parameter name in query ("a=1&b=2", NULL for none), as Go's r.FormValue
 * reads it ("k" alone is k=""), decoded ("+" is a space, "%XX" a byte; a "%" without two hex
 * digits stays as written, as libevent's evhttp_uridecode leaves it) into out, cut at len - 1
 * bytes (a cut value is never a valid number). Returns 1 if present, 0 if not (out is ""). */
int hprof_query_param(const char *query, const char *name, char *out, size_t len);

/* debug=N as Go reads it (strconv.Atoi, anything unparsable or out of int's range is 0). Numbers
 * are read with lc_util's lc_parse_i64, Go's strconv.ParseInt(s, 10, 64). */
int hprof_query_debug(const char *query);

/* Go's check of seconds=: a positive integer no larger than max. 0 with *seconds set (0 when
 * absent or empty), -1 when not a positive integer, -2 when over max. */
int hprof_query_seconds(const char *query, long max, long *seconds);

/* One word of a /debug/pprof/symbol request, as Go's strconv.ParseUint(word, 0, 64) reads it
 * (decimal, 0x hex or 0 octal); 0 for anything it would refuse. */
uint64_t hprof_query_address(const char *word, size_t len);

/* HEAPPROF_INTERVAL: 0 with *ns set; 1 when it was below HEAPPROF_INTERVAL_MIN_NS (then *ns is
 * the floor: the caller says so); -1 when it is not a positive duration. */
int hprof_query_interval(const char *text, int64_t *ns);

#endif
