/*
 * svc: the shared /process service (see svc.h for the thread model).
 *
 * Invariants:
 *  - A request id is unique per process (one atomic counter), so store_put never sees a
 *    duplicate from us.
 *  - Each worker owns its event_base, evhttp, listening socket and metadata scratch buffer; no
 *    lock is taken on the request path except the store's own.
 *  - Nothing a client sends can stop the process: bad methods, paths, sizes and framing get a
 *    status and a one-line text/plain message; limits are enforced by evhttp before our
 *    callback runs, framing and methods by lc_http_refuse first thing in it. Out of memory and
 *    out of file descriptors, lc_http's listener refuses (503) or pauses rather than crash or
 *    spin, and the header deadline (--header-timeout) bounds a slow client's hold.
 *  - Shutdown: SIGINT/SIGTERM break the main loop, every worker loop is told to exit and joined,
 *    then the listeners and the store are freed. Exit status 0.
 */
#include "svc.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <event2/util.h>

#include "lc_http.h"
#include "lc_util.h"
#include "lc_version.h"

#define SVC_LISTEN_BACKLOG 1024 /* connections waiting for accept, per socket */

struct svc;

struct svc_worker {
    struct svc *svc;
    pthread_t thread;
    bool running;
    struct event_base *base;
    struct lc_http_server *server;
    char *meta; /* scratch: one entry's metadata is formatted here, then copied by the store */
};

struct svc {
    const struct svc_config *cfg;
    struct store *store;
    atomic_uint_fast64_t last_id;
    struct event_base *base; /* main thread: debug listener and signals */
    struct lc_http_server *debug_server;
    int n_workers;
    struct svc_worker *workers;
    uint16_t process_port, debug_port; /* as bound: port 0 resolved */
};

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *fmt,
                       ...)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type", "text/plain; charset=utf-8");
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(evhttp_request_get_output_buffer(req), fmt, ap);
    va_end(ap);
    lc_http_send(req, code, reason, NULL); /* HEAD: the length, no body */
}

static const char *method_name(enum evhttp_cmd_type method)
{
    switch (method) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    default:
        return "OTHER";
    }
}

static const char *header_or_dash(struct evkeyvalq *headers, const char *name)
{
    const char *value = evhttp_find_header(headers, name);
    return value != NULL ? value : "-";
}

/* Format this request's metadata into w->meta, padded (or cut) to exactly entry_bytes. This is
 * what a real service might keep per request for auditing or deduplication. */
static size_t format_meta(struct svc_worker *w, struct evhttp_request *req, uint64_t id)
{
    size_t size = w->svc->cfg->entry_bytes;
    struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
    char *peer = NULL;
    ev_uint16_t peer_port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer, &peer_port);
    int n =
        snprintf(w->meta, size + 1,
                 "id=%llu time_ns=%lld peer=%s:%u method=%s uri=%s host=%s user_agent=%s "
                 "content_length=%zu\n",
                 (unsigned long long)id, (long long)lc_realtime_ns(), peer ? peer : "-", peer_port,
                 method_name(evhttp_request_get_command(req)), evhttp_request_get_uri(req),
                 header_or_dash(headers, "Host"), header_or_dash(headers, "User-Agent"),
                 evbuffer_get_length(evhttp_request_get_input_buffer(req)));
    size_t used = n < 0 ? 0 : (size_t)n > size ? size : (size_t)n;
    memset(w->meta + used, '.', size - used);
    return size;
}

static void handle_process(struct evhttp_request *req, void *arg)
{
    struct svc_worker *w = arg;
    /* Framing errors 400, other methods (HEAD included: it would store an entry) 405. */
    if (lc_http_refuse(req, LC_HTTP_GET | LC_HTTP_POST))
        return;
    uint64_t id = atomic_fetch_add(&w->svc->last_id, 1) + 1;
    size_t len = format_meta(w, req, id);
    if (store_put(w->svc->store, id, w->meta, len, lc_monotonic_ns()) != 0) {
        reply_text(req, 503, "Service Unavailable", "cannot store request %llu: %s\n",
                   (unsigned long long)id, strerror(errno));
        return;
    }
    reply_text(req, 200, "OK", "processed request %llu\n", (unsigned long long)id);
}

static void handle_not_found(struct evhttp_request *req, void *arg)
{
    (void)arg;
    if (lc_http_refuse(req, LC_HTTP_ANY))
        return;
    reply_text(req, 404, "Not Found", "not found: %s\n", evhttp_request_get_uri(req));
}

/* Bind and listen on host:port. With reuse_port, several sockets can share the address (one per
 * worker). Returns the fd, or -1 with a message in err. */
static evutil_socket_t listen_on(const char *host, uint16_t port, bool reuse_port, char *err,
                                 size_t errlen)
{
    char service[8];
    snprintf(service, sizeof(service), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *addrs = NULL;
    int rc = getaddrinfo(host, service, &hints, &addrs);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    evutil_socket_t fd = -1;
    int saved_errno = 0;
    for (struct addrinfo *ai = addrs; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            saved_errno = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if ((reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SVC_LISTEN_BACKLOG) != 0) {
            saved_errno = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(addrs);
    if (fd < 0)
        snprintf(err, errlen, "cannot listen on %s:%u: %s", host, port, strerror(saved_errno));
    return fd;
}

static uint16_t bound_port(evutil_socket_t fd)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
        return 0;
    if (addr.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    return ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

static void print_listening(const char *what, const char *host, uint16_t port)
{
    bool v6 = strchr(host, ':') != NULL;
    printf("listening %s http://%s%s%s:%u\n", what, v6 ? "[" : "", host, v6 ? "]" : "", port);
}

/* A hardened evhttp (lc_http) on an open listening socket, with the service's limits. */
static struct lc_http_server *new_server(struct event_base *base, evutil_socket_t fd,
                                         const struct svc_config *cfg, const char *what, char *err,
                                         size_t errlen)
{
    char name[64];
    snprintf(name, sizeof(name), "%s: %s", store_flavor, what);
    struct lc_http_options opt = {.name = name,
                                  .header_timeout_ns = cfg->header_timeout_ns,
                                  .idle_timeout_ns = cfg->idle_timeout_ns,
                                  .max_body_bytes = SVC_MAX_BODY_BYTES,
                                  .max_headers_bytes = SVC_MAX_HEADERS_BYTES};
    struct lc_http_server *server = lc_http_server_new(base, fd, &opt, err, errlen);
    if (server != NULL)
        evhttp_set_gencb(lc_http_server_evhttp(server), handle_not_found, NULL);
    return server;
}

/* Open the /process listeners: one socket per worker on the same address. A first probe without
 * SO_REUSEPORT makes "port in use" an error even when the other owner also uses SO_REUSEPORT
 * (otherwise the kernel would quietly split traffic with it), and resolves port 0. */
static int open_workers(struct svc *svc, char *err, size_t errlen)
{
    const struct svc_config *cfg = svc->cfg;
    evutil_socket_t probe = listen_on(cfg->listen_host, cfg->listen_port, false, err, errlen);
    if (probe < 0)
        return -1;
    uint16_t port = bound_port(probe);
    close(probe);
    for (int i = 0; i < svc->n_workers; i++) {
        struct svc_worker *w = &svc->workers[i];
        w->svc = svc;
        w->meta = malloc(cfg->entry_bytes + 1);
        w->base = event_base_new();
        if (w->meta == NULL || w->base == NULL) {
            snprintf(err, errlen, "out of memory setting up worker %d", i);
            return -1;
        }
        evutil_socket_t fd = listen_on(cfg->listen_host, port, true, err, errlen);
        if (fd < 0)
            return -1;
        w->server = new_server(w->base, fd, cfg, "/process", err, errlen);
        if (w->server == NULL)
            return -1;
        evhttp_set_cb(lc_http_server_evhttp(w->server), "/process", handle_process, w);
    }
    svc->process_port = port;
    return 0;
}

static int open_debug(struct svc *svc, char *err, size_t errlen)
{
    const struct svc_config *cfg = svc->cfg;
    evutil_socket_t fd = listen_on(cfg->debug_host, cfg->debug_port, false, err, errlen);
    if (fd < 0)
        return -1;
    svc->debug_port = bound_port(fd);
    svc->debug_server = new_server(svc->base, fd, cfg, "/debug", err, errlen);
    if (svc->debug_server == NULL)
        return -1;
    if (svc_debug_mount(lc_http_server_evhttp(svc->debug_server), svc->store) != 0) {
        snprintf(err, errlen, "cannot mount the profiler's endpoints on the debug listener");
        return -1;
    }
    return 0;
}

static void *worker_main(void *arg)
{
    struct svc_worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

static void on_stop_signal(evutil_socket_t sig, short events, void *arg)
{
    (void)sig;
    (void)events;
    event_base_loopbreak(arg);
}

/* Start the workers with SIGINT/SIGTERM blocked, so those signals reach the main thread. */
static int start_workers(struct svc *svc, char *err, size_t errlen)
{
    sigset_t stop_signals, old;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old);
    int rc = 0;
    for (int i = 0; i < svc->n_workers && rc == 0; i++) {
        struct svc_worker *w = &svc->workers[i];
        rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc == 0) {
            w->running = true;
            char name[16];
            snprintf(name, sizeof(name), "svc-worker-%u", (unsigned)i & 0xfffu);
            pthread_setname_np(w->thread, name);
        } else {
            snprintf(err, errlen, "cannot start worker thread: %s", strerror(rc));
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc == 0 ? 0 : -1;
}

static void stop_and_free(struct svc *svc)
{
    for (int i = 0; svc->workers != NULL && i < svc->n_workers; i++) {
        struct svc_worker *w = &svc->workers[i];
        if (w->running) {
            event_base_loopexit(w->base, NULL);
            pthread_join(w->thread, NULL);
        }
        lc_http_server_free(w->server);
        if (w->base != NULL)
            event_base_free(w->base);
        free(w->meta);
    }
    free(svc->workers);
    lc_http_server_free(svc->debug_server);
}

int svc_run(const struct svc_config *cfg)
{
    char err[512] = "";
    struct svc svc = {.cfg = cfg, .n_workers = cfg->threads};
    struct event *stop_events[2] = {NULL, NULL};
    int status = -1;

    signal(SIGPIPE, SIG_IGN); /* a client that hangs up mid-reply is an error, not a death */
    if (evthread_use_pthreads() != 0) {
        snprintf(err, sizeof(err), "libevent has no pthreads support");
        goto out;
    }
    svc.store = store_new(&cfg->store);
    if (svc.store == NULL) {
        snprintf(err, sizeof(err), "cannot create the store: %s", strerror(errno));
        goto out;
    }
    svc.base = event_base_new();
    svc.workers = calloc((size_t)cfg->threads, sizeof(*svc.workers));
    if (svc.base == NULL || svc.workers == NULL) {
        snprintf(err, sizeof(err), "out of memory at start");
        goto out;
    }
    if (open_workers(&svc, err, sizeof(err)) != 0 || open_debug(&svc, err, sizeof(err)) != 0)
        goto out;
    print_listening("/process", cfg->listen_host, svc.process_port);
    print_listening("/debug", cfg->debug_host, svc.debug_port);
    fflush(stdout);

    stop_events[0] = evsignal_new(svc.base, SIGINT, on_stop_signal, svc.base);
    stop_events[1] = evsignal_new(svc.base, SIGTERM, on_stop_signal, svc.base);
    if (stop_events[0] == NULL || stop_events[1] == NULL || evsignal_add(stop_events[0], NULL) ||
        evsignal_add(stop_events[1], NULL)) {
        snprintf(err, sizeof(err), "cannot install signal handlers");
        goto out;
    }
    if (start_workers(&svc, err, sizeof(err)) != 0)
        goto out;

    event_base_dispatch(svc.base);
    status = 0;
out:
    stop_and_free(&svc);
    for (int i = 0; i < 2; i++)
        if (stop_events[i] != NULL)
            event_free(stop_events[i]);
    if (svc.base != NULL)
        event_base_free(svc.base);
    if (svc.store != NULL) {
        struct store_stats stats;
        store_get_stats(svc.store, &stats);
        if (status == 0)
            fprintf(stderr,
                    "%s: stopped after %llu requests; the store held %llu entries (%llu bytes)\n",
                    store_flavor, (unsigned long long)atomic_load(&svc.last_id),
                    (unsigned long long)stats.entries, (unsigned long long)stats.bytes);
        svc_debug_unmount(svc.store);
        store_free(svc.store);
    }
    if (status != 0)
        fprintf(stderr, "%s: %s\n", store_flavor, err);
    return status;
}

int svc_main(int argc, char **argv)
{
    struct svc_config cfg;
    char err[512];
    switch (svc_parse_args(argc, argv, &cfg, err, sizeof(err))) {
    case SVC_PARSE_HELP:
        svc_usage(stdout, store_flavor);
        return 0;
    case SVC_PARSE_VERSION:
        printf(LC_VERSION_LINE_FMT, store_flavor);
        return 0;
    case SVC_PARSE_ERROR:
        fprintf(stderr, "%s: %s\n", store_flavor, err);
        svc_usage(stderr, store_flavor);
        return 2;
    case SVC_PARSE_OK:
        break;
    }
    return svc_run(&cfg) == 0 ? 0 : 1;
}
