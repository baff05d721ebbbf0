/*
 * fuzz_http_response: loadgen's streaming HTTP/1.1 response parser (lg_http) on what a hostile
 * or broken server sends on a load connection. The first byte chooses a HEAD or GET request
 * and the size of the pieces the rest is fed in; fed whole and fed in pieces, the parser must
 * agree (a response split across reads is the normal case), never consume more than it was
 * given, and report a status in 100..999 once a response is complete.
 */
#include "fuzz.h"
#include "lg_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    bool head = data[0] & 1;
    size_t step = (size_t)(data[0] >> 1) + 1; /* 1..128 bytes per read */
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    struct lg_http_parser whole;
    lg_http_init(&whole, head);
    size_t used = 0;
    int rc_whole = lg_http_feed(&whole, text, len, &used);
    FUZZ_CHECK(rc_whole >= -1 && rc_whole <= 1);
    if (rc_whole == 1) {
        FUZZ_CHECK(used <= len);
        FUZZ_CHECK(whole.status >= 200 && whole.status <= 999);
    } else if (rc_whole == 0) {
        FUZZ_CHECK(used == len);
        int eof = lg_http_eof(&whole);
        FUZZ_CHECK(eof == 1 || eof == -1);
    }

    struct lg_http_parser pieces;
    lg_http_init(&pieces, head);
    int rc = 0;
    size_t pos = 0;
    while (pos < len && rc == 0) {
        size_t n = len - pos < step ? len - pos : step, u = 0;
        rc = lg_http_feed(&pieces, text + pos, n, &u);
        FUZZ_CHECK(u <= n);
        pos += u;
    }
    FUZZ_CHECK(rc == rc_whole);
    if (rc == 1) {
        FUZZ_CHECK(pos == used);
        FUZZ_CHECK(pieces.status == whole.status && pieces.keep_alive == whole.keep_alive);
    }
    return 0;
}
