/* named_int.h — private to named/: the runtime's state and what its files call in one another:
 * named.c (life cycle, the member's side: tenures, declaration, handover acknowledgements),
 * view.c (the replicated view: elections table, declarations and handover records, read from
 * the store when something relevant applied), records.c (the KV records' text and proposing
 * them), leader.c (placement and failover while this member leads). named.h is the interface.
 *
 * Ownership: one sidecar_named_t per daemon, on the loop's thread. Elections are heap objects
 * (pointers stay valid while the runtime lives: controllers' callbacks point at them), kept
 * in an array sorted by name. */
#ifndef ELECTD_SIDECAR_NAMED_INT_H
#define ELECTD_SIDECAR_NAMED_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"
#include "common.h"
#include "named.h"

#define NAMED_MEMBERS_MAX RAFT_MAX_MEMBERS
#define NAMED_LIST_MAX    RAFT_MAX_MEMBERS
#define NAMED_REASON_MAX  16
#define NAMED_EPH_OWNERS_MAX                                                                       \
    64 /* ephemeral.c: owners looked at per round (members: at most 16)                            \
        */

/* The lists few elections have, allocated when first needed (1,000 elections stay small). */
struct named_lists {
    uint64_t prefer[NAMED_LIST_MAX], avoid[NAMED_LIST_MAX]; /* its lowest declarer's lists */
    uint64_t failing[NAMED_LIST_MAX];          /* leader.c: members that gave it up recently */
    uint64_t failing_until_ms[NAMED_LIST_MAX]; /* ... until then */
};

/* failover.c: a failover of an election this member declares, measured when it is taken over
 * here (electd_election_failover_duration_seconds). Boot-time clock ms. */
struct named_failover {
    uint64_t clean_token; /* a tenure whose holder said it stopped (its end is no failover) */
    uint64_t lost_ms;     /* the view first showed the holder lost; 0 = not lost */
    uint64_t assigned_ms; /* ... and then the election was assigned here; 0 = not */
    sidecar_hist_t *hist; /* the failovers measured here; allocated at the first */
};

/* One named election: declared here, by another member, or only in the table. */
struct named_election {
    char name[STORE_ELECTION_NAME_MAX + 1];
    bool seen; /* view.c: still known after the last refresh */

    /* ours (declared in this member's config), with its controller */
    struct sidecar_named *owner;
    const sidecar_election_config_t *decl; /* NULL once a reload removed it */
    bool removed;         /* a reload removed it: its controller closes once nothing runs */
    sidecar_config_t cfg; /* the daemon's settings with the election's workload */
    sidecar_workload_t *w;
    sidecar_workload_tenure_t told; /* what w was told last */
    uint64_t stopped_sent_ms;       /* the last "stopped" (or give-up) record we forwarded */
    uint64_t asked_ms;

    /* the replicated view (view.c) */
    bool has_row;
    store_election_t row;
    bool has_handover; /* _electd/handover/<name> */
    uint64_t ho_token, ho_to, ho_from;
    char ho_reason[NAMED_REASON_MAX];
    bool has_stopped; /* _electd/stopped/<name> */
    uint64_t st_token, st_from;
    uint64_t eligible[NAMED_MEMBERS_MAX]; /* members that declare it */
    size_t n_eligible;
    struct named_lists *lists; /* NULL while it has no prefer, avoid or failing member */
    size_t n_prefer, n_avoid;

    /* the leader's (leader.c) */
    uint64_t pending_index; /* a proposal about it not yet applied */
    bool pending_handover;  /* ... which starts a handover */
    uint64_t ho_seen_ms;    /* when the current handover was first seen */
    uint64_t ho_seen_token; /* ... and its token */
    size_t n_failing;

    struct named_failover fo;
};

/* A holder that is not a member any more (removed): its last session may still run; it
 * counts as dead only once that session is provably over, counted from when this leader
 * first saw it gone (leader.c). */
struct named_gone {
    uint64_t id;
    uint64_t since_ms;
};

/* A member as the declarations say. */
struct named_member {
    uint64_t id;
    bool declared; /* it has a declaration record */
    bool no_primary;
    bool stopping; /* its electd is stopping: it receives no election */
    bool alive;    /* leader.c: its session is not provably over */
    uint64_t alive_since_ms;
};

struct sidecar_named {
    uv_loop_t *loop;
    const sidecar_config_t *cfg;
    sidecar_node_t *node;
    uint64_t self;
    sidecar_node_observer_t obs;
    uv_timer_t timer;
    bool timer_open;
    uint64_t timer_due_ms; /* the armed wake-up (uv_now), 0 none */

    struct named_election **els; /* sorted by name */
    size_t n_els, cap_els;

    struct named_member members[NAMED_MEMBERS_MAX]; /* from the declarations */
    struct named_gone gone[NAMED_MEMBERS_MAX];      /* leader.c: holders no longer members */
    size_t n_gone;
    size_t n_members;

    bool dirty;                /* something the view reads applied since the last refresh */
    uint64_t view_gen;         /* refreshes so far */
    uint64_t last_cb_index;    /* the last index an applied callback reported */
    uint64_t trusted_until_ns; /* the session end backed by an applied renewal */
    uint64_t pushed_until_ns;  /* trusted_until_ns when the controllers were last told */
    uint64_t push_at_ns;       /* from then on a renewal is handed on at once (tell_all) */

    const sidecar_election_list_t *decls; /* what this member declares now */
    sidecar_election_list_t **retired;    /* lists replaced by reloads (controllers of removed
                                             elections may still read them): freed at close */
    size_t n_retired;
    size_t removed_closing; /* controllers of removed elections still closing */
    char *decl_json;        /* this member's declaration, as it should be in the store */
    bool decl_stored;       /* view.c: the store holds exactly decl_json */
    size_t decl_len;
    uint64_t decl_sent_ms;

    /* leader.c */
    bool leading;               /* last evaluation was as leader with a valid lease */
    sidecar_node_state_t seen;  /* named.c: the node's state at its last change that mattered */
    bool eph_busy;              /* ephemeral.c: deletes in flight or due (look again soon) */
    uint64_t eph_pending_index; /* ... the last one proposed, until it applied */
    uint64_t eph_gen;           /* the store's ephemeral generation eph_owners was read at */
    size_t eph_n_owners;
    uint64_t eph_owners[NAMED_EPH_OWNERS_MAX]; /* members with ephemeral keys */
    uint64_t placed_gen;                       /* the view placement last ran on ... */
    uint64_t place_at_ms; /* ... and when it runs again even if nothing changed */

    bool fo_waiting;     /* failover.c: an election assigned here waits for its start */
    uint64_t trim_at_ms; /* named.c: when freed memory is next given back */
    bool full_due;       /* named.c: every election is to be looked at in this evaluation */
    uint64_t full_at_ms; /* ... and next at the latest */

    /* shutdown: held elections are handed over first, for at most until stop_by_ms, and for at
     * most until idle_by_ms once nothing of them runs here any more (0: something still does) */
    bool stopping;
    bool stop_done; /* the controllers were told to stop */
    uint64_t stop_by_ms;
    uint64_t idle_by_ms;
    size_t stops_pending;
    void (*stop_cb)(void *);
    void *stop_ud;
    size_t closes_pending;
    void (*close_cb)(void *);
    void *close_ud;
};

/* A handover of e's current tenure is under way (the holder stops first). */
static inline bool named_moving(const struct named_election *e)
{
    return e->has_row && e->has_handover && e->ho_token == e->row.token;
}

/* Boot-time clock in ms (what placement's hysteresis and the records' pacing use). */
uint64_t named_now_ms(void);

/* ---- view.c --------------------------------------------------------------------------- */

/* The election called name, or NULL. */
struct named_election *named_find(const sidecar_named_t *n, const char *name);
/* Finds or creates it (NULL: out of memory). */
struct named_election *named_get_or_add(sidecar_named_t *n, const char *name);
/* Reads the table, the declarations and the records again when something relevant applied
 * (or a snapshot was installed). 0 or a store error. */
int named_view_refresh(sidecar_named_t *n);
/* True when the entry changes what the view reads. */
bool named_view_touches(const raft_entry_t *e);
/* The member's row, or NULL. */
struct named_member *named_member_find(sidecar_named_t *n, uint64_t id);
bool named_eligible(const struct named_election *e, uint64_t id);
/* e's lists, allocated now if it has none (NULL: out of memory). */
struct named_lists *named_lists(struct named_election *e);

/* ---- records.c ------------------------------------------------------------------------ */

/* Builds this member's declaration (JSON) into n->decl_json. 0 or -1 (out of memory). */
int named_decl_build(sidecar_named_t *n);
/* Parses a declaration record of member id into the view (elections it names are added). */
void named_decl_parse(sidecar_named_t *n, uint64_t id, const uint8_t *json, size_t len);
/* Parses "<token> <to> <from> <reason>" / "<token> <from>"; false when malformed. */
bool named_handover_parse(const uint8_t *v, size_t len, struct named_election *e);
bool named_stopped_parse(const uint8_t *v, size_t len, uint64_t *token, uint64_t *from);
/* Proposes (or forwards to the leader) a PUT or, with value NULL, a DEL of
 * <prefix><name>. 0, or a RAFT_E* code; *index (may be NULL) = the index when proposed here
 * (0 when forwarded). */
int named_record_put(sidecar_named_t *n, const char *prefix, const char *name, const char *value,
                     uint64_t *index);
/* Proposes ELECTION_ASSIGN / ELECTION_DROP on the leader. */
int named_propose_assign(sidecar_named_t *n, const char *name, uint64_t holder, uint64_t token,
                         uint64_t *index);
int named_propose_drop(sidecar_named_t *n, const char *name, uint64_t token, uint64_t *index);

/* ---- failover.c ----------------------------------------------------------------------- */

/* An applied entry that touches the view (named_view_touches): notes a tenure's holder lost
 * (an ASSIGN that ends a tenure whose holder did not say it stopped) or stopped cleanly. */
void named_failover_applied(sidecar_named_t *n, const raft_entry_t *ent, const store_result_t *res);
/* After a refresh of the view: notes holders removed from the group or given up. */
void named_failover_view(sidecar_named_t *n);
/* Measures the failovers whose workload started here since. */
void named_failover_poll(sidecar_named_t *n);

/* ---- ephemeral.c ---------------------------------------------------------------------- */

/* While leading with a valid lease: proposes the deletes of the ephemeral keys of members
 * that are gone (removed, or their session provably over). True while deletes are in flight
 * (the caller looks again soon). */
bool named_ephemeral_step(sidecar_named_t *n, const sidecar_node_state_t *st);
/* True for an ephemeral PUT: its owner may be gone already, so the leader looks. */
bool named_ephemeral_touches(const raft_entry_t *e);

/* ---- leader.c ------------------------------------------------------------------------- */

/* One round of the leader's work (placement, handovers, failovers, clean-up) when this member
 * leads with a valid lease; else notes that it does not. Without `full` only members'
 * liveness is looked at (and placement runs if it changed). */
void named_leader_step(sidecar_named_t *n, const sidecar_node_state_t *st, bool full);

#endif
