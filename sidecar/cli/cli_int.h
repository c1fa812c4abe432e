/* cli_int.h — private to the files of sidecar/cli/: the limits, the command's context, one
 * request and its reply, and what each file offers the others.
 *
 *   cli.c          the entry points of cli.h: parse, then run the subcommand
 *   cli_args.c     subcommands and options: the usage table, --help, argv into a context
 *   cli_socket.c   the clock and deadlines, host:port addresses, connecting to each address
 *   cli_tls.c      a connection: plain, or HTTPS through a tls.h session over the socket
 *   cli_request.c  one request over a fresh connection, its reply read with http.h's
 *                  response parser, one redirect to the leader, request targets
 *   cli_output.c   what the user sees: errors, JSON as is, tables, escaped text
 *   cli_status.c, cli_leader.c (leader, transfer), cli_kv.c, cli_members.c, cli_elections.c,
 *   cli_maintenance.c,
 *   cli_backup.c:
 *                  the subcommands */
#ifndef ELECTD_SIDECAR_CLI_INT_H
#define ELECTD_SIDECAR_CLI_INT_H

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "common.h"
#include "http.h"
#include "tls.h"

/* ---- limits and defaults --------------------------------------------------------------------- */

#define CLI_DEFAULT_HTTP       "127.0.0.1:7480"
#define CLI_DEFAULT_TIMEOUT_MS 10000u
#define CLI_DEFAULT_WAIT_MS    30000u
#define CLI_DURATION_MAX_MS    (24u * 3600u * 1000u) /* --timeout and --wait: 1 ms .. 24 h */
#define CLI_BODY_MAX_BYTES     (4u << 20)            /* a reply's body */
#define CLI_HEAD_MAX_BYTES     (64u << 10)           /* a reply's header names and values */
#define CLI_STDIN_MAX_BYTES    (1u << 20) /* `kv put KEY -`; the server has its own, lower limit */
#define CLI_TARGET_MAX_BYTES   2048       /* the server refuses longer request targets (414) */
#define CLI_HOST_MAX_BYTES     (SIDECAR_HOST_MAX + 1)
#define CLI_CONNECT_SHARE_MS   1000 /* connecting to one address while more remain to be tried */
#define CLI_POLL_INTERVAL_MS                                                                       \
    100 /* fallback polling of /v1/leader when a long poll returns early                           \
         */

/* ---- errors of the transport (cli_socket.c, cli_request.c) ----------------------------------- */

#define CLI_ERRORS(X)                                                                              \
    X(CLI_EADDR, -1, "bad address (expected HOST:PORT or [IPv6]:PORT)")                            \
    X(CLI_ERESOLVE, -2, "cannot resolve host")                                                     \
    X(CLI_ECONNREFUSED, -3, "connection refused (is electd running there?)")                       \
    X(CLI_ECONNECT, -4, "cannot connect")                                                          \
    X(CLI_ETIMEOUT, -5, "timed out")                                                               \
    X(CLI_EIO, -6, "I/O error")                                                                    \
    X(CLI_ETOOBIG, -7, "reply too large")                                                          \
    X(CLI_EPROTO, -8, "malformed HTTP reply")                                                      \
    X(CLI_ENOMEM, -9, "out of memory")                                                             \
    X(CLI_ETLS, -10, "TLS failed")                                                                 \
    X(CLI_ETLSFILE, -11, "cannot load --cacert, --cert or --key")

enum {
#define CLI_ERRNO_ENUM(name, code, text) name = code,
    CLI_ERRORS(CLI_ERRNO_ENUM)
#undef CLI_ERRNO_ENUM
};

const char *cli_strerror(int err);

/* ---- the command ----------------------------------------------------------------------------- */

typedef enum cli_cmd {
    CLI_CMD_NONE,
    CLI_CMD_HELP,
    CLI_CMD_STATUS,
    CLI_CMD_LEADER,
    CLI_CMD_TRANSFER,
    CLI_CMD_KV_GET,
    CLI_CMD_KV_PUT,
    CLI_CMD_KV_DEL,
    CLI_CMD_KV_LS,
    CLI_CMD_KV_WATCH,
    CLI_CMD_MEMBERS_LIST,
    CLI_CMD_MEMBERS_ADD,
    CLI_CMD_MEMBERS_REMOVE,
    CLI_CMD_ELECTIONS_LIST,
    CLI_CMD_ELECTIONS_TRANSFER,
    CLI_CMD_BACKUP,
    CLI_CMD_MAINTENANCE_SHOW,
    CLI_CMD_MAINTENANCE_ON,
    CLI_CMD_MAINTENANCE_OFF,
    CLI_CMD_COUNT
} cli_cmd_t;

typedef struct cli_addr {
    char host[CLI_HOST_MAX_BYTES]; /* without the brackets of an IPv6 literal */
    char port[8];
    bool v6;  /* host holds a ':' and needs brackets in Host headers */
    bool tls; /* https:// */
} cli_addr_t;

typedef struct cli_ctx {
    cli_cmd_t cmd;
    const char *prog; /* "electd kv put", for messages */
    char prog_buf[64];
    cli_addr_t addr;
    const char *token;
    const char *cacert, *cert, *key; /* HTTPS: PEM files, like curl's options; NULL unset */
    bool insecure;                   /* HTTPS without verifying the server (curl -k) */
    bool json, stale, raw, wait, ephemeral;
    uint32_t timeout_ms, wait_ms;
    const char *to, *fence, *election, *if_match;
    const char *prefix, *from; /* kv watch */
    const char *reason;        /* maintenance on */
    const char *pos[4];        /* positional arguments after the (sub)command */
    int npos;
    uint64_t deadline_ms; /* of the whole command */
} cli_ctx_t;

typedef struct cli_request {
    const char *method;
    const char *target; /* path and query, already percent-encoded */
    const char *body;
    size_t body_len;
    const char *content_type;
    const char *headers; /* extra "Name: value\r\n" lines, or NULL */
    size_t body_max;     /* bytes of the reply's body at most (0: CLI_BODY_MAX_BYTES) */
} cli_request_t;

typedef struct cli_response {
    int status;
    const char *body; /* NUL-terminated at body_len; owned by parser */
    size_t body_len;
    cli_addr_t from; /* who answered (after a redirect: the leader) */
    http_response_t parser;
    char err[TLS_ERROR_TEXT_MAX + 128]; /* why TLS failed (CLI_ETLS, CLI_ETLSFILE) */
} cli_response_t;

/* ---- cli_args.c ------------------------------------------------------------------------------ */

/* Fills c from argv and the environment. Returns true when c->cmd is to run; otherwise help
 * or a usage error has been printed and *exit_code is set. */
bool cli_args_parse(cli_ctx_t *c, int argc, char **argv, int *exit_code);

/* ---- cli_socket.c ---------------------------------------------------------------------------- */

uint64_t cli_now_ms(void);
int cli_remaining_ms(uint64_t deadline_ms); /* 0 once passed */
void cli_sleep_ms(uint64_t ms);

/* "host:port" or "[IPv6]:port" (sidecar_parse_hostport), optionally after "http://" or
 * "https://" (a->tls) and before one "/"; why gets a phrase on error. */
int cli_addr_parse(const char *text, cli_addr_t *a, char *why, size_t why_size);
void cli_addr_format(const cli_addr_t *a, char *buf, size_t size);

/* A connected non-blocking socket to one of the addresses a resolves to, tried in order; each
 * but the last gets at most CLI_CONNECT_SHARE_MS of the time left. */
int cli_connect(const cli_addr_t *a, uint64_t deadline_ms, int *fd_out);
int cli_send_all(int fd, const char *p, size_t n, uint64_t deadline_ms);
/* Waits until fd is readable: 0, CLI_ETIMEOUT or CLI_EIO. */
int cli_wait_readable(int fd, uint64_t deadline_ms);

/* ---- cli_tls.c ------------------------------------------------------------------------------- */

/* One connection; err (err_size bytes) receives why TLS failed. */
typedef struct cli_conn {
    int fd;
    tls_session_t *tls; /* NULL: plain HTTP */
    char *err;
    size_t err_size;
} cli_conn_t;

/* Connects to a and, for https://, completes the TLS handshake (the server's certificate
 * checked against --cacert, or the system's trust store, and the host's name). Errors: as
 * cli_connect, CLI_ETLS, CLI_ETLSFILE; cli_conn_close() in every case. */
int cli_conn_open(const cli_ctx_t *c, const cli_addr_t *a, uint64_t deadline_ms, cli_conn_t *conn);
int cli_conn_send(cli_conn_t *conn, const char *p, size_t n, uint64_t deadline_ms);
/* Up to cap bytes of the reply into buf; *n == 0 once the server has closed. */
int cli_conn_recv(cli_conn_t *conn, char *buf, size_t cap, size_t *n, uint64_t deadline_ms);
void cli_conn_close(cli_conn_t *conn);
/* Frees the client context (at exit). */
void cli_tls_close(void);

/* ---- cli_request.c --------------------------------------------------------------------------- */

/* Sends rq to a; on 421 not_leader, or 503 store_failed naming the leader, once more to the
 * leader named. Any reply counts as success here (the caller judges the status); errors are
 * transport errors, already reported on stderr. */
int cli_call_at(const cli_ctx_t *c, const cli_addr_t *a, const cli_request_t *rq,
                uint64_t deadline_ms, cli_response_t *rs);
/* cli_call_at on --http within the command's deadline. */
int cli_call(const cli_ctx_t *c, const cli_request_t *rq, cli_response_t *rs);
/* GET target on a; the parsed 200 JSON object in *out. Returns an exit code; on success the
 * caller clears rs and deletes *out. */
int cli_get_json(const cli_ctx_t *c, const cli_addr_t *a, const char *target, uint64_t deadline_ms,
                 cli_response_t *rs, cJSON **out);
void cli_response_clear(cli_response_t *rs);

/* Appends s to the target out (cap bytes, *off used); false when it does not fit. */
bool cli_target_append(char *out, size_t cap, size_t *off, const char *s);
/* Appends s percent-encoded; '/' stays as is when keep_slash (keys are paths). */
bool cli_target_encode(char *out, size_t cap, size_t *off, const char *s, bool keep_slash);

/* ---- cli_output.c ---------------------------------------------------------------------------- */

/* "PROG: message" on stderr. */
void cli_fail(const cli_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_vfail(const cli_ctx_t *c, const char *fmt, va_list ap);
const char *cli_jstr(const cJSON *o, const char *key); /* a string member, or NULL */
/* A JSON number as text ("-" when absent), without a decimal point for integers. */
const char *cli_jnum(const cJSON *o, const char *key, char *buf, size_t size);
void cli_print_json_body(const cli_response_t *rs);
/* A non-2xx reply: the server's error on stderr (its JSON on stdout with --json). Returns the
 * exit code: 1 for 404 and 409, else 2. */
int cli_report_error(const cli_ctx_t *c, const cli_response_t *rs);
/* Parses a 2xx JSON body; reports and returns NULL when it is not JSON. */
cJSON *cli_parse_ok(const cli_ctx_t *c, const cli_response_t *rs);
/* The usual handling of a reply: a status other than ok_status (0: any 2xx) reported, the body
 * printed as is with --json, or one that is not JSON reported: NULL, *code the exit code. Else
 * the parsed body for the caller to print and delete (*code OK). */
cJSON *cli_reply_object(const cli_ctx_t *c, const cli_response_t *rs, int ok_status, int *code);
/* Prints s with control bytes escaped (\n, \t, \\, \xHH); after max_shown characters, "...". */
void cli_print_escaped(const char *s, size_t max_shown);

#define CLI_TABLE_MAX_ROWS   34 /* 32 members (the server allows 16) and a header */
#define CLI_TABLE_MAX_COLS   7
#define CLI_TABLE_CELL_BYTES 96

/* A small left-aligned table: a header row, then data rows, two spaces between columns. */
typedef struct cli_table {
    char cells[CLI_TABLE_MAX_ROWS][CLI_TABLE_MAX_COLS][CLI_TABLE_CELL_BYTES];
    int rows, cols;
} cli_table_t;

void cli_table_init(cli_table_t *t, int cols);
void cli_table_row(cli_table_t *t, ...); /* cols strings; NULL prints "-" */
void cli_table_print(const cli_table_t *t);

/* ---- the subcommands: each returns an exit code ---------------------------------------------- */

int cli_status(cli_ctx_t *c);   /* cli_status.c */
int cli_leader(cli_ctx_t *c);   /* cli_leader.c */
int cli_transfer(cli_ctx_t *c); /* cli_leader.c */
int cli_kv_get(cli_ctx_t *c);   /* cli_kv.c */
int cli_kv_write(cli_ctx_t *c); /* cli_kv.c: put or del */
int cli_kv_ls(cli_ctx_t *c);    /* cli_kv.c */
int cli_kv_watch(cli_ctx_t *c); /* cli_kv_watch.c */
/* cli_kv.c: one key and its value on one line, both escaped (keys that are not UTF-8 as
 * \xNN), the value cut after max_shown bytes; a binary value as its size; the key alone when
 * max_shown is 0. */
void cli_kv_print_line(const cJSON *item, size_t max_shown);
int cli_members(cli_ctx_t *c);     /* cli_members.c: list, add, remove */
int cli_elections(cli_ctx_t *c);   /* cli_elections.c: list, transfer */
int cli_backup(cli_ctx_t *c);      /* cli_backup.c */
int cli_maintenance(cli_ctx_t *c); /* cli_maintenance.c: show, on, off */
/* "maintenance ON since ...: reason" or "maintenance off", from /v1/maintenance's object. */
void cli_maintenance_print(const cJSON *m);

#endif
