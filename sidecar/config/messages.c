/* messages.c — the one-line refusals of the configuration: "electd: invalid <where>
 * <value>: <why>", naming the setting as the user gave it (flag, ELECTD_* variable or key of
 * the config file), quoting the value safely and never echoing a secret. */
#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "config_int.h"

int config_fail(parser_t *p, int code, const char *fmt, ...)
{
    va_list ap;
    if (p->err == NULL || p->err_size == 0) {
        return code;
    }
    int n = snprintf(p->err, p->err_size, "electd: ");
    if (n > 0 && (size_t)n < p->err_size) {
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->err_size - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

void config_show_text(const char *s, char *buf, size_t size)
{
    size_t o = 0;
    assert(size >= 16);
    buf[o++] = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (o + 8 >= size || (size_t)((const char *)c - s) >= SHOW_MAX) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (*c == '"' || *c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)*c;
        } else if (*c < 0x20 || *c >= 0x7f) {
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", *c);
        } else {
            buf[o++] = (char)*c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

static const char *json_type_name(const cJSON *j)
{
    if (cJSON_IsBool(j)) {
        return "a boolean";
    } else if (cJSON_IsNumber(j)) {
        return "a number";
    } else if (cJSON_IsString(j)) {
        return "a string";
    } else if (cJSON_IsArray(j)) {
        return "an array";
    } else if (cJSON_IsObject(j)) {
        return "an object";
    } else if (cJSON_IsNull(j)) {
        return "null";
    }
    return "an invalid value";
}

static void show_value(const setting_t *s, const value_t *v, char *buf, size_t size)
{
    if (s->flags & F_SECRET) {
        snprintf(buf, size, "(value hidden)");
    } else if (v->origin == O_FILE && !cJSON_IsString(v->json)) {
        if (cJSON_IsNumber(v->json)) {
            snprintf(buf, size, "%.17g", v->json->valuedouble);
        } else {
            snprintf(buf, size, "(%s)", json_type_name(v->json));
        }
    } else if (v->origin == O_FILE) {
        config_show_text(v->json->valuestring, buf, size);
    } else if (v->text == NULL) {
        snprintf(buf, size, "(no value)");
    } else {
        config_show_text(v->text, buf, size);
    }
}

int config_invalid(parser_t *p, const setting_t *s, const value_t *v, const char *why_fmt, ...)
{
    char shown[SHOW_MAX + 32], why[WHY_MAX], env[SIDECAR_CONFIG_ENV_NAME_MAX];
    va_list ap;
    va_start(ap, why_fmt);
    vsnprintf(why, sizeof(why), why_fmt, ap);
    va_end(ap);
    show_value(s, v, shown, sizeof(shown));
    switch (v->origin) {
    case O_ENV:
        sidecar_config_env_name(s->pub.name, env, sizeof(env));
        return config_fail(p, SIDECAR_CONFIG_EINVAL, "invalid %s %s: %s", env, shown, why);
    case O_FILE:
        if (p->election) {
            return config_fail(p, SIDECAR_CONFIG_EINVAL,
                               "invalid \"%s\" %s in election \"%s\" of %s: %s", s->pub.name, shown,
                               p->election, p->file_label, why);
        }
        return config_fail(p, SIDECAR_CONFIG_EINVAL, "invalid \"%s\" %s in %s: %s", s->pub.name,
                           shown, p->file_label, why);
    case O_DEFAULT:
        assert(!"a default in the settings table does not parse");
        return config_fail(p, SIDECAR_CONFIG_EINVAL, "invalid default of --%s %s: %s", s->pub.name,
                           shown, why);
    default:
        return config_fail(p, SIDECAR_CONFIG_EINVAL, "invalid --%s %s: %s", s->pub.name, shown,
                           why);
    }
}

char *config_dup(parser_t *p, const char *s, int *rc)
{
    char *d = strdup(s);
    *rc = d ? 0 : config_fail(p, SIDECAR_CONFIG_ENOMEM, "out of memory");
    return d;
}

/* ---- "did you mean" ----------------------------------------------------------------- */

#define SUGGEST_NAME_MAX 64 /* longer names get no suggestion */

/* The edit distance (insert, delete, replace, swap of neighbours) between a and b, both at
 * most SUGGEST_NAME_MAX bytes. */
static size_t edit_distance(const char *a, size_t na, const char *b, size_t nb)
{
    size_t rows[3][SUGGEST_NAME_MAX + 1];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= nb; j++) {
        prev[j] = j;
    }
    for (size_t i = 1; i <= na; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t d = prev[j - 1] + cost;
            d = prev[j] + 1 < d ? prev[j] + 1 : d;
            d = cur[j - 1] + 1 < d ? cur[j - 1] + 1 : d;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < d) {
                d = prev2[j - 2] + 1;
            }
            cur[j] = d;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[nb];
}

void config_suggest(const char *given, config_spelling_t form, char *buf, size_t size)
{
    char norm[SUGGEST_NAME_MAX + 1], env[SIDECAR_CONFIG_ENV_NAME_MAX];
    size_t n = strlen(given), best_d = SIZE_MAX;
    const setting_t *best = NULL;
    buf[0] = '\0';
    if (n == 0 || n > SUGGEST_NAME_MAX) {
        return;
    }
    for (size_t i = 0; i < n; i++) { /* case and '_' for '-' are the commonest slips */
        norm[i] = given[i] == '_' ? '-' : (char)tolower((unsigned char)given[i]);
    }
    norm[n] = '\0';
    size_t limit = n >= 6 ? 2 : 1;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting_t *s = &config_settings[i];
        size_t ns = strlen(s->pub.name);
        if ((form == CONFIG_SPELL_ENV && !s->pub.env) ||
            (form == CONFIG_SPELL_KEY && !s->pub.file) || ns > SUGGEST_NAME_MAX) {
            continue;
        }
        size_t d = edit_distance(norm, n, s->pub.name, ns);
        if (d <= limit && d < best_d) {
            best = s;
            best_d = d;
        }
    }
    if (best == NULL) {
        return;
    }
    if (form == CONFIG_SPELL_KEY) {
        snprintf(buf, size, " (did you mean \"%s\"?)", best->pub.name);
    } else if (form == CONFIG_SPELL_FLAG) {
        snprintf(buf, size, " (did you mean --%s?)", best->pub.name);
    } else {
        sidecar_config_env_name(best->pub.name, env, sizeof(env));
        snprintf(buf, size, " (did you mean --%s / %s?)", best->pub.name, env);
    }
}
