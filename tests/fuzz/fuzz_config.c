/* fuzz_config.c — fuzz target for electd's configuration parser (sidecar/config/): the
 * input bytes are the contents of the JSON config file. Properties checked on any input:
 *   - parsing never crashes, reads out of bounds or leaks (the sanitizers check that);
 *   - it either succeeds with a configuration that satisfies the documented invariants, or
 *     fails with a negative code and exactly one line starting with "electd: ";
 *   - a failed parse leaves the configuration zeroed;
 *   - named elections: bounded, sorted by distinct valid names other than "default", each in
 *     exactly one mode, prefer and avoid disjoint with ids of their names, and findable.
 * The filesystem is never touched (skip_fs): no directory is created from fuzzed paths. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_config: property broken: %s\n", what);
        abort();
    }
}

static void check_argv(const sidecar_argv_t *a)
{
    check(a->argc <= SIDECAR_CONFIG_ARGV_MAX, "argv bound");
    check(a->argc == 0 || (a->argv[a->argc] == NULL && a->argv[0][0] != '\0'),
          "argv terminated, program named");
}

static void check_refs(const sidecar_node_refs_t *r, const sidecar_node_refs_t *other)
{
    check(r->n <= SIDECAR_CONFIG_ELECTION_NODES_MAX, "prefer/avoid bound");
    for (size_t i = 0; i < r->n; i++) {
        check(sidecar_config_name_valid(r->refs[i].name), "member name valid");
        check(r->refs[i].id == sidecar_config_node_id(r->refs[i].name), "member id");
        for (size_t k = 0; k < other->n; k++) {
            check(strcmp(r->refs[i].name, other->refs[k].name) != 0, "prefer and avoid disjoint");
        }
    }
}

static void check_elections(const sidecar_config_t *cfg)
{
    const sidecar_election_list_t *l = &cfg->elections;
    check(l->n <= SIDECAR_CONFIG_ELECTIONS_MAX && (l->n == 0) == (l->items == NULL),
          "elections bound");
    for (size_t i = 0; i < l->n; i++) {
        const sidecar_election_config_t *e = &l->items[i];
        check(sidecar_config_name_valid(e->name) &&
                  strcmp(e->name, SIDECAR_CONFIG_DEFAULT_ELECTION) != 0,
              "election name");
        check(i == 0 || strcmp(l->items[i - 1].name, e->name) < 0, "sorted, distinct");
        check(sidecar_config_election_find(l, e->name) == e, "findable");
        bool hooks = e->on_start.argc || e->on_stop.argc;
        check(e->mode == SIDECAR_ELECTION_EXEC
                  ? e->exec.argc > 0 && !hooks && e->on_change.argc == 0
                  : e->mode == SIDECAR_ELECTION_HOOKS && e->exec.argc == 0 && hooks,
              "one mode");
        check_argv(&e->exec);
        check_argv(&e->on_start);
        check_argv(&e->on_stop);
        check_argv(&e->on_change);
        check_refs(&e->prefer, &e->avoid);
        check_refs(&e->avoid, &e->prefer);
        check(e->stop_timeout_ms > 0 && e->stop_timeout_ms < sidecar_config_lease_ms(cfg),
              "election stop within the lease");
        check(e->max_restarts <= 1000 && e->hook_timeout_ms > 0, "election ranges");
    }
}

static void check_result(const sidecar_config_t *cfg)
{
    check(cfg->action == SIDECAR_CONFIG_RUN, "runs");
    check(cfg->name != NULL && cfg->data_dir != NULL, "required settings present");
    check(cfg->heartbeat_interval_ms < cfg->election_timeout_ms, "heartbeat < election");
    check(cfg->tick_ms > 0 && cfg->election_timeout_ms % cfg->tick_ms == 0, "tick multiple");
    check(cfg->stop_timeout_ms < sidecar_config_lease_ms(cfg), "stop within the lease");
    check(cfg->max_drift >= 0 && cfg->max_drift < 0.5, "drift range");
    check(cfg->listen_peer.host != NULL && cfg->advertise_http.host != NULL, "addresses");
    check(cfg->n_peers <= SIDECAR_CONFIG_MAX_PEERS, "peer bound");
    if (cfg->n_peers > 0) {
        check(strcmp(cfg->peers[cfg->self_index].name, cfg->name) == 0, "self among peers");
        check(sidecar_config_cluster_id(cfg) != 0, "cluster id");
    }
    for (size_t i = 0; i < cfg->n_peers; i++) {
        check(cfg->peers[i].port != 0, "peer port");
        for (size_t j = i + 1; j < cfg->n_peers; j++) {
            check(strcmp(cfg->peers[i].name, cfg->peers[j].name) != 0, "distinct names");
        }
    }
    const sidecar_argv_t *cmds[] = {&cfg->exec, &cfg->on_start, &cfg->on_stop, &cfg->on_change};
    for (size_t k = 0; k < 4; k++) {
        check_argv(cmds[k]);
    }
    check(!(cfg->exec.argc && (cfg->on_start.argc || cfg->on_stop.argc)), "one mode");
    check_elections(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *argv[] = {"electd", NULL};
    sidecar_config_source_t src = {
        .argc = 1,
        .argv = argv,
        .file_text = (const char *)data,
        .file_len = size,
        .skip_fs = true,
    };
    sidecar_config_t cfg;
    char err[SIDECAR_CONFIG_ERR_MAX];
    int rc = sidecar_config_parse(&cfg, &src, err, sizeof(err));
    if (rc == 0) {
        check_result(&cfg);
    } else {
        check(rc < 0, "negative error code");
        check(strncmp(err, "electd: ", 8) == 0, "message prefix");
        check(strchr(err, '\n') == NULL, "one line");
        check(cfg.name == NULL && cfg.peers == NULL && cfg.elections.items == NULL,
              "zeroed after failure");
    }
    sidecar_config_free(&cfg);
    return 0;
}

static const char *const seeds[] = {
    "{\"name\": \"a\", \"peers\": \"a=127.0.0.1:7001,b=127.0.0.1:7002\", \"data-dir\": \"/d\"}",
    ("{\"name\": \"b\", \"peers\": [\"a=h:1\", \"b=[::1]:2\"], \"data-dir\": \"/d\",\n"
     " \"election-timeout\": 2000, \"heartbeat-interval\": \"200ms\", \"max-drift\": 0.1,\n"
     " \"witness\": false, \"forward\": 1, \"log-level\": \"debug\", \"log-format\": \"json\",\n"
     " \"http-max-body-bytes\": \"64KiB\", \"cluster-token\": \"tok\"}"),
    ("{\"name\": \"a\", \"listen-peer\": \"0.0.0.0:7001\", \"data-dir\": \"/d\",\n"
     " \"exec\": [\"/bin/w\", \"-v\"], \"on-change\": \"/bin/n x\", \"listen-http\": "
     "\"0.0.0.0:0\",\n \"advertise-http\": \"10.0.0.1:7480\", \"stop-timeout\": \"100ms\",\n "
     "\"insecure-http\": true, \"cluster-token\": \"tok\", \"peer-cert-check-name\": false}"),
    ("{\"name\": \"a\", \"peers\": \"a=h:1\", \"data-dir\": \"/d\", \"on-start\": \"/bin/h "
     "start\",\n \"on-stop\": [\"/bin/h\", \"stop\"], \"hook-timeout\": \"5s\", \"tick\": 5}"),
    ("{\"name\": \"a\", \"peers\": \"a=h:1,b=h:2,c=h:3\", \"data-dir\": \"/d\", \"no-primary\": "
     "true,\n \"rebalance\": false, \"elections\": {\n  \"orders\": {\"exec\": [\"/bin/w\", "
     "\"--db\", \"o\"], \"prefer\": [\"a\"],\n   \"avoid\": [\"c\", \"z\"], \"stop-timeout\": "
     "\"200ms\", \"hook-timeout\": 5000, \"max-restarts\": 2},\n  \"cron.t_1\": {\"on-start\": "
     "\"/bin/h start\", \"on-stop\": [\"/bin/h\", \"stop\"],\n   \"on-change\": \"/bin/n\"},\n  "
     "\"audit\": {\"on-stop\": \"h stop\"}, \"b\": {\"exec\": \"w\"}}}"),
    ("{\"name\": \"a\", \"listen-peer\": \"h:1\", \"data-dir\": \"/d\", \"exec\": \"/bin/w\",\n"
     " \"elections\": {\"e1\": {\"exec\": \"w\", \"prefer\": [\"a\", \"b\"]}, \"e2\": {\"exec\": "
     "\"w\"},\n \"e3\": {\"on-start\": \"h\", \"avoid\": [\"a\"]}}}"),
};

size_t fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    if (i >= sizeof(seeds) / sizeof(seeds[0])) {
        return 0;
    }
    size_t n = strlen(seeds[i]);
    if (n > cap) {
        n = cap;
    }
    memcpy(buf, seeds[i], n);
    return n;
}
