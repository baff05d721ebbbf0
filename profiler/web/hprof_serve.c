/*
 * hprof_serve: the debug surface for programs that did not ask for it (LD_PRELOAD), and a
 * signal to dump a profile now.
 *
 * HEAPPROF_HTTP=HOST:PORT: a constructor binds HOST:PORT (port 0 picks a free one), prints
 * "heapprof[PID COMM]: listening /debug http://HOST:PORT" on stderr, and starts a thread
 * ("hprof-http") with an event base and an evhttp of its own on which hprof_http_mount serves every
 * endpoint. The whole thread runs inside hprof_internal_enter: libevent's allocations for its
 * connections are the profiler's overhead, not the program's heap. It blocks every signal but
 * SIGURG (so the program's handlers run on the program's threads, and the threads profile still
 * sees it). A bind failure prints a warning and the program carries on without the endpoints.
 * At exit, an eventfd tells the loop to stop and the thread is joined (a request being served
 * is finished first). The constructor runs at load, never inside malloc; libevent is used
 * without its threading hooks (nothing crosses threads but the eventfd).
 *
 * SIGUSR2 with HEAPPROF_FILE: the handler writes one byte to a non-blocking pipe and returns
 * (async-signal-safe; it never allocates); a thread ("hprof-usr2", every signal blocked) reads
 * the pipe and writes the next PREFIX.NNNN.pb.gz through hprof_file.c's numbering. Signals that
 * arrive during a dump are coalesced into one more dump. Installed only when the program has no
 * SIGUSR2 disposition of its own at start; a handler the program installs later replaces ours.
 *
 * A fork child has neither thread: its exit handler does nothing.
 */
#include "hprof_web.h"
#include "hprof_env.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "lc_http.h"
#include "lc_util.h"

#define HPROF_HOST_MAX     256         /* bytes of HOST in HEAPPROF_HTTP */
#define HPROF_MAX_BODY     (1u << 20)  /* bytes: a larger request body (symbol POST) gets 413 */
#define HPROF_MAX_HEADERS  (16u << 10) /* bytes of request headers */
#define HPROF_IDLE_SECONDS 30          /* an idle connection is closed after this long */

static struct {
    pid_t pid;
    pthread_t thread;
    bool running;
    int stop_fd; /* eventfd: written at exit */
    struct event_base *base;
    struct lc_http_server *server;
    struct evhttp *http; /* the server's */
    struct event *stop_event;
} srv = {.stop_fd = -1};

static struct {
    int pipe[2];
    pthread_t thread;
} usr2 = {{-1, -1}, 0};

/* ---- HEAPPROF_HTTP ---- */

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void *serve_main(void *arg)
{
    (void)arg;
    hprof_internal_enter(); /* for the thread's whole life: all of it is the profiler's */
    event_base_dispatch(srv.base);
    hprof_internal_exit();
    return NULL;
}

static void stop_server(void)
{
    if (!srv.running || getpid() != srv.pid)
        return; /* never started, or a fork child (which has no such thread) */
    uint64_t one = 1;
    (void)!write(srv.stop_fd, &one, sizeof(one));
    pthread_join(srv.thread, NULL);
    srv.running = false;
}

/* A listening socket on host:port (non-blocking, close-on-exec), or -1 with a message. */
static evutil_socket_t listen_socket(const char *host, uint16_t port, char *err, size_t errlen)
{
    char service[8];
    snprintf(service, sizeof(service), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *addrs = NULL;
    int rc = getaddrinfo(host, service, &hints, &addrs);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve '%.200s': %s", host, gai_strerror(rc));
        return -1;
    }
    evutil_socket_t fd = -1;
    int saved = 0;
    for (struct addrinfo *ai = addrs; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
            saved = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(addrs);
    if (fd < 0)
        snprintf(err, errlen, "cannot listen on %.200s:%u: %s", host, port, strerror(saved));
    return fd;
}

static void start_server(const char *spec)
{
    char host[HPROF_HOST_MAX];
    uint16_t port;
    if (lc_parse_hostport(spec, host, sizeof(host), &port) != 0) {
        hprof_log("HEAPPROF_HTTP=%s is not HOST:PORT (e.g. 127.0.0.1:6060): the debug "
                  "endpoints are off\n",
                  spec);
        return;
    }
    hprof_internal_enter();
    srv.base = event_base_new();
    srv.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (srv.base == NULL || srv.stop_fd < 0) {
        hprof_log("HEAPPROF_HTTP: cannot set up the debug listener: %s\n", strerror(errno));
        goto fail;
    }
    /* lc_http's server, as the services' listeners: no crash out of memory, a paced retry at
     * the fd limit, the header deadline. */
    char err[512];
    evutil_socket_t lfd = listen_socket(host, port, err, sizeof(err));
    if (lfd < 0) {
        hprof_log("HEAPPROF_HTTP: %s; the debug endpoints are off\n", err);
        goto fail;
    }
    char name[96]; /* lc_http's messages then read "heapprof[PID COMM]: /debug: ..." */
    hprof_log_tag(name, sizeof(name) - 8);
    strcat(name, ": /debug");
    struct lc_http_options opt = {.name = name,
                                  .header_timeout_ns = LC_HTTP_DEFAULT_HEADER_TIMEOUT_NS,
                                  .idle_timeout_ns = HPROF_IDLE_SECONDS * LC_NS_PER_SEC,
                                  .max_body_bytes = HPROF_MAX_BODY,
                                  .max_headers_bytes = HPROF_MAX_HEADERS};
    srv.server = lc_http_server_new(srv.base, lfd, &opt, err, sizeof(err));
    if (srv.server == NULL) {
        hprof_log("HEAPPROF_HTTP: %s\n", err);
        goto fail;
    }
    srv.http = lc_http_server_evhttp(srv.server);
    if (hprof_http_mount(srv.http) != 0) {
        hprof_log("HEAPPROF_HTTP: cannot mount the debug endpoints\n");
        goto fail;
    }
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    if (getsockname(lfd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                                : ((struct sockaddr_in *)&addr)->sin_port);
    srv.stop_event = event_new(srv.base, srv.stop_fd, EV_READ, on_stop, srv.base);
    if (srv.stop_event == NULL || event_add(srv.stop_event, NULL) != 0) {
        hprof_log("HEAPPROF_HTTP: cannot set up the debug listener\n");
        goto fail;
    }
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGURG); /* the threads profile interrupts this thread too */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    srv.pid = getpid();
    int rc = pthread_create(&srv.thread, NULL, serve_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        hprof_log("HEAPPROF_HTTP: cannot start its thread: %s\n", strerror(rc));
        goto fail;
    }
    pthread_setname_np(srv.thread, "hprof-http");
    srv.running = true;
    atexit(stop_server);
    bool v6 = strchr(host, ':') != NULL;
    hprof_log("listening /debug http://%s%s%s:%u\n", v6 ? "[" : "", host, v6 ? "]" : "", port);
    hprof_internal_exit();
    return;
fail:
    if (srv.stop_event != NULL)
        event_free(srv.stop_event);
    lc_http_server_free(srv.server);
    if (srv.base != NULL)
        event_base_free(srv.base);
    if (srv.stop_fd >= 0)
        close(srv.stop_fd);
    memset(&srv, 0, sizeof(srv));
    srv.stop_fd = -1;
    hprof_internal_exit();
}

/* ---- SIGUSR2 ---- */

static void on_usr2(int sig)
{
    (void)sig;
    int saved = errno;
    (void)!write(usr2.pipe[1], "d", 1); /* non-blocking: a full pipe already means "dump" */
    errno = saved;
}

static void *usr2_main(void *arg)
{
    (void)arg;
    char buf[64];
    for (;;) {
        ssize_t n = read(usr2.pipe[0], buf, sizeof(buf)); /* several signals: one dump */
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return NULL;
        (void)hprof_file_dump_now(); /* reports its own failures, once */
    }
}

static void start_usr2(void)
{
    struct sigaction old;
    if (sigaction(SIGUSR2, NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO) ||
        old.sa_handler != SIG_DFL)
        return; /* the program's own */
    hprof_internal_enter();
    if (pipe2(usr2.pipe, O_CLOEXEC) != 0)
        goto out;
    (void)fcntl(usr2.pipe[1], F_SETFL, O_NONBLOCK);
    sigset_t all, old_mask;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old_mask);
    int rc = pthread_create(&usr2.thread, NULL, usr2_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (rc != 0) {
        hprof_log("cannot start the SIGUSR2 thread: %s\n", strerror(rc));
        close(usr2.pipe[0]);
        close(usr2.pipe[1]);
        goto out;
    }
    pthread_setname_np(usr2.thread, "hprof-usr2");
    pthread_detach(usr2.thread);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr2;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
out:
    hprof_internal_exit();
}

/* Referenced at link time (-u hprof_serve_anchor, see profiler/CMakeLists.txt) so that a static
 * link of libheapprof.a keeps this file and its constructor. */
const char hprof_serve_anchor[] = "HEAPPROF_HTTP";

__attribute__((constructor)) static void hprof_serve_init(void)
{
    const char *file = hprof_env_get("HEAPPROF_FILE");
    if (file != NULL && *file != '\0')
        start_usr2();
    const char *spec = hprof_env_get("HEAPPROF_HTTP");
    if (spec != NULL && *spec != '\0')
        start_server(spec);
}
