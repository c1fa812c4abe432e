/* named.c — the runtime of named elections: PLACEHOLDER, replaced by the runtime. */
#include <stdlib.h>
#include <string.h>

#include "named.h"

struct sidecar_named {
    int unused;
};

const char *sidecar_named_strerror(int err)
{
    switch (err) {
#define SIDECAR_NAMED_ERR_CASE(name, code, text)                                                   \
    case code:                                                                                     \
        return text;
        SIDECAR_NAMED_ERRNO_MAP(SIDECAR_NAMED_ERR_CASE)
#undef SIDECAR_NAMED_ERR_CASE
    }
    return "unknown error";
}

int sidecar_named_open(sidecar_named_t **out, uv_loop_t *loop, const sidecar_config_t *cfg,
                       sidecar_node_t *node, char *errbuf, size_t errlen)
{
    (void)loop, (void)cfg, (void)node, (void)errbuf, (void)errlen;
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : -1;
}
size_t sidecar_named_list(sidecar_named_t *n, sidecar_named_status_t *out, size_t cap,
                          size_t *total)
{
    (void)n, (void)out, (void)cap;
    *total = 0;
    return 0;
}
int sidecar_named_get(sidecar_named_t *n, const char *name, sidecar_named_status_t *out)
{
    (void)n, (void)name, (void)out;
    return SIDECAR_NAMED_ENOTFOUND;
}
int sidecar_named_transfer(sidecar_named_t *n, const char *name, uint64_t to)
{
    (void)n, (void)name, (void)to;
    return SIDECAR_NAMED_ENOTFOUND;
}
bool sidecar_named_token_check(const sidecar_named_t *n, const char *token, size_t len,
                               const char **election)
{
    (void)n, (void)token, (void)len, (void)election;
    return false;
}
void sidecar_named_stop(sidecar_named_t *n, void (*cb)(void *ud), void *ud)
{
    (void)n;
    cb(ud);
}
void sidecar_named_close(sidecar_named_t *n, void (*cb)(void *ud), void *ud)
{
    free(n);
    cb(ud);
}
