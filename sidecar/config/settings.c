/* settings.c — the table that defines every setting of electd (name, type, default, unit,
 * range, help) and its lookups. It is the single source of truth: getopt_long's options, the
 * environment and JSON key lookups, validation and `electd --help` are all driven from it. */
#include <string.h>

#include "check.h"
#include "config_int.h"

#ifndef ELECTD_VERSION
#define ELECTD_VERSION "0.0.0"
#endif

/* Indexes are the enum values of sidecar_log_level_t / sidecar_log_format_t. */
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_formats[] = {"text", "json", NULL};

#define OFF(field) offsetof(sidecar_config_t, field)
#define ROW(name_, type_, unit_, def_, field_off, min_, max_, flags_, help_)                       \
    {                                                                                              \
        .pub = {.name = (name_),                                                                   \
                .unit = (unit_),                                                                   \
                .def = (def_),                                                                     \
                .help = (help_),                                                                   \
                .env = !((flags_)&F_NO_ENV),                                                       \
                .file = !((flags_)&F_NO_FILE),                                                     \
                .secret = ((flags_)&F_SECRET) != 0},                                               \
        .type = (type_), .flags = (flags_), .offset = (field_off), .min = (min_), .max = (max_)    \
    }
#define KIB  1024u
#define MIB  (1024u * 1024u)
#define SEC  1000u
#define HOUR (3600u * 1000u)

/* The single source of truth. Order is the order of --help. Ranges are what the code
 * handles safely; docs/configuration.md explains each default. */
const setting_t config_settings[] = {
    ROW("name", T_NAME, "NAME", NULL, OFF(name), 0, 0, F_REQUIRED,
        "this node's name (letters, digits, '.', '_', '-'); must be one of the names in "
        "--peers"),
    ROW("peers", T_PEERS, "NAME=HOST:PORT,...", NULL, OFF(peers), 0, 0, 0,
        "the initial cluster, this node included; needed at the first start"),
    ROW("listen-peer", T_ADDR, "HOST:PORT", NULL, OFF(listen_peer), 0, 0, 0,
        "address to accept peer connections on (default: this node's address in --peers)"),
    ROW("listen-http", T_ADDR, "HOST:PORT", "127.0.0.1:7480", OFF(listen_http), 0, 0, F_PORT0,
        "address of the HTTP API (port 0: any free port)"),
    ROW("advertise-http", T_ADDR, "HOST:PORT", NULL, OFF(advertise_http), 0, 0, 0,
        "HTTP address other members hand to clients in redirects and 421 replies "
        "(default: --listen-http)"),
    ROW("data-dir", T_PATH, "DIR", NULL, OFF(data_dir), 0, 0, F_REQUIRED,
        "directory of the node's database; created if missing"),
    ROW("cluster-name", T_NAME, "NAME", "electd", OFF(cluster_name), 0, 0, 0,
        "mixed with the initial cluster into the cluster id, so distinct clusters never merge"),
    ROW("cluster-token", T_TOKEN, "TOKEN", NULL, OFF(cluster_token), 0, 0, F_SECRET,
        "shared secret that members present to each other (never printed); needed, or peer "
        "TLS, when other hosts can reach --listen-peer"),
    ROW("peer-cert-file", T_PATH, "FILE", NULL, OFF(peer_cert_file), 0, 0, 0,
        "peer TLS: this member's certificate chain (PEM, leaf first); its CN or a SAN must be "
        "this member's --name, with extendedKeyUsage serverAuth and clientAuth. Peer TLS "
        "(mutual, TLS 1.3) needs --peer-key-file and --peer-trusted-ca-file too; re-read on "
        "SIGHUP"),
    ROW("peer-key-file", T_PATH, "FILE", NULL, OFF(peer_key_file), 0, 0, 0,
        "peer TLS: the private key of --peer-cert-file (PEM, not encrypted)"),
    ROW("peer-trusted-ca-file", T_PATH, "FILE", NULL, OFF(peer_trusted_ca_file), 0, 0, 0,
        "peer TLS: the CA certificates (PEM bundle) a member's certificate must chain to"),
    ROW("peer-cert-check-name", T_BOOL, "BOOL", "true", OFF(peer_cert_check_name), 0, 0, 0,
        "peer TLS: a member's certificate must name it (CN or a DNS SAN equal to its name in "
        "--peers), so that a certificate for b cannot claim to be c"),
    ROW("insecure-peer", T_BOOL, "BOOL", "false", OFF(insecure_peer), 0, 0, 0,
        "allow a peer listener reachable from other hosts (not 127.0.0.0/8 or ::1) with "
        "neither peer TLS nor --cluster-token; warned about every minute"),
    ROW("heartbeat-interval", T_DURATION, "DURATION", "150ms", OFF(heartbeat_interval_ms), 1,
        60 * SEC, 0, "how often the leader contacts each member"),
    ROW("election-timeout", T_DURATION, "DURATION", "1000ms", OFF(election_timeout_ms), 1, 60 * SEC,
        0,
        "silence after which a member stands for election (minimum; followers then stand in turn)"),
    ROW("tick", T_DURATION, "DURATION", "10ms", OFF(tick_ms), 1, SEC, 0,
        "resolution of the Raft clock; heartbeat and election timeout are multiples of it"),
    ROW("max-drift", T_FRACTION, "FRACTION", "0.05", OFF(max_drift), 0, 500000, 0,
        "bound on how much the clock rates of two members differ, in [0, 0.5); shortens the "
        "lease"),
    ROW("stop-timeout", T_DURATION, "DURATION", "500ms", OFF(stop_timeout_ms), 1, 60 * SEC, 0,
        "time between SIGTERM and SIGKILL of the workload; must be shorter than the lease"),
    ROW("hook-timeout", T_DURATION, "DURATION", "30s", OFF(hook_timeout_ms), 1, HOUR, 0,
        "time limit of one hook run"),
    ROW("max-restarts", T_COUNT, "N", "5", OFF(max_restarts), 0, 1000, 0,
        "workload restarts within --restart-window before leadership is handed on"),
    ROW("restart-window", T_DURATION, "DURATION", "60s", OFF(restart_window_ms), 1, 24 * HOUR, 0,
        "window in which --max-restarts counts"),
    ROW("exec", T_ARGV, "-- CMD [ARGS...]", NULL, OFF(exec), 0, 0, F_TAIL,
        "supervise mode: the workload command after a literal -- (or --exec=CMD, split on "
        "spaces; env and file: a JSON array, or a string split on spaces)"),
    ROW("on-start", T_ARGV, "CMD", NULL, OFF(on_start), 0, 0, 0,
        "hook mode: command run when this node becomes primary (split on spaces, no shell)"),
    ROW("on-stop", T_ARGV, "CMD", NULL, OFF(on_stop), 0, 0, 0,
        "hook mode: command run when this node must stop being primary"),
    ROW("on-change", T_ARGV, "CMD", NULL, OFF(on_change), 0, 0, 0,
        "command run on every role or leader change (notification only)"),
    ROW("witness", T_BOOL, "BOOL", "false", OFF(witness), 0, 0, 0,
        "vote and keep the log but never run the workload nor stay leader"),
    ROW("join", T_BOOL, "BOOL", "false", OFF(join), 0, 0, 0,
        "join an existing cluster (--peers names its initial members, not this node): wait "
        "to be added with POST /v1/members"),
    ROW("priority", T_COUNT, "N", "100", OFF(priority), 0, 255, 0,
        "0-255: the caught-up member of the highest priority leads and runs the workload (it "
        "stands first in elections and, with --preempt, takes over by graceful handover); 0: "
        "never primary while another member can be"),
    ROW("preempt", T_BOOL, "BOOL", "true", OFF(preempt), 0, 0, 0,
        "this member takes leadership over from a leader of lower priority once it has been "
        "connected and caught up for 4 election timeouts (false: only when that leader fails)"),
    ROW("no-primary", T_BOOL, "BOOL", "false", OFF(no_primary), 0, 0, 0,
        "the same as --priority 0: primary of neither the default election nor a named one "
        "unless no other eligible member can be (a standby)"),
    ROW("rebalance", T_BOOL, "BOOL", "true", OFF(rebalance), 0, 0, 0,
        "move healthy named elections, one at a time by graceful handover, to even out how "
        "many each member holds (false: move only those whose holder is gone)"),
    ROW("log-level", T_ENUM, "LEVEL", "info", OFF(log_level), 0, 0, 0,
        "least severe level logged: debug, info, warn or error"),
    ROW("log-format", T_ENUM, "FORMAT", "text", OFF(log_format), 0, 0, 0,
        "log line format: text or json"),
    ROW("http-token", T_TOKEN, "TOKEN", NULL, OFF(http_token), 0, 0, F_SECRET,
        "bearer token required by mutating HTTP endpoints (optional; never printed)"),
    ROW("forward", T_BOOL, "BOOL", "false", OFF(forward), 0, 0, 0,
        "followers forward KV writes to the leader instead of answering 421"),
    ROW("http-cert-file", T_PATH, "FILE", NULL, OFF(http_cert_file), 0, 0, 0,
        "PEM certificate chain of the HTTP API: serve HTTPS (with --http-key-file)"),
    ROW("http-key-file", T_PATH, "FILE", NULL, OFF(http_key_file), 0, 0, 0,
        "PEM private key of --http-cert-file"),
    ROW("http-trusted-ca-file", T_PATH, "FILE", NULL, OFF(http_trusted_ca_file), 0, 0, 0,
        "PEM CA bundle: HTTPS clients must present a certificate it signed (optional)"),
    ROW("insecure-http", T_BOOL, "BOOL", "false", OFF(insecure_http), 0, 0, 0,
        "allow a non-loopback --listen-http whose mutating endpoints need neither --http-token "
        "nor a client certificate (warned about every minute)"),
    ROW("http-max-connections", T_COUNT, "N", "1024", OFF(http_max_connections), 1, 65536, 0,
        "open HTTP connections at most"),
    ROW("http-max-header-bytes", T_SIZE, "SIZE", "8KiB", OFF(http_max_header_bytes), KIB, MIB, 0,
        "bytes of an HTTP request's headers at most (431 beyond)"),
    ROW("http-max-body-bytes", T_SIZE, "SIZE", "1MiB", OFF(http_max_body_bytes), 1, RAFT_ENTRY_MAX,
        0, "bytes of an HTTP request body at most (413 beyond)"),
    ROW("http-idle-timeout", T_DURATION, "DURATION", "60s", OFF(http_idle_timeout_ms), 1, 24 * HOUR,
        0, "an HTTP connection idle this long is closed"),
    ROW("http-header-timeout", T_DURATION, "DURATION", "10s", OFF(http_header_timeout_ms), 1, HOUR,
        0,
        "an HTTP request whose headers are not all in this long after its first byte (or "
        "after connect) gets 408 and is closed"),
    ROW("snapshot-entries", T_COUNT, "N", "4096", OFF(snapshot_entries), 1, 1u << 30, 0,
        "applied log entries kept before the log is compacted into a snapshot"),
    ROW("watch-history", T_COUNT, "N", "10000", OFF(watch_history), 1, 100000000, 0,
        "KV changes (puts and deletes, values included) this member keeps for watches that "
        "resume from a revision; a watch from an older one gets 410 compacted"),
    ROW("max-watchers", T_COUNT, "N", "1024", OFF(max_watchers), 1, 65536, 0,
        "KV watch streams and long polls open at once on this member (503 beyond)"),
    ROW("restore", T_PATH, "FILE", NULL, OFF(restore), 0, 0, 0,
        "first start of a new group: seed the empty --data-dir from this backup (electd backup "
        "FILE), tokens and revisions carried on; give every initial member the same file; "
        "ignored once the data directory holds state"),
    ROW("config", T_META, "FILE", NULL, 0, 0, 0, F_NO_FILE,
        "JSON file of settings; keys are the flag names"),
    ROW("help", T_META, NULL, NULL, 0, 0, 0, F_NO_ENV | F_NO_FILE, "print this help and exit"),
    ROW("version", T_META, NULL, NULL, 0, 0, 0, F_NO_ENV | F_NO_FILE, "print the version and exit"),
};

_Static_assert(sizeof(config_settings) / sizeof(config_settings[0]) == N_SETTINGS,
               "N_SETTINGS (config_int.h) counts the rows");

/* set_enum stores the choice's index through an int. */
_Static_assert(sizeof(sidecar_log_level_t) == sizeof(int), "enum size");
_Static_assert(sizeof(sidecar_log_format_t) == sizeof(int), "enum size");

const char *const *config_choices_of(const setting_t *s)
{
    if (s->offset == OFF(log_level)) {
        return log_levels;
    }
    if (s->offset == OFF(log_format)) {
        return log_formats;
    }
    return s->choices;
}

const setting_t *config_find_setting(const char *name, size_t *index)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (strcmp(config_settings[i].pub.name, name) == 0) {
            if (index) {
                *index = i;
            }
            return &config_settings[i];
        }
    }
    return NULL;
}

size_t sidecar_config_setting_count(void)
{
    return N_SETTINGS;
}

const sidecar_config_setting_t *sidecar_config_setting_at(size_t i)
{
    ELECTD_CHECK(i < N_SETTINGS);
    return &config_settings[i].pub;
}

const char *const *sidecar_config_setting_choices(size_t i)
{
    static const char *const bools[] = {"true", "false", NULL};
    ELECTD_CHECK(i < N_SETTINGS);
    if (config_settings[i].type == T_BOOL) {
        return bools;
    }
    return config_settings[i].type == T_ENUM ? config_choices_of(&config_settings[i]) : NULL;
}

int sidecar_config_env_name(const char *setting, char *buf, size_t size)
{
    size_t n = strlen("ELECTD_") + strlen(setting);
    if (n + 1 > size) {
        return SIDECAR_CONFIG_EINVAL;
    }
    memcpy(buf, "ELECTD_", 7);
    for (size_t i = 0; setting[i]; i++) {
        char c = setting[i];
        buf[7 + i] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    buf[n] = '\0';
    return 0;
}

const char *sidecar_config_strerror(int err)
{
    switch (err) {
#define SIDECAR_CONFIG_ERR_CASE(name, code, text)                                                  \
    case code:                                                                                     \
        return text;
        SIDECAR_CONFIG_ERRNO_MAP(SIDECAR_CONFIG_ERR_CASE)
#undef SIDECAR_CONFIG_ERR_CASE
    case 0:
        return "success";
    }
    return "unknown error";
}

const char *sidecar_config_version(void)
{
    return "electd " ELECTD_VERSION;
}
