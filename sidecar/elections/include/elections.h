/* elections.h — named elections (issue 12): where each election's primary should run. The
 * whole interface of sidecar/elections/.
 *
 * Placement is a pure function: given the declared elections, the members as the Raft leader
 * sees them, the current assignments (the replicated elections table) and the time, it returns
 * at most ONE change for the leader to propose now. It does no I/O, reads no clock and keeps no
 * state between calls, so the same input always gives the same decision. It only decides: the
 * change is proposed as a fenced command (ASSIGN with the token it expects), and safety — never
 * two members running one election — rests on member sessions and tokens, not on placement
 * (docs/guarantees.md, "Named elections: placement").
 *
 * The rules, in the order they are applied (the first that yields a change wins):
 *  1. failover — an election with no holder, or whose holder is not alive, is ASSIGNed to the
 *     best live eligible member (the order of "best" is below);
 *  2. release — an election whose recorded holder is dead and that no live member can take is
 *     RELEASEd (holder := none);
 *  3. repair — an election whose live holder no longer declares it is MOVEd to the best live
 *     eligible member, or RELEASEd when there is none; one whose live holder recently failed
 *     on it is MOVEd to the best live eligible member that has not;
 *  4. rebalance (only with options.rebalance) — an election is MOVEd from its holder to a
 *     member that fits it better (a preferred member, or one that is not avoided / not
 *     --no-primary / not failing) and has been alive for options.hysteresis_ms; else one
 *     election is MOVEd from a member holding at least two more than a member that fits it
 *     as well and has been alive for the hysteresis period.
 *
 * "Best" for an election, over the live members that declare it: first by fit class — a member
 * neither failing on it, nor --no-primary, nor avoided, then avoided, then --no-primary, then
 * failing (a member that gave up on the election is the last resort); then, for failovers and
 * repairs only, members past the hysteresis period before those that just came back; then by
 * place in the election's prefer list (members not in it after every one in it); then the
 * fewest elections held; then by a hash of (election name, member id), so that elections with
 * otherwise equal choices spread over the members instead of all going to one; then by id.
 *
 * Applying the decisions one by one from any state, with the members and the time fixed, ends
 * in a state where the call returns NONE (no oscillation): each election gets at most one
 * decision of rules 1-3 and one fit move, and each spread move lowers the sum of the squared
 * counts by two or more. In that state every election that a live member declares has a live
 * holder that declares it; and with rebalancing on, that holder fits it at least as well as any
 * member alive for the hysteresis period, and holds at most one more election than any such
 * member of equal fit (with every member alike: the counts differ by at most one).
 * tests/sidecar/test_placement.c checks these properties on thousands of random states. A caller
 * that wants several changes in one batch (the failovers of a dead member) applies each
 * decision to its copy of the input and calls again. */
#ifndef ELECTD_SIDECAR_ELECTIONS_H
#define ELECTD_SIDECAR_ELECTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIDECAR_ELECTIONS_MEMBERS_MAX 16 /* members of one group (RAFT_MAX_MEMBERS) */
#define SIDECAR_ELECTIONS_LIST_MAX    16 /* ids in one election's eligible/prefer/avoid/failing */

/* Errors: 0 or one of these. */
enum {
    SIDECAR_ELECTIONS_EINVAL = -1, /* an input breaks a rule of the structs below */
};

/* A member of the group as the leader sees it. Members are named by their Raft id everywhere
 * (the id of a node name is sidecar_config_node_id(name)). */
typedef struct sidecar_elections_member {
    uint64_t id;               /* never 0, unique in the input */
    bool alive;                /* its session is not expired (raft_session_expired false) */
    bool no_primary;           /* --no-primary: holds nothing unless no one else can */
    uint64_t healthy_since_ms; /* when it last became alive, on options.now_ms's clock */
} sidecar_elections_member_t;

/* One declared election and its current assignment. The lists hold member ids, at most
 * SIDECAR_ELECTIONS_LIST_MAX each; ids that are not members are ignored, repeats are harmless.
 * Every pointer is borrowed for the call; a list may be NULL when its count is 0. */
typedef struct sidecar_elections_election {
    const char *name;         /* never NULL; only hashed (the tie-break) */
    const uint64_t *eligible; /* the members that declare it in their config */
    size_t n_eligible;
    const uint64_t *prefer; /* "prefer": most preferred first */
    size_t n_prefer;
    const uint64_t *avoid; /* "avoid" */
    size_t n_avoid;
    const uint64_t *failing; /* members that recently gave up on it or keep failing it */
    size_t n_failing;
    uint64_t holder; /* from the elections table: the holder's id, 0 = none */
    uint64_t token;  /* from the elections table: its token, 0 = no row yet */
} sidecar_elections_election_t;

typedef struct sidecar_elections_options {
    bool rebalance;         /* --rebalance: move healthy primaries (rule 4) */
    uint64_t hysteresis_ms; /* a member receives nothing by rule 4 before this long alive */
    uint64_t now_ms;        /* now, on the clock of healthy_since_ms */
} sidecar_elections_options_t;

typedef struct sidecar_elections_input {
    const sidecar_elections_member_t *members; /* at most SIDECAR_ELECTIONS_MEMBERS_MAX */
    size_t n_members;
    const sidecar_elections_election_t *elections; /* in the order ties between them break */
    size_t n_elections;
    sidecar_elections_options_t options;
} sidecar_elections_input_t;

typedef enum sidecar_elections_action {
    SIDECAR_ELECTIONS_NONE = 0, /* nothing to change now */
    SIDECAR_ELECTIONS_ASSIGN,   /* propose ASSIGN(election, to, expect_token) at once */
    SIDECAR_ELECTIONS_MOVE,     /* graceful handover: `from` stops, then ASSIGN(to) */
    SIDECAR_ELECTIONS_RELEASE,  /* propose ASSIGN(election, 0, expect_token) */
} sidecar_elections_action_t;

/* Why: the rule that gave the decision (for the event log and the metrics). */
typedef enum sidecar_elections_why {
    SIDECAR_ELECTIONS_WHY_NONE = 0,
    SIDECAR_ELECTIONS_WHY_UNASSIGNED,  /* 1: it had no holder */
    SIDECAR_ELECTIONS_WHY_HOLDER_DEAD, /* 1: its holder is not alive (or not a member) */
    SIDECAR_ELECTIONS_WHY_NO_MEMBER,   /* 2: dead holder, no live eligible member */
    SIDECAR_ELECTIONS_WHY_UNDECLARED,  /* 3: its live holder no longer declares it */
    SIDECAR_ELECTIONS_WHY_FAILING,     /* 3: its live holder failed on it */
    SIDECAR_ELECTIONS_WHY_FIT,         /* 4: a healthy member fits it better (prefer...) */
    SIDECAR_ELECTIONS_WHY_SPREAD,      /* 4: its holder has 2+ more than a healthy member */
} sidecar_elections_why_t;

typedef struct sidecar_elections_decision {
    sidecar_elections_action_t action;
    sidecar_elections_why_t why;
    size_t election;       /* index into input.elections (not NONE) */
    uint64_t from;         /* its holder now: MOVE's giver, the dead holder replaced or released */
    uint64_t to;           /* the new holder (ASSIGN, MOVE); 0 for RELEASE and NONE */
    uint64_t expect_token; /* the election's token now: the command is refused if it changed */
} sidecar_elections_decision_t;

/* Decides the one change to propose now (see the top of this file). Fills *out (action NONE
 * when nothing is to change) and returns 0, or returns SIDECAR_ELECTIONS_EINVAL — and leaves
 * *out NONE — when the input is malformed: more members than the maximum, a member id 0 or
 * repeated, an election without a name, a list longer than SIDECAR_ELECTIONS_LIST_MAX or NULL
 * with a count. Runs in O(n_elections × n_members × list lengths); allocates nothing. */
int sidecar_elections_place(const sidecar_elections_input_t *in, sidecar_elections_decision_t *out);

/* The name of a rule, for logs: "unassigned", "holder-dead", ... ("?" for an unknown value). */
const char *sidecar_elections_why_name(sidecar_elections_why_t why);

/* The text of an error code of this part. */
const char *sidecar_elections_strerror(int err);

#endif
