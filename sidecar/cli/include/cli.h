/* cli.h — `electd status|leader|transfer|kv|members|elections|backup|maintenance|help`:
 * subcommands of the electd binary that talk to the local HTTP API of a running electd, for
 * humans (tables) and scripts (--json, exit codes). A small blocking HTTP/1.1 client over one
 * TCP socket per request, plain or HTTPS (tls.h, with curl's --cacert, --cert, --key); no
 * daemon state is touched.
 *
 * Exit codes (the contract scripts rely on, documented in docs/api.md):
 *   0  the request succeeded;
 *   1  a definite "no": not found (404), condition failed (409: conflict, fenced, a handover
 *      refused), no leader known (`electd leader`), no change within `leader --wait`;
 *   2  an error: bad usage, connection refused, timeout, 4xx other than 404/409, 5xx, a
 *      second 421 after following one redirect, a malformed reply.
 */
#ifndef ELECTD_SIDECAR_CLIENT_H
#define ELECTD_SIDECAR_CLIENT_H

#include <stdbool.h>

#define SIDECAR_CLIENT_OK    0
#define SIDECAR_CLIENT_NO    1
#define SIDECAR_CLIENT_ERROR 2

/* True when argv[1] names a client subcommand (main() then hands over to
 * sidecar_client_main before any daemon configuration is parsed). */
bool sidecar_client_is_subcommand(const char *arg);

/* Runs the subcommand argv[1] with the rest of argv; writes results to stdout, diagnostics to
 * stderr; returns one of the exit codes above. Reads stdin only for `kv put KEY -`.
 * Environment: ELECTD_HTTP_URL, else ELECTD_HTTP (default --http), ELECTD_HTTP_TOKEN (default
 * --token), ELECTD_CACERT, ELECTD_CERT, ELECTD_KEY (default --cacert, --cert, --key). A
 * certificate that does not verify is a transport error (exit 2) naming OpenSSL's reason. */
int sidecar_client_main(int argc, char **argv);

#endif
