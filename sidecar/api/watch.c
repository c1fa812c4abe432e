/* watch.c — change notification over HTTP: the long polls on GET /v1/leader?wait=&term= and
 * GET /v1/elections/{name}?wait=&token=, and the server-sent event stream GET /v1/events. Node
 * changes and applied election commands wake waiters at once; a short timer notices workload
 * state changes, which the node does not see, and snapshots installed, which apply no entry. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"

#define WATCH_TICK_MS      50
#define SSE_KEEPALIVE_MS   15000
#define SSE_CLIENTS_MAX    64
#define LONGPOLL_MAX       1024
#define LONGPOLL_LIMIT_MS  (5 * 60 * 1000)    /* ?wait= is capped here */
#define PARSED_WAIT_MAX_MS (INT64_C(1) << 50) /* api_parse_wait's own cap, before the callers' */

enum { W_POLL, W_SSE, W_ELECTION };

struct watcher {
    struct watcher *next, *prev;
    sidecar_api_t *api;
    http_req_t *req;
    int kind;
    uint64_t term; /* POLL: what the client saw */
    uint64_t leader;
    uint64_t token;                             /* ELECTION: the token the client saw */
    char election[STORE_ELECTION_NAME_MAX + 1]; /* ELECTION: its name */
    uint64_t deadline_ms;
    uint64_t last_sent_ms; /* SSE: for keepalives */
};

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void unlink_watcher(struct watcher *w)
{
    struct sidecar_api_watch *aw = &w->api->watch;
    if (w->prev)
        w->prev->next = w->next;
    else
        aw->list = w->next;
    if (w->next)
        w->next->prev = w->prev;
    if (w->kind == W_SSE)
        aw->n_sse--;
    else
        aw->n_poll--;
    free(w);
}

static void cancel_cb(http_req_t *req, void *data)
{
    (void)req;
    unlink_watcher(data);
}

static void check(sidecar_api_t *api);
static void tick_cb(uv_timer_t *t);

void api_watch_tick_start(sidecar_api_t *api)
{
    struct sidecar_api_watch *aw = &api->watch;
    if (uv_is_active((uv_handle_t *)&aw->timer))
        return;
    /* What the tick polls (the workload's state) is brought up to date first, so that only
     * later changes become events. */
    check(api);
    uv_timer_start(&aw->timer, tick_cb, WATCH_TICK_MS, WATCH_TICK_MS);
}

static struct watcher *add_watcher(sidecar_api_t *api, http_req_t *req, int kind)
{
    struct watcher *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    struct sidecar_api_watch *aw = &api->watch;
    api_watch_tick_start(api);
    w->api = api;
    w->req = req;
    w->kind = kind;
    w->next = aw->list;
    if (aw->list)
        aw->list->prev = w;
    aw->list = w;
    if (kind == W_SSE)
        aw->n_sse++;
    else
        aw->n_poll++;
    http_req_on_cancel(req, cancel_cb, w);
    return w;
}

/* The JSON every watcher gets: who leads, our role, the workload's state. */
static cJSON *state_json(sidecar_api_t *api)
{
    sidecar_node_state_t st;
    sidecar_node_state(api->node, &st);
    cJSON *o = api_member_json(api, st.leader);
    api_json_u64(o, "term", st.term);
    cJSON_AddStringToObject(o, "role", raft_role_name(st.role));
    api_json_u64(o, "fencing_token", st.epoch);
    sidecar_workload_info_t wi;
    sidecar_workload_info(api->workload, &wi);
    cJSON_AddStringToObject(o, "workload", sidecar_workload_state_name(wi.state));
    return o;
}

static void reply_poll(struct watcher *w, bool changed)
{
    cJSON *o = state_json(w->api);
    cJSON_AddBoolToObject(o, "changed", changed);
    http_req_reply_json(w->req, 200, o);
    cJSON_Delete(o);
    unlink_watcher(w); /* answered: no cancel callback follows */
}

static void reply_election(struct watcher *w, bool changed)
{
    api_election_reply(w->api, w->req, w->election, 200, changed);
    unlink_watcher(w); /* answered: no cancel callback follows */
}

/* The token election name has now: 0 when it does not exist; false when it cannot be read. */
static bool election_token(sidecar_api_t *api, const char *name, uint64_t *token)
{
    sidecar_named_status_t e;
    int rv = api_election_get(api, name, &e);
    *token = rv == 0 ? e.token : 0;
    return rv == 0 || rv == STORE_ENOTFOUND;
}

/* Wakes the election long polls (of election name; of all with NULL) whose token moved. */
static void elections_check(sidecar_api_t *api, const char *name)
{
    struct watcher *w = api->watch.list;
    while (w != NULL) {
        struct watcher *next = w->next;
        uint64_t token;
        if (w->kind == W_ELECTION && (name == NULL || strcmp(name, w->election) == 0) &&
            election_token(api, w->election, &token) && token != w->token)
            reply_election(w, true);
        w = next;
    }
}

static void sse_send(struct watcher *w, const char *event, const cJSON *data)
{
    char *json = cJSON_PrintUnformatted(data);
    if (json == NULL)
        return;
    size_t len = strlen(json) + strlen(event) + 32;
    char *buf = malloc(len);
    if (buf != NULL) {
        int n = snprintf(buf, len, "event: %s\ndata: %s\n\n", event, json);
        if (http_req_stream_write(w->req, buf, (size_t)n) != 0) {
            /* A client that does not read: the server closes it (and cancels us). */
        }
        free(buf);
    }
    free(json);
    w->last_sent_ms = now_ms();
}

/* Compares the state with what watchers were last told; wakes them on a difference. */
static void check(sidecar_api_t *api)
{
    struct sidecar_api_watch *aw = &api->watch;
    sidecar_node_state_t st;
    sidecar_node_state(api->node, &st);
    sidecar_workload_info_t wi;
    sidecar_workload_info(api->workload, &wi);
    bool leader_changed = st.leader != aw->leader || st.term != aw->term;
    bool role_changed = st.role != aw->role;
    bool workload_changed = (int)wi.state != aw->workload;
    if (st.leader == 0 && aw->leader != 0 && aw->lost_at_ms == 0)
        aw->lost_at_ms = now_ms(); /* leaderless from here: a failover as seen here */
    if (st.leader != 0 && aw->lost_at_ms != 0) {
        sidecar_hist_observe(&aw->failover, (double)(now_ms() - aw->lost_at_ms) / 1000.0);
        aw->lost_at_ms = 0;
    }
    if (leader_changed && st.leader != 0 && st.leader != aw->leader)
        aw->leader_changes++;
    aw->leader = st.leader;
    aw->term = st.term;
    aw->role = st.role;
    aw->workload = (int)wi.state;
    if (!leader_changed && !role_changed && !workload_changed)
        return;
    cJSON *data = state_json(api);
    const char *event = leader_changed ? "leader" : role_changed ? "role" : "workload";
    struct watcher *w = aw->list;
    while (w != NULL) {
        struct watcher *next = w->next;
        if (w->kind == W_SSE)
            sse_send(w, event, data);
        else if (w->kind == W_POLL && (st.term != w->term || st.leader != w->leader))
            reply_poll(w, true);
        w = next;
    }
    cJSON_Delete(data);
}

static void changed_cb(void *ud, const sidecar_node_state_t *st)
{
    (void)st;
    check(ud);
}

/* An election's holder changed (or it was dropped): an "election" event on every stream. */
static void election_event(sidecar_api_t *api, const char *name, bool dropped,
                           const store_result_t *res)
{
    cJSON *o = cJSON_CreateObject();
    char holder[64];
    sidecar_node_member_name(api->node, res->holder, holder, sizeof(holder));
    cJSON_AddStringToObject(o, "name", name);
    if (dropped || res->holder == 0)
        cJSON_AddNullToObject(o, "holder");
    else
        cJSON_AddStringToObject(o, "holder", holder);
    cJSON_AddNumberToObject(o, "fencing_token", (double)res->token);
    cJSON_AddStringToObject(o, "change",
                            dropped       ? "dropped"
                            : res->holder ? "assigned"
                                          : "released");
    for (struct watcher *w = api->watch.list, *next; w != NULL; w = next) {
        next = w->next;
        if (w->kind == W_SSE)
            sse_send(w, "election", o);
    }
    cJSON_Delete(o);
}

/* An election command applied: its long polls look again, its streams hear of it. */
static void applied_cb(void *ud, const raft_entry_t *e, const store_result_t *res)
{
    sidecar_api_t *api = ud;
    api_kv_watch_applied(api, e, res);
    api->watch.applied_seen = e->index;
    store_cmd_t cmd;
    if (api->watch.list == NULL || e->type != RAFT_ENTRY_NORMAL ||
        res->status != STORE_APPLIED_OK || store_cmd_decode(e->data, e->len, &cmd) != 0 ||
        (cmd.op != STORE_CMD_ELECTION_ASSIGN && cmd.op != STORE_CMD_ELECTION_DROP))
        return;
    char name[STORE_ELECTION_NAME_MAX + 1];
    memcpy(name, cmd.name, cmd.name_len);
    name[cmd.name_len] = '\0';
    elections_check(api, name);
    election_event(api, name, cmd.op == STORE_CMD_ELECTION_DROP, res);
}

static void tick_cb(uv_timer_t *t)
{
    sidecar_api_t *api = t->data;
    check(api);
    api_kv_watch_tick(api);
    /* A snapshot installed replaces the table without applying an entry. */
    uint64_t applied = store_applied_index(sidecar_node_store(api->node));
    if (applied > api->watch.applied_seen) {
        api->watch.applied_seen = applied;
        elections_check(api, NULL);
    }
    uint64_t now = now_ms();
    struct watcher *w = api->watch.list;
    while (w != NULL) {
        struct watcher *next = w->next;
        if (w->kind == W_POLL && now >= w->deadline_ms)
            reply_poll(w, false);
        else if (w->kind == W_ELECTION && now >= w->deadline_ms)
            reply_election(w, false);
        else if (w->kind == W_SSE && now - w->last_sent_ms >= SSE_KEEPALIVE_MS) {
            /* A comment line keeps proxies from closing an idle stream. */
            if (http_req_stream_write(w->req, ": keepalive\n\n", 13) == 0)
                w->last_sent_ms = now;
        }
        w = next;
    }
    if (api->watch.list == NULL && api->kv_watch.list == NULL)
        uv_timer_stop(t);
}

/* A long poll of kind that waits ms at most; NULL when req has been answered (too many long
 * polls, or out of memory). */
static struct watcher *add_poll(sidecar_api_t *api, http_req_t *req, int kind, int64_t ms)
{
    if (api->watch.n_poll >= LONGPOLL_MAX) {
        http_req_header_add(req, "Retry-After", "1");
        http_req_reply_error(req, 503, "busy", "too many long polls");
        return NULL;
    }
    struct watcher *w = add_watcher(api, req, kind);
    if (w == NULL) {
        http_req_reply_error(req, 503, "busy", "out of memory");
        return NULL;
    }
    w->deadline_ms = now_ms() + (uint64_t)ms;
    return w;
}

int64_t api_parse_wait(const char *s)
{
    char *end;
    double v = strtod(s, &end), scale;
    if (end == s || !isfinite(v) || v < 0)
        return -1;
    if (strcmp(end, "ms") == 0)
        scale = 1;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        scale = 1000;
    else if (strcmp(end, "m") == 0)
        scale = 60000;
    else
        return -1;
    /* Every caller caps the wait far below this; capping here first keeps the conversion
     * defined for any number (fuzz_api: ?wait=1666…6ms was undefined behaviour, and in
     * practice a negative wait refused as 400). */
    double ms = v * scale;
    return ms >= (double)PARSED_WAIT_MAX_MS ? PARSED_WAIT_MAX_MS : (int64_t)ms;
}

/* GET /v1/leader[?wait=DURATION&term=N&leader=NAME] */
static void h_leader(http_req_t *req, void *data)
{
    sidecar_api_t *api = data;
    const char *wait = http_req_query(req, "wait");
    const char *term_s = http_req_query(req, "term");
    const char *leader_s = http_req_query(req, "leader"); /* what the caller last saw */
    sidecar_node_state_t st;
    sidecar_node_state(api->node, &st);
    if (wait == NULL) {
        cJSON *o = state_json(api);
        http_req_reply_json(req, 200, o);
        cJSON_Delete(o);
        return;
    }
    int64_t ms = api_parse_wait(wait);
    char *end = NULL;
    uint64_t term = term_s ? strtoull(term_s, &end, 10) : st.term;
    if (ms < 0 || (term_s && (*term_s == '\0' || *end != '\0'))) {
        http_req_reply_error(req, 400, "bad_request",
                             "wait must be a duration (500ms, 30s) and term a number");
        return;
    }
    if (ms > LONGPOLL_LIMIT_MS)
        ms = LONGPOLL_LIMIT_MS;
    /* The caller's view is (term, the leader it then saw): a different term, or a leader
     * found or lost within it, ends the wait. The caller says which leader it saw
     * (`leader=`, empty for none); without it, the one known now stands in — which misses a
     * leader found between the caller's last answer and this request. */
    uint64_t seen = st.leader;
    if (leader_s != NULL)
        seen = *leader_s == '\0' ? 0 : sidecar_config_node_id(leader_s);
    if (term != st.term || seen != st.leader) {
        cJSON *o = state_json(api);
        cJSON_AddBoolToObject(o, "changed", true);
        http_req_reply_json(req, 200, o);
        cJSON_Delete(o);
        return;
    }
    struct watcher *w = add_poll(api, req, W_POLL, ms);
    if (w != NULL) {
        w->term = st.term;
        w->leader = seen;
    }
}

void api_watch_election(sidecar_api_t *api, http_req_t *req, const char *name)
{
    const char *token_s = http_req_query(req, "token");
    int64_t ms = api_parse_wait(http_req_query(req, "wait"));
    uint64_t seen = 0, token = 0;
    if (ms < 0 || (token_s != NULL && sidecar_parse_count(token_s, &seen) != 0)) {
        http_req_reply_error(req, 400, "bad_request",
                             "wait must be a duration (500ms, 30s) and token a number");
        return;
    }
    if (!election_token(api, name, &token)) {
        http_req_reply_error(req, 500, "store_error", "the election cannot be read");
        return;
    }
    if (ms > LONGPOLL_LIMIT_MS)
        ms = LONGPOLL_LIMIT_MS;
    /* The caller says which token it saw (0: none, the election did not exist); without it
     * the current one stands in, which misses a change between its last answer and this. */
    if (token_s == NULL)
        seen = token;
    if (seen != token) {
        api_election_reply(api, req, name, 200, true);
        return;
    }
    struct watcher *w = add_poll(api, req, W_ELECTION, ms);
    if (w != NULL) {
        w->token = seen;
        memcpy(w->election, name, strlen(name) + 1);
    }
}

/* GET /v1/events: text/event-stream; one "state" event at once, then "leader", "role",
 * "workload" and "election" (a named election's holder changed) events as they happen. */
static void h_events(http_req_t *req, void *data)
{
    sidecar_api_t *api = data;
    if (api->watch.n_sse >= SSE_CLIENTS_MAX) {
        http_req_header_add(req, "Retry-After", "5");
        http_req_reply_error(req, 503, "busy", "too many event streams");
        return;
    }
    http_req_header_add(req, "Cache-Control", "no-cache");
    if (http_req_stream_start(req, 200, "text/event-stream") != 0)
        return;
    struct watcher *w = add_watcher(api, req, W_SSE);
    if (w == NULL) {
        http_req_stream_end(req);
        return;
    }
    cJSON *o = state_json(api);
    sse_send(w, "state", o);
    cJSON_Delete(o);
}

void api_watch_open(sidecar_api_t *api, uv_loop_t *loop)
{
    struct sidecar_api_watch *aw = &api->watch;
    sidecar_hist_init(&aw->failover);
    sidecar_node_state_t st;
    sidecar_node_state(api->node, &st);
    aw->leader = st.leader;
    aw->term = st.term;
    aw->role = st.role;
    aw->workload = -1;
    http_server_route(api->srv, HTTP_METHOD_GET, "/v1/leader", 0, h_leader, api);
    http_server_route(api->srv, HTTP_METHOD_GET, "/v1/events", 0, h_events, api);
    aw->obs =
        (sidecar_node_observer_t){.changed_cb = changed_cb, .applied_cb = applied_cb, .ud = api};
    sidecar_node_observe(api->node, &aw->obs);
    uv_timer_init(loop, &aw->timer);
    aw->timer.data = api; /* started by the first watcher (api_watch_tick_start) */
    api_kv_watch_open(api, loop);
}

/* Ends every stream and answers every long poll (shutdown). */
void api_watch_close(sidecar_api_t *api)
{
    struct sidecar_api_watch *aw = &api->watch;
    sidecar_node_unobserve(api->node, &aw->obs);
    uv_timer_stop(&aw->timer);
    api_kv_watch_close(api);
    while (aw->list != NULL) {
        struct watcher *w = aw->list;
        if (w->kind == W_SSE) {
            http_req_stream_end(w->req);
            unlink_watcher(w);
        } else if (w->kind == W_ELECTION) {
            reply_election(w, false);
        } else {
            reply_poll(w, false);
        }
    }
}
