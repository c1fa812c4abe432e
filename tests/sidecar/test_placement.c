/* test_placement.c — the placement rules of named elections (sidecar/elections/place.c,
 * docs/guarantees.md "Named elections: placement"), checked on the pure function: table tests
 * of each rule, the hysteresis at the millisecond where it turns, and property tests that apply
 * the decisions from thousands of random states (fixed seed) until nothing is left to do,
 * checking every decision against an independent statement of the rules and every end state
 * against what placement promises. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "elections.h"
#include "raft.h"

_Static_assert(SIDECAR_ELECTIONS_MEMBERS_MAX == RAFT_MAX_MEMBERS,
               "placement takes every member of a group");

#define LMAX    SIDECAR_ELECTIONS_LIST_MAX
#define WMAX    1000    /* elections in one test world */
#define NOW     1000000 /* ms, an arbitrary instant */
#define HYST_MS 30000   /* the hysteresis of most tests */
#define NAME_SZ 24

/* ---- a world: members, elections with their lists, options; decisions applied to it ---- */

typedef struct world {
    sidecar_elections_member_t m[SIDECAR_ELECTIONS_MEMBERS_MAX];
    size_t nm;
    sidecar_elections_election_t e[WMAX];
    size_t ne;
    char names[WMAX][NAME_SZ];
    uint64_t eligible[WMAX][LMAX], prefer[WMAX][LMAX], avoid[WMAX][LMAX], failing[WMAX][LMAX];
    sidecar_elections_options_t o;
} world_t;

/* nm members with ids 1..nm, alive and healthy since long ago; ne elections "e0".. declared
 * by every member, unassigned; rebalancing on. Freed with free(). */
static world_t *world_new(size_t nm, size_t ne)
{
    world_t *w = calloc(1, sizeof(*w));
    cr_assert(w != NULL && nm <= SIDECAR_ELECTIONS_MEMBERS_MAX && ne <= WMAX);
    w->nm = nm;
    w->ne = ne;
    for (size_t i = 0; i < nm; i++)
        w->m[i] = (sidecar_elections_member_t){.id = i + 1, .alive = true, .healthy_since_ms = 0};
    for (size_t k = 0; k < ne; k++) {
        snprintf(w->names[k], NAME_SZ, "e%zu", k);
        w->e[k] = (sidecar_elections_election_t){.name = w->names[k],
                                                 .eligible = w->eligible[k],
                                                 .prefer = w->prefer[k],
                                                 .avoid = w->avoid[k],
                                                 .failing = w->failing[k],
                                                 .n_eligible = nm};
        for (size_t i = 0; i < nm; i++)
            w->eligible[k][i] = i + 1;
    }
    w->o =
        (sidecar_elections_options_t){.rebalance = true, .hysteresis_ms = HYST_MS, .now_ms = NOW};
    return w;
}

static sidecar_elections_input_t world_input(const world_t *w)
{
    return (sidecar_elections_input_t){.members = w->m,
                                       .n_members = w->nm,
                                       .elections = w->e,
                                       .n_elections = w->ne,
                                       .options = w->o};
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double place_us; /* time spent in sidecar_elections_place, for the timing lines */
static size_t place_calls;

static sidecar_elections_decision_t place(const world_t *w)
{
    sidecar_elections_input_t in = world_input(w);
    sidecar_elections_decision_t d;
    double t0 = now_us();
    int rc = sidecar_elections_place(&in, &d);
    place_us += now_us() - t0;
    place_calls++;
    cr_assert_eq(rc, 0, "place: %s", sidecar_elections_strerror(rc));
    return d;
}

/* What the replicated ASSIGN does: the new holder (0 for a release), the next token. */
static void apply(world_t *w, const sidecar_elections_decision_t *d)
{
    cr_assert(d->action != SIDECAR_ELECTIONS_NONE && d->election < w->ne);
    sidecar_elections_election_t *e = &w->e[d->election];
    cr_assert_eq(d->expect_token, e->token, "a decision carries the token it was made on");
    e->holder = d->action == SIDECAR_ELECTIONS_RELEASE ? 0 : d->to;
    e->token++;
}

static void set_list(uint64_t *list, size_t *n, const uint64_t *ids, size_t count)
{
    memcpy(list, ids, count * sizeof(*ids));
    *n = count;
}
#define SET_LIST(w, k, field, ...)                                                                 \
    set_list((w)->field[k], &(w)->e[k].n_##field, (const uint64_t[]){__VA_ARGS__},                 \
             sizeof((const uint64_t[]){__VA_ARGS__}) / sizeof(uint64_t))

/* Short names for the table tests. */
#define NONE        SIDECAR_ELECTIONS_NONE
#define ASSIGN      SIDECAR_ELECTIONS_ASSIGN
#define MOVE        SIDECAR_ELECTIONS_MOVE
#define RELEASE     SIDECAR_ELECTIONS_RELEASE
#define UNASSIGNED  SIDECAR_ELECTIONS_WHY_UNASSIGNED
#define HOLDER_DEAD SIDECAR_ELECTIONS_WHY_HOLDER_DEAD
#define NO_MEMBER   SIDECAR_ELECTIONS_WHY_NO_MEMBER
#define UNDECLARED  SIDECAR_ELECTIONS_WHY_UNDECLARED
#define FAILING     SIDECAR_ELECTIONS_WHY_FAILING
#define FIT         SIDECAR_ELECTIONS_WHY_FIT
#define SPREAD      SIDECAR_ELECTIONS_WHY_SPREAD

static void assert_decision(sidecar_elections_decision_t d, sidecar_elections_action_t action,
                            sidecar_elections_why_t why, size_t k, uint64_t to)
{
    cr_assert_eq(d.action, action, "action %d, expected %d (why %s)", d.action, action,
                 sidecar_elections_why_name(d.why));
    cr_assert_eq(d.why, why, "why %s, expected %s", sidecar_elections_why_name(d.why),
                 sidecar_elections_why_name(why));
    if (action != SIDECAR_ELECTIONS_NONE) {
        cr_assert_eq(d.election, k, "election %zu, expected %zu", d.election, k);
        cr_assert_eq(d.to, to, "to %" PRIu64 ", expected %" PRIu64, d.to, to);
    }
}

/* The decision on w now is (action, why, election k, to k's new holder). */
#define EXPECT(w, action, why, k, to) assert_decision(place(w), action, why, k, to)
#define EXPECT_NONE(w)                assert_decision(place(w), NONE, SIDECAR_ELECTIONS_WHY_NONE, 0, 0)

/* ---- the rules, stated again independently of place.c ---------------------------------- */

static int idx(const world_t *w, uint64_t id)
{
    for (size_t i = 0; i < w->nm; i++)
        if (w->m[i].id == id)
            return (int)i;
    return -1;
}

static bool has(const uint64_t *l, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (l[i] == id)
            return true;
    return false;
}

static bool live(const world_t *w, uint64_t id)
{
    int i = id ? idx(w, id) : -1;
    return i >= 0 && w->m[i].alive;
}

static bool healthy(const world_t *w, uint64_t id)
{
    int i = idx(w, id);
    return live(w, id) && w->m[i].healthy_since_ms + w->o.hysteresis_ms <= w->o.now_ms;
}

static bool eligible(const world_t *w, size_t k, uint64_t id)
{
    return live(w, id) && has(w->e[k].eligible, w->e[k].n_eligible, id);
}

static bool failing(const world_t *w, size_t k, uint64_t id)
{
    return has(w->e[k].failing, w->e[k].n_failing, id);
}

/* The fit class: failing > no-primary > avoided > none, as one number (smaller is better). */
static unsigned cls(const world_t *w, size_t k, uint64_t id)
{
    return (failing(w, k, id) ? 4u : 0u) | (w->m[idx(w, id)].no_primary ? 2u : 0u) |
           (has(w->e[k].avoid, w->e[k].n_avoid, id) ? 1u : 0u);
}

/* Class and place in the prefer list, as one number (smaller fits better). */
static unsigned fit(const world_t *w, size_t k, uint64_t id)
{
    unsigned rank = LMAX;
    for (size_t i = 0; i < w->e[k].n_prefer; i++)
        if (w->e[k].prefer[i] == id) {
            rank = (unsigned)i;
            break;
        }
    return cls(w, k, id) * (LMAX + 1) + rank;
}

static size_t load(const world_t *w, uint64_t id)
{
    size_t n = 0;
    for (size_t k = 0; k < w->ne; k++)
        n += w->e[k].holder == id;
    return n;
}

static bool anyone_can(const world_t *w, size_t k)
{
    for (size_t i = 0; i < w->nm; i++)
        if (eligible(w, k, w->m[i].id))
            return true;
    return false;
}

/* What is still to do before rebalancing, by rule (elections.h rules 1-3). */
typedef struct pending {
    bool failover, release, undeclared, failing;
} pending_t;

static pending_t pending(const world_t *w)
{
    pending_t p = {0};
    for (size_t k = 0; k < w->ne; k++) {
        const sidecar_elections_election_t *e = &w->e[k];
        if (!live(w, e->holder)) {
            p.failover |= anyone_can(w, k);
            p.release |= e->holder != 0 && !anyone_can(w, k);
        } else if (!has(e->eligible, e->n_eligible, e->holder)) {
            p.undeclared = true;
        } else if (failing(w, k, e->holder)) {
            for (size_t i = 0; i < w->nm; i++)
                p.failing |= eligible(w, k, w->m[i].id) && !failing(w, k, w->m[i].id);
        }
    }
    return p;
}

/* A new holder chosen by rules 1 and 3 is of the best class among the live eligible members,
 * and within it past the hysteresis period if any such is, then of the best prefer place. */
static void check_best_for_failover(const world_t *w, size_t k, uint64_t to)
{
    cr_assert(eligible(w, k, to), "the new holder %" PRIu64 " is live and declares it", to);
    for (size_t i = 0; i < w->nm; i++) {
        uint64_t id = w->m[i].id;
        if (!eligible(w, k, id))
            continue;
        cr_assert_leq(cls(w, k, to), cls(w, k, id),
                      "%s went to %" PRIu64 " (class %u) over %" PRIu64 " (class %u)", w->names[k],
                      to, cls(w, k, to), id, cls(w, k, id));
        if (cls(w, k, to) == cls(w, k, id)) {
            cr_assert(healthy(w, to) || !healthy(w, id), "a healthy member comes first");
            if (healthy(w, to) == healthy(w, id))
                cr_assert_leq(fit(w, k, to), fit(w, k, id), "a preferred member comes first");
        }
    }
    /* The same in the words of the issue: never an avoided member while one that is not can,
     * no --no-primary member while one without it can (failing members cannot). */
    for (size_t i = 0; i < w->nm; i++) {
        uint64_t id = w->m[i].id;
        if (!eligible(w, k, id) || failing(w, k, id))
            continue;
        cr_assert(!(w->m[idx(w, to)].no_primary && !w->m[i].no_primary),
                  "--no-primary member chosen while %" PRIu64 " can", id);
        cr_assert(cls(w, k, to) != 1 || cls(w, k, id) == 1 || cls(w, k, id) >= 2,
                  "avoided member chosen while %" PRIu64 " can", id);
    }
}

/* Every decision, checked against the rules and their order. */
static void check_decision(const world_t *w, sidecar_elections_decision_t d)
{
    pending_t p = pending(w);
    if (d.action == SIDECAR_ELECTIONS_NONE) {
        cr_assert(!p.failover && !p.release && !p.undeclared && !p.failing,
                  "nothing decided while rules 1-3 have work");
        return;
    }
    cr_assert_lt(d.election, w->ne);
    size_t k = d.election;
    const sidecar_elections_election_t *e = &w->e[k];
    cr_assert_eq(d.expect_token, e->token);
    cr_assert_eq(d.from, e->holder);
    switch (d.action) {
    case SIDECAR_ELECTIONS_ASSIGN:
        cr_assert(!live(w, e->holder), "ASSIGN only replaces a dead holder or none");
        cr_assert_eq(d.why, e->holder ? SIDECAR_ELECTIONS_WHY_HOLDER_DEAD
                                      : SIDECAR_ELECTIONS_WHY_UNASSIGNED);
        check_best_for_failover(w, k, d.to);
        return;
    case SIDECAR_ELECTIONS_RELEASE:
        cr_assert(!anyone_can(w, k), "released while a live member declares it");
        cr_assert_eq(d.to, 0);
        cr_assert(!p.failover, "failovers come first");
        if (d.why == SIDECAR_ELECTIONS_WHY_NO_MEMBER) {
            cr_assert(e->holder != 0 && !live(w, e->holder));
        } else {
            cr_assert_eq(d.why, SIDECAR_ELECTIONS_WHY_UNDECLARED);
            cr_assert(live(w, e->holder) && !has(e->eligible, e->n_eligible, e->holder));
            cr_assert(!p.release);
        }
        return;
    case SIDECAR_ELECTIONS_MOVE:
        break;
    default:
        cr_assert_fail("unknown action %d", d.action);
    }
    cr_assert(live(w, e->holder), "MOVE is from a live holder (a graceful handover)");
    cr_assert_neq(d.to, e->holder);
    cr_assert(eligible(w, k, d.to), "MOVE to a live member that declares it");
    cr_assert(!p.failover && !p.release, "failovers and releases come before moves");
    switch (d.why) {
    case SIDECAR_ELECTIONS_WHY_UNDECLARED:
        cr_assert(!has(e->eligible, e->n_eligible, e->holder));
        check_best_for_failover(w, k, d.to);
        return;
    case SIDECAR_ELECTIONS_WHY_FAILING:
        cr_assert(failing(w, k, e->holder) && !failing(w, k, d.to));
        check_best_for_failover(w, k, d.to);
        return;
    case SIDECAR_ELECTIONS_WHY_FIT:
    case SIDECAR_ELECTIONS_WHY_SPREAD:
        cr_assert(w->o.rebalance, "no rebalancing move with --rebalance=false");
        cr_assert(!p.undeclared && !p.failing, "repairs come before rebalancing");
        cr_assert(healthy(w, d.to), "a member receives by rebalancing only after the hysteresis");
        if (d.why == SIDECAR_ELECTIONS_WHY_FIT) {
            cr_assert_lt(fit(w, k, d.to), fit(w, k, e->holder), "a fit move fits better");
        } else {
            cr_assert_eq(fit(w, k, d.to), fit(w, k, e->holder), "spread keeps the fit");
            cr_assert_geq(load(w, e->holder), load(w, d.to) + 2, "spread evens out by 2 or more");
        }
        return;
    default:
        cr_assert_fail("MOVE for why %s", sidecar_elections_why_name(d.why));
    }
}

/* What a state where placement returns NONE promises. */
static void check_converged(const world_t *w)
{
    for (size_t k = 0; k < w->ne; k++) {
        const sidecar_elections_election_t *e = &w->e[k];
        if (!anyone_can(w, k)) {
            cr_assert_eq(e->holder, 0, "%s: nobody can hold it, so nobody is recorded",
                         w->names[k]);
            continue;
        }
        cr_assert(eligible(w, k, e->holder), "%s has a live holder that declares it", w->names[k]);
        for (size_t i = 0; i < w->nm; i++) {
            uint64_t id = w->m[i].id;
            if (!eligible(w, k, id))
                continue;
            cr_assert(!failing(w, k, e->holder) || failing(w, k, id),
                      "%s stays on a member failing it while %" PRIu64 " is not", w->names[k], id);
            if (!w->o.rebalance || !healthy(w, id))
                continue;
            cr_assert_leq(fit(w, k, e->holder), fit(w, k, id),
                          "%s: prefer/avoid/--no-primary honoured once %" PRIu64 " is healthy",
                          w->names[k], id);
            if (fit(w, k, e->holder) == fit(w, k, id))
                cr_assert_leq(load(w, e->holder), load(w, id) + 1,
                              "%s: spread off by more than one (%zu on %" PRIu64 ", %zu on %" PRIu64
                              ")",
                              w->names[k], load(w, e->holder), e->holder, load(w, id), id);
        }
    }
}

/* Applies decisions until NONE, checking each; returns how many there were (at most max). */
static size_t converge(world_t *w, size_t max)
{
    for (size_t steps = 0; steps <= max; steps++) {
        sidecar_elections_decision_t d = place(w);
        check_decision(w, d);
        if (d.action == SIDECAR_ELECTIONS_NONE) {
            check_converged(w);
            return steps;
        }
        apply(w, &d);
    }
    cr_assert_fail("no convergence within %zu decisions", max);
    return max;
}

/* ---- table tests: one rule each ------------------------------------------------------- */

TestSuite(placement);

Test(placement, an_unassigned_election_goes_to_the_least_loaded_live_member)
{
    world_t *w = world_new(3, 4);
    w->e[0].holder = 1, w->e[1].holder = 1, w->e[2].holder = 2;
    EXPECT(w, ASSIGN, UNASSIGNED, 3, 3);
    w->m[2].alive = false;
    EXPECT(w, ASSIGN, UNASSIGNED, 3, 2);
    free(w);
}

Test(placement, a_dead_holder_is_replaced_with_the_token_it_had)
{
    world_t *w = world_new(3, 2);
    w->e[0].holder = 1, w->e[0].token = 41;
    w->e[1].holder = 2, w->e[1].token = 7;
    w->m[0].alive = false;
    sidecar_elections_decision_t d = place(w);
    assert_decision(d, ASSIGN, HOLDER_DEAD, 0, 3);
    cr_assert_eq(d.from, 1);
    cr_assert_eq(d.expect_token, 41, "the ASSIGN is refused if the row changed meanwhile");
    /* A holder that is no longer a member at all is dead too. */
    w->e[0].holder = 99;
    EXPECT(w, ASSIGN, HOLDER_DEAD, 0, 3);
    free(w);
}

Test(placement, only_a_member_that_declares_the_election_receives_it)
{
    world_t *w = world_new(3, 1);
    SET_LIST(w, 0, eligible, 3, 77); /* 77 is not a member: ignored */
    w->e[0].holder = 0;
    EXPECT(w, ASSIGN, UNASSIGNED, 0, 3);
    w->m[2].alive = false;
    EXPECT_NONE(w);
    free(w);
}

Test(placement, prefer_wins_a_failover_in_list_order_over_load)
{
    world_t *w = world_new(3, 3);
    w->e[0].holder = 2, w->e[1].holder = 2; /* member 2 is the most loaded */
    SET_LIST(w, 2, prefer, 2, 3);
    EXPECT(w, ASSIGN, UNASSIGNED, 2, 2);
    w->m[1].alive = false; /* the first preferred is gone: the second */
    w->e[0].holder = 1, w->e[1].holder = 1;
    EXPECT(w, ASSIGN, UNASSIGNED, 2, 3);
    free(w);
}

Test(placement, an_avoided_member_receives_only_when_no_one_else_can)
{
    world_t *w = world_new(3, 1);
    SET_LIST(w, 0, avoid, 1, 2);
    EXPECT(w, ASSIGN, UNASSIGNED, 0, 3);
    w->m[2].alive = false;
    sidecar_elections_decision_t d = place(w);
    cr_assert_eq(d.action, ASSIGN, "avoided members hold it when alone");
    cr_assert(d.to == 1 || d.to == 2);
    /* Once a member that is not avoided is back and healthy, it moves there (rebalancing). */
    apply(w, &d);
    w->m[2].alive = true;
    w->m[2].healthy_since_ms = NOW - HYST_MS;
    EXPECT(w, MOVE, FIT, 0, 3);
    free(w);
}

Test(placement, a_no_primary_member_receives_only_when_no_one_else_can)
{
    world_t *w = world_new(3, 1);
    w->m[0].no_primary = true;
    SET_LIST(w, 0, prefer, 1); /* prefer does not override --no-primary */
    SET_LIST(w, 0, avoid, 2);
    /* An avoided member comes before a --no-primary one: it can, the standby holds nothing
     * unless no one else can. */
    EXPECT(w, ASSIGN, UNASSIGNED, 0, 3);
    w->m[2].alive = false;
    EXPECT(w, ASSIGN, UNASSIGNED, 0, 2);
    w->m[1].alive = false;
    EXPECT(w, ASSIGN, UNASSIGNED, 0, 1);
    free(w);
}

Test(placement, a_failing_member_is_the_last_resort_and_its_election_moves_away)
{
    world_t *w = world_new(3, 1);
    w->m[1].no_primary = true;
    SET_LIST(w, 0, failing, 1, 3);
    EXPECT(w, ASSIGN, UNASSIGNED, 0, 2);
    w->m[1].alive = false;
    sidecar_elections_decision_t d = place(w);
    cr_assert(d.action == ASSIGN && (d.to == 1 || d.to == 3),
              "a member that failed on it still holds it when it is the only one");
    /* Held by a member failing it while another can: moved, even without rebalancing. */
    w->o.rebalance = false;
    w->m[1].alive = true;
    w->m[1].healthy_since_ms = NOW; /* just back: a repair does not wait for the hysteresis */
    w->e[0].holder = 1;
    EXPECT(w, MOVE, FAILING, 0, 2);
    /* ... but not to another member failing it. */
    SET_LIST(w, 0, failing, 1, 2, 3);
    EXPECT_NONE(w);
    free(w);
}

Test(placement, a_dead_holder_no_one_can_replace_is_released)
{
    world_t *w = world_new(2, 2);
    SET_LIST(w, 0, eligible, 1);
    w->e[0].holder = 1, w->e[0].token = 5;
    w->m[0].alive = false;
    /* Failovers first: e1 (unassigned, member 2 can) before the release of e0. */
    EXPECT(w, ASSIGN, UNASSIGNED, 1, 2);
    w->e[1].holder = 2;
    sidecar_elections_decision_t d = place(w);
    assert_decision(d, RELEASE, NO_MEMBER, 0, 0);
    cr_assert_eq(d.from, 1);
    cr_assert_eq(d.expect_token, 5);
    apply(w, &d);
    EXPECT_NONE(w);
    /* When its member comes back it gets it again, under a new token. */
    w->m[0].alive = true;
    w->m[0].healthy_since_ms = NOW;
    d = place(w);
    assert_decision(d, ASSIGN, UNASSIGNED, 0, 1);
    cr_assert_eq(d.expect_token, 6);
    free(w);
}

Test(placement, an_election_its_live_holder_no_longer_declares_moves_or_is_released)
{
    world_t *w = world_new(3, 1);
    w->o.rebalance = false; /* not a rebalancing move: it happens anyway */
    w->e[0].holder = 1;
    SET_LIST(w, 0, eligible, 2, 3);
    sidecar_elections_decision_t d = place(w);
    cr_assert_eq(d.action, MOVE);
    cr_assert_eq(d.why, UNDECLARED);
    cr_assert_eq(d.from, 1);
    cr_assert(d.to == 2 || d.to == 3);
    w->m[1].alive = w->m[2].alive = false;
    EXPECT(w, RELEASE, UNDECLARED, 0, 0);
    free(w);
}

Test(placement, failovers_come_before_rebalancing)
{
    world_t *w = world_new(3, 6);
    for (size_t k = 0; k < 5; k++)
        w->e[k].holder = 1; /* 5 / 0 / 0: badly spread */
    w->e[5].holder = 3;
    w->m[2].alive = false; /* e5's holder is dead */
    EXPECT(w, ASSIGN, HOLDER_DEAD, 5, 2);
    w->e[5].holder = 2;
    sidecar_elections_decision_t d = place(w);
    cr_assert_eq(d.action, MOVE);
    cr_assert_eq(d.why, SPREAD);
    cr_assert_eq(d.from, 1);
    cr_assert_eq(d.to, 2);
    free(w);
}

Test(placement, rebalance_false_moves_no_healthy_primary)
{
    world_t *w = world_new(3, 6);
    for (size_t k = 0; k < 6; k++)
        w->e[k].holder = 1;
    SET_LIST(w, 0, prefer, 2);
    SET_LIST(w, 1, avoid, 1);
    w->o.rebalance = false;
    EXPECT_NONE(w);
    w->o.rebalance = true;
    EXPECT(w, MOVE, FIT, 0, 2);
    free(w);
}

/* A member that just came back receives nothing by rebalancing until it has been alive for
 * the hysteresis period — at the millisecond where that turns — and a member that flaps
 * (comes back, goes away, comes back) starts its period again each time. */
Test(placement, a_member_that_just_came_back_receives_nothing_before_the_hysteresis)
{
    world_t *w = world_new(3, 6);
    for (size_t k = 0; k < 6; k++)
        w->e[k].holder = 1 + k % 2; /* 3 / 3 / 0 */
    SET_LIST(w, 0, prefer, 3);
    uint64_t back = NOW;
    w->m[2].healthy_since_ms = back;
    for (uint64_t t = back; t < back + HYST_MS; t += HYST_MS / 7) {
        w->o.now_ms = t;
        EXPECT_NONE(w);
    }
    w->o.now_ms = back + HYST_MS - 1;
    EXPECT_NONE(w);
    w->o.now_ms = back + HYST_MS;
    EXPECT(w, MOVE, FIT, 0, 3);
    /* It flaps: away, then back at back + HYST_MS; its period starts again. */
    w->m[2].healthy_since_ms = back + HYST_MS;
    w->o.now_ms = back + 2 * HYST_MS - 1;
    EXPECT_NONE(w);
    /* A clock that says it came back in the future: not healthy. */
    w->m[2].healthy_since_ms = w->o.now_ms + 1;
    EXPECT_NONE(w);
    /* Hysteresis 0: healthy as soon as alive. */
    w->o.hysteresis_ms = 0;
    w->m[2].healthy_since_ms = w->o.now_ms;
    EXPECT(w, MOVE, FIT, 0, 3);
    free(w);
}

/* A failover prefers a member past its hysteresis period to one that just came back, even a
 * preferred one; the preferred member gets it by rebalancing once its period is over. */
Test(placement, a_failover_prefers_a_member_past_its_hysteresis)
{
    world_t *w = world_new(3, 1);
    SET_LIST(w, 0, prefer, 3);
    w->m[2].healthy_since_ms = NOW - 1;
    w->e[0].holder = 1;
    w->m[0].alive = false;
    sidecar_elections_decision_t d = place(w);
    assert_decision(d, ASSIGN, HOLDER_DEAD, 0, 2);
    apply(w, &d);
    EXPECT_NONE(w);
    w->o.now_ms = NOW - 1 + HYST_MS;
    EXPECT(w, MOVE, FIT, 0, 3);
    /* With no member past its period, one that just came back takes it at once. */
    w->m[1].healthy_since_ms = w->m[2].healthy_since_ms = w->o.now_ms;
    w->e[0].holder = 0;
    EXPECT(w, ASSIGN, UNASSIGNED, 0, 3);
    free(w);
}

/* Ties spread by a hash of (election, member): single elections placed on three idle members
 * land on each of them, not all on the lowest id, whatever the order the members are given. */
Test(placement, ties_spread_by_hash_not_by_lowest_id)
{
    size_t count[4] = {0};
    world_t *w = world_new(3, 1);
    for (size_t n = 0; n < 60; n++) {
        snprintf(w->names[0], NAME_SZ, "pipeline-%zu", n);
        sidecar_elections_decision_t d = place(w);
        cr_assert_eq(d.action, ASSIGN);
        cr_assert(d.to >= 1 && d.to <= 3);
        count[d.to]++;
        sidecar_elections_member_t t = w->m[0];
        w->m[0] = w->m[2], w->m[2] = t; /* reversed order: same choice */
        cr_assert_eq(place(w).to, d.to, "the choice does not depend on the members' order");
        w->m[2] = w->m[0], w->m[0] = t;
    }
    for (size_t i = 1; i <= 3; i++)
        cr_assert_geq(count[i], 10, "member %zu got %zu of 60", i, count[i]);
    free(w);
}

Test(placement, malformed_input_is_refused)
{
    world_t *w = world_new(3, 2);
    sidecar_elections_input_t in = world_input(w);
    sidecar_elections_decision_t d = {.action = MOVE};
    cr_assert_eq(sidecar_elections_place(&in, &d), 0);
    cr_assert_eq(sidecar_elections_place(NULL, &d), SIDECAR_ELECTIONS_EINVAL);
    cr_assert_eq(d.action, SIDECAR_ELECTIONS_NONE, "a refusal decides nothing");
    w->m[1].id = 0;
    in = world_input(w);
    cr_assert_eq(sidecar_elections_place(&in, &d), SIDECAR_ELECTIONS_EINVAL, "member id 0");
    w->m[1].id = 3;
    in = world_input(w);
    cr_assert_eq(sidecar_elections_place(&in, &d), SIDECAR_ELECTIONS_EINVAL, "repeated id");
    w->m[1].id = 2;
    in = world_input(w);
    in.n_members = SIDECAR_ELECTIONS_MEMBERS_MAX + 1;
    cr_assert_eq(sidecar_elections_place(&in, &d), SIDECAR_ELECTIONS_EINVAL, "too many members");
    w->e[1].name = NULL;
    in = world_input(w);
    cr_assert_eq(sidecar_elections_place(&in, &d), SIDECAR_ELECTIONS_EINVAL, "no name");
    w->e[1].name = w->names[1];
    w->e[1].n_avoid = LMAX + 1;
    in = world_input(w);
    cr_assert_eq(sidecar_elections_place(&in, &d), SIDECAR_ELECTIONS_EINVAL, "list too long");
    w->e[1].n_avoid = 1;
    w->e[1].avoid = NULL;
    in = world_input(w);
    cr_assert_eq(sidecar_elections_place(&in, &d), SIDECAR_ELECTIONS_EINVAL, "NULL list");
    in.n_elections = 1;
    cr_assert_eq(sidecar_elections_place(&in, &d), 0, "only the elections given are read");
    cr_assert_str_eq(sidecar_elections_strerror(SIDECAR_ELECTIONS_EINVAL),
                     "invalid placement input");
    cr_assert_str_eq(sidecar_elections_why_name(SPREAD), "spread");
    cr_assert_str_eq(sidecar_elections_why_name((sidecar_elections_why_t)99), "?");
    free(w);
}

/* ---- property tests over random states (fixed seed) ------------------------------------- */

#define SEED   0x5eed2026u
#define STATES 4000 /* random states per property test */
#define EMAX   40   /* elections in a random state */

static uint64_t rng_state;

static uint64_t rnd(void) /* xorshift64* */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static bool chance(unsigned percent)
{
    return rnd() % 100 < percent;
}

/* A random member id of w, or now and then one that is not a member. */
static uint64_t some_id(const world_t *w)
{
    return chance(8) ? 1000 + rnd() % 5 : w->m[rnd() % w->nm].id;
}

static void random_list(const world_t *w, uint64_t *list, size_t *n, unsigned percent)
{
    *n = 0;
    while (*n < LMAX && chance(percent))
        list[(*n)++] = some_id(w);
}

/* Any state: members up and down, flapping, --no-primary; elections declared by some, with
 * prefer/avoid/failing lists, held by anyone (alive, dead, not a member) or no one. With
 * `plain`, every member is alive, healthy and declares everything, and nothing is preferred,
 * avoided or failing: the spread itself is then checked. */
static void random_world(world_t *w, bool plain)
{
    w->nm = chance(10) ? 1 + rnd() % SIDECAR_ELECTIONS_MEMBERS_MAX : 1 + rnd() % 5;
    w->ne = rnd() % (EMAX + 1);
    w->o = (sidecar_elections_options_t){
        .rebalance = plain || chance(80), .hysteresis_ms = chance(10) ? 0 : HYST_MS, .now_ms = NOW};
    for (size_t i = 0; i < w->nm; i++) {
        uint64_t id;
        do /* distinct, sometimes small, sometimes like FNV ids */
            id = chance(50) ? 1 + rnd() % 20 : rnd() | 1;
        while (idx(w, id) >= 0 && idx(w, id) < (int)i);
        w->m[i] = (sidecar_elections_member_t){.id = id,
                                               .alive = plain || chance(75),
                                               .no_primary = !plain && chance(15),
                                               .healthy_since_ms = NOW - rnd() % (2 * HYST_MS)};
        if (plain)
            w->m[i].healthy_since_ms = 0;
    }
    for (size_t k = 0; k < w->ne; k++) {
        sidecar_elections_election_t *e = &w->e[k];
        snprintf(w->names[k], NAME_SZ, "job-%" PRIu64, rnd() % 100000);
        *e = (sidecar_elections_election_t){.name = w->names[k],
                                            .eligible = w->eligible[k],
                                            .prefer = w->prefer[k],
                                            .avoid = w->avoid[k],
                                            .failing = w->failing[k]};
        e->n_eligible = 0;
        for (size_t i = 0; i < w->nm; i++)
            if (plain || chance(75))
                w->eligible[k][e->n_eligible++] = w->m[i].id;
        if (!plain && e->n_eligible < LMAX && chance(10))
            w->eligible[k][e->n_eligible++] = some_id(w);
        random_list(w, w->prefer[k], &e->n_prefer, plain ? 0 : 30);
        random_list(w, w->avoid[k], &e->n_avoid, plain ? 0 : 20);
        random_list(w, w->failing[k], &e->n_failing, plain ? 0 : 10);
        unsigned r = (unsigned)(rnd() % 4);
        e->holder = r == 0 ? 0 : r == 3 ? 1000 + rnd() % 5 : w->m[rnd() % w->nm].id;
        e->token = rnd() % 100;
    }
}

/* Each decision, taken again with the members in reverse order, is the same. */
static void check_member_order(world_t *w, sidecar_elections_decision_t d)
{
    for (size_t i = 0; i < w->nm / 2; i++) {
        sidecar_elections_member_t t = w->m[i];
        w->m[i] = w->m[w->nm - 1 - i], w->m[w->nm - 1 - i] = t;
    }
    sidecar_elections_decision_t r = place(w);
    cr_assert(r.action == d.action && r.why == d.why && r.to == d.to &&
                  (d.action == SIDECAR_ELECTIONS_NONE || r.election == d.election),
              "the decision depends on the order of the members");
}

/* From any state, with the members and the time fixed, decisions end within a bound, each
 * obeys the rules, and the end state keeps its promises; then, once every member alive has
 * been so for the hysteresis period, again. Nothing more is decided at the end: no
 * oscillation. */
static void property_run(bool plain)
{
    world_t *w = world_new(1, 0);
    rng_state = SEED + plain;
    size_t most = 0, total = 0;
    for (size_t s = 0; s < STATES; s++) {
        random_world(w, plain);
        check_member_order(w, place(w));
        /* Bound: each election gets at most one decision of rules 1-3 and one fit move, each
         * of which raises the sum of the squared counts by at most 2E + 1, and each spread
         * move lowers it by 2 or more. */
        size_t squares = 0, e = w->ne;
        for (size_t i = 0; i < w->nm; i++)
            squares += load(w, w->m[i].id) * load(w, w->m[i].id);
        size_t bound = 2 * e + (squares + 2 * e * (2 * e + 1)) / 2;
        size_t steps = converge(w, bound);
        for (size_t i = 0; i < w->nm; i++)
            if (w->m[i].alive)
                w->m[i].healthy_since_ms = 0;
        steps += converge(w, bound);
        check_member_order(w, place(w));
        cr_assert_eq(place(w).action, SIDECAR_ELECTIONS_NONE, "converged means converged");
        w->o.now_ms += 10 * HYST_MS;
        cr_assert_eq(place(w).action, SIDECAR_ELECTIONS_NONE, "and stays so as time passes");
        if (plain) { /* every member alive, healthy, declaring all: counts differ by <= 1 */
            size_t lo = SIZE_MAX, hi = 0;
            for (size_t i = 0; i < w->nm; i++) {
                size_t l = load(w, w->m[i].id);
                lo = l < lo ? l : lo;
                hi = l > hi ? l : hi;
            }
            cr_assert_leq(hi, lo + 1, "state %zu: spread %zu..%zu", s, lo, hi);
        }
        most = steps > most ? steps : most;
        total += steps;
    }
    cr_log_info("placement %s: %d random states, %zu decisions, at most %zu for one state",
                plain ? "plain" : "any", STATES, total, most);
    free(w);
}

Test(placement, any_state_converges_by_the_rules_and_stays_converged)
{
    property_run(false);
}

Test(placement, with_everyone_alike_the_counts_differ_by_at_most_one)
{
    property_run(true);
}

/* ---- 1,000 elections on 3 members --------------------------------------------------------- */

/* Converges within expect_max decisions, at least expect_min, and logs the time per call. */
static void timed_converge(world_t *w, size_t expect_min, size_t expect_max, const char *what)
{
    place_us = 0, place_calls = 0;
    size_t steps = converge(w, expect_max);
    cr_assert_geq(steps, expect_min, "%s: %zu decisions", what, steps);
    cr_log_info("placement, 1000 elections x 3 members, %s: %zu decisions, %.1f us per call", what,
                steps, place_us / (double)place_calls);
}

static void assert_loads(const world_t *w, size_t a, size_t b, size_t c)
{
    size_t l[3] = {load(w, 1), load(w, 2), load(w, 3)};
    size_t want[3] = {a, b, c};
    for (size_t i = 0; i < 3; i++)
        cr_assert(l[i] + 1 >= want[i] && l[i] <= want[i] + 1,
                  "loads %zu/%zu/%zu, want ~%zu/%zu/%zu", l[0], l[1], l[2], a, b, c);
}

Test(placement, a_thousand_elections_on_three_members_converge_in_bounded_decisions)
{
    world_t *w = world_new(3, WMAX);
    /* From nothing: exactly one ASSIGN each, already spread. */
    timed_converge(w, WMAX, WMAX, "from none assigned");
    assert_loads(w, 333, 333, 333);
    /* The steady-state call (every rule looked at, nothing to do), timed alone. */
    place_us = 0, place_calls = 0;
    for (int i = 0; i < 200; i++)
        cr_assert_eq(place(w).action, SIDECAR_ELECTIONS_NONE);
    cr_log_info("placement, 1000 elections x 3 members, nothing to do: %.1f us per call",
                place_us / (double)place_calls);
    /* Member 1 dies: only its ~333 elections move, one failover each, spread over the other two. */
    size_t on1 = load(w, 1);
    w->m[0].alive = false;
    timed_converge(w, on1, on1, "member 1 dies");
    assert_loads(w, 0, 500, 500);
    /* It comes back: nothing moves during the hysteresis, then ~333 moves even it out. */
    w->m[0].alive = true;
    w->m[0].healthy_since_ms = NOW;
    cr_assert_eq(place(w).action, SIDECAR_ELECTIONS_NONE);
    w->o.now_ms = NOW + HYST_MS;
    timed_converge(w, 330, 340, "member 1 back after the hysteresis");
    assert_loads(w, 333, 333, 333);
    /* All on one member: ~667 moves. */
    for (size_t k = 0; k < WMAX; k++)
        w->e[k].holder = 2;
    timed_converge(w, 660, 670, "all on one member");
    assert_loads(w, 333, 333, 333);
    free(w);
}
