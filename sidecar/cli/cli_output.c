/* cli_output.c — what the CLI's user sees: messages on stderr, the server's errors and their
 * exit codes, JSON bodies as they came (--json), small tables, and text with its control bytes
 * escaped. */
#include <stdarg.h>
#include <string.h>

#include "check.h"
#include "cli_int.h"

void cli_vfail(const cli_ctx_t *c, const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: ", c->prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_fail(const cli_ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_vfail(c, fmt, ap);
    va_end(ap);
}

const char *cli_jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *cli_jnum(const cJSON *o, const char *key, char *buf, size_t size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        return "-";
    if (v->valuedouble >= -9e15 && v->valuedouble <= 9e15)
        snprintf(buf, size, "%lld", (long long)v->valuedouble);
    else
        snprintf(buf, size, "%g", v->valuedouble);
    return buf;
}

void cli_print_json_body(const cli_response_t *rs)
{
    fwrite(rs->body, 1, rs->body_len, stdout);
    if (rs->body_len == 0 || rs->body[rs->body_len - 1] != '\n')
        fputc('\n', stdout);
}

/* What an error code's details add to its message: the current token, the revision, the
 * leader. */
static void error_details(const char *code, const cJSON *err, char *extra, size_t size)
{
    char num[32];
    extra[0] = '\0';
    if (code == NULL)
        return;
    if (strcmp(code, "fenced") == 0) {
        snprintf(extra, size, " (current fencing token %s)",
                 cli_jnum(err, "fencing_token", num, sizeof(num)));
    } else if (strcmp(code, "conflict") == 0) {
        snprintf(extra, size, " (mod_revision %s)",
                 cli_jnum(err, "mod_revision", num, sizeof(num)));
    } else if (strcmp(code, "not_leader") == 0) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(err, "leader");
        const char *name = cli_jstr(l, "name"), *http = cli_jstr(l, "http");
        snprintf(extra, size, " (leader %s, http %s)", name ? name : "unknown",
                 http ? http : "unknown");
    }
}

int cli_report_error(const cli_ctx_t *c, const cli_response_t *rs)
{
    if (c->json)
        cli_print_json_body(rs);
    cJSON *o = cJSON_ParseWithLength(rs->body, rs->body_len);
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(o, "error");
    const char *code = cli_jstr(err, "code"), *msg = cli_jstr(err, "message");
    char extra[160];
    error_details(code, err, extra, sizeof(extra));
    if (code != NULL)
        cli_fail(c, "%s: %s%s", code, msg ? msg : "", extra);
    else if (rs->status == 404)
        cli_fail(c, "not found (HTTP 404)");
    else
        cli_fail(c, "HTTP %d: %.200s", rs->status, rs->body);
    cJSON_Delete(o);
    return rs->status == 404 || rs->status == 409 ? SIDECAR_CLIENT_NO : SIDECAR_CLIENT_ERROR;
}

cJSON *cli_parse_ok(const cli_ctx_t *c, const cli_response_t *rs)
{
    cJSON *o = cJSON_ParseWithLength(rs->body, rs->body_len);
    if (o == NULL)
        cli_fail(c, "the reply is not JSON: %.200s", rs->body);
    return o;
}

cJSON *cli_reply_object(const cli_ctx_t *c, const cli_response_t *rs, int ok_status, int *code)
{
    bool ok = ok_status != 0 ? rs->status == ok_status : rs->status >= 200 && rs->status <= 299;
    if (!ok) {
        *code = cli_report_error(c, rs);
        return NULL;
    }
    if (c->json) {
        cli_print_json_body(rs);
        *code = SIDECAR_CLIENT_OK;
        return NULL;
    }
    cJSON *o = cli_parse_ok(c, rs);
    *code = o != NULL ? SIDECAR_CLIENT_OK : SIDECAR_CLIENT_ERROR;
    return o;
}

void cli_print_escaped(const char *s, size_t max_shown)
{
    size_t shown = 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        /* Cut only at a character boundary (not before a UTF-8 continuation byte). */
        if (shown >= max_shown && (ch & 0xC0) != 0x80) {
            fputs("...", stdout);
            return;
        }
        if (ch == '\n')
            fputs("\\n", stdout);
        else if (ch == '\t')
            fputs("\\t", stdout);
        else if (ch == '\\')
            fputs("\\\\", stdout);
        else if (ch < 0x20 || ch == 0x7f)
            printf("\\x%02x", ch);
        else
            fputc(ch, stdout);
        shown++;
    }
}

/* ---- tables ---------------------------------------------------------------------------------- */

void cli_table_init(cli_table_t *t, int cols)
{
    ELECTD_CHECK(cols > 0 && cols <= CLI_TABLE_MAX_COLS);
    memset(t, 0, sizeof(*t));
    t->cols = cols;
}

void cli_table_row(cli_table_t *t, ...)
{
    if (t->rows >= CLI_TABLE_MAX_ROWS)
        return;
    va_list ap;
    va_start(ap, t);
    for (int i = 0; i < t->cols; i++) {
        const char *s = va_arg(ap, const char *);
        snprintf(t->cells[t->rows][i], CLI_TABLE_CELL_BYTES, "%s", s ? s : "-");
    }
    va_end(ap);
    t->rows++;
}

void cli_table_print(const cli_table_t *t)
{
    int width[CLI_TABLE_MAX_COLS] = {0};
    for (int r = 0; r < t->rows; r++)
        for (int i = 0; i < t->cols; i++) {
            int w = (int)strlen(t->cells[r][i]);
            if (w > width[i])
                width[i] = w;
        }
    for (int r = 0; r < t->rows; r++) {
        for (int i = 0; i < t->cols; i++) {
            if (i + 1 < t->cols)
                printf("%-*s  ", width[i], t->cells[r][i]);
            else
                printf("%s\n", t->cells[r][i]);
        }
    }
}
