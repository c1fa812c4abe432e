/* bench_cluster.c — measures a real 3-node electd cluster on loopback and prints tables
 * (median, p99, min, max over runs). Not a test: it never fails on time.
 *
 *   failover: kill -9 of the primary's electd -> the successor's workload started
 *   host-crash: kill -9 of the primary's electd, its shim and its workload at once (a host
 *             that vanished) -> the successor's workload started
 *   host-crash-quiet: the same, once the leader is quiet (it holds its members' reads and
 *             sends its rounds in turn, electd_quiet_leader_rounds_total moving), at a random
 *             point of a heartbeat interval: the steady state of an idle group
 *   handover: SIGTERM of the primary's electd -> the successor's workload started, minus
 *             the old workload's stop (the overhead electd adds to a planned handover)
 *   idle:     CPU, loop wake-ups and RSS of each member of an idle group (leader and
 *             followers apart), over --idle-runs fresh groups of --idle-seconds each
 *   api:      requests/s on the leader with wrk (status, stale and linearizable reads,
 *             fenced writes) at 1, 16 and 64 connections, and RSS under that load
 *
 * Usage: bench_cluster [--runs N] [--idle-seconds S] [--idle-runs N]
 *                      [--only failover|host-crash|host-crash-quiet|handover|idle|api]
 *                      [--peer-tls]
 * BENCH_INFO=1 in the environment: the members log at info level and each failover run's
 * time and directory go to stderr (ITEST_KEEP=1 keeps the directories, logs included).
 * --peer-tls: the members talk mutual TLS (certificates made at start by
 * tests/integration/make_peer_certs.sh in a temporary directory, removed at exit).
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "events.h"

static char events_path[400];
static char tls_dir[64]; /* --peer-tls: the certificates; "" without */

typedef struct profile {
    const char *name;
    int hb_ms; /* its heartbeat interval */
    const char *args[4];
} profile_t;

static const profile_t PROFILES[] = {
    {"default (E=1000ms, hb=150ms)", 150, {NULL}},
    {"fast (E=300ms, hb=30ms)",
     30,
     {"--election-timeout=300ms", "--heartbeat-interval=30ms", "--stop-timeout=100ms", NULL}},
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One row of a table: median, p99, min, max of v[0..n) (sorted in place), with `prec`
 * decimals. */
static void row_prec(const char *what, double *v, int n, const char *unit, int prec)
{
    if (n == 0) {
        printf("| %-44s | %4d | %9s | %9s | %9s | %9s |\n", what, 0, "-", "-", "-", "-");
        return;
    }
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    int p99 = (int)(0.99 * (n - 1) + 0.5);
    printf("| %-44s | %4d | %7.*f%s | %7.*f%s | %7.*f%s | %7.*f%s |\n", what, n, prec, v[n / 2],
           unit, prec, v[p99], unit, prec, v[0], unit, prec, v[n - 1], unit);
}

static void row(const char *what, double *v, int n, const char *unit)
{
    row_prec(what, v, n, unit, 1);
}

static void header(const char *title)
{
    printf("\n%s\n\n| %-44s | %4s | %9s | %9s | %9s | %9s |\n", title, "case", "runs", "median",
           "p99", "min", "max");
    printf("|%s|------|-----------|-----------|-----------|-----------|\n",
           "----------------------------------------------");
}

/* --peer-tls: member i presents its own certificate and trusts the cluster's CAs. */
static void peer_tls_args(itest_cluster_t *c)
{
    static char args[3][3][128];
    for (int i = 0; i < 3 && tls_dir[0]; i++) {
        const char *n = c->nodes[i].name;
        snprintf(args[i][0], sizeof(args[i][0]), "--peer-cert-file=%s/%s.crt", tls_dir, n);
        snprintf(args[i][1], sizeof(args[i][1]), "--peer-key-file=%s/%s.key", tls_dir, n);
        snprintf(args[i][2], sizeof(args[i][2]), "--peer-trusted-ca-file=%s/trust.crt", tls_dir);
        for (int k = 0; k < 3; k++)
            c->nodes[i].extra[c->nodes[i].n_extra++] = args[i][k];
    }
}

static int peer_tls_make(void)
{
    snprintf(tls_dir, sizeof(tls_dir), "/tmp/electd-bench-certs-XXXXXX");
    char cmd[256];
    if (mkdtemp(tls_dir) == NULL) {
        tls_dir[0] = '\0';
        perror("bench_cluster: mkdtemp");
        return -1;
    }
    snprintf(cmd, sizeof(cmd), "sh '%s' '%s'", MAKE_PEER_CERTS_SH, tls_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_cluster: cannot make the certificates (openssl CLI?)\n");
        return -1;
    }
    return 0;
}

static void peer_tls_remove(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tls_dir);
    if (tls_dir[0] && system(cmd) != 0)
        fprintf(stderr, "bench_cluster: could not remove %s\n", tls_dir);
}

static void start_cluster(itest_cluster_t *c, const profile_t *p, bool workload)
{
    itest_cluster_init(c, 3, 3);
    peer_tls_args(c);
    for (int k = 0; p != NULL && p->args[k]; k++)
        itest_cluster_arg(c, p->args[k]);
    itest_cluster_arg(c, getenv("BENCH_INFO") ? "--log-level=info" : "--log-level=warn");
    snprintf(events_path, sizeof(events_path), "%s/events", c->root);
    /* The workload's command comes last: after `--exec --` every word is the workload's, and
     * a node's own arguments (peer TLS) follow the cluster's. */
    for (int i = 0; workload && i < c->n; i++) {
        const char *words[] = {"--exec", "--", TESTWORKER_BIN, events_path};
        for (size_t k = 0; k < 4; k++)
            c->nodes[i].extra[c->nodes[i].n_extra++] = words[k];
    }
    itest_cluster_start(c);
}

/* Waits for the n-th workload start; returns its index or -1. */
static int wait_start(size_t n, int timeout_ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    events_t ev;
    do {
        if (events_load(events_path, &ev) && ev.n >= n)
            return (int)n - 1;
        usleep(2000);
    } while (itest_now_ms() < deadline);
    return -1;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int node_of(itest_cluster_t *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->nodes[i].name, name) == 0)
            return i;
    return -1;
}

enum switch_kind { SWITCH_CRASH, SWITCH_HOST, SWITCH_HOST_QUIET, SWITCH_PLANNED };

/* Waits until node i counts quiet rounds (it holds its members' reads and sends its rounds in
 * turn), then a random part of a heartbeat interval. False if it never did within 10 s. */
static bool wait_quiet(itest_cluster_t *c, int i, int hb_ms)
{
    uint64_t deadline = itest_now_ms() + 10000;
    while (itest_metric(c, i, "electd_quiet_leader_rounds_total") <= 0) {
        if (itest_now_ms() >= deadline)
            return false;
        usleep(20000);
    }
    usleep((useconds_t)(rand() % (hb_ms * 1000)));
    return true;
}

static void bench_switch(int runs, enum switch_kind kind)
{
    bool planned = kind == SWITCH_PLANNED;
    header(planned ? "Planned handover: SIGTERM -> successor's workload started, minus the old "
                     "workload's stop (ms)"
           : kind == SWITCH_HOST ? "Host crash: kill -9 of the primary's electd, shim and workload "
                                   "at once -> successor's workload started (ms)"
           : kind == SWITCH_HOST_QUIET
               ? "Host crash of a quiet leader (rounds in turn), at a random point of a heartbeat "
                 "interval -> successor's workload started (ms)"
               : "Unplanned failover: kill -9 of the primary's electd -> "
                 "successor's workload started (ms)");
    for (size_t p = 0; p < sizeof(PROFILES) / sizeof(PROFILES[0]); p++) {
        double *v = calloc((size_t)runs, sizeof(double));
        int n = 0, overlaps = 0;
        for (int r = 0; r < runs; r++) {
            itest_cluster_t c;
            start_cluster(&c, &PROFILES[p], true);
            int first = wait_start(1, 20000);
            if (first < 0) {
                printf("(run %d: no workload started within 20 s)\n", r);
                itest_cluster_destroy(&c);
                continue;
            }
            usleep(300000); /* let the lease settle into its steady state */
            events_t ev;
            events_load(events_path, &ev);
            int victim = node_of(&c, ev.iv[first].node);
            if (kind == SWITCH_HOST_QUIET && !wait_quiet(&c, victim, PROFILES[p].hb_ms)) {
                printf("(run %d: the leader never became quiet within 10 s)\n", r);
                itest_cluster_destroy(&c);
                continue;
            }
            uint64_t t0 = mono_ns();
            if (planned)
                itest_node_stop(&c, victim);
            else if (kind == SWITCH_HOST || kind == SWITCH_HOST_QUIET)
                itest_node_kill_host(&c, victim);
            else
                itest_node_signal(&c, victim, SIGKILL); /* and reaped */
            int next = wait_start(2, 20000);
            if (next < 0)
                printf("(run %d: no successor workload within 20 s)\n", r);
            if (next >= 0) {
                events_load(events_path, &ev);
                uint64_t from = planned && ev.iv[first].stopped ? ev.iv[first].end_ns : t0;
                v[n++] = (double)(ev.iv[next].start_ns - from) / 1e6;
                if (getenv("BENCH_INFO"))
                    fprintf(stderr, "run %d: %.1f ms %s victim %d\n", r, v[n - 1], c.root, victim);
            }
            for (int i = 0; i < c.n; i++)
                if (c.nodes[i].pid)
                    itest_node_stop(&c, i);
            size_t a, b;
            events_load(events_path, &ev);
            if (events_overlap(&ev, &a, &b))
                overlaps++;
            itest_cluster_destroy(&c);
        }
        row(PROFILES[p].name, v, n, "");
        if (overlaps)
            printf("(!) %d runs had overlapping primaries\n", overlaps);
        free(v);
    }
}

/* CPU time of every thread of pid, in seconds, at nanosecond resolution (the scheduler's own
 * account, /proc/PID/task/TID/schedstat; /proc/PID/stat counts in 10 ms clock ticks, too
 * coarse for a member that uses a fraction of a per cent). */
static double cpu_seconds(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    DIR *d = opendir(path);
    double s = 0;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char p2[300];
        snprintf(p2, sizeof(p2), "/proc/%d/task/%s/schedstat", pid, e->d_name);
        FILE *f = fopen(p2, "r");
        unsigned long long ns = 0;
        if (f != NULL && fscanf(f, "%llu", &ns) == 1)
            s += (double)ns / 1e9;
        if (f != NULL)
            fclose(f);
    }
    if (d != NULL)
        closedir(d);
    return s;
}

/* An idle 3-member group at default settings, runs times: each member's CPU over `seconds`
 * (after 6 s to settle), how often its event loop went to sleep and woke (voluntary context
 * switches of the loop's thread), and its RSS; leader and followers apart. */
static void bench_idle(int seconds, int runs)
{
    runs = runs < 1 ? 1 : runs;
    double *v = calloc((size_t)runs * 3 * 8, sizeof(double));
    double *rss_l = v, *rss_f = v + runs * 3, *anon = v + runs * 6, *cpu_l = v + runs * 9,
           *cpu_f = v + runs * 12, *wake_l = v + runs * 15, *wake_f = v + runs * 18;
    int nl = 0, nf = 0, na = 0;
    for (int run = 0; run < runs; run++) {
        itest_cluster_t c;
        start_cluster(&c, &PROFILES[0], false);
        int l = itest_wait_leader(&c, 20000);
        /* Past start-up: its code pages are handed back 5 s after start (and every 60 s
         * after, which a window of 60 s or more holds at its steady rate). */
        sleep(6);
        double cpu0[3];
        long wake0[3];
        for (int i = 0; i < 3; i++) {
            cpu0[i] = cpu_seconds(c.nodes[i].pid);
            wake0[i] = itest_proc_status(c.nodes[i].pid, "voluntary_ctxt_switches:");
        }
        sleep((unsigned)seconds);
        /* Only a run whose leader stayed put tells the roles apart. */
        if (l >= 0 && itest_wait_leader(&c, 1000) == l) {
            for (int i = 0; i < 3; i++) {
                double cpu = 100.0 * (cpu_seconds(c.nodes[i].pid) - cpu0[i]) / seconds;
                double wake =
                    (double)(itest_proc_status(c.nodes[i].pid, "voluntary_ctxt_switches:") -
                             wake0[i]) /
                    seconds;
                double rss = (double)itest_proc_status(c.nodes[i].pid, "VmRSS:") / 1024.0;
                anon[na++] = (double)itest_proc_status(c.nodes[i].pid, "RssAnon:") / 1024.0;
                if (i == l) {
                    cpu_l[nl] = cpu, wake_l[nl] = wake, rss_l[nl++] = rss;
                } else {
                    cpu_f[nf] = cpu, wake_f[nf] = wake, rss_f[nf++] = rss;
                }
            }
        }
        itest_cluster_destroy(&c);
    }
    char title[160];
    snprintf(title, sizeof(title),
             "Idle member, default settings, 3-node cluster, no workload%s, %d runs of %d s",
             tls_dir[0] ? ", peer TLS" : "", runs, seconds);
    header(title);
    row_prec("CPU, leader (% of one core)", cpu_l, nl, "", 3);
    row_prec("CPU, follower (% of one core)", cpu_f, nf, "", 3);
    row("loop wake-ups/s, leader", wake_l, nl, "");
    row("loop wake-ups/s, follower", wake_f, nf, "");
    row("RSS, leader (MiB)", rss_l, nl, "");
    row("RSS, follower (MiB)", rss_f, nf, "");
    row("  of which private (RssAnon, MiB), any", anon, na, "");
    free(v);
}

/* One wrk run; fills requests/s and latency percentiles (ms). */
static void run_wrk(int conns, const char *script, const char *url, double *rps, double *p50,
                    double *p99, long *errors)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "wrk -t %d -c %d -d 5s %s%s --latency '%s' 2>&1", conns > 1 ? 2 : 1,
             conns, script ? "-s " : "", script ? script : "", url);
    FILE *p = popen(cmd, "r");
    char line[512];
    *rps = *p50 = *p99 = 0;
    *errors = 0;
    while (p && fgets(line, sizeof(line), p)) {
        double x;
        long e;
        char unit[8];
        if (sscanf(line, "Requests/sec: %lf", &x) == 1)
            *rps = x;
        if (sscanf(line, "  Non-2xx or 3xx responses: %ld", &e) == 1)
            *errors += e;
        if (sscanf(line, " 50%% %lf%7s", &x, unit) == 2)
            *p50 = strcmp(unit, "us") == 0 ? x / 1000 : strcmp(unit, "s") == 0 ? x * 1000 : x;
        if (sscanf(line, " 99%% %lf%7s", &x, unit) == 2)
            *p99 = strcmp(unit, "us") == 0 ? x / 1000 : strcmp(unit, "s") == 0 ? x * 1000 : x;
    }
    if (p)
        pclose(p);
}

/* Requests/s on the leader of a 3-node cluster, for the API's main calls; and the leader's
 * RSS after the load. */
static void bench_api(void)
{
    if (system("command -v wrk > /dev/null 2>&1") != 0) {
        printf("\n(api: wrk is not installed; apt-get install wrk)\n");
        return;
    }
    itest_cluster_t c;
    start_cluster(&c, &PROFILES[0], false);
    int l = itest_wait_leader(&c, 20000);
    if (l < 0) {
        itest_cluster_destroy(&c);
        return;
    }
    char body[8192];
    itest_http(c.nodes[l].http_port, "PUT", "/v1/kv/bench/pos", "mysql-bin.000042:1", body,
               sizeof(body));
    itest_http(c.nodes[l].http_port, "GET", "/v1/status", NULL, body, sizeof(body));
    const char *t = strstr(body, "\"fencing_token\":");
    long token = t ? strtol(t + 16, NULL, 10) : 0;
    char script[512];
    snprintf(script, sizeof(script), "%s/put.lua", c.root);
    FILE *f = fopen(script, "w");
    fprintf(f, "wrk.method = \"PUT\"\nwrk.body = \"mysql-bin.000042:1337\"\n");
    fclose(f);
    struct {
        const char *name;
        const char *path;
        bool put;
    } cases[] = {
        {"GET /v1/status", "/v1/status", false},
        {"GET /v1/kv/k?stale (local read)", "/v1/kv/bench/pos?stale", false},
        {"GET /v1/kv/k (linearizable, ReadIndex)", "/v1/kv/bench/pos", false},
        {"PUT /v1/kv/k?fence=N (fenced write)", "/v1/kv/bench/pos?fence=%ld", true},
    };
    printf("\nHTTP API on the leader of a 3-node cluster, default settings, wrk 5 s per row "
           "(wrk shares the 2 cores)\n\n");
    printf("| %-40s | conns | requests/s | p50 ms | p99 ms | non-2xx |\n", "request");
    printf("|------------------------------------------|-------|------------|--------|--------|"
           "---------|\n");
    int conns[] = {1, 16, 64};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        for (int j = 0; j < 3; j++) {
            char path[128], url[256];
            snprintf(path, sizeof(path), cases[k].path, token);
            snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", c.nodes[l].http_port, path);
            double rps, p50, p99;
            long errors;
            run_wrk(conns[j], cases[k].put ? script : NULL, url, &rps, &p50, &p99, &errors);
            printf("| %-40s | %5d | %10.0f | %6.2f | %6.2f | %7ld |\n", cases[k].name, conns[j],
                   rps, p50, p99, errors);
        }
    printf("\nleader RSS after the load: %.1f MiB (private %.1f MiB)\n",
           (double)itest_proc_status(c.nodes[l].pid, "VmRSS:") / 1024.0,
           (double)itest_proc_status(c.nodes[l].pid, "RssAnon:") / 1024.0);
    itest_cluster_destroy(&c);
}

int main(int argc, char **argv)
{
    int runs = 20, idle_s = 30, idle_runs = 1;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--idle-seconds") == 0 && i + 1 < argc)
            idle_s = atoi(argv[++i]);
        else if (strcmp(argv[i], "--idle-runs") == 0 && i + 1 < argc)
            idle_runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--peer-tls") == 0 && !tls_dir[0]) {
            if (peer_tls_make() != 0)
                return 1;
        } else {
            fprintf(stderr, "usage: bench_cluster [--runs N] [--idle-seconds S] [--idle-runs N] "
                            "[--only failover|host-crash|host-crash-quiet|handover|idle|api] "
                            "[--peer-tls]\n");
            peer_tls_remove();
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!only || strcmp(only, "failover") == 0)
        bench_switch(runs, SWITCH_CRASH);
    if (!only || strcmp(only, "host-crash") == 0)
        bench_switch(runs, SWITCH_HOST);
    if (!only || strcmp(only, "host-crash-quiet") == 0)
        bench_switch(runs, SWITCH_HOST_QUIET);
    if (!only || strcmp(only, "handover") == 0)
        bench_switch(runs, SWITCH_PLANNED);
    if (!only || strcmp(only, "idle") == 0)
        bench_idle(idle_s, idle_runs);
    if (!only || strcmp(only, "api") == 0)
        bench_api();
    peer_tls_remove();
    return 0;
}
