/* child.c — what every child of the controller gets (the shim's command line, the ELECTD_*
 * environment with the workload's credential) and how its handles end. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"
#include "workload_int.h"

#define ENV_EXTRA 16 /* ELECTD_* variables the environment adds (12 at most today), with room */

extern char **environ;

char **workload_child_argv(sidecar_workload_t *w, const char *fd_arg, const sidecar_argv_t *cmd,
                           const char *last, size_t *cmd_at)
{
    char **args = calloc(cmd->argc + 11, sizeof(char *));
    if (args == NULL)
        return NULL;
    size_t a = 0;
    args[a++] = (char *)w->exe;
    args[a++] = SIDECAR_SHIM_ARG;
    args[a++] = (char *)fd_arg;
    /* The settings of now: a reload may have changed the stop timeout and the log format. */
    snprintf(w->stop_ms, sizeof(w->stop_ms), "%u", w->cfg->stop_timeout_ms);
    args[a++] = w->stop_ms;
    args[a++] = w->parent_pid;
    args[a++] = (char *)w->data_dir;
    /* JSON logs: the shim wraps the workload's output. Not for a hook (no control pipe):
     * electd reads a hook's output and logs it itself. */
    if (sidecar_log_current_format() == SIDECAR_LOG_JSON && strcmp(fd_arg, "-1") != 0) {
        args[a++] = SIDECAR_SHIM_LOG_JSON;
        args[a++] = (char *)w->cfg->name;
    }
    args[a++] = "--";
    if (cmd_at != NULL)
        *cmd_at = a;
    for (size_t i = 0; i < cmd->argc; i++)
        args[a++] = cmd->argv[i];
    if (last != NULL)
        args[a++] = (char *)last;
    args[a] = NULL;
    return args;
}

/* The leader's name for ELECTD_LEADER_ID; "" when no leader or one not yet in our
 * configuration. */
static void member_name(sidecar_workload_t *w, uint64_t id, char *buf, size_t len)
{
    const char *peer;
    if (id == 0 || sidecar_member_split(sidecar_node_member_addr(w->node, id), buf, len, &peer))
        snprintf(buf, len, "%s", "");
}

/* The workload's API credential (credential.c): fresh at each start, so a previous run's
 * stops working; hooks meanwhile get the current one, and none once the workload stopped. */
static const char *credential_for(sidecar_workload_t *w, const char *role)
{
    if (strcmp(role, "primary") == 0 && w->state != SIDECAR_WORKLOAD_PRIMARY)
        return workload_cred_rotate(&w->cred);
    if (w->state != SIDECAR_WORKLOAD_STANDBY)
        return workload_cred_current(&w->cred);
    return NULL;
}

/* Appends the ELECTD_* variables for role at env[*k]. */
static void add_electd_vars(sidecar_workload_t *w, const char *role, char **env, size_t *k)
{
    char leader[64], http[300], buf[512];
    member_name(w, w->st.leader, leader, sizeof(leader));
    sidecar_config_addr_format(&w->cfg->advertise_http, http, sizeof(http));
    /* ELECTD_NODE_ID and ELECTD_LEADER_ID hold names (as they always have); the _NAME
     * spellings say so (docs/configuration.md). */
    const char *names[] = {"ELECTD_ROLE",        "ELECTD_NODE_NAME", "ELECTD_NODE_ID",
                           "ELECTD_LEADER_NAME", "ELECTD_LEADER_ID", "ELECTD_HTTP"};
    const char *vals[] = {role, w->cfg->name, w->cfg->name, leader, leader, http};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(buf, sizeof(buf), "%s=%s", names[i], vals[i]);
        env[(*k)++] = strdup(buf);
    }
    /* ELECTD_HTTP stays host:port; the URL says whether the API is HTTPS. */
    snprintf(buf, sizeof(buf), "ELECTD_HTTP_URL=%s://%s",
             w->cfg->http_cert_file != NULL ? "https" : "http", http);
    env[(*k)++] = strdup(buf);
    snprintf(buf, sizeof(buf), "ELECTD_TERM=%" PRIu64, w->st.term);
    env[(*k)++] = strdup(buf);
    snprintf(buf, sizeof(buf), "ELECTD_FENCING_TOKEN=%" PRIu64, w->st.epoch);
    env[(*k)++] = strdup(buf);
    snprintf(buf, sizeof(buf), "ELECTD_LEASE_MS=%u", sidecar_config_lease_ms(w->cfg));
    env[(*k)++] = strdup(buf);
    if (w->election != NULL) {
        snprintf(buf, sizeof(buf), "ELECTD_ELECTION=%s", w->election);
        env[(*k)++] = strdup(buf);
    }
    const char *wt = credential_for(w, role);
    if (wt != NULL) {
        snprintf(buf, sizeof(buf), "ELECTD_WORKLOAD_TOKEN=%s", wt);
        env[(*k)++] = strdup(buf);
    }
}

char **workload_child_env(sidecar_workload_t *w, const char *role)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + ENV_EXTRA + 1, sizeof(char *));
    if (env == NULL)
        return NULL;
    size_t k = 0;
    /* electd's own ELECTD_* settings stay with electd; the CA the CLI verifies the API
     * against (ELECTD_CACERT, public) is the one such variable passed on. */
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "ELECTD_", 7) != 0 ||
            strncmp(environ[i], "ELECTD_CACERT=", 14) == 0)
            env[k++] = strdup(environ[i]);
    add_electd_vars(w, role, env, &k);
    env[k] = NULL;
    return env;
}

void workload_strv_free(char **v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

static void child_handle_closed(uv_handle_t *h)
{
    struct workload_child *c = h->data;
    ELECTD_CHECK(c->handles > 0);
    if (--c->handles > 0)
        return;
    sidecar_workload_t *w = c->w;
    free(c->line[0]);
    free(c->line[1]);
    free(c);
    ELECTD_CHECK(w->open_children > 0);
    w->open_children--;
    workload_close_done(w);
}

void workload_child_close(struct workload_child *c)
{
    if (c->proc.open)
        workload_proc_close(&c->proc, child_handle_closed);
    if (c->is_hook) {
        for (int i = 0; i < 2; i++)
            if (!uv_is_closing((uv_handle_t *)&c->out[i]))
                uv_close((uv_handle_t *)&c->out[i], child_handle_closed);
        if (!uv_is_closing((uv_handle_t *)&c->timeout))
            uv_close((uv_handle_t *)&c->timeout, child_handle_closed);
    }
}

int64_t workload_exit_code(int64_t status, int sig)
{
    return sig ? 128 + sig : status;
}
