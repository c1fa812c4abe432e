/* transport_inbound.c — the listener on --listen-peer and the connections peers make to us:
 * bounded in number, in handshake time (TLS included) and in the bytes buffered while a
 * frame arrives. We only read from them (the challenge and the verdict aside). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "transport_int.h"
#include "vec.h"

static void in_handle_close_cb(uv_handle_t *h)
{
    struct in_conn *c = h->data;
    struct sidecar_transport *t = c->t;
    t->pending--;
    if (--c->open_handles == 0) {
        tls_session_close(c->tls);
        free(c->buf);
        free(c);
    }
    transport_maybe_finish_close(t);
}

void transport_in_close(struct in_conn *c)
{
    if (c->state == IN_CLOSING)
        return;
    c->state = IN_CLOSING;
    struct sidecar_transport *t = c->t;
    if (c->prev)
        c->prev->next = c->next;
    else
        t->inbound = c->next;
    if (c->next)
        c->next->prev = c->prev;
    t->n_inbound--;
    uv_close((uv_handle_t *)&c->tcp, in_handle_close_cb);
    uv_close((uv_handle_t *)&c->timer, in_handle_close_cb);
}

void transport_in_bad_input(struct in_conn *c, const char *why)
{
    c->t->rejected++;
    SIDECAR_LOG(SIDECAR_LOG_WARN, "dropping peer connection", SIDECAR_LOG_STR("self", c->t->name),
                SIDECAR_LOG_ID("from", c->from), SIDECAR_LOG_STR("remote", c->remote),
                SIDECAR_LOG_STR("reason", why));
    transport_in_close(c);
}

/* The inbound side writes only the challenge and the verdict: no queue accounting. */
static void in_write_cb(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

int transport_in_write(struct in_conn *c, const void *data, size_t len)
{
    if (c->tls != NULL)
        return transport_write((uv_stream_t *)&c->tcp, c->tls, NULL, data, len);
    struct {
        uv_write_t req;
        uv_buf_t b;
        uint8_t data[CHALLENGE_LEN];
    } *w = malloc(sizeof(*w));
    if (w == NULL)
        return UV_ENOMEM;
    memcpy(w->data, data, len);
    w->b = uv_buf_init((char *)w->data, (unsigned)len);
    int rv = uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->b, 1, in_write_cb);
    if (rv != 0)
        free(w);
    return rv;
}

size_t transport_in_reserve(struct in_conn *c)
{
    size_t want = c->len + READ_CHUNK;
    size_t limit = RAFT_FRAME_MAX + READ_CHUNK;
    if (want > limit)
        want = limit;
    (void)BASE_VEC_RESERVE(c->buf, c->cap, want, want); /* exactly want, or unchanged */
    return c->cap > c->len ? c->cap - c->len : 0;
}

/* Room for the next read: plain TCP reads into c->buf (up to READ_CHUNK more, never more
 * than one whole frame and a chunk; when it cannot grow, read_cb gets UV_ENOBUFS and
 * closes); TLS reads ciphertext into the transport's buffer, decrypted into c->buf. */
static void in_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct in_conn *c = h->data;
    (void)suggested;
    if (c->tls != NULL) {
        *buf = uv_buf_init((char *)c->t->tls_buf, READ_CHUNK);
        return;
    }
    size_t room = transport_in_reserve(c);
    *buf = room ? uv_buf_init((char *)c->buf + c->len, (unsigned)room) : uv_buf_init(NULL, 0);
}

void transport_in_process(struct in_conn *c)
{
    if (c->state == IN_HANDSHAKE) {
        if (c->len < HELLO_LEN + 1 || c->len < HELLO_LEN + 1 + (size_t)c->buf[HELLO_LEN])
            return;
        transport_hello_check(c);
    }
    if (c->state == IN_READY)
        transport_frames_deliver(c);
}

static void in_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct in_conn *c = s->data;
    if (c->state == IN_CLOSING)
        return;
    if (nread < 0) {
        if (nread == UV_ENOBUFS)
            transport_in_bad_input(c, "out of buffer space");
        else if (c->tls != NULL && c->state == IN_HANDSHAKE)
            transport_tls_in_ended(c, "closed by the peer during the handshake");
        else
            transport_in_close(c);
        return;
    }
    if (c->tls != NULL) {
        transport_tls_in_read(c, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    c->len += (size_t)nread;
    transport_in_process(c);
}

static void in_timeout_cb(uv_timer_t *timer)
{
    struct in_conn *c = timer->data;
    if (c->tls != NULL)
        transport_tls_in_ended(c, "handshake timed out");
    else
        transport_in_bad_input(c, "handshake timed out");
}

/* A new inbound connection, linked into t->inbound (so that in_close can unlink it). */
static struct in_conn *in_conn_new(struct sidecar_transport *t)
{
    struct in_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->t = t;
    uv_tcp_init(t->cfg.loop, &c->tcp);
    uv_timer_init(t->cfg.loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    t->pending += 2;
    c->next = t->inbound;
    if (t->inbound)
        t->inbound->prev = c;
    t->inbound = c;
    t->n_inbound++;
    return c;
}

static void accept_cb(uv_stream_t *server, int status)
{
    struct sidecar_transport *t = server->data;
    if (status != 0 || t->closing)
        return;
    struct in_conn *c = in_conn_new(t);
    if (c == NULL)
        return;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        transport_in_close(c);
        return;
    }
    struct sockaddr_storage remote;
    int rlen = sizeof(remote);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&remote, &rlen) == 0)
        transport_sockaddr_format((struct sockaddr *)&remote, c->remote, sizeof(c->remote));
    if (t->n_inbound > t->cfg.max_inbound) {
        t->rejected++;
        SIDECAR_LOG(SIDECAR_LOG_WARN, "refused peer connection", SIDECAR_LOG_STR("self", t->name),
                    SIDECAR_LOG_STR("remote", c->remote),
                    SIDECAR_LOG_STR("reason", "too many inbound connections"));
        transport_in_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    /* Under TLS the challenge waits for the session (transport_tls_in_read). */
    int rv = t->tls_server != NULL ? transport_tls_in_start(c) : transport_challenge_send(c);
    c->challenged = t->tls_server == NULL;
    if (rv != 0 || uv_read_start((uv_stream_t *)&c->tcp, in_alloc_cb, in_read_cb) != 0) {
        transport_in_close(c);
        return;
    }
    uv_timer_start(&c->timer, in_timeout_cb, t->cfg.handshake_ms, 0);
}

/* A held connection wakes the loop only once this many bytes wait (SO_RCVLOWAT; an end or
 * an error wakes it at once). Far more than the echoes of the rounds between two drains;
 * small enough not to grow the socket's receive buffer. */
#define HOLD_LOWAT 4096

static void in_lowat(struct in_conn *c, int bytes)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof(bytes));
}

void sidecar_transport_hold_reads(sidecar_transport_t *t, bool hold)
{
    /* Released, the kernel signals what already waits: libuv reads it on this loop turn. */
    for (struct in_conn *c = t->inbound; c != NULL; c = c->next)
        if (c->state == IN_READY)
            in_lowat(c, hold ? HOLD_LOWAT : 1);
}

/* Reads c as libuv would (in_alloc_cb, in_read_cb) until nothing waits: at most a few chunks,
 * the rest on the loop's next turn (the threshold is then met). */
static void in_drain(struct in_conn *c)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
        return;
    for (int i = 0; i < 4 && c->state == IN_READY; i++) {
        uv_buf_t b;
        in_alloc_cb((uv_handle_t *)&c->tcp, READ_CHUNK, &b);
        if (b.len == 0) {
            in_read_cb((uv_stream_t *)&c->tcp, UV_ENOBUFS, &b);
            return;
        }
        ssize_t n = recv(fd, b.base, b.len, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        in_read_cb((uv_stream_t *)&c->tcp, n > 0 ? n : n == 0 ? UV_EOF : -errno, &b);
        if (n < (ssize_t)b.len)
            return;
    }
}

void sidecar_transport_drain(sidecar_transport_t *t, bool (*want)(void *ud, uint64_t id), void *ud)
{
    /* All are chosen first: what is read moves the core on (a new round), and with it the
     * answer of want. A connection closed by its own input is unlinked but not freed before
     * the loop's next turn: its next pointer stays good. */
    for (struct in_conn *c = t->inbound; c != NULL; c = c->next)
        c->drain = c->state == IN_READY && (want == NULL || want(ud, c->from));
    for (struct in_conn *c = t->inbound, *next; c != NULL; c = next) {
        next = c->next;
        if (c->drain && c->state == IN_READY)
            in_drain(c);
    }
}

/* ---- the listener ------------------------------------------------------------------------- */

static void listener_close_cb(uv_handle_t *h)
{
    struct sidecar_transport *t = h->data;
    t->pending--;
    transport_maybe_finish_close(t);
}

void transport_listener_close(struct sidecar_transport *t)
{
    uv_close((uv_handle_t *)&t->listener, listener_close_cb);
}

int transport_listen(struct sidecar_transport *t, char *errbuf, size_t errlen)
{
    const sidecar_transport_config_t *cfg = &t->cfg;
    struct sockaddr_storage ss;
    int rv = uv_ip4_addr(cfg->listen_host, cfg->listen_port, (struct sockaddr_in *)&ss);
    if (rv != 0)
        rv = uv_ip6_addr(cfg->listen_host, cfg->listen_port, (struct sockaddr_in6 *)&ss);
    uv_tcp_init(cfg->loop, &t->listener);
    t->listener.data = t;
    t->pending = 1;
    if (rv == 0)
        rv = uv_tcp_bind(&t->listener, (struct sockaddr *)&ss, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&t->listener, 128, accept_cb);
    if (rv != 0) {
        if (errbuf != NULL)
            snprintf(errbuf, errlen, "cannot listen for peers on %s:%u: %s", cfg->listen_host,
                     cfg->listen_port, uv_strerror(rv));
        /* t is freed when the listener's close completes, on the caller's next loop turn. */
        t->closing = true;
        transport_listener_close(t);
        return SIDECAR_TRANSPORT_ELISTEN;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(&t->listener, (struct sockaddr *)&bound, &blen);
    t->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}
