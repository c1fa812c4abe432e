/* verify.h — checks what the demo promises about a finished run of binlog workers, from
 * their sink file and their start/checkpoint/stop log:
 *   - no event skipped: every event 1..max was shipped at least once, each run in order;
 *   - events shipped twice come only from after the last acknowledged checkpoint (a new
 *     primary never resumes from before a checkpoint that electd acknowledged);
 *   - primaries never overlapped: each run's last action precedes the next run's start,
 *     and fencing tokens never go back.
 *
 * File formats (one line per record, written with O_APPEND by binlog_worker):
 *   sink: <seq> <node> <pid> <token> <mono_ns> <event text...>
 *   log:  <mono_ns> <node> start <pid> token=<T> resume=<seq>
 *         <mono_ns> <node> checkpoint <pid> seq=<S> <ok|fenced|error>
 *         <mono_ns> <node> stop <pid> last=<S> <reason>
 */
#ifndef BINLOG_VERIFY_H
#define BINLOG_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BINLOG_VERIFY_MAX_RUNS 1024       /* primary runs in one history */
#define BINLOG_VERIFY_MAX_SEQ  10000000ul /* events in one history */
#define BINLOG_VERIFY_NODE_MAX 64

typedef struct binlog_run {
    char node[BINLOG_VERIFY_NODE_MAX];
    int pid;
    uint64_t token;
    uint64_t resume;   /* last event already shipped according to the checkpoint it read */
    uint64_t start_ns; /* its "start" line */
    uint64_t end_ns;   /* its "stop" line, else its last sink or checkpoint line */
    uint64_t last;     /* last event it shipped (resume when none) */
    uint64_t shipped;  /* sink lines it wrote */
    uint64_t acked;    /* highest checkpoint electd acknowledged to it (0: none) */
    bool stopped;      /* ended with a "stop" line */
    char reason[32];   /* the stop line's reason */
} binlog_run_t;

typedef struct binlog_report {
    binlog_run_t runs[BINLOG_VERIFY_MAX_RUNS];
    size_t nruns;
    uint64_t max_seq;       /* highest event shipped */
    uint64_t skipped;       /* events in 1..max_seq never shipped */
    uint64_t shipped_twice; /* extra copies beyond the first */
    uint64_t max_dup_run;   /* most events one run re-shipped */
    uint64_t min_gap_ns;    /* shortest time between one run's end and the next's start */
    uint64_t max_gap_ns;
    size_t overlaps;         /* runs that started before an earlier one ended */
    size_t problems;         /* 0: the history passes */
    char first_problem[256]; /* what went wrong first, for the summary */
} binlog_report_t;

/* Checks the history given as the two files' contents (NUL-terminated). Fills *r (caller
 * owned; large: allocate it, do not put it on a small stack). Returns 0 when the history
 * passes, 1 when it violates a promise (r->first_problem says which), -1 when the input is
 * malformed or over the limits (r->first_problem says where). */
int binlog_verify(const char *sink, const char *log, binlog_report_t *r);

/* Prints the verdict, a few lines meant for people. */
void binlog_verify_print(const binlog_report_t *r, FILE *out);

#endif
