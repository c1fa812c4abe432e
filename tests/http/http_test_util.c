/* http_test_util.c — test routes, the threaded test server and the loopback client used by
 * the http/ tests. */
#include "http_test_util.h"
#include "tls.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

/* ---- routes ---- */

/* Handlers run on the server's loop thread, where Criterion asserts must not be used:
 * broken expectations are counted and the test checks the count. */
#define CHECK(ctx, cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            atomic_fetch_add(&(ctx)->errors, 1);                                                   \
    } while (0)

static void h_whoami(http_req_t *req, void *data)
{
    struct test_ctx *ctx = data;
    atomic_fetch_add(&ctx->handled, 1);
    const char *cn = http_req_peer_cert_cn(req);
    const tls_session_t *tls = http_req_tls(req);
    char out[300];
    snprintf(out, sizeof(out), "%s %s %s", tls ? "tls" : "plain", cn ? cn : "-",
             tls && tls_session_peer_matches(tls, "operator") ? "operator" : "-");
    http_req_reply_text(req, 200, NULL, out);
}

static void h_hello(http_req_t *req, void *data)
{
    struct test_ctx *ctx = data;
    atomic_fetch_add(&ctx->handled, 1);
    char peer[64];
    http_req_peer(req, peer, sizeof(peer));
    CHECK(ctx, !strcmp(peer, "memory") || !strncmp(peer, "127.0.0.1:", 10) ||
                   !strncmp(peer, "[::1]:", 6));
    http_req_reply_text(req, 200, NULL, "hello");
}

static void h_seq(http_req_t *req, void *data)
{
    struct test_ctx *ctx = data;
    atomic_fetch_add(&ctx->handled, 1);
    const char *n = http_req_query(req, "n");
    http_req_reply_text(req, 200, NULL, n ? n : "");
}

static void h_params(http_req_t *req, void *data)
{
    (void)data;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "a", http_req_param(req, "a"));
    cJSON_AddStringToObject(j, "rest", http_req_param(req, "rest"));
    http_req_reply_json(req, 200, j);
    cJSON_Delete(j);
}

static void h_kv_get(http_req_t *req, void *data)
{
    (void)data;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "key", http_req_param(req, "key"));
    const char *w = http_req_query(req, "wait");
    if (w)
        cJSON_AddStringToObject(j, "wait", w);
    else
        cJSON_AddNullToObject(j, "wait");
    http_req_reply_json(req, 200, j);
    cJSON_Delete(j);
}

static void h_kv_put(http_req_t *req, void *data)
{
    (void)data;
    size_t len;
    http_req_body(req, &len);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "key", http_req_param(req, "key"));
    cJSON_AddNumberToObject(j, "len", (double)len);
    if (http_req_scoped(req))
        cJSON_AddBoolToObject(j, "scoped", true);
    http_req_reply_json(req, 200, j);
    cJSON_Delete(j);
}

static void h_json(http_req_t *req, void *data)
{
    (void)data;
    cJSON *j;
    if (http_req_body_json(req, &j) != 0) {
        http_req_reply_error(req, 400, "bad_json", "body is not JSON");
        return;
    }
    http_req_reply_json(req, 200, j);
    cJSON_Delete(j);
}

static void h_echo(http_req_t *req, void *data)
{
    (void)data;
    size_t len;
    const char *b = http_req_body(req, &len);
    http_req_reply(req, 200, "application/octet-stream", b, len);
}

struct pending {
    uv_timer_t t;
    http_req_t *req;
    struct test_ctx *ctx;
    char body[64];
};

static void free_handle(uv_handle_t *h)
{
    free(h->data);
}

static void async_fire(uv_timer_t *t)
{
    struct pending *p = t->data;
    CHECK(p->ctx, http_req_reply_text(p->req, 200, NULL, p->body) == 0);
    uv_close((uv_handle_t *)&p->t, free_handle);
}

static void async_cancel(http_req_t *req, void *data)
{
    struct pending *p = data;
    CHECK(p->ctx, p->req == req);
    atomic_fetch_add(&p->ctx->cancelled, 1);
    uv_timer_stop(&p->t);
    uv_close((uv_handle_t *)&p->t, free_handle);
}

static void h_async(http_req_t *req, void *data)
{
    struct test_ctx *ctx = data;
    atomic_fetch_add(&ctx->handled, 1);
    struct pending *p = calloc(1, sizeof(*p));
    p->req = req;
    p->ctx = ctx;
    const char *id = http_req_query(req, "id");
    const char *ms = http_req_query(req, "ms");
    snprintf(p->body, sizeof(p->body), "async-%s", id ? id : "");
    uv_timer_init(ctx->loop, &p->t);
    p->t.data = p;
    http_req_on_cancel(req, async_cancel, p);
    uv_timer_start(&p->t, async_fire, ms ? (uint64_t)atoi(ms) : 10, 0);
}

struct sse {
    uv_timer_t t;
    http_req_t *req;
    struct test_ctx *ctx;
    int n;
    size_t flood; /* bytes per tick instead of small events */
};

static void sse_tick(uv_timer_t *t)
{
    struct sse *s = t->data;
    if (s->flood) {
        /* A client that never reads: the write queue limit must end this. */
        char *big = malloc(s->flood);
        memset(big, 'x', s->flood);
        int rc = http_req_stream_write(s->req, big, s->flood);
        free(big);
        if (rc == HTTP_ESLOW)
            atomic_fetch_add(&s->ctx->sse_slow, 1);
        return;
    }
    char ev[64];
    int n = snprintf(ev, sizeof(ev), "id: %d\ndata: tick %d\n\n", s->n, s->n);
    s->n++;
    if (http_req_stream_write(s->req, ev, (size_t)n) == 0)
        atomic_fetch_add(&s->ctx->sse_events, 1);
}

static void sse_cancel(http_req_t *req, void *data)
{
    (void)req;
    struct sse *s = data;
    atomic_fetch_add(&s->ctx->sse_gone, 1);
    uv_timer_stop(&s->t);
    uv_close((uv_handle_t *)&s->t, free_handle);
}

static void h_events(http_req_t *req, void *data)
{
    struct test_ctx *ctx = data;
    struct sse *s = calloc(1, sizeof(*s));
    s->req = req;
    s->ctx = ctx;
    const char *flood = http_req_query(req, "flood");
    s->flood = flood ? (size_t)atol(flood) : 0;
    CHECK(ctx, http_req_header_add(req, "Cache-Control", "no-cache") == 0);
    CHECK(ctx, http_req_stream_start(req, 200, "text/event-stream") == 0);
    CHECK(ctx, http_req_stream_write(req, "data: hello\n\n", 13) == 0);
    http_req_on_cancel(req, sse_cancel, s);
    uv_timer_init(ctx->loop, &s->t);
    s->t.data = s;
    uv_timer_start(&s->t, sse_tick, s->flood ? 1 : 20, s->flood ? 1 : 20);
}

static void h_hdr(http_req_t *req, void *data)
{
    (void)data;
    const char *name = http_req_query(req, "name");
    const char *v = name ? http_req_header(req, name) : NULL;
    if (!v)
        http_req_reply_error(req, 404, "no_header", "header absent");
    else
        http_req_reply_text(req, 200, NULL, v);
}

static void h_redirect(http_req_t *req, void *data)
{
    struct test_ctx *ctx = data;
    CHECK(ctx, http_req_header_add(req, "Location", "http://127.0.0.1:1/v1/x") == 0);
    CHECK(ctx, http_req_header_add(req, "Bad\r\nName", "x") == HTTP_EHEADER);
    CHECK(ctx, http_req_header_add(req, "X-Evil", "a\r\nInjected: 1") == HTTP_EHEADER);
    http_req_reply_error(req, 307, "not_leader", "ask the leader");
}

void test_routes_add(http_server_t *srv, struct test_ctx *ctx)
{
    cr_assert_eq(http_server_route(srv, HTTP_METHOD_GET, "/hello", 0, h_hello, ctx), 0);
    cr_assert_eq(http_server_route(srv, HTTP_METHOD_GET, "/seq", 0, h_seq, ctx), 0);
    cr_assert_eq(http_server_route(srv, HTTP_METHOD_GET, "/p/{a}/{rest...}", 0, h_params, ctx), 0);
    cr_assert_eq(http_server_route(srv, HTTP_METHOD_GET, "/kv/{key...}", 0, h_kv_get, ctx), 0);
    cr_assert_eq(http_server_route(srv, HTTP_METHOD_PUT, "/kv/{key...}",
                                   HTTP_ROUTE_MUTATING | HTTP_ROUTE_SCOPED, h_kv_put, ctx),
                 0);
    cr_assert_eq(
        http_server_route(srv, HTTP_METHOD_POST, "/admin", HTTP_ROUTE_MUTATING, h_hello, ctx), 0);
    cr_assert_eq(http_server_route(srv, HTTP_METHOD_POST, "/json", 0, h_json, ctx), 0);
    cr_assert_eq(http_server_route(srv, HTTP_METHOD_POST, "/echo", 0, h_echo, ctx), 0);
    cr_assert_eq(http_server_route(srv, HTTP_METHOD_GET, "/async", 0, h_async, ctx), 0);
    cr_assert_eq(http_server_route(srv, HTTP_METHOD_GET, "/events", 0, h_events, ctx), 0);
    cr_assert_eq(http_server_route(srv, HTTP_METHOD_GET, "/hdr", 0, h_hdr, ctx), 0);
    cr_assert_eq(http_server_route(srv, HTTP_METHOD_GET, "/redirect", 0, h_redirect, ctx), 0);
    cr_assert_eq(http_server_route(srv, HTTP_METHOD_GET, "/whoami", 0, h_whoami, ctx), 0);
    cr_assert_eq(
        http_server_route(srv, HTTP_METHOD_GET, "/healthz", HTTP_ROUTE_PROBE, h_hello, ctx), 0);
}

/* ---- threaded server ---- */

static void stats_row(const char *method, const char *pattern, int status, uint64_t count,
                      void *data)
{
    struct tsrv *t = data;
    size_t off = strlen(t->stats);
    snprintf(t->stats + off, sizeof(t->stats) - off, "%s %s %d %llu\n", method,
             *pattern ? pattern : "-", status, (unsigned long long)count);
}

static void on_stop(uv_async_t *a)
{
    struct tsrv *t = a->data;
    http_server_counters(t->srv, &t->final);
    t->stats[0] = '\0';
    http_server_stats_foreach(t->srv, stats_row, t);
    http_server_close(t->srv, NULL, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static void loop_thread(void *arg)
{
    struct tsrv *t = arg;
    uv_run(&t->loop, UV_RUN_DEFAULT);
}

void tsrv_start(struct tsrv *t, const http_options_t *opts, const char *addr)
{
    tsrv_start_tls(t, opts, NULL, NULL, addr);
}

void tsrv_start_tls(struct tsrv *t, const http_options_t *opts, struct tls_ctx *tls,
                    http_tls_error_cb cb, const char *addr)
{
    memset(t, 0, sizeof(*t));
    cr_assert_eq(uv_loop_init(&t->loop), 0);
    t->ctx.loop = &t->loop;
    cr_assert_eq(http_server_open(&t->loop, opts, &t->srv), 0);
    if (tls)
        cr_assert_eq(http_server_tls(t->srv, tls, cb, NULL), 0);
    test_routes_add(t->srv, &t->ctx);
    int rc = http_server_listen(t->srv, addr ? addr : "127.0.0.1:0");
    cr_assert_eq(rc, 0, "listen: %s", http_strerror(rc));
    t->port = http_server_port(t->srv);
    cr_assert_gt(t->port, 0);
    cr_assert_eq(uv_async_init(&t->loop, &t->stop, on_stop), 0);
    t->stop.data = t;
    cr_assert_eq(uv_thread_create(&t->thread, loop_thread, t), 0);
}

void tsrv_stop(struct tsrv *t)
{
    uv_async_send(&t->stop);
    uv_thread_join(&t->thread);
    t->loop_close_rc = uv_loop_close(&t->loop);
    cr_assert_eq(t->loop_close_rc, 0, "loop not closed cleanly");
    cr_assert_eq(atomic_load(&t->ctx.errors), 0, "a handler saw an unexpected result");
}

/* ---- responses ---- */

void resp_free(struct resp *r)
{
    http_response_close(&r->parsed);
    free(r->body);
    r->body = NULL;
}

const char *resp_header(const struct resp *r, const char *name, char *buf, size_t cap)
{
    const char *v = http_response_header(&r->parsed, name);
    if (v == NULL)
        return NULL;
    snprintf(buf, cap, "%s", v);
    return buf;
}

long resp_parse(const char *buf, size_t len, bool eof, struct resp *out)
{
    memset(out, 0, sizeof(*out));
    http_response_open(&out->parsed, 0, 0);
    int rc = http_response_feed(&out->parsed, buf, len);
    if (rc == 0 && eof)
        rc = http_response_finish(&out->parsed) == 0 ? 1 : -1;
    if (rc <= 0) {
        http_response_close(&out->parsed);
        return rc == 0 ? 0 : -1;
    }
    out->status = out->parsed.status;
    const char *body = http_response_body(&out->parsed, &out->body_len);
    out->body = malloc(out->body_len + 1);
    memcpy(out->body, body, out->body_len + 1);
    return (long)out->parsed.used;
}

/* ---- client ---- */

static int client_setup(struct client *c, int fd)
{
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->cap = 1 << 16;
    c->buf = malloc(c->cap);
    c->len = 0;
    c->eof = false;
    return 0;
}

int client_open(struct client *c, int port)
{
    memset(c, 0, sizeof(*c));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return client_setup(c, fd);
}

int client_open6(struct client *c, int port)
{
    memset(c, 0, sizeof(*c));
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    a.sin6_addr = in6addr_loopback;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return client_setup(c, fd);
}

void client_close(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
}

int client_send(struct client *c, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(c->fd, data + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

int client_sends(struct client *c, const char *s)
{
    return client_send(c, s, strlen(s));
}

/* One recv into the buffer: 1 data, 0 EOF, -1 timeout/error. */
static int fill(struct client *c, int timeout_ms)
{
    if (c->eof)
        return 0;
    if (c->len + 4096 > c->cap) {
        c->cap *= 2;
        c->buf = realloc(c->buf, c->cap);
    }
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    int pr = poll(&pfd, 1, timeout_ms);
    if (pr <= 0)
        return -1;
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
    if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE))) {
        c->eof = true;
        return 0;
    }
    if (n < 0)
        return -1;
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    return 1;
}

int client_read(struct client *c, struct resp *r)
{
    memset(r, 0, sizeof(*r));
    for (int i = 0; i < 100000; i++) {
        long used = resp_parse(c->buf, c->len, c->eof, r);
        if (used < 0)
            return -2;
        if (used > 0) {
            memmove(c->buf, c->buf + used, c->len - (size_t)used);
            c->len -= (size_t)used;
            return 0;
        }
        if (c->eof)
            return -1;
        int f = fill(c, 5000);
        if (f < 0)
            return -2;
    }
    return -2;
}

int client_wait_eof(struct client *c, int timeout_ms)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!c->eof) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long el = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (el >= timeout_ms)
            return 0;
        if (fill(c, (int)(timeout_ms - el)) < 0 && !c->eof)
            return 0;
        c->len = 0; /* discard */
    }
    return 1;
}

int client_read_until(struct client *c, const char *needle, int timeout_ms)
{
    for (int i = 0; i < 10000; i++) {
        if (c->len && strstr(c->buf, needle))
            return 0;
        if (c->eof)
            return -1;
        if (fill(c, timeout_ms) < 0)
            return -2;
    }
    return -2;
}

int http_get_status(int port, const char *request)
{
    struct client c;
    if (client_open(&c, port) != 0)
        return -1;
    struct resp r;
    int st = -1;
    if (client_sends(&c, request) == 0 && client_read(&c, &r) == 0) {
        st = r.status;
        resp_free(&r);
    }
    client_close(&c);
    return st;
}

/* ---- in-thread loops ---- */

static uint64_t mono_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static void wake(uv_timer_t *t)
{
    (void)t;
}

void run_until(uv_loop_t *loop, const atomic_int *flag, int timeout_ms)
{
    uv_timer_t guard;
    uv_timer_init(loop, &guard);
    uv_timer_start(&guard, wake, 10, 10); /* the loop never blocks for long */
    uint64_t end = mono_ms() + (uint64_t)timeout_ms;
    while ((!flag || !atomic_load(flag)) && mono_ms() < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

void run_for(uv_loop_t *loop, int ms)
{
    run_until(loop, NULL, ms);
}
