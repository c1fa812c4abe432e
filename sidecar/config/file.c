/* file.c — pass 2 of a parse: the JSON config file that --config (or ELECTD_CONFIG) names, at
 * most SIDECAR_CONFIG_FILE_MAX bytes, holding one object. Every key is matched against the
 * settings table here, so that an unknown key is refused even when a flag overrides it;
 * values are parsed later, in precedence order (resolve.c). The one key that is not a
 * setting, "elections", is kept for elections.c (it has no flag and no variable). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_int.h"

static int read_file(parser_t *p, const char *path, size_t *len)
{
    char shown[SHOW_MAX + 16];
    struct stat st;
    size_t n = 0;
    int rc = 0;
    config_show_text(path, shown, sizeof(shown));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return config_fail(p, SIDECAR_CONFIG_EFILE, "cannot read --config %s: %s", shown,
                           strerror(errno));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = config_fail(p, SIDECAR_CONFIG_EFILE, "--config %s is not a regular file", shown);
        goto done;
    }
    p->file_buf = malloc(SIDECAR_CONFIG_FILE_MAX + 1);
    if (p->file_buf == NULL) {
        rc = config_fail(p, SIDECAR_CONFIG_ENOMEM, "out of memory");
        goto done;
    }
    /* bounded: each round reads at least one byte or ends the loop */
    while (n <= SIDECAR_CONFIG_FILE_MAX) {
        ssize_t r = read(fd, p->file_buf + n, SIDECAR_CONFIG_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            rc = config_fail(p, SIDECAR_CONFIG_EFILE, "cannot read --config %s: %s", shown,
                             strerror(errno));
            goto done;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
    }
    if (n > SIDECAR_CONFIG_FILE_MAX) {
        rc = config_fail(p, SIDECAR_CONFIG_EFILE, "--config %s is larger than %d bytes", shown,
                         SIDECAR_CONFIG_FILE_MAX);
        goto done;
    }
    *len = n;
done:
    close(fd);
    return rc;
}

static void line_col(const char *text, size_t pos, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < pos; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* The file's name from --config or ELECTD_CONFIG (an empty variable counts as unset), kept
 * in cfg->config_path; *path NULL when there is none. */
static int find_path(parser_t *p, const char **path)
{
    const sidecar_config_source_t *src = p->src;
    char env[SIDECAR_CONFIG_ENV_NAME_MAX];
    size_t idx = 0;
    int rc = 0;
    *path = NULL;
    config_find_setting("config", &idx);
    if (p->flag[idx].origin == O_FLAG) {
        *path = p->flag[idx].text;
        p->origin[idx] = O_FLAG;
    } else if (src->getenv_cb) {
        sidecar_config_env_name("config", env, sizeof(env));
        *path = src->getenv_cb(env, src->getenv_ud);
        if (*path && (*path)[0] == '\0') {
            *path = NULL;
        }
        p->origin[idx] = *path ? O_ENV : O_NONE;
    }
    if (*path && ((*path)[0] == '\0' || strlen(*path) >= PATH_MAX)) {
        return config_fail(p, SIDECAR_CONFIG_EINVAL, "invalid --config: expected a file name");
    }
    if (*path) {
        p->cfg->config_path = config_dup(p, *path, &rc);
    }
    p->file_label = *path ? p->cfg->config_path : "the config file";
    return rc;
}

/* The JSON text must be one object and nothing after it. */
static int parse_json(parser_t *p, const char *text, size_t len)
{
    const char *end = NULL;
    int line, col;
    p->root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (p->root == NULL) {
        size_t pos = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        line_col(text, pos, &line, &col);
        return config_fail(p, SIDECAR_CONFIG_EFILE, "%s:%d:%d: not valid JSON", p->file_label, line,
                           col);
    }
    size_t pos = (size_t)(end - text);
    while (pos < len &&
           (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n' || text[pos] == '\r')) {
        pos++;
    }
    if (pos < len) {
        line_col(text, pos, &line, &col);
        return config_fail(p, SIDECAR_CONFIG_EFILE,
                           "%s:%d:%d: unexpected text after the JSON object", p->file_label, line,
                           col);
    }
    if (!cJSON_IsObject(p->root)) {
        return config_fail(p, SIDECAR_CONFIG_EFILE,
                           "%s: expected a JSON object of settings, e.g. {\"name\": \"a\"}",
                           p->file_label);
    }
    return 0;
}

/* Every key names a distinct setting that the file may hold: p->file[index] = its value. */
static int match_keys(parser_t *p)
{
    char shown[SHOW_MAX + 16];
    size_t idx = 0;
    /* bounded: every key must be a distinct setting (or "elections"), so at most
     * N_SETTINGS + 1 succeed */
    for (const cJSON *j = p->root->child; j; j = j->next) {
        if (j->string && strcmp(j->string, "elections") == 0) {
            if (p->elections) {
                return config_fail(p, SIDECAR_CONFIG_EFILE,
                                   "%s: setting \"elections\" appears twice", p->file_label);
            }
            p->elections = j;
            continue;
        }
        const setting_t *s = j->string ? config_find_setting(j->string, &idx) : NULL;
        config_show_text(j->string ? j->string : "", shown, sizeof(shown));
        if (s == NULL) {
            char hint[CONFIG_SUGGEST_MAX];
            config_suggest(j->string ? j->string : "", CONFIG_SPELL_KEY, hint, sizeof(hint));
            return config_fail(p, SIDECAR_CONFIG_EFILE, "%s: unknown setting %s%s", p->file_label,
                               shown, hint[0] ? hint : " (see electd --help)");
        }
        if (!s->pub.file) {
            return config_fail(p, SIDECAR_CONFIG_EFILE, "%s: %s cannot be set in the config file",
                               p->file_label, shown);
        }
        if (p->file[idx]) {
            return config_fail(p, SIDECAR_CONFIG_EFILE, "%s: setting %s appears twice",
                               p->file_label, shown);
        }
        p->file[idx] = j;
    }
    return 0;
}

/* The length of the JSON string at text[0] == '"' (quotes included) within len; *nul set when
 * it holds the escape \u0000, which cJSON would turn into a C string cut short. The text
 * has already parsed as JSON. */
static size_t string_span(const char *text, size_t len, bool *nul)
{
    size_t i = 1;
    *nul = false;
    while (i < len && text[i] != '"') {
        if (text[i] == '\\' && i + 1 < len) {
            if (text[i + 1] == 'u' && i + 6 <= len && strncmp(text + i + 2, "0000", 4) == 0) {
                *nul = true;
            }
            i += 2;
        } else {
            i++;
        }
    }
    return i < len ? i + 1 : len;
}

/* Refuses a string (key or value) holding a NUL: "name": "a\u0000b" must not become "a".
 * Names the top-level setting it is in. */
static int refuse_nul(parser_t *p, const char *text, size_t len)
{
    char shown[SHOW_MAX + 16], key[SHOW_MAX + 1] = "";
    int depth = 0;
    /* bounded: each round moves i forward by at least one byte */
    for (size_t i = 0; i < len;) {
        char c = text[i];
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
        if (c != '"') {
            i++;
            continue;
        }
        bool nul;
        size_t n = string_span(text + i, len - i, &nul);
        size_t after = i + n;
        while (after < len && (text[after] == ' ' || text[after] == '\t' || text[after] == '\n' ||
                               text[after] == '\r')) {
            after++;
        }
        bool is_key = depth == 1 && after < len && text[after] == ':';
        if (is_key) {
            size_t kl = n - 2 < SHOW_MAX ? n - 2 : SHOW_MAX;
            memcpy(key, text + i + 1, kl);
            key[kl] = '\0';
        }
        if (nul) {
            config_show_text(key, shown, sizeof(shown));
            return config_fail(p, SIDECAR_CONFIG_EINVAL,
                               "%s: %s%s contains a NUL character (\\u0000)", p->file_label,
                               is_key ? "the key " : "", shown);
        }
        i += n;
    }
    return 0;
}

int config_read_file(parser_t *p, const char *path)
{
    const sidecar_config_source_t *src = p->src;
    const char *text;
    size_t len = 0;
    int rc;
    if (src->file_text) {
        text = src->file_text;
        len = src->file_len;
        if (len > SIDECAR_CONFIG_FILE_MAX) {
            return config_fail(p, SIDECAR_CONFIG_EFILE, "%s is larger than %d bytes", p->file_label,
                               SIDECAR_CONFIG_FILE_MAX);
        }
    } else if (path) {
        if ((rc = read_file(p, path, &len)) != 0) {
            return rc;
        }
        text = p->file_buf;
    } else {
        return 0;
    }
    if ((rc = parse_json(p, text, len)) != 0 || (rc = refuse_nul(p, text, len)) != 0) {
        return rc;
    }
    return match_keys(p);
}

int config_load_file(parser_t *p)
{
    const char *path;
    int rc = find_path(p, &path);
    return rc != 0 ? rc : config_read_file(p, path);
}
