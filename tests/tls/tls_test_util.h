/* tls_test_util.h — shared pieces of the TLS tests (tests/tls, tests/http): the throwaway PKI
 * made by make_certs.sh, contexts from its files, a pump that moves bytes between two
 * in-memory sessions, and a blocking-socket TLS client (the way the CLI will use tls.h). */
#ifndef ELECTD_TLS_TEST_UTIL_H
#define ELECTD_TLS_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "tls.h"

/* The certificate directory: made once per test program (by the PRE_ALL hook that
 * TLS_TEST_CERTS_HOOKS() defines, inherited by every test through the environment), or on
 * first use. Aborts the test when the openssl CLI fails. */
const char *certs_dir(void);
void certs_remove(void); /* rm -r of the directory, if this process made it */

/* Put each once, on lines of their own, in every test file that uses certificates (the
 * hooks are named after the line they are on). */
#define TLS_TEST_CERTS_MAKE_HOOK()                                                                 \
    ReportHook(PRE_ALL)(struct criterion_test_set * set)                                           \
    {                                                                                              \
        (void)set;                                                                                 \
        (void)certs_dir();                                                                         \
    }
#define TLS_TEST_CERTS_REMOVE_HOOK()                                                               \
    ReportHook(POST_ALL)(struct criterion_global_stats * stats)                                    \
    {                                                                                              \
        (void)stats;                                                                               \
        certs_remove();                                                                            \
    }

/* "<dir>/<name>" in one of 8 rotating static buffers. */
const char *cert_path(const char *name);

/* A context from <leaf>.crt/<leaf>.key (leaf may be NULL for a client without certificate)
 * and <ca>.crt (ca may be NULL). Asserts success. */
tls_ctx_t *ctx_new(tls_role_t role, const char *leaf, const char *ca);

/* Moves output between the two sessions and advances both handshakes until nothing moves
 * (at most 32 rounds). Returns the bytes moved. */
size_t pump(tls_session_t *a, tls_session_t *b);
/* Moves a's output into b only; returns the bytes moved (asserts b takes them). */
size_t move_out(tls_session_t *a, tls_session_t *b);

/* A TLS client over a blocking loopback socket, with 5 s timeouts. */
struct tls_client {
    int fd;
    tls_session_t *s;
    char err[TLS_ERROR_TEXT_MAX];
};
/* Connects to 127.0.0.1:port and completes the handshake. 0, or the tls error (text in
 * c->err), or -1000 for a socket error or timeout. The session is kept on failure too. */
int tls_client_open(struct tls_client *c, int port, tls_ctx_t *ctx, const char *server_name);
void tls_client_close(struct tls_client *c);
int tls_client_send(struct tls_client *c, const void *data, size_t len);
/* Reads plaintext until at least one byte arrives: 0 with *n > 0, TLS_ECLOSED, a tls error,
 * or -1000 (socket EOF without close_notify, error or timeout). */
int tls_client_recv(struct tls_client *c, void *buf, size_t cap, size_t *n);

#endif
