/* modes.c — the chaos members' workloads: supervised or hooks, default and named elections
 * (see modes.h). */
#include "modes.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

void chaos_modes_name(int k, char *buf, size_t cap)
{
    snprintf(buf, cap, "e%d", k);
}

void chaos_modes_events(const chaos_modes_t *m, int k, char *buf, size_t cap)
{
    if (k < 0) {
        snprintf(buf, cap, "%s", m->events);
        return;
    }
    char name[16];
    chaos_modes_name(k, name, sizeof(name));
    snprintf(buf, cap, "%s-%s", m->events, name);
}

/* The hook: "hook.sh start|stop EVENTS" stamps its begin and its end (or "killed" when it is
 * stopped by SIGTERM: its hook timed out or electd went away). */
static int write_hook(const chaos_modes_t *m, const char *testworker)
{
    FILE *f = fopen(m->hook_sh, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "#!/bin/sh\n"
            "W='%s'\n"
            "trap '\"$W\" --stamp \"$2\" hook-end \"$1\" killed; exit 1' TERM\n"
            "\"$W\" --stamp \"$2\" hook-begin \"$1\" \"$ELECTD_ROLE\"\n"
            "\"$W\" --stamp \"$2\" hook-end \"$1\"\n",
            testworker);
    int rc = fclose(f);
    return rc == 0 && chmod(m->hook_sh, 0755) == 0 ? 0 : -1;
}

/* {"elections":{"e0":{"exec":[W, EVENTS-e0]}, ...}} or the hooks' on-start/on-stop. */
static int write_config(const chaos_modes_t *m, const char *testworker)
{
    FILE *f = fopen(m->config, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "{\"elections\": {");
    for (int k = 0; k < m->n_elections; k++) {
        char name[16], ev[340];
        chaos_modes_name(k, name, sizeof(name));
        chaos_modes_events(m, k, ev, sizeof(ev));
        if (m->hooks)
            fprintf(f,
                    "%s\n  \"%s\": {\"on-start\": [\"%s\", \"start\", \"%s\"], "
                    "\"on-stop\": [\"%s\", \"stop\", \"%s\"]}",
                    k ? "," : "", name, m->hook_sh, ev, m->hook_sh, ev);
        else
            fprintf(f, "%s\n  \"%s\": {\"exec\": [\"%s\", \"%s\"]}", k ? "," : "", name, testworker,
                    ev);
    }
    fprintf(f, "\n}}\n");
    return fclose(f) == 0 ? 0 : -1;
}

int chaos_modes_setup(chaos_modes_t *m, const char *dir, const char *events, bool hooks,
                      int n_elections, const char *testworker)
{
    memset(m, 0, sizeof(*m));
    m->hooks = hooks;
    m->n_elections = n_elections;
    snprintf(m->events, sizeof(m->events), "%s", events);
    snprintf(m->hook_sh, sizeof(m->hook_sh), "%s/hook.sh", dir);
    snprintf(m->config, sizeof(m->config), "%s/elections.json", dir);
    if ((hooks && write_hook(m, testworker) != 0) ||
        (n_elections > 0 && write_config(m, testworker) != 0)) {
        fprintf(stderr, "chaos: cannot write the members' hook or config file in %s\n", dir);
        return -1;
    }
    snprintf(m->on_start, sizeof(m->on_start), "--on-start=%s start %s", m->hook_sh, m->events);
    snprintf(m->on_stop, sizeof(m->on_stop), "--on-stop=%s stop %s", m->hook_sh, m->events);
    snprintf(m->config_arg, sizeof(m->config_arg), "--config=%s", m->config);
    return 0;
}

void chaos_modes_argv(chaos_modes_t *m, const char *testworker, const char **argv, size_t *a)
{
    if (m->n_elections > 0)
        argv[(*a)++] = m->config_arg;
    if (m->hooks) {
        argv[(*a)++] = m->on_start;
        argv[(*a)++] = m->on_stop;
        return;
    }
    argv[(*a)++] = "--exec", argv[(*a)++] = "--", argv[(*a)++] = testworker;
    argv[(*a)++] = m->events;
}
