/* api.h — electd's local HTTP API: the handlers behind http/'s router, reading the node's
 * state (node.h). See docs/api.md for every endpoint. */
#ifndef ELECTD_SIDECAR_API_H
#define ELECTD_SIDECAR_API_H

#include "http.h"
#include "node.h"
#include "workload.h"

typedef struct sidecar_api sidecar_api_t;

/* Creates the server on cfg->listen_http and registers every route. errbuf gets one line on
 * failure (e.g. the address is in use). */
int sidecar_api_start(sidecar_api_t **out, uv_loop_t *loop, const sidecar_config_t *cfg,
                      sidecar_node_t *node, sidecar_workload_t *workload, char *errbuf,
                      size_t errlen);

/* The HTTP server (for in-memory connections in the fuzz target). */
http_server_t *sidecar_api_server(sidecar_api_t *api);

/* The port actually bound. */
int sidecar_api_port(const sidecar_api_t *api);

/* Closes the server; cb(ud) when every connection is closed and api is freed. */
void sidecar_api_close(sidecar_api_t *api, void (*cb)(void *ud), void *ud);

/* ---- the workload's credential ----------------------------------------------------------
 * The operator's --http-token is kept out of the workload's environment; the workload and
 * its hooks get ELECTD_WORKLOAD_TOKEN instead: SIDECAR_API_WORKLOAD_TOKEN_BYTES random bytes
 * (getrandom) in hex, drawn afresh at every start of the workload. With --http-token set the
 * API accepts it only while the workload runs on this node (starting, primary or stopping),
 * and only for KV writes, which must then carry a fence; anything else it asks for is 403
 * (docs/api.md). Process-wide: one electd process runs one workload. */

#define SIDECAR_API_WORKLOAD_TOKEN_BYTES 16

/* Draws a fresh token, which replaces (and so revokes) the previous one, registers it with
 * the log as a secret in place of the previous one, and returns it in hex (static storage,
 * valid until the next rotation). NULL when no randomness could be drawn: then no workload
 * token is valid until a later rotation succeeds. */
const char *sidecar_api_workload_token_rotate(void);

/* The current token in hex, or NULL (none drawn yet, or the last draw failed). */
const char *sidecar_api_workload_token(void);

#endif
