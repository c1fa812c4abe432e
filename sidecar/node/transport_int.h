/* transport_int.h — private to the peer transport's files (transport*.c): its state and what
 * they call of one another. transport.h is the transport's interface; docs/wire-format.md and
 * transport.h describe the handshake these offsets belong to.
 *
 *   transport.c            life cycle (start, close), counters, shared helpers
 *   transport_peers.c      the peer table: members, pins, admission of senders
 *   transport_dial.c       outbound connections: resolve, try each address, back off
 *   transport_inbound.c    the listener and inbound connections
 *   transport_handshake.c  CHALLENGE / HELLO / VERDICT: proof, instance ids, refusals
 *   transport_frames.c     framing and the bounded send queues, plain or through TLS
 *   transport_tls.c        peer TLS: the contexts, decrypting what arrives, the refusals
 *   transport_notice.c     the released-lease notice: electd's kit, the shim's sender
 */
#ifndef ELECTD_SIDECAR_TRANSPORT_INT_H
#define ELECTD_SIDECAR_TRANSPORT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common.h"
#include "tls.h"
#include "transport.h"

#define CHALLENGE_LEN  22
#define HELLO_LEN      78 /* fixed part; then u8 n and "<name> <http> <peer>" */
#define HELLO_INSTANCE 30
#define HELLO_PROOF    (HELLO_INSTANCE + SIDECAR_TRANSPORT_INSTANCE_LEN)
#define HTTP_ADDR_MAX  255
#define HELLO_MAX      (HELLO_LEN + 1 + HTTP_ADDR_MAX)
#define VERDICT_LEN    5
#define NONCE_LEN      16
#define READ_CHUNK     (64u << 10)
#define TOKEN_MAX      257  /* bytes of the cluster token, NUL included */
#define DROP_LOG_MS    1000 /* strangers are logged at most once a second */
#define INSTANCE_LEN   SIDECAR_TRANSPORT_INSTANCE_LEN
#define MAX_PEERS      (RAFT_MAX_MEMBERS * 2)

/* The reason byte of an "ELNO" verdict. */
enum {
    REFUSE_VERSION = 1,
    REFUSE_CLUSTER = 2,
    REFUSE_TOKEN = 3,
    REFUSE_NOT_ME = 4,
    REFUSE_UNKNOWN = 5,
    REFUSE_IMPOSTOR = 6,
    REFUSE_CERT_NAME = 7, /* peer TLS: the certificate does not name the member it claims */
};

struct out_conn;

/* A peer we dial: a member, or (while joining) one that dialled us. */
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
    uv_timer_t timer; /* backoff before redialling; the deadline of an attempt */
    bool timer_open;
    uint32_t attempts;
    struct out_conn *conn; /* current connection, NULL when none */
    uv_getaddrinfo_t *resolving;
    sidecar_transport_peer_stats_t st;
};

enum { OUT_CONNECTING, OUT_HANDSHAKE, OUT_READY, OUT_CLOSING };

/* Our connection to a peer: we only send on it. */
struct out_conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    struct peer *peer; /* NULL once the peer has forgotten this connection */
    struct sidecar_transport *t;
    int state;
    uint8_t hs[CHALLENGE_LEN + VERDICT_LEN];
    size_t hs_len;
    bool hello_sent;
    size_t queued;      /* bytes written and not yet completed */
    tls_session_t *tls; /* peer TLS: the session (client side), NULL on plain TCP */
    bool tls_checked;   /* the server's certificate was checked against the peer's name */
};

enum { IN_HANDSHAKE, IN_READY, IN_CLOSING };

/* A peer's connection to us: we only read from it (and write the challenge and verdict). */
struct in_conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* the handshake deadline */
    struct sidecar_transport *t;
    struct in_conn *next, *prev;
    int state;
    int open_handles;
    uint8_t nonce[NONCE_LEN];
    uint64_t from;
    char remote[64];
    uint8_t *buf;
    size_t len, cap;
    tls_session_t *tls; /* peer TLS: the session (server side), NULL on plain TCP */
    bool challenged;    /* the challenge was sent (under TLS: once the session is up) */
    bool drain;         /* sidecar_transport_drain: chosen before any is read */
};

struct sidecar_transport {
    sidecar_transport_config_t cfg; /* strings copied below, their pointers cleared */
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
    tls_ctx_t *tls_server, *tls_client; /* peer TLS: both NULL on plain TCP */
    char *kit_path;                     /* the notice kit (transport_notice.c); NULL: none */
    char *kit_tls;                      /* its peer TLS lines */
    uint8_t *tls_buf;                   /* READ_CHUNK bytes: ciphertext as it is read */
    uint64_t tls_refused;
    uint64_t tls_logged_ms;
    uint64_t tls_suppressed;
    bool closing;
    int pending; /* open handles and requests; the transport is freed when it drops to 0 */
    void (*close_cb)(void *);
    void *close_ud;
};

/* ---- transport.c ---- */

/* Frees t and calls its close callback once it is closing and nothing is pending. */
void transport_maybe_finish_close(struct sidecar_transport *t);
/* Random bytes; without entropy yet (early boot) unique ones, not secret. */
void transport_random_fill(uint8_t *buf, size_t len);
/* "ip:port" ("[ip]:port" for IPv6) of a socket address. */
void transport_sockaddr_format(const struct sockaddr *sa, char *out, size_t len);
/* A member name, truncated to SIDECAR_TRANSPORT_NAME_MAX; NULL is "". */
void transport_name_copy(char *dst, const char *src);

/* ---- transport_peers.c ---- */

struct peer *transport_peer_find(const struct sidecar_transport *t, uint64_t id, size_t *pos);
/* Adds a peer and dials it; NULL when the table is full or memory runs out. */
struct peer *transport_peer_add(struct sidecar_transport *t, uint64_t id, const char *name,
                                const char *host, uint16_t port, bool member);
/* Marks p removed and closes what it holds; p is freed once all of it has closed. */
void transport_peer_detach(struct peer *p);
void transport_peer_free_if_done(struct peer *p);
/* True when frames from id may reach the core: a member, a member removed less than
 * linger_ms ago, or anyone while we are joining. */
bool transport_admitted(const struct sidecar_transport *t, uint64_t id);
/* A stranger's handshake or frame: counted, logged at most once per DROP_LOG_MS. name: the
 * name its HELLO claims ("" for a frame). */
void transport_stranger_dropped(struct in_conn *c, uint64_t from, const char *name,
                                const char *what);

/* ---- transport_dial.c ---- */

/* Resolves p's host and connects to its addresses in turn (nothing when already under way). */
void transport_dial(struct peer *p);
void transport_addrs_free(struct peer *p);
/* Closes an outbound connection; the peer then tries its next address or backs off. */
void transport_out_close(struct out_conn *c, const char *why, int err);

/* ---- transport_inbound.c ---- */

/* Binds and listens on cfg's address. On failure errbuf gets the reason, t is marked closing
 * and freed once the listener's close completes (on the caller's next loop turn), and
 * SIDECAR_TRANSPORT_ELISTEN is returned. */
int transport_listen(struct sidecar_transport *t, char *errbuf, size_t errlen);
/* Closes the listener; its close callback may free t (transport_maybe_finish_close). */
void transport_listener_close(struct sidecar_transport *t);
void transport_in_close(struct in_conn *c);
/* Counts and logs the reason, then closes c. */
void transport_in_bad_input(struct in_conn *c, const char *why);
/* Writes the challenge or the verdict (at most CHALLENGE_LEN bytes). */
int transport_in_write(struct in_conn *c, const void *data, size_t len);
/* Room for more plaintext in c->buf: grows it by up to READ_CHUNK, never past one whole
 * frame and a chunk. Returns the room (0: the buffer cannot grow). */
size_t transport_in_reserve(struct in_conn *c);
/* Acts on the plaintext in c->buf: the HELLO once complete, then frames. */
void transport_in_process(struct in_conn *c);

/* ---- transport_handshake.c ---- */

/* What a HELLO says of its sender; everything borrowed. */
typedef struct transport_hello {
    uint64_t cluster_id, from;
    const uint8_t *instance; /* INSTANCE_LEN bytes */
    const char *token;       /* the cluster token, token_len bytes (0: none) */
    size_t token_len;
    const char *text; /* "<name> <http> <peer>", text_len <= HTTP_ADDR_MAX bytes */
    size_t text_len;
} transport_hello_t;

/* Client: the HELLO answering the CHALLENGE's nonce, addressed to member `to`, with its proof
 * (transport.h); returns its length. The daemon's dialler and the shim's released-lease
 * notice (transport_notice.c) both speak through it. */
size_t transport_hello_build(uint8_t out[HELLO_MAX], const transport_hello_t *h,
                             const uint8_t nonce[NONCE_LEN], uint64_t to);

/* Server: sends a fresh CHALLENGE on a new inbound connection. */
int transport_challenge_send(struct in_conn *c);
/* Server: checks a complete HELLO in c->buf; admits (ELOK) or refuses (ELNO) and closes. */
void transport_hello_check(struct in_conn *c);
/* The text of an "ELNO" reason. */
const char *transport_refuse_text(int reason);
/* Client: more handshake bytes arrived in c->hs; answers the challenge, reads the verdict. */
void transport_out_handshake(struct out_conn *c);

/* ---- transport_frames.c ---- */

/* Queues data on s: a copy, or with tls (not NULL) its encryption, and any handshake output
 * the session had waiting; counted in c->queued when c is not NULL. 0 or a libuv error
 * (UV_EPROTO when the session refuses). */
int transport_write(uv_stream_t *s, tls_session_t *tls, struct out_conn *c, const void *data,
                    size_t len);
/* Queues whatever ciphertext tls has waiting (handshake messages, alerts). */
int transport_tls_flush(uv_stream_t *s, tls_session_t *tls);
/* Decodes the whole frames in c->buf and hands them to the owner. */
void transport_frames_deliver(struct in_conn *c);

/* ---- transport_tls.c ---- */

/* Opens the server and client contexts from cfg's three files (nothing when they are
 * NULL) and registers them for reload on SIGHUP. SIDECAR_TRANSPORT_ETLS with the reason in
 * errbuf. */
int transport_tls_open(struct sidecar_transport *t, const sidecar_transport_config_t *cfg,
                       char *errbuf, size_t errlen);
void transport_tls_close(struct sidecar_transport *t);
/* A session for a new connection: server side (inbound) or client side (outbound, whose
 * ClientHello is then queued). 0 or a SIDECAR_TRANSPORT_E code. */
int transport_tls_in_start(struct in_conn *c);
int transport_tls_out_start(struct out_conn *c);
/* Ciphertext read from an inbound (outbound) connection: decrypted into the handshake and
 * frame handling; a TLS failure refuses and closes the connection. */
void transport_tls_in_read(struct in_conn *c, const uint8_t *data, size_t len);
void transport_tls_out_read(struct out_conn *c, const uint8_t *data, size_t len);
/* Server side, with a HELLO that passed its checks: does the client's certificate name the
 * member it claims to be (`name`, whose id must be `from`)? 0 or REFUSE_CERT_NAME (logged). */
int transport_tls_hello_name(struct in_conn *c, uint64_t from, const char *name);
/* An inbound connection in its handshake ended (timeout, EOF): logs why in TLS terms. */
void transport_tls_in_ended(struct in_conn *c, const char *why);

/* ---- transport_notice.c ---- */

/* Keeps cfg's notice kit path and peer TLS files (nothing without a path). 0 or
 * SIDECAR_TRANSPORT_ENOMEM, _EINVAL (a file name with a newline). */
int transport_notice_open(struct sidecar_transport *t, const sidecar_transport_config_t *cfg);
void transport_notice_close(struct sidecar_transport *t);
/* Rewrites the kit with the members in force (logged when it cannot). */
void transport_notice_save(struct sidecar_transport *t);

#endif
