/* maintenance.c — the maintenance record (workload.h, "maintenance mode"): reading it from the
 * replicated KV and writing its text. What maintenance holds back is decided where each thing
 * happens: restarts.c (restarts and give-ups), priority.c (preemption), sidecar/named/leader.c
 * (rebalancing), sidecar/api/ (transfers). */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "workload_int.h"

int sidecar_maintenance_get(sidecar_node_t *node, sidecar_maintenance_t *out)
{
    memset(out, 0, sizeof(*out));
    store_kv_t kv;
    int rv = store_kv_get(sidecar_node_store(node), SIDECAR_MAINTENANCE_KEY,
                          strlen(SIDECAR_MAINTENANCE_KEY), &kv);
    if (rv == STORE_ENOTFOUND)
        return 0;
    if (rv != 0)
        return rv;
    cJSON *o = cJSON_ParseWithLength((const char *)kv.value, kv.value_len);
    const cJSON *enabled = cJSON_GetObjectItemCaseSensitive(o, "enabled");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(o, "reason");
    double since = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "since_ms"));
    rv = cJSON_IsBool(enabled) ? 0 : STORE_EINVAL;
    if (rv == 0) {
        out->enabled = cJSON_IsTrue(enabled);
        out->since_ms = since >= 0 && since < 1e18 ? (uint64_t)since : 0;
        if (cJSON_IsString(reason))
            snprintf(out->reason, sizeof(out->reason), "%s", reason->valuestring);
    }
    cJSON_Delete(o);
    store_kv_clear(&kv);
    return rv;
}

bool sidecar_maintenance_on(sidecar_node_t *node)
{
    sidecar_maintenance_t m;
    sidecar_maintenance_get(node, &m);
    return m.enabled;
}

int sidecar_maintenance_encode(const sidecar_maintenance_t *m, char *buf, size_t cap)
{
    cJSON *o = cJSON_CreateObject();
    char since[24];
    snprintf(since, sizeof(since), "%" PRIu64, m->since_ms);
    int len = -1;
    if (o != NULL && cJSON_AddBoolToObject(o, "enabled", m->enabled) != NULL &&
        cJSON_AddStringToObject(o, "reason", m->reason) != NULL &&
        cJSON_AddRawToObject(o, "since_ms", since) != NULL &&
        cJSON_PrintPreallocated(o, buf, (int)cap, false))
        len = (int)strlen(buf);
    cJSON_Delete(o);
    return len;
}
