/*
 * fuzz_pcodec: the pprof decoder on what a profile server (or a saved file) sends: gzip'd or
 * raw protobuf, as pcodec_decode tells them apart. On every profile it accepts, the readers
 * loadgen runs on it (totals, string lookups, `loadgen diff` against nothing and against
 * itself) must hold up, and re-encoding it must give a profile that decodes again.
 * Seeds: real heap, allocs, CPU, threads and delta profiles, gzip'd and raw.
 */
#include <stdbool.h>
#include <stdio.h>

#include "fuzz.h"
#include "lg_diff.h"
#include "pcodec.h"

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    devnull = fopen("/dev/null", "w");
    return 0;
}

/* Does any message of p carry fields protobuf-c kept as unknown? protobuf-c accepts some tags
 * it cannot write back (a field number 0 out of an overlong key), and re-encoding copies them
 * verbatim; no caller of pcodec re-encodes a decoded profile, so the round trip below is only
 * asked of profiles without them. */
static bool has_unknown(const pcodec_profile *p)
{
    size_t n = p->base.n_unknown_fields;
    for (size_t i = 0; i < p->n_sample_type; i++)
        n += p->sample_type[i]->base.n_unknown_fields;
    for (size_t i = 0; i < p->n_sample; i++) {
        n += p->sample[i]->base.n_unknown_fields;
        for (size_t k = 0; k < p->sample[i]->n_label; k++)
            n += p->sample[i]->label[k]->base.n_unknown_fields;
    }
    for (size_t i = 0; i < p->n_mapping; i++)
        n += p->mapping[i]->base.n_unknown_fields;
    for (size_t i = 0; i < p->n_location; i++) {
        n += p->location[i]->base.n_unknown_fields;
        for (size_t k = 0; k < p->location[i]->n_line; k++)
            n += p->location[i]->line[k]->base.n_unknown_fields;
    }
    for (size_t i = 0; i < p->n_function; i++)
        n += p->function[i]->base.n_unknown_fields;
    if (p->period_type != NULL)
        n += p->period_type->base.n_unknown_fields;
    return n > 0;
}

static void check_diff(const pcodec_profile *base, const pcodec_profile *p)
{
    struct lg_diff d;
    char err[256] = "";
    if (lg_diff_compute(base, p, &d, err, sizeof(err)) != 0) {
        FUZZ_CHECK(err[0] != '\0'); /* a refusal says why */
        return;
    }
    if (base == p) {
        /* NEW - NEW: nothing grew. */
        FUZZ_CHECK(d.total_bytes == 0 && d.total_objects == 0);
        for (size_t i = 0; i < d.n; i++)
            FUZZ_CHECK(d.entries[i].flat_bytes == 0 && d.entries[i].cum_bytes == 0);
    }
    for (size_t i = 0; i < d.n; i++)
        FUZZ_CHECK(d.entries[i].function != NULL);
    lg_diff_print(devnull, &d, 0);
    lg_diff_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    pcodec_profile *p = pcodec_decode(data, size, err, sizeof(err));
    if (p == NULL) {
        FUZZ_CHECK(err[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(p->n_string_table > 0 && pcodec_string(p, 0)[0] == '\0');
    FUZZ_CHECK(pcodec_string(p, -1)[0] == '\0' && pcodec_string(p, INT64_MAX)[0] == '\0');
    for (size_t i = 0; i < p->n_sample_type; i++) {
        const char *type = pcodec_string(p, p->sample_type[i]->type);
        int index = pcodec_sample_index(p, type);
        FUZZ_CHECK(index >= 0 && (size_t)index <= i);
        (void)pcodec_total(p, type);
    }
    FUZZ_CHECK(pcodec_total(p, "no such sample type") == 0);
    check_diff(NULL, p);
    check_diff(p, p);

    uint8_t *gz = NULL;
    size_t gz_len = 0;
    if (!has_unknown(p) && pcodec_encode_gzip(p, &gz, &gz_len) == 0) {
        pcodec_profile *again = pcodec_decode(gz, gz_len, err, sizeof(err));
        FUZZ_CHECK(again != NULL);
        FUZZ_CHECK(again->n_sample == p->n_sample && again->n_string_table == p->n_string_table);
        pcodec_free(again);
        free(gz);
    }
    pcodec_free(p);
    return 0;
}
