/* test_node.c — the Raft driver (sidecar/node/) in process: three real nodes (SQLite stores,
 * loopback transports) on one libuv loop. Checks what the driver promises its observers: a
 * request made while handling a callback (or from anywhere on the loop, as the workload
 * controller does from its timer) runs its batch later, never inside the caller. */
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "loop_poll.h"
#include "common.h"
#include "config.h"
#include "node.h"

#define N_NODES 3

static uv_loop_t loop;
static char root[64];
static sidecar_config_t cfg[N_NODES];
static sidecar_node_t *nodes[N_NODES];
static int closed;

#define RUN_UNTIL(cond) LOOP_RUN_UNTIL(&loop, cond, 10)

static void config_node(int i, const char *peers)
{
    char name[2] = {(char)('a' + i), 0}, dir[128];
    snprintf(dir, sizeof(dir), "%s/%s", root, name);
    char *const argv[] = {"electd",
                          "--name",
                          name,
                          "--peers",
                          (char *)peers,
                          "--data-dir",
                          dir,
                          "--listen-http",
                          "127.0.0.1:0",
                          "--heartbeat-interval=50ms",
                          "--election-timeout=500ms",
                          "--stop-timeout=200ms",
                          NULL};
    sidecar_config_source_t src = {.argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1, .argv = argv};
    char err[512];
    cr_assert_eq(sidecar_config_parse(&cfg[i], &src, err, sizeof(err)), 0, "%s", err);
}

static void start_cluster(void)
{
    cr_assert_eq(uv_loop_init(&loop), 0);
    closed = 0;
    sidecar_log_init(SIDECAR_LOG_ERROR, SIDECAR_LOG_TEXT, 2, "test");
    snprintf(root, sizeof(root), "/tmp/electd-node-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    char peers[256];
    size_t off = 0;
    for (int i = 0; i < N_NODES; i++)
        off += (size_t)snprintf(peers + off, sizeof(peers) - off, "%s%c=127.0.0.1:%d", i ? "," : "",
                                'a' + i, loop_free_port());
    for (int i = 0; i < N_NODES; i++) {
        config_node(i, peers);
        char err[512] = "";
        cr_assert_eq(sidecar_node_open(&nodes[i], &loop, &cfg[i], err, sizeof(err)), 0, "%s", err);
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void closed_cb(void *ud)
{
    (void)ud;
    closed++;
}

static void stop_cluster(void)
{
    for (int i = 0; i < N_NODES; i++)
        if (nodes[i] != NULL)
            sidecar_node_close(nodes[i], closed_cb, NULL);
    RUN_UNTIL(closed == N_NODES);
    cr_assert_eq(closed, N_NODES);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(uv_loop_close(&loop), 0, "handles leaked");
    for (int i = 0; i < N_NODES; i++) {
        nodes[i] = NULL;
        sidecar_config_free(&cfg[i]);
    }
    nftw(root, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* The node that leads and holds a lease, or -1. */
static int leased_leader(void)
{
    for (int i = 0; i < N_NODES; i++) {
        sidecar_node_state_t st;
        sidecar_node_state(nodes[i], &st);
        if (st.role == RAFT_LEADER && st.lease_deadline_ns > sidecar_clock_boot_ns())
            return i;
    }
    return -1;
}

static bool another_leads(int old, uint64_t old_term)
{
    for (int i = 0; i < N_NODES; i++) {
        sidecar_node_state_t st;
        sidecar_node_state(nodes[i], &st);
        if (i != old && st.role == RAFT_LEADER && st.term > old_term)
            return true;
    }
    return false;
}

/* A stand-in for the workload controller: evaluate() runs from the node's callbacks and from
 * a timer, and asks for a transfer when armed. The driver must never call back into it
 * while it runs. */
typedef struct controller {
    sidecar_node_t *node;
    sidecar_node_observer_t obs;
    uv_timer_t timer;
    bool transfer_armed;
    int transfer_rv;
    int transfers;
    int depth, max_depth;
    int from_callbacks; /* evaluations caused by a node callback */
} controller_t;

static void evaluate(controller_t *c)
{
    c->depth++;
    if (c->depth > c->max_depth)
        c->max_depth = c->depth;
    if (c->transfer_armed) {
        c->transfer_armed = false;
        c->transfers++;
        c->transfer_rv = sidecar_node_transfer(c->node, 0, RAFT_FLAG_STOPPED);
    }
    c->depth--;
}

static void changed_cb(void *ud, const sidecar_node_state_t *st)
{
    (void)st;
    controller_t *c = ud;
    c->from_callbacks++;
    evaluate(c);
}

static void read_cb(void *ud, uint64_t ctx, uint64_t index)
{
    (void)ctx, (void)index;
    controller_t *c = ud;
    c->from_callbacks++;
    evaluate(c);
}

static void timer_cb(uv_timer_t *t)
{
    evaluate(t->data);
}

static int controller_attach(controller_t *c, uint64_t *term)
{
    int l = -1;
    RUN_UNTIL((l = leased_leader()) >= 0);
    cr_assert_geq(l, 0, "no leader with a lease within 10 s");
    sidecar_node_state_t st;
    sidecar_node_state(nodes[l], &st);
    *term = st.term;
    memset(c, 0, sizeof(*c));
    c->node = nodes[l];
    c->transfer_rv = -1000;
    c->obs = (sidecar_node_observer_t){.changed_cb = changed_cb, .read_cb = read_cb, .ud = c};
    sidecar_node_observe(c->node, &c->obs);
    uv_timer_init(&loop, &c->timer);
    c->timer.data = c;
    return l;
}

static void controller_check(controller_t *c, int leader, uint64_t term)
{
    RUN_UNTIL(another_leads(leader, term));
    sidecar_node_unobserve(c->node, &c->obs);
    uv_close((uv_handle_t *)&c->timer, NULL);
    cr_assert_eq(c->transfers, 1);
    cr_assert_eq(c->transfer_rv, 0, "transfer refused: %d", c->transfer_rv);
    cr_assert(another_leads(leader, term), "leadership did not move after the transfer");
    cr_assert_gt(c->from_callbacks, 0, "the observer never heard of the transfer");
    cr_assert_eq(c->max_depth, 1,
                 "the driver called the observer back while it was still running "
                 "(nesting depth %d)",
                 c->max_depth);
}

/* Three nodes; the leader's controller is armed, trigger() makes it evaluate; then the
 * checks above. */
static void transfer_case(void (*trigger)(controller_t *c))
{
    start_cluster();
    controller_t c;
    uint64_t term;
    int leader = controller_attach(&c, &term);
    c.transfer_armed = true;
    trigger(&c);
    controller_check(&c, leader, term);
    stop_cluster();
}

static void from_timer(controller_t *c)
{
    uv_timer_start(&c->timer, timer_cb, 1, 0);
}

static void from_read_cb(controller_t *c)
{
    cr_assert_eq(sidecar_node_read_index(c->node, 1), 0);
}

TestSuite(node, .timeout = 60);

/* The workload controller asks for a handover from its timer; the batch the transfer causes
 * (the lease given up) must reach it only after that call returned. */
Test(node, a_transfer_from_the_loop_does_not_call_the_observer_back_inside_it)
{
    transfer_case(from_timer);
}

/* The same from inside an observer callback (a ReadIndex answer): the transfer still goes
 * through, and the callback is not re-entered. */
Test(node, a_transfer_from_an_observer_callback_does_not_reenter_it)
{
    transfer_case(from_read_cb);
}
