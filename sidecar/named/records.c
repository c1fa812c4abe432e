/* records.c — the named elections' records in the replicated KV (named.h lists them): their
 * text, and proposing them (here when leading, else forwarded to the leader), and the
 * election commands the leader proposes. */
#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "named_int.h"

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static cJSON *refs_json(const sidecar_node_refs_t *refs)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a != NULL && i < refs->n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(refs->refs[i].name));
    return a;
}

/* {"no_primary":false,"elections":{"name":{"prefer":[...],"avoid":[...]},...}}, and
 * "stopping":true once electd is stopping. */
int named_decl_build(sidecar_named_t *n)
{
    const sidecar_election_list_t *list = n->decls;
    cJSON *root = cJSON_CreateObject();
    cJSON *els = root ? cJSON_AddObjectToObject(root, "elections") : NULL;
    if (els == NULL || cJSON_AddBoolToObject(root, "no_primary", n->cfg->no_primary) == NULL)
        goto fail;
    /* A member that is stopping receives nothing more (its own are being handed over). */
    if (n->stopping && cJSON_AddBoolToObject(root, "stopping", true) == NULL)
        goto fail;
    for (size_t i = 0; i < list->n; i++) {
        const sidecar_election_config_t *c = &list->items[i];
        cJSON *o = cJSON_AddObjectToObject(els, c->name);
        if (o == NULL)
            goto fail;
        if (c->prefer.n > 0)
            cJSON_AddItemToObject(o, "prefer", refs_json(&c->prefer));
        if (c->avoid.n > 0)
            cJSON_AddItemToObject(o, "avoid", refs_json(&c->avoid));
    }
    char *text = cJSON_PrintUnformatted(root);
    if (text == NULL)
        goto fail;
    cJSON_Delete(root);
    free(n->decl_json);
    n->decl_json = text;
    n->decl_len = strlen(text);
    n->decl_stored = false; /* known again at the next read of the view */
    return 0;
fail:
    cJSON_Delete(root);
    return -1;
}

/* Member ids of a JSON array of names (others ignored), at most NAMED_LIST_MAX. */
static size_t ids_of(const cJSON *a, uint64_t *out)
{
    size_t k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        if (k < NAMED_LIST_MAX && cJSON_IsString(it))
            out[k++] = sidecar_config_node_id(it->valuestring);
    }
    return k;
}

void named_decl_parse(sidecar_named_t *n, uint64_t id, const uint8_t *json, size_t len)
{
    cJSON *root = cJSON_ParseWithLength((const char *)json, len);
    struct named_member *m = named_member_find(n, id);
    if (root == NULL || m == NULL) {
        cJSON_Delete(root);
        return;
    }
    m->declared = true;
    m->no_primary = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "no_primary"));
    m->stopping = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "stopping"));
    const cJSON *els = cJSON_GetObjectItemCaseSensitive(root, "elections");
    const cJSON *it;
    cJSON_ArrayForEach(it, els)
    {
        if (it->string == NULL || !store_election_name_valid(it->string, strlen(it->string)))
            continue;
        struct named_election *e = named_get_or_add(n, it->string);
        if (e == NULL || named_eligible(e, id) || e->n_eligible >= NAMED_MEMBERS_MAX)
            continue;
        e->eligible[e->n_eligible++] = id;
        /* prefer/avoid: the declaration of the member with the lowest id that declares it
         * (members are read in id order). */
        const cJSON *prefer = cJSON_GetObjectItemCaseSensitive(it, "prefer");
        const cJSON *avoid = cJSON_GetObjectItemCaseSensitive(it, "avoid");
        struct named_lists *l = NULL;
        if (e->n_eligible == 1 &&
            (cJSON_GetArraySize(prefer) > 0 || cJSON_GetArraySize(avoid) > 0) &&
            (l = named_lists(e)) != NULL) {
            e->n_prefer = ids_of(prefer, l->prefer);
            e->n_avoid = ids_of(avoid, l->avoid);
        }
    }
    cJSON_Delete(root);
}

bool named_handover_parse(const uint8_t *v, size_t len, struct named_election *e)
{
    char buf[128], reason[NAMED_REASON_MAX] = "";
    if (len >= sizeof(buf))
        return false;
    memcpy(buf, v, len);
    buf[len] = '\0';
    uint64_t token, to, from;
    if (sscanf(buf, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %15s", &token, &to, &from, reason) < 3)
        return false;
    e->ho_token = token;
    e->ho_to = to;
    e->ho_from = from;
    snprintf(e->ho_reason, sizeof(e->ho_reason), "%s", reason);
    return true;
}

bool named_stopped_parse(const uint8_t *v, size_t len, uint64_t *token, uint64_t *from)
{
    char buf[64];
    if (len >= sizeof(buf))
        return false;
    memcpy(buf, v, len);
    buf[len] = '\0';
    return sscanf(buf, "%" SCNu64 " %" SCNu64, token, from) == 2;
}

int named_record_put(sidecar_named_t *n, const char *prefix, const char *name, const char *value,
                     uint64_t *index)
{
    char key[STORE_KEY_MAX + 1];
    int kl = snprintf(key, sizeof(key), "%s%s", prefix, name);
    size_t vl = value ? strlen(value) : 0;
    if (kl < 0 || (size_t)kl >= sizeof(key) || vl > STORE_VALUE_MAX)
        return RAFT_ETOOBIG;
    size_t cap = STORE_CMD_HEADER + (size_t)kl + vl, len = 0;
    uint8_t *cmd = malloc(cap);
    if (cmd == NULL)
        return RAFT_ENOMEM;
    int rv = value ? store_cmd_encode_put(key, (size_t)kl, value, vl, NULL, cmd, cap, &len)
                   : store_cmd_encode_del(key, (size_t)kl, NULL, cmd, cap, &len);
    uint64_t at = 0;
    rv = rv == 0 ? sidecar_node_forward(n->node, cmd, len, &at) : RAFT_EINVAL;
    if (index != NULL)
        *index = at;
    free(cmd);
    return rv;
}

int named_propose_assign(sidecar_named_t *n, const char *name, uint64_t holder, uint64_t token,
                         uint64_t *index)
{
    uint8_t cmd[STORE_CMD_ELECTION_MAX];
    size_t len;
    if (store_cmd_encode_election_assign(name, holder, token, wall_ms(), cmd, sizeof(cmd), &len))
        return RAFT_EINVAL;
    return sidecar_node_propose(n->node, cmd, len, index);
}

int named_propose_drop(sidecar_named_t *n, const char *name, uint64_t token, uint64_t *index)
{
    uint8_t cmd[STORE_CMD_ELECTION_MAX];
    size_t len;
    if (store_cmd_encode_election_drop(name, token, cmd, sizeof(cmd), &len) != 0)
        return RAFT_EINVAL;
    return sidecar_node_propose(n->node, cmd, len, index);
}
