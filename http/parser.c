/* parser.c — building requests from bytes: the llhttp callbacks that collect a request's
 * target, headers and body within the server's limits, check the probe reserve and the
 * credentials once the head is complete, and queue the finished request on its connection
 * (conn.c feeds the bytes and dispatches what is queued). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_int.h"

/* ---- requests ---- */

struct http_req *http_req_new(struct http_conn *c)
{
    struct http_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->conn = c;
    r->state = REQ_PARSING;
    r->method = HTTP_METHOD_OTHER;
    r->http_major = 1;
    r->http_minor = 1;
    return r;
}

void http_req_free(struct http_req *req)
{
    if (!req)
        return;
    while (req->arena) {
        struct chunk *n = req->arena->next;
        free(req->arena);
        req->arena = n;
    }
    free(req->text);
    free(req->hdrs);
    free(req->body);
    free(req->extra);
    free(req);
}

/* Append to a growable buffer whose final size the caller has already bounded. */
int http_grow_append(char **buf, size_t *len, size_t *cap, const char *at, size_t n)
{
    if (BASE_VEC_RESERVE(*buf, *cap, *len + n + 1, 256) != 0)
        return -1;
    if (n)
        memcpy(*buf + *len, at, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

void http_req_enqueue(struct http_conn *c, struct http_req *r)
{
    r->state = REQ_QUEUED;
    r->next = NULL;
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->nqueued++;
}

void http_req_set_pre(struct http_req *r, int status)
{
    r->pre_status = status;
    switch (status) {
    case 400:
        r->pre_code = "bad_request";
        r->pre_message = "malformed request";
        break;
    case 401:
        r->pre_code = "unauthorized";
        r->pre_message = "missing or wrong bearer token";
        break;
    case 403:
        r->pre_code = "insufficient_scope";
        r->pre_message = "this token may not use this endpoint";
        break;
    case 404:
        r->pre_code = "not_found";
        r->pre_message = "no such route";
        break;
    case 405:
        r->pre_code = "method_not_allowed";
        r->pre_message = "method not allowed";
        break;
    case 408:
        r->pre_code = "request_timeout";
        r->pre_message = "request headers too slow";
        break;
    case 413:
        r->pre_code = "payload_too_large";
        r->pre_message = "request body too large";
        break;
    case 414:
        r->pre_code = "uri_too_long";
        r->pre_message = "request target too long";
        break;
    case 431:
        r->pre_code = "headers_too_large";
        r->pre_message = "request headers too large";
        break;
    case 503: /* only from the probe reserve */
        r->pre_code = "too_many_connections";
        r->pre_message = "connection limit reached; only health probes are served over it";
        break;
    default:
        r->pre_status = 500;
        r->pre_code = "internal";
        r->pre_message = "internal error";
        break;
    }
}

/* ---- llhttp callbacks ---- */

static struct http_conn *pconn(llhttp_t *p)
{
    return p->data;
}

static int fail_cb(struct http_conn *c, int status)
{
    c->error_status = status;
    return -1;
}

static int on_message_begin(llhttp_t *p)
{
    struct http_conn *c = pconn(p);
    assert(!c->cur);
    c->cur = http_req_new(c);
    if (!c->cur)
        return fail_cb(c, 500);
    c->hdr_start_ms = http_conn_now_ms(c);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *c = pconn(p);
    struct http_req *r = c->cur;
    if (r->url_len + len > c->srv->lim.max_url_bytes)
        return fail_cb(c, 414);
    if (http_grow_append(&r->text, &r->text_len, &r->text_cap, at, len))
        return fail_cb(c, 500);
    r->url_len += len;
    return 0;
}

static http_method_t map_method(uint8_t m);

/* A connection from the probe reserve serves one probe and nothing else; the request line
 * decides, before any header is read. The route found here is kept for the request. */
static int probe_check(struct http_conn *c, llhttp_t *p)
{
    struct http_req *r = c->cur;
    r->method = map_method(llhttp_get_method(p));
    if (http_router_parse_target(r) != 0 || http_router_match(c->srv, r) != 0 ||
        !(r->route->flags & HTTP_ROUTE_PROBE))
        return fail_cb(c, 503);
    return 0;
}

static int on_url_complete(llhttp_t *p)
{
    struct http_conn *c = pconn(p);
    struct http_req *r = c->cur;
    /* The target's NUL terminator is already there; keep it by counting it in text. */
    if (http_grow_append(&r->text, &r->text_len, &r->text_cap, "", 0))
        return fail_cb(c, 500);
    r->text_len++;
    return c->probe_only ? probe_check(c, p) : 0;
}

static int header_bytes(struct http_conn *c, size_t n)
{
    struct http_req *r = c->cur;
    r->header_bytes += n;
    return r->header_bytes > c->srv->lim.max_header_bytes ? -1 : 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *c = pconn(p);
    struct http_req *r = c->cur;
    if (header_bytes(c, len))
        return fail_cb(c, 431);
    if (r->headers_done)
        return 0; /* trailer: counted, not kept */
    if (!r->in_value) {
        /* First piece of a new header name. */
        if (r->nhdr >= c->srv->lim.max_headers)
            return fail_cb(c, 431);
        if (BASE_VEC_RESERVE(r->hdrs, r->hdr_cap, r->nhdr + 1, 8) != 0)
            return fail_cb(c, 500);
        r->hdrs[r->nhdr].name_off = (uint32_t)r->text_len;
        r->hdrs[r->nhdr].name_len = 0;
        r->hdrs[r->nhdr].value_off = 0;
        r->hdrs[r->nhdr].value_len = 0;
        r->nhdr++;
        r->in_value = true;
    }
    if (http_grow_append(&r->text, &r->text_len, &r->text_cap, at, len))
        return fail_cb(c, 500);
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    struct http_conn *c = pconn(p);
    struct http_req *r = c->cur;
    if (r->headers_done)
        return 0;
    if (!r->in_value) /* empty name: llhttp refuses these, but never trust it blindly */
        return fail_cb(c, 400);
    struct hdr *h = &r->hdrs[r->nhdr - 1];
    h->name_len = (uint32_t)(r->text_len - h->name_off);
    if (http_grow_append(&r->text, &r->text_len, &r->text_cap, "", 0))
        return fail_cb(c, 500);
    r->text_len++;
    h->value_off = (uint32_t)r->text_len;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *c = pconn(p);
    struct http_req *r = c->cur;
    if (header_bytes(c, len))
        return fail_cb(c, 431);
    if (r->headers_done)
        return 0;
    if (http_grow_append(&r->text, &r->text_len, &r->text_cap, at, len))
        return fail_cb(c, 500);
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct http_conn *c = pconn(p);
    struct http_req *r = c->cur;
    /* Per-line overhead, so a flood of empty headers still hits the byte limit. */
    if (header_bytes(c, 4))
        return fail_cb(c, 431);
    if (r->headers_done)
        return 0;
    if (!r->in_value || r->nhdr == 0)
        return fail_cb(c, 400);
    struct hdr *h = &r->hdrs[r->nhdr - 1];
    if (h->value_off == 0) /* value without a completed name */
        return fail_cb(c, 400);
    h->value_len = (uint32_t)(r->text_len - h->value_off);
    if (http_grow_append(&r->text, &r->text_len, &r->text_cap, "", 0))
        return fail_cb(c, 500);
    r->text_len++;
    r->in_value = false;
    return 0;
}

static http_method_t map_method(uint8_t m)
{
    switch (m) {
    case HTTP_GET:
        return HTTP_METHOD_GET;
    case HTTP_HEAD:
        return HTTP_METHOD_HEAD;
    case HTTP_POST:
        return HTTP_METHOD_POST;
    case HTTP_PUT:
        return HTTP_METHOD_PUT;
    case HTTP_DELETE:
        return HTTP_METHOD_DELETE;
    case HTTP_PATCH:
        return HTTP_METHOD_PATCH;
    case HTTP_OPTIONS:
        return HTTP_METHOD_OPTIONS;
    default:
        return HTTP_METHOD_OTHER;
    }
}

/* Constant-time comparison: the token must not leak through timing. */
static bool token_ok(const struct http_server *srv, const char *t, size_t n)
{
    unsigned char diff = n != srv->token_len;
    for (size_t i = 0; i < srv->token_len; i++)
        diff |= (unsigned char)(srv->token[i] ^ (i < n ? t[i] : 0));
    return diff == 0;
}

/* A mutating route with a token set: 0 (allowed), 401 (no or unknown token) or 403 (the
 * scoped credential on a route it may not use). */
const char *http_req_bearer(const http_req_t *r, size_t *len)
{
    const char *auth = http_req_header(r, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return NULL;
    const char *t = auth + 7;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    *len = n;
    return t;
}

static int authorize(struct http_server *srv, struct http_req *r)
{
    size_t n = 0;
    const char *t = http_req_bearer(r, &n);
    if (t == NULL)
        return 401;
    if (token_ok(srv, t, n))
        return 0;
    if (!srv->scoped_cb || !srv->scoped_cb(t, n, srv->scoped_data))
        return 401;
    if (!(r->route->flags & HTTP_ROUTE_SCOPED))
        return 403;
    r->scoped = true;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct http_conn *c = pconn(p);
    struct http_req *r = c->cur;
    struct http_server *srv = c->srv;
    if (r->in_value) /* a name without a value */
        return fail_cb(c, 400);
    r->headers_done = true;
    r->method_raw = llhttp_get_method(p);
    r->method = map_method(r->method_raw);
    r->head_only = r->method == HTTP_METHOD_HEAD;
    r->http_major = llhttp_get_http_major(p);
    r->http_minor = llhttp_get_http_minor(p);
    if (r->url_len == 0 || !r->text)
        return fail_cb(c, 400);
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > srv->lim.max_body_bytes)
        return fail_cb(c, 413);
    int st = r->route ? 0 : http_router_parse_target(r); /* probe_check may have routed it */
    if (st == 0 && !r->route)
        st = http_router_match(srv, r);
    if (st == 0 && (r->route->flags & HTTP_ROUTE_MUTATING) && srv->token_len)
        st = authorize(srv, r);
    c->last_io_ms = http_conn_now_ms(c); /* the body (kept or discarded) is timed from here */
    if (st) {
        if (st == 400)
            srv->counters.bad_requests++;
        http_req_set_pre(r, st);
        if (st != 401 && st != 403)
            r->route = NULL; /* counted as unmatched; 401 and 403 count under their route */
        return 0;
    }
    /* A client waiting for "100 Continue" before sending its body: conn_process() sends it
     * once every earlier request is answered (an interim response must not overtake
     * them). */
    const char *expect = http_req_header(r, "Expect");
    if (expect && strcasecmp(expect, "100-continue") == 0 && r->http_minor >= 1)
        r->expect_continue = true;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *c = pconn(p);
    struct http_req *r = c->cur;
    if (r->body_len + len > c->srv->lim.max_body_bytes)
        return fail_cb(c, 413);
    if (r->pre_status) {
        r->body_len += len; /* discarded, but still bounded */
        return 0;
    }
    if (http_grow_append(&r->body, &r->body_len, &r->body_cap, at, len))
        return fail_cb(c, 500);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct http_conn *c = pconn(p);
    struct http_req *r = c->cur;
    c->cur = NULL;
    r->keep_alive = llhttp_should_keep_alive(p) && !c->probe_only;
    if (r->pre_status) {
        free(r->body);
        r->body = NULL;
        r->body_len = 0;
    } else if (!r->body && http_grow_append(&r->body, &r->body_len, &r->body_cap, "", 0)) {
        http_req_free(r);
        return fail_cb(c, 500);
    }
    http_req_enqueue(c, r);
    if (!r->keep_alive) {
        c->read_done = true; /* nothing after this request is read */
        return HPE_PAUSED;
    }
    if (c->nqueued >= c->srv->lim.max_pipelined) {
        c->paused = true;
        return HPE_PAUSED;
    }
    return 0;
}

const llhttp_settings_t http_parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};
