/* test_newcomer.c — what a newcomer meets first, checked against the real binary: `electd
 * --help` names every client subcommand; the workload and its hooks get ELECTD_NODE_NAME and
 * ELECTD_LEADER_NAME as configuration.md says; the README's loopback cluster runs as pasted,
 * its bare client commands reaching the client's default address (run in a network namespace
 * of its own, so its fixed ports meet nothing else; needs root). Issue 21 item 11. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"

#define OUT_CAP         65536
#define README_LIMIT_MS 30000 /* the README's cluster must be done by then */

static itest_cluster_t C;
static bool started;

static void fini(void)
{
    if (started)
        itest_cluster_destroy(&C);
    started = false;
}

TestSuite(newcomer, .fini = fini, .timeout = 120);

/* Runs cmd through the shell; its stdout (NUL-terminated, truncated) into out; the exit code. */
static int run_shell(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "%s", cmd);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The line of text that starts with prefix (leading spaces skipped), into line; false if none. */
static bool line_starting(const char *text, const char *prefix, char *line, size_t cap)
{
    for (const char *l = text; l != NULL && *l;) {
        const char *eol = strchr(l, '\n');
        size_t len = eol ? (size_t)(eol - l) : strlen(l);
        const char *s = l;
        while (s < l + len && *s == ' ')
            s++;
        if (strncmp(s, prefix, strlen(prefix)) == 0) {
            snprintf(line, cap, "%.*s", (int)(len - (size_t)(s - l)), s);
            return true;
        }
        l = eol ? eol + 1 : NULL;
    }
    return false;
}

/* `electd --help` names the client in its usage: every subcommand that the client's own usage
 * (`electd help`) lists must be in that line. */
Test(newcomer, help_usage_lists_every_client_subcommand)
{
    static char daemon[OUT_CAP], client[OUT_CAP];
    cr_assert_eq(run_shell(ELECTD_BIN " --help", daemon, sizeof(daemon)), 0);
    cr_assert_eq(run_shell(ELECTD_BIN " help", client, sizeof(client)), 0);
    char usage[512];
    cr_assert(line_starting(daemon, "electd status|", usage, sizeof(usage)),
              "--help has no usage line for the client:\n%s", daemon);
    const char *words = usage + strlen("electd ");
    size_t wlen = strcspn(words, " ");
    int listed = 0;
    for (const char *l = client; l != NULL && *l;) {
        const char *eol = strchr(l, '\n');
        const char *cmd = strstr(l, "electd ");
        if (cmd != NULL && (eol == NULL || cmd < eol) && cmd == l + 7 /* "usage: " or 7 spaces */) {
            cmd += strlen("electd ");
            char sub[32];
            snprintf(sub, sizeof(sub), "%.*s", (int)strcspn(cmd, " \n"), cmd);
            char want[40];
            snprintf(want, sizeof(want), "|%s|", sub);
            char have[600];
            snprintf(have, sizeof(have), "|%.*s|", (int)wlen, words);
            cr_assert(strstr(have, want) != NULL, "--help's usage \"%s\" lacks \"%s\"", usage, sub);
            listed++;
        }
        l = eol ? eol + 1 : NULL;
    }
    cr_assert_geq(listed, 8, "the client's usage lines were not found:\n%s", client);
    cr_assert(strstr(usage, "|elections|") != NULL && strstr(usage, "|backup|") != NULL, "%s",
              usage);
}

/* The lines of path (NUL-terminated) into buf; "" when it does not exist yet. */
static void slurp(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void write_script(const char *path, const char *body)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    cr_assert_eq(chmod(path, 0755), 0);
}

/* Polls the file until it holds needle, at most timeout_ms. */
static bool wait_file_has(const char *path, const char *needle, int timeout_ms)
{
    static char buf[OUT_CAP];
    uint64_t end = itest_now_ms() + (uint64_t)timeout_ms;
    do {
        slurp(path, buf, sizeof(buf));
        if (strstr(buf, needle) != NULL)
            return true;
        usleep(20000);
    } while (itest_now_ms() < end);
    cr_log_warn("%s holds:\n%s", path, buf);
    return false;
}

/* configuration.md: workloads and hooks receive ELECTD_NODE_NAME (this member's --name) and
 * ELECTD_LEADER_NAME (the leader's name), beside the old _ID spellings that carry the same. */
Test(newcomer, workload_and_hooks_get_node_and_leader_names)
{
    itest_cluster_init(&C, 3, 3);
    started = true;
    static char env_file[400], work[400], hook[400], exec_arg[450], change_arg[450];
    snprintf(env_file, sizeof(env_file), "%s/env.log", C.root);
    snprintf(work, sizeof(work), "%s/work.sh", C.root);
    snprintf(hook, sizeof(hook), "%s/hook.sh", C.root);
    char body[1200];
    const char *line = "echo \"$1 node=$ELECTD_NODE_NAME leader=$ELECTD_LEADER_NAME "
                       "node_id=$ELECTD_NODE_ID leader_id=$ELECTD_LEADER_ID .\" >> %s";
    char fmt[600];
    snprintf(fmt, sizeof(fmt), "%s\nexec sleep 600", line);
    snprintf(body, sizeof(body), fmt, env_file);
    write_script(work, body);
    snprintf(body, sizeof(body), line, env_file);
    write_script(hook, body);
    snprintf(exec_arg, sizeof(exec_arg), "--exec=%s workload", work);
    snprintf(change_arg, sizeof(change_arg), "--on-change=%s change", hook);
    itest_cluster_arg(&C, "--heartbeat-interval=50ms");
    itest_cluster_arg(&C, "--election-timeout=500ms");
    itest_cluster_arg(&C, "--stop-timeout=200ms");
    itest_cluster_arg(&C, change_arg);
    itest_cluster_arg(&C, exec_arg);
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    const char *lead = C.nodes[l].name;
    char want[200];
    snprintf(want, sizeof(want), "workload node=%s leader=%s node_id=%s leader_id=%s .", lead, lead,
             lead, lead);
    cr_assert(wait_file_has(env_file, want, 10000), "the workload's environment: no \"%s\"", want);
    for (int i = 0; i < 3; i++) {
        snprintf(want, sizeof(want), "change node=%s leader=%s node_id=%s leader_id=%s .",
                 C.nodes[i].name, lead, C.nodes[i].name, lead);
        cr_assert(wait_file_has(env_file, want, 10000), "on-change's environment: no \"%s\"", want);
    }
}

/* ---- the README's loopback cluster, as pasted ---------------------------------------------- */

/* The ```sh block under the README's heading, into out; false when there is none. */
static bool readme_block(const char *heading, char *out, size_t cap)
{
    static char readme[1 << 18];
    slurp(ELECTD_SOURCE_DIR "/README.md", readme, sizeof(readme));
    const char *h = strstr(readme, heading);
    const char *open = h ? strstr(h, "```sh\n") : NULL;
    const char *close = open ? strstr(open + 6, "```") : NULL;
    if (close == NULL)
        return false;
    snprintf(out, cap, "%.*s", (int)(close - open - 6), open + 6);
    return true;
}

/* Replaces the whole line starting with prefix by repl (a line of its own); false if none. */
static bool replace_line(char *text, size_t cap, const char *prefix, const char *repl)
{
    char *at = text;
    while (at != NULL && strncmp(at, prefix, strlen(prefix)) != 0) {
        at = strchr(at, '\n');
        at = at ? at + 1 : NULL;
    }
    if (at == NULL)
        return false;
    char *eol = strchr(at, '\n');
    static char rest[1 << 16];
    snprintf(rest, sizeof(rest), "%s", eol ? eol + 1 : "");
    snprintf(at, cap - (size_t)(at - text), "%s\n%s", repl, rest);
    return true;
}

/* Replaces every occurrence of from by to in text. */
static void replace_all(char *text, size_t cap, const char *from, const char *to)
{
    static char out[1 << 16];
    size_t n = 0;
    for (const char *p = text; *p && n + strlen(to) + 1 < sizeof(out);) {
        if (strncmp(p, from, strlen(from)) == 0) {
            n += (size_t)snprintf(out + n, sizeof(out) - n, "%s", to);
            p += strlen(from);
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    snprintf(text, cap, "%s", out);
}

/* In the child: a network namespace of its own with its loopback up. */
static int private_loopback(void)
{
    if (unshare(CLONE_NEWNET) != 0)
        return -1;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    int rc = s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0 ? -1 : 0;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (rc == 0)
        rc = ioctl(s, SIOCSIFFLAGS, &ifr);
    if (s >= 0)
        close(s);
    return rc;
}

/* Runs script with sh -e in its own network namespace and process group; stdout and stderr
 * into out; kills the group after README_LIMIT_MS. Returns the exit code, 77 when no
 * namespace could be made. */
static int run_isolated(const char *script, char *out, size_t cap)
{
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        close(pipefd[1]);
        if (private_loopback() != 0) {
            printf("no network namespace: %s\n", strerror(errno));
            _exit(77);
        }
        /* The bare client commands must find the daemon on their own. */
        unsetenv("ELECTD_HTTP");
        unsetenv("ELECTD_HTTP_URL");
        unsetenv("ELECTD_HTTP_TOKEN");
        execl("/bin/sh", "sh", "-e", "-c", script, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    size_t n = 0;
    int status = 0;
    bool done = false;
    uint64_t end = itest_now_ms() + README_LIMIT_MS;
    while (!done && itest_now_ms() < end) {
        ssize_t r = read(pipefd[0], out + n, cap - 1 - n);
        if (r > 0)
            n += (size_t)r;
        done = waitpid(pid, &status, WNOHANG) == pid;
        if (!done && r <= 0)
            usleep(20000);
    }
    if (!done) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    ssize_t r;
    while ((r = read(pipefd[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(pipefd[0]);
    cr_assert(done, "the README's commands did not finish in %d ms:\n%s", README_LIMIT_MS, out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The README's "A three-node cluster on loopback" runs as written (only the binary's path and
 * the /tmp paths are this test's): the bare `electd leader`, `status` and `kv get` reach a
 * member at the client's default address, and the workload's fenced write is there. */
Test(newcomer, readme_loopback_cluster_runs_as_pasted, .timeout = 120)
{
    static char script[1 << 16], out[OUT_CAP], root[64];
    cr_assert(readme_block("## A three-node cluster on loopback", script, sizeof(script)),
              "README.md has no such section with a ```sh block");
    snprintf(root, sizeof(root), "/tmp/electd-itest-readme-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    cr_assert(replace_line(script, sizeof(script), "make build", ":"), "%s", script);
    cr_assert(replace_line(script, sizeof(script), "E=", "E=" ELECTD_BIN), "%s", script);
    char tmp[100];
    snprintf(tmp, sizeof(tmp), "%s/electd-", root);
    replace_all(script, sizeof(script), "/tmp/electd-", tmp);
    int rc = run_isolated(script, out, sizeof(out));
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    if (getenv("ITEST_KEEP") == NULL && system(cmd) != 0)
        cr_log_warn("could not remove %s", root);
    if (rc == 77)
        cr_skip("%s(this test needs root for a network namespace)", out);
    cr_assert_eq(rc, 0, "the README's commands failed:\n%s\n--- as run:\n%s", out, script);
    /* `until $E leader`: "NAME (http 127.0.0.1:7480) term N" from the default address */
    cr_assert(strstr(out, "(http 127.0.0.1:748") != NULL, "%s", out);
    /* `$E status` and the workload's own `kv put`, read back by `kv get` */
    char leader[8] = "";
    const char *lead = strstr(out, " (http 127.0.0.1:748");
    cr_assert(lead != NULL && lead > out);
    const char *start = lead;
    while (start > out && start[-1] != '\n')
        start--;
    snprintf(leader, sizeof(leader), "%.*s", (int)(lead - start), start);
    char want[32];
    snprintf(want, sizeof(want), "\n%s\n", leader);
    cr_assert(strstr(out, want) != NULL, "kv get started-by did not print the leader %s:\n%s",
              leader, out);
}
