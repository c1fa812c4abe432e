/* secure.c — the API's transport security: HTTPS (the server's TLS context from
 * --http-cert-file/--http-key-file/--http-trusted-ca-file, and the client context --forward
 * uses to reach the leader), TLS failures logged at a bounded rate, the scheme of every
 * address handed to clients, and the --insecure-http warning repeated every minute. */
#include <stdio.h>
#include <string.h>

#include "api_int.h"

#define TLS_LOG_INTERVAL_MS       10000u /* at most one TLS failure line per interval */
#define INSECURE_WARN_INTERVAL_MS 60000u

static void tls_error_cb(const char *peer, const char *reason, void *data)
{
    struct api_secure *s = data;
    uint64_t now = uv_now(uv_handle_get_loop((uv_handle_t *)&s->warn_timer));
    if (s->tls_logged_ms != 0 && now - s->tls_logged_ms < TLS_LOG_INTERVAL_MS) {
        s->tls_suppressed++;
        return;
    }
    SIDECAR_LOG(SIDECAR_LOG_WARN, "HTTPS connection refused", SIDECAR_LOG_STR("remote", peer),
                SIDECAR_LOG_STR("reason", reason && *reason ? reason : "TLS error"),
                SIDECAR_LOG_UINT("suppressed_since_last", s->tls_suppressed));
    s->tls_logged_ms = now;
    s->tls_suppressed = 0;
}

static void warn_insecure(const sidecar_config_t *cfg)
{
    char addr[300];
    sidecar_config_addr_format(&cfg->listen_http, addr, sizeof(addr));
    SIDECAR_LOG(SIDECAR_LOG_WARN,
                "--insecure-http: the HTTP API can be reached from other hosts and anyone who "
                "reaches it can write the KV, transfer leadership and change the membership "
                "(set --http-token or --http-trusted-ca-file)",
                SIDECAR_LOG_STR("listen_http", addr));
}

static void warn_timer_cb(uv_timer_t *t)
{
    sidecar_api_t *api = t->data;
    warn_insecure(api->cfg);
}

/* A context from the given files; errbuf names the setting and OpenSSL's reason. */
static int ctx_open(const tls_config_t *tc, const char *what, tls_ctx_t **out, char *errbuf,
                    size_t errlen)
{
    char why[TLS_ERROR_TEXT_MAX] = "";
    int rv = tls_ctx_open(tc, out, why, sizeof(why));
    if (rv != 0)
        snprintf(errbuf, errlen, "%s: %s", what, why[0] ? why : tls_strerror(rv));
    return rv;
}

/* HTTPS: the server context on api->srv and, with --forward, the client context. */
static int https_open(sidecar_api_t *api, char *errbuf, size_t errlen)
{
    const sidecar_config_t *cfg = api->cfg;
    struct api_secure *s = &api->secure;
    tls_config_t server = {.role = TLS_ROLE_SERVER,
                           .cert_file = cfg->http_cert_file,
                           .key_file = cfg->http_key_file,
                           .ca_file = cfg->http_trusted_ca_file};
    int rv =
        ctx_open(&server, "HTTPS (--http-cert-file, --http-key-file)", &s->server, errbuf, errlen);
    if (rv != 0)
        return rv;
    if (cfg->forward) {
        /* The leader's certificate must chain to the trusted CA (the system's trust store
         * without one); with a CA the leader asks for a client certificate: ours. */
        bool mutual = cfg->http_trusted_ca_file != NULL;
        tls_config_t client = {.role = TLS_ROLE_CLIENT,
                               .cert_file = mutual ? cfg->http_cert_file : NULL,
                               .key_file = mutual ? cfg->http_key_file : NULL,
                               .ca_file = cfg->http_trusted_ca_file};
        rv = ctx_open(&client, "HTTPS client of --forward", &s->client, errbuf, errlen);
        if (rv != 0)
            return rv;
    }
    rv = http_server_tls(api->srv, s->server, tls_error_cb, s);
    if (rv != 0) {
        snprintf(errbuf, errlen, "cannot serve HTTPS: %s", http_strerror(rv));
        return rv;
    }
    /* SIGHUP re-reads the files: connections accepted after use the new ones. */
    if (sidecar_reload_register("http", s->server) != 0 ||
        (s->client != NULL && sidecar_reload_register("http", s->client) != 0)) {
        snprintf(errbuf, errlen, "cannot register the HTTPS certificate for reloads");
        return -1;
    }
    return 0;
}

/* --insecure-http with an API other hosts reach and nothing that authenticates its writes
 * (with the HTTP token `token`): warned now and every minute while it lasts. */
static void insecure_follow(sidecar_api_t *api, const char *token)
{
    const sidecar_config_t *cfg = api->cfg;
    struct api_secure *s = &api->secure;
    bool insecure = cfg->insecure_http && !sidecar_config_host_loopback(cfg->listen_http.host) &&
                    token == NULL && cfg->http_trusted_ca_file == NULL;
    if (insecure == s->insecure)
        return;
    s->insecure = insecure;
    if (!insecure) {
        uv_timer_stop(&s->warn_timer);
        return;
    }
    warn_insecure(cfg);
    uv_timer_start(&s->warn_timer, warn_timer_cb, INSECURE_WARN_INTERVAL_MS,
                   INSECURE_WARN_INTERVAL_MS);
}

int api_secure_open(sidecar_api_t *api, uv_loop_t *loop, char *errbuf, size_t errlen)
{
    const sidecar_config_t *cfg = api->cfg;
    struct api_secure *s = &api->secure;
    uv_timer_init(loop, &s->warn_timer);
    s->warn_timer.data = api;
    s->https = cfg->http_cert_file != NULL;
    insecure_follow(api, cfg->http_token);
    return s->https ? https_open(api, errbuf, errlen) : 0;
}

int sidecar_api_set_token(sidecar_api_t *api, const char *token)
{
    int rv = http_server_set_token(api->srv, token);
    if (rv == 0)
        insecure_follow(api, token);
    return rv;
}

void api_secure_free(sidecar_api_t *api)
{
    sidecar_reload_unregister(api->secure.server);
    sidecar_reload_unregister(api->secure.client);
    tls_ctx_close(api->secure.server);
    tls_ctx_close(api->secure.client);
    api->secure.server = api->secure.client = NULL;
}

const char *api_scheme(const sidecar_api_t *api)
{
    return api->secure.https ? "https" : "http";
}
