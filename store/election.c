/* election.c — named elections in the state machine: applying ELECTION_ASSIGN and
 * ELECTION_DROP (tokens that rise by one per tenure and are never reused, also across a drop
 * and re-add, through the tombstones), the lookup the election fence uses, and the reads. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* Above the first byte of every valid name: the upper bound of a listing without a prefix. */
#define NAME_END "\x7f"

static void read_row(sqlite3_stmt *s, int col0, store_election_t *out)
{
    out->holder = (uint64_t)sqlite3_column_int64(s, col0);
    out->token = (uint64_t)sqlite3_column_int64(s, col0 + 1);
    out->since_index = (uint64_t)sqlite3_column_int64(s, col0 + 2);
    out->since_unix_ms = (uint64_t)sqlite3_column_int64(s, col0 + 3);
}

int store_election_lookup(store_t *st, const char *name, size_t len, store_election_t *out,
                          bool *found)
{
    memset(out, 0, sizeof *out);
    *found = false;
    sqlite3_stmt *s = st->stmt[STMT_EL_GET];
    sqlite3_bind_text(s, 1, name, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *found = true;
        memcpy(out->name, name, len);
        read_row(s, 0, out);
    }
    store_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_sqlite_err(st, rc, "read election");
    return 0;
}

/* The last token of a dropped name (0: none). */
static int tombstone_get(store_t *st, const store_cmd_t *cmd, uint64_t *token)
{
    sqlite3_stmt *s = st->stmt[STMT_TOMB_GET];
    sqlite3_bind_text(s, 1, cmd->name, (int)cmd->name_len, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    *token = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
    store_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_sqlite_err(st, rc, "read election tombstone");
    return 0;
}

/* Runs one of the statements that take the name (?1) and, if they have one, a token (?2). */
static int name_step(store_t *st, int stmt, const store_cmd_t *cmd, uint64_t v, const char *what)
{
    sqlite3_stmt *s = st->stmt[stmt];
    sqlite3_bind_text(s, 1, cmd->name, (int)cmd->name_len, SQLITE_STATIC);
    if (sqlite3_bind_parameter_count(s) >= 2)
        sqlite3_bind_int64(s, 2, (int64_t)v);
    return store_step_done(st, s, what);
}

/* A new tenure: token = 1 + the highest the name ever had (the row's, or its tombstone's when
 * the name is re-added after a drop, which the row then carries on). */
static int assign(store_t *st, const raft_entry_t *e, const store_cmd_t *cmd,
                  const store_election_t *cur, bool found, store_result_t *r)
{
    uint64_t last = cur->token;
    int err = 0;
    if (!found) {
        if ((err = tombstone_get(st, cmd, &last)) != 0 ||
            (err = name_step(st, STMT_TOMB_DEL, cmd, 0, "clear election tombstone")) != 0)
            return err;
    }
    /* Tokens rise by one per applied command from 1: only a damaged file holds one this big. */
    if (last >= (uint64_t)INT64_MAX)
        return store_fail(st, STORE_ECORRUPT, "election %.*s has token %llu", (int)cmd->name_len,
                          cmd->name, (unsigned long long)last);
    sqlite3_stmt *s = st->stmt[STMT_EL_PUT];
    sqlite3_bind_text(s, 1, cmd->name, (int)cmd->name_len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (int64_t)cmd->holder);
    sqlite3_bind_int64(s, 3, (int64_t)(last + 1));
    sqlite3_bind_int64(s, 4, (int64_t)e->index);
    sqlite3_bind_int64(s, 5, (int64_t)cmd->unix_ms);
    if ((err = store_step_done(st, s, "assign election")) != 0)
        return err;
    r->token = last + 1;
    r->holder = cmd->holder;
    return 0;
}

int store_election_apply(store_t *st, const raft_entry_t *e, const store_cmd_t *cmd,
                         store_result_t *r)
{
    store_election_t cur;
    bool found = false;
    int err = store_election_lookup(st, cmd->name, cmd->name_len, &cur, &found);
    if (err)
        return err;
    if (cmd->op == STORE_CMD_ELECTION_DROP && !found) {
        r->status = STORE_APPLIED_NOT_FOUND;
        return 0;
    }
    if (cmd->expect_token != cur.token) { /* cur.token is 0 when not found */
        r->status = STORE_APPLIED_STALE;
        r->token = cur.token;
        r->holder = cur.holder;
        return 0;
    }
    if (cmd->op == STORE_CMD_ELECTION_ASSIGN)
        return assign(st, e, cmd, &cur, found, r);
    if ((err = name_step(st, STMT_TOMB_PUT, cmd, cur.token, "keep election tombstone")) != 0 ||
        (err = name_step(st, STMT_EL_DEL, cmd, 0, "drop election")) != 0)
        return err;
    r->token = cur.token;
    r->holder = cur.holder;
    return 0;
}

/* ---- reads ------------------------------------------------------------------------------- */

int store_election_get(store_t *st, const char *name, store_election_t *out)
{
    st->errmsg[0] = 0;
    memset(out, 0, sizeof *out);
    size_t len = name ? strnlen(name, STORE_ELECTION_NAME_MAX + 1) : 0;
    if (!store_election_name_valid(name, len))
        return store_fail(st, STORE_ENAME, "%s", store_strerror(STORE_ENAME));
    bool found = false;
    int err = store_election_lookup(st, name, len, out, &found);
    if (err)
        return err;
    return found ? 0 : STORE_ENOTFOUND;
}

void store_election_list_free(store_election_list_t *list)
{
    if (!list)
        return;
    free(list->items);
    memset(list, 0, sizeof *list);
}

/* Binds the range of a listing: names > after, >= prefix, < the end of prefix. */
static int bind_range(store_t *st, sqlite3_stmt *s, const char *prefix, const char *after,
                      size_t limit)
{
    size_t plen = prefix ? strnlen(prefix, STORE_ELECTION_NAME_MAX + 1) : 0;
    size_t alen = after ? strnlen(after, STORE_ELECTION_NAME_MAX + 1) : 0;
    if (plen > STORE_ELECTION_NAME_MAX || alen > STORE_ELECTION_NAME_MAX)
        return store_fail(st, STORE_ENAME, "prefix or start name longer than %d bytes",
                          STORE_ELECTION_NAME_MAX);
    uint8_t end[STORE_ELECTION_NAME_MAX];
    size_t end_len = store_prefix_end(prefix, plen, end);
    sqlite3_bind_text(s, 1, alen ? after : "", (int)alen, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, plen ? prefix : "", (int)plen, SQLITE_TRANSIENT);
    if (end_len)
        sqlite3_bind_text(s, 3, (const char *)end, (int)end_len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_text(s, 3, NAME_END, 1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (int64_t)limit + 1);
    return 0;
}

int store_election_list(store_t *st, const char *prefix, const char *after, size_t limit,
                        store_election_list_t *out)
{
    memset(out, 0, sizeof *out);
    st->errmsg[0] = 0;
    if (limit == 0 || limit > STORE_LIST_MAX)
        limit = STORE_LIST_MAX;
    sqlite3_stmt *s = st->stmt[STMT_EL_LIST];
    int err = bind_range(st, s, prefix, after, limit);
    if (err) {
        store_reset(s);
        return err;
    }
    store_election_t *items = calloc(limit, sizeof *items);
    size_t n = 0;
    int rc = SQLITE_DONE;
    if (!items) {
        err = store_fail(st, STORE_ENOMEM, "no memory for a listing");
        goto out;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == limit) {
            out->more = true;
            break;
        }
        const char *name = (const char *)sqlite3_column_text(s, 0);
        size_t len = (size_t)sqlite3_column_bytes(s, 0);
        if (!name || len > STORE_ELECTION_NAME_MAX) {
            err = store_fail(st, STORE_ECORRUPT, "stored election name is not a name");
            goto out;
        }
        memcpy(items[n].name, name, len);
        read_row(s, 1, &items[n]);
        n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = store_sqlite_err(st, rc, "list elections");
out:
    store_reset(s);
    if (err || n == 0) {
        free(items);
        out->more = err ? false : out->more;
        return err;
    }
    out->items = items;
    out->n = n;
    return 0;
}
