/* priority.c — members' priorities (workload.h, "priorities"): the replicated table, this
 * member's own record in it, and preemption — the leader hands leadership to a member of
 * higher priority that has been ready for the hysteresis, by the graceful handover of
 * handover.c (docs/operations.md, "Priorities").
 *
 * A record: KV key SIDECAR_PRIORITY_PREFIX + the member's name, value
 * {"priority":N,"preempt":B}. Only the default election's controller keeps the table. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "workload_int.h"

#define PRIORITY_RETRY_MS 1000 /* a record proposed and not seen applied is sent again */
#define PREEMPT_HYSTERESIS_ETOS                                                                    \
    4 /* election timeouts a member must stay ready (as named                                      \
         elections' rebalancing waits: a flapping member does                                      \
         not drag leadership back and forth) */
#define PRIORITY_RECORDS_MAX (4 * RAFT_MAX_MEMBERS) /* records read (removed members') */

/* What this member's record says: a witness never runs the workload, so it ranks last. */
static void own_settings(const sidecar_workload_t *w, uint8_t *priority, bool *preempt)
{
    *priority = w->cfg->witness ? 0 : (uint8_t)w->cfg->priority;
    *preempt = w->cfg->preempt && !w->cfg->witness;
}

void sidecar_workload_priority(const sidecar_workload_t *w, uint64_t id, uint8_t *priority,
                               bool *preempt)
{
    *priority = RAFT_PRIORITY_DEFAULT;
    *preempt = true;
    for (size_t i = 0; w->prio != NULL && i < w->prio->n; i++)
        if (w->prio->entries[i].id == id) {
            *priority = w->prio->entries[i].priority;
            *preempt = w->prio->entries[i].preempt;
        }
}

/* One record into the table, when it names a member of the configuration and parses. */
static void record_parse(sidecar_workload_t *w, const store_kv_t *kv)
{
    const char *name = kv->key + strlen(SIDECAR_PRIORITY_PREFIX);
    uint64_t id = sidecar_config_node_id(name);
    if (raft_conf_find(raft_conf(sidecar_node_raft(w->node)), id) == NULL ||
        w->prio->n == RAFT_MAX_MEMBERS)
        return;
    cJSON *o = cJSON_ParseWithLength((const char *)kv->value, kv->value_len);
    double prio = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "priority"));
    const cJSON *preempt = cJSON_GetObjectItemCaseSensitive(o, "preempt");
    if (prio >= 0 && prio <= 255 && cJSON_IsBool(preempt))
        w->prio->entries[w->prio->n++] = (struct workload_priority){
            .id = id, .priority = (uint8_t)prio, .preempt = cJSON_IsTrue(preempt)};
    cJSON_Delete(o);
}

/* Reads the table again and hands every member's priority to the core. */
static void table_load(sidecar_workload_t *w)
{
    store_kv_t *items = NULL;
    size_t n = 0;
    if (store_kv_list(sidecar_node_store(w->node), SIDECAR_PRIORITY_PREFIX,
                      strlen(SIDECAR_PRIORITY_PREFIX), NULL, 0, PRIORITY_RECORDS_MAX, &items, &n,
                      NULL) != 0)
        return; /* read again at the next change */
    w->prio->dirty = false;
    w->prio->n = 0;
    for (size_t i = 0; i < n; i++)
        record_parse(w, &items[i]);
    store_kv_list_free(items, n);
    const raft_conf_t *conf = raft_conf(sidecar_node_raft(w->node));
    for (uint32_t i = 0; i < conf->n; i++) {
        uint8_t prio;
        bool preempt;
        sidecar_workload_priority(w, conf->members[i].id, &prio, &preempt);
        sidecar_node_set_priority(w->node, conf->members[i].id, prio);
    }
    uint8_t mine, stored;
    bool preempt, stored_preempt;
    own_settings(w, &mine, &preempt);
    sidecar_workload_priority(w, sidecar_node_id(w->node), &stored, &stored_preempt);
    /* Without a record a member counts as the default: one is written only when this
     * member's settings differ from what the table says (a default member writes none, so
     * that groups without priorities keep their KV as it was). */
    w->prio->stored = stored == mine && stored_preempt == preempt;
}

/* This member's record, proposed (forwarded to the leader) until the store holds it. */
static void publish(sidecar_workload_t *w)
{
    uint64_t now = workload_now_ms();
    if (w->prio->stored || !w->st.store_ok || w->st.leader == 0 ||
        (w->prio->sent_ms != 0 && now - w->prio->sent_ms < PRIORITY_RETRY_MS))
        return;
    w->prio->sent_ms = now;
    uint8_t prio;
    bool preempt;
    own_settings(w, &prio, &preempt);
    char value[64];
    snprintf(value, sizeof(value), "{\"priority\":%u,\"preempt\":%s}", prio,
             preempt ? "true" : "false");
    int rv = workload_record_put(w, SIDECAR_PRIORITY_PREFIX, value, true);
    if (rv != 0)
        SIDECAR_LOG(SIDECAR_LOG_DEBUG, "cannot record this member's priority yet",
                    SIDECAR_LOG_STR("error", raft_strerror(rv)));
}

/* Whether a member may have a higher priority than this one (one without a record counts as
 * RAFT_PRIORITY_DEFAULT): only then is there anyone to preempt it. */
static bool higher_exists(const sidecar_workload_t *w)
{
    uint8_t mine;
    bool unused;
    own_settings(w, &mine, &unused);
    if (mine < RAFT_PRIORITY_DEFAULT)
        return true;
    for (size_t i = 0; i < w->prio->n; i++)
        if (w->prio->entries[i].priority > mine)
            return true;
    return false;
}

/* Leader: a member of higher priority ready (connected, caught up) for the hysteresis takes
 * over by graceful handover; a leader of priority 0 whose workload has not started hands over
 * at once. Nothing while maintenance is on. */
static void preempt(sidecar_workload_t *w)
{
    uint8_t mine;
    bool unused;
    own_settings(w, &mine, &unused);
    uint64_t to = 0;
    if (w->st.role == RAFT_LEADER && !w->handover && !w->shutting_down && w->mode != MODE_WITNESS &&
        higher_exists(w))
        to = workload_gave_up_choose_above(w, mine);
    if (to != 0 && sidecar_maintenance_on(w->node))
        to = 0;
    uint64_t now = workload_now_ms();
    if (to != w->prio->preempt_to) {
        w->prio->preempt_to = to;
        w->prio->preempt_from_ms = now;
    }
    if (to == 0)
        return;
    bool idle = w->state == SIDECAR_WORKLOAD_STANDBY && w->hook == NULL && w->shim == NULL;
    uint64_t hysteresis = PREEMPT_HYSTERESIS_ETOS * (uint64_t)w->cfg->election_timeout_ms;
    if (!(mine == 0 && idle) && now - w->prio->preempt_from_ms < hysteresis)
        return;
    char name[64];
    sidecar_node_member_name(w->node, to, name, sizeof(name));
    uint8_t theirs;
    sidecar_workload_priority(w, to, &theirs, &unused);
    SIDECAR_LOG(SIDECAR_LOG_INFO, "a member of higher priority is ready: handing leadership over",
                SIDECAR_LOG_STR("to", name), SIDECAR_LOG_UINT("priority", theirs),
                SIDECAR_LOG_UINT("own_priority", mine));
    w->prio->preempt_to = 0;
    workload_handover_arm(w, to);
}

void workload_priority_step(sidecar_workload_t *w)
{
    if (w->prio == NULL)
        return;
    if (w->prio->dirty && w->st.store_ok)
        table_load(w);
    publish(w);
    preempt(w);
}

bool workload_priority_busy(const sidecar_workload_t *w)
{
    /* A leader looks periodically only while some member could preempt it. */
    return w->prio != NULL && (!w->prio->stored || (w->st.role == RAFT_LEADER && higher_exists(w)));
}

void workload_priority_applied(sidecar_workload_t *w, const raft_entry_t *e)
{
    if (w->prio == NULL)
        return;
    /* A gap: entries were applied without a callback (a snapshot was installed). */
    bool gap = e->index != w->prio->applied + 1;
    w->prio->applied = e->index;
    if (gap || e->type == RAFT_ENTRY_CONF) {
        w->prio->dirty = true;
        return;
    }
    store_cmd_t cmd;
    size_t pl = strlen(SIDECAR_PRIORITY_PREFIX);
    if (e->type == RAFT_ENTRY_NORMAL && store_cmd_decode(e->data, e->len, &cmd) == 0 &&
        cmd.key_len >= pl && memcmp(cmd.key, SIDECAR_PRIORITY_PREFIX, pl) == 0)
        w->prio->dirty = true;
}
