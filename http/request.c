/* request.c — what a handler sees of a request (method, path, params, query, headers,
 * body) and how it answers: response framing (status line, Content-Length, Connection),
 * JSON/text/error helpers and streaming responses for Server-Sent Events. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_int.h"

const char *http_router_method_name(http_method_t m);

const char *http_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 421:
        return "Misdirected Request";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

/* ---- reading ---- */

http_method_t http_req_method(const http_req_t *req)
{
    return req->method;
}

const char *http_req_method_name(const http_req_t *req)
{
    const char *n = llhttp_method_name((llhttp_method_t)req->method_raw);
    return n ? n : http_router_method_name(req->method);
}

const char *http_req_target(const http_req_t *req)
{
    return req->target ? req->target : "";
}

const char *http_req_path(const http_req_t *req)
{
    return req->path ? req->path : "";
}

bool http_req_scoped(const http_req_t *req)
{
    return req->scoped;
}

const char *http_req_route(const http_req_t *req)
{
    return req->route ? req->route->pattern : "";
}

const char *http_req_param(const http_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->nparams; i++)
        if (strcmp(req->params[i].name, name) == 0)
            return req->params[i].value;
    return NULL;
}

const char *http_req_query(const http_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->nquery; i++)
        if (strcmp(req->query[i].name, name) == 0)
            return req->query[i].value;
    return NULL;
}

int http_req_query_at(const http_req_t *req, size_t i, const char **name, const char **value)
{
    if (i >= req->nquery)
        return HTTP_EINVAL;
    *name = req->query[i].name;
    *value = req->query[i].value;
    return 0;
}

const char *http_req_header(const http_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->nhdr; i++)
        if (strcasecmp(req->text + req->hdrs[i].name_off, name) == 0)
            return req->text + req->hdrs[i].value_off;
    return NULL;
}

const char *http_req_body(const http_req_t *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    return req->body ? req->body : "";
}

int http_req_body_json(const http_req_t *req, cJSON **out)
{
    *out = NULL;
    if (!req->body)
        return HTTP_EJSON;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, 0);
    if (!j)
        return HTTP_EJSON;
    /* Trailing garbage after the value is an error, trailing whitespace is not. */
    while (end && end < req->body + req->body_len && strchr(" \t\r\n", *end))
        end++;
    if (end != req->body + req->body_len) {
        cJSON_Delete(j);
        return HTTP_EJSON;
    }
    *out = j;
    return 0;
}

void http_req_peer(const http_req_t *req, char *buf, size_t len)
{
    http_conn_peer(req->conn, buf, len);
}

const char *http_req_peer_cert_cn(const http_req_t *req)
{
    return req->conn->peer_cn;
}

const struct tls_session *http_req_tls(const http_req_t *req)
{
    return req->conn->tls;
}

void http_conn_peer(const struct http_conn *c, char *buf, size_t len)
{
    if (!len)
        return;
    char ip[64] = "";
    int port = 0;
    if (c->is_mem) {
        snprintf(buf, len, "memory");
        return;
    }
    if (c->peer.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&c->peer;
        uv_ip4_name(a, ip, sizeof(ip));
        port = ntohs(a->sin_port);
        snprintf(buf, len, "%s:%d", ip, port);
    } else if (c->peer.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&c->peer;
        uv_ip6_name(a, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
        snprintf(buf, len, "[%s]:%d", ip, port);
    } else {
        snprintf(buf, len, "unknown");
    }
}

void http_req_on_cancel(http_req_t *req, http_cancel_cb cb, void *data)
{
    req->cancel_cb = cb;
    req->cancel_data = data;
}

/* ---- answering ---- */

static bool is_token_char(unsigned char c)
{
    return c > 32 && c < 127 && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

int http_req_header_add(http_req_t *req, const char *name, const char *value)
{
    if (!req || !name || !value || !*name)
        return HTTP_EINVAL;
    if (req->state != REQ_ACTIVE && req->state != REQ_QUEUED)
        return HTTP_ESTATE;
    for (const char *p = name; *p; p++)
        if (!is_token_char((unsigned char)*p))
            return HTTP_EHEADER;
    for (const char *p = value; *p; p++)
        if (*p == '\r' || *p == '\n')
            return HTTP_EHEADER;
    if (!strcasecmp(name, "Content-Length") || !strcasecmp(name, "Connection") ||
        !strcasecmp(name, "Transfer-Encoding") || !strcasecmp(name, "Content-Type"))
        return HTTP_EHEADER;
    size_t nl = strlen(name), vl = strlen(value);
    size_t add = nl + 2 + vl + 2;
    if (req->extra_len + add > HTTP_MAX_EXTRA_HEADERS)
        return HTTP_EHEADER;
    char *e = realloc(req->extra, req->extra_len + add + 1);
    if (!e)
        return HTTP_ENOMEM;
    req->extra = e;
    sprintf(e + req->extra_len, "%s: %s\r\n", name, value);
    req->extra_len += add;
    return 0;
}

/* Build status line + headers (+ body unless streaming/HEAD) into one buffer. */
static char *frame(struct http_req *req, int status, const char *ctype, const void *body,
                   size_t len, bool streaming, bool closing, size_t *out_len)
{
    bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
    size_t ctl = ctype ? strlen(ctype) : 0;
    size_t body_bytes = (streaming || no_body || req->head_only) ? 0 : len;
    size_t cap = 128 + ctl + req->extra_len + body_bytes + 64;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    int n = snprintf(buf, cap, "HTTP/1.1 %d %s\r\n", status, http_status_text(status));
    size_t off = (size_t)n;
    if (ctype)
        off += (size_t)snprintf(buf + off, cap - off, "Content-Type: %s\r\n", ctype);
    if (!streaming && !no_body)
        off += (size_t)snprintf(buf + off, cap - off, "Content-Length: %zu\r\n", len);
    if (req->extra_len) {
        memcpy(buf + off, req->extra, req->extra_len);
        off += req->extra_len;
    }
    if (closing)
        off += (size_t)snprintf(buf + off, cap - off, "Connection: close\r\n");
    else if (req->http_major == 1 && req->http_minor == 0)
        off += (size_t)snprintf(buf + off, cap - off, "Connection: keep-alive\r\n");
    memcpy(buf + off, "\r\n", 2);
    off += 2;
    if (body_bytes) {
        memcpy(buf + off, body, body_bytes);
        off += body_bytes;
    }
    assert(off <= cap);
    *out_len = off;
    return buf;
}

static void count(struct http_req *req, int status)
{
    struct http_server *srv = req->conn->srv;
    srv->counters.requests++;
    http_stats_count(req->route ? &((struct route *)req->route)->stats : &srv->unmatched, status);
}

/* Checks shared by every answer: returns 0, or an error after which (for ECLOSED) the
 * request is finished without its cancel callback. */
static int answerable(struct http_req *req, enum req_state want)
{
    if (!req || req->state != want)
        return HTTP_ESTATE;
    struct http_conn *c = req->conn;
    if (c->closing || c->abort_pending) {
        req->cancel_cb = NULL;
        if (!c->closing)
            req->state = REQ_DEAD;
        return HTTP_ECLOSED;
    }
    return 0;
}

/* Frames the status line, headers and body (for a stream: only what precedes the first
 * chunk) and queues them. On failure the request is dead: its cancel callback will not run. */
static int send_head(struct http_req *req, int status, const char *content_type, const void *body,
                     size_t len, bool stream, bool closing)
{
    struct http_conn *c = req->conn;
    size_t n;
    char *buf = frame(req, status, content_type, body, len, stream, closing, &n);
    if (!buf) {
        http_conn_defer_abort(c);
        req->cancel_cb = NULL;
        req->state = REQ_DEAD;
        return HTTP_ENOMEM;
    }
    count(req, status);
    int rc = http_conn_write(c, buf, n);
    if (rc) {
        req->cancel_cb = NULL;
        req->state = REQ_DEAD;
        return rc;
    }
    return 0;
}

int http_req_reply_raw(struct http_req *req, int status, const char *content_type, const void *body,
                       size_t len)
{
    if (!req || status < 100 || status > 999 || (len && !body))
        return HTTP_EINVAL;
    enum req_state want = req->pre_status ? REQ_QUEUED : REQ_ACTIVE;
    int rc = answerable(req, want);
    if (rc)
        return rc;
    bool closing = req->close_after || !req->keep_alive;
    rc = send_head(req, status, content_type, body, len, false, closing);
    if (rc)
        return rc;
    http_conn_request_done(req->conn, req, closing);
    return 0;
}

int http_req_reply(http_req_t *req, int status, const char *content_type, const void *body,
                   size_t len)
{
    if (req && req->pre_status)
        return HTTP_ESTATE; /* server-owned answers are not for handlers */
    return http_req_reply_raw(req, status, content_type, body, len);
}

int http_req_reply_json(http_req_t *req, int status, const cJSON *json)
{
    if (!json)
        return HTTP_EINVAL;
    char *s = cJSON_PrintUnformatted(json);
    if (!s)
        return HTTP_ENOMEM;
    int rc = http_req_reply(req, status, "application/json", s, strlen(s));
    cJSON_free(s);
    return rc;
}

int http_req_reply_text(http_req_t *req, int status, const char *content_type, const char *text)
{
    if (!text)
        return HTTP_EINVAL;
    return http_req_reply(req, status, content_type ? content_type : "text/plain; charset=utf-8",
                          text, strlen(text));
}

/* The error document; shared by handlers and by the server's own answers. */
static int reply_error(http_req_t *req, int status, const char *code, const char *message)
{
    if (!code || !message)
        return HTTP_EINVAL;
    cJSON *root = cJSON_CreateObject();
    cJSON *err = root ? cJSON_AddObjectToObject(root, "error") : NULL;
    char *s = NULL;
    if (err && cJSON_AddStringToObject(err, "code", code) &&
        cJSON_AddStringToObject(err, "message", message))
        s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s)
        return HTTP_ENOMEM;
    int rc = http_req_reply_raw(req, status, "application/json", s, strlen(s));
    cJSON_free(s);
    return rc;
}

int http_req_reply_error(http_req_t *req, int status, const char *code, const char *message)
{
    if (req && req->pre_status)
        return HTTP_ESTATE;
    return reply_error(req, status, code, message);
}

int http_req_reply_server_error(struct http_req *req)
{
    return reply_error(req, req->pre_status, req->pre_code, req->pre_message);
}

int http_req_stream_start(http_req_t *req, int status, const char *content_type)
{
    if (!req || status < 200 || status > 999 || req->pre_status)
        return HTTP_EINVAL;
    int rc = answerable(req, REQ_ACTIVE);
    if (rc)
        return rc;
    rc = send_head(req, status, content_type, NULL, 0, true, true);
    if (rc)
        return rc;
    /* A HEAD request sends nothing more; http_req_stream_end() finishes it. */
    req->state = REQ_STREAMING;
    return 0;
}

int http_req_stream_write(http_req_t *req, const void *data, size_t len)
{
    if (!req || (len && !data))
        return HTTP_EINVAL;
    if (req->state != REQ_STREAMING)
        return HTTP_ESTATE;
    struct http_conn *c = req->conn;
    if (c->closing || c->abort_pending)
        return HTTP_ECLOSED; /* the cancel callback follows from the loop */
    if (req->head_only || len == 0)
        return 0;
    if (http_conn_write_queue(c) + len > c->srv->lim.max_write_queue_bytes) {
        http_conn_defer_abort(c);
        return HTTP_ESLOW;
    }
    char *buf = malloc(len);
    if (!buf) {
        http_conn_defer_abort(c);
        return HTTP_ENOMEM;
    }
    memcpy(buf, data, len);
    int rc = http_conn_write(c, buf, len);
    return rc;
}

size_t http_req_stream_room(const http_req_t *req)
{
    if (!req || req->state != REQ_STREAMING)
        return 0;
    const struct http_conn *c = req->conn;
    if (c->closing || c->abort_pending)
        return 0;
    size_t queued = http_conn_write_queue(c), max = c->srv->lim.max_write_queue_bytes;
    return queued < max ? max - queued : 0;
}

int http_req_stream_end(http_req_t *req)
{
    if (!req)
        return HTTP_EINVAL;
    if (req->state != REQ_STREAMING)
        return HTTP_ESTATE;
    struct http_conn *c = req->conn;
    if (c->closing || c->abort_pending) {
        req->cancel_cb = NULL;
        if (!c->closing)
            req->state = REQ_DEAD;
        return HTTP_ECLOSED;
    }
    http_conn_request_done(c, req, true);
    return 0;
}
