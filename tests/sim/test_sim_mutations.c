/* test_sim_mutations.c — the checks bite: over the core built with RAFT_MUTATIONS, each
 * deliberately broken Raft rule (raft_config.test_mutation) must be caught by the simulator
 * within SEEDS_MAX schedules, and the unbroken core must pass the same schedules.
 */
#include "raft.h"
#include "sim.h"

#include <criterion/criterion.h>
#include <inttypes.h>

#define SEEDS_MAX 500

/* Returns the first seed in 1..SEEDS_MAX whose violation is one of `kinds` (a bit per
 * sim_violation_t), 0 if none is. Violations of other kinds are counted in *other: they are
 * real findings too, but not proof that this rule's checker bites. */
static uint64_t first_violation(uint32_t mutation, int mode, unsigned kinds, sim_result_t *r,
                                unsigned *other)
{
    sim_options_t o;
    sim_options_default(&o);
    o.mutation = mutation;
    o.mode = mode;
    sim_crash_report_install();
    *other = 0;
    for (uint64_t seed = 1; seed <= SEEDS_MAX; seed++) {
        o.seed = seed;
        int kind = sim_run(&o, r);
        if (kind == SIM_V_NONE)
            continue;
        if (kinds & (1u << kind))
            return seed;
        if ((*other)++ == 0)
            cr_log_warn("mutation %" PRIu32 " seed %" PRIu64 ": other violation: %s", mutation,
                        seed, r->msg);
    }
    return 0;
}

static void expect_caught(uint32_t mutation, int mode, unsigned kinds)
{
    sim_result_t r;
    unsigned other;
    uint64_t seed = first_violation(mutation, mode, kinds, &r, &other);
    cr_assert_neq(seed, 0, "mutation %" PRIu32 " survived %d schedules (%u other violations)",
                  mutation, SEEDS_MAX, other);
    cr_log_info("mutation %" PRIu32 ": caught at seed %" PRIu64 " (mode %d): %s", mutation, seed,
                r.mode, r.msg);
}

#define KIND(k) (1u << SIM_V_##k)
/* what losing a committed entry shows up as */
#define LOST_COMMIT                                                                                \
    (KIND(LEADER_COMPLETENESS) | KIND(STATE_MACHINE) | KIND(LOG_MATCHING) | KIND(READ))

Test(mutations, unbroken_core_passes, .timeout = 120)
{
    sim_options_t o;
    sim_options_default(&o);
    for (uint64_t seed = 1; seed <= 100; seed++) {
        o.seed = seed;
        sim_result_t r;
        cr_assert_eq(sim_run(&o, &r), SIM_V_NONE, "seed %" PRIu64 ": %s", seed, r.msg);
    }
}

Test(mutations, vote_any_log, .timeout = 120)
{
    expect_caught(RAFT_MUT_VOTE_ANY_LOG, -1, LOST_COMMIT);
}

Test(mutations, commit_old_term, .timeout = 120)
{
    /* needs the Raft paper's Figure 8: the scripted mode replays it with seeded timing */
    expect_caught(RAFT_MUT_COMMIT_OLD_TERM, SIM_MODE_FIGURE8, LOST_COMMIT);
}

Test(mutations, no_stickiness, .timeout = 120)
{
    expect_caught(RAFT_MUT_NO_STICKINESS, SIM_MODE_LEASE, KIND(LEASE));
}

Test(mutations, vote_after_restart, .timeout = 120)
{
    expect_caught(RAFT_MUT_VOTE_AFTER_RESTART, SIM_MODE_LEASE, KIND(LEASE));
}

Test(mutations, long_lease, .timeout = 120)
{
    expect_caught(RAFT_MUT_LONG_LEASE, SIM_MODE_LEASE, KIND(LEASE));
}

Test(mutations, session_expiry_without_drift, .timeout = 120)
{
    /* named elections: a leader that expires a member after S of its own ticks, not
     * ceil(S(1+d)/(1-d)), declares a session over while a slow-clocked member still holds it */
    expect_caught(RAFT_MUT_SESSION_NO_DRIFT, SIM_MODE_LEASE, KIND(SESSION));
}

Test(mutations, unbroken_core_passes_the_holder_cut_attacks, .timeout = 120)
{
    /* the schedules below catch the two mutations; the real core must pass them */
    sim_options_t o;
    sim_options_default(&o);
    o.mode = SIM_MODE_ELECTIONS;
    for (uint64_t seed = 1; seed <= 200; seed++) {
        o.seed = seed;
        sim_result_t r;
        cr_assert_eq(sim_run(&o, &r), SIM_V_NONE, "seed %" PRIu64 ": %s", seed, r.msg);
    }
}

Test(mutations, session_renewed_during_a_hold, .timeout = 120)
{
    /* named elections: a holder whose session was proven over is renewed after the leader
     * proposed moving its elections, before that move is committed and held by it: it runs
     * them on its old table while the successor starts them once the move commits */
    expect_caught(RAFT_MUT_SESSION_NO_HOLD, SIM_MODE_ELECTIONS, KIND(NAMED));
}

Test(mutations, session_renewed_without_the_commit_index, .timeout = 120)
{
    /* named elections: renewals that do not stand for the leader's commit index (a new
     * leader before its term-start entry commits, a lagging member, a pending hold) let a
     * member run an election its table no longer gives it */
    expect_caught(RAFT_MUT_SESSION_STALE, SIM_MODE_ELECTIONS, KIND(NAMED));
}

Test(mutations, leader_renews_its_own_session_from_now, .timeout = 120)
{
    /* named elections: a leader that renews its own session from its current tick (while its
     * lease lasts) rather than from the start of a round a quorum echoed holds it for up to a
     * lease longer than its successor counts, from its voters' last contact with it: the
     * successor declares the session over while it still holds (and moves its elections) */
    expect_caught(RAFT_MUT_SESSION_SELF_NOW, SIM_MODE_ELECTIONS, KIND(SESSION) | KIND(NAMED));
}

Test(mutations, leader_finds_its_own_session_over_while_it_holds_it, .timeout = 120)
{
    /* named elections: a leader whose judgement of its own session lags its renewals
     * declares itself over (and moves its own elections away) while it still holds its
     * session: the session check judges a leader's view of itself too */
    expect_caught(RAFT_MUT_SESSION_SELF_UNHEARD, SIM_MODE_ELECTIONS, KIND(SESSION));
}

Test(mutations, shim_releases_the_lease_before_the_workload_is_gone, .timeout = 120)
{
    /* released lease (issue 17): a dead leader's shim that tells the others its lease is
     * released while the workload still runs (until its watchdog's deadline) lets the
     * successor take a lease and start its workload beside it */
    expect_caught(RAFT_MUT_RELEASE_EARLY, SIM_MODE_MIXED, KIND(LEASE));
}

/* The driver's side of a storage fault: a node whose persist failed (disk full, fsync error)
 * must not acknowledge the batch. A driver that sends the append responses anyway
 * (--ack-unpersisted) is caught as a lost acknowledged entry once the node restarts from
 * what its disk holds; the real driver passes the same schedules. */
Test(mutations, ack_after_failed_persist, .timeout = 120)
{
    sim_options_t o;
    sim_options_default(&o);
    o.mode = SIM_MODE_MIXED;
    o.ack_unpersisted = true;
    sim_result_t r;
    uint64_t caught = 0, other = 0, failures = 0;
    for (uint64_t seed = 1; seed <= SEEDS_MAX && caught == 0; seed++) {
        o.seed = seed;
        int kind = sim_run(&o, &r);
        failures += r.disk_failures;
        if (kind == SIM_V_DURABILITY)
            caught = seed;
        else if (kind != SIM_V_NONE)
            other++;
    }
    cr_assert_gt(failures, 0, "no persist failed in the schedules");
    cr_assert_neq(caught, 0,
                  "acknowledging failed persists survived %d schedules (%" PRIu64
                  " other violations)",
                  SEEDS_MAX, other);
    cr_log_info("acknowledging failed persists: caught at seed %" PRIu64 ": %s", caught, r.msg);

    o.ack_unpersisted = false;
    failures = 0;
    for (uint64_t seed = 1; seed <= caught; seed++) {
        o.seed = seed;
        cr_assert_eq(sim_run(&o, &r), SIM_V_NONE, "seed %" PRIu64 ": %s", seed, r.msg);
        failures += r.disk_failures;
    }
    cr_assert_gt(failures, 0, "the real driver met no failed persist in seeds 1..%" PRIu64, caught);
}
