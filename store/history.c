/* history.c — the bounded change history that watches read: one row per applied KV put or
 * delete, written in the transaction that applies it, pruned to the newest history_max rows, and
 * emptied by a snapshot install (whose state machine arrives without the changes that built it).
 * history_from says from which revision on the history is complete. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* Bytes of values one store_history_read returns at most (beyond its first change), so that a
 * page of 64 KiB values stays about a MiB. */
#define HISTORY_PAGE_BYTES (1u << 20)

int store_history_load(store_t *st, uint64_t history_max)
{
    st->history_max = history_max ? history_max : STORE_HISTORY_DEFAULT;
    sqlite3_stmt *s = st->stmt[STMT_HIST_FROM];
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        st->history_from = (uint64_t)sqlite3_column_int64(s, 0);
    store_reset(s);
    if (rc != SQLITE_ROW)
        return store_sqlite_err(st, rc, "read the history's start");
    s = st->stmt[STMT_HIST_COUNT];
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        st->history_count = (uint64_t)sqlite3_column_int64(s, 0);
    store_reset(s);
    return rc == SQLITE_ROW ? 0 : store_sqlite_err(st, rc, "count the history");
}

/* The checksum of a history row: a KV row's, with the operation where the create revision is. */
static uint32_t history_crc(const void *key, size_t key_len, const void *value, size_t value_len,
                            uint64_t rev, int op)
{
    return store_kv_crc(key, key_len, value ? value : "", value_len, (uint64_t)op, rev, 0);
}

int store_history_add(store_t *st, uint64_t rev, const store_cmd_t *cmd, uint64_t *count)
{
    const void *value = cmd->op == STORE_CMD_PUT && cmd->value ? (const void *)cmd->value : "";
    size_t value_len = cmd->op == STORE_CMD_PUT ? cmd->value_len : 0;
    sqlite3_stmt *s = st->stmt[STMT_HIST_ADD];
    sqlite3_bind_int64(s, 1, (int64_t)rev);
    sqlite3_bind_int(s, 2, cmd->op);
    sqlite3_bind_blob(s, 3, cmd->key, (int)cmd->key_len, SQLITE_STATIC);
    if (cmd->op == STORE_CMD_PUT)
        sqlite3_bind_blob(s, 4, value, (int)value_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 4);
    sqlite3_bind_int64(s, 5, history_crc(cmd->key, cmd->key_len, value, value_len, rev, cmd->op));
    int err = store_step_done(st, s, "record the change in the history");
    if (err == 0)
        (*count)++;
    return err;
}

int store_history_prune(store_t *st, uint64_t *count, uint64_t *from)
{
    if (*count <= st->history_max)
        return 0;
    /* The newest revision to drop: the (count - max)th oldest row. */
    sqlite3_stmt *s = st->stmt[STMT_HIST_NTH];
    sqlite3_bind_int64(s, 1, (int64_t)(*count - st->history_max - 1));
    int rc = sqlite3_step(s);
    uint64_t upto = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
    store_reset(s);
    if (rc != SQLITE_ROW)
        return store_sqlite_err(st, rc, "find the history's oldest rows");
    s = st->stmt[STMT_HIST_PRUNE];
    sqlite3_bind_int64(s, 1, (int64_t)upto);
    int err = store_step_done(st, s, "prune the history");
    if (err)
        return err;
    s = st->stmt[STMT_HIST_FROM_SET];
    sqlite3_bind_int64(s, 1, (int64_t)upto);
    if ((err = store_step_done(st, s, "record the history's start")) != 0)
        return err;
    *count = st->history_max;
    *from = upto;
    return 0;
}

uint64_t store_history_from(const store_t *st)
{
    return st->history_from;
}

uint64_t store_history_count(const store_t *st)
{
    return st->history_count;
}

void store_history_free(store_change_t *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++) {
        free(items[i].key);
        free(items[i].value);
    }
    free(items);
}

/* Copies the row s is on into *c, unless it fails its checksum. */
static int fill_change(store_t *st, sqlite3_stmt *s, store_change_t *c)
{
    const void *key = sqlite3_column_blob(s, 2);
    size_t key_len = (size_t)sqlite3_column_bytes(s, 2);
    const void *value = sqlite3_column_blob(s, 3);
    size_t value_len = (size_t)sqlite3_column_bytes(s, 3);
    uint64_t rev = (uint64_t)sqlite3_column_int64(s, 0);
    int op = sqlite3_column_int(s, 1);
    if (key_len > STORE_KEY_MAX ||
        sqlite3_column_int64(s, 4) !=
            (int64_t)history_crc(key ? key : "", key_len, value, value_len, rev, op))
        return store_corrupt(st, key ? key : "", key_len > STORE_KEY_MAX ? 0 : key_len,
                             "the change history");
    c->revision = rev;
    c->deleted = op == STORE_CMD_DEL;
    if (store_copy_pair(key, key_len, value, value_len, &c->key, &c->value) != 0)
        return store_fail(st, STORE_ENOMEM, "no memory for a change");
    c->key_len = key_len;
    c->value_len = value_len;
    return 0;
}

int store_history_read(store_t *st, uint64_t after, const char *key, size_t key_len, bool prefix,
                       size_t limit, store_change_t **items, size_t *n, bool *more)
{
    *items = NULL;
    *n = 0;
    *more = false;
    st->errmsg[0] = 0;
    if (limit == 0 || limit > STORE_LIST_MAX)
        limit = STORE_LIST_MAX;
    if (key_len > STORE_KEY_MAX || (key_len && !key))
        return store_fail(st, STORE_EKEY, "key or prefix longer than %d bytes", STORE_KEY_MAX);
    sqlite3_stmt *s;
    uint8_t end[STORE_KEY_MAX];
    if (prefix) {
        size_t end_len = store_prefix_end(key, key_len, end);
        s = st->stmt[STMT_HIST_RANGE];
        sqlite3_bind_blob(s, 2, key_len ? key : "", (int)key_len, SQLITE_STATIC);
        if (end_len)
            sqlite3_bind_blob(s, 3, end, (int)end_len, SQLITE_STATIC);
        else
            sqlite3_bind_null(s, 3);
    } else {
        s = st->stmt[STMT_HIST_KEY];
        sqlite3_bind_blob(s, 2, key_len ? key : "", (int)key_len, SQLITE_STATIC);
    }
    sqlite3_bind_int64(s, 1, (int64_t)after);
    sqlite3_bind_int64(s, 4, (int64_t)limit);
    store_change_t *out = calloc(limit, sizeof *out);
    size_t count = 0, bytes = 0;
    int err = 0, rc = SQLITE_DONE;
    if (!out) {
        err = store_fail(st, STORE_ENOMEM, "no memory for the changes");
        goto done;
    }
    while (count < limit && bytes <= HISTORY_PAGE_BYTES && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        err = fill_change(st, s, &out[count]);
        count++; /* a half-filled change is freed with the rest */
        if (err)
            goto done;
        bytes += out[count - 1].value_len;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = store_sqlite_err(st, rc, "read the change history");
    *more = rc == SQLITE_ROW; /* stopped at the limit: more may follow */
done:
    store_reset(s);
    if (err || count == 0) {
        store_history_free(out, count);
        return err;
    }
    *items = out;
    *n = count;
    return 0;
}
