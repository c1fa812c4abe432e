/* cli_tls.c — the CLI's connections: plain HTTP on the non-blocking socket, or HTTPS through a
 * tls.h session over it (the client context made once from --cacert, --cert, --key and
 * --insecure), with the handshake, sends and receives bounded by the command's deadline. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli_int.h"

static tls_ctx_t *client_ctx; /* made at the first https:// connection of the process */

static int ctx_get(const cli_ctx_t *c, tls_ctx_t **out, char *err, size_t errlen)
{
    if (client_ctx == NULL) {
        tls_config_t tc = {.role = TLS_ROLE_CLIENT,
                           .cert_file = c->cert,
                           .key_file = c->key,
                           .ca_file = c->cacert,
                           .insecure_no_verify = c->insecure};
        char why[TLS_ERROR_TEXT_MAX] = "";
        int rv = tls_ctx_open(&tc, &client_ctx, why, sizeof(why));
        if (rv != 0) {
            snprintf(err, errlen, "%s", why[0] ? why : tls_strerror(rv));
            return CLI_ETLSFILE;
        }
    }
    *out = client_ctx;
    return 0;
}

void cli_tls_close(void)
{
    tls_ctx_close(client_ctx);
    client_ctx = NULL;
}

/* The session's failure in OpenSSL's words, into conn->err. */
static int tls_failed(cli_conn_t *conn)
{
    snprintf(conn->err, conn->err_size, "%s",
             *tls_session_error(conn->tls) ? tls_session_error(conn->tls) : "TLS error");
    return CLI_ETLS;
}

/* Sends whatever ciphertext the session has waiting. */
static int flush(cli_conn_t *conn, uint64_t deadline_ms)
{
    char buf[16384];
    size_t n;
    while ((n = tls_session_out_read(conn->tls, buf, sizeof(buf))) > 0) {
        int rv = cli_send_all(conn->fd, buf, n, deadline_ms);
        if (rv != 0)
            return rv;
    }
    return 0;
}

/* One read of the socket: *n bytes into buf (0: the peer closed), waiting until readable. */
static int sock_recv(int fd, char *buf, size_t cap, size_t *n, uint64_t deadline_ms)
{
    for (;;) {
        ssize_t r = recv(fd, buf, cap, 0);
        if (r >= 0) {
            *n = (size_t)r;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return CLI_EIO;
        int rv = cli_wait_readable(fd, deadline_ms);
        if (rv != 0)
            return rv;
    }
}

/* Ciphertext from the socket into the session; *eof when the peer closed the socket. */
static int fill(cli_conn_t *conn, uint64_t deadline_ms, bool *eof)
{
    char buf[16384];
    size_t n = 0, off = 0, used;
    int rv = sock_recv(conn->fd, buf, sizeof(buf), &n, deadline_ms);
    *eof = rv == 0 && n == 0;
    while (rv == 0 && off < n) {
        if (tls_session_feed(conn->tls, buf + off, n - off, &used) != 0)
            return tls_failed(conn);
        off += used;
    }
    return rv;
}

/* Drives the handshake to its end (each round trip bounded by the deadline). */
static int handshake(cli_conn_t *conn, uint64_t deadline_ms)
{
    for (;;) {
        int rv = flush(conn, deadline_ms), hs = 0;
        bool eof = false;
        if (rv == 0 && (hs = tls_session_handshake(conn->tls)) < 0) {
            (void)flush(conn, deadline_ms); /* our alert, if any */
            return tls_failed(conn);
        }
        if (rv == 0 && hs == 1)
            return flush(conn, deadline_ms);
        if (rv == 0 && (rv = fill(conn, deadline_ms, &eof)) == 0 && eof) {
            snprintf(conn->err, conn->err_size,
                     "the server closed the connection during the "
                     "TLS handshake (is it serving HTTPS?)");
            return CLI_ETLS;
        }
        if (rv != 0)
            return rv;
    }
}

int cli_conn_open(const cli_ctx_t *c, const cli_addr_t *a, uint64_t deadline_ms, cli_conn_t *conn)
{
    conn->tls = NULL;
    int rv = cli_connect(a, deadline_ms, &conn->fd);
    if (rv != 0) {
        conn->fd = -1;
        return rv;
    }
    if (!a->tls)
        return 0;
    tls_ctx_t *ctx;
    if ((rv = ctx_get(c, &ctx, conn->err, conn->err_size)) != 0)
        return rv;
    if (tls_session_open(ctx, a->host, &conn->tls) != 0)
        return CLI_ENOMEM;
    return handshake(conn, deadline_ms);
}

int cli_conn_send(cli_conn_t *conn, const char *p, size_t n, uint64_t deadline_ms)
{
    if (conn->tls == NULL)
        return cli_send_all(conn->fd, p, n, deadline_ms);
    while (n > 0) {
        size_t k = n < TLS_RECORD_MAX / 2 ? n : TLS_RECORD_MAX / 2;
        if (tls_session_write(conn->tls, p, k) != 0)
            return tls_failed(conn);
        int rv = flush(conn, deadline_ms);
        if (rv != 0)
            return rv;
        p += k;
        n -= k;
    }
    return 0;
}

int cli_conn_recv(cli_conn_t *conn, char *buf, size_t cap, size_t *n, uint64_t deadline_ms)
{
    if (conn->tls == NULL)
        return sock_recv(conn->fd, buf, cap, n, deadline_ms);
    for (;;) {
        bool eof = false;
        int rc = tls_session_read(conn->tls, buf, cap, n);
        int rv = flush(conn, deadline_ms); /* key updates, alerts */
        if (rc == TLS_ECLOSED) {
            *n = 0;
            return 0;
        }
        if (rc < 0)
            return tls_failed(conn);
        if (rv != 0 || *n > 0)
            return rv;
        if ((rv = fill(conn, deadline_ms, &eof)) != 0)
            return rv;
        if (eof) {
            *n = 0; /* closed without close_notify: the response parser judges the body */
            return 0;
        }
    }
}

void cli_conn_close(cli_conn_t *conn)
{
    tls_session_close(conn->tls);
    conn->tls = NULL;
    if (conn->fd >= 0)
        close(conn->fd);
    conn->fd = -1;
}
