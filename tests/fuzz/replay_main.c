/* replay_main.c — runs a libFuzzer-style target (fuzz.h) without libFuzzer: a seeded PRNG
 * stream of random inputs and of mutations of valid seeds, for a bounded number of runs and
 * a bounded time. Linked with every fuzz target as <target>_replay and registered with CTest,
 * so the normal and sanitizer builds exercise the targets on every test run; libFuzzer
 * (tests/fuzz/run.sh) is for the long, coverage-guided runs.
 *
 *   <target>_replay [--runs N] [--seed S] [--max-seconds T] [--corpus DIR]... [FILE...]
 *   <target>_replay --write-seeds DIR
 *
 * FILEs are run once each (to replay a crash libFuzzer saved). On a crash the input being
 * run is written to ./crash-replay-<target> and the seed and run number are printed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"

/* Weak: a target without seeds links too, and the driver sees NULL. */
__attribute__((weak)) size_t fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
/* Present only in sanitizer builds: lets us save the input when ASan/UBSan report. */
__attribute__((weak)) void __sanitizer_set_death_callback(void (*cb)(void));

enum {
    SEEDS_MAX = 1024,     /* seeds + corpus files kept */
    RANDOM_LEN_MAX = 512, /* bytes of a purely random input */
    MUTATIONS_MAX = 6,    /* mutations applied to one seed per run */
    INPUT_MAX = FUZZ_SEED_MAX + 1024,
};

struct seed {
    uint8_t *data;
    size_t len;
};

static struct seed seeds[SEEDS_MAX];
static size_t n_seeds;

/* The run in progress, for the crash handlers. */
static const uint8_t *volatile cur_data;
static volatile size_t cur_len;
static volatile unsigned long cur_run;
static unsigned long long run_seed;
static char crash_path[256];

/* ---- PRNG (splitmix64: tiny, full-period, good enough for choosing mutations) ---- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform-enough in [0, n); n > 0. */
static size_t rng_below(size_t n)
{
    return (size_t)(rng_next() % n);
}

/* ---- crash reporting ---- */

/* Only async-signal-safe calls from here on: this runs in signal handlers. */
static void say(const char *s)
{
    ssize_t ignored = write(STDERR_FILENO, s, strlen(s));
    (void)ignored;
}

static void say_number(unsigned long long v)
{
    char digits[24];
    size_t i = sizeof(digits) - 1;
    digits[i] = '\0';
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0 && i > 0);
    say(digits + i);
}

static void save_current_input(void)
{
    int fd = open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        size_t done = 0;
        while (done < cur_len) {
            ssize_t n = write(fd, cur_data + done, cur_len - done);
            if (n <= 0) {
                break;
            }
            done += (size_t)n;
        }
        close(fd);
    }
    say("replay: crash in run ");
    say_number(cur_run);
    say(" of seed ");
    say_number(run_seed);
    say("; input saved to ");
    say(crash_path);
    say("\n");
}

static void on_fatal_signal(int sig)
{
    save_current_input();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_crash_handlers(const char *argv0)
{
    const char *base = strrchr(argv0, '/');
    base = base ? base + 1 : argv0;
    snprintf(crash_path, sizeof(crash_path), "crash-replay-%s", base);
    const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        signal(sigs[i], on_fatal_signal);
    }
    if (__sanitizer_set_death_callback != NULL) {
        __sanitizer_set_death_callback(save_current_input);
    }
}

/* Runs the target on an exactly sized heap copy, so sanitizers see any overread. */
static void run_one(const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len); /* malloc(0) too: any access to it is reported */
    if (copy == NULL && len == 0) {
        copy = malloc(1);
    }
    if (copy == NULL) {
        fprintf(stderr, "replay: out of memory\n");
        exit(2);
    }
    if (len > 0) {
        memcpy(copy, data, len);
    }
    cur_data = copy;
    cur_len = len;
    LLVMFuzzerTestOneInput(copy, len);
    cur_data = NULL;
    cur_len = 0;
    free(copy);
}

/* ---- seeds and corpus ---- */

static void seed_add(const uint8_t *data, size_t len)
{
    if (n_seeds == SEEDS_MAX || len > FUZZ_SEED_MAX) {
        return;
    }
    uint8_t *p = malloc(len > 0 ? len : 1);
    if (p == NULL) {
        return;
    }
    memcpy(p, data, len);
    seeds[n_seeds++] = (struct seed){p, len};
}

static int read_file(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return -1;
    }
    *len = fread(buf, 1, cap, f);
    int too_long = fgetc(f) != EOF;
    int err = ferror(f);
    fclose(f);
    return err || too_long ? -1 : 0;
}

static void seeds_from_target(uint8_t *buf)
{
    if (fuzz_seed == NULL) {
        return;
    }
    for (unsigned i = 0; i < SEEDS_MAX; i++) {
        size_t len = fuzz_seed(i, buf, FUZZ_SEED_MAX);
        if (len == 0) {
            break;
        }
        seed_add(buf, len);
    }
}

static void seeds_from_dir(const char *dir, uint8_t *buf)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "replay: cannot open corpus %s\n", dir);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n_seeds < SEEDS_MAX) {
        if (de->d_name[0] == '.') {
            continue;
        }
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        size_t len;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
            read_file(path, buf, FUZZ_SEED_MAX, &len) == 0) {
            seed_add(buf, len);
        }
    }
    closedir(d);
}

static int write_seeds(const char *dir)
{
    mkdir(dir, 0755);
    for (size_t i = 0; i < n_seeds; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/seed-%04zu", dir, i);
        FILE *f = fopen(path, "wb");
        if (f == NULL || fwrite(seeds[i].data, 1, seeds[i].len, f) != seeds[i].len) {
            fprintf(stderr, "replay: cannot write %s\n", path);
            if (f != NULL) {
                fclose(f);
            }
            return 1;
        }
        fclose(f);
    }
    printf("replay: wrote %zu seeds to %s\n", n_seeds, dir);
    return 0;
}

/* ---- mutations ---- */

static const uint32_t interesting[] = {0,       1,          2,          0x7f,       0x80,
                                       0xff,    0x100,      0x7fff,     0x8000,     0xffff,
                                       0x10000, 0x7fffffff, 0x80000000, 0xffffffff, 16,
                                       64,      4096,       4097,       1u << 20,   (1u << 20) + 1};

/* Applies one random mutation to buf[0..*len) (capacity INPUT_MAX). */
static void mutate(uint8_t *buf, size_t *len)
{
    size_t n = *len;
    switch (rng_below(10)) {
    case 0: /* flip a bit */
        if (n > 0) {
            buf[rng_below(n)] ^= (uint8_t)(1u << rng_below(8));
        }
        break;
    case 1: /* random byte */
        if (n > 0) {
            buf[rng_below(n)] = (uint8_t)rng_next();
        }
        break;
    case 2: /* interesting little-endian value of 1, 2 or 4 bytes */
        if (n > 0) {
            size_t width = (size_t)1 << rng_below(3);
            size_t at = rng_below(n);
            uint32_t v = interesting[rng_below(sizeof(interesting) / sizeof(interesting[0]))];
            for (size_t i = 0; i < width && at + i < n; i++) {
                buf[at + i] = (uint8_t)(v >> (8 * i));
            }
        }
        break;
    case 8: /* add or subtract a small number to a 1, 2 or 4 byte little-endian field */
        if (n > 0) {
            size_t width = (size_t)1 << rng_below(3);
            size_t at = rng_below(n);
            uint32_t v = 0;
            for (size_t i = 0; i < width && at + i < n; i++) {
                v |= (uint32_t)buf[at + i] << (8 * i);
            }
            uint32_t delta = 1 + (uint32_t)rng_below(4);
            v = rng_below(2) ? v + delta : v - delta;
            for (size_t i = 0; i < width && at + i < n; i++) {
                buf[at + i] = (uint8_t)(v >> (8 * i));
            }
        }
        break;
    case 3: /* insert random bytes */
    {
        size_t k = 1 + rng_below(16);
        if (n + k <= INPUT_MAX) {
            size_t at = rng_below(n + 1);
            memmove(buf + at + k, buf + at, n - at);
            for (size_t i = 0; i < k; i++) {
                buf[at + i] = (uint8_t)rng_next();
            }
            n += k;
        }
        break;
    }
    case 4: /* delete a range */
        if (n > 0) {
            size_t at = rng_below(n);
            size_t k = 1 + rng_below(n - at < 32 ? n - at : 32);
            memmove(buf + at, buf + at + k, n - at - k);
            n -= k;
        }
        break;
    case 5: /* truncate */
        n = rng_below(n + 1);
        break;
    case 6: /* copy a chunk within the input */
        if (n > 1) {
            size_t from = rng_below(n), to = rng_below(n);
            size_t k = 1 + rng_below(n - (from > to ? from : to));
            memmove(buf + to, buf + from, k);
        }
        break;
    case 7: /* splice: tail from another seed */
        if (n_seeds > 0) {
            const struct seed *s = &seeds[rng_below(n_seeds)];
            size_t at = rng_below(n + 1), from = rng_below(s->len + 1);
            size_t k = s->len - from;
            if (at + k <= INPUT_MAX) {
                memcpy(buf + at, s->data + from, k);
                n = at + k;
            }
        }
        break;
    default: /* append random bytes */
    {
        size_t k = 1 + rng_below(8);
        if (n + k <= INPUT_MAX) {
            for (size_t i = 0; i < k; i++) {
                buf[n + i] = (uint8_t)rng_next();
            }
            n += k;
        }
        break;
    }
    }
    *len = n;
}

static size_t make_input(uint8_t *buf)
{
    size_t len;
    if (n_seeds == 0 || rng_below(4) == 0) {
        len = rng_below(rng_below(8) == 0 ? INPUT_MAX + 1 : RANDOM_LEN_MAX + 1);
        for (size_t i = 0; i < len; i++) {
            buf[i] = (uint8_t)rng_next();
        }
        return len;
    }
    const struct seed *s = &seeds[rng_below(n_seeds)];
    memcpy(buf, s->data, s->len);
    len = s->len;
    size_t k = 1 + rng_below(MUTATIONS_MAX);
    for (size_t i = 0; i < k; i++) {
        mutate(buf, &len);
    }
    return len;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--runs N] [--seed S] [--max-seconds T] [--corpus DIR]... [FILE...]\n"
            "       %s --write-seeds DIR\n",
            argv0, argv0);
    return 2;
}

int main(int argc, char **argv)
{
    unsigned long runs = 10000;
    double max_seconds = 60;
    const char *seeds_out = NULL;
    const char *corpus[16];
    size_t n_corpus = 0;
    run_seed = 1;

    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (i + 1 >= argc) {
            return usage(argv[0]);
        }
        const char *arg = argv[i], *val = argv[++i];
        if (strcmp(arg, "--runs") == 0) {
            runs = strtoul(val, NULL, 10);
        } else if (strcmp(arg, "--seed") == 0) {
            run_seed = strtoull(val, NULL, 10);
        } else if (strcmp(arg, "--max-seconds") == 0) {
            max_seconds = strtod(val, NULL);
        } else if (strcmp(arg, "--corpus") == 0 && n_corpus < 16) {
            corpus[n_corpus++] = val;
        } else if (strcmp(arg, "--write-seeds") == 0) {
            seeds_out = val;
        } else {
            return usage(argv[0]);
        }
    }

    int rc = 0;
    uint8_t *buf = malloc(INPUT_MAX);
    if (buf == NULL) {
        return 2;
    }
    install_crash_handlers(argv[0]);
    seeds_from_target(buf);
    for (size_t c = 0; c < n_corpus; c++) {
        seeds_from_dir(corpus[c], buf);
    }
    if (seeds_out != NULL) {
        rc = write_seeds(seeds_out);
        goto done;
    }

    if (i < argc) { /* replay the given files once each */
        for (; i < argc; i++) {
            size_t len;
            if (read_file(argv[i], buf, INPUT_MAX, &len) != 0) {
                fprintf(stderr, "replay: cannot read %s (or over %d bytes)\n", argv[i], INPUT_MAX);
                rc = 2;
                goto done;
            }
            run_one(buf, len);
            printf("replay: %s ok\n", argv[i]);
        }
        goto done;
    }

    printf("replay: seed %llu, up to %lu runs or %.0f s, %zu seeds\n", run_seed, runs, max_seconds,
           n_seeds);
    fflush(stdout);
    rng_state = run_seed;
    /* Every seed as is first: they must pass before their mutations mean anything. */
    for (size_t s = 0; s < n_seeds; s++) {
        run_one(seeds[s].data, seeds[s].len);
    }
    double start = now_seconds();
    unsigned long done = 0;
    for (; done < runs; done++) {
        if ((done & 255) == 0 && now_seconds() - start > max_seconds) {
            printf("replay: time bound reached\n");
            break;
        }
        cur_run = done;
        size_t len = make_input(buf);
        run_one(buf, len);
    }
    printf("replay: %lu runs in %.1f s, no crash\n", done, now_seconds() - start);

done:
    for (size_t s = 0; s < n_seeds; s++) {
        free(seeds[s].data);
    }
    free(buf);
    return rc;
}
