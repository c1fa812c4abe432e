/* fuzz_config.c — fuzz target for electd's configuration parser (sidecar/config/): the
 * input bytes are the contents of the JSON config file. Properties checked on any input:
 *   - parsing never crashes, reads out of bounds or leaks (the sanitizers check that);
 *   - it either succeeds with a configuration that satisfies the documented invariants, or
 *     fails with a negative code and exactly one line starting with "electd: ";
 *   - a failed parse leaves the configuration zeroed.
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
        check(cmds[k]->argc <= SIDECAR_CONFIG_ARGV_MAX, "argv bound");
        check(cmds[k]->argc == 0 ||
                  (cmds[k]->argv[cmds[k]->argc] == NULL && cmds[k]->argv[0][0] != '\0'),
              "argv terminated, program named");
    }
    check(!(cfg->exec.argc && (cfg->on_start.argc || cfg->on_stop.argc)), "one mode");
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
        check(cfg.name == NULL && cfg.peers == NULL, "zeroed after failure");
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
     "\"cluster-token\": \"tok\", \"peer-cert-check-name\": false}"),
    ("{\"name\": \"a\", \"peers\": \"a=h:1\", \"data-dir\": \"/d\", \"on-start\": \"/bin/h "
     "start\",\n \"on-stop\": [\"/bin/h\", \"stop\"], \"hook-timeout\": \"5s\", \"tick\": 5}"),
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
