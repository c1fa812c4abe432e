/* bench_raft.c — throughput of the Raft core alone: a 3-node cluster in memory (the
 * simulator's nodes and in-memory disk, messages delivered at once in send order, no faults)
 * commits a stream of proposals; prints entries/s and ns/entry per payload size as a table of
 * median, p99, min and max over several runs. Never fails on time.
 *
 *   bench_raft [--runs N] [--entries N]
 */
#include "raft.h"
#include "sim_node.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NODES        3
#define BATCH        64   /* proposals between two rounds of message delivery */
#define SNAP_EVERY   4096 /* entries between snapshots, so memory stays bounded */
#define SNAP_KEEP    256
#define RUNS_MAX     101
#define ENTRIES_MAX  10000000u
#define ROUNDS_LIMIT 100000000u /* bound on delivery steps of one run */

typedef struct cluster {
    sim_node_t nodes[NODES];
    raft_msg_t **queue; /* FIFO of copied messages */
    size_t head, tail, cap;
    uint64_t applied_total;
    int failed;
} cluster_t;

static void enqueue(cluster_t *c, raft_msg_t *m)
{
    if (c->tail == c->cap) {
        if (c->head > 0) {
            memmove(c->queue, c->queue + c->head, (c->tail - c->head) * sizeof(*c->queue));
            c->tail -= c->head;
            c->head = 0;
        } else {
            size_t cap = c->cap ? c->cap * 2 : 1024;
            raft_msg_t **q = realloc(c->queue, cap * sizeof(*q));
            if (q == NULL) {
                fprintf(stderr, "bench_raft: out of memory\n");
                exit(1);
            }
            c->queue = q;
            c->cap = cap;
        }
    }
    c->queue[c->tail++] = m;
}

static void on_send(void *ctx, sim_node_t *n, const raft_msg_t *m)
{
    (void)n;
    enqueue(ctx, sim_msg_copy(m));
}

static void on_applied(void *ctx, sim_node_t *n, const raft_entry_t *e, uint64_t digest)
{
    (void)n;
    (void)e;
    (void)digest;
    ((cluster_t *)ctx)->applied_total++;
}

static sim_node_hooks_t hooks_for(cluster_t *c)
{
    sim_node_hooks_t h = {.ctx = c, .send = on_send, .applied = on_applied};
    return h;
}

static void drain(cluster_t *c, sim_node_t *n)
{
    sim_node_hooks_t h = hooks_for(c);
    if (sim_node_drain(n, &h, SNAP_EVERY, SNAP_KEEP) != 0 && !c->failed) {
        fprintf(stderr, "bench_raft: %s\n", n->err);
        c->failed = 1;
    }
}

/* Delivers queued messages (and what they cause) until none is left. */
static void deliver_all(cluster_t *c)
{
    for (uint64_t steps = 0; c->head < c->tail && steps < ROUNDS_LIMIT; steps++) {
        raft_msg_t *m = c->queue[c->head++];
        if (m->to >= 1 && m->to <= NODES) {
            sim_node_t *n = &c->nodes[m->to - 1];
            raft_step(n->r, m);
            drain(c, n);
        }
        sim_msg_free(m);
    }
}

static int cluster_init(cluster_t *c)
{
    memset(c, 0, sizeof(*c));
    raft_conf_t conf;
    memset(&conf, 0, sizeof(conf));
    for (int i = 0; i < NODES; i++) {
        conf.members[i].id = (uint64_t)i + 1;
        conf.members[i].voter = 1;
        snprintf(conf.members[i].addr, sizeof(conf.members[i].addr), "n%d", i + 1);
    }
    conf.n = NODES;
    for (int i = 0; i < NODES; i++) {
        raft_config_t cfg;
        memset(&cfg, 0, sizeof(cfg));
        cfg.id = (uint64_t)i + 1;
        cfg.election_ticks = 10;
        cfg.election_jitter_ticks = 10;
        cfg.heartbeat_ticks = 1;
        cfg.max_drift_ppm = 50000;
        sim_node_init(&c->nodes[i], &cfg, &conf);
        int rc = sim_node_start(&c->nodes[i], 1000 + (uint64_t)i);
        if (rc != 0) {
            fprintf(stderr, "bench_raft: raft_open: %s\n", raft_strerror(rc));
            return -1;
        }
    }
    /* tick until node 1 leads (bounded: a few election timeouts) */
    for (int t = 0; t < 1000; t++) {
        for (int i = 0; i < NODES; i++) {
            raft_tick(c->nodes[i].r);
            drain(c, &c->nodes[i]);
        }
        deliver_all(c);
        if (raft_role(c->nodes[0].r) == RAFT_LEADER)
            return 0;
        if (t > 20)
            raft_campaign(c->nodes[0].r);
    }
    fprintf(stderr, "bench_raft: no leader\n");
    return -1;
}

static void cluster_free(cluster_t *c)
{
    for (size_t i = c->head; i < c->tail; i++)
        sim_msg_free(c->queue[i]);
    free(c->queue);
    for (int i = 0; i < NODES; i++)
        sim_node_free(&c->nodes[i]);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One run: `entries` proposals of `payload` bytes, committed and applied on all nodes.
 * Returns elapsed ns, or a negative value on failure. */
static double run_once(uint32_t payload, uint32_t entries)
{
    cluster_t c;
    if (cluster_init(&c) != 0) {
        cluster_free(&c);
        return -1;
    }
    uint8_t *data = malloc(payload);
    if (data == NULL) {
        cluster_free(&c);
        return -1;
    }
    memset(data, 0xab, payload);
    sim_node_t *leader = &c.nodes[0];
    uint64_t base = leader->applied, target = 0;
    c.applied_total = 0;
    double t0 = now_ns();
    for (uint32_t done = 0; done < entries && !c.failed;) {
        for (uint32_t k = 0; k < BATCH && done < entries; k++, done++) {
            uint64_t index;
            if (raft_propose(leader->r, data, payload, &index) != 0) {
                fprintf(stderr, "bench_raft: leader lost its role\n");
                c.failed = 1;
                break;
            }
            target = index;
        }
        drain(&c, leader);
        deliver_all(&c);
        /* one tick per batch keeps heartbeats, leases and commit propagation realistic */
        for (int i = 0; i < NODES; i++) {
            raft_tick(c.nodes[i].r);
            drain(&c, &c.nodes[i]);
        }
        deliver_all(&c);
    }
    for (int t = 0; t < 100 && !c.failed; t++) {
        bool all = true;
        for (int i = 0; i < NODES; i++)
            all = all && c.nodes[i].applied >= target;
        if (all)
            break;
        for (int i = 0; i < NODES; i++) {
            raft_tick(c.nodes[i].r);
            drain(&c, &c.nodes[i]);
        }
        deliver_all(&c);
    }
    double elapsed = now_ns() - t0;
    bool ok = !c.failed;
    for (int i = 0; i < NODES; i++)
        ok = ok && c.nodes[i].applied >= target && target >= base + entries;
    free(data);
    cluster_free(&c);
    return ok ? elapsed : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* nearest-rank percentile of sorted v[0..n) */
static double pct(const double *v, int n, double p)
{
    int rank = (int)(p / 100.0 * n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"runs", required_argument, NULL, 'r'},
                                         {"entries", required_argument, NULL, 'e'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int runs = 7;
    unsigned long entries = 20000;
    int c;
    while ((c = getopt_long(argc, argv, "r:e:h", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            runs = atoi(optarg);
            break;
        case 'e':
            entries = strtoul(optarg, NULL, 10);
            break;
        default:
            fprintf(c == 'h' ? stdout : stderr, "usage: bench_raft [--runs N] [--entries N]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (runs < 1 || runs > RUNS_MAX || entries < 1 || entries > ENTRIES_MAX) {
        fprintf(stderr, "bench_raft: --runs 1..%d, --entries 1..%u\n", RUNS_MAX, ENTRIES_MAX);
        return 2;
    }
    static const uint32_t payloads[] = {64, 1024};
    printf("Raft core, %d nodes in memory, messages delivered at once, %lu entries per run, %d "
           "runs\n\n",
           NODES, entries, runs);
    printf(
        "| payload | entries/s median | p99 | min | max | ns/entry median | p99 | min | max |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
    for (size_t p = 0; p < sizeof(payloads) / sizeof(payloads[0]); p++) {
        double ns[RUNS_MAX], rate[RUNS_MAX];
        for (int r = 0; r < runs; r++) {
            double e = run_once(payloads[p], (uint32_t)entries);
            if (e <= 0) {
                fprintf(stderr, "bench_raft: run failed\n");
                return 1;
            }
            ns[r] = e / (double)entries;
            rate[r] = (double)entries / (e / 1e9);
        }
        qsort(ns, (size_t)runs, sizeof(double), cmp_double);
        qsort(rate, (size_t)runs, sizeof(double), cmp_double);
        /* for a rate, the slow tail is the low end: p99 of entries/s is the 1st percentile */
        printf("| %" PRIu32 " B | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n",
               payloads[p], pct(rate, runs, 50), pct(rate, runs, 1), rate[0], rate[runs - 1],
               pct(ns, runs, 50), pct(ns, runs, 99), ns[0], ns[runs - 1]);
    }
    return 0;
}
