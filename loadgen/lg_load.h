/*
 * lg_load: the load engine. T worker threads, each with its own libevent base and its share of
 * the connections (keep-alive HTTP/1.1 over plain non-blocking sockets, one request in flight
 * each), its share of the open-loop schedule (lg_sched.h: worker i sends requests i, i+T, ...),
 * and its own histograms. Nothing is shared between workers, so no libevent locking is enabled.
 *
 * Rate mode: a request is due at its schedule time. When it is due and a connection is idle it is
 * sent; when every connection is busy it waits (backlog) and goes out on the next connection to
 * free up. Latency is measured from the due time to the end of the response, so a stalled server
 * shows up as latency (no coordinated omission). Max mode (rate 0): closed loop, each connection
 * sends again as soon as its response is complete; latency is measured from the send.
 *
 * Errors never end a run: connect failures, resets (including a close mid-response), timeouts
 * (no complete response within timeout_ns of the send), protocol errors and non-2xx statuses
 * are counted by kind; a failed connection reconnects after an exponential backoff
 * (LG_BACKOFF_MIN_NS doubling to LG_BACKOFF_MAX_NS, jittered), reset by the next good response.
 * A server closing an idle keep-alive connection is not an error: it reconnects at once.
 *
 * Sharing with the main thread: counters are single-writer atomics (relaxed); the per-second
 * histogram is guarded by the worker's mutex (one uncontended lock per response); the whole-run
 * histogram is private to the worker until it has been joined.
 */
#ifndef LG_LOAD_H
#define LG_LOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lg_hist.h"

#define LG_BACKOFF_MIN_NS (10 * 1000000LL)   /* first reconnect delay after a failure */
#define LG_BACKOFF_MAX_NS (1000 * 1000000LL) /* cap of the doubling */
#define LG_TICK_NS        (100 * 1000000LL)  /* timeout and stop checks */
#define LG_DRAIN_MAX_NS   (2000 * 1000000LL) /* at the end, wait this long for responses */

enum lg_err_kind {
    LG_ERR_CONNECT,  /* refused, unreachable, connect timeout */
    LG_ERR_RESET,    /* reset or closed with a request in flight */
    LG_ERR_TIMEOUT,  /* no complete response in time */
    LG_ERR_PROTOCOL, /* not HTTP/1.x as we read it */
    LG_ERR_STATUS,   /* a complete response whose status is not 2xx */
    LG_ERR_KINDS,
};

extern const char *const lg_err_names[LG_ERR_KINDS];

struct lg_load_config {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    const char *request; /* the whole request, sent as is on every request (copied) */
    size_t request_len;
    bool head;           /* HEAD: responses have no body */
    uint64_t rate_per_s; /* 0: max (closed loop) */
    int64_t duration_ns;
    int64_t timeout_ns;
    unsigned connections;
    unsigned threads;
};

struct lg_load_counts {
    uint64_t requests;            /* complete responses, any status */
    uint64_t errors;              /* all kinds */
    uint64_t error[LG_ERR_KINDS]; /* by kind */
    uint64_t sent;
    uint64_t backlog;    /* due but not yet sent (rate mode) */
    uint64_t reconnects; /* connections re-opened, for any reason */
    uint64_t unfinished; /* in flight when the run ended (after the drain) */
    uint64_t unsent;     /* due before the end but never sent */
};

struct lg_load;

struct lg_load *lg_load_new(const struct lg_load_config *config, char *err, size_t errlen);

/* Start the workers, let them connect, then start the clock. *start_ns is the run's time zero
 * (CLOCK_MONOTONIC). Returns 0 or -1 (err says why). */
int lg_load_start(struct lg_load *load, int64_t *start_ns, char *err, size_t errlen);

/* Ask the workers to end now (thread-safe, async-signal-safe); they notice within LG_TICK_NS. */
void lg_load_request_stop(struct lg_load *load);

/* Wait for the workers to end (at start + duration plus the drain, or after a stop request). */
void lg_load_join(struct lg_load *load);

/* Counters so far; when interval is not NULL, the latencies recorded since the last poll are
 * merged into it (and cleared in the workers). Safe while the workers run. */
void lg_load_poll(struct lg_load *load, int64_t now_ns, struct lg_load_counts *out,
                  struct lg_hist *interval);

/* After lg_load_join: final counters and the whole run's latencies merged into all. */
void lg_load_totals(struct lg_load *load, struct lg_load_counts *out, struct lg_hist *all);

void lg_load_free(struct lg_load *load);

/* Can we connect at all? A blocking connect with a timeout, for a clear error before a run. */
int lg_load_probe(const struct sockaddr *addr, socklen_t addr_len, int64_t timeout_ns, char *err,
                  size_t errlen);

#endif
