/* helpers.c — see helpers.h. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

const char *t_mkdtemp(char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, cap, "%s/electd-store-XXXXXX", base && *base ? base : "/tmp");
    cr_assert_not_null(mkdtemp(out), "mkdtemp");
    return out;
}

void t_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    char path[4200];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

store_t *t_open(const char *dir, const char *vfs)
{
    store_opts_t o = {.cluster_id = T_CLUSTER, .node_id = T_NODE, .vfs = vfs};
    char err[STORE_ERRMSG_MAX] = "";
    store_t *st = NULL;
    int rc = store_open(&st, dir, &o, err, sizeof err);
    cr_assert_eq(rc, 0, "store_open(%s): %s: %s", dir, store_strerror(rc), err);
    return st;
}

void t_arena_free(t_arena_t *a)
{
    free(a->buf);
    memset(a, 0, sizeof *a);
}

static uint8_t *arena_alloc(t_arena_t *a, size_t n)
{
    if (!a->buf) {
        a->cap = 8u << 20;
        a->buf = malloc(a->cap);
        cr_assert_not_null(a->buf);
    }
    cr_assert(a->used + n <= a->cap, "test arena exhausted");
    uint8_t *p = a->buf + a->used;
    a->used += n;
    return p;
}

raft_entry_t t_put(t_arena_t *a, uint64_t index, uint64_t term, const char *key, const char *value,
                   const store_cond_t *cond)
{
    size_t vlen = strlen(value), len = 0;
    size_t cap = STORE_CMD_HEADER + 1 + STORE_ELECTION_NAME_MAX + strlen(key) + vlen;
    uint8_t *buf = arena_alloc(a, cap);
    int rc = store_cmd_encode_put(key, strlen(key), value, vlen, cond, buf, cap, &len);
    cr_assert_eq(rc, 0, "encode put: %s", store_strerror(rc));
    return (raft_entry_t){
        .term = term, .index = index, .type = RAFT_ENTRY_NORMAL, .len = (uint32_t)len, .data = buf};
}

raft_entry_t t_put_ephemeral(t_arena_t *a, uint64_t index, uint64_t term, const char *key,
                             const char *value, uint64_t owner, const store_cond_t *cond)
{
    size_t vlen = strlen(value), len = 0;
    size_t cap = STORE_CMD_HEADER + STORE_CMD_EPHEMERAL_EXTRA + 1 + STORE_ELECTION_NAME_MAX +
                 strlen(key) + vlen;
    uint8_t *buf = arena_alloc(a, cap);
    int rc =
        store_cmd_encode_put_ephemeral(key, strlen(key), value, vlen, owner, cond, buf, cap, &len);
    cr_assert_eq(rc, 0, "encode ephemeral put: %s", store_strerror(rc));
    return (raft_entry_t){
        .term = term, .index = index, .type = RAFT_ENTRY_NORMAL, .len = (uint32_t)len, .data = buf};
}

raft_entry_t t_del(t_arena_t *a, uint64_t index, uint64_t term, const char *key,
                   const store_cond_t *cond)
{
    size_t len = 0, cap = STORE_CMD_HEADER + 1 + STORE_ELECTION_NAME_MAX + strlen(key);
    uint8_t *buf = arena_alloc(a, cap);
    int rc = store_cmd_encode_del(key, strlen(key), cond, buf, cap, &len);
    cr_assert_eq(rc, 0, "encode del: %s", store_strerror(rc));
    return (raft_entry_t){
        .term = term, .index = index, .type = RAFT_ENTRY_NORMAL, .len = (uint32_t)len, .data = buf};
}

raft_entry_t t_noop(t_arena_t *a, uint64_t index, uint64_t term, uint64_t leader, uint64_t stamp)
{
    uint8_t *buf = arena_alloc(a, RAFT_TERM_START_SIZE);
    raft_term_start_t ts = {.leader = leader, .stamp = stamp};
    raft_term_start_encode(&ts, buf);
    return (raft_entry_t){.term = term,
                          .index = index,
                          .type = RAFT_ENTRY_NOOP,
                          .len = RAFT_TERM_START_SIZE,
                          .data = buf};
}

raft_entry_t t_conf(t_arena_t *a, uint64_t index, uint64_t term, const raft_conf_t *c)
{
    size_t cap = raft_conf_encoded_size(c), len = 0;
    uint8_t *buf = arena_alloc(a, cap);
    cr_assert_eq(raft_conf_encode(c, buf, cap, &len), 0);
    return (raft_entry_t){
        .term = term, .index = index, .type = RAFT_ENTRY_CONF, .len = (uint32_t)len, .data = buf};
}

raft_entry_t t_assign(t_arena_t *a, uint64_t index, uint64_t term, const char *name,
                      uint64_t holder, uint64_t expect_token, uint64_t unix_ms)
{
    size_t len = 0;
    uint8_t *buf = arena_alloc(a, STORE_CMD_ELECTION_MAX);
    int rc = store_cmd_encode_election_assign(name, holder, expect_token, unix_ms, buf,
                                              STORE_CMD_ELECTION_MAX, &len);
    cr_assert_eq(rc, 0, "encode assign: %s", store_strerror(rc));
    return (raft_entry_t){
        .term = term, .index = index, .type = RAFT_ENTRY_NORMAL, .len = (uint32_t)len, .data = buf};
}

raft_entry_t t_drop(t_arena_t *a, uint64_t index, uint64_t term, const char *name,
                    uint64_t expect_token)
{
    size_t len = 0;
    uint8_t *buf = arena_alloc(a, STORE_CMD_ELECTION_MAX);
    int rc = store_cmd_encode_election_drop(name, expect_token, buf, STORE_CMD_ELECTION_MAX, &len);
    cr_assert_eq(rc, 0, "encode drop: %s", store_strerror(rc));
    return (raft_entry_t){
        .term = term, .index = index, .type = RAFT_ENTRY_NORMAL, .len = (uint32_t)len, .data = buf};
}

raft_conf_t t_conf3(void)
{
    raft_conf_t c;
    memset(&c, 0, sizeof c);
    c.n = 3;
    for (uint32_t i = 0; i < 3; i++) {
        c.members[i].id = i + 1;
        c.members[i].voter = 1;
        snprintf(c.members[i].addr, RAFT_ADDR_MAX, "n%u=127.0.0.1:%u", i + 1, 7000 + i);
    }
    return c;
}

int t_save(store_t *st, uint64_t term, uint64_t commit, const raft_entry_t *e, size_t n)
{
    raft_ready_t rd;
    memset(&rd, 0, sizeof rd);
    rd.hs_changed = true;
    rd.hs = (raft_hard_state_t){.term = term, .vote = 1, .commit = commit};
    rd.entries = e;
    rd.n_entries = n;
    return store_save_ready(st, &rd);
}

/* FNV-1a */
static void mix(uint64_t *h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        *h ^= b[i];
        *h *= 1099511628211ull;
    }
}

static void mix64(uint64_t *h, uint64_t v)
{
    mix(h, &v, sizeof v);
}

uint64_t t_digest(store_t *st)
{
    uint64_t h = 1469598103934665603ull;
    raft_boot_t boot;
    int rc = store_boot_load(st, &boot);
    cr_assert_eq(rc, 0, "boot load: %s: %s", store_strerror(rc), store_errmsg(st));
    mix64(&h, boot.hs.term);
    mix64(&h, boot.hs.vote);
    mix64(&h, boot.hs.commit);
    mix64(&h, boot.snap.index);
    mix64(&h, boot.snap.term);
    mix64(&h, boot.snap.size);
    mix64(&h, boot.snap.conf.n);
    for (size_t i = 0; i < boot.n_entries; i++) {
        const raft_entry_t *e = &boot.entries[i];
        mix64(&h, e->index);
        mix64(&h, e->term);
        mix64(&h, e->type);
        mix(&h, e->data, e->len);
    }
    store_boot_free(st, &boot);
    mix64(&h, store_applied_index(st));
    mix64(&h, store_applied_term(st));
    char after[STORE_KEY_MAX + 1] = "";
    size_t after_len = 0;
    for (;;) {
        store_kv_t *items;
        size_t n;
        bool more;
        rc = store_kv_list(st, NULL, 0, after, after_len, 0, &items, &n, &more);
        cr_assert_eq(rc, 0, "list: %s", store_strerror(rc));
        for (size_t i = 0; i < n; i++) {
            mix(&h, items[i].key, items[i].key_len);
            mix(&h, items[i].value, items[i].value_len);
            mix64(&h, items[i].create_revision);
            mix64(&h, items[i].mod_revision);
            mix64(&h, items[i].version);
            mix64(&h, items[i].owner);
        }
        if (n) {
            memcpy(after, items[n - 1].key, items[n - 1].key_len);
            after_len = items[n - 1].key_len;
        }
        store_kv_list_free(items, n);
        if (!more)
            break;
    }
    store_epoch_t ep[64];
    size_t ne = 0;
    cr_assert_eq(store_epochs_list(st, 0, ep, 64, &ne), 0);
    for (size_t i = 0; i < ne; i++) {
        mix64(&h, ep[i].term);
        mix64(&h, ep[i].leader);
        mix64(&h, ep[i].started_ms);
        mix64(&h, ep[i].index);
    }
    size_t nel = 0;
    store_election_t *el = t_elections(st, &nel);
    for (size_t i = 0; i < nel; i++) {
        mix(&h, el[i].name, strlen(el[i].name) + 1);
        mix64(&h, el[i].holder);
        mix64(&h, el[i].token);
        mix64(&h, el[i].since_index);
        mix64(&h, el[i].since_unix_ms);
    }
    free(el);
    raft_conf_t c;
    uint64_t ci = 0;
    if (store_conf_get(st, &c, &ci) == 0) {
        mix64(&h, ci);
        mix64(&h, c.n);
    }
    return h;
}

uint8_t *t_snapshot_bytes(store_t *st, size_t *len)
{
    raft_storage_t rs;
    raft_snapshot_meta_t meta;
    store_raft_storage(st, &rs);
    store_snapshot_meta(st, &meta);
    cr_assert_gt(meta.index, 0);
    uint8_t *buf = malloc(meta.size + 1);
    size_t off = 0, n = 0;
    do {
        int rc = rs.snapshot_read(rs.ctx, meta.index, off, buf + off, 1000, &n);
        cr_assert_eq(rc, 0, "snapshot_read: %s", store_strerror(rc));
        off += n;
    } while (n > 0 && off <= meta.size);
    cr_assert_eq(off, meta.size);
    *len = off;
    return buf;
}

int t_send_chunks(store_t *to, const uint8_t *data, size_t len, raft_snapshot_meta_t meta,
                  size_t chunk, const raft_entry_t *after, size_t n_after)
{
    for (size_t off = 0; off < len || off == 0; off += chunk) {
        size_t take = len - off < chunk ? len - off : chunk;
        raft_snapshot_chunk_t c = {.meta = meta,
                                   .offset = off,
                                   .data = data + off,
                                   .len = (uint32_t)take,
                                   .last = off + take == len};
        raft_ready_t rd;
        memset(&rd, 0, sizeof rd);
        rd.chunk = &c;
        rd.hs_changed = c.last;
        rd.hs = (raft_hard_state_t){.term = meta.term, .vote = 0, .commit = meta.index};
        if (c.last) {
            rd.entries = after;
            rd.n_entries = n_after;
        }
        int rc = store_save_ready(to, &rd);
        if (rc)
            return rc;
        if (c.last)
            break;
    }
    return 0;
}

store_election_t *t_elections(store_t *st, size_t *n)
{
    store_election_t *all = NULL;
    char after[STORE_ELECTION_NAME_MAX + 1] = "";
    *n = 0;
    for (int pages = 0; pages < 1000; pages++) {
        store_election_list_t l;
        int rc = store_election_list(st, NULL, after, 0, &l);
        cr_assert_eq(rc, 0, "election list: %s: %s", store_strerror(rc), store_errmsg(st));
        all = realloc(all, (*n + l.n + 1) * sizeof *all);
        cr_assert_not_null(all);
        if (l.n) {
            memcpy(all + *n, l.items, l.n * sizeof *all);
            snprintf(after, sizeof after, "%s", l.items[l.n - 1].name);
        }
        *n += l.n;
        bool more = l.more;
        store_election_list_free(&l);
        if (!more)
            break;
    }
    if (*n == 0) {
        free(all);
        all = NULL;
    }
    return all;
}

void t_fixture_db(const char *path, const char *name)
{
    char file[4200];
    snprintf(file, sizeof file, "%s/%s", FIXTURE_DIR, name);
    FILE *fx = fopen(file, "r");
    cr_assert_not_null(fx, "%s", file);
    static char sql[1 << 16];
    size_t n = fread(sql, 1, sizeof sql - 1, fx);
    sql[n] = 0;
    cr_assert(feof(fx), "%s is over %zu bytes", file, sizeof sql - 1);
    fclose(fx);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
}
