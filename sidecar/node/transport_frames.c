/* transport_frames.c — raft/codec frames on the wire: encoding a message onto a peer's
 * bounded send queue (dropped and counted when it is full or the peer not connected; Raft
 * retransmits), and decoding the frames of an inbound connection for the owner. */
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

/* Starts w's write of len bytes on s and counts them in c's queue; frees w on failure. */
static int wreq_start(struct wreq *w, uv_stream_t *s, struct out_conn *c, size_t len)
{
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

int transport_write(uv_stream_t *s, struct out_conn *c, const void *data, size_t len)
{
    struct wreq *w = malloc(sizeof(*w) + len);
    if (w == NULL)
        return UV_ENOMEM;
    memcpy(w->data, data, len);
    return wreq_start(w, s, c, len);
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
        transport_stranger_dropped(c, c->from, "frame");
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
