/* lease.c — the lease timeline as pure arithmetic (see lease.h): when the workload may run,
 * when stopping begins, which deadline the shim gets and when the shim kills. */
#include "lease.h"

#define NS_PER_MS 1000000ull

bool workload_lease_outlives(const sidecar_node_state_t *st, uint64_t stop_ns, uint64_t now_ns)
{
    if (st->role != RAFT_LEADER || st->epoch != st->term || st->lease_deadline_ns == 0)
        return false;
    return now_ns + stop_ns < st->lease_deadline_ns;
}

bool workload_lease_want_primary(const sidecar_node_state_t *st, const workload_lease_holds_t *h,
                                 uint64_t stop_ns, uint64_t now_ns)
{
    if (h->shutting_down || h->recovering)
        return false;
    if (h->handover && st->term == h->handover_term)
        return false;
    if (h->gave_up_term != 0 && st->term == h->gave_up_term)
        return false;
    if (!workload_lease_outlives(st, stop_ns, now_ns))
        return false;
    return now_ns / NS_PER_MS >= h->backoff_until_ms;
}

uint64_t workload_lease_stop_at_ns(const sidecar_node_state_t *st, uint64_t stop_ns)
{
    return st->lease_deadline_ns > stop_ns ? st->lease_deadline_ns - stop_ns : 0;
}

uint64_t workload_lease_wake_ms(const sidecar_node_state_t *st, bool primary, uint64_t stop_ns,
                                uint64_t backoff_until_ms, uint64_t now_ns, uint64_t max_ms)
{
    uint64_t delay = max_ms;
    /* Only a running primary waits for the stop point; once stopping, it is in the past. */
    if (st->lease_deadline_ns != 0 && primary) {
        uint64_t at = workload_lease_stop_at_ns(st, stop_ns);
        uint64_t d = at > now_ns ? (at - now_ns) / NS_PER_MS : 0;
        if (d < delay)
            delay = d;
    }
    uint64_t now_ms = now_ns / NS_PER_MS;
    if (backoff_until_ms > now_ms && backoff_until_ms - now_ms < delay)
        delay = backoff_until_ms - now_ms;
    /* Never 0: re-armed from its own callback, a 0 ms timer is due again at once and libuv
     * (1.44) never leaves its timer loop — no I/O, no signals (found by the chaos harness). */
    return delay == 0 ? 1 : delay;
}

uint64_t workload_lease_renewal_ns(const sidecar_node_state_t *st, uint64_t sent_ns)
{
    return st->lease_deadline_ns > sent_ns ? st->lease_deadline_ns : 0;
}

void workload_watchdog_init(workload_watchdog_t *d, bool watch, uint64_t stop_ns)
{
    /* A supervised workload has no deadline until electd sends one (and may not run before);
     * a hook has none to watch. */
    *d = (workload_watchdog_t){
        .deadline_ns = watch ? 0 : UINT64_MAX, .stop_ns = stop_ns, .watch = watch};
}

void workload_watchdog_renew(workload_watchdog_t *d, uint64_t deadline_ns)
{
    if (!d->termed)
        d->deadline_ns = deadline_ns;
}

bool workload_watchdog_term_due(const workload_watchdog_t *d, bool gone, uint64_t now_ns)
{
    if (d->termed)
        return false;
    return gone || (d->watch && now_ns + d->stop_ns >= d->deadline_ns);
}

void workload_watchdog_termed(workload_watchdog_t *d, uint64_t now_ns)
{
    d->termed = true;
    if (d->kill_at_ns == 0 || now_ns + d->stop_ns < d->kill_at_ns)
        d->kill_at_ns = now_ns + d->stop_ns;
}

uint64_t workload_watchdog_kill_ns(const workload_watchdog_t *d)
{
    return d->kill_at_ns != 0 && d->kill_at_ns < d->deadline_ns ? d->kill_at_ns : d->deadline_ns;
}

int workload_watchdog_wait_ms(const workload_watchdog_t *d, uint64_t now_ns, int max_ms)
{
    if (!d->watch && !d->termed)
        return max_ms; /* a hook: nothing scheduled until it is told to stop */
    uint64_t next;
    if (d->termed)
        next = workload_watchdog_kill_ns(d);
    else
        next = d->deadline_ns - (d->stop_ns < d->deadline_ns ? d->stop_ns : d->deadline_ns);
    if (next <= now_ns)
        return 0;
    uint64_t ms = (next - now_ns) / NS_PER_MS + 1;
    return ms > (uint64_t)max_ms ? max_ms : (int)ms;
}
