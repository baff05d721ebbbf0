/*
 * fuzz_env: the parsers of values from the environment and the command line: HEAPPROF_RATE,
 * HEAPPROF_SEED, HEAPPROF_MUTEX_FRACTION and HEAPPROF_BLOCK_RATE (hprof_parse_u64), durations
 * (lc_parse_duration_ns: HEAPPROF_INTERVAL, --ttl, --sweep-every, --duration, ...) and bounded
 * integers (lc_parse_u64: --entry-bytes, --threads, --rate, ...). Properties: a number accepted
 * is the number written (printed back it parses to itself), bounds are kept, and a duration
 * reads the same in nanoseconds as in its own unit.
 */
#include <inttypes.h>

#include "fuzz.h"
#include "hprof_collect.h"
#include "lc_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    char back[64];

    uint64_t u;
    if (hprof_parse_u64(text, &u) == 0) {
        snprintf(back, sizeof(back), "%" PRIu64, u);
        uint64_t again;
        FUZZ_CHECK(hprof_parse_u64(back, &again) == 0 && again == u);
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
    free(text);
    return 0;
}
