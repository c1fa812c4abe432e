/* config.h — electd's settings: command-line flags, ELECTD_* environment variables and an
 * optional JSON config file, resolved with the precedence flag > env > file > default.
 *
 * One table in settings.c is the single source of truth for every setting (name, type,
 * default, unit, help, limits): getopt_long's option list, the environment lookup, the JSON
 * key lookup, `electd --help` and validation are all driven from it. A setting named
 * "election-timeout" is the flag --election-timeout, the environment variable
 * ELECTD_ELECTION_TIMEOUT and the JSON key "election-timeout". Flag names are a public
 * interface (docs/configuration.md lists them all).
 *
 * The file also holds the named elections (its "elections" object: several workloads, each
 * with its own primary), which have no flag and no variable.
 *
 * On SIGHUP everything is resolved again (sidecar_config_reload): the named elections, the
 * log level and format, the hooks, their timeouts and the HTTP token then change while
 * electd runs; every other setting changes only at a restart.
 *
 * Everything invalid is refused by sidecar_config_parse() with exactly one line of text
 * naming the setting the way the user wrote it, e.g.
 *   electd: invalid --election-timeout "abc": expected a duration like 500ms, 2s or 1m
 */
#ifndef ELECTD_SIDECAR_CONFIG_H
#define ELECTD_SIDECAR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common.h"
#include "raft.h"

/* ---- limits (everything from outside is bounded) ----------------------------------- */

#define SIDECAR_CONFIG_MAX_PEERS       RAFT_MAX_MEMBERS /* entries in --peers */
#define SIDECAR_CONFIG_NAME_MAX        SIDECAR_NAME_MAX /* bytes of a node or cluster name */
#define SIDECAR_CONFIG_TOKEN_MAX       256              /* bytes of a token */
#define SIDECAR_CONFIG_VALUE_MAX       4096             /* bytes of any one value */
#define SIDECAR_CONFIG_ARGV_MAX        256              /* words of a workload/hook command */
#define SIDECAR_CONFIG_FILE_MAX        (1024 * 1024)    /* bytes of the --config file */
#define SIDECAR_CONFIG_ERR_MAX         512              /* a big enough error buffer */
#define SIDECAR_CONFIG_ENV_NAME_MAX    64               /* bytes of an ELECTD_* name + NUL */
#define SIDECAR_CONFIG_DEFAULT_TICK_MS 10
/* Named elections (the config file's "elections" object): how many, and how many names
 * one "prefer" or "avoid" list holds (a group has at most RAFT_MAX_MEMBERS members). */
#define SIDECAR_CONFIG_ELECTIONS_MAX      1024
#define SIDECAR_CONFIG_ELECTION_NODES_MAX RAFT_MAX_MEMBERS
/* The name of the election of --exec and the hooks; refused as a named election's name. */
#define SIDECAR_CONFIG_DEFAULT_ELECTION "default"

/* ---- errors ------------------------------------------------------------------------- */

#define SIDECAR_CONFIG_ERRNO_MAP(X)                                                                \
    X(INVAL, -1, "invalid configuration")                                                          \
    X(NOMEM, -2, "out of memory")                                                                  \
    X(FILE, -3, "config file unreadable or malformed")                                             \
    X(DATADIR, -4, "data directory missing or unusable")

enum {
#define SIDECAR_CONFIG_ERR_ENUM(name, code, text) SIDECAR_CONFIG_E##name = code,
    SIDECAR_CONFIG_ERRNO_MAP(SIDECAR_CONFIG_ERR_ENUM)
#undef SIDECAR_CONFIG_ERR_ENUM
};

/* Text for a SIDECAR_CONFIG_E* code (never NULL). */
const char *sidecar_config_strerror(int err);

/* ---- the parsed result -------------------------------------------------------------- */

/* A network address. host is owned, without IPv6 brackets; NULL when unset. */
typedef struct sidecar_addr {
    char *host;
    uint16_t port;
} sidecar_addr_t;

/* One member of the initial cluster from --peers. Strings owned by the config. */
typedef struct sidecar_peer {
    char *name;
    char *host; /* hostname, IPv4 or IPv6 (no brackets) */
    uint16_t port;
    uint64_t id; /* sidecar_config_node_id(name) */
} sidecar_peer_t;

/* A command run without a shell: argv[0] is the program, argv[argc] == NULL.
 * argc == 0 and argv == NULL when unset. */
typedef struct sidecar_argv {
    char **argv;
    size_t argc;
} sidecar_argv_t;

/* ---- named elections ------------------------------------------------------------------ */

typedef enum sidecar_election_mode {
    SIDECAR_ELECTION_EXEC = 1, /* supervised under the shim: exec */
    SIDECAR_ELECTION_HOOKS,    /* on_start and/or on_stop, and optionally on_change */
} sidecar_election_mode_t;

/* A member named by an election's "prefer" or "avoid" list. */
typedef struct sidecar_node_ref {
    char *name;  /* owned; a valid node name */
    uint64_t id; /* sidecar_config_node_id(name) */
    bool known;  /* named in --peers or this node's own --name. An unknown name is accepted
                    (members can be added later) and reported by
                    sidecar_config_elections_warn() */
} sidecar_node_ref_t;

typedef struct sidecar_node_refs {
    sidecar_node_ref_t *refs; /* NULL when n == 0 */
    size_t n;                 /* <= SIDECAR_CONFIG_ELECTION_NODES_MAX, names distinct */
} sidecar_node_refs_t;

/* One named election, as this member declares it. Everything owned by the list. */
typedef struct sidecar_election_config {
    char *name; /* valid node-name syntax, never SIDECAR_CONFIG_DEFAULT_ELECTION */
    sidecar_election_mode_t mode;
    sidecar_argv_t exec;        /* mode EXEC: set; the hooks are then unset */
    sidecar_argv_t on_start;    /* mode HOOKS: at least one of on_start and on_stop set; */
    sidecar_argv_t on_stop;     /* exec unset */
    sidecar_argv_t on_change;   /* mode HOOKS only */
    sidecar_node_refs_t prefer; /* no name is in both prefer and avoid */
    sidecar_node_refs_t avoid;
    uint32_t stop_timeout_ms; /* the global --stop-timeout etc. when the file leaves them out */
    uint32_t hook_timeout_ms;
    uint32_t max_restarts;
} sidecar_election_config_t;

typedef struct sidecar_election_list {
    sidecar_election_config_t *items; /* sorted by name (strcmp), names distinct */
    size_t n;                         /* <= SIDECAR_CONFIG_ELECTIONS_MAX */
} sidecar_election_list_t;

typedef enum sidecar_config_action {
    SIDECAR_CONFIG_RUN = 0, /* start the daemon with this configuration */
    SIDECAR_CONFIG_HELP,    /* --help: print sidecar_config_help() and exit 0 */
    SIDECAR_CONFIG_VERSION, /* --version: print sidecar_config_version() and exit 0 */
} sidecar_config_action_t;

/* Every string is owned (free with sidecar_config_free); times are integer milliseconds. */
typedef struct sidecar_config {
    sidecar_config_action_t action;

    char *name;            /* this node; always set when action == RUN */
    sidecar_peer_t *peers; /* the initial cluster; n_peers == 0 when --peers not given */
    size_t n_peers;
    size_t self_index;             /* peers[self_index].name == name, when n_peers > 0 and
                                      not joining */
    sidecar_addr_t listen_peer;    /* default: this node's address in --peers */
    sidecar_addr_t listen_http;    /* port 0 lets the OS pick (tests) */
    sidecar_addr_t advertise_http; /* default: listen_http */
    char *data_dir;
    char *restore; /* NULL unless --restore: a backup to seed a new group's empty data dir */
    char *cluster_name;
    char *cluster_token;  /* NULL when unset; a secret: main registers it with
                             sidecar_log_add_secret() so that no log line shows it */
    char *config_path;    /* NULL when no config file was used */
    char *peer_cert_file; /* peer TLS: the three files are all set, or none is */
    char *peer_key_file;
    char *peer_trusted_ca_file;
    bool peer_cert_check_name; /* a member's certificate must name it (default true) */
    bool insecure_peer;        /* allowed: an unauthenticated peer port reachable from
                                  other hosts (sidecar_config_peer_insecure) */

    uint32_t heartbeat_interval_ms;
    uint32_t election_timeout_ms;
    uint32_t tick_ms;
    double max_drift;       /* fraction in [0, 0.5) */
    uint32_t max_drift_ppm; /* the same, in parts per million (raft_config_t's unit) */
    uint32_t stop_timeout_ms;
    uint32_t hook_timeout_ms;
    uint32_t max_restarts;
    uint32_t restart_window_ms;

    sidecar_argv_t exec; /* supervise mode: the workload command */
    sidecar_argv_t on_start;
    sidecar_argv_t on_stop;
    sidecar_argv_t on_change;
    bool witness;
    bool join;         /* a new member: do not bootstrap from --peers */
    uint32_t priority; /* 0..255: the highest caught-up one leads (0: only when nobody else
                          can); --no-primary is priority 0, and no_primary == (priority == 0) */
    bool preempt;      /* take leadership over from a leader of lower priority */
    bool no_primary;   /* hold no named election unless no other eligible member can */
    bool rebalance;    /* move healthy named elections to even out their spread */
    sidecar_election_list_t elections; /* the config file's "elections"; n == 0 without */

    sidecar_log_level_t log_level;
    sidecar_log_format_t log_format;

    char *http_token; /* NULL when unset; a secret, like cluster_token */
    bool forward;
    /* HTTPS: both set or neither (checked); the CA makes client certificates required. */
    char *http_cert_file;
    char *http_key_file;
    char *http_trusted_ca_file; /* NULL: no client certificate asked for */
    bool insecure_http;         /* a non-loopback API open to anyone is allowed (warned) */
    uint32_t http_max_connections;
    uint32_t http_max_header_bytes;
    uint32_t http_max_body_bytes;
    uint32_t http_idle_timeout_ms;
    uint32_t http_header_timeout_ms;
    uint32_t snapshot_entries;
    uint32_t watch_history; /* KV changes kept for watches (store_opts_t.history_max) */
    uint32_t max_watchers;  /* KV watch streams and long polls at once */
} sidecar_config_t;

/* ---- parsing ------------------------------------------------------------------------ */

/* Looks up an environment variable; returns NULL when unset. The result is borrowed and
 * must stay valid until sidecar_config_parse returns. */
typedef const char *(*sidecar_config_getenv_cb)(const char *name, void *ud);

/* getenv() over the process environment (ud unused): what main() passes. */
const char *sidecar_config_getenv_process(const char *name, void *ud);
/* Lookup in a NULL-terminated array of "NAME=value" strings passed as ud (tests). */
const char *sidecar_config_getenv_array(const char *name, void *ud);

typedef struct sidecar_config_source {
    int argc;
    char *const *argv;                  /* argv[0] is the program name; not modified */
    sidecar_config_getenv_cb getenv_cb; /* NULL: no environment */
    void *getenv_ud;
    /* Non-NULL: the config file's contents, used instead of reading the file that --config
     * (or ELECTD_CONFIG) names; file_len bytes, need not be NUL-terminated. */
    const char *file_text;
    size_t file_len;
    /* Do not touch the filesystem: --data-dir is neither created nor checked and hook
     * programs are not checked (fuzzing). main() leaves this false. */
    bool skip_fs;
} sidecar_config_source_t;

/* Resolves every setting from src into *cfg (which the caller provides; its previous
 * contents are ignored) and validates the result.
 * Returns 0 on success: cfg->action says whether to run or to print help/version (in those
 * two cases nothing else was parsed or validated). On failure returns a negative
 * SIDECAR_CONFIG_E* code, writes one line (no trailing newline, starting with "electd: ")
 * into err[err_size] naming the offending setting, and leaves *cfg freed and zeroed.
 * Not thread-safe (getopt_long keeps global state). Secrets are never echoed in err. */
int sidecar_config_parse(sidecar_config_t *cfg, const sidecar_config_source_t *src, char *err,
                         size_t err_size);

/* Frees everything cfg owns and zeroes it. Safe on a zeroed or already freed config. */
void sidecar_config_free(sidecar_config_t *cfg);

/* ---- named elections: reload and lookups -------------------------------------------- */

/* Re-reads the named elections from cfg->config_path into *out (which the caller provides;
 * its previous contents are ignored), with the rules of sidecar_config_parse: the file must
 * be valid as a whole (JSON, known keys, each setting's value well-formed), each election
 * valid against the running cfg (its global --stop-timeout, --hook-timeout and
 * --max-restarts fill what an election leaves out; its stop timeout fits cfg's lease;
 * prefer/avoid names are marked known against cfg's --peers and --name) and its programs
 * executable. Settings other than "elections" are checked but not returned: they change
 * only at a restart. cfg is not modified.
 * Returns 0, or a negative SIDECAR_CONFIG_E* code with one line in err (as
 * sidecar_config_parse) and *out empty: the caller keeps its running set. Reads the file
 * (blocking I/O). Free *out with sidecar_config_elections_free. */
int sidecar_config_elections_reload(const sidecar_config_t *cfg, sidecar_election_list_t *out,
                                    char *err, size_t errlen);

/* Frees everything list owns and zeroes it. Safe on a zeroed or already freed list. */
void sidecar_config_elections_free(sidecar_election_list_t *list);

/* The election called name in list, or NULL (binary search: the list is sorted). */
const sidecar_election_config_t *sidecar_config_election_find(const sidecar_election_list_t *list,
                                                              const char *name);

/* Logs a warning for each prefer/avoid name of list that is not a known member (a typo, or
 * a member not added yet); returns how many. */
size_t sidecar_config_elections_warn(const sidecar_election_list_t *list);

/* ---- reload (SIGHUP) ------------------------------------------------------------------ */

/* Bit i of a mask below stands for row i of the settings table (sidecar_config_setting_at). */
typedef uint64_t sidecar_config_mask_t;

/* What re-reading the configuration found, against the running one. */
typedef struct sidecar_config_reload {
    /* The settings resolved again from the same command line and environment and the file
     * as it is now (flag > env > file > default), with the named elections parsed against
     * the running settings as the reload leaves them. Owned: free with
     * sidecar_config_reload_free. */
    sidecar_config_t next;
    /* Settings a reload changes that differ: log-level, log-format, on-start, on-stop,
     * on-change, hook-timeout, stop-timeout, http-token (the hooks only while the node's
     * mode — supervise, hooks, witness or none — stays the same). */
    sidecar_config_mask_t changed;
    /* Settings that differ but change only at a restart: not applied. */
    sidecar_config_mask_t restart;
    /* Settings a flag or an ELECTD_* variable gives while the file says otherwise: the flag or
     * variable keeps winning. */
    sidecar_config_mask_t kept;
} sidecar_config_reload_t;

/* Resolves the configuration again from src (the command line and environment electd was
 * started with; the file that --config or ELECTD_CONFIG names is read again) into *out, and
 * compares it with running. Everything is checked before anything could be applied, as at
 * start: the file as a whole (JSON, known keys, every value well-formed, even one a flag
 * overrides), the settings against each other, the changed ones against the running ones
 * (the stop timeout inside the running lease, a reachable API keeps its authentication),
 * the named elections, and the programs of every command (executable). Nothing is created
 * on disk. running is not modified.
 * Returns 0, or a negative SIDECAR_CONFIG_E* code with one line in err (as
 * sidecar_config_parse) and *out empty. Reads the file (blocking I/O). Not thread-safe. */
int sidecar_config_reload(const sidecar_config_t *running, const sidecar_config_source_t *src,
                          sidecar_config_reload_t *out, char *err, size_t errlen);

/* Applies r->changed to running: each changed setting's value is exchanged with r->next's,
 * so that r->next then holds the replaced values (released by sidecar_config_reload_free;
 * the caller makes sure nothing still points into them). The elections are not touched. */
void sidecar_config_reload_apply(sidecar_config_t *running, sidecar_config_reload_t *r);

/* Frees what r owns and zeroes it. Safe on a zeroed or already freed result. */
void sidecar_config_reload_free(sidecar_config_reload_t *r);

/* The bit of the setting called name ("http-token"); 0 for a name that is none. */
sidecar_config_mask_t sidecar_config_mask_of(const char *name);

/* Writes the names of mask's settings, ", "-separated ("log-level, on-start"), or "none",
 * into buf (cut to fit). */
void sidecar_config_mask_names(sidecar_config_mask_t mask, char *buf, size_t size);

/* ---- derived values ----------------------------------------------------------------- */

/* The lease a leader may claim, in ms: the same rule as raft_lease_ticks(),
 * floor(E × (1 − d)/(1 + d)) − 2 ticks with E = election_timeout in ticks and d = max_drift
 * (ppm), times tick_ms. 0 when that is not positive (parse refuses such configurations). */
uint32_t sidecar_config_lease_ms(const sidecar_config_t *cfg);

/* Parses "host:port" or "[v6]:port" the way --peers and --listen-* are parsed: a host of
 * letters, digits, '.' and '-' or a bracketed IPv6 literal, a port from 1 to 65535. host gets
 * the host without brackets. Returns 0 or SIDECAR_CONFIG_EINVAL. sidecar_parse_hostport()
 * (common.h) with config's error code, for the parts that call it. */
int sidecar_config_hostport_parse(const char *text, char *host, size_t host_size, uint16_t *port);

/* Peer TLS is on: --peer-cert-file, --peer-key-file and --peer-trusted-ca-file are set (the
 * parse refuses one or two of them). */
bool sidecar_config_peer_tls(const sidecar_config_t *cfg);

/* true when --listen-peer is reachable from other hosts (not 127.0.0.0/8, ::1 or
 * "localhost"; a wildcard or a host name counts as reachable) and neither peer TLS nor
 * --cluster-token authenticates members: the parse refuses that unless --insecure-peer is
 * given, so this is electd running under --insecure-peer (main warns every minute and
 * /v1/status reports "insecure_peer": true). */
bool sidecar_config_peer_insecure(const sidecar_config_t *cfg);

/* Refuses (SIDECAR_CONFIG_EINVAL, message in err) a configuration in which another member of
 * --peers resolves to this node's own peer listener: the same port and the same IP, or a
 * wildcard --listen-peer and an address of this host (loopback, an interface's address, or
 * 0.0.0.0 / ::). Names are resolved (the system resolver, which may block); a name that does
 * not resolve yet is not an error. Separate from sidecar_config_parse, which does no I/O. */
int sidecar_config_check_self_dial(const sidecar_config_t *cfg, char *err, size_t errlen);

/* A valid node name: 1..SIDECAR_CONFIG_NAME_MAX letters, digits, '.', '_' or '-', starting
 * with a letter or a digit. The same as sidecar_parse_name_valid() (common.h). */
bool sidecar_config_name_valid(const char *name);

/* A node's Raft id: 64-bit FNV-1a over its name, never 0. */
uint64_t sidecar_config_node_id(const char *name);

/* The cluster id: 64-bit FNV-1a over a canonical string of the cluster name and the
 * initial cluster ("electd-cluster-v1\n<cluster-name>\n" then, sorted by name, one
 * "<name>=<host lower-cased>:<port>\n" per peer), never 0. Independent of the order in
 * which --peers lists the members. Returns 0 when cfg has no peers (unknown). */
uint64_t sidecar_config_cluster_id(const sidecar_config_t *cfg);

/* true when host is an IP literal of the loopback networks (127.0.0.0/8, ::1): a listener
 * there is reachable from this host only. Names (even "localhost") and wildcards are not. */
bool sidecar_config_host_loopback(const char *host);

/* Formats addr as "host:port" or "[v6]:port" into buf; returns the length, or a negative
 * SIDECAR_CONFIG_EINVAL when it does not fit or addr is unset. */
int sidecar_config_addr_format(const sidecar_addr_t *addr, char *buf, size_t size);

/* Writes the effective value of settings row i into buf in the syntax a flag would take
 * ("1s", "8KiB", "a=h:1,b=h:2", "/bin/w -v"); a secret as "(set)" or "(unset)", any other
 * unset value as "". Returns the length; SIDECAR_CONFIG_EINVAL for --help and --version, or
 * when the value does not fit (buf then holds a cut, terminated value). */
int sidecar_config_value_format(const sidecar_config_t *cfg, size_t i, char *buf, size_t size);

/* Logs the effective configuration at info level: one line "configuration" with one field
 * per setting, named like the flag. Secrets appear only as "(set)". */
void sidecar_config_log_effective(const sidecar_config_t *cfg);

/* ---- help and the settings table ----------------------------------------------------- */

/* Public view of one row of the settings table. */
typedef struct sidecar_config_setting {
    const char *name; /* the flag without "--", and the JSON key */
    const char *unit; /* the value's placeholder in --help ("DURATION", "HOST:PORT"); NULL
                         for flags that take no value */
    const char *def;  /* default as a user would write it; NULL when none */
    const char *help; /* one line, including how a missing default is derived */
    bool env;         /* settable through ELECTD_<NAME> */
    bool file;        /* settable in the JSON config file */
    bool secret;      /* never printed: only "(set)" or "(unset)" */
} sidecar_config_setting_t;

size_t sidecar_config_setting_count(void);
/* Row i (< sidecar_config_setting_count()); borrowed static data. */
const sidecar_config_setting_t *sidecar_config_setting_at(size_t i);
/* The values row i (< sidecar_config_setting_count()) accepts when it takes one of a fixed
 * set ("debug", "info", ...), NULL-terminated; for a boolean {"true", "false"}; else NULL.
 * Borrowed static data. What the man page and shell completion offer. */
const char *const *sidecar_config_setting_choices(size_t i);
/* Writes the environment variable name of a setting ("ELECTD_ELECTION_TIMEOUT") into buf;
 * returns 0, or SIDECAR_CONFIG_EINVAL when it does not fit. */
int sidecar_config_env_name(const char *setting, char *buf, size_t size);

/* Writes the `electd --help` text to out: usage, the precedence rule, and every setting
 * with its placeholder, default, environment variable and help. Never prints a secret. */
void sidecar_config_help(FILE *out);

/* "electd <version>" (static string). */
const char *sidecar_config_version(void);

#endif
