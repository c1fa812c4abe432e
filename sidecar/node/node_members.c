/* node_members.c — membership seen from the driver: the transport dials exactly the members
 * of the configuration in force (with their pinned instance ids), and a leader promotes a
 * learner once its log has caught up. */
#include <string.h>

#include "common.h"
#include "node_int.h"

/* Gives the transport member m's address and, once, the pin loaded at start. */
static void peer_set(sidecar_node_t *n, const raft_member_t *m)
{
    char name[64], host[SIDECAR_TRANSPORT_HOST_MAX];
    const char *peer;
    uint16_t port;
    if (sidecar_member_split(m->addr, name, sizeof(name), &peer) != 0 ||
        sidecar_config_hostport_parse(peer, host, sizeof(host), &port) != 0) {
        SIDECAR_LOG(SIDECAR_LOG_ERROR, "member has an unusable address",
                    SIDECAR_LOG_ID("id", m->id), SIDECAR_LOG_STR("addr", m->addr));
        return;
    }
    if (sidecar_transport_peer_set(n->transport, m->id, name, host, port) != 0)
        return;
    for (size_t k = 0; k < n->n_pins; k++)
        if (n->pins[k].id == m->id)
            sidecar_transport_peer_pin(n->transport, m->id, n->pins[k].instance);
}

static void log_own_removal(sidecar_node_t *n, const char *how, uint32_t members)
{
    if (n->removed_logged)
        return;
    n->removed_logged = true;
    SIDECAR_LOG(SIDECAR_LOG_WARN,
                "this member was removed from the group: it no longer votes or leads",
                SIDECAR_LOG_STR("member", sidecar_node_name(n)), SIDECAR_LOG_STR("learned", how),
                SIDECAR_LOG_INT("members", members));
}

/* How a member's transport words its refusal of a stranger (transport_handshake.c,
 * REFUSE_UNKNOWN); sidecar_transport_peer_stats_t.refused_us points at that text. */
#define REFUSED_AS_STRANGER "not a member of the configuration"

/* A follower removed from the group never applies its removal: the leader drops it when the
 * change commits and so never sends it the new commit index. It learns it from the others:
 * a majority of its configuration's voters refusing it as a stranger hold a configuration
 * without it (a configuration takes effect when it commits), so it was removed. Cleared if
 * they admit it again (added back). */
static void removed_check(sidecar_node_t *n, const raft_conf_t *c)
{
    sidecar_transport_peer_stats_t ps[RAFT_MAX_MEMBERS];
    size_t np = sidecar_transport_stats(n->transport, ps, RAFT_MAX_MEMBERS);
    uint32_t refusing = 0;
    for (size_t i = 0; i < np; i++) {
        const raft_member_t *m = raft_conf_find(c, ps[i].id);
        if (m != NULL && m->voter && !ps[i].connected && ps[i].refused_us != NULL &&
            strcmp(ps[i].refused_us, REFUSED_AS_STRANGER) == 0)
            refusing++;
    }
    n->removed = c->n > 0 && refusing >= raft_conf_voters(c) / 2 + 1;
    if (n->removed)
        log_own_removal(n, "a majority of the members refuse it as not a member", c->n);
    else if (c->n > 0 && raft_conf_find(c, n->id) != NULL)
        n->removed_logged = false;
}

bool sidecar_node_removed(const sidecar_node_t *n)
{
    const raft_conf_t *c = raft_conf(n->raft);
    return c->n > 0 && (raft_conf_find(c, n->id) == NULL || n->removed);
}

/* Logs what changed between the configuration last synced and c: on the leader every
 * member added, promoted or removed (with names); on any member its own removal. Nothing on
 * the first sync at start. */
static void members_log(sidecar_node_t *n, const raft_conf_t *old, const raft_conf_t *c)
{
    bool leader = raft_role(n->raft) == RAFT_LEADER;
    char name[64];
    const char *peer;
    for (uint32_t i = 0; i < old->n && old->n > 0; i++) {
        const raft_member_t *m = &old->members[i];
        if (raft_conf_find(c, m->id) != NULL ||
            sidecar_member_split(m->addr, name, sizeof(name), &peer) != 0)
            continue;
        if (m->id == n->id)
            log_own_removal(n, "the change applied here", c->n);
        else if (leader)
            SIDECAR_LOG(SIDECAR_LOG_INFO, "member removed", SIDECAR_LOG_STR("member", name),
                        SIDECAR_LOG_STR("peer_addr", peer), SIDECAR_LOG_INT("members", c->n));
    }
    for (uint32_t i = 0; i < c->n && old->n > 0 && leader; i++) {
        const raft_member_t *m = &c->members[i];
        const raft_member_t *was = raft_conf_find(old, m->id);
        if ((was != NULL && (was->voter || !m->voter)) ||
            sidecar_member_split(m->addr, name, sizeof(name), &peer) != 0)
            continue;
        SIDECAR_LOG(SIDECAR_LOG_INFO, was ? "member promoted to voter" : "member added",
                    SIDECAR_LOG_STR("member", name), SIDECAR_LOG_STR("peer_addr", peer),
                    SIDECAR_LOG_BOOL("voter", m->voter), SIDECAR_LOG_INT("members", c->n));
    }
}

void node_peers_sync(sidecar_node_t *n)
{
    const raft_conf_t *c = raft_conf(n->raft);
    /* A joining node hears from members it cannot know yet; once it has a configuration,
     * only from its members (see transport.h, Admission). */
    sidecar_transport_admit_unknown(n->transport, c->n == 0);
    removed_check(n, c);
    if (memcmp(c, &n->synced_conf, sizeof(*c)) == 0)
        return;
    members_log(n, &n->synced_conf, c);
    bool removed = false;
    for (uint32_t i = 0; i < n->synced_conf.n; i++) {
        uint64_t id = n->synced_conf.members[i].id;
        if (raft_conf_find(c, id) == NULL && id != n->id) {
            sidecar_transport_peer_remove(n->transport, id);
            removed = true;
        }
    }
    for (uint32_t i = 0; i < c->n; i++)
        if (c->members[i].id != n->id)
            peer_set(n, &c->members[i]);
    n->n_pins = 0; /* given to the transport, which now holds them */
    if (removed)
        node_pins_save(n); /* a removed member's pin goes: it may come back with a new data dir */
    n->synced_conf = *c;
}

/* Leader: a learner whose log has caught up with the commit index becomes a voter (one change
 * at a time; the core answers RAFT_EBUSY while another is pending, and we try again later). */
void node_learner_promote(sidecar_node_t *n)
{
    if (raft_role(n->raft) != RAFT_LEADER)
        return;
    raft_progress_t pr[RAFT_MAX_MEMBERS];
    size_t np = raft_progress(n->raft, pr, RAFT_MAX_MEMBERS);
    uint64_t commit = raft_commit_index(n->raft);
    for (size_t i = 0; i < np; i++) {
        if (pr[i].voter || pr[i].match < commit)
            continue;
        uint64_t index = 0;
        if (raft_propose_conf(n->raft, RAFT_CONF_PROMOTE, pr[i].id, NULL, &index) == 0) {
            char name[64];
            sidecar_node_member_name(n, pr[i].id, name, sizeof(name));
            SIDECAR_LOG(SIDECAR_LOG_INFO, "promoting a caught-up learner to voter",
                        SIDECAR_LOG_STR("member", name), SIDECAR_LOG_UINT("index", index));
        }
        return;
    }
}
