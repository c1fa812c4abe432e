/* shim.h — the exec shim: a tiny process between electd and a supervised workload.
 *
 * electd runs its own binary as `electd __shim FD STOP_MS PARENT DATA_DIR -- CMD ARGS...`
 * (PARENT: electd's pid; DATA_DIR: its data directory, so that a restarted electd can find
 * the shims of its previous run in /proc and wait for them). The shim forks
 * the workload into a new process group, stays as its parent, and enforces three rules
 * even when electd is frozen (SIGSTOP, a stuck disk) or dead:
 *
 *  - lease watchdog: electd renews an absolute CLOCK_BOOTTIME deadline over the pipe FD;
 *    at deadline - STOP_MS the whole group gets SIGTERM, at the deadline SIGKILL;
 *  - tied to electd's life: the shim asks the kernel for a signal when its parent dies
 *    (PR_SET_PDEATHSIG), finds itself orphaned if its parent is not PARENT any more, and a
 *    closed pipe means the same: the group is stopped;
 *  - the whole tree: signals go to the process group, and when the workload's main
 *    process exits the rest of its group is killed before the shim exits.
 *
 * Commands on the pipe, 9 bytes each: 'D' + u64 deadline (ns, CLOCK_BOOTTIME, native byte
 * order: both ends are on this machine); 'T' + u64 0: stop now (SIGTERM, SIGKILL after
 * STOP_MS or at the deadline, whichever is first).
 *
 * With FD -1 there is no lease to watch: hooks run this way, so that a hook too gets its own
 * process group and dies with electd (SIGTERM to the shim stops the group the same way).
 *
 * The shim exits with the workload's exit status (128 + signal for a signal).
 */
#ifndef ELECTD_SIDECAR_SHIM_H
#define ELECTD_SIDECAR_SHIM_H

#include <stdint.h>

#include "workload.h" /* SIDECAR_SHIM_ARG, sidecar_shim_main */

#define SIDECAR_SHIM_MSG         9
#define SIDECAR_SHIM_EXEC_FAILED 127 /* the workload could not be executed */

/* Builds one pipe command into buf[SIDECAR_SHIM_MSG]. */
void sidecar_shim_msg(uint8_t *buf, char cmd, uint64_t value);

#endif
