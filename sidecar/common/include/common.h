/* common.h — what every part of the daemon uses: the event log (eventlog.c), histograms and
 * the Prometheus text writer (histogram.c), SHA-256/HMAC for the peer handshake (crypto.c),
 * the boot-time clock of every lease deadline (clock.c), the TLS contexts re-read on SIGHUP
 * (reload.c), and the one parser of each kind of value that config and the CLI share
 * (parse.c). The whole interface of sidecar/common/. */
#ifndef ELECTD_SIDECAR_COMMON_H
#define ELECTD_SIDECAR_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef OPENSSL_API_COMPAT
#define OPENSSL_API_COMPAT 0x10100000L /* see crypto.c: the low-level SHA-256 costs no RSS */
#endif
#include <openssl/sha.h>

/* ---- the event log (eventlog.c) ------------------------------------------------------------ */

/* The event log: one line per event, as text or JSON, on stderr (or any fd).
 *
 * Every line carries the time (UTC, ms), the level, the node name, the current term and role,
 * a message and any number of typed key/value fields:
 *
 *   text: 2026-11-22T01:02:03.456Z INFO node=a term=3 role=leader msg="elected" votes=2
 *   json: {"ts":"2026-11-22T01:02:03.456Z","level":"info","node":"a","term":3,
 *          "role":"leader","msg":"elected","votes":2}
 *
 * A line is at most SIDECAR_LOG_LINE_MAX bytes, built on the stack (no allocation) and
 * written with one write(2), so lines from several writers never interleave on a pipe
 * (PIPE_BUF is 4096 on Linux). A longer line is cut and marked `truncated=true` (text) or
 * `"truncated":true` (JSON, which stays valid). Every string is escaped: control characters
 * and, in JSON, invalid UTF-8 bytes (as \ufffd) — log lines carry outside data (hook output,
 * peer names, HTTP paths). Values equal to a registered secret are never printed.
 *
 * In JSON every line is one object whose keys are unique: a field that reuses a key of the
 * line (a header key or an earlier field's) is renamed `<key>_<position>`, or dropped when
 * even that name is taken. Node ids (SIDECAR_LOG_ID) are written as the API writes them: 16
 * lowercase hex digits, a string in JSON (a 64-bit integer is beyond what JSON readers such
 * as jq keep exactly).
 *
 * Another program's output is logged through the same writer, one record per line
 * (sidecar_log_output): the exec shim wraps the workload's stdout and stderr this way in
 * JSON mode, and the shim's own lines carry "src":"shim" (sidecar_log_set_source).
 *
 * The logger is process-wide state, meant to be used from the event-loop thread.
 */

#define SIDECAR_LOG_LINE_MAX    4096 /* bytes of one line, newline included */
#define SIDECAR_LOG_NODE_MAX    64   /* bytes of the node name kept, NUL included */
#define SIDECAR_LOG_SECRETS_MAX 4    /* secrets that sidecar_log_add_secret can register */
#define SIDECAR_LOG_SECRET_MAX  256  /* bytes of one secret */

/* Order matters: filtering keeps lines whose level >= the configured one. The names are the
 * values of --log-level. */
typedef enum sidecar_log_level {
    SIDECAR_LOG_DEBUG = 0,
    SIDECAR_LOG_INFO = 1,
    SIDECAR_LOG_WARN = 2,
    SIDECAR_LOG_ERROR = 3,
} sidecar_log_level_t;

/* The values of --log-format, in this order. */
typedef enum sidecar_log_format {
    SIDECAR_LOG_TEXT = 0,
    SIDECAR_LOG_JSON = 1,
} sidecar_log_format_t;

/* Called for every line to get the current term and role (role: static or long-lived
 * string, e.g. "leader"; NULL means "unknown"). Must not log. */
typedef void (*sidecar_log_state_cb)(void *ud, uint64_t *term, const char **role);

/* (Re)configures the logger (at start, and again on a SIGHUP reload). fd is borrowed (2 for
 * stderr). node is copied (cut to SIDECAR_LOG_NODE_MAX - 1 bytes); NULL means none yet. Before the
 * first call the logger writes text at level info to fd 2. Keeps the state callback and secrets. */
void sidecar_log_init(sidecar_log_level_t level, sidecar_log_format_t format, int fd,
                      const char *node);

/* Sets the source of term/role (replaces sidecar_log_set_state's values); cb NULL clears. */
void sidecar_log_set_state_cb(sidecar_log_state_cb cb, void *ud);
/* Sets term/role directly, for callers without a callback. role is borrowed (static). */
void sidecar_log_set_state(uint64_t term, const char *role);

/* Registers a string that must never appear in a log line (the cluster token, the HTTP
 * token): any occurrence in a message or string value is replaced by "[redacted]". The
 * string is copied. Returns 0, or -1 for an empty string, one longer than
 * SIDECAR_LOG_SECRET_MAX bytes or a registration beyond SIDECAR_LOG_SECRETS_MAX. */
int sidecar_log_add_secret(const char *secret);
/* Replaces the registered secret equal to `old` by `secret` (a credential that rotates), or
 * registers `secret` when `old` is NULL or not registered. Same limits and result as
 * sidecar_log_add_secret. */
int sidecar_log_replace_secret(const char *old, const char *secret);
/* Forgets every registered secret (tests). */
void sidecar_log_clear_secrets(void);

/* The format lines are written in now (a SIGHUP reload may change it): what a workload's
 * output wrapped by the shim must match. */
sidecar_log_format_t sidecar_log_current_format(void);

/* true when a line at this level would be written: lets callers skip costly formatting. */
bool sidecar_log_enabled(sidecar_log_level_t level);

/* Lines that could not be written (write error); for metrics. */
uint64_t sidecar_log_dropped(void);

const char *sidecar_log_level_name(sidecar_log_level_t level); /* "info" */

/* Names the program writing when it is not electd's node (the exec shim: "shim"): its lines
 * then carry "src":src in place of term and role. NULL (the default) restores electd's own
 * header. src is borrowed and must outlive its use (a string literal). */
void sidecar_log_set_source(const char *src);

/* Writes one record of another program's output to fd (-1: the log's own) at info level,
 * whatever the threshold:
 *
 *   json: {"ts":…,"level":"info","node":"a","src":"workload","stream":"stdout","line":"…"}
 *   text: 2026-…Z INFO node=a src=workload stream=stdout line="…"
 *
 * s[0..n) is the line without its newline. Bytes that are not UTF-8 become U+FFFD in JSON
 * (\xNN in text). A line whose escaped form does not fit SIDECAR_LOG_LINE_MAX is cut between
 * two characters: the record then carries "partial":true and the return value says how many
 * bytes of s it holds, so the caller writes the rest as further records; ends false (the
 * line has no newline yet, e.g. at the program's exit) marks it partial too. Returns the
 * bytes of s written (at least 1 when n > 0). */
size_t sidecar_log_output(int fd, const char *src, const char *stream, const char *s, size_t n,
                          bool ends);

/* ---- writing lines ------------------------------------------------------------------ */

typedef enum sidecar_log_field_type {
    SIDECAR_LOG_FIELD_END = 0, /* marks an unused slot; skipped */
    SIDECAR_LOG_FIELD_STR,
    SIDECAR_LOG_FIELD_INT,
    SIDECAR_LOG_FIELD_UINT,
    SIDECAR_LOG_FIELD_DOUBLE,
    SIDECAR_LOG_FIELD_BOOL,
    SIDECAR_LOG_FIELD_ID, /* a node id: 16 hex digits, a string in JSON (the API's form) */
} sidecar_log_field_type_t;

/* One key/value. Keys should be [a-z0-9_]; anything else but '.' and '-' is replaced by
 * '_'. The keys a line's header may have (ts, level, node, term, role, src, msg,
 * truncated) should not be reused: such a field is renamed (see above). */
typedef struct sidecar_log_field {
    const char *key;
    sidecar_log_field_type_t type;
    union {
        const char *s; /* NULL prints as an empty string */
        int64_t i;
        uint64_t u;
        double d;
        bool b;
    } v;
} sidecar_log_field_t;

#define SIDECAR_LOG_STR(k, x)                                                                      \
    ((sidecar_log_field_t){.key = (k), .type = SIDECAR_LOG_FIELD_STR, .v.s = (x)})
#define SIDECAR_LOG_INT(k, x)                                                                      \
    ((sidecar_log_field_t){.key = (k), .type = SIDECAR_LOG_FIELD_INT, .v.i = (int64_t)(x)})
#define SIDECAR_LOG_UINT(k, x)                                                                     \
    ((sidecar_log_field_t){.key = (k), .type = SIDECAR_LOG_FIELD_UINT, .v.u = (uint64_t)(x)})
#define SIDECAR_LOG_DOUBLE(k, x)                                                                   \
    ((sidecar_log_field_t){.key = (k), .type = SIDECAR_LOG_FIELD_DOUBLE, .v.d = (double)(x)})
#define SIDECAR_LOG_BOOL(k, x)                                                                     \
    ((sidecar_log_field_t){.key = (k), .type = SIDECAR_LOG_FIELD_BOOL, .v.b = (x)})
#define SIDECAR_LOG_ID(k, x)                                                                       \
    ((sidecar_log_field_t){.key = (k), .type = SIDECAR_LOG_FIELD_ID, .v.u = (uint64_t)(x)})

/* Writes one line: msg plus n fields. Strings are borrowed for the call only. */
void sidecar_log_fields(sidecar_log_level_t level, const char *msg,
                        const sidecar_log_field_t *fields, size_t n);

/* Writes one line whose message is printf-formatted (no fields). */
void sidecar_logf(sidecar_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The usual way to log: SIDECAR_LOG(SIDECAR_LOG_INFO, "elected", SIDECAR_LOG_UINT("votes", 2),
 * SIDECAR_LOG_STR("peer", name)). The array starts with an END slot so that the field list
 * may be empty. */
#define SIDECAR_LOG(level, msg, ...)                                                               \
    sidecar_log_fields(                                                                            \
        (level), (msg),                                                                            \
        (const sidecar_log_field_t[]){{.type = SIDECAR_LOG_FIELD_END}, __VA_ARGS__},               \
        sizeof((const sidecar_log_field_t[]){{.type = SIDECAR_LOG_FIELD_END}, __VA_ARGS__}) /      \
            sizeof(sidecar_log_field_t))

/* ---- histograms and Prometheus text (histogram.c) --------------------------------------- */

/* histogram.c — histograms and a Prometheus text-format (0.0.4) writer for GET /metrics. */

#define SIDECAR_HIST_BUCKETS 11 /* finite upper bounds; +Inf is implied */

/* Durations in seconds: 5 ms .. 30 s. */
typedef struct sidecar_hist {
    uint64_t buckets[SIDECAR_HIST_BUCKETS]; /* observations <= bound i (not cumulative) */
    uint64_t count;
    double sum;
} sidecar_hist_t;

void sidecar_hist_init(sidecar_hist_t *h);
void sidecar_hist_observe(sidecar_hist_t *h, double seconds);

/* A growable text buffer; on allocation failure it stops growing and sets failed. */
typedef struct sidecar_buf {
    char *data;
    size_t len, cap;
    int failed;
} sidecar_buf_t;

void sidecar_buf_printf(sidecar_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included; control characters, quotes and
 * backslashes escaped (bytes >= 0x80 pass through: callers hand in UTF-8). */
void sidecar_buf_json_str(sidecar_buf_t *b, const char *s);
/* "# HELP" and "# TYPE" lines. */
void sidecar_metrics_header(sidecar_buf_t *b, const char *name, const char *type, const char *help);
/* A histogram family (header included); labels may be NULL or e.g. "hook=\"on-start\"". */
void sidecar_metrics_hist(sidecar_buf_t *b, const char *name, const char *labels,
                          const sidecar_hist_t *h);
/* Writes s as a label value: backslash, quote and newline escaped. */
void sidecar_metrics_label(sidecar_buf_t *b, const char *s);
void sidecar_buf_free(sidecar_buf_t *b);

/* ---- SHA-256 and HMAC (crypto.c) ------------------------------------------------------------ */

/* crypto.c — SHA-256 (libcrypto) and HMAC-SHA256 (RFC 2104), for the peer handshake's proof
 * of the shared cluster token. */

#define SIDECAR_SHA256_LEN 32

typedef struct sidecar_sha256 {
    SHA256_CTX ctx;
} sidecar_sha256_t;

void sidecar_sha256_init(sidecar_sha256_t *s);
void sidecar_sha256_update(sidecar_sha256_t *s, const void *data, size_t len);
void sidecar_sha256_final(sidecar_sha256_t *s, uint8_t out[SIDECAR_SHA256_LEN]);

void sidecar_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                         uint8_t out[SIDECAR_SHA256_LEN]);

/* 1 when a and b (len bytes) are equal; the time taken does not depend on where they differ. */
int sidecar_mem_equal(const void *a, const void *b, size_t len);

/* ---- certificates re-read on SIGHUP (reload.c) --------------------------------------------- */

#define SIDECAR_RELOAD_MAX       8  /* TLS contexts that can be registered */
#define SIDECAR_RELOAD_LABEL_MAX 16 /* bytes of a label, NUL included */

struct tls_ctx; /* tls.h */

/* Registers a TLS context whose files electd's SIGHUP handler re-reads (tls_ctx_reload):
 * `what` labels it in the log line "reload: certificates re-read (peer: ok, http: ok)"
 * ("peer", "http", ...; copied; several contexts may share a label). Call on the loop's
 * thread, and sidecar_reload_unregister() before tls_ctx_close(). Returns 0, or -1 when the
 * label is too long or SIDECAR_RELOAD_MAX contexts are registered already. */
int sidecar_reload_register(const char *what, struct tls_ctx *ctx);
/* Forgets ctx (no-op when it is not registered, or NULL). */
void sidecar_reload_unregister(struct tls_ctx *ctx);
/* Re-reads every registered context. A file that fails to load is refused and logged (the
 * label and OpenSSL's reason); that context keeps its previous files. `summary` gets
 * "peer: ok, http: refused" (one entry per label; "no TLS configured" when none is
 * registered). Returns the number of contexts refused. */
int sidecar_reload_run(char *summary, size_t len);

/* ---- the boot-time clock (clock.c) ------------------------------------------------------------
 */

/* Nanoseconds of CLOCK_BOOTTIME: the clock of every lease deadline (the Raft driver's ticks,
 * the workload controller, the shim's watchdog). It keeps counting while the host is suspended,
 * unlike CLOCK_MONOTONIC and uv_hrtime(), which libuv's timers use: those only schedule
 * wake-ups; every deadline is computed and compared on this clock. */
uint64_t sidecar_clock_boot_ns(void);

/* ---- memory (memtrim.c) ------------------------------------------------------------------ */

/* Hands back the resident pages of every loaded object's code and constants (start-up runs
 * much code once: the configuration, the store's checks, SQLite's schema); what runs later
 * faults back in, a page at a time. Costs nothing but those faults; safe at any time. */
void sidecar_trim_code(void);

/* ---- values (parse.c): one parser of each kind, for flags, environment, file and CLI -----
 * Each returns 0 and the value, or SIDECAR_PARSE_ESYNTAX (not that kind of value) or
 * SIDECAR_PARSE_ERANGE (the number does not fit). Range checks against a setting's bounds stay
 * with the caller. No sign, no spaces, no fractions: "1.5s" and "-1" are refused. */

enum { SIDECAR_PARSE_ESYNTAX = -1, SIDECAR_PARSE_ERANGE = -2 };

#define SIDECAR_NAME_MAX 63  /* member (and election) names */
#define SIDECAR_HOST_MAX 253 /* a host name (RFC 1035) */

/* A duration: a whole number with a unit, ms, s, m (minutes) or h; a bare number is
 * milliseconds. "1m" = 60000, "250ms" = 250, "2h" = 7200000. */
int sidecar_parse_duration_ms(const char *text, uint64_t *ms);

/* A size: a whole number with B, KiB, MiB or GiB; a bare number is bytes. */
int sidecar_parse_size_bytes(const char *text, uint64_t *bytes);

/* A whole number: decimal digits only. */
int sidecar_parse_count(const char *text, uint64_t *n);

/* A fraction: a plain decimal number, "0.05", ".5", "5e-2" (the only kind with a point). No
 * sign, hex, inf or nan; ERANGE when it overflows a double. */
int sidecar_parse_fraction(const char *text, double *out);

/* A boolean: true, false, 1 or 0 (exactly). */
int sidecar_parse_bool(const char *text, bool *out);

/* A member name: 1-SIDECAR_NAME_MAX letters, digits, '.', '_' or '-', starting with a letter
 * or digit. */
bool sidecar_parse_name_valid(const char *name);

/* "host:port" (host a name or an IPv4 address) or "[IPv6]:port". A bare IPv6 literal is
 * ambiguous and refused. Port 1-65535, or 0 too when port0_ok. host gets the host without
 * brackets. On error, why (if not NULL) gets a phrase for the user. */
int sidecar_parse_hostport(const char *text, bool port0_ok, char *host, size_t host_size,
                           uint16_t *port, char *why, size_t why_size);

/* The shortest exact form in the largest unit: 7200000 -> "2h", 1500 -> "1500ms". */
void sidecar_format_duration(uint64_t ms, char *buf, size_t size);
/* 1048576 -> "1MiB", 1000 -> "1000 bytes". */
void sidecar_format_size(uint64_t bytes, char *buf, size_t size);

#endif
