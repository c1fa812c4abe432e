/* elections.c — the named elections' endpoints: GET /v1/elections (every election, with this
 * member's part), GET /v1/elections/{name} (its long poll is watch.c's), POST
 * /v1/elections/{name}/transfer, and GET /v1/primary?election=NAME. Each election is read from
 * the runtime (named.h) when it knows it — it adds the elections declared but never assigned,
 * and this member's workload — and otherwise from the replicated table (store.h), so that the
 * endpoints answer on a member without the runtime too. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_int.h"

#define ELECTIONS_PAGE_MAX    1000   /* elections in one reply (?limit=, default) */
#define ELECTIONS_STORE_PAGES 100    /* store pages read for one walk: 100,000 elections */
#define ELECTIONS_RUNTIME_MAX 100000 /* elections taken from the runtime for one walk */

/* ---- one election, from the runtime or the table -------------------------------------------- */

static void from_row(const store_election_t *row, sidecar_named_status_t *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->name, row->name, sizeof(out->name));
    out->holder = row->holder;
    out->token = row->token;
    out->since_unix_ms = row->since_unix_ms;
    out->state = row->holder != 0 ? "held" : "unheld";
    out->local = SIDECAR_WORKLOAD_STANDBY;
}

int api_election_get(sidecar_api_t *api, const char *name, sidecar_named_status_t *out)
{
    if (api->named != NULL) {
        int rv = sidecar_named_get(api->named, name, out);
        if (rv == 0)
            return 0;
        if (rv != SIDECAR_NAMED_ENOTFOUND)
            return STORE_EIO;
    }
    store_election_t row;
    int rv = store_election_get(sidecar_node_store(api->node), name, &row);
    if (rv == 0)
        from_row(&row, out);
    return rv;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const sidecar_named_status_t *)a)->name,
                  ((const sidecar_named_status_t *)b)->name);
}

/* The runtime's elections, sorted by name (NULL and 0 without a runtime or any election). */
static int runtime_list(sidecar_api_t *api, sidecar_named_status_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t total = 0;
    if (api->named == NULL)
        return 0;
    sidecar_named_status_t first;
    sidecar_named_list(api->named, &first, 1, &total);
    if (total == 0)
        return 0;
    if (total > ELECTIONS_RUNTIME_MAX)
        total = ELECTIONS_RUNTIME_MAX;
    *out = calloc(total, sizeof(**out));
    if (*out == NULL)
        return STORE_ENOMEM;
    *n = sidecar_named_list(api->named, *out, total, &total);
    qsort(*out, *n, sizeof(**out), by_name);
    return 0;
}

int api_elections_begin(api_elections_iter_t *it, sidecar_api_t *api)
{
    memset(it, 0, sizeof(*it));
    it->st = sidecar_node_store(api->node);
    return runtime_list(api, &it->runtime, &it->n_runtime);
}

/* The store row at the cursor, reading the next page when the current one is used up; NULL
 * at the end (or on an error, kept in it->err). */
static const store_election_t *row_peek(api_elections_iter_t *it)
{
    if (it->i_page < it->page.n)
        return &it->page.items[it->i_page];
    if (it->store_done)
        return NULL;
    bool first = it->pages == 0;
    if (!first && !it->page.more) {
        it->store_done = true;
        return NULL;
    }
    char after[STORE_ELECTION_NAME_MAX + 1] = "";
    if (it->page.n > 0)
        memcpy(after, it->page.items[it->page.n - 1].name, sizeof(after));
    store_election_list_free(&it->page);
    it->i_page = 0;
    if (it->pages++ == ELECTIONS_STORE_PAGES) {
        it->store_done = true;
        return NULL;
    }
    int rv = store_election_list(it->st, NULL, after, 0, &it->page);
    if (rv != 0 || it->page.n == 0) {
        it->err = rv;
        it->store_done = true;
        return NULL;
    }
    return &it->page.items[0];
}

bool api_elections_next(api_elections_iter_t *it, sidecar_named_status_t *out)
{
    const store_election_t *row = row_peek(it);
    const sidecar_named_status_t *rt =
        it->i_runtime < it->n_runtime ? &it->runtime[it->i_runtime] : NULL;
    if (row == NULL && rt == NULL)
        return false;
    int cmp = row == NULL ? -1 : rt == NULL ? 1 : strcmp(rt->name, row->name);
    if (cmp <= 0) { /* the runtime's view wins: it knows this member's part */
        *out = *rt;
        it->i_runtime++;
        if (cmp == 0)
            it->i_page++;
    } else {
        from_row(row, out);
        it->i_page++;
    }
    return true;
}

void api_elections_end(api_elections_iter_t *it)
{
    free(it->runtime);
    store_election_list_free(&it->page);
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static uint64_t unix_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A member's name as a JSON string (its id in hex outside the configuration), null for 0. */
static void member_name_json(sidecar_buf_t *b, sidecar_api_t *api, uint64_t id)
{
    if (id == 0) {
        sidecar_buf_printf(b, "null");
        return;
    }
    char name[64];
    sidecar_node_member_name(api->node, id, name, sizeof(name));
    sidecar_buf_json_str(b, name);
}

/* One election's JSON object, without its closing brace. */
static void election_fields(sidecar_buf_t *b, sidecar_api_t *api, const sidecar_named_status_t *e,
                            uint64_t now_unix_ms)
{
    sidecar_buf_printf(b, "{\"name\":");
    sidecar_buf_json_str(b, e->name);
    sidecar_buf_printf(b, ",\"holder\":");
    member_name_json(b, api, e->holder);
    sidecar_buf_printf(b, ",\"fencing_token\":%" PRIu64 ",\"state\":", e->token);
    sidecar_buf_json_str(b, e->state != NULL ? e->state : "unheld");
    /* The proposer's wall clock began the tenure: a clock behind ours reads as 0. */
    if (e->holder != 0 && e->since_unix_ms != 0)
        sidecar_buf_printf(b, ",\"since_ms\":%" PRIu64,
                           now_unix_ms > e->since_unix_ms ? now_unix_ms - e->since_unix_ms : 0);
    else
        sidecar_buf_printf(b, ",\"since_ms\":null");
    if (e->state != NULL && strcmp(e->state, "handover") == 0) {
        sidecar_buf_printf(b, ",\"handover_to\":");
        member_name_json(b, api, e->handover_to);
    }
    sidecar_buf_printf(b,
                       ",\"local\":{\"declared\":%s,\"state\":\"%s\",\"starts\":%" PRIu64
                       ",\"restarts\":%" PRIu64 "}",
                       e->declared_here ? "true" : "false", sidecar_workload_state_name(e->local),
                       e->starts, e->restarts);
}

static void reply_buf(http_req_t *req, int status, sidecar_buf_t *b)
{
    if (b->failed)
        http_req_reply_error(req, 503, "busy", "out of memory");
    else
        http_req_reply(req, status, "application/json", b->data, b->len);
    sidecar_buf_free(b);
}

static bool name_refused(http_req_t *req, const char *name)
{
    if (name != NULL && store_election_name_valid(name, strlen(name)))
        return false;
    http_req_reply_error(req, 400, "invalid_election",
                         "an election name is 1-63 letters, digits, '.', '_' or '-', the first a "
                         "letter or a digit");
    return true;
}

void api_election_reply(sidecar_api_t *api, http_req_t *req, const char *name, int status,
                        int changed)
{
    sidecar_named_status_t e;
    int rv = api_election_get(api, name, &e);
    if (rv == STORE_ENOTFOUND) {
        http_req_reply_error(req, 404, "not_found", "no such election");
        return;
    }
    if (rv != 0) {
        http_req_reply_error(req, 500, "store_error", store_strerror(rv));
        return;
    }
    sidecar_buf_t b = {0};
    election_fields(&b, api, &e, unix_now_ms());
    if (changed >= 0)
        sidecar_buf_printf(&b, ",\"changed\":%s", changed ? "true" : "false");
    sidecar_buf_printf(&b, "}");
    reply_buf(req, status, &b);
}

/* ---- the endpoints -------------------------------------------------------------------------- */

/* GET /v1/elections[?after=NAME&limit=N]: by name; "total" counts them all. */
static void h_list(http_req_t *req, void *data)
{
    sidecar_api_t *api = data;
    const char *after = http_req_query(req, "after");
    const char *limit_s = http_req_query(req, "limit");
    uint64_t limit = ELECTIONS_PAGE_MAX;
    if (limit_s != NULL &&
        (sidecar_parse_count(limit_s, &limit) != 0 || limit == 0 || limit > ELECTIONS_PAGE_MAX)) {
        http_req_reply_error(req, 400, "invalid_limit", "limit must be a number from 1 to 1000");
        return;
    }
    if (after != NULL && *after != '\0' && name_refused(req, after))
        return;
    api_elections_iter_t it;
    if (api_elections_begin(&it, api) != 0) {
        http_req_reply_error(req, 503, "busy", "out of memory");
        return;
    }
    sidecar_buf_t b = {0};
    sidecar_buf_printf(&b, "{\"elections\":[");
    uint64_t now = unix_now_ms(), shown = 0, total = 0;
    bool more = false;
    sidecar_named_status_t e;
    /* Bounded: the walk reads at most ELECTIONS_STORE_PAGES pages and the runtime's list. */
    while (api_elections_next(&it, &e)) {
        total++;
        if (after != NULL && strcmp(e.name, after) <= 0)
            continue;
        if (shown == limit) {
            more = true;
            continue;
        }
        if (shown++ > 0)
            sidecar_buf_printf(&b, ",");
        election_fields(&b, api, &e, now);
        sidecar_buf_printf(&b, "}");
    }
    int err = it.err;
    api_elections_end(&it);
    if (err != 0) {
        sidecar_buf_free(&b);
        http_req_reply_error(req, 500, "store_error", store_strerror(err));
        return;
    }
    sidecar_buf_printf(&b, "],\"total\":%" PRIu64 ",\"more\":%s}", total, more ? "true" : "false");
    reply_buf(req, 200, &b);
}

/* GET /v1/elections/{name}[?wait=DURATION&token=N] */
static void h_get(http_req_t *req, void *data)
{
    sidecar_api_t *api = data;
    const char *name = http_req_param(req, "name");
    if (name_refused(req, name))
        return;
    if (http_req_query(req, "wait") != NULL)
        api_watch_election(api, req, name);
    else
        api_election_reply(api, req, name, 200, -1);
}

/* POST /v1/elections/{name}/transfer[?to=NODE]: a graceful handover, through the runtime. */
static void h_transfer(http_req_t *req, void *data)
{
    sidecar_api_t *api = data;
    const char *name = http_req_param(req, "name");
    if (name_refused(req, name) || api_store_refused(api, req) || api_maintenance_refused(api, req))
        return;
    uint64_t to = 0;
    const char *to_s = http_req_query(req, "to");
    if (to_s != NULL && *to_s != '\0') {
        to = sidecar_config_node_id(to_s);
        if (sidecar_node_member_addr(api->node, to) == NULL) {
            http_req_reply_error(req, 404, "unknown_member", "no member has that name");
            return;
        }
    }
    int rv = SIDECAR_NAMED_ENOTFOUND;
    if (api->named != NULL) {
        rv = sidecar_named_transfer(api->named, name, to);
    } else {
        sidecar_named_status_t e;
        if (api_election_get(api, name, &e) == 0) {
            http_req_reply_error(req, 503, "no_runtime",
                                 "this member does not run named elections: ask another");
            return;
        }
    }
    switch (rv) {
    case 0:
        api_election_reply(api, req, name, 202, -1);
        return;
    case SIDECAR_NAMED_ENOTFOUND:
        http_req_reply_error(req, 404, "not_found", "no such election");
        return;
    case SIDECAR_NAMED_ENOHOLDER:
        http_req_reply_error(req, 409, "no_holder",
                             "nobody holds the election: there is nothing to hand over");
        return;
    case SIDECAR_NAMED_ETARGET:
        http_req_reply_error(req, 409, "invalid_target",
                             "the target holds the election already, or is not a live member "
                             "that declares it");
        return;
    case SIDECAR_NAMED_EBUSY:
        http_req_reply_error(req, 409, "transfer_in_progress",
                             "a handover of the election is already under way");
        return;
    case SIDECAR_NAMED_ENOLEADER:
        http_req_header_add(req, "Retry-After", "1");
        http_req_reply_error(req, 503, "no_leader",
                             "no leader is known right now (election in progress or no quorum)");
        return;
    default:
        http_req_reply_error(req, 503, rv == SIDECAR_NAMED_ENOMEM ? "busy" : "store_failed",
                             sidecar_named_strerror(rv));
        return;
    }
}

void api_election_primary(sidecar_api_t *api, http_req_t *req, const char *name)
{
    if (name_refused(req, name))
        return;
    sidecar_named_status_t e;
    int rv = api_election_get(api, name, &e);
    if (rv == STORE_ENOTFOUND) {
        http_req_reply_error(req, 404, "not_found", "no such election");
        return;
    }
    /* Held here, and where this member declares it, its workload runs here as primary. */
    bool primary = rv == 0 && e.holder == sidecar_node_id(api->node) &&
                   (!e.declared_here || e.local == SIDECAR_WORKLOAD_PRIMARY);
    if (primary)
        http_req_reply_text(req, 200, "text/plain; charset=utf-8", "primary\n");
    else
        http_req_reply_error(req, 503, "not_primary",
                             "this node is not the primary of this election");
}

void api_elections_register(sidecar_api_t *api)
{
    http_server_route(api->srv, HTTP_METHOD_GET, "/v1/elections", 0, h_list, api);
    http_server_route(api->srv, HTTP_METHOD_GET, "/v1/elections/{name}", 0, h_get, api);
    http_server_route(api->srv, HTTP_METHOD_POST, "/v1/elections/{name}/transfer",
                      HTTP_ROUTE_MUTATING, h_transfer, api);
}
