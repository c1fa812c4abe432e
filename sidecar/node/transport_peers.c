/* transport_peers.c — the transport's peer table: the members the owner sets (with their
 * pinned instance ids), peers dialled back while joining, recently removed members still
 * heard for linger_ms, and the admission rule every handshake and frame passes. */
#include <stdlib.h>
#include <string.h>

#include "transport_int.h"

struct peer *transport_peer_find(const struct sidecar_transport *t, uint64_t id, size_t *pos)
{
    for (size_t i = 0; i < t->n_peers; i++)
        if (t->peers[i]->id == id) {
            if (pos)
                *pos = i;
            return t->peers[i];
        }
    return NULL;
}

void transport_peer_free_if_done(struct peer *p)
{
    if (p->removed && !p->timer_open && p->conn == NULL && p->resolving == NULL) {
        transport_addrs_free(p);
        free(p);
    }
}

static void timer_close_cb(uv_handle_t *h)
{
    struct peer *p = h->data;
    struct sidecar_transport *t = p->t;
    p->timer_open = false;
    t->pending--;
    transport_peer_free_if_done(p);
    transport_maybe_finish_close(t);
}

void transport_peer_detach(struct peer *p)
{
    p->removed = true;
    if (p->conn != NULL) {
        p->conn->peer = NULL;
        struct out_conn *c = p->conn;
        p->conn = NULL;
        transport_out_close(c, "peer removed", 0);
    }
    if (p->resolving != NULL)
        uv_cancel((uv_req_t *)p->resolving);
    if (p->timer_open)
        uv_close((uv_handle_t *)&p->timer, timer_close_cb);
    else
        transport_peer_free_if_done(p);
}

struct peer *transport_peer_add(struct sidecar_transport *t, uint64_t id, const char *name,
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
    transport_name_copy(p->name, name);
    strcpy(p->host, host);
    p->port = port;
    uv_timer_init(t->cfg.loop, &p->timer);
    p->timer.data = p;
    p->timer_open = true;
    t->pending++;
    t->peers[t->n_peers++] = p;
    transport_dial(p);
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
    struct peer *p = transport_peer_find(t, id, NULL);
    if (p == NULL) {
        p = transport_peer_add(t, id, name, host, port, true);
        transport_notice_save(t);
        return p != NULL ? 0 : SIDECAR_TRANSPORT_ENOMEM;
    }
    p->member = true;
    if (name != NULL)
        transport_name_copy(p->name, name);
    if (strcmp(p->host, host) != 0 || p->port != port) {
        strcpy(p->host, host);
        p->port = port;
        p->next_ai = NULL;
        if (p->conn != NULL)
            transport_out_close(p->conn, "address changed", 0);
    }
    transport_notice_save(t);
    return 0;
}

static void peer_forget(struct sidecar_transport *t, size_t pos)
{
    struct peer *p = t->peers[pos];
    t->peers[pos] = t->peers[--t->n_peers];
    transport_peer_detach(p);
}

void sidecar_transport_peer_remove(sidecar_transport_t *t, uint64_t id)
{
    size_t pos;
    struct peer *p = transport_peer_find(t, id, &pos);
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
    transport_notice_save(t);
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
    struct peer *p = transport_peer_find(t, id, NULL);
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

const char *sidecar_transport_peer_http(const sidecar_transport_t *t, uint64_t id)
{
    const struct peer *p = id != 0 ? transport_peer_find(t, id, NULL) : NULL;
    return p != NULL && p->http[0] ? p->http : NULL;
}

/* ---- admission ---------------------------------------------------------------------------- */

bool transport_admitted(const struct sidecar_transport *t, uint64_t id)
{
    const struct peer *p = transport_peer_find(t, id, NULL);
    if (t->admit_unknown || (p != NULL && p->member))
        return true;
    uint64_t now = uv_now(t->cfg.loop);
    for (size_t i = 0; i < sizeof(t->gone) / sizeof(t->gone[0]); i++)
        if (t->gone[i].id == id && now < t->gone[i].until_ms)
            return true;
    return false;
}

void transport_stranger_dropped(struct in_conn *c, uint64_t from, const char *name,
                                const char *what)
{
    struct sidecar_transport *t = c->t;
    t->unknown_dropped++;
    uint64_t now = uv_now(t->cfg.loop);
    if (t->drop_logged_ms != 0 && now - t->drop_logged_ms < DROP_LOG_MS) {
        t->drop_suppressed++;
        return;
    }
    SIDECAR_LOG(SIDECAR_LOG_WARN, "dropped a peer that is not a member of the configuration",
                SIDECAR_LOG_STR("self", t->name), SIDECAR_LOG_ID("from", from),
                SIDECAR_LOG_STR("peer_name", name), SIDECAR_LOG_STR("remote", c->remote),
                SIDECAR_LOG_STR("what", what),
                SIDECAR_LOG_UINT("suppressed_since_last", t->drop_suppressed));
    t->drop_logged_ms = now;
    t->drop_suppressed = 0;
}
