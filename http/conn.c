/* conn.c — one client connection: feeding bytes to llhttp (from a socket or from memory;
 * parser.c builds the requests), the in-order queue of pipelined requests (one dispatched
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
    struct http_req *r = c->cur ? c->cur : http_req_new(c);
    c->cur = NULL;
    if (!r) {
        http_conn_abort(c);
        return;
    }
    if (status == 503)
        c->srv->counters.connections_rejected++;
    else if (status != 408)
        c->srv->counters.bad_requests++;
    http_req_set_pre(r, status);
    r->route = NULL;
    r->close_after = true;
    r->keep_alive = false;
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
    http_req_enqueue(c, r);
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

void http_conn_feed(struct http_conn *c, const char *data, size_t len)
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
    c->last_io_ms = http_conn_now_ms(c);
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
    c->last_io_ms = http_conn_now_ms(c);
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
        else if (http_grow_append(&c->out, &c->out_len, &c->out_cap, buf, len))
            rc = HTTP_ENOMEM;
        free(buf);
        if (rc)
            http_conn_defer_abort(c);
        return rc;
    }
    return c->tls ? c->srv->tls_ops->write(c, buf, len) : http_conn_write_raw(c, buf, len);
}

int http_conn_write_raw(struct http_conn *c, char *buf, size_t len)
{
    if (c->closing) {
        free(buf);
        return HTTP_ECLOSED;
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
    uint64_t deadline = 0, now = http_conn_now_ms(c);
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
    if (http_conn_now_ms(c) < deadline) {
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

void http_conn_free(struct http_conn *c)
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
    if (c->tls)
        srv->tls_ops->release(c);
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
    http_conn_free(c);
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
    if (c->tls)
        c->srv->tls_ops->close_notify(c);
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
        if (c->lingering || c->finishing || c->read_done)
            return; /* discarded */
        if (c->tls)
            c->srv->tls_ops->read(c, buf->base, (size_t)nread);
        else
            http_conn_feed(c, buf->base, (size_t)nread);
        return;
    }
    if (nread < 0)
        http_conn_read_end(c, nread == UV_EOF);
}

void http_conn_read_end(struct http_conn *c, bool eof)
{
    /* EOF or error: the client is gone (a half-closed client counts as gone, so a
     * long poll learns at once that nobody waits for it). A response still draining
     * after our shutdown may finish first. */
    if (c->finishing && !c->lingering && eof) {
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
    llhttp_init(&c->parser, HTTP_REQUEST, &http_parser_settings);
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
        http_server_reject_write(srv, (uv_stream_t *)&c->tcp);
        srv->counters.connections_rejected++;
        http_conn_abort(c);
        return HTTP_ECLOSED;
    }
    if (srv->tls && srv->tls_ops->accept(c) != 0) {
        http_conn_abort(c);
        return HTTP_ENOMEM;
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
    http_conn_feed(c, data, len);
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
        http_conn_free(c);
    else
        http_conn_abort(c);
}
