/* kv.c — the replicated KV endpoints: fenced and compare-and-set writes through Raft,
 * linearizable reads through ReadIndex (or local with ?stale), and prefix listing. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"

#define KV_WAIT_MS  5000 /* a write or read not done by then answers 503 */
#define KV_SWEEP_MS 100
/* A listing page holds at most this many bytes of items' JSON (and always at least one item,
 * however large), so that a client's reply cap (the CLI's is 4 MiB) is never reached; the
 * items are read from the store KV_LIST_CHUNK at a time (16 values of 64 KiB: 1 MiB). */
#define KV_LIST_PAGE_BYTES (1u << 20)
#define KV_LIST_CHUNK      16
#define KV_ITEM_JSON_EXTRA 256 /* an item's names, revisions, owner and punctuation, at most */
#define FENCE_HEADER       "X-Electd-Fence"
#define ELECTION_HEADER    "X-Electd-Election"

enum { WAIT_WRITE, WAIT_READ_INDEX, WAIT_APPLY };

struct kv_wait {
    struct kv_wait *next, *prev;
    sidecar_api_t *api;
    http_req_t *req;
    int kind;
    uint64_t index; /* WRITE: the proposal's index; APPLY: the read index to reach */
    uint64_t term;  /* WRITE: the proposal's term */
    uint64_t ctx;   /* READ_INDEX: our token */
    uint64_t deadline_ms;
    bool list;         /* the read is a prefix listing */
    api_entry_cb done; /* WRITE: answers once the entry applied in the proposal's term */
};

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void wait_unlink(struct kv_wait *w)
{
    sidecar_api_t *api = w->api;
    if (w->prev)
        w->prev->next = w->next;
    else
        api->waits = w->next;
    if (w->next)
        w->next->prev = w->prev;
    free(w);
}

static void cancel_cb(http_req_t *req, void *data)
{
    (void)req;
    wait_unlink(data); /* the client went away; nothing to answer */
}

static void sweep_cb(uv_timer_t *t);

static struct kv_wait *wait_add(sidecar_api_t *api, http_req_t *req, int kind)
{
    struct kv_wait *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->api = api;
    w->req = req;
    w->kind = kind;
    w->deadline_ms = now_ms() + KV_WAIT_MS;
    /* The sweep runs only while something waits: an idle member does not wake for it. */
    if (api->waits == NULL)
        uv_timer_start(&api->timer, sweep_cb, KV_SWEEP_MS, KV_SWEEP_MS);
    w->next = api->waits;
    if (api->waits)
        api->waits->prev = w;
    api->waits = w;
    http_req_on_cancel(req, cancel_cb, w);
    return w;
}

/* Forgets a wait whose request was just answered: the request is gone, and no cancel
 * callback follows an answer. */
static void wait_done(struct kv_wait *w)
{
    wait_unlink(w);
}

/* Forgets a wait whose request is still to be answered by the caller. */
static void wait_abandon(struct kv_wait *w)
{
    http_req_on_cancel(w->req, NULL, NULL);
    wait_unlink(w);
}

/* ---- encoding values ----------------------------------------------------------------------- */

/* Whether s is well-formed UTF-8 without NUL (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF), which is what a JSON string may carry as it is. */
bool api_utf8_valid(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c == 0)
                return false;
            i++;
            continue;
        }
        size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                     : c >= 0xe0 && c <= 0xef ? 3
                     : c >= 0xf0 && c <= 0xf4 ? 4
                                              : 0;
        if (len == 0 || i + len > n)
            return false;
        /* The second byte's range excludes overlong forms, surrogates and > U+10FFFF. */
        uint8_t lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
        uint8_t hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
        i += len;
    }
    return true;
}

static char *base64(const uint8_t *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

void api_json_bytes(cJSON *o, const char *name, const uint8_t *s, size_t n)
{
    if (api_utf8_valid(s, n)) {
        cJSON_AddStringToObject(o, name, (const char *)s);
        return;
    }
    char field[32];
    snprintf(field, sizeof(field), "%s_base64", name);
    char *b = base64(s, n);
    cJSON_AddStringToObject(o, field, b ? b : "");
    free(b);
}

static cJSON *kv_json(const sidecar_api_t *api, const store_kv_t *kv)
{
    cJSON *o = cJSON_CreateObject();
    api_json_bytes(o, "key", (const uint8_t *)kv->key, kv->key_len);
    api_json_bytes(o, "value", kv->value, kv->value_len);
    api_json_u64(o, "create_revision", kv->create_revision);
    api_json_u64(o, "mod_revision", kv->mod_revision);
    api_json_u64(o, "version", kv->version);
    if (kv->owner != 0) {
        char name[SIDECAR_CONFIG_NAME_MAX + 1];
        sidecar_node_member_name(api->node, kv->owner, name, sizeof(name));
        cJSON_AddBoolToObject(o, "ephemeral", true);
        cJSON_AddStringToObject(o, "owner", name);
    }
    return o;
}

/* Bytes of s in a reply as api_json_bytes() writes it (quotes included). */
static size_t json_bytes_len(const uint8_t *s, size_t n)
{
    if (!api_utf8_valid(s, n))
        return 4 * ((n + 2) / 3) + 2;
    size_t len = 2;
    for (size_t i = 0; i < n; i++)
        len += s[i] == '"' || s[i] == '\\' || s[i] == '\b' || s[i] == '\f' || s[i] == '\n' ||
                       s[i] == '\r' || s[i] == '\t'
                   ? 2
               : s[i] < 0x20 ? 6
                             : 1;
    return len;
}

/* At least the bytes of kv_json(kv) printed unformatted. */
static size_t kv_json_len(const store_kv_t *kv)
{
    return json_bytes_len((const uint8_t *)kv->key, kv->key_len) +
           json_bytes_len(kv->value, kv->value_len) + KV_ITEM_JSON_EXTRA;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s == '\0')
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

/* ---- serving reads --------------------------------------------------------------------------- */

/* A stored value failed its checksum: 500 corrupt_value naming the key, and a log line. The
 * value itself is never sent. */
void api_reply_corrupt(sidecar_api_t *api, http_req_t *req)
{
    store_t *st = sidecar_node_store(api->node);
    size_t len = 0;
    const char *key = store_corrupt_key(st, &len);
    SIDECAR_LOG(SIDECAR_LOG_ERROR, "stored value fails its checksum; refused to serve it",
                SIDECAR_LOG_STR("detail", store_errmsg(st)));
    cJSON *o = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(err, "code", "corrupt_value");
    cJSON_AddStringToObject(err, "message",
                            "this member's stored value fails its checksum and is not served: "
                            "overwrite or delete the key, or re-seed this member (see its log)");
    char *copy = key ? malloc(len + 1) : NULL;
    if (copy) {
        memcpy(copy, key, len);
        copy[len] = 0;
        api_json_bytes(err, "key", (const uint8_t *)copy, len);
        free(copy);
    }
    http_req_reply_json(req, 500, o);
    cJSON_Delete(o);
}

static void serve_get(sidecar_api_t *api, http_req_t *req)
{
    store_t *st = sidecar_node_store(api->node);
    const char *key = http_req_param(req, "key");
    store_kv_t kv;
    int rv = store_kv_get(st, key, strlen(key), &kv);
    if (rv == STORE_ENOTFOUND) {
        http_req_reply_error(req, 404, "not_found", "no such key");
        return;
    }
    if (rv == STORE_EKEY) {
        http_req_reply_error(req, 400, "invalid_key", store_strerror(rv));
        return;
    }
    if (rv == STORE_ECHECKSUM) {
        api_reply_corrupt(api, req);
        return;
    }
    if (rv != 0) {
        http_req_reply_error(req, 500, "store_error", store_strerror(rv));
        return;
    }
    char rev[24];
    snprintf(rev, sizeof(rev), "\"%" PRIu64 "\"", kv.mod_revision);
    http_req_header_add(req, "ETag", rev);
    if (http_req_query(req, "raw") != NULL) {
        http_req_reply(req, 200, "application/octet-stream", kv.value, kv.value_len);
    } else {
        cJSON *o = kv_json(api, &kv);
        http_req_reply_json(req, 200, o);
        cJSON_Delete(o);
    }
    store_kv_clear(&kv);
}

/* Fills arr with the keys under prefix after `after`, in key order: at most limit items and
 * KV_LIST_PAGE_BYTES of JSON, at least one item. *more says whether more keys follow. */
static int list_fill(const sidecar_api_t *api, const char *prefix, const char *after, size_t limit,
                     cJSON *arr, bool *more)
{
    store_t *st = sidecar_node_store(api->node);
    char cursor[STORE_KEY_MAX];
    const char *from = after;
    size_t from_len = after ? strlen(after) : 0, count = 0, bytes = 0;
    *more = false;
    /* Bounded: every round but the last adds KV_LIST_CHUNK items, up to limit. */
    while (count < limit) {
        store_kv_t *items = NULL;
        size_t n = 0, i = 0;
        bool rest = false;
        int rv = store_kv_list(st, prefix, strlen(prefix), from, from_len,
                               limit - count < KV_LIST_CHUNK ? limit - count : KV_LIST_CHUNK,
                               &items, &n, &rest);
        if (rv != 0)
            return rv;
        for (; i < n; i++) {
            size_t len = kv_json_len(&items[i]);
            if (count > 0 && bytes + len > KV_LIST_PAGE_BYTES)
                break;
            cJSON_AddItemToArray(arr, kv_json(api, &items[i]));
            count++;
            bytes += len;
        }
        if (i > 0) {
            memcpy(cursor, items[i - 1].key, items[i - 1].key_len);
            from = cursor;
            from_len = items[i - 1].key_len;
        }
        store_kv_list_free(items, n);
        *more = i < n || rest;
        if (i < n || !rest || n == 0)
            break;
    }
    return 0;
}

static void serve_list(sidecar_api_t *api, http_req_t *req)
{
    const char *prefix = http_req_query(req, "prefix");
    const char *limit_s = http_req_query(req, "limit");
    uint64_t limit = 0;
    if (limit_s != NULL && (!parse_u64(limit_s, &limit) || limit == 0 || limit > STORE_LIST_MAX)) {
        http_req_reply_error(req, 400, "invalid_limit", "limit must be a number from 1 to 1000");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "items");
    bool more = false;
    int rv = list_fill(api, prefix ? prefix : "", http_req_query(req, "after"),
                       limit ? (size_t)limit : STORE_LIST_MAX, arr, &more);
    if (rv == STORE_ECHECKSUM) {
        cJSON_Delete(o);
        api_reply_corrupt(api, req);
        return;
    }
    if (rv != 0) {
        cJSON_Delete(o);
        http_req_reply_error(req, rv == STORE_EKEY ? 400 : 500, "list_failed", store_strerror(rv));
        return;
    }
    cJSON_AddBoolToObject(o, "more", more);
    http_req_reply_json(req, 200, o);
    cJSON_Delete(o);
}

static void serve_read(sidecar_api_t *api, http_req_t *req, bool list)
{
    if (list)
        serve_list(api, req);
    else
        serve_get(api, req);
}

/* GET: linearizable by default (Raft §6.4 ReadIndex on the leader); ?stale reads this
 * node's state as it is. */
static void start_read(sidecar_api_t *api, http_req_t *req, bool list)
{
    if (http_req_query(req, "stale") != NULL) {
        serve_read(api, req, list);
        return;
    }
    const raft_t *r = sidecar_node_raft(api->node);
    if (raft_role(r) != RAFT_LEADER) {
        api_reply_not_leader(api, req);
        return;
    }
    struct kv_wait *w = wait_add(api, req, WAIT_READ_INDEX);
    if (w == NULL) {
        http_req_reply_error(req, 503, "busy", "out of memory");
        return;
    }
    w->list = list;
    w->ctx = ++api->next_ctx;
    int rv = sidecar_node_read_index(api->node, w->ctx);
    if (rv != 0) {
        wait_abandon(w);
        http_req_reply_error(req, 503, rv == RAFT_ENOQUORUM ? "no_quorum" : "not_leader",
                             rv == RAFT_ENOQUORUM ? "the leader has not committed in its term "
                                                    "yet; retry shortly"
                                                  : raft_strerror(rv));
    }
}

/* ?watch= (a stream) and ?wait= (a long poll) follow changes instead (kv_watch.c). */
static bool is_watch(http_req_t *req)
{
    return http_req_query(req, "watch") != NULL || http_req_query(req, "wait") != NULL;
}

static void h_get(http_req_t *req, void *data)
{
    if (api_store_refused(data, req))
        return;
    if (is_watch(req))
        api_kv_watch(data, req, false);
    else
        start_read(data, req, false);
}

static void h_list(http_req_t *req, void *data)
{
    if (api_store_refused(data, req))
        return;
    if (is_watch(req))
        api_kv_watch(data, req, true);
    else
        start_read(data, req, true);
}

/* ---- writes ------------------------------------------------------------------------------------
 */

static void reply_write(http_req_t *req, const raft_entry_t *e, const store_result_t *res);

/* The election a write names (?election=E, else the X-Electd-Election header), or NULL. */
static const char *write_election(http_req_t *req)
{
    const char *e = http_req_query(req, "election");
    return e != NULL ? e : http_req_header(req, ELECTION_HEADER);
}

/* The fence of a write and the election it belongs to (cond->election borrows from req),
 * checked against the credential: the workload token of the default election writes only
 * fenced by that election, a named election's workload token only fenced by its own. False
 * when req has been answered. */
static bool write_fence(sidecar_api_t *api, http_req_t *req, store_cond_t *cond)
{
    const char *fence = http_req_query(req, "fence");
    if (fence == NULL)
        fence = http_req_header(req, FENCE_HEADER);
    /* The store reads fence 0 as "unfenced": a present fence of 0 (a worker that took an
     * unset token for 0) would silently write unfenced, so it is refused like any other
     * fence that is not an epoch. */
    if (fence != NULL && (!parse_u64(fence, &cond->fence) || cond->fence == 0)) {
        http_req_reply_error(req, 400, "invalid_fence",
                             "a fencing token is the epoch, a number from 1 up "
                             "(ELECTD_FENCING_TOKEN); omit it for an unfenced write");
        return false;
    }
    const char *election = write_election(req);
    if (election != NULL && !store_election_name_valid(election, strlen(election))) {
        http_req_reply_error(req, 400, "invalid_election",
                             "an election name is 1-63 letters, digits, '.', '_' or '-', the "
                             "first a letter or a digit");
        return false;
    }
    if (election != NULL && fence == NULL) {
        http_req_reply_error(req, 400, "election_without_fence",
                             "election names whose fencing token ?fence= carries: give both "
                             "(?fence=$ELECTD_FENCING_TOKEN&election=$ELECTD_ELECTION)");
        return false;
    }
    cond->election = election;
    if (!http_req_scoped(req))
        return true;
    /* The workload's own credential writes only what its election's token protects. */
    if (fence == NULL) {
        http_req_reply_error(req, 403, "fence_required",
                             "a write with the workload token must carry the fencing token "
                             "(?fence=$ELECTD_FENCING_TOKEN, and &election=$ELECTD_ELECTION "
                             "for a named election)");
        return false;
    }
    const char *own = NULL;
    if (!api_scoped_election(api, req, &own)) {
        http_req_reply_error(req, 401, "unauthorized", "the workload token is no longer valid");
        return false;
    }
    if ((own == NULL) != (election == NULL) || (own != NULL && strcmp(own, election) != 0)) {
        char msg[200];
        if (own == NULL)
            snprintf(msg, sizeof(msg),
                     "the default workload's token writes only fenced by the "
                     "default election's token (no election)");
        else
            snprintf(msg, sizeof(msg),
                     "the workload token of election %s writes only fenced by that election's "
                     "token (&election=%s)",
                     own, own);
        http_req_reply_error(req, 403, "wrong_election", msg);
        return false;
    }
    return true;
}

/* ?ephemeral=true on a PUT: *ephemeral, and the member named by ?owner= in *owner_name (NULL:
 * none named). False when req has been answered. */
static bool write_ephemeral(http_req_t *req, bool put, bool *ephemeral, const char **owner_name)
{
    const char *e = http_req_query(req, "ephemeral");
    *owner_name = http_req_query(req, "owner");
    *ephemeral = e != NULL && (strcmp(e, "true") == 0 || strcmp(e, "1") == 0 || e[0] == '\0');
    if (e != NULL && !*ephemeral && strcmp(e, "false") != 0 && strcmp(e, "0") != 0) {
        http_req_reply_error(req, 400, "invalid_ephemeral", "ephemeral is true or false");
        return false;
    }
    if (*ephemeral && !put) {
        http_req_reply_error(req, 400, "invalid_ephemeral",
                             "only a PUT binds a key to a member (a DELETE removes the key)");
        return false;
    }
    if (*owner_name != NULL && !*ephemeral) {
        http_req_reply_error(req, 400, "invalid_owner",
                             "owner names the member an ephemeral key is bound to: only with "
                             "?ephemeral=true");
        return false;
    }
    return true;
}

/* The member an ephemeral PUT on the leader binds its key to: the one that received the
 * client's request, named by ?owner= when another member redirected or relayed it, else this
 * one. It must be a member of the group. 0 when req has been answered. */
static uint64_t write_owner(sidecar_api_t *api, http_req_t *req, const char *owner_name)
{
    uint64_t id = sidecar_node_id(api->node);
    if (owner_name == NULL)
        return id;
    id = sidecar_config_node_id(owner_name);
    if (raft_conf_find(raft_conf(sidecar_node_raft(api->node)), id) != NULL)
        return id;
    http_req_reply_error(req, 400, "invalid_owner", "owner names no member of the group");
    return 0;
}

/* A follower sends an ephemeral PUT on to the leader naming itself as the owner (the client
 * wrote beside it), unless the request already names one. */
static void write_not_leader(sidecar_api_t *api, http_req_t *req, bool ephemeral,
                             const char *owner_name)
{
    if (!ephemeral || owner_name != NULL) {
        api_reply_not_leader(api, req);
        return;
    }
    char self[SIDECAR_CONFIG_NAME_MAX + 1];
    sidecar_node_member_name(api->node, sidecar_node_id(api->node), self, sizeof(self));
    const char *target = http_req_target(req);
    size_t cap = strlen(target) + strlen(self) + 16;
    char *to = malloc(cap);
    if (to == NULL) {
        http_req_reply_error(req, 503, "busy", "out of memory");
        return;
    }
    snprintf(to, cap, "%s%sowner=%s", target, strchr(target, '?') ? "&" : "?", self);
    api_reply_not_leader_to(api, req, to);
    free(to);
}

static void start_write(sidecar_api_t *api, http_req_t *req, bool put)
{
    store_cond_t cond = {0};
    bool ephemeral = false;
    const char *owner_name = NULL;
    /* Checked here first, so that a relay to the leader (--forward) carries only a write
     * this member's credential rules allow. */
    if (!write_fence(api, req, &cond) || !write_ephemeral(req, put, &ephemeral, &owner_name))
        return;
    const raft_t *r = sidecar_node_raft(api->node);
    if (raft_role(r) != RAFT_LEADER) {
        write_not_leader(api, req, ephemeral, owner_name);
        return;
    }
    uint64_t owner = ephemeral ? write_owner(api, req, owner_name) : 0;
    if (ephemeral && owner == 0)
        return;
    const char *key = http_req_param(req, "key");
    const char *if_match = http_req_header(req, "If-Match");
    const char *if_none = http_req_header(req, "If-None-Match");
    if (if_match != NULL) {
        char buf[32];
        size_t len = strlen(if_match);
        if (len >= 2 && if_match[0] == '"' && if_match[len - 1] == '"' && len - 2 < sizeof(buf)) {
            memcpy(buf, if_match + 1, len - 2);
            buf[len - 2] = '\0';
            if_match = buf;
        }
        if (!parse_u64(if_match, &cond.if_match)) {
            http_req_reply_error(req, 400, "invalid_if_match",
                                 "If-Match must be a mod revision (a number)");
            return;
        }
        cond.has_if_match = true;
    } else if (if_none != NULL && strcmp(if_none, "*") == 0) {
        cond.has_if_match = true;
        cond.if_match = 0; /* create only */
    }
    size_t vlen = 0;
    const char *value = put ? http_req_body(req, &vlen) : NULL;
    static uint8_t buf[STORE_CMD_MAX];
    size_t len = 0;
    int rv = !put    ? store_cmd_encode_del(key, strlen(key), &cond, buf, sizeof(buf), &len)
             : owner ? store_cmd_encode_put_ephemeral(key, strlen(key), value, vlen, owner, &cond,
                                                      buf, sizeof(buf), &len)
                     : store_cmd_encode_put(key, strlen(key), value, vlen, &cond, buf, sizeof(buf),
                                            &len);
    if (rv == STORE_EVALUE) {
        http_req_reply_error(req, 413, "value_too_large", "values are limited to 64 KiB");
        return;
    }
    if (rv != 0) {
        http_req_reply_error(req, 400, rv == STORE_ENAME ? "invalid_election" : "invalid_key",
                             store_strerror(rv));
        return;
    }
    uint64_t index = 0;
    rv = sidecar_node_propose(api->node, buf, len, &index);
    if (rv != 0) {
        if (rv == RAFT_ENOTLEADER || rv == RAFT_ETRANSFERRING)
            api_reply_not_leader(api, req);
        else
            http_req_reply_error(req, 503, "propose_failed", raft_strerror(rv));
        return;
    }
    if (api_wait_entry(api, req, index, raft_term(r), reply_write) != 0)
        http_req_reply_error(req, 503, "busy", "out of memory; the write may still apply");
}

int api_wait_entry(sidecar_api_t *api, http_req_t *req, uint64_t index, uint64_t term,
                   api_entry_cb done)
{
    struct kv_wait *w = wait_add(api, req, WAIT_WRITE);
    if (w == NULL)
        return -1;
    w->index = index;
    w->term = term;
    w->done = done;
    return 0;
}

/* electd's own records are written by electd only: refused on every member, before any
 * redirect or relay, whatever the credential, fence or condition. */
static bool reserved_refused(http_req_t *req)
{
    const char *key = http_req_param(req, "key");
    if (strncmp(key, SIDECAR_KV_RESERVED_PREFIX, strlen(SIDECAR_KV_RESERVED_PREFIX)) != 0)
        return false;
    http_req_reply_error(req, 403, "reserved_key",
                         "keys under " SIDECAR_KV_RESERVED_PREFIX " hold electd's own records: "
                         "they can be read but not written or deleted");
    return true;
}

/* A new key must be UTF-8 text, so that every reply can carry it as a JSON string; one
 * stored before this rule (or arriving in a snapshot from such a version) is still read,
 * listed and deleted, answered as key_base64. Checked on every member, before any redirect. */
static bool key_refused(http_req_t *req)
{
    const char *key = http_req_param(req, "key");
    if (api_utf8_valid((const uint8_t *)key, strlen(key)))
        return false;
    http_req_reply_error(req, 400, "invalid_key",
                         "a key must be UTF-8 text (percent-encode its bytes in the URL); "
                         "binary data belongs in the value");
    return true;
}

static void h_put(http_req_t *req, void *data)
{
    if (!reserved_refused(req) && !key_refused(req) && !api_store_refused(data, req))
        start_write(data, req, true);
}

static void h_delete(http_req_t *req, void *data)
{
    if (!reserved_refused(req) && !api_store_refused(data, req))
        start_write(data, req, false);
}

static void reply_write(http_req_t *req, const raft_entry_t *e, const store_result_t *res)
{
    const char *key = http_req_param(req, "key");
    cJSON *o = cJSON_CreateObject();
    api_json_bytes(o, "key", (const uint8_t *)key, strlen(key));
    int status = 200;
    switch (res->status) {
    case STORE_APPLIED_OK:
        api_json_u64(o, "revision", res->revision);
        if (res->op == STORE_CMD_PUT) {
            api_json_u64(o, "create_revision", res->create_revision);
            api_json_u64(o, "mod_revision", res->mod_revision);
            api_json_u64(o, "version", res->version);
            store_cmd_t cmd;
            if (store_cmd_decode(e->data, e->len, &cmd) == 0 && cmd.owner != 0)
                cJSON_AddBoolToObject(o, "ephemeral", true);
        } else {
            cJSON_AddBoolToObject(o, "deleted", true);
        }
        break;
    case STORE_APPLIED_NOT_FOUND:
        status = 404;
        cJSON_Delete(o);
        http_req_reply_error(req, status, "not_found", "no such key");
        return;
    case STORE_APPLIED_CONFLICT: {
        cJSON_Delete(o);
        o = cJSON_CreateObject();
        cJSON *err = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(err, "code", "conflict");
        cJSON_AddStringToObject(err, "message", "If-Match did not match the key's mod revision");
        api_json_u64(err, "mod_revision", res->mod_revision);
        status = 409;
        break;
    }
    case STORE_APPLIED_FENCED: {
        cJSON_Delete(o);
        o = cJSON_CreateObject();
        cJSON *err = cJSON_AddObjectToObject(o, "error");
        const char *election = write_election(req);
        cJSON_AddStringToObject(err, "code", "fenced");
        cJSON_AddStringToObject(err, "message",
                                election == NULL
                                    ? "the fencing token is not the current epoch's: a newer "
                                      "primary exists"
                                    : "the fencing token is not the election's current one: a "
                                      "newer holder exists (or nobody holds it)");
        api_json_u64(err, "fencing_token", res->epoch);
        if (election != NULL)
            cJSON_AddStringToObject(err, "election", election);
        status = 409;
        break;
    }
    default:
        cJSON_Delete(o);
        http_req_reply_error(req, 400, "invalid_command", store_strerror(res->err));
        return;
    }
    http_req_reply_json(req, status, o);
    cJSON_Delete(o);
}

/* ---- observer ------------------------------------------------------------------------------ */

static void applied_cb(void *ud, const raft_entry_t *e, const store_result_t *res)
{
    sidecar_api_t *api = ud;
    uint64_t applied = store_applied_index(sidecar_node_store(api->node));
    struct kv_wait *w = api->waits;
    while (w != NULL) {
        struct kv_wait *next = w->next;
        if (w->kind == WAIT_WRITE && w->index == e->index) {
            if (e->term != w->term)
                http_req_reply_error(w->req, 503, "leadership_lost",
                                     "leadership changed before the change committed; it was "
                                     "not applied");
            else
                w->done(w->req, e, res);
            wait_done(w);
        } else if (w->kind == WAIT_APPLY && w->index <= applied) {
            serve_read(api, w->req, w->list);
            wait_done(w);
        }
        w = next;
    }
}

static void read_cb(void *ud, uint64_t ctx, uint64_t index)
{
    sidecar_api_t *api = ud;
    for (struct kv_wait *w = api->waits; w; w = w->next) {
        if (w->kind != WAIT_READ_INDEX || w->ctx != ctx)
            continue;
        if (index == 0) {
            http_req_reply_error(w->req, 503, "leadership_lost",
                                 "leadership changed during the read; retry on the leader");
            wait_done(w);
        } else if (store_applied_index(sidecar_node_store(api->node)) >= index) {
            serve_read(api, w->req, w->list);
            wait_done(w);
        } else {
            w->kind = WAIT_APPLY;
            w->index = index;
        }
        return;
    }
}

static void fail_all(sidecar_api_t *api, const char *code, const char *msg)
{
    while (api->waits != NULL) {
        struct kv_wait *w = api->waits;
        http_req_reply_error(w->req, 503, code, msg);
        wait_done(w);
    }
}

static void changed_cb(void *ud, const sidecar_node_state_t *st)
{
    sidecar_api_t *api = ud;
    if (!st->store_ok && api->waits != NULL)
        fail_all(api, "store_failed",
                 "this member cannot write to its data directory (disk full or I/O error); a "
                 "pending write may or may not have applied");
    else if (st->role != RAFT_LEADER && api->waits != NULL)
        fail_all(api, "leadership_lost",
                 "this node stopped leading; a pending write may or may not have applied");
}

static void sweep_cb(uv_timer_t *t)
{
    sidecar_api_t *api = t->data;
    uint64_t now = now_ms();
    struct kv_wait *w = api->waits;
    while (w != NULL) {
        struct kv_wait *next = w->next;
        if (now >= w->deadline_ms) {
            http_req_reply_error(w->req, 503, "timeout",
                                 w->kind == WAIT_WRITE
                                     ? "no quorum confirmed the write in time; it may still apply"
                                     : "no quorum confirmed leadership in time");
            wait_done(w);
        }
        w = next;
    }
    if (api->waits == NULL)
        uv_timer_stop(t);
}

void api_kv_open(sidecar_api_t *api, uv_loop_t *loop)
{
    http_server_route(api->srv, HTTP_METHOD_GET, "/v1/kv", 0, h_list, api);
    http_server_route(api->srv, HTTP_METHOD_GET, "/v1/kv/{key...}", 0, h_get, api);
    /* The workload's token may write, fenced (start_write). */
    http_server_route(api->srv, HTTP_METHOD_PUT, "/v1/kv/{key...}",
                      HTTP_ROUTE_MUTATING | HTTP_ROUTE_SCOPED, h_put, api);
    http_server_route(api->srv, HTTP_METHOD_DELETE, "/v1/kv/{key...}",
                      HTTP_ROUTE_MUTATING | HTTP_ROUTE_SCOPED, h_delete, api);
    api->obs = (sidecar_node_observer_t){
        .changed_cb = changed_cb, .applied_cb = applied_cb, .read_cb = read_cb, .ud = api};
    sidecar_node_observe(api->node, &api->obs);
    uv_timer_init(loop, &api->timer);
    api->timer.data = api; /* started by the first wait (wait_add) */
}

void api_kv_close(sidecar_api_t *api)
{
    sidecar_node_unobserve(api->node, &api->obs);
    fail_all(api, "shutting_down", "electd is shutting down");
}
