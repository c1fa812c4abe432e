/* conn.c — one client connection: feeding bytes to llhttp (from a socket or from memory),
 * enforcing the request limits, the in-order queue of pipelined requests (one dispatched
 * at a time), header/idle/linger timers, response writes, and the two ways a connection
 * ends: a graceful finish (shutdown after the last response, linger, close) or an abort
 * (cancel the unanswered request, close now).
 *
 * Re-entrancy rule: handlers and their owners call into request.c at any time; anything
 * that would call back into them (cancel callbacks, the next handler) is deferred to the
 * `kick` timer unless we are already inside conn_process() for this connection. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_int.h"

int http_req_reply_server_error(struct http_req *req);

enum { TIMER_NONE, TIMER_HEADER, TIMER_IDLE };

static void conn_process(struct http_conn *c);
static void rearm_timer(struct http_conn *c);
static void update_reading(struct http_conn *c);
static void conn_finish(struct http_conn *c);
static void kick_cb(uv_timer_t *t);

static uint64_t now_ms(const struct http_conn *c)
{
    return uv_now(c->srv->loop);
}

/* ---- requests ---- */

static struct http_req *req_new(struct http_conn *c)
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
static int grow_append(char **buf, size_t *len, size_t *cap, const char *at, size_t n)
{
    if (BASE_VEC_RESERVE(*buf, *cap, *len + n + 1, 256) != 0)
        return -1;
    if (n)
        memcpy(*buf + *len, at, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

static void enqueue(struct http_conn *c, struct http_req *r)
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

static void set_pre(struct http_req *r, int status)
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
    c->cur = req_new(c);
    if (!c->cur)
        return fail_cb(c, 500);
    c->hdr_start_ms = now_ms(c);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *c = pconn(p);
    struct http_req *r = c->cur;
    if (r->url_len + len > c->srv->lim.max_url_bytes)
        return fail_cb(c, 414);
    if (grow_append(&r->text, &r->text_len, &r->text_cap, at, len))
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
    if (grow_append(&r->text, &r->text_len, &r->text_cap, "", 0))
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
    if (grow_append(&r->text, &r->text_len, &r->text_cap, at, len))
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
    if (grow_append(&r->text, &r->text_len, &r->text_cap, "", 0))
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
    if (grow_append(&r->text, &r->text_len, &r->text_cap, at, len))
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
    if (grow_append(&r->text, &r->text_len, &r->text_cap, "", 0))
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
static int authorize(struct http_server *srv, struct http_req *r)
{
    const char *auth = http_req_header(r, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return 401;
    const char *t = auth + 7;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
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
    c->last_io_ms = now_ms(c); /* the body (kept or discarded) is timed from here */
    if (st) {
        if (st == 400)
            srv->counters.bad_requests++;
        set_pre(r, st);
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
    if (grow_append(&r->body, &r->body_len, &r->body_cap, at, len))
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
    } else if (!r->body && grow_append(&r->body, &r->body_len, &r->body_cap, "", 0)) {
        http_req_free(r);
        return fail_cb(c, 500);
    }
    enqueue(c, r);
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

static const llhttp_settings_t settings = {
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

/* ---- feeding ---- */

/* The byte stream cannot be trusted any more: answer `status` after the requests already
 * queued, then close. */
static void parse_error(struct http_conn *c, int status)
{
    c->read_done = true;
    c->paused = false;
    free(c->pending);
    c->pending = NULL;
    c->pending_len = 0;
    struct http_req *r = c->cur ? c->cur : req_new(c);
    c->cur = NULL;
    if (!r) {
        http_conn_abort(c);
        return;
    }
    if (status == 503)
        c->srv->counters.connections_rejected++;
    else if (status != 408)
        c->srv->counters.bad_requests++;
    set_pre(r, status);
    r->route = NULL;
    r->close_after = true;
    r->keep_alive = false;
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
    enqueue(c, r);
}

static int save_pending(struct http_conn *c, const char *data, size_t len)
{
    if (c->pending_len + len > HTTP_PENDING_MAX)
        return -1;
    char *np = realloc(c->pending, c->pending_len + len + 1);
    if (!np)
        return -1;
    memcpy(np + c->pending_len, data, len);
    c->pending = np;
    c->pending_len += len;
    return 0;
}

static void execute(struct http_conn *c, const char *data, size_t len)
{
    llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
    if (err == HPE_OK)
        return;
    if (err == HPE_PAUSED) {
        if (c->read_done)
            return;
        const char *pos = llhttp_get_error_pos(&c->parser);
        assert(c->paused && pos >= data && pos <= data + len);
        if (save_pending(c, pos, (size_t)(data + len - pos)))
            parse_error(c, 500);
        return;
    }
    if (err == HPE_PAUSED_UPGRADE) {
        /* Upgrades are not supported: answer the request, then close. */
        c->read_done = true;
        if (c->tail)
            c->tail->close_after = true;
        return;
    }
    parse_error(c, c->error_status ? c->error_status : 400);
}

static void conn_feed(struct http_conn *c, const char *data, size_t len)
{
    /* Bytes alone do not move the idle clock: a client trickling empty lines (which begin
     * no request) would otherwise hold its connection forever. */
    if (c->closing || c->finishing || c->read_done || len == 0)
        return;
    if (c->paused) {
        if (save_pending(c, data, len))
            parse_error(c, 500);
    } else {
        execute(c, data, len);
    }
    conn_process(c);
}

/* Resume a parser paused by a full queue once there is room again. */
static void try_resume(struct http_conn *c)
{
    if (!c->paused || c->nqueued >= c->srv->lim.max_pipelined || c->read_done)
        return;
    c->paused = false;
    llhttp_resume(&c->parser);
    char *buf = c->pending;
    size_t n = c->pending_len;
    c->pending = NULL;
    c->pending_len = 0;
    if (n)
        execute(c, buf, n);
    free(buf);
}

/* Sent exactly once per request that asked, after all earlier answers, whether or not its
 * body has arrived already (allowed, and it keeps the output independent of how the
 * input was split into reads). */
static void send_continue(struct http_conn *c, struct http_req *r)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (!r->expect_continue || r->continue_sent || r->pre_status)
        return;
    r->continue_sent = true;
    char *b = malloc(sizeof(cont) - 1);
    if (!b) {
        http_conn_defer_abort(c);
        return;
    }
    memcpy(b, cont, sizeof(cont) - 1);
    http_conn_write(c, b, sizeof(cont) - 1);
}

static void dispatch(struct http_conn *c, struct http_req *r)
{
    send_continue(c, r);
    if (r->pre_status) {
        if (r->pre_status == 405)
            http_req_header_add(r, "Allow", r->allow);
        if (r->pre_status == 401)
            http_req_header_add(r, "WWW-Authenticate", "Bearer");
        if (r->pre_status == 403)
            http_req_header_add(r, "WWW-Authenticate", "Bearer error=\"insufficient_scope\"");
        http_req_reply_server_error(r);
        return;
    }
    r->state = REQ_ACTIVE;
    r->route->handler(r, r->route->data); /* r may be gone after this */
}

static void conn_process(struct http_conn *c)
{
    if (c->processing)
        return;
    c->processing = true;
    for (;;) {
        if (c->closing || c->finishing || c->abort_pending)
            break;
        struct http_req *r = c->head;
        if (r && r->state == REQ_QUEUED) {
            if (http_conn_write_queue(c) > c->srv->lim.max_write_queue_bytes)
                break; /* the write callback kicks us again */
            dispatch(c, r);
            continue;
        }
        if (c->paused && c->nqueued < c->srv->lim.max_pipelined) {
            try_resume(c);
            continue;
        }
        if (!r && c->cur && c->cur->headers_done)
            send_continue(c, c->cur);
        break;
    }
    c->processing = false;
    update_reading(c);
    rearm_timer(c);
}

/* ---- answers ---- */

void http_conn_request_done(struct http_conn *c, struct http_req *req, bool close_after)
{
    assert(req == c->head);
    c->head = req->next;
    if (!c->head)
        c->tail = NULL;
    c->nqueued--;
    c->served++;
    http_req_free(req);
    c->last_io_ms = now_ms(c);
    if (close_after)
        conn_finish(c);
    else if (!c->processing)
        uv_timer_start(&c->kick, kick_cb, 0, 0); /* not from inside the caller's call */
}

size_t http_conn_write_queue(const struct http_conn *c)
{
    if (c->is_mem || c->closing)
        return 0;
    return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
}

struct wreq {
    uv_write_t w;
    char *buf;
};

static void write_cb(uv_write_t *w, int status)
{
    struct wreq *wr = (struct wreq *)w;
    struct http_conn *c = w->handle->data;
    free(wr->buf);
    free(wr);
    if (c->closing)
        return;
    if (status < 0) {
        http_conn_abort(c);
        return;
    }
    c->last_io_ms = now_ms(c);
    if (c->head && c->head->state == REQ_QUEUED && !c->processing)
        uv_timer_start(&c->kick, kick_cb, 0, 0);
}

int http_conn_write(struct http_conn *c, char *buf, size_t len)
{
    if (c->closing) {
        free(buf);
        return HTTP_ECLOSED;
    }
    if (c->is_mem) {
        int rc = 0;
        if (c->out_len + len > HTTP_MEM_OUTPUT_MAX)
            rc = HTTP_ETOOBIG;
        else if (grow_append(&c->out, &c->out_len, &c->out_cap, buf, len))
            rc = HTTP_ENOMEM;
        free(buf);
        if (rc)
            http_conn_defer_abort(c);
        return rc;
    }
    struct wreq *wr = malloc(sizeof(*wr));
    if (!wr) {
        free(buf);
        http_conn_defer_abort(c);
        return HTTP_ENOMEM;
    }
    wr->buf = buf;
    uv_buf_t b = uv_buf_init(buf, (unsigned)len);
    if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, write_cb) != 0) {
        free(buf);
        free(wr);
        http_conn_defer_abort(c);
        return HTTP_ECLOSED;
    }
    return 0;
}

/* ---- timers ---- */

static int timer_kind(struct http_conn *c, uint64_t *deadline)
{
    bool mid_headers = (c->cur && !c->cur->headers_done) ||
                       (!c->cur && !c->head && c->served == 0 && !c->read_done);
    if (mid_headers) {
        uint32_t limit = c->srv->lim.header_timeout_ms;
        if (c->probe_only && limit > HTTP_PROBE_HEADER_TIMEOUT_MS)
            limit = HTTP_PROBE_HEADER_TIMEOUT_MS;
        *deadline = c->hdr_start_ms + limit;
        return TIMER_HEADER;
    }
    if (c->head && (c->head->state == REQ_ACTIVE || c->head->state == REQ_STREAMING))
        return TIMER_NONE; /* the handler's owner decides how long this takes */
    *deadline = c->last_io_ms + c->srv->lim.idle_timeout_ms;
    return TIMER_IDLE;
}

static void timer_cb(uv_timer_t *t);

static void rearm_timer(struct http_conn *c)
{
    if (c->closing || c->finishing)
        return;
    uint64_t deadline = 0, now = now_ms(c);
    if (timer_kind(c, &deadline) == TIMER_NONE) {
        uv_timer_stop(&c->timer);
        return;
    }
    uv_timer_start(&c->timer, timer_cb, deadline > now ? deadline - now : 0, 0);
}

static void timer_cb(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    if (c->closing)
        return;
    if (c->finishing) {
        /* Linger over, or the client never read the last response. */
        http_conn_abort(c);
        return;
    }
    uint64_t deadline = 0;
    int kind = timer_kind(c, &deadline);
    if (kind == TIMER_NONE)
        return;
    if (now_ms(c) < deadline) {
        rearm_timer(c);
        return;
    }
    c->srv->counters.timeouts++;
    if (kind == TIMER_HEADER && !c->head) {
        /* Slowloris: tell it why, then close. Over the limit the answer is the limit's. */
        parse_error(c, c->probe_only ? 503 : 408);
        conn_process(c);
        return;
    }
    http_conn_abort(c);
}

static void kick_cb(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    if (c->closing)
        return;
    if (c->abort_pending) {
        http_conn_abort(c);
        return;
    }
    conn_process(c);
}

void http_conn_defer_abort(struct http_conn *c)
{
    if (c->closing || c->abort_pending)
        return;
    c->abort_pending = true;
    uv_timer_start(&c->kick, kick_cb, 0, 0);
}

/* ---- closing ---- */

void http_conn_release(struct http_conn *c)
{
    struct http_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    while (c->head) {
        struct http_req *n = c->head->next;
        http_req_free(c->head);
        c->head = n;
    }
    http_req_free(c->cur);
    free(c->pending);
    free(c->out);
    free(c);
    http_server_handle_closed(srv);
}

static void handle_closed(uv_handle_t *h)
{
    struct http_conn *c = h->data;
    assert(c->handles_open > 0);
    if (--c->handles_open > 0)
        return;
    /* A memory connection lives until its owner releases it (or the server closes). */
    if (c->is_mem && !c->mem_released && !c->srv->closing)
        return;
    http_conn_release(c);
}

void http_conn_abort(struct http_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->srv->counters.connections_open--;
    if (c->probe_only)
        c->srv->probe_open--;
    for (struct http_req *r = c->head; r; r = r->next) {
        if (r->state != REQ_ACTIVE && r->state != REQ_STREAMING)
            continue;
        http_cancel_cb cb = r->cancel_cb;
        r->state = REQ_DEAD;
        r->cancel_cb = NULL;
        if (cb)
            cb(r, r->cancel_data);
    }
    uv_timer_stop(&c->timer);
    uv_timer_stop(&c->kick);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
    uv_close((uv_handle_t *)&c->kick, handle_closed);
    if (!c->is_mem) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        uv_close((uv_handle_t *)&c->tcp, handle_closed);
    }
}

static void shutdown_cb(uv_shutdown_t *s, int status)
{
    struct http_conn *c = s->handle->data;
    if (c->closing)
        return;
    if (status < 0 || c->read_eof) {
        http_conn_abort(c);
        return;
    }
    /* Keep reading (and discarding) for a while so unread request bytes do not turn our
     * close into a reset that destroys the response before the client reads it. */
    c->lingering = true;
    update_reading(c);
    uv_timer_start(&c->timer, timer_cb, HTTP_LINGER_MS, 0);
}

/* The last response is queued: no more requests; close once it is sent. */
static void conn_finish(struct http_conn *c)
{
    if (c->finishing || c->closing)
        return;
    c->finishing = true;
    c->read_done = true;
    c->paused = false;
    if (c->is_mem) {
        uv_timer_stop(&c->timer);
        return;
    }
    /* Bound the time the last response may take to drain. */
    uv_timer_start(&c->timer, timer_cb, c->srv->lim.idle_timeout_ms, 0);
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, shutdown_cb) != 0)
        http_conn_defer_abort(c);
    update_reading(c);
}

/* ---- sockets ---- */

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct http_conn *c = h->data;
    buf->base = c->srv->rbuf;
    buf->len = sizeof(c->srv->rbuf);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct http_conn *c = s->data;
    if (c->closing)
        return;
    if (nread > 0) {
        if (!c->lingering && !c->finishing && !c->read_done)
            conn_feed(c, buf->base, (size_t)nread);
        return;
    }
    if (nread == 0)
        return;
    /* EOF or error: the client is gone (a half-closed client counts as gone, so a
     * long poll learns at once that nobody waits for it). A response still draining
     * after our shutdown may finish first. */
    if (c->finishing && !c->lingering && nread == UV_EOF) {
        c->read_eof = true;
        update_reading(c);
        return;
    }
    http_conn_abort(c);
}

static void update_reading(struct http_conn *c)
{
    if (c->is_mem || c->closing)
        return;
    bool want = !c->read_eof && (!c->paused || c->finishing);
    if (want == c->reading)
        return;
    if (want) {
        if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
            c->reading = true;
        else
            http_conn_defer_abort(c);
    } else {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static struct http_conn *conn_new(struct http_server *srv, bool is_mem)
{
    struct http_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->srv = srv;
    c->is_mem = is_mem;
    uv_timer_init(srv->loop, &c->timer);
    uv_timer_init(srv->loop, &c->kick);
    c->timer.data = c;
    c->kick.data = c;
    c->handles_open = 2;
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    c->parser.data = c;
    c->hdr_start_ms = c->last_io_ms = uv_now(srv->loop);
    c->next = srv->conns;
    if (c->next)
        c->next->prev = c;
    srv->conns = c;
    srv->pending_handles++;
    srv->counters.connections_open++;
    return c;
}

static bool peer_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family != AF_INET6)
        return false;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(a))
        return true;
    return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
}

int http_conn_accept(struct http_server *srv, bool probe_only)
{
    struct http_conn *c = conn_new(srv, false);
    if (!c)
        return HTTP_ENOMEM;
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    c->handles_open++;
    c->probe_only = probe_only;
    if (probe_only)
        srv->probe_open++;
    if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&c->tcp) != 0) {
        http_conn_abort(c);
        return HTTP_ECLOSED;
    }
    int alen = sizeof(c->peer);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &alen) != 0)
        c->peer.ss_family = AF_UNSPEC;
    if (probe_only && !peer_is_loopback(&c->peer)) {
        /* The reserve is for the host's own probes: a flood from elsewhere cannot take it. */
        http_server_reject_write((uv_stream_t *)&c->tcp);
        srv->counters.connections_rejected++;
        http_conn_abort(c);
        return HTTP_ECLOSED;
    }
    srv->counters.connections_accepted++;
    uv_tcp_nodelay(&c->tcp, 1);
    update_reading(c);
    rearm_timer(c);
    return 0;
}

/* ---- in-memory connections ---- */

int http_memconn_open(http_server_t *srv, http_memconn_t **out)
{
    if (!srv || !out || srv->closing)
        return HTTP_EINVAL;
    struct http_conn *c = conn_new(srv, true);
    if (!c)
        return HTTP_ENOMEM;
    rearm_timer(c);
    *out = (http_memconn_t *)c;
    return 0;
}

int http_memconn_feed(http_memconn_t *mc, const void *data, size_t len)
{
    struct http_conn *c = (struct http_conn *)mc;
    if (c->closing || c->finishing)
        return HTTP_ECLOSED;
    conn_feed(c, data, len);
    return 0;
}

const char *http_memconn_output(const http_memconn_t *mc, size_t *len)
{
    const struct http_conn *c = (const struct http_conn *)mc;
    *len = c->out_len;
    return c->out ? c->out : "";
}

int http_memconn_closed(const http_memconn_t *mc)
{
    const struct http_conn *c = (const struct http_conn *)mc;
    return c->closing || c->finishing || c->abort_pending;
}

void http_memconn_close(http_memconn_t *mc)
{
    struct http_conn *c = (struct http_conn *)mc;
    if (c->srv->closing)
        return; /* the server releases it */
    c->mem_released = true;
    if (c->closing && c->handles_open == 0)
        http_conn_release(c);
    else
        http_conn_abort(c);
}
