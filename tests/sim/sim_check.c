/* sim_check.c — the simulator's safety checkers (see sim_check.h). Pure bookkeeping over
 * observations: no Raft core, no scheduler, so each rule can be tested on a hand-made history.
 */
#include "sim_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KNOWN_ENTRY  1u
#define KNOWN_DIGEST 2u

/* Grows *arr (elements of `size` bytes, *cap of them) to hold index `need`, zero-filling. */
static bool grow(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need < *cap)
        return true;
    size_t ncap = *cap ? *cap : 64;
    while (ncap <= need)
        ncap *= 2;
    void *p = realloc(*arr, ncap * size);
    if (p == NULL)
        return false;
    memset((char *)p + *cap * size, 0, (ncap - *cap) * size);
    *arr = p;
    *cap = ncap;
    return true;
}

const char *sim_violation_name(int kind)
{
    switch (kind) {
#define SIM_V_NAME(name, code, text)                                                               \
    case code:                                                                                     \
        return text;
        SIM_VIOLATION_MAP(SIM_V_NAME)
#undef SIM_V_NAME
    }
    return "unknown violation";
}

void sim_check_init(sim_check_t *c)
{
    memset(c, 0, sizeof(*c));
}

void sim_check_free(sim_check_t *c)
{
    free(c->leader_of);
    free(c->entry_term);
    free(c->entry_hash);
    free(c->digest);
    free(c->known);
    free(c->commit_upto);
    memset(c, 0, sizeof(*c));
}

int sim_check_fail(sim_check_t *c, sim_violation_t kind, const char *fmt, ...)
{
    c->violations++;
    if (c->first == SIM_V_NONE) {
        c->first = kind;
        int off = snprintf(c->msg, sizeof(c->msg), "%s: ", sim_violation_name(kind));
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->msg + off, sizeof(c->msg) - (size_t)off, fmt, ap);
        va_end(ap);
    }
    return kind;
}

/* Out of memory in the checker is a harness failure, reported like a violation so that a run
 * never silently passes with a half-kept record. */
static int oom(sim_check_t *c)
{
    c->oom = true;
    return sim_check_fail(c, SIM_V_CONTRACT, "checker out of memory");
}

uint64_t sim_entry_hash(uint64_t index, uint64_t term, uint8_t type, const void *data, uint32_t len)
{
    uint64_t h = 14695981039346656037ull;
    uint64_t head[3] = {index, term, type};
    const uint8_t *p = (const uint8_t *)head;
    for (size_t i = 0; i < sizeof(head); i++)
        h = (h ^ p[i]) * 1099511628211ull;
    p = data;
    for (uint32_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h ^ len;
}

uint64_t sim_digest_next(uint64_t d, uint64_t h)
{
    /* splitmix64 finaliser over the pair: order-sensitive, so a state machine that applied the
     * same entries in another order ends with another digest. */
    uint64_t z = d * 0x9e3779b97f4a7c15ull + h + 0x632be59bd9b4e019ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int sim_check_leader(sim_check_t *c, uint64_t term, uint64_t id, uint64_t now_us)
{
    if (!grow((void **)&c->leader_of, &c->leader_cap, term, sizeof(uint64_t)))
        return oom(c);
    if (c->leader_of[term] == 0) {
        c->leader_of[term] = id;
        return 0;
    }
    if (c->leader_of[term] != id)
        return sim_check_fail(c, SIM_V_ELECTION,
                              "term %llu led by node %llu and node %llu (t=%llu us)",
                              (unsigned long long)term, (unsigned long long)c->leader_of[term],
                              (unsigned long long)id, (unsigned long long)now_us);
    return 0;
}

static bool grow_index(sim_check_t *c, uint64_t index)
{
    size_t cap = c->index_cap;
    if (!grow((void **)&c->entry_term, &cap, index, sizeof(uint64_t)))
        return false;
    cap = c->index_cap;
    if (!grow((void **)&c->entry_hash, &cap, index, sizeof(uint64_t)))
        return false;
    cap = c->index_cap;
    if (!grow((void **)&c->digest, &cap, index, sizeof(uint64_t)))
        return false;
    cap = c->index_cap;
    if (!grow((void **)&c->known, &cap, index, sizeof(uint8_t)))
        return false;
    c->index_cap = cap;
    return true;
}

void sim_check_commit(sim_check_t *c, uint64_t term, uint64_t commit)
{
    if (!grow((void **)&c->commit_upto, &c->commit_cap, term, sizeof(uint64_t))) {
        oom(c);
        return;
    }
    if (commit > c->commit_upto[term])
        c->commit_upto[term] = commit;
}

int sim_check_applied(sim_check_t *c, uint64_t node, uint64_t node_term, uint64_t index,
                      uint64_t term, uint64_t hash, uint64_t digest)
{
    if (!grow_index(c, index))
        return oom(c);
    sim_check_commit(c, node_term, index);
    if (index > c->max_applied)
        c->max_applied = index;
    if (c->known[index] & KNOWN_ENTRY) {
        if (c->entry_term[index] != term || c->entry_hash[index] != hash)
            return sim_check_fail(c, SIM_V_STATE_MACHINE,
                                  "node %llu applied index %llu term %llu (hash %016llx) but "
                                  "another node applied term %llu (hash %016llx) there",
                                  (unsigned long long)node, (unsigned long long)index,
                                  (unsigned long long)term, (unsigned long long)hash,
                                  (unsigned long long)c->entry_term[index],
                                  (unsigned long long)c->entry_hash[index]);
    } else {
        c->known[index] |= KNOWN_ENTRY;
        c->entry_term[index] = term;
        c->entry_hash[index] = hash;
    }
    if (c->known[index] & KNOWN_DIGEST) {
        if (c->digest[index] != digest)
            return sim_check_fail(c, SIM_V_STATE_MACHINE,
                                  "node %llu has state digest %016llx after index %llu, "
                                  "another node had %016llx",
                                  (unsigned long long)node, (unsigned long long)digest,
                                  (unsigned long long)index, (unsigned long long)c->digest[index]);
    } else {
        c->known[index] |= KNOWN_DIGEST;
        c->digest[index] = digest;
    }
    return 0;
}

int sim_check_snapshot(sim_check_t *c, uint64_t node, uint64_t index, uint64_t term,
                       uint64_t digest)
{
    if (!grow_index(c, index))
        return oom(c);
    if ((c->known[index] & KNOWN_ENTRY) && c->entry_term[index] != term)
        return sim_check_fail(c, SIM_V_STATE_MACHINE,
                              "node %llu installed a snapshot at index %llu term %llu, but the "
                              "entry applied there has term %llu",
                              (unsigned long long)node, (unsigned long long)index,
                              (unsigned long long)term, (unsigned long long)c->entry_term[index]);
    if (c->known[index] & KNOWN_DIGEST) {
        if (c->digest[index] != digest)
            return sim_check_fail(c, SIM_V_STATE_MACHINE,
                                  "node %llu installed a snapshot at index %llu with digest "
                                  "%016llx, other nodes had %016llx there",
                                  (unsigned long long)node, (unsigned long long)index,
                                  (unsigned long long)digest, (unsigned long long)c->digest[index]);
    } else {
        c->known[index] |= KNOWN_DIGEST;
        c->digest[index] = digest;
    }
    if (index > c->max_applied)
        c->max_applied = index;
    return 0;
}

bool sim_check_entry_known(const sim_check_t *c, uint64_t index, uint64_t *term, uint64_t *hash)
{
    if (index >= c->index_cap || !(c->known[index] & KNOWN_ENTRY))
        return false;
    if (term)
        *term = c->entry_term[index];
    if (hash)
        *hash = c->entry_hash[index];
    return true;
}

int sim_check_leader_log(sim_check_t *c, uint64_t term, const sim_log_view_t *log)
{
    /* Everything committed by a term before `term` must be in this leader's log. A leader of
     * `term` may be elected late (vote replies delayed) after later terms committed more, so
     * only earlier terms' commits bind it. */
    uint64_t upto = 0;
    for (uint64_t t = 0; t < term && t < c->commit_cap; t++)
        if (c->commit_upto[t] > upto)
            upto = c->commit_upto[t];
    uint64_t from = log->first > 1 ? log->first : 1;
    for (uint64_t i = from; i <= upto; i++) {
        uint64_t want_term, want_hash;
        if (!sim_check_entry_known(c, i, &want_term, &want_hash))
            continue;
        uint64_t got_term = 0, got_hash = 0;
        if (i > log->last || log->entry(log->ctx, i, &got_term, &got_hash) != 0)
            return sim_check_fail(c, SIM_V_LEADER_COMPLETENESS,
                                  "node %llu leads term %llu without committed index %llu "
                                  "(term %llu; its log ends at %llu)",
                                  (unsigned long long)log->node, (unsigned long long)term,
                                  (unsigned long long)i, (unsigned long long)want_term,
                                  (unsigned long long)log->last);
        if (got_term != want_term || got_hash != want_hash)
            return sim_check_fail(c, SIM_V_LEADER_COMPLETENESS,
                                  "node %llu leads term %llu with term %llu at committed index "
                                  "%llu, which was committed with term %llu",
                                  (unsigned long long)log->node, (unsigned long long)term,
                                  (unsigned long long)got_term, (unsigned long long)i,
                                  (unsigned long long)want_term);
    }
    return 0;
}

int sim_check_log_matching(sim_check_t *c, const sim_log_view_t *a, const sim_log_view_t *b)
{
    uint64_t lo = a->first > b->first ? a->first : b->first;
    uint64_t hi = a->last < b->last ? a->last : b->last;
    if (lo == 0)
        lo = 1;
    /* Walk down from the top: once an index with equal terms is found, every index below it
     * (that both still hold) must be the same entry. */
    bool matched = false;
    uint64_t match_index = 0, match_term = 0;
    for (uint64_t i = hi; i >= lo && i > 0; i--) {
        uint64_t ta, ha, tb, hb;
        if (a->entry(a->ctx, i, &ta, &ha) != 0 || b->entry(b->ctx, i, &tb, &hb) != 0)
            continue;
        if (!matched) {
            if (ta == tb) {
                matched = true;
                match_index = i;
                match_term = ta;
                if (ha != hb)
                    return sim_check_fail(c, SIM_V_LOG_MATCHING,
                                          "nodes %llu and %llu hold different entries with "
                                          "index %llu and term %llu",
                                          (unsigned long long)a->node, (unsigned long long)b->node,
                                          (unsigned long long)i, (unsigned long long)ta);
            }
            continue;
        }
        if (ta != tb || ha != hb)
            return sim_check_fail(
                c, SIM_V_LOG_MATCHING,
                "nodes %llu and %llu agree at index %llu (term %llu) but differ at index %llu "
                "(terms %llu and %llu)",
                (unsigned long long)a->node, (unsigned long long)b->node,
                (unsigned long long)match_index, (unsigned long long)match_term,
                (unsigned long long)i, (unsigned long long)ta, (unsigned long long)tb);
    }
    return 0;
}

int sim_check_leases(sim_check_t *c, uint64_t now_us, const sim_lease_t *leases, size_t n)
{
    const sim_lease_t *holder = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!leases[i].valid)
            continue;
        if (holder != NULL)
            return sim_check_fail(
                c, SIM_V_LEASE,
                "at t=%llu us node %llu (term %llu, lease until %llu us) and node %llu (term "
                "%llu, lease until %llu us) both hold a valid lease",
                (unsigned long long)now_us, (unsigned long long)holder->node,
                (unsigned long long)holder->term, (unsigned long long)holder->until_us,
                (unsigned long long)leases[i].node, (unsigned long long)leases[i].term,
                (unsigned long long)leases[i].until_us);
        holder = &leases[i];
    }
    return 0;
}

int sim_check_session(sim_check_t *c, uint64_t now_us, uint64_t leader, uint64_t member,
                      uint64_t held_until_us)
{
    if (held_until_us <= now_us)
        return 0;
    return sim_check_fail(c, SIM_V_SESSION,
                          "at t=%llu us leader %llu declared node %llu's session over, but it "
                          "holds it until %llu us",
                          (unsigned long long)now_us, (unsigned long long)leader,
                          (unsigned long long)member, (unsigned long long)held_until_us);
}

int sim_check_election_runs(sim_check_t *c, uint64_t now_us, uint32_t election,
                            const sim_runner_t *runs, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if (runs[i].node == runs[0].node)
            continue;
        const sim_runner_t *a = &runs[0], *b = &runs[i];
        return sim_check_fail(
            c, SIM_V_NAMED,
            "at t=%llu us election %u runs on node %llu (token %llu, %s until %llu us) and on "
            "node %llu (token %llu, %s until %llu us)",
            (unsigned long long)now_us, election, (unsigned long long)a->node,
            (unsigned long long)a->token, a->crashed ? "crashed, its watchdog" : "session",
            (unsigned long long)a->until_us, (unsigned long long)b->node,
            (unsigned long long)b->token, b->crashed ? "crashed, its watchdog" : "session",
            (unsigned long long)b->until_us);
    }
    return 0;
}

int sim_check_read(sim_check_t *c, uint64_t node, uint64_t ctx, uint64_t floor, uint64_t index)
{
    if (index < floor)
        return sim_check_fail(c, SIM_V_READ,
                              "node %llu answered read %llu with index %llu, but index %llu "
                              "was already applied when the read was asked",
                              (unsigned long long)node, (unsigned long long)ctx,
                              (unsigned long long)index, (unsigned long long)floor);
    return 0;
}

void sim_check_ack(sim_check_t *c, uint64_t node, uint64_t term, uint64_t index)
{
    if (node >= SIM_CHECK_NODES_MAX)
        return;
    if (term != c->ack_term[node]) {
        if (term < c->ack_term[node])
            return; /* a late acknowledgement from an older term binds nothing now */
        c->ack_term[node] = term;
        c->ack_index[node] = 0;
    }
    if (index > c->ack_index[node])
        c->ack_index[node] = index;
}

int sim_check_log_end(sim_check_t *c, uint64_t node, uint64_t term, uint64_t last, uint64_t now_us)
{
    if (node >= SIM_CHECK_NODES_MAX || term != c->ack_term[node] || last >= c->ack_index[node])
        return 0;
    return sim_check_fail(c, SIM_V_DURABILITY,
                          "at t=%llu us node %llu's log ends at %llu in term %llu, but it had "
                          "acknowledged index %llu in that term",
                          (unsigned long long)now_us, (unsigned long long)node,
                          (unsigned long long)last, (unsigned long long)term,
                          (unsigned long long)c->ack_index[node]);
}
