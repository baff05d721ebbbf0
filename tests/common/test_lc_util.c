/* Unit tests for lc_util: the duration, integer and HOST:PORT parsers every flag goes through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lc_util.h"

static void test_durations(void **state)
{
    (void)state;
    int64_t ns;
    assert_int_equal(lc_parse_duration_ns("500ms", &ns), 0);
    assert_int_equal(ns, 500 * LC_NS_PER_MS);
    assert_int_equal(lc_parse_duration_ns("10s", &ns), 0);
    assert_int_equal(ns, 10 * LC_NS_PER_SEC);
    assert_int_equal(lc_parse_duration_ns("2m", &ns), 0);
    assert_int_equal(ns, 120 * LC_NS_PER_SEC);
    assert_int_equal(lc_parse_duration_ns("1h", &ns), 0);
    assert_int_equal(ns, 3600 * LC_NS_PER_SEC);
    assert_int_equal(lc_parse_duration_ns("30", &ns), 0);
    assert_int_equal(ns, 30 * LC_NS_PER_SEC);
    assert_int_equal(lc_parse_duration_ns("1.5s", &ns), 0);
    assert_int_equal(ns, 1500 * LC_NS_PER_MS);
    assert_int_equal(lc_parse_duration_ns("250us", &ns), 0);
    assert_int_equal(ns, 250 * LC_NS_PER_USEC);
    assert_int_equal(lc_parse_duration_ns("-1s", &ns), 0);
    assert_true(ns < 0);
}

static void test_bad_durations(void **state)
{
    (void)state;
    int64_t ns;
    const char *bad[] = {"",    " 1s", "s",    "10x",   "1s ", "abc",
                         "inf", "nan", "0x10", "1e30h", "10 s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(lc_parse_duration_ns(bad[i], &ns), -1);
    assert_int_equal(lc_parse_duration_ns(NULL, &ns), -1);
}

static void test_integers(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(lc_parse_u64("1024", 1, 2048, &v), 0);
    assert_int_equal(v, 1024);
    assert_int_equal(lc_parse_u64("0", 1, 10, &v), -1);
    assert_int_equal(lc_parse_u64("11", 1, 10, &v), -1);
    assert_int_equal(lc_parse_u64("-1", 0, 10, &v), -1);
    assert_int_equal(lc_parse_u64("+1", 0, 10, &v), -1);
    assert_int_equal(lc_parse_u64("1k", 0, 10000, &v), -1);
    assert_int_equal(lc_parse_u64("99999999999999999999999", 0, UINT64_MAX, &v), -1);
}

static void test_hostport(void **state)
{
    (void)state;
    char host[64];
    uint16_t port;
    assert_int_equal(lc_parse_hostport("127.0.0.1:8080", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_int_equal(lc_parse_hostport("localhost:0", host, sizeof(host), &port), 0);
    assert_string_equal(host, "localhost");
    assert_int_equal(port, 0);
    assert_int_equal(lc_parse_hostport("[::1]:6060", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 6060);
    const char *bad[] = {"8080",    ":8080",  "host:",   "host:65536",
                         "host:-1", "::1:80", "[::1]80", "host:80x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(lc_parse_hostport(bad[i], host, sizeof(host), &port), -1);
    assert_int_equal(lc_parse_hostport("averyveryverylonghostname:1", host, 8, &port), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_bad_durations),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_hostport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
