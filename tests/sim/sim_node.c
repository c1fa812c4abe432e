/* sim_node.c — one simulated node: drives a Raft core through its ready batches against an
 * in-memory disk and the digest state machine, and notes every way the core breaks the
 * driver contract of raft.h (gaps in persisted entries, re-delivered or skipped commits,
 * malformed snapshots) instead of crashing on it.
 */
#include "sim_node.h"
#include "sim_check.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void node_err(sim_node_t *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void node_err(sim_node_t *n, const char *fmt, ...)
{
    if (n->err[0] != '\0')
        return;
    int off = snprintf(n->err, sizeof(n->err), "node %llu: ", (unsigned long long)n->id);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->err + off, sizeof(n->err) - (size_t)off, fmt, ap);
    va_end(ap);
}

static void *xmalloc(size_t len)
{
    void *p = malloc(len ? len : 1);
    if (p == NULL) {
        fprintf(stderr, "sim: out of memory\n");
        abort();
    }
    return p;
}

static int snapshot_read(void *ctx, uint64_t index, uint64_t offset, void *buf, size_t len,
                         size_t *n)
{
    sim_node_t *node = ctx;
    if (node->snap.index == 0 || index != node->snap.index || offset > node->snap.size)
        return -1;
    size_t left = (size_t)(node->snap.size - offset);
    size_t take = left < len ? left : len;
    memcpy(buf, node->snap_data + offset, take);
    *n = take;
    return 0;
}

void sim_node_init(sim_node_t *n, const raft_config_t *cfg, const raft_conf_t *boot_conf)
{
    memset(n, 0, sizeof(*n));
    n->id = cfg->id;
    n->cfg = *cfg;
    if (boot_conf != NULL)
        n->boot_conf = *boot_conf;
    n->storage.ctx = n;
    n->storage.snapshot_read = snapshot_read;
}

static void log_truncate(sim_node_t *n, size_t keep)
{
    for (size_t i = keep; i < n->log_n; i++)
        free(n->log[i].data);
    if (keep < n->log_n)
        n->log_n = keep;
}

void sim_node_free(sim_node_t *n)
{
    sim_node_crash(n);
    log_truncate(n, 0);
    free(n->log);
    free(n->snap_data);
    free(n->staged);
    n->log = NULL;
    n->snap_data = NULL;
    n->staged = NULL;
}

enum { SNAP_HEAD = 3 * sizeof(uint64_t), SNAP_PAD = SNAP_HEAD + SIM_APP_BYTES };
_Static_assert(SNAP_PAD <= SIM_SNAPSHOT_BYTES, "the snapshot holds its header and the app state");

void sim_snapshot_encode(uint64_t index, uint64_t term, uint64_t digest,
                         const uint8_t app[SIM_APP_BYTES], uint8_t out[SIM_SNAPSHOT_BYTES])
{
    uint64_t head[3] = {index, term, digest};
    memcpy(out, head, sizeof(head));
    memcpy(out + SNAP_HEAD, app, SIM_APP_BYTES);
    for (size_t i = SNAP_PAD; i < SIM_SNAPSHOT_BYTES; i++)
        out[i] = (uint8_t)((digest >> ((i % 8) * 8)) ^ i);
}

int sim_snapshot_decode(const uint8_t *buf, uint64_t len, uint64_t *index, uint64_t *term,
                        uint64_t *digest, uint8_t app[SIM_APP_BYTES])
{
    if (len != SIM_SNAPSHOT_BYTES)
        return -1;
    uint64_t head[3];
    memcpy(head, buf, sizeof(head));
    uint8_t want[SIM_SNAPSHOT_BYTES];
    sim_snapshot_encode(head[0], head[1], head[2], buf + SNAP_HEAD, want);
    if (memcmp(want, buf, SIM_SNAPSHOT_BYTES) != 0)
        return -1;
    *index = head[0];
    *term = head[1];
    *digest = head[2];
    if (app != NULL)
        memcpy(app, buf + SNAP_HEAD, SIM_APP_BYTES);
    return 0;
}

int sim_node_start(sim_node_t *n, uint64_t seed)
{
    assert(n->r == NULL);
    raft_boot_t boot;
    memset(&boot, 0, sizeof(boot));
    boot.hs = n->hs;
    boot.snap = n->snap;
    boot.conf = n->boot_conf;
    boot.entries = n->log;
    boot.n_entries = n->log_n;
    n->cfg.seed = seed;
    n->held = false;
    n->applied = 0;
    n->digest = 0;
    memset(n->app, 0, sizeof(n->app));
    if (n->snap.index > 0) {
        uint64_t idx, term;
        if (sim_snapshot_decode(n->snap_data, n->snap.size, &idx, &term, &n->digest, n->app) != 0)
            return -1;
        n->applied = n->snap.index;
    }
    return raft_open(&n->cfg, &boot, &n->storage, &n->r);
}

void sim_node_crash(sim_node_t *n)
{
    if (n->r != NULL)
        raft_close(n->r);
    n->r = NULL;
    n->held = false;
}

bool sim_node_take(sim_node_t *n)
{
    if (n->r == NULL || n->held || !raft_has_ready(n->r))
        return false;
    int rc = raft_ready_get(n->r, &n->rd);
    if (rc != 0) {
        node_err(n, "raft_ready_get failed after raft_has_ready: %s", raft_strerror(rc));
        return false;
    }
    n->held = true;
    n->persisted = false;
    return true;
}

static void persist_chunk(sim_node_t *n, const sim_node_hooks_t *h, const raft_snapshot_chunk_t *c)
{
    if (c->offset == 0)
        n->staged_len = 0;
    if (c->offset != n->staged_len) {
        node_err(n, "snapshot chunk at offset %llu, %llu bytes staged",
                 (unsigned long long)c->offset, (unsigned long long)n->staged_len);
        return;
    }
    uint64_t end = c->offset + c->len;
    if (end > SIM_SNAPSHOT_MAX) {
        node_err(n, "snapshot grows past %u bytes", SIM_SNAPSHOT_MAX);
        return;
    }
    if (end > n->staged_cap) {
        size_t cap = n->staged_cap ? n->staged_cap : 256;
        while (cap < end)
            cap *= 2;
        uint8_t *p = realloc(n->staged, cap);
        if (p == NULL)
            abort();
        n->staged = p;
        n->staged_cap = cap;
    }
    if (c->len > 0)
        memcpy(n->staged + c->offset, c->data, c->len);
    n->staged_len = end;
    if (!c->last)
        return;
    uint64_t idx, term, digest;
    uint8_t app[SIM_APP_BYTES];
    if (sim_snapshot_decode(n->staged, n->staged_len, &idx, &term, &digest, app) != 0 ||
        idx != c->meta.index || term != c->meta.term || n->staged_len != c->meta.size) {
        node_err(n,
                 "installed snapshot (index %llu term %llu size %llu) does not decode to "
                 "what it claims (%llu staged bytes)",
                 (unsigned long long)c->meta.index, (unsigned long long)c->meta.term,
                 (unsigned long long)c->meta.size, (unsigned long long)n->staged_len);
        return;
    }
    if (c->meta.index < n->applied)
        node_err(n, "snapshot at index %llu installed over applied index %llu",
                 (unsigned long long)c->meta.index, (unsigned long long)n->applied);
    n->snap = c->meta;
    free(n->snap_data);
    n->snap_data = xmalloc(SIM_SNAPSHOT_BYTES);
    memcpy(n->snap_data, n->staged, SIM_SNAPSHOT_BYTES);
    n->staged_len = 0;
    log_truncate(n, 0);
    n->applied = c->meta.index;
    n->digest = digest;
    memcpy(n->app, app, sizeof(n->app));
    if (h != NULL && h->installed != NULL)
        h->installed(h->ctx, n, &n->snap, digest);
}

static void persist_entries(sim_node_t *n, const raft_entry_t *es, size_t cnt)
{
    size_t i = 0;
    while (i < cnt && es[i].index <= n->snap.index)
        i++; /* already covered by the durable snapshot */
    if (i == cnt)
        return;
    uint64_t first = es[i].index;
    uint64_t last = n->snap.index + n->log_n;
    if (first > last + 1) {
        node_err(n, "ready entries start at %llu, durable log ends at %llu",
                 (unsigned long long)first, (unsigned long long)last);
        return;
    }
    log_truncate(n, (size_t)(first - n->snap.index - 1));
    for (; i < cnt; i++) {
        const raft_entry_t *e = &es[i];
        if (e->index != n->snap.index + n->log_n + 1) {
            node_err(n, "ready entries not consecutive at %llu", (unsigned long long)e->index);
            return;
        }
        if (n->log_n == n->log_cap) {
            size_t cap = n->log_cap ? n->log_cap * 2 : 64;
            raft_entry_t *p = realloc(n->log, cap * sizeof(*p));
            if (p == NULL)
                abort();
            n->log = p;
            n->log_cap = cap;
        }
        raft_entry_t *d = &n->log[n->log_n++];
        *d = *e;
        d->data = NULL;
        if (e->len > 0) {
            d->data = xmalloc(e->len);
            memcpy(d->data, e->data, e->len);
        }
    }
}

static void apply_one(sim_node_t *n, const sim_node_hooks_t *h, const raft_entry_t *e)
{
    uint64_t hash = sim_entry_hash(e->index, e->term, e->type, e->data, e->len);
    n->digest = sim_digest_next(n->digest, hash);
    n->applied = e->index;
    if (h != NULL && h->applied != NULL)
        h->applied(h->ctx, n, e, n->digest);
}

static void apply_committed(sim_node_t *n, const sim_node_hooks_t *h, const raft_entry_t *es,
                            size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) {
        const raft_entry_t *e = &es[i];
        if (e->index <= n->applied) {
            node_err(n, "committed entry %llu handed out again (applied %llu)",
                     (unsigned long long)e->index, (unsigned long long)n->applied);
            continue;
        }
        /* A restarted core may count everything up to the durable commit index as applied;
         * those entries are committed and on disk, so the driver replays them itself. */
        while (n->applied + 1 < e->index && n->applied + 1 <= n->hs.commit &&
               n->applied + 1 > n->snap.index && n->applied + 1 <= n->snap.index + n->log_n)
            apply_one(n, h, &n->log[n->applied - n->snap.index]);
        if (e->index != n->applied + 1) {
            node_err(n, "committed entry %llu handed out after applied index %llu",
                     (unsigned long long)e->index, (unsigned long long)n->applied);
            return;
        }
        apply_one(n, h, e);
    }
}

static void persist(sim_node_t *n, const sim_node_hooks_t *h, const raft_ready_t *rd)
{
    if (rd->hs_changed)
        n->hs = rd->hs;
    if (rd->chunk != NULL)
        persist_chunk(n, h, rd->chunk);
    if (rd->n_entries > 0)
        persist_entries(n, rd->entries, rd->n_entries);
    n->persisted = true;
}

int sim_node_process(sim_node_t *n, const sim_node_hooks_t *h)
{
    assert(n->held);
    const raft_ready_t *rd = &n->rd;
    /* 1. persist; a failed persist keeps the batch (nothing of it may leave the node: a vote or
     * an acknowledgement of state that is not durable could be lost by a crash) */
    bool writes = rd->hs_changed || rd->chunk != NULL || rd->n_entries > 0;
    if (writes && n->disk_fault != SIM_DISK_OK) {
        /* a write that landed stays on disk (n->persisted: a retry does not write it again),
         * but the batch counts as durable only once a retry's fsync succeeds */
        if (!n->persisted && n->disk_fault == SIM_DISK_FSYNC && n->fsync_lands)
            persist(n, h, rd);
        if (!n->ack_unpersisted)
            return SIM_NODE_EDISK;
    } else if (!n->persisted) {
        persist(n, h, rd);
    }
    /* 2. send */
    for (size_t i = 0; i < rd->n_msgs; i++)
        if (h != NULL && h->send != NULL)
            h->send(h->ctx, n, &rd->msgs[i]);
    /* 3. apply */
    apply_committed(n, h, rd->committed, rd->n_committed);
    for (size_t i = 0; i < rd->n_reads; i++)
        if (h != NULL && h->read != NULL)
            h->read(h->ctx, n, &rd->reads[i]);
    return n->err[0] ? -1 : 0;
}

int sim_node_advance(sim_node_t *n, uint64_t every, uint64_t keep)
{
    assert(n->held && n->r != NULL);
    raft_advance(n->r);
    n->held = false;
    if (every == 0 || n->applied < n->snap.index + every)
        return 0;
    uint64_t term;
    if (raft_entry_term(n->r, n->applied, &term) != 0)
        return 0; /* e.g. the core already compacted past it through a received snapshot */
    int rc = raft_compact(n->r, n->applied, SIM_SNAPSHOT_BYTES, keep);
    if (rc == RAFT_EBUSY)
        return 0; /* the core cannot snapshot here yet (a newer configuration is not yet
                     applied): try again after the next batch */
    if (rc != 0) {
        node_err(n, "raft_compact(%llu) failed: %s", (unsigned long long)n->applied,
                 raft_strerror(rc));
        return -1;
    }
    const raft_snapshot_meta_t *meta = raft_snapshot(n->r);
    if (meta->index != n->applied || meta->term != term) {
        node_err(n, "raft_snapshot() is (%llu, %llu) after compacting at (%llu, %llu)",
                 (unsigned long long)meta->index, (unsigned long long)meta->term,
                 (unsigned long long)n->applied, (unsigned long long)term);
        return -1;
    }
    if (n->snap_data == NULL)
        n->snap_data = xmalloc(SIM_SNAPSHOT_BYTES);
    sim_snapshot_encode(n->applied, term, n->digest, n->app, n->snap_data);
    uint64_t old = n->snap.index;
    n->snap = *meta;
    n->snap.size = SIM_SNAPSHOT_BYTES;
    /* the durable log now starts after the snapshot */
    uint64_t drop = n->snap.index - old;
    if (drop > n->log_n)
        drop = n->log_n;
    for (size_t i = 0; i < drop; i++)
        free(n->log[i].data);
    memmove(n->log, n->log + drop, (n->log_n - drop) * sizeof(*n->log));
    n->log_n -= drop;
    return 0;
}

int sim_node_drain(sim_node_t *n, const sim_node_hooks_t *h, uint64_t every, uint64_t keep)
{
    int rc = 0;
    /* bounded: a core that always has something ready is itself a bug */
    for (int round = 0; round < 10000 && sim_node_take(n); round++) {
        int prc = sim_node_process(n, h);
        if (prc == SIM_NODE_EDISK)
            return -1; /* the batch stays held; the caller retries it */
        if (prc != 0)
            rc = -1;
        if (sim_node_advance(n, every, keep) != 0)
            rc = -1;
    }
    return rc != 0 || n->err[0] ? -1 : 0;
}

int sim_node_entry(void *ctx, uint64_t index, uint64_t *term, uint64_t *hash)
{
    sim_node_t *n = ctx;
    if (n->r == NULL)
        return -1;
    const raft_entry_t *e = raft_entry_at(n->r, index);
    if (e == NULL)
        return -1;
    *term = e->term;
    *hash = sim_entry_hash(e->index, e->term, e->type, e->data, e->len);
    return 0;
}

raft_msg_t *sim_msg_copy(const raft_msg_t *m)
{
    raft_msg_t *c = xmalloc(sizeof(*c));
    *c = *m;
    c->entries = NULL;
    c->data = NULL;
    c->conf = NULL;
    if (m->n_entries > 0) {
        c->entries = xmalloc(m->n_entries * sizeof(raft_entry_t));
        for (uint32_t i = 0; i < m->n_entries; i++) {
            c->entries[i] = m->entries[i];
            c->entries[i].data = NULL;
            if (m->entries[i].len > 0) {
                c->entries[i].data = xmalloc(m->entries[i].len);
                memcpy(c->entries[i].data, m->entries[i].data, m->entries[i].len);
            }
        }
    }
    if (m->len > 0 && m->data != NULL) {
        uint8_t *d = xmalloc(m->len);
        memcpy(d, m->data, m->len);
        c->data = d;
    }
    if (m->conf != NULL) {
        c->conf = xmalloc(sizeof(raft_conf_t));
        *c->conf = *m->conf;
    }
    return c;
}

void sim_msg_free(raft_msg_t *m)
{
    if (m == NULL)
        return;
    for (uint32_t i = 0; i < m->n_entries && m->entries != NULL; i++)
        free(m->entries[i].data);
    free(m->entries);
    free((void *)m->data);
    free(m->conf);
    free(m);
}
