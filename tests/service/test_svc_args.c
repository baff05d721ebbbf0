/* Unit tests for the servers' command line (linked with the leaky store, so the fixed-only
 * flags must be refused). */
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
    char *argv[] = {"leaky", NULL};
    struct svc_config cfg;
    char err[256];
    assert_int_equal(svc_parse_args(ARGC(argv), argv, &cfg, err, sizeof(err)), SVC_PARSE_OK);
    assert_string_equal(cfg.listen_host, "127.0.0.1");
    assert_int_equal(cfg.listen_port, 8080);
    assert_string_equal(cfg.debug_host, "127.0.0.1");
    assert_int_equal(cfg.debug_port, 6060);
    assert_int_equal(cfg.entry_bytes, 1024);
    assert_true(cfg.threads >= 1);
    assert_int_equal(cfg.idle_timeout_ns, 30 * LC_NS_PER_SEC);
}

static void test_all_flags(void **state)
{
    (void)state;
    char *argv[] = {"leaky",          "--listen", "0.0.0.0:0", "--debug-listen=[::1]:7070",
                    "--entry-bytes",  "4096",     "--threads", "3",
                    "--idle-timeout", "500ms",    NULL};
    struct svc_config cfg;
    char err[256];
    assert_int_equal(svc_parse_args(ARGC(argv), argv, &cfg, err, sizeof(err)), SVC_PARSE_OK);
    assert_string_equal(cfg.listen_host, "0.0.0.0");
    assert_int_equal(cfg.listen_port, 0);
    assert_string_equal(cfg.debug_host, "::1");
    assert_int_equal(cfg.debug_port, 7070);
    assert_int_equal(cfg.entry_bytes, 4096);
    assert_int_equal(cfg.threads, 3);
    assert_int_equal(cfg.idle_timeout_ns, 500 * LC_NS_PER_MS);
}

static void test_help(void **state)
{
    (void)state;
    char *argv[] = {"leaky", "--help", NULL};
    struct svc_config cfg;
    char err[256];
    assert_int_equal(svc_parse_args(ARGC(argv), argv, &cfg, err, sizeof(err)), SVC_PARSE_HELP);
}

static void test_version(void **state)
{
    (void)state;
    char *argv[] = {"leaky", "--version", NULL};
    struct svc_config cfg;
    char err[256];
    assert_int_equal(svc_parse_args(ARGC(argv), argv, &cfg, err, sizeof(err)), SVC_PARSE_VERSION);
}

static void expect_error(char **argv, int argc, const char *needle)
{
    struct svc_config cfg;
    char err[256] = "";
    assert_int_equal(svc_parse_args(argc, argv, &cfg, err, sizeof(err)), SVC_PARSE_ERROR);
    if (strstr(err, needle) == NULL)
        fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_bad_values(void **state)
{
    (void)state;
    struct {
        char *flag, *value, *needle;
    } cases[] = {
        {"--entry-bytes", "0", "--entry-bytes"},    {"--entry-bytes", "2000000", "--entry-bytes"},
        {"--entry-bytes", "12k", "--entry-bytes"},  {"--threads", "0", "--threads"},
        {"--threads", "-2", "--threads"},           {"--listen", "8080", "--listen"},
        {"--listen", "host:70000", "--listen"},     {"--debug-listen", "", "--debug-listen"},
        {"--idle-timeout", "0s", "--idle-timeout"}, {"--idle-timeout", "fast", "--idle-timeout"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[] = {"leaky", cases[i].flag, cases[i].value, NULL};
        expect_error(argv, 3, cases[i].needle);
    }
}

static void test_unknown_and_extra(void **state)
{
    (void)state;
    char *unknown[] = {"leaky", "--bogus", NULL};
    expect_error(unknown, 2, "--bogus");
    char *fixed_only[] = {"leaky", "--ttl", "5s", NULL};
    expect_error(fixed_only, 3, "--ttl");
    char *missing[] = {"leaky", "--threads", NULL};
    expect_error(missing, 2, "--threads");
    char *extra[] = {"leaky", "stray", NULL};
    expect_error(extra, 2, "stray");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),   cmocka_unit_test(test_all_flags),
        cmocka_unit_test(test_help),       cmocka_unit_test(test_version),
        cmocka_unit_test(test_bad_values), cmocka_unit_test(test_unknown_and_extra),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
