/* test_https.c — the HTTP API over TLS with real electd processes on 127.0.0.1: a 3-member
 * HTTPS cluster used by the CLI with --cacert (and refused, with OpenSSL's reason, without it
 * or with another CA), redirects and leader addresses that say https, client certificates
 * required by --http-trusted-ca-file (the CLI's --cert/--key), --forward relaying a write
 * over mutual TLS, TLS failures counted, and the secure-by-default refusal of a non-loopback
 * --listen-http without a token or client certificates (--insecure-http starts, warns and says
 * so in /v1/status). Certificates: tests/tls/make_certs.sh at test time (member-b carries
 * IP:127.0.0.1 and both EKUs; every member uses it). */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"
#include "http.h"
#include "tls_test_util.h"

TLS_TEST_CERTS_MAKE_HOOK()
TLS_TEST_CERTS_REMOVE_HOOK()

#define LEADER_WAIT_MS 20000
#define OUT_MAX        16384

static itest_cluster_t cl;

static void teardown(void)
{
    itest_cluster_destroy(&cl);
}

TestSuite(https, .fini = teardown);

/* ---- a test-side HTTPS client (tls_test_util's blocking client + http's response parser) -- */

typedef struct reply {
    int status; /* -1: no TLS connection or no complete response */
    char body[OUT_MAX];
    char location[512];
} reply_t;

/* One request over TLS with a client context of `leaf` (NULL: no client certificate)
 * trusting ca.crt. */
static void https_request(int port, const char *leaf, const char *method, const char *path,
                          const char *body, reply_t *r)
{
    memset(r, 0, sizeof(*r));
    r->status = -1;
    tls_ctx_t *ctx = ctx_new(TLS_ROLE_CLIENT, leaf, "ca");
    struct tls_client c;
    char req[1024];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, blen, body ? body : "");
    http_response_t resp;
    http_response_open(&resp, 0, 0);
    if (tls_client_open(&c, port, ctx, "127.0.0.1") == 0 &&
        tls_client_send(&c, req, (size_t)n) == 0) {
        char buf[8192];
        size_t got;
        int rc = 0;
        for (int i = 0; i < 256 && rc == 0 && tls_client_recv(&c, buf, sizeof(buf), &got) == 0; i++)
            rc = http_response_feed(&resp, buf, got);
        if (resp.done || http_response_finish(&resp) == 0) {
            size_t len;
            const char *b = http_response_body(&resp, &len);
            snprintf(r->body, sizeof(r->body), "%.*s", (int)len, b);
            const char *loc = http_response_header(&resp, "Location");
            snprintf(r->location, sizeof(r->location), "%s", loc ? loc : "");
            r->status = resp.status;
        }
    }
    http_response_close(&resp);
    tls_client_close(&c);
    tls_ctx_close(ctx);
}

/* The node's role and leader name from /v1/status over HTTPS. */
static bool https_status(int port, const char *leaf, char *role, char *leader, size_t len)
{
    reply_t r;
    https_request(port, leaf, "GET", "/v1/status", NULL, &r);
    if (r.status != 200)
        return false;
    cJSON *o = cJSON_Parse(r.body);
    const cJSON *ro = cJSON_GetObjectItem(o, "role");
    const cJSON *l = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "leader"), "name");
    snprintf(role, len, "%s", cJSON_IsString(ro) ? ro->valuestring : "");
    snprintf(leader, len, "%s", cJSON_IsString(l) ? l->valuestring : "");
    cJSON_Delete(o);
    return true;
}

/* Polls /v1/status over HTTPS until all nodes name one leader that says it leads. */
static int https_wait_leader(const char *leaf)
{
    uint64_t deadline = itest_now_ms() + LEADER_WAIT_MS;
    while (itest_now_ms() < deadline) {
        char role[16], leader[16], first[16] = "";
        int who = -1, agree = 0;
        for (int i = 0; i < cl.n; i++) {
            if (!https_status(cl.nodes[i].http_port, leaf, role, leader, sizeof(role)) ||
                !leader[0] || (first[0] && strcmp(first, leader) != 0))
                break;
            snprintf(first, sizeof(first), "%s", leader);
            if (strcmp(role, "leader") == 0 && strcmp(cl.nodes[i].name, leader) == 0)
                who = i;
            agree++;
        }
        if (agree == cl.n && who >= 0)
            return who;
        usleep(100 * 1000);
    }
    return -1;
}

/* Starts the members of cl (initialised) serving HTTPS with crt and key, plus `extra`. */
static void start_https(const char *crt, const char *key, const char *const *extra)
{
    int n = cl.n;
    itest_cluster_arg(&cl, "--http-cert-file");
    itest_cluster_arg(&cl, crt);
    itest_cluster_arg(&cl, "--http-key-file");
    itest_cluster_arg(&cl, key);
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        itest_cluster_arg(&cl, extra[i]);
    itest_cluster_start(&cl);
    /* tls_test_util's client asserts that connect succeeds: wait for the listeners (a
     * plaintext request gets the HTTPS port's 400). */
    uint64_t deadline = itest_now_ms() + LEADER_WAIT_MS;
    for (int i = 0; i < n; i++)
        while (itest_http(cl.nodes[i].http_port, "GET", "/", NULL, NULL, 0) < 0 &&
               itest_now_ms() < deadline)
            usleep(20 * 1000);
}

/* n members serving HTTPS with member-b's certificate (stored copies of the paths). */
static void start_https_cluster(int n, const char *const *extra)
{
    static char crt[300], key[300];
    itest_cluster_init(&cl, n, n);
    snprintf(crt, sizeof(crt), "%s", cert_path("member-b.crt"));
    snprintf(key, sizeof(key), "%s", cert_path("member-b.key"));
    start_https(crt, key, extra);
}

/* ---- the CLI as a user runs it ---------------------------------------------------------- */

/* Runs `electd ARGS 2>&1` (a shell command line of quoted arguments) without the caller's
 * ELECTD_* variables, until it exits; the output into out, the exit code returned. */
static int vrun(char *out, const char *fmt, va_list ap)
{
    char args[2048], cmd[2600];
    vsnprintf(args, sizeof(args), fmt, ap);
    snprintf(cmd, sizeof(cmd),
             "env -u ELECTD_HTTP -u ELECTD_HTTP_URL -u ELECTD_HTTP_TOKEN -u ELECTD_CACERT "
             "-u ELECTD_CERT -u ELECTD_KEY -u ELECTD_INSECURE_HTTP '%s' %s 2>&1",
             ELECTD_BIN, args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, OUT_MAX - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A client subcommand (bounded by --timeout 5s). */
static int cli(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cli(char *out, const char *fmt, ...)
{
    char f[512];
    snprintf(f, sizeof(f), "%s --timeout 5s", fmt);
    va_list ap;
    va_start(ap, fmt);
    int rc = vrun(out, f, ap);
    va_end(ap);
    return rc;
}

/* electd with arguments it refuses at start (it exits at once, before any listener). */
static int daemon_refusal(char *out, const char *args, ...)
{
    va_list ap;
    va_start(ap, args);
    int rc = vrun(out, args, ap);
    va_end(ap);
    return rc;
}

static char *url(int i)
{
    static char bufs[4][64];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, 64, "https://127.0.0.1:%d", cl.nodes[i].http_port);
    return b;
}

/* ---- tests -------------------------------------------------------------------------------- */

Test(https, cli_uses_cacert_and_fails_clearly_without_it, .timeout = 120)
{
    char out[OUT_MAX];
    start_https_cluster(3, NULL);
    int leader = https_wait_leader(NULL);
    cr_assert_geq(leader, 0, "no leader over HTTPS");
    int follower = (leader + 1) % 3;
    const char *ca = cert_path("ca.crt");

    cr_assert_eq(cli(out, "status --http %s --cacert '%s'", url(follower), ca), 0, "%s", out);
    cr_assert(strstr(out, "role      follower") != NULL, "%s", out);
    /* through a follower: the CLI follows the 421 to the leader's https address */
    cr_assert_eq(cli(out, "kv put tls/k hello --http %s --cacert '%s'", url(follower), ca), 0, "%s",
                 out);
    cr_assert_eq(cli(out, "kv get tls/k --http %s --cacert '%s'", url(leader), ca), 0, "%s", out);
    cr_assert(strstr(out, "hello") != NULL, "%s", out);

    /* no CA: the system's trust store does not know the test CA */
    cr_assert_eq(cli(out, "status --http %s", url(leader)), 2, "%s", out);
    cr_assert(strstr(out, "TLS failed: certificate verify failed") != NULL, "%s", out);
    cr_assert(strchr(out, '\n') == strrchr(out, '\n'), "one line: %s", out);
    cr_assert_eq(
        cli(out, "kv get tls/k --http %s --cacert '%s'", url(leader), cert_path("other-ca.crt")), 2,
        "%s", out);
    cr_assert(strstr(out, "certificate verify failed") != NULL, "%s", out);
    /* plain HTTP to the HTTPS port */
    cr_assert_eq(cli(out, "status --http 127.0.0.1:%d", cl.nodes[leader].http_port), 2, "%s", out);
    cr_assert(strstr(out, "https://") != NULL, "%s", out);

    reply_t r;
    https_request(cl.nodes[leader].http_port, NULL, "GET", "/metrics", NULL, &r);
    cr_assert_eq(r.status, 200);
    const char *m = strstr(r.body, "\nelectd_http_tls_failures_total ");
    cr_assert_not_null(m, "no TLS failure counter");
    cr_assert_geq(atoi(m + strlen("\nelectd_http_tls_failures_total ")), 3, "%s", m);
    https_request(cl.nodes[leader].http_port, NULL, "GET", "/v1/status", NULL, &r);
    cr_assert(strstr(r.body, "\"https\":true") != NULL, "%s", r.body);
    cr_assert(strstr(r.body, "\"insecure_http\":false") != NULL, "%s", r.body);
    cr_assert_gt(itest_log_count(&cl, leader, "HTTPS connection refused"), 0);
}

Test(https, follower_redirects_with_https, .timeout = 120)
{
    start_https_cluster(3, NULL);
    int leader = https_wait_leader(NULL);
    cr_assert_geq(leader, 0, "no leader over HTTPS");
    int follower = (leader + 1) % 3;
    reply_t r;
    https_request(cl.nodes[follower].http_port, NULL, "PUT", "/v1/kv/tls/r", "v", &r);
    cr_assert_eq(r.status, 421, "%d %s", r.status, r.body);
    char want[128];
    snprintf(want, sizeof(want), "https://127.0.0.1:%d/v1/kv/tls/r", cl.nodes[leader].http_port);
    cr_assert_str_eq(r.location, want);
    snprintf(want, sizeof(want), "\"url\":\"https://127.0.0.1:%d\"", cl.nodes[leader].http_port);
    cr_assert(strstr(r.body, want) != NULL, "%s lacks %s", r.body, want);
    snprintf(want, sizeof(want), "\"http\":\"127.0.0.1:%d\"", cl.nodes[leader].http_port);
    cr_assert(strstr(r.body, want) != NULL, "host:port kept: %s", r.body);
}

Test(https, client_certificates_and_forward_over_mutual_tls, .timeout = 120)
{
    char out[OUT_MAX];
    const char *extra[] = {"--http-trusted-ca-file", cert_path("ca.crt"), "--forward", NULL};
    start_https_cluster(3, extra);
    int leader = https_wait_leader("client");
    cr_assert_geq(leader, 0, "no leader over HTTPS with client certificates");
    int follower = (leader + 1) % 3;
    const char *ca = cert_path("ca.crt");

    cr_assert_eq(cli(out, "status --http %s --cacert '%s' --cert '%s' --key '%s'", url(leader), ca,
                     cert_path("client.crt"), cert_path("client.key")),
                 0, "%s", out);
    cr_assert_eq(cli(out, "status --http %s --cacert '%s'", url(leader), ca), 2, "%s", out);
    cr_assert(strstr(out, "certificate required") != NULL, "%s", out);
    cr_assert_eq(cli(out, "status --http %s --cacert '%s' --cert '%s' --key '%s'", url(leader), ca,
                     cert_path("imposter-b.crt"), cert_path("imposter-b.key")),
                 2, "%s", out);
    cr_assert(strstr(out, "unknown ca") != NULL, "%s", out);

    /* --forward: the follower relays the write to the leader over TLS, presenting its own
     * member certificate (the leader requires one). */
    reply_t r;
    https_request(cl.nodes[follower].http_port, "client", "PUT", "/v1/kv/tls/fwd", "relayed", &r);
    cr_assert_eq(r.status, 200, "%d %s", r.status, r.body);
    https_request(cl.nodes[leader].http_port, "client", "GET", "/v1/kv/tls/fwd?raw", NULL, &r);
    cr_assert_eq(r.status, 200, "%d %s", r.status, r.body);
    cr_assert_str_eq(r.body, "relayed");
}

Test(https, non_loopback_listen_http_needs_auth_unless_insecure_http, .timeout = 60)
{
    char out[OUT_MAX], dd[300], args[1024];
    itest_cluster_init(&cl, 1, 1);
    snprintf(dd, sizeof(dd), "%s", cl.nodes[0].dir);
    int port = cl.nodes[0].http_port;
    snprintf(args, sizeof(args),
             "--name a --peers a=127.0.0.1:%d --data-dir '%s' --listen-http 0.0.0.0:%d "
             "--advertise-http 127.0.0.1:%d",
             cl.nodes[0].peer_port, dd, port, port);
    cr_assert_eq(daemon_refusal(out, "%s", args), 2, "%s", out);
    cr_assert(strstr(out, "can be reached from other hosts") != NULL, "%s", out);
    cr_assert(strstr(out, "--insecure-http") != NULL, "%s", out);
    cr_assert_eq(itest_http(port, "GET", "/v1/status", NULL, NULL, 0), -1, "nothing listens");

    /* --insecure-http: it starts, warns and says so in /v1/status */
    static char listen_http[64], advertise[64];
    snprintf(listen_http, sizeof(listen_http), "--listen-http=0.0.0.0:%d", port);
    snprintf(advertise, sizeof(advertise), "--advertise-http=127.0.0.1:%d", port);
    cl.nodes[0].extra[cl.nodes[0].n_extra++] = listen_http;
    cl.nodes[0].extra[cl.nodes[0].n_extra++] = advertise;
    cl.nodes[0].extra[cl.nodes[0].n_extra++] = "--insecure-http";
    itest_node_start(&cl, 0);
    char body[4096] = "";
    uint64_t deadline = itest_now_ms() + 10000;
    while (itest_now_ms() < deadline &&
           itest_http(port, "GET", "/v1/status", NULL, body, sizeof(body)) != 200)
        usleep(50 * 1000);
    cr_assert(strstr(body, "\"insecure_http\":true") != NULL, "%s", body);
    cr_assert(strstr(body, "\"https\":false") != NULL, "%s", body);
    cr_assert_gt(itest_log_count(&cl, 0, "--insecure-http: the HTTP API can be reached"), 0);
}

/* Copies certs/<from> to path. */
static void copy_file(const char *from, const char *path)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", cert_path(from), path);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* Polls until node 0's log has `count` lines containing needle (at most 10 s). */
static bool wait_log(const char *needle, int count)
{
    uint64_t deadline = itest_now_ms() + 10000;
    while (itest_log_count(&cl, 0, needle) < count && itest_now_ms() < deadline)
        usleep(20 * 1000);
    return itest_log_count(&cl, 0, needle) >= count;
}

/* SIGHUP re-reads the API's certificate: new connections get the new one; a bad file is
 * refused and the one in use stays. */
Test(https, sighup_rotates_the_api_certificate, .timeout = 120)
{
    char out[OUT_MAX];
    static char crt[300], key[300];
    itest_cluster_init(&cl, 1, 1);
    snprintf(crt, sizeof(crt), "%s/http.crt", cl.root);
    snprintf(key, sizeof(key), "%s/http.key", cl.root);
    copy_file("member-b.crt", crt);
    copy_file("member-b.key", key);
    start_https(crt, key, NULL);
    cr_assert_geq(https_wait_leader(NULL), 0);
    const char *ca = cert_path("ca.crt"), *other = cert_path("other-ca.crt");
    cr_assert_eq(cli(out, "status --http %s --cacert '%s'", url(0), ca), 0, "%s", out);

    copy_file("imposter-b.crt", crt); /* the same names, signed by the other CA */
    copy_file("imposter-b.key", key);
    itest_node_signal(&cl, 0, SIGHUP);
    cr_assert(wait_log("reload: certificates re-read", 1), "no reload line");
    cr_assert_eq(cli(out, "status --http %s --cacert '%s'", url(0), other), 0, "%s", out);
    cr_assert_eq(cli(out, "status --http %s --cacert '%s'", url(0), ca), 2, "%s", out);

    copy_file("garbage.pem", crt);
    itest_node_signal(&cl, 0, SIGHUP);
    cr_assert(wait_log("reload: certificates re-read", 2), "no second reload line");
    cr_assert_eq(cli(out, "status --http %s --cacert '%s'", url(0), other), 0,
                 "the old certificate stays: %s", out);
}
