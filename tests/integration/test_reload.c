/* test_reload.c — SIGHUP on real processes started with a --config file: the log level (debug
 * lines appear, then disappear) and format (text <-> JSON), the on-start hook (the next start
 * runs the new command; hooks never overlap), the HTTP token (the old one refused, the new one
 * accepted), a bad file refused with every running setting kept, a setting that needs a
 * restart named, and a flag or variable that the file does not override. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "events.h"

static itest_cluster_t C;
static char config_path[400];

static void fini(void)
{
    itest_cluster_destroy(&C);
}

TestSuite(reload, .fini = fini, .timeout = 180);

/* ---- the config file and the log ---------------------------------------------------------- */

/* Replaces the config file at once (rename), as an editor or a configuration tool would. */
static void write_config(const char *json)
{
    char tmp[420];
    snprintf(config_path, sizeof(config_path), "%s/electd.json", C.root);
    snprintf(tmp, sizeof(tmp), "%s.tmp", config_path);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs(json, f);
    fclose(f);
    cr_assert_eq(rename(tmp, config_path), 0);
}

/* n nodes with the config file json; only the first `started` are started (the others stay
 * down, so that the started one keeps failing to reach them: its only debug lines). */
static void setup(int n, int started, const char *json)
{
    itest_cluster_init(&C, n, n);
    itest_cluster_arg(&C, "--heartbeat-interval=50ms");
    itest_cluster_arg(&C, "--election-timeout=500ms");
    itest_cluster_arg(&C, "--stop-timeout=200ms");
    write_config(json);
    itest_cluster_arg(&C, "--config");
    itest_cluster_arg(&C, config_path);
    for (int i = 0; i < started; i++)
        itest_node_start(&C, i);
}

/* The log of node i after the start of its last line holding marker ("" when none). */
static const char *log_since(int i, const char *marker)
{
    char *text = events_read(C.nodes[i].log);
    char *last = NULL;
    for (char *p = text; (p = strstr(p, marker)) != NULL; p++)
        last = p;
    if (last == NULL)
        return "";
    while (last > text && last[-1] != '\n')
        last--;
    return last;
}

/* Every complete line of text is JSON (starts with '{') when json, else none is. */
static bool lines_are(const char *text, bool json)
{
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        if (end == NULL)
            break; /* a line being written */
        if ((line[0] == '{') != json)
            return false;
        line = end + 1;
    }
    return true;
}

/* Waits until node i's log holds needle at least n times. */
static bool wait_log(int i, const char *needle, int n, int timeout_ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    do {
        if (itest_log_count(&C, i, needle) >= n)
            return true;
        usleep(20000);
    } while (itest_now_ms() < deadline);
    return false;
}

/* Sends SIGHUP to node i and waits for the reload to end: "done" or "refused" (what it ended
 * with is returned in *refused). */
static void reload(int i, bool *refused)
{
    int done = itest_log_count(&C, i, "reload: done");
    int no = itest_log_count(&C, i, "reload refused");
    itest_node_signal(&C, i, SIGHUP);
    uint64_t deadline = itest_now_ms() + 5000;
    while (itest_now_ms() < deadline && itest_log_count(&C, i, "reload: done") == done &&
           itest_log_count(&C, i, "reload refused") == no)
        usleep(20000);
    bool r = itest_log_count(&C, i, "reload refused") > no;
    cr_assert(r || itest_log_count(&C, i, "reload: done") > done, "node %s: the reload did not end",
              C.nodes[i].name);
    if (refused)
        *refused = r;
}

static void reload_ok(int i)
{
    bool refused;
    reload(i, &refused);
    cr_assert(!refused, "node %s: reload refused:\n%s", C.nodes[i].name,
              log_since(i, "reload refused"));
}

/* Waits until node i's log, after its last "reload: done", holds needle. */
static bool wait_after_reload(int i, const char *needle, int timeout_ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    do {
        if (strstr(log_since(i, "reload: done"), needle) != NULL)
            return true;
        usleep(50000);
    } while (itest_now_ms() < deadline);
    return false;
}

#define TEXT_DEBUG " DEBUG node="
#define JSON_DEBUG "\"level\":\"debug\""
/* Longer than the transport's longest redial backoff (2 s and jitter): a member at debug
 * level that dials a missing peer logs a debug line within it. */
#define DEBUG_WINDOW_MS 4500

/* ---- the log level and format ------------------------------------------------------------- */

Test(reload, sighup_changes_the_log_level_and_format)
{
    setup(3, 1, "{\"log-level\": \"info\", \"log-format\": \"text\"}");
    cr_assert(wait_log(0, "http listening", 1, 10000), "a did not start");
    usleep(DEBUG_WINDOW_MS * 1000); /* a keeps failing to reach b and c: debug lines only */
    cr_assert_eq(itest_log_count(&C, 0, TEXT_DEBUG), 0, "debug lines at level info");

    write_config("{\"log-level\": \"debug\", \"log-format\": \"text\"}");
    reload_ok(0);
    cr_assert(wait_after_reload(0, TEXT_DEBUG, DEBUG_WINDOW_MS * 2),
              "no debug line after the level became debug:\n%s", log_since(0, "reload: done"));
    cr_assert(strstr(log_since(0, "reload: done"), "changed=log-level") != NULL);

    write_config("{\"log-level\": \"debug\", \"log-format\": \"json\"}");
    reload_ok(0);
    cr_assert(wait_after_reload(0, JSON_DEBUG, DEBUG_WINDOW_MS * 2), "no JSON debug line:\n%s",
              log_since(0, "reload: done"));
    cr_assert(lines_are(log_since(0, "reload: done"), true), "a text line after the switch:\n%s",
              log_since(0, "reload: done"));

    /* The level back to its default (the key left out): the debug lines stop. */
    write_config("{\"log-format\": \"json\"}");
    reload_ok(0);
    usleep(DEBUG_WINDOW_MS * 1000);
    const char *since = log_since(0, "reload: done");
    cr_assert_eq(events_count(since, JSON_DEBUG), 0, "debug lines at level info again:\n%s", since);
    cr_assert(lines_are(since, true), "not JSON:\n%s", since);
    cr_assert(strstr(since, "\"changed\":\"log-level\"") != NULL, "%s", since);

    write_config("{}");
    reload_ok(0);
    cr_assert(wait_log(0, "reload: done\" changed=log-format", 1, 5000),
              "the last reload line is not text:\n%s", log_since(0, "reload: done"));
    cr_assert(lines_are(log_since(0, "reload: done"), false));
}

/* ---- hooks ---------------------------------------------------------------------------------- */

/* The hook stamps "hook-begin NAME ROLE", then "cmd NAME VARIANT" when it is done, then
 * "hook-end NAME"; the "old" variant takes a second, so that a reload lands while it runs. */
static void write_hook(const char *hook, const char *events)
{
    FILE *f = fopen(hook, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "#!/bin/sh\n# $1: start or stop, $2: which command (old, new)\nexec 2>/dev/null\n"
            "W=%s\nE=%s\n$W --stamp $E hook-begin $1 $ELECTD_ROLE\n"
            "if [ \"$2\" = old ]; then sleep 1; else sleep 0.05; fi\n"
            "$W --stamp $E cmd $1 $2\n$W --stamp $E hook-end $1\n",
            TESTWORKER_BIN, events);
    fclose(f);
    chmod(hook, 0755);
}

static bool wait_event(const char *events, const char *needle, int timeout_ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    while (events_count(events_read(events), needle) == 0 && itest_now_ms() < deadline)
        usleep(20000);
    return events_count(events_read(events), needle) > 0;
}

Test(reload, sighup_changes_the_on_start_hook_of_a_running_member)
{
    char hook[400], events[400], json[1200], needle[64];
    setup(3, 0, "{}");
    snprintf(hook, sizeof(hook), "%s/hook.sh", C.root);
    snprintf(events, sizeof(events), "%s/events", C.root);
    write_hook(hook, events);
    const char *fmt = "{\"on-start\": \"%s start %s\", \"on-stop\": \"%s stop %s\", "
                      "\"hook-timeout\": \"5s\"}";
    snprintf(json, sizeof(json), fmt, hook, "old", hook, "old");
    write_config(json);
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0, "no leader");
    snprintf(needle, sizeof(needle), "%s hook-begin start", C.nodes[l].name);
    cr_assert(wait_event(events, needle, 5000), "on-start did not begin on the leader");

    /* The new commands, on every member, while the leader's old on-start still runs. */
    snprintf(json, sizeof(json), fmt, hook, "new", hook, "new");
    write_config(json);
    for (int i = 0; i < 3; i++) {
        reload_ok(i);
        cr_assert(strstr(log_since(i, "reload: done"), "changed=\"on-start, on-stop\"") != NULL,
                  "%s", log_since(i, "reload: done"));
    }
    snprintf(needle, sizeof(needle), "%s hook-end start", C.nodes[l].name);
    cr_assert(wait_event(events, needle, 5000), "the running on-start did not finish");
    const char *text = events_read(events);
    snprintf(needle, sizeof(needle), "%s cmd start old", C.nodes[l].name);
    cr_assert_eq(events_count(text, needle), 1, "the running hook did not finish as begun:\n%s",
                 text);
    cr_assert_eq(events_count(text, "new"), 0, "a reload ran a hook by itself:\n%s", text);

    /* The next transition runs the new commands: on-stop here, on-start on the successor. */
    int t = (l + 1) % 3;
    char path[64], body[512];
    snprintf(path, sizeof(path), "/v1/leader/transfer?to=%s", C.nodes[t].name);
    int st = 0;
    for (int k = 0;
         k < 50 &&
         (st = itest_http(C.nodes[l].http_port, "POST", path, "", body, sizeof(body))) != 200 &&
         st != 202;
         k++)
        usleep(50000); /* the leader's first round may still be under way */
    cr_assert(st == 200 || st == 202, "transfer: %d %s", st, body);
    snprintf(needle, sizeof(needle), "%s cmd start new", C.nodes[t].name);
    cr_assert(wait_event(events, needle, 10000), "the new leader did not run the new on-start:\n%s",
              events_read(events));
    snprintf(needle, sizeof(needle), "%s cmd stop new", C.nodes[l].name);
    text = events_read(events);
    cr_assert_eq(events_count(text, needle), 1, "the old leader did not run the new on-stop:\n%s",
                 text);
    cr_assert_eq(events_count(text, "cmd start old"), 1, "the old on-start ran again:\n%s", text);
    for (int i = 0; i < 3; i++)
        itest_node_stop(&C, i);
    text = events_read(events);
    char why[400];
    cr_assert(!events_hooks_overlap(text), "two hooks ran at once on one node:\n%s", text);
    cr_assert(!events_hook_primaries_overlap(text, 500000000ull, why, sizeof(why)),
              "two primaries at once: %s\n%s", why, text);
}

/* ---- the HTTP token ---------------------------------------------------------------------------
 */

static int put_with(int i, const char *token)
{
    char header[128], body[256];
    snprintf(header, sizeof(header), "Authorization: Bearer %s", token);
    return itest_http_h(C.nodes[i].http_port, "PUT", "/v1/kv/k", header, "v", body, sizeof(body));
}

Test(reload, sighup_changes_the_http_token)
{
    setup(1, 1, "{\"http-token\": \"old-token-1\"}");
    cr_assert_eq(itest_wait_leader(&C, 15000), 0, "no leader");
    cr_assert_eq(put_with(0, "old-token-1"), 200);
    cr_assert_eq(put_with(0, "new-token-2"), 401);

    write_config("{\"http-token\": \"new-token-2\"}");
    reload_ok(0);
    cr_assert_eq(put_with(0, "old-token-1"), 401, "the old token is still accepted");
    cr_assert_eq(put_with(0, "new-token-2"), 200, "the new token is refused");
    cr_assert(strstr(log_since(0, "reload: done"), "changed=http-token") != NULL);
    cr_assert_eq(itest_log_count(&C, 0, "old-token-1"), 0, "a token in the log");
    cr_assert_eq(itest_log_count(&C, 0, "new-token-2"), 0, "a token in the log");
}

/* ---- refusals, restarts, precedence ------------------------------------------------------------
 */

Test(reload, a_bad_file_is_refused_and_every_running_setting_stays)
{
    /* No timing flags: the file's stop timeout counts (the default lease, 880 ms). */
    itest_cluster_init(&C, 1, 1);
    write_config("{\"http-token\": \"tok-a\", \"log-level\": \"info\"}");
    itest_cluster_arg(&C, "--config");
    itest_cluster_arg(&C, config_path);
    itest_cluster_start(&C);
    cr_assert_eq(itest_wait_leader(&C, 15000), 0, "no leader");
    /* Each also changes the token and the level: neither may be applied. */
    const char *bad[][2] = {
        {"{\"http-token\": \"tok-b\", \"log-level\": \"debug\",", "not valid JSON"},
        {"{\"http-token\": \"tok-b\", \"log-level\": \"debug\", \"log-levle\": \"debug\"}",
         "unknown setting"},
        {"{\"http-token\": \"tok-b\", \"log-level\": \"debug\", \"hook-timeout\": \"soon\"}",
         "hook-timeout"},
        {"{\"http-token\": \"tok-b\", \"log-level\": \"loud\"}", "log-level"},
        {"{\"http-token\": \"tok-b\", \"log-level\": \"debug\", \"stop-timeout\": \"5s\"}",
         "must be less than the leader lease"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        write_config(bad[k][0]);
        bool refused;
        reload(0, &refused);
        cr_assert(refused, "file %zu was not refused", k);
        const char *line = log_since(0, "reload refused");
        cr_assert(strstr(line, "all running settings stay") && strstr(line, bad[k][1]),
                  "file %zu: %s", k, line);
        cr_assert_eq(put_with(0, "tok-a"), 200, "file %zu: the running token was replaced", k);
        cr_assert_eq(put_with(0, "tok-b"), 401, "file %zu: the file's token was applied", k);
        cr_assert_eq(itest_log_count(&C, 0, " DEBUG node="), 0, "file %zu: level applied", k);
    }

    /* A setting that needs a restart is named; what may change does; electd keeps running. */
    write_config("{\"http-token\": \"tok-b\", \"tick\": \"5ms\"}");
    reload_ok(0);
    cr_assert(strstr(log_since(0, "needs a restart"), "settings=tick") != NULL, "%s",
              log_since(0, "reload: certificates"));
    cr_assert_eq(put_with(0, "tok-b"), 200);
    itest_status_t st;
    cr_assert(itest_status(&C, 0, &st) && strcmp(st.role, "leader") == 0);
}

Test(reload, a_flag_or_variable_is_not_overridden_by_the_file)
{
    setenv("ELECTD_LOG_FORMAT", "text", 1); /* this test's process only (criterion forks) */
    itest_cluster_init(&C, 3, 3);
    itest_cluster_arg(&C, "--log-level=info");
    write_config("{\"log-level\": \"info\"}");
    itest_cluster_arg(&C, "--config");
    itest_cluster_arg(&C, config_path);
    itest_node_start(&C, 0);
    cr_assert(wait_log(0, "http listening", 1, 10000), "a did not start");

    write_config("{\"log-level\": \"debug\", \"log-format\": \"json\"}");
    reload_ok(0);
    const char *since = log_since(0, "reload: kept");
    cr_assert(strstr(since, "settings=\"log-level, log-format\"") != NULL, "%s", since);
    cr_assert(wait_log(0, "reload: done\" changed=none", 1, 5000), "%s",
              log_since(0, "reload: done"));
    usleep(DEBUG_WINDOW_MS * 1000);
    since = log_since(0, "reload: done");
    cr_assert_eq(events_count(since, " DEBUG "), 0, "the file's level won over the flag:\n%s",
                 since);
    cr_assert(lines_are(since, false), "the file's format won over the variable:\n%s", since);
    /* Once per reload: a second SIGHUP says it once more, not twice. */
    reload_ok(0);
    cr_assert_eq(itest_log_count(&C, 0, "reload: kept"), 2);
}
