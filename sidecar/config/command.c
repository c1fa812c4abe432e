/* command.c — a command run without a shell (--exec, --on-start, --on-stop, --on-change)
 * into a NULL-terminated argv: from a JSON array of strings, from a string split on spaces
 * and tabs (no quoting of any kind), or, for --exec on the command line, from the words
 * after `--`. At most SIDECAR_CONFIG_ARGV_MAX words of SIDECAR_CONFIG_VALUE_MAX bytes. */
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

#define BLANKS " \t"

static const char expect_command[] = "expected a command: a program and its arguments separated "
                                     "by spaces, or a JSON array of strings";

static size_t count_words(const char *text)
{
    size_t n = 0;
    for (const char *c = text + strspn(text, BLANKS); *c; c += strspn(c, BLANKS)) {
        n++;
        c += strcspn(c, BLANKS);
    }
    return n;
}

/* How many arguments the command has; refuses a non-string or an over-long argument. */
static int count_args(parser_t *p, const setting_t *s, const value_t *v, const char *text,
                      const cJSON *array, bool from_tail, size_t *n)
{
    *n = 0;
    if (array) {
        for (const cJSON *j = array->child; j; j = j->next) {
            if (!cJSON_IsString(j)) {
                return config_invalid(p, s, v, "%s", expect_command);
            }
            if (strlen(j->valuestring) > SIDECAR_CONFIG_VALUE_MAX) {
                return config_invalid(p, s, v, "an argument is longer than %d bytes",
                                      SIDECAR_CONFIG_VALUE_MAX);
            }
            ++*n;
        }
    } else if (from_tail) {
        for (size_t i = 0; i < p->n_tail; i++) {
            if (strlen(p->tail[i]) > SIDECAR_CONFIG_VALUE_MAX) {
                return config_fail(p, SIDECAR_CONFIG_EINVAL,
                                   "invalid --%s: an argument is longer than %d bytes", s->pub.name,
                                   SIDECAR_CONFIG_VALUE_MAX);
            }
        }
        *n = p->n_tail;
    } else {
        *n = count_words(text);
    }
    return 0;
}

/* Copies the n arguments into dst->argv (allocated for n + 1). */
static int copy_args(parser_t *p, const char *text, const cJSON *array, bool from_tail, size_t n,
                     sidecar_argv_t *dst)
{
    const cJSON *j = array ? array->child : NULL;
    const char *c = text;
    for (size_t i = 0; i < n; i++) {
        if (array) {
            dst->argv[i] = strdup(j->valuestring);
            j = j->next;
        } else if (from_tail) {
            dst->argv[i] = strdup(p->tail[i]);
        } else {
            c += strspn(c, BLANKS);
            size_t len = strcspn(c, BLANKS);
            dst->argv[i] = strndup(c, len);
            c += len;
        }
        if (dst->argv[i] == NULL) {
            return config_fail(p, SIDECAR_CONFIG_ENOMEM, "out of memory");
        }
        dst->argc = i + 1;
    }
    return 0;
}

int config_set_argv(parser_t *p, const setting_t *s, const value_t *v, const char *text,
                    const cJSON *array, bool from_tail, sidecar_argv_t *dst)
{
    size_t n = 0;
    int rc = count_args(p, s, v, text, array, from_tail, &n);
    if (rc != 0) {
        return rc;
    }
    if (n > SIDECAR_CONFIG_ARGV_MAX) {
        return config_invalid(p, s, v, "more than %d words", SIDECAR_CONFIG_ARGV_MAX);
    }
    if (n == 0) {
        return config_invalid(p, s, v, "%s", expect_command);
    }
    dst->argv = calloc(n + 1, sizeof(char *));
    if (dst->argv == NULL) {
        return config_fail(p, SIDECAR_CONFIG_ENOMEM, "out of memory");
    }
    rc = copy_args(p, text, array, from_tail, n, dst);
    if (rc != 0) {
        return rc;
    }
    if (dst->argv[0][0] == '\0') {
        return config_invalid(p, s, v, "the program name is empty");
    }
    return 0;
}

void config_argv_free(sidecar_argv_t *a)
{
    for (size_t i = 0; a->argv && i < a->argc; i++) {
        free(a->argv[i]);
    }
    free(a->argv);
    a->argv = NULL;
    a->argc = 0;
}
