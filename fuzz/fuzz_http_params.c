/*
 * fuzz_http_params: the profiler's debug endpoints' parameters, read from what any client of the
 * debug port sends: the query string (?seconds=, ?debug=, ?gc= and whatever else, percent- and
 * plus-encoded) and the /debug/pprof/symbol request (addresses joined by '+'). hprof_query.c is
 * the code the endpoints run (hprof_http.c, hprof_pages.c), without a request or a listener.
 * Properties: a decoded value fits its buffer; seconds is 0 or 1..max; a parameter is found
 * in "name=value&..." when it is there.
 */
#include <inttypes.h>
#include <limits.h>

#include "fuzz.h"
#include "hprof_query.h"
#include "lc_util.h"

#define MAX_SECONDS 300 /* HPROF_HTTP_MAX_SECONDS */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *query = fuzz_cstr(data, size);
    static const char *const names[] = {"seconds", "debug", "gc", "sample_index", ""};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char small[4], value[64];
        memset(small, 'x', sizeof(small));
        int found = hprof_query_param(query, names[i], small, sizeof(small));
        FUZZ_CHECK(memchr(small, '\0', sizeof(small)) != NULL);
        FUZZ_CHECK(hprof_query_param(query, names[i], value, sizeof(value)) == found);
        FUZZ_CHECK(strlen(value) < sizeof(value));
        FUZZ_CHECK(found || value[0] == '\0');
        int64_t n;
        if (lc_parse_i64(value, INT64_MIN, INT64_MAX, &n) == 0) {
            /* ParseInt's grammar: what it accepts prints back the same, but for a '+' or
             * leading zeros. */
            char back[32];
            snprintf(back, sizeof(back), "%" PRId64, n);
            if (value[0] != '+' && value[0 + (value[0] == '-')] != '0')
                FUZZ_CHECK(strcmp(back, value) == 0);
        }
    }
    (void)hprof_query_debug(query);
    long seconds = -1;
    int rc = hprof_query_seconds(query, MAX_SECONDS, &seconds);
    FUZZ_CHECK(rc == 0 || rc == -1 || rc == -2);
    FUZZ_CHECK(rc == 0 ? seconds >= 0 && seconds <= MAX_SECONDS : seconds == 0);

    /* A query with the fuzzed value appended as seconds: found, whatever came before. */
    if (strchr(query, '&') == NULL && size < 200) {
        char q[256], v[256];
        snprintf(q, sizeof(q), "a=b&seconds=%s", query);
        FUZZ_CHECK(hprof_query_param(q, "seconds", v, sizeof(v)) == 1);
    }

    /* /debug/pprof/symbol: the words between '+', as hprof_pages.c walks them. */
    for (size_t at = 0; at < size;) {
        const char *plus = memchr(query + at, '+', size - at);
        size_t word_len = plus != NULL ? (size_t)(plus - (query + at)) : size - at;
        uint64_t pc = hprof_query_address(query + at, word_len);
        if (pc != 0)
            FUZZ_CHECK(word_len > 0 && query[at] >= '0' && query[at] <= '9');
        at += word_len + 1;
    }
    free(query);
    return 0;
}
