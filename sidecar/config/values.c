/* values.c — one value into its field of sidecar_config_t: the text (or JSON node) a flag,
 * ELECTD_* variable, the config file or a default gave, parsed by the setting's type. The
 * parsing is common's, one parser per kind of value (common/parse.c, shared with the CLI);
 * the ranges and the messages that name the setting are config's. */
#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config_int.h"

/* A setting's bound in the syntax its values take. */
static void format_bound(const setting_t *s, uint32_t v, char *buf, size_t size)
{
    if (s->type == T_DURATION) {
        sidecar_format_duration(v, buf, size);
    } else if (s->type == T_SIZE) {
        sidecar_format_size(v, buf, size);
    } else {
        snprintf(buf, size, "%u", v);
    }
}

/* A DURATION, SIZE or COUNT into a range-checked uint32_t. */
static int set_number(parser_t *p, const setting_t *s, const value_t *v, const char *text,
                      uint32_t *dst)
{
    const char *expect = s->type == T_DURATION ? "expected a duration like 500ms, 2s or 1m"
                         : s->type == T_SIZE   ? "expected a size like 8KiB or 1MiB"
                                               : "expected a whole number";
    uint64_t n = 0;
    char bound[32];
    if (text[0] == '-') {
        return config_invalid(p, s, v, "%s, not a negative one", expect);
    }
    int rc = s->type == T_DURATION ? sidecar_parse_duration_ms(text, &n)
             : s->type == T_SIZE   ? sidecar_parse_size_bytes(text, &n)
                                   : sidecar_parse_count(text, &n);
    if (rc == SIDECAR_PARSE_ESYNTAX) {
        return config_invalid(p, s, v, "%s", expect);
    }
    if (rc == SIDECAR_PARSE_ERANGE || n > s->max) {
        format_bound(s, s->max, bound, sizeof(bound));
        return config_invalid(p, s, v, "too large: at most %s", bound);
    }
    if (n < s->min) {
        format_bound(s, s->min, bound, sizeof(bound));
        return config_invalid(p, s, v, "must be at least %s", bound);
    }
    *dst = (uint32_t)n;
    return 0;
}

static int set_fraction(parser_t *p, const setting_t *s, const value_t *v, const char *text)
{
    double lo = s->min / (double)PPM_ONE, hi = s->max / (double)PPM_ONE;
    if (text[0] == '-') {
        return config_invalid(p, s, v, "must not be negative: expected a number in [%g, %g)", lo,
                              hi);
    }
    double d = 0;
    int rc = sidecar_parse_fraction(text, &d);
    if (rc == SIDECAR_PARSE_ESYNTAX) {
        return config_invalid(p, s, v, "expected a number in [%g, %g), e.g. 0.05", lo, hi);
    }
    if (rc != 0 || !(d >= lo && d < hi)) {
        return config_invalid(p, s, v, "must be in [%g, %g)", lo, hi);
    }
    assert(s->offset == offsetof(sidecar_config_t, max_drift));
    p->cfg->max_drift = d;
    p->cfg->max_drift_ppm = (uint32_t)llround(d * PPM_ONE);
    return 0;
}

static int set_bool(parser_t *p, const setting_t *s, const value_t *v, const char *text, bool *dst)
{
    if (text == NULL) {
        *dst = true; /* a bare flag: --witness */
        return 0;
    }
    if (sidecar_parse_bool(text, dst) != 0) {
        return config_invalid(p, s, v, "expected true, false, 1 or 0");
    }
    return 0;
}

static int set_enum(parser_t *p, const setting_t *s, const value_t *v, const char *text, void *dst)
{
    const char *const *ch = config_choices_of(s);
    char list[128] = "";
    assert(ch != NULL);
    for (int i = 0; ch[i]; i++) {
        if (strcmp(text, ch[i]) == 0) {
            /* both enums are int-sized; the table row says which one this is */
            int value = i;
            memcpy(dst, &value, sizeof(value));
            return 0;
        }
        size_t n = strlen(list);
        snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", ch[i]);
    }
    return config_invalid(p, s, v, "expected one of %s", list);
}

static int set_string(parser_t *p, const setting_t *s, const value_t *v, const char *text,
                      char **dst)
{
    int rc = 0;
    char msg[96];
    switch (s->type) {
    case T_NAME:
        if (!sidecar_parse_name_valid(text)) {
            return config_invalid(p, s, v,
                                  "expected 1-%d letters, digits, '.', '_' or '-', starting with a "
                                  "letter or digit",
                                  SIDECAR_NAME_MAX);
        }
        break;
    case T_TOKEN: {
        size_t n = strlen(text);
        bool ok = n > 0 && n <= SIDECAR_CONFIG_TOKEN_MAX;
        for (size_t i = 0; ok && i < n; i++) {
            ok = text[i] > ' ' && text[i] < 0x7f;
        }
        if (!ok) {
            return config_invalid(p, s, v, "expected 1-%d visible ASCII characters without spaces",
                                  SIDECAR_CONFIG_TOKEN_MAX);
        }
        break;
    }
    case T_PATH: {
        bool ok = text[0] != '\0' && strlen(text) < PATH_MAX;
        for (const char *c = text; ok && *c; c++) {
            ok = (unsigned char)*c >= ' ';
        }
        if (!ok) {
            snprintf(msg, sizeof(msg), "expected a path of 1-%d bytes without control characters",
                     PATH_MAX - 1);
            return config_invalid(p, s, v, "%s", msg);
        }
        break;
    }
    default:
        assert(!"not a string type");
    }
    *dst = config_dup(p, text, &rc);
    return rc;
}

int sidecar_config_hostport_parse(const char *text, char *host, size_t host_size, uint16_t *port)
{
    return sidecar_parse_hostport(text, false, host, host_size, port, NULL, 0) == 0
               ? 0
               : SIDECAR_CONFIG_EINVAL;
}

bool sidecar_config_name_valid(const char *name)
{
    return sidecar_parse_name_valid(name);
}

static int set_addr(parser_t *p, const setting_t *s, const value_t *v, const char *text,
                    sidecar_addr_t *dst)
{
    char host[SIDECAR_HOST_MAX + 1], why[WHY_MAX];
    int rc = 0;
    if (sidecar_parse_hostport(text, s->flags & F_PORT0, host, sizeof(host), &dst->port, why,
                               sizeof(why)) != 0) {
        return config_invalid(p, s, v, "%s", why);
    }
    dst->host = config_dup(p, host, &rc);
    return rc;
}

/* The text a JSON scalar stands for, for the types that accept it. */
static bool json_text(const setting_t *s, const cJSON *j, char *buf, size_t size, const char **text)
{
    if (cJSON_IsString(j)) {
        *text = j->valuestring;
        return true;
    }
    bool numeric = s->type == T_DURATION || s->type == T_SIZE || s->type == T_COUNT ||
                   s->type == T_FRACTION || s->type == T_BOOL;
    if (cJSON_IsNumber(j) && numeric) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) < 1e15) {
            snprintf(buf, size, "%.0f", d);
        } else {
            snprintf(buf, size, "%.17g", d);
        }
        *text = buf;
        return true;
    }
    if (cJSON_IsBool(j) && s->type == T_BOOL) {
        *text = cJSON_IsTrue(j) ? "true" : "false";
        return true;
    }
    return false;
}

static const char *type_expectation(const setting_t *s)
{
    switch (s->type) {
    case T_DURATION:
        return "expected a duration like \"500ms\", \"2s\" or \"1m\", or a number of "
               "milliseconds";
    case T_SIZE:
        return "expected a size like \"8KiB\" or \"1MiB\", or a number of bytes";
    case T_COUNT:
        return "expected a whole number";
    case T_FRACTION:
        return "expected a number like 0.05";
    case T_BOOL:
        return "expected true or false";
    case T_PEERS:
        return "expected \"name=host:port,...\" or an array of \"name=host:port\" strings";
    case T_ARGV:
        return "expected an array of strings or a string of words";
    default:
        return "expected a string";
    }
}

static bool looks_like_json_array(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n') {
        s++;
    }
    return *s == '[';
}

/* The text, or the JSON array, that v stands for. A JSON array given in the environment is
 * parsed into *owned, which the caller deletes. */
static int value_input(parser_t *p, const setting_t *s, const value_t *v, char *num,
                       size_t num_size, const char **text, const cJSON **array, cJSON **owned)
{
    *text = v->text;
    *array = NULL;
    if (v->origin == O_FILE) {
        if ((s->type == T_ARGV || s->type == T_PEERS) && cJSON_IsArray(v->json)) {
            *array = v->json;
        } else if (!json_text(s, v->json, num, num_size, text)) {
            return config_invalid(p, s, v, "%s", type_expectation(s));
        }
    }
    if (*text && strlen(*text) > SIDECAR_CONFIG_VALUE_MAX) {
        return config_invalid(p, s, v, "longer than %d bytes", SIDECAR_CONFIG_VALUE_MAX);
    }
    if (v->origin == O_ENV && s->type == T_ARGV && looks_like_json_array(*text)) {
        *owned = cJSON_Parse(*text);
        if (*owned == NULL || !cJSON_IsArray(*owned)) {
            return config_invalid(p, s, v, "starts with '[' but is not a JSON array of strings");
        }
        *array = *owned;
    }
    if (*text == NULL && *array == NULL && s->type != T_BOOL && !(s->flags & F_TAIL)) {
        return config_invalid(p, s, v, "a value is needed");
    }
    return 0;
}

/* Parses text or array by s's type into dst, the field s names. */
static int store(parser_t *p, const setting_t *s, const value_t *v, const char *text,
                 const cJSON *array, void *dst)
{
    switch (s->type) {
    case T_NAME:
    case T_TOKEN:
    case T_PATH:
        return set_string(p, s, v, text, (char **)dst);
    case T_ADDR:
        return set_addr(p, s, v, text, (sidecar_addr_t *)dst);
    case T_PEERS:
        return config_set_peers(p, s, v, text, array);
    case T_DURATION:
    case T_COUNT:
    case T_SIZE:
        return set_number(p, s, v, text, (uint32_t *)dst);
    case T_FRACTION:
        return set_fraction(p, s, v, text);
    case T_BOOL:
        return set_bool(p, s, v, text, (bool *)dst);
    case T_ENUM:
        return set_enum(p, s, v, text, dst);
    case T_ARGV: {
        bool from_tail = v->origin == O_FLAG && (s->flags & F_TAIL) && text == NULL;
        return config_set_argv(p, s, v, text, array, from_tail, (sidecar_argv_t *)dst);
    }
    default:
        assert(!"T_META is not applied");
        return SIDECAR_CONFIG_EINVAL;
    }
}

int config_apply(parser_t *p, const setting_t *s, const value_t *v)
{
    return config_apply_to(p, s, v, (char *)p->cfg + s->offset);
}

int config_apply_to(parser_t *p, const setting_t *s, const value_t *v, void *dst)
{
    const char *text;
    const cJSON *array;
    cJSON *owned = NULL;
    char num[64];
    int rc = value_input(p, s, v, num, sizeof(num), &text, &array, &owned);
    if (rc == 0) {
        rc = store(p, s, v, text, array, dst);
    }
    cJSON_Delete(owned);
    return rc;
}
