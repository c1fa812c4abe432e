/* faultvfs.h — a SQLite VFS shim for tests that fails reads, writes or syncs on command.
 * It wraps the default VFS under the name FAULTVFS_NAME; open a store with .vfs = FAULTVFS_NAME
 * and arm a fault: the first `after` matching calls pass, the next one fails (and, if
 * persistent, every one after it). */
#ifndef ELECTD_TEST_FAULTVFS_H
#define ELECTD_TEST_FAULTVFS_H

#include <stdbool.h>

#define FAULTVFS_NAME "faultvfs"

typedef enum faultvfs_kind {
    FAULT_WRITE = 1, /* xWrite / xTruncate fail with SQLITE_IOERR_WRITE */
    FAULT_FULL = 2,  /* xWrite / xTruncate fail with SQLITE_FULL (disk full) */
    FAULT_SYNC = 3,  /* xSync fails with SQLITE_IOERR_FSYNC */
    FAULT_READ = 4,  /* xRead fails with SQLITE_IOERR_READ */
} faultvfs_kind_t;

/* Registers the shim (idempotent). Returns 0 or a SQLite error code. */
int faultvfs_register(void);
void faultvfs_arm(faultvfs_kind_t kind, int after, bool persistent);
void faultvfs_disarm(void);
/* Failures injected since the last arm. */
int faultvfs_hits(void);
const char *faultvfs_kind_name(faultvfs_kind_t kind);

#endif
