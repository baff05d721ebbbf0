/*
 * hprof_locks_http: the registry's mutex and block entries (see hprof_locks_http.c).
 */
#ifndef HPROF_LOCKS_HTTP_H
#define HPROF_LOCKS_HTTP_H

#include <stdint.h>

struct evhttp_request;

/* The endpoint of both profiles: arg is the registry entry (its name says which). */
void hprof_locks_http_serve(struct evhttp_request *req, void *arg);

/* The index page's counts: stacks in each profile. */
uint64_t hprof_locks_http_count_mutex(void);
uint64_t hprof_locks_http_count_block(void);

#endif
