/* api.c — handlers of the local HTTP API: status, leader, health, readiness, primary; the
 * server and its credentials. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "api_int.h"
#include "common.h"

void api_json_u64(cJSON *obj, const char *key, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    cJSON_AddRawToObject(obj, key, buf);
}

void api_json_i64(cJSON *obj, const char *key, int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    cJSON_AddRawToObject(obj, key, buf);
}

void api_member_fields(const char *addr, char *name, size_t nlen, const char **peer_addr)
{
    if (sidecar_member_split(addr, name, nlen, peer_addr) != 0) {
        snprintf(name, nlen, "%s", addr ? addr : "");
        *peer_addr = "";
    }
}

static void add_id(cJSON *obj, const char *key, uint64_t id)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%016" PRIx64, id);
    cJSON_AddStringToObject(obj, key, buf);
}

const char *api_member_url(const sidecar_api_t *api, const char *http, char *buf, size_t len)
{
    snprintf(buf, len, "%s://%s", api_scheme(api), http);
    return buf;
}

cJSON *api_member_json(sidecar_api_t *api, uint64_t id)
{
    cJSON *l = cJSON_CreateObject();
    if (id == 0) {
        cJSON_AddNullToObject(l, "id");
        cJSON_AddNullToObject(l, "name");
        return l;
    }
    char name[64];
    const char *peer;
    api_member_fields(sidecar_node_member_addr(api->node, id), name, sizeof(name), &peer);
    add_id(l, "id", id);
    cJSON_AddStringToObject(l, "name", name);
    cJSON_AddStringToObject(l, "peer_addr", peer);
    const char *http = sidecar_node_member_http(api->node, id);
    char url[API_URL_MAX];
    if (http != NULL) {
        cJSON_AddStringToObject(l, "http", http);
        cJSON_AddStringToObject(l, "url", api_member_url(api, http, url, sizeof(url)));
    } else {
        cJSON_AddNullToObject(l, "http");
        cJSON_AddNullToObject(l, "url");
    }
    return l;
}

void api_reply_not_leader(sidecar_api_t *api, http_req_t *req)
{
    api_reply_not_leader_to(api, req, http_req_target(req));
}

void api_reply_not_leader_to(sidecar_api_t *api, http_req_t *req, const char *target)
{
    sidecar_node_state_t st;
    sidecar_node_state(api->node, &st);
    if (st.leader == 0 || st.leader == sidecar_node_id(api->node)) {
        http_req_header_add(req, "Retry-After", "1");
        http_req_reply_error(req, 503, "no_leader",
                             "no leader is known right now (election in progress or no quorum)");
        return;
    }
    if (api_forward(api, req, sidecar_node_member_http(api->node, st.leader), target))
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(err, "code", "not_leader");
    cJSON_AddStringToObject(err, "message", "this node is not the leader; ask the leader");
    cJSON_AddItemToObject(err, "leader", api_member_json(api, st.leader));
    const char *http = sidecar_node_member_http(api->node, st.leader);
    size_t cap = http != NULL ? strlen(http) + strlen(target) + 16 : 0;
    char *loc = http != NULL ? malloc(cap) : NULL; /* a key's target may be 1.5 KiB encoded */
    if (loc != NULL) {
        snprintf(loc, cap, "%s://%s%s", api_scheme(api), http, target);
        http_req_header_add(req, "Location", loc);
        free(loc);
    }
    http_req_reply_json(req, 421, o);
    cJSON_Delete(o);
}

bool api_store_refused(sidecar_api_t *api, http_req_t *req)
{
    sidecar_node_state_t st;
    sidecar_node_state(api->node, &st);
    if (st.store_ok)
        return false;
    cJSON *o = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(err, "code", "store_failed");
    cJSON_AddStringToObject(err, "message",
                            "this member cannot write to its data directory (disk full or I/O "
                            "error; see its log): ask another member");
    if (st.leader != 0 && st.leader != sidecar_node_id(api->node))
        cJSON_AddItemToObject(err, "leader", api_member_json(api, st.leader));
    http_req_header_add(req, "Retry-After", "1");
    http_req_reply_json(req, 503, o);
    cJSON_Delete(o);
    return true;
}

static int64_t lease_remaining_ms(const sidecar_node_state_t *st)
{
    uint64_t now = sidecar_clock_boot_ns();
    if (st->role != RAFT_LEADER || st->lease_deadline_ns <= now)
        return 0;
    return (int64_t)((st->lease_deadline_ns - now) / 1000000);
}

/* {"id":..,"name":..,"peer_addr":..,"http":..,"url":..} of a member, or nulls for id 0. */
static void member_buf(sidecar_buf_t *b, sidecar_api_t *api, uint64_t id)
{
    if (id == 0) {
        sidecar_buf_printf(b, "{\"id\":null,\"name\":null}");
        return;
    }
    char name[64];
    const char *peer;
    api_member_fields(sidecar_node_member_addr(api->node, id), name, sizeof(name), &peer);
    const char *http = sidecar_node_member_http(api->node, id);
    sidecar_buf_printf(b, "{\"id\":\"%016" PRIx64 "\",\"name\":", id);
    sidecar_buf_json_str(b, name);
    sidecar_buf_printf(b, ",\"peer_addr\":");
    sidecar_buf_json_str(b, peer);
    sidecar_buf_printf(b, ",\"http\":");
    if (http != NULL) {
        char url[API_URL_MAX];
        sidecar_buf_json_str(b, http);
        sidecar_buf_printf(b, ",\"url\":");
        sidecar_buf_json_str(b, api_member_url(api, http, url, sizeof(url)));
    } else {
        sidecar_buf_printf(b, "null,\"url\":null");
    }
    sidecar_buf_printf(b, "}");
}

/* "refused_peers": second processes under a member's name that this node refused. */
static void refused_buf(sidecar_buf_t *b, sidecar_api_t *api)
{
    sidecar_transport_refusal_t rf[SIDECAR_TRANSPORT_REFUSED_MAX];
    size_t n = sidecar_transport_refused(sidecar_node_transport(api->node), rf,
                                         SIDECAR_TRANSPORT_REFUSED_MAX);
    sidecar_buf_printf(b, ",\"refused_peers\":[");
    for (size_t i = 0; i < n; i++) {
        sidecar_buf_printf(b, "%s{\"id\":\"%016" PRIx64 "\",\"name\":", i ? "," : "", rf[i].id);
        sidecar_buf_json_str(b, rf[i].name);
        sidecar_buf_printf(b, ",\"remote\":");
        sidecar_buf_json_str(b, rf[i].remote);
        sidecar_buf_printf(b, ",\"advertised\":");
        sidecar_buf_json_str(b, rf[i].advertised);
        sidecar_buf_printf(b,
                           ",\"instance\":\"%s\",\"first_unix_ms\":%" PRIu64
                           ",\"last_unix_ms\":%" PRIu64 ",\"count\":%" PRIu64 "}",
                           rf[i].instance, rf[i].first_unix_ms, rf[i].last_unix_ms, rf[i].count);
    }
    sidecar_buf_printf(b, "]");
}

/* "workload":{...} of /v1/status: mode, state, restarts, hooks, recent give-ups. */
static void status_workload(sidecar_buf_t *b, sidecar_api_t *api)
{
    sidecar_workload_info_t wi;
    sidecar_workload_info(api->workload, &wi);
    sidecar_buf_printf(b,
                       ",\"workload\":{\"mode\":\"%s\",\"state\":\"%s\",\"pid\":%d,"
                       "\"restarts\":%" PRIu64 ",\"last_exit\":",
                       wi.mode, sidecar_workload_state_name(wi.state), wi.pid, wi.restarts);
    if (wi.last_exit >= 0)
        sidecar_buf_printf(b, "%d", wi.last_exit);
    else
        sidecar_buf_printf(b, "null");
    sidecar_buf_printf(b,
                       ",\"hooks_run\":%" PRIu64 ",\"hooks_failed\":%" PRIu64
                       ",\"held_by_maintenance\":%s,\"gave_up\":[",
                       wi.hooks_run, wi.hooks_failed, wi.maintenance_hold ? "true" : "false");
    sidecar_workload_gave_up_t g[RAFT_MAX_MEMBERS];
    size_t ng = sidecar_workload_gave_up(api->workload, g, RAFT_MAX_MEMBERS);
    for (size_t i = 0; i < ng; i++) {
        sidecar_buf_printf(b, "%s{\"member\":", i ? "," : "");
        sidecar_buf_json_str(b, g[i].member);
        sidecar_buf_printf(b, ",\"reason\":");
        sidecar_buf_json_str(b, g[i].reason);
        sidecar_buf_printf(b, ",\"status\":%d,\"ago_ms\":%" PRIu64 ",\"count\":%" PRIu64 "}",
                           g[i].status, g[i].ago_ms, g[i].count);
    }
    sidecar_buf_printf(b, "]}");
}

/* "members":[...] of /v1/status, with each one's replication progress when we lead. */
static void status_members(sidecar_buf_t *b, sidecar_api_t *api, const raft_t *r)
{
    sidecar_buf_printf(b, ",\"members\":[");
    raft_progress_t pr[RAFT_MAX_MEMBERS];
    size_t n_pr = raft_progress(r, pr, RAFT_MAX_MEMBERS);
    const raft_conf_t *conf = raft_conf(r);
    for (uint32_t i = 0; i < conf->n; i++) {
        const raft_member_t *m = &conf->members[i];
        char name[64];
        const char *peer;
        api_member_fields(m->addr, name, sizeof(name), &peer);
        sidecar_buf_printf(b, "%s{\"id\":\"%016" PRIx64 "\",\"name\":", i ? "," : "", m->id);
        sidecar_buf_json_str(b, name);
        sidecar_buf_printf(b, ",\"peer_addr\":");
        sidecar_buf_json_str(b, peer);
        sidecar_buf_printf(b, ",\"voter\":%s", m->voter ? "true" : "false");
        for (size_t j = 0; j < n_pr; j++) {
            if (pr[j].id != m->id)
                continue;
            uint64_t ago = raft_now(r) - pr[j].last_contact_tick;
            sidecar_buf_printf(b, ",\"match_index\":%" PRIu64 ",\"last_contact_ms\":%" PRIu64,
                               pr[j].match, ago * api->cfg->tick_ms);
        }
        sidecar_buf_printf(b, "}");
    }
    sidecar_buf_printf(b, "]");
}

/* This member is the primary: with no workload configured, the leader holding its lease. */
static bool is_primary(const sidecar_node_state_t *st, const sidecar_workload_info_t *wi)
{
    if (strcmp(wi->mode, "none") == 0)
        return st->role == RAFT_LEADER && lease_remaining_ms(st) > 0 && st->epoch == st->term;
    return wi->state == SIDECAR_WORKLOAD_PRIMARY && st->role == RAFT_LEADER;
}

#define REASON_MAX 256 /* bytes of a reason's message */

/* Writes the message of a reason into msg and returns its code. */
__attribute__((format(printf, 4, 5))) static const char *say(char *msg, size_t len,
                                                             const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, len, fmt, ap);
    va_end(ap);
    return code;
}

/* "no quorum": which voters this member has no connection to. */
static void no_leader_reason(sidecar_api_t *api, const raft_t *r, char *msg, size_t len)
{
    sidecar_transport_peer_stats_t ps[RAFT_MAX_MEMBERS];
    size_t np = sidecar_transport_stats(sidecar_node_transport(api->node), ps, RAFT_MAX_MEMBERS);
    const raft_conf_t *conf = raft_conf(r);
    size_t o = (size_t)snprintf(msg, len, "no leader known (no quorum?)");
    const char *sep = "; no connection to ";
    for (uint32_t i = 0; i < conf->n && o < len; i++) {
        uint64_t id = conf->members[i].id;
        bool up = id == sidecar_node_id(api->node);
        for (size_t j = 0; j < np && !up; j++)
            up = ps[j].id == id && ps[j].connected;
        if (up || !conf->members[i].voter)
            continue;
        char name[64];
        sidecar_node_member_name(api->node, id, name, sizeof(name));
        o += (size_t)snprintf(msg + o, len - o, "%s%s", sep, name);
        sep = ", ";
    }
}

/* Peers whose last answer to our handshake refused us, and why (as the peer words it: "peer
 * belongs to another cluster" means us), with our cluster id to compare with the refusing
 * side's log. False when none did. */
static bool refused_reason(sidecar_api_t *api, char *msg, size_t len)
{
    sidecar_transport_peer_stats_t ps[RAFT_MAX_MEMBERS];
    size_t np = sidecar_transport_stats(sidecar_node_transport(api->node), ps, RAFT_MAX_MEMBERS);
    size_t o = 0;
    const char *sep = "peer refused us: ";
    for (size_t i = 0; i < np && o < len; i++) {
        if (ps[i].refused_us == NULL || ps[i].connected)
            continue;
        char name[64];
        sidecar_node_member_name(api->node, ps[i].id, name, sizeof(name));
        o += (size_t)snprintf(msg + o, len - o, "%s%s: %s", sep, name, ps[i].refused_us);
        sep = "; ";
    }
    if (o > 0 && o < len)
        snprintf(msg + o, len - o, " (our cluster id %016" PRIx64 ")",
                 sidecar_config_cluster_id(api->cfg));
    return o > 0;
}

/* This member gave up on the workload (a replicated record names it): the message. */
static bool gave_up_reason(sidecar_api_t *api, char *msg, size_t len)
{
    sidecar_workload_gave_up_t g[RAFT_MAX_MEMBERS];
    size_t ng = sidecar_workload_gave_up(api->workload, g, RAFT_MAX_MEMBERS);
    for (size_t i = 0; i < ng; i++) {
        if (strcmp(g[i].member, sidecar_node_name(api->node)) != 0)
            continue;
        snprintf(msg, len,
                 "gave up on the workload after --max-restarts %u failures (%s, last status "
                 "%d); another member is preferred",
                 api->cfg->max_restarts, g[i].reason, g[i].status);
        return true;
    }
    return false;
}

/* Why this member is not the primary, as a short code and a message; NULL when it is. The
 * first cause that applies wins: the store, the membership, the mode, a give-up, the
 * leadership (refused by peers, else no quorum), then the lease and the workload. */
static const char *status_reason(sidecar_api_t *api, const sidecar_node_state_t *st,
                                 const raft_t *r, char *msg, size_t len)
{
    sidecar_workload_info_t wi;
    sidecar_workload_info(api->workload, &wi);
    const raft_conf_t *conf = raft_conf(r);
    const raft_member_t *self = raft_conf_find(conf, sidecar_node_id(api->node));
    if (is_primary(st, &wi))
        return NULL;
    if (!st->store_ok)
        return say(msg, len, "store_failed", "the store is failing; retrying (see the log)");
    if (conf->n == 0)
        return say(msg, len, "joining", "waiting to be added by the leader (--join)");
    if (self == NULL || sidecar_node_removed(api->node))
        return say(msg, len, "removed", "removed from the group's configuration");
    if (strcmp(wi.mode, "witness") == 0)
        return say(msg, len, "witness", "witness: votes, never runs the workload");
    if (gave_up_reason(api, msg, len))
        return "gave_up";
    if (st->leader == 0 && refused_reason(api, msg, len))
        return "refused";
    if (st->leader == 0) {
        no_leader_reason(api, r, msg, len);
        return "no_leader";
    }
    if (!self->voter)
        return say(msg, len, "learner", "learner: catching up before it may vote");
    if (st->role != RAFT_LEADER) {
        char name[64];
        sidecar_node_member_name(api->node, st->leader, name, sizeof(name));
        return say(msg, len, "standby", "leader is %s", name);
    }
    if (lease_remaining_ms(st) == 0 || st->epoch != st->term)
        return say(msg, len, "no_lease", "leader, waiting for its lease and term to be confirmed");
    if (wi.maintenance_hold)
        return say(msg, len, "maintenance",
                   "leader; the workload exited during maintenance and is not restarted until "
                   "maintenance is off");
    return say(msg, len, "workload_not_running", "leader; the workload is %s",
               sidecar_workload_state_name(wi.state));
}

/* ,"reason":{"code":..,"message":..} when this member is not the primary. */
static void reason_buf(sidecar_buf_t *b, sidecar_api_t *api, const sidecar_node_state_t *st,
                       const raft_t *r)
{
    char msg[REASON_MAX];
    const char *code = status_reason(api, st, r, msg, sizeof(msg));
    if (code == NULL)
        return;
    sidecar_buf_printf(b, ",\"reason\":{\"code\":\"%s\",\"message\":", code);
    sidecar_buf_json_str(b, msg);
    sidecar_buf_printf(b, "}");
}

/* Written directly rather than through a cJSON tree: this is the endpoint monitoring polls,
 * and building, printing and freeing the tree was most of its cost. */
static void h_status(http_req_t *req, void *data)
{
    sidecar_api_t *api = data;
    sidecar_node_state_t st;
    sidecar_node_state(api->node, &st);
    const raft_t *r = sidecar_node_raft(api->node);
    sidecar_buf_t b = {0};
    sidecar_buf_printf(&b, "{\"node\":");
    sidecar_buf_json_str(&b, sidecar_node_name(api->node));
    sidecar_buf_printf(
        &b, ",\"id\":\"%016" PRIx64 "\",\"role\":\"%s\",\"term\":%" PRIu64 ",\"leader\":",
        sidecar_node_id(api->node), raft_role_name(st.role), st.term);
    member_buf(&b, api, st.leader);
    sidecar_buf_printf(&b,
                       ",\"commit_index\":%" PRIu64 ",\"applied_index\":%" PRIu64
                       ",\"last_index\":%" PRIu64 ",\"lease_remaining_ms\":%" PRId64
                       ",\"fencing_token\":%" PRIu64 ",\"store_ok\":%s,\"https\":%s"
                       ",\"insecure_http\":%s",
                       st.commit, st.applied, raft_last_index(r), lease_remaining_ms(&st), st.epoch,
                       st.store_ok ? "true" : "false", api->secure.https ? "true" : "false",
                       api->secure.insecure ? "true" : "false");
    sidecar_buf_printf(&b, ",\"insecure_peer\":%s",
                       sidecar_config_peer_insecure(api->cfg) ? "true" : "false");
    sidecar_buf_printf(&b, ",\"priority\":%u,\"preempt\":%s", api->cfg->priority,
                       api->cfg->preempt ? "true" : "false");
    api_maintenance_status(&b, api);
    reason_buf(&b, api, &st, r);
    status_workload(&b, api);
    status_members(&b, api, r);
    refused_buf(&b, api);
    sidecar_buf_printf(&b, "}");
    if (b.failed)
        http_req_reply_error(req, 503, "busy", "out of memory");
    else
        http_req_reply(req, 200, "application/json", b.data, b.len);
    sidecar_buf_free(&b);
}

static void h_healthz(http_req_t *req, void *data)
{
    /* Answering at all proves the loop turns; the store must also be writable. */
    if (api_store_refused(data, req))
        return;
    http_req_reply_text(req, 200, "text/plain; charset=utf-8", "ok\n");
}

static void h_readyz(http_req_t *req, void *data)
{
    sidecar_api_t *api = data;
    sidecar_node_state_t st;
    sidecar_node_state(api->node, &st);
    if (api_store_refused(api, req))
        return;
    if (st.leader == 0) {
        http_req_reply_error(req, 503, "no_leader", "this node does not know a leader");
        return;
    }
    http_req_reply_text(req, 200, "text/plain; charset=utf-8", "ready\n");
}

static void h_primary(http_req_t *req, void *data)
{
    sidecar_api_t *api = data;
    const char *election = http_req_query(req, "election");
    if (election != NULL) {
        api_election_primary(api, req, election);
        return;
    }
    sidecar_node_state_t st;
    sidecar_node_state(api->node, &st);
    sidecar_workload_info_t wi;
    sidecar_workload_info(api->workload, &wi);
    if (is_primary(&st, &wi)) {
        http_req_reply_text(req, 200, "text/plain; charset=utf-8", "primary\n");
        return;
    }
    http_req_reply_error(req, 503, "not_primary", "this node is not the primary");
}

struct transfer_wait {
    http_req_t *req;
    bool gone;
};

static void transfer_cancel_cb(http_req_t *req, void *data)
{
    (void)req;
    ((struct transfer_wait *)data)->gone = true;
}

static void transfer_done_cb(void *ud, int rv)
{
    struct transfer_wait *tw = ud;
    if (!tw->gone) {
        http_req_on_cancel(tw->req, NULL, NULL);
        if (rv == 0)
            http_req_reply_text(tw->req, 202, "application/json", "{\"status\":\"transferring\"}");
        else
            http_req_reply_error(tw->req, 409, "transfer_failed", raft_strerror(rv));
    }
    free(tw);
}

/* POST /v1/leader/transfer[?to=NAME]: stop the workload here, then hand leadership over. */
static void h_transfer(http_req_t *req, void *data)
{
    sidecar_api_t *api = data;
    if (api_store_refused(api, req) || api_maintenance_refused(api, req))
        return;
    uint64_t target = 0;
    const char *to = http_req_query(req, "to");
    if (to != NULL && *to != '\0') {
        target = sidecar_config_node_id(to);
        if (sidecar_node_member_addr(api->node, target) == NULL) {
            http_req_reply_error(req, 404, "unknown_member", "no member has that name");
            return;
        }
        sidecar_node_state_t st;
        sidecar_node_state(api->node, &st);
        if (target == sidecar_node_id(api->node) && st.role == RAFT_LEADER) {
            /* Already where it was asked to be: nothing is stopped (a handover to itself
             * would stop the workload and then find no one to hand over to). */
            char body[128];
            snprintf(body, sizeof(body), "{\"status\":\"already_leader\",\"leader\":\"%s\"}", to);
            http_req_reply_text(req, 200, "application/json", body);
            return;
        }
    }
    struct transfer_wait *tw = calloc(1, sizeof(*tw));
    if (tw == NULL) {
        http_req_reply_error(req, 503, "busy", "out of memory");
        return;
    }
    tw->req = req;
    http_req_on_cancel(req, transfer_cancel_cb, tw);
    int rv = sidecar_workload_handover(api->workload, target, transfer_done_cb, tw);
    if (rv != 0) {
        http_req_on_cancel(req, NULL, NULL);
        free(tw);
        if (rv == RAFT_ENOTLEADER)
            api_reply_not_leader(api, req);
        else
            http_req_reply_error(req, 409, "transfer_in_progress", raft_strerror(rv));
    }
}

/* Which workload's token t is: true with *election NULL for the default election's, its
 * name (borrowed from the runtime) for a named election's; false for neither. */
static bool workload_token(sidecar_api_t *api, const char *t, size_t len, const char **election)
{
    *election = NULL;
    if (api->workload != NULL && sidecar_workload_token_check(api->workload, t, len))
        return true;
    return api->named != NULL && sidecar_named_token_check(api->named, t, len, election);
}

/* http/'s scoped credential check: the current token of a workload that runs here, the
 * default election's or a named election's. */
static bool workload_token_cb(const char *token, size_t len, void *data)
{
    const char *election;
    return workload_token(data, token, len, &election);
}

bool api_scoped_election(sidecar_api_t *api, http_req_t *req, const char **election)
{
    size_t n = 0;
    const char *t = http_req_bearer(req, &n);
    return t != NULL && workload_token(api, t, n, election);
}

int sidecar_api_open(sidecar_api_t **out, uv_loop_t *loop, const sidecar_config_t *cfg,
                     sidecar_node_t *node, sidecar_workload_t *workload, sidecar_named_t *named,
                     char *errbuf, size_t errlen)
{
    sidecar_api_t *api = calloc(1, sizeof(*api));
    if (api == NULL)
        return -1;
    api->node = node;
    api->workload = workload;
    api->named = named;
    api->cfg = cfg;
    http_options_t opts;
    memset(&opts, 0, sizeof(opts));
    opts.limits.max_connections = cfg->http_max_connections;
    opts.limits.max_header_bytes = cfg->http_max_header_bytes;
    opts.limits.max_body_bytes = cfg->http_max_body_bytes;
    opts.limits.idle_timeout_ms = cfg->http_idle_timeout_ms;
    opts.limits.header_timeout_ms = cfg->http_header_timeout_ms;
    opts.token = cfg->http_token;
    opts.scoped_cb = workload_token_cb;
    opts.scoped_data = api;
    int rv = http_server_open(loop, &opts, &api->srv);
    if (rv != 0) {
        snprintf(errbuf, errlen, "cannot create the HTTP server: %s", http_strerror(rv));
        free(api);
        return rv;
    }
    http_server_route(api->srv, HTTP_METHOD_GET, "/v1/status", 0, h_status, api);
    /* Probes: also answered from the reserve beyond --http-max-connections. */
    http_server_route(api->srv, HTTP_METHOD_GET, "/healthz", HTTP_ROUTE_PROBE, h_healthz, api);
    http_server_route(api->srv, HTTP_METHOD_GET, "/readyz", HTTP_ROUTE_PROBE, h_readyz, api);
    http_server_route(api->srv, HTTP_METHOD_GET, "/v1/primary", 0, h_primary, api);
    http_server_route(api->srv, HTTP_METHOD_POST, "/v1/leader/transfer", HTTP_ROUTE_MUTATING,
                      h_transfer, api);
    api_members_register(api);
    api_maintenance_register(api);
    api_elections_register(api);
    api_metrics_register(api);
    api_backup_register(api);
    api_watch_open(api, loop);
    api_kv_open(api, loop);
    rv = api_secure_open(api, loop, errbuf, errlen);
    if (rv != 0) {
        sidecar_api_close(api, NULL, NULL);
        return rv;
    }
    char addr[300];
    sidecar_config_addr_format(&cfg->listen_http, addr, sizeof(addr));
    rv = http_server_listen(api->srv, addr);
    if (rv != 0) {
        snprintf(errbuf, errlen, "cannot listen for HTTP on %s: %s", addr, http_strerror(rv));
        sidecar_api_close(api, NULL, NULL);
        return rv;
    }
    *out = api;
    return 0;
}

http_server_t *sidecar_api_server(sidecar_api_t *api)
{
    return api->srv;
}

int sidecar_api_port(const sidecar_api_t *api)
{
    return http_server_port(api->srv);
}

/* The server and the KV sweep timer both close asynchronously; the last one frees api. */
static void finish(sidecar_api_t *api)
{
    if (api->srv != NULL || api->timer.data || api->watch.timer.data ||
        api->secure.warn_timer.data || api->kv_watch.flush.data)
        return;
    void (*cb)(void *) = api->close_cb;
    void *ud = api->close_ud;
    api_secure_free(api); /* the server that borrowed the contexts is gone */
    free(api);
    if (cb)
        cb(ud);
}

static void server_closed_cb(void *data)
{
    sidecar_api_t *api = data;
    api->srv = NULL;
    finish(api);
}

static void timer_closed_cb(uv_handle_t *h)
{
    sidecar_api_t *api = h->data;
    h->data = NULL;
    finish(api);
}

void sidecar_api_close(sidecar_api_t *api, void (*cb)(void *ud), void *ud)
{
    api->close_cb = cb;
    api->close_ud = ud;
    api_kv_close(api);
    api_watch_close(api);
    uv_close((uv_handle_t *)&api->timer, timer_closed_cb);
    uv_close((uv_handle_t *)&api->watch.timer, timer_closed_cb);
    uv_close((uv_handle_t *)&api->secure.warn_timer, timer_closed_cb);
    uv_close((uv_handle_t *)&api->kv_watch.flush, timer_closed_cb);
    http_server_close(api->srv, server_closed_cb, api);
}
