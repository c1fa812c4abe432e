/* test_disk.c — a member whose disk fills up, on real processes: each member's data dir is a
 * small tmpfs (we run as root; skipped with a message otherwise) that the test fills with a
 * file and frees again. A full-disk leader must hand leadership away and stop its workload
 * (under the overlap checker), answer what needs the store at once with 503 store_failed,
 * and recover by itself when space returns with every acknowledged write intact on every
 * member; a full-disk follower must grant no vote it cannot persist. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cluster.h"
#include "events.h"

#define E_MS        1000        /* --election-timeout */
#define DISK_SIZE   "size=8m"   /* each member's tmpfs */
#define FREE_LEFT   (384 << 10) /* bytes the filler leaves free */
#define VALUE_BYTES (48 << 10)  /* one PUT's value: a few of them fill what is left */
#define MAX_PUTS    64          /* more than FREE_LEFT / VALUE_BYTES, with room to spare */
#define PROMPT_MS   100         /* what "at once" means for a refused request */

static itest_cluster_t C;
static bool mounted[ITEST_MAX_NODES];
static char events_path[400];
static char body[1 << 16];
static char value[VALUE_BYTES + 1];

static void fini(void)
{
    for (int i = 0; i < C.n; i++)
        if (C.nodes[i].pid)
            itest_node_signal(&C, i, SIGKILL);
    for (int i = 0; i < C.n; i++)
        if (mounted[i]) {
            umount2(C.nodes[i].dir, MNT_DETACH);
            mounted[i] = false;
        }
    itest_cluster_destroy(&C);
}

TestSuite(disk, .fini = fini, .timeout = 240);

/* Three supervised members, each on its own small tmpfs. */
static void setup(void)
{
    itest_cluster_init(&C, 3, 3);
    itest_cluster_arg(&C, "--heartbeat-interval=100ms");
    itest_cluster_arg(&C, "--election-timeout=1000ms");
    itest_cluster_arg(&C, "--stop-timeout=300ms");
    snprintf(events_path, sizeof(events_path), "%s/events", C.root);
    for (int i = 0; i < C.n; i++) {
        itest_node_t *nd = &C.nodes[i];
        const char *args[] = {"--exec", "--", TESTWORKER_BIN, events_path};
        for (size_t k = 0; k < 4; k++)
            nd->extra[nd->n_extra++] = args[k];
        cr_assert_eq(mkdir(nd->dir, 0700), 0, "mkdir %s: %s", nd->dir, strerror(errno));
        if (mount("itest", nd->dir, "tmpfs", MS_NOSUID | MS_NODEV, DISK_SIZE) != 0)
            cr_skip("cannot mount a tmpfs on %s (%s): this test needs root (CAP_SYS_ADMIN) to "
                    "make a disk full",
                    nd->dir, strerror(errno));
        mounted[i] = true;
    }
    itest_cluster_start(&C);
}

/* Fills node i's disk up to FREE_LEFT bytes with a file (fill) or deletes that file. */
static void disk_fill(int i, bool fill)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/filler", C.nodes[i].dir);
    if (!fill) {
        cr_assert_eq(unlink(path), 0, "unlink %s: %s", path, strerror(errno));
        return;
    }
    int rc = itest_fs_fill(C.nodes[i].dir, FREE_LEFT);
    cr_assert_eq(rc, 0, "filling %s: %s", path, strerror(rc));
}

/* The value written under key number k: its number, then a letter that depends on it. */
static const char *value_of(int k)
{
    memset(value, 'a' + k % 26, VALUE_BYTES);
    int n = snprintf(value, 16, "k%d:", k);
    value[n] = 'a' + k % 26;
    value[VALUE_BYTES] = '\0';
    return value;
}

static int put(int node, int k, uint64_t *took_ms)
{
    char path[64];
    snprintf(path, sizeof(path), "/v1/kv/disk/k%d", k);
    uint64_t t0 = itest_now_ms();
    body[0] = '\0';
    int code = itest_http(C.nodes[node].http_port, "PUT", path, value_of(k), body, sizeof(body));
    *took_ms = itest_now_ms() - t0;
    return code;
}

static bool store_ok(int node)
{
    return itest_http(C.nodes[node].http_port, "GET", "/v1/status", NULL, body, sizeof(body)) ==
               200 &&
           strstr(body, "\"store_ok\":true") != NULL;
}

/* Every running member has applied at least up to the leader's commit index. */
static void wait_converged(void)
{
    int l = itest_wait_leader(&C, 10000);
    cr_assert_geq(l, 0, "no leader after the disk was freed");
    itest_status_t st;
    cr_assert(itest_status(&C, l, &st));
    uint64_t commit = st.commit, deadline = itest_now_ms() + 10000;
    for (int i = 0; i < C.n; i++) {
        while (C.nodes[i].pid && (!itest_status(&C, i, &st) || st.applied < commit)) {
            cr_assert_lt(itest_now_ms(), deadline, "%s did not apply up to %llu", C.nodes[i].name,
                         (unsigned long long)commit);
            usleep(20000);
        }
    }
}

/* Every acknowledged write reads back, byte for byte, from every running member's store. */
static void check_acked(const int *acked, int n_acked)
{
    wait_converged();
    for (int i = 0; i < C.n; i++) {
        if (C.nodes[i].pid == 0)
            continue;
        for (int a = 0; a < n_acked; a++) {
            char path[64];
            snprintf(path, sizeof(path), "/v1/kv/disk/k%d?stale&raw", acked[a]);
            int code = itest_http(C.nodes[i].http_port, "GET", path, NULL, body, sizeof(body));
            cr_assert_eq(code, 200, "acknowledged write k%d is missing on %s (%d)", acked[a],
                         C.nodes[i].name, code);
            cr_assert(strcmp(body, value_of(acked[a])) == 0,
                      "acknowledged write k%d reads back different on %s", acked[a],
                      C.nodes[i].name);
        }
    }
}

static void check_no_overlap(void)
{
    events_t ev;
    cr_assert(events_load(events_path, &ev));
    size_t a, b;
    cr_assert(!events_overlap(&ev, &a, &b), "primary intervals overlap: %s pid %d and %s pid %d",
              ev.iv[a].node, ev.iv[a].pid, ev.iv[b].node, ev.iv[b].pid);
}

/* The newest workload interval that started on node (NULL if none). */
static const events_interval_t *last_interval(const events_t *ev, const char *node)
{
    const events_interval_t *last = NULL;
    for (size_t i = 0; i < ev->n; i++)
        if (strcmp(ev->iv[i].node, node) == 0)
            last = &ev->iv[i];
    return last;
}

static bool workload_running(const char *node, int timeout_ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    events_t ev;
    do {
        const events_interval_t *iv = NULL;
        if (events_load(events_path, &ev) && (iv = last_interval(&ev, node)) != NULL && iv->open)
            return true;
        usleep(10000);
    } while (itest_now_ms() < deadline);
    return false;
}

/* Requests that need the store answer 503 store_failed at once on node l. */
static void check_refused(int l, int other)
{
    const char *members = "{\"name\":\"zz\",\"peer_addr\":\"127.0.0.1:9\"}";
    char remove[64];
    snprintf(remove, sizeof(remove), "/v1/members/%s", C.nodes[other].name);
    const struct {
        const char *method, *path, *body;
    } reqs[] = {
        {"PUT", "/v1/kv/disk/small", "x"},
        {"GET", "/v1/kv/disk/k0", NULL},
        {"GET", "/v1/kv/disk/k0?stale", NULL},
        {"GET", "/v1/kv?prefix=disk/", NULL},
        {"DELETE", "/v1/kv/disk/k0", NULL},
        {"POST", "/v1/leader/transfer", NULL},
        {"POST", "/v1/members", members},
        {"DELETE", remove, NULL},
        {"GET", "/healthz", NULL},
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        uint64_t t0 = itest_now_ms();
        int code = itest_http(C.nodes[l].http_port, reqs[i].method, reqs[i].path, reqs[i].body,
                              body, sizeof(body));
        uint64_t took = itest_now_ms() - t0;
        cr_assert(code == 503 && strstr(body, "\"code\":\"store_failed\"") != NULL,
                  "%s %s on the full-disk member: %d %s", reqs[i].method, reqs[i].path, code, body);
        cr_assert_lt(took, PROMPT_MS, "%s %s took %llu ms", reqs[i].method, reqs[i].path,
                     (unsigned long long)took);
    }
    cr_assert(!store_ok(l), "/v1/status does not say store_ok:false: %s", body);
}

/* Polls until a member other than l leads, everyone running agrees, and l says so too;
 * returns that member's index, or -1 after timeout_ms. */
static int wait_handed_over(int l, int timeout_ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    do {
        int m = itest_wait_leader(&C, 0);
        if (m >= 0 && m != l)
            return m;
        usleep(10000);
    } while (itest_now_ms() < deadline);
    return -1;
}

/* Node i's log: "storage failed; will retry", then exactly one "storage works again" with
 * how long it failed (the recovery line may follow the status flip by a moment). */
static void check_recovery_logged(int i)
{
    uint64_t deadline = itest_now_ms() + 2000;
    while (itest_log_count(&C, i, "storage works again") == 0 && itest_now_ms() < deadline)
        usleep(20000);
    int failed = itest_log_find(&C, i, "storage failed; will retry");
    int again = itest_log_find(&C, i, "storage works again");
    cr_assert_geq(failed, 0, "%s never logged that storage failed", C.nodes[i].name);
    cr_assert_gt(again, failed, "%s did not log \"storage works again\" after the failure",
                 C.nodes[i].name);
    cr_assert_eq(itest_log_count(&C, i, "storage works again"), 1);
    cr_assert_eq(itest_log_count(&C, i, "failed_ms="), 1, "the recovery line has no failed_ms");
}

Test(disk, full_disk_leader_hands_over_refuses_store_requests_and_recovers)
{
    setup();
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0, "no leader");
    cr_assert(workload_running(C.nodes[l].name, 10000), "no workload on the leader");
    disk_fill(l, true);

    int acked[MAX_PUTS], n_acked = 0, code = 0;
    uint64_t took = 0, t_fail = 0;
    for (int k = 0; k < MAX_PUTS; k++) {
        t_fail = itest_now_ms();
        code = put(l, k, &took);
        if (code != 200 && code != 201)
            break;
        acked[n_acked++] = k;
    }
    cr_assert(code != 200 && code != 201, "%d writes of %d bytes did not fill the disk", MAX_PUTS,
              VALUE_BYTES);
    /* The write that found the disk full is answered at once, not after the 5 s timeout. */
    cr_assert(code == 503 && strstr(body, "\"code\":\"store_failed\"") != NULL,
              "the write that hit the full disk: %d %s", code, body);
    cr_assert_lt(took, 1000, "the write that hit the full disk took %llu ms",
                 (unsigned long long)took);
    cr_assert_gt(n_acked, 0, "the very first write found the disk full: nothing to check later");
    check_refused(l, (l + 1) % C.n);

    /* Leadership moves to a healthy member within two election timeouts, and the full-disk
     * member itself says it no longer leads. */
    int m = wait_handed_over(l, 10 * E_MS);
    uint64_t handover_ms = itest_now_ms() - t_fail;
    cr_assert_geq(m, 0, "the full-disk leader %s still leads (or says so) after %d ms",
                  C.nodes[l].name, 10 * E_MS);
    cr_assert_leq(handover_ms, 2 * E_MS, "leadership moved only %llu ms after the disk filled",
                  (unsigned long long)handover_ms);
    cr_log_info("%d writes acknowledged; %s leads %llu ms after the disk filled", n_acked,
                C.nodes[m].name, (unsigned long long)handover_ms);
    cr_assert(workload_running(C.nodes[m].name, 5000), "no workload on the new leader");
    events_t ev;
    cr_assert(events_load(events_path, &ev));
    const events_interval_t *old = last_interval(&ev, C.nodes[l].name);
    cr_assert(old != NULL && !old->open && old->stopped,
              "the full-disk leader's workload was not stopped gracefully");
    check_refused(l, m);

    /* Space returns: the member retries by itself and catches up, nothing acknowledged lost;
     * its log says when storage failed and, once, that it works again. */
    cr_assert_eq(itest_log_count(&C, l, "storage works again"), 0,
                 "\"storage works again\" logged while the disk is still full");
    disk_fill(l, false);
    uint64_t deadline = itest_now_ms() + 10000;
    while (!store_ok(l) ||
           itest_http(C.nodes[l].http_port, "GET", "/healthz", NULL, body, sizeof(body)) != 200) {
        cr_assert_lt(itest_now_ms(), deadline, "the member did not recover after space returned");
        usleep(20000);
    }
    check_recovery_logged(l);
    check_acked(acked, n_acked);
    for (int i = 0; i < C.n; i++)
        itest_node_stop(&C, i);
    check_no_overlap();
}

Test(disk, full_disk_follower_grants_no_vote_until_it_can_persist_it)
{
    setup();
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0, "no leader");
    int f = (l + 1) % C.n;
    disk_fill(f, true);

    /* The leader and the healthy follower acknowledge every write; f's disk fills up. */
    int acked[MAX_PUTS], n_acked = 0;
    for (int k = 0; k < MAX_PUTS && store_ok(f); k++) {
        uint64_t took;
        int code = put(l, k, &took);
        cr_assert(code == 200 || code == 201, "write %d: %d %s", k, code, body);
        acked[n_acked++] = k;
    }
    uint64_t deadline = itest_now_ms() + 5000;
    while (store_ok(f)) {
        cr_assert_lt(itest_now_ms(), deadline, "the follower's disk never failed");
        usleep(20000);
    }

    /* Without the leader, electing anyone needs f's vote, which f cannot persist: nobody may
     * lead until it can (Raft §5.2: a vote is durable before it is sent). */
    itest_node_signal(&C, l, SIGKILL);
    deadline = itest_now_ms() + 3 * E_MS;
    while (itest_now_ms() < deadline) {
        for (int i = 0; i < C.n; i++) {
            itest_status_t st;
            if (C.nodes[i].pid && itest_status(&C, i, &st))
                cr_assert_str_neq(st.role, "leader",
                                  "%s was elected with the vote of a member that cannot "
                                  "persist it",
                                  C.nodes[i].name);
        }
        cr_assert(!store_ok(f), "the follower's store recovered on a full disk");
        usleep(20000);
    }

    /* Space returns: an election succeeds, and the old leader catches up after a restart. */
    cr_assert_eq(itest_log_count(&C, f, "storage works again"), 0);
    disk_fill(f, false);
    cr_assert_geq(itest_wait_leader(&C, 10 * E_MS), 0, "no leader once space returned");
    check_recovery_logged(f);
    itest_node_start(&C, l);
    check_acked(acked, n_acked);
    for (int i = 0; i < C.n; i++)
        itest_node_stop(&C, i);
    check_no_overlap();
}
