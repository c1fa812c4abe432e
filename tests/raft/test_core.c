/* test_core.c — unit tests of the Raft core's rules, each tied to the rule it checks, on a
 * small in-test cluster with instant, filterable delivery (the simulator covers random
 * schedules; these pin individual behaviours down). */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"

#define MAXN 6
#define QMAX 4096
#define E    10
#define HB   2

typedef struct {
    raft_msg_t m;
    raft_entry_t ents[64];
    uint8_t data[64][64];
    uint8_t chunk[256];
    raft_conf_t conf;
    bool late; /* held back once already (slow[][]) */
} qmsg_t;

typedef struct node {
    raft_t *r;
    bool up;
    /* durable state */
    raft_hard_state_t hs;
    raft_entry_t log[512];
    uint8_t logdata[512][64];
    size_t n_log;
    raft_snapshot_meta_t snap;
    uint8_t snapdata[256];
    uint8_t staged[256];
    uint64_t applied;
    uint64_t applied_sum; /* digest of applied NORMAL payload bytes */
    raft_read_t reads[16];
    size_t n_reads;
    bool transfer_stopped;
    int boots; /* a node's seed differs from run to run, as the daemon's does */
} node_t;

static node_t nodes[MAXN + 1];
static int n_nodes;
static qmsg_t *queue;
static size_t q_n;
static bool cut[MAXN + 1][MAXN + 1]; /* cut[a][b]: a's messages to b are dropped */
/* no_append[a][b]: a's APPEND and SNAPSHOT messages to b are dropped, heartbeats pass */
static bool no_append[MAXN + 1][MAXN + 1];
/* echoes[a][b]: heartbeats a sent to b that echo a session stamp (renewals offered) */
static uint64_t echoes[MAXN + 1][MAXN + 1];
/* heartbeats[a][b]: heartbeats a sent to b */
static uint64_t heartbeats[MAXN + 1][MAXN + 1];
/* slow[a][b]: a's messages to b arrive one tick late (after b's next tick) */
#define LATE_MAX 256
static bool slow[MAXN + 1][MAXN + 1];
static qmsg_t *late;
static size_t late_n;
static raft_conf_t initial;

static int snap_read(void *ctx, uint64_t index, uint64_t offset, void *buf, size_t len, size_t *n)
{
    node_t *nd = ctx;
    if (index != nd->snap.index || offset > nd->snap.size)
        return -1;
    size_t left = nd->snap.size - offset;
    *n = len < left ? len : left;
    memcpy(buf, nd->snapdata + offset, *n);
    return 0;
}

static uint32_t session_ticks; /* config of the next booted nodes (0 = sessions off) */
static uint32_t stagger_ticks; /* ... election_stagger_ticks (0 = off) */

static raft_config_t config_for(int id)
{
    return (raft_config_t){.id = (uint64_t)id,
                           .session_ticks = session_ticks,
                           .election_stagger_ticks = stagger_ticks,
                           .election_ticks = E,
                           .heartbeat_ticks = HB,
                           .max_drift_ppm = 50000,
                           .seed = 42 + (uint64_t)id,
                           .max_inflight = 4,
                           .max_msg_bytes = 1024,
                           .snapshot_chunk_bytes = 16};
}

static void boot_node(int id, bool member)
{
    node_t *nd = &nodes[id];
    raft_boot_t b = {.hs = nd->hs, .snap = nd->snap, .applied = nd->applied};
    if (member)
        b.conf = initial;
    b.entries = nd->log;
    b.n_entries = nd->n_log;
    raft_config_t cfg = config_for(id);
    cfg.seed += 7919u * (uint64_t)nd->boots++;
    raft_storage_t st = {.ctx = nd, .snapshot_read = snap_read};
    cr_assert_eq(raft_open(&cfg, &b, &st, &nd->r), 0);
    nd->up = true;
}

static void setup_cluster(int n, int voters)
{
    memset(nodes, 0, sizeof(nodes));
    memset(cut, 0, sizeof(cut));
    memset(no_append, 0, sizeof(no_append));
    memset(echoes, 0, sizeof(echoes));
    memset(heartbeats, 0, sizeof(heartbeats));
    memset(slow, 0, sizeof(slow));
    memset(&initial, 0, sizeof(initial));
    if (queue == NULL)
        queue = calloc(QMAX, sizeof(*queue));
    if (late == NULL)
        late = calloc(LATE_MAX, sizeof(*late));
    q_n = late_n = 0;
    n_nodes = n;
    for (int i = 1; i <= voters; i++) {
        initial.members[initial.n].id = (uint64_t)i;
        initial.members[initial.n].voter = 1;
        snprintf(initial.members[initial.n].addr, RAFT_ADDR_MAX, "n%d", i);
        initial.n++;
    }
    for (int i = 1; i <= n; i++)
        boot_node(i, i <= voters);
}

static void teardown_cluster(void)
{
    session_ticks = 0;
    stagger_ticks = 0;
    for (int i = 1; i <= n_nodes; i++)
        if (nodes[i].up)
            raft_close(nodes[i].r);
    free(queue);
    free(late);
    queue = NULL;
    late = NULL;
}

static void enqueue(const raft_msg_t *m)
{
    cr_assert_lt(q_n, QMAX, "message queue overflow");
    if (m->type == RAFT_MSG_HEARTBEAT && m->hint != 0 && m->from <= MAXN && m->to <= MAXN)
        echoes[m->from][m->to]++;
    if (m->type == RAFT_MSG_HEARTBEAT && m->from <= MAXN && m->to <= MAXN)
        heartbeats[m->from][m->to]++;
    qmsg_t *q = &queue[q_n++];
    q->late = false;
    q->m = *m;
    cr_assert_leq(m->n_entries, 64);
    for (uint32_t i = 0; i < m->n_entries; i++) {
        q->ents[i] = m->entries[i];
        cr_assert_leq(m->entries[i].len, 64);
        memcpy(q->data[i], m->entries[i].data, m->entries[i].len);
        q->ents[i].data = q->data[i];
    }
    q->m.entries = q->ents;
    if (m->len) {
        memcpy(q->chunk, m->data, m->len);
        q->m.data = q->chunk;
    }
    if (m->conf) {
        q->conf = *m->conf;
        q->m.conf = &q->conf;
    }
}

static void persist_and_apply(node_t *nd, const raft_ready_t *rd)
{
    if (rd->hs_changed)
        nd->hs = rd->hs;
    if (rd->chunk) {
        memcpy(nd->staged + rd->chunk->offset, rd->chunk->data, rd->chunk->len);
        if (rd->chunk->last) {
            nd->snap = rd->chunk->meta;
            memcpy(nd->snapdata, nd->staged, nd->snap.size);
            nd->n_log = 0;
            memcpy(&nd->applied_sum, nd->snapdata, sizeof(nd->applied_sum));
            nd->applied = nd->snap.index;
        }
    }
    for (size_t i = 0; i < rd->n_entries; i++) {
        const raft_entry_t *e = &rd->entries[i];
        uint64_t first = nd->snap.index + 1;
        size_t pos = (size_t)(e->index - first);
        cr_assert_leq(pos, nd->n_log, "gap in persisted log");
        cr_assert_lt(pos, 512);
        nd->log[pos] = *e;
        memcpy(nd->logdata[pos], e->data, e->len);
        nd->log[pos].data = nd->logdata[pos];
        nd->n_log = pos + 1;
    }
    for (size_t i = 0; i < rd->n_msgs; i++)
        enqueue(&rd->msgs[i]);
    for (size_t i = 0; i < rd->n_committed; i++) {
        const raft_entry_t *e = &rd->committed[i];
        cr_assert_eq(e->index, nd->applied + 1, "apply out of order");
        nd->applied = e->index;
        if (e->type == RAFT_ENTRY_NORMAL)
            for (uint32_t j = 0; j < e->len; j++)
                nd->applied_sum += e->data[j];
    }
    for (size_t i = 0; i < rd->n_reads && nd->n_reads < 16; i++)
        nd->reads[nd->n_reads++] = rd->reads[i];
    if (rd->transfer_stopped)
        nd->transfer_stopped = true;
}

static void process(int id)
{
    node_t *nd = &nodes[id];
    raft_ready_t rd;
    for (int guard = 0; nd->up && raft_has_ready(nd->r) && guard < 100; guard++) {
        cr_assert_eq(raft_ready_get(nd->r, &rd), 0);
        persist_and_apply(nd, &rd);
        raft_advance(nd->r);
    }
}

/* Delivers every queued message (and what they cause) until the network is quiet. */
static void deliver_all(void)
{
    for (int i = 1; i <= n_nodes; i++)
        process(i);
    for (int round = 0; q_n > 0 && round < 10000; round++) {
        qmsg_t m = queue[0];
        memmove(queue, queue + 1, (q_n - 1) * sizeof(*queue));
        q_n--;
        m.m.entries = m.ents;
        if (m.m.len)
            m.m.data = m.chunk;
        if (m.m.conf)
            m.m.conf = &m.conf;
        int to = (int)m.m.to;
        if (to < 1 || to > n_nodes || !nodes[to].up || cut[m.m.from][to])
            continue;
        if ((m.m.type == RAFT_MSG_APPEND || m.m.type == RAFT_MSG_SNAPSHOT) &&
            no_append[m.m.from][to])
            continue;
        if (slow[m.m.from][to] && !m.late) {
            cr_assert_lt(late_n, LATE_MAX, "late queue overflow");
            m.late = true;
            late[late_n++] = m;
            continue;
        }
        cr_assert_eq(raft_step(nodes[to].r, &m.m), 0);
        process(to);
    }
}

static void tick_all(int ticks)
{
    for (int t = 0; t < ticks; t++) {
        for (int i = 1; i <= n_nodes; i++)
            if (nodes[i].up)
                raft_tick(nodes[i].r);
        /* what slow links held back arrives now, after the ticks */
        for (size_t i = 0; i < late_n; i++) {
            cr_assert_lt(q_n, QMAX, "message queue overflow");
            queue[q_n++] = late[i];
        }
        late_n = 0;
        deliver_all();
    }
}

static int leader_of_cluster(void)
{
    int found = 0;
    for (int i = 1; i <= n_nodes; i++)
        if (nodes[i].up && raft_role(nodes[i].r) == RAFT_LEADER) {
            cr_assert_eq(found, 0, "two leaders: %d and %d", found, i);
            found = i;
        }
    return found;
}

static int elect(void)
{
    for (int t = 0; t < 20 * E; t++) {
        tick_all(1);
        int l = leader_of_cluster();
        if (l != 0)
            return l;
    }
    cr_assert_fail("no leader elected");
    return 0;
}

static void crash(int id)
{
    raft_close(nodes[id].r);
    nodes[id].up = false;
}

static uint64_t propose(int id, const char *s)
{
    uint64_t idx = 0;
    cr_assert_eq(raft_propose(nodes[id].r, s, strlen(s), &idx), 0);
    deliver_all();
    return idx;
}

TestSuite(election, .fini = teardown_cluster);

Test(election, three_nodes_elect_one_leader_with_a_term_start_entry)
{
    setup_cluster(3, 3);
    int l = elect();
    tick_all(HB * 2);
    uint64_t term = raft_term(nodes[l].r);
    for (int i = 1; i <= 3; i++) {
        cr_assert_eq(raft_term(nodes[i].r), term);
        cr_assert_eq(raft_leader(nodes[i].r), (uint64_t)l);
        /* Raft §8: the term-start no-op commits everywhere. */
        cr_assert_eq(raft_commit_index(nodes[i].r), 1);
        const raft_entry_t *e = raft_entry_at(nodes[i].r, 1);
        cr_assert(e != NULL && e->type == RAFT_ENTRY_NOOP);
        raft_term_start_t ts;
        cr_assert_eq(raft_term_start_decode(e->data, e->len, &ts), 0);
        cr_assert_eq(ts.leader, (uint64_t)l);
    }
}

/* raft_tick_due (what lets a driver sleep between ticks): a leader's next due tick is its next
 * heartbeat, a follower's its election timeout; no tick before it makes the core ready, and
 * the due tick does. */
Test(election, the_due_tick_is_the_next_heartbeat_or_the_election_timeout)
{
    setup_cluster(3, 3);
    int l = elect();
    tick_all(HB * 2);
    raft_t *lr = nodes[l].r;
    uint64_t due = raft_tick_due(lr);
    cr_assert(due > raft_now(lr) && due <= raft_now(lr) + HB, "leader due at %llu, now %llu",
              (unsigned long long)due, (unsigned long long)raft_now(lr));
    while (raft_now(lr) + 1 < due) {
        raft_tick(lr);
        cr_assert(!raft_has_ready(lr), "the leader had work before its due tick");
    }
    raft_tick(lr);
    cr_assert(raft_has_ready(lr), "no heartbeat at the leader's due tick");
    deliver_all();

    int f = l % 3 + 1;
    raft_t *fr = nodes[f].r;
    due = raft_tick_due(fr);
    cr_assert(due >= raft_now(fr) + E && due < raft_now(fr) + 2 * E,
              "follower due at %llu, now %llu", (unsigned long long)due,
              (unsigned long long)raft_now(fr));
    while (raft_now(fr) + 1 < due) {
        raft_tick(fr);
        cr_assert(!raft_has_ready(fr), "the follower had work before its election timeout");
    }
    raft_tick(fr);
    cr_assert(raft_has_ready(fr), "no campaign at the follower's due tick");
}

Test(election, no_vote_within_election_timeout_of_start)
{
    /* DESIGN.md: a node that (re)starts grants no vote for election_timeout_min, so a restart
     * cannot shorten a lease it acknowledged before. */
    setup_cluster(2, 2);
    raft_msg_t m = {.type = RAFT_MSG_VOTE, .from = 2, .to = 1, .term = 5};
    cr_assert_eq(raft_step(nodes[1].r, &m), 0);
    cr_assert_eq(raft_term(nodes[1].r), 0, "term adopted from a refused vote request");
    tick_all(0);
    for (int t = 0; t < E; t++)
        raft_tick(nodes[1].r);
    raft_msg_t m2 = {.type = RAFT_MSG_VOTE, .from = 2, .to = 1, .term = 6};
    cr_assert_eq(raft_step(nodes[1].r, &m2), 0);
    cr_assert_eq(raft_term(nodes[1].r), 6);
    raft_ready_t rd;
    cr_assert_eq(raft_ready_get(nodes[1].r, &rd), 0);
    cr_assert_eq(rd.hs.vote, 2, "vote not granted after the start-up quiet period");
    bool granted = false;
    for (size_t i = 0; i < rd.n_msgs; i++)
        if (rd.msgs[i].type == RAFT_MSG_VOTE_RESP && !(rd.msgs[i].flags & RAFT_FLAG_REJECT))
            granted = true;
    cr_assert(granted);
    raft_advance(nodes[1].r);
}

Test(election, follower_that_hears_a_leader_refuses_votes)
{
    /* Leader stickiness (dissertation §4.2.3) — what leases rely on. */
    setup_cluster(3, 3);
    int l = elect();
    int f = l == 1 ? 2 : 1, other = 6 - l - f;
    tick_all(1);
    uint64_t term = raft_term(nodes[f].r);
    raft_msg_t m = {.type = RAFT_MSG_VOTE,
                    .from = (uint64_t)other,
                    .to = (uint64_t)f,
                    .term = term + 1,
                    .index = 100,
                    .log_term = term};
    cr_assert_eq(raft_step(nodes[f].r, &m), 0);
    cr_assert_eq(raft_term(nodes[f].r), term, "sticky follower adopted the candidate's term");
    cr_assert_eq(raft_leader(nodes[f].r), (uint64_t)l);
    /* The same request flagged as a leadership transfer is honoured. */
    m.flags = RAFT_FLAG_TRANSFER;
    cr_assert_eq(raft_step(nodes[f].r, &m), 0);
    cr_assert_eq(raft_term(nodes[f].r), term + 1);
}

Test(election, vote_refused_to_an_out_of_date_log)
{
    /* Raft §5.4.1. */
    setup_cluster(3, 3);
    int l = elect();
    propose(l, "a");
    int f = l == 1 ? 2 : 1;
    for (int t = 0; t < 3 * E; t++)
        raft_tick(nodes[f].r); /* past stickiness, without hearing the leader */
    uint64_t term = raft_term(nodes[f].r);
    raft_msg_t m = {.type = RAFT_MSG_VOTE,
                    .from = 3 == l ? 2 : 3,
                    .to = (uint64_t)f,
                    .term = term + 1,
                    .index = 1,
                    .log_term = term};
    if (m.from == (uint64_t)f)
        m.from = (uint64_t)l;
    while (raft_has_ready(nodes[f].r)) {
        raft_ready_t rd;
        raft_ready_get(nodes[f].r, &rd);
        raft_advance(nodes[f].r);
    }
    cr_assert_eq(raft_step(nodes[f].r, &m), 0);
    raft_ready_t rd;
    cr_assert_eq(raft_ready_get(nodes[f].r, &rd), 0);
    cr_assert_eq(rd.n_msgs, 1);
    cr_assert_eq(rd.msgs[0].type, RAFT_MSG_VOTE_RESP);
    cr_assert(rd.msgs[0].flags & RAFT_FLAG_REJECT, "voted for a candidate missing entries");
    raft_advance(nodes[f].r);
}

Test(election, leader_without_quorum_steps_down)
{
    /* CheckQuorum. */
    setup_cluster(3, 3);
    int l = elect();
    for (int i = 1; i <= 3; i++)
        if (i != l)
            cut[i][l] = cut[l][i] = true;
    tick_all(2 * E + 1);
    cr_assert_neq(raft_role(nodes[l].r), RAFT_LEADER);
    cr_assert_eq(raft_lease_valid(nodes[l].r), false);
}

Test(election, prevote_keeps_an_isolated_node_from_raising_terms)
{
    setup_cluster(3, 3);
    int l = elect();
    int f = l == 1 ? 2 : 1;
    uint64_t term = raft_term(nodes[l].r);
    for (int i = 1; i <= 3; i++)
        if (i != f)
            cut[i][f] = cut[f][i] = true;
    tick_all(10 * E);
    cr_assert_eq(raft_term(nodes[f].r), term, "isolated node raised its term");
    memset(cut, 0, sizeof(cut));
    tick_all(2 * E);
    cr_assert_eq(leader_of_cluster(), l, "rejoining node disturbed the leader");
    cr_assert_eq(raft_term(nodes[l].r), term);
}

/* The first follower in rank stands when its own contact with the leader is E + 2 ticks old;
 * the other voter heard the leader two rounds later (its last rounds went to it alone, as
 * rounds in turn do) and drops the PreVote while its refusal lasts. The first asks again at
 * every tick and wins as soon as that refusal ends, instead of after another timeout (when the
 * second would stand and win). */
Test(election, a_precandidate_asks_again_and_wins_when_a_later_contacts_refusal_ends)
{
    stagger_ticks = HB;
    setup_cluster(3, 3);
    int l = elect();
    int first = l == 1 ? 2 : 1, second = 6 - l - first; /* rank by id: the lower first */
    tick_all(HB);
    cut[l][first] = true;
    tick_all(2 * HB);
    crash(l);
    cut[l][first] = false;
    int next = 0, t = 0;
    for (; t < 3 * E && next == 0; t++) {
        tick_all(1);
        next = leader_of_cluster();
    }
    cr_assert_eq(next, first, "member %d won, not the first in rank (%d)", next, first);
    /* The second's refusal ends E after it last heard the leader, which was at the crash. */
    cr_assert_leq(t, E + 1, "won %d ticks after the crash", t);
    cr_assert_eq(raft_term(nodes[first].r), raft_term(nodes[second].r));
}

/* A quiet leader of three sending its rounds in turn dies right after a round went to `last`
 * (the first or the second follower in rank): either way the first in rank wins the next
 * term in one election, no split vote. When the second heard the leader a round earlier than
 * the first, only ranks two intervals apart keep it from standing at the same moment. */
static void host_crash_in_turn(bool last_to_first)
{
    stagger_ticks = HB;
    setup_cluster(3, 3);
    int l = elect();
    int first = l == 1 ? 2 : 1, second = 6 - l - first;
    tick_all(2 * HB);
    raft_set_rotation(nodes[l].r, true);
    tick_all(4 * HB);
    cr_assert_gt(raft_rounds_in_turn(nodes[l].r), 0);
    int last = last_to_first ? first : second, other = last == first ? second : first;
    for (int t = 0; t < 4 * HB; t++) {
        uint64_t to_last = heartbeats[l][last], to_other = heartbeats[l][other];
        tick_all(1);
        if (heartbeats[l][last] > to_last) {
            cr_assert_eq(heartbeats[l][other], to_other, "a round went to both");
            break;
        }
    }
    uint64_t term = raft_term(nodes[l].r);
    crash(l);
    int next = 0;
    for (int t = 0; t < 3 * E && next == 0; t++) {
        tick_all(1);
        next = leader_of_cluster();
    }
    cr_assert_eq(next, first, "member %d won, not the first in rank (%d)", next, first);
    cr_assert_eq(raft_term(nodes[next].r), term + 1, "the election took %" PRIu64 " terms",
                 raft_term(nodes[next].r) - term);
}

Test(election, after_rounds_in_turn_the_first_in_rank_wins_at_once_having_heard_last)
{
    host_crash_in_turn(true);
}

Test(election, after_rounds_in_turn_the_first_in_rank_wins_at_once_having_heard_first)
{
    host_crash_in_turn(false);
}

/* Priorities (raft_set_priority) order the followers' candidacy: with stagger, the follower of
 * the highest priority stands first when the leader falls silent, whatever its id; a member of
 * priority 0 stands after every other. */
static int silent_leader_successor(int high, int zero)
{
    stagger_ticks = HB;
    setup_cluster(4, 4);
    int l = elect();
    for (int i = 1; i <= 4; i++)
        for (int j = 1; j <= 4; j++) {
            cr_assert_eq(raft_set_priority(nodes[i].r, (uint64_t)j,
                                           j == high   ? 200
                                           : j == zero ? 0
                                                       : RAFT_PRIORITY_DEFAULT),
                         0);
            cr_assert_eq(raft_priority(nodes[i].r, (uint64_t)j), j == high ? 200
                                                                 : j == zero
                                                                     ? 0
                                                                     : RAFT_PRIORITY_DEFAULT);
        }
    tick_all(HB); /* the followers hear the leader once more: their timeouts are now ranked */
    crash(l);
    int next = 0;
    for (int t = 0; t < 3 * E && next == 0; t++) {
        tick_all(1);
        next = leader_of_cluster();
    }
    cr_assert_neq(next, 0, "no leader after the old one fell silent");
    return next;
}

/* The first leader of a 4-node cluster with stagger (the same every run: the seeds are fixed). */
static int first_leader(void)
{
    stagger_ticks = HB;
    setup_cluster(4, 4);
    int l = elect();
    teardown_cluster();
    return l;
}

Test(election, the_follower_of_the_highest_priority_stands_first)
{
    /* Ids would elect the lowest follower first; the highest one has priority 200. */
    int l0 = first_leader();
    int high = l0 == 4 ? 3 : 4;
    int next = silent_leader_successor(high, 0);
    cr_assert_eq(next, high, "member %d (priority 200) did not win; %d did", high, next);
}

Test(election, a_member_of_priority_0_stands_after_every_other)
{
    int l0 = first_leader();
    /* By id, the lowest follower would stand first: it has priority 0. */
    int zero = l0 == 1 ? 2 : 1;
    int next = silent_leader_successor(0, zero);
    cr_assert_neq(next, zero, "member %d (priority 0) won while others could", zero);
}

TestSuite(replication, .fini = teardown_cluster);

Test(replication, entries_commit_and_apply_everywhere_in_order)
{
    setup_cluster(3, 3);
    int l = elect();
    for (int i = 0; i < 50; i++)
        propose(l, "xy");
    tick_all(HB + 1);
    for (int i = 1; i <= 3; i++) {
        cr_assert_eq(nodes[i].applied, 51);
        cr_assert_eq(nodes[i].applied_sum, 50 * ('x' + 'y'));
    }
}

Test(replication, commit_needs_a_durable_majority)
{
    setup_cluster(3, 3);
    int l = elect();
    tick_all(1);
    for (int i = 1; i <= 3; i++)
        if (i != l)
            cut[l][i] = true;
    uint64_t idx = propose(l, "q");
    tick_all(2);
    cr_assert_lt(raft_commit_index(nodes[l].r), idx, "committed without a majority");
    memset(cut, 0, sizeof(cut));
    tick_all(HB + 1);
    cr_assert_geq(raft_commit_index(nodes[l].r), idx);
}

Test(replication, uncommitted_entries_of_a_deposed_leader_are_overwritten)
{
    /* Raft §5.3: the new leader's log wins; what the old one never replicated is lost
     * (it was never acknowledged). */
    setup_cluster(3, 3);
    int l = elect();
    tick_all(1);
    int a = l == 1 ? 2 : 1, b = 6 - l - a;
    /* The leader replicates an entry to nobody, then loses leadership. */
    for (int i = 1; i <= 3; i++)
        cut[l][i] = true;
    uint64_t idx = propose(l, "old");
    memset(cut, 0, sizeof(cut));
    cut[l][a] = cut[a][l] = cut[l][b] = cut[b][l] = true;
    tick_all(4 * E);
    int l2 = leader_of_cluster();
    cr_assert(l2 == a || l2 == b);
    /* Old leader's uncommitted entry is overwritten once it rejoins. */
    memset(cut, 0, sizeof(cut));
    tick_all(4 * E);
    const raft_entry_t *e = raft_entry_at(nodes[l].r, idx);
    cr_assert(e != NULL);
    cr_assert(!(e->type == RAFT_ENTRY_NORMAL && e->len == 3 && memcmp(e->data, "old", 3) == 0),
              "an uncommitted entry of a deposed leader survived");
}

Test(replication, diverged_follower_converges_by_fast_backoff)
{
    setup_cluster(3, 3);
    int l = elect();
    tick_all(1);
    int f = l == 1 ? 2 : 1;
    cut[l][f] = true;
    for (int i = 0; i < 40; i++)
        propose(l, "z");
    tick_all(1);
    memset(cut, 0, sizeof(cut));
    tick_all(HB * 4);
    cr_assert_eq(raft_last_index(nodes[f].r), raft_last_index(nodes[l].r));
    cr_assert_eq(nodes[f].applied, nodes[l].applied);
}

Test(replication, garbage_messages_do_not_change_state)
{
    setup_cluster(3, 3);
    int l = elect();
    int f = l == 1 ? 2 : 1;
    tick_all(1);
    uint64_t term = raft_term(nodes[f].r), commit = raft_commit_index(nodes[f].r);
    uint64_t last = raft_last_index(nodes[f].r);
    raft_entry_t bad[2] = {{.term = term, .index = 50}, {.term = term, .index = 52}};
    raft_msg_t cases[] = {
        {.type = 0, .from = 3, .to = (uint64_t)f, .term = term},
        {.type = 99, .from = 3, .to = (uint64_t)f, .term = term},
        {.type = RAFT_MSG_APPEND, .from = 0, .to = (uint64_t)f, .term = term},
        {.type = RAFT_MSG_APPEND, .from = (uint64_t)f, .to = (uint64_t)f, .term = term},
        {.type = RAFT_MSG_APPEND, .from = 9, .to = (uint64_t)f, .term = 0},
        {.type = RAFT_MSG_APPEND,
         .from = (uint64_t)l,
         .to = (uint64_t)f,
         .term = term,
         .index = 49,
         .log_term = term,
         .n_entries = 2,
         .entries = bad},
        {.type = RAFT_MSG_APPEND,
         .from = (uint64_t)l,
         .to = (uint64_t)f,
         .term = term,
         .index = 1000000,
         .log_term = term,
         .commit = 1000000},
        {.type = RAFT_MSG_SNAPSHOT,
         .from = (uint64_t)l,
         .to = (uint64_t)f,
         .term = term,
         .index = 5},
        {.type = RAFT_MSG_HEARTBEAT, .from = 9, .to = (uint64_t)f, .term = term - 1},
        {.type = RAFT_MSG_APPEND_RESP, .from = 9, .to = (uint64_t)f, .term = term},
        {.type = RAFT_MSG_APPEND,
         .from = (uint64_t)l,
         .to = (uint64_t)f,
         .term = term,
         .flags = 0x80},
    };
    uint64_t dropped = raft_dropped(nodes[f].r);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(raft_step(nodes[f].r, &cases[i]), 0, "case %zu", i);
        cr_assert_eq(raft_term(nodes[f].r), term, "case %zu changed the term", i);
        cr_assert_eq(raft_commit_index(nodes[f].r), commit, "case %zu changed commit", i);
        cr_assert_eq(raft_last_index(nodes[f].r), last, "case %zu changed the log", i);
    }
    cr_assert_geq(raft_dropped(nodes[f].r), dropped + 6, "garbage was not counted as dropped");
    raft_msg_t wrong_to = {.type = RAFT_MSG_HEARTBEAT, .from = 3, .to = 77, .term = term};
    cr_assert_eq(raft_step(nodes[f].r, &wrong_to), RAFT_EINVAL);
    cr_assert_eq(raft_step(nodes[f].r, NULL), RAFT_EINVAL);
    deliver_all();
    cr_assert_eq(leader_of_cluster(), l);
}

TestSuite(lease, .fini = teardown_cluster);

Test(lease, leader_holds_a_lease_renewed_by_quorum_rounds)
{
    setup_cluster(3, 3);
    raft_config_t cfg = config_for(1);
    uint32_t lt = raft_lease_ticks(&cfg);
    cr_assert_eq(lt, E * 95 / 105 - 2);
    int l = elect();
    tick_all(HB);
    cr_assert(raft_lease_valid(nodes[l].r));
    uint64_t until = raft_lease_until(nodes[l].r);
    cr_assert_leq(until, raft_now(nodes[l].r) + lt);
    /* Cut the leader off: the lease runs out and is not renewed. */
    for (int i = 1; i <= 3; i++)
        cut[i][l] = true;
    tick_all((int)lt + 1);
    cr_assert_eq(raft_lease_valid(nodes[l].r), false);
    cr_assert_eq(raft_lease_until(nodes[l].r), until, "lease renewed without a quorum");
}

/* Heartbeats l sent to each other node in the next HB ticks (one round). */
static void one_round(int l, uint64_t got[MAXN + 1])
{
    uint64_t before[MAXN + 1];
    for (int i = 1; i <= n_nodes; i++)
        before[i] = heartbeats[l][i];
    tick_all(HB);
    for (int i = 1; i <= n_nodes; i++)
        got[i] = heartbeats[l][i] - before[i];
}

/* raft_set_rotation: a quiet leader of three sends each round to one follower, the two in
 * turn, and its lease is renewed at every round as before; with a member behind, rounds go to
 * all again. */
static void rounds_in_turn(int voters)
{
    setup_cluster(voters, voters);
    int l = elect();
    tick_all(2 * HB);
    raft_set_rotation(nodes[l].r, true);
    tick_all(2 * HB);
    cr_assert(raft_quiet(nodes[l].r));
    uint64_t got[MAXN + 1], prev[MAXN + 1] = {0};
    for (int round = 0; round < 8; round++) {
        uint64_t until = raft_lease_until(nodes[l].r);
        one_round(l, got);
        int n = 0;
        for (int i = 1; i <= voters; i++) {
            if (i == l)
                continue;
            cr_assert_leq(got[i], 1, "member %d got %" PRIu64 " heartbeats in a round", i, got[i]);
            n += (int)got[i];
            if (round > 0)
                cr_assert_neq(got[i], prev[i], "member %d was sent two rounds in a row, or none",
                              i);
            prev[i] = got[i];
        }
        cr_assert_eq(n, (voters - 1) / 2, "round %d went to %d followers", round, n);
        cr_assert_gt(raft_lease_until(nodes[l].r), until, "round %d did not renew the lease",
                     round);
        cr_assert(raft_quiet(nodes[l].r));
    }
    cr_assert_geq(raft_rounds_in_turn(nodes[l].r), 8);

    /* A follower stops answering: once the round it was sent is due, every round goes to
     * all (two rounds at most), and the lease goes on with the others. */
    int f = l == 1 ? 2 : 1;
    cut[f][l] = true;
    one_round(l, got);
    one_round(l, got);
    for (int k = 0; k < 3; k++) {
        one_round(l, got);
        for (int i = 1; i <= voters; i++)
            cr_assert(i == l || got[i] == 1, "member %d not sent the round with %d behind", i, f);
        cr_assert(raft_lease_valid(nodes[l].r));
    }
    /* Back: in turn again. */
    cut[f][l] = false;
    tick_all(2 * HB);
    uint64_t in_turn = raft_rounds_in_turn(nodes[l].r);
    tick_all(4 * HB);
    cr_assert_gt(raft_rounds_in_turn(nodes[l].r), in_turn, "not in turn again");
    cr_assert_eq(leader_of_cluster(), l);
}

Test(lease, a_quiet_leader_of_three_sends_rounds_in_turn_and_keeps_its_lease)
{
    rounds_in_turn(3);
}

/* Only a group of three voters: with five, two followers could stand at the same moment (their
 * last contacts a round apart) and split the vote; with four, one follower and the leader are
 * no quorum; a learner would not count. Every round goes to all. */
Test(lease, no_rounds_in_turn_but_in_a_group_of_three_voters)
{
    int shapes[3][2] = {{5, 5}, {4, 4}, {4, 3}};
    for (int s = 0; s < 3; s++) {
        setup_cluster(shapes[s][0], shapes[s][1]);
        int l = elect();
        if (shapes[s][1] < shapes[s][0]) {
            tick_all(HB);
            uint64_t idx;
            cr_assert_eq(raft_propose_conf(nodes[l].r, RAFT_CONF_ADD_LEARNER, 4, "n4", &idx), 0);
        }
        tick_all(4 * HB);
        raft_set_rotation(nodes[l].r, true);
        tick_all(8 * HB);
        cr_assert_eq(raft_rounds_in_turn(nodes[l].r), 0, "shape %d", s);
        if (s < 2)
            teardown_cluster(); /* the suite's .fini tears the last one down */
    }
}

Test(lease, transfer_gives_the_lease_up_and_the_target_leads_at_once)
{
    setup_cluster(3, 3);
    int l = elect();
    tick_all(HB);
    cr_assert(raft_lease_valid(nodes[l].r));
    int t = l == 3 ? 2 : 3;
    cr_assert_eq(raft_transfer(nodes[l].r, (uint64_t)t, RAFT_FLAG_STOPPED), 0);
    cr_assert_eq(raft_lease_valid(nodes[l].r), false, "lease kept during a transfer");
    uint64_t dummy;
    cr_assert_eq(raft_propose(nodes[l].r, "x", 1, &dummy), RAFT_ETRANSFERRING);
    deliver_all();
    cr_assert_eq(leader_of_cluster(), t);
    cr_assert(nodes[t].transfer_stopped);
    tick_all(HB);
    cr_assert(raft_lease_valid(nodes[t].r));
}

Test(lease, a_transfer_without_stopped_leaves_the_target_no_lease_for_an_election_timeout)
{
    /* The old leader's workload may still run until its lease ends (a failed on-stop): the
     * target waits it out as after a crash, and cannot pass a "stopped" on before then. */
    setup_cluster(3, 3);
    int l = elect();
    tick_all(HB);
    int t = l == 3 ? 2 : 3;
    cr_assert_eq(raft_transfer(nodes[l].r, (uint64_t)t, 0), 0);
    deliver_all();
    cr_assert_eq(leader_of_cluster(), t);
    cr_assert_not(nodes[t].transfer_stopped);
    tick_all(E - 2 * HB);
    cr_assert_not(raft_lease_valid(nodes[t].r), "lease granted before the old one ran out");
    int next = t == 1 ? 2 : 1;
    cr_assert_eq(raft_transfer(nodes[t].r, (uint64_t)next, RAFT_FLAG_STOPPED), 0);
    deliver_all();
    cr_assert_eq(leader_of_cluster(), next);
    cr_assert_not(nodes[next].transfer_stopped, "\"stopped\" passed on inside the wait");
    tick_all(E + 2 * HB);
    cr_assert(raft_lease_valid(nodes[next].r), "no lease after the wait");
}

static raft_msg_t released_msg(int from, int to, uint64_t term)
{
    return (raft_msg_t){
        .type = RAFT_MSG_RELEASED, .from = (uint64_t)from, .to = (uint64_t)to, .term = term};
}

Test(lease, a_released_notice_elects_the_first_follower_at_once_with_no_lease_wait)
{
    setup_cluster(3, 3);
    int l = elect();
    tick_all(HB);
    uint64_t term = raft_term(nodes[l].r);
    crash(l); /* its shim killed the workload, saw its group gone, then sent the notice */
    int first = l == 1 ? 2 : 1, second = 6 - l - first;
    raft_msg_t m = released_msg(l, first, term);
    cr_assert_eq(raft_step(nodes[first].r, &m), 0);
    m = released_msg(l, second, term);
    cr_assert_eq(raft_step(nodes[second].r, &m), 0);
    deliver_all();
    cr_assert_eq(leader_of_cluster(), first, "the first by id did not stand at once");
    cr_assert(nodes[first].transfer_stopped);
    tick_all(HB);
    cr_assert(raft_lease_valid(nodes[first].r), "the successor waited for the released lease");
}

Test(lease, a_released_notice_lets_the_next_follower_stand_a_stagger_later)
{
    stagger_ticks = HB;
    setup_cluster(3, 3);
    int l = elect();
    tick_all(HB);
    uint64_t term = raft_term(nodes[l].r);
    int first = l == 1 ? 2 : 1, second = 6 - l - first;
    /* The first follower never gets the notice (cut off from the second too). */
    cut[first][second] = cut[second][first] = true;
    crash(l);
    raft_msg_t m = released_msg(l, second, term);
    cr_assert_eq(raft_step(nodes[second].r, &m), 0);
    deliver_all();
    cr_assert_eq(raft_role(nodes[second].r), RAFT_FOLLOWER, "stood before its turn");
    cut[first][second] = cut[second][first] = false;
    crash(first); /* and is gone: the second stands alone, and cannot win, but it stands */
    int t = 0;
    while (t < E && raft_role(nodes[second].r) == RAFT_FOLLOWER) {
        tick_all(1);
        t++;
    }
    cr_assert_eq(raft_role(nodes[second].r), RAFT_CANDIDATE, "did not stand");
    cr_assert_leq(t, HB, "stood after %d ticks, not a stagger (%d) after the notice", t, HB);
}

Test(lease, a_released_notice_for_another_term_or_leader_or_from_a_non_leader_is_ignored)
{
    setup_cluster(3, 3);
    int l = elect();
    tick_all(HB);
    uint64_t term = raft_term(nodes[l].r);
    int f = l == 1 ? 2 : 1, g = 6 - l - f;
    uint64_t dropped = raft_dropped(nodes[f].r);
    raft_msg_t stale = released_msg(l, f, term - 1), future = released_msg(l, f, term + 1),
               other = released_msg(g, f, term);
    cr_assert_eq(raft_step(nodes[f].r, &stale), 0);
    cr_assert_eq(raft_step(nodes[f].r, &future), 0);
    cr_assert_eq(raft_step(nodes[f].r, &other), 0);
    raft_msg_t to_leader = released_msg(f, l, term);
    cr_assert_eq(raft_step(nodes[l].r, &to_leader), 0);
    deliver_all();
    tick_all(2 * HB);
    cr_assert_eq(leader_of_cluster(), l, "a stale, future or forged notice moved leadership");
    cr_assert_eq(raft_term(nodes[f].r), term, "a notice changed the term");
    cr_assert_eq(raft_dropped(nodes[f].r), dropped + 3);
}

Test(lease, failed_transfer_steps_down_and_a_leader_returns)
{
    setup_cluster(3, 3);
    int l = elect();
    tick_all(HB);
    int t = l == 3 ? 2 : 3;
    crash(t);
    cr_assert_eq(raft_transfer(nodes[l].r, (uint64_t)t, 0), 0);
    tick_all(E + 1);
    cr_assert_neq(raft_role(nodes[l].r), RAFT_LEADER);
    elect();
}

TestSuite(read_index, .fini = teardown_cluster);

Test(read_index, read_completes_after_a_quorum_round)
{
    setup_cluster(3, 3);
    int l = elect();
    tick_all(1);
    cr_assert_eq(raft_read_index(nodes[l].r, 7), 0);
    deliver_all();
    cr_assert_eq(nodes[l].n_reads, 1);
    cr_assert_eq(nodes[l].reads[0].ctx, 7);
    cr_assert_eq(nodes[l].reads[0].index, raft_commit_index(nodes[l].r));
    int f = l == 1 ? 2 : 1;
    cr_assert_eq(raft_read_index(nodes[f].r, 8), RAFT_ENOTLEADER);
}

Test(read_index, read_waits_while_the_leader_is_cut_off_and_fails_when_deposed)
{
    setup_cluster(3, 3);
    int l = elect();
    tick_all(1);
    for (int i = 1; i <= 3; i++)
        cut[l][i] = cut[i][l] = true;
    cr_assert_eq(raft_read_index(nodes[l].r, 9), 0);
    tick_all(1);
    cr_assert_eq(nodes[l].n_reads, 0, "read served without a quorum");
    tick_all(3 * E);
    cr_assert_eq(nodes[l].n_reads, 1);
    cr_assert_eq(nodes[l].reads[0].index, 0, "deposed leader's read did not fail");
}

TestSuite(membership, .fini = teardown_cluster);

static void wait_applied_everywhere(int ticks)
{
    for (int t = 0; t < ticks; t++)
        tick_all(1);
}

Test(membership, learner_added_promoted_and_leader_removed)
{
    setup_cluster(4, 3);
    int l = elect();
    tick_all(1);
    uint64_t idx;
    cr_assert_eq(raft_propose_conf(nodes[l].r, RAFT_CONF_ADD_LEARNER, 4, "n4", &idx), 0);
    cr_assert_eq(raft_propose_conf(nodes[l].r, RAFT_CONF_PROMOTE, 4, NULL, &idx), RAFT_EBUSY);
    wait_applied_everywhere(3 * HB);
    cr_assert_eq(raft_conf(nodes[4].r)->n, 4);
    cr_assert_eq(raft_conf_voters(raft_conf(nodes[4].r)), 3);
    cr_assert_eq(raft_last_index(nodes[4].r), raft_last_index(nodes[l].r));
    cr_assert_eq(raft_propose_conf(nodes[l].r, RAFT_CONF_PROMOTE, 4, NULL, &idx), 0);
    wait_applied_everywhere(3 * HB);
    cr_assert_eq(raft_conf_voters(raft_conf(nodes[l].r)), 4);
    /* Remove the leader itself: a new leader follows at once through a handover. */
    cr_assert_eq(raft_propose_conf(nodes[l].r, RAFT_CONF_REMOVE, (uint64_t)l, NULL, &idx), 0);
    wait_applied_everywhere(3 * HB);
    int l2 = leader_of_cluster();
    cr_assert(l2 != 0 && l2 != l, "no new leader after the leader removed itself");
    cr_assert_eq(raft_conf_voters(raft_conf(nodes[l2].r)), 3);
    propose(l2, "after");
    tick_all(HB + 1);
    for (int i = 1; i <= 4; i++)
        if (i != l)
            cr_assert_eq(nodes[i].applied, nodes[l2].applied);
}

static void take_snapshot(int id)
{
    node_t *nd = &nodes[id];
    memset(nd->snapdata, 0xab, sizeof(nd->snapdata));
    memcpy(nd->snapdata, &nd->applied_sum, sizeof(nd->applied_sum));
    uint64_t size = 100;
    cr_assert_eq(raft_compact(nd->r, nd->applied, size, 2), 0);
    nd->snap = *raft_snapshot(nd->r);
    /* Drop the compacted part of the durable log too. */
    uint64_t first = raft_first_index(nd->r);
    uint64_t old_first = nd->log[0].index;
    size_t drop = (size_t)(first - old_first);
    memmove(nd->log, nd->log + drop, (nd->n_log - drop) * sizeof(nd->log[0]));
    memmove(nd->logdata, nd->logdata + drop, (nd->n_log - drop) * sizeof(nd->logdata[0]));
    nd->n_log -= drop;
    for (size_t i = 0; i < nd->n_log; i++)
        nd->log[i].data = nd->logdata[i];
}

Test(membership, a_new_member_catches_up_through_a_chunked_snapshot)
{
    setup_cluster(4, 3);
    int l = elect();
    for (int i = 0; i < 30; i++)
        propose(l, "s");
    tick_all(HB + 1);
    take_snapshot(l);
    cr_assert_gt(raft_first_index(nodes[l].r), 2);
    uint64_t idx;
    cr_assert_eq(raft_propose_conf(nodes[l].r, RAFT_CONF_ADD_LEARNER, 4, "n4", &idx), 0);
    wait_applied_everywhere(4 * E);
    cr_assert_eq(nodes[4].snap.index, nodes[l].snap.index, "snapshot not installed");
    cr_assert_eq(nodes[4].snap.size, 100);
    cr_assert_eq(memcmp(nodes[4].snapdata, nodes[l].snapdata, 100), 0);
    cr_assert_eq(nodes[4].applied, nodes[l].applied);
    cr_assert_eq(nodes[4].applied_sum, nodes[l].applied_sum);
    cr_assert_eq(raft_conf(nodes[4].r)->n, 4);
}

Test(membership, restart_replays_persisted_state)
{
    setup_cluster(3, 3);
    int l = elect();
    for (int i = 0; i < 5; i++)
        propose(l, "r");
    tick_all(HB + 1);
    int f = l == 1 ? 2 : 1;
    uint64_t term = raft_term(nodes[f].r), last = raft_last_index(nodes[f].r);
    crash(f);
    boot_node(f, true);
    cr_assert_eq(raft_term(nodes[f].r), term);
    cr_assert_eq(raft_last_index(nodes[f].r), last);
    process(f);
    tick_all(HB + 1);
    cr_assert_eq(leader_of_cluster(), l);
    propose(l, "again");
    tick_all(HB + 1);
    cr_assert_eq(nodes[f].applied, nodes[l].applied);
}

Test(membership, a_follower_that_lost_its_log_is_caught_up_again)
{
    /* Not Raft's failure model (acknowledged entries are assumed durable), but an operator
     * who wipes a data directory must get a working node back, by snapshot if need be. */
    setup_cluster(3, 3);
    int l = elect();
    for (int i = 0; i < 30; i++)
        propose(l, "w");
    tick_all(HB + 1);
    take_snapshot(l);
    int f = l == 1 ? 2 : 1;
    crash(f);
    node_t *nd = &nodes[f];
    memset(&nd->hs, 0, sizeof(nd->hs));
    memset(&nd->snap, 0, sizeof(nd->snap));
    nd->n_log = 0;
    nd->applied = 0;
    nd->applied_sum = 0;
    boot_node(f, true);
    wait_applied_everywhere(4 * E);
    cr_assert_eq(nodes[f].applied, nodes[l].applied, "wiped follower was not caught up");
    cr_assert_eq(nodes[f].applied_sum, nodes[l].applied_sum);
    cr_assert_eq(nodes[f].snap.index, nodes[l].snap.index, "caught up without the snapshot");
}

Test(replication, a_snapshot_matching_the_log_keeps_the_entries_after_it)
{
    /* Raft Figure 13, rule 6 (a simulator finding): a follower must not drop entries it
     * acknowledged because a snapshot ending earlier, at an entry it holds, arrives late. */
    raft_entry_t log[10];
    uint8_t byte = 'x';
    for (int i = 0; i < 10; i++)
        log[i] = (raft_entry_t){.term = 2, .index = (uint64_t)i + 1, .len = 1, .data = &byte};
    raft_conf_t conf = {.n = 3};
    for (int i = 0; i < 3; i++) {
        conf.members[i].id = (uint64_t)i + 1;
        conf.members[i].voter = 1;
    }
    raft_boot_t b = {
        .hs = {.term = 2, .vote = 1, .commit = 3}, .conf = conf, .entries = log, .n_entries = 10};
    raft_config_t cfg = config_for(2);
    raft_t *r = NULL;
    cr_assert_eq(raft_open(&cfg, &b, NULL, &r), 0);
    uint8_t data[4] = {1, 2, 3, 4};
    raft_msg_t snap = {.type = RAFT_MSG_SNAPSHOT,
                       .from = 1,
                       .to = 2,
                       .term = 2,
                       .index = 7,
                       .log_term = 2,
                       .snap_size = 4,
                       .len = 4,
                       .data = data,
                       .conf = &conf,
                       .flags = RAFT_FLAG_LAST};
    cr_assert_eq(raft_step(r, &snap), 0);
    cr_assert_eq(raft_last_index(r), 10, "acknowledged entries were dropped");
    cr_assert_eq(raft_commit_index(r), 7);
    raft_ready_t rd;
    cr_assert_eq(raft_ready_get(r, &rd), 0);
    cr_assert(rd.chunk == NULL, "a redundant snapshot was installed");
    cr_assert_eq(rd.n_msgs, 1);
    cr_assert_eq(rd.msgs[0].type, RAFT_MSG_SNAPSHOT_RESP);
    cr_assert_eq(rd.msgs[0].hint, 4, "the leader was not told the snapshot is done");
    raft_advance(r);
    raft_close(r);
}

/* ---- sessions (the basis of named elections; raft.h "Sessions") ---------------------------- */

TestSuite(session, .fini = teardown_cluster);

static bool session_valid(int id)
{
    return nodes[id].up && raft_now(nodes[id].r) < raft_session_until(nodes[id].r);
}

/* A cluster of n voters with sessions of `ticks` ticks, a leader elected and every member
 * renewed once; returns the leader. */
static int session_cluster(uint32_t ticks, int n)
{
    session_ticks = ticks;
    setup_cluster(n, n);
    int l = elect();
    tick_all(2 * HB);
    return l;
}

/* Cuts leader l off from everyone, lets it tick until its next heartbeat round, and returns
 * (a copy of) the heartbeat to f that echoes f's latest session stamp. */
static qmsg_t catch_echo(int l, int f)
{
    for (int i = 1; i <= n_nodes; i++)
        cut[l][i] = true;
    for (int t = 0; t < HB; t++)
        raft_tick(nodes[l].r);
    process(l);
    qmsg_t echo;
    bool found = false;
    for (size_t i = 0; i < q_n; i++)
        if (queue[i].m.type == RAFT_MSG_HEARTBEAT && queue[i].m.to == (uint64_t)f &&
            queue[i].m.hint != 0)
            echo = queue[i], found = true;
    cr_assert(found, "no heartbeat echoing a session stamp");
    return echo; /* the caller points m.entries at its own copy's ents */
}

Test(session, the_leader_renews_every_members_session_and_expires_a_cut_off_one_after_it_ended)
{
    session_ticks = 2 * E;
    setup_cluster(3, 3);
    raft_config_t cfg = config_for(1);
    uint32_t x = raft_session_expire_ticks(&cfg);
    cr_assert_eq(x, (2 * E * 105 + 94) / 95 + 2, "expiry %u", x);
    int l = elect();
    tick_all(2 * HB);
    for (int i = 1; i <= 3; i++) {
        cr_assert(session_valid(i), "node %d holds no session", i);
        cr_assert_not(raft_session_expired(nodes[l].r, (uint64_t)i));
    }
    /* Cut one follower off: its session lapses by itself; the leader says so only later. */
    int f = l % 3 + 1;
    for (int i = 1; i <= 3; i++)
        cut[i][f] = cut[f][i] = true;
    int lapsed_at = -1, expired_at = -1;
    for (int t = 0; t < (int)x + 2 * HB && expired_at < 0; t++) {
        tick_all(1);
        if (lapsed_at < 0 && !session_valid(f))
            lapsed_at = t;
        if (raft_session_expired(nodes[l].r, (uint64_t)f)) {
            expired_at = t;
            cr_assert_not(session_valid(f), "expired by the leader while still valid");
        }
        for (int i = 1; i <= 3; i++)
            if (i != f)
                cr_assert(session_valid(i), "a connected member lost its session");
    }
    cr_assert_geq(lapsed_at, 0);
    cr_assert_geq(expired_at, 0, "the leader never expired the cut-off member");
    cr_assert_lt(lapsed_at, expired_at);
    cr_assert_leq(lapsed_at, 2 * E + HB);
    /* Healed: heard again, renewed again. */
    memset(cut, 0, sizeof(cut));
    tick_all(2 * HB);
    cr_assert(session_valid(f));
    cr_assert_not(raft_session_expired(nodes[l].r, (uint64_t)f));
}

/* Crashes the leader of a fresh session cluster and waits for a successor; returns it, with
 * the ticks from the crash and how long the dead leader's own session still had to run. */
static int crash_leader_for_successor(int l, uint64_t *ticks, uint64_t *left)
{
    *left = raft_session_until(nodes[l].r) - raft_now(nodes[l].r);
    crash(l);
    int l2 = 0;
    *ticks = 0;
    for (int t = 0; t < 4 * E && l2 == 0; t++, (*ticks)++) {
        tick_all(1);
        for (int i = 1; i <= 3; i++)
            if (i != l)
                cr_assert(session_valid(i), "node %d lost its session during the election", i);
        for (int i = 1; i <= 3; i++)
            if (i != l && nodes[i].up && raft_role(nodes[i].r) == RAFT_LEADER)
                l2 = i;
    }
    cr_assert_neq(l2, 0, "no new leader");
    return l2;
}

Test(
    session,
    a_leader_change_keeps_the_survivors_sessions_and_counts_the_dead_leaders_expiry_from_its_voters_contact)
{
    session_ticks = 4 * E; /* longer than an election here (timeouts in [E, 2E)) */
    setup_cluster(3, 3);
    int l = elect();
    tick_all(2 * HB);
    uint64_t ticks, left;
    int l2 = crash_leader_for_successor(l, &ticks, &left);
    cr_assert_geq(left, session_ticks - 2 * HB, "the leader's own session was not renewed");
    uint64_t office = raft_now(nodes[l2].r);
    raft_config_t cfg = config_for(1);
    uint32_t x = raft_session_expire_ticks(&cfg);
    /* The dead leader's session: declared over only once it is over, but counted from when
     * the voters last heard it (about the crash), not from the new leader's office. */
    for (int t = 0; t < (int)x + 2 * HB && !raft_session_expired(nodes[l2].r, (uint64_t)l); t++) {
        tick_all(1);
        ticks++;
    }
    cr_assert(raft_session_expired(nodes[l2].r, (uint64_t)l));
    cr_assert_gt(ticks, left, "expired after %" PRIu64 " ticks, its session ran %" PRIu64, ticks,
                 left);
    cr_assert_lt(raft_now(nodes[l2].r), office + x - HB, "counted from office");
    for (int i = 1; i <= 3; i++)
        if (i != l)
            cr_assert(session_valid(i));
}

Test(session, a_voter_that_cannot_tell_its_last_contact_makes_the_new_leader_count_from_office)
{
    session_ticks = 4 * E;
    setup_cluster(3, 3);
    int l = elect();
    tick_all(2 * HB);
    /* A follower restarts cut off from the leader: it has heard no leader in this run, and
     * its vote says so; the leader then dies. Whoever wins needs that vote. */
    int f = l % 3 + 1;
    crash(f);
    boot_node(f, true);
    cut[l][f] = cut[f][l] = true;
    crash(l);
    int l2 = 0;
    for (int t = 0; t < 8 * E && l2 == 0; t++) {
        tick_all(1);
        for (int i = 1; i <= 3; i++)
            if (i != l && nodes[i].up && raft_role(nodes[i].r) == RAFT_LEADER)
                l2 = i;
    }
    cr_assert_neq(l2, 0, "no new leader");
    uint64_t office = raft_now(nodes[l2].r);
    raft_config_t cfg = config_for(1);
    uint32_t x = raft_session_expire_ticks(&cfg);
    for (int t = 0; t < (int)x + 2 * HB && !raft_session_expired(nodes[l2].r, (uint64_t)l); t++)
        tick_all(1);
    cr_assert(raft_session_expired(nodes[l2].r, (uint64_t)l));
    cr_assert_geq(raft_now(nodes[l2].r), office + x - HB, "not counted from office");
}

Test(session, a_restarted_member_holds_none_and_ignores_echoes_of_its_previous_run)
{
    int l = session_cluster(2 * E, 3);
    int f = l % 3 + 1;
    cr_assert(session_valid(f));
    /* Catch the leader's next heartbeat to f, which echoes a stamp of f's current run. */
    qmsg_t echo = catch_echo(l, f);
    crash(f);
    boot_node(f, true);
    cr_assert_eq(raft_session_until(nodes[f].r), 0, "a restarted node starts with a session");
    /* A heartbeat from before the restart carries the old run's nonce: it renews nothing,
     * even when its stamp reads as a tick of the new run. */
    for (uint64_t t = 0; t < echo.m.hint; t++)
        raft_tick(nodes[f].r);
    echo.m.entries = echo.ents;
    cr_assert_eq(raft_step(nodes[f].r, &echo.m), 0);
    cr_assert_eq(raft_session_until(nodes[f].r), 0, "renewed by an echo of the previous run");
    memset(cut, 0, sizeof(cut));
    q_n = 0;
    tick_all(3 * HB);
    cr_assert(session_valid(f), "not renewed once heard again");
}

Test(session, off_by_default)
{
    setup_cluster(3, 3);
    int l = elect();
    tick_all(2 * HB);
    for (int i = 1; i <= 3; i++)
        cr_assert_eq(raft_session_until(nodes[i].r), 0);
    crash(l % 3 + 1);
    tick_all(10 * E);
    cr_assert_not(raft_session_expired(nodes[l].r, (uint64_t)(l % 3 + 1)));
}

/* ---- sessions and the commit index: what a renewal stands for (raft.h "Sessions") -------- */

static uint64_t match_of(int leader, int id)
{
    raft_progress_t pr[RAFT_MAX_MEMBERS];
    size_t n = raft_progress(nodes[leader].r, pr, RAFT_MAX_MEMBERS);
    for (size_t i = 0; i < n; i++)
        if (pr[i].id == (uint64_t)id)
            return pr[i].match;
    cr_assert_fail("node %d has no progress row on %d", id, leader);
    return 0;
}

static uint64_t commit_term(int id)
{
    uint64_t term = 0;
    cr_assert_eq(raft_entry_term(nodes[id].r, raft_commit_index(nodes[id].r), &term), 0);
    return term;
}

Test(session, a_new_leader_renews_nothing_before_its_term_start_entry_commits)
{
    /* Five voters: the new leader's term-start entry reaches one follower only, so that
     * follower holds everything committed (its match is the leader's whole log) while the
     * entry cannot commit; heartbeats pass, so the new leader holds a lease. */
    int l = session_cluster(4 * E, 5);
    int t = l % 5 + 1, f = t % 5 + 1;
    if (f == l)
        f = f % 5 + 1;
    for (int i = 1; i <= 5; i++)
        no_append[t][i] = i != f;
    cr_assert_eq(raft_transfer(nodes[l].r, (uint64_t)t, RAFT_FLAG_STOPPED), 0);
    deliver_all();
    cr_assert_eq(leader_of_cluster(), t);
    uint64_t term = raft_term(nodes[t].r);
    uint64_t until = raft_session_until(nodes[t].r), index = raft_session_index(nodes[t].r);
    memset(echoes, 0, sizeof(echoes));
    bool leased = false;
    for (int k = 0; k < 3 * HB; k++) {
        tick_all(1);
        leased = leased || raft_lease_valid(nodes[t].r);
    }
    cr_assert(leased, "the new leader never held a lease");
    cr_assert_lt(commit_term(t), term, "the term-start entry committed");
    cr_assert_geq(match_of(t, f), raft_commit_index(nodes[t].r));
    cr_assert_eq(raft_session_until(nodes[t].r), until, "renewed its own session");
    cr_assert_eq(raft_session_index(nodes[t].r), index);
    for (int i = 1; i <= 5; i++)
        cr_assert_eq(echoes[t][i], 0, "echoed node %d's stamp", i);
    /* Once the entry of its term commits, its commit index covers its predecessors'. */
    memset(no_append, 0, sizeof(no_append));
    tick_all(2 * HB);
    cr_assert_eq(commit_term(t), term);
    cr_assert_gt(raft_session_until(nodes[t].r), until);
    cr_assert_geq(raft_session_index(nodes[t].r), raft_last_index(nodes[l].r));
    for (int i = 1; i <= 5; i++)
        if (i != t)
            cr_assert_gt(echoes[t][i], 0, "node %d not renewed", i);
}

Test(session, a_member_without_the_leaders_term_start_entry_is_not_renewed)
{
    /* Whatever earlier leaders committed precedes the new leader's term-start entry: a
     * renewal must come with it, so a member that lacks it is not renewed. */
    int l = session_cluster(4 * E, 3);
    int t = l % 3 + 1, g = t % 3 + 1;
    uint64_t start = raft_last_index(nodes[l].r) + 1; /* where t's term-start entry goes */
    no_append[t][g] = true;
    cr_assert_eq(raft_transfer(nodes[l].r, (uint64_t)t, RAFT_FLAG_STOPPED), 0);
    deliver_all();
    cr_assert_eq(leader_of_cluster(), t);
    uint64_t term = raft_term(nodes[t].r);
    memset(echoes, 0, sizeof(echoes));
    uint64_t until = raft_session_until(nodes[g].r);
    tick_all(3 * HB);
    cr_assert_eq(commit_term(t), term, "committed with the third member");
    cr_assert_lt(match_of(t, g), start);
    cr_assert_eq(echoes[t][g], 0, "renewal offered without the term-start entry");
    cr_assert_eq(raft_session_until(nodes[g].r), until);
    cr_assert_gt(echoes[t][6 - t - g], 0);
    /* Once it holds the entry, it is renewed with it. */
    memset(no_append, 0, sizeof(no_append));
    tick_all(3 * HB);
    cr_assert_gt(echoes[t][g], 0);
    cr_assert_gt(raft_session_until(nodes[g].r), until);
    cr_assert_geq(raft_session_index(nodes[g].r), start);
}

Test(session, a_member_slightly_slower_than_the_others_keeps_its_session_under_steady_writes)
{
    /* Writes commit with the fast follower's acknowledgements; the slow one's arrive a tick
     * later, so at every heartbeat it lacks the newest committed entry. It holds everything
     * that could move its elections (there is no hold on it), so it must stay renewed. */
    int l = session_cluster(2 * E, 3);
    int b = l % 3 + 1, a = b % 3 + 1;
    slow[b][l] = true;
    bool lagged = false;
    for (int t = 0; t < 4 * (int)session_ticks; t++) {
        char cmd[16];
        snprintf(cmd, sizeof(cmd), "w%d", t);
        uint64_t idx = propose(l, cmd);
        lagged = lagged || (raft_commit_index(nodes[l].r) >= idx && match_of(l, b) < idx);
        tick_all(1);
        cr_assert(session_valid(b), "the slow member lost its session after %d writes", t + 1);
        cr_assert(session_valid(a));
    }
    cr_assert(lagged, "the slow member never lacked a committed entry");
    cr_assert_geq(raft_session_index(nodes[b].r), raft_commit_index(nodes[l].r) - 2);
}

Test(session, a_hold_stops_renewal_until_the_member_holds_the_index_and_it_is_committed)
{
    /* Five voters, so that the member can hold the index while it is not yet committed. */
    int l = session_cluster(2 * E, 5);
    int f = l % 5 + 1;
    uint64_t idx = raft_last_index(nodes[l].r) + 1;
    raft_session_hold(nodes[l].r, (uint64_t)f, idx);
    raft_session_hold(nodes[l].r, (uint64_t)f, idx - 1); /* a lower index changes nothing */
    raft_session_hold(nodes[l].r, 99, idx);              /* no such member: nothing */
    raft_session_hold(nodes[f].r, (uint64_t)l, idx);     /* not the leader: nothing */
    /* 1. The member holds everything committed, but not the index. */
    memset(echoes, 0, sizeof(echoes));
    uint64_t until = raft_session_until(nodes[f].r);
    tick_all(3 * HB);
    cr_assert_eq(match_of(l, f), raft_commit_index(nodes[l].r));
    cr_assert_eq(echoes[l][f], 0, "renewal offered before the member holds the index");
    cr_assert_eq(raft_session_until(nodes[f].r), until);
    for (int i = 1; i <= 5; i++)
        if (i != f && i != l)
            cr_assert_gt(echoes[l][i], 0, "the hold stopped node %d's renewal", i);
    cr_assert(session_valid(l));
    /* 2. It holds the index, which is not committed: only l and f have it. */
    for (int i = 1; i <= 5; i++)
        no_append[l][i] = i != f;
    cr_assert_eq(propose(l, "move"), idx);
    tick_all(3 * HB);
    cr_assert_geq(match_of(l, f), idx);
    cr_assert_lt(raft_commit_index(nodes[l].r), idx);
    cr_assert_eq(echoes[l][f], 0, "renewal offered before the index committed");
    cr_assert_eq(raft_session_until(nodes[f].r), until);
    /* 3. Committed: renewed, and the renewal carries the index. */
    memset(no_append, 0, sizeof(no_append));
    tick_all(3 * HB);
    cr_assert_geq(raft_commit_index(nodes[l].r), idx);
    cr_assert_gt(echoes[l][f], 0);
    cr_assert_gt(raft_session_until(nodes[f].r), until);
    cr_assert(session_valid(f));
    cr_assert_geq(raft_session_index(nodes[f].r), idx);
}

Test(session, a_member_removed_and_added_again_in_the_term_stays_held)
{
    /* The hold lives on the member's progress row, which its removal drops: a member added
     * while leading is held at everything proposed by then. Here f lacks a long stretch of
     * log, the move that was held against it, and its removal; added back, it catches up a
     * few appends per tick. */
    int l = session_cluster(2 * E, 4);
    int f = l % 4 + 1;
    no_append[l][f] = true;
    char fill[61];
    memset(fill, 'f', 60);
    fill[60] = '\0';
    for (int i = 0; i < 60; i++)
        propose(l, fill);
    uint64_t idx = raft_last_index(nodes[l].r) + 1;
    raft_session_hold(nodes[l].r, (uint64_t)f, idx);
    cr_assert_eq(propose(l, "move"), idx);
    uint64_t ci = 0;
    cr_assert_eq(raft_propose_conf(nodes[l].r, RAFT_CONF_REMOVE, (uint64_t)f, NULL, &ci), 0);
    tick_all(HB);
    cr_assert_geq(raft_commit_index(nodes[l].r), ci);
    cr_assert_eq(raft_propose_conf(nodes[l].r, RAFT_CONF_ADD_LEARNER, (uint64_t)f, "nf", &ci), 0);
    tick_all(HB);
    cr_assert_geq(raft_commit_index(nodes[l].r), ci);
    cr_assert_lt(raft_last_index(nodes[f].r), idx);
    memset(no_append, 0, sizeof(no_append));
    slow[f][l] = true;
    uint64_t until = raft_session_until(nodes[f].r);
    bool between = false;
    for (int t = 0; t < 20 * HB && raft_session_until(nodes[f].r) == until; t++) {
        tick_all(1);
        uint64_t match = match_of(l, f);
        between = between || (match > 0 && match < idx);
    }
    cr_assert(between, "the member never held only part of the log");
    cr_assert_gt(raft_session_until(nodes[f].r), until, "never renewed");
    cr_assert_geq(raft_session_index(nodes[f].r), idx, "renewed before it held the move");
}

Test(session, a_member_takes_no_renewal_whose_commit_index_it_does_not_hold)
{
    int l = session_cluster(2 * E, 3);
    int f = l % 3 + 1;
    /* Catch the leader's next heartbeat to f: it echoes f's latest stamp, not yet renewed. */
    qmsg_t echo = catch_echo(l, f);
    memset(cut, 0, sizeof(cut));
    cr_assert_eq(echo.m.commit, raft_commit_index(nodes[f].r));
    uint64_t until = raft_session_until(nodes[f].r), index = raft_session_index(nodes[f].r);
    /* The same echo, claiming a commit index beyond what f holds: no renewal. */
    qmsg_t ahead = echo;
    ahead.m.entries = ahead.ents;
    ahead.m.commit = raft_last_index(nodes[f].r) + 1;
    cr_assert_eq(raft_step(nodes[f].r, &ahead.m), 0);
    cr_assert_eq(raft_session_until(nodes[f].r), until, "renewed above its own commit index");
    cr_assert_eq(raft_session_index(nodes[f].r), index);
    cr_assert_eq(raft_step(nodes[f].r, &echo.m), 0);
    cr_assert_gt(raft_session_until(nodes[f].r), until);
    cr_assert_eq(raft_session_index(nodes[f].r), echo.m.commit);
}

/* ---- forwarded proposals (raft_forward, RAFT_MSG_PROPOSE) ---------------------------------- */

TestSuite(forward, .fini = teardown_cluster);

static uint64_t sum_of(const char *s)
{
    uint64_t sum = 0;
    for (; *s; s++)
        sum += (uint8_t)*s;
    return sum;
}

Test(forward, on_the_leader_it_proposes)
{
    setup_cluster(3, 3);
    int l = elect();
    tick_all(1);
    uint64_t index = 0, last = raft_last_index(nodes[l].r), before = nodes[l].applied_sum;
    bool forwarded = true;
    cr_assert_eq(raft_forward(nodes[l].r, "abc", 3, &index, &forwarded), 0);
    cr_assert_not(forwarded);
    cr_assert_eq(index, last + 1);
    deliver_all();
    for (int i = 1; i <= 3; i++) {
        cr_assert_geq(nodes[i].applied, index, "node %d", i);
        cr_assert_eq(nodes[i].applied_sum, before + sum_of("abc"), "node %d", i);
    }
}

Test(forward, a_follower_sends_one_propose_that_the_leader_appends)
{
    setup_cluster(3, 3);
    int l = elect();
    tick_all(1);
    int f = l % 3 + 1;
    uint64_t index = 99, last = raft_last_index(nodes[l].r), before = nodes[l].applied_sum;
    bool forwarded = false;
    cr_assert_eq(raft_forward(nodes[f].r, "fwd", 3, &index, &forwarded), 0);
    cr_assert(forwarded);
    cr_assert_eq(index, 0);
    cr_assert_eq(raft_last_index(nodes[f].r), last, "the follower appended it itself");
    process(f);
    size_t proposes = 0;
    for (size_t i = 0; i < q_n; i++) {
        const raft_msg_t *m = &queue[i].m;
        if (m->type != RAFT_MSG_PROPOSE)
            continue;
        proposes++;
        cr_assert_eq(m->from, (uint64_t)f);
        cr_assert_eq(m->to, (uint64_t)l);
        cr_assert_eq(m->term, raft_term(nodes[f].r));
        cr_assert_eq(m->index, 0);
        cr_assert_eq(m->n_entries, 1);
        cr_assert_eq(queue[i].ents[0].type, RAFT_ENTRY_NORMAL);
        cr_assert_eq(queue[i].ents[0].index, 1);
        cr_assert_eq(queue[i].ents[0].len, 3);
        cr_assert_arr_eq(queue[i].data[0], "fwd", 3);
    }
    cr_assert_eq(proposes, 1);
    deliver_all();
    cr_assert_eq(raft_last_index(nodes[l].r), last + 1);
    const raft_entry_t *e = raft_entry_at(nodes[l].r, last + 1);
    cr_assert_not_null(e);
    cr_assert_eq(e->term, raft_term(nodes[l].r));
    cr_assert_eq(e->type, RAFT_ENTRY_NORMAL);
    cr_assert_arr_eq(e->data, "fwd", 3);
    for (int i = 1; i <= 3; i++)
        cr_assert_eq(nodes[i].applied_sum, before + sum_of("fwd"), "node %d", i);
}

Test(forward, without_a_known_leader_it_fails_and_sends_nothing)
{
    setup_cluster(3, 3);
    uint64_t index = 7;
    bool forwarded = true;
    cr_assert_eq(raft_forward(nodes[1].r, "x", 1, &index, &forwarded), RAFT_ENOTLEADER);
    cr_assert_not(forwarded);
    cr_assert_eq(index, 0);
    int l = elect();
    tick_all(1);
    int f = l % 3 + 1;
    char big[1];
    cr_assert_eq(raft_forward(nodes[f].r, big, RAFT_ENTRY_MAX + 1, NULL, &forwarded), RAFT_ETOOBIG);
    cr_assert_eq(raft_forward(nodes[f].r, NULL, 3, NULL, &forwarded), RAFT_EINVAL);
    cr_assert_not(forwarded);
    process(f);
    for (size_t i = 0; i < q_n; i++)
        cr_assert_neq(queue[i].m.type, RAFT_MSG_PROPOSE);
}

Test(forward, malformed_proposes_are_dropped_and_counted)
{
    setup_cluster(3, 3);
    int l = elect();
    tick_all(1);
    int f = l % 3 + 1;
    uint64_t term = raft_term(nodes[l].r), last = raft_last_index(nodes[l].r);
    uint8_t cmd[] = "cmd";
    raft_entry_t one = {.term = term, .index = 1, .type = RAFT_ENTRY_NORMAL, .len = 3, .data = cmd};
    raft_entry_t two[2] = {one, one};
    raft_entry_t noop = one, conf = one, at2 = one, nodata = one;
    noop.type = RAFT_ENTRY_NOOP;
    conf.type = RAFT_ENTRY_CONF;
    at2.index = 2;
    nodata.data = NULL;
    raft_msg_t base = {
        .type = RAFT_MSG_PROPOSE, .from = (uint64_t)f, .to = (uint64_t)l, .term = term};
    raft_msg_t cases[7];
    for (size_t i = 0; i < 7; i++)
        cases[i] = base;
    cases[0].n_entries = 0, cases[0].entries = &one; /* no entry */
    cases[1].n_entries = 2, cases[1].entries = two;
    cases[2].n_entries = 1, cases[2].entries = &noop;
    cases[3].n_entries = 1, cases[3].entries = &conf;
    cases[4].n_entries = 1, cases[4].entries = &one, cases[4].index = 5;
    cases[5].n_entries = 1, cases[5].entries = &at2;
    cases[6].n_entries = 1, cases[6].entries = &nodata;
    uint64_t dropped = raft_dropped(nodes[l].r);
    for (size_t i = 0; i < 7; i++) {
        cr_assert_eq(raft_step(nodes[l].r, &cases[i]), 0, "case %zu", i);
        cr_assert_eq(raft_dropped(nodes[l].r), dropped + i + 1, "case %zu not counted", i);
        cr_assert_eq(raft_last_index(nodes[l].r), last, "case %zu was appended", i);
        cr_assert_eq(raft_role(nodes[l].r), RAFT_LEADER);
    }
    /* A well-formed one sent to a follower is not for it: dropped too. */
    int g = f % 3 + 1;
    if (g == l)
        g = g % 3 + 1;
    raft_msg_t to_follower = base;
    to_follower.from = (uint64_t)g;
    to_follower.to = (uint64_t)f;
    to_follower.n_entries = 1, to_follower.entries = &one;
    uint64_t fdropped = raft_dropped(nodes[f].r), flast = raft_last_index(nodes[f].r);
    cr_assert_eq(raft_step(nodes[f].r, &to_follower), 0);
    cr_assert_eq(raft_dropped(nodes[f].r), fdropped + 1);
    cr_assert_eq(raft_last_index(nodes[f].r), flast);
    /* And the well-formed one is appended by the leader. */
    raft_msg_t ok = base;
    ok.n_entries = 1, ok.entries = &one;
    cr_assert_eq(raft_step(nodes[l].r, &ok), 0);
    cr_assert_eq(raft_last_index(nodes[l].r), last + 1);
    cr_assert_eq(raft_dropped(nodes[l].r), dropped + 7);
}
