/* loop_poll.h — what the in-process tests of tests/sidecar/ share: running a libuv loop until a
 * condition holds (bounded in time), and a free port on loopback. */
#ifndef ELECTD_TESTS_LOOP_POLL_H
#define ELECTD_TESTS_LOOP_POLL_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/* Runs *loopp until cond holds or timeout_s seconds pass. */
#define LOOP_RUN_UNTIL(loopp, cond, timeout_s)                                                     \
    do {                                                                                           \
        uint64_t deadline_ = uv_hrtime() + (uint64_t)(timeout_s)*1000000000ull;                    \
        while (!(cond) && uv_hrtime() < deadline_) {                                               \
            uv_run((loopp), UV_RUN_NOWAIT);                                                        \
            usleep(300);                                                                           \
        }                                                                                          \
    } while (0)

/* A port nothing listens on at 127.0.0.1 now (the kernel's pick for port 0). */
static inline int loop_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
              getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    close(fd);
    return ntohs(sa.sin_port);
}

#endif
