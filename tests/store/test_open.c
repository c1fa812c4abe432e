/* test_open.c — opening electd.db: a new directory is initialised and stamped; every file that
 * is not this node's intact database is refused with the right code and a message that says
 * what to do, and is left byte-for-byte unchanged. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

static char dir[256], path[4200];

static void setup(void)
{
    t_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/electd.db", dir);
}

static void teardown(void)
{
    t_rmdir(dir);
}

TestSuite(store_open, .init = setup, .fini = teardown);

static int try_open(const char *cluster, uint64_t node, char *err, size_t cap)
{
    store_opts_t o = {.cluster_id = cluster, .node_id = node, .busy_timeout_ms = 50};
    store_t *st = NULL;
    err[0] = 0;
    int rc = store_open(&st, dir, &o, err, cap);
    if (rc == 0) {
        cr_assert_not_null(st);
        store_close(st);
    } else {
        cr_assert_null(st);
    }
    return rc;
}

/* A checksum of the file's bytes, to prove a refusal changed nothing. */
static uint64_t file_sum(const char *p)
{
    FILE *f = fopen(p, "rb");
    cr_assert_not_null(f, "%s", p);
    uint64_t h = 1469598103934665603ull;
    int c;
    while ((c = fgetc(f)) != EOF)
        h = (h ^ (uint64_t)c) * 1099511628211ull;
    fclose(f);
    return h;
}

static void write_file(const char *p, const void *data, size_t len)
{
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* A database of this node with some rows in it, closed. */
static void make_db(int keys)
{
    store_t *st = t_open(dir, NULL);
    t_arena_t a = {0};
    raft_entry_t *e = calloc((size_t)keys, sizeof *e);
    for (int i = 0; i < keys; i++) {
        char k[32], v[64];
        snprintf(k, sizeof k, "key/%06d", i);
        snprintf(v, sizeof v, "some value that fills pages %d", i);
        e[i] = t_put(&a, (uint64_t)i + 1, 1, k, v, NULL);
    }
    cr_assert_eq(t_save(st, 1, (uint64_t)keys, e, (size_t)keys), 0);
    cr_assert_eq(store_apply(st, e, (size_t)keys, NULL), 0);
    store_close(st);
    free(e);
    t_arena_free(&a);
}

static void sql(const char *stmt)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, stmt, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
}

Test(store_open, new_directory_is_created_stamped_and_reopens)
{
    char sub[300], err[STORE_ERRMSG_MAX];
    snprintf(sub, sizeof sub, "%s/node", dir);
    store_opts_t o = {.cluster_id = T_CLUSTER, .node_id = T_NODE};
    store_t *st = NULL;
    cr_assert_eq(store_open(&st, sub, &o, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(store_errmsg(st), "");
    char p[400];
    snprintf(p, sizeof p, "%s/electd.db.init", sub);
    cr_assert_neq(access(p, F_OK), 0, "no temporary file is left behind");
    store_close(st);
    cr_assert_eq(store_open(&st, sub, &o, err, sizeof err), 0, "%s", err);
    store_close(st);
    snprintf(p, sizeof p, "%s/electd.db", sub);
    unlink(p);
    rmdir(sub);
}

Test(store_open, invalid_options_are_refused)
{
    char err[STORE_ERRMSG_MAX];
    cr_assert_eq(try_open("", 1, err, sizeof err), STORE_EINVAL);
    cr_assert(strstr(err, "cluster id"));
    cr_assert_eq(try_open(T_CLUSTER, 0, err, sizeof err), STORE_EINVAL);
    cr_assert(strstr(err, "node id"));
    static char longid[STORE_CLUSTER_ID_MAX + 2];
    memset(longid, 'c', sizeof longid - 1);
    cr_assert_eq(try_open(longid, 1, err, sizeof err), STORE_EINVAL);
    cr_assert_neq(access(path, F_OK), 0, "nothing was created");
}

Test(store_open, unreachable_directory_is_refused)
{
    char err[STORE_ERRMSG_MAX];
    store_opts_t o = {.cluster_id = T_CLUSTER, .node_id = 1};
    store_t *st = NULL;
    cr_assert_eq(store_open(&st, "/nonexistent-electd-parent/x", &o, err, sizeof err),
                 STORE_ECANTOPEN);
    cr_assert(strstr(err, "cannot create data directory"), "%s", err);
}

Test(store_open, another_cluster_is_refused)
{
    make_db(10);
    uint64_t sum = file_sum(path);
    char err[STORE_ERRMSG_MAX];
    cr_assert_eq(try_open("other-cluster", T_NODE, err, sizeof err), STORE_ECLUSTER);
    cr_assert(strstr(err, "belongs to cluster \"" T_CLUSTER "\""), "%s", err);
    cr_assert(strstr(err, "--data-dir"), "%s", err);
    cr_assert_eq(file_sum(path), sum);
    cr_assert_eq(try_open(T_CLUSTER, T_NODE, err, sizeof err), 0, "%s", err);
}

Test(store_open, another_node_is_refused)
{
    make_db(10);
    uint64_t sum = file_sum(path);
    char err[STORE_ERRMSG_MAX];
    cr_assert_eq(try_open(T_CLUSTER, T_NODE + 1, err, sizeof err), STORE_ENODE);
    cr_assert(strstr(err, "belongs to node 7, not node 8"), "%s", err);
    cr_assert_eq(file_sum(path), sum);
}

Test(store_open, non_sqlite_file_is_refused)
{
    const char text[] = "this is a config file, not a database\n"
                        "....................................................................\n";
    write_file(path, text, sizeof text);
    uint64_t sum = file_sum(path);
    char err[STORE_ERRMSG_MAX];
    cr_assert_eq(try_open(T_CLUSTER, T_NODE, err, sizeof err), STORE_ENOTDB);
    cr_assert(strstr(err, "not a SQLite database"), "%s", err);
    cr_assert(strstr(err, "move it away"), "%s", err);
    cr_assert_eq(file_sum(path), sum);
}

Test(store_open, empty_file_is_refused_not_initialised)
{
    write_file(path, "", 0);
    char err[STORE_ERRMSG_MAX];
    cr_assert_eq(try_open(T_CLUSTER, T_NODE, err, sizeof err), STORE_ENOTDB);
    cr_assert(strstr(err, "is empty"), "%s", err);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_size, 0);
}

Test(store_open, foreign_sqlite_database_is_refused)
{
    sql("CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users VALUES (1,'a');");
    uint64_t sum = file_sum(path);
    char err[STORE_ERRMSG_MAX];
    cr_assert_eq(try_open(T_CLUSTER, T_NODE, err, sizeof err), STORE_EFOREIGN);
    cr_assert(strstr(err, "not electd's"), "%s", err);
    cr_assert_eq(file_sum(path), sum);
}

Test(store_open, newer_schema_is_refused)
{
    make_db(1);
    sql("PRAGMA user_version = 99;");
    uint64_t sum = file_sum(path);
    char err[STORE_ERRMSG_MAX];
    cr_assert_eq(try_open(T_CLUSTER, T_NODE, err, sizeof err), STORE_ESCHEMA);
    cr_assert(strstr(err, "schema version 99"), "%s", err);
    cr_assert(strstr(err, "newer electd"), "%s", err);
    cr_assert_eq(file_sum(path), sum);
}

Test(store_open, damaged_pages_are_refused)
{
    make_db(3000);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_gt(sb.st_size, 16 * 4096);
    int fd = open(path, O_WRONLY);
    char junk[4096];
    memset(junk, 0x5a, sizeof junk);
    cr_assert_eq(pwrite(fd, junk, sizeof junk, (sb.st_size / 4096 / 2) * 4096), 4096);
    close(fd);
    char err[STORE_ERRMSG_MAX];
    cr_assert_eq(try_open(T_CLUSTER, T_NODE, err, sizeof err), STORE_ECORRUPT);
    cr_assert(strstr(err, "corrupt"), "%s", err);
    cr_assert(strstr(err, "backup"), "%s", err);
}

Test(store_open, truncated_file_is_refused)
{
    make_db(3000);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(truncate(path, sb.st_size / 2), 0);
    char err[STORE_ERRMSG_MAX];
    cr_assert_eq(try_open(T_CLUSTER, T_NODE, err, sizeof err), STORE_ECORRUPT, "%s", err);
}

Test(store_open, damaged_schema_page_is_refused)
{
    make_db(10);
    int fd = open(path, O_WRONLY);
    char junk[1024];
    memset(junk, 0xee, sizeof junk);
    cr_assert_eq(pwrite(fd, junk, sizeof junk, 4096 - 1024), (ssize_t)sizeof junk); /* schema */
    close(fd);
    char err[STORE_ERRMSG_MAX];
    int rc = try_open(T_CLUSTER, T_NODE, err, sizeof err);
    cr_assert(rc == STORE_ECORRUPT || rc == STORE_ENOTDB, "%s: %s", store_strerror(rc), err);
    cr_assert(strlen(err) > 20);
}

Test(store_open, second_process_on_the_same_directory_is_refused)
{
    store_t *st = t_open(dir, NULL);
    char err[STORE_ERRMSG_MAX];
    cr_assert_eq(try_open(T_CLUSTER, T_NODE, err, sizeof err), STORE_EBUSY);
    cr_assert(strstr(err, "another electd"), "%s", err);
    store_close(st);
    cr_assert_eq(try_open(T_CLUSTER, T_NODE, err, sizeof err), 0, "%s", err);
}

Test(store_open, leftover_temporary_files_are_removed)
{
    make_db(1);
    const char *names[] = {"snapshot.tmp", "snapshot.recv", "snapshot-99-9.db"};
    char p[400];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        write_file(p, "junk", 4);
    }
    char err[STORE_ERRMSG_MAX];
    cr_assert_eq(try_open(T_CLUSTER, T_NODE, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        cr_assert_neq(access(p, F_OK), 0, "%s must be removed", names[i]);
    }
}

Test(store_open, strerror_covers_every_code)
{
    for (int e = -1; e >= STORE_EINTERNAL; e--)
        cr_assert_str_neq(store_strerror(e), "unknown error", "code %d", e);
    cr_assert_str_eq(store_strerror(-1000), "unknown error");
}
