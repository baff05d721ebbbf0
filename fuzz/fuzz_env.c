/*
 * fuzz_env: the parsers of values from the environment and the command line: HEAPPROF_RATE,
 * HEAPPROF_SEED, HEAPPROF_MUTEX_FRACTION and HEAPPROF_BLOCK_RATE (lc_parse_u64), durations
 * (lc_parse_duration_ns: --ttl, --sweep-every, --duration, ...), bounded integers
 * (lc_parse_u64: --entry-bytes, --threads, --rate, ...) and HEAPPROF_INTERVAL with its floor
 * (hprof_query_interval). Properties: a number accepted is the number written (printed back it
 * parses to itself), bounds are kept, a duration reads the same in nanoseconds as in its own
 * unit, and an interval is never below the floor.
 */
#include <inttypes.h>

#include "fuzz.h"
#include <stdbool.h>

#include "heapprof.h"
#include "hprof_query.h"
#include "lc_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    char back[64];

    uint64_t u;
    if (lc_parse_u64(text, 0, UINT64_MAX, &u) == 0) {
        snprintf(back, sizeof(back), "%" PRIu64, u);
        uint64_t again;
        FUZZ_CHECK(lc_parse_u64(back, 0, UINT64_MAX, &again) == 0 && again == u);
        FUZZ_CHECK(text[0] >= '0' && text[0] <= '9');
    }

    if (lc_parse_u64(text, 1, 1000000, &u) == 0)
        FUZZ_CHECK(u >= 1 && u <= 1000000);

    int64_t ns;
    if (lc_parse_duration_ns(text, &ns) == 0) {
        /* The same duration written in nanoseconds: exact while a double holds it exactly. */
        if (ns > -(INT64_C(1) << 53) && ns < (INT64_C(1) << 53)) {
            snprintf(back, sizeof(back), "%" PRId64 "ns", ns);
            int64_t again;
            FUZZ_CHECK(lc_parse_duration_ns(back, &again) == 0 && again == ns);
        }
    }

    /* HEAPPROF_INTERVAL: a positive duration, raised to the floor when shorter. */
    int64_t interval = -1;
    int rc = hprof_query_interval(text, &interval);
    int64_t dur;
    bool positive = lc_parse_duration_ns(text, &dur) == 0 && dur > 0;
    FUZZ_CHECK(rc == (!positive ? -1 : dur < HEAPPROF_INTERVAL_MIN_NS ? 1 : 0));
    if (rc >= 0)
        FUZZ_CHECK(interval == (rc == 1 ? HEAPPROF_INTERVAL_MIN_NS : dur));
    free(text);
    return 0;
}
