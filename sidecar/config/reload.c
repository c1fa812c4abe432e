/* reload.c — SIGHUP: the configuration resolved again from the command line and environment
 * electd started with and the file as it is now, checked as a whole, and compared with the
 * running one setting by setting: what a reload may change, what needs a restart, what a
 * flag or variable keeps. Nothing is applied unless everything passed, so a bad file leaves
 * every running setting as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config_int.h"

_Static_assert(N_SETTINGS <= 64, "one bit per setting in sidecar_config_mask_t");

/* The settings a reload changes while electd runs. Each is read where it is used, at each
 * use: the logger's level and format, a hook's command and timeouts when it is next run, the
 * HTTP server's token when a request's head is checked. */
static const char *const reloadable[] = {"log-level",    "log-format", "on-start",
                                         "on-stop",      "on-change",  "hook-timeout",
                                         "stop-timeout", "http-token", NULL};

/* The hooks: they change only while the node's mode stays the same (node_mode). */
static const char *const hook_rows[] = {"on-start", "on-stop", "on-change", NULL};

static bool listed(const char *const *list, const char *name)
{
    for (size_t i = 0; list[i]; i++) {
        if (strcmp(list[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static sidecar_config_mask_t bit(size_t i)
{
    return (sidecar_config_mask_t)1 << i;
}

/* The mode the workload controller took at start from these settings (workload.h: witness,
 * supervise, hooks or none); a controller keeps its mode until electd restarts. */
static int node_mode(const sidecar_config_t *c)
{
    if (c->witness) {
        return 3;
    }
    if (c->exec.argc > 0) {
        return 1;
    }
    return c->on_start.argc || c->on_stop.argc || c->on_change.argc ? 2 : 0;
}

/* ---- comparing values ------------------------------------------------------------------- */

static bool same_str(const char *a, const char *b)
{
    return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

static bool same_argv(const sidecar_argv_t *a, const sidecar_argv_t *b)
{
    if (a->argc != b->argc) {
        return false;
    }
    for (size_t i = 0; i < a->argc; i++) {
        if (strcmp(a->argv[i], b->argv[i]) != 0) {
            return false;
        }
    }
    return true;
}

static bool same_peers(const sidecar_config_t *a, const sidecar_config_t *b)
{
    if (a->n_peers != b->n_peers) {
        return false;
    }
    for (size_t i = 0; i < a->n_peers; i++) {
        const sidecar_peer_t *x = &a->peers[i], *y = &b->peers[i];
        if (strcmp(x->name, y->name) != 0 || x->port != y->port ||
            !config_same_host(x->host, y->host)) {
            return false;
        }
    }
    return true;
}

/* Row s holds the same value in a and b. */
static bool same_value(const setting_t *s, const sidecar_config_t *a, const sidecar_config_t *b)
{
    const void *x = (const char *)a + s->offset, *y = (const char *)b + s->offset;
    switch (s->type) {
    case T_NAME:
    case T_TOKEN:
    case T_PATH:
        return same_str(*(char *const *)x, *(char *const *)y);
    case T_ADDR:
        return ((const sidecar_addr_t *)x)->port == ((const sidecar_addr_t *)y)->port &&
               same_str(((const sidecar_addr_t *)x)->host, ((const sidecar_addr_t *)y)->host);
    case T_PEERS:
        return same_peers(a, b);
    case T_DURATION:
    case T_COUNT:
    case T_SIZE:
        return *(const uint32_t *)x == *(const uint32_t *)y;
    case T_FRACTION:
        return a->max_drift_ppm == b->max_drift_ppm;
    case T_BOOL:
        return *(const bool *)x == *(const bool *)y;
    case T_ENUM:
        return *(const int *)x == *(const int *)y;
    case T_ARGV:
        return same_argv(x, y);
    case T_META:
        return true; /* --config names the same file: same command line and environment */
    }
    return true;
}

/* Bytes of the field of a reloadable row (the only fields a reload moves). */
static size_t field_size(const setting_t *s)
{
    switch (s->type) {
    case T_ENUM:
        return sizeof(int);
    case T_ARGV:
        return sizeof(sidecar_argv_t);
    case T_DURATION:
        return sizeof(uint32_t);
    case T_TOKEN:
        return sizeof(char *);
    default:
        ELECTD_CHECK(!"a reloadable setting of a type reload.c does not move");
        return 0;
    }
}

/* ---- the comparison --------------------------------------------------------------------- */

/* out->changed and out->restart: every row whose value differs. */
static void find_changes(const sidecar_config_t *running, sidecar_config_reload_t *out)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting_t *s = &config_settings[i];
        if (s->type == T_META || same_value(s, running, &out->next)) {
            continue;
        }
        if (listed(reloadable, s->pub.name)) {
            out->changed |= bit(i);
        } else {
            out->restart |= bit(i);
        }
    }
    if (node_mode(running) == node_mode(&out->next)) {
        return;
    }
    /* Hooks that would switch the mode (none to hooks, hooks to supervise, ...) wait for a
     * restart, as --exec and --witness do. */
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if ((out->changed & bit(i)) && listed(hook_rows, config_settings[i].pub.name)) {
            out->changed &= ~bit(i);
            out->restart |= bit(i);
        }
    }
}

/* out->kept: rows a flag or variable sets while the file holds another value. Every value of
 * the file is parsed on the way, so that a bad one is refused even where a flag wins. */
static int find_kept(parser_t *p, sidecar_config_reload_t *out)
{
    sidecar_config_t file = {0};
    p->cfg = &file;
    int rc = config_check_file_settings(p);
    p->cfg = &out->next;
    for (size_t i = 0; rc == 0 && i < N_SETTINGS; i++) {
        const setting_t *s = &config_settings[i];
        bool overridden = p->origin[i] == O_FLAG || p->origin[i] == O_ENV;
        if (p->file[i] != NULL && overridden && !same_value(s, &out->next, &file)) {
            out->kept |= bit(i);
        }
    }
    sidecar_config_free(&file);
    return rc;
}

/* The running settings with the changed ones taken from out->next, checked together; the
 * named elections parsed against them into out->next.elections; and the programs of every
 * command of the file, as a start would check them (a restart must not fail on them). */
static int check_merged(parser_t *p, const sidecar_config_t *running, sidecar_config_reload_t *out)
{
    const sidecar_config_t *next = &out->next;
    sidecar_config_t merged = *running; /* borrowed values only: never freed */
    sidecar_election_list_t els = {0};
    merged.elections = els;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting_t *s = &config_settings[i];
        if (out->changed & bit(i)) {
            memcpy((char *)&merged + s->offset, (const char *)next + s->offset, field_size(s));
        }
    }
    p->cfg = &merged;
    int rc = config_check_reloaded(p);
    if (rc == 0) {
        rc = config_parse_elections(p, &merged, p->elections, &els);
    }
    sidecar_config_t commands = {.exec = next->exec,
                                 .on_start = next->on_start,
                                 .on_stop = next->on_stop,
                                 .on_change = next->on_change,
                                 .elections = els}; /* borrowed */
    if (rc == 0) {
        rc = config_check_programs(p, &commands);
    }
    p->cfg = &out->next;
    sidecar_config_elections_free(&out->next.elections);
    out->next.elections = els;
    return rc;
}

int sidecar_config_reload(const sidecar_config_t *running, const sidecar_config_source_t *src,
                          sidecar_config_reload_t *out, char *err, size_t errlen)
{
    sidecar_config_source_t again = *src;
    again.skip_fs = true; /* a reload creates nothing; the programs are checked below */
    memset(out, 0, sizeof(*out));
    parser_t *p = config_parser_new(&out->next, &again, err, errlen);
    if (p == NULL) {
        return SIDECAR_CONFIG_ENOMEM;
    }
    int rc = config_passes(p);
    if (rc == 0 && out->next.action != SIDECAR_CONFIG_RUN) {
        rc = config_fail(p, SIDECAR_CONFIG_EINVAL, "the command line asks for --help or --version");
    }
    if (rc == 0) {
        find_changes(running, out);
        rc = find_kept(p, out);
    }
    if (rc == 0) {
        rc = check_merged(p, running, out);
    }
    config_parser_free(p);
    if (rc != 0) {
        sidecar_config_reload_free(out);
    }
    return rc;
}

void sidecar_config_reload_apply(sidecar_config_t *running, sidecar_config_reload_t *r)
{
    unsigned char tmp[sizeof(sidecar_argv_t) + sizeof(char *)];
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting_t *s = &config_settings[i];
        if (!(r->changed & bit(i))) {
            continue;
        }
        ELECTD_CHECK(listed(reloadable, s->pub.name));
        size_t n = field_size(s);
        char *mine = (char *)running + s->offset, *theirs = (char *)&r->next + s->offset;
        memcpy(tmp, mine, n);
        memcpy(mine, theirs, n);
        memcpy(theirs, tmp, n);
    }
}

void sidecar_config_reload_free(sidecar_config_reload_t *r)
{
    sidecar_config_free(&r->next);
    memset(r, 0, sizeof(*r));
}

void sidecar_config_mask_names(sidecar_config_mask_t mask, char *buf, size_t size)
{
    size_t off = 0;
    if (size == 0) {
        return;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (!(mask & bit(i))) {
            continue;
        }
        int w =
            snprintf(buf + off, size - off, "%s%s", off ? ", " : "", config_settings[i].pub.name);
        if (w < 0 || off + (size_t)w >= size) {
            return; /* cut, terminated */
        }
        off += (size_t)w;
    }
    if (off == 0) {
        snprintf(buf, size, "none");
    }
}

sidecar_config_mask_t sidecar_config_mask_of(const char *name)
{
    size_t i = 0;
    return config_find_setting(name, &i) != NULL ? bit(i) : 0;
}
