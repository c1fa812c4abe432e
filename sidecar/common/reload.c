/* reload.c — the TLS contexts that SIGHUP re-reads: every part that opens a context (the peer
 * transport, the HTTP API, the --forward client) registers it here under a label, and
 * electd's SIGHUP handler (main.c) re-reads them all with sidecar_reload_run(). */
#include "common.h"

#include <stdio.h>
#include <string.h>

#include "tls.h"

static struct reload_entry {
    char what[SIDECAR_RELOAD_LABEL_MAX];
    struct tls_ctx *ctx;
} entries[SIDECAR_RELOAD_MAX];

int sidecar_reload_register(const char *what, struct tls_ctx *ctx)
{
    if (what == NULL || ctx == NULL || strlen(what) >= SIDECAR_RELOAD_LABEL_MAX)
        return -1;
    for (size_t i = 0; i < SIDECAR_RELOAD_MAX; i++) {
        if (entries[i].ctx == NULL) {
            snprintf(entries[i].what, sizeof(entries[i].what), "%s", what);
            entries[i].ctx = ctx;
            return 0;
        }
    }
    return -1;
}

void sidecar_reload_unregister(struct tls_ctx *ctx)
{
    for (size_t i = 0; i < SIDECAR_RELOAD_MAX; i++)
        if (ctx != NULL && entries[i].ctx == ctx)
            memset(&entries[i], 0, sizeof(entries[i]));
}

/* Re-reads the contexts labelled entries[first].what; marks them done in `done`. Returns the
 * number refused (each logged). */
static int reload_label(size_t first, bool done[SIDECAR_RELOAD_MAX])
{
    int failed = 0;
    for (size_t i = first; i < SIDECAR_RELOAD_MAX; i++) {
        if (entries[i].ctx == NULL || strcmp(entries[i].what, entries[first].what) != 0)
            continue;
        done[i] = true;
        char err[TLS_ERROR_TEXT_MAX] = "";
        if (tls_ctx_reload(entries[i].ctx, err, sizeof(err)) != 0) {
            failed++;
            SIDECAR_LOG(SIDECAR_LOG_ERROR,
                        "reload: certificate refused; the previous one stays in use",
                        SIDECAR_LOG_STR("tls", entries[i].what), SIDECAR_LOG_STR("error", err));
        }
    }
    return failed;
}

int sidecar_reload_run(char *summary, size_t len)
{
    bool done[SIDECAR_RELOAD_MAX] = {false};
    int failed = 0;
    size_t off = 0;
    if (len > 0)
        summary[0] = '\0';
    for (size_t i = 0; i < SIDECAR_RELOAD_MAX; i++) {
        if (entries[i].ctx == NULL || done[i])
            continue;
        int n = reload_label(i, done);
        failed += n;
        int w = snprintf(summary + off, len > off ? len - off : 0, "%s%s: %s", off ? ", " : "",
                         entries[i].what, n ? "refused" : "ok");
        if (w > 0 && off + (size_t)w < len)
            off += (size_t)w;
    }
    if (off == 0 && len > 0)
        snprintf(summary, len, "no TLS configured");
    return failed;
}
