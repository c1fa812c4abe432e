/* node.c — the Raft driver's interface (node.h): requests to the core, whose batches run
 * later on the loop (node_batch.c), observers, and read-only accessors for status reporting.
 * node_int.h lists the driver's other files. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "node_int.h"

const char *sidecar_node_strerror(int err)
{
    switch (err) {
#define SIDECAR_NODE_ERR_TEXT(name, code, text)                                                    \
    case code:                                                                                     \
        return text;
        SIDECAR_NODE_ERRNO_MAP(SIDECAR_NODE_ERR_TEXT)
#undef SIDECAR_NODE_ERR_TEXT
    }
    return "unknown error";
}

/* ---- members ---------------------------------------------------------------------------- */

int sidecar_member_split(const char *addr, char *name, size_t name_size, const char **peer)
{
    const char *eq = addr ? strchr(addr, '=') : NULL;
    if (eq == NULL || (size_t)(eq - addr) >= name_size)
        return -1;
    memcpy(name, addr, (size_t)(eq - addr));
    name[eq - addr] = '\0';
    *peer = eq + 1;
    return 0;
}

const char *sidecar_node_member_addr(const sidecar_node_t *n, uint64_t id)
{
    const raft_member_t *m = raft_conf_find(raft_conf(n->raft), id);
    return m ? m->addr : NULL;
}

void sidecar_node_member_name(const sidecar_node_t *n, uint64_t id, char *buf, size_t len)
{
    const char *peer;
    if (id != 0 && sidecar_member_split(sidecar_node_member_addr(n, id), buf, len, &peer) == 0)
        return;
    if (id != 0)
        snprintf(buf, len, "%016" PRIx64, id);
    else
        snprintf(buf, len, "none");
}

uint64_t sidecar_node_tick_ns(const sidecar_node_t *n, uint64_t tick)
{
    return n->start_ns + tick * n->tick_ns;
}

/* ---- requests to the core ----------------------------------------------------------------- */

int sidecar_node_propose(sidecar_node_t *n, const void *data, size_t len, uint64_t *index)
{
    if (n->closing)
        return RAFT_ENOTLEADER;
    node_clock(n);
    int rv = raft_propose(n->raft, data, len, index);
    if (rv == 0)
        node_schedule(n);
    return rv;
}

int sidecar_node_forward(sidecar_node_t *n, const void *data, size_t len, uint64_t *index)
{
    *index = 0;
    if (n->closing)
        return RAFT_ENOTLEADER;
    bool forwarded;
    node_clock(n);
    int rv = raft_forward(n->raft, data, len, index, &forwarded);
    if (rv == 0)
        node_schedule(n);
    return rv;
}

uint64_t sidecar_node_session_expire_ms(const sidecar_node_t *n)
{
    return n->session_expire_ms;
}

uint64_t sidecar_node_session_expires_ns(sidecar_node_t *n, uint64_t id)
{
    node_clock(n);
    uint64_t at = raft_session_expires(n->raft, id);
    return at != 0 ? sidecar_node_tick_ns(n, at) : 0;
}

void sidecar_node_session_hold(sidecar_node_t *n, uint64_t id, uint64_t index)
{
    node_clock(n);
    raft_session_hold(n->raft, id, index);
}

void sidecar_node_session(sidecar_node_t *n, uint64_t *until_ns, uint64_t *index)
{
    node_clock(n);
    uint64_t until = raft_session_until(n->raft);
    *until_ns = until != 0 ? sidecar_node_tick_ns(n, until) : 0;
    *index = raft_session_index(n->raft);
}

int sidecar_node_read_index(sidecar_node_t *n, uint64_t ctx)
{
    node_clock(n);
    int rv = raft_read_index(n->raft, ctx);
    if (rv == 0)
        node_schedule(n);
    return rv;
}

int sidecar_node_transfer(sidecar_node_t *n, uint64_t target, uint8_t flags)
{
    node_clock(n);
    int rv = raft_transfer(n->raft, target, flags);
    if (rv == 0)
        node_schedule(n);
    return rv;
}

int sidecar_node_set_priority(sidecar_node_t *n, uint64_t id, uint8_t priority)
{
    return raft_set_priority(n->raft, id, priority);
}

int sidecar_node_propose_conf(sidecar_node_t *n, raft_conf_op_t op, uint64_t id, const char *addr,
                              uint64_t *index)
{
    node_clock(n);
    int rv = raft_propose_conf(n->raft, op, id, addr, index);
    if (rv == 0)
        node_schedule(n);
    return rv;
}

void sidecar_node_observe(sidecar_node_t *n, sidecar_node_observer_t *obs)
{
    obs->next = n->observers;
    n->observers = obs;
}

void sidecar_node_unobserve(sidecar_node_t *n, sidecar_node_observer_t *obs)
{
    for (sidecar_node_observer_t **p = &n->observers; *p; p = &(*p)->next)
        if (*p == obs) {
            *p = obs->next;
            return;
        }
}

void sidecar_node_state(const sidecar_node_t *n, sidecar_node_state_t *out)
{
    *out = n->state;
    out->commit = raft_commit_index(n->raft);
}

const raft_t *sidecar_node_raft(sidecar_node_t *n)
{
    node_clock(n); /* its time-dependent answers (leases, sessions, last contact) are current */
    return n->raft;
}
store_t *sidecar_node_store(sidecar_node_t *n)
{
    return n->store;
}
uint64_t sidecar_node_id(const sidecar_node_t *n)
{
    return n->id;
}
const char *sidecar_node_name(const sidecar_node_t *n)
{
    return n->cfg->name;
}
struct sidecar_transport *sidecar_node_transport(sidecar_node_t *n)
{
    return n->transport;
}

const char *sidecar_node_member_http(const sidecar_node_t *n, uint64_t id)
{
    if (id == n->id)
        return n->http_addr;
    return sidecar_transport_peer_http(n->transport, id);
}
