/* test_config.c — electd's settings: defaults, precedence flag > env > file > default, value
 * syntax, cross-checks, the one-line refusals users see, --help and its documentation. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "private_hosts.h"

#define PEERS3 "a=127.0.0.1:7001,b=127.0.0.1:7002,c=127.0.0.1:7003"
/* A valid minimal command line; data-dir is not touched unless a test asks (skip_fs). */
#define BASE      "--name", "a", "--peers", PEERS3, "--data-dir", "/nonexistent/electd-test"
#define ARGV(...) ((const char *[]){"electd", __VA_ARGS__, NULL})
/* Members authenticated: what a peer listener reachable from other hosts needs. */
#define TOKEN    "--cluster-token", "test-token"
#define ENV(...) ((const char *[]){__VA_ARGS__, NULL})

typedef struct run {
    const char **argv;
    const char **env;
    const char *file;
    bool fs; /* check/create the data dir and programs */
} run_t;

static sidecar_config_t cfg;
static char err[SIDECAR_CONFIG_ERR_MAX];

static void teardown(void)
{
    sidecar_config_free(&cfg);
}

TestSuite(config, .fini = teardown);

static sidecar_config_source_t source_of(run_t r)
{
    int argc = 0;
    while (r.argv[argc]) {
        argc++;
    }
    return (sidecar_config_source_t){
        .argc = argc,
        .argv = (char *const *)r.argv,
        .getenv_cb = r.env ? sidecar_config_getenv_array : NULL,
        .getenv_ud = (void *)r.env,
        .file_text = r.file,
        .file_len = r.file ? strlen(r.file) : 0,
        .skip_fs = !r.fs,
    };
}

static int parse(run_t r)
{
    sidecar_config_source_t src = source_of(r);
    sidecar_config_free(&cfg);
    return sidecar_config_parse(&cfg, &src, err, sizeof(err));
}

static void ok(run_t r)
{
    int rc = parse(r);
    cr_assert_eq(rc, 0, "parse failed (%d): %s", rc, err);
    cr_assert_eq(cfg.action, SIDECAR_CONFIG_RUN);
}

/* The parse fails with one line that starts with "electd: " and contains needle. */
static void refused(run_t r, const char *needle)
{
    int rc = parse(r);
    cr_assert_lt(rc, 0, "expected a refusal containing [%s]", needle);
    cr_assert(strstr(err, needle) != NULL, "error [%s] lacks [%s]", err, needle);
    cr_assert(strncmp(err, "electd: ", 8) == 0, "error [%s] lacks the prefix", err);
    cr_assert(strchr(err, '\n') == NULL, "error [%s] is not one line", err);
    cr_assert_null(cfg.name, "a refused config is freed");
}

/* ---- defaults and derived values ---------------------------------------------------- */

Test(config, defaults_match_the_documented_values)
{
    ok((run_t){.argv = ARGV(BASE)});
    cr_assert_str_eq(cfg.name, "a");
    cr_assert_eq(cfg.n_peers, 3);
    cr_assert_eq(cfg.self_index, 0);
    cr_assert_eq(cfg.heartbeat_interval_ms, 150);
    cr_assert_eq(cfg.election_timeout_ms, 1000);
    cr_assert_eq(cfg.tick_ms, 10);
    cr_assert_float_eq(cfg.max_drift, 0.05, 1e-12);
    cr_assert_eq(cfg.max_drift_ppm, 50000);
    cr_assert_eq(cfg.stop_timeout_ms, 500);
    cr_assert_eq(cfg.hook_timeout_ms, 30000);
    cr_assert_eq(cfg.max_restarts, 5);
    cr_assert_eq(cfg.restart_window_ms, 60000);
    cr_assert_str_eq(cfg.listen_http.host, "127.0.0.1");
    cr_assert_eq(cfg.listen_http.port, 7480);
    cr_assert_str_eq(cfg.advertise_http.host, "127.0.0.1");
    cr_assert_eq(cfg.advertise_http.port, 7480);
    cr_assert_str_eq(cfg.listen_peer.host, "127.0.0.1");
    cr_assert_eq(cfg.listen_peer.port, 7001);
    cr_assert_str_eq(cfg.cluster_name, "electd");
    cr_assert_null(cfg.cluster_token);
    cr_assert_null(cfg.http_token);
    cr_assert_eq(cfg.log_level, SIDECAR_LOG_INFO);
    cr_assert_eq(cfg.log_format, SIDECAR_LOG_TEXT);
    cr_assert_eq(cfg.http_max_connections, 1024);
    cr_assert_eq(cfg.http_max_header_bytes, 8192);
    cr_assert_eq(cfg.http_max_body_bytes, 1048576);
    cr_assert_eq(cfg.http_idle_timeout_ms, 60000);
    cr_assert_eq(cfg.snapshot_entries, 4096);
    cr_assert_eq(cfg.watch_history, 10000);
    cr_assert_eq(cfg.max_watchers, 1024);
    cr_assert_not(cfg.witness);
    cr_assert_not(cfg.forward);
    cr_assert_eq(cfg.exec.argc, 0);
    cr_assert_null(cfg.exec.argv);
    cr_assert_null(cfg.config_path);
}

Test(config, lease_follows_the_raft_rule)
{
    ok((run_t){.argv = ARGV(BASE)});
    /* floor(100 * 0.95 / 1.05) - 2 = 88 ticks of 10 ms */
    cr_assert_eq(sidecar_config_lease_ms(&cfg), 880);
    ok((run_t){.argv = ARGV(BASE, "--max-drift", "0")});
    cr_assert_eq(sidecar_config_lease_ms(&cfg), 980);
}

Test(config, peers_are_parsed_into_name_host_port)
{
    ok((run_t){.argv = ARGV("--name", "db-2", "--peers",
                            "db-1=10.0.0.1:7001,db-2=[::1]:7002,db-3=node3.example:7003",
                            "--data-dir", "/x")});
    cr_assert_eq(cfg.n_peers, 3);
    cr_assert_str_eq(cfg.peers[0].name, "db-1");
    cr_assert_str_eq(cfg.peers[0].host, "10.0.0.1");
    cr_assert_eq(cfg.peers[0].port, 7001);
    cr_assert_str_eq(cfg.peers[1].host, "::1");
    cr_assert_eq(cfg.peers[1].port, 7002);
    cr_assert_str_eq(cfg.peers[2].host, "node3.example");
    cr_assert_eq(cfg.self_index, 1);
    cr_assert_eq(cfg.peers[1].id, sidecar_config_node_id("db-2"));
    cr_assert_neq(cfg.peers[0].id, cfg.peers[1].id);
    cr_assert_str_eq(cfg.listen_peer.host, "::1", "listen-peer defaults to our own entry");
    cr_assert_eq(cfg.listen_peer.port, 7002);
    char buf[64];
    cr_assert_eq(sidecar_config_addr_format(&cfg.listen_peer, buf, sizeof(buf)), 10);
    cr_assert_str_eq(buf, "[::1]:7002");
}

Test(config, malformed_peers_are_refused)
{
    refused((run_t){.argv = ARGV("--name", "a", "--peers", "a=127.0.0.1:1,a=127.0.0.1:2",
                                 "--data-dir", "/x")},
            "invalid --peers \"a=127.0.0.1:1,a=127.0.0.1:2\": duplicate peer name \"a\"");
    refused((run_t){.argv = ARGV("--name", "a", "--peers", "a=127.0.0.1", "--data-dir", "/x")},
            "expected host:port");
    refused((run_t){.argv = ARGV("--name", "a", "--peers", "a", "--data-dir", "/x")},
            "entry \"a\" is not name=host:port");
    refused((run_t){.argv = ARGV("--name", "a", "--peers", "a=h:1,,b=h:2", "--data-dir", "/x")},
            "empty entry");
    refused((run_t){.argv = ARGV("--name", "a", "--peers", "a=h:70000", "--data-dir", "/x")},
            "port must be a number from 1 to 65535");
    refused((run_t){.argv = ARGV("--name", "a", "--peers", "a=h:0", "--data-dir", "/x")},
            "port must be a number from 1 to 65535");
    refused((run_t){.argv = ARGV("--name", "a", "--peers", "a=h:1,b=H:1", "--data-dir", "/x")},
            "peers \"a\" and \"b\" have the same address");
    refused((run_t){.argv = ARGV("--name", "a", "--peers", "a=h_x:1", "--data-dir", "/x")},
            "invalid host name");
    refused((run_t){.argv = ARGV("--name", "a", "--peers", "a=[zz]:1", "--data-dir", "/x")},
            "invalid IPv6 address");
    refused((run_t){.argv = ARGV("--name", "a", "--peers", "-a=h:1", "--data-dir", "/x")},
            "the name must be");
    refused((run_t){.argv = ARGV("--name", "z", "--peers", PEERS3, "--data-dir", "/x")},
            "--name \"z\" is not among --peers (a, b, c)");
}

Test(config, too_many_peers_are_refused)
{
    char peers[2048] = "";
    for (int i = 0; i <= SIDECAR_CONFIG_MAX_PEERS; i++) {
        size_t n = strlen(peers);
        snprintf(peers + n, sizeof(peers) - n, "%sn%d=127.0.0.1:%d", i ? "," : "", i, 7000 + i);
    }
    refused((run_t){.argv = ARGV("--name", "n0", "--peers", peers, "--data-dir", "/x")},
            "more than 16 peers");
}

Test(config, cluster_id_is_canonical)
{
    ok((run_t){.argv = ARGV("--name", "a", "--peers", "a=h1:1,b=h2:2", "--data-dir", "/x", TOKEN)});
    uint64_t id = sidecar_config_cluster_id(&cfg);
    cr_assert_neq(id, 0);
    ok((run_t){.argv = ARGV("--name", "a", "--peers", "b=H2:2,a=h1:1", "--data-dir", "/x", TOKEN)});
    cr_assert_eq(sidecar_config_cluster_id(&cfg), id, "order and host case do not matter");
    ok((run_t){.argv = ARGV("--name", "a", "--peers", "a=h1:1,b=h2:2", "--data-dir", "/x", TOKEN,
                            "--cluster-name", "other")});
    cr_assert_neq(sidecar_config_cluster_id(&cfg), id, "the cluster name does");
    ok((run_t){.argv = ARGV("--name", "a", "--peers", "a=h1:1,b=h2:3", "--data-dir", "/x", TOKEN)});
    cr_assert_neq(sidecar_config_cluster_id(&cfg), id, "the members' addresses do");
    ok((run_t){.argv = ARGV("--name", "a", "--listen-peer", "h1:1", "--data-dir", "/x", TOKEN)});
    cr_assert_eq(sidecar_config_cluster_id(&cfg), 0, "unknown without --peers");
}

Test(config, listen_peer_is_required_without_peers)
{
    refused((run_t){.argv = ARGV("--name", "a", "--data-dir", "/x")},
            "--listen-peer is required when --peers is not given");
}

Test(config, wildcard_listen_http_needs_advertise_http)
{
    refused((run_t){.argv = ARGV(BASE, "--listen-http", "0.0.0.0:7480")},
            "--listen-http 0.0.0.0 is a wildcard address: set --advertise-http");
    ok((run_t){.argv = ARGV(BASE, "--listen-http", "0.0.0.0:7480", "--advertise-http",
                            "10.1.2.3:7480", "--http-token", "t0ken")});
    cr_assert_str_eq(cfg.advertise_http.host, "10.1.2.3");
    ok((run_t){.argv = ARGV(BASE, "--listen-http", "127.0.0.1:0")});
    cr_assert_eq(cfg.listen_http.port, 0, "port 0 lets the OS pick");
}

Test(config, https_files_go_together)
{
    ok((run_t){.argv = ARGV(BASE, "--http-cert-file", "/c.crt", "--http-key-file", "/c.key")});
    cr_assert_str_eq(cfg.http_cert_file, "/c.crt");
    cr_assert_str_eq(cfg.http_key_file, "/c.key");
    cr_assert_null(cfg.http_trusted_ca_file);
    refused((run_t){.argv = ARGV(BASE, "--http-cert-file", "/c.crt")},
            "--http-cert-file and --http-key-file go together");
    refused((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_HTTP_KEY_FILE=/c.key")},
            "--http-cert-file and --http-key-file go together");
    refused((run_t){.argv = ARGV(BASE, "--http-trusted-ca-file", "/ca.crt")},
            "--http-trusted-ca-file needs --http-cert-file and --http-key-file");
    ok((run_t){.argv = ARGV(BASE),
               .file = "{\"http-cert-file\": \"/c.crt\", \"http-key-file\": \"/c.key\", "
                       "\"http-trusted-ca-file\": \"/ca.crt\"}"});
    cr_assert_str_eq(cfg.http_trusted_ca_file, "/ca.crt");
    refused((run_t){.argv = ARGV(BASE, "--http-cert-file", "")}, "--http-cert-file");
}

/* Secure by default: an API other hosts can reach needs a token or client certificates. */
Test(config, non_loopback_http_needs_a_token_or_client_certificates)
{
    const char *open_msg = "can be reached from other hosts and nothing would authenticate";
    refused((run_t){.argv = ARGV(BASE, "--listen-http", "0.0.0.0:7480", "--advertise-http",
                                 "10.1.2.3:7480")},
            open_msg);
    refused((run_t){.argv = ARGV(BASE, "--listen-http", "[::]:7480", "--advertise-http",
                                 "10.1.2.3:7480")},
            open_msg);
    refused((run_t){.argv = ARGV(BASE, "--listen-http", "10.1.2.3:7480")}, "--insecure-http");
    ok((run_t){.argv = ARGV(BASE, "--listen-http", "localhost:7480")}); /* loopback only */
    /* HTTPS alone authenticates no client */
    refused((run_t){.argv = ARGV(BASE, "--listen-http", "10.1.2.3:7480", "--http-cert-file",
                                 "/c.crt", "--http-key-file", "/c.key")},
            open_msg);
    ok((run_t){.argv = ARGV(BASE, "--listen-http", "10.1.2.3:7480", "--http-token", "t0ken")});
    ok((run_t){.argv = ARGV(BASE, "--listen-http", "10.1.2.3:7480", "--http-cert-file", "/c.crt",
                            "--http-key-file", "/c.key", "--http-trusted-ca-file", "/ca.crt")});
    ok((run_t){.argv = ARGV(BASE, "--listen-http", "10.1.2.3:7480", "--insecure-http")});
    cr_assert(cfg.insecure_http);
    ok((run_t){.argv = ARGV(BASE, "--listen-http", "10.1.2.3:7480"),
               .env = ENV("ELECTD_INSECURE_HTTP=true")});
    ok((run_t){.argv = ARGV(BASE, "--listen-http", "127.0.0.2:7480")});
    cr_assert(!cfg.insecure_http);
    ok((run_t){.argv = ARGV(BASE, "--listen-http", "[::1]:7480")});
    cr_assert(sidecar_config_host_loopback("127.255.0.1"));
    cr_assert(!sidecar_config_host_loopback("128.0.0.1"));
    cr_assert(!sidecar_config_host_loopback("::"));
    cr_assert(sidecar_config_host_loopback("::ffff:127.0.0.1"), "v4-mapped 127/8 is loopback");
    cr_assert(sidecar_config_host_loopback("localhost"));
    cr_assert(!sidecar_config_host_loopback("example.org"));
}

/* ---- precedence --------------------------------------------------------------------- */

Test(config, flag_beats_env_beats_file_beats_default)
{
    const char *file = "{\"heartbeat-interval\": \"400ms\", \"log-level\": \"error\","
                       " \"cluster-name\": \"from-file\"}";
    const char **env = ENV("ELECTD_HEARTBEAT_INTERVAL=300ms", "ELECTD_LOG_LEVEL=warn");

    ok((run_t){.argv = ARGV(BASE, "--heartbeat-interval", "200ms", "--log-level", "debug"),
               .env = env,
               .file = file});
    cr_assert_eq(cfg.heartbeat_interval_ms, 200);
    cr_assert_eq(cfg.log_level, SIDECAR_LOG_DEBUG);
    cr_assert_str_eq(cfg.cluster_name, "from-file");

    ok((run_t){.argv = ARGV(BASE), .env = env, .file = file});
    cr_assert_eq(cfg.heartbeat_interval_ms, 300);
    cr_assert_eq(cfg.log_level, SIDECAR_LOG_WARN);

    ok((run_t){.argv = ARGV(BASE), .env = NULL, .file = file});
    cr_assert_eq(cfg.heartbeat_interval_ms, 400);
    cr_assert_eq(cfg.log_level, SIDECAR_LOG_ERROR);

    ok((run_t){.argv = ARGV(BASE)});
    cr_assert_eq(cfg.heartbeat_interval_ms, 150);
    cr_assert_eq(cfg.log_level, SIDECAR_LOG_INFO);
    cr_assert_str_eq(cfg.cluster_name, "electd");
}

Test(config, required_settings_come_from_any_source)
{
    ok((run_t){.argv = ARGV("--data-dir", "/x"),
               .env = ENV("ELECTD_NAME=b", "ELECTD_PEERS=" PEERS3)});
    cr_assert_str_eq(cfg.name, "b");
    cr_assert_eq(cfg.self_index, 1);
    ok((run_t){.argv = ARGV("--name", "c"),
               .env = NULL,
               .file = "{\"data-dir\": \"/d\", \"peers\": [\"a=h:1\", \"c=h:3\"], "
                       "\"cluster-token\": \"t\"}"});
    cr_assert_str_eq(cfg.data_dir, "/d");
    cr_assert_eq(cfg.n_peers, 2);
    cr_assert_eq(cfg.self_index, 1);
}

Test(config, empty_env_values_count_as_unset)
{
    ok((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_CLUSTER_TOKEN=", "ELECTD_TICK=")});
    cr_assert_null(cfg.cluster_token);
    cr_assert_eq(cfg.tick_ms, 10);
}

Test(config, missing_required_settings_are_named)
{
    refused((run_t){.argv = ARGV("--peers", PEERS3, "--data-dir", "/x")},
            "missing --name (or ELECTD_NAME, or \"name\" in the config file)");
    refused((run_t){.argv = ARGV("--name", "a", "--peers", PEERS3)}, "missing --data-dir");
}

/* ---- value syntax ------------------------------------------------------------------- */

Test(config, durations_take_ms_and_s)
{
    ok((run_t){.argv = ARGV(BASE, "--election-timeout", "2s", "--heartbeat-interval", "250ms",
                            "--stop-timeout", "700", "--hook-timeout", "1ms")});
    cr_assert_eq(cfg.election_timeout_ms, 2000);
    cr_assert_eq(cfg.heartbeat_interval_ms, 250);
    cr_assert_eq(cfg.stop_timeout_ms, 700, "a bare number is ms");
    cr_assert_eq(cfg.hook_timeout_ms, 1);
}

Test(config, bad_durations_are_refused_with_the_reason)
{
    refused((run_t){.argv = ARGV(BASE, "--election-timeout", "abc")},
            "invalid --election-timeout \"abc\": expected a duration like 500ms, 2s or 1m");
    refused((run_t){.argv = ARGV(BASE, "--election-timeout", "1.5s")}, "expected a duration");
    refused((run_t){.argv = ARGV(BASE, "--election-timeout", "10 ms")}, "expected a duration");
    refused((run_t){.argv = ARGV(BASE, "--election-timeout", "10d")}, "expected a duration");
    refused((run_t){.argv = ARGV(BASE, "--election-timeout", "1m30s")}, "expected a duration");
    refused((run_t){.argv = ARGV(BASE, "--election-timeout", "")}, "expected a duration");
    refused((run_t){.argv = ARGV(BASE, "--election-timeout", "-5ms")}, "not a negative one");
    refused((run_t){.argv = ARGV(BASE, "--hook-timeout", "0")},
            "invalid --hook-timeout \"0\": must be at least 1ms");
    refused((run_t){.argv = ARGV(BASE, "--hook-timeout", "99999999999999999999999s")},
            "too large: at most 1h");
    refused((run_t){.argv = ARGV(BASE, "--restart-window", "18446744073709551615s")},
            "too large: at most 24h");
    refused((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_STOP_TIMEOUT=soon")},
            "invalid ELECTD_STOP_TIMEOUT \"soon\": expected a duration");
}

/* Durations take m and h too, as flag, environment and file alike (the one parser in
 * common/parse.c, shared with the CLI); the setting's range still decides. */
Test(config, durations_take_minutes_and_hours_everywhere)
{
    ok((run_t){.argv = ARGV(BASE, "--hook-timeout=1m", "--restart-window", "2h",
                            "--election-timeout=1m")});
    cr_assert_eq(cfg.hook_timeout_ms, 60000);
    cr_assert_eq(cfg.restart_window_ms, 7200000);
    cr_assert_eq(cfg.election_timeout_ms, 60000, "1m is the top of its range");
    ok((run_t){.argv = ARGV(BASE),
               .env = ENV("ELECTD_HOOK_TIMEOUT=2m", "ELECTD_HTTP_IDLE_TIMEOUT=1h")});
    cr_assert_eq(cfg.hook_timeout_ms, 120000);
    cr_assert_eq(cfg.http_idle_timeout_ms, 3600000);
    ok((run_t){.argv = ARGV(BASE), .env = NULL, .file = "{\"restart-window\": \"1h\"}"});
    cr_assert_eq(cfg.restart_window_ms, 3600000);

    refused((run_t){.argv = ARGV(BASE, "--election-timeout=2m")},
            "invalid --election-timeout \"2m\": too large: at most 1m");
    refused((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_HOOK_TIMEOUT=2h")},
            "invalid ELECTD_HOOK_TIMEOUT \"2h\": too large: at most 1h");
    refused((run_t){.argv = ARGV(BASE), .env = NULL, .file = "{\"tick\": \"1m\"}"},
            "invalid \"tick\" \"1m\" in the config file: too large: at most 1s");
    refused((run_t){.argv = ARGV(BASE, "--stop-timeout=1m")},
            "--stop-timeout (1m) must be less than the leader lease (880ms");
    refused((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_STOP_TIMEOUT=1M")},
            "invalid ELECTD_STOP_TIMEOUT \"1M\": expected a duration");
    refused((run_t){.argv = ARGV(BASE), .env = NULL, .file = "{\"hook-timeout\": \"1min\"}"},
            "invalid \"hook-timeout\" \"1min\" in the config file: expected a duration");
}

Test(config, sizes_and_counts)
{
    ok((run_t){.argv = ARGV(BASE, "--http-max-header-bytes", "16KiB", "--http-max-body-bytes",
                            "2048", "--http-max-connections", "10", "--max-restarts", "0")});
    cr_assert_eq(cfg.http_max_header_bytes, 16384);
    cr_assert_eq(cfg.http_max_body_bytes, 2048);
    cr_assert_eq(cfg.http_max_connections, 10);
    cr_assert_eq(cfg.max_restarts, 0);
    refused((run_t){.argv = ARGV(BASE, "--http-max-header-bytes", "8KB")},
            "expected a size like 8KiB or 1MiB");
    refused((run_t){.argv = ARGV(BASE, "--http-max-body-bytes", "2MiB")},
            "too large: at most 1MiB");
    refused((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_HTTP_MAX_BODY_BYTES=1GiB")},
            "invalid ELECTD_HTTP_MAX_BODY_BYTES \"1GiB\": too large: at most 1MiB");
    refused((run_t){.argv = ARGV(BASE, "--http-max-connections", "0")}, "must be at least 1");
    refused((run_t){.argv = ARGV(BASE, "--max-restarts", "five")},
            "invalid --max-restarts \"five\": expected a whole number");
}

Test(config, watch_settings_come_from_flag_env_and_file)
{
    ok((run_t){.argv = ARGV(BASE, "--watch-history", "50", "--max-watchers", "3")});
    cr_assert_eq(cfg.watch_history, 50);
    cr_assert_eq(cfg.max_watchers, 3);
    ok((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_WATCH_HISTORY=70", "ELECTD_MAX_WATCHERS=9")});
    cr_assert_eq(cfg.watch_history, 70);
    cr_assert_eq(cfg.max_watchers, 9);
    ok((run_t){.argv = ARGV(BASE), .file = "{\"watch-history\": 80, \"max-watchers\": 2}"});
    cr_assert_eq(cfg.watch_history, 80);
    cr_assert_eq(cfg.max_watchers, 2);
    refused((run_t){.argv = ARGV(BASE, "--watch-history", "0")}, "must be at least 1");
    refused((run_t){.argv = ARGV(BASE, "--max-watchers", "70000")}, "too large");
}

Test(config, max_drift_is_a_fraction_below_one_half)
{
    ok((run_t){.argv = ARGV(BASE, "--max-drift", "0.1")});
    cr_assert_eq(cfg.max_drift_ppm, 100000);
    ok((run_t){.argv = ARGV(BASE, "--max-drift", "0.49", "--stop-timeout", "100ms")});
    refused((run_t){.argv = ARGV(BASE, "--max-drift", "0.5")},
            "invalid --max-drift \"0.5\": must be in [0, 0.5)");
    refused((run_t){.argv = ARGV(BASE, "--max-drift", "-0.1")}, "must not be negative");
    refused((run_t){.argv = ARGV(BASE, "--max-drift", "nan")}, "expected a number in [0, 0.5)");
    refused((run_t){.argv = ARGV(BASE, "--max-drift", "5%")}, "expected a number in [0, 0.5)");
}

Test(config, booleans)
{
    ok((run_t){.argv = ARGV(BASE, "--forward")});
    cr_assert(cfg.forward, "a bare flag is true");
    ok((run_t){.argv = ARGV(BASE, "--forward=false"), .env = ENV("ELECTD_FORWARD=1")});
    cr_assert_not(cfg.forward, "the flag beats the environment");
    ok((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_FORWARD=true")});
    cr_assert(cfg.forward);
    ok((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_WITNESS=0"), .file = "{\"witness\": true}"});
    cr_assert_not(cfg.witness);
    ok((run_t){.argv = ARGV(BASE), .env = NULL, .file = "{\"witness\": 1}"});
    cr_assert(cfg.witness);
    refused((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_FORWARD=yes")},
            "invalid ELECTD_FORWARD \"yes\": expected true, false, 1 or 0");
    refused((run_t){.argv = ARGV(BASE, "--forward", "false")}, "unexpected argument \"false\"");
}

Test(config, log_level_and_format_are_enumerations)
{
    ok((run_t){.argv = ARGV(BASE, "--log-level", "warn", "--log-format", "json")});
    cr_assert_eq(cfg.log_level, SIDECAR_LOG_WARN);
    cr_assert_eq(cfg.log_format, SIDECAR_LOG_JSON);
    refused((run_t){.argv = ARGV(BASE, "--log-level", "verbose")},
            "invalid --log-level \"verbose\": expected one of debug, info, warn, error");
    refused((run_t){.argv = ARGV(BASE, "--log-format", "xml")}, "expected one of text, json");
}

Test(config, names_and_tokens)
{
    refused((run_t){.argv = ARGV(BASE, "--cluster-name", "a b")}, "invalid --cluster-name \"a b\"");
    ok((run_t){.argv = ARGV(BASE, "--cluster-token", "s3cr3t-Token")});
    cr_assert_str_eq(cfg.cluster_token, "s3cr3t-Token");
    refused((run_t){.argv = ARGV(BASE, "--cluster-token", "has space-secret")},
            "invalid --cluster-token (value hidden)");
    cr_assert_null(strstr(err, "space-secret"), "a token is never echoed: %s", err);
    refused((run_t){.argv = ARGV(BASE),
                    .env = NULL,
                    .file = "{\"http-token\": \"bad\\ttoken-secret\"}"},
            "invalid \"http-token\" (value hidden)");
    cr_assert_null(strstr(err, "token-secret"));
}

/* ---- the command line --------------------------------------------------------------- */

Test(config, unknown_and_abbreviated_flags_are_refused)
{
    refused((run_t){.argv = ARGV(BASE, "--bogus", "1")}, "unknown flag \"--bogus\"");
    refused((run_t){.argv = ARGV(BASE, "--elect", "1s")}, "unknown flag \"--elect\"");
    refused((run_t){.argv = ARGV(BASE, "-n", "a")}, "unknown flag \"-n\"");
    refused((run_t){.argv = ARGV(BASE, "stray")}, "unexpected argument \"stray\"");
    refused((run_t){.argv = ARGV(BASE, "--tick")}, "--tick needs a value");
}

Test(config, last_flag_wins)
{
    ok((run_t){.argv = ARGV(BASE, "--tick", "20ms", "--tick=5ms")});
    cr_assert_eq(cfg.tick_ms, 5);
}

Test(config, help_and_version_skip_validation)
{
    cr_assert_eq(parse((run_t){.argv = ARGV("--help")}), 0);
    cr_assert_eq(cfg.action, SIDECAR_CONFIG_HELP);
    cr_assert_eq(parse((run_t){.argv = ARGV("--tick", "bad", "--version")}), 0);
    cr_assert_eq(cfg.action, SIDECAR_CONFIG_VERSION);
    cr_assert(strncmp(sidecar_config_version(), "electd ", 7) == 0);
}

Test(config, exec_takes_the_command_after_double_dash)
{
    ok((run_t){.argv = ARGV(BASE, "--exec", "--", "/usr/bin/worker", "-v", "--name", "x", "")});
    cr_assert_eq(cfg.exec.argc, 5);
    cr_assert_str_eq(cfg.exec.argv[0], "/usr/bin/worker");
    cr_assert_str_eq(cfg.exec.argv[1], "-v");
    cr_assert_str_eq(cfg.exec.argv[2], "--name", "the workload's flags are its own");
    cr_assert_str_eq(cfg.exec.argv[4], "");
    cr_assert_null(cfg.exec.argv[5]);
    cr_assert_str_eq(cfg.name, "a");

    ok((run_t){.argv = ARGV(BASE, "--exec=/usr/bin/worker  -v")});
    cr_assert_eq(cfg.exec.argc, 2, "a string is split on spaces");
    cr_assert_str_eq(cfg.exec.argv[1], "-v");

    ok((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_EXEC=[\"/bin/w\", \"two words\"]")});
    cr_assert_eq(cfg.exec.argc, 2, "a JSON array keeps spaces inside arguments");
    cr_assert_str_eq(cfg.exec.argv[1], "two words");

    ok((run_t){.argv = ARGV(BASE), .env = NULL, .file = "{\"exec\": [\"/bin/w\", \"-x\"]}"});
    cr_assert_eq(cfg.exec.argc, 2);

    refused((run_t){.argv = ARGV(BASE, "--exec")}, "--exec needs the workload command after --");
    refused((run_t){.argv = ARGV(BASE, "--exec", "--")},
            "--exec needs the workload command after --");
    refused((run_t){.argv = ARGV(BASE, "--", "/bin/w")}, "need --exec");
    refused((run_t){.argv = ARGV(BASE, "--exec=/bin/w", "--", "/bin/w")}, "not both");
    refused((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_EXEC=[\"/bin/w\", 3]")},
            "invalid ELECTD_EXEC");
    refused((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_EXEC=[oops")},
            "not a JSON array of strings");
    refused((run_t){.argv = ARGV(BASE, "--exec=   ")}, "expected a command");
}

Test(config, hooks_are_split_on_spaces)
{
    ok((run_t){.argv = ARGV(BASE, "--on-start", "/etc/electd/hook start", "--on-change",
                            "/etc/electd/notify")});
    cr_assert_eq(cfg.on_start.argc, 2);
    cr_assert_str_eq(cfg.on_start.argv[0], "/etc/electd/hook");
    cr_assert_str_eq(cfg.on_start.argv[1], "start");
    cr_assert_eq(cfg.on_change.argc, 1);
    cr_assert_null(cfg.on_stop.argv);
}

Test(config, one_mode_per_node)
{
    refused((run_t){.argv = ARGV(BASE, "--on-start", "/bin/h", "--exec", "--", "/bin/w")},
            "--exec cannot be combined with --on-start or --on-stop");
    refused((run_t){.argv = ARGV(BASE, "--on-stop", "/bin/h"), .env = ENV("ELECTD_EXEC=/bin/w")},
            "--exec cannot be combined with --on-start or --on-stop");
    ok((run_t){.argv = ARGV(BASE, "--on-change", "/bin/h", "--exec", "--", "/bin/w")});
    refused((run_t){.argv = ARGV(BASE, "--witness", "--exec", "--", "/bin/w")},
            "--witness cannot be combined with --exec or hooks");
    refused((run_t){.argv = ARGV(BASE, "--witness", "--on-change", "/bin/h")},
            "--witness cannot be combined with --exec or hooks");
}

/* ---- timing consistency ------------------------------------------------------------- */

Test(config, inconsistent_timeouts_are_refused)
{
    refused((run_t){.argv = ARGV(BASE, "--heartbeat-interval", "1s")},
            "--heartbeat-interval (1s) must be less than --election-timeout (1s)");
    refused((run_t){.argv = ARGV(BASE, "--heartbeat-interval", "105ms")},
            "--heartbeat-interval (105ms) must be a multiple of --tick (10ms)");
    refused((run_t){.argv = ARGV(BASE, "--election-timeout", "1005")},
            "--election-timeout (1005ms) must be a multiple of --tick (10ms)");
    refused((run_t){.argv = ARGV(BASE, "--stop-timeout", "880ms")},
            "--stop-timeout (880ms) must be less than the leader lease (880ms");
    ok((run_t){.argv = ARGV(BASE, "--stop-timeout", "870ms")});
    refused(
        (run_t){.argv = ARGV(BASE, "--election-timeout", "30ms", "--heartbeat-interval", "10ms")},
        "the leader lease would be empty");
    refused((run_t){.argv = ARGV(BASE, "--hook-timeout", "2h")}, "invalid --hook-timeout");
    refused((run_t){.argv = ARGV(BASE, "--tick", "2s")}, "too large: at most 1s");
}

/* ---- the config file ---------------------------------------------------------------- */

Test(config, file_settings_of_every_kind)
{
    ok((run_t){.argv = ARGV("--config", "/etc/electd.json"),
               .env = NULL,
               .file = "{\n"
                       "  \"name\": \"b\",\n"
                       "  \"peers\": \"a=127.0.0.1:7001,b=127.0.0.1:7002\",\n"
                       "  \"data-dir\": \"/var/lib/electd\",\n"
                       "  \"election-timeout\": 2000,\n"
                       "  \"heartbeat-interval\": \"200ms\",\n"
                       "  \"max-drift\": 0.1,\n"
                       "  \"forward\": true,\n"
                       "  \"on-start\": [\"/bin/hook\", \"start now\"],\n"
                       "  \"on-stop\": \"/bin/hook stop\",\n"
                       "  \"http-max-body-bytes\": \"64KiB\"\n"
                       "}\n"});
    cr_assert_str_eq(cfg.config_path, "/etc/electd.json");
    cr_assert_str_eq(cfg.name, "b");
    cr_assert_eq(cfg.election_timeout_ms, 2000, "a JSON number is ms");
    cr_assert_eq(cfg.heartbeat_interval_ms, 200);
    cr_assert_eq(cfg.max_drift_ppm, 100000);
    cr_assert(cfg.forward);
    cr_assert_str_eq(cfg.on_start.argv[1], "start now");
    cr_assert_eq(cfg.on_stop.argc, 2);
    cr_assert_eq(cfg.http_max_body_bytes, 65536);
}

Test(config, file_unknown_keys_and_wrong_types_are_refused)
{
    refused((run_t){.argv = ARGV("--config", "c.json", BASE),
                    .env = NULL,
                    .file = "{\"electon-timeout\": \"1s\"}"},
            "c.json: unknown setting \"electon-timeout\"");
    refused((run_t){.argv = ARGV(BASE, "--election-timeout", "2s"),
                    .env = NULL,
                    .file = "{\"Election-Timeout\": 1}"},
            "unknown setting \"Election-Timeout\"");
    refused((run_t){.argv = ARGV("--config", "c.json", BASE),
                    .env = NULL,
                    .file = "{\"election-timeout\": true}"},
            "invalid \"election-timeout\" (a boolean) in c.json: expected a duration");
    refused((run_t){.argv = ARGV(BASE), .env = NULL, .file = "{\"election-timeout\": 1.5}"},
            "expected a duration");
    refused((run_t){.argv = ARGV(BASE), .env = NULL, .file = "{\"election-timeout\": -3}"},
            "not a negative one");
    refused((run_t){.argv = ARGV(BASE), .env = NULL, .file = "{\"witness\": \"yes\"}"},
            "expected true, false, 1 or 0");
    refused((run_t){.argv = ARGV(BASE), .env = NULL, .file = "{\"witness\": null}"}, "(null)");
    refused((run_t){.argv = ARGV("--name", "a", "--data-dir", "/x"),
                    .env = NULL,
                    .file = "{\"peers\": 5}"},
            "invalid \"peers\" 5 in the config file");
    refused((run_t){.argv = ARGV("--name", "a", "--data-dir", "/x"),
                    .env = NULL,
                    .file = "{\"peers\": [\"a=h:1\", 2]}"},
            "array of \"name=host:port\" strings");
    refused(
        (run_t){.argv = ARGV("--data-dir", "/x"), .env = NULL, .file = "{\"name\": {\"x\": 1}}"},
        "invalid \"name\" (an object)");
    refused((run_t){.argv = ARGV(BASE), .env = NULL, .file = "{\"config\": \"other.json\"}"},
            "\"config\" cannot be set in the config file");
    refused((run_t){.argv = ARGV(BASE), .env = NULL, .file = "{\"help\": true}"},
            "\"help\" cannot be set");
    refused((run_t){.argv = ARGV(BASE),
                    .env = NULL,
                    .file = "{\"tick\": \"10ms\", \"tick\": \"20ms\"}"},
            "setting \"tick\" appears twice");
}

Test(config, file_syntax_errors_give_line_and_column)
{
    refused((run_t){.argv = ARGV("--config", "c.json", BASE),
                    .env = NULL,
                    .file = "{\n  \"tick\": \"10ms\",\n  oops\n}"},
            "c.json:3:");
    cr_assert(strstr(err, "not valid JSON"), "%s", err); /* the column is cJSON's, +-1 */
    refused((run_t){.argv = ARGV(BASE), .env = NULL, .file = ""},
            "the config file:1:1: not valid JSON");
    refused((run_t){.argv = ARGV(BASE), .env = NULL, .file = "{} {}"},
            ":1:4: unexpected text after the JSON object");
    refused((run_t){.argv = ARGV(BASE), .env = NULL, .file = "[1, 2]"},
            "expected a JSON object of settings");
}

Test(config, config_file_is_read_from_disk)
{
    char path[] = "/tmp/electd-config-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *text = "{\"tick\": \"5ms\"}";
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    ok((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_CONFIG=", "ELECTD_TICK=")});
    cr_assert_eq(cfg.tick_ms, 10);
    const char *env[] = {NULL, NULL};
    char var[PATH_MAX + 16];
    snprintf(var, sizeof(var), "ELECTD_CONFIG=%s", path);
    env[0] = var;
    ok((run_t){.argv = ARGV(BASE), .env = env});
    cr_assert_eq(cfg.tick_ms, 5, "ELECTD_CONFIG names the file");
    cr_assert_str_eq(cfg.config_path, path);
    unlink(path);
    refused((run_t){.argv = ARGV(BASE, "--config", path)},
            "cannot read --config \"/tmp/electd-config-");
    refused((run_t){.argv = ARGV(BASE, "--config", "/tmp")}, "is not a regular file");
}

/* ---- the filesystem ----------------------------------------------------------------- */

Test(config, data_dir_is_created_or_refused)
{
    char base[] = "/tmp/electd-datadir-XXXXXX";
    char dir[PATH_MAX], file[PATH_MAX], under_file[PATH_MAX];
    cr_assert_not_null(mkdtemp(base));
    snprintf(dir, sizeof(dir), "%s/a/b/c", base);
    ok((run_t){.argv = ARGV("--name", "a", "--peers", PEERS3, "--data-dir", dir), .fs = true});
    struct stat st;
    cr_assert_eq(stat(dir, &st), 0, "missing directories are created");
    cr_assert(S_ISDIR(st.st_mode));

    snprintf(file, sizeof(file), "%s/plain", base);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fclose(f);
    refused((run_t){.argv = ARGV("--name", "a", "--peers", PEERS3, "--data-dir", file), .fs = true},
            "--data-dir \"/tmp/electd-datadir-");
    cr_assert(strstr(err, "is not a directory"), "%s", err);
    snprintf(under_file, sizeof(under_file), "%s/plain/sub", base);
    refused((run_t){.argv = ARGV("--name", "a", "--peers", PEERS3, "--data-dir", under_file),
                    .fs = true},
            "cannot create --data-dir");

    refused((run_t){.argv = ARGV("--name", "a", "--peers", PEERS3, "--data-dir", dir, "--on-start",
                                 "/nonexistent/hook start"),
                    .fs = true},
            "--on-start program \"/nonexistent/hook\" is not executable");
    ok((run_t){.argv = ARGV("--name", "a", "--peers", PEERS3, "--data-dir", dir, "--exec", "--",
                            "/bin/sh", "-c", "true"),
               .fs = true});

    unlink(file);
    rmdir(dir);
    snprintf(dir, sizeof(dir), "%s/a/b", base);
    rmdir(dir);
    snprintf(dir, sizeof(dir), "%s/a", base);
    rmdir(dir);
    rmdir(base);
}

/* ---- --help and the documentation --------------------------------------------------- */

static char *render_help(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    sidecar_config_help(f);
    fclose(f);
    return text;
}

Test(config, help_lists_every_setting_with_env_and_default)
{
    char *help = render_help();
    char needle[128], env[SIDECAR_CONFIG_ENV_NAME_MAX];
    cr_assert_gt(sidecar_config_setting_count(), 30);
    for (size_t i = 0; i < sidecar_config_setting_count(); i++) {
        const sidecar_config_setting_t *s = sidecar_config_setting_at(i);
        snprintf(needle, sizeof(needle), "  --%s", s->name);
        cr_assert(strstr(help, needle), "--help lacks %s", needle);
        if (s->env) {
            cr_assert_eq(sidecar_config_env_name(s->name, env, sizeof(env)), 0);
            snprintf(needle, sizeof(needle), " env %s", env);
            cr_assert(strstr(help, needle), "--help lacks %s", needle);
        }
        if (s->def) {
            snprintf(needle, sizeof(needle), "default %s\n", s->def);
            cr_assert(strstr(help, needle), "--help lacks the default of --%s", s->name);
        }
    }
    cr_assert(strstr(help, "flag > environment > config file > default"));
    free(help);
}

Test(config, every_flag_in_help_is_documented)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/docs/configuration.md", ELECTD_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    static char doc[256 * 1024];
    size_t n = fread(doc, 1, sizeof(doc) - 1, f);
    doc[n] = '\0';
    fclose(f);

    /* every "--flag" token that --help prints, not only the table's names */
    char *help = render_help();
    size_t checked = 0;
    for (char *p = strstr(help, "--"); p; p = strstr(p + 2, "--")) {
        char flag[80];
        size_t k = 0;
        while (k < sizeof(flag) - 1 && ((p[k] >= 'a' && p[k] <= 'z') || p[k] == '-')) {
            flag[k] = p[k];
            k++;
        }
        flag[k] = '\0';
        if (k <= 2) {
            continue; /* the bare "--" of --exec */
        }
        char quoted[96];
        snprintf(quoted, sizeof(quoted), "`%s`", flag);
        cr_assert(strstr(doc, quoted), "docs/configuration.md does not document %s", flag);
        checked++;
    }
    cr_assert_gt(checked, sidecar_config_setting_count());
    for (size_t i = 0; i < sidecar_config_setting_count(); i++) {
        const sidecar_config_setting_t *s = sidecar_config_setting_at(i);
        char env[SIDECAR_CONFIG_ENV_NAME_MAX];
        sidecar_config_env_name(s->name, env, sizeof(env));
        if (s->env) {
            cr_assert(strstr(doc, env), "docs/configuration.md lacks %s", env);
        }
    }
    free(help);
}

/* ---- effective values --------------------------------------------------------------- */

Test(config, formatted_values_parse_back_to_the_same_configuration)
{
    ok((run_t){.argv =
                   ARGV("--name", "b", "--peers", "a=10.0.0.1:7001,b=[fd00::2]:7001", "--data-dir",
                        "/var/lib/electd", "--election-timeout", "2s", "--heartbeat-interval",
                        "250", "--max-drift", "0.125", "--http-max-header-bytes", "16KiB",
                        "--http-max-body-bytes", "1000", "--log-level", "debug", "--log-format",
                        "json", "--forward", "--on-start", "/bin/h start", "--on-change", "/bin/n",
                        "--cluster-token", "secret-token-1", "--insecure-peer", "--listen-http",
                        "[::1]:0", "--advertise-http", "h.example:80")});
    size_t count = sidecar_config_setting_count();
    char first[64][512], again[512];
    const char *argv[2 * 64 + 2] = {"electd"};
    static char args[64][600];
    int argc = 1;
    cr_assert_leq(count, 64);
    for (size_t i = 0; i < count; i++) {
        const sidecar_config_setting_t *s = sidecar_config_setting_at(i);
        int n = sidecar_config_value_format(&cfg, i, first[i], sizeof(first[i]));
        if (strcmp(s->name, "help") == 0 || strcmp(s->name, "version") == 0) {
            cr_assert_lt(n, 0);
            continue;
        }
        cr_assert_geq(n, 0, "--%s", s->name);
        if (n == 0 || s->secret || strcmp(s->name, "config") == 0) {
            continue;
        }
        snprintf(args[argc], sizeof(args[argc]), "--%s=%s", s->name, first[i]);
        argv[argc] = args[argc];
        argc++;
    }
    cr_assert_str_eq(first[7], "(set)", "the token is not shown");
    cr_assert(strstr(first[1], "b=[fd00::2]:7001"), "%s", first[1]);
    argv[argc] = NULL;
    ok((run_t){.argv = argv});
    for (size_t i = 0; i < count; i++) {
        const sidecar_config_setting_t *s = sidecar_config_setting_at(i);
        if (sidecar_config_value_format(&cfg, i, again, sizeof(again)) < 0 || s->secret) {
            continue;
        }
        cr_assert_str_eq(again, first[i], "--%s changed in the round trip", s->name);
    }
}

Test(config, effective_configuration_is_logged_without_secrets)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    sidecar_log_init(SIDECAR_LOG_INFO, SIDECAR_LOG_TEXT, fileno(f), "a");
    ok((run_t){.argv = ARGV(BASE, "--cluster-token", "very-secret", "--http-token", "also-secret",
                            "--exec", "--", "/bin/w", "-v")});
    sidecar_config_log_effective(&cfg);
    sidecar_log_init(SIDECAR_LOG_INFO, SIDECAR_LOG_TEXT, 2, NULL);
    char line[SIDECAR_LOG_LINE_MAX + 1];
    size_t n = (size_t)pread(fileno(f), line, SIDECAR_LOG_LINE_MAX, 0);
    line[n] = '\0';
    fclose(f);
    cr_assert(strstr(line, "msg=\"configuration\""), "%s", line);
    cr_assert(strstr(line, " election-timeout=1s "), "%s", line);
    cr_assert(strstr(line, " exec=\"/bin/w -v\" "), "%s", line);
    cr_assert(strstr(line, " cluster-token=(set) "), "%s", line);
    cr_assert(strstr(line, " http-token=(set) "), "%s", line);
    cr_assert_null(strstr(line, "secret"), "%s", line);
}

Test(config, listen_addresses_must_not_collide)
{
    refused((run_t){.argv = ARGV(BASE, "--listen-http", "127.0.0.1:7001")},
            "--listen-peer and --listen-http both use port 7001");
    refused((run_t){.argv = ARGV(BASE, "--listen-peer", "0.0.0.0:7480")}, "both use port 7480");
    ok((run_t){.argv = ARGV(BASE, "--listen-http", "127.0.0.2:7001")});
}

/* ---- a member that would dial itself ---------------------------------------------------- */

static int self_dial(const char *listen, const char *peers)
{
    ok((run_t){.argv = ARGV("--name", "a", "--peers", peers, "--listen-peer", listen, "--data-dir",
                            "/x", TOKEN)});
    return sidecar_config_check_self_dial(&cfg, err, sizeof(err));
}

Test(config, another_member_at_our_own_listener_is_refused)
{
    /* The same IP spelled differently, and a wildcard listener with a local address. */
    cr_assert_lt(self_dial("127.0.0.1:27001", "a=127.0.0.1:27001,b=[::ffff:127.0.0.1]:27001"), 0);
    cr_assert(strstr(err, "\"b\"") && strstr(err, "this node's own peer listener"), "%s", err);
    cr_assert_lt(self_dial("0.0.0.0:27001", "a=127.0.0.1:27001,b=127.0.0.2:27001"), 0);
    cr_assert_lt(self_dial("[::]:27001", "a=127.0.0.1:27001,b=[::1]:27001"), 0);
    cr_assert_lt(self_dial("127.0.0.1:27001", "a=127.0.0.1:27001,b=0.0.0.0:27001"), 0);
    /* Different sockets: another port, another loopback address, another family. */
    cr_assert_eq(self_dial("127.0.0.1:27001", "a=127.0.0.1:27001,b=127.0.0.1:27002"), 0, "%s", err);
    cr_assert_eq(self_dial("127.0.0.1:27001", "a=127.0.0.1:27001,b=127.0.0.2:27001"), 0, "%s", err);
    cr_assert_eq(self_dial("0.0.0.0:27001", "a=127.0.0.1:27001,b=[::1]:27001"), 0, "%s", err);
    /* A name that does not resolve is not an error (it may resolve later). */
    cr_assert_eq(self_dial("127.0.0.1:27001", "a=127.0.0.1:27001,b=no-such-host.invalid:27001"), 0,
                 "%s", err);
}

Test(config, a_name_resolving_to_our_listener_among_others_is_refused)
{
    private_hosts("electd-dual-stack"); /* ::1 first, then 127.0.0.1 */
    cr_assert_lt(self_dial("127.0.0.1:27001", "a=127.0.0.1:27001,b=electd-dual-stack:27001"), 0);
    cr_assert(strstr(err, "127.0.0.1") != NULL, "%s", err);
}

/* ---- named elections: the placement flags and the "elections" object (issue 12) ------- */

Test(config, no_primary_and_rebalance_from_flag_env_and_file)
{
    ok((run_t){.argv = ARGV(BASE)});
    cr_assert_not(cfg.no_primary, "a member may hold named elections by default");
    cr_assert(cfg.rebalance, "rebalancing is on by default");
    ok((run_t){.argv = ARGV(BASE, "--no-primary", "--rebalance=false")});
    cr_assert(cfg.no_primary);
    cr_assert_not(cfg.rebalance);
    ok((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_NO_PRIMARY=1", "ELECTD_REBALANCE=0")});
    cr_assert(cfg.no_primary);
    cr_assert_not(cfg.rebalance);
    ok((run_t){.argv = ARGV(BASE), .file = "{\"no-primary\": true, \"rebalance\": false}"});
    cr_assert(cfg.no_primary);
    cr_assert_not(cfg.rebalance);
    ok((run_t){.argv = ARGV(BASE, "--rebalance"),
               .env = ENV("ELECTD_NO_PRIMARY=false"),
               .file = "{\"no-primary\": true, \"rebalance\": false}"});
    cr_assert_not(cfg.no_primary, "the environment beats the file");
    cr_assert(cfg.rebalance, "the flag beats the file");
    refused((run_t){.argv = ARGV(BASE, "--rebalance=maybe")},
            "invalid --rebalance \"maybe\": expected true, false, 1 or 0");
    refused((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_NO_PRIMARY=yes")},
            "invalid ELECTD_NO_PRIMARY \"yes\"");
}

/* --priority and --preempt (operations.md, "Priorities"); --no-primary is priority 0. */
Test(config, priority_and_preempt_and_no_primary_as_priority_0)
{
    ok((run_t){.argv = ARGV(BASE)});
    cr_assert_eq(cfg.priority, 100, "the default priority is 100");
    cr_assert(cfg.preempt, "preemption is on by default");
    cr_assert_not(cfg.no_primary);
    ok((run_t){.argv = ARGV(BASE, "--priority=200", "--preempt=false")});
    cr_assert_eq(cfg.priority, 200);
    cr_assert_not(cfg.preempt);
    ok((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_PRIORITY=0")});
    cr_assert_eq(cfg.priority, 0);
    cr_assert(cfg.no_primary, "priority 0 is --no-primary for named elections");
    ok((run_t){.argv = ARGV(BASE, "--no-primary")});
    cr_assert_eq(cfg.priority, 0, "--no-primary is priority 0");
    ok((run_t){.argv = ARGV(BASE, "--no-primary", "--priority=0")});
    cr_assert_eq(cfg.priority, 0);
    ok((run_t){.argv = ARGV(BASE), .file = "{\"priority\": 7, \"preempt\": false}"});
    cr_assert_eq(cfg.priority, 7);
    cr_assert_not(cfg.preempt);
    refused((run_t){.argv = ARGV(BASE, "--no-primary", "--priority=150")},
            "--no-primary is --priority 0: it cannot be combined with --priority 150");
    refused((run_t){.argv = ARGV(BASE, "--priority=256")}, "--priority");
    refused((run_t){.argv = ARGV(BASE, "--priority=-1")}, "--priority");
}

/* A config file holding only the given "elections" object (any JSON text). */
#define ELECTIONS(obj) "{\"elections\": " obj "}"

Test(config, elections_of_both_modes_with_every_option)
{
    ok((run_t){
        .argv = ARGV("--config", "c.json", BASE, "--stop-timeout", "300ms", "--max-restarts", "7"),
        .file = ELECTIONS("{\n"
                          "  \"orders\": {\"exec\": [\"/usr/bin/binlog\", \"--db\", "
                          "\"two words\"],\n"
                          "              \"prefer\": [\"b\"], \"avoid\": [\"c\", \"z\"],\n"
                          "              \"stop-timeout\": \"200ms\", \"hook-timeout\": "
                          "5000, \"max-restarts\": 0},\n"
                          "  \"cron.tenant_1\": {\"on-start\": \"/bin/h start cron\",\n"
                          "                    \"on-stop\": [\"/bin/h\", \"stop\"],\n"
                          "                    \"on-change\": \"/bin/n\"},\n"
                          "  \"billing\": {\"exec\": \"worker -v\"},\n"
                          "  \"audit\": {\"on-stop\": \"/bin/h stop\"}\n"
                          "}")});
    const sidecar_election_list_t *l = &cfg.elections;
    cr_assert_eq(l->n, 4);
    const char *sorted[] = {"audit", "billing", "cron.tenant_1", "orders"};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_str_eq(l->items[i].name, sorted[i], "the list is sorted by name");
        cr_assert_eq(sidecar_config_election_find(l, sorted[i]), &l->items[i]);
    }
    cr_assert_null(sidecar_config_election_find(l, "nope"));
    cr_assert_null(sidecar_config_election_find(l, "default"));

    const sidecar_election_config_t *e = sidecar_config_election_find(l, "orders");
    cr_assert_eq(e->mode, SIDECAR_ELECTION_EXEC);
    cr_assert_eq(e->exec.argc, 3);
    cr_assert_str_eq(e->exec.argv[2], "two words");
    cr_assert_null(e->exec.argv[3]);
    cr_assert_eq(e->on_start.argc + e->on_stop.argc + e->on_change.argc, 0);
    cr_assert_eq(e->prefer.n, 1);
    cr_assert_str_eq(e->prefer.refs[0].name, "b");
    cr_assert_eq(e->prefer.refs[0].id, sidecar_config_node_id("b"));
    cr_assert_eq(e->prefer.refs[0].id, cfg.peers[1].id, "the same id as the member's");
    cr_assert(e->prefer.refs[0].known);
    cr_assert_eq(e->avoid.n, 2);
    cr_assert(e->avoid.refs[0].known);
    cr_assert_str_eq(e->avoid.refs[1].name, "z");
    cr_assert_not(e->avoid.refs[1].known, "not in --peers: accepted, marked unknown");
    cr_assert_eq(e->stop_timeout_ms, 200);
    cr_assert_eq(e->hook_timeout_ms, 5000);
    cr_assert_eq(e->max_restarts, 0);

    e = sidecar_config_election_find(l, "cron.tenant_1");
    cr_assert_eq(e->mode, SIDECAR_ELECTION_HOOKS);
    cr_assert_eq(e->exec.argc, 0);
    cr_assert_eq(e->on_start.argc, 3, "a string is split on spaces, as --on-start");
    cr_assert_str_eq(e->on_start.argv[2], "cron");
    cr_assert_eq(e->on_stop.argc, 2);
    cr_assert_str_eq(e->on_change.argv[0], "/bin/n");
    cr_assert_eq(e->prefer.n + e->avoid.n, 0);
    cr_assert_null(e->prefer.refs);

    e = sidecar_config_election_find(l, "billing");
    cr_assert_eq(e->exec.argc, 2);
    cr_assert_eq(e->stop_timeout_ms, 300, "the global --stop-timeout when left out");
    cr_assert_eq(e->hook_timeout_ms, 30000, "the global --hook-timeout (its default)");
    cr_assert_eq(e->max_restarts, 7, "the global --max-restarts");
    e = sidecar_config_election_find(l, "audit");
    cr_assert_eq(e->mode, SIDECAR_ELECTION_HOOKS, "on-stop alone is hook mode");

    /* No "elections", or an empty object: none, and the default election is untouched. */
    ok((run_t){.argv = ARGV(BASE, "--exec", "--", "/bin/w"), .file = ELECTIONS("{}")});
    cr_assert_eq(cfg.elections.n, 0);
    cr_assert_null(cfg.elections.items);
    cr_assert_eq(cfg.exec.argc, 1);
    ok((run_t){.argv = ARGV(BASE)});
    cr_assert_eq(cfg.elections.n, 0);
}

Test(config, election_names_are_node_names_and_default_is_reserved)
{
    char name[80], file[160];
    memset(name, 'n', 63);
    name[63] = '\0';
    snprintf(file, sizeof(file), ELECTIONS("{\"%s\": {\"exec\": \"w\"}}"), name);
    ok((run_t){.argv = ARGV(BASE), .file = file});
    cr_assert_eq(strlen(cfg.elections.items[0].name), 63);
    snprintf(file, sizeof(file), ELECTIONS("{\"%sn\": {\"exec\": \"w\"}}"), name);
    refused((run_t){.argv = ARGV(BASE), .file = file}, "the config file: invalid election name");
    cr_assert(strstr(err, "expected 1-63 letters, digits, '.', '_' or '-'"), "%s", err);
    refused((run_t){.argv = ARGV("--config", "c.json", BASE),
                    .file = ELECTIONS("{\"a b\": {\"exec\": \"w\"}}")},
            "c.json: invalid election name \"a b\"");
    refused((run_t){.argv = ARGV(BASE), .file = ELECTIONS("{\"-x\": {\"exec\": \"w\"}}")},
            "invalid election name \"-x\"");
    refused((run_t){.argv = ARGV(BASE), .file = ELECTIONS("{\"\": {\"exec\": \"w\"}}")},
            "invalid election name \"\"");
    refused((run_t){.argv = ARGV(BASE), .file = ELECTIONS("{\"default\": {\"exec\": \"w\"}}")},
            "the election name \"default\" is reserved for the election of --exec and the hooks");
    refused((run_t){.argv = ARGV(BASE),
                    .file = ELECTIONS("{\"e\": {\"exec\": \"w\"}, \"e\": {\"exec\": \"v\"}}")},
            "election \"e\" appears twice");
}

/* Each election "e" whose object is the case's body is refused with the case's message. */
typedef struct election_case {
    const char *body, *needle;
} election_case_t;

static void elections_refused(const election_case_t *cases, size_t n)
{
    char file[1024];
    for (size_t i = 0; i < n; i++) {
        snprintf(file, sizeof(file), "{\"elections\": {\"e\": %s}}", cases[i].body);
        refused((run_t){.argv = ARGV("--config", "c.json", BASE), .file = file}, cases[i].needle);
    }
}

Test(config, an_election_has_exactly_one_mode)
{
    static const election_case_t cases[] = {
        {"{\"exec\": \"w\", \"on-start\": \"h\"}",
         "c.json: election \"e\": \"exec\" cannot be combined with \"on-start\", \"on-stop\" or "
         "\"on-change\""},
        {"{\"exec\": \"w\", \"on-change\": \"h\"}", "election \"e\": \"exec\" cannot be combined"},
        {"{\"prefer\": [\"a\"]}",
         "election \"e\": needs \"exec\", or \"on-start\" and/or \"on-stop\""},
        {"{\"on-change\": \"h\"}",
         "election \"e\": needs \"exec\", or \"on-start\" and/or \"on-stop\""},
        {"{}", "needs \"exec\""},
    };
    elections_refused(cases, sizeof(cases) / sizeof(cases[0]));
    refused(
        (run_t){.argv = ARGV(BASE, "--witness"), .file = ELECTIONS("{\"e\": {\"exec\": \"w\"}}")},
        "--witness cannot be combined with named elections");
}

Test(config, election_keys_and_values_are_checked)
{
    static const election_case_t cases[] = {
        {"{\"exec\": \"w\", \"prefr\": [\"a\"]}",
         "c.json: election \"e\": unknown key \"prefr\" (expected exec, on-start, on-stop, "
         "on-change, prefer, avoid, stop-timeout, hook-timeout, max-restarts)"},
        {"{\"exec\": \"w\", \"name\": \"x\"}", "election \"e\": unknown key \"name\""},
        {"{\"exec\": \"w\", \"exec\": \"v\"}", "election \"e\": key \"exec\" appears twice"},
        {"{\"exec\": \"w\", \"stop-timeout\": \"fast\"}",
         "invalid \"stop-timeout\" \"fast\" in election \"e\" of c.json: expected a duration"},
        {"{\"exec\": \"w\", \"hook-timeout\": \"2h\"}",
         "invalid \"hook-timeout\" \"2h\" in election \"e\" of c.json: too large: at most 1h"},
        {"{\"exec\": \"w\", \"stop-timeout\": 0}", "invalid \"stop-timeout\" 0 in election \"e\""},
        {"{\"exec\": \"w\", \"max-restarts\": 1001}",
         "invalid \"max-restarts\" 1001 in election \"e\" of c.json: too large: at most 1000"},
        {"{\"exec\": \"w\", \"stop-timeout\": \"880ms\"}",
         "election \"e\": \"stop-timeout\" (880ms) must be less than the leader lease (880ms"},
        {"{\"exec\": 5}",
         "invalid \"exec\" 5 in election \"e\" of c.json: expected an array of strings"},
        {"{\"on-start\": \"  \"}", "invalid \"on-start\" \"  \" in election \"e\""},
        {"{\"exec\": [\"\", \"x\"]}", "the program name is empty"},
        {"\"w\"", "election \"e\": expected an object like {\"exec\": [\"cmd\", \"arg\"]}"},
    };
    elections_refused(cases, sizeof(cases) / sizeof(cases[0]));
    refused((run_t){.argv = ARGV(BASE), .file = ELECTIONS("[\"e\"]")},
            "\"elections\" must be an object mapping election names to their settings");
    refused((run_t){.argv = ARGV(BASE), .file = "{\"elections\": {}, \"elections\": {}}"},
            "setting \"elections\" appears twice");
}

Test(config, prefer_and_avoid_name_members)
{
    static const election_case_t cases[] = {
        {"{\"exec\": \"w\", \"prefer\": [\"a\", \"b\"], \"avoid\": [\"c\", \"b\"]}",
         "election \"e\": \"b\" is both in \"prefer\" and in \"avoid\""},
        {"{\"exec\": \"w\", \"prefer\": \"a\"}",
         "invalid \"prefer\" \"a\" in election \"e\" of c.json: expected an array of member names"},
        {"{\"exec\": \"w\", \"avoid\": [\"a=h:1\"]}",
         "invalid \"avoid\" (an array) in election \"e\" of c.json: \"a=h:1\" is not a member "
         "name"},
        {"{\"exec\": \"w\", \"avoid\": [\"a\", 1]}", "expected an array of member names"},
        {"{\"exec\": \"w\", \"prefer\": [\"a\", \"a\"]}", "\"a\" is named twice"},
    };
    elections_refused(cases, sizeof(cases) / sizeof(cases[0]));
    char list[512] = "";
    for (int i = 0; i <= SIDECAR_CONFIG_ELECTION_NODES_MAX; i++) {
        size_t n = strlen(list);
        snprintf(list + n, sizeof(list) - n, "%s\"n%d\"", i ? "," : "", i);
    }
    char file[1024];
    snprintf(file, sizeof(file), ELECTIONS("{\"e\": {\"exec\": \"w\", \"prefer\": [%s]}}"), list);
    refused((run_t){.argv = ARGV(BASE), .file = file}, "more than 16 names");
    /* An empty list, and names that are not members yet (warned about, not refused). */
    ok((run_t){.argv = ARGV(BASE),
               .file =
                   ELECTIONS("{\"e\": {\"exec\": \"w\", \"prefer\": [], \"avoid\": [\"d\"]}}")});
    cr_assert_eq(cfg.elections.items[0].prefer.n, 0);
    cr_assert_not(cfg.elections.items[0].avoid.refs[0].known);
    /* With --join this node is not in --peers, yet its own name is known. */
    ok((run_t){.argv = ARGV("--name", "d", "--join", "--peers", PEERS3, "--listen-peer",
                            "127.0.0.1:7004", "--data-dir", "/x"),
               .file = ELECTIONS("{\"e\": {\"exec\": \"w\", \"prefer\": [\"d\", \"a\"]}}")});
    cr_assert(cfg.elections.items[0].prefer.refs[0].known);
    cr_assert(cfg.elections.items[0].prefer.refs[1].known);
}

Test(config, unknown_prefer_and_avoid_names_are_warned_about)
{
    ok((run_t){.argv = ARGV(BASE),
               .file = ELECTIONS("{\"e\": {\"exec\": \"w\", \"prefer\": [\"a\", \"ghost\"]},"
                                 " \"f\": {\"exec\": \"w\", \"avoid\": [\"spectre\"]},"
                                 " \"g\": {\"exec\": \"w\", \"avoid\": [\"b\"]}}")});
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    sidecar_log_init(SIDECAR_LOG_INFO, SIDECAR_LOG_TEXT, fileno(f), "a");
    size_t n = sidecar_config_elections_warn(&cfg.elections);
    sidecar_log_init(SIDECAR_LOG_INFO, SIDECAR_LOG_TEXT, 2, NULL);
    char text[2 * SIDECAR_LOG_LINE_MAX + 1];
    ssize_t got = pread(fileno(f), text, sizeof(text) - 1, 0);
    fclose(f);
    cr_assert_gt(got, 0);
    text[got] = '\0';
    cr_assert_eq(n, 2);
    cr_assert(strstr(text, "WARN") && strstr(text, "election=e") && strstr(text, "member=ghost") &&
                  strstr(text, "list=prefer"),
              "%s", text);
    cr_assert(strstr(text, "election=f") && strstr(text, "member=spectre") &&
                  strstr(text, "list=avoid"),
              "%s", text);
    cr_assert_null(strstr(text, "election=g"), "%s", text);
}

/* A file of n elections "e0000"... each {"exec": "w"}; the caller frees it. */
static char *many_elections(size_t n)
{
    size_t cap = 64 + n * 32;
    char *text = malloc(cap);
    cr_assert_not_null(text);
    size_t o = (size_t)snprintf(text, cap, "{\"elections\": {");
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(text + o, cap - o, "%s\"e%04zu\": {\"exec\": \"w\"}", i ? ", " : "",
                              i);
    }
    snprintf(text + o, cap - o, "}}");
    return text;
}

Test(config, elections_and_their_commands_are_bounded)
{
    char *text = many_elections(SIDECAR_CONFIG_ELECTIONS_MAX);
    ok((run_t){.argv = ARGV(BASE), .file = text});
    cr_assert_eq(cfg.elections.n, SIDECAR_CONFIG_ELECTIONS_MAX, "1,000 elections in one group");
    cr_assert_str_eq(cfg.elections.items[1023].name, "e1023");
    free(text);
    text = many_elections(SIDECAR_CONFIG_ELECTIONS_MAX + 1);
    refused((run_t){.argv = ARGV(BASE), .file = text}, "the config file: more than 1024 elections");
    free(text);

    /* argv: at most SIDECAR_CONFIG_ARGV_MAX words of SIDECAR_CONFIG_VALUE_MAX bytes, as --exec */
    static char file[2 * SIDECAR_CONFIG_VALUE_MAX];
    size_t o = (size_t)snprintf(file, sizeof(file), "{\"elections\": {\"e\": {\"exec\": \"w");
    for (int i = 0; i < SIDECAR_CONFIG_ARGV_MAX; i++) {
        o += (size_t)snprintf(file + o, sizeof(file) - o, " x");
    }
    snprintf(file + o, sizeof(file) - o, "\"}}}");
    refused((run_t){.argv = ARGV(BASE), .file = file},
            "in election \"e\" of the config file: more than 256 words");
    o = (size_t)snprintf(file, sizeof(file), "{\"elections\": {\"e\": {\"on-stop\": [\"w\", \"");
    memset(file + o, 'x', SIDECAR_CONFIG_VALUE_MAX + 1);
    o += SIDECAR_CONFIG_VALUE_MAX + 1;
    snprintf(file + o, sizeof(file) - o, "\"]}}}");
    refused((run_t){.argv = ARGV(BASE), .file = file},
            "in election \"e\" of the config file: an argument is longer than 4096 bytes");
}

Test(config, elections_come_from_the_file_only)
{
    refused((run_t){.argv = ARGV(BASE, "--elections", "{}")}, "unknown flag \"--elections\"");
    /* set, the variable is refused rather than ignored (issue 21, item 7) */
    refused((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_ELECTIONS={\"e\": {\"exec\": \"w\"}}")},
            "\"ELECTD_ELECTIONS\" is not read: named elections are declared in the config file "
            "only");
    char *help = render_help();
    cr_assert(strstr(help, "Named elections are declared in the config file only"), "%s", help);
    free(help);
}

Test(config, election_programs_are_checked_at_start)
{
    char dir[] = "/tmp/electd-elections-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    refused((run_t){.argv = ARGV("--name", "a", "--peers", PEERS3, "--data-dir", dir),
                    .file = ELECTIONS("{\"e\": {\"on-start\": \"/bin/sh -c true\", \"on-stop\": "
                                      "\"/nonexistent/hook stop\"}}"),
                    .fs = true},
            "election \"e\": \"on-stop\" program \"/nonexistent/hook\" is not executable");
    ok((run_t){.argv = ARGV("--name", "a", "--peers", PEERS3, "--data-dir", dir),
               .file = ELECTIONS("{\"e\": {\"exec\": [\"/bin/sh\", \"-c\", \"true\"]}, "
                                 "\"f\": {\"exec\": \"found-in-path\"}}"),
               .fs = true});
    rmdir(dir);
}

/* ---- reloading the elections ------------------------------------------------------------ */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    cr_assert_eq(fclose(f), 0);
}

Test(config, reload_reads_the_elections_anew)
{
    char path[] = "/tmp/electd-reload-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    write_file(path, "{\"tick\": \"5ms\", \"elections\": {\"a1\": {\"exec\": \"w\"}, \"b1\": "
                     "{\"on-start\": \"h\"}}}");
    ok((run_t){.argv = ARGV(BASE, "--config", path, "--hook-timeout", "2s")});
    cr_assert_eq(cfg.elections.n, 2);

    /* one removed, one changed, two added; other settings changed are not returned */
    write_file(path, "{\"tick\": \"20ms\", \"election-timeout\": \"2s\", \"elections\": {\n"
                     " \"b1\": {\"exec\": \"w2\", \"prefer\": [\"c\"]},\n"
                     " \"c1\": {\"on-stop\": \"h stop\"},\n"
                     " \"d1\": {\"exec\": \"w\", \"stop-timeout\": \"100ms\"}}}");
    sidecar_election_list_t list = {0};
    char rerr[SIDECAR_CONFIG_ERR_MAX];
    cr_assert_eq(sidecar_config_elections_reload(&cfg, &list, rerr, sizeof(rerr)), 0, "%s", rerr);
    cr_assert_eq(list.n, 3);
    cr_assert_str_eq(list.items[0].name, "b1");
    cr_assert_eq(list.items[0].mode, SIDECAR_ELECTION_EXEC);
    cr_assert_str_eq(list.items[0].exec.argv[0], "w2");
    cr_assert(list.items[0].prefer.refs[0].known);
    cr_assert_eq(list.items[1].hook_timeout_ms, 2000, "the running --hook-timeout fills in");
    cr_assert_eq(list.items[2].stop_timeout_ms, 100);

    /* the running configuration is untouched */
    cr_assert_eq(cfg.elections.n, 2);
    cr_assert_str_eq(cfg.elections.items[0].name, "a1");
    cr_assert_eq(cfg.elections.items[1].mode, SIDECAR_ELECTION_HOOKS);
    cr_assert_eq(cfg.tick_ms, 5);
    cr_assert_eq(cfg.election_timeout_ms, 1000);
    sidecar_config_elections_free(&list);
    cr_assert_eq(list.n, 0);
    cr_assert_null(list.items);
    sidecar_config_elections_free(&list); /* twice is harmless */

    /* a file without "elections" now declares none */
    write_file(path, "{\"tick\": \"5ms\"}");
    cr_assert_eq(sidecar_config_elections_reload(&cfg, &list, rerr, sizeof(rerr)), 0, "%s", rerr);
    cr_assert_eq(list.n, 0);
    unlink(path);
}

/* The reload is refused with one line naming the problem, and *out is left empty. */
static void reload_refused(const char *path, const char *text, const char *needle)
{
    sidecar_election_list_t list = {.n = 99};
    char rerr[SIDECAR_CONFIG_ERR_MAX];
    if (text) {
        write_file(path, text);
    }
    int rc = sidecar_config_elections_reload(&cfg, &list, rerr, sizeof(rerr));
    cr_assert_lt(rc, 0, "expected a refusal containing [%s]", needle);
    cr_assert(strstr(rerr, needle), "error [%s] lacks [%s]", rerr, needle);
    cr_assert(strncmp(rerr, "electd: ", 8) == 0 && strchr(rerr, '\n') == NULL, "%s", rerr);
    cr_assert_eq(list.n, 0);
    cr_assert_null(list.items);
}

Test(config, reload_refuses_an_invalid_file_and_keeps_the_running_set)
{
    char path[] = "/tmp/electd-reload-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    write_file(path, ELECTIONS("{\"e\": {\"exec\": \"w\"}}"));
    ok((run_t){.argv = ARGV(BASE, "--config", path)});

    reload_refused(path, "{\"elections\": {\"e\": {\"exec\": \"w\"}", ":1:");
    reload_refused(path,
                   ELECTIONS("{\"e\": {\"exec\": \"w\", \"avoid\": [\"a\"], "
                             "\"prefer\": [\"a\"]}}"),
                   "election \"e\": \"a\" is both in \"prefer\" and in \"avoid\"");
    reload_refused(path, ELECTIONS("{\"e\": {\"exec\": \"w\", \"stop-timeout\": \"900ms\"}}"),
                   "must be less than the leader lease (880ms");
    reload_refused(path, ELECTIONS("{\"default\": {\"exec\": \"w\"}}"), "is reserved");
    reload_refused(path, ELECTIONS("{\"e\": {\"exec\": \"/nonexistent/w\"}}"),
                   "election \"e\": \"exec\" program \"/nonexistent/w\" is not executable");
    reload_refused(path, "{\"tik\": \"5ms\", \"elections\": {}}", "unknown setting \"tik\"");
    reload_refused(path, "{\"tick\": \"fast\", \"elections\": {}}",
                   "invalid \"tick\" \"fast\" in /tmp/electd-reload-");
    reload_refused(path, "[]", "expected a JSON object of settings");
    unlink(path);
    reload_refused(path, NULL, "cannot read --config \"/tmp/electd-reload-");

    /* the running set is what it was */
    cr_assert_eq(cfg.elections.n, 1);
    cr_assert_str_eq(cfg.elections.items[0].name, "e");

    ok((run_t){.argv = ARGV(BASE)});
    reload_refused(path, NULL, "no config file to reload the elections from");
}

/* ---- reloading everything (SIGHUP) -------------------------------------------------------- */

/* sidecar_config_reload of cfg with the command line and environment of r. */
static int reload_all(run_t r, sidecar_config_reload_t *out, char *rerr, size_t len)
{
    sidecar_config_source_t src = source_of(r);
    return sidecar_config_reload(&cfg, &src, out, rerr, len);
}

static sidecar_config_mask_t masks(const char *const *names)
{
    sidecar_config_mask_t m = 0;
    for (size_t i = 0; names[i]; i++) {
        cr_assert_neq(sidecar_config_mask_of(names[i]), 0, "%s", names[i]);
        m |= sidecar_config_mask_of(names[i]);
    }
    return m;
}
#define MASK(...) masks((const char *const[]){__VA_ARGS__, NULL})

static void temp_config(char *path, const char *text)
{
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    write_file(path, text);
}

Test(config, reload_sorts_the_settings_into_changed_restart_and_kept)
{
    char path[] = "/tmp/electd-reload-XXXXXX", names[200], rerr[SIDECAR_CONFIG_ERR_MAX];
    temp_config(path, "{\"on-start\": \"h1\", \"hook-timeout\": \"2s\", \"http-token\": \"t1\", "
                      "\"log-format\": \"json\"}");
    const char **argv = ARGV(BASE, "--config", path, "--log-level", "warn");
    const char **env = ENV("ELECTD_STOP_TIMEOUT=300ms");
    ok((run_t){.argv = argv, .env = env});
    cr_assert_eq(cfg.log_format, SIDECAR_LOG_JSON);

    write_file(path, "{\"on-start\": \"h2 x\", \"hook-timeout\": \"3s\", \"http-token\": \"t2\", "
                     "\"log-level\": \"debug\", \"stop-timeout\": \"400ms\", \"tick\": \"5ms\"}");
    sidecar_config_reload_t r;
    cr_assert_eq(reload_all((run_t){.argv = argv, .env = env}, &r, rerr, sizeof(rerr)), 0, "%s",
                 rerr);
    cr_assert_eq(r.changed, MASK("log-format", "on-start", "hook-timeout", "http-token"));
    cr_assert_eq(r.restart, MASK("tick"));
    cr_assert_eq(r.kept, MASK("stop-timeout", "log-level"), "the flag and the variable win");
    sidecar_config_mask_names(r.kept, names, sizeof(names));
    cr_assert_str_eq(names, "stop-timeout, log-level");
    sidecar_config_mask_names(0, names, sizeof(names));
    cr_assert_str_eq(names, "none");

    /* Nothing is applied before sidecar_config_reload_apply; then the changed settings only. */
    cr_assert_str_eq(cfg.on_start.argv[0], "h1");
    sidecar_config_reload_apply(&cfg, &r);
    cr_assert_eq(cfg.log_format, SIDECAR_LOG_TEXT);
    cr_assert_eq(cfg.log_level, SIDECAR_LOG_WARN);
    cr_assert_eq(cfg.on_start.argc, 2);
    cr_assert_str_eq(cfg.on_start.argv[1], "x");
    cr_assert_eq(cfg.hook_timeout_ms, 3000);
    cr_assert_str_eq(cfg.http_token, "t2");
    cr_assert_eq(cfg.stop_timeout_ms, 300);
    cr_assert_eq(cfg.tick_ms, 10, "a restart-only setting is not applied");
    cr_assert_str_eq(r.next.http_token, "t1", "the replaced value is r's to free");
    sidecar_config_reload_free(&r);
    sidecar_config_reload_free(&r); /* twice is harmless */
    unlink(path);
}

Test(config, reload_changes_hooks_only_within_the_running_mode)
{
    char path[] = "/tmp/electd-reload-XXXXXX", rerr[SIDECAR_CONFIG_ERR_MAX];
    sidecar_config_reload_t r;
    temp_config(path, "{}");
    const char **none = ARGV(BASE, "--config", path);
    ok((run_t){.argv = none});
    write_file(path, "{\"on-start\": \"h\", \"log-level\": \"debug\"}");
    cr_assert_eq(reload_all((run_t){.argv = none}, &r, rerr, sizeof(rerr)), 0, "%s", rerr);
    cr_assert_eq(r.changed, MASK("log-level"), "no hooks yet: adding one needs a restart");
    cr_assert_eq(r.restart, MASK("on-start"));
    sidecar_config_reload_free(&r);

    /* Beside a supervised workload on-change may change; --exec needs a restart. */
    const char **exec = ARGV(BASE, "--config", path, "--exec", "--", "w");
    write_file(path, "{}");
    ok((run_t){.argv = exec});
    write_file(path, "{\"on-change\": \"h\"}");
    cr_assert_eq(reload_all((run_t){.argv = exec}, &r, rerr, sizeof(rerr)), 0, "%s", rerr);
    cr_assert_eq(r.changed, MASK("on-change"));
    cr_assert_eq(r.restart, 0);
    sidecar_config_reload_free(&r);
    unlink(path);
}

/* Refused with one line naming the problem; *out left empty and cfg untouched. */
static void reload_all_refused(run_t run, const char *path, const char *text, const char *needle)
{
    sidecar_config_reload_t r;
    char rerr[SIDECAR_CONFIG_ERR_MAX];
    write_file(path, text);
    int rc = reload_all(run, &r, rerr, sizeof(rerr));
    cr_assert_lt(rc, 0, "expected a refusal containing [%s]", needle);
    cr_assert(strstr(rerr, needle), "error [%s] lacks [%s]", rerr, needle);
    cr_assert(strncmp(rerr, "electd: ", 8) == 0 && strchr(rerr, '\n') == NULL, "%s", rerr);
    cr_assert_eq(r.changed | r.restart | r.kept, 0);
    cr_assert_null(r.next.name);
}

Test(config, reload_refuses_a_file_that_would_not_run_with_the_running_settings)
{
    char path[] = "/tmp/electd-reload-XXXXXX";
    temp_config(path, "{\"http-token\": \"t\"}");
    run_t run = {.argv = ARGV(BASE, "--config", path, "--log-level", "warn", "--listen-http",
                              "10.0.0.1:7480")};
    ok(run);
    /* the lease stays the running one (a new election timeout needs a restart) */
    reload_all_refused(run, path,
                       "{\"http-token\": \"t\", \"election-timeout\": \"5s\", \"stop-timeout\": "
                       "\"2s\"}",
                       "--stop-timeout (2s) must be less than the leader lease (880ms");
    reload_all_refused(run, path, "{}", "nothing would authenticate its mutating endpoints");
    reload_all_refused(run, path, "{\"http-token\": \"t\", \"on-stop\": \"/nonexistent/h\"}",
                       "--on-stop program \"/nonexistent/h\" is not executable");
    reload_all_refused(run, path, "{\"http-token\": \"t\", \"log-level\": \"loud\"}",
                       "invalid \"log-level\" \"loud\"");
    reload_all_refused(run, path, "{\"http-token\": \"t\", \"log-levle\": \"info\"}",
                       "unknown setting \"log-levle\"");
    cr_assert_str_eq(cfg.http_token, "t");
    cr_assert_eq(cfg.stop_timeout_ms, 500);
    unlink(path);
}

/* ---- peer TLS and the secure default ----------------------------------------------------- */

Test(config, peer_tls_takes_all_three_files_or_none)
{
    ok((run_t){.argv = ARGV(BASE, "--peer-cert-file", "/c.pem", "--peer-key-file", "/k.pem",
                            "--peer-trusted-ca-file", "/ca.pem")});
    cr_assert(sidecar_config_peer_tls(&cfg));
    cr_assert(cfg.peer_cert_check_name, "the name check is on by default");
    cr_assert_str_eq(cfg.peer_trusted_ca_file, "/ca.pem");
    ok((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_PEER_CERT_CHECK_NAME=false")});
    cr_assert_not(sidecar_config_peer_tls(&cfg));
    cr_assert_not(cfg.peer_cert_check_name);
    refused((run_t){.argv = ARGV(BASE, "--peer-cert-file", "/c.pem")},
            "peer TLS needs all three of --peer-cert-file, --peer-key-file and "
            "--peer-trusted-ca-file; missing: --peer-key-file, --peer-trusted-ca-file");
    refused((run_t){.argv = ARGV(BASE, "--peer-cert-file", "/c.pem"),
                    .file = "{\"peer-key-file\": \"/k.pem\"}"},
            "missing: --peer-trusted-ca-file");
}

Test(config, peer_tls_files_must_be_readable)
{
    refused((run_t){.argv = ARGV("--name", "a", "--peers", PEERS3, "--data-dir", "/tmp",
                                 "--peer-cert-file", "/nonexistent/a.crt", "--peer-key-file",
                                 "/nonexistent/a.key", "--peer-trusted-ca-file", "/nonexistent/ca"),
                    .fs = true},
            "cannot read --peer-cert-file \"/nonexistent/a.crt\": No such file or directory");
}

Test(config, peer_port_reachable_from_other_hosts_needs_authentication)
{
    const char *exposed[] = {"0.0.0.0:7001", "[::]:7001", "10.0.0.1:7001", "node-a.example:7001"};
    for (size_t i = 0; i < sizeof(exposed) / sizeof(exposed[0]); i++) {
        refused((run_t){.argv = ARGV(BASE, "--listen-peer", exposed[i])},
                "can be reached from other hosts but members are not authenticated: set "
                "--cluster-token (a shared secret) or peer TLS");
        cr_assert(strstr(err, "--insecure-peer"), "%s", err);
        ok((run_t){.argv = ARGV(BASE, "--listen-peer", exposed[i], TOKEN)});
        cr_assert_not(sidecar_config_peer_insecure(&cfg));
        ok((run_t){.argv = ARGV(BASE, "--listen-peer", exposed[i], "--peer-cert-file", "/c",
                                "--peer-key-file", "/k", "--peer-trusted-ca-file", "/ca")});
        cr_assert_not(sidecar_config_peer_insecure(&cfg));
        ok((run_t){.argv = ARGV(BASE, "--listen-peer", exposed[i]),
                   .env = ENV("ELECTD_INSECURE_PEER=true")});
        cr_assert(sidecar_config_peer_insecure(&cfg), "%s", exposed[i]);
    }
    refused((run_t){.argv = ARGV("--name", "a", "--peers", "a=10.1.2.3:7001", "--data-dir", "/x")},
            "--listen-peer 10.1.2.3:7001 can be reached");
    refused((run_t){.argv = ARGV(BASE, "--listen-peer", "[fd00::2]:7001")},
            "--listen-peer [fd00::2]:7001 can be reached");
    const char *local[] = {"127.0.0.1:7001", "127.9.8.7:7001", "[::1]:7001", "localhost:7001",
                           "[::ffff:127.0.0.1]:7001"};
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
        ok((run_t){.argv = ARGV(BASE, "--listen-peer", local[i])});
        cr_assert_not(sidecar_config_peer_insecure(&cfg), "%s", local[i]);
    }
}

/* ---- typos and bad values: flags, environment and file alike (issue 21, item 7) -------- */

Test(config, unknown_electd_variables_are_refused_with_a_suggestion)
{
    refused((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_ELECTON_TIMEOUT=5s")},
            "unknown environment variable \"ELECTD_ELECTON_TIMEOUT\" (did you mean "
            "--election-timeout / ELECTD_ELECTION_TIMEOUT?)");
    refused((run_t){.argv = ARGV(BASE), .env = ENV("HOME=/root", "ELECTD_BOGUS=1")},
            "unknown environment variable \"ELECTD_BOGUS\"");
    cr_assert_null(strstr(err, "did you mean"), "nothing close to BOGUS: [%s]", err);
    refused((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_election_timeout=5s")},
            "did you mean --election-timeout / ELECTD_ELECTION_TIMEOUT?");
    refused((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_HELP=1")},
            "\"ELECTD_HELP\" is not read from the environment");
    /* a secret's typo is named, its value never echoed */
    refused((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_CLUSTER_TOKN=token-secret")},
            "did you mean --cluster-token / ELECTD_CLUSTER_TOKEN?");
    cr_assert_null(strstr(err, "token-secret"));
    /* empty means unset, as for known variables */
    ok((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_BOGUS=")});
    /* the variables electd gives its workload and the client's own are not electd's
     * settings: an electd started from inside a workload starts */
    ok((run_t){.argv = ARGV(BASE),
               .env =
                   ENV("ELECTD_ROLE=primary", "ELECTD_NODE_NAME=b", "ELECTD_NODE_ID=b",
                       "ELECTD_LEADER_NAME=b", "ELECTD_LEADER_ID=b", "ELECTD_HTTP=127.0.0.1:7480",
                       "ELECTD_HTTP_URL=http://127.0.0.1:7480", "ELECTD_TERM=3",
                       "ELECTD_FENCING_TOKEN=3", "ELECTD_LEASE_MS=880", "ELECTD_WORKLOAD_TOKEN=x",
                       "ELECTD_CACERT=/ca.pem", "ELECTD_CERT=/c.pem", "ELECTD_KEY=/k.pem",
                       "ELECTD_TLS_MODULE=/m.so", "ELECTD_HEALTH_PORT=7480")});
    /* known settings and ELECTD_CONFIG still work */
    ok((run_t){.argv = ARGV(BASE), .env = ENV("ELECTD_TICK=5ms", "ELECTD_CONFIG=")});
    cr_assert_eq(cfg.tick_ms, 5);
}

Test(config, flag_and_file_typos_get_a_suggestion)
{
    refused((run_t){.argv = ARGV(BASE, "--electon-timeout", "5s")},
            "unknown flag \"--electon-timeout\" (did you mean --election-timeout?)");
    refused((run_t){.argv = ARGV(BASE, "--electon-timeout=5s")},
            "unknown flag \"--electon-timeout=5s\" (did you mean --election-timeout?)");
    refused((run_t){.argv = ARGV(BASE, "--bogus", "1")}, "unknown flag \"--bogus\"");
    cr_assert_null(strstr(err, "did you mean"), "nothing close to bogus: [%s]", err);
    refused(
        (run_t){.argv = ARGV("--config", "c.json", BASE), .file = "{\"electon-timeout\": \"1s\"}"},
        "c.json: unknown setting \"electon-timeout\" (did you mean \"election-timeout\"?)");
    refused(
        (run_t){.argv = ARGV("--config", "c.json", BASE), .file = "{\"election_timeout\": \"1s\"}"},
        "(did you mean \"election-timeout\"?)");
}

Test(config, file_strings_with_a_nul_are_refused)
{
    refused((run_t){.argv = ARGV("--config", "c.json", "--peers", PEERS3, "--data-dir", "/d"),
                    .file = "{\"name\": \"a\\u0000b\"}"},
            "c.json: \"name\" contains a NUL character (\\u0000)");
    refused((run_t){.argv = ARGV("--config", "c.json", BASE),
                    .file = "{\"exec\": [\"/bin/w\", \"x\\u0000y\"]}"},
            "\"exec\" contains a NUL character");
    refused((run_t){.argv = ARGV("--config", "c.json", BASE),
                    .file = "{\"elections\": {\"e\": {\"exec\": \"w\\u0000\"}}}"},
            "\"elections\" contains a NUL character");
    /* an escaped backslash before u0000 is the text \u0000, not a NUL */
    ok((run_t){.argv = ARGV("--config", "c.json", BASE),
               .file = "{\"exec\": [\"/bin/w\", \"\\\\u0000\"]}"});
    cr_assert_str_eq(cfg.exec.argv[1], "\\u0000");
}

/* What the man page and the completions offer for a setting's value is what the parse takes:
 * every choice of sidecar_config_setting_choices() is accepted as --flag=choice (the witness
 * and join rows are left out: they change what else the command line needs). */
Test(config, setting_choices_are_accepted_values)
{
    size_t with_choices = 0;
    char flag[128];
    for (size_t i = 0; i < sidecar_config_setting_count(); i++) {
        const sidecar_config_setting_t *s = sidecar_config_setting_at(i);
        const char *const *choices = sidecar_config_setting_choices(i);
        if (choices == NULL) {
            continue;
        }
        with_choices++;
        cr_assert_not_null(s->unit, "--%s has choices but takes no value", s->name);
        cr_assert_not_null(choices[0], "--%s has an empty list of choices", s->name);
        if (strcmp(s->name, "witness") == 0 || strcmp(s->name, "join") == 0) {
            continue;
        }
        for (size_t k = 0; choices[k] != NULL; k++) {
            snprintf(flag, sizeof(flag), "--%s=%s", s->name, choices[k]);
            ok((run_t){.argv = ARGV(BASE, flag)});
        }
    }
    /* log-level, log-format and the booleans. */
    cr_assert_geq(with_choices, 10);
    size_t level = 0;
    for (size_t i = 0; i < sidecar_config_setting_count(); i++) {
        if (strcmp(sidecar_config_setting_at(i)->name, "log-level") == 0) {
            level = i;
        }
    }
    const char *const *levels = sidecar_config_setting_choices(level);
    cr_assert_not_null(levels);
    cr_assert_str_eq(levels[0], "debug");
    snprintf(flag, sizeof(flag), "--log-level=%s", "verbose");
    refused((run_t){.argv = ARGV(BASE, flag)}, "--log-level");
}
