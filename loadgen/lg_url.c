/* lg_url: see lg_url.h. The HOST[:PORT] part goes through lc_parse_hostport, the shared parser. */
#include "lg_url.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lc_util.h"

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
    const char *auth = text + 7;
    const char *slash = strchr(auth, '/');
    size_t alen = slash ? (size_t)(slash - auth) : strlen(auth);
    const char *path = slash ? slash : "/";
    if (alen == 0 || alen >= LG_URL_HOST_MAX) {
        snprintf(err, errlen, "%s", "the URL has no host (or one too long)");
        return -1;
    }
    if (strlen(path) >= LG_URL_PATH_MAX || strpbrk(path, " \r\n\t#") != NULL) {
        snprintf(err, errlen, "%s", "the URL path is too long or has blanks or a fragment");
        return -1;
    }
    char hostport[LG_URL_HOST_MAX + 8];
    memcpy(hostport, auth, alen);
    hostport[alen] = '\0';
    if (memchr(hostport, '@', alen) != NULL) {
        snprintf(err, errlen, "%s", "user:password@ in URLs is not supported");
        return -1;
    }
    /* A port is present when the authority ends in ":digits" (after any ']'). */
    const char *bracket = strrchr(hostport, ']');
    const char *colon = strrchr(hostport, ':');
    int has_port = colon != NULL && (bracket == NULL || colon > bracket) &&
                   (hostport[0] == '[' || strchr(hostport, ':') == colon);
    if (has_port) {
        if (lc_parse_hostport(hostport, out->host, sizeof(out->host), &out->port) != 0 ||
            out->port == 0) {
            snprintf(err, errlen, "bad host:port \"%s\"", hostport);
            return -1;
        }
    } else {
        size_t hl = strlen(hostport);
        if (hostport[0] == '[') {
            if (hl < 3 || hostport[hl - 1] != ']') {
                snprintf(err, errlen, "bad host \"%s\"", hostport);
                return -1;
            }
            memcpy(out->host, hostport + 1, hl - 2);
            out->host[hl - 2] = '\0';
        } else if (strchr(hostport, ':') != NULL) {
            snprintf(err, errlen, "bad host \"%s\" (IPv6 hosts go in brackets)", hostport);
            return -1;
        } else {
            memcpy(out->host, hostport, hl + 1);
        }
        out->port = 80;
    }
    if (out->host[0] == '\0') {
        snprintf(err, errlen, "%s", "the URL has no host");
        return -1;
    }
    snprintf(out->path, sizeof(out->path), "%s", path);
    snprintf(out->authority, sizeof(out->authority), "%s", hostport);
    return 0;
}
