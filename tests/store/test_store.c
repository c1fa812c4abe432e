/* test_store.c — behaviour of store/: Raft persistence round trips, conflict truncation,
 * compaction, the KV state machine with CAS and fencing, epochs, configurations, node-local
 * keys, snapshots (create, stream, install, refusal of a bad one) and the command codec. */
#include <criterion/criterion.h>
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

static store_t *reopen(store_t *s)
{
    store_close(s);
    return t_open(dir, NULL);
}

/* Applies entries and checks nothing failed at the storage level. */
static void apply(store_t *s, const raft_entry_t *e, size_t n, store_result_t *res)
{
    int rc = store_apply(s, e, n, res);
    cr_assert_eq(rc, 0, "apply: %s: %s", store_strerror(rc), store_errmsg(s));
}

TestSuite(store_log, .init = setup, .fini = teardown);

Test(store_log, fresh_store_boots_empty)
{
    raft_boot_t b;
    cr_assert_eq(store_boot_load(st, &b), 0);
    cr_assert_eq(b.hs.term, 0);
    cr_assert_eq(b.snap.index, 0);
    cr_assert_eq(b.n_entries, 0);
    cr_assert_eq(store_log_last_index(st), 0);
    cr_assert_eq(store_applied_index(st), 0);
    store_boot_free(st, &b);
}

Test(store_log, hard_state_and_entries_survive_reopen)
{
    raft_conf_t c = t_conf3();
    raft_entry_t e[3] = {t_noop(&arena, 1, 2, 1, 1000), t_conf(&arena, 2, 2, &c),
                         t_put(&arena, 3, 2, "a", "x", NULL)};
    cr_assert_eq(t_save(st, 2, 1, e, 3), 0);
    st = reopen(st);
    raft_boot_t b;
    cr_assert_eq(store_boot_load(st, &b), 0);
    cr_assert_eq(b.hs.term, 2);
    cr_assert_eq(b.hs.vote, 1);
    cr_assert_eq(b.hs.commit, 1);
    cr_assert_eq(b.n_entries, 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(b.entries[i].index, e[i].index);
        cr_assert_eq(b.entries[i].term, e[i].term);
        cr_assert_eq(b.entries[i].type, e[i].type);
        cr_assert_eq(b.entries[i].len, e[i].len);
        cr_assert_arr_eq(b.entries[i].data, e[i].data, e[i].len);
    }
    cr_assert_eq(store_log_last_index(st), 3);
    store_boot_free(st, &b);
    cr_assert_null(b.entries);
}

Test(store_log, empty_payload_round_trips)
{
    raft_entry_t e = {.term = 1, .index = 1, .type = RAFT_ENTRY_NORMAL, .len = 0, .data = NULL};
    cr_assert_eq(t_save(st, 1, 0, &e, 1), 0);
    raft_boot_t b;
    cr_assert_eq(store_boot_load(st, &b), 0);
    cr_assert_eq(b.n_entries, 1);
    cr_assert_eq(b.entries[0].len, 0);
    cr_assert_null(b.entries[0].data);
    store_boot_free(st, &b);
}

Test(store_log, conflicting_suffix_is_replaced)
{
    raft_entry_t e[5];
    for (uint64_t i = 0; i < 5; i++)
        e[i] = t_put(&arena, i + 1, 1, "k", "old", NULL);
    cr_assert_eq(t_save(st, 1, 2, e, 5), 0);
    raft_entry_t f[2] = {t_put(&arena, 3, 2, "k", "new3", NULL),
                         t_put(&arena, 4, 2, "k", "new4", NULL)};
    cr_assert_eq(t_save(st, 2, 2, f, 2), 0);
    cr_assert_eq(store_log_last_index(st), 4);
    st = reopen(st);
    raft_boot_t b;
    cr_assert_eq(store_boot_load(st, &b), 0);
    cr_assert_eq(b.n_entries, 4, "entry 5 of the old term must be gone");
    cr_assert_eq(b.entries[1].term, 1);
    cr_assert_eq(b.entries[2].term, 2);
    cr_assert_eq(b.entries[3].term, 2);
    cr_assert_arr_eq(b.entries[3].data, f[1].data, f[1].len);
    store_boot_free(st, &b);
}

Test(store_log, gap_or_unordered_batch_is_refused_and_changes_nothing)
{
    raft_entry_t e[2] = {t_put(&arena, 1, 1, "k", "v", NULL), t_put(&arena, 2, 1, "k", "v", NULL)};
    cr_assert_eq(t_save(st, 1, 0, e, 2), 0);
    uint64_t before = t_digest(st);
    raft_entry_t gap = t_put(&arena, 4, 1, "k", "v", NULL);
    cr_assert_eq(t_save(st, 5, 0, &gap, 1), STORE_EINVAL);
    cr_assert(strlen(store_errmsg(st)) > 0);
    raft_entry_t bad[2] = {t_put(&arena, 3, 1, "k", "v", NULL),
                           t_put(&arena, 5, 1, "k", "v", NULL)};
    cr_assert_eq(t_save(st, 5, 0, bad, 2), STORE_EINVAL);
    cr_assert_eq(t_digest(st), before, "a refused batch must not persist its hard state");
}

Test(store_log, compaction_keeps_entries_after_snapshot)
{
    raft_entry_t e[10];
    for (uint64_t i = 0; i < 10; i++) {
        char v[16];
        snprintf(v, sizeof v, "%llu", (unsigned long long)i + 1);
        e[i] = t_put(&arena, i + 1, 1, "k", v, NULL);
    }
    cr_assert_eq(t_save(st, 1, 10, e, 10), 0);
    apply(st, e, 6, NULL);
    cr_assert_eq(store_log_compact(st, 3), STORE_EINVAL, "no snapshot covers index 3 yet");
    store_snapshot_info_t si;
    cr_assert_eq(store_snapshot_create(st, NULL, &si), 0, "%s", store_errmsg(st));
    cr_assert_eq(si.index, 6);
    cr_assert_eq(si.term, 1);
    cr_assert_gt(si.size, 0);
    cr_assert_eq(store_log_compact(st, 7), STORE_EINVAL);
    cr_assert_eq(store_log_compact(st, 4), 0);
    cr_assert_eq(store_log_first_index(st), 5);
    st = reopen(st);
    raft_boot_t b;
    cr_assert_eq(store_boot_load(st, &b), 0);
    cr_assert_eq(b.snap.index, 6);
    cr_assert_eq(b.snap.term, 1);
    cr_assert_eq(b.snap.size, si.size);
    cr_assert_eq(b.n_entries, 4);
    cr_assert_eq(b.entries[0].index, 7);
    store_boot_free(st, &b);
    cr_assert_eq(store_log_last_index(st), 10);
    cr_assert_eq(store_applied_index(st), 6);
}

/* ---- state machine ---------------------------------------------------------------------- */

TestSuite(store_kv, .init = setup, .fini = teardown);

Test(store_kv, put_get_delete_with_revisions)
{
    store_result_t r[4];
    raft_entry_t e[4] = {t_put(&arena, 1, 1, "a", "1", NULL), t_put(&arena, 2, 1, "a", "22", NULL),
                         t_put(&arena, 3, 1, "b", "3", NULL), t_del(&arena, 4, 1, "b", NULL)};
    apply(st, e, 4, r);
    cr_assert_eq(r[0].status, STORE_APPLIED_OK);
    cr_assert_eq(r[0].op, STORE_CMD_PUT);
    cr_assert_eq(r[0].revision, 1);
    cr_assert_eq(r[0].version, 1);
    cr_assert_eq(r[1].create_revision, 1);
    cr_assert_eq(r[1].mod_revision, 2);
    cr_assert_eq(r[1].version, 2);
    cr_assert_eq(r[3].status, STORE_APPLIED_OK);
    cr_assert_eq(r[3].op, STORE_CMD_DEL);
    cr_assert_eq(r[3].revision, 4);
    cr_assert_eq(store_applied_index(st), 4);
    st = reopen(st);
    store_kv_t kv;
    cr_assert_eq(store_kv_get(st, "a", 1, &kv), 0);
    cr_assert_str_eq((char *)kv.value, "22");
    cr_assert_eq(kv.value_len, 2);
    cr_assert_eq(kv.create_revision, 1);
    cr_assert_eq(kv.mod_revision, 2);
    cr_assert_eq(kv.version, 2);
    store_kv_clear(&kv);
    cr_assert_eq(store_kv_get(st, "b", 1, &kv), STORE_ENOTFOUND);
    cr_assert_eq(store_applied_index(st), 4);
    /* delete of an absent key, then re-creation restarts version and create revision */
    raft_entry_t f[2] = {t_del(&arena, 5, 1, "b", NULL), t_put(&arena, 6, 1, "b", "again", NULL)};
    store_result_t r2[2];
    apply(st, f, 2, r2);
    cr_assert_eq(r2[0].status, STORE_APPLIED_NOT_FOUND);
    cr_assert_eq(r2[1].create_revision, 6);
    cr_assert_eq(r2[1].version, 1);
}

Test(store_kv, list_by_prefix_is_ordered_bounded_and_pages)
{
    const char *keys[] = {"app/a", "app/b", "app/c", "apq", "ap", "zzz"};
    raft_entry_t e[6];
    for (int i = 0; i < 6; i++)
        e[i] = t_put(&arena, (uint64_t)i + 1, 1, keys[i], "v", NULL);
    apply(st, e, 6, NULL);
    store_kv_t *items;
    size_t n;
    bool more;
    cr_assert_eq(store_kv_list(st, "app/", 4, NULL, 0, 2, &items, &n, &more), 0);
    cr_assert_eq(n, 2);
    cr_assert(more);
    cr_assert_str_eq(items[0].key, "app/a");
    cr_assert_str_eq(items[1].key, "app/b");
    store_kv_list_free(items, n);
    cr_assert_eq(store_kv_list(st, "app/", 4, "app/b", 5, 2, &items, &n, &more), 0);
    cr_assert_eq(n, 1);
    cr_assert_not(more);
    cr_assert_str_eq(items[0].key, "app/c");
    store_kv_list_free(items, n);
    cr_assert_eq(store_kv_list(st, "ap", 2, NULL, 0, 0, &items, &n, &more), 0);
    cr_assert_eq(n, 5);
    store_kv_list_free(items, n);
    cr_assert_eq(store_kv_list(st, "nope", 4, NULL, 0, 0, &items, &n, &more), 0);
    cr_assert_eq(n, 0);
    cr_assert_null(items);
    uint64_t count = 0;
    cr_assert_eq(store_kv_count(st, &count), 0);
    cr_assert_eq(count, 6);
}

Test(store_kv, prefix_of_0xff_bytes_lists_the_right_keys)
{
    char k1[] = "\xff\xff"
                "a",
         k2[] = "\xff\xfe", pre[] = "\xff\xff";
    raft_entry_t e[2] = {t_put(&arena, 1, 1, k1, "v", NULL), t_put(&arena, 2, 1, k2, "v", NULL)};
    apply(st, e, 2, NULL);
    store_kv_t *items;
    size_t n;
    cr_assert_eq(store_kv_list(st, pre, 2, NULL, 0, 0, &items, &n, NULL), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(items[0].key, k1);
    store_kv_list_free(items, n);
}

Test(store_kv, compare_and_set_on_mod_revision)
{
    store_cond_t absent = {.has_if_match = true, .if_match = 0};
    store_cond_t at1 = {.has_if_match = true, .if_match = 1};
    store_cond_t at9 = {.has_if_match = true, .if_match = 9};
    raft_entry_t e[5] = {t_put(&arena, 1, 1, "k", "v1", &absent), /* create-only: ok */
                         t_put(&arena, 2, 1, "k", "v2", &absent), /* exists: conflict */
                         t_put(&arena, 3, 1, "k", "v3", &at9),    /* wrong rev: conflict */
                         t_put(&arena, 4, 1, "k", "v4", &at1),    /* right rev: ok */
                         t_del(&arena, 5, 1, "k", &at1)};         /* stale rev: conflict */
    store_result_t r[5];
    apply(st, e, 5, r);
    cr_assert_eq(r[0].status, STORE_APPLIED_OK);
    cr_assert_eq(r[1].status, STORE_APPLIED_CONFLICT);
    cr_assert_eq(r[1].mod_revision, 1);
    cr_assert_eq(r[2].status, STORE_APPLIED_CONFLICT);
    cr_assert_eq(r[3].status, STORE_APPLIED_OK);
    cr_assert_eq(r[3].mod_revision, 4);
    cr_assert_eq(r[4].status, STORE_APPLIED_CONFLICT);
    cr_assert_eq(r[4].mod_revision, 4);
    store_kv_t kv;
    cr_assert_eq(store_kv_get(st, "k", 1, &kv), 0);
    cr_assert_str_eq((char *)kv.value, "v4");
    cr_assert_eq(kv.version, 2, "conflicting writes must not count");
    store_kv_clear(&kv);
    cr_assert_eq(store_applied_index(st), 5, "rejected writes are still applied entries");
}

Test(store_kv, fencing_tokens_are_checked_against_the_current_epoch)
{
    store_cond_t f2 = {.fence = 2}, f3 = {.fence = 3}, f4 = {.fence = 4};
    raft_entry_t e[] = {
        t_put(&arena, 1, 1, "x", "no epoch yet", &f2), /* fenced: no epoch 2 */
        t_noop(&arena, 2, 2, 1, 1111),                 /* epoch 2 led by 1 */
        t_put(&arena, 3, 2, "x", "by 2", &f2),         /* ok */
        t_noop(&arena, 4, 3, 2, 2222),                 /* epoch 3 led by 2 */
        t_put(&arena, 5, 3, "x", "stale", &f2),        /* fenced: stale */
        t_put(&arena, 6, 3, "x", "future", &f4),       /* fenced: no such epoch */
        t_put(&arena, 7, 3, "x", "by 3", &f3),         /* ok */
        t_put(&arena, 8, 3, "x", "unfenced", NULL),    /* ok */
        t_del(&arena, 9, 3, "x", &f2),                 /* fenced delete */
    };
    store_result_t r[9];
    apply(st, e, 9, r);
    cr_assert_eq(r[0].status, STORE_APPLIED_FENCED);
    cr_assert_eq(r[0].epoch, 0);
    cr_assert_eq(r[1].status, STORE_APPLIED_OK);
    cr_assert_eq(r[1].epoch, 2);
    cr_assert_eq(r[1].leader, 1);
    cr_assert_eq(r[2].status, STORE_APPLIED_OK);
    cr_assert_eq(r[4].status, STORE_APPLIED_FENCED);
    cr_assert_eq(r[4].epoch, 3);
    cr_assert_eq(r[5].status, STORE_APPLIED_FENCED);
    cr_assert_eq(r[6].status, STORE_APPLIED_OK);
    cr_assert_eq(r[7].status, STORE_APPLIED_OK);
    cr_assert_eq(r[8].status, STORE_APPLIED_FENCED);
    store_kv_t kv;
    cr_assert_eq(store_kv_get(st, "x", 1, &kv), 0);
    cr_assert_str_eq((char *)kv.value, "unfenced");
    cr_assert_eq(kv.version, 3);
    store_kv_clear(&kv);

    store_epoch_t cur;
    cr_assert_eq(store_epoch_current(st, &cur), 0);
    cr_assert_eq(cur.term, 3);
    cr_assert_eq(cur.leader, 2);
    cr_assert_eq(cur.started_ms, 2222);
    cr_assert_eq(cur.index, 4);
    store_epoch_t hist[4];
    size_t n;
    cr_assert_eq(store_epochs_list(st, 0, hist, 4, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(hist[0].term, 3);
    cr_assert_eq(hist[1].term, 2);
    cr_assert_eq(hist[1].leader, 1);
    cr_assert_eq(store_epochs_list(st, 3, hist, 4, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(hist[0].term, 2);
}

Test(store_kv, same_log_gives_same_results_on_every_node)
{
    char dir2[256];
    t_mkdtemp(dir2, sizeof dir2);
    store_opts_t o = {.cluster_id = T_CLUSTER, .node_id = 8};
    store_t *other = NULL;
    cr_assert_eq(store_open(&other, dir2, &o, NULL, 0), 0);
    store_cond_t f1 = {.fence = 1}, cas = {.has_if_match = true, .if_match = 3};
    raft_entry_t e[] = {t_noop(&arena, 1, 1, 1, 5),          t_put(&arena, 2, 1, "a", "1", &f1),
                        t_put(&arena, 3, 1, "a", "2", &cas), t_put(&arena, 4, 1, "a", "3", &f1),
                        t_noop(&arena, 5, 2, 2, 6),          t_put(&arena, 6, 2, "a", "4", &f1)};
    store_result_t r1[6], r2[6];
    apply(st, e, 3, r1);
    apply(st, e + 3, 3, r1 + 3);
    apply(other, e, 6, r2); /* different batching, same outcome */
    cr_assert_arr_eq(r1, r2, sizeof r1);
    cr_assert_eq(t_digest(st), t_digest(other));
    store_close(other);
    t_rmdir(dir2);
}

Test(store_kv, reapplying_is_skipped_and_gaps_are_refused)
{
    raft_entry_t e[3] = {t_put(&arena, 1, 1, "k", "a", NULL), t_put(&arena, 2, 1, "k", "b", NULL),
                         t_put(&arena, 3, 1, "k", "c", NULL)};
    apply(st, e, 2, NULL);
    store_result_t r[3];
    apply(st, e, 3, r); /* 1 and 2 again after a "restart", 3 new */
    cr_assert_eq(r[0].status, STORE_APPLIED_SKIPPED);
    cr_assert_eq(r[1].status, STORE_APPLIED_SKIPPED);
    cr_assert_eq(r[2].status, STORE_APPLIED_OK);
    store_kv_t kv;
    cr_assert_eq(store_kv_get(st, "k", 1, &kv), 0);
    cr_assert_eq(kv.version, 3, "each entry applied exactly once");
    store_kv_clear(&kv);
    raft_entry_t g = t_put(&arena, 5, 1, "k", "gap", NULL);
    cr_assert_eq(store_apply(st, &g, 1, r), STORE_EINVAL);
    cr_assert_eq(store_applied_index(st), 3);
}

Test(store_kv, undecodable_payloads_become_invalid_results)
{
    uint8_t junk[5] = {1, 2, 3, 4, 5};
    raft_entry_t e[3] = {
        {.term = 1, .index = 1, .type = RAFT_ENTRY_NORMAL, .len = 5, .data = junk},
        {.term = 1, .index = 2, .type = RAFT_ENTRY_NOOP, .len = 5, .data = junk},
        {.term = 1, .index = 3, .type = RAFT_ENTRY_CONF, .len = 5, .data = junk},
    };
    store_result_t r[3];
    apply(st, e, 3, r);
    cr_assert_eq(r[0].status, STORE_APPLIED_INVALID);
    cr_assert_eq(r[0].err, STORE_ECMD);
    cr_assert_eq(r[1].status, STORE_APPLIED_INVALID);
    cr_assert_eq(r[2].status, STORE_APPLIED_INVALID);
    cr_assert_eq(store_applied_index(st), 3);
    store_epoch_t ep;
    cr_assert_eq(store_epoch_current(st, &ep), STORE_ENOTFOUND);
}

Test(store_kv, latest_configuration_is_remembered)
{
    raft_conf_t c = t_conf3(), got;
    uint64_t idx = 0;
    cr_assert_eq(store_conf_get(st, &got, &idx), STORE_ENOTFOUND);
    raft_entry_t e = t_conf(&arena, 1, 1, &c);
    apply(st, &e, 1, NULL);
    st = reopen(st);
    cr_assert_eq(store_conf_get(st, &got, &idx), 0);
    cr_assert_eq(idx, 1);
    cr_assert_eq(got.n, 3);
    cr_assert_str_eq(got.members[2].addr, c.members[2].addr);
}

Test(store_kv, local_keys_round_trip_and_are_bounded)
{
    char buf[16];
    size_t len = 0;
    cr_assert_eq(store_local_get(st, "last_role", buf, sizeof buf, &len), STORE_ENOTFOUND);
    cr_assert_eq(store_local_set(st, "last_role", "primary", 7), 0);
    st = reopen(st);
    cr_assert_eq(store_local_get(st, "last_role", buf, sizeof buf, &len), 0);
    cr_assert_eq(len, 7);
    cr_assert_arr_eq(buf, "primary", 7);
    cr_assert_eq(store_local_get(st, "last_role", buf, 3, &len), STORE_ETOOBIG);
    static char big[STORE_LOCAL_VALUE_MAX + 1];
    cr_assert_eq(store_local_set(st, "x", big, sizeof big), STORE_EVALUE);
    cr_assert_eq(store_local_set(st, "", "v", 1), STORE_EKEY);
}

/* The relaxed write (a record whose old value is the cautious one): read back at once, kept
 * across a clean reopen, its name checked like the durable one's, the store's other writes
 * unaffected. */
Test(store_kv, a_relaxed_local_key_reads_back_and_later_writes_stay_durable)
{
    char buf[16];
    size_t len = 0;
    cr_assert_eq(store_local_set(st, "workload_role", "primary", 7), 0);
    cr_assert_eq(store_local_set_relaxed(st, "workload_role", "standby", 7), 0);
    cr_assert_eq(store_local_get(st, "workload_role", buf, sizeof buf, &len), 0);
    cr_assert_arr_eq(buf, "standby", 7);
    cr_assert_eq(store_local_set_relaxed(st, "", "v", 1), STORE_EKEY);
    cr_assert_eq(store_local_set(st, "other", "primary", 7), 0);
    st = reopen(st);
    cr_assert_eq(store_local_get(st, "workload_role", buf, sizeof buf, &len), 0);
    cr_assert_arr_eq(buf, "standby", 7);
}

Test(store_kv, many_local_keys_are_set_in_one_transaction_all_or_none)
{
    const char *names[] = {"workload_role/a", "workload_role/b", "workload_role/c"};
    cr_assert_eq(store_local_set_many(st, names, 3, "primary", 7), 0);
    st = reopen(st);
    char buf[16];
    size_t len = 0;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(store_local_get(st, names[i], buf, sizeof buf, &len), 0);
        cr_assert_eq(len, 7);
        cr_assert_arr_eq(buf, "primary", 7);
    }
    /* One invalid name: refused before anything is written. */
    const char *bad[] = {"workload_role/a", ""};
    cr_assert_eq(store_local_set_many(st, bad, 2, "standby", 7), STORE_EKEY);
    cr_assert_eq(store_local_get(st, names[0], buf, sizeof buf, &len), 0);
    cr_assert_arr_eq(buf, "primary", 7);
    /* The store still takes single writes afterwards (no transaction left open). */
    cr_assert_eq(store_local_set(st, names[0], "standby", 7), 0);
}

/* ---- command codec ---------------------------------------------------------------------- */

Test(store_cmd, round_trip_and_limits)
{
    static uint8_t buf[STORE_CMD_MAX];
    static char key[STORE_KEY_MAX + 1], val[STORE_VALUE_MAX + 1];
    memset(key, 'k', sizeof key);
    memset(val, 'v', sizeof val);
    size_t len;
    store_cond_t c = {.has_if_match = true, .if_match = 42, .fence = 9};
    cr_assert_eq(
        store_cmd_encode_put(key, STORE_KEY_MAX, val, STORE_VALUE_MAX, &c, buf, sizeof buf, &len),
        0);
    cr_assert_eq(len, STORE_CMD_HEADER + STORE_KEY_MAX + STORE_VALUE_MAX);
    store_cmd_t cmd;
    cr_assert_eq(store_cmd_decode(buf, len, &cmd), 0);
    cr_assert_eq(cmd.op, STORE_CMD_PUT);
    cr_assert(cmd.cond.has_if_match);
    cr_assert_eq(cmd.cond.if_match, 42);
    cr_assert_eq(cmd.cond.fence, 9);
    cr_assert_eq(cmd.key_len, STORE_KEY_MAX);
    cr_assert_eq(cmd.value_len, STORE_VALUE_MAX);
    cr_assert_eq(store_cmd_encode_put(key, STORE_KEY_MAX + 1, "v", 1, NULL, buf, sizeof buf, &len),
                 STORE_EKEY);
    cr_assert_eq(store_cmd_encode_put(key, 0, "v", 1, NULL, buf, sizeof buf, &len), STORE_EKEY);
    cr_assert_eq(store_cmd_encode_put("a\0b", 3, "v", 1, NULL, buf, sizeof buf, &len), STORE_EKEY);
    cr_assert_eq(
        store_cmd_encode_put("k", 1, val, STORE_VALUE_MAX + 1, NULL, buf, sizeof buf, &len),
        STORE_EVALUE);
    cr_assert_eq(store_cmd_encode_put("k", 1, "v", 1, NULL, buf, 10, &len), STORE_ETOOBIG);
    cr_assert_eq(store_cmd_encode_del("k", 1, NULL, buf, sizeof buf, &len), 0);
    cr_assert_eq(store_cmd_decode(buf, len, &cmd), 0);
    cr_assert_eq(cmd.op, STORE_CMD_DEL);
    cr_assert_not(cmd.cond.has_if_match);
    cr_assert_eq(cmd.cond.fence, 0);
    cr_assert_null(cmd.name);
    /* the largest command: the longest key, value and election name */
    char name[STORE_ELECTION_NAME_MAX + 1];
    memset(name, 'e', STORE_ELECTION_NAME_MAX);
    name[STORE_ELECTION_NAME_MAX] = 0;
    c.election = name;
    cr_assert_eq(store_cmd_encode_put_ephemeral(key, STORE_KEY_MAX, val, STORE_VALUE_MAX, 3, &c,
                                                buf, sizeof buf, &len),
                 0);
    cr_assert_eq(len, STORE_CMD_MAX);
    cr_assert_eq(store_cmd_decode(buf, len, &cmd), 0);
    cr_assert_eq(cmd.name_len, STORE_ELECTION_NAME_MAX);
    cr_assert_arr_eq(cmd.name, name, STORE_ELECTION_NAME_MAX);
    cr_assert_null(cmd.cond.election);
    cr_assert_eq(cmd.cond.fence, 9);
    cr_assert_eq(cmd.key_len, STORE_KEY_MAX);
    cr_assert_eq(cmd.value_len, STORE_VALUE_MAX);
    cr_assert_eq(store_cmd_encode_put_ephemeral(key, STORE_KEY_MAX, val, STORE_VALUE_MAX, 3, &c,
                                                buf, STORE_CMD_MAX - 1, &len),
                 STORE_ETOOBIG);
}

/* What any successful decode of copy[0..len) must satisfy. */
static void check_decoded(const store_cmd_t *cmd, const uint8_t *copy, size_t len)
{
    const char *lo = (const char *)copy, *hi = (const char *)copy + len;
    bool kv = cmd->op == STORE_CMD_PUT || cmd->op == STORE_CMD_DEL;
    cr_assert(kv || cmd->op == STORE_CMD_ELECTION_ASSIGN || cmd->op == STORE_CMD_ELECTION_DROP);
    if (kv) {
        cr_assert(cmd->key >= lo && cmd->key + cmd->key_len <= hi);
        cr_assert(cmd->value_len == 0 || cmd->value + cmd->value_len <= copy + len);
    }
    if (!kv || cmd->name) {
        cr_assert(cmd->name >= lo && cmd->name + cmd->name_len <= hi);
        cr_assert(store_election_name_valid(cmd->name, cmd->name_len));
    }
    cr_assert(!cmd->name || !kv || cmd->cond.fence != 0, "an election fence is never 0");
}

Test(store_cmd, every_truncation_and_bit_flip_is_rejected_or_decodes_in_bounds)
{
    uint8_t bufs[5][128], copy[128];
    size_t lens[5];
    store_cond_t c = {.has_if_match = true, .if_match = 3, .fence = 2};
    cr_assert_eq(store_cmd_encode_put("key", 3, "value", 5, &c, bufs[0], 128, &lens[0]), 0);
    c.election = "binlog-a";
    cr_assert_eq(store_cmd_encode_put("key", 3, "value", 5, &c, bufs[1], 128, &lens[1]), 0);
    cr_assert_eq(store_cmd_encode_election_assign("binlog-a", 7, 4, 1700000000000ull, bufs[2], 128,
                                                  &lens[2]),
                 0);
    cr_assert_eq(store_cmd_encode_election_drop("binlog-a", 5, bufs[3], 128, &lens[3]), 0);
    cr_assert_eq(
        store_cmd_encode_put_ephemeral("key", 3, "value", 5, 9, &c, bufs[4], 128, &lens[4]), 0);
    for (int k = 0; k < 5; k++) {
        const uint8_t *buf = bufs[k];
        size_t len = lens[k];
        store_cmd_t cmd;
        cr_assert_eq(store_cmd_decode(buf, len, &cmd), 0, "encoding %d", k);
        for (size_t n = 0; n < len; n++)
            cr_assert_neq(store_cmd_decode(buf, n, &cmd), 0, "%d truncated to %zu bytes", k, n);
        memcpy(copy, buf, len);
        copy[len] = 'x';
        cr_assert_neq(store_cmd_decode(copy, len + 1, &cmd), 0, "%d: trailing byte", k);
        for (size_t i = 0; i < len; i++) {
            for (int bit = 0; bit < 8; bit++) {
                memcpy(copy, buf, len);
                copy[i] ^= (uint8_t)(1u << bit);
                if (store_cmd_decode(copy, len, &cmd) == 0)
                    check_decoded(&cmd, copy, len);
            }
        }
    }
}

/* ---- snapshots -------------------------------------------------------------------------- */

TestSuite(store_snapshot, .init = setup, .fini = teardown);

/* Fills st with n keys plus two epochs and a configuration, applied. Returns last index. */
static uint64_t fill(store_t *s, int n)
{
    raft_conf_t c = t_conf3();
    raft_entry_t *e = calloc((size_t)n + 3, sizeof *e);
    uint64_t idx = 1;
    e[0] = t_noop(&arena, idx++, 1, 1, 100);
    e[1] = t_conf(&arena, idx++, 1, &c);
    for (int i = 0; i < n; i++) {
        char k[32], v[32];
        snprintf(k, sizeof k, "key/%05d", i);
        snprintf(v, sizeof v, "value-%d", i);
        e[idx - 1] = t_put(&arena, idx, 1, k, v, NULL);
        idx++;
    }
    e[idx - 1] = t_noop(&arena, idx, 2, 3, 200);
    cr_assert_eq(t_save(s, 2, idx, e, idx), 0);
    apply(s, e, idx, NULL);
    free(e);
    return idx;
}

Test(store_snapshot, create_stream_and_install_on_another_node)
{
    uint64_t last = fill(st, 500);
    store_snapshot_info_t si;
    cr_assert_eq(store_snapshot_create(st, NULL, &si), 0, "%s", store_errmsg(st));
    cr_assert_eq(si.index, last);
    cr_assert_eq(si.term, 2);
    raft_snapshot_meta_t meta;
    store_snapshot_meta(st, &meta);
    cr_assert_eq(meta.conf.n, 3);
    size_t len;
    uint8_t *bytes = t_snapshot_bytes(st, &len);
    cr_assert_eq(len, si.size);

    char dir2[256];
    t_mkdtemp(dir2, sizeof dir2);
    store_opts_t o = {.cluster_id = T_CLUSTER, .node_id = 9};
    store_t *f = NULL;
    cr_assert_eq(store_open(&f, dir2, &o, NULL, 0), 0);
    /* the follower has some divergent, uncommitted log and state */
    raft_entry_t old[2] = {t_put(&arena, 1, 1, "stale", "x", NULL),
                           t_put(&arena, 2, 1, "stale2", "y", NULL)};
    cr_assert_eq(t_save(f, 1, 1, old, 2), 0);
    apply(f, old, 1, NULL);
    raft_entry_t next = t_put(&arena, last + 1, 2, "after", "snap", NULL);
    cr_assert_eq(t_send_chunks(f, bytes, len, meta, 4096, &next, 1), 0, "%s", store_errmsg(f));
    cr_assert_eq(store_applied_index(f), last);
    cr_assert_eq(store_log_last_index(f), last + 1);
    store_kv_t kv;
    cr_assert_eq(store_kv_get(f, "stale", 5, &kv), STORE_ENOTFOUND);
    cr_assert_eq(store_kv_get(f, "key/00499", 9, &kv), 0);
    cr_assert_str_eq((char *)kv.value, "value-499");
    store_kv_clear(&kv);
    /* after a restart the follower boots from the snapshot and serves the same bytes */
    store_close(f);
    f = NULL;
    cr_assert_eq(store_open(&f, dir2, &o, NULL, 0), 0);
    raft_boot_t b;
    cr_assert_eq(store_boot_load(f, &b), 0);
    cr_assert_eq(b.snap.index, last);
    cr_assert_eq(b.snap.term, 2);
    cr_assert_eq(b.snap.conf.n, 3);
    cr_assert_eq(b.n_entries, 1);
    cr_assert_eq(b.entries[0].index, last + 1);
    store_boot_free(f, &b);
    size_t len2;
    uint8_t *bytes2 = t_snapshot_bytes(f, &len2);
    cr_assert_eq(len2, len);
    cr_assert_arr_eq(bytes2, bytes, len);
    raft_conf_t c;
    cr_assert_eq(store_conf_get(f, &c, NULL), 0);
    cr_assert_eq(c.n, 3);
    store_epoch_t ep;
    cr_assert_eq(store_epoch_current(f, &ep), 0);
    cr_assert_eq(ep.term, 2);
    cr_assert_eq(ep.leader, 3);
    /* the state machines agree: apply the next entry on both and compare listings */
    store_kv_t *a, *bb;
    size_t na, nb;
    cr_assert_eq(store_kv_list(st, "key/", 4, NULL, 0, 0, &a, &na, NULL), 0);
    cr_assert_eq(store_kv_list(f, "key/", 4, NULL, 0, 0, &bb, &nb, NULL), 0);
    cr_assert_eq(na, nb);
    for (size_t i = 0; i < na; i++) {
        cr_assert_str_eq(a[i].key, bb[i].key);
        cr_assert_eq(a[i].mod_revision, bb[i].mod_revision);
    }
    store_kv_list_free(a, na);
    store_kv_list_free(bb, nb);
    free(bytes);
    free(bytes2);
    store_close(f);
    t_rmdir(dir2);
}

Test(store_snapshot, only_the_newest_snapshot_file_is_kept)
{
    fill(st, 10);
    store_snapshot_info_t s1, s2;
    cr_assert_eq(store_snapshot_create(st, NULL, &s1), 0);
    char p1[4200];
    snprintf(p1, sizeof p1, "%s", store_snapshot_path(st));
    cr_assert_eq(access(p1, F_OK), 0);
    raft_entry_t e = t_put(&arena, s1.index + 1, 2, "more", "x", NULL);
    cr_assert_eq(t_save(st, 2, s1.index + 1, &e, 1), 0);
    apply(st, &e, 1, NULL);
    cr_assert_eq(store_snapshot_create(st, NULL, &s2), 0);
    cr_assert_eq(s2.index, s1.index + 1);
    cr_assert_neq(access(p1, F_OK), 0, "the older snapshot file must be removed");
    cr_assert_eq(access(store_snapshot_path(st), F_OK), 0);
    raft_storage_t rs;
    store_raft_storage(st, &rs);
    uint8_t b[16];
    size_t n;
    cr_assert_eq(rs.snapshot_read(rs.ctx, s1.index, 0, b, sizeof b, &n), STORE_ESNAPSHOT);
}

Test(store_snapshot, a_missing_snapshot_file_is_rebuilt)
{
    fill(st, 20);
    store_snapshot_info_t si, again;
    cr_assert_eq(store_snapshot_create(st, NULL, &si), 0);
    size_t len;
    uint8_t *before = t_snapshot_bytes(st, &len);
    st = reopen(st); /* drops the open file descriptor */
    cr_assert_eq(unlink(store_snapshot_path(st)), 0);
    raft_storage_t rs;
    store_raft_storage(st, &rs);
    uint8_t b[16];
    size_t n;
    cr_assert_eq(rs.snapshot_read(rs.ctx, si.index, 0, b, sizeof b, &n), STORE_ESNAPSHOT);
    cr_assert_eq(store_snapshot_create(st, NULL, &again), 0, "%s", store_errmsg(st));
    cr_assert_eq(again.index, si.index);
    cr_assert_eq(again.term, si.term);
    size_t len2;
    uint8_t *after = t_snapshot_bytes(st, &len2);
    cr_assert_eq(len2, len);
    cr_assert_arr_eq(after, before, len, "the same state gives the same snapshot bytes");
    free(before);
    free(after);
}

Test(store_snapshot, corrupt_snapshot_is_refused_and_old_state_kept)
{
    fill(st, 50);
    store_snapshot_info_t si;
    cr_assert_eq(store_snapshot_create(st, NULL, &si), 0);
    raft_snapshot_meta_t meta;
    store_snapshot_meta(st, &meta);
    size_t len;
    uint8_t *bytes = t_snapshot_bytes(st, &len);

    char dir2[256];
    t_mkdtemp(dir2, sizeof dir2);
    store_opts_t o = {.cluster_id = T_CLUSTER, .node_id = 9};
    store_t *f = NULL;
    cr_assert_eq(store_open(&f, dir2, &o, NULL, 0), 0);
    raft_entry_t old = t_put(&arena, 1, 1, "mine", "x", NULL);
    cr_assert_eq(t_save(f, 1, 1, &old, 1), 0);
    apply(f, &old, 1, NULL);
    uint64_t before = t_digest(f);

    raft_snapshot_meta_t wrong = meta;
    wrong.term = meta.term + 1; /* announced term does not match the file */
    cr_assert_eq(t_send_chunks(f, bytes, len, wrong, 1 << 20, NULL, 0), STORE_ESNAPSHOT);
    cr_assert(strstr(store_errmsg(f), "as announced"), "%s", store_errmsg(f));
    cr_assert_eq(t_digest(f), before);

    memset(bytes + len / 2, 0xA5, 4096 < len / 2 ? 4096 : len / 2); /* damage pages */
    int rc = t_send_chunks(f, bytes, len, meta, 1 << 20, NULL, 0);
    cr_assert_eq(rc, STORE_ESNAPSHOT, "%d %s (%zu bytes)", rc, store_errmsg(f), len);
    cr_assert_eq(t_digest(f), before);

    memset(bytes, 'x', 64); /* not even SQLite */
    cr_assert_eq(t_send_chunks(f, bytes, len, meta, 1 << 20, NULL, 0), STORE_ESNAPSHOT);
    cr_assert_eq(t_digest(f), before);
    store_close(f);
    f = NULL;
    cr_assert_eq(store_open(&f, dir2, &o, NULL, 0), 0);
    cr_assert_eq(t_digest(f), before);
    free(bytes);
    store_close(f);
    t_rmdir(dir2);
}

Test(store_snapshot, chunks_are_bounded_and_ordered)
{
    static uint8_t data[64];
    raft_snapshot_meta_t meta = {.index = 5, .term = 1, .size = (uint64_t)STORE_CHUNK_MAX + 10};
    raft_snapshot_chunk_t c = {.meta = meta, .offset = 0, .data = data, .len = STORE_CHUNK_MAX + 1};
    raft_ready_t rd;
    memset(&rd, 0, sizeof rd);
    rd.chunk = &c;
    cr_assert_eq(store_save_ready(st, &rd), STORE_ETOOBIG);
    c.len = 10;
    c.offset = 100; /* nothing staged yet */
    cr_assert_eq(store_save_ready(st, &rd), STORE_EINVAL);
    c.meta.size = STORE_SNAPSHOT_MAX + 1;
    c.offset = 0;
    cr_assert_eq(store_save_ready(st, &rd), STORE_ETOOBIG);
    c.meta.size = 5;
    cr_assert_eq(store_save_ready(st, &rd), STORE_EINVAL, "chunk beyond the announced size");
}

/* ---- migrations ------------------------------------------------------------------------- */

/* PRAGMA user_version of the closed database at path. */
static int schema_version(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    int v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* Makes d a data directory whose electd.db (its path into path) is the fixture, and opens it
 * as its node (cluster "fixture-cluster", node 2) with the current store. */
static store_t *open_fixture(char *d, size_t dcap, char *path, size_t pcap, const char *fixture)
{
    t_mkdtemp(d, dcap);
    snprintf(path, pcap, "%s/electd.db", d);
    t_fixture_db(path, fixture);
    store_opts_t o = {.cluster_id = "fixture-cluster", .node_id = 2};
    store_t *m = NULL;
    char err[STORE_ERRMSG_MAX];
    int rc = store_open(&m, d, &o, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    return m;
}

Test(store_migrate, schema_1_fixture_is_migrated_with_its_data)
{
    char d[256], path[4200];
    store_t *m = open_fixture(d, sizeof d, path, sizeof path, "schema_v1.sql");
    raft_boot_t b;
    cr_assert_eq(store_boot_load(m, &b), 0);
    cr_assert_eq(b.hs.term, 3);
    cr_assert_eq(b.hs.vote, 2);
    cr_assert_eq(b.hs.commit, 3);
    cr_assert_eq(b.n_entries, 3);
    store_boot_free(m, &b);
    cr_assert_eq(store_applied_index(m), 3);
    store_kv_t kv;
    cr_assert_eq(store_kv_get(m, "binlog/pos", 10, &kv), 0);
    cr_assert_str_eq((char *)kv.value, "mysql-bin.000042:1337");
    cr_assert_eq(kv.version, 2);
    store_kv_clear(&kv);
    store_epoch_t ep;
    cr_assert_eq(store_epoch_current(m, &ep), 0);
    cr_assert_eq(ep.term, 3);
    cr_assert_eq(ep.leader, 2);
    cr_assert_eq(ep.index, 0, "schema 1 did not record the index");
    /* what schema 2 added works */
    cr_assert_eq(store_local_set(m, "last_role", "standby", 7), 0);
    store_close(m);
    cr_assert_eq(schema_version(path), STORE_SCHEMA_VERSION);
    t_rmdir(d);
}

/* Schema 2 (before elections) as the previous release wrote it: the data survives, the
 * election tables are there and work, and the KV commands in its log are the bytes the
 * encoder still writes for a write without an election. */
Test(store_migrate, schema_2_fixture_is_migrated_with_its_data)
{
    char d[256], path[4200];
    store_t *m = open_fixture(d, sizeof d, path, sizeof path, "schema_v2.sql");
    cr_assert_eq(store_applied_index(m), 4);
    raft_boot_t b;
    cr_assert_eq(store_boot_load(m, &b), 0);
    cr_assert_eq(b.n_entries, 4);
    store_cond_t f3 = {.fence = 3};
    raft_entry_t again = t_put(&arena, 4, 3, "binlog/pos", "mysql-bin.000042:1337", &f3);
    cr_assert_eq(b.entries[3].len, again.len);
    cr_assert_arr_eq(b.entries[3].data, again.data, again.len, "format 1 is unchanged");
    store_boot_free(m, &b);
    store_kv_t kv;
    cr_assert_eq(store_kv_get(m, "binlog/pos", 10, &kv), 0);
    cr_assert_str_eq((char *)kv.value, "mysql-bin.000042:1337");
    cr_assert_eq(kv.version, 2);
    store_kv_clear(&kv);
    char buf[16];
    size_t len = 0;
    cr_assert_eq(store_local_get(m, "last_role", buf, sizeof buf, &len), 0);
    cr_assert_eq(len, 7);
    raft_conf_t c;
    cr_assert_eq(store_conf_get(m, &c, NULL), 0);
    cr_assert_eq(c.n, 3);
    /* what schema 3 added works, and lasts */
    store_election_t el;
    cr_assert_eq(store_election_get(m, "binlog-a", &el), STORE_ENOTFOUND);
    raft_entry_t e[2] = {
        t_assign(&arena, 5, 3, "binlog-a", 2, 0, 1700000000001ull),
        t_put(&arena, 6, 3, "k", "v", &(store_cond_t){.fence = 1, .election = "binlog-a"})};
    cr_assert_eq(t_save(m, 3, 6, e, 2), 0);
    store_result_t r[2];
    apply(m, e, 2, r);
    cr_assert_eq(r[0].status, STORE_APPLIED_OK);
    cr_assert_eq(r[1].status, STORE_APPLIED_OK);
    store_close(m);
    store_opts_t o = {.cluster_id = "fixture-cluster", .node_id = 2};
    char err[STORE_ERRMSG_MAX];
    m = NULL;
    cr_assert_eq(store_open(&m, d, &o, err, sizeof err), 0, "%s", err);
    cr_assert_eq(store_election_get(m, "binlog-a", &el), 0);
    cr_assert_eq(el.holder, 2);
    cr_assert_eq(el.token, 1);
    cr_assert_eq(el.since_index, 5);
    store_close(m);
    cr_assert_eq(schema_version(path), STORE_SCHEMA_VERSION);
    t_rmdir(d);
}
