/* sm.c — the replicated state machine: applying committed entries (KV writes with CAS and
 * fencing, election commands through election.c, term starts as epochs, configurations)
 * atomically with the applied index, and the reads the HTTP API serves (KV, epochs, conf,
 * node-local keys). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "store_int.h"

const char *store_status_name(store_status_t s)
{
    switch (s) {
    case STORE_APPLIED_OK:
        return "ok";
    case STORE_APPLIED_SKIPPED:
        return "skipped";
    case STORE_APPLIED_CONFLICT:
        return "conflict";
    case STORE_APPLIED_FENCED:
        return "fenced";
    case STORE_APPLIED_NOT_FOUND:
        return "not found";
    case STORE_APPLIED_INVALID:
        return "invalid";
    case STORE_APPLIED_STALE:
        return "stale";
    }
    return "unknown";
}

/* ---- row checksums ------------------------------------------------------------------------ */

uint32_t store_kv_crc(const void *key, size_t key_len, const void *value, size_t value_len,
                      uint64_t create_rev, uint64_t mod_rev, uint64_t version)
{
    uint8_t n[24];
    base_le_store64(n, key_len);
    uint32_t crc = raft_crc32c(0, n, 8);
    crc = raft_crc32c(crc, key, key_len);
    base_le_store64(n, value_len);
    crc = raft_crc32c(crc, n, 8);
    crc = raft_crc32c(crc, value, value_len);
    base_le_store64(n, create_rev);
    base_le_store64(n + 8, mod_rev);
    base_le_store64(n + 16, version);
    return raft_crc32c(crc, n, sizeof n);
}

static void sql_kv_crc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const void *key = sqlite3_value_blob(argv[0]);
    size_t key_len = (size_t)sqlite3_value_bytes(argv[0]);
    const void *value = sqlite3_value_blob(argv[1]);
    size_t value_len = (size_t)sqlite3_value_bytes(argv[1]);
    sqlite3_result_int64(ctx, store_kv_crc(key ? key : "", key_len, value ? value : "", value_len,
                                           (uint64_t)sqlite3_value_int64(argv[2]),
                                           (uint64_t)sqlite3_value_int64(argv[3]),
                                           (uint64_t)sqlite3_value_int64(argv[4])));
}

int store_sql_functions(sqlite3 *db)
{
    return sqlite3_create_function(db, "electd_kv_crc", 5,
                                   SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, NULL,
                                   sql_kv_crc, NULL, NULL);
}

int store_copy_pair(const void *key, size_t key_len, const void *value, size_t value_len,
                    char **key_out, uint8_t **value_out)
{
    *key_out = malloc(key_len + 1);
    *value_out = malloc(value_len + 1);
    if (*key_out == NULL || *value_out == NULL)
        return -1;
    if (key_len)
        memcpy(*key_out, key, key_len);
    (*key_out)[key_len] = 0;
    if (value_len)
        memcpy(*value_out, value, value_len);
    (*value_out)[value_len] = 0;
    return 0;
}

int store_corrupt(store_t *st, const void *key, size_t key_len, const char *what)
{
    st->corrupt_values++;
    memcpy(st->corrupt_key, key, key_len);
    st->corrupt_key_len = key_len;
    /* the key as printable text: bytes outside ASCII's printable range as \xHH */
    char shown[4 * 64 + 4];
    size_t o = 0;
    for (size_t i = 0; i < key_len && i < 64; i++) {
        uint8_t b = ((const uint8_t *)key)[i];
        if (b >= 0x20 && b < 0x7f && b != '\\' && b != '"')
            shown[o++] = (char)b;
        else
            o += (size_t)snprintf(shown + o, sizeof shown - o, "\\x%02x", b);
    }
    snprintf(shown + o, sizeof shown - o, "%s", key_len > 64 ? "..." : "");
    return store_fail(st, STORE_ECHECKSUM,
                      "%s: the value of key \"%s\" in %s fails its checksum (the file was "
                      "changed or damaged): refused; overwrite or delete the key, or move this "
                      "member's data directory away and re-add it so that it catches up from the "
                      "others",
                      what, shown, st->path);
}

int store_crc_verify(store_t *st, const char *table, const char *crc_sql, const char *what)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT key FROM %s WHERE crc IS NOT %s LIMIT 1", table, crc_sql);
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    int err = 0;
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW)
        err =
            store_corrupt(st, sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0), what);
    else if (rc != SQLITE_DONE)
        err = store_sqlite_err(st, rc, "check checksums");
    sqlite3_finalize(s);
    return err;
}

int store_kv_verify(store_t *st, const char *table, const char *what)
{
    return store_crc_verify(st, table, "electd_kv_crc(key, value, create_rev, mod_rev, version)",
                            what);
}

uint64_t store_corrupt_values(const store_t *st)
{
    return st->corrupt_values;
}

const char *store_corrupt_key(const store_t *st, size_t *len)
{
    *len = st->corrupt_key_len;
    return st->corrupt_values ? st->corrupt_key : NULL;
}

/* ---- apply ------------------------------------------------------------------------------- */

typedef struct kv_row {
    bool found;
    uint64_t create_rev, mod_rev, version;
} kv_row_t;

static int kv_lookup(store_t *st, const char *key, size_t key_len, kv_row_t *row)
{
    sqlite3_stmt *s = st->stmt[STMT_KV_GET];
    sqlite3_bind_blob(s, 1, key, (int)key_len, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    memset(row, 0, sizeof *row);
    if (rc == SQLITE_ROW) {
        row->found = true;
        row->create_rev = (uint64_t)sqlite3_column_int64(s, 1);
        row->mod_rev = (uint64_t)sqlite3_column_int64(s, 2);
        row->version = (uint64_t)sqlite3_column_int64(s, 3);
    }
    store_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_sqlite_err(st, rc, "read key");
    return 0;
}

/* The fencing rule: token 0 is unfenced. Without an election, any other token must be the
 * current epoch's term: an older one is stale, a newer one names no epoch that exists (yet).
 * With an election, the token must be that election's current token, and someone must hold
 * it: an election nobody holds or that does not exist fences every write. *fenced is set;
 * *against is the token compared with (0: no epoch yet, or no such election). */
static int check_fence(store_t *st, const store_cmd_t *cmd, uint64_t epoch, bool *fenced,
                       uint64_t *against)
{
    *fenced = false;
    *against = epoch;
    if (cmd->cond.fence == 0)
        return 0;
    if (!cmd->name) {
        *fenced = cmd->cond.fence != epoch;
        return 0;
    }
    store_election_t el;
    bool found = false;
    int err = store_election_lookup(st, cmd->name, cmd->name_len, &el, &found);
    if (err)
        return err;
    *against = found ? el.token : 0;
    *fenced = !found || el.holder == 0 || cmd->cond.fence != el.token;
    return 0;
}

static int apply_kv(store_t *st, const raft_entry_t *e, const store_cmd_t *cmd, uint64_t epoch,
                    store_result_t *r, uint64_t *history)
{
    bool fenced;
    int err = check_fence(st, cmd, epoch, &fenced, &r->epoch);
    if (err)
        return err;
    if (fenced) {
        r->status = STORE_APPLIED_FENCED;
        return 0;
    }
    r->epoch = 0;
    kv_row_t row;
    if ((err = kv_lookup(st, cmd->key, cmd->key_len, &row)) != 0)
        return err;
    if (cmd->cond.has_if_match && cmd->cond.if_match != (row.found ? row.mod_rev : 0)) {
        r->status = STORE_APPLIED_CONFLICT;
        r->mod_revision = row.found ? row.mod_rev : 0;
        return 0;
    }
    if (cmd->op == STORE_CMD_DEL) {
        if (!row.found) {
            r->status = STORE_APPLIED_NOT_FOUND;
            return 0;
        }
        sqlite3_stmt *s = st->stmt[STMT_KV_DEL];
        sqlite3_bind_blob(s, 1, cmd->key, (int)cmd->key_len, SQLITE_STATIC);
        if ((err = store_step_done(st, s, "delete key")) != 0 ||
            (err = store_ephemeral_apply(st, cmd)) != 0 ||
            (err = store_history_add(st, e->index, cmd, history)) != 0)
            return err;
        r->revision = e->index;
        r->create_revision = row.create_rev;
        r->mod_revision = row.mod_rev;
        r->version = row.version;
        return 0;
    }
    uint64_t create = row.found ? row.create_rev : e->index;
    uint64_t version = row.found ? row.version + 1 : 1;
    sqlite3_stmt *s = st->stmt[STMT_KV_PUT];
    sqlite3_bind_blob(s, 1, cmd->key, (int)cmd->key_len, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, cmd->value ? (const void *)cmd->value : "", (int)cmd->value_len,
                      SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (int64_t)create);
    sqlite3_bind_int64(s, 4, (int64_t)e->index);
    sqlite3_bind_int64(s, 5, (int64_t)version);
    sqlite3_bind_int64(s, 6,
                       store_kv_crc(cmd->key, cmd->key_len, cmd->value ? cmd->value : (void *)"",
                                    cmd->value_len, create, e->index, version));
    if ((err = store_step_done(st, s, "put key")) != 0 ||
        (err = store_ephemeral_apply(st, cmd)) != 0 ||
        (err = store_history_add(st, e->index, cmd, history)) != 0)
        return err;
    r->revision = e->index;
    r->create_revision = create;
    r->mod_revision = e->index;
    r->version = version;
    return 0;
}

/* A NORMAL entry: a KV write or an election command. */
static int apply_cmd(store_t *st, const raft_entry_t *e, uint64_t epoch, store_result_t *r,
                     uint64_t *history)
{
    store_cmd_t cmd;
    int derr = store_cmd_decode(e->data, e->len, &cmd);
    if (derr) {
        r->status = STORE_APPLIED_INVALID;
        r->err = derr;
        return 0;
    }
    r->op = cmd.op;
    if (cmd.op == STORE_CMD_ELECTION_ASSIGN || cmd.op == STORE_CMD_ELECTION_DROP)
        return store_election_apply(st, e, &cmd, r);
    return apply_kv(st, e, &cmd, epoch, r, history);
}

static int apply_term_start(store_t *st, const raft_entry_t *e, uint64_t *epoch, store_result_t *r)
{
    raft_term_start_t ts;
    if (raft_term_start_decode(e->data, e->len, &ts) != 0) {
        r->status = STORE_APPLIED_INVALID;
        r->err = STORE_ERAFT;
        return 0;
    }
    sqlite3_stmt *s = st->stmt[STMT_EPOCH_ADD];
    sqlite3_bind_int64(s, 1, (int64_t)e->term);
    sqlite3_bind_int64(s, 2, (int64_t)ts.leader);
    sqlite3_bind_int64(s, 3, (int64_t)ts.stamp);
    sqlite3_bind_int64(s, 4, (int64_t)e->index);
    int err = store_step_done(st, s, "record epoch");
    if (err)
        return err;
    if (e->term > *epoch)
        *epoch = e->term;
    r->epoch = e->term;
    r->leader = ts.leader;
    return 0;
}

static int apply_conf(store_t *st, const raft_entry_t *e, store_result_t *r)
{
    raft_conf_t conf;
    if (raft_conf_decode(e->data, e->len, &conf) != 0) {
        r->status = STORE_APPLIED_INVALID;
        r->err = STORE_ERAFT;
        return 0;
    }
    sqlite3_stmt *s = st->stmt[STMT_SM_CONF];
    sqlite3_bind_int64(s, 1, (int64_t)e->index);
    sqlite3_bind_blob(s, 2, e->data, (int)e->len, SQLITE_STATIC);
    return store_step_done(st, s, "record configuration");
}

static int current_epoch(store_t *st, store_epoch_t *out)
{
    sqlite3_stmt *s = st->stmt[STMT_EPOCH_CUR];
    int rc = sqlite3_step(s);
    memset(out, 0, sizeof *out);
    if (rc == SQLITE_ROW) {
        out->term = (uint64_t)sqlite3_column_int64(s, 0);
        out->leader = (uint64_t)sqlite3_column_int64(s, 1);
        out->started_ms = (uint64_t)sqlite3_column_int64(s, 2);
        out->index = (uint64_t)sqlite3_column_int64(s, 3);
    }
    store_reset(s);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? STORE_ENOTFOUND : store_sqlite_err(st, rc, "read current epoch");
}

int store_apply(store_t *st, const raft_entry_t *committed, size_t n, store_result_t *results)
{
    st->errmsg[0] = 0;
    uint64_t applied = st->applied_index, applied_term = st->applied_term;
    /* Validate the whole batch before touching anything. */
    uint64_t expect = applied + 1;
    for (size_t i = 0; i < n; i++) {
        if (committed[i].index <= applied)
            continue;
        if (committed[i].index != expect)
            return store_fail(st, STORE_EINVAL,
                              "apply of index %llu after applied index %llu "
                              "would skip entries",
                              (unsigned long long)committed[i].index,
                              (unsigned long long)(expect - 1));
        if (committed[i].len && !committed[i].data)
            return store_fail(st, STORE_EINVAL, "entry %llu has len but no data",
                              (unsigned long long)committed[i].index);
        expect++;
    }
    if (results)
        memset(results, 0, n * sizeof *results);
    if (expect == applied + 1) { /* everything was applied before */
        for (size_t i = 0; results && i < n; i++) {
            results[i].index = committed[i].index;
            results[i].type = committed[i].type;
            results[i].status = STORE_APPLIED_SKIPPED;
        }
        return 0;
    }
    /* Not fsynced: WAL order makes it durable with the next synchronous commit, and a lost
     * apply is re-applied from the durable log (docs/storage.md). SQLite refuses to change the
     * safety level inside a transaction, hence here. */
    int err = store_exec(st, "PRAGMA synchronous = NORMAL", "relax sync");
    if (err)
        return err;
    if ((err = store_tx_begin(st)) != 0)
        goto fail;
    store_epoch_t cur;
    err = current_epoch(st, &cur);
    if (err && err != STORE_ENOTFOUND)
        goto fail;
    err = 0;
    uint64_t epoch = cur.term;
    uint64_t history = st->history_count, history_from = st->history_from;
    for (size_t i = 0; i < n; i++) {
        const raft_entry_t *e = &committed[i];
        store_result_t scratch, *r = results ? &results[i] : &scratch;
        memset(r, 0, sizeof *r);
        r->index = e->index;
        r->type = e->type;
        if (e->index <= st->applied_index) {
            r->status = STORE_APPLIED_SKIPPED;
            continue;
        }
        switch (e->type) {
        case RAFT_ENTRY_NORMAL:
            err = apply_cmd(st, e, epoch, r, &history);
            break;
        case RAFT_ENTRY_NOOP:
            err = apply_term_start(st, e, &epoch, r);
            break;
        case RAFT_ENTRY_CONF:
            err = apply_conf(st, e, r);
            break;
        default:
            r->status = STORE_APPLIED_INVALID;
            r->err = STORE_ERAFT;
            break;
        }
        if (err)
            goto fail;
        applied = e->index;
        applied_term = e->term;
    }
    if ((err = store_history_prune(st, &history, &history_from)) != 0)
        goto fail;
    sqlite3_stmt *s = st->stmt[STMT_SM_APPLIED];
    sqlite3_bind_int64(s, 1, (int64_t)applied);
    sqlite3_bind_int64(s, 2, (int64_t)applied_term);
    if ((err = store_step_done(st, s, "advance applied index")) != 0)
        goto fail;
    if ((err = store_tx_commit(st)) != 0)
        goto fail;
    store_exec(st, "PRAGMA synchronous = FULL", "restore sync");
    st->applied_index = applied;
    st->applied_term = applied_term;
    st->history_count = history;
    st->history_from = history_from;
    return 0;
fail:
    store_tx_rollback(st);
    store_exec(st, "PRAGMA synchronous = FULL", "restore sync");
    if (results)
        memset(results, 0, n * sizeof *results);
    return err;
}

uint64_t store_applied_index(const store_t *st)
{
    return st->applied_index;
}

uint64_t store_applied_term(const store_t *st)
{
    return st->applied_term;
}

/* ---- reads ------------------------------------------------------------------------------- */

/* Copies the row s is on (value, revisions and checksum from column col0, then the ephemeral
 * owner and its checksum, NULL for an ordinary key) into *kv, unless it fails a checksum. */
int store_kv_fill(store_t *st, sqlite3_stmt *s, int col0, const void *key, size_t key_len,
                  store_kv_t *kv)
{
    const void *v = sqlite3_column_blob(s, col0);
    size_t vlen = (size_t)sqlite3_column_bytes(s, col0);
    uint32_t crc = store_kv_crc(
        key, key_len, v ? v : "", vlen, (uint64_t)sqlite3_column_int64(s, col0 + 1),
        (uint64_t)sqlite3_column_int64(s, col0 + 2), (uint64_t)sqlite3_column_int64(s, col0 + 3));
    if (sqlite3_column_int64(s, col0 + 4) != (int64_t)crc)
        return store_corrupt(st, key, key_len, "read");
    uint64_t owner = (uint64_t)sqlite3_column_int64(s, col0 + 5);
    if (sqlite3_column_type(s, col0 + 5) != SQLITE_NULL &&
        sqlite3_column_int64(s, col0 + 6) != (int64_t)store_ephemeral_crc(key, key_len, owner))
        return store_corrupt(st, key, key_len, "read");
    if (store_copy_pair(key, key_len, v, vlen, &kv->key, &kv->value) != 0) {
        store_kv_clear(kv);
        return store_fail(st, STORE_ENOMEM, "no memory for a key/value copy");
    }
    kv->key_len = key_len;
    kv->value_len = vlen;
    kv->create_revision = (uint64_t)sqlite3_column_int64(s, col0 + 1);
    kv->mod_revision = (uint64_t)sqlite3_column_int64(s, col0 + 2);
    kv->version = (uint64_t)sqlite3_column_int64(s, col0 + 3);
    kv->owner = owner;
    return 0;
}

int store_kv_get(store_t *st, const char *key, size_t key_len, store_kv_t *kv)
{
    memset(kv, 0, sizeof *kv);
    st->errmsg[0] = 0;
    if (store_key_check(key, key_len))
        return store_fail(st, STORE_EKEY, "key must be 1..%d bytes without NUL", STORE_KEY_MAX);
    sqlite3_stmt *s = st->stmt[STMT_KV_GET];
    sqlite3_bind_blob(s, 1, key, (int)key_len, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    int err = 0;
    if (rc == SQLITE_ROW)
        err = store_kv_fill(st, s, 0, key, key_len, kv);
    else if (rc == SQLITE_DONE)
        err = STORE_ENOTFOUND;
    else
        err = store_sqlite_err(st, rc, "read key");
    store_reset(s);
    return err;
}

void store_kv_clear(store_kv_t *kv)
{
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof *kv);
}

void store_kv_list_free(store_kv_t *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++)
        store_kv_clear(&items[i]);
    free(items);
}

size_t store_prefix_end(const char *prefix, size_t len, uint8_t *out)
{
    if (len)
        memcpy(out, prefix, len);
    while (len > 0 && out[len - 1] == 0xff)
        len--;
    if (len > 0)
        out[len - 1]++;
    return len;
}

int store_kv_list(store_t *st, const char *prefix, size_t prefix_len, const char *after,
                  size_t after_len, size_t limit, store_kv_t **items, size_t *n, bool *more)
{
    *items = NULL;
    *n = 0;
    if (more)
        *more = false;
    st->errmsg[0] = 0;
    if (limit == 0 || limit > STORE_LIST_MAX)
        limit = STORE_LIST_MAX;
    if (prefix_len > STORE_KEY_MAX || after_len > STORE_KEY_MAX || (prefix_len && !prefix) ||
        (after_len && !after))
        return store_fail(st, STORE_EKEY, "prefix or start key longer than %d bytes",
                          STORE_KEY_MAX);
    uint8_t end[STORE_KEY_MAX];
    size_t end_len = store_prefix_end(prefix, prefix_len, end);
    /* lower bound: the larger of prefix and just-after `after` */
    const char *lo = prefix;
    size_t lo_len = prefix_len;
    bool lo_strict = false;
    if (after_len) {
        size_t m = after_len < prefix_len ? after_len : prefix_len;
        int c = m ? memcmp(after, prefix, m) : 0;
        if (c > 0 || (c == 0 && after_len >= prefix_len)) {
            lo = after;
            lo_len = after_len;
            lo_strict = true;
        }
    }
    static const int which[2][2] = {{STMT_LIST_GE, STMT_LIST_GT},
                                    {STMT_LIST_GE_LT, STMT_LIST_GT_LT}};
    sqlite3_stmt *s = st->stmt[which[end_len > 0][lo_strict]];
    sqlite3_bind_blob(s, 1, lo_len ? (const void *)lo : "", (int)lo_len, SQLITE_STATIC);
    if (end_len)
        sqlite3_bind_blob(s, 2, end, (int)end_len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (int64_t)limit + 1);
    return store_kv_rows(st, s, limit, items, n, more);
}

int store_kv_rows(store_t *st, sqlite3_stmt *s, size_t limit, store_kv_t **items, size_t *n,
                  bool *more)
{
    int rc;
    store_kv_t *out = calloc(limit, sizeof *out);
    int err = 0;
    size_t count = 0;
    if (!out) {
        err = store_fail(st, STORE_ENOMEM, "no memory for a listing");
        goto out;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (count == limit) {
            if (more)
                *more = true;
            break;
        }
        const void *k = sqlite3_column_blob(s, 0);
        size_t klen = (size_t)sqlite3_column_bytes(s, 0);
        if ((err = store_kv_fill(st, s, 1, k, klen, &out[count])) != 0)
            goto out;
        count++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = store_sqlite_err(st, rc, "list keys");
out:
    store_reset(s);
    if (err) {
        store_kv_list_free(out, count);
        return err;
    }
    if (count == 0) {
        free(out);
        out = NULL;
    }
    *items = out;
    *n = count;
    return 0;
}

int store_kv_count(store_t *st, uint64_t *count)
{
    sqlite3_stmt *s = st->stmt[STMT_KV_COUNT];
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *count = (uint64_t)sqlite3_column_int64(s, 0);
    store_reset(s);
    return rc == SQLITE_ROW ? 0 : store_sqlite_err(st, rc, "count keys");
}

int store_epoch_current(store_t *st, store_epoch_t *out)
{
    st->errmsg[0] = 0;
    return current_epoch(st, out);
}

int store_epochs_list(store_t *st, uint64_t before_term, store_epoch_t *out, size_t cap, size_t *n)
{
    *n = 0;
    st->errmsg[0] = 0;
    if (cap > STORE_EPOCHS_MAX)
        cap = STORE_EPOCHS_MAX;
    sqlite3_stmt *s = st->stmt[STMT_EPOCH_LIST];
    sqlite3_bind_int64(s, 1, before_term ? (int64_t)before_term : INT64_MAX);
    sqlite3_bind_int64(s, 2, (int64_t)cap);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < cap) {
        store_epoch_t *e = &out[(*n)++];
        e->term = (uint64_t)sqlite3_column_int64(s, 0);
        e->leader = (uint64_t)sqlite3_column_int64(s, 1);
        e->started_ms = (uint64_t)sqlite3_column_int64(s, 2);
        e->index = (uint64_t)sqlite3_column_int64(s, 3);
    }
    store_reset(s);
    return (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : store_sqlite_err(st, rc, "list epochs");
}

int store_conf_get(store_t *st, raft_conf_t *conf, uint64_t *index)
{
    st->errmsg[0] = 0;
    sqlite3_stmt *s = st->stmt[STMT_SM_GET];
    int rc = sqlite3_step(s);
    int err = 0;
    if (rc == SQLITE_ROW) {
        const uint8_t *blob = sqlite3_column_blob(s, 3);
        size_t len = (size_t)sqlite3_column_bytes(s, 3);
        if (!blob)
            err = STORE_ENOTFOUND;
        else if (raft_conf_decode(blob, len, conf) != 0)
            err = store_fail(st, STORE_ECORRUPT, "stored configuration does not decode");
        else if (index)
            *index = (uint64_t)sqlite3_column_int64(s, 2);
    } else {
        err = store_sqlite_err(st, rc, "read configuration");
    }
    store_reset(s);
    return err;
}

/* ---- node-local keys ---------------------------------------------------------------------- */

static int check_local(store_t *st, const char *name)
{
    size_t n = name ? strnlen(name, STORE_LOCAL_KEY_MAX + 1) : 0;
    if (n == 0 || n > STORE_LOCAL_KEY_MAX)
        return store_fail(st, STORE_EKEY, "local key name must be 1..%d bytes",
                          STORE_LOCAL_KEY_MAX);
    return 0;
}

int store_local_set(store_t *st, const char *name, const void *value, size_t len)
{
    st->errmsg[0] = 0;
    int err = check_local(st, name);
    if (err)
        return err;
    if (len > STORE_LOCAL_VALUE_MAX || (len && !value))
        return store_fail(st, STORE_EVALUE, "local value over %d bytes", STORE_LOCAL_VALUE_MAX);
    sqlite3_stmt *s = st->stmt[STMT_LOCAL_SET];
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, len ? value : "", (int)len, SQLITE_STATIC);
    /* autocommit: one durable (synchronous = FULL) transaction */
    return store_step_done(st, s, "save local key");
}

int store_local_set_relaxed(store_t *st, const char *name, const void *value, size_t len)
{
    /* As the applied state (store_apply): durable with the next synchronous commit. */
    int err = store_exec(st, "PRAGMA synchronous = NORMAL", "relax sync");
    if (err)
        return err;
    err = store_local_set(st, name, value, len);
    store_exec(st, "PRAGMA synchronous = FULL", "restore sync");
    return err;
}

int store_local_set_many(store_t *st, const char *const *names, size_t n, const void *value,
                         size_t len)
{
    st->errmsg[0] = 0;
    if (len > STORE_LOCAL_VALUE_MAX || (len && !value))
        return store_fail(st, STORE_EVALUE, "local value over %d bytes", STORE_LOCAL_VALUE_MAX);
    for (size_t i = 0; i < n; i++) {
        int err = check_local(st, names[i]);
        if (err)
            return err;
    }
    int err = store_exec(st, "BEGIN IMMEDIATE", "begin saving local keys");
    sqlite3_stmt *s = st->stmt[STMT_LOCAL_SET];
    for (size_t i = 0; err == 0 && i < n; i++) {
        sqlite3_bind_text(s, 1, names[i], -1, SQLITE_STATIC);
        sqlite3_bind_blob(s, 2, len ? value : "", (int)len, SQLITE_STATIC);
        err = store_step_done(st, s, "save local key");
    }
    if (err == 0)
        err = store_exec(st, "COMMIT", "save local keys"); /* one durable transaction */
    if (err != 0 && !sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return err;
}

int store_local_get(store_t *st, const char *name, void *buf, size_t cap, size_t *len)
{
    st->errmsg[0] = 0;
    int err = check_local(st, name);
    if (err)
        return err;
    sqlite3_stmt *s = st->stmt[STMT_LOCAL_GET];
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(s, 0);
        *len = n;
        if (n > cap)
            err = STORE_ETOOBIG;
        else if (n)
            memcpy(buf, sqlite3_column_blob(s, 0), n);
    } else if (rc == SQLITE_DONE) {
        err = STORE_ENOTFOUND;
    } else {
        err = store_sqlite_err(st, rc, "read local key");
    }
    store_reset(s);
    return err;
}
