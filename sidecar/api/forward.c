/* forward.c — --forward: a follower relays a request that needs the leader to the
 * leader's advertised HTTP address and relays the answer back, so that clients need not
 * follow 421s. One hop only: a forwarded request is never forwarded again. When this member
 * serves HTTPS the leader does too (all members of a group use one scheme): the relay then
 * runs through a TLS session that verifies the leader's certificate (secure.c's client
 * context) and presents this member's own certificate when the leader asks for one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"

#define FWD_TIMEOUT_MS   5000
#define FWD_RESPONSE_MAX ((size_t)(2u << 20)) /* body bytes of the leader's answer */
#define FWD_READ_BYTES   16384                /* one read from the leader */
#define FWD_HEADER       "X-Electd-Forwarded"
#define FWD_ETLS         (-100) /* the TLS session with the leader failed */
#define FWD_TLS_CHUNK    16384  /* plaintext encrypted at once, under TLS_SESSION_OUT_MAX */
#define FWD_AUTH_MAX     (SIDECAR_CONFIG_TOKEN_MAX + 16) /* "Bearer " and the --http-token */

struct fwd {
    uv_tcp_t tcp;
    bool tcp_open;
    uv_getaddrinfo_t gai;
    bool resolving;
    struct addrinfo *addrs, *next; /* the leader's resolved addresses; next is tried next */
    uv_connect_t connect;
    uv_timer_t timer;
    http_req_t *req; /* NULL once answered or gone */
    char *out;
    http_response_t resp; /* the leader's answer, parsed as it arrives */
    bool head_only;       /* a HEAD request: the answer ends with its head */
    char rbuf[FWD_READ_BYTES];
    int handles;
    bool done;
    tls_ctx_t *tls_ctx; /* HTTPS: the client context (borrowed from the API); else NULL */
    tls_session_t *tls; /* the session on the current connection */
    bool request_sent;  /* over TLS: the request goes once the handshake completes */
    char host[256];     /* the leader's host: the name its certificate must carry */
    char plain[TLS_RECORD_MAX];
};

/* One write of a copy of data; freed by its callback. */
struct fwd_write {
    uv_write_t req;
    struct fwd *f;
    char data[];
};

/* Drops one of f's open handles or requests; frees f with the last. */
static void release(struct fwd *f)
{
    if (--f->handles > 0)
        return;
    if (f->addrs != NULL)
        uv_freeaddrinfo(f->addrs);
    tls_session_close(f->tls);
    free(f->out);
    http_response_close(&f->resp);
    free(f);
}

static void closed_cb(uv_handle_t *h)
{
    release(h->data);
}

static void finish(struct fwd *f, int status, const char *code, const char *msg)
{
    if (f->done)
        return;
    f->done = true;
    if (f->req != NULL) {
        http_req_on_cancel(f->req, NULL, NULL);
        if (status)
            http_req_reply_error(f->req, status, code, msg);
        f->req = NULL;
    }
    if (f->resolving)
        uv_cancel((uv_req_t *)&f->gai);
    if (f->tcp_open) {
        f->tcp_open = false;
        uv_close((uv_handle_t *)&f->tcp, closed_cb);
    }
    uv_close((uv_handle_t *)&f->timer, closed_cb);
}

static void cancel_cb(http_req_t *req, void *data)
{
    (void)req;
    struct fwd *f = data;
    f->req = NULL; /* the client left; let the leader's answer go nowhere */
}

static void write_cb(uv_write_t *w, int status)
{
    struct fwd_write *fw = (struct fwd_write *)w;
    struct fwd *f = fw->f;
    free(fw);
    if (status != 0)
        finish(f, 502, "bad_gateway", uv_strerror(status));
}

/* Queues a copy of len bytes on the connection. 0, or -1 (the caller finishes). */
static int send_bytes(struct fwd *f, const char *data, size_t len)
{
    if (len == 0)
        return 0;
    struct fwd_write *fw = malloc(sizeof(*fw) + len);
    if (fw == NULL)
        return -1;
    fw->f = f;
    memcpy(fw->data, data, len);
    uv_buf_t b = uv_buf_init(fw->data, (unsigned)len);
    if (uv_write(&fw->req, (uv_stream_t *)&f->tcp, &b, 1, write_cb) != 0) {
        free(fw);
        return -1;
    }
    return 0;
}

/* Sends whatever ciphertext the session has waiting. */
static int tls_flush(struct fwd *f)
{
    char buf[FWD_READ_BYTES];
    size_t n;
    while ((n = tls_session_out_read(f->tls, buf, sizeof(buf))) > 0)
        if (send_bytes(f, buf, n) != 0)
            return -1;
    return 0;
}

/* Over TLS: the request, encrypted in pieces that fit the session's output. */
static int tls_send_request(struct fwd *f)
{
    size_t len = strlen(f->out);
    for (size_t off = 0; off < len;) {
        size_t n = len - off < FWD_TLS_CHUNK ? len - off : FWD_TLS_CHUNK;
        if (tls_session_write(f->tls, f->out + off, n) != 0 || tls_flush(f) != 0)
            return FWD_ETLS;
        off += n;
    }
    f->request_sent = true;
    return 0;
}

/* Decrypts what the session holds into the response parser, sending the request once the
 * handshake is done. As http_response_feed: 1 complete, 0 more needed, or an error. */
static int tls_drain(struct fwd *f)
{
    for (;;) {
        size_t n = 0;
        int rc = tls_session_read(f->tls, f->plain, sizeof(f->plain), &n);
        if (tls_flush(f) != 0)
            return FWD_ETLS;
        if (rc == TLS_ECLOSED)
            return http_response_finish(&f->resp) == 0 ? 1 : HTTP_EPROTO;
        if (rc < 0)
            return FWD_ETLS;
        if (!f->request_sent && tls_session_established(f->tls) && (rc = tls_send_request(f)) != 0)
            return rc;
        if (n == 0)
            return 0;
        if ((rc = http_response_feed(&f->resp, f->plain, n)) != 0)
            return rc;
    }
}

/* Ciphertext from the leader; returns as tls_drain. */
static int tls_in(struct fwd *f, const char *data, size_t len)
{
    while (len > 0) {
        size_t used = 0;
        int rc = tls_session_feed(f->tls, data, len, &used);
        if (rc < 0 && rc != TLS_EFULL)
            return FWD_ETLS;
        data += used;
        len -= used;
        if ((rc = tls_drain(f)) != 0)
            return rc;
    }
    return 0;
}

/* Relays the leader's complete answer: its status, Content-Type and body. */
static void relay(struct fwd *f)
{
    size_t body_len = 0;
    const char *body = http_response_body(&f->resp, &body_len);
    if (f->head_only)
        body_len = 0;
    const char *ctype = http_response_header(&f->resp, "Content-Type");
    if (f->req != NULL) {
        http_req_on_cancel(f->req, NULL, NULL);
        http_req_reply(f->req, f->resp.status, ctype ? ctype : "application/json", body, body_len);
        f->req = NULL;
    }
    finish(f, 0, NULL, NULL);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct fwd *f = h->data;
    (void)suggested;
    *buf = uv_buf_init(f->rbuf, sizeof(f->rbuf));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct fwd *f = s->data;
    if (f->done || n == 0)
        return;
    int rc;
    if (n > 0 && f->tls != NULL)
        rc = tls_in(f, buf->base, (size_t)n);
    else if (n > 0)
        rc = http_response_feed(&f->resp, buf->base, (size_t)n);
    else if (n == UV_EOF)
        rc = http_response_finish(&f->resp) == 0 ? 1 : HTTP_EPROTO; /* a body cut short */
    else {
        finish(f, 502, "bad_gateway", uv_strerror((int)n));
        return;
    }
    if (rc == 0 && f->head_only && f->resp.headers_done)
        rc = 1; /* its Content-Length describes a body that is not sent */
    if (rc == 1) {
        relay(f);
    } else if (rc == FWD_ETLS) {
        char msg[TLS_ERROR_TEXT_MAX + 64];
        snprintf(msg, sizeof(msg), "TLS with the leader failed: %s", tls_session_error(f->tls));
        SIDECAR_LOG(SIDECAR_LOG_WARN, "--forward: TLS with the leader failed",
                    SIDECAR_LOG_STR("leader", f->host),
                    SIDECAR_LOG_STR("reason", tls_session_error(f->tls)));
        finish(f, 502, "bad_gateway", msg);
    } else if (rc == HTTP_ETOOBIG)
        finish(f, 502, "bad_gateway", "the leader's answer is too large");
    else if (rc < 0)
        finish(f, 502, "bad_gateway", "the leader's answer could not be read");
}

static void connect_cb(uv_connect_t *c, int status);

/* Connects to the leader's next resolved address; each is tried before giving up. */
static void connect_next(struct fwd *f)
{
    struct addrinfo *ai = f->next;
    if (ai == NULL) {
        finish(f, 502, "bad_gateway", "cannot reach the leader's HTTP address");
        return;
    }
    f->next = ai->ai_next;
    uv_tcp_init(uv_handle_get_loop((uv_handle_t *)&f->timer), &f->tcp);
    f->tcp.data = f;
    f->tcp_open = true;
    f->handles++;
    if (uv_tcp_connect(&f->connect, &f->tcp, ai->ai_addr, connect_cb) != 0)
        connect_cb(&f->connect, UV_ECONNREFUSED);
}

static void retry_closed_cb(uv_handle_t *h)
{
    struct fwd *f = h->data;
    if (!f->done)
        connect_next(f);
    release(f);
}

static void connect_cb(uv_connect_t *c, int status)
{
    struct fwd *f = c->data;
    if (f->done)
        return;
    if (status != 0) {
        f->tcp_open = false;
        uv_close((uv_handle_t *)&f->tcp, retry_closed_cb);
        return;
    }
    int rv;
    if (f->tls_ctx != NULL) {
        tls_session_close(f->tls); /* from an address tried before */
        f->tls = NULL;
        rv = tls_session_open(f->tls_ctx, f->host, &f->tls) != 0 || tls_flush(f) != 0;
    } else {
        rv = send_bytes(f, f->out, strlen(f->out));
    }
    if (rv != 0 || uv_read_start((uv_stream_t *)&f->tcp, alloc_cb, read_cb) != 0)
        finish(f, 502, "bad_gateway", "cannot talk to the leader");
}

static void resolved_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct fwd *f = req->data;
    f->resolving = false;
    f->addrs = f->next = res;
    if (!f->done && (status != 0 || res == NULL))
        finish(f, 502, "bad_gateway", "cannot resolve the leader's HTTP address");
    else if (!f->done)
        connect_next(f);
    release(f);
}

static void timeout_cb(uv_timer_t *t)
{
    finish(t->data, 504, "forward_timeout", "the leader did not answer in time");
}

/* The value of header name in the relay: the request's own, but for a request let in by a
 * workload's token, which only this member can check (the workload runs here, and named
 * elections' workloads often run on a follower): this member has applied that credential's
 * rules (a write fenced by the workload's own election, kv.c) and vouches for the request
 * with its own --http-token. */
static const char *relayed_header(const sidecar_api_t *api, http_req_t *req, const char *name,
                                  char *buf, size_t len)
{
    if (strcmp(name, "Authorization") != 0 || !http_req_scoped(req) || api->cfg->http_token == NULL)
        return http_req_header(req, name);
    snprintf(buf, len, "Bearer %s", api->cfg->http_token);
    return buf;
}

/* Builds the forwarded request; NULL on allocation failure. */
static char *build(const sidecar_api_t *api, http_req_t *req, const char *leader_http,
                   const char *target)
{
    size_t body_len = 0;
    const char *body = http_req_body(req, &body_len);
    static const char *pass[] = {"If-Match",          "If-None-Match", "X-Electd-Fence",
                                 "X-Electd-Election", "Authorization", "Content-Type"};
    char auth[FWD_AUTH_MAX];
    size_t cap = strlen(target) + body_len + 1024;
    for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
        const char *v = relayed_header(api, req, pass[i], auth, sizeof(auth));
        cap += v ? strlen(v) + strlen(pass[i]) + 4 : 0;
    }
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    int n = snprintf(out, cap, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s: 1\r\n",
                     http_req_method_name(req), target, leader_http, FWD_HEADER);
    for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
        const char *v = relayed_header(api, req, pass[i], auth, sizeof(auth));
        if (v != NULL)
            n += snprintf(out + n, cap - (size_t)n, "%s: %s\r\n", pass[i], v);
    }
    n += snprintf(out + n, cap - (size_t)n, "Content-Length: %zu\r\n\r\n", body_len);
    memcpy(out + n, body, body_len);
    out[(size_t)n + body_len] = '\0';
    return out;
}

bool api_forward(sidecar_api_t *api, http_req_t *req, const char *leader_http, const char *target)
{
    if (!api->cfg->forward || leader_http == NULL || http_req_header(req, FWD_HEADER) != NULL)
        return false;
    /* The advertised address is host:port ([v6]:port); a name is resolved now, and every
     * address it has is tried in order. */
    char port[8];
    uint16_t port_num;
    struct fwd *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return false;
    if (sidecar_config_hostport_parse(leader_http, f->host, sizeof(f->host), &port_num) != 0) {
        free(f);
        return false;
    }
    snprintf(port, sizeof(port), "%u", port_num);
    f->tls_ctx = api->secure.client;
    f->out = build(api, req, leader_http, target);
    if (f->out == NULL) {
        free(f);
        return false;
    }
    uv_loop_t *loop = uv_handle_get_loop((uv_handle_t *)&api->timer);
    uv_timer_init(loop, &f->timer);
    f->timer.data = f->connect.data = f->gai.data = f;
    f->handles = 1;
    http_response_open(&f->resp, 0, FWD_RESPONSE_MAX);
    f->head_only = http_req_method(req) == HTTP_METHOD_HEAD;
    f->req = req;
    http_req_on_cancel(req, cancel_cb, f);
    uv_timer_start(&f->timer, timeout_cb, FWD_TIMEOUT_MS, 0);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (uv_getaddrinfo(loop, &f->gai, resolved_cb, f->host, port, &hints) != 0) {
        finish(f, 502, "bad_gateway", "cannot resolve the leader's HTTP address");
        return true;
    }
    f->resolving = true;
    f->handles++;
    return true;
}
