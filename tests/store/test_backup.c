/* test_backup.c — the checksum of every KV row (a value changed behind electd's back is refused
 * on every path that would serve or replicate it, and counted), online backups and restoring
 * one into a new, empty store with the fencing tokens and revisions carried on. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

static char dir[256];
static store_t *st;
static t_arena_t arena;

static void setup(void)
{
    t_mkdtemp(dir, sizeof dir);
    st = t_open(dir, NULL);
}

static void teardown(void)
{
    store_close(st);
    st = NULL;
    t_arena_free(&arena);
    t_rmdir(dir);
}

static void save_apply(store_t *s, uint64_t term, const raft_entry_t *e, size_t n)
{
    cr_assert_eq(t_save(s, term, e[n - 1].index, e, n), 0, "%s", store_errmsg(s));
    int rc = store_apply(s, e, n, NULL);
    cr_assert_eq(rc, 0, "apply: %s", store_errmsg(s));
}

/* Flips the first byte of key's stored value with sqlite3 on the closed database at path,
 * the way a disk or a hand could. */
static void flip_value(const char *path, const char *key)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT value FROM kv WHERE key = ?1", -1, &s, NULL),
                 SQLITE_OK);
    sqlite3_bind_blob(s, 1, key, (int)strlen(key), SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    uint8_t value[256];
    size_t n = (size_t)sqlite3_column_bytes(s, 0);
    cr_assert(n > 0 && n <= sizeof value);
    memcpy(value, sqlite3_column_blob(s, 0), n);
    sqlite3_finalize(s);
    value[0] ^= 0x01;
    cr_assert_eq(sqlite3_prepare_v2(db, "UPDATE kv SET value = ?2 WHERE key = ?1", -1, &s, NULL),
                 SQLITE_OK);
    sqlite3_bind_blob(s, 1, key, (int)strlen(key), SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, value, (int)n, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(s), SQLITE_DONE, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(s);
    cr_assert_eq(sqlite3_changes(db), 1);
    sqlite3_close(db);
}

/* noop (term 3), a, b, c: applied to index 4 */
static void fill(store_t *s)
{
    raft_conf_t c3 = t_conf3();
    raft_entry_t e[5] = {t_noop(&arena, 1, 3, 1, 1000), t_put(&arena, 2, 3, "a", "alpha", NULL),
                         t_put(&arena, 3, 3, "b", "bravo", NULL),
                         t_put(&arena, 4, 3, "c", "charlie", NULL), t_conf(&arena, 5, 3, &c3)};
    save_apply(s, 3, e, 5);
}

TestSuite(store_checksum, .init = setup, .fini = teardown);

Test(store_checksum, a_value_changed_on_disk_is_refused_everywhere_and_counted)
{
    fill(st);
    store_close(st);
    char path[4200];
    snprintf(path, sizeof path, "%s/electd.db", dir);
    flip_value(path, "b");
    st = t_open(dir, NULL); /* the open-time integrity check cannot see it */

    store_kv_t kv;
    cr_assert_eq(store_kv_get(st, "a", 1, &kv), 0);
    store_kv_clear(&kv);
    cr_assert_eq(store_corrupt_values(st), 0);
    cr_assert_eq(store_kv_get(st, "b", 1, &kv), STORE_ECHECKSUM);
    cr_assert_null(kv.value, "nothing handed out");
    cr_assert(strstr(store_errmsg(st), "\"b\"") != NULL, "%s", store_errmsg(st));
    size_t len = 0;
    const char *key = store_corrupt_key(st, &len);
    cr_assert(len == 1 && key && key[0] == 'b');
    cr_assert_eq(store_corrupt_values(st), 1);

    store_kv_t *items = NULL;
    size_t n = 0;
    cr_assert_eq(store_kv_list(st, "", 0, NULL, 0, 0, &items, &n, NULL), STORE_ECHECKSUM);
    cr_assert_eq(n, 0);
    cr_assert_null(items);
    cr_assert_eq(store_kv_list(st, "c", 1, NULL, 0, 0, &items, &n, NULL), 0, "other rows serve");
    cr_assert_eq(n, 1);
    store_kv_list_free(items, n);
    cr_assert_eq(store_corrupt_values(st), 2);

    /* never replicated: no snapshot, no backup holds it */
    store_snapshot_info_t info;
    cr_assert_eq(store_snapshot_create(st, NULL, &info), STORE_ECHECKSUM);
    raft_snapshot_meta_t meta;
    store_snapshot_meta(st, &meta);
    cr_assert_eq(meta.index, 0);
    int fd = -1;
    cr_assert_eq(store_backup(st, &fd, &info), STORE_ECHECKSUM);
    cr_assert_eq(fd, -1);
    cr_assert_eq(store_corrupt_values(st), 4);

    /* overwriting the key repairs it */
    raft_entry_t e = t_put(&arena, 6, 3, "b", "bravo2", NULL);
    save_apply(st, 3, &e, 1);
    cr_assert_eq(store_kv_get(st, "b", 1, &kv), 0);
    cr_assert_str_eq((char *)kv.value, "bravo2");
    store_kv_clear(&kv);
    cr_assert_eq(store_snapshot_create(st, NULL, &info), 0, "%s", store_errmsg(st));
}

Test(store_checksum, a_received_snapshot_with_a_changed_value_is_discarded)
{
    fill(st);
    store_snapshot_info_t info;
    cr_assert_eq(store_snapshot_create(st, NULL, &info), 0, "%s", store_errmsg(st));
    flip_value(store_snapshot_path(st), "a");
    size_t len = 0;
    uint8_t *bytes = t_snapshot_bytes(st, &len);
    raft_snapshot_meta_t meta;
    store_snapshot_meta(st, &meta);

    char d2[256];
    t_mkdtemp(d2, sizeof d2);
    store_t *to = t_open(d2, NULL);
    cr_assert_eq(t_send_chunks(to, bytes, len, meta, 1 << 20, NULL, 0), STORE_ESNAPSHOT);
    cr_assert(strstr(store_errmsg(to), "checksum") != NULL, "%s", store_errmsg(to));
    cr_assert_eq(store_applied_index(to), 0, "nothing installed");
    free(bytes);
    store_close(to);
    t_rmdir(d2);
}

/* ---- backup and restore ------------------------------------------------------------------- */

TestSuite(store_backup, .init = setup, .fini = teardown);

/* Copies an open backup descriptor into path. */
static void save_backup(int fd, const char *path)
{
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(out, 0);
    char buf[4096];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        cr_assert_eq(write(out, buf, (size_t)r), r);
    cr_assert_eq(r, 0);
    close(out);
    close(fd);
}

static raft_conf_t new_group(void)
{
    raft_conf_t c;
    memset(&c, 0, sizeof c);
    c.n = 1;
    c.members[0].id = T_NODE;
    c.members[0].voter = 1;
    snprintf(c.members[0].addr, RAFT_ADDR_MAX, "n7=127.0.0.1:7100");
    return c;
}

Test(store_backup, restores_into_a_new_store_with_tokens_and_revisions_rising)
{
    fill(st);
    raft_entry_t e[2] = {t_noop(&arena, 6, 5, 2, 2000),
                         t_assign(&arena, 7, 5, "binlog-a", 2, 0, 1700000000001ull)};
    save_apply(st, 5, e, 2);
    int fd = -1;
    store_snapshot_info_t info;
    cr_assert_eq(store_backup(st, &fd, &info), 0, "%s", store_errmsg(st));
    cr_assert_eq(info.index, 7);
    cr_assert_eq(info.term, 5);
    char file[300];
    snprintf(file, sizeof file, "%s.backup", dir);
    save_backup(fd, file);

    char d2[256];
    t_mkdtemp(d2, sizeof d2);
    store_t *to = t_open(d2, NULL);
    raft_conf_t conf = new_group();
    cr_assert_eq(store_restore(to, file, &conf, &info), 0, "%s", store_errmsg(to));
    cr_assert_eq(info.index, 7);
    store_close(to);
    to = t_open(d2, NULL); /* durable */
    raft_boot_t b;
    cr_assert_eq(store_boot_load(to, &b), 0);
    cr_assert_eq(b.snap.index, 7);
    cr_assert_eq(b.snap.term, 5);
    cr_assert_eq(b.snap.conf.n, 1, "the new group's membership, not the backup's");
    cr_assert_eq(b.snap.conf.members[0].id, T_NODE);
    cr_assert_geq(b.hs.term, 5, "the next leader's term exceeds every epoch of the backup");
    cr_assert_eq(b.n_entries, 0);
    store_boot_free(to, &b);
    raft_conf_t got;
    cr_assert_eq(store_conf_get(to, &got, NULL), 0);
    cr_assert_eq(got.n, 1);
    store_kv_t kv;
    cr_assert_eq(store_kv_get(to, "c", 1, &kv), 0);
    cr_assert_str_eq((char *)kv.value, "charlie");
    cr_assert_eq(kv.mod_revision, 4);
    store_kv_clear(&kv);
    store_election_t el;
    cr_assert_eq(store_election_get(to, "binlog-a", &el), 0);
    cr_assert_eq(el.token, 1);

    /* the new group's first term and write continue the sequences */
    raft_entry_t next[3] = {t_noop(&arena, 8, 6, T_NODE, 3000),
                            t_put(&arena, 9, 6, "c", "delta", &(store_cond_t){.fence = 6}),
                            t_assign(&arena, 10, 6, "binlog-a", T_NODE, 1, 1700000000002ull)};
    cr_assert_eq(t_save(to, 6, 10, next, 3), 0, "%s", store_errmsg(to));
    store_result_t r[3];
    cr_assert_eq(store_apply(to, next, 3, r), 0, "%s", store_errmsg(to));
    cr_assert_eq(r[1].status, STORE_APPLIED_OK);
    cr_assert_eq(r[1].mod_revision, 9);
    cr_assert_eq(r[1].version, 2);
    cr_assert_eq(r[2].token, 2);
    /* and it snapshots with its own membership */
    cr_assert_eq(store_snapshot_create(to, NULL, &info), 0, "%s", store_errmsg(to));
    store_close(to);
    t_rmdir(d2);
    unlink(file);
}

Test(store_backup, restore_refuses_a_used_store_and_files_that_are_not_backups)
{
    fill(st);
    int fd = -1;
    store_snapshot_info_t info;
    cr_assert_eq(store_backup(st, &fd, &info), 0, "%s", store_errmsg(st));
    char file[300];
    snprintf(file, sizeof file, "%s.backup", dir);
    save_backup(fd, file);
    raft_conf_t conf = new_group();
    cr_assert_eq(store_restore(st, file, &conf, &info), STORE_EINVAL, "not empty");
    cr_assert(strstr(store_errmsg(st), "already holds") != NULL, "%s", store_errmsg(st));

    char d2[256], db[4200];
    t_mkdtemp(d2, sizeof d2);
    store_t *to = t_open(d2, NULL);
    snprintf(db, sizeof db, "%s/electd.db", dir);
    cr_assert_eq(store_restore(to, db, &conf, &info), STORE_ESNAPSHOT);
    cr_assert(strstr(store_errmsg(to), "not a backup") != NULL, "%s", store_errmsg(to));
    cr_assert_eq(store_restore(to, "/nonexistent/backup", &conf, &info), STORE_ECANTOPEN);
    cr_assert_eq(store_restore(to, file, &conf, &info), 0, "a refused restore changed nothing: %s",
                 store_errmsg(to));
    store_close(to);
    t_rmdir(d2);
    unlink(file);
}
