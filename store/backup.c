/* backup.c — online backups and restoring one into a new group. A backup is a snapshot file
 * (snapshot.c) written while the store runs; a restore stages a copy of it as a received
 * snapshot, with the new group's configuration, and installs it through store_save_ready, as if
 * a leader had sent it: the same checks, the same atomic install. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_int.h"

#define COPY_CHUNK (64u << 10)

int store_backup(store_t *st, int *fd, store_snapshot_info_t *info)
{
    char tmp[STORE_PATH_MAX], out[STORE_PATH_MAX];
    st->errmsg[0] = 0;
    *fd = -1;
    memset(info, 0, sizeof *info);
    if (st->applied_index == 0)
        return store_fail(st, STORE_EINVAL, "nothing applied yet: nothing to back up");
    if (store_join(tmp, sizeof tmp, st->dir, STORE_SNAP_TMP_NAME) != 0 ||
        store_join(out, sizeof out, st->dir, STORE_BACKUP_TMP_NAME) != 0)
        return store_fail(st, STORE_EINVAL, "data directory path too long");
    uint64_t size = 0;
    int err = store_snapshot_write(st, tmp, out, &size);
    if (err)
        return err;
    /* Open, then unlinked: the file lives as long as the caller reads it, and a crash leaves
     * nothing behind but a name that the next open removes. */
    *fd = open(out, O_RDONLY | O_CLOEXEC);
    int saved = errno;
    unlink(out);
    if (*fd < 0)
        return store_fail(st, STORE_EIO, "cannot open the backup %s: %s", out, strerror(saved));
    info->index = st->applied_index;
    info->term = st->applied_term;
    info->size = size;
    return 0;
}

/* Nothing was ever stored: no term, no entry, no snapshot, nothing applied. */
static int check_empty(store_t *st)
{
    int64_t term = 0;
    int rc = store_query_value(st, "SELECT term FROM hard_state WHERE id = 1", &term, NULL, 0);
    if (rc != SQLITE_OK)
        return store_sqlite_err(st, rc, "read hard state");
    if (term != 0 || st->last_index != 0 || st->snap.index != 0 || st->applied_index != 0)
        return store_fail(st, STORE_EINVAL,
                          "%s already holds Raft state (term %lld, last index %llu): a backup is "
                          "restored only into a new member's empty data directory",
                          st->path, (long long)term, (unsigned long long)st->last_index);
    return 0;
}

/* Copies the file at path to dst (created or truncated) and fsyncs it; *size its bytes. */
static int copy_file(store_t *st, const char *path, const char *dst, uint64_t *size)
{
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return store_fail(st, STORE_ECANTOPEN, "cannot open the backup %s: %s", path,
                          strerror(errno));
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    uint8_t *buf = malloc(COPY_CHUNK);
    int err = 0;
    *size = 0;
    if (out < 0 || !buf) {
        err = store_fail(st, out < 0 ? STORE_EIO : STORE_ENOMEM, "cannot create %s: %s", dst,
                         strerror(errno));
        goto out;
    }
    for (;;) {
        ssize_t r = read(in, buf, COPY_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = store_fail(st, STORE_EIO, "reading the backup %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        for (ssize_t done = 0; done < r;) {
            ssize_t w = write(out, buf + done, (size_t)(r - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                err = store_fail(st, errno == ENOSPC ? STORE_EFULL : STORE_EIO, "writing %s: %s",
                                 dst, strerror(errno));
                goto out;
            }
            done += w;
        }
        *size += (uint64_t)r;
    }
    if (fsync(out) != 0)
        err = store_fail(st, STORE_EIO, "fsync %s: %s", dst, strerror(errno));
out:
    free(buf);
    if (out >= 0)
        close(out);
    close(in);
    return err;
}

/* The staged copy ("rst") is a backup: reads its index, its term (the highest of the last
 * applied entry's and every epoch's) and makes conf its configuration. */
static int stage_conf(store_t *st, const char *path, const raft_conf_t *conf, uint64_t *index,
                      uint64_t *term, uint64_t *hs_term)
{
    int64_t app = 0, idx = 0, t = 0, top = 0;
    int rc = store_query_value(st, "PRAGMA rst.application_id", &app, NULL, 0);
    if (rc == SQLITE_OK && app == STORE_APP_ID)
        return store_fail(st, STORE_ESNAPSHOT,
                          "%s is a member's database, not a backup: take one with `electd backup "
                          "FILE` from a running member",
                          path);
    if (rc != SQLITE_OK || app != STORE_SNAP_APP_ID)
        return store_fail(st, STORE_ESNAPSHOT,
                          "%s is not an electd backup (`electd backup FILE` writes one)", path);
    if ((rc = store_query_value(st, "SELECT idx FROM rst.snap", &idx, NULL, 0)) != SQLITE_OK ||
        (rc = store_query_value(st, "SELECT term FROM rst.snap", &t, NULL, 0)) != SQLITE_OK ||
        (rc = store_query_value(st, "SELECT coalesce(max(term), 0) FROM rst.epochs", &top, NULL,
                                0)) != SQLITE_OK ||
        idx <= 0 || t <= 0)
        return store_fail(st, STORE_ESNAPSHOT, "%s is a damaged electd backup (%s)", path,
                          rc != SQLITE_OK ? sqlite3_errmsg(st->db) : "no index or term");
    uint8_t *blob = NULL;
    size_t len = 0;
    int err = store_exec(st, "PRAGMA rst.journal_mode = OFF", "stage the backup"); /* a copy */
    if (err == 0)
        err = store_conf_blob(st, conf, &blob, &len);
    sqlite3_stmt *s = NULL;
    if (err == 0) {
        rc = sqlite3_prepare_v2(st->db, "UPDATE rst.snap SET conf_idx = idx, conf = ?1", -1, &s,
                                NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_blob(s, 1, blob, (int)len, SQLITE_STATIC);
            rc = sqlite3_step(s);
        }
        if (rc != SQLITE_DONE && rc != SQLITE_OK)
            err = store_sqlite_err(st, rc, "set the restored configuration");
    }
    sqlite3_finalize(s);
    free(blob);
    *index = (uint64_t)idx;
    *term = (uint64_t)t;
    *hs_term = (uint64_t)(top > t ? top : t);
    return err;
}

int store_restore(store_t *st, const char *path, const raft_conf_t *conf,
                  store_snapshot_info_t *info)
{
    char recv[STORE_PATH_MAX];
    st->errmsg[0] = 0;
    memset(info, 0, sizeof *info);
    if (!path || !conf || conf->n == 0)
        return store_fail(st, STORE_EINVAL, "a restore needs the backup and the new membership");
    if (store_join(recv, sizeof recv, st->dir, STORE_SNAP_RECV_NAME) != 0)
        return store_fail(st, STORE_EINVAL, "data directory path too long");
    uint64_t size = 0, index = 0, term = 0, hs_term = 0;
    int err = check_empty(st);
    if (err == 0)
        err = copy_file(st, path, recv, &size);
    if (err == 0)
        err = store_attach(st, recv, "rst");
    if (err == 0) {
        err = stage_conf(st, path, conf, &index, &term, &hs_term);
        store_detach(st, "rst");
    }
    struct stat sb;
    if (err == 0 && (stat(recv, &sb) != 0 || (err = store_fsync_path(recv, false)) != 0))
        err = store_fail(st, STORE_EIO, "staging the backup in %s failed", recv);
    if (err) {
        unlink(recv);
        return err;
    }
    /* The staged file is now what a leader would have sent: install it the same way. */
    raft_snapshot_chunk_t c = {
        .meta = {.index = index, .term = term, .size = (uint64_t)sb.st_size, .conf = *conf},
        .offset = (uint64_t)sb.st_size,
        .last = true};
    raft_ready_t rd = {
        .hs_changed = true, .hs = {.term = hs_term, .vote = 0, .commit = index}, .chunk = &c};
    if ((err = store_save_ready(st, &rd)) != 0) {
        unlink(recv);
        return err;
    }
    info->index = index;
    info->term = term;
    info->size = (uint64_t)sb.st_size;
    return 0;
}
