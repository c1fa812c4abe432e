/* backup.c — GET /v1/backup: an online backup of this member's state machine (store_backup: a
 * consistent snapshot file taken inside the process, at the applied index), sent as the reply
 * body. The store holds an exclusive lock, so no other process can copy the database while
 * electd runs; this is how a running member is backed up. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "api_int.h"

#define BACKUP_MAX_BYTES (1ull << 30) /* a reply is held in memory while it is sent */

/* The whole of the open backup fd (size bytes) into a malloc'd buffer, or NULL. */
static uint8_t *read_all(int fd, uint64_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    for (uint64_t done = 0; buf && done < size;) {
        ssize_t r = pread(fd, buf + done, size - done, (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            return NULL;
        }
        done += (uint64_t)r;
    }
    return buf;
}

static void h_backup(http_req_t *req, void *data)
{
    sidecar_api_t *api = data;
    store_t *st = sidecar_node_store(api->node);
    int fd = -1;
    store_snapshot_info_t info;
    int rv = store_backup(st, &fd, &info);
    if (rv == STORE_ECHECKSUM) {
        api_reply_corrupt(api, req);
        return;
    }
    if (rv != 0) {
        SIDECAR_LOG(SIDECAR_LOG_ERROR, "backup failed",
                    SIDECAR_LOG_STR("error", store_strerror(rv)),
                    SIDECAR_LOG_STR("detail", store_errmsg(st)));
        if (rv == STORE_EINVAL)
            http_req_reply_error(req, 503, "not_ready", store_errmsg(st));
        else
            http_req_reply_error(req, 500, "backup_failed", store_errmsg(st));
        return;
    }
    uint8_t *buf = info.size <= BACKUP_MAX_BYTES ? read_all(fd, info.size) : NULL;
    close(fd);
    if (buf == NULL) {
        http_req_reply_error(req, 500, "backup_failed",
                             info.size > BACKUP_MAX_BYTES ? "the backup is over 1 GiB"
                                                          : "cannot read the backup file back");
        return;
    }
    char v[24];
    snprintf(v, sizeof(v), "%" PRIu64, info.index);
    http_req_header_add(req, "X-Electd-Backup-Index", v);
    snprintf(v, sizeof(v), "%" PRIu64, info.term);
    http_req_header_add(req, "X-Electd-Backup-Term", v);
    http_req_reply(req, 200, "application/vnd.sqlite3", buf, (size_t)info.size);
    free(buf);
    SIDECAR_LOG(SIDECAR_LOG_INFO, "backup taken", SIDECAR_LOG_UINT("index", info.index),
                SIDECAR_LOG_UINT("term", info.term), SIDECAR_LOG_UINT("bytes", info.size));
}

void api_backup_register(sidecar_api_t *api)
{
    /* admin: the token of the mutating endpoints, not the workload's scoped one */
    http_server_route(api->srv, HTTP_METHOD_GET, "/v1/backup", HTTP_ROUTE_MUTATING, h_backup, api);
}
