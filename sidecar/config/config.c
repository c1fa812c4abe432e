/* config.c — electd's settings: the table that defines them, and the parser that resolves
 * flags, ELECTD_* environment variables, the JSON config file and defaults from it.
 *
 * Resolution happens in passes: (1) getopt_long collects flag values (borrowed pointers into
 * argv) and the workload command after `--`; (2) the config file is read and every key is
 * matched against the table, so unknown keys are refused even when a flag overrides them;
 * (3) each setting takes the first of flag, env, file, default and is parsed by its type;
 * (4) settings are checked against each other; (5) the data directory is created/checked.
 * Every failure stops at the first problem with one line naming the setting.
 */
#include "config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef ELECTD_VERSION
#define ELECTD_VERSION "0.0.0"
#endif

#define SHOW_MAX 64   /* bytes of a value quoted back in an error message */
#define WHY_MAX  256  /* bytes of the explanation part of an error */
#define OPT_BASE 1000 /* getopt_long val of table row 0; above every short option */
#define PPM_ONE  1000000u

/* ---- the table ---------------------------------------------------------------------- */

typedef enum type {
    T_META,     /* --config, --help, --version: handled before the other settings */
    T_NAME,     /* node or cluster name */
    T_TOKEN,    /* secret: visible ASCII, never echoed */
    T_PATH,     /* non-empty path */
    T_ADDR,     /* host:port */
    T_PEERS,    /* name=host:port,... */
    T_DURATION, /* "500ms", "2s", "100" (= ms) -> uint32_t ms */
    T_COUNT,    /* whole number -> uint32_t */
    T_SIZE,     /* "8KiB", "1MiB", "512" (= bytes) -> uint32_t bytes */
    T_FRACTION, /* "0.05" -> double (+ ppm) */
    T_BOOL,     /* true/false/1/0 -> bool */
    T_ENUM,     /* one of choices -> int */
    T_ARGV,     /* command without a shell -> sidecar_argv_t */
} type_t;

enum {
    F_REQUIRED = 1 << 0,
    F_SECRET = 1 << 1,  /* never echoed in messages, never shown as a default */
    F_NO_ENV = 1 << 2,  /* not read from the environment */
    F_NO_FILE = 1 << 3, /* not accepted in the config file */
    F_TAIL = 1 << 4,    /* as a flag, takes the command after `--` (--exec) */
    F_PORT0 = 1 << 5,   /* port 0 allowed (the OS picks one) */
};

typedef struct setting {
    sidecar_config_setting_t pub;
    type_t type;
    unsigned flags;
    size_t offset;              /* of the destination in sidecar_config_t */
    uint32_t min, max;          /* DURATION ms, COUNT, SIZE bytes: inclusive;
                                   FRACTION: ppm, max exclusive */
    const char *const *choices; /* ENUM: NULL-terminated, index = stored value */
} setting_t;

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
static const setting_t settings[] = {
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
        "shared secret that members present to each other (optional, but without it anyone who "
        "can reach the peer port can disrupt the group; never printed)"),
    ROW("heartbeat-interval", T_DURATION, "DURATION", "100ms", OFF(heartbeat_interval_ms), 1,
        60 * SEC, 0, "how often the leader contacts each member"),
    ROW("election-timeout", T_DURATION, "DURATION", "1000ms", OFF(election_timeout_ms), 1, 60 * SEC,
        0, "silence after which a member stands for election (minimum; randomized up to 2x)"),
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
    ROW("log-level", T_ENUM, "LEVEL", "info", OFF(log_level), 0, 0, 0,
        "least severe level logged: debug, info, warn or error"),
    ROW("log-format", T_ENUM, "FORMAT", "text", OFF(log_format), 0, 0, 0,
        "log line format: text or json"),
    ROW("http-token", T_TOKEN, "TOKEN", NULL, OFF(http_token), 0, 0, F_SECRET,
        "bearer token required by mutating HTTP endpoints (optional; never printed)"),
    ROW("forward", T_BOOL, "BOOL", "false", OFF(forward), 0, 0, 0,
        "followers forward KV writes to the leader instead of answering 421"),
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
    ROW("config", T_META, "FILE", NULL, 0, 0, 0, F_NO_FILE,
        "JSON file of settings; keys are the flag names"),
    ROW("help", T_META, NULL, NULL, 0, 0, 0, F_NO_ENV | F_NO_FILE, "print this help and exit"),
    ROW("version", T_META, NULL, NULL, 0, 0, 0, F_NO_ENV | F_NO_FILE, "print the version and exit"),
};

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

/* set_enum stores the choice's index through an int. */
_Static_assert(sizeof(sidecar_log_level_t) == sizeof(int), "enum size");
_Static_assert(sizeof(sidecar_log_format_t) == sizeof(int), "enum size");

static const char *const *choices_of(const setting_t *s)
{
    if (s->offset == OFF(log_level)) {
        return log_levels;
    }
    if (s->offset == OFF(log_format)) {
        return log_formats;
    }
    return s->choices;
}

static const setting_t *find_setting(const char *name, size_t *index)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (strcmp(settings[i].pub.name, name) == 0) {
            if (index) {
                *index = i;
            }
            return &settings[i];
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
    assert(i < N_SETTINGS);
    return &settings[i].pub;
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

/* ---- the parser's state and its error messages --------------------------------------- */

typedef enum origin { O_NONE = 0, O_FLAG, O_ENV, O_FILE, O_DEFAULT } origin_t;

/* Where one setting's value came from. text: flag (NULL for a bare flag), env or default;
 * json: the config file's node. Both borrowed. */
typedef struct value {
    origin_t origin;
    const char *text;
    const cJSON *json;
} value_t;

typedef struct parser {
    sidecar_config_t *cfg;
    const sidecar_config_source_t *src;
    char *err;
    size_t err_size;
    value_t flag[N_SETTINGS];
    const cJSON *file[N_SETTINGS];
    origin_t origin[N_SETTINGS]; /* the source each setting was finally taken from */
    char *const *tail;           /* the command after `--` */
    size_t n_tail;
    bool dashdash;
    const char *file_label; /* the config file's name, for messages */
    char *file_buf;
    cJSON *root;
} parser_t;

static int fail(parser_t *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(parser_t *p, int code, const char *fmt, ...)
{
    va_list ap;
    if (p->err == NULL || p->err_size == 0) {
        return code;
    }
    int n = snprintf(p->err, p->err_size, "electd: ");
    if (n > 0 && (size_t)n < p->err_size) {
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->err_size - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Quotes s for a message: escapes what is not printable ASCII, cuts long values. */
static void show_text(const char *s, char *buf, size_t size)
{
    size_t o = 0;
    assert(size >= 16);
    buf[o++] = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (o + 8 >= size || (size_t)((const char *)c - s) >= SHOW_MAX) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (*c == '"' || *c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)*c;
        } else if (*c < 0x20 || *c >= 0x7f) {
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", *c);
        } else {
            buf[o++] = (char)*c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

static const char *json_type_name(const cJSON *j)
{
    if (cJSON_IsBool(j)) {
        return "a boolean";
    } else if (cJSON_IsNumber(j)) {
        return "a number";
    } else if (cJSON_IsString(j)) {
        return "a string";
    } else if (cJSON_IsArray(j)) {
        return "an array";
    } else if (cJSON_IsObject(j)) {
        return "an object";
    } else if (cJSON_IsNull(j)) {
        return "null";
    }
    return "an invalid value";
}

static void show_value(const setting_t *s, const value_t *v, char *buf, size_t size)
{
    if (s->flags & F_SECRET) {
        snprintf(buf, size, "(value hidden)");
    } else if (v->origin == O_FILE && !cJSON_IsString(v->json)) {
        if (cJSON_IsNumber(v->json)) {
            snprintf(buf, size, "%.17g", v->json->valuedouble);
        } else {
            snprintf(buf, size, "(%s)", json_type_name(v->json));
        }
    } else if (v->origin == O_FILE) {
        show_text(v->json->valuestring, buf, size);
    } else if (v->text == NULL) {
        snprintf(buf, size, "(no value)");
    } else {
        show_text(v->text, buf, size);
    }
}

/* "invalid <where> <value>: <why>", naming the setting the way the user gave it. */
static int invalid(parser_t *p, const setting_t *s, const value_t *v, const char *why_fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int invalid(parser_t *p, const setting_t *s, const value_t *v, const char *why_fmt, ...)
{
    char shown[SHOW_MAX + 32], why[WHY_MAX], env[SIDECAR_CONFIG_ENV_NAME_MAX];
    va_list ap;
    va_start(ap, why_fmt);
    vsnprintf(why, sizeof(why), why_fmt, ap);
    va_end(ap);
    show_value(s, v, shown, sizeof(shown));
    switch (v->origin) {
    case O_ENV:
        sidecar_config_env_name(s->pub.name, env, sizeof(env));
        return fail(p, SIDECAR_CONFIG_EINVAL, "invalid %s %s: %s", env, shown, why);
    case O_FILE:
        return fail(p, SIDECAR_CONFIG_EINVAL, "invalid \"%s\" %s in %s: %s", s->pub.name, shown,
                    p->file_label, why);
    case O_DEFAULT:
        assert(!"a default in the settings table does not parse");
        return fail(p, SIDECAR_CONFIG_EINVAL, "invalid default of --%s %s: %s", s->pub.name, shown,
                    why);
    default:
        return fail(p, SIDECAR_CONFIG_EINVAL, "invalid --%s %s: %s", s->pub.name, shown, why);
    }
}

/* ---- values: the parsers are common's (common/parse.c); the messages and ranges ours ---- */

/* A setting's bound in the syntax its values take. */
static void format_bound(const setting_t *s, uint32_t v, char *buf, size_t size)
{
    if (s->type == T_DURATION) {
        sidecar_format_duration(v, buf, size);
    } else if (s->type == T_SIZE) {
        sidecar_format_size(v, buf, size);
    } else {
        snprintf(buf, size, "%u", v);
    }
}

/* A DURATION, SIZE or COUNT into a range-checked uint32_t. */
static int set_number(parser_t *p, const setting_t *s, const value_t *v, const char *text,
                      uint32_t *dst)
{
    const char *expect = s->type == T_DURATION ? "expected a duration like 500ms, 2s or 1m"
                         : s->type == T_SIZE   ? "expected a size like 8KiB or 1MiB"
                                               : "expected a whole number";
    uint64_t n = 0;
    char bound[32];
    if (text[0] == '-') {
        return invalid(p, s, v, "%s, not a negative one", expect);
    }
    int rc = s->type == T_DURATION ? sidecar_parse_duration_ms(text, &n)
             : s->type == T_SIZE   ? sidecar_parse_size_bytes(text, &n)
                                   : sidecar_parse_count(text, &n);
    if (rc == SIDECAR_PARSE_ESYNTAX) {
        return invalid(p, s, v, "%s", expect);
    }
    if (rc == SIDECAR_PARSE_ERANGE || n > s->max) {
        format_bound(s, s->max, bound, sizeof(bound));
        return invalid(p, s, v, "too large: at most %s", bound);
    }
    if (n < s->min) {
        format_bound(s, s->min, bound, sizeof(bound));
        return invalid(p, s, v, "must be at least %s", bound);
    }
    *dst = (uint32_t)n;
    return 0;
}

static int set_fraction(parser_t *p, const setting_t *s, const value_t *v, const char *text)
{
    double lo = s->min / (double)PPM_ONE, hi = s->max / (double)PPM_ONE;
    if (text[0] == '-') {
        return invalid(p, s, v, "must not be negative: expected a number in [%g, %g)", lo, hi);
    }
    double d = 0;
    int rc = sidecar_parse_fraction(text, &d);
    if (rc == SIDECAR_PARSE_ESYNTAX) {
        return invalid(p, s, v, "expected a number in [%g, %g), e.g. 0.05", lo, hi);
    }
    if (rc != 0 || !(d >= lo && d < hi)) {
        return invalid(p, s, v, "must be in [%g, %g)", lo, hi);
    }
    assert(s->offset == OFF(max_drift));
    p->cfg->max_drift = d;
    p->cfg->max_drift_ppm = (uint32_t)llround(d * PPM_ONE);
    return 0;
}

static int set_bool(parser_t *p, const setting_t *s, const value_t *v, const char *text, bool *dst)
{
    if (text == NULL) {
        *dst = true; /* a bare flag: --witness */
        return 0;
    }
    if (sidecar_parse_bool(text, dst) != 0) {
        return invalid(p, s, v, "expected true, false, 1 or 0");
    }
    return 0;
}

static int set_enum(parser_t *p, const setting_t *s, const value_t *v, const char *text, void *dst)
{
    const char *const *ch = choices_of(s);
    char list[128] = "";
    assert(ch != NULL);
    for (int i = 0; ch[i]; i++) {
        if (strcmp(text, ch[i]) == 0) {
            /* both enums are int-sized; the table row says which one this is */
            int value = i;
            memcpy(dst, &value, sizeof(value));
            return 0;
        }
        size_t n = strlen(list);
        snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", ch[i]);
    }
    return invalid(p, s, v, "expected one of %s", list);
}

static char *dup_or_fail(parser_t *p, const char *s, int *rc)
{
    char *d = strdup(s);
    *rc = d ? 0 : fail(p, SIDECAR_CONFIG_ENOMEM, "out of memory");
    return d;
}

static int set_string(parser_t *p, const setting_t *s, const value_t *v, const char *text,
                      char **dst)
{
    int rc = 0;
    char msg[96];
    switch (s->type) {
    case T_NAME:
        if (!sidecar_parse_name_valid(text)) {
            return invalid(p, s, v,
                           "expected 1-%d letters, digits, '.', '_' or '-', starting with a "
                           "letter or digit",
                           SIDECAR_NAME_MAX);
        }
        break;
    case T_TOKEN: {
        size_t n = strlen(text);
        bool ok = n > 0 && n <= SIDECAR_CONFIG_TOKEN_MAX;
        for (size_t i = 0; ok && i < n; i++) {
            ok = text[i] > ' ' && text[i] < 0x7f;
        }
        if (!ok) {
            return invalid(p, s, v, "expected 1-%d visible ASCII characters without spaces",
                           SIDECAR_CONFIG_TOKEN_MAX);
        }
        break;
    }
    case T_PATH: {
        bool ok = text[0] != '\0' && strlen(text) < PATH_MAX;
        for (const char *c = text; ok && *c; c++) {
            ok = (unsigned char)*c >= ' ';
        }
        if (!ok) {
            snprintf(msg, sizeof(msg), "expected a path of 1-%d bytes without control characters",
                     PATH_MAX - 1);
            return invalid(p, s, v, "%s", msg);
        }
        break;
    }
    default:
        assert(!"not a string type");
    }
    *dst = dup_or_fail(p, text, &rc);
    return rc;
}

int sidecar_config_hostport_parse(const char *text, char *host, size_t host_size, uint16_t *port)
{
    return sidecar_parse_hostport(text, false, host, host_size, port, NULL, 0) == 0
               ? 0
               : SIDECAR_CONFIG_EINVAL;
}

bool sidecar_config_name_valid(const char *name)
{
    return sidecar_parse_name_valid(name);
}

static int set_addr(parser_t *p, const setting_t *s, const value_t *v, const char *text,
                    sidecar_addr_t *dst)
{
    char host[SIDECAR_HOST_MAX + 1], why[WHY_MAX];
    int rc = 0;
    if (sidecar_parse_hostport(text, s->flags & F_PORT0, host, sizeof(host), &dst->port, why,
                               sizeof(why)) != 0) {
        return invalid(p, s, v, "%s", why);
    }
    dst->host = dup_or_fail(p, host, &rc);
    return rc;
}

/* One "name=host:port" into peers[n]; why explains a failure. */
static int parse_peer(const char *item, size_t len, sidecar_peer_t *peer, char *why,
                      size_t why_size, int *oom)
{
    char buf[SIDECAR_NAME_MAX + SIDECAR_HOST_MAX + 16], shown[SHOW_MAX + 16];
    char host[SIDECAR_HOST_MAX + 1], addr_why[WHY_MAX];
    uint16_t port;
    if (len >= sizeof(buf)) {
        snprintf(why, why_size, "an entry is too long");
        return -1;
    }
    memcpy(buf, item, len);
    buf[len] = '\0';
    show_text(buf, shown, sizeof(shown));
    char *eq = strchr(buf, '=');
    if (len == 0) {
        snprintf(why, why_size, "empty entry: expected name=host:port,...");
        return -1;
    }
    if (eq == NULL) {
        snprintf(why, why_size, "entry %s is not name=host:port", shown);
        return -1;
    }
    *eq = '\0';
    if (!sidecar_parse_name_valid(buf)) {
        snprintf(why, why_size,
                 "entry %s: the name must be 1-%d letters, digits, '.', '_' "
                 "or '-', starting with a letter or digit",
                 shown, SIDECAR_NAME_MAX);
        return -1;
    }
    if (sidecar_parse_hostport(eq + 1, false, host, sizeof(host), &port, addr_why,
                               sizeof(addr_why)) != 0) {
        snprintf(why, why_size, "entry %s: %.100s", shown, addr_why);
        return -1;
    }
    /* the address travels in Raft membership entries, which bound it */
    if (strlen(host) + 2 + 1 + 5 + 1 > RAFT_ADDR_MAX) {
        snprintf(why, why_size, "entry %s: the address is longer than %d bytes", shown,
                 RAFT_ADDR_MAX - 1);
        return -1;
    }
    peer->name = strdup(buf);
    peer->host = strdup(host);
    peer->port = port;
    peer->id = sidecar_config_node_id(buf);
    if (peer->name == NULL || peer->host == NULL) {
        *oom = 1;
        return -1;
    }
    return 0;
}

static bool same_host(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = (*a >= 'A' && *a <= 'Z') ? (char)(*a - 'A' + 'a') : *a;
        char y = (*b >= 'A' && *b <= 'Z') ? (char)(*b - 'A' + 'a') : *b;
        if (x != y) {
            return false;
        }
    }
    return *a == *b;
}

/* The peers of a --peers string (items separated by ',') or a JSON array of items. */
static int set_peers(parser_t *p, const setting_t *s, const value_t *v, const char *text,
                     const cJSON *array)
{
    sidecar_config_t *cfg = p->cfg;
    char why[WHY_MAX];
    int oom = 0;
    size_t n = 0;
    const char *c = text;
    const cJSON *j = array ? array->child : NULL;

    cfg->peers = calloc(SIDECAR_CONFIG_MAX_PEERS, sizeof(*cfg->peers));
    if (cfg->peers == NULL) {
        return fail(p, SIDECAR_CONFIG_ENOMEM, "out of memory");
    }
    for (;;) {
        const char *item;
        size_t len;
        if (array) {
            if (j == NULL) {
                break;
            }
            if (!cJSON_IsString(j)) {
                return invalid(p, s, v, "expected an array of \"name=host:port\" strings");
            }
            item = j->valuestring;
            len = strlen(item);
            j = j->next;
        } else {
            const char *comma = strchr(c, ',');
            item = c;
            len = comma ? (size_t)(comma - c) : strlen(c);
        }
        if (n == SIDECAR_CONFIG_MAX_PEERS) {
            return invalid(p, s, v, "more than %d peers", SIDECAR_CONFIG_MAX_PEERS);
        }
        if (parse_peer(item, len, &cfg->peers[n], why, sizeof(why), &oom) != 0) {
            cfg->n_peers = n + 1; /* so that free() sees a partial entry */
            if (oom) {
                return fail(p, SIDECAR_CONFIG_ENOMEM, "out of memory");
            }
            return invalid(p, s, v, "%s", why);
        }
        n++;
        cfg->n_peers = n;
        if (!array) {
            if (c[len] == '\0') {
                break;
            }
            c += len + 1;
        }
    }
    if (n == 0) {
        return invalid(p, s, v, "expected name=host:port,...");
    }
    for (size_t a = 0; a < n; a++) {
        for (size_t b = a + 1; b < n; b++) {
            const sidecar_peer_t *x = &cfg->peers[a], *y = &cfg->peers[b];
            if (strcmp(x->name, y->name) == 0) {
                return invalid(p, s, v, "duplicate peer name \"%s\"", x->name);
            }
            if (x->port == y->port && same_host(x->host, y->host)) {
                return invalid(p, s, v, "peers \"%s\" and \"%s\" have the same address", x->name,
                               y->name);
            }
            if (x->id == y->id) {
                return invalid(p, s, v, "peer names \"%s\" and \"%s\" hash to the same id", x->name,
                               y->name);
            }
        }
    }
    return 0;
}

/* A command: a JSON array of strings (array != NULL), the words of text split on spaces
 * and tabs, or the command line after `--` (tail). */
static int set_argv(parser_t *p, const setting_t *s, const value_t *v, const char *text,
                    const cJSON *array, char *const *tail, size_t n_tail, sidecar_argv_t *dst)
{
    const char *expect = "expected a command: a program and its arguments separated by spaces, "
                         "or a JSON array of strings";
    size_t n = 0;
    if (array) {
        for (const cJSON *j = array->child; j; j = j->next) {
            if (!cJSON_IsString(j)) {
                return invalid(p, s, v, "%s", expect);
            }
            if (strlen(j->valuestring) > SIDECAR_CONFIG_VALUE_MAX) {
                return invalid(p, s, v, "an argument is longer than %d bytes",
                               SIDECAR_CONFIG_VALUE_MAX);
            }
            n++;
        }
    } else if (tail) {
        n = n_tail;
        for (size_t i = 0; i < n_tail; i++) {
            if (strlen(tail[i]) > SIDECAR_CONFIG_VALUE_MAX) {
                return fail(p, SIDECAR_CONFIG_EINVAL,
                            "invalid --%s: an argument is longer than %d bytes", s->pub.name,
                            SIDECAR_CONFIG_VALUE_MAX);
            }
        }
    } else {
        for (const char *c = text; *c;) {
            while (*c == ' ' || *c == '\t') {
                c++;
            }
            if (*c) {
                n++;
            }
            while (*c && *c != ' ' && *c != '\t') {
                c++;
            }
        }
    }
    if (n > SIDECAR_CONFIG_ARGV_MAX) {
        return invalid(p, s, v, "more than %d words", SIDECAR_CONFIG_ARGV_MAX);
    }
    if (n == 0) {
        return invalid(p, s, v, "%s", expect);
    }
    dst->argv = calloc(n + 1, sizeof(char *));
    if (dst->argv == NULL) {
        return fail(p, SIDECAR_CONFIG_ENOMEM, "out of memory");
    }
    const cJSON *j = array ? array->child : NULL;
    const char *c = text;
    for (size_t i = 0; i < n; i++) {
        if (array) {
            dst->argv[i] = strdup(j->valuestring);
            j = j->next;
        } else if (tail) {
            dst->argv[i] = strdup(tail[i]);
        } else {
            while (*c == ' ' || *c == '\t') {
                c++;
            }
            size_t len = strcspn(c, " \t");
            dst->argv[i] = strndup(c, len);
            c += len;
        }
        if (dst->argv[i] == NULL) {
            return fail(p, SIDECAR_CONFIG_ENOMEM, "out of memory");
        }
        dst->argc = i + 1;
    }
    if (dst->argv[0][0] == '\0') {
        return invalid(p, s, v, "the program name is empty");
    }
    return 0;
}

/* ---- applying one value ------------------------------------------------------------- */

/* The text a JSON scalar stands for, for the types that accept it. */
static bool json_text(const setting_t *s, const cJSON *j, char *buf, size_t size, const char **text)
{
    if (cJSON_IsString(j)) {
        *text = j->valuestring;
        return true;
    }
    bool numeric = s->type == T_DURATION || s->type == T_SIZE || s->type == T_COUNT ||
                   s->type == T_FRACTION || s->type == T_BOOL;
    if (cJSON_IsNumber(j) && numeric) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) < 1e15) {
            snprintf(buf, size, "%.0f", d);
        } else {
            snprintf(buf, size, "%.17g", d);
        }
        *text = buf;
        return true;
    }
    if (cJSON_IsBool(j) && s->type == T_BOOL) {
        *text = cJSON_IsTrue(j) ? "true" : "false";
        return true;
    }
    return false;
}

static const char *type_expectation(const setting_t *s)
{
    switch (s->type) {
    case T_DURATION:
        return "expected a duration like \"500ms\", \"2s\" or \"1m\", or a number of "
               "milliseconds";
    case T_SIZE:
        return "expected a size like \"8KiB\" or \"1MiB\", or a number of bytes";
    case T_COUNT:
        return "expected a whole number";
    case T_FRACTION:
        return "expected a number like 0.05";
    case T_BOOL:
        return "expected true or false";
    case T_PEERS:
        return "expected \"name=host:port,...\" or an array of \"name=host:port\" strings";
    case T_ARGV:
        return "expected an array of strings or a string of words";
    default:
        return "expected a string";
    }
}

static bool looks_like_json_array(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n') {
        s++;
    }
    return *s == '[';
}

static int apply(parser_t *p, const setting_t *s, const value_t *v)
{
    void *dst = (char *)p->cfg + s->offset;
    const char *text = v->text;
    char num[64];
    cJSON *env_array = NULL;
    const cJSON *array = NULL;
    int rc;

    if (v->origin == O_FILE) {
        if ((s->type == T_ARGV || s->type == T_PEERS) && cJSON_IsArray(v->json)) {
            array = v->json;
        } else if (!json_text(s, v->json, num, sizeof(num), &text)) {
            return invalid(p, s, v, "%s", type_expectation(s));
        }
    }
    if (text && strlen(text) > SIDECAR_CONFIG_VALUE_MAX) {
        return invalid(p, s, v, "longer than %d bytes", SIDECAR_CONFIG_VALUE_MAX);
    }
    if (v->origin == O_ENV && s->type == T_ARGV && looks_like_json_array(text)) {
        env_array = cJSON_Parse(text);
        if (env_array == NULL || !cJSON_IsArray(env_array)) {
            cJSON_Delete(env_array);
            return invalid(p, s, v, "starts with '[' but is not a JSON array of strings");
        }
        array = env_array;
    }
    if (text == NULL && array == NULL && s->type != T_BOOL && !(s->flags & F_TAIL)) {
        return invalid(p, s, v, "a value is needed");
    }

    switch (s->type) {
    case T_NAME:
    case T_TOKEN:
    case T_PATH:
        rc = set_string(p, s, v, text, (char **)dst);
        break;
    case T_ADDR:
        rc = set_addr(p, s, v, text, (sidecar_addr_t *)dst);
        break;
    case T_PEERS:
        rc = set_peers(p, s, v, text, array);
        break;
    case T_DURATION:
    case T_COUNT:
    case T_SIZE:
        rc = set_number(p, s, v, text, (uint32_t *)dst);
        break;
    case T_FRACTION:
        rc = set_fraction(p, s, v, text);
        break;
    case T_BOOL:
        rc = set_bool(p, s, v, text, (bool *)dst);
        break;
    case T_ENUM:
        rc = set_enum(p, s, v, text, dst);
        break;
    case T_ARGV:
        if (v->origin == O_FLAG && (s->flags & F_TAIL) && text == NULL) {
            rc = set_argv(p, s, v, NULL, NULL, p->tail, p->n_tail, (sidecar_argv_t *)dst);
        } else {
            rc = set_argv(p, s, v, text, array, NULL, 0, (sidecar_argv_t *)dst);
        }
        break;
    default:
        assert(!"T_META is not applied");
        rc = SIDECAR_CONFIG_EINVAL;
    }
    cJSON_Delete(env_array);
    return rc;
}

/* ---- pass 1: the command line ------------------------------------------------------- */

static int scan_argv(parser_t *p)
{
    struct option opts[N_SETTINGS + 1];
    const sidecar_config_source_t *src = p->src;
    int last_end = 1;

    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting_t *s = &settings[i];
        int has_arg = required_argument;
        if (s->pub.unit == NULL) {
            has_arg = no_argument;
        } else if (s->type == T_BOOL || (s->flags & F_TAIL)) {
            has_arg = optional_argument; /* --witness, --witness=false; --exec -- CMD */
        }
        opts[i] = (struct option){s->pub.name, has_arg, NULL, OPT_BASE + (int)i};
    }
    opts[N_SETTINGS] = (struct option){0};
    if (src->argc <= 0 || src->argv == NULL) {
        return 0;
    }

    /* "+": stop at the first non-flag instead of permuting argv; ":": report a missing
     * value as ':'. optind = 0 makes glibc start afresh (tests parse many times). */
    optind = 0;
    opterr = 0;
    for (int guard = 0; guard < src->argc; guard++) {
        int start = optind == 0 ? 1 : optind;
        int c = getopt_long(src->argc, src->argv, "+:", opts, NULL);
        if (c == -1) {
            break;
        }
        char shown[SHOW_MAX + 16];
        const char *tok = start < src->argc ? src->argv[start] : "";
        show_text(tok, shown, sizeof(shown));
        if (c == ':') {
            return fail(p, SIDECAR_CONFIG_EINVAL, "%s needs a value (see electd --help)", tok);
        }
        if (c < OPT_BASE || c >= OPT_BASE + (int)N_SETTINGS) {
            return fail(p, SIDECAR_CONFIG_EINVAL, "unknown flag %s (see electd --help)", shown);
        }
        size_t idx = (size_t)(c - OPT_BASE);
        const setting_t *s = &settings[idx];
        size_t nl = strlen(s->pub.name);
        /* getopt_long accepts unique prefixes; flags are a public interface and a prefix
         * that is unique today may not be tomorrow, so only full names are accepted. */
        if (strncmp(tok, "--", 2) != 0 || strncmp(tok + 2, s->pub.name, nl) != 0 ||
            (tok[2 + nl] != '\0' && tok[2 + nl] != '=')) {
            return fail(p, SIDECAR_CONFIG_EINVAL,
                        "unknown flag %s (write flags in full, e.g. --%s)", shown, s->pub.name);
        }
        if (strcmp(s->pub.name, "help") == 0) {
            p->cfg->action = SIDECAR_CONFIG_HELP;
            return 0;
        }
        if (strcmp(s->pub.name, "version") == 0) {
            p->cfg->action = SIDECAR_CONFIG_VERSION;
            return 0;
        }
        p->flag[idx] = (value_t){.origin = O_FLAG, .text = optarg};
        last_end = optind;
    }
    int rest = optind;
    p->dashdash = rest > last_end && rest - 1 < src->argc && strcmp(src->argv[rest - 1], "--") == 0;
    if (rest < src->argc && !p->dashdash) {
        char shown[SHOW_MAX + 16];
        show_text(src->argv[rest], shown, sizeof(shown));
        return fail(p, SIDECAR_CONFIG_EINVAL,
                    "unexpected argument %s (flags take --flag VALUE or --flag=VALUE; "
                    "booleans --flag or --flag=false; the workload goes after --exec --)",
                    shown);
    }
    if (p->dashdash) {
        p->tail = src->argv + rest;
        p->n_tail = (size_t)(src->argc - rest);
    }

    size_t exec_idx = 0;
    find_setting("exec", &exec_idx);
    const value_t *ex = &p->flag[exec_idx];
    if (p->dashdash && ex->origin != O_FLAG) {
        return fail(p, SIDECAR_CONFIG_EINVAL,
                    "arguments after -- are the workload command and need --exec, e.g. "
                    "--exec -- /usr/bin/worker -v");
    }
    if (ex->origin == O_FLAG && ex->text && p->dashdash) {
        return fail(p, SIDECAR_CONFIG_EINVAL,
                    "give the workload command either as --exec=CMD or after --exec --, not both");
    }
    if (ex->origin == O_FLAG && ex->text == NULL && p->n_tail == 0) {
        return fail(
            p, SIDECAR_CONFIG_EINVAL,
            "--exec needs the workload command after --, e.g. --exec -- /usr/bin/worker -v");
    }
    return 0;
}

/* ---- pass 2: the config file -------------------------------------------------------- */

static int read_file(parser_t *p, const char *path, size_t *len)
{
    char shown[SHOW_MAX + 16];
    struct stat st;
    size_t n = 0;
    int rc = 0;
    show_text(path, shown, sizeof(shown));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return fail(p, SIDECAR_CONFIG_EFILE, "cannot read --config %s: %s", shown, strerror(errno));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = fail(p, SIDECAR_CONFIG_EFILE, "--config %s is not a regular file", shown);
        goto done;
    }
    p->file_buf = malloc(SIDECAR_CONFIG_FILE_MAX + 1);
    if (p->file_buf == NULL) {
        rc = fail(p, SIDECAR_CONFIG_ENOMEM, "out of memory");
        goto done;
    }
    /* bounded: each round reads at least one byte or ends the loop */
    while (n <= SIDECAR_CONFIG_FILE_MAX) {
        ssize_t r = read(fd, p->file_buf + n, SIDECAR_CONFIG_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            rc = fail(p, SIDECAR_CONFIG_EFILE, "cannot read --config %s: %s", shown,
                      strerror(errno));
            goto done;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
    }
    if (n > SIDECAR_CONFIG_FILE_MAX) {
        rc = fail(p, SIDECAR_CONFIG_EFILE, "--config %s is larger than %d bytes", shown,
                  SIDECAR_CONFIG_FILE_MAX);
        goto done;
    }
    *len = n;
done:
    close(fd);
    return rc;
}

static void line_col(const char *text, size_t pos, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < pos; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static int load_file(parser_t *p)
{
    const sidecar_config_source_t *src = p->src;
    size_t idx = 0;
    const char *path = NULL, *text;
    char env[SIDECAR_CONFIG_ENV_NAME_MAX], shown[SHOW_MAX + 16];
    size_t len = 0;
    int rc = 0, line, col;

    find_setting("config", &idx);
    if (p->flag[idx].origin == O_FLAG) {
        path = p->flag[idx].text;
        p->origin[idx] = O_FLAG;
    } else if (src->getenv_cb) {
        sidecar_config_env_name("config", env, sizeof(env));
        path = src->getenv_cb(env, src->getenv_ud);
        if (path && path[0] == '\0') {
            path = NULL;
        }
        p->origin[idx] = path ? O_ENV : O_NONE;
    }
    if (path && (path[0] == '\0' || strlen(path) >= PATH_MAX)) {
        return fail(p, SIDECAR_CONFIG_EINVAL, "invalid --config: expected a file name");
    }
    if (path) {
        p->cfg->config_path = dup_or_fail(p, path, &rc);
        if (rc != 0) {
            return rc;
        }
    }
    p->file_label = path ? p->cfg->config_path : "the config file";
    if (src->file_text) {
        text = src->file_text;
        len = src->file_len;
        if (len > SIDECAR_CONFIG_FILE_MAX) {
            return fail(p, SIDECAR_CONFIG_EFILE, "%s is larger than %d bytes", p->file_label,
                        SIDECAR_CONFIG_FILE_MAX);
        }
    } else if (path) {
        rc = read_file(p, path, &len);
        if (rc != 0) {
            return rc;
        }
        text = p->file_buf;
    } else {
        return 0;
    }

    const char *end = NULL;
    p->root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (p->root == NULL) {
        size_t pos = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        line_col(text, pos, &line, &col);
        return fail(p, SIDECAR_CONFIG_EFILE, "%s:%d:%d: not valid JSON", p->file_label, line, col);
    }
    size_t pos = (size_t)(end - text);
    while (pos < len &&
           (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n' || text[pos] == '\r')) {
        pos++;
    }
    if (pos < len) {
        line_col(text, pos, &line, &col);
        return fail(p, SIDECAR_CONFIG_EFILE, "%s:%d:%d: unexpected text after the JSON object",
                    p->file_label, line, col);
    }
    if (!cJSON_IsObject(p->root)) {
        return fail(p, SIDECAR_CONFIG_EFILE,
                    "%s: expected a JSON object of settings, e.g. {\"name\": \"a\"}",
                    p->file_label);
    }
    /* bounded: every key must be a distinct setting, so at most N_SETTINGS succeed */
    for (const cJSON *j = p->root->child; j; j = j->next) {
        const setting_t *s = j->string ? find_setting(j->string, &idx) : NULL;
        show_text(j->string ? j->string : "", shown, sizeof(shown));
        if (s == NULL) {
            return fail(p, SIDECAR_CONFIG_EFILE, "%s: unknown setting %s (see electd --help)",
                        p->file_label, shown);
        }
        if (!s->pub.file) {
            return fail(p, SIDECAR_CONFIG_EFILE, "%s: %s cannot be set in the config file",
                        p->file_label, shown);
        }
        if (p->file[idx]) {
            return fail(p, SIDECAR_CONFIG_EFILE, "%s: setting %s appears twice", p->file_label,
                        shown);
        }
        p->file[idx] = j;
    }
    return 0;
}

/* ---- pass 3: flag > env > file > default -------------------------------------------- */

static int resolve(parser_t *p)
{
    const sidecar_config_source_t *src = p->src;
    char env[SIDECAR_CONFIG_ENV_NAME_MAX];
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting_t *s = &settings[i];
        value_t v = p->flag[i];
        if (s->type == T_META) {
            continue;
        }
        if (v.origin == O_NONE && s->pub.env && src->getenv_cb) {
            sidecar_config_env_name(s->pub.name, env, sizeof(env));
            const char *e = src->getenv_cb(env, src->getenv_ud);
            if (e && e[0] != '\0') { /* empty means unset: VAR= in a unit file or compose */
                v = (value_t){.origin = O_ENV, .text = e};
            }
        }
        if (v.origin == O_NONE && p->file[i]) {
            v = (value_t){.origin = O_FILE, .json = p->file[i]};
        }
        if (v.origin == O_NONE && s->pub.def) {
            v = (value_t){.origin = O_DEFAULT, .text = s->pub.def};
        }
        if (v.origin == O_NONE) {
            continue;
        }
        p->origin[i] = v.origin;
        int rc = apply(p, s, &v);
        if (rc != 0) {
            return rc;
        }
    }
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting_t *s = &settings[i];
        if ((s->flags & F_REQUIRED) && p->origin[i] == O_NONE) {
            sidecar_config_env_name(s->pub.name, env, sizeof(env));
            return fail(p, SIDECAR_CONFIG_EINVAL,
                        "missing --%s (or %s, or \"%s\" in the config file)", s->pub.name, env,
                        s->pub.name);
        }
    }
    return 0;
}

/* ---- pass 4: settings against each other -------------------------------------------- */

static bool is_set(const parser_t *p, const char *name)
{
    size_t idx = 0;
    find_setting(name, &idx);
    return p->origin[idx] != O_NONE;
}

static int copy_addr(parser_t *p, sidecar_addr_t *dst, const char *host, uint16_t port)
{
    int rc = 0;
    dst->host = dup_or_fail(p, host, &rc);
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

static int check_consistency(parser_t *p)
{
    sidecar_config_t *cfg = p->cfg;
    char a[32], b[32], c[32];
    int rc;

    if (cfg->n_peers > 0) {
        size_t i;
        for (i = 0; i < cfg->n_peers && strcmp(cfg->peers[i].name, cfg->name) != 0; i++) {
        }
        if (cfg->join && i < cfg->n_peers) {
            return fail(p, SIDECAR_CONFIG_EINVAL,
                        "--join is for a node that is not in --peers, but \"%s\" is", cfg->name);
        }
        if (cfg->join) {
            if (!is_set(p, "listen-peer")) {
                return fail(p, SIDECAR_CONFIG_EINVAL,
                            "--listen-peer is required with --join (this node is not in --peers)");
            }
        } else if (i == cfg->n_peers) {
            char names[160] = "";
            for (size_t k = 0; k < cfg->n_peers && strlen(names) < 120; k++) {
                size_t n = strlen(names);
                snprintf(names + n, sizeof(names) - n, "%s%s", k ? ", " : "", cfg->peers[k].name);
            }
            return fail(p, SIDECAR_CONFIG_EINVAL, "--name \"%s\" is not among --peers (%s)",
                        cfg->name, names);
        }
        cfg->self_index = i;
        if (!cfg->join && !is_set(p, "listen-peer")) {
            rc = copy_addr(p, &cfg->listen_peer, cfg->peers[i].host, cfg->peers[i].port);
            if (rc != 0) {
                return rc;
            }
        }
    } else if (!is_set(p, "listen-peer")) {
        return fail(p, SIDECAR_CONFIG_EINVAL,
                    "--listen-peer is required when --peers is not given");
    }
    if (!is_set(p, "advertise-http")) {
        if (is_wildcard(cfg->listen_http.host)) {
            return fail(p, SIDECAR_CONFIG_EINVAL,
                        "--listen-http %s is a wildcard address: set --advertise-http to the "
                        "address clients should be sent to",
                        cfg->listen_http.host);
        }
        rc = copy_addr(p, &cfg->advertise_http, cfg->listen_http.host, cfg->listen_http.port);
        if (rc != 0) {
            return rc;
        }
    }
    const sidecar_addr_t *lp = &cfg->listen_peer, *lh = &cfg->listen_http;
    if (lp->port == lh->port && lh->port != 0 &&
        (same_host(lp->host, lh->host) || is_wildcard(lp->host) || is_wildcard(lh->host))) {
        return fail(p, SIDECAR_CONFIG_EINVAL,
                    "--listen-peer and --listen-http both use port %u on the same address",
                    lh->port);
    }

    sidecar_format_duration(cfg->tick_ms, c, sizeof(c));
    if (cfg->heartbeat_interval_ms % cfg->tick_ms != 0) {
        sidecar_format_duration(cfg->heartbeat_interval_ms, a, sizeof(a));
        return fail(p, SIDECAR_CONFIG_EINVAL,
                    "--heartbeat-interval (%s) must be a multiple of --tick (%s)", a, c);
    }
    if (cfg->election_timeout_ms % cfg->tick_ms != 0) {
        sidecar_format_duration(cfg->election_timeout_ms, a, sizeof(a));
        return fail(p, SIDECAR_CONFIG_EINVAL,
                    "--election-timeout (%s) must be a multiple of --tick (%s)", a, c);
    }
    sidecar_format_duration(cfg->heartbeat_interval_ms, a, sizeof(a));
    sidecar_format_duration(cfg->election_timeout_ms, b, sizeof(b));
    if (cfg->heartbeat_interval_ms >= cfg->election_timeout_ms) {
        return fail(p, SIDECAR_CONFIG_EINVAL,
                    "--heartbeat-interval (%s) must be less than --election-timeout (%s)", a, b);
    }
    uint32_t lease = sidecar_config_lease_ms(cfg);
    if (lease == 0) {
        return fail(p, SIDECAR_CONFIG_EINVAL,
                    "--election-timeout (%s) is too short for --tick (%s) and --max-drift "
                    "(%g): the leader lease would be empty",
                    b, c, cfg->max_drift);
    }
    if (cfg->stop_timeout_ms >= lease) {
        sidecar_format_duration(cfg->stop_timeout_ms, a, sizeof(a));
        return fail(p, SIDECAR_CONFIG_EINVAL,
                    "--stop-timeout (%s) must be less than the leader lease (%ums: "
                    "--election-timeout %s shortened by --max-drift %g, minus 2 ticks)",
                    a, lease, b, cfg->max_drift);
    }

    bool hooks = cfg->on_start.argc || cfg->on_stop.argc || cfg->on_change.argc;
    if (cfg->exec.argc && (cfg->on_start.argc || cfg->on_stop.argc)) {
        return fail(p, SIDECAR_CONFIG_EINVAL,
                    "--exec cannot be combined with --on-start or --on-stop: a node either "
                    "supervises its workload or runs hooks");
    }
    if (cfg->witness && (cfg->exec.argc || hooks)) {
        return fail(p, SIDECAR_CONFIG_EINVAL,
                    "--witness cannot be combined with --exec or hooks: a witness never runs "
                    "the workload");
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

static int check_program(parser_t *p, const char *flag, const sidecar_argv_t *cmd)
{
    char shown[SHOW_MAX + 16];
    if (cmd->argc == 0 || strchr(cmd->argv[0], '/') == NULL) {
        return 0; /* found through PATH when run */
    }
    if (access(cmd->argv[0], X_OK) != 0) {
        show_text(cmd->argv[0], shown, sizeof(shown));
        return fail(p, SIDECAR_CONFIG_EINVAL, "--%s program %s is not executable: %s", flag, shown,
                    strerror(errno));
    }
    return 0;
}

static int check_fs(parser_t *p)
{
    sidecar_config_t *cfg = p->cfg;
    char shown[SHOW_MAX + 16];
    struct stat st;
    int rc;

    show_text(cfg->data_dir, shown, sizeof(shown));
    if (make_dirs(cfg->data_dir) != 0) {
        return fail(p, SIDECAR_CONFIG_EDATADIR, "cannot create --data-dir %s: %s", shown,
                    strerror(errno));
    }
    if (stat(cfg->data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return fail(p, SIDECAR_CONFIG_EDATADIR, "--data-dir %s is not a directory", shown);
    }
    if (access(cfg->data_dir, R_OK | W_OK | X_OK) != 0) {
        return fail(p, SIDECAR_CONFIG_EDATADIR, "--data-dir %s is not writable: %s", shown,
                    strerror(errno));
    }
    if ((rc = check_program(p, "exec", &cfg->exec)) != 0 ||
        (rc = check_program(p, "on-start", &cfg->on_start)) != 0 ||
        (rc = check_program(p, "on-stop", &cfg->on_stop)) != 0 ||
        (rc = check_program(p, "on-change", &cfg->on_change)) != 0) {
        return rc;
    }
    return 0;
}

/* ---- the entry points --------------------------------------------------------------- */

int sidecar_config_parse(sidecar_config_t *cfg, const sidecar_config_source_t *src, char *err,
                         size_t err_size)
{
    parser_t *p = calloc(1, sizeof(*p)); /* ~2 KiB of bookkeeping, kept off the stack */
    int rc;
    memset(cfg, 0, sizeof(*cfg));
    if (err && err_size) {
        err[0] = '\0';
    }
    if (p == NULL) {
        if (err && err_size) {
            snprintf(err, err_size, "electd: out of memory");
        }
        return SIDECAR_CONFIG_ENOMEM;
    }
    p->cfg = cfg;
    p->src = src;
    p->err = err;
    p->err_size = err_size;

    if ((rc = scan_argv(p)) != 0) {
        goto fail;
    }
    if (cfg->action != SIDECAR_CONFIG_RUN) {
        goto done;
    }
    if ((rc = load_file(p)) != 0 || (rc = resolve(p)) != 0 || (rc = check_consistency(p)) != 0) {
        goto fail;
    }
    if (!src->skip_fs && (rc = check_fs(p)) != 0) {
        goto fail;
    }
done:
    cJSON_Delete(p->root);
    free(p->file_buf);
    free(p);
    return 0;
fail:
    cJSON_Delete(p->root);
    free(p->file_buf);
    free(p);
    sidecar_config_free(cfg);
    return rc;
}

static void free_argv(sidecar_argv_t *a)
{
    for (size_t i = 0; a->argv && i < a->argc; i++) {
        free(a->argv[i]);
    }
    free(a->argv);
}

void sidecar_config_free(sidecar_config_t *cfg)
{
    for (size_t i = 0; cfg->peers && i < cfg->n_peers; i++) {
        free(cfg->peers[i].name);
        free(cfg->peers[i].host);
    }
    free(cfg->peers);
    free(cfg->name);
    free(cfg->listen_peer.host);
    free(cfg->listen_http.host);
    free(cfg->advertise_http.host);
    free(cfg->data_dir);
    free(cfg->cluster_name);
    free(cfg->cluster_token);
    free(cfg->config_path);
    free_argv(&cfg->exec);
    free_argv(&cfg->on_start);
    free_argv(&cfg->on_stop);
    free_argv(&cfg->on_change);
    free(cfg->http_token);
    memset(cfg, 0, sizeof(*cfg));
}

/* ---- environment lookups ------------------------------------------------------------ */

const char *sidecar_config_getenv_process(const char *name, void *ud)
{
    (void)ud;
    return getenv(name);
}

const char *sidecar_config_getenv_array(const char *name, void *ud)
{
    const char *const *env = ud;
    size_t n = strlen(name);
    for (size_t i = 0; env && env[i]; i++) {
        if (strncmp(env[i], name, n) == 0 && env[i][n] == '=') {
            return env[i] + n + 1;
        }
    }
    return NULL;
}

/* ---- derived values ----------------------------------------------------------------- */

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME  0x100000001b3ull

static uint64_t fnv_add(uint64_t h, const char *s, bool lower)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (lower && c >= 'A' && c <= 'Z') {
            c = (unsigned char)(c - 'A' + 'a');
        }
        h ^= c;
        h *= FNV_PRIME;
    }
    return h;
}

uint64_t sidecar_config_node_id(const char *name)
{
    uint64_t h = fnv_add(FNV_OFFSET, name, false);
    return h ? h : 1;
}

uint64_t sidecar_config_cluster_id(const sidecar_config_t *cfg)
{
    const sidecar_peer_t *order[SIDECAR_CONFIG_MAX_PEERS];
    char port[8];
    size_t n = cfg->n_peers;
    if (n == 0 || n > SIDECAR_CONFIG_MAX_PEERS) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) { /* insertion sort by name: n <= 16 */
        const sidecar_peer_t *x = &cfg->peers[i];
        size_t j = i;
        for (; j > 0 && strcmp(order[j - 1]->name, x->name) > 0; j--) {
            order[j] = order[j - 1];
        }
        order[j] = x;
    }
    uint64_t h = fnv_add(FNV_OFFSET, "electd-cluster-v1\n", false);
    h = fnv_add(h, cfg->cluster_name ? cfg->cluster_name : "", false);
    h = fnv_add(h, "\n", false);
    for (size_t i = 0; i < n; i++) {
        snprintf(port, sizeof(port), "%u", order[i]->port);
        h = fnv_add(h, order[i]->name, false);
        h = fnv_add(h, "=", false);
        h = fnv_add(h, order[i]->host, true);
        h = fnv_add(h, ":", false);
        h = fnv_add(h, port, false);
        h = fnv_add(h, "\n", false);
    }
    return h ? h : 1;
}

int sidecar_config_addr_format(const sidecar_addr_t *addr, char *buf, size_t size)
{
    if (addr->host == NULL) {
        return SIDECAR_CONFIG_EINVAL;
    }
    bool v6 = strchr(addr->host, ':') != NULL;
    int n = snprintf(buf, size, v6 ? "[%s]:%u" : "%s:%u", addr->host, addr->port);
    if (n < 0 || (size_t)n >= size) {
        return SIDECAR_CONFIG_EINVAL;
    }
    return n;
}

/* ---- the effective values ---------------------------------------------------------- */

typedef struct out {
    char *buf;
    size_t size, len;
    bool cut;
} out_t;

static void out_add(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out_add(out_t *o, const char *fmt, ...)
{
    va_list ap;
    if (o->cut) {
        return;
    }
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->size - o->len) {
        o->cut = true;
        o->len = strlen(o->buf);
    } else {
        o->len += (size_t)n;
    }
}

static void out_addr(out_t *o, const char *host, uint16_t port)
{
    out_add(o, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
}

int sidecar_config_value_format(const sidecar_config_t *cfg, size_t i, char *buf, size_t size)
{
    const setting_t *s = &settings[i];
    const void *src = (const char *)cfg + s->offset;
    out_t o = {.buf = buf, .size = size};
    assert(i < N_SETTINGS);
    if (size == 0) {
        return SIDECAR_CONFIG_EINVAL;
    }
    buf[0] = '\0';
    switch (s->type) {
    case T_META:
        if (strcmp(s->pub.name, "config") != 0) {
            return SIDECAR_CONFIG_EINVAL;
        }
        out_add(&o, "%s", cfg->config_path ? cfg->config_path : "");
        break;
    case T_NAME:
    case T_TOKEN:
    case T_PATH: {
        const char *v = *(char *const *)src;
        if (s->flags & F_SECRET) {
            out_add(&o, "%s", v ? "(set)" : "(unset)");
        } else {
            out_add(&o, "%s", v ? v : "");
        }
        break;
    }
    case T_ADDR: {
        const sidecar_addr_t *a = src;
        if (a->host) {
            out_addr(&o, a->host, a->port);
        }
        break;
    }
    case T_PEERS:
        for (size_t k = 0; k < cfg->n_peers; k++) {
            out_add(&o, "%s%s=", k ? "," : "", cfg->peers[k].name);
            out_addr(&o, cfg->peers[k].host, cfg->peers[k].port);
        }
        break;
    case T_DURATION: {
        char t[32];
        sidecar_format_duration(*(const uint32_t *)src, t, sizeof(t));
        out_add(&o, "%s", t);
        break;
    }
    case T_SIZE: {
        uint32_t b = *(const uint32_t *)src;
        if (b >= KIB && b % KIB == 0) {
            char t[32];
            sidecar_format_size(b, t, sizeof(t));
            out_add(&o, "%s", t);
        } else {
            out_add(&o, "%u", b);
        }
        break;
    }
    case T_COUNT:
        out_add(&o, "%u", *(const uint32_t *)src);
        break;
    case T_FRACTION:
        out_add(&o, "%g", cfg->max_drift);
        break;
    case T_BOOL:
        out_add(&o, "%s", *(const bool *)src ? "true" : "false");
        break;
    case T_ENUM: {
        int v;
        memcpy(&v, src, sizeof(v));
        const char *const *ch = choices_of(s);
        out_add(&o, "%s", v >= 0 && v < 8 && ch[v] ? ch[v] : "?");
        break;
    }
    case T_ARGV: {
        const sidecar_argv_t *a = src;
        for (size_t k = 0; k < a->argc; k++) {
            out_add(&o, "%s%s", k ? " " : "", a->argv[k]);
        }
        break;
    }
    }
    return o.cut ? SIDECAR_CONFIG_EINVAL : (int)o.len;
}

void sidecar_config_log_effective(const sidecar_config_t *cfg)
{
    enum { VALUE_MAX = 256 };
    static char values[N_SETTINGS][VALUE_MAX]; /* ~8 KiB: off the stack; loop thread only */
    sidecar_log_field_t fields[N_SETTINGS];
    size_t n = 0;
    if (!sidecar_log_enabled(SIDECAR_LOG_INFO)) {
        return;
    }
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (settings[i].type == T_META && strcmp(settings[i].pub.name, "config") != 0) {
            continue;
        }
        sidecar_config_value_format(cfg, i, values[n], VALUE_MAX); /* a cut value is fine */
        fields[n] = SIDECAR_LOG_STR(settings[i].pub.name, values[n]);
        n++;
    }
    sidecar_log_fields(SIDECAR_LOG_INFO, "configuration", fields, n);
}

/* ---- --help ------------------------------------------------------------------------- */

void sidecar_config_help(FILE *out)
{
    char env[SIDECAR_CONFIG_ENV_NAME_MAX], flag[96];
    fprintf(out, "Usage: electd [FLAGS] [--exec -- COMMAND [ARGS...]]\n"
                 "\n"
                 "electd runs beside each copy of a workload. The electd processes of all copies\n"
                 "elect one leader; only the leader holding a valid lease runs the workload as\n"
                 "primary.\n"
                 "\n"
                 "Every setting is a flag, an environment variable ELECTD_<NAME> (upper case,\n"
                 "'-' becomes '_') and a key of the JSON file given with --config.\n"
                 "Precedence: flag > environment > config file > default.\n"
                 "Durations take ms, s, m or h (a bare number is ms); sizes take B, KiB, MiB or\n"
                 "GiB (a bare number is bytes); booleans are true, false, 1 or 0 (a bare flag is\n"
                 "true).\n"
                 "\n"
                 "Settings:\n");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting_t *s = &settings[i];
        const char *unit = s->pub.unit;
        if (unit == NULL) {
            snprintf(flag, sizeof(flag), "--%s", s->pub.name);
        } else if (s->type == T_BOOL) {
            snprintf(flag, sizeof(flag), "--%s[=%s]", s->pub.name, unit);
        } else {
            snprintf(flag, sizeof(flag), "--%s %s", s->pub.name, unit);
        }
        if (s->pub.env) {
            sidecar_config_env_name(s->pub.name, env, sizeof(env));
            fprintf(out, "  %-36s env %s", flag, env);
        } else {
            fprintf(out, "  %s", flag);
        }
        if (s->flags & F_REQUIRED) {
            fprintf(out, ", required");
        } else if (s->pub.def && !(s->flags & F_SECRET)) {
            fprintf(out, ", default %s", s->pub.def);
        }
        fprintf(out, "\n      %s\n", s->pub.help);
    }
}

/* ---- self-dial check ------------------------------------------------------------------------- */

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
