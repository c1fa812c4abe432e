/* httpc.h — the chaos clients' HTTP/1.1 client: one request per connection, to any IPv4
 * address, every step bounded by a deadline, and a clear answer to the one question the
 * linearizability checker needs: could the request have reached the server? */
#ifndef ELECTD_TESTS_CHAOS_HTTPC_H
#define ELECTD_TESTS_CHAOS_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

#define HTTPC_BODY_MAX 4096

typedef struct httpc_resp {
    int status;                /* HTTP status, or HTTPC_NOT_SENT / HTTPC_LOST */
    char body[HTTPC_BODY_MAX]; /* NUL-terminated, truncated */
} httpc_resp_t;

#define HTTPC_NOT_SENT (-1) /* could not connect: the server never saw the request */
#define HTTPC_LOST     (-2) /* sent (or partly sent) but no complete answer before the deadline */

/* Sends METHOD path to ip:port with an optional extra header line ("Name: value") and body.
 * Returns resp->status. */
int httpc_request(const char *ip, int port, const char *method, const char *path,
                  const char *header, const char *body, int timeout_ms, httpc_resp_t *resp);

#endif
