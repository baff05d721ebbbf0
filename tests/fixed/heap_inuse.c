/* heap_inuse: print a heap profile's total of one sample type (default inuse_space), decoded
 * with the project's own pcodec. For the shell tests: `heap_inuse FILE.pb.gz [TYPE]`. */
#include <stdio.h>

#include "pcodec.h"

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: heap_inuse PROFILE.pb.gz [SAMPLE_TYPE]\n");
        return 2;
    }
    const char *type = argc == 3 ? argv[2] : "inuse_space";
    char err[256];
    pcodec_profile *profile = pcodec_load_file(argv[1], err, sizeof(err));
    if (profile == NULL) {
        fprintf(stderr, "heap_inuse: %s: %s\n", argv[1], err);
        return 1;
    }
    if (pcodec_sample_index(profile, type) < 0) {
        fprintf(stderr, "heap_inuse: %s: no sample type '%s'\n", argv[1], type);
        pcodec_free(profile);
        return 1;
    }
    printf("%lld\n", (long long)pcodec_total(profile, type));
    pcodec_free(profile);
    return 0;
}
