/* binlog_worker.c — the example workload of `make demo`: a binlog-style shipper that must
 * run on exactly one node. It reads an append-only event source (a file of numbered events
 * standing in for a MySQL binlog), "ships" each event to a sink file, and every N events
 * saves its position in electd's replicated KV with its fencing token; on start it resumes
 * from the saved position. This is the pattern electd is built for, in ~300 lines:
 *
 *   - position and token come from electd: ELECTD_HTTP (the local API), ELECTD_FENCING_TOKEN
 *     (with ELECTD_ELECTION under a named election: its writes are fenced by that election),
 *     and ELECTD_WORKLOAD_TOKEN, the workload's own API credential when electd has an
 *     --http-token (sent as a bearer token; it allows fenced KV writes, not more);
 *   - a checkpoint answered 409 "fenced" means a newer primary exists: exit at once;
 *   - SIGTERM (a handover or a lost lease): save the checkpoint (fenced) and exit 0, so the
 *     successor resumes exactly here and ships nothing twice.
 *
 * Usage:
 *   binlog_worker run --source FILE --sink FILE --log FILE [--key K] [--every N] [--rate R]
 *   binlog_worker generate FILE COUNT       write events 1..COUNT (the demo's "binlog")
 *   binlog_worker verify --sink FILE --log FILE   check a finished history (verify.h)
 */
#include "http_client.h"
#include "verify.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEY_MAX              200
#define EVENT_LINE_MAX       512
#define MAX_RUN_SECONDS      3600 /* a demo worker never outlives an hour, stopped or not */
#define CHECKPOINT_TIMEOUT   2000 /* ms for a periodic checkpoint */
#define FINAL_TIMEOUT        250  /* ms for the one on SIGTERM: must fit in --stop-timeout */
#define RESUME_TIMEOUT_MS    5000 /* to read the saved position at start */
#define MAX_CHECKPOINT_FAILS 5    /* in a row, before giving up as primary */
#define HISTORY_MAX_BYTES    (256u << 20)

/* Exit codes electd sees (any non-zero one counts as a crash and is restarted there). */
enum { EXIT_OK = 0, EXIT_USAGE = 2, EXIT_FENCED = 3, EXIT_NOT_PRIMARY = 4, EXIT_SOURCE = 5 };

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
                          .tv_nsec = (long)(ns % 1000000000ull)};
    nanosleep(&ts, NULL); /* a signal cuts it short, which is what we want */
}

struct worker {
    const char *source, *sink, *log, *key;
    unsigned every;
    unsigned rate;
    const char *http;     /* ELECTD_HTTP */
    const char *node;     /* ELECTD_NODE_ID */
    uint64_t token;       /* ELECTD_FENCING_TOKEN */
    const char *election; /* ELECTD_ELECTION: a named election's (its writes fence with it) */
    int sink_fd, log_fd;
    uint64_t last;  /* last event shipped */
    long offset;    /* byte offset of the next event in the source */
    uint64_t saved; /* last checkpoint electd acknowledged */
};

/* One line to the start/stop log: one write() on an O_APPEND fd, so lines of several
 * workers never interleave. */
static void say(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct worker *w, const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "%" PRIu64 " %s ", mono_ns(), w->node);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    (void)!write(w->log_fd, line, (size_t)n);
    (void)!write(2, line, (size_t)n); /* also into electd's log */
}

/* Saves "seq=S offset=O" under the key, fenced. Returns 0, EXIT_FENCED or EXIT_NOT_PRIMARY
 * (stop now), or 1 for a failure worth retrying at the next checkpoint. */
static int checkpoint(struct worker *w, int timeout_ms)
{
    char path[KEY_MAX + 64], body[64], reply[512];
    if (w->election != NULL)
        snprintf(path, sizeof(path), "/v1/kv/%s?fence=%" PRIu64 "&election=%s", w->key, w->token,
                 w->election);
    else
        snprintf(path, sizeof(path), "/v1/kv/%s?fence=%" PRIu64, w->key, w->token);
    int n = snprintf(body, sizeof(body), "seq=%" PRIu64 " offset=%ld", w->last, w->offset);
    int status = http_client_request(w->http, "PUT", path, body, (size_t)n, timeout_ms, reply,
                                     sizeof(reply));
    if (status >= 200 && status < 300) {
        w->saved = w->last;
        say(w, "checkpoint %d seq=%" PRIu64 " ok", (int)getpid(), w->last);
        return 0;
    }
    if (status == 409 && strstr(reply, "\"fenced\"") != NULL) {
        say(w, "checkpoint %d seq=%" PRIu64 " fenced", (int)getpid(), w->last);
        return EXIT_FENCED;
    }
    say(w, "checkpoint %d seq=%" PRIu64 " error %s", (int)getpid(), w->last,
        status < 0 ? http_client_strerror(status) : reply);
    return status == 421 ? EXIT_NOT_PRIMARY : 1;
}

/* Reads the saved position: linearizable on our own electd, which leads (the default
 * election); for a named election, our electd's own state (?stale), which already holds every
 * write acknowledged before it became the holder: the move that made it holder was committed
 * after the previous holder's workload had stopped (docs/api.md). 404 = first run. */
static int resume(struct worker *w)
{
    char path[KEY_MAX + 32], reply[256];
    snprintf(path, sizeof(path), "/v1/kv/%s?raw%s", w->key, w->election ? "&stale" : "");
    uint64_t give_up = mono_ns() + RESUME_TIMEOUT_MS * 1000000ull;
    for (int attempt = 0; mono_ns() < give_up && !stop_signal; attempt++) {
        int status = http_client_request(w->http, "GET", path, NULL, 0, 1000, reply, sizeof(reply));
        if (status == 404)
            return 0;
        if (status == 200) {
            unsigned long long seq;
            long off;
            if (sscanf(reply, "seq=%llu offset=%ld", &seq, &off) != 2 || off < 0) {
                fprintf(stderr, "binlog_worker: saved position \"%s\" is not mine\n", reply);
                return EXIT_SOURCE;
            }
            w->last = w->saved = seq;
            w->offset = off;
            return 0;
        }
        if (status == 421)
            return EXIT_NOT_PRIMARY;
        sleep_ns(200000000ull); /* 503: the term-start entry may still be applying */
    }
    fprintf(stderr, "binlog_worker: cannot read the saved position from %s\n", w->http);
    return EXIT_NOT_PRIMARY;
}

static int open_append(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

/* Reads electd's environment, opens the sink and the log, resumes from the checkpoint and
 * opens the source at the resumed offset. Returns 0 or an EXIT_* code. */
static int setup(struct worker *w, FILE **src_out)
{
    const char *http = getenv("ELECTD_HTTP");
    const char *token = getenv("ELECTD_FENCING_TOKEN");
    const char *node = getenv("ELECTD_NODE_ID");
    if (http == NULL || token == NULL || *token == '\0') {
        fprintf(stderr, "binlog_worker: run me under electd (ELECTD_HTTP and "
                        "ELECTD_FENCING_TOKEN are not set)\n");
        return EXIT_USAGE;
    }
    if (http_client_bearer_set(getenv("ELECTD_WORKLOAD_TOKEN")) != 0) {
        fprintf(stderr, "binlog_worker: ELECTD_WORKLOAD_TOKEN is malformed\n");
        return EXIT_USAGE;
    }
    w->http = http;
    w->token = strtoull(token, NULL, 10);
    const char *election = getenv("ELECTD_ELECTION"); /* a named election's workload */
    w->election = election != NULL && *election != '\0' ? election : NULL;
    w->node = node != NULL && *node != '\0' ? node : "?";
    w->sink_fd = open_append(w->sink);
    w->log_fd = open_append(w->log);
    if (w->sink_fd < 0 || w->log_fd < 0) {
        fprintf(stderr, "binlog_worker: cannot open %s or %s: %s\n", w->sink, w->log,
                strerror(errno));
        return EXIT_SOURCE;
    }
    int rv = resume(w);
    if (rv != 0)
        return rv;
    FILE *src = fopen(w->source, "r");
    if (src == NULL || fseek(src, w->offset, SEEK_SET) != 0) {
        fprintf(stderr, "binlog_worker: cannot read %s at %ld\n", w->source, w->offset);
        if (src != NULL)
            fclose(src);
        return EXIT_SOURCE;
    }
    *src_out = src;
    return 0;
}

/* Ships the next event of the source if a whole one is there: 1 shipped, 0 none yet (the end
 * of the source, or half an event being appended), or EXIT_SOURCE (which is > 1). */
static int ship_next(struct worker *w, FILE *src)
{
    char ev[EVENT_LINE_MAX], out[EVENT_LINE_MAX + 128];
    long at = ftell(src);
    if (fgets(ev, sizeof(ev), src) == NULL || strchr(ev, '\n') == NULL) {
        clearerr(src);
        fseek(src, at, SEEK_SET);
        return 0;
    }
    unsigned long long seq;
    if (sscanf(ev, "%llu", &seq) != 1 || seq != w->last + 1) {
        fprintf(stderr, "binlog_worker: %s at %ld holds event %s, expected %" PRIu64 "\n",
                w->source, at, ev, w->last + 1);
        return EXIT_SOURCE;
    }
    /* Ship: one write per event, carrying who shipped it with which token. */
    int n = snprintf(out, sizeof(out), "%llu %s %d %" PRIu64 " %" PRIu64 " %s", seq, w->node,
                     (int)getpid(), w->token, mono_ns(), ev);
    if (write(w->sink_fd, out, (size_t)n) != n) {
        fprintf(stderr, "binlog_worker: cannot write %s: %s\n", w->sink, strerror(errno));
        return EXIT_SOURCE;
    }
    w->last = seq;
    w->offset = ftell(src);
    return 1;
}

/* Saves a checkpoint when one is due. 0 to go on, or the exit code (with *reason) when this
 * worker must stop: fenced, no longer primary, or too many failed saves in a row. */
static int checkpoint_if_due(struct worker *w, int *fails, const char **reason)
{
    if (w->last - w->saved < w->every)
        return 0;
    int rv = checkpoint(w, CHECKPOINT_TIMEOUT);
    if (rv == EXIT_FENCED || rv == EXIT_NOT_PRIMARY) {
        *reason = rv == EXIT_FENCED ? "fenced" : "not-primary";
        return rv;
    }
    *fails = rv == 0 ? 0 : *fails + 1;
    if (*fails >= MAX_CHECKPOINT_FAILS) {
        *reason = "checkpoint-failures";
        return EXIT_NOT_PRIMARY;
    }
    return 0;
}

static int run(struct worker *w)
{
    FILE *src = NULL;
    int rv = setup(w, &src);
    if (rv != 0)
        return rv;
    say(w, "start %d token=%" PRIu64 " resume=%" PRIu64, (int)getpid(), w->token, w->last);

    const char *reason = "sigterm";
    int fails = 0;
    uint64_t period_ns = 1000000000ull / (w->rate ? w->rate : 1);
    uint64_t next = mono_ns(), until = next + MAX_RUN_SECONDS * 1000000000ull;
    while (!stop_signal && rv == 0) {
        uint64_t now = mono_ns();
        if (now >= until) {
            reason = "time-limit";
            break;
        }
        if (now < next) {
            sleep_ns(next - now);
            continue;
        }
        next += period_ns;
        int shipped = ship_next(w, src);
        if (shipped == 0)
            next = mono_ns() + 50000000ull; /* wait for more */
        else if (shipped != 1)
            rv = shipped; /* EXIT_SOURCE, already reported */
        else
            rv = checkpoint_if_due(w, &fails, &reason);
    }
    fclose(src);
    if (rv == EXIT_SOURCE)
        return rv;
    /* Stopping cleanly: save the exact position (fenced), so a planned handover ships
     * nothing twice. A fenced or failed save is fine: the successor resumes from the last
     * acknowledged checkpoint and ships the rest again. */
    if (rv == 0 && w->last != w->saved)
        (void)checkpoint(w, FINAL_TIMEOUT);
    say(w, "stop %d last=%" PRIu64 " %s", (int)getpid(), w->last, reason);
    return rv;
}

static int generate(const char *path, const char *count_s)
{
    char *end;
    unsigned long long count = strtoull(count_s, &end, 10);
    if (*end != '\0' || count == 0 || count > BINLOG_VERIFY_MAX_SEQ) {
        fprintf(stderr, "binlog_worker: COUNT must be 1..%lu\n", BINLOG_VERIFY_MAX_SEQ);
        return EXIT_USAGE;
    }
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "binlog_worker: cannot create %s: %s\n", path, strerror(errno));
        return EXIT_SOURCE;
    }
    for (unsigned long long i = 1; i <= count; i++)
        fprintf(f, "%llu INSERT INTO orders VALUES (%llu, 'sku-%03llu', %llu)\n", i, i, i % 997,
                (i * 7919) % 10000);
    return fclose(f) == 0 ? EXIT_OK : EXIT_SOURCE;
}

/* Reads a whole (bounded) file into a NUL-terminated heap buffer; "" when it is missing. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return errno == ENOENT ? calloc(1, 1) : NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fileno(f), &st) != 0 || (uint64_t)st.st_size > HISTORY_MAX_BYTES)
        goto done;
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL)
        goto done;
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    buf[n] = '\0';
done:
    fclose(f);
    return buf;
}

static int verify(const char *sink_path, const char *log_path)
{
    char *sink = slurp(sink_path), *log = slurp(log_path);
    binlog_report_t *r = malloc(sizeof(*r));
    int rv = 1;
    if (sink == NULL || log == NULL || r == NULL) {
        fprintf(stderr, "binlog_worker: cannot read %s or %s (or over %u bytes)\n", sink_path,
                log_path, HISTORY_MAX_BYTES);
        goto done;
    }
    int v = binlog_verify(sink, log, r);
    if (v < 0)
        fprintf(stderr, "binlog_worker: cannot verify: %s\n", r->first_problem);
    else
        binlog_verify_print(r, stdout);
    rv = v == 0 ? EXIT_OK : 1;
done:
    free(sink);
    free(log);
    free(r);
    return rv;
}

static int usage(void)
{
    fprintf(stderr, "usage: binlog_worker run --source FILE --sink FILE --log FILE [--key KEY]\n"
                    "                         [--every N] [--rate EVENTS_PER_SECOND]\n"
                    "       binlog_worker generate FILE COUNT\n"
                    "       binlog_worker verify --sink FILE --log FILE\n");
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "generate") == 0)
        return generate(argv[2], argv[3]);
    if (argc < 2 || (strcmp(argv[1], "run") != 0 && strcmp(argv[1], "verify") != 0))
        return usage();
    struct worker w = {.key = "binlog/position", .every = 25, .rate = 100};
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *f = argv[i], *v = argv[i + 1];
        if (strcmp(f, "--source") == 0)
            w.source = v;
        else if (strcmp(f, "--sink") == 0)
            w.sink = v;
        else if (strcmp(f, "--log") == 0)
            w.log = v;
        else if (strcmp(f, "--key") == 0 && strlen(v) > 0 && strlen(v) < KEY_MAX)
            w.key = v;
        else if (strcmp(f, "--every") == 0 && atoi(v) > 0)
            w.every = (unsigned)atoi(v);
        else if (strcmp(f, "--rate") == 0 && atoi(v) > 0 && atoi(v) <= 100000)
            w.rate = (unsigned)atoi(v);
        else
            return usage();
    }
    if (argc % 2 != 0 || w.sink == NULL || w.log == NULL)
        return usage();
    if (strcmp(argv[1], "verify") == 0)
        return verify(w.sink, w.log);
    if (w.source == NULL)
        return usage();

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: a signal ends the sleep at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return run(&w);
}
