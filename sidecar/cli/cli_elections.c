/* cli_elections.c — `electd elections [list]` and `electd elections transfer ELECTION [--to
 * NAME]`: the named elections as a table (every page of GET /v1/elections), and a graceful
 * handover of one (POST /v1/elections/{name}/transfer). */
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"

#define ELECTIONS_MAX_PAGES 200 /* of 1,000 elections each (the server walks 100,000) */
#define ELECTIONS_COLS      6

/* A duration in ms as the table shows it: 850ms, 42s, 3m12s, 5h4m, 2d3h. */
static void format_age(double ms, char *buf, size_t size)
{
    uint64_t v = ms > 0 ? (uint64_t)ms : 0, s = v / 1000;
    if (v < 1000)
        snprintf(buf, size, "%llums", (unsigned long long)v);
    else if (s < 60)
        snprintf(buf, size, "%llus", (unsigned long long)s);
    else if (s < 3600)
        snprintf(buf, size, "%llum%llus", (unsigned long long)(s / 60),
                 (unsigned long long)(s % 60));
    else if (s < 86400)
        snprintf(buf, size, "%lluh%llum", (unsigned long long)(s / 3600),
                 (unsigned long long)(s % 3600 / 60));
    else
        snprintf(buf, size, "%llud%lluh", (unsigned long long)(s / 86400),
                 (unsigned long long)(s % 86400 / 3600));
}

/* The cells of one election's row: NAME HOLDER TOKEN STATE SINCE LOCAL. */
static void row_cells(const cJSON *e, char cells[ELECTIONS_COLS][CLI_TABLE_CELL_BYTES])
{
    const char *name = cli_jstr(e, "name"), *holder = cli_jstr(e, "holder");
    const char *state = cli_jstr(e, "state");
    snprintf(cells[0], CLI_TABLE_CELL_BYTES, "%s", name ? name : "?");
    snprintf(cells[1], CLI_TABLE_CELL_BYTES, "%s", holder ? holder : "-");
    char n[32];
    snprintf(cells[2], CLI_TABLE_CELL_BYTES, "%s", cli_jnum(e, "fencing_token", n, sizeof(n)));
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(e, "handover_to");
    if (state != NULL && strcmp(state, "handover") == 0 && cJSON_IsString(to))
        snprintf(cells[3], CLI_TABLE_CELL_BYTES, "handover to %s", to->valuestring);
    else
        snprintf(cells[3], CLI_TABLE_CELL_BYTES, "%s", state ? state : "-");
    const cJSON *since = cJSON_GetObjectItemCaseSensitive(e, "since_ms");
    if (cJSON_IsNumber(since))
        format_age(since->valuedouble, cells[4], CLI_TABLE_CELL_BYTES);
    else
        snprintf(cells[4], CLI_TABLE_CELL_BYTES, "-");
    const cJSON *local = cJSON_GetObjectItemCaseSensitive(e, "local");
    const char *lstate = cli_jstr(local, "state");
    bool declared = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(local, "declared"));
    snprintf(cells[5], CLI_TABLE_CELL_BYTES, "%s", declared && lstate ? lstate : "-");
}

static void print_row(char cells[ELECTIONS_COLS][CLI_TABLE_CELL_BYTES],
                      const int width[ELECTIONS_COLS])
{
    for (int i = 0; i + 1 < ELECTIONS_COLS; i++)
        printf("%-*s  ", width[i], cells[i]);
    printf("%s\n", cells[ELECTIONS_COLS - 1]);
}

/* Prints the elections as a table: the widths from a first pass over them, so that any number
 * of rows takes no more memory than one. */
static void print_elections(const cJSON *arr)
{
    static const char *head[ELECTIONS_COLS] = {"NAME",  "HOLDER", "TOKEN",
                                               "STATE", "SINCE",  "LOCAL"};
    char cells[ELECTIONS_COLS][CLI_TABLE_CELL_BYTES];
    int width[ELECTIONS_COLS];
    for (int i = 0; i < ELECTIONS_COLS; i++)
        width[i] = (int)strlen(head[i]);
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        row_cells(e, cells);
        for (int i = 0; i < ELECTIONS_COLS; i++)
            if ((int)strlen(cells[i]) > width[i])
                width[i] = (int)strlen(cells[i]);
    }
    for (int i = 0; i < ELECTIONS_COLS; i++)
        snprintf(cells[i], CLI_TABLE_CELL_BYTES, "%s", head[i]);
    print_row(cells, width);
    cJSON_ArrayForEach(e, arr)
    {
        row_cells(e, cells);
        print_row(cells, width);
    }
}

/* Fetches every page (after= the last name) into all; *total is the server's count. */
static int list_all(cli_ctx_t *c, cJSON *all, double *total)
{
    char target[CLI_TARGET_MAX_BYTES], after[CLI_TABLE_CELL_BYTES] = "";
    bool more = true;
    for (int pages = 0; more && pages < ELECTIONS_MAX_PAGES; pages++) {
        size_t off = 0;
        if (!cli_target_append(target, sizeof(target), &off, "/v1/elections") ||
            (after[0] != '\0' && !(cli_target_append(target, sizeof(target), &off, "?after=") &&
                                   cli_target_encode(target, sizeof(target), &off, after, false))))
            return SIDECAR_CLIENT_ERROR;
        cli_response_t rs;
        cJSON *o = NULL;
        int code = cli_get_json(c, &c->addr, target, c->deadline_ms, &rs, &o);
        if (code != SIDECAR_CLIENT_OK)
            return code;
        cJSON *items = cJSON_GetObjectItemCaseSensitive(o, "elections");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "total");
        more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "more"));
        const char *last =
            cli_jstr(cJSON_GetArrayItem(items, cJSON_GetArraySize(items) - 1), "name");
        if (!cJSON_IsArray(items) || (more && last == NULL)) {
            cli_fail(c, "the reply is not a list of elections: %.200s", rs.body);
            code = SIDECAR_CLIENT_ERROR;
        } else {
            *total = cJSON_IsNumber(t) ? t->valuedouble : -1;
            snprintf(after, sizeof(after), "%s", last ? last : "");
            while (cJSON_GetArraySize(items) > 0)
                cJSON_AddItemToArray(all, cJSON_DetachItemFromArray(items, 0));
        }
        cJSON_Delete(o);
        cli_response_clear(&rs);
        if (code != SIDECAR_CLIENT_OK)
            return code;
    }
    if (more) {
        cli_fail(c, "listing stopped after %d pages; more elections follow", ELECTIONS_MAX_PAGES);
        return SIDECAR_CLIENT_ERROR;
    }
    return SIDECAR_CLIENT_OK;
}

/* `electd elections [list]`: the table, or with --json {"elections":[...],"total":N,
 * "more":false} with the pages merged. */
static int elections_list(cli_ctx_t *c)
{
    cJSON *merged = cJSON_CreateObject();
    cJSON *all = cJSON_AddArrayToObject(merged, "elections");
    double total = -1;
    int code = all != NULL ? list_all(c, all, &total) : SIDECAR_CLIENT_ERROR;
    if (code == SIDECAR_CLIENT_OK && c->json) {
        cJSON_AddNumberToObject(merged, "total", total);
        cJSON_AddFalseToObject(merged, "more");
        char *s = cJSON_PrintUnformatted(merged);
        if (s != NULL)
            printf("%s\n", s);
        else
            code = SIDECAR_CLIENT_ERROR;
        free(s);
    } else if (code == SIDECAR_CLIENT_OK) {
        print_elections(all);
    }
    cJSON_Delete(merged);
    return code;
}

/* `electd elections transfer ELECTION [--to NAME]`: asks for the handover and prints the
 * election as it stands (the handover itself runs on: its holder stops first). */
static int elections_transfer(cli_ctx_t *c)
{
    char target[CLI_TARGET_MAX_BYTES];
    size_t off = 0;
    if (!(cli_target_append(target, sizeof(target), &off, "/v1/elections/") &&
          cli_target_encode(target, sizeof(target), &off, c->pos[0], false) &&
          cli_target_append(target, sizeof(target), &off, "/transfer") &&
          (c->to == NULL || (cli_target_append(target, sizeof(target), &off, "?to=") &&
                             cli_target_encode(target, sizeof(target), &off, c->to, false))))) {
        cli_fail(c, "the election's or the member's name is too long");
        return SIDECAR_CLIENT_ERROR;
    }
    cli_request_t rq = {.method = "POST", .target = target};
    cli_response_t rs;
    int code = SIDECAR_CLIENT_ERROR;
    if (cli_call(c, &rq, &rs) != 0)
        return code;
    cJSON *o = cli_reply_object(c, &rs, 0, &code);
    if (o != NULL) {
        const char *holder = cli_jstr(o, "holder"), *to = cli_jstr(o, "handover_to");
        char n[32];
        printf("handover of %s requested: held by %s (token %s), moving to %s\n", c->pos[0],
               holder ? holder : "nobody", cli_jnum(o, "fencing_token", n, sizeof(n)),
               to      ? to
               : c->to ? c->to
                       : "the best other member");
    }
    cJSON_Delete(o);
    cli_response_clear(&rs);
    return code;
}

int cli_elections(cli_ctx_t *c)
{
    return c->cmd == CLI_CMD_ELECTIONS_TRANSFER ? elections_transfer(c) : elections_list(c);
}
