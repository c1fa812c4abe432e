/* view.c — the replicated view of the named elections: the elections table, every member's
 * declaration and the handover records, read from the store again whenever an entry that
 * touches them applied (or a snapshot replaced the state), so that every decision is taken on
 * the state machine at the applied index. */
#include <stdlib.h>
#include <string.h>

#include "named_int.h"

static int by_name(const void *key, const void *elem)
{
    return strcmp(key, (*(struct named_election *const *)elem)->name);
}

struct named_election *named_find(const sidecar_named_t *n, const char *name)
{
    if (n->n_els == 0)
        return NULL;
    struct named_election **p = bsearch(name, n->els, n->n_els, sizeof(*n->els), by_name);
    return p ? *p : NULL;
}

struct named_election *named_get_or_add(sidecar_named_t *n, const char *name)
{
    struct named_election *e = named_find(n, name);
    if (e != NULL) {
        e->seen = true;
        return e;
    }
    if (strlen(name) > STORE_ELECTION_NAME_MAX)
        return NULL;
    if (n->n_els == n->cap_els) {
        size_t cap = n->cap_els ? 2 * n->cap_els : 16;
        struct named_election **els = realloc(n->els, cap * sizeof(*els));
        if (els == NULL)
            return NULL;
        n->els = els;
        n->cap_els = cap;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    strcpy(e->name, name);
    e->seen = true;
    size_t at = 0;
    while (at < n->n_els && strcmp(n->els[at]->name, name) < 0)
        at++;
    memmove(&n->els[at + 1], &n->els[at], (n->n_els - at) * sizeof(*n->els));
    n->els[at] = e;
    n->n_els++;
    return e;
}

struct named_member *named_member_find(sidecar_named_t *n, uint64_t id)
{
    for (size_t i = 0; i < n->n_members; i++)
        if (n->members[i].id == id)
            return &n->members[i];
    return NULL;
}

struct named_lists *named_lists(struct named_election *e)
{
    if (e->lists == NULL)
        e->lists = calloc(1, sizeof(*e->lists));
    return e->lists;
}

bool named_eligible(const struct named_election *e, uint64_t id)
{
    for (size_t i = 0; i < e->n_eligible; i++)
        if (e->eligible[i] == id)
            return true;
    return false;
}

bool named_view_touches(const raft_entry_t *e)
{
    if (e->type != RAFT_ENTRY_NORMAL)
        return e->type == RAFT_ENTRY_CONF;
    store_cmd_t cmd;
    if (store_cmd_decode(e->data, e->len, &cmd) != 0)
        return false;
    if (cmd.op == STORE_CMD_ELECTION_ASSIGN || cmd.op == STORE_CMD_ELECTION_DROP)
        return true;
    size_t pl = strlen(SIDECAR_KV_RESERVED_PREFIX);
    return cmd.key_len >= pl && memcmp(cmd.key, SIDECAR_KV_RESERVED_PREFIX, pl) == 0;
}

/* The members of the configuration, keeping what the leader knows of their liveness. */
static void members_load(sidecar_named_t *n)
{
    const raft_conf_t *conf = raft_conf(sidecar_node_raft(n->node));
    struct named_member old[NAMED_MEMBERS_MAX];
    size_t n_old = n->n_members;
    memcpy(old, n->members, n_old * sizeof(old[0]));
    n->n_members = 0;
    for (uint32_t i = 0; i < conf->n && n->n_members < NAMED_MEMBERS_MAX; i++) {
        struct named_member *m = &n->members[n->n_members++];
        *m = (struct named_member){.id = conf->members[i].id};
        for (size_t j = 0; j < n_old; j++)
            if (old[j].id == m->id) {
                m->alive = old[j].alive;
                m->alive_since_ms = old[j].alive_since_ms;
            }
    }
}

typedef void (*record_fn)(sidecar_named_t *n, void *ctx, const char *suffix, const store_kv_t *kv);

/* Every key under prefix, page by page. */
static int records_each(sidecar_named_t *n, const char *prefix, record_fn fn, void *ctx)
{
    store_t *st = sidecar_node_store(n->node);
    size_t pl = strlen(prefix);
    char after[STORE_KEY_MAX + 1] = "";
    size_t after_len = 0;
    for (int page = 0; page < 64; page++) {
        store_kv_t *items = NULL;
        size_t cnt = 0;
        bool more = false;
        int rv = store_kv_list(st, prefix, pl, after_len ? after : NULL, after_len, 0, &items, &cnt,
                               &more);
        if (rv != 0)
            return rv;
        for (size_t i = 0; i < cnt; i++)
            fn(n, ctx, items[i].key + pl, &items[i]);
        if (cnt > 0) {
            after_len = items[cnt - 1].key_len;
            memcpy(after, items[cnt - 1].key, after_len);
        }
        store_kv_list_free(items, cnt);
        if (!more || cnt == 0)
            return 0;
    }
    return 0;
}

/* Declarations are applied in member id order (the lowest declarer's lists win). */
typedef struct decl {
    uint64_t id;
    uint8_t *value;
    size_t len;
} decl_t;

typedef struct decls {
    decl_t d[NAMED_MEMBERS_MAX];
    size_t n;
} decls_t;

static void decl_collect(sidecar_named_t *n, void *ctx, const char *suffix, const store_kv_t *kv)
{
    decls_t *ds = ctx;
    uint64_t id = sidecar_config_node_id(suffix);
    if (id == n->self) /* is ours as it should be? (named.c: declare) */
        n->decl_stored = n->decl_json != NULL && kv->value_len == n->decl_len &&
                         memcmp(kv->value, n->decl_json, n->decl_len) == 0;
    if (named_member_find(n, id) == NULL || ds->n >= NAMED_MEMBERS_MAX)
        return;
    decl_t *d = &ds->d[ds->n];
    d->value = malloc(kv->value_len + 1);
    if (d->value == NULL)
        return;
    memcpy(d->value, kv->value, kv->value_len);
    d->len = kv->value_len;
    d->id = id;
    ds->n++;
}

static int by_id(const void *a, const void *b)
{
    uint64_t x = ((const decl_t *)a)->id, y = ((const decl_t *)b)->id;
    return x < y ? -1 : x > y;
}

static void handover_load(sidecar_named_t *n, void *ctx, const char *suffix, const store_kv_t *kv)
{
    (void)ctx;
    struct named_election *e = named_get_or_add(n, suffix);
    if (e != NULL)
        e->has_handover = named_handover_parse(kv->value, kv->value_len, e);
}

static void stopped_load(sidecar_named_t *n, void *ctx, const char *suffix, const store_kv_t *kv)
{
    (void)ctx;
    struct named_election *e = named_get_or_add(n, suffix);
    if (e != NULL)
        e->has_stopped = named_stopped_parse(kv->value, kv->value_len, &e->st_token, &e->st_from);
}

static int rows_load(sidecar_named_t *n)
{
    store_t *st = sidecar_node_store(n->node);
    char after[STORE_ELECTION_NAME_MAX + 1] = "";
    for (int page = 0; page < 64; page++) {
        store_election_list_t list;
        int rv = store_election_list(st, NULL, after, 0, &list);
        if (rv != 0)
            return rv;
        for (size_t i = 0; i < list.n; i++) {
            struct named_election *e = named_get_or_add(n, list.items[i].name);
            if (e != NULL) {
                e->has_row = true;
                e->row = list.items[i];
            }
        }
        bool more = list.more && list.n > 0;
        if (list.n > 0)
            strcpy(after, list.items[list.n - 1].name);
        store_election_list_free(&list);
        if (!more)
            return 0;
    }
    return 0;
}

/* Drops the elections nobody knows of any more (none of ours: those have controllers). */
static void forget_unseen(sidecar_named_t *n)
{
    size_t kept = 0;
    for (size_t i = 0; i < n->n_els; i++) {
        struct named_election *e = n->els[i];
        if (e->seen || e->w != NULL) {
            n->els[kept++] = e;
        } else {
            free(e->lists);
            free(e->fo.hist);
            free(e);
        }
    }
    n->n_els = kept;
}

int named_view_refresh(sidecar_named_t *n)
{
    for (size_t i = 0; i < n->n_els; i++) {
        struct named_election *e = n->els[i];
        e->seen = e->decl != NULL;
        e->has_row = e->has_handover = e->has_stopped = false;
        e->n_eligible = e->n_prefer = e->n_avoid = 0;
    }
    members_load(n);
    n->decl_stored = false;
    decls_t ds = {.n = 0};
    int rv = records_each(n, SIDECAR_NAMED_DECLARED_PREFIX, decl_collect, &ds);
    qsort(ds.d, ds.n, sizeof(ds.d[0]), by_id);
    for (size_t i = 0; i < ds.n; i++) {
        named_decl_parse(n, ds.d[i].id, ds.d[i].value, ds.d[i].len);
        free(ds.d[i].value);
    }
    if (rv == 0)
        rv = rows_load(n);
    if (rv == 0)
        rv = records_each(n, SIDECAR_NAMED_HANDOVER_PREFIX, handover_load, NULL);
    if (rv == 0)
        rv = records_each(n, SIDECAR_NAMED_STOPPED_PREFIX, stopped_load, NULL);
    forget_unseen(n);
    n->view_gen++;
    if (rv == 0)
        n->dirty = false;
    return rv;
}
