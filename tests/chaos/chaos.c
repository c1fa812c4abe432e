/* chaos.c — the fault-injection harness: runs 3 or 5 real electd members (each supervising the
 * test workload), attacks them with a fault schedule derived from a seed, drives KV clients
 * against them meanwhile, and then checks DESIGN.md's promises on what happened:
 *
 *   1. primary intervals (from the workload's CLOCK_MONOTONIC event file) never overlap;
 *   2. the KV history of every register key is linearizable (put / CAS / get, WGL search);
 *   3. no acknowledged write is lost (and no stale fenced write is acknowledged);
 *   4. liveness: after the last fault heals, a primary runs and a write succeeds in a bound;
 *   5. no electd exits unless the harness killed it, and no sanitizer report in any log.
 *
 * It prints the schedule as it goes and a table at the end, with the seed; the same seed gives
 * the same schedule (targets named by role, e.g. "the leader", are resolved at run time and
 * printed). Exit status: 0 all promises held, 1 a violation, 2 a setup or usage error.
 *
 * Usage: chaos [--seed N] [--nodes 3|5] [--duration SECONDS] [--rounds N] [--clients N]
 *              [--faults KIND,...] [--peer-tls] [--hooks] [--elections N] [--proxy] [--keep]
 * --hooks: the members run hooks that stamp their begin and end (--on-start/--on-stop) instead
 * of supervising the test workload; --elections N adds N named elections (modes.h), each one's
 * primaries checked on their own.
 * --peer-tls: the members speak mutual TLS 1.3 to each other (certificates made at start with
 * the openssl CLI, tests/tls/pki.sh, each naming its member), the cluster token still checked.
 * CHAOS_FORCE_PROXY=1 selects the loopback proxy even as root (see net.h); CHAOS_ELECTD_BIN
 * names another electd binary to attack.
 */
#include <assert.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chaos_check.h"
#include "events.h"
#include "httpc.h"
#include "modes.h"
#include "net.h"

#define MAX_CLIENTS        8
#define MAX_OPS            60000
#define MAX_SEGMENTS       2048
#define SEGMENT_NS         2000000000ull /* a new register key every 2 s keeps searches small */
#define CLIENT_TIMEOUT_MS  6000          /* beyond the API's 5 s quorum wait */
#define LIVENESS_BOUND_MS  10000
#define ELECTIONS_BOUND_MS 15000 /* a cut-off holder's elections move after ~2.25 E */
#define LEADER_WAIT_MS     20000
#define STOP_WAIT_MS       10000
#define TMPFS_SIZE         "24m"
#define TOKEN_REUSE_NS     3000000000ull /* a fenced writer refreshes its token this often */

/* --peer-tls: the certificates' directory ("" without); each member's files are NAME.crt and
 * NAME.key, ca.crt the CA every member trusts. */
static char tls_dir[300];

/* Makes a CA and a certificate for each of the n members (a, b, ...) in a new tls_dir. */
static int peer_tls_make(int n)
{
    snprintf(tls_dir, sizeof(tls_dir), "/tmp/electd-chaos-certs-XXXXXX");
    if (mkdtemp(tls_dir) == NULL) {
        perror("chaos: mkdtemp");
        tls_dir[0] = '\0';
        return -1;
    }
    char cmd[1024];
    int off = snprintf(cmd, sizeof(cmd), "cd '%s' && . '%s' && ca ca 'chaos CA'", tls_dir, PKI_SH);
    for (int i = 0; i < n; i++)
        off +=
            snprintf(cmd + off, sizeof(cmd) - (size_t)off,
                     " && leaf %c %c serverAuth,clientAuth DNS:%c ca", 'a' + i, 'a' + i, 'a' + i);
    if (system(cmd) != 0) {
        fprintf(stderr, "chaos: cannot make the peer certificates (openssl CLI?) in %s\n", tls_dir);
        return -1;
    }
    return 0;
}

/* ---- time, randomness ------------------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int rnd(uint64_t *s, int lo, int hi) /* [lo, hi] */
{
    return lo + (int)(splitmix(s) % (uint64_t)(hi - lo + 1));
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Sleeps ms in short steps; false when interrupted. */
static bool nap(int ms)
{
    for (int i = 0; i < ms / 10 + 1 && !interrupted; i++)
        usleep(ms < 10 ? (useconds_t)ms * 1000 : 10000);
    return !interrupted;
}

/* ---- faults -------------------------------------------------------------------------------- */

typedef enum fault_kind {
    F_ISOLATE_LEADER,
    F_SPLIT,
    F_ONEWAY,
    F_FLAP,
    F_KILL,
    F_PAUSE_ELECTD,
    F_PAUSE_ALL,
    F_DISK_FULL,
    F_WIPE,
    F_ISOLATE_ALL, /* only as the closing fault: the liveness check then has to elect anew */
    F_KINDS
} fault_kind_t;

static const char *fault_name[F_KINDS] = {
    "isolate-leader",    "split",        "one-way-drop",          "flapping-link",
    "kill-9-restart",    "pause-electd", "pause-electd+workload", "disk-full",
    "wipe-data-restart", "isolate-all",
};

/* ---- members ------------------------------------------------------------------------------- */

typedef struct member {
    char name[4];
    pid_t pid; /* 0 when not running */
    char dir[300];
    char log[300];
    bool tmpfs;
    bool expect_exit; /* the harness killed it */
    int unexpected_exits;
    int refused_starts; /* exited at start with a message (allowed by promise 4) */
    uint64_t started_ns;
    char last_exit[64];
} member_t;

/* What a round found, added up over a campaign's rounds. */
typedef struct tally {
    int rounds, failed;
    int faults[F_KINDS], n_faults;
    int overlaps, tails;
    uint64_t longest_tail_ns;
    int lin_ok, lin_bad, lin_unknown, lost, stale_fenced;
    int crashes, refused, unclean, sanitizer;
    int live_failed;
    double live_min_s, live_max_s;
    size_t primaries, failovers;
    double failover_max_s;
} tally_t;

typedef struct op_rec {
    check_op_t op;
    int segment;
} op_rec_t;

typedef struct run {
    uint64_t seed;
    int n;
    int duration_s;
    int n_clients;
    bool keep, quiet, force_proxy;
    bool hooks;      /* --hooks: the elections run hooks, not a supervised workload */
    int n_elections; /* --elections N */
    chaos_modes_t modes;
    unsigned allowed; /* fault kinds the schedule may use (bit per kind) */
    chaos_net_t net;
    member_t m[CHAOS_MAX_NODES];
    char root[256];
    char events[300];
    int disk_node; /* member whose data dir is a tiny tmpfs; -1 = none */
    uint64_t t0;
    int faults[F_KINDS];
    check_frozen_t frozen[CHECK_FROZEN_MAX];
    size_t n_frozen;
    /* history */
    pthread_mutex_t mu;
    op_rec_t *ops;
    size_t n_ops;
    atomic_bool stop_clients;
    int max_segment;
    unsigned long http_lost, http_not_sent;
    int violations;
    tally_t tally; /* this round's, filled at its end */
} run_t;

static void say(const run_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const run_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("[%7.2fs] ", (double)(now_ns() - r->t0) / 1e9);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
}

/* CHAOS_ELECTD_BIN runs another electd build (say, a sanitizer build) under the harness. */
static const char *electd_bin(void)
{
    const char *b = getenv("CHAOS_ELECTD_BIN");
    return b != NULL && *b != '\0' ? b : ELECTD_BIN;
}

static void member_start(run_t *r, int i)
{
    member_t *m = &r->m[i];
    char peers[512] = "", lp[64], lh[64];
    size_t off = 0;
    for (int k = 0; k < r->n; k++)
        off += (size_t)snprintf(peers + off, sizeof(peers) - off, "%s%s=%s:%d", k ? "," : "",
                                r->m[k].name, r->net.ip[k], r->net.peer_port[k]);
    snprintf(lp, sizeof(lp), "%s:%d", r->net.ip[i], r->net.listen_port[i]);
    snprintf(lh, sizeof(lh), "%s:%d", r->net.ip[i], r->net.http_port[i]);
    const char *argv[32] = {electd_bin(), "--name", m->name, "--peers", peers, "--data-dir", m->dir,
                            "--listen-peer", lp, "--listen-http", lh, "--snapshot-entries", "300",
                            "--log-level", "info",
                            /* members listen on the harness's own namespace addresses: peers
                             * authenticate with a token; the API stays open to the harness's
                             * token-less clients (its own private network) */
                            "--cluster-token", "chaos-harness", "--insecure-http"};
    /* Peer TLS, then the workload's command: after `--exec --` every word is the workload's. */
    char cert[400], key[400], ca[400];
    size_t a = 0;
    while (argv[a] != NULL)
        a++;
    if (tls_dir[0] != '\0') {
        snprintf(cert, sizeof(cert), "--peer-cert-file=%s/%s.crt", tls_dir, m->name);
        snprintf(key, sizeof(key), "--peer-key-file=%s/%s.key", tls_dir, m->name);
        snprintf(ca, sizeof(ca), "--peer-trusted-ca-file=%s/ca.crt", tls_dir);
        argv[a++] = cert, argv[a++] = key, argv[a++] = ca;
    }
    chaos_modes_argv(&r->modes, TESTWORKER_BIN, argv, &a);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return;
    }
    if (pid == 0) {
        /* Members die with the harness, even if it is killed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setpgid(0, 0);
        int fd = open(m->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        if (chaos_net_enter(&r->net, i) != 0)
            _exit(126);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    m->pid = pid;
    m->expect_exit = false;
    m->started_ns = now_ns();
}

static void describe_exit(int st, char *buf, size_t len)
{
    if (WIFEXITED(st))
        snprintf(buf, len, "exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, len, "signal %d%s", WTERMSIG(st), WCOREDUMP(st) ? " (core)" : "");
    else
        snprintf(buf, len, "status 0x%x", st);
}

/* Collects exited children: members (expected or not) and orphaned workloads (the harness is
 * their subreaper). */
static void reap(run_t *r)
{
    for (int k = 0; k < 256; k++) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0)
            return;
        for (int i = 0; i < r->n; i++) {
            member_t *m = &r->m[i];
            if (m->pid != pid)
                continue;
            m->pid = 0;
            describe_exit(st, m->last_exit, sizeof(m->last_exit));
            if (m->expect_exit)
                break;
            /* Exiting with a status within moments of a start (e.g. after its data dir was
             * deleted) is a refusal to start; any other exit is a crash. */
            if (WIFEXITED(st) && WEXITSTATUS(st) != 0 && now_ns() - m->started_ns < 3000000000ull) {
                m->refused_starts++;
                say(r, "member %s refused to start (%s); see %s", m->name, m->last_exit, m->log);
            } else {
                m->unexpected_exits++;
                r->violations++;
                say(r, "VIOLATION: member %s exited on its own (%s); see %s", m->name, m->last_exit,
                    m->log);
            }
        }
    }
}

/* Sends sig to a member and, for SIGKILL, waits for it (bounded). */
static void member_kill(run_t *r, int i, int sig)
{
    member_t *m = &r->m[i];
    if (m->pid == 0)
        return;
    if (sig == SIGKILL || sig == SIGTERM)
        m->expect_exit = true;
    kill(m->pid, sig);
    if (sig != SIGKILL)
        return;
    for (int k = 0; k < 500 && m->pid != 0; k++) {
        reap(r);
        if (m->pid != 0)
            usleep(10000);
    }
}

/* ---- status ---------------------------------------------------------------------------- */

static bool member_status(run_t *r, int i, char *role, size_t rl, int *leader, uint64_t *token,
                          int *workload_pid)
{
    httpc_resp_t resp;
    if (r->m[i].pid == 0 || httpc_request(r->net.ip[i], r->net.http_port[i], "GET", "/v1/status",
                                          NULL, NULL, 1000, &resp) != 200)
        return false;
    cJSON *j = cJSON_Parse(resp.body);
    if (j == NULL)
        return false;
    const cJSON *ro = cJSON_GetObjectItem(j, "role");
    if (role)
        snprintf(role, rl, "%s", cJSON_IsString(ro) ? ro->valuestring : "");
    if (leader) {
        *leader = -1;
        const cJSON *l = cJSON_GetObjectItem(j, "leader");
        const cJSON *ln = l ? cJSON_GetObjectItem(l, "name") : NULL;
        for (int k = 0; k < r->n && cJSON_IsString(ln); k++)
            if (strcmp(ln->valuestring, r->m[k].name) == 0)
                *leader = k;
    }
    if (token) {
        const cJSON *t = cJSON_GetObjectItem(j, "fencing_token");
        *token = cJSON_IsNumber(t) ? (uint64_t)t->valuedouble : 0;
    }
    if (workload_pid) {
        const cJSON *w = cJSON_GetObjectItem(j, "workload");
        const cJSON *p = w ? cJSON_GetObjectItem(w, "pid") : NULL;
        *workload_pid = cJSON_IsNumber(p) ? p->valueint : 0;
    }
    cJSON_Delete(j);
    return true;
}

/* The member that says it leads, or -1. */
static int find_leader(run_t *r)
{
    for (int i = 0; i < r->n; i++) {
        char role[32];
        if (member_status(r, i, role, sizeof(role), NULL, NULL, NULL) &&
            strcmp(role, "leader") == 0)
            return i;
    }
    return -1;
}

static int wait_leader(run_t *r, int timeout_ms)
{
    uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (now_ns() < end && !interrupted) {
        reap(r);
        int l = find_leader(r);
        if (l >= 0)
            return l;
        nap(50);
    }
    return -1;
}

/* ---- clients ------------------------------------------------------------------------------ */

typedef struct client {
    run_t *r;
    int id;
    uint64_t rng;
    int target;
    int segment; /* segment of the last read */
    char last[CHECK_VALUE_MAX];
    uint64_t last_rev; /* mod_revision of the last read, 0 = absent */
    bool have_last;
    unsigned long seq;
    uint64_t token;    /* fencing token in use, 0 = none yet */
    uint64_t token_ns; /* when it was fetched */
    pthread_t thread;
} client_t;

static int segment_now(const run_t *r)
{
    return (int)((now_ns() - r->t0) / SEGMENT_NS);
}

static void record(run_t *r, const check_op_t *op, int segment)
{
    pthread_mutex_lock(&r->mu);
    if (r->n_ops < MAX_OPS) {
        r->ops[r->n_ops].op = *op;
        r->ops[r->n_ops].segment = segment;
        r->n_ops++;
    }
    if (segment > r->max_segment)
        r->max_segment = segment;
    pthread_mutex_unlock(&r->mu);
}

static const char *err_code(const char *body, char *buf, size_t len)
{
    buf[0] = '\0';
    cJSON *j = cJSON_Parse(body);
    const cJSON *e = j ? cJSON_GetObjectItem(j, "error") : NULL;
    const cJSON *c = e ? cJSON_GetObjectItem(e, "code") : NULL;
    if (cJSON_IsString(c))
        snprintf(buf, len, "%s", c->valuestring);
    cJSON_Delete(j);
    return buf;
}

/* After a 421: go to the leader it names, if it is one of ours. */
static void follow_leader(client_t *c, const char *body)
{
    run_t *r = c->r;
    cJSON *j = cJSON_Parse(body);
    const cJSON *e = j ? cJSON_GetObjectItem(j, "error") : NULL;
    const cJSON *l = e ? cJSON_GetObjectItem(e, "leader") : NULL;
    const cJSON *h = l ? cJSON_GetObjectItem(l, "http") : NULL;
    c->target = rnd(&c->rng, 0, r->n - 1);
    for (int i = 0; i < r->n && cJSON_IsString(h); i++) {
        char addr[64];
        snprintf(addr, sizeof(addr), "%s:%d", r->net.ip[i], r->net.http_port[i]);
        if (strcmp(addr, h->valuestring) == 0)
            c->target = i;
    }
    cJSON_Delete(j);
}

/* Classifies a write's answer. */
static check_outcome_t write_outcome(client_t *c, const httpc_resp_t *resp, check_op_t *op)
{
    char code[48];
    if (resp->status >= 200 && resp->status < 300)
        return CHECK_OK;
    if (resp->status == HTTPC_NOT_SENT) {
        c->target = rnd(&c->rng, 0, c->r->n - 1);
        return CHECK_FAIL;
    }
    if (resp->status == HTTPC_LOST) {
        c->target = rnd(&c->rng, 0, c->r->n - 1);
        return CHECK_MAYBE;
    }
    err_code(resp->body, code, sizeof(code));
    if (resp->status == 421) {
        follow_leader(c, resp->body);
        return CHECK_FAIL;
    }
    if (resp->status == 409 && strcmp(code, "conflict") == 0)
        return CHECK_CONFLICT;
    if (resp->status == 409 && strcmp(code, "fenced") == 0) {
        op->fenced = true;
        return CHECK_FAIL;
    }
    if (resp->status == 503 && strcmp(code, "no_leader") == 0) {
        c->target = rnd(&c->rng, 0, c->r->n - 1);
        return CHECK_FAIL; /* never proposed */
    }
    if (resp->status >= 400 && resp->status < 500)
        return CHECK_FAIL;
    c->target = rnd(&c->rng, 0, c->r->n - 1);
    return CHECK_MAYBE; /* 503 timeout / leadership_lost / store_failed, 5xx: may apply */
}

static void client_get(client_t *c, int seg)
{
    run_t *r = c->r;
    check_op_t op = {.client = c->id, .kind = CHECK_GET};
    char path[64];
    snprintf(path, sizeof(path), "/v1/kv/reg%d", seg);
    httpc_resp_t resp;
    int t = c->target;
    op.invoke_ns = now_ns();
    httpc_request(r->net.ip[t], r->net.http_port[t], "GET", path, NULL, NULL, CLIENT_TIMEOUT_MS,
                  &resp);
    op.complete_ns = now_ns();
    op.outcome = CHECK_FAIL;
    if (resp.status == 200) {
        cJSON *j = cJSON_Parse(resp.body);
        const cJSON *v = j ? cJSON_GetObjectItem(j, "value") : NULL;
        const cJSON *mr = j ? cJSON_GetObjectItem(j, "mod_revision") : NULL;
        if (cJSON_IsString(v) && cJSON_IsNumber(mr)) {
            op.outcome = CHECK_OK;
            snprintf(op.value, sizeof(op.value), "%s", v->valuestring);
            c->last_rev = (uint64_t)mr->valuedouble;
        }
        cJSON_Delete(j);
    } else if (resp.status == 404) {
        op.outcome = CHECK_OK; /* absent */
        c->last_rev = 0;
    } else if (resp.status == 421) {
        follow_leader(c, resp.body);
    } else {
        c->target = rnd(&c->rng, 0, r->n - 1);
    }
    if (op.outcome == CHECK_OK) {
        c->have_last = true;
        c->segment = seg;
        snprintf(c->last, sizeof(c->last), "%s", op.value);
    }
    record(r, &op, seg);
}

static void client_write(client_t *c, int seg, int kind /* 0 put, 1 cas, 2 fenced put */)
{
    run_t *r = c->r;
    check_op_t op = {.client = c->id, .kind = kind == 1 ? CHECK_CAS : CHECK_PUT};
    int t = c->target;
    char path[96], header[64] = "";
    if (kind == 2) {
        /* Like a primary that got its token at start, keep using it for a while: after a
         * failover the store must refuse it. */
        if (c->token == 0 || now_ns() - c->token_ns > TOKEN_REUSE_NS) {
            uint64_t token = 0;
            if (!member_status(r, t, NULL, 0, NULL, &token, NULL) || token == 0) {
                c->target = rnd(&c->rng, 0, r->n - 1);
                return;
            }
            c->token = token;
            c->token_ns = now_ns();
        }
        uint64_t token = c->token;
        op.fence = token;
        snprintf(path, sizeof(path), "/v1/kv/reg%d?fence=%" PRIu64, seg, token);
    } else {
        snprintf(path, sizeof(path), "/v1/kv/reg%d", seg);
    }
    if (kind == 1) {
        snprintf(op.expect, sizeof(op.expect), "%s", c->last);
        if (c->last_rev == 0)
            snprintf(header, sizeof(header), "If-None-Match: *");
        else
            snprintf(header, sizeof(header), "If-Match: %" PRIu64, c->last_rev);
    }
    snprintf(op.value, sizeof(op.value), "c%d-%lu", c->id, ++c->seq);
    httpc_resp_t resp;
    op.invoke_ns = now_ns();
    httpc_request(r->net.ip[t], r->net.http_port[t], "PUT", path, header[0] ? header : NULL,
                  op.value, CLIENT_TIMEOUT_MS, &resp);
    op.complete_ns = now_ns();
    op.outcome = write_outcome(c, &resp, &op);
    if (op.fenced)
        c->token = 0; /* stale: fetch the current one next time */
    if (op.outcome == CHECK_MAYBE) {
        op.complete_ns = CHECK_NEVER;
        pthread_mutex_lock(&r->mu);
        if (resp.status == HTTPC_LOST)
            r->http_lost++;
        pthread_mutex_unlock(&r->mu);
    }
    c->have_last = false; /* the next cas reads first */
    record(r, &op, seg);
}

static void *client_main(void *arg)
{
    client_t *c = arg;
    run_t *r = c->r;
    /* Bounded by the run: at most one op per 10 ms for the longest run allowed. */
    for (long k = 0; k < 10000000 && !atomic_load(&r->stop_clients) && !interrupted; k++) {
        int seg = segment_now(r);
        int pick = rnd(&c->rng, 0, 99);
        if (pick < 35)
            client_get(c, seg);
        else if (pick < 60)
            client_write(c, seg, 0);
        else if (pick < 88) {
            if (c->have_last && c->segment == seg)
                client_write(c, seg, 1);
            else
                client_get(c, seg);
        } else
            client_write(c, seg, 2);
        usleep((useconds_t)rnd(&c->rng, 10, 40) * 1000);
    }
    return NULL;
}

/* ---- the fault schedule ------------------------------------------------------------------ */

#define MAX_GROUPS 64

/* Process groups of every descendant of pid (the exec shim stays in electd's group; the
 * workload under it has a group of its own), found by walking /proc. */
static size_t descendant_groups(pid_t root, pid_t *groups, size_t max)
{
    pid_t tree[64];
    size_t n_tree = 0, n = 0;
    tree[n_tree++] = root;
    for (size_t k = 0; k < n_tree && n_tree < 64; k++) {
        DIR *d = opendir("/proc");
        if (d == NULL)
            break;
        struct dirent *e;
        while ((e = readdir(d)) != NULL && n_tree < 64) {
            int pid = atoi(e->d_name);
            if (pid <= 0)
                continue;
            char path[64], buf[512];
            snprintf(path, sizeof(path), "/proc/%d/stat", pid);
            FILE *f = fopen(path, "r");
            if (f == NULL)
                continue;
            size_t len = fread(buf, 1, sizeof(buf) - 1, f);
            fclose(f);
            buf[len] = '\0';
            const char *rp = strrchr(buf, ')'); /* the name may contain spaces */
            int ppid = 0;
            if (rp == NULL || sscanf(rp + 2, "%*c %d", &ppid) != 1 || ppid != tree[k])
                continue;
            tree[n_tree++] = pid;
        }
        closedir(d);
    }
    for (size_t k = 0; k < n_tree; k++) {
        pid_t g = getpgid(tree[k]);
        bool seen = g <= 1 || g == getpgrp();
        for (size_t j = 0; j < n && !seen; j++)
            seen = groups[j] == g;
        if (!seen && n < max)
            groups[n++] = g;
    }
    return n;
}

/* Records what was done to member i's processes, for the checks of the primaries. */
static void lapse(run_t *r, int i, check_lapse_t kind, uint64_t stop_ns, uint64_t cont_ns)
{
    if (r->n_frozen >= CHECK_FROZEN_MAX)
        return;
    check_frozen_t *f = &r->frozen[r->n_frozen++];
    memcpy(f->node, r->m[i].name, sizeof(r->m[i].name));
    f->stop_ns = stop_ns;
    f->cont_ns = cont_ns;
    f->lapse = kind;
}

/* SIGSTOP, hold, SIGCONT: electd alone, or electd with everything under it (a frozen
 * machine, as far as this member is concerned). */
static void freeze(run_t *r, int i, bool with_workload, int hold_ms)
{
    member_t *m = &r->m[i];
    if (m->pid == 0)
        return;
    pid_t groups[MAX_GROUPS];
    size_t n_groups = with_workload ? descendant_groups(m->pid, groups, MAX_GROUPS) : 0;
    uint64_t t_stop = now_ns();
    kill(m->pid, SIGSTOP);
    for (size_t k = 0; k < n_groups; k++)
        kill(-groups[k], SIGSTOP);
    char list[MAX_GROUPS * 12] = "";
    for (size_t k = 0, off = 0; k < n_groups && off < sizeof(list); k++)
        off += (size_t)snprintf(list + off, sizeof(list) - off, " %d", (int)groups[k]);
    say(r, "  froze %s (pid %d)%s%s", m->name, (int)m->pid,
        with_workload ? " with the process groups under it:" : "",
        with_workload ? (n_groups ? list : " none") : "");
    nap(hold_ms);
    for (size_t k = 0; k < n_groups; k++)
        kill(-groups[k], SIGCONT);
    if (m->pid != 0)
        kill(m->pid, SIGCONT);
    lapse(r, i, with_workload ? CHECK_FROZEN_ALL : CHECK_FROZEN_ELECTD, t_stop, now_ns());
}

static void fill_disk(run_t *r, int i, bool fill)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/filler", r->m[i].dir);
    if (!fill) {
        unlink(path);
        return;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return;
    static char block[65536];
    for (int k = 0; k < 1024; k++) /* at most 64 MiB, past the tmpfs size */
        if (write(fd, block, sizeof(block)) <= 0)
            break;
    close(fd);
}

static void wipe(run_t *r, int i)
{
    const char *argv[] = {"find", r->m[i].dir, "-mindepth", "1", "-delete", NULL};
    chaos_run_cmd(argv, true);
}

static const char *path_or(int step, const char *member_path)
{
    return step == 0 ? member_path : "/v1/members";
}

/* A member whose data directory was wiped is a new instance that the others refuse (they
 * pinned the old one); the operator's procedure is to remove it and add it again
 * (docs/operations.md). Bounded: a few attempts each, then the run goes on without it. */
static void readmit(run_t *r, int i)
{
    char path[64], body[160];
    snprintf(path, sizeof(path), "/v1/members/%s", r->m[i].name);
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"peer_addr\":\"%s:%d\"}", r->m[i].name,
             r->net.ip[i], r->net.peer_port[i]);
    const char *method[2] = {"DELETE", "POST"};
    for (int step = 0; step < 2; step++) {
        int status = 0;
        for (int tries = 0; tries < 50 && status / 100 != 2 && !interrupted; tries++) {
            int l = wait_leader(r, 2000);
            httpc_resp_t resp;
            status = l >= 0 && l != i
                         ? httpc_request(r->net.ip[l], r->net.http_port[l], method[step],
                                         path_or(step, path), NULL, step ? body : NULL, 2000, &resp)
                         : 0;
            if (status / 100 != 2)
                nap(100);
        }
        say(r, "  %s %s: %d", method[step], r->m[i].name, status);
    }
}

static void cut_groups(run_t *r, const bool *side, bool cut)
{
    for (int a = 0; a < r->n; a++)
        for (int b = 0; b < r->n; b++)
            if (side[a] != side[b])
                chaos_net_cut(&r->net, a, b, cut);
}

static void ensure_running(run_t *r)
{
    reap(r);
    for (int i = 0; i < r->n; i++)
        if (r->m[i].pid == 0) {
            say(r, "  restarting %s", r->m[i].name);
            member_start(r, i);
        }
}

static void run_fault(run_t *r, uint64_t *rng, fault_kind_t kind, int hold_ms)
{
    r->faults[kind]++;
    int leader = find_leader(r);
    int victim = leader >= 0 && rnd(rng, 0, 2) != 0 ? leader : rnd(rng, 0, r->n - 1);
    bool side[CHAOS_MAX_NODES] = {false};
    uint64_t killed_ns = 0;
    switch (kind) {
    case F_ISOLATE_LEADER: {
        if (leader < 0)
            leader = victim;
        side[leader] = true;
        say(r, "fault %s: %s (hold %d ms)", fault_name[kind], r->m[leader].name, hold_ms);
        cut_groups(r, side, true);
        nap(hold_ms);
        cut_groups(r, side, false);
        break;
    }
    case F_SPLIT: {
        int minority = (r->n - 1) / 2;
        char names[32] = "";
        for (int k = 0; k < minority;) {
            int x = rnd(rng, 0, r->n - 1);
            if (!side[x]) {
                side[x] = true;
                strcat(names, r->m[x].name);
                k++;
            }
        }
        say(r, "fault %s: {%s} | rest (hold %d ms)", fault_name[kind], names, hold_ms);
        cut_groups(r, side, true);
        nap(hold_ms);
        cut_groups(r, side, false);
        break;
    }
    case F_ONEWAY: {
        int to = rnd(rng, 0, r->n - 2);
        if (to >= victim)
            to++;
        bool from_victim = rnd(rng, 0, 1);
        int a = from_victim ? victim : to, b = from_victim ? to : victim;
        /* Half of the time the victim loses every outbound link, not just one. */
        bool all = rnd(rng, 0, 1);
        say(r, "fault %s: %s -> %s dropped (hold %d ms)", fault_name[kind], r->m[a].name,
            all ? "*" : r->m[b].name, hold_ms);
        for (int k = 0; k < r->n; k++)
            if (k != a && (all || k == b))
                chaos_net_cut(&r->net, a, k, true);
        nap(hold_ms);
        chaos_net_heal_all(&r->net);
        break;
    }
    case F_FLAP: {
        side[victim] = true;
        int flips = 0;
        say(r, "fault %s: %s flaps (hold %d ms)", fault_name[kind], r->m[victim].name, hold_ms);
        uint64_t end = now_ns() + (uint64_t)hold_ms * 1000000ull;
        for (int k = 0; k < 1000 && now_ns() < end && !interrupted; k++) {
            cut_groups(r, side, k % 2 == 0);
            flips++;
            nap(rnd(rng, 80, 400));
        }
        cut_groups(r, side, false);
        say(r, "  %d flips", flips);
        break;
    }
    case F_KILL:
        say(r, "fault %s: %s (pid %d; down %d ms)", fault_name[kind], r->m[victim].name,
            (int)r->m[victim].pid, hold_ms);
        member_kill(r, victim, SIGKILL);
        killed_ns = now_ns();
        nap(hold_ms);
        break;
    case F_PAUSE_ELECTD:
    case F_PAUSE_ALL:
        say(r, "fault %s: %s (hold %d ms)", fault_name[kind], r->m[victim].name, hold_ms);
        freeze(r, victim, kind == F_PAUSE_ALL, hold_ms);
        break;
    case F_DISK_FULL:
        victim = r->disk_node;
        say(r, "fault %s: %s (hold %d ms)", fault_name[kind], r->m[victim].name, hold_ms);
        fill_disk(r, victim, true);
        nap(hold_ms);
        fill_disk(r, victim, false);
        break;
    case F_ISOLATE_ALL:
        say(r, "fault %s: every link cut (hold %d ms)", fault_name[kind], hold_ms);
        for (int a = 0; a < r->n; a++)
            for (int b = 0; b < r->n; b++)
                chaos_net_cut(&r->net, a, b, true);
        nap(hold_ms);
        break;
    case F_WIPE:
        say(r, "fault %s: %s (pid %d; down %d ms)", fault_name[kind], r->m[victim].name,
            (int)r->m[victim].pid, hold_ms);
        member_kill(r, victim, SIGKILL);
        killed_ns = now_ns();
        wipe(r, victim);
        nap(hold_ms);
        readmit(r, victim);
        break;
    default:
        break;
    }
    ensure_running(r);
    if (killed_ns != 0) /* the kill is recorded when it happened; the restart ends the lapse */
        lapse(r, victim, CHECK_KILLED, killed_ns, now_ns());
}

static fault_kind_t pick_fault(run_t *r, uint64_t *rng)
{
    static const int weight[F_KINDS] = {14, 12, 12, 8, 14, 10, 10, 8, 6, 0};
    for (int tries = 0; tries < 100; tries++) {
        int total = 0;
        for (int k = 0; k < F_KINDS; k++)
            total += weight[k];
        int x = rnd(rng, 0, total - 1);
        int k = 0;
        while (x >= weight[k])
            x -= weight[k++];
        if ((k == F_DISK_FULL && r->disk_node < 0) || !(r->allowed & (1u << k)))
            continue;
        return (fault_kind_t)k;
    }
    return F_KILL;
}

/* ---- after the run ------------------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_start(const void *a, const void *b)
{
    const events_interval_t *x = a, *y = b;
    return x->start_ns < y->start_ns ? -1 : x->start_ns > y->start_ns;
}

/* How long a hook-mode primary whose on-stop did not complete may still count as primary, at
 * the default election timeout E of 1 s: the leader's lease (E/(1+d), docs/guarantees.md), a
 * named election's session (2 E of the holder's ticks, 2 E/(1-d) at the most with d = 5 %). */
#define HOOK_LEASE_NS   1000000000ull
#define HOOK_SESSION_NS 2200000000ull

/* Checks election e's primaries (-1: the default election) for overlaps, adds its counts to
 * *ov and, supervised, its failover gaps to gaps[]. Returns its number of primaries. */
static size_t check_primaries(run_t *r, int e, events_t *ev, check_overlap_report_t *ov,
                              uint64_t *gaps, size_t *n_gaps)
{
    char path[400], name[16] = "default", why[400] = "";
    chaos_modes_events(&r->modes, e, path, sizeof(path));
    if (e >= 0)
        chaos_modes_name(e, name, sizeof(name));
    check_overlap_report_t one;
    size_t n;
    if (r->hooks) {
        n = check_hook_overlaps(events_read(path), r->frozen, r->n_frozen,
                                e < 0 ? HOOK_LEASE_NS : HOOK_SESSION_NS, &one, why, sizeof(why));
    } else {
        events_load(path, ev);
        check_overlaps(ev, r->frozen, r->n_frozen, &one);
        if (one.overlaps) {
            const events_interval_t *a = &ev->iv[one.first_a], *b = &ev->iv[one.first_b];
            snprintf(why, sizeof(why), "%s pid %d [%.3f, %.3f] s and %s pid %d [%.3f, %.3f] s",
                     a->node, a->pid, (double)(a->start_ns - r->t0) / 1e9,
                     (double)(a->end_ns - r->t0) / 1e9, b->node, b->pid,
                     (double)(b->start_ns - r->t0) / 1e9, (double)(b->end_ns - r->t0) / 1e9);
        }
        /* failovers: the gap between one primary's end and the next one's start */
        qsort(ev->iv, ev->n, sizeof(ev->iv[0]), cmp_start);
        for (size_t i = 1; i < ev->n; i++)
            gaps[(*n_gaps)++] = ev->iv[i].start_ns > ev->iv[i - 1].end_ns
                                    ? ev->iv[i].start_ns - ev->iv[i - 1].end_ns
                                    : 0;
        n = ev->n;
    }
    if (one.overlaps) {
        say(r, "VIOLATION: election %s: %d overlapping primaries; first: %s", name, one.overlaps,
            why);
        r->violations += one.overlaps;
    }
    ov->overlaps += one.overlaps;
    ov->frozen_tails += one.frozen_tails;
    if (one.longest_tail_ns > ov->longest_tail_ns)
        ov->longest_tail_ns = one.longest_tail_ns;
    return n;
}

/* How many named elections the leader's table says are held. */
static int elections_held(run_t *r)
{
    int l = find_leader(r), held = 0;
    httpc_resp_t resp;
    if (l < 0 || httpc_request(r->net.ip[l], r->net.http_port[l], "GET", "/v1/elections", NULL,
                               NULL, 1000, &resp) != 200)
        return 0;
    cJSON *j = cJSON_Parse(resp.body);
    const cJSON *e, *list = j ? cJSON_GetObjectItem(j, "elections") : NULL;
    cJSON_ArrayForEach(e, list)
    {
        const cJSON *st = cJSON_GetObjectItem(e, "state");
        held += cJSON_IsString(cJSON_GetObjectItem(e, "holder")) && cJSON_IsString(st) &&
                strcmp(st->valuestring, "held") == 0;
    }
    cJSON_Delete(j);
    return held;
}

/* A linearizable read of every key after healing, appended to the history. */
static bool final_reads(run_t *r, char (*final)[CHECK_VALUE_MAX], bool *have)
{
    int leader = wait_leader(r, LEADER_WAIT_MS);
    if (leader < 0)
        return false;
    for (int s = 0; s <= r->max_segment && s < MAX_SEGMENTS; s++) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/kv/reg%d", s);
        for (int tries = 0; tries < 20 && !have[s]; tries++) {
            httpc_resp_t resp;
            check_op_t op = {.client = MAX_CLIENTS, .kind = CHECK_GET};
            op.invoke_ns = now_ns();
            httpc_request(r->net.ip[leader], r->net.http_port[leader], "GET", path, NULL, NULL,
                          CLIENT_TIMEOUT_MS, &resp);
            op.complete_ns = now_ns();
            if (resp.status == 404) {
                op.outcome = CHECK_OK;
            } else if (resp.status == 200) {
                cJSON *j = cJSON_Parse(resp.body);
                const cJSON *v = j ? cJSON_GetObjectItem(j, "value") : NULL;
                if (cJSON_IsString(v)) {
                    snprintf(op.value, sizeof(op.value), "%s", v->valuestring);
                    op.outcome = CHECK_OK;
                }
                cJSON_Delete(j);
            }
            if (op.outcome == CHECK_OK) {
                snprintf(final[s], CHECK_VALUE_MAX, "%s", op.value);
                have[s] = true;
                record(r, &op, s);
                break;
            }
            leader = wait_leader(r, LEADER_WAIT_MS);
            if (leader < 0)
                return false;
        }
    }
    return true;
}

static int count_in_file(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char line[4096];
    int n = 0;
    for (int k = 0; k < 10000000 && fgets(line, sizeof(line), f); k++)
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

/* Stops every member with SIGTERM (a graceful exit 0 is expected), bounded. */
static int stop_all(run_t *r)
{
    int unclean = 0;
    for (int i = 0; i < r->n; i++)
        if (r->m[i].pid != 0) {
            r->m[i].expect_exit = true;
            kill(r->m[i].pid, SIGTERM);
        }
    uint64_t end = now_ns() + (uint64_t)STOP_WAIT_MS * 1000000ull;
    for (int i = 0; i < r->n; i++) {
        member_t *m = &r->m[i];
        while (m->pid != 0 && now_ns() < end) {
            int st;
            pid_t p = waitpid(m->pid, &st, WNOHANG);
            if (p == m->pid) {
                m->pid = 0;
                describe_exit(st, m->last_exit, sizeof(m->last_exit));
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                    unclean++;
                    say(r, "VIOLATION: member %s stopped with %s on SIGTERM; see %s", m->name,
                        m->last_exit, m->log);
                }
                break;
            }
            usleep(10000);
        }
        if (m->pid != 0) {
            say(r, "VIOLATION: member %s did not stop within %d ms of SIGTERM", m->name,
                STOP_WAIT_MS);
            kill(m->pid, SIGKILL);
            waitpid(m->pid, NULL, 0);
            m->pid = 0;
            unclean++;
        }
    }
    reap(r);
    return unclean;
}

static void kill_all(run_t *r)
{
    for (int i = 0; i < r->n; i++)
        if (r->m[i].pid != 0) {
            kill(r->m[i].pid, SIGCONT);
            member_kill(r, i, SIGKILL);
        }
}

/* ---- one run ------------------------------------------------------------------------------ */

static int run_once(run_t *r)
{
    int rc = 2;
    char err[256];
    /* Seeds are hashed so that nearby seeds give unrelated schedules. */
    uint64_t rng = r->seed ^ 0x6a09e667f3bcc909ull;
    rng = splitmix(&rng);
    client_t clients[MAX_CLIENTS];
    int n_threads = 0;
    char(*final)[CHECK_VALUE_MAX] = calloc(MAX_SEGMENTS, CHECK_VALUE_MAX);
    bool *have = calloc(MAX_SEGMENTS, sizeof(bool));
    check_op_t *seg_ops = malloc(sizeof(check_op_t) * MAX_OPS);
    r->ops = malloc(sizeof(op_rec_t) * MAX_OPS);
    pthread_mutex_init(&r->mu, NULL);
    r->disk_node = -1;
    if (!final || !have || !seg_ops || !r->ops) {
        fprintf(stderr, "chaos: out of memory\n");
        goto out;
    }

    chaos_net_reap_stale();
    bool force_proxy = r->force_proxy || (getenv("CHAOS_FORCE_PROXY") &&
                                          strcmp(getenv("CHAOS_FORCE_PROXY"), "1") == 0);
    if (chaos_net_setup(&r->net, r->n, force_proxy, err, sizeof(err)) != 0) {
        if (!force_proxy) {
            fprintf(stderr, "chaos: namespaces unavailable (%s); using the loopback proxy\n", err);
            force_proxy = true;
        }
        if (chaos_net_setup(&r->net, r->n, true, err, sizeof(err)) != 0) {
            fprintf(stderr, "chaos: %s\n", err);
            goto out;
        }
    }
    snprintf(r->root, sizeof(r->root), "/tmp/chaos-%d-XXXXXX", (int)getpid());
    if (mkdtemp(r->root) == NULL) {
        perror("mkdtemp");
        goto out;
    }
    snprintf(r->events, sizeof(r->events), "%s/events", r->root);
    if (chaos_modes_setup(&r->modes, r->root, r->events, r->hooks, r->n_elections,
                          TESTWORKER_BIN) != 0)
        goto out;
    if (r->net.netns)
        r->disk_node = rnd(&rng, 0, r->n - 1);
    char root[sizeof(r->root)];
    memcpy(root, r->root, sizeof(root));
    for (int i = 0; i < r->n; i++) {
        member_t *m = &r->m[i];
        char name = (char)('a' + i);
        memset(m, 0, sizeof(*m));
        m->name[0] = name;
        snprintf(m->dir, sizeof(m->dir), "%s/%c", root, name);
        snprintf(m->log, sizeof(m->log), "%s/%c.log", root, name);
        mkdir(m->dir, 0700);
        if (i == r->disk_node) {
            if (mount("chaos", m->dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=" TMPFS_SIZE) == 0)
                m->tmpfs = true;
            else
                r->disk_node = -1;
        }
    }

    printf("chaos: seed %" PRIu64 ", %d members, %s mode, %d s of faults, %d clients, %s, %s, "
           "%d named elections, dir %s\n",
           r->seed, r->n, r->net.netns ? "namespace" : "proxy", r->duration_s, r->n_clients,
           tls_dir[0] ? "peer TLS" : "plain TCP peers", r->hooks ? "hooks" : "supervised",
           r->n_elections, r->root);
    if (r->disk_node >= 0)
        printf("chaos: member %s keeps its data on a %s tmpfs\n", r->m[r->disk_node].name,
               TMPFS_SIZE);
    r->t0 = now_ns();
    for (int i = 0; i < r->n; i++)
        member_start(r, i);
    int leader = wait_leader(r, LEADER_WAIT_MS);
    if (leader < 0) {
        say(r, "no leader within %d ms; logs in %s", LEADER_WAIT_MS, r->root);
        r->keep = true;
        goto out;
    }
    say(r, "leader %s", r->m[leader].name);

    for (int k = 0; k < r->n_clients; k++) {
        clients[k] =
            (client_t){.r = r, .id = k, .rng = splitmix(&rng) + (uint64_t)k, .target = k % r->n};
        if (pthread_create(&clients[k].thread, NULL, client_main, &clients[k]) == 0)
            n_threads++;
    }

    /* The schedule: one fault at a time, each held 1-4 s, then a quiet gap of 0.5-2.5 s. */
    uint64_t fault_end = r->t0 + (uint64_t)r->duration_s * 1000000000ull;
    nap(1500);
    int n_faults = 0;
    for (int k = 0; k < 10000 && now_ns() < fault_end && !interrupted; k++) {
        fault_kind_t kind = pick_fault(r, &rng);
        int hold = rnd(&rng, 1000, 4000);
        run_fault(r, &rng, kind, hold);
        n_faults++;
        nap(rnd(&rng, 500, 2500));
        reap(r);
    }
    if (interrupted)
        goto out;
    /* The closing fault leaves nobody a quorum, so the liveness check below measures a
     * real election rather than a cluster that never lost its leader. */
    if (!interrupted) {
        run_fault(r, &rng, F_ISOLATE_ALL, 2000);
        n_faults++;
    }
    chaos_net_heal_all(&r->net);
    ensure_running(r);
    uint64_t healed = now_ns();
    say(r, "healed after %d faults", n_faults);

    /* Liveness: a primary and a successful write within the bound. */
    double live_s = -1;
    for (int k = 0; k < 10000 && !interrupted; k++) {
        if (now_ns() - healed > (uint64_t)LIVENESS_BOUND_MS * 1000000ull)
            break;
        reap(r);
        bool primary = false;
        int l = -1;
        for (int i = 0; i < r->n && !primary; i++) {
            httpc_resp_t resp;
            if (r->m[i].pid && httpc_request(r->net.ip[i], r->net.http_port[i], "GET",
                                             "/v1/primary", NULL, NULL, 1000, &resp) == 200) {
                primary = true;
                l = i;
            }
        }
        httpc_resp_t resp;
        if (primary && httpc_request(r->net.ip[l], r->net.http_port[l], "PUT", "/v1/kv/live", NULL,
                                     "x", 2000, &resp) /
                               100 ==
                           2) {
            live_s = (double)(now_ns() - healed) / 1e9;
            break;
        }
        nap(50);
    }
    if (live_s < 0) {
        say(r, "VIOLATION: no primary with a successful write within %d ms of healing",
            LIVENESS_BOUND_MS);
        r->violations++;
    } else {
        say(r, "live again %.2f s after healing", live_s);
    }
    double held_s = -1;
    for (int k = 0; k < 10000 && r->n_elections > 0 && live_s >= 0 && !interrupted; k++) {
        if (now_ns() - healed > (uint64_t)ELECTIONS_BOUND_MS * 1000000ull)
            break;
        if (elections_held(r) == r->n_elections) {
            held_s = (double)(now_ns() - healed) / 1e9;
            say(r, "every named election held %.2f s after healing", held_s);
            break;
        }
        nap(50);
    }
    if (r->n_elections > 0 && held_s < 0) {
        say(r, "VIOLATION: not every named election held within %d ms of healing",
            ELECTIONS_BOUND_MS);
        r->violations++;
    }
    nap(1000);
    atomic_store(&r->stop_clients, true);
    for (int k = 0; k < n_threads; k++)
        pthread_join(clients[k].thread, NULL);
    n_threads = 0;

    bool reads_ok = final_reads(r, final, have);
    if (!reads_ok) {
        say(r, "VIOLATION: could not read every key back after healing");
        r->violations++;
    }
    int unclean = stop_all(r);
    r->violations += unclean;

    /* ---- checks ---- */
    events_t *ev = malloc(sizeof(*ev));
    if (ev == NULL)
        goto out;
    check_overlap_report_t ov = {0};
    size_t n_primaries = 0, n_gaps = 0;
    static uint64_t gaps[EVENTS_MAX_INTERVALS * (CHAOS_MAX_ELECTIONS + 1)];
    for (int e = -1; e < r->n_elections; e++)
        n_primaries += check_primaries(r, e, ev, &ov, gaps, &n_gaps);
    qsort(gaps, n_gaps, sizeof(gaps[0]), cmp_u64);

    int lin_ok = 0, lin_bad = 0, lin_unknown = 0, lost = 0;
    size_t counted[3][4] = {{0}};
    uint64_t max_steps = 0;
    for (int s = 0; s <= r->max_segment && s < MAX_SEGMENTS; s++) {
        size_t n = 0;
        for (size_t i = 0; i < r->n_ops; i++)
            if (r->ops[i].segment == s)
                seg_ops[n++] = r->ops[i].op;
        if (n == 0)
            continue;
        uint64_t steps = 0;
        check_verdict_t v = check_linearizable(seg_ops, n, &steps);
        if (steps > max_steps)
            max_steps = steps;
        if (v == CHECK_LINEARIZABLE)
            lin_ok++;
        else if (v == CHECK_INCONCLUSIVE) {
            lin_unknown++;
            say(r, "key reg%d: linearizability inconclusive (%zu ops, %" PRIu64 " steps)", s, n,
                steps);
        } else {
            lin_bad++;
            say(r, "VIOLATION: key reg%d: history not linearizable (%zu ops)", s, n);
        }
        char lv[CHECK_VALUE_MAX];
        if (have[s] && check_lost_writes(seg_ops, n, final[s], lv)) {
            lost++;
            say(r, "VIOLATION: key reg%d: acknowledged write %s lost (final value \"%s\")", s, lv,
                final[s]);
        }
    }
    r->violations += lin_bad + lost;
    size_t n_all = 0, n_fenced = 0;
    uint64_t last_ok = r->t0, longest_gap = 0;
    for (size_t i = 0; i < r->n_ops; i++) {
        check_op_t *o = &r->ops[i].op;
        if (o->client == MAX_CLIENTS)
            continue;
        seg_ops[n_all++] = *o;
        counted[o->kind][o->outcome]++;
        n_fenced += o->fenced;
    }
    for (size_t i = 0; i < n_all; i++) /* ops were recorded in completion order */
        if (seg_ops[i].kind != CHECK_GET && seg_ops[i].outcome == CHECK_OK) {
            if (seg_ops[i].complete_ns > last_ok && seg_ops[i].complete_ns - last_ok > longest_gap)
                longest_gap = seg_ops[i].complete_ns - last_ok;
            if (seg_ops[i].complete_ns > last_ok)
                last_ok = seg_ops[i].complete_ns;
        }
    int stale_fenced = check_fencing(seg_ops, n_all);
    if (stale_fenced) {
        say(r, "VIOLATION: %d fenced writes acknowledged with a stale token", stale_fenced);
        r->violations += stale_fenced;
    }
    int crashes = 0, refused = 0, sanitizer = 0;
    for (int i = 0; i < r->n; i++) {
        crashes += r->m[i].unexpected_exits;
        refused += r->m[i].refused_starts;
        int s = count_in_file(r->m[i].log, "ERROR: AddressSanitizer") +
                count_in_file(r->m[i].log, "ERROR: LeakSanitizer") +
                count_in_file(r->m[i].log, "runtime error:");
        if (s) {
            say(r, "VIOLATION: sanitizer report in %s", r->m[i].log);
            sanitizer += s;
        }
    }
    r->violations += sanitizer;

    tally_t *t = &r->tally;
    memcpy(t->faults, r->faults, sizeof(t->faults));
    t->n_faults = n_faults;
    t->overlaps = ov.overlaps, t->tails = ov.frozen_tails, t->longest_tail_ns = ov.longest_tail_ns;
    t->lin_ok = lin_ok, t->lin_bad = lin_bad, t->lin_unknown = lin_unknown, t->lost = lost;
    t->stale_fenced = stale_fenced;
    t->crashes = crashes, t->refused = refused, t->unclean = unclean, t->sanitizer = sanitizer;
    t->live_failed = live_s < 0, t->live_min_s = live_s, t->live_max_s = live_s;
    t->primaries = n_primaries, t->failovers = n_gaps;
    t->failover_max_s = n_gaps ? (double)gaps[n_gaps - 1] / 1e9 : 0;

    /* ---- the table ---- */
    printf("\n== chaos run: seed %" PRIu64 ", %d members, %s mode, %d s ==\n", r->seed, r->n,
           r->net.netns ? "namespace" : "proxy", r->duration_s);
    printf("%-28s %s\n", "fault", "count");
    for (int k = 0; k < F_KINDS; k++)
        printf("%-28s %d\n", fault_name[k], r->faults[k]);
    printf("%-28s %d\n", "total", n_faults);
    printf("%-28s %s\n", "check", "result");
    printf("%-28s %d (frozen-machine tails excused: %d, longest %.0f ms after thaw)\n",
           "primary overlaps", ov.overlaps, ov.frozen_tails, (double)ov.longest_tail_ns / 1e6);
    printf("%-28s %d keys linearizable, %d not, %d inconclusive (max %" PRIu64 " steps)\n",
           "linearizability", lin_ok, lin_bad, lin_unknown, max_steps);
    printf("%-28s %d\n", "lost acknowledged writes", lost);
    printf("%-28s %d\n", "stale fenced writes acked", stale_fenced);
    if (live_s >= 0)
        printf("%-28s %.2f s (bound %d s)\n", "liveness after heal", live_s,
               LIVENESS_BOUND_MS / 1000);
    else
        printf("%-28s FAILED (bound %d s)\n", "liveness after heal", LIVENESS_BOUND_MS / 1000);
    printf("%-28s %d crashes, %d refused starts, %d unclean stops, %d sanitizer reports\n",
           "electd exits", crashes, refused, unclean, sanitizer);
    printf("%-28s %.2f s\n", "longest write unavailability", (double)longest_gap / 1e9);
    if (n_gaps)
        printf("%-28s %zu: median %.2f s, max %.2f s\n", "failovers (primary gaps)", n_gaps,
               (double)gaps[n_gaps / 2] / 1e9, (double)gaps[n_gaps - 1] / 1e9);
    else
        printf("%-28s 0\n", "failovers (primary gaps)");
    printf("%-28s %zu %s in %d election%s, %zu fenced writes refused as stale\n", "primaries",
           n_primaries, r->hooks ? "hook periods" : "intervals", r->n_elections + 1,
           r->n_elections ? "s" : "", n_fenced);
    static const char *kn[] = {"get", "put", "cas"};
    for (int k = 0; k < 3; k++)
        printf("client %-21s ok %zu, conflict %zu, failed %zu, unknown %zu\n", kn[k],
               counted[k][CHECK_OK], counted[k][CHECK_CONFLICT], counted[k][CHECK_FAIL],
               counted[k][CHECK_MAYBE]);
    if (!r->net.netns)
        printf("%-28s %lu\n", "proxy: links cut", chaos_net_proxy_refused(&r->net));
    printf("RESULT %s seed=%" PRIu64 " violations=%d\n", r->violations ? "FAIL" : "PASS", r->seed,
           r->violations);
    free(ev);
    rc = r->violations ? 1 : 0;
    if (rc != 0)
        r->keep = true;

out:
    atomic_store(&r->stop_clients, true);
    for (int k = 0; k < n_threads; k++)
        pthread_join(clients[k].thread, NULL);
    kill_all(r);
    reap(r);
    for (int i = 0; i < r->n; i++)
        if (r->m[i].tmpfs) {
            umount2(r->m[i].dir, MNT_DETACH);
            r->m[i].tmpfs = false;
        }
    chaos_net_teardown(&r->net);
    if (r->root[0] != '\0') {
        if (r->keep) {
            printf("chaos: logs and event file kept in %s\n", r->root);
        } else {
            const char *argv[] = {"rm", "-rf", "--", r->root, NULL};
            chaos_run_cmd(argv, true);
        }
    }
    pthread_mutex_destroy(&r->mu);
    free(final);
    free(have);
    free(seg_ops);
    free(r->ops);
    r->ops = NULL;
    if (interrupted && rc == 0)
        rc = 2;
    return rc;
}

static void tally_add(tally_t *sum, const tally_t *t, bool failed)
{
    bool first = sum->rounds - sum->live_failed == 0;
    sum->rounds++;
    sum->failed += failed;
    for (int k = 0; k < F_KINDS; k++)
        sum->faults[k] += t->faults[k];
    sum->n_faults += t->n_faults;
    sum->overlaps += t->overlaps;
    sum->tails += t->tails;
    if (t->longest_tail_ns > sum->longest_tail_ns)
        sum->longest_tail_ns = t->longest_tail_ns;
    sum->lin_ok += t->lin_ok, sum->lin_bad += t->lin_bad, sum->lin_unknown += t->lin_unknown;
    sum->lost += t->lost, sum->stale_fenced += t->stale_fenced;
    sum->crashes += t->crashes, sum->refused += t->refused, sum->unclean += t->unclean;
    sum->sanitizer += t->sanitizer;
    sum->live_failed += t->live_failed;
    if (!t->live_failed) {
        if (first || t->live_min_s < sum->live_min_s)
            sum->live_min_s = t->live_min_s;
        if (first || t->live_max_s > sum->live_max_s)
            sum->live_max_s = t->live_max_s;
    }
    sum->primaries += t->primaries, sum->failovers += t->failovers;
    if (t->failover_max_s > sum->failover_max_s)
        sum->failover_max_s = t->failover_max_s;
}

/* The campaign's sums: one line per fault kind, then the checks (docs/reliability.md's row). */
static void tally_print(const tally_t *t, uint64_t seed)
{
    printf("\n== chaos campaign: %d rounds from seed %" PRIu64 ", %d failed ==\n", t->rounds, seed,
           t->failed);
    printf("faults %d:", t->n_faults);
    for (int k = 0; k < F_KINDS; k++)
        printf(" %s %d%s", fault_name[k], t->faults[k], k + 1 < F_KINDS ? "," : "\n");
    printf("primary overlaps %d (frozen tails excused %d, longest %.0f ms after thaw)\n",
           t->overlaps, t->tails, (double)t->longest_tail_ns / 1e6);
    printf("keys linearizable %d, not %d, inconclusive %d; lost acknowledged writes %d; stale "
           "fenced writes acked %d\n",
           t->lin_ok, t->lin_bad, t->lin_unknown, t->lost, t->stale_fenced);
    printf("liveness after heal %.2f-%.2f s, failed in %d rounds\n", t->live_min_s, t->live_max_s,
           t->live_failed);
    printf("electd exits: %d crashes, %d refused starts, %d unclean stops, %d sanitizer reports\n",
           t->crashes, t->refused, t->unclean, t->sanitizer);
    printf("primaries %zu, failovers %zu (max %.2f s)\n", t->primaries, t->failovers,
           t->failover_max_s);
}

/* --faults a,b,c: only these kinds (names as in the table). */
static int parse_faults(const char *list, unsigned *allowed)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", list);
    *allowed = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        int k = 0;
        while (k < F_KINDS && strcmp(fault_name[k], t) != 0)
            k++;
        if (k == F_KINDS)
            return -1;
        *allowed |= 1u << k;
    }
    return *allowed ? 0 : -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: chaos [--seed N] [--nodes 3|5] [--duration SECONDS] [--rounds N]\n"
               "             [--clients N] [--faults KIND,...] [--peer-tls] [--hooks]\n"
               "             [--elections N] [--proxy] [--keep]\n"
               "--hooks: the elections run on-start/on-stop hooks instead of a supervised\n"
               "workload; --elections N: N named elections (e0...; at most 16) beside the\n"
               "default one, each checked on its own.\n"
               "Fault kinds: isolate-leader split one-way-drop flapping-link kill-9-restart\n"
               "             pause-electd pause-electd+workload disk-full wipe-data-restart\n"
               "Each round starts a fresh cluster; round k uses seed N+k. A round lasts at most\n"
               "900 s (the event file and the history are sized for that): use rounds.\n");
}

int main(int argc, char **argv)
{
    uint64_t seed = 1;
    int nodes = 3, duration = 40, rounds = 1, n_clients = 4;
    unsigned allowed = (1u << F_KINDS) - 1;
    bool keep = false, force_proxy = false;
    static const struct option opts[] = {{"seed", required_argument, NULL, 's'},
                                         {"nodes", required_argument, NULL, 'n'},
                                         {"duration", required_argument, NULL, 'd'},
                                         {"rounds", required_argument, NULL, 'r'},
                                         {"clients", required_argument, NULL, 'c'},
                                         {"proxy", no_argument, NULL, 'p'},
                                         {"keep", no_argument, NULL, 'k'},
                                         {"faults", required_argument, NULL, 'f'},
                                         {"peer-tls", no_argument, NULL, 't'},
                                         {"hooks", no_argument, NULL, 'o'},
                                         {"elections", required_argument, NULL, 'e'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    bool peer_tls = false, hooks = false;
    int n_elections = 0, o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 's':
            seed = strtoull(optarg, NULL, 10);
            break;
        case 'n':
            nodes = atoi(optarg);
            break;
        case 'd':
            duration = atoi(optarg);
            break;
        case 'r':
            rounds = atoi(optarg);
            break;
        case 'c':
            n_clients = atoi(optarg);
            break;
        case 'p':
            force_proxy = true;
            break;
        case 'k':
            keep = true;
            break;
        case 't':
            peer_tls = true;
            break;
        case 'o':
            hooks = true;
            break;
        case 'e':
            n_elections = atoi(optarg);
            break;
        case 'f':
            if (parse_faults(optarg, &allowed) != 0) {
                fprintf(stderr, "chaos: unknown fault kind in --faults %s\n", optarg);
                usage(stderr);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if ((nodes != 3 && nodes != 5) || duration < 1 || duration > 900 || rounds < 1 ||
        rounds > 1000 || n_clients < 1 || n_clients > MAX_CLIENTS || n_elections < 0 ||
        n_elections > CHAOS_MAX_ELECTIONS) {
        usage(stderr);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (peer_tls && peer_tls_make(nodes) != 0)
        return 2;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Workloads orphaned by a killed electd are reparented here and reaped. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);

    int worst = 0, failed = 0;
    tally_t sum = {0};
    for (int k = 0; k < rounds && !interrupted; k++) {
        run_t *r = calloc(1, sizeof(*r));
        if (r == NULL)
            return 2;
        r->seed = seed + (uint64_t)k;
        r->n = nodes;
        r->duration_s = duration;
        r->n_clients = n_clients;
        r->keep = keep;
        r->force_proxy = force_proxy;
        r->allowed = allowed;
        r->hooks = hooks;
        r->n_elections = n_elections;
        int rc = run_once(r);
        if (rc == 1)
            failed++;
        if (rc <= 1) /* a round that ran to its checks */
            tally_add(&sum, &r->tally, rc == 1);
        if (rc > worst || (worst == 0 && rc != 0))
            worst = rc;
        free(r);
    }
    if (rounds > 1)
        tally_print(&sum, seed);
    if (tls_dir[0] != '\0' && !keep) {
        const char *rm[] = {"rm", "-rf", "--", tls_dir, NULL};
        chaos_run_cmd(rm, true);
    }
    return failed ? 1 : worst;
}
