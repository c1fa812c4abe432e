/* failover.c — the failover duration of each election this member declares, for /metrics
 * (electd_election_failover_duration_seconds): measured on the member that takes the
 * election over, because only it sees its workload start. A failover is a tenure whose holder
 * was lost — dead (its session declared over), removed from the group or given up — never a
 * graceful handover or transfer, whose holder said it stopped. It runs from the first record
 * this member applied that shows the holder lost to this member's workload of the election
 * starting (docs/api.md says what that leaves out). */
#include <stdlib.h>
#include <string.h>

#include "named_int.h"

/* e's tenure `token` ended without its holder saying it stopped: lost from now on. */
static void lost(struct named_election *e, uint64_t token)
{
    if (e->fo.lost_ms == 0 && e->fo.clean_token != token)
        e->fo.lost_ms = named_now_ms();
}

/* An accepted ASSIGN of e: the tenure cmd->expect_token ended (0: there was none), the
 * election is now res->holder's under res->token. */
static void assigned(sidecar_named_t *n, struct named_election *e, const store_cmd_t *cmd,
                     const store_result_t *res)
{
    if (cmd->expect_token != 0)
        lost(e, cmd->expect_token);
    if (res->holder == 0 && e->fo.lost_ms == 0)
        e->fo.clean_token = res->token; /* unheld: nothing runs that could be lost */
    if (res->holder == n->self && e->fo.lost_ms != 0) {
        e->fo.assigned_ms = named_now_ms();
        n->fo_waiting = true;
    } else if (res->holder != 0) {
        e->fo.lost_ms = 0; /* another member's to measure, or a graceful move here */
        e->fo.assigned_ms = 0;
    }
}

void named_failover_applied(sidecar_named_t *n, const raft_entry_t *ent, const store_result_t *res)
{
    store_cmd_t cmd;
    if (ent->type != RAFT_ENTRY_NORMAL || res == NULL || res->status != STORE_APPLIED_OK ||
        store_cmd_decode(ent->data, ent->len, &cmd) != 0)
        return;
    char name[STORE_ELECTION_NAME_MAX + 1];
    size_t pl = strlen(SIDECAR_NAMED_STOPPED_PREFIX);
    if (cmd.op == STORE_CMD_ELECTION_ASSIGN && cmd.name_len <= STORE_ELECTION_NAME_MAX) {
        memcpy(name, cmd.name, cmd.name_len);
        name[cmd.name_len] = '\0';
        struct named_election *e = named_find(n, name);
        if (e != NULL && e->w != NULL)
            assigned(n, e, &cmd, res);
    } else if (cmd.op == STORE_CMD_PUT && cmd.key_len > pl &&
               cmd.key_len - pl <= STORE_ELECTION_NAME_MAX &&
               memcmp(cmd.key, SIDECAR_NAMED_STOPPED_PREFIX, pl) == 0) {
        memcpy(name, cmd.key + pl, cmd.key_len - pl);
        name[cmd.key_len - pl] = '\0';
        struct named_election *e = named_find(n, name);
        uint64_t token, from;
        /* Its holder stopped that tenure's workload cleanly: the move that follows is
         * graceful (seen here even when the move and the record's clean-up apply in the same
         * batch, before the view is read again). */
        if (e != NULL && e->w != NULL &&
            named_stopped_parse(cmd.value, cmd.value_len, &token, &from))
            e->fo.clean_token = token;
    }
}

void named_failover_view(sidecar_named_t *n)
{
    for (size_t i = 0; i < n->n_els; i++) {
        struct named_election *e = n->els[i];
        if (e->w == NULL || !e->has_row || e->row.holder == 0)
            continue;
        if (e->has_stopped && e->st_token == e->row.token && e->st_from == e->row.holder)
            e->fo.clean_token = e->row.token;
        /* A holder removed from the group, or one that gave up on the workload, is lost the
         * moment the view shows it; a give-up whose handover was given up (the holder keeps
         * the election) is no loss any more. */
        if ((n->n_members > 0 && named_member_find(n, e->row.holder) == NULL) ||
            (named_moving(e) && strcmp(e->ho_reason, "gave-up") == 0))
            lost(e, e->row.token);
        else if (e->fo.assigned_ms == 0)
            e->fo.lost_ms = 0;
    }
}

void named_failover_poll(sidecar_named_t *n)
{
    if (!n->fo_waiting)
        return;
    n->fo_waiting = false;
    for (size_t i = 0; i < n->n_els; i++) {
        struct named_election *e = n->els[i];
        if (e->w == NULL || e->fo.assigned_ms == 0)
            continue;
        sidecar_workload_info_t info;
        sidecar_workload_info(e->w, &info);
        /* started_ms is the boot-time clock's, as lost_ms: when it became primary. */
        if (info.state != SIDECAR_WORKLOAD_PRIMARY || info.started_ms < e->fo.assigned_ms) {
            n->fo_waiting = true;
            continue;
        }
        if (e->fo.hist == NULL && (e->fo.hist = malloc(sizeof(*e->fo.hist))) != NULL)
            sidecar_hist_init(e->fo.hist);
        if (e->fo.hist != NULL)
            sidecar_hist_observe(e->fo.hist, (double)(info.started_ms - e->fo.lost_ms) / 1000.0);
        e->fo.lost_ms = e->fo.assigned_ms = 0;
    }
}
