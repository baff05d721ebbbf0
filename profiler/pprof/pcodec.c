/*
 * pcodec: see pcodec.h. gzip is zlib's (windowBits 16 + MAX_WBITS selects the gzip wrapper that
 * pprof expects); protobuf is protobuf-c's generated code with its default allocator. Inputs
 * are untrusted (a profile comes over HTTP), so sizes are bounded: a decompressed profile over
 * PCODEC_MAX_RAW_BYTES is refused rather than allocated.
 */
#include "pcodec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* bytes: a profile that decompresses to more is refused before more is allocated (a gzip bomb
 * of 1 MB can expand to 1 GiB); the largest real heap profile we have seen is a few MiB. */
#define PCODEC_MAX_RAW_BYTES  (64u << 20)
#define PCODEC_MAX_FILE_BYTES (256u << 20)

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", msg);
}

/* Inflate a gzip stream into a new buffer of at most PCODEC_MAX_RAW_BYTES. Returns 0, -1 (not
 * gzip, or truncated) or -2 (larger than the cap: stopped there). */
static int gunzip(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
    int status = -1;
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return -1;
    size_t cap = in_len < PCODEC_MAX_RAW_BYTES / 4 ? in_len * 4 + 4096 : PCODEC_MAX_RAW_BYTES;
    size_t len = 0;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        goto err;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)in_len;
    for (;;) {
        if (len == cap) {
            if (cap >= PCODEC_MAX_RAW_BYTES) {
                status = -2;
                goto err;
            }
            cap = cap * 2 < PCODEC_MAX_RAW_BYTES ? cap * 2 : PCODEC_MAX_RAW_BYTES;
            uint8_t *bigger = realloc(buf, cap);
            if (bigger == NULL)
                goto err;
            buf = bigger;
        }
        zs.next_out = buf + len;
        zs.avail_out = (uInt)(cap - len);
        int rc = inflate(&zs, Z_NO_FLUSH);
        len = cap - zs.avail_out;
        if (rc == Z_STREAM_END)
            break;
        if (rc != Z_OK && !(rc == Z_BUF_ERROR && zs.avail_out == 0))
            goto err;
        if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0)
            goto err; /* truncated stream */
    }
    inflateEnd(&zs);
    *out = buf;
    *out_len = len;
    return 0;
err:
    inflateEnd(&zs);
    free(buf);
    return status;
}

pcodec_profile *pcodec_decode(const void *data, size_t len, char *err, size_t errlen)
{
    const uint8_t *bytes = data;
    uint8_t *raw = NULL;
    size_t raw_len = len;
    if (len >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) {
        int rc = gunzip(bytes, len, &raw, &raw_len);
        if (rc == -2) {
            char msg[128];
            snprintf(msg, sizeof(msg), "decompresses to more than %u MiB: refused (a gzip bomb?)",
                     PCODEC_MAX_RAW_BYTES >> 20);
            set_err(err, errlen, msg);
            return NULL;
        }
        if (rc != 0) {
            set_err(err, errlen, "not a valid gzip stream");
            return NULL;
        }
        bytes = raw;
    }
    pcodec_profile *profile = perftools__profiles__profile__unpack(NULL, raw_len, bytes);
    free(raw);
    if (profile == NULL) {
        set_err(err, errlen, "not a pprof profile (protobuf decoding failed)");
        return NULL;
    }
    if (profile->n_string_table == 0 || profile->string_table[0][0] != '\0') {
        set_err(err, errlen, "not a pprof profile (string_table[0] must be \"\")");
        pcodec_free(profile);
        return NULL;
    }
    return profile;
}

pcodec_profile *pcodec_load_file(const char *path, char *err, size_t errlen)
{
    char msg[512];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(msg, sizeof(msg), "%s: %s", path, strerror(errno));
        set_err(err, errlen, msg);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    while (buf != NULL) {
        if (len == cap) {
            uint8_t *bigger = cap < PCODEC_MAX_FILE_BYTES ? realloc(buf, cap * 2) : NULL;
            if (bigger == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    int read_failed = ferror(f);
    fclose(f);
    if (buf == NULL || read_failed) {
        free(buf);
        snprintf(msg, sizeof(msg), "%s: cannot read (too large or I/O error)", path);
        set_err(err, errlen, msg);
        return NULL;
    }
    pcodec_profile *profile = pcodec_decode(buf, len, msg, sizeof(msg));
    free(buf);
    if (profile == NULL && err != NULL) {
        char full[600];
        snprintf(full, sizeof(full), "%s: %s", path, msg);
        set_err(err, errlen, full);
    }
    return profile;
}

void pcodec_free(pcodec_profile *profile)
{
    if (profile != NULL)
        perftools__profiles__profile__free_unpacked(profile, NULL);
}

int pcodec_encode_gzip(const pcodec_profile *profile, uint8_t **out, size_t *out_len)
{
    size_t raw_len = perftools__profiles__profile__get_packed_size(profile);
    uint8_t *raw = malloc(raw_len ? raw_len : 1);
    if (raw == NULL)
        return -1;
    perftools__profiles__profile__pack(profile, raw);

    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    /* Level 1, as Go's runtime/pprof writes profiles: zlib's time is most of an encode, and
     * level 6 would only shave a few percent off a profile that is downloaded, not stored. */
    if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        free(raw);
        return -1;
    }
    size_t cap = deflateBound(&zs, raw_len);
    uint8_t *gz = malloc(cap);
    if (gz == NULL) {
        deflateEnd(&zs);
        free(raw);
        return -1;
    }
    zs.next_in = raw;
    zs.avail_in = (uInt)raw_len;
    zs.next_out = gz;
    zs.avail_out = (uInt)cap;
    int rc = deflate(&zs, Z_FINISH); /* deflateBound guarantees one call suffices */
    size_t gz_len = cap - zs.avail_out;
    deflateEnd(&zs);
    free(raw);
    if (rc != Z_STREAM_END) {
        free(gz);
        return -1;
    }
    *out = gz;
    *out_len = gz_len;
    return 0;
}

const char *pcodec_string(const pcodec_profile *profile, int64_t i)
{
    if (i < 0 || (size_t)i >= profile->n_string_table)
        return "";
    return profile->string_table[i];
}

int pcodec_sample_index(const pcodec_profile *profile, const char *type_name)
{
    for (size_t i = 0; i < profile->n_sample_type; i++)
        if (strcmp(pcodec_string(profile, profile->sample_type[i]->type), type_name) == 0)
            return (int)i;
    return -1;
}

int64_t pcodec_total(const pcodec_profile *profile, const char *type_name)
{
    int index = pcodec_sample_index(profile, type_name);
    if (index < 0)
        return 0;
    /* Saturating: a crafted profile's values must not overflow (undefined behaviour). */
    int64_t total = 0;
    for (size_t i = 0; i < profile->n_sample; i++)
        if ((size_t)index < profile->sample[i]->n_value &&
            __builtin_add_overflow(total, profile->sample[i]->value[index], &total))
            total = profile->sample[i]->value[index] < 0 ? INT64_MIN : INT64_MAX;
    return total;
}
