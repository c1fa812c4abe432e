/* http.h — the whole interface of electd's HTTP/1.1 server (libuv + llhttp + cJSON).
 *
 * The server owns connections, parsing, limits, routing and response framing; the
 * application (sidecar/) registers handlers. A handler receives a request object and
 * answers it at once or later: the object stays valid until it is answered or until
 * the cancel callback registered on it has been called (client gone or server
 * closing). Pipelined requests on one connection are handed to handlers one at a time,
 * in order: the next request of a connection is dispatched only after the previous
 * one has been answered, so responses are always in request order.
 *
 * Threading: everything runs on the loop given to http_server_open(); no function
 * here may be called from another thread.
 *
 * Errors: functions return 0 or a negative HTTP_E* code (http_strerror() names it).
 */
#ifndef ELECTD_HTTP_H
#define ELECTD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <llhttp.h>
#include <stdbool.h>
#include <uv.h>

/* Error codes: X(name, value, text). */
#define HTTP_ERROR_TABLE(X)                                                                        \
    X(HTTP_EINVAL, -1, "invalid argument")                                                         \
    X(HTTP_ENOMEM, -2, "out of memory")                                                            \
    X(HTTP_EADDR, -3, "bad listen address (want host:port or [v6]:port)")                          \
    X(HTTP_ELISTEN, -4, "cannot bind or listen")                                                   \
    X(HTTP_ECLOSED, -5, "connection closed or server closing")                                     \
    X(HTTP_ESTATE, -6, "request is not in a state that allows this call")                          \
    X(HTTP_ESLOW, -7, "client is not reading fast enough; connection is being closed")             \
    X(HTTP_EPATTERN, -8, "bad route pattern")                                                      \
    X(HTTP_EHEADER, -9, "bad response header name or value, or too many headers")                  \
    X(HTTP_EJSON, -10, "request body is not valid JSON")                                           \
    X(HTTP_ETOOBIG, -11, "output limit exceeded")                                                  \
    X(HTTP_EPROTO, -12, "malformed or truncated HTTP response")

enum {
#define HTTP_ERRNO_ENUM(name, value, text) name = value,
    HTTP_ERROR_TABLE(HTTP_ERRNO_ENUM)
#undef HTTP_ERRNO_ENUM
};

/* Text for an HTTP_E* code (or "unknown error"); never NULL, static storage. */
const char *http_strerror(int err);

/* ---- Limits and options ------------------------------------------------------------ */

/* Every field: 0 means "use the default" shown. Exceeding a limit gives the status shown
 * and, where the byte stream cannot be trusted any more, closes the connection after the
 * response. */
typedef struct http_limits {
    size_t max_header_bytes;      /* 8192: sum of header names + values (+4 per header); 431 */
    size_t max_headers;           /* 64: header lines per request; 431 */
    size_t max_url_bytes;         /* 2048: request target incl. query; 414 */
    size_t max_body_bytes;        /* 1 MiB: declared or received (chunked) body; 413 */
    uint32_t max_connections;     /* 1024: further clients get 503 and are closed at once */
    uint32_t idle_timeout_ms;     /* 60000: keep-alive connection with nothing to do */
    uint32_t header_timeout_ms;   /* 10000: from a request's first byte (or from accept)
                                     to the end of its headers; 408 then close */
    uint32_t max_pipelined;       /* 16: complete requests queued per connection before
                                     the server stops reading from it */
    size_t max_write_queue_bytes; /* 1 MiB: unsent response bytes per connection; beyond
                                     this dispatch pauses, and streams fail with HTTP_ESLOW */
    uint32_t probe_reserve;       /* 8: loopback connections accepted beyond max_connections
                                     for HTTP_ROUTE_PROBE routes only (see below) */
} http_limits_t;

typedef bool (*http_scoped_token_cb)(const char *token, size_t len, void *data);

/* Told about a socket connection whose TLS failed (handshake refused, not TLS at all, or a
 * broken session): the peer as "ip:port" and the reason in OpenSSL's words. For the log. */
typedef void (*http_tls_error_cb)(const char *peer, const char *reason, void *data);

struct tls_ctx; /* tls.h */

typedef struct http_options {
    http_limits_t limits;
    /* Bearer token for routes flagged HTTP_ROUTE_MUTATING (NULL or "" = no auth).
     * Copied by http_server_open(). */
    const char *token;
    /* Optional second, narrower credential (only consulted when `token` is set): called on a
     * mutating route whose bearer token is not `token`, with that token (`len` bytes, not
     * NUL-terminated); returns true when it is the scoped credential. Such a request may use
     * routes flagged HTTP_ROUTE_SCOPED (http_req_scoped() then says so, for the handler's
     * own extra rules) and gets 403 insufficient_scope on the other mutating routes. */
    http_scoped_token_cb scoped_cb;
    void *scoped_data;
} http_options_t;

/* ---- Server ------------------------------------------------------------------------ */

typedef struct http_server http_server_t;
typedef struct http_req http_req_t;

/* The server is opaque (its layout is private), so unlike most electd objects it is
 * allocated here and freed by http_server_close(). `opts` may be NULL (all defaults);
 * it is not referenced after the call. */
int http_server_open(uv_loop_t *loop, const http_options_t *opts, http_server_t **out);

/* Replaces the bearer token of HTTP_ROUTE_MUTATING routes (NULL or "" = no auth), as
 * http_options_t.token at open: copied; requests whose head is checked from now on (the
 * head is checked once, when it is complete) need the new one. Errors: HTTP_EINVAL,
 * HTTP_ENOMEM (the previous token then stays). */
int http_server_set_token(http_server_t *srv, const char *token);

/* Bind and listen on "host:port": an IPv4 literal ("127.0.0.1:7480", "0.0.0.0:0") or an
 * IPv6 literal in brackets ("[::1]:0"). Port 0 picks a free port; see
 * http_server_port(). Call at most once. Errors: HTTP_EADDR, HTTP_ELISTEN, HTTP_ESTATE. */
int http_server_listen(http_server_t *srv, const char *addr);

/* HTTPS: every socket connection runs through TLS with `ctx`, a server context (tls.h,
 * TLS_ROLE_SERVER). With a trusted CA in it, clients must present a certificate that chains
 * to the CA (http_req_peer_cert_cn() names it). `ctx` is borrowed: it must outlive the
 * server; tls_ctx_reload() on it (on the loop's thread) applies to connections accepted
 * after. `cb` (may be NULL) hears of every TLS failure. The handshake counts against
 * header_timeout_ms. A plaintext HTTP request on the TLS port gets a plaintext 400 and the
 * connection is closed; over max_connections a client is closed without the 503 answer.
 * In-memory connections stay plaintext. Call before http_server_listen(), at most once.
 * A program that never calls this does not link OpenSSL's TLS code (it costs an idle
 * process about 1 MiB of resident memory to link it; see docs/security.md).
 * Errors: HTTP_EINVAL (NULL or not a server context), HTTP_ESTATE, HTTP_ENOMEM. */
int http_server_tls(http_server_t *srv, struct tls_ctx *ctx, http_tls_error_cb cb, void *data);

/* The bound port (host order), or 0 when not listening. */
int http_server_port(const http_server_t *srv);

typedef void (*http_server_close_cb)(void *data);

/* Stop accepting, close every connection (cancel callbacks of unanswered requests are
 * called from inside this call) and the listener. `cb` (may be NULL) runs on the loop
 * once every handle is closed; the server is freed just before it, so `srv` must not be
 * used after this call. After the callback the loop has no handles of this server left
 * (uv_loop_close() can succeed). */
void http_server_close(http_server_t *srv, http_server_close_cb cb, void *data);

/* ---- Routes ------------------------------------------------------------------------ */

typedef enum http_method {
    HTTP_METHOD_GET,
    HTTP_METHOD_HEAD,
    HTTP_METHOD_POST,
    HTTP_METHOD_PUT,
    HTTP_METHOD_DELETE,
    HTTP_METHOD_PATCH,
    HTTP_METHOD_OPTIONS,
    HTTP_METHOD_OTHER, /* anything else llhttp accepts; no route can match it */
} http_method_t;

/* Route flags. */
#define HTTP_ROUTE_MUTATING 0x1 /* requires "Authorization: Bearer <token>" if a token is set */
#define HTTP_ROUTE_SCOPED   0x2 /* mutating, and the scoped credential may use it too */
#define HTTP_ROUTE_PROBE    0x4 /* a health probe: also served from the probe reserve */

/* A handler: `req` is valid until answered (http_req_reply*, or http_req_stream_end) or
 * until its cancel callback runs. `data` is the pointer given to http_server_route(). */
typedef void (*http_handler_cb)(http_req_t *req, void *data);

/* Register `handler` for `method` on `pattern`. A pattern is "/"-separated segments, each
 * a literal or a parameter "{name}" that matches one non-empty segment; the last segment
 * may be "{name...}", matching the (non-empty) rest of the path including slashes.
 * Parameters are percent-decoded. Example: "/v1/kv/{key...}".
 * Matching: routes are tried in registration order; the first whose method and pattern
 * match wins. A path matched only with other methods gives 405 with an Allow header; no
 * match gives 404. HEAD falls back to the GET route (body omitted). Register routes
 * before or after listen, but not from a handler. Errors: HTTP_EPATTERN, HTTP_ENOMEM. */
int http_server_route(http_server_t *srv, http_method_t method, const char *pattern, unsigned flags,
                      http_handler_cb handler, void *data);

/* ---- Request: reading ---------------------------------------------------------------
 * Strings returned below are NUL-terminated, owned by the request and valid as long as
 * `req` is. */

http_method_t http_req_method(const http_req_t *req);
const char *http_req_method_name(const http_req_t *req); /* as sent, e.g. "GET" */
const char *http_req_target(const http_req_t *req);      /* raw request target */
const char *http_req_path(const http_req_t *req);        /* raw path, without the query */
const char *http_req_route(const http_req_t *req);       /* pattern of the matched route */

/* true when the request was let in by the scoped credential (http_options_t.scoped_cb)
 * rather than by the server's token; false on routes that need no token. */
bool http_req_scoped(const http_req_t *req);

/* Decoded path parameter by name, or NULL. */
const char *http_req_param(const http_req_t *req, const char *name);

/* Decoded query value by name ('+' is a space); "" for a bare "?stale"; NULL if absent.
 * With repeated names the first wins. */
const char *http_req_query(const http_req_t *req, const char *name);
/* Query pairs in order: 0 and the pair at `i`, or HTTP_EINVAL past the end. */
int http_req_query_at(const http_req_t *req, size_t i, const char **name, const char **value);

/* First header value with this name (case-insensitive), or NULL. */
const char *http_req_header(const http_req_t *req, const char *name);
/* The bearer token of the Authorization header ("Bearer " and spaces skipped, trailing blanks
 * cut), borrowed for the request, its length in *len; NULL when there is none. */
const char *http_req_bearer(const http_req_t *req, size_t *len);

/* Request body (chunked bodies arrive de-chunked); NUL-terminated, `*len` excludes it.
 * Never NULL (an empty body is ""). */
const char *http_req_body(const http_req_t *req, size_t *len);

/* Parse the body as JSON into `*out` (caller frees with cJSON_Delete).
 * Error: HTTP_EJSON (nothing allocated). */
int http_req_body_json(const http_req_t *req, cJSON **out);

/* Remote address as "ip:port" / "[ip]:port" into buf (always NUL-terminated);
 * "memory" for in-memory connections. */
void http_req_peer(const http_req_t *req, char *buf, size_t len);

/* HTTPS: the common name of the client certificate, verified against the server's trusted
 * CA; NULL on plain HTTP or without a verified certificate. Valid as long as `req`. */
const char *http_req_peer_cert_cn(const http_req_t *req);

/* HTTPS: the connection's TLS session (tls.h: tls_session_peer_matches(), the peer's SANs),
 * or NULL on plain HTTP. Valid as long as `req`; read-only. */
const struct tls_session *http_req_tls(const http_req_t *req);

/* ---- Request: cancellation ---------------------------------------------------------- */

typedef void (*http_cancel_cb)(http_req_t *req, void *data);

/* Register (or replace, or clear with NULL) the callback told that `req` will never be
 * answered: the client went away, the connection hit an error or timeout, or the server
 * is closing. It runs at most once, never after the request was answered, and never from
 * inside an http_req_* call (it runs from the loop or from http_server_close()). When it
 * returns, `req` is gone: unlink it from your lists inside the callback and never touch
 * it again. */
void http_req_on_cancel(http_req_t *req, http_cancel_cb cb, void *data);

/* ---- Request: answering -------------------------------------------------------------
 * Each request is answered exactly once, by one reply call, or by stream_start followed
 * by stream_end. After a successful reply (or stream_end) `req` is invalid. A reply call
 * that fails with HTTP_ECLOSED / HTTP_ENOMEM / HTTP_ETOOBIG also ends the request (it is invalid
 * after, and its cancel callback will not run); HTTP_EINVAL / HTTP_ESTATE / HTTP_EHEADER leave it
 * untouched. */

/* Add a response header (e.g. Location, Allow, Retry-After, ETag) before replying.
 * Content-Length, Content-Type and Connection are set by the server. Names must be
 * tokens, values free of CR/LF; at most 4 KiB of extra headers. Error: HTTP_EHEADER. */
int http_req_header_add(http_req_t *req, const char *name, const char *value);

/* Reply with `len` bytes of `body` (copied); content_type NULL means no Content-Type. */
int http_req_reply(http_req_t *req, int status, const char *content_type, const void *body,
                   size_t len);

/* Reply with `json` serialized unformatted, Content-Type application/json. `json` is not
 * taken over; the caller still owns (and frees) it. */
int http_req_reply_json(http_req_t *req, int status, const cJSON *json);

/* Reply with NUL-terminated text; content_type NULL means "text/plain; charset=utf-8"
 * (the Prometheus exposition format wants "text/plain; version=0.0.4"). */
int http_req_reply_text(http_req_t *req, int status, const char *content_type, const char *text);

/* Reply {"error":{"code":code,"message":message}} with `status`. */
int http_req_reply_error(http_req_t *req, int status, const char *code, const char *message);

/* Start a streaming response (e.g. Server-Sent Events, content type "text/event-stream"):
 * headers are sent now, without Content-Length, and the body runs until the stream ends;
 * the connection closes after it (pipelined requests behind it are dropped). The request
 * stays valid until http_req_stream_end() or its cancel callback. */
int http_req_stream_start(http_req_t *req, int status, const char *content_type);

/* Send `len` bytes on a started stream. HTTP_ESLOW: the client does not read and more
 * than max_write_queue_bytes are waiting; the connection is being closed and the cancel
 * callback will follow from the loop. HTTP_ECLOSED: the connection is closing already
 * (the cancel callback will follow). */
int http_req_stream_write(http_req_t *req, const void *data, size_t len);

/* Bytes a started stream can still queue before http_req_stream_write() fails with
 * HTTP_ESLOW: max_write_queue_bytes less what the client has not read yet (0 when the
 * connection is closing or `req` is not streaming). Lets a writer notice a slow reader in time
 * to send it a last message, and pace what it sends. */
size_t http_req_stream_room(const http_req_t *req);

/* End the stream: send what is queued, then close the connection. `req` is invalid after. */
int http_req_stream_end(http_req_t *req);

/* ---- Counters ------------------------------------------------------------------------ */

typedef struct http_counters {
    uint64_t connections_open;     /* currently open */
    uint64_t connections_accepted; /* total accepted and served */
    uint64_t connections_rejected; /* refused by max_connections */
    uint64_t requests;             /* total responses started */
    uint64_t bad_requests;         /* malformed or over a limit (4xx sent by the server) */
    uint64_t timeouts;             /* header or idle timeouts that closed a connection */
    uint64_t tls_failures;         /* HTTPS connections closed by a TLS error (refused
                                      handshake, plaintext on the TLS port, broken record) */
} http_counters_t;

void http_server_counters(const http_server_t *srv, http_counters_t *out);

/* One row per (route, status) with a non-zero count. `method`/`pattern` are the route's
 * ("" and "" for requests that matched no route: 400/404/405/...). */
typedef void (*http_stats_cb)(const char *method, const char *pattern, int status, uint64_t count,
                              void *data);
void http_server_stats_foreach(const http_server_t *srv, http_stats_cb cb, void *data);

/* ---- In-memory connections ------------------------------------------------------------
 * A connection without a socket that runs the same parser, limits, router and response
 * path as a TCP one; responses accumulate in an output buffer. Used by the fuzzer and by
 * tests. Timeouts apply as for sockets (the loop must run for them). */

typedef struct http_memconn http_memconn_t;

int http_memconn_open(http_server_t *srv, http_memconn_t **out);

/* Feed request bytes. Returns 0, or HTTP_ECLOSED once the connection has closed
 * (after an error response or Connection: close); bytes are then ignored. */
int http_memconn_feed(http_memconn_t *mc, const void *data, size_t len);

/* Response bytes produced so far (not NUL-terminated); valid until the next call. */
const char *http_memconn_output(const http_memconn_t *mc, size_t *len);

/* 1 if the server closed this connection (or wants to), else 0. */
int http_memconn_closed(const http_memconn_t *mc);

/* Tell the server the client went away and release the connection (freed from the loop;
 * http_server_close() also releases it). `mc` is invalid after. */
void http_memconn_close(http_memconn_t *mc);

/* ---- Responses (the client side) ------------------------------------------------------
 * One parser for every HTTP response electd reads (the CLI, --forward, the tests): llhttp in
 * response mode, bounded. Feed bytes as they arrive; the caller owns the socket. Content-Length,
 * chunked and close-delimited bodies are all understood; a second response on the same
 * connection is an error. All fields are read-only for callers except through the functions. */

#define HTTP_RESPONSE_HEAD_MAX    16384      /* default: header names + values, NULs included */
#define HTTP_RESPONSE_BODY_MAX    (8u << 20) /* default: body bytes held at once */
#define HTTP_RESPONSE_MAX_HEADERS 100

typedef struct http_response {
    int status; /* the status code, once headers_done */
    bool headers_done;
    bool done;           /* the whole response has been read */
    uint64_t body_total; /* body bytes received, consumed ones included */
    uint64_t used;       /* once done: bytes of the stream that this response took */
    /* private */
    llhttp_t parser;
    int err;
    uint64_t fed;
    bool in_name;
    char *head; /* "name\0value\0" n_headers times */
    size_t head_len, head_cap, n_headers, max_head_bytes;
    char *body;
    size_t body_len, body_cap, max_body_bytes;
} http_response_t;

/* 0 for either limit means the default above. Never fails. */
void http_response_open(http_response_t *r, size_t max_head_bytes, size_t max_body_bytes);
void http_response_close(http_response_t *r);

/* Parses the next bytes. 1: the response is complete (bytes after it are ignored); 0: more
 * needed; HTTP_EPROTO malformed, HTTP_ETOOBIG a limit exceeded, HTTP_ENOMEM. Errors stick. */
int http_response_feed(http_response_t *r, const void *data, size_t len);

/* The peer closed the connection: 0 when that completes the response (a body delimited by
 * the close, or already complete), HTTP_EPROTO when it was cut short. */
int http_response_finish(http_response_t *r);

/* The first header of that name (case-insensitive), or NULL. Valid until close. */
const char *http_response_header(const http_response_t *r, const char *name);

/* The body received and not yet consumed, NUL-terminated (never NULL); *len its length. */
const char *http_response_body(const http_response_t *r, size_t *len);

/* Drops the first n bytes of the held body (for streams such as server-sent events). */
void http_response_body_consume(http_response_t *r, size_t n);

#endif
