/* test_crash.c — crash safety: a child process saves ready batches (appends and conflict
 * truncations), applies committed entries, snapshots and compacts in a loop, and is SIGKILLed at
 * random moments. After every kill the reopened store must be consistent: hard state and log
 * agree, no batch is partly saved, and the state machine holds exactly the entries up to the
 * applied index, each applied once.
 *
 * The workload makes the expected state computable: entry i is PUT k<i % 16> = "i:b:j/n" in
 * batch b (= the batch's term and the hard state term it saved), as the j-th of n entries. So
 * key k's version is the number of indices <= applied congruent to k, and its mod revision the
 * largest of them. CRASH_SEED and CRASH_KILLS override the seed and the number of kills. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define KEYS          16
#define KILLS_DEFAULT 200
#define MAX_DELAY_US  12000
#define CHILD_ROUNDS  100000 /* bound on a child's loop if it is never killed */
#define TRUNC_MAX     4

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* ---- the child ------------------------------------------------------------------------- */

typedef struct mem_log {
    raft_entry_t *e; /* e[i] has index base + i */
    uint64_t base;
    size_t n, cap;
} mem_log_t;

static void die(int code)
{
    _exit(code);
}

static void mem_truncate(mem_log_t *l, uint64_t from)
{
    while (l->n > 0 && l->base + l->n - 1 >= from) {
        free(l->e[l->n - 1].data);
        l->n--;
    }
}

static void mem_push(mem_log_t *l, const raft_entry_t *src)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->e = realloc(l->e, l->cap * sizeof *l->e);
        if (!l->e)
            die(3);
    }
    raft_entry_t *d = &l->e[l->n++];
    *d = *src;
    d->data = malloc(src->len);
    if (!d->data)
        die(3);
    memcpy(d->data, src->data, src->len);
}

/* Drops entries below `upto` from memory (they were applied). */
static void mem_drop(mem_log_t *l, uint64_t upto)
{
    size_t k = 0;
    while (k < l->n && l->base + k <= upto)
        free(l->e[k++].data);
    if (k)
        memmove(l->e, l->e + k, (l->n - k) * sizeof *l->e);
    l->n -= k;
    l->base += k;
}

static void make_entry(uint64_t idx, uint64_t batch, size_t j, size_t n, raft_entry_t *e,
                       uint8_t *buf)
{
    char key[8], val[64];
    snprintf(key, sizeof key, "k%02u", (unsigned)(idx % KEYS));
    snprintf(val, sizeof val, "%llu:%llu:%zu/%zu", (unsigned long long)idx,
             (unsigned long long)batch, j, n);
    size_t len;
    if (store_cmd_encode_put(key, strlen(key), val, strlen(val), NULL, buf, 128, &len) != 0)
        die(4);
    *e = (raft_entry_t){
        .term = batch, .index = idx, .type = RAFT_ENTRY_NORMAL, .len = (uint32_t)len, .data = buf};
}

static void child(const char *dir, int ready_fd)
{
    store_opts_t o = {.cluster_id = T_CLUSTER, .node_id = T_NODE};
    store_t *st = NULL;
    if (store_open(&st, dir, &o, NULL, 0) != 0)
        die(5);
    raft_boot_t boot;
    if (store_boot_load(st, &boot) != 0)
        die(6);
    mem_log_t log = {.base = boot.snap.index + 1};
    for (size_t i = 0; i < boot.n_entries; i++)
        mem_push(&log, &boot.entries[i]);
    raft_hard_state_t hs = boot.hs;
    store_boot_free(st, &boot);
    uint64_t applied = store_applied_index(st);
    mem_drop(&log, applied);
    if (write(ready_fd, "r", 1) != 1)
        die(7);

    static uint8_t bufs[32][128];
    raft_entry_t batch[32];
    for (int round = 0; round < CHILD_ROUNDS; round++) {
        uint64_t last = store_log_last_index(st);
        uint64_t b = hs.term + 1;
        uint64_t start = last + 1;
        if (rnd() % 6 == 0 && last > hs.commit) /* replace an uncommitted suffix */
            start = last - rnd() % (last - hs.commit < TRUNC_MAX ? last - hs.commit : TRUNC_MAX);
        size_t n = 1 + rnd() % 24;
        for (size_t j = 0; j < n; j++)
            make_entry(start + j, b, j + 1, n, &batch[j], bufs[j]);
        uint64_t new_last = start + n - 1;
        uint64_t commit = hs.commit + rnd() % (new_last - hs.commit + 1);
        raft_ready_t rd;
        memset(&rd, 0, sizeof rd);
        rd.hs_changed = true;
        rd.hs = (raft_hard_state_t){.term = b, .vote = 1, .commit = commit};
        rd.entries = batch;
        rd.n_entries = n;
        if (store_save_ready(st, &rd) != 0)
            die(8);
        hs = rd.hs;
        if (start <= last)
            mem_truncate(&log, start);
        for (size_t j = 0; j < n; j++)
            mem_push(&log, &batch[j]);
        /* apply the committed entries, in one or two transactions */
        while (applied < commit) {
            uint64_t upto = applied + 1 + rnd() % (commit - applied);
            size_t from = (size_t)(applied + 1 - log.base);
            if (store_apply(st, &log.e[from], (size_t)(upto - applied), NULL) != 0)
                die(9);
            applied = upto;
        }
        mem_drop(&log, applied);
        if (round % 40 == 39) {
            store_snapshot_info_t si;
            if (store_snapshot_create(st, NULL, &si) != 0)
                die(10);
            if (si.index > 8 && store_log_compact(st, si.index - 8) != 0)
                die(11);
        }
    }
    die(0);
}

/* ---- the checker ------------------------------------------------------------------------ */

static void parse_value(const uint8_t *v, size_t len, uint64_t *idx, uint64_t *batch, size_t *j,
                        size_t *n)
{
    char s[64];
    cr_assert_lt(len, sizeof s);
    memcpy(s, v, len);
    s[len] = 0;
    unsigned long long a, b;
    cr_assert_eq(sscanf(s, "%llu:%llu:%zu/%zu", &a, &b, j, n), 4, "value \"%s\"", s);
    *idx = a;
    *batch = b;
}

static void check(const char *dir, uint64_t seed, int kill_no)
{
    store_t *st = t_open(dir, NULL);
    raft_boot_t boot;
    int rc = store_boot_load(st, &boot);
    cr_assert_eq(rc, 0, "seed %llu kill %d: boot: %s", (unsigned long long)seed, kill_no,
                 store_errmsg(st));
    uint64_t applied = store_applied_index(st);
    uint64_t last = boot.n_entries ? boot.entries[boot.n_entries - 1].index : boot.snap.index;
    cr_assert_leq(boot.snap.index, applied, "seed %llu kill %d", (unsigned long long)seed, kill_no);
    cr_assert_leq(applied, boot.hs.commit, "seed %llu kill %d: applied beyond commit",
                  (unsigned long long)seed, kill_no);
    cr_assert_leq(boot.hs.commit, last, "seed %llu kill %d: commit beyond the log",
                  (unsigned long long)seed, kill_no);
    if (boot.n_entries) {
        /* the newest batch is whole and is the one the hard state came with */
        const raft_entry_t *e = &boot.entries[boot.n_entries - 1];
        store_cmd_t cmd;
        cr_assert_eq(store_cmd_decode(e->data, e->len, &cmd), 0);
        uint64_t idx, batch;
        size_t j, n;
        parse_value(cmd.value, cmd.value_len, &idx, &batch, &j, &n);
        cr_assert_eq(idx, e->index);
        cr_assert_eq(j, n, "seed %llu kill %d: batch %llu saved partly (%zu of %zu)",
                     (unsigned long long)seed, kill_no, (unsigned long long)batch, j, n);
        cr_assert_eq(batch, boot.hs.term, "seed %llu kill %d: hard state and log disagree",
                     (unsigned long long)seed, kill_no);
        for (size_t k = 1; k < n && k < boot.n_entries; k++) {
            const raft_entry_t *p = &boot.entries[boot.n_entries - 1 - k];
            if (p->term != batch)
                cr_assert_fail("seed %llu kill %d: batch %llu misses entry %zu",
                               (unsigned long long)seed, kill_no, (unsigned long long)batch, n - k);
        }
    }
    store_boot_free(st, &boot);
    /* every index 1..applied applied exactly once */
    for (unsigned k = 0; k < KEYS; k++) {
        char key[8];
        snprintf(key, sizeof key, "k%02u", k);
        uint64_t version = applied >= (k ? k : KEYS) ? (applied - (k ? k : KEYS)) / KEYS + 1 : 0;
        uint64_t modrev = version ? applied - (applied - (k ? k : KEYS)) % KEYS : 0;
        store_kv_t kv;
        rc = store_kv_get(st, key, strlen(key), &kv);
        if (version == 0) {
            cr_assert_eq(rc, STORE_ENOTFOUND, "seed %llu kill %d: %s exists before applied %llu",
                         (unsigned long long)seed, kill_no, key, (unsigned long long)applied);
            continue;
        }
        cr_assert_eq(rc, 0, "seed %llu kill %d: %s missing", (unsigned long long)seed, kill_no,
                     key);
        cr_assert_eq(kv.version, version, "seed %llu kill %d: %s applied %llu times, want %llu",
                     (unsigned long long)seed, kill_no, key, (unsigned long long)kv.version,
                     (unsigned long long)version);
        cr_assert_eq(kv.mod_revision, modrev, "seed %llu kill %d", (unsigned long long)seed,
                     kill_no);
        uint64_t idx, batch;
        size_t j, n;
        parse_value(kv.value, kv.value_len, &idx, &batch, &j, &n);
        cr_assert_eq(idx, modrev);
        store_kv_clear(&kv);
    }
    store_close(st);
}

Test(store_crash, sigkill_at_random_moments_leaves_a_consistent_store, .timeout = 120)
{
    const char *env = getenv("CRASH_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    env = getenv("CRASH_KILLS");
    int kills = env ? atoi(env) : KILLS_DEFAULT;
    rng_state = seed * 2654435761u + 1;
    char dir[256];
    t_mkdtemp(dir, sizeof dir);
    cr_log_info("crash test seed %llu (CRASH_SEED to replay), %d kills", (unsigned long long)seed,
                kills);
    int exited = 0;
    for (int i = 0; i < kills; i++) {
        int pfd[2];
        cr_assert_eq(pipe(pfd), 0);
        uint64_t child_seed = rnd();
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            close(pfd[0]);
            rng_state = child_seed | 1;
            child(dir, pfd[1]);
        }
        close(pfd[1]);
        char c;
        ssize_t r;
        do {
            r = read(pfd[0], &c, 1); /* the child has opened the store and is writing */
        } while (r < 0 && errno == EINTR);
        close(pfd[0]);
        struct timespec ts = {0, (long)(rnd() % MAX_DELAY_US) * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        if (WIFEXITED(status)) {
            cr_assert_eq(WEXITSTATUS(status), 0, "seed %llu kill %d: child failed with %d",
                         (unsigned long long)seed, i, WEXITSTATUS(status));
            exited++;
        }
        check(dir, seed, i);
    }
    cr_assert_lt(exited, kills, "the child was never killed mid-run");
    t_rmdir(dir);
}
