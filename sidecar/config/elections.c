/* elections.c — the config file's named elections (issue 12): the "elections" object maps a
 * name (node-name syntax; "default" is the --exec/hook election's) to one election's
 * workload (exec, or hooks), its placement (prefer, avoid) and its own stop-timeout,
 * hook-timeout and max-restarts, each parsed by the settings table's row of the same name
 * (same syntax, same range). Also their reload from the file, apart from the running
 * configuration, and the lookups the daemon makes in the parsed list. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

/* prefer and avoid are not settings; these rows only name them in messages. */
static const setting_t prefer_row = {.pub = {.name = "prefer", .file = true}, .type = T_NAME};
static const setting_t avoid_row = {.pub = {.name = "avoid", .file = true}, .type = T_NAME};

/* The keys an election may hold: a settings row's name (parsed by that row), or a list of
 * members (nodes != NULL). */
typedef struct election_key {
    const char *name;
    size_t offset; /* of the field in sidecar_election_config_t */
    const setting_t *nodes;
} election_key_t;

#define EOFF(field) offsetof(sidecar_election_config_t, field)
static const election_key_t election_keys[] = {
    {"exec", EOFF(exec), NULL},
    {"on-start", EOFF(on_start), NULL},
    {"on-stop", EOFF(on_stop), NULL},
    {"on-change", EOFF(on_change), NULL},
    {"prefer", EOFF(prefer), &prefer_row},
    {"avoid", EOFF(avoid), &avoid_row},
    {"stop-timeout", EOFF(stop_timeout_ms), NULL},
    {"hook-timeout", EOFF(hook_timeout_ms), NULL},
    {"max-restarts", EOFF(max_restarts), NULL},
};
#define N_KEYS (sizeof(election_keys) / sizeof(election_keys[0]))

/* "electd: <file>: election "<name>": <message>". */
static int election_fail(parser_t *p, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int election_fail(parser_t *p, const char *name, const char *fmt, ...)
{
    char why[WHY_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return config_fail(p, SIDECAR_CONFIG_EINVAL, "%s: election \"%s\": %s", p->file_label, name,
                       why);
}

/* Named in --peers, or this node itself (which --join leaves out of --peers). */
static bool member_known(const sidecar_config_t *base, const char *name)
{
    if (base->name && strcmp(base->name, name) == 0) {
        return true;
    }
    for (size_t i = 0; i < base->n_peers; i++) {
        if (strcmp(base->peers[i].name, name) == 0) {
            return true;
        }
    }
    return false;
}

/* "prefer" or "avoid": an array of at most SIDECAR_CONFIG_ELECTION_NODES_MAX distinct names. */
static int parse_nodes(parser_t *p, const setting_t *row, const cJSON *j,
                       const sidecar_config_t *base, sidecar_node_refs_t *out)
{
    const value_t v = {.origin = O_FILE, .json = j};
    char shown[SHOW_MAX + 16];
    size_t n = 0;
    int rc = 0;
    if (!cJSON_IsArray(j)) {
        return config_invalid(p, row, &v, "expected an array of member names");
    }
    for (const cJSON *x = j->child; x; x = x->next) {
        if (!cJSON_IsString(x)) {
            return config_invalid(p, row, &v, "expected an array of member names");
        }
        if (++n > SIDECAR_CONFIG_ELECTION_NODES_MAX) {
            return config_invalid(p, row, &v, "more than %d names",
                                  SIDECAR_CONFIG_ELECTION_NODES_MAX);
        }
    }
    if (n > 0 && (out->refs = calloc(n, sizeof(*out->refs))) == NULL) {
        return config_fail(p, SIDECAR_CONFIG_ENOMEM, "out of memory");
    }
    for (const cJSON *x = j->child; x && rc == 0; x = x->next) {
        const char *name = x->valuestring;
        config_show_text(name, shown, sizeof(shown));
        if (!sidecar_parse_name_valid(name)) {
            return config_invalid(p, row, &v,
                                  "%s is not a member name (1-%d letters, digits, '.', '_' or '-', "
                                  "starting with a letter or digit)",
                                  shown, SIDECAR_NAME_MAX);
        }
        for (size_t k = 0; k < out->n; k++) {
            if (strcmp(out->refs[k].name, name) == 0) {
                return config_invalid(p, row, &v, "%s is named twice", shown);
            }
        }
        sidecar_node_ref_t *ref = &out->refs[out->n++];
        ref->name = config_dup(p, name, &rc);
        ref->id = sidecar_config_node_id(name);
        ref->known = member_known(base, name);
    }
    return rc;
}

/* One key of an election object into its field; seen holds one bit per key. */
static int parse_key(parser_t *p, const sidecar_config_t *base, const cJSON *k,
                     sidecar_election_config_t *e, unsigned *seen)
{
    char shown[SHOW_MAX + 16], list[160] = "";
    size_t i = 0;
    while (i < N_KEYS && strcmp(election_keys[i].name, k->string) != 0) {
        i++;
    }
    config_show_text(k->string, shown, sizeof(shown));
    if (i == N_KEYS) {
        for (size_t x = 0; x < N_KEYS; x++) {
            size_t n = strlen(list);
            snprintf(list + n, sizeof(list) - n, "%s%s", x ? ", " : "", election_keys[x].name);
        }
        return election_fail(p, e->name, "unknown key %s (expected %s)", shown, list);
    }
    if (*seen & (1u << i)) {
        return election_fail(p, e->name, "key %s appears twice", shown);
    }
    *seen |= 1u << i;
    void *dst = (char *)e + election_keys[i].offset;
    if (election_keys[i].nodes) {
        return parse_nodes(p, election_keys[i].nodes, k, base, dst);
    }
    const value_t v = {.origin = O_FILE, .json = k};
    return config_apply_to(p, config_find_setting(k->string, NULL), &v, dst);
}

/* What one key cannot show: one mode, prefer and avoid apart, a stop inside the lease. */
static int check_election(parser_t *p, const sidecar_config_t *base, sidecar_election_config_t *e)
{
    char shown[SHOW_MAX + 16], stop[32];
    if (e->exec.argc && (e->on_start.argc || e->on_stop.argc || e->on_change.argc)) {
        return election_fail(p, e->name,
                             "\"exec\" cannot be combined with \"on-start\", \"on-stop\" or "
                             "\"on-change\": an election either supervises its workload or runs "
                             "hooks");
    }
    if (!e->exec.argc && !e->on_start.argc && !e->on_stop.argc) {
        return election_fail(p, e->name, "needs \"exec\", or \"on-start\" and/or \"on-stop\"");
    }
    e->mode = e->exec.argc ? SIDECAR_ELECTION_EXEC : SIDECAR_ELECTION_HOOKS;
    for (size_t i = 0; i < e->prefer.n; i++) {
        for (size_t k = 0; k < e->avoid.n; k++) {
            if (strcmp(e->prefer.refs[i].name, e->avoid.refs[k].name) == 0) {
                config_show_text(e->prefer.refs[i].name, shown, sizeof(shown));
                return election_fail(p, e->name, "%s is both in \"prefer\" and in \"avoid\"",
                                     shown);
            }
        }
    }
    uint32_t lease = sidecar_config_lease_ms(base);
    if (e->stop_timeout_ms >= lease) {
        sidecar_format_duration(e->stop_timeout_ms, stop, sizeof(stop));
        return election_fail(p, e->name,
                             "\"stop-timeout\" (%s) must be less than the leader lease (%ums), as "
                             "--stop-timeout must",
                             stop, lease);
    }
    return 0;
}

static int parse_election(parser_t *p, const sidecar_config_t *base, const cJSON *j,
                          sidecar_election_config_t *e)
{
    unsigned seen = 0;
    int rc = 0;
    e->name = config_dup(p, j->string, &rc);
    if (rc != 0) {
        return rc;
    }
    if (!cJSON_IsObject(j)) {
        return election_fail(p, e->name,
                             "expected an object like {\"exec\": [\"cmd\", \"arg\"]} or "
                             "{\"on-start\": \"cmd\", \"on-stop\": \"cmd\"}");
    }
    e->stop_timeout_ms = base->stop_timeout_ms;
    e->hook_timeout_ms = base->hook_timeout_ms;
    e->max_restarts = base->max_restarts;
    p->election = e->name;
    /* bounded: each key must be a distinct one of N_KEYS, or the loop ends */
    for (const cJSON *k = j->child; k && rc == 0; k = k->next) {
        rc = parse_key(p, base, k, e, &seen);
    }
    p->election = NULL;
    return rc != 0 ? rc : check_election(p, base, e);
}

static int check_name(parser_t *p, const char *name)
{
    char shown[SHOW_MAX + 16];
    config_show_text(name, shown, sizeof(shown));
    if (!sidecar_parse_name_valid(name)) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "%s: invalid election name %s: expected 1-%d letters, digits, '.', '_' "
                           "or '-', starting with a letter or digit",
                           p->file_label, shown, SIDECAR_NAME_MAX);
    }
    if (strcmp(name, SIDECAR_CONFIG_DEFAULT_ELECTION) == 0) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "%s: the election name %s is reserved for the election of --exec and "
                           "the hooks",
                           p->file_label, shown);
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const sidecar_election_config_t *)a)->name,
                  ((const sidecar_election_config_t *)b)->name);
}

int config_parse_elections(parser_t *p, const sidecar_config_t *base, const cJSON *obj,
                           sidecar_election_list_t *out)
{
    size_t n = 0;
    int rc = 0;
    if (obj == NULL) {
        return 0;
    }
    if (!cJSON_IsObject(obj)) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "%s: \"elections\" must be an object mapping election names to their "
                           "settings, e.g. {\"orders\": {\"exec\": [\"/usr/bin/worker\"]}}",
                           p->file_label);
    }
    for (const cJSON *j = obj->child; j; j = j->next) {
        if (++n > SIDECAR_CONFIG_ELECTIONS_MAX) {
            return config_fail(p, SIDECAR_CONFIG_EINVAL, "%s: more than %d elections",
                               p->file_label, SIDECAR_CONFIG_ELECTIONS_MAX);
        }
    }
    if (n > 0 && base->witness) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "--witness cannot be combined with named elections (in %s): a witness "
                           "never runs a workload",
                           p->file_label);
    }
    if (n > 0 && (out->items = calloc(n, sizeof(*out->items))) == NULL) {
        return config_fail(p, SIDECAR_CONFIG_ENOMEM, "out of memory");
    }
    for (const cJSON *j = obj->child; j && rc == 0; j = j->next) {
        if ((rc = check_name(p, j->string)) == 0) {
            rc = parse_election(p, base, j, &out->items[out->n++]);
        }
    }
    if (rc != 0 || out->n == 0) {
        return rc; /* qsort must not see the NULL of an empty list */
    }
    qsort(out->items, out->n, sizeof(*out->items), by_name);
    for (size_t i = 1; i < out->n; i++) {
        if (strcmp(out->items[i - 1].name, out->items[i].name) == 0) {
            return config_fail(p, SIDECAR_CONFIG_EINVAL, "%s: election \"%s\" appears twice",
                               p->file_label, out->items[i].name);
        }
    }
    return 0;
}

int config_load_elections(parser_t *p)
{
    return config_parse_elections(p, p->cfg, p->elections, &p->cfg->elections);
}

/* ---- reload --------------------------------------------------------------------------- */

int config_check_file_settings(parser_t *p)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const value_t v = {.origin = O_FILE, .json = p->file[i]};
        int rc = p->file[i] ? config_apply(p, &config_settings[i], &v) : 0;
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int sidecar_config_elections_reload(const sidecar_config_t *cfg, sidecar_election_list_t *out,
                                    char *err, size_t errlen)
{
    const sidecar_config_source_t src = {0};
    sidecar_config_t scratch = {0};
    int rc;
    memset(out, 0, sizeof(*out));
    parser_t *p = config_parser_new(&scratch, &src, err, errlen);
    if (p == NULL) {
        return SIDECAR_CONFIG_ENOMEM;
    }
    p->file_label = cfg->config_path ? cfg->config_path : "the config file";
    if (cfg->config_path == NULL) {
        rc = config_fail(p, SIDECAR_CONFIG_EINVAL,
                         "no config file to reload the elections from (electd was started "
                         "without --config)");
    } else if ((rc = config_read_file(p, cfg->config_path)) == 0 &&
               (rc = config_check_file_settings(p)) == 0 &&
               (rc = config_parse_elections(p, cfg, p->elections, out)) == 0) {
        rc = config_check_election_programs(p, out);
    }
    config_parser_free(p);
    sidecar_config_free(&scratch);
    if (rc != 0) {
        sidecar_config_elections_free(out);
    }
    return rc;
}

/* ---- freeing and lookups ---------------------------------------------------------------- */

static void refs_free(sidecar_node_refs_t *r)
{
    for (size_t i = 0; r->refs && i < r->n; i++) {
        free(r->refs[i].name);
    }
    free(r->refs);
}

void sidecar_config_elections_free(sidecar_election_list_t *list)
{
    for (size_t i = 0; list->items && i < list->n; i++) {
        sidecar_election_config_t *e = &list->items[i];
        free(e->name);
        config_argv_free(&e->exec);
        config_argv_free(&e->on_start);
        config_argv_free(&e->on_stop);
        config_argv_free(&e->on_change);
        refs_free(&e->prefer);
        refs_free(&e->avoid);
    }
    free(list->items);
    memset(list, 0, sizeof(*list));
}

static int find_by_name(const void *key, const void *item)
{
    return strcmp(key, ((const sidecar_election_config_t *)item)->name);
}

const sidecar_election_config_t *sidecar_config_election_find(const sidecar_election_list_t *list,
                                                              const char *name)
{
    if (list->n == 0) {
        return NULL;
    }
    return bsearch(name, list->items, list->n, sizeof(*list->items), find_by_name);
}

size_t sidecar_config_elections_warn(const sidecar_election_list_t *list)
{
    size_t n = 0;
    for (size_t i = 0; i < list->n; i++) {
        const sidecar_election_config_t *e = &list->items[i];
        const sidecar_node_refs_t *lists[] = {&e->prefer, &e->avoid};
        for (size_t l = 0; l < 2; l++) {
            for (size_t k = 0; k < lists[l]->n; k++) {
                if (lists[l]->refs[k].known) {
                    continue;
                }
                SIDECAR_LOG(SIDECAR_LOG_WARN, "election names a member that is not in --peers",
                            SIDECAR_LOG_STR("election", e->name),
                            SIDECAR_LOG_STR("member", lists[l]->refs[k].name),
                            SIDECAR_LOG_STR("list", l == 0 ? "prefer" : "avoid"));
                n++;
            }
        }
    }
    return n;
}
