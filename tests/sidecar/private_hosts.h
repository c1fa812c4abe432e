/* private_hosts.h — gives the calling test process a private /etc/hosts (a mount namespace
 * of its own with a test-made file bind-mounted over it), so that tests of name resolution
 * do not depend on the machine's /etc/hosts. Criterion runs each test in its own process, so
 * the namespace ends with the test. Needs root (CAP_SYS_ADMIN); the test is skipped without. */
#ifndef ELECTD_TESTS_PRIVATE_HOSTS_H
#define ELECTD_TESTS_PRIVATE_HOSTS_H

#include <criterion/criterion.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

/* `name` resolves to ::1 first and 127.0.0.1 second, as stock Debian's localhost does. */
static inline void private_hosts(const char *name)
{
    char path[] = "/tmp/electd-hosts-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    char text[256];
    int n = snprintf(text, sizeof(text), "::1 %s\n127.0.0.1 %s\n", name, name);
    cr_assert_eq(write(fd, text, (size_t)n), n);
    close(fd);
    if (unshare(CLONE_NEWNS) != 0) {
        unlink(path);
        cr_skip_test("needs a private mount namespace (root)");
    }
    cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0, "%m");
    cr_assert_eq(mount(path, "/etc/hosts", NULL, MS_BIND, NULL), 0, "%m");
    unlink(path);
}

#endif
