/* test_history.c — the change history watches read: every applied put and delete with its
 * revision, read by key or prefix after a revision, pruned to its bound (history_from moves),
 * kept across a reopen and a local snapshot, emptied by a snapshot installed from a leader. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

TestSuite(store_history, .init = setup, .fini = teardown);

static store_t *open_max(const char *d, uint64_t node, uint64_t max)
{
    store_opts_t o = {.cluster_id = T_CLUSTER, .node_id = node, .history_max = max};
    store_t *st = NULL;
    char err[STORE_ERRMSG_MAX] = "";
    cr_assert_eq(store_open(&st, d, &o, err, sizeof err), 0, "%s", err);
    return st;
}

/* Saves and applies e[0..n) as committed. */
static void commit(store_t *st, raft_entry_t *e, size_t n)
{
    cr_assert_eq(t_save(st, 1, e[n - 1].index, e, n), 0, "%s", store_errmsg(st));
    cr_assert_eq(store_apply(st, e, n, NULL), 0, "%s", store_errmsg(st));
}

/* Writes "k<i>" = "v<i>" at indexes first.. first+n-1, one batch each. */
static void puts_from(store_t *st, uint64_t first, int n)
{
    for (int i = 0; i < n; i++) {
        char k[32], v[32];
        snprintf(k, sizeof k, "k%d", (int)(first + (uint64_t)i));
        snprintf(v, sizeof v, "v%d", (int)(first + (uint64_t)i));
        raft_entry_t e = t_put(&arena, first + (uint64_t)i, 1, k, v, NULL);
        commit(st, &e, 1);
    }
}

Test(store_history, records_puts_and_deletes_in_revision_order)
{
    store_t *st = open_max(dir, T_NODE, 0);
    cr_assert_eq(store_history_from(st), 0);
    raft_entry_t e[5] = {t_noop(&arena, 1, 1, 7, 0), t_put(&arena, 2, 1, "app/a", "1", NULL),
                         t_put(&arena, 3, 1, "other", "x", NULL),
                         t_put(&arena, 4, 1, "app/a", "2", NULL),
                         t_del(&arena, 5, 1, "app/a", NULL)};
    commit(st, e, 5);
    /* a delete of an absent key and a failed CAS change nothing: no history */
    store_cond_t cas = {.has_if_match = true, .if_match = 99};
    raft_entry_t f[2] = {t_del(&arena, 6, 1, "nothing", NULL),
                         t_put(&arena, 7, 1, "app/a", "3", &cas)};
    commit(st, f, 2);
    cr_assert_eq(store_history_count(st), 4);

    store_change_t *c = NULL;
    size_t n = 0;
    bool more = false;
    cr_assert_eq(store_history_read(st, 0, "app/a", 5, false, 0, &c, &n, &more), 0);
    cr_assert_eq(n, 3);
    cr_assert_not(more);
    cr_assert_eq(c[0].revision, 2);
    cr_assert_str_eq((char *)c[0].value, "1");
    cr_assert_eq(c[1].revision, 4);
    cr_assert_str_eq((char *)c[1].value, "2");
    cr_assert_eq(c[2].revision, 5);
    cr_assert(c[2].deleted);
    cr_assert_eq(c[2].value_len, 0);
    store_history_free(c, n);

    cr_assert_eq(store_history_read(st, 2, "app/", 4, true, 0, &c, &n, &more), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(c[0].revision, 4);
    store_history_free(c, n);
    cr_assert_eq(store_history_read(st, 0, "", 0, true, 2, &c, &n, &more), 0); /* all, limited */
    cr_assert_eq(n, 2);
    cr_assert(more);
    cr_assert_eq(c[1].revision, 3);
    cr_assert_str_eq(c[1].key, "other");
    store_history_free(c, n);
    cr_assert_eq(store_history_read(st, 5, "", 0, true, 0, &c, &n, &more), 0);
    cr_assert_eq(n, 0);
    cr_assert_null(c);
    store_close(st);
}

Test(store_history, pruned_to_its_bound_and_kept_across_reopen)
{
    store_t *st = open_max(dir, T_NODE, 5);
    puts_from(st, 1, 8);
    cr_assert_eq(store_history_count(st), 5);
    cr_assert_eq(store_history_from(st), 3); /* changes 4..8 are kept */
    store_change_t *c = NULL;
    size_t n = 0;
    bool more = false;
    cr_assert_eq(store_history_read(st, 0, "", 0, true, 0, &c, &n, &more), 0);
    cr_assert_eq(n, 5);
    cr_assert_eq(c[0].revision, 4);
    cr_assert_eq(c[4].revision, 8);
    store_history_free(c, n);
    /* a local snapshot (log compaction) leaves the history alone */
    store_snapshot_info_t si;
    cr_assert_eq(store_snapshot_create(st, NULL, &si), 0, "%s", store_errmsg(st));
    cr_assert_eq(store_history_count(st), 5);
    store_close(st);

    st = open_max(dir, T_NODE, 5);
    cr_assert_eq(store_history_count(st), 5);
    cr_assert_eq(store_history_from(st), 3);
    store_close(st);
    /* a smaller bound applies at the next write */
    st = open_max(dir, T_NODE, 2);
    puts_from(st, 9, 1);
    cr_assert_eq(store_history_count(st), 2);
    cr_assert_eq(store_history_from(st), 7);
    store_close(st);
}

Test(store_history, a_snapshot_installed_empties_it)
{
    store_t *lead = open_max(dir, T_NODE, 0);
    puts_from(lead, 1, 10);
    store_snapshot_info_t si;
    cr_assert_eq(store_snapshot_create(lead, NULL, &si), 0, "%s", store_errmsg(lead));
    raft_snapshot_meta_t meta;
    store_snapshot_meta(lead, &meta);
    meta.conf = t_conf3();
    size_t len;
    uint8_t *bytes = t_snapshot_bytes(lead, &len);

    char dir2[256];
    t_mkdtemp(dir2, sizeof dir2);
    store_t *f = open_max(dir2, 9, 0);
    puts_from(f, 1, 2); /* a follower's own history, from before the snapshot */
    cr_assert_eq(store_history_count(f), 2);
    cr_assert_eq(t_send_chunks(f, bytes, len, meta, 4096, NULL, 0), 0, "%s", store_errmsg(f));
    cr_assert_eq(store_history_count(f), 0);
    cr_assert_eq(store_history_from(f), 10);
    puts_from(f, 11, 1);
    store_change_t *c = NULL;
    size_t n = 0;
    bool more = false;
    cr_assert_eq(store_history_read(f, 10, "", 0, true, 0, &c, &n, &more), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(c[0].revision, 11);
    store_history_free(c, n);
    store_close(f);
    f = open_max(dir2, 9, 0); /* and so it stays */
    cr_assert_eq(store_history_from(f), 10);
    cr_assert_eq(store_history_count(f), 1);
    store_close(f);
    t_rmdir(dir2);
    free(bytes);
    store_close(lead);
}
