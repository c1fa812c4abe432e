/* bench_store.c — throughput and latency of store/: durable appends (batches of 1, 16 and 256
 * entries of 100 B, fsync per batch) against a bare SQLite insert loop with the same pragmas,
 * applying KV puts, snapshot create/install for 10k and 100k keys, and database size per 100k
 * entries. Prints markdown tables (median, p99, min, max over runs); never fails on time.
 * BENCH_RUNS overrides the number of runs (default 5), BENCH_DIR the scratch directory. */
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define PAYLOAD      100
#define APPEND_ITEMS 8192 /* entries appended per run and batch size */
#define APPLY_ITEMS  20000
#define SIZE_ENTRIES 100000
#define RUNS_MAX     50

static char scratch[512];
static int runs = 5;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc, store_t *st)
{
    fprintf(stderr, "bench_store: %s: %s %s\n", what, store_strerror(rc),
            st ? store_errmsg(st) : "");
    exit(1);
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    char p[1024];
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static const char *fresh_dir(const char *name)
{
    static char d[600];
    snprintf(d, sizeof d, "%s/%s", scratch, name);
    rm_dir(d);
    return d;
}

static store_t *open_store(const char *dir, uint64_t node)
{
    store_opts_t o = {.cluster_id = "bench", .node_id = node};
    store_t *st = NULL;
    char err[STORE_ERRMSG_MAX];
    int rc = store_open(&st, dir, &o, err, sizeof err);
    if (rc) {
        fprintf(stderr, "bench_store: open %s: %s\n", dir, err);
        exit(1);
    }
    return st;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct stats {
    double median, p99, min, max;
} stats_t;

static stats_t summarize(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i99 = (int)((double)(n - 1) * 0.99 + 0.5);
    return (stats_t){.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2,
                     .p99 = v[i99],
                     .min = v[0],
                     .max = v[n - 1]};
}

static void row(const char *label, const char *unit, double *v, int n)
{
    stats_t s = summarize(v, n);
    printf("| %-34s | %-9s | %12.0f | %12.0f | %12.0f | %12.0f |\n", label, unit, s.median, s.p99,
           s.min, s.max);
}

static void row_ms(const char *label, double *v, int n)
{
    stats_t s = summarize(v, n);
    printf("| %-34s | %-9s | %12.1f | %12.1f | %12.1f | %12.1f |\n", label, "ms", s.median, s.p99,
           s.min, s.max);
}

static void header(const char *title)
{
    printf("\n%s (%d runs)\n\n", title, runs);
    printf("| %-34s | %-9s | %12s | %12s | %12s | %12s |\n", "case", "unit", "median", "p99", "min",
           "max");
    printf("|%s|%s|%s|%s|%s|%s|\n", "------------------------------------", "-----------",
           "--------------", "--------------", "--------------", "--------------");
}

/* Entries index first.. with 100-byte PUT payloads (unique keys). */
static uint8_t *entry_data;

static void make_entries(raft_entry_t *e, size_t n, uint64_t first, uint64_t term)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t idx = first + i;
        char key[32], val[PAYLOAD];
        int kl = snprintf(key, sizeof key, "key/%09llu", (unsigned long long)idx);
        size_t vl = PAYLOAD - STORE_CMD_HEADER - (size_t)kl;
        memset(val, 'a' + (int)(idx % 26), vl);
        size_t len;
        uint8_t *buf = entry_data + i * PAYLOAD;
        if (store_cmd_encode_put(key, (size_t)kl, val, vl, NULL, buf, PAYLOAD, &len) != 0 ||
            len != PAYLOAD)
            die("encode", STORE_EINVAL, NULL);
        e[i] = (raft_entry_t){
            .term = term, .index = idx, .type = RAFT_ENTRY_NORMAL, .len = PAYLOAD, .data = buf};
    }
}

static void save(store_t *st, const raft_entry_t *e, size_t n, uint64_t term, uint64_t commit)
{
    raft_ready_t rd;
    memset(&rd, 0, sizeof rd);
    rd.hs_changed = true;
    rd.hs = (raft_hard_state_t){.term = term, .vote = 1, .commit = commit};
    rd.entries = e;
    rd.n_entries = n;
    int rc = store_save_ready(st, &rd);
    if (rc)
        die("save", rc, st);
}

/* ---- append ------------------------------------------------------------------------------- */

static void bench_append(raft_entry_t *e)
{
    const size_t batches[] = {1, 16, 256};
    double ent[3][RUNS_MAX], com[3][RUNS_MAX], base_ent[3][RUNS_MAX], base_com[3][RUNS_MAX];
    for (int r = 0; r < runs; r++) {
        for (int b = 0; b < 3; b++) {
            size_t bs = batches[b];
            size_t total = bs == 1 ? APPEND_ITEMS / 4 : APPEND_ITEMS;
            /* the store */
            const char *d = fresh_dir("append");
            store_t *st = open_store(d, 1);
            make_entries(e, total, 1, 1);
            double t0 = now_s();
            for (size_t i = 0; i < total; i += bs)
                save(st, e + i, bs, 1, 0);
            double dt = now_s() - t0;
            ent[b][r] = (double)total / dt;
            com[b][r] = (double)(total / bs) / dt;
            store_close(st);
            rm_dir(d);

            /* bare SQLite with the same pragmas and table */
            d = fresh_dir("bare");
            mkdir(d, 0700);
            char path[700];
            snprintf(path, sizeof path, "%s/bare.db", d);
            sqlite3 *db;
            sqlite3_open(path, &db);
            sqlite3_exec(db,
                         "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL;"
                         "PRAGMA synchronous = FULL; PRAGMA cache_size = -512;"
                         "CREATE TABLE log(idx INTEGER PRIMARY KEY, term INTEGER NOT NULL,"
                         " type INTEGER NOT NULL, data BLOB);",
                         NULL, NULL, NULL);
            sqlite3_stmt *ins, *begin, *commit;
            sqlite3_prepare_v2(db, "INSERT INTO log VALUES (?1, ?2, ?3, ?4)", -1, &ins, NULL);
            sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL);
            sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL);
            t0 = now_s();
            for (size_t i = 0; i < total; i += bs) {
                sqlite3_step(begin);
                sqlite3_reset(begin);
                for (size_t j = i; j < i + bs; j++) {
                    sqlite3_bind_int64(ins, 1, (sqlite3_int64)e[j].index);
                    sqlite3_bind_int64(ins, 2, (sqlite3_int64)e[j].term);
                    sqlite3_bind_int(ins, 3, e[j].type);
                    sqlite3_bind_blob(ins, 4, e[j].data, (int)e[j].len, SQLITE_STATIC);
                    if (sqlite3_step(ins) != SQLITE_DONE)
                        die("bare insert", STORE_EINTERNAL, NULL);
                    sqlite3_reset(ins);
                }
                if (sqlite3_step(commit) != SQLITE_DONE)
                    die("bare commit", STORE_EINTERNAL, NULL);
                sqlite3_reset(commit);
            }
            dt = now_s() - t0;
            base_ent[b][r] = (double)total / dt;
            base_com[b][r] = (double)(total / bs) / dt;
            sqlite3_finalize(ins);
            sqlite3_finalize(begin);
            sqlite3_finalize(commit);
            sqlite3_close(db);
            rm_dir(d);
        }
    }
    header("Append with fsync (store_save_ready: hard state + entries of 100 B, one "
           "transaction per batch)");
    for (int b = 0; b < 3; b++) {
        char l[64];
        snprintf(l, sizeof l, "store, batch %zu", batches[b]);
        row(l, "entries/s", ent[b], runs);
        row(l, "commits/s", com[b], runs);
        snprintf(l, sizeof l, "bare SQLite insert loop, batch %zu", batches[b]);
        row(l, "entries/s", base_ent[b], runs);
        row(l, "commits/s", base_com[b], runs);
    }
}

/* ---- apply -------------------------------------------------------------------------------- */

static void bench_apply(raft_entry_t *e)
{
    const size_t batches[] = {1, 256};
    double v[2][RUNS_MAX];
    for (int r = 0; r < runs; r++) {
        for (int b = 0; b < 2; b++) {
            size_t total = batches[b] == 1 ? APPLY_ITEMS / 4 : APPLY_ITEMS;
            const char *d = fresh_dir("apply");
            store_t *st = open_store(d, 1);
            make_entries(e, total, 1, 1);
            for (size_t i = 0; i < total; i += 1024)
                save(st, e + i, total - i < 1024 ? total - i : 1024, 1, total);
            double t0 = now_s();
            for (size_t i = 0; i < total; i += batches[b]) {
                int rc = store_apply(st, e + i, batches[b], NULL);
                if (rc)
                    die("apply", rc, st);
            }
            v[b][r] = (double)total / (now_s() - t0);
            store_close(st);
            rm_dir(d);
        }
    }
    header("Apply KV puts (store_apply: one transaction per batch with the applied index)");
    row("apply, batch 1", "puts/s", v[0], runs);
    row("apply, batch 256", "puts/s", v[1], runs);
}

/* ---- snapshots ---------------------------------------------------------------------------- */

static void install(store_t *to, const char *path, raft_snapshot_meta_t meta)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("open snapshot", STORE_EIO, NULL);
    static uint8_t chunk[256 << 10];
    uint64_t off = 0;
    for (;;) {
        size_t n = fread(chunk, 1, sizeof chunk, f);
        raft_snapshot_chunk_t c = {.meta = meta,
                                   .offset = off,
                                   .data = chunk,
                                   .len = (uint32_t)n,
                                   .last = off + n == meta.size};
        raft_ready_t rd;
        memset(&rd, 0, sizeof rd);
        rd.chunk = &c;
        int rc = store_save_ready(to, &rd);
        if (rc)
            die("install", rc, to);
        off += n;
        if (c.last || n == 0)
            break;
    }
    fclose(f);
}

static void bench_snapshot(raft_entry_t *e)
{
    const size_t sizes[] = {10000, 100000};
    for (int s = 0; s < 2; s++) {
        size_t keys = sizes[s];
        double create[RUNS_MAX], inst[RUNS_MAX];
        uint64_t bytes = 0;
        const char *d = fresh_dir("snap-leader");
        char leader_dir[700];
        snprintf(leader_dir, sizeof leader_dir, "%s", d);
        store_t *st = open_store(leader_dir, 1);
        make_entries(e, keys, 1, 1);
        for (size_t i = 0; i < keys; i += 1024) {
            size_t n = keys - i < 1024 ? keys - i : 1024;
            save(st, e + i, n, 1, i + n);
            if (store_apply(st, e + i, n, NULL) != 0)
                die("apply", -1, st);
        }
        uint64_t next = keys + 1;
        for (int r = 0; r < runs; r++) {
            /* one more applied entry so that each run takes a new snapshot */
            make_entries(e, 1, next, 1);
            save(st, e, 1, 1, next);
            store_apply(st, e, 1, NULL);
            next++;
            store_snapshot_info_t si;
            double t0 = now_s();
            int rc = store_snapshot_create(st, NULL, &si);
            create[r] = (now_s() - t0) * 1e3;
            if (rc)
                die("snapshot create", rc, st);
            bytes = si.size;
            raft_snapshot_meta_t meta;
            store_snapshot_meta(st, &meta);
            const char *fd = fresh_dir("snap-follower");
            store_t *f = open_store(fd, 2);
            t0 = now_s();
            install(f, store_snapshot_path(st), meta);
            inst[r] = (now_s() - t0) * 1e3;
            store_close(f);
            rm_dir(fd);
        }
        store_close(st);
        rm_dir(leader_dir);
        char title[160], l[64];
        snprintf(title, sizeof title,
                 "Snapshot of %zu keys (%.1f MiB file; install = 256 KiB chunks + atomic swap)",
                 keys, (double)bytes / (1 << 20));
        header(title);
        snprintf(l, sizeof l, "create, %zuk keys", keys / 1000);
        row_ms(l, create, runs);
        snprintf(l, sizeof l, "install, %zuk keys", keys / 1000);
        row_ms(l, inst, runs);
    }
}

/* ---- size --------------------------------------------------------------------------------- */

static void bench_size(raft_entry_t *e)
{
    const char *d = fresh_dir("size");
    store_t *st = open_store(d, 1);
    make_entries(e, SIZE_ENTRIES, 1, 1);
    for (size_t i = 0; i < SIZE_ENTRIES; i += 256) {
        size_t n = SIZE_ENTRIES - i < 256 ? SIZE_ENTRIES - i : 256;
        save(st, e + i, n, 1, 0);
    }
    uint64_t log_bytes = 0, sm_bytes = 0;
    store_size_bytes(st, &log_bytes);
    for (size_t i = 0; i < SIZE_ENTRIES; i += 1024) {
        size_t n = SIZE_ENTRIES - i < 1024 ? SIZE_ENTRIES - i : 1024;
        store_apply(st, e + i, n, NULL);
    }
    store_size_bytes(st, &sm_bytes);
    store_close(st);
    char path[700];
    snprintf(path, sizeof path, "%s/electd.db", d);
    struct stat sb;
    stat(path, &sb);
    printf("\nDatabase size per %d entries of %d B\n\n", SIZE_ENTRIES, PAYLOAD);
    printf("| %-44s | %12s | %14s |\n", "content", "bytes", "bytes/entry");
    printf("|----------------------------------------------|--------------|----------------|\n");
    printf("| %-44s | %12llu | %14.1f |\n", "log only (100k entries)",
           (unsigned long long)log_bytes, (double)log_bytes / SIZE_ENTRIES);
    printf("| %-44s | %12llu | %14.1f |\n", "log + state machine (100k keys applied)",
           (unsigned long long)sm_bytes, (double)sm_bytes / SIZE_ENTRIES);
    printf("| %-44s | %12llu | %14.1f |\n", "file on disk after close (WAL checkpointed)",
           (unsigned long long)sb.st_size, (double)sb.st_size / SIZE_ENTRIES);
    rm_dir(d);
}

int main(void)
{
    const char *env = getenv("BENCH_RUNS");
    if (env) {
        runs = atoi(env);
        if (runs < 1)
            runs = 1;
        if (runs > RUNS_MAX)
            runs = RUNS_MAX;
    }
    env = getenv("BENCH_DIR");
    snprintf(scratch, sizeof scratch, "%s/bench-store-XXXXXX", env ? env : "/tmp");
    if (!mkdtemp(scratch)) {
        perror("mkdtemp");
        return 1;
    }
    size_t max_entries = SIZE_ENTRIES + 16;
    entry_data = malloc(max_entries * PAYLOAD);
    raft_entry_t *e = calloc(max_entries, sizeof *e);
    if (!entry_data || !e)
        return 1;
    printf("bench_store: SQLite %s, scratch %s\n", sqlite3_libversion(), scratch);
    bench_append(e);
    bench_apply(e);
    bench_snapshot(e);
    bench_size(e);
    free(e);
    free(entry_data);
    rm_dir(scratch);
    return 0;
}
