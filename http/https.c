/* https.c — the TLS layer of a socket connection on an HTTPS server (http_options_t.tls):
 * ciphertext read from the socket goes through the connection's tls session before llhttp,
 * responses are encrypted before they are written, and a TLS failure (a refused handshake,
 * plaintext HTTP on the TLS port, a broken record) is counted, reported and closes the
 * connection — after the alert, or a short plaintext 400 for a plaintext client, in one
 * non-blocking write. */
#include <stdlib.h>
#include <string.h>

#include "http_int.h"

static int tls_accept(struct http_conn *c)
{
    return tls_session_open(c->srv->tls, NULL, &c->tls) == 0 ? 0 : HTTP_ENOMEM;
}

static void tls_release(struct http_conn *c)
{
    tls_session_close(c->tls);
    c->tls = NULL;
    free(c->peer_cn);
    c->peer_cn = NULL;
}

/* Once established: keep the client certificate's name for http_req_peer_cert_cn(). */
static int handshake_done(struct http_conn *c)
{
    c->tls_ready = true;
    const char *cn = tls_session_peer_cn(c->tls);
    if (cn && !(c->peer_cn = strdup(cn))) {
        http_conn_abort(c);
        return -1;
    }
    return 0;
}

/* Hands the session's output to the socket. */
static int flush(struct http_conn *c)
{
    size_t n = tls_session_out_pending(c->tls);
    if (n == 0)
        return 0;
    char *buf = malloc(n);
    if (!buf) {
        http_conn_defer_abort(c);
        return HTTP_ENOMEM;
    }
    size_t got = tls_session_out_read(c->tls, buf, n);
    return http_conn_write_raw(c, buf, got);
}

/* The last words before an abortive close: whatever fits in the socket buffer now (a close
 * right after uv_write() would cancel the write). */
static void try_send(struct http_conn *c, const char *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    if (len)
        (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
}

static void failed(struct http_conn *c, int rc)
{
    static const char plaintext_answer[] =
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 43\r\n"
        "Connection: close\r\n\r\nThis port speaks HTTPS: use https:// here.\n";
    struct http_server *srv = c->srv;
    srv->counters.tls_failures++;
    if (srv->tls_error_cb) {
        char peer[80];
        http_conn_peer(c, peer, sizeof(peer));
        srv->tls_error_cb(peer, tls_session_error(c->tls), srv->tls_error_data);
    }
    if (rc == TLS_EPLAINTEXT) {
        try_send(c, plaintext_answer, sizeof(plaintext_answer) - 1);
    } else {
        char alert[512]; /* an alert record is 7 bytes, 24 when encrypted */
        try_send(c, alert, tls_session_out_read(c->tls, alert, sizeof(alert)));
    }
    http_conn_abort(c);
}

/* Decrypts what the session holds into the parser. 0, or -1 once the connection is done
 * with (closed, failed, or no longer reading requests). */
static int drain(struct http_conn *c)
{
    for (;;) {
        size_t n = 0;
        int rc = tls_session_read(c->tls, c->srv->tls_plain, TLS_RECORD_MAX, &n);
        if (rc == TLS_ECLOSED) {
            http_conn_read_end(c, true); /* close_notify: as a FIN */
            return -1;
        }
        if (rc < 0) {
            failed(c, rc);
            return -1;
        }
        if (flush(c) != 0) /* handshake messages, key updates */
            return -1;
        if (!c->tls_ready && tls_session_established(c->tls) && handshake_done(c) != 0)
            return -1;
        if (n == 0)
            return 0;
        http_conn_feed(c, c->srv->tls_plain, n);
        if (c->closing || c->finishing || c->read_done)
            return -1;
    }
}

static void tls_read(struct http_conn *c, const char *data, size_t len)
{
    /* Each feed takes up to TLS_SESSION_IN_MAX; draining makes room for the rest. */
    while (len > 0 && !c->closing) {
        size_t used = 0;
        int rc = tls_session_feed(c->tls, data, len, &used);
        if (rc < 0 && rc != TLS_EFULL) {
            failed(c, rc);
            return;
        }
        data += used;
        len -= used;
        if (drain(c) != 0)
            return;
        if (rc == TLS_EFULL && used == 0)
            return; /* cannot happen after a drain; never loop on it */
    }
}

static int tls_write(struct http_conn *c, char *buf, size_t len)
{
    int rc = tls_session_write(c->tls, buf, len);
    free(buf);
    if (rc != 0) {
        /* Before the handshake (a header timeout) or after a failure: nothing can be said. */
        http_conn_defer_abort(c);
        return HTTP_ECLOSED;
    }
    return flush(c);
}

static void tls_close_notify(struct http_conn *c)
{
    tls_session_shutdown(c->tls);
    (void)flush(c);
}

static const struct http_tls_ops ops = {
    .accept = tls_accept,
    .read = tls_read,
    .write = tls_write,
    .close_notify = tls_close_notify,
    .release = tls_release,
};

int http_server_tls(http_server_t *srv, struct tls_ctx *ctx, http_tls_error_cb cb, void *data)
{
    if (!srv || !ctx || tls_ctx_role(ctx) != TLS_ROLE_SERVER)
        return HTTP_EINVAL;
    if (srv->tls || srv->listener_used || srv->closing)
        return HTTP_ESTATE;
    if (!(srv->tls_plain = malloc(TLS_RECORD_MAX)))
        return HTTP_ENOMEM;
    srv->tls = ctx;
    srv->tls_ops = &ops;
    srv->tls_error_cb = cb;
    srv->tls_error_data = data;
    return 0;
}
