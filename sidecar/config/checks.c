/* checks.c — what the syntax of one value cannot show: the settings against each other
 * (pass 4: this node among --peers, listeners, timeouts against the tick and the lease, one
 * mode per node), the file system (pass 5: the data directory, hook and election programs),
 * and, apart from the parse because it resolves names, a member that would dial this node
 * itself. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config_int.h"

static bool is_set(const parser_t *p, const char *name)
{
    size_t idx = 0;
    config_find_setting(name, &idx);
    return p->origin[idx] != O_NONE;
}

static int copy_addr(parser_t *p, sidecar_addr_t *dst, const char *host, uint16_t port)
{
    int rc = 0;
    dst->host = config_dup(p, host, &rc);
    dst->port = port;
    return rc;
}

static bool is_wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

uint32_t sidecar_config_lease_ms(const sidecar_config_t *cfg)
{
    if (cfg->tick_ms == 0) {
        return 0;
    }
    /* the core's own rule, so that the lease electd acts on is the one Raft grants */
    raft_config_t rc = {.election_ticks = cfg->election_timeout_ms / cfg->tick_ms,
                        .max_drift_ppm = cfg->max_drift_ppm};
    return raft_lease_ticks(&rc) * cfg->tick_ms;
}

/* ---- pass 4: settings against each other -------------------------------------------- */

/* This node's place in --peers (or, with --join, its absence), and its peer listener. */
static int check_self(parser_t *p)
{
    sidecar_config_t *cfg = p->cfg;
    size_t i;
    if (cfg->restore != NULL && (cfg->join || cfg->n_peers == 0)) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "--restore starts a new group from a backup: it needs --peers (the "
                           "new group's members) and no --join (a joining member gets the state "
                           "from the leader)");
    }
    if (cfg->n_peers == 0) {
        return is_set(p, "listen-peer")
                   ? 0
                   : config_fail(p, SIDECAR_CONFIG_EINVAL,
                                 "--listen-peer is required when --peers is not given");
    }
    for (i = 0; i < cfg->n_peers && strcmp(cfg->peers[i].name, cfg->name) != 0; i++) {
    }
    if (cfg->join && i < cfg->n_peers) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "--join is for a node that is not in --peers, but \"%s\" is", cfg->name);
    }
    if (cfg->join && !is_set(p, "listen-peer")) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "--listen-peer is required with --join (this node is not in --peers)");
    }
    if (!cfg->join && i == cfg->n_peers) {
        char names[160] = "";
        for (size_t k = 0; k < cfg->n_peers && strlen(names) < 120; k++) {
            size_t n = strlen(names);
            snprintf(names + n, sizeof(names) - n, "%s%s", k ? ", " : "", cfg->peers[k].name);
        }
        return config_fail(p, SIDECAR_CONFIG_EINVAL, "--name \"%s\" is not among --peers (%s)",
                           cfg->name, names);
    }
    cfg->self_index = i;
    if (!cfg->join && !is_set(p, "listen-peer")) {
        return copy_addr(p, &cfg->listen_peer, cfg->peers[i].host, cfg->peers[i].port);
    }
    return 0;
}

/* The advertised HTTP address, and two listeners that would not both bind. */
static int check_listeners(parser_t *p)
{
    sidecar_config_t *cfg = p->cfg;
    if (!is_set(p, "advertise-http")) {
        if (is_wildcard(cfg->listen_http.host)) {
            return config_fail(p, SIDECAR_CONFIG_EINVAL,
                               "--listen-http %s is a wildcard address: set --advertise-http to "
                               "the address clients should be sent to",
                               cfg->listen_http.host);
        }
        int rc = copy_addr(p, &cfg->advertise_http, cfg->listen_http.host, cfg->listen_http.port);
        if (rc != 0) {
            return rc;
        }
    }
    const sidecar_addr_t *lp = &cfg->listen_peer, *lh = &cfg->listen_http;
    if (lp->port == lh->port && lh->port != 0 &&
        (config_same_host(lp->host, lh->host) || is_wildcard(lp->host) || is_wildcard(lh->host))) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "--listen-peer and --listen-http both use port %u on the same address",
                           lh->port);
    }
    return 0;
}

/* Timeouts in whole ticks, heartbeats inside the election timeout, a lease that is not
 * empty and that the workload's stop fits in. */
static int check_timing(parser_t *p)
{
    const sidecar_config_t *cfg = p->cfg;
    char hb[32], et[32], tick[32], stop[32];
    sidecar_format_duration(cfg->heartbeat_interval_ms, hb, sizeof(hb));
    sidecar_format_duration(cfg->election_timeout_ms, et, sizeof(et));
    sidecar_format_duration(cfg->tick_ms, tick, sizeof(tick));
    sidecar_format_duration(cfg->stop_timeout_ms, stop, sizeof(stop));
    if (cfg->heartbeat_interval_ms % cfg->tick_ms != 0) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "--heartbeat-interval (%s) must be a multiple of --tick (%s)", hb, tick);
    }
    if (cfg->election_timeout_ms % cfg->tick_ms != 0) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "--election-timeout (%s) must be a multiple of --tick (%s)", et, tick);
    }
    if (cfg->heartbeat_interval_ms >= cfg->election_timeout_ms) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "--heartbeat-interval (%s) must be less than --election-timeout (%s)",
                           hb, et);
    }
    uint32_t lease = sidecar_config_lease_ms(cfg);
    if (lease == 0) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "--election-timeout (%s) is too short for --tick (%s) and --max-drift "
                           "(%g): the leader lease would be empty",
                           et, tick, cfg->max_drift);
    }
    if (cfg->stop_timeout_ms >= lease) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "--stop-timeout (%s) must be less than the leader lease (%ums: "
                           "--election-timeout %s shortened by --max-drift %g, minus 2 ticks)",
                           stop, lease, et, cfg->max_drift);
    }
    return 0;
}

/* One mode per node: supervise or hooks; a witness runs neither. */
static int check_modes(parser_t *p)
{
    const sidecar_config_t *cfg = p->cfg;
    bool hooks = cfg->on_start.argc || cfg->on_stop.argc || cfg->on_change.argc;
    if (cfg->exec.argc && (cfg->on_start.argc || cfg->on_stop.argc)) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "--exec cannot be combined with --on-start or --on-stop: a node either "
                           "supervises its workload or runs hooks");
    }
    if (cfg->witness && (cfg->exec.argc || hooks)) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "--witness cannot be combined with --exec or hooks: a witness never "
                           "runs the workload");
    }
    return 0;
}

/* --no-primary is kept as the alias of --priority 0; the two are one value from here on. */
static int check_priority(parser_t *p)
{
    sidecar_config_t *cfg = p->cfg;
    size_t at = 0;
    ELECTD_CHECK(config_find_setting("priority", &at) != NULL);
    if (cfg->no_primary && cfg->priority != 0 && p->origin[at] != O_DEFAULT) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "--no-primary is --priority 0: it cannot be combined with --priority "
                           "%u",
                           cfg->priority);
    }
    if (cfg->no_primary)
        cfg->priority = 0;
    cfg->no_primary = cfg->priority == 0;
    return 0;
}

/* An address only this host can reach: 127.0.0.0/8, ::1 (or ::ffff:127.x) or "localhost". A
 * wildcard and any other name count as reachable from other hosts. */
bool sidecar_config_host_loopback(const char *host)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (host == NULL)
        return false;
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
    return strcasecmp(host, "localhost") == 0;
}

/* HTTPS files that go together, and secure by default: an API that other hosts can reach
 * must not let anyone write (KV, transfer, membership) unless the operator says so. */
static int check_http_security(parser_t *p)
{
    const sidecar_config_t *cfg = p->cfg;
    if ((cfg->http_cert_file == NULL) != (cfg->http_key_file == NULL)) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "--http-cert-file and --http-key-file go together: set both to serve "
                           "HTTPS, or neither");
    }
    if (cfg->http_trusted_ca_file != NULL && cfg->http_cert_file == NULL) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "--http-trusted-ca-file needs --http-cert-file and --http-key-file: "
                           "client certificates are asked for over HTTPS only");
    }
    if (sidecar_config_host_loopback(cfg->listen_http.host) || cfg->http_token != NULL ||
        cfg->http_trusted_ca_file != NULL || cfg->insecure_http) {
        return 0;
    }
    char addr[300];
    sidecar_config_addr_format(&cfg->listen_http, addr, sizeof(addr));
    return config_fail(p, SIDECAR_CONFIG_EINVAL,
                       "--listen-http %s can be reached from other hosts and nothing would "
                       "authenticate its mutating endpoints (KV writes, transfer, membership): set "
                       "--http-token, or --http-trusted-ca-file (HTTPS with client certificates), "
                       "or accept the risk with --insecure-http",
                       addr);
}

bool sidecar_config_peer_tls(const sidecar_config_t *cfg)
{
    return cfg->peer_cert_file && cfg->peer_key_file && cfg->peer_trusted_ca_file;
}

bool sidecar_config_peer_insecure(const sidecar_config_t *cfg)
{
    return cfg->listen_peer.host && !sidecar_config_host_loopback(cfg->listen_peer.host) &&
           !sidecar_config_peer_tls(cfg) && !cfg->cluster_token;
}

/* Peer TLS takes all three files or none; and secure by default: a peer port other hosts can
 * reach authenticates members (peer TLS or the cluster token) unless --insecure-peer. */
static int check_peer_security(parser_t *p)
{
    const sidecar_config_t *cfg = p->cfg;
    const char *files[] = {cfg->peer_cert_file, cfg->peer_key_file, cfg->peer_trusted_ca_file};
    const char *flags[] = {"--peer-cert-file", "--peer-key-file", "--peer-trusted-ca-file"};
    char missing[80] = "";
    int set = 0;
    for (size_t i = 0; i < 3; i++) {
        if (files[i]) {
            set++;
        } else {
            size_t n = strlen(missing);
            snprintf(missing + n, sizeof(missing) - n, "%s%s", n ? ", " : "", flags[i]);
        }
    }
    if (set != 0 && set != 3) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "peer TLS needs all three of --peer-cert-file, --peer-key-file and "
                           "--peer-trusted-ca-file; missing: %s",
                           missing);
    }
    if (sidecar_config_peer_insecure(cfg) && !cfg->insecure_peer) {
        char addr[SIDECAR_HOST_MAX + 16];
        sidecar_config_addr_format(&cfg->listen_peer, addr, sizeof(addr));
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "--listen-peer %s can be reached from other hosts but members are not "
                           "authenticated: set --cluster-token (a shared secret) or peer TLS "
                           "(--peer-cert-file, --peer-key-file, --peer-trusted-ca-file), or pass "
                           "--insecure-peer to run so anyway",
                           addr);
    }
    return 0;
}

int config_check_consistency(parser_t *p)
{
    int rc;
    if ((rc = check_self(p)) != 0 || (rc = check_listeners(p)) != 0 ||
        (rc = check_timing(p)) != 0 || (rc = check_modes(p)) != 0 ||
        (rc = check_priority(p)) != 0 || (rc = check_http_security(p)) != 0 ||
        (rc = check_peer_security(p)) != 0) {
        return rc;
    }
    return 0;
}

int config_check_reloaded(parser_t *p)
{
    int rc;
    if ((rc = check_timing(p)) != 0 || (rc = check_modes(p)) != 0 ||
        (rc = check_http_security(p)) != 0) {
        return rc;
    }
    return 0;
}

/* ---- pass 5: the filesystem --------------------------------------------------------- */

/* mkdir -p with mode 0700: the database holds the cluster's state. */
static int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char saved = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
                return -1;
            }
            buf[i] = saved;
        }
    }
    return 0;
}

/* what names the command in a message: "--exec", or "election "e": "exec"". */
static int check_program(parser_t *p, const char *what, const sidecar_argv_t *cmd)
{
    char shown[SHOW_MAX + 16];
    if (cmd->argc == 0 || strchr(cmd->argv[0], '/') == NULL) {
        return 0; /* found through PATH when run */
    }
    if (access(cmd->argv[0], X_OK) != 0) {
        config_show_text(cmd->argv[0], shown, sizeof(shown));
        return config_fail(p, SIDECAR_CONFIG_EINVAL, "%s program %s is not executable: %s", what,
                           shown, strerror(errno));
    }
    return 0;
}

int config_check_election_programs(parser_t *p, const sidecar_election_list_t *list)
{
    char what[SIDECAR_NAME_MAX + 64];
    int rc = 0;
    for (size_t i = 0; i < list->n && rc == 0; i++) {
        const sidecar_election_config_t *e = &list->items[i];
        const struct {
            const char *key;
            const sidecar_argv_t *cmd;
        } cmds[] = {{"exec", &e->exec},
                    {"on-start", &e->on_start},
                    {"on-stop", &e->on_stop},
                    {"on-change", &e->on_change}};
        for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]) && rc == 0; k++) {
            snprintf(what, sizeof(what), "%s: election \"%s\": \"%s\"", p->file_label, e->name,
                     cmds[k].key);
            rc = check_program(p, what, cmds[k].cmd);
        }
    }
    return rc;
}

int config_check_fs(parser_t *p)
{
    sidecar_config_t *cfg = p->cfg;
    char shown[SHOW_MAX + 16];
    struct stat st;

    config_show_text(cfg->data_dir, shown, sizeof(shown));
    if (make_dirs(cfg->data_dir) != 0) {
        return config_fail(p, SIDECAR_CONFIG_EDATADIR, "cannot create --data-dir %s: %s", shown,
                           strerror(errno));
    }
    if (stat(cfg->data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return config_fail(p, SIDECAR_CONFIG_EDATADIR, "--data-dir %s is not a directory", shown);
    }
    if (access(cfg->data_dir, R_OK | W_OK | X_OK) != 0) {
        return config_fail(p, SIDECAR_CONFIG_EDATADIR, "--data-dir %s is not writable: %s", shown,
                           strerror(errno));
    }
    const char *tls_files[][2] = {{"peer-cert-file", cfg->peer_cert_file},
                                  {"peer-key-file", cfg->peer_key_file},
                                  {"peer-trusted-ca-file", cfg->peer_trusted_ca_file}};
    for (size_t i = 0; i < 3; i++) {
        if (tls_files[i][1] && access(tls_files[i][1], R_OK) != 0) {
            config_show_text(tls_files[i][1], shown, sizeof(shown));
            return config_fail(p, SIDECAR_CONFIG_EINVAL, "cannot read --%s %s: %s", tls_files[i][0],
                               shown, strerror(errno));
        }
    }
    return config_check_programs(p, cfg);
}

int config_check_programs(parser_t *p, const sidecar_config_t *cfg)
{
    int rc;
    if ((rc = check_program(p, "--exec", &cfg->exec)) != 0 ||
        (rc = check_program(p, "--on-start", &cfg->on_start)) != 0 ||
        (rc = check_program(p, "--on-stop", &cfg->on_stop)) != 0 ||
        (rc = check_program(p, "--on-change", &cfg->on_change)) != 0) {
        return rc;
    }
    return config_check_election_programs(p, &cfg->elections);
}

/* ---- the self-dial check (after the parse: it resolves names) ----------------------- */

/* An IPv4-mapped IPv6 address as plain IPv4, so that the two spellings compare equal. */
static void sockaddr_unmap(const struct sockaddr *sa, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET6 &&
        IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)out;
        v4->sin_family = AF_INET;
        memcpy(&v4->sin_addr, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr + 12, 4);
        return;
    }
    memcpy(out, sa,
           sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
}

static bool ip_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

static bool ip_unspecified(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

/* An address of this host: loopback, unspecified (connecting to it reaches this host), or
 * one of the interfaces' addresses. */
static bool ip_local(const struct sockaddr_storage *a)
{
    if (ip_unspecified(a))
        return true;
    if (a->ss_family == AF_INET &&
        (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127)
        return true;
    if (a->ss_family == AF_INET6 &&
        IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr))
        return true;
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0)
        return false;
    bool found = false;
    for (struct ifaddrs *i = ifs; i != NULL && !found; i = i->ifa_next) {
        if (i->ifa_addr == NULL ||
            (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
            continue;
        struct sockaddr_storage x;
        sockaddr_unmap(i->ifa_addr, &x);
        found = ip_equal(&x, a);
    }
    freeifaddrs(ifs);
    return found;
}

/* Would a connection to `to` reach a listener bound to `listen` (same port assumed)? */
static bool reaches_listener(const struct sockaddr_storage *listen,
                             const struct sockaddr_storage *to)
{
    if (ip_unspecified(to) || ip_equal(listen, to))
        return true; /* connecting to 0.0.0.0 or :: reaches this host */
    if (!ip_unspecified(listen))
        return false;
    /* 0.0.0.0 takes IPv4 only; :: takes both (libuv binds it dual-stack). */
    return (listen->ss_family == AF_INET6 || to->ss_family == AF_INET) && ip_local(to);
}

static struct addrinfo *resolve_tcp(const char *host, uint16_t port)
{
    char service[8];
    snprintf(service, sizeof(service), "%u", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    return getaddrinfo(host, service, &hints, &res) == 0 ? res : NULL;
}

int sidecar_config_check_self_dial(const sidecar_config_t *cfg, char *err, size_t errlen)
{
    struct addrinfo *mine = resolve_tcp(cfg->listen_peer.host, cfg->listen_peer.port);
    int rv = 0;
    for (size_t i = 0; i < cfg->n_peers && mine != NULL && rv == 0; i++) {
        const sidecar_peer_t *peer = &cfg->peers[i];
        if ((!cfg->join && i == cfg->self_index) || peer->port != cfg->listen_peer.port)
            continue;
        struct addrinfo *theirs = resolve_tcp(peer->host, peer->port);
        for (struct addrinfo *t = theirs; t != NULL && rv == 0; t = t->ai_next) {
            struct sockaddr_storage to, listen;
            sockaddr_unmap(t->ai_addr, &to);
            for (struct addrinfo *m = mine; m != NULL && rv == 0; m = m->ai_next) {
                sockaddr_unmap(m->ai_addr, &listen);
                if (!reaches_listener(&listen, &to))
                    continue;
                char ip[INET6_ADDRSTRLEN] = "?";
                inet_ntop(to.ss_family,
                          to.ss_family == AF_INET
                              ? (const void *)&((struct sockaddr_in *)&to)->sin_addr
                              : (const void *)&((struct sockaddr_in6 *)&to)->sin6_addr,
                          ip, sizeof(ip));
                snprintf(err, errlen,
                         "--peers: member \"%s\" at %s:%u resolves to %s, which is this node's "
                         "own peer listener (--listen-peer %s:%u); this node would dial itself. "
                         "Give each member its own address.",
                         peer->name, peer->host, peer->port, ip, cfg->listen_peer.host,
                         cfg->listen_peer.port);
                rv = SIDECAR_CONFIG_EINVAL;
            }
        }
        freeaddrinfo(theirs);
    }
    freeaddrinfo(mine);
    return rv;
}
