/* sim.h — the deterministic Raft cluster simulator.
 *
 * sim_run() builds a cluster of Raft cores (3 or 5 voters, plus up to SIM_SPARES_MAX nodes
 * that join later as learners), and drives it through one schedule derived entirely from
 * opts->seed: message delay, loss, duplication and reordering; symmetric and one-way
 * partitions; crashes that lose unpersisted state, restarts, pauses; clock rates skewed within
 * max_drift; proposals, reads, leadership transfers and membership changes; and named
 * elections: the leader moves each election whose holder's session it proves over to a live
 * member, as the daemon will. After every event it checks election safety, log matching,
 * leader completeness, state machine safety, lease safety, read safety, session safety and
 * named election safety (sim_check.h); at the end it heals every fault and checks liveness.
 * The same options always give the same run, so a failing seed replays exactly.
 */
#ifndef ELECTD_SIM_H
#define ELECTD_SIM_H

#include "sim_check.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SIM_SPARES_MAX        2 /* nodes that boot empty and may be added later */
#define SIM_MEMBERS_MAX       7 /* the simulator keeps configurations this small */
#define SIM_ELECTIONS_MAX     4 /* named elections a schedule may model */
#define SIM_ELECTIONS_DEFAULT 3

/* Schedule shapes. MIXED is the everyday mix; CRASHY crashes and isolates leaders while
 * entries are in flight; LEASE isolates leaders, restarts followers at once and skews clocks
 * to the limit (lease overlaps); FIGURE8 plays the Raft paper's Figure 8 again and again with
 * seeded timing (an old-term entry reaches a majority under a new leader, which is cut off
 * right when it counts it committed, and the node holding a conflicting entry comes back);
 * ELECTIONS cuts named elections' holders off until the leader moves their elections, and
 * brings each back the moment the move is proposed, while the move cannot commit yet. */
typedef enum sim_mode {
    SIM_MODE_MIXED = 0,
    SIM_MODE_CRASHY = 1,
    SIM_MODE_LEASE = 2,
    SIM_MODE_FIGURE8 = 3,
    SIM_MODE_ELECTIONS = 4,
    SIM_MODE_COUNT = 5,
} sim_mode_t;

typedef struct sim_options {
    uint64_t seed;
    int nodes;            /* voters at boot: 3 or 5; 0 = chosen by the seed */
    int spares;           /* joiners, 0..SIM_SPARES_MAX; -1 = chosen by the seed */
    int mode;             /* sim_mode_t; -1 = chosen by the seed */
    uint32_t mutation;    /* raft_config.test_mutation (needs the raft_mutations core) */
    uint32_t chaos_ticks; /* length of the fault phase in election-tick units; 0 = default */
    int elections;        /* named elections modelled, 0..SIM_ELECTIONS_MAX; 0 = none, which
                             replays the schedules of simulators before the model (not with
                             mode ELECTIONS, which models SIM_ELECTIONS_DEFAULT then) */
    bool no_disk_faults;  /* no disk-full / fsync-error faults: replays the schedules of
                             simulators before them (--no-disk-faults) */
    bool ack_unpersisted; /* a broken driver (sim_node_t.ack_unpersisted), for the test that
                             the checkers catch it (--ack-unpersisted) */
    FILE *trace;          /* non-NULL: write a line per event (--verbose) */
} sim_options_t;

typedef struct sim_result {
    sim_violation_t violation; /* SIM_V_NONE when every check held */
    uint64_t violations;
    char msg[SIM_CHECK_MSG_MAX];
    int nodes, spares, mode;
    uint64_t events;      /* ticks, deliveries, actions processed */
    uint64_t sim_us;      /* simulated time at the end */
    uint64_t max_applied; /* highest index applied anywhere */
    uint64_t max_term;
    uint64_t heal_us;        /* simulated time from healing to the liveness goal */
    uint64_t disk_failures;  /* batches whose persist a disk fault failed (retried later) */
    uint64_t election_moves; /* times a named election started running on a member other
                                than the one that ran it last */
    uint64_t held_reads;     /* messages a quiet leader read at its next tick (node_batch.c) */
    uint64_t rounds_in_turn; /* heartbeat rounds a quiet leader sent to one follower */
} sim_result_t;

void sim_options_default(sim_options_t *o);

/* Runs one schedule. Returns the first violation's kind (SIM_V_NONE = 0 when all held) and
 * fills *res. Only fails for harness reasons by reporting SIM_V_CONTRACT. */
int sim_run(const sim_options_t *o, sim_result_t *res);

/* Installs crash handlers (SIGSEGV, SIGABRT, SIGBUS, and the sanitizers' death callback)
 * that print the seed of the schedule running when the process died, so that a core that
 * crashes instead of breaking a rule is still replayable. For test programs only. */
void sim_crash_report_install(void);

#endif
