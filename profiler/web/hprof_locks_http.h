/*
 * hprof_locks_http: the registry's mutex and block entries (see hprof_locks_http.c).
 */
#ifndef HPROF_LOCKS_HTTP_H
#define HPROF_LOCKS_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct evhttp_request;
struct hprof_profile;
struct hprof_profile_error;

/* The endpoint of both profiles: arg is the registry entry (its name says which). */
void hprof_locks_http_serve(struct evhttp_request *req, void *arg);

/* The index page's counts: stacks in each profile. */
uint64_t hprof_locks_http_count_mutex(void);
uint64_t hprof_locks_http_count_block(void);

/* threadcreate: the index's count and the registry's writers. */
uint64_t hprof_locks_http_count_threadcreate(void);
int hprof_locks_http_threadcreate_proto(const struct hprof_profile *p, uint8_t **out, size_t *len,
                                        struct hprof_profile_error *err);
int hprof_locks_http_threadcreate_text(const struct hprof_profile *p, int debug,
                                       struct evbuffer *out, struct hprof_profile_error *err);

#endif
