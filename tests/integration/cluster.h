/* cluster.h — runs real electd processes on 127.0.0.1 for integration tests: free ports,
 * temporary data directories, start/kill/restart by PID, a tiny blocking HTTP client and
 * bounded polls of /v1/status. */
#ifndef ELECTD_TESTS_CLUSTER_H
#define ELECTD_TESTS_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ITEST_MAX_NODES 7
#define ITEST_MAX_ARGS  24

typedef struct itest_node {
    char name[8];
    int peer_port;
    int http_port;
    pid_t pid; /* 0 when not running */
    char dir[300];
    char log[300];
    bool joiner;                       /* not in the initial cluster */
    const char *extra[ITEST_MAX_ARGS]; /* per-node extra arguments */
    size_t n_extra;
} itest_node_t;

typedef struct itest_cluster {
    int n;
    itest_node_t nodes[ITEST_MAX_NODES];
    char root[256];
    char peers[1024];
    const char *extra[ITEST_MAX_ARGS]; /* arguments given to every node */
    size_t n_extra;
    const char *bin; /* the electd binary to run; NULL: ELECTD_BIN (a mutated build in tests
                        that show a checker catches a missing safety mechanism) */
} itest_cluster_t;

typedef struct itest_status {
    char role[16];
    char leader[16]; /* "" when none */
    uint64_t term;
    uint64_t commit;
    uint64_t applied;
    uint64_t last_index;
    int members;
    int voters;
} itest_status_t;

/* Prepares n nodes ("a", "b", ...) with fresh ports and data dirs under a temporary root;
 * the first `initial` form the initial cluster (--peers), the rest are spares. */
void itest_cluster_init(itest_cluster_t *c, int n, int initial);
void itest_cluster_arg(itest_cluster_t *c, const char *arg);
void itest_node_start(itest_cluster_t *c, int i);
void itest_cluster_start(itest_cluster_t *c);
/* Sends sig and, for SIGKILL/SIGTERM, reaps the process (bounded wait, then SIGKILL). */
void itest_node_signal(itest_cluster_t *c, int i, int sig);
/* A host that vanished: node i's electd and everything it started, SIGKILLed together — its
 * descendants (the shim first) before electd, so that no shim lives to see electd die and
 * announce a released lease in between (the process-crash path); electd is reaped. Returns
 * how many descendants were killed. */
int itest_node_kill_host(itest_cluster_t *c, int i);
/* Exit status of a node that was stopped with SIGTERM (as returned by waitpid). */
int itest_node_stop(itest_cluster_t *c, int i);
/* SIGTERM to every running member, each waited for as itest_node_stop does. */
void itest_cluster_stop_all(itest_cluster_t *c);
void itest_node_wipe(itest_cluster_t *c, int i);
/* Stops every node and removes the temporary root. */
void itest_cluster_destroy(itest_cluster_t *c);

/* One HTTP request to 127.0.0.1:port; returns the status code, or -1 on a connection error.
 * The body (NUL-terminated, truncated to cap-1) goes to out when out != NULL. */
int itest_http(int port, const char *method, const char *path, const char *body, char *out,
               size_t cap);

/* The same with one extra request header line ("Name: value"; NULL for none). */
int itest_http_h(int port, const char *method, const char *path, const char *header,
                 const char *body, char *out, size_t cap);

bool itest_status(itest_cluster_t *c, int i, itest_status_t *st);
/* Polls until every running node reports the same leader, and that leader says it leads;
 * returns its index, or -1 after timeout_ms. */
int itest_wait_leader(itest_cluster_t *c, int timeout_ms);
/* Polls until cond_fn(c, i, ud) is true for every running node i, or timeout_ms. */
bool itest_wait_all(itest_cluster_t *c, int timeout_ms,
                    bool (*cond_fn)(itest_cluster_t *c, int i, void *ud), void *ud);
uint64_t itest_now_ms(void);
/* Polls (5 ms, bounded) until process pid is gone (any process: a workload, not only electd). */
bool itest_pid_gone(int pid, int timeout_ms);
/* Makes the peer-TLS certificates of members a, b, c with script (make_peer_certs.sh) in a
 * new temporary directory, whose path goes to dir (cap bytes). False when it fails. */
bool itest_peer_certs(const char *script, char *dir, size_t cap);
/* The index of the node called name, or -1. */
int itest_node_index(const itest_cluster_t *c, const char *name);
/* The value of a counter (a metric without labels) in node i's /metrics, or -1. */
long itest_metric(itest_cluster_t *c, int i, const char *name);
/* Count of lines in node i's log containing needle. */
int itest_log_count(itest_cluster_t *c, int i, const char *needle);
/* The 0-based line of the first line of node i's log holding needle, or -1. */
int itest_log_find(itest_cluster_t *c, int i, const char *needle);

/* A numeric field of /proc/PID/status ("VmRSS:" in KiB, "voluntary_ctxt_switches:"), or -1. */
long itest_proc_status(int pid, const char *field);
/* DELETE /v1/members/NAME on node via, retried (bounded) while it answers 409 because a
 * configuration change is still settling. Returns the last status; the body goes to out. */
int itest_member_remove(itest_cluster_t *c, int via, const char *name, char *out, size_t cap);

/* Fills the file system holding dir up to free_left bytes free with the file dir/filler (remove
 * it to give the space back). Returns 0, or an errno value (EFBIG: less than twice free_left
 * was free). */
int itest_fs_fill(const char *dir, uint64_t free_left);

#endif
