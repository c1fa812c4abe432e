/* node_identity.c — who this data directory is: a random 128-bit instance id drawn at the
 * first start and kept in the store, and the members' instance ids the transport pinned (so
 * that a restart keeps refusing a second process under a member's name; transport.h). */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "bytes.h"
#include "common.h"
#include "node_int.h"

#define INSTANCE_KEY     "instance_id"    /* this data directory's random id */
#define PINS_KEY         "peer_instances" /* members' pinned instance ids: (u64 id, u8[16])* */
#define PIN_RECORD_BYTES (8 + SIDECAR_TRANSPORT_INSTANCE_LEN)

void node_pins_save(sidecar_node_t *n)
{
    sidecar_transport_pin_t pins[RAFT_MAX_MEMBERS];
    size_t np = sidecar_transport_pins(n->transport, pins, RAFT_MAX_MEMBERS);
    uint8_t buf[RAFT_MAX_MEMBERS * PIN_RECORD_BYTES];
    for (size_t i = 0; i < np; i++) {
        base_le_store64(buf + i * PIN_RECORD_BYTES, pins[i].id);
        memcpy(buf + i * PIN_RECORD_BYTES + 8, pins[i].instance, SIDECAR_TRANSPORT_INSTANCE_LEN);
    }
    int rv = store_local_set(n->store, PINS_KEY, buf, np * PIN_RECORD_BYTES);
    if (rv != 0)
        SIDECAR_LOG(SIDECAR_LOG_ERROR, "cannot record the members' instance ids",
                    SIDECAR_LOG_STR("error", store_strerror(rv)));
}

void node_pinned_cb(void *ud)
{
    node_pins_save(ud);
}

/* This data directory's instance id, created and stored durably at the first start. */
static int instance_load(sidecar_node_t *n, char *errbuf, size_t errlen)
{
    size_t len = 0;
    int rv = store_local_get(n->store, INSTANCE_KEY, n->instance, sizeof(n->instance), &len);
    if (rv == STORE_ENOTFOUND) {
        if (getrandom(n->instance, sizeof(n->instance), 0) != (ssize_t)sizeof(n->instance)) {
            snprintf(errbuf, errlen, "cannot draw a random instance id for %s",
                     store_path(n->store));
            return SIDECAR_NODE_ESTORE;
        }
        rv = store_local_set(n->store, INSTANCE_KEY, n->instance, sizeof(n->instance));
        len = sizeof(n->instance);
    }
    if (rv != 0 || len != sizeof(n->instance)) {
        snprintf(errbuf, errlen, "cannot read or record the instance id in %s: %s",
                 store_path(n->store), rv ? store_errmsg(n->store) : "wrong length");
        return SIDECAR_NODE_ESTORE;
    }
    return 0;
}

/* The members' pinned instance ids, into n->pins until the transport takes them. */
static int pins_load(sidecar_node_t *n, char *errbuf, size_t errlen)
{
    uint8_t buf[RAFT_MAX_MEMBERS * PIN_RECORD_BYTES];
    size_t len = 0;
    int rv = store_local_get(n->store, PINS_KEY, buf, sizeof(buf), &len);
    if (rv == STORE_ENOTFOUND)
        return 0;
    if (rv != 0 || len % PIN_RECORD_BYTES != 0) {
        snprintf(errbuf, errlen, "cannot read the members' instance ids in %s",
                 store_path(n->store));
        return SIDECAR_NODE_ESTORE;
    }
    n->n_pins = len / PIN_RECORD_BYTES;
    for (size_t i = 0; i < n->n_pins; i++) {
        const uint8_t *r = buf + i * PIN_RECORD_BYTES;
        n->pins[i].id = base_le_load64(r);
        memcpy(n->pins[i].instance, r + 8, SIDECAR_TRANSPORT_INSTANCE_LEN);
    }
    return 0;
}

int node_identity_load(sidecar_node_t *n, char *errbuf, size_t errlen)
{
    int rv = instance_load(n, errbuf, errlen);
    return rv != 0 ? rv : pins_load(n, errbuf, errlen);
}
