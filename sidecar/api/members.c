/* members.c — membership over HTTP: list members, add one (as a learner; the leader
 * promotes it to voter once caught up), remove one (the leader included). One change at a
 * time, each acknowledged once committed. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"

static cJSON *members_json(sidecar_api_t *api)
{
    const raft_t *r = sidecar_node_raft(api->node);
    const raft_conf_t *conf = raft_conf(r);
    raft_progress_t pr[RAFT_MAX_MEMBERS];
    size_t np = raft_progress(r, pr, RAFT_MAX_MEMBERS);
    cJSON *arr = cJSON_CreateArray();
    for (uint32_t i = 0; i < conf->n; i++) {
        const raft_member_t *m = &conf->members[i];
        cJSON *o = api_member_json(api, m->id);
        cJSON_AddBoolToObject(o, "voter", m->voter);
        for (size_t k = 0; k < np; k++)
            if (pr[k].id == m->id)
                api_json_u64(o, "match_index", pr[k].match);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static void h_list(http_req_t *req, void *data)
{
    sidecar_api_t *api = data;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "members", members_json(api));
    http_req_reply_json(req, 200, o);
    cJSON_Delete(o);
}

static void reply_changed(http_req_t *req, const raft_entry_t *e, const store_result_t *res)
{
    (void)res;
    cJSON *o = cJSON_CreateObject();
    api_json_u64(o, "index", e->index);
    raft_conf_t conf;
    if (raft_conf_decode(e->data, e->len, &conf) == 0) {
        cJSON *arr = cJSON_AddArrayToObject(o, "members");
        for (uint32_t i = 0; i < conf.n; i++) {
            cJSON *m = cJSON_CreateObject();
            char name[64];
            const char *peer;
            api_member_fields(conf.members[i].addr, name, sizeof(name), &peer);
            cJSON_AddStringToObject(m, "name", name);
            cJSON_AddStringToObject(m, "peer_addr", peer);
            cJSON_AddBoolToObject(m, "voter", conf.members[i].voter);
            cJSON_AddItemToArray(arr, m);
        }
    }
    http_req_reply_json(req, http_req_method(req) == HTTP_METHOD_POST ? 201 : 200, o);
    cJSON_Delete(o);
}

static void propose(sidecar_api_t *api, http_req_t *req, raft_conf_op_t op, uint64_t id,
                    const char *addr)
{
    const raft_t *r = sidecar_node_raft(api->node);
    if (api_store_refused(api, req))
        return;
    if (raft_role(r) != RAFT_LEADER) {
        api_reply_not_leader(api, req);
        return;
    }
    uint64_t index = 0;
    int rv = sidecar_node_propose_conf(api->node, op, id, addr, &index);
    switch (rv) {
    case 0:
        if (api_wait_entry(api, req, index, raft_term(r), reply_changed) != 0)
            http_req_reply_error(req, 503, "busy", "out of memory; the change may still apply");
        return;
    case RAFT_EBUSY:
        http_req_header_add(req, "Retry-After", "1");
        http_req_reply_error(req, 409, "change_in_progress",
                             "another membership change (or a learner's promotion) is not yet "
                             "committed; retry shortly");
        return;
    case RAFT_EUNKNOWN_MEMBER:
        http_req_reply_error(req, 404, "unknown_member", "no member has that name");
        return;
    case RAFT_ETOOBIG:
        http_req_reply_error(req, 409, "too_many_members", "a cluster has at most 16 members");
        return;
    case RAFT_ENOTLEADER:
    case RAFT_ETRANSFERRING:
        api_reply_not_leader(api, req);
        return;
    default:
        http_req_reply_error(req, 409, "refused", raft_strerror(rv));
    }
}

/* POST /v1/members {"name": "d", "peer_addr": "10.0.0.4:7001"} */
static void h_add(http_req_t *req, void *data)
{
    sidecar_api_t *api = data;
    cJSON *body = NULL;
    if (http_req_body_json(req, &body) != 0 || !cJSON_IsObject(body)) {
        cJSON_Delete(body);
        http_req_reply_error(req, 400, "bad_request",
                             "expected a JSON object {\"name\": ..., \"peer_addr\": ...}");
        return;
    }
    const cJSON *name = cJSON_GetObjectItem(body, "name");
    const cJSON *peer = cJSON_GetObjectItem(body, "peer_addr");
    if (!cJSON_IsString(name) || !sidecar_config_name_valid(name->valuestring)) {
        cJSON_Delete(body);
        http_req_reply_error(req, 400, "invalid_name",
                             "name must be 1-63 letters, digits, '.', '_' or '-', starting with a "
                             "letter or digit");
        return;
    }
    char host[256];
    uint16_t port;
    /* The same rule as --peers: the address goes into every node's configuration. */
    if (!cJSON_IsString(peer) ||
        sidecar_config_hostport_parse(peer->valuestring, host, sizeof(host), &port) != 0) {
        cJSON_Delete(body);
        http_req_reply_error(req, 400, "invalid_peer_addr",
                             "peer_addr must be host:port (IPv6 as [addr]:port)");
        return;
    }
    uint64_t id = sidecar_config_node_id(name->valuestring);
    char addr[RAFT_ADDR_MAX];
    snprintf(addr, sizeof(addr), "%s=%s", name->valuestring, peer->valuestring);
    cJSON_Delete(body);
    if (sidecar_node_member_addr(api->node, id) != NULL) {
        http_req_reply_error(req, 409, "member_exists", "a member with that name exists");
        return;
    }
    propose(api, req, RAFT_CONF_ADD_LEARNER, id, addr);
}

/* DELETE /v1/members/{name} */
static void h_remove(http_req_t *req, void *data)
{
    sidecar_api_t *api = data;
    const char *name = http_req_param(req, "name");
    uint64_t id = sidecar_config_node_id(name);
    if (!sidecar_config_name_valid(name) || sidecar_node_member_addr(api->node, id) == NULL) {
        http_req_reply_error(req, 404, "unknown_member", "no member has that name");
        return;
    }
    propose(api, req, RAFT_CONF_REMOVE, id, NULL);
}

void api_members_register(sidecar_api_t *api)
{
    http_server_route(api->srv, HTTP_METHOD_GET, "/v1/members", 0, h_list, api);
    http_server_route(api->srv, HTTP_METHOD_POST, "/v1/members", HTTP_ROUTE_MUTATING, h_add, api);
    http_server_route(api->srv, HTTP_METHOD_DELETE, "/v1/members/{name}", HTTP_ROUTE_MUTATING,
                      h_remove, api);
}
