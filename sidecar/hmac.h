/* hmac.h — SHA-256 (libcrypto) and HMAC-SHA256 (RFC 2104), for the peer handshake's proof
 * of the shared cluster token. */
#ifndef ELECTD_SIDECAR_HMAC_H
#define ELECTD_SIDECAR_HMAC_H

#include <stddef.h>
#include <stdint.h>

#ifndef OPENSSL_API_COMPAT
#define OPENSSL_API_COMPAT 0x10100000L /* see hmac.c: the low-level SHA-256 costs no RSS */
#endif
#include <openssl/sha.h>

#define SIDECAR_SHA256_LEN 32

typedef struct sidecar_sha256 {
    SHA256_CTX ctx;
} sidecar_sha256_t;

void sidecar_sha256_init(sidecar_sha256_t *s);
void sidecar_sha256_update(sidecar_sha256_t *s, const void *data, size_t len);
void sidecar_sha256_final(sidecar_sha256_t *s, uint8_t out[SIDECAR_SHA256_LEN]);

void sidecar_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                         uint8_t out[SIDECAR_SHA256_LEN]);

/* 1 when a and b (len bytes) are equal; the time taken does not depend on where they differ. */
int sidecar_mem_equal(const void *a, const void *b, size_t len);

#endif
