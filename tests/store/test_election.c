/* test_election.c — named elections in the store: ASSIGN and DROP with their expected tokens,
 * tokens that rise by one per tenure and never repeat (also across drop and re-add), KV writes
 * fenced by an election, determinism across nodes, listing, snapshots (format 2 and the older
 * format 1) and malformed election commands. */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

static char dir[256];
static store_t *st;
static t_arena_t arena;
static uint64_t next_index; /* the next log index apply_one uses */
static uint64_t term;       /* the term of the entries the helpers below make */

static void setup(void)
{
    t_mkdtemp(dir, sizeof dir);
    st = t_open(dir, NULL);
    next_index = 1;
    term = 1;
}

static void teardown(void)
{
    store_close(st);
    st = NULL;
    t_arena_free(&arena);
    t_rmdir(dir);
}

static void apply(store_t *s, const raft_entry_t *e, size_t n, store_result_t *res)
{
    int rc = store_apply(s, e, n, res);
    cr_assert_eq(rc, 0, "apply: %s: %s", store_strerror(rc), store_errmsg(s));
}

/* Applies one entry on st (its index is next_index) and returns its result. */
static store_result_t apply_one(raft_entry_t e)
{
    store_result_t r;
    cr_assert_eq(e.index, next_index);
    next_index++;
    apply(st, &e, 1, &r);
    return r;
}

static store_result_t assign(const char *name, uint64_t holder, uint64_t expect)
{
    return apply_one(t_assign(&arena, next_index, term, name, holder, expect, 1000 + next_index));
}

static store_result_t drop(const char *name, uint64_t expect)
{
    return apply_one(t_drop(&arena, next_index, term, name, expect));
}

static store_result_t put(const char *key, uint64_t fence, const char *election)
{
    store_cond_t c = {.fence = fence, .election = election};
    return apply_one(t_put(&arena, next_index, term, key, "v", &c));
}

static store_election_t get(const char *name)
{
    store_election_t el;
    int rc = store_election_get(st, name, &el);
    cr_assert_eq(rc, 0, "get %s: %s", name, store_strerror(rc));
    return el;
}

TestSuite(store_election, .init = setup, .fini = teardown);

Test(store_election, assign_reassign_and_a_stale_token_is_refused)
{
    store_election_t el;
    cr_assert_eq(store_election_get(st, "binlog-a", &el), STORE_ENOTFOUND);
    store_result_t r = assign("binlog-a", 2, 0);
    cr_assert_eq(r.status, STORE_APPLIED_OK);
    cr_assert_eq(r.op, STORE_CMD_ELECTION_ASSIGN);
    cr_assert_eq(r.token, 1);
    cr_assert_eq(r.holder, 2);
    el = get("binlog-a");
    cr_assert_str_eq(el.name, "binlog-a");
    cr_assert_eq(el.holder, 2);
    cr_assert_eq(el.token, 1);
    cr_assert_eq(el.since_index, 1);
    cr_assert_eq(el.since_unix_ms, 1001);

    r = assign("binlog-a", 3, 1); /* the holder changes */
    cr_assert_eq(r.status, STORE_APPLIED_OK);
    cr_assert_eq(r.token, 2);
    r = assign("binlog-a", 1, 1); /* a decision taken on the old state */
    cr_assert_eq(r.status, STORE_APPLIED_STALE);
    cr_assert_eq(r.token, 2, "the current token is reported");
    cr_assert_eq(r.holder, 3);
    r = assign("binlog-a", 1, 0); /* "create" of an existing election */
    cr_assert_eq(r.status, STORE_APPLIED_STALE);
    r = assign("binlog-a", 1, 3); /* a token from the future */
    cr_assert_eq(r.status, STORE_APPLIED_STALE);
    el = get("binlog-a");
    cr_assert_eq(el.holder, 3, "refused commands change nothing");
    cr_assert_eq(el.token, 2);
    cr_assert_eq(el.since_index, 2);
    cr_assert_eq(el.since_unix_ms, 1002);

    r = assign("binlog-b", 1, 5); /* expects an election that does not exist */
    cr_assert_eq(r.status, STORE_APPLIED_STALE);
    cr_assert_eq(r.token, 0);
    cr_assert_eq(store_election_get(st, "binlog-b", &el), STORE_ENOTFOUND);

    r = assign("binlog-a", 0, 2); /* released: nobody holds it, still a new token */
    cr_assert_eq(r.status, STORE_APPLIED_OK);
    cr_assert_eq(r.token, 3);
    cr_assert_eq(get("binlog-a").holder, 0);
    r = assign("binlog-a", 3, 3); /* the same member again is a new tenure */
    cr_assert_eq(r.token, 4);
    cr_assert_eq(store_applied_index(st), next_index - 1, "every command is an applied entry");
}

Test(store_election, tokens_rise_by_one_and_never_repeat_across_drop_and_re_add)
{
    uint64_t token = 0;
    uint64_t holders[] = {1, 2, 3, 2, 1};
    for (size_t i = 0; i < 5; i++) {
        store_result_t r = assign("sched", holders[i], token);
        cr_assert_eq(r.status, STORE_APPLIED_OK);
        cr_assert_eq(r.token, token + 1, "one up per change of holder");
        token = r.token;
    }
    cr_assert_eq(drop("sched", token - 1).status, STORE_APPLIED_STALE);
    cr_assert_eq(drop("nope", 0).status, STORE_APPLIED_NOT_FOUND);
    store_result_t r = drop("sched", token);
    cr_assert_eq(r.status, STORE_APPLIED_OK);
    cr_assert_eq(r.op, STORE_CMD_ELECTION_DROP);
    cr_assert_eq(r.token, 5);
    cr_assert_eq(r.holder, 1);
    store_election_t el;
    cr_assert_eq(store_election_get(st, "sched", &el), STORE_ENOTFOUND);
    cr_assert_eq(drop("sched", token).status, STORE_APPLIED_NOT_FOUND, "dropped once only");

    /* the tombstone outlives a restart; re-adding continues the sequence */
    st = (store_close(st), t_open(dir, NULL));
    r = assign("sched", 2, 5);
    cr_assert_eq(r.status, STORE_APPLIED_STALE, "a re-added name starts from no election");
    r = assign("sched", 2, 0);
    cr_assert_eq(r.status, STORE_APPLIED_OK);
    cr_assert_eq(r.token, 6, "never a token the name had before");
    cr_assert_eq(drop("sched", 6).status, STORE_APPLIED_OK);
    cr_assert_eq(assign("sched", 3, 0).token, 7, "also after a second drop");
    cr_assert_eq(assign("other", 3, 0).token, 1, "each name has its own sequence");
}

Test(store_election, fenced_writes_use_the_election_token_and_without_one_the_epoch)
{
    term = 4;
    apply_one(t_noop(&arena, next_index, term, 1, 1111)); /* epoch 4 */
    cr_assert_eq(assign("e", 1, 0).token, 1);
    cr_assert_eq(assign("e", 2, 1).token, 2);
    cr_assert_eq(assign("e", 3, 2).token, 3);

    store_result_t r = put("k", 3, "e");
    cr_assert_eq(r.status, STORE_APPLIED_OK, "the current token writes");
    cr_assert_eq(r.epoch, 0);
    r = put("k", 2, "e");
    cr_assert_eq(r.status, STORE_APPLIED_FENCED, "an older token is refused");
    cr_assert_eq(r.epoch, 3, "reported with the election's current token");
    r = put("k", 4, "e");
    cr_assert_eq(r.status, STORE_APPLIED_FENCED, "a token from the future is refused");
    cr_assert_eq(r.epoch, 3);
    r = put("k", 3, "unknown");
    cr_assert_eq(r.status, STORE_APPLIED_FENCED, "an unknown election fences");
    cr_assert_eq(r.epoch, 0, "0: no such election");
    store_cond_t del = {.fence = 2, .election = "e"};
    r = apply_one(t_del(&arena, next_index, term, "k", &del));
    cr_assert_eq(r.status, STORE_APPLIED_FENCED, "deletes are fenced alike");

    /* without an election, the fence is still the epoch: token 3 of "e" is not epoch 4 */
    cr_assert_eq(put("k", 3, NULL).status, STORE_APPLIED_FENCED);
    r = put("k", 4, NULL);
    cr_assert_eq(r.status, STORE_APPLIED_OK);
    cr_assert_eq(put("k", 4, "e").status, STORE_APPLIED_FENCED, "epoch 4 is not e's token");

    /* released: nobody holds it, so nothing writes with its token */
    cr_assert_eq(assign("e", 0, 3).token, 4);
    cr_assert_eq(put("k", 4, "e").status, STORE_APPLIED_FENCED);
    /* dropped: its last token fences too, and so does the token before the drop */
    cr_assert_eq(assign("e", 1, 4).token, 5);
    cr_assert_eq(put("k", 5, "e").status, STORE_APPLIED_OK);
    cr_assert_eq(drop("e", 5).status, STORE_APPLIED_OK);
    r = put("k", 5, "e");
    cr_assert_eq(r.status, STORE_APPLIED_FENCED);
    cr_assert_eq(r.epoch, 0);

    store_kv_t kv;
    cr_assert_eq(store_kv_get(st, "k", 1, &kv), 0);
    cr_assert_eq(kv.version, 3, "exactly the three accepted writes");
    store_kv_clear(&kv);
}

/* The same log applied by two stores, batched differently, gives the same results, the same
 * election rows and the same digest. */
Test(store_election, apply_is_deterministic_on_every_node)
{
    store_cond_t fa2 = {.fence = 2, .election = "a"}, fa1 = {.fence = 1, .election = "a"};
    raft_entry_t e[] = {
        t_noop(&arena, 1, 1, 1, 5),
        t_assign(&arena, 2, 1, "a", 1, 0, 100),
        t_assign(&arena, 3, 1, "b", 2, 0, 101),
        t_assign(&arena, 4, 1, "a", 2, 1, 102),
        t_assign(&arena, 5, 1, "a", 3, 1, 103), /* stale */
        t_put(&arena, 6, 1, "x", "1", &fa2),
        t_put(&arena, 7, 1, "x", "2", &fa1), /* fenced */
        t_drop(&arena, 8, 1, "b", 1),
        t_assign(&arena, 9, 1, "b", 3, 0, 104),
        t_assign(&arena, 10, 1, "c", 0, 0, 105),
        t_drop(&arena, 11, 1, "zz", 0), /* not found */
    };
    size_t n = sizeof e / sizeof e[0];
    char dir2[256];
    t_mkdtemp(dir2, sizeof dir2);
    store_opts_t o = {.cluster_id = T_CLUSTER, .node_id = 8};
    store_t *other = NULL;
    cr_assert_eq(store_open(&other, dir2, &o, NULL, 0), 0);
    store_result_t r1[11], r2[11];
    cr_assert_eq(n, 11);
    apply(st, e, 4, r1);
    apply(st, e + 4, 3, r1 + 4);
    apply(st, e + 7, n - 7, r1 + 7);
    apply(other, e, n, r2);
    cr_assert_arr_eq(r1, r2, sizeof r1);
    cr_assert_eq(r1[4].status, STORE_APPLIED_STALE);
    cr_assert_eq(r1[6].status, STORE_APPLIED_FENCED);
    cr_assert_eq(r1[8].token, 2, "b continues after its drop");
    cr_assert_eq(r1[10].status, STORE_APPLIED_NOT_FOUND);
    size_t n1, n2;
    store_election_t *l1 = t_elections(st, &n1), *l2 = t_elections(other, &n2);
    cr_assert_eq(n1, 3);
    cr_assert_eq(n2, n1);
    cr_assert_arr_eq(l1, l2, n1 * sizeof *l1, "the same rows on both nodes");
    cr_assert_str_eq(l1[0].name, "a");
    cr_assert_eq(l1[0].token, 2);
    cr_assert_eq(l1[0].since_index, 4);
    cr_assert_str_eq(l1[1].name, "b");
    cr_assert_eq(l1[1].holder, 3);
    cr_assert_str_eq(l1[2].name, "c");
    cr_assert_eq(t_digest(st), t_digest(other));
    free(l1);
    free(l2);
    store_close(other);
    t_rmdir(dir2);
}

Test(store_election, list_by_prefix_is_ordered_bounded_and_pages)
{
    char name[32];
    for (int i = 19; i >= 0; i--) {
        snprintf(name, sizeof name, "pipe-%02d", i);
        cr_assert_eq(assign(name, (uint64_t)i + 1, 0).status, STORE_APPLIED_OK);
    }
    assign("other", 1, 0);
    assign("pipd", 1, 0);
    assign("pipe", 1, 0);
    store_election_list_t l;
    cr_assert_eq(store_election_list(st, "pipe-", NULL, 7, &l), 0);
    cr_assert_eq(l.n, 7);
    cr_assert(l.more);
    cr_assert_str_eq(l.items[0].name, "pipe-00");
    cr_assert_eq(l.items[0].holder, 1);
    cr_assert_str_eq(l.items[6].name, "pipe-06");
    size_t seen = l.n;
    char after[STORE_ELECTION_NAME_MAX + 1];
    for (int pages = 0; l.more && pages < 10; pages++) {
        snprintf(after, sizeof after, "%s", l.items[l.n - 1].name);
        store_election_list_free(&l);
        cr_assert_eq(store_election_list(st, "pipe-", after, 7, &l), 0);
        cr_assert_gt(l.n, 0);
        cr_assert_gt(strcmp(l.items[0].name, after), 0, "strictly after");
        seen += l.n;
    }
    cr_assert_eq(seen, 20);
    cr_assert_str_eq(l.items[l.n - 1].name, "pipe-19");
    store_election_list_free(&l);
    cr_assert_null(l.items);

    cr_assert_eq(store_election_list(st, NULL, NULL, 0, &l), 0);
    cr_assert_eq(l.n, 23, "no prefix: all");
    cr_assert_not(l.more);
    cr_assert_str_eq(l.items[0].name, "other");
    cr_assert_str_eq(l.items[1].name, "pipd");
    cr_assert_str_eq(l.items[2].name, "pipe");
    store_election_list_free(&l);
    cr_assert_eq(store_election_list(st, "pipe-19", "pipe-19", 0, &l), 0);
    cr_assert_eq(l.n, 0);
    cr_assert_null(l.items);
    cr_assert_eq(store_election_list(st, "", "pipe-18", 1, &l), 0);
    cr_assert_eq(l.n, 1);
    cr_assert_str_eq(l.items[0].name, "pipe-19");
    store_election_list_free(&l);

    char longer[STORE_ELECTION_NAME_MAX + 2];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = 0;
    cr_assert_eq(store_election_list(st, longer, NULL, 0, &l), STORE_ENAME);
    cr_assert_eq(store_election_list(st, NULL, longer, 0, &l), STORE_ENAME);
    cr_assert_eq(l.n, 0);
}

Test(store_election, invalid_names_are_refused_at_encode_get_and_apply)
{
    static const char *const bad[] = {
        "",          "-a",  ".a",
        "_a",        "a b", "a/b",
        "a\xc3\xa9", "a:1", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    uint8_t buf[STORE_CMD_MAX];
    size_t len;
    store_election_t el;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(store_cmd_encode_election_assign(bad[i], 1, 0, 0, buf, sizeof buf, &len),
                     STORE_ENAME, "%s", bad[i]);
        cr_assert_eq(store_cmd_encode_election_drop(bad[i], 0, buf, sizeof buf, &len), STORE_ENAME);
        store_cond_t c = {.fence = 1, .election = bad[i]};
        cr_assert_eq(store_cmd_encode_put("k", 1, "v", 1, &c, buf, sizeof buf, &len), STORE_ENAME);
        cr_assert_eq(store_cmd_encode_del("k", 1, &c, buf, sizeof buf, &len), STORE_ENAME);
        cr_assert_eq(store_election_get(st, bad[i], &el), STORE_ENAME);
    }
    cr_assert_eq(store_election_get(st, NULL, &el), STORE_ENAME);
    cr_assert_eq(store_cmd_encode_election_assign(NULL, 1, 0, 0, buf, sizeof buf, &len),
                 STORE_ENAME);
    static const char *const good[] = {
        "a", "0", "A.b_c-d", "binlog-mysql-01",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        cr_assert(store_election_name_valid(good[i], strlen(good[i])), "%s", good[i]);
        cr_assert_eq(store_cmd_encode_election_assign(good[i], 1, 0, 0, buf, sizeof buf, &len), 0);
        cr_assert_eq(assign(good[i], 1, 0).status, STORE_APPLIED_OK);
    }
    /* a fence of 0 with an election means nothing: refused, not written unfenced */
    store_cond_t zero = {.fence = 0, .election = "a"};
    cr_assert_eq(store_cmd_encode_put("k", 1, "v", 1, &zero, buf, sizeof buf, &len), STORE_EINVAL);
    cr_assert_eq(
        store_cmd_encode_election_assign("a", 1, 0, 0, buf, STORE_CMD_ELECTION_HEADER, &len),
        STORE_ETOOBIG);
}

/* Hand-made bytes that the encoder never writes: each is an INVALID result when applied, with
 * the reason, and changes nothing but the applied index. */
Test(store_election, malformed_election_commands_are_invalid_and_change_nothing)
{
    uint8_t ok[STORE_CMD_ELECTION_MAX], put[128];
    size_t ok_len, put_len;
    cr_assert_eq(store_cmd_encode_election_assign("abc", 1, 0, 5, ok, sizeof ok, &ok_len), 0);
    store_cond_t c = {.fence = 1, .election = "abc"};
    cr_assert_eq(store_cmd_encode_put("k", 1, "v", 1, &c, put, sizeof put, &put_len), 0);
    struct {
        const uint8_t *base;
        size_t len;
        size_t at;       /* byte to set (SIZE_MAX: none) */
        uint8_t value;   /* its value */
        ptrdiff_t delta; /* length change */
        int err;
    } cases[] = {
        {ok, 0, 28, 0, 0, STORE_ECMD},                      /* name length 0 */
        {ok, 0, 28, 64, 0, STORE_ECMD},                     /* name length over the bytes present */
        {ok, 0, 29, '-', 0, STORE_ENAME},                   /* first character */
        {ok, 0, 30, '/', 0, STORE_ENAME},                   /* character outside the alphabet */
        {ok, 0, 30, 0, 0, STORE_ENAME},                     /* NUL inside the name */
        {ok, 0, 3, 1, 0, STORE_ECMD},                       /* flags */
        {ok, 0, 1, 1, 0, STORE_ECMD},                       /* an election op in format 1 */
        {ok, 0, 1, 3, 0, STORE_ECMD},                       /* unknown format */
        {ok, 0, 2, 5, 0, STORE_ECMD},                       /* unknown op */
        {ok, 0, 2, STORE_CMD_DEL, 0, STORE_ECMD},           /* a KV op with an election's layout */
        {ok, 0, 2, STORE_CMD_ELECTION_DROP, 0, STORE_ECMD}, /* DROP with a holder */
        {ok, 0, SIZE_MAX, 0, -1, STORE_ECMD},               /* short */
        {ok, 0, SIZE_MAX, 0, 1, STORE_ECMD},                /* trailing byte */
        {put, 0, 12, 0, 0, STORE_ECMD},    /* election fence 0 (fence byte 0 was 1) */
        {put, 0, 26, 0, 0, STORE_ECMD},    /* election name length 0 */
        {put, 0, 26, 200, 0, STORE_ECMD},  /* election name past the end */
        {put, 0, 27, '.', 0, STORE_ENAME}, /* election name's first character */
        {put, 0, 1, 1, 0, STORE_ECMD},     /* format 1 cannot carry the name */
    };
    size_t n = sizeof cases / sizeof cases[0];
    uint8_t bytes[32][160];
    raft_entry_t e[32];
    cr_assert_leq(n, 32);
    for (size_t i = 0; i < n; i++) {
        size_t len = cases[i].base == ok ? ok_len : put_len;
        memset(bytes[i], 'z', sizeof bytes[i]);
        memcpy(bytes[i], cases[i].base, len);
        if (cases[i].at != SIZE_MAX)
            bytes[i][cases[i].at] = cases[i].value;
        len = (size_t)((ptrdiff_t)len + cases[i].delta);
        e[i] = (raft_entry_t){.term = 1,
                              .index = i + 1,
                              .type = RAFT_ENTRY_NORMAL,
                              .len = (uint32_t)len,
                              .data = bytes[i]};
        store_cmd_t cmd;
        cr_assert_eq(store_cmd_decode(bytes[i], len, &cmd), cases[i].err, "case %zu", i);
        cr_assert_eq(cmd.op, 0, "case %zu: nothing decoded", i);
    }
    store_result_t r[32];
    apply(st, e, n, r);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(r[i].status, STORE_APPLIED_INVALID, "case %zu", i);
        cr_assert_eq(r[i].err, cases[i].err, "case %zu", i);
    }
    cr_assert_eq(store_applied_index(st), n);
    store_election_list_t l;
    cr_assert_eq(store_election_list(st, NULL, NULL, 0, &l), 0);
    cr_assert_eq(l.n, 0, "no election was made");
    uint64_t keys = 1;
    cr_assert_eq(store_kv_count(st, &keys), 0);
    cr_assert_eq(keys, 0, "no key was written");
}

/* ---- snapshots -------------------------------------------------------------------------- */

static store_t *open_other(char *d, size_t cap, uint64_t node)
{
    t_mkdtemp(d, cap);
    store_opts_t o = {.cluster_id = T_CLUSTER, .node_id = node};
    store_t *f = NULL;
    cr_assert_eq(store_open(&f, d, &o, NULL, 0), 0);
    return f;
}

Test(store_election, snapshot_round_trips_elections_and_tombstones)
{
    raft_conf_t c = t_conf3();
    apply_one(t_conf(&arena, next_index, 1, &c));
    assign("a", 1, 0);
    assign("a", 2, 1);
    assign("b", 3, 0);
    assign("gone", 1, 0);
    assign("gone", 2, 1);
    drop("gone", 2); /* its tombstone holds token 2 */
    store_snapshot_info_t si;
    cr_assert_eq(store_snapshot_create(st, NULL, &si), 0, "%s", store_errmsg(st));
    raft_snapshot_meta_t meta;
    store_snapshot_meta(st, &meta);
    size_t len;
    uint8_t *bytes = t_snapshot_bytes(st, &len);

    char dir2[256];
    store_t *f = open_other(dir2, sizeof dir2, 9);
    /* the follower has elections of its own that the snapshot must replace */
    raft_entry_t mine[3] = {t_assign(&arena, 1, 1, "mine", 9, 0, 1),
                            t_assign(&arena, 2, 1, "gone", 9, 0, 1),
                            t_assign(&arena, 3, 1, "a", 9, 0, 1)};
    cr_assert_eq(t_save(f, 1, 3, mine, 3), 0);
    apply(f, mine, 3, NULL);
    cr_assert_eq(t_send_chunks(f, bytes, len, meta, 1024, NULL, 0), 0, "%s", store_errmsg(f));
    cr_assert_eq(store_applied_index(f), si.index);
    size_t n1, n2;
    store_election_t *l1 = t_elections(st, &n1), *l2 = t_elections(f, &n2);
    cr_assert_eq(n1, 2);
    cr_assert_eq(n2, n1);
    cr_assert_arr_eq(l1, l2, n1 * sizeof *l1, "the leader's rows, and only those");
    free(l1);
    free(l2);

    /* the tombstone came along: re-adding "gone" continues on both nodes alike */
    raft_entry_t readd = t_assign(&arena, si.index + 1, 1, "gone", 3, 0, 7);
    store_result_t ra, rb;
    apply(st, &readd, 1, &ra);
    apply(f, &readd, 1, &rb);
    cr_assert_eq(ra.token, 3);
    cr_assert_eq(rb.token, 3, "not 1: the follower knows the token \"gone\" had");
    /* and survive the follower's restart */
    store_close(f);
    f = NULL;
    store_opts_t o = {.cluster_id = T_CLUSTER, .node_id = 9};
    cr_assert_eq(store_open(&f, dir2, &o, NULL, 0), 0);
    l1 = t_elections(st, &n1);
    l2 = t_elections(f, &n2);
    cr_assert_eq(n1, 3);
    cr_assert_eq(n2, n1);
    cr_assert_arr_eq(l1, l2, n1 * sizeof *l1);
    free(l1);
    free(l2);
    free(bytes);
    store_close(f);
    t_rmdir(dir2);
}

/* The bytes of the format-1 snapshot fixture (index 4, term 3), its format stamped `format`. */
static size_t fixture_snapshot(uint8_t *bytes, size_t cap, int format)
{
    char d[256], path[4200], sql[64];
    t_mkdtemp(d, sizeof d);
    snprintf(path, sizeof path, "%s/snapshot-4-3.db", d);
    t_fixture_db(path, "snapshot_v1.sql");
    sqlite3 *db;
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", format);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp);
    size_t len = fread(bytes, 1, cap, fp);
    cr_assert(feof(fp));
    fclose(fp);
    t_rmdir(d);
    return len;
}

/* A member not yet upgraded sends a format-1 snapshot (no election tables): it installs, and
 * the state machine then has no elections, as on the sender. */
Test(store_election, format_1_snapshot_installs_without_elections)
{
    static uint8_t bytes[1 << 16];
    size_t len = fixture_snapshot(bytes, sizeof bytes, 1);
    assign("a", 1, 0);
    drop("a", 1);
    assign("b", 1, 0);
    raft_snapshot_meta_t meta = {.index = 4, .term = 3, .size = len, .conf = t_conf3()};
    cr_assert_eq(t_send_chunks(st, bytes, len, meta, 4096, NULL, 0), 0, "%s", store_errmsg(st));
    cr_assert_eq(store_applied_index(st), 4);
    store_kv_t kv;
    cr_assert_eq(store_kv_get(st, "binlog/pos", 10, &kv), 0);
    cr_assert_str_eq((char *)kv.value, "mysql-bin.000042:1337");
    store_kv_clear(&kv);
    store_election_t el;
    cr_assert_eq(store_election_get(st, "b", &el), STORE_ENOTFOUND);
    /* no tombstone either: the sender never had "a" */
    raft_entry_t e = t_assign(&arena, 5, 3, "a", 2, 0, 9);
    store_result_t r;
    apply(st, &e, 1, &r);
    cr_assert_eq(r.token, 1);
}

/* A snapshot in format 2 without the election tables is refused, and nothing changes. */
Test(store_election, format_2_snapshot_without_election_tables_is_refused)
{
    static uint8_t bytes[1 << 16];
    size_t len = fixture_snapshot(bytes, sizeof bytes, 2);

    assign("b", 1, 0);
    uint64_t before = t_digest(st);
    raft_snapshot_meta_t meta = {.index = 4, .term = 3, .size = len, .conf = t_conf3()};
    cr_assert_eq(t_send_chunks(st, bytes, len, meta, 1 << 20, NULL, 0), STORE_ESNAPSHOT);
    cr_assert(strstr(store_errmsg(st), "not a valid"), "%s", store_errmsg(st));
    cr_assert_eq(t_digest(st), before);
}

/* The format a snapshot file declares: SQLite's user_version, header bytes 60..63. */
static uint32_t snapshot_format(const uint8_t *bytes, size_t len)
{
    cr_assert_gt(len, 64);
    return (uint32_t)bytes[60] << 24 | (uint32_t)bytes[61] << 16 | (uint32_t)bytes[62] << 8 |
           bytes[63];
}

/* While no election was ever made, a snapshot is written in format 1, which a member not yet
 * upgraded installs (its check refuses any other format): a rolling upgrade can still catch
 * such a member up by snapshot. Elections, or only a tombstone, make it format 2. */
Test(store_election, a_snapshot_without_elections_stays_in_format_1)
{
    put("k", 0, NULL);
    store_snapshot_info_t si;
    size_t len;
    cr_assert_eq(store_snapshot_create(st, NULL, &si), 0, "%s", store_errmsg(st));
    uint8_t *bytes = t_snapshot_bytes(st, &len);
    cr_assert_eq(snapshot_format(bytes, len), 1);
    free(bytes);
    assign("a", 1, 0);
    cr_assert_eq(store_snapshot_create(st, NULL, &si), 0, "%s", store_errmsg(st));
    bytes = t_snapshot_bytes(st, &len);
    cr_assert_eq(snapshot_format(bytes, len), 2);
    free(bytes);
    drop("a", 1); /* no election left, but the tombstone must travel */
    cr_assert_eq(store_snapshot_create(st, NULL, &si), 0, "%s", store_errmsg(st));
    bytes = t_snapshot_bytes(st, &len);
    cr_assert_eq(snapshot_format(bytes, len), 2);
    free(bytes);
}
