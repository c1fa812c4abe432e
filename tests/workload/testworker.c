/* testworker.c — a workload for the tests. Appends events with CLOCK_MONOTONIC timestamps
 * to a shared file (O_APPEND, one write per line, so lines never interleave):
 *
 *   <ns> <node> start <pid> <fencing-token>
 *   <ns> <node> alive <pid>        every 5 ms while running
 *   <ns> <node> stop <pid>         on SIGTERM, just before exiting
 *   <ns> <node> crash <pid>        just before exiting on its own (TESTWORKER_EXIT_AFTER_MS)
 *
 * Usage: testworker FILE              run as a workload (node from ELECTD_NODE_ID)
 *        testworker --stamp FILE WORD...   append one line "<ns> <node> WORD..." and exit
 * Env:   TESTWORKER_EXIT_AFTER_MS=N   exit(1) after N ms (a crashing workload)
 *        TESTWORKER_IGNORE_TERM=1     ignore SIGTERM (a workload that will not stop)
 *        TESTWORKER_ONLY_ON=NODE      on any other node, exit(1) after 50 ms (a workload that
 *                                     can run on one member only)
 *        TESTWORKER_NOISY=1           also write to stdout and stderr: a greeting, bytes that
 *                                     are not UTF-8 and control bytes, a line of
 *                                     NOISY_LONG_LINE bytes, a tick every 100 alive periods,
 *                                     and a last line without newline when stopped
 */
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOISY_LONG_LINE 20000 /* bytes of the noisy worker's long line (a few log lines' worth) */

static volatile sig_atomic_t term;

static void on_term(int sig)
{
    (void)sig;
    term = 1;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void emit(int fd, const char *node, const char *what)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "%llu %s %s\n", (unsigned long long)mono_ns(), node, what);
    if (n > 0)
        (void)!write(fd, line, (size_t)n);
}

static void say(int fd, const char *s)
{
    (void)!write(fd, s, strlen(s));
}

/* The noisy worker's start: what a real program may write on its standard streams. */
static void noise_start(void)
{
    static char longline[NOISY_LONG_LINE + 2];
    say(1, "hello from the workload on stdout\n");
    say(2, "stderr: invalid UTF-8 \xff\xfe\xc3( and a cut \xe2\x82 \x01\x1b[31m \"q\" \\ end\n");
    for (size_t i = 0; i < NOISY_LONG_LINE; i++)
        longline[i] = (char)('a' + i % 26);
    longline[NOISY_LONG_LINE] = '\n';
    (void)!write(1, longline, NOISY_LONG_LINE + 1);
    say(1, "\xe2\x82\xac euro and \xf0\x9f\x98\x80 emoji\n");
}

int main(int argc, char **argv)
{
    const char *node = getenv("ELECTD_NODE_ID");
    if (node == NULL || *node == '\0')
        node = "?";
    if (argc >= 4 && strcmp(argv[1], "--stamp") == 0) {
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0)
            return 1;
        char what[400] = "";
        size_t off = 0;
        for (int i = 3; i < argc && off < sizeof(what) - 1; i++)
            off +=
                (size_t)snprintf(what + off, sizeof(what) - off, "%s%s", i > 3 ? " " : "", argv[i]);
        emit(fd, node, what);
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: testworker FILE | testworker --stamp FILE WORD...\n");
        return 2;
    }
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0)
        return 1;
    if (getenv("TESTWORKER_IGNORE_TERM") == NULL)
        signal(SIGTERM, on_term);
    else
        signal(SIGTERM, SIG_IGN);
    const char *exit_after = getenv("TESTWORKER_EXIT_AFTER_MS");
    const char *only_on = getenv("TESTWORKER_ONLY_ON");
    if (only_on != NULL && strcmp(only_on, node) != 0)
        exit_after = "50";
    uint64_t die_at = exit_after ? mono_ns() + strtoull(exit_after, NULL, 10) * 1000000ull : 0;
    char what[128];
    const char *token = getenv("ELECTD_FENCING_TOKEN");
    snprintf(what, sizeof(what), "start %d %s", (int)getpid(), token ? token : "-");
    emit(fd, node, what);
    bool noisy = getenv("TESTWORKER_NOISY") != NULL;
    if (noisy)
        noise_start();
    snprintf(what, sizeof(what), "alive %d", (int)getpid());
    /* Bounded: a test workload never outlives an hour even if nobody stops it. */
    for (int i = 0; i < 720000 && !term; i++) {
        if (die_at && mono_ns() >= die_at) {
            snprintf(what, sizeof(what), "crash %d", (int)getpid());
            emit(fd, node, what);
            return 1;
        }
        emit(fd, node, what);
        if (noisy && i % 100 == 99)
            dprintf(i % 200 == 199 ? 2 : 1, "tick %d\n", i / 100);
        usleep(5000);
    }
    snprintf(what, sizeof(what), "stop %d", (int)getpid());
    emit(fd, node, what);
    if (noisy)
        say(2, "stopping: a last line without newline");
    return 0;
}
