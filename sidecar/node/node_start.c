/* node_start.c — the driver's life cycle: start (open the store and load the core, this data
 * directory's identity, the transport, the timers) and close (persist what is pending, then
 * close every handle). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "node_int.h"

#define BOOTSTRAP_KEY "bootstrap_conf"

static void log_state_cb(void *ud, uint64_t *term, const char **role)
{
    const sidecar_node_t *n = ud;
    *term = n->state.term;
    *role = raft_role_name(n->state.role);
}

/* What we tell peers: --advertise-http, and where to dial us — our own entry of --peers,
 * else --listen-peer unless it is a wildcard. */
static void addresses_init(sidecar_node_t *n)
{
    const sidecar_config_t *cfg = n->cfg;
    sidecar_config_addr_format(&cfg->advertise_http, n->http_addr, sizeof(n->http_addr));
    if (cfg->n_peers > 0 && !cfg->join) {
        sidecar_addr_t self = {.host = cfg->peers[cfg->self_index].host,
                               .port = cfg->peers[cfg->self_index].port};
        sidecar_config_addr_format(&self, n->peer_addr, sizeof(n->peer_addr));
    } else if (strcmp(cfg->listen_peer.host, "0.0.0.0") != 0 &&
               strcmp(cfg->listen_peer.host, "::") != 0) {
        sidecar_config_addr_format(&cfg->listen_peer, n->peer_addr, sizeof(n->peer_addr));
    }
}

static int open_store(sidecar_node_t *n, char *errbuf, size_t errlen)
{
    char cluster[32];
    snprintf(cluster, sizeof(cluster), "%016" PRIx64, sidecar_config_cluster_id(n->cfg));
    store_opts_t so = {
        .cluster_id = cluster, .node_id = n->id, .history_max = n->cfg->watch_history};
    return store_open(&n->store, n->cfg->data_dir, &so, errbuf, errlen) == 0 ? 0
                                                                             : SIDECAR_NODE_ESTORE;
}

/* The initial configuration: saved at the first start, so later restarts do not depend on
 * --peers staying the same. */
static int bootstrap_conf(sidecar_node_t *n, bool fresh, raft_conf_t *conf)
{
    memset(conf, 0, sizeof(*conf));
    uint8_t buf[sizeof(raft_conf_t) + 64];
    size_t len = 0;
    if (store_local_get(n->store, BOOTSTRAP_KEY, buf, sizeof(buf), &len) == 0)
        return raft_conf_decode(buf, len, conf) == 0 ? 0 : SIDECAR_NODE_ESTORE;
    const sidecar_config_t *cfg = n->cfg;
    if (cfg->join)
        return 0; /* a new member learns the configuration from the leader */
    for (size_t i = 0; i < cfg->n_peers && conf->n < RAFT_MAX_MEMBERS; i++) {
        raft_member_t *m = &conf->members[conf->n++];
        m->id = cfg->peers[i].id;
        m->voter = 1;
        bool v6 = strchr(cfg->peers[i].host, ':') != NULL;
        snprintf(m->addr, sizeof(m->addr), v6 ? "%s=[%s]:%u" : "%s=%s:%u", cfg->peers[i].name,
                 cfg->peers[i].host, cfg->peers[i].port);
    }
    if (!fresh || conf->n == 0)
        return 0;
    if (raft_conf_encode(conf, buf, sizeof(buf), &len) != 0)
        return SIDECAR_NODE_ECONFIG;
    return store_local_set(n->store, BOOTSTRAP_KEY, buf, len) == 0 ? 0 : SIDECAR_NODE_ESTORE;
}

#define SESSION_TENTHS_OF_E 20 /* member sessions last 2 election timeouts */

static raft_config_t core_config(const sidecar_node_t *n)
{
    const sidecar_config_t *cfg = n->cfg;
    return (raft_config_t){
        .id = n->id,
        .election_ticks = cfg->election_timeout_ms / cfg->tick_ms,
        .heartbeat_ticks = cfg->heartbeat_interval_ms / cfg->tick_ms,
        /* A third of E: p99 failover near 1.3 E instead of 2 E. Split votes stay rare
           because PreVote and a LAN round trip are far shorter than E/3. */
        .election_jitter_ticks = cfg->election_timeout_ms / cfg->tick_ms / 3,
        .election_stagger_ticks = cfg->heartbeat_interval_ms / cfg->tick_ms,
        .max_drift_ppm = cfg->max_drift_ppm,
        /* Member sessions (named elections): S = 2 E outlasts an election (followers stand
           in rank order) and a stop timeout, so a leader change alone stops no workload; a
           dead member's elections move after S × (1 + d)/(1 − d), 2.24 E (docs/guarantees.md,
           "Named elections"). */
        .session_ticks = SESSION_TENTHS_OF_E * (cfg->election_timeout_ms / cfg->tick_ms) / 10,
        .seed = uv_hrtime() ^ n->id,
        .max_inflight = 64,
        .max_msg_bytes = 1u << 20,
        .snapshot_chunk_bytes = 1u << 20,
    };
}

/* Creates the core from what the store holds (and the initial configuration), and the
 * state first published. boot is the store's; released here. */
static int core_new(sidecar_node_t *n, raft_boot_t *boot, char *errbuf, size_t errlen)
{
    boot->conf = n->boot_conf;
    boot->applied = store_applied_index(n->store);
    raft_config_t rc = core_config(n);
    n->session_expire_ms = (uint64_t)raft_session_expire_ticks(&rc) * n->cfg->tick_ms;
    raft_storage_t storage;
    store_raft_storage(n->store, &storage);
    int rv = raft_open(&rc, boot, &storage, &n->raft);
    store_boot_free(n->store, boot);
    if (rv != 0) {
        snprintf(errbuf, errlen, "the Raft state in %s is inconsistent: %s", store_path(n->store),
                 raft_strerror(rv));
        return SIDECAR_NODE_ERAFT;
    }
    store_epoch_t ep;
    if (store_epoch_current(n->store, &ep) == 0)
        n->state.epoch = ep.term;
    n->state.term = raft_term(n->raft);
    n->state.applied = store_applied_index(n->store);
    return 0;
}

/* --restore: a new group's member seeds its empty store from a backup (store_restore), then
 * boots from it; a data directory that holds state already is left alone. */
static int restore_backup(sidecar_node_t *n, bool fresh, raft_boot_t *boot, char *errbuf,
                          size_t errlen)
{
    if (!fresh) {
        SIDECAR_LOG(SIDECAR_LOG_WARN, "--restore ignored: the data directory holds state already",
                    SIDECAR_LOG_STR("backup", n->cfg->restore));
        return 0;
    }
    store_boot_free(n->store, boot);
    store_snapshot_info_t info;
    if (store_restore(n->store, n->cfg->restore, &n->boot_conf, &info) != 0 ||
        store_boot_load(n->store, boot) != 0) {
        snprintf(errbuf, errlen, "cannot restore %s into %s: %s", n->cfg->restore,
                 store_path(n->store), store_errmsg(n->store));
        return SIDECAR_NODE_ESTORE;
    }
    SIDECAR_LOG(SIDECAR_LOG_INFO, "restored from backup",
                SIDECAR_LOG_STR("backup", n->cfg->restore), SIDECAR_LOG_UINT("index", info.index),
                SIDECAR_LOG_UINT("term", info.term));
    return 0;
}

/* Loads the Raft state the store holds, settles the initial configuration, and creates the
 * core. */
static int load_core(sidecar_node_t *n, char *errbuf, size_t errlen)
{
    raft_boot_t boot = {0};
    if (store_boot_load(n->store, &boot) != 0) {
        snprintf(errbuf, errlen, "cannot load Raft state from %s: %s", store_path(n->store),
                 store_errmsg(n->store));
        return SIDECAR_NODE_ESTORE;
    }
    bool fresh = boot.snap.index == 0 && boot.n_entries == 0 && boot.hs.term == 0;
    int rv = bootstrap_conf(n, fresh, &n->boot_conf);
    if (rv != 0) {
        snprintf(errbuf, errlen, "cannot record the initial membership in %s",
                 store_path(n->store));
        store_boot_free(n->store, &boot);
        return rv;
    }
    if (n->cfg->restore != NULL && (rv = restore_backup(n, fresh, &boot, errbuf, errlen)) != 0)
        return rv;
    if (!fresh && n->cfg->n_peers > 0)
        SIDECAR_LOG(SIDECAR_LOG_INFO, "existing data directory: using the stored membership, "
                                      "--peers is ignored");
    if (fresh && n->boot_conf.n == 0)
        SIDECAR_LOG(SIDECAR_LOG_INFO, "joining: waiting for the leader to add this node "
                                      "(POST /v1/members)");
    return core_new(n, &boot, errbuf, errlen);
}

/* Listens for peers and dials the members of the configuration in force. */
static int start_transport(sidecar_node_t *n, char *errbuf, size_t errlen)
{
    const sidecar_config_t *cfg = n->cfg;
    char kit[4096 + sizeof(SIDECAR_NOTICE_KIT)];
    snprintf(kit, sizeof(kit), "%s/%s", cfg->data_dir, SIDECAR_NOTICE_KIT);
    sidecar_transport_config_t tc = {.loop = n->loop,
                                     .self_id = n->id,
                                     .name = cfg->name,
                                     .instance = n->instance,
                                     .linger_ms = 4 * cfg->election_timeout_ms,
                                     .pinned_cb = node_pinned_cb,
                                     .cluster_id = sidecar_config_cluster_id(cfg),
                                     .token = cfg->cluster_token,
                                     .advertise_http = n->http_addr,
                                     .advertise_peer = n->peer_addr[0] ? n->peer_addr : NULL,
                                     .listen_host = cfg->listen_peer.host,
                                     .listen_port = cfg->listen_peer.port,
                                     .tls_cert_file = cfg->peer_cert_file,
                                     .tls_key_file = cfg->peer_key_file,
                                     .tls_ca_file = cfg->peer_trusted_ca_file,
                                     .tls_check_name = cfg->peer_cert_check_name,
                                     .notice_kit_path = kit,
                                     .recv_cb = node_recv_cb,
                                     .ud = n};
    if (sidecar_transport_open(&n->transport, &tc, errbuf, errlen) != 0)
        return SIDECAR_NODE_ETRANSPORT;
    node_peers_sync(n);
    return 0;
}

/* The tick timer, and the check and idle handles the batch loop runs on (node_schedule). */
static void start_timers(sidecar_node_t *n)
{
    uv_timer_init(n->loop, &n->ticker);
    uv_check_init(n->loop, &n->check);
    uv_idle_init(n->loop, &n->idle);
    n->ticker.data = n->check.data = n->idle.data = n;
    n->open_handles = 3;
    n->start_ns = sidecar_clock_boot_ns();
    /* The first tick; from then on the timer is armed for the next tick due (node_batch.c). */
    uv_timer_start(&n->ticker, node_tick_cb, n->cfg->tick_ms, 0);
}

int sidecar_node_open(sidecar_node_t **out, uv_loop_t *loop, const sidecar_config_t *cfg,
                      char *errbuf, size_t errlen)
{
    sidecar_node_t *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return SIDECAR_NODE_ENOMEM;
    n->loop = loop;
    n->cfg = cfg;
    n->id = sidecar_config_node_id(cfg->name);
    n->tick_ns = (uint64_t)cfg->tick_ms * 1000000ull;
    n->state.store_ok = true;
    addresses_init(n);
    int rv = open_store(n, errbuf, errlen);
    if (rv == 0)
        rv = load_core(n, errbuf, errlen);
    if (rv == 0)
        rv = node_identity_load(n, errbuf, errlen);
    if (rv == 0)
        rv = start_transport(n, errbuf, errlen);
    if (rv != 0) {
        raft_close(n->raft);
        store_close(n->store);
        free(n);
        return rv;
    }
    sidecar_log_set_state_cb(log_state_cb, n);
    start_timers(n);
    SIDECAR_LOG(SIDECAR_LOG_INFO, "node started", SIDECAR_LOG_STR("data_dir", cfg->data_dir),
                SIDECAR_LOG_ID("id", n->id), SIDECAR_LOG_UINT("saved_term", raft_term(n->raft)),
                SIDECAR_LOG_UINT("last_index", raft_last_index(n->raft)),
                SIDECAR_LOG_UINT("members", raft_conf(n->raft)->n),
                SIDECAR_LOG_UINT("peer_port", sidecar_transport_port(n->transport)));
    *out = n;
    return 0;
}

/* ---- close -------------------------------------------------------------------------------- */

static void finish_close(sidecar_node_t *n)
{
    if (n->open_handles > 0 || n->transport != NULL)
        return;
    void (*cb)(void *) = n->close_cb;
    void *ud = n->close_ud;
    sidecar_log_set_state_cb(NULL, NULL);
    raft_close(n->raft);
    store_close(n->store);
    free(n->results);
    free(n);
    if (cb)
        cb(ud);
}

static void handle_closed_cb(uv_handle_t *h)
{
    sidecar_node_t *n = h->data;
    n->open_handles--;
    finish_close(n);
}

static void transport_closed_cb(void *ud)
{
    sidecar_node_t *n = ud;
    n->transport = NULL;
    finish_close(n);
}

void sidecar_node_close(sidecar_node_t *n, void (*cb)(void *ud), void *ud)
{
    if (n->closing)
        return;
    n->retry_at_ns = 0;
    node_process(n); /* persist whatever is pending: a vote or an append ack must not be lost */
    n->closing = true;
    n->close_cb = cb;
    n->close_ud = ud;
    uv_close((uv_handle_t *)&n->ticker, handle_closed_cb);
    uv_close((uv_handle_t *)&n->check, handle_closed_cb);
    uv_close((uv_handle_t *)&n->idle, handle_closed_cb);
    sidecar_transport_close(n->transport, transport_closed_cb, n);
}
