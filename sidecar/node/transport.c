/* transport.c — TCP transport between electd nodes: its life cycle (start, close), the
 * counters it reports, and helpers its other files share. See transport.h for the protocol
 * and transport_int.h for which file does what. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "transport_int.h"

const char *sidecar_transport_strerror(int err)
{
    switch (err) {
#define SIDECAR_TRANSPORT_ERR_TEXT(name, code, text)                                               \
    case code:                                                                                     \
        return text;
        SIDECAR_TRANSPORT_ERRNO_MAP(SIDECAR_TRANSPORT_ERR_TEXT)
#undef SIDECAR_TRANSPORT_ERR_TEXT
    }
    return "unknown error";
}

void transport_maybe_finish_close(struct sidecar_transport *t)
{
    if (t->closing && t->pending == 0) {
        void (*cb)(void *) = t->close_cb;
        void *ud = t->close_ud;
        transport_tls_close(t);
        transport_notice_close(t);
        free(t);
        if (cb)
            cb(ud);
    }
}

void transport_random_fill(uint8_t *buf, size_t len)
{
    if (getrandom(buf, len, GRND_NONBLOCK) == (ssize_t)len)
        return;
    /* No entropy yet (early boot): the nonce need only be unique, not secret. */
    static uint64_t counter;
    uint64_t x = uv_hrtime() ^ (++counter * 0x9e3779b97f4a7c15ull) ^ (uint64_t)getpid();
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
}

void transport_sockaddr_format(const struct sockaddr *sa, char *out, size_t len)
{
    char ip[64] = "?";
    uint16_t port = 0;
    if (sa->sa_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)sa, ip, sizeof(ip));
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
        snprintf(out, len, "[%s]:%u", ip, port);
        return;
    }
    if (sa->sa_family == AF_INET) {
        uv_ip4_name((const struct sockaddr_in *)sa, ip, sizeof(ip));
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    }
    snprintf(out, len, "%s:%u", ip, port);
}

void transport_name_copy(char *dst, const char *src)
{
    snprintf(dst, SIDECAR_TRANSPORT_NAME_MAX, "%s", src ? src : "");
}

/* ---- life cycle --------------------------------------------------------------------------- */

/* Copies cfg into t with its defaults, and the strings it points to into t's own buffers.
 * Returns SIDECAR_TRANSPORT_EINVAL when the name has a space or the advertised text does not
 * fit in one HELLO. */
static int config_copy(struct sidecar_transport *t, const sidecar_transport_config_t *cfg)
{
    t->cfg = *cfg;
    if (t->cfg.max_queue_bytes == 0)
        t->cfg.max_queue_bytes = SIDECAR_TRANSPORT_QUEUE_BYTES;
    if (t->cfg.max_inbound == 0)
        t->cfg.max_inbound = SIDECAR_TRANSPORT_MAX_INBOUND;
    if (t->cfg.handshake_ms == 0)
        t->cfg.handshake_ms = SIDECAR_TRANSPORT_HANDSHAKE_MS;
    if (t->cfg.linger_ms == 0)
        t->cfg.linger_ms = SIDECAR_TRANSPORT_LINGER_MS;
    transport_name_copy(t->name, cfg->name);
    if (cfg->instance != NULL)
        memcpy(t->instance, cfg->instance, INSTANCE_LEN);
    if (cfg->token != NULL) {
        t->token_len = strlen(cfg->token);
        memcpy(t->token, cfg->token, t->token_len);
    }
    /* One authenticated field: "<name> <http address> <peer address>". */
    int n = snprintf(t->http, sizeof(t->http), "%s %s %s", t->name,
                     cfg->advertise_http ? cfg->advertise_http : "",
                     cfg->advertise_peer ? cfg->advertise_peer : "");
    t->http_len = n > 0 ? (size_t)n : 0;
    t->cfg.name = NULL;
    t->cfg.instance = NULL;
    t->cfg.token = NULL;
    t->cfg.advertise_http = NULL;
    t->cfg.advertise_peer = NULL;
    t->cfg.tls_cert_file = t->cfg.tls_key_file = t->cfg.tls_ca_file = NULL; /* in the contexts */
    t->cfg.notice_kit_path = NULL; /* transport_notice_open keeps it */
    if (t->http_len > HTTP_ADDR_MAX || strchr(t->name, ' ') != NULL)
        return SIDECAR_TRANSPORT_EINVAL;
    return 0;
}

int sidecar_transport_open(sidecar_transport_t **out, const sidecar_transport_config_t *cfg,
                           char *errbuf, size_t errlen)
{
    if (cfg->loop == NULL || cfg->self_id == 0 || cfg->recv_cb == NULL || cfg->listen_host == NULL)
        return SIDECAR_TRANSPORT_EINVAL;
    if (cfg->token != NULL && strlen(cfg->token) >= TOKEN_MAX)
        return SIDECAR_TRANSPORT_EINVAL;
    struct sidecar_transport *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return SIDECAR_TRANSPORT_ENOMEM;
    int rv = config_copy(t, cfg);
    if (rv == 0)
        rv = transport_notice_open(t, cfg);
    if (rv == 0)
        rv = transport_tls_open(t, cfg, errbuf, errlen);
    if (rv != 0) {
        transport_notice_close(t);
        free(t);
        return rv;
    }
    rv = transport_listen(t, errbuf, errlen);
    if (rv != 0)
        return rv;            /* t is freed when the listener's close completes */
    transport_notice_save(t); /* no members yet: a previous run's kit must not be used */
    *out = t;
    return 0;
}

uint16_t sidecar_transport_port(const sidecar_transport_t *t)
{
    return t->port;
}

void sidecar_transport_close(sidecar_transport_t *t, void (*cb)(void *ud), void *ud)
{
    if (t->closing)
        return;
    t->closing = true;
    t->close_cb = cb;
    t->close_ud = ud;
    while (t->n_peers > 0)
        transport_peer_detach(t->peers[--t->n_peers]);
    while (t->inbound != NULL)
        transport_in_close(t->inbound);
    transport_listener_close(t);
}

/* ---- counters ----------------------------------------------------------------------------- */

size_t sidecar_transport_stats(const sidecar_transport_t *t, sidecar_transport_peer_stats_t *out,
                               size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_peers && n < cap; i++) {
        out[n] = t->peers[i]->st;
        out[n].queued_bytes = t->peers[i]->conn ? t->peers[i]->conn->queued : 0;
        n++;
    }
    return n;
}

uint64_t sidecar_transport_rejected(const sidecar_transport_t *t)
{
    return t->rejected;
}

uint64_t sidecar_transport_unknown_dropped(const sidecar_transport_t *t)
{
    return t->unknown_dropped;
}

size_t sidecar_transport_refused(const sidecar_transport_t *t, sidecar_transport_refusal_t *out,
                                 size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < SIDECAR_TRANSPORT_REFUSED_MAX && n < cap; i++)
        if (t->refused[i].count > 0)
            out[n++] = t->refused[i];
    return n;
}
