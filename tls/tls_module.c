/* tls_module.c — the engine's one exported symbol in electd-tls.so: the table of its
 * functions that the loader (tls_loader.c) calls through. Everything else in the module,
 * libssl and libcrypto included, is hidden (tls/CMakeLists.txt). */
#include "tls_module.h"

__attribute__((visibility("default"))) const struct tls_module electd_tls_module = {
    .abi = TLS_MODULE_ABI,
    .table_size = sizeof(struct tls_module),
    .config_size = sizeof(tls_config_t),
    .ctx_open = tls_ctx_open,
    .ctx_reload = tls_ctx_reload,
    .ctx_role = tls_ctx_role,
    .ctx_requires_peer_cert = tls_ctx_requires_peer_cert,
    .ctx_close = tls_ctx_close,
    .session_open = tls_session_open,
    .session_close = tls_session_close,
    .session_feed = tls_session_feed,
    .session_handshake = tls_session_handshake,
    .session_read = tls_session_read,
    .session_write = tls_session_write,
    .session_shutdown = tls_session_shutdown,
    .session_out_pending = tls_session_out_pending,
    .session_out_read = tls_session_out_read,
    .session_established = tls_session_established,
    .session_error = tls_session_error,
    .session_peer_cn = tls_session_peer_cn,
    .session_peer_name_count = tls_session_peer_name_count,
    .session_peer_name = tls_session_peer_name,
    .session_peer_matches = tls_session_peer_matches,
};
