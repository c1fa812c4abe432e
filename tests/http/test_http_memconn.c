/* test_http_memconn.c — the request path (parser, limits, router, responses) through
 * in-memory connections: split-independence of parsing, pipelining order with async
 * handlers, every limit's status, routing (params, query, 404/405, HEAD), bearer token,
 * cancellation and counters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "http_test_util.h"

struct mfix {
    uv_loop_t loop;
    http_server_t *srv;
    struct test_ctx ctx;
};

static void mfix_init(struct mfix *f, const http_options_t *opts)
{
    memset(f, 0, sizeof(*f));
    cr_assert_eq(uv_loop_init(&f->loop), 0);
    f->ctx.loop = &f->loop;
    cr_assert_eq(http_server_open(&f->loop, opts, &f->srv), 0);
    test_routes_add(f->srv, &f->ctx);
}

static void closed_cb(void *data)
{
    atomic_store((atomic_int *)data, 1);
}

static void mfix_fini(struct mfix *f)
{
    atomic_int done = 0;
    http_server_close(f->srv, closed_cb, &done);
    run_until(&f->loop, &done, 3000);
    cr_assert(atomic_load(&done), "server close callback did not run");
    cr_assert_eq(uv_loop_close(&f->loop), 0, "loop not closed cleanly");
    cr_assert_eq(atomic_load(&f->ctx.errors), 0);
}

#define MAXR 32
struct out {
    char *raw;
    size_t len;
    int closed;
    int n;
    struct resp r[MAXR];
};

static void out_free(struct out *o)
{
    for (int i = 0; i < o->n; i++)
        resp_free(&o->r[i]);
    free(o->raw);
    memset(o, 0, sizeof(*o));
}

static void out_parse(struct out *o)
{
    size_t off = 0;
    o->n = 0;
    while (off < o->len && o->n < MAXR) {
        long used = resp_parse(o->raw + off, o->len - off, false, &o->r[o->n]);
        cr_assert_geq(used, 0, "malformed response bytes at %zu: %.*s", off, (int)(o->len - off),
                      o->raw + off);
        if (used == 0)
            break;
        off += (size_t)used;
        o->n++;
    }
}

static void grab(http_memconn_t *mc, struct out *o)
{
    size_t len;
    const char *p = http_memconn_output(mc, &len);
    o->raw = malloc(len + 1);
    memcpy(o->raw, p, len);
    o->raw[len] = '\0';
    o->len = len;
    o->closed = http_memconn_closed(mc);
    out_parse(o);
}

/* Feeds `in` in pieces chosen by `mode`: 0 whole, 1 byte by byte, 2 random (seeded). */
static void feed(struct mfix *f, const char *in, size_t len, int mode, unsigned seed, struct out *o)
{
    http_memconn_t *mc;
    cr_assert_eq(http_memconn_open(f->srv, &mc), 0);
    size_t off = 0;
    srand(seed);
    while (off < len) {
        size_t n = len - off;
        if (mode == 1)
            n = 1;
        else if (mode == 2)
            n = 1 + (size_t)rand() % (n < 40 ? n : 40);
        http_memconn_feed(mc, in + off, n);
        off += n;
    }
    grab(mc, o);
    http_memconn_close(mc);
    run_for(&f->loop, 1);
}

static const char pipeline[] =
    "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
    "GET /p/one/two/three%20four?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    "PUT /kv/a/b%2Fc HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    "GET /kv/k?wait=30s&x=a+b HTTP/1.1\r\nHost: x\r\n\r\n"
    "GET /nope HTTP/1.1\r\n\r\n"
    "DELETE /hello HTTP/1.1\r\n\r\n"
    "POST /json HTTP/1.1\r\nContent-Length: 13\r\n\r\n{\"a\":[1,2,3]}"
    "GET /hdr?name=x-test HTTP/1.1\r\nX-TEST:   spaced value\r\n\r\n"
    "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n"
    "GET /hello HTTP/1.1\r\n\r\n";

static void check_pipeline(const struct out *o)
{
    static const int want[] = {200, 200, 200, 200, 200, 404, 405, 200, 200, 200};
    cr_assert_eq(o->n, 10, "got %d responses:\n%s", o->n, o->raw);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(o->r[i].status, want[i], "response %d: %d", i, o->r[i].status);
    cr_assert_str_eq(o->r[0].body, "hello");
    cr_assert_str_eq(o->r[1].body, "{\"a\":\"one\",\"rest\":\"two/three four\"}");
    cr_assert_str_eq(o->r[2].body, "{\"key\":\"a/b/c\",\"len\":5}");
    cr_assert_str_eq(o->r[3].body, "hello world");
    cr_assert_str_eq(o->r[4].body, "{\"key\":\"k\",\"wait\":\"30s\"}");
    char buf[128];
    cr_assert_str_eq(resp_header(&o->r[6], "Allow", buf, sizeof(buf)), "GET, HEAD");
    cr_assert_str_eq(o->r[7].body, "{\"a\":[1,2,3]}");
    cr_assert_str_eq(o->r[8].body, "spaced value");
    cr_assert_str_eq(resp_header(&o->r[9], "Connection", buf, sizeof(buf)), "close");
    cr_assert(o->closed);
}

static void split_equivalence(uint32_t max_pipelined)
{
    http_options_t opts = {.limits = {.max_pipelined = max_pipelined}};
    struct mfix f;
    mfix_init(&f, &opts);
    struct out whole, bytes;
    feed(&f, pipeline, sizeof(pipeline) - 1, 0, 0, &whole);
    check_pipeline(&whole);
    feed(&f, pipeline, sizeof(pipeline) - 1, 1, 0, &bytes);
    cr_assert_eq(bytes.len, whole.len);
    cr_assert(memcmp(bytes.raw, whole.raw, whole.len) == 0, "byte-by-byte differs");
    out_free(&bytes);
    for (unsigned seed = 1; seed <= 200; seed++) {
        struct out rnd;
        feed(&f, pipeline, sizeof(pipeline) - 1, 2, seed, &rnd);
        cr_assert_eq(rnd.len, whole.len, "seed %u", seed);
        cr_assert(memcmp(rnd.raw, whole.raw, whole.len) == 0, "random split %u differs", seed);
        out_free(&rnd);
    }
    out_free(&whole);
    mfix_fini(&f);
}

Test(http_parse, same_result_whole_bytewise_and_random_splits)
{
    split_equivalence(0);
}

Test(http_parse, same_result_when_pipeline_queue_pauses_the_parser)
{
    split_equivalence(2);
}

static int count_responses(http_memconn_t *mc)
{
    struct out o;
    grab(mc, &o);
    int n = o.n;
    out_free(&o);
    return n;
}

Test(http_pipeline, async_first_answer_keeps_order)
{
    struct mfix f;
    mfix_init(&f, NULL);
    http_memconn_t *mc;
    cr_assert_eq(http_memconn_open(f.srv, &mc), 0);
    const char *in = "GET /async?id=1&ms=60 HTTP/1.1\r\n\r\n"
                     "GET /seq?n=2 HTTP/1.1\r\n\r\n"
                     "GET /async?id=3&ms=1 HTTP/1.1\r\n\r\n"
                     "GET /seq?n=4 HTTP/1.1\r\n\r\n";
    http_memconn_feed(mc, in, strlen(in));
    /* Nothing may overtake the slow first request. */
    cr_assert_eq(count_responses(mc), 0);
    cr_assert_eq(atomic_load(&f.ctx.handled), 1, "later requests dispatched too early");
    for (int i = 0; i < 300 && count_responses(mc) < 4; i++)
        run_for(&f.loop, 10);
    struct out o;
    grab(mc, &o);
    cr_assert_eq(o.n, 4, "%s", o.raw);
    cr_assert_str_eq(o.r[0].body, "async-1");
    cr_assert_str_eq(o.r[1].body, "2");
    cr_assert_str_eq(o.r[2].body, "async-3");
    cr_assert_str_eq(o.r[3].body, "4");
    cr_assert_not(o.closed);
    out_free(&o);
    http_memconn_close(mc);
    mfix_fini(&f);
}

/* One request on a fresh in-memory connection. */
static void one(struct mfix *f, const char *in, struct out *o)
{
    feed(f, in, strlen(in), 0, 0, o);
}

static void expect_error(struct mfix *f, const char *in, int status, const char *code, int closed)
{
    struct out o;
    one(f, in, &o);
    cr_assert_eq(o.n, 1, "for %.40s: %s", in, o.raw);
    cr_assert_eq(o.r[0].status, status, "for %.40s: got %d", in, o.r[0].status);
    cJSON *j = cJSON_Parse(o.r[0].body);
    cr_assert(j, "error body not JSON: %s", o.r[0].body);
    cJSON *c = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "code");
    cr_assert(cJSON_IsString(c));
    cr_assert_str_eq(c->valuestring, code);
    cr_assert(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "message")));
    cJSON_Delete(j);
    cr_assert_eq(o.closed, closed, "for %.40s: closed=%d", in, o.closed);
    out_free(&o);
}

Test(http_limits, each_limit_and_malformed_input_gets_its_status)
{
    http_options_t opts = {
        .limits = {
            .max_url_bytes = 64, .max_header_bytes = 256, .max_body_bytes = 32, .max_headers = 8}};
    struct mfix f;
    mfix_init(&f, &opts);
    char big[1024];

    snprintf(big, sizeof(big), "GET /kv/%0100d HTTP/1.1\r\n\r\n", 0);
    expect_error(&f, big, 414, "uri_too_long", 1);
    snprintf(big, sizeof(big), "GET /hello HTTP/1.1\r\nX-Big: %0300d\r\n\r\n", 0);
    expect_error(&f, big, 431, "headers_too_large", 1);
    strcpy(big, "GET /hello HTTP/1.1\r\n");
    for (int i = 0; i < 9; i++)
        sprintf(big + strlen(big), "H%d: v\r\n", i);
    strcat(big, "\r\n");
    expect_error(&f, big, 431, "headers_too_large", 1);
    expect_error(&f, "POST /echo HTTP/1.1\r\nContent-Length: 33\r\n\r\n", 413, "payload_too_large",
                 1);
    expect_error(&f,
                 "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "10\r\n0123456789abcdef\r\n10\r\n0123456789abcdef\r\n1\r\nx\r\n0\r\n\r\n",
                 413, "payload_too_large", 1);
    expect_error(&f, "GARBAGE\r\n\r\n", 400, "bad_request", 1);
    expect_error(&f, "GET /hello HTTP/1.1\r\nBad Header\r\n\r\n", 400, "bad_request", 1);
    expect_error(&f, "GET /hello HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400,
                 "bad_request", 1);
    expect_error(&f, "GET hello HTTP/1.1\r\n\r\n", 400, "bad_request", 1);
    expect_error(&f,
                 "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "3\r\nabc\r\n0\r\n\r\n",
                 400, "bad_request", 1);
    /* Problems confined to one well-framed request keep the connection. */
    expect_error(&f, "GET /kv/%zz HTTP/1.1\r\n\r\n", 400, "bad_request", 0);
    expect_error(&f, "GET /kv/a%00b HTTP/1.1\r\n\r\n", 400, "bad_request", 0);
    expect_error(&f, "POST /json HTTP/1.1\r\nContent-Length: 6\r\n\r\n{\"a\":1", 400, "bad_json",
                 0);
    expect_error(&f, "GET /nowhere HTTP/1.1\r\n\r\n", 404, "not_found", 0);
    expect_error(&f, "POST /hello HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", 405,
                 "method_not_allowed", 0);

    /* An error after good pipelined requests comes after their answers. */
    struct out o;
    one(&f, "GET /hello HTTP/1.1\r\n\r\nGET /seq?n=7 HTTP/1.1\r\n\r\nBROKEN\r\n\r\n", &o);
    cr_assert_eq(o.n, 3);
    cr_assert_eq(o.r[0].status, 200);
    cr_assert_str_eq(o.r[1].body, "7");
    cr_assert_eq(o.r[2].status, 400);
    cr_assert(o.closed);
    out_free(&o);
    mfix_fini(&f);
}

Test(http_router, params_query_head_and_redirect_headers)
{
    struct mfix f;
    mfix_init(&f, NULL);
    struct out o;
    one(&f, "GET /kv/a%20b/c?wait=1m&wait=2m&stale&q=%41+%42 HTTP/1.1\r\n\r\n", &o);
    cr_assert_str_eq(o.r[0].body, "{\"key\":\"a b/c\",\"wait\":\"1m\"}");
    out_free(&o);
    one(&f, "GET /kv/ HTTP/1.1\r\n\r\n", &o); /* greedy parameter needs a value */
    cr_assert_eq(o.r[0].status, 404);
    out_free(&o);
    one(&f, "GET /p/x HTTP/1.1\r\n\r\n", &o);
    cr_assert_eq(o.r[0].status, 404);
    out_free(&o);
    one(&f, "GET /p/x/y HTTP/1.1\r\n\r\n", &o);
    cr_assert_str_eq(o.r[0].body, "{\"a\":\"x\",\"rest\":\"y\"}");
    out_free(&o);
    one(&f, "GET http://example/hello?x HTTP/1.1\r\n\r\n", &o);
    cr_assert_str_eq(o.r[0].body, "hello");
    out_free(&o);
    one(&f, "DELETE /kv/x HTTP/1.1\r\n\r\n", &o);
    char buf[128];
    cr_assert_eq(o.r[0].status, 405);
    cr_assert_str_eq(resp_header(&o.r[0], "Allow", buf, sizeof(buf)), "GET, HEAD, PUT");
    out_free(&o);
    one(&f, "GET /redirect HTTP/1.1\r\n\r\n", &o);
    cr_assert_eq(o.r[0].status, 307);
    cr_assert_str_eq(resp_header(&o.r[0], "Location", buf, sizeof(buf)), "http://127.0.0.1:1/v1/x");
    cr_assert_null(resp_header(&o.r[0], "Injected", buf, sizeof(buf)));
    out_free(&o);

    /* HEAD is served by the GET route with the body left out. */
    one(&f, "HEAD /hello HTTP/1.1\r\n\r\n", &o);
    cr_assert_str_eq(o.raw, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: 5\r\n\r\n");
    out_free(&o);

    /* Upgrades are not supported: a normal answer, then close. */
    one(&f, "GET /hello HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nxx", &o);
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.r[0].status, 200);
    cr_assert(o.closed);
    out_free(&o);

    /* HTTP/1.0: closes unless asked to keep alive. */
    one(&f, "GET /hello HTTP/1.0\r\n\r\n", &o);
    cr_assert_eq(o.r[0].status, 200);
    cr_assert(o.closed);
    out_free(&o);
    one(&f, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &o);
    cr_assert_str_eq(resp_header(&o.r[0], "Connection", buf, sizeof(buf)), "keep-alive");
    cr_assert_not(o.closed);
    out_free(&o);
    mfix_fini(&f);
}

Test(http_router, bad_patterns_are_refused)
{
    struct mfix f;
    mfix_init(&f, NULL);
    static const char *bad[] = {"/a/{x...}/b", "/{}", "/a//b", "/a{b}", "/a/", "/{x", "/{...}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(
            http_server_route(f.srv, HTTP_METHOD_GET, bad[i], 0, (http_handler_cb)abort, NULL),
            HTTP_EPATTERN, "%s", bad[i]);
    cr_assert_eq(
        http_server_route(f.srv, HTTP_METHOD_GET, "relative", 0, (http_handler_cb)abort, NULL),
        HTTP_EINVAL);
    mfix_fini(&f);
}

Test(http_auth, bearer_token_guards_mutating_routes)
{
    http_options_t opts = {.token = "s3cret"};
    struct mfix f;
    mfix_init(&f, &opts);
    expect_error(&f, "PUT /kv/x HTTP/1.1\r\nContent-Length: 1\r\n\r\nv", 401, "unauthorized", 0);
    expect_error(&f,
                 "PUT /kv/x HTTP/1.1\r\nAuthorization: Bearer s3cre\r\nContent-Length: 1\r\n\r\nv",
                 401, "unauthorized", 0);
    expect_error(
        &f, "PUT /kv/x HTTP/1.1\r\nAuthorization: Bearer s3cret2\r\nContent-Length: 1\r\n\r\nv",
        401, "unauthorized", 0);
    struct out o;
    one(&f, "PUT /kv/x HTTP/1.1\r\nAuthorization: Bearer s3cret\r\nContent-Length: 1\r\n\r\nv", &o);
    cr_assert_eq(o.r[0].status, 200);
    out_free(&o);
    one(&f, "GET /kv/x HTTP/1.1\r\n\r\n", &o); /* reads need no token */
    cr_assert_eq(o.r[0].status, 200);
    out_free(&o);
    mfix_fini(&f);
}

/* A token replaced while the server runs (SIGHUP): the old one is refused from then on, the new
 * one accepted; set to none, mutating routes are open; an empty token means none too. */
Test(http_auth, token_replaced_at_run_time)
{
    http_options_t opts = {.token = "old-tok"};
    struct mfix f;
    mfix_init(&f, &opts);
    const char *with_old =
        "PUT /kv/x HTTP/1.1\r\nAuthorization: Bearer old-tok\r\nContent-Length: 1\r\n\r\nv";
    const char *with_new =
        "PUT /kv/x HTTP/1.1\r\nAuthorization: Bearer new-tok\r\nContent-Length: 1\r\n\r\nv";
    const char *without = "PUT /kv/x HTTP/1.1\r\nContent-Length: 1\r\n\r\nv";
    struct out o;
    cr_assert_eq(http_server_set_token(f.srv, "new-tok"), 0);
    expect_error(&f, with_old, 401, "unauthorized", 0);
    one(&f, with_new, &o);
    cr_assert_eq(o.r[0].status, 200);
    out_free(&o);
    cr_assert_eq(http_server_set_token(f.srv, NULL), 0);
    one(&f, without, &o);
    cr_assert_eq(o.r[0].status, 200);
    out_free(&o);
    cr_assert_eq(http_server_set_token(f.srv, "new-tok"), 0);
    expect_error(&f, without, 401, "unauthorized", 0);
    cr_assert_eq(http_server_set_token(f.srv, ""), 0);
    one(&f, without, &o);
    cr_assert_eq(o.r[0].status, 200);
    out_free(&o);
    cr_assert_eq(http_server_set_token(NULL, "x"), HTTP_EINVAL);
    mfix_fini(&f);
}

Test(http_cancel, client_leaving_or_server_closing_cancels_pending_requests)
{
    struct mfix f;
    mfix_init(&f, NULL);
    http_memconn_t *a, *b;
    cr_assert_eq(http_memconn_open(f.srv, &a), 0);
    cr_assert_eq(http_memconn_open(f.srv, &b), 0);
    const char *req = "GET /async?ms=100000 HTTP/1.1\r\n\r\n";
    http_memconn_feed(a, req, strlen(req));
    http_memconn_feed(b, req, strlen(req));
    run_for(&f.loop, 5);
    cr_assert_eq(atomic_load(&f.ctx.cancelled), 0);
    http_memconn_close(a);
    cr_assert_eq(atomic_load(&f.ctx.cancelled), 1);
    /* b is released by the server close, which cancels its request. */
    atomic_int done = 0;
    http_server_close(f.srv, closed_cb, &done);
    cr_assert_eq(atomic_load(&f.ctx.cancelled), 2);
    run_until(&f.loop, &done, 3000);
    cr_assert(atomic_load(&done));
    cr_assert_eq(uv_loop_close(&f.loop), 0);
}

struct stats_seen {
    uint64_t hello200, unmatched404, json400;
};

static void stats_cb(const char *method, const char *pattern, int status, uint64_t count,
                     void *data)
{
    struct stats_seen *s = data;
    if (!strcmp(method, "GET") && !strcmp(pattern, "/hello") && status == 200)
        s->hello200 = count;
    if (!strcmp(pattern, "") && status == 404)
        s->unmatched404 = count;
    if (!strcmp(pattern, "/json") && status == 400)
        s->json400 = count;
}

Test(http_stats, requests_counted_by_route_and_status)
{
    struct mfix f;
    mfix_init(&f, NULL);
    struct out o;
    one(&f,
        "GET /hello HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n"
        "POST /json HTTP/1.1\r\nContent-Length: 1\r\n\r\n{",
        &o);
    cr_assert_eq(o.n, 4);
    out_free(&o);
    struct stats_seen s = {0};
    http_server_stats_foreach(f.srv, stats_cb, &s);
    cr_assert_eq(s.hello200, 2);
    cr_assert_eq(s.unmatched404, 1);
    cr_assert_eq(s.json400, 1);
    http_counters_t c;
    http_server_counters(f.srv, &c);
    cr_assert_eq(c.requests, 4);
    cr_assert_eq(c.connections_open, 0);
    mfix_fini(&f);
}

static bool scoped_is_w(const char *token, size_t len, void *data)
{
    (void)data;
    return len == 5 && memcmp(token, "w-tok", 5) == 0;
}

/* The scoped credential opens the routes flagged HTTP_ROUTE_SCOPED (and the handler knows),
 * is refused with 403 on the other mutating routes, and never replaces the server's token. */
Test(http_auth, scoped_token_opens_scoped_routes_only)
{
    http_options_t opts = {.token = "s3cret", .scoped_cb = scoped_is_w};
    struct mfix f;
    mfix_init(&f, &opts);
    struct out o;
    one(&f, "PUT /kv/x HTTP/1.1\r\nAuthorization: Bearer w-tok\r\nContent-Length: 1\r\n\r\nv", &o);
    cr_assert_eq(o.r[0].status, 200);
    cr_assert(strstr(o.r[0].body, "\"scoped\":true"), "%s", o.r[0].body);
    out_free(&o);
    one(&f, "PUT /kv/x HTTP/1.1\r\nAuthorization: Bearer s3cret\r\nContent-Length: 1\r\n\r\nv", &o);
    cr_assert_eq(o.r[0].status, 200);
    cr_assert(!strstr(o.r[0].body, "scoped"), "%s", o.r[0].body);
    out_free(&o);
    expect_error(&f, "POST /admin HTTP/1.1\r\nAuthorization: Bearer w-tok\r\n\r\n", 403,
                 "insufficient_scope", 0);
    expect_error(&f,
                 "PUT /kv/x HTTP/1.1\r\nAuthorization: Bearer w-to\r\nContent-Length: 0\r\n\r\n",
                 401, "unauthorized", 0);
    one(&f, "POST /admin HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n\r\n", &o);
    cr_assert_eq(o.r[0].status, 200);
    out_free(&o);
    mfix_fini(&f);
}
