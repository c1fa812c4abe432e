/* test_tls.c — the TLS engine (tls/) in memory: mutual handshakes both ways, refusals with a
 * clear reason on both sides (another CA, no client certificate, a certificate not meant for
 * clients, a wrong host name, a TLS 1.2-only peer), peer names and the name check, garbage
 * and plaintext input, buffer bounds, close_notify, reloads that keep the old files when a
 * new one is bad, and what the module costs in resident memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_test_util.h"

TLS_TEST_CERTS_MAKE_HOOK()
TLS_TEST_CERTS_REMOVE_HOOK()

struct pair {
    tls_ctx_t *sctx, *cctx;
    tls_session_t *s, *c;
};

static void pair_open(struct pair *p, const char *server_leaf, const char *server_ca,
                      const char *client_leaf, const char *client_ca, const char *name)
{
    p->sctx = ctx_new(TLS_ROLE_SERVER, server_leaf, server_ca);
    p->cctx = ctx_new(TLS_ROLE_CLIENT, client_leaf, client_ca);
    cr_assert_eq(tls_session_open(p->sctx, NULL, &p->s), 0);
    cr_assert_eq(tls_session_open(p->cctx, name, &p->c), 0);
    pump(p->s, p->c);
}

static void pair_close(struct pair *p)
{
    tls_session_close(p->s);
    tls_session_close(p->c);
    tls_ctx_close(p->sctx);
    tls_ctx_close(p->cctx);
}

/* Writes `msg` on `from`, moves it, and expects to read exactly it on `to`. */
static void send_recv(tls_session_t *from, tls_session_t *to, const char *msg)
{
    cr_assert_eq(tls_session_write(from, msg, strlen(msg)), 0, "write: %s",
                 tls_session_error(from));
    move_out(from, to);
    char buf[256];
    size_t n = 0;
    cr_assert_eq(tls_session_read(to, buf, sizeof(buf) - 1, &n), 0, "read: %s",
                 tls_session_error(to));
    buf[n] = '\0';
    cr_assert_str_eq(buf, msg);
}

/* After a refused handshake: the client learns it from its next read (TLS 1.3 sends the
 * server's verdict on the client certificate after the client finished). */
static int client_outcome(tls_session_t *c)
{
    char buf[64];
    size_t n;
    int rc = tls_session_handshake(c);
    if (rc < 0)
        return rc;
    return tls_session_read(c, buf, sizeof(buf), &n);
}

static void assert_contains(const char *text, const char *want)
{
    cr_assert(strstr(text, want), "\"%s\" does not contain \"%s\"", text, want);
}

Test(tls, mutual_handshake_both_directions_and_peer_identity)
{
    struct pair p;
    pair_open(&p, "member-b", "ca", "member-c", "ca", "b.cluster.test");
    cr_assert(tls_session_established(p.s), "server: %s", tls_session_error(p.s));
    cr_assert(tls_session_established(p.c), "client: %s", tls_session_error(p.c));
    send_recv(p.c, p.s, "hello from c");
    send_recv(p.s, p.c, "hello from b");
    send_recv(p.c, p.s, "again");
    cr_assert_str_eq(tls_session_peer_cn(p.s), "c");
    cr_assert_str_eq(tls_session_peer_cn(p.c), "b");
    cr_assert_eq(tls_session_peer_name_count(p.c), 4);
    cr_assert_str_eq(tls_session_peer_name(p.c, 0), "DNS:b.cluster.test");
    cr_assert_str_eq(tls_session_peer_name(p.c, 1), "DNS:localhost");
    cr_assert_str_eq(tls_session_peer_name(p.c, 2), "IP:127.0.0.1");
    cr_assert_str_eq(tls_session_peer_name(p.c, 3), "IP:::1");
    cr_assert_null(tls_session_peer_name(p.c, 4));
    cr_assert_eq(tls_session_peer_name_count(p.s), 1);
    cr_assert_str_eq(tls_session_peer_name(p.s, 0), "DNS:c.cluster.test");
    cr_assert(tls_ctx_requires_peer_cert(p.sctx));
    cr_assert_not(tls_ctx_requires_peer_cert(p.cctx));
    cr_assert_str_eq(tls_session_error(p.s), "");
    pair_close(&p);
}

Test(tls, server_without_ca_asks_no_client_certificate)
{
    struct pair p;
    pair_open(&p, "member-b", NULL, NULL, "ca", "localhost");
    cr_assert(tls_session_established(p.s), "server: %s", tls_session_error(p.s));
    cr_assert(tls_session_established(p.c), "client: %s", tls_session_error(p.c));
    send_recv(p.c, p.s, "GET / HTTP/1.1\r\n\r\n");
    cr_assert_null(tls_session_peer_cn(p.s), "no client certificate was verified");
    cr_assert_not(tls_session_peer_matches(p.s, "operator"));
    cr_assert_str_eq(tls_session_peer_cn(p.c), "b");
    pair_close(&p);
}

Test(tls, client_certificate_from_another_ca_is_refused_on_both_sides)
{
    struct pair p;
    pair_open(&p, "member-b", "ca", "imposter-b", "ca", NULL);
    cr_assert_eq(tls_session_handshake(p.s), TLS_EHANDSHAKE);
    cr_assert_str_eq(tls_session_error(p.s),
                     "certificate verify failed: unable to get local issuer certificate");
    cr_assert_eq(client_outcome(p.c), TLS_EPROTO, "client: %s", tls_session_error(p.c));
    cr_assert_str_eq(tls_session_error(p.c), "tlsv1 alert unknown ca");
    cr_assert_null(tls_session_peer_cn(p.s));
    pair_close(&p);
}

Test(tls, server_certificate_from_another_ca_is_refused_on_both_sides)
{
    struct pair p;
    pair_open(&p, "imposter-b", "ca", "member-c", "ca", NULL);
    cr_assert_eq(tls_session_handshake(p.c), TLS_EHANDSHAKE);
    cr_assert_str_eq(tls_session_error(p.c),
                     "certificate verify failed: unable to get local issuer certificate");
    cr_assert_eq(tls_session_handshake(p.s), TLS_EHANDSHAKE);
    cr_assert_str_eq(tls_session_error(p.s), "tlsv1 alert unknown ca");
    pair_close(&p);
}

Test(tls, client_without_certificate_is_refused_when_the_server_has_a_ca)
{
    struct pair p;
    pair_open(&p, "member-b", "ca", NULL, "ca", NULL);
    cr_assert_eq(tls_session_handshake(p.s), TLS_EHANDSHAKE);
    cr_assert_str_eq(tls_session_error(p.s), "peer did not return a certificate");
    cr_assert_lt(client_outcome(p.c), 0);
    cr_assert_str_eq(tls_session_error(p.c), "tlsv13 alert certificate required");
    pair_close(&p);
}

Test(tls, certificate_without_client_auth_is_refused_as_a_client_certificate)
{
    struct pair p;
    pair_open(&p, "member-b", "ca", "server-only", "ca", NULL);
    cr_assert_eq(tls_session_handshake(p.s), TLS_EHANDSHAKE);
    cr_assert_str_eq(tls_session_error(p.s),
                     "certificate verify failed: unsuitable certificate purpose");
    cr_assert_lt(client_outcome(p.c), 0);
    assert_contains(tls_session_error(p.c), "alert unsupported certificate");
    pair_close(&p);
}

Test(tls, client_checks_the_server_name_it_asked_for)
{
    const char *good[] = {"b.cluster.test", "localhost", "127.0.0.1", "::1"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct pair p;
        pair_open(&p, "member-b", NULL, NULL, "ca", good[i]);
        cr_assert(tls_session_established(p.c), "%s: %s", good[i], tls_session_error(p.c));
        pair_close(&p);
    }
    struct pair p;
    pair_open(&p, "member-b", NULL, NULL, "ca", "c.cluster.test");
    cr_assert_eq(tls_session_handshake(p.c), TLS_EHANDSHAKE);
    cr_assert_str_eq(tls_session_error(p.c), "certificate verify failed: hostname mismatch");
    pair_close(&p);
    pair_open(&p, "member-b", NULL, NULL, "ca", "127.0.0.2");
    cr_assert_eq(tls_session_handshake(p.c), TLS_EHANDSHAKE);
    cr_assert_str_eq(tls_session_error(p.c), "certificate verify failed: IP address mismatch");
    pair_close(&p);
}

Test(tls, peer_name_check_against_cn_and_sans)
{
    struct pair p;
    pair_open(&p, "member-b", "ca", "wildcard", "ca", NULL);
    cr_assert(tls_session_established(p.s), "%s", tls_session_error(p.s));
    cr_assert(tls_session_established(p.c), "%s", tls_session_error(p.c));
    /* The client sees member b. */
    const char *yes[] = {"b",         "B",   "b.cluster.test", "B.Cluster.Test", "localhost",
                         "127.0.0.1", "::1", "0:0:0:0:0:0:0:1"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        cr_assert(tls_session_peer_matches(p.c, yes[i]), "b should match %s", yes[i]);
    const char *no[] = {"c",  "c.cluster.test", "127.0.0.2", "::2",
                        "bb", "cluster.test",   "",          "x.b.cluster.test"};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        cr_assert_not(tls_session_peer_matches(p.c, no[i]), "b should not match %s", no[i]);
    cr_assert_not(tls_session_peer_matches(p.c, NULL));
    /* The server sees the wildcard certificate: one label under *.cluster.test. */
    cr_assert(tls_session_peer_matches(p.s, "wild"));
    cr_assert(tls_session_peer_matches(p.s, "a.cluster.test"));
    cr_assert_not(tls_session_peer_matches(p.s, "a.b.cluster.test"));
    cr_assert_not(tls_session_peer_matches(p.s, "cluster.test"));
    cr_assert_not(tls_session_peer_matches(p.s, "b"));
    pair_close(&p);
}

Test(tls, plaintext_http_to_a_tls_server_gives_a_clean_error)
{
    tls_ctx_t *ctx = ctx_new(TLS_ROLE_SERVER, "member-b", NULL);
    const char *reqs[] = {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "DELETE /v1/kv/a HTTP/1.1\r\n\r\n",
                          "PUT /x HTTP/1.0\r\n\r\n"};
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        tls_session_t *s;
        cr_assert_eq(tls_session_open(ctx, NULL, &s), 0);
        size_t used = 99;
        cr_assert_eq(tls_session_feed(s, reqs[i], strlen(reqs[i]), &used), TLS_EPLAINTEXT);
        cr_assert_eq(used, 0);
        assert_contains(tls_session_error(s), "plaintext received");
        char buf[16];
        size_t n = 7;
        cr_assert_eq(tls_session_read(s, buf, sizeof(buf), &n), TLS_EPLAINTEXT);
        cr_assert_eq(n, 0);
        cr_assert_eq(tls_session_write(s, "x", 1), TLS_EPLAINTEXT);
        cr_assert_eq(tls_session_out_pending(s), 0);
        tls_session_close(s);
    }
    tls_ctx_close(ctx);
}

Test(tls, plaintext_answer_to_a_tls_client_gives_a_clean_error)
{
    tls_ctx_t *ctx = ctx_new(TLS_ROLE_CLIENT, NULL, "ca");
    tls_session_t *c;
    cr_assert_eq(tls_session_open(ctx, "localhost", &c), 0);
    cr_assert_gt(tls_session_out_pending(c), 0, "the ClientHello is ready at once");
    const char *resp = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    size_t used;
    cr_assert_eq(tls_session_feed(c, resp, strlen(resp), &used), TLS_EPLAINTEXT);
    cr_assert_eq(tls_session_handshake(c), TLS_EPLAINTEXT);
    tls_session_close(c);
    tls_ctx_close(ctx);
}

Test(tls, random_bytes_never_crash_and_end_in_an_error_or_a_wait)
{
    tls_ctx_t *ctx = ctx_new(TLS_ROLE_SERVER, "member-b", "ca");
    srand(1234);
    unsigned char buf[2048];
    int errors = 0;
    for (int i = 0; i < 300; i++) {
        tls_session_t *s;
        cr_assert_eq(tls_session_open(ctx, NULL, &s), 0);
        size_t len = 1 + (size_t)rand() % sizeof(buf);
        for (size_t k = 0; k < len; k++)
            buf[k] = (unsigned char)rand();
        /* Half of them look like the start of a handshake record. */
        if (i % 2) {
            buf[0] = 0x16, buf[1] = 0x03, buf[2] = 0x01;
        }
        size_t used;
        int rc = tls_session_feed(s, buf, len, &used);
        if (rc == 0)
            rc = tls_session_handshake(s);
        cr_assert(rc == 0 || rc == TLS_EHANDSHAKE || rc == TLS_EPLAINTEXT, "rc %d", rc);
        if (rc < 0) {
            errors++;
            cr_assert_neq(tls_session_error(s)[0], '\0');
        }
        char out[64];
        size_t n;
        cr_assert_leq(tls_session_read(s, out, sizeof(out), &n), 0);
        cr_assert_eq(n, 0);
        tls_session_close(s);
    }
    cr_assert_gt(errors, 250, "garbage should mostly be refused at once (%d)", errors);
    tls_ctx_close(ctx);
}

Test(tls, input_and_output_buffers_are_bounded)
{
    struct pair p;
    pair_open(&p, "member-b", NULL, NULL, "ca", NULL);
    cr_assert(tls_session_established(p.c));
    /* Output: refused once more than TLS_SESSION_OUT_MAX bytes wait to be taken. */
    static char block[100 << 10];
    memset(block, 'x', sizeof(block));
    int rc = 0, writes = 0;
    while (writes < 10 && (rc = tls_session_write(p.c, block, sizeof(block))) == 0)
        writes++;
    cr_assert_eq(rc, TLS_EFULL);
    cr_assert_eq(writes, 3);
    size_t pending = tls_session_out_pending(p.c);
    cr_assert_gt(pending, TLS_SESSION_OUT_MAX);
    cr_assert_lt(pending, TLS_SESSION_OUT_MAX + sizeof(block) + 4096);
    /* Input: the server takes at most TLS_SESSION_IN_MAX undecrypted bytes. */
    char *all = malloc(pending);
    cr_assert_eq(tls_session_out_read(p.c, all, pending), pending);
    size_t used;
    cr_assert_eq(tls_session_feed(p.s, all, pending, &used), 0);
    cr_assert_eq(used, TLS_SESSION_IN_MAX);
    size_t more;
    cr_assert_eq(tls_session_feed(p.s, all + used, pending - used, &more), TLS_EFULL);
    cr_assert_eq(more, 0);
    /* Draining makes room; everything arrives in order. */
    static char got[sizeof(block) * 3];
    size_t total = 0, n;
    for (int i = 0; i < 10000 && total < sizeof(got); i++) {
        cr_assert_eq(tls_session_read(p.s, got + total, sizeof(got) - total, &n), 0);
        total += n;
        if (n == 0 && used < pending) {
            cr_assert_eq(tls_session_feed(p.s, all + used, pending - used, &more), 0);
            used += more;
        }
    }
    cr_assert_eq(total, sizeof(got));
    for (size_t i = 0; i < total; i++)
        cr_assert_eq(got[i], 'x');
    free(all);
    pair_close(&p);
}

Test(tls, write_before_the_handshake_and_close_notify)
{
    tls_ctx_t *sctx = ctx_new(TLS_ROLE_SERVER, "member-b", NULL);
    tls_ctx_t *cctx = ctx_new(TLS_ROLE_CLIENT, NULL, "ca");
    tls_session_t *s, *c;
    cr_assert_eq(tls_session_open(sctx, NULL, &s), 0);
    cr_assert_eq(tls_session_open(cctx, NULL, &c), 0);
    cr_assert_eq(tls_session_write(s, "early", 5), TLS_ESTATE);
    cr_assert_eq(tls_session_open(sctx, "name", &(tls_session_t *){NULL}), TLS_EINVAL);
    pump(s, c);
    cr_assert(tls_session_established(s));
    send_recv(s, c, "last words");
    tls_session_shutdown(s);
    tls_session_shutdown(s);
    cr_assert_eq(tls_session_write(s, "more", 4), TLS_ESTATE);
    move_out(s, c);
    char buf[16];
    size_t n;
    cr_assert_eq(tls_session_read(c, buf, sizeof(buf), &n), TLS_ECLOSED);
    cr_assert_eq(tls_session_read(c, buf, sizeof(buf), &n), TLS_ECLOSED);
    tls_session_close(s);
    tls_session_close(c);
    tls_ctx_close(sctx);
    tls_ctx_close(cctx);
}

/* A TLS 1.2-only client made with OpenSSL directly, talking to our server in memory. */
Test(tls, tls12_only_client_is_refused)
{
    tls_ctx_t *sctx = ctx_new(TLS_ROLE_SERVER, "member-b", NULL);
    tls_session_t *s;
    cr_assert_eq(tls_session_open(sctx, NULL, &s), 0);
    SSL_CTX *old = SSL_CTX_new(TLS_client_method());
    cr_assert_not_null(old);
    cr_assert_eq(SSL_CTX_set_max_proto_version(old, TLS1_2_VERSION), 1);
    SSL_CTX_set_verify(old, SSL_VERIFY_NONE, NULL);
    SSL *ssl = SSL_new(old);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, in, out);
    SSL_set_connect_state(ssl);
    int client_rc = 0, server_rc = 0;
    for (int round = 0; round < 8; round++) {
        client_rc = SSL_do_handshake(ssl);
        char buf[8192];
        int n = BIO_read(out, buf, sizeof(buf));
        size_t used;
        if (n > 0)
            (void)tls_session_feed(s, buf, (size_t)n, &used);
        server_rc = tls_session_handshake(s);
        size_t m = tls_session_out_read(s, buf, sizeof(buf));
        if (m > 0)
            BIO_write(in, buf, (int)m);
        if (n <= 0 && m == 0)
            break;
    }
    cr_assert_eq(server_rc, TLS_EHANDSHAKE);
    cr_assert_str_eq(tls_session_error(s), "unsupported protocol");
    cr_assert_neq(client_rc, 1, "the TLS 1.2 client must not get a session");
    cr_assert_eq(SSL_get_error(ssl, client_rc), SSL_ERROR_SSL);
    cr_assert_str_eq(ERR_reason_error_string(ERR_peek_error()), "tlsv1 alert protocol version");
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(old);
    tls_session_close(s);
    tls_ctx_close(sctx);
}

/* ---- contexts: creation errors and reloads ---- */

static void copy_file(const char *from, const char *to)
{
    char cmd[2 * 4096 + 16];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
    cr_assert_eq(system(cmd), 0);
}

static int create_err(tls_role_t role, const char *crt, const char *key, const char *ca, char *err,
                      size_t len)
{
    tls_config_t cfg = {.role = role, .cert_file = crt, .key_file = key, .ca_file = ca};
    tls_ctx_t *ctx = NULL;
    int rc = tls_ctx_open(&cfg, &ctx, err, len);
    cr_assert_null(ctx);
    return rc;
}

Test(tls, bad_files_are_named_with_the_reason)
{
    char err[TLS_ERROR_TEXT_MAX], want[TLS_ERROR_TEXT_MAX];
    const char *crt = cert_path("member-b.crt"), *key = cert_path("member-b.key");
    cr_assert_eq(create_err(TLS_ROLE_SERVER, NULL, NULL, NULL, err, sizeof(err)), TLS_EINVAL);
    cr_assert_str_eq(err, "a TLS server needs a certificate file and a key file");
    cr_assert_eq(create_err(TLS_ROLE_CLIENT, crt, NULL, NULL, err, sizeof(err)), TLS_EINVAL);
    cr_assert_eq(create_err(TLS_ROLE_SERVER, "/nonexistent/x.crt", key, NULL, err, sizeof(err)),
                 TLS_EFILE);
    cr_assert_str_eq(err, "certificate file /nonexistent/x.crt: No such file or directory");
    const char *garbage = cert_path("garbage.pem");
    cr_assert_eq(create_err(TLS_ROLE_SERVER, garbage, key, NULL, err, sizeof(err)), TLS_EFILE);
    snprintf(want, sizeof(want), "certificate file %s: no start line", garbage);
    cr_assert_str_eq(err, want);
    cr_assert_eq(create_err(TLS_ROLE_SERVER, crt, garbage, NULL, err, sizeof(err)), TLS_EFILE);
    snprintf(want, sizeof(want), "key file %s: ", garbage);
    cr_assert(strncmp(err, want, strlen(want)) == 0, "%s", err);
    const char *ckey = cert_path("member-c.key");
    cr_assert_eq(create_err(TLS_ROLE_SERVER, crt, ckey, NULL, err, sizeof(err)), TLS_EFILE);
    snprintf(want, sizeof(want), "key file %s: does not match certificate file %s", ckey, crt);
    cr_assert_str_eq(err, want);
    cr_assert_eq(create_err(TLS_ROLE_SERVER, crt, key, garbage, err, sizeof(err)), TLS_EFILE);
    snprintf(want, sizeof(want), "CA file %s: ", garbage);
    cr_assert(strncmp(err, want, strlen(want)) == 0, "%s", err);
}

Test(tls, reload_keeps_the_old_files_when_a_new_one_is_bad)
{
    char dir[] = "/tmp/electd-tls-reload-XXXXXX", crt[64], key[64], ca[64], err[TLS_ERROR_TEXT_MAX];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(crt, sizeof(crt), "%s/tls.crt", dir);
    snprintf(key, sizeof(key), "%s/tls.key", dir);
    snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
    copy_file(cert_path("member-b.crt"), crt);
    copy_file(cert_path("member-b.key"), key);
    copy_file(cert_path("ca.crt"), ca);
    tls_config_t cfg = {.role = TLS_ROLE_SERVER, .cert_file = crt, .key_file = key, .ca_file = ca};
    tls_ctx_t *sctx = NULL;
    cr_assert_eq(tls_ctx_open(&cfg, &sctx, err, sizeof(err)), 0, "%s", err);
    tls_ctx_t *cctx = ctx_new(TLS_ROLE_CLIENT, "member-c", "ca");

    /* A session made before any reload. */
    tls_session_t *before, *cb;
    cr_assert_eq(tls_session_open(sctx, NULL, &before), 0);
    /* Rotation gone wrong: the new certificate file is garbage. */
    copy_file(cert_path("garbage.pem"), crt);
    cr_assert_eq(tls_ctx_reload(sctx, err, sizeof(err)), TLS_EFILE);
    char want[TLS_ERROR_TEXT_MAX];
    snprintf(want, sizeof(want), "certificate file %s: no start line", crt);
    cr_assert_str_eq(err, want);
    /* ...or a certificate whose key was not rotated with it. */
    copy_file(cert_path("member-c.crt"), crt);
    cr_assert_eq(tls_ctx_reload(sctx, err, sizeof(err)), TLS_EFILE);
    assert_contains(err, "does not match certificate file");
    /* The old files stay in use: new sessions still present b. */
    tls_session_t *s, *c;
    cr_assert_eq(tls_session_open(sctx, NULL, &s), 0);
    cr_assert_eq(tls_session_open(cctx, NULL, &c), 0);
    pump(s, c);
    cr_assert_str_eq(tls_session_peer_cn(c), "b", "%s", tls_session_error(c));
    tls_session_close(s);
    tls_session_close(c);
    /* A good rotation: new sessions present c, the earlier session keeps b. */
    copy_file(cert_path("member-c.key"), key);
    cr_assert_eq(tls_ctx_reload(sctx, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(err, "");
    cr_assert_eq(tls_session_open(sctx, NULL, &s), 0);
    cr_assert_eq(tls_session_open(cctx, NULL, &c), 0);
    pump(s, c);
    cr_assert_str_eq(tls_session_peer_cn(c), "c", "%s", tls_session_error(c));
    tls_session_close(s);
    tls_session_close(c);
    cr_assert_eq(tls_session_open(cctx, NULL, &cb), 0);
    tls_ctx_close(sctx); /* sessions may outlive their context */
    pump(before, cb);
    cr_assert_str_eq(tls_session_peer_cn(cb), "b", "%s", tls_session_error(cb));
    cr_assert_str_eq(tls_session_peer_cn(before), "c");
    tls_session_close(before);
    tls_session_close(cb);
    tls_ctx_close(cctx);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(tls, strerror_names_every_code)
{
    cr_assert_str_eq(tls_strerror(0), "success");
    cr_assert_str_eq(tls_strerror(TLS_EPLAINTEXT), "plaintext received where TLS was expected");
    cr_assert_str_eq(tls_strerror(-999), "unknown error");
}

/* ---- memory ---- */

static void probe(const char *mode, long *rss, long *anon)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "'%s' %s '%s'", TLS_RSS_PROBE, mode, certs_dir());
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    cr_assert_eq(fscanf(p, "%ld %ld", rss, anon), 2, "probe %s printed no numbers", mode);
    cr_assert_eq(pclose(p), 0);
}

/* What TLS costs a process, in KiB of RSS (printed for docs/security.md): nothing is set up
 * before the first context; the first context sets OpenSSL up (mostly shared code pages);
 * a handshake adds little. The bounds catch a regression, e.g. a change that would load
 * /etc/ssl/openssl.cnf or keep per-session buffers. */
Test(tls, resident_memory_of_a_context_and_a_handshake)
{
    long none, none_anon, ctx, ctx_anon, hs, hs_anon;
    probe("none", &none, &none_anon);
    probe("ctx", &ctx, &ctx_anon);
    probe("handshake", &hs, &hs_anon);
    cr_log_info("RSS KiB (private): linked only %ld (%ld), server context %ld (%ld), "
                "after a mutual handshake %ld (%ld)",
                none, none_anon, ctx, ctx_anon, hs, hs_anon);
#if defined(__SANITIZE_ADDRESS__)
    cr_skip_test("sizes under AddressSanitizer say nothing about a release build");
#endif
    cr_assert_gt(ctx_anon, none_anon + 100, "a context sets OpenSSL up (and not before)");
    cr_assert_lt(ctx - none, 4096, "a server context costs %ld KiB", ctx - none);
    cr_assert_lt(hs - ctx, 1024, "a client context and a handshake cost %ld KiB", hs - ctx);
}
