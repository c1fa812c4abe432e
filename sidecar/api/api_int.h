/* api_int.h — private to the API handlers (the .c files of sidecar/api/): the server object and
 * shared helpers. */
#ifndef ELECTD_SIDECAR_API_INT_H
#define ELECTD_SIDECAR_API_INT_H

#include <cjson/cJSON.h>

#include "api.h"
#include "common.h"
#include "tls.h"

struct kv_wait;
struct watcher;
struct kv_watcher;

/* KV watches (kv_watch.c): streams and long polls of changes to a key or a prefix. */
struct api_kv_watch {
    struct kv_watcher *list;
    size_t n;         /* streams and long polls open */
    uint64_t cutoffs; /* streams cut off as slow readers */
    uv_idle_t flush;  /* writes what the streams queued, once per turn of the loop */
};

/* Change notification state (watch.c). */
struct sidecar_api_watch {
    struct watcher *list; /* long polls and event streams */
    size_t n_poll, n_sse;
    sidecar_node_observer_t obs;
    uv_timer_t timer;
    uint64_t leader, term;
    uint64_t applied_seen; /* the last index applied_cb told of: a jump beyond is a snapshot */
    raft_role_t role;
    int workload;
    uint64_t lost_at_ms;     /* when this node stopped knowing a leader; 0 */
    uint64_t leader_changes; /* new leaders seen */
    sidecar_hist_t failover; /* leaderless -> a leader known, as seen here (s) */
};

/* Transport security (secure.c). */
struct api_secure {
    bool https;            /* the API serves HTTPS: addresses handed to clients say https */
    bool insecure;         /* --insecure-http and nothing authenticates writes: warned */
    tls_ctx_t *server;     /* NULL on plain HTTP; outlives the server */
    tls_ctx_t *client;     /* --forward over HTTPS; NULL otherwise */
    uv_timer_t warn_timer; /* the --insecure-http warning, every minute */
    uint64_t tls_logged_ms, tls_suppressed; /* TLS failures: the last line, lines skipped */
};

struct sidecar_api {
    http_server_t *srv;
    sidecar_node_t *node;
    sidecar_workload_t *workload;
    sidecar_named_t *named; /* the named elections (NULL in tests without them) */
    const sidecar_config_t *cfg;
    sidecar_node_observer_t obs;
    struct kv_wait *waits; /* KV requests waiting for commit, ReadIndex or apply */
    uint64_t next_ctx;
    uv_timer_t timer; /* expires waits that took too long */
    struct sidecar_api_watch watch;
    struct api_kv_watch kv_watch;
    struct api_secure secure;
    void (*close_cb)(void *);
    void *close_ud;
};

/* Integers as raw JSON numbers: cJSON would print them as doubles through printf("%g") and
 * check the round trip with sscanf, a quarter of a status request's cost. */
void api_json_u64(cJSON *obj, const char *key, uint64_t v);
void api_json_i64(cJSON *obj, const char *key, int64_t v);

/* A member address "name=host:port" as JSON fields: name and peer address (borrowed from
 * addr); an address without a name is shown whole as the name. */
void api_member_fields(const char *addr, char *name, size_t nlen, const char **peer_addr);

#define API_URL_MAX 300 /* "https://" and an advertised host:port */

/* scheme://http into buf (the member's advertised address as a URL); returns buf. */
const char *api_member_url(const sidecar_api_t *api, const char *http, char *buf, size_t len);

/* {"id","name","peer_addr","http","url"} of a member, or nulls for id 0. */
cJSON *api_member_json(sidecar_api_t *api, uint64_t id);

/* For a request let in by the scoped credential (http_req_scoped): true with *election set to
 * the name of the election whose workload's token it carries (borrowed from the runtime), or
 * to NULL for the default election's workload; false when the token is valid no longer. */
bool api_scoped_election(sidecar_api_t *api, http_req_t *req, const char **election);

/* While this member's store is failing (a batch cannot be persisted: disk full, I/O error),
 * answers req 503 store_failed (with the leader's address when another member leads) and
 * returns true; returns false otherwise. For every request that needs the store. */
bool api_store_refused(sidecar_api_t *api, http_req_t *req);

/* --forward: relays req (to target, the request target to send) to the leader at leader_http
 * and answers with its reply. Returns
 * false (nothing done) when forwarding is off, the address is unusable, or req was itself
 * forwarded. */
bool api_forward(sidecar_api_t *api, http_req_t *req, const char *leader_http, const char *target);

/* 421 with the leader's address (and a Location header when its HTTP address is known), or
 * 503 when no leader is known; with --forward, the request is relayed to the leader instead. */
void api_reply_not_leader(sidecar_api_t *api, http_req_t *req);
/* The same, sending the client (Location) or the relay to target instead of req's own request
 * target: what this member adds for the leader (kv.c: the owner of an ephemeral PUT). */
void api_reply_not_leader_to(sidecar_api_t *api, http_req_t *req, const char *target);

/* Answers req through done() once the entry at index applies in term `term` (503 if
 * another entry took its place, leadership was lost, or 5 s passed). done() must answer. */
typedef void (*api_entry_cb)(http_req_t *req, const raft_entry_t *e, const store_result_t *res);
int api_wait_entry(sidecar_api_t *api, http_req_t *req, uint64_t index, uint64_t term,
                   api_entry_cb done);

/* HTTPS and --insecure-http (secure.c): before listen; errbuf names the file and the reason.
 * The contexts are freed by api_secure_free() once the server has closed; the warning timer
 * is closed with the API's other timers. */
int api_secure_open(sidecar_api_t *api, uv_loop_t *loop, char *errbuf, size_t errlen);
void api_secure_free(sidecar_api_t *api);
/* "https" when the API serves HTTPS, else "http": the scheme of every member's address
 * handed to clients (all members of a group use the same scheme). */
const char *api_scheme(const sidecar_api_t *api);

/* Long poll and event stream (watch.c); _close answers and ends them all. */
void api_watch_open(sidecar_api_t *api, uv_loop_t *loop);
void api_watch_close(sidecar_api_t *api);
/* A ?wait= duration: "30s", "500ms", "2m", "2" (seconds). Returns ms, or -1. */
int64_t api_parse_wait(const char *s);
/* Starts the watchers' tick (deadlines, keepalives, the workload's state) unless it runs; it
 * stops by itself once no watcher of either kind is left, so an idle member does not wake
 * for it. Called as a watcher is added (watch.c, kv_watch.c). */
void api_watch_tick_start(sidecar_api_t *api);

/* KV watches (kv_watch.c), driven by watch.c's observer and timer. GET /v1/kv/{key} or
 * GET /v1/kv?prefix= with ?watch=true (server-sent events) or ?wait= (a long poll). */
void api_kv_watch(sidecar_api_t *api, http_req_t *req, bool prefix);
/* Initialises the flush handle (closed by sidecar_api_close). */
void api_kv_watch_open(sidecar_api_t *api, uv_loop_t *loop);
void api_kv_watch_applied(sidecar_api_t *api, const raft_entry_t *e, const store_result_t *res);
void api_kv_watch_tick(sidecar_api_t *api);
void api_kv_watch_close(sidecar_api_t *api); /* ends every stream, answers every poll */

/* Whether s[0..n) is well-formed UTF-8 without NUL (kv.c): what a JSON string may carry as it
 * is. */
bool api_utf8_valid(const uint8_t *s, size_t n);

/* Adds s[0..n) as name (valid UTF-8) or as name_base64 (any other bytes), so that whatever is
 * stored, the reply is valid JSON; s must be NUL-terminated at n (kv.c). */
void api_json_bytes(cJSON *o, const char *name, const uint8_t *s, size_t n);

/* GET /metrics (prometheus.c). */
void api_metrics_register(sidecar_api_t *api);

/* Registers the membership routes (members.c). */
void api_members_register(sidecar_api_t *api);

/* ---- named elections (elections.c) ----
 * An election is read from the runtime (api->named) when it knows it, else from the replicated
 * table (store.h), shown as the runtime would with nothing declared here. */

/* One election into *out (state borrowed from the runtime, or static). Errors: STORE_ENOTFOUND,
 * STORE_EIO (the runtime could not read it), the store's. */
int api_election_get(sidecar_api_t *api, const char *name, sidecar_named_status_t *out);

/* Every election, by name: the runtime's and the table's merged. Walk with _next until it
 * returns false, then _end; it->err says whether the table failed to read meanwhile. Bounded:
 * the runtime's list and 100 pages of the table (100,000 elections each). */
typedef struct api_elections_iter {
    store_t *st;
    sidecar_named_status_t *runtime; /* malloc'd, sorted by name */
    size_t n_runtime, i_runtime;
    store_election_list_t page; /* the table's current page */
    size_t i_page, pages;
    bool store_done;
    int err;
} api_elections_iter_t;
int api_elections_begin(api_elections_iter_t *it, sidecar_api_t *api); /* STORE_ENOMEM */
bool api_elections_next(api_elections_iter_t *it, sidecar_named_status_t *out);
void api_elections_end(api_elections_iter_t *it);

/* Answers req with election name's JSON object and status (404 not_found when there is no
 * such election); changed >= 0 adds "changed" (a long poll's answer). */
void api_election_reply(sidecar_api_t *api, http_req_t *req, const char *name, int status,
                        int changed);

/* GET /v1/primary?election=NAME. */
void api_election_primary(sidecar_api_t *api, http_req_t *req, const char *name);

/* Registers the routes of /v1/elections. */
void api_elections_register(sidecar_api_t *api);

/* GET /v1/elections/{name}?wait=DURATION&token=N (watch.c): answers at once when the
 * election's token is not N (0: it does not exist), else when it changes or the wait ends. */
void api_watch_election(sidecar_api_t *api, http_req_t *req, const char *name);

/* Registers the KV routes (kv.c) and its node observer. */
void api_kv_open(sidecar_api_t *api, uv_loop_t *loop);
/* 500 corrupt_value naming the key store_corrupt_key() holds, and a log line (kv.c). */
void api_reply_corrupt(sidecar_api_t *api, http_req_t *req);

/* ---- maintenance mode (maintenance.c) ---- */
/* Registers GET/POST /v1/maintenance. */
void api_maintenance_register(sidecar_api_t *api);
/* ,"maintenance":{"enabled":..,"reason":..,"since_ms":..} of /v1/status. */
void api_maintenance_status(sidecar_buf_t *b, sidecar_api_t *api);
/* While maintenance is on, answers req 409 maintenance and returns true (voluntary
 * transfers); false otherwise. */
bool api_maintenance_refused(sidecar_api_t *api, http_req_t *req);

/* backup.c: GET /v1/backup */
void api_backup_register(sidecar_api_t *api);
/* Answers every waiting KV request with 503 (shutdown). */
void api_kv_close(sidecar_api_t *api);

#endif
