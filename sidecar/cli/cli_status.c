/* cli_status.c — `electd status`: GET /v1/status shown as a few labelled lines (node, role,
 * term, leader, log, lease, fencing token, workload, store) and a table of the members. */
#include <string.h>

#include "cli_int.h"

static const char *or_unknown(const char *s, const char *unknown)
{
    return s != NULL ? s : unknown;
}

static void print_workload(const cJSON *w)
{
    char n[32];
    printf("workload  %s, %s", or_unknown(cli_jstr(w, "mode"), "?"),
           or_unknown(cli_jstr(w, "state"), "?"));
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(w, "pid");
    if (cJSON_IsNumber(pid) && pid->valuedouble > 0)
        printf(", pid %s", cli_jnum(w, "pid", n, sizeof(n)));
    printf(", restarts %s\n", cli_jnum(w, "restarts", n, sizeof(n)));
}

/* The labelled lines above the table. */
static void print_summary(const cJSON *o)
{
    char n1[32], n2[32], n3[32];
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "leader");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(o, "workload");
    const char *role = cli_jstr(o, "role");
    printf("node      %s (%s)\n", or_unknown(cli_jstr(o, "node"), "?"),
           or_unknown(cli_jstr(o, "id"), "?"));
    printf("role      %s\n", or_unknown(role, "?"));
    printf("term      %s\n", cli_jnum(o, "term", n1, sizeof(n1)));
    if (cli_jstr(l, "name") != NULL)
        printf("leader    %s (http %s, peer %s)\n", cli_jstr(l, "name"),
               or_unknown(cli_jstr(l, "http"), "unknown"),
               or_unknown(cli_jstr(l, "peer_addr"), "unknown"));
    else
        printf("leader    none known\n");
    printf("log       commit %s, applied %s, last %s\n",
           cli_jnum(o, "commit_index", n1, sizeof(n1)),
           cli_jnum(o, "applied_index", n2, sizeof(n2)), cli_jnum(o, "last_index", n3, sizeof(n3)));
    if (role != NULL && strcmp(role, "leader") == 0)
        printf("lease     %s ms remaining\n", cli_jnum(o, "lease_remaining_ms", n1, sizeof(n1)));
    printf("fencing   %s\n", cli_jnum(o, "fencing_token", n1, sizeof(n1)));
    if (w != NULL)
        print_workload(w);
    const cJSON *prio = cJSON_GetObjectItemCaseSensitive(o, "priority");
    if (cJSON_IsNumber(prio))
        printf("priority  %s%s\n", cli_jnum(o, "priority", n1, sizeof(n1)),
               cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "preempt")) ? " (no preempt)"
                                                                             : "");
    const cJSON *maint = cJSON_GetObjectItemCaseSensitive(o, "maintenance");
    if (maint != NULL)
        cli_maintenance_print(maint);
    const cJSON *store_ok = cJSON_GetObjectItemCaseSensitive(o, "store_ok");
    printf("store     %s\n", cJSON_IsFalse(store_ok) ? "FAILING" : "ok");
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(o, "reason");
    if (why != NULL)
        printf("reason    %s: %s\n", or_unknown(cli_jstr(why, "code"), "?"),
               or_unknown(cli_jstr(why, "message"), ""));
}

/* The members, the leader marked with " *". */
static void print_member_table(const cJSON *o)
{
    static cli_table_t t;
    const char *leader = cli_jstr(cJSON_GetObjectItemCaseSensitive(o, "leader"), "name");
    cli_table_init(&t, 5);
    cli_table_row(&t, "MEMBER", "VOTER", "PEER_ADDR", "MATCH", "LAST_CONTACT");
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(o, "members"))
    {
        char name[80], contact[40], n1[32], n2[32];
        const char *mname = or_unknown(cli_jstr(m, "name"), "?");
        bool is_leader = leader != NULL && strcmp(leader, mname) == 0;
        snprintf(name, sizeof(name), "%s%s", mname, is_leader ? " *" : "");
        const char *ms = cli_jnum(m, "last_contact_ms", n2, sizeof(n2));
        snprintf(contact, sizeof(contact), "%s%s", ms, strcmp(ms, "-") ? " ms ago" : "");
        cli_table_row(&t, name, cJSON_IsTrue(cJSON_GetObjectItem(m, "voter")) ? "voter" : "learner",
                      cli_jstr(m, "peer_addr"), cli_jnum(m, "match_index", n1, sizeof(n1)),
                      contact);
    }
    printf("\n");
    cli_table_print(&t);
}

int cli_status(cli_ctx_t *c)
{
    cli_request_t rq = {.method = "GET", .target = "/v1/status"};
    cli_response_t rs;
    int code;
    if (cli_call(c, &rq, &rs) != 0)
        return SIDECAR_CLIENT_ERROR;
    cJSON *o = cli_reply_object(c, &rs, 200, &code);
    if (o != NULL) {
        print_summary(o);
        print_member_table(o);
    }
    cJSON_Delete(o);
    cli_response_clear(&rs);
    return code;
}
