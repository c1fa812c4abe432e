/* events_tool.c — the overlap checker of tests/integration/events.h for the shell-driven
 * container tests: they run the test worker inside containers that share one event file.
 *
 *   events_tool check FILE                  exit 0 when no two primaries overlapped; prints
 *                                           the intervals, and why when they did (exit 1)
 *   events_tool wait FILE NOT_NODE MIN TIMEOUT_MS
 *                                           waits (bounded) until a workload runs on a node
 *                                           other than NOT_NODE ("-": any) with at least MIN
 *                                           starts in the file; prints "NODE PID TOKEN"
 *   events_tool gap FILE                    the newest interval against the one before it:
 *                                           prints "NODE GAP_MS STOPPED" (STOPPED: whether the
 *                                           previous one ended with a stop line) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"

static events_t ev; /* large: not on the stack */

static int usage(void)
{
    fprintf(stderr, "usage: events_tool check FILE | wait FILE NOT_NODE MIN TIMEOUT_MS | "
                    "gap FILE\n");
    return 2;
}

static int check(const char *path)
{
    char why[512];
    if (!events_load(path, &ev)) {
        fprintf(stderr, "events_tool: cannot read %s\n", path);
        return 1;
    }
    for (size_t i = 0; i < ev.n; i++)
        printf("%s pid %d token %llu [%llu, %llu] %s\n", ev.iv[i].node, ev.iv[i].pid,
               (unsigned long long)ev.iv[i].token, (unsigned long long)ev.iv[i].start_ns,
               (unsigned long long)ev.iv[i].end_ns,
               ev.iv[i].stopped ? "stopped"
               : ev.iv[i].open  ? "running"
                                : "ended");
    if (!events_file_no_overlap(path, why, sizeof(why))) {
        printf("OVERLAP: %s\n", why);
        return 1;
    }
    printf("no overlap in %zu intervals\n", ev.n);
    return 0;
}

static int wait_running(const char *path, const char *not_node, const char *min, const char *ms)
{
    int i = events_wait_running(path, strcmp(not_node, "-") == 0 ? NULL : not_node,
                                (size_t)strtoul(min, NULL, 10), atoi(ms));
    if (i < 0 || !events_load(path, &ev) || (size_t)i >= ev.n)
        return 1;
    printf("%s %d %llu\n", ev.iv[i].node, ev.iv[i].pid, (unsigned long long)ev.iv[i].token);
    return 0;
}

static int gap(const char *path)
{
    if (!events_load(path, &ev) || ev.n < 2)
        return 1;
    const events_interval_t *prev = &ev.iv[ev.n - 2], *last = &ev.iv[ev.n - 1];
    long long gap_ns = (long long)last->start_ns - (long long)prev->end_ns;
    printf("%s %lld %s\n", last->node, gap_ns / 1000000, prev->stopped ? "stopped" : "killed");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "check") == 0)
        return check(argv[2]);
    if (argc == 6 && strcmp(argv[1], "wait") == 0)
        return wait_running(argv[2], argv[3], argv[4], argv[5]);
    if (argc == 3 && strcmp(argv[1], "gap") == 0)
        return gap(argv[2]);
    return usage();
}
