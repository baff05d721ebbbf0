/*
 * hprof_cpu_http: /debug/pprof/profile?seconds=N, Go's CPU profile endpoint, over the CPU engine
 * (collect/hprof_cpu.c): start, an evtimer on the request's event base, stop and encode, reply.
 * One profile at a time (the engine refuses a second with EBUSY, answered with Go's words). A
 * client that goes away stops the profile early and discards it. All allocations are inside
 * hprof_internal_enter/exit.
 */
#include "hprof_cpu.h"
#include "hprof_web.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- /debug/pprof/profile ---- */

/* A CPU profile being taken for one request: the timer that ends it and the watch on the
 * client's socket, both on the request's event base. */
struct cpu_request {
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    struct event *timer;
    struct event *watch; /* NULL when the socket cannot be watched */
};

static void cpu_request_free(struct cpu_request *cr)
{
    if (cr->timer != NULL)
        event_free(cr->timer);
    if (cr->watch != NULL)
        event_free(cr->watch);
    free(cr);
}

/* The duration has passed: stop, encode, reply. */
static void on_profile_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cpu_request *cr = arg;
    hprof_internal_enter();
    evhttp_connection_set_closecb(cr->conn, NULL, NULL);
    uint8_t *profile = NULL;
    size_t len = 0;
    if (hprof_cpu_stop(&profile, &len) != 0) {
        char msg[256];
        snprintf(msg, sizeof(msg), "Could not write CPU profile: %s", strerror(errno));
        hprof_web_error(cr->req, HTTP_INTERNAL, msg);
    } else {
        hprof_web_reply_profile(cr->req, "profile", profile, len); /* frees profile */
    }
    cpu_request_free(cr);
    hprof_internal_exit();
}

/* The connection is closing before the end (the client left, or the server is shutting
 * down): stop and discard. libevent frees the request. */
static void on_client_gone(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    struct cpu_request *cr = arg;
    hprof_internal_enter();
    (void)hprof_cpu_stop(NULL, NULL);
    cpu_request_free(cr);
    hprof_internal_exit();
}

/* libevent does not read a server connection while its request waits for a reply, so it would
 * notice a client that left only when the reply fails, N seconds later, and keep the profiler
 * busy meanwhile. We watch the socket ourselves and peek: EOF or an error means the client is
 * gone, and freeing the connection runs on_client_gone. Bytes (a pipelined request) are left
 * for libevent, and the watch ends: such a client is assumed to stay. */
static void on_client_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct cpu_request *cr = arg;
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n > 0) {
        event_del(cr->watch);
        return;
    }
    evhttp_connection_free(cr->conn); /* calls on_client_gone, which frees cr */
}

void hprof_cpu_http_serve(struct evhttp_request *req, void *arg)
{
    (void)arg;
    long seconds;
    if (hprof_web_seconds(req, &seconds) != 0)
        return; /* answered 400 */
    if (seconds == 0)
        seconds = HPROF_CPU_DEFAULT_SECONDS;
    hprof_internal_enter();
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct cpu_request *cr = calloc(1, sizeof(*cr));
    if (cr == NULL || conn == NULL ||
        (cr->timer = evtimer_new(evhttp_connection_get_base(conn), on_profile_done, cr)) == NULL) {
        hprof_web_error(req, HTTP_INTERNAL, "out of memory");
        goto fail;
    }
    cr->req = req;
    cr->conn = conn;
    if (hprof_cpu_start(HPROF_CPU_DEFAULT_HZ) != 0) {
        /* Go's words for a profile already running, so tools that parse them still do. */
        char msg[256];
        snprintf(msg, sizeof(msg), "Could not enable CPU profiling: %s",
                 errno == EBUSY ? "cpu profiling already in use" : strerror(errno));
        hprof_web_error(req, HTTP_INTERNAL, msg);
        goto fail;
    }
    struct timeval tv = {seconds, 0};
    if (evtimer_add(cr->timer, &tv) != 0) {
        (void)hprof_cpu_stop(NULL, NULL);
        hprof_web_error(req, HTTP_INTERNAL, "cannot arm the profile timer");
        goto fail;
    }
    evhttp_connection_set_closecb(conn, on_client_gone, cr);
    struct bufferevent *bev = evhttp_connection_get_bufferevent(conn);
    evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
    if (fd >= 0) {
        cr->watch = event_new(evhttp_connection_get_base(conn), fd, EV_READ | EV_PERSIST,
                              on_client_readable, cr);
        if (cr->watch != NULL && event_add(cr->watch, NULL) != 0) {
            event_free(cr->watch);
            cr->watch = NULL; /* unwatched: a client that leaves is noticed at the reply */
        }
    }
    hprof_internal_exit();
    return;
fail:
    if (cr != NULL)
        cpu_request_free(cr);
    hprof_internal_exit();
}
