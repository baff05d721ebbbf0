/*
 * lc_http: an evhttp server that no client can stop, and the request gate every handler calls.
 *
 * libevent 2.1's evhttp is the HTTP engine of both services and of the profiler's debug
 * listener; this module puts around it what it lacks:
 *
 *  - Out of memory: libevent 2.1 crashes when it cannot allocate a new connection's bufferevent
 *    (evhttp_connection_base_bufferevent_new frees a half-built connection). So evhttp never
 *    allocates one: a bufferevent callback hands it a *spare* made ahead of time, and makes the
 *    next spare. When that fails, an emergency reserve (LC_HTTP_RESERVE_BYTES) is released so
 *    the connection in hand can be finished, the listener stops handing sockets to evhttp, and
 *    new connections are answered with a static 503 (accept, write, close: no allocation) until
 *    a retry finds memory for the reserve and a spare again.
 *  - Accept errors (EMFILE, ENFILE, ENOBUFS, ENOMEM): the listener pauses and retries after
 *    5 ms, doubling up to 1 s (Go's net/http Serve does the same), logging at most one line per
 *    LC_HTTP_LOG_EVERY_NS; a successful accept resets the delay. Connections already open keep
 *    being served.
 *  - A header deadline (Go's ReadHeaderTimeout): from the first byte of a request, the whole
 *    request must arrive within header_timeout_ns, or the connection is shut down. Each
 *    connection's input and output buffers carry a callback: the first input byte of a request
 *    enters the connection into this thread's table of requests in progress (taking a reference
 *    on its bufferevent), the first byte of the reply takes it out; a timer walks the table.
 *    A request handed to its handler (evhttp stops reading) is never cut, whatever it waits for.
 *  - Framing (RFC 9112): lc_http_refuse answers 400 and closes on conflicting Content-Length
 *    headers, on Content-Length with Transfer-Encoding, and on a body sent with a method that
 *    evhttp reads no body for (HEAD, TRACE, unknown ones: evhttp would parse that body as the
 *    next request); and 405 with Allow for a method the handler does not take, unknown methods
 *    included (evhttp would answer those 501 before any handler ran).
 *  - HEAD: lc_http_send answers a HEAD request with the headers and the Content-Length of the
 *    reply a GET would get, and no body.
 *
 * Threads: a server and its connections live on the thread that runs its event base. The table
 * of requests in progress is per thread (the buffer callbacks find it without a lock); a second
 * server on the same thread shares the first one's table and header timeout.
 * Never print from inside malloc; log lines are formatted on the stack and written with write(2),
 * so they work when malloc does not.
 */
#ifndef LC_HTTP_H
#define LC_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>

struct event_base;
struct evhttp;
struct evhttp_request;
struct evbuffer;

#define LC_HTTP_RESERVE_BYTES             (256 * 1024)    /* bytes released when memory runs out */
#define LC_HTTP_BACKOFF_MIN_NS            (5 * 1000000LL) /* first pause after an accept error */
#define LC_HTTP_BACKOFF_MAX_NS            (1000 * 1000000LL) /* longest pause */
#define LC_HTTP_LOG_EVERY_NS              (10 * 1000000000LL) /* at most one line per server this often */
#define LC_HTTP_DEFAULT_HEADER_TIMEOUT_NS (10 * 1000000000LL)

/* Methods for lc_http_refuse (evhttp's EVHTTP_REQ_* bits). */
#define LC_HTTP_GET  (1u << 0)
#define LC_HTTP_POST (1u << 1)
#define LC_HTTP_HEAD (1u << 2)
#define LC_HTTP_ANY                                                                                \
    0xffffu /* framing checks only: e.g. an unknown path is 404 whatever the method */

struct lc_http_options {
    const char *name;          /* for log lines, e.g. "leaky: /process" */
    int64_t header_timeout_ns; /* a request's whole head and body within this; 0 = no deadline */
    int64_t idle_timeout_ns;   /* evhttp's read/write timeout; 0 = none */
    size_t max_body_bytes;     /* 0 = evhttp's default (unlimited) */
    size_t max_headers_bytes;  /* 0 = evhttp's default (unlimited) */
};

struct lc_http_server;

/* An evhttp on base, accepting on listen_fd (a listening, non-blocking socket; the server owns
 * it from here, even on failure). Every method reaches the handlers (see lc_http_refuse).
 * Returns NULL with a message in err. */
struct lc_http_server *lc_http_server_new(struct event_base *base, evutil_socket_t listen_fd,
                                          const struct lc_http_options *opt, char *err,
                                          size_t errlen);

/* The evhttp to register handlers on. */
struct evhttp *lc_http_server_evhttp(struct lc_http_server *server);

/* Close the listener and every connection. Call from the base's thread, or after it stopped. */
void lc_http_server_free(struct lc_http_server *server);

/* Figures for tests and /metrics-like reports. */
struct lc_http_counters {
    uint64_t accept_errors;    /* accept() failures (each pauses the listener) */
    uint64_t refused_503;      /* connections answered 503 while memory was short */
    uint64_t header_timeouts;  /* connections shut down by the header deadline */
    uint64_t memory_shortages; /* times the spare or the reserve could not be made */
};
void lc_http_server_counters(const struct lc_http_server *server, struct lc_http_counters *out);

/* Call first in every handler: answers the request itself and returns true when it must not
 * reach the handler (see above), otherwise returns false. allowed: LC_HTTP_* bits. */
bool lc_http_refuse(struct evhttp_request *req, unsigned allowed);

/* evhttp_send_reply that answers HEAD correctly: the Content-Length of body (or of the
 * request's output buffer when body is NULL) and no body. */
void lc_http_send(struct evhttp_request *req, int code, const char *reason, struct evbuffer *body);

#endif
