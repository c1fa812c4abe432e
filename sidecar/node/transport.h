/* transport.h — peer transport: Raft messages between electd nodes over TCP on libuv.
 *
 * Each node keeps one outbound connection to every peer it knows and sends only on it; it
 * accepts inbound connections on --listen-peer and only reads from them. Every connection
 * starts with a handshake (below) that admits only nodes of the same cluster holding the
 * same --cluster-token; after it, the stream carries raft/codec frames.
 *
 * Handshake (all integers little-endian; docs/wire-format.md has the same tables):
 *
 *   server -> client  CHALLENGE  "ELCH" u16 version  u8[16] nonce                (22 bytes)
 *   client -> server  HELLO      "ELHI" u16 version  u64 cluster_id  u64 from  u64 to
 *                                u8[16] instance  u8[32] proof  u8 n
 *                                u8[n] "<name> <HTTP address> <peer address>"  (79 + n bytes)
 *   server -> client  VERDICT    "ELOK" u8 0 | "ELNO" u8 reason                   (5 bytes)
 *
 * proof = HMAC-SHA256(cluster token, nonce || cluster_id || from || to || instance || n ||
 * text). With no token configured the key is empty: the proof then only shows the bytes
 * were not corrupted, and anyone who can reach the peer port can complete the handshake. A
 * node with a token refuses one without. The nonce is fresh per connection, so a recorded
 * handshake cannot be replayed.
 *
 * Admission. A handshake, and every frame after it, is accepted only from a member of the
 * configuration (the peers set with sidecar_transport_peer_set), from a member removed less
 * than linger_ms ago (so a leader that removed itself can still hand over), or from anyone
 * while this node is joining (sidecar_transport_admit_unknown). Everything else is refused
 * and counted (sidecar_transport_unknown_dropped); nothing a stranger sends is stored.
 *
 * Instance ids. Each data directory has a random 128-bit instance id, carried in HELLO. The
 * first instance id seen from a member is pinned (the owner persists the pins); a later HELLO
 * from the same member id with another instance id is a second process under that member's
 * name: refused with REFUSE_IMPOSTOR, logged on both sides and listed by
 * sidecar_transport_refused.
 *
 * Peer TLS. With tls_cert_file/tls_key_file/tls_ca_file every connection is TLS 1.3 first,
 * mutual: the dialling member is the TLS client, both present a certificate that must chain
 * to tls_ca_file, and with tls_check_name each end checks that the other's certificate names
 * the member it is (CN or DNS SAN equal to its name: the dialler checks the member it dialled,
 * the listener the name and id of the HELLO). The handshake above then runs inside the TLS
 * stream, the cluster token still checked when set, all of it under the handshake deadline.
 * Refusals are logged on both sides with the address and OpenSSL's reason, and counted
 * (sidecar_transport_tls_refused). A plain-TCP peer gets nothing: a TLS listener speaks only
 * after the client's TLS handshake, and a TLS dialler refuses a plaintext CHALLENGE.
 *
 * Delivery is best effort, as Raft expects: a message to a peer that is not connected, or
 * whose send queue is full, is dropped and counted; Raft retransmits. Disconnected peers are
 * redialled with exponential backoff and jitter, resolving the host name again each time
 * (Kubernetes pod addresses change).
 */
#ifndef ELECTD_SIDECAR_TRANSPORT_H
#define ELECTD_SIDECAR_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "node.h"
#include "raft.h"

#define SIDECAR_TRANSPORT_VERSION        2 /* 2: HELLO carries the name and the instance id */
#define SIDECAR_TRANSPORT_QUEUE_BYTES    (32u << 20) /* default outbound bytes per peer */
#define SIDECAR_TRANSPORT_MAX_INBOUND    64          /* default inbound connections */
#define SIDECAR_TRANSPORT_HANDSHAKE_MS   5000        /* default handshake deadline */
#define SIDECAR_TRANSPORT_BACKOFF_MIN_MS 50
#define SIDECAR_TRANSPORT_BACKOFF_MAX_MS 2000
#define SIDECAR_TRANSPORT_LINGER_MS      10000 /* default: a removed member is heard this long */

#define SIDECAR_TRANSPORT_ERRNO_MAP(X)                                                             \
    X(NOMEM, -1, "out of memory")                                                                  \
    X(INVAL, -2, "invalid argument")                                                               \
    X(NOPEER, -3, "no such peer")                                                                  \
    X(NOTCONN, -4, "peer not connected")                                                           \
    X(QUEUEFULL, -5, "peer send queue full")                                                       \
    X(ENCODE, -6, "message does not encode")                                                       \
    X(LISTEN, -7, "cannot listen on the peer address")                                             \
    X(CLOSING, -8, "transport is closing")                                                         \
    X(TLS, -9, "peer TLS cannot be set up")

enum {
#define SIDECAR_TRANSPORT_ERR_ENUM(name, code, text) SIDECAR_TRANSPORT_E##name = code,
    SIDECAR_TRANSPORT_ERRNO_MAP(SIDECAR_TRANSPORT_ERR_ENUM)
#undef SIDECAR_TRANSPORT_ERR_ENUM
};

const char *sidecar_transport_strerror(int err);

/* A decoded message from a peer. m and everything it points to is borrowed for the call. */
typedef void (*sidecar_transport_recv_cb)(void *ud, const raft_msg_t *m);

typedef struct sidecar_transport_config {
    uv_loop_t *loop;
    uint64_t self_id;
    const char *name;        /* our member name, sent in HELLO for the other side's logs; copied */
    const uint8_t *instance; /* SIDECAR_TRANSPORT_INSTANCE_LEN bytes, this data dir's id;
                                copied; NULL = all zero (tests) */
    uint64_t cluster_id;
    const char *token;          /* shared secret; NULL or "" = none. Copied. */
    const char *advertise_http; /* our HTTP address, told to peers we dial; NULL = none */
    const char *advertise_peer; /* where peers can dial us; NULL = none. A peer that does not
                                   know us yet (it is joining) dials back there. Both copied;
                                   together at most 254 bytes. */
    const char *listen_host;    /* e.g. "127.0.0.1", "0.0.0.0", "::" */
    uint16_t listen_port;       /* 0 = any (tests) */
    size_t max_queue_bytes;     /* 0 = SIDECAR_TRANSPORT_QUEUE_BYTES */
    uint32_t max_inbound;       /* 0 = SIDECAR_TRANSPORT_MAX_INBOUND */
    uint32_t handshake_ms;      /* 0 = SIDECAR_TRANSPORT_HANDSHAKE_MS; also bounds each
                                   outbound connect + handshake, per address */
    uint32_t linger_ms;         /* 0 = SIDECAR_TRANSPORT_LINGER_MS */
    /* Peer TLS (transport.h's top: "Peer TLS"): the three PEM files, or all NULL for plain
     * TCP. Read at open (and again on SIGHUP, through sidecar_reload_register); the strings
     * need not outlive the open. */
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_ca_file;
    bool tls_check_name; /* a peer's certificate must name it (its CN or a DNS SAN) */
    /* Where to keep the notice kit (node.h, SIDECAR_NOTICE_KIT), rewritten at every change of
     * the members; NULL = none (tests). Copied. */
    const char *notice_kit_path;
    sidecar_transport_recv_cb recv_cb;
    /* A member's instance id was pinned for the first time: the owner persists the pins
     * (sidecar_transport_pins) so that a restart keeps refusing impostors. May be NULL. */
    void (*pinned_cb)(void *ud);
    void *ud;
} sidecar_transport_config_t;

/* Binds and listens. On success *out is set. Errors: SIDECAR_TRANSPORT_ELISTEN (with the
 * libuv reason in errbuf), _EINVAL, _ENOMEM. */
int sidecar_transport_open(sidecar_transport_t **out, const sidecar_transport_config_t *cfg,
                           char *errbuf, size_t errlen);

/* The port actually bound (useful with listen_port 0). */
uint16_t sidecar_transport_port(const sidecar_transport_t *t);

/* Adds a member or changes its address (reconnecting if it changed). name (may be NULL) and
 * host are copied. Frames from members are admitted. Host names are resolved at every dial
 * and every address is tried in order before backing off. */
int sidecar_transport_peer_set(sidecar_transport_t *t, uint64_t id, const char *name,
                               const char *host, uint16_t port);
/* Forgets a member (and its pinned instance id); its frames are still admitted for
 * linger_ms. */
void sidecar_transport_peer_remove(sidecar_transport_t *t, uint64_t id);

/* While on (a joining node that has no configuration yet), any peer that passes the
 * handshake is admitted and dialled back at the address it advertised (at most
 * RAFT_MAX_MEMBERS of them). Turning it off forgets those that are not members. */
void sidecar_transport_admit_unknown(sidecar_transport_t *t, bool on);

typedef struct sidecar_transport_pin {
    uint64_t id;
    uint8_t instance[SIDECAR_TRANSPORT_INSTANCE_LEN];
} sidecar_transport_pin_t;

/* Pins a member's instance id (from the owner's persisted pins). _ENOPEER if id is not a
 * peer. */
int sidecar_transport_peer_pin(sidecar_transport_t *t, uint64_t id,
                               const uint8_t instance[SIDECAR_TRANSPORT_INSTANCE_LEN]);
/* The members' pinned instance ids; returns the number written. */
size_t sidecar_transport_pins(const sidecar_transport_t *t, sidecar_transport_pin_t *out,
                              size_t cap);

/* Encodes m and queues it on m->to's connection. Returns 0, or a negative code when the
 * message was dropped (no such peer, not connected, queue full). m is not kept. */
int sidecar_transport_send(sidecar_transport_t *t, const raft_msg_t *m);

/* hold true: the members' connections no longer wake the loop for the little they send (a
 * few KiB may wait in the kernel; their end, an error or more than that still wake it);
 * sidecar_transport_drain reads them. hold false: they wake it again, at once if something
 * waits. A quiet leader holds them between its heartbeat rounds and drains them at each round,
 * so that the echoes of a round wake it once, with the next round (node_batch.c). Connections
 * still in their handshake are never held. */
void sidecar_transport_hold_reads(sidecar_transport_t *t, bool hold);
/* Reads, now, what waits on the connections of the members for which want(ud, id) is true
 * (every member's when want is NULL), and delivers it as usual. */
void sidecar_transport_drain(sidecar_transport_t *t, bool (*want)(void *ud, uint64_t id), void *ud);

/* The HTTP address a member advertised when it last dialled us (borrowed), or NULL. This is
 * how a follower can tell clients where the leader's API is. Only admitted members that are
 * not refused as impostors can set it. */
const char *sidecar_transport_peer_http(const sidecar_transport_t *t, uint64_t id);

/* Closes every connection and the listener; cb(ud) runs once all handles are closed and t
 * is freed. */
void sidecar_transport_close(sidecar_transport_t *t, void (*cb)(void *ud), void *ud);

#endif
