/* test_http_server.c — the server over real loopback sockets: keep-alive at volume, many
 * short and concurrent connections, the connection limit, timeouts (slowloris, idle),
 * chunked bodies, Connection: close, pipelining with an async first answer, errors that
 * leave other clients unaffected, Server-Sent Events and client departure, IPv6 binding.
 * Each test ends with the loop closed cleanly (tsrv_stop checks uv_loop_close()==0). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include <criterion/criterion.h>

#include "http_test_util.h"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void get_ok(struct client *c, const char *path, const char *want_body)
{
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    cr_assert_eq(client_sends(c, req), 0);
    struct resp r;
    cr_assert_eq(client_read(c, &r), 0, "no response to %s", path);
    cr_assert_eq(r.status, 200, "%s: %d", path, r.status);
    if (want_body)
        cr_assert_str_eq(r.body, want_body);
    resp_free(&r);
}

Test(http_server, ten_thousand_keepalive_requests_on_one_connection)
{
    struct tsrv t;
    tsrv_start(&t, NULL, NULL);
    struct client c;
    cr_assert_eq(client_open(&c, t.port), 0);
    char path[64], want[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(path, sizeof(path), "/seq?n=%d", i);
        snprintf(want, sizeof(want), "%d", i);
        get_ok(&c, path, want);
    }
    client_close(&c);
    tsrv_stop(&t);
    cr_assert_eq(t.final.connections_accepted, 1);
    cr_assert_eq(t.final.requests, 10000);
}

Test(http_server, thousand_short_connections)
{
    struct tsrv t;
    tsrv_start(&t, NULL, NULL);
    for (int i = 0; i < 1000; i++) {
        struct client c;
        cr_assert_eq(client_open(&c, t.port), 0, "connect %d", i);
        cr_assert_eq(client_sends(&c, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n"), 0);
        struct resp r;
        cr_assert_eq(client_read(&c, &r), 0, "request %d", i);
        cr_assert_eq(r.status, 200);
        resp_free(&r);
        cr_assert(client_wait_eof(&c, 5000), "server did not close %d", i);
        client_close(&c);
    }
    tsrv_stop(&t);
    cr_assert_eq(t.final.connections_accepted, 1000);
    cr_assert_eq(t.final.requests, 1000);
}

struct worker {
    int port;
    int id;
    int ok;
};

static void worker_run(void *arg)
{
    struct worker *w = arg;
    struct client c;
    if (client_open(&c, w->port) != 0)
        return;
    char req[128], want[64];
    for (int i = 0; i < 300; i++) {
        snprintf(req, sizeof(req), "GET /seq?n=%d-%d HTTP/1.1\r\n\r\n", w->id, i);
        snprintf(want, sizeof(want), "%d-%d", w->id, i);
        struct resp r;
        if (client_sends(&c, req) != 0 || client_read(&c, &r) != 0)
            break;
        if (r.status == 200 && strcmp(r.body, want) == 0)
            w->ok++;
        resp_free(&r);
    }
    client_close(&c);
}

Test(http_server, concurrent_clients_each_get_their_own_answers)
{
    struct tsrv t;
    tsrv_start(&t, NULL, NULL);
    enum { N = 8 };
    struct worker w[N];
    uv_thread_t th[N];
    for (int i = 0; i < N; i++) {
        w[i] = (struct worker){.port = t.port, .id = i};
        cr_assert_eq(uv_thread_create(&th[i], worker_run, &w[i]), 0);
    }
    for (int i = 0; i < N; i++)
        uv_thread_join(&th[i]);
    for (int i = 0; i < N; i++)
        cr_assert_eq(w[i].ok, 300, "worker %d: %d ok", i, w[i].ok);
    tsrv_stop(&t);
}

/* 1: refused (503 or closed without an answer), 0: served. */
static int try_extra(int port)
{
    struct client c;
    if (client_open(&c, port) != 0)
        return 1;
    int refused = 1;
    struct resp r;
    if (client_sends(&c, "GET /hello HTTP/1.1\r\n\r\n") == 0) {
        int rc = client_read(&c, &r);
        if (rc == 0) {
            refused = r.status == 503;
            resp_free(&r);
        }
    }
    client_close(&c);
    return refused;
}

Test(http_server, connection_limit_refuses_excess_and_recovers)
{
    http_options_t opts = {.limits = {.max_connections = 4}};
    struct tsrv t;
    tsrv_start(&t, &opts, NULL);
    struct client c[4];
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(client_open(&c[i], t.port), 0);
        get_ok(&c[i], "/hello", "hello"); /* accepted and counted */
    }
    /* Refused at once with a 503 it can read (it sent nothing, so no reset). */
    struct client x;
    cr_assert_eq(client_open(&x, t.port), 0);
    struct resp r;
    cr_assert_eq(client_read(&x, &r), 0, "no 503 for the fifth connection");
    cr_assert_eq(r.status, 503);
    cr_assert(strstr(r.body, "too_many_connections"), "%s", r.body);
    resp_free(&r);
    cr_assert(client_wait_eof(&x, 5000));
    client_close(&x);
    cr_assert_eq(try_extra(t.port), 1, "sixth connection was served");
    for (int i = 0; i < 4; i++)
        get_ok(&c[i], "/hello", "hello"); /* the others are unaffected */
    client_close(&c[3]);
    /* The freed slot becomes usable once the server has seen the close. */
    int served = 0;
    for (int i = 0; i < 200 && !served; i++) {
        served = try_extra(t.port) == 0;
        if (!served)
            usleep(10000);
    }
    cr_assert(served, "slot not reusable after a client left");
    for (int i = 0; i < 3; i++)
        client_close(&c[i]);
    tsrv_stop(&t);
    cr_assert_geq(t.final.connections_rejected, 1);
}

Test(http_server, chunked_request_body_and_connection_close)
{
    struct tsrv t;
    tsrv_start(&t, NULL, NULL);
    struct client c;
    cr_assert_eq(client_open(&c, t.port), 0);
    cr_assert_eq(client_sends(&c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "4\r\nWiki\r\n"),
                 0);
    usleep(20000); /* body split across reads */
    cr_assert_eq(client_sends(&c, "5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n"), 0);
    struct resp r;
    cr_assert_eq(client_read(&c, &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "Wikipedia in\r\n\r\nchunks.");
    resp_free(&r);
    cr_assert_eq(client_sends(&c, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n"
                                  "GET /hello HTTP/1.1\r\n\r\n"),
                 0);
    cr_assert_eq(client_read(&c, &r), 0);
    char buf[32];
    cr_assert_str_eq(resp_header(&r, "Connection", buf, sizeof(buf)), "close");
    resp_free(&r);
    cr_assert(client_wait_eof(&c, 5000), "not closed after Connection: close");
    client_close(&c);

    /* HTTP/1.0 without keep-alive closes too. */
    cr_assert_eq(client_open(&c, t.port), 0);
    cr_assert_eq(client_sends(&c, "GET /hello HTTP/1.0\r\n\r\n"), 0);
    cr_assert_eq(client_read(&c, &r), 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    cr_assert(client_wait_eof(&c, 5000));
    client_close(&c);
    tsrv_stop(&t);
}

Test(http_server, expect_100_continue_gets_interim_response)
{
    struct tsrv t;
    tsrv_start(&t, NULL, NULL);
    struct client c;
    cr_assert_eq(client_open(&c, t.port), 0);
    cr_assert_eq(client_sends(&c, "PUT /kv/k HTTP/1.1\r\nContent-Length: 3\r\n"
                                  "Expect: 100-continue\r\n\r\n"),
                 0);
    cr_assert_eq(client_read_until(&c, "HTTP/1.1 100 Continue\r\n\r\n", 5000), 0);
    c.len = 0;
    cr_assert_eq(client_sends(&c, "abc"), 0);
    struct resp r;
    cr_assert_eq(client_read(&c, &r), 0);
    cr_assert_str_eq(r.body, "{\"key\":\"k\",\"len\":3}");
    resp_free(&r);
    client_close(&c);
    tsrv_stop(&t);
}

Test(http_server, pipelined_requests_answered_in_order_with_async_first)
{
    struct tsrv t;
    tsrv_start(&t, NULL, NULL);
    struct client c;
    cr_assert_eq(client_open(&c, t.port), 0);
    cr_assert_eq(client_sends(&c, "GET /async?id=a&ms=80 HTTP/1.1\r\n\r\n"
                                  "GET /seq?n=b HTTP/1.1\r\n\r\n"
                                  "GET /async?id=c&ms=1 HTTP/1.1\r\n\r\n"
                                  "GET /hello HTTP/1.1\r\n\r\n"),
                 0);
    static const char *want[] = {"async-a", "b", "async-c", "hello"};
    for (int i = 0; i < 4; i++) {
        struct resp r;
        cr_assert_eq(client_read(&c, &r), 0);
        cr_assert_str_eq(r.body, want[i]);
        resp_free(&r);
    }
    client_close(&c);
    tsrv_stop(&t);
}

Test(http_server, bad_requests_answered_and_other_clients_unaffected)
{
    http_options_t opts = {.limits = {.max_body_bytes = 1024, .max_header_bytes = 1024}};
    struct tsrv t;
    tsrv_start(&t, &opts, NULL);
    struct client other;
    cr_assert_eq(client_open(&other, t.port), 0);
    get_ok(&other, "/hello", "hello");

    cr_assert_eq(http_get_status(t.port, "NOT HTTP AT ALL\r\n\r\n"), 400);
    cr_assert_eq(http_get_status(t.port, "GET /hello HTTP/1.1\r\nNo colon here\r\n\r\n"), 400);
    cr_assert_eq(http_get_status(t.port, "GET /nowhere HTTP/1.1\r\n\r\n"), 404);
    cr_assert_eq(http_get_status(t.port, "DELETE /hello HTTP/1.1\r\n\r\n"), 405);
    cr_assert_eq(http_get_status(t.port, "POST /json HTTP/1.1\r\nContent-Length: 3\r\n\r\n{x}"),
                 400);
    char *big = malloc(8192);
    snprintf(big, 8192, "GET /%04000d HTTP/1.1\r\n\r\n", 0);
    cr_assert_eq(http_get_status(t.port, big), 414);
    snprintf(big, 8192, "GET /hello HTTP/1.1\r\nX: %02000d\r\n\r\n", 0);
    cr_assert_eq(http_get_status(t.port, big), 431);

    /* 413 while the client is still sending a large body: it must still see the answer. */
    struct client c;
    cr_assert_eq(client_open(&c, t.port), 0);
    cr_assert_eq(client_sends(&c, "POST /echo HTTP/1.1\r\nContent-Length: 100000\r\n\r\n"), 0);
    memset(big, 'x', 8192);
    for (int i = 0; i < 4; i++)
        client_send(&c, big, 8192); /* may fail once the server closed: fine */
    struct resp r;
    cr_assert_eq(client_read(&c, &r), 0);
    cr_assert_eq(r.status, 413);
    resp_free(&r);
    client_close(&c);
    free(big);

    get_ok(&other, "/hello", "hello");
    client_close(&other);
    tsrv_stop(&t);
    cr_assert_geq(t.final.bad_requests, 5);
}

Test(http_server, slowloris_closed_by_header_timeout)
{
    http_options_t opts = {.limits = {.header_timeout_ms = 300}};
    struct tsrv t;
    tsrv_start(&t, &opts, NULL);
    struct client slow, idle, good;
    cr_assert_eq(client_open(&slow, t.port), 0);
    cr_assert_eq(client_open(&idle, t.port), 0); /* sends nothing at all */
    cr_assert_eq(client_sends(&slow, "GET /hello HTTP/1.1\r\nX-A: 1\r\n"), 0);
    for (int i = 0; i < 3; i++) {
        usleep(50000);
        client_sends(&slow, "X-B: 2\r\n"); /* trickle, never finish */
    }
    cr_assert_eq(client_open(&good, t.port), 0);
    get_ok(&good, "/hello", "hello"); /* others are served meanwhile */
    struct resp r;
    cr_assert_eq(client_read(&slow, &r), 0, "no 408");
    cr_assert_eq(r.status, 408);
    resp_free(&r);
    cr_assert(client_wait_eof(&slow, 5000), "slow client not closed");
    cr_assert_eq(client_read(&idle, &r), 0);
    cr_assert_eq(r.status, 408);
    resp_free(&r);
    cr_assert(client_wait_eof(&idle, 5000), "silent client not closed");
    client_close(&slow);
    client_close(&idle);
    /* A keep-alive client that finished its request is governed by the idle timeout (60 s),
     * not by the header timeout. */
    get_ok(&good, "/hello", "hello");
    client_close(&good);
    tsrv_stop(&t);
    cr_assert_geq(t.final.timeouts, 2);
}

Test(http_server, idle_keepalive_connection_closed)
{
    http_options_t opts = {.limits = {.idle_timeout_ms = 200}};
    struct tsrv t;
    tsrv_start(&t, &opts, NULL);
    struct client c;
    cr_assert_eq(client_open(&c, t.port), 0);
    get_ok(&c, "/hello", "hello");
    cr_assert(client_wait_eof(&c, 5000), "idle connection not closed");
    client_close(&c);
    /* A long async answer is not an idle connection. */
    cr_assert_eq(client_open(&c, t.port), 0);
    get_ok(&c, "/async?id=x&ms=500", "async-x");
    client_close(&c);
    tsrv_stop(&t);
}

Test(http_server, sse_stream_receives_events_and_server_notices_client_leaving)
{
    struct tsrv t;
    tsrv_start(&t, NULL, NULL);
    struct client c;
    cr_assert_eq(client_open(&c, t.port), 0);
    cr_assert_eq(client_sends(&c, "GET /events HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n"), 0);
    cr_assert_eq(client_read_until(&c, "\r\n\r\n", 5000), 0);
    cr_assert(strstr(c.buf, "HTTP/1.1 200 OK\r\n") == c.buf, "%s", c.buf);
    cr_assert(strstr(c.buf, "Content-Type: text/event-stream\r\n"));
    cr_assert(strstr(c.buf, "Cache-Control: no-cache\r\n"));
    cr_assert_null(strstr(c.buf, "Content-Length"));
    cr_assert_eq(client_read_until(&c, "data: hello\n\n", 5000), 0);
    cr_assert_eq(client_read_until(&c, "data: tick 2\n\n", 5000), 0);
    cr_assert_eq(atomic_load(&t.ctx.sse_gone), 0);
    client_close(&c);
    for (int i = 0; i < 500 && !atomic_load(&t.ctx.sse_gone); i++)
        usleep(10000);
    cr_assert_eq(atomic_load(&t.ctx.sse_gone), 1, "server did not notice the client left");
    tsrv_stop(&t);
}

Test(http_server, stream_to_a_client_that_never_reads_is_closed)
{
    http_options_t opts = {.limits = {.max_write_queue_bytes = 256 * 1024}};
    struct tsrv t;
    tsrv_start(&t, &opts, NULL);
    struct client c;
    cr_assert_eq(client_open(&c, t.port), 0);
    int small = 4096;
    setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    cr_assert_eq(client_sends(&c, "GET /events?flood=65536 HTTP/1.1\r\n\r\n"), 0);
    for (int i = 0; i < 1000 && !atomic_load(&t.ctx.sse_gone); i++)
        usleep(10000);
    cr_assert_eq(atomic_load(&t.ctx.sse_gone), 1, "slow consumer never cut off");
    cr_assert_geq(atomic_load(&t.ctx.sse_slow), 1);
    client_close(&c);
    tsrv_stop(&t);
}

Test(http_server, pending_long_poll_cancelled_when_client_leaves_and_at_close)
{
    struct tsrv t;
    tsrv_start(&t, NULL, NULL);
    struct client a, b;
    cr_assert_eq(client_open(&a, t.port), 0);
    cr_assert_eq(client_open(&b, t.port), 0);
    cr_assert_eq(client_sends(&a, "GET /async?ms=60000 HTTP/1.1\r\n\r\n"), 0);
    cr_assert_eq(client_sends(&b, "GET /async?ms=60000 HTTP/1.1\r\n\r\n"), 0);
    for (int i = 0; i < 500 && atomic_load(&t.ctx.handled) < 2; i++)
        usleep(10000);
    cr_assert_eq(atomic_load(&t.ctx.handled), 2);
    client_close(&a);
    for (int i = 0; i < 500 && !atomic_load(&t.ctx.cancelled); i++)
        usleep(10000);
    cr_assert_eq(atomic_load(&t.ctx.cancelled), 1);
    tsrv_stop(&t); /* b's request is cancelled by the server close */
    cr_assert_eq(atomic_load(&t.ctx.cancelled), 2);
    client_close(&b);
}

Test(http_server, bearer_token_over_socket)
{
    http_options_t opts = {.token = "tok"};
    struct tsrv t;
    tsrv_start(&t, &opts, NULL);
    cr_assert_eq(http_get_status(t.port, "PUT /kv/a HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), 401);
    cr_assert_eq(http_get_status(t.port, "PUT /kv/a HTTP/1.1\r\nAuthorization: Bearer tok\r\n"
                                         "Content-Length: 0\r\n\r\n"),
                 200);
    tsrv_stop(&t);
}

Test(http_server, binds_ipv6_loopback_and_rejects_bad_addresses)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    http_server_t *srv;
    cr_assert_eq(http_server_open(&loop, NULL, &srv), 0);
    static const char *bad[] = {"127.0.0.1", "127.0.0.1:", "127.0.0.1:99999", "::1:80", "[::1]80",
                                "host:80",   ":80",        "127.0.0.1:8x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        http_server_t *s2;
        cr_assert_eq(http_server_open(&loop, NULL, &s2), 0);
        cr_assert_eq(http_server_listen(s2, bad[i]), HTTP_EADDR, "%s", bad[i]);
        http_server_close(s2, NULL, NULL);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    http_server_close(srv, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);

    struct tsrv t;
    uv_loop_t probe;
    uv_loop_init(&probe);
    uv_tcp_t h;
    uv_tcp_init(&probe, &h);
    struct sockaddr_in6 a6;
    uv_ip6_addr("::1", 0, &a6);
    int v6 = uv_tcp_bind(&h, (struct sockaddr *)&a6, 0) == 0;
    uv_close((uv_handle_t *)&h, NULL);
    uv_run(&probe, UV_RUN_DEFAULT);
    uv_loop_close(&probe);
    if (!v6) {
        cr_log_warn("no IPv6 loopback here; skipping the [::1] part");
        return;
    }
    tsrv_start(&t, NULL, "[::1]:0");
    struct client c;
    cr_assert_eq(client_open6(&c, t.port), 0);
    get_ok(&c, "/hello", "hello");
    client_close(&c);
    tsrv_stop(&t);
}

/* Bytes that begin no request (llhttp skips empty lines between requests) must not keep an
 * idle keep-alive connection open: the idle clock runs from the last answer, not from the
 * last byte, or a client trickling "\r\n" would hold its slot forever. */
Test(http_server, keepalive_client_trickling_empty_lines_is_closed)
{
    http_options_t opts = {.limits = {.idle_timeout_ms = 300, .header_timeout_ms = 300}};
    struct tsrv t;
    tsrv_start(&t, &opts, NULL);
    struct client c;
    cr_assert_eq(client_open(&c, t.port), 0);
    get_ok(&c, "/hello", "hello");
    uint64_t start = now_ms();
    bool closed = false;
    /* Bounded: 60 rounds of 50 ms, ten times the idle timeout. */
    for (int i = 0; i < 60 && !closed; i++) {
        client_sends(&c, "\r\n");
        closed = client_wait_eof(&c, 50);
    }
    cr_assert(closed, "a client trickling empty lines kept its connection for 3 s");
    cr_assert_lt(now_ms() - start, 1500, "closed only after %llu ms",
                 (unsigned long long)(now_ms() - start));
    client_close(&c);
    tsrv_stop(&t);
    cr_assert_geq(t.final.timeouts, 1);
}

/* A trickle of header bytes never finishes the head: the header timeout bounds the whole
 * head, however often bytes arrive. */
Test(http_server, header_trickled_forever_is_closed_after_the_header_timeout)
{
    http_options_t opts = {.limits = {.header_timeout_ms = 300}};
    struct tsrv t;
    tsrv_start(&t, &opts, NULL);
    struct client c;
    cr_assert_eq(client_open(&c, t.port), 0);
    get_ok(&c, "/hello", "hello"); /* the second request's head is timed too */
    uint64_t start = now_ms();
    cr_assert_eq(client_sends(&c, "GET /hello HTTP/1.1\r\n"), 0);
    bool closed = false;
    for (int i = 0; i < 60 && !closed; i++) {
        client_sends(&c, "X");
        closed = client_wait_eof(&c, 50);
    }
    cr_assert(closed, "a header trickled byte by byte kept its connection for 3 s");
    cr_assert_lt(now_ms() - start, 1500);
    client_close(&c);
    tsrv_stop(&t);
}

static int status_of(int port, const char *request, bool *closed)
{
    struct client c;
    if (client_open(&c, port) != 0)
        return -1;
    int status = -2;
    struct resp r;
    if (client_sends(&c, request) == 0 && client_read(&c, &r) == 0) {
        status = r.status;
        resp_free(&r);
    }
    *closed = client_wait_eof(&c, 3000);
    client_close(&c);
    return status;
}

/* With every ordinary connection taken by clients that send nothing, a loopback health probe
 * still gets its answer from the reserve; anything else there gets 503 and is closed. */
Test(http_server, probe_reserve_answers_health_probes_over_the_connection_limit)
{
    http_options_t opts = {.limits = {.max_connections = 2, .probe_reserve = 2}};
    struct tsrv t;
    tsrv_start(&t, &opts, NULL);
    struct client idle[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(client_open(&idle[i], t.port), 0);
    /* The idle ones are accepted first: the server takes the listen queue in order. */
    bool closed = false;
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(status_of(t.port, "GET /healthz HTTP/1.1\r\n\r\n", &closed), 200,
                     "probe %d over the limit not answered", i);
        cr_assert(closed, "a reserve connection must close after its one answer");
    }
    struct client h;
    cr_assert_eq(client_open(&h, t.port), 0);
    cr_assert_eq(client_sends(&h, "HEAD /healthz HTTP/1.1\r\n\r\n"), 0);
    cr_assert_eq(client_read_until(&h, "\r\n\r\n", 3000), 0);
    cr_assert(strncmp(h.buf, "HTTP/1.1 200", 12) == 0, "%.40s", h.buf);
    client_close(&h);
    /* Over the limit, nothing else is served: not even on a connection that asked politely. */
    cr_assert_eq(status_of(t.port, "GET /hello HTTP/1.1\r\n\r\n", &closed), 503);
    cr_assert(closed);
    cr_assert_eq(status_of(t.port, "GET /nope HTTP/1.1\r\n\r\n", &closed), 503);
    cr_assert_eq(status_of(t.port, "PUT /kv/a HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &closed),
                 503);
    /* The reserve itself is bounded and cannot be held: idle reserve connections are given
     * a short head time, then the same 503. */
    struct client r1, r2;
    cr_assert_eq(client_open(&r1, t.port), 0);
    cr_assert_eq(client_open(&r2, t.port), 0);
    usleep(100000);
    struct client x;
    cr_assert_eq(client_open(&x, t.port), 0);
    struct resp r;
    cr_assert_eq(client_read(&x, &r), 0, "no answer beyond the reserve");
    cr_assert_eq(r.status, 503);
    resp_free(&r);
    client_close(&x);
    uint64_t start = now_ms();
    cr_assert_eq(client_read(&r1, &r), 0, "an idle reserve connection was not answered");
    cr_assert_eq(r.status, 503);
    cr_assert(strstr(r.body, "too_many_connections"), "%s", r.body);
    resp_free(&r);
    cr_assert(client_wait_eof(&r1, 3000));
    cr_assert(client_wait_eof(&r2, 3000));
    cr_assert_lt(now_ms() - start, 2500);
    client_close(&r1);
    client_close(&r2);
    /* The ordinary connections were never disturbed. */
    for (int i = 0; i < 2; i++) {
        get_ok(&idle[i], "/hello", "hello");
        client_close(&idle[i]);
    }
    tsrv_stop(&t);
}
