/*
 * fuzz_json: loadgen's JSON reader and writer (lg_json, over Jansson) on what a server's
 * /debug/memstats or a saved report.json may hold: the members loadgen looks up (rss_bytes,
 * glibc's in-use count, the label) at any depth, numbers and strings, escapes, truncation. A
 * string read must fit its buffer, be NUL-terminated and never end inside a UTF-8 character.
 * And the writer and the reader agree: a label written with lg_json_write_string (the input's
 * first line) reads back unchanged when it is valid UTF-8, and as valid UTF-8 otherwise.
 */
#include <stdbool.h>
#include <stdio.h>

#include "fuzz.h"
#include "lg_json.h"
#include "lg_profiles.h"

/* Is s valid UTF-8 (RFC 3629)? Written apart from lg_json.c's, to check it. */
static bool valid_utf8(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        uint32_t cp;
        size_t n;
        if (s[0] < 0x80) {
            s++;
            continue;
        } else if ((s[0] & 0xe0) == 0xc0) {
            n = 2, cp = s[0] & 0x1f;
        } else if ((s[0] & 0xf0) == 0xe0) {
            n = 3, cp = s[0] & 0x0f;
        } else if ((s[0] & 0xf8) == 0xf0) {
            n = 4, cp = s[0] & 0x07;
        } else {
            return false;
        }
        for (size_t i = 1; i < n; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i] & 0x3f);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
            return false;
        s += n;
    }
    return true;
}

static void round_trip(const char *label)
{
    char *doc = NULL;
    size_t doc_len = 0;
    FILE *f = open_memstream(&doc, &doc_len);
    if (f == NULL)
        abort();
    fputs("{\"label\": ", f);
    lg_json_write_string(f, label);
    fputs(", \"n\": 1}", f);
    if (fclose(f) != 0)
        abort();
    size_t cap = strlen(label) * 3 + 1; /* each invalid byte may become U+FFFD, 3 bytes */
    char *back = malloc(cap);
    if (back == NULL)
        abort();
    FUZZ_CHECK(lg_json_string(doc, doc_len, "label", back, cap) == 0);
    FUZZ_CHECK(valid_utf8(back));
    if (valid_utf8(label))
        FUZZ_CHECK(strcmp(back, label) == 0);
    double n = 0;
    FUZZ_CHECK(lg_json_number(doc, doc_len, "n", &n) == 0 && n == 1);
    free(back);
    free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const glibc_keys[] = LG_MEMSTATS_GLIBC_KEYS;
    const char *json = (const char *)data;
    double v;
    (void)lg_json_number(json, size, "rss_bytes", &v);
    for (size_t i = 0; i < sizeof(glibc_keys) / sizeof(glibc_keys[0]); i++)
        (void)lg_json_number(json, size, glibc_keys[i], &v);
    static const size_t sizes[] = {1, 2, 8, 256};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char out[256];
        memset(out, 'x', sizeof(out));
        if (lg_json_string(json, size, "label", out, sizes[i]) == 0) {
            FUZZ_CHECK(memchr(out, '\0', sizes[i]) != NULL);
            FUZZ_CHECK(valid_utf8(out)); /* Jansson reads only UTF-8, and a cut never splits */
        }
    }
    /* The first line, as a C string, through the writer and back. */
    char *text = fuzz_cstr(data, size);
    text[strcspn(text, "\n")] = '\0';
    round_trip(text);
    free(text);
    return 0;
}
