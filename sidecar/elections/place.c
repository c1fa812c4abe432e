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

/* FNV-1a of the election's name; mix() combines it with a member id into the tie-break. */
static uint64_t name_hash(const char *name)
{
    uint64_t h = FNV_OFFSET;
    for (const unsigned char *s = (const unsigned char *)name; *s; s++)
        h = (h ^ *s) * FNV_PRIME;
    return h;
}

/* The finalizer of MurmurHash3: every bit of h reaches every bit of the result. */
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

/* The members an election could go to, found in one look at every member. */
typedef struct choice {
    int any;     /* the best live member that declares it (rules 1 and 3), -1: none */
    int healthy; /* the same among those alive for the hysteresis period (rule 4, fit) */
    int same;    /* the same among those with the holder's class and prefer place (spread) */
    fit_t any_fit, healthy_fit, same_fit, holder_fit;
} choice_t;

static void choose(const place_t *p, const sidecar_elections_election_t *e, int holder, choice_t *c)
{
    uint64_t nh = name_hash(e->name);
    *c = (choice_t){.any = -1, .healthy = -1, .same = -1}; /* the fits: set with their index */
    if (holder >= 0)
        c->holder_fit = member_fit(p, e, nh, (size_t)holder);
    for (size_t i = 0; i < p->in->n_members; i++) {
        const sidecar_elections_member_t *m = &p->in->members[i];
        if (!m->alive || !list_has(e->eligible, e->n_eligible, m->id))
            continue;
        fit_t f = member_fit(p, e, nh, i);
        if (c->any < 0 || fit_cmp(&f, &c->any_fit) < 0)
            c->any = (int)i, c->any_fit = f;
        if (!p->healthy[i])
            continue;
        if (c->healthy < 0 || fit_cmp(&f, &c->healthy_fit) < 0)
            c->healthy = (int)i, c->healthy_fit = f;
        if (holder >= 0 && f.class == c->holder_fit.class && f.rank == c->holder_fit.rank &&
            (c->same < 0 || fit_cmp(&f, &c->same_fit) < 0))
            c->same = (int)i, c->same_fit = f;
    }
}

/* The rules in their order; between elections, the first one under the best rule wins
 * (spread: the largest difference, then the smallest hash, then the first). */
enum { RULE_NONE, RULE_FAILOVER, RULE_RELEASE, RULE_REPAIR, RULE_FIT, RULE_SPREAD };

/* What the rules say about one election, before comparing it with the others. */
typedef struct verdict {
    unsigned rule; /* RULE_* */
    sidecar_elections_action_t action;
    sidecar_elections_why_t why;
    int to;        /* member index, -1: none */
    size_t diff;   /* spread: the holder's count minus the receiver's */
    uint64_t hash; /* spread: of (election, receiver) */
} verdict_t;

static verdict_t judge(const place_t *p, const sidecar_elections_election_t *e)
{
    int h = live_holder(p, e);
    choice_t c;
    choose(p, e, h, &c);
    if (h < 0) { /* rule 1, else rule 2 */
        if (c.any >= 0)
            return (verdict_t){RULE_FAILOVER,
                               SIDECAR_ELECTIONS_ASSIGN,
                               e->holder ? SIDECAR_ELECTIONS_WHY_HOLDER_DEAD
                                         : SIDECAR_ELECTIONS_WHY_UNASSIGNED,
                               c.any,
                               0,
                               0};
        if (e->holder != 0)
            return (verdict_t){
                RULE_RELEASE, SIDECAR_ELECTIONS_RELEASE, SIDECAR_ELECTIONS_WHY_NO_MEMBER, -1, 0, 0};
        return (verdict_t){0};
    }
    if (!list_has(e->eligible, e->n_eligible, e->holder)) /* rule 3 */
        return (verdict_t){RULE_REPAIR,
                           c.any >= 0 ? SIDECAR_ELECTIONS_MOVE : SIDECAR_ELECTIONS_RELEASE,
                           SIDECAR_ELECTIONS_WHY_UNDECLARED,
                           c.any,
                           0,
                           0};
    if ((c.holder_fit.class & CLASS_FAILING) && c.any >= 0 && !(c.any_fit.class & CLASS_FAILING))
        return (verdict_t){
            RULE_REPAIR, SIDECAR_ELECTIONS_MOVE, SIDECAR_ELECTIONS_WHY_FAILING, c.any, 0, 0};
    if (!p->in->options.rebalance) /* rule 4 */
        return (verdict_t){0};
    const fit_t *hf = &c.holder_fit, *bf = &c.healthy_fit;
    if (c.healthy >= 0 &&
        (bf->class < hf->class || (bf->class == hf->class && bf->rank < hf->rank)))
        return (verdict_t){
            RULE_FIT, SIDECAR_ELECTIONS_MOVE, SIDECAR_ELECTIONS_WHY_FIT, c.healthy, 0, 0};
    if (c.same >= 0 && hf->load >= c.same_fit.load + 2)
        return (verdict_t){RULE_SPREAD, SIDECAR_ELECTIONS_MOVE,     SIDECAR_ELECTIONS_WHY_SPREAD,
                           c.same,      hf->load - c.same_fit.load, c.same_fit.hash};
    return (verdict_t){0};
}

static bool verdict_better(const verdict_t *v, const verdict_t *best)
{
    if (v->rule == RULE_NONE)
        return false;
    if (best->rule == RULE_NONE || v->rule < best->rule)
        return true;
    return v->rule == RULE_SPREAD && best->rule == RULE_SPREAD &&
           (v->diff > best->diff || (v->diff == best->diff && v->hash < best->hash));
}

int sidecar_elections_place(const sidecar_elections_input_t *in, sidecar_elections_decision_t *out)
{
    ELECTD_CHECK(out != NULL);
    *out = (sidecar_elections_decision_t){0};
    if (!input_valid(in))
        return SIDECAR_ELECTIONS_EINVAL;
    place_t p;
    place_init(&p, in);
    verdict_t best = {0};
    size_t best_k = 0;
    /* Nothing comes before the first failover: look for it among the elections without a live
     * holder first (cheap: many failovers in a row are the case that must be fast), then at
     * every election. */
    for (size_t k = 0; k < in->n_elections && best.rule != RULE_FAILOVER; k++)
        if (live_holder(&p, &in->elections[k]) < 0)
            best = judge(&p, &in->elections[k]), best_k = k;
    if (best.rule != RULE_FAILOVER) {
        best = (verdict_t){0};
        for (size_t k = 0; k < in->n_elections; k++) {
            verdict_t v = judge(&p, &in->elections[k]);
            if (verdict_better(&v, &best))
                best = v, best_k = k;
        }
    }
    if (best.rule != RULE_NONE) {
        const sidecar_elections_election_t *e = &in->elections[best_k];
        *out = (sidecar_elections_decision_t){.action = best.action,
                                              .why = best.why,
                                              .election = best_k,
                                              .from = e->holder,
                                              .to = best.to >= 0 ? in->members[best.to].id : 0,
                                              .expect_token = e->token};
    }
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
