/* prometheus.c — GET /metrics in the Prometheus text format 0.0.4: role, term, leader
 * changes and failover durations, indexes, lease, workload and hooks, named elections, peers,
 * HTTP. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "common.h"

/* Elections with series of their own: beyond, only the totals count them (a group runs 1,000
 * comfortably; each election adds four series and a histogram). */
#define METRICS_ELECTIONS_MAX 2048

typedef sidecar_buf_t buf_t;

static void gauge(buf_t *b, const char *name, const char *help, double v)
{
    sidecar_metrics_header(b, name, "gauge", help);
    sidecar_buf_printf(b, "%s %.17g\n", name, v);
}

static void counter(buf_t *b, const char *name, const char *help, uint64_t v)
{
    sidecar_metrics_header(b, name, "counter", help);
    sidecar_buf_printf(b, "%s %" PRIu64 "\n", name, v);
}

static void peer_label(buf_t *b, sidecar_api_t *api, uint64_t id)
{
    char name[64];
    sidecar_node_member_name(api->node, id, name, sizeof(name));
    sidecar_buf_printf(b, "{peer=\"");
    sidecar_metrics_label(b, name);
    sidecar_buf_printf(b, "\"}");
}

struct http_rows {
    buf_t *b;
};

static void http_row(const char *method, const char *pattern, int status, uint64_t count,
                     void *data)
{
    buf_t *b = ((struct http_rows *)data)->b;
    sidecar_buf_printf(b, "electd_http_requests_total{method=\"");
    sidecar_metrics_label(b, method);
    sidecar_buf_printf(b, "\",route=\"");
    sidecar_metrics_label(b, pattern && *pattern ? pattern : "unmatched");
    sidecar_buf_printf(b, "\",code=\"%d\"} %" PRIu64 "\n", status, count);
}

/* Role, term, leader changes and failover times, indexes, the lease, the store, members. */
static void core_metrics(buf_t *b, sidecar_api_t *api, const raft_t *r)
{
    sidecar_node_state_t st;
    sidecar_node_state(api->node, &st);
    sidecar_metrics_header(b, "electd_role", "gauge", "1 for this node's Raft role");
    static const raft_role_t roles[] = {RAFT_FOLLOWER, RAFT_PRECANDIDATE, RAFT_CANDIDATE,
                                        RAFT_LEADER};
    for (size_t i = 0; i < 4; i++)
        sidecar_buf_printf(b, "electd_role{role=\"%s\"} %d\n", raft_role_name(roles[i]),
                           st.role == roles[i]);
    gauge(b, "electd_term", "current Raft term", (double)st.term);
    gauge(b, "electd_leader_known", "1 when this node knows a leader", st.leader != 0);
    counter(b, "electd_leader_changes_total", "new leaders seen by this node",
            api->watch.leader_changes);
    sidecar_metrics_header(b, "electd_failover_duration_seconds", "histogram",
                           "time this node spent without a known leader, per failover");
    sidecar_metrics_hist(b, "electd_failover_duration_seconds", NULL, &api->watch.failover);
    gauge(b, "electd_commit_index", "Raft commit index", (double)st.commit);
    gauge(b, "electd_applied_index", "index applied to the state machine", (double)st.applied);
    gauge(b, "electd_last_index", "last Raft log index", (double)raft_last_index(r));
    gauge(b, "electd_fencing_token", "current epoch (the fencing token)", (double)st.epoch);
    uint64_t now = sidecar_clock_boot_ns();
    double lease = st.role == RAFT_LEADER && st.lease_deadline_ns > now
                       ? (double)(st.lease_deadline_ns - now) / 1e9
                       : 0;
    gauge(b, "electd_lease_remaining_seconds", "leader lease left (0 when not holding one)", lease);
    gauge(b, "electd_maintenance",
          "1 while maintenance mode is on (no restarts, preemption, rebalancing or voluntary "
          "transfers)",
          sidecar_maintenance_on(api->node));
    gauge(b, "electd_priority", "this member's --priority (0: never primary while another can be)",
          (double)api->cfg->priority);
    gauge(b, "electd_store_ok", "1 while the store accepts writes", st.store_ok);
    counter(b, "electd_store_corrupt_values_total",
            "stored values refused because they failed their checksum (reads, snapshots, backups)",
            store_corrupt_values(sidecar_node_store(api->node)));
    gauge(b, "electd_watchers", "KV watch streams and long polls open here",
          (double)api->kv_watch.n);
    counter(b, "electd_watch_cutoffs_total",
            "KV watch streams cut off here because their client did not read fast enough",
            api->kv_watch.cutoffs);
    const raft_conf_t *conf = raft_conf(r);
    gauge(b, "electd_members", "members in the configuration", conf->n);
    gauge(b, "electd_voters", "voting members", raft_conf_voters(conf));
}

/* The workload's state, starts, failures and give-ups; hooks. */
static void workload_metrics(buf_t *b, sidecar_api_t *api)
{
    sidecar_workload_info_t wi;
    sidecar_workload_info(api->workload, &wi);
    sidecar_metrics_header(b, "electd_workload_state", "gauge",
                           "1 for the workload's state on this node");
    for (int s = SIDECAR_WORKLOAD_STANDBY; s <= SIDECAR_WORKLOAD_STOPPING; s++)
        sidecar_buf_printf(b, "electd_workload_state{state=\"%s\"} %d\n",
                           sidecar_workload_state_name((sidecar_workload_state_t)s),
                           (int)wi.state == s);
    counter(b, "electd_workload_starts_total", "workload starts (or on-start runs) here",
            wi.starts);
    counter(b, "electd_workload_failures_total", "unplanned workload exits and failed starts here",
            wi.restarts);
    counter(b, "electd_workload_gave_up_total",
            "times this member gave up on the workload and handed leadership on", wi.gave_up);
    sidecar_workload_gave_up_t g[RAFT_MAX_MEMBERS];
    size_t ng = sidecar_workload_gave_up(api->workload, g, RAFT_MAX_MEMBERS);
    sidecar_metrics_header(b, "electd_workload_gave_up", "gauge",
                           "members that gave up recently (replicated): give-ups in a row");
    for (size_t i = 0; i < ng; i++) {
        sidecar_buf_printf(b, "electd_workload_gave_up{member=\"");
        sidecar_metrics_label(b, g[i].member);
        sidecar_buf_printf(b, "\"} %" PRIu64 "\n", g[i].count);
    }
    counter(b, "electd_hooks_total", "hook runs", wi.hooks_run);
    counter(b, "electd_hook_failures_total", "hooks that failed or timed out", wi.hooks_failed);
    sidecar_metrics_header(b, "electd_hook_duration_seconds", "histogram", "hook run time");
    sidecar_metrics_hist(b, "electd_hook_duration_seconds", NULL, &wi.hook_seconds);
}

/* One series per election of a family: name{election="E"} value. */
static void election_series(buf_t *b, const char *name, const sidecar_named_status_t *e, uint64_t v)
{
    sidecar_buf_printf(b, "%s{election=\"", name);
    sidecar_metrics_label(b, e->name);
    sidecar_buf_printf(b, "\"} %" PRIu64 "\n", v);
}

/* Per election, its failovers to this member: a histogram once it had one; before, only its
 * +Inf bucket, sum and count, all 0 (a thousand elections' empty buckets would be most of the
 * page; summing buckets by le is unchanged by the buckets left out, which are 0). */
static void election_failovers(buf_t *b, const sidecar_named_status_t *e, size_t n)
{
    static const char *name = "electd_election_failover_duration_seconds";
    sidecar_metrics_header(b, name, "histogram",
                           "failovers of the election to this member (its holder dead, removed or "
                           "given up; not a handover): from the first record applied here that "
                           "showed the holder lost (for a dead one the ASSIGN that declares its "
                           "session over: the detection before it is not included) to the "
                           "workload's start here");
    for (size_t i = 0; i < n; i++) {
        char labels[STORE_ELECTION_NAME_MAX + 16]; /* names need no escaping (store.h) */
        snprintf(labels, sizeof(labels), "election=\"%s\"", e[i].name);
        if (e[i].failover != NULL) {
            sidecar_metrics_hist(b, name, labels, e[i].failover);
            continue;
        }
        sidecar_buf_printf(b, "%s_bucket{%s,le=\"+Inf\"} 0\n", name, labels);
        sidecar_buf_printf(b, "%s_sum{%s} 0\n%s_count{%s} 0\n", name, labels, name, labels);
    }
}

/* Named elections: how many, how many held here, and per election (the first
 * METRICS_ELECTIONS_MAX by name) whether this member holds it, its token, and this member's
 * starts and unplanned restarts of its workload. */
static void election_metrics(buf_t *b, sidecar_api_t *api)
{
    api_elections_iter_t it;
    if (api_elections_begin(&it, api) != 0) {
        b->failed = 1;
        return;
    }
    sidecar_named_status_t *e = malloc(METRICS_ELECTIONS_MAX * sizeof(*e)), cur;
    size_t n = 0;
    uint64_t total = 0, held = 0, self = sidecar_node_id(api->node);
    while (api_elections_next(&it, &cur)) {
        total++;
        held += cur.holder == self;
        if (e != NULL && n < METRICS_ELECTIONS_MAX)
            e[n++] = cur;
    }
    api_elections_end(&it);
    if (e == NULL) {
        b->failed = 1;
        return;
    }
    gauge(b, "electd_elections", "named elections known (declared by a member, or assigned)",
          (double)total);
    gauge(b, "electd_elections_held", "named elections this member holds", (double)held);
    static const char *names[] = {"electd_election_is_holder", "electd_election_fencing_token",
                                  "electd_election_starts_total", "electd_election_restarts_total"};
    static const char *types[] = {"gauge", "gauge", "counter", "counter"};
    static const char *helps[] = {
        "1 when this member holds the election",
        "the election's fencing token (rises with every change of holder)",
        "starts of the election's workload on this member",
        "unplanned exits and failed starts of the election's workload on this member"};
    for (int k = 0; k < 4; k++) {
        sidecar_metrics_header(b, names[k], types[k], helps[k]);
        for (size_t i = 0; i < n; i++)
            election_series(b, names[k], &e[i],
                            k == 0   ? e[i].holder == self
                            : k == 1 ? e[i].token
                            : k == 2 ? e[i].starts
                                     : e[i].restarts);
    }
    election_failovers(b, e, n);
    free(e);
}

/* The transport's per-peer connection and frame counters. */
static void peer_link_metrics(buf_t *b, sidecar_api_t *api, sidecar_transport_t *t)
{
    sidecar_transport_peer_stats_t ps[RAFT_MAX_MEMBERS * 2];
    size_t np = sidecar_transport_stats(t, ps, RAFT_MAX_MEMBERS * 2);
    static const char *names[] = {"electd_peer_connected", "electd_peer_sent_frames_total",
                                  "electd_peer_dropped_frames_total", "electd_peer_queued_bytes",
                                  "electd_peer_connects_total"};
    static const char *types[] = {"gauge", "counter", "counter", "gauge", "counter"};
    static const char *helps[] = {
        "1 while the outbound connection to the peer is up", "Raft frames sent to the peer",
        "frames dropped (peer unreachable or queue full)", "bytes waiting to be sent",
        "successful handshakes with the peer"};
    for (int k = 0; k < 5; k++) {
        sidecar_metrics_header(b, names[k], types[k], helps[k]);
        for (size_t i = 0; i < np; i++) {
            uint64_t v = k == 0   ? ps[i].connected
                         : k == 1 ? ps[i].sent
                         : k == 2 ? ps[i].dropped
                         : k == 3 ? ps[i].queued_bytes
                                  : ps[i].connects;
            sidecar_buf_printf(b, "%s", names[k]);
            peer_label(b, api, ps[i].id);
            sidecar_buf_printf(b, " %" PRIu64 "\n", v);
        }
    }
}

/* The leader's view of each peer's replication: last contact and match index. */
static void peer_progress_metrics(buf_t *b, sidecar_api_t *api, const raft_t *r)
{
    raft_progress_t pr[RAFT_MAX_MEMBERS];
    size_t npr = raft_progress(r, pr, RAFT_MAX_MEMBERS);
    sidecar_metrics_header(b, "electd_peer_last_contact_seconds", "gauge",
                           "leader only: time since the peer last answered");
    for (size_t i = 0; i < npr; i++) {
        if (pr[i].id == sidecar_node_id(api->node))
            continue;
        sidecar_buf_printf(b, "electd_peer_last_contact_seconds");
        peer_label(b, api, pr[i].id);
        sidecar_buf_printf(b, " %.3f\n",
                           (double)(raft_now(r) - pr[i].last_contact_tick) * api->cfg->tick_ms /
                               1000.0);
    }
    sidecar_metrics_header(b, "electd_peer_match_index", "gauge",
                           "leader only: last log index known replicated on the peer");
    for (size_t i = 0; i < npr; i++) {
        sidecar_buf_printf(b, "electd_peer_match_index");
        peer_label(b, api, pr[i].id);
        sidecar_buf_printf(b, " %" PRIu64 "\n", pr[i].match);
    }
}

/* Messages and connections refused: by the core, at the peer port, impostors. */
static void peer_refusal_metrics(buf_t *b, const raft_t *r, sidecar_transport_t *t)
{
    counter(b, "electd_raft_dropped_messages_total",
            "peer messages the Raft core ignored as invalid, stale or unexpected", raft_dropped(r));
    counter(b, "electd_peer_rejected_total",
            "inbound peer connections refused or dropped for bad input",
            sidecar_transport_rejected(t));
    counter(b, "electd_peer_tls_refused_total",
            "peer connections refused at the TLS layer (certificate, name, plaintext)",
            sidecar_transport_tls_refused(t));
    counter(b, "electd_peer_unknown_dropped_total",
            "handshakes and frames dropped because the sender is not a member",
            sidecar_transport_unknown_dropped(t));
    sidecar_transport_refusal_t rf[SIDECAR_TRANSPORT_REFUSED_MAX];
    size_t nrf = sidecar_transport_refused(t, rf, SIDECAR_TRANSPORT_REFUSED_MAX);
    uint64_t impostors = 0;
    for (size_t i = 0; i < nrf; i++)
        impostors += rf[i].count;
    counter(b, "electd_peer_impostor_refused_total",
            "handshakes refused from a second process under a member's name (recent ones)",
            impostors);
}

/* HTTP responses by route and code, connections; log lines dropped. */
static void http_metrics(buf_t *b, sidecar_api_t *api)
{
    sidecar_metrics_header(b, "electd_http_requests_total", "counter",
                           "HTTP responses by method, route and status code");
    struct http_rows rows = {b};
    http_server_stats_foreach(api->srv, http_row, &rows);
    http_counters_t hc;
    http_server_counters(api->srv, &hc);
    gauge(b, "electd_http_connections_open", "open HTTP connections", (double)hc.connections_open);
    counter(b, "electd_http_connections_rejected_total",
            "HTTP connections refused at the connection limit", hc.connections_rejected);
    counter(b, "electd_http_tls_failures_total",
            "HTTPS connections closed by a TLS error (refused handshake, plaintext, bad record)",
            hc.tls_failures);
    counter(b, "electd_log_dropped_lines_total", "log lines that could not be written",
            sidecar_log_dropped());
}

static void h_metrics(http_req_t *req, void *data)
{
    sidecar_api_t *api = data;
    buf_t b = {0};
    const raft_t *r = sidecar_node_raft(api->node);
    sidecar_transport_t *t = sidecar_node_transport(api->node);
    core_metrics(&b, api, r);
    workload_metrics(&b, api);
    election_metrics(&b, api);
    peer_link_metrics(&b, api, t);
    peer_progress_metrics(&b, api, r);
    peer_refusal_metrics(&b, r, t);
    counter(&b, "electd_released_notices_received_total",
            "released-lease notices received from a dead leader's shim (the core takes one only "
            "from the leader it follows, in its term)",
            sidecar_node_released_notices(api->node));
    counter(&b, "electd_quiet_leader_rounds_total",
            "heartbeat rounds this member, an idle leader, sent in the same wake-up as it read "
            "its members' answers to the round before (docs/architecture.md, a quiet leader)",
            sidecar_node_quiet_rounds(api->node));
    counter(&b, "electd_rounds_in_turn_total",
            "heartbeat rounds this member, a quiet leader of three, sent to one of its two "
            "followers, the two in turn (docs/guarantees.md, the lease timeline)",
            sidecar_node_rounds_in_turn(api->node));
    http_metrics(&b, api);
    if (b.failed)
        http_req_reply_error(req, 503, "busy", "out of memory");
    else
        http_req_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    sidecar_buf_free(&b);
}

void api_metrics_register(sidecar_api_t *api)
{
    http_server_route(api->srv, HTTP_METHOD_GET, "/metrics", 0, h_metrics, api);
}
