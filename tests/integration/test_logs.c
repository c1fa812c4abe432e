/* test_logs.c — `--log-format json` on a busy run of real processes: three members each
 * supervising a workload that writes to stdout and stderr (bytes that are not UTF-8, control
 * bytes, a line far longer than a log line, a last line without newline), a transfer and a
 * kill -9 of the leader (so that its shim's "electd is gone" line appears). Every line each
 * member's stdout and stderr received must be one JSON object (cJSON, strictly: nothing after
 * it, no raw control byte, valid UTF-8) with no key twice; primaries never overlap. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "events.h"

#define LOG_BYTES_MAX (8u << 20) /* a node's log read whole; a busy minute is far less */

static itest_cluster_t C;
static char events_path[400];

static void fini(void)
{
    itest_cluster_destroy(&C);
}

TestSuite(logs, .fini = fini, .timeout = 180);

/* ---- the strict line check --------------------------------------------------------------- */

/* True when s[0..n) is valid UTF-8 (RFC 3629: no overlong form, surrogate or > U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t need = c < 0x80                   ? 1
                      : (c >= 0xC2 && c <= 0xDF) ? 2
                      : (c >= 0xE0 && c <= 0xEF) ? 3
                      : (c >= 0xF0 && c <= 0xF4) ? 4
                                                 : 0;
        if (need == 0 || i + need > n)
            return false;
        uint32_t cp = need == 1 ? c : c & (0x7Fu >> need);
        for (size_t k = 1; k < need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += need;
    }
    return true;
}

/* The first key that appears twice in one object of the tree, or NULL (cJSON keeps both). */
static const char *duplicate_key(const cJSON *j)
{
    for (const cJSON *a = j ? j->child : NULL; a; a = a->next) {
        if (cJSON_IsObject(j))
            for (const cJSON *b = a->next; b; b = b->next)
                if (strcmp(a->string, b->string) == 0)
                    return a->string;
        const char *d = duplicate_key(a);
        if (d)
            return d;
    }
    return NULL;
}

/* Parses one line strictly; fails the test naming the node and the line otherwise. */
static cJSON *parse_line(const char *node, const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20)
            cr_assert_fail("node %s: raw control byte 0x%02x in line: %.300s", node,
                           (unsigned char)line[i], line);
    cr_assert(utf8_valid((const unsigned char *)line, len), "node %s: invalid UTF-8: %.300s", node,
              line);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(line, &end, true);
    cr_assert(j != NULL, "node %s: not JSON: %.300s", node, line);
    cr_assert(cJSON_IsObject(j), "node %s: not an object: %.300s", node, line);
    const char *dup = duplicate_key(j);
    cr_assert(dup == NULL, "node %s: key \"%s\" twice in: %.300s", node, dup ? dup : "", line);
    return j;
}

/* What the lines of all nodes showed. */
typedef struct seen {
    size_t lines;
    size_t workload[2]; /* records of stdout, stderr */
    size_t partial;     /* records of a line that did not end there */
    size_t long_bytes;  /* letters of the long line gathered from its records */
    bool replacement;   /* U+FFFD for the bytes that are not UTF-8 */
    bool euro;          /* valid UTF-8 kept as it is */
    bool last_line;     /* the workload's last line, without newline, flushed at its exit */
    bool shim_gone;     /* the shim's "electd is gone" line, as JSON */
    bool node_started;  /* with the id as the API's 16 hex digits */
} seen_t;

static bool is_hex_id(const cJSON *v)
{
    if (!cJSON_IsString(v) || strlen(v->valuestring) != 16)
        return false;
    return strspn(v->valuestring, "0123456789abcdef") == 16;
}

static void note_workload(seen_t *s, const cJSON *j)
{
    const char *stream = cJSON_GetStringValue(cJSON_GetObjectItem(j, "stream"));
    const char *line = cJSON_GetStringValue(cJSON_GetObjectItem(j, "line"));
    cr_assert(stream != NULL && line != NULL, "a workload record without stream or line");
    s->workload[strcmp(stream, "stderr") == 0]++;
    if (cJSON_IsTrue(cJSON_GetObjectItem(j, "partial")))
        s->partial++;
    if (strspn(line, "abcdefghijklmnopqrstuvwxyz") > 100)
        s->long_bytes += strlen(line);
    s->replacement |= strstr(line, "\xef\xbf\xbd") != NULL;
    s->euro |= strstr(line, "\xe2\x82\xac euro") != NULL;
    s->last_line |= strcmp(line, "stopping: a last line without newline") == 0;
}

static void note_line(seen_t *s, const cJSON *j)
{
    const char *src = cJSON_GetStringValue(cJSON_GetObjectItem(j, "src"));
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(j, "msg"));
    cr_assert(cJSON_IsString(cJSON_GetObjectItem(j, "ts")), "a line without ts");
    cr_assert(cJSON_IsString(cJSON_GetObjectItem(j, "level")), "a line without level");
    if (src != NULL && strcmp(src, "workload") == 0)
        note_workload(s, j);
    if (src != NULL && strcmp(src, "shim") == 0 && msg != NULL && strstr(msg, "electd is gone"))
        s->shim_gone = true;
    if (msg != NULL && strcmp(msg, "node started") == 0) {
        cr_assert(is_hex_id(cJSON_GetObjectItem(j, "id")), "node started: id not in hex");
        s->node_started = true;
    }
}

static void check_node_log(int i, seen_t *s)
{
    FILE *f = fopen(C.nodes[i].log, "r");
    cr_assert(f != NULL);
    char *buf = malloc(LOG_BYTES_MAX + 1);
    cr_assert(buf != NULL);
    size_t n = fread(buf, 1, LOG_BYTES_MAX, f);
    fclose(f);
    cr_assert_lt(n, LOG_BYTES_MAX, "node %s's log is too large to check", C.nodes[i].name);
    buf[n] = '\0';
    cr_assert_gt(n, 0, "node %s's log is empty", C.nodes[i].name);
    for (char *p = buf; p < buf + n;) {
        char *nl = memchr(p, '\n', (size_t)(buf + n - p));
        cr_assert(nl != NULL, "node %s: the last line has no newline: %.300s", C.nodes[i].name, p);
        *nl = '\0';
        cr_assert_leq((size_t)(nl - p) + 1, 4096, "node %s: a line of %zu bytes", C.nodes[i].name,
                      (size_t)(nl - p) + 1);
        cJSON *j = parse_line(C.nodes[i].name, p, (size_t)(nl - p));
        note_line(s, j);
        cJSON_Delete(j);
        s->lines++;
        p = nl + 1;
    }
    free(buf);
}

/* ---- the run ----------------------------------------------------------------------------- */

static void node_arg(int i, const char *arg)
{
    itest_node_t *nd = &C.nodes[i];
    cr_assert_lt(nd->n_extra, ITEST_MAX_ARGS);
    nd->extra[nd->n_extra++] = arg;
}

/* Polls (bounded) until node i's log has a line containing needle. */
static bool wait_log(int i, const char *needle, int timeout_ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    do {
        if (itest_log_count(&C, i, needle) > 0)
            return true;
        usleep(20000);
    } while (itest_now_ms() < deadline);
    return false;
}

/* Starts the cluster and returns the node running the first workload. */
static int start(void)
{
    itest_cluster_init(&C, 3, 3);
    const char *args[] = {"--heartbeat-interval=50ms", "--election-timeout=500ms",
                          "--stop-timeout=200ms", "--log-format=json"};
    for (size_t k = 0; k < sizeof(args) / sizeof(args[0]); k++)
        itest_cluster_arg(&C, args[k]);
    snprintf(events_path, sizeof(events_path), "%s/events", C.root);
    for (int i = 0; i < 3; i++) {
        node_arg(i, "--exec");
        node_arg(i, "--");
        node_arg(i, TESTWORKER_BIN);
        node_arg(i, events_path);
    }
    cr_assert_eq(setenv("TESTWORKER_NOISY", "1", 1), 0);
    itest_cluster_start(&C);
    int first = events_wait_running(events_path, NULL, 1, 15000);
    cr_assert_geq(first, 0, "no workload started");
    static events_t ev;
    events_load(events_path, &ev);
    int l = itest_node_index(&C, ev.iv[first].node);
    cr_assert_geq(l, 0);
    return l;
}

Test(logs, a_busy_json_run_writes_only_json_objects_with_unique_keys)
{
    static events_t ev;
    int l = start();
    cr_assert(wait_log(l, "tick 2", 5000), "the workload's ticks never reached the log");

    /* A transfer: the workload stops (its last line has no newline) and starts elsewhere. */
    char body[512];
    int st =
        itest_http(C.nodes[l].http_port, "POST", "/v1/leader/transfer", "", body, sizeof(body));
    cr_assert_eq(st, 202, "transfer: %d %s", st, body);
    events_load(events_path, &ev);
    int next = events_wait_running(events_path, C.nodes[l].name, ev.n + 1, 10000);
    cr_assert_geq(next, 0, "no workload after the transfer");
    events_load(events_path, &ev);
    int l2 = itest_node_index(&C, ev.iv[next].node);
    cr_assert(wait_log(l2, "tick 1", 5000), "the second workload's ticks never reached the log");

    /* kill -9 of the leader: its shim says electd is gone and stops the workload. */
    itest_node_signal(&C, l2, SIGKILL);
    cr_assert(wait_log(l2, "electd is gone", 5000), "no shim line after kill -9");
    next = events_wait_running(events_path, C.nodes[l2].name, ev.n + 1, 10000);
    cr_assert_geq(next, 0, "no workload after the kill");
    usleep(300000);
    for (int i = 0; i < C.n; i++)
        if (C.nodes[i].pid)
            itest_node_stop(&C, i);

    events_load(events_path, &ev);
    size_t a, b;
    cr_assert(!events_overlap(&ev, &a, &b), "primary intervals overlap");
    seen_t s = {0};
    for (int i = 0; i < C.n; i++)
        check_node_log(i, &s);
    cr_assert_gt(s.workload[0], 0, "no workload stdout record");
    cr_assert_gt(s.workload[1], 0, "no workload stderr record");
    cr_assert(s.replacement, "the bytes that are not UTF-8 were not replaced");
    cr_assert(s.euro, "valid UTF-8 of the workload was not kept");
    cr_assert_gt(s.partial, 0, "the long line was not split into partial records");
    /* Three workloads ran, each wrote the long line once. */
    cr_assert_geq(s.long_bytes, 3 * 20000, "the long line lost bytes: %zu", s.long_bytes);
    cr_assert(s.last_line, "the last line without newline was not flushed at exit");
    cr_assert(s.shim_gone, "no JSON shim line \"electd is gone\"");
    cr_assert(s.node_started, "no \"node started\" line");
}
