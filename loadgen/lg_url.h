/*
 * lg_url: "http://HOST[:PORT][/PATH[?QUERY]]" split for a plain HTTP/1.1 client, parsed by
 * libevent's strict RFC 3986 parser. The port defaults to 80 and the path to "/"; an IPv6 host
 * is written in brackets. https, user:password@, fragments and port 0 are refused (loadgen
 * speaks plain HTTP to a service on a trusted network, like its debug port).
 */
#ifndef LG_URL_H
#define LG_URL_H

#include <stddef.h>
#include <stdint.h>

#define LG_URL_HOST_MAX 256
#define LG_URL_PATH_MAX 2048

struct lg_url {
    char host[LG_URL_HOST_MAX]; /* without brackets */
    uint16_t port;
    char path[LG_URL_PATH_MAX];          /* path and query, starting with '/' */
    char authority[LG_URL_HOST_MAX + 8]; /* for the Host header: host[:port], v6 bracketed */
};

/* 0, or -1 with a reason in err. */
int lg_url_parse(const char *text, struct lg_url *out, char *err, size_t errlen);

#endif
