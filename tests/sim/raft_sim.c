/* raft_sim.c — command line for the Raft simulator: run one seed with a trace, a range of
 * seeds, or a long random batch (docs/simulator.md).
 *
 *   raft_sim --seed N [--verbose]            one schedule (SIM_SEED=N does the same)
 *   raft_sim --seed N --schedules M          seeds N .. N+M-1
 *   raft_sim --schedules M --random          M schedules from a clock-derived base seed
 *   options: --nodes 3|5  --spares 0..2  --mode mixed|crashy|lease|figure8|elections
 *            --mutation K  --chaos-ticks T (fault phase length in ticks)  --keep-going
 *            --elections N (named elections modelled, 0..4; 0 replays schedules recorded
 *            before the election model)  --no-disk-faults (replays schedules recorded
 *            before the disk faults)  --ack-unpersisted (a broken driver that acknowledges
 *            what a failed persist did not store: the checkers must catch it)
 */
#include "sim.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAILURES_LISTED 20

static int parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: raft_sim [--seed N] [--schedules M] [--random] [--nodes 3|5]\n"
            "                [--spares 0..2] [--mode mixed|crashy|lease|figure8|elections]\n"
            "                [--elections 0..%d] [--mutation K] [--chaos-ticks T] [--keep-going]\n"
            "                [--no-disk-faults] [--ack-unpersisted] [--verbose]\n"
            "  SIM_SEED=N in the environment replays seed N (same as --seed N "
            "--schedules 1).\n",
            SIM_ELECTIONS_MAX);
}

static void print_replay(const sim_options_t *o, const sim_result_t *r)
{
    printf("  replay: SIM_SEED=%" PRIu64 " raft_sim --nodes %d --spares %d --mode %d", o->seed,
           r->nodes, r->spares, r->mode);
    if (o->mutation)
        printf(" --mutation %" PRIu32, o->mutation);
    if (o->chaos_ticks)
        printf(" --chaos-ticks %" PRIu32, o->chaos_ticks);
    if (o->elections != SIM_ELECTIONS_DEFAULT)
        printf(" --elections %d", o->elections);
    if (o->no_disk_faults)
        printf(" --no-disk-faults");
    if (o->ack_unpersisted)
        printf(" --ack-unpersisted");
    printf(" --verbose\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"seed", required_argument, NULL, 's'},
                                             {"schedules", required_argument, NULL, 'n'},
                                             {"random", no_argument, NULL, 'r'},
                                             {"nodes", required_argument, NULL, 'N'},
                                             {"spares", required_argument, NULL, 'S'},
                                             {"mode", required_argument, NULL, 'm'},
                                             {"mutation", required_argument, NULL, 'M'},
                                             {"chaos-ticks", required_argument, NULL, 'c'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {"keep-going", no_argument, NULL, 'k'},
                                             {"elections", required_argument, NULL, 'e'},
                                             {"no-disk-faults", no_argument, NULL, 'D'},
                                             {"ack-unpersisted", no_argument, NULL, 'A'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    sim_options_t o;
    sim_options_default(&o);
    uint64_t first = 1, count = 1, v;
    bool random_seeds = false, verbose = false, keep_going = false, count_given = false;
    int c;
    while ((c = getopt_long(argc, argv, "s:n:rN:S:m:M:c:vke:DAh", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (parse_u64(optarg, &first) != 0)
                goto bad;
            break;
        case 'n':
            if (parse_u64(optarg, &count) != 0 || count == 0)
                goto bad;
            count_given = true;
            break;
        case 'r':
            random_seeds = true;
            break;
        case 'N':
            if (parse_u64(optarg, &v) != 0 || (v != 3 && v != 5))
                goto bad;
            o.nodes = (int)v;
            break;
        case 'S':
            if (parse_u64(optarg, &v) != 0 || v > SIM_SPARES_MAX)
                goto bad;
            o.spares = (int)v;
            break;
        case 'm':
            if (strcmp(optarg, "mixed") == 0)
                o.mode = SIM_MODE_MIXED;
            else if (strcmp(optarg, "crashy") == 0)
                o.mode = SIM_MODE_CRASHY;
            else if (strcmp(optarg, "lease") == 0)
                o.mode = SIM_MODE_LEASE;
            else if (strcmp(optarg, "figure8") == 0)
                o.mode = SIM_MODE_FIGURE8;
            else if (strcmp(optarg, "elections") == 0)
                o.mode = SIM_MODE_ELECTIONS;
            else if (parse_u64(optarg, &v) == 0 && v < SIM_MODE_COUNT)
                o.mode = (int)v;
            else
                goto bad;
            break;
        case 'M':
            if (parse_u64(optarg, &v) != 0 || v > 100)
                goto bad;
            o.mutation = (uint32_t)v;
            break;
        case 'c':
            if (parse_u64(optarg, &v) != 0 || v == 0 || v > 100000)
                goto bad;
            o.chaos_ticks = (uint32_t)v;
            break;
        case 'e':
            if (parse_u64(optarg, &v) != 0 || v > SIM_ELECTIONS_MAX)
                goto bad;
            o.elections = (int)v;
            break;
        case 'D':
            o.no_disk_faults = true;
            break;
        case 'A':
            o.ack_unpersisted = true;
            break;
        case 'v':
            verbose = true;
            break;
        case 'k':
            keep_going = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            goto bad;
        }
    }
    if (optind != argc)
        goto bad;
    const char *env = getenv("SIM_SEED");
    if (env != NULL && *env != '\0') {
        if (parse_u64(env, &first) != 0) {
            fprintf(stderr, "raft_sim: SIM_SEED must be a number\n");
            return 2;
        }
        count = 1;
        random_seeds = false;
    } else if (random_seeds) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        first = ((uint64_t)ts.tv_sec * 1000000007ull) ^ (uint64_t)ts.tv_nsec;
        first &= (1ull << 48) - 1;
        if (!count_given)
            count = 1000;
    }
    /* line-buffered: a crash in the core must not eat the trace or earlier verdicts */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (verbose)
        o.trace = stdout;
    sim_crash_report_install();
    printf("raft_sim: %" PRIu64 " schedule(s) from seed %" PRIu64 "%s\n", count, first,
           random_seeds ? " (random base)" : "");

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t failures = 0, events = 0, moves = 0, disk = 0, held = 0, in_turn = 0,
             by_kind[16] = {0};
    for (uint64_t i = 0; i < count; i++) {
        o.seed = first + i;
        sim_result_t r;
        int kind = sim_run(&o, &r);
        events += r.events;
        moves += r.election_moves;
        disk += r.disk_failures;
        held += r.held_reads;
        in_turn += r.rounds_in_turn;
        if (count == 1)
            printf("seed %" PRIu64 ": mode %d voters %d spares %d, %" PRIu64 " events, %.3f s "
                   "simulated, applied %" PRIu64 ", term %" PRIu64 ", healed in %.1f ms%s",
                   o.seed, r.mode, r.nodes, r.spares, r.events, (double)r.sim_us / 1e6,
                   r.max_applied, r.max_term, (double)r.heal_us / 1000.0, o.elections ? "" : "\n");
        if (count == 1 && o.elections)
            printf(", named elections moved %" PRIu64 " times\n", r.election_moves);
        if (kind == SIM_V_NONE)
            continue;
        failures++;
        by_kind[kind & 15]++;
        if (failures <= FAILURES_LISTED) {
            printf("VIOLATION seed %" PRIu64 ": %s\n", o.seed, r.msg);
            print_replay(&o, &r);
        }
        if (!keep_going)
            break;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("raft_sim: %" PRIu64 " violation(s), %" PRIu64 " events, %" PRIu64
           " named election moves, %" PRIu64 " failed persists, %" PRIu64
           " messages held by a quiet leader, %" PRIu64 " rounds in turn, %.1f s\n",
           failures, events, moves, disk, held, in_turn, secs);
    for (int k = 1; k < 16; k++)
        if (by_kind[k])
            printf("  %-45s %" PRIu64 "\n", sim_violation_name(k), by_kind[k]);
    return failures ? 1 : 0;
bad:
    usage(stderr);
    return 2;
}
