/* supervise.c — the supervised workload (--exec): started under the exec shim (shim.c) while
 * the lease allows, handed each lease renewal over the shim's control pipe, told to stop when
 * the lease no longer allows, and accounted as a failure when it exits on its own. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "shim.h"
#include "workload_int.h"

static void send_ctl(sidecar_workload_t *w, char cmd, uint64_t v)
{
    if (w->ctl_fd < 0)
        return;
    uint8_t msg[SIDECAR_SHIM_MSG];
    sidecar_shim_msg(msg, cmd, v);
    /* 9 bytes into an empty-ish pipe: atomic; if the shim is gone, EPIPE is harmless. */
    (void)!write(w->ctl_fd, msg, sizeof(msg));
}

static void ctl_close(sidecar_workload_t *w)
{
    if (w->ctl_fd >= 0) {
        close(w->ctl_fd);
        w->ctl_fd = -1;
    }
}

static void shim_exit_cb(workload_proc_t *p, int64_t status, int sig)
{
    struct workload_child *c = p->data;
    sidecar_workload_t *w = c->w;
    int64_t code = workload_exit_code(status, sig);
    w->info.last_exit = (int)code;
    w->info.pid = 0;
    w->shim = NULL;
    w->stop_clean = true; /* the shim kills the workload's whole group before it exits */
    ctl_close(w);
    workload_child_close(c);
    if (w->close_cb != NULL)
        return;
    bool expected = w->state == SIDECAR_WORKLOAD_STOPPING;
    SIDECAR_LOG(expected ? SIDECAR_LOG_INFO : SIDECAR_LOG_WARN,
                expected ? "workload stopped" : "workload exited on its own",
                SIDECAR_LOG_INT("status", code));
    workload_set_state(w, SIDECAR_WORKLOAD_STANDBY);
    workload_persist_role(w, "standby");
    if (!expected)
        workload_failure_record(w, "exit");
    workload_evaluate(w);
}

/* Spawns the shim for c with its control pipe's read end as fd 3. The role is recorded as
 * primary before the workload can exist: a crash from here on means on-stop must run. */
static int shim_spawn(sidecar_workload_t *w, struct workload_child *c, int ctl_rd, char **args,
                      char **env)
{
    workload_spawn_t o = {.file = w->exe,
                          .args = args,
                          .env = env,
                          .fds = {0, 1, 2, ctl_rd},
                          .n_fds = 4,
                          .exit_cb = shim_exit_cb};
    c->w = w;
    c->proc.data = c;
    workload_persist_role(w, "primary");
    int rv = workload_proc_spawn(w->loop, &c->proc, &o);
    if (rv != 0) {
        SIDECAR_LOG(SIDECAR_LOG_ERROR, "cannot start the workload shim",
                    SIDECAR_LOG_STR("error", uv_strerror(rv)));
        workload_persist_role(w, "standby");
        return rv;
    }
    c->handles = 1;
    w->open_children++;
    return 0;
}

/* Hands the running shim a lease deadline: never one past the lease this node holds now
 * (the shim kills the workload by the deadline it has, so a later one would let it outlive
 * the lease). The default election's shim is then told the term of that lease ('E', after
 * the 'D': a notice never names a term newer than the deadline it holds), which it names in
 * the released-lease notice should electd die (docs/guarantees.md, "Released lease on process
 * death"). A named election's shim is never told: its lease is the session's, not the term's. */
static void send_deadline(sidecar_workload_t *w, uint64_t deadline_ns)
{
    ELECTD_CHECK(w->shim != NULL);
    ELECTD_CHECK(deadline_ns != 0 && deadline_ns <= w->st.lease_deadline_ns);
    w->sent_deadline_ns = deadline_ns;
    send_ctl(w, 'D', deadline_ns);
    if (w->election == NULL && w->st.term != w->sent_term) {
        w->sent_term = w->st.term;
        send_ctl(w, 'E', w->st.term);
    }
}

/* The shim is running: it gets the lease deadline first (it starts nothing before). */
static void shim_started(sidecar_workload_t *w, struct workload_child *c, int ctl_wr)
{
    w->shim = c;
    w->info.starts++;
    w->ctl_fd = ctl_wr;
    w->sent_term = 0; /* a new shim knows no term */
    send_deadline(w, w->st.lease_deadline_ns);
    w->info.pid = c->proc.pid;
    SIDECAR_LOG(SIDECAR_LOG_INFO, "workload started", SIDECAR_LOG_INT("pid", c->proc.pid),
                SIDECAR_LOG_UINT("fencing_token", w->st.epoch));
    workload_set_state(w, SIDECAR_WORKLOAD_PRIMARY);
}

static void shim_start(sidecar_workload_t *w, uint64_t now_ns)
{
    workload_check_may_start(w, now_ns);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        workload_failure_record(w, "pipe");
        return;
    }
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    struct workload_child *c = calloc(1, sizeof(*c));
    char **env = workload_child_env(w, "primary");
    char **args = workload_child_argv(w, "3", &w->cfg->exec, NULL, NULL);
    bool allocated = c != NULL && env != NULL && args != NULL;
    int rv = allocated ? shim_spawn(w, c, fds[0], args, env) : -1;
    if (rv != 0)
        free(c); /* nothing of it was opened */
    close(fds[0]);
    workload_strv_free(env);
    free(args);
    if (rv == 0) {
        shim_started(w, c, fds[1]);
        return;
    }
    close(fds[1]);
    workload_failure_record(w, allocated ? "spawn" : "out of memory");
}

void workload_supervise_step(sidecar_workload_t *w, bool want, uint64_t now_ns)
{
    /* A shim runs exactly while the workload is not standby. */
    ELECTD_CHECK((w->state == SIDECAR_WORKLOAD_STANDBY) == (w->shim == NULL));
    if (w->state == SIDECAR_WORKLOAD_STANDBY && want && w->shim == NULL) {
        shim_start(w, now_ns);
    } else if (w->state == SIDECAR_WORKLOAD_PRIMARY && !want) {
        SIDECAR_LOG(SIDECAR_LOG_INFO, "stopping the workload",
                    SIDECAR_LOG_STR("role", raft_role_name(w->st.role)),
                    SIDECAR_LOG_BOOL("lease", w->st.lease_deadline_ns > now_ns));
        workload_set_state(w, SIDECAR_WORKLOAD_STOPPING);
        send_ctl(w, 'T', 0);
    } else if (w->state == SIDECAR_WORKLOAD_PRIMARY) {
        uint64_t renewal = workload_lease_renewal_ns(&w->st, w->sent_deadline_ns);
        if (renewal != 0)
            send_deadline(w, renewal);
    }
    workload_on_change_step(w, w->state == SIDECAR_WORKLOAD_PRIMARY ? "primary" : "standby");
}

void workload_supervise_close(sidecar_workload_t *w)
{
    if (w->shim != NULL)
        send_ctl(w, 'T', 0); /* should not happen after _stop; be safe */
    ctl_close(w);
}
