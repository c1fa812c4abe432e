/* tls.h — the whole interface of electd's TLS engine: TLS 1.3 (OpenSSL) over memory
 * buffers, with no socket and no event loop, so the same code serves the HTTP server (libuv,
 * server side), the peer transport (libuv, both sides, mutual) and the CLI (blocking sockets,
 * client side).
 *
 * A context (tls_ctx_t) is built from PEM files: a certificate chain, its key and optionally
 * a trusted CA bundle. With a CA the peer must present a certificate that chains to it
 * (mutual TLS on a server; server verification on a client). Only TLS 1.3 is offered or
 * accepted, with OpenSSL's TLS 1.3 cipher suites, no session tickets and no resumption.
 * tls_ctx_reload() re-reads the files into the same context object; a bad file leaves the
 * old settings in use. Live sessions keep the settings they were made with.
 *
 * A session (tls_session_t) is one connection. The caller moves bytes:
 *   - ciphertext from the network goes in with tls_session_feed();
 *   - plaintext comes out of tls_session_read() (which also drives the handshake);
 *   - plaintext to send goes in with tls_session_write();
 *   - after every one of those calls, ciphertext may be waiting to be sent:
 *     tls_session_out_pending() says how much, tls_session_out_read() takes it.
 * Every buffer is bounded (TLS_SESSION_IN_MAX, TLS_SESSION_OUT_MAX); bytes that are not TLS
 * give an error, never a crash. When a call fails, tls_session_error() says why in OpenSSL's
 * words ("certificate verify failed: unable to get local issuer certificate"); any alert
 * OpenSSL produced for the peer is then in the output, worth sending before closing.
 *
 * Memory: OpenSSL's TLS machinery (and its error strings) are initialised by the first
 * tls_ctx_open(), never before; a process that creates no context pays nothing for them.
 * electd goes further: it links the loader (library `tls`), which implements these functions
 * by forwarding to the engine built as a private module, electd-tls.so (libssl and libcrypto
 * inside), dlopen()ed by the first tls_ctx_open(). The module is looked for at
 * $ELECTD_TLS_MODULE when set, else next to the executable, else in the install directory
 * (<libdir>/electd); when none loads, tls_ctx_open() fails with TLS_EMODULE and says which
 * path and why. The tests of the engine link it directly (library `tls_engine`).
 *
 * Threading: a context or session is used by one thread at a time.
 * Errors: functions return 0 (or a count) or a negative TLS_E* code (tls_strerror()). */
#ifndef ELECTD_TLS_H
#define ELECTD_TLS_H

#include <stdbool.h>
#include <stddef.h>

/* Error codes: X(name, value, text). */
#define TLS_ERROR_TABLE(X)                                                                         \
    X(TLS_EINVAL, -1, "invalid argument")                                                          \
    X(TLS_ENOMEM, -2, "out of memory")                                                             \
    X(TLS_EFILE, -3, "cannot load a certificate, key or CA file")                                  \
    X(TLS_EHANDSHAKE, -4, "TLS handshake failed")                                                  \
    X(TLS_EPROTO, -5, "TLS protocol error")                                                        \
    X(TLS_EPLAINTEXT, -6, "plaintext received where TLS was expected")                             \
    X(TLS_ECLOSED, -7, "the peer closed the TLS session")                                          \
    X(TLS_EFULL, -8, "TLS buffer limit reached: drain the session first")                          \
    X(TLS_ESTATE, -9, "TLS session is not in a state that allows this call")                       \
    X(TLS_EMODULE, -10, "the TLS module (electd-tls.so) cannot be loaded")

enum {
#define TLS_ERRNO_ENUM(name, value, text) name = value,
    TLS_ERROR_TABLE(TLS_ERRNO_ENUM)
#undef TLS_ERRNO_ENUM
};

/* Text for a TLS_E* code (or "unknown error"); never NULL, static storage. */
const char *tls_strerror(int err);

/* Limits. */
#define TLS_SESSION_IN_MAX (80u << 10) /* ciphertext fed and not yet decrypted */
#define TLS_SESSION_OUT_MAX                                                                        \
    (256u << 10)                         /* ciphertext produced and not yet taken, beyond which    \
                                            tls_session_write() refuses more */
#define TLS_ERROR_TEXT_MAX 320           /* error texts, NUL included */
#define TLS_PEER_NAMES_MAX 32            /* subject alternative names kept per peer */
#define TLS_RECORD_MAX     (16384 + 256) /* plaintext one record may carry, with slack */

/* ---- Context --------------------------------------------------------------------------- */

typedef enum tls_role {
    TLS_ROLE_SERVER,
    TLS_ROLE_CLIENT,
} tls_role_t;

typedef struct tls_config {
    tls_role_t role;
    /* PEM certificate chain (leaf first) and its private key. Required for a server; for a
     * client both or neither (a client certificate, needed when the server wants one). */
    const char *cert_file;
    const char *key_file;
    /* PEM bundle of trusted CA certificates, or NULL.
     * Server: set means every client must present a certificate that chains to it, valid for
     * client authentication (extendedKeyUsage clientAuth, when the certificate has the
     * extension); NULL means no client certificate is asked for.
     * Client: the server's certificate must chain to it (serverAuth); NULL means the
     * system's default trust store (/etc/ssl/certs), unless insecure_no_verify is set. */
    const char *ca_file;
    /* Client only, for tests and `curl -k`-like use: do not verify the server at all. */
    bool insecure_no_verify;
} tls_config_t;

typedef struct tls_ctx tls_ctx_t;

/* Loads the files of `cfg` (the strings are copied) into a new context, allocated here and
 * freed by tls_ctx_close(). On failure nothing is allocated and `err` (may be NULL, `errlen`
 * bytes, always NUL-terminated) says which file and why, e.g.
 * "key file /etc/electd/b.key: does not match certificate file /etc/electd/b.crt".
 * Errors: TLS_EINVAL (missing file for the role), TLS_EFILE, TLS_ENOMEM. */
int tls_ctx_open(const tls_config_t *cfg, tls_ctx_t **out, char *err, size_t errlen);

/* Re-reads the context's files (certificates rotate in place). Success: sessions created
 * from now on use the new files; live sessions keep the old ones until they end. Failure:
 * the context is unchanged (the old files stay in use) and `err` says which file and why.
 * Same errors as tls_ctx_open(). */
int tls_ctx_reload(tls_ctx_t *ctx, char *err, size_t errlen);

/* The role and whether peers must present a certificate (server with a CA). */
tls_role_t tls_ctx_role(const tls_ctx_t *ctx);
bool tls_ctx_requires_peer_cert(const tls_ctx_t *ctx);

/* Frees the context. Sessions created from it may outlive it. NULL is a no-op. */
void tls_ctx_close(tls_ctx_t *ctx);

/* ---- Session --------------------------------------------------------------------------- */

typedef struct tls_session tls_session_t;

/* A session from `ctx`'s current settings, allocated here, freed by tls_session_close().
 * Client: `server_name` (may be NULL) is sent as SNI when it is a host name, and the server's
 * certificate must match it (DNS name, or IP address for an IP literal) unless the context
 * skips verification; NULL checks no name (the caller may check tls_session_peer_matches()
 * after the handshake). Server: `server_name` must be NULL. A client starts its handshake at
 * once: its first flight is in the output after this call. Errors: TLS_EINVAL, TLS_ENOMEM. */
int tls_session_open(tls_ctx_t *ctx, const char *server_name, tls_session_t **out);
void tls_session_close(tls_session_t *s); /* NULL is a no-op */

/* Ciphertext received from the peer. Takes as much as fits under TLS_SESSION_IN_MAX and sets
 * *used (possibly less than len: call tls_session_read() and feed the rest). Returns 0, or
 * TLS_EFULL when nothing fit, or the session's sticky error. */
int tls_session_feed(tls_session_t *s, const void *data, size_t len, size_t *used);

/* Advances the handshake with what was fed. 1: established; 0: more input needed (send the
 * output first); negative: failed (TLS_EHANDSHAKE, TLS_EPLAINTEXT, TLS_EPROTO; see
 * tls_session_error()). Errors stick: later calls return the same code. */
int tls_session_handshake(tls_session_t *s);

/* Plaintext received: up to `cap` bytes into `buf`, count in *n (0: nothing decrypted yet,
 * more input needed). Drives the handshake first if needed. Returns 0, TLS_ECLOSED once the
 * peer has closed the session cleanly (close_notify), or an error as for handshake (in TLS
 * 1.3 a server's refusal of a client's certificate reaches the client here, after its own
 * handshake completed). */
int tls_session_read(tls_session_t *s, void *buf, size_t cap, size_t *n);

/* Encrypts all `len` bytes into the output. Only once established (TLS_ESTATE before);
 * TLS_EFULL when more than TLS_SESSION_OUT_MAX bytes of output are waiting already (nothing
 * is written then); the sticky error if the session failed. */
int tls_session_write(tls_session_t *s, const void *data, size_t len);

/* Queues a close_notify alert in the output (a clean end of the stream). Idempotent. */
void tls_session_shutdown(tls_session_t *s);

/* Ciphertext waiting to be sent, in bytes. */
size_t tls_session_out_pending(const tls_session_t *s);
/* Moves up to `cap` bytes of waiting ciphertext into `buf`; returns the count. */
size_t tls_session_out_read(tls_session_t *s, void *buf, size_t cap);

/* true once the handshake has completed (and no error since). */
bool tls_session_established(const tls_session_t *s);

/* Why the session failed: OpenSSL's reason (and the certificate check's, for a verification
 * failure), e.g. "certificate verify failed: unable to get local issuer certificate",
 * "tlsv1 alert unknown ca" (the peer refused our certificate), "unsupported protocol".
 * "" while nothing failed. Owned by the session. */
const char *tls_session_error(const tls_session_t *s);

/* ---- The peer's certificate (after the handshake) ---------------------------------------
 * Only a certificate that was verified (chained to the trusted CA) is reported; without one
 * (no CA configured, or not established yet) the functions below say there is none.
 * Strings are owned by the session. */

/* The subject's common name, or NULL. */
const char *tls_session_peer_cn(const tls_session_t *s);

/* Subject alternative names of DNS and IP type, as "DNS:b.example" or "IP:10.0.0.2"
 * ("IP:::1" for IPv6), in certificate order, at most TLS_PEER_NAMES_MAX. `i` past the end
 * gives NULL. */
size_t tls_session_peer_name_count(const tls_session_t *s);
const char *tls_session_peer_name(const tls_session_t *s, size_t i);

/* true when the verified peer certificate is for `name`: an IP literal ("10.0.0.2", "::1")
 * must equal an IP SAN; any other name must equal (ASCII case-insensitive) the subject CN or
 * a DNS SAN, a SAN's leading "*." matching exactly one label. false without a verified
 * certificate. This is how a member proves which member it is ("b" cannot claim to be "c"). */
bool tls_session_peer_matches(const tls_session_t *s, const char *name);

#endif
