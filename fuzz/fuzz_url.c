/*
 * fuzz_url: loadgen's --url and --profile-url (lg_url_parse) and the HOST:PORT parser every
 * program's --listen, --debug-listen and HEAPPROF_HTTP go through (lc_parse_hostport). A URL it
 * accepts must be one loadgen can use as is: a host, a port, a path starting with '/' without
 * blanks, an authority for the Host header; and parsing "http://" + authority + path again
 * must give the same URL.
 */
#include "fuzz.h"
#include "lc_util.h"
#include "lg_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    struct lg_url url;
    char err[256] = "";
    if (lg_url_parse(text, &url, err, sizeof(err)) == 0) {
        FUZZ_CHECK(url.host[0] != '\0' && url.port != 0 && url.path[0] == '/');
        FUZZ_CHECK(strpbrk(url.path, " \r\n\t#") == NULL);
        FUZZ_CHECK(url.authority[0] != '\0' && strchr(url.authority, '/') == NULL);
        static char again_text[LG_URL_HOST_MAX + LG_URL_PATH_MAX + 16];
        snprintf(again_text, sizeof(again_text), "http://%s%s", url.authority, url.path);
        struct lg_url again;
        FUZZ_CHECK(lg_url_parse(again_text, &again, err, sizeof(err)) == 0);
        FUZZ_CHECK(strcmp(again.host, url.host) == 0 && again.port == url.port &&
                   strcmp(again.path, url.path) == 0);
    } else {
        FUZZ_CHECK(err[0] != '\0');
    }

    char host[64];
    uint16_t port = 0;
    if (lc_parse_hostport(text, host, sizeof(host), &port) == 0)
        FUZZ_CHECK(host[0] != '\0' && strlen(host) < sizeof(host));
    free(text);
    return 0;
}
