/* cli.c — the `electd status|leader|transfer|kv|members|help` subcommands (see client.h):
 * argument parsing, a small blocking HTTP/1.1 client (one connection per request, Connection:
 * close, every size and wait bounded), one 421 redirect to the leader, and the human output. */
#include <assert.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* ---- limits and defaults --------------------------------------------------------------------- */

#define DEFAULT_HTTP       "127.0.0.1:7480"
#define DEFAULT_TIMEOUT_MS 10000u
#define DEFAULT_WAIT_MS    30000u
#define DURATION_MAX_MS    (24u * 3600u * 1000u)
#define RESP_MAX_BYTES     (4u << 20) /* a whole reply, headers included */
#define HEAD_MAX_BYTES     (64u << 10)
#define STDIN_MAX_BYTES    (1u << 20) /* `kv put KEY -`; the server has its own, lower limit */
#define TARGET_MAX_BYTES   2048       /* the server refuses longer request targets (414) */
#define HOST_MAX_BYTES     256
#define REQ_HEAD_MAX_BYTES (TARGET_MAX_BYTES + 1024)
#define POLL_INTERVAL_MS   100 /* fallback polling of /v1/leader when a long poll returns early */
#define LIST_MAX_PAGES     100 /* `kv ls`: at most this many pages of 1000 keys */
#define LS_VALUE_MAX_SHOWN 60  /* `kv ls`: bytes of each value shown before "..." */
#define TABLE_MAX_ROWS     34  /* 32 members (the server allows 16) and a header */
#define TABLE_MAX_COLS     7
#define TABLE_CELL_BYTES   96

/* ---- errors ---------------------------------------------------------------------------------- */

#define CLIENT_ERRORS(X)                                                                           \
    X(CLIENT_EADDR, -1, "bad address (expected HOST:PORT or [IPv6]:PORT)")                         \
    X(CLIENT_ERESOLVE, -2, "cannot resolve host")                                                  \
    X(CLIENT_ECONNREFUSED, -3, "connection refused (is electd running there?)")                    \
    X(CLIENT_ECONNECT, -4, "cannot connect")                                                       \
    X(CLIENT_ETIMEOUT, -5, "timed out")                                                            \
    X(CLIENT_EIO, -6, "I/O error")                                                                 \
    X(CLIENT_ETOOBIG, -7, "reply too large")                                                       \
    X(CLIENT_EPROTO, -8, "malformed HTTP reply")                                                   \
    X(CLIENT_ENOMEM, -9, "out of memory")

enum {
#define X(name, code, text) name = code,
    CLIENT_ERRORS(X)
#undef X
};

static const char *client_strerror(int err)
{
    switch (err) {
#define X(name, code, text)                                                                        \
    case name:                                                                                     \
        return text;
        CLIENT_ERRORS(X)
#undef X
    }
    return "unknown error";
}

/* ---- types ----------------------------------------------------------------------------------- */

typedef enum cmd {
    CMD_NONE,
    CMD_HELP,
    CMD_STATUS,
    CMD_LEADER,
    CMD_TRANSFER,
    CMD_KV_GET,
    CMD_KV_PUT,
    CMD_KV_DEL,
    CMD_KV_LS,
    CMD_MEMBERS_LIST,
    CMD_MEMBERS_ADD,
    CMD_MEMBERS_REMOVE,
    CMD_COUNT
} cmd_t;

typedef struct addr {
    char host[HOST_MAX_BYTES]; /* without the brackets of an IPv6 literal */
    char port[8];
    bool v6; /* host holds a ':' and needs brackets in Host headers */
} addr_t;

typedef struct ctx {
    cmd_t cmd;
    const char *prog; /* "electd kv put", for messages */
    char prog_buf[64];
    addr_t addr;
    const char *token;
    bool json, stale, raw, wait;
    uint32_t timeout_ms, wait_ms;
    const char *to, *fence, *if_match;
    const char *pos[4]; /* positional arguments after the (sub)command */
    int npos;
    uint64_t deadline_ms; /* of the whole command */
} ctx_t;

typedef struct request {
    const char *method;
    const char *target; /* path and query, already percent-encoded */
    const char *body;
    size_t body_len;
    const char *content_type;
    const char *headers; /* extra "Name: value\r\n" lines, or NULL */
} request_t;

typedef struct response {
    int status;
    char *buf; /* the whole reply, NUL-terminated; owned, freed by response_clear */
    size_t len;
    char *body; /* into buf, NUL-terminated at body_len */
    size_t body_len;
    addr_t from; /* who answered (after a redirect: the leader) */
} response_t;

/* ---- small helpers --------------------------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int remaining_ms(uint64_t deadline_ms)
{
    uint64_t now = now_ms();
    if (now >= deadline_ms)
        return 0;
    uint64_t left = deadline_ms - now;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

static void response_clear(response_t *rs)
{
    free(rs->buf);
    rs->buf = rs->body = NULL;
    rs->len = rs->body_len = 0;
    rs->status = 0;
}

/* "500ms", "2s", "1m", "100" (= ms); 1 ms .. 24 h. */
static bool parse_duration(const char *s, uint32_t *out_ms)
{
    if (!isdigit((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned long long mul;
    if (errno != 0)
        return false;
    if (*end == '\0' || strcmp(end, "ms") == 0)
        mul = 1;
    else if (strcmp(end, "s") == 0)
        mul = 1000;
    else if (strcmp(end, "m") == 0)
        mul = 60000;
    else
        return false;
    if (v == 0 || v > DURATION_MAX_MS / mul)
        return false;
    *out_ms = (uint32_t)(v * mul);
    return true;
}

static bool is_u64(const char *s)
{
    if (*s == '\0' || strlen(s) > 20)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* "host:port", "[v6]:port"; a bare IPv6 literal without brackets is refused (ambiguous). */
static int parse_addr(const char *s, addr_t *a)
{
    const char *host = s, *host_end, *port;
    memset(a, 0, sizeof(*a));
    if (s[0] == '[') {
        host = s + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL || host_end[1] != ':')
            return CLIENT_EADDR;
        port = host_end + 2;
        a->v6 = true;
    } else {
        host_end = strrchr(s, ':');
        if (host_end == NULL || memchr(s, ':', (size_t)(host_end - s)) != NULL)
            return CLIENT_EADDR;
        port = host_end + 1;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen >= sizeof(a->host) || !is_u64(port) || strlen(port) > 5 ||
        atoi(port) < 1 || atoi(port) > 65535)
        return CLIENT_EADDR;
    for (size_t i = 0; i < hlen; i++)
        if (!isgraph((unsigned char)host[i]) || host[i] == '/' || host[i] == '@')
            return CLIENT_EADDR;
    memcpy(a->host, host, hlen);
    snprintf(a->port, sizeof(a->port), "%s", port);
    return 0;
}

static void addr_format(const addr_t *a, char *buf, size_t size)
{
    snprintf(buf, size, a->v6 ? "[%s]:%s" : "%s:%s", a->host, a->port);
}

/* Percent-encodes s (n bytes) onto out at *off; '/' stays as is when keep_slash (keys are
 * paths). Returns false when out is too small. */
static bool pct_encode(char *out, size_t cap, size_t *off, const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
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

static bool append(char *out, size_t cap, size_t *off, const char *s)
{
    size_t n = strlen(s);
    if (*off + n >= cap)
        return false;
    memcpy(out + *off, s, n + 1);
    *off += n;
    return true;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A JSON number as text ("-" when absent), without a decimal point for integers. */
static const char *jnum(const cJSON *o, const char *key, char *buf, size_t size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        return "-";
    if (v->valuedouble >= -9e15 && v->valuedouble <= 9e15)
        snprintf(buf, size, "%lld", (long long)v->valuedouble);
    else
        snprintf(buf, size, "%g", v->valuedouble);
    return buf;
}

static void fail_msg(const ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", c->prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- HTTP over one TCP connection ------------------------------------------------------------ */

static int connect_one(const struct addrinfo *ai, uint64_t deadline_ms, int *fd_out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return CLIENT_ECONNECT;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        goto fail_connect;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno == ECONNREFUSED)
            goto fail_refused;
        if (errno != EINPROGRESS)
            goto fail_connect;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n;
        do {
            n = poll(&p, 1, remaining_ms(deadline_ms));
        } while (n < 0 && errno == EINTR);
        if (n == 0) {
            close(fd);
            return CLIENT_ETIMEOUT;
        }
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
            goto fail_connect;
        if (soerr == ECONNREFUSED)
            goto fail_refused;
        if (soerr != 0)
            goto fail_connect;
    }
    *fd_out = fd;
    return 0;
fail_refused:
    close(fd);
    return CLIENT_ECONNREFUSED;
fail_connect:
    close(fd);
    return CLIENT_ECONNECT;
}

/* Tries every address the host resolves to; an IP literal needs no resolver. A name goes
 * through the system resolver, whose own timeouts apply (it cannot be interrupted). */
static int connect_addr(const addr_t *a, uint64_t deadline_ms, int *fd_out)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    hints.ai_flags |= AI_NUMERICHOST;
    if (getaddrinfo(a->host, a->port, &hints, &res) != 0) {
        hints.ai_flags &= ~AI_NUMERICHOST;
        if (getaddrinfo(a->host, a->port, &hints, &res) != 0)
            return CLIENT_ERESOLVE;
    }
    int rv = CLIENT_ECONNECT;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        rv = connect_one(ai, deadline_ms, fd_out);
        if (rv == 0 || rv == CLIENT_ETIMEOUT)
            break;
    }
    freeaddrinfo(res);
    return rv;
}

static int send_all(int fd, const char *p, size_t n, uint64_t deadline_ms)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return CLIENT_EIO;
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        int left = remaining_ms(deadline_ms);
        if (left == 0)
            return CLIENT_ETIMEOUT;
        int k = poll(&pf, 1, left);
        if (k == 0)
            return CLIENT_ETIMEOUT;
        if (k < 0 && errno != EINTR)
            return CLIENT_EIO;
    }
    return 0;
}

/* Finds the end of the header block and the status and Content-Length in it. Returns 1 when
 * the block is complete, 0 when more bytes are needed, or an error. */
static int parse_head(response_t *rs, size_t *head_len, long long *content_length)
{
    char *end = memmem(rs->buf, rs->len, "\r\n\r\n", 4);
    if (end == NULL)
        return rs->len > HEAD_MAX_BYTES ? CLIENT_ETOOBIG : 0;
    *head_len = (size_t)(end - rs->buf) + 4;
    if (memchr(rs->buf, '\0', *head_len) != NULL)
        return CLIENT_EPROTO; /* the string functions below need a head without NUL bytes */
    int major, minor, status;
    if (sscanf(rs->buf, "HTTP/%d.%d %3d", &major, &minor, &status) != 3 || major != 1 ||
        status < 100 || status > 599)
        return CLIENT_EPROTO;
    rs->status = status;
    *content_length = -1;
    /* The first CRLF is at most `end`, which starts the blank line. */
    for (char *line = strstr(rs->buf, "\r\n") + 2; line < end;) {
        char *eol = strstr(line, "\r\n");
        assert(eol != NULL && eol <= end);
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon != NULL) {
            size_t nlen = (size_t)(colon - line);
            const char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            if (nlen == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
                char *vend;
                errno = 0;
                long long cl = strtoll(v, &vend, 10);
                if (vend == v || cl < 0 || errno != 0)
                    return CLIENT_EPROTO;
                *content_length = cl;
            } else if (nlen == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
                return CLIENT_EPROTO; /* electd never sends chunked replies */
            }
        }
        line = eol + 2;
    }
    return 1;
}

/* One request on a fresh connection: sends it with Connection: close and reads the whole reply
 * (to Content-Length, or to EOF). Everything is bounded by deadline_ms and RESP_MAX_BYTES. */
static int http_once(const ctx_t *c, const addr_t *a, const request_t *rq, uint64_t deadline_ms,
                     response_t *rs)
{
    int fd = -1, rv;
    char head[REQ_HEAD_MAX_BYTES], hostport[HOST_MAX_BYTES + 16];
    memset(rs, 0, sizeof(*rs));
    rs->from = *a;
    addr_format(a, hostport, sizeof(hostport));
    bool ct = rq->content_type != NULL, auth = c->token != NULL;
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: electd-client\r\n"
                     "Accept: application/json\r\nConnection: close\r\n"
                     "%s%s%s%s%s%s%sContent-Length: %zu\r\n\r\n",
                     rq->method, rq->target, hostport, auth ? "Authorization: Bearer " : "",
                     auth ? c->token : "", auth ? "\r\n" : "", ct ? "Content-Type: " : "",
                     ct ? rq->content_type : "", ct ? "\r\n" : "", rq->headers ? rq->headers : "",
                     rq->body_len);
    if (n < 0 || (size_t)n >= sizeof(head))
        return CLIENT_ETOOBIG;
    size_t head_n = (size_t)n;

    rv = connect_addr(a, deadline_ms, &fd);
    if (rv != 0)
        return rv;
    rv = send_all(fd, head, head_n, deadline_ms);
    if (rv == 0 && rq->body_len > 0)
        rv = send_all(fd, rq->body, rq->body_len, deadline_ms);
    if (rv != 0)
        goto fail;

    size_t cap = 16384, head_len = 0;
    long long content_length = -1;
    bool have_head = false;
    rs->buf = malloc(cap);
    if (rs->buf == NULL) {
        rv = CLIENT_ENOMEM;
        goto fail;
    }
    for (;;) {
        if (have_head && content_length >= 0 && rs->len >= head_len + (size_t)content_length)
            break;
        if (rs->len + 1 >= cap) {
            if (cap >= RESP_MAX_BYTES + 1) {
                rv = CLIENT_ETOOBIG;
                goto fail;
            }
            size_t ncap = cap * 2 > RESP_MAX_BYTES + 1 ? RESP_MAX_BYTES + 1 : cap * 2;
            char *nb = realloc(rs->buf, ncap);
            if (nb == NULL) {
                rv = CLIENT_ENOMEM;
                goto fail;
            }
            rs->buf = nb;
            cap = ncap;
        }
        ssize_t r = recv(fd, rs->buf + rs->len, cap - 1 - rs->len, 0);
        if (r > 0) {
            rs->len += (size_t)r;
            rs->buf[rs->len] = '\0';
            if (!have_head) {
                int h = parse_head(rs, &head_len, &content_length);
                if (h < 0) {
                    rv = h;
                    goto fail;
                }
                have_head = h == 1;
                if (have_head && content_length > (long long)RESP_MAX_BYTES) {
                    rv = CLIENT_ETOOBIG;
                    goto fail;
                }
            }
            continue;
        }
        if (r == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            rv = CLIENT_EIO;
            goto fail;
        }
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int left = remaining_ms(deadline_ms);
        int k = left > 0 ? poll(&pf, 1, left) : 0;
        if (k == 0) {
            rv = CLIENT_ETIMEOUT;
            goto fail;
        }
        if (k < 0 && errno != EINTR) {
            rv = CLIENT_EIO;
            goto fail;
        }
    }
    if (!have_head) {
        rv = CLIENT_EPROTO;
        goto fail;
    }
    rs->body = rs->buf + head_len;
    rs->body_len = rs->len - head_len;
    if (content_length >= 0) {
        if (rs->body_len < (size_t)content_length) {
            rv = CLIENT_EPROTO; /* the connection closed early */
            goto fail;
        }
        rs->body_len = (size_t)content_length;
    }
    rs->body[rs->body_len] = '\0';
    close(fd);
    return 0;
fail:
    close(fd);
    response_clear(rs);
    return rv;
}

/* The leader's HTTP address from a 421 reply (error.leader.http), if it names one. */
static bool redirect_addr(const response_t *rs, addr_t *a)
{
    cJSON *o = cJSON_ParseWithLength(rs->body, rs->body_len);
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(o, "error");
    const char *http = jstr(cJSON_GetObjectItemCaseSensitive(err, "leader"), "http");
    bool ok = http != NULL && parse_addr(http, a) == 0;
    cJSON_Delete(o);
    return ok;
}

/* Sends rq to the --http node; on 421 not_leader, once more to the leader it names. Any reply
 * counts as success here (the caller judges the status); errors are transport errors, already
 * reported on stderr. */
static int call_at(ctx_t *c, const addr_t *a, const request_t *rq, uint64_t deadline_ms,
                   response_t *rs)
{
    int rv = http_once(c, a, rq, deadline_ms, rs);
    addr_t leader;
    if (rv == 0 && rs->status == 421 && redirect_addr(rs, &leader)) {
        response_clear(rs);
        rv = http_once(c, &leader, rq, deadline_ms, rs);
        a = &leader;
    }
    if (rv != 0) {
        char where[HOST_MAX_BYTES + 16];
        addr_format(a, where, sizeof(where));
        if (rv == CLIENT_ETIMEOUT)
            fail_msg(c, "%s %s: timed out waiting for %s", rq->method, rq->target, where);
        else
            fail_msg(c, "%s: %s", where, client_strerror(rv));
    }
    return rv;
}

static int call(ctx_t *c, const request_t *rq, response_t *rs)
{
    return call_at(c, &c->addr, rq, c->deadline_ms, rs);
}

/* ---- results --------------------------------------------------------------------------------- */

static void print_json_body(const response_t *rs)
{
    fwrite(rs->body, 1, rs->body_len, stdout);
    if (rs->body_len == 0 || rs->body[rs->body_len - 1] != '\n')
        fputc('\n', stdout);
}

/* A non-2xx reply: the server's error on stderr (and its JSON on stdout with --json); 404 and
 * 409 are a definite "no" (1), everything else an error (2). */
static int report_error(const ctx_t *c, const response_t *rs)
{
    if (c->json)
        print_json_body(rs);
    cJSON *o = cJSON_ParseWithLength(rs->body, rs->body_len);
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(o, "error");
    const char *code = jstr(err, "code"), *msg = jstr(err, "message");
    char extra[160] = "", num[32];
    if (code != NULL && strcmp(code, "fenced") == 0)
        snprintf(extra, sizeof(extra), " (current fencing token %s)",
                 jnum(err, "fencing_token", num, sizeof(num)));
    else if (code != NULL && strcmp(code, "conflict") == 0)
        snprintf(extra, sizeof(extra), " (mod_revision %s)",
                 jnum(err, "mod_revision", num, sizeof(num)));
    else if (code != NULL && strcmp(code, "not_leader") == 0) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(err, "leader");
        const char *name = jstr(l, "name"), *http = jstr(l, "http");
        snprintf(extra, sizeof(extra), " (leader %s, http %s)", name ? name : "unknown",
                 http ? http : "unknown");
    }
    if (code != NULL)
        fail_msg(c, "%s: %s%s", code, msg ? msg : "", extra);
    else if (rs->status == 404)
        fail_msg(c, "not found (HTTP 404)");
    else
        fail_msg(c, "HTTP %d: %.200s", rs->status, rs->body);
    cJSON_Delete(o);
    return rs->status == 404 || rs->status == 409 ? SIDECAR_CLIENT_NO : SIDECAR_CLIENT_ERROR;
}

/* Parses a 2xx JSON body; reports and returns NULL when it is not JSON. */
static cJSON *parse_ok(const ctx_t *c, const response_t *rs)
{
    cJSON *o = cJSON_ParseWithLength(rs->body, rs->body_len);
    if (o == NULL)
        fail_msg(c, "the reply is not JSON: %.200s", rs->body);
    return o;
}

/* A small left-aligned table: a header row, then data rows, two spaces between columns. */
typedef struct table {
    char cells[TABLE_MAX_ROWS][TABLE_MAX_COLS][TABLE_CELL_BYTES];
    int rows, cols;
} table_t;

static void table_row(table_t *t, ...)
{
    if (t->rows >= TABLE_MAX_ROWS)
        return;
    va_list ap;
    va_start(ap, t);
    for (int i = 0; i < t->cols; i++) {
        const char *s = va_arg(ap, const char *);
        snprintf(t->cells[t->rows][i], TABLE_CELL_BYTES, "%s", s ? s : "-");
    }
    va_end(ap);
    t->rows++;
}

static void table_print(const table_t *t)
{
    int width[TABLE_MAX_COLS] = {0};
    for (int r = 0; r < t->rows; r++)
        for (int i = 0; i < t->cols; i++) {
            int w = (int)strlen(t->cells[r][i]);
            if (w > width[i])
                width[i] = w;
        }
    for (int r = 0; r < t->rows; r++) {
        for (int i = 0; i < t->cols; i++) {
            if (i + 1 < t->cols)
                printf("%-*s  ", width[i], t->cells[r][i]);
            else
                printf("%s\n", t->cells[r][i]);
        }
    }
}

/* ---- status, leader, transfer ---------------------------------------------------------------- */

static int do_status(ctx_t *c)
{
    request_t rq = {.method = "GET", .target = "/v1/status"};
    response_t rs;
    if (call(c, &rq, &rs) != 0)
        return SIDECAR_CLIENT_ERROR;
    int code = SIDECAR_CLIENT_ERROR;
    cJSON *o = NULL;
    if (rs.status != 200) {
        code = report_error(c, &rs);
        goto done;
    }
    if (c->json) {
        print_json_body(&rs);
        code = SIDECAR_CLIENT_OK;
        goto done;
    }
    if ((o = parse_ok(c, &rs)) == NULL)
        goto done;
    char n1[32], n2[32], n3[32];
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "leader");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(o, "workload");
    const char *role = jstr(o, "role");
    printf("node      %s (%s)\n", jstr(o, "node") ? jstr(o, "node") : "?",
           jstr(o, "id") ? jstr(o, "id") : "?");
    printf("role      %s\n", role ? role : "?");
    printf("term      %s\n", jnum(o, "term", n1, sizeof(n1)));
    if (jstr(l, "name") != NULL)
        printf("leader    %s (http %s, peer %s)\n", jstr(l, "name"),
               jstr(l, "http") ? jstr(l, "http") : "unknown",
               jstr(l, "peer_addr") ? jstr(l, "peer_addr") : "unknown");
    else
        printf("leader    none known\n");
    printf("log       commit %s, applied %s, last %s\n", jnum(o, "commit_index", n1, sizeof(n1)),
           jnum(o, "applied_index", n2, sizeof(n2)), jnum(o, "last_index", n3, sizeof(n3)));
    if (role != NULL && strcmp(role, "leader") == 0)
        printf("lease     %s ms remaining\n", jnum(o, "lease_remaining_ms", n1, sizeof(n1)));
    printf("fencing   %s\n", jnum(o, "fencing_token", n1, sizeof(n1)));
    if (w != NULL) {
        const char *mode = jstr(w, "mode"), *state = jstr(w, "state");
        printf("workload  %s, %s", mode ? mode : "?", state ? state : "?");
        const cJSON *pid = cJSON_GetObjectItemCaseSensitive(w, "pid");
        if (cJSON_IsNumber(pid) && pid->valuedouble > 0)
            printf(", pid %s", jnum(w, "pid", n1, sizeof(n1)));
        printf(", restarts %s\n", jnum(w, "restarts", n1, sizeof(n1)));
    }
    const cJSON *store_ok = cJSON_GetObjectItemCaseSensitive(o, "store_ok");
    printf("store     %s\n", cJSON_IsFalse(store_ok) ? "FAILING" : "ok");

    static table_t t;
    memset(&t, 0, sizeof(t));
    t.cols = 5;
    table_row(&t, "MEMBER", "VOTER", "PEER_ADDR", "MATCH", "LAST_CONTACT");
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(o, "members"))
    {
        char name[80], contact[40];
        const char *mname = jstr(m, "name") ? jstr(m, "name") : "?";
        bool is_leader = jstr(l, "name") && strcmp(jstr(l, "name"), mname) == 0;
        snprintf(name, sizeof(name), "%s%s", mname, is_leader ? " *" : "");
        const char *ms = jnum(m, "last_contact_ms", n2, sizeof(n2));
        snprintf(contact, sizeof(contact), "%s%s", ms, strcmp(ms, "-") ? " ms ago" : "");
        table_row(&t, name, cJSON_IsTrue(cJSON_GetObjectItem(m, "voter")) ? "voter" : "learner",
                  jstr(m, "peer_addr"), jnum(m, "match_index", n1, sizeof(n1)), contact);
    }
    printf("\n");
    table_print(&t);
    code = SIDECAR_CLIENT_OK;
done:
    cJSON_Delete(o);
    response_clear(&rs);
    return code;
}

static void print_leader(const cJSON *o)
{
    char n[32];
    const char *name = jstr(o, "name"), *http = jstr(o, "http");
    if (name == NULL)
        printf("no leader known (term %s)\n", jnum(o, "term", n, sizeof(n)));
    else
        printf("%s (http %s) term %s\n", name, http ? http : "unknown",
               jnum(o, "term", n, sizeof(n)));
}

/* GET target on addr; the parsed 2xx JSON object in *out. Returns an exit code. */
static int get_json(ctx_t *c, const addr_t *a, const char *target, uint64_t deadline_ms,
                    response_t *rs, cJSON **out)
{
    request_t rq = {.method = "GET", .target = target};
    *out = NULL;
    if (call_at(c, a, &rq, deadline_ms, rs) != 0)
        return SIDECAR_CLIENT_ERROR;
    if (rs->status != 200) {
        int code = report_error(c, rs);
        response_clear(rs);
        return code;
    }
    if ((*out = parse_ok(c, rs)) == NULL) {
        response_clear(rs);
        return SIDECAR_CLIENT_ERROR;
    }
    return SIDECAR_CLIENT_OK;
}

static double term_of(const cJSON *o)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "term");
    return cJSON_IsNumber(t) ? t->valuedouble : -1;
}

/* Waits until addr reports a known leader that differs from `before` (another term, or any
 * leader when `before` had none) and is not named not_name, or until deadline_ms. Long-polls
 * GET /v1/leader?wait=&term= (the server answers when the term or the leader changes); when
 * a reply comes back sooner than POLL_INTERVAL_MS without the change we want (an older server
 * without the long poll, or a term that moved with no leader yet), it waits out the rest of
 * the interval, so this never spins. On success *now holds the last reply (the caller frees
 * it and clears rs). */
static int wait_leader_change(ctx_t *c, const addr_t *a, const cJSON *before, const char *not_name,
                              uint64_t deadline_ms, response_t *rs, cJSON **now)
{
    double term0 = term_of(before), seen_term = term0;
    bool had_leader = jstr(before, "name") != NULL;
    *now = NULL;
    for (;;) {
        int left = remaining_ms(deadline_ms);
        if (left == 0)
            return SIDECAR_CLIENT_NO;
        char target[96];
        if (seen_term >= 0)
            snprintf(target, sizeof(target), "/v1/leader?wait=%dms&term=%.0f", left, seen_term);
        else
            snprintf(target, sizeof(target), "/v1/leader?wait=%dms", left);
        uint64_t t0 = now_ms();
        /* The reply may take the whole wait: allow --timeout on top for the reply itself. */
        int code = get_json(c, a, target, deadline_ms + c->timeout_ms, rs, now);
        if (code != SIDECAR_CLIENT_OK)
            return SIDECAR_CLIENT_ERROR;
        const char *name = jstr(*now, "name");
        double term = term_of(*now);
        if (name != NULL && (!had_leader || term != term0) &&
            (not_name == NULL || strcmp(name, not_name) != 0))
            return SIDECAR_CLIENT_OK;
        seen_term = term;
        cJSON_Delete(*now);
        *now = NULL;
        response_clear(rs);
        uint64_t spent = now_ms() - t0;
        if (spent < POLL_INTERVAL_MS) {
            int rest = remaining_ms(deadline_ms);
            uint64_t nap = POLL_INTERVAL_MS - spent;
            sleep_ms(nap < (uint64_t)rest ? nap : (uint64_t)rest);
        }
    }
}

static int do_leader(ctx_t *c)
{
    response_t rs;
    cJSON *o = NULL, *after = NULL;
    int code = get_json(c, &c->addr, "/v1/leader", c->deadline_ms, &rs, &o);
    if (code != SIDECAR_CLIENT_OK)
        return code;
    if (c->wait) {
        response_t rs2;
        code = wait_leader_change(c, &c->addr, o, NULL, now_ms() + c->wait_ms, &rs2, &after);
        if (code == SIDECAR_CLIENT_OK) {
            cJSON_Delete(o);
            response_clear(&rs);
            o = after;
            rs = rs2;
        } else if (code == SIDECAR_CLIENT_NO) {
            fail_msg(c, "no change of leadership within %u ms", c->wait_ms);
        } else {
            goto done;
        }
    } else if (jstr(o, "name") == NULL) {
        code = SIDECAR_CLIENT_NO;
    }
    if (c->json)
        print_json_body(&rs);
    else
        print_leader(o);
done:
    cJSON_Delete(o);
    response_clear(&rs);
    return code;
}

/* POST /v1/leader/transfer on the leader, then waits (within --timeout) until the node that
 * handed over reports another leader, and prints it. */
static int do_transfer(ctx_t *c)
{
    char target[TARGET_MAX_BYTES] = "/v1/leader/transfer";
    size_t off = strlen(target);
    if (c->to != NULL && !(append(target, sizeof(target), &off, "?to=") &&
                           pct_encode(target, sizeof(target), &off, c->to, strlen(c->to), false))) {
        fail_msg(c, "--to is too long");
        return SIDECAR_CLIENT_ERROR;
    }
    request_t rq = {.method = "POST", .target = target};
    response_t rs;
    if (call(c, &rq, &rs) != 0)
        return SIDECAR_CLIENT_ERROR;
    if (rs.status != 202 && rs.status != 200) {
        int code = report_error(c, &rs);
        response_clear(&rs);
        return code;
    }
    addr_t old = rs.from;
    response_clear(&rs);
    /* Who handed over: its own name (it no longer leads by the time we ask, or soon won't). */
    cJSON *st = NULL, *before = NULL, *after = NULL;
    int code = get_json(c, &old, "/v1/status", c->deadline_ms, &rs, &st);
    if (code != SIDECAR_CLIENT_OK)
        return SIDECAR_CLIENT_ERROR;
    const char *old_name = jstr(st, "node");
    char old_name_buf[80];
    snprintf(old_name_buf, sizeof(old_name_buf), "%s", old_name ? old_name : "");
    response_clear(&rs);
    /* Any leader other than the old one counts, whatever the term. */
    before = cJSON_CreateObject();
    cJSON_AddNullToObject(before, "name");
    cJSON_AddNumberToObject(before, "term", -1);
    code = wait_leader_change(c, &old, before, old_name_buf, c->deadline_ms, &rs, &after);
    if (code == SIDECAR_CLIENT_OK) {
        if (c->json) {
            print_json_body(&rs);
        } else {
            printf("leadership moved from %s to ", old_name_buf);
            print_leader(after);
        }
    } else if (code == SIDECAR_CLIENT_NO) {
        fail_msg(c, "the transfer started on %s, but no new leader was seen within %u ms",
                 old_name_buf, c->timeout_ms);
        code = SIDECAR_CLIENT_ERROR;
    }
    cJSON_Delete(st);
    cJSON_Delete(before);
    cJSON_Delete(after);
    response_clear(&rs);
    return code;
}

/* ---- kv -------------------------------------------------------------------------------------- */

static bool kv_target(ctx_t *c, const char *key, const char *query, char *out, size_t cap)
{
    size_t off = 0;
    out[0] = '\0';
    if (*key == '\0' || !append(out, cap, &off, "/v1/kv/") ||
        !pct_encode(out, cap, &off, key, strlen(key), true) ||
        (query != NULL && !append(out, cap, &off, query))) {
        fail_msg(c, *key == '\0' ? "the key is empty" : "the key is too long");
        return false;
    }
    return true;
}

/* Reads all of stdin, at most STDIN_MAX_BYTES. */
static char *read_stdin(const ctx_t *c, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (n == cap) {
            if (cap > STDIN_MAX_BYTES) {
                fail_msg(c, "the value on stdin exceeds %u bytes", STDIN_MAX_BYTES);
                free(buf);
                return NULL;
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL)
                break;
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) {
            if (ferror(stdin)) {
                fail_msg(c, "cannot read stdin");
                free(buf);
                return NULL;
            }
            *len = n;
            return buf;
        }
    }
    free(buf);
    fail_msg(c, "out of memory");
    return NULL;
}

static int do_kv_get(ctx_t *c)
{
    char target[TARGET_MAX_BYTES];
    /* Humans get the bytes as stored (?raw); --json the server's object. */
    const char *q = c->json ? (c->stale ? "?stale" : NULL) : (c->stale ? "?raw&stale" : "?raw");
    if (!kv_target(c, c->pos[0], q, target, sizeof(target)))
        return SIDECAR_CLIENT_ERROR;
    request_t rq = {.method = "GET", .target = target};
    response_t rs;
    if (call(c, &rq, &rs) != 0)
        return SIDECAR_CLIENT_ERROR;
    int code = SIDECAR_CLIENT_OK;
    if (rs.status != 200)
        code = report_error(c, &rs);
    else if (c->json)
        print_json_body(&rs);
    else {
        fwrite(rs.body, 1, rs.body_len, stdout);
        if (!c->raw)
            fputc('\n', stdout);
    }
    response_clear(&rs);
    return code;
}

static int do_kv_write(ctx_t *c, bool put)
{
    char target[TARGET_MAX_BYTES], headers[128] = "";
    if (!kv_target(c, c->pos[0], NULL, target, sizeof(target)))
        return SIDECAR_CLIENT_ERROR;
    size_t off = 0;
    if (c->fence != NULL)
        off += (size_t)snprintf(headers, sizeof(headers), "X-Electd-Fence: %s\r\n", c->fence);
    if (c->if_match != NULL)
        snprintf(headers + off, sizeof(headers) - off, "If-Match: %s\r\n", c->if_match);
    char *stdin_value = NULL;
    request_t rq = {.method = put ? "PUT" : "DELETE", .target = target, .headers = headers};
    if (put) {
        if (strcmp(c->pos[1], "-") == 0) {
            if ((stdin_value = read_stdin(c, &rq.body_len)) == NULL)
                return SIDECAR_CLIENT_ERROR;
            rq.body = stdin_value;
        } else {
            rq.body = c->pos[1];
            rq.body_len = strlen(c->pos[1]);
        }
        rq.content_type = "application/octet-stream";
    }
    response_t rs;
    int code = SIDECAR_CLIENT_ERROR;
    cJSON *o = NULL;
    if (call(c, &rq, &rs) != 0)
        goto done;
    if (rs.status != 200) {
        code = report_error(c, &rs);
    } else if (c->json) {
        print_json_body(&rs);
        code = SIDECAR_CLIENT_OK;
    } else if ((o = parse_ok(c, &rs)) != NULL) {
        char n[32];
        if (put)
            printf("OK revision %s\n", jnum(o, "revision", n, sizeof(n)));
        else
            printf("deleted, revision %s\n", jnum(o, "revision", n, sizeof(n)));
        code = SIDECAR_CLIENT_OK;
    }
    response_clear(&rs);
done:
    cJSON_Delete(o);
    free(stdin_value);
    return code;
}

/* Prints s with control bytes escaped (\n, \t, \\, \xHH); after max_shown characters, "...". */
static void print_escaped(const char *s, size_t max_shown)
{
    size_t shown = 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        /* Cut only at a character boundary (not before a UTF-8 continuation byte). */
        if (shown >= max_shown && (ch & 0xC0) != 0x80) {
            fputs("...", stdout);
            return;
        }
        if (ch == '\n')
            fputs("\\n", stdout);
        else if (ch == '\t')
            fputs("\\t", stdout);
        else if (ch == '\\')
            fputs("\\\\", stdout);
        else if (ch < 0x20 || ch == 0x7f)
            printf("\\x%02x", ch);
        else
            fputc(ch, stdout);
        shown++;
    }
}

/* One line of `kv ls`: the key, a tab, the value cut short; both escaped, so that one key is
 * always one line. */
static void print_kv_line(const cJSON *item)
{
    const char *key = jstr(item, "key"), *value = jstr(item, "value");
    print_escaped(key ? key : "?", SIZE_MAX);
    fputc('\t', stdout);
    if (value != NULL) {
        print_escaped(value, LS_VALUE_MAX_SHOWN);
    } else {
        const char *b64 = jstr(item, "value_base64");
        printf("(binary, %zu bytes)", b64 ? strlen(b64) / 4 * 3 : 0);
    }
    fputc('\n', stdout);
}

/* Pages through GET /v1/kv?prefix= (after= the last key) up to LIST_MAX_PAGES; --json gets
 * one object {"items": [...], "more": bool} with the pages merged. */
static int do_kv_ls(ctx_t *c)
{
    const char *prefix = c->npos > 0 ? c->pos[0] : "";
    cJSON *merged = cJSON_CreateObject(), *all = cJSON_AddArrayToObject(merged, "items");
    char *after = NULL;
    bool more = true;
    int code = SIDECAR_CLIENT_ERROR, pages = 0;
    response_t rs = {0};
    cJSON *o = NULL;
    if (merged == NULL || all == NULL)
        goto done;
    for (; more && pages < LIST_MAX_PAGES; pages++) {
        char target[TARGET_MAX_BYTES] = "/v1/kv?prefix=";
        size_t off = strlen(target);
        if (!pct_encode(target, sizeof(target), &off, prefix, strlen(prefix), false) ||
            (after != NULL &&
             !(append(target, sizeof(target), &off, "&after=") &&
               pct_encode(target, sizeof(target), &off, after, strlen(after), false))) ||
            (c->stale && !append(target, sizeof(target), &off, "&stale"))) {
            fail_msg(c, "the prefix is too long");
            goto done;
        }
        code = get_json(c, &c->addr, target, c->deadline_ms, &rs, &o);
        if (code != SIDECAR_CLIENT_OK)
            goto done;
        code = SIDECAR_CLIENT_ERROR;
        cJSON *items = cJSON_GetObjectItemCaseSensitive(o, "items");
        if (!cJSON_IsArray(items)) {
            fail_msg(c, "the reply has no items: %.200s", rs.body);
            goto done;
        }
        more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "more"));
        cJSON *item = NULL;
        const char *last = NULL;
        cJSON_ArrayForEach(item, items)
        {
            if (!c->json)
                print_kv_line(item);
            last = jstr(item, "key");
        }
        if (more && last == NULL) {
            fail_msg(c, "the reply says more keys follow but names none");
            goto done;
        }
        free(after);
        after = last ? strdup(last) : NULL;
        if (c->json)
            while (cJSON_GetArraySize(items) > 0)
                cJSON_AddItemToArray(all, cJSON_DetachItemFromArray(items, 0));
        cJSON_Delete(o);
        o = NULL;
        response_clear(&rs);
    }
    if (more)
        fail_msg(c, "listing stopped after %d pages; more keys follow", LIST_MAX_PAGES);
    if (c->json) {
        cJSON_AddBoolToObject(merged, "more", more);
        char *s = cJSON_PrintUnformatted(merged);
        if (s == NULL)
            goto done;
        printf("%s\n", s);
        free(s);
    }
    code = SIDECAR_CLIENT_OK;
done:
    free(after);
    cJSON_Delete(o);
    cJSON_Delete(merged);
    response_clear(&rs);
    return code;
}

/* ---- members --------------------------------------------------------------------------------- */

static void print_members(const cJSON *members)
{
    static table_t t;
    memset(&t, 0, sizeof(t));
    t.cols = 6;
    table_row(&t, "NAME", "ID", "VOTER", "PEER_ADDR", "HTTP", "MATCH");
    const cJSON *m;
    cJSON_ArrayForEach(m, members)
    {
        char n[32];
        table_row(&t, jstr(m, "name"), jstr(m, "id"),
                  cJSON_IsTrue(cJSON_GetObjectItem(m, "voter")) ? "voter" : "learner",
                  jstr(m, "peer_addr"), jstr(m, "http"), jnum(m, "match_index", n, sizeof(n)));
    }
    table_print(&t);
}

static int do_members(ctx_t *c)
{
    char target[TARGET_MAX_BYTES] = "/v1/members", *body = NULL;
    request_t rq = {.method = "GET", .target = target};
    if (c->cmd == CMD_MEMBERS_ADD) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "name", c->pos[0]);
        cJSON_AddStringToObject(b, "peer_addr", c->pos[1]);
        body = cJSON_PrintUnformatted(b);
        cJSON_Delete(b);
        if (body == NULL) {
            fail_msg(c, "out of memory");
            return SIDECAR_CLIENT_ERROR;
        }
        rq = (request_t){.method = "POST",
                         .target = target,
                         .body = body,
                         .body_len = strlen(body),
                         .content_type = "application/json"};
    } else if (c->cmd == CMD_MEMBERS_REMOVE) {
        size_t off = strlen(target);
        if (!append(target, sizeof(target), &off, "/") ||
            !pct_encode(target, sizeof(target), &off, c->pos[0], strlen(c->pos[0]), false)) {
            fail_msg(c, "the name is too long");
            return SIDECAR_CLIENT_ERROR;
        }
        rq.method = "DELETE";
    }
    response_t rs;
    int code = SIDECAR_CLIENT_ERROR;
    cJSON *o = NULL;
    if (call(c, &rq, &rs) != 0)
        goto done;
    if (rs.status < 200 || rs.status > 299) {
        code = report_error(c, &rs);
    } else if (c->json) {
        print_json_body(&rs);
        code = SIDECAR_CLIENT_OK;
    } else if ((o = parse_ok(c, &rs)) != NULL) {
        char n[32];
        if (c->cmd == CMD_MEMBERS_ADD)
            printf("added %s as a learner (it becomes a voter once caught up); configuration "
                   "index %s\n",
                   c->pos[0], jnum(o, "index", n, sizeof(n)));
        else if (c->cmd == CMD_MEMBERS_REMOVE)
            printf("removed %s; configuration index %s\n", c->pos[0],
                   jnum(o, "index", n, sizeof(n)));
        else
            print_members(cJSON_GetObjectItemCaseSensitive(o, "members"));
        code = SIDECAR_CLIENT_OK;
    }
    response_clear(&rs);
done:
    cJSON_Delete(o);
    free(body);
    return code;
}

/* ---- usage and argument parsing -------------------------------------------------------------- */

typedef struct usage {
    cmd_t cmd;
    const char *name; /* as typed, for messages */
    const char *line;
    int min_pos, max_pos; /* positional arguments after the (sub)command words */
} usage_t;

static const usage_t USAGES[] = {
    {CMD_STATUS, "status", "electd status [options]", 0, 0},
    {CMD_LEADER, "leader", "electd leader [--wait[=DURATION]] [options]", 0, 0},
    {CMD_TRANSFER, "transfer", "electd transfer [--to NAME] [options]", 0, 0},
    {CMD_KV_GET, "kv get", "electd kv get KEY [--stale] [--raw] [options]", 1, 1},
    {CMD_KV_PUT, "kv put", "electd kv put KEY VALUE|- [--fence N] [--if-match REV] [options]", 2,
     2},
    {CMD_KV_DEL, "kv del", "electd kv del KEY [--fence N] [--if-match REV] [options]", 1, 1},
    {CMD_KV_LS, "kv ls", "electd kv ls [PREFIX] [--stale] [options]", 0, 1},
    {CMD_MEMBERS_LIST, "members", "electd members [list] [options]", 0, 0},
    {CMD_MEMBERS_ADD, "members add", "electd members add NAME PEER_ADDR [options]", 2, 2},
    {CMD_MEMBERS_REMOVE, "members remove", "electd members remove NAME [options]", 1, 1},
};
#define N_USAGES (sizeof(USAGES) / sizeof(USAGES[0]))

static const usage_t *usage_of(cmd_t cmd)
{
    for (size_t i = 0; i < N_USAGES; i++)
        if (USAGES[i].cmd == cmd)
            return &USAGES[i];
    return NULL;
}

enum { O_HTTP, O_TOKEN, O_JSON, O_TIMEOUT, O_STALE, O_RAW, O_FENCE, O_IF_MATCH, O_TO, O_WAIT };

typedef struct option {
    const char *name;
    int value;        /* 0 none, 1 required (--x V or --x=V), 2 optional (--x=V only) */
    unsigned cmds;    /* bit per cmd_t where the option applies; 0 = everywhere */
    const char *help; /* "--name ARG" column, then the text */
    const char *text;
} option_t;

#define BIT(c) (1u << (c))
static const option_t OPTIONS[] = {
    [O_HTTP] = {"http", 1, 0, "--http HOST:PORT",
                "the electd to ask (env ELECTD_HTTP, default " DEFAULT_HTTP "; [IPv6]:PORT)"},
    [O_TOKEN] = {"token", 1, 0, "--token TOKEN",
                 "bearer token (env ELECTD_HTTP_TOKEN, else ELECTD_WORKLOAD_TOKEN)"},
    [O_JSON] = {"json", 0, 0, "--json", "print the server's JSON as is"},
    [O_TIMEOUT] = {"timeout", 1, 0, "--timeout DURATION",
                   "give up after this long (default 10s; 500ms, 2s, 1m)"},
    [O_STALE] = {"stale", 0, BIT(CMD_KV_GET) | BIT(CMD_KV_LS), "--stale",
                 "read this node's state as it is (no round trip to the leader)"},
    [O_RAW] = {"raw", 0, BIT(CMD_KV_GET), "--raw", "print the value's bytes, no newline added"},
    [O_FENCE] = {"fence", 1, BIT(CMD_KV_PUT) | BIT(CMD_KV_DEL), "--fence N",
                 "apply only if N is the current fencing token"},
    [O_IF_MATCH] = {"if-match", 1, BIT(CMD_KV_PUT) | BIT(CMD_KV_DEL), "--if-match REV",
                    "apply only if the key's mod revision is REV"},
    [O_TO] = {"to", 1, BIT(CMD_TRANSFER), "--to NAME",
              "hand leadership to NAME (default: the most up-to-date voter)"},
    [O_WAIT] = {"wait", 2, BIT(CMD_LEADER), "--wait[=DURATION]",
                "wait for the next leader (a new term), at most DURATION (default 30s)"},
};
#define N_OPTIONS (sizeof(OPTIONS) / sizeof(OPTIONS[0]))

/* The options of cmd (all of them for CMD_NONE), then the exit codes. */
static void print_options(FILE *out, cmd_t cmd)
{
    fprintf(out, "options:\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const option_t *o = &OPTIONS[i];
        if (cmd == CMD_NONE || o->cmds == 0 || (o->cmds & BIT(cmd)) != 0)
            fprintf(out, "  %-19s %s\n", o->help, o->text);
    }
    fprintf(out, "exit status: 0 ok; 1 not found, condition failed (conflict, fenced), no leader;\n"
                 "             2 error (bad usage, connection refused, timeout, server error)\n");
}

static void print_usage_lines(FILE *out)
{
    for (size_t i = 0; i < N_USAGES; i++)
        fprintf(out, "%s%s\n", i ? "       " : "usage: ", USAGES[i].line);
}

static void print_help(FILE *out)
{
    print_usage_lines(out);
    fprintf(out, "Subcommands ask the HTTP API of a running electd; the subcommand comes first.\n"
                 "KV reads and writes, transfers and membership changes follow one redirect\n"
                 "to the leader. A VALUE starting with '-' goes after '--'.\n"
                 "The daemon's own flags: electd --help.\n");
    print_options(out, CMD_NONE);
}

static int usage_error(const ctx_t *c, const usage_t *u, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", c->prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (u != NULL)
        fprintf(stderr, "usage: %s\n", u->line);
    else
        print_usage_lines(stderr);
    fprintf(stderr, "Try 'electd help'.\n");
    return SIDECAR_CLIENT_ERROR;
}

/* The command from the leading words: "kv put", "members add", ... *used = words consumed. */
static cmd_t resolve_cmd(const char *const *words, int n, int *used)
{
    static const struct {
        const char *a, *b;
        cmd_t cmd;
    } table[] = {
        {"status", NULL, CMD_STATUS},
        {"leader", NULL, CMD_LEADER},
        {"transfer", NULL, CMD_TRANSFER},
        {"help", NULL, CMD_HELP},
        {"kv", "get", CMD_KV_GET},
        {"kv", "put", CMD_KV_PUT},
        {"kv", "del", CMD_KV_DEL},
        {"kv", "ls", CMD_KV_LS},
        {"members", "list", CMD_MEMBERS_LIST},
        {"members", "add", CMD_MEMBERS_ADD},
        {"members", "remove", CMD_MEMBERS_REMOVE},
    };
    *used = 0;
    if (n == 0)
        return CMD_NONE;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (strcmp(words[0], table[i].a) != 0)
            continue;
        if (table[i].b == NULL) {
            *used = 1;
            return table[i].cmd;
        }
        if (n > 1 && strcmp(words[1], table[i].b) == 0) {
            *used = 2;
            return table[i].cmd;
        }
    }
    if (strcmp(words[0], "members") == 0) { /* `electd members` alone lists */
        *used = 1;
        return CMD_MEMBERS_LIST;
    }
    return CMD_NONE;
}

int sidecar_client_main(int argc, char **argv)
{
    static ctx_t c;
    memset(&c, 0, sizeof(c));
    c.timeout_ms = DEFAULT_TIMEOUT_MS;
    c.wait_ms = DEFAULT_WAIT_MS;
    c.token = getenv("ELECTD_HTTP_TOKEN");
    if (c.token == NULL || *c.token == '\0')
        c.token = getenv("ELECTD_WORKLOAD_TOKEN"); /* inside a workload or a hook */
    if (c.token != NULL && *c.token == '\0')
        c.token = NULL;
    const char *http = getenv("ELECTD_HTTP");
    if (http == NULL || *http == '\0')
        http = DEFAULT_HTTP;

    /* First pass: split words from options; options are checked once the command is known. */
    enum { MAX_WORDS = 8, MAX_OPTS = 32 };
    const char *words[MAX_WORDS];
    struct {
        int opt;
        const char *value;
        const char *text;
    } opts[MAX_OPTS];
    int nwords = 0, nopts = 0;
    bool help = false, dashdash = false;
    const char *bad = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (dashdash || a[0] != '-' || strcmp(a, "-") == 0) {
            if (nwords == MAX_WORDS) {
                bad = "too many arguments";
                break;
            }
            words[nwords++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            dashdash = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            help = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || nopts == MAX_OPTS) {
            bad = a;
            break;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        size_t k = 0;
        for (; k < N_OPTIONS; k++)
            if (strlen(OPTIONS[k].name) == nlen && strncmp(OPTIONS[k].name, name, nlen) == 0)
                break;
        if (k == N_OPTIONS || (eq != NULL && OPTIONS[k].value == 0)) {
            bad = a;
            break;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (OPTIONS[k].value == 1 && value == NULL) {
            if (i + 1 == argc) {
                bad = a;
                break;
            }
            value = argv[++i];
        }
        opts[nopts].opt = (int)k;
        opts[nopts].value = value;
        opts[nopts].text = a;
        nopts++;
    }
    int used = 0;
    c.cmd = resolve_cmd(words, nwords, &used);
    const usage_t *u = usage_of(c.cmd);
    c.prog = "electd";
    if (u != NULL) {
        snprintf(c.prog_buf, sizeof(c.prog_buf), "electd %s", u->name);
        c.prog = c.prog_buf;
    }
    if (c.cmd == CMD_HELP || (c.cmd == CMD_NONE && help)) {
        print_help(stdout);
        return SIDECAR_CLIENT_OK;
    }
    if (c.cmd == CMD_NONE) {
        if (nwords > 0 && (strcmp(words[0], "kv") == 0))
            return usage_error(&c, NULL, "kv needs one of get, put, del, ls");
        return usage_error(&c, NULL, "unknown subcommand '%s'", nwords ? words[0] : "");
    }
    if (help) {
        printf("usage: %s\n", u->line);
        print_options(stdout, c.cmd);
        return SIDECAR_CLIENT_OK;
    }
    if (bad != NULL)
        return usage_error(&c, u, "bad option or argument '%s'", bad);
    c.npos = nwords - used;
    if (c.npos < u->min_pos || c.npos > u->max_pos)
        return usage_error(&c, u, c.npos < u->min_pos ? "missing arguments" : "too many arguments");
    for (int i = 0; i < c.npos; i++)
        c.pos[i] = words[used + i];

    for (int i = 0; i < nopts; i++) {
        const option_t *o = &OPTIONS[opts[i].opt];
        const char *v = opts[i].value;
        if (o->cmds != 0 && (o->cmds & BIT(c.cmd)) == 0)
            return usage_error(&c, u, "%s does not apply here", opts[i].text);
        switch (opts[i].opt) {
        case O_HTTP:
            http = v;
            break;
        case O_TOKEN:
            c.token = *v ? v : NULL;
            break;
        case O_JSON:
            c.json = true;
            break;
        case O_TIMEOUT:
            if (!parse_duration(v, &c.timeout_ms))
                return usage_error(&c, u, "invalid --timeout '%s': expected 500ms, 2s or 1m", v);
            break;
        case O_STALE:
            c.stale = true;
            break;
        case O_RAW:
            c.raw = true;
            break;
        case O_FENCE:
            if (!is_u64(v))
                return usage_error(&c, u, "invalid --fence '%s': expected a number", v);
            c.fence = v;
            break;
        case O_IF_MATCH:
            if (!is_u64(v))
                return usage_error(&c, u, "invalid --if-match '%s': expected a revision", v);
            c.if_match = v;
            break;
        case O_TO:
            c.to = v;
            break;
        case O_WAIT:
            c.wait = true;
            if (v != NULL && !parse_duration(v, &c.wait_ms))
                return usage_error(&c, u, "invalid --wait '%s': expected 500ms, 2s or 1m", v);
            break;
        default:
            assert(!"an option without a case");
        }
    }
    for (const char *p = c.token; p != NULL && *p; p++)
        if (!isgraph((unsigned char)*p))
            return usage_error(&c, u, "the token has spaces or control characters");
    if (parse_addr(http, &c.addr) != 0)
        return usage_error(&c, u, "invalid HTTP address '%s': expected HOST:PORT or [IPv6]:PORT",
                           http);
    c.deadline_ms = now_ms() + c.timeout_ms;

    switch (c.cmd) {
    case CMD_STATUS:
        return do_status(&c);
    case CMD_LEADER:
        return do_leader(&c);
    case CMD_TRANSFER:
        return do_transfer(&c);
    case CMD_KV_GET:
        return do_kv_get(&c);
    case CMD_KV_PUT:
        return do_kv_write(&c, true);
    case CMD_KV_DEL:
        return do_kv_write(&c, false);
    case CMD_KV_LS:
        return do_kv_ls(&c);
    case CMD_MEMBERS_LIST:
    case CMD_MEMBERS_ADD:
    case CMD_MEMBERS_REMOVE:
        return do_members(&c);
    default:
        return usage_error(&c, NULL, "unknown subcommand");
    }
}

bool sidecar_client_is_subcommand(const char *arg)
{
    static const char *const names[] = {"status", "leader", "transfer", "kv", "members", "help"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(arg, names[i]) == 0)
            return true;
    return false;
}
