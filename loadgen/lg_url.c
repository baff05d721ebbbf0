/*
 * lg_url: see lg_url.h. The URL is parsed by libevent's evhttp_uri_parse_with_flags (strict
 * RFC 3986: it refuses blanks, control characters, bad percent-escapes and bad ports), and what
 * loadgen cannot use is refused after it: a scheme other than http, user:password@, a
 * fragment, an empty host, port 0, a host or a path too long for struct lg_url.
 */
#include "lg_url.h"

#include <event2/http.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int lg_url_parse(const char *text, struct lg_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (text == NULL || strncasecmp(text, "http://", 7) != 0) {
        snprintf(err, errlen, "%s",
                 text && strncasecmp(text, "https://", 8) == 0
                     ? "https is not supported (plain http:// only)"
                     : "a URL must start with http://");
        return -1;
    }
    struct evhttp_uri *uri = evhttp_uri_parse_with_flags(text, 0);
    if (uri == NULL) {
        snprintf(err, errlen, "%s",
                 "not a valid URL (blanks, control characters, a bad %-escape or a bad port?)");
        return -1;
    }
    int rc = -1;
    const char *host = evhttp_uri_get_host(uri);
    const char *path = evhttp_uri_get_path(uri);
    const char *query = evhttp_uri_get_query(uri);
    int port = evhttp_uri_get_port(uri);
    size_t hl = host != NULL ? strlen(host) : 0;
    if (evhttp_uri_get_userinfo(uri) != NULL) {
        snprintf(err, errlen, "%s", "user:password@ in URLs is not supported");
        goto out;
    }
    if (evhttp_uri_get_fragment(uri) != NULL) {
        snprintf(err, errlen, "%s", "the URL has a fragment (#...)");
        goto out;
    }
    if (hl == 0 || hl >= LG_URL_HOST_MAX) {
        snprintf(err, errlen, "%s", "the URL has no host (or one too long)");
        goto out;
    }
    if (port == 0) {
        snprintf(err, errlen, "bad port 0 in \"%s\"", text);
        goto out;
    }
    /* An IPv6 literal keeps its brackets in libevent's host: the address goes without. */
    if (host[0] == '[') {
        if (hl < 3 || host[hl - 1] != ']') {
            snprintf(err, errlen, "bad host \"%s\"", host);
            goto out;
        }
        memcpy(out->host, host + 1, hl - 2);
        out->host[hl - 2] = '\0';
    } else {
        memcpy(out->host, host, hl + 1);
    }
    out->port = port < 0 ? 80 : (uint16_t)port;
    int n = snprintf(out->path, sizeof(out->path), "%s%s%s%s",
                     path != NULL && path[0] == '/' ? "" : "/", path != NULL ? path : "",
                     query != NULL ? "?" : "", query != NULL ? query : "");
    if (n < 0 || (size_t)n >= sizeof(out->path)) {
        snprintf(err, errlen, "%s", "the URL path is too long");
        goto out;
    }
    /* For the Host header: the host as written, and the port when one was written. */
    if (port < 0)
        snprintf(out->authority, sizeof(out->authority), "%s", host);
    else
        snprintf(out->authority, sizeof(out->authority), "%s:%d", host, port);
    rc = 0;
out:
    evhttp_uri_free(uri);
    return rc;
}
