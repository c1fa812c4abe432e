/* transport_dial.c — outbound connections: resolve a peer's host name at every dial, try each
 * address it resolves to (each attempt bounded by handshake_ms), and back off with jitter
 * when none answers. The handshake itself is in transport_handshake.c. */
#include <stdio.h>
#include <stdlib.h>

#include "transport_int.h"

static void try_next_address(struct peer *p);

void transport_addrs_free(struct peer *p)
{
    if (p->addrs != NULL)
        uv_freeaddrinfo(p->addrs);
    p->addrs = p->next_ai = NULL;
}

static void backoff_cb(uv_timer_t *timer)
{
    transport_dial(timer->data);
}

/* Exponential backoff from SIDECAR_TRANSPORT_BACKOFF_MIN_MS to _MAX_MS, jittered to
 * [delay/2, delay]. */
static void schedule_redial(struct peer *p)
{
    transport_addrs_free(p); /* the next dial resolves the name again */
    if (p->removed || p->t->closing || !p->timer_open)
        return;
    uint32_t shift = p->attempts < 6 ? p->attempts : 6;
    uint64_t delay = (uint64_t)SIDECAR_TRANSPORT_BACKOFF_MIN_MS << shift;
    if (delay > SIDECAR_TRANSPORT_BACKOFF_MAX_MS)
        delay = SIDECAR_TRANSPORT_BACKOFF_MAX_MS;
    uint8_t r;
    transport_random_fill(&r, 1);
    delay = delay / 2 + (delay / 2) * r / 255;
    p->attempts++;
    uv_timer_start(&p->timer, backoff_cb, delay, 0);
}

static void out_close_cb(uv_handle_t *h)
{
    struct out_conn *c = h->data;
    struct sidecar_transport *t = c->t;
    struct peer *p = c->peer;
    tls_session_close(c->tls);
    free(c);
    t->pending--;
    if (p != NULL) {
        p->conn = NULL;
        if (p->removed)
            transport_peer_free_if_done(p);
        else if (p->next_ai != NULL)
            try_next_address(p); /* this attempt failed before the handshake completed */
        else
            schedule_redial(p);
    }
    transport_maybe_finish_close(t);
}

static void log_closed(const struct out_conn *c, const char *why, int err)
{
    struct peer *p = c->peer;
    if (c->state == OUT_READY) {
        SIDECAR_LOG(SIDECAR_LOG_INFO, "peer disconnected", SIDECAR_LOG_ID("peer", p->id),
                    SIDECAR_LOG_STR("name", p->name), SIDECAR_LOG_STR("reason", why),
                    SIDECAR_LOG_STR("error", err ? uv_strerror(err) : ""));
        return;
    }
    if (p->attempts < 3 || sidecar_log_enabled(SIDECAR_LOG_DEBUG))
        SIDECAR_LOG(p->attempts < 3 ? SIDECAR_LOG_INFO : SIDECAR_LOG_DEBUG,
                    "peer connection failed", SIDECAR_LOG_ID("peer", p->id),
                    SIDECAR_LOG_STR("name", p->name), SIDECAR_LOG_STR("host", p->host),
                    SIDECAR_LOG_UINT("port", p->port), SIDECAR_LOG_STR("addr", p->addr_used),
                    SIDECAR_LOG_STR("reason", why),
                    SIDECAR_LOG_STR("error", err ? uv_strerror(err) : ""));
}

void transport_out_close(struct out_conn *c, const char *why, int err)
{
    if (c->state == OUT_CLOSING)
        return;
    struct peer *p = c->peer;
    if (p != NULL && !c->t->closing) {
        log_closed(c, why, err);
        if (c->state == OUT_READY)
            p->next_ai = NULL; /* a connection that worked: back off, then resolve again */
        else
            p->st.failures++;
        p->st.connected = false;
        if (p->timer_open)
            uv_timer_stop(&p->timer); /* the attempt deadline */
    }
    c->state = OUT_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, out_close_cb);
}

/* The deadline of one attempt (connect and handshake) on one address. */
static void attempt_timeout_cb(uv_timer_t *timer)
{
    struct peer *p = timer->data;
    if (p->conn != NULL && p->conn->state != OUT_READY)
        transport_out_close(p->conn, "connect or handshake timed out", 0);
}

static void out_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct out_conn *c = h->data;
    (void)suggested;
    if (c->tls != NULL) {
        *buf = uv_buf_init((char *)c->t->tls_buf, READ_CHUNK); /* decrypted by out_read_cb */
    } else if (c->state == OUT_HANDSHAKE && c->hs_len < sizeof(c->hs)) {
        *buf = uv_buf_init((char *)c->hs + c->hs_len, (unsigned)(sizeof(c->hs) - c->hs_len));
    } else {
        /* After the handshake the server never speaks: anything is a protocol error. */
        static char sink[64];
        *buf = uv_buf_init(sink, sizeof(sink));
    }
}

static void out_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct out_conn *c = s->data;
    if (c->state == OUT_CLOSING)
        return;
    if (nread < 0) {
        transport_out_close(c, nread == UV_EOF ? "closed by peer" : "read error",
                            nread == UV_EOF ? 0 : (int)nread);
        return;
    }
    if (nread == 0)
        return;
    if (c->tls != NULL) {
        transport_tls_out_read(c, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    if (c->state != OUT_HANDSHAKE) {
        transport_out_close(c, "unexpected data from peer", 0);
        return;
    }
    c->hs_len += (size_t)nread;
    transport_out_handshake(c);
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct out_conn *c = req->data;
    if (status != 0) {
        transport_out_close(c, "connect failed", status);
        return;
    }
    if (c->state == OUT_CLOSING)
        return;
    c->state = OUT_HANDSHAKE;
    int rv = uv_read_start((uv_stream_t *)&c->tcp, out_alloc_cb, out_read_cb);
    if (rv == 0 && c->t->tls_client != NULL)
        rv = transport_tls_out_start(c) == 0 ? 0 : UV_ENOMEM;
    if (rv != 0)
        transport_out_close(c, "read failed", rv);
}

/* Connects to the next resolved address of p (RFC 8305's order: as the resolver sorted
 * them), each bounded by handshake_ms; when none is left, backs off and resolves again. */
static void try_next_address(struct peer *p)
{
    struct sidecar_transport *t = p->t;
    struct addrinfo *ai = p->next_ai;
    if (ai == NULL || p->removed || t->closing) {
        schedule_redial(p);
        return;
    }
    p->next_ai = ai->ai_next;
    struct out_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        schedule_redial(p);
        return;
    }
    transport_sockaddr_format(ai->ai_addr, p->addr_used, sizeof(p->addr_used));
    c->t = t;
    c->peer = p;
    c->state = OUT_CONNECTING;
    uv_tcp_init(t->cfg.loop, &c->tcp);
    c->tcp.data = c;
    c->connect.data = c;
    t->pending++;
    p->conn = c;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_start(&p->timer, attempt_timeout_cb, t->cfg.handshake_ms, 0);
    int rv = uv_tcp_connect(&c->connect, &c->tcp, ai->ai_addr, connect_cb);
    if (rv != 0)
        transport_out_close(c, "connect failed", rv);
}

static void resolved_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct peer *p = req->data;
    struct sidecar_transport *t = p->t;
    p->resolving = NULL;
    free(req);
    t->pending--;
    if (p->removed || t->closing) {
        uv_freeaddrinfo(res);
        transport_peer_free_if_done(p);
        transport_maybe_finish_close(t);
        return;
    }
    if (status != 0 || res == NULL) {
        p->st.failures++;
        if (p->attempts < 3)
            SIDECAR_LOG(SIDECAR_LOG_WARN, "cannot resolve peer", SIDECAR_LOG_ID("peer", p->id),
                        SIDECAR_LOG_STR("name", p->name), SIDECAR_LOG_STR("host", p->host),
                        SIDECAR_LOG_STR("error", uv_strerror(status)));
        uv_freeaddrinfo(res);
        schedule_redial(p);
        return;
    }
    transport_addrs_free(p);
    p->addrs = p->next_ai = res;
    try_next_address(p);
}

void transport_dial(struct peer *p)
{
    struct sidecar_transport *t = p->t;
    if (p->removed || t->closing || p->conn != NULL || p->resolving != NULL)
        return;
    uv_getaddrinfo_t *req = malloc(sizeof(*req));
    if (req == NULL) {
        schedule_redial(p);
        return;
    }
    req->data = p;
    char port[8];
    snprintf(port, sizeof(port), "%u", p->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rv = uv_getaddrinfo(t->cfg.loop, req, resolved_cb, p->host, port, &hints);
    if (rv != 0) {
        free(req);
        schedule_redial(p);
        return;
    }
    p->resolving = req;
    t->pending++;
}
