/* ids.c — identities derived from the configuration: a node's Raft id from its name, the
 * cluster id from the cluster name and the initial members (64-bit FNV-1a, never 0), and an
 * address written as host:port or [v6]:port. */
#include <stdio.h>
#include <string.h>

#include "config_int.h"

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME  0x100000001b3ull

static uint64_t fnv_add(uint64_t h, const char *s, bool lower)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (lower && c >= 'A' && c <= 'Z') {
            c = (unsigned char)(c - 'A' + 'a');
        }
        h ^= c;
        h *= FNV_PRIME;
    }
    return h;
}

uint64_t sidecar_config_node_id(const char *name)
{
    uint64_t h = fnv_add(FNV_OFFSET, name, false);
    return h ? h : 1;
}

uint64_t sidecar_config_cluster_id(const sidecar_config_t *cfg)
{
    const sidecar_peer_t *order[SIDECAR_CONFIG_MAX_PEERS];
    char port[8];
    size_t n = cfg->n_peers;
    if (n == 0 || n > SIDECAR_CONFIG_MAX_PEERS) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) { /* insertion sort by name: n <= 16 */
        const sidecar_peer_t *x = &cfg->peers[i];
        size_t j = i;
        for (; j > 0 && strcmp(order[j - 1]->name, x->name) > 0; j--) {
            order[j] = order[j - 1];
        }
        order[j] = x;
    }
    uint64_t h = fnv_add(FNV_OFFSET, "electd-cluster-v1\n", false);
    h = fnv_add(h, cfg->cluster_name ? cfg->cluster_name : "", false);
    h = fnv_add(h, "\n", false);
    for (size_t i = 0; i < n; i++) {
        snprintf(port, sizeof(port), "%u", order[i]->port);
        h = fnv_add(h, order[i]->name, false);
        h = fnv_add(h, "=", false);
        h = fnv_add(h, order[i]->host, true);
        h = fnv_add(h, ":", false);
        h = fnv_add(h, port, false);
        h = fnv_add(h, "\n", false);
    }
    return h ? h : 1;
}

int sidecar_config_addr_format(const sidecar_addr_t *addr, char *buf, size_t size)
{
    if (addr->host == NULL) {
        return SIDECAR_CONFIG_EINVAL;
    }
    bool v6 = strchr(addr->host, ':') != NULL;
    int n = snprintf(buf, size, v6 ? "[%s]:%u" : "%s:%u", addr->host, addr->port);
    if (n < 0 || (size_t)n >= size) {
        return SIDECAR_CONFIG_EINVAL;
    }
    return n;
}
