/* db.c — opening electd.db: creation under a temporary name, the checks that refuse a foreign,
 * corrupt, newer or other node's file, schema migrations, pragmas, prepared statements, and
 * the translation of SQLite and errno failures into STORE_E* codes with a detailed message. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "store_int.h"

/* Schema 1 as it was first released. A new database is created at schema 1 and brought up to
 * date by the same migrations an old file goes through, so every migration runs on every new
 * node. Never edit this: add a migration. */
static const char SCHEMA_V1[] =
    "CREATE TABLE ident(id INTEGER PRIMARY KEY CHECK (id = 1), cluster_id TEXT NOT NULL,"
    " node_id INTEGER NOT NULL, created_ms INTEGER NOT NULL);"
    "CREATE TABLE hard_state(id INTEGER PRIMARY KEY CHECK (id = 1), term INTEGER NOT NULL,"
    " vote INTEGER NOT NULL, commit_idx INTEGER NOT NULL);"
    "CREATE TABLE log(idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, type INTEGER NOT NULL,"
    " data BLOB);"
    "CREATE TABLE snapshot(id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL,"
    " term INTEGER NOT NULL, size INTEGER NOT NULL, conf BLOB);"
    "CREATE TABLE sm(id INTEGER PRIMARY KEY CHECK (id = 1), applied_idx INTEGER NOT NULL,"
    " applied_term INTEGER NOT NULL, conf_idx INTEGER NOT NULL, conf BLOB);"
    "CREATE TABLE kv(key BLOB PRIMARY KEY, value BLOB NOT NULL, create_rev INTEGER NOT NULL,"
    " mod_rev INTEGER NOT NULL, version INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE epochs(term INTEGER PRIMARY KEY, leader INTEGER NOT NULL,"
    " started_ms INTEGER NOT NULL);"
    "INSERT INTO hard_state VALUES (1, 0, 0, 0);"
    "INSERT INTO snapshot VALUES (1, 0, 0, 0, NULL);"
    "INSERT INTO sm VALUES (1, 0, 0, 0, NULL);";

/* MIGRATIONS[v - 1] takes a database from schema v to v + 1, inside one transaction together
 * with the user_version bump. */
static const char *const MIGRATIONS[] = {
    /* 1 -> 2: epochs remember the index of their term-start entry; node-local keys. */
    "ALTER TABLE epochs ADD COLUMN idx INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE local(name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;",
    /* 2 -> 3: named elections, and the last token of each dropped one. */
    "CREATE TABLE elections(name TEXT PRIMARY KEY, holder INTEGER NOT NULL,"
    " token INTEGER NOT NULL, since_index INTEGER NOT NULL, since_unix_ms INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE election_tombstones(name TEXT PRIMARY KEY, token INTEGER NOT NULL)"
    " WITHOUT ROWID;",
    /* 3 -> 4: a checksum per KV row, computed here for the rows already stored (they are
     * trusted as they are: the open-time integrity check has just passed). */
    "ALTER TABLE kv ADD COLUMN crc INTEGER NOT NULL DEFAULT 0;"
    "UPDATE kv SET crc = electd_kv_crc(key, value, create_rev, mod_rev, version);",
    /* 4 -> 5: the change history watches read (history.c); complete from the applied index on,
     * since the changes before it are not known any more. */
    "CREATE TABLE history(rev INTEGER PRIMARY KEY, op INTEGER NOT NULL, key BLOB NOT NULL,"
    " value BLOB, crc INTEGER NOT NULL);"
    "ALTER TABLE sm ADD COLUMN history_from INTEGER NOT NULL DEFAULT 0;"
    "UPDATE sm SET history_from = applied_idx;",
    /* 5 -> 6: ephemeral keys, bound to the member that wrote them (ephemeral.c). */
    "CREATE TABLE ephemeral(key BLOB PRIMARY KEY, owner INTEGER NOT NULL, crc INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE INDEX ephemeral_owner ON ephemeral(owner, key);",
};
_Static_assert(sizeof MIGRATIONS / sizeof MIGRATIONS[0] == STORE_SCHEMA_VERSION - 1,
               "one migration per schema version step");

static const char *const STMT_SQL[STMT_COUNT] = {
#define STORE_STMT_SQL(name, sql) [STMT_##name] = sql,
    STORE_STMT_MAP(STORE_STMT_SQL)
#undef STORE_STMT_SQL
};

const char *store_strerror(int err)
{
    switch (err) {
#define STORE_ERR_CASE(name, code, text)                                                           \
    case code:                                                                                     \
        return text;
        STORE_ERRNO_MAP(STORE_ERR_CASE)
#undef STORE_ERR_CASE
    case 0:
        return "success";
    default:
        return "unknown error";
    }
}

static int map_sqlite(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
        return 0;
    case SQLITE_NOMEM:
        return STORE_ENOMEM;
    case SQLITE_FULL:
        return STORE_EFULL;
    case SQLITE_IOERR:
        return (rc == SQLITE_IOERR_NOMEM) ? STORE_ENOMEM : STORE_EIO;
    case SQLITE_CORRUPT:
        return STORE_ECORRUPT;
    case SQLITE_NOTADB:
        return STORE_ENOTDB;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_EBUSY;
    case SQLITE_CANTOPEN:
        return STORE_ECANTOPEN;
    case SQLITE_READONLY:
        return STORE_EREADONLY;
    case SQLITE_TOOBIG:
        return STORE_ETOOBIG;
    default:
        return STORE_EINTERNAL;
    }
}

int store_fail(store_t *st, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->errmsg, sizeof st->errmsg, fmt, ap);
    va_end(ap);
    return err;
}

int store_sqlite_err(store_t *st, int rc, const char *what)
{
    int err = map_sqlite(rc);
    const char *detail = st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
    const char *hint = "";
    if (err == STORE_EFULL)
        hint = ": free space on the filesystem holding the data directory";
    else if (err == STORE_EIO)
        hint = ": check the disk and the kernel log";
    else if (err == STORE_ECORRUPT)
        hint = ": restore the file from a backup, or move it away and re-add this node as a new "
               "member";
    else if (err == STORE_EBUSY)
        hint = ": is another electd running with this data directory?";
    return store_fail(st, err, "%s: %s (sqlite %d)%s", what, detail, rc, hint);
}

void store_reset(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

int store_step_done(store_t *st, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    store_reset(s);
    if (rc != SQLITE_DONE)
        return store_sqlite_err(st, rc, what);
    return 0;
}

int store_tx_begin(store_t *st)
{
    return store_step_done(st, st->stmt[STMT_BEGIN], "begin transaction");
}

int store_tx_commit(store_t *st)
{
    return store_step_done(st, st->stmt[STMT_COMMIT], "commit");
}

/* After a failure. SQLite may already have rolled back (I/O errors, disk full); then ROLLBACK
 * itself would fail, so it is only issued while a transaction is open. */
void store_tx_rollback(store_t *st)
{
    if (!sqlite3_get_autocommit(st->db)) {
        sqlite3_step(st->stmt[STMT_ROLLBACK]);
        store_reset(st->stmt[STMT_ROLLBACK]);
    }
}

int store_exec(store_t *st, const char *sql, const char *what)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(st, rc, what);
    return 0;
}

int store_join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return (n < 0 || (size_t)n >= cap) ? STORE_EINVAL : 0;
}

int store_fsync_path(const char *path, bool dir)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return STORE_EIO;
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? 0 : (errno == ENOSPC ? STORE_EFULL : STORE_EIO);
}

const char *store_errmsg(const store_t *st)
{
    return st ? st->errmsg : "";
}

const char *store_path(const store_t *st)
{
    return st->path;
}

/* Runs a one-row, one-integer query. */
static int query_int(store_t *st, const char *sql, int64_t *out, const char *what)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(s, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(s);
    return rc == SQLITE_OK ? 0 : store_sqlite_err(st, rc, what);
}

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

static int migrate(store_t *st, int from)
{
    int err = 0;
    for (int v = from; v < STORE_SCHEMA_VERSION; v++) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d;", v + 1);
        if ((err = store_exec(st, "BEGIN IMMEDIATE", "begin migration")) != 0)
            return err;
        if ((err = store_exec(st, MIGRATIONS[v - 1], "migrate schema")) != 0 ||
            (err = store_exec(st, bump, "set schema version")) != 0 ||
            (err = store_exec(st, "COMMIT", "commit migration")) != 0) {
            if (!sqlite3_get_autocommit(st->db))
                sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
            char detail[STORE_ERRMSG_MAX];
            snprintf(detail, sizeof detail, "%s", st->errmsg);
            return store_fail(st, err,
                              "migrating %s from schema %d to %d failed: %s; the file "
                              "is unchanged at schema %d",
                              st->path, v, v + 1, detail, v);
        }
    }
    return err;
}

/* Builds a complete, stamped database at <dir>/electd.db.init and renames it to electd.db, so
 * that electd.db exists only once fully initialised. */
static int create_db(store_t *st, const store_opts_t *opts)
{
    char init[STORE_PATH_MAX], aux[STORE_PATH_MAX + 8];
    int err = 0;
    if (store_join(init, sizeof init, st->dir, STORE_INIT_NAME) != 0)
        return store_fail(st, STORE_EINVAL, "data directory path too long");
    const char *sfx[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(aux, sizeof aux, "%s%s", init, sfx[i]);
        unlink(aux);
    }
    int rc = sqlite3_open_v2(
        init, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, opts->vfs);
    if (rc == SQLITE_OK)
        rc = store_sql_functions(st->db); /* the migrations use them */
    if (rc != SQLITE_OK) {
        err = store_sqlite_err(st, rc, "create database");
        goto fail;
    }
    char stamp[128];
    snprintf(stamp, sizeof stamp, "PRAGMA application_id = %d; PRAGMA user_version = 1;",
             (int)STORE_APP_ID);
    if ((err = store_exec(st, "PRAGMA journal_mode = WAL", "set WAL mode")) != 0 ||
        (err = store_exec(st, "BEGIN IMMEDIATE", "begin init")) != 0 ||
        (err = store_exec(st, SCHEMA_V1, "create schema")) != 0 ||
        (err = store_exec(st, stamp, "stamp database")) != 0)
        goto fail;
    sqlite3_stmt *s = NULL;
    rc = sqlite3_prepare_v2(st->db, "INSERT INTO ident VALUES (1, ?1, ?2, ?3)", -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, opts->cluster_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (int64_t)opts->node_id);
        sqlite3_bind_int64(s, 3, (int64_t)wall_ms());
        rc = sqlite3_step(s);
        rc = (rc == SQLITE_DONE) ? SQLITE_OK : rc;
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_OK) {
        err = store_sqlite_err(st, rc, "stamp identity");
        goto fail;
    }
    if ((err = store_exec(st, "COMMIT", "commit init")) != 0 || (err = migrate(st, 1)) != 0)
        goto fail;
    rc = sqlite3_close(st->db); /* checkpoints and removes the WAL */
    st->db = NULL;
    if (rc != SQLITE_OK) {
        err = STORE_EIO;
        store_fail(st, err, "closing new database %s failed", init);
        goto fail;
    }
    if ((err = store_fsync_path(init, false)) != 0 || rename(init, st->path) != 0 ||
        (err = store_fsync_path(st->dir, true)) != 0) {
        err = err ? err : STORE_EIO;
        store_fail(st, err, "installing new database %s failed: %s", st->path, strerror(errno));
        goto fail;
    }
    return 0;
fail:
    if (st->db) {
        sqlite3_close(st->db);
        st->db = NULL;
    }
    unlink(init);
    return err;
}

/* Checks the first bytes before SQLite sees the file, so that a non-database is refused
 * with a precise message instead of being treated as an empty database. */
static int check_header(store_t *st)
{
    static const char magic[16] = "SQLite format 3";
    unsigned char hdr[100];
    int fd = open(st->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return store_fail(st, STORE_ECANTOPEN,
                          "cannot open %s: %s (check permissions of the "
                          "data directory)",
                          st->path, strerror(errno));
    ssize_t n = pread(fd, hdr, sizeof hdr, 0);
    int saved = errno;
    close(fd);
    if (n < 0)
        return store_fail(st, STORE_EIO, "cannot read %s: %s", st->path, strerror(saved));
    if (n == 0)
        return store_fail(st, STORE_ENOTDB,
                          "%s is empty (0 bytes), so it was not made by electd "
                          "(which creates it complete): move it away to initialise this node "
                          "afresh",
                          st->path);
    if ((size_t)n < sizeof hdr || memcmp(hdr, magic, sizeof magic) != 0)
        return store_fail(st, STORE_ENOTDB,
                          "%s is not a SQLite database (is --data-dir the "
                          "right directory?): move it away to initialise this node afresh, or "
                          "point --data-dir elsewhere",
                          st->path);
    return 0;
}

static int check_ident(store_t *st, const store_opts_t *opts)
{
    sqlite3_stmt *s = NULL;
    int err = 0;
    int rc = sqlite3_prepare_v2(st->db, "SELECT cluster_id, node_id FROM ident WHERE id = 1", -1,
                                &s, NULL);
    if (rc != SQLITE_OK) {
        err = store_sqlite_err(st, rc, "read identity");
        goto out;
    }
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        err = (rc == SQLITE_DONE) ? store_fail(st, STORE_ECORRUPT,
                                               "%s has no identity row: it is "
                                               "damaged; restore it from a backup or move it away "
                                               "and re-add this node as a new member",
                                               st->path)
                                  : store_sqlite_err(st, rc, "read identity");
        goto out;
    }
    const char *cid = (const char *)sqlite3_column_text(s, 0);
    uint64_t nid = (uint64_t)sqlite3_column_int64(s, 1);
    if (!cid || strcmp(cid, opts->cluster_id) != 0) {
        err = store_fail(st, STORE_ECLUSTER,
                         "%s belongs to cluster \"%s\", not \"%s\": point "
                         "--data-dir at this node's own directory, or move the file away to "
                         "join this cluster as a new member",
                         st->path, cid ? cid : "", opts->cluster_id);
    } else if (nid != opts->node_id) {
        err = store_fail(st, STORE_ENODE,
                         "%s belongs to node %llu, not node %llu: each node "
                         "needs its own --data-dir; point it at this node's directory, or move "
                         "the file away to join as a new member",
                         st->path, (unsigned long long)nid, (unsigned long long)opts->node_id);
    }
out:
    sqlite3_finalize(s);
    return err;
}

int store_check_error(const char *result)
{
    /* quick_check reports pages it could not read as findings ("unable to get the page. error
     * code=266"): those are I/O failures to report as such, not evidence of corruption. */
    const char *p = result ? strstr(result, "error code=") : NULL;
    if (p) {
        int rc = atoi(p + strlen("error code="));
        int err = map_sqlite(rc);
        if (err == STORE_EIO || err == STORE_EFULL || err == STORE_ENOMEM)
            return err;
    }
    return STORE_ECORRUPT;
}

static int quick_check(store_t *st)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, "PRAGMA quick_check(1)", -1, &s, NULL);
    int err = 0;
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *res = (const char *)sqlite3_column_text(s, 0);
        if (!res || strcmp(res, "ok") != 0) {
            err = store_check_error(res);
            if (err != STORE_ECORRUPT)
                store_fail(st, err,
                           "reading %s failed during the integrity check (%s): check "
                           "the disk",
                           st->path, res);
            else
                store_fail(st, err,
                           "%s is corrupt (%s): restore it from a backup, or move it "
                           "away and re-add this node as a new member so that it catches up "
                           "from the others",
                           st->path, res ? res : "?");
        }
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK && !err)
        err = store_sqlite_err(st, rc, "integrity check");
    sqlite3_finalize(s);
    return err;
}

/* A SQLite error met while first reading the file: name the file in the message. */
static int open_err(store_t *st, int rc)
{
    int err = map_sqlite(rc);
    if (err == STORE_ENOTDB)
        return store_fail(st, err,
                          "%s is not a SQLite database or is encrypted: move it away "
                          "to initialise this node afresh",
                          st->path);
    if (err == STORE_ECORRUPT)
        return store_fail(st, err,
                          "%s is corrupt (%s): restore it from a backup, or move it "
                          "away and re-add this node as a new member",
                          st->path, sqlite3_errmsg(st->db));
    if (err == STORE_EBUSY)
        return store_fail(st, err,
                          "%s is locked by another process: is another electd "
                          "running with this --data-dir?",
                          st->path);
    return store_sqlite_err(st, rc, st->path);
}

static int load_state(store_t *st)
{
    sqlite3_stmt *s = st->stmt[STMT_SM_GET];
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        st->applied_index = (uint64_t)sqlite3_column_int64(s, 0);
        st->applied_term = (uint64_t)sqlite3_column_int64(s, 1);
    }
    store_reset(s);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE
                   ? store_fail(st, STORE_ECORRUPT, "%s lacks its state row", st->path)
                   : store_sqlite_err(st, rc, "read applied index");
    int err = store_snapshot_load_meta(st);
    if (err)
        return err;
    s = st->stmt[STMT_LOG_BOUNDS];
    rc = sqlite3_step(s);
    uint64_t last = 0;
    if (rc == SQLITE_ROW)
        last = (uint64_t)sqlite3_column_int64(s, 1);
    store_reset(s);
    if (rc != SQLITE_ROW)
        return store_sqlite_err(st, rc, "read log bounds");
    st->last_index = last > st->snap.index ? last : st->snap.index;
    return 0;
}

static int validate_opts(const char *dir, const store_opts_t *opts, char *errbuf, size_t errlen)
{
    const char *why = NULL;
    if (!dir || !*dir)
        why = "data directory not set";
    else if (strlen(dir) > STORE_PATH_MAX - 64)
        why = "data directory path too long";
    else if (!opts || !opts->cluster_id || !*opts->cluster_id)
        why = "cluster id not set";
    else if (strlen(opts->cluster_id) > STORE_CLUSTER_ID_MAX)
        why = "cluster id longer than STORE_CLUSTER_ID_MAX bytes";
    else if (opts->node_id == 0)
        why = "node id must not be 0";
    if (why && errbuf && errlen)
        snprintf(errbuf, errlen, "%s", why);
    return why ? STORE_EINVAL : 0;
}

/* The data directory and, on a first start, a new database file with its header checked. */
static int open_file(store_t *st, const store_opts_t *opts)
{
    if (mkdir(st->dir, 0700) != 0 && errno != EEXIST)
        return store_fail(st, STORE_ECANTOPEN, "cannot create data directory %s: %s", st->dir,
                          strerror(errno));
    struct stat sb;
    if (stat(st->path, &sb) != 0) {
        if (errno != ENOENT)
            return store_fail(st, STORE_ECANTOPEN, "cannot access %s: %s", st->path,
                              strerror(errno));
        int err = create_db(st, opts);
        if (err != 0)
            return err;
    }
    return check_header(st);
}

/* Opens the checked file with SQLite, exclusively, with the page cache bounded. */
static int open_connection(store_t *st, const store_opts_t *opts)
{
    /* No SQLITE_OPEN_CREATE: the file was checked above and must not be silently recreated. */
    int rc =
        sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, opts->vfs);
    if (rc == SQLITE_OK)
        rc = store_sql_functions(st->db);
    if (rc != SQLITE_OK)
        return store_sqlite_err(st, rc, st->path);
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, opts->busy_timeout_ms ? (int)opts->busy_timeout_ms : 1000);
    /* EXCLUSIVE before anything reads the file: only then does WAL keep its index in heap
     * memory and the lock stay held. Then the cache bound, so that the checks below do not
     * grow the page cache either. */
    char cache[64];
    snprintf(cache, sizeof cache, "PRAGMA cache_size = -%d", STORE_CACHE_KIB);
    rc = sqlite3_exec(st->db, "PRAGMA locking_mode = EXCLUSIVE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(st->db, cache, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : open_err(st, rc);
}

/* Identifies the file before anything could write to it (even switching the journal mode
 * rewrites the header): a refused file is left exactly as it was. *version its schema. */
static int identify(store_t *st, int64_t *version)
{
    int64_t app_id = 0;
    int rc = sqlite3_exec(st->db, "PRAGMA application_id", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return open_err(st, rc);
    int err = query_int(st, "PRAGMA application_id", &app_id, "read application id");
    if (err == 0)
        err = query_int(st, "PRAGMA user_version", version, "read schema version");
    if (err != 0)
        return err;
    if (app_id != STORE_APP_ID)
        return store_fail(st, STORE_EFOREIGN,
                          "%s is a SQLite database but not electd's "
                          "(application id 0x%llx): point --data-dir at this node's own "
                          "directory, or move the file away",
                          st->path, (unsigned long long)app_id);
    if (*version > STORE_SCHEMA_VERSION)
        return store_fail(st, STORE_ESCHEMA,
                          "%s has schema version %lld but this electd "
                          "supports up to %d: run a newer electd (downgrades are not supported)",
                          st->path, (long long)*version, STORE_SCHEMA_VERSION);
    if (*version < 1)
        return store_fail(st, STORE_ECORRUPT,
                          "%s has an electd application id but schema "
                          "version %lld: it is damaged; restore it from a backup or move it away",
                          st->path, (long long)*version);
    return 0;
}

/* WAL, the integrity and identity checks, migrations: the file becomes this node's store. */
static int adopt(store_t *st, const store_opts_t *opts, int64_t version)
{
    int rc = sqlite3_exec(st->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return open_err(st, rc);
    int err = opts->skip_check ? 0 : quick_check(st);
    if (err == 0)
        err = check_ident(st, opts);
    if (err == 0)
        err = migrate(st, (int)version);
    if (err != 0)
        return err;
    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA synchronous = FULL; PRAGMA journal_size_limit = %d;"
             "PRAGMA temp_store = MEMORY; PRAGMA foreign_keys = OFF; PRAGMA trusted_schema = OFF;",
             STORE_WAL_LIMIT);
    return store_exec(st, pragmas, "set pragmas");
}

static int prepare_statements(store_t *st)
{
    for (int i = 0; i < STMT_COUNT; i++) {
        int rc = sqlite3_prepare_v3(st->db, STMT_SQL[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &st->stmt[i], NULL);
        if (rc == SQLITE_OK)
            continue;
        if (map_sqlite(rc) == STORE_EINTERNAL)
            return store_fail(st, STORE_ECORRUPT,
                              "%s does not have the expected tables "
                              "(%s): it is damaged; restore it from a backup or move it away",
                              st->path, sqlite3_errmsg(st->db));
        return open_err(st, rc);
    }
    return 0;
}

int store_open(store_t **out, const char *data_dir, const store_opts_t *opts, char *errbuf,
               size_t errlen)
{
    *out = NULL;
    int err = validate_opts(data_dir, opts, errbuf, errlen);
    if (err)
        return err;
    store_t *st = calloc(1, sizeof *st);
    if (!st || !(st->dir = strdup(data_dir))) {
        free(st);
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "out of memory");
        return STORE_ENOMEM;
    }
    st->snap_fd = -1;
    st->eph_gen = 1;
    store_join(st->path, sizeof st->path, st->dir, STORE_DB_NAME);

    int64_t version = 0;
    if ((err = open_file(st, opts)) != 0 || (err = open_connection(st, opts)) != 0 ||
        (err = identify(st, &version)) != 0 || (err = adopt(st, opts, version)) != 0 ||
        (err = prepare_statements(st)) != 0 || (err = load_state(st)) != 0 ||
        (err = store_history_load(st, opts->history_max)) != 0)
        goto fail;
    store_snapshot_cleanup_open(st);
    st->errmsg[0] = 0;
    *out = st;
    return 0;
fail:
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "%s", st->errmsg[0] ? st->errmsg : store_strerror(err));
    store_close(st);
    return err;
}

void store_close(store_t *st)
{
    if (!st)
        return;
    raft_boot_t none = {0};
    store_boot_free(st, &none);
    store_snapshot_close_fd(st);
    for (int i = 0; i < STMT_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    if (st->db)
        sqlite3_close(st->db);
    free(st->dir);
    free(st);
}

int store_size_bytes(store_t *st, uint64_t *bytes)
{
    sqlite3_stmt *s = st->stmt[STMT_PAGES];
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *bytes = (uint64_t)sqlite3_column_int64(s, 0);
    store_reset(s);
    return rc == SQLITE_ROW ? 0 : store_sqlite_err(st, rc, "read database size");
}
