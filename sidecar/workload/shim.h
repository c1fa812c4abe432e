/* shim.h — the exec shim: a tiny process between electd and a supervised workload.
 *
 * electd runs its own binary as `electd __shim FD STOP_MS PARENT DATA_DIR -- CMD ARGS...`
 * (PARENT: electd's pid; DATA_DIR: its data directory, so that a restarted electd can find
 * the shims of its previous run in /proc and wait for them), or a clone of its spawner whose
 * command line reads the same (spawner.c). The shim forks
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
 * order: both ends are on this machine); 'E' + u64 term: the deadlines belong to the lease
 * of that term (the default election only, sent after a 'D'); 'T' + u64 0: stop now
 * (SIGTERM, SIGKILL after STOP_MS or at the deadline, whichever is first).
 *
 * Released lease: when electd dies (not frozen: dies) while the workload runs under its lease
 * and nothing else has stopped it, and the shim was told the term ('E'), the shim stops the
 * workload as above, confirms that its whole process group is gone (zombies count until they
 * are reaped; at most GROUP_GONE_WAIT_MS), and only then sends the other members the
 * released-lease notice for that term (sidecar_notice_send, node.h), with the notice kit
 * electd keeps in DATA_DIR (SIDECAR_NOTICE_KIT). Nothing secret is on its command line.
 *
 * With FD -1 there is no lease to watch: hooks run this way, so that a hook too gets its own
 * process group and dies with electd (SIGTERM to the shim stops the group the same way).
 *
 * With `--log-json NODE` before the `--` (electd's --log-format=json, a supervised workload
 * only), the shim writes JSON: its own lines carry "src":"shim", and the workload's stdout
 * and stderr come through pipes (shim_output.c) and leave as one record per line on the
 * shim's stdout and stderr, {"src":"workload","stream":"stdout","line":…}. Without it (text
 * mode, hooks: electd captures a hook's output itself) the workload inherits the shim's
 * stdout and stderr, and the shim's own lines are "electd-shim[PID]: …".
 *
 * The shim exits with the workload's exit status (128 + signal for a signal).
 */
#ifndef ELECTD_SIDECAR_SHIM_H
#define ELECTD_SIDECAR_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "workload.h" /* SIDECAR_SHIM_ARG, sidecar_shim_main */

#define SIDECAR_SHIM_MSG         9
#define SIDECAR_SHIM_EXEC_FAILED 127          /* the workload could not be executed */
#define SIDECAR_SHIM_LOG_JSON    "--log-json" /* optional argument: JSON output (above) */

/* ---- shim_output.c: the workload's output as JSON records ----------------------------- */

#define SHIM_STREAMS  2    /* stdout, stderr */
#define SHIM_LINE_MAX 4096 /* bytes of a line held; a longer one leaves in several records */

struct pollfd;

typedef struct shim_stream {
    int rd, wr;       /* the pipe: the shim reads rd, the workload has wr as dest */
    int dest;         /* 1 or 2: the shim's own stream the records go to */
    const char *name; /* "stdout", "stderr" */
    int slot;         /* its entry in the last poll set, -1 for none */
    char buf[SHIM_LINE_MAX];
    size_t have;
} shim_stream_t;

typedef struct shim_output {
    shim_stream_t s[SHIM_STREAMS];
} shim_output_t;

/* Makes both pipes; 0 or -1. */
int shim_output_open(shim_output_t *o);
/* In the forked child before exec: the pipes become its stdout and stderr. */
void shim_output_child(shim_output_t *o);
/* In the shim after the fork: drops the workload's ends (EOF comes when it is gone). */
void shim_output_parent(shim_output_t *o);
void shim_output_close(shim_output_t *o);
/* Writes what is due and adds to p (room for SHIM_STREAMS) what to wait for: a pipe to read,
 * or a destination to drain. Returns the entries added. */
size_t shim_output_pollfds(shim_output_t *o, struct pollfd *p);
/* After poll: reads and writes what p says is ready. */
void shim_output_step(shim_output_t *o, const struct pollfd *p);
/* True when both pipes are closed and every byte written. */
bool shim_output_done(shim_output_t *o);

/* Builds one pipe command into buf[SIDECAR_SHIM_MSG]. */
void sidecar_shim_msg(uint8_t *buf, char cmd, uint64_t value);

/* Calls fn(pid, arg) for each process listed in /proc but the caller, until fn returns false;
 * bounded: at most 65,536 entries are looked at. False when /proc cannot be read (procscan.c;
 * the spawner and the wait for a previous run's shims both scan with it). */
bool shim_proc_each(bool (*fn)(long pid, void *arg), void *arg);

#endif
