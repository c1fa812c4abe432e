/* tls_int.h — private layout shared by the tls/ sources: the context and session structures
 * and the helpers that turn OpenSSL's error queue into text. Nothing outside tls/ includes
 * this. */
#ifndef ELECTD_TLS_INT_H
#define ELECTD_TLS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "tls.h"

struct tls_ctx {
    tls_role_t role;
    char *cert_file, *key_file, *ca_file; /* copies; NULL when not set */
    bool insecure_no_verify;
    SSL_CTX *ssl; /* the current settings; each SSL holds its own reference */
};

struct tls_session {
    SSL *ssl;
    BIO *in;  /* ciphertext fed, read by OpenSSL */
    BIO *out; /* ciphertext written by OpenSSL, taken by the caller */
    int err;  /* sticky TLS_E* code, 0 while healthy */
    bool established;
    bool verifies_peer; /* the context checks the peer's certificate */
    bool seen_input;    /* a byte has been fed (the plaintext check looks at the first) */
    bool notified;      /* close_notify queued */
    bool peer_closed;   /* close_notify received */
    char errtext[TLS_ERROR_TEXT_MAX];
    /* The verified peer certificate's names, filled when the handshake completes: one block
     * of NUL-terminated strings; cn and name[] point into it. */
    char *names_block;
    const char *cn;
    const char *name[TLS_PEER_NAMES_MAX];
    size_t n_names;
};

/* tls_context.c: formats "prefix: <OpenSSL's reason for the oldest queued error>" into
 * buf (always NUL-terminated) and clears the queue; "prefix: `fallback`" when none. */
void tls_error_format(char *buf, size_t len, const char *prefix, const char *fallback);

/* tls_peer.c: records the verified peer certificate's CN and SANs; TLS_ENOMEM. */
int tls_peer_collect(struct tls_session *s);
void tls_peer_free(struct tls_session *s);

#endif
