/* credential.h — private to workload/: the workload's API credential (ELECTD_WORKLOAD_TOKEN),
 * see workload.h for what it may do. */
#ifndef ELECTD_SIDECAR_WORKLOAD_CREDENTIAL_H
#define ELECTD_SIDECAR_WORKLOAD_CREDENTIAL_H

#include <stdbool.h>
#include <stddef.h>

#include "workload.h"

typedef struct workload_cred {
    char hex[2 * SIDECAR_WORKLOAD_TOKEN_BYTES + 1];
    bool set;
} workload_cred_t;

/* Draws a fresh token, which replaces (and so revokes) the previous one, registers it with
 * the log as a secret in place of the previous one, and returns it in hex (valid until the
 * next rotation). NULL when no randomness could be drawn: then no token is valid until a
 * later rotation succeeds. */
const char *workload_cred_rotate(workload_cred_t *c);

/* The current token in hex, or NULL (none drawn yet, or the last draw failed). */
const char *workload_cred_current(const workload_cred_t *c);

/* True when token (len bytes) is the current token; constant time in its bytes. */
bool workload_cred_check(const workload_cred_t *c, const char *token, size_t len);

#endif
