/* transport_tls.c — peer TLS (transport.h, "Peer TLS"): the server and client contexts from
 * the three files (re-read on SIGHUP), a session per connection, the ciphertext read from a
 * socket decrypted into the cluster handshake and the frames, the check that a certificate
 * names the member it belongs to, and the refusals — logged with the address and OpenSSL's
 * reason, counted. Writes go through transport_write() (transport_frames.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "transport_int.h"

#define TLS_LOG_MS 1000 /* refusals are logged at most once a second (all are counted) */

int transport_tls_open(struct sidecar_transport *t, const sidecar_transport_config_t *cfg,
                       char *errbuf, size_t errlen)
{
    if (cfg->tls_cert_file == NULL && cfg->tls_key_file == NULL && cfg->tls_ca_file == NULL)
        return 0;
    tls_config_t tc = {.role = TLS_ROLE_SERVER,
                       .cert_file = cfg->tls_cert_file,
                       .key_file = cfg->tls_key_file,
                       .ca_file = cfg->tls_ca_file};
    char err[512] = "";
    int rc =
        cfg->tls_ca_file == NULL ? TLS_EINVAL : tls_ctx_open(&tc, &t->tls_server, err, sizeof(err));
    if (rc == 0) {
        tc.role = TLS_ROLE_CLIENT; /* the same certificate, as a client certificate */
        rc = tls_ctx_open(&tc, &t->tls_client, err, sizeof(err));
    }
    if (rc == 0 && (t->tls_buf = malloc(READ_CHUNK)) == NULL)
        rc = TLS_ENOMEM;
    if (rc == 0 && (sidecar_reload_register("peer", t->tls_server) != 0 ||
                    sidecar_reload_register("peer", t->tls_client) != 0))
        rc = TLS_ENOMEM;
    if (rc != 0) {
        if (errbuf != NULL)
            snprintf(errbuf, errlen, "peer TLS: %s", err[0] ? err : tls_strerror(rc));
        transport_tls_close(t);
        return SIDECAR_TRANSPORT_ETLS;
    }
    return 0;
}

void transport_tls_close(struct sidecar_transport *t)
{
    sidecar_reload_unregister(t->tls_server);
    sidecar_reload_unregister(t->tls_client);
    tls_ctx_close(t->tls_server);
    tls_ctx_close(t->tls_client);
    free(t->tls_buf);
    t->tls_server = t->tls_client = NULL;
    t->tls_buf = NULL;
}

int transport_tls_in_start(struct in_conn *c)
{
    return tls_session_open(c->t->tls_server, NULL, &c->tls) == 0 ? 0 : SIDECAR_TRANSPORT_ENOMEM;
}

int transport_tls_out_start(struct out_conn *c)
{
    if (tls_session_open(c->t->tls_client, NULL, &c->tls) != 0)
        return SIDECAR_TRANSPORT_ENOMEM;
    return transport_tls_flush((uv_stream_t *)&c->tcp, c->tls); /* the ClientHello */
}

/* A connection this member refused at the TLS layer: counted; logged at most once per
 * TLS_LOG_MS. `name` is the member (when known), `addr` the other end. */
static void refused(struct sidecar_transport *t, const char *msg, const char *name,
                    const char *addr, const char *reason)
{
    t->tls_refused++;
    uint64_t now = uv_now(t->cfg.loop);
    if (t->tls_logged_ms != 0 && now - t->tls_logged_ms < TLS_LOG_MS) {
        t->tls_suppressed++;
        return;
    }
    SIDECAR_LOG(SIDECAR_LOG_WARN, msg, SIDECAR_LOG_STR("name", name), SIDECAR_LOG_STR("addr", addr),
                SIDECAR_LOG_STR("reason", reason),
                SIDECAR_LOG_UINT("suppressed_since_last", t->tls_suppressed));
    t->tls_logged_ms = now;
    t->tls_suppressed = 0;
}

/* The last words of a failed session (its alert), sent if the socket takes them now. */
static void send_alert(uv_stream_t *s, tls_session_t *tls)
{
    uint8_t alert[512];
    size_t n = tls_session_out_read(tls, alert, sizeof(alert));
    uv_buf_t b = uv_buf_init((char *)alert, (unsigned)n);
    if (n > 0)
        (void)uv_try_write(s, &b, 1);
}

enum { FEED_STUCK = 1 };

/* Feeds as much of *data as the session takes and advances *data and *len. 0, FEED_STUCK when
 * the session took nothing (its input is full: decrypting must make room first, and did
 * not), or the session's error. */
static int feed(tls_session_t *tls, const uint8_t **data, size_t *len)
{
    size_t used = 0;
    int rc = tls_session_feed(tls, *data, *len, &used);
    if (rc < 0 && rc != TLS_EFULL)
        return rc;
    *data += used;
    *len -= used;
    return rc == TLS_EFULL && used == 0 ? FEED_STUCK : 0;
}

/* ---- inbound: we are the TLS server ------------------------------------------------------- */

/* A session that failed: the peer refused our certificate (its alert: logged, not counted),
 * or we refused the peer (counted). `name` is the member when known. */
static void session_failed(struct sidecar_transport *t, tls_session_t *tls, int rc,
                           const char *name, const char *addr)
{
    const char *why = tls_session_error(tls);
    if (strstr(why, " alert ") != NULL) /* "tlsv1 alert unknown ca": OpenSSL's words */
        SIDECAR_LOG(SIDECAR_LOG_WARN, "peer refused our TLS certificate",
                    SIDECAR_LOG_STR("name", name), SIDECAR_LOG_STR("addr", addr),
                    SIDECAR_LOG_STR("reason", why));
    else
        refused(t, "refused peer: TLS", name, addr,
                rc == TLS_EPLAINTEXT ? "plaintext where TLS was expected: the peer has no peer "
                                       "TLS (--peer-cert-file)"
                : why[0]             ? why
                                     : tls_strerror(rc));
}

static void in_failed(struct in_conn *c, int rc)
{
    /* The dialler's name comes in its HELLO, after TLS: its own log names us both. */
    session_failed(c->t, c->tls, rc, "(not yet known: it dialled us)", c->remote);
    c->t->rejected++;
    send_alert((uv_stream_t *)&c->tcp, c->tls);
    transport_in_close(c);
}

void transport_tls_in_ended(struct in_conn *c, const char *why)
{
    struct sidecar_transport *t = c->t;
    t->rejected++;
    if (!tls_session_established(c->tls))
        t->tls_refused++; /* a plain-TCP member waits for a challenge that never comes */
    const char *hint = !tls_session_established(c->tls)
                           ? "no TLS handshake completed (a member without peer TLS, or not an "
                             "electd?)"
                           : "TLS is up but no HELLO came (the peer may have refused our "
                             "certificate: see its log)";
    SIDECAR_LOG(SIDECAR_LOG_WARN, "dropping peer connection", SIDECAR_LOG_STR("remote", c->remote),
                SIDECAR_LOG_STR("reason", why), SIDECAR_LOG_STR("tls", hint));
    transport_in_close(c);
}

/* Decrypts what the session holds into c->buf and acts on it. -1 once c is closing. */
static int in_decrypt(struct in_conn *c)
{
    /* Each turn that yields plaintext consumed a record (>= 22 bytes) of the at most
     * TLS_SESSION_IN_MAX bytes fed: the bound is never reached. */
    for (size_t turn = 0; turn <= TLS_SESSION_IN_MAX; turn++) {
        if (transport_in_reserve(c) == 0) {
            transport_in_bad_input(c, "out of buffer space");
            return -1;
        }
        size_t n = 0;
        int rc = tls_session_read(c->tls, c->buf + c->len, c->cap - c->len, &n);
        if (rc == TLS_ECLOSED) {
            transport_in_close(c);
            return -1;
        }
        if (rc < 0) {
            in_failed(c, rc);
            return -1;
        }
        if (transport_tls_flush((uv_stream_t *)&c->tcp, c->tls) != 0) {
            transport_in_close(c);
            return -1;
        }
        if (!c->challenged && tls_session_established(c->tls)) {
            c->challenged = true;
            if (transport_challenge_send(c) != 0) {
                transport_in_close(c);
                return -1;
            }
        }
        if (n == 0)
            return 0;
        c->len += n;
        transport_in_process(c);
        if (c->state == IN_CLOSING)
            return -1;
    }
    return 0;
}

void transport_tls_in_read(struct in_conn *c, const uint8_t *data, size_t len)
{
    while (len > 0 && c->state != IN_CLOSING) {
        int rc = feed(c->tls, &data, &len);
        if (rc < 0)
            in_failed(c, rc);
        else if (in_decrypt(c) == 0 && rc == FEED_STUCK)
            transport_in_bad_input(c, "TLS input limit reached");
        if (rc < 0 || rc == FEED_STUCK || c->state == IN_CLOSING)
            return;
    }
}

int transport_tls_hello_name(struct in_conn *c, uint64_t from, const char *name)
{
    struct sidecar_transport *t = c->t;
    if (!t->cfg.tls_check_name)
        return 0;
    if (name[0] != '\0' && sidecar_config_node_id(name) == from &&
        tls_session_peer_matches(c->tls, name))
        return 0;
    const char *cn = tls_session_peer_cn(c->tls);
    char why[160];
    snprintf(why, sizeof(why), "its certificate (CN \"%s\") does not name it", cn ? cn : "");
    refused(t, "refused peer connection: TLS certificate of another member", name, c->remote, why);
    return REFUSE_CERT_NAME;
}

/* ---- outbound: we are the TLS client ------------------------------------------------------ */

/* Once the session is up: the server's certificate must name the member we dialled. */
static bool out_name_ok(struct out_conn *c)
{
    struct peer *p = c->peer;
    c->tls_checked = true;
    if (!c->t->cfg.tls_check_name || tls_session_peer_matches(c->tls, p->name))
        return true;
    const char *cn = tls_session_peer_cn(c->tls);
    char why[160];
    snprintf(why, sizeof(why), "its certificate (CN \"%s\") does not name it", cn ? cn : "");
    refused(c->t, "refused peer: TLS certificate of another member", p->name, p->addr_used, why);
    p->next_ai = NULL;
    tls_session_shutdown(c->tls);
    (void)transport_tls_flush((uv_stream_t *)&c->tcp, c->tls);
    transport_out_close(c, "TLS certificate names another member", 0);
    return false;
}

static void out_failed(struct out_conn *c, int rc)
{
    struct peer *p = c->peer;
    session_failed(c->t, c->tls, rc, p->name, p->addr_used);
    p->next_ai = NULL; /* an electd (or something) answered: other addresses would not help */
    send_alert((uv_stream_t *)&c->tcp, c->tls);
    transport_out_close(c, "TLS failed", 0);
}

/* Decrypts what the session holds into the handshake buffer. -1 once c is closing. */
static int out_decrypt(struct out_conn *c)
{
    for (size_t turn = 0; turn <= TLS_SESSION_IN_MAX; turn++) {
        uint8_t sink[64];
        bool hs = c->state == OUT_HANDSHAKE && c->hs_len < sizeof(c->hs);
        size_t n = 0;
        int rc = hs ? tls_session_read(c->tls, c->hs + c->hs_len, sizeof(c->hs) - c->hs_len, &n)
                    : tls_session_read(c->tls, sink, sizeof(sink), &n);
        if (rc == TLS_ECLOSED) {
            transport_out_close(c, "closed by peer", 0);
            return -1;
        }
        if (rc < 0) {
            out_failed(c, rc);
            return -1;
        }
        if (transport_tls_flush((uv_stream_t *)&c->tcp, c->tls) != 0) {
            transport_out_close(c, "write failed", 0);
            return -1;
        }
        if (!c->tls_checked && tls_session_established(c->tls) && !out_name_ok(c))
            return -1;
        if (n == 0)
            return 0;
        if (!hs) {
            transport_out_close(c, "unexpected data from peer", 0);
            return -1;
        }
        c->hs_len += n;
        transport_out_handshake(c);
        if (c->state == OUT_CLOSING)
            return -1;
    }
    return 0;
}

void transport_tls_out_read(struct out_conn *c, const uint8_t *data, size_t len)
{
    while (len > 0 && c->state != OUT_CLOSING) {
        int rc = feed(c->tls, &data, &len);
        if (rc < 0)
            out_failed(c, rc);
        else if (out_decrypt(c) == 0 && rc == FEED_STUCK)
            transport_out_close(c, "TLS input limit reached", 0);
        if (rc < 0 || rc == FEED_STUCK || c->state == OUT_CLOSING)
            return;
    }
}

uint64_t sidecar_transport_tls_refused(const sidecar_transport_t *t)
{
    return t->tls_refused;
}
