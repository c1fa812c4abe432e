/* gaveup.c — the replicated records of members that gave up on the workload, and choosing
 * the member to hand over to from them (docs/guarantees.md, "Supervise").
 *
 * A record: KV key SIDECAR_WORKLOAD_GAVE_UP_PREFIX + the member's name, value
 * {"reason":..,"status":..,"at_ms":<wall ms>,"count":<give-ups in a row>}. It counts for
 * GAVE_UP_DECAY_WINDOWS restart windows; while every other voter has one, the member that
 * gives up keeps leadership and backs off (restarts.c). */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "workload_int.h"

#define GAVE_UP_DECAY_WINDOWS 2 /* workload.h says "two" */
#define GAVE_UP_VALUE_MAX     256

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The recent records (decayed ones are left out), at most cap. Values written by another
 * version or by hand are skipped, never trusted blindly. */
static size_t gave_up_load(sidecar_workload_t *w, sidecar_workload_gave_up_t *out, size_t cap)
{
    store_kv_t *items = NULL;
    size_t n = 0, k = 0;
    if (store_kv_list(sidecar_node_store(w->node), SIDECAR_WORKLOAD_GAVE_UP_PREFIX,
                      strlen(SIDECAR_WORKLOAD_GAVE_UP_PREFIX), NULL, 0, RAFT_MAX_MEMBERS, &items,
                      &n, NULL) != 0)
        return 0;
    uint64_t now = wall_ms(), decay = GAVE_UP_DECAY_WINDOWS * (uint64_t)w->cfg->restart_window_ms;
    for (size_t i = 0; i < n && k < cap; i++) {
        cJSON *o = cJSON_ParseWithLength((const char *)items[i].value, items[i].value_len);
        const cJSON *reason = cJSON_GetObjectItem(o, "reason");
        double at = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "at_ms"));
        double count = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "count"));
        double status = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "status"));
        const char *name = items[i].key + strlen(SIDECAR_WORKLOAD_GAVE_UP_PREFIX);
        if (cJSON_IsString(reason) && at >= 0 && at <= (double)now && now - (uint64_t)at < decay &&
            count >= 1 && strlen(name) < sizeof(out->member)) {
            sidecar_workload_gave_up_t *g = &out[k++];
            snprintf(g->member, sizeof(g->member), "%s", name);
            snprintf(g->reason, sizeof(g->reason), "%s", reason->valuestring);
            g->status = status >= 0 && status < 1000 ? (int)status : -1;
            g->ago_ms = now - (uint64_t)at;
            g->count = (uint64_t)count;
        }
        cJSON_Delete(o);
    }
    store_kv_list_free(items, n);
    return k;
}

static const sidecar_workload_gave_up_t *gave_up_find(const sidecar_workload_gave_up_t *g, size_t n,
                                                      const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(g[i].member, name) == 0)
            return &g[i];
    return NULL;
}

/* Whether candidate a (connected or not, of priority pa) is better than b: connected first,
 * then the higher priority, the longer log, the lower id. */
static bool better(const raft_progress_t *a, bool ca, uint8_t pa, const raft_progress_t *b, bool cb,
                   uint8_t pb)
{
    if (ca != cb)
        return ca;
    if (pa != pb)
        return pa > pb;
    if (a->match != b->match)
        return a->match > b->match;
    return a->id < b->id;
}

/* The best voter but this one that has not given up recently; with above >= 0 only one that
 * is connected (heard within two heartbeats), holds everything committed, has a priority
 * above `above` and --preempt (any when above is 0). */
static uint64_t choose(sidecar_workload_t *w, int above)
{
    sidecar_workload_gave_up_t g[RAFT_MAX_MEMBERS];
    size_t ng = gave_up_load(w, g, RAFT_MAX_MEMBERS);
    const raft_t *r = sidecar_node_raft(w->node);
    raft_progress_t pr[RAFT_MAX_MEMBERS];
    size_t np = raft_progress(r, pr, RAFT_MAX_MEMBERS);
    uint32_t tick = w->cfg->tick_ms ? w->cfg->tick_ms : 1;
    uint64_t recent = (above >= 0 ? 2 * (uint64_t)w->cfg->heartbeat_interval_ms
                                  : (uint64_t)w->cfg->election_timeout_ms) /
                      tick;
    const raft_progress_t *best = NULL;
    bool best_conn = false;
    uint8_t best_prio = 0;
    for (size_t i = 0; i < np; i++) {
        char name[64];
        sidecar_node_member_name(w->node, pr[i].id, name, sizeof(name));
        if (pr[i].id == sidecar_node_id(w->node) || !pr[i].voter || gave_up_find(g, ng, name))
            continue;
        bool conn = raft_now(r) - pr[i].last_contact_tick <= recent, preempt;
        uint8_t prio;
        sidecar_workload_priority(w, pr[i].id, &prio, &preempt);
        if (above >= 0 && (!conn || pr[i].match < raft_commit_index(r) || prio <= above ||
                           (!preempt && above != 0)))
            continue;
        if (best == NULL || better(&pr[i], conn, prio, best, best_conn, best_prio)) {
            best = &pr[i];
            best_conn = conn;
            best_prio = prio;
        }
    }
    return best ? best->id : 0;
}

uint64_t workload_gave_up_choose(sidecar_workload_t *w)
{
    return choose(w, -1);
}

uint64_t workload_gave_up_choose_above(sidecar_workload_t *w, uint8_t above)
{
    return choose(w, above);
}

int workload_record_put(sidecar_workload_t *w, const char *prefix, const char *value, bool forward)
{
    char key[128];
    uint8_t cmd[STORE_CMD_HEADER + sizeof(key) + GAVE_UP_VALUE_MAX];
    int kl = snprintf(key, sizeof(key), "%s%s", prefix, w->cfg->name);
    size_t vl = strlen(value), len = 0;
    if (kl < 0 || (size_t)kl >= sizeof(key) || vl > GAVE_UP_VALUE_MAX)
        return RAFT_ETOOBIG;
    uint64_t index;
    int rv = store_cmd_encode_put(key, (size_t)kl, value, vl, NULL, cmd, sizeof(cmd), &len);
    if (rv != 0)
        return RAFT_EINVAL;
    return forward ? sidecar_node_forward(w->node, cmd, len, &index)
                   : sidecar_node_propose(w->node, cmd, len, &index);
}

/* The next leader must know it too. */
uint64_t workload_gave_up_publish(sidecar_workload_t *w, const char *what)
{
    sidecar_workload_gave_up_t g[RAFT_MAX_MEMBERS];
    size_t ng = gave_up_load(w, g, RAFT_MAX_MEMBERS);
    const sidecar_workload_gave_up_t *mine = gave_up_find(g, ng, w->cfg->name);
    uint64_t count = mine ? mine->count + 1 : 1;
    char value[GAVE_UP_VALUE_MAX];
    snprintf(value, sizeof(value),
             "{\"reason\":\"%s\",\"status\":%d,\"at_ms\":%" PRIu64 ",\"count\":%" PRIu64 "}", what,
             w->info.last_exit, wall_ms(), count);
    int rv = workload_record_put(w, SIDECAR_WORKLOAD_GAVE_UP_PREFIX, value, false);
    if (rv != 0)
        SIDECAR_LOG(SIDECAR_LOG_WARN, "cannot record that this member gave up",
                    SIDECAR_LOG_INT("error", rv));
    w->info.gave_up++;
    return count;
}

size_t sidecar_workload_gave_up(sidecar_workload_t *w, sidecar_workload_gave_up_t *out, size_t cap)
{
    return gave_up_load(w, out, cap);
}
