/*
 * lg_profiles: see lg_profiles.h. libevent's evhttp client does the HTTP here: this path runs a
 * few times a second at most, and evhttp handles chunked bodies, timeouts and reconnects for us.
 * The done callback runs after every profile fetch (success or not) so the caller can sequence
 * the final fetch and the end of the run.
 */
#include "lg_profiles.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_util.h"
#include "lg_json.h"

#define LG_PROFILE_MAX_BYTES (256u << 20) /* a larger answer is not a profile we can use */

struct lg_profiles {
    struct event_base *base;
    struct lg_profiles_config cfg;
    char *host, *profile_path, *memstats_path, *out_dir;
    struct evhttp_connection *conn;
    lg_profiles_done_cb done;
    void *done_arg;
    bool busy, memstats_busy;
    double pending_t_s;
    uint64_t pending_requests;
    enum evhttp_request_error last_error;
    bool had_error;
    struct lg_profile_point *points;
    size_t n, cap;
    unsigned attempts, failures, skipped;
    struct lg_memstats memstats;
    char fatal[8192]; /* big enough for a path and a URL: messages are never cut */
    pcodec_profile *first, *last;
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

struct lg_profiles *lg_profiles_new(struct event_base *base, const struct lg_profiles_config *cfg,
                                    lg_profiles_done_cb done, void *done_arg)
{
    struct lg_profiles *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->base = base;
    p->cfg = *cfg;
    p->host = strdup(cfg->host);
    p->profile_path = strdup(cfg->profile_path);
    p->memstats_path = dup_or_null(cfg->memstats_path);
    p->out_dir = dup_or_null(cfg->out_dir);
    p->done = done;
    p->done_arg = done_arg;
    if (p->host == NULL || p->profile_path == NULL || (cfg->memstats_path && !p->memstats_path) ||
        (cfg->out_dir && !p->out_dir))
        goto err;
    p->conn = evhttp_connection_base_new(base, NULL, p->host, cfg->port);
    if (p->conn == NULL)
        goto err;
    struct timeval tv = {.tv_sec = (time_t)(cfg->timeout_ns / LC_NS_PER_SEC),
                         .tv_usec = (suseconds_t)(cfg->timeout_ns % LC_NS_PER_SEC / 1000)};
    evhttp_connection_set_timeout_tv(p->conn, &tv);
    evhttp_connection_set_retries(p->conn, 0);
    evhttp_connection_set_max_body_size(p->conn, LG_PROFILE_MAX_BYTES);
    return p;
err:
    lg_profiles_free(p);
    return NULL;
}

void lg_profiles_free(struct lg_profiles *p)
{
    if (p == NULL)
        return;
    if (p->conn)
        evhttp_connection_free(p->conn);
    pcodec_free(p->first);
    pcodec_free(p->last);
    free(p->points);
    free(p->host);
    free(p->profile_path);
    free(p->memstats_path);
    free(p->out_dir);
    free(p);
}

static const char *request_error_name(enum evhttp_request_error e)
{
    switch (e) {
    case EVREQ_HTTP_TIMEOUT:
        return "timed out";
    case EVREQ_HTTP_EOF:
        return "connection closed or refused";
    case EVREQ_HTTP_INVALID_HEADER:
        return "invalid HTTP response";
    case EVREQ_HTTP_BUFFER_ERROR:
        return "read or write error";
    case EVREQ_HTTP_DATA_TOO_LONG:
        return "response too large";
    default:
        return "request failed";
    }
}

static void on_request_error(enum evhttp_request_error e, void *arg)
{
    struct lg_profiles *p = arg;
    p->last_error = e;
    p->had_error = true;
}

/* Save a profile's bytes as DIR/heap-NNNN.pb.gz. */
static int save_profile(struct lg_profiles *p, unsigned seq, const void *data, size_t len)
{
    if (p->out_dir == NULL)
        return 0;
    char path[4096];
    snprintf(path, sizeof(path), "%s/heap-%04u.pb.gz", p->out_dir, seq);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        goto err;
    size_t wrote = fwrite(data, 1, len, f);
    if (fclose(f) != 0 || wrote != len)
        goto err;
    return 0;
err:
    snprintf(p->fatal, sizeof(p->fatal), "cannot write %s: %s", path, strerror(errno));
    return -1;
}

/* One profile answer (or failure). Returns with p->fatal set when the run cannot go on. */
static void handle_profile(struct lg_profiles *p, struct evhttp_request *req)
{
    int code = req ? evhttp_request_get_response_code(req) : 0;
    bool first = p->attempts == 1;
    char where[600];
    snprintf(where, sizeof(where), "http://%s:%u%s", p->host, p->cfg.port, p->profile_path);
    if (code != 200) {
        char why[64];
        if (code == 0)
            snprintf(why, sizeof(why), "%s",
                     p->had_error ? request_error_name(p->last_error) : "no answer");
        else
            snprintf(why, sizeof(why), "HTTP %d", code);
        p->failures++;
        if (first)
            snprintf(p->fatal, sizeof(p->fatal), "profile URL %s does not answer pprof: %s", where,
                     why);
        else
            fprintf(stderr, "loadgen: warning: heap profile at %.1fs failed: %s\n", p->pending_t_s,
                    why);
        return;
    }
    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(body);
    const unsigned char *data = evbuffer_pullup(body, -1);
    char err[256] = "empty answer";
    pcodec_profile *profile = len ? pcodec_decode(data, len, err, sizeof(err)) : NULL;
    if (profile == NULL || pcodec_sample_index(profile, "inuse_space") < 0) {
        if (profile != NULL)
            snprintf(err, sizeof(err), "a profile without inuse_space (not a heap profile)");
        pcodec_free(profile);
        snprintf(p->fatal, sizeof(p->fatal), "profile URL %s does not answer pprof: %s", where,
                 err);
        return;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct lg_profile_point *bigger = realloc(p->points, cap * sizeof(*bigger));
        if (bigger == NULL) {
            pcodec_free(profile);
            snprintf(p->fatal, sizeof(p->fatal), "out of memory");
            return;
        }
        p->points = bigger;
        p->cap = cap;
    }
    unsigned seq = (unsigned)p->n;
    if (save_profile(p, seq, data, len) != 0) {
        pcodec_free(profile);
        return;
    }
    struct lg_profile_point *pt = &p->points[p->n++];
    pt->seq = seq;
    pt->t_s = p->pending_t_s;
    pt->requests = p->pending_requests;
    pt->inuse_bytes = pcodec_total(profile, "inuse_space");
    pt->inuse_objects = pcodec_total(profile, "inuse_objects");
    /* A period of 1 byte samples every allocation: as exact as a profile gets. */
    pt->sample_period = profile->period > 1 ? profile->period : 0;
    if (p->first == NULL) {
        p->first = profile;
    } else {
        pcodec_free(p->last);
        p->last = profile;
    }
}

static void on_profile(struct evhttp_request *req, void *arg)
{
    struct lg_profiles *p = arg;
    handle_profile(p, req);
    p->busy = false;
    if (p->done)
        p->done(p->done_arg);
}

int lg_profiles_fetch(struct lg_profiles *p, double t_s, uint64_t requests)
{
    if (p->busy) {
        p->skipped++;
        return -1;
    }
    struct evhttp_request *req = evhttp_request_new(on_profile, p);
    if (req == NULL)
        return -1;
    evhttp_request_set_error_cb(req, on_request_error);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", p->host);
    p->had_error = false;
    p->pending_t_s = t_s;
    p->pending_requests = requests;
    p->attempts++;
    if (evhttp_make_request(p->conn, req, EVHTTP_REQ_GET, p->profile_path) != 0) {
        /* evhttp frees the request on failure */
        p->failures++;
        if (p->attempts == 1)
            snprintf(p->fatal, sizeof(p->fatal), "cannot request the profile URL");
        return -1;
    }
    p->busy = true;
    return 0;
}

static void on_memstats(struct evhttp_request *req, void *arg)
{
    struct lg_profiles *p = arg;
    p->memstats_busy = false;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (code == 404) {
        p->memstats.missing = true;
        return;
    }
    if (code != 200)
        return;
    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(body);
    const char *json = (const char *)evbuffer_pullup(body, -1);
    if (json == NULL)
        return;
    double v;
    if (lg_json_number(json, len, "rss_bytes", &v) == 0) {
        p->memstats.have_rss = true;
        p->memstats.rss_bytes = v;
    }
    static const char *const glibc_keys[] = LG_MEMSTATS_GLIBC_KEYS;
    for (size_t i = 0; i < sizeof(glibc_keys) / sizeof(glibc_keys[0]); i++) {
        if (lg_json_number(json, len, glibc_keys[i], &v) == 0) {
            p->memstats.have_glibc = true;
            p->memstats.glibc_bytes = v;
            break;
        }
    }
}

void lg_profiles_fetch_memstats(struct lg_profiles *p)
{
    if (p->memstats_path == NULL || p->memstats.missing || p->memstats_busy)
        return;
    struct evhttp_request *req = evhttp_request_new(on_memstats, p);
    if (req == NULL)
        return;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", p->host);
    if (evhttp_make_request(p->conn, req, EVHTTP_REQ_GET, p->memstats_path) == 0)
        p->memstats_busy = true;
}

bool lg_profiles_busy(const struct lg_profiles *p)
{
    return p->busy;
}

const struct lg_profile_point *lg_profiles_points(const struct lg_profiles *p, size_t *n)
{
    *n = p->n;
    return p->points;
}

const struct lg_memstats *lg_profiles_memstats(const struct lg_profiles *p)
{
    return &p->memstats;
}

const char *lg_profiles_fatal(const struct lg_profiles *p)
{
    return p->fatal[0] ? p->fatal : NULL;
}

unsigned lg_profiles_failures(const struct lg_profiles *p)
{
    return p->failures;
}

unsigned lg_profiles_skipped(const struct lg_profiles *p)
{
    return p->skipped;
}

const pcodec_profile *lg_profiles_first(const struct lg_profiles *p)
{
    return p->first;
}

const pcodec_profile *lg_profiles_last(const struct lg_profiles *p)
{
    return p->last ? p->last : p->first;
}
