/* sim.c — the simulator's scheduler: simulated real time, per-node skewed clocks, a lossy
 * network, fault and workload actions drawn from one seeded PRNG, and the checks after every
 * event (see sim.h). Nothing here reads a real clock or the global rand(): a run is a pure
 * function of its options.
 */
#include "sim.h"
#include "sim_node.h"

#include <assert.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

#define MAX_NODES        (5 + SIM_SPARES_MAX) /* ids 1..MAX_NODES */
#define TICK_US          10000u               /* one tick = 10 ms of local clock */
#define ELECTION_TICKS   10u
#define SESSION_TICKS    (2u * ELECTION_TICKS) /* as the daemon: twice the election timeout */
#define EVENT_CAP        2000000u              /* bound on events of one schedule */
#define READS_MAX        64u                   /* outstanding ReadIndex requests tracked */
#define DEFERRED_MAX     4096u                 /* messages queued for a paused node */
#define HEAL_BOUND_TICKS (20u * ELECTION_TICKS)
#define CHECK_EVERY      16u /* events between full log checks */
/* Named elections: the simulator's own fenced command, ASSIGN(election, holder, expect):
 * "sim-asgn", election (1 byte), holder id (1 byte), expected token (8 bytes, host order) */
#define ASSIGN_MAGIC "sim-asgn"
#define ASSIGN_LEN   18u

enum ev_type {
    EV_MSG = 1,
    EV_ACTION,
    EV_RELEASE,
    EV_RESUME,
    EV_RESTART,
    EV_HEAL,
    EV_BOUNCE,
    EV_CAMPAIGN,
    EV_UNBLOCK,
    EV_DISK_OK
};

typedef struct event {
    uint64_t t;
    uint64_t seq;
    uint8_t type;
    uint8_t node;
    uint32_t gen;
    uint8_t aux;
    raft_msg_t *m;
} event_t;

typedef struct snode {
    sim_node_t n;
    bool exists;
    bool paused;
    int64_t drift_ppm; /* clock rate: one tick takes TICK_US * (1 + drift) real us */
    uint64_t start_us; /* real time of the core's start (tick 0) */
    uint64_t ticks;    /* ticks delivered since start */
    uint64_t restarts;
    uint32_t hold_gen;
    raft_msg_t **deferred;
    size_t n_deferred;
    /* The daemon's quiet leader (node_batch.c, hold_update): while raft_quiet and no message
     * but an echo came for an election timeout, what members send waits for its next tick. */
    bool reads_held;
    uint64_t stirred_us; /* real time of the last message other than an echo */
    raft_msg_t **parked;
    size_t n_parked;
    raft_role_t last_role;
    uint64_t last_term;
    uint64_t heard_tick;           /* node's tick count when it last got a message from a leader */
    uint64_t session_end_us;       /* latest real time its session (and so a named election's
                                      workload under its watchdog) may last, across crashes */
    uint64_t ghost_lease_until_us; /* crashed leader: its workload ran until then (its shim
                                      killed it), under the lease of ghost_lease_term */
    uint64_t ghost_lease_term;
    /* named elections */
    uint64_t ghost_until[SIM_ELECTIONS_MAX]; /* a crashed run's workload, killed by its
                                                watchdog at this real time */
    uint64_t ghost_token[SIM_ELECTIONS_MAX];
    uint64_t assign_index[SIM_ELECTIONS_MAX]; /* leader: its last move of each election */
    uint64_t assign_term;                     /* ... proposed in this term */
} snode_t;

typedef struct pending_read {
    uint64_t ctx;
    uint64_t floor;
} pending_read_t;

typedef enum action {
    ACT_PROPOSE,
    ACT_BURST,
    ACT_PARTITION,
    ACT_ONEWAY,
    ACT_ISOLATE_LEADER,
    ACT_HEAL_NET,
    ACT_CRASH,
    ACT_CRASH_LEADER,
    ACT_RESTART,
    ACT_BOUNCE,
    ACT_PAUSE,
    ACT_TRANSFER,
    ACT_CONF,
    ACT_READ,
    ACT_NETWORK,
    ACT_CAMPAIGN,
    ACT_LEADER_MINORITY,
    ACT_CUT_BOUNCE,
    ACT_HOLDER_CUT,
    ACT_DISK_FAULT,
    ACT_COUNT
} action_t;

static const char *const action_names[ACT_COUNT] = {
    "propose",  "burst",           "partition",    "oneway",     "isolate-leader",
    "heal-net", "crash",           "crash-leader", "restart",    "bounce",
    "pause",    "transfer",        "conf",         "read",       "network",
    "campaign", "leader-minority", "cut-bounce",   "holder-cut", "disk-fault"};

/* Relative weights of the actions per mode. */
static const unsigned weights[SIM_MODE_COUNT][ACT_COUNT] = {
    /*                  prop burst part 1way isoL heal crash crL rest bnc pause xfer conf read net
       camp minor cutb */
    [SIM_MODE_MIXED] = {25, 4, 5, 5, 3, 8, 4, 2, 8, 3, 3, 4, 6, 6, 4, 1, 2, 1},
    [SIM_MODE_CRASHY] = {8, 14, 2, 1, 4, 8, 2, 14, 16, 3, 1, 1, 1, 1, 0, 8, 12, 0},
    [SIM_MODE_LEASE] = {15, 2, 2, 4, 6, 15, 1, 1, 5, 6, 8, 3, 1, 8, 1, 1, 1, 30},
    [SIM_MODE_FIGURE8] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0},
    [SIM_MODE_ELECTIONS] = {10, 2, 1, 1, 1, 4, 1, 1, 4, 1, 2, 2, 1, 4, 2, 0, 0, 0},
};

/* The holder-cut attack's weight per mode, only when named elections are modelled: without
 * them every mode draws exactly as before the model, so recorded seeds replay. */
static const unsigned holder_cut_weights[SIM_MODE_COUNT] = {
    [SIM_MODE_MIXED] = 3, [SIM_MODE_CRASHY] = 2, [SIM_MODE_LEASE] = 3, [SIM_MODE_ELECTIONS] = 30};

/* The disk fault's weight per mode, unless turned off: off, every mode draws exactly as before
 * the fault existed, so recorded seeds replay. None in the Figure 8 script, nor in the
 * holder-cut attack's mode, whose rare catches (test_sim_mutations) rest on its seeds. */
static const unsigned disk_fault_weights[SIM_MODE_COUNT] = {
    [SIM_MODE_MIXED] = 2, [SIM_MODE_CRASHY] = 2, [SIM_MODE_LEASE] = 2};

/* The holder-cut attack's phases (act_holder_cut). */
enum { HC_IDLE, HC_CUT, HC_RETURN };

typedef struct sim {
    sim_options_t o;
    sim_result_t *res;
    uint64_t rng;
    uint64_t shim_rng; /* the released-lease model's own draws (crash_node) */
    sim_check_t chk;
    snode_t nodes[MAX_NODES + 1];
    int n_voters, n_total, mode, n_elections;
    /* schedule parameters */
    uint32_t heartbeat_ticks, drift_ppm, jitter_ticks;
    uint64_t snap_every, snap_keep;
    unsigned drop_pct, dup_pct, long_pct, hold_pct;
    uint64_t delay_min_us, delay_max_us, long_max_us;
    uint64_t action_min_us, action_max_us;
    bool blocked[MAX_NODES + 1][MAX_NODES + 1];
    /* time and events */
    event_t *heap;
    size_t heap_n, heap_cap;
    uint64_t now, seq, events, proposals;
    uint64_t quiet_until; /* a lease attack is under way: no log growth, no transfers */
    /* FIGURE8 script: phase, the nodes playing L (old leader), M (leader hidden at once),
     * W (leader that re-replicates L's entry), the entry X = (xidx, xterm), side mask */
    int f8_phase;
    uint64_t f8_l, f8_m, f8_w, f8_xidx, f8_xterm, f8_mterm, f8_side, f8_deadline;
    /* phases */
    bool healed, done;
    uint64_t heal_at, deadline;
    uint64_t marker_index, marker_term, marker_seq;
    /* named elections: the holder-cut attack (act_holder_cut), appends held back per link
     * (until a real time), and who ran each election last */
    int hc_phase;
    uint64_t hc_node, hc_deadline;
    uint64_t bulk_until[MAX_NODES + 1][MAX_NODES + 1];
    uint64_t last_runner[SIM_ELECTIONS_MAX];
    /* reads */
    pending_read_t reads[READS_MAX];
    size_t reads_next;
    uint64_t read_seq;
} sim_t;

/* The schedule in progress, for the crash report. */
static volatile uint64_t crash_seed;
static volatile int crash_active, crash_nodes, crash_spares, crash_mode;
static volatile uint32_t crash_mutation;

/* ---- randomness ----------------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [0, n) (n > 0) */
static uint64_t rnd(sim_t *s, uint64_t n)
{
    return n ? splitmix(&s->rng) % n : 0;
}

static uint64_t rnd_range(sim_t *s, uint64_t lo, uint64_t hi)
{
    return lo + rnd(s, hi - lo + 1);
}

static bool chance(sim_t *s, unsigned pct)
{
    return rnd(s, 100) < pct;
}

/* ---- trace ---------------------------------------------------------------------------- */

static void trace(sim_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void trace(sim_t *s, const char *fmt, ...)
{
    if (s->o.trace == NULL)
        return;
    fprintf(s->o.trace, "%10.3fms ", (double)s->now / 1000.0);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(s->o.trace, fmt, ap);
    va_end(ap);
    fputc('\n', s->o.trace);
}

/* ---- event heap ----------------------------------------------------------------------- */

static bool ev_less(const event_t *a, const event_t *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void push_event(sim_t *s, event_t e);

static void push(sim_t *s, uint64_t t, uint8_t type, uint8_t node, uint32_t gen, raft_msg_t *m)
{
    push_event(s, (event_t){.t = t, .type = type, .node = node, .gen = gen, .m = m});
}

static void push_aux(sim_t *s, uint64_t t, uint8_t type, uint8_t node, uint32_t gen, uint8_t aux)
{
    push_event(s, (event_t){.t = t, .type = type, .node = node, .gen = gen, .aux = aux});
}

static void push_event(sim_t *s, event_t e)
{
    if (s->heap_n == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 256;
        event_t *p = realloc(s->heap, cap * sizeof(*p));
        if (p == NULL)
            abort();
        s->heap = p;
        s->heap_cap = cap;
    }
    e.seq = s->seq++;
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ev_less(&e, &s->heap[parent]))
            break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = e;
}

static event_t pop(sim_t *s)
{
    assert(s->heap_n > 0);
    event_t top = s->heap[0];
    event_t last = s->heap[--s->heap_n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const event_t *best = &last;
        if (l < s->heap_n && ev_less(&s->heap[l], best)) {
            m = l;
            best = &s->heap[l];
        }
        if (r < s->heap_n && ev_less(&s->heap[r], best))
            m = r;
        if (m == i)
            break;
        s->heap[i] = s->heap[m];
        i = m;
    }
    if (s->heap_n > 0)
        s->heap[i] = last;
    return top;
}

/* ---- clocks and leases ------------------------------------------------------------------ */

/* Real time at which node x's local clock reads `tick` ticks. */
static uint64_t tick_time(const snode_t *x, uint64_t tick)
{
    return x->start_us + tick * TICK_US * (uint64_t)(1000000 + x->drift_ppm) / 1000000u;
}

static bool alive(const snode_t *x)
{
    return x->exists && x->n.r != NULL;
}

static void lease_of(const sim_t *s, const snode_t *x, sim_lease_t *l)
{
    memset(l, 0, sizeof(*l));
    l->node = x->n.id;
    if (!alive(x) || raft_role(x->n.r) != RAFT_LEADER)
        return;
    uint64_t until = raft_lease_until(x->n.r);
    if (until == 0)
        return;
    l->term = raft_term(x->n.r);
    l->until_us = tick_time(x, until);
    l->valid = s->now < l->until_us;
}

/* ---- checks --------------------------------------------------------------------------- */

static void view_of(snode_t *x, sim_log_view_t *v)
{
    v->node = x->n.id;
    v->first = raft_first_index(x->n.r);
    v->last = raft_last_index(x->n.r);
    v->ctx = &x->n;
    v->entry = sim_node_entry;
}

static void check_leader_log(sim_t *s, snode_t *x)
{
    sim_log_view_t v;
    view_of(x, &v);
    sim_check_leader_log(&s->chk, raft_term(x->n.r), &v);
}

static void check_logs(sim_t *s)
{
    for (int i = 1; i <= s->n_total; i++) {
        snode_t *a = &s->nodes[i];
        if (!alive(a))
            continue;
        if (raft_role(a->n.r) == RAFT_LEADER)
            check_leader_log(s, a);
        for (int j = i + 1; j <= s->n_total; j++) {
            snode_t *b = &s->nodes[j];
            if (!alive(b))
                continue;
            sim_log_view_t va, vb;
            view_of(a, &va);
            view_of(b, &vb);
            sim_check_log_matching(&s->chk, &va, &vb);
        }
    }
}

static void fig8_observe(sim_t *s, snode_t *x);

/* After node x handled an input: note leadership and commit progress. */
static void observe(sim_t *s, snode_t *x)
{
    if (!alive(x))
        return;
    raft_t *r = x->n.r;
    raft_role_t role = raft_role(r);
    uint64_t term = raft_term(r);
    if (term > s->res->max_term)
        s->res->max_term = term;
    if (role == RAFT_LEADER) {
        sim_check_leader(&s->chk, term, x->n.id, s->now);
        if (x->last_role != RAFT_LEADER || x->last_term != term) {
            trace(s, "n%" PRIu64 " leads term %" PRIu64 " (last %" PRIu64 ", commit %" PRIu64 ")",
                  x->n.id, term, raft_last_index(r), raft_commit_index(r));
            check_leader_log(s, x);
        }
        sim_check_commit(&s->chk, term, raft_commit_index(r));
    } else if (x->last_role != role || x->last_term != term) {
        trace(s, "n%" PRIu64 " is %s in term %" PRIu64, x->n.id, raft_role_name(role), term);
    }
    x->last_role = role;
    x->last_term = term;
    sim_check_log_end(&s->chk, x->n.id, term, raft_last_index(r), s->now);
    if (s->mode == SIM_MODE_FIGURE8)
        fig8_observe(s, x);
    if (x->n.err[0] != '\0')
        sim_check_fail(&s->chk, SIM_V_CONTRACT, "%s", x->n.err);
}

/* Session safety: whatever a leader with a valid lease declares over has ended, in real
 * time, on the member — also on one that crashed or restarted since, whose watchdog keeps the
 * last deadline it was given — and on the leader itself, when it declares its own session
 * over (it then moves its own elections away, as any member's). */
static void check_sessions(sim_t *s)
{
    for (int i = 1; i <= s->n_total; i++) {
        snode_t *x = &s->nodes[i];
        if (!alive(x))
            continue;
        uint64_t until = raft_session_until(x->n.r);
        if (until != 0 && tick_time(x, until) > x->session_end_us)
            x->session_end_us = tick_time(x, until);
    }
    for (int i = 1; i <= s->n_total; i++) {
        snode_t *l = &s->nodes[i];
        /* A paused node's clock has not been delivered its ticks yet: it acts on nothing
         * until it resumes, and then its missed ticks come first (as in the daemon). */
        if (!alive(l) || l->paused || !raft_lease_valid(l->n.r))
            continue;
        for (int j = 1; j <= s->n_total; j++) {
            snode_t *m = &s->nodes[j];
            if (m->exists && raft_session_expired(l->n.r, m->n.id))
                sim_check_session(&s->chk, s->now, l->n.id, m->n.id, m->session_end_us);
        }
    }
}

/* ---- named elections -------------------------------------------------------------------- */

/* A member's elections table: the state its `applied` hook keeps in sim_node_t.app. */
typedef struct etable {
    uint64_t holder[SIM_ELECTIONS_MAX]; /* node id; 0 = none */
    uint64_t token[SIM_ELECTIONS_MAX];  /* fencing token: rises on every change of holder */
} etable_t;
_Static_assert(sizeof(etable_t) <= SIM_APP_BYTES, "the table fits the app state");

static void table_of(const sim_node_t *n, etable_t *t)
{
    memcpy(t, n->app, sizeof(*t));
}

/* What the daemon will do: a member runs election e while its table (applied at least up to
 * its session's commit index) says it holds e and its session is valid — judged by its own
 * clock in real time, as its watchdog does, so a paused member stops on time. */
static bool runs_now(const sim_t *s, const snode_t *x, int e, uint64_t *until_us, uint64_t *token)
{
    if (!alive(x))
        return false;
    etable_t t;
    table_of(&x->n, &t);
    uint64_t until = raft_session_until(x->n.r);
    if (t.holder[e] != x->n.id || until == 0 || x->n.applied < raft_session_index(x->n.r))
        return false;
    *until_us = tick_time(x, until);
    *token = t.token[e];
    return s->now < *until_us;
}

/* Named election safety: at no instant do two members run one election — a crashed member
 * counts as running what it ran until its watchdog's deadline. Runs start only at events (an
 * entry applied, a renewal taken) and end at session ends, so checking at every event instant
 * finds every overlap. */
static void check_elections(sim_t *s)
{
    for (int e = 0; e < s->n_elections; e++) {
        sim_runner_t runs[2 * MAX_NODES];
        size_t n = 0;
        for (int i = 1; i <= s->n_total; i++) {
            snode_t *x = &s->nodes[i];
            uint64_t until, token;
            if (runs_now(s, x, e, &until, &token))
                runs[n++] = (sim_runner_t){.node = x->n.id, .token = token, .until_us = until};
            if (x->ghost_until[e] > s->now)
                runs[n++] = (sim_runner_t){.node = x->n.id,
                                           .token = x->ghost_token[e],
                                           .until_us = x->ghost_until[e],
                                           .crashed = true};
        }
        sim_check_election_runs(&s->chk, s->now, (uint32_t)e, runs, n);
        if (n > 0 && runs[0].node != s->last_runner[e]) {
            if (s->last_runner[e] != 0)
                s->res->election_moves++;
            trace(s, "election %d runs on n%" PRIu64 " (token %" PRIu64 ")", e, runs[0].node,
                  runs[0].token);
            s->last_runner[e] = runs[0].node;
        }
    }
}

static void check_leases(sim_t *s)
{
    sim_lease_t leases[2 * MAX_NODES];
    size_t n = 0;
    for (int i = 1; i <= s->n_total; i++) {
        snode_t *x = &s->nodes[i];
        lease_of(s, x, &leases[n++]);
        if (s->now < x->ghost_lease_until_us) /* a previous run's, whatever this one holds */
            leases[n++] = (sim_lease_t){.node = x->n.id,
                                        .term = x->ghost_lease_term,
                                        .until_us = x->ghost_lease_until_us,
                                        .valid = true};
    }
    sim_check_leases(&s->chk, s->now, leases, n);
}

/* ---- the node driver ------------------------------------------------------------------ */

static void net_send(void *ctx, sim_node_t *n, const raft_msg_t *m);
static bool fig8_on_send(sim_t *s, snode_t *from);
static void on_applied(void *ctx, sim_node_t *n, const raft_entry_t *e, uint64_t digest);
static void on_installed(void *ctx, sim_node_t *n, const raft_snapshot_meta_t *meta,
                         uint64_t digest);
static void on_read(void *ctx, sim_node_t *n, const raft_read_t *rd);

static void hooks_of(sim_t *s, sim_node_hooks_t *h)
{
    h->ctx = s;
    h->send = net_send;
    h->applied = on_applied;
    h->installed = on_installed;
    h->read = on_read;
}

static const char *const disk_fault_names[] = {"ok", "disk full", "fsync error"};

/* Processes x's held batch. A disk fault fails its persist: the batch stays held and is
 * retried after a while (the daemon retries every 100 ms), nothing of it leaves the node. */
static void process_held(sim_t *s, snode_t *x)
{
    sim_node_hooks_t h;
    hooks_of(s, &h);
    if (x->n.disk_fault == SIM_DISK_FSYNC)
        x->n.fsync_lands = chance(s, 50);
    if (sim_node_process(&x->n, &h) == SIM_NODE_EDISK) {
        s->res->disk_failures++;
        trace(s, "n%" PRIu64 " persist failed (%s%s); batch kept, retried later", x->n.id,
              disk_fault_names[x->n.disk_fault], x->n.persisted ? ", the write landed" : "");
        x->hold_gen++;
        push(s, s->now + rnd_range(s, TICK_US, 5 * TICK_US), EV_RELEASE, (uint8_t)x->n.id,
             x->hold_gen, NULL);
        return;
    }
    if (x->n.disk_fault != SIM_DISK_OK && x->n.ack_unpersisted && x->n.rd.n_entries > 0) {
        s->res->disk_failures++;
        trace(s, "n%" PRIu64 " persist failed (%s); batch sent anyway (--ack-unpersisted)", x->n.id,
              disk_fault_names[x->n.disk_fault]);
    }
    sim_node_advance(&x->n, s->snap_every, s->snap_keep);
}

/* A node's disk fills up or its fsyncs fail for 1-30 ticks; when it recovers the node is
 * sometimes restarted too (an operator freeing space and restarting the daemon). */
static void act_disk_fault(sim_t *s, snode_t *x)
{
    if (x->n.disk_fault != SIM_DISK_OK)
        return;
    x->n.disk_fault = chance(s, 50) ? SIM_DISK_FULL : SIM_DISK_FSYNC;
    trace(s, "n%" PRIu64 " disk fault: %s", x->n.id, disk_fault_names[x->n.disk_fault]);
    push(s, s->now + rnd_range(s, TICK_US, 3 * ELECTION_TICKS * TICK_US), EV_DISK_OK,
         (uint8_t)x->n.id, 0, NULL);
}

/* Handles every ready batch of x; in the fault phase a batch is sometimes left unprocessed for
 * a while (a slow disk): the core keeps running, and a crash meanwhile loses the batch. */
/* What a quiet leader held goes on the wire again, to arrive now. */
static void reads_release(sim_t *s, snode_t *x)
{
    for (size_t i = 0; i < x->n_parked; i++)
        push(s, s->now, EV_MSG, (uint8_t)x->n.id, 0, x->parked[i]);
    x->n_parked = 0;
}

static void reads_hold_update(sim_t *s, snode_t *x)
{
    bool hold = alive(x) && !x->paused && raft_quiet(x->n.r) &&
                s->now - x->stirred_us >= (uint64_t)ELECTION_TICKS * TICK_US;
    if (hold == x->reads_held)
        return;
    x->reads_held = hold;
    raft_set_rotation(x->n.r, hold);
    if (!hold)
        reads_release(s, x);
}

static void drive(sim_t *s, snode_t *x)
{
    for (int round = 0; round < 1000 && alive(x) && sim_node_take(&x->n); round++) {
        if (!s->healed && chance(s, s->hold_pct)) {
            x->hold_gen++;
            push(s, s->now + rnd_range(s, TICK_US / 10, 2 * TICK_US), EV_RELEASE, (uint8_t)x->n.id,
                 x->hold_gen, NULL);
            return;
        }
        process_held(s, x);
    }
    reads_hold_update(s, x);
}

static void core_err(sim_t *s, snode_t *x, const char *what, int rc)
{
    if (rc != 0)
        sim_check_fail(&s->chk, SIM_V_CONTRACT, "node %" PRIu64 ": %s returned %s", x->n.id, what,
                       raft_strerror(rc));
}

static void holder_returns(sim_t *s, snode_t *l, uint64_t h);

/* The daemon's named-election controller, cut down to what safety rests on: the leader, while
 * its lease is valid, moves each election that has no holder, or whose holder's session it
 * proves over (raft_session_expired), to a member whose session it does not, with a fenced
 * ASSIGN decided on its own applied table; and it holds the old holder's renewal until that
 * holder holds the move, committed (raft_session_hold). */
static void elections_lead(sim_t *s, snode_t *x)
{
    raft_t *r = x->n.r;
    if (s->n_elections == 0 || !raft_lease_valid(r))
        return;
    if (x->assign_term != raft_term(r)) {
        memset(x->assign_index, 0, sizeof(x->assign_index));
        x->assign_term = raft_term(r);
    }
    etable_t t;
    table_of(&x->n, &t);
    const raft_conf_t *c = raft_conf(r);
    for (int e = 0; e < s->n_elections; e++) {
        if (x->assign_index[e] > x->n.applied)
            continue; /* its last move of e is not applied here yet */
        uint64_t h = t.holder[e];
        if (h != 0 && !raft_session_expired(r, h))
            continue;
        uint64_t cand[RAFT_MAX_MEMBERS];
        uint32_t nc = 0;
        for (uint32_t i = 0; i < c->n; i++) {
            uint64_t id = c->members[i].id;
            if (id != h && id >= 1 && id <= (uint64_t)s->n_total && !raft_session_expired(r, id))
                cand[nc++] = id;
        }
        if (nc == 0)
            continue;
        uint64_t to = cand[rnd(s, nc)];
        uint8_t data[ASSIGN_LEN];
        memcpy(data, ASSIGN_MAGIC, 8);
        data[8] = (uint8_t)e;
        data[9] = (uint8_t)to;
        memcpy(data + 10, &t.token[e], 8);
        uint64_t index;
        if (raft_propose(r, data, sizeof(data), &index) != 0)
            continue; /* e.g. transferring: next tick */
        x->assign_index[e] = index;
        trace(s,
              "n%" PRIu64 " moves election %d from n%" PRIu64 " (0: none) to n%" PRIu64
              " (token %" PRIu64 ") at %" PRIu64,
              x->n.id, e, h, to, t.token[e], index);
        if (h != 0) {
            raft_session_hold(r, h, index);
            holder_returns(s, x, h);
        }
    }
}

/* raft_tick_due's contract, which lets the daemon sleep between due ticks: a tick before
 * it never makes the core ready. */
static void check_tick_due(sim_t *s, snode_t *x, bool quiet)
{
    const raft_t *r = x->n.r;
    uint64_t due = raft_tick_due(r);
    if (due <= raft_now(r))
        sim_check_fail(&s->chk, SIM_V_CONTRACT,
                       "node %" PRIu64 ": raft_tick_due %" PRIu64 " is not after now %" PRIu64,
                       x->n.id, due, raft_now(r));
    if (quiet && raft_has_ready(r))
        sim_check_fail(&s->chk, SIM_V_CONTRACT,
                       "node %" PRIu64 ": tick %" PRIu64 ", before the due tick, made it ready",
                       x->n.id, raft_now(r));
}

static void deliver(sim_t *s, snode_t *x, raft_msg_t *m);

static void do_tick(sim_t *s, snode_t *x)
{
    x->ticks++;
    const raft_t *r = x->n.r;
    bool quiet = !x->n.held && !raft_has_ready(r) && raft_now(r) + 1 < raft_tick_due(r);
    /* The daemon drains the held connections at its tick, those of the members it sent its
     * last round (node_tick_cb, echo_due), chosen before the ticks due reach the core. */
    bool due[256] = {false};
    for (size_t i = 0; x->reads_held && i < x->n_parked; i++)
        due[(uint8_t)x->parked[i]->from] = raft_round_sent_to(r, x->parked[i]->from);
    uint64_t in_turn = raft_rounds_in_turn(r);
    core_err(s, x, "raft_tick", raft_tick(x->n.r));
    s->res->rounds_in_turn += raft_rounds_in_turn(r) - in_turn;
    check_tick_due(s, x, quiet);
    if (x->reads_held) {
        /* Their messages reach the core after the ticks (node_clock); the others wait on, in
         * order. Taken off the node first: a delivery may end the hold (drive), which
         * releases what is parked. Nothing is parked meanwhile (messages arrive as events). */
        raft_msg_t **parked = x->parked;
        size_t n = x->n_parked, kept = 0;
        x->parked = NULL;
        x->n_parked = 0;
        for (size_t i = 0; i < n; i++) {
            raft_msg_t *m = parked[i];
            if (!due[(uint8_t)m->from]) {
                parked[kept++] = m;
                continue;
            }
            s->res->held_reads++;
            if (alive(x))
                deliver(s, x, m);
            else
                sim_msg_free(m);
        }
        x->parked = parked;
        x->n_parked = kept;
        if (!x->reads_held)
            reads_release(s, x); /* the hold ended meanwhile: what waits is read at once */
    }
    elections_lead(s, x);
    drive(s, x);
}

static void deliver(sim_t *s, snode_t *x, raft_msg_t *m)
{
    if (s->o.trace != NULL)
        trace(s,
              "n%" PRIu64 " <- n%" PRIu64 " %s term %" PRIu64 " index %" PRIu64 " logterm %" PRIu64
              " commit %" PRIu64 " hint %" PRIu64 " ctx %" PRIu64 " n %" PRIu32 " len %" PRIu32
              " flags %x",
              m->to, m->from, raft_msg_type_name(m->type), m->term, m->index, m->log_term,
              m->commit, m->hint, m->ctx, m->n_entries, m->len, m->flags);
    if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_SNAPSHOT)
        x->heard_tick = x->ticks;
    if (m->type != RAFT_MSG_HEARTBEAT_RESP)
        x->stirred_us = s->now;
    raft_set_stamp(x->n.r, s->now);
    core_err(s, x, "raft_step", raft_step(x->n.r, m));
    sim_msg_free(m);
    drive(s, x);
}

static void start_node(sim_t *s, snode_t *x)
{
    x->restarts++;
    uint64_t seed = s->o.seed * 0x100000001b3ull ^ (x->n.id << 32) ^ x->restarts;
    x->start_us = s->now;
    x->ticks = 0;
    x->heard_tick = 0;
    x->paused = false;
    x->last_role = RAFT_FOLLOWER;
    x->last_term = 0;
    int rc = sim_node_start(&x->n, splitmix(&seed));
    if (rc != 0) {
        sim_check_fail(&s->chk, SIM_V_CONTRACT, "node %" PRIu64 ": raft_open failed on restart: %s",
                       x->n.id, raft_strerror(rc));
        return;
    }
    trace(s,
          "n%" PRIu64 " starts (term %" PRIu64 ", snapshot %" PRIu64 ", log %zu, clock %+" PRId64
          " ppm)",
          x->n.id, x->n.hs.term, x->n.snap.index, x->n.log_n, x->drift_ppm);
    drive(s, x);
    observe(s, x);
}

/* The released lease (docs/guarantees.md): a leader's electd dies on a host that lives (half
 * the crashes of a leader; the others are the host, shim and workload included). Its shim kills
 * the workload's group within a tick and only then sends RELEASED to every other member, over
 * the network as it is (partitions, delays). Until the kill the workload runs, under the lease:
 * the lease check counts that as a lease held. RAFT_MUT_RELEASE_EARLY: the shim sends the
 * notice first, and the workload runs on until its watchdog's deadline (the lease's end). */
static void shim_release(sim_t *s, snode_t *x)
{
    if (raft_role(x->n.r) != RAFT_LEADER || splitmix(&s->shim_rng) % 2 == 0)
        return;
    sim_lease_t l;
    lease_of(s, x, &l);
    bool early = s->o.mutation == RAFT_MUT_RELEASE_EARLY;
    uint64_t killed = s->now + splitmix(&s->shim_rng) % TICK_US;
    if (l.valid) {
        x->ghost_lease_term = l.term;
        x->ghost_lease_until_us = early || l.until_us < killed ? l.until_us : killed;
    }
    uint64_t sent = early ? s->now + 1 : killed + 1;
    trace(s,
          "n%" PRIu64 "'s shim: workload killed at %" PRIu64 " us, RELEASED of term %" PRIu64
          " sent at %" PRIu64 " us",
          x->n.id, killed, raft_term(x->n.r), sent);
    for (int j = 1; j <= s->n_total; j++) {
        if (j == (int)x->n.id || !s->nodes[j].exists || s->blocked[x->n.id][j])
            continue;
        raft_msg_t m = {.type = RAFT_MSG_RELEASED,
                        .from = x->n.id,
                        .to = (uint64_t)j,
                        .term = raft_term(x->n.r)};
        uint64_t at = sent + s->delay_min_us + splitmix(&s->shim_rng) % s->delay_max_us;
        push(s, at, EV_MSG, (uint8_t)j, 0, sim_msg_copy(&m));
    }
}

static void crash_node(sim_t *s, snode_t *x)
{
    trace(s, "n%" PRIu64 " crashes%s", x->n.id, x->n.held ? " (losing a held batch)" : "");
    shim_release(s, x);
    /* Its named elections' workloads outlive it, under their watchdogs. */
    for (int e = 0; e < s->n_elections; e++) {
        uint64_t until, token;
        if (runs_now(s, x, e, &until, &token) && until > x->ghost_until[e]) {
            x->ghost_until[e] = until;
            x->ghost_token[e] = token;
            trace(s, "n%" PRIu64 "'s watchdog runs election %d until %" PRIu64 " us", x->n.id, e,
                  until);
        }
    }
    sim_node_crash(&x->n);
    for (size_t i = 0; i < x->n_deferred; i++)
        sim_msg_free(x->deferred[i]);
    x->n_deferred = 0;
    for (size_t i = 0; i < x->n_parked; i++)
        sim_msg_free(x->parked[i]);
    x->n_parked = 0;
    x->reads_held = false;
    x->paused = false;
}

static void resume_node(sim_t *s, snode_t *x)
{
    if (!x->paused)
        return;
    x->paused = false;
    trace(s, "n%" PRIu64 " resumes", x->n.id);
    /* every tick its clock passed while it was stopped, then the queued messages */
    while (alive(x) && tick_time(x, x->ticks + 1) <= s->now)
        do_tick(s, x);
    for (size_t i = 0; i < x->n_deferred; i++) {
        if (alive(x))
            deliver(s, x, x->deferred[i]);
        else
            sim_msg_free(x->deferred[i]);
    }
    x->n_deferred = 0;
    observe(s, x);
}

/* ---- network -------------------------------------------------------------------------- */

static uint64_t delay(sim_t *s)
{
    if (chance(s, s->long_pct))
        return rnd_range(s, s->delay_min_us, s->long_max_us);
    return rnd_range(s, s->delay_min_us, s->delay_max_us);
}

/* Appends and snapshots from one node to another held back for a while (act_holder_cut). */
static bool bulk_cut(const sim_t *s, const raft_msg_t *m)
{
    return (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAPSHOT) &&
           s->now < s->bulk_until[m->from][m->to];
}

static void net_send(void *ctx, sim_node_t *n, const raft_msg_t *m)
{
    sim_t *s = ctx;
    if (m->to == 0 || m->to > (uint64_t)s->n_total || m->from != n->id) {
        sim_check_fail(&s->chk, SIM_V_CONTRACT,
                       "node %" PRIu64 " sent a message from %" PRIu64 " to unknown node %" PRIu64,
                       n->id, m->from, m->to);
        return;
    }
    if (m->type == RAFT_MSG_APPEND_RESP && !(m->flags & RAFT_FLAG_REJECT))
        sim_check_ack(&s->chk, m->from, m->term, m->index);
    if (s->mode == SIM_MODE_FIGURE8 && fig8_on_send(s, &s->nodes[m->from]))
        return;
    if (s->blocked[m->from][m->to] || bulk_cut(s, m) || chance(s, s->drop_pct))
        return;
    push(s, s->now + delay(s), EV_MSG, (uint8_t)m->to, 0, sim_msg_copy(m));
    if (chance(s, s->dup_pct))
        push(s, s->now + delay(s), EV_MSG, (uint8_t)m->to, 0, sim_msg_copy(m));
}

/* ---- state machine hooks -------------------------------------------------------------- */

/* The elections table's state machine: ASSIGN(election, holder, expect) applies only while
 * the election's token is still `expect`, and raises it. */
static void apply_assign(sim_node_t *n, const raft_entry_t *e)
{
    if (e->type != RAFT_ENTRY_NORMAL || e->len != ASSIGN_LEN ||
        memcmp(e->data, ASSIGN_MAGIC, 8) != 0 || e->data[8] >= SIM_ELECTIONS_MAX)
        return;
    etable_t t;
    table_of(n, &t);
    int el = e->data[8];
    uint64_t expect;
    memcpy(&expect, e->data + 10, 8);
    if (t.token[el] != expect)
        return; /* decided on a table that has moved on since */
    t.holder[el] = e->data[9];
    t.token[el] = expect + 1;
    memcpy(n->app, &t, sizeof(t));
}

static void on_applied(void *ctx, sim_node_t *n, const raft_entry_t *e, uint64_t digest)
{
    sim_t *s = ctx;
    apply_assign(n, e);
    uint64_t hash = sim_entry_hash(e->index, e->term, e->type, e->data, e->len);
    sim_check_applied(&s->chk, n->id, raft_term(n->r), e->index, e->term, hash, digest);
    if (e->index > s->res->max_applied)
        s->res->max_applied = e->index;
}

static void on_installed(void *ctx, sim_node_t *n, const raft_snapshot_meta_t *meta,
                         uint64_t digest)
{
    sim_t *s = ctx;
    trace(s, "n%" PRIu64 " installs snapshot %" PRIu64 " term %" PRIu64, n->id, meta->index,
          meta->term);
    sim_check_snapshot(&s->chk, n->id, meta->index, meta->term, digest);
}

static void on_read(void *ctx, sim_node_t *n, const raft_read_t *rd)
{
    sim_t *s = ctx;
    for (size_t i = 0; i < READS_MAX; i++) {
        if (s->reads[i].ctx == rd->ctx && rd->ctx != 0) {
            /* index 0: the core gave the read up (it stopped leading) */
            if (rd->index != 0)
                sim_check_read(&s->chk, n->id, rd->ctx, s->reads[i].floor, rd->index);
            s->reads[i].ctx = 0;
            return;
        }
    }
}

/* ---- actions -------------------------------------------------------------------------- */

/* A node that believes it leads and can take requests now, or NULL. */
static snode_t *find_leader(sim_t *s)
{
    int start = (int)rnd(s, (uint64_t)s->n_total);
    for (int k = 0; k < s->n_total; k++) {
        snode_t *x = &s->nodes[1 + (start + k) % s->n_total];
        if (alive(x) && !x->paused && raft_role(x->n.r) == RAFT_LEADER)
            return x;
    }
    return NULL;
}

static snode_t *pick(sim_t *s, bool want_alive)
{
    int start = (int)rnd(s, (uint64_t)s->n_total);
    for (int k = 0; k < s->n_total; k++) {
        snode_t *x = &s->nodes[1 + (start + k) % s->n_total];
        if (alive(x) == want_alive && !x->paused)
            return x;
    }
    return NULL;
}

/* raft_campaign starts an election whenever it is called. The lease argument assumes a node
 * campaigns (and so votes for itself) only after an election timeout without hearing a
 * leader, as its own timer would; forcing it earlier is a clock running faster than
 * max_drift allows. So the simulator forces campaigns only where the timer could have fired. */
static void campaign(sim_t *s, snode_t *x)
{
    if (x->ticks < ELECTION_TICKS || x->ticks - x->heard_tick < ELECTION_TICKS)
        return;
    int rc = raft_campaign(x->n.r);
    trace(s, "n%" PRIu64 " campaigns: %s", x->n.id, rc ? raft_strerror(rc) : "ok");
}

static void propose(sim_t *s, snode_t *x)
{
    uint8_t data[24];
    uint64_t seq = ++s->proposals;
    memcpy(data, &seq, sizeof(seq));
    memcpy(data + 8, &s->o.seed, sizeof(s->o.seed));
    size_t len = 8 + (size_t)rnd(s, 17);
    memset(data + 16, (int)(seq & 0xff), sizeof(data) - 16);
    uint64_t index = 0;
    int rc = raft_propose(x->n.r, data, len, &index);
    if (rc == 0)
        trace(s, "n%" PRIu64 " proposes #%" PRIu64 " at %" PRIu64, x->n.id, seq, index);
}

static void act_conf(sim_t *s, snode_t *l)
{
    const raft_conf_t *c = raft_conf(l->n.r);
    uint32_t voters = raft_conf_voters(c);
    uint64_t index = 0;
    int rc = 0;
    unsigned what = (unsigned)rnd(s, 3);
    if (what == 0 && c->n < SIM_MEMBERS_MAX) {
        uint64_t cand[MAX_NODES];
        int nc = 0;
        for (int i = 1; i <= s->n_total; i++)
            if (raft_conf_find(c, (uint64_t)i) == NULL)
                cand[nc++] = (uint64_t)i;
        if (nc == 0)
            return;
        uint64_t id = cand[rnd(s, (uint64_t)nc)];
        char addr[16];
        snprintf(addr, sizeof(addr), "n%" PRIu64, id);
        rc = raft_propose_conf(l->n.r, RAFT_CONF_ADD_LEARNER, id, addr, &index);
        trace(s, "n%" PRIu64 " conf add-learner n%" PRIu64 ": %s", l->n.id, id,
              rc ? raft_strerror(rc) : "ok");
    } else if (what == 1) {
        raft_progress_t pr[RAFT_MAX_MEMBERS];
        size_t np = raft_progress(l->n.r, pr, RAFT_MAX_MEMBERS);
        uint64_t last = raft_last_index(l->n.r);
        for (size_t i = 0; i < np; i++) {
            if (pr[i].voter || pr[i].match + 3 < last)
                continue;
            rc = raft_propose_conf(l->n.r, RAFT_CONF_PROMOTE, pr[i].id, NULL, &index);
            trace(s, "n%" PRIu64 " conf promote n%" PRIu64 ": %s", l->n.id, pr[i].id,
                  rc ? raft_strerror(rc) : "ok");
            break;
        }
    } else if (what == 2 && c->n > 0) {
        const raft_member_t *m = &c->members[rnd(s, c->n)];
        if (m->voter && voters < 3)
            return;
        rc = raft_propose_conf(l->n.r, RAFT_CONF_REMOVE, m->id, NULL, &index);
        trace(s, "n%" PRIu64 " conf remove n%" PRIu64 ": %s", l->n.id, m->id,
              rc ? raft_strerror(rc) : "ok");
    }
}

static void act_transfer(sim_t *s, snode_t *l)
{
    const raft_conf_t *c = raft_conf(l->n.r);
    uint64_t target = 0;
    if (c->n > 0 && chance(s, 50)) {
        const raft_member_t *m = &c->members[rnd(s, c->n)];
        if (m->voter && m->id != l->n.id)
            target = m->id;
    }
    int rc = raft_transfer(l->n.r, target, RAFT_FLAG_STOPPED);
    trace(s, "n%" PRIu64 " transfers to n%" PRIu64 ": %s", l->n.id, target,
          rc ? raft_strerror(rc) : "ok");
}

static void act_read(sim_t *s, snode_t *l)
{
    uint64_t ctx = ++s->read_seq;
    uint64_t floor = s->chk.max_applied;
    if (raft_read_index(l->n.r, ctx) != 0)
        return;
    s->reads[s->reads_next] = (pending_read_t){.ctx = ctx, .floor = floor};
    s->reads_next = (s->reads_next + 1) % READS_MAX;
}

static void act_partition(sim_t *s)
{
    uint64_t mask = 0;
    while (mask == 0 || mask == (1ull << s->n_total) - 1)
        mask = rnd(s, 1ull << s->n_total);
    for (int a = 1; a <= s->n_total; a++)
        for (int b = 1; b <= s->n_total; b++)
            if (((mask >> (a - 1)) & 1) != ((mask >> (b - 1)) & 1))
                s->blocked[a][b] = true;
    trace(s, "partition %#" PRIx64 " | rest", mask);
}

/* The voter of l's configuration with the slowest clock (l included). */
static snode_t *slowest_voter(sim_t *s, snode_t *l)
{
    const raft_conf_t *c = raft_conf(l->n.r);
    snode_t *best = NULL;
    for (uint32_t i = 0; i < c->n; i++) {
        uint64_t id = c->members[i].id;
        if (!c->members[i].voter || id == 0 || id > (uint64_t)s->n_total)
            continue;
        snode_t *y = &s->nodes[id];
        if (alive(y) && !y->paused && (best == NULL || y->drift_ppm > best->drift_ppm))
            best = y;
    }
    return best;
}

static void act_isolate(sim_t *s, snode_t *x)
{
    for (int b = 1; b <= s->n_total; b++) {
        s->blocked[x->n.id][b] = true;
        s->blocked[b][x->n.id] = true;
    }
    trace(s, "isolate n%" PRIu64, x->n.id);
    /* The fastest-clocked follower campaigns the moment its own clock allows (an election
     * timeout after it last heard a leader), and again each tick for a few ticks while the
     * others' clocks catch up: the earliest a new leader can appear. The old leader's lease
     * must be over by then. */
    snode_t *f = NULL;
    for (int i = 1; i <= s->n_total; i++) {
        snode_t *y = &s->nodes[i];
        if (y != x && alive(y) && !y->paused && (f == NULL || y->drift_ppm < f->drift_ppm))
            f = y;
    }
    if (f == NULL)
        return;
    for (uint64_t k = 0; k < 4; k++) {
        uint64_t at = tick_time(f, f->heard_tick + ELECTION_TICKS + k) + 1;
        push(s, at > s->now ? at : s->now + 1, EV_CAMPAIGN, (uint8_t)f->n.id, 0, NULL);
    }
}

static void heal_net(sim_t *s)
{
    memset(s->blocked, 0, sizeof(s->blocked));
}

static void act_network(sim_t *s)
{
    static const unsigned drops[] = {0, 0, 1, 5, 20};
    static const unsigned dups[] = {0, 1, 5};
    static const uint64_t maxd[] = {1000, 3000, 6000, 15000};
    s->drop_pct = drops[rnd(s, 5)];
    s->dup_pct = dups[rnd(s, 3)];
    s->delay_max_us = maxd[rnd(s, 4)];
    trace(s, "network drop %u%% dup %u%% delay <= %" PRIu64 " us", s->drop_pct, s->dup_pct,
          s->delay_max_us);
}

/* Raft Figure 8 material: the leader keeps replicating, but only to a minority, so entries
 * of its term spread to some nodes and not others before it crashes or is cut off. */
static void act_leader_minority(sim_t *s, snode_t *l)
{
    uint64_t mask = 1ull << (l->n.id - 1);
    int extra = (s->n_voters - 1) / 2 - (int)rnd(s, 2);
    for (int k = 0; k < extra; k++)
        mask |= 1ull << rnd(s, (uint64_t)s->n_total);
    for (int a = 1; a <= s->n_total; a++)
        for (int b = 1; b <= s->n_total; b++)
            if (((mask >> (a - 1)) & 1) != ((mask >> (b - 1)) & 1))
                s->blocked[a][b] = true;
    trace(s, "leader n%" PRIu64 " cut off with %#" PRIx64, l->n.id, mask);
}

/* Lease attack: cut a minority of followers off from leader l (so they stop hearing it and
 * campaign), then bounce one follower b of the majority the lease counts on, and let a cut-off
 * node campaign right after b restarts. A node that votes right after a restart, or while it
 * still hears a leader, then lets the cut-off side win while l's lease is valid. */
static void act_cut_bounce(sim_t *s, snode_t *l)
{
    const raft_conf_t *conf = raft_conf(l->n.r);
    uint64_t others[RAFT_MAX_MEMBERS];
    uint32_t n = 0;
    for (uint32_t i = 0; i < conf->n; i++)
        if (conf->members[i].voter && conf->members[i].id != l->n.id &&
            conf->members[i].id <= (uint64_t)s->n_total)
            others[n++] = conf->members[i].id;
    if (n < 2)
        return;
    for (uint32_t i = n - 1; i > 0; i--) { /* shuffle */
        uint32_t j = (uint32_t)rnd(s, i + 1);
        uint64_t t = others[i];
        others[i] = others[j];
        others[j] = t;
    }
    /* n/2 cut off: l and the rest are still a majority, and so are the cut-off nodes plus b */
    uint32_t cut = n / 2;
    for (uint32_t i = 0; i < cut; i++) {
        s->blocked[l->n.id][others[i]] = true;
        s->blocked[others[i]][l->n.id] = true;
    }
    uint64_t b = others[cut + (uint32_t)rnd(s, n - cut)];
    uint64_t c = others[rnd(s, cut)];
    /* after the cut-off nodes' election timeout, so that they may campaign */
    uint64_t at =
        s->now + rnd_range(s, (ELECTION_TICKS + 2) * TICK_US * 6 / 5, 2 * ELECTION_TICKS * TICK_US);
    push_aux(s, at, EV_BOUNCE, (uint8_t)b, (uint32_t)c, (uint8_t)l->n.id);
    /* new entries would make the cut-off nodes' logs too old to win: hold proposals */
    s->quiet_until = at + 4 * TICK_US;
    trace(s,
          "cut %" PRIu32 " node(s) from leader n%" PRIu64 ", bounce n%" PRIu64 " later, n%" PRIu64
          " campaigns",
          cut, l->n.id, b, c);
}

/* ---- the Figure 8 script --------------------------------------------------------------- */

enum { F8_IDLE, F8_SPLIT, F8_HIDE, F8_RACE, F8_RETURN };

static void block_all(sim_t *s, uint64_t id)
{
    for (int b = 1; b <= s->n_total; b++) {
        s->blocked[id][b] = true;
        s->blocked[b][id] = true;
    }
}

static void fig8_reset(sim_t *s, const char *why)
{
    trace(s, "figure8: %s; healing", why);
    heal_net(s);
    s->f8_phase = F8_IDLE;
    s->f8_deadline = s->now + 2 * ELECTION_TICKS * TICK_US;
    for (int i = 1; i <= s->n_total; i++)
        if (!alive(&s->nodes[i]))
            start_node(s, &s->nodes[i]);
}

/* Step 1: a stable leader L is cut off (with one partner when there are 5 voters) and takes
 * an entry X that the majority side never sees. */
static void fig8_split(sim_t *s)
{
    snode_t *l = find_leader(s);
    if (l == NULL || raft_commit_index(l->n.r) != raft_last_index(l->n.r) || l->n.held)
        return;
    s->f8_side = 1ull << (l->n.id - 1);
    if (s->n_voters >= 5) {
        const raft_conf_t *c = raft_conf(l->n.r);
        const raft_member_t *m = &c->members[rnd(s, c->n)];
        if (m->voter)
            s->f8_side |= 1ull << (m->id - 1);
    }
    for (int a = 1; a <= s->n_total; a++)
        for (int b = 1; b <= s->n_total; b++)
            if (((s->f8_side >> (a - 1)) & 1) != ((s->f8_side >> (b - 1)) & 1))
                s->blocked[a][b] = true;
    uint8_t data[8] = "fig8-x";
    if (raft_propose(l->n.r, data, sizeof(data), &s->f8_xidx) != 0) {
        heal_net(s);
        return;
    }
    s->f8_l = l->n.id;
    s->f8_xterm = raft_term(l->n.r);
    s->f8_phase = F8_SPLIT;
    s->f8_deadline = s->now + 6 * ELECTION_TICKS * TICK_US;
    trace(s,
          "figure8: n%" PRIu64 " cut off (side %#" PRIx64 ") with entry %" PRIu64 " term %" PRIu64,
          s->f8_l, s->f8_side, s->f8_xidx, s->f8_xterm);
    drive(s, l);
}

/* Step 2: the first thing the majority side's new leader M sends is swallowed and M is cut
 * off, so its own term-start entry (at X's index, newer term) stays on M alone. */
static bool fig8_on_send(sim_t *s, snode_t *from)
{
    if (s->f8_phase != F8_SPLIT || ((s->f8_side >> (from->n.id - 1)) & 1) || !alive(from) ||
        raft_role(from->n.r) != RAFT_LEADER || raft_term(from->n.r) <= s->f8_xterm)
        return false;
    block_all(s, from->n.id);
    s->f8_m = from->n.id;
    s->f8_mterm = raft_term(from->n.r);
    s->f8_phase = F8_HIDE;
    trace(s, "figure8: new leader n%" PRIu64 " (term %" PRIu64 ") hidden", s->f8_m, s->f8_mterm);
    return true;
}

/* Step 4: when a later leader W counts X committed, W is cut off and crashed at once, before
 * its own term's entries can spread; then M comes back. With the rule of Raft §5.4.2 X is
 * committed only once W's term-start entry is on a majority, and M cannot win; without it, M
 * wins and overwrites a committed entry. */
static void fig8_observe(sim_t *s, snode_t *x)
{
    if (s->f8_phase != F8_RACE || x->n.id == s->f8_m || raft_role(x->n.r) != RAFT_LEADER ||
        raft_term(x->n.r) <= s->f8_mterm || raft_commit_index(x->n.r) < s->f8_xidx)
        return;
    s->f8_w = x->n.id;
    trace(s,
          "figure8: n%" PRIu64 " committed %" PRIu64 " in term %" PRIu64
          "; cut off and crashed, n%" PRIu64 " returns",
          s->f8_w, raft_commit_index(x->n.r), raft_term(x->n.r), s->f8_m);
    heal_net(s);
    block_all(s, s->f8_w);
    crash_node(s, x);
    s->f8_phase = F8_RETURN;
    s->f8_deadline = s->now + 4 * ELECTION_TICKS * TICK_US;
    snode_t *m = &s->nodes[s->f8_m];
    if (alive(m))
        push(s, tick_time(m, m->ticks + 1) + 1, EV_CAMPAIGN, (uint8_t)m->n.id, 0, NULL);
}

static void fig8_act(sim_t *s)
{
    switch (s->f8_phase) {
    case F8_IDLE:
        if (s->now >= s->f8_deadline)
            fig8_split(s);
        return;
    case F8_HIDE:
        /* Step 3: everyone but M talks again; L or its partner wins with X, re-replicates it */
        heal_net(s);
        block_all(s, s->f8_m);
        s->f8_phase = F8_RACE;
        s->f8_deadline = s->now + 6 * ELECTION_TICKS * TICK_US;
        trace(s, "figure8: all but n%" PRIu64 " healed", s->f8_m);
        return;
    default:
        if (s->now >= s->f8_deadline)
            fig8_reset(s, "round over");
        return;
    }
}

/* ---- the holder-cut attack (named elections) -------------------------------------------- *
 * A holder's session must not be renewed between the moment the leader proposes to move its
 * elections away and the moment that move is committed and held by the holder: renewed then,
 * it would run its elections on the table it has, while the successor starts them once the
 * move commits. The attack opens that window as wide as the network allows: it cuts a holder h
 * off until the leader proves h's session over and moves h's election (HC_CUT); the moment the
 * move is proposed, h is back, but for a few ticks the leader receives nothing from the other
 * voters but quorum - 2 of them (so the move cannot commit, while h's heartbeat replies keep
 * the leader's lease), and h receives no appends a little longer (so it cannot learn the move
 * even once it commits) (HC_RETURN). */

static void act_holder_cut(sim_t *s)
{
    if (s->n_elections == 0 || s->hc_phase != HC_IDLE)
        return;
    snode_t *l = find_leader(s);
    if (l == NULL || !raft_lease_valid(l->n.r))
        return;
    etable_t t;
    table_of(&l->n, &t);
    int start = (int)rnd(s, (uint64_t)s->n_elections);
    uint64_t h = 0;
    for (int k = 0; k < s->n_elections && h == 0; k++) {
        uint64_t id = t.holder[(start + k) % s->n_elections];
        if (id != 0 && id != l->n.id && id <= (uint64_t)s->n_total && alive(&s->nodes[id]))
            h = id;
    }
    if (h == 0)
        return;
    block_all(s, h);
    s->hc_phase = HC_CUT;
    s->hc_node = h;
    s->hc_deadline = s->now + 8 * ELECTION_TICKS * TICK_US;
    s->quiet_until = s->hc_deadline; /* no log growth: h's match stays the commit index */
    trace(s, "holder n%" PRIu64 " cut off until leader n%" PRIu64 " moves its election", h,
          l->n.id);
}

static void holder_cut_end(sim_t *s, const char *why)
{
    if (s->hc_phase == HC_CUT)
        for (int b = 1; b <= s->n_total; b++)
            s->blocked[s->hc_node][b] = s->blocked[b][s->hc_node] = false;
    s->hc_phase = HC_IDLE;
    s->quiet_until = s->now;
    trace(s, "holder cut over: %s", why);
}

/* Leader l has just proposed moving an election away from h (elections_lead). */
static void holder_returns(sim_t *s, snode_t *l, uint64_t h)
{
    if (s->hc_phase != HC_CUT || h != s->hc_node)
        return;
    for (int b = 1; b <= s->n_total; b++)
        s->blocked[h][b] = s->blocked[b][h] = false;
    const raft_conf_t *c = raft_conf(l->n.r);
    const raft_member_t *hm = raft_conf_find(c, h);
    if (hm != NULL && hm->voter && raft_conf_voters(c) >= 3) {
        uint64_t others[RAFT_MAX_MEMBERS];
        uint32_t n = 0;
        for (uint32_t i = 0; i < c->n; i++) {
            uint64_t id = c->members[i].id;
            if (c->members[i].voter && id != l->n.id && id != h && id <= (uint64_t)s->n_total)
                others[n++] = id;
        }
        uint32_t keep = raft_conf_voters(c) / 2 + 1 - 2; /* quorum - 2 still heard */
        for (uint32_t i = 0; i < n; i++) {
            uint32_t j = i + (uint32_t)rnd(s, n - i);
            uint64_t id = others[j];
            others[j] = others[i];
            others[i] = id;
            if (i >= keep)
                s->blocked[id][l->n.id] = true;
        }
    }
    uint64_t quiet = rnd_range(s, 2, 6), blind = quiet + rnd_range(s, 1, 6);
    s->bulk_until[l->n.id][h] = s->now + blind * TICK_US;
    push(s, s->now + quiet * TICK_US, EV_UNBLOCK, (uint8_t)l->n.id, 0, NULL);
    s->hc_phase = HC_RETURN;
    s->quiet_until = s->now + blind * TICK_US;
    trace(s,
          "holder n%" PRIu64 " back; n%" PRIu64 " hears few voters for %" PRIu64
          " ticks, sends n%" PRIu64 " no appends for %" PRIu64,
          h, l->n.id, quiet, h, blind);
}

static unsigned weight(const sim_t *s, int a)
{
    if (a == ACT_HOLDER_CUT)
        return s->n_elections > 0 ? holder_cut_weights[s->mode] : 0;
    if (a == ACT_DISK_FAULT)
        return s->o.no_disk_faults ? 0 : disk_fault_weights[s->mode];
    return weights[s->mode][a];
}

static action_t choose(sim_t *s)
{
    unsigned total = 0;
    for (int a = 0; a < ACT_COUNT; a++)
        total += weight(s, a);
    unsigned v = (unsigned)rnd(s, total);
    for (int a = 0; a < ACT_COUNT; a++) {
        if (v < weight(s, a))
            return (action_t)a;
        v -= weight(s, a);
    }
    return ACT_PROPOSE;
}

static void act(sim_t *s)
{
    if (s->mode == SIM_MODE_FIGURE8)
        fig8_act(s);
    if (s->hc_phase == HC_CUT && s->now >= s->hc_deadline)
        holder_cut_end(s, "no move in time");
    action_t a = choose(s);
    if (s->now < s->quiet_until && (a == ACT_PROPOSE || a == ACT_BURST || a == ACT_CONF ||
                                    a == ACT_TRANSFER || a == ACT_CUT_BOUNCE || a == ACT_HEAL_NET))
        a = ACT_READ;
    snode_t *x = NULL;
    switch (a) {
    case ACT_PROPOSE:
        if ((x = find_leader(s)) != NULL)
            propose(s, x);
        break;
    case ACT_BURST:
        if ((x = find_leader(s)) != NULL)
            for (uint64_t i = rnd_range(s, 3, 12); i > 0; i--)
                propose(s, x);
        break;
    case ACT_PARTITION:
        act_partition(s);
        break;
    case ACT_ONEWAY: {
        int from = 1 + (int)rnd(s, (uint64_t)s->n_total);
        int to = 1 + (int)rnd(s, (uint64_t)s->n_total);
        if ((x = find_leader(s)) != NULL && chance(s, 50))
            from = (int)x->n.id;
        if (from != to) {
            s->blocked[from][to] = true;
            trace(s, "block n%d -> n%d", from, to);
        }
        break;
    }
    case ACT_ISOLATE_LEADER:
        if ((x = find_leader(s)) == NULL)
            break;
        /* LEASE: the worst case is a slow-clocked leader cut off from fast-clocked followers;
         * move leadership to the slowest voter first */
        if (s->mode == SIM_MODE_LEASE && chance(s, 50)) {
            snode_t *slow = slowest_voter(s, x);
            if (slow != NULL && slow != x) {
                int rc = raft_transfer(x->n.r, slow->n.id, RAFT_FLAG_STOPPED);
                trace(s, "n%" PRIu64 " transfers to slow n%" PRIu64 ": %s", x->n.id, slow->n.id,
                      rc ? raft_strerror(rc) : "ok");
                break;
            }
        }
        act_isolate(s, x);
        break;
    case ACT_HEAL_NET:
        heal_net(s);
        trace(s, "network healed");
        break;
    case ACT_CRASH:
        if ((x = pick(s, true)) != NULL)
            crash_node(s, x);
        break;
    case ACT_CRASH_LEADER:
        if ((x = find_leader(s)) != NULL)
            crash_node(s, x);
        break;
    case ACT_RESTART:
        if ((x = pick(s, false)) != NULL)
            start_node(s, x);
        break;
    case ACT_BOUNCE:
        if ((x = pick(s, true)) != NULL) {
            crash_node(s, x);
            push(s, s->now + rnd(s, 2 * TICK_US), EV_RESTART, (uint8_t)x->n.id, 0, NULL);
        }
        break;
    case ACT_PAUSE:
        if ((x = find_leader(s)) == NULL || chance(s, 50))
            x = pick(s, true);
        if (x != NULL) {
            x->paused = true;
            trace(s, "n%" PRIu64 " paused", x->n.id);
            push(s, s->now + rnd_range(s, TICK_US, 3 * ELECTION_TICKS * TICK_US), EV_RESUME,
                 (uint8_t)x->n.id, 0, NULL);
        }
        break;
    case ACT_TRANSFER:
        if ((x = find_leader(s)) != NULL)
            act_transfer(s, x);
        break;
    case ACT_CONF:
        if ((x = find_leader(s)) != NULL)
            act_conf(s, x);
        break;
    case ACT_READ:
        if ((x = find_leader(s)) != NULL)
            act_read(s, x);
        break;
    case ACT_NETWORK:
        act_network(s);
        break;
    case ACT_CAMPAIGN:
        if ((x = pick(s, true)) != NULL)
            campaign(s, x);
        break;
    case ACT_LEADER_MINORITY:
        if ((x = find_leader(s)) != NULL)
            act_leader_minority(s, x);
        break;
    case ACT_CUT_BOUNCE:
        if ((x = find_leader(s)) != NULL)
            act_cut_bounce(s, x);
        break;
    case ACT_HOLDER_CUT:
        act_holder_cut(s);
        break;
    case ACT_DISK_FAULT:
        if ((x = pick(s, true)) != NULL)
            act_disk_fault(s, x);
        break;
    case ACT_COUNT:
        break;
    }
    if (s->o.trace != NULL && a != ACT_PROPOSE)
        trace(s, "action %s", action_names[a]);
    if (x != NULL && alive(x) && !x->paused) {
        drive(s, x);
        observe(s, x);
    }
}

/* ---- heal phase and liveness ------------------------------------------------------------ */

static void heal(sim_t *s)
{
    trace(s, "heal: network, crashed and paused nodes");
    s->healed = true;
    heal_net(s);
    s->drop_pct = 0;
    s->dup_pct = 0;
    s->long_pct = 0;
    s->delay_max_us = 2000;
    s->heal_at = s->now;
    s->f8_phase = F8_IDLE; /* the script stops cutting links */
    s->f8_deadline = UINT64_MAX;
    s->hc_phase = HC_IDLE;
    memset(s->bulk_until, 0, sizeof(s->bulk_until));
    s->deadline =
        s->now + (uint64_t)HEAL_BOUND_TICKS * TICK_US * (1000000 + s->drift_ppm) / 1000000u;
    for (int i = 1; i <= s->n_total; i++) {
        snode_t *x = &s->nodes[i];
        x->n.disk_fault = SIM_DISK_OK;
        if (!alive(x))
            start_node(s, x);
        else if (x->paused)
            resume_node(s, x);
        if (alive(x) && x->n.held) {
            process_held(s, x);
            drive(s, x);
            observe(s, x);
        }
    }
}

static void liveness(sim_t *s)
{
    snode_t *l = NULL;
    for (int i = 1; i <= s->n_total; i++) {
        sim_lease_t lease;
        lease_of(s, &s->nodes[i], &lease);
        if (lease.valid)
            l = &s->nodes[i];
    }
    if (l == NULL)
        return;
    if (s->marker_index != 0) {
        /* overwritten before it committed (a new leader did not have it): propose again */
        uint64_t term;
        if (sim_check_entry_known(&s->chk, s->marker_index, &term, NULL)) {
            if (term != s->marker_term)
                s->marker_index = 0;
        } else {
            int rc = raft_entry_term(l->n.r, s->marker_index, &term);
            if (rc == RAFT_EUNAVAILABLE || (rc == 0 && term != s->marker_term))
                s->marker_index = 0;
        }
    }
    if (s->marker_index == 0) {
        uint8_t data[16] = "live";
        uint64_t seq = ++s->marker_seq;
        memcpy(data + 8, &seq, sizeof(seq));
        uint64_t index;
        if (raft_propose(l->n.r, data, sizeof(data), &index) == 0) {
            s->marker_index = index;
            s->marker_term = raft_term(l->n.r);
            trace(s, "n%" PRIu64 " proposes the liveness marker at %" PRIu64, l->n.id, index);
            drive(s, l);
            observe(s, l);
        }
        return;
    }
    const raft_conf_t *c = raft_conf(l->n.r);
    for (uint32_t i = 0; i < c->n; i++) {
        uint64_t id = c->members[i].id;
        if (id == 0 || id > (uint64_t)s->n_total)
            return;
        const snode_t *m = &s->nodes[id];
        if (!alive(m) || m->n.applied < s->marker_index)
            return;
    }
    uint64_t term;
    if (!sim_check_entry_known(&s->chk, s->marker_index, &term, NULL) || term != s->marker_term)
        return;
    s->done = true;
    s->res->heal_us = s->now - s->heal_at;
    trace(s,
          "liveness reached: n%" PRIu64 " leads with a lease, marker %" PRIu64
          " applied on all %" PRIu32 " members",
          l->n.id, s->marker_index, c->n);
}

static void liveness_failed(sim_t *s)
{
    char buf[SIM_CHECK_MSG_MAX / 2];
    size_t off = 0;
    for (int i = 1; i <= s->n_total && off < sizeof(buf); i++) {
        snode_t *x = &s->nodes[i];
        if (!alive(x))
            continue;
        int w = snprintf(buf + off, sizeof(buf) - off,
                         " n%d:%s/t%" PRIu64 "/commit%" PRIu64 "/applied%" PRIu64, i,
                         raft_role_name(raft_role(x->n.r)), raft_term(x->n.r),
                         raft_commit_index(x->n.r), x->n.applied);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    sim_check_fail(&s->chk, SIM_V_LIVENESS,
                   "%u ticks after healing (t=%" PRIu64 " us): %s (marker %" PRIu64 ");%s",
                   HEAL_BOUND_TICKS, s->now,
                   s->marker_index ? "marker not applied everywhere" : "no leader with a lease",
                   s->marker_index, buf);
}

/* ---- setup and main loop -------------------------------------------------------------- */

static void setup(sim_t *s)
{
    /* Draw every choice even when the options fix it, so that a seed replays the same
     * schedule whether its shape came from the seed or from the command line. */
    int mode = (int)rnd(s, SIM_MODE_ELECTIONS); /* the modes older than named elections */
    int voters = chance(s, 50) ? 3 : 5;
    int spares = (int)rnd(s, SIM_SPARES_MAX + 1);
    s->n_elections = s->o.elections < 0                   ? 0
                     : s->o.elections > SIM_ELECTIONS_MAX ? SIM_ELECTIONS_MAX
                                                          : s->o.elections;
    if (s->o.mode == SIM_MODE_ELECTIONS && s->n_elections == 0)
        s->n_elections = SIM_ELECTIONS_DEFAULT;
    if (s->n_elections > 0 && chance(s, 20))
        mode = SIM_MODE_ELECTIONS;
    s->mode = s->o.mode >= 0 && s->o.mode < SIM_MODE_COUNT ? s->o.mode : mode;
    s->n_voters = s->o.nodes == 3 || s->o.nodes == 5 ? s->o.nodes : voters;
    if (s->o.spares >= 0 && s->o.spares <= SIM_SPARES_MAX)
        spares = s->o.spares;
    s->n_total = s->n_voters + spares;
    s->res->nodes = s->n_voters;
    s->res->spares = spares;
    s->res->mode = s->mode;
    crash_seed = s->o.seed;
    crash_nodes = s->n_voters;
    crash_spares = spares;
    crash_mode = s->mode;
    crash_mutation = s->o.mutation;
    crash_active = 1;

    static const uint32_t drifts[] = {50000, 100000, 200000};
    s->drift_ppm = s->mode == SIM_MODE_LEASE ? 200000 : drifts[rnd(s, 3)];
    s->heartbeat_ticks = (uint32_t)rnd_range(s, 1, 3);
    static const uint32_t jitters[] = {ELECTION_TICKS, ELECTION_TICKS / 2, 2};
    s->jitter_ticks = jitters[rnd(s, 3)];
    s->snap_every = rnd_range(s, 5, 20);
    s->snap_keep = rnd_range(s, 1, 4);
    s->delay_min_us = 100;
    s->delay_max_us = rnd_range(s, 1000, 6000);
    s->long_pct = (unsigned)rnd_range(s, 0, 5);
    s->long_max_us = 3 * TICK_US;
    s->drop_pct = (unsigned)rnd(s, 3);
    s->dup_pct = (unsigned)rnd(s, 3);
    s->hold_pct = (unsigned)rnd(s, 15);
    s->action_min_us = TICK_US / 2;
    s->action_max_us = 4 * TICK_US;
    if (s->mode == SIM_MODE_CRASHY) {
        /* lossy links and frequent leader changes while entries are in flight */
        s->drop_pct = (unsigned)rnd_range(s, 10, 25);
        s->action_max_us = 2 * TICK_US;
    } else if (s->mode == SIM_MODE_FIGURE8) {
        /* the script needs a quiet network: its own cuts are the faults */
        s->drop_pct = 0;
        s->dup_pct = 0;
        s->hold_pct = 0;
        s->long_pct = 0;
        s->action_min_us = TICK_US / 2;
        s->action_max_us = TICK_US;
    } else if (s->mode == SIM_MODE_LEASE) {
        /* fewer, slower actions so that a cut-and-bounce plays out before the next fault */
        s->action_min_us = 2 * TICK_US;
        s->action_max_us = 8 * TICK_US;
    }

    raft_conf_t conf;
    memset(&conf, 0, sizeof(conf));
    for (int i = 1; i <= s->n_voters; i++) {
        raft_member_t *m = &conf.members[conf.n++];
        m->id = (uint64_t)i;
        m->voter = 1;
        snprintf(m->addr, sizeof(m->addr), "n%d", i);
    }
    int64_t d = (int64_t)s->drift_ppm;
    for (int i = 1; i <= s->n_total; i++) {
        snode_t *x = &s->nodes[i];
        raft_config_t cfg;
        memset(&cfg, 0, sizeof(cfg));
        cfg.id = (uint64_t)i;
        cfg.election_ticks = ELECTION_TICKS;
        cfg.election_jitter_ticks = s->jitter_ticks;
        cfg.heartbeat_ticks = s->heartbeat_ticks;
        /* half the schedules stagger followers as the daemon does (no PRNG draw: recorded
         * seeds replay as before) */
        cfg.election_stagger_ticks = s->o.seed % 2 ? s->heartbeat_ticks : 0;
        cfg.max_drift_ppm = s->drift_ppm;
        cfg.max_inflight = 4;
        /* CRASHY: one or two entries per append, so a follower can hold an old entry
         * without the new leader's term-start entry behind it (Figure 8) */
        cfg.max_msg_bytes = s->mode == SIM_MODE_CRASHY || s->mode == SIM_MODE_FIGURE8 ? 8 : 1024;
        cfg.snapshot_chunk_bytes = 64;
        cfg.test_mutation = s->o.mutation;
        cfg.session_ticks = SESSION_TICKS;
        sim_node_init(&x->n, &cfg, i <= s->n_voters ? &conf : NULL);
        x->n.ack_unpersisted = s->o.ack_unpersisted;
        x->exists = true;
        /* clocks at the edges of the allowed drift are where lease bugs live; LEASE mode
         * puts every clock there */
        switch (rnd(s, 3)) {
        case 0:
            x->drift_ppm = -d;
            break;
        case 1:
            x->drift_ppm = d;
            break;
        default:
            x->drift_ppm = (int64_t)rnd(s, (uint64_t)(2 * d + 1)) - d;
            if (s->mode == SIM_MODE_LEASE)
                x->drift_ppm = x->drift_ppm < 0 ? -d : d;
        }
    }
    if (s->mode == SIM_MODE_LEASE && chance(s, 50)) {
        /* one slow clock among fast ones: the widest gap between a leader's lease and its
         * followers' election timeouts */
        int slow = 1 + (int)rnd(s, (uint64_t)s->n_voters);
        for (int i = 1; i <= s->n_total; i++)
            s->nodes[i].drift_ppm = i == slow ? d : -d;
    }
    trace(s,
          "seed %" PRIu64 " mode %d voters %d spares %d drift %" PRIu32 " ppm heartbeat %" PRIu32
          " jitter %" PRIu32 " snapshot every %" PRIu64 " keep %" PRIu64,
          s->o.seed, s->mode, s->n_voters, spares, s->drift_ppm, s->heartbeat_ticks,
          s->jitter_ticks, s->snap_every, s->snap_keep);
    for (int i = 1; i <= s->n_total; i++)
        start_node(s, &s->nodes[i]);
    uint32_t chaos = s->o.chaos_ticks                ? s->o.chaos_ticks
                     : s->mode == SIM_MODE_FIGURE8   ? 30 * ELECTION_TICKS
                     : s->mode == SIM_MODE_ELECTIONS ? 24 * ELECTION_TICKS
                                                     : 12 * ELECTION_TICKS;
    push(s, (uint64_t)chaos * TICK_US, EV_HEAL, 0, 0, NULL);
    push(s, rnd_range(s, s->action_min_us, s->action_max_us), EV_ACTION, 0, 0, NULL);
}

/* Index of the node whose next tick is earliest, 0 if none ticks. */
static int next_ticker(sim_t *s, uint64_t *t)
{
    int best = 0;
    for (int i = 1; i <= s->n_total; i++) {
        snode_t *x = &s->nodes[i];
        if (!alive(x) || x->paused)
            continue;
        uint64_t tt = tick_time(x, x->ticks + 1);
        if (best == 0 || tt < *t) {
            best = i;
            *t = tt;
        }
    }
    return best;
}

static void step_event(sim_t *s)
{
    uint64_t tt = 0;
    int ticker = next_ticker(s, &tt);
    if (ticker != 0 && (s->heap_n == 0 || tt <= s->heap[0].t)) {
        assert(tt >= s->now);
        s->now = tt;
        snode_t *x = &s->nodes[ticker];
        do_tick(s, x);
        observe(s, x);
        return;
    }
    if (s->heap_n == 0) {
        s->done = true;
        return;
    }
    event_t e = pop(s);
    assert(e.t >= s->now); /* simulated time never runs backwards */
    s->now = e.t;
    snode_t *x = e.node ? &s->nodes[e.node] : NULL;
    switch (e.type) {
    case EV_MSG:
        /* a partition also cuts what is already on the wire */
        if (!alive(x) || s->blocked[e.m->from][e.m->to] || bulk_cut(s, e.m)) {
            sim_msg_free(e.m);
        } else if (x->paused) {
            if (x->n_deferred < DEFERRED_MAX) {
                raft_msg_t **p = realloc(x->deferred, (x->n_deferred + 1) * sizeof(*p));
                if (p == NULL)
                    abort();
                x->deferred = p;
                x->deferred[x->n_deferred++] = e.m;
            } else {
                sim_msg_free(e.m);
            }
        } else if (x->reads_held) {
            raft_msg_t **p = realloc(x->parked, (x->n_parked + 1) * sizeof(*p));
            if (p == NULL)
                abort();
            x->parked = p;
            x->parked[x->n_parked++] = e.m;
        } else {
            deliver(s, x, e.m);
            observe(s, x);
        }
        break;
    case EV_ACTION:
        if (!s->healed) {
            act(s);
            push(s, s->now + rnd_range(s, s->action_min_us, s->action_max_us), EV_ACTION, 0, 0,
                 NULL);
        }
        break;
    case EV_RELEASE:
        if (alive(x) && x->n.held && e.gen == x->hold_gen) {
            if (x->paused) {
                push(s, s->now + TICK_US, EV_RELEASE, e.node, e.gen, NULL);
            } else {
                process_held(s, x);
                drive(s, x);
                observe(s, x);
            }
        }
        break;
    case EV_RESUME:
        if (alive(x))
            resume_node(s, x);
        break;
    case EV_RESTART:
        if (x->n.r == NULL && !s->healed)
            start_node(s, x);
        break;
    case EV_DISK_OK:
        if (x->n.disk_fault == SIM_DISK_OK || s->healed)
            break;
        x->n.disk_fault = SIM_DISK_OK;
        trace(s, "n%" PRIu64 " disk recovers", x->n.id);
        if (alive(x) && chance(s, 50)) {
            crash_node(s, x);
            push(s, s->now + rnd(s, 2 * TICK_US), EV_RESTART, e.node, 0, NULL);
        }
        break;
    case EV_HEAL:
        heal(s);
        break;
    case EV_BOUNCE:
        /* crash now, restart within a tick, and have the cut-off node campaign soon after */
        if (alive(x) && !s->healed) {
            crash_node(s, x);
            /* and keep the old leader from reaching it until the campaign is decided */
            if (e.aux != 0)
                s->blocked[e.aux][e.node] = true;
            uint64_t up = s->now + rnd(s, TICK_US);
            push(s, up, EV_RESTART, e.node, 0, NULL);
            if (e.gen != 0)
                push(s, up + rnd(s, TICK_US / 2), EV_CAMPAIGN, (uint8_t)e.gen, 0, NULL);
        }
        break;
    case EV_CAMPAIGN:
        if (alive(x) && !x->paused && !s->healed) {
            campaign(s, x);
            drive(s, x);
            observe(s, x);
        }
        break;
    case EV_UNBLOCK:
        /* the holder-cut attack's silence at leader e.node ends */
        if (!s->healed && s->hc_phase == HC_RETURN) {
            for (int b = 1; b <= s->n_total; b++)
                s->blocked[b][e.node] = false;
            holder_cut_end(s, "the voters are heard again");
        }
        break;
    }
}

static void cleanup(sim_t *s)
{
    for (size_t i = 0; i < s->heap_n; i++)
        sim_msg_free(s->heap[i].m);
    free(s->heap);
    for (int i = 1; i <= s->n_total; i++) {
        snode_t *x = &s->nodes[i];
        for (size_t k = 0; k < x->n_deferred; k++)
            sim_msg_free(x->deferred[k]);
        free(x->deferred);
        for (size_t k = 0; k < x->n_parked; k++)
            sim_msg_free(x->parked[k]);
        free(x->parked);
        sim_node_free(&x->n);
    }
    sim_check_free(&s->chk);
}

void sim_options_default(sim_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->seed = 1;
    o->spares = -1;
    o->mode = -1;
    o->elections = SIM_ELECTIONS_DEFAULT;
}

static void crash_report(void)
{
    if (!crash_active)
        return;
    crash_active = 0;
    char buf[256];
    int n =
        snprintf(buf, sizeof(buf),
                 "\nsim: the process died during seed %" PRIu64 "\n  replay: SIM_SEED=%" PRIu64
                 " raft_sim --nodes %d --spares %d --mode %d --mutation %" PRIu32 " --verbose\n",
                 crash_seed, crash_seed, crash_nodes, crash_spares, crash_mode, crash_mutation);
    if (n > 0)
        (void)!write(2, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void crash_signal(int sig)
{
    crash_report();
    signal(sig, SIG_DFL);
    raise(sig);
}

void sim_crash_report_install(void)
{
    signal(SIGSEGV, crash_signal);
    signal(SIGABRT, crash_signal);
    signal(SIGBUS, crash_signal);
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_set_death_callback(crash_report);
#endif
}

int sim_run(const sim_options_t *o, sim_result_t *res)
{
    sim_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        abort();
    memset(res, 0, sizeof(*res));
    s->o = *o;
    s->res = res;
    s->rng = o->seed ^ 0x5eed5eed5eed5eedull;
    splitmix(&s->rng);
    s->shim_rng = o->seed ^ 0x5e1ea5ed5e1ea5edull;
    sim_check_init(&s->chk);
    setup(s);
    while (!s->done && s->chk.first == SIM_V_NONE) {
        if (++s->events > EVENT_CAP) {
            sim_check_fail(&s->chk, SIM_V_CONTRACT, "schedule exceeded %u events", EVENT_CAP);
            break;
        }
        step_event(s);
        check_leases(s);
        check_sessions(s);
        if (s->n_elections > 0)
            check_elections(s);
        if (s->events % CHECK_EVERY == 0)
            check_logs(s);
        if (s->healed && !s->done) {
            liveness(s);
            if (!s->done && s->now > s->deadline)
                liveness_failed(s);
        }
    }
    if (s->chk.first == SIM_V_NONE)
        check_logs(s);
    crash_active = 0;
    res->violation = s->chk.first;
    res->violations = s->chk.violations;
    memcpy(res->msg, s->chk.msg, sizeof(res->msg));
    res->events = s->events;
    res->sim_us = s->now;
    if (res->violation != SIM_V_NONE)
        trace(s, "VIOLATION %s", res->msg);
    cleanup(s);
    free(s);
    return res->violation;
}
