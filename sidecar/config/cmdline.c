/* cmdline.c — pass 1 of a parse: the command line. getopt_long, driven by the settings
 * table, collects each flag's value (borrowed pointers into argv) and the workload command
 * after `--`; flags must be written in full. --help and --version end the parse here. */
#include <getopt.h>
#include <string.h>

#include "config_int.h"

static void build_options(struct option *opts)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting_t *s = &config_settings[i];
        int has_arg = required_argument;
        if (s->pub.unit == NULL) {
            has_arg = no_argument;
        } else if (s->type == T_BOOL || (s->flags & F_TAIL)) {
            has_arg = optional_argument; /* --witness, --witness=false; --exec -- CMD */
        }
        opts[i] = (struct option){s->pub.name, has_arg, NULL, OPT_BASE + (int)i};
    }
    opts[N_SETTINGS] = (struct option){0};
}

/* "unknown flag", with the setting it is likely a typo of. */
static int unknown_flag(parser_t *p, const char *tok, const char *shown)
{
    char name[SHOW_MAX + 1], hint[CONFIG_SUGGEST_MAX];
    const char *start = tok + strspn(tok, "-");
    size_t n = strcspn(start, "=");
    if (n >= sizeof(name)) {
        n = 0; /* too long to be a typo of a name */
    }
    memcpy(name, start, n);
    name[n] = '\0';
    config_suggest(name, CONFIG_SPELL_FLAG, hint, sizeof(hint));
    if (hint[0] != '\0') {
        return config_fail(p, SIDECAR_CONFIG_EINVAL, "unknown flag %s%s", shown, hint);
    }
    return config_fail(p, SIDECAR_CONFIG_EINVAL, "unknown flag %s (see electd --help)", shown);
}

/* One flag that getopt_long returned as c, written as tok: its value into p->flag, or the
 * action for --help and --version. */
static int take_flag(parser_t *p, int c, const char *tok)
{
    char shown[SHOW_MAX + 16];
    config_show_text(tok, shown, sizeof(shown));
    if (c == ':') {
        return config_fail(p, SIDECAR_CONFIG_EINVAL, "%s needs a value (see electd --help)", tok);
    }
    if (c < OPT_BASE || c >= OPT_BASE + (int)N_SETTINGS) {
        return unknown_flag(p, tok, shown);
    }
    size_t idx = (size_t)(c - OPT_BASE);
    const setting_t *s = &config_settings[idx];
    size_t nl = strlen(s->pub.name);
    /* getopt_long accepts unique prefixes; flags are a public interface and a prefix that is
     * unique today may not be tomorrow, so only full names are accepted. */
    if (strncmp(tok, "--", 2) != 0 || strncmp(tok + 2, s->pub.name, nl) != 0 ||
        (tok[2 + nl] != '\0' && tok[2 + nl] != '=')) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "unknown flag %s (write flags in full, e.g. --%s)", shown, s->pub.name);
    }
    if (strcmp(s->pub.name, "help") == 0) {
        p->cfg->action = SIDECAR_CONFIG_HELP;
    } else if (strcmp(s->pub.name, "version") == 0) {
        p->cfg->action = SIDECAR_CONFIG_VERSION;
    } else {
        p->flag[idx] = (value_t){.origin = O_FLAG, .text = optarg};
    }
    return 0;
}

/* What follows the flags: nothing, or `--` and the workload command, which needs --exec. */
static int take_tail(parser_t *p, int rest, int last_end)
{
    const sidecar_config_source_t *src = p->src;
    p->dashdash = rest > last_end && rest - 1 < src->argc && strcmp(src->argv[rest - 1], "--") == 0;
    if (rest < src->argc && !p->dashdash) {
        char shown[SHOW_MAX + 16];
        config_show_text(src->argv[rest], shown, sizeof(shown));
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "unexpected argument %s (flags take --flag VALUE or --flag=VALUE; "
                           "booleans --flag or --flag=false; the workload goes after --exec --)",
                           shown);
    }
    if (p->dashdash) {
        p->tail = src->argv + rest;
        p->n_tail = (size_t)(src->argc - rest);
    }
    size_t exec_idx = 0;
    config_find_setting("exec", &exec_idx);
    const value_t *ex = &p->flag[exec_idx];
    if (p->dashdash && ex->origin != O_FLAG) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL,
                           "arguments after -- are the workload command and need --exec, e.g. "
                           "--exec -- /usr/bin/worker -v");
    }
    if (ex->origin == O_FLAG && ex->text && p->dashdash) {
        return config_fail(
            p, SIDECAR_CONFIG_EINVAL,
            "give the workload command either as --exec=CMD or after --exec --, not both");
    }
    if (ex->origin == O_FLAG && ex->text == NULL && p->n_tail == 0) {
        return config_fail(
            p, SIDECAR_CONFIG_EINVAL,
            "--exec needs the workload command after --, e.g. --exec -- /usr/bin/worker -v");
    }
    return 0;
}

int config_scan_argv(parser_t *p)
{
    struct option opts[N_SETTINGS + 1];
    const sidecar_config_source_t *src = p->src;
    int last_end = 1;

    build_options(opts);
    if (src->argc <= 0 || src->argv == NULL) {
        return 0;
    }
    /* "+": stop at the first non-flag instead of permuting argv; ":": report a missing
     * value as ':'. optind = 0 makes glibc start afresh (tests parse many times). */
    optind = 0;
    opterr = 0;
    for (int guard = 0; guard < src->argc; guard++) {
        int start = optind == 0 ? 1 : optind;
        int c = getopt_long(src->argc, src->argv, "+:", opts, NULL);
        if (c == -1) {
            break;
        }
        int rc = take_flag(p, c, start < src->argc ? src->argv[start] : "");
        if (rc != 0 || p->cfg->action != SIDECAR_CONFIG_RUN) {
            return rc;
        }
        last_end = optind;
    }
    return take_tail(p, optind, last_end);
}
