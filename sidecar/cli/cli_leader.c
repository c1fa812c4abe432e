/* cli_leader.c — `electd leader [--wait]` and `electd transfer [--to NAME]`: who leads, waiting
 * for the next leader with long polls of GET /v1/leader, and handing leadership over. */
#include <string.h>

#include "cli_int.h"

static void print_leader(const cJSON *o)
{
    char n[32];
    const char *name = cli_jstr(o, "name"), *http = cli_jstr(o, "http");
    if (name == NULL)
        printf("no leader known (term %s)\n", cli_jnum(o, "term", n, sizeof(n)));
    else
        printf("%s (http %s) term %s\n", name, http ? http : "unknown",
               cli_jnum(o, "term", n, sizeof(n)));
}

static double term_of(const cJSON *o)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "term");
    return cJSON_IsNumber(t) ? t->valuedouble : -1;
}

/* The leader's name in a /v1/leader answer, "" for none (or a name not safe in a query). */
static void seen_name_set(char *buf, size_t len, const cJSON *o)
{
    const char *name = cli_jstr(o, "name");
    snprintf(buf, len, "%s", name != NULL && sidecar_parse_name_valid(name) ? name : "");
}

/* Naps out the rest of CLI_POLL_INTERVAL_MS since t0 (never past deadline_ms). */
static void pace(uint64_t t0, uint64_t deadline_ms)
{
    uint64_t spent = cli_now_ms() - t0;
    if (spent >= CLI_POLL_INTERVAL_MS)
        return;
    uint64_t nap = CLI_POLL_INTERVAL_MS - spent, rest = (uint64_t)cli_remaining_ms(deadline_ms);
    cli_sleep_ms(nap < rest ? nap : rest);
}

/* Waits until addr reports a known leader that differs from `before` (another term, or any
 * leader when `before` had none) and is not named not_name, or until deadline_ms. Long-polls
 * GET /v1/leader?wait=&term= (the server answers when the term or the leader changes); when
 * a reply comes back sooner than CLI_POLL_INTERVAL_MS without the change we want (an older
 * server without the long poll, or a term that moved with no leader yet), it waits out the
 * rest of the interval, so this never spins. On success *now holds the last reply (the caller
 * frees it and clears rs). */
static int wait_leader_change(cli_ctx_t *c, const cli_addr_t *a, const cJSON *before,
                              const char *not_name, uint64_t deadline_ms, cli_response_t *rs,
                              cJSON **now)
{
    double term0 = term_of(before), seen_term = term0;
    bool had_leader = cli_jstr(before, "name") != NULL;
    char seen_name[SIDECAR_NAME_MAX + 1];
    seen_name_set(seen_name, sizeof(seen_name), before);
    *now = NULL;
    for (;;) {
        int left = cli_remaining_ms(deadline_ms);
        if (left == 0)
            return SIDECAR_CLIENT_NO;
        /* Says what it last saw (term and leader, none = empty): the server answers at once
         * when that is out of date, so a leader found in between is not missed. */
        char target[96 + SIDECAR_NAME_MAX];
        if (seen_term >= 0)
            snprintf(target, sizeof(target), "/v1/leader?wait=%dms&term=%.0f&leader=%s", left,
                     seen_term, seen_name);
        else /* nothing seen yet: ask what is, without waiting */
            snprintf(target, sizeof(target), "/v1/leader");
        uint64_t t0 = cli_now_ms();
        /* The reply may take the whole wait: allow --timeout on top for the reply itself. */
        if (cli_get_json(c, a, target, deadline_ms + c->timeout_ms, rs, now) != SIDECAR_CLIENT_OK)
            return SIDECAR_CLIENT_ERROR;
        const char *name = cli_jstr(*now, "name");
        double term = term_of(*now);
        if (name != NULL && (!had_leader || term != term0) &&
            (not_name == NULL || strcmp(name, not_name) != 0))
            return SIDECAR_CLIENT_OK;
        seen_term = term;
        seen_name_set(seen_name, sizeof(seen_name), *now);
        cJSON_Delete(*now);
        *now = NULL;
        cli_response_clear(rs);
        pace(t0, deadline_ms);
    }
}

int cli_leader(cli_ctx_t *c)
{
    cli_response_t rs;
    cJSON *o = NULL, *after = NULL;
    int code = cli_get_json(c, &c->addr, "/v1/leader", c->deadline_ms, &rs, &o);
    if (code != SIDECAR_CLIENT_OK)
        return code;
    if (c->wait) {
        cli_response_t rs2;
        code = wait_leader_change(c, &c->addr, o, NULL, cli_now_ms() + c->wait_ms, &rs2, &after);
        if (code == SIDECAR_CLIENT_OK) {
            cJSON_Delete(o);
            cli_response_clear(&rs);
            o = after;
            rs = rs2;
        } else if (code == SIDECAR_CLIENT_NO) {
            cli_fail(c, "no change of leadership within %u ms", c->wait_ms);
        } else {
            goto done;
        }
    } else if (cli_jstr(o, "name") == NULL) {
        code = SIDECAR_CLIENT_NO;
    }
    if (c->json)
        cli_print_json_body(&rs);
    else
        print_leader(o);
done:
    cJSON_Delete(o);
    cli_response_clear(&rs);
    return code;
}

/* POST /v1/leader/transfer[?to=NAME] (following one redirect); *old gets who answered: the
 * leader that hands over. *already: the member asked for leads already (200, nothing moved).
 * Returns an exit code. */
static int request_transfer(cli_ctx_t *c, cli_addr_t *old, bool *already)
{
    char target[CLI_TARGET_MAX_BYTES] = "/v1/leader/transfer";
    size_t off = strlen(target);
    if (c->to != NULL && !(cli_target_append(target, sizeof(target), &off, "?to=") &&
                           cli_target_encode(target, sizeof(target), &off, c->to, false))) {
        cli_fail(c, "--to is too long");
        return SIDECAR_CLIENT_ERROR;
    }
    cli_request_t rq = {.method = "POST", .target = target};
    cli_response_t rs;
    if (cli_call(c, &rq, &rs) != 0)
        return SIDECAR_CLIENT_ERROR;
    int code = SIDECAR_CLIENT_OK;
    if (rs.status != 202 && rs.status != 200)
        code = cli_report_error(c, &rs);
    *already = rs.status == 200 && rs.body != NULL && strstr(rs.body, "\"already_leader\"") != NULL;
    if (*already && c->json)
        printf("%s\n", rs.body);
    else if (*already)
        printf("%s leads already: nothing moved\n", c->to);
    *old = rs.from;
    cli_response_clear(&rs);
    return code;
}

/* The name the member at a gives itself in /v1/status, into name ("" when it gives none). */
static int member_name(cli_ctx_t *c, const cli_addr_t *a, char *name, size_t size)
{
    cli_response_t rs;
    cJSON *st = NULL;
    if (cli_get_json(c, a, "/v1/status", c->deadline_ms, &rs, &st) != SIDECAR_CLIENT_OK)
        return SIDECAR_CLIENT_ERROR;
    const char *node = cli_jstr(st, "node");
    snprintf(name, size, "%s", node ? node : "");
    cJSON_Delete(st);
    cli_response_clear(&rs);
    return SIDECAR_CLIENT_OK;
}

/* POST /v1/leader/transfer on the leader, then waits (within --timeout) until the node that
 * handed over reports another leader, and prints it. */
int cli_transfer(cli_ctx_t *c)
{
    cli_addr_t old;
    char old_name[80];
    bool already = false;
    int code = request_transfer(c, &old, &already);
    if (code != SIDECAR_CLIENT_OK || already)
        return code;
    /* Who handed over: its own name (it no longer leads by the time we ask, or soon won't). */
    if (member_name(c, &old, old_name, sizeof(old_name)) != SIDECAR_CLIENT_OK)
        return SIDECAR_CLIENT_ERROR;
    /* Any leader other than the old one counts, whatever the term. */
    cJSON *before = cJSON_CreateObject(), *after = NULL;
    cJSON_AddNullToObject(before, "name");
    cJSON_AddNumberToObject(before, "term", -1);
    cli_response_t rs = {0};
    code = wait_leader_change(c, &old, before, old_name, c->deadline_ms, &rs, &after);
    if (code == SIDECAR_CLIENT_OK) {
        if (c->json) {
            cli_print_json_body(&rs);
        } else {
            printf("leadership moved from %s to ", old_name);
            print_leader(after);
        }
    } else if (code == SIDECAR_CLIENT_NO) {
        cli_fail(c, "the transfer started on %s, but no new leader was seen within %u ms", old_name,
                 c->timeout_ms);
        code = SIDECAR_CLIENT_ERROR;
    }
    cJSON_Delete(before);
    cJSON_Delete(after);
    cli_response_clear(&rs);
    return code;
}
