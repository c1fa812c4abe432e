/* tls_rss_probe.c — prints this process's resident memory (VmRSS and RssAnon, KiB) after
 * doing as much TLS as asked, to measure what the tls/ module costs an idle electd:
 *   tls_rss_probe none            link the module, use nothing
 *   tls_rss_probe ctx DIR         create a server context from DIR/member-b.{crt,key}, ca.crt
 *   tls_rss_probe handshake DIR   that, plus one mutual handshake in memory, sessions freed
 * Output: "VmRSS_KiB RssAnon_KiB". Not a pass/fail test; test_tls runs it for its bounds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"

static long status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static tls_ctx_t *make(const char *dir, tls_role_t role)
{
    char cert[512], key[512], ca[512], err[TLS_ERROR_TEXT_MAX];
    snprintf(cert, sizeof(cert), "%s/member-b.crt", dir);
    snprintf(key, sizeof(key), "%s/member-b.key", dir);
    snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
    tls_config_t cfg = {.role = role, .cert_file = cert, .key_file = key, .ca_file = ca};
    tls_ctx_t *ctx = NULL;
    if (tls_ctx_open(&cfg, &ctx, err, sizeof(err)) != 0) {
        fprintf(stderr, "tls_rss_probe: %s\n", err);
        exit(1);
    }
    return ctx;
}

/* Moves output of `from` into `to`; returns bytes moved. */
static size_t move(tls_session_t *from, tls_session_t *to)
{
    char buf[4096];
    size_t total = 0, n, used;
    while ((n = tls_session_out_read(from, buf, sizeof(buf))) > 0) {
        if (tls_session_feed(to, buf, n, &used) != 0 || used != n)
            exit(1);
        total += n;
    }
    return total;
}

static void handshake(tls_ctx_t *server, tls_ctx_t *client)
{
    tls_session_t *s = NULL, *c = NULL;
    if (tls_session_open(server, NULL, &s) || tls_session_open(client, NULL, &c))
        exit(1);
    for (int round = 0; round < 20; round++) {
        int hs = tls_session_handshake(s), hc = tls_session_handshake(c);
        if (hs < 0 || hc < 0)
            exit(1);
        if (move(c, s) + move(s, c) == 0 && hs == 1 && hc == 1)
            break;
    }
    tls_session_close(s);
    tls_session_close(c);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "none";
    tls_ctx_t *server = NULL, *client = NULL;
    if (strcmp(mode, "none") != 0) {
        if (argc < 3)
            return 2;
        server = make(argv[2], TLS_ROLE_SERVER);
        if (strcmp(mode, "handshake") == 0) {
            client = make(argv[2], TLS_ROLE_CLIENT);
            handshake(server, client);
        }
    } else {
        (void)tls_strerror(0); /* the module is linked in */
    }
    printf("%ld %ld\n", status_kib("VmRSS"), status_kib("RssAnon"));
    tls_ctx_close(server);
    tls_ctx_close(client);
    return 0;
}
