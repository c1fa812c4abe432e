/* store_int.h — private to store/: the database schema, the store object and helpers shared by
 * db.c (open, schema, errors), store_log.c (Raft persistence), sm.c (state machine) and snapshot.c.
 *
 * Schema of electd.db (PRAGMA application_id = STORE_APP_ID, PRAGMA user_version = schema
 * version). Single-row tables have id = 1.
 *
 *   table       column        meaning
 *   ident       cluster_id    TEXT: the cluster id the file was created for
 *               node_id       INTEGER: the node id it was created for
 *               created_ms    INTEGER: wall-clock ms at creation (informational)
 *   hard_state  term, vote,   Raft persistent state (Figure 2) + commit index
 *               commit_idx
 *   log         idx           INTEGER PRIMARY KEY (the rowid: appends are sequential)
 *               term, type    entry term and raft_entry_type_t
 *               data          BLOB payload (NULL when empty)
 *   snapshot    idx, term     the current snapshot (idx 0: none)
 *               size          bytes of its file snapshot-<idx>-<term>.db
 *               conf          BLOB: raft_conf encoding of the configuration at idx (or NULL)
 *   sm          applied_idx,  last applied entry: advanced in the same transaction that applies
 *               applied_term
 *               conf_idx,     latest applied configuration (raft_conf encoding) and its index
 *               conf
 *               history_from  the history is complete after this revision (schema 5)
 *   kv          key           BLOB PRIMARY KEY (WITHOUT ROWID: ordered by key for prefix scans)
 *               value         BLOB
 *               create_rev    index of the write that created the key
 *               mod_rev       index of the last write (the CAS revision)
 *               version       writes since creation (1 on creation)
 *               crc           CRC32C of the row (store_kv_crc), checked on every read (schema 4)
 *   epochs      term          INTEGER PRIMARY KEY: the epoch's fencing token
 *               leader        node id that won the term
 *               started_ms    the leader's wall clock when it started the term
 *               idx           log index of the term-start entry            (schema 2)
 *   local       name, value   node-local keys, never replicated            (schema 2)
 *   history     rev           INTEGER PRIMARY KEY: the revision (entry index) of a KV change
 *               op            STORE_CMD_PUT or STORE_CMD_DEL                 (schema 5)
 *               key           BLOB: the key written or deleted
 *               value         BLOB: the value put (NULL for a delete)
 *               crc           CRC32C as store_kv_crc(key, value, op, rev, 0)
 *               Node-local, like the log: never in a snapshot. The newest history_max rows
 *               are kept (history.c); sm.history_from is the revision after which every change
 *               is a row (the newest pruned one, the installed snapshot's index, or the applied
 *               index when the table was created by the migration).
 *   ephemeral   key           BLOB PRIMARY KEY (WITHOUT ROWID): a kv key bound to a member (schema
 * 6) owner         the member's id (!= 0); index ephemeral_owner (owner, key) crc           CRC32C
 * as store_ephemeral_crc(key, owner) A row exists only beside its kv row: an ephemeral PUT writes
 * it, any other PUT or a DEL of the key removes it. In snapshots and backups (ephemeral.c).
 *   elections   name          TEXT PRIMARY KEY (WITHOUT ROWID): a valid election name (schema 3)
 *               holder        member id of the holder, 0 = nobody
 *               token         fencing token of the current tenure (from 1, +1 per tenure)
 *               since_index   log index of the ELECTION_ASSIGN that began the tenure
 *               since_unix_ms the proposer's wall clock then (display only)
 *   election_   name          TEXT PRIMARY KEY (WITHOUT ROWID): a dropped election (schema 3)
 *   tombstones  token         its last token; removed when the name is assigned again (the
 *                             row then carries the sequence on)
 *
 * Schema history: 1 = everything but epochs.idx and local; 2 = + epochs.idx, local;
 * 3 = + elections, election_tombstones; 4 = + kv.crc, computed for existing rows by the
 * migration; 5 = + history, sm.history_from; 6 = current (+ ephemeral).
 *
 * A snapshot file is its own SQLite database (application_id = STORE_SNAP_APP_ID, user_version
 * = its format) with tables kv, epochs, elections, election_tombstones, ephemeral as above
 * (ephemeral is absent from a file written before schema 6: no ephemeral key) and one row
 *   snap(idx, term, conf_idx, conf)
 * i.e. only the replicated state machine, never the log. Format 1 (before elections) has no
 * election tables; it is still installed (as no elections), so a member not yet upgraded can
 * send one. A snapshot with no election and no tombstone is still stamped format 1 (its
 * election tables are empty), which a member not yet upgraded installs. Its kv table carries
 * the crc column too (whatever the format number: a member not yet upgraded copies the columns
 * it names and ignores it); when present it is checked on install, and the installed rows get
 * their checksum computed either way.
 */
#ifndef ELECTD_STORE_INT_H
#define ELECTD_STORE_INT_H

#include <sqlite3.h>
#include <stdarg.h>

#include "store.h"

#define STORE_APP_ID         0x454c4344 /* "ELCD" */
#define STORE_SNAP_APP_ID    0x454c4353 /* "ELCS" */
#define STORE_SNAP_FORMAT    2          /* written; 1 and 2 are installed */
#define STORE_SNAP_FORMAT_V1 1          /* without the election tables */

#define STORE_DB_NAME         "electd.db"
#define STORE_INIT_NAME       "electd.db.init"
#define STORE_SNAP_TMP_NAME   "snapshot.tmp"
#define STORE_SNAP_RECV_NAME  "snapshot.recv"
#define STORE_BACKUP_TMP_NAME "backup.tmp"
#define STORE_CACHE_KIB       512       /* page cache per database (PRAGMA cache_size = -KiB) */
#define STORE_WAL_LIMIT       (4 << 20) /* bytes the WAL is truncated to after a checkpoint */

#define STORE_KV_COLS                                                                              \
    "SELECT kv.key, kv.value, kv.create_rev, kv.mod_rev, kv.version, kv.crc, e.owner, e.crc "      \
    "FROM kv LEFT JOIN ephemeral e ON e.key = kv.key "

/* Prepared statements, prepared once at open and reused. */
#define STORE_STMT_MAP(X)                                                                          \
    X(BEGIN, "BEGIN IMMEDIATE")                                                                    \
    X(COMMIT, "COMMIT")                                                                            \
    X(ROLLBACK, "ROLLBACK")                                                                        \
    X(HS_GET, "SELECT term, vote, commit_idx FROM hard_state WHERE id = 1")                        \
    X(HS_SET, "UPDATE hard_state SET term = ?1, vote = ?2, commit_idx = ?3 WHERE id = 1")          \
    X(LOG_INSERT, "INSERT INTO log(idx, term, type, data) VALUES (?1, ?2, ?3, ?4)")                \
    X(LOG_TRUNCATE, "DELETE FROM log WHERE idx >= ?1")                                             \
    X(LOG_COMPACT, "DELETE FROM log WHERE idx <= ?1")                                              \
    X(LOG_CLEAR, "DELETE FROM log")                                                                \
    X(LOG_LOAD, "SELECT idx, term, type, data FROM log WHERE idx > ?1 ORDER BY idx")               \
    X(LOG_COUNT, "SELECT count(*), coalesce(sum(length(data)), 0) FROM log WHERE idx > ?1")        \
    X(LOG_BOUNDS, "SELECT min(idx), max(idx) FROM log")                                            \
    X(SNAP_GET, "SELECT idx, term, size, conf FROM snapshot WHERE id = 1")                         \
    X(SNAP_SET, "UPDATE snapshot SET idx = ?1, term = ?2, size = ?3, conf = ?4 WHERE id = 1")      \
    X(SM_GET, "SELECT applied_idx, applied_term, conf_idx, conf FROM sm WHERE id = 1")             \
    X(SM_APPLIED, "UPDATE sm SET applied_idx = ?1, applied_term = ?2 WHERE id = 1")                \
    X(SM_CONF, "UPDATE sm SET conf_idx = ?1, conf = ?2 WHERE id = 1")                              \
    X(KV_GET, "SELECT kv.value, kv.create_rev, kv.mod_rev, kv.version, kv.crc, e.owner, e.crc "    \
              "FROM kv LEFT JOIN ephemeral e ON e.key = kv.key WHERE kv.key = ?1")                 \
    X(KV_PUT, "INSERT OR REPLACE INTO kv(key, value, create_rev, mod_rev, version, crc) "          \
              "VALUES (?1, ?2, ?3, ?4, ?5, ?6)")                                                   \
    X(KV_DEL, "DELETE FROM kv WHERE key = ?1")                                                     \
    X(KV_COUNT, "SELECT count(*) FROM kv")                                                         \
    X(EPOCH_CUR, "SELECT term, leader, started_ms, idx FROM epochs ORDER BY term DESC LIMIT 1")    \
    X(EPOCH_ADD, "INSERT OR IGNORE INTO epochs(term, leader, started_ms, idx) "                    \
                 "VALUES (?1, ?2, ?3, ?4)")                                                        \
    X(EPOCH_LIST, "SELECT term, leader, started_ms, idx FROM epochs WHERE term < ?1 "              \
                  "ORDER BY term DESC LIMIT ?2")                                                   \
    X(LIST_GE, STORE_KV_COLS "WHERE kv.key >= ?1 ORDER BY kv.key LIMIT ?3")                        \
    X(LIST_GT, STORE_KV_COLS "WHERE kv.key > ?1 ORDER BY kv.key LIMIT ?3")                         \
    X(LIST_GE_LT, STORE_KV_COLS "WHERE kv.key >= ?1 AND kv.key < ?2 ORDER BY kv.key LIMIT ?3")     \
    X(LIST_GT_LT, STORE_KV_COLS "WHERE kv.key > ?1 AND kv.key < ?2 ORDER BY kv.key LIMIT ?3")      \
    X(EPH_PUT, "INSERT OR REPLACE INTO ephemeral(key, owner, crc) VALUES (?1, ?2, ?3)")            \
    X(EPH_DEL, "DELETE FROM ephemeral WHERE key = ?1")                                             \
    X(EPH_OWNERS, "SELECT DISTINCT owner FROM ephemeral ORDER BY owner LIMIT ?1")                  \
    X(EPH_LIST, STORE_KV_COLS "WHERE e.owner = ?1 ORDER BY kv.key LIMIT ?2")                       \
    X(EL_GET, "SELECT holder, token, since_index, since_unix_ms FROM elections WHERE name = ?1")   \
    X(EL_PUT, "INSERT OR REPLACE INTO elections(name, holder, token, since_index, since_unix_ms) " \
              "VALUES (?1, ?2, ?3, ?4, ?5)")                                                       \
    X(EL_DEL, "DELETE FROM elections WHERE name = ?1")                                             \
    X(EL_LIST, "SELECT name, holder, token, since_index, since_unix_ms FROM elections "            \
               "WHERE name > ?1 AND name >= ?2 AND name < ?3 ORDER BY name LIMIT ?4")              \
    X(TOMB_GET, "SELECT token FROM election_tombstones WHERE name = ?1")                           \
    X(TOMB_PUT, "INSERT OR REPLACE INTO election_tombstones(name, token) VALUES (?1, ?2)")         \
    X(TOMB_DEL, "DELETE FROM election_tombstones WHERE name = ?1")                                 \
    X(HIST_ADD, "INSERT INTO history(rev, op, key, value, crc) VALUES (?1, ?2, ?3, ?4, ?5)")       \
    X(HIST_KEY, "SELECT rev, op, key, value, crc FROM history WHERE rev > ?1 AND key = ?2 "        \
                "ORDER BY rev LIMIT ?4")                                                           \
    X(HIST_RANGE, "SELECT rev, op, key, value, crc FROM history WHERE rev > ?1 AND key >= ?2 "     \
                  "AND (?3 IS NULL OR key < ?3) ORDER BY rev LIMIT ?4")                            \
    X(HIST_NTH, "SELECT rev FROM history ORDER BY rev LIMIT 1 OFFSET ?1")                          \
    X(HIST_PRUNE, "DELETE FROM history WHERE rev <= ?1")                                           \
    X(HIST_COUNT, "SELECT count(*) FROM history")                                                  \
    X(HIST_FROM, "SELECT history_from FROM sm WHERE id = 1")                                       \
    X(HIST_FROM_SET, "UPDATE sm SET history_from = ?1 WHERE id = 1")                               \
    X(LOCAL_GET, "SELECT value FROM local WHERE name = ?1")                                        \
    X(LOCAL_SET, "INSERT OR REPLACE INTO local(name, value) VALUES (?1, ?2)")                      \
    X(PAGES, "SELECT page_count * page_size - freelist_count * page_size "                         \
             "FROM pragma_page_count(), pragma_page_size(), pragma_freelist_count()")

enum {
#define STORE_STMT_ENUM(name, sql) STMT_##name,
    STORE_STMT_MAP(STORE_STMT_ENUM)
#undef STORE_STMT_ENUM
        STMT_COUNT
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[STMT_COUNT];
    char *dir;
    char path[STORE_PATH_MAX];
    char errmsg[STORE_ERRMSG_MAX];

    /* Committed state mirrored in memory; changed only after a successful COMMIT. */
    uint64_t last_index; /* last log index, or the snapshot index if the log is empty */
    uint64_t applied_index;
    uint64_t applied_term;
    bool hs_known; /* hs_term/hs_vote mirror the stored hard state (after boot load) */
    uint64_t hs_term;
    uint64_t hs_vote;
    raft_snapshot_meta_t snap; /* current snapshot; snap.index == 0: none */
    char snap_path[STORE_PATH_MAX];
    int snap_fd; /* open on the current snapshot file for snapshot_read, or -1 */

    /* the change history (history.c); count and from mirror the committed table */
    uint64_t history_max;   /* rows kept at most */
    uint64_t history_count; /* rows held */
    uint64_t history_from;  /* every change after this revision is a row */

    /* rows refused because they failed their checksum, and the last one's key */
    uint64_t corrupt_values;
    char corrupt_key[STORE_KEY_MAX];
    size_t corrupt_key_len;

    /* ephemeral.c: moves whenever the ephemeral table may have changed (also by a write
     * later rolled back), so that a reader can keep what it read until it moves */
    uint64_t eph_gen;

    /* boot data handed out by store_boot_load */
    raft_entry_t *boot_entries;
    uint8_t *boot_data;
};

/* db.c */
int store_sqlite_err(store_t *st, int rc, const char *what); /* maps + records detail */
int store_fail(store_t *st, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int store_step_done(store_t *st, sqlite3_stmt *s, const char *what); /* step expecting DONE */
int store_tx_begin(store_t *st);
int store_tx_commit(store_t *st);
void store_tx_rollback(store_t *st);
int store_exec(store_t *st, const char *sql, const char *what);
void store_reset(sqlite3_stmt *s);
int store_fsync_path(const char *path, bool dir);
int store_check_error(const char *quick_check_result); /* ECORRUPT, or EIO if I/O failed */
int store_join(char *out, size_t cap, const char *dir, const char *name);

/* Registers the SQL function electd_kv_crc(key, value, create_rev, mod_rev, version) on db:
 * store_kv_crc of a row, for the migration and for copies between databases. */
int store_sql_functions(sqlite3 *db);

/* cmd.c */
int store_key_check(const char *key, size_t len); /* STORE_EKEY unless a valid KV key */

/* sm.c */
/* The smallest byte string greater than every string starting with prefix[0..len): prefix with
 * its last byte below 0xff incremented and the rest dropped, into out (len bytes). Returns its
 * length (0: none). */
size_t store_prefix_end(const char *prefix, size_t len, uint8_t *out);
/* The checksum of a KV row: CRC32C (raft_crc32c) over the key's and the value's lengths and
 * bytes and the three revisions, each number 8 bytes little-endian. */
uint32_t store_kv_crc(const void *key, size_t key_len, const void *value, size_t value_len,
                      uint64_t create_rev, uint64_t mod_rev, uint64_t version);
/* Counts a row that failed its checksum, remembers its key and fails with STORE_ECHECKSUM and a
 * message naming it; what: where it was met ("read", "snapshot", ...). */
int store_corrupt(store_t *st, const void *key, size_t key_len, const char *what);
/* Copies a key and a value into new buffers, each NUL-terminated after its bytes (key or value
 * may be NULL when its length is 0). -1 when out of memory: *key_out and *value_out are then
 * whatever was allocated (NULL or a buffer), for the caller's usual clean-up. */
int store_copy_pair(const void *key, size_t key_len, const void *value, size_t value_len,
                    char **key_out, uint8_t **value_out);
/* Copies the row s is on into *kv (columns from col0 as STORE_KV_COLS after the key). */
int store_kv_fill(store_t *st, sqlite3_stmt *s, int col0, const void *key, size_t key_len,
                  store_kv_t *kv);
/* Steps s (STORE_KV_COLS rows, bound to return limit + 1) into a malloc'd array as
 * store_kv_list does, and resets it. */
int store_kv_rows(store_t *st, sqlite3_stmt *s, size_t limit, store_kv_t **items, size_t *n,
                  bool *more);
/* The first row of table (of an attached schema) whose crc column differs from the SQL
 * expression crc_sql over its columns: 0 if none, else store_corrupt()'s STORE_ECHECKSUM. */
int store_crc_verify(store_t *st, const char *table, const char *crc_sql, const char *what);
/* The first row of table (of an attached schema) whose crc column does not match its content:
 * 0 if none; else store_corrupt()'s STORE_ECHECKSUM. what as for store_corrupt. */
int store_kv_verify(store_t *st, const char *table, const char *what);

/* ephemeral.c */
/* The checksum of an ephemeral row: store_kv_crc(key, empty value, owner, 0, 0). */
uint32_t store_ephemeral_crc(const void *key, size_t key_len, uint64_t owner);
/* Inside store_apply's transaction, after a PUT or DEL of cmd->key applied: binds the key to
 * cmd->owner (an ephemeral PUT) or unbinds it. */
int store_ephemeral_apply(store_t *st, const store_cmd_t *cmd);
/* The first row of table (an attached schema's ephemeral) whose crc does not match: 0 if none,
 * else store_corrupt()'s STORE_ECHECKSUM. */
int store_ephemeral_verify(store_t *st, const char *table, const char *what);

/* election.c */
/* Reads election name[0..len) (a valid name); *found false (and *out zeroed) when absent. */
int store_election_lookup(store_t *st, const char *name, size_t len, store_election_t *out,
                          bool *found);
/* Applies a decoded ELECTION_ASSIGN / ELECTION_DROP inside store_apply's transaction. */
int store_election_apply(store_t *st, const raft_entry_t *e, const store_cmd_t *cmd,
                         store_result_t *r);

/* history.c */
/* Reads history_from and the row count; history_max as store_opts_t's (0: the default). */
int store_history_load(store_t *st, uint64_t history_max);
/* Inside store_apply's transaction: records an applied PUT/DEL at revision rev and counts it in
 * *count (the caller's copy of history_count until the commit). */
int store_history_add(store_t *st, uint64_t rev, const store_cmd_t *cmd, uint64_t *count);
/* Inside the same transaction, after the batch's changes: drops the oldest rows beyond
 * history_max and moves history_from past them; *count and *from are the caller's copies. */
int store_history_prune(store_t *st, uint64_t *count, uint64_t *from);

/* snapshot.c */
int store_snapshot_load_meta(store_t *st);     /* st->snap from the snapshot table */
void store_snapshot_cleanup(store_t *st);      /* remove snapshot files but the current */
void store_snapshot_cleanup_open(store_t *st); /* that, and leftover temporary files */
int store_snapshot_chunk(store_t *st, const raft_snapshot_chunk_t *c);         /* before the tx */
int store_snapshot_attach_staged(store_t *st, const raft_snapshot_chunk_t *c); /* before tx */
int store_snapshot_install_tx(store_t *st, const raft_snapshot_chunk_t *c);    /* inside the tx */
void store_snapshot_detach_staged(store_t *st);                                /* after the tx */
void store_snapshot_installed(store_t *st, const raft_snapshot_chunk_t *c);    /* after commit */
void store_snapshot_close_fd(store_t *st);
int store_attach(store_t *st, const char *path, const char *as); /* ATTACH path AS as */
void store_detach(store_t *st, const char *as);
/* The first column of the first row of sql (a pragma or a query): into *v and, if text, a copy
 * as text into text[0..cap). Returns a SQLite code. */
int store_query_value(store_t *st, const char *sql, int64_t *v, char *text, size_t cap);
/* Writes the state machine into the new SQLite file tmp, fsyncs and renames it to final;
 * *size its bytes. Rows are checked against their checksums (STORE_ECHECKSUM). */
int store_snapshot_write(store_t *st, const char *tmp, const char *final, uint64_t *size);
int store_conf_blob(store_t *st, const raft_conf_t *c, uint8_t **blob, size_t *len);

#endif
