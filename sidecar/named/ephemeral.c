/* ephemeral.c — the leader's side of ephemeral keys (store.h): while this member leads with a
 * valid lease, the keys bound to a member that is gone — removed from the group, or whose
 * session is provably over (raft_session_expired: unheard for the session's expiry) — are
 * deleted through the log, one DEL per key with If-Match its mod revision, so that a watch sees
 * each as an ordinary delete with its own revision, and a key written again meanwhile (a plain
 * PUT, or the member back and writing it again) is left alone. A member that lives keeps its
 * keys, also across a change of leader: a new leader declares no session over before a whole
 * expiry has passed since it took office (docs/guarantees.md, "Ephemeral keys"). */
#include <inttypes.h>

#include "named_int.h"

#define EPH_BUDGET 256 /* deletes proposed per round; the rest once they applied */

/* Proposes the deletes of owner's keys (at most *budget). Returns the last index proposed, 0
 * if none. */
static uint64_t reap(sidecar_named_t *n, uint64_t owner, const char *why, int *budget)
{
    store_kv_t *items = NULL;
    size_t cnt = 0;
    store_t *st = sidecar_node_store(n->node);
    if (store_ephemeral_list(st, owner, (size_t)*budget, &items, &cnt) != 0) {
        SIDECAR_LOG(SIDECAR_LOG_WARN, "ephemeral keys: cannot read a member's keys",
                    SIDECAR_LOG_STR("detail", store_errmsg(st)));
        *budget = 0;
        return 0;
    }
    uint64_t last = 0;
    static uint8_t buf[STORE_CMD_HEADER + 1 + STORE_ELECTION_NAME_MAX + STORE_KEY_MAX];
    for (size_t i = 0; i < cnt; i++) {
        store_cond_t cond = {.has_if_match = true, .if_match = items[i].mod_revision};
        size_t len = 0;
        uint64_t index = 0;
        if (store_cmd_encode_del(items[i].key, items[i].key_len, &cond, buf, sizeof(buf), &len) !=
                0 ||
            sidecar_node_propose(n->node, buf, len, &index) != 0)
            break;
        last = index;
        (*budget)--;
    }
    if (cnt > 0) {
        char name[SIDECAR_CONFIG_NAME_MAX + 1];
        sidecar_node_member_name(n->node, owner, name, sizeof(name));
        SIDECAR_LOG(SIDECAR_LOG_INFO, "ephemeral keys of a member that is gone deleted",
                    SIDECAR_LOG_STR("member", name), SIDECAR_LOG_STR("why", why),
                    SIDECAR_LOG_UINT("keys", cnt));
    }
    store_kv_list_free(items, cnt);
    return last;
}

bool named_ephemeral_step(sidecar_named_t *n, const sidecar_node_state_t *st)
{
    if (n->eph_pending_index != 0 && st->applied < n->eph_pending_index)
        return true; /* the previous round's deletes first: they change what is left */
    n->eph_pending_index = 0;
    const raft_t *r = sidecar_node_raft(n->node);
    /* The owners are read again only when the bindings may have changed: an idle leader
     * looks here at every heartbeat round. */
    store_t *store = sidecar_node_store(n->node);
    uint64_t gen = store_ephemeral_gen(store);
    if (gen != n->eph_gen) {
        if (store_ephemeral_owners(store, n->eph_owners, NAMED_EPH_OWNERS_MAX, &n->eph_n_owners,
                                   NULL) != 0)
            return false;
        n->eph_gen = gen;
    }
    int budget = EPH_BUDGET;
    for (size_t i = 0; i < n->eph_n_owners && budget > 0; i++) {
        uint64_t owner = n->eph_owners[i];
        bool member = raft_conf_find(raft_conf(r), owner) != NULL;
        if (member && !raft_session_expired(r, owner))
            continue;
        uint64_t last = reap(n, owner, member ? "session-expired" : "removed", &budget);
        if (last > n->eph_pending_index)
            n->eph_pending_index = last;
    }
    return n->eph_pending_index != 0;
}

bool named_ephemeral_touches(const raft_entry_t *e)
{
    store_cmd_t cmd;
    return e->type == RAFT_ENTRY_NORMAL && store_cmd_decode(e->data, e->len, &cmd) == 0 &&
           cmd.owner != 0;
}
