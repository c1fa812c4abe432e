/* test_parse.c — the one parser of each kind of value (sidecar/common/parse.c): a table of
 * accepted and rejected inputs per kind, as flags, environment, config file and CLI see them. */
#include <string.h>

#include <criterion/criterion.h>

#include "common.h"

struct num_case {
    const char *text;
    int rc;
    uint64_t value;
};

static void check_nums(int (*parse)(const char *, uint64_t *), const struct num_case *c, size_t n,
                       const char *kind)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t v = 12345;
        int rc = parse(c[i].text, &v);
        cr_assert_eq(rc, c[i].rc, "%s \"%s\": rc %d, want %d", kind,
                     c[i].text ? c[i].text : "(null)", rc, c[i].rc);
        if (rc == 0)
            cr_assert_eq(v, c[i].value, "%s \"%s\": %llu", kind, c[i].text, (unsigned long long)v);
        else
            cr_assert_eq(v, 12345, "%s \"%s\": output written on error", kind, c[i].text);
    }
}

#define OK(t, v)                                                                                   \
    {                                                                                              \
        t, 0, v                                                                                    \
    }
#define BAD(t)                                                                                     \
    {                                                                                              \
        t, SIDECAR_PARSE_ESYNTAX, 0                                                                \
    }
#define RANGE(t)                                                                                   \
    {                                                                                              \
        t, SIDECAR_PARSE_ERANGE, 0                                                                 \
    }
#define N(a) (sizeof(a) / sizeof((a)[0]))

Test(parse, durations)
{
    static const struct num_case c[] = {
        OK("0", 0),
        OK("250", 250),
        OK("250ms", 250),
        OK("2s", 2000),
        OK("1m", 60000),
        OK("2h", 7200000),
        OK("90s", 90000),
        OK("007s", 7000),
        BAD(""),
        BAD("s"),
        BAD("ms"),
        BAD("-1s"),
        BAD("+1s"),
        BAD("1.5s"),
        BAD("1 s"),
        BAD(" 1s"),
        BAD("1s "),
        BAD("1S"),
        BAD("1sec"),
        BAD("1d"),
        BAD("1us"),
        BAD("0x10"),
        BAD("1m30s"),
        BAD(NULL),
        RANGE("99999999999999999999"),
        RANGE("18446744073709551615h"),
        BAD("99999999999999999999x"),
    };
    check_nums(sidecar_parse_duration_ms, c, N(c), "duration");
}

Test(parse, sizes)
{
    static const struct num_case c[] = {
        OK("0", 0),
        OK("100", 100),
        OK("100B", 100),
        OK("8KiB", 8192),
        OK("1MiB", 1048576),
        OK("2GiB", 2147483648ull),
        BAD(""),
        BAD("KiB"),
        BAD("8kib"),
        BAD("8KB"),
        BAD("8K"),
        BAD("-8KiB"),
        BAD("1.5MiB"),
        BAD("8 KiB"),
        BAD(NULL),
        RANGE("99999999999999999999"),
        RANGE("17179869184GiB"),
    };
    check_nums(sidecar_parse_size_bytes, c, N(c), "size");
}

Test(parse, counts)
{
    static const struct num_case c[] = {
        OK("0", 0),
        OK("42", 42),
        OK("18446744073709551615", UINT64_MAX),
        BAD(""),
        BAD("-1"),
        BAD("1e3"),
        BAD("42ms"),
        BAD("4 2"),
        BAD("0x2a"),
        BAD(NULL),
        RANGE("18446744073709551616"),
    };
    check_nums(sidecar_parse_count, c, N(c), "count");
}

Test(parse, fractions)
{
    static const struct {
        const char *text;
        int rc;
        double v;
    } c[] = {
        {"0", 0, 0},     {"0.05", 0, 0.05}, {".5", 0, 0.5},   {"5.", 0, 5},     {"5e-2", 0, 0.05},
        {"1E+1", 0, 10}, {"", -1, 0},       {".", -1, 0},     {"-0.1", -1, 0},  {"+0.1", -1, 0},
        {"nan", -1, 0},  {"inf", -1, 0},    {"0x1p3", -1, 0}, {"5%", -1, 0},    {"0.1 ", -1, 0},
        {"1e", -1, 0},   {"e5", -1, 0},     {NULL, -1, 0},    {"1e999", -2, 0},
    };
    for (size_t i = 0; i < N(c); i++) {
        double v = 42;
        int rc = sidecar_parse_fraction(c[i].text, &v);
        cr_assert_eq(rc, c[i].rc, "fraction \"%s\": rc %d", c[i].text ? c[i].text : "(null)", rc);
        if (rc == 0)
            cr_assert_float_eq(v, c[i].v, 1e-12, "fraction \"%s\"", c[i].text);
        else
            cr_assert_eq(v, 42, "fraction \"%s\": output written on error", c[i].text);
    }
}

Test(parse, booleans)
{
    static const struct {
        const char *text;
        int rc;
        bool v;
    } c[] = {
        {"true", 0, true}, {"1", 0, true}, {"false", 0, false}, {"0", 0, false},
        {"TRUE", -1, 0},   {"yes", -1, 0}, {"on", -1, 0},       {"", -1, 0},
        {"true ", -1, 0},  {"01", -1, 0},  {NULL, -1, 0},
    };
    for (size_t i = 0; i < N(c); i++) {
        bool v = !c[i].v;
        int rc = sidecar_parse_bool(c[i].text, &v);
        cr_assert_eq(rc, c[i].rc, "bool \"%s\"", c[i].text ? c[i].text : "(null)");
        if (rc == 0)
            cr_assert_eq(v, c[i].v, "bool \"%s\"", c[i].text);
    }
}

Test(parse, names)
{
    char max[SIDECAR_NAME_MAX + 2];
    memset(max, 'a', sizeof(max));
    max[SIDECAR_NAME_MAX] = '\0';
    const char *good[] = {"a", "node-1", "b.example", "x_y", "9lives", max};
    for (size_t i = 0; i < N(good); i++)
        cr_assert(sidecar_parse_name_valid(good[i]), "name \"%s\"", good[i]);
    max[SIDECAR_NAME_MAX] = 'a';
    max[SIDECAR_NAME_MAX + 1] = '\0';
    const char *bad[] = {"", "-a", ".a", "_a", "a b", "a=b", "a:b", "a/b", "é", max, NULL};
    for (size_t i = 0; i < N(bad); i++)
        cr_assert(!sidecar_parse_name_valid(bad[i]), "name \"%s\"", bad[i] ? bad[i] : "(null)");
}

Test(parse, host_and_port)
{
    static const struct {
        const char *text;
        bool port0;
        const char *host;
        uint16_t port;
    } good[] = {
        {"127.0.0.1:7480", false, "127.0.0.1", 7480},
        {"localhost:1", false, "localhost", 1},
        {"node-1.example.org:65535", false, "node-1.example.org", 65535},
        {"[::1]:7480", false, "::1", 7480},
        {"[fe80::1]:80", false, "fe80::1", 80},
        {"0.0.0.0:0", true, "0.0.0.0", 0},
    };
    for (size_t i = 0; i < N(good); i++) {
        char host[SIDECAR_HOST_MAX + 1], why[128];
        uint16_t port = 0;
        int rc = sidecar_parse_hostport(good[i].text, good[i].port0, host, sizeof(host), &port, why,
                                        sizeof(why));
        cr_assert_eq(rc, 0, "\"%s\": %s", good[i].text, why);
        cr_assert_str_eq(host, good[i].host);
        cr_assert_eq(port, good[i].port, "\"%s\"", good[i].text);
    }
    const char *bad[] = {"",           "7480",        ":7480",       "host:",    "host:0",
                         "host:65536", "host:-1",     "host:80x",    "::1:7480", "[::1]7480",
                         "[::1:7480",  "[nope]:7480", "a b:80",      "a_b:80",   "a/b:80",
                         "h:+80",      "[]:80",       "http://h:80", NULL};
    for (size_t i = 0; i < N(bad); i++) {
        char host[SIDECAR_HOST_MAX + 1], why[128] = "";
        uint16_t port;
        int rc = sidecar_parse_hostport(bad[i], false, host, sizeof(host), &port, why, sizeof(why));
        cr_assert_eq(rc, SIDECAR_PARSE_ESYNTAX, "\"%s\" accepted", bad[i] ? bad[i] : "(null)");
        cr_assert_neq(why[0], '\0', "\"%s\": no reason given", bad[i] ? bad[i] : "(null)");
    }
}

Test(parse, formats_round_trip)
{
    static const uint64_t ms[] = {0, 1, 999, 1000, 1500, 60000, 90000, 3600000, 7200000};
    for (size_t i = 0; i < N(ms); i++) {
        char buf[32];
        uint64_t back;
        sidecar_format_duration(ms[i], buf, sizeof(buf));
        cr_assert_eq(sidecar_parse_duration_ms(buf, &back), 0, "%s", buf);
        cr_assert_eq(back, ms[i], "%s", buf);
    }
    char buf[32];
    sidecar_format_duration(7200000, buf, sizeof(buf));
    cr_assert_str_eq(buf, "2h");
    sidecar_format_size(1048576, buf, sizeof(buf));
    cr_assert_str_eq(buf, "1MiB");
    sidecar_format_size(1000, buf, sizeof(buf));
    cr_assert_str_eq(buf, "1000 bytes");
}
