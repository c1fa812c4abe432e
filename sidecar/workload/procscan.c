/* procscan.c — finding the shims a previous run of electd left on this data directory, in
 * /proc, and waiting (bounded) until they are gone: nothing new may start before them. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"
#include "workload_int.h"

#define PROC_ENTRIES_MAX    65536 /* /proc entries looked at in one scan */
#define OLD_SHIMS_MARGIN_MS 2000  /* ms waited beyond the stop timeout a shim allows itself */
#define OLD_SHIMS_POLL_US   10000 /* us between scans */

/* True when the command line of pid names a shim (or the spawner, which guards hooks as a
 * shim does) of another electd on data_dir. Its argv, NUL-separated: electd __shim FD
 * STOP_MS PARENT DATA_DIR -- ... (shim.h), or electd __spawner PARENT DATA_DIR PAD. */
static bool is_old_shim(long pid, const char *data_dir)
{
    char path[64], cmd[4096];
    snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(cmd, 1, sizeof(cmd) - 1, f);
    fclose(f);
    cmd[n] = '\0';
    const char *a[6];
    size_t k = 0;
    for (const char *p = cmd; k < 6 && p < cmd + n; p += strlen(p) + 1)
        a[k++] = p;
    /* A spawner (electd __spawner PARENT DATA_DIR PAD) guards hooks the same way. */
    if (k >= 4 && strcmp(a[1], SIDECAR_SPAWNER_ARG) == 0)
        return strcmp(a[3], data_dir) == 0 && atoi(a[2]) != getpid();
    return k == 6 && strcmp(a[1], SIDECAR_SHIM_ARG) == 0 && strcmp(a[5], data_dir) == 0 &&
           atoi(a[4]) != getpid();
}

bool shim_proc_each(bool (*fn)(long pid, void *arg), void *arg)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return false;
    struct dirent *e;
    for (int seen = 0; seen < PROC_ENTRIES_MAX && (e = readdir(d)) != NULL; seen++) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0 || pid == getpid())
            continue;
        if (!fn(pid, arg))
            break;
    }
    closedir(d);
    return true;
}

struct old_shims {
    const char *data_dir;
    int found;
};

static bool count_one(long pid, void *arg)
{
    struct old_shims *o = arg;
    o->found += is_old_shim(pid, o->data_dir);
    return true;
}

/* Shims left by a previous run of electd on this data directory: their command line names
 * it (shim.h). */
static int count_old_shims(const char *data_dir)
{
    struct old_shims o = {.data_dir = data_dir};
    shim_proc_each(count_one, &o);
    return o.found;
}

/* After a crash of electd, the shims of its last run are still stopping what they ran (they
 * learn that electd died). Nothing new may start before they are gone: hooks never overlap,
 * even across a restart. Bounded by the time a shim itself allows (stop timeout) plus a
 * margin. */
void workload_procscan_wait(const char *data_dir, uint32_t stop_timeout_ms)
{
    uint64_t deadline = workload_now_ms() + stop_timeout_ms + OLD_SHIMS_MARGIN_MS;
    bool waited = false;
    int n;
    while ((n = count_old_shims(data_dir)) > 0 && workload_now_ms() < deadline) {
        if (!waited)
            SIDECAR_LOG(SIDECAR_LOG_INFO, "waiting for the previous run's shims to finish",
                        SIDECAR_LOG_INT("shims", n));
        waited = true;
        usleep(OLD_SHIMS_POLL_US);
    }
}
