/* util.c — small helpers of the Raft core that hold no state: error and name tables
 * (for logs and metrics) and lookups over a configuration. */
#include <assert.h>
#include <stddef.h>

#include "raft.h"

const char *raft_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define RAFT_ERR_TEXT(name, code, text)                                                            \
    case code:                                                                                     \
        return text;
        RAFT_ERRNO_MAP(RAFT_ERR_TEXT)
#undef RAFT_ERR_TEXT
    default:
        return "unknown error";
    }
}

const char *raft_role_name(raft_role_t role)
{
    switch (role) {
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_PRECANDIDATE:
        return "precandidate";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_LEADER:
        return "leader";
    }
    /* A role read from a corrupted struct or cast from an int: still printable. */
    return "unknown";
}

/* Indexed by raft_msg_type_t; names match the enum so logs grep like the code. */
static const char *const msg_type_names[RAFT_MSG_TYPE_MAX + 1] = {
    [RAFT_MSG_PREVOTE] = "prevote",
    [RAFT_MSG_PREVOTE_RESP] = "prevote_resp",
    [RAFT_MSG_VOTE] = "vote",
    [RAFT_MSG_VOTE_RESP] = "vote_resp",
    [RAFT_MSG_APPEND] = "append",
    [RAFT_MSG_APPEND_RESP] = "append_resp",
    [RAFT_MSG_HEARTBEAT] = "heartbeat",
    [RAFT_MSG_HEARTBEAT_RESP] = "heartbeat_resp",
    [RAFT_MSG_SNAPSHOT] = "snapshot",
    [RAFT_MSG_SNAPSHOT_RESP] = "snapshot_resp",
    [RAFT_MSG_TIMEOUT_NOW] = "timeout_now",
    [RAFT_MSG_PROPOSE] = "propose",
    [RAFT_MSG_RELEASED] = "released",
};

const char *raft_msg_type_name(int type)
{
    /* The type may come straight from a peer's frame: out-of-range values are expected. */
    if (type < 1 || type > RAFT_MSG_TYPE_MAX || msg_type_names[type] == NULL) {
        return "unknown";
    }
    return msg_type_names[type];
}

const raft_member_t *raft_conf_find(const raft_conf_t *c, uint64_t id)
{
    assert(c != NULL);
    assert(c->n <= RAFT_MAX_MEMBERS);
    if (id == 0) {
        return NULL; /* 0 is "nobody" (no vote, no leader), never a member */
    }
    for (uint32_t i = 0; i < c->n && i < RAFT_MAX_MEMBERS; i++) {
        if (c->members[i].id == id) {
            return &c->members[i];
        }
    }
    return NULL;
}

uint32_t raft_conf_voters(const raft_conf_t *c)
{
    assert(c != NULL);
    assert(c->n <= RAFT_MAX_MEMBERS);
    uint32_t voters = 0;
    for (uint32_t i = 0; i < c->n && i < RAFT_MAX_MEMBERS; i++) {
        if (c->members[i].voter) {
            voters++;
        }
    }
    return voters;
}
