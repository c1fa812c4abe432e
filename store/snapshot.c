/* snapshot.c — snapshots of the state machine: creating one as its own small SQLite file,
 * receiving one in chunks into a staging file, checking and installing it atomically, serving
 * its bytes to the Raft core, and keeping only the current snapshot file on disk.
 * Format 2 adds the election tables; format 1 (without them) is still installed.
 *
 * Why not VACUUM INTO or the backup API: both copy the whole database, log included, while a
 * snapshot must hold only the state machine. Copying the state machine tables into a fresh
 * database attached to the same connection, inside one read transaction, gives the same
 * consistency (one read snapshot of main at the applied index) at the state machine's size. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_int.h"

#define SNAP_PREFIX "snapshot-"
#define SNAP_SUFFIX ".db"

static const char SNAP_TABLES[] =
    "CREATE TABLE snapw.kv(key BLOB PRIMARY KEY, value BLOB NOT NULL,"
    " create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL, version INTEGER NOT NULL,"
    " crc INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE snapw.epochs(term INTEGER PRIMARY KEY, leader INTEGER NOT NULL,"
    " started_ms INTEGER NOT NULL, idx INTEGER NOT NULL);"
    "CREATE TABLE snapw.elections(name TEXT PRIMARY KEY, holder INTEGER NOT NULL,"
    " token INTEGER NOT NULL, since_index INTEGER NOT NULL, since_unix_ms INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE snapw.election_tombstones(name TEXT PRIMARY KEY, token INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE snapw.ephemeral(key BLOB PRIMARY KEY, owner INTEGER NOT NULL,"
    " crc INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE snapw.snap(idx INTEGER NOT NULL, term INTEGER NOT NULL,"
    " conf_idx INTEGER NOT NULL, conf BLOB);"
    "INSERT INTO snapw.kv SELECT key, value, create_rev, mod_rev, version, crc FROM main.kv;"
    "INSERT INTO snapw.epochs SELECT term, leader, started_ms, idx FROM main.epochs;"
    "INSERT INTO snapw.elections SELECT name, holder, token, since_index, since_unix_ms"
    " FROM main.elections;"
    "INSERT INTO snapw.election_tombstones SELECT name, token FROM main.election_tombstones;"
    "INSERT INTO snapw.ephemeral SELECT key, owner, crc FROM main.ephemeral;"
    "INSERT INTO snapw.snap SELECT applied_idx, applied_term, conf_idx, conf FROM main.sm;";

static int snap_name(store_t *st, char *out, size_t cap, uint64_t index, uint64_t term)
{
    char name[96];
    snprintf(name, sizeof name, SNAP_PREFIX "%llu-%llu" SNAP_SUFFIX, (unsigned long long)index,
             (unsigned long long)term);
    return store_join(out, cap, st->dir, name);
}

static int errno_err(int e)
{
    return (e == ENOSPC || e == EDQUOT) ? STORE_EFULL : (e == ENOMEM ? STORE_ENOMEM : STORE_EIO);
}

void store_snapshot_close_fd(store_t *st)
{
    if (st->snap_fd >= 0)
        close(st->snap_fd);
    st->snap_fd = -1;
}

int store_conf_blob(store_t *st, const raft_conf_t *c, uint8_t **blob, size_t *len)
{
    *blob = NULL;
    *len = 0;
    if (!c || c->n == 0)
        return 0;
    size_t cap = raft_conf_encoded_size(c);
    uint8_t *b = malloc(cap ? cap : 1);
    if (!b)
        return store_fail(st, STORE_ENOMEM, "no memory to encode a configuration");
    if (raft_conf_encode(c, b, cap, len) != 0) {
        free(b);
        return store_fail(st, STORE_EINVAL, "configuration does not encode");
    }
    *blob = b;
    return 0;
}

int store_snapshot_load_meta(store_t *st)
{
    sqlite3_stmt *s = st->stmt[STMT_SNAP_GET];
    int rc = sqlite3_step(s);
    int err = 0;
    memset(&st->snap, 0, sizeof st->snap);
    st->snap_path[0] = 0;
    if (rc == SQLITE_ROW) {
        st->snap.index = (uint64_t)sqlite3_column_int64(s, 0);
        st->snap.term = (uint64_t)sqlite3_column_int64(s, 1);
        st->snap.size = (uint64_t)sqlite3_column_int64(s, 2);
        const uint8_t *blob = sqlite3_column_blob(s, 3);
        if (blob && raft_conf_decode(blob, (size_t)sqlite3_column_bytes(s, 3), &st->snap.conf))
            err = store_fail(st, STORE_ECORRUPT,
                             "%s: the snapshot's configuration does not "
                             "decode: restore the file from a backup or move it away",
                             st->path);
    } else {
        err = rc == SQLITE_DONE
                  ? store_fail(st, STORE_ECORRUPT, "%s lacks its snapshot row", st->path)
                  : store_sqlite_err(st, rc, "read snapshot metadata");
    }
    store_reset(s);
    if (!err && st->snap.index)
        snap_name(st, st->snap_path, sizeof st->snap_path, st->snap.index, st->snap.term);
    return err;
}

void store_snapshot_cleanup(store_t *st)
{
    DIR *d = opendir(st->dir);
    if (!d)
        return;
    const char *keep = strrchr(st->snap_path, '/');
    keep = keep ? keep + 1 : "";
    struct dirent *de;
    char path[STORE_PATH_MAX];
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        bool is_snap = n > strlen(SNAP_PREFIX SNAP_SUFFIX) &&
                       strncmp(de->d_name, SNAP_PREFIX, strlen(SNAP_PREFIX)) == 0 &&
                       strcmp(de->d_name + n - strlen(SNAP_SUFFIX), SNAP_SUFFIX) == 0;
        if (is_snap && strcmp(de->d_name, keep) != 0 &&
            store_join(path, sizeof path, st->dir, de->d_name) == 0)
            unlink(path);
    }
    closedir(d);
}

/* Called once at open: besides old snapshots, a half-built or half-received one is garbage
 * (a transfer restarts from offset 0 after a restart). */
static void cleanup_temporaries(store_t *st)
{
    char path[STORE_PATH_MAX];
    if (store_join(path, sizeof path, st->dir, STORE_SNAP_TMP_NAME) == 0)
        unlink(path);
    if (store_join(path, sizeof path, st->dir, STORE_SNAP_RECV_NAME) == 0)
        unlink(path);
    if (store_join(path, sizeof path, st->dir, STORE_INIT_NAME) == 0)
        unlink(path);
    if (store_join(path, sizeof path, st->dir, STORE_BACKUP_TMP_NAME) == 0)
        unlink(path);
}

/* ---- receiving ------------------------------------------------------------------------- */

int store_snapshot_chunk(store_t *st, const raft_snapshot_chunk_t *c)
{
    char path[STORE_PATH_MAX];
    if (c->len > STORE_CHUNK_MAX)
        return store_fail(st, STORE_ETOOBIG,
                          "snapshot chunk of %u bytes exceeds the %u byte "
                          "limit",
                          c->len, STORE_CHUNK_MAX);
    if (c->meta.size > STORE_SNAPSHOT_MAX)
        return store_fail(st, STORE_ETOOBIG, "snapshot of %llu bytes exceeds the %llu byte limit",
                          (unsigned long long)c->meta.size, (unsigned long long)STORE_SNAPSHOT_MAX);
    if (c->meta.index == 0 || c->offset > c->meta.size || c->len > c->meta.size - c->offset ||
        (c->len && !c->data))
        return store_fail(st, STORE_EINVAL,
                          "snapshot chunk at offset %llu (%u bytes) does not "
                          "fit a snapshot of %llu bytes at index %llu",
                          (unsigned long long)c->offset, c->len, (unsigned long long)c->meta.size,
                          (unsigned long long)c->meta.index);
    if (store_join(path, sizeof path, st->dir, STORE_SNAP_RECV_NAME) != 0)
        return store_fail(st, STORE_EINVAL, "data directory path too long");
    int flags = O_WRONLY | O_CLOEXEC | (c->offset == 0 ? O_CREAT | O_TRUNC : 0);
    int fd = open(path, flags, 0600);
    if (fd < 0)
        return store_fail(st, errno == ENOENT ? STORE_EINVAL : errno_err(errno),
                          "snapshot chunk at offset %llu: cannot open %s: %s",
                          (unsigned long long)c->offset, path, strerror(errno));
    int err = 0;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        err = store_fail(st, errno_err(errno), "stat %s: %s", path, strerror(errno));
        goto out;
    }
    if ((uint64_t)sb.st_size < c->offset) {
        err = store_fail(st, STORE_EINVAL,
                         "snapshot chunk at offset %llu but only %llu bytes "
                         "staged",
                         (unsigned long long)c->offset, (unsigned long long)sb.st_size);
        goto out;
    }
    size_t done = 0;
    while (done < c->len) {
        ssize_t w = pwrite(fd, c->data + done, c->len - done, (off_t)(c->offset + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            err = store_fail(st, w < 0 ? errno_err(errno) : STORE_EIO,
                             "writing snapshot chunk to %s: %s", path, strerror(errno));
            goto out;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0)
        err = store_fail(st, errno_err(errno), "fsync %s: %s", path, strerror(errno));
out:
    close(fd);
    return err;
}

int store_attach(store_t *st, const char *path, const char *as)
{
    char sql[64];
    snprintf(sql, sizeof sql, "ATTACH ?1 AS %s", as);
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(s);
    return rc == SQLITE_OK ? 0 : store_sqlite_err(st, rc, "attach snapshot");
}

void store_detach(store_t *st, const char *as)
{
    char sql[64];
    snprintf(sql, sizeof sql, "DETACH %s", as);
    sqlite3_exec(st->db, sql, NULL, NULL, NULL);
}

int store_query_value(store_t *st, const char *sql, int64_t *v, char *text, size_t cap)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (v)
            *v = sqlite3_column_int64(s, 0);
        if (text) {
            const unsigned char *t = sqlite3_column_text(s, 0);
            snprintf(text, cap, "%s", t ? (const char *)t : "");
        }
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

/* A SQLite error while reading the received file: its content is bad (ESNAPSHOT), or the disk
 * failed (EIO, EFULL, ...), which says nothing about the snapshot. */
static int staged_error(store_t *st, int rc, const raft_snapshot_chunk_t *c)
{
    int e = rc & 0xff;
    if (e == SQLITE_NOTADB || e == SQLITE_CORRUPT || e == SQLITE_ERROR)
        return store_fail(st, STORE_ESNAPSHOT,
                          "received snapshot at index %llu is not a valid "
                          "SQLite database (%s); it was discarded",
                          (unsigned long long)c->meta.index, sqlite3_errmsg(st->db));
    return store_sqlite_err(st, rc, "read received snapshot");
}

/* Whether the attached snapshot ("stg") has the ephemeral table (written since schema 6). */
static int staged_has_ephemeral(store_t *st, int64_t *has)
{
    return store_query_value(
        st, "SELECT count(*) FROM stg.sqlite_master WHERE type = 'table' AND name = 'ephemeral'",
        has, NULL, 0);
}

/* The rows of an attached snapshot ("stg") that carry checksums (from a member that writes
 * them) match them; a corrupt row discards the snapshot. */
static int check_staged_rows(store_t *st, const raft_snapshot_chunk_t *c)
{
    int64_t has_crc = 0;
    int rc = store_query_value(
        st, "SELECT count(*) FROM pragma_table_info('kv', 'stg') WHERE name = 'crc'", &has_crc,
        NULL, 0);
    if (rc != SQLITE_OK)
        return staged_error(st, rc, c);
    int err = has_crc ? store_kv_verify(st, "stg.kv", "received snapshot") : 0;
    int64_t has_eph = 0;
    if (err == 0 && (rc = staged_has_ephemeral(st, &has_eph)) != SQLITE_OK)
        return staged_error(st, rc, c);
    if (err == 0 && has_eph)
        err = store_ephemeral_verify(st, "stg.ephemeral", "received snapshot");
    if (err == STORE_ECHECKSUM) {
        char detail[STORE_ERRMSG_MAX];
        snprintf(detail, sizeof detail, "%s", st->errmsg);
        return store_fail(st, STORE_ESNAPSHOT, "%s; the snapshot at index %llu was discarded",
                          detail, (unsigned long long)c->meta.index);
    }
    return err;
}

/* Checks an attached snapshot file ("stg"): electd's snapshot format, intact, every checksum
 * right, and at the index and term the leader announced. */
static int check_staged(store_t *st, const raft_snapshot_chunk_t *c)
{
    int64_t app = 0, fmt = 0, rows = 0, idx = 0, term = 0;
    char qc[128] = "";
    int rc;
    if ((rc = store_query_value(st, "PRAGMA stg.application_id", &app, NULL, 0)) != SQLITE_OK ||
        (rc = store_query_value(st, "PRAGMA stg.user_version", &fmt, NULL, 0)) != SQLITE_OK)
        return staged_error(st, rc, c);
    if (app != STORE_SNAP_APP_ID || fmt < STORE_SNAP_FORMAT_V1 || fmt > STORE_SNAP_FORMAT)
        return store_fail(st, STORE_ESNAPSHOT,
                          "received snapshot is not in electd's snapshot "
                          "format %d..%d; it was discarded",
                          STORE_SNAP_FORMAT_V1, STORE_SNAP_FORMAT);
    if ((rc = store_query_value(st, "PRAGMA stg.quick_check(1)", NULL, qc, sizeof qc)) != SQLITE_OK)
        return staged_error(st, rc, c);
    if (strcmp(qc, "ok") != 0) {
        int err = store_check_error(qc);
        if (err != STORE_ECORRUPT)
            return store_fail(st, err, "reading the received snapshot failed (%s)", qc);
        return store_fail(st, STORE_ESNAPSHOT,
                          "received snapshot is corrupt (%s); it was "
                          "discarded",
                          qc);
    }
    /* every table the install copies from is there (a missing one is SQLITE_ERROR) */
    static const char *const tables[] = {
        "SELECT count(*) FROM stg.kv", "SELECT count(*) FROM stg.epochs",
        "SELECT count(*) FROM stg.elections", "SELECT count(*) FROM stg.election_tombstones"};
    size_t n_tables = fmt > STORE_SNAP_FORMAT_V1 ? 4 : 2;
    for (size_t i = 0; i < n_tables; i++)
        if ((rc = store_query_value(st, tables[i], NULL, NULL, 0)) != SQLITE_OK)
            return staged_error(st, rc, c);
    if ((rc = store_query_value(st, "SELECT count(*) FROM stg.snap", &rows, NULL, 0)) !=
            SQLITE_OK ||
        (rc = store_query_value(st, "SELECT idx FROM stg.snap", &idx, NULL, 0)) != SQLITE_OK ||
        (rc = store_query_value(st, "SELECT term FROM stg.snap", &term, NULL, 0)) != SQLITE_OK)
        return staged_error(st, rc, c);
    if (rows != 1 || (uint64_t)idx != c->meta.index || (uint64_t)term != c->meta.term)
        return store_fail(st, STORE_ESNAPSHOT,
                          "received snapshot is not at index %llu term %llu "
                          "as announced; it was discarded",
                          (unsigned long long)c->meta.index, (unsigned long long)c->meta.term);
    return check_staged_rows(st, c);
}

int store_snapshot_attach_staged(store_t *st, const raft_snapshot_chunk_t *c)
{
    char recv[STORE_PATH_MAX], final[STORE_PATH_MAX];
    struct stat sb;
    int err = 0;
    if (store_join(recv, sizeof recv, st->dir, STORE_SNAP_RECV_NAME) != 0 ||
        snap_name(st, final, sizeof final, c->meta.index, c->meta.term) != 0)
        return store_fail(st, STORE_EINVAL, "data directory path too long");
    if (stat(recv, &sb) != 0 || (uint64_t)sb.st_size != c->meta.size)
        return store_fail(st, STORE_ESNAPSHOT,
                          "received snapshot has %lld bytes, expected "
                          "%llu",
                          (long long)(stat(recv, &sb) == 0 ? sb.st_size : -1),
                          (unsigned long long)c->meta.size);
    if ((err = store_attach(st, recv, "stg")) != 0) {
        if (err == STORE_ENOTDB || err == STORE_ECORRUPT)
            err = store_fail(st, STORE_ESNAPSHOT,
                             "received snapshot at index %llu is not a "
                             "SQLite database; it was discarded",
                             (unsigned long long)c->meta.index);
        goto bad;
    }
    err = check_staged(st, c);
    store_detach(st, "stg");
    if (err)
        goto bad;
    /* Checked: it becomes a snapshot file under its final name before the install commits.
     * If the install then fails, the file is unreferenced and removed later; a file of the
     * same name it may replace holds the same index and term, hence the same state. */
    if (rename(recv, final) != 0) {
        return store_fail(st, errno_err(errno), "renaming %s to %s: %s", recv, final,
                          strerror(errno));
    }
    if ((err = store_fsync_path(st->dir, true)) != 0)
        return store_fail(st, err, "fsync of %s failed", st->dir);
    return store_attach(st, final, "stg");
bad:
    unlink(recv);
    return err ? err : STORE_ESNAPSHOT;
}

void store_snapshot_detach_staged(store_t *st)
{
    store_detach(st, "stg");
}

/* The ephemeral keys of the attached snapshot replace this node's: none in a file written
 * before schema 6. */
static int install_ephemeral(store_t *st)
{
    int64_t has = 0;
    int rc = staged_has_ephemeral(st, &has);
    if (rc != SQLITE_OK)
        return store_sqlite_err(st, rc, "read snapshot tables");
    st->eph_gen++;
    int err = store_exec(st, "DELETE FROM main.ephemeral;", "install snapshot ephemeral keys");
    if (err == 0 && has)
        err = store_exec(st,
                         "INSERT INTO main.ephemeral(key, owner, crc) SELECT e.key, e.owner,"
                         " electd_kv_crc(e.key, x'', e.owner, 0, 0) FROM stg.ephemeral e"
                         " JOIN stg.kv ON stg.kv.key = e.key;",
                         "install snapshot ephemeral keys");
    return err;
}

/* The elections of the attached snapshot replace this node's: none in a format-1 snapshot. */
static int install_elections(store_t *st)
{
    static const char clear[] = "DELETE FROM main.elections;"
                                "DELETE FROM main.election_tombstones;";
    static const char copy[] =
        "INSERT INTO main.elections(name, holder, token, since_index, since_unix_ms)"
        " SELECT name, holder, token, since_index, since_unix_ms FROM stg.elections;"
        "INSERT INTO main.election_tombstones(name, token)"
        " SELECT name, token FROM stg.election_tombstones;";
    int64_t fmt = 0;
    int rc = store_query_value(st, "PRAGMA stg.user_version", &fmt, NULL, 0);
    if (rc != SQLITE_OK)
        return store_sqlite_err(st, rc, "read snapshot format");
    int err = store_exec(st, clear, "install snapshot elections");
    if (err == 0 && fmt > STORE_SNAP_FORMAT_V1)
        err = store_exec(st, copy, "install snapshot elections");
    return err;
}

int store_snapshot_install_tx(store_t *st, const raft_snapshot_chunk_t *c)
{
    static const char replace[] =
        "DELETE FROM main.kv;"
        "INSERT INTO main.kv(key, value, create_rev, mod_rev, version, crc)"
        " SELECT key, value, create_rev, mod_rev, version,"
        " electd_kv_crc(key, value, create_rev, mod_rev, version) FROM stg.kv;"
        "DELETE FROM main.epochs;"
        "INSERT INTO main.epochs(term, leader, started_ms, idx)"
        " SELECT term, leader, started_ms, idx FROM stg.epochs;"
        "DELETE FROM main.log;"
        "DELETE FROM main.history;"
        "UPDATE main.sm SET applied_idx = (SELECT idx FROM stg.snap),"
        " history_from = (SELECT idx FROM stg.snap),"
        " applied_term = (SELECT term FROM stg.snap),"
        " conf_idx = (SELECT conf_idx FROM stg.snap), conf = (SELECT conf FROM stg.snap)"
        " WHERE id = 1;";
    uint8_t *blob = NULL;
    size_t len = 0;
    int err = store_exec(st, replace, "install snapshot");
    if (err == 0)
        err = install_elections(st);
    if (err == 0)
        err = install_ephemeral(st);
    if (err)
        return err;
    if ((err = store_conf_blob(st, &c->meta.conf, &blob, &len)) != 0)
        return err;
    sqlite3_stmt *s = st->stmt[STMT_SNAP_SET];
    sqlite3_bind_int64(s, 1, (int64_t)c->meta.index);
    sqlite3_bind_int64(s, 2, (int64_t)c->meta.term);
    sqlite3_bind_int64(s, 3, (int64_t)c->meta.size);
    if (blob)
        sqlite3_bind_blob(s, 4, blob, (int)len, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 4);
    err = store_step_done(st, s, "record snapshot metadata");
    /* A leader that never applied a CONF entry sends none in the file: the announced one is
     * then the latest configuration as of the snapshot. */
    if (!err && blob) {
        static const char fill[] = "UPDATE main.sm SET conf_idx = ?1, conf = ?2"
                                   " WHERE id = 1 AND conf IS NULL";
        sqlite3_stmt *f = NULL;
        int rc = sqlite3_prepare_v2(st->db, fill, -1, &f, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(f, 1, (int64_t)c->meta.index);
            sqlite3_bind_blob(f, 2, blob, (int)len, SQLITE_STATIC);
            rc = sqlite3_step(f);
            rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        }
        sqlite3_finalize(f);
        if (rc != SQLITE_OK)
            err = store_sqlite_err(st, rc, "record snapshot configuration");
    }
    free(blob);
    return err;
}

void store_snapshot_installed(store_t *st, const raft_snapshot_chunk_t *c)
{
    store_snapshot_close_fd(st);
    st->snap = c->meta;
    snap_name(st, st->snap_path, sizeof st->snap_path, c->meta.index, c->meta.term);
    st->applied_index = c->meta.index;
    st->applied_term = c->meta.term;
    st->history_count = 0; /* the install emptied it: complete from the snapshot on */
    st->history_from = c->meta.index;
    store_snapshot_cleanup(st);
}

/* ---- creating ---------------------------------------------------------------------------- */

/* Stamps the snapshot being written ("snapw") with its format: 1 while no election was ever
 * made (no election, no tombstone), so that a member not yet upgraded, which installs only
 * format 1, can still be caught up by a snapshot; the election tables it then ignores are
 * empty. Else STORE_SNAP_FORMAT. */
static int stamp_format(store_t *st)
{
    int64_t rows = 0;
    int rc = store_query_value(st,
                               "SELECT (SELECT count(*) FROM snapw.elections)"
                               " + (SELECT count(*) FROM snapw.election_tombstones)",
                               &rows, NULL, 0);
    if (rc != SQLITE_OK)
        return store_sqlite_err(st, rc, "count snapshot elections");
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA snapw.user_version = %d;",
             rows ? STORE_SNAP_FORMAT : STORE_SNAP_FORMAT_V1);
    return store_exec(st, sql, "stamp snapshot format");
}

/* Copies the state-machine tables into tmp (a new SQLite file, fsync'd), checking every row's
 * checksum, then renames it to final and fsyncs the directory. *size gets the file's size. */
int store_snapshot_write(store_t *st, const char *tmp, const char *final, uint64_t *size)
{
    unlink(tmp);
    /* The connection may not create files (electd.db must never be silently recreated), so
     * the snapshot file is created empty here; SQLite takes an empty file as a new database. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return store_fail(st, errno_err(errno), "cannot create %s: %s", tmp, strerror(errno));
    close(fd);

    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA snapw.journal_mode = OFF; PRAGMA snapw.synchronous = FULL;"
             "PRAGMA snapw.cache_size = -%d; PRAGMA snapw.application_id = %d;",
             STORE_CACHE_KIB, (int)STORE_SNAP_APP_ID);
    int err = store_attach(st, tmp, "snapw");
    if (err != 0)
        goto fail;
    if ((err = store_exec(st, pragmas, "prepare snapshot file")) != 0 ||
        (err = store_exec(st, "BEGIN", "begin snapshot")) != 0) {
        store_detach(st, "snapw");
        goto fail;
    }
    if ((err = store_exec(st, SNAP_TABLES, "copy state machine")) != 0 ||
        (err = store_kv_verify(st, "snapw.kv", "snapshot not taken")) != 0 ||
        (err = store_ephemeral_verify(st, "snapw.ephemeral", "snapshot not taken")) != 0 ||
        (err = stamp_format(st)) != 0 || (err = store_exec(st, "COMMIT", "commit snapshot")) != 0) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        store_detach(st, "snapw");
        goto fail;
    }
    store_detach(st, "snapw");

    struct stat sb;
    if ((err = store_fsync_path(tmp, false)) != 0 || stat(tmp, &sb) != 0) {
        err = store_fail(st, err ? err : STORE_EIO, "fsync of %s failed", tmp);
        goto fail;
    }
    if (rename(tmp, final) != 0) {
        err = store_fail(st, errno_err(errno), "renaming %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if ((err = store_fsync_path(st->dir, true)) != 0) {
        store_fail(st, err, "fsync of %s failed", st->dir);
        return err; /* renamed: the file is the snapshot now, whatever its directory entry */
    }
    *size = (uint64_t)sb.st_size;
    return 0;
fail:
    unlink(tmp);
    return err;
}

/* Records the new snapshot (index, term, size, configuration) in snapshot_meta. */
static int record_snapshot(store_t *st, const raft_conf_t *boot_conf, uint64_t index, uint64_t term,
                           uint64_t size, raft_conf_t *conf)
{
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    memset(conf, 0, sizeof *conf);
    int err = store_conf_get(st, conf, NULL);
    if (err == STORE_ENOTFOUND) {
        if (boot_conf)
            *conf = *boot_conf;
        err = 0;
    }
    if (err || (err = store_conf_blob(st, conf, &blob, &blob_len)) != 0)
        goto out;
    sqlite3_stmt *s = st->stmt[STMT_SNAP_SET];
    sqlite3_bind_int64(s, 1, (int64_t)index);
    sqlite3_bind_int64(s, 2, (int64_t)term);
    sqlite3_bind_int64(s, 3, (int64_t)size);
    if (blob)
        sqlite3_bind_blob(s, 4, blob, (int)blob_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 4);
    err = store_step_done(st, s, "record snapshot");
out:
    free(blob);
    return err;
}

int store_snapshot_create(store_t *st, const raft_conf_t *boot_conf, store_snapshot_info_t *info)
{
    char tmp[STORE_PATH_MAX], final[STORE_PATH_MAX];
    raft_conf_t conf;
    st->errmsg[0] = 0;
    memset(info, 0, sizeof *info);
    if (st->applied_index == 0)
        return store_fail(st, STORE_EINVAL, "nothing applied yet: no snapshot to take");
    /* At the snapshot's index the state machine is the snapshot: nothing to do, unless its
     * file went missing (removed by hand), which is then rebuilt from the same state. */
    if (st->applied_index == st->snap.index && access(st->snap_path, F_OK) == 0) {
        info->index = st->snap.index;
        info->term = st->snap.term;
        info->size = st->snap.size;
        return 0;
    }
    uint64_t index = st->applied_index, term = st->applied_term, size = 0;
    if (store_join(tmp, sizeof tmp, st->dir, STORE_SNAP_TMP_NAME) != 0 ||
        snap_name(st, final, sizeof final, index, term) != 0)
        return store_fail(st, STORE_EINVAL, "data directory path too long");
    int err = store_snapshot_write(st, tmp, final, &size);
    if (err == 0)
        err = record_snapshot(st, boot_conf, index, term, size, &conf);
    if (err != 0)
        return err;
    store_snapshot_close_fd(st);
    st->snap.index = index;
    st->snap.term = term;
    st->snap.size = size;
    st->snap.conf = conf;
    snprintf(st->snap_path, sizeof st->snap_path, "%s", final);
    store_snapshot_cleanup(st);
    info->index = index;
    info->term = term;
    info->size = size;
    return 0;
}

/* ---- reading ----------------------------------------------------------------------------- */

int store_snapshot_meta(store_t *st, raft_snapshot_meta_t *meta)
{
    *meta = st->snap;
    return 0;
}

const char *store_snapshot_path(const store_t *st)
{
    return st->snap_path;
}

static int snapshot_read(void *ctx, uint64_t index, uint64_t offset, void *buf, size_t len,
                         size_t *n)
{
    store_t *st = ctx;
    *n = 0;
    if (index == 0 || index != st->snap.index)
        return STORE_ESNAPSHOT;
    if (st->snap_fd < 0) {
        st->snap_fd = open(st->snap_path, O_RDONLY | O_CLOEXEC);
        if (st->snap_fd < 0)
            return store_fail(st, STORE_ESNAPSHOT, "cannot open snapshot %s: %s", st->snap_path,
                              strerror(errno));
    }
    if (offset >= st->snap.size)
        return 0;
    if (len > st->snap.size - offset)
        len = (size_t)(st->snap.size - offset);
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(st->snap_fd, (uint8_t *)buf + done, len - done, (off_t)(offset + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return store_fail(st, STORE_EIO, "reading snapshot %s: %s", st->snap_path,
                              strerror(errno));
        if (r == 0)
            return store_fail(st, STORE_ESNAPSHOT, "snapshot %s is shorter than recorded",
                              st->snap_path);
        done += (size_t)r;
    }
    *n = done;
    return 0;
}

void store_raft_storage(store_t *st, raft_storage_t *out)
{
    out->ctx = st;
    out->snapshot_read = snapshot_read;
}

void store_snapshot_cleanup_open(store_t *st)
{
    cleanup_temporaries(st);
    store_snapshot_cleanup(st);
}
