/* named.c — the runtime of named elections: its life cycle, the evaluation that runs after
 * every change that matters and at every heartbeat interval (looking at every election after a
 * change, every 4 heartbeats, and as soon as a renewal is due to be handed on), and
 * the member's side of it: keeping its declaration in the store, telling each of its
 * controllers whether it holds its election and until when, and acknowledging handovers once
 * a workload has stopped. The leader's side is leader.c. */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "named_int.h"

#define RETRY_MS              1000 /* a record forwarded to the leader and not seen applied is sent again */
#define TRIM_ELECTIONS_MIN    64          /* from this many elections on, ... */
#define FULL_EVERY_HEARTBEATS 4           /* every election is looked at at least this often */
#define TRIM_EVERY_MS         10000       /* ... freed memory goes back to the system this often */
#define STARTS_PER_ROUND      32          /* workloads started per evaluation at most, ... */
#define STARTS_BUDGET_NS      20000000ull /* ... and none begun after this long of one */

const char *sidecar_named_strerror(int err)
{
    switch (err) {
#define SIDECAR_NAMED_ERR_CASE(name, code, text)                                                   \
    case code:                                                                                     \
        return text;
        SIDECAR_NAMED_ERRNO_MAP(SIDECAR_NAMED_ERR_CASE)
#undef SIDECAR_NAMED_ERR_CASE
    }
    return "unknown error";
}

uint64_t named_now_ms(void)
{
    return sidecar_clock_boot_ns() / 1000000;
}

/* ---- the member's side ------------------------------------------------------------------ */

/* A running workload gets a new deadline when what it has left is down to its stop timeout
 * plus an election timeout (each hand-over wakes its controller and writes to its shim; the
 * session is renewed at every heartbeat): at least E before it would begin to stop. */
static uint64_t refresh_ns(const sidecar_named_t *n, const struct named_election *e)
{
    return ((uint64_t)e->cfg.stop_timeout_ms + n->cfg->election_timeout_ms) * 1000000ull;
}

/* What e's controller is to be told now. */
static sidecar_workload_tenure_t tenure_of(const sidecar_named_t *n, const struct named_election *e,
                                           const sidecar_node_state_t *st, uint64_t now_ns)
{
    bool mine = e->has_row && e->row.holder == n->self;
    sidecar_workload_tenure_t t = {
        .holds = mine && !named_moving(e) && st->store_ok && !n->stopping && !e->removed &&
                 n->trusted_until_ns > now_ns,
        .token = e->has_row ? e->row.token : 0,
        .holder = e->has_row ? e->row.holder : 0,
    };
    t.deadline_ns = t.holds ? n->trusted_until_ns : 0;
    return t;
}

/* True when t is worth telling: anything but a deadline changed, or the deadline it has is
 * down to the refresh margin. */
static bool news(const sidecar_named_t *n, const struct named_election *e,
                 const sidecar_workload_tenure_t *t, uint64_t now_ns)
{
    const sidecar_workload_tenure_t *o = &e->told;
    if (t->holds != o->holds || t->token != o->token || t->holder != o->holder)
        return true;
    return t->holds && t->deadline_ns > o->deadline_ns &&
           o->deadline_ns <= now_ns + refresh_ns(n, e);
}

static void tell(sidecar_named_t *n, struct named_election *e, const sidecar_workload_tenure_t *t)
{
    if (t->holds != e->told.holds || t->token != e->told.token)
        SIDECAR_LOG(SIDECAR_LOG_INFO, t->holds ? "named election held" : "named election not held",
                    SIDECAR_LOG_STR("election", e->name),
                    SIDECAR_LOG_UINT("fencing_token", t->token),
                    SIDECAR_LOG_BOOL("handover",
                                     e->has_row && e->row.holder == n->self && named_moving(e)));
    e->told = *t;
    sidecar_workload_set_tenure(e->w, t);
}

/* Tells every controller its tenure. Hook-mode elections that start being held here have
 * their role "primary" made durable first, all in one transaction: a failover of hundreds of
 * elections to this member costs one fsync, not one each. */
static void tell_all(sidecar_named_t *n, const sidecar_node_state_t *st, uint64_t now_ns)
{
    sidecar_workload_t **starting = malloc((n->n_els ? n->n_els : 1) * sizeof(*starting));
    size_t n_starting = 0;
    for (size_t i = 0; starting != NULL && i < n->n_els; i++) {
        struct named_election *e = n->els[i];
        if (e->w == NULL || e->decl == NULL || e->decl->mode != SIDECAR_ELECTION_HOOKS ||
            e->told.holds)
            continue;
        sidecar_workload_tenure_t t = tenure_of(n, e, st, now_ns);
        if (t.holds)
            starting[n_starting++] = e->w;
    }
    if (n_starting > 1 && sidecar_workload_persist_primary(starting, n_starting) != 0)
        SIDECAR_LOG(SIDECAR_LOG_WARN, "named elections: cannot record their roles at once; "
                                      "each records its own");
    free(starting);
    size_t started = 0;
    uint64_t began_ns = uv_hrtime();
    n->push_at_ns = UINT64_MAX;
    for (size_t i = 0; i < n->n_els; i++) {
        struct named_election *e = n->els[i];
        if (e->w == NULL)
            continue;
        sidecar_workload_tenure_t t = tenure_of(n, e, st, now_ns);
        if (!news(n, e, &t, now_ns))
            continue;
        /* Each start spawns a process, which holds the loop until the child runs: a few at a
         * time, the loop serving heartbeats in between, so that hundreds arriving at once (a
         * failover, a start) do not cost this member its leadership or its session. A busy
         * host, where each child waits for a CPU, gets fewer per evaluation. */
        bool starting = t.holds && !e->told.holds;
        if (starting && (++started > STARTS_PER_ROUND ||
                         (started > 1 && uv_hrtime() - began_ns > STARTS_BUDGET_NS))) {
            n->full_due = true;
            continue;
        }
        tell(n, e, &t);
    }
    /* The earliest moment a held election's deadline is down to its refresh margin: a
     * renewal seen from then on is handed on at once, not at the next full look (a leader
     * change leaves little room: docs/guarantees.md, "A leader change stops nothing"). */
    for (size_t i = 0; i < n->n_els; i++) {
        const struct named_election *e = n->els[i];
        if (e->w != NULL && e->told.holds && e->told.deadline_ns > refresh_ns(n, e)) {
            uint64_t at = e->told.deadline_ns - refresh_ns(n, e);
            n->push_at_ns = at < n->push_at_ns ? at : n->push_at_ns;
        }
    }
}

/* A handover of an election we hold: once nothing of it runs here, say so. */
static void acknowledge(sidecar_named_t *n, struct named_election *e, uint64_t now_ms)
{
    if (!named_moving(e) || e->row.holder != n->self)
        return;
    if (e->has_stopped && e->st_token == e->row.token && e->st_from == n->self)
        return; /* said; the leader acts on it */
    bool clean = true;
    if (e->w != NULL && !sidecar_workload_idle(e->w, &clean))
        return;
    if (!clean) {
        if (now_ms - e->stopped_sent_ms >= RETRY_MS * 10) {
            e->stopped_sent_ms = now_ms;
            SIDECAR_LOG(SIDECAR_LOG_ERROR,
                        "named election: on-stop failed, so the handover cannot say the workload "
                        "stopped; it stays here until the leader gives the handover up",
                        SIDECAR_LOG_STR("election", e->name));
        }
        return;
    }
    if (now_ms - e->stopped_sent_ms < RETRY_MS)
        return;
    e->stopped_sent_ms = now_ms;
    char v[64];
    snprintf(v, sizeof(v), "%" PRIu64 " %" PRIu64, e->row.token, n->self);
    named_record_put(n, SIDECAR_NAMED_STOPPED_PREFIX, e->name, v, NULL);
}

/* This member's declaration, in the store as it is in its config. */
static void declare(sidecar_named_t *n, uint64_t now_ms)
{
    if (n->decl_json == NULL || n->decl_stored || now_ms - n->decl_sent_ms < RETRY_MS)
        return;
    n->decl_sent_ms = now_ms;
    named_record_put(n, SIDECAR_NAMED_DECLARED_PREFIX, n->cfg->name, n->decl_json, NULL);
}

static int handover_ask(sidecar_named_t *n, struct named_election *e, uint64_t to,
                        const char *reason);

static void removed_closed_cb(void *ud);
static void closed_one_cb(void *ud);

/* An election this member stops holding for good (a reload removed it, or electd stops):
 * asks for a handover of what it holds (a removed one is also moved by the leader, which sees
 * the declaration change), and closes a removed election's controller once nothing runs. */
static void let_go(sidecar_named_t *n, struct named_election *e, uint64_t now_ms)
{
    bool mine = e->has_row && e->row.holder == n->self;
    if (mine && !named_moving(e) && now_ms - e->asked_ms >= RETRY_MS) {
        e->asked_ms = now_ms;
        handover_ask(n, e, 0, n->stopping ? "shutdown" : "undeclared");
    }
    bool clean;
    if (e->removed && e->w != NULL && !mine && sidecar_workload_idle(e->w, &clean)) {
        sidecar_workload_t *w = e->w;
        e->w = NULL;
        n->removed_closing++;
        sidecar_workload_close(w, removed_closed_cb, n);
        SIDECAR_LOG(SIDECAR_LOG_INFO, "named election removed",
                    SIDECAR_LOG_STR("election", e->name));
    }
}

static void stopped_one_cb(void *ud);

/* Shutdown: once nothing is held here any more (or the bound passed), the controllers stop.
 * A stopping member runs nothing (its workloads stop at once); what it waits for is the table
 * saying so, which lets each successor start without waiting out this member's session. Once
 * nothing runs here that takes the leader at most a placement look and a commit: two election
 * timeouts bound it, also when no leader is left to do it (every member stopping at once). */
static void stop_when_handed_over(sidecar_named_t *n, uint64_t now_ms)
{
    if (n->stop_done)
        return;
    bool held = false, running = false, clean;
    for (size_t i = 0; i < n->n_els; i++) {
        const struct named_election *e = n->els[i];
        held = held || (e->has_row && e->row.holder == n->self);
        running = running || (e->w != NULL && !sidecar_workload_idle(e->w, &clean));
    }
    if (running)
        n->idle_by_ms = 0;
    else if (n->idle_by_ms == 0)
        n->idle_by_ms = now_ms + 2 * (uint64_t)n->cfg->election_timeout_ms;
    if (held && now_ms < n->stop_by_ms && (running || now_ms < n->idle_by_ms))
        return;
    if (held)
        SIDECAR_LOG(SIDECAR_LOG_WARN,
                    "named elections not handed over in time; stopping anyway (they move when "
                    "this member's session is over)");
    n->stop_done = true;
    n->stops_pending = 1; /* held until every controller was asked */
    for (size_t i = 0; i < n->n_els; i++)
        if (n->els[i]->w != NULL) {
            n->stops_pending++;
            sidecar_workload_stop(n->els[i]->w, stopped_one_cb, n);
        }
    stopped_one_cb(n);
}

/* Many elections come with bursts — hundreds of hooks or shims started at once, the view
 * read again — whose freed memory the allocator keeps: given back to the system now and
 * then, so that an idle member's RSS is what it uses. */
static void trim(sidecar_named_t *n, uint64_t now_ms)
{
    if (n->n_els < TRIM_ELECTIONS_MIN || now_ms < n->trim_at_ms)
        return;
    n->trim_at_ms = now_ms + TRIM_EVERY_MS;
    malloc_trim(0);
}

static void timer_cb(uv_timer_t *t);

static void schedule(sidecar_named_t *n, uint64_t delay_ms)
{
    if (!n->timer_open || n->close_cb != NULL)
        return;
    uint64_t due = uv_now(n->loop) + delay_ms;
    if (n->timer_due_ms != 0 && n->timer_due_ms <= due && uv_is_active((uv_handle_t *)&n->timer))
        return;
    n->timer_due_ms = due;
    uv_timer_start(&n->timer, timer_cb, delay_ms, 0);
}

static void evaluate(sidecar_named_t *n)
{
    if (n->close_cb != NULL)
        return;
    sidecar_node_state_t st;
    sidecar_node_state(n->node, &st);
    if (st.applied != n->last_cb_index)
        n->dirty = true; /* applied without a callback: a snapshot was installed */
    if (n->dirty && st.store_ok) {
        int rv = named_view_refresh(n);
        if (rv != 0)
            SIDECAR_LOG(SIDECAR_LOG_ERROR, "named elections: cannot read the store",
                        SIDECAR_LOG_STR("error", store_strerror(rv)));
        else
            named_failover_view(n);
        n->last_cb_index = st.applied;
        n->full_due = true;
    }
    named_failover_poll(n);
    uint64_t until_ns, index, now_ns = sidecar_clock_boot_ns(), now_ms = now_ns / 1000000;
    sidecar_node_session(n->node, &until_ns, &index);
    /* A renewal counts once the state it came with has applied (raft_session_index). */
    if (st.applied >= index && until_ns > n->trusted_until_ns)
        n->trusted_until_ns = until_ns;
    /* Every election is looked at after a change, else every few heartbeats: in between a
     * running workload still has more than its refresh margin left, and its controller stops
     * it by itself at its stop point. */
    bool full = n->full_due || n->stopping || now_ms >= n->full_at_ms ||
                (now_ns >= n->push_at_ns && n->trusted_until_ns > n->pushed_until_ns);
    n->full_due = false;
    if (full)
        n->full_at_ms = now_ms + FULL_EVERY_HEARTBEATS * (uint64_t)n->cfg->heartbeat_interval_ms;
    if (st.store_ok && full)
        declare(n, now_ms);
    if (full) {
        tell_all(n, &st, now_ns);
        n->pushed_until_ns = n->trusted_until_ns;
    }
    for (size_t i = 0; full && i < n->n_els; i++) {
        struct named_election *e = n->els[i];
        if (st.store_ok)
            acknowledge(n, e, now_ms);
        if (e->removed || n->stopping)
            let_go(n, e, now_ms);
    }
    if (n->stopping)
        stop_when_handed_over(n, now_ms);
    named_leader_step(n, &st, full);
    trim(n, now_ms);
    /* Waiting for a renewal with a deadline near its margin (a leader change): look at every
     * tick, so that the renewal is handed on the moment it is seen. */
    bool waiting = now_ns >= n->push_at_ns;
    /* No election anywhere and nothing pending: no look every heartbeat. A change applied or
     * of the node's state calls it back, and so does a member's session (below). */
    bool quiet = n->n_els == 0 && !n->dirty && !n->stopping && n->removed_closing == 0 &&
                 (n->decl_json == NULL || n->decl_stored);
    if (!quiet || n->full_due || n->eph_busy)
        schedule(n, n->full_due ? 1 : waiting ? n->cfg->tick_ms : n->cfg->heartbeat_interval_ms);
    /* A leader looks again the moment a member's session may be declared over (one tick
     * after: the core's clock may be that late), so that its elections move and its ephemeral
     * keys go at once. With neither, a session's end changes nothing: no wake-up for it. */
    bool sessions_matter = n->n_els > 0 || n->eph_n_owners > 0;
    for (size_t i = 0; n->leading && sessions_matter && i < n->n_members; i++) {
        uint64_t at_ns = sidecar_node_session_expires_ns(n->node, n->members[i].id);
        if (n->members[i].alive && at_ns > now_ns)
            schedule(n, (at_ns - now_ns) / 1000000 + n->cfg->tick_ms);
    }
}

static void timer_cb(uv_timer_t *t)
{
    sidecar_named_t *n = t->data;
    n->timer_due_ms = 0;
    evaluate(n);
}

/* Whether the node's state moved from a to b only by a lease extended before it ran out: a
 * leader's lease moves forward with every heartbeat round, and elections depend on sessions,
 * not on that lease (a lapsed one is a change: leading is decided on it). */
static bool lease_extended_only(const sidecar_node_state_t *a, const sidecar_node_state_t *b)
{
    sidecar_node_state_t x = *b;
    x.lease_deadline_ns = a->lease_deadline_ns;
    return memcmp(a, &x, sizeof(x)) == 0 && b->lease_deadline_ns >= a->lease_deadline_ns &&
           a->lease_deadline_ns > sidecar_clock_boot_ns();
}

static void changed_cb(void *ud, const sidecar_node_state_t *st)
{
    sidecar_named_t *n = ud;
    bool same = lease_extended_only(&n->seen, st);
    n->seen = *st;
    if (same)
        return;
    n->full_due = true;
    schedule(n, 0);
}

static void applied_cb(void *ud, const raft_entry_t *e, const store_result_t *res)
{
    (void)res;
    sidecar_named_t *n = ud;
    n->last_cb_index = e->index;
    if (named_view_touches(e)) {
        named_failover_applied(n, e, res);
        n->dirty = true;
        schedule(n, 0);
    } else if (n->leading && named_ephemeral_touches(e)) {
        schedule(n, n->cfg->heartbeat_interval_ms);
    }
}

/* A controller gave up on its election: ask for it to move (the leader picks a member that
 * has not given up on it, or gives it back here under a new token if none can take it). Its
 * workload stopped: a handover of it is acknowledged now, not at the next full look. */
static void owner_cb(void *ud, sidecar_workload_t *w, sidecar_workload_news_t news)
{
    (void)w;
    struct named_election *e = ud;
    sidecar_named_t *n = e->owner;
    if (news == SIDECAR_WORKLOAD_STOPPED) {
        if (named_moving(e)) {
            n->full_due = true;
            schedule(n, 0);
        }
        return;
    }
    if (e->has_row && e->row.holder == n->self && !named_moving(e))
        handover_ask(n, e, 0, "gave-up");
}

/* ---- life cycle ----------------------------------------------------------------------------- */

/* The daemon's settings with the election's workload: what its controller reads (at each
 * start, so a reload's new commands apply from the next one). */
static void election_config(struct named_election *e, const sidecar_election_config_t *c)
{
    e->decl = c;
    e->removed = false;
    e->cfg.exec = c->exec;
    e->cfg.on_start = c->on_start;
    e->cfg.on_stop = c->on_stop;
    e->cfg.on_change = c->on_change;
    e->cfg.witness = false;
    e->cfg.stop_timeout_ms = c->stop_timeout_ms;
    e->cfg.hook_timeout_ms = c->hook_timeout_ms;
    e->cfg.max_restarts = c->max_restarts;
}

static int open_controller(sidecar_named_t *n, const sidecar_election_config_t *c, char *errbuf,
                           size_t errlen)
{
    struct named_election *e = named_get_or_add(n, c->name);
    if (e == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    e->owner = n;
    e->cfg = *n->cfg;
    /* A reload replaces (and frees) the daemon's token; the controllers never read it. */
    e->cfg.http_token = NULL;
    election_config(e, c);
    char err[256] = "";
    if (sidecar_workload_open_election(&e->w, n->loop, &e->cfg, c->name, n->node, owner_cb, e, err,
                                       sizeof(err)) != 0) {
        snprintf(errbuf, errlen, "named election %s: %s", c->name, err);
        return -1;
    }
    return 0;
}

static void free_all(sidecar_named_t *n)
{
    for (size_t i = 0; i < n->n_retired; i++) {
        sidecar_config_elections_free(n->retired[i]);
        free(n->retired[i]);
    }
    free(n->retired);
    for (size_t i = 0; i < n->n_els; i++) {
        free(n->els[i]->lists);
        free(n->els[i]->fo.hist);
        free(n->els[i]);
    }
    free(n->els);
    free(n->decl_json);
    free(n);
}

static void closed_noop_cb(void *ud)
{
    (void)ud;
}

int sidecar_named_open(sidecar_named_t **out, uv_loop_t *loop, const sidecar_config_t *cfg,
                       sidecar_node_t *node, char *errbuf, size_t errlen)
{
    sidecar_named_t *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    n->loop = loop;
    n->cfg = cfg;
    n->node = node;
    n->self = sidecar_node_id(node);
    n->dirty = true;
    n->decls = &cfg->elections;
    if (cfg->elections.n > 0 && named_decl_build(n) != 0) {
        snprintf(errbuf, errlen, "out of memory");
        free_all(n);
        return -1;
    }
    uv_timer_init(loop, &n->timer);
    n->timer.data = n;
    n->timer_open = true;
    for (size_t i = 0; i < cfg->elections.n; i++)
        if (open_controller(n, &cfg->elections.items[i], errbuf, errlen) != 0) {
            /* Nothing was told to hold anything: the opened controllers run nothing; they
             * and the runtime are freed once their handles have closed. */
            sidecar_named_close(n, closed_noop_cb, NULL);
            return -1;
        }
    n->obs = (sidecar_node_observer_t){.changed_cb = changed_cb, .applied_cb = applied_cb, .ud = n};
    sidecar_node_observe(node, &n->obs);
    *out = n;
    evaluate(n);
    return 0;
}

static void stopped_one_cb(void *ud)
{
    sidecar_named_t *n = ud;
    ELECTD_CHECK(n->stops_pending > 0);
    if (--n->stops_pending > 0)
        return;
    void (*cb)(void *) = n->stop_cb;
    n->stop_cb = NULL;
    if (cb != NULL)
        cb(n->stop_ud);
}

void sidecar_named_stop(sidecar_named_t *n, void (*cb)(void *ud), void *ud)
{
    n->stopping = true;
    n->stop_cb = cb;
    n->stop_ud = ud;
    uint32_t longest = n->cfg->stop_timeout_ms;
    for (size_t i = 0; i < n->n_els; i++) {
        const struct named_election *e = n->els[i];
        if (e->w == NULL)
            continue;
        uint32_t t = e->cfg.stop_timeout_ms;
        if (e->cfg.on_stop.argc > 0 && e->cfg.hook_timeout_ms > t)
            t = e->cfg.hook_timeout_ms;
        longest = t > longest ? t : longest;
    }
    n->stop_by_ms = named_now_ms() + 2 * (uint64_t)n->cfg->election_timeout_ms + longest;
    if (n->decl_json != NULL && named_decl_build(n) == 0) /* "stopping": receive nothing more */
        n->decl_sent_ms = 0;
    evaluate(n);
}

static void removed_closed_cb(void *ud)
{
    sidecar_named_t *n = ud;
    ELECTD_CHECK(n->removed_closing > 0);
    n->removed_closing--;
    if (n->close_cb != NULL)
        closed_one_cb(n);
}

static void closed_one_cb(void *ud)
{
    sidecar_named_t *n = ud;
    ELECTD_CHECK(n->closes_pending > 0);
    if (--n->closes_pending > 0)
        return;
    void (*cb)(void *) = n->close_cb;
    void *cb_ud = n->close_ud;
    free_all(n);
    cb(cb_ud);
}

static void timer_closed_cb(uv_handle_t *h)
{
    sidecar_named_t *n = h->data;
    n->timer_open = false;
    closed_one_cb(n);
}

void sidecar_named_close(sidecar_named_t *n, void (*cb)(void *ud), void *ud)
{
    sidecar_node_unobserve(n->node, &n->obs);
    n->close_cb = cb;
    n->close_ud = ud;
    n->closes_pending = 1 + n->removed_closing; /* the timer, removed controllers closing */
    for (size_t i = 0; i < n->n_els; i++)
        if (n->els[i]->w != NULL) {
            n->closes_pending++;
            sidecar_workload_close(n->els[i]->w, closed_one_cb, n);
        }
    uv_close((uv_handle_t *)&n->timer, timer_closed_cb);
}

void sidecar_named_reload(sidecar_named_t *n, sidecar_election_list_t *list)
{
    sidecar_election_list_t **r = realloc(n->retired, (n->n_retired + 1) * sizeof(*r));
    sidecar_election_list_t *mine = malloc(sizeof(*mine));
    if (r == NULL || mine == NULL) {
        free(mine);
        if (r != NULL)
            n->retired = r;
        sidecar_config_elections_free(list);
        SIDECAR_LOG(SIDECAR_LOG_ERROR, "reload: named elections kept as they were: out of memory");
        return;
    }
    n->retired = r;
    *mine = *list;
    /* The previous list stays until close: removed controllers may still read it. The list
     * of the configuration itself is the configuration's. */
    if (n->decls != &n->cfg->elections)
        n->retired[n->n_retired++] = (sidecar_election_list_t *)n->decls;
    n->decls = mine;
    size_t added = 0, removed = 0, kept = 0;
    for (size_t i = 0; i < n->n_els; i++) {
        struct named_election *e = n->els[i];
        if (e->decl == NULL)
            continue;
        const sidecar_election_config_t *c = sidecar_config_election_find(mine, e->name);
        if (c != NULL) {
            election_config(e, c);
            kept++;
        } else {
            e->decl = NULL;
            e->removed = true;
            removed++;
        }
    }
    for (size_t i = 0; i < mine->n; i++) {
        struct named_election *e = named_find(n, mine->items[i].name);
        if (e != NULL && e->w != NULL) {
            if (e->removed) { /* removed by an earlier reload, not yet closed: back */
                election_config(e, &mine->items[i]);
                kept++;
            }
            continue;
        }
        char err[300];
        if (open_controller(n, &mine->items[i], err, sizeof(err)) != 0)
            SIDECAR_LOG(SIDECAR_LOG_ERROR, "reload: named election not started",
                        SIDECAR_LOG_STR("error", err));
        else
            added++;
    }
    if (named_decl_build(n) != 0)
        SIDECAR_LOG(SIDECAR_LOG_ERROR, "reload: cannot build the declaration: out of memory");
    n->decl_sent_ms = 0;
    n->full_due = true;
    SIDECAR_LOG(SIDECAR_LOG_INFO, "reload: named elections", SIDECAR_LOG_UINT("added", added),
                SIDECAR_LOG_UINT("removed", removed), SIDECAR_LOG_UINT("kept", kept));
    schedule(n, 0);
}

/* ---- queries and requests ------------------------------------------------------------------ */

static void status_of(const struct named_election *e, sidecar_named_status_t *out)
{
    memset(out, 0, sizeof(*out));
    strcpy(out->name, e->name);
    if (e->has_row) {
        out->holder = e->row.holder;
        out->token = e->row.token;
        out->since_unix_ms = e->row.holder ? e->row.since_unix_ms : 0;
    }
    out->state = named_moving(e) ? "handover" : out->holder ? "held" : "unheld";
    out->handover_to = named_moving(e) ? e->ho_to : 0;
    out->declared_here = e->decl != NULL;
    out->failover = e->fo.hist;
    out->local = SIDECAR_WORKLOAD_STANDBY;
    if (e->w != NULL) {
        sidecar_workload_info_t info;
        sidecar_workload_info(e->w, &info);
        out->local = info.state;
        out->starts = info.starts;
        out->restarts = info.restarts;
    }
}

size_t sidecar_named_list(sidecar_named_t *n, sidecar_named_status_t *out, size_t cap,
                          size_t *total)
{
    size_t k = 0;
    for (size_t i = 0; i < n->n_els && k < cap; i++)
        status_of(n->els[i], &out[k++]);
    *total = n->n_els;
    return k;
}

int sidecar_named_get(sidecar_named_t *n, const char *name, sidecar_named_status_t *out)
{
    const struct named_election *e = named_find(n, name);
    if (e == NULL)
        return SIDECAR_NAMED_ENOTFOUND;
    status_of(e, out);
    return 0;
}

static int handover_ask(sidecar_named_t *n, struct named_election *e, uint64_t to,
                        const char *reason)
{
    char v[128];
    snprintf(v, sizeof(v), "%" PRIu64 " %" PRIu64 " %" PRIu64 " %s", e->row.token, to,
             e->row.holder, reason);
    int rv = named_record_put(n, SIDECAR_NAMED_HANDOVER_PREFIX, e->name, v, NULL);
    if (rv == RAFT_ENOTLEADER)
        return SIDECAR_NAMED_ENOLEADER;
    return rv == 0 ? 0 : SIDECAR_NAMED_ENOMEM;
}

int sidecar_named_transfer(sidecar_named_t *n, const char *name, uint64_t to)
{
    struct named_election *e = named_find(n, name);
    if (e == NULL || (!e->has_row && e->n_eligible == 0))
        return SIDECAR_NAMED_ENOTFOUND;
    if (!e->has_row || e->row.holder == 0)
        return SIDECAR_NAMED_ENOHOLDER;
    if (named_moving(e))
        return SIDECAR_NAMED_EBUSY;
    if (to == e->row.holder || (to != 0 && !named_eligible(e, to)))
        return SIDECAR_NAMED_ETARGET;
    if (to == 0) {
        bool other = false;
        for (size_t i = 0; i < e->n_eligible; i++)
            other = other || e->eligible[i] != e->row.holder;
        if (!other)
            return SIDECAR_NAMED_ETARGET;
    }
    return handover_ask(n, e, to, "transfer");
}

bool sidecar_named_token_check(const sidecar_named_t *n, const char *token, size_t len,
                               const char **election)
{
    for (size_t i = 0; i < n->n_els; i++) {
        const struct named_election *e = n->els[i];
        if (e->w != NULL && sidecar_workload_token_check(e->w, token, len)) {
            if (election != NULL)
                *election = e->name;
            return true;
        }
    }
    return false;
}
