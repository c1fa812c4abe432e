/* events.c — see events.h. */
#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Copies the next line of *p (cut to cap - 1 bytes) into line and advances *p; false at the
 * end of the text. */
static bool next_line(const char **p, char *line, size_t cap)
{
    if (**p == '\0')
        return false;
    const char *nl = strchr(*p, '\n');
    size_t len = nl ? (size_t)(nl - *p) : strlen(*p);
    size_t keep = len < cap - 1 ? len : cap - 1;
    memcpy(line, *p, keep);
    line[keep] = '\0';
    *p += nl ? len + 1 : len;
    return true;
}

/* A process is a node and a pid: workloads in containers each have their own PID namespace,
 * so two nodes' workloads may have the same pid. */
static bool same_process(const events_interval_t *x, const char *node, int pid)
{
    return x->pid == pid && strcmp(x->node, node) == 0;
}

static events_interval_t *find_open(events_t *ev, const char *node, int pid)
{
    for (size_t i = ev->n; i-- > 0;)
        if (same_process(&ev->iv[i], node, pid) && ev->iv[i].open)
            return &ev->iv[i];
    return NULL;
}

void events_parse(const char *text, events_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    const char *p = text;
    char line[512];
    while (next_line(&p, line, sizeof(line))) {
        unsigned long long ns = 0, token = 0;
        char node[16], what[32], tok[32] = "-";
        int pid = 0;
        int k = sscanf(line, "%llu %15s %31s %d %31s", &ns, node, what, &pid, tok);
        if (k < 4)
            continue;
        if (strcmp(what, "start") == 0 && ev->n < EVENTS_MAX_INTERVALS) {
            events_interval_t *iv = &ev->iv[ev->n++];
            memset(iv, 0, sizeof(*iv));
            snprintf(iv->node, sizeof(iv->node), "%s", node);
            iv->pid = pid;
            iv->start_ns = ns;
            iv->end_ns = ns + EVENTS_ALIVE_NS;
            iv->open = true;
            if (sscanf(tok, "%llu", &token) == 1)
                iv->token = token;
            continue;
        }
        events_interval_t *iv = find_open(ev, node, pid);
        if (iv == NULL)
            continue;
        if (strcmp(what, "alive") == 0) {
            iv->end_ns = ns + EVENTS_ALIVE_NS;
        } else if (strcmp(what, "stop") == 0 || strcmp(what, "crash") == 0) {
            /* "crash": the worker is about to exit on its own (a crashing workload); its
             * interval ends there, not one alive period after its last alive line. */
            iv->end_ns = ns;
            iv->stopped = strcmp(what, "stop") == 0;
            iv->open = false;
        }
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int events_wait_running(const char *path, const char *not_node, size_t min_starts, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    static events_t ev;
    do {
        if (events_load(path, &ev) && ev.n >= min_starts && ev.n > 0) {
            events_interval_t *last = &ev.iv[ev.n - 1];
            if (last->open && (not_node == NULL || strcmp(last->node, not_node) != 0))
                return (int)(ev.n - 1);
        }
        usleep(10000);
    } while (now_ms() < deadline);
    return -1;
}

char *events_read(const char *path)
{
    static char buf[1 << 22];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return strcpy(buf, "");
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

int events_count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

bool events_load(const char *path, events_t *ev)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        memset(ev, 0, sizeof(*ev));
        return false;
    }
    static char buf[1 << 22];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    events_parse(buf, ev);
    return true;
}

bool events_overlap(const events_t *ev, size_t *a, size_t *b)
{
    for (size_t i = 0; i < ev->n; i++)
        for (size_t j = i + 1; j < ev->n; j++) {
            const events_interval_t *x = &ev->iv[i], *y = &ev->iv[j];
            if (same_process(x, y->node, y->pid))
                continue;
            if (x->start_ns < y->end_ns && y->start_ns < x->end_ns) {
                *a = i;
                *b = j;
                return true;
            }
        }
    return false;
}

size_t events_starts(const events_t *ev, const char *node)
{
    size_t n = 0;
    for (size_t i = 0; i < ev->n; i++)
        if (node == NULL || strcmp(ev->iv[i].node, node) == 0)
            n++;
    return n;
}

bool events_hooks_overlap(const char *text)
{
    /* node -> number of hooks running */
    char nodes[16][16];
    int running[16] = {0};
    size_t n_nodes = 0;
    const char *p = text;
    char line[512];
    while (next_line(&p, line, sizeof(line))) {
        unsigned long long ns;
        char node[16], what[32];
        if (sscanf(line, "%llu %15s %31s", &ns, node, what) != 3)
            continue;
        bool begin = strcmp(what, "hook-begin") == 0, end = strcmp(what, "hook-end") == 0;
        if (!begin && !end)
            continue;
        size_t k = 0;
        while (k < n_nodes && strcmp(nodes[k], node) != 0)
            k++;
        if (k == n_nodes && n_nodes < 16)
            snprintf(nodes[n_nodes++], 16, "%s", node);
        if (k >= 16)
            continue;
        running[k] += begin ? 1 : -1;
        if (running[k] > 1)
            return true;
    }
    return false;
}

size_t
events_hook_periods(const char *text, uint64_t lease_ns, events_hook_period_t *pp, size_t cap,
                    uint64_t (*cut)(const events_hook_period_t *p, uint64_t line_ns, void *arg),
                    void *arg)
{
    size_t n = 0;
    const char *p = text;
    char line[512];
    while (next_line(&p, line, sizeof(line))) {
        unsigned long long ns;
        char node[16], what[32], name[32], extra[32] = "";
        int k = sscanf(line, "%llu %15s %31s %31s %31s", &ns, node, what, name, extra);
        if (k < 4)
            continue;
        events_hook_period_t *cur = NULL;
        for (size_t i = n; i-- > 0;)
            if (strcmp(pp[i].node, node) == 0 && pp[i].open) {
                cur = &pp[i];
                break;
            }
        uint64_t cut_at = cur != NULL && cut != NULL ? cut(cur, ns, arg) : UINT64_MAX;
        if (cut_at != UINT64_MAX) {
            cur->end_ns = cut_at;
            cur->open = false;
            cur = NULL;
        }
        if (strcmp(what, "hook-begin") == 0 && strcmp(name, "start") == 0 && cur == NULL &&
            n < cap) {
            cur = &pp[n++];
            snprintf(cur->node, sizeof(cur->node), "%s", node);
            cur->begin_ns = ns;
            cur->end_ns = UINT64_MAX;
            cur->open = true;
        } else if (strcmp(what, "hook-end") == 0 && strcmp(name, "stop") == 0 && cur != NULL) {
            cur->end_ns = k == 5 ? ns + lease_ns : ns;
            cur->open = false;
        }
    }
    return n;
}

bool events_hook_primaries_overlap(const char *text, uint64_t lease_ns, char *why, size_t cap)
{
    static events_hook_period_t pp[EVENTS_MAX_INTERVALS];
    size_t n = events_hook_periods(text, lease_ns, pp, EVENTS_MAX_INTERVALS, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            const events_hook_period_t *x = &pp[i], *y = &pp[j];
            if (strcmp(x->node, y->node) == 0)
                continue;
            if (x->begin_ns < y->end_ns && y->begin_ns < x->end_ns) {
                snprintf(why, cap, "%s primary [%llu, %llu%s] and %s primary [%llu, %llu%s]",
                         x->node, (unsigned long long)x->begin_ns, (unsigned long long)x->end_ns,
                         x->open ? " open" : "", y->node, (unsigned long long)y->begin_ns,
                         (unsigned long long)y->end_ns, y->open ? " open" : "");
                return true;
            }
        }
    return false;
}

bool events_file_no_overlap(const char *path, char *why, size_t cap)
{
    static events_t ev;
    size_t a, b;
    if (!events_load(path, &ev)) {
        snprintf(why, cap, "cannot read %s", path);
        return false;
    }
    if (!events_overlap(&ev, &a, &b))
        return true;
    snprintf(why, cap,
             "primary intervals overlap: %s pid %d [%llu, %llu] and %s pid %d [%llu, %llu]",
             ev.iv[a].node, ev.iv[a].pid, (unsigned long long)ev.iv[a].start_ns,
             (unsigned long long)ev.iv[a].end_ns, ev.iv[b].node, ev.iv[b].pid,
             (unsigned long long)ev.iv[b].start_ns, (unsigned long long)ev.iv[b].end_ns);
    return false;
}

bool events_first_primary(const char *path, int timeout_ms, events_interval_t *out)
{
    int first = events_wait_running(path, NULL, 1, timeout_ms);
    static events_t ev; /* large: not on the stack */
    if (first < 0 || !events_load(path, &ev) || (size_t)first >= ev.n)
        return false;
    *out = ev.iv[first];
    return true;
}
