/* tls_context.c — TLS contexts: OpenSSL's one-time set-up (on the first context only), an
 * SSL_CTX built from PEM files with TLS 1.3 as the only version, the reload that swaps in a
 * new SSL_CTX only once every file loaded, and error texts naming the file and OpenSSL's
 * reason. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "tls_int.h"

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void tls_error_format(char *buf, size_t len, const char *prefix, const char *fallback)
{
    unsigned long e = ERR_get_error(); /* the oldest: the cause, not its consequences */
    /* libcrypto's texts ("no start line", "key values mismatch") are loaded at the first
     * error that may need them: 48 KiB of heap that a member which never fails keeps. */
    if (e)
        (void)OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL);
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    char code[32];
    if (e && !reason) {
        snprintf(code, sizeof(code), "OpenSSL error %lx", e);
        reason = code;
    }
    snprintf(buf, len, "%s%s%s", prefix, *prefix ? ": " : "", reason ? reason : fallback);
    ERR_clear_error();
}

/* OpenSSL's set-up, once, on the first context: libssl with its error texts (SSL_CTX_new would
 * load them anyway; libcrypto's wait for the first error, tls_error_format()) and without
 * /etc/ssl/openssl.cnf, so that electd's TLS settings are the same on every host. */
static int tls_library_init(void)
{
    uint64_t opts = OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_LOAD_SSL_STRINGS;
    return OPENSSL_init_ssl(opts, NULL) == 1 ? 0 : TLS_ENOMEM;
}

/* An encrypted key would make OpenSSL prompt on the terminal: refuse it instead. */
static int no_passphrase_cb(char *buf, int size, int rwflag, void *data)
{
    (void)buf, (void)size, (void)rwflag, (void)data;
    return -1;
}

/* fopen() first, so that a missing or unreadable file is reported with errno's words. */
static int file_readable(const char *what, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        set_err(err, errlen, "%s %s: %s", what, path, strerror(errno));
        return TLS_EFILE;
    }
    fclose(f);
    return 0;
}

static int load_failed(const char *what, const char *path, char *err, size_t errlen)
{
    char prefix[TLS_ERROR_TEXT_MAX];
    snprintf(prefix, sizeof(prefix), "%s %s", what, path);
    if (err && errlen)
        tls_error_format(err, errlen, prefix, "cannot be loaded");
    ERR_clear_error();
    return TLS_EFILE;
}

static int load_identity(SSL_CTX *ssl, const struct tls_ctx *c, char *err, size_t errlen)
{
    int rc = file_readable("certificate file", c->cert_file, err, errlen);
    if (rc)
        return rc;
    if (SSL_CTX_use_certificate_chain_file(ssl, c->cert_file) != 1)
        return load_failed("certificate file", c->cert_file, err, errlen);
    if ((rc = file_readable("key file", c->key_file, err, errlen)))
        return rc;
    /* OpenSSL checks the pair as it loads the key ("key values mismatch"): say which. */
    bool loaded = SSL_CTX_use_PrivateKey_file(ssl, c->key_file, SSL_FILETYPE_PEM) == 1;
    if (!loaded && ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH)
        return load_failed("key file", c->key_file, err, errlen);
    if (!loaded || SSL_CTX_check_private_key(ssl) != 1) {
        ERR_clear_error();
        set_err(err, errlen, "key file %s: does not match certificate file %s", c->key_file,
                c->cert_file);
        return TLS_EFILE;
    }
    return 0;
}

static int load_trust(SSL_CTX *ssl, const struct tls_ctx *c, char *err, size_t errlen)
{
    if (c->role == TLS_ROLE_CLIENT && c->insecure_no_verify) {
        SSL_CTX_set_verify(ssl, SSL_VERIFY_NONE, NULL);
        return 0;
    }
    if (!c->ca_file) {
        if (c->role == TLS_ROLE_SERVER)
            return 0; /* no client certificates asked for */
        if (SSL_CTX_set_default_verify_paths(ssl) != 1)
            return load_failed("default CA store", "(system)", err, errlen);
        SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, NULL);
        return 0;
    }
    int rc = file_readable("CA file", c->ca_file, err, errlen);
    if (rc)
        return rc;
    if (SSL_CTX_load_verify_locations(ssl, c->ca_file, NULL) != 1)
        return load_failed("CA file", c->ca_file, err, errlen);
    if (c->role == TLS_ROLE_CLIENT) {
        SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, NULL);
        return 0;
    }
    /* Tell clients which CAs we accept, so that one holding several certificates picks. */
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(c->ca_file);
    if (!names)
        return load_failed("CA file", c->ca_file, err, errlen);
    SSL_CTX_set_client_CA_list(ssl, names);
    SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    return 0;
}

/* A new SSL_CTX from the files of `c`, or NULL with `err` set. */
static SSL_CTX *build(const struct tls_ctx *c, int *rc, char *err, size_t errlen)
{
    SSL_CTX *ssl =
        SSL_CTX_new(c->role == TLS_ROLE_SERVER ? TLS_server_method() : TLS_client_method());
    if (!ssl) {
        set_err(err, errlen, "cannot create a TLS context: out of memory");
        *rc = TLS_ENOMEM;
        return NULL;
    }
    SSL_CTX_set_default_passwd_cb(ssl, no_passphrase_cb);
    if (SSL_CTX_set_min_proto_version(ssl, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ssl, TLS1_3_VERSION) != 1) {
        set_err(err, errlen, "this OpenSSL cannot do TLS 1.3");
        *rc = TLS_EINVAL;
        goto fail;
    }
    /* No resumption: every connection proves its certificate again, and no ticket key or
     * session cache is kept. Idle connections hand their buffers back. */
    SSL_CTX_set_options(ssl, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ssl, 0);
    SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
    if (c->cert_file && (*rc = load_identity(ssl, c, err, errlen)))
        goto fail;
    if ((*rc = load_trust(ssl, c, err, errlen)))
        goto fail;
    return ssl;
fail:
    ERR_clear_error();
    SSL_CTX_free(ssl);
    return NULL;
}

static char *dup_or_null(const char *s, bool *oom)
{
    if (!s || !*s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

int tls_ctx_open(const tls_config_t *cfg, tls_ctx_t **out, char *err, size_t errlen)
{
    set_err(err, errlen, "%s", "");
    if (!cfg || !out || (cfg->role != TLS_ROLE_SERVER && cfg->role != TLS_ROLE_CLIENT))
        return TLS_EINVAL;
    bool has_cert = cfg->cert_file && *cfg->cert_file, has_key = cfg->key_file && *cfg->key_file;
    if (has_cert != has_key || (cfg->role == TLS_ROLE_SERVER && !has_cert)) {
        set_err(err, errlen, "%s",
                cfg->role == TLS_ROLE_SERVER
                    ? "a TLS server needs a certificate file and a key file"
                    : "a TLS client certificate needs its key file (and "
                      "the key its certificate)");
        return TLS_EINVAL;
    }
    if (tls_library_init() != 0) {
        set_err(err, errlen, "cannot initialise OpenSSL");
        return TLS_ENOMEM;
    }
    struct tls_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return TLS_ENOMEM;
    bool oom = false;
    c->role = cfg->role;
    c->insecure_no_verify = cfg->insecure_no_verify;
    c->cert_file = dup_or_null(cfg->cert_file, &oom);
    c->key_file = dup_or_null(cfg->key_file, &oom);
    c->ca_file = dup_or_null(cfg->ca_file, &oom);
    int rc = TLS_ENOMEM;
    if (oom || !(c->ssl = build(c, &rc, err, errlen))) {
        tls_ctx_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

int tls_ctx_reload(tls_ctx_t *ctx, char *err, size_t errlen)
{
    set_err(err, errlen, "%s", "");
    if (!ctx)
        return TLS_EINVAL;
    int rc = TLS_ENOMEM;
    SSL_CTX *fresh = build(ctx, &rc, err, errlen);
    if (!fresh)
        return rc;
    SSL_CTX_free(ctx->ssl); /* live sessions hold their own reference */
    ctx->ssl = fresh;
    return 0;
}

tls_role_t tls_ctx_role(const tls_ctx_t *ctx)
{
    return ctx->role;
}

bool tls_ctx_requires_peer_cert(const tls_ctx_t *ctx)
{
    return ctx->role == TLS_ROLE_SERVER && ctx->ca_file;
}

void tls_ctx_close(tls_ctx_t *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl);
    free(ctx->cert_file);
    free(ctx->key_file);
    free(ctx->ca_file);
    free(ctx);
}
