/* test_faults.c — disk faults: through a VFS shim, every write, sync or read an operation makes
 * is failed in turn (once, and persistently from then on), including SQLITE_FULL. Each failure
 * must return STORE_EIO / STORE_EFULL, leave the store's live view at the last committed state,
 * and after a restart show either that state or the operation's complete effect — never a part
 * of it; retrying once the disk is healthy must succeed. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "faultvfs.h"
#include "helpers.h"

#define MAX_AFTER 400 /* bound on the I/O calls one operation makes */

static char tmpl[256], work[256];
static t_arena_t arena;
static uint8_t *leader_snap; /* a snapshot at index 100 from another node, for installs */
static size_t leader_snap_len;
static raft_snapshot_meta_t leader_meta;

/* Template: 40 entries (term 1), commit 30, applied 20, snapshot at 10. Among the entries that
 * op_apply applies, election commands and a write fenced by an election. */
static void build_template(void)
{
    store_t *st = t_open(tmpl, NULL);
    raft_conf_t c = t_conf3();
    raft_entry_t e[40];
    e[0] = t_noop(&arena, 1, 1, 1, 1000);
    e[1] = t_conf(&arena, 2, 1, &c);
    for (uint64_t i = 3; i <= 40; i++) {
        char k[16], v[32];
        snprintf(k, sizeof k, "k%llu", (unsigned long long)(i % 7));
        snprintf(v, sizeof v, "value %llu", (unsigned long long)i);
        store_cond_t f = {.fence = 1}, fe = {.fence = 2, .election = "ea"};
        e[i - 1] = t_put(&arena, i, 1, k, v, i % 3 ? NULL : &f);
        if (i == 22 || i == 24)
            e[i - 1] = t_assign(&arena, i, 1, "ea", i / 2 - 10, i == 22 ? 0 : 1, 1234);
        else if (i == 25)
            e[i - 1] = t_put(&arena, i, 1, k, v, &fe);
        else if (i == 26)
            e[i - 1] = t_assign(&arena, i, 1, "eb", 3, 0, 1234);
        else if (i == 28)
            e[i - 1] = t_drop(&arena, i, 1, "eb", 1);
    }
    cr_assert_eq(t_save(st, 1, 30, e, 40), 0);
    cr_assert_eq(store_apply(st, e, 10, NULL), 0);
    store_snapshot_info_t si;
    cr_assert_eq(store_snapshot_create(st, NULL, &si), 0);
    cr_assert_eq(store_apply(st, e + 10, 10, NULL), 0);
    store_close(st);
}

static void build_leader_snapshot(void)
{
    char d[256];
    t_mkdtemp(d, sizeof d);
    store_opts_t o = {.cluster_id = T_CLUSTER, .node_id = 1};
    store_t *st = NULL;
    cr_assert_eq(store_open(&st, d, &o, NULL, 0), 0);
    raft_entry_t e[100];
    for (uint64_t i = 1; i <= 100; i++) {
        char k[16];
        snprintf(k, sizeof k, "leader/%llu", (unsigned long long)i);
        e[i - 1] = i == 1 ? t_noop(&arena, 1, 3, 1, 5) : t_put(&arena, i, 3, k, "v", NULL);
        if (i == 2 || i == 3)
            e[i - 1] = t_assign(&arena, i, 3, i == 2 ? "la" : "lb", 1, 0, 5);
        else if (i == 4)
            e[i - 1] = t_drop(&arena, i, 3, "lb", 1);
    }
    cr_assert_eq(t_save(st, 3, 100, e, 100), 0);
    cr_assert_eq(store_apply(st, e, 100, NULL), 0);
    store_snapshot_info_t si;
    raft_conf_t c = t_conf3();
    cr_assert_eq(store_snapshot_create(st, &c, &si), 0);
    store_snapshot_meta(st, &leader_meta);
    leader_snap = t_snapshot_bytes(st, &leader_snap_len);
    store_close(st);
    t_rmdir(d);
}

static void setup(void)
{
    cr_assert_eq(faultvfs_register(), 0);
    t_mkdtemp(tmpl, sizeof tmpl);
    t_mkdtemp(work, sizeof work);
    build_template();
    build_leader_snapshot();
}

static void teardown(void)
{
    faultvfs_disarm();
    t_rmdir(tmpl);
    t_rmdir(work);
    free(leader_snap);
    t_arena_free(&arena);
}

/* Replaces work/ with a copy of the template. */
static void copy_template(void)
{
    t_rmdir(work);
    cr_assert_eq(mkdir(work, 0700), 0);
    DIR *d = opendir(tmpl);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char from[600], to[600];
        snprintf(from, sizeof from, "%s/%s", tmpl, de->d_name);
        snprintf(to, sizeof to, "%s/%s", work, de->d_name);
        FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
        cr_assert(in && out);
        char buf[8192];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0)
            cr_assert_eq(fwrite(buf, 1, n, out), n);
        fclose(in);
        fclose(out);
    }
    closedir(d);
}

static store_t *open_work(void)
{
    return t_open(work, FAULTVFS_NAME);
}

/* ---- the operations ---------------------------------------------------------------------- */

typedef int (*op_fn)(store_t **st);

static int op_save(store_t **st)
{
    /* replaces the uncommitted 38..40 and appends up to 60, in term 2 */
    static raft_entry_t e[23];
    static t_arena_t a;
    if (!a.buf) {
        for (uint64_t i = 38; i <= 60; i++)
            e[i - 38] = t_put(&a, i, 2, "saved", "a longer value to fill some log pages", NULL);
    }
    return t_save(*st, 2, 30, e, 23);
}

static int op_apply(store_t **st)
{
    raft_boot_t b;
    int rc = store_boot_load(*st, &b);
    if (rc)
        return rc;
    /* entries 11..40 are in the log; apply 21..30 (and offer 19..20 again: skipped) */
    cr_assert_eq(b.entries[0].index, 11);
    rc = store_apply(*st, b.entries + 8, 12, NULL);
    store_boot_free(*st, &b);
    return rc;
}

static int op_snapshot(store_t **st)
{
    store_snapshot_info_t si;
    return store_snapshot_create(*st, NULL, &si);
}

static int op_compact(store_t **st)
{
    return store_log_compact(*st, 10);
}

static int op_local(store_t **st)
{
    return store_local_set(*st, "last_role", "primary", 7);
}

static int op_install(store_t **st)
{
    static raft_entry_t next;
    static t_arena_t a;
    if (!a.buf)
        next = t_put(&a, leader_meta.index + 1, 3, "after", "install", NULL);
    return t_send_chunks(*st, leader_snap, leader_snap_len, leader_meta, 8192, &next, 1);
}

static int op_open(store_t **st)
{
    store_close(*st);
    *st = NULL;
    store_opts_t o = {.cluster_id = T_CLUSTER, .node_id = T_NODE, .vfs = FAULTVFS_NAME};
    static char err[STORE_ERRMSG_MAX];
    int rc = store_open(st, work, &o, err, sizeof err);
    cr_assert(rc == 0 || strlen(err) > 0, "a refused open explains itself");
    return rc;
}

/* ---- the driver ---------------------------------------------------------------------------- */

static void run_faults(const char *name, op_fn op)
{
    /* the operation's complete effect, without faults */
    copy_template();
    store_t *st = open_work();
    uint64_t d0 = t_digest(st);
    cr_assert_eq(op(&st), 0, "%s without faults: %s", name, store_errmsg(st));
    uint64_t d1 = t_digest(st);
    store_close(st);

    const faultvfs_kind_t kinds[] = {FAULT_WRITE, FAULT_FULL, FAULT_SYNC, FAULT_READ};
    int failures = 0;
    for (size_t k = 0; k < 4; k++) {
        for (int persistent = 0; persistent < 2; persistent++) {
            int after;
            for (after = 0; after < MAX_AFTER; after++) {
                copy_template();
                st = open_work();
                faultvfs_arm(kinds[k], after, persistent);
                int rc = op(&st);
                faultvfs_disarm();
                int hits = faultvfs_hits();
                const char *kn = faultvfs_kind_name(kinds[k]);
                if (rc == 0) {
                    cr_assert_eq(t_digest(st), d1,
                                 "%s, %s fault after %d: success but wrong "
                                 "state",
                                 name, kn, after);
                    store_close(st);
                    if (hits == 0)
                        break; /* the operation makes no more such calls */
                    continue;
                }
                failures++;
                cr_assert_gt(hits, 0, "%s failed without a fault: %s", name, store_strerror(rc));
                int want = kinds[k] == FAULT_FULL ? STORE_EFULL : STORE_EIO;
                cr_assert_eq(rc, want, "%s, %s fault after %d: got %s (%s)", name, kn, after,
                             store_strerror(rc), st ? store_errmsg(st) : "");
                if (st) {
                    cr_assert_neq(store_errmsg(st)[0], 0, "a failure leaves a message");
                    cr_assert_eq(t_digest(st), d0,
                                 "%s, %s fault after %d: the live store "
                                 "changed",
                                 name, kn, after);
                    store_close(st);
                }
                /* the process restarts on a healthy disk */
                st = open_work();
                uint64_t d = t_digest(st);
                cr_assert(d == d0 || d == d1,
                          "%s, %s fault after %d%s: partial effect after "
                          "restart",
                          name, kn, after, persistent ? " (persistent)" : "");
                if (d == d0) {
                    rc = op(&st);
                    cr_assert_eq(rc, 0, "%s retry: %s", name, store_errmsg(st));
                    cr_assert_eq(t_digest(st), d1);
                }
                store_close(st);
            }
            cr_assert_lt(after, MAX_AFTER, "%s makes more than %d I/O calls", name, MAX_AFTER);
        }
    }
    cr_assert_gt(failures, 0, "%s: no fault was ever injected", name);
}

TestSuite(store_faults, .init = setup, .fini = teardown, .timeout = 120);

Test(store_faults, save_ready_batch)
{
    run_faults("save", op_save);
}

Test(store_faults, apply)
{
    run_faults("apply", op_apply);
}

Test(store_faults, snapshot_create)
{
    run_faults("snapshot", op_snapshot);
}

Test(store_faults, snapshot_install)
{
    run_faults("install", op_install);
}

Test(store_faults, log_compact)
{
    run_faults("compact", op_compact);
}

Test(store_faults, local_set)
{
    run_faults("local", op_local);
}

Test(store_faults, open)
{
    run_faults("open", op_open);
}
