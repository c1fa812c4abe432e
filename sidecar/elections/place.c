/* place.c — placement of named elections (elections.h): the one change for the leader to
 * propose now, as a pure function of the declarations, the members, the assignments and the
 * time. No I/O, no clock, no allocation, no state between calls. */
#include <string.h>

#include "check.h"
#include "elections.h"

/* Fit classes: bits whose numeric order is the order of preference (elections.h, "best"). */
#define CLASS_AVOIDED    1u
#define CLASS_NO_PRIMARY 2u
#define CLASS_FAILING    4u
#define RANK_NONE        SIDECAR_ELECTIONS_LIST_MAX /* prefer place of a member not listed */

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME  0x100000001b3ull

/* One call's view of the members: index i is in->members[i]. */
typedef struct place {
    const sidecar_elections_input_t *in;
    size_t load[SIDECAR_ELECTIONS_MEMBERS_MAX];  /* elections each member holds */
    bool healthy[SIDECAR_ELECTIONS_MEMBERS_MAX]; /* alive for the hysteresis period */
} place_t;

/* How well member i fits election e; compared field by field, smaller is better. */
typedef struct fit {
    unsigned class;     /* CLASS_* bits */
    unsigned unhealthy; /* 1: not yet alive for the hysteresis period (failover order only) */
    unsigned rank;      /* place in the prefer list, RANK_NONE when not in it */
    size_t load;        /* elections it holds */
    uint64_t hash;      /* of (election name, member id): spreads otherwise equal choices */
    uint64_t id;        /* the last word: the order is total */
} fit_t;

static bool list_has(const uint64_t *ids, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static unsigned list_rank(const uint64_t *ids, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return (unsigned)i;
    return RANK_NONE;
}

static bool list_valid(const uint64_t *ids, size_t n)
{
    return n <= SIDECAR_ELECTIONS_LIST_MAX && (n == 0 || ids != NULL);
}

static bool input_valid(const sidecar_elections_input_t *in)
{
    if (in == NULL || in->n_members > SIDECAR_ELECTIONS_MEMBERS_MAX ||
        (in->n_members > 0 && in->members == NULL) ||
        (in->n_elections > 0 && in->elections == NULL))
        return false;
    for (size_t i = 0; i < in->n_members; i++) {
        if (in->members[i].id == 0)
            return false;
        for (size_t j = 0; j < i; j++)
            if (in->members[j].id == in->members[i].id)
                return false;
    }
    for (size_t k = 0; k < in->n_elections; k++) {
        const sidecar_elections_election_t *e = &in->elections[k];
        if (e->name == NULL || !list_valid(e->eligible, e->n_eligible) ||
            !list_valid(e->prefer, e->n_prefer) || !list_valid(e->avoid, e->n_avoid) ||
            !list_valid(e->failing, e->n_failing))
            return false;
    }
    return true;
}

/* The index of member id, -1 when it is not a member (0 is never one). */
static int member_index(const place_t *p, uint64_t id)
{
    for (size_t i = 0; i < p->in->n_members; i++)
        if (p->in->members[i].id == id)
            return (int)i;
    return -1;
}

/* The index of e's holder when it is a live member, else -1. */
static int live_holder(const place_t *p, const sidecar_elections_election_t *e)
{
    int h = e->holder != 0 ? member_index(p, e->holder) : -1;
    return h >= 0 && p->in->members[h].alive ? h : -1;
}

static void place_init(place_t *p, const sidecar_elections_input_t *in)
{
    memset(p, 0, sizeof(*p));
    p->in = in;
    const sidecar_elections_options_t *o = &in->options;
    for (size_t i = 0; i < in->n_members; i++) {
        const sidecar_elections_member_t *m = &in->members[i];
        p->healthy[i] = m->alive && m->healthy_since_ms <= o->now_ms &&
                        o->now_ms - m->healthy_since_ms >= o->hysteresis_ms;
    }
    for (size_t k = 0; k < in->n_elections; k++) {
        int h = in->elections[k].holder != 0 ? member_index(p, in->elections[k].holder) : -1;
        if (h >= 0)
            p->load[h]++;
    }
}

/* A well-mixed 64-bit hash of the election's name (FNV-1a, then a finalizer that spreads it). */
static uint64_t name_hash(const char *name)
{
    uint64_t h = FNV_OFFSET;
    for (const unsigned char *s = (const unsigned char *)name; *s; s++)
        h = (h ^ *s) * FNV_PRIME;
    return h;
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

static fit_t member_fit(const place_t *p, const sidecar_elections_election_t *e, uint64_t nh,
                        size_t i)
{
    const sidecar_elections_member_t *m = &p->in->members[i];
    fit_t f = {.rank = list_rank(e->prefer, e->n_prefer, m->id),
               .unhealthy = !p->healthy[i],
               .load = p->load[i],
               .hash = mix(nh ^ m->id),
               .id = m->id};
    if (list_has(e->avoid, e->n_avoid, m->id))
        f.class |= CLASS_AVOIDED;
    if (m->no_primary)
        f.class |= CLASS_NO_PRIMARY;
    if (list_has(e->failing, e->n_failing, m->id))
        f.class |= CLASS_FAILING;
    return f;
}

/* -1, 0, 1 as a is better than, as good as, worse than b in the order of elections.h. */
static int fit_cmp(const fit_t *a, const fit_t *b)
{
#define FIT_CMP_FIELD(x)                                                                           \
    if (a->x != b->x)                                                                              \
        return a->x < b->x ? -1 : 1;
    FIT_CMP_FIELD(class)
    FIT_CMP_FIELD(unhealthy)
    FIT_CMP_FIELD(rank)
    FIT_CMP_FIELD(load)
    FIT_CMP_FIELD(hash)
    FIT_CMP_FIELD(id)
#undef FIT_CMP_FIELD
    return 0;
}

/* What a member is chosen among. */
typedef struct pick {
    bool healthy_only;    /* only members alive for the hysteresis period (rule 4) */
    const fit_t *same_as; /* only members of this class and prefer place (spread), or NULL */
} pick_t;

/* The best live member that declares e (elections.h, "best") among those `how` allows; -1 when
 * there is none. *best gets its fit. */
static int best_member(const place_t *p, const sidecar_elections_election_t *e, pick_t how,
                       fit_t *best)
{
    uint64_t nh = name_hash(e->name);
    int b = -1;
    for (size_t i = 0; i < p->in->n_members; i++) {
        const sidecar_elections_member_t *m = &p->in->members[i];
        if (!m->alive || !list_has(e->eligible, e->n_eligible, m->id) ||
            (how.healthy_only && !p->healthy[i]))
            continue;
        fit_t f = member_fit(p, e, nh, i);
        if (how.same_as && (f.class != how.same_as->class || f.rank != how.same_as->rank))
            continue;
        if (b < 0 || fit_cmp(&f, best) < 0) {
            b = (int)i;
            *best = f;
        }
    }
    return b;
}

static void decide(const place_t *p, size_t k, sidecar_elections_action_t action,
                   sidecar_elections_why_t why, int to, sidecar_elections_decision_t *out)
{
    const sidecar_elections_election_t *e = &p->in->elections[k];
    *out = (sidecar_elections_decision_t){.action = action,
                                          .why = why,
                                          .election = k,
                                          .from = e->holder,
                                          .to = to >= 0 ? p->in->members[to].id : 0,
                                          .expect_token = e->token};
}

/* Rule 1: the first election without a live holder that a live member can take. */
static bool place_failover(const place_t *p, sidecar_elections_decision_t *out)
{
    for (size_t k = 0; k < p->in->n_elections; k++) {
        const sidecar_elections_election_t *e = &p->in->elections[k];
        fit_t f;
        if (live_holder(p, e) >= 0)
            continue;
        int c = best_member(p, e, (pick_t){0}, &f);
        if (c >= 0) {
            decide(p, k, SIDECAR_ELECTIONS_ASSIGN,
                   e->holder == 0 ? SIDECAR_ELECTIONS_WHY_UNASSIGNED
                                  : SIDECAR_ELECTIONS_WHY_HOLDER_DEAD,
                   c, out);
            return true;
        }
    }
    return false;
}

/* Rule 2 (after rule 1 found nothing, no live member can take any of these): the first
 * election recorded on a dead holder. */
static bool place_release(const place_t *p, sidecar_elections_decision_t *out)
{
    for (size_t k = 0; k < p->in->n_elections; k++) {
        const sidecar_elections_election_t *e = &p->in->elections[k];
        if (e->holder != 0 && live_holder(p, e) < 0) {
            decide(p, k, SIDECAR_ELECTIONS_RELEASE, SIDECAR_ELECTIONS_WHY_NO_MEMBER, -1, out);
            return true;
        }
    }
    return false;
}

/* Rule 3: the first election whose live holder no longer declares it, or failed on it while
 * a member that has not can take it. */
static bool place_repair(const place_t *p, sidecar_elections_decision_t *out)
{
    for (size_t k = 0; k < p->in->n_elections; k++) {
        const sidecar_elections_election_t *e = &p->in->elections[k];
        int h = live_holder(p, e);
        if (h < 0)
            continue;
        fit_t f;
        int c = best_member(p, e, (pick_t){0}, &f);
        if (!list_has(e->eligible, e->n_eligible, e->holder)) {
            decide(p, k, c >= 0 ? SIDECAR_ELECTIONS_MOVE : SIDECAR_ELECTIONS_RELEASE,
                   SIDECAR_ELECTIONS_WHY_UNDECLARED, c, out);
            return true;
        }
        if (list_has(e->failing, e->n_failing, e->holder) && c >= 0 && !(f.class & CLASS_FAILING)) {
            decide(p, k, SIDECAR_ELECTIONS_MOVE, SIDECAR_ELECTIONS_WHY_FAILING, c, out);
            return true;
        }
    }
    return false;
}

/* Rule 4, fit: the first election whose holder fits it worse (class, then prefer place) than
 * a member alive for the hysteresis period. */
static bool place_fit(const place_t *p, sidecar_elections_decision_t *out)
{
    for (size_t k = 0; k < p->in->n_elections; k++) {
        const sidecar_elections_election_t *e = &p->in->elections[k];
        int h = live_holder(p, e);
        fit_t f;
        if (h < 0 || best_member(p, e, (pick_t){.healthy_only = true}, &f) < 0)
            continue;
        fit_t hf = member_fit(p, e, name_hash(e->name), (size_t)h);
        if (f.class < hf.class || (f.class == hf.class && f.rank < hf.rank)) {
            decide(p, k, SIDECAR_ELECTIONS_MOVE, SIDECAR_ELECTIONS_WHY_FIT, member_index(p, f.id),
                   out);
            return true;
        }
    }
    return false;
}

/* Rule 4, spread: among the elections whose holder holds two or more than a member of the
 * same fit alive for the hysteresis period, the one with the largest difference (then the
 * smallest hash, then the first) moves to that member. Each such move lowers the sum of the
 * squared counts, so moving ends. */
static bool place_spread(const place_t *p, sidecar_elections_decision_t *out)
{
    size_t best_k = 0, best_diff = 0;
    fit_t best_to = {0};
    for (size_t k = 0; k < p->in->n_elections; k++) {
        const sidecar_elections_election_t *e = &p->in->elections[k];
        int h = live_holder(p, e);
        if (h < 0)
            continue;
        fit_t hf = member_fit(p, e, name_hash(e->name), (size_t)h), f;
        if (best_member(p, e, (pick_t){.healthy_only = true, .same_as = &hf}, &f) < 0 ||
            hf.load < f.load + 2)
            continue;
        size_t diff = hf.load - f.load;
        if (diff > best_diff || (diff == best_diff && f.hash < best_to.hash)) {
            best_k = k;
            best_diff = diff;
            best_to = f;
        }
    }
    if (best_diff == 0)
        return false;
    decide(p, best_k, SIDECAR_ELECTIONS_MOVE, SIDECAR_ELECTIONS_WHY_SPREAD,
           member_index(p, best_to.id), out);
    return true;
}

int sidecar_elections_place(const sidecar_elections_input_t *in, sidecar_elections_decision_t *out)
{
    ELECTD_CHECK(out != NULL);
    *out = (sidecar_elections_decision_t){0};
    if (!input_valid(in))
        return SIDECAR_ELECTIONS_EINVAL;
    place_t p;
    place_init(&p, in);
    if (place_failover(&p, out) || place_release(&p, out) || place_repair(&p, out))
        return 0;
    if (in->options.rebalance && !place_fit(&p, out))
        place_spread(&p, out);
    return 0;
}

const char *sidecar_elections_why_name(sidecar_elections_why_t why)
{
    static const char *const names[] = {
        [SIDECAR_ELECTIONS_WHY_NONE] = "none",
        [SIDECAR_ELECTIONS_WHY_UNASSIGNED] = "unassigned",
        [SIDECAR_ELECTIONS_WHY_HOLDER_DEAD] = "holder-dead",
        [SIDECAR_ELECTIONS_WHY_NO_MEMBER] = "no-member",
        [SIDECAR_ELECTIONS_WHY_UNDECLARED] = "undeclared",
        [SIDECAR_ELECTIONS_WHY_FAILING] = "failing",
        [SIDECAR_ELECTIONS_WHY_FIT] = "fit",
        [SIDECAR_ELECTIONS_WHY_SPREAD] = "spread",
    };
    size_t i = (size_t)why;
    return i < sizeof(names) / sizeof(names[0]) && names[i] ? names[i] : "?";
}

#define ELECTIONS_ERRORS(X) X(SIDECAR_ELECTIONS_EINVAL, "invalid placement input")

const char *sidecar_elections_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
#define ELECTIONS_ERROR_CASE(code, text)                                                           \
    case code:                                                                                     \
        return text;
        ELECTIONS_ERRORS(ELECTIONS_ERROR_CASE)
#undef ELECTIONS_ERROR_CASE
    default:
        return "unknown elections error";
    }
}
