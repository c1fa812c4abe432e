/* help.c — what electd prints about its settings: `electd --help` from the table, each
 * setting's effective value in the syntax a flag would take (secrets as "(set)"), and the
 * "configuration" line logged at start. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "config_int.h"

/* ---- the effective values ---------------------------------------------------------- */

typedef struct out {
    char *buf;
    size_t size, len;
    bool cut;
} out_t;

static void out_add(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out_add(out_t *o, const char *fmt, ...)
{
    va_list ap;
    if (o->cut) {
        return;
    }
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->size - o->len) {
        o->cut = true;
        o->len = strlen(o->buf);
    } else {
        o->len += (size_t)n;
    }
}

static void out_addr(out_t *o, const char *host, uint16_t port)
{
    out_add(o, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
}

/* A value held as text: a name, token, path, address, the peers or a command. */
static void format_text(out_t *o, const sidecar_config_t *cfg, const setting_t *s, const void *src)
{
    switch (s->type) {
    case T_NAME:
    case T_TOKEN:
    case T_PATH: {
        const char *v = *(char *const *)src;
        if (s->flags & F_SECRET) {
            out_add(o, "%s", v ? "(set)" : "(unset)");
        } else {
            out_add(o, "%s", v ? v : "");
        }
        break;
    }
    case T_ADDR: {
        const sidecar_addr_t *a = src;
        if (a->host) {
            out_addr(o, a->host, a->port);
        }
        break;
    }
    case T_PEERS:
        for (size_t k = 0; k < cfg->n_peers; k++) {
            out_add(o, "%s%s=", k ? "," : "", cfg->peers[k].name);
            out_addr(o, cfg->peers[k].host, cfg->peers[k].port);
        }
        break;
    case T_ARGV: {
        const sidecar_argv_t *a = src;
        for (size_t k = 0; k < a->argc; k++) {
            out_add(o, "%s%s", k ? " " : "", a->argv[k]);
        }
        break;
    }
    default:
        break;
    }
}

/* A number (with common's formatters for durations and sizes), boolean or choice. */
static void format_scalar(out_t *o, const sidecar_config_t *cfg, const setting_t *s,
                          const void *src)
{
    char t[32];
    switch (s->type) {
    case T_DURATION:
        sidecar_format_duration(*(const uint32_t *)src, t, sizeof(t));
        out_add(o, "%s", t);
        break;
    case T_SIZE: {
        uint32_t b = *(const uint32_t *)src;
        if (b >= 1024 && b % 1024 == 0) {
            sidecar_format_size(b, t, sizeof(t));
            out_add(o, "%s", t);
        } else {
            out_add(o, "%u", b); /* not "N bytes": the value must parse back */
        }
        break;
    }
    case T_COUNT:
        out_add(o, "%u", *(const uint32_t *)src);
        break;
    case T_FRACTION:
        out_add(o, "%g", cfg->max_drift);
        break;
    case T_BOOL:
        out_add(o, "%s", *(const bool *)src ? "true" : "false");
        break;
    case T_ENUM: {
        int v;
        memcpy(&v, src, sizeof(v));
        const char *const *ch = config_choices_of(s);
        out_add(o, "%s", v >= 0 && v < 8 && ch[v] ? ch[v] : "?");
        break;
    }
    default:
        break;
    }
}

int sidecar_config_value_format(const sidecar_config_t *cfg, size_t i, char *buf, size_t size)
{
    ELECTD_CHECK(i < N_SETTINGS);
    const setting_t *s = &config_settings[i];
    const void *src = (const char *)cfg + s->offset;
    out_t o = {.buf = buf, .size = size};
    if (size == 0) {
        return SIDECAR_CONFIG_EINVAL;
    }
    buf[0] = '\0';
    if (s->type == T_META) {
        if (strcmp(s->pub.name, "config") != 0) {
            return SIDECAR_CONFIG_EINVAL;
        }
        out_add(&o, "%s", cfg->config_path ? cfg->config_path : "");
    }
    format_text(&o, cfg, s, src);
    format_scalar(&o, cfg, s, src);
    return o.cut ? SIDECAR_CONFIG_EINVAL : (int)o.len;
}

void sidecar_config_log_effective(const sidecar_config_t *cfg)
{
    enum { VALUE_MAX = 256 };
    static char values[N_SETTINGS][VALUE_MAX]; /* ~8 KiB: off the stack; loop thread only */
    sidecar_log_field_t fields[N_SETTINGS];
    size_t n = 0;
    if (!sidecar_log_enabled(SIDECAR_LOG_INFO)) {
        return;
    }
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (config_settings[i].type == T_META &&
            strcmp(config_settings[i].pub.name, "config") != 0) {
            continue;
        }
        sidecar_config_value_format(cfg, i, values[n], VALUE_MAX); /* a cut value is fine */
        fields[n] = SIDECAR_LOG_STR(config_settings[i].pub.name, values[n]);
        n++;
    }
    sidecar_log_fields(SIDECAR_LOG_INFO, "configuration", fields, n);
}

/* ---- --help ------------------------------------------------------------------------- */

void sidecar_config_help(FILE *out)
{
    char env[SIDECAR_CONFIG_ENV_NAME_MAX], flag[96];
    fprintf(out, "Usage: electd [FLAGS] [--exec -- COMMAND [ARGS...]]\n"
                 "       electd status|leader|transfer|kv|members|elections|backup|maintenance|"
                 "help [OPTIONS]   (the client)\n"
                 "\n"
                 "electd runs beside each copy of a workload. The electd processes of all copies\n"
                 "elect one leader; only the leader holding a valid lease runs the workload as\n"
                 "primary.\n"
                 "\n"
                 "Every setting is a flag, an environment variable ELECTD_<NAME> (upper case,\n"
                 "'-' becomes '_') and a key of the JSON file given with --config.\n"
                 "Precedence: flag > environment > config file > default. An unknown flag,\n"
                 "file key or set ELECTD_* variable is refused (not the variables electd gives\n"
                 "its workload; see docs/configuration.md).\n"
                 "Durations take ms, s, m or h (a bare number is ms); sizes take B, KiB, MiB or\n"
                 "GiB (a bare number is bytes); booleans are true, false, 1 or 0 (a bare flag is\n"
                 "true).\n"
                 "\n"
                 "Named elections are declared in the config file only, under the key\n"
                 "\"elections\": several workloads, each with its own primary, spread over the\n"
                 "members (see docs/configuration.md). The workload of --exec or the hooks is\n"
                 "the election named \"default\".\n"
                 "\n"
                 "Settings:\n");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting_t *s = &config_settings[i];
        const char *unit = s->pub.unit;
        if (unit == NULL) {
            snprintf(flag, sizeof(flag), "--%s", s->pub.name);
        } else if (s->type == T_BOOL) {
            snprintf(flag, sizeof(flag), "--%s[=%s]", s->pub.name, unit);
        } else {
            snprintf(flag, sizeof(flag), "--%s %s", s->pub.name, unit);
        }
        if (s->pub.env) {
            sidecar_config_env_name(s->pub.name, env, sizeof(env));
            fprintf(out, "  %-36s env %s", flag, env);
        } else {
            fprintf(out, "  %s", flag);
        }
        if (s->flags & F_REQUIRED) {
            fprintf(out, ", required");
        } else if (s->pub.def && !(s->flags & F_SECRET)) {
            fprintf(out, ", default %s", s->pub.def);
        }
        fprintf(out, "\n      %s\n", s->pub.help);
    }
    fprintf(out, "\n"
                 "The same binary is the client of a running member's HTTP API:\n"
                 "  electd status | leader | transfer | kv get|put|del|ls | members | elections\n"
                 "         | backup FILE | help\n"
                 "(electd help lists their options; docs/api.md, \"Client subcommands\").\n");
}
