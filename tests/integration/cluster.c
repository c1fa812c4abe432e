/* cluster.c — see cluster.h. Every wait is bounded; processes are stopped by PID only. */
#include "cluster.h"

#include "http.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef ELECTD_BIN
#error "ELECTD_BIN must name the electd binary"
#endif

bool itest_pid_gone(int pid, int timeout_ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    do {
        if (kill(pid, 0) != 0 && errno == ESRCH)
            return true;
        usleep(5000);
    } while (itest_now_ms() < deadline);
    return false;
}

uint64_t itest_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A port from [20000, 32768), below the kernel's ephemeral range (32768-60999 by default):
 * a port the kernel hands out for port-0 binds is also what it gives outbound connections,
 * and the tests that run alongside make many, so a port found free by binding port 0 could
 * be taken by someone's connection before electd binds it (a member that cannot listen
 * leaves the cluster without a settled leader). Random per process, checked free on
 * 127.0.0.1 and on the wildcard, never handed out twice by this process. Bounded. */
static int free_port(void)
{
    static uint16_t given[512];
    static size_t n_given;
    static unsigned seed;
    if (seed == 0)
        seed = (unsigned)getpid() ^ (unsigned)itest_now_ms();
    for (int attempt = 0; attempt < 1000; attempt++) {
        uint16_t port = (uint16_t)(20000 + rand_r(&seed) % 12768);
        bool taken = false;
        for (size_t i = 0; i < n_given && !taken; i++)
            taken = given[i] == port;
        uint32_t addrs[2] = {htonl(INADDR_LOOPBACK), htonl(INADDR_ANY)};
        for (int k = 0; k < 2 && !taken; k++) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
            sa.sin_addr.s_addr = addrs[k];
            taken = fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0;
            if (fd >= 0)
                close(fd);
        }
        if (taken)
            continue;
        if (n_given < sizeof(given) / sizeof(given[0]))
            given[n_given++] = port;
        return port;
    }
    fprintf(stderr, "free_port: no free port below the ephemeral range after 1000 tries\n");
    abort();
}

void itest_cluster_init(itest_cluster_t *c, int n, int initial)
{
    memset(c, 0, sizeof(*c));
    c->n = n;
    snprintf(c->root, sizeof(c->root), "/tmp/electd-itest-XXXXXX");
    if (mkdtemp(c->root) == NULL) {
        perror("mkdtemp");
        abort();
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        itest_node_t *nd = &c->nodes[i];
        snprintf(nd->name, sizeof(nd->name), "%c", 'a' + i);
        nd->peer_port = free_port();
        nd->http_port = free_port();
        /* Copies: GCC's -Wrestrict cannot tell fields of *c apart. */
        char root[sizeof(c->root)], name[sizeof(nd->name)];
        memcpy(root, c->root, sizeof(root));
        memcpy(name, nd->name, sizeof(name));
        snprintf(nd->dir, sizeof(nd->dir), "%s/%s", root, name);
        snprintf(nd->log, sizeof(nd->log), "%s/%s.log", root, name);
        nd->joiner = i >= initial;
        if (!nd->joiner)
            off += (size_t)snprintf(c->peers + off, sizeof(c->peers) - off, "%s%s=127.0.0.1:%d",
                                    off ? "," : "", nd->name, nd->peer_port);
    }
}

void itest_cluster_arg(itest_cluster_t *c, const char *arg)
{
    if (c->n_extra < ITEST_MAX_ARGS)
        c->extra[c->n_extra++] = arg;
}

void itest_node_start(itest_cluster_t *c, int i)
{
    itest_node_t *nd = &c->nodes[i];
    char listen_peer[64], listen_http[64];
    snprintf(listen_peer, sizeof(listen_peer), "127.0.0.1:%d", nd->peer_port);
    snprintf(listen_http, sizeof(listen_http), "127.0.0.1:%d", nd->http_port);
    const char *argv[3 * ITEST_MAX_ARGS + 16];
    size_t a = 0;
    argv[a++] = c->bin ? c->bin : ELECTD_BIN;
    argv[a++] = "--name";
    argv[a++] = nd->name;
    argv[a++] = "--peers";
    argv[a++] = c->peers;
    argv[a++] = "--data-dir";
    argv[a++] = nd->dir;
    argv[a++] = "--listen-peer";
    argv[a++] = listen_peer;
    argv[a++] = "--listen-http";
    argv[a++] = listen_http;
    for (size_t k = 0; k < c->n_extra; k++)
        argv[a++] = c->extra[k];
    for (size_t k = 0; k < nd->n_extra; k++)
        argv[a++] = nd->extra[k];
    argv[a] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        abort();
    }
    if (pid == 0) {
        /* a test or benchmark that dies (timeout, ^C) takes its members with it */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(nd->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    nd->pid = pid;
}

void itest_cluster_start(itest_cluster_t *c)
{
    for (int i = 0; i < c->n; i++)
        if (!c->nodes[i].joiner)
            itest_node_start(c, i);
}

/* Waits up to ms for pid to exit; returns its status, or -1. */
static int reap(pid_t pid, int ms)
{
    for (int waited = 0; waited <= ms; waited += 5) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return -1;
        usleep(5000);
    }
    return -1;
}

void itest_node_signal(itest_cluster_t *c, int i, int sig)
{
    itest_node_t *nd = &c->nodes[i];
    if (nd->pid == 0)
        return;
    kill(nd->pid, sig);
    if (sig == SIGKILL || sig == SIGTERM) {
        if (reap(nd->pid, 5000) == -1) {
            kill(nd->pid, SIGKILL);
            reap(nd->pid, 5000);
        }
        nd->pid = 0;
    }
}

/* Appends pid's descendants (children of each of its threads, recursively) to out. */
static size_t descendants(int pid, int *out, size_t n, size_t cap)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char cpath[320];
        snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", pid, e->d_name);
        FILE *f = fopen(cpath, "r");
        int child;
        while (f != NULL && n < cap && fscanf(f, "%d", &child) == 1) {
            out[n++] = child;
            n = descendants(child, out, n, cap);
        }
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return n;
}

int itest_node_kill_host(itest_cluster_t *c, int i)
{
    int all[64];
    size_t n = c->nodes[i].pid ? descendants(c->nodes[i].pid, all, 0, 64) : 0;
    for (size_t k = 0; k < n; k++)
        kill(all[k], SIGKILL);
    itest_node_signal(c, i, SIGKILL);
    return (int)n;
}

int itest_node_stop(itest_cluster_t *c, int i)
{
    itest_node_t *nd = &c->nodes[i];
    if (nd->pid == 0)
        return -1;
    kill(nd->pid, SIGTERM);
    int status = reap(nd->pid, 8000);
    if (status == -1) {
        kill(nd->pid, SIGKILL);
        reap(nd->pid, 5000);
    }
    nd->pid = 0;
    return status;
}

static void rm_rf(const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", path, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        reap(pid, 10000);
}

void itest_node_wipe(itest_cluster_t *c, int i)
{
    rm_rf(c->nodes[i].dir);
}

void itest_cluster_destroy(itest_cluster_t *c)
{
    for (int i = 0; i < c->n; i++)
        if (c->nodes[i].pid)
            kill(c->nodes[i].pid, SIGKILL);
    for (int i = 0; i < c->n; i++)
        if (c->nodes[i].pid) {
            reap(c->nodes[i].pid, 5000);
            c->nodes[i].pid = 0;
        }
    if (getenv("ITEST_KEEP") == NULL)
        rm_rf(c->root);
    else
        fprintf(stderr, "itest: kept %s\n", c->root);
}

/* ---- HTTP ------------------------------------------------------------------------------- */

static int io_all(int fd, bool writing, char *buf, size_t len, int timeout_ms)
{
    size_t done = 0;
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    while (done < len) {
        struct pollfd p = {.fd = fd, .events = writing ? POLLOUT : POLLIN};
        int left = (int)(deadline - itest_now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return -1;
        ssize_t n = writing ? write(fd, buf + done, len - done) : read(fd, buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return writing ? -1 : (int)done;
        done += (size_t)n;
    }
    return (int)done;
}

int itest_http(int port, const char *method, const char *path, const char *body, char *out,
               size_t cap)
{
    return itest_http_h(port, method, path, NULL, body, out, cap);
}

int itest_http_h(int port, const char *method, const char *path, const char *header,
                 const char *body, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    char req[8192];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "%s%sContent-Length: %zu\r\n\r\n",
                     method, path, header ? header : "", header ? "\r\n" : "", blen);
    /* The body goes separately: it may be larger than the header buffer. */
    if (n < 0 || (size_t)n >= sizeof(req) || io_all(fd, true, req, (size_t)n, 3000) < 0 ||
        (blen > 0 && io_all(fd, true, (char *)body, blen, 3000) < 0)) {
        close(fd);
        return -1;
    }
    static char resp[1 << 16];
    int got = io_all(fd, false, resp, sizeof(resp) - 1, 5000);
    close(fd);
    if (got <= 0)
        return -1;
    http_response_t r;
    http_response_open(&r, 0, 0);
    int rc = http_response_feed(&r, resp, (size_t)got);
    if (rc == 0)
        rc = http_response_finish(&r) == 0 ? 1 : -1;
    int status = rc == 1 ? r.status : -1;
    if (status > 0 && out != NULL && cap > 0)
        snprintf(out, cap, "%s", http_response_body(&r, NULL));
    http_response_close(&r);
    return status;
}

bool itest_status(itest_cluster_t *c, int i, itest_status_t *st)
{
    memset(st, 0, sizeof(*st));
    if (c->nodes[i].pid == 0)
        return false;
    char body[1 << 15];
    if (itest_http(c->nodes[i].http_port, "GET", "/v1/status", NULL, body, sizeof(body)) != 200)
        return false;
    cJSON *o = cJSON_Parse(body);
    if (o == NULL)
        return false;
    const cJSON *role = cJSON_GetObjectItem(o, "role");
    const cJSON *leader = cJSON_GetObjectItem(o, "leader");
    const cJSON *lname = leader ? cJSON_GetObjectItem(leader, "name") : NULL;
    snprintf(st->role, sizeof(st->role), "%s", cJSON_IsString(role) ? role->valuestring : "");
    snprintf(st->leader, sizeof(st->leader), "%s", cJSON_IsString(lname) ? lname->valuestring : "");
    st->term = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "term"));
    st->commit = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "commit_index"));
    st->applied = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "applied_index"));
    st->last_index = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "last_index"));
    const cJSON *members = cJSON_GetObjectItem(o, "members");
    const cJSON *m;
    cJSON_ArrayForEach(m, members)
    {
        st->members++;
        if (cJSON_IsTrue(cJSON_GetObjectItem(m, "voter")))
            st->voters++;
    }
    cJSON_Delete(o);
    return true;
}

int itest_wait_leader(itest_cluster_t *c, int timeout_ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    do {
        int leader = -1, running = 0;
        bool agree = true;
        char name[16] = "";
        for (int i = 0; i < c->n && agree; i++) {
            if (c->nodes[i].pid == 0)
                continue;
            running++;
            itest_status_t st;
            if (!itest_status(c, i, &st) || st.leader[0] == '\0') {
                agree = false;
                break;
            }
            if (name[0] == '\0')
                snprintf(name, sizeof(name), "%s", st.leader);
            else if (strcmp(name, st.leader) != 0)
                agree = false;
            if (strcmp(st.role, "leader") == 0) {
                if (leader != -1)
                    agree = false; /* two nodes say they lead: not settled (or a bug) */
                leader = i;
            }
        }
        if (agree && running > 0 && leader >= 0 && strcmp(c->nodes[leader].name, name) == 0)
            return leader;
        usleep(20000);
    } while (itest_now_ms() < deadline);
    return -1;
}

bool itest_wait_all(itest_cluster_t *c, int timeout_ms,
                    bool (*cond_fn)(itest_cluster_t *c, int i, void *ud), void *ud)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    do {
        bool all = true;
        for (int i = 0; i < c->n && all; i++)
            if (c->nodes[i].pid != 0 && !cond_fn(c, i, ud))
                all = false;
        if (all)
            return true;
        usleep(20000);
    } while (itest_now_ms() < deadline);
    return false;
}

/* Scans node i's log for needle: *first gets the 0-based line of the first match (-1 when
 * none); returns the number of matching lines. */
static int log_scan(itest_cluster_t *c, int i, const char *needle, int *first)
{
    *first = -1;
    FILE *f = fopen(c->nodes[i].log, "r");
    if (f == NULL)
        return 0;
    char line[8192];
    int count = 0;
    for (int n = 0; fgets(line, sizeof(line), f); n++)
        if (strstr(line, needle) && count++ == 0)
            *first = n;
    fclose(f);
    return count;
}

int itest_log_count(itest_cluster_t *c, int i, const char *needle)
{
    int first;
    return log_scan(c, i, needle, &first);
}

int itest_log_find(itest_cluster_t *c, int i, const char *needle)
{
    int first;
    log_scan(c, i, needle, &first);
    return first;
}

long itest_metric(itest_cluster_t *c, int i, const char *name)
{
    static char body[1 << 16];
    if (itest_http(c->nodes[i].http_port, "GET", "/metrics", NULL, body, sizeof(body)) != 200)
        return -1;
    char key[128];
    snprintf(key, sizeof(key), "\n%s ", name);
    const char *p = strstr(body, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

int itest_node_index(const itest_cluster_t *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->nodes[i].name, name) == 0)
            return i;
    return -1;
}

bool itest_peer_certs(const char *script, char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/electd-peer-certs-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return false;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "sh '%s' '%s' >/dev/null 2>&1", script, dir);
    return system(cmd) == 0;
}

int itest_fs_fill(const char *dir, uint64_t free_left)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/filler", dir);
    struct statvfs vfs;
    if (statvfs(dir, &vfs) != 0)
        return errno;
    uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    if (avail <= 2 * free_left)
        return EFBIG;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return errno;
    static char block[1 << 16];
    int rc = 0;
    for (uint64_t left = avail - free_left; left > 0 && rc == 0;) {
        size_t n = left < sizeof(block) ? (size_t)left : sizeof(block);
        ssize_t w = write(fd, block, n);
        if (w <= 0)
            rc = w < 0 ? errno : ENOSPC;
        else
            left -= (uint64_t)w;
    }
    close(fd);
    return rc;
}

long itest_proc_status(int pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, field, strlen(field)) == 0)
            v = strtol(line + strlen(field), NULL, 10);
    if (f)
        fclose(f);
    return v;
}

int itest_member_remove(itest_cluster_t *c, int via, const char *name, char *out, size_t cap)
{
    char path[64];
    snprintf(path, sizeof(path), "/v1/members/%s", name);
    int rc = -1;
    for (int tries = 0; tries < 50; tries++) {
        rc = itest_http(c->nodes[via].http_port, "DELETE", path, NULL, out, cap);
        if (rc != 409)
            break;
        usleep(50000); /* a promotion or another change may still be settling */
    }
    return rc;
}

void itest_cluster_stop_all(itest_cluster_t *c)
{
    for (int i = 0; i < c->n; i++)
        if (c->nodes[i].pid)
            itest_node_stop(c, i);
}
