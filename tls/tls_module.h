/* tls_module.h — the table of functions through which the loader (tls_loader.c, linked into
 * electd) reaches the engine built as the module electd-tls.so (tls_module.c): one exported
 * symbol, checked for the same ABI and layout before anything is called. Private to tls/. */
#ifndef ELECTD_TLS_MODULE_H
#define ELECTD_TLS_MODULE_H

#include <stdint.h>

#include "tls.h"

#define TLS_MODULE_FILE   "electd-tls.so"
#define TLS_MODULE_SYMBOL "electd_tls_module"
#define TLS_MODULE_ENV    "ELECTD_TLS_MODULE"
#define TLS_MODULE_ABI    1 /* bump when a function below, or a type it takes, changes */

struct tls_module {
    uint32_t abi;
    uint32_t table_size;  /* sizeof(struct tls_module) */
    uint32_t config_size; /* sizeof(tls_config_t) */
    int (*ctx_open)(const tls_config_t *cfg, tls_ctx_t **out, char *err, size_t errlen);
    int (*ctx_reload)(tls_ctx_t *ctx, char *err, size_t errlen);
    tls_role_t (*ctx_role)(const tls_ctx_t *ctx);
    bool (*ctx_requires_peer_cert)(const tls_ctx_t *ctx);
    void (*ctx_close)(tls_ctx_t *ctx);
    int (*session_open)(tls_ctx_t *ctx, const char *server_name, tls_session_t **out);
    void (*session_close)(tls_session_t *s);
    int (*session_feed)(tls_session_t *s, const void *data, size_t len, size_t *used);
    int (*session_handshake)(tls_session_t *s);
    int (*session_read)(tls_session_t *s, void *buf, size_t cap, size_t *n);
    int (*session_write)(tls_session_t *s, const void *data, size_t len);
    void (*session_shutdown)(tls_session_t *s);
    size_t (*session_out_pending)(const tls_session_t *s);
    size_t (*session_out_read)(tls_session_t *s, void *buf, size_t cap);
    bool (*session_established)(const tls_session_t *s);
    const char *(*session_error)(const tls_session_t *s);
    const char *(*session_peer_cn)(const tls_session_t *s);
    size_t (*session_peer_name_count)(const tls_session_t *s);
    const char *(*session_peer_name)(const tls_session_t *s, size_t i);
    bool (*session_peer_matches)(const tls_session_t *s, const char *name);
};

#endif
