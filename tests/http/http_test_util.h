/* http_test_util.h — shared pieces of the http/ tests: the test routes, a server running
 * on its own loop thread, a blocking loopback client with timeouts, and a parser for
 * response bytes (from a socket or from an in-memory connection). */
#ifndef ELECTD_HTTP_TEST_UTIL_H
#define ELECTD_HTTP_TEST_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* State the test routes share with the test. */
struct test_ctx {
    uv_loop_t *loop;
    atomic_int cancelled;  /* async requests whose cancel callback ran */
    atomic_int sse_gone;   /* event streams whose cancel callback ran */
    atomic_int sse_events; /* events written */
    atomic_int sse_slow;   /* stream writes refused with HTTP_ESLOW */
    atomic_int handled;    /* handler invocations */
    atomic_int errors;     /* unexpected results seen on the loop thread */
};

/* Registers:
 *   GET  /hello                 -> 200 "hello"
 *   GET  /seq?n=X               -> 200 "X"
 *   GET  /p/{a}/{rest...}       -> 200 JSON {"a":..,"rest":..}
 *   GET  /kv/{key...}           -> 200 JSON {"key":..,"wait":query wait or null}
 *   PUT  /kv/{key...} mutating, scoped -> 200 JSON {"key":..,"len":body length}, plus
 *                                  "scoped":true when http_req_scoped()
 *   POST /admin  mutating       -> 200 "hello" (not open to the scoped credential)
 *   POST /json                  -> 200 JSON body re-serialized, 400 on bad JSON
 *   POST /echo                  -> 200 body as received
 *   GET  /async?ms=N&id=X       -> 200 "async-X" after N ms (cancellable)
 *   GET  /events                -> SSE: "data: hello", then an event every 20 ms
 *                                  (?flood=N: N bytes every 1 ms instead)
 *   GET  /hdr?name=H            -> 200 value of request header H, 404 if absent
 *   GET  /redirect              -> 307 with Location
 *   GET  /healthz  probe        -> 200 "hello" (served from the probe reserve too)
 *   GET  /whoami                -> 200 "<tls|plain> <client certificate CN or -> <operator|->"
 *                                  (the last: tls_session_peer_matches(.., "operator")) */
void test_routes_add(http_server_t *srv, struct test_ctx *ctx);

/* A server on a loop running in a helper thread. */
struct tsrv {
    uv_loop_t loop;
    http_server_t *srv;
    uv_async_t stop;
    uv_thread_t thread;
    int port;
    struct test_ctx ctx;
    http_counters_t final; /* counters captured at stop */
    int loop_close_rc;
    char stats[4096]; /* "method pattern status count\n" rows captured at stop */
};

void tsrv_start(struct tsrv *t, const http_options_t *opts, const char *addr);
/* The same over HTTPS with `tls` (a server context; NULL for plain HTTP) and `cb`. */
void tsrv_start_tls(struct tsrv *t, const http_options_t *opts, struct tls_ctx *tls,
                    http_tls_error_cb cb, const char *addr);
void tsrv_stop(struct tsrv *t); /* closes the server, joins, checks uv_loop_close()==0 */

/* A parsed response. */
struct resp {
    int status;
    http_response_t parsed; /* the headers (http/response.c) */
    char *body;             /* malloc'd, NUL-terminated */
    size_t body_len;
};
void resp_free(struct resp *r);
/* Header value (copied into buf) or NULL. */
const char *resp_header(const struct resp *r, const char *name, char *buf, size_t cap);

/* Parses one response from buf[0..len). Returns bytes consumed (>0), 0 if more bytes are
 * needed, -1 if malformed. With eof set, a response without Content-Length ends at len. */
long resp_parse(const char *buf, size_t len, bool eof, struct resp *out);

/* Blocking loopback client (5 s timeouts). */
struct client {
    int fd;
    char *buf;
    size_t len, cap;
    bool eof;
};
int client_open(struct client *c, int port);  /* 0 or -errno */
int client_open6(struct client *c, int port); /* to [::1] */
void client_close(struct client *c);
int client_send(struct client *c, const char *data, size_t len);
int client_sends(struct client *c, const char *s);
/* 0 and a response; -1 EOF or reset before a full response; -2 timeout/error. */
int client_read(struct client *c, struct resp *r);
/* 1 once the server closed (EOF/reset) within timeout_ms, 0 otherwise. */
int client_wait_eof(struct client *c, int timeout_ms);
/* Reads at least until `needle` appears in the unconsumed input (0) or timeout (-2) or EOF (-1). */
int client_read_until(struct client *c, const char *needle, int timeout_ms);

/* One request on a fresh connection; returns status or negative. */
int http_get_status(int port, const char *request);

/* Runs the loop until *flag becomes non-zero or timeout_ms passes (in-thread loops). */
void run_until(uv_loop_t *loop, const atomic_int *flag, int timeout_ms);
void run_for(uv_loop_t *loop, int ms);

#endif
