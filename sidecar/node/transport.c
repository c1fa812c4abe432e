/* transport.c — TCP transport between electd nodes: dialling, the cluster handshake, framing
 * and bounded send queues. See transport.h for the protocol. */
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "common.h"

#define CHALLENGE_LEN  22
#define HELLO_LEN      78 /* fixed part; then u8 n and "<name> <http> <peer>" */
#define HELLO_INSTANCE 30
#define HELLO_PROOF    (HELLO_INSTANCE + SIDECAR_TRANSPORT_INSTANCE_LEN)
#define HTTP_ADDR_MAX  255
#define VERDICT_LEN    5
#define NONCE_LEN      16
#define READ_CHUNK     (64u << 10)
#define TOKEN_MAX      257  /* bytes of the cluster token, NUL included */
#define DROP_LOG_MS    1000 /* strangers are logged at most once a second */
#define INSTANCE_LEN   SIDECAR_TRANSPORT_INSTANCE_LEN
#define MAX_PEERS      (RAFT_MAX_MEMBERS * 2)

enum {
    REFUSE_VERSION = 1,
    REFUSE_CLUSTER = 2,
    REFUSE_TOKEN = 3,
    REFUSE_NOT_ME = 4,
    REFUSE_UNKNOWN = 5,
    REFUSE_IMPOSTOR = 6,
};

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
    case REFUSE_UNKNOWN:
        return "not a member of the configuration";
    case REFUSE_IMPOSTOR:
        return "another process (another data directory) already holds this member's name";
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
    char name[SIDECAR_TRANSPORT_NAME_MAX];
    char host[SIDECAR_TRANSPORT_HOST_MAX];
    uint16_t port;
    bool member; /* set by the owner; false: dialled back while joining */
    bool pinned;
    uint8_t pin[INSTANCE_LEN];
    char http[HTTP_ADDR_MAX + 1]; /* advertised in its last admitted HELLO */
    struct addrinfo *addrs;       /* the last resolution; next_ai is the next to try */
    struct addrinfo *next_ai;
    char addr_used[64]; /* the address of the current or last attempt */
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
    char remote[64];
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
    char http[HTTP_ADDR_MAX + 1]; /* "<name> <http> <peer>", sent in HELLO */
    size_t http_len;
    char name[SIDECAR_TRANSPORT_NAME_MAX];
    uint8_t instance[INSTANCE_LEN];
    bool admit_unknown;
    struct gone {
        uint64_t id;
        uint64_t until_ms;    /* loop time */
    } gone[RAFT_MAX_MEMBERS]; /* recently removed members, still heard */
    sidecar_transport_refusal_t refused[SIDECAR_TRANSPORT_REFUSED_MAX];
    uint64_t unknown_dropped;
    uint64_t drop_logged_ms;
    uint64_t drop_suppressed;
    uv_tcp_t listener;
    uint16_t port;
    struct peer *peers[MAX_PEERS];
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
                  uint64_t to, const uint8_t instance[INSTANCE_LEN], const uint8_t *text,
                  size_t text_len, uint8_t out[SIDECAR_SHA256_LEN])
{
    uint8_t msg[NONCE_LEN + 24 + INSTANCE_LEN + 1 + HTTP_ADDR_MAX];
    size_t off = 0;
    memcpy(msg, nonce, NONCE_LEN);
    off += NONCE_LEN;
    put_u64(msg + off, t->cfg.cluster_id);
    put_u64(msg + off + 8, from);
    put_u64(msg + off + 16, to);
    off += 24;
    memcpy(msg + off, instance, INSTANCE_LEN);
    off += INSTANCE_LEN;
    msg[off++] = (uint8_t)text_len;
    memcpy(msg + off, text, text_len);
    sidecar_hmac_sha256(t->token, t->token_len, msg, off + text_len, out);
}

static uint64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void hex_format(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* "ip:port" ("[ip]:port" for IPv6) of a socket address. */
static void sockaddr_format(const struct sockaddr *sa, char *out, size_t len)
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
static void try_next_address(struct peer *p);

static void addrs_release(struct peer *p)
{
    if (p->addrs != NULL)
        uv_freeaddrinfo(p->addrs);
    p->addrs = p->next_ai = NULL;
}

static void peer_free_if_done(struct peer *p)
{
    if (p->removed && !p->timer_open && p->conn == NULL && p->resolving == NULL) {
        addrs_release(p);
        free(p);
    }
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
    addrs_release(p); /* the next dial resolves the name again */
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
        else if (p->next_ai != NULL)
            try_next_address(p); /* this attempt failed before the handshake completed */
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
            p->next_ai = NULL; /* a connection that worked: back off, then resolve again */
            SIDECAR_LOG(SIDECAR_LOG_INFO, "peer disconnected", SIDECAR_LOG_UINT("peer", p->id),
                        SIDECAR_LOG_STR("name", p->name), SIDECAR_LOG_STR("reason", why),
                        SIDECAR_LOG_STR("error", err ? uv_strerror(err) : ""));
        } else {
            p->st.failures++;
            if (p->attempts < 3 || sidecar_log_enabled(SIDECAR_LOG_DEBUG))
                SIDECAR_LOG(p->attempts < 3 ? SIDECAR_LOG_INFO : SIDECAR_LOG_DEBUG,
                            "peer connection failed", SIDECAR_LOG_UINT("peer", p->id),
                            SIDECAR_LOG_STR("name", p->name), SIDECAR_LOG_STR("host", p->host),
                            SIDECAR_LOG_UINT("port", p->port),
                            SIDECAR_LOG_STR("addr", p->addr_used), SIDECAR_LOG_STR("reason", why),
                            SIDECAR_LOG_STR("error", err ? uv_strerror(err) : ""));
        }
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
        out_close(p->conn, "connect or handshake timed out", 0);
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

static int send_hello(struct out_conn *c)
{
    struct sidecar_transport *t = c->t;
    struct peer *p = c->peer;
    uint8_t hello[HELLO_LEN + 1 + HTTP_ADDR_MAX];
    memcpy(hello, "ELHI", 4);
    put_u16(hello + 4, SIDECAR_TRANSPORT_VERSION);
    put_u64(hello + 6, t->cfg.cluster_id);
    put_u64(hello + 14, t->cfg.self_id);
    put_u64(hello + 22, p->id);
    memcpy(hello + HELLO_INSTANCE, t->instance, INSTANCE_LEN);
    proof(t, c->hs + 6, t->cfg.self_id, p->id, t->instance, (const uint8_t *)t->http, t->http_len,
          hello + HELLO_PROOF);
    hello[HELLO_LEN] = (uint8_t)t->http_len;
    memcpy(hello + HELLO_LEN + 1, t->http, t->http_len);
    return write_bytes((uv_stream_t *)&c->tcp, NULL, hello, HELLO_LEN + 1 + t->http_len);
}

static void out_verdict(struct out_conn *c)
{
    struct peer *p = c->peer;
    const uint8_t *v = c->hs + CHALLENGE_LEN;
    if (memcmp(v, "ELOK", 4) == 0) {
        c->state = OUT_READY;
        uv_timer_stop(&p->timer);
        addrs_release(p);
        p->attempts = 0;
        p->st.connected = true;
        p->st.connects++;
        SIDECAR_LOG(SIDECAR_LOG_INFO, "peer connected", SIDECAR_LOG_UINT("peer", p->id),
                    SIDECAR_LOG_STR("name", p->name), SIDECAR_LOG_STR("host", p->host),
                    SIDECAR_LOG_UINT("port", p->port), SIDECAR_LOG_STR("addr", p->addr_used));
        return;
    }
    bool no = memcmp(v, "ELNO", 4) == 0;
    if (no && v[4] == REFUSE_IMPOSTOR)
        SIDECAR_LOG(SIDECAR_LOG_ERROR,
                    "peer refused us: it knows another process (another data directory) under "
                    "our name; if our data directory was replaced, remove this member and add it "
                    "again",
                    SIDECAR_LOG_STR("self", c->t->name), SIDECAR_LOG_STR("peer_name", p->name),
                    SIDECAR_LOG_UINT("peer", p->id), SIDECAR_LOG_STR("addr", p->addr_used));
    else
        SIDECAR_LOG(SIDECAR_LOG_WARN, "peer refused us", SIDECAR_LOG_UINT("peer", p->id),
                    SIDECAR_LOG_STR("name", p->name),
                    SIDECAR_LOG_STR("reason", no ? refuse_text(v[4]) : "garbage"));
    p->next_ai = NULL; /* an electd answered: the other addresses would not change that */
    out_close(c, "refused", 0);
}

static void out_handshake(struct out_conn *c)
{
    if (!c->hello_sent && c->hs_len >= CHALLENGE_LEN) {
        if (memcmp(c->hs, "ELCH", 4) != 0 || get_u16(c->hs + 4) != SIDECAR_TRANSPORT_VERSION) {
            out_close(c, "bad challenge (not an electd peer port, or another version)", 0);
            return;
        }
        int rv = send_hello(c);
        if (rv != 0) {
            out_close(c, "write failed", rv);
            return;
        }
        c->hello_sent = true;
    }
    if (c->hello_sent && c->hs_len == CHALLENGE_LEN + VERDICT_LEN)
        out_verdict(c);
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
    sockaddr_format(ai->ai_addr, p->addr_used, sizeof(p->addr_used));
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
        out_close(c, "connect failed", rv);
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
                        SIDECAR_LOG_STR("name", p->name), SIDECAR_LOG_STR("host", p->host),
                        SIDECAR_LOG_STR("error", uv_strerror(status)));
        uv_freeaddrinfo(res);
        schedule_redial(p);
        return;
    }
    addrs_release(p);
    p->addrs = p->next_ai = res;
    try_next_address(p);
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

static void name_copy(char *dst, const char *src)
{
    snprintf(dst, SIDECAR_TRANSPORT_NAME_MAX, "%s", src ? src : "");
}

static struct peer *peer_add(struct sidecar_transport *t, uint64_t id, const char *name,
                             const char *host, uint16_t port, bool member)
{
    if (t->n_peers == MAX_PEERS)
        return NULL;
    struct peer *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->t = t;
    p->id = id;
    p->st.id = id;
    p->member = member;
    name_copy(p->name, name);
    strcpy(p->host, host);
    p->port = port;
    uv_timer_init(t->cfg.loop, &p->timer);
    p->timer.data = p;
    p->timer_open = true;
    t->pending++;
    t->peers[t->n_peers++] = p;
    dial(p);
    return p;
}

int sidecar_transport_peer_set(sidecar_transport_t *t, uint64_t id, const char *name,
                               const char *host, uint16_t port)
{
    if (t->closing)
        return SIDECAR_TRANSPORT_ECLOSING;
    if (id == 0 || id == t->cfg.self_id || host == NULL ||
        strlen(host) >= SIDECAR_TRANSPORT_HOST_MAX || port == 0)
        return SIDECAR_TRANSPORT_EINVAL;
    for (size_t i = 0; i < sizeof(t->gone) / sizeof(t->gone[0]); i++)
        if (t->gone[i].id == id)
            t->gone[i].id = 0; /* a member again */
    struct peer *p = peer_find(t, id, NULL);
    if (p != NULL) {
        p->member = true;
        if (name != NULL)
            name_copy(p->name, name);
        if (strcmp(p->host, host) == 0 && p->port == port)
            return 0;
        strcpy(p->host, host);
        p->port = port;
        p->next_ai = NULL;
        if (p->conn != NULL)
            out_close(p->conn, "address changed", 0);
        return 0;
    }
    return peer_add(t, id, name, host, port, true) ? 0 : SIDECAR_TRANSPORT_ENOMEM;
}

static void peer_forget(struct sidecar_transport *t, size_t pos)
{
    struct peer *p = t->peers[pos];
    t->peers[pos] = t->peers[--t->n_peers];
    peer_detach(p);
}

void sidecar_transport_peer_remove(sidecar_transport_t *t, uint64_t id)
{
    size_t pos;
    struct peer *p = peer_find(t, id, &pos);
    if (p == NULL)
        return;
    if (p->member) {
        /* Still heard for a while: a leader that removed itself hands over after the removal
         * is in everyone's log. The oldest entry makes room. */
        struct gone *slot = &t->gone[0];
        for (size_t i = 0; i < sizeof(t->gone) / sizeof(t->gone[0]); i++)
            if (t->gone[i].until_ms < slot->until_ms)
                slot = &t->gone[i];
        slot->id = id;
        slot->until_ms = uv_now(t->cfg.loop) + t->cfg.linger_ms;
    }
    peer_forget(t, pos);
}

void sidecar_transport_admit_unknown(sidecar_transport_t *t, bool on)
{
    t->admit_unknown = on;
    if (on)
        return;
    for (size_t i = t->n_peers; i-- > 0;)
        if (!t->peers[i]->member)
            peer_forget(t, i);
}

int sidecar_transport_peer_pin(sidecar_transport_t *t, uint64_t id,
                               const uint8_t instance[SIDECAR_TRANSPORT_INSTANCE_LEN])
{
    struct peer *p = peer_find(t, id, NULL);
    if (p == NULL)
        return SIDECAR_TRANSPORT_ENOPEER;
    memcpy(p->pin, instance, INSTANCE_LEN);
    p->pinned = true;
    return 0;
}

size_t sidecar_transport_pins(const sidecar_transport_t *t, sidecar_transport_pin_t *out,
                              size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_peers && n < cap; i++)
        if (t->peers[i]->member && t->peers[i]->pinned) {
            out[n].id = t->peers[i]->id;
            memcpy(out[n].instance, t->peers[i]->pin, INSTANCE_LEN);
            n++;
        }
    return n;
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
    if (reason != REFUSE_UNKNOWN && reason != REFUSE_IMPOSTOR)
        SIDECAR_LOG(SIDECAR_LOG_WARN, "refused peer connection", SIDECAR_LOG_UINT("from", from),
                    SIDECAR_LOG_STR("remote", c->remote),
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

/* True when frames from id may reach the core: a member, a member removed less than
 * linger_ms ago, or anyone while we are joining. */
static bool admitted(struct sidecar_transport *t, uint64_t id)
{
    const struct peer *p = peer_find(t, id, NULL);
    if (t->admit_unknown || (p != NULL && p->member))
        return true;
    uint64_t now = uv_now(t->cfg.loop);
    for (size_t i = 0; i < sizeof(t->gone) / sizeof(t->gone[0]); i++)
        if (t->gone[i].id == id && now < t->gone[i].until_ms)
            return true;
    return false;
}

/* A stranger's handshake or frame: counted, logged at most once per DROP_LOG_MS. */
static void stranger_dropped(struct in_conn *c, uint64_t from, const char *what)
{
    struct sidecar_transport *t = c->t;
    t->unknown_dropped++;
    uint64_t now = uv_now(t->cfg.loop);
    if (t->drop_logged_ms != 0 && now - t->drop_logged_ms < DROP_LOG_MS) {
        t->drop_suppressed++;
        return;
    }
    SIDECAR_LOG(SIDECAR_LOG_WARN, "dropped a peer that is not a member of the configuration",
                SIDECAR_LOG_UINT("from", from), SIDECAR_LOG_STR("remote", c->remote),
                SIDECAR_LOG_STR("what", what),
                SIDECAR_LOG_UINT("suppressed_since_last", t->drop_suppressed));
    t->drop_logged_ms = now;
    t->drop_suppressed = 0;
}

const char *sidecar_transport_peer_http(const sidecar_transport_t *t, uint64_t id)
{
    const struct peer *p = id != 0 ? peer_find(t, id, NULL) : NULL;
    return p != NULL && p->http[0] ? p->http : NULL;
}

/* The HELLO's text "<name> <http> <peer>", split in place (fields may be empty). */
typedef struct hello_text {
    char buf[HTTP_ADDR_MAX + 1];
    const char *name, *http, *peer;
} hello_text_t;

static void hello_text_split(hello_text_t *h, const uint8_t *text, size_t len)
{
    bool has_nul = memchr(text, '\0', len) != NULL;
    memcpy(h->buf, text, len);
    h->buf[len] = '\0';
    char *sp1 = strchr(h->buf, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    h->name = h->buf;
    h->http = h->peer = "";
    if (sp1 != NULL) {
        *sp1 = '\0';
        h->http = sp1 + 1;
    }
    if (sp2 != NULL) {
        *sp2 = '\0';
        h->peer = sp2 + 1;
    }
    if (has_nul || strlen(h->name) >= SIDECAR_TRANSPORT_NAME_MAX)
        h->name = h->http = h->peer = "";
}

static void record_refusal(struct in_conn *c, uint64_t id, const hello_text_t *h,
                           const uint8_t instance[INSTANCE_LEN])
{
    struct sidecar_transport *t = c->t;
    char inst[2 * INSTANCE_LEN + 1];
    hex_format(instance, INSTANCE_LEN, inst);
    sidecar_transport_refusal_t *r = NULL, *oldest = &t->refused[0];
    for (size_t i = 0; i < SIDECAR_TRANSPORT_REFUSED_MAX && r == NULL; i++) {
        sidecar_transport_refusal_t *x = &t->refused[i];
        if (x->count > 0 && x->id == id && strcmp(x->instance, inst) == 0)
            r = x;
        else if (x->last_unix_ms < oldest->last_unix_ms)
            oldest = x;
    }
    uint64_t now = unix_ms();
    if (r == NULL) {
        r = oldest;
        memset(r, 0, sizeof(*r));
        r->id = id;
        r->first_unix_ms = now;
        memcpy(r->instance, inst, sizeof(inst));
    }
    name_copy(r->name, h->name);
    snprintf(r->remote, sizeof(r->remote), "%s", c->remote);
    snprintf(r->advertised, sizeof(r->advertised), "%s %s", h->http, h->peer);
    r->last_unix_ms = now;
    r->count++;
}

/* Admission and the instance pin of a handshaken peer. Returns 0 or a REFUSE_ reason. */
static int hello_admit(struct in_conn *c, uint64_t from, const uint8_t *instance,
                       const hello_text_t *h)
{
    struct sidecar_transport *t = c->t;
    if (!admitted(t, from)) {
        stranger_dropped(c, from, "handshake");
        return REFUSE_UNKNOWN;
    }
    struct peer *p = peer_find(t, from, NULL);
    char host[SIDECAR_TRANSPORT_HOST_MAX];
    uint16_t port;
    if (p == NULL && t->admit_unknown && t->n_peers < RAFT_MAX_MEMBERS &&
        sidecar_config_hostport_parse(h->peer, host, sizeof(host), &port) == 0) {
        /* We are joining and have not applied the configuration that names this member yet:
         * dial it back at the address it advertised, or we could never answer. */
        SIDECAR_LOG(SIDECAR_LOG_INFO, "dialling back a peer not yet in our configuration",
                    SIDECAR_LOG_UINT("peer", from), SIDECAR_LOG_STR("name", h->name),
                    SIDECAR_LOG_STR("host", host), SIDECAR_LOG_UINT("port", port));
        p = peer_add(t, from, h->name, host, port, false);
    }
    if (p == NULL)
        return 0;
    if (p->pinned && memcmp(p->pin, instance, INSTANCE_LEN) != 0) {
        record_refusal(c, from, h, instance);
        char seen[2 * INSTANCE_LEN + 1], pinned[2 * INSTANCE_LEN + 1];
        hex_format(instance, INSTANCE_LEN, seen);
        hex_format(p->pin, INSTANCE_LEN, pinned);
        SIDECAR_LOG(SIDECAR_LOG_ERROR,
                    "refused a second process under a member's name (another data directory)",
                    SIDECAR_LOG_STR("self", t->name), SIDECAR_LOG_STR("name", h->name),
                    SIDECAR_LOG_STR("member", p->name), SIDECAR_LOG_UINT("id", from),
                    SIDECAR_LOG_STR("remote", c->remote), SIDECAR_LOG_STR("http", h->http),
                    SIDECAR_LOG_STR("peer_addr", h->peer), SIDECAR_LOG_STR("instance", seen),
                    SIDECAR_LOG_STR("pinned_instance", pinned));
        return REFUSE_IMPOSTOR;
    }
    if (!p->pinned) {
        memcpy(p->pin, instance, INSTANCE_LEN);
        p->pinned = true;
        if (p->member && t->cfg.pinned_cb != NULL)
            t->cfg.pinned_cb(t->cfg.ud);
    }
    snprintf(p->http, sizeof(p->http), "%s", h->http);
    return 0;
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
    size_t text_len = h[HELLO_LEN];
    const uint8_t *instance = h + HELLO_INSTANCE;
    uint8_t want[SIDECAR_SHA256_LEN];
    proof(t, c->nonce, from, to, instance, h + HELLO_LEN + 1, text_len, want);
    if (!sidecar_mem_equal(want, h + HELLO_PROOF, sizeof(want))) {
        in_refuse(c, REFUSE_TOKEN, from);
        return;
    }
    hello_text_t text;
    hello_text_split(&text, h + HELLO_LEN + 1, text_len);
    int reason = hello_admit(c, from, instance, &text);
    if (reason != 0) {
        in_refuse(c, reason, from);
        return;
    }
    c->from = from;
    c->state = IN_READY;
    uv_timer_stop(&c->timer);
    uint8_t ok[VERDICT_LEN] = {'E', 'L', 'O', 'K', 0};
    in_write(c, ok, sizeof(ok));
    size_t used = HELLO_LEN + 1 + text_len;
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
        if (!admitted(t, c->from)) {
            /* Removed from the configuration since the handshake. */
            raft_msg_release(&m);
            stranger_dropped(c, c->from, "frame");
            t->rejected++;
            in_close(c);
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
    struct sockaddr_storage remote;
    int rlen = sizeof(remote);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&remote, &rlen) == 0)
        sockaddr_format((struct sockaddr *)&remote, c->remote, sizeof(c->remote));
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
    if (t->cfg.linger_ms == 0)
        t->cfg.linger_ms = SIDECAR_TRANSPORT_LINGER_MS;
    name_copy(t->name, cfg->name);
    if (cfg->instance != NULL)
        memcpy(t->instance, cfg->instance, INSTANCE_LEN);
    t->cfg.name = NULL;
    t->cfg.instance = NULL;
    if (cfg->token != NULL) {
        t->token_len = strlen(cfg->token);
        memcpy(t->token, cfg->token, t->token_len);
    }
    t->cfg.token = NULL;
    {
        /* One authenticated field: "<name> <http address> <peer address>". */
        int n = snprintf(t->http, sizeof(t->http), "%s %s %s", t->name,
                         cfg->advertise_http ? cfg->advertise_http : "",
                         cfg->advertise_peer ? cfg->advertise_peer : "");
        t->http_len = n > 0 ? (size_t)n : 0;
        if (t->http_len > HTTP_ADDR_MAX || strchr(t->name, ' ') != NULL) {
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
