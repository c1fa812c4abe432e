/* test_peer_tls.c — real electd processes with mutual TLS between members (certificates made
 * at test time by make_peer_certs.sh): a TLS cluster elects, fails over and replicates; a
 * member whose certificate comes from another CA, or names another member, is refused while
 * the others keep working; a plain-TCP peer cannot connect to a TLS member; the secure
 * default refuses an unauthenticated peer listener reachable from other hosts; SIGHUP
 * re-reads the certificates (rotation) and never kills electd. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"
#include "tls_test_util.h"

static itest_cluster_t C;
static char certs[300];

static void fini(void)
{
    itest_cluster_destroy(&C);
    if (certs[0] && getenv("ITEST_KEEP") == NULL) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certs);
        (void)system(cmd);
    }
}

TestSuite(peer_tls, .fini = fini, .timeout = 120);

static void fast(itest_cluster_t *c)
{
    itest_cluster_arg(c, "--heartbeat-interval=50ms");
    itest_cluster_arg(c, "--election-timeout=500ms");
    itest_cluster_arg(c, "--stop-timeout=200ms");
    itest_cluster_arg(c, "--log-level=debug");
}

/* true while node i's process has not exited (reaped here if it has). */
static bool alive(itest_cluster_t *c, int i)
{
    int status;
    if (c->nodes[i].pid == 0)
        return false;
    if (waitpid(c->nodes[i].pid, &status, WNOHANG) == c->nodes[i].pid) {
        c->nodes[i].pid = 0;
        return false;
    }
    return true;
}

/* Polls node i's log for needle (at least `count` lines) for up to ms. */
static bool wait_log(itest_cluster_t *c, int i, const char *needle, int count, int ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)ms;
    do {
        if (itest_log_count(c, i, needle) >= count)
            return true;
        usleep(20000);
    } while (itest_now_ms() < deadline);
    return false;
}

/* ---- certificates ------------------------------------------------------------------------ */

static void make_certs(void)
{
    cr_assert(itest_peer_certs(MAKE_PEER_CERTS_SH, certs, sizeof(certs)),
              "make_peer_certs.sh failed (is the openssl CLI installed?)");
}

/* "<certs>/<file>" in one of 16 rotating buffers. */
static const char *cert(const char *file)
{
    static char bufs[16][400];
    static int next;
    char *b = bufs[next++ % 16];
    snprintf(b, 400, "%s/%s", certs, file);
    return b;
}

/* Node i presents <leaf>.crt/.key and trusts trust.crt (the cluster's CA and the second). */
static void node_tls(itest_cluster_t *c, int i, const char *leaf)
{
    static char args[ITEST_MAX_NODES][3][450];
    itest_node_t *nd = &c->nodes[i];
    snprintf(args[i][0], sizeof(args[i][0]), "--peer-cert-file=%s/%s.crt", certs, leaf);
    snprintf(args[i][1], sizeof(args[i][1]), "--peer-key-file=%s/%s.key", certs, leaf);
    snprintf(args[i][2], sizeof(args[i][2]), "--peer-trusted-ca-file=%s/trust.crt", certs);
    for (int k = 0; k < 3; k++)
        nd->extra[nd->n_extra++] = args[i][k];
}

/* A 3-member cluster, member i presenting leaf[i] (NULL: no peer TLS). */
static void start_tls3(const char *leaf_a, const char *leaf_b, const char *leaf_c)
{
    const char *leaf[3] = {leaf_a, leaf_b, leaf_c};
    make_certs();
    itest_cluster_init(&C, 3, 3);
    fast(&C);
    for (int i = 0; i < 3; i++)
        if (leaf[i] != NULL)
            node_tls(&C, i, leaf[i]);
    itest_cluster_start(&C);
}

static int put(int node, const char *path, const char *value)
{
    char body[4096];
    return itest_http(C.nodes[node].http_port, "PUT", path, value, body, sizeof(body));
}

/* Polls until a stale read of path on node shows want. */
static bool wait_value(int node, const char *path, const char *want, int ms)
{
    char url[256], body[4096];
    snprintf(url, sizeof(url), "%s?stale", path);
    uint64_t deadline = itest_now_ms() + (uint64_t)ms;
    do {
        if (itest_http(C.nodes[node].http_port, "GET", url, NULL, body, sizeof(body)) == 200 &&
            strstr(body, want))
            return true;
        usleep(20000);
    } while (itest_now_ms() < deadline);
    return false;
}

/* The two nodes a and b elect a leader between them and replicate a write. */
static void a_and_b_work(void)
{
    uint64_t deadline = itest_now_ms() + 20000;
    int l = -1;
    while (itest_now_ms() < deadline && l < 0) {
        itest_status_t sa, sb;
        if (itest_status(&C, 0, &sa) && itest_status(&C, 1, &sb) && sa.leader[0] &&
            strcmp(sa.leader, sb.leader) == 0 && strcmp(sa.leader, "c") != 0)
            l = sa.leader[0] - 'a';
        else
            usleep(20000);
    }
    cr_assert_geq(l, 0, "a and b did not agree on a leader");
    cr_assert_eq(put(l, "/v1/kv/k", "ab"), 200);
    cr_assert(wait_value(1 - l, "/v1/kv/k", "ab", 10000), "the write did not replicate");
}

Test(peer_tls, sighup_and_sigusr_do_not_kill_electd)
{
    itest_cluster_init(&C, 1, 1);
    fast(&C);
    itest_cluster_start(&C);
    cr_assert_geq(itest_wait_leader(&C, 15000), 0, "no leader");
    itest_node_signal(&C, 0, SIGHUP);
    cr_assert(wait_log(&C, 0, "reload: done", 1, 5000), "no reload line after SIGHUP (alive: %d)",
              alive(&C, 0));
    itest_node_signal(&C, 0, SIGUSR1);
    itest_node_signal(&C, 0, SIGUSR2);
    cr_assert(wait_log(&C, 0, "signal=SIGUSR2", 1, 5000), "SIGUSR2 not logged (alive: %d)",
              alive(&C, 0));
    cr_assert(alive(&C, 0), "electd exited on SIGHUP/SIGUSR1/SIGUSR2");
    itest_status_t st;
    cr_assert(itest_status(&C, 0, &st));
    cr_assert_str_eq(st.role, "leader");
    cr_assert_eq(itest_log_count(&C, 0, "reload: certificates re-read (no TLS configured)"), 1);
}

Test(peer_tls, tls_cluster_elects_fails_over_and_replicates)
{
    /* electd finds electd-tls.so next to itself (ctest's ELECTD_TLS_MODULE is not used). */
    unsetenv("ELECTD_TLS_MODULE");
    start_tls3("a", "b", "c");
    int l = itest_wait_leader(&C, 20000);
    cr_assert_geq(l, 0, "no leader in the TLS cluster");
    cr_assert_eq(put(l, "/v1/kv/pos", "one"), 200);
    for (int i = 0; i < 3; i++)
        cr_assert(wait_value(i, "/v1/kv/pos", "one", 10000), "node %d did not apply", i);
    cr_assert_eq(itest_log_count(&C, l, "peer connected"), 2, "leader's peers over TLS");
    itest_node_signal(&C, l, SIGKILL);
    int l2 = itest_wait_leader(&C, 20000);
    cr_assert_geq(l2, 0, "no leader after kill -9 of the leader");
    cr_assert_neq(l2, l);
    cr_assert_eq(put(l2, "/v1/kv/pos", "two"), 200);
    for (int i = 0; i < 3; i++)
        if (i != l)
            cr_assert(wait_value(i, "/v1/kv/pos", "two", 10000), "node %d did not apply", i);
    cr_assert_eq(itest_metric(&C, l2, "electd_peer_tls_refused_total"), 0);
    char body[8192];
    cr_assert_eq(itest_http(C.nodes[l2].http_port, "GET", "/v1/status", NULL, body, sizeof(body)),
                 200);
    cr_assert(strstr(body, "\"insecure_peer\":false"), "%s", body);
}

Test(peer_tls, a_member_with_a_certificate_from_another_ca_is_refused)
{
    start_tls3("a", "b", "c-other");
    a_and_b_work();
    cr_assert(wait_log(&C, 0, "refused peer", 1, 10000), "a never refused c");
    cr_assert(wait_log(&C, 0, "certificate verify failed", 1, 10000), "no OpenSSL reason on a");
    cr_assert(wait_log(&C, 2, "peer refused our TLS certificate", 1, 10000), "c was not told");
    cr_assert_gt(itest_metric(&C, 0, "electd_peer_tls_refused_total"), 0);
    itest_status_t st;
    cr_assert(itest_status(&C, 2, &st));
    cr_assert_str_eq(st.leader, "", "c knows a leader without a certificate the others trust");
}

Test(peer_tls, a_member_presenting_another_members_certificate_is_refused)
{
    start_tls3("a", "b", "c-as-b");
    a_and_b_work();
    cr_assert(wait_log(&C, 0, "TLS certificate of another member", 1, 10000), "a never refused c");
    cr_assert(wait_log(&C, 2, "our TLS certificate does not name this member", 1, 10000) ||
                  wait_log(&C, 2, "TLS is up but no HELLO", 1, 1000),
              "c was not told");
    cr_assert_gt(itest_metric(&C, 0, "electd_peer_tls_refused_total"), 0);
    itest_status_t st;
    cr_assert(itest_status(&C, 2, &st));
    cr_assert_str_eq(st.leader, "", "c joined with b's certificate");
}

Test(peer_tls, a_plain_tcp_peer_cannot_connect_to_a_tls_member)
{
    start_tls3("a", "b", NULL);
    a_and_b_work();
    cr_assert(wait_log(&C, 0, "plaintext where TLS was expected", 1, 10000), "%s", "a's refusal");
    cr_assert(wait_log(&C, 2, "the peer uses peer TLS and this member does not", 1, 10000),
              "c's log does not say why");
    /* A raw client speaking the plaintext handshake gets no challenge, only a closed socket. */
    long before = itest_metric(&C, 0, "electd_peer_tls_refused_total");
    cr_assert_gt(before, 0, "c's connections were not counted");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(C.nodes[0].peer_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    char hello[200];
    memset(hello, 0, sizeof(hello));
    memcpy(hello, "ELHI", 4);
    cr_assert_eq(write(fd, hello, sizeof(hello)), (ssize_t)sizeof(hello));
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char got[256];
    ssize_t n = 0;
    if (poll(&p, 1, 5000) == 1)
        n = read(fd, got, sizeof(got));
    close(fd);
    cr_assert(n <= 0 || memmem(got, (size_t)n, "ELCH", 4) == NULL, "a plaintext challenge");
    cr_assert_gt(itest_metric(&C, 0, "electd_peer_tls_refused_total"), before);
}

Test(peer_tls, an_exposed_peer_listener_needs_tls_or_a_token)
{
    itest_cluster_init(&C, 1, 1);
    fast(&C);
    static char listen[64];
    snprintf(listen, sizeof(listen), "--listen-peer=0.0.0.0:%d", C.nodes[0].peer_port);
    C.nodes[0].extra[C.nodes[0].n_extra++] = listen;
    itest_node_start(&C, 0);
    int status = -1;
    for (int i = 0; i < 500 && waitpid(C.nodes[0].pid, &status, WNOHANG) == 0; i++)
        usleep(10000);
    C.nodes[0].pid = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2, "electd started (status %d)", status);
    cr_assert_eq(itest_log_count(&C, 0,
                                 "can be reached from other hosts but members are not "
                                 "authenticated: set --cluster-token"),
                 1);
    C.nodes[0].extra[C.nodes[0].n_extra++] = "--insecure-peer";
    itest_node_start(&C, 0);
    cr_assert_geq(itest_wait_leader(&C, 15000), 0, "did not start with --insecure-peer");
    cr_assert_eq(itest_log_count(&C, 0, "insecure peer port (--insecure-peer)"), 1);
    char body[8192];
    cr_assert_eq(itest_http(C.nodes[0].http_port, "GET", "/v1/status", NULL, body, sizeof(body)),
                 200);
    cr_assert(strstr(body, "\"insecure_peer\":true"), "%s", body);
}

/* The DNS names of the certificate node 0 (a) serves to a TLS client now. */
static void served_names(char *out, size_t len)
{
    tls_config_t cfg = {.role = TLS_ROLE_CLIENT,
                        .cert_file = cert("b.crt"),
                        .key_file = cert("b.key"),
                        .ca_file = cert("trust.crt")};
    tls_ctx_t *ctx = NULL;
    char err[TLS_ERROR_TEXT_MAX];
    cr_assert_eq(tls_ctx_open(&cfg, &ctx, err, sizeof(err)), 0, "%s", err);
    struct tls_client cl;
    cr_assert_eq(tls_client_open(&cl, C.nodes[0].peer_port, ctx, NULL), 0, "%s", cl.err);
    out[0] = '\0';
    for (size_t i = 0; i < tls_session_peer_name_count(cl.s); i++) {
        size_t n = strlen(out);
        snprintf(out + n, len - n, "%s ", tls_session_peer_name(cl.s, i));
    }
    tls_client_close(&cl);
    tls_ctx_close(ctx);
}

static void copy_file(const char *from, const char *to)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

Test(peer_tls, sighup_rotates_the_certificate_and_keeps_the_old_one_when_the_new_is_bad)
{
    make_certs();
    copy_file(cert("a.crt"), cert("live.crt"));
    copy_file(cert("a.key"), cert("live.key"));
    itest_cluster_init(&C, 3, 3);
    fast(&C);
    node_tls(&C, 0, "live");
    node_tls(&C, 1, "b");
    node_tls(&C, 2, "c");
    itest_cluster_start(&C);
    cr_assert_geq(itest_wait_leader(&C, 20000), 0);
    char names[512];
    served_names(names, sizeof(names));
    cr_assert_str_eq(names, "DNS:a ");
    /* A bad file: refused, the old certificate stays. */
    copy_file(cert("c-other.key"), cert("live.key"));
    itest_node_signal(&C, 0, SIGHUP);
    cr_assert(wait_log(&C, 0, "reload: certificates re-read (peer: refused)", 1, 5000));
    cr_assert_geq(itest_log_count(&C, 0, "does not match certificate file"), 1);
    served_names(names, sizeof(names));
    cr_assert_str_eq(names, "DNS:a ");
    /* The new certificate, from the second CA: new connections get it. */
    copy_file(cert("a-rotated.crt"), cert("live.crt"));
    copy_file(cert("a-rotated.key"), cert("live.key"));
    itest_node_signal(&C, 0, SIGHUP);
    cr_assert(wait_log(&C, 0, "reload: certificates re-read (peer: ok)", 1, 5000));
    served_names(names, sizeof(names));
    cr_assert_str_eq(names, "DNS:a DNS:a.rotated.test ");
    /* And members still connect to a: b restarts and dials it anew. */
    cr_assert_eq(itest_node_stop(&C, 1), 0);
    itest_node_start(&C, 1);
    int l = itest_wait_leader(&C, 20000);
    cr_assert_geq(l, 0, "no leader after the rotation");
    cr_assert_eq(put(l, "/v1/kv/r", "rotated"), 200);
    for (int i = 0; i < 3; i++)
        cr_assert(wait_value(i, "/v1/kv/r", "rotated", 10000), "node %d did not apply", i);
    cr_assert(alive(&C, 0));
}
