/* maintenance.c — GET/POST /v1/maintenance, the maintenance part of /v1/status, and the
 * refusal of voluntary transfers while it is on. The record goes through the Raft log like any
 * KV write (workload.h, "maintenance mode"). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api_int.h"

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void api_maintenance_status(sidecar_buf_t *b, sidecar_api_t *api)
{
    sidecar_maintenance_t m;
    sidecar_maintenance_get(api->node, &m);
    sidecar_buf_printf(
        b, ",\"maintenance\":{\"enabled\":%s,\"reason\":", m.enabled ? "true" : "false");
    sidecar_buf_json_str(b, m.reason);
    sidecar_buf_printf(b, ",\"since_ms\":%" PRIu64 "}", m.since_ms);
}

static void reply_state(sidecar_api_t *api, http_req_t *req, int status)
{
    sidecar_buf_t b = {0};
    api_maintenance_status(&b, api);
    /* The status fragment starts with ,"maintenance": — the object is what follows it. */
    const char *obj = b.failed ? NULL : strchr(b.data, '{');
    if (obj == NULL)
        http_req_reply_error(req, 503, "busy", "out of memory");
    else
        http_req_reply(req, status, "application/json", obj, b.len - (size_t)(obj - b.data));
    sidecar_buf_free(&b);
}

bool api_maintenance_refused(sidecar_api_t *api, http_req_t *req)
{
    sidecar_maintenance_t m;
    sidecar_maintenance_get(api->node, &m);
    if (!m.enabled)
        return false;
    char msg[SIDECAR_MAINTENANCE_REASON_MAX + 160];
    snprintf(msg, sizeof(msg),
             "maintenance mode is on (%s): electd makes no voluntary transfer; turn it off "
             "first (electd maintenance off)",
             m.reason[0] ? m.reason : "no reason given");
    http_req_reply_error(req, 409, "maintenance", msg);
    return true;
}

static void h_get(http_req_t *req, void *data)
{
    reply_state(data, req, 200);
}

/* The record as it applied: the entry's value. */
static void applied(http_req_t *req, const raft_entry_t *e, const store_result_t *res)
{
    store_cmd_t cmd;
    if (res->status != STORE_APPLIED_OK || store_cmd_decode(e->data, e->len, &cmd) != 0) {
        http_req_reply_error(req, 503, "not_applied", store_strerror(res->err));
        return;
    }
    http_req_reply(req, 200, "application/json", cmd.value, cmd.value_len);
}

/* {"enabled":B,"reason":S}: false with req answered when it is not that. */
static bool parse_body(http_req_t *req, sidecar_maintenance_t *m)
{
    cJSON *body = NULL;
    const char *bad = NULL;
    if (http_req_body_json(req, &body) != 0 || !cJSON_IsObject(body))
        bad = "expected a JSON object {\"enabled\": true|false, \"reason\": \"...\"}";
    const cJSON *it, *fields = bad ? NULL : body;
    cJSON_ArrayForEach(it, fields)
    {
        if (strcmp(it->string, "enabled") == 0 && !cJSON_IsBool(it))
            bad = "\"enabled\" must be true or false";
        else if (strcmp(it->string, "reason") == 0 &&
                 (!cJSON_IsString(it) || strlen(it->valuestring) > SIDECAR_MAINTENANCE_REASON_MAX ||
                  !api_utf8_valid((const uint8_t *)it->valuestring, strlen(it->valuestring))))
            bad = "\"reason\" must be UTF-8 text of at most 256 bytes";
        else if (strcmp(it->string, "enabled") != 0 && strcmp(it->string, "reason") != 0)
            bad = "unknown field: only \"enabled\" and \"reason\" are accepted";
    }
    const cJSON *enabled = bad ? NULL : cJSON_GetObjectItemCaseSensitive(body, "enabled");
    if (bad == NULL && enabled == NULL)
        bad = "\"enabled\" (true or false) is required";
    if (bad == NULL) {
        const cJSON *reason = cJSON_GetObjectItemCaseSensitive(body, "reason");
        *m = (sidecar_maintenance_t){.enabled = cJSON_IsTrue(enabled), .since_ms = wall_ms()};
        if (reason != NULL)
            snprintf(m->reason, sizeof(m->reason), "%s", reason->valuestring);
    }
    cJSON_Delete(body);
    if (bad != NULL)
        http_req_reply_error(req, 400, "bad_request", bad);
    return bad == NULL;
}

/* POST /v1/maintenance: the leader proposes the record; a follower forwards or redirects. */
static void h_post(http_req_t *req, void *data)
{
    sidecar_api_t *api = data;
    sidecar_maintenance_t m;
    if (!parse_body(req, &m) || api_store_refused(api, req))
        return;
    const raft_t *r = sidecar_node_raft(api->node);
    if (raft_role(r) != RAFT_LEADER) {
        api_reply_not_leader(api, req);
        return;
    }
    char value[2 * SIDECAR_MAINTENANCE_REASON_MAX * 6 + 128];
    uint8_t cmd[STORE_CMD_HEADER + sizeof(SIDECAR_MAINTENANCE_KEY) + sizeof(value)];
    int vl = sidecar_maintenance_encode(&m, value, sizeof(value));
    size_t len = 0;
    uint64_t index = 0;
    int rv = vl < 0 ? STORE_EVALUE
                    : store_cmd_encode_put(SIDECAR_MAINTENANCE_KEY, strlen(SIDECAR_MAINTENANCE_KEY),
                                           value, (size_t)vl, NULL, cmd, sizeof(cmd), &len);
    if (rv != 0) {
        http_req_reply_error(req, 400, "bad_request", store_strerror(rv));
        return;
    }
    rv = sidecar_node_propose(api->node, cmd, len, &index);
    if (rv == RAFT_ENOTLEADER || rv == RAFT_ETRANSFERRING) {
        api_reply_not_leader(api, req);
        return;
    }
    if (rv != 0) {
        http_req_reply_error(req, 503, "propose_failed", raft_strerror(rv));
        return;
    }
    SIDECAR_LOG(SIDECAR_LOG_WARN, m.enabled ? "maintenance mode on" : "maintenance mode off",
                SIDECAR_LOG_STR("reason", m.reason));
    if (api_wait_entry(api, req, index, raft_term(r), applied) != 0)
        http_req_reply_error(req, 503, "busy", "out of memory; the change may still apply");
}

void api_maintenance_register(sidecar_api_t *api)
{
    http_server_route(api->srv, HTTP_METHOD_GET, "/v1/maintenance", 0, h_get, api);
    http_server_route(api->srv, HTTP_METHOD_POST, "/v1/maintenance", HTTP_ROUTE_MUTATING, h_post,
                      api);
}
