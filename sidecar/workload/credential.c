/* credential.c — the workload's API credential: drawn at each start, checked by the API. */
#include "credential.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "common.h"

const char *workload_cred_rotate(workload_cred_t *c)
{
    uint8_t raw[SIDECAR_WORKLOAD_TOKEN_BYTES];
    char old[sizeof(c->hex)];
    memcpy(old, c->hex, sizeof(old));
    bool had = c->set;
    c->set = false;
    memset(c->hex, 0, sizeof(c->hex));
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        SIDECAR_LOG(SIDECAR_LOG_ERROR, "cannot draw a workload token: the workload's API calls "
                                       "that need one will be refused");
        return NULL;
    }
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(c->hex + 2 * i, 3, "%02x", raw[i]);
    memset(raw, 0, sizeof(raw));
    sidecar_log_replace_secret(had ? old : NULL, c->hex);
    memset(old, 0, sizeof(old));
    c->set = true;
    return c->hex;
}

const char *workload_cred_current(const workload_cred_t *c)
{
    return c->set ? c->hex : NULL;
}

bool workload_cred_check(const workload_cred_t *c, const char *token, size_t len)
{
    const size_t want = sizeof(c->hex) - 1;
    if (!c->set || token == NULL)
        return false;
    unsigned char diff = len != want;
    for (size_t i = 0; i < want; i++) /* constant time */
        diff |= (unsigned char)(c->hex[i] ^ (i < len ? token[i] : 0));
    return diff == 0;
}
