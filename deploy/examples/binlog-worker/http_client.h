/* http_client.h — a tiny blocking HTTP/1.1 client for the example worker: one request per
 * connection to electd's local API (ELECTD_HTTP), every step bounded by a deadline. It is
 * what a workload in any language does with its HTTP library; nothing here is electd's. */
#ifndef BINLOG_HTTP_CLIENT_H
#define BINLOG_HTTP_CLIENT_H

#include <stddef.h>

#define HTTP_CLIENT_MAX_RESPONSE_BYTES 65536 /* electd's replies here are a few hundred bytes */

#define HTTP_CLIENT_ERRORS(X)                                                                      \
    X(HTTP_CLIENT_EADDR, -1, "bad address (want HOST:PORT or [IPv6]:PORT, HOST resolvable)")       \
    X(HTTP_CLIENT_ECONNECT, -2, "cannot connect")                                                  \
    X(HTTP_CLIENT_ETIMEOUT, -3, "timed out")                                                       \
    X(HTTP_CLIENT_EIO, -4, "connection failed")                                                    \
    X(HTTP_CLIENT_EPROTO, -5, "malformed response")                                                \
    X(HTTP_CLIENT_ETOOBIG, -6, "response too large")

enum {
#define X(name, code, text) name = code,
    HTTP_CLIENT_ERRORS(X)
#undef X
};

const char *http_client_strerror(int code);

/* Sends "Authorization: Bearer <token>" with every later request (the workload's own
 * credential, ELECTD_WORKLOAD_TOKEN); NULL or "" sends none. The token is copied; one longer
 * than HTTP_CLIENT_TOKEN_MAX bytes or with spaces or control characters is refused (-1, and
 * none is sent). */
#define HTTP_CLIENT_TOKEN_MAX 256
int http_client_bearer_set(const char *token);

/* Sends `method path` with body (may be NULL when body_len is 0) to addr ("HOST:PORT" or
 * "[IPv6]:PORT"; HOST may be a name, and each address it resolves to is tried in turn), then reads
 * the whole reply, all within timeout_ms. Returns the HTTP status (100-599) or a negative
 * HTTP_CLIENT_E* code. The reply body (without headers) is copied into body_out (caller-owned,
 * body_cap bytes, always NUL-terminated, cut to fit) when body_out is not NULL. `path` must already
 * be percent-encoded. */
int http_client_request(const char *addr, const char *method, const char *path, const char *body,
                        size_t body_len, int timeout_ms, char *body_out, size_t body_cap);

#endif
