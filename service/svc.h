/*
 * svc: the /process HTTP service that both builds run. Everything but the store is shared:
 * flags, listeners, event loops, request handling, the debug listener and shutdown. leaky and
 * fixed differ only in which store.c they link (see store.h), so their main() is one call:
 * svc_main(argc, argv).
 *
 * Threads: N workers, each with its own event_base and evhttp, accepting on its own
 * SO_REUSEPORT socket bound to the same address (the kernel spreads connections); the main
 * thread runs the debug listener and the signal handlers. Workers share only the store (its own
 * lock) and an atomic request counter.
 */
#ifndef SVC_H
#define SVC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"

#define SVC_HOST_MAX 256

#define SVC_MAX_BODY_BYTES    (64 * 1024) /* bytes: a larger /process body gets 413 */
#define SVC_MAX_HEADERS_BYTES (8 * 1024)  /* bytes: larger request headers get an error status */
#define SVC_MAX_ENTRY_BYTES   (1 << 20)   /* bytes: --entry-bytes upper bound */
#define SVC_MAX_THREADS       256

struct svc_config {
    char listen_host[SVC_HOST_MAX];
    uint16_t listen_port;
    char debug_host[SVC_HOST_MAX];
    uint16_t debug_port;
    size_t entry_bytes;        /* metadata bytes kept per request */
    int threads;               /* worker event loops */
    int64_t idle_timeout_ns;   /* close a connection idle this long */
    int64_t header_timeout_ns; /* a request must arrive whole this soon after its first byte */
    struct store_options store;
};

/* Outcome of svc_parse_args. */
enum svc_parse_result {
    SVC_PARSE_OK,
    SVC_PARSE_HELP,    /* --help: print usage on stdout, exit 0 */
    SVC_PARSE_VERSION, /* --version: print the version on stdout, exit 0 */
    SVC_PARSE_ERROR,   /* err holds the reason: print it and the usage on stderr, exit 2 */
};

/* Parse the command line of the `store_flavor` build into cfg (defaults first). */
enum svc_parse_result svc_parse_args(int argc, char **argv, struct svc_config *cfg, char *err,
                                     size_t errlen);

void svc_usage(FILE *out, const char *prog);

/* Run the service until SIGINT/SIGTERM. Returns 0 on a clean stop, -1 if it could not start
 * (a message is printed on stderr). */
int svc_run(const struct svc_config *cfg);

/* The whole program: parse, run, exit status (0 ok, 1 runtime error, 2 usage). */
int svc_main(int argc, char **argv);

/* Internal: serve the debug endpoints on debug_http, with the store's figures among them
 * (svc_debug.c), or explain their absence in a build without the profiler (svc_debug_off.c). */
struct evhttp;
int svc_debug_mount(struct evhttp *debug_http, struct store *store);
void svc_debug_unmount(struct store *store);

#endif
