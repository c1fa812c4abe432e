/* modes.h — what the chaos harness's members run: the test workload supervised (`--exec`) or
 * hooks that stamp their begin and end (`--on-start`/`--on-stop`), for the default election
 * and for N named elections (e0, e1, ... in a config file every member shares). Each election
 * has its own event file, checked on its own: the default election's is the run's `events`,
 * a named one's is `events-<name>`.
 *
 * Ownership: a chaos_modes_t is the caller's; argv entries point into it (and into the
 * caller's strings), valid while it lives.
 */
#ifndef ELECTD_TESTS_CHAOS_MODES_H
#define ELECTD_TESTS_CHAOS_MODES_H

#include <stdbool.h>
#include <stddef.h>

#define CHAOS_MAX_ELECTIONS 16

typedef struct chaos_modes {
    bool hooks;      /* hooks, else supervised */
    int n_elections; /* named elections, 0..CHAOS_MAX_ELECTIONS */
    char events[300];
    char hook_sh[320];
    char config[320];
    char on_start[700], on_stop[700], config_arg[340];
} chaos_modes_t;

/* Writes what the members need into dir (the hook script, the elections' config file);
 * events is the default election's event file, testworker the test workload's path.
 * 0, or -1 with a message on stderr. */
int chaos_modes_setup(chaos_modes_t *m, const char *dir, const char *events, bool hooks,
                      int n_elections, const char *testworker);

/* Appends to argv[*a] on the mode's flags and, last, `--exec -- WORKLOAD...` when
 * supervised; at most 5 words. */
void chaos_modes_argv(chaos_modes_t *m, const char *testworker, const char **argv, size_t *a);

/* The event file of election k (-1: the default election). */
void chaos_modes_events(const chaos_modes_t *m, int k, char *buf, size_t cap);

/* The name of named election k ("e0", ...). */
void chaos_modes_name(int k, char *buf, size_t cap);

#endif
