/* bench_watch.c — KV watches under load on a real 3-member electd group on loopback: W
 * server-sent-event streams on one member (the leader) watching a prefix while a writer sends
 * it R writes a second; prints a table (median, p99, min, max over runs) of the delivery
 * latency (a write sent -> its event read by a watcher, over every event of every watcher), the
 * write latency (sent -> acknowledged), the write rate reached, the events delivered and the
 * member's RSS. Not a test: it never fails on time.
 *
 * One client process does everything with epoll: the writer keeps up to WRITERS keep-alive
 * connections with one PUT in flight each, sending whenever a write is due (each value is the
 * monotonic time it was sent, in ns, which the watchers read back).
 *
 * Usage: bench_watch [--runs N] [--watchers W] [--rate R] [--seconds S]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"

#define WRITERS    128
#define BUCKET_US  10
#define BUCKETS    400000 /* 10 µs buckets up to 4 s; later goes into the last */
#define READ_BYTES 65536

typedef struct hist {
    uint64_t *b;
    uint64_t n;
} hist_t;

typedef struct conn {
    int fd;
    bool watcher;
    bool busy;        /* writer: a PUT is in flight */
    uint64_t sent_ns; /* writer: when it was sent */
    char buf[8192];   /* unparsed bytes */
    size_t len;
    bool head_done; /* watcher: the response head has been read */
} conn_t;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void hist_add(hist_t *h, uint64_t ns)
{
    uint64_t i = ns / 1000 / BUCKET_US;
    h->b[i < BUCKETS ? i : BUCKETS - 1]++;
    h->n++;
}

/* The q-quantile in ms. */
static double hist_q(const hist_t *h, double q)
{
    uint64_t want = (uint64_t)(q * (double)(h->n ? h->n - 1 : 0)), seen = 0;
    for (uint64_t i = 0; i < BUCKETS; i++) {
        seen += h->b[i];
        if (seen > want)
            return (double)((i + 1) * BUCKET_US) / 1000.0;
    }
    return 0;
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static bool send_all(int fd, const char *s, size_t n)
{
    size_t done = 0;
    for (int tries = 0; done < n && tries < 1000; tries++) {
        ssize_t w = write(fd, s + done, n - done);
        if (w > 0)
            done += (size_t)w;
        else if (w < 0 && errno != EAGAIN)
            return false;
    }
    return done == n;
}

/* Events in a watcher's buffer: each put's value is its write's send time. */
static void watcher_parse(conn_t *c, hist_t *lat, uint64_t now)
{
    size_t off = 0;
    if (!c->head_done) {
        char *e = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (e == NULL)
            return;
        c->head_done = true;
        off = (size_t)(e + 4 - c->buf);
    }
    for (;;) {
        char *e = memmem(c->buf + off, c->len - off, "\n\n", 2);
        if (e == NULL)
            break;
        *e = 0;
        char *v = strstr(c->buf + off, "\"value\":\"");
        if (v != NULL) {
            uint64_t t = strtoull(v + 9, NULL, 10);
            if (t != 0 && t <= now)
                hist_add(lat, now - t);
        }
        off = (size_t)(e + 2 - c->buf);
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
}

static uint64_t refused;        /* writes answered with anything but 200 */
static char first_refusal[512]; /* the first such answer */

/* A writer's answers: head, then Content-Length bytes of body; only a 200 counts. */
static void writer_parse(conn_t *c, hist_t *wlat, uint64_t now)
{
    char *e = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (e == NULL)
        return;
    *e = 0;
    char *cl = strcasestr(c->buf, "Content-Length:");
    size_t body = cl ? strtoul(cl + 15, NULL, 10) : 0, head = (size_t)(e + 4 - c->buf);
    if (c->len < head + body) {
        *e = '\r';
        return;
    }
    if (strncmp(c->buf, "HTTP/1.1 200", 12) == 0) {
        hist_add(wlat, now - c->sent_ns);
    } else {
        if (refused++ == 0)
            snprintf(first_refusal, sizeof(first_refusal), "%.12s %.200s", c->buf + 9, e + 4);
    }
    c->busy = false;
    memmove(c->buf, c->buf + head + body, c->len - head - body);
    c->len -= head + body;
}

typedef struct result {
    double p50, p99, wp50, wp99, rate, acked, events_per_watcher, rss_idle_mib, rss_peak_mib;
    long cutoffs;
} result_t;

static bool run_once(int watchers, int rate, int seconds, result_t *res)
{
    itest_cluster_t c;
    itest_cluster_init(&c, 3, 3);
    char mw[64], mc[64];
    snprintf(mw, sizeof(mw), "--max-watchers=%d", watchers + 16);
    snprintf(mc, sizeof(mc), "--http-max-connections=%d", watchers + 256);
    itest_cluster_arg(&c, mw);
    itest_cluster_arg(&c, mc);
    itest_cluster_start(&c);
    int l = itest_wait_leader(&c, 15000);
    bool ok = false;
    conn_t *conns = calloc((size_t)(watchers + WRITERS), sizeof(conn_t));
    hist_t lat = {.b = calloc(BUCKETS, sizeof(uint64_t))}, wlat = {.b = calloc(BUCKETS, 8)};
    int ep = epoll_create1(0);
    if (l < 0 || conns == NULL || lat.b == NULL || wlat.b == NULL || ep < 0)
        goto out;
    int port = c.nodes[l].http_port, pid = c.nodes[l].pid;
    res->rss_idle_mib = (double)itest_proc_status(pid, "VmRSS:") / 1024.0;
    int n = watchers + WRITERS;
    for (int i = 0; i < n; i++) {
        conn_t *x = &conns[i];
        x->watcher = i < watchers;
        x->fd = connect_port(port);
        if (x->fd < 0)
            goto out;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = x};
        epoll_ctl(ep, EPOLL_CTL_ADD, x->fd, &ev);
        static const char req[] = "GET /v1/kv?prefix=bench/&watch=true HTTP/1.1\r\nHost: x\r\n\r\n";
        if (x->watcher && !send_all(x->fd, req, sizeof(req) - 1))
            goto out;
    }
    usleep(500000); /* every stream open before the first write */
    uint64_t t0 = mono_ns(), end = t0 + (uint64_t)seconds * 1000000000ull;
    uint64_t drain = end + 3000000000ull, period = 1000000000ull / (uint64_t)rate;
    uint64_t due = t0, sent = 0, next_rss = t0;
    long peak = 0;
    struct epoll_event evs[256];
    char rb[READ_BYTES];
    for (uint64_t now = t0; now < drain; now = mono_ns()) {
        /* writes due now, each on an idle writer (none idle: the write waits) */
        for (int w = 0; now < end && due <= now && w < WRITERS; w++) {
            conn_t *x = &conns[watchers + (int)(sent % WRITERS)];
            if (x->busy)
                break;
            char req[256];
            int len =
                snprintf(req, sizeof(req),
                         "PUT /v1/kv/bench/k%d HTTP/1.1\r\nHost: x\r\nContent-Length: "
                         "%d\r\n\r\n%llu",
                         (int)(sent % 100), snprintf(NULL, 0, "%llu", (unsigned long long)now),
                         (unsigned long long)now);
            x->busy = true;
            x->sent_ns = now;
            if (!send_all(x->fd, req, (size_t)len))
                goto out;
            sent++;
            due += period;
        }
        if (now >= next_rss) {
            long r = itest_proc_status(pid, "VmRSS:");
            peak = r > peak ? r : peak;
            next_rss = now + 200000000ull;
        }
        int k = epoll_wait(ep, evs, 256, 1);
        uint64_t at = mono_ns();
        for (int i = 0; i < k; i++) {
            conn_t *x = evs[i].data.ptr;
            ssize_t r = read(x->fd, rb, sizeof(rb));
            if (r <= 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
                continue;
            }
            /* process in buffer-sized pieces */
            for (ssize_t o = 0; o < r;) {
                size_t room = sizeof(x->buf) - 1 - x->len, take = (size_t)(r - o);
                take = take < room ? take : room;
                memcpy(x->buf + x->len, rb + o, take);
                x->len += take;
                x->buf[x->len] = 0;
                o += (ssize_t)take;
                if (x->watcher)
                    watcher_parse(x, &lat, at);
                else
                    writer_parse(x, &wlat, at);
                if (take == 0)
                    break;
            }
        }
    }
    res->p50 = hist_q(&lat, 0.5);
    res->p99 = hist_q(&lat, 0.99);
    res->wp50 = hist_q(&wlat, 0.5);
    res->wp99 = hist_q(&wlat, 0.99);
    res->rate = (double)sent / seconds;
    res->acked = (double)wlat.n / seconds;
    res->events_per_watcher = (double)lat.n / watchers;
    res->rss_peak_mib = (double)peak / 1024.0;
    res->cutoffs = itest_metric(&c, l, "electd_watch_cutoffs_total");
    printf("  run: %llu writes sent, %llu acknowledged (200), %llu refused, %llu events read "
           "(%.0f per watcher), %ld cut off\n",
           (unsigned long long)sent, (unsigned long long)wlat.n, (unsigned long long)refused,
           (unsigned long long)lat.n, res->events_per_watcher, res->cutoffs);
    if (refused)
        printf("  first refusal: %s\n", first_refusal);
    refused = 0;
    fflush(stdout);
    ok = true;
out:
    for (int i = 0; conns != NULL && i < watchers + WRITERS; i++)
        if (conns[i].fd > 0)
            close(conns[i].fd);
    if (ep >= 0)
        close(ep);
    free(conns);
    free(lat.b);
    free(wlat.b);
    itest_cluster_destroy(&c);
    return ok;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void row(const char *what, double *v, int n, const char *unit)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    int p99 = (int)(0.99 * (n - 1) + 0.5);
    printf("| %-44s | %4d | %8.1f%s | %8.1f%s | %8.1f%s | %8.1f%s |\n", what, n, v[n / 2], unit,
           v[p99], unit, v[0], unit, v[n - 1], unit);
}

int main(int argc, char **argv)
{
    int runs = 3, watchers = 1000, rate = 1000, seconds = 10;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--watchers") == 0 && i + 1 < argc)
            watchers = atoi(argv[++i]);
        else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
            rate = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_watch [--runs N] [--watchers W] [--rate R] "
                            "[--seconds S]\n");
            return 2;
        }
    }
    if (runs < 1 || runs > 50 || watchers < 1 || watchers > 10000 || rate < 1 || rate > 100000 ||
        seconds < 1 || seconds > 600) {
        fprintf(stderr, "bench_watch: a setting is out of range\n");
        return 2;
    }
    enum { P50, P99, WP50, WP99, RATE, ACKED, EVENTS, RSS_IDLE, RSS_PEAK, N_ROWS };
    double v[N_ROWS][50];
    int done = 0;
    printf("%d watchers on the leader, %d writes/s for %d s, %d runs\n", watchers, rate, seconds,
           runs);
    for (int r = 0; r < runs; r++) {
        result_t res;
        if (!run_once(watchers, rate, seconds, &res))
            continue;
        double x[N_ROWS] = {res.p50,
                            res.p99,
                            res.wp50,
                            res.wp99,
                            res.rate,
                            res.acked,
                            res.events_per_watcher,
                            res.rss_idle_mib,
                            res.rss_peak_mib};
        for (int k = 0; k < N_ROWS; k++)
            v[k][done] = x[k];
        done++;
    }
    if (done == 0) {
        fprintf(stderr, "bench_watch: no run completed\n");
        return 1;
    }
    printf("\n| %-44s | %4s | %10s | %10s | %10s | %10s |\n", "case", "runs", "median", "p99",
           "min", "max");
    printf("|----------------------------------------------|------|------------|------------|----"
           "--------|------------|\n");
    row("delivery latency p50 (write sent -> event)", v[P50], done, "ms");
    row("delivery latency p99", v[P99], done, "ms");
    row("write latency p50 (sent -> 200)", v[WP50], done, "ms");
    row("write latency p99", v[WP99], done, "ms");
    row("writes sent per second", v[RATE], done, "  ");
    row("writes acknowledged (200) per second", v[ACKED], done, "  ");
    row("events read per watcher", v[EVENTS], done, "  ");
    row("leader RSS before the streams opened", v[RSS_IDLE], done, "Mi");
    row("leader RSS, peak during the run", v[RSS_PEAK], done, "Mi");
    return 0;
}
