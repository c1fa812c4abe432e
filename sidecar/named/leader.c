/* leader.c — the leader's side of named elections: while this member leads with a valid lease,
 * it completes handovers whose holder said it stopped (assigning the successor under a new
 * token), gives up handovers that never complete, removes stale records, and carries out what
 * placement (elections.h) decides: a failover or a release of a member whose session is
 * provably over is proposed at once, with a session hold on that member (raft_session_hold:
 * its next session comes with the change), a move of a live holder becomes a handover. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elections.h"
#include "named_int.h"

#define PLACE_EVERY_MS  1000 /* placement runs at least this often while leading */
#define BUDGET          1024 /* proposals per round at most (a dead member's 333 move in one) */
#define FAILING_WINDOWS 2    /* a give-up counts against a member this many restart windows */
#define HYSTERESIS_E    4    /* a member back this many election timeouts receives moves */

static bool alive(sidecar_named_t *n, uint64_t id)
{
    struct named_member *m = named_member_find(n, id);
    return m != NULL && m->alive;
}

/* A holder that is no member: dead once its last session is provably over, counted from
 * when this leader first saw it gone (the session may have been renewed until it was
 * removed, or — for a new leader — until it took office). */
static bool gone_dead(sidecar_named_t *n, uint64_t id, uint64_t now_ms)
{
    for (size_t i = 0; i < n->n_gone; i++)
        if (n->gone[i].id == id)
            return now_ms >= n->gone[i].since_ms + sidecar_node_session_expire_ms(n->node);
    if (n->n_gone < NAMED_MEMBERS_MAX)
        n->gone[n->n_gone++] = (struct named_gone){.id = id, .since_ms = now_ms};
    return false;
}

/* The holder `from` is provably not running the election any more (or there is none). */
static bool holder_dead(sidecar_named_t *n, uint64_t from, uint64_t now_ms)
{
    if (from == 0)
        return true;
    if (named_member_find(n, from) != NULL)
        return !alive(n, from);
    return gone_dead(n, from, now_ms);
}

static void pending(struct named_election *e, uint64_t index)
{
    e->pending_index = index != 0 ? index : UINT64_MAX;
    e->pending_handover = false;
}

static void log_decision(sidecar_named_t *n, const struct named_election *e, const char *what,
                         uint64_t to, const char *why)
{
    char from_name[64], to_name[64];
    sidecar_node_member_name(n->node, e->has_row ? e->row.holder : 0, from_name, sizeof(from_name));
    sidecar_node_member_name(n->node, to, to_name, sizeof(to_name));
    SIDECAR_LOG(SIDECAR_LOG_INFO, what, SIDECAR_LOG_STR("election", e->name),
                SIDECAR_LOG_STR("from", from_name), SIDECAR_LOG_STR("to", to_name),
                SIDECAR_LOG_STR("why", why));
}

/* ASSIGN at once; the previous holder, when its session is over, is held (raft.h). */
static void assign(sidecar_named_t *n, struct named_election *e, uint64_t to, const char *why)
{
    uint64_t index = 0, from = e->has_row ? e->row.holder : 0;
    int rv = named_propose_assign(n, e->name, to, e->has_row ? e->row.token : 0, &index);
    if (rv != 0)
        return;
    if (from != 0 && from != to)
        sidecar_node_session_hold(n->node, from, index);
    pending(e, index);
    log_decision(n, e, to ? "named election assigned" : "named election released", to, why);
}

static void handover(sidecar_named_t *n, struct named_election *e, uint64_t to, const char *why)
{
    char v[128];
    snprintf(v, sizeof(v), "%" PRIu64 " %" PRIu64 " %" PRIu64 " %s", e->row.token, to,
             e->row.holder, why);
    uint64_t index = 0;
    if (named_record_put(n, SIDECAR_NAMED_HANDOVER_PREFIX, e->name, v, &index) != 0)
        return;
    pending(e, index);
    e->pending_handover = true;
    log_decision(n, e, "named election handover", to, why);
}

/* ---- placement's input ------------------------------------------------------------------- */

typedef struct input {
    sidecar_elections_member_t members[NAMED_MEMBERS_MAX];
    sidecar_elections_election_t *els;
    struct named_election **of; /* els[i] is of[i] */
    bool *completing;           /* els[i] is a handover whose successor placement picks */
    uint64_t (*others)[NAMED_MEMBERS_MAX]; /* ... among these: its eligible but the holder */
    size_t n;
    sidecar_elections_input_t in;
} input_t;

/* Placement's members. A stopping member counts as gone there: it receives nothing, and what
 * it holds is handed over — gracefully, since what is carried out goes by its real liveness
 * (holder_dead). */
static void members_in(sidecar_named_t *n, input_t *x)
{
    for (size_t i = 0; i < n->n_members; i++) {
        const struct named_member *m = &n->members[i];
        x->members[i] = (sidecar_elections_member_t){.id = m->id,
                                                     .alive = m->alive && !m->stopping,
                                                     .no_primary = m->no_primary,
                                                     .healthy_since_ms = m->alive_since_ms};
    }
    x->in.members = x->members;
    x->in.n_members = n->n_members;
}

static sidecar_elections_election_t election_in(const struct named_election *e)
{
    return (sidecar_elections_election_t){.name = e->name,
                                          .eligible = e->eligible,
                                          .n_eligible = e->n_eligible,
                                          .prefer = e->lists ? e->lists->prefer : NULL,
                                          .n_prefer = e->lists ? e->n_prefer : 0,
                                          .avoid = e->lists ? e->lists->avoid : NULL,
                                          .n_avoid = e->lists ? e->n_avoid : 0,
                                          .failing = e->lists ? e->lists->failing : NULL,
                                          .n_failing = e->lists ? e->n_failing : 0,
                                          .holder = e->has_row ? e->row.holder : 0,
                                          .token = e->has_row ? e->row.token : 0};
}

/* ---- one round ------------------------------------------------------------------------------ */

static void failing_add(struct named_election *e, uint64_t id, uint64_t until_ms)
{
    struct named_lists *l = named_lists(e);
    if (l == NULL)
        return;
    for (size_t i = 0; i < e->n_failing; i++)
        if (l->failing[i] == id) {
            l->failing_until_ms[i] = until_ms;
            return;
        }
    if (e->n_failing < NAMED_LIST_MAX) {
        l->failing[e->n_failing] = id;
        l->failing_until_ms[e->n_failing++] = until_ms;
    }
}

static void failing_decay(struct named_election *e, uint64_t now_ms)
{
    struct named_lists *l = e->lists;
    size_t kept = 0;
    for (size_t i = 0; l != NULL && i < e->n_failing; i++)
        if (l->failing_until_ms[i] > now_ms) {
            l->failing[kept] = l->failing[i];
            l->failing_until_ms[kept++] = l->failing_until_ms[i];
        }
    e->n_failing = kept;
}

/* The holder of e's handover said it stopped cleanly: the successor may start at once. */
static bool stopped_cleanly(const struct named_election *e)
{
    return named_moving(e) && e->has_stopped && e->st_token == e->row.token &&
           e->st_from == e->row.holder;
}

/* A handover under way whose holder has not said it stopped: given up when that takes far
 * longer than stopping can (the holder keeps the election). A dead holder is placement's
 * (failover); one that said it stopped, place_step's. */
static void handover_step(sidecar_named_t *n, struct named_election *e, uint64_t now_ms,
                          int *budget)
{
    if (e->ho_seen_token != e->ho_token) {
        e->ho_seen_token = e->ho_token;
        e->ho_seen_ms = now_ms;
    }
    uint64_t from = e->row.holder;
    const sidecar_config_t *c = n->cfg;
    uint64_t timeout_ms =
        2 * ((uint64_t)c->stop_timeout_ms + c->hook_timeout_ms) + c->election_timeout_ms;
    if (!stopped_cleanly(e) && alive(n, from) && now_ms - e->ho_seen_ms > timeout_ms) {
        SIDECAR_LOG(SIDECAR_LOG_WARN,
                    "named election: the holder did not say it stopped in time; the handover is "
                    "given up and the holder keeps the election",
                    SIDECAR_LOG_STR("election", e->name),
                    SIDECAR_LOG_UINT("waited_ms", now_ms - e->ho_seen_ms));
        uint64_t index = 0;
        if (named_record_put(n, SIDECAR_NAMED_HANDOVER_PREFIX, e->name, NULL, &index) == 0)
            pending(e, index);
        (*budget)--;
    }
}

/* Records of a tenure that is over, and elections nobody declares nor holds. */
static void cleanup_step(sidecar_named_t *n, struct named_election *e, int *budget)
{
    uint64_t index = 0;
    uint64_t token = e->has_row ? e->row.token : 0;
    if (e->has_handover && e->ho_token != token) {
        if (named_record_put(n, SIDECAR_NAMED_HANDOVER_PREFIX, e->name, NULL, &index) == 0)
            pending(e, index);
        (*budget)--;
    } else if (e->has_stopped && e->st_token != token) {
        if (named_record_put(n, SIDECAR_NAMED_STOPPED_PREFIX, e->name, NULL, &index) == 0)
            pending(e, index);
        (*budget)--;
    } else if (e->has_row && e->row.holder == 0 && e->n_eligible == 0 && !e->has_handover) {
        if (named_propose_drop(n, e->name, e->row.token, &index) == 0) {
            pending(e, index);
            SIDECAR_LOG(SIDECAR_LOG_INFO, "named election dropped: no member declares it",
                        SIDECAR_LOG_STR("election", e->name));
        }
        (*budget)--;
    }
}

static const char *reason_of(const struct named_election *e)
{
    return e->ho_reason[0] ? e->ho_reason : "handover";
}

/* A handover whose holder stopped cleanly: to the member asked for when it can take it (now);
 * else placement picks the successor among the others in this round, with the counts of
 * everything decided before it (so that a stopping member's elections spread). Returns true
 * when it assigned now. */
static bool complete(sidecar_named_t *n, struct named_election *e, sidecar_elections_election_t *in,
                     input_t *x, uint64_t now_ms)
{
    uint64_t from = e->row.holder, to = e->ho_to;
    if (strcmp(e->ho_reason, "gave-up") == 0) {
        failing_add(e, from, now_ms + FAILING_WINDOWS * (uint64_t)n->cfg->restart_window_ms);
        *in = election_in(e);
    }
    if (to != 0 && to != from && named_eligible(e, to) && alive(n, to)) {
        assign(n, e, to, reason_of(e));
        in->holder = to;
        in->token++;
        return true;
    }
    size_t k = 0;
    for (size_t i = 0; i < e->n_eligible; i++)
        if (e->eligible[i] != from)
            x->others[x->n][k++] = e->eligible[i];
    in->eligible = x->others[x->n];
    in->n_eligible = k;
    in->holder = 0;
    x->completing[x->n] = true;
    return false;
}

/* Carries out placement's decisions, one election at a time, each applied to the input so
 * that the next call sees it (a dead member's elections all move in one round). A leader that
 * is stopping only completes handovers (complete_only): to the member asked for, else released
 * for the next leader to place. */
static void place_step(sidecar_named_t *n, uint64_t now_ms, int *budget, bool complete_only)
{
    if (n->n_els == 0)
        return; /* nothing to place: no allocation, no read of the maintenance record */
    input_t x = {0};
    size_t cap = n->n_els;
    x.els = calloc(cap, sizeof(*x.els));
    x.of = calloc(cap, sizeof(*x.of));
    x.completing = calloc(cap, sizeof(*x.completing));
    x.others = calloc(cap, sizeof(*x.others));
    if (x.els == NULL || x.of == NULL || x.completing == NULL || x.others == NULL)
        goto done;
    members_in(n, &x);
    for (size_t i = 0; i < n->n_els; i++) {
        struct named_election *e = n->els[i];
        if (e->n_eligible == 0 && !(e->has_row && e->row.holder != 0))
            continue;
        sidecar_elections_election_t in = election_in(e);
        if (e->pending_index == 0 && stopped_cleanly(e) && complete(n, e, &in, &x, now_ms))
            (*budget)--;
        x.of[x.n] = e;
        x.els[x.n++] = in;
    }
    x.in.elections = x.els;
    x.in.n_elections = x.n;
    x.in.options = (sidecar_elections_options_t){
        /* Maintenance freezes rebalancing, never a failover or a repair (workload.h). */
        .rebalance = n->cfg->rebalance && x.n > 0 && !sidecar_maintenance_on(n->node),
        .hysteresis_ms = HYSTERESIS_E * (uint64_t)n->cfg->election_timeout_ms,
        .now_ms = now_ms};
    /* Rebalancing moves one election at a time: none while a handover is under way. */
    bool moving_any = false;
    for (size_t i = 0; i < x.n; i++)
        moving_any = moving_any || named_moving(x.of[i]) ||
                     (x.of[i]->pending_index != 0 && x.of[i]->pending_handover);
    for (size_t guard = 0; guard < 4 * x.n + 4 && *budget > 0 && !complete_only; guard++) {
        sidecar_elections_decision_t d;
        if (sidecar_elections_place(&x.in, &d) != 0 || d.action == SIDECAR_ELECTIONS_NONE)
            break;
        sidecar_elections_election_t *in = &x.els[d.election];
        struct named_election *e = x.of[d.election];
        /* What is decided is taken as done for the next decision, in flight or not. */
        in->holder = d.action == SIDECAR_ELECTIONS_RELEASE ? 0 : d.to;
        in->token++;
        if (x.completing[d.election]) { /* a handover's successor, chosen with the others */
            x.completing[d.election] = false;
            assign(n, e, d.action == SIDECAR_ELECTIONS_ASSIGN ? d.to : 0, reason_of(e));
            (*budget)--;
            continue;
        }
        bool member = d.from == 0 || named_member_find(n, d.from) != NULL;
        bool dead = holder_dead(n, d.from, now_ms);
        if (e->pending_index != 0 || (named_moving(e) && !dead) || (!member && !dead))
            continue; /* in flight, or a removed holder whose session may still run */
        /* Placement sees a stopping member as gone; its elections are handed over for it. */
        const struct named_member *fm = named_member_find(n, d.from);
        const char *why =
            fm != NULL && fm->stopping ? "shutdown" : sidecar_elections_why_name(d.why);
        bool rebalance =
            d.why == SIDECAR_ELECTIONS_WHY_FIT || d.why == SIDECAR_ELECTIONS_WHY_SPREAD;
        if (rebalance && moving_any)
            break; /* rules 1-3 come first: nothing but rebalancing is left */
        if (d.action == SIDECAR_ELECTIONS_MOVE || !dead) {
#ifndef ELECTD_MUTATION_NAMED_NO_HANDOVER
            handover(n, e, d.to, why); /* a live holder stops first */
#else
            (void)handover; /* the mutation test's build: the successor starts at once */
            assign(n, e, d.to, why);
#endif
            moving_any = moving_any || rebalance;
        } else {
            assign(n, e, d.to, why);
        }
        (*budget)--;
    }
    /* Handovers whose successor nobody else can be: a new tenure where it was (not when its
     * member is stopping), else released. */
    for (size_t i = 0; i<x.n && * budget> 0; i++) {
        if (!x.completing[i])
            continue;
        struct named_election *e = x.of[i];
        uint64_t from = e->row.holder;
        bool back = named_eligible(e, from) && strcmp(e->ho_reason, "shutdown") != 0;
        assign(n, e, back ? from : 0, reason_of(e));
        (*budget)--;
    }
done:
    free(x.els);
    free(x.of);
    free(x.completing);
    free(x.others);
}

void named_leader_step(sidecar_named_t *n, const sidecar_node_state_t *st, bool full)
{
    const raft_t *r = sidecar_node_raft(n->node);
    bool leading =
        st->store_ok && st->role == RAFT_LEADER && st->epoch == st->term && raft_lease_valid(r);
    uint64_t now_ms = named_now_ms();
    if (!leading) {
        n->leading = false;
        n->eph_busy = false;
        return;
    }
    if (!n->leading) {
        n->leading = true;
        n->n_gone = 0;
        n->eph_pending_index = 0; /* a previous term's deletes: applied or gone */
        for (size_t i = 0; i < n->n_members; i++)
            n->members[i].alive_since_ms = now_ms;
        for (size_t i = 0; i < n->n_els; i++)
            n->els[i]->pending_index = 0; /* a previous term's proposals: applied or gone */
    }
    n->eph_busy = named_ephemeral_step(n, st);
    bool changed = n->placed_gen != n->view_gen || now_ms >= n->place_at_ms;
    for (size_t i = 0; i < n->n_members; i++) {
        struct named_member *m = &n->members[i];
        bool a = !raft_session_expired(r, m->id);
        if (a && !m->alive)
            m->alive_since_ms = now_ms;
        changed = changed || a != m->alive;
        m->alive = a;
    }
    int budget = BUDGET;
    for (size_t i = 0; (full || changed) && i < n->n_els && budget > 0; i++) {
        struct named_election *e = n->els[i];
        if (e->pending_index != 0 && st->applied >= e->pending_index)
            e->pending_index = 0;
        failing_decay(e, now_ms);
        if (e->pending_index != 0)
            continue;
        if (named_moving(e))
            handover_step(n, e, now_ms, &budget);
        else
            cleanup_step(n, e, &budget);
    }
    /* A leader that is stopping completes handovers (its own first) but places nothing: when
     * every member stops at once, or none other declares an election, the last leader is one
     * of them, and its members' stops must not wait for a successor that nobody will choose.
     * Placement runs when the view or a member's liveness changed, else once a second (the
     * hysteresis of members that came back runs out meanwhile). */
    if (budget > 0 && changed) {
        place_step(n, now_ms, &budget, n->stopping);
        n->placed_gen = n->view_gen;
        n->place_at_ms = now_ms + PLACE_EVERY_MS;
    }
}
