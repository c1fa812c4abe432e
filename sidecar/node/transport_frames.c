/* transport_frames.c — raft/codec frames on the wire: encoding a message onto a peer's
 * bounded send queue (dropped and counted when it is full or the peer not connected; Raft
 * retransmits), encrypted first under peer TLS, and decoding the frames of an inbound
 * connection for the owner. */
#include <stdlib.h>
#include <string.h>

#include "transport_int.h"

/* A write in flight: the bytes live until its callback. */
struct wreq {
    uv_write_t req;
    struct out_conn *c; /* NULL: not counted in a queue (the HELLO) */
    uv_buf_t b;
    uint8_t data[];
};

static void write_cb(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    (void)status; /* a failed write shows up as a read error / EOF and closes the conn */
    if (w->c != NULL)
        w->c->queued -= w->b.len;
    free(w);
}

/* Starts w's write of len bytes on s and counts them in c's queue; frees w on failure. With
 * nothing queued on s the bytes are written at once, and only what the socket did not take
 * is queued: a write request costs libuv a pass of its pending queue and an epoll_ctl() once
 * it completes, which an idle member would pay for every heartbeat. */
static int wreq_start(struct wreq *w, uv_stream_t *s, struct out_conn *c, size_t len)
{
    w->c = c;
    size_t done = 0;
    if (uv_stream_get_write_queue_size(s) == 0) {
        uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
        int n = uv_try_write(s, &b, 1);
        done = n > 0 ? (size_t)n : 0; /* an error: left to uv_write, which reports it */
    }
    if (done == len) {
        free(w);
        return 0;
    }
    w->b = uv_buf_init((char *)w->data + done, (unsigned)(len - done));
    len -= done;
    int rv = uv_write(&w->req, s, &w->b, 1, write_cb);
    if (rv != 0) {
        free(w);
        return rv;
    }
    if (c != NULL)
        c->queued += len;
    return 0;
}

#define TLS_CHUNK    16384 /* plaintext per tls_session_write: one record */
#define TLS_OVERHEAD 64    /* ciphertext a record adds, with room to spare (22 in TLS 1.3) */

/* Moves the session's waiting ciphertext to the end of *w (len bytes used so far), growing
 * it as needed. 0 or UV_ENOMEM (*w is then freed). */
static int take_ciphertext(tls_session_t *tls, struct wreq **w, size_t *cap, size_t *len)
{
    size_t pending = tls_session_out_pending(tls);
    if (*len + pending > *cap) {
        struct wreq *bigger = realloc(*w, sizeof(**w) + *len + pending);
        if (bigger == NULL) {
            free(*w);
            *w = NULL;
            return UV_ENOMEM;
        }
        *w = bigger;
        *cap = *len + pending;
    }
    *len += tls_session_out_read(tls, (*w)->data + *len, *cap - *len);
    return 0;
}

/* A new write request holding the encryption of data (and what the session had waiting),
 * in records of TLS_CHUNK; NULL with *err set. */
static struct wreq *encrypt(tls_session_t *tls, const uint8_t *data, size_t len, size_t *out_len,
                            int *err)
{
    size_t cap = len + (len / TLS_CHUNK + 1) * TLS_OVERHEAD, used = 0;
    struct wreq *w = malloc(sizeof(*w) + cap);
    *err = w == NULL ? UV_ENOMEM : take_ciphertext(tls, &w, &cap, &used);
    for (size_t off = 0; *err == 0 && off < len; off += TLS_CHUNK) {
        size_t n = len - off < TLS_CHUNK ? len - off : TLS_CHUNK;
        if (tls_session_write(tls, data + off, n) != 0) {
            free(w);
            *err = UV_EPROTO;
            return NULL;
        }
        *err = take_ciphertext(tls, &w, &cap, &used);
    }
    if (*err != 0)
        return NULL;
    *out_len = used;
    return w;
}

int transport_write(uv_stream_t *s, tls_session_t *tls, struct out_conn *c, const void *data,
                    size_t len)
{
    int err = 0;
    struct wreq *w;
    if (tls != NULL) {
        w = encrypt(tls, data, len, &len, &err);
    } else if ((w = malloc(sizeof(*w) + len)) != NULL) {
        memcpy(w->data, data, len);
    }
    if (w == NULL)
        return err ? err : UV_ENOMEM;
    return wreq_start(w, s, c, len);
}

int transport_tls_flush(uv_stream_t *s, tls_session_t *tls)
{
    size_t n = tls_session_out_pending(tls);
    if (n == 0)
        return 0;
    struct wreq *w = malloc(sizeof(*w) + n);
    if (w == NULL)
        return UV_ENOMEM;
    return wreq_start(w, s, NULL, tls_session_out_read(tls, w->data, n));
}

/* Encodes m into a new write request; NULL with *err set when it cannot. */
static struct wreq *encode(const raft_msg_t *m, size_t *len, int *err)
{
    size_t size = raft_msg_encoded_size(m);
    struct wreq *w = malloc(sizeof(*w) + size);
    if (w == NULL) {
        *err = SIDECAR_TRANSPORT_ENOMEM;
        return NULL;
    }
    if (raft_msg_encode(m, w->data, size, len) != 0) {
        free(w);
        *err = SIDECAR_TRANSPORT_EENCODE;
        return NULL;
    }
    return w;
}

int sidecar_transport_send(sidecar_transport_t *t, const raft_msg_t *m)
{
    struct peer *p = transport_peer_find(t, m->to, NULL);
    if (p == NULL)
        return SIDECAR_TRANSPORT_ENOPEER;
    struct out_conn *c = p->conn;
    if (c == NULL || c->state != OUT_READY) {
        p->st.dropped++;
        return SIDECAR_TRANSPORT_ENOTCONN;
    }
    if (c->queued + raft_msg_encoded_size(m) > t->cfg.max_queue_bytes) {
        p->st.dropped++;
        return SIDECAR_TRANSPORT_EQUEUEFULL;
    }
    size_t len = 0;
    int err = 0;
    struct wreq *w = encode(m, &len, &err);
    if (w == NULL) {
        p->st.dropped++;
        return err;
    }
    if (c->tls != NULL) {
        struct wreq *plain = w;
        w = encrypt(c->tls, plain->data, len, &len, &err);
        free(plain);
        if (w == NULL) {
            p->st.dropped++;
            transport_out_close(c, "TLS write failed", err);
            return SIDECAR_TRANSPORT_ENOTCONN;
        }
    }
    int rv = wreq_start(w, (uv_stream_t *)&c->tcp, c, len);
    if (rv != 0) {
        p->st.dropped++;
        transport_out_close(c, "write failed", rv);
        return SIDECAR_TRANSPORT_ENOTCONN;
    }
    p->st.sent++;
    return 0;
}

/* One frame of flen bytes at f: decoded, checked and handed to the owner. Returns false when
 * the connection was closed instead. */
static bool frame_deliver(struct in_conn *c, const uint8_t *f, size_t flen)
{
    struct sidecar_transport *t = c->t;
    raft_msg_t m;
    int rv = raft_msg_decode(f, flen, &m);
    if (rv != 0) {
        transport_in_bad_input(c, raft_strerror(rv));
        return false;
    }
    if (m.from != c->from || m.to != t->cfg.self_id) {
        raft_msg_free(&m);
        transport_in_bad_input(c, "message not from the handshaken peer or not for us");
        return false;
    }
    if (!transport_admitted(t, c->from)) {
        /* Removed from the configuration since the handshake. */
        raft_msg_free(&m);
        transport_stranger_dropped(c, c->from, "", "frame");
        t->rejected++;
        transport_in_close(c);
        return false;
    }
    t->cfg.recv_cb(t->cfg.ud, &m);
    raft_msg_free(&m);
    return true;
}

void transport_frames_deliver(struct in_conn *c)
{
    size_t off = 0;
    while (c->state == IN_READY) {
        size_t flen = 0;
        int rv = raft_frame_len(c->buf + off, c->len - off, &flen);
        if (rv == RAFT_ETRUNCATED)
            break;
        if (rv != 0) {
            transport_in_bad_input(c, raft_strerror(rv));
            return;
        }
        if (c->len - off < flen)
            break;
        if (!frame_deliver(c, c->buf + off, flen))
            return;
        off += flen;
    }
    if (off > 0 && c->state == IN_READY) {
        c->len -= off;
        memmove(c->buf, c->buf + off, c->len);
    }
}
