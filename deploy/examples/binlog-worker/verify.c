/* verify.c — the demo's final verification of a binlog-worker history (see verify.h). */
#include "verify.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES 4096

static void problem(binlog_report_t *r, const char *fmt, ...)
{
    if (r->problems++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->first_problem, sizeof(r->first_problem), fmt, ap);
        va_end(ap);
    }
}

/* Copies the next line of *text into buf (cut at LINE_MAX_BYTES) and advances; false at end. */
static bool next_line(const char **text, char *buf)
{
    const char *p = *text;
    if (*p == '\0')
        return false;
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    size_t n = len < LINE_MAX_BYTES - 1 ? len : LINE_MAX_BYTES - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    *text = nl ? nl + 1 : p + len;
    return true;
}

/* The run of (node, pid) that was live at ns: the latest one that started at or before it
 * (a pid may be reused by a later run). */
static binlog_run_t *find_run(binlog_report_t *r, const char *node, int pid, uint64_t ns)
{
    binlog_run_t *best = NULL;
    for (size_t i = 0; i < r->nruns; i++) {
        binlog_run_t *run = &r->runs[i];
        if (run->pid == pid && strcmp(run->node, node) == 0 && run->start_ns <= ns &&
            (best == NULL || run->start_ns > best->start_ns))
            best = run;
    }
    return best;
}

static int by_start(const void *a, const void *b)
{
    const binlog_run_t *x = a, *y = b;
    return x->start_ns < y->start_ns ? -1 : x->start_ns > y->start_ns;
}

static int parse_log(const char *log, binlog_report_t *r)
{
    char line[LINE_MAX_BYTES];
    char node[BINLOG_VERIFY_NODE_MAX], kind[16], word[32];
    unsigned long long ns, a;
    int pid;
    size_t lineno = 0;
    /* Pass 1: the runs, so that a checkpoint or stop line finds its run whatever the order. */
    for (const char *p = log; next_line(&p, line);) {
        lineno++;
        if (line[0] == '\0')
            continue;
        unsigned long long token, resume;
        if (sscanf(line, "%llu %63s %15s %d", &ns, node, kind, &pid) != 4)
            goto malformed;
        if (strcmp(kind, "start") != 0)
            continue;
        if (sscanf(line, "%*u %*s %*s %*d token=%llu resume=%llu", &token, &resume) != 2)
            goto malformed;
        if (r->nruns == BINLOG_VERIFY_MAX_RUNS) {
            snprintf(r->first_problem, sizeof(r->first_problem), "more than %d runs",
                     BINLOG_VERIFY_MAX_RUNS);
            return -1;
        }
        binlog_run_t *run = &r->runs[r->nruns++];
        memset(run, 0, sizeof(*run));
        snprintf(run->node, sizeof(run->node), "%s", node);
        run->pid = pid;
        run->token = token;
        run->resume = run->last = resume;
        run->start_ns = run->end_ns = ns;
    }
    qsort(r->runs, r->nruns, sizeof(r->runs[0]), by_start);
    lineno = 0;
    for (const char *p = log; next_line(&p, line);) {
        lineno++;
        if (line[0] == '\0')
            continue;
        if (sscanf(line, "%llu %63s %15s %d", &ns, node, kind, &pid) != 4)
            goto malformed;
        if (strcmp(kind, "start") == 0)
            continue;
        binlog_run_t *run = find_run(r, node, pid, ns);
        if (strcmp(kind, "checkpoint") == 0) {
            if (sscanf(line, "%*u %*s %*s %*d seq=%llu %31s", &a, word) != 2)
                goto malformed;
            if (run == NULL) {
                problem(r, "log line %zu: checkpoint by %s pid %d, which never started", lineno,
                        node, pid);
                continue;
            }
            if (strcmp(word, "ok") == 0 && a > run->acked)
                run->acked = a;
        } else if (strcmp(kind, "stop") == 0) {
            if (sscanf(line, "%*u %*s %*s %*d last=%llu %31s", &a, word) != 2)
                goto malformed;
            if (run == NULL) {
                problem(r, "log line %zu: stop by %s pid %d, which never started", lineno, node,
                        pid);
                continue;
            }
            run->stopped = true;
            snprintf(run->reason, sizeof(run->reason), "%s", word);
        } else {
            goto malformed;
        }
        if (run != NULL && ns > run->end_ns)
            run->end_ns = ns;
    }
    return 0;

malformed:
    snprintf(r->first_problem, sizeof(r->first_problem), "log line %zu is malformed", lineno);
    return -1;
}

/* Reads the sink: per-run order and tokens, and how often each event was shipped. */
static int parse_sink(const char *sink, binlog_report_t *r, uint8_t **counts_out)
{
    char line[LINE_MAX_BYTES], node[BINLOG_VERIFY_NODE_MAX];
    unsigned long long seq, token, ns;
    int pid;
    size_t lineno = 0, cap = 0;
    uint8_t *counts = NULL;
    for (const char *p = sink; next_line(&p, line);) {
        lineno++;
        if (line[0] == '\0')
            continue;
        if (sscanf(line, "%llu %63s %d %llu %llu", &seq, node, &pid, &token, &ns) != 5 ||
            seq == 0 || seq > BINLOG_VERIFY_MAX_SEQ) {
            snprintf(r->first_problem, sizeof(r->first_problem),
                     "sink line %zu is malformed or over the limit of %lu events", lineno,
                     BINLOG_VERIFY_MAX_SEQ);
            free(counts);
            return -1;
        }
        if (seq >= cap) {
            size_t ncap = cap ? cap : 4096;
            while (ncap <= seq)
                ncap *= 2;
            uint8_t *n = realloc(counts, ncap);
            if (n == NULL) {
                snprintf(r->first_problem, sizeof(r->first_problem), "out of memory");
                free(counts);
                return -1;
            }
            memset(n + cap, 0, ncap - cap);
            counts = n;
            cap = ncap;
        }
        if (counts[seq] < UINT8_MAX)
            counts[seq]++;
        if (seq > r->max_seq)
            r->max_seq = seq;

        binlog_run_t *run = find_run(r, node, pid, ns);
        if (run == NULL) {
            problem(r, "sink line %zu: event %llu shipped by %s pid %d, which never started",
                    lineno, seq, node, pid);
            continue;
        }
        if (seq != run->last + 1)
            problem(r, "%s pid %d shipped event %llu right after %" PRIu64 " (out of order)",
                    run->node, run->pid, seq, run->last);
        if (token != run->token)
            problem(r, "%s pid %d shipped event %llu with token %llu, started with %" PRIu64,
                    run->node, run->pid, seq, token, run->token);
        if (run->stopped && ns > run->end_ns)
            problem(r, "%s pid %d shipped event %llu after it logged stop", run->node, run->pid,
                    seq);
        run->last = seq;
        run->shipped++;
        if (ns > run->end_ns)
            run->end_ns = ns;
    }
    *counts_out = counts;
    return 0;
}

int binlog_verify(const char *sink, const char *log, binlog_report_t *r)
{
    /* Only the header fields: the run table is filled as far as nruns says. */
    r->nruns = 0;
    r->max_seq = r->skipped = r->shipped_twice = r->max_dup_run = 0;
    r->overlaps = 0;
    r->min_gap_ns = UINT64_MAX;
    r->max_gap_ns = 0;
    r->problems = 0;
    r->first_problem[0] = '\0';
    uint8_t *counts = NULL;
    if (parse_log(log, r) != 0 || parse_sink(sink, r, &counts) != 0)
        return -1;

    uint64_t first_skipped = 0;
    for (uint64_t s = 1; s <= r->max_seq; s++) {
        if (counts[s] == 0) {
            if (r->skipped++ == 0)
                first_skipped = s;
        } else {
            r->shipped_twice += counts[s] - 1u;
        }
    }
    free(counts);
    if (r->skipped > 0)
        problem(r, "%" PRIu64 " events never shipped, the first is %" PRIu64, r->skipped,
                first_skipped);

    uint64_t acked = 0, shipped = 0, end = 0, token = 0;
    for (size_t i = 0; i < r->nruns; i++) {
        binlog_run_t *run = &r->runs[i];
        if (i > 0) {
            const binlog_run_t *prev = &r->runs[i - 1];
            /* Promise 3 at work: a checkpoint electd acknowledged is what the next primary
             * reads, so nothing at or below it is ever shipped again. */
            if (run->resume < acked)
                problem(r,
                        "%s pid %d resumed after event %" PRIu64 ", but checkpoint %" PRIu64
                        " had been acknowledged",
                        run->node, run->pid, run->resume, acked);
            if (run->resume > shipped)
                problem(r,
                        "%s pid %d resumed after event %" PRIu64 ", but only %" PRIu64
                        " had been shipped (events skipped)",
                        run->node, run->pid, run->resume, shipped);
            /* Promise 1: the previous primaries had finished before this one began. */
            if (end >= run->start_ns) {
                r->overlaps++;
                problem(r,
                        "primaries overlapped: %s pid %d started %.3f ms before the last one ended",
                        run->node, run->pid, (double)(end - run->start_ns) / 1e6);
            } else {
                uint64_t gap = run->start_ns - end;
                if (gap < r->min_gap_ns)
                    r->min_gap_ns = gap;
                if (gap > r->max_gap_ns)
                    r->max_gap_ns = gap;
            }
            if (run->token < token || (run->token == token && strcmp(run->node, prev->node) != 0))
                problem(r, "fencing token went from %" PRIu64 " (%s) to %" PRIu64 " (%s)", token,
                        prev->node, run->token, run->node);
            uint64_t redone = (run->last < shipped ? run->last : shipped);
            redone = redone > run->resume ? redone - run->resume : 0;
            if (redone > r->max_dup_run)
                r->max_dup_run = redone;
        }
        if (run->acked > acked)
            acked = run->acked;
        if (run->last > shipped)
            shipped = run->last;
        if (run->end_ns > end)
            end = run->end_ns;
        if (run->token > token)
            token = run->token;
    }
    if (r->nruns == 0)
        problem(r, "no primary ever started");
    if (r->min_gap_ns == UINT64_MAX)
        r->min_gap_ns = 0;
    return r->problems == 0 ? 0 : 1;
}

void binlog_verify_print(const binlog_report_t *r, FILE *out)
{
    fprintf(out, "  primaries (in order):\n");
    for (size_t i = 0; i < r->nruns; i++) {
        const binlog_run_t *run = &r->runs[i];
        if (run->shipped > 0)
            fprintf(out,
                    "    %-8s pid %-7d token %-4" PRIu64 " events %" PRIu64 "..%" PRIu64
                    " (resumed after %" PRIu64 ")  ended: %s\n",
                    run->node, run->pid, run->token, run->resume + 1, run->last, run->resume,
                    run->stopped ? run->reason : "killed");
        else
            fprintf(out,
                    "    %-8s pid %-7d token %-4" PRIu64 " no events (resumed after %" PRIu64
                    ")  ended: %s\n",
                    run->node, run->pid, run->token, run->resume,
                    run->stopped ? run->reason : "killed");
    }
    fprintf(out, "  events shipped: %" PRIu64 " (1..%" PRIu64 "), skipped: %" PRIu64 "\n",
            r->max_seq - r->skipped, r->max_seq, r->skipped);
    fprintf(out,
            "  shipped twice: %" PRIu64
            " (all after the last acknowledged checkpoint; at most %" PRIu64 " in one takeover)\n",
            r->shipped_twice, r->max_dup_run);
    if (r->nruns > 1)
        fprintf(out,
                "  primaries overlapped: %s (time between one primary's last action and the next "
                "one's start: %.0f..%.0f ms)\n",
                r->overlaps > 0 ? "YES" : "never", (double)r->min_gap_ns / 1e6,
                (double)r->max_gap_ns / 1e6);
    if (r->problems == 0)
        fprintf(out, "  verification: PASS\n");
    else
        fprintf(out, "  verification: FAIL (%zu problems): %s\n", r->problems, r->first_problem);
}
