/* resolve.c — the entry point of a parse and pass 3: each setting takes the first of flag,
 * ELECTD_* variable, config file and default (flag > env > file > default), parsed by its
 * type (values.c); then the settings are checked against each other and the file system
 * (checks.c). Also freeing a configuration and the environment lookups. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

/* ---- pass 3: flag > env > file > default -------------------------------------------- */

static int resolve(parser_t *p)
{
    const sidecar_config_source_t *src = p->src;
    char env[SIDECAR_CONFIG_ENV_NAME_MAX];
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting_t *s = &config_settings[i];
        value_t v = p->flag[i];
        if (s->type == T_META) {
            continue;
        }
        if (v.origin == O_NONE && s->pub.env && src->getenv_cb) {
            sidecar_config_env_name(s->pub.name, env, sizeof(env));
            const char *e = src->getenv_cb(env, src->getenv_ud);
            if (e && e[0] != '\0') { /* empty means unset: VAR= in a unit file or compose */
                v = (value_t){.origin = O_ENV, .text = e};
            }
        }
        if (v.origin == O_NONE && p->file[i]) {
            v = (value_t){.origin = O_FILE, .json = p->file[i]};
        }
        if (v.origin == O_NONE && s->pub.def) {
            v = (value_t){.origin = O_DEFAULT, .text = s->pub.def};
        }
        if (v.origin == O_NONE) {
            continue;
        }
        p->origin[i] = v.origin;
        int rc = config_apply(p, s, &v);
        if (rc != 0) {
            return rc;
        }
    }
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting_t *s = &config_settings[i];
        if ((s->flags & F_REQUIRED) && p->origin[i] == O_NONE) {
            sidecar_config_env_name(s->pub.name, env, sizeof(env));
            return config_fail(p, SIDECAR_CONFIG_EINVAL,
                               "missing --%s (or %s, or \"%s\" in the config file)", s->pub.name,
                               env, s->pub.name);
        }
    }
    return 0;
}

/* ---- unknown ELECTD_* variables ------------------------------------------------------ */

#define ENV_SCAN_MAX 100000 /* environment entries looked at; more are not checked */

extern char **environ;

/* ELECTD_* variables that are not electd's settings but are legitimately in its environment:
 * what electd gives its workload and hooks (an electd started from inside one sees them),
 * the client's own (`electd status` ...), the TLS module's path, and those of deploy/'s
 * scripts (demo.sh's binary, the k8s gate's API address, the container health check's
 * port). ELECTD_ELECTION is reserved for the named elections' hooks. */
static const char *const foreign_vars[] = {
    "ELECTD_ROLE",          "ELECTD_NODE_NAME",   "ELECTD_NODE_ID",        "ELECTD_LEADER_NAME",
    "ELECTD_LEADER_ID",     "ELECTD_HTTP",        "ELECTD_HTTP_URL",       "ELECTD_TERM",
    "ELECTD_FENCING_TOKEN", "ELECTD_LEASE_MS",    "ELECTD_WORKLOAD_TOKEN", "ELECTD_CACERT",
    "ELECTD_CERT",          "ELECTD_KEY",         "ELECTD_TLS_MODULE",     "ELECTD_BIN",
    "ELECTD_API",           "ELECTD_HEALTH_PORT", "ELECTD_ELECTION",       NULL};

/* The environment as "NAME=value" entries when the lookup is one of config.h's two, else NULL
 * (a custom lookup cannot be enumerated, so nothing is checked). */
static const char *const *environment(const sidecar_config_source_t *src)
{
    if (src->getenv_cb == sidecar_config_getenv_process) {
        return (const char *const *)environ;
    }
    if (src->getenv_cb == sidecar_config_getenv_array) {
        return src->getenv_ud;
    }
    return NULL;
}

/* Refuses one set ELECTD_<name> variable (n bytes of entry) that no setting reads. */
static int check_variable(parser_t *p, const char *entry, size_t n)
{
    char var[SIDECAR_CONFIG_ENV_NAME_MAX], name[SIDECAR_CONFIG_ENV_NAME_MAX];
    char shown[SHOW_MAX + 16], hint[CONFIG_SUGGEST_MAX];
    for (size_t i = 0; foreign_vars[i]; i++) {
        if (strlen(foreign_vars[i]) == n && strncmp(entry, foreign_vars[i], n) == 0) {
            return 0;
        }
    }
    if (n >= sizeof(var)) {
        n = sizeof(var) - 1; /* shown cut short; no setting has so long a name */
    }
    memcpy(var, entry, n);
    var[n] = '\0';
    config_show_text(var, shown, sizeof(shown));
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting_t *s = &config_settings[i];
        sidecar_config_env_name(s->pub.name, name, sizeof(name));
        if (strcmp(name, var) == 0 && s->pub.env) {
            return 0;
        }
        if (strcmp(name, var) == 0) {
            return config_fail(p, SIDECAR_CONFIG_EINVAL,
                               "%s is not read from the environment (use --%s)", shown,
                               s->pub.name);
        }
    }
    if (strcmp(var, "ELECTD_ELECTIONS") == 0) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "%s is not read: named elections are declared in the config file "
                           "only (\"elections\")",
                           shown);
    }
    config_suggest(var + 7, CONFIG_SPELL_ENV, hint, sizeof(hint));
    return config_fail(p, SIDECAR_CONFIG_EINVAL, "unknown environment variable %s%s", shown,
                       hint[0] ? hint
                               : " (electd reads ELECTD_<SETTING> for the settings "
                                 "of electd --help; unset it or fix its name)");
}

/* An ELECTD_* variable that is set (not empty) and that no setting reads is refused like an
 * unknown flag: a typo must not be ignored silently. */
static int check_environment(parser_t *p)
{
    const char *const *env = environment(p->src);
    for (size_t i = 0; env && env[i] && i < ENV_SCAN_MAX; i++) {
        const char *eq = strchr(env[i], '=');
        if (strncmp(env[i], "ELECTD_", 7) != 0 || eq == NULL || eq[1] == '\0') {
            continue;
        }
        int rc = check_variable(p, env[i], (size_t)(eq - env[i]));
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* ---- the entry point ---------------------------------------------------------------- */

parser_t *config_parser_new(sidecar_config_t *cfg, const sidecar_config_source_t *src, char *err,
                            size_t err_size)
{
    parser_t *p = calloc(1, sizeof(*p)); /* ~2 KiB of bookkeeping, kept off the stack */
    if (err && err_size) {
        err[0] = '\0';
    }
    if (p == NULL) {
        if (err && err_size) {
            snprintf(err, err_size, "electd: out of memory");
        }
        return NULL;
    }
    *p = (parser_t){.cfg = cfg, .src = src, .err = err, .err_size = err_size};
    return p;
}

void config_parser_free(parser_t *p)
{
    cJSON_Delete(p->root);
    free(p->file_buf);
    free(p);
}

/* Pass 1 (cmdline.c), the environment's names (above), 2 (file.c), 3 (above), 4 (checks.c), the
 * named elections (elections.c) and 5 (checks.c); each stops at the first problem. --help and
 * --version end after pass 1. */
int config_passes(parser_t *p)
{
    int rc = config_scan_argv(p);
    if (rc != 0 || p->cfg->action != SIDECAR_CONFIG_RUN) {
        return rc;
    }
    if ((rc = check_environment(p)) != 0 || (rc = config_load_file(p)) != 0 ||
        (rc = resolve(p)) != 0 || (rc = config_check_consistency(p)) != 0 ||
        (rc = config_load_elections(p)) != 0) {
        return rc;
    }
    return p->src->skip_fs ? 0 : config_check_fs(p);
}

int sidecar_config_parse(sidecar_config_t *cfg, const sidecar_config_source_t *src, char *err,
                         size_t err_size)
{
    memset(cfg, 0, sizeof(*cfg));
    parser_t *p = config_parser_new(cfg, src, err, err_size);
    if (p == NULL) {
        return SIDECAR_CONFIG_ENOMEM;
    }
    int rc = config_passes(p);
    config_parser_free(p);
    if (rc != 0) {
        sidecar_config_free(cfg);
    }
    return rc;
}

void sidecar_config_free(sidecar_config_t *cfg)
{
    for (size_t i = 0; cfg->peers && i < cfg->n_peers; i++) {
        free(cfg->peers[i].name);
        free(cfg->peers[i].host);
    }
    free(cfg->peers);
    free(cfg->name);
    free(cfg->listen_peer.host);
    free(cfg->listen_http.host);
    free(cfg->advertise_http.host);
    free(cfg->data_dir);
    free(cfg->restore);
    free(cfg->cluster_name);
    free(cfg->cluster_token);
    free(cfg->config_path);
    free(cfg->peer_cert_file);
    free(cfg->peer_key_file);
    free(cfg->peer_trusted_ca_file);
    config_argv_free(&cfg->exec);
    config_argv_free(&cfg->on_start);
    config_argv_free(&cfg->on_stop);
    config_argv_free(&cfg->on_change);
    free(cfg->http_token);
    sidecar_config_elections_free(&cfg->elections);
    free(cfg->http_cert_file);
    free(cfg->http_key_file);
    free(cfg->http_trusted_ca_file);
    memset(cfg, 0, sizeof(*cfg));
}

/* ---- environment lookups ------------------------------------------------------------ */

const char *sidecar_config_getenv_process(const char *name, void *ud)
{
    (void)ud;
    return getenv(name);
}

const char *sidecar_config_getenv_array(const char *name, void *ud)
{
    const char *const *env = ud;
    size_t n = strlen(name);
    for (size_t i = 0; env && env[i]; i++) {
        if (strncmp(env[i], name, n) == 0 && env[i][n] == '=') {
            return env[i] + n + 1;
        }
    }
    return NULL;
}
