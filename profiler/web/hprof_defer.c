/*
 * hprof_defer: a reply that waits N seconds on the request's event loop (the CPU profile and
 * the delta profiles), never with a sleep: an evtimer on the request's event base, and a watch
 * on the client's socket.
 *
 * libevent does not read a server connection while its request waits for a reply, so it would
 * notice a client that left only when the reply fails, N seconds later, and keep the profiler
 * busy meanwhile. The socket is watched and peeked: EOF or an error means the client is gone,
 * and freeing the connection runs its close callback. Bytes (a pipelined request) are left for
 * libevent, and the watch ends: such a client is assumed to stay.
 *
 * Invariant: once started, exactly one of done (the timer fired: reply to req) and gone (the
 * connection closed first: libevent frees the request; discard) runs, once, and the deferred
 * reply is freed after it; each path clears the other before running. All of it runs on the
 * one loop thread; every allocation is inside hprof_internal_enter/exit.
 */
#include "hprof_web.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "lc_util.h"

struct hprof_deferred {
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    struct event *timer;
    struct event *watch; /* NULL when the socket cannot be watched */
    hprof_deferred_fn done, gone;
    void *arg;
    int64_t due_ns; /* lc_monotonic_ns() before which done must not run */
};

void hprof_deferred_free(struct hprof_deferred *d)
{
    if (d == NULL)
        return;
    hprof_internal_enter();
    if (d->timer != NULL)
        event_free(d->timer);
    if (d->watch != NULL)
        event_free(d->watch);
    free(d);
    hprof_internal_exit();
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hprof_deferred *d = arg;
    /* libevent keeps time with CLOCK_MONOTONIC_COARSE and from the moment its loop woke, so a
     * timer can fire a few milliseconds before the seconds asked (a 1 s delta lasted 997 ms on a
     * busy machine): wait out the rest. */
    int64_t early_ns = d->due_ns - lc_monotonic_ns();
    if (early_ns > 0) {
        int64_t us = early_ns / 1000 + 1;
        struct timeval rest = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
        if (evtimer_add(d->timer, &rest) == 0)
            return;
    }
    hprof_internal_enter();
    evhttp_connection_set_closecb(d->conn, NULL, NULL);
    d->done(d->req, d->arg);
    hprof_deferred_free(d);
    hprof_internal_exit();
}

static void on_close(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    struct hprof_deferred *d = arg;
    hprof_internal_enter();
    d->gone(NULL, d->arg);
    hprof_deferred_free(d);
    hprof_internal_exit();
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct hprof_deferred *d = arg;
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n > 0) {
        event_del(d->watch);
        return;
    }
    evhttp_connection_free(d->conn); /* runs on_close, which frees d */
}

struct hprof_deferred *hprof_deferred_new(struct evhttp_request *req, hprof_deferred_fn done,
                                          hprof_deferred_fn gone, void *arg)
{
    hprof_internal_enter();
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct event_base *base = conn != NULL ? evhttp_connection_get_base(conn) : NULL;
    struct hprof_deferred *d = base != NULL ? calloc(1, sizeof(*d)) : NULL;
    if (d != NULL) {
        *d = (struct hprof_deferred){req, conn, NULL, NULL, done, gone, arg, 0};
        if ((d->timer = evtimer_new(base, on_timer, d)) == NULL) {
            free(d);
            d = NULL;
        }
    }
    hprof_internal_exit();
    if (d == NULL)
        errno = ENOMEM;
    return d;
}

int hprof_deferred_admit(int *waiting, int max, struct evhttp_request *req)
{
    if (__atomic_add_fetch(waiting, 1, __ATOMIC_RELAXED) <= max)
        return 0;
    hprof_deferred_leave(waiting);
    char msg[128];
    snprintf(msg, sizeof(msg), "too many delta profiles in progress (at most %d at once)", max);
    hprof_web_error(req, HTTP_SERVUNAVAIL, msg);
    return -1;
}

void hprof_deferred_leave(int *waiting)
{
    __atomic_fetch_sub(waiting, 1, __ATOMIC_RELAXED);
}

int hprof_deferred_start(struct hprof_deferred *d, long seconds)
{
    struct timeval tv = {seconds, 0};
    d->due_ns = lc_monotonic_ns() + (int64_t)seconds * LC_NS_PER_SEC;
    if (evtimer_add(d->timer, &tv) != 0)
        return -1;
    hprof_internal_enter();
    evhttp_connection_set_closecb(d->conn, on_close, d);
    struct bufferevent *bev = evhttp_connection_get_bufferevent(d->conn);
    evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
    if (fd >= 0) {
        d->watch = event_new(evhttp_connection_get_base(d->conn), fd, EV_READ | EV_PERSIST,
                             on_readable, d);
        if (d->watch != NULL && event_add(d->watch, NULL) != 0) {
            event_free(d->watch);
            d->watch = NULL; /* unwatched: a client that leaves is noticed at the reply */
        }
    }
    hprof_internal_exit();
    return 0;
}
