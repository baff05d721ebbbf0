/*
 * lg_load: see lg_load.h for the model. Per connection the states are
 *
 *   CLOSED --connect--> CONNECTING --ok--> IDLE --send--> BUSY --response--> IDLE ...
 *      ^                    |  fail                          | fail / server close
 *      +---- retry timer <--+--------------------------------+
 *
 * Invariants (one thread per worker, so no locks here): a connection is on the idle stack iff it
 * is IDLE; `busy` counts BUSY connections; its read event is pending iff it has a socket and is
 * not CONNECTING; at most one request is in flight per connection. The schedule timer `due_ev`
 * is armed only when a connection is idle and the next request is due in the future.
 *
 * Hot path per request (rate or max): one send(), one or two recv(), the parser, one clock read,
 * two histogram records (one under the worker mutex). No allocation.
 */
#include "lg_load.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lc_util.h"
#include "lg_http.h"
#include "lg_sched.h"

#define LG_READ_BUF_BYTES (64u << 10) /* one per worker, shared by its connections */

const char *const lg_err_names[LG_ERR_KINDS] = {"connect", "reset", "timeout", "protocol",
                                                "non2xx"};

enum conn_state { CONN_CLOSED, CONN_CONNECTING, CONN_IDLE, CONN_BUSY };

struct worker;

struct conn {
    struct worker *w;
    int fd;
    enum conn_state state;
    struct event *rev;   /* EV_READ | EV_PERSIST while connected */
    struct event *wev;   /* EV_WRITE: connect completion, then partial writes */
    struct event *retry; /* reconnect timer */
    bool wev_pending;
    bool settled; /* its first connect attempt has finished (either way) */
    int idle_pos; /* index on the idle stack, -1 when not idle */
    int64_t due_ns, sent_ns;
    size_t written;
    int64_t backoff_ns;
    struct lg_http_parser parser;
};

/* Single-writer counters the main thread reads. */
struct counters {
    _Atomic uint64_t requests, errors, error[LG_ERR_KINDS], sent, reconnects;
};

struct worker {
    struct lg_load *load;
    unsigned index;
    pthread_t thread;
    bool started;
    struct event_base *base;
    struct conn *conns;
    unsigned nconns;
    struct conn **idle;
    unsigned nidle, busy, settled;
    struct event *due_ev, *tick_ev, *end_ev;
    int64_t armed_for; /* due time due_ev is armed for, or -1 */
    uint64_t seq;      /* next request of ours (global k = seq * T + index) */
    int64_t start_ns, end_ns, drain_deadline_ns;
    bool ending, schedule_done, failed;
    uint64_t rng;
    struct counters c;
    uint64_t unfinished, unsent;
    pthread_mutex_t mu;       /* guards interval */
    struct lg_hist *interval; /* since the main thread's last poll */
    struct lg_hist *all;      /* whole run; private until joined */
    char rbuf[LG_READ_BUF_BYTES];
};

struct lg_load {
    struct lg_load_config cfg;
    char *request;
    struct worker *workers;
    unsigned nworkers;
    atomic_bool stop;
    pthread_mutex_t mu; /* guards ready, go, start_ns during the start handshake */
    pthread_cond_t cond;
    unsigned ready;
    bool go;
    int64_t start_ns;
};

#define BUMP(field)                                                                                \
    atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + 1,      \
                          memory_order_relaxed)

static void set_err(char *err, size_t errlen, const char *fmt, const char *detail)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, fmt, detail);
}

static struct timeval tv_from_ns(int64_t ns)
{
    if (ns < 0)
        ns = 0;
    struct timeval tv = {.tv_sec = (time_t)(ns / LC_NS_PER_SEC),
                         .tv_usec = (suseconds_t)((ns % LC_NS_PER_SEC) / 1000)};
    return tv;
}

static double rand01(struct worker *w)
{
    /* xorshift64: jitter only, no need for quality. */
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return (double)(w->rng >> 11) / (double)(UINT64_C(1) << 53);
}

static void idle_push(struct worker *w, struct conn *c)
{
    c->state = CONN_IDLE;
    c->idle_pos = (int)w->nidle;
    w->idle[w->nidle++] = c;
}

static void idle_remove(struct worker *w, struct conn *c)
{
    if (c->idle_pos < 0)
        return;
    struct conn *last = w->idle[--w->nidle];
    w->idle[c->idle_pos] = last;
    last->idle_pos = c->idle_pos;
    c->idle_pos = -1;
}

static void conn_connect(struct conn *c);
static void dispatch(struct worker *w, int64_t now);
static void begin_end(struct worker *w, int64_t now);

static void conn_settle(struct conn *c)
{
    if (!c->settled) {
        c->settled = true;
        c->w->settled++;
    }
}

/* Close the socket and forget any request in flight (the caller has counted it). */
static void conn_close(struct conn *c)
{
    struct worker *w = c->w;
    if (c->state == CONN_BUSY)
        w->busy--;
    idle_remove(w, c);
    if (c->rev != NULL) {
        event_free(c->rev);
        c->rev = NULL;
    }
    if (c->wev != NULL) {
        event_free(c->wev);
        c->wev = NULL;
    }
    c->wev_pending = false;
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->state = CONN_CLOSED;
}

static void conn_reopen_after(struct conn *c, int64_t delay_ns)
{
    struct worker *w = c->w;
    if (w->ending)
        return;
    BUMP(w->c.reconnects);
    if (delay_ns <= 0) {
        conn_connect(c);
        return;
    }
    struct timeval tv = tv_from_ns(delay_ns);
    event_add(c->retry, &tv);
}

/* A failure: count it, close, and reconnect after the backoff. */
static void conn_fail(struct conn *c, enum lg_err_kind kind)
{
    struct worker *w = c->w;
    BUMP(w->c.errors);
    BUMP(w->c.error[kind]);
    conn_close(c);
    conn_settle(c);
    c->backoff_ns = c->backoff_ns ? c->backoff_ns * 2 : LG_BACKOFF_MIN_NS;
    if (c->backoff_ns > LG_BACKOFF_MAX_NS)
        c->backoff_ns = LG_BACKOFF_MAX_NS;
    conn_reopen_after(c, (int64_t)((double)c->backoff_ns * (0.5 + 0.5 * rand01(w))));
    if (w->ending && w->busy == 0)
        event_base_loopbreak(w->base);
}

/* Not an error (the server closed an idle connection, or said Connection: close). */
static void conn_recycle(struct conn *c)
{
    conn_close(c);
    conn_reopen_after(c, 0);
}

static void conn_on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (!c->w->ending)
        conn_connect(c);
}

static void conn_flush(struct conn *c);

static void conn_on_read(evutil_socket_t fd, short what, void *arg);

static void conn_on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct conn *c = arg;
    struct worker *w = c->w;
    c->wev_pending = false;
    if (c->state == CONN_CONNECTING) {
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if ((what & EV_TIMEOUT) || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 ||
            soerr != 0) {
            conn_fail(c, LG_ERR_CONNECT);
            return;
        }
        c->rev = event_new(w->base, c->fd, EV_READ | EV_PERSIST, conn_on_read, c);
        if (c->rev == NULL || event_add(c->rev, NULL) != 0) {
            conn_fail(c, LG_ERR_CONNECT);
            return;
        }
        conn_settle(c);
        idle_push(w, c);
        if (w->start_ns != 0 && !w->ending)
            dispatch(w, lc_monotonic_ns());
        return;
    }
    if (c->state == CONN_BUSY)
        conn_flush(c);
}

static void conn_connect(struct conn *c)
{
    struct worker *w = c->w;
    const struct lg_load_config *cfg = &w->load->cfg;
    c->fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_fail(c, LG_ERR_CONNECT);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->wev = event_new(w->base, c->fd, EV_WRITE, conn_on_writable, c);
    if (c->wev == NULL) {
        conn_fail(c, LG_ERR_CONNECT);
        return;
    }
    c->state = CONN_CONNECTING;
    if (connect(c->fd, (const struct sockaddr *)&cfg->addr, cfg->addr_len) != 0 &&
        errno != EINPROGRESS) {
        conn_fail(c, LG_ERR_CONNECT);
        return;
    }
    /* Even an immediate success is completed through the event, one code path. */
    struct timeval tv = tv_from_ns(cfg->timeout_ns);
    event_add(c->wev, &tv);
    c->wev_pending = true;
}

/* Write what remains of the request; wait for writability if the socket is full. */
static void conn_flush(struct conn *c)
{
    const struct lg_load *load = c->w->load;
    while (c->written < load->cfg.request_len) {
        ssize_t n = send(c->fd, load->request + c->written, load->cfg.request_len - c->written,
                         MSG_NOSIGNAL);
        if (n > 0) {
            c->written += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->wev_pending) {
                event_add(c->wev, NULL);
                c->wev_pending = true;
            }
            return;
        }
        conn_fail(c, LG_ERR_RESET);
        return;
    }
    if (c->wev_pending) {
        event_del(c->wev);
        c->wev_pending = false;
    }
}

static void conn_send(struct worker *w, struct conn *c, int64_t due_ns, int64_t now)
{
    idle_remove(w, c);
    c->state = CONN_BUSY;
    w->busy++;
    c->due_ns = due_ns;
    c->sent_ns = now;
    c->written = 0;
    lg_http_init(&c->parser, w->load->cfg.head);
    BUMP(w->c.sent);
    conn_flush(c);
}

/* A complete response on c at now. */
static void conn_complete(struct conn *c, int64_t now, bool reusable)
{
    struct worker *w = c->w;
    uint64_t latency = now > c->due_ns ? (uint64_t)(now - c->due_ns) : 0;
    lg_hist_record(w->all, latency);
    pthread_mutex_lock(&w->mu);
    lg_hist_record(w->interval, latency);
    pthread_mutex_unlock(&w->mu);
    BUMP(w->c.requests);
    int status = c->parser.status;
    if (status < 200 || status > 299) {
        BUMP(w->c.errors);
        BUMP(w->c.error[LG_ERR_STATUS]);
    }
    c->backoff_ns = 0;
    w->busy--;
    /* A response that came before the request was fully written leaves the stream unusable. */
    bool written = c->written == w->load->cfg.request_len;
    if (!reusable || !c->parser.keep_alive || !written) {
        c->state = CONN_IDLE; /* not busy any more; conn_close must not count it */
        conn_recycle(c);
    } else {
        if (c->wev_pending) {
            event_del(c->wev);
            c->wev_pending = false;
        }
        idle_push(w, c);
    }
    if (w->ending) {
        if (w->busy == 0)
            event_base_loopbreak(w->base);
        return;
    }
    dispatch(w, now);
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    struct worker *w = c->w;
    ssize_t n = recv(fd, w->rbuf, sizeof(w->rbuf), 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        if (c->state == CONN_BUSY)
            conn_fail(c, LG_ERR_RESET);
        else
            conn_recycle(c);
        return;
    }
    if (n == 0) {
        if (c->state != CONN_BUSY) {
            conn_recycle(c); /* the server closed an idle keep-alive connection */
            return;
        }
        if (lg_http_eof(&c->parser) == 1)
            conn_complete(c, lc_monotonic_ns(), false);
        else
            conn_fail(c, LG_ERR_RESET);
        return;
    }
    if (c->state != CONN_BUSY) {
        conn_fail(c, LG_ERR_PROTOCOL); /* bytes nobody asked for */
        return;
    }
    size_t used = 0;
    int rc = lg_http_feed(&c->parser, w->rbuf, (size_t)n, &used);
    if (rc < 0) {
        conn_fail(c, LG_ERR_PROTOCOL);
        return;
    }
    if (rc == 1) {
        bool extra = used < (size_t)n; /* we never pipeline: trailing bytes are garbage */
        conn_complete(c, lc_monotonic_ns(), !extra);
        if (extra) {
            BUMP(w->c.errors);
            BUMP(w->c.error[LG_ERR_PROTOCOL]);
        }
    }
}

/* Send what is due on idle connections; arm the schedule timer for what is not due yet. */
static void dispatch(struct worker *w, int64_t now)
{
    const struct lg_load_config *cfg = &w->load->cfg;
    if (cfg->rate_per_s == 0) {
        while (w->nidle > 0)
            conn_send(w, w->idle[w->nidle - 1], now, now);
        return;
    }
    while (w->nidle > 0 && !w->schedule_done) {
        uint64_t k = w->seq * w->load->nworkers + w->index;
        int64_t due = lg_sched_due_ns(w->start_ns, cfg->rate_per_s, k);
        if (due >= w->end_ns) {
            w->schedule_done = true;
            break;
        }
        if (due > now) {
            if (w->armed_for != due) {
                struct timeval tv = tv_from_ns(due - now);
                event_add(w->due_ev, &tv);
                w->armed_for = due;
            }
            return;
        }
        w->seq++;
        conn_send(w, w->idle[w->nidle - 1], due, now);
    }
}

static void on_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    w->armed_for = -1;
    if (!w->ending)
        dispatch(w, lc_monotonic_ns());
}

static void begin_end(struct worker *w, int64_t now)
{
    if (w->ending)
        return;
    w->ending = true;
    event_del(w->due_ev);
    int64_t drain =
        w->load->cfg.timeout_ns < LG_DRAIN_MAX_NS ? w->load->cfg.timeout_ns : LG_DRAIN_MAX_NS;
    w->drain_deadline_ns = now + drain;
    if (w->busy == 0)
        event_base_loopbreak(w->base);
}

static void on_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    begin_end(arg, lc_monotonic_ns());
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    int64_t now = lc_monotonic_ns();
    if (atomic_load(&w->load->stop))
        begin_end(w, now);
    if (w->ending && now >= w->drain_deadline_ns) {
        event_base_loopbreak(w->base);
        return;
    }
    for (unsigned i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        if (c->state == CONN_BUSY && now - c->sent_ns > w->load->cfg.timeout_ns)
            conn_fail(c, LG_ERR_TIMEOUT);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct lg_load *load = w->load;
    struct event_config *ec = event_config_new();
    if (ec != NULL) {
        event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
        /* Rate mode needs timers to the microsecond (timerfd) rather than the millisecond, and a
         * precise clock; max mode has no timers on its hot path and skips their cost. */
        if (load->cfg.rate_per_s != 0)
            event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
        w->base = event_base_new_with_config(ec);
        event_config_free(ec);
    }
    w->due_ev = w->base ? evtimer_new(w->base, on_due, w) : NULL;
    w->end_ev = w->base ? evtimer_new(w->base, on_end, w) : NULL;
    w->tick_ev = w->base ? event_new(w->base, -1, EV_PERSIST, on_tick, w) : NULL;
    for (unsigned i = 0; w->tick_ev != NULL && i < w->nconns; i++) {
        w->conns[i].retry = evtimer_new(w->base, conn_on_retry, &w->conns[i]);
        if (w->conns[i].retry == NULL)
            w->failed = true;
    }
    if (w->due_ev == NULL || w->end_ev == NULL || w->tick_ev == NULL)
        w->failed = true;

    /* Connect everything before the clock starts, so the first requests do not pay for it. */
    for (unsigned i = 0; !w->failed && i < w->nconns; i++)
        conn_connect(&w->conns[i]);
    while (!w->failed && w->settled < w->nconns && !atomic_load(&load->stop))
        event_base_loop(w->base, EVLOOP_ONCE);

    pthread_mutex_lock(&load->mu);
    load->ready++;
    pthread_cond_broadcast(&load->cond);
    while (!load->go)
        pthread_cond_wait(&load->cond, &load->mu);
    int64_t start = load->start_ns;
    pthread_mutex_unlock(&load->mu);
    if (w->failed || start == 0)
        return NULL;

    w->start_ns = start;
    w->end_ns = start + load->cfg.duration_ns;
    int64_t now = lc_monotonic_ns();
    struct timeval end_tv = tv_from_ns(w->end_ns - now);
    struct timeval tick_tv = tv_from_ns(LG_TICK_NS);
    event_add(w->end_ev, &end_tv);
    event_add(w->tick_ev, &tick_tv);
    if (now >= start)
        dispatch(w, now);
    else
        event_add(w->due_ev, &(struct timeval){0, (suseconds_t)((start - now) / 1000)});
    event_base_dispatch(w->base);

    int64_t end = lc_monotonic_ns();
    if (end > w->end_ns)
        end = w->end_ns;
    w->unfinished = w->busy;
    if (load->cfg.rate_per_s != 0) {
        uint64_t due = lg_sched_share(lg_sched_count_due(start, load->cfg.rate_per_s, end - 1),
                                      w->index, load->nworkers);
        w->unsent = due > w->seq ? due - w->seq : 0;
    }
    for (unsigned i = 0; i < w->nconns; i++) {
        if (w->conns[i].state == CONN_BUSY)
            w->conns[i].state = CONN_IDLE; /* counted as unfinished, not as errors */
        conn_close(&w->conns[i]);
    }
    return NULL;
}

struct lg_load *lg_load_new(const struct lg_load_config *config, char *err, size_t errlen)
{
    struct lg_load *load = calloc(1, sizeof(*load));
    if (load == NULL)
        goto oom;
    load->cfg = *config;
    load->nworkers = config->threads ? config->threads : 1;
    if (load->nworkers > config->connections)
        load->nworkers = config->connections;
    load->request = malloc(config->request_len);
    load->workers = calloc(load->nworkers, sizeof(*load->workers));
    if (load->request == NULL || load->workers == NULL)
        goto oom;
    memcpy(load->request, config->request, config->request_len);
    load->cfg.request = load->request;
    pthread_mutex_init(&load->mu, NULL);
    pthread_cond_init(&load->cond, NULL);
    for (unsigned i = 0; i < load->nworkers; i++) {
        struct worker *w = &load->workers[i];
        w->load = load;
        w->index = i;
        /* Connections spread as evenly as they go: the first ones get the remainder. */
        w->nconns = config->connections / load->nworkers +
                    (i < config->connections % load->nworkers ? 1 : 0);
        w->conns = calloc(w->nconns, sizeof(*w->conns));
        w->idle = calloc(w->nconns, sizeof(*w->idle));
        w->interval = lg_hist_new();
        w->all = lg_hist_new();
        if (w->conns == NULL || w->idle == NULL || w->interval == NULL || w->all == NULL)
            goto oom;
        for (unsigned j = 0; j < w->nconns; j++) {
            w->conns[j].w = w;
            w->conns[j].fd = -1;
            w->conns[j].idle_pos = -1;
        }
        w->armed_for = -1;
        w->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)i * 0x2545f4914f6cdd1dull) ^
                 (uint64_t)lc_monotonic_ns();
        if (w->rng == 0)
            w->rng = 1;
        pthread_mutex_init(&w->mu, NULL);
    }
    return load;
oom:
    set_err(err, errlen, "%s", "out of memory");
    lg_load_free(load);
    return NULL;
}

int lg_load_start(struct lg_load *load, int64_t *start_ns, char *err, size_t errlen)
{
    unsigned started = 0;
    for (; started < load->nworkers; started++) {
        struct worker *w = &load->workers[started];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            break;
        w->started = true;
    }
    pthread_mutex_lock(&load->mu);
    while (load->ready < started)
        pthread_cond_wait(&load->cond, &load->mu);
    bool failed = started < load->nworkers;
    for (unsigned i = 0; i < started; i++)
        failed = failed || load->workers[i].failed;
    /* Time zero a little ahead, so that every worker is waiting for it, not late for it. */
    load->start_ns = failed ? 0 : lc_monotonic_ns() + LC_NS_PER_MS;
    load->go = true;
    pthread_cond_broadcast(&load->cond);
    pthread_mutex_unlock(&load->mu);
    if (failed) {
        set_err(err, errlen, "%s", "cannot start the load threads (out of memory or threads)");
        lg_load_join(load);
        return -1;
    }
    *start_ns = load->start_ns;
    return 0;
}

void lg_load_request_stop(struct lg_load *load)
{
    atomic_store(&load->stop, true);
}

void lg_load_join(struct lg_load *load)
{
    for (unsigned i = 0; i < load->nworkers; i++) {
        struct worker *w = &load->workers[i];
        if (w->started) {
            pthread_join(w->thread, NULL);
            w->started = false;
        }
    }
}

static void read_counters(const struct worker *w, struct lg_load_counts *out)
{
    out->requests += atomic_load_explicit(&w->c.requests, memory_order_relaxed);
    out->errors += atomic_load_explicit(&w->c.errors, memory_order_relaxed);
    for (int k = 0; k < LG_ERR_KINDS; k++)
        out->error[k] += atomic_load_explicit(&w->c.error[k], memory_order_relaxed);
    out->sent += atomic_load_explicit(&w->c.sent, memory_order_relaxed);
    out->reconnects += atomic_load_explicit(&w->c.reconnects, memory_order_relaxed);
}

void lg_load_poll(struct lg_load *load, int64_t now_ns, struct lg_load_counts *out,
                  struct lg_hist *interval)
{
    memset(out, 0, sizeof(*out));
    int64_t start = load->start_ns;
    int64_t end = start + load->cfg.duration_ns;
    for (unsigned i = 0; i < load->nworkers; i++) {
        struct worker *w = &load->workers[i];
        read_counters(w, out);
        if (load->cfg.rate_per_s != 0 && start != 0) {
            int64_t t = now_ns < end ? now_ns : end - 1;
            uint64_t due = lg_sched_share(lg_sched_count_due(start, load->cfg.rate_per_s, t), i,
                                          load->nworkers);
            uint64_t sent = atomic_load_explicit(&w->c.sent, memory_order_relaxed);
            /* due and sent are both this worker's share of the schedule. */
            out->backlog += due > sent ? due - sent : 0;
        }
        if (interval != NULL) {
            pthread_mutex_lock(&w->mu);
            lg_hist_merge(interval, w->interval);
            lg_hist_reset(w->interval);
            pthread_mutex_unlock(&w->mu);
        }
    }
}

void lg_load_totals(struct lg_load *load, struct lg_load_counts *out, struct lg_hist *all)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < load->nworkers; i++) {
        struct worker *w = &load->workers[i];
        read_counters(w, out);
        out->unfinished += w->unfinished;
        out->unsent += w->unsent;
        if (all != NULL)
            lg_hist_merge(all, w->all);
    }
}

void lg_load_free(struct lg_load *load)
{
    if (load == NULL)
        return;
    lg_load_join(load);
    for (unsigned i = 0; load->workers != NULL && i < load->nworkers; i++) {
        struct worker *w = &load->workers[i];
        for (unsigned j = 0; w->conns != NULL && j < w->nconns; j++) {
            if (w->conns[j].state != CONN_CLOSED || w->conns[j].fd >= 0) {
                w->conns[j].state = CONN_IDLE;
                conn_close(&w->conns[j]);
            }
            if (w->conns[j].retry != NULL)
                event_free(w->conns[j].retry);
        }
        if (w->due_ev)
            event_free(w->due_ev);
        if (w->end_ev)
            event_free(w->end_ev);
        if (w->tick_ev)
            event_free(w->tick_ev);
        if (w->base)
            event_base_free(w->base);
        free(w->conns);
        free(w->idle);
        lg_hist_free(w->interval);
        lg_hist_free(w->all);
        pthread_mutex_destroy(&w->mu);
    }
    free(load->workers);
    free(load->request);
    pthread_mutex_destroy(&load->mu);
    pthread_cond_destroy(&load->cond);
    free(load);
}

int lg_load_probe(const struct sockaddr *addr, socklen_t addr_len, int64_t timeout_ns, char *err,
                  size_t errlen)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        set_err(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int rc = connect(fd, addr, addr_len);
    if (rc != 0 && errno == EINPROGRESS) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int ready = poll(&pfd, 1, (int)(timeout_ns / LC_NS_PER_MS));
        if (ready == 0) {
            close(fd);
            set_err(err, errlen, "%s", "connect timed out");
            return -1;
        }
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if (ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
            soerr = errno;
        errno = soerr;
        rc = soerr ? -1 : 0;
    }
    int saved = errno;
    close(fd);
    if (rc != 0) {
        set_err(err, errlen, "%s", strerror(saved));
        return -1;
    }
    return 0;
}
