/* test_sim_check.c — the simulator's checkers on hand-made histories: each rule must accept a
 * correct history and catch a violating one (a checker that cannot fail proves nothing).
 */
#include "sim_check.h"

#include <criterion/criterion.h>
#include <string.h>

/* A log as an array: terms[i] is the term at index first + i; hashes follow from terms unless
 * overridden in hash_override. */
typedef struct arr_log {
    uint64_t first;
    size_t n;
    uint64_t terms[16];
    uint64_t hash_bump[16];
} arr_log_t;

static int arr_entry(void *ctx, uint64_t index, uint64_t *term, uint64_t *hash)
{
    arr_log_t *l = ctx;
    if (index < l->first || index >= l->first + l->n)
        return -1;
    size_t i = (size_t)(index - l->first);
    *term = l->terms[i];
    *hash = sim_entry_hash(index, l->terms[i], 0, NULL, 0) + l->hash_bump[i];
    return 0;
}

static sim_log_view_t view(uint64_t node, arr_log_t *l)
{
    sim_log_view_t v = {
        .node = node, .first = l->first, .last = l->first + l->n - 1, .ctx = l, .entry = arr_entry};
    return v;
}

static sim_check_t chk;

static void setup(void)
{
    sim_check_init(&chk);
}

static void teardown(void)
{
    sim_check_free(&chk);
}

TestSuite(sim_check, .init = setup, .fini = teardown);

Test(sim_check, election_one_leader_per_term)
{
    cr_assert_eq(sim_check_leader(&chk, 1, 1, 10), 0);
    cr_assert_eq(sim_check_leader(&chk, 1, 1, 20), 0, "the same leader seen twice is fine");
    cr_assert_eq(sim_check_leader(&chk, 2, 2, 30), 0);
    cr_assert_eq(sim_check_leader(&chk, 1000, 3, 40), 0, "terms far apart");
    cr_assert_eq(sim_check_leader(&chk, 2, 3, 50), SIM_V_ELECTION);
    cr_assert_eq(chk.first, SIM_V_ELECTION);
    cr_assert(strstr(chk.msg, "term 2") != NULL, "message names the term: %s", chk.msg);
}

Test(sim_check, first_violation_is_kept)
{
    sim_check_leader(&chk, 1, 1, 0);
    sim_check_leader(&chk, 1, 2, 0);
    sim_check_fail(&chk, SIM_V_LIVENESS, "later");
    cr_assert_eq(chk.first, SIM_V_ELECTION);
    cr_assert_eq(chk.violations, 2);
}

Test(sim_check, state_machine_same_entries_pass)
{
    uint64_t h1 = sim_entry_hash(1, 1, 0, "a", 1), h2 = sim_entry_hash(2, 1, 0, "b", 1);
    uint64_t d1 = sim_digest_next(0, h1), d2 = sim_digest_next(d1, h2);
    for (uint64_t node = 1; node <= 3; node++) {
        cr_assert_eq(sim_check_applied(&chk, node, 1, 1, 1, h1, d1), 0);
        cr_assert_eq(sim_check_applied(&chk, node, 2, 2, 1, h2, d2), 0);
    }
    cr_assert_eq(sim_check_snapshot(&chk, 4, 2, 1, d2), 0, "a snapshot with the same state");
    cr_assert_eq(chk.max_applied, 2);
}

Test(sim_check, state_machine_different_entry_at_index)
{
    uint64_t ha = sim_entry_hash(5, 2, 0, "a", 1), hb = sim_entry_hash(5, 3, 0, "b", 1);
    cr_assert_eq(sim_check_applied(&chk, 1, 2, 5, 2, ha, 11), 0);
    cr_assert_eq(sim_check_applied(&chk, 2, 3, 5, 3, hb, 12), SIM_V_STATE_MACHINE);
}

Test(sim_check, state_machine_same_term_other_data)
{
    uint64_t ha = sim_entry_hash(5, 2, 0, "a", 1), hb = sim_entry_hash(5, 2, 0, "b", 1);
    cr_assert_neq(ha, hb);
    cr_assert_eq(sim_check_applied(&chk, 1, 2, 5, 2, ha, 11), 0);
    cr_assert_eq(sim_check_applied(&chk, 2, 2, 5, 2, hb, 12), SIM_V_STATE_MACHINE);
}

Test(sim_check, state_machine_digest_diverges)
{
    /* same entry at the index, different state before it (e.g. a bad snapshot) */
    uint64_t h = sim_entry_hash(3, 1, 0, "x", 1);
    cr_assert_eq(sim_check_applied(&chk, 1, 1, 3, 1, h, sim_digest_next(7, h)), 0);
    cr_assert_eq(sim_check_applied(&chk, 2, 1, 3, 1, h, sim_digest_next(8, h)),
                 SIM_V_STATE_MACHINE);
}

Test(sim_check, snapshot_with_wrong_state)
{
    uint64_t h = sim_entry_hash(3, 1, 0, "x", 1);
    cr_assert_eq(sim_check_applied(&chk, 1, 1, 3, 1, h, 99), 0);
    cr_assert_eq(sim_check_snapshot(&chk, 2, 3, 1, 98), SIM_V_STATE_MACHINE);
}

Test(sim_check, snapshot_with_wrong_term)
{
    uint64_t h = sim_entry_hash(3, 1, 0, "x", 1);
    cr_assert_eq(sim_check_applied(&chk, 1, 1, 3, 1, h, 99), 0);
    cr_assert_eq(sim_check_snapshot(&chk, 2, 3, 2, 99), SIM_V_STATE_MACHINE);
}

Test(sim_check, snapshot_first_then_apply_mismatch)
{
    cr_assert_eq(sim_check_snapshot(&chk, 2, 3, 1, 98), 0);
    uint64_t h = sim_entry_hash(3, 1, 0, "x", 1);
    cr_assert_eq(sim_check_applied(&chk, 1, 1, 3, 1, h, 99), SIM_V_STATE_MACHINE);
}

Test(sim_check, log_matching_accepts_diverging_tails)
{
    /* a: 1 1 2 2   b: 1 1 3   (diverge after index 2: allowed) */
    arr_log_t a = {.first = 1, .n = 4, .terms = {1, 1, 2, 2}};
    arr_log_t b = {.first = 1, .n = 3, .terms = {1, 1, 3}};
    sim_log_view_t va = view(1, &a), vb = view(2, &b);
    cr_assert_eq(sim_check_log_matching(&chk, &va, &vb), 0);
    /* compacted prefixes are skipped */
    arr_log_t c = {.first = 3, .n = 2, .terms = {2, 2}};
    sim_log_view_t vc = view(3, &c);
    cr_assert_eq(sim_check_log_matching(&chk, &va, &vc), 0);
}

Test(sim_check, log_matching_catches_earlier_difference)
{
    /* same (index 3, term 2) but index 2 differs */
    arr_log_t a = {.first = 1, .n = 3, .terms = {1, 1, 2}};
    arr_log_t b = {.first = 1, .n = 3, .terms = {1, 2, 2}};
    sim_log_view_t va = view(1, &a), vb = view(2, &b);
    cr_assert_eq(sim_check_log_matching(&chk, &va, &vb), SIM_V_LOG_MATCHING);
    cr_assert(strstr(chk.msg, "index 2") != NULL, "%s", chk.msg);
}

Test(sim_check, log_matching_catches_same_index_term_other_entry)
{
    arr_log_t a = {.first = 1, .n = 2, .terms = {1, 1}};
    arr_log_t b = {.first = 1, .n = 2, .terms = {1, 1}, .hash_bump = {0, 1}};
    sim_log_view_t va = view(1, &a), vb = view(2, &b);
    cr_assert_eq(sim_check_log_matching(&chk, &va, &vb), SIM_V_LOG_MATCHING);
}

/* Entries 1..3 applied with terms 1,1,2 while nodes were in term 2 (so committed by term 2). */
static void commit_three(void)
{
    uint64_t terms[4] = {0, 1, 1, 2};
    uint64_t d = 0;
    for (uint64_t i = 1; i <= 3; i++) {
        uint64_t h = sim_entry_hash(i, terms[i], 0, NULL, 0);
        d = sim_digest_next(d, h);
        cr_assert_eq(sim_check_applied(&chk, 1, 2, i, terms[i], h, d), 0);
    }
}

Test(sim_check, leader_completeness_holds)
{
    commit_three();
    arr_log_t l = {.first = 1, .n = 4, .terms = {1, 1, 2, 3}};
    sim_log_view_t v = view(2, &l);
    cr_assert_eq(sim_check_leader_log(&chk, 3, &v), 0);
    arr_log_t compacted = {.first = 3, .n = 1, .terms = {2}};
    v = view(3, &compacted);
    cr_assert_eq(sim_check_leader_log(&chk, 3, &v), 0, "compacted entries are not required");
}

Test(sim_check, leader_completeness_missing_entry)
{
    commit_three();
    arr_log_t l = {.first = 1, .n = 2, .terms = {1, 1}};
    sim_log_view_t v = view(2, &l);
    cr_assert_eq(sim_check_leader_log(&chk, 3, &v), SIM_V_LEADER_COMPLETENESS);
}

Test(sim_check, leader_completeness_wrong_term)
{
    commit_three();
    arr_log_t l = {.first = 1, .n = 3, .terms = {1, 1, 1}};
    sim_log_view_t v = view(2, &l);
    cr_assert_eq(sim_check_leader_log(&chk, 3, &v), SIM_V_LEADER_COMPLETENESS);
}

Test(sim_check, leader_completeness_late_leader_not_bound_by_later_commits)
{
    /* Entries committed in term 2 do not bind a leader of term 2 or lower: a candidate may
     * win an old term late, after a newer term already committed. */
    commit_three();
    arr_log_t l = {.first = 1, .n = 1, .terms = {1}};
    sim_log_view_t v = view(2, &l);
    cr_assert_eq(sim_check_leader_log(&chk, 2, &v), 0);
    /* but a leader commit observed in term 1 does bind term 2 */
    sim_check_commit(&chk, 1, 2);
    cr_assert_eq(sim_check_leader_log(&chk, 2, &v), SIM_V_LEADER_COMPLETENESS);
}

Test(sim_check, leases_one_holder)
{
    sim_lease_t l[3] = {{.node = 1, .term = 4, .valid = true, .until_us = 100},
                        {.node = 2, .term = 3, .valid = false},
                        {.node = 3}};
    cr_assert_eq(sim_check_leases(&chk, 50, l, 3), 0);
    l[2] = (sim_lease_t){.node = 3, .term = 5, .valid = true, .until_us = 200};
    cr_assert_eq(sim_check_leases(&chk, 60, l, 3), SIM_V_LEASE);
    cr_assert(strstr(chk.msg, "node 1") && strstr(chk.msg, "node 3"), "%s", chk.msg);
}

Test(sim_check, read_below_applied)
{
    cr_assert_eq(sim_check_read(&chk, 1, 7, 10, 10), 0);
    cr_assert_eq(sim_check_read(&chk, 1, 8, 10, 12), 0);
    cr_assert_eq(sim_check_read(&chk, 1, 9, 10, 9), SIM_V_READ);
}

Test(sim_check, entry_hash_covers_fields)
{
    uint64_t base = sim_entry_hash(1, 1, 0, "ab", 2);
    cr_assert_neq(base, sim_entry_hash(2, 1, 0, "ab", 2));
    cr_assert_neq(base, sim_entry_hash(1, 2, 0, "ab", 2));
    cr_assert_neq(base, sim_entry_hash(1, 1, 1, "ab", 2));
    cr_assert_neq(base, sim_entry_hash(1, 1, 0, "ba", 2));
    cr_assert_neq(base, sim_entry_hash(1, 1, 0, "ab", 1));
    cr_assert_neq(sim_digest_next(sim_digest_next(0, 1), 2),
                  sim_digest_next(sim_digest_next(0, 2), 1), "order matters");
}

Test(sim_check, acknowledged_entries_stay)
{
    sim_check_ack(&chk, 2, 5, 10);
    cr_assert_eq(sim_check_log_end(&chk, 2, 5, 10, 1), 0);
    cr_assert_eq(sim_check_log_end(&chk, 2, 5, 12, 2), 0);
    cr_assert_eq(sim_check_log_end(&chk, 2, 6, 3, 3), 0, "a new term may truncate");
    cr_assert_eq(sim_check_log_end(&chk, 3, 5, 0, 4), 0, "other nodes are not bound");
    sim_check_ack(&chk, 2, 4, 20); /* late ack from an older term: ignored */
    cr_assert_eq(sim_check_log_end(&chk, 2, 5, 10, 5), 0);
    cr_assert_eq(sim_check_log_end(&chk, 2, 5, 9, 6), SIM_V_DURABILITY);
    cr_assert(strstr(chk.msg, "node 2") != NULL, "%s", chk.msg);
}

Test(sim_check, acknowledgements_reset_with_the_term)
{
    sim_check_ack(&chk, 1, 3, 10);
    sim_check_ack(&chk, 1, 4, 2);
    cr_assert_eq(sim_check_log_end(&chk, 1, 4, 2, 0), 0);
    cr_assert_eq(sim_check_log_end(&chk, 1, 4, 1, 0), SIM_V_DURABILITY);
}

Test(sim_check, session_over_only_once_it_ended)
{
    cr_assert_eq(sim_check_session(&chk, 100, 1, 2, 100), 0, "ended at that very instant");
    cr_assert_eq(sim_check_session(&chk, 100, 1, 2, 40), 0);
    cr_assert_eq(sim_check_session(&chk, 100, 1, 3, 101), SIM_V_SESSION);
    cr_assert(strstr(chk.msg, "node 3") != NULL, "%s", chk.msg);
}

Test(sim_check, election_runs_on_one_member_at_a_time)
{
    sim_runner_t r[3] = {{.node = 2, .token = 4, .until_us = 300}};
    cr_assert_eq(sim_check_election_runs(&chk, 50, 0, r, 0), 0, "nobody runs it");
    cr_assert_eq(sim_check_election_runs(&chk, 50, 0, r, 1), 0);
    /* a crashed run's watchdog and the member's new run: one machine */
    r[1] = (sim_runner_t){.node = 2, .token = 3, .until_us = 120, .crashed = true};
    cr_assert_eq(sim_check_election_runs(&chk, 60, 1, r, 2), 0);
    r[2] = (sim_runner_t){.node = 5, .token = 5, .until_us = 400};
    cr_assert_eq(sim_check_election_runs(&chk, 70, 2, r, 3), SIM_V_NAMED);
    cr_assert(strstr(chk.msg, "election 2") && strstr(chk.msg, "node 2") &&
                  strstr(chk.msg, "node 5"),
              "%s", chk.msg);
    sim_check_free(&chk);
    sim_check_init(&chk);
    r[0] = (sim_runner_t){.node = 1, .token = 7, .until_us = 90, .crashed = true};
    cr_assert_eq(sim_check_election_runs(&chk, 80, 0, r, 3), SIM_V_NAMED,
                 "a crashed member's watchdog still runs it");
}
