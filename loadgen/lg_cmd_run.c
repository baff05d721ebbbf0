/*
 * lg_cmd_run: `loadgen --url URL ...`, steady HTTP load on a service while its heap is profiled,
 * then a verdict (lg_verdict.h).
 *
 * The main thread owns the clock of the run: a tick every second writes a timeline row (and the
 * progress line on a terminal) and fetches memstats; a tick every --profile-every fetches a heap
 * profile; at the end the workers are joined, one last profile is taken with the load stopped,
 * and the summary is printed. The load itself runs in lg_load's worker threads, which never wait
 * for this thread. Exit status: 0 ran (whatever the verdict, unless --fail-on-leak), 1 runtime
 * failure (dead target, unwritable --out, a profile URL that does not answer pprof), 2 usage;
 * with --fail-on-leak, 1 on LEAK and 3 on UNDECIDED, decided after every file is written.
 * Whatever was gathered before a failure (timeline rows, profiles, report.json) is kept.
 * SIGINT/SIGTERM end the run early with the usual summary; a second one kills.
 */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lc_util.h"
#include "lg_cmd.h"
#include "lg_diff.h"
#include "lg_hist.h"
#include "lg_load.h"
#include "lg_profiles.h"
#include "lg_report.h"
#include "lg_url.h"
#include "lg_verdict.h"

#define LG_DEFAULT_RATE         1000 /* req/s */
#define LG_DEFAULT_DURATION_NS  (10 * LC_NS_PER_SEC)
#define LG_DEFAULT_CONNECTIONS  16
#define LG_DEFAULT_TIMEOUT_NS   (5 * LC_NS_PER_SEC)
#define LG_DEFAULT_PROFILE_NS   (2 * LC_NS_PER_SEC)
#define LG_PROBE_TIMEOUT_NS     (2 * LC_NS_PER_SEC)
#define LG_MAX_CONNECTIONS      10000 /* more would flood the target's fds before measuring it */
#define LG_MAX_CONNECTIONS_TEXT "10000"
#define LG_EXIT_FAILED_REQUESTS 4 /* requests failed beyond --max-error-rate */
#define LG_MAX_THREADS          256
#define LG_MAX_RATE             100000000 /* req/s: beyond any machine, a typo guard */
#define LG_MAX_BODY_BYTES       (64u << 20)

struct options {
    const char *url_text, *profile_url_text, *out_dir, *label, *method;
    struct lg_url url, profile_url;
    uint64_t rate; /* 0: max */
    int64_t duration_ns, timeout_ns, profile_every_ns;
    unsigned connections, threads;
    char *body;
    size_t body_len;
    bool fail_on_leak;
    double max_error_pct; /* failed requests above this share of those due: exit 4 */
};

struct run {
    struct options *o;
    struct event_base *base;
    struct lg_load *load;
    struct lg_profiles *profiles;
    struct lg_timeline *timeline;
    struct lg_hist *interval;
    struct event *second_ev, *profile_ev, *end_ev, *sigint_ev, *sigterm_ev;
    int64_t start_ns, stop_ns;
    unsigned second, profile_tick;
    uint64_t prev_requests;
    double prev_elapsed;
    size_t points_written;
    bool finishing, final_requested, tty, fatal;
    const char *stopped_by;
    char fatal_msg[600];
};

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: loadgen --url URL [options]       steady load, heap profiles, verdict\n"
        "       loadgen diff [--top N] BASE NEW   what grew from BASE to NEW (pprof -base -top)\n"
        "       loadgen plot -o FILE.png|FILE.svg DIR...   in-use MiB over time, per run\n"
        "       loadgen verdict DIR...            re-judge saved runs (exit 0 BOUNDED, 1 LEAK,\n"
        "                                         3 UNDECIDED, 2 bad input)\n"
        "options:\n"
        "  --url URL            target, http://HOST:PORT/PATH (e.g. "
        "http://127.0.0.1:8080/process)\n"
        "  --rate N|max         requests per second on an open-loop schedule (default %d);\n"
        "                       max: closed loop, as fast as the connections go\n"
        "  --duration D         how long to run: 500ms, 10s, 2m (default 10s)\n"
        "  --connections N      keep-alive connections, one request in flight each (default %d)\n"
        "  --threads N          load threads, each with its share of connections (default 1)\n"
        "  --method M           HTTP method (default GET)\n"
        "  --body TEXT|@FILE    request body (sent with Content-Length)\n"
        "  --timeout D          a request without a complete response by then fails (default 5s)\n"
        "  --profile-url URL    heap profile to fetch, e.g. "
        "http://127.0.0.1:6060/debug/pprof/heap\n"
        "  --profile-every D    how often (default 2s); /debug/memstats on the same host too\n"
        "  --out DIR            write timeline.csv, profiles.csv, heap-NNNN.pb.gz, report.json\n"
        "  --label NAME         name of this run in report.json and plots (default: DIR's name)\n"
        "  --fail-on-leak       exit 1 on a LEAK verdict and 3 on UNDECIDED (after writing all\n"
        "                       files): a leak gate for CI\n"
        "  --max-error-rate P   exit 4 when more than P%% of the requests sent failed (errors,\n"
        "                       or no response by the end), or when none succeeded (default 1)\n",
        LG_DEFAULT_RATE, LG_DEFAULT_CONNECTIONS);
}

static int usage_error(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "loadgen: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n(loadgen --help for usage)\n");
    return 2;
}

static int read_body(const char *arg, struct options *o)
{
    if (arg[0] != '@') {
        o->body_len = strlen(arg);
        o->body = strdup(arg);
        return o->body ? 0 : -1;
    }
    FILE *f = fopen(arg + 1, "rb");
    if (f == NULL)
        return -1;
    o->body = malloc(LG_MAX_BODY_BYTES);
    if (o->body != NULL)
        o->body_len = fread(o->body, 1, LG_MAX_BODY_BYTES, f);
    int bad = o->body == NULL || ferror(f) || !feof(f);
    fclose(f);
    return bad ? -1 : 0;
}

static int parse_duration(const char *flag, const char *text, int64_t *out)
{
    if (lc_parse_duration_ns(text, out) != 0 || *out <= 0)
        return usage_error("%s: bad duration \"%s\" (use e.g. 500ms, 10s, 2m)", flag, text);
    return 0;
}

/* 0, or the exit status for a usage error (message printed). */
static int parse_args(int argc, char **argv, struct options *o)
{
    enum {
        O_URL = 256,
        O_RATE,
        O_DURATION,
        O_CONNS,
        O_THREADS,
        O_METHOD,
        O_BODY,
        O_TIMEOUT,
        O_PURL,
        O_PEVERY,
        O_OUT,
        O_LABEL,
        O_FAIL_ON_LEAK,
        O_MAX_ERROR_RATE
    };
    static const struct option options[] = {
        {"url", required_argument, NULL, O_URL},
        {"rate", required_argument, NULL, O_RATE},
        {"duration", required_argument, NULL, O_DURATION},
        {"connections", required_argument, NULL, O_CONNS},
        {"threads", required_argument, NULL, O_THREADS},
        {"method", required_argument, NULL, O_METHOD},
        {"body", required_argument, NULL, O_BODY},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"profile-url", required_argument, NULL, O_PURL},
        {"profile-every", required_argument, NULL, O_PEVERY},
        {"out", required_argument, NULL, O_OUT},
        {"label", required_argument, NULL, O_LABEL},
        {"fail-on-leak", no_argument, NULL, O_FAIL_ON_LEAK},
        {"max-error-rate", required_argument, NULL, O_MAX_ERROR_RATE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    o->rate = LG_DEFAULT_RATE;
    o->duration_ns = LG_DEFAULT_DURATION_NS;
    o->timeout_ns = LG_DEFAULT_TIMEOUT_NS;
    o->profile_every_ns = LG_DEFAULT_PROFILE_NS;
    o->connections = LG_DEFAULT_CONNECTIONS;
    o->max_error_pct = 1.0;
    o->threads = 1;
    o->method = "GET";
    int opt, rc;
    uint64_t n;
    char err[256];
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case O_URL:
            o->url_text = optarg;
            break;
        case O_RATE:
            if (strcmp(optarg, "max") == 0)
                o->rate = 0;
            else if (lc_parse_u64(optarg, 1, LG_MAX_RATE, &o->rate) != 0)
                return usage_error("--rate: \"%s\" is not a rate (a whole number of requests "
                                   "per second from 1, or max)%s",
                                   optarg, "");
            break;
        case O_DURATION:
            if ((rc = parse_duration("--duration", optarg, &o->duration_ns)) != 0)
                return rc;
            break;
        case O_TIMEOUT:
            if ((rc = parse_duration("--timeout", optarg, &o->timeout_ns)) != 0)
                return rc;
            break;
        case O_PEVERY:
            if ((rc = parse_duration("--profile-every", optarg, &o->profile_every_ns)) != 0)
                return rc;
            break;
        case O_CONNS:
            if (lc_parse_u64(optarg, 1, LG_MAX_CONNECTIONS, &n) != 0)
                return usage_error("--connections: \"%s\" is not in 1..%s (each is a socket and "
                                   "a share of the target's fds)",
                                   optarg, LG_MAX_CONNECTIONS_TEXT);
            o->connections = (unsigned)n;
            break;
        case O_THREADS:
            if (lc_parse_u64(optarg, 1, LG_MAX_THREADS, &n) != 0)
                return usage_error("--threads: \"%s\" is not in 1..256%s", optarg, "");
            o->threads = (unsigned)n;
            break;
        case O_METHOD:
            for (const char *c = optarg; *c; c++)
                if (!((*c >= 'A' && *c <= 'Z') || *c == '-' || *c == '_'))
                    return usage_error("--method: \"%s\" is not an HTTP method (e.g. GET, "
                                       "POST)%s",
                                       optarg, "");
            if (optarg[0] == '\0' || strlen(optarg) > 32)
                return usage_error("--method: \"%s\" is not an HTTP method%s", optarg, "");
            o->method = optarg;
            break;
        case O_BODY:
            free(o->body);
            o->body = NULL;
            if (read_body(optarg, o) != 0)
                return usage_error("--body: cannot read \"%s\" (or larger than 64 MiB)%s", optarg,
                                   "");
            break;
        case O_PURL:
            o->profile_url_text = optarg;
            break;
        case O_OUT:
            o->out_dir = optarg;
            break;
        case O_LABEL:
            o->label = optarg;
            break;
        case O_FAIL_ON_LEAK:
            o->fail_on_leak = true;
            break;
        case O_MAX_ERROR_RATE: {
            char *end = NULL;
            errno = 0;
            double pct = strtod(optarg, &end);
            if (errno != 0 || end == optarg || (*end != '\0' && strcmp(end, "%") != 0) ||
                !(pct >= 0 && pct <= 100))
                return usage_error("--max-error-rate: \"%s\" is not a percentage in 0..100%s",
                                   optarg, "");
            o->max_error_pct = pct;
            break;
        }
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument \"%s\"%s", argv[optind], "");
    if (o->url_text == NULL)
        return usage_error("--url is required (e.g. --url http://127.0.0.1:8080/process)%s%s", "",
                           "");
    if (lg_url_parse(o->url_text, &o->url, err, sizeof(err)) != 0)
        return usage_error("--url %s: %s", o->url_text, err);
    if (o->profile_url_text != NULL &&
        lg_url_parse(o->profile_url_text, &o->profile_url, err, sizeof(err)) != 0)
        return usage_error("--profile-url %s: %s", o->profile_url_text, err);
    if (o->label == NULL) {
        o->label = "run";
        if (o->out_dir != NULL) {
            const char *end = o->out_dir + strlen(o->out_dir);
            while (end > o->out_dir && end[-1] == '/')
                end--;
            const char *start = end;
            while (start > o->out_dir && start[-1] != '/')
                start--;
            if (end > start) {
                static char label[256];
                snprintf(label, sizeof(label), "%.*s", (int)(end - start), start);
                o->label = label;
            }
        }
    }
    return 0;
}

static char *build_request(const struct options *o, size_t *len)
{
    bool has_body = o->body != NULL || strcmp(o->method, "POST") == 0 ||
                    strcmp(o->method, "PUT") == 0 || strcmp(o->method, "PATCH") == 0;
    char head[LG_URL_PATH_MAX + LG_URL_HOST_MAX + 256];
    int hl = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: %s\r\n", o->method, o->url.path,
                      o->url.authority);
    if (has_body)
        hl += snprintf(head + hl, sizeof(head) - (size_t)hl,
                       "Content-Type: application/octet-stream\r\nContent-Length: %zu\r\n",
                       o->body_len);
    hl += snprintf(head + hl, sizeof(head) - (size_t)hl, "\r\n");
    char *req = malloc((size_t)hl + o->body_len);
    if (req == NULL)
        return NULL;
    memcpy(req, head, (size_t)hl);
    if (o->body_len)
        memcpy(req + hl, o->body, o->body_len);
    *len = (size_t)hl + o->body_len;
    return req;
}

/* Seconds since the run's start, never negative: libevent's timers may fire a little early (it
 * keeps time with a coarse clock), and the profile due at time zero was written "-0.000" into
 * profiles.csv once (TSan build, busy machine). */
static double elapsed_s(const struct run *r, int64_t now)
{
    return now > r->start_ns ? (double)(now - r->start_ns) / 1e9 : 0.0;
}

static void write_new_points(struct run *r)
{
    if (r->profiles == NULL)
        return;
    size_t n;
    const struct lg_profile_point *pts = lg_profiles_points(r->profiles, &n);
    for (; r->points_written < n; r->points_written++)
        if (r->timeline)
            lg_timeline_profile(r->timeline, &pts[r->points_written]);
}

static void timeline_row(struct run *r, int64_t now, bool progress)
{
    struct lg_load_counts c;
    lg_hist_reset(r->interval);
    lg_load_poll(r->load, now, &c, r->interval);
    double t = elapsed_s(r, now);
    struct lg_timeline_row row = {.elapsed_s = t,
                                  .requests = c.requests,
                                  .errors = c.errors,
                                  .backlog = c.backlog,
                                  .interval = r->interval};
    row.rps =
        t > r->prev_elapsed ? (double)(c.requests - r->prev_requests) / (t - r->prev_elapsed) : 0;
    r->prev_elapsed = t;
    r->prev_requests = c.requests;
    size_t n = 0;
    const struct lg_profile_point *pts = r->profiles ? lg_profiles_points(r->profiles, &n) : NULL;
    if (n > 0) {
        row.have_inuse = true;
        row.inuse_bytes = pts[n - 1].inuse_bytes;
        row.inuse_objects = pts[n - 1].inuse_objects;
    }
    row.memstats = r->profiles ? lg_profiles_memstats(r->profiles) : NULL;
    if (r->timeline && lg_timeline_row(r->timeline, &row) != 0 && !r->fatal) {
        r->fatal = true;
        snprintf(r->fatal_msg, sizeof(r->fatal_msg), "cannot write %s/timeline.csv: %s",
                 r->o->out_dir, strerror(errno));
    }
    if (progress && r->tty) {
        char inuse[32] = "-";
        if (row.have_inuse)
            lg_format_bytes(inuse, sizeof(inuse), (double)row.inuse_bytes, 0);
        fprintf(stderr, "\r%6.0fs  %9.0f req/s  p99 %8.3f ms  errors %" PRIu64 "  in-use %s\033[K",
                t, row.rps, (double)lg_hist_percentile(r->interval, 99) / 1e6, c.errors, inuse);
        fflush(stderr);
    }
}

static void finish(struct run *r)
{
    event_base_loopbreak(r->base);
}

static void on_end(evutil_socket_t fd, short what, void *arg);

/* Stop the run because of a runtime failure; what was gathered is kept. */
static void fail_run(struct run *r, const char *msg)
{
    if (!r->fatal) {
        r->fatal = true;
        snprintf(r->fatal_msg, sizeof(r->fatal_msg), "%s", msg);
        r->stopped_by = r->fatal_msg;
    }
    if (!r->finishing)
        event_active(r->end_ev, EV_TIMEOUT, 0);
}

static void on_profile_done(void *arg)
{
    struct run *r = arg;
    write_new_points(r);
    const char *fatal = lg_profiles_fatal(r->profiles);
    if (fatal != NULL) {
        fail_run(r, fatal);
        if (r->finishing)
            finish(r);
        return;
    }
    if (!r->finishing)
        return;
    if (r->final_requested) {
        finish(r);
        return;
    }
    r->final_requested = true;
    size_t n;
    lg_profiles_points(r->profiles, &n);
    struct lg_load_counts c;
    lg_load_poll(r->load, lc_monotonic_ns(), &c, NULL);
    if (lg_profiles_fetch(r->profiles, elapsed_s(r, lc_monotonic_ns()), c.requests) != 0)
        finish(r);
}

static void on_second(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct run *r = arg;
    int64_t now = lc_monotonic_ns();
    timeline_row(r, now, true);
    if (r->profiles)
        lg_profiles_fetch_memstats(r->profiles);
    r->second++;
    int64_t next = r->start_ns + (int64_t)(r->second + 1) * LC_NS_PER_SEC;
    if (next < r->start_ns + r->o->duration_ns) {
        struct timeval tv = {.tv_sec = (next - now) / LC_NS_PER_SEC,
                             .tv_usec = (next - now) % LC_NS_PER_SEC / 1000};
        evtimer_add(r->second_ev, &tv);
    }
}

static void on_profile_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct run *r = arg;
    int64_t now = lc_monotonic_ns();
    struct lg_load_counts c;
    lg_load_poll(r->load, now, &c, NULL);
    lg_profiles_fetch(r->profiles, elapsed_s(r, now), c.requests);
    if (lg_profiles_fatal(r->profiles) != NULL) {
        fail_run(r, lg_profiles_fatal(r->profiles));
        return;
    }
    /* Ticks at fixed times k * every, never "every after the last one", so the profiles keep a
     * constant phase against periodic work in the server (see lg_verdict.h on aliasing). */
    r->profile_tick++;
    int64_t next = r->start_ns + (int64_t)r->profile_tick * r->o->profile_every_ns;
    if (next < r->start_ns + r->o->duration_ns) {
        struct timeval tv = {.tv_sec = (next - now) / LC_NS_PER_SEC,
                             .tv_usec = (next - now) % LC_NS_PER_SEC / 1000};
        if (next < now)
            tv = (struct timeval){0, 0};
        evtimer_add(r->profile_ev, &tv);
    }
}

static void on_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct run *r = arg;
    if (r->finishing)
        return;
    r->finishing = true;
    evtimer_del(r->second_ev);
    if (r->profile_ev)
        evtimer_del(r->profile_ev);
    r->stop_ns = lc_monotonic_ns();
    lg_load_request_stop(r->load);
    lg_load_join(r->load);
    if (r->tty)
        fprintf(stderr, "\r\033[K");
    timeline_row(r, lc_monotonic_ns(), false);
    if (r->profiles == NULL || r->fatal) {
        finish(r);
        return;
    }
    if (lg_profiles_busy(r->profiles))
        return; /* on_profile_done will ask for the final one */
    r->final_requested = true;
    struct lg_load_counts c;
    lg_load_poll(r->load, lc_monotonic_ns(), &c, NULL);
    if (lg_profiles_fetch(r->profiles, elapsed_s(r, r->stop_ns), c.requests) != 0)
        finish(r);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct run *r = arg;
    if (r->stopped_by == NULL)
        r->stopped_by = sig == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)";
    signal((int)sig, SIG_DFL); /* a second one kills */
    event_del(r->sigint_ev);
    event_del(r->sigterm_ev);
    on_end(-1, EV_TIMEOUT, r);
}

static int resolve(const struct lg_url *url, struct sockaddr_storage *addr, socklen_t *len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%u", url->port);
    int rc = getaddrinfo(url->host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "loadgen: cannot resolve %s: %s\n", url->host, gai_strerror(rc));
        return -1;
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static void raise_fd_limit(unsigned connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < connections + 64u) {
        rl.rlim_cur = rl.rlim_max < connections + 64u ? rl.rlim_max : connections + 64u;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int lg_cmd_run(int argc, char **argv)
{
    struct options o = {0};
    struct run r = {.o = &o};
    int status = parse_args(argc, argv, &o);
    if (status != 0) {
        free(o.body);
        return status;
    }
    status = 1;
    int verdict_status = 0; /* --fail-on-leak: applied once every file is closed */
    struct lg_hist *all = lg_hist_new();
    r.interval = lg_hist_new();
    char err[512];
    size_t req_len = 0;
    char *request = build_request(&o, &req_len);
    struct lg_load_config cfg = {.request = request,
                                 .request_len = req_len,
                                 .head = strcmp(o.method, "HEAD") == 0,
                                 .rate_per_s = o.rate,
                                 .duration_ns = o.duration_ns,
                                 .timeout_ns = o.timeout_ns,
                                 .connections = o.connections,
                                 .threads = o.threads};
    if (all == NULL || r.interval == NULL || request == NULL) {
        fprintf(stderr, "loadgen: out of memory\n");
        goto out;
    }
    if (resolve(&o.url, &cfg.addr, &cfg.addr_len) != 0)
        goto out;
    if (o.out_dir != NULL && (r.timeline = lg_timeline_open(o.out_dir, err, sizeof(err))) == NULL) {
        fprintf(stderr, "loadgen: %s\n", err);
        goto out;
    }
    if (lg_load_probe((struct sockaddr *)&cfg.addr, cfg.addr_len, LG_PROBE_TIMEOUT_NS, err,
                      sizeof(err)) != 0) {
        fprintf(stderr, "loadgen: target %s is not answering: cannot connect to %s port %u: %s\n",
                o.url_text, o.url.host, o.url.port, err);
        goto out;
    }
    raise_fd_limit(o.connections + 4);
    r.base = event_base_new();
    if (r.base == NULL)
        goto out;
    r.tty = isatty(STDERR_FILENO);
    if (o.profile_url_text != NULL) {
        struct lg_profiles_config pc = {.host = o.profile_url.host,
                                        .port = o.profile_url.port,
                                        .profile_path = o.profile_url.path,
                                        .memstats_path = "/debug/memstats",
                                        .out_dir = o.out_dir,
                                        .timeout_ns = o.timeout_ns};
        r.profiles = lg_profiles_new(r.base, &pc, on_profile_done, &r);
        if (r.profiles == NULL) {
            fprintf(stderr, "loadgen: cannot set up the profile connection\n");
            goto out;
        }
    }
    r.load = lg_load_new(&cfg, err, sizeof(err));
    if (r.load == NULL) {
        fprintf(stderr, "loadgen: %s\n", err);
        goto out;
    }
    r.second_ev = evtimer_new(r.base, on_second, &r);
    r.end_ev = evtimer_new(r.base, on_end, &r);
    r.profile_ev = r.profiles ? evtimer_new(r.base, on_profile_tick, &r) : NULL;
    r.sigint_ev = evsignal_new(r.base, SIGINT, on_signal, &r);
    r.sigterm_ev = evsignal_new(r.base, SIGTERM, on_signal, &r);
    if (!r.second_ev || !r.end_ev || (r.profiles && !r.profile_ev) || !r.sigint_ev ||
        !r.sigterm_ev) {
        fprintf(stderr, "loadgen: out of memory\n");
        goto out;
    }
    evsignal_add(r.sigint_ev, NULL);
    evsignal_add(r.sigterm_ev, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (lg_load_start(r.load, &r.start_ns, err, sizeof(err)) != 0) {
        fprintf(stderr, "loadgen: %s\n", err);
        goto out;
    }
    int64_t now = lc_monotonic_ns();
    int64_t to_end = r.start_ns + o.duration_ns - now;
    struct timeval end_tv = {.tv_sec = to_end / LC_NS_PER_SEC,
                             .tv_usec = to_end % LC_NS_PER_SEC / 1000};
    evtimer_add(r.end_ev, &end_tv);
    if (o.duration_ns > LC_NS_PER_SEC) {
        int64_t to_second = r.start_ns + LC_NS_PER_SEC - now;
        struct timeval tv = {.tv_sec = to_second / LC_NS_PER_SEC,
                             .tv_usec = to_second % LC_NS_PER_SEC / 1000};
        evtimer_add(r.second_ev, &tv);
    }
    if (r.profiles) { /* the first profile at time zero */
        int64_t to_start = r.start_ns > now ? r.start_ns - now : 0;
        struct timeval tv = {.tv_sec = 0, .tv_usec = to_start / 1000};
        evtimer_add(r.profile_ev, &tv);
    }
    if (r.profiles)
        lg_profiles_fetch_memstats(r.profiles);
    event_base_dispatch(r.base);

    /* The report: whatever was gathered, even after a failure. */
    struct lg_load_counts counts;
    lg_load_totals(r.load, &counts, all);
    write_new_points(&r);
    size_t npoints = 0;
    const struct lg_profile_point *pts =
        r.profiles ? lg_profiles_points(r.profiles, &npoints) : NULL;
    struct lg_verdict verdict;
    struct lg_verdict_point *vp = calloc(npoints ? npoints : 1, sizeof(*vp));
    for (size_t i = 0; vp && i < npoints; i++)
        vp[i] = (struct lg_verdict_point){pts[i].t_s, (double)pts[i].inuse_bytes,
                                          (double)pts[i].requests, (double)pts[i].sample_period};
    lg_verdict_compute(vp, vp ? npoints : 0, &verdict);
    free(vp);
    struct lg_diff growth = {0};
    bool have_growth = false;
    if (npoints >= 2) {
        char derr[256];
        have_growth = lg_diff_compute(lg_profiles_first(r.profiles), lg_profiles_last(r.profiles),
                                      &growth, derr, sizeof(derr)) == 0;
    }
    int64_t load_end =
        r.stop_ns < r.start_ns + o.duration_ns ? r.stop_ns : r.start_ns + o.duration_ns;
    struct lg_summary s = {.url = o.url_text,
                           .label = o.label,
                           .method = o.method,
                           .out_dir = o.out_dir,
                           .rate_per_s = o.rate,
                           .connections = o.connections,
                           .threads = o.threads < o.connections ? o.threads : o.connections,
                           .duration_s = (double)(load_end - r.start_ns) / 1e9,
                           .counts = counts,
                           .latency = all,
                           .points = pts,
                           .npoints = npoints,
                           .profile_failures = r.profiles ? lg_profiles_failures(r.profiles) : 0,
                           .profile_skipped = r.profiles ? lg_profiles_skipped(r.profiles) : 0,
                           .memstats = r.profiles ? lg_profiles_memstats(r.profiles) : NULL,
                           .profiling = r.profiles != NULL,
                           .verdict = &verdict,
                           .growth = have_growth ? &growth : NULL,
                           .stopped_by = r.stopped_by};
    lg_summary_print(stdout, &s);
    fflush(stdout);
    status = r.fatal ? 1 : 0;
    if (o.out_dir != NULL) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/report.json", o.out_dir);
        if (lg_summary_write_json(path, &s) != 0) {
            fprintf(stderr, "loadgen: cannot write %s: %s\n", path, strerror(errno));
            status = 1;
        }
    }
    if (have_growth)
        lg_diff_free(&growth);
    if (r.fatal)
        fprintf(stderr, "loadgen: %s\n", r.fatal_msg);
    /* Requests that did not succeed: errors of every kind (a non-2xx response is one), and those
     * still without a response when the run ended. */
    uint64_t ok = counts.requests - counts.error[LG_ERR_STATUS];
    uint64_t failed = counts.errors + counts.unfinished;
    double failed_pct = ok + failed > 0 ? 100.0 * (double)failed / (double)(ok + failed) : 0;
    if (status == 0 && (ok == 0 || failed_pct > o.max_error_pct)) {
        if (ok == 0)
            fprintf(stderr,
                    "loadgen: no request succeeded (%" PRIu64 " failed): see the errors "
                    "above\n",
                    failed);
        else
            fprintf(stderr,
                    "loadgen: %" PRIu64 " of %" PRIu64 " requests failed (%.2f%%), above "
                    "--max-error-rate %.2f%%\n",
                    failed, ok + failed, failed_pct, o.max_error_pct);
        status = LG_EXIT_FAILED_REQUESTS;
    }
    if (o.fail_on_leak)
        verdict_status =
            lg_verdict_exit_status(r.profiles != NULL ? verdict.kind : LG_VERDICT_UNDECIDED);
out:
    if (lg_timeline_close(r.timeline) != 0 && status == 0) {
        fprintf(stderr, "loadgen: writing %s failed\n", o.out_dir);
        status = 1;
    }
    if (status == 0)
        status = verdict_status;
    lg_load_free(r.load);
    lg_profiles_free(r.profiles);
    if (r.second_ev)
        event_free(r.second_ev);
    if (r.end_ev)
        event_free(r.end_ev);
    if (r.profile_ev)
        event_free(r.profile_ev);
    if (r.sigint_ev)
        event_free(r.sigint_ev);
    if (r.sigterm_ev)
        event_free(r.sigterm_ev);
    if (r.base)
        event_base_free(r.base);
    lg_hist_free(all);
    lg_hist_free(r.interval);
    free(request);
    free(o.body);
    return status;
}
