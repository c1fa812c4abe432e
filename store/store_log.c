/* store_log.c — Raft persistence: saving a ready batch (hard state, snapshot chunk/install,
 * appended entries with conflict truncation) in one durable transaction, loading everything
 * raft_open() needs at boot, and log compaction. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

static int save_hs(store_t *st, const raft_hard_state_t *hs)
{
    sqlite3_stmt *s = st->stmt[STMT_HS_SET];
    sqlite3_bind_int64(s, 1, (int64_t)hs->term);
    sqlite3_bind_int64(s, 2, (int64_t)hs->vote);
    sqlite3_bind_int64(s, 3, (int64_t)hs->commit);
    return store_step_done(st, s, "save hard state");
}

static int append(store_t *st, const raft_entry_t *e, size_t n, uint64_t last)
{
    int err = 0;
    if (e[0].index <= last) {
        sqlite3_stmt *s = st->stmt[STMT_LOG_TRUNCATE];
        sqlite3_bind_int64(s, 1, (int64_t)e[0].index);
        if ((err = store_step_done(st, s, "truncate conflicting log suffix")) != 0)
            return err;
    }
    sqlite3_stmt *s = st->stmt[STMT_LOG_INSERT];
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(s, 1, (int64_t)e[i].index);
        sqlite3_bind_int64(s, 2, (int64_t)e[i].term);
        sqlite3_bind_int(s, 3, e[i].type);
        if (e[i].len)
            sqlite3_bind_blob(s, 4, e[i].data, (int)e[i].len, SQLITE_STATIC);
        else
            sqlite3_bind_null(s, 4);
        if ((err = store_step_done(st, s, "append log entry")) != 0)
            return err;
    }
    return 0;
}

/* Programmer errors in a batch are refused before anything is written. */
static int check_entries(store_t *st, const raft_entry_t *e, size_t n, uint64_t last)
{
    if (n == 0)
        return 0;
    if (!e)
        return store_fail(st, STORE_EINVAL, "ready batch has entries == NULL");
    if (e[0].index == 0 || e[0].index > last + 1)
        return store_fail(st, STORE_EINVAL, "append at index %llu leaves a gap after %llu",
                          (unsigned long long)e[0].index, (unsigned long long)last);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && e[i].index != e[i - 1].index + 1)
            return store_fail(st, STORE_EINVAL, "entries not consecutive at index %llu",
                              (unsigned long long)e[i].index);
        if (e[i].len > RAFT_ENTRY_MAX || (e[i].len && !e[i].data))
            return store_fail(st, STORE_EINVAL, "entry %llu has a bad payload",
                              (unsigned long long)e[i].index);
    }
    return 0;
}

int store_save_ready(store_t *st, const raft_ready_t *rd)
{
    const raft_snapshot_chunk_t *c = rd->chunk;
    bool install = c && c->last;
    bool attached = false;
    int err = 0;
    st->errmsg[0] = 0;
    if (!rd->hs_changed && !c && rd->n_entries == 0)
        return 0;
    /* After an install the log is empty and continues from the snapshot. */
    uint64_t last = install ? c->meta.index : st->last_index;
    if ((err = check_entries(st, rd->entries, rd->n_entries, last)) != 0)
        return err;
    if (c) {
        if ((err = store_snapshot_chunk(st, c)) != 0)
            return err;
        if (install) {
            if ((err = store_snapshot_attach_staged(st, c)) != 0)
                return err;
            attached = true;
        }
    }
    /* A batch that only moves the commit index need not reach the disk before anything
     * else happens: Raft never relies on a durable commit index (a restarted node learns it
     * again, and applying is idempotent). It becomes durable with the next synchronous
     * commit, as WAL frames are written in order. This takes one fsync off every write's
     * path on the leader. SQLite refuses to change the safety level inside a transaction. */
    bool commit_only = rd->hs_changed && !c && rd->n_entries == 0 && st->hs_known &&
                       rd->hs.term == st->hs_term && rd->hs.vote == st->hs_vote;
    if (commit_only && (err = store_exec(st, "PRAGMA synchronous = NORMAL", "relax sync")) != 0)
        goto fail;
    if ((err = store_tx_begin(st)) != 0)
        goto fail;
    if (rd->hs_changed && (err = save_hs(st, &rd->hs)) != 0)
        goto fail;
    if (install && (err = store_snapshot_install_tx(st, c)) != 0)
        goto fail;
    if (rd->n_entries && (err = append(st, rd->entries, rd->n_entries, last)) != 0)
        goto fail;
    if ((err = store_tx_commit(st)) != 0)
        goto fail;
    if (commit_only)
        store_exec(st, "PRAGMA synchronous = FULL", "restore sync");
    if (rd->hs_changed) {
        st->hs_term = rd->hs.term;
        st->hs_vote = rd->hs.vote;
    }
    if (attached)
        store_snapshot_detach_staged(st);
    if (install)
        store_snapshot_installed(st, c);
    if (rd->n_entries)
        last = rd->entries[rd->n_entries - 1].index;
    st->last_index = last;
    return 0;
fail:
    store_tx_rollback(st);
    if (commit_only)
        store_exec(st, "PRAGMA synchronous = FULL", "restore sync");
    if (attached)
        store_snapshot_detach_staged(st);
    return err;
}

int store_log_compact(store_t *st, uint64_t upto)
{
    st->errmsg[0] = 0;
    if (upto > st->snap.index)
        return store_fail(st, STORE_EINVAL,
                          "cannot compact the log to %llu beyond the snapshot "
                          "at %llu",
                          (unsigned long long)upto, (unsigned long long)st->snap.index);
    sqlite3_stmt *s = st->stmt[STMT_LOG_COMPACT];
    sqlite3_bind_int64(s, 1, (int64_t)upto);
    return store_step_done(st, s, "compact log");
}

uint64_t store_log_last_index(const store_t *st)
{
    return st->last_index;
}

uint64_t store_log_first_index(store_t *st)
{
    sqlite3_stmt *s = st->stmt[STMT_LOG_BOUNDS];
    uint64_t first = 0;
    if (sqlite3_step(s) == SQLITE_ROW)
        first = (uint64_t)sqlite3_column_int64(s, 0);
    store_reset(s);
    return first;
}

void store_boot_free(store_t *st, raft_boot_t *boot)
{
    free(st->boot_entries);
    free(st->boot_data);
    st->boot_entries = NULL;
    st->boot_data = NULL;
    if (boot) {
        boot->entries = NULL;
        boot->n_entries = 0;
    }
}

static int load_hs(store_t *st, raft_hard_state_t *hs)
{
    sqlite3_stmt *s = st->stmt[STMT_HS_GET];
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        hs->term = (uint64_t)sqlite3_column_int64(s, 0);
        hs->vote = (uint64_t)sqlite3_column_int64(s, 1);
        hs->commit = (uint64_t)sqlite3_column_int64(s, 2);
    }
    store_reset(s);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc == SQLITE_DONE)
        return store_fail(st, STORE_ECORRUPT, "%s lacks its hard state row", st->path);
    return store_sqlite_err(st, rc, "read hard state");
}

/* Loads entries in one allocation for the array and one for all payloads, sized by a first
 * counting query inside the same read transaction. */
static int load_entries(store_t *st, uint64_t after, raft_boot_t *boot)
{
    sqlite3_stmt *s = st->stmt[STMT_LOG_COUNT];
    sqlite3_bind_int64(s, 1, (int64_t)after);
    int rc = sqlite3_step(s);
    int64_t count = 0, bytes = 0;
    if (rc == SQLITE_ROW) {
        count = sqlite3_column_int64(s, 0);
        bytes = sqlite3_column_int64(s, 1);
    }
    store_reset(s);
    if (rc != SQLITE_ROW)
        return store_sqlite_err(st, rc, "count log entries");
    if (count == 0)
        return 0;
    st->boot_entries = calloc((size_t)count, sizeof *st->boot_entries);
    st->boot_data = malloc(bytes ? (size_t)bytes : 1);
    if (!st->boot_entries || !st->boot_data)
        return store_fail(st, STORE_ENOMEM, "no memory for %lld log entries", (long long)count);
    s = st->stmt[STMT_LOG_LOAD];
    sqlite3_bind_int64(s, 1, (int64_t)after);
    size_t n = 0, off = 0;
    int err = 0;
    uint64_t expect = after + 1;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        raft_entry_t *e = &st->boot_entries[n];
        e->index = (uint64_t)sqlite3_column_int64(s, 0);
        e->term = (uint64_t)sqlite3_column_int64(s, 1);
        e->type = (uint8_t)sqlite3_column_int(s, 2);
        const void *d = sqlite3_column_blob(s, 3);
        size_t len = (size_t)sqlite3_column_bytes(s, 3);
        if (n >= (size_t)count || off + len > (size_t)bytes || e->index != expect) {
            err = store_fail(st, STORE_ECORRUPT,
                             "%s: log is not consecutive at index %llu "
                             "(expected %llu): restore the file from a backup or move it away",
                             st->path, (unsigned long long)e->index, (unsigned long long)expect);
            break;
        }
        if (len) {
            memcpy(st->boot_data + off, d, len);
            e->data = st->boot_data + off;
        }
        e->len = (uint32_t)len;
        off += len;
        n++;
        expect++;
    }
    store_reset(s);
    if (!err && rc != SQLITE_DONE)
        err = store_sqlite_err(st, rc, "read log");
    if (!err) {
        boot->entries = st->boot_entries;
        boot->n_entries = n;
    }
    return err;
}

int store_boot_load(store_t *st, raft_boot_t *boot)
{
    st->errmsg[0] = 0;
    store_boot_free(st, NULL);
    memset(boot, 0, sizeof *boot);
    /* One read transaction so that hard state, snapshot and log are seen together. */
    int err = store_exec(st, "BEGIN", "begin read");
    if (err)
        return err;
    if ((err = load_hs(st, &boot->hs)) != 0 || (err = store_snapshot_meta(st, &boot->snap)) != 0 ||
        (err = load_entries(st, boot->snap.index, boot)) != 0)
        goto fail;
    sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL); /* read only: nothing to lose */
    st->hs_known = true;
    st->hs_term = boot->hs.term;
    st->hs_vote = boot->hs.vote;
    return 0;
fail:
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    store_boot_free(st, boot);
    memset(boot, 0, sizeof *boot);
    return err;
}
