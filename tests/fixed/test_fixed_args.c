/* Unit tests for the fixed server's own flags (linked with the fixed store, so --ttl,
 * --sweep-every, --trim and --verbose exist): defaults, values, and every bad TTL or interval
 * (zero, negative, unparsable) refused with a message that names the flag. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lc_util.h"
#include "svc.h"

#define ARGC(argv) ((int)(sizeof(argv) / sizeof((argv)[0])) - 1)

static void test_defaults(void **state)
{
    (void)state;
    char *argv[] = {"fixed", NULL};
    struct svc_config cfg;
    char err[256];
    assert_int_equal(svc_parse_args(ARGC(argv), argv, &cfg, err, sizeof(err)), SVC_PARSE_OK);
    assert_int_equal(cfg.store.ttl_ns, 60 * LC_NS_PER_SEC);
    assert_int_equal(cfg.store.sweep_every_ns, 10 * LC_NS_PER_SEC);
    assert_false(cfg.store.trim);
    assert_false(cfg.store.verbose);
    assert_int_equal(cfg.store.sweep_mode, STORE_SWEEP_BATCHED);
}

static void test_values(void **state)
{
    (void)state;
    char *argv[] = {"fixed", "--ttl", "2s", "--sweep-every=500ms", "--trim", "--verbose", NULL};
    struct svc_config cfg;
    char err[256];
    assert_int_equal(svc_parse_args(ARGC(argv), argv, &cfg, err, sizeof(err)), SVC_PARSE_OK);
    assert_int_equal(cfg.store.ttl_ns, 2 * LC_NS_PER_SEC);
    assert_int_equal(cfg.store.sweep_every_ns, 500 * LC_NS_PER_MS);
    assert_true(cfg.store.trim);
    assert_true(cfg.store.verbose);
}

static void test_sweep_mode(void **state)
{
    (void)state;
    const char *names[] = {"scan", "batched"};
    const enum store_sweep_mode modes[] = {STORE_SWEEP_SCAN, STORE_SWEEP_BATCHED};
    for (size_t i = 0; i < 2; i++) {
        char *argv[] = {"fixed", "--sweep-mode", (char *)names[i], NULL};
        struct svc_config cfg;
        char err[256];
        assert_int_equal(svc_parse_args(ARGC(argv), argv, &cfg, err, sizeof(err)), SVC_PARSE_OK);
        assert_int_equal(cfg.store.sweep_mode, modes[i]);
    }
    const char *bad[] = {"", "Scan", "full", "batch", "scan "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *argv[] = {"fixed", "--sweep-mode", (char *)bad[i], NULL};
        struct svc_config cfg;
        char err[256] = "";
        if (svc_parse_args(ARGC(argv), argv, &cfg, err, sizeof(err)) != SVC_PARSE_ERROR)
            fail_msg("'--sweep-mode %s' was accepted", bad[i]);
        assert_non_null(strstr(err, "--sweep-mode"));
        assert_non_null(strstr(err, "batched or scan"));
    }
}

static void test_bad_durations(void **state)
{
    (void)state;
    const char *flags[] = {"--ttl", "--sweep-every"};
    const char *values[] = {"0", "0s", "0ms", "-1", "-5s", "abc", "", "10x", "1s2"};
    for (size_t f = 0; f < 2; f++) {
        for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
            char *argv[] = {"fixed", (char *)flags[f], (char *)values[v], NULL};
            struct svc_config cfg;
            char err[256] = "";
            if (svc_parse_args(ARGC(argv), argv, &cfg, err, sizeof(err)) != SVC_PARSE_ERROR)
                fail_msg("'fixed %s %s' was accepted", flags[f], values[v]);
            if (strstr(err, flags[f]) == NULL)
                fail_msg("error '%s' does not name %s", err, flags[f]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_sweep_mode),
        cmocka_unit_test(test_bad_durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
