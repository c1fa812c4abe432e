/* bench_named.c — named elections on a real 3-member electd group on loopback; prints tables
 * (median, p99, min, max over runs). Not a test: it never fails on time.
 *
 *   failover: 6 supervised elections spread 2/2/2; kill -9 of a member -> each of its
 *             elections' successor workload started (per election, and the last of them),
 *             for a member that is not the Raft leader and for the leader
 *   scale:    1,000 hook-mode elections; RSS and CPU of each member once idle, and kill -9 of
 *             a member -> the last of its ~333 elections started elsewhere (on-start run)
 *
 * Usage: bench_named [--runs N] [--only failover|scale] [--scale-runs N] [--idle-seconds S]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "events.h"

#define N_SMALL 6
#define N_LARGE 1000

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void row(const char *what, double *v, int n, const char *unit)
{
    if (n == 0) {
        printf("| %-52s | %4d | %9s | %9s | %9s | %9s |\n", what, 0, "-", "-", "-", "-");
        return;
    }
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    int p99 = (int)(0.99 * (n - 1) + 0.5);
    printf("| %-52s | %4d | %7.1f%s | %7.1f%s | %7.1f%s | %7.1f%s |\n", what, n, v[n / 2], unit,
           v[p99], unit, v[0], unit, v[n - 1], unit);
    fflush(stdout);
}

static void header(const char *title)
{
    printf("\n%s\n\n| %-52s | %4s | %9s | %9s | %9s | %9s |\n", title, "case", "runs", "median",
           "p99", "min", "max");
    printf("|------------------------------------------------------|------|-----------|---------"
           "--|-----------|-----------|\n");
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- failover of 6 supervised elections ------------------------------------------------- */

static void small_path(itest_cluster_t *c, int e, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/events-e%d", c->root, e);
}

static void small_start(itest_cluster_t *c)
{
    itest_cluster_init(c, 3, 3);
    itest_cluster_arg(c, "--log-level=warn");
    static char cfg[400];
    snprintf(cfg, sizeof(cfg), "%s/electd.json", c->root);
    FILE *f = fopen(cfg, "w");
    fprintf(f, "{\"elections\":{");
    for (int e = 0; e < N_SMALL; e++) {
        char path[400];
        small_path(c, e, path, sizeof(path));
        fprintf(f, "%s\"e%d\":{\"exec\":[\"%s\",\"%s\"]}", e ? "," : "", e, TESTWORKER_BIN, path);
    }
    fprintf(f, "}}\n");
    fclose(f);
    itest_cluster_arg(c, "--config");
    itest_cluster_arg(c, cfg);
    itest_cluster_start(c);
}

/* The open interval of election e, or false. */
static bool small_running(itest_cluster_t *c, int e, events_interval_t *out)
{
    char path[400];
    small_path(c, e, path, sizeof(path));
    events_t ev;
    if (!events_load(path, &ev) || ev.n == 0 || !ev.iv[ev.n - 1].open)
        return false;
    *out = ev.iv[ev.n - 1];
    return true;
}

static bool small_spread(itest_cluster_t *c, events_interval_t now[N_SMALL], int timeout_ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    do {
        int per[3] = {0}, ok = 0;
        for (int e = 0; e < N_SMALL; e++)
            if (small_running(c, e, &now[e])) {
                ok++;
                per[now[e].node[0] - 'a']++;
            }
        if (ok == N_SMALL && per[0] == 2 && per[1] == 2 && per[2] == 2)
            return true;
        usleep(10000);
    } while (itest_now_ms() < deadline);
    return false;
}

static void bench_failover(int runs, bool leader)
{
    double *each = calloc((size_t)runs * N_SMALL, sizeof(double));
    double *last = calloc((size_t)runs, sizeof(double));
    int n_each = 0, n_last = 0, overlaps = 0, kept_running = 0, healthy = 0;
    for (int r = 0; r < runs; r++) {
        itest_cluster_t c;
        small_start(&c);
        int l = itest_wait_leader(&c, 20000);
        events_interval_t before[N_SMALL];
        if (l < 0 || !small_spread(&c, before, 60000)) {
            itest_cluster_destroy(&c);
            continue;
        }
        usleep(300000); /* sessions in their steady state */
        int victim = leader ? l : (l + 1) % 3;
        uint64_t t0 = mono_ns();
        itest_node_signal(&c, victim, SIGKILL);
        uint64_t deadline = itest_now_ms() + 20000;
        double worst = 0;
        int moved = 0, to_move = 0;
        for (int e = 0; e < N_SMALL; e++)
            to_move += before[e].node[0] - 'a' == victim;
        bool done[N_SMALL] = {false};
        while (moved < to_move && itest_now_ms() < deadline) {
            for (int e = 0; e < N_SMALL; e++) {
                events_interval_t now;
                if (done[e] || before[e].node[0] - 'a' != victim || !small_running(&c, e, &now) ||
                    now.node[0] - 'a' == victim)
                    continue;
                done[e] = true;
                moved++;
                double ms = (double)(now.start_ns - t0) / 1e6;
                each[n_each++] = ms;
                worst = ms > worst ? ms : worst;
            }
            usleep(2000);
        }
        if (moved == to_move)
            last[n_last++] = worst;
        for (int e = 0; e < N_SMALL; e++) {
            events_interval_t now;
            if (before[e].node[0] - 'a' == victim)
                continue;
            healthy++;
            kept_running += small_running(&c, e, &now) && now.pid == before[e].pid;
        }
        for (int i = 0; i < c.n; i++)
            if (c.nodes[i].pid)
                itest_node_stop(&c, i);
        for (int e = 0; e < N_SMALL; e++) {
            char path[400];
            small_path(&c, e, path, sizeof(path));
            events_t ev;
            size_t a, b;
            if (events_load(path, &ev) && events_overlap(&ev, &a, &b))
                overlaps++;
        }
        itest_cluster_destroy(&c);
    }
    char what[96];
    snprintf(what, sizeof(what), "%s: each of its elections", leader ? "leader" : "non-leader");
    row(what, each, n_each, "");
    snprintf(what, sizeof(what), "%s: the last of its elections", leader ? "leader" : "non-leader");
    row(what, last, n_last, "");
    printf("(elections on the other members still the same process: %d of %d; runs with "
           "overlapping primaries: %d)\n",
           kept_running, healthy, overlaps);
    free(each);
    free(last);
}

/* ---- 1,000 hook-mode elections ---------------------------------------------------------- */

static char stamp_path[400];

static void large_start(itest_cluster_t *c)
{
    itest_cluster_init(c, 3, 3);
    itest_cluster_arg(c, "--log-level=warn");
    static char cfg[400];
    snprintf(cfg, sizeof(cfg), "%s/electd.json", c->root);
    snprintf(stamp_path, sizeof(stamp_path), "%s/stamps", c->root);
    FILE *f = fopen(cfg, "w");
    fprintf(f, "{\"elections\":{");
    for (int e = 0; e < N_LARGE; e++)
        fprintf(f,
                "%s\"e%04d\":{\"on-start\":[\"%s\",\"--stamp\",\"%s\",\"start\",\"e%04d\"],"
                "\"on-stop\":[\"%s\",\"--stamp\",\"%s\",\"stop\",\"e%04d\"]}",
                e ? "," : "", e, TESTWORKER_BIN, stamp_path, e, TESTWORKER_BIN, stamp_path, e);
    fprintf(f, "}}\n");
    fclose(f);
    itest_cluster_arg(c, "--config");
    itest_cluster_arg(c, cfg);
    itest_cluster_start(c);
}

/* Counts "start" stamps after t0 from nodes other than `not` (0: any), and the newest ns. */
static int stamps_after(uint64_t t0, char not_node, uint64_t *newest)
{
    FILE *f = fopen(stamp_path, "r");
    if (f == NULL)
        return 0;
    char line[256], node[16], what[16], name[32];
    unsigned long long ns;
    int n = 0;
    *newest = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "%llu %15s %15s %31s", &ns, node, what, name) == 4 && ns > t0 &&
            strcmp(what, "start") == 0 && node[0] != not_node) {
            n++;
            *newest = ns > *newest ? ns : *newest;
        }
    fclose(f);
    return n;
}

/* How the starts after t0 spread in time (stderr): the first, quartiles and the last, in ms
 * from t0, per member that ran them. */
static void starts_spread(uint64_t t0, char not_node)
{
    static double ms[3][N_LARGE];
    int n[3] = {0};
    FILE *f = fopen(stamp_path, "r");
    if (f == NULL)
        return;
    char line[256], node[16], what[16], name[32];
    unsigned long long ns;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "%llu %15s %15s %31s", &ns, node, what, name) == 4 && ns > t0 &&
            strcmp(what, "start") == 0 && node[0] != not_node && node[0] >= 'a' && node[0] <= 'c' &&
            n[node[0] - 'a'] < N_LARGE)
            ms[node[0] - 'a'][n[node[0] - 'a']++] = (double)(ns - t0) / 1e6;
    fclose(f);
    for (int i = 0; i < 3; i++) {
        if (n[i] == 0)
            continue;
        qsort(ms[i], (size_t)n[i], sizeof(double), cmp_double);
        fprintf(stderr,
                "bench_named: %c started %d: first %.0f ms, quartiles %.0f / %.0f / %.0f, "
                "last %.0f\n",
                'a' + i, n[i], ms[i][0], ms[i][n[i] / 4], ms[i][n[i] / 2], ms[i][3 * n[i] / 4],
                ms[i][n[i] - 1]);
    }
}

/* Elections held by each member, from GET /v1/elections on node i (pages of 200: the test
 * client reads at most 64 KiB). */
static bool held_counts(itest_cluster_t *c, int i, int per[3])
{
    static char body[1 << 16];
    char path[128], after[32] = "";
    per[0] = per[1] = per[2] = 0;
    for (int page = 0; page < N_LARGE / 200 + 2; page++) {
        snprintf(path, sizeof(path), "/v1/elections?limit=200%s%s", after[0] ? "&after=" : "",
                 after);
        if (itest_http(c->nodes[i].http_port, "GET", path, NULL, body, sizeof(body)) != 200)
            return false;
        for (const char *p = body; (p = strstr(p, "\"holder\":\"")) != NULL; p++) {
            char h = p[strlen("\"holder\":\"")];
            if (h >= 'a' && h <= 'c')
                per[h - 'a']++;
        }
        const char *last = NULL;
        for (const char *p = body; (p = strstr(p, "\"name\":\"")) != NULL; p++)
            last = p + strlen("\"name\":\"");
        if (strstr(body, "\"more\":true") == NULL || last == NULL)
            return true;
        snprintf(after, sizeof(after), "%.*s", (int)strcspn(last, "\""), last);
    }
    return true;
}

static double cpu_s(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL || fgets(buf, sizeof(buf), f) == NULL) {
        if (f)
            fclose(f);
        return 0;
    }
    fclose(f);
    const char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
     */
    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void bench_scale(int runs, int idle_s)
{
    double rss[3 * 8], cpu[3 * 8], fo[8];
    int n_rss = 0, n_cpu = 0, n_fo = 0, held_victim = 0;
    for (int r = 0; r < runs && r < 8; r++) {
        itest_cluster_t c;
        large_start(&c);
        int l = itest_wait_leader(&c, 20000);
        int per[3] = {0};
        uint64_t deadline = itest_now_ms() + 120000;
        bool spread = false;
        while (l >= 0 && !spread && itest_now_ms() < deadline) {
            spread = held_counts(&c, l, per) && per[0] + per[1] + per[2] == N_LARGE &&
                     per[0] >= 333 && per[1] >= 333 && per[2] >= 333;
            if (!spread)
                usleep(200000);
        }
        if (!spread) {
            fprintf(stderr, "bench_named: 1,000 elections not spread (%d/%d/%d)\n", per[0], per[1],
                    per[2]);
            itest_cluster_destroy(&c);
            continue;
        }
        sleep(2); /* the last on-start hooks and handovers done */
        double c0[3];
        for (int i = 0; i < 3; i++)
            c0[i] = cpu_s(c.nodes[i].pid);
        sleep((unsigned)idle_s);
        for (int i = 0; i < 3; i++) {
            cpu[n_cpu++] = 100.0 * (cpu_s(c.nodes[i].pid) - c0[i]) / idle_s;
            rss[n_rss++] = (double)itest_proc_status(c.nodes[i].pid, "VmRSS:") / 1024.0;
        }
        int victim = (l + 1) % 3;
        held_victim = per[victim];
        for (int i = 0; i < 3; i++)
            c0[i] = cpu_s(c.nodes[i].pid);
        uint64_t t0 = mono_ns(), newest = 0;
        itest_node_signal(&c, victim, SIGKILL);
        if (getenv("BENCH_T0"))
            fprintf(stderr, "bench_named: kill at %.6f\n", (double)t0 / 1e9);
        deadline = itest_now_ms() + 60000;
        int got = 0;
        while (got < held_victim && itest_now_ms() < deadline) {
            got = stamps_after(t0, c.nodes[victim].name[0], &newest);
            usleep(20000);
        }
        if (got >= held_victim) {
            fo[n_fo++] = (double)(newest - t0) / 1e6;
            starts_spread(t0, c.nodes[victim].name[0]);
            /* Where the failover's CPU went: the survivors' own (their children not counted). */
            for (int i = 0; i < 3; i++)
                if (i != victim)
                    fprintf(stderr, "bench_named: %s used %.2f s of CPU from the kill on\n",
                            c.nodes[i].name, cpu_s(c.nodes[i].pid) - c0[i]);
        }
        itest_cluster_destroy(&c);
    }
    header("1,000 hook-mode elections on 3 members (default settings: E=1000ms)");
    row("idle RSS per member", rss, n_rss, "M");
    row("idle CPU per member (% of a core)", cpu, n_cpu, "%");
    char what[96];
    snprintf(what, sizeof(what), "kill -9 -> its %d elections' last on-start", held_victim);
    row(what, fo, n_fo, "");
}

int main(int argc, char **argv)
{
    int runs = 20, scale_runs = 3, idle_s = 10;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--scale-runs") == 0 && i + 1 < argc)
            scale_runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--idle-seconds") == 0 && i + 1 < argc)
            idle_s = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: bench_named [--runs N] [--scale-runs N] [--idle-seconds S] "
                            "[--only failover|scale]\n");
            return 2;
        }
    }
    if (!only || strcmp(only, "failover") == 0) {
        header("Named elections, 6 supervised, default settings (E=1000ms): kill -9 of a "
               "member -> successor's workload started (ms)");
        bench_failover(runs, false);
        bench_failover(runs, true);
    }
    if (!only || strcmp(only, "scale") == 0)
        bench_scale(scale_runs, idle_s);
    return 0;
}
