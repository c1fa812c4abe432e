/* server.c — the listening side: options and their defaults, binding "host:port",
 * accepting (or refusing, over max_connections) clients, counters, and the close
 * sequence that waits for every handle before calling the owner back. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"

static const struct {
    int code;
    const char *text;
} errors[] = {
#define HTTP_ERRNO_TEXT(name, value, text) {value, text},
    HTTP_ERROR_TABLE(HTTP_ERRNO_TEXT)
#undef HTTP_ERRNO_TEXT
};

const char *http_strerror(int err)
{
    if (err == 0)
        return "success";
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return errors[i].text;
    return "unknown error";
}

static void apply_defaults(http_limits_t *l)
{
    if (!l->max_header_bytes)
        l->max_header_bytes = 8192;
    if (!l->max_headers)
        l->max_headers = 64;
    if (!l->max_url_bytes)
        l->max_url_bytes = 2048;
    if (!l->max_body_bytes)
        l->max_body_bytes = 1u << 20;
    if (!l->max_connections)
        l->max_connections = 1024;
    if (!l->idle_timeout_ms)
        l->idle_timeout_ms = 60000;
    if (!l->header_timeout_ms)
        l->header_timeout_ms = 10000;
    if (!l->max_pipelined)
        l->max_pipelined = 16;
    if (!l->max_write_queue_bytes)
        l->max_write_queue_bytes = 1u << 20;
    if (!l->probe_reserve)
        l->probe_reserve = 8;
}

int http_server_open(uv_loop_t *loop, const http_options_t *opts, http_server_t **out)
{
    if (!loop || !out)
        return HTTP_EINVAL;
    struct http_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return HTTP_ENOMEM;
    srv->loop = loop;
    if (opts) {
        srv->lim = opts->limits;
        if (opts->token && *opts->token) {
            srv->token = strdup(opts->token);
            if (!srv->token) {
                free(srv);
                return HTTP_ENOMEM;
            }
            srv->token_len = strlen(srv->token);
        }
        srv->scoped_cb = opts->scoped_cb;
        srv->scoped_data = opts->scoped_data;
    }
    apply_defaults(&srv->lim);
    uv_timer_init(loop, &srv->close_timer);
    srv->close_timer.data = srv;
    srv->pending_handles = 1; /* close_timer */
    *out = srv;
    return 0;
}

int http_server_set_token(http_server_t *srv, const char *token)
{
    char *copy = NULL;
    if (!srv)
        return HTTP_EINVAL;
    if (token && *token && !(copy = strdup(token)))
        return HTTP_ENOMEM;
    free(srv->token);
    srv->token = copy;
    srv->token_len = copy ? strlen(copy) : 0;
    return 0;
}

static int parse_addr(const char *addr, struct sockaddr_storage *ss)
{
    char host[64];
    const char *colon;
    const char *h = addr;
    size_t hl;
    if (addr[0] == '[') {
        const char *rb = strchr(addr, ']');
        if (!rb || rb[1] != ':')
            return HTTP_EADDR;
        h = addr + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon || strchr(addr, ':') != colon)
            return HTTP_EADDR;
        hl = (size_t)(colon - addr);
    }
    if (hl == 0 || hl >= sizeof(host))
        return HTTP_EADDR;
    memcpy(host, h, hl);
    host[hl] = '\0';
    const char *ps = colon + 1;
    if (!*ps || strlen(ps) > 5)
        return HTTP_EADDR;
    long port = 0;
    for (const char *p = ps; *p; p++) {
        if (*p < '0' || *p > '9')
            return HTTP_EADDR;
        port = port * 10 + (*p - '0');
    }
    if (port > 65535)
        return HTTP_EADDR;
    memset(ss, 0, sizeof(*ss));
    if (addr[0] == '[') {
        if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) != 0)
            return HTTP_EADDR;
    } else if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) != 0) {
        return HTTP_EADDR;
    }
    return 0;
}

static void reject_closed(uv_handle_t *h)
{
    struct http_server *srv = h->data;
    free(h);
    http_server_handle_closed(srv);
}

void http_server_reject_write(const struct http_server *srv, uv_stream_t *s)
{
    if (srv->tls)
        return;
    static const char resp[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        "Content-Length: 70\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
        "{\"error\":{\"code\":\"too_many_connections\",\"message\":\"connection limit\"}}";
    uv_buf_t b = uv_buf_init((char *)resp, sizeof(resp) - 1);
    (void)uv_try_write(s, &b, 1);
}

/* Over max_connections and the probe reserve: take the client off the backlog (otherwise
 * it would wait there unseen), tell it why in one non-blocking write, and close. */
static void reject(struct http_server *srv)
{
    uv_tcp_t *t = malloc(sizeof(*t));
    if (!t)
        return;
    uv_tcp_init(srv->loop, t);
    t->data = srv;
    srv->pending_handles++;
    srv->counters.connections_rejected++;
    if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)t) == 0)
        http_server_reject_write(srv, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, reject_closed);
}

static void on_connection(uv_stream_t *l, int status)
{
    struct http_server *srv = l->data;
    if (status < 0 || srv->closing)
        return;
    /* Over the limit, a few more connections are kept for the host's health probes, so a
     * flood of idle clients cannot make a kubelet or systemd think electd is dead. */
    if (srv->counters.connections_open - srv->probe_open >= srv->lim.max_connections) {
        if (srv->probe_open < srv->lim.probe_reserve)
            (void)http_conn_accept(srv, true);
        else
            reject(srv);
        return;
    }
    (void)http_conn_accept(srv, false);
}

static void handle_closed_cb(uv_handle_t *h)
{
    http_server_handle_closed(h->data);
}

int http_server_listen(http_server_t *srv, const char *addr)
{
    if (!srv || !addr)
        return HTTP_EINVAL;
    if (srv->listener_used || srv->closing)
        return HTTP_ESTATE;
    struct sockaddr_storage ss;
    int rc = parse_addr(addr, &ss);
    if (rc)
        return rc;
    uv_tcp_init(srv->loop, &srv->listener);
    srv->listener_used = true;
    srv->listener.data = srv;
    srv->listening = true;
    srv->pending_handles++;
    if (uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0) != 0 ||
        uv_listen((uv_stream_t *)&srv->listener, 511, on_connection) != 0) {
        /* Close at once; the handle is released on the loop as usual. */
        uv_close((uv_handle_t *)&srv->listener, handle_closed_cb);
        srv->listening = false;
        return HTTP_ELISTEN;
    }
    return 0;
}

int http_server_port(const http_server_t *srv)
{
    if (!srv || !srv->listening)
        return 0;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

void http_server_handle_closed(struct http_server *srv)
{
    assert(srv->pending_handles > 0);
    if (--srv->pending_handles > 0 || !srv->closing)
        return;
    http_server_close_cb cb = srv->close_cb;
    void *data = srv->close_data;
    http_router_free(srv);
    http_stats_free(&srv->unmatched);
    free(srv->token);
    free(srv->tls_plain);
    free(srv);
    if (cb)
        cb(data);
}

void http_server_close(http_server_t *srv, http_server_close_cb cb, void *data)
{
    if (!srv || srv->closing)
        return;
    srv->closing = true;
    srv->close_cb = cb;
    srv->close_data = data;
    if (srv->listening) {
        srv->listening = false;
        uv_close((uv_handle_t *)&srv->listener, handle_closed_cb);
    }
    uv_close((uv_handle_t *)&srv->close_timer, handle_closed_cb);
    struct http_conn *c = srv->conns;
    while (c) {
        struct http_conn *next = c->next;
        /* A memory connection already closed but not released is freed here. */
        if (c->closing && c->handles_open == 0) {
            c->mem_released = true;
            http_conn_free(c);
        } else {
            http_conn_abort(c);
        }
        c = next;
    }
}

void http_server_counters(const http_server_t *srv, http_counters_t *out)
{
    *out = srv->counters;
}
