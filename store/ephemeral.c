/* ephemeral.c — ephemeral keys: the binding of a KV key to the member that wrote it, recorded
 * by the PUT that makes it (and removed by any other PUT or DEL of the key) in the same
 * transaction as the write, checksummed, and read by the daemon's leader to find the keys of
 * a member that is gone. The deletes themselves are ordinary DELs through the log. */
#include <string.h>

#include "store_int.h"

uint32_t store_ephemeral_crc(const void *key, size_t key_len, uint64_t owner)
{
    return store_kv_crc(key, key_len, "", 0, owner, 0, 0);
}

int store_ephemeral_apply(store_t *st, const store_cmd_t *cmd)
{
    sqlite3_stmt *s = st->stmt[cmd->owner ? STMT_EPH_PUT : STMT_EPH_DEL];
    sqlite3_bind_blob(s, 1, cmd->key, (int)cmd->key_len, SQLITE_STATIC);
    if (cmd->owner) {
        sqlite3_bind_int64(s, 2, (int64_t)cmd->owner);
        sqlite3_bind_int64(s, 3, store_ephemeral_crc(cmd->key, cmd->key_len, cmd->owner));
    }
    int err = store_step_done(st, s, cmd->owner ? "bind ephemeral key" : "unbind key");
    if (cmd->owner || sqlite3_changes(st->db) > 0)
        st->eph_gen++;
    return err;
}

uint64_t store_ephemeral_gen(const store_t *st)
{
    return st->eph_gen;
}

int store_ephemeral_verify(store_t *st, const char *table, const char *what)
{
    return store_crc_verify(st, table, "electd_kv_crc(key, x'', owner, 0, 0)", what);
}

int store_ephemeral_owners(store_t *st, uint64_t *ids, size_t cap, size_t *n, bool *more)
{
    *n = 0;
    if (more)
        *more = false;
    st->errmsg[0] = 0;
    sqlite3_stmt *s = st->stmt[STMT_EPH_OWNERS];
    sqlite3_bind_int64(s, 1, (int64_t)cap + 1);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            if (more)
                *more = true;
            break;
        }
        ids[(*n)++] = (uint64_t)sqlite3_column_int64(s, 0);
    }
    store_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_sqlite_err(st, rc, "list ephemeral owners");
    return 0;
}

int store_ephemeral_list(store_t *st, uint64_t owner, size_t limit, store_kv_t **items, size_t *n)
{
    *items = NULL;
    *n = 0;
    st->errmsg[0] = 0;
    if (limit == 0 || limit > STORE_LIST_MAX)
        limit = STORE_LIST_MAX;
    sqlite3_stmt *s = st->stmt[STMT_EPH_LIST];
    sqlite3_bind_int64(s, 1, (int64_t)owner);
    sqlite3_bind_int64(s, 2, (int64_t)limit + 1);
    return store_kv_rows(st, s, limit, items, n, NULL);
}
