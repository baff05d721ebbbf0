/*
 * lc_http: the hardened evhttp server and the request gate (see lc_http.h for the model).
 *
 * Invariants:
 *  - While the listener is enabled, server->spare holds a bufferevent: evhttp's bufferevent
 *    callback (on_new_bev) never returns NULL, so libevent's crashing allocation path is never
 *    taken. When the next spare cannot be made, the listener is disabled before on_new_bev
 *    returns (libevent's accept loop checks for that after each connection).
 *  - Short of memory: the emergency reserve is freed, the refuser event answers new connections
 *    503 on the listening socket without allocating, and the retry timer runs with backoff.
 *  - A connection is in the thread's table only between the first byte of a request and the
 *    first byte of its reply, and holds a bufferevent reference while it is: the bufferevent is
 *    never freed under the table. The timer drops entries whose bufferevent evhttp has freed
 *    (callbacks cleared), and shuts down the socket of those whose request is late while evhttp
 *    is still reading it; evhttp then sees the end of the stream and frees the connection.
 */
#include "lc_http.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <uthash.h>

#include "lc_util.h"

/* libevent 2.1 gives methods it does not know the type 1 << 15 (EVHTTP_REQ_UNKNOWN_, internal);
 * allowing every bit lets them reach our handlers, which answer 405 instead of evhttp's 501. */
#define ALL_METHODS 0xffffu

#define REFUSE_BATCH 64 /* connections answered 503 per wake-up */
#define TICK_MIN_NS  (50 * LC_NS_PER_MS)
#define TICK_MAX_NS  (1000 * LC_NS_PER_MS)

struct inflight {
    struct bufferevent *bev; /* key; referenced while in the table */
    int64_t start_ns;        /* first byte of the request */
    UT_hash_handle hh;
};

struct table {
    struct inflight *entries;
    int64_t header_timeout_ns;
};

struct lc_http_server {
    struct event_base *base;
    struct evhttp *http;
    struct evconnlistener *listener;
    evutil_socket_t listen_fd;
    char name[96];
    struct event *retry;   /* backoff timer: re-enable the listener, or retry memory */
    struct event *refuser; /* short of memory: 503 on the listening socket */
    struct event *tick;    /* header deadlines */
    struct bufferevent *spare;
    void *reserve;
    bool short_of_memory;
    bool paused;
    bool listener_bound;
    int64_t backoff_ns;
    int64_t last_log_ns;
    uint64_t suppressed;
    struct table table;
    struct lc_http_counters counters;
    struct lc_http_server *next; /* registry */
};

static __thread struct table *thread_table;

/* evconnlistener calls its error callback with evhttp's argument (the evhttp): this registry
 * finds our server from it. Touched at creation, free and on accept errors only. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lc_http_server *registry;

static const char refuse_reply[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                   "Content-Type: text/plain; charset=utf-8\r\n"
                                   "Content-Length: 49\r\n"
                                   "Retry-After: 1\r\n"
                                   "Connection: close\r\n"
                                   "\r\n"
                                   "server out of memory: try again in a few seconds\n";

__attribute__((format(printf, 2, 3))) static void server_log(struct lc_http_server *s,
                                                             const char *fmt, ...)
{
    int64_t now = lc_monotonic_ns();
    if (s->last_log_ns != 0 && now - s->last_log_ns < LC_HTTP_LOG_EVERY_NS) {
        s->suppressed++;
        return;
    }
    char line[512];
    int n = snprintf(line, sizeof(line), "%s: ", s->name);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (s->suppressed > 0 && (size_t)n < sizeof(line))
        n += snprintf(line + n, sizeof(line) - (size_t)n,
                      " (%llu similar events in the last %lld s not logged)",
                      (unsigned long long)s->suppressed,
                      (long long)(LC_HTTP_LOG_EVERY_NS / LC_NS_PER_SEC));
    if ((size_t)n >= sizeof(line) - 1)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, line, (size_t)n);
    s->last_log_ns = now;
    s->suppressed = 0;
}

/* ---- requests in progress and the header deadline ---- */

static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    struct table *t = thread_table;
    if (info->n_added == 0 || t == NULL || t->header_timeout_ns <= 0)
        return;
    struct bufferevent *bev = arg;
    struct inflight *e;
    HASH_FIND_PTR(t->entries, &bev, e);
    if (e != NULL)
        return; /* more of the same request */
    e = malloc(sizeof(*e));
    if (e == NULL)
        return; /* out of memory: this request has no deadline, the idle timeout still holds */
    e->bev = bev;
    e->start_ns = lc_monotonic_ns();
    bufferevent_incref(bev);
    HASH_ADD_PTR(t->entries, bev, e);
}

static void on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    struct table *t = thread_table;
    if (info->n_added == 0 || t == NULL || t->entries == NULL)
        return;
    struct bufferevent *bev = arg;
    struct inflight *e;
    HASH_FIND_PTR(t->entries, &bev, e);
    if (e == NULL)
        return;
    HASH_DEL(t->entries, e);
    free(e);
    bufferevent_decref(bev); /* evhttp holds its own reference while it writes */
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lc_http_server *s = arg;
    struct table *t = &s->table;
    int64_t now = lc_monotonic_ns();
    struct inflight *e, *tmp;
    HASH_ITER(hh, t->entries, e, tmp)
    {
        bufferevent_data_cb readcb = NULL;
        bufferevent_getcb(e->bev, &readcb, NULL, NULL, NULL);
        bool freed = readcb == NULL; /* evhttp let go of it */
        bool late = !freed && (bufferevent_get_enabled(e->bev) & EV_READ) != 0 &&
                    now - e->start_ns > t->header_timeout_ns;
        if (!freed && !late)
            continue;
        if (late) {
            evutil_socket_t cfd = bufferevent_getfd(e->bev);
            if (cfd >= 0)
                shutdown(cfd, SHUT_RDWR); /* evhttp reads the end of the stream and frees it */
            s->counters.header_timeouts++;
        }
        HASH_DEL(t->entries, e);
        bufferevent_decref(e->bev);
        free(e);
    }
}

/* ---- memory: the spare bufferevent and the reserve ---- */

static struct bufferevent *new_spare(struct lc_http_server *s)
{
    struct bufferevent *bev = bufferevent_socket_new(s->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        return NULL;
    if (evbuffer_add_cb(bufferevent_get_input(bev), on_input, bev) == NULL ||
        evbuffer_add_cb(bufferevent_get_output(bev), on_output, bev) == NULL) {
        bufferevent_free(bev);
        return NULL;
    }
    return bev;
}

/* Make what a next connection needs. Returns false when memory is short. */
static bool refill(struct lc_http_server *s)
{
    if (s->spare == NULL)
        s->spare = new_spare(s);
    if (s->reserve == NULL)
        s->reserve = malloc(LC_HTTP_RESERVE_BYTES);
    if (s->spare != NULL && s->reserve != NULL)
        return true;
    free(s->reserve); /* room for what is in flight: the connection in hand, replies */
    s->reserve = NULL;
    return false;
}

static void arm_retry(struct lc_http_server *s)
{
    s->backoff_ns = s->backoff_ns == 0                           ? LC_HTTP_BACKOFF_MIN_NS
                    : s->backoff_ns * 2 > LC_HTTP_BACKOFF_MAX_NS ? LC_HTTP_BACKOFF_MAX_NS
                                                                 : s->backoff_ns * 2;
    struct timeval tv = {.tv_sec = s->backoff_ns / LC_NS_PER_SEC,
                         .tv_usec = (s->backoff_ns % LC_NS_PER_SEC) / LC_NS_PER_USEC};
    evtimer_add(s->retry, &tv);
}

static void enter_short(struct lc_http_server *s)
{
    s->counters.memory_shortages++;
    if (!s->short_of_memory) {
        s->short_of_memory = true;
        evconnlistener_disable(s->listener);
        event_add(s->refuser, NULL);
        server_log(s, "out of memory: new connections get 503 until memory is available");
    }
    if (!evtimer_pending(s->retry, NULL))
        arm_retry(s);
}

/* evhttp's bufferevent callback: hand over the spare, make the next one. */
static struct bufferevent *on_new_bev(struct event_base *base, void *arg)
{
    (void)base;
    struct lc_http_server *s = arg;
    if (thread_table == NULL)
        thread_table = &s->table;
    struct bufferevent *bev = s->spare;
    s->spare = NULL;
    s->backoff_ns = 0; /* an accept worked */
    if (!refill(s))
        enter_short(s);
    if (bev == NULL)
        bev = new_spare(s); /* not reached while the invariant holds; never NULL if it can help */
    return bev;
}

/* Short of memory: accept, answer 503 from a static buffer, close. No allocation. */
static void on_refuse(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    struct lc_http_server *s = arg;
    for (int i = 0; i < REFUSE_BATCH; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
                return;
            s->counters.accept_errors++;
            event_del(s->refuser); /* the retry timer adds it back */
            if (!evtimer_pending(s->retry, NULL))
                arm_retry(s);
            server_log(s, "accept: %s: pausing", strerror(errno));
            return;
        }
        char discard[2048];
        (void)!read(fd, discard,
                    sizeof(discard)); /* unread request bytes would turn close into RST */
        (void)!write(fd, refuse_reply, sizeof(refuse_reply) - 1);
        shutdown(fd, SHUT_WR);
        close(fd);
        s->counters.refused_503++;
    }
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lc_http_server *s = arg;
    if (!refill(s)) {
        s->counters.memory_shortages++;
        if (!s->short_of_memory) {
            enter_short(s);
            return;
        }
        if (!event_pending(s->refuser, EV_READ, NULL))
            event_add(s->refuser, NULL);
        arm_retry(s);
        return;
    }
    if (s->short_of_memory) {
        s->short_of_memory = false;
        event_del(s->refuser);
        server_log(s, "memory available again: accepting connections");
    }
    s->paused = false;
    evconnlistener_enable(s->listener); /* an accept error pauses it again, with a longer delay */
}

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    (void)lev;
    int err = EVUTIL_SOCKET_ERROR();
    struct lc_http_server *s = NULL;
    pthread_mutex_lock(&registry_lock);
    for (s = registry; s != NULL && s->http != arg; s = s->next)
        ;
    pthread_mutex_unlock(&registry_lock);
    if (s == NULL)
        return;
    s->counters.accept_errors++;
    evconnlistener_disable(s->listener);
    s->paused = true;
    arm_retry(s);
    server_log(s, "accept: %s: pausing new connections (retry in %lld ms, doubling to %lld ms)",
               evutil_socket_error_to_string(err), (long long)(s->backoff_ns / LC_NS_PER_MS),
               (long long)(LC_HTTP_BACKOFF_MAX_NS / LC_NS_PER_MS));
}

/* ---- the server ---- */

struct lc_http_server *lc_http_server_new(struct event_base *base, evutil_socket_t listen_fd,
                                          const struct lc_http_options *opt, char *err,
                                          size_t errlen)
{
    struct lc_http_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        evutil_closesocket(listen_fd);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base = base;
    s->listen_fd = listen_fd;
    snprintf(s->name, sizeof(s->name), "%s", opt->name ? opt->name : "http");
    s->table.header_timeout_ns = opt->header_timeout_ns;
    s->http = evhttp_new(base);
    s->listener =
        evconnlistener_new(base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                           0 /* already listening: 0 = leave the backlog alone */, listen_fd);
    if (s->listener == NULL)
        evutil_closesocket(listen_fd);
    s->retry = evtimer_new(base, on_retry, s);
    s->refuser = event_new(base, listen_fd, EV_READ | EV_PERSIST, on_refuse, s);
    s->tick = event_new(base, -1, EV_PERSIST, on_tick, s);
    if (s->http == NULL || s->listener == NULL || s->retry == NULL || s->refuser == NULL ||
        s->tick == NULL || !refill(s)) {
        snprintf(err, errlen, "%s: out of memory setting up the listener", s->name);
        goto fail;
    }
    if (opt->max_body_bytes > 0)
        evhttp_set_max_body_size(s->http, (ev_ssize_t)opt->max_body_bytes);
    if (opt->max_headers_bytes > 0)
        evhttp_set_max_headers_size(s->http, (ev_ssize_t)opt->max_headers_bytes);
    if (opt->idle_timeout_ns > 0) {
        struct timeval idle = {.tv_sec = opt->idle_timeout_ns / LC_NS_PER_SEC,
                               .tv_usec = (opt->idle_timeout_ns % LC_NS_PER_SEC) / LC_NS_PER_USEC};
        evhttp_set_timeout_tv(s->http, &idle);
    }
    evhttp_set_allowed_methods(s->http, ALL_METHODS);
    evhttp_set_bevcb(s->http, on_new_bev, s);
    if (evhttp_bind_listener(s->http, s->listener) == NULL) {
        snprintf(err, errlen, "%s: cannot accept on the listening socket", s->name);
        goto fail;
    }
    s->listener_bound = true; /* evhttp frees it (and closes the socket) in evhttp_free */
    evconnlistener_set_error_cb(s->listener, on_accept_error);
    if (opt->header_timeout_ns > 0) {
        int64_t every = opt->header_timeout_ns / 4;
        every = every < TICK_MIN_NS ? TICK_MIN_NS : every > TICK_MAX_NS ? TICK_MAX_NS : every;
        struct timeval tv = {.tv_sec = every / LC_NS_PER_SEC,
                             .tv_usec = (every % LC_NS_PER_SEC) / LC_NS_PER_USEC};
        event_add(s->tick, &tv);
    }
    pthread_mutex_lock(&registry_lock);
    s->next = registry;
    registry = s;
    pthread_mutex_unlock(&registry_lock);
    return s;
fail:
    lc_http_server_free(s);
    return NULL;
}

struct evhttp *lc_http_server_evhttp(struct lc_http_server *server)
{
    return server->http;
}

void lc_http_server_counters(const struct lc_http_server *server, struct lc_http_counters *out)
{
    *out = server->counters;
}

void lc_http_server_free(struct lc_http_server *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&registry_lock);
    for (struct lc_http_server **p = &registry; *p != NULL; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    pthread_mutex_unlock(&registry_lock);
    if (s->tick != NULL)
        event_free(s->tick);
    if (s->retry != NULL)
        event_free(s->retry);
    if (s->refuser != NULL)
        event_free(s->refuser);
    if (s->http != NULL)
        evhttp_free(s->http); /* its connections, and the listener once bound */
    if (s->listener != NULL && !s->listener_bound)
        evconnlistener_free(s->listener);
    struct inflight *e, *tmp;
    HASH_ITER(hh, s->table.entries, e, tmp)
    {
        HASH_DEL(s->table.entries, e);
        bufferevent_decref(e->bev);
        free(e);
    }
    if (thread_table == &s->table)
        thread_table = NULL;
    if (s->spare != NULL)
        bufferevent_free(s->spare);
    free(s->reserve);
    free(s);
}

/* ---- the request gate ---- */

static void close_after_reply(struct evhttp_request *req, void *arg)
{
    (void)req;
    /* Whatever the client sent after this request is not parsed: evhttp reads the end of the
     * stream next and frees the connection (CONNECT ignores "Connection: close"). */
    shutdown((evutil_socket_t)(intptr_t)arg, SHUT_RDWR);
}

static void bad_request(struct evhttp_request *req, const char *why)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Content-Type", "text/plain; charset=utf-8");
    evhttp_add_header(out, "Connection", "close");
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
    evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
    if (fd >= 0)
        evhttp_request_set_on_complete_cb(req, close_after_reply, (void *)(intptr_t)fd);
    evbuffer_add_printf(evhttp_request_get_output_buffer(req), "bad request: %s\n", why);
    lc_http_send(req, 400, "Bad Request", NULL);
}

static bool is_zero(const char *text)
{
    while (*text == ' ' || *text == '\t')
        text++;
    if (*text != '0')
        return false;
    while (*text == '0')
        text++;
    while (*text == ' ' || *text == '\t')
        text++;
    return *text == '\0';
}

bool lc_http_refuse(struct evhttp_request *req, unsigned allowed)
{
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    const char *length = NULL;
    bool conflict = false, chunked = false;
    struct evkeyval *h;
    for (h = evhttp_request_get_input_headers(req)->tqh_first; h != NULL; h = h->next.tqe_next) {
        if (strcasecmp(h->key, "Content-Length") == 0) {
            conflict |= length != NULL && strcmp(length, h->value) != 0;
            length = h->value;
        } else if (strcasecmp(h->key, "Transfer-Encoding") == 0) {
            chunked = true;
        }
    }
    if (conflict) {
        bad_request(req, "conflicting Content-Length headers");
        return true;
    }
    if (length != NULL && chunked) {
        bad_request(req, "both Content-Length and Transfer-Encoding");
        return true;
    }
    /* evhttp 2.1 reads no body for HEAD, TRACE and unknown methods: one sent would be parsed as
     * the next request. */
    bool reads_body = method != EVHTTP_REQ_HEAD && method != EVHTTP_REQ_TRACE &&
                      (method & (LC_HTTP_GET | LC_HTTP_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                 EVHTTP_REQ_OPTIONS | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH)) != 0;
    if (!reads_body && (chunked || (length != NULL && !is_zero(length)))) {
        bad_request(req, "a request body is not accepted with this method");
        return true;
    }
    if (((unsigned)method & allowed) != 0)
        return false;
    char allow[32] = "";
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{LC_HTTP_GET, "GET"}, {LC_HTTP_HEAD, "HEAD"}, {LC_HTTP_POST, "POST"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (allowed & names[i].bit)
            snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s",
                     allow[0] ? ", " : "", names[i].name);
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Allow", allow);
    evhttp_add_header(out, "Content-Type", "text/plain; charset=utf-8");
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    evbuffer_add_printf(evhttp_request_get_output_buffer(req), "method not allowed: %s takes %s\n",
                        path != NULL ? path : "this path", allow);
    lc_http_send(req, 405, "Method Not Allowed", NULL);
    return true;
}

void lc_http_send(struct evhttp_request *req, int code, const char *reason, struct evbuffer *body)
{
    if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
        evhttp_send_reply(req, code, reason, body);
        return;
    }
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    size_t len = evbuffer_get_length(out) + (body != NULL ? evbuffer_get_length(body) : 0);
    evbuffer_drain(out, evbuffer_get_length(out));
    if (body != NULL)
        evbuffer_drain(body, evbuffer_get_length(body));
    char value[24];
    snprintf(value, sizeof(value), "%zu", len);
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    evhttp_remove_header(headers, "Content-Length");
    evhttp_add_header(headers, "Content-Length", value);
    evhttp_send_reply(req, code, reason, NULL);
}
