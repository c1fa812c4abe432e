/* transport.h — peer transport: Raft messages between electd nodes over TCP on libuv.
 *
 * Each node keeps one outbound connection to every peer it knows and sends only on it; it
 * accepts inbound connections on --listen-peer and only reads from them. Every connection
 * starts with a handshake (below) that admits only nodes of the same cluster holding the
 * same --cluster-token; after it, the stream carries raft/codec frames.
 *
 * Handshake (all integers little-endian):
 *
 *   server -> client  CHALLENGE  "ELCH" u16 version  u8[16] nonce                (22 bytes)
 *   client -> server  HELLO      "ELHI" u16 version  u64 cluster_id  u64 from  u64 to
 *                                u8[32] proof  u8 n  u8[n] "<HTTP address> <peer address>"
 *                                                                           (63 + n bytes)
 *   server -> client  VERDICT    "ELOK" u8 0 | "ELNO" u8 reason                   (5 bytes)
 *
 * proof = HMAC-SHA256(cluster token, nonce || cluster_id || from || to || n || address) —
 * with no token
 * configured, the key is empty; a node with a token therefore refuses one without. The
 * nonce is fresh per connection, so a recorded handshake cannot be replayed.
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

#include "raft.h"

#define SIDECAR_TRANSPORT_VERSION        1
#define SIDECAR_TRANSPORT_QUEUE_BYTES    (32u << 20) /* default outbound bytes per peer */
#define SIDECAR_TRANSPORT_MAX_INBOUND    64          /* default inbound connections */
#define SIDECAR_TRANSPORT_HANDSHAKE_MS   5000        /* default handshake deadline */
#define SIDECAR_TRANSPORT_BACKOFF_MIN_MS 50
#define SIDECAR_TRANSPORT_BACKOFF_MAX_MS 2000
#define SIDECAR_TRANSPORT_HOST_MAX       256

#define SIDECAR_TRANSPORT_ERRNO_MAP(X)                                                             \
    X(NOMEM, -1, "out of memory")                                                                  \
    X(INVAL, -2, "invalid argument")                                                               \
    X(NOPEER, -3, "no such peer")                                                                  \
    X(NOTCONN, -4, "peer not connected")                                                           \
    X(QUEUEFULL, -5, "peer send queue full")                                                       \
    X(ENCODE, -6, "message does not encode")                                                       \
    X(LISTEN, -7, "cannot listen on the peer address")                                             \
    X(CLOSING, -8, "transport is closing")

enum {
#define SIDECAR_TRANSPORT_ERR_ENUM(name, code, text) SIDECAR_TRANSPORT_E##name = code,
    SIDECAR_TRANSPORT_ERRNO_MAP(SIDECAR_TRANSPORT_ERR_ENUM)
#undef SIDECAR_TRANSPORT_ERR_ENUM
};

const char *sidecar_transport_strerror(int err);

typedef struct sidecar_transport sidecar_transport_t;

/* A decoded message from a peer. m and everything it points to is borrowed for the call. */
typedef void (*sidecar_transport_recv_cb)(void *ud, const raft_msg_t *m);

typedef struct sidecar_transport_config {
    uv_loop_t *loop;
    uint64_t self_id;
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
    uint32_t handshake_ms;      /* 0 = SIDECAR_TRANSPORT_HANDSHAKE_MS */
    sidecar_transport_recv_cb recv_cb;
    void *ud;
} sidecar_transport_config_t;

/* Binds and listens. On success *out is set. Errors: SIDECAR_TRANSPORT_ELISTEN (with the
 * libuv reason in errbuf), _EINVAL, _ENOMEM. */
int sidecar_transport_start(sidecar_transport_t **out, const sidecar_transport_config_t *cfg,
                            char *errbuf, size_t errlen);

/* The port actually bound (useful with listen_port 0). */
uint16_t sidecar_transport_port(const sidecar_transport_t *t);

/* Adds a peer or changes its address (reconnecting if it changed). host is copied. */
int sidecar_transport_peer_set(sidecar_transport_t *t, uint64_t id, const char *host,
                               uint16_t port);
void sidecar_transport_peer_remove(sidecar_transport_t *t, uint64_t id);

/* Encodes m and queues it on m->to's connection. Returns 0, or a negative code when the
 * message was dropped (no such peer, not connected, queue full). m is not kept. */
int sidecar_transport_send(sidecar_transport_t *t, const raft_msg_t *m);

typedef struct sidecar_transport_peer_stats {
    uint64_t id;
    bool connected;      /* outbound connection handshaken */
    uint64_t sent;       /* frames written */
    uint64_t dropped;    /* frames dropped (not connected / queue full) */
    uint64_t connects;   /* successful handshakes */
    uint64_t failures;   /* failed dials or handshakes */
    size_t queued_bytes; /* bytes waiting in the kernel-bound queue */
} sidecar_transport_peer_stats_t;

/* One row per peer; returns the number written. */
size_t sidecar_transport_stats(const sidecar_transport_t *t, sidecar_transport_peer_stats_t *out,
                               size_t cap);

/* The HTTP address a peer advertised when it last dialled us (borrowed), or NULL. This is
 * how a follower can tell clients where the leader's API is. */
const char *sidecar_transport_peer_http(const sidecar_transport_t *t, uint64_t id);

/* Inbound frames refused or connections dropped for bad input (handshake failures, frames
 * that do not decode) since start. */
uint64_t sidecar_transport_rejected(const sidecar_transport_t *t);

/* Closes every connection and the listener; cb(ud) runs once all handles are closed and t
 * is freed. */
void sidecar_transport_close(sidecar_transport_t *t, void (*cb)(void *ud), void *ud);

#endif
