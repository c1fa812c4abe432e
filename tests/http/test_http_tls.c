/* test_http_tls.c — HTTPS on the real loopback server: requests through the tls/ engine over a
 * blocking socket (as the CLI will) and through a plain OpenSSL client, keep-alive and large
 * bodies across records, a plaintext client on the TLS port (400, then closed), client
 * certificates required when the server has a trusted CA (and the handler seeing who it is),
 * a certificate from another CA refused with the reason reported, and a stalled handshake
 * closed by the header timeout. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <criterion/criterion.h>
#include <openssl/ssl.h>

#include "http_test_util.h"
#include "tls_test_util.h"

TLS_TEST_CERTS_MAKE_HOOK()
TLS_TEST_CERTS_REMOVE_HOOK()

/* What the server reported through tls_error_cb (the loop thread writes, the test reads after
 * tsrv_stop). */
static pthread_mutex_t reported_lock = PTHREAD_MUTEX_INITIALIZER;
static char reported[512];
static int reported_count;

static void on_tls_error(const char *peer, const char *reason, void *data)
{
    (void)data;
    pthread_mutex_lock(&reported_lock);
    snprintf(reported, sizeof(reported), "%s: %s", peer, reason);
    reported_count++;
    pthread_mutex_unlock(&reported_lock);
}

static void https_start(struct tsrv *t, tls_ctx_t *ctx, uint32_t header_timeout_ms)
{
    http_options_t o = {0};
    o.limits.header_timeout_ms = header_timeout_ms;
    reported[0] = '\0';
    reported_count = 0;
    tsrv_start_tls(t, &o, ctx, on_tls_error, NULL);
}

/* One request on an open TLS client; the parsed response in *r (free with resp_free). */
static void tls_request(struct tls_client *c, const char *req, struct resp *r)
{
    cr_assert_eq(tls_client_send(c, req, strlen(req)), 0, "send: %s", c->err);
    static char buf[1 << 20];
    size_t len = 0, n = 0;
    for (int i = 0; i < 1000; i++) {
        long used = resp_parse(buf, len, false, r);
        cr_assert_geq(used, 0, "malformed response");
        if (used > 0)
            return;
        cr_assert_lt(len, sizeof(buf));
        cr_assert_eq(tls_client_recv(c, buf + len, sizeof(buf) - len, &n), 0, "recv: %s", c->err);
        len += n;
    }
    cr_assert_fail("no complete response");
}

static void tls_get(struct tls_client *c, const char *path, const char *want)
{
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    struct resp r;
    tls_request(c, req, &r);
    cr_assert_eq(r.status, 200, "%s: %d", path, r.status);
    cr_assert_str_eq(r.body, want);
    resp_free(&r);
}

Test(http_tls, https_requests_keep_alive_and_large_bodies)
{
    tls_ctx_t *sctx = ctx_new(TLS_ROLE_SERVER, "member-b", NULL);
    tls_ctx_t *cctx = ctx_new(TLS_ROLE_CLIENT, NULL, "ca");
    struct tsrv t;
    https_start(&t, sctx, 0);
    struct tls_client c;
    cr_assert_eq(tls_client_open(&c, t.port, cctx, "localhost"), 0, "%s", c.err);
    for (int i = 0; i < 200; i++) {
        char path[32], want[16];
        snprintf(path, sizeof(path), "/seq?n=%d", i);
        snprintf(want, sizeof(want), "%d", i);
        tls_get(&c, path, want);
    }
    tls_get(&c, "/whoami", "tls - -");
    /* A body over many records, both ways. */
    size_t body_len = 300 << 10;
    char *req = malloc(body_len + 128);
    int head = snprintf(req, 128, "POST /echo HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", body_len);
    for (size_t i = 0; i < body_len; i++)
        req[head + i] = (char)('a' + i % 26);
    req[head + body_len] = '\0';
    struct resp r;
    tls_request(&c, req, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.body_len, body_len);
    cr_assert(memcmp(r.body, req + head, body_len) == 0);
    resp_free(&r);
    free(req);
    tls_client_close(&c);
    tsrv_stop(&t);
    cr_assert_eq(t.final.connections_accepted, 1);
    cr_assert_eq(t.final.requests, 202);
    cr_assert_eq(t.final.tls_failures, 0);
    tls_ctx_close(sctx);
    tls_ctx_close(cctx);
}

/* Any TLS 1.3 client works, not only ours: OpenSSL's own blocking SSL_connect on the socket. */
Test(http_tls, plain_openssl_client)
{
    tls_ctx_t *sctx = ctx_new(TLS_ROLE_SERVER, "member-b", NULL);
    struct tsrv t;
    https_start(&t, sctx, 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)t.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    SSL_CTX *octx = SSL_CTX_new(TLS_client_method());
    cr_assert_eq(SSL_CTX_load_verify_locations(octx, cert_path("ca.crt"), NULL), 1);
    SSL_CTX_set_verify(octx, SSL_VERIFY_PEER, NULL);
    SSL *ssl = SSL_new(octx);
    SSL_set_fd(ssl, fd);
    SSL_set1_host(ssl, "127.0.0.1");
    cr_assert_eq(SSL_connect(ssl), 1);
    const char *req = "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n";
    cr_assert_eq(SSL_write(ssl, req, (int)strlen(req)), (int)strlen(req));
    char buf[1024];
    size_t len = 0;
    int n;
    while (len < sizeof(buf) - 1 &&
           (n = SSL_read(ssl, buf + len, (int)(sizeof(buf) - 1 - len))) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    cr_assert_eq(SSL_get_error(ssl, n), SSL_ERROR_ZERO_RETURN, "the server ends with close_notify");
    struct resp r;
    cr_assert_gt(resp_parse(buf, len, true, &r), 0, "%s", buf);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "hello");
    resp_free(&r);
    SSL_free(ssl);
    SSL_CTX_free(octx);
    close(fd);
    tsrv_stop(&t);
    tls_ctx_close(sctx);
}

Test(http_tls, plaintext_request_on_the_tls_port_gets_400_and_is_closed)
{
    tls_ctx_t *sctx = ctx_new(TLS_ROLE_SERVER, "member-b", NULL);
    struct tsrv t;
    https_start(&t, sctx, 0);
    struct client c;
    cr_assert_eq(client_open(&c, t.port), 0);
    cr_assert_eq(client_sends(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    struct resp r;
    cr_assert_eq(client_read(&c, &r), 0);
    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(r.body, "This port speaks HTTPS: use https:// here.\n");
    resp_free(&r);
    cr_assert(client_wait_eof(&c, 5000), "the server must close");
    client_close(&c);
    /* The server still serves HTTPS. */
    tls_ctx_t *cctx = ctx_new(TLS_ROLE_CLIENT, NULL, "ca");
    struct tls_client tc;
    cr_assert_eq(tls_client_open(&tc, t.port, cctx, "localhost"), 0, "%s", tc.err);
    tls_get(&tc, "/hello", "hello");
    tls_client_close(&tc);
    tsrv_stop(&t);
    cr_assert_eq(t.final.tls_failures, 1);
    cr_assert_eq(t.final.requests, 1, "the plaintext request reached no handler");
    cr_assert_eq(reported_count, 1);
    cr_assert(strstr(reported, "127.0.0.1:") == reported, "%s", reported);
    cr_assert(strstr(reported, "plaintext received where a TLS handshake was expected"), "%s",
              reported);
    tls_ctx_close(sctx);
    tls_ctx_close(cctx);
}

/* A request whose client certificate the server refuses: in TLS 1.3 the client's handshake
 * completes and the refusal arrives with its first read. Returns that read's result. */
static int refused_request(struct tls_client *c, int port, tls_ctx_t *ctx)
{
    int rc = tls_client_open(c, port, ctx, "localhost");
    if (rc == 0) {
        const char *req = "GET /whoami HTTP/1.1\r\n\r\n";
        char buf[256];
        size_t n;
        (void)tls_client_send(c, req, strlen(req));
        rc = tls_client_recv(c, buf, sizeof(buf), &n);
    }
    return rc;
}

Test(http_tls, client_certificate_required_when_the_server_has_a_ca)
{
    tls_ctx_t *sctx = ctx_new(TLS_ROLE_SERVER, "member-b", "ca");
    tls_ctx_t *anon = ctx_new(TLS_ROLE_CLIENT, NULL, "ca");
    tls_ctx_t *oper = ctx_new(TLS_ROLE_CLIENT, "client", "ca");
    struct tsrv t;
    https_start(&t, sctx, 0);
    /* Without a certificate: the TLS 1.3 client finishes, then reads the server's refusal. */
    struct tls_client c;
    cr_assert_lt(refused_request(&c, t.port, anon), 0);
    cr_assert_str_eq(c.err, "tlsv13 alert certificate required");
    tls_client_close(&c);
    /* With the operator's certificate: served, and the handler knows who it is. */
    cr_assert_eq(tls_client_open(&c, t.port, oper, "localhost"), 0, "%s", c.err);
    tls_get(&c, "/whoami", "tls operator operator");
    tls_client_close(&c);
    tsrv_stop(&t);
    cr_assert_eq(t.final.tls_failures, 1);
    cr_assert(strstr(reported, ": peer did not return a certificate"), "%s", reported);
    tls_ctx_close(sctx);
    tls_ctx_close(anon);
    tls_ctx_close(oper);
}

Test(http_tls, client_certificate_from_another_ca_is_refused_and_reported)
{
    tls_ctx_t *sctx = ctx_new(TLS_ROLE_SERVER, "member-b", "ca");
    tls_ctx_t *imposter = ctx_new(TLS_ROLE_CLIENT, "imposter-b", "ca");
    struct tsrv t;
    https_start(&t, sctx, 0);
    struct tls_client c;
    cr_assert_lt(refused_request(&c, t.port, imposter), 0);
    cr_assert_str_eq(c.err, "tlsv1 alert unknown ca");
    tls_client_close(&c);
    tsrv_stop(&t);
    cr_assert_eq(t.final.tls_failures, 1);
    cr_assert_eq(t.final.requests, 0);
    cr_assert(
        strstr(reported, ": certificate verify failed: unable to get local issuer certificate"),
        "%s", reported);
    tls_ctx_close(sctx);
    tls_ctx_close(imposter);
}

Test(http_tls, stalled_handshake_is_closed_by_the_header_timeout)
{
    tls_ctx_t *sctx = ctx_new(TLS_ROLE_SERVER, "member-b", NULL);
    struct tsrv t;
    https_start(&t, sctx, 300);
    struct client c;
    cr_assert_eq(client_open(&c, t.port), 0);
    /* The first bytes of a ClientHello record, then nothing. */
    const char partial[] = {0x16, 0x03, 0x01, 0x00, 0x80, 0x01};
    cr_assert_eq(client_send(&c, partial, sizeof(partial)), 0);
    cr_assert(client_wait_eof(&c, 3000), "the server must close a stalled handshake");
    client_close(&c);
    tsrv_stop(&t);
    cr_assert_eq(t.final.timeouts, 1);
    tls_ctx_close(sctx);
}

Test(http_tls, only_a_server_context_before_listen)
{
    tls_ctx_t *cctx = ctx_new(TLS_ROLE_CLIENT, NULL, "ca");
    tls_ctx_t *sctx = ctx_new(TLS_ROLE_SERVER, "member-b", NULL);
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    http_server_t *srv = NULL;
    cr_assert_eq(http_server_open(&loop, NULL, &srv), 0);
    cr_assert_eq(http_server_tls(srv, cctx, NULL, NULL), HTTP_EINVAL);
    cr_assert_eq(http_server_tls(srv, NULL, NULL, NULL), HTTP_EINVAL);
    cr_assert_eq(http_server_listen(srv, "127.0.0.1:0"), 0);
    cr_assert_eq(http_server_tls(srv, sctx, NULL, NULL), HTTP_ESTATE);
    http_server_close(srv, NULL, NULL);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0);
    tls_ctx_close(cctx);
    tls_ctx_close(sctx);
}
