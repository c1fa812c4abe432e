/* cli_request.c — one request of the CLI: a fresh connection, the request sent with
 * Connection: close, the reply read with http.h's response parser (every size and wait
 * bounded), and one redirect to the leader the reply names (421 not_leader, 503 store_failed);
 * plus the percent-encoded targets. */
#include <ctype.h>
#include <string.h>

#include "cli_int.h"

#define REQ_HEAD_MAX_BYTES (CLI_TARGET_MAX_BYTES + 1024)
#define RECV_CHUNK_BYTES   16384

const char *cli_strerror(int err)
{
    switch (err) {
#define CLI_ERRNO_TEXT(name, code, text)                                                           \
    case name:                                                                                     \
        return text;
        CLI_ERRORS(CLI_ERRNO_TEXT)
#undef CLI_ERRNO_TEXT
    }
    return "unknown error";
}

void cli_response_clear(cli_response_t *rs)
{
    http_response_close(&rs->parser);
    rs->body = NULL;
    rs->body_len = 0;
    rs->status = 0;
}

/* The request line and headers; CLI_ETOOBIG when they do not fit in head. */
static int format_head(const cli_ctx_t *c, const cli_addr_t *a, const cli_request_t *rq, char *head,
                       size_t size, size_t *len)
{
    char hostport[CLI_HOST_MAX_BYTES + 16];
    cli_addr_format(a, hostport, sizeof(hostport));
    bool ct = rq->content_type != NULL, auth = c->token != NULL;
    int n = snprintf(head, size,
                     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: electd-client\r\n"
                     "Accept: application/json\r\nConnection: close\r\n"
                     "%s%s%s%s%s%s%sContent-Length: %zu\r\n\r\n",
                     rq->method, rq->target, hostport, auth ? "Authorization: Bearer " : "",
                     auth ? c->token : "", auth ? "\r\n" : "", ct ? "Content-Type: " : "",
                     ct ? rq->content_type : "", ct ? "\r\n" : "", rq->headers ? rq->headers : "",
                     rq->body_len);
    if (n < 0 || (size_t)n >= size)
        return CLI_ETOOBIG;
    *len = (size_t)n;
    return 0;
}

static int parser_error(int rc)
{
    if (rc == HTTP_ETOOBIG)
        return CLI_ETOOBIG;
    return rc == HTTP_ENOMEM ? CLI_ENOMEM : CLI_EPROTO;
}

/* Feeds what the connection delivers to the response parser until the reply is complete or
 * the peer closes (a body delimited by the close), within deadline_ms. */
static int read_reply(cli_conn_t *conn, uint64_t deadline_ms, http_response_t *parser)
{
    char buf[RECV_CHUNK_BYTES];
    for (;;) {
        size_t n = 0;
        int rv = cli_conn_recv(conn, buf, sizeof(buf), &n, deadline_ms);
        if (rv != 0)
            return rv;
        if (n == 0) {
            int rc = http_response_finish(parser);
            return rc == 0 ? 0 : parser_error(rc);
        }
        int rc = http_response_feed(parser, buf, n);
        if (rc < 0)
            return parser_error(rc);
        if (rc == 1)
            return 0;
    }
}

/* One request on a fresh connection to a: sends it and reads the whole reply. */
static int request_once(const cli_ctx_t *c, const cli_addr_t *a, const cli_request_t *rq,
                        uint64_t deadline_ms, cli_response_t *rs)
{
    char head[REQ_HEAD_MAX_BYTES];
    size_t head_len;
    memset(rs, 0, sizeof(*rs));
    rs->from = *a;
    cli_conn_t conn = {.fd = -1, .err = rs->err, .err_size = sizeof(rs->err)};
    http_response_open(&rs->parser, CLI_HEAD_MAX_BYTES,
                       rq->body_max ? rq->body_max : CLI_BODY_MAX_BYTES);
    int rv = format_head(c, a, rq, head, sizeof(head), &head_len);
    if (rv == 0)
        rv = cli_conn_open(c, a, deadline_ms, &conn);
    if (rv == 0)
        rv = cli_conn_send(&conn, head, head_len, deadline_ms);
    if (rv == 0 && rq->body_len > 0)
        rv = cli_conn_send(&conn, rq->body, rq->body_len, deadline_ms);
    if (rv == 0)
        rv = read_reply(&conn, deadline_ms, &rs->parser);
    cli_conn_close(&conn);
    if (rv != 0) {
        cli_response_clear(rs);
        return rv;
    }
    rs->status = rs->parser.status;
    rs->body = http_response_body(&rs->parser, &rs->body_len);
    return 0;
}

/* The leader's HTTP address (error.leader.url, or error.leader.http with the scheme we used)
 * from a reply that sends us there: 421 not_leader, or 503 store_failed from a member that
 * cannot use its store but knows who leads (it refuses at once, before doing anything, so
 * asking the leader cannot apply a write twice; a write that failed while waiting gets no
 * error.leader). */
static bool redirect_addr(const cli_response_t *rs, cli_addr_t *a)
{
    if (rs->status != 421 && rs->status != 503)
        return false;
    cJSON *o = cJSON_ParseWithLength(rs->body, rs->body_len);
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(o, "error");
    const char *code = cli_jstr(err, "code");
    const cJSON *leader = cJSON_GetObjectItemCaseSensitive(err, "leader");
    const char *url = cli_jstr(leader, "url"), *http = cli_jstr(leader, "http");
    bool ok = (rs->status == 421 || (code != NULL && strcmp(code, "store_failed") == 0)) &&
              (url != NULL || http != NULL) && cli_addr_parse(url ? url : http, a, NULL, 0) == 0;
    if (ok && url == NULL)
        a->tls = rs->from.tls; /* an older member: same scheme as the one that answered */
    cJSON_Delete(o);
    return ok;
}

/* The path and query of the reply's Location into out, when it is the request's own target
 * with more added (a follower names itself as the owner of an ephemeral PUT it sends on);
 * false otherwise: the request goes to the leader as it was. */
static bool redirect_target(const cli_response_t *rs, const char *target, char *out, size_t cap)
{
    const char *loc = http_response_header(&rs->parser, "Location");
    const char *p = loc != NULL ? strstr(loc, "://") : NULL;
    p = p != NULL ? strchr(p + 3, '/') : NULL;
    if (p == NULL || strlen(p) >= cap || strncmp(p, target, strlen(target)) != 0)
        return false;
    memcpy(out, p, strlen(p) + 1);
    return true;
}

/* What to do about the commonest TLS failures, or "". */
static const char *tls_hint(const cli_ctx_t *c, const char *err)
{
    if (strstr(err, "certificate required") != NULL && c->cert == NULL)
        return " (the server wants a client certificate: --cert and --key)";
    if (strstr(err, "unable to get local issuer") != NULL && c->cacert == NULL)
        return " (name the server's CA with --cacert)";
    return "";
}

int cli_call_at(const cli_ctx_t *c, const cli_addr_t *a, const cli_request_t *rq,
                uint64_t deadline_ms, cli_response_t *rs)
{
    int rv = request_once(c, a, rq, deadline_ms, rs);
    cli_addr_t leader;
    if (rv == 0 && redirect_addr(rs, &leader)) {
        char target[CLI_TARGET_MAX_BYTES + 128];
        cli_request_t again = *rq;
        if (redirect_target(rs, rq->target, target, sizeof(target)))
            again.target = target;
        cli_response_clear(rs);
        rv = request_once(c, &leader, &again, deadline_ms, rs);
        a = &leader;
    }
    if (rv != 0) {
        char where[CLI_HOST_MAX_BYTES + 16];
        cli_addr_format(a, where, sizeof(where));
        const char *scheme = a->tls ? "https://" : "";
        if (rv == CLI_ETIMEOUT)
            cli_fail(c, "%s %s: timed out waiting for %s%s", rq->method, rq->target, scheme, where);
        else if (rv == CLI_ETLS)
            cli_fail(c, "%s%s: TLS failed: %s%s", scheme, where, rs->err, tls_hint(c, rs->err));
        else if (rv == CLI_ETLSFILE)
            cli_fail(c, "cannot load --cacert, --cert or --key: %s", rs->err);
        else
            cli_fail(c, "%s%s: %s", scheme, where, cli_strerror(rv));
    }
    return rv;
}

int cli_call(const cli_ctx_t *c, const cli_request_t *rq, cli_response_t *rs)
{
    return cli_call_at(c, &c->addr, rq, c->deadline_ms, rs);
}

int cli_get_json(const cli_ctx_t *c, const cli_addr_t *a, const char *target, uint64_t deadline_ms,
                 cli_response_t *rs, cJSON **out)
{
    cli_request_t rq = {.method = "GET", .target = target};
    *out = NULL;
    if (cli_call_at(c, a, &rq, deadline_ms, rs) != 0)
        return SIDECAR_CLIENT_ERROR;
    if (rs->status != 200) {
        int code = cli_report_error(c, rs);
        cli_response_clear(rs);
        return code;
    }
    if ((*out = cli_parse_ok(c, rs)) == NULL) {
        cli_response_clear(rs);
        return SIDECAR_CLIENT_ERROR;
    }
    return SIDECAR_CLIENT_OK;
}

bool cli_target_encode(char *out, size_t cap, size_t *off, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~' ||
            (keep_slash && ch == '/')) {
            if (*off + 1 >= cap)
                return false;
            out[(*off)++] = (char)ch;
        } else {
            if (*off + 3 >= cap)
                return false;
            out[(*off)++] = '%';
            out[(*off)++] = hex[ch >> 4];
            out[(*off)++] = hex[ch & 15];
        }
    }
    out[*off] = '\0';
    return true;
}

bool cli_target_append(char *out, size_t cap, size_t *off, const char *s)
{
    size_t n = strlen(s);
    if (*off + n >= cap)
        return false;
    memcpy(out + *off, s, n + 1);
    *off += n;
    return true;
}
