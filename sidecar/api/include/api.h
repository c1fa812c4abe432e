/* api.h — electd's local HTTP API: the handlers behind http/'s router, reading the node's
 * state (node.h). See docs/api.md for every endpoint. */
#ifndef ELECTD_SIDECAR_API_H
#define ELECTD_SIDECAR_API_H

#include "http.h"
#include "node.h"
#include "named.h"
#include "workload.h"

typedef struct sidecar_api sidecar_api_t;

/* Creates the server on cfg->listen_http and registers every route. errbuf gets one line on
 * failure (e.g. the address is in use). */
int sidecar_api_open(sidecar_api_t **out, uv_loop_t *loop, const sidecar_config_t *cfg,
                     sidecar_node_t *node, sidecar_workload_t *workload, sidecar_named_t *named,
                     char *errbuf, size_t errlen);

/* The HTTP server (for in-memory connections in the fuzz target). */
http_server_t *sidecar_api_server(sidecar_api_t *api);

/* The port actually bound. */
int sidecar_api_port(const sidecar_api_t *api);

/* A new HTTP token (SIGHUP reload; NULL: none): mutating requests whose head arrives from now
 * on need it, and the --insecure-http warning follows. The settings the API was opened with
 * must hold it before the loop turns again (the --forward relay reads them). 0, or
 * HTTP_ENOMEM: nothing changed. */
int sidecar_api_set_token(sidecar_api_t *api, const char *token);

/* Closes the server; cb(ud) when every connection is closed and api is freed. */
void sidecar_api_close(sidecar_api_t *api, void (*cb)(void *ud), void *ud);

#endif
