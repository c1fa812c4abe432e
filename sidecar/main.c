/* main.c — the electd daemon: configuration, the loop, signals (SIGTERM/SIGINT: graceful
 * shutdown; SIGHUP: certificates and the config file re-read; SIGUSR1/SIGUSR2: ignored) and
 * graceful shutdown. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api.h"
#include "cli.h"
#include "config.h"
#include "common.h"
#include "named.h"
#include "node.h"
#include "workload.h"

typedef struct daemon {
    uv_loop_t *loop;
    sidecar_config_t cfg;
    sidecar_config_source_t src; /* the command line and environment, resolved again on SIGHUP */
    char redacted_token[SIDECAR_LOG_SECRET_MAX + 1]; /* the HTTP token the log redacts, "" */
    sidecar_node_t *node;
    sidecar_api_t *api;
    sidecar_workload_t *workload;
    sidecar_named_t *named;
    uv_signal_t sigterm, sigint, sighup, sigusr1, sigusr2;
    uv_timer_t shutdown_timer;
    uv_timer_t insecure_timer; /* --insecure-peer: the warning repeated */
    uv_timer_t trim_timer;     /* code pages handed back (sidecar_trim_code) */
    sidecar_node_observer_t obs;
    bool stopping;
    bool finishing;
    bool handing_over;
    int exit_code;
} daemon_t;

static void close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void node_closed_cb(void *ud)
{
    daemon_t *d = ud;
    d->node = NULL;
    /* Whatever is left (signal handlers, the shutdown timer) closes now. */
    uv_walk(d->loop, close_walk_cb, NULL);
}

static void workload_closed_cb(void *ud)
{
    daemon_t *d = ud;
    d->workload = NULL;
    sidecar_node_close(d->node, node_closed_cb, d);
}

static void named_closed_cb(void *ud)
{
    daemon_t *d = ud;
    d->named = NULL;
    if (d->workload != NULL)
        sidecar_workload_close(d->workload, workload_closed_cb, d);
    else
        sidecar_node_close(d->node, node_closed_cb, d);
}

static void api_closed_cb(void *ud)
{
    daemon_t *d = ud;
    d->api = NULL;
    if (d->named != NULL)
        sidecar_named_close(d->named, named_closed_cb, d);
    else
        named_closed_cb(d);
}

static void named_stopped_cb(void *ud)
{
    daemon_t *d = ud;
    if (d->api != NULL)
        sidecar_api_close(d->api, api_closed_cb, d);
    else
        api_closed_cb(d);
}

static void workload_stopped_cb(void *ud)
{
    daemon_t *d = ud;
    if (d->named != NULL)
        sidecar_named_stop(d->named, named_stopped_cb, d);
    else
        named_stopped_cb(d);
}

/* Order: the workload stops (hooks: on-stop runs), then the named elections' workloads, the API
 * closes, then the node. */
static void finish_shutdown(daemon_t *d)
{
    if (d->finishing)
        return;
    d->finishing = true;
    uv_timer_stop(&d->shutdown_timer);
    sidecar_node_unobserve(d->node, &d->obs);
    SIDECAR_LOG(SIDECAR_LOG_INFO, "shutting down");
    if (d->workload != NULL)
        sidecar_workload_stop(d->workload, workload_stopped_cb, d);
    else
        workload_stopped_cb(d);
}

static void shutdown_timeout_cb(uv_timer_t *t)
{
    daemon_t *d = t->data;
    SIDECAR_LOG(SIDECAR_LOG_WARN, "leadership handover did not complete in time; stopping anyway");
    finish_shutdown(d);
}

static void changed_cb(void *ud, const sidecar_node_state_t *st)
{
    daemon_t *d = ud;
    if (d->stopping && d->handing_over && st->role != RAFT_LEADER)
        finish_shutdown(d);
}

static void handover_cb(void *ud, int rv)
{
    daemon_t *d = ud;
    if (rv != 0) {
        finish_shutdown(d);
        return;
    }
    d->handing_over = true;
    uv_timer_stop(&d->shutdown_timer);
    uv_timer_start(&d->shutdown_timer, shutdown_timeout_cb, d->cfg.election_timeout_ms, 0);
}

/* SIGTERM/SIGINT: a leader hands leadership over first, so the cluster does not wait out an
 * election timeout; a follower just leaves. */
static void signal_cb(uv_signal_t *s, int signum)
{
    daemon_t *d = s->data;
    if (d->stopping) {
        SIDECAR_LOG(SIDECAR_LOG_WARN, "second signal: stopping at once",
                    SIDECAR_LOG_INT("signal", signum));
        finish_shutdown(d);
        return;
    }
    d->stopping = true;
    sidecar_node_state_t st;
    sidecar_node_state(d->node, &st);
    SIDECAR_LOG(SIDECAR_LOG_INFO, "signal received", SIDECAR_LOG_INT("signal", signum));
    if (st.role == RAFT_LEADER)
        SIDECAR_LOG(SIDECAR_LOG_INFO, "handing leadership over before exit");
    if (st.role == RAFT_LEADER && sidecar_workload_handover(d->workload, 0, handover_cb, d) == 0) {
        if (d->finishing)
            return; /* nothing to hand over to: already shutting down */
        /* Bounded: the workload's stop, then an election timeout for the transfer. */
        uv_timer_start(&d->shutdown_timer, shutdown_timeout_cb,
                       (uint64_t)d->cfg.stop_timeout_ms + d->cfg.hook_timeout_ms +
                           d->cfg.election_timeout_ms,
                       0);
        return;
    }
    finish_shutdown(d);
}

/* A new HTTP token (NULL: none): the log redacts it from now on (the previous one's slot is
 * reused; a removed token stays redacted), and the API asks for it. 0, or -1 with nothing in
 * use changed. */
static int token_apply(daemon_t *d, const char *token)
{
    const char *old = d->redacted_token[0] ? d->redacted_token : NULL;
    if (token != NULL && sidecar_log_replace_secret(old, token) != 0)
        return -1;
    if (d->api != NULL && sidecar_api_set_token(d->api, token) != 0) {
        if (token != NULL && old != NULL)
            sidecar_log_replace_secret(token, old);
        return -1;
    }
    if (token != NULL)
        snprintf(d->redacted_token, sizeof(d->redacted_token), "%s", token);
    return 0;
}

/* The lines that close a reload of the file: what waits for a restart, what a flag or
 * variable kept, and last what changed — written even when the new level would filter info
 * lines out, at that level. */
static void reload_report(const daemon_t *d, const sidecar_config_reload_t *r)
{
    char names[600];
    if (r->restart) {
        sidecar_config_mask_names(r->restart, names, sizeof(names));
        SIDECAR_LOG(SIDECAR_LOG_WARN,
                    "reload: a changed setting needs a restart to take effect; the running value "
                    "stays",
                    SIDECAR_LOG_STR("settings", names));
    }
    if (r->kept) {
        sidecar_config_mask_names(r->kept, names, sizeof(names));
        SIDECAR_LOG(SIDECAR_LOG_INFO,
                    "reload: kept the value of the command line or environment; the file's value "
                    "is not used",
                    SIDECAR_LOG_STR("settings", names));
    }
    sidecar_config_mask_names(r->changed, names, sizeof(names));
    sidecar_log_level_t level =
        d->cfg.log_level > SIDECAR_LOG_INFO ? d->cfg.log_level : SIDECAR_LOG_INFO;
    SIDECAR_LOG(level, "reload: done", SIDECAR_LOG_STR("changed", names),
                SIDECAR_LOG_UINT("needs_restart", (uint64_t)__builtin_popcountll(r->restart)),
                SIDECAR_LOG_STR("log_level", sidecar_log_level_name(d->cfg.log_level)));
}

/* The config file again: everything is resolved and checked first (sidecar_config_reload);
 * a file that fails is refused and every running setting stays. Then the token (the one step
 * that can fail: then nothing changes), the settings themselves (read where they are used:
 * a hook's command and timeouts at its next run, so one that runs finishes as it began), the
 * logger and the named elections. */
static void reload_config(daemon_t *d)
{
    sidecar_config_reload_t r;
    char err[SIDECAR_CONFIG_ERR_MAX];
    if (sidecar_config_reload(&d->cfg, &d->src, &r, err, sizeof(err)) != 0) {
        SIDECAR_LOG(SIDECAR_LOG_ERROR,
                    "reload refused: the config file is not valid; all running settings stay",
                    SIDECAR_LOG_STR("error", err));
        return;
    }
    if ((r.changed & sidecar_config_mask_of("http-token")) && token_apply(d, r.next.http_token)) {
        SIDECAR_LOG(SIDECAR_LOG_ERROR,
                    "reload refused: the new HTTP token cannot be installed (out of memory or "
                    "too many secrets); all running settings stay");
        sidecar_config_reload_free(&r);
        return;
    }
    sidecar_config_reload_apply(&d->cfg, &r);
    sidecar_log_init(d->cfg.log_level, d->cfg.log_format, 2, d->cfg.name);
    if (d->named != NULL) {
        sidecar_election_list_t list = r.next.elections; /* named takes it over */
        memset(&r.next.elections, 0, sizeof(r.next.elections));
        sidecar_named_reload(d->named, &list);
    }
    reload_report(d, &r);
    sidecar_config_reload_free(&r);
}

/* SIGHUP: every registered TLS context (peer transport, HTTP API) re-reads its files; a
 * file that fails to load is refused and its context keeps the old one (sidecar_reload_run
 * logs why). With a --config file, the configuration is resolved again (reload_config): the
 * log level and format, the hooks and their timeouts, the HTTP token and the named elections
 * change; other settings that differ need a restart and are named. The last line says what
 * changed. SIGUSR1/SIGUSR2 are logged and ignored (their default action would kill
 * electd). */
static void reload_signal_cb(uv_signal_t *s, int signum)
{
    if (signum != SIGHUP) {
        SIDECAR_LOG(SIDECAR_LOG_INFO, "signal ignored",
                    SIDECAR_LOG_STR("signal", signum == SIGUSR1 ? "SIGUSR1" : "SIGUSR2"));
        return;
    }
    char summary[200], msg[256];
    int refused = sidecar_reload_run(summary, sizeof(summary));
    snprintf(msg, sizeof(msg), "reload: certificates re-read (%s)", summary);
    SIDECAR_LOG(refused ? SIDECAR_LOG_WARN : SIDECAR_LOG_INFO, msg);
    daemon_t *d = s->data;
    if (d->cfg.config_path != NULL && !d->stopping) {
        reload_config(d);
        return;
    }
    SIDECAR_LOG(SIDECAR_LOG_INFO, "reload: done", SIDECAR_LOG_STR("changed", "none"),
                SIDECAR_LOG_STR("config", d->stopping ? "not read: electd is stopping"
                                                      : "none (no --config file)"));
}

#define INSECURE_PEER_WARN_MS 60000 /* how often --insecure-peer is warned about */

static void insecure_warn_cb(uv_timer_t *t)
{
    daemon_t *d = t->data;
    char addr[300];
    sidecar_config_addr_format(&d->cfg.listen_peer, addr, sizeof(addr));
    SIDECAR_LOG(SIDECAR_LOG_WARN,
                "insecure peer port (--insecure-peer): other hosts can reach it and members are "
                "not authenticated; set --cluster-token or peer TLS (--peer-cert-file, "
                "--peer-key-file, --peer-trusted-ca-file)",
                SIDECAR_LOG_STR("listen_peer", addr));
}

/* Under --insecure-peer with an exposed peer port: a warning now and every minute. */
static void insecure_warn_start(daemon_t *d)
{
    uv_timer_init(d->loop, &d->insecure_timer);
    d->insecure_timer.data = d;
    if (!sidecar_config_peer_insecure(&d->cfg))
        return;
    insecure_warn_cb(&d->insecure_timer);
    uv_timer_start(&d->insecure_timer, insecure_warn_cb, INSECURE_PEER_WARN_MS,
                   INSECURE_PEER_WARN_MS);
    uv_unref((uv_handle_t *)&d->insecure_timer);
}

#define TRIM_FIRST_MS 5000  /* start-up's code handed back this long after start, ... */
#define TRIM_EVERY_MS 60000 /* ... then this often (what ran once since: a leader change) */

static void trim_cb(uv_timer_t *t)
{
    (void)t;
    sidecar_trim_code();
}

/* An idle member's resident memory is mostly pages of code (its own and libc's), most of
 * them run once at start-up: handed back, what an idle member runs is what stays. */
static void trim_start(daemon_t *d)
{
    uv_timer_init(d->loop, &d->trim_timer);
    uv_timer_start(&d->trim_timer, trim_cb, TRIM_FIRST_MS, TRIM_EVERY_MS);
    uv_unref((uv_handle_t *)&d->trim_timer);
}

static void signals_start(daemon_t *d)
{
    uv_signal_t *handles[] = {&d->sigterm, &d->sigint, &d->sighup, &d->sigusr1, &d->sigusr2};
    const int signums[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof(handles) / sizeof(handles[0]); i++) {
        uv_signal_init(d->loop, handles[i]);
        handles[i]->data = d;
        uv_signal_start(handles[i], i < 2 ? signal_cb : reload_signal_cb, signums[i]);
    }
}

static int run(daemon_t *d)
{
    char err[512] = "";
    d->loop = uv_default_loop();
    int rv = sidecar_node_open(&d->node, d->loop, &d->cfg, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "electd: %s\n", err[0] ? err : sidecar_node_strerror(rv));
        return 1;
    }
    rv = sidecar_workload_open(&d->workload, d->loop, &d->cfg, d->node, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "electd: %s\n", err);
        d->exit_code = 1;
        d->stopping = true;
        sidecar_node_close(d->node, node_closed_cb, d);
        uv_run(d->loop, UV_RUN_DEFAULT);
        return 1;
    }
    rv = sidecar_named_open(&d->named, d->loop, &d->cfg, d->node, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "electd: %s\n", err);
        d->exit_code = 1;
        d->named = NULL;
        d->api = NULL;
        d->stopping = true;
        finish_shutdown(d);
        uv_run(d->loop, UV_RUN_DEFAULT);
        return 1;
    }
    rv = sidecar_api_open(&d->api, d->loop, &d->cfg, d->node, d->workload, d->named, err,
                          sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "electd: %s\n", err);
        d->exit_code = 1;
        d->api = NULL;
        d->stopping = true;
        finish_shutdown(d);
        uv_run(d->loop, UV_RUN_DEFAULT);
        return 1;
    }
    char http_addr[300];
    sidecar_config_addr_format(&d->cfg.listen_http, http_addr, sizeof(http_addr));
    SIDECAR_LOG(SIDECAR_LOG_INFO, "http listening", SIDECAR_LOG_STR("addr", http_addr),
                SIDECAR_LOG_INT("port", sidecar_api_port(d->api)));
    d->obs = (sidecar_node_observer_t){.changed_cb = changed_cb, .ud = d};
    sidecar_node_observe(d->node, &d->obs);
    uv_timer_init(d->loop, &d->shutdown_timer);
    d->shutdown_timer.data = d;
    signals_start(d);
    insecure_warn_start(d);
    trim_start(d);
    uv_run(d->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(d->loop) != 0)
        SIDECAR_LOG(SIDECAR_LOG_WARN, "handles left open at exit");
    return d->exit_code;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], SIDECAR_SHIM_ARG) == 0)
        return sidecar_shim_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], SIDECAR_SPAWNER_ARG) == 0)
        return sidecar_spawner_main(argc, argv);
    if (argc > 1 && sidecar_client_is_subcommand(argv[1]))
        return sidecar_client_main(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    static daemon_t d;
    char err[SIDECAR_CONFIG_ERR_MAX];
    d.src = (sidecar_config_source_t){
        .argc = argc, .argv = argv, .getenv_cb = sidecar_config_getenv_process};
    if (sidecar_config_parse(&d.cfg, &d.src, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        fprintf(stderr, "Try 'electd --help'.\n");
        return 2;
    }
    if (d.cfg.action == SIDECAR_CONFIG_HELP) {
        sidecar_config_help(stdout);
        sidecar_config_free(&d.cfg);
        return 0;
    }
    if (d.cfg.action == SIDECAR_CONFIG_VERSION) {
        printf("%s\n", sidecar_config_version());
        sidecar_config_free(&d.cfg);
        return 0;
    }
    if (sidecar_config_check_self_dial(&d.cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        sidecar_config_free(&d.cfg);
        return 2;
    }
    if (d.cfg.cluster_token)
        sidecar_log_add_secret(d.cfg.cluster_token);
    if (d.cfg.http_token) {
        sidecar_log_add_secret(d.cfg.http_token);
        snprintf(d.redacted_token, sizeof(d.redacted_token), "%s", d.cfg.http_token);
    }
    sidecar_log_init(d.cfg.log_level, d.cfg.log_format, 2, d.cfg.name);
    sidecar_config_elections_warn(&d.cfg.elections);
    int code = run(&d);
    sidecar_config_free(&d.cfg);
    return code;
}
