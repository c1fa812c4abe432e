/* membership.c — configurations, quorums and the leader's per-member progress.
 * One change at a time (Raft dissertation §4.1): a configuration takes effect when its
 * entry commits, and a leader proposes no other change until then, so any two consecutive
 * configurations' majorities overlap. */
#include "raft_int.h"

uint32_t raft_quorum_of(const raft_conf_t *c)
{
    return raft_conf_voters(c) / 2 + 1;
}

uint64_t raft_quorum_value(uint64_t *vals, uint32_t n, uint32_t q)
{
    assert(q >= 1 && q <= n && n <= RAFT_MAX_MEMBERS);
    /* q-th largest: a few members at most, insertion sort descending. */
    for (uint32_t i = 1; i < n; i++) {
        uint64_t v = vals[i];
        uint32_t j = i;
        for (; j > 0 && vals[j - 1] < v; j--)
            vals[j] = vals[j - 1];
        vals[j] = v;
    }
    return vals[q - 1];
}

bool raft_conf_is_voter(const raft_conf_t *c, uint64_t id)
{
    const raft_member_t *m = raft_conf_find(c, id);
    return m != NULL && m->voter;
}

struct progress *raft_progress_find(raft_t *r, uint64_t id)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

static void progress_init(raft_t *r, struct progress *pr, const raft_member_t *m)
{
    memset(pr, 0, sizeof(*pr));
    pr->id = m->id;
    pr->voter = m->voter;
    pr->next = raft_log_last_index(&r->log) + 1;
    pr->state = PR_PROBE;
    pr->inflight = calloc(r->cfg.max_inflight, sizeof(*pr->inflight));
    pr->last_contact = r->now;
    pr->session_heard = r->now; /* sessions: its expiry counts from now at the earliest */
    /* A member just (re)counted is given the benefit of the doubt for one CheckQuorum
     * period: otherwise a leader would step down the instant it is elected. */
    pr->recent_active = true;
}

void raft_progress_close_all(raft_t *r)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        free(r->prs[i].inflight);
    r->n_prs = 0;
}

/* Leader: one progress row per member of the configuration. */
void raft_progress_reset_all(raft_t *r)
{
    raft_progress_close_all(r);
    for (uint32_t i = 0; i < r->conf.n; i++)
        progress_init(r, &r->prs[r->n_prs++], &r->conf.members[i]);
    struct progress *self = raft_progress_find(r, r->id);
    if (self != NULL) {
        self->match = r->log.unstable - 1;
        self->next = raft_log_last_index(&r->log) + 1;
    }
}

/* Keeps the rows of members that stay, adds rows for new members, drops removed ones. */
static void progress_sync(raft_t *r)
{
    struct progress old[RAFT_MAX_MEMBERS];
    uint32_t n_old = r->n_prs;
    memcpy(old, r->prs, sizeof(old));
    r->n_prs = 0;
    for (uint32_t i = 0; i < r->conf.n; i++) {
        const raft_member_t *m = &r->conf.members[i];
        struct progress *pr = &r->prs[r->n_prs++];
        bool kept = false;
        for (uint32_t j = 0; j < n_old; j++) {
            if (old[j].id == m->id) {
                *pr = old[j];
                pr->voter = m->voter;
                old[j].inflight = NULL;
                kept = true;
                break;
            }
        }
        if (!kept) {
            progress_init(r, pr, m);
            /* Sessions: it may be a member removed earlier in our term, whose hold went with
             * its row (raft_session_hold): hold it at everything proposed so far. */
            pr->session_hold = raft_log_last_index(&r->log);
        }
    }
    for (uint32_t j = 0; j < n_old; j++)
        free(old[j].inflight);
}

/* A CONF entry at e->index is now committed: it becomes the configuration in force. */
void raft_conf_apply(raft_t *r, const raft_entry_t *e)
{
    raft_conf_t next;
    if (raft_conf_decode(e->data, e->len, &next) != 0) {
        /* Only a leader writes CONF entries, always encoded by raft_conf_encode; a payload
         * that does not decode is a corrupt log, which the store's checksums should have
         * caught. Keep the configuration rather than act on garbage. */
        r->dropped++;
        return;
    }
    r->conf = next;
    r->conf_index = e->index;
    if (r->role != RAFT_LEADER)
        return;
    progress_sync(r);
    if (!raft_conf_is_voter(&r->conf, r->id)) {
        /* Raft dissertation §4.2.2: a leader removed from the configuration steps down once
         * the change commits. Handing over to the most caught-up voter avoids waiting out an
         * election timeout. */
        uint64_t best = 0, best_match = 0;
        for (uint32_t i = 0; i < r->n_prs; i++) {
            struct progress *pr = &r->prs[i];
            if (pr->voter && pr->id != r->id && (best == 0 || pr->match > best_match)) {
                best = pr->id;
                best_match = pr->match;
            }
        }
        if (best != 0 && best_match == raft_log_last_index(&r->log))
            raft_send_timeout_now(r, best);
        raft_become_follower(r, r->term, 0);
        return;
    }
    /* Members the change added need the log; members that stay may need to know commit. */
    raft_bcast_append(r);
}

/* Applies every CONF entry in (from, to] to the configuration in force. */
int raft_conf_apply_committed(raft_t *r, uint64_t from, uint64_t to)
{
    for (uint64_t i = from + 1; i <= to; i++) {
        const raft_entry_t *e = raft_log_get(&r->log, i);
        if (e != NULL && e->type == RAFT_ENTRY_CONF)
            raft_conf_apply(r, e);
    }
    return 0;
}

int raft_propose_conf(raft_t *r, raft_conf_op_t op, uint64_t id, const char *addr, uint64_t *index)
{
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (r->transfer_target != 0)
        return RAFT_ETRANSFERRING;
    if (id == 0)
        return RAFT_EINVAL;
    /* One change at a time; and not before this leader committed its term-start entry, or
     * a change of a previous leader might still be pending uncommitted (the single-server
     * change bug, raft-dev 2015). */
    if (r->pending_conf_index > r->commit || raft_log_term_or0(&r->log, r->commit) != r->term)
        return RAFT_EBUSY;

    raft_conf_t next = r->conf;
    raft_member_t *m = (raft_member_t *)raft_conf_find(&next, id);
    switch (op) {
    case RAFT_CONF_ADD_LEARNER:
        if (m != NULL)
            return RAFT_EINVAL;
        if (next.n >= RAFT_MAX_MEMBERS)
            return RAFT_ETOOBIG;
        if (addr != NULL && strlen(addr) >= RAFT_ADDR_MAX)
            return RAFT_ETOOBIG;
        m = &next.members[next.n++];
        memset(m, 0, sizeof(*m));
        m->id = id;
        m->voter = 0;
        if (addr != NULL)
            strcpy(m->addr, addr);
        break;
    case RAFT_CONF_PROMOTE:
        if (m == NULL)
            return RAFT_EUNKNOWN_MEMBER;
        if (m->voter)
            return RAFT_EINVAL;
        m->voter = 1;
        break;
    case RAFT_CONF_REMOVE:
        if (m == NULL)
            return RAFT_EUNKNOWN_MEMBER;
        if (m->voter && raft_conf_voters(&next) == 1)
            return RAFT_EINVAL; /* the last voter cannot leave */
        *m = next.members[next.n - 1];
        next.n--;
        break;
    default:
        return RAFT_EINVAL;
    }

    uint8_t buf[sizeof(raft_conf_t) + 64];
    size_t len = 0;
    int rv = raft_conf_encode(&next, buf, sizeof(buf), &len);
    if (rv != 0)
        return rv;
    raft_entry_t e = {.term = r->term,
                      .index = raft_log_last_index(&r->log) + 1,
                      .type = RAFT_ENTRY_CONF,
                      .len = (uint32_t)len};
    e.data = raft_entry_data_new(buf, (uint32_t)len);
    if (e.data == NULL)
        return RAFT_ENOMEM;
    rv = raft_log_append(&r->log, &e);
    raft_entry_data_unref(e.data);
    if (rv != 0)
        return rv;
    r->pending_conf_index = e.index;
    r->need_flush = true;
    if (index != NULL)
        *index = e.index;
    return 0;
}
