/* node.c — the Raft driver: ticks from the boot-time clock, ready batches through the store
 * and the transport in etcd's order, compaction, and change notifications. */
#include "node.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common.h"
#include "transport.h"

#define BOOTSTRAP_KEY      "bootstrap_conf"
#define INSTANCE_KEY       "instance_id"    /* this data directory's random id */
#define PINS_KEY           "peer_instances" /* members' pinned instance ids: (u64 id, u8[16])* */
#define PIN_RECORD_BYTES   (8 + SIDECAR_TRANSPORT_INSTANCE_LEN)
#define STORE_RETRY_LOG_NS 1000000000ull /* log a failing store at most once a second */
#define STORE_RETRY_NS     100000000ull  /* retry a batch that failed at most every 100 ms */

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

struct sidecar_node {
    uv_loop_t *loop;
    const sidecar_config_t *cfg;
    uint64_t id;
    store_t *store;
    raft_t *raft;
    sidecar_transport_t *transport;
    uv_timer_t ticker;
    uv_check_t check; /* runs the batch once per loop turn, after all input was stepped */
    uint64_t start_ns;
    uint64_t tick_ns;
    char http_addr[300]; /* --advertise-http as host:port */
    char peer_addr[300]; /* where peers can dial us, "" when unknown */
    raft_conf_t boot_conf;
    raft_conf_t synced_conf; /* membership the transport was last told about */
    uint8_t instance[SIDECAR_TRANSPORT_INSTANCE_LEN];
    sidecar_transport_pin_t pins[RAFT_MAX_MEMBERS]; /* loaded at start, given to the transport */
    size_t n_pins;
    sidecar_node_observer_t *observers;
    sidecar_node_state_t state;
    bool batch_out;
    bool persisted;
    bool sent_early; /* the leader's appends of this batch already left */
    raft_ready_t rd;
    store_result_t *results;
    size_t cap_results;
    bool in_process;
    bool batch_failing;        /* the batch out failed to persist or apply: being retried */
    uint64_t failing_since_ns; /* when it first failed */
    uint64_t retry_at_ns;      /* not before */
    uint64_t store_fail_logged_ns;
    uint64_t compact_retry_at;
    bool closing;
    int open_handles;
    void (*close_cb)(void *);
    void *close_ud;
};

/* ---- helpers ------------------------------------------------------------------------------ */

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

/* Persists the members' pinned instance ids, so that a restart keeps refusing a second
 * process under a member's name. A failure is logged; the pins stay in memory. */
static void pins_save(sidecar_node_t *n)
{
    sidecar_transport_pin_t pins[RAFT_MAX_MEMBERS];
    size_t np = sidecar_transport_pins(n->transport, pins, RAFT_MAX_MEMBERS);
    uint8_t buf[RAFT_MAX_MEMBERS * PIN_RECORD_BYTES];
    for (size_t i = 0; i < np; i++) {
        for (int b = 0; b < 8; b++)
            buf[i * PIN_RECORD_BYTES + (size_t)b] = (uint8_t)(pins[i].id >> (8 * b));
        memcpy(buf + i * PIN_RECORD_BYTES + 8, pins[i].instance, SIDECAR_TRANSPORT_INSTANCE_LEN);
    }
    int rv = store_local_set(n->store, PINS_KEY, buf, np * PIN_RECORD_BYTES);
    if (rv != 0)
        SIDECAR_LOG(SIDECAR_LOG_ERROR, "cannot record the members' instance ids",
                    SIDECAR_LOG_STR("error", store_strerror(rv)));
}

static void pinned_cb(void *ud)
{
    pins_save(ud);
}

/* Tells the transport about every member of the configuration in force. */
static void sync_peers(sidecar_node_t *n)
{
    const raft_conf_t *c = raft_conf(n->raft);
    /* A joining node hears from members it cannot know yet; once it has a configuration,
     * only from its members (see transport.h, Admission). */
    sidecar_transport_admit_unknown(n->transport, c->n == 0);
    if (memcmp(c, &n->synced_conf, sizeof(*c)) == 0)
        return;
    bool removed = false;
    for (uint32_t i = 0; i < n->synced_conf.n; i++) {
        uint64_t id = n->synced_conf.members[i].id;
        if (raft_conf_find(c, id) == NULL && id != n->id) {
            sidecar_transport_peer_remove(n->transport, id);
            removed = true;
        }
    }
    for (uint32_t i = 0; i < c->n; i++) {
        const raft_member_t *m = &c->members[i];
        if (m->id == n->id)
            continue;
        char name[64], host[SIDECAR_TRANSPORT_HOST_MAX];
        const char *peer;
        uint16_t port;
        if (sidecar_member_split(m->addr, name, sizeof(name), &peer) != 0 ||
            sidecar_config_hostport_parse(peer, host, sizeof(host), &port) != 0) {
            SIDECAR_LOG(SIDECAR_LOG_ERROR, "member has an unusable address",
                        SIDECAR_LOG_UINT("id", m->id), SIDECAR_LOG_STR("addr", m->addr));
            continue;
        }
        if (sidecar_transport_peer_set(n->transport, m->id, name, host, port) == 0)
            for (size_t k = 0; k < n->n_pins; k++)
                if (n->pins[k].id == m->id)
                    sidecar_transport_peer_pin(n->transport, m->id, n->pins[k].instance);
    }
    n->n_pins = 0; /* given to the transport, which now holds them */
    if (removed)
        pins_save(n); /* a removed member's pin goes: it may come back with a new data dir */
    n->synced_conf = *c;
}

static void notify_changed(sidecar_node_t *n)
{
    for (sidecar_node_observer_t *o = n->observers; o; o = o->next)
        if (o->changed_cb)
            o->changed_cb(o->ud, &n->state);
}

/* Logs a store failure, at most once a second while it lasts. */
static void store_failed(sidecar_node_t *n, const char *what, int rv)
{
    uint64_t now = uv_hrtime();
    if (n->store_fail_logged_ns == 0 || now - n->store_fail_logged_ns >= STORE_RETRY_LOG_NS) {
        SIDECAR_LOG(SIDECAR_LOG_ERROR, "storage failed; will retry", SIDECAR_LOG_STR("op", what),
                    SIDECAR_LOG_STR("error", store_strerror(rv)),
                    SIDECAR_LOG_STR("detail", store_errmsg(n->store)));
        n->store_fail_logged_ns = now;
    }
}

/* ---- soft state ----------------------------------------------------------------------------- */

/* Publishes the node as the rest of the daemon sees it. While a batch is failing the store is
 * not ok and no lease is claimed, whatever the core believes: a leader that cannot persist
 * must not run the workload. */
static void publish(sidecar_node_t *n, raft_role_t role, uint64_t leader, uint64_t term,
                    uint64_t lease_until_tick, bool transfer_stopped)
{
    sidecar_node_state_t *s = &n->state;
    sidecar_node_state_t old = *s;
    s->role = role;
    s->term = term;
    s->leader = leader;
    s->lease_deadline_ns = role == RAFT_LEADER && lease_until_tick > 0 && !n->batch_failing
                               ? sidecar_node_tick_ns(n, lease_until_tick)
                               : 0;
    s->transfer_stopped = transfer_stopped;
    s->commit = raft_commit_index(n->raft);
    s->applied = store_applied_index(n->store);
    s->store_ok = !n->batch_failing;
    if (old.role != s->role || old.leader != s->leader || old.term != s->term) {
        char leader[64];
        sidecar_node_member_name(n, s->leader, leader, sizeof(leader));
        if (old.role != s->role)
            SIDECAR_LOG(SIDECAR_LOG_INFO, s->role == RAFT_LEADER ? "became leader" : "role changed",
                        SIDECAR_LOG_STR("from", raft_role_name(old.role)),
                        SIDECAR_LOG_STR("to", raft_role_name(s->role)),
                        SIDECAR_LOG_STR("leader", leader));
        else if (old.leader != s->leader)
            SIDECAR_LOG(SIDECAR_LOG_INFO, "leader changed", SIDECAR_LOG_STR("leader", leader));
    }
    if (memcmp(&old, s, sizeof(old)) != 0)
        notify_changed(n);
}

static void update_state(sidecar_node_t *n, const raft_ready_t *rd)
{
    publish(n, rd->role, rd->leader, rd->term, rd->lease_until_tick, rd->transfer_stopped);
}

/* What the core believes now: while a batch is stuck the core keeps stepping and ticking, so
 * the batch's own soft state grows stale (a leader is deposed by the healthy members). */
static void publish_live(sidecar_node_t *n, bool transfer_stopped)
{
    const raft_t *r = n->raft;
    publish(n, raft_role(r), raft_leader(r), raft_term(r), raft_lease_until(r), transfer_stopped);
}

/* Persisting or applying the batch failed (disk full, I/O error); it is retried every
 * STORE_RETRY_NS. Nothing of it or after it leaves this node meanwhile: no vote grant, no
 * append acknowledgement, no vote request, no heartbeat. So the member can neither help elect
 * anyone nor win an election before its vote is durable, and a leader falls silent: the
 * healthy members elect another within an election timeout (their stickiness outlasts its
 * lease). The workload stops at once (no lease is published) and the API refuses what
 * needs the store (store_ok is false). */
static void batch_failed(sidecar_node_t *n, const char *what, int rv)
{
    uint64_t now = uv_hrtime();
    store_failed(n, what, rv);
    if (!n->batch_failing) {
        n->batch_failing = true;
        n->failing_since_ns = now;
    }
    n->retry_at_ns = now + STORE_RETRY_NS;
    publish_live(n, false);
}

/* The batch that was failing went through: publish the core's present state rather than the
 * batch's (taken when it first failed) so that nobody sees the term or the role go back. */
static void batch_recovered(sidecar_node_t *n, const raft_ready_t *rd)
{
    n->batch_failing = false;
    n->store_fail_logged_ns = 0;
    SIDECAR_LOG(SIDECAR_LOG_INFO, "storage works again",
                SIDECAR_LOG_UINT("failed_ms", (uv_hrtime() - n->failing_since_ns) / 1000000));
    bool same = rd->role == raft_role(n->raft) && rd->term == raft_term(n->raft);
    publish_live(n, same && rd->transfer_stopped);
}

static void log_state_cb(void *ud, uint64_t *term, const char **role)
{
    const sidecar_node_t *n = ud;
    *term = n->state.term;
    *role = raft_role_name(n->state.role);
}

/* ---- membership ---------------------------------------------------------------------------- */

/* Leader: a learner whose log has caught up with the commit index becomes a voter (one change
 * at a time; the core answers RAFT_EBUSY while another is pending, and we try again later). */
static void maybe_promote(sidecar_node_t *n)
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

/* ---- compaction ----------------------------------------------------------------------------- */

/* Snapshot the state machine and drop the log below it once enough entries accumulated. */
static void maybe_compact(sidecar_node_t *n)
{
    uint64_t applied = store_applied_index(n->store);
    uint64_t every = n->cfg->snapshot_entries ? n->cfg->snapshot_entries : 4096;
    if (applied < raft_snapshot(n->raft)->index + every || applied < n->compact_retry_at)
        return;
    store_snapshot_info_t info;
    int rv = store_snapshot_create(n->store, &n->boot_conf, &info);
    if (rv != 0) {
        store_failed(n, "snapshot", rv);
        n->compact_retry_at = applied + every / 4 + 1;
        return;
    }
    uint64_t keep = every / 4 > 16 ? every / 4 : 16;
    rv = raft_compact(n->raft, info.index, info.size, keep);
    if (rv != 0) {
        /* A membership change committed past the applied index: try a little later. */
        n->compact_retry_at = applied + 16;
        return;
    }
    uint64_t first = raft_first_index(n->raft);
    if (first > 1) {
        rv = store_log_compact(n->store, first - 1);
        if (rv != 0)
            store_failed(n, "compact", rv);
    }
    SIDECAR_LOG(SIDECAR_LOG_INFO, "snapshot taken", SIDECAR_LOG_UINT("index", info.index),
                SIDECAR_LOG_UINT("bytes", info.size), SIDECAR_LOG_UINT("log_first", first));
}

/* ---- the batch loop ---------------------------------------------------------------------------
 */

/* Messages a leader may send before its batch is durable: they carry its log and commit
 * index, never a promise (a vote, an acknowledgement) that needs the disk behind it. */
static bool leader_early(const raft_msg_t *m)
{
    return m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT;
}

static int apply_batch(sidecar_node_t *n, const raft_ready_t *rd)
{
    if (rd->n_committed == 0)
        return 0;
    if (n->cap_results < rd->n_committed) {
        store_result_t *r = realloc(n->results, rd->n_committed * sizeof(*r));
        if (r == NULL)
            return STORE_ENOMEM;
        n->results = r;
        n->cap_results = rd->n_committed;
    }
    int rv = store_apply(n->store, rd->committed, rd->n_committed, n->results);
    if (rv != 0)
        return rv;
    for (size_t i = 0; i < rd->n_committed; i++) {
        const store_result_t *res = &n->results[i];
        if (res->status == STORE_APPLIED_SKIPPED)
            continue;
        if (res->type == RAFT_ENTRY_NOOP && res->status == STORE_APPLIED_OK &&
            res->epoch > n->state.epoch)
            n->state.epoch = res->epoch;
        for (sidecar_node_observer_t *o = n->observers; o; o = o->next)
            if (o->applied_cb)
                o->applied_cb(o->ud, &rd->committed[i], res);
    }
    return 0;
}

static void process(sidecar_node_t *n)
{
    if (n->in_process || n->closing)
        return;
    n->in_process = true;
    for (int guard = 0; guard < 1000; guard++) {
        if (!n->batch_out) {
            if (!raft_has_ready(n->raft))
                break;
            if (raft_ready_get(n->raft, &n->rd) != 0)
                break;
            n->batch_out = true;
            n->persisted = false;
            n->sent_early = false;
        }
        raft_ready_t *rd = &n->rd;
        if (n->batch_failing && uv_hrtime() < n->retry_at_ns) {
            publish_live(n, false);
            break;
        }
        if (!n->persisted && !n->sent_early && rd->role == RAFT_LEADER) {
            /* Raft dissertation §10.2.1: a leader may replicate while it writes its own copy;
             * the core counts that copy towards commit only once this batch is advanced. */
            for (size_t i = 0; i < rd->n_msgs; i++)
                if (leader_early(&rd->msgs[i]))
                    sidecar_transport_send(n->transport, &rd->msgs[i]);
            n->sent_early = true;
        }
        if (!n->persisted) {
            int rv = store_save_ready(n->store, rd);
            if (rv != 0) {
                batch_failed(n, "persist", rv);
                break; /* nothing leaves this node until it is durable */
            }
            n->persisted = true;
            if (rd->chunk != NULL && rd->chunk->last)
                SIDECAR_LOG(SIDECAR_LOG_INFO, "snapshot installed",
                            SIDECAR_LOG_UINT("index", rd->chunk->meta.index),
                            SIDECAR_LOG_UINT("bytes", rd->chunk->meta.size));
            for (size_t i = 0; i < rd->n_msgs; i++)
                if (!(n->sent_early && leader_early(&rd->msgs[i])))
                    sidecar_transport_send(n->transport, &rd->msgs[i]);
        }
        int rv = apply_batch(n, rd);
        if (rv != 0) {
            batch_failed(n, "apply", rv);
            break;
        }
        for (size_t i = 0; i < rd->n_reads; i++)
            for (sidecar_node_observer_t *o = n->observers; o; o = o->next)
                if (o->read_cb)
                    o->read_cb(o->ud, rd->reads[i].ctx, rd->reads[i].index);
        if (n->batch_failing)
            batch_recovered(n, rd);
        else
            update_state(n, rd);
        raft_advance(n->raft);
        n->batch_out = false;
        sync_peers(n);
        maybe_compact(n);
        maybe_promote(n);
    }
    n->in_process = false;
}

static void check_cb(uv_check_t *h)
{
    sidecar_node_t *n = h->data;
    uv_check_stop(h);
    process(n);
}

static void schedule(sidecar_node_t *n)
{
    if (!n->closing)
        uv_check_start(&n->check, check_cb);
}

static void tick_cb(uv_timer_t *h)
{
    sidecar_node_t *n = h->data;
    uint64_t target = (sidecar_clock_boot_ns() - n->start_ns) / n->tick_ns;
    /* Catch up after a stall: the core must never believe less time has passed than has. */
    while (raft_now(n->raft) < target)
        raft_tick(n->raft);
    process(n);
}

static void recv_cb(void *ud, const raft_msg_t *m)
{
    sidecar_node_t *n = ud;
    raft_step(n->raft, m);
    schedule(n);
}

/* ---- public wrappers ---------------------------------------------------------------------- */

int sidecar_node_propose(sidecar_node_t *n, const void *data, size_t len, uint64_t *index)
{
    if (n->closing)
        return RAFT_ENOTLEADER;
    int rv = raft_propose(n->raft, data, len, index);
    if (rv == 0)
        schedule(n);
    return rv;
}

int sidecar_node_read_index(sidecar_node_t *n, uint64_t ctx)
{
    int rv = raft_read_index(n->raft, ctx);
    if (rv == 0)
        schedule(n);
    return rv;
}

int sidecar_node_transfer(sidecar_node_t *n, uint64_t target, uint8_t flags)
{
    int rv = raft_transfer(n->raft, target, flags);
    if (rv == 0)
        schedule(n);
    return rv;
}

int sidecar_node_propose_conf(sidecar_node_t *n, raft_conf_op_t op, uint64_t id, const char *addr,
                              uint64_t *index)
{
    int rv = raft_propose_conf(n->raft, op, id, addr, index);
    if (rv == 0)
        schedule(n);
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

const raft_t *sidecar_node_raft(const sidecar_node_t *n)
{
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

/* ---- start and stop ---------------------------------------------------------------------------
 */

/* The initial configuration: saved at the first start, so later restarts do not depend on
 * --peers staying the same. */
static int bootstrap_conf(sidecar_node_t *n, bool fresh, raft_conf_t *conf)
{
    memset(conf, 0, sizeof(*conf));
    uint8_t buf[sizeof(raft_conf_t) + 64];
    size_t len = 0;
    if (store_local_get(n->store, BOOTSTRAP_KEY, buf, sizeof(buf), &len) == 0)
        return raft_conf_decode(buf, len, conf) == 0 ? 0 : SIDECAR_NODE_ESTORE;
    const sidecar_config_t *cfg = n->cfg;
    if (cfg->join)
        return 0; /* a new member learns the configuration from the leader */
    for (size_t i = 0; i < cfg->n_peers && conf->n < RAFT_MAX_MEMBERS; i++) {
        raft_member_t *m = &conf->members[conf->n++];
        m->id = cfg->peers[i].id;
        m->voter = 1;
        bool v6 = strchr(cfg->peers[i].host, ':') != NULL;
        snprintf(m->addr, sizeof(m->addr), v6 ? "%s=[%s]:%u" : "%s=%s:%u", cfg->peers[i].name,
                 cfg->peers[i].host, cfg->peers[i].port);
    }
    if (!fresh || conf->n == 0)
        return 0;
    if (raft_conf_encode(conf, buf, sizeof(buf), &len) != 0)
        return SIDECAR_NODE_ECONFIG;
    return store_local_set(n->store, BOOTSTRAP_KEY, buf, len) == 0 ? 0 : SIDECAR_NODE_ESTORE;
}

/* This data directory's instance id (created and stored durably at the first start) and
 * the members' pinned instance ids. */
static int identity_load(sidecar_node_t *n, char *errbuf, size_t errlen)
{
    size_t len = 0;
    int rv = store_local_get(n->store, INSTANCE_KEY, n->instance, sizeof(n->instance), &len);
    if (rv == STORE_ENOTFOUND) {
        if (getrandom(n->instance, sizeof(n->instance), 0) != (ssize_t)sizeof(n->instance)) {
            snprintf(errbuf, errlen, "cannot draw a random instance id for %s",
                     store_path(n->store));
            return SIDECAR_NODE_ESTORE;
        }
        rv = store_local_set(n->store, INSTANCE_KEY, n->instance, sizeof(n->instance));
        len = sizeof(n->instance);
    }
    if (rv != 0 || len != sizeof(n->instance)) {
        snprintf(errbuf, errlen, "cannot read or record the instance id in %s: %s",
                 store_path(n->store), rv ? store_errmsg(n->store) : "wrong length");
        return SIDECAR_NODE_ESTORE;
    }
    uint8_t buf[RAFT_MAX_MEMBERS * PIN_RECORD_BYTES];
    rv = store_local_get(n->store, PINS_KEY, buf, sizeof(buf), &len);
    if (rv == STORE_ENOTFOUND)
        return 0;
    if (rv != 0 || len % PIN_RECORD_BYTES != 0) {
        snprintf(errbuf, errlen, "cannot read the members' instance ids in %s",
                 store_path(n->store));
        return SIDECAR_NODE_ESTORE;
    }
    n->n_pins = len / PIN_RECORD_BYTES;
    for (size_t i = 0; i < n->n_pins; i++) {
        const uint8_t *r = buf + i * PIN_RECORD_BYTES;
        n->pins[i].id = 0;
        for (int b = 7; b >= 0; b--)
            n->pins[i].id = n->pins[i].id << 8 | r[b];
        memcpy(n->pins[i].instance, r + 8, SIDECAR_TRANSPORT_INSTANCE_LEN);
    }
    return 0;
}

int sidecar_node_start(sidecar_node_t **out, uv_loop_t *loop, const sidecar_config_t *cfg,
                       char *errbuf, size_t errlen)
{
    sidecar_node_t *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return SIDECAR_NODE_ENOMEM;
    n->loop = loop;
    n->cfg = cfg;
    n->id = sidecar_config_node_id(cfg->name);
    n->tick_ns = (uint64_t)cfg->tick_ms * 1000000ull;
    sidecar_config_addr_format(&cfg->advertise_http, n->http_addr, sizeof(n->http_addr));
    /* Our own entry of --peers, else --listen-peer unless it is a wildcard. */
    if (cfg->n_peers > 0 && !cfg->join) {
        sidecar_addr_t self = {.host = cfg->peers[cfg->self_index].host,
                               .port = cfg->peers[cfg->self_index].port};
        sidecar_config_addr_format(&self, n->peer_addr, sizeof(n->peer_addr));
    } else if (strcmp(cfg->listen_peer.host, "0.0.0.0") != 0 &&
               strcmp(cfg->listen_peer.host, "::") != 0) {
        sidecar_config_addr_format(&cfg->listen_peer, n->peer_addr, sizeof(n->peer_addr));
    }
    n->state.store_ok = true;
    raft_boot_t boot = {0};
    bool boot_loaded = false;
    int rv;

    char cluster[32];
    snprintf(cluster, sizeof(cluster), "%016" PRIx64, sidecar_config_cluster_id(cfg));
    store_opts_t so = {.cluster_id = cluster, .node_id = n->id};
    rv = store_open(&n->store, cfg->data_dir, &so, errbuf, errlen);
    if (rv != 0) {
        rv = SIDECAR_NODE_ESTORE;
        goto fail;
    }
    rv = store_boot_load(n->store, &boot);
    if (rv != 0) {
        snprintf(errbuf, errlen, "cannot load Raft state from %s: %s", store_path(n->store),
                 store_errmsg(n->store));
        rv = SIDECAR_NODE_ESTORE;
        goto fail;
    }
    boot_loaded = true;
    rv = identity_load(n, errbuf, errlen);
    if (rv != 0)
        goto fail;
    bool fresh = boot.snap.index == 0 && boot.n_entries == 0 && boot.hs.term == 0;
    rv = bootstrap_conf(n, fresh, &n->boot_conf);
    if (rv != 0) {
        snprintf(errbuf, errlen, "cannot record the initial membership in %s",
                 store_path(n->store));
        goto fail;
    }
    if (!fresh && cfg->n_peers > 0)
        SIDECAR_LOG(SIDECAR_LOG_INFO, "existing data directory: using the stored membership, "
                                      "--peers is ignored");
    if (fresh && n->boot_conf.n == 0)
        SIDECAR_LOG(SIDECAR_LOG_INFO, "joining: waiting for the leader to add this node "
                                      "(POST /v1/members)");
    boot.conf = n->boot_conf;
    boot.applied = store_applied_index(n->store);

    raft_config_t rc = {
        .id = n->id,
        .election_ticks = cfg->election_timeout_ms / cfg->tick_ms,
        .heartbeat_ticks = cfg->heartbeat_interval_ms / cfg->tick_ms,
        /* A third of E: p99 failover near 1.3 E instead of 2 E. Split votes stay rare
           because PreVote and a LAN round trip are far shorter than E/3. */
        .election_jitter_ticks = cfg->election_timeout_ms / cfg->tick_ms / 3,
        .max_drift_ppm = cfg->max_drift_ppm,
        .seed = uv_hrtime() ^ n->id,
        .max_inflight = 64,
        .max_msg_bytes = 1u << 20,
        .snapshot_chunk_bytes = 1u << 20,
    };
    raft_storage_t storage;
    store_raft_storage(n->store, &storage);
    rv = raft_new(&rc, &boot, &storage, &n->raft);
    store_boot_release(n->store, &boot);
    boot_loaded = false;
    if (rv != 0) {
        snprintf(errbuf, errlen, "the Raft state in %s is inconsistent: %s", store_path(n->store),
                 raft_strerror(rv));
        rv = SIDECAR_NODE_ERAFT;
        goto fail;
    }
    store_epoch_t ep;
    if (store_epoch_current(n->store, &ep) == 0)
        n->state.epoch = ep.term;
    n->state.term = raft_term(n->raft);
    n->state.applied = store_applied_index(n->store);
    sidecar_log_set_state_cb(log_state_cb, n);

    sidecar_transport_config_t tc = {.loop = loop,
                                     .self_id = n->id,
                                     .name = cfg->name,
                                     .instance = n->instance,
                                     .linger_ms = 4 * cfg->election_timeout_ms,
                                     .pinned_cb = pinned_cb,
                                     .cluster_id = sidecar_config_cluster_id(cfg),
                                     .token = cfg->cluster_token,
                                     .advertise_http = n->http_addr,
                                     .advertise_peer = n->peer_addr[0] ? n->peer_addr : NULL,
                                     .listen_host = cfg->listen_peer.host,
                                     .listen_port = cfg->listen_peer.port,
                                     .recv_cb = recv_cb,
                                     .ud = n};
    rv = sidecar_transport_start(&n->transport, &tc, errbuf, errlen);
    if (rv != 0) {
        rv = SIDECAR_NODE_ETRANSPORT;
        goto fail;
    }
    sync_peers(n);

    uv_timer_init(loop, &n->ticker);
    uv_check_init(loop, &n->check);
    n->ticker.data = n->check.data = n;
    n->open_handles = 2;
    n->start_ns = sidecar_clock_boot_ns();
    uv_timer_start(&n->ticker, tick_cb, cfg->tick_ms, cfg->tick_ms);
    SIDECAR_LOG(SIDECAR_LOG_INFO, "node started", SIDECAR_LOG_STR("data_dir", cfg->data_dir),
                SIDECAR_LOG_UINT("id", n->id), SIDECAR_LOG_UINT("term", raft_term(n->raft)),
                SIDECAR_LOG_UINT("last_index", raft_last_index(n->raft)),
                SIDECAR_LOG_UINT("members", raft_conf(n->raft)->n),
                SIDECAR_LOG_UINT("peer_port", sidecar_transport_port(n->transport)));
    *out = n;
    return 0;
fail:
    if (boot_loaded)
        store_boot_release(n->store, &boot);
    raft_free(n->raft);
    store_close(n->store);
    free(n);
    return rv;
}

static void finish_close(sidecar_node_t *n)
{
    if (n->open_handles > 0 || n->transport != NULL)
        return;
    void (*cb)(void *) = n->close_cb;
    void *ud = n->close_ud;
    sidecar_log_set_state_cb(NULL, NULL);
    raft_free(n->raft);
    store_close(n->store);
    free(n->results);
    free(n);
    if (cb)
        cb(ud);
}

static void handle_closed_cb(uv_handle_t *h)
{
    sidecar_node_t *n = h->data;
    n->open_handles--;
    finish_close(n);
}

static void transport_closed_cb(void *ud)
{
    sidecar_node_t *n = ud;
    n->transport = NULL;
    finish_close(n);
}

void sidecar_node_close(sidecar_node_t *n, void (*cb)(void *ud), void *ud)
{
    if (n->closing)
        return;
    n->retry_at_ns = 0;
    process(n); /* persist whatever is pending: a vote or an append ack must not be lost */
    n->closing = true;
    n->close_cb = cb;
    n->close_ud = ud;
    uv_close((uv_handle_t *)&n->ticker, handle_closed_cb);
    uv_close((uv_handle_t *)&n->check, handle_closed_cb);
    sidecar_transport_close(n->transport, transport_closed_cb, n);
}
