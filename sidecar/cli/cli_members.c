/* cli_members.c — `electd members [list]|add NAME PEER_ADDR|remove NAME`: the membership as a
 * table, and changes to it (on the leader, through one redirect). */
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"

static void print_members(const cJSON *members)
{
    static cli_table_t t;
    cli_table_init(&t, 6);
    cli_table_row(&t, "NAME", "ID", "VOTER", "PEER_ADDR", "HTTP", "MATCH");
    const cJSON *m;
    cJSON_ArrayForEach(m, members)
    {
        char n[32];
        cli_table_row(&t, cli_jstr(m, "name"), cli_jstr(m, "id"),
                      cJSON_IsTrue(cJSON_GetObjectItem(m, "voter")) ? "voter" : "learner",
                      cli_jstr(m, "peer_addr"), cli_jstr(m, "http"),
                      cli_jnum(m, "match_index", n, sizeof(n)));
    }
    cli_table_print(&t);
}

/* The request of c->cmd into rq: GET /v1/members, POST it {"name","peer_addr"} (*body then
 * holds the JSON), or DELETE /v1/members/NAME; target is rq's buffer. Reports failures. */
static bool members_request(const cli_ctx_t *c, cli_request_t *rq, char *target, size_t cap,
                            char **body)
{
    size_t off = 0;
    *body = NULL;
    *rq = (cli_request_t){.method = "GET", .target = target};
    if (!cli_target_append(target, cap, &off, "/v1/members"))
        return false;
    if (c->cmd == CLI_CMD_MEMBERS_ADD) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "name", c->pos[0]);
        cJSON_AddStringToObject(b, "peer_addr", c->pos[1]);
        *body = cJSON_PrintUnformatted(b);
        cJSON_Delete(b);
        if (*body == NULL) {
            cli_fail(c, "out of memory");
            return false;
        }
        rq->method = "POST";
        rq->body = *body;
        rq->body_len = strlen(*body);
        rq->content_type = "application/json";
    } else if (c->cmd == CLI_CMD_MEMBERS_REMOVE) {
        if (!cli_target_append(target, cap, &off, "/") ||
            !cli_target_encode(target, cap, &off, c->pos[0], false)) {
            cli_fail(c, "the name is too long");
            return false;
        }
        rq->method = "DELETE";
    }
    return true;
}

int cli_members(cli_ctx_t *c)
{
    char target[CLI_TARGET_MAX_BYTES], *body = NULL, n[32];
    cli_request_t rq;
    cli_response_t rs;
    int code = SIDECAR_CLIENT_ERROR;
    if (!members_request(c, &rq, target, sizeof(target), &body) || cli_call(c, &rq, &rs) != 0)
        goto done;
    cJSON *o = cli_reply_object(c, &rs, 0, &code);
    if (o != NULL && c->cmd == CLI_CMD_MEMBERS_ADD)
        printf("added %s as a learner (it becomes a voter once caught up); configuration "
               "index %s\n",
               c->pos[0], cli_jnum(o, "index", n, sizeof(n)));
    else if (o != NULL && c->cmd == CLI_CMD_MEMBERS_REMOVE)
        printf("removed %s; configuration index %s\n", c->pos[0],
               cli_jnum(o, "index", n, sizeof(n)));
    else if (o != NULL)
        print_members(cJSON_GetObjectItemCaseSensitive(o, "members"));
    cJSON_Delete(o);
    cli_response_clear(&rs);
done:
    free(body);
    return code;
}
