/* cli_kv_watch.c — `electd kv watch KEY | --prefix PREFIX [--from REV]`: a loop of long polls
 * of GET /v1/kv…?wait=&from= (docs/api.md, "Watching keys"), each change printed as one line
 * (or, with --json, the change's JSON object), in revision order, until interrupted. A dropped
 * connection or a member that does not answer is retried from the last revision printed, a
 * bounded number of times in a row; 410 compacted (the member no longer holds every change
 * after that revision) ends the watch with the member's message. */
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"

#define WATCH_POLL_WAIT        "25s" /* each long poll's ?wait= */
#define WATCH_POLL_WAIT_MS     25000u
#define WATCH_RETRIES_IN_A_ROW 10       /* failed polls in a row before giving up */
#define WATCH_RETRY_PAUSE_MS   1000u    /* between them */
#define WATCH_VALUE_MAX_SHOWN  SIZE_MAX /* a watch shows whole values */

/* /v1/kv/KEY?wait=…[&from=REV] or /v1/kv?prefix=P&wait=…[&from=REV]. */
static bool poll_target(const cli_ctx_t *c, const char *from, char *out, size_t cap)
{
    size_t off = 0;
    out[0] = '\0';
    bool ok = c->prefix != NULL
                  ? cli_target_append(out, cap, &off, "/v1/kv?prefix=") &&
                        cli_target_encode(out, cap, &off, c->prefix, false) &&
                        cli_target_append(out, cap, &off, "&wait=" WATCH_POLL_WAIT)
                  : *c->pos[0] != '\0' && cli_target_append(out, cap, &off, "/v1/kv/") &&
                        cli_target_encode(out, cap, &off, c->pos[0], true) &&
                        cli_target_append(out, cap, &off, "?wait=" WATCH_POLL_WAIT);
    if (ok && from != NULL)
        ok = cli_target_append(out, cap, &off, "&from=") && cli_target_append(out, cap, &off, from);
    if (!ok)
        cli_fail(c, c->prefix == NULL && *c->pos[0] == '\0' ? "the key is empty"
                                                            : "the key or prefix is too long");
    return ok;
}

/* Prints the reply's changes; *from becomes its last_revision. False for a reply that does
 * not make sense (reported). */
static bool take_changes(const cli_ctx_t *c, cJSON *o, char *from, size_t cap)
{
    cJSON *events = cJSON_GetObjectItemCaseSensitive(o, "events");
    char last[32];
    if (!cJSON_IsArray(events) || cli_jnum(o, "last_revision", last, sizeof(last))[0] == '\0') {
        cli_fail(c, "the reply is not a watch's answer");
        return false;
    }
    const cJSON *e = NULL;
    cJSON_ArrayForEach(e, events)
    {
        if (c->json) {
            char *s = cJSON_PrintUnformatted(e);
            if (s != NULL)
                printf("%s\n", s);
            free(s);
            continue;
        }
        char rev[32];
        const char *type = cli_jstr(e, "type");
        printf("%s\t%s\t", cli_jnum(e, "mod_revision", rev, sizeof(rev)), type ? type : "?");
        bool put = type != NULL && strcmp(type, "put") == 0;
        cli_kv_print_line(e, put ? WATCH_VALUE_MAX_SHOWN : 0);
    }
    fflush(stdout);
    snprintf(from, cap, "%s", last);
    return true;
}

int cli_kv_watch(cli_ctx_t *c)
{
    char from[32] = "", target[CLI_TARGET_MAX_BYTES];
    if (c->from != NULL)
        snprintf(from, sizeof(from), "%s", c->from);
    for (int failed = 0; failed < WATCH_RETRIES_IN_A_ROW;) {
        if (!poll_target(c, from[0] ? from : NULL, target, sizeof(target)))
            return SIDECAR_CLIENT_ERROR;
        cli_request_t rq = {.method = "GET", .target = target};
        cli_response_t rs;
        uint64_t deadline = cli_now_ms() + WATCH_POLL_WAIT_MS + c->timeout_ms;
        if (cli_call_at(c, &c->addr, &rq, deadline, &rs) != 0) {
            /* No answer (refused, timed out, dropped): again from the same revision. */
            if (++failed < WATCH_RETRIES_IN_A_ROW) {
                fprintf(stderr, "%s: trying again from revision %s\n", c->prog,
                        from[0] ? from : "(now)");
                cli_sleep_ms(WATCH_RETRY_PAUSE_MS);
            }
            continue;
        }
        /* An answer other than 200 (410 compacted, 404, 401, ...) is final. */
        if (rs.status != 200) {
            int code = cli_report_error(c, &rs);
            cli_response_clear(&rs);
            return code;
        }
        cJSON *o = cli_parse_ok(c, &rs);
        bool ok = o != NULL && take_changes(c, o, from, sizeof(from));
        cJSON_Delete(o);
        cli_response_clear(&rs);
        if (!ok)
            return SIDECAR_CLIENT_ERROR;
        failed = 0;
    }
    cli_fail(c, "no answer %d times in a row; giving up", WATCH_RETRIES_IN_A_ROW);
    return SIDECAR_CLIENT_ERROR;
}
