/* test_ephemeral.c — ephemeral keys in the store: an ephemeral PUT binds the key to its owner,
 * a plain PUT or a DEL unbinds it, reads show the owner, the leader's queries find a member's
 * keys, the binding survives a reopen and travels in snapshots and backups, and the command's
 * encoding is refused where it is not canonical (a member that does not know it never applies
 * it as a plain PUT). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

static char dir[256];
static t_arena_t arena;

static void setup(void)
{
    t_mkdtemp(dir, sizeof dir);
}

static void teardown(void)
{
    t_arena_free(&arena);
    t_rmdir(dir);
}

TestSuite(store_ephemeral, .init = setup, .fini = teardown);

static void commit(store_t *st, raft_entry_t *e, size_t n, store_result_t *res)
{
    cr_assert_eq(t_save(st, 1, e[n - 1].index, e, n), 0, "%s", store_errmsg(st));
    cr_assert_eq(store_apply(st, e, n, res), 0, "%s", store_errmsg(st));
}

/* Runs sql on the SQLite file at path with the sqlite3 shell (the store must be closed). */
static void sqlite_on(const char *path, const char *sql)
{
    char cmd[STORE_PATH_MAX + 128];
    snprintf(cmd, sizeof cmd, "sqlite3 '%s' '%s'", path, sql);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static uint64_t owner_of(store_t *st, const char *key)
{
    store_kv_t kv;
    int rc = store_kv_get(st, key, strlen(key), &kv);
    cr_assert_eq(rc, 0, "get %s: %s", key, store_strerror(rc));
    uint64_t o = kv.owner;
    store_kv_clear(&kv);
    return o;
}

/* The keys of owner, joined with ',' into out. */
static void keys_of(store_t *st, uint64_t owner, char *out, size_t cap)
{
    store_kv_t *items = NULL;
    size_t n = 0;
    cr_assert_eq(store_ephemeral_list(st, owner, 0, &items, &n), 0, "%s", store_errmsg(st));
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(items[i].owner, owner);
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "," : "", items[i].key);
    }
    store_kv_list_free(items, n);
}

/* Writes, at indexes 1..6: a, b ephemeral of member 2, c of member 3, d plain; then b plain
 * again and c deleted. */
static void populate(store_t *st)
{
    raft_entry_t e[6] = {t_put_ephemeral(&arena, 1, 1, "svc/a", "10.0.0.2", 2, NULL),
                         t_put_ephemeral(&arena, 2, 1, "svc/b", "x", 2, NULL),
                         t_put_ephemeral(&arena, 3, 1, "svc/c", "y", 3, NULL),
                         t_put(&arena, 4, 1, "svc/d", "z", NULL),
                         t_put(&arena, 5, 1, "svc/b", "plain now", NULL),
                         t_del(&arena, 6, 1, "svc/c", NULL)};
    store_result_t r[6];
    commit(st, e, 6, r);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(r[i].status, STORE_APPLIED_OK, "entry %d: %s", i + 1,
                     store_status_name(r[i].status));
}

Test(store_ephemeral, a_plain_put_or_a_delete_unbinds_the_key)
{
    store_t *st = t_open(dir, NULL);
    populate(st);
    cr_assert_eq(owner_of(st, "svc/a"), 2);
    cr_assert_eq(owner_of(st, "svc/b"), 0, "a plain PUT makes the key an ordinary one");
    cr_assert_eq(owner_of(st, "svc/d"), 0);
    char keys[256];
    keys_of(st, 2, keys, sizeof keys);
    cr_assert_str_eq(keys, "svc/a");
    keys_of(st, 3, keys, sizeof keys);
    cr_assert_str_eq(keys, "", "a deleted key is nobody's");
    uint64_t ids[4];
    size_t n = 0;
    bool more = true;
    cr_assert_eq(store_ephemeral_owners(st, ids, 4, &n, &more), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(ids[0], 2);
    cr_assert_not(more);

    /* the listing shows the owner too */
    store_kv_t *items = NULL;
    size_t cnt = 0;
    cr_assert_eq(store_kv_list(st, "svc/", 4, NULL, 0, 0, &items, &cnt, NULL), 0);
    cr_assert_eq(cnt, 3);
    cr_assert_eq(items[0].owner, 2);
    cr_assert_eq(items[1].owner, 0);
    cr_assert_eq(items[2].owner, 0);
    store_kv_list_free(items, cnt);

    /* an ephemeral PUT by another member rebinds it; the CAS delete the leader uses removes it */
    raft_entry_t f = t_put_ephemeral(&arena, 7, 1, "svc/a", "10.0.0.9", 3, NULL);
    store_result_t r;
    commit(st, &f, 1, &r);
    cr_assert_eq(owner_of(st, "svc/a"), 3);
    store_cond_t stale = {.has_if_match = true, .if_match = 1};
    raft_entry_t g = t_del(&arena, 8, 1, "svc/a", &stale);
    commit(st, &g, 1, &r);
    cr_assert_eq(r.status, STORE_APPLIED_CONFLICT, "a rewritten key is not deleted");
    store_cond_t cur = {.has_if_match = true, .if_match = 7};
    raft_entry_t h = t_del(&arena, 9, 1, "svc/a", &cur);
    commit(st, &h, 1, &r);
    cr_assert_eq(r.status, STORE_APPLIED_OK);
    cr_assert_eq(store_ephemeral_owners(st, ids, 4, &n, NULL), 0);
    cr_assert_eq(n, 0);
    store_close(st);
}

/* The generation a reader keeps its owner list by: it moves with every change of a binding, and
 * not with writes of ordinary keys (an idle leader does not read the table again for those). */
Test(store_ephemeral, the_generation_moves_with_the_bindings_only)
{
    store_t *st = t_open(dir, NULL);
    uint64_t g0 = store_ephemeral_gen(st);
    cr_assert_neq(g0, 0);
    store_result_t r;
    raft_entry_t a = t_put(&arena, 1, 1, "plain", "1", NULL);
    commit(st, &a, 1, &r);
    cr_assert_eq(store_ephemeral_gen(st), g0, "an ordinary key is no binding");
    raft_entry_t b = t_put_ephemeral(&arena, 2, 1, "eph", "1", 2, NULL);
    commit(st, &b, 1, &r);
    uint64_t g1 = store_ephemeral_gen(st);
    cr_assert_gt(g1, g0, "a bind moves it");
    raft_entry_t c = t_del(&arena, 3, 1, "plain", NULL);
    commit(st, &c, 1, &r);
    cr_assert_eq(store_ephemeral_gen(st), g1);
    raft_entry_t d = t_put(&arena, 4, 1, "eph", "2", NULL);
    commit(st, &d, 1, &r);
    cr_assert_gt(store_ephemeral_gen(st), g1, "an unbind moves it");
    store_close(st);
}

Test(store_ephemeral, the_binding_survives_a_reopen_and_travels_in_a_snapshot)
{
    store_t *st = t_open(dir, NULL);
    populate(st);
    uint64_t before = t_digest(st);
    store_close(st);
    st = t_open(dir, NULL);
    cr_assert_eq(t_digest(st), before);
    cr_assert_eq(owner_of(st, "svc/a"), 2);

    store_snapshot_info_t si;
    cr_assert_eq(store_snapshot_create(st, NULL, &si), 0, "%s", store_errmsg(st));
    raft_snapshot_meta_t meta;
    store_snapshot_meta(st, &meta);
    meta.conf = t_conf3();
    size_t len;
    uint8_t *bytes = t_snapshot_bytes(st, &len);
    char dir2[256];
    t_mkdtemp(dir2, sizeof dir2);
    store_t *f = t_open(dir2, NULL);
    /* the follower's own binding before the snapshot is replaced by the snapshot's */
    raft_entry_t e = t_put_ephemeral(&arena, 1, 1, "svc/zz", "old", 5, NULL);
    commit(f, &e, 1, NULL);
    uint64_t gen = store_ephemeral_gen(f);
    cr_assert_eq(t_send_chunks(f, bytes, len, meta, 4096, NULL, 0), 0, "%s", store_errmsg(f));
    cr_assert_gt(store_ephemeral_gen(f), gen, "an installed snapshot moves the generation");
    cr_assert_eq(owner_of(f, "svc/a"), 2);
    char keys[64];
    keys_of(f, 5, keys, sizeof keys);
    cr_assert_str_eq(keys, "");
    free(bytes);
    store_close(f);
    t_rmdir(dir2);

    /* a backup restored into a new group keeps the binding */
    int fd = -1;
    cr_assert_eq(store_backup(st, &fd, &si), 0, "%s", store_errmsg(st));
    char path[300], dir3[256];
    t_mkdtemp(dir3, sizeof dir3);
    snprintf(path, sizeof path, "%s/backup.db", dir3);
    FILE *out = fopen(path, "wb");
    cr_assert_not_null(out);
    char buf[4096];
    ssize_t got;
    while ((got = read(fd, buf, sizeof buf)) > 0)
        cr_assert_eq(fwrite(buf, 1, (size_t)got, out), (size_t)got);
    fclose(out);
    close(fd);
    char dir4[256];
    t_mkdtemp(dir4, sizeof dir4);
    store_t *r = t_open(dir4, NULL);
    raft_conf_t conf = t_conf3();
    cr_assert_eq(store_restore(r, path, &conf, &si), 0, "%s", store_errmsg(r));
    cr_assert_eq(owner_of(r, "svc/a"), 2);
    store_close(r);
    t_rmdir(dir4);
    t_rmdir(dir3);
    store_close(st);
}

Test(store_ephemeral, a_snapshot_without_the_table_installs_as_no_ephemeral_key)
{
    store_t *st = t_open(dir, NULL);
    populate(st);
    store_snapshot_info_t si;
    cr_assert_eq(store_snapshot_create(st, NULL, &si), 0, "%s", store_errmsg(st));
    raft_snapshot_meta_t meta;
    store_snapshot_meta(st, &meta);
    meta.conf = t_conf3();
    /* as a member before schema 6 writes it: no ephemeral table */
    char path[STORE_PATH_MAX];
    snprintf(path, sizeof path, "%s", store_snapshot_path(st));
    store_close(st);
    sqlite_on(path, "DROP TABLE ephemeral; VACUUM;");
    FILE *in = fopen(path, "rb");
    cr_assert_not_null(in);
    fseek(in, 0, SEEK_END);
    size_t len = (size_t)ftell(in);
    rewind(in);
    uint8_t *bytes = malloc(len);
    cr_assert_eq(fread(bytes, 1, len, in), len);
    fclose(in);
    meta.size = len;
    char dir2[256];
    t_mkdtemp(dir2, sizeof dir2);
    store_t *f = t_open(dir2, NULL);
    cr_assert_eq(t_send_chunks(f, bytes, len, meta, 4096, NULL, 0), 0, "%s", store_errmsg(f));
    cr_assert_eq(owner_of(f, "svc/a"), 0);
    free(bytes);
    store_close(f);
    t_rmdir(dir2);
}

Test(store_ephemeral, a_damaged_binding_fails_its_checksum)
{
    store_t *st = t_open(dir, NULL);
    populate(st);
    char path[STORE_PATH_MAX];
    snprintf(path, sizeof path, "%s", store_path(st));
    store_close(st);
    sqlite_on(path, "UPDATE ephemeral SET owner = 9;");
    st = t_open(dir, NULL);
    store_kv_t kv;
    cr_assert_eq(store_kv_get(st, "svc/a", 5, &kv), STORE_ECHECKSUM);
    store_snapshot_info_t si;
    cr_assert_eq(store_snapshot_create(st, NULL, &si), STORE_ECHECKSUM);
    store_close(st);
}

Test(store_ephemeral, the_encoding_is_canonical)
{
    uint8_t buf[STORE_CMD_MAX];
    size_t len = 0;
    cr_assert_eq(store_cmd_encode_put_ephemeral("k", 1, "v", 1, 0, NULL, buf, sizeof buf, &len),
                 STORE_EINVAL);
    store_cond_t c = {.fence = 4, .election = "db"};
    cr_assert_eq(store_cmd_encode_put_ephemeral("k", 1, "v", 1, 7, &c, buf, sizeof buf, &len), 0);
    store_cmd_t cmd;
    cr_assert_eq(store_cmd_decode(buf, len, &cmd), 0);
    cr_assert_eq(cmd.owner, 7);
    cr_assert_eq(cmd.cond.fence, 4);
    cr_assert_eq(cmd.name_len, 2);
    cr_assert_eq(memcmp(cmd.key, "k", 1), 0);
    cr_assert_eq(len, STORE_CMD_HEADER + STORE_CMD_EPHEMERAL_EXTRA + 1 + 2 + 1 + 1);
    /* owner 0, a truncated owner, the flag on a DEL: refused */
    cr_assert_eq(store_cmd_encode_put_ephemeral("k", 1, "v", 1, 7, NULL, buf, sizeof buf, &len), 0);
    uint8_t bad[64];
    memcpy(bad, buf, len);
    memset(bad + STORE_CMD_HEADER, 0, 8);
    cr_assert_eq(store_cmd_decode(bad, len, &cmd), STORE_ECMD);
    cr_assert_eq(store_cmd_decode(buf, STORE_CMD_HEADER + 4, &cmd), STORE_ECMD);
    cr_assert_eq(store_cmd_encode_del("k", 1, NULL, buf, sizeof buf, &len), 0);
    buf[3] |= 0x02;
    cr_assert_eq(store_cmd_decode(buf, len, &cmd), STORE_ECMD);
    /* a plain PUT decodes with no owner */
    cr_assert_eq(store_cmd_encode_put("k", 1, "v", 1, NULL, buf, sizeof buf, &len), 0);
    cr_assert_eq(store_cmd_decode(buf, len, &cmd), 0);
    cr_assert_eq(cmd.owner, 0);
}
