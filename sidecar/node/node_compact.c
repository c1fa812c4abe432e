/* node_compact.c — log compaction: once --snapshot-entries entries have applied since the
 * last snapshot, the state machine is snapshotted and the log below it dropped (a little kept
 * for followers just behind). */
#include "common.h"
#include "node_int.h"

#define SNAPSHOT_ENTRIES_DEFAULT 4096

void node_compact(sidecar_node_t *n)
{
    uint64_t applied = store_applied_index(n->store);
    uint64_t every = n->cfg->snapshot_entries ? n->cfg->snapshot_entries : SNAPSHOT_ENTRIES_DEFAULT;
    if (applied < raft_snapshot(n->raft)->index + every || applied < n->compact_retry_at)
        return;
    store_snapshot_info_t info;
    int rv = store_snapshot_create(n->store, &n->boot_conf, &info);
    if (rv != 0) {
        node_store_failed(n, "snapshot", rv);
        n->compact_retry_at = applied + every / 4 + 1;
        return;
    }
    uint64_t keep = every / 4 > 16 ? every / 4 : 16;
    rv = raft_compact(n->raft, info.index, info.size, keep);
    if (rv != 0) {
        /* A membership change committed past the applied index: try a little later. */
        n->compact_retry_at = applied + 16;
        return;
    }
    uint64_t first = raft_first_index(n->raft);
    if (first > 1) {
        rv = store_log_compact(n->store, first - 1);
        if (rv != 0)
            node_store_failed(n, "compact", rv);
    }
    SIDECAR_LOG(SIDECAR_LOG_INFO, "snapshot taken", SIDECAR_LOG_UINT("index", info.index),
                SIDECAR_LOG_UINT("bytes", info.size), SIDECAR_LOG_UINT("log_first", first));
}
