/* transport.c — TCP transport between electd nodes: dialling, the cluster handshake, framing
 * and bounded send queues. See transport.h for the protocol. */
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "config.h"
#include "hmac.h"
#include "log.h"

#define CHALLENGE_LEN 22
#define HELLO_LEN     62 /* fixed part; then u8 length and the advertised HTTP address */
#define HTTP_ADDR_MAX 255
#define VERDICT_LEN   5
#define NONCE_LEN     16
#define READ_CHUNK    (64u << 10)
#define TOKEN_MAX     257 /* bytes of the cluster token, NUL included */

enum { REFUSE_VERSION = 1, REFUSE_CLUSTER = 2, REFUSE_TOKEN = 3, REFUSE_NOT_ME = 4 };

static const char *refuse_text(int reason)
{
    switch (reason) {
    case REFUSE_VERSION:
        return "protocol version mismatch";
    case REFUSE_CLUSTER:
        return "peer belongs to another cluster";
    case REFUSE_TOKEN:
        return "cluster token mismatch";
    case REFUSE_NOT_ME:
        return "peer dialled the wrong node";
    default:
        return "refused";
    }
}

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

/* ---- state -------------------------------------------------------------------------------- */

struct out_conn;

struct peer {
    struct sidecar_transport *t;
    uint64_t id;
    char host[SIDECAR_TRANSPORT_HOST_MAX];
    uint16_t port;
    bool removed;
    uv_timer_t timer; /* backoff before redialling */
    bool timer_open;
    uint32_t attempts;
    struct out_conn *conn; /* current connection, NULL when none */
    uv_getaddrinfo_t *resolving;
    sidecar_transport_peer_stats_t st;
};

enum { OUT_CONNECTING, OUT_HANDSHAKE, OUT_READY, OUT_CLOSING };

struct out_conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    struct peer *peer; /* NULL once the peer has forgotten this connection */
    struct sidecar_transport *t;
    int state;
    uint8_t hs[CHALLENGE_LEN + VERDICT_LEN];
    size_t hs_len;
    bool hello_sent;
    size_t queued;
};

enum { IN_HANDSHAKE, IN_READY, IN_CLOSING };

struct in_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct sidecar_transport *t;
    struct in_conn *next, *prev;
    int state;
    int open_handles;
    uint8_t nonce[NONCE_LEN];
    uint64_t from;
    uint8_t *buf;
    size_t len, cap;
};

struct wreq {
    uv_write_t req;
    struct out_conn *c;
    uv_buf_t b;
    uint8_t data[];
};

struct sidecar_transport {
    sidecar_transport_config_t cfg;
    char token[TOKEN_MAX];
    size_t token_len;
    char http[HTTP_ADDR_MAX + 1]; /* our advertised HTTP address, sent in HELLO */
    size_t http_len;
    struct peer_http {
        uint64_t id;
        char addr[HTTP_ADDR_MAX + 1];
    } peer_http[RAFT_MAX_MEMBERS * 2]; /* learned from the HELLOs of peers that dialled us */
    uv_tcp_t listener;
    uint16_t port;
    struct peer *peers[RAFT_MAX_MEMBERS * 2];
    size_t n_peers;
    struct in_conn *inbound;
    uint32_t n_inbound;
    uint64_t rejected;
    bool closing;
    int pending; /* open handles and requests; the transport is freed when it drops to 0 */
    void (*close_cb)(void *);
    void *close_ud;
};

static void maybe_finish_close(struct sidecar_transport *t)
{
    if (t->closing && t->pending == 0) {
        void (*cb)(void *) = t->close_cb;
        void *ud = t->close_ud;
        free(t);
        if (cb)
            cb(ud);
    }
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void fill_random(uint8_t *buf, size_t len)
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

static void proof(const struct sidecar_transport *t, const uint8_t nonce[NONCE_LEN], uint64_t from,
                  uint64_t to, const uint8_t *http, size_t http_len,
                  uint8_t out[SIDECAR_SHA256_LEN])
{
    uint8_t msg[NONCE_LEN + 24 + 1 + HTTP_ADDR_MAX];
    memcpy(msg, nonce, NONCE_LEN);
    put_u64(msg + NONCE_LEN, t->cfg.cluster_id);
    put_u64(msg + NONCE_LEN + 8, from);
    put_u64(msg + NONCE_LEN + 16, to);
    msg[NONCE_LEN + 24] = (uint8_t)http_len;
    memcpy(msg + NONCE_LEN + 25, http, http_len);
    sidecar_hmac_sha256(t->token, t->token_len, msg, NONCE_LEN + 25 + http_len, out);
}

/* ---- writing ------------------------------------------------------------------------------ */

static void write_cb(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    (void)status; /* a failed write shows up as a read error / EOF and closes the conn */
    if (w->c != NULL)
        w->c->queued -= w->b.len;
    free(w);
}

static int write_bytes(uv_stream_t *s, struct out_conn *c, const void *data, size_t len)
{
    struct wreq *w = malloc(sizeof(*w) + len);
    if (w == NULL)
        return UV_ENOMEM;
    memcpy(w->data, data, len);
    w->c = c;
    w->b = uv_buf_init((char *)w->data, (unsigned)len);
    int rv = uv_write(&w->req, s, &w->b, 1, write_cb);
    if (rv != 0) {
        free(w);
        return rv;
    }
    if (c != NULL)
        c->queued += len;
    return 0;
}

/* Inbound side writes only the challenge and verdict; no queue accounting. */
static void in_write_cb(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static int in_write(struct in_conn *c, const void *data, size_t len)
{
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

/* ---- outbound ----------------------------------------------------------------------------- */

static void dial(struct peer *p);

static void peer_free_if_done(struct peer *p)
{
    if (p->removed && !p->timer_open && p->conn == NULL && p->resolving == NULL)
        free(p);
}

static void timer_close_cb(uv_handle_t *h)
{
    struct peer *p = h->data;
    struct sidecar_transport *t = p->t;
    p->timer_open = false;
    t->pending--;
    peer_free_if_done(p);
    maybe_finish_close(t);
}

static void backoff_cb(uv_timer_t *timer)
{
    dial(timer->data);
}

static void schedule_redial(struct peer *p)
{
    if (p->removed || p->t->closing || !p->timer_open)
        return;
    uint32_t shift = p->attempts < 6 ? p->attempts : 6;
    uint64_t delay = (uint64_t)SIDECAR_TRANSPORT_BACKOFF_MIN_MS << shift;
    if (delay > SIDECAR_TRANSPORT_BACKOFF_MAX_MS)
        delay = SIDECAR_TRANSPORT_BACKOFF_MAX_MS;
    uint8_t r;
    fill_random(&r, 1);
    delay = delay / 2 + (delay / 2) * r / 255; /* jitter: [delay/2, delay] */
    p->attempts++;
    uv_timer_start(&p->timer, backoff_cb, delay, 0);
}

static void out_close_cb(uv_handle_t *h)
{
    struct out_conn *c = h->data;
    struct sidecar_transport *t = c->t;
    struct peer *p = c->peer;
    free(c);
    t->pending--;
    if (p != NULL) {
        p->conn = NULL;
        if (p->removed)
            peer_free_if_done(p);
        else
            schedule_redial(p);
    }
    maybe_finish_close(t);
}

static void out_close(struct out_conn *c, const char *why, int err)
{
    if (c->state == OUT_CLOSING)
        return;
    struct peer *p = c->peer;
    if (p != NULL && !c->t->closing) {
        if (c->state == OUT_READY) {
            SIDECAR_LOG(SIDECAR_LOG_INFO, "peer disconnected", SIDECAR_LOG_UINT("peer", p->id),
                        SIDECAR_LOG_STR("reason", why),
                        SIDECAR_LOG_STR("error", err ? uv_strerror(err) : ""));
        } else {
            p->st.failures++;
            if (p->attempts < 3 || sidecar_log_enabled(SIDECAR_LOG_DEBUG))
                SIDECAR_LOG(p->attempts < 3 ? SIDECAR_LOG_INFO : SIDECAR_LOG_DEBUG,
                            "peer connection failed", SIDECAR_LOG_UINT("peer", p->id),
                            SIDECAR_LOG_STR("addr", p->host), SIDECAR_LOG_UINT("port", p->port),
                            SIDECAR_LOG_STR("reason", why),
                            SIDECAR_LOG_STR("error", err ? uv_strerror(err) : ""));
        }
        p->st.connected = false;
    }
    c->state = OUT_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, out_close_cb);
}

static void out_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct out_conn *c = h->data;
    (void)suggested;
    if (c->state == OUT_HANDSHAKE && c->hs_len < sizeof(c->hs)) {
        *buf = uv_buf_init((char *)c->hs + c->hs_len, (unsigned)(sizeof(c->hs) - c->hs_len));
    } else {
        /* After the handshake the server never speaks: anything is a protocol error. */
        static char sink[64];
        *buf = uv_buf_init(sink, sizeof(sink));
    }
}

static void out_handshake(struct out_conn *c)
{
    struct sidecar_transport *t = c->t;
    struct peer *p = c->peer;
    if (!c->hello_sent && c->hs_len >= CHALLENGE_LEN) {
        if (memcmp(c->hs, "ELCH", 4) != 0 || get_u16(c->hs + 4) != SIDECAR_TRANSPORT_VERSION) {
            out_close(c, "bad challenge (not an electd peer port, or another version)", 0);
            return;
        }
        uint8_t hello[HELLO_LEN + 1 + HTTP_ADDR_MAX];
        memcpy(hello, "ELHI", 4);
        put_u16(hello + 4, SIDECAR_TRANSPORT_VERSION);
        put_u64(hello + 6, t->cfg.cluster_id);
        put_u64(hello + 14, t->cfg.self_id);
        put_u64(hello + 22, p->id);
        proof(t, c->hs + 6, t->cfg.self_id, p->id, (const uint8_t *)t->http, t->http_len,
              hello + 30);
        hello[HELLO_LEN] = (uint8_t)t->http_len;
        memcpy(hello + HELLO_LEN + 1, t->http, t->http_len);
        int rv = write_bytes((uv_stream_t *)&c->tcp, NULL, hello, HELLO_LEN + 1 + t->http_len);
        if (rv != 0) {
            out_close(c, "write failed", rv);
            return;
        }
        c->hello_sent = true;
    }
    if (c->hello_sent && c->hs_len == CHALLENGE_LEN + VERDICT_LEN) {
        const uint8_t *v = c->hs + CHALLENGE_LEN;
        if (memcmp(v, "ELOK", 4) == 0) {
            c->state = OUT_READY;
            p->attempts = 0;
            p->st.connected = true;
            p->st.connects++;
            SIDECAR_LOG(SIDECAR_LOG_INFO, "peer connected", SIDECAR_LOG_UINT("peer", p->id),
                        SIDECAR_LOG_STR("addr", p->host), SIDECAR_LOG_UINT("port", p->port));
            return;
        }
        SIDECAR_LOG(
            SIDECAR_LOG_WARN, "peer refused us", SIDECAR_LOG_UINT("peer", p->id),
            SIDECAR_LOG_STR("reason", memcmp(v, "ELNO", 4) == 0 ? refuse_text(v[4]) : "garbage"));
        out_close(c, "refused", 0);
    }
}

static void out_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct out_conn *c = s->data;
    (void)buf;
    if (c->state == OUT_CLOSING)
        return;
    if (nread < 0) {
        out_close(c, nread == UV_EOF ? "closed by peer" : "read error",
                  nread == UV_EOF ? 0 : (int)nread);
        return;
    }
    if (nread == 0)
        return;
    if (c->state != OUT_HANDSHAKE) {
        out_close(c, "unexpected data from peer", 0);
        return;
    }
    c->hs_len += (size_t)nread;
    out_handshake(c);
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct out_conn *c = req->data;
    if (status != 0) {
        out_close(c, "connect failed", status);
        return;
    }
    if (c->state == OUT_CLOSING)
        return;
    c->state = OUT_HANDSHAKE;
    int rv = uv_read_start((uv_stream_t *)&c->tcp, out_alloc_cb, out_read_cb);
    if (rv != 0)
        out_close(c, "read failed", rv);
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
        peer_free_if_done(p);
        maybe_finish_close(t);
        return;
    }
    if (status != 0 || res == NULL) {
        p->st.failures++;
        if (p->attempts < 3)
            SIDECAR_LOG(SIDECAR_LOG_WARN, "cannot resolve peer", SIDECAR_LOG_UINT("peer", p->id),
                        SIDECAR_LOG_STR("host", p->host),
                        SIDECAR_LOG_STR("error", uv_strerror(status)));
        uv_freeaddrinfo(res);
        schedule_redial(p);
        return;
    }
    struct out_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        uv_freeaddrinfo(res);
        schedule_redial(p);
        return;
    }
    c->t = t;
    c->peer = p;
    c->state = OUT_CONNECTING;
    uv_tcp_init(t->cfg.loop, &c->tcp);
    c->tcp.data = c;
    c->connect.data = c;
    t->pending++;
    p->conn = c;
    uv_tcp_nodelay(&c->tcp, 1);
    int rv = uv_tcp_connect(&c->connect, &c->tcp, res->ai_addr, connect_cb);
    uv_freeaddrinfo(res);
    if (rv != 0)
        out_close(c, "connect failed", rv);
}

static void dial(struct peer *p)
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

static struct peer *peer_find(const struct sidecar_transport *t, uint64_t id, size_t *pos)
{
    for (size_t i = 0; i < t->n_peers; i++)
        if (t->peers[i]->id == id) {
            if (pos)
                *pos = i;
            return t->peers[i];
        }
    return NULL;
}

static void peer_detach(struct peer *p)
{
    p->removed = true;
    if (p->conn != NULL) {
        p->conn->peer = NULL;
        struct out_conn *c = p->conn;
        p->conn = NULL;
        out_close(c, "peer removed", 0);
    }
    if (p->resolving != NULL)
        uv_cancel((uv_req_t *)p->resolving);
    if (p->timer_open)
        uv_close((uv_handle_t *)&p->timer, timer_close_cb);
    else
        peer_free_if_done(p);
}

int sidecar_transport_peer_set(sidecar_transport_t *t, uint64_t id, const char *host, uint16_t port)
{
    if (t->closing)
        return SIDECAR_TRANSPORT_ECLOSING;
    if (id == 0 || id == t->cfg.self_id || host == NULL ||
        strlen(host) >= SIDECAR_TRANSPORT_HOST_MAX || port == 0)
        return SIDECAR_TRANSPORT_EINVAL;
    struct peer *p = peer_find(t, id, NULL);
    if (p != NULL) {
        if (strcmp(p->host, host) == 0 && p->port == port)
            return 0;
        strcpy(p->host, host);
        p->port = port;
        if (p->conn != NULL)
            out_close(p->conn, "address changed", 0);
        return 0;
    }
    if (t->n_peers == sizeof(t->peers) / sizeof(t->peers[0]))
        return SIDECAR_TRANSPORT_EINVAL;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return SIDECAR_TRANSPORT_ENOMEM;
    p->t = t;
    p->id = id;
    p->st.id = id;
    strcpy(p->host, host);
    p->port = port;
    uv_timer_init(t->cfg.loop, &p->timer);
    p->timer.data = p;
    p->timer_open = true;
    t->pending++;
    t->peers[t->n_peers++] = p;
    dial(p);
    return 0;
}

void sidecar_transport_peer_remove(sidecar_transport_t *t, uint64_t id)
{
    size_t pos;
    struct peer *p = peer_find(t, id, &pos);
    if (p == NULL)
        return;
    t->peers[pos] = t->peers[--t->n_peers];
    peer_detach(p);
}

int sidecar_transport_send(sidecar_transport_t *t, const raft_msg_t *m)
{
    struct peer *p = peer_find(t, m->to, NULL);
    if (p == NULL)
        return SIDECAR_TRANSPORT_ENOPEER;
    struct out_conn *c = p->conn;
    if (c == NULL || c->state != OUT_READY) {
        p->st.dropped++;
        return SIDECAR_TRANSPORT_ENOTCONN;
    }
    size_t size = raft_msg_encoded_size(m);
    size_t limit = t->cfg.max_queue_bytes;
    if (c->queued + size > limit) {
        p->st.dropped++;
        return SIDECAR_TRANSPORT_EQUEUEFULL;
    }
    struct wreq *w = malloc(sizeof(*w) + size);
    if (w == NULL) {
        p->st.dropped++;
        return SIDECAR_TRANSPORT_ENOMEM;
    }
    size_t len = 0;
    if (raft_msg_encode(m, w->data, size, &len) != 0) {
        free(w);
        p->st.dropped++;
        return SIDECAR_TRANSPORT_EENCODE;
    }
    w->c = c;
    w->b = uv_buf_init((char *)w->data, (unsigned)len);
    int rv = uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->b, 1, write_cb);
    if (rv != 0) {
        free(w);
        p->st.dropped++;
        out_close(c, "write failed", rv);
        return SIDECAR_TRANSPORT_ENOTCONN;
    }
    c->queued += len;
    p->st.sent++;
    return 0;
}

/* ---- inbound ------------------------------------------------------------------------------ */

static void in_handle_close_cb(uv_handle_t *h)
{
    struct in_conn *c = h->data;
    struct sidecar_transport *t = c->t;
    t->pending--;
    if (--c->open_handles == 0) {
        free(c->buf);
        free(c);
    }
    maybe_finish_close(t);
}

static void in_close(struct in_conn *c)
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

static void in_refuse(struct in_conn *c, int reason, uint64_t from)
{
    struct sidecar_transport *t = c->t;
    t->rejected++;
    SIDECAR_LOG(SIDECAR_LOG_WARN, "refused peer connection", SIDECAR_LOG_UINT("from", from),
                SIDECAR_LOG_STR("reason", refuse_text(reason)));
    uint8_t v[VERDICT_LEN] = {'E', 'L', 'N', 'O', (uint8_t)reason};
    in_write(c, v, sizeof(v));
    in_close(c);
}

static void in_bad_input(struct in_conn *c, const char *why)
{
    c->t->rejected++;
    SIDECAR_LOG(SIDECAR_LOG_WARN, "dropping peer connection", SIDECAR_LOG_UINT("from", c->from),
                SIDECAR_LOG_STR("reason", why));
    in_close(c);
}

static void remember_http(struct sidecar_transport *t, uint64_t id, const char *addr, size_t len)
{
    struct peer_http *slot = NULL;
    size_t cap = sizeof(t->peer_http) / sizeof(t->peer_http[0]);
    for (size_t i = 0; i < cap && slot == NULL; i++)
        if (t->peer_http[i].id == id)
            slot = &t->peer_http[i];
    for (size_t i = 0; i < cap && slot == NULL; i++)
        if (t->peer_http[i].id == 0)
            slot = &t->peer_http[i];
    if (slot == NULL)
        slot = &t->peer_http[id % cap];
    slot->id = id;
    memcpy(slot->addr, addr, len);
    slot->addr[len] = '\0';
    char *space = strchr(slot->addr, ' ');
    if (space == NULL)
        return;
    *space = '\0';
    /* A member we do not know yet (we are joining, and have not applied the configuration
     * that names it): dial it back at the address it advertised, or we could never answer. */
    char host[SIDECAR_TRANSPORT_HOST_MAX];
    uint16_t port;
    if (peer_find(t, id, NULL) != NULL ||
        sidecar_config_hostport_parse(space + 1, host, sizeof(host), &port) != 0)
        return;
    SIDECAR_LOG(SIDECAR_LOG_INFO, "dialling back a peer not yet in our configuration",
                SIDECAR_LOG_UINT("peer", id), SIDECAR_LOG_STR("addr", host),
                SIDECAR_LOG_UINT("port", port));
    sidecar_transport_peer_set(t, id, host, port);
}

const char *sidecar_transport_peer_http(const sidecar_transport_t *t, uint64_t id)
{
    for (size_t i = 0; i < sizeof(t->peer_http) / sizeof(t->peer_http[0]); i++)
        if (t->peer_http[i].id == id && id != 0)
            return t->peer_http[i].addr[0] ? t->peer_http[i].addr : NULL;
    return NULL;
}

static void in_hello(struct in_conn *c)
{
    struct sidecar_transport *t = c->t;
    const uint8_t *h = c->buf;
    if (memcmp(h, "ELHI", 4) != 0) {
        in_bad_input(c, "not an electd handshake");
        return;
    }
    uint64_t cluster = get_u64(h + 6), from = get_u64(h + 14), to = get_u64(h + 22);
    if (get_u16(h + 4) != SIDECAR_TRANSPORT_VERSION) {
        in_refuse(c, REFUSE_VERSION, from);
        return;
    }
    if (cluster != t->cfg.cluster_id) {
        in_refuse(c, REFUSE_CLUSTER, from);
        return;
    }
    if (to != t->cfg.self_id || from == 0 || from == t->cfg.self_id) {
        in_refuse(c, REFUSE_NOT_ME, from);
        return;
    }
    size_t http_len = h[HELLO_LEN];
    uint8_t want[SIDECAR_SHA256_LEN];
    proof(t, c->nonce, from, to, h + HELLO_LEN + 1, http_len, want);
    if (!sidecar_mem_equal(want, h + 30, sizeof(want))) {
        in_refuse(c, REFUSE_TOKEN, from);
        return;
    }
    c->from = from;
    c->state = IN_READY;
    remember_http(t, from, (const char *)h + HELLO_LEN + 1, http_len);
    uv_timer_stop(&c->timer);
    uint8_t ok[VERDICT_LEN] = {'E', 'L', 'O', 'K', 0};
    in_write(c, ok, sizeof(ok));
    size_t used = HELLO_LEN + 1 + http_len;
    c->len -= used;
    memmove(c->buf, c->buf + used, c->len);
}

static void in_frames(struct in_conn *c)
{
    struct sidecar_transport *t = c->t;
    size_t off = 0;
    while (c->state == IN_READY) {
        size_t flen = 0;
        int rv = raft_frame_len(c->buf + off, c->len - off, &flen);
        if (rv == RAFT_ETRUNCATED)
            break;
        if (rv != 0) {
            in_bad_input(c, raft_strerror(rv));
            return;
        }
        if (c->len - off < flen)
            break;
        raft_msg_t m;
        rv = raft_msg_decode(c->buf + off, flen, &m);
        if (rv != 0) {
            in_bad_input(c, raft_strerror(rv));
            return;
        }
        if (m.from != c->from || m.to != t->cfg.self_id) {
            raft_msg_release(&m);
            in_bad_input(c, "message not from the handshaken peer or not for us");
            return;
        }
        t->cfg.recv_cb(t->cfg.ud, &m);
        raft_msg_release(&m);
        off += flen;
    }
    if (off > 0 && c->state == IN_READY) {
        c->len -= off;
        memmove(c->buf, c->buf + off, c->len);
    }
}

static void in_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct in_conn *c = h->data;
    (void)suggested;
    size_t want = c->len + READ_CHUNK;
    size_t limit = RAFT_FRAME_MAX + READ_CHUNK;
    if (want > limit)
        want = limit;
    if (c->cap < want) {
        uint8_t *b = realloc(c->buf, want);
        if (b != NULL) {
            c->buf = b;
            c->cap = want;
        }
    }
    if (c->cap <= c->len) {
        *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS and closes */
        return;
    }
    *buf = uv_buf_init((char *)c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void in_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct in_conn *c = s->data;
    (void)buf;
    if (c->state == IN_CLOSING)
        return;
    if (nread < 0) {
        if (nread == UV_ENOBUFS)
            in_bad_input(c, "out of buffer space");
        else
            in_close(c);
        return;
    }
    c->len += (size_t)nread;
    if (c->state == IN_HANDSHAKE) {
        if (c->len < HELLO_LEN + 1 || c->len < HELLO_LEN + 1 + (size_t)c->buf[HELLO_LEN])
            return;
        in_hello(c);
    }
    if (c->state == IN_READY)
        in_frames(c);
}

static void in_timeout_cb(uv_timer_t *timer)
{
    struct in_conn *c = timer->data;
    in_bad_input(c, "handshake timed out");
}

static void accept_cb(uv_stream_t *server, int status)
{
    struct sidecar_transport *t = server->data;
    if (status != 0 || t->closing)
        return;
    struct in_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
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
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        in_close(c);
        return;
    }
    if (t->n_inbound > t->cfg.max_inbound) {
        t->rejected++;
        SIDECAR_LOG(SIDECAR_LOG_WARN, "refused peer connection",
                    SIDECAR_LOG_STR("reason", "too many inbound connections"));
        in_close(c);
        return;
    }
    fill_random(c->nonce, NONCE_LEN);
    uint8_t ch[CHALLENGE_LEN];
    memcpy(ch, "ELCH", 4);
    put_u16(ch + 4, SIDECAR_TRANSPORT_VERSION);
    memcpy(ch + 6, c->nonce, NONCE_LEN);
    uv_tcp_nodelay(&c->tcp, 1);
    if (in_write(c, ch, sizeof(ch)) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, in_alloc_cb, in_read_cb) != 0) {
        in_close(c);
        return;
    }
    uv_timer_start(&c->timer, in_timeout_cb, t->cfg.handshake_ms, 0);
}

/* ---- life cycle --------------------------------------------------------------------------- */

static void listener_close_cb(uv_handle_t *h)
{
    struct sidecar_transport *t = h->data;
    t->pending--;
    maybe_finish_close(t);
}

int sidecar_transport_start(sidecar_transport_t **out, const sidecar_transport_config_t *cfg,
                            char *errbuf, size_t errlen)
{
    if (cfg->loop == NULL || cfg->self_id == 0 || cfg->recv_cb == NULL || cfg->listen_host == NULL)
        return SIDECAR_TRANSPORT_EINVAL;
    if (cfg->token != NULL && strlen(cfg->token) >= TOKEN_MAX)
        return SIDECAR_TRANSPORT_EINVAL;
    struct sidecar_transport *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return SIDECAR_TRANSPORT_ENOMEM;
    t->cfg = *cfg;
    if (t->cfg.max_queue_bytes == 0)
        t->cfg.max_queue_bytes = SIDECAR_TRANSPORT_QUEUE_BYTES;
    if (t->cfg.max_inbound == 0)
        t->cfg.max_inbound = SIDECAR_TRANSPORT_MAX_INBOUND;
    if (t->cfg.handshake_ms == 0)
        t->cfg.handshake_ms = SIDECAR_TRANSPORT_HANDSHAKE_MS;
    if (cfg->token != NULL) {
        t->token_len = strlen(cfg->token);
        memcpy(t->token, cfg->token, t->token_len);
    }
    t->cfg.token = NULL;
    if (cfg->advertise_http != NULL || cfg->advertise_peer != NULL) {
        /* One authenticated field: "<http address> <peer address>". */
        int n = snprintf(t->http, sizeof(t->http), "%s %s",
                         cfg->advertise_http ? cfg->advertise_http : "",
                         cfg->advertise_peer ? cfg->advertise_peer : "");
        t->http_len = n > 0 ? (size_t)n : 0;
        if (t->http_len > HTTP_ADDR_MAX) {
            free(t);
            return SIDECAR_TRANSPORT_EINVAL;
        }
    }
    t->cfg.advertise_http = NULL;
    t->cfg.advertise_peer = NULL;

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
        uv_close((uv_handle_t *)&t->listener, listener_close_cb);
        return SIDECAR_TRANSPORT_ELISTEN;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(&t->listener, (struct sockaddr *)&bound, &blen);
    t->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    *out = t;
    return 0;
}

uint16_t sidecar_transport_port(const sidecar_transport_t *t)
{
    return t->port;
}

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

void sidecar_transport_close(sidecar_transport_t *t, void (*cb)(void *ud), void *ud)
{
    if (t->closing)
        return;
    t->closing = true;
    t->close_cb = cb;
    t->close_ud = ud;
    while (t->n_peers > 0)
        peer_detach(t->peers[--t->n_peers]);
    while (t->inbound != NULL)
        in_close(t->inbound);
    uv_close((uv_handle_t *)&t->listener, listener_close_cb);
}
