/* store.h — the whole public interface of electd's durable storage: one SQLite database per
 * node (<data-dir>/electd.db) holding the Raft hard state, the Raft log, the current snapshot's
 * metadata and the replicated state machine (KV with revisions, epochs/fencing, named
 * elections with their fencing tokens, latest configuration), plus a few node-local keys.
 * Snapshot data lives beside it as one SQLite file.
 *
 * Threading: a store_t is used by one thread at a time (the daemon's loop thread).
 *
 * Errors: every int-returning function returns 0 or a negative STORE_E* code (store_strerror).
 * After a failure, store_errmsg(st) says what failed in detail. A failed write leaves the
 * previously committed state intact (it is one SQLite transaction, rolled back), and the
 * in-memory view of the store is unchanged, so the call may be retried.
 *
 * Ownership: pointers given to the store are borrowed for the duration of the call. Memory the
 * store hands out is described at each function (boot entries: owned by the store until
 * store_boot_free; KV items: owned by the caller, freed with store_kv_clear /
 * store_kv_list_free; election lists: store_election_list_free).
 */
#ifndef ELECTD_STORE_H
#define ELECTD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

/* ---- limits ------------------------------------------------------------------------- */

#define STORE_KEY_MAX         512          /* bytes of a KV key (1..STORE_KEY_MAX, no NUL) */
#define STORE_VALUE_MAX       (64u << 10)  /* bytes of a KV value */
#define STORE_CLUSTER_ID_MAX  128          /* bytes of the cluster id string, NUL excluded */
#define STORE_LIST_MAX        1000         /* items one store_kv_list call returns at most */
#define STORE_EPOCHS_MAX      1000         /* epochs one store_epochs_list call returns */
#define STORE_LOCAL_KEY_MAX   64           /* bytes of a node-local key name */
#define STORE_LOCAL_VALUE_MAX 4096         /* bytes of a node-local value */
#define STORE_ERRMSG_MAX      512          /* bytes of a detailed error message, NUL included */
#define STORE_CHUNK_MAX       (4u << 20)   /* bytes of one streamed snapshot chunk */
#define STORE_SNAPSHOT_MAX    (1ull << 32) /* bytes of a whole received snapshot (4 GiB) */
#define STORE_PATH_MAX        4096         /* bytes of a file path built under data_dir */
#define STORE_HISTORY_DEFAULT 10000        /* changes the history keeps (store_opts_t) */

/* The current schema version of electd.db (PRAGMA user_version). Older files are migrated on
 * open; newer ones are refused. */
#define STORE_SCHEMA_VERSION 6

/* ---- errors ------------------------------------------------------------------------- */

#define STORE_ERRNO_MAP(X)                                                                         \
    X(NOMEM, -1, "out of memory")                                                                  \
    X(INVAL, -2, "invalid argument")                                                               \
    X(IO, -3, "disk I/O error")                                                                    \
    X(FULL, -4, "disk full")                                                                       \
    X(CORRUPT, -5, "database file is corrupt")                                                     \
    X(NOTDB, -6, "file is not a SQLite database")                                                  \
    X(FOREIGN, -7, "SQLite database was not created by electd")                                    \
    X(CLUSTER, -8, "database belongs to another cluster")                                          \
    X(NODE, -9, "database belongs to another node")                                                \
    X(SCHEMA, -10, "database schema is newer than this electd supports")                           \
    X(BUSY, -11, "database is in use by another process")                                          \
    X(CANTOPEN, -12, "cannot open or create the database file")                                    \
    X(READONLY, -13, "database is read-only")                                                      \
    X(NOTFOUND, -14, "not found")                                                                  \
    X(KEY, -15, "key is empty, too long or contains a NUL byte")                                   \
    X(VALUE, -16, "value is too large")                                                            \
    X(CMD, -17, "malformed command")                                                               \
    X(SNAPSHOT, -18, "snapshot is invalid or missing")                                             \
    X(TOOBIG, -19, "too large")                                                                    \
    X(RAFT, -20, "Raft payload does not decode")                                                   \
    X(INTERNAL, -21, "unexpected database error")                                                  \
    X(NAME, -22, "election name is not 1-63 letters, digits, '.', '_' or '-'")                     \
    X(CHECKSUM, -23, "a stored value fails its checksum")

enum {
#define STORE_ERR_ENUM(name, code, text) STORE_E##name = code,
    STORE_ERRNO_MAP(STORE_ERR_ENUM)
#undef STORE_ERR_ENUM
};

/* Text for a STORE_E* code (never NULL; "unknown error" for anything else). */
const char *store_strerror(int err);

/* ---- open / close -------------------------------------------------------------------- */

typedef struct store store_t; /* opaque */

typedef struct store_opts {
    const char *cluster_id;   /* required, 1..STORE_CLUSTER_ID_MAX bytes: stamped in a new file,
                                 checked against an existing one */
    uint64_t node_id;         /* required, != 0: stamped / checked likewise */
    bool skip_check;          /* skip PRAGMA quick_check on open (a full page scan; on by
                                 default so that a corrupt file is refused at start) */
    uint32_t busy_timeout_ms; /* wait this long for a lock held by another process (0: 1000) */
    const char *vfs;          /* SQLite VFS name; NULL = default. For fault-injection tests. */
    uint64_t history_max;     /* changes the history keeps (0: STORE_HISTORY_DEFAULT) */
} store_opts_t;

/* Opens <data_dir>/electd.db, creating data_dir (one level) and the database if they do not
 * exist. A new database is built under a temporary name and renamed into place only when fully
 * initialised and stamped with opts->cluster_id and opts->node_id, so electd.db never exists
 * half-made. An existing one is checked and refused — never re-initialised — when it:
 *   is not a SQLite file or is empty            STORE_ENOTDB
 *   is SQLite but not electd's                  STORE_EFOREIGN
 *   is corrupt (header, schema or quick_check)  STORE_ECORRUPT
 *   has a newer schema version                  STORE_ESCHEMA
 *   is stamped with another cluster / node id   STORE_ECLUSTER / STORE_ENODE
 *   is locked by another process                STORE_EBUSY
 * An older schema is migrated in one transaction. The database stays exclusively locked by
 * this process until store_close. Leftover temporary files (a snapshot being built or
 * received, an unfinished init) and snapshot files other than the current one are removed.
 * On success *out is set. On failure *out is NULL and, if errbuf is not NULL, errbuf (of
 * errlen bytes) receives a message naming the file, the problem and what to do. */
int store_open(store_t **out, const char *data_dir, const store_opts_t *opts, char *errbuf,
               size_t errlen);

/* Closes the database (checkpointing the WAL) and frees st. NULL is a no-op. Any boot data
 * not yet released is freed too. */
void store_close(store_t *st);

/* Detailed message about the last failure of a call on st ("" if none). Borrowed: valid
 * until the next call on st. */
const char *store_errmsg(const store_t *st);

/* Path of the database file (borrowed, valid until store_close). */
const char *store_path(const store_t *st);

/* Bytes the database file occupies (pages in use × page size, WAL excluded). */
int store_size_bytes(store_t *st, uint64_t *bytes);

/* ---- Raft persistence ------------------------------------------------------------------ */

/* Fills *boot with everything raft_open() needs from disk: hard state, current snapshot
 * metadata (index 0 = none) including its configuration, and every log entry after the
 * snapshot index (consecutive). boot->conf is left zeroed: the daemon sets it for a brand-new
 * cluster. boot->entries and their data are owned by st until store_boot_free(st, boot) or
 * store_close. Errors: STORE_ECORRUPT (log not consecutive, undecodable snapshot conf),
 * STORE_ENOMEM, I/O errors. */
int store_boot_load(store_t *st, raft_boot_t *boot);
void store_boot_free(store_t *st, raft_boot_t *boot);

/* A raft_storage_t whose snapshot_read reads the current snapshot file (the bytes a leader
 * streams to followers). ctx is st; valid until store_close. snapshot_read returns
 * STORE_ESNAPSHOT when asked for an index that is not the current snapshot's. */
void store_raft_storage(store_t *st, raft_storage_t *out);

/* Persists the persist-part of a ready batch durably (fsync) in ONE SQLite transaction:
 *  1. rd->hs if rd->hs_changed;
 *  2. rd->chunk: its bytes are written at chunk->offset of the staging file
 *     <data_dir>/snapshot.recv (offset 0 truncates it; offset beyond the staged size, a chunk
 *     over STORE_CHUNK_MAX or a snapshot over STORE_SNAPSHOT_MAX or over meta.size is
 *     STORE_ETOOBIG/STORE_EINVAL) and fsynced. When chunk->last, the staged file is checked
 *     (size, electd snapshot format, quick_check, index/term match chunk->meta), becomes the
 *     current snapshot file, and inside the transaction replaces the state machine (KV,
 *     epochs, elections and their tombstones, latest conf), empties the whole log, records
 *     chunk->meta as the snapshot metadata and sets the applied index to meta.index;
 *  3. rd->entries: if entries[0].index <= the last index, the log from there on is deleted
 *     first (a conflicting suffix); then they are appended. entries[0].index must be at most
 *     last index + 1 and the entries consecutive (STORE_EINVAL otherwise).
 * Returns only after the commit is on disk: the daemon may then send rd's messages — except
 * for a batch whose only change is a higher commit index (same term and vote, no entries, no
 * chunk), which is committed without fsync: it becomes durable with the next synchronous
 * commit, and Raft never relies on a durable commit index. On error
 * nothing of the batch is persisted (a failed install leaves the old state machine, log and
 * snapshot in place). Errors: STORE_EINVAL, STORE_ETOOBIG, STORE_ESNAPSHOT, STORE_EFULL,
 * STORE_EIO, STORE_ENOMEM, ... */
int store_save_ready(store_t *st, const raft_ready_t *rd);

/* Deletes log entries with index <= upto (after a snapshot covering them). upto must not
 * exceed the current snapshot index (STORE_EINVAL): entries not covered by a snapshot are
 * never dropped. */
int store_log_compact(store_t *st, uint64_t upto);

/* Last log index held (the snapshot index if the log is empty), and the first (0 if empty). */
uint64_t store_log_last_index(const store_t *st);
uint64_t store_log_first_index(store_t *st);

/* ---- state machine commands (the data of NORMAL entries) --------------------------------
 *
 * Little-endian. Every command starts with magic 0xE5, a format version and an op. Format 1 is
 * the KV command without an election (what electd wrote before elections, byte for byte; the
 * encoder still writes it when cond->election is NULL). Format 2 adds the election name to a
 * fenced KV command, and carries the election commands. Both are decoded.
 *
 * PUT / DEL, format 1: exactly STORE_CMD_HEADER + key_len + value_len bytes
 *   offset size field
 *   0      1    magic 0xE5
 *   1      1    format version 1
 *   2      1    op: 1 PUT, 2 DEL
 *   3      1    flags: 0x01 if_match present; other bits must be 0
 *   4      8    if_match: required mod revision (0 = the key must not exist)
 *   12     8    fence: fencing token (0 = unfenced)
 *   20     2    key length (1..STORE_KEY_MAX)
 *   22     4    value length (0..STORE_VALUE_MAX; 0 for DEL)
 *   26     k    key bytes (no NUL)
 *   26+k   v    value bytes
 *
 * PUT / DEL fenced by an election, format 2: STORE_CMD_HEADER + 1 + e + key_len + value_len
 *   0      26   as format 1, with version 2 and fence != 0
 *   26     1    election name length e (1..STORE_ELECTION_NAME_MAX)
 *   27     e    election name (store_election_name_valid)
 *   27+e   k    key bytes
 *   27+e+k v    value bytes
 *
 * An ephemeral PUT (schema 6) is a PUT of format 1 or 2 with flag 0x02 set in byte 3 and the
 * owner's member id (8 bytes, != 0) right after the 26-byte header, before the election name
 * (format 2) or the key (format 1): STORE_CMD_EPHEMERAL_EXTRA more bytes. A DEL never has the
 * flag. A member built before ephemeral keys rejects the unknown flag bit (INVALID), so it
 * never applies one as a plain PUT; its state then lacks the key (docs/wire-format.md).
 *
 * ELECTION_ASSIGN / ELECTION_DROP, format 2: exactly STORE_CMD_ELECTION_HEADER + n bytes
 *   0      1    magic 0xE5
 *   1      1    format version 2
 *   2      1    op: 3 ELECTION_ASSIGN, 4 ELECTION_DROP
 *   3      1    flags: 0 (none defined)
 *   4      8    expect_token: the election's current token (0 = it must not exist)
 *   12     8    holder: member id, 0 = nobody (ASSIGN); 0 (DROP)
 *   20     8    unix_ms: the proposer's wall clock, for display (ASSIGN); 0 (DROP)
 *   28     1    election name length n (1..STORE_ELECTION_NAME_MAX)
 *   29     n    election name
 *
 * Election names (and the prefix of a listing) are bytes of the node-name alphabet: 1..63
 * letters, digits, '.', '_' or '-', the first a letter or a digit.
 */
#define STORE_ELECTION_NAME_MAX   63 /* bytes of an election name, NUL excluded */
#define STORE_CMD_HEADER          26 /* bytes of a KV command before its key (format 1) */
#define STORE_CMD_ELECTION_HEADER 29 /* bytes of an election command before its name */
#define STORE_CMD_EPHEMERAL_EXTRA 8  /* bytes an ephemeral PUT adds: the owner's id */
#define STORE_CMD_MAX                                                                              \
    (STORE_CMD_HEADER + STORE_CMD_EPHEMERAL_EXTRA + 1 + STORE_ELECTION_NAME_MAX + STORE_KEY_MAX +  \
     STORE_VALUE_MAX)
#define STORE_CMD_ELECTION_MAX (STORE_CMD_ELECTION_HEADER + STORE_ELECTION_NAME_MAX)

enum {
    STORE_CMD_PUT = 1,
    STORE_CMD_DEL = 2,
    STORE_CMD_ELECTION_ASSIGN = 3,
    STORE_CMD_ELECTION_DROP = 4,
};

/* Conditions a write may carry. */
typedef struct store_cond {
    bool has_if_match;
    uint64_t if_match;    /* the key's mod revision must equal this (0: key must be absent) */
    uint64_t fence;       /* fencing token; 0 = unfenced */
    const char *election; /* NULL: the fence is the default election's epoch (Raft term).
                             Else the NUL-terminated name of the election whose token the
                             fence is (fence must then be != 0). Borrowed for the call. */
} store_cond_t;

/* A decoded command. Pointers point into the decoded buffer and are not NUL-terminated. */
typedef struct store_cmd {
    uint8_t op;        /* STORE_CMD_* */
    store_cond_t cond; /* PUT/DEL; cond.election is always NULL here: see name */
    const char *key;   /* PUT/DEL */
    size_t key_len;
    const uint8_t *value; /* PUT; NULL when value_len == 0 */
    size_t value_len;
    uint64_t owner;   /* PUT: the member an ephemeral key is bound to; 0 = not ephemeral */
    const char *name; /* the election: of the fence (PUT/DEL, NULL if none) or the command's */
    size_t name_len;
    uint64_t expect_token; /* ELECTION_ASSIGN / ELECTION_DROP */
    uint64_t holder;       /* ELECTION_ASSIGN */
    uint64_t unix_ms;      /* ELECTION_ASSIGN */
} store_cmd_t;

/* True when name[0..len) is a valid election name (see above). */
bool store_election_name_valid(const char *name, size_t len);

/* Encode a command into buf[0..cap) and set *len. cond may be NULL (unconditional).
 * Errors: STORE_EKEY (empty, over STORE_KEY_MAX, or containing NUL), STORE_EVALUE (over
 * STORE_VALUE_MAX), STORE_ENAME (cond->election not a valid election name), STORE_EINVAL
 * (cond->election with fence 0), STORE_ETOOBIG (cap too small; STORE_CMD_MAX always
 * suffices). */
int store_cmd_encode_put(const char *key, size_t key_len, const void *value, size_t value_len,
                         const store_cond_t *cond, uint8_t *buf, size_t cap, size_t *len);
int store_cmd_encode_del(const char *key, size_t key_len, const store_cond_t *cond, uint8_t *buf,
                         size_t cap, size_t *len);
/* An ephemeral PUT: the key is bound to member owner (!= 0: STORE_EINVAL) until a later PUT
 * or DEL of it; see store_apply. Errors as store_cmd_encode_put. */
int store_cmd_encode_put_ephemeral(const char *key, size_t key_len, const void *value,
                                   size_t value_len, uint64_t owner, const store_cond_t *cond,
                                   uint8_t *buf, size_t cap, size_t *len);

/* Election commands (the leader proposes them; see store_apply for their effect). name is
 * NUL-terminated. Errors: STORE_ENAME, STORE_ETOOBIG (cap too small; STORE_CMD_ELECTION_MAX
 * always suffices). */
int store_cmd_encode_election_assign(const char *name, uint64_t holder, uint64_t expect_token,
                                     uint64_t unix_ms, uint8_t *buf, size_t cap, size_t *len);
int store_cmd_encode_election_drop(const char *name, uint64_t expect_token, uint8_t *buf,
                                   size_t cap, size_t *len);

/* Decodes untrusted bytes; never reads outside buf[0..len). Accepts exactly the canonical
 * encodings above. Errors: STORE_ECMD, STORE_EKEY, STORE_EVALUE, STORE_ENAME. */
int store_cmd_decode(const uint8_t *buf, size_t len, store_cmd_t *cmd);

/* ---- applying committed entries ----------------------------------------------------------- */

typedef enum store_status {
    STORE_APPLIED_OK = 0,        /* applied (NORMAL: the write happened) */
    STORE_APPLIED_SKIPPED = 1,   /* index <= applied index: applied before, nothing done */
    STORE_APPLIED_CONFLICT = 2,  /* If-Match did not match the key's mod revision */
    STORE_APPLIED_FENCED = 3,    /* fencing token is not the current epoch's term (or, with an
                                    election, that election's current token) */
    STORE_APPLIED_NOT_FOUND = 4, /* DEL of an absent key, ELECTION_DROP of an absent election */
    STORE_APPLIED_INVALID = 5,   /* payload did not decode (see result.err) */
    STORE_APPLIED_STALE = 6,     /* election command: expect_token is not the current token */
} store_status_t;

const char *store_status_name(store_status_t s);

/* What applying one committed entry did. Every non-SKIPPED outcome is a deterministic function
 * of the log, so all nodes reach the same one. Fields by outcome:
 *   OK, NORMAL PUT: revision = the write's revision (= the entry index) = mod_revision;
 *                   create_revision, version of the key after the write
 *   OK, NORMAL DEL: revision = entry index; create_revision/version of the deleted key
 *   OK, NOOP:       epoch = the new epoch's term (= entry term), leader = its leader
 *   OK, CONF:       nothing more (store_conf_get returns it)
 *   OK, ELECTION_ASSIGN: token = the election's new token, holder = its new holder
 *   OK, ELECTION_DROP:   token = the dropped election's last token, holder = its last holder
 *   CONFLICT:       mod_revision = the key's current mod revision (0 = absent)
 *   FENCED:         epoch = the token the fence was checked against: the current epoch's
 *                   term, or for a write naming an election that election's current token —
 *                   0 when the election does not exist (tokens start at 1)
 *   NOT_FOUND:      also ELECTION_DROP of an election that does not exist
 *   STALE:          token = the election's current token (0 = it does not exist),
 *                   holder = its current holder
 *   INVALID:        err = STORE_ECMD / STORE_EKEY / STORE_EVALUE / STORE_ENAME / STORE_ERAFT */
typedef struct store_result {
    uint64_t index;
    uint8_t type;   /* raft_entry_type_t of the entry */
    uint8_t status; /* store_status_t */
    uint8_t op;     /* NORMAL: STORE_CMD_PUT / STORE_CMD_DEL once decoded, else 0 */
    int err;
    uint64_t revision;
    uint64_t create_revision;
    uint64_t mod_revision;
    uint64_t version;
    uint64_t epoch;
    uint64_t leader;
    uint64_t token;
    uint64_t holder;
} store_result_t;

/* Applies committed[0..n) in order, in ONE transaction that also advances the applied index to
 * the last entry's, so a crash applies all of them or none. Entries with index <= the applied
 * index are SKIPPED (re-delivery after a restart is harmless); the others must follow the
 * applied index consecutively (STORE_EINVAL otherwise). NORMAL entries are KV commands
 * (store_cmd_*): the fencing token is checked first (0 passes; without an election anything but
 * the current epoch's term is FENCED; with one, anything but that election's current token, an
 * election nobody holds and an election that does not exist are FENCED), then If-Match, then
 * the write. A PUT with an owner (ephemeral) binds the key to that member, any other PUT or a
 * DEL unbinds it (store_ephemeral_*). ELECTION_ASSIGN(name, holder, expect_token, unix_ms): unless
 * expect_token equals the election's current token (0 when it does not exist) it is STALE and
 * changes nothing; else the election is held by holder (0: nobody) with token = 1 + the highest
 * token the name has ever had (also across a drop), since = (entry index, unix_ms). Every accepted
 * ASSIGN is a new tenure with a new token, even to the same holder. ELECTION_DROP(name,
 * expect_token): NOT_FOUND if it does not exist, STALE as above, else the election is deleted
 * and its last token kept (a tombstone) so that re-adding the name continues the sequence.
 * NOOP entries are term starts (raft_term_start): they open a new epoch (entry term, leader,
 * stamp as wall ms), recorded in the leadership history. CONF entries become the latest
 * configuration. A payload that does not decode yields INVALID, never an error. results (may be
 * NULL) receives n results, one per entry. Errors (nothing applied): STORE_EINVAL, STORE_EFULL,
 * STORE_EIO, STORE_ENOMEM, ... The commit is ordered after every earlier store_save_ready in the
 * WAL but is not itself fsynced: a power loss can only lose a suffix of applies, which Raft
 * re-delivers from the durable log and commit index (see docs/storage.md). */
int store_apply(store_t *st, const raft_entry_t *committed, size_t n, store_result_t *results);

uint64_t store_applied_index(const store_t *st);
uint64_t store_applied_term(const store_t *st);

/* ---- reads of the state machine ------------------------------------------------------------ */

typedef struct store_kv {
    char *key; /* key_len bytes + a NUL terminator */
    size_t key_len;
    uint8_t *value; /* value_len bytes + a NUL terminator (for convenience) */
    size_t value_len;
    uint64_t create_revision;
    uint64_t mod_revision;
    uint64_t version; /* writes since the key was (re)created, 1 on creation */
    uint64_t owner;   /* the member an ephemeral key is bound to; 0 = not ephemeral */
} store_kv_t;

/* Reads one key at the applied index. On success *kv owns malloc'd copies: release with
 * store_kv_clear. Every row read is checked against the CRC32C stored with it (key, value,
 * revisions): a row that fails is never handed out, the call fails with STORE_ECHECKSUM and
 * store_corrupt_key() names the row. Errors: STORE_ENOTFOUND, STORE_EKEY, STORE_ECHECKSUM, ... */
int store_kv_get(store_t *st, const char *key, size_t key_len, store_kv_t *kv);
void store_kv_clear(store_kv_t *kv);

/* Lists keys starting with prefix (prefix_len 0: all) in byte order, strictly after
 * `after` (NULL/0: from the start; pass the last key of a page to get the next page), at most
 * limit items (1..STORE_LIST_MAX; 0 means STORE_LIST_MAX). *items is a malloc'd array of *n
 * items (NULL when 0), released with store_kv_list_free; *more (may be NULL) says whether
 * more keys match. A row that fails its checksum fails the whole call with STORE_ECHECKSUM, as
 * store_kv_get. */
int store_kv_list(store_t *st, const char *prefix, size_t prefix_len, const char *after,
                  size_t after_len, size_t limit, store_kv_t **items, size_t *n, bool *more);
void store_kv_list_free(store_kv_t *items, size_t n);

/* Rows refused so far because they failed their checksum (reads, snapshots, backups), and
 * the key of the last one (key_len bytes, not NUL-terminated; NULL before any). */
uint64_t store_corrupt_values(const store_t *st);
const char *store_corrupt_key(const store_t *st, size_t *len);

/* Number of keys in the state machine. */
int store_kv_count(store_t *st, uint64_t *count);

/* One row of the leadership history. */
typedef struct store_epoch {
    uint64_t term;       /* the fencing token of this epoch */
    uint64_t leader;     /* node id that won the term */
    uint64_t started_ms; /* the leader's wall clock when it started the term (ms) */
    uint64_t index;      /* log index of the term-start entry */
} store_epoch_t;

/* The current epoch (the newest applied term start). Errors: STORE_ENOTFOUND if none yet. */
int store_epoch_current(store_t *st, store_epoch_t *out);

/* Leadership history, newest first: epochs with term < before_term (0: from the newest), at
 * most cap (<= STORE_EPOCHS_MAX) rows into out[]; *n = rows written. */
int store_epochs_list(store_t *st, uint64_t before_term, store_epoch_t *out, size_t cap, size_t *n);

/* The latest applied configuration (from a CONF entry or an installed snapshot) and its index.
 * Errors: STORE_ENOTFOUND when none has been applied. */
int store_conf_get(store_t *st, raft_conf_t *conf, uint64_t *index);

/* One named election as the state machine holds it at the applied index. Plain data. */
typedef struct store_election {
    char name[STORE_ELECTION_NAME_MAX + 1]; /* NUL-terminated */
    uint64_t holder;                        /* member id of the holder; 0 = nobody holds it */
    uint64_t token;         /* fencing token of the current tenure (from 1; never reused) */
    uint64_t since_index;   /* log index of the ELECTION_ASSIGN that began the tenure */
    uint64_t since_unix_ms; /* the proposer's wall clock then (for display only) */
} store_election_t;

/* Reads election name (NUL-terminated) into *out. Errors: STORE_ENAME (not a valid name),
 * STORE_ENOTFOUND (no such election, including a dropped one), I/O errors. */
int store_election_get(store_t *st, const char *name, store_election_t *out);

/* A page of elections, owned by the caller: release with store_election_list_free. */
typedef struct store_election_list {
    store_election_t *items; /* malloc'd, n items in name (byte) order; NULL when n == 0 */
    size_t n;
    bool more; /* more elections match after the last item */
} store_election_list_t;

/* Lists elections whose names start with prefix (NULL or "": all), strictly after `after`
 * (NULL or "": from the start; pass the last name of a page to get the next page), at most
 * limit (1..STORE_LIST_MAX; 0 means STORE_LIST_MAX). prefix and after are NUL-terminated, at
 * most STORE_ELECTION_NAME_MAX bytes (STORE_ENAME otherwise). On error *out is empty. */
int store_election_list(store_t *st, const char *prefix, const char *after, size_t limit,
                        store_election_list_t *out);
void store_election_list_free(store_election_list_t *list);

/* ---- the change history (node-local, what watches read) ------------------------------------
 *
 * Every applied KV put and delete is recorded with its revision in the transaction that applies
 * it; the newest store_opts_t.history_max changes are kept, older ones are dropped as new ones
 * arrive. The history is this member's, like its log: never in a snapshot. Installing a snapshot
 * (or restoring a backup) empties it, since the changes that built the snapshot's state are not
 * known here: the history then starts at the snapshot's index. A snapshot this member takes of
 * its own state (log compaction) leaves it alone. */

/* One change, owned by the caller (store_history_free). */
typedef struct store_change {
    uint64_t revision; /* the entry index that applied it (the key's mod revision for a put) */
    bool deleted;      /* a delete (value empty), else a put */
    char *key;         /* key_len bytes + a NUL terminator */
    size_t key_len;
    uint8_t *value; /* value_len bytes + a NUL terminator */
    size_t value_len;
} store_change_t;

/* Every change with a revision after this one is in the history; a watch from an older
 * revision cannot be served (the changes between are gone). */
uint64_t store_history_from(const store_t *st);
/* Changes the history holds. */
uint64_t store_history_count(const store_t *st);

/* The changes with revision > after, oldest first, of key[0..key_len) — or, with prefix, of
 * every key starting with it (key_len 0: all keys): at most limit (1..STORE_LIST_MAX, 0 means
 * STORE_LIST_MAX) and about a MiB of values (at least one change). *items is malloc'd (NULL
 * when *n is 0). *more false means no change is left after them up to the applied index. A row that
 * fails its checksum fails the call (STORE_ECHECKSUM, store_corrupt_key() names it). Callers check
 * after >= store_history_from() first: older changes are silently absent. Errors: STORE_EKEY,
 * STORE_ECHECKSUM, STORE_ENOMEM, I/O errors. */
int store_history_read(store_t *st, uint64_t after, const char *key, size_t key_len, bool prefix,
                       size_t limit, store_change_t **items, size_t *n, bool *more);
void store_history_free(store_change_t *items, size_t n);

/* ---- ephemeral keys -------------------------------------------------------------------------
 *
 * A key written by an ephemeral PUT is bound to its owner, a member id, until a later PUT or DEL
 * of it (a plain PUT makes it an ordinary key again). Replicated like the KV (in snapshots and
 * backups); the store only records the binding: the daemon's leader deletes the keys of a
 * member that is gone, one DEL with If-Match the key's mod revision each. */

/* Owners that have at least one key, in id order: at most cap into ids[]; *n written, *more
 * whether others exist. */
int store_ephemeral_owners(store_t *st, uint64_t *ids, size_t cap, size_t *n, bool *more);

/* Keys bound to owner, in key order: at most limit (1..STORE_LIST_MAX, 0 means
 * STORE_LIST_MAX), as store_kv_list (checksums checked; release with store_kv_list_free). */
int store_ephemeral_list(store_t *st, uint64_t owner, size_t limit, store_kv_t **items, size_t *n);

/* A number that moves whenever the bindings may have changed (an apply that binds or unbinds
 * a key, a snapshot installed); never 0. What store_ephemeral_owners answered still holds
 * while it has not moved. */
uint64_t store_ephemeral_gen(const store_t *st);

/* ---- node-local keys (not replicated, not in snapshots) ------------------------------------ */

/* name: 1..STORE_LOCAL_KEY_MAX bytes, NUL-terminated. Set is durable (fsync) on return. */
int store_local_set(store_t *st, const char *name, const void *value, size_t len);
/* The same without fsync: durable with this store's next synchronous commit, or lost (the old
 * value kept) if the host crashes first; for a record where the old value is the cautious one. */
int store_local_set_relaxed(store_t *st, const char *name, const void *value, size_t len);
/* The same value under n names, in one durable transaction (one fsync): all or none. */
int store_local_set_many(store_t *st, const char *const *names, size_t n, const void *value,
                         size_t len);
/* Copies the value into buf[0..cap) and sets *len (the full length; STORE_ETOOBIG if cap is
 * smaller, with nothing copied). Errors: STORE_ENOTFOUND. */
int store_local_get(store_t *st, const char *name, void *buf, size_t cap, size_t *len);

/* ---- snapshots ------------------------------------------------------------------------------ */

typedef struct store_snapshot_info {
    uint64_t index;
    uint64_t term;
    uint64_t size; /* bytes of the snapshot file */
} store_snapshot_info_t;

/* Writes a consistent copy of the state machine at the applied index to
 * <data_dir>/snapshot-<index>-<term>.db (built as snapshot.tmp, fsynced, renamed), records it
 * as the current snapshot with the latest applied configuration — or boot_conf (may be NULL)
 * when no CONF entry has been applied, e.g. a cluster bootstrapped from its initial
 * configuration — and removes the previous snapshot file. Then the daemon calls raft_compact()
 * and store_log_compact(). If the applied index is already the snapshot's index, nothing is
 * written and *info describes the current snapshot — unless its file is missing, which is then
 * rebuilt from the (identical) state machine. Every KV row copied is checked against its
 * checksum: one that fails refuses the snapshot (STORE_ECHECKSUM), so a corrupt value is never
 * sent to a follower. Errors: STORE_EINVAL (nothing applied yet), STORE_ECHECKSUM, STORE_EFULL,
 * STORE_EIO, ... (the previous snapshot stays current). */
int store_snapshot_create(store_t *st, const raft_conf_t *boot_conf, store_snapshot_info_t *info);

/* ---- backup and restore ---------------------------------------------------------------------
 *
 * A backup is a snapshot file (the format above: the state machine at the applied index, its
 * index and term, never the log or node-local keys) taken while the store runs. */

/* Writes a backup of the state machine at the applied index into <data_dir>/backup.tmp,
 * checked like a snapshot (STORE_ECHECKSUM), opens it, removes its name and hands the open
 * descriptor to the caller (*fd, read from offset 0, to close). *info: its index, term and
 * size. Errors: STORE_EINVAL (nothing applied yet), STORE_ECHECKSUM, STORE_EFULL, ... */
int store_backup(store_t *st, int *fd, store_snapshot_info_t *info);

/* Seeds a store that holds nothing yet (no entry, no snapshot, term 0: STORE_EINVAL otherwise)
 * with the backup at path, as if a leader had sent it as a snapshot: the state machine becomes
 * the backup's (KV with revisions and checksums, epochs, elections and their tokens), the
 * snapshot is at the backup's index and term with configuration conf (the new group's, not
 * the backup's), the term is the backup's term and the log continues after its index. So the
 * next leader's term, its fencing token, exceeds every epoch in the backup, and revisions
 * continue from the backup's. The file is checked like a received snapshot (format, integrity,
 * every row's checksum) and left unchanged. *info: index and term restored. Errors:
 * STORE_EINVAL, STORE_ECANTOPEN (no such file), STORE_ESNAPSHOT (not a valid backup), ... */
int store_restore(store_t *st, const char *path, const raft_conf_t *conf,
                  store_snapshot_info_t *info);

/* The current snapshot's metadata (index 0: none). */
int store_snapshot_meta(store_t *st, raft_snapshot_meta_t *meta);

/* Path of the current snapshot file ("" when none). Borrowed until the next call on st. */
const char *store_snapshot_path(const store_t *st);

#endif
