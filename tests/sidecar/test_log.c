/* test_log.c — electd's log lines: the text and JSON formats, escaping of hostile strings,
 * level filtering, the line bound, term/role context and secret redaction. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static FILE *out;
static char buf[4 * SIDECAR_LOG_LINE_MAX];

static void setup(void)
{
    out = tmpfile();
    cr_assert_not_null(out);
    sidecar_log_clear_secrets();
    sidecar_log_set_state_cb(NULL, NULL);
    sidecar_log_set_state(0, NULL);
}

static void teardown(void)
{
    fclose(out);
    sidecar_log_init(SIDECAR_LOG_INFO, SIDECAR_LOG_TEXT, 2, NULL);
    sidecar_log_clear_secrets();
}

TestSuite(log, .init = setup, .fini = teardown);

static void start(sidecar_log_level_t level, sidecar_log_format_t format, const char *node)
{
    sidecar_log_init(level, format, fileno(out), node);
}

/* Everything written so far (the file is rewound and emptied). */
static const char *output(void)
{
    int fd = fileno(out);
    off_t end = lseek(fd, 0, SEEK_END);
    cr_assert_lt(end, (off_t)sizeof(buf));
    cr_assert_eq(pread(fd, buf, (size_t)end, 0), end);
    buf[end] = '\0';
    cr_assert_eq(ftruncate(fd, 0), 0);
    lseek(fd, 0, SEEK_SET);
    return buf;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        n += *s == '\n';
    }
    return n;
}

/* The text after the timestamp, which must look like 2026-11-22T01:02:03.456Z. */
static const char *after_timestamp(const char *line)
{
    int y, mo, d, h, mi, s, ms, used = 0;
    cr_assert_eq(
        sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &y, &mo, &d, &h, &mi, &s, &ms, &used), 7,
        "bad timestamp in [%s]", line);
    cr_assert_eq(used, 24);
    cr_assert(y >= 2024 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31);
    return line + used;
}

static cJSON *parse_json_line(const char *line)
{
    size_t n = strlen(line);
    cr_assert_gt(n, 0);
    cr_assert_eq(line[n - 1], '\n', "a line ends with a newline");
    cr_assert_eq(count_lines(line), 1, "exactly one line: [%s]", line);
    cJSON *j = cJSON_ParseWithLength(line, n);
    cr_assert_not_null(j, "not JSON: [%s]", line);
    return j;
}

static const char *jstr(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    cr_assert(cJSON_IsString(v), "field %s is not a string", key);
    return v->valuestring;
}

static double jnum(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    cr_assert(cJSON_IsNumber(v), "field %s is not a number", key);
    return v->valuedouble;
}

Test(log, text_line_has_context_message_and_fields)
{
    start(SIDECAR_LOG_INFO, SIDECAR_LOG_TEXT, "a");
    sidecar_log_set_state(3, "leader");
    SIDECAR_LOG(SIDECAR_LOG_INFO, "elected", SIDECAR_LOG_UINT("votes", 2),
                SIDECAR_LOG_STR("peer", "b c"), SIDECAR_LOG_INT("delta", -4),
                SIDECAR_LOG_BOOL("fresh", true), SIDECAR_LOG_STR("empty", ""));
    const char *line = output();
    cr_assert_str_eq(after_timestamp(line),
                     " INFO node=a term=3 role=leader msg=\"elected\" votes=2 peer=\"b c\" "
                     "delta=-4 fresh=true empty=\"\"\n");
}

Test(log, json_line_has_the_same_fields)
{
    start(SIDECAR_LOG_DEBUG, SIDECAR_LOG_JSON, "node-1");
    sidecar_log_set_state(42, "follower");
    SIDECAR_LOG(SIDECAR_LOG_WARN, "peer unreachable", SIDECAR_LOG_STR("peer", "b"),
                SIDECAR_LOG_UINT("attempts", 7), SIDECAR_LOG_DOUBLE("rtt_ms", 1.5),
                SIDECAR_LOG_BOOL("retry", false));
    cJSON *j = parse_json_line(output());
    const char *ts = jstr(j, "ts");
    cr_assert_eq(strlen(ts), 24);
    after_timestamp(ts);
    cr_assert_str_eq(jstr(j, "level"), "warn");
    cr_assert_str_eq(jstr(j, "node"), "node-1");
    cr_assert_eq(jnum(j, "term"), 42);
    cr_assert_str_eq(jstr(j, "role"), "follower");
    cr_assert_str_eq(jstr(j, "msg"), "peer unreachable");
    cr_assert_str_eq(jstr(j, "peer"), "b");
    cr_assert_eq(jnum(j, "attempts"), 7);
    cr_assert_float_eq(jnum(j, "rtt_ms"), 1.5, 1e-12);
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "retry")));
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(j, "truncated"));
    cJSON_Delete(j);
}

Test(log, json_escapes_control_characters_and_invalid_utf8)
{
    /* quote, backslash, newline, tab, 0x01, DEL, valid é € and U+1F600, then invalid: a lone
     * continuation byte, 0xff, an overlong '/', a UTF-16 surrogate, a cut 3-byte sequence */
    const char *hostile = "q\"b\\n\n\tc\x01"
                          "d\x7f"
                          "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
                          "|\x80|\xff|\xc0\xaf|\xed\xa0\x80|\xe2\x82";
    const char *expected = "q\"b\\n\n\tc\x01"
                           "d\x7f"
                           "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
                           "|\xef\xbf\xbd|\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|"
                           "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd";
    start(SIDECAR_LOG_INFO, SIDECAR_LOG_JSON, "a\"b");
    SIDECAR_LOG(SIDECAR_LOG_ERROR, hostile, SIDECAR_LOG_STR("v", hostile),
                SIDECAR_LOG_STR("k\"ey\n", "x"), SIDECAR_LOG_STR("nul", NULL));
    const char *line = output();
    for (const char *p = line; p[1]; p++) {
        cr_assert((unsigned char)*p >= 0x20 && *p != 0x7f, "raw control byte in [%s]", line);
    }
    cr_assert_null(strstr(line, "\xff"));
    cJSON *j = parse_json_line(line);
    cr_assert_str_eq(jstr(j, "msg"), expected);
    cr_assert_str_eq(jstr(j, "v"), expected);
    cr_assert_str_eq(jstr(j, "node"), "a\"b");
    cr_assert_str_eq(jstr(j, "k_ey_"), "x", "keys are reduced to safe characters");
    cr_assert_str_eq(jstr(j, "nul"), "");
    cJSON_Delete(j);
}

Test(log, text_escapes_keep_one_line)
{
    start(SIDECAR_LOG_INFO, SIDECAR_LOG_TEXT, "a");
    SIDECAR_LOG(SIDECAR_LOG_INFO, "line1\nline2", SIDECAR_LOG_STR("out", "x=\"1\"\x01\xff"),
                SIDECAR_LOG_STR("plain", "ok"));
    const char *rest = after_timestamp(output());
    cr_assert_str_eq(rest, " INFO node=a term=0 role=unknown msg=\"line1\\nline2\" "
                           "out=\"x=\\\"1\\\"\\x01\\xff\" plain=ok\n");
}

Test(log, levels_below_the_threshold_are_dropped)
{
    start(SIDECAR_LOG_WARN, SIDECAR_LOG_TEXT, "a");
    cr_assert_not(sidecar_log_enabled(SIDECAR_LOG_INFO));
    cr_assert(sidecar_log_enabled(SIDECAR_LOG_ERROR));
    sidecar_logf(SIDECAR_LOG_DEBUG, "debug %d", 1);
    SIDECAR_LOG(SIDECAR_LOG_INFO, "info");
    sidecar_logf(SIDECAR_LOG_WARN, "warn %d", 3);
    SIDECAR_LOG(SIDECAR_LOG_ERROR, "error");
    const char *all = output();
    cr_assert_eq(count_lines(all), 2, "[%s]", all);
    cr_assert(strstr(all, " WARN ") && strstr(all, "msg=\"warn 3\""));
    cr_assert(strstr(all, " ERROR ") && strstr(all, "msg=\"error\""));
    cr_assert_null(strstr(all, "DEBUG"));
    cr_assert_null(strstr(all, " INFO "));
}

Test(log, long_lines_are_cut_and_marked)
{
    static char big[3 * SIDECAR_LOG_LINE_MAX];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';

    start(SIDECAR_LOG_INFO, SIDECAR_LOG_TEXT, "a");
    sidecar_logf(SIDECAR_LOG_INFO, "%s", big);
    const char *line = output();
    size_t n = strlen(line);
    cr_assert_leq(n, SIDECAR_LOG_LINE_MAX);
    cr_assert_eq(count_lines(line), 1);
    cr_assert(n > 20 && strcmp(line + n - 17, "\" truncated=true\n") == 0, "[%s]", line + n - 40);

    start(SIDECAR_LOG_INFO, SIDECAR_LOG_JSON, "a");
    SIDECAR_LOG(SIDECAR_LOG_INFO, "big", SIDECAR_LOG_UINT("before", 1), SIDECAR_LOG_STR("v", big),
                SIDECAR_LOG_UINT("after", 2));
    line = output();
    cr_assert_leq(strlen(line), SIDECAR_LOG_LINE_MAX);
    cJSON *j = parse_json_line(line);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "truncated")));
    cr_assert_eq(jnum(j, "before"), 1);
    const char *v = jstr(j, "v");
    cr_assert_gt(strlen(v), 3000, "a long value is cut, not dropped");
    cr_assert_eq(strspn(v, "x"), strlen(v));
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(j, "after"));
    cJSON_Delete(j);
}

Test(log, cuts_never_split_a_character_or_escape)
{
    /* 3-byte characters and 6-byte escapes, at every alignment against the cut */
    static char big[2 * SIDECAR_LOG_LINE_MAX];
    for (int shift = 0; shift < 6; shift++) {
        size_t n = 0;
        for (int i = 0; i < shift; i++) {
            big[n++] = 'y';
        }
        while (n + 4 < sizeof(big)) {
            memcpy(big + n, n % 2 ? "\xe2\x82\xac" : "\x01\x02\x03", 3);
            n += 3;
        }
        big[n] = '\0';
        start(SIDECAR_LOG_INFO, SIDECAR_LOG_JSON, "a");
        SIDECAR_LOG(SIDECAR_LOG_INFO, "m", SIDECAR_LOG_STR("v", big));
        cJSON *j = parse_json_line(output());
        cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "truncated")));
        const char *v = jstr(j, "v");
        cr_assert_eq(strncmp(v, big, strlen(v)), 0, "the kept part is a prefix (shift %d)", shift);
        cJSON_Delete(j);
    }
}

Test(log, many_fields_stay_within_the_bound)
{
    sidecar_log_field_t fields[600];
    for (size_t i = 0; i < 600; i++) {
        fields[i] = SIDECAR_LOG_UINT("field_number", i);
    }
    start(SIDECAR_LOG_INFO, SIDECAR_LOG_JSON, "a");
    sidecar_log_fields(SIDECAR_LOG_INFO, "m", fields, 600);
    const char *line = output();
    cr_assert_leq(strlen(line), SIDECAR_LOG_LINE_MAX);
    cJSON *j = parse_json_line(line);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "truncated")));
    cJSON_Delete(j);
}

static void state_cb(void *ud, uint64_t *term, const char **role)
{
    *term = *(uint64_t *)ud;
    *role = "candidate";
}

Test(log, every_line_carries_the_current_term_and_role)
{
    uint64_t term = 7;
    start(SIDECAR_LOG_INFO, SIDECAR_LOG_TEXT, "n1");
    sidecar_log_set_state_cb(state_cb, &term);
    SIDECAR_LOG(SIDECAR_LOG_INFO, "one");
    term = 8;
    SIDECAR_LOG(SIDECAR_LOG_INFO, "two");
    const char *all = output();
    cr_assert(strstr(all, "node=n1 term=7 role=candidate msg=\"one\"\n"), "[%s]", all);
    cr_assert(strstr(all, "node=n1 term=8 role=candidate msg=\"two\"\n"), "[%s]", all);
}

Test(log, secrets_are_redacted_in_both_formats)
{
    cr_assert_eq(sidecar_log_add_secret("tok-SECRET-123"), 0);
    cr_assert_eq(sidecar_log_add_secret(""), -1);
    start(SIDECAR_LOG_INFO, SIDECAR_LOG_TEXT, "a");
    SIDECAR_LOG(SIDECAR_LOG_INFO, "token is tok-SECRET-123", SIDECAR_LOG_STR("t", "tok-SECRET-123"),
                SIDECAR_LOG_STR("u", "xtok-SECRET-123y"));
    const char *line = output();
    cr_assert_null(strstr(line, "SECRET"), "[%s]", line);
    cr_assert(strstr(line, "msg=\"token is [redacted]\""), "[%s]", line);
    cr_assert(strstr(line, "u=x[redacted]y"), "[%s]", line);

    start(SIDECAR_LOG_INFO, SIDECAR_LOG_JSON, "a");
    sidecar_logf(SIDECAR_LOG_INFO, "header Bearer %s", "tok-SECRET-123");
    line = output();
    cr_assert_null(strstr(line, "SECRET"), "[%s]", line);
    cJSON *j = parse_json_line(line);
    cr_assert_str_eq(jstr(j, "msg"), "header Bearer [redacted]");
    cJSON_Delete(j);
}

/* A rotating credential (the workload token) takes its predecessor's slot, so rotations
 * never run out of slots, and the new value is redacted from then on. */
Test(log, a_replaced_secret_takes_the_old_ones_place)
{
    cr_assert_eq(sidecar_log_replace_secret(NULL, "first-ROT-0"), 0);
    for (int i = 1; i <= 3 * SIDECAR_LOG_SECRETS_MAX; i++) {
        char old[32], cur[32];
        snprintf(old, sizeof(old), "first-ROT-%d", i - 1);
        snprintf(cur, sizeof(cur), "first-ROT-%d", i);
        cr_assert_eq(sidecar_log_replace_secret(old, cur), 0, "rotation %d", i);
    }
    start(SIDECAR_LOG_INFO, SIDECAR_LOG_TEXT, "a");
    SIDECAR_LOG(SIDECAR_LOG_INFO, "rotated", SIDECAR_LOG_STR("t", "first-ROT-12"));
    const char *line = output();
    cr_assert_null(strstr(line, "ROT"), "[%s]", line);
    cr_assert(strstr(line, "t=\"[redacted]\""), "[%s]", line);
}

/* ---- JSON objects with unique keys, ids, other programs' output (issue 21) --------------- */

Test(log, a_field_never_repeats_a_key_of_its_line)
{
    start(SIDECAR_LOG_INFO, SIDECAR_LOG_JSON, "a");
    sidecar_log_set_state(5, "leader");
    SIDECAR_LOG(SIDECAR_LOG_INFO, "node started", SIDECAR_LOG_UINT("term", 4),
                SIDECAR_LOG_STR("msg", "x"), SIDECAR_LOG_UINT("n", 1), SIDECAR_LOG_UINT("n", 2),
                SIDECAR_LOG_UINT("n_4", 3));
    const char *line = output();
    cJSON *j = parse_json_line(line);
    size_t keys = 0;
    for (const cJSON *a = j->child; a; a = a->next, keys++)
        for (const cJSON *b = a->next; b; b = b->next)
            cr_assert_str_neq(a->string, b->string, "key %s twice: %s", a->string, line);
    cr_assert_eq(jnum(j, "term"), 5, "the header's term stays");
    cr_assert_eq(jnum(j, "term_1"), 4);
    cr_assert_str_eq(jstr(j, "msg"), "node started");
    cr_assert_str_eq(jstr(j, "msg_2"), "x");
    cr_assert_eq(jnum(j, "n"), 1);
    cr_assert_eq(jnum(j, "n_4"), 2, "the second n is renamed by its position");
    /* The literal n_4 was taken by then: renamed too. */
    cr_assert_eq(jnum(j, "n_4_5"), 3);
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(j, "truncated"));
    cr_assert_eq(keys, 11);
    cJSON_Delete(j);
}

Test(log, node_ids_are_the_apis_hex_in_both_formats)
{
    uint64_t id = 12638190499090526629ull; /* above 2^53: a JSON number would lose it */
    start(SIDECAR_LOG_INFO, SIDECAR_LOG_JSON, "a");
    SIDECAR_LOG(SIDECAR_LOG_INFO, "peer connected", SIDECAR_LOG_ID("peer", id));
    cJSON *j = parse_json_line(output());
    cr_assert_str_eq(jstr(j, "peer"), "af63df4c8601f1a5");
    cJSON_Delete(j);
    start(SIDECAR_LOG_INFO, SIDECAR_LOG_TEXT, "a");
    SIDECAR_LOG(SIDECAR_LOG_INFO, "peer connected", SIDECAR_LOG_ID("peer", 1));
    cr_assert(strstr(output(), " peer=0000000000000001\n") != NULL);
}

Test(log, the_shims_lines_carry_src_in_place_of_term_and_role)
{
    start(SIDECAR_LOG_INFO, SIDECAR_LOG_JSON, "a");
    sidecar_log_set_source("shim");
    SIDECAR_LOG(SIDECAR_LOG_WARN, "electd is gone: stopping the workload",
                SIDECAR_LOG_INT("pid", 7));
    sidecar_log_set_source(NULL);
    cJSON *j = parse_json_line(output());
    cr_assert_str_eq(jstr(j, "src"), "shim");
    cr_assert_str_eq(jstr(j, "level"), "warn");
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(j, "term"));
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(j, "role"));
    cr_assert_eq(jnum(j, "pid"), 7);
    cJSON_Delete(j);
}

Test(log, output_records_wrap_any_bytes_and_split_what_does_not_fit)
{
    start(SIDECAR_LOG_ERROR, SIDECAR_LOG_JSON, "a"); /* output is written whatever the level */
    const char raw[] = "x\xff\x01\"\\\xe2\x82\xac";
    cr_assert_eq(sidecar_log_output(-1, "workload", "stderr", raw, sizeof(raw) - 1, true),
                 sizeof(raw) - 1);
    cJSON *j = parse_json_line(output());
    cr_assert_str_eq(jstr(j, "src"), "workload");
    cr_assert_str_eq(jstr(j, "stream"), "stderr");
    cr_assert_str_eq(jstr(j, "level"), "info");
    cr_assert_str_eq(jstr(j, "line"), "x\xef\xbf\xbd\x01\"\\\xe2\x82\xac");
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(j, "partial"));
    cJSON_Delete(j);

    /* 3,000 control bytes escape to 18,000: the record holds what fits, says partial, and
     * the caller writes the rest; together they hold every byte. */
    static char ctl[3000];
    memset(ctl, 0x01, sizeof(ctl));
    size_t at = 0, records = 0;
    while (at < sizeof(ctl) && records < 100) {
        size_t used =
            sidecar_log_output(-1, "workload", "stdout", ctl + at, sizeof(ctl) - at, true);
        cr_assert_gt(used, 0);
        const char *line = output();
        cr_assert_leq(strlen(line), SIDECAR_LOG_LINE_MAX);
        j = parse_json_line(line);
        cr_assert_eq(strlen(jstr(j, "line")), used);
        bool last = at + used == sizeof(ctl);
        cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "partial")), !last);
        cJSON_Delete(j);
        at += used;
        records++;
    }
    cr_assert_eq(at, sizeof(ctl));
    cr_assert_geq(records, 5);

    /* A line without its newline yet (the program ended) is marked partial. */
    sidecar_log_output(-1, "workload", "stdout", "bye", 3, false);
    j = parse_json_line(output());
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "partial")));
    cJSON_Delete(j);
}
