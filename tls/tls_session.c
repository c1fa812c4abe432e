/* tls_session.c — one TLS connection over two memory BIOs: ciphertext fed in (bounded),
 * the handshake, plaintext read and written, ciphertext taken out, close_notify, and the
 * sticky error with its text. No socket: the caller moves the bytes. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "check.h"
#include "tls_int.h"

/* TLS records begin with a content type (20..24) and the handshake with 22; a first byte
 * that is an ASCII capital is an HTTP request line (or an HTTP response, for a client). */
#define FIRST_BYTE_PLAINTEXT(b) ((b) >= 'A' && (b) <= 'Z')

static int fail(struct tls_session *s, int code, const char *fallback)
{
    unsigned long e = ERR_peek_error();
    if (ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        /* "certificate verify failed: unable to get local issuer certificate" */
        const char *why = X509_verify_cert_error_string(SSL_get_verify_result(s->ssl));
        int n = snprintf(s->errtext, sizeof(s->errtext), "certificate verify failed: %s", why);
        (void)n; /* a cut text is still a text */
        ERR_clear_error();
    } else {
        tls_error_format(s->errtext, sizeof(s->errtext), "", fallback);
    }
    s->err = code;
    s->established = false;
    return code;
}

int tls_session_open(tls_ctx_t *ctx, const char *server_name, tls_session_t **out)
{
    if (!ctx || !out || (server_name && ctx->role == TLS_ROLE_SERVER))
        return TLS_EINVAL;
    struct tls_session *s = calloc(1, sizeof(*s));
    if (!s)
        return TLS_ENOMEM;
    ERR_clear_error();
    s->ssl = SSL_new(ctx->ssl);
    s->in = BIO_new(BIO_s_mem());
    s->out = BIO_new(BIO_s_mem());
    if (!s->ssl || !s->in || !s->out) {
        BIO_free(s->in);
        BIO_free(s->out);
        s->in = s->out = NULL;
        goto fail;
    }
    BIO_set_mem_eof_return(s->in, -1); /* empty means "more to come", not end of stream */
    BIO_set_mem_eof_return(s->out, -1);
    SSL_set_bio(s->ssl, s->in, s->out); /* the SSL owns both now */
    s->verifies_peer = (SSL_get_verify_mode(s->ssl) & SSL_VERIFY_PEER) != 0;
    if (ctx->role == TLS_ROLE_SERVER) {
        SSL_set_accept_state(s->ssl);
    } else {
        SSL_set_connect_state(s->ssl);
        if (server_name && *server_name) {
            unsigned char ip[16];
            bool is_ip = inet_pton(AF_INET, server_name, ip) == 1 ||
                         inet_pton(AF_INET6, server_name, ip) == 1;
            /* SNI carries host names only; the certificate must match either kind. */
            if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), server_name) != 1
                      : (SSL_set_tlsext_host_name(s->ssl, server_name) != 1 ||
                         SSL_set1_host(s->ssl, server_name) != 1))
                goto fail;
        }
        (void)tls_session_handshake(s); /* the ClientHello goes out now */
    }
    *out = s;
    return 0;
fail:
    ERR_clear_error();
    tls_session_close(s);
    return TLS_ENOMEM;
}

void tls_session_close(tls_session_t *s)
{
    if (!s)
        return;
    tls_peer_free(s);
    SSL_free(s->ssl); /* frees both BIOs */
    free(s);
}

int tls_session_feed(tls_session_t *s, const void *data, size_t len, size_t *used)
{
    *used = 0;
    if (s->err)
        return s->err;
    if (len == 0)
        return 0;
    if (!s->seen_input) {
        s->seen_input = true;
        if (FIRST_BYTE_PLAINTEXT(((const unsigned char *)data)[0])) {
            snprintf(s->errtext, sizeof(s->errtext),
                     "plaintext received where a TLS handshake was expected "
                     "(a client or peer without TLS?)");
            s->err = TLS_EPLAINTEXT;
            return s->err;
        }
    }
    size_t held = BIO_ctrl_pending(s->in);
    if (held >= TLS_SESSION_IN_MAX)
        return TLS_EFULL;
    size_t n = len < TLS_SESSION_IN_MAX - held ? len : TLS_SESSION_IN_MAX - held;
    if (BIO_write(s->in, data, (int)n) != (int)n) {
        ERR_clear_error();
        return TLS_ENOMEM;
    }
    *used = n;
    return 0;
}

/* The result of an SSL call that did not succeed: 0 for "more input needed", else the
 * session's new sticky error. */
static int after_call(struct tls_session *s, int ret, int code)
{
    int e = SSL_get_error(s->ssl, ret);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return 0;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        s->peer_closed = true;
        return TLS_ECLOSED;
    }
    return fail(s, code, e == SSL_ERROR_SYSCALL ? "the stream ended in mid-record" : "failed");
}

int tls_session_handshake(tls_session_t *s)
{
    if (s->err)
        return s->err;
    if (s->established)
        return 1;
    ERR_clear_error();
    int ret = SSL_do_handshake(s->ssl);
    if (ret == 1) {
        s->established = true;
        if (tls_peer_collect(s) != 0) {
            snprintf(s->errtext, sizeof(s->errtext), "out of memory");
            s->err = TLS_ENOMEM;
            s->established = false;
            return s->err;
        }
        return 1;
    }
    int rc = after_call(s, ret, TLS_EHANDSHAKE);
    return rc == TLS_ECLOSED ? fail(s, TLS_EHANDSHAKE, "closed during the handshake") : rc;
}

int tls_session_read(tls_session_t *s, void *buf, size_t cap, size_t *n)
{
    *n = 0;
    if (s->err)
        return s->err;
    if (s->peer_closed)
        return TLS_ECLOSED;
    int hs = tls_session_handshake(s);
    if (hs <= 0)
        return hs;
    if (cap == 0)
        return 0;
    ERR_clear_error();
    if (SSL_read_ex(s->ssl, buf, cap, n) == 1)
        return 0;
    *n = 0;
    return after_call(s, 0, TLS_EPROTO);
}

int tls_session_write(tls_session_t *s, const void *data, size_t len)
{
    if (s->err)
        return s->err;
    if (!s->established || s->notified)
        return TLS_ESTATE;
    if (BIO_ctrl_pending(s->out) > TLS_SESSION_OUT_MAX)
        return TLS_EFULL;
    if (len == 0)
        return 0;
    ERR_clear_error();
    size_t done = 0;
    /* A memory BIO never blocks: everything is written (in records) in one call. */
    if (SSL_write_ex(s->ssl, data, len, &done) == 1 && done == len)
        return 0;
    return fail(s, TLS_EPROTO, "write failed");
}

void tls_session_shutdown(tls_session_t *s)
{
    if (s->notified || s->err || !s->established)
        return;
    s->notified = true;
    ERR_clear_error();
    (void)SSL_shutdown(s->ssl); /* queues the alert; the peer's answer is not awaited */
    ERR_clear_error();
}

size_t tls_session_out_pending(const tls_session_t *s)
{
    return BIO_ctrl_pending(s->out);
}

size_t tls_session_out_read(tls_session_t *s, void *buf, size_t cap)
{
    size_t pending = BIO_ctrl_pending(s->out);
    size_t n = cap < pending ? cap : pending;
    if (n == 0)
        return 0;
    int got = BIO_read(s->out, buf, (int)n);
    ELECTD_CHECK(got == (int)n); /* a memory BIO hands out what it holds */
    return n;
}

bool tls_session_established(const tls_session_t *s)
{
    return s->established && !s->err;
}

const char *tls_session_error(const tls_session_t *s)
{
    return s->errtext;
}
