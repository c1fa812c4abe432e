/* events.h — reads the testworker's event file and checks what the promises say about it:
 * primary intervals never overlap, hooks on a node never overlap. */
#ifndef ELECTD_TESTS_EVENTS_H
#define ELECTD_TESTS_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVENTS_MAX_INTERVALS 256
#define EVENTS_ALIVE_NS      5000000ull /* the worker's alive period */

typedef struct events_interval {
    char node[16];
    int pid;
    uint64_t start_ns;
    uint64_t end_ns; /* stop, or last alive + one period when the worker was killed */
    bool stopped;    /* ended with a "stop" line (graceful) */
    bool open;       /* no end seen yet (still running at the time of reading) */
    uint64_t token;  /* ELECTD_FENCING_TOKEN at start */
} events_interval_t;

typedef struct events {
    events_interval_t iv[EVENTS_MAX_INTERVALS];
    size_t n;
} events_t;

/* Parses the workload lines of path (others are ignored). Returns false if unreadable. */
bool events_load(const char *path, events_t *ev);

/* The text of path (up to 4 MiB), "" when unreadable: a buffer of its own (not events_load's),
 * overwritten by the next call. */
char *events_read(const char *path);

/* How many times needle occurs in text. */
int events_count(const char *text, const char *needle);

/* Parses from a string (for the checker's own tests). */
void events_parse(const char *text, events_t *ev);

/* The first pair of intervals of different processes (node and pid) that overlap; false if
 * none. An interval without a stop line ends one alive period after its last alive line: the
 * worker was killed, or is still running (read the file after stopping everything). */
bool events_overlap(const events_t *ev, size_t *a, size_t *b);

/* Polls path (bounded, every 10 ms) until its newest interval is open (a workload runs) on a
 * node other than not_node (NULL: any) and at least min_starts intervals exist; returns that
 * interval's index, or -1 after timeout_ms. */
int events_wait_running(const char *path, const char *not_node, size_t min_starts, int timeout_ms);

/* events_wait_running for the first workload of a group: its interval into *out. False when
 * none ran within timeout_ms. */
bool events_first_primary(const char *path, int timeout_ms, events_interval_t *out);

/* Reads path and checks that no two primaries overlapped: true when none did; otherwise (or
 * when path is unreadable) false with why[] naming the two intervals. */
bool events_file_no_overlap(const char *path, char *why, size_t cap);

/* Number of intervals that started on node (NULL = any). */
size_t events_starts(const events_t *ev, const char *node);

/* Hook lines are "<ns> <node> hook-begin NAME ROLE" / "<ns> <node> hook-end NAME": true if
 * two hooks of the same node ever ran at once. */
bool events_hooks_overlap(const char *text);

/* A hook-mode primary period: from a node's "hook-begin start" to its next "hook-end stop"
 * (end UINT64_MAX while open). */
typedef struct events_hook_period {
    char node[16];
    uint64_t begin_ns, end_ns;
    bool open;
} events_hook_period_t;

/* The hook lines of text as primary periods, in the order they began (the rules of
 * events_hook_primaries_overlap, below); at most cap. cut (NULL: none) is asked before each
 * line of a node whose period is open, and may end that period first: it returns the end, or
 * UINT64_MAX to keep it open. */
size_t
events_hook_periods(const char *text, uint64_t lease_ns, events_hook_period_t *pp, size_t cap,
                    uint64_t (*cut)(const events_hook_period_t *p, uint64_t line_ns, void *arg),
                    void *arg);

/* Hook-mode primaries across nodes. A node is primary from its "hook-begin start" until its
 * next "hook-end stop"; when that line carries a word after the name ("failed", "killed":
 * the on-stop did not complete), the node may still count as primary until its lease ran
 * out, so its period is extended by lease_ns. A period without its on-stop end never ends.
 * True if two nodes' periods overlap; why[] then names them. */
bool events_hook_primaries_overlap(const char *text, uint64_t lease_ns, char *why, size_t cap);

#endif
