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
    /* The whole range, as HEAPPROF_RATE and the other HEAPPROF_* numbers are read. */
    v = 7;
    assert_int_equal(lc_parse_u64("0", 0, UINT64_MAX, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(lc_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    const char *bad[] = {
        "", "-1", "+1", " 1", "1 ", "1k", "0x10", "18446744073709551616", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 7;
        assert_int_equal(lc_parse_u64(bad[i], 0, UINT64_MAX, &v), -1);
        assert_int_equal(v, 7); /* untouched on error */
    }
    assert_int_equal(lc_parse_u64(NULL, 0, UINT64_MAX, &v), -1);
}

static void test_integer_fields(void **state)
{
    (void)state;
    uint64_t v = 7;
    const char *name = "prefix.0042.pb.gz";
    assert_int_equal(lc_parse_u64_n(name + 7, 4, 0, UINT64_MAX, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(lc_parse_u64_n(name + 7, 5, 0, UINT64_MAX, &v), -1); /* "0042." */
    assert_int_equal(lc_parse_u64_n(name + 7, 0, 0, UINT64_MAX, &v), -1); /* nothing */
    assert_int_equal(lc_parse_u64_n("12\0"
                                    "3",
                                    4, 0, UINT64_MAX, &v),
                     -1);                                       /* a NUL inside */
    assert_int_equal(lc_parse_u64_n("123", 2, 13, 99, &v), -1); /* 12 < min */
    assert_int_equal(v, 42);
}

static void test_signed_integers(void **state)
{
    (void)state;
    int64_t v = 7;
    /* Go's strconv.ParseInt(s, 10, 64). */
    assert_int_equal(lc_parse_i64("30", INT64_MIN, INT64_MAX, &v), 0);
    assert_int_equal(v, 30);
    assert_int_equal(lc_parse_i64("+30", INT64_MIN, INT64_MAX, &v), 0);
    assert_int_equal(v, 30);
    assert_int_equal(lc_parse_i64("-0030", INT64_MIN, INT64_MAX, &v), 0);
    assert_int_equal(v, -30);
    assert_int_equal(lc_parse_i64("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(lc_parse_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MIN);
    v = 7;
    const char *bad[] = {"",
                         "+",
                         "-",
                         "--1",
                         "+-1",
                         " 1",
                         "1 ",
                         "1s",
                         "0x1",
                         "1e3",
                         "9223372036854775808",
                         "-9223372036854775809"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(lc_parse_i64(bad[i], INT64_MIN, INT64_MAX, &v), -1);
        assert_int_equal(v, 7);
    }
    assert_int_equal(lc_parse_i64("-1", 0, 10, &v), -1); /* bounds */
    assert_int_equal(lc_parse_i64("11", 0, 10, &v), -1);
    assert_int_equal(lc_parse_i64(NULL, 0, 10, &v), -1);
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
        cmocka_unit_test(test_durations),       cmocka_unit_test(test_bad_durations),
        cmocka_unit_test(test_integers),        cmocka_unit_test(test_integer_fields),
        cmocka_unit_test(test_signed_integers), cmocka_unit_test(test_hostport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
