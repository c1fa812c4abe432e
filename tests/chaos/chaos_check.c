/* chaos_check.c — the chaos harness's checkers (see chaos_check.h). The linearizability search
 * follows Wing & Gong's algorithm with Lowe's memoisation: walk the time-ordered list of call and
 * return events, linearize a call whose model step is legal, backtrack at a return whose call
 * is not yet linearized, and never revisit a (set of linearized ops, register state) pair. */
#include "chaos_check.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- linearizability -------------------------------------------------------------------- */

typedef struct sop {
    check_kind_t kind;
    check_outcome_t outcome;
    int val;    /* interned value written or read */
    int expect; /* interned expected value (cas) */
} sop_t;

typedef struct entry {
    uint64_t time;
    int op;              /* index into the searched ops */
    bool is_call;        /* call event, else return event */
    struct entry *match; /* the call's return event */
    struct entry *prev, *next;
} entry_t;

typedef struct memo {
    size_t words;    /* u64 words of one linearized set */
    size_t n, cap;   /* stored pairs */
    uint64_t *keys;  /* cap * (words + 1): the set, then the state */
    uint32_t *slots; /* open addressing, 0 = empty, else index + 1 */
    size_t n_slots;
} memo_t;

static int intern(char (*names)[CHECK_VALUE_MAX], int *n_names, const char *v)
{
    for (int i = 0; i < *n_names; i++)
        if (strcmp(names[i], v) == 0)
            return i;
    strncpy(names[*n_names], v, CHECK_VALUE_MAX - 1);
    names[*n_names][CHECK_VALUE_MAX - 1] = '\0';
    return (*n_names)++;
}

static bool model_step(const sop_t *o, int state, int *next)
{
    switch (o->kind) {
    case CHECK_GET:
        *next = state;
        return state == o->val;
    case CHECK_PUT:
        *next = o->val;
        return true;
    case CHECK_CAS:
        if (o->outcome == CHECK_OK) {
            *next = o->val;
            return state == o->expect;
        }
        if (o->outcome == CHECK_CONFLICT) {
            *next = state;
            return state != o->expect;
        }
        /* maybe: applied exactly when the register held the expected value */
        *next = state == o->expect ? o->val : state;
        return true;
    }
    return false;
}

static uint64_t hash_key(const uint64_t *set, size_t words, int state)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)state;
    for (size_t i = 0; i < words; i++) {
        h ^= set[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
    }
    return h;
}

/* Adds (set, state); returns false if it was there already, or if the memo is full (then
 * *full is set: the search cannot continue soundly without revisiting). */
static bool memo_add(memo_t *m, const uint64_t *set, int state, bool *full)
{
    uint64_t h = hash_key(set, m->words, state);
    size_t mask = m->n_slots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint32_t s = m->slots[i];
        if (s == 0) {
            if (m->n == m->cap) {
                *full = true;
                return false;
            }
            uint64_t *k = &m->keys[m->n * (m->words + 1)];
            memcpy(k, set, m->words * sizeof(uint64_t));
            k[m->words] = (uint64_t)state;
            m->slots[i] = (uint32_t)(++m->n);
            return true;
        }
        const uint64_t *k = &m->keys[(s - 1) * (m->words + 1)];
        if (k[m->words] == (uint64_t)state && memcmp(k, set, m->words * sizeof(uint64_t)) == 0)
            return false;
    }
}

/* Whether some op of the history observes value v: a get that read it, a cas that expected it. */
static bool observed(const check_op_t *ops, size_t n, const char *v)
{
    for (size_t i = 0; i < n; i++) {
        const check_op_t *o = &ops[i];
        if (o->outcome == CHECK_FAIL)
            continue;
        if ((o->kind == CHECK_GET && o->outcome == CHECK_OK && strcmp(o->value, v) == 0) ||
            (o->kind == CHECK_CAS && strcmp(o->expect, v) == 0))
            return true;
    }
    return false;
}

/* Maybe-applied ops that write a value nobody observes, in classes of the same kind and
 * expectation: within a class it matters how many took effect, not which (see below). */
typedef struct classes {
    int *of;       /* per searched op: its class, or -1 */
    size_t *first; /* per class: where its ops start in ops[] */
    size_t *count; /* per class: how many */
    int *ops;      /* the classes' ops, class by class, each in index order */
    size_t n;
} classes_t;

/* The memo's key for set: in each class, the first j of its ops marked, j being how many of
 * them set marks. */
static void canonical(const classes_t *c, const uint64_t *set, uint64_t *out, size_t words)
{
    memcpy(out, set, words * sizeof(uint64_t));
    for (size_t k = 0; k < c->n; k++) {
        const int *ops = &c->ops[c->first[k]];
        size_t used = 0;
        for (size_t i = 0; i < c->count[k]; i++) {
            used += (set[ops[i] / 64] >> (ops[i] % 64)) & 1;
            out[ops[i] / 64] &= ~(1ull << (ops[i] % 64));
        }
        for (size_t i = 0; i < used; i++)
            out[ops[i] / 64] |= 1ull << (ops[i] % 64);
    }
}

static int cmp_entry(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    /* At equal times calls come first: the two ops are then concurrent. */
    if (x->is_call != y->is_call)
        return x->is_call ? -1 : 1;
    return x->op - y->op;
}

static void lift(entry_t *e)
{
    e->prev->next = e->next;
    if (e->next)
        e->next->prev = e->prev;
    entry_t *r = e->match;
    r->prev->next = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

static void unlift(entry_t *e)
{
    entry_t *r = e->match;
    r->prev->next = r;
    if (r->next)
        r->next->prev = r;
    e->prev->next = e;
    if (e->next)
        e->next->prev = e;
}

check_verdict_t check_linearizable(const check_op_t *ops, size_t n, uint64_t *steps_out)
{
    check_verdict_t verdict = CHECK_INCONCLUSIVE;
    size_t ns = 0;
    for (size_t i = 0; i < n; i++)
        if (ops[i].outcome != CHECK_FAIL &&
            !(ops[i].kind == CHECK_GET && ops[i].outcome != CHECK_OK))
            ns++;
    if (steps_out)
        *steps_out = 0;
    if (ns > CHECK_MAX_OPS)
        return CHECK_INCONCLUSIVE;
    if (ns == 0)
        return CHECK_LINEARIZABLE;

    char(*names)[CHECK_VALUE_MAX] = calloc(2 * ns + 1, CHECK_VALUE_MAX);
    sop_t *so = calloc(ns, sizeof(*so));
    entry_t *ent = calloc(2 * ns + 1, sizeof(*ent)); /* [0] is the list head */
    entry_t **ret_of = calloc(ns, sizeof(*ret_of));
    memo_t m = {.words = (ns + 63) / 64, .cap = CHECK_MAX_MEMO, .n_slots = 1u << 20};
    m.keys = malloc(m.cap * (m.words + 1) * sizeof(uint64_t));
    m.slots = calloc(m.n_slots, sizeof(uint32_t));
    uint64_t *set = calloc(m.words, sizeof(uint64_t));
    uint64_t *key = calloc(m.words, sizeof(uint64_t));
    classes_t cl = {.of = malloc(ns * sizeof(int)),
                    .first = calloc(ns, sizeof(size_t)),
                    .count = calloc(ns, sizeof(size_t)),
                    .ops = malloc(ns * sizeof(int))};
    int *class_kind = calloc(ns, sizeof(int)), *class_expect = calloc(ns, sizeof(int));
    struct frame {
        entry_t *e;
        int state;
    } *stack = calloc(ns, sizeof(*stack));
    if (!names || !so || !ent || !ret_of || !m.keys || !m.slots || !set || !stack || !key ||
        !cl.of || !cl.first || !cl.count || !cl.ops || !class_kind || !class_expect)
        goto out;

    /* A value that no op observes is one state, whichever it is ("\x01"): nothing after it
     * can tell them apart. So maybe-applied ops of the same kind and expectation that write
     * one are interchangeable, and each may take effect at any time after its call: the
     * search needs to know how many of them took effect, not which, and k timed-out writes
     * cost k + 1 memo states instead of 2^k. */
    int n_names = 0;
    intern(names, &n_names, ""); /* state 0: the key is absent */
    const int unobserved = intern(names, &n_names, "\x01");
    size_t k = 0;
    entry_t *ev = ent + 1;
    for (size_t i = 0; i < n; i++) {
        const check_op_t *o = &ops[i];
        if (o->outcome == CHECK_FAIL || (o->kind == CHECK_GET && o->outcome != CHECK_OK))
            continue;
        so[k] = (sop_t){.kind = o->kind,
                        .outcome = o->outcome,
                        .val = o->kind == CHECK_GET || observed(ops, n, o->value)
                                   ? intern(names, &n_names, o->value)
                                   : unobserved,
                        .expect = intern(names, &n_names, o->expect)};
        cl.of[k] = -1;
        if (o->outcome == CHECK_MAYBE && so[k].val == unobserved) {
            size_t c = 0;
            while (c < cl.n && !(class_kind[c] == (int)o->kind &&
                                 (o->kind == CHECK_PUT || class_expect[c] == so[k].expect)))
                c++;
            if (c == cl.n) {
                class_kind[c] = (int)o->kind, class_expect[c] = so[k].expect;
                cl.n++;
            }
            cl.of[k] = (int)c;
            cl.count[c]++;
        }
        uint64_t done = o->outcome == CHECK_MAYBE ? CHECK_NEVER : o->complete_ns;
        ev[2 * k] = (entry_t){.time = o->invoke_ns, .op = (int)k, .is_call = true};
        ev[2 * k + 1] = (entry_t){.time = done, .op = (int)k, .is_call = false};
        k++;
    }
    for (size_t c = 1; c < cl.n; c++)
        cl.first[c] = cl.first[c - 1] + cl.count[c - 1];
    for (size_t c = 0; c < cl.n; c++)
        cl.count[c] = 0;
    for (size_t i = 0; i < ns; i++)
        if (cl.of[i] >= 0) {
            size_t c = (size_t)cl.of[i];
            cl.ops[cl.first[c] + cl.count[c]++] = (int)i;
        }
    qsort(ev, 2 * ns, sizeof(entry_t), cmp_entry);
    for (size_t i = 0; i < 2 * ns; i++)
        if (!ev[i].is_call)
            ret_of[ev[i].op] = &ev[i];
    entry_t *head = &ent[0];
    head->prev = NULL;
    head->next = &ev[0];
    for (size_t i = 0; i < 2 * ns; i++) {
        ev[i].prev = i == 0 ? head : &ev[i - 1];
        ev[i].next = i + 1 < 2 * ns ? &ev[i + 1] : NULL;
        if (ev[i].is_call)
            ev[i].match = ret_of[ev[i].op];
    }

    int state = 0;
    size_t depth = 0;
    uint64_t steps = 0;
    bool full = false;
    entry_t *e = head->next;
    while (head->next != NULL) {
        if (++steps > CHECK_MAX_STEPS)
            goto done; /* inconclusive */
        if (e->is_call) {
            int next;
            if (model_step(&so[e->op], state, &next)) {
                set[e->op / 64] |= 1ull << (e->op % 64);
                canonical(&cl, set, key, m.words);
                if (memo_add(&m, key, next, &full)) {
                    stack[depth++] = (struct frame){e, state};
                    state = next;
                    lift(e);
                    e = head->next;
                    continue;
                }
                set[e->op / 64] &= ~(1ull << (e->op % 64));
                if (full)
                    goto done;
            }
            e = e->next;
        } else {
            /* Everything before the first never-returning op is linearized: what is left
             * may take effect after every observation, which is always legal. */
            if (so[e->op].outcome == CHECK_MAYBE)
                break;
            if (depth == 0) {
                verdict = CHECK_NOT_LINEARIZABLE;
                goto done;
            }
            struct frame f = stack[--depth];
            state = f.state;
            set[f.e->op / 64] &= ~(1ull << (f.e->op % 64));
            unlift(f.e);
            e = f.e->next;
        }
    }
    verdict = CHECK_LINEARIZABLE;
done:
    if (steps_out)
        *steps_out = steps;
out:
    free(names);
    free(so);
    free(ent);
    free(ret_of);
    free(m.keys);
    free(m.slots);
    free(set);
    free(stack);
    free(key);
    free(cl.of);
    free(cl.first);
    free(cl.count);
    free(cl.ops);
    free(class_kind);
    free(class_expect);
    return verdict;
}

/* ---- lost writes, fencing ------------------------------------------------------------- */

static bool acked_write(const check_op_t *o)
{
    return o->kind != CHECK_GET && o->outcome == CHECK_OK;
}

int check_lost_writes(const check_op_t *ops, size_t n, const char *final_value, char *lost)
{
    /* The final value must come from some write W (or be "absent" if no write can be last).
     * Every acknowledged write that completed before W was invoked is legitimately overwritten;
     * an acknowledged write X that W strictly precedes (W completed before X was invoked), or
     * any acknowledged write at all when the key reads absent, was lost. */
    const check_op_t *src = NULL;
    for (size_t i = 0; i < n; i++)
        if (ops[i].kind != CHECK_GET && ops[i].outcome != CHECK_FAIL &&
            ops[i].outcome != CHECK_CONFLICT && final_value[0] != '\0' &&
            strcmp(ops[i].value, final_value) == 0)
            src = &ops[i];
    const check_op_t *worst = NULL;
    for (size_t i = 0; i < n; i++) {
        const check_op_t *x = &ops[i];
        if (!acked_write(x) || x == src)
            continue;
        bool overwritten_later =
            src != NULL && (src->outcome == CHECK_MAYBE || src->complete_ns >= x->invoke_ns);
        if (!overwritten_later && (worst == NULL || x->complete_ns > worst->complete_ns))
            worst = x;
    }
    if (worst == NULL)
        return 0;
    if (lost) {
        strncpy(lost, worst->value, CHECK_VALUE_MAX - 1);
        lost[CHECK_VALUE_MAX - 1] = '\0';
    }
    return 1;
}

int check_fencing(const check_op_t *ops, size_t n)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const check_op_t *x = &ops[i];
        if (!acked_write(x) || x->fence == 0)
            continue;
        for (size_t j = 0; j < n; j++) {
            const check_op_t *y = &ops[j];
            if (acked_write(y) && y->fence > x->fence && y->complete_ns < x->invoke_ns) {
                bad++;
                break;
            }
        }
    }
    return bad;
}

/* ---- primary intervals ---------------------------------------------------------------- */

void check_overlaps(const events_t *ev, const check_frozen_t *fr, size_t n_fr,
                    check_overlap_report_t *rep)
{
    memset(rep, 0, sizeof(*rep));
    uint64_t end[EVENTS_MAX_INTERVALS];
    for (size_t i = 0; i < ev->n; i++) {
        const events_interval_t *x = &ev->iv[i];
        end[i] = x->end_ns;
        for (size_t f = 0; f < n_fr; f++) {
            if (fr[f].lapse != CHECK_FROZEN_ALL || strcmp(fr[f].node, x->node) != 0 ||
                x->start_ns >= fr[f].stop_ns || x->end_ns <= fr[f].stop_ns ||
                x->end_ns > fr[f].cont_ns + CHECK_FROZEN_GRACE)
                continue;
            end[i] = fr[f].stop_ns;
            if (x->end_ns > fr[f].cont_ns) { /* it ran on after the thaw */
                rep->frozen_tails++;
                if (x->end_ns - fr[f].cont_ns > rep->longest_tail_ns)
                    rep->longest_tail_ns = x->end_ns - fr[f].cont_ns;
            }
            break;
        }
    }
    for (size_t i = 0; i < ev->n; i++)
        for (size_t j = i + 1; j < ev->n; j++) {
            const events_interval_t *x = &ev->iv[i], *y = &ev->iv[j];
            if (x->pid == y->pid && strcmp(x->node, y->node) == 0)
                continue;
            if (x->start_ns < end[j] && y->start_ns < end[i]) {
                if (rep->overlaps == 0) {
                    rep->first_a = i;
                    rep->first_b = j;
                }
                rep->overlaps++;
            }
        }
}

/* ---- hook-mode primaries ---------------------------------------------------------------- */

/* The first kill of node in [from, to), or CHECK_NEVER. */
static uint64_t killed_in(const check_frozen_t *fr, size_t n_fr, const char *node, uint64_t from,
                          uint64_t to)
{
    uint64_t k = CHECK_NEVER;
    for (size_t f = 0; f < n_fr; f++)
        if (fr[f].lapse == CHECK_KILLED && strcmp(fr[f].node, node) == 0 && fr[f].stop_ns >= from &&
            fr[f].stop_ns < to && fr[f].stop_ns < k)
            k = fr[f].stop_ns;
    return k;
}

struct lapses {
    const check_frozen_t *fr;
    size_t n_fr;
};

/* A kill ends the period it fell in: the lines of the node after it belong to its restart. */
static uint64_t cut_at_kill(const events_hook_period_t *p, uint64_t line_ns, void *arg)
{
    const struct lapses *l = arg;
    uint64_t k = killed_in(l->fr, l->n_fr, p->node, p->begin_ns, line_ns);
    return k == CHECK_NEVER ? UINT64_MAX : k;
}

size_t check_hook_overlaps(const char *text, const check_frozen_t *fr, size_t n_fr,
                           uint64_t lease_ns, check_overlap_report_t *rep, char *why, size_t cap)
{
    static events_hook_period_t pp[EVENTS_MAX_INTERVALS * 4];
    memset(rep, 0, sizeof(*rep));
    if (cap > 0)
        why[0] = '\0';
    struct lapses l = {.fr = fr, .n_fr = n_fr};
    size_t n = events_hook_periods(text, lease_ns, pp, sizeof(pp) / sizeof(pp[0]), cut_at_kill, &l);
    for (size_t i = 0; i < n; i++) { /* a kill after the period's last line */
        uint64_t end = pp[i].open ? cut_at_kill(&pp[i], UINT64_MAX, &l) : UINT64_MAX;
        if (end != UINT64_MAX) {
            pp[i].end_ns = end;
            pp[i].open = false;
        }
    }
    for (size_t i = 0; i < n; i++) /* a freeze that the on-stop ended soon after */
        for (size_t f = 0; f < n_fr; f++) {
            events_hook_period_t *x = &pp[i];
            if (fr[f].lapse == CHECK_KILLED || strcmp(fr[f].node, x->node) != 0 ||
                fr[f].stop_ns < x->begin_ns || fr[f].stop_ns >= x->end_ns ||
                x->end_ns > fr[f].cont_ns + CHECK_HOOK_GRACE)
                continue;
            if (x->end_ns > fr[f].cont_ns) {
                rep->frozen_tails++;
                if (x->end_ns - fr[f].cont_ns > rep->longest_tail_ns)
                    rep->longest_tail_ns = x->end_ns - fr[f].cont_ns;
            }
            x->end_ns = fr[f].stop_ns;
            break;
        }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            const events_hook_period_t *x = &pp[i], *y = &pp[j];
            if (strcmp(x->node, y->node) == 0 ||
                !(x->begin_ns < y->end_ns && y->begin_ns < x->end_ns))
                continue;
            if (rep->overlaps++ == 0 && cap > 0)
                snprintf(why, cap, "%s primary [%llu, %llu%s] and %s primary [%llu, %llu%s]",
                         x->node, (unsigned long long)x->begin_ns, (unsigned long long)x->end_ns,
                         x->open ? " open" : "", y->node, (unsigned long long)y->begin_ns,
                         (unsigned long long)y->end_ns, y->open ? " open" : "");
        }
    return n;
}
