/* net.c — the chaos harness's network: namespaces, bridge and drop rules, or the loopback
 * proxy (see net.h). */
#include "net.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h" /* sidecar_config_node_id: how the proxy recognises the dialler */

#define PROXY_BUF_BYTES (64 * 1024)
#define HELLO_ID_OFFSET 14 /* "ELHI", version (2), cluster id (8), then the dialler's id (8) */

/* ---- commands ----------------------------------------------------------------------------- */

int chaos_run_cmd(const char *const *argv, bool quiet)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (quiet) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    for (int i = 0; i < 1000; i++) { /* 10 s */
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (r < 0)
            return -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* ip ARGS... (NULL-terminated); returns the exit status. */
static int ip(bool quiet, ...)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = "ip";
    va_list ap;
    va_start(ap, quiet);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 31)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return chaos_run_cmd(argv, quiet);
}

/* ---- namespace mode ----------------------------------------------------------------------- */

static bool subnet_in_use(int s)
{
    char path[64], needle[32];
    snprintf(needle, sizeof(needle), "10.213.%d.", s);
    snprintf(path, sizeof(path), "/tmp/chaos-addr-%d", (int)getpid());
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0)
            dup2(fd, 1);
        execlp("ip", "ip", "-o", "-4", "addr", "show", (char *)NULL);
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return true;
    FILE *f = fopen(path, "r");
    bool used = true;
    if (f) {
        char line[512];
        used = false;
        while (fgets(line, sizeof(line), f))
            if (strstr(line, needle))
                used = true;
        fclose(f);
    }
    unlink(path);
    return used;
}

static int rule(chaos_net_t *net, int from, int to, bool add)
{
    char port[8];
    snprintf(port, sizeof(port), "%d", CHAOS_PEER_PORT);
    return ip(true, "-n", net->ns[to], "rule", add ? "add" : "del", "pref", "100", "from",
              net->ip[from], "to", net->ip[to], "ipproto", "tcp", "dport", port, "iif", "eth0",
              "blackhole", (const char *)NULL);
}

/* The host's end of member i's veth pair (at most 15 characters). */
static void veth_name(char *buf, size_t cap, int i)
{
    snprintf(buf, cap, "ch%uv%u", (unsigned)(getpid() % 10000000), (unsigned)(i % 100));
}

/* Removes member i's namespace and veth pair, whatever is left of them. The pair goes
 * explicitly: a namespace outlives its name while a process it held (a hook, a shim) is still
 * exiting, and its pair with it. */
static void drop_member_net(const char *ns, int i)
{
    char veth[16];
    veth_name(veth, sizeof(veth), i);
    ip(true, "link", "del", veth, (const char *)NULL); /* both ends, at once */
    ip(true, "netns", "del", ns, (const char *)NULL);
}

static int setup_netns(chaos_net_t *net, char *err, size_t errlen)
{
    int me = (int)getpid();
    net->subnet = -1;
    for (int k = 0; k < 200; k++) {
        int s = 20 + (me + k) % 200;
        if (!subnet_in_use(s)) {
            net->subnet = s;
            break;
        }
    }
    if (net->subnet < 0) {
        snprintf(err, errlen, "no free 10.213.x.0/24 subnet");
        return -1;
    }
    snprintf(net->bridge, sizeof(net->bridge), "chbr%d", me % 10000000);
    char addr[32];
    if (ip(false, "link", "add", net->bridge, "type", "bridge", (const char *)NULL) != 0) {
        snprintf(err, errlen, "cannot create bridge %s (no CAP_NET_ADMIN?)", net->bridge);
        return -1;
    }
    net->up = true;
    /* Bridged frames must not meet the host's own firewall, if it has one. */
    ip(true, "link", "set", net->bridge, "type", "bridge", "nf_call_iptables", "0",
       (const char *)NULL);
    snprintf(addr, sizeof(addr), "10.213.%d.254/24", net->subnet);
    if (ip(false, "addr", "add", addr, "dev", net->bridge, (const char *)NULL) != 0 ||
        ip(false, "link", "set", net->bridge, "up", (const char *)NULL) != 0) {
        snprintf(err, errlen, "cannot configure bridge %s", net->bridge);
        return -1;
    }
    for (int i = 0; i < net->n; i++) {
        char veth[16];
        snprintf(net->ns[i], sizeof(net->ns[i]), "ch%dn%d", me, i);
        veth_name(veth, sizeof(veth), i);
        drop_member_net(net->ns[i], i); /* a previous round's, of this process */
        snprintf(net->ip[i], sizeof(net->ip[i]), "10.213.%d.%d", net->subnet, i + 1);
        snprintf(addr, sizeof(addr), "%s/24", net->ip[i]);
        net->peer_port[i] = net->listen_port[i] = CHAOS_PEER_PORT;
        net->http_port[i] = CHAOS_HTTP_PORT;
        const char *ns = net->ns[i];
        if (ip(false, "netns", "add", ns, (const char *)NULL) != 0 ||
            ip(false, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
               (const char *)NULL) != 0 ||
            ip(false, "link", "set", veth, "master", net->bridge, (const char *)NULL) != 0 ||
            ip(false, "link", "set", veth, "up", (const char *)NULL) != 0 ||
            ip(false, "-n", ns, "addr", "add", addr, "dev", "eth0", (const char *)NULL) != 0 ||
            ip(false, "-n", ns, "link", "set", "eth0", "up", (const char *)NULL) != 0 ||
            ip(false, "-n", ns, "link", "set", "lo", "up", (const char *)NULL) != 0 ||
            /* Our drop rules must come before the local table, which sits at preference 0. */
            ip(false, "-n", ns, "rule", "add", "pref", "1000", "lookup", "local",
               (const char *)NULL) != 0 ||
            ip(false, "-n", ns, "rule", "del", "pref", "0", (const char *)NULL) != 0) {
            snprintf(err, errlen, "cannot set up namespace %s", ns);
            return -1;
        }
    }
    return 0;
}

int chaos_net_enter(const chaos_net_t *net, int i)
{
    if (!net->netns)
        return 0;
    char path[64] = "/run/netns/";
    size_t k = strlen(path);
    for (const char *s = net->ns[i]; *s && k < sizeof(path) - 1; s++)
        path[k++] = *s;
    path[k] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = setns(fd, CLONE_NEWNET);
    close(fd);
    return rc;
}

void chaos_net_reap_stale(void)
{
    DIR *d = opendir("/run/netns");
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            int pid, i;
            char proc[64];
            if (sscanf(e->d_name, "ch%dn%d", &pid, &i) != 2)
                continue;
            snprintf(proc, sizeof(proc), "/proc/%d", pid);
            if (access(proc, F_OK) == 0)
                continue;
            ip(true, "netns", "del", e->d_name, (const char *)NULL);
        }
        closedir(d);
    }
    d = opendir("/sys/class/net");
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            int pid, i;
            char proc[64], name[300];
            if (sscanf(e->d_name, "chbr%d", &pid) != 1 &&
                sscanf(e->d_name, "ch%dv%d", &pid, &i) != 2)
                continue;
            snprintf(proc, sizeof(proc), "/proc/%d", pid);
            snprintf(name, sizeof(name), "%s", e->d_name);
            if (access(proc, F_OK) == 0)
                continue;
            ip(true, "link", "del", name, (const char *)NULL);
        }
        closedir(d);
    }
}

/* ---- proxy mode --------------------------------------------------------------------------- */

struct pipe_dir {
    char buf[PROXY_BUF_BYTES];
    size_t len, off;
};

struct pconn {
    bool used;
    int cfd, sfd; /* the dialler's side, the member's side */
    int to, from; /* member indices; from = -1 until the HELLO names the dialler */
    size_t seen;  /* bytes seen from the dialler (to find the HELLO) */
    uint8_t hello[HELLO_ID_OFFSET + 8];
    struct pipe_dir up, down; /* dialler -> member, member -> dialler */
};

struct chaos_proxy {
    chaos_net_t *net;
    pthread_t thread;
    pthread_mutex_t mu;
    int lfd[CHAOS_MAX_NODES];
    uint64_t id[CHAOS_MAX_NODES];
    struct pconn c[CHAOS_PROXY_MAX_CONNS];
    int wake[2];
    bool stop;
    unsigned long refused;
};

/* A loopback listener on *port, or on a port the kernel picks when it is 0 (stored back). */
static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* A port for a member to bind later (its HTTP or peer listener, again at each restart): below
 * the kernel's ephemeral range, where no outgoing connection takes it meanwhile (one of another
 * campaign's clients did, and that member could never start again). Free when chosen. */
static int free_port(void)
{
    int lo = 32768; /* the range's low end; its default when it cannot be read */
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f != NULL) {
        if (fscanf(f, "%d", &lo) != 1)
            lo = 32768;
        fclose(f);
    }
    int base = lo > 12000 ? lo - 10000 : 1024, span = lo > base ? lo - base : 1;
    static unsigned seed; /* apart from other campaigns' picks; not the schedule's seed */
    if (seed == 0)
        seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
    for (int k = 0; k < 200; k++) {
        int port = base + (int)((unsigned)rand_r(&seed) % (unsigned)span);
        int fd = listen_any(&port);
        if (fd >= 0) {
            close(fd);
            return port;
        }
    }
    return -1;
}

static void pconn_close(struct pconn *c)
{
    if (!c->used)
        return;
    close(c->cfd);
    close(c->sfd);
    c->used = false;
}

static void proxy_accept(struct chaos_proxy *p, int to)
{
    int cfd = accept4(p->lfd[to], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0)
        return;
    struct pconn *c = NULL;
    for (int i = 0; i < CHAOS_PROXY_MAX_CONNS && c == NULL; i++)
        if (!p->c[i].used)
            c = &p->c[i];
    int sfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)p->net->listen_port[to])};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* A loopback connect completes or fails at once; a member that is down refuses it. */
    if (c == NULL || sfd < 0 || connect(sfd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(cfd);
        if (sfd >= 0)
            close(sfd);
        return;
    }
    fcntl(sfd, F_SETFL, fcntl(sfd, F_GETFL) | O_NONBLOCK);
    memset(c, 0, sizeof(*c));
    c->used = true;
    c->cfd = cfd;
    c->sfd = sfd;
    c->to = to;
    c->from = -1;
}

/* Moves bytes src -> dst through d. Returns false when the connection must close. */
static bool pump(struct chaos_proxy *p, struct pconn *c, int src, int dst, struct pipe_dir *d,
                 bool up, short rev_src, short rev_dst)
{
    if (d->len == 0 && (rev_src & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t r = read(src, d->buf, sizeof(d->buf));
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            return false;
        if (r > 0) {
            d->len = (size_t)r;
            d->off = 0;
            if (up && c->from < 0) {
                for (size_t i = 0; i < (size_t)r && c->seen < sizeof(c->hello); i++)
                    c->hello[c->seen++] = (uint8_t)d->buf[i];
                if (c->seen == sizeof(c->hello)) {
                    uint64_t id = 0;
                    for (int i = 7; i >= 0; i--)
                        id = id << 8 | c->hello[HELLO_ID_OFFSET + i];
                    for (int i = 0; i < p->net->n; i++)
                        if (p->id[i] == id)
                            c->from = i;
                }
            }
        }
    }
    (void)rev_dst;
    while (d->off < d->len) {
        ssize_t w = write(dst, d->buf + d->off, d->len - d->off);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (w <= 0)
            return false;
        d->off += (size_t)w;
    }
    if (d->off == d->len)
        d->len = d->off = 0;
    return true;
}

static void *proxy_main(void *arg)
{
    struct chaos_proxy *p = arg;
    struct pollfd pf[1 + CHAOS_MAX_NODES + 2 * CHAOS_PROXY_MAX_CONNS];
    int idx[CHAOS_PROXY_MAX_CONNS];
    for (;;) {
        pthread_mutex_lock(&p->mu);
        bool stop = p->stop;
        for (int i = 0; i < CHAOS_PROXY_MAX_CONNS; i++) {
            struct pconn *c = &p->c[i];
            if (c->used && c->from >= 0 && p->net->cut[c->from][c->to]) {
                pconn_close(c);
                p->refused++;
            }
        }
        pthread_mutex_unlock(&p->mu);
        if (stop)
            break;
        int n = 0;
        pf[n++] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
        for (int i = 0; i < p->net->n; i++)
            pf[n++] = (struct pollfd){.fd = p->lfd[i], .events = POLLIN};
        for (int i = 0; i < CHAOS_PROXY_MAX_CONNS; i++) {
            struct pconn *c = &p->c[i];
            idx[i] = -1;
            if (!c->used)
                continue;
            idx[i] = n;
            pf[n++] = (struct pollfd){
                .fd = c->cfd,
                .events = (short)((c->up.len ? 0 : POLLIN) | (c->down.len ? POLLOUT : 0))};
            pf[n++] = (struct pollfd){
                .fd = c->sfd,
                .events = (short)((c->down.len ? 0 : POLLIN) | (c->up.len ? POLLOUT : 0))};
        }
        if (poll(pf, (nfds_t)n, 100) < 0 && errno != EINTR)
            break;
        if (pf[0].revents & POLLIN) {
            char b[64];
            (void)!read(p->wake[0], b, sizeof(b));
        }
        pthread_mutex_lock(&p->mu);
        for (int i = 0; i < p->net->n; i++)
            if (pf[1 + i].revents & POLLIN)
                proxy_accept(p, i);
        for (int i = 0; i < CHAOS_PROXY_MAX_CONNS; i++) {
            struct pconn *c = &p->c[i];
            if (!c->used || idx[i] < 0)
                continue;
            short rc = pf[idx[i]].revents, rs = pf[idx[i] + 1].revents;
            bool ok = pump(p, c, c->cfd, c->sfd, &c->up, true, rc, rs) &&
                      pump(p, c, c->sfd, c->cfd, &c->down, false, rs, rc);
            if (ok && c->from >= 0 && p->net->cut[c->from][c->to]) {
                ok = false;
                p->refused++;
            }
            if (!ok)
                pconn_close(c);
        }
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

static int setup_proxy(chaos_net_t *net, char *err, size_t errlen)
{
    struct chaos_proxy *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p->net = net;
    pthread_mutex_init(&p->mu, NULL);
    for (int i = 0; i < CHAOS_MAX_NODES; i++)
        p->lfd[i] = -1;
    p->wake[0] = p->wake[1] = -1;
    net->proxy = p;
    if (pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    static const char *names[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < net->n; i++) {
        snprintf(net->ip[i], sizeof(net->ip[i]), "127.0.0.1");
        net->peer_port[i] = 0;
        p->lfd[i] = listen_any(&net->peer_port[i]);
        net->listen_port[i] = free_port();
        net->http_port[i] = free_port();
        p->id[i] = sidecar_config_node_id(names[i]);
        if (p->lfd[i] < 0 || net->listen_port[i] < 0 || net->http_port[i] < 0) {
            snprintf(err, errlen, "no free loopback ports");
            return -1;
        }
    }
    if (pthread_create(&p->thread, NULL, proxy_main, p) != 0) {
        snprintf(err, errlen, "cannot start the proxy thread");
        return -1;
    }
    net->up = true;
    return 0;
}

/* ---- both --------------------------------------------------------------------------------- */

int chaos_net_setup(chaos_net_t *net, int n, bool force_proxy, char *err, size_t errlen)
{
    memset(net, 0, sizeof(*net));
    if (n < 1 || n > CHAOS_MAX_NODES) {
        snprintf(err, errlen, "1..%d members", CHAOS_MAX_NODES);
        return -1;
    }
    net->n = n;
    net->netns = !force_proxy && geteuid() == 0;
    int rc = net->netns ? setup_netns(net, err, errlen) : setup_proxy(net, err, errlen);
    if (rc != 0)
        chaos_net_teardown(net);
    return rc;
}

int chaos_net_cut(chaos_net_t *net, int from, int to, bool cut)
{
    if (from == to || net->cut[from][to] == cut)
        return 0;
    if (net->netns) {
        if (rule(net, from, to, cut) != 0)
            return -1;
        net->cut[from][to] = cut;
        return 0;
    }
    struct chaos_proxy *p = net->proxy;
    pthread_mutex_lock(&p->mu);
    net->cut[from][to] = cut;
    pthread_mutex_unlock(&p->mu);
    (void)!write(p->wake[1], "x", 1);
    return 0;
}

void chaos_net_heal_all(chaos_net_t *net)
{
    for (int a = 0; a < net->n; a++)
        for (int b = 0; b < net->n; b++)
            if (net->cut[a][b])
                chaos_net_cut(net, a, b, false);
}

unsigned long chaos_net_proxy_refused(const chaos_net_t *net)
{
    if (net->proxy == NULL)
        return 0;
    pthread_mutex_lock(&net->proxy->mu);
    unsigned long r = net->proxy->refused;
    pthread_mutex_unlock(&net->proxy->mu);
    return r;
}

void chaos_net_teardown(chaos_net_t *net)
{
    if (net->netns) {
        for (int i = 0; i < net->n; i++)
            if (net->ns[i][0] != '\0') {
                drop_member_net(net->ns[i], i);
                net->ns[i][0] = '\0';
            }
        if (net->bridge[0] != '\0') {
            ip(true, "link", "del", net->bridge, (const char *)NULL);
            net->bridge[0] = '\0';
        }
    }
    struct chaos_proxy *p = net->proxy;
    if (p != NULL) {
        if (net->up) {
            pthread_mutex_lock(&p->mu);
            p->stop = true;
            pthread_mutex_unlock(&p->mu);
            (void)!write(p->wake[1], "x", 1);
            pthread_join(p->thread, NULL);
        }
        for (int i = 0; i < CHAOS_PROXY_MAX_CONNS; i++)
            pconn_close(&p->c[i]);
        for (int i = 0; i < CHAOS_MAX_NODES; i++)
            if (p->lfd[i] >= 0)
                close(p->lfd[i]);
        if (p->wake[0] >= 0) {
            close(p->wake[0]);
            close(p->wake[1]);
        }
        pthread_mutex_destroy(&p->mu);
        free(p);
        net->proxy = NULL;
    }
    net->up = false;
}
