/* peers.c — --peers, the initial cluster: "name=host:port" entries from a comma-separated
 * string or a JSON array, each name and address checked with common's parsers, at most
 * SIDECAR_CONFIG_MAX_PEERS of them, with distinct names, addresses and ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

/* One "name=host:port" into peers[n]; why explains a failure. */
static int parse_peer(const char *item, size_t len, sidecar_peer_t *peer, char *why,
                      size_t why_size, int *oom)
{
    char buf[SIDECAR_NAME_MAX + SIDECAR_HOST_MAX + 16], shown[SHOW_MAX + 16];
    char host[SIDECAR_HOST_MAX + 1], addr_why[WHY_MAX];
    uint16_t port;
    if (len >= sizeof(buf)) {
        snprintf(why, why_size, "an entry is too long");
        return -1;
    }
    memcpy(buf, item, len);
    buf[len] = '\0';
    config_show_text(buf, shown, sizeof(shown));
    char *eq = strchr(buf, '=');
    if (len == 0) {
        snprintf(why, why_size, "empty entry: expected name=host:port,...");
        return -1;
    }
    if (eq == NULL) {
        snprintf(why, why_size, "entry %s is not name=host:port", shown);
        return -1;
    }
    *eq = '\0';
    if (!sidecar_parse_name_valid(buf)) {
        snprintf(why, why_size,
                 "entry %s: the name must be 1-%d letters, digits, '.', '_' "
                 "or '-', starting with a letter or digit",
                 shown, SIDECAR_NAME_MAX);
        return -1;
    }
    if (sidecar_parse_hostport(eq + 1, false, host, sizeof(host), &port, addr_why,
                               sizeof(addr_why)) != 0) {
        snprintf(why, why_size, "entry %s: %.100s", shown, addr_why);
        return -1;
    }
    /* the address travels in Raft membership entries, which bound it */
    if (strlen(host) + 2 + 1 + 5 + 1 > RAFT_ADDR_MAX) {
        snprintf(why, why_size, "entry %s: the address is longer than %d bytes", shown,
                 RAFT_ADDR_MAX - 1);
        return -1;
    }
    peer->name = strdup(buf);
    peer->host = strdup(host);
    peer->port = port;
    peer->id = sidecar_config_node_id(buf);
    if (peer->name == NULL || peer->host == NULL) {
        *oom = 1;
        return -1;
    }
    return 0;
}

bool config_same_host(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = (*a >= 'A' && *a <= 'Z') ? (char)(*a - 'A' + 'a') : *a;
        char y = (*b >= 'A' && *b <= 'Z') ? (char)(*b - 'A' + 'a') : *b;
        if (x != y) {
            return false;
        }
    }
    return *a == *b;
}

/* Appends one entry to cfg->peers (allocated for SIDECAR_CONFIG_MAX_PEERS). */
static int add_peer(parser_t *p, const setting_t *s, const value_t *v, const char *item, size_t len)
{
    sidecar_config_t *cfg = p->cfg;
    char why[WHY_MAX];
    int oom = 0;
    if (cfg->n_peers == SIDECAR_CONFIG_MAX_PEERS) {
        return config_invalid(p, s, v, "more than %d peers", SIDECAR_CONFIG_MAX_PEERS);
    }
    cfg->n_peers++; /* before parsing, so that free() sees a partial entry */
    if (parse_peer(item, len, &cfg->peers[cfg->n_peers - 1], why, sizeof(why), &oom) != 0) {
        return oom ? config_fail(p, SIDECAR_CONFIG_ENOMEM, "out of memory")
                   : config_invalid(p, s, v, "%s", why);
    }
    return 0;
}

/* Names, addresses and the ids hashed from the names must all differ. */
static int check_distinct(parser_t *p, const setting_t *s, const value_t *v)
{
    const sidecar_config_t *cfg = p->cfg;
    for (size_t a = 0; a < cfg->n_peers; a++) {
        for (size_t b = a + 1; b < cfg->n_peers; b++) {
            const sidecar_peer_t *x = &cfg->peers[a], *y = &cfg->peers[b];
            if (strcmp(x->name, y->name) == 0) {
                return config_invalid(p, s, v, "duplicate peer name \"%s\"", x->name);
            }
            if (x->port == y->port && config_same_host(x->host, y->host)) {
                return config_invalid(p, s, v, "peers \"%s\" and \"%s\" have the same address",
                                      x->name, y->name);
            }
            if (x->id == y->id) {
                return config_invalid(p, s, v, "peer names \"%s\" and \"%s\" hash to the same id",
                                      x->name, y->name);
            }
        }
    }
    return 0;
}

int config_set_peers(parser_t *p, const setting_t *s, const value_t *v, const char *text,
                     const cJSON *array)
{
    int rc = 0;
    p->cfg->peers = calloc(SIDECAR_CONFIG_MAX_PEERS, sizeof(*p->cfg->peers));
    if (p->cfg->peers == NULL) {
        return config_fail(p, SIDECAR_CONFIG_ENOMEM, "out of memory");
    }
    if (array) {
        for (const cJSON *j = array->child; j && rc == 0; j = j->next) {
            if (!cJSON_IsString(j)) {
                return config_invalid(p, s, v, "expected an array of \"name=host:port\" strings");
            }
            rc = add_peer(p, s, v, j->valuestring, strlen(j->valuestring));
        }
    } else {
        /* bounded: each round consumes an entry and its comma, or ends */
        for (const char *c = text;;) {
            size_t len = strcspn(c, ",");
            rc = add_peer(p, s, v, c, len);
            if (rc != 0 || c[len] == '\0') {
                break;
            }
            c += len + 1;
        }
    }
    if (rc != 0) {
        return rc;
    }
    if (p->cfg->n_peers == 0) {
        return config_invalid(p, s, v, "expected name=host:port,...");
    }
    return check_distinct(p, s, v);
}
