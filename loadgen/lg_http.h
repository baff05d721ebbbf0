/*
 * lg_http: a streaming HTTP/1.1 response parser for the load connections, with no buffer of its
 * own beyond one header line. The load engine reads into one buffer per thread and feeds the
 * bytes here; the parser keeps only what it needs (status, body framing, keep-alive), so a
 * thousand connections cost a thousand small structs, not a thousand read buffers.
 *
 * Framing follows RFC 9112 section 6.3: no body for HEAD, 1xx, 204 and 304; chunked when
 * Transfer-Encoding says so; else Content-Length; else the body runs to EOF (and the connection
 * cannot be reused). Interim 1xx responses are skipped. Header lines longer than
 * LG_HTTP_LINE_MAX are truncated (only a few short headers matter); a head over
 * LG_HTTP_HEAD_MAX bytes, a bad status line, a bad length or chunk size, and a chunk-size or
 * trailer line of LG_HTTP_LINE_MAX - 1 bytes or more are protocol errors, whatever the reads
 * that bring them.
 */
#ifndef LG_HTTP_H
#define LG_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LG_HTTP_LINE_MAX 256         /* bytes kept of one status or header line */
#define LG_HTTP_HEAD_MAX (64u << 10) /* bytes: a status line + headers larger is an error */

enum lg_http_state {
    LG_HTTP_STATUS,
    LG_HTTP_HEADERS,
    LG_HTTP_BODY,     /* Content-Length bytes remain */
    LG_HTTP_BODY_EOF, /* body until the server closes */
    LG_HTTP_CHUNK_SIZE,
    LG_HTTP_CHUNK_DATA,
    LG_HTTP_CHUNK_END, /* the CRLF after a chunk's data */
    LG_HTTP_TRAILERS,
    LG_HTTP_DONE,
};

struct lg_http_parser {
    enum lg_http_state state;
    int status;        /* e.g. 200, once the status line is read */
    bool head_request; /* the request was HEAD: never a body */
    bool keep_alive;   /* the connection may carry another request */
    bool chunked;
    int64_t content_length; /* -1 when absent */
    uint64_t remaining;     /* body or chunk bytes still to skip */
    size_t head_bytes;
    size_t line_len;
    char line[LG_HTTP_LINE_MAX];
};

void lg_http_init(struct lg_http_parser *p, bool head_request);

/* Feed bytes. Returns 1 when a complete response has been read (*used bytes consumed; bytes after
 * it belong to no request of ours), 0 when more is needed (all consumed), -1 on a protocol
 * error. */
int lg_http_feed(struct lg_http_parser *p, const char *data, size_t len, size_t *used);

/* The server closed the connection: 1 when that completes the response (body to EOF), else -1. */
int lg_http_eof(struct lg_http_parser *p);

#endif
