/*
 * lg_http: see lg_http.h. Lines are gathered with memchr and processed whole; bodies and chunk
 * data are skipped in bulk, so the cost per response is a few hundred bytes of header work.
 */
#include "lg_http.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

void lg_http_init(struct lg_http_parser *p, bool head_request)
{
    p->state = LG_HTTP_STATUS;
    p->status = 0;
    p->head_request = head_request;
    p->keep_alive = true;
    p->chunked = false;
    p->content_length = -1;
    p->remaining = 0;
    p->head_bytes = 0;
    p->line_len = 0;
}

/* Case-insensitive search of a token in a header value ("close" in "Keep-Alive, close"). */
static bool value_has(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *s = value; *s; s++)
        if (strncasecmp(s, token, n) == 0)
            return true;
    return false;
}

static int parse_status(struct lg_http_parser *p, const char *line)
{
    /* "HTTP/1.1 200 OK": version, one space, exactly three digits, then space or end. */
    if (strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') || line[8] != ' ')
        return -1;
    const char *c = line + 9;
    if (!isdigit((unsigned char)c[0]) || !isdigit((unsigned char)c[1]) ||
        !isdigit((unsigned char)c[2]) || (c[3] != ' ' && c[3] != '\0'))
        return -1;
    p->status = (c[0] - '0') * 100 + (c[1] - '0') * 10 + (c[2] - '0');
    p->keep_alive = line[7] == '1'; /* HTTP/1.0 closes unless it says keep-alive */
    return 0;
}

static int parse_header(struct lg_http_parser *p, char *line)
{
    char *colon = strchr(line, ':');
    if (colon == NULL)
        return -1;
    *colon = '\0';
    char *value = colon + 1;
    while (*value == ' ' || *value == '\t')
        value++;
    if (strcasecmp(line, "Content-Length") == 0) {
        if (!isdigit((unsigned char)*value))
            return -1;
        int64_t n = 0;
        for (; isdigit((unsigned char)*value); value++) {
            if (n > (INT64_MAX - 9) / 10)
                return -1;
            n = n * 10 + (*value - '0');
        }
        while (*value == ' ' || *value == '\t')
            value++;
        if (*value != '\0' || (p->content_length >= 0 && p->content_length != n))
            return -1;
        p->content_length = n;
    } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
        p->chunked = value_has(value, "chunked");
    } else if (strcasecmp(line, "Connection") == 0) {
        if (value_has(value, "close"))
            p->keep_alive = false;
        else if (value_has(value, "keep-alive"))
            p->keep_alive = true;
    }
    return 0;
}

/* The head is over: choose how the body is framed. */
static int end_of_head(struct lg_http_parser *p)
{
    if (p->status < 200) {
        if (p->status == 101)
            return -1; /* we never ask to switch protocols */
        bool head = p->head_request;
        lg_http_init(p, head); /* interim response: the real one follows */
        return 0;
    }
    if (p->head_request || p->status == 204 || p->status == 304) {
        p->state = LG_HTTP_DONE;
    } else if (p->chunked) {
        p->state = LG_HTTP_CHUNK_SIZE;
    } else if (p->content_length >= 0) {
        p->remaining = (uint64_t)p->content_length;
        p->state = p->remaining ? LG_HTTP_BODY : LG_HTTP_DONE;
    } else {
        p->keep_alive = false;
        p->state = LG_HTTP_BODY_EOF;
    }
    return 0;
}

static int parse_chunk_size(struct lg_http_parser *p, const char *line)
{
    uint64_t n = 0;
    int digits = 0;
    for (; isxdigit((unsigned char)*line); line++, digits++) {
        if (digits >= 15)
            return -1; /* > 2^60 bytes: nonsense */
        int c = tolower((unsigned char)*line);
        n = n * 16 + (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    if (digits == 0 || (*line != '\0' && *line != ';' && *line != ' ' && *line != '\t'))
        return -1;
    p->remaining = n;
    p->state = n ? LG_HTTP_CHUNK_DATA : LG_HTTP_TRAILERS;
    return 0;
}

static int process_line(struct lg_http_parser *p)
{
    char *line = p->line;
    size_t n = p->line_len;
    if (n > 0 && line[n - 1] == '\r')
        n--;
    line[n] = '\0';
    p->line_len = 0;
    switch (p->state) {
    case LG_HTTP_STATUS:
        if (parse_status(p, line) != 0)
            return -1;
        p->state = LG_HTTP_HEADERS;
        return 0;
    case LG_HTTP_HEADERS:
        return n == 0 ? end_of_head(p) : parse_header(p, line);
    case LG_HTTP_CHUNK_SIZE:
        return parse_chunk_size(p, line);
    case LG_HTTP_CHUNK_END:
        if (n != 0)
            return -1;
        p->state = LG_HTTP_CHUNK_SIZE;
        return 0;
    case LG_HTTP_TRAILERS:
        if (n == 0)
            p->state = LG_HTTP_DONE;
        return 0;
    default:
        return -1;
    }
}

static bool in_head(const struct lg_http_parser *p)
{
    return p->state == LG_HTTP_STATUS || p->state == LG_HTTP_HEADERS;
}

int lg_http_feed(struct lg_http_parser *p, const char *data, size_t len, size_t *used)
{
    size_t pos = 0;
    while (pos < len && p->state != LG_HTTP_DONE) {
        size_t avail = len - pos;
        switch (p->state) {
        case LG_HTTP_BODY:
        case LG_HTTP_CHUNK_DATA: {
            size_t take = avail < p->remaining ? avail : (size_t)p->remaining;
            pos += take;
            p->remaining -= take;
            if (p->remaining == 0)
                p->state = p->state == LG_HTTP_BODY ? LG_HTTP_DONE : LG_HTTP_CHUNK_END;
            break;
        }
        case LG_HTTP_BODY_EOF:
            pos = len;
            break;
        default: {
            const char *nl = memchr(data + pos, '\n', avail);
            size_t take = nl ? (size_t)(nl - (data + pos)) : avail;
            if (in_head(p)) {
                p->head_bytes += take + (nl != NULL);
                if (p->head_bytes > LG_HTTP_HEAD_MAX)
                    return -1;
            }
            size_t room = LG_HTTP_LINE_MAX - 1 - p->line_len;
            /* A chunk-size or trailer line this long is not HTTP: refused by its length, so
             * the answer does not depend on where the reads split it. */
            if (!in_head(p) && take >= room)
                return -1;
            size_t copy = take < room ? take : room; /* a long header line keeps its start */
            memcpy(p->line + p->line_len, data + pos, copy);
            p->line_len += copy;
            pos += take;
            if (nl != NULL) {
                pos++;
                if (process_line(p) != 0)
                    return -1;
            }
            break;
        }
        }
    }
    *used = pos;
    return p->state == LG_HTTP_DONE ? 1 : 0;
}

int lg_http_eof(struct lg_http_parser *p)
{
    if (p->state == LG_HTTP_BODY_EOF) {
        p->state = LG_HTTP_DONE;
        return 1;
    }
    return p->state == LG_HTTP_DONE ? 1 : -1;
}
