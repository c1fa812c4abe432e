/* cli_maintenance.c — `electd maintenance [on [--reason TEXT]|off]`: GET or POST
 * /v1/maintenance (a change follows one redirect to the leader). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli_int.h"

void cli_maintenance_print(const cJSON *m)
{
    const cJSON *since = cJSON_GetObjectItemCaseSensitive(m, "since_ms");
    char when[40] = "unknown";
    if (cJSON_IsNumber(since) && since->valuedouble > 0) {
        time_t t = (time_t)(since->valuedouble / 1000);
        struct tm tm;
        if (gmtime_r(&t, &tm) != NULL)
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    const char *reason = cli_jstr(m, "reason");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "enabled"))) {
        printf("maint     ON since %s: ", when);
        cli_print_escaped(reason && *reason ? reason : "no reason given", 256);
        printf("\n");
    } else {
        printf("maint     off\n");
    }
}

int cli_maintenance(cli_ctx_t *c)
{
    cJSON *body = NULL;
    char *text = NULL;
    cli_request_t rq = {.method = "GET", .target = "/v1/maintenance"};
    if (c->cmd != CLI_CMD_MAINTENANCE_SHOW) {
        body = cJSON_CreateObject();
        if (body == NULL ||
            cJSON_AddBoolToObject(body, "enabled", c->cmd == CLI_CMD_MAINTENANCE_ON) == NULL ||
            (c->reason != NULL && cJSON_AddStringToObject(body, "reason", c->reason) == NULL) ||
            (text = cJSON_PrintUnformatted(body)) == NULL) {
            cJSON_Delete(body);
            cli_fail(c, "out of memory");
            return SIDECAR_CLIENT_ERROR;
        }
        rq = (cli_request_t){.method = "POST",
                             .target = "/v1/maintenance",
                             .body = text,
                             .body_len = strlen(text),
                             .content_type = "application/json"};
    }
    cli_response_t rs;
    int code = SIDECAR_CLIENT_ERROR;
    if (cli_call(c, &rq, &rs) == 0) {
        cJSON *o = cli_reply_object(c, &rs, 200, &code);
        if (o != NULL)
            cli_maintenance_print(o);
        cJSON_Delete(o);
        cli_response_clear(&rs);
    }
    cJSON_Delete(body);
    cJSON_free(text);
    return code;
}
