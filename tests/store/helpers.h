/* helpers.h — shared by the store tests: temporary data directories, entry builders, ready
 * batches and a digest of everything a store has committed (to compare states). */
#ifndef ELECTD_TEST_STORE_HELPERS_H
#define ELECTD_TEST_STORE_HELPERS_H

#include <stdint.h>

#include "store.h"

#define T_CLUSTER "test-cluster"
#define T_NODE    7

/* Creates a fresh temporary directory; returns a static path valid until the next call. */
const char *t_mkdtemp(char *out, size_t cap);
/* Removes dir and the files directly in it. */
void t_rmdir(const char *dir);

/* Opens dir with the test cluster/node (and the given vfs, may be NULL); fails the test if
 * that does not succeed. */
store_t *t_open(const char *dir, const char *vfs);

/* Entry builders: payloads live in an arena owned by the caller. */
typedef struct t_arena {
    uint8_t *buf;
    size_t used, cap;
} t_arena_t;
void t_arena_free(t_arena_t *a);
raft_entry_t t_put(t_arena_t *a, uint64_t index, uint64_t term, const char *key, const char *value,
                   const store_cond_t *cond);
/* An ephemeral PUT bound to member owner. */
raft_entry_t t_put_ephemeral(t_arena_t *a, uint64_t index, uint64_t term, const char *key,
                             const char *value, uint64_t owner, const store_cond_t *cond);
raft_entry_t t_del(t_arena_t *a, uint64_t index, uint64_t term, const char *key,
                   const store_cond_t *cond);
raft_entry_t t_noop(t_arena_t *a, uint64_t index, uint64_t term, uint64_t leader, uint64_t stamp);
raft_entry_t t_conf(t_arena_t *a, uint64_t index, uint64_t term, const raft_conf_t *c);
raft_entry_t t_assign(t_arena_t *a, uint64_t index, uint64_t term, const char *name,
                      uint64_t holder, uint64_t expect_token, uint64_t unix_ms);
raft_entry_t t_drop(t_arena_t *a, uint64_t index, uint64_t term, const char *name,
                    uint64_t expect_token);
raft_conf_t t_conf3(void); /* members 1, 2, 3 voters */

/* Saves hard state + entries as one ready batch. */
int t_save(store_t *st, uint64_t term, uint64_t commit, const raft_entry_t *e, size_t n);

/* 64-bit digest of all committed state: hard state, snapshot meta, log after the snapshot,
 * applied index/term, every KV row, every epoch, every election, latest conf. */
uint64_t t_digest(store_t *st);

/* Reads the whole current snapshot through raft_storage_t into a malloc'd buffer. */
uint8_t *t_snapshot_bytes(store_t *st, size_t *len);

/* Streams a snapshot's bytes to `to` in chunks of `chunk` bytes, as ready batches; the last
 * one also carries the hard state (meta's term, commit = meta's index) and appends
 * after[0..n_after). Returns store_save_ready's first error. */
int t_send_chunks(store_t *to, const uint8_t *data, size_t len, raft_snapshot_meta_t meta,
                  size_t chunk, const raft_entry_t *after, size_t n_after);

/* Runs the SQL file fixtures/<name> on a new SQLite database at path (fails the test if that
 * does not work): fixtures are files as an older electd wrote them. */
void t_fixture_db(const char *path, const char *name);

/* Every election of st (all pages) into a malloc'd array of *n rows (NULL when none). */
store_election_t *t_elections(store_t *st, size_t *n);

#endif
